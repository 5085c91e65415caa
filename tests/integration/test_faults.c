// SPDX-License-Identifier: MIT
/*
 * The runtime under injected faults and under misuse. Each fault point of
 * util/fault.h that the runtime reaches is armed here while real shard
 * threads run: message and timer pools that cannot grow, cross-shard rings
 * that report full, io_uring setup refused (EPERM, ENOSYS), backend waits
 * interrupted, shard and worker threads that fail to start. For each the
 * test checks that the documented error reaches the caller, that a refused
 * call changed nothing, and that nothing accepted is lost: at the end the
 * runtime's stats balance (sent = handled + dead-lettered) and the test's
 * own count of accepted messages matches what its actors saw plus what the
 * dead-letter hook was given. Misuse beyond tests/unit/test_runtime_api.c:
 * forbidden calls from inside an actor, actor handles used from a foreign
 * thread, concurrent stops, destroy racing a stop, an embedded shard stopped
 * from another thread, calls after stop.
 *
 * The I/O backend comes from VZ_BACKEND (the test runner sets it); the
 * io_uring setup cases unset it in this process, since it overrides the
 * configuration.
 */
#include "testutil.h"

#include "util/fault.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef VZ_FAULT_INJECTION
#error "test_faults needs the runtime built with VZ_FAULT_INJECTION (the default)"
#endif

enum {
	MSG_DATA = VZ_MSG_USER, /* payload: struct seq (+ filler) */
	MSG_CMD,		/* payload: struct cmd */
	MSG_PING,
	MSG_PONG,
};

/* What an agent does when it receives MSG_CMD. */
enum cmd_op {
	OP_SEND,	    /* send n MSG_DATA of len bytes to `to` */
	OP_SPAWN,	    /* spawn a sink with state_size len on its own shard */
	OP_TIMER,	    /* arm a one-shot timer of n ns (tag = arg) */
	OP_PERIODIC,	    /* arm a periodic timer of n ns, cancelled after arg expiries */
	OP_MISUSE,	    /* forbidden and bad calls from inside an actor */
	OP_POOL,	    /* submit a pool job that waits for job_gate */
	OP_PINGPONG,	    /* start n round trips with `to` */
	OP_SEND_WAKE_FAULT, /* arm VZ_FAULT_WAKE for (long)arg checks, then OP_SEND */
};

struct cmd {
	uint32_t op;
	uint32_t len;
	uint64_t n;
	uint64_t arg;
	vz_ref to;
};

struct seq {
	uint32_t sender;
	uint32_t pad;
	uint64_t seq;
};

/* ---- shared accounting ------------------------------------------------ */

#define MAX_SENDERS 16

static atomic_ulong dead_seen;	  /* dead-letter hook calls */
static atomic_ulong accepted;	  /* sends/posts that returned 0 (counted ones) */
static atomic_ulong observed;	  /* counted messages handled by our actors */
static atomic_ulong data_seen;	  /* MSG_DATA handled */
static atomic_int order_errors;	  /* FIFO violations */
static atomic_int cmd_done;	  /* commands finished */
static atomic_int cmd_rc;	  /* the last command's return code */
static atomic_ulong timer_events; /* VZ_MSG_TIMER handled */
static atomic_ulong pool_done;	  /* VZ_MSG_POOL_DONE handled */
static atomic_int on_stops;	  /* on_stop calls */
static atomic_int job_gate;	  /* pool jobs wait until it is 1 */
static atomic_int pong_done;	  /* ping-pong finished */

/* First mismatch seen on a shard thread (cmocka asserts belong to the test
 * thread), reported by the test thread. */
static atomic_int mismatches;
static char mismatch_text[256];

static void note_mismatch(const char *what, int got, int want)
{
	if (atomic_fetch_add(&mismatches, 1) == 0)
		snprintf(mismatch_text, sizeof mismatch_text, "%s: got %s (%d), want %s (%d)", what,
			 vz_errname(got), got, vz_errname(want), want);
}

#define EXPECT_RC(call, want)                                                                      \
	do {                                                                                       \
		int got_ = (call);                                                                 \
		if (got_ != (want))                                                                \
			note_mismatch(#call, got_, (want));                                        \
	} while (0)

static void reset_counters(void)
{
	atomic_store(&dead_seen, 0);
	atomic_store(&accepted, 0);
	atomic_store(&observed, 0);
	atomic_store(&data_seen, 0);
	atomic_store(&order_errors, 0);
	atomic_store(&cmd_done, 0);
	atomic_store(&cmd_rc, 0);
	atomic_store(&timer_events, 0);
	atomic_store(&pool_done, 0);
	atomic_store(&on_stops, 0);
	atomic_store(&job_gate, 0);
	atomic_store(&pong_done, 0);
	atomic_store(&mismatches, 0);
	mismatch_text[0] = 0;
}

static void count_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
		       int reason)
{
	(void)ctx;
	(void)to;
	(void)type;
	(void)data;
	(void)len;
	if (reason >= 0)
		note_mismatch("dead-letter reason", reason, VZ_ESTOPPED);
	atomic_fetch_add(&dead_seen, 1);
}

/* Entries of a /proc directory (threads in /proc/self/task, fds in
 * /proc/self/fd), not counting "." and "..". */
static void make_cfg(vz_config *cfg, unsigned shards)
{
	vz_test_config(cfg, shards);
	cfg->dead_letter = count_dead;
}

static vz_runtime *make_rt(unsigned shards)
{
	vz_config cfg;
	vz_runtime *rt;

	make_cfg(&cfg, shards);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	return rt;
}

/* Wait until *c >= want; fail after `secs` seconds (a hang is a failure). */
static void wait_ulong_for(atomic_ulong *c, uint64_t want, unsigned secs)
{
	uint64_t end = vz_test_now_ns() + secs * 1000000000ull;

	while (atomic_load(c) < want) {
		if (vz_test_now_ns() > end)
			fail_msg("waited %u s for %llu, have %llu", secs, (unsigned long long)want,
				 (unsigned long long)atomic_load(c));
		sched_yield();
	}
}

static void wait_ulong(atomic_ulong *c, uint64_t want)
{
	wait_ulong_for(c, want, 60);
}

static void wait_int(atomic_int *c, int want)
{
	uint64_t end = vz_test_now_ns() + 60ull * 1000000000u;

	while (atomic_load(c) < want) {
		if (vz_test_now_ns() > end)
			fail_msg("waited 60 s for %d, have %d", want, atomic_load(c));
		sched_yield();
	}
}

/* Stop, then: the runtime's conservation, the hook saw every dead letter,
 * our accepted count = what our actors handled + what was dead-lettered
 * (counted messages only), no live actor, no mismatch on a shard thread;
 * destroy. */
static void finish(vz_runtime *rt)
{
	vz_shard_stats t;
	uint64_t foreign, sent;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	sent = t.sent_local + t.sent_remote + foreign;
	assert_int_equal(sent, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, atomic_load(&dead_seen));
	assert_int_equal(atomic_load(&accepted), atomic_load(&observed) + atomic_load(&dead_seen));
	assert_int_equal(t.handled, atomic_load(&observed));
	assert_int_equal(t.actors_live, 0);
	if (atomic_load(&mismatches))
		fail_msg("%d mismatch(es) on shard threads; first: %s", atomic_load(&mismatches),
			 mismatch_text);
	assert_int_equal(atomic_load(&order_errors), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz__fault_disarm_all();
}

/* ---- actors ------------------------------------------------------------ */

/* A sink counts MSG_DATA and checks FIFO per sender. */
struct sink {
	uint64_t next[MAX_SENDERS];
};

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct sink *s = state;
	struct seq q;

	(void)self;
	atomic_fetch_add(&observed, 1);
	if (vz_msg_type(m) != MSG_DATA)
		return;
	memcpy(&q, vz_msg_data(m), sizeof q);
	if (q.sender >= MAX_SENDERS || q.seq != s->next[q.sender])
		atomic_fetch_add(&order_errors, 1);
	else
		s->next[q.sender] = q.seq + 1;
	atomic_fetch_add(&data_seen, 1);
}

