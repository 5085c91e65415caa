// SPDX-License-Identifier: MIT
/*
 * The sleep/wake protocol under many cycles (runtime/DESIGN.md invariant 4:
 * a shard asleep while work waits for it is a bug). Shards use VZ_IDLE_SLEEP, so
 * they block as soon as a turn finds nothing to do, and the traffic is
 * shaped so that a message finds its target at every point of the
 * protocol: asleep, announcing sleep, re-checking, waking:
 *
 * - ping-pong between two shards, the receiving side waiting a random
 *   0-20 us before it replies (the peer is then asleep, or just about to
 *   be), with one and with several tokens in flight;
 * - foreign threads posting to the sleeping shards with random gaps.
 *
 * Every message carries a sequence number checked in order at its
 * receiver; a lost wake-up shows as no progress, reported with the shards'
 * counters after a "never" bound, well before the watchdog. Sizes scale
 * with VZ_STRESS_SCALE; the counters (sleeps, wake-up syscalls) and the
 * rate of sleep/wake cycles are printed. A cycle (block, be woken, run)
 * costs some 30-80 us on the shared 2-CPU development machine (13k-35k
 * cycles/s); scale 1 makes just over 10^6 cycles in all (the one-token
 * ping-pong alone about 950k), which takes 30 s on a quiet machine and
 * up to about 80 s on a loaded one. CI's sanitizer runs use scale 0.2.
 *
 * VZ_TEST_SLEEP_FENCES: run in both sleep fences (tests/CMakeLists.txt),
 * the runtime's automatic choice (membarrier where allowed) and
 * VZ_SLEEP_FENCE=fence; the fence in use is printed.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MSG_GO = VZ_MSG_USER, MSG_BALL, MSG_SEQ };

#define STALL_S 10 /* no progress for this long: print the counters */

static atomic_int errors;
static atomic_ulong progress; /* messages handled by the test's actors */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Busy-wait `ns` nanoseconds (the shard stays awake and busy). */
static void spin_ns(uint64_t ns)
{
	uint64_t until = vz_test_now_ns() + ns;

	while (vz_test_now_ns() < until)
		;
}

/* A runtime whose shards block as soon as they are idle; resets the
 * per-test counters. */
static vz_runtime *make_rt(unsigned shards)
{
	vz_config cfg;
	vz_runtime *rt;

	atomic_store(&errors, 0);
	atomic_store(&progress, 0);
	vz_test_config(&cfg, shards);
	cfg.idle_policy = VZ_IDLE_SLEEP;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	print_message("sleep fence: %s%s%s\n", vz_runtime_sleep_fence(rt),
		      *vz_runtime_sleep_fence_reason(rt) ? " - " : "",
		      vz_runtime_sleep_fence_reason(rt));
	return rt;
}

/* Print every shard's counters, prefixed by `what`. Any thread. */
static void print_shards(vz_runtime *rt, const char *what)
{
	for (unsigned i = 0; i < vz_runtime_shards(rt); i++) {
		vz_shard_stats s;

		vz_stats_shard(rt, i, &s);
		print_message("%s shard %u: handled %llu turns %llu sleeps %llu wakeups_sent %llu "
			      "received_remote %llu received_foreign %llu\n",
			      what, i, (unsigned long long)s.handled, (unsigned long long)s.turns,
			      (unsigned long long)s.sleeps, (unsigned long long)s.wakeups_sent,
			      (unsigned long long)s.received_remote,
			      (unsigned long long)s.received_foreign);
	}
}

/* Wait until `progress` reaches want. No progress for STALL_S seconds
 * prints the counters once (on this shared 2-CPU machine a runnable shard
 * has been seen to get no CPU for over 10 s); no progress for 60 s fails
 * as a lost wake-up. */
static void wait_progress(vz_runtime *rt, uint64_t want)
{
	uint64_t last = 0, last_change = vz_test_now_ns(), p;
	bool reported = false;

	while ((p = atomic_load_explicit(&progress, memory_order_acquire)) < want) {
		uint64_t quiet = vz_test_now_ns() - last_change;

		if (p != last) {
			last = p;
			last_change = vz_test_now_ns();
		} else if (quiet > 60ull * 1000000000u) {
			print_shards(rt, "stalled:");
			fail_msg("no progress for 60 s at %llu of %llu messages: lost wake-up",
				 (unsigned long long)p, (unsigned long long)want);
		} else if (quiet > STALL_S * 1000000000ull && !reported) {
			print_shards(rt, "no progress for a while:");
			reported = true;
		}
		usleep(1000);
	}
}

/* Sum of sleeps and wake-up syscalls over all shards. */
static void sleeps_total(vz_runtime *rt, uint64_t *sleeps, uint64_t *wakeups)
{
	vz_shard_stats t;

	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	*sleeps = t.sleeps;
	*wakeups = t.wakeups_sent;
}

