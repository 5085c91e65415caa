// SPDX-License-Identifier: MIT
/*
 * End-to-end behaviour of the runtime on real shard threads: local and
 * cross-shard delivery, FIFO per (sender, receiver), foreign-thread posts,
 * dead letters, stop with messages in flight, many actors, bounded
 * mailboxes, self-stop, timers, embedding, two runtimes at once. Every test
 * ends with the conservation check (sent = handled + dead-lettered) and a
 * clean stop/destroy.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_SEQ = VZ_MSG_USER, MSG_GO, MSG_PING, MSG_PONG, MSG_SPAWN_MANY, MSG_STOP_SELF };

/* ---- helpers -------------------------------------------------------- */

static atomic_ulong dead_seen;

static void count_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
		       int reason)
{
	(void)ctx;
	(void)to;
	(void)type;
	(void)data;
	(void)len;
	assert_true(reason < 0);
	atomic_fetch_add(&dead_seen, 1);
}

static vz_runtime *make_rt(unsigned shards)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_config(&cfg, shards);
	cfg.dead_letter = count_dead;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	return rt;
}

/* Stop, check conservation and the hook, destroy. */
static void finish(vz_runtime *rt, uint64_t expect_sent)
{
	vz_shard_stats t;
	uint64_t foreign, sent;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	sent = t.sent_local + t.sent_remote + foreign;
	if (expect_sent != UINT64_MAX)
		assert_int_equal(sent, expect_sent);
	assert_int_equal(sent, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, atomic_load(&dead_seen));
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	atomic_store(&dead_seen, 0);
}

/* A receiver that checks per-sender sequence numbers. */
#define MAX_SENDERS 64
struct seq_payload {
	uint32_t sender;
	uint64_t seq;
};
struct receiver {
	uint64_t next[MAX_SENDERS];
	atomic_ulong *received;
	atomic_int *errors;
};
struct receiver_arg {
	atomic_ulong *received;
	atomic_int *errors;
};

static int receiver_init(vz_actor *self, void *state, const void *arg)
{
	struct receiver *r = state;
	const struct receiver_arg *a = arg;

	(void)self;
	r->received = a->received;
	r->errors = a->errors;
	return 0;
}

static void receiver_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct receiver *r = state;
	struct seq_payload p;

	(void)self;
	if (vz_msg_type(m) != MSG_SEQ)
		return;
	memcpy(&p, vz_msg_data(m), sizeof p);
	if (p.sender >= MAX_SENDERS || p.seq != r->next[p.sender])
		atomic_fetch_add(r->errors, 1);
	r->next[p.sender] = p.seq + 1;
	atomic_fetch_add_explicit(r->received, 1, memory_order_release);
}

static const vz_actor_spec receiver_spec = {
    .name = "receiver",
    .state_size = sizeof(struct receiver),
    .init = receiver_init,
    .receive = receiver_receive,
};

/* A sender actor: on MSG_GO sends `count` sequenced messages to `target`
 * in bursts, re-triggering itself so other actors interleave. */
struct sender {
	vz_ref target;
	uint32_t id;
	uint64_t seq, count;
};
struct sender_arg {
	vz_ref target;
	uint32_t id;
	uint64_t count;
};

static int sender_init(vz_actor *self, void *state, const void *arg)
{
	struct sender *s = state;
	const struct sender_arg *a = arg;

	(void)self;
	s->target = a->target;
	s->id = a->id;
	s->count = a->count;
	return 0;
}

static void sender_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct sender *s = state;

	if (vz_msg_type(m) != MSG_GO)
		return;
	for (int i = 0; i < 97 && s->seq < s->count; i++) {
		struct seq_payload p = {s->id, s->seq};
		int rc = vz_send(self, s->target, MSG_SEQ, &p, sizeof p);

		if (rc == VZ_ESTOPPED)
			return;
		/* No flow control here, so a slow receiver can leave
		 * runtime.outbox_limit messages waiting: refused, nothing
		 * sent; try again on the next MSG_GO. */
		if (rc == VZ_EFULL)
			break;
		assert_int_equal(rc, 0);
		s->seq++;
	}
	if (s->seq < s->count) {
		int rc = vz_send(self, vz_self(self), MSG_GO, NULL, 0);

		/* refused once the runtime is stopping: the flood ends here */
		if (rc != VZ_ESTOPPED)
			assert_int_equal(rc, 0);
	}
}