static void sink_stop(vz_actor *self, void *state)
{
	(void)self;
	(void)state;
	atomic_fetch_add(&on_stops, 1);
}

static const vz_actor_spec sink_spec = {
    .name = "sink",
    .state_size = sizeof(struct sink),
    .receive = sink_receive,
    .on_stop = sink_stop,
};

/* Sink specs with state in a given size class, for pool exhaustion. */
static vz_actor_spec sized_sink(size_t state_size)
{
	vz_actor_spec s = sink_spec;

	s.state_size = state_size;
	return s;
}

/* An agent: a sink that also obeys MSG_CMD and keeps its own sequence per
 * target for what it sends. */
struct agent {
	struct sink sink;
	uint32_t id;
	struct {
		vz_ref to;
		uint64_t next;
	} seqs[8]; /* next sequence number per target */
	unsigned nseqs;
	uint64_t periodic_left;
	vz_timer periodic;
	uint64_t pings_left;
	vz_actor_spec spawn_spec; /* OP_SPAWN's spec, must outlive the child */
};

static vz_actor *stashed_actor; /* an agent's handle, leaked on purpose to test misuse */

static int agent_init(vz_actor *self, void *state, const void *arg)
{
	struct agent *a = state;

	a->id = (uint32_t)(uintptr_t)arg;
	if (a->id == 0)
		stashed_actor = self;
	return 0;
}

/* The next sequence number for messages to `to`: FIFO is per (sender,
 * receiver) pair. */
static uint64_t *seq_for(struct agent *a, vz_ref to)
{
	for (unsigned i = 0; i < a->nseqs; i++)
		if (vz_ref_eq(a->seqs[i].to, to))
			return &a->seqs[i].next;
	assert_true(a->nseqs < 8);
	a->seqs[a->nseqs].to = to;
	a->seqs[a->nseqs].next = 0;
	return &a->seqs[a->nseqs++].next;
}

static int send_counted(vz_actor *self, vz_ref to, uint32_t type, const void *p, size_t len)
{
	int rc = vz_send(self, to, type, p, len);

	if (rc == 0)
		atomic_fetch_add(&accepted, 1);
	return rc;
}

/* A pool job: waits for job_gate, then returns `arg` bytes of result. */
static int job_wait_gate(void *arg, const void *payload, size_t payload_len, void *result,
			 size_t *result_len)
{
	size_t n = (size_t)(uintptr_t)arg;

	(void)payload;
	(void)payload_len;
	while (!atomic_load(&job_gate))
		sched_yield();
	memset(result, 7, n);
	*result_len = n;
	return 0;
}

static void nop_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
	atomic_fetch_add(&observed, 1);
}

static const vz_actor_spec nop_spec = {.name = "nop", .receive = nop_receive};

static void misuse(vz_actor *self, const vz_msg *m)
{
	vz_runtime *rt = vz_actor_runtime(self);
	unsigned me = vz_actor_shard(self), other = (me + 1) % vz_runtime_shards(rt);
	char big[VZ_POOL_MAX_PAYLOAD + 1] = {0};
	vz_job job = {.fn = job_wait_gate};
	vz_timer t = {0};
	vz_pool_done d;
	vz_ref local, bad;

	/* lifecycle calls that belong to the creating / a non-shard thread */
	EXPECT_RC(vz_runtime_stop(rt), VZ_EWRONGTHREAD);
	EXPECT_RC(vz_runtime_destroy(rt), VZ_EWRONGTHREAD);
	EXPECT_RC(vz_runtime_start(rt), VZ_ESTATE);
	EXPECT_RC(vz_shard_poll(rt, me, 0), VZ_EINVAL); /* not embedded */
	if (other != me)
		EXPECT_RC(vz_spawn(rt, other, &nop_spec, NULL, &bad), VZ_EWRONGTHREAD);
	EXPECT_RC(vz_spawn(rt, 999, &nop_spec, NULL, &bad), VZ_ENOSHARD);
	EXPECT_RC(vz_current_shard(rt), (int)me);

	/* sends with bad arguments change nothing */
	EXPECT_RC(vz_send(self, vz_self(self), 5, NULL, 0), VZ_EINVAL);
	EXPECT_RC(vz_send(self, vz_self(self), MSG_DATA, NULL, 1), VZ_EINVAL);
	EXPECT_RC(vz_send(self, VZ_REF_NULL, MSG_DATA, NULL, 0), VZ_ESTALE);
	bad.id = (uint64_t)200 << 56; /* shard 200: not in this runtime */
	EXPECT_RC(vz_send(self, bad, MSG_DATA, NULL, 0), VZ_ENOSHARD);
	EXPECT_RC(vz_reply(self, m, MSG_DATA, NULL, 0), VZ_EINVAL); /* posted from outside */
	EXPECT_RC(vz_reply(self, NULL, MSG_DATA, NULL, 0), VZ_EINVAL);
	EXPECT_RC(vz_send(self, vz_self(self), MSG_DATA, big, VZ_MSG_MAX_PAYLOAD + 1), VZ_ETOOBIG);

	/* a stale local reference is refused; a forged one with a slot
	 * never used too */
	EXPECT_RC(vz_spawn(rt, me, &nop_spec, NULL, &local), 0);
	EXPECT_RC(vz_stop(rt, local), 0);
	EXPECT_RC(vz_stop(rt, local), VZ_ESTALE);
	EXPECT_RC(vz_send(self, local, MSG_DATA, NULL, 0), VZ_ESTALE);
	bad.id = ((uint64_t)me << 56) | ((uint64_t)0xabcdef << 32) | 1;
	EXPECT_RC(vz_send(self, bad, MSG_DATA, NULL, 0), VZ_ESTALE);
	EXPECT_RC(vz_stop(rt, bad), VZ_ESTALE);

	/* timers */
	/* a NULL handle arms a fire-and-forget timer (an hour away: stopping
	 * the actor cancels it) */
	EXPECT_RC(vz_timer_arm(self, 3600ull * 1000000000ull, 0, 0, NULL), 0);
	EXPECT_RC(vz_timer_arm(self, UINT64_MAX, 0, 0, NULL), VZ_EINVAL);
	EXPECT_RC(vz_timer_cancel(self, t), VZ_ESTALE);
	t.id = 0x123456789abcull;
	EXPECT_RC(vz_timer_cancel(self, t), VZ_ESTALE);
	EXPECT_RC(vz_timer_arm(self, 1000000000ull, 0, 0, &t), 0);
	EXPECT_RC(vz_timer_cancel(self, t), 0);
	EXPECT_RC(vz_timer_cancel(self, t), VZ_ESTALE);

	/* pool */
	EXPECT_RC(vz_pool_submit(NULL, &job, NULL), VZ_EINVAL);
	EXPECT_RC(vz_pool_submit(self, NULL, NULL), VZ_EINVAL);
	job.fn = NULL;
	EXPECT_RC(vz_pool_submit(self, &job, NULL), VZ_EINVAL);
	job.fn = job_wait_gate;
	job.payload_len = 4;
	EXPECT_RC(vz_pool_submit(self, &job, NULL), VZ_EINVAL);
	job.payload = big;
	job.payload_len = sizeof big;
	EXPECT_RC(vz_pool_submit(self, &job, NULL), VZ_ETOOBIG);
	EXPECT_RC(vz_pool_cancel(self, (vz_job_id){0}), VZ_EINVAL);
	EXPECT_RC(vz_pool_cancel(NULL, (vz_job_id){1}), VZ_EINVAL);
	EXPECT_RC(vz_pool_cancel(self, (vz_job_id){0x7777777777ull}), VZ_ENOENT);
	EXPECT_RC(vz_pool_done_read(m, &d, NULL), VZ_EINVAL); /* not a completion */
	EXPECT_RC(vz_pool_done_read(NULL, &d, NULL), VZ_EINVAL);
	EXPECT_RC(vz_pool_done_read(m, NULL, NULL), VZ_EINVAL);

	/* allowed from inside: a post (null sender) and a stop of a remote
	 * actor (queued) */
	EXPECT_RC(vz_post(rt, vz_self(self), MSG_PING, NULL, 0), 0);
	atomic_fetch_add(&accepted, 1);
}

