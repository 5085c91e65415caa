// SPDX-License-Identifier: MIT
/*
 * Per-producer lanes (runtime/core/lanes.c, include/veloz/producer.h) under
 * real threads:
 *   - the bound: with foreign_lanes = 4, a fifth vz_producer is refused
 *     with VZ_ENOLANE (and nothing changes), a thread's vz_post() falls
 *     back to the inbox and is still delivered, and a destroyed producer's
 *     lane comes free for the next one;
 *   - churn past the bound: waves of threads that each post with vz_post()
 *     and with a producer of their own to actors on two shards, with
 *     payloads inline in one slot, in several slots and in a block, then
 *     exit; every producer's order is checked per receiver, sent = handled
 *     + dead-lettered, no more than 4 lanes per shard at any time, and
 *     every lane of an exited thread is reclaimed;
 *   - posters racing vz_runtime_stop(): every post returns 0 or
 *     VZ_ESTOPPED, and every accepted one is handled or dead-lettered
 *     before stop returns; producers destroyed after the runtime;
 *   - one thread posting to two runtimes, one destroyed and another made
 *     (perhaps at the same address) while it keeps posting;
 *   - the lane statistics (stats.h): with more posting threads than
 *     lanes, the lanes in use, their high-water mark, the posters that
 *     found none, and the posts taken from lanes and from the inbox, each
 *     exact; under churn, every post counted once as one or the other.
 * Runs under TSan in CI; sizes scale with VZ_STRESS_SCALE.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/lanes.h"

enum { MSG_DATA = VZ_MSG_USER };

#define LANES	    4u	 /* foreign_lanes in these tests */
#define MAX_PROD    512u /* producer ids: 2 per thread */
#define PAYLOAD_MAX 400u

/* What a message carries first; the rest of the payload is filler whose
 * last byte repeats seq's low byte. */
struct head {
	uint32_t pid; /* producer id */
	uint32_t seq; /* per (producer, receiving shard), from 1 */
};

static struct {
	/* next[shard][pid]: the seq the receiver on `shard` expects next
	 * from pid. Receiver threads only (one per shard). */
	uint32_t next[2][MAX_PROD];
	atomic_ulong handled, dead, sent;
} g;

static void reset(void)
{
	memset(g.next, 0, sizeof g.next);
	atomic_store(&g.handled, 0);
	atomic_store(&g.dead, 0);
	atomic_store(&g.sent, 0);
	vz_test_reset_fails();
}

static size_t len_for(uint32_t seq)
{
	if (seq % 7 == 0)
		return PAYLOAD_MAX; /* over VZ_PRODUCER_INLINE: a block */
	if (seq % 3 == 0)
		return 100; /* two slots */
	return sizeof(struct head);
}

static void fill(unsigned char *buf, uint32_t pid, uint32_t seq)
{
	struct head h = {pid, seq};
	size_t len = len_for(seq);

	memset(buf, 0xa5, len);
	memcpy(buf, &h, sizeof h);
	if (len > sizeof h)
		buf[len - 1] = (unsigned char)seq;
}

static void receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct head h;
	unsigned shard = vz_ref_shard(vz_self(self));
	const unsigned char *p = vz_msg_data(m);

	(void)state;
	VZ_TEST_CHECK(vz_msg_len(m) >= sizeof h);
	memcpy(&h, p, sizeof h);
	VZ_TEST_CHECK(h.pid < MAX_PROD);
	VZ_TEST_CHECK(vz_msg_len(m) == len_for(h.seq));
	VZ_TEST_CHECK(vz_msg_len(m) == sizeof h || p[vz_msg_len(m) - 1] == (unsigned char)h.seq);
	/* FIFO per producer: exactly the next one, nothing lost before it,
	 * nothing twice. */
	VZ_TEST_CHECK(h.seq == g.next[shard][h.pid] + 1);
	g.next[shard][h.pid] = h.seq;
	atomic_fetch_add(&g.handled, 1);
}

static const vz_actor_spec sink_spec = {.name = "lane-sink", .receive = receive};

static void dead_letter(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
			int reason)
{
	(void)ctx;
	(void)to;
	(void)type;
	(void)data;
	(void)len;
	(void)reason;
	atomic_fetch_add(&g.dead, 1);
}

static void config(vz_config *cfg)
{
	vz_test_config(cfg, 2);
	cfg->foreign_lanes = LANES;
	cfg->dead_letter = dead_letter;
}