static const vz_actor_spec sender_spec = {
    .name = "sender",
    .state_size = sizeof(struct sender),
    .init = sender_init,
    .receive = sender_receive,
};

static void wait_count(atomic_ulong *c, uint64_t want)
{
	uint64_t end = vz_test_now_ns() + 60ull * 1000000000u;

	while (atomic_load_explicit(c, memory_order_acquire) < want) {
		assert_true(vz_test_now_ns() < end);
		sched_yield();
	}
}

/* ---- tests ------------------------------------------------------------ */

/* Senders on every shard to one receiver per shard: FIFO per pair, local
 * and cross-shard, nothing lost. */
static void test_fifo_all_pairs(void **st)
{
	const unsigned shards = 3, per = 4;
	uint64_t count = vz_test_scale(20000);
	atomic_ulong received = 0;
	atomic_int errors = 0;
	struct receiver_arg ra = {&received, &errors};
	vz_ref recv[3], send[3 * 4 * 3];
	vz_runtime *rt = make_rt(shards);
	unsigned nsend = 0;

	(void)st;
	for (unsigned s = 0; s < shards; s++)
		assert_int_equal(vz_spawn(rt, s, &receiver_spec, &ra, &recv[s]), 0);
	for (unsigned s = 0; s < shards; s++)
		for (unsigned t = 0; t < shards; t++)
			for (unsigned k = 0; k < per; k++) {
				struct sender_arg sa = {recv[t], nsend, count};

				assert_int_equal(vz_spawn(rt, s, &sender_spec, &sa, &send[nsend]),
						 0);
				nsend++;
			}
	assert_int_equal(vz_runtime_start(rt), 0);
	for (unsigned i = 0; i < nsend; i++)
		assert_int_equal(vz_post(rt, send[i], MSG_GO, NULL, 0), 0);
	wait_count(&received, nsend * count);
	assert_int_equal(atomic_load(&errors), 0);
	/* nsend posts + their sends + the self re-triggers */
	finish(rt, UINT64_MAX);
}

/* Foreign threads posting concurrently: per-thread FIFO, conservation. */
struct poster_arg {
	vz_runtime *rt;
	vz_ref target;
	uint32_t id;
	uint64_t count;
	uint64_t full;
};

static void *poster(void *p)
{
	struct poster_arg *a = p;

	for (uint64_t i = 0; i < a->count;) {
		struct seq_payload sp = {a->id, i};
		int rc = vz_post(a->rt, a->target, MSG_SEQ, &sp, sizeof sp);

		if (rc == VZ_ENOMEM) { /* foreign pool at its cap: back off */
			a->full++;
			sched_yield();
			continue;
		}
		assert_int_equal(rc, 0);
		i++;
	}
	return NULL;
}

