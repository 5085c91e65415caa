// SPDX-License-Identifier: MIT
/*
 * Cross-shard backpressure: what happens when a ring between two shards is
 * full. Sending never blocks and never drops (the message waits in the
 * sender's outbox), so the one way to lose progress is a shard asleep while
 * the ring it must drain is full and its peer spins waiting for room.
 *
 * The ring into a shard carries two things: messages for its actors and
 * blocks of its own pool coming home (returns: of messages whose payload
 * was too long to travel inline in a slot). Returns wake nobody. These
 * tests fill a ring with returns while its reader sleeps, then need that
 * reader: a reply that cannot fit behind the returns must still arrive, and
 * the shard holding left-over returns must still get to sleep.
 *
 * Then floods at scale: two and three shards sending to each other
 * through 64-entry rings with small send batches (FIFO per pair, nothing
 * lost, ring-full and overflow counted, conservation); bounded receivers
 * whose senders get VZ_EFULL and retry; and steady traffic that must not
 * allocate once warmed up (pool_refills stays put).
 */
#include "testutil.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "io/io.h"
#include "slot_peek.h"

enum { MSG_GO = VZ_MSG_USER, MSG_DATA, MSG_ACK };

#define RING  64u	  /* ring_entries: small so a flood overflows it */
#define BURST (RING + 1u) /* one more message than the ring holds */
/* The burst's payload: past what a ring slot carries inline, so each
 * message travels as a block of the flooder's pool and comes home. */
#define BURST_PAYLOAD 64u
/* Ring into the flooder's shard: returns travel several to a slot
 * (core/xshard/xshard.h), so BURST of them fill 8 slots. */
#define RET_RING 8u

/* Shared between the test thread and the actors of one test. */
static struct {
	atomic_int gate;     /* opened by the test thread */
	atomic_int inside;   /* the receiver is blocked in its first message */
	atomic_int acked;    /* the flooder got its reply */
	atomic_int want_ack; /* the receiver replies after the whole burst */
	vz_ref receiver;
} g;

/*
 * "Never" bounds on a loaded machine. Each shard thread is pinned to its
 * CPU, and a pinned thread can stay runnable but unscheduled for seconds:
 * on the 2-CPU test machine under load, a thread pinned to CPU 1 doing
 * nothing but usleep(1000) saw gaps of 8.3 and 11.3 s, and in the same
 * seconds this file's shard 1 sat runnable (state R) with its wake-up
 * token delivered, while shard 0 spun on the full ring: the old fixed
 * 10 s bound reported that as a lost wake-up. A lost wake-up leaves the
 * thread that must act blocked in its backend (state S in /proc); a
 * starved one is runnable. So a bound that passes while a thread whose
 * name starts with `who` is runnable moves on by another NEVER_NS, up to
 * NEVER_CAP_NS in all (within the program's watchdog), and only a bound
 * that passes with those threads blocked (or after the cap) fails.
 */
#define NEVER_NS     (10ull * 1000000000u)
#define NEVER_CAP_NS (60ull * 1000000000u)

struct never {
	uint64_t start, end;
	const char *who; /* thread name prefix: "vz-shard1", or "vz-shard" for any */
};

static void never_init(struct never *n, const char *who)
{
	n->start = vz_test_now_ns();
	n->end = n->start + NEVER_NS;
	n->who = who;
}

/* 'R' if a thread of this process whose name starts with `who` is
 * runnable, else the state of the last one found ('?' if none). */
static char thread_state(const char *who)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	char state = '?';

	if (!d)
		return state;
	while ((e = readdir(d)) && state != 'R') {
		char path[300], buf[512], *p;
		FILE *f;
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = 0;
		/* "tid (comm) S ...": comm has no ')' here (vz-shardN) */
		p = strchr(buf, '(');
		if (!p || strncmp(p + 1, who, strlen(who)) != 0 || !(p = strrchr(buf, ')')) ||
		    !p[1] || !p[2])
			continue;
		state = p[2];
	}
	closedir(d);
	return state;
}