static void agent_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct agent *a = state;
	vz_runtime *rt = vz_actor_runtime(self);
	char filler[VZ_MSG_MAX_PAYLOAD];
	struct cmd c;
	vz_timer t;
	int rc = 0;

	switch (vz_msg_type(m)) {
	case MSG_DATA:
		sink_receive(self, &a->sink, m);
		return;
	case VZ_MSG_TIMER: {
		vz_timer_event ev;

		memcpy(&ev, vz_msg_data(m), sizeof ev);
		atomic_fetch_add(&timer_events, 1);
		if (a->periodic_left && ev.timer.id == a->periodic.id && --a->periodic_left == 0)
			EXPECT_RC(vz_timer_cancel(self, a->periodic), 0);
		return;
	}
	case VZ_MSG_POOL_DONE: {
		vz_pool_done d;

		atomic_fetch_add(&observed, 1);
		EXPECT_RC(vz_pool_done_read(m, &d, NULL), 0);
		EXPECT_RC(d.status, 0);
		atomic_fetch_add(&pool_done, 1);
		return;
	}
	case MSG_PING:
		atomic_fetch_add(&observed, 1);
		if (!vz_ref_is_null(vz_msg_sender(m)))
			EXPECT_RC(send_counted(self, vz_msg_sender(m), MSG_PONG, NULL, 0), 0);
		return;
	case MSG_PONG:
		atomic_fetch_add(&observed, 1);
		if (--a->pings_left == 0)
			atomic_store(&pong_done, 1);
		else
			EXPECT_RC(send_counted(self, vz_msg_sender(m), MSG_PING, NULL, 0), 0);
		return;
	case MSG_CMD:
		break;
	default:
		atomic_fetch_add(&observed, 1);
		return;
	}
	atomic_fetch_add(&observed, 1);
	memcpy(&c, vz_msg_data(m), sizeof c);
	switch (c.op) {
	case OP_SEND_WAKE_FAULT:
		/* Armed here, on the sender's shard, so no wake-up made on
		 * the way to this command uses it up. */
		vz__fault_arm(VZ_FAULT_WAKE, 0, (long)c.arg);
		/* fall through */
	case OP_SEND:
		for (uint64_t i = 0; i < c.n && rc == 0; i++) {
			uint64_t *next = seq_for(a, c.to);
			struct seq q = {a->id, 0, *next};

			memset(filler, 0, c.len);
			memcpy(filler, &q, sizeof q);
			rc = send_counted(self, c.to, MSG_DATA, filler,
					  c.len < sizeof q ? sizeof q : c.len);
			if (rc == 0)
				(*next)++;
		}
		break;
	case OP_SPAWN:
		a->spawn_spec = sized_sink(c.len);
		rc = vz_spawn(rt, vz_actor_shard(self), &a->spawn_spec, NULL, NULL);
		break;
	case OP_TIMER:
		rc = vz_timer_arm(self, c.n, 0, c.arg, &t);
		break;
	case OP_PERIODIC:
		a->periodic_left = c.arg;
		rc = vz_timer_arm(self, c.n, c.n, 0, &a->periodic);
		break;
	case OP_MISUSE:
		misuse(self, m);
		break;
	case OP_POOL: {
		vz_job job = {.fn = job_wait_gate, .arg = (void *)(uintptr_t)c.len, .tag = c.arg};

		for (uint64_t i = 0; i < c.n && rc == 0; i++) {
			rc = vz_pool_submit(self, &job, NULL);
			if (rc == 0)
				atomic_fetch_add(&accepted, 1); /* its completion */
		}
		break;
	}
	case OP_PINGPONG:
		a->pings_left = c.n;
		rc = send_counted(self, c.to, MSG_PING, NULL, 0);
		break;
	}
	atomic_store(&cmd_rc, rc);
	atomic_fetch_add(&cmd_done, 1);
}

static const vz_actor_spec agent_spec = {
    .name = "agent",
    .state_size = sizeof(struct agent),
    .init = agent_init,
    .receive = agent_receive,
    .on_stop = sink_stop,
};

static vz_ref spawn_agent(vz_runtime *rt, unsigned shard, uint32_t id)
{
	vz_ref r;

	assert_int_equal(vz_spawn(rt, shard, &agent_spec, (void *)(uintptr_t)id, &r), 0);
	return r;
}

static int post_counted(vz_runtime *rt, vz_ref to, uint32_t type, const void *p, size_t len)
{
	int rc = vz_post(rt, to, type, p, len);

	if (rc == 0)
		atomic_fetch_add(&accepted, 1);
	return rc;
}

/* Post a command, wait until it ran, return its result. */
static int command(vz_runtime *rt, vz_ref agent, struct cmd c)
{
	int before = atomic_load(&cmd_done);

	assert_int_equal(post_counted(rt, agent, MSG_CMD, &c, sizeof c), 0);
	wait_int(&cmd_done, before + 1);
	return atomic_load(&cmd_rc);
}

static void stats_of(vz_runtime *rt, unsigned shard, vz_shard_stats *s)
{
	assert_int_equal(vz_stats_shard(rt, shard, s), 0);
}

/* ---- pool exhaustion ---------------------------------------------------- */

/*
 * VZ_FAULT_POOL_REFILL on every path that needs a new slab: spawn before
 * start and from an actor (state block), a local and a cross-shard send
 * (message block), a foreign post (foreign pool chunk), a timer arm (timer
 * table chunk). Each refused call returns VZ_ENOMEM and changes nothing;
 * the same call works once the fault is gone.
 */