static void test_foreign_posts(void **st)
{
	enum { THREADS = 4 };
	uint64_t count = vz_test_scale(50000);
	atomic_ulong received = 0;
	atomic_int errors = 0;
	struct receiver_arg ra = {&received, &errors};
	struct poster_arg pa[THREADS];
	pthread_t th[THREADS];
	vz_runtime *rt = make_rt(2);
	vz_ref r;

	(void)st;
	assert_int_equal(vz_spawn(rt, 1, &receiver_spec, &ra, &r), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	for (int i = 0; i < THREADS; i++) {
		pa[i] = (struct poster_arg){rt, r, (uint32_t)i, count, 0};
		assert_int_equal(pthread_create(&th[i], NULL, poster, &pa[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	wait_count(&received, THREADS * count);
	assert_int_equal(atomic_load(&errors), 0);
	finish(rt, THREADS * count);
}

/* Messages to stopped actors are dead letters, counted and hooked. */
static void test_dead_letters(void **st)
{
	atomic_ulong received = 0;
	atomic_int errors = 0;
	struct receiver_arg ra = {&received, &errors};
	vz_runtime *rt = make_rt(2);
	vz_ref r0, r1;
	struct seq_payload p = {0, 0};

	(void)st;
	assert_int_equal(vz_spawn(rt, 0, &receiver_spec, &ra, &r0), 0);
	assert_int_equal(vz_spawn(rt, 1, &receiver_spec, &ra, &r1), 0);
	assert_int_equal(vz_stop(rt, r1), 0); /* before start: immediate */
	assert_int_equal(vz_stop(rt, r1), VZ_ESTALE);
	assert_int_equal(vz_runtime_start(rt), 0);
	/* a stale target on another shard is accepted, then dead-lettered */
	assert_int_equal(vz_post(rt, r1, MSG_SEQ, &p, sizeof p), 0);
	assert_int_equal(vz_post(rt, r0, MSG_SEQ, &p, sizeof p), 0);
	wait_count(&received, 1);
	/* stop r0 from a foreign thread: queued behind earlier posts */
	assert_int_equal(vz_stop(rt, r0), 0);
	for (int i = 0; i < 100; i++)
		vz_post(rt, r0, MSG_SEQ, &p, sizeof p); /* accepted, then dead */
	uint64_t end = vz_test_now_ns() + 10ull * 1000000000u;
	while (atomic_load(&dead_seen) < 101 && vz_test_now_ns() < end)
		sched_yield();
	assert_int_equal(atomic_load(&dead_seen), 101);
	assert_int_equal(atomic_load(&received), 1);
	finish(rt, 102);
}

/* Stop while senders are flooding: nothing lost, stop is bounded. */
static void test_stop_in_flight(void **st)
{
	atomic_ulong received = 0;
	atomic_int errors = 0;
	struct receiver_arg ra = {&received, &errors};
	vz_ref recv[2], send[8];
	vz_runtime *rt = make_rt(2);

	(void)st;
	for (unsigned s = 0; s < 2; s++)
		assert_int_equal(vz_spawn(rt, s, &receiver_spec, &ra, &recv[s]), 0);
	for (unsigned i = 0; i < 8; i++) {
		/* far more than will be handled before the stop below */
		struct sender_arg sa = {recv[(i + 1) % 2], i, vz_test_scale(200000)};

		assert_int_equal(vz_spawn(rt, i % 2, &sender_spec, &sa, &send[i]), 0);
	}
	assert_int_equal(vz_runtime_start(rt), 0);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(vz_post(rt, send[i], MSG_GO, NULL, 0), 0);
	wait_count(&received, 10000);
	finish(rt, UINT64_MAX); /* conservation with messages everywhere */
	assert_int_equal(atomic_load(&errors), 0);
}

/* Many actors: spawned and stopped from inside the shard. */
struct spawner {
	uint64_t n;
	atomic_int *done;
};

static void spawner_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct spawner *sp = state;
	vz_runtime *rt = vz_actor_runtime(self);
	unsigned shard = vz_actor_shard(self);
	uint64_t n;
	vz_ref *refs;

	if (vz_msg_type(m) != MSG_SPAWN_MANY)
		return;
	memcpy(&n, vz_msg_data(m), sizeof n);
	refs = malloc(n * sizeof *refs);
	assert_non_null(refs);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(vz_spawn(rt, shard, &receiver_spec,
					  &(struct receiver_arg){NULL, NULL}, &refs[i]),
				 0);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(vz_stop(rt, refs[i]), 0);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(vz_stop(rt, refs[i]), VZ_ESTALE);
	/* a second generation reuses the slots with new references */
	for (uint64_t i = 0; i < n; i++) {
		vz_ref again;

		assert_int_equal(
		    vz_spawn(rt, shard, &receiver_spec, &(struct receiver_arg){NULL, NULL}, &again),
		    0);
		assert_false(vz_ref_eq(again, refs[i]));
	}
	sp->n += n;
	free(refs);
	atomic_fetch_add(sp->done, 1);
}

static int spawner_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	((struct spawner *)state)->done = (atomic_int *)arg;
	return 0;
}

static const vz_actor_spec spawner_spec = {
    .name = "spawner",
    .state_size = sizeof(struct spawner),
    .init = spawner_init,
    .receive = spawner_receive,
};

static void test_many_actors(void **st)
{
	atomic_int done = 0;
	vz_runtime *rt = make_rt(2);
	uint64_t n = vz_test_scale(50000); /* per shard: 100k in all at scale 1 */
	vz_shard_stats t;
	vz_ref sp[2];

	(void)st;
	for (unsigned s = 0; s < 2; s++)
		assert_int_equal(vz_spawn(rt, s, &spawner_spec, &done, &sp[s]), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	for (unsigned s = 0; s < 2; s++)
		assert_int_equal(vz_post(rt, sp[s], MSG_SPAWN_MANY, &n, sizeof n), 0);
	assert_true(vz_test_wait_flag((volatile int *)&done, 60));
	while (atomic_load(&done) < 2)
		sched_yield();
	vz_stats_total(rt, &t, NULL);
	assert_int_equal(t.actors_spawned, 2 + 4 * n);
	assert_int_equal(t.actors_live, 2 + 2 * n);
	finish(rt, 2);
}

/* Bounded mailbox: VZ_EFULL once the limit is reached, counts come back
 * after handling. The receiver sits on a shard we hold busy with a slow
 * first message so the mailbox fills. */
static atomic_int gate_open;

static void slow_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	if (vz_msg_type(m) == MSG_PING)
		while (!atomic_load(&gate_open))
			sched_yield();
}

static const vz_actor_spec bounded_spec = {
    .name = "bounded",
    .receive = slow_receive,
    .mailbox_limit = 8,
};

static void test_bounded_mailbox(void **st)
{
	vz_runtime *rt = make_rt(2);
	vz_shard_stats t;
	vz_ref b;
	int accepted = 0, full = 0;

	(void)st;
	atomic_store(&gate_open, 0);
	assert_int_equal(vz_spawn(rt, 1, &bounded_spec, NULL, &b), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	for (int i = 0; i < 20; i++) {
		int rc = vz_post(rt, b, MSG_PING, NULL, 0);

		if (rc == 0)
			accepted++;
		else if (rc == VZ_EFULL)
			full++;
		else
			fail_msg("unexpected %s", vz_errname(rc));
	}
	assert_int_equal(accepted, 8);
	assert_int_equal(full, 12);
	atomic_store(&gate_open, 1);
	uint64_t end = vz_test_now_ns() + 10ull * 1000000000u;
	do {
		vz_stats_total(rt, &t, NULL);
	} while (t.handled < 8 && vz_test_now_ns() < end);
	assert_int_equal(t.handled, 8);
	/* room again */
	assert_int_equal(vz_post(rt, b, MSG_PING, NULL, 0), 0);
	finish(rt, 9);
}

/* An actor that stops itself from inside receive. */
static void self_stopper(vz_actor *self, void *state, const vz_msg *m)
{
	atomic_int *n = *(atomic_int **)state;

	atomic_fetch_add(n, 1);
	if (vz_msg_type(m) == MSG_STOP_SELF)
		assert_int_equal(vz_stop(vz_actor_runtime(self), vz_self(self)), 0);
}

static int self_stopper_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	*(const void **)state = arg;
	return 0;
}

static void on_stop_count(vz_actor *self, void *state)
{
	(void)self;
	atomic_fetch_add(*(atomic_int **)state, 1000);
}

static const vz_actor_spec self_stop_spec = {
    .name = "self-stopper",
    .state_size = sizeof(void *),
    .init = self_stopper_init,
    .receive = self_stopper,
    .on_stop = on_stop_count,
};

static void test_self_stop(void **st)
{
	atomic_int n = 0;
	vz_runtime *rt = make_rt(1);
	vz_ref a;

	(void)st;
	assert_int_equal(vz_spawn(rt, 0, &self_stop_spec, &n, &a), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, a, MSG_STOP_SELF, NULL, 0), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(vz_post(rt, a, MSG_PING, NULL, 0), 0);
	uint64_t end = vz_test_now_ns() + 10ull * 1000000000u;
	while (atomic_load(&dead_seen) < 10 && vz_test_now_ns() < end)
		sched_yield();
	assert_int_equal(atomic_load(&n), 1001); /* one receive, then on_stop */
	assert_int_equal(atomic_load(&dead_seen), 10);
	finish(rt, 11);
}

static int failing_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	(void)state;
	(void)arg;
	return VZ_ENOENT;
}

static void test_init_failure(void **st)
{
	vz_actor_spec spec = {.name = "f", .init = failing_init, .receive = slow_receive};
	vz_runtime *rt = make_rt(1);
	vz_ref r = VZ_REF_NULL;

	(void)st;
	assert_int_equal(vz_spawn(rt, 0, &spec, NULL, &r), VZ_ENOENT);
	assert_true(vz_ref_is_null(r));
	assert_int_equal(vz_runtime_start(rt), 0);
	finish(rt, 0);
}

/* Ping-pong between two actors with replies, local and cross-shard. */
struct pinger {
	uint64_t left;
	atomic_int *done;
};

static void pinger_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct pinger *p = state;

	switch (vz_msg_type(m)) {
	case MSG_GO: {
		vz_ref peer;

		memcpy(&peer, vz_msg_data(m), sizeof peer);
		assert_int_equal(vz_send(self, peer, MSG_PING, NULL, 0), 0);
		break;
	}
	case MSG_PING:
		assert_int_equal(vz_reply(self, m, MSG_PONG, NULL, 0), 0);
		break;
	case MSG_PONG:
		if (--p->left == 0)
			atomic_store(p->done, 1);
		else
			assert_int_equal(vz_reply(self, m, MSG_PING, NULL, 0), 0);
		break;
	}
}

static int pinger_init(vz_actor *self, void *state, const void *arg)
{
	struct pinger *p = state;

	(void)self;
	p->done = (atomic_int *)arg;
	p->left = 20000;
	return 0;
}

static const vz_actor_spec pinger_spec = {
    .name = "pinger",
    .state_size = sizeof(struct pinger),
    .init = pinger_init,
    .receive = pinger_receive,
};

static void pingpong(unsigned shard_b)
{
	atomic_int done = 0;
	vz_runtime *rt = make_rt(2);
	vz_ref a, b;

	assert_int_equal(vz_spawn(rt, 0, &pinger_spec, &done, &a), 0);
	assert_int_equal(vz_spawn(rt, shard_b, &pinger_spec, &done, &b), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, a, MSG_GO, &b, sizeof b), 0);
	assert_true(vz_test_wait_flag((volatile int *)&done, 60));
	finish(rt, 1 + 2 * 20000);
}