/* Has the bound passed with the threads that must act not runnable? */
static bool never_passed(struct never *n, char *state)
{
	uint64_t now = vz_test_now_ns();

	*state = '-';
	if (now < n->end)
		return false;
	*state = thread_state(n->who);
	if (*state == 'R' && now - n->start < NEVER_CAP_NS) {
		print_message("%s runnable but not run for %.1f s: the machine starves it; "
			      "waiting on\n",
			      n->who, (double)(now - n->start) / 1e9);
		n->end = now + NEVER_NS;
		return false;
	}
	return true;
}

/* Wait for *flag within a "never" bound (above). Returns 1 when set. */
static int wait_flag_never(atomic_int *flag, const char *who, char *state)
{
	struct never n;

	never_init(&n, who);
	while (!atomic_load(flag)) {
		if (never_passed(&n, state))
			return 0;
		usleep(100);
	}
	return 1;
}

/* Receiver (shard 0): blocks in its first message until the gate opens, so
 * the flooder finishes publishing and goes to sleep meanwhile; after the
 * whole burst it replies once when asked to. */
struct receiver {
	uint64_t n;
};

static void receiver_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct receiver *r = state;

	if (vz_msg_type(m) != MSG_DATA)
		return;
	if (r->n == 0) {
		atomic_store(&g.inside, 1);
		while (!atomic_load(&g.gate))
			usleep(100);
	}
	if (++r->n == BURST && atomic_load(&g.want_ack))
		assert_int_equal(vz_reply(self, m, MSG_ACK, NULL, 0), 0);
}

static const vz_actor_spec receiver_spec = {
    .name = "receiver",
    .state_size = sizeof(struct receiver),
    .receive = receiver_receive,
};

/* Flooder (shard 1): sends the burst on MSG_GO, notes the reply. */
static void flooder_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) == MSG_GO) {
		static const unsigned char payload[BURST_PAYLOAD];

		for (unsigned i = 0; i < BURST; i++)
			assert_int_equal(
			    vz_send(self, g.receiver, MSG_DATA, payload, sizeof payload), 0);
	} else if (vz_msg_type(m) == MSG_ACK) {
		atomic_store(&g.acked, 1);
	}
}

static const vz_actor_spec flooder_spec = {
    .name = "flooder",
    .receive = flooder_receive,
};

/* Two shards that block as soon as they are idle, a ring of RING entries
 * into the receiver and one of RET_RING into the flooder;
 * the flooder has sent its burst and the receiver holds it back at the
 * gate. Returns with the flooder's shard (1) asleep, its whole burst
 * published, and no wake-up on its way to it: only the case under test can
 * run it again. (A fixed pause here let a starved or spuriously woken
 * shard 1 drain the returns as they came, so the ring never filled.) */
static vz_runtime *setup_burst(int want_ack)
{
	vz_config cfg;
	vz_runtime *rt;
	struct vz__shard *s1;
	struct vz__io_stats io;
	struct never n;
	vz_ref f;
	char st;

	memset(&g, 0, sizeof g);
	atomic_store(&g.want_ack, want_ack);
	vz_test_config(&cfg, 2);
	cfg.ring_entries = RING;
	cfg.shards[1].ring_entries = RET_RING;
	cfg.send_batch = 8;
	cfg.idle_policy = VZ_IDLE_SLEEP;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &receiver_spec, NULL, &g.receiver), 0);
	assert_int_equal(vz_spawn(rt, 1, &flooder_spec, NULL, &f), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, f, MSG_GO, NULL, 0), 0);
	if (!wait_flag_never(&g.inside, "vz-shard", &st))
		fail_msg("the receiver never got the burst (shard threads: %c)", st);
	/* The receiver took the first message off the ring, so the other
	 * RING fit: the flooder's outbox empties and it goes to sleep. Wait
	 * until the whole burst is in the ring (the slot of the last message
	 * carries its sequence once published: slot_published()),
	 * shard 1 has announced its sleep (sleeping == 1: set before its last
	 * re-check, cleared only by a waker or on its way out of a wait) and
	 * no wake-up token is in flight to it (sent == consumed: a token left
	 * from an earlier race would make it run a turn now). Seq_cst load of
	 * sleeping before the io stats: reading the shard's store of 1 orders
	 * our read of its io pointer after the shard set it (as in
	 * vz__wake()). */
	s1 = rt->shards[1];
	never_init(&n, "vz-shard1");
	for (;;) {
		if (slot_published(rt->shards[0]->in[1], BURST) &&
		    atomic_load_explicit(&s1->sleeping, memory_order_seq_cst) == 1) {
			vz__io_stats(s1->io, &io);
			if (io.wakes_sent == io.wakes_consumed)
				break;
		}
		if (never_passed(&n, &st))
			fail_msg("shard 1 never went to sleep after its burst (state %c)", st);
		usleep(100);
	}
	return rt;
}