static void make(vz_runtime **rt, vz_ref to[2])
{
	vz_config cfg;

	config(&cfg);
	assert_int_equal(vz_runtime_create(&cfg, rt), 0);
	assert_int_equal(vz_spawn(*rt, 0, &sink_spec, NULL, &to[0]), 0);
	assert_int_equal(vz_spawn(*rt, 1, &sink_spec, NULL, &to[1]), 0);
	assert_int_equal(vz_runtime_start(*rt), 0);
}

/* Wait (bounded by the watchdog) until every post is handled. */
static void settle(void)
{
	while (atomic_load(&g.handled) + atomic_load(&g.dead) != atomic_load(&g.sent))
		sched_yield();
}

static vz_shard_stats stats_of(vz_runtime *rt, unsigned shard)
{
	vz_shard_stats s;

	assert_int_equal(vz_stats_shard(rt, shard, &s), 0);
	return s;
}

/* Wait (bounded by the watchdog) until shard has counted `posts` messages
 * from non-shard threads through lanes or the inbox, and return its stats:
 * each post is counted by the shard when it takes it, once. */
static vz_shard_stats stats_after(vz_runtime *rt, unsigned shard, uint64_t posts)
{
	vz_shard_stats s = stats_of(rt, shard);

	while (s.lane_posts + s.lane_fallback_posts < posts) {
		sched_yield();
		s = stats_of(rt, shard);
	}
	assert_int_equal(s.lane_posts + s.lane_fallback_posts, posts);
	return s;
}

static void finish(vz_runtime *rt)
{
	assert_int_equal(vz_runtime_stop(rt), 0);
	/* stop returned: everything accepted was handled or dead-lettered */
	assert_int_equal(atomic_load(&g.handled) + atomic_load(&g.dead), atomic_load(&g.sent));
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
}

/* One post with producer pid through p (NULL: vz_post()); seq advances
 * only when the post is accepted. */
static int post_one(vz_runtime *rt, vz_producer *p, vz_ref to, uint32_t pid, uint32_t *seq)
{
	unsigned char buf[PAYLOAD_MAX];
	int rc;

	fill(buf, pid, *seq + 1);
	rc = p ? vz_producer_post(p, to, MSG_DATA, buf, len_for(*seq + 1))
	       : vz_post(rt, to, MSG_DATA, buf, len_for(*seq + 1));
	if (rc == 0) {
		(*seq)++;
		atomic_fetch_add(&g.sent, 1);
	}
	return rc;
}

/* ---- the bound ---------------------------------------------------------- */

struct one_post {
	vz_runtime *rt;
	vz_ref to;
	int rc;
};

static void *post_from_new_thread(void *arg)
{
	struct one_post *o = arg;
	uint32_t seq = 0;

	o->rc = post_one(o->rt, NULL, o->to, 100, &seq);
	return NULL;
}

static void test_bound_fallback_and_reuse(void **st)
{
	vz_runtime *rt;
	vz_ref to[2];
	vz_producer *p[LANES + 1];
	uint32_t seq[LANES + 1] = {0};
	struct one_post o;
	pthread_t th;

	(void)st;
	reset();
	/* The bound itself is bounded, and the refusal names the key. */
	{
		vz_config cfg;
		vz_config_error why;

		config(&cfg);
		cfg.foreign_lanes = VZ_FOREIGN_LANES_MAX + 1;
		cfg.create_error = &why;
		assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ECONFIG);
		assert_string_equal(why.key, "runtime.foreign_lanes");
	}
	make(&rt, to);
	for (unsigned i = 0; i <= LANES; i++)
		assert_int_equal(vz_producer_create(rt, &p[i]), 0);
	for (unsigned i = 0; i < LANES; i++)
		assert_int_equal(post_one(rt, p[i], to[0], i, &seq[i]), 0);
	assert_int_equal(vz__lanes_count(rt, 0), LANES);
	/* No lane left on shard 0: refused, nothing sent ... */
	assert_int_equal(post_one(rt, p[LANES], to[0], LANES, &seq[LANES]), VZ_ENOLANE);
	assert_int_equal(seq[LANES], 0);
	/* ... but shard 1 has lanes, */
	assert_int_equal(post_one(rt, p[LANES], to[1], LANES, &seq[LANES]), 0);
	/* and a thread's vz_post() takes the inbox instead. */
	o.rt = rt;
	o.to = to[0];
	assert_int_equal(pthread_create(&th, NULL, post_from_new_thread, &o), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(o.rc, 0);
	/* A producer given back: its lane comes free once shard 0 has taken
	 * what it posted. */
	assert_int_equal(vz_producer_destroy(p[0]), 0);
	while (vz__lanes_count(rt, 0) != LANES - 1)
		sched_yield();
	seq[LANES] = 0; /* its count towards shard 0 starts at 1 */
	assert_int_equal(post_one(rt, p[LANES], to[0], LANES + 1, &seq[LANES]), 0);
	assert_int_equal(vz__lanes_count(rt, 0), LANES);
	settle();
	finish(rt);
	/* Producers outliving their runtime: only their memory is left. */
	for (unsigned i = 1; i <= LANES; i++)
		assert_int_equal(vz_producer_destroy(p[i]), 0);
}