static void test_pingpong_local(void **st)
{
	(void)st;
	pingpong(0);
}

static void test_pingpong_cross(void **st)
{
	(void)st;
	pingpong(1);
}

/* An actor that sends itself a message and then stops within one run: it
 * is queued again by its own send while still live, so the slot must be
 * freed once (by the queue), not twice. Two later spawns must then get
 * two different slots, and every spawned actor gets its on_stop. */
static atomic_int lives, stops_seen;

static int counted_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	(void)state;
	(void)arg;
	atomic_fetch_add(&lives, 1);
	return 0;
}

static void counted_stop(vz_actor *self, void *state)
{
	(void)self;
	(void)state;
	atomic_fetch_add(&stops_seen, 1);
}

static void send_self_then_stop(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) == MSG_STOP_SELF) {
		assert_int_equal(vz_send(self, vz_self(self), MSG_PING, NULL, 0), 0);
		assert_int_equal(vz_stop(vz_actor_runtime(self), vz_self(self)), 0);
	}
}

static const vz_actor_spec self_send_stop_spec = {
    .name = "self-send-stop",
    .init = counted_init,
    .receive = send_self_then_stop,
    .on_stop = counted_stop,
};

static void spawn_two_receive(vz_actor *self, void *state, const vz_msg *m)
{
	atomic_int *done = *(atomic_int **)state;
	vz_ref a, b;

	if (vz_msg_type(m) != MSG_SPAWN_MANY)
		return;
	assert_int_equal(
	    vz_spawn(vz_actor_runtime(self), vz_actor_shard(self), &self_send_stop_spec, NULL, &a),
	    0);
	assert_int_equal(
	    vz_spawn(vz_actor_runtime(self), vz_actor_shard(self), &self_send_stop_spec, NULL, &b),
	    0);
	/* different slots (bits 24..47 of a reference) */
	assert_true(((a.id >> 24) & 0xffffff) != ((b.id >> 24) & 0xffffff));
	atomic_store(done, 1);
}