/* Stop; exactly expect_sent messages were sent and all were handled
 * (nothing dead-lettered); destroy. */
static void finish(vz_runtime *rt, uint64_t expect_sent)
{
	vz_shard_stats t;
	uint64_t foreign, sent;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	sent = t.sent_local + t.sent_remote + foreign;
	assert_int_equal(sent, expect_sent);
	assert_int_equal(sent, t.handled);
	assert_int_equal(t.dead_letters, 0);
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	assert_int_equal(atomic_load(&errors), 0);
}

/* ---- ping-pong with random reply delays ---------------------------------- */

#define MAX_TOKENS 8

struct ball {
	uint32_t token;
	uint64_t seq; /* hops of this token so far */
};

struct player {
	vz_ref peer;
	uint64_t rng;
	uint64_t hops; /* a token stops after this many hops */
	uint64_t next[MAX_TOKENS];
};

struct player_arg {
	uint64_t seed, hops;
};

static int player_init(vz_actor *self, void *state, const void *arg)
{
	struct player *p = state;
	const struct player_arg *a = arg;

	(void)self;
	p->rng = a->seed;
	p->hops = a->hops;
	return 0;
}

static void player_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct player *p = state;
	struct ball b;

	switch (vz_msg_type(m)) {
	case MSG_GO: /* peer ref, then serve tokens */
		memcpy(&p->peer, vz_msg_data(m), sizeof p->peer);
		if (vz_msg_len(m) > sizeof p->peer) {
			uint32_t tokens;

			memcpy(&tokens, (const char *)vz_msg_data(m) + sizeof p->peer,
			       sizeof tokens);
			for (uint32_t t = 0; t < tokens && t < MAX_TOKENS; t++) {
				p->next[t] = 1; /* the server sees the odd hops */
				b = (struct ball){t, 0};
				if (vz_send(self, p->peer, MSG_BALL, &b, sizeof b) != 0)
					atomic_fetch_add(&errors, 1);
			}
		}
		break;
	case MSG_BALL:
		memcpy(&b, vz_msg_data(m), sizeof b);
		/* Each player sees every other hop of a token, in order. */
		if (b.token >= MAX_TOKENS || b.seq != p->next[b.token])
			atomic_fetch_add(&errors, 1);
		p->next[b.token] = b.seq + 2;
		atomic_fetch_add_explicit(&progress, 1, memory_order_release);
		if (b.seq + 1 >= p->hops)
			break; /* this token is done */
		/* 0-20 us: the peer went idle after its send and is asleep,
		 * announcing sleep, or still spinning through its last turn */
		spin_ns(xorshift(&p->rng) % 20001);
		b.seq++;
		if (vz_send(self, p->peer, MSG_BALL, &b, sizeof b) != 0)
			atomic_fetch_add(&errors, 1);
		break;
	}
}

static const vz_actor_spec player_spec = {
    .name = "player",
    .state_size = sizeof(struct player),
    .init = player_init,
    .receive = player_receive,
};

/* `tokens` balls, each bounced `hops` times between shards 0 and 1. */
static void pingpong(uint32_t tokens, uint64_t hops)
{
	vz_runtime *rt = make_rt(2);
	struct player_arg pa0 = {0x9e3779b97f4a7c15ull, hops}, pa1 = {0xd1b54a32d192ed03ull, hops};
	unsigned char go[sizeof(vz_ref) + sizeof(uint32_t)];
	uint64_t s0, w0, s1, w1, t0, t1;
	vz_ref a, b;

	assert_int_equal(vz_spawn(rt, 0, &player_spec, &pa0, &a), 0);
	assert_int_equal(vz_spawn(rt, 1, &player_spec, &pa1, &b), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, b, MSG_GO, &a, sizeof a), 0);
	memcpy(go, &b, sizeof b);
	memcpy(go + sizeof b, &tokens, sizeof tokens);
	sleeps_total(rt, &s0, &w0);
	t0 = vz_test_now_ns();
	/* b must know its peer before a's first ball reaches it: the two
	 * posts go to different shards, so wait for b to handle its GO */
	{
		vz_shard_stats s;
		uint64_t end = vz_test_now_ns() + STALL_S * 1000000000ull;

		do {
			assert_int_equal(vz_stats_shard(rt, 1, &s), 0);
			assert_true(vz_test_now_ns() < end);
			usleep(100);
		} while (s.handled < 1);
	}
	assert_int_equal(vz_post(rt, a, MSG_GO, go, sizeof go), 0);
	wait_progress(rt, (uint64_t)tokens * hops);
	t1 = vz_test_now_ns();
	sleeps_total(rt, &s1, &w1);
	print_shards(rt, "ping-pong:");
	print_message("ping-pong %u token(s) x %llu hops: %llu sleeps, %llu wake-up syscalls in "
		      "%.2f s = %.0f sleep/wake cycles/s\n",
		      tokens, (unsigned long long)hops, (unsigned long long)(s1 - s0),
		      (unsigned long long)(w1 - w0), (double)(t1 - t0) / 1e9,
		      (double)(s1 - s0) / ((double)(t1 - t0) / 1e9));
	assert_int_equal(atomic_load(&errors), 0);
	/* the shards did sleep between hops (the case under test) */
	assert_true(s1 - s0 > 0);
	assert_true(w1 - w0 > 0);
	/* 2 GO posts + one send per hop */
	finish(rt, 2 + (uint64_t)tokens * hops);
}