/* ---- churn past the bound ------------------------------------------------ */

struct churner {
	vz_runtime *rt;
	vz_ref to[2];
	uint32_t pid; /* implicit; pid + 1 for its producer */
	unsigned posts;
	atomic_uint *max_lanes;
};

static void note_lanes(struct churner *c)
{
	for (unsigned s = 0; s < 2; s++) {
		unsigned n = vz__lanes_count(c->rt, s), m = atomic_load(c->max_lanes);

		while (n > m && !atomic_compare_exchange_weak(c->max_lanes, &m, n))
			;
	}
}

static void *churn(void *arg)
{
	struct churner *c = arg;
	uint32_t seq[2][2] = {{0}}; /* [implicit/explicit][shard] */
	vz_producer *p = NULL;

	if (vz_producer_create(c->rt, &p) != 0)
		p = NULL;
	for (unsigned i = 0; i < c->posts; i++) {
		unsigned s = i & 1;
		int rc = post_one(c->rt, NULL, c->to[s], c->pid, &seq[0][s]);

		VZ_TEST_CHECK(rc == 0); /* implicit posts fall back, never refused */
		if (p) {
			rc = post_one(c->rt, p, c->to[s], c->pid + 1, &seq[1][s]);
			VZ_TEST_CHECK(rc == 0 || rc == VZ_ENOLANE);
		}
		if (i % 64 == 0)
			note_lanes(c);
	}
	vz_producer_destroy(p);
	return NULL;
}

static void test_churn_past_bound(void **st)
{
	enum { WAVES = 8, PER_WAVE = 12 };
	vz_runtime *rt;
	vz_ref to[2];
	struct churner c[PER_WAVE];
	pthread_t th[PER_WAVE];
	atomic_uint max_lanes = 0;
	unsigned posts = (unsigned)vz_test_scale(600);

	(void)st;
	reset();
	make(&rt, to);
	for (unsigned w = 0; w < WAVES; w++) {
		for (unsigned t = 0; t < PER_WAVE; t++) {
			c[t] = (struct churner){.rt = rt,
						.to = {to[0], to[1]},
						.pid = 2 * (w * PER_WAVE + t),
						.posts = posts,
						.max_lanes = &max_lanes};
			assert_int_equal(pthread_create(&th[t], NULL, churn, &c[t]), 0);
		}
		for (unsigned t = 0; t < PER_WAVE; t++)
			assert_int_equal(pthread_join(th[t], NULL), 0);
	}
	assert_true(atomic_load(&max_lanes) <= LANES);
	settle();
	/* Every post counted once, through a lane or the inbox: user
	 * messages only here, so they are exactly received_foreign. */
	{
		vz_shard_stats s0 = stats_of(rt, 0), s1 = stats_of(rt, 1);

		assert_int_equal(s0.received_foreign + s1.received_foreign, atomic_load(&g.sent));
		for (unsigned s = 0; s < 2; s++) {
			vz_shard_stats x =
			    stats_after(rt, s, s ? s1.received_foreign : s0.received_foreign);

			assert_true(x.lanes_hwm <= LANES);
			assert_true(x.lanes_active <= x.lanes_hwm);
		}
	}
	/* Every lane was of a thread or producer that is gone: all come back. */
	while (vz__lanes_count(rt, 0) || vz__lanes_count(rt, 1))
		sched_yield();
	for (unsigned s = 0; s < 2; s++) {
		vz_shard_stats x = stats_of(rt, s);

		/* Freed lanes are no longer polled. */
		while (x.lanes_active) {
			sched_yield();
			x = stats_of(rt, s);
		}
		assert_int_equal(x.lanes_in_use, 0);
	}
	vz_test_assert_no_fails();
	finish(rt);
}

/* ---- posters racing stop ------------------------------------------------- */

struct racer {
	vz_runtime *rt;
	vz_ref to[2];
	uint32_t pid;
	vz_producer *p; /* destroyed by the test after the runtime */
	atomic_int *go;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	uint32_t seq[2][2] = {{0}};
	bool stopped_imp = false, stopped_exp = false;