static const vz_actor_spec spawn_two_spec = {
    .name = "spawn-two",
    .state_size = sizeof(void *),
    .init = self_stopper_init,
    .receive = spawn_two_receive,
};

static void test_self_send_then_stop(void **st)
{
	atomic_int done = 0;
	vz_runtime *rt = make_rt(1);
	vz_ref a, sp;

	(void)st;
	atomic_store(&lives, 0);
	atomic_store(&stops_seen, 0);
	assert_int_equal(vz_spawn(rt, 0, &self_send_stop_spec, NULL, &a), 0);
	assert_int_equal(vz_spawn(rt, 0, &spawn_two_spec, &done, &sp), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, a, MSG_STOP_SELF, NULL, 0), 0);
	uint64_t end = vz_test_now_ns() + 10ull * 1000000000u;
	while (atomic_load(&stops_seen) < 1 && vz_test_now_ns() < end)
		sched_yield();
	assert_int_equal(atomic_load(&stops_seen), 1);
	assert_int_equal(vz_post(rt, sp, MSG_SPAWN_MANY, NULL, 0), 0);
	assert_true(vz_test_wait_flag((volatile int *)&done, 10));
	finish(rt, UINT64_MAX);
	assert_int_equal(atomic_load(&lives), 3);
	assert_int_equal(atomic_load(&stops_seen), 3);
}