static void finish(vz_runtime *rt)
{
	vz_shard_stats t;
	uint64_t foreign;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* The receiver's BURST returns fill the ring back to the sleeping flooder
 * (returns wake nobody), then its reply finds that ring full. The reply
 * must still arrive: the flooder has to be woken to make room. The bound
 * is a "never arrived" bound (never_passed()), not a timing. */
static void test_reply_behind_returns(void **st)
{
	vz_runtime *rt;
	vz_shard_stats s0;
	char state;

	(void)st;
	rt = setup_burst(1);
	atomic_store(&g.gate, 1);
	if (!wait_flag_never(&g.acked, "vz-shard1", &state)) {
		vz_stats_shard(rt, 0, &s0);
		fail_msg("reply never arrived: shard 0 made %llu turns, %llu ring-full "
			 "events, shard 1 stays blocked (thread state %c, sleeping %u: "
			 "lost wake-up)",
			 (unsigned long long)s0.turns, (unsigned long long)s0.ring_full, state,
			 (unsigned)atomic_load(&rt->shards[1]->sleeping));
	}
	assert_int_equal(vz_stats_shard(rt, 0, &s0), 0);
	assert_true(s0.ring_full > 0); /* the case under test did happen */
	finish(rt);
}

/* Same burst without a reply: only returns are left over in the receiver's
 * outbox. That shard has nothing to do and must get to sleep, which it
 * cannot while the ring stays full: the flooder must be woken to drain it.
 * Checked by the receiver's shard blocking at least once after the burst
 * was handled (a "never" bound, never_passed()). */
static void test_returns_only_overflow_sleeps(void **st)
{
	vz_runtime *rt;
	vz_shard_stats s0;
	uint64_t sleeps0;
	struct never n;
	char state;

	(void)st;
	rt = setup_burst(0);
	assert_int_equal(vz_stats_shard(rt, 0, &s0), 0);
	sleeps0 = s0.sleeps;
	atomic_store(&g.gate, 1);
	/* shard 1 must drain the ring before shard 0 can sleep */
	never_init(&n, "vz-shard1");
	do {
		assert_int_equal(vz_stats_shard(rt, 0, &s0), 0);
		if (never_passed(&n, &state))
			fail_msg("shard 0 never slept after the burst: %llu turns, %llu ring-full "
				 "events (spinning on a ring its sleeping peer never drains; "
				 "shard 1 thread state %c)",
				 (unsigned long long)s0.turns, (unsigned long long)s0.ring_full,
				 state);
		usleep(1000);
	} while (s0.handled < BURST || s0.sleeps == sleeps0);
	assert_true(s0.ring_full > 0);
	finish(rt);
}

/* ---- meshes of small rings, flooded both ways ----------------------------- */

#define MESH_MAX	 3
#define MESH_BURST	 500u	 /* sends per receive: several rings' worth */
#define MESH_PAUSE_EVERY 4096u	 /* the receiver stalls now and then ... */
#define MESH_PAUSE_NS	 100000u /* ... so the rings into it surely fill */

struct mesh_msg {
	uint32_t from_shard;
	uint64_t seq;
};

static atomic_int mesh_errors;
static atomic_ulong mesh_received;

/* Busy-wait ns nanoseconds (the calling shard stays busy). */
static void spin_ns(uint64_t ns)
{
	uint64_t until = vz_test_now_ns() + ns;

	while (vz_test_now_ns() < until)
		;
}

/* One per shard: checks the sequence of every sending shard (one sender
 * actor per ordered pair, so per-shard order is per-pair order). */
struct mesh_sink {
	uint64_t next[MESH_MAX];
	uint64_t n;
};

static void mesh_sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct mesh_sink *k = state;
	struct mesh_msg mm;

	(void)self;
	if (vz_msg_type(m) != MSG_DATA)
		return;
	memcpy(&mm, vz_msg_data(m), sizeof mm);
	if (mm.from_shard >= MESH_MAX || mm.seq != k->next[mm.from_shard])
		atomic_fetch_add(&mesh_errors, 1);
	else
		k->next[mm.from_shard]++;
	if (++k->n % MESH_PAUSE_EVERY == 0)
		spin_ns(MESH_PAUSE_NS);
	atomic_fetch_add_explicit(&mesh_received, 1, memory_order_release);
}