static void test_pool_refill(void **st)
{
	vz_runtime *rt = make_rt(2);
	vz_actor_spec big_state = sized_sink(3000); /* a class nothing else uses */
	vz_shard_stats before, after;
	char buf[2000] = {0};
	vz_ref a, b, r;

	(void)st;
	reset_counters();
	a = spawn_agent(rt, 0, 1);
	b = spawn_agent(rt, 1, 2);

	/* spawn before start: the state block needs a slab */
	stats_of(rt, 1, &before);
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, 1);
	assert_int_equal(vz_spawn(rt, 1, &big_state, NULL, &r), VZ_ENOMEM);
	assert_int_equal(vz__fault_fired(VZ_FAULT_POOL_REFILL), 1);
	stats_of(rt, 1, &after);
	assert_int_equal(after.actors_spawned, before.actors_spawned);
	assert_int_equal(after.actors_live, before.actors_live);
	assert_int_equal(vz_spawn(rt, 1, &big_state, NULL, &r), 0);
	assert_int_equal(vz_stop(rt, r), 0);

	assert_int_equal(vz_runtime_start(rt), 0);
	/* warm up the command's size class on both shards' foreign pools */
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 1, .to = b}), 0);
	assert_int_equal(command(rt, b, (struct cmd){.op = OP_SEND, .n = 1, .to = a}), 0);
	/* and let both arrive before a fault is armed: a small cross-shard
	 * send takes no block of the sender's (it travels in the ring slot),
	 * so the receiver's copy of it may be the first block of its class
	 * on that shard, whose refill must not take the fault meant below */
	wait_ulong(&data_seen, 2);

	/* local send needing a slab (class of 8 KiB + header) */
	stats_of(rt, 0, &before);
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, 1);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 1, .len = 8000, .to = a}),
			 VZ_ENOMEM);
	assert_int_equal(vz__fault_fired(VZ_FAULT_POOL_REFILL), 1);
	stats_of(rt, 0, &after);
	assert_int_equal(after.sent_local, before.sent_local);
	assert_int_equal(after.sent_remote, before.sent_remote);
	assert_int_equal(after.pool_refills, before.pool_refills);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 1, .len = 8000, .to = a}),
			 0);

	/* cross-shard send needing a slab (4 KiB class) */
	stats_of(rt, 0, &before);
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, 1);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 1, .len = 4000, .to = b}),
			 VZ_ENOMEM);
	assert_int_equal(vz__fault_fired(VZ_FAULT_POOL_REFILL), 1);
	stats_of(rt, 0, &after);
	assert_int_equal(after.sent_remote, before.sent_remote);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 1, .len = 4000, .to = b}),
			 0);

	/* foreign post needing a new chunk of shard 1's foreign pool */
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, 1);
	memcpy(buf, &(struct seq){7, 0, 0}, sizeof(struct seq));
	assert_int_equal(post_counted(rt, b, MSG_DATA, buf, sizeof buf), VZ_ENOMEM);
	assert_int_equal(vz__fault_fired(VZ_FAULT_POOL_REFILL), 1);
	assert_int_equal(post_counted(rt, b, MSG_DATA, buf, sizeof buf), 0);

	/* spawn from an actor needing a state slab (1 KiB class) */
	stats_of(rt, 0, &before);
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, 1);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SPAWN, .len = 1000}), VZ_ENOMEM);
	assert_int_equal(vz__fault_fired(VZ_FAULT_POOL_REFILL), 1);
	stats_of(rt, 0, &after);
	assert_int_equal(after.actors_spawned, before.actors_spawned);
	assert_int_equal(after.actors_live, before.actors_live);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SPAWN, .len = 1000}), 0);

	/* the first timer of shard 0 needs a timer-table chunk */
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, 1);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_TIMER, .n = 1000000}), VZ_ENOMEM);
	assert_int_equal(vz__fault_fired(VZ_FAULT_POOL_REFILL), 1);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_TIMER, .n = 1000000}), 0);
	wait_ulong(&timer_events, 1);

	/* everything accepted arrived: 2 warm-up, 2 big, 1 post */
	wait_ulong(&data_seen, 5);
	finish(rt);
}

/*
 * A timer whose expiry message cannot be allocated from the pool (the
 * pool for that class is empty and cannot grow). The timer contract
 * promises an expiry message; the shard's reserve of expiry blocks
 * (shard.c, timer_msg_alloc()) must deliver it.
 */
static void test_timer_expiry_without_memory(void **st)
{
	vz_runtime *rt = make_rt(2);
	vz_ref a, b;

	(void)st;
	reset_counters();
	a = spawn_agent(rt, 0, 1);
	b = spawn_agent(rt, 1, 2);
	assert_int_equal(vz_runtime_start(rt), 0);
	/* shard 1's timer table grows now; its local pool has never
	 * allocated the expiry message's class */
	assert_int_equal(command(rt, b, (struct cmd){.op = OP_TIMER, .n = 200000000ull}), 0);
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, 1);
	wait_ulong_for(&timer_events, 1, 5); /* the expiry must still arrive */
	(void)a;
	finish(rt);
}

/* ---- ring full ---------------------------------------------------------- */

/*
 * Every publish to a cross-shard ring finds it full: messages wait in the
 * sender's outbox (nothing reaches the receiver), the stats count ring_full
 * and overflow_queued, and once the fault is gone all of them arrive, in
 * order.
 */
static void test_ring_full(void **st)
{
	const uint64_t n = 3000;
	vz_runtime *rt = make_rt(2);
	vz_shard_stats s0;
	vz_ref a, b;

	(void)st;
	reset_counters();
	a = spawn_agent(rt, 0, 1);
	b = spawn_agent(rt, 1, 2);
	assert_int_equal(vz_runtime_start(rt), 0);
	vz__fault_arm(VZ_FAULT_RING_FULL, 0, -1);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = n, .to = b}), 0);
	stats_of(rt, 0, &s0);
	assert_int_equal(s0.sent_remote, n);
	assert_true(s0.ring_full >= 1);
	assert_true(s0.overflow_queued >= 1);
	assert_true(vz__fault_fired(VZ_FAULT_RING_FULL) >= 1);
	assert_int_equal(atomic_load(&data_seen), 0); /* nothing got through */
	vz__fault_arm(VZ_FAULT_RING_FULL, 0, 0);
	wait_ulong(&data_seen, n);
	assert_int_equal(atomic_load(&order_errors), 0);
	finish(rt);
}

/*
 * The outbox is bounded (runtime.outbox_limit): with the ring refusing,
 * cross-shard sends succeed up to the limit, then get VZ_EFULL with nothing
 * sent (stats unchanged but outbox_full, the refused message never
 * arrives); local sends are not affected. Once the ring takes messages
 * again every accepted one arrives, in order, and sending works again.
 * Before the bound, the outbox grew without limit.
 */
static void test_outbox_limit(void **st)
{
	const uint64_t limit = 100;
	vz_shard_stats s0, s1;
	vz_config cfg;
	vz_runtime *rt;
	vz_ref a, b;

	(void)st;
	reset_counters();
	make_cfg(&cfg, 2);
	cfg.outbox_limit = (uint32_t)limit;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	a = spawn_agent(rt, 0, 1);
	b = spawn_agent(rt, 1, 2);
	assert_int_equal(vz_runtime_start(rt), 0);
	vz__fault_arm(VZ_FAULT_RING_FULL, 0, -1);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 3 * limit, .to = b}),
			 VZ_EFULL);
	stats_of(rt, 0, &s0);
	assert_int_equal(s0.sent_remote, limit);
	assert_int_equal(s0.outbox_full, 1);
	/* refused again, and nothing moves */
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 1, .to = b}), VZ_EFULL);
	stats_of(rt, 0, &s1);
	assert_int_equal(s1.sent_remote, limit);
	assert_int_equal(s1.outbox_full, 2);
	assert_int_equal(atomic_load(&data_seen), 0);
	/* the bound is per destination: a local send still goes */
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 5, .to = a}), 0);
	wait_ulong(&data_seen, 5);
	vz__fault_arm(VZ_FAULT_RING_FULL, 0, 0);
	wait_ulong(&data_seen, 5 + limit);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 3 * limit, .to = b}), 0);
	wait_ulong(&data_seen, 5 + 4 * limit);
	stats_of(rt, 0, &s1);
	assert_int_equal(s1.outbox_full, 2);
	assert_int_equal(atomic_load(&order_errors), 0);
	finish(rt);
	assert_int_equal(atomic_load(&data_seen), 5 + 4 * limit);
}

/* Stop while messages sit in overflow and the ring keeps refusing for a
 * while: stop waits for the outboxes, and nothing is lost. */
static void test_ring_full_at_stop(void **st)
{
	vz_runtime *rt = make_rt(2);
	vz_ref a, b;

	(void)st;
	reset_counters();
	a = spawn_agent(rt, 0, 1);
	b = spawn_agent(rt, 1, 2);
	assert_int_equal(vz_runtime_start(rt), 0);
	vz__fault_arm(VZ_FAULT_RING_FULL, 0, 500);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 2000, .to = b}), 0);
	assert_int_equal(command(rt, b, (struct cmd){.op = OP_SEND, .n = 2000, .to = a}), 0);
	finish(rt);
}

/* ---- io_uring setup ----------------------------------------------------- */