	while (!atomic_load(r->go))
		sched_yield();
	for (unsigned i = 0; !stopped_imp || !stopped_exp; i++) {
		unsigned s = i & 1;
		int rc;

		if (!stopped_imp) {
			rc = post_one(r->rt, NULL, r->to[s], r->pid, &seq[0][s]);
			if (rc != 0 && rc != VZ_ESTOPPED) {
				/* Say which error, then stop posting: one report. */
				fprintf(stderr, "implicit post: %s\n", vz_errname(rc));
				VZ_TEST_CHECK(rc == 0 || rc == VZ_ESTOPPED);
				rc = VZ_ESTOPPED;
			}
			stopped_imp = rc == VZ_ESTOPPED;
		}
		if (!stopped_exp) {
			rc = post_one(r->rt, r->p, r->to[s], r->pid + 1, &seq[1][s]);
			if (rc != 0 && rc != VZ_ESTOPPED && rc != VZ_ENOLANE) {
				fprintf(stderr, "producer post: %s\n", vz_errname(rc));
				VZ_TEST_CHECK(rc == 0 || rc == VZ_ESTOPPED || rc == VZ_ENOLANE);
				rc = VZ_ESTOPPED;
			}
			stopped_exp = rc == VZ_ESTOPPED;
		}
	}
	return NULL;
}

static void test_posters_racing_stop(void **st)
{
	enum { RACERS = 6 };
	unsigned rounds = (unsigned)vz_test_scale(20);

	(void)st;
	for (unsigned round = 0; round < rounds; round++) {
		vz_runtime *rt;
		vz_ref to[2];
		struct racer r[RACERS];
		pthread_t th[RACERS];
		atomic_int go = 0;
		unsigned long at_stop;

		reset();
		make(&rt, to);
		for (unsigned t = 0; t < RACERS; t++) {
			r[t] =
			    (struct racer){.rt = rt, .to = {to[0], to[1]}, .pid = 2 * t, .go = &go};
			assert_int_equal(vz_producer_create(rt, &r[t].p), 0);
			assert_int_equal(pthread_create(&th[t], NULL, race, &r[t]), 0);
		}
		atomic_store(&go, 1);
		/* Let them post a little, more each round. */
		while (atomic_load(&g.sent) < 50u * (round + 1))
			sched_yield();
		assert_int_equal(vz_runtime_stop(rt), 0);
		at_stop = atomic_load(&g.handled) + atomic_load(&g.dead);
		for (unsigned t = 0; t < RACERS; t++)
			assert_int_equal(pthread_join(th[t], NULL), 0);
		/* Nothing accepted after stop returned that it did not see. */
		assert_int_equal(at_stop, atomic_load(&g.sent));
		assert_int_equal(vz_runtime_destroy(rt), 0);
		for (unsigned t = 0; t < RACERS; t++)
			assert_int_equal(vz_producer_destroy(r[t].p), 0);
		vz_test_assert_no_fails();
	}
}

/* ---- the lane statistics ---------------------------------------------------- */

struct holder {
	vz_runtime *rt;
	vz_ref to;
	uint32_t pid;
	unsigned posts;
	pthread_barrier_t *posted, *release;
};

/* Post, then keep the thread (and with it its lane, if it got one) until
 * the test has looked. */
static void *post_and_hold(void *arg)
{
	struct holder *h = arg;
	uint32_t seq = 0;

	for (unsigned i = 0; i < h->posts; i++)
		VZ_TEST_CHECK(post_one(h->rt, NULL, h->to, h->pid, &seq) == 0);
	pthread_barrier_wait(h->posted);
	pthread_barrier_wait(h->release);
	return NULL;
}