/* Embedding: the test thread drives shard 1; shard 0 is runtime-owned. */
static void test_embedded_shard(void **st)
{
	atomic_ulong received = 0;
	atomic_int errors = 0;
	struct receiver_arg ra = {&received, &errors};
	vz_config cfg;
	vz_runtime *rt;
	vz_ref r, s;
	uint64_t count = 5000;
	int rc;

	(void)st;
	vz_test_config(&cfg, 2);
	cfg.dead_letter = count_dead;
	cfg.shards[1].embedded = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 1, &receiver_spec, &ra, &r), 0);
	{
		struct sender_arg sa = {r, 0, count};

		assert_int_equal(vz_spawn(rt, 0, &sender_spec, &sa, &s), 0);
	}
	assert_int_equal(vz_shard_poll(rt, 1, 0), VZ_ESTATE);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_shard_poll(rt, 0, 0), VZ_EINVAL);
	assert_int_equal(vz_post(rt, s, MSG_GO, NULL, 0), 0);
	uint64_t end = vz_test_now_ns() + 30ull * 1000000000u;
	while (atomic_load(&received) < count) {
		rc = vz_shard_poll(rt, 1, 1000);
		assert_true(rc >= 0);
		assert_true(vz_test_now_ns() < end);
	}
	assert_int_equal(vz_current_shard(rt), -1);
	assert_int_equal(atomic_load(&errors), 0);
	/* stop from the driving thread: it drives its own shard meanwhile */
	finish(rt, UINT64_MAX);
}

/* Two runtimes in one process, each with its own traffic. */
static void test_two_runtimes(void **st)
{
	atomic_int done1 = 0, done2 = 0;
	vz_runtime *rt1 = make_rt(2), *rt2 = make_rt(2);
	vz_ref a1, b1, a2, b2;

	(void)st;
	assert_int_equal(vz_spawn(rt1, 0, &pinger_spec, &done1, &a1), 0);
	assert_int_equal(vz_spawn(rt1, 1, &pinger_spec, &done1, &b1), 0);
	assert_int_equal(vz_spawn(rt2, 0, &pinger_spec, &done2, &a2), 0);
	assert_int_equal(vz_spawn(rt2, 1, &pinger_spec, &done2, &b2), 0);
	assert_int_equal(vz_runtime_start(rt1), 0);
	assert_int_equal(vz_runtime_start(rt2), 0);
	assert_int_equal(vz_post(rt1, a1, MSG_GO, &b1, sizeof b1), 0);
	assert_int_equal(vz_post(rt2, a2, MSG_GO, &b2, sizeof b2), 0);
	assert_true(vz_test_wait_flag((volatile int *)&done1, 60));
	assert_true(vz_test_wait_flag((volatile int *)&done2, 60));
	finish(rt1, UINT64_MAX);
	finish(rt2, UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pingpong_local), cmocka_unit_test(test_pingpong_cross),
	    cmocka_unit_test(test_fifo_all_pairs), cmocka_unit_test(test_foreign_posts),
	    cmocka_unit_test(test_dead_letters),   cmocka_unit_test(test_stop_in_flight),
	    cmocka_unit_test(test_many_actors),	   cmocka_unit_test(test_bounded_mailbox),
	    cmocka_unit_test(test_self_stop),	   cmocka_unit_test(test_self_send_then_stop),
	    cmocka_unit_test(test_init_failure),   cmocka_unit_test(test_embedded_shard),
	    cmocka_unit_test(test_two_runtimes),
	};

	vz_test_watchdog(240);
	if (getenv("VZ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VZ_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