/* VZ_BACKEND (set by the test runner) overrides the configuration; these
 * cases need the configuration to decide. */
struct env_save {
	char value[32];
	int had;
};

static void env_clear(struct env_save *e)
{
	const char *v = getenv("VZ_BACKEND");

	e->had = v != NULL;
	if (v)
		snprintf(e->value, sizeof e->value, "%s", v);
	unsetenv("VZ_BACKEND");
}

static void env_restore(const struct env_save *e)
{
	if (e->had)
		setenv("VZ_BACKEND", e->value, 1);
}

/* One small workload on a runtime: cross-shard ping-pong + posts. */
static void small_workload(vz_runtime *rt)
{
	vz_ref a = spawn_agent(rt, 0, 1), b = spawn_agent(rt, vz_runtime_shards(rt) - 1, 2);

	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_PINGPONG, .n = 500, .to = b}), 0);
	assert_true(vz_test_wait_flag((volatile int *)&pong_done, 60));
	for (int i = 0; i < 100; i++) {
		struct seq q = {3, 0, (uint64_t)i};

		assert_int_equal(post_counted(rt, b, MSG_DATA, &q, sizeof q), 0);
	}
	wait_ulong(&data_seen, 100);
}

static void setup_fault(enum vz__fault_point p, const char *err_text)
{
	struct env_save env;
	vz_config cfg;
	vz_runtime *rt = (vz_runtime *)0x1;
	int fired;

	reset_counters();
	env_clear(&env);
	make_cfg(&cfg, 2);

	cfg.backend = VZ_BACKEND_IO_URING; /* forced: refused */
	vz__fault_arm(p, 0, -1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ENOSYS);
	assert_null(rt);

	cfg.backend = VZ_BACKEND_AUTO; /* falls back, says why */
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	fired = vz__fault_fired(p);
	vz__fault_arm(p, 0, 0);
	env_restore(&env);
	assert_string_equal(vz_runtime_backend(rt), "epoll");
	if (fired == 0) {
		/* The probe refused io_uring before calling io_uring_setup
		 * (kernel.io_uring_disabled=2, or a kernel in select.c's
		 * table), so this machine cannot reach the fault point. The
		 * fallback must still work and say why; the setup failure
		 * itself is covered wherever the probe gets that far. */
		if (!strstr(vz_runtime_backend_reason(rt), "io_uring unavailable ("))
			fail_msg("reason '%s' does not say why io_uring is unavailable",
				 vz_runtime_backend_reason(rt));
		print_message("io_uring refused before io_uring_setup here (%s)\n",
			      vz_runtime_backend_reason(rt));
		small_workload(rt);
		finish(rt);
		skip();
	}
	if (!strstr(vz_runtime_backend_reason(rt), "io_uring_setup") ||
	    !strstr(vz_runtime_backend_reason(rt), err_text))
		fail_msg("reason '%s' does not name io_uring_setup and '%s'",
			 vz_runtime_backend_reason(rt), err_text);
	small_workload(rt);
	finish(rt);
}

static void test_uring_setup_eperm(void **st)
{
	(void)st;
	setup_fault(VZ_FAULT_URING_SETUP_EPERM, strerror(EPERM));
}

static void test_uring_setup_enosys(void **st)
{
	(void)st;
	setup_fault(VZ_FAULT_URING_SETUP_ENOSYS, strerror(ENOSYS));
}

/* io_uring probed fine at create, but a shard's ring cannot be set up on
 * its thread at start: VZ_EIO, no thread left, clean destroy. */
static void test_uring_setup_at_start(void **st)
{
	struct env_save env;
	vz_config cfg;
	vz_runtime *rt;
	unsigned threads, fds;
	vz_ref a;

	(void)st;
	reset_counters();
	env_clear(&env);
	make_cfg(&cfg, 2);
	cfg.backend = VZ_BACKEND_AUTO;
	threads = vz_test_count_entries("/proc/self/task");
	fds = vz_test_count_entries("/proc/self/fd");
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	env_restore(&env);
	if (strcmp(vz_runtime_backend(rt), "io_uring") != 0) {
		assert_int_equal(vz_runtime_destroy(rt), 0);
		skip(); /* no io_uring here: the path cannot be reached */
	}
	a = spawn_agent(rt, 0, 1);
	spawn_agent(rt, 1, 2);
	/* one shard's ring comes up, the other's fails */
	vz__fault_arm(VZ_FAULT_URING_SETUP_EPERM, 1, 1);
	assert_int_equal(vz_runtime_start(rt), VZ_EIO);
	assert_int_equal(vz__fault_fired(VZ_FAULT_URING_SETUP_EPERM), 1);
	assert_int_equal(vz_test_threads_settle(threads, 10), threads);
	assert_int_equal(vz_post(rt, a, MSG_DATA, NULL, 0), VZ_ESTATE);
	assert_int_equal(vz_runtime_stop(rt), VZ_ESTATE);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	assert_int_equal(atomic_load(&on_stops), 2);
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds);
	vz__fault_disarm_all();
}

/* ---- interrupted waits -------------------------------------------------- */

/* Every backend wait returns at once as if interrupted: shards keep
 * working (messages, foreign posts, timers), nothing is lost. */
static void test_wait_eintr(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref a, b;

	(void)st;
	reset_counters();
	make_cfg(&cfg, 2);
	cfg.idle_policy = VZ_IDLE_SLEEP; /* wait as soon as idle */
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	a = spawn_agent(rt, 0, 1);
	b = spawn_agent(rt, 1, 2);
	vz__fault_arm(VZ_FAULT_WAIT_EINTR, 0, -1);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_PINGPONG, .n = 2000, .to = b}), 0);
	assert_true(vz_test_wait_flag((volatile int *)&pong_done, 60));
	assert_int_equal(command(rt, b, (struct cmd){.op = OP_PERIODIC, .n = 2000000, .arg = 10}),
			 0);
	for (int i = 0; i < 1000; i++) {
		struct seq q = {5, 0, (uint64_t)i};

		assert_int_equal(post_counted(rt, a, MSG_DATA, &q, sizeof q), 0);
	}
	wait_ulong(&data_seen, 1000);
	wait_ulong(&timer_events, 10);
	assert_true(vz__fault_fired(VZ_FAULT_WAIT_EINTR) >= 1);
	vz__fault_arm(VZ_FAULT_WAIT_EINTR, 0, 0);
	finish(rt);
	assert_int_equal(atomic_load(&timer_events), 10); /* cancelled after 10 */
}

/* ---- failed wake-ups ---------------------------------------------------- */

/* A sink on its own shard that notes the shard's sleep count when it
 * handles a message: once the count has moved past that, the shard has
 * announced sleeping and blocked with nothing to do, so the next send to
 * it must take the wake-up path (no timing guess). */
static atomic_ulong sleeps_at_handle;

static void sleepy_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_shard_stats s;

	EXPECT_RC(vz_stats_shard(vz_actor_runtime(self), vz_actor_shard(self), &s), 0);
	atomic_store(&sleeps_at_handle, s.sleeps);
	sink_receive(self, state, m);
}

static const vz_actor_spec sleepy_spec = {
    .name = "sleepy",
    .state_size = sizeof(struct sink),
    .receive = sleepy_receive,
};

static void wait_asleep(vz_runtime *rt, unsigned shard)
{
	uint64_t end = vz_test_now_ns() + 60ull * 1000000000u;
	vz_shard_stats s;

	for (;;) {
		stats_of(rt, shard, &s);
		if (s.sleeps > atomic_load(&sleeps_at_handle))
			return;
		if (vz_test_now_ns() > end)
			fail_msg("shard %u never went to sleep", shard);
		sched_yield();
	}
}

static uint64_t wake_failures_of(vz_runtime *rt, unsigned shard)
{
	vz_shard_stats s;

	stats_of(rt, shard, &s);
	return s.wake_failures;
}