static void test_pingpong_one_token(void **st)
{
	(void)st;
	pingpong(1, vz_test_scale(950000));
}

static void test_pingpong_four_tokens(void **st)
{
	(void)st;
	pingpong(4, vz_test_scale(12500));
}

/* ---- foreign posters with random gaps ------------------------------------ */

#define POSTERS 2

struct seq_payload {
	uint32_t poster;
	uint64_t seq;
};

struct sink {
	uint64_t next[POSTERS];
};

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct sink *k = state;
	struct seq_payload p;

	(void)self;
	if (vz_msg_type(m) != MSG_SEQ)
		return;
	memcpy(&p, vz_msg_data(m), sizeof p);
	if (p.poster >= POSTERS || p.seq != k->next[p.poster])
		atomic_fetch_add(&errors, 1);
	else
		k->next[p.poster]++;
	atomic_fetch_add_explicit(&progress, 1, memory_order_release);
}

static const vz_actor_spec sink_spec = {
    .name = "sink",
    .state_size = sizeof(struct sink),
    .receive = sink_receive,
};

struct poster_arg {
	vz_runtime *rt;
	vz_ref sinks[2];
	uint32_t id;
	uint64_t count, seed, nomem;
};

/* Foreign thread: count sequenced posts alternating between the two
 * sinks, with random gaps; retries on VZ_ENOMEM (foreign pool cap). */
static void *poster(void *arg)
{
	struct poster_arg *a = arg;
	uint64_t rng = a->seed;

	for (uint64_t i = 0; i < a->count;) {
		struct seq_payload p = {a->id, i / 2};
		uint64_t r = xorshift(&rng);
		int rc = vz_post(a->rt, a->sinks[i % 2], MSG_SEQ, &p, sizeof p);

		if (rc == VZ_ENOMEM) { /* foreign pool at its cap: retry */
			a->nomem++;
			sched_yield();
			continue;
		}
		if (rc != 0) {
			atomic_fetch_add(&errors, 1);
			return NULL;
		}
		i++;
		/* Mostly short gaps (the shard is awake or about to sleep),
		 * sometimes long enough that it surely sleeps. */
		if ((r & 15) == 0)
			usleep((useconds_t)(50 + (r >> 8) % 200));
		else
			spin_ns((r >> 8) % 30001);
	}
	return NULL;
}

static void test_foreign_posts_with_gaps(void **st)
{
	vz_runtime *rt = make_rt(2);
	struct poster_arg pa[POSTERS];
	pthread_t th[POSTERS];
	uint64_t count = vz_test_scale(100000); /* per poster, split over both sinks */
	uint64_t s0, w0, s1, w1, t0, t1;
	vz_ref sinks[2];

	(void)st;
	for (unsigned s = 0; s < 2; s++)
		assert_int_equal(vz_spawn(rt, s, &sink_spec, NULL, &sinks[s]), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	sleeps_total(rt, &s0, &w0);
	t0 = vz_test_now_ns();
	for (unsigned i = 0; i < POSTERS; i++) {
		pa[i] = (struct poster_arg){
		    rt, {sinks[0], sinks[1]}, i, count, 0x2545f4914f6cdd1dull * (i + 1), 0};
		assert_int_equal(pthread_create(&th[i], NULL, poster, &pa[i]), 0);
	}
	wait_progress(rt, POSTERS * count);
	for (unsigned i = 0; i < POSTERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	t1 = vz_test_now_ns();
	sleeps_total(rt, &s1, &w1);
	print_shards(rt, "foreign:");
	print_message("foreign posts %u x %llu: %llu sleeps in %.2f s = %.0f sleep/wake "
		      "cycles/s\n",
		      POSTERS, (unsigned long long)count, (unsigned long long)(s1 - s0),
		      (double)(t1 - t0) / 1e9, (double)(s1 - s0) / ((double)(t1 - t0) / 1e9));
	assert_int_equal(atomic_load(&errors), 0);
	assert_true(s1 - s0 > 0);
	finish(rt, POSTERS * count);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pingpong_one_token),
	    cmocka_unit_test(test_pingpong_four_tokens),
	    cmocka_unit_test(test_foreign_posts_with_gaps),
	};

	vz_test_watchdog(300);
	if (getenv("VZ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VZ_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