static void test_lane_stats(void **st)
{
	enum { THREADS = LANES + 3 };
	vz_runtime *rt;
	vz_ref to[2];
	struct holder h[THREADS];
	pthread_t th[THREADS];
	pthread_barrier_t posted, release;
	vz_producer *p;
	vz_shard_stats s, none, total;
	uint32_t pseq = 0;
	uint64_t posts = (uint64_t)vz_test_scale(500);

	(void)st;
	reset();
	make(&rt, to);
	assert_int_equal(pthread_barrier_init(&posted, NULL, THREADS + 1), 0);
	assert_int_equal(pthread_barrier_init(&release, NULL, THREADS + 1), 0);
	for (unsigned t = 0; t < THREADS; t++) {
		h[t] = (struct holder){.rt = rt,
				       .to = to[0],
				       .pid = t,
				       .posts = (unsigned)posts,
				       .posted = &posted,
				       .release = &release};
		assert_int_equal(pthread_create(&th[t], NULL, post_and_hold, &h[t]), 0);
	}
	pthread_barrier_wait(&posted);
	settle();
	/* Every thread is alive: the first LANES to ask got a lane each, the
	 * other three found none and posted everything through the inbox. */
	s = stats_after(rt, 0, THREADS * posts);
	assert_int_equal(s.received_foreign, THREADS * posts);
	assert_int_equal(s.lanes_in_use, LANES);
	assert_int_equal(s.lanes_hwm, LANES);
	assert_int_equal(s.lanes_exhausted, THREADS - LANES);
	assert_int_equal(s.lane_posts, LANES * posts);
	assert_int_equal(s.lane_fallback_posts, (THREADS - LANES) * posts);
	assert_true(s.lanes_active <= LANES);
	assert_true(s.lane_doorbells >= LANES); /* a new lane is parked until rung */
	/* An explicit producer finds none either: refused, and counted. */
	assert_int_equal(vz_producer_create(rt, &p), 0);
	assert_int_equal(post_one(rt, p, to[0], THREADS, &pseq), VZ_ENOLANE);
	s = stats_of(rt, 0);
	assert_int_equal(s.lanes_exhausted, THREADS - LANES + 1);
	assert_int_equal(s.lanes_in_use, LANES);
	/* Shard 1 saw none of it. */
	none = stats_of(rt, 1);
	assert_int_equal(none.lanes_in_use + none.lanes_hwm + none.lanes_active +
			     none.lanes_exhausted + none.lane_posts + none.lane_fallback_posts +
			     none.lane_doorbells,
			 0);
	/* The threads exit: their lanes come back, no longer polled; the
	 * high-water mark stays. */
	pthread_barrier_wait(&release);
	for (unsigned t = 0; t < THREADS; t++)
		assert_int_equal(pthread_join(th[t], NULL), 0);
	s = stats_of(rt, 0);
	while (s.lanes_in_use || s.lanes_active) {
		sched_yield();
		s = stats_of(rt, 0);
	}
	assert_int_equal(s.lanes_hwm, LANES);
	/* A producer is not held to its refusal: now it gets a lane. */
	assert_int_equal(post_one(rt, p, to[0], THREADS, &pseq), 0);
	settle();
	s = stats_after(rt, 0, THREADS * posts + 1);
	assert_int_equal(s.lane_posts, LANES * posts + 1);
	assert_int_equal(s.lanes_in_use, 1);
	assert_int_equal(s.lanes_exhausted, THREADS - LANES + 1);
	/* The totals add the shards up. */
	assert_int_equal(vz_stats_total(rt, &total, NULL), 0);
	assert_int_equal(total.lane_posts, s.lane_posts);
	assert_int_equal(total.lane_fallback_posts, s.lane_fallback_posts);
	assert_int_equal(total.lanes_hwm, LANES);
	assert_int_equal(vz_producer_destroy(p), 0);
	pthread_barrier_destroy(&posted);
	pthread_barrier_destroy(&release);
	finish(rt);
}

/* ---- one thread, two runtimes --------------------------------------------- */

static void test_two_runtimes(void **st)
{
	vz_runtime *a, *b, *c;
	vz_ref ta[2], tb[2], tc[2];
	uint32_t sa[2] = {0}, sb[2] = {0}, sc[2] = {0};
	unsigned n = (unsigned)vz_test_scale(3000);

	(void)st;
	reset();
	make(&a, ta);
	make(&b, tb);
	/* The receivers' expectations are per shard and producer id: a's
	 * and b's receivers on the same shard share them, so each runtime
	 * gets its own producer id. */
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(post_one(a, NULL, ta[i & 1], 1, &sa[i & 1]), 0);
		assert_int_equal(post_one(b, NULL, tb[i & 1], 2, &sb[i & 1]), 0);
	}
	settle();
	assert_int_equal(vz_runtime_stop(a), 0);
	assert_int_equal(vz_runtime_destroy(a), 0);
	make(&c, tc); /* may well be at a's address */
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(post_one(b, NULL, tb[i & 1], 2, &sb[i & 1]), 0);
		assert_int_equal(post_one(c, NULL, tc[i & 1], 3, &sc[i & 1]), 0);
	}
	settle();
	assert_int_equal(vz__lanes_count(c, 0), 1);
	finish(c);
	finish(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bound_fallback_and_reuse),
	    cmocka_unit_test(test_churn_past_bound),
	    cmocka_unit_test(test_posters_racing_stop),
	    cmocka_unit_test(test_two_runtimes),
	    cmocka_unit_test(test_lane_stats),
	};

	vz_test_watchdog(500);
	vz_test_warm_up_threads();
	if (getenv("VZ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VZ_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