/*
 * VZ_FAULT_WAKE: the wake-up of a sleeping shard fails (io_uring: the
 * MSG_RING submission and the eventfd write; epoll: the eventfd write).
 * The one sender that took the target's sleeping flag owns the wake-up, so
 * a failure must not be dropped (before the fix the target slept for good
 * with the message queued). Checked from a foreign thread and from a
 * shard, with a failure that passes within vz__wake()'s own retries and one
 * that lasts: then the next foreign post, or the sending shard's next turn,
 * retries. Every message arrives, in order, and wake_failures counts.
 */
static void test_wake_failure(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	uint64_t f0, seq = 0, want = 0;
	vz_ref a, b;

	(void)st;
	reset_counters();
	atomic_store(&sleeps_at_handle, 0);
	make_cfg(&cfg, 2);
	cfg.idle_policy = VZ_IDLE_SLEEP; /* block as soon as idle */
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	a = spawn_agent(rt, 0, 1);
	assert_int_equal(vz_spawn(rt, 1, &sleepy_spec, NULL, &b), 0);
	assert_int_equal(vz_runtime_start(rt), 0);

	/* Foreign post, three failed attempts: within vz__wake()'s tries. */
	wait_asleep(rt, 1);
	f0 = wake_failures_of(rt, 1);
	vz__fault_arm(VZ_FAULT_WAKE, 0, 3);
	{
		struct seq q = {5, 0, seq++};

		assert_int_equal(post_counted(rt, b, MSG_DATA, &q, sizeof q), 0);
	}
	wait_ulong_for(&data_seen, ++want, 20);
	assert_int_equal(vz__fault_fired(VZ_FAULT_WAKE), 3);
	assert_int_equal(wake_failures_of(rt, 1) - f0, 3);

	/* Foreign post, every attempt fails: the post is accepted (the
	 * message is in the inbox), the tries are counted, and the next post
	 * wakes the shard for both. */
	wait_asleep(rt, 1);
	f0 = wake_failures_of(rt, 1);
	vz__fault_arm(VZ_FAULT_WAKE, 0, -1);
	{
		struct seq q = {5, 0, seq++};

		assert_int_equal(post_counted(rt, b, MSG_DATA, &q, sizeof q), 0);
	}
	assert_true(wake_failures_of(rt, 1) - f0 >= 2);
	vz__fault_arm(VZ_FAULT_WAKE, 0, 0);
	{
		struct seq q = {5, 0, seq++};

		assert_int_equal(post_counted(rt, b, MSG_DATA, &q, sizeof q), 0);
	}
	want += 2;
	wait_ulong_for(&data_seen, want, 20);

	/* From shard 0 (io_uring: MSG_RING first), three failed attempts. */
	wait_asleep(rt, 1);
	f0 = wake_failures_of(rt, 1);
	assert_int_equal(
	    command(rt, a, (struct cmd){.op = OP_SEND_WAKE_FAULT, .n = 1, .arg = 3, .to = b}), 0);
	wait_ulong_for(&data_seen, ++want, 20);
	assert_int_equal(vz__fault_fired(VZ_FAULT_WAKE), 3);
	assert_true(wake_failures_of(rt, 1) > f0);

	/* From shard 0, every attempt fails until disarmed: shard 0 keeps
	 * retrying turn after turn (more failures than one vz__wake() makes),
	 * and once the fault is gone the message arrives with no other send. */
	wait_asleep(rt, 1);
	f0 = wake_failures_of(rt, 1);
	assert_int_equal(
	    command(rt, a, (struct cmd){.op = OP_SEND_WAKE_FAULT, .n = 1, .arg = -1, .to = b}), 0);
	while (wake_failures_of(rt, 1) - f0 < 20)
		sched_yield();
	vz__fault_arm(VZ_FAULT_WAKE, 0, 0);
	wait_ulong_for(&data_seen, ++want, 20);

	assert_int_equal(atomic_load(&order_errors), 0);
	finish(rt);
}

/* ---- submission queue full ---------------------------------------------- */

/* The core submits no user I/O, so VZ_FAULT_SQ_FULL (user submissions
 * only) is never reached by messaging, timers or wake-ups: it stays unfired
 * and everything works. When an I/O API exists, this is where its
 * VZ_EAGAIN belongs. */
static void test_sq_full_not_reached(void **st)
{
	vz_runtime *rt = make_rt(2);

	(void)st;
	reset_counters();
	vz__fault_arm(VZ_FAULT_SQ_FULL, 0, -1);
	small_workload(rt);
	assert_int_equal(vz__fault_fired(VZ_FAULT_SQ_FULL), 0);
	finish(rt);
}

/* ---- thread start ------------------------------------------------------- */

/* The k-th thread vz_runtime_start() makes (shards first, then pool
 * workers) fails: VZ_EIO, no thread left running, the runtime still
 * refuses posts and stop, and destroy runs on_stop and closes every fd. */
static void test_thread_start(void **st)
{
	unsigned threads, fds;

	(void)st;
	for (long k = 0; k < 6; k++) {
		vz_runtime *rt;
		vz_ref a;
		int rc;

		reset_counters();
		threads = vz_test_count_entries("/proc/self/task");
		fds = vz_test_count_entries("/proc/self/fd");
		rt = make_rt(2);
		a = spawn_agent(rt, 0, 1);
		spawn_agent(rt, 1, 2);
		vz__fault_arm(VZ_FAULT_THREAD_START, k, 1);
		rc = vz_runtime_start(rt);
		if (rc == 0) {
			/* fewer than k+1 threads: the point was not reached */
			assert_int_equal(vz__fault_fired(VZ_FAULT_THREAD_START), 0);
			assert_true(k >= 2);
			vz__fault_disarm_all();
			finish(rt);
			assert_int_equal(vz_test_threads_settle(threads, 10), threads);
			break;
		}
		assert_int_equal(rc, VZ_EIO);
		assert_int_equal(vz__fault_fired(VZ_FAULT_THREAD_START), 1);
		vz__fault_disarm_all();
		assert_int_equal(vz_test_threads_settle(threads, 10), threads);
		assert_int_equal(vz_post(rt, a, MSG_DATA, NULL, 0), VZ_ESTATE);
		assert_int_equal(vz_runtime_stop(rt), VZ_ESTATE);
		assert_int_equal(vz_runtime_destroy(rt), 0);
		assert_int_equal(atomic_load(&on_stops), 2);
		assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds);
	}
}

/* ---- misuse ------------------------------------------------------------- */

/* Forbidden and bad calls from inside an actor, and an actor's handle
 * used from a foreign thread. */
static void test_misuse_inside_actor(void **st)
{
	vz_runtime *rt = make_rt(2);
	vz_timer t = {1};
	vz_ref a, b;

	(void)st;
	reset_counters();
	stashed_actor = NULL;
	a = spawn_agent(rt, 0, 0); /* id 0: stashes its handle */
	b = spawn_agent(rt, 1, 1);
	assert_non_null(stashed_actor);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(command(rt, a, (struct cmd){.op = OP_MISUSE}), 0);
	assert_int_equal(command(rt, b, (struct cmd){.op = OP_MISUSE}), 0);

	/* a's handle from this (foreign) thread */
	assert_int_equal(vz_send(stashed_actor, b, MSG_DATA, NULL, 0), VZ_EWRONGTHREAD);
	assert_int_equal(vz_timer_arm(stashed_actor, 1000, 0, 0, &t), VZ_EWRONGTHREAD);
	assert_int_equal(vz_timer_cancel(stashed_actor, t), VZ_EWRONGTHREAD);
	assert_int_equal(vz_current_shard(rt), -1);
	wait_ulong(&observed, 4); /* 2 commands, 2 self-posts */
	finish(rt);
}