static const vz_actor_spec mesh_sink_spec = {
    .name = "mesh-sink",
    .state_size = sizeof(struct mesh_sink),
    .receive = mesh_sink_receive,
};

/* One per ordered pair of shards: sends `count` sequenced messages to the
 * sink of its destination, MESH_BURST per turn, re-triggering itself. */
struct mesh_src {
	vz_ref sink;
	uint32_t shard;
	uint64_t seq, count;
};

/* arg: a struct mesh_src with sink and count; the shard is filled in. */
static int mesh_src_init(vz_actor *self, void *state, const void *arg)
{
	memcpy(state, arg, sizeof(struct mesh_src));
	((struct mesh_src *)state)->shard = vz_actor_shard(self);
	return 0;
}

static void mesh_src_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct mesh_src *s = state;

	if (vz_msg_type(m) != MSG_GO)
		return;
	for (unsigned i = 0; i < MESH_BURST && s->seq < s->count; i++, s->seq++) {
		struct mesh_msg mm = {s->shard, s->seq};

		if (vz_send(self, s->sink, MSG_DATA, &mm, sizeof mm) != 0) {
			atomic_fetch_add(&mesh_errors, 1);
			return;
		}
	}
	if (s->seq < s->count && vz_send(self, vz_self(self), MSG_GO, NULL, 0) != 0)
		atomic_fetch_add(&mesh_errors, 1);
}

static const vz_actor_spec mesh_src_spec = {
    .name = "mesh-src",
    .state_size = sizeof(struct mesh_src),
    .init = mesh_src_init,
    .receive = mesh_src_receive,
};

/* Every thread of this process: scheduler state (R running/runnable, S
 * blocked), last CPU, CPU time and where it blocks, from /proc. Tells a
 * shard blocked in its backend (a lost wake-up) from one that is runnable
 * but not getting a CPU. */
static void dump_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300], buf[1024], wchan[64] = "";
		char *p;
		FILE *f;
		char state = '?';
		unsigned long utime = 0, stime = 0;
		int cpu = -1;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
		if (!(f = fopen(path, "r")))
			continue;
		if (fgets(buf, sizeof buf, f) && (p = strrchr(buf, ')'))) {
			/* fields after the name: state(3) ... utime(14) stime(15)
			 * ... processor(39) */
			sscanf(p + 2,
			       "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d "
			       "%*d %*d %*d %*d %*u %*u %*d %*u %*u %*u %*u %*u %*u %*u %*u "
			       "%*u %*u %*u %*u %*u %*d %d",
			       &state, &utime, &stime, &cpu);
		}
		fclose(f);
		snprintf(path, sizeof path, "/proc/self/task/%s/wchan", e->d_name);
		if ((f = fopen(path, "r"))) {
			if (!fgets(wchan, sizeof wchan, f))
				wchan[0] = 0;
			fclose(f);
		}
		print_message("  thread %s: state %c cpu %d utime %lu stime %lu wchan %s\n",
			      e->d_name, state, cpu, utime, stime, wchan);
	}
	closedir(d);
}

/* Per-shard counters, twice half a second apart, so a stall shows which
 * shard is asleep, spinning, or stuck inside a turn. */
static void dump_shards(vz_runtime *rt)
{
	for (int round = 0; round < 2; round++) {
		dump_threads();
		for (unsigned i = 0; i < vz_runtime_shards(rt); i++) {
			vz_shard_stats s;

			vz_stats_shard(rt, i, &s);
			print_message(
			    "shard %u: turns %llu idle %llu sleeps %llu handled %llu "
			    "recv_remote %llu sent_remote %llu ring_full %llu "
			    "overflow %llu wakeups_sent %llu\n",
			    i, (unsigned long long)s.turns, (unsigned long long)s.idle_turns,
			    (unsigned long long)s.sleeps, (unsigned long long)s.handled,
			    (unsigned long long)s.received_remote,
			    (unsigned long long)s.sent_remote, (unsigned long long)s.ring_full,
			    (unsigned long long)s.overflow_queued,
			    (unsigned long long)s.wakeups_sent);
		}
		if (round == 0)
			usleep(500 * 1000);
	}
}