/* NULL and out-of-range arguments not covered by the unit tests. */
static void test_null_and_range(void **st)
{
	vz_runtime *rt = make_rt(1);
	vz_shard_stats s;
	unsigned nodes[4];

	(void)st;
	reset_counters();
	assert_int_equal(vz_stats_shard(rt, 0, NULL), VZ_EINVAL);
	assert_int_equal(vz_stats_shard(rt, 1, &s), VZ_ENOSHARD);
	assert_int_equal(vz_stats_total(rt, NULL, NULL), VZ_EINVAL);
	assert_int_equal(vz_runtime_shard_cpu(NULL, 0), VZ_ENOSHARD);
	assert_int_equal(vz_runtime_shard_cpu(rt, 1), VZ_ENOSHARD);
	assert_string_equal(vz_runtime_backend(NULL), "");
	assert_string_equal(vz_runtime_backend_reason(NULL), "");
	assert_int_equal(vz_timer_cancel(NULL, (vz_timer){1}), VZ_EINVAL);
	assert_int_equal(vz_now_ns(NULL), 0);
	assert_true(vz_ref_is_null(vz_self(NULL)));
	assert_null(vz_actor_runtime(NULL));
	assert_int_equal(vz_msg_len(NULL), 0);
	assert_true(vz_ref_is_null(vz_msg_sender(NULL)));
	assert_int_equal(vz_stats_pool(NULL, 0, NULL), VZ_EINVAL);
	assert_int_equal(vz_pool_nodes(NULL, nodes, 4), VZ_EINVAL);
	assert_int_equal(vz_pool_nodes(rt, NULL, 4), VZ_EINVAL);
	assert_true(vz_pool_nodes(rt, NULL, 0) >= 0);
	assert_int_equal(vz_stop(rt, VZ_REF_NULL), VZ_ESTALE);
	assert_int_equal(vz_stop(rt, (vz_ref){(uint64_t)5 << 56}), VZ_ENOSHARD);
	assert_int_equal(vz_stop(rt, (vz_ref){((uint64_t)77 << 32) | 1}), VZ_ESTALE);
	assert_int_equal(vz_spawn(rt, 0, &nop_spec, NULL, NULL), 0); /* out is optional */
	assert_int_equal(vz_runtime_start(rt), 0);
	/* a forged reference on a live shard: accepted, then dead-lettered */
	assert_int_equal(post_counted(rt, (vz_ref){((uint64_t)77 << 32) | 1}, MSG_DATA, NULL, 0),
			 0);
	wait_ulong(&dead_seen, 1);
	finish(rt);
}

/* After stop every call that would change the runtime is refused. */
static void test_calls_after_stop(void **st)
{
	vz_runtime *rt = make_rt(2);
	vz_shard_stats s;
	vz_ref a, r;

	(void)st;
	reset_counters();
	a = spawn_agent(rt, 0, 1);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &nop_spec, NULL, &r), VZ_ESTOPPED);
	assert_int_equal(vz_stop(rt, a), VZ_ESTOPPED);
	assert_int_equal(vz_post(rt, a, MSG_DATA, NULL, 0), VZ_ESTOPPED);
	assert_int_equal(vz_runtime_start(rt), VZ_ESTATE);
	assert_int_equal(vz_runtime_stop(rt), VZ_ESTATE);
	assert_int_equal(vz_stats_shard(rt, 1, &s), 0);
	assert_int_equal(s.actors_live, 0);
	assert_int_equal(atomic_load(&on_stops), 1);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* Two threads stop the same runtime at once: exactly one stops it, the
 * other gets VZ_ESTATE, and the runtime ends clean (both may pass the
 * state check, so stopping the worker pool must be safe from two callers:
 * it once joined the same worker twice and hung). */
struct stopper {
	vz_runtime *rt;
	atomic_int *go;
	int rc;
};

static void *stop_thread(void *p)
{
	struct stopper *s = p;

	while (!atomic_load(s->go))
		;
	s->rc = vz_runtime_stop(s->rt);
	return NULL;
}

static void test_concurrent_stop(void **st)
{
	unsigned threads = vz_test_count_entries("/proc/self/task");

	(void)st;
	for (int round = 0; round < 20; round++) {
		vz_runtime *rt = make_rt(2);
		atomic_int go = 0;
		struct stopper s[2] = {{rt, &go, 1}, {rt, &go, 1}};
		pthread_t th[2];
		vz_shard_stats t;
		uint64_t foreign;

		reset_counters();
		spawn_agent(rt, 0, 1);
		assert_int_equal(vz_runtime_start(rt), 0);
		for (int i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&th[i], NULL, stop_thread, &s[i]), 0);
		atomic_store(&go, 1);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		assert_true((s[0].rc == 0 && s[1].rc == VZ_ESTATE) ||
			    (s[1].rc == 0 && s[0].rc == VZ_ESTATE));
		assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
		assert_int_equal(t.actors_live, 0);
		assert_int_equal(vz_runtime_destroy(rt), 0);
	}
	assert_int_equal(vz_test_threads_settle(threads, 10), threads);
}

/* Destroy attempted while another thread is stopping: VZ_ESTATE until the
 * stop is complete, never a free under the stopper's feet. */
static void test_destroy_while_stopping(void **st)
{
	(void)st;
	for (int round = 0; round < 10; round++) {
		vz_runtime *rt = make_rt(2);
		atomic_int go = 1;
		struct stopper s = {rt, &go, 1};
		pthread_t th;
		vz_ref a, b;
		int rc;

		reset_counters();
		a = spawn_agent(rt, 0, 1);
		b = spawn_agent(rt, 1, 2);
		assert_int_equal(vz_runtime_start(rt), 0);
		assert_int_equal(command(rt, a, (struct cmd){.op = OP_SEND, .n = 5000, .to = b}),
				 0);
		assert_int_equal(pthread_create(&th, NULL, stop_thread, &s), 0);
		while ((rc = vz_runtime_destroy(rt)) == VZ_ESTATE)
			sched_yield();
		assert_int_equal(rc, 0);
		pthread_join(th, NULL);
		assert_int_equal(s.rc, 0);
		assert_int_equal(atomic_load(&accepted),
				 atomic_load(&observed) + atomic_load(&dead_seen));
	}
}

/* An embedded shard bound to this thread, stopped from another thread:
 * this thread keeps polling until VZ_ESTOPPED; other threads and other
 * shards' actors cannot poll it. */
struct poll_try {
	vz_runtime *rt;
	int rc;
};

static void *poll_other(void *p)
{
	struct poll_try *t = p;

	t->rc = vz_shard_poll(t->rt, 1, 0);
	return NULL;
}

static void test_embedded_stop_from_other_thread(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	struct poll_try pt;
	atomic_int go = 1;
	struct stopper s;
	pthread_t th;
	vz_ref a, b;
	int rc;

	(void)st;
	reset_counters();
	make_cfg(&cfg, 2);
	cfg.shards[1].embedded = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	a = spawn_agent(rt, 0, 1);
	b = spawn_agent(rt, 1, 2);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_true(vz_shard_poll(rt, 1, 0) >= 0); /* binds shard 1 to us */
	pt.rt = rt;
	assert_int_equal(pthread_create(&th, NULL, poll_other, &pt), 0);
	pthread_join(th, NULL);
	assert_int_equal(pt.rc, VZ_EWRONGTHREAD);
	assert_int_equal(post_counted(rt, a, MSG_CMD,
				      &(struct cmd){.op = OP_SEND, .n = 3000, .to = b},
				      sizeof(struct cmd)),
			 0);
	while (atomic_load(&data_seen) < 1000)
		assert_true(vz_shard_poll(rt, 1, 1000) >= 0);
	s = (struct stopper){rt, &go, 1};
	assert_int_equal(pthread_create(&th, NULL, stop_thread, &s), 0);
	while ((rc = vz_shard_poll(rt, 1, 100)) >= 0)
		;
	assert_int_equal(rc, VZ_ESTOPPED);
	pthread_join(th, NULL);
	assert_int_equal(s.rc, 0);
	assert_int_equal(vz_shard_poll(rt, 1, 0), VZ_ESTOPPED);
	{
		vz_shard_stats t;
		uint64_t foreign;

		assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
		assert_int_equal(t.sent_local + t.sent_remote + foreign,
				 t.handled + t.dead_letters);
		assert_int_equal(t.dead_letters, atomic_load(&dead_seen));
		assert_int_equal(atomic_load(&accepted),
				 atomic_load(&observed) + atomic_load(&dead_seen));
	}
	assert_int_equal(atomic_load(&order_errors), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* ---- pool completions and submissions ---------------------------------- */

/* A pool completion that cannot get a message block at once (the owner
 * shard's foreign pool cannot grow) still arrives: pool.h promises exactly
 * one completion per accepted job (it was once dropped). */
static void test_pool_completion_without_memory(void **st)
{
	vz_runtime *rt = make_rt(2);
	vz_ref a;
	int rc;

	(void)st;
	reset_counters();
	a = spawn_agent(rt, 0, 1);
	assert_int_equal(vz_runtime_start(rt), 0);
	/* a 1000-byte result: a size class no post to shard 0 used yet */
	rc = command(rt, a, (struct cmd){.op = OP_POOL, .n = 1, .len = 1000});
	if (rc == VZ_ENOSYS) {
		finish(rt);
		skip();
	}
	assert_int_equal(rc, 0);
	/* the completion's size class has never been posted to shard 0 */
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, 1);
	atomic_store(&job_gate, 1);
	wait_ulong_for(&pool_done, 1, 5);
	finish(rt);
}

/* ---- once known bugs, now regression tests -------------------------------- */

/* Messages sent from init before start to an actor on another shard sit in
 * the sender's outbox; destroying the never-started runtime frees them
 * without dead-lettering them (a local one is dead-lettered). */
static int init_sends(vz_actor *self, void *state, const void *arg)
{
	(void)state;
	EXPECT_RC(send_counted(self, *(const vz_ref *)arg, MSG_DATA, &(struct seq){1, 0, 0},
			       sizeof(struct seq)),
		  0);
	return 0;
}

static void test_destroy_unstarted_with_sends(void **st)
{
	vz_actor_spec spec = sink_spec;
	vz_runtime *rt = make_rt(2);
	vz_ref remote, local, s;

	(void)st;
	reset_counters();
	spec.init = init_sends;
	remote = spawn_agent(rt, 1, 1);
	local = spawn_agent(rt, 0, 2);
	assert_int_equal(vz_spawn(rt, 0, &spec, &remote, &s), 0);
	assert_int_equal(vz_spawn(rt, 0, &spec, &local, &s), 0);
	assert_int_equal(atomic_load(&accepted), 2);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	assert_int_equal(atomic_load(&dead_seen), 2);
}

/* vz_pool_submit() is for the actor's home shard only: a foreign thread
 * holding an actor's handle gets VZ_EWRONGTHREAD, like every other
 * actor-handle call (it was once accepted). */
static void test_pool_submit_wrong_thread(void **st)
{
	vz_runtime *rt = make_rt(1);
	vz_job job = {.fn = job_wait_gate, .arg = (void *)(uintptr_t)8};
	int rc;

	(void)st;
	reset_counters();
	stashed_actor = NULL;
	spawn_agent(rt, 0, 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	atomic_store(&job_gate, 1);
	rc = vz_pool_submit(stashed_actor, &job, NULL);
	if (rc == 0) {
		atomic_fetch_add(&accepted, 1); /* its completion arrives as a message */
		wait_ulong(&pool_done, 1);
	}
	finish(rt);
	assert_int_equal(rc, VZ_EWRONGTHREAD);
}

/* Shard threads run actors inside vz_runtime_start(), before the state
 * becomes RUNNING (the starter still starts the pool workers). In that
 * window vz_spawn() and vz_stop() from an actor take their "before start"
 * path and act directly on another shard's actor table, pools and mailboxes
 * from the wrong thread (ThreadSanitizer reports the races in the soak).
 * An actor whose first message (sent by its init) spawns on another shard
 * must get VZ_EWRONGTHREAD. */
static atomic_int window_spawns, window_tries;

static int window_init(vz_actor *self, void *state, const void *arg)
{
	(void)state;
	(void)arg;
	return vz_send(self, vz_self(self), MSG_PING, NULL, 0);
}

static void window_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_runtime *rt = vz_actor_runtime(self);
	vz_ref r;

	(void)state;
	(void)m;
	atomic_fetch_add(&observed, 1);
	atomic_fetch_add(&window_tries, 1);
	if (vz_spawn(rt, 1 - vz_actor_shard(self), &nop_spec, NULL, &r) == 0)
		atomic_fetch_add(&window_spawns, 1);
}

static const vz_actor_spec window_spec = {
    .name = "window", .init = window_init, .receive = window_receive};

static void test_start_window(void **st)
{
	(void)st;
	atomic_store(&window_spawns, 0);
	for (int round = 0; round < 20; round++) {
		vz_runtime *rt = make_rt(2);

		reset_counters();
		atomic_store(&window_tries, 0);
		assert_int_equal(vz_spawn(rt, 0, &window_spec, NULL, NULL), 0);
		assert_int_equal(vz_spawn(rt, 1, &window_spec, NULL, NULL), 0);
		atomic_store(&accepted, 2);
		assert_int_equal(vz_runtime_start(rt), 0);
		wait_int(&window_tries, 2);
		finish(rt);
	}
	assert_int_equal(atomic_load(&window_spawns), 0);
}

/* actor.h allows the embedder driving an embedded shard to spawn on it
 * after start; outside vz_shard_poll() the runtime refuses (the calling
 * thread is the shard's driver but not "current"). */
static void test_embedder_spawn(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref r;

	(void)st;
	reset_counters();
	make_cfg(&cfg, 2);
	cfg.shards[1].embedded = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_true(vz_shard_poll(rt, 1, 0) >= 0); /* bound to this thread */
	assert_int_equal(vz_spawn(rt, 1, &nop_spec, NULL, &r), 0);
	finish(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_refill),
	    cmocka_unit_test(test_ring_full),
	    cmocka_unit_test(test_ring_full_at_stop),
	    cmocka_unit_test(test_outbox_limit),
	    cmocka_unit_test(test_uring_setup_eperm),
	    cmocka_unit_test(test_uring_setup_enosys),
	    cmocka_unit_test(test_uring_setup_at_start),
	    cmocka_unit_test(test_wait_eintr),
	    cmocka_unit_test(test_wake_failure),
	    cmocka_unit_test(test_sq_full_not_reached),
	    cmocka_unit_test(test_thread_start),
	    cmocka_unit_test(test_misuse_inside_actor),
	    cmocka_unit_test(test_null_and_range),
	    cmocka_unit_test(test_calls_after_stop),
	    cmocka_unit_test(test_destroy_while_stopping),
	    cmocka_unit_test(test_embedded_stop_from_other_thread),
	    cmocka_unit_test(test_concurrent_stop),
	    cmocka_unit_test(test_pool_completion_without_memory),
	    cmocka_unit_test(test_pool_submit_wrong_thread),
	    cmocka_unit_test(test_destroy_unstarted_with_sends),
	    cmocka_unit_test(test_start_window),
	    cmocka_unit_test(test_embedder_spawn),
	    cmocka_unit_test(test_timer_expiry_without_memory),
	};

	vz_test_watchdog(240);
	vz_test_warm_up_threads();
	if (getenv("VZ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VZ_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