/* Wait for *c to reach want. No progress for 10 s prints the threads and
 * counters once (on this shared 2-CPU machine a runnable shard has been
 * seen to get no CPU for over 10 s); no progress for 60 s is a lost
 * wake-up or a lost message: report and exit (a failed test would leave
 * this runtime's threads running into the next test). */
static void wait_counter(atomic_ulong *c, uint64_t want, vz_runtime *rt)
{
	uint64_t last = 0, last_change = vz_test_now_ns(), v;
	bool reported = false;

	while ((v = atomic_load_explicit(c, memory_order_acquire)) < want) {
		uint64_t quiet = vz_test_now_ns() - last_change;

		if (v != last) {
			last = v;
			last_change = vz_test_now_ns();
		} else if (quiet > 60ull * 1000000000u) {
			dump_shards(rt);
			if (getenv("VZ_TEST_STALL_PAUSE")) /* time to attach a debugger */
				sleep((unsigned)atoi(getenv("VZ_TEST_STALL_PAUSE")));
			print_message("no progress for 60 s at %llu of %llu: lost wake-up or "
				      "lost message\n",
				      (unsigned long long)v, (unsigned long long)want);
			_exit(1);
		} else if (quiet > 10ull * 1000000000u && !reported) {
			print_message("no progress for 10 s at %llu of %llu, still waiting:\n",
				      (unsigned long long)v, (unsigned long long)want);
			dump_shards(rt);
			reported = true;
		}
		usleep(1000);
	}
}

/* Every shard floods every other through RING-entry rings and send
 * batches of 4; checks order, completeness, counters, conservation. */
static void mesh_flood(unsigned nshards, vz_idle_policy idle)
{
	uint64_t count = vz_test_scale(60000) / (nshards - 1); /* per ordered pair */
	vz_ref sinks[MESH_MAX], srcs[MESH_MAX * MESH_MAX];
	unsigned nsrc = 0;
	vz_shard_stats t;
	uint64_t foreign, pairs = (uint64_t)nshards * (nshards - 1);
	vz_config cfg;
	vz_runtime *rt;

	atomic_store(&mesh_errors, 0);
	atomic_store(&mesh_received, 0);
	vz_test_config(&cfg, nshards);
	cfg.ring_entries = RING;
	cfg.send_batch = 4;
	cfg.idle_policy = idle;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	for (unsigned s = 0; s < nshards; s++)
		assert_int_equal(vz_spawn(rt, s, &mesh_sink_spec, NULL, &sinks[s]), 0);
	for (unsigned s = 0; s < nshards; s++)
		for (unsigned d = 0; d < nshards; d++) {
			struct mesh_src a = {sinks[d], 0, 0, count};

			if (d == s)
				continue;
			assert_int_equal(vz_spawn(rt, s, &mesh_src_spec, &a, &srcs[nsrc]), 0);
			nsrc++;
		}
	assert_int_equal(vz_runtime_start(rt), 0);
	for (unsigned i = 0; i < nsrc; i++)
		assert_int_equal(vz_post(rt, srcs[i], MSG_GO, NULL, 0), 0);
	wait_counter(&mesh_received, pairs * count, rt);
	assert_int_equal(atomic_load(&mesh_errors), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	print_message("mesh %u shards, %llu msgs/pair: ring_full %llu, overflow_queued %llu, "
		      "sleeps %llu, wakeups_sent %llu\n",
		      nshards, (unsigned long long)count, (unsigned long long)t.ring_full,
		      (unsigned long long)t.overflow_queued, (unsigned long long)t.sleeps,
		      (unsigned long long)t.wakeups_sent);
	/* the backpressure path was taken */
	assert_true(t.ring_full > 0);
	assert_true(t.overflow_queued > 0);
	/* Every cross-shard message arrived through a ring. overflow_queued
	 * counts each parked block once: messages, and blocks going home
	 * (returns share the outbox), at most one return per delivery. */
	assert_int_equal(t.received_remote, pairs * count);
	assert_true(t.sent_remote >= pairs * count);
	assert_true(t.overflow_queued <= t.sent_remote + t.received_remote);
	assert_int_equal(foreign, nsrc);
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, 0);
	assert_int_equal(atomic_load(&mesh_received), pairs * count);
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

static void test_mesh_two_shards(void **st)
{
	(void)st;
	mesh_flood(2, VZ_IDLE_SPIN_THEN_SLEEP);
}

static void test_mesh_three_shards(void **st)
{
	(void)st;
	mesh_flood(3, VZ_IDLE_SPIN_THEN_SLEEP);
}

static void test_mesh_three_shards_sleepy(void **st)
{
	(void)st;
	mesh_flood(3, VZ_IDLE_SLEEP);
}

/* ---- bounded receivers: VZ_EFULL, retry later ------------------------------ */

#define BOUND 16u

static atomic_ulong bounded_full_seen; /* VZ_EFULL returns seen by senders */

/* Slow, bounded: its mailbox fills while the senders flood. */
static void bounded_sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	spin_ns(2000);
	mesh_sink_receive(self, state, m);
}

static const vz_actor_spec bounded_sink_spec = {
    .name = "bounded-sink",
    .state_size = sizeof(struct mesh_sink),
    .receive = bounded_sink_receive,
    .mailbox_limit = BOUND,
};

/* Sends until VZ_EFULL, then retries a little later from a 100 us timer
 * (a refused send changed nothing, so the same sequence number goes
 * again). A timer rather than a self-send so the shard can sleep meanwhile
 * instead of spinning on retries. */
static void retry_src_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct mesh_src *s = state;
	vz_timer t;

	if (vz_msg_type(m) != MSG_GO && vz_msg_type(m) != VZ_MSG_TIMER)
		return;
	while (s->seq < s->count) {
		struct mesh_msg mm = {s->shard, s->seq};
		int rc = vz_send(self, s->sink, MSG_DATA, &mm, sizeof mm);

		if (rc == VZ_EFULL) {
			atomic_fetch_add_explicit(&bounded_full_seen, 1, memory_order_relaxed);
			if (vz_timer_arm(self, 100000, 0, 0, &t) != 0)
				atomic_fetch_add(&mesh_errors, 1);
			return;
		}
		if (rc != 0) {
			atomic_fetch_add(&mesh_errors, 1);
			return;
		}
		s->seq++;
	}
}

static const vz_actor_spec retry_src_spec = {
    .name = "retry-src",
    .state_size = sizeof(struct mesh_src),
    .init = mesh_src_init,
    .receive = retry_src_receive,
};

/* Bounded sinks on both shards; each shard has a sender to the other
 * shard's sink and to its own (so local and cross-shard admission are both
 * exercised). FIFO per pair, nothing lost, mailbox_full counted. */
static void test_bounded_retry(void **st)
{
	uint64_t count = vz_test_scale(20000);
	vz_ref sinks[2], srcs[4];
	vz_shard_stats t;
	uint64_t foreign;
	vz_config cfg;
	vz_runtime *rt;
	unsigned n = 0;

	(void)st;
	atomic_store(&mesh_errors, 0);
	atomic_store(&mesh_received, 0);
	atomic_store(&bounded_full_seen, 0);
	vz_test_config(&cfg, 2);
	cfg.ring_entries = RING;
	cfg.send_batch = 4;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	for (unsigned s = 0; s < 2; s++)
		assert_int_equal(vz_spawn(rt, s, &bounded_sink_spec, NULL, &sinks[s]), 0);
	/* The sink tells senders apart by their shard: one sender per
	 * (shard, sink), slots 0 and 1 of its sequence table. */
	for (unsigned s = 0; s < 2; s++)
		for (unsigned d = 0; d < 2; d++) {
			struct mesh_src a = {sinks[d], 0, 0, count};

			assert_int_equal(vz_spawn(rt, s, &retry_src_spec, &a, &srcs[n]), 0);
			n++;
		}
	assert_int_equal(vz_runtime_start(rt), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(vz_post(rt, srcs[i], MSG_GO, NULL, 0), 0);
	wait_counter(&mesh_received, 4 * count, rt);
	assert_int_equal(atomic_load(&mesh_errors), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	print_message("bounded: %llu VZ_EFULL seen by senders, mailbox_full %llu\n",
		      (unsigned long long)atomic_load(&bounded_full_seen),
		      (unsigned long long)t.mailbox_full);
	assert_true(atomic_load(&bounded_full_seen) > 0);
	assert_int_equal(t.mailbox_full, atomic_load(&bounded_full_seen));
	/* refused sends are not counted as sent */
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, 0);
	assert_int_equal(atomic_load(&mesh_received), 4 * count);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* ---- steady state allocates nothing --------------------------------------- */

#define NTOKENS 8u

static atomic_ulong hops_done;

/* Bounces tokens to its peer on the other shard, and on every hop also
 * sends itself a local note (local sends come from the same pools). */
struct bouncer {
	vz_ref peer;
	uint64_t notes;
};

static void bouncer_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct bouncer *b = state;
	uint32_t tok;

	switch (vz_msg_type(m)) {
	case MSG_GO:
		memcpy(&b->peer, vz_msg_data(m), sizeof b->peer);
		if (vz_msg_len(m) > sizeof b->peer)
			for (tok = 0; tok < NTOKENS; tok++)
				if (vz_send(self, b->peer, MSG_DATA, &tok, sizeof tok) != 0)
					atomic_fetch_add(&mesh_errors, 1);
		break;
	case MSG_DATA:
		atomic_fetch_add_explicit(&hops_done, 1, memory_order_release);
		if (vz_send(self, b->peer, MSG_DATA, vz_msg_data(m), vz_msg_len(m)) != 0 ||
		    vz_send(self, vz_self(self), MSG_ACK, NULL, 0) != 0)
			atomic_fetch_add(&mesh_errors, 1);
		break;
	case MSG_ACK:
		b->notes++;
		break;
	}
}

static const vz_actor_spec bouncer_spec = {
    .name = "bouncer",
    .state_size = sizeof(struct bouncer),
    .receive = bouncer_receive,
};

static void test_steady_state_no_malloc(void **st)
{
	uint64_t warm = 20000, more = vz_test_scale(200000);
	unsigned char go[sizeof(vz_ref) + 1];
	vz_shard_stats t0, t1;
	vz_config cfg;
	vz_runtime *rt;
	vz_ref a, b;

	(void)st;
	atomic_store(&mesh_errors, 0);
	atomic_store(&hops_done, 0);
	vz_test_config(&cfg, 2);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &bouncer_spec, NULL, &a), 0);
	assert_int_equal(vz_spawn(rt, 1, &bouncer_spec, NULL, &b), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, b, MSG_GO, &a, sizeof a), 0);
	{
		uint64_t end = vz_test_now_ns() + 10ull * 1000000000u;

		do {
			assert_int_equal(vz_stats_shard(rt, 1, &t0), 0);
			assert_true(vz_test_now_ns() < end);
			usleep(100);
		} while (t0.handled < 1);
	}
	memcpy(go, &b, sizeof b);
	go[sizeof b] = 1; /* a serves the tokens */
	assert_int_equal(vz_post(rt, a, MSG_GO, go, sizeof go), 0);
	wait_counter(&hops_done, warm, rt);
	assert_int_equal(vz_stats_total(rt, &t0, NULL), 0);
	wait_counter(&hops_done, warm + more, rt);
	assert_int_equal(vz_stats_total(rt, &t1, NULL), 0);
	print_message("steady state: pool_refills %llu after warm-up, %llu after %llu more hops\n",
		      (unsigned long long)t0.pool_refills, (unsigned long long)t1.pool_refills,
		      (unsigned long long)more);
	assert_int_equal(atomic_load(&mesh_errors), 0);
	assert_true(t1.sent_remote >= warm + more); /* the traffic did happen */
	assert_int_equal(t1.pool_refills, t0.pool_refills);
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t1, NULL), 0);
	assert_int_equal(t1.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_behind_returns),
	    cmocka_unit_test(test_returns_only_overflow_sleeps),
	    cmocka_unit_test(test_mesh_two_shards),
	    cmocka_unit_test(test_mesh_three_shards),
	    cmocka_unit_test(test_mesh_three_shards_sleepy),
	    cmocka_unit_test(test_bounded_retry),
	    cmocka_unit_test(test_steady_state_no_malloc),
	};

	vz_test_watchdog(300);
	if (getenv("VZ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VZ_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
