// SPDX-License-Identifier: MIT
/*
 * Direct dispatch from the incoming ring slot (core/direct.h): a message
 * whose target has nothing queued is handled during the drain, from a view
 * of the slot (inline payloads) or from the block the slot points to. These
 * tests make the delivery contract fail loudly if that path breaks it:
 *
 * - fifo_mix: one stream from shard 0 to shard 1, acked bursts of inline
 *   and block payloads, where the receiver keeps its mailbox non-empty for
 *   a while now and then (a chain of messages to itself) so that the
 *   stream switches between direct and queued dispatch; FIFO, every byte,
 *   an ask per burst answered with vz_reply() (its correlation read from
 *   the view), conservation. Both forms are seen (the test asserts it).
 * - forward: the receiver forwards every message it is handed directly
 *   (to an actor of its own shard and to one on the sender's shard): a
 *   view must be copied (the slot is released after the receive), a block
 *   handed on; a second forward is refused; a reservation left open by a
 *   direct receive is dropped at the end of that run.
 * - stop_inside: an actor stops itself from inside a direct receive; the
 *   rest of its burst becomes dead letters, in order, exactly once.
 * - stop_race: a flooded actor is stopped from the test thread; what it
 *   handled and what was dead-lettered is exactly the sent sequence, in
 *   order, with no gap and no repeat.
 * - bounded: a bounded mailbox (limit 4) fed by acked bursts of 3: a
 *   direct dispatch that failed to give its place back would make a later
 *   send fail with VZ_EFULL.
 * - send_in_slot: vz_send()'s cross-shard fast path (send.c, send_cross())
 *   writes the first small message of a turn for a shard straight into the
 *   ring slot and takes no block: with the sender's pool emptied, it makes
 *   no slab refill, while the next message of the same turn (queued behind
 *   it in the outbox: FIFO) takes a block and so a refill; a payload too
 *   long for a slot takes a block too. Both arrive, in order, intact.
 *
 * Whether a receive call is a direct one is read from the actor (white
 * box): a receive from the mailbox runs while the popped cell's segment is
 * still held (it is given back after the call), a direct one with an
 * empty mailbox that holds no segment. A direct receive of an inline
 * message must also read its payload in the ring slot itself: the
 * consumer has not moved past that slot yet.
 *
 * VZ_TEST_SLEEP_FENCES: also run with VZ_SLEEP_FENCE=fence.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/xshard/slot.h"

#include <veloz/ask.h>

enum { MSG_GO = VZ_MSG_USER, MSG_DATA, MSG_ACK, MSG_SELF, MSG_A, MSG_X };

static vz_runtime *g_rt;

/* Is m, handled now on shard dst, the inline message in the slot that
 * dst's ring from src is at? Called on dst's thread, the ring's consumer,
 * which alone writes `next`. */
static bool in_slot(unsigned dst, unsigned src, const vz_msg *m)
{
	struct vz__slot_ring *r = g_rt->shards[dst]->in[src];
	struct vz__slot *s = &r->slots[r->next & r->mask];

	if (atomic_load_explicit(&s->seq, memory_order_acquire) != r->next + 1)
		return false;
	return VZ__SLOT_KIND(s->word) == VZ__SLOT_INLINE &&
	       vz_msg_data(m) == (const void *)((const struct vz__slot_msg *)s->body)->data;
}

/* Is self, on shard 1, handling m (from shard 0) directly? Before self
 * sends itself anything in this call. A direct inline message must be
 * read in its slot (checked here). */
static bool direct(const vz_actor *self, const vz_msg *m)
{
	bool d = self->mbox.seg_bytes == 0;

	if (d && vz_msg_len(m) <= VZ__SLOT_INLINE_MAX)
		VZ_TEST_CHECK(in_slot(1, 0, m));
	if (!d)
		VZ_TEST_CHECK(!in_slot(1, 0, m));
	return d;
}

/* Payload sizes: inline in a slot (<= 32 bytes) and by block. Nine of them,
 * so bursts of 16 or 64 start on every size in turn. */
static const uint32_t lens[] = {0,  5,	 8,   16, VZ__SLOT_INLINE_MAX, VZ__SLOT_INLINE_MAX + 1,
				64, 200, 1000};
#define NLENS (sizeof lens / sizeof lens[0])

static uint32_t len_of(uint32_t seq)
{
	return lens[seq % NLENS];
}

static unsigned char byte_of(uint32_t seq, uint32_t i)
{
	return (unsigned char)(seq * 131u + i * 7u + 1u);
}

static void fill(unsigned char *buf, uint32_t seq)
{
	uint32_t len = len_of(seq);

	for (uint32_t i = 0; i < len; i++)
		buf[i] = byte_of(seq, i);
	if (len >= 4)
		memcpy(buf, &seq, 4);
}

/* Payload of seq intact (seq itself in the first 4 bytes when there is
 * room; otherwise implied by the order, which the caller checks). */
static bool intact(const void *data, size_t len, uint32_t seq)
{
	const unsigned char *d = data;

	if (len != len_of(seq))
		return false;
	for (uint32_t i = len >= 4 ? 4 : 0; i < len; i++)
		if (d[i] != byte_of(seq, i))
			return false;
	if (len >= 4) {
		uint32_t got;

		memcpy(&got, d, 4);
		return got == seq;
	}
	return true;
}

static atomic_int g_done;

/* The last dead letter's type and reason, named when a test finds more
 * dead letters than it expects. */
static uint32_t g_dead_type;
static int g_dead_reason;

static void note_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
		      int reason)
{
	(void)ctx, (void)to, (void)data, (void)len;
	__atomic_store_n(&g_dead_type, type, __ATOMIC_RELAXED);
	__atomic_store_n(&g_dead_reason, reason, __ATOMIC_RELAXED);
}

/* Two shards, dead letters to hook (the victim tests check each one). */
static vz_runtime *make_rt_hook(vz_dead_letter_fn hook)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_config(&cfg, 2);
	cfg.dead_letter = hook;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	g_rt = rt;
	return rt;
}

static vz_runtime *make_rt(void)
{
	return make_rt_hook(note_dead);
}

/* Stop, then sent = handled + dead-lettered; returns the dead letters. */
static uint64_t finish(vz_runtime *rt)
{
	vz_shard_stats t;
	uint64_t foreign;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	g_rt = NULL;
	if (t.dead_letters)
		print_message("%llu dead letters, the last of type %u (reason %d)\n",
			      (unsigned long long)t.dead_letters, g_dead_type, g_dead_reason);
	return t.dead_letters;
}

/* ---- a sender of acked bursts (shard 0) --------------------------------- */

struct sender {
	vz_ref peer;
	uint32_t next, total, burst;
	bool ask_first; /* the first message of each burst is an ask */
	uint32_t corr;	/* of the last ask */
	uint32_t answers;
	uint32_t acks;
	bool efull_ok; /* the target may refuse (stop_race: never) */
};

static unsigned char sbuf[1024];
static atomic_uint g_sent; /* messages the sender got accepted */
/* The sender has handled the ack of its last burst: nothing it sent or
 * was sent is still in flight, so stopping now dead-letters nothing. */
static int g_acked;
/* Acks sent by the receiver, and handled by the sender (after the burst
 * each one starts): equal once the sender will send nothing more. */
static atomic_uint g_acks_sent, g_acks_handled;

static void send_burst(vz_actor *self, struct sender *s)
{
	for (uint32_t k = 0; k < s->burst && s->next < s->total; k++, s->next++) {
		uint32_t seq = s->next;
		int rc;

		fill(sbuf, seq);
		if (k == 0 && s->ask_first)
			rc = vz_ask(self, s->peer, MSG_DATA, sbuf, len_of(seq), 60000000000ull,
				    &s->corr);
		else
			rc = vz_send(self, s->peer, MSG_DATA, sbuf, len_of(seq));
		VZ_TEST_CHECK(rc == 0);
		if (rc == 0)
			atomic_fetch_add(&g_sent, 1);
	}
}

static void sender_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct sender *s = state;

	switch (vz_msg_type(m)) {
	case MSG_GO:
		memcpy(s, vz_msg_data(m), sizeof *s);
		send_burst(self, s);
		break;
	case MSG_ACK:
		/* The ack of the next-to-last burst sends the last one. */
		if (++s->acks * s->burst >= s->total)
			__atomic_store_n(&g_acked, 1, __ATOMIC_RELEASE);
		send_burst(self, s);
		atomic_fetch_add(&g_acks_handled, 1);
		break;
	case MSG_A: {
		uint32_t seq;

		/* The ask's answer: its correlation came back through the
		 * receiver's view of the slot. */
		VZ_TEST_CHECK(vz_msg_corr(m) == s->corr);
		VZ_TEST_CHECK(vz_msg_len(m) == 4);
		memcpy(&seq, vz_msg_data(m), 4);
		VZ_TEST_CHECK(seq % s->burst == 0);
		s->answers++;
		break;
	}
	default:
		VZ_TEST_CHECK(!"sender: unexpected message (an ask timed out?)");
	}
}

static const vz_actor_spec sender_spec = {
    .name = "sender",
    .state_size = sizeof(struct sender),
    .receive = sender_receive,
};

/* The sender, on shard 0 (before start). */
static vz_ref spawn_sender(vz_runtime *rt)
{
	vz_ref a;

	assert_int_equal(vz_spawn(rt, 0, &sender_spec, NULL, &a), 0);
	return a;
}

/* After start: total messages to peer in bursts (the peer acks each). */
static void go(vz_runtime *rt, vz_ref sender, vz_ref peer, uint32_t total, uint32_t burst,
	       bool ask_first)
{
	struct sender s = {.peer = peer, .total = total, .burst = burst, .ask_first = ask_first};

	assert_int_equal(vz_post(rt, sender, MSG_GO, &s, sizeof s), 0);
}

/* Before a run of the sender: no failures, nothing sent, done or acked. */
static void reset_sender_run(void)
{
	vz_test_reset_fails();
	atomic_store(&g_done, 0);
	__atomic_store_n(&g_acked, 0, __ATOMIC_RELAXED);
	atomic_store(&g_sent, 0);
}

/* Start, send total messages to peer, and wait until the peer has seen
 * them all and the sender has handled the ack of the last burst (so no
 * ack is in flight at the stop). */
static void run_until_acked(vz_runtime *rt, vz_ref sender, vz_ref peer, uint32_t total,
			    uint32_t burst, bool ask_first)
{
	assert_int_equal(vz_runtime_start(rt), 0);
	go(rt, sender, peer, total, burst, ask_first);
	assert_true(vz_test_wait_flag((volatile int *)&g_done, 240));
	assert_true(vz_test_wait_flag(&g_acked, 240));
}

/* ---- fifo_mix ---------------------------------------------------------- */

#define MIX_BURST 64u
#define MIX_N	  (MIX_BURST * 160u)

struct mixer {
	uint32_t next;
	uint32_t direct, queued, asks_direct;
	bool chain;	       /* keeping the mailbox non-empty */
	uint32_t chain_queued; /* queued messages seen during this chain */
	uint32_t self_out;     /* messages to self not yet received */
};

static struct mixer g_mix; /* copied out at the end of the run */

static void mixer_self(vz_actor *self, struct mixer *x)
{
	int rc = vz_send(self, vz_self(self), MSG_SELF, NULL, 0);

	VZ_TEST_CHECK(rc == 0);
	if (rc == 0)
		x->self_out++;
}

/* Done when the whole stream is in and no message to self is left. */
static void mixer_check_done(struct mixer *x)
{
	if (x->next == MIX_N && x->self_out == 0) {
		g_mix = *x;
		atomic_store(&g_done, 1);
	}
}

static void mixer_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct mixer *x = state;
	uint32_t seq = x->next;
	bool d;

	if (vz_msg_type(m) == MSG_SELF) {
		x->self_out--;
		/* Go on until some of the stream has come in behind us. */
		if (x->chain_queued < 3 && x->next < MIX_N)
			mixer_self(self, x);
		else
			x->chain = false;
		mixer_check_done(x);
		return;
	}
	VZ_TEST_CHECK(vz_msg_type(m) == MSG_DATA);
	d = direct(self, m);
	VZ_TEST_CHECK(intact(vz_msg_data(m), vz_msg_len(m), seq));
	x->next++;
	if (d) {
		x->direct++;
	} else {
		x->queued++;
		if (x->chain)
			x->chain_queued++;
	}
	if (vz_msg_corr(m)) {
		VZ_TEST_CHECK(seq % MIX_BURST == 0);
		if (d)
			x->asks_direct++;
		VZ_TEST_CHECK(vz_reply(self, m, MSG_A, &seq, 4) == 0);
	}
	/* Every fourth burst: from its first message on, the mailbox holds
	 * a message to self until some of the burst has queued behind it. */
	if (seq % (4 * MIX_BURST) == MIX_BURST && !x->chain) {
		x->chain = true;
		x->chain_queued = 0;
		mixer_self(self, x);
	}
	if (seq % MIX_BURST == MIX_BURST - 1)
		VZ_TEST_CHECK(vz_send(self, vz_msg_sender(m), MSG_ACK, NULL, 0) == 0);
	mixer_check_done(x);
}

static const vz_actor_spec mixer_spec = {
    .name = "mixer",
    .state_size = sizeof(struct mixer),
    .receive = mixer_receive,
};

static void test_fifo_mix(void **st)
{
	vz_runtime *rt = make_rt();
	vz_ref a, b;

	(void)st;
	reset_sender_run();
	memset(&g_mix, 0, sizeof g_mix);
	assert_int_equal(vz_spawn(rt, 1, &mixer_spec, NULL, &b), 0);
	a = spawn_sender(rt);
	run_until_acked(rt, a, b, MIX_N, MIX_BURST, true);
	assert_int_equal(finish(rt), 0);
	vz_test_assert_no_fails();
	print_message("fifo_mix: %u direct, %u queued, %u of %u asks direct\n", g_mix.direct,
		      g_mix.queued, g_mix.asks_direct, MIX_N / MIX_BURST);
	assert_int_equal(g_mix.next, MIX_N);
	assert_int_equal(atomic_load(&g_sent), MIX_N);
	/* Both forms, and asks read from the view. */
	assert_true(g_mix.direct > 0);
	assert_true(g_mix.queued >= 3);
	assert_true(g_mix.asks_direct > 0);
}

/* ---- forward ----------------------------------------------------------- */

#define FWD_BURST 16u
#define FWD_N	  (FWD_BURST * 200u)

struct fwd_sink {
	uint32_t parity; /* 0: even seqs, 1: odd */
	uint32_t next;	 /* next seq expected */
	uint32_t got;
};

static atomic_uint g_sunk;

/* Parameters with the spawn (see victim_init()). */
static int sink_init(vz_actor *self, void *state, const void *arg)
{
	struct fwd_sink *k = state;

	(void)self;
	memcpy(&k->parity, arg, sizeof k->parity);
	k->next = k->parity;
	return 0;
}

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct fwd_sink *k = state;

	(void)self;
	VZ_TEST_CHECK(vz_msg_type(m) == MSG_DATA);
	VZ_TEST_CHECK(intact(vz_msg_data(m), vz_msg_len(m), k->next));
	k->next += 2;
	k->got++;
	atomic_fetch_add(&g_sunk, 1);
}

static const vz_actor_spec sink_spec = {
    .name = "sink",
    .state_size = sizeof(struct fwd_sink),
    .init = sink_init,
    .receive = sink_receive,
};

struct forwarder {
	vz_ref to[2]; /* [0] on this shard (even seqs), [1] on the sender's (odd) */
	uint32_t next;
	uint32_t direct_inline, direct_block, queued;
};

static struct forwarder g_fwd;

static int forwarder_init(vz_actor *self, void *state, const void *arg)
{
	struct forwarder *f = state;

	(void)self;
	memcpy(f->to, arg, sizeof f->to);
	return 0;
}

static void forwarder_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct forwarder *f = state;
	uint32_t seq = f->next;
	vz_ref sender = vz_msg_sender(m);
	void *buf;
	bool d;
	int rc;

	VZ_TEST_CHECK(vz_msg_type(m) == MSG_DATA);
	/* Everything about m is read before the forward: after it, m is
	 * no longer ours. */
	d = direct(self, m);
	VZ_TEST_CHECK(intact(vz_msg_data(m), vz_msg_len(m), seq));
	if (d && len_of(seq) <= VZ__SLOT_INLINE_MAX)
		f->direct_inline++;
	else if (d)
		f->direct_block++;
	else
		f->queued++;
	f->next++;
	rc = vz_forward(self, m, f->to[seq & 1]);
	VZ_TEST_CHECK(rc == 0);
	if (rc == 0)
		VZ_TEST_CHECK(vz_forward(self, m, f->to[seq & 1]) == VZ_ESTATE);
	/* A reservation left open: the end of this run drops it. A direct
	 * dispatch is a run of its own, so here the last one is always gone
	 * (within a run of queued messages it is still open: VZ_EBUSY). */
	rc = vz_send_reserve(self, f->to[0], MSG_X, 8, &buf);
	if (d)
		VZ_TEST_CHECK(rc == 0);
	else
		VZ_TEST_CHECK(rc == 0 || rc == VZ_EBUSY);
	if (seq % FWD_BURST == FWD_BURST - 1)
		VZ_TEST_CHECK(vz_send(self, sender, MSG_ACK, NULL, 0) == 0);
	if (f->next == FWD_N)
		g_fwd = *f;
}

static const vz_actor_spec forwarder_spec = {
    .name = "forwarder",
    .state_size = sizeof(struct forwarder),
    .init = forwarder_init,
    .receive = forwarder_receive,
};

static void test_forward(void **st)
{
	vz_runtime *rt = make_rt();
	vz_ref a, f, to[2];
	uint32_t parity;

	(void)st;
	reset_sender_run();
	atomic_store(&g_sunk, 0);
	memset(&g_fwd, 0, sizeof g_fwd);
	parity = 0;
	assert_int_equal(vz_spawn(rt, 1, &sink_spec, &parity, &to[0]), 0);
	parity = 1;
	assert_int_equal(vz_spawn(rt, 0, &sink_spec, &parity, &to[1]), 0);
	assert_int_equal(vz_spawn(rt, 1, &forwarder_spec, to, &f), 0);
	a = spawn_sender(rt);
	assert_int_equal(vz_runtime_start(rt), 0);
	go(rt, a, f, FWD_N, FWD_BURST, false);
	for (int i = 0; i < 24000 && atomic_load(&g_sunk) < FWD_N; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&g_sunk), FWD_N);
	assert_true(vz_test_wait_flag(&g_acked, 240));
	assert_int_equal(finish(rt), 0);
	vz_test_assert_no_fails();
	print_message("forward: %u inline and %u block messages forwarded from the slot, %u "
		      "queued\n",
		      g_fwd.direct_inline, g_fwd.direct_block, g_fwd.queued);
	assert_int_equal(g_fwd.next, FWD_N);
	assert_true(g_fwd.direct_inline > 0);
	assert_true(g_fwd.direct_block > 0);
}

/* ---- stop_inside ------------------------------------------------------- */

#define STOP_BURST 8u
#define STOP_AT	   (STOP_BURST * 10u) /* the first of a burst */
#define STOP_N	   (STOP_BURST * 20u)

static struct {
	vz_ref victim;
	atomic_uint dead; /* dead letters to the victim */
	atomic_uint next_dead;
	atomic_int bad_dead;
} g_dl;

static void on_dead(void *ctx, uint64_t to_ref, uint32_t type, const void *data, size_t len,
		    int reason)
{
	uint32_t seq = atomic_load(&g_dl.next_dead);

	note_dead(ctx, to_ref, type, data, len, reason);
	if (to_ref != g_dl.victim.id || type != MSG_DATA)
		return;
	/* In order and each once: the continuation of what was handled. */
	if (!intact(data, len, seq))
		atomic_store(&g_dl.bad_dead, 1);
	atomic_store(&g_dl.next_dead, seq + 1);
	atomic_fetch_add(&g_dl.dead, 1);
}

struct victim {
	uint32_t next;
	uint32_t stop_at; /* UINT32_MAX: never by itself */
	uint32_t burst;	  /* the sender's: ack the last of each */
};

/* Parameters come with the spawn, not in a message: a message from the
 * test thread and the sender's stream have no order between them. */
static int victim_init(vz_actor *self, void *state, const void *arg)
{
	struct victim *v = state;

	(void)self;
	memcpy(v, arg, sizeof *v);
	return 0;
}

static atomic_uint g_victim_next; /* handled so far, published */
static atomic_int g_on_stop;
static atomic_int g_stopped_direct;

static void victim_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct victim *v = state;
	uint32_t seq = v->next;

	VZ_TEST_CHECK(vz_msg_type(m) == MSG_DATA);
	VZ_TEST_CHECK(intact(vz_msg_data(m), vz_msg_len(m), seq));
	v->next++;
	atomic_store(&g_victim_next, v->next);
	if (seq == v->stop_at) {
		atomic_store(&g_stopped_direct, direct(self, m));
		VZ_TEST_CHECK(vz_stop(vz_actor_runtime(self), vz_self(self)) == 0);
		return;
	}
	if (seq % v->burst == v->burst - 1) {
		VZ_TEST_CHECK(vz_send(self, vz_msg_sender(m), MSG_ACK, NULL, 0) == 0);
		atomic_fetch_add(&g_acks_sent, 1);
	}
}

static void victim_stop(vz_actor *self, void *state)
{
	const struct victim *v = state;

	(void)self;
	/* Dead letters to the victim come after this, on its shard: the
	 * first must be the message after the last one handled. */
	atomic_store(&g_dl.next_dead, v->next);
	atomic_fetch_add(&g_on_stop, 1);
}

static const vz_actor_spec victim_spec = {
    .name = "victim",
    .state_size = sizeof(struct victim),
    .init = victim_init,
    .receive = victim_receive,
    .on_stop = victim_stop,
};

static void reset_victim(void)
{
	atomic_store(&g_dl.dead, 0);
	atomic_store(&g_dl.next_dead, 0);
	atomic_store(&g_dl.bad_dead, 0);
	atomic_store(&g_victim_next, 0);
	atomic_store(&g_on_stop, 0);
	atomic_store(&g_stopped_direct, 0);
	atomic_store(&g_sent, 0);
	atomic_store(&g_acks_sent, 0);
	atomic_store(&g_acks_handled, 0);
}

/* After the victim's stop: its slot went back to the shard's free list
 * once. Two spawns on its shard must get two different slots (a slot
 * given back twice would be handed out twice). */
static atomic_int g_spawned;

static void idle_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
}

static const vz_actor_spec idle_spec = {.name = "idle", .receive = idle_receive};

static void spawner_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_runtime *rt = vz_actor_runtime(self);
	vz_ref x, y;

	(void)state;
	(void)m;
	VZ_TEST_CHECK(vz_spawn(rt, 1, &idle_spec, NULL, &x) == 0);
	VZ_TEST_CHECK(vz_spawn(rt, 1, &idle_spec, NULL, &y) == 0);
	VZ_TEST_CHECK(vz__ref_slot(x) != vz__ref_slot(y));
	VZ_TEST_CHECK(vz_stop(rt, x) == 0);
	VZ_TEST_CHECK(vz_stop(rt, y) == 0);
	atomic_store(&g_spawned, 1);
}

static const vz_actor_spec spawner_spec = {.name = "spawner", .receive = spawner_receive};

static void test_stop_inside(void **st)
{
	vz_runtime *rt = make_rt_hook(on_dead);
	vz_ref a, v, sp;
	struct victim arg = {.stop_at = STOP_AT, .burst = STOP_BURST};

	(void)st;
	vz_test_reset_fails();
	reset_victim();
	assert_int_equal(vz_spawn(rt, 1, &victim_spec, &arg, &v), 0);
	g_dl.victim = v;
	assert_int_equal(vz_spawn(rt, 1, &spawner_spec, NULL, &sp), 0);
	a = spawn_sender(rt);
	atomic_store(&g_spawned, 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	go(rt, a, v, STOP_N, STOP_BURST, false);
	/* The rest of the stopping burst: dead letters once they arrive. */
	for (int i = 0; i < 24000 && atomic_load(&g_dl.dead) < STOP_BURST - 1; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&g_dl.dead), STOP_BURST - 1);
	assert_int_equal(atomic_load(&g_on_stop), 1);
	assert_int_equal(atomic_load(&g_victim_next), STOP_AT + 1);
	assert_int_equal(vz_post(rt, sp, MSG_GO, NULL, 0), 0);
	assert_true(vz_test_wait_flag((volatile int *)&g_spawned, 120));
	assert_int_equal(finish(rt), STOP_BURST - 1);
	vz_test_assert_no_fails();
	assert_int_equal(atomic_load(&g_sent), STOP_AT + STOP_BURST);
	assert_int_equal(atomic_load(&g_dl.bad_dead), 0);
	/* The stop was asked from inside a direct receive. */
	assert_int_equal(atomic_load(&g_stopped_direct), 1);
	assert_int_equal(atomic_load(&g_on_stop), 1);
}

/* ---- stop_race --------------------------------------------------------- */

#define RACE_BURST 64u
#define RACE_N	   (RACE_BURST * 2000u)

static void test_stop_race(void **st)
{
	vz_runtime *rt = make_rt_hook(on_dead);
	vz_ref a, v;
	struct victim arg = {.stop_at = UINT32_MAX, .burst = RACE_BURST};

	(void)st;
	vz_test_reset_fails();
	reset_victim();
	assert_int_equal(vz_spawn(rt, 1, &victim_spec, &arg, &v), 0);
	g_dl.victim = v;
	a = spawn_sender(rt);
	assert_int_equal(vz_runtime_start(rt), 0);
	go(rt, a, v, RACE_N, RACE_BURST, false);
	for (int i = 0; i < 24000 && atomic_load(&g_victim_next) < 50 * RACE_BURST; i++)
		usleep(1000);
	/* The dead letters continue where the victim stopped: the hook
	 * checks each against the next expected sequence number. */
	assert_int_equal(vz_stop(rt, v), 0);
	for (int i = 0; i < 24000 && !atomic_load(&g_on_stop); i++)
		usleep(1000);
	assert_int_equal(atomic_load(&g_on_stop), 1);
	/* The last ack may still be on its way to the sender, which then
	 * sends one more burst (dead letters all): stopping the runtime
	 * before that would refuse part of it. */
	for (int i = 0; i < 24000 && atomic_load(&g_acks_handled) < atomic_load(&g_acks_sent); i++)
		usleep(1000);
	assert_int_equal(atomic_load(&g_acks_handled), atomic_load(&g_acks_sent));
	finish(rt);
	vz_test_assert_no_fails();
	print_message("stop_race: %u handled, %u dead letters of %u sent\n",
		      atomic_load(&g_victim_next), atomic_load(&g_dl.dead), atomic_load(&g_sent));
	assert_int_equal(atomic_load(&g_dl.bad_dead), 0);
	/* Exactly once: handled then dead-lettered, the whole sequence. */
	assert_int_equal(atomic_load(&g_victim_next) + atomic_load(&g_dl.dead),
			 atomic_load(&g_sent));
}

/* ---- bounded ----------------------------------------------------------- */

#define BND_BURST 3u
#define BND_N	  (BND_BURST * 2000u)

static atomic_uint g_bnd_direct;

static void bounded_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint32_t *next = state;

	VZ_TEST_CHECK(vz_msg_type(m) == MSG_DATA);
	VZ_TEST_CHECK(intact(vz_msg_data(m), vz_msg_len(m), *next));
	if (direct(self, m))
		atomic_fetch_add(&g_bnd_direct, 1);
	if (*next % BND_BURST == BND_BURST - 1)
		VZ_TEST_CHECK(vz_send(self, vz_msg_sender(m), MSG_ACK, NULL, 0) == 0);
	if (++*next == BND_N)
		atomic_store(&g_done, 1);
}

static const vz_actor_spec bounded_spec = {
    .name = "bounded",
    .state_size = sizeof(uint32_t),
    .receive = bounded_receive,
    /* A burst of 3 in flight plus the one being handled when the ack
     * goes out (its place is given back after its receive returns). */
    .mailbox_limit = BND_BURST + 1,
};

static void test_bounded(void **st)
{
	vz_runtime *rt = make_rt();
	vz_ref a, b;

	(void)st;
	reset_sender_run();
	atomic_store(&g_bnd_direct, 0);
	assert_int_equal(vz_spawn(rt, 1, &bounded_spec, NULL, &b), 0);
	a = spawn_sender(rt);
	run_until_acked(rt, a, b, BND_N, BND_BURST, false);
	assert_int_equal(finish(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(atomic_load(&g_sent), BND_N);
	assert_true(atomic_load(&g_bnd_direct) > 0);
}

/* ---- send_in_slot -------------------------------------------------------- */

#define SIS_N 3u /* messages in the one turn */

static struct {
	vz_ref peer;
	uint64_t refills[SIS_N + 1]; /* before, and after each send */
	int rc[SIS_N];
	unsigned cls_small, cls_long; /* pool classes of their blocks */
} g_sis;

/* The payloads sent, by their seq for fill(): 16 bytes, 16, then one
 * byte more than a slot holds (lens[]). */
static const uint32_t sis_seq[SIS_N] = {3, 3 + NLENS, 5};

static uint32_t sis_len(uint32_t i)
{
	return len_of(sis_seq[i]);
}

static uint64_t refills_of(const struct vz__shard *sh)
{
	return atomic_load_explicit(&sh->stats.pool_refills, memory_order_relaxed);
}

/* Give class cls of sh's pool the blocks in stash back, behind whatever
 * it holds now. */
static void sis_unstash(struct vz__shard *sh, unsigned cls, void **stash)
{
	void **b = (void **)&sh->pool.free[cls];

	while (*b)
		b = (void **)*b;
	*b = stash;
}

/* Shard 0, on MSG_GO: the three sends of one turn, with the classes of
 * the sender's pool that their blocks would come from empty, so that any
 * block taken is a refill. */
static void sis_sender_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct vz__shard *sh = g_rt->shards[0];
	void **stash_small, **stash_long = NULL;

	(void)state;
	VZ_TEST_CHECK(vz_msg_type(m) == MSG_GO);
	stash_small = sh->pool.free[g_sis.cls_small];
	sh->pool.free[g_sis.cls_small] = NULL;
	if (g_sis.cls_long != g_sis.cls_small) {
		stash_long = sh->pool.free[g_sis.cls_long];
		sh->pool.free[g_sis.cls_long] = NULL;
	}
	g_sis.refills[0] = refills_of(sh);
	for (uint32_t i = 0; i < SIS_N; i++) {
		fill(sbuf, sis_seq[i]);
		g_sis.rc[i] = vz_send(self, g_sis.peer, MSG_DATA, sbuf, sis_len(i));
		g_sis.refills[i + 1] = refills_of(sh);
	}
	sis_unstash(sh, g_sis.cls_small, stash_small);
	if (g_sis.cls_long != g_sis.cls_small)
		sis_unstash(sh, g_sis.cls_long, stash_long);
}

static const vz_actor_spec sis_sender_spec = {
    .name = "sis-sender",
    .receive = sis_sender_receive,
};

static void sis_peer_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint32_t *next = state;

	(void)self;
	VZ_TEST_CHECK(vz_msg_type(m) == MSG_DATA);
	VZ_TEST_CHECK(*next < SIS_N && intact(vz_msg_data(m), vz_msg_len(m), sis_seq[*next]));
	if (++*next == SIS_N)
		atomic_store(&g_done, 1);
}

static const vz_actor_spec sis_peer_spec = {
    .name = "sis-peer",
    .state_size = sizeof(uint32_t),
    .receive = sis_peer_receive,
};

static void test_send_in_slot(void **st)
{
	vz_runtime *rt = make_rt();
	vz_ref a;

	(void)st;
	vz_test_reset_fails();
	atomic_store(&g_done, 0);
	memset(&g_sis, 0, sizeof g_sis);
	g_sis.cls_small = (unsigned)vz__size_class(sizeof(struct vz_msg) + sis_len(0));
	g_sis.cls_long = (unsigned)vz__size_class(sizeof(struct vz_msg) + sis_len(2));
	assert_int_equal(vz_spawn(rt, 1, &sis_peer_spec, NULL, &g_sis.peer), 0);
	assert_int_equal(vz_spawn(rt, 0, &sis_sender_spec, NULL, &a), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, a, MSG_GO, NULL, 0), 0);
	assert_true(vz_test_wait_flag((volatile int *)&g_done, 240));
	assert_int_equal(finish(rt), 0);
	vz_test_assert_no_fails();
	for (unsigned i = 0; i < SIS_N; i++)
		assert_int_equal(g_sis.rc[i], 0);
	/* The first: in the slot, no block. */
	assert_int_equal(g_sis.refills[1], g_sis.refills[0]);
	/* The second, behind it in the same turn: a block (one slab). */
	assert_int_equal(g_sis.refills[2], g_sis.refills[1] + 1);
	/* The third, too long for a slot: a block (of that slab when it is
	 * of the same class). */
	assert_int_equal(g_sis.refills[3], g_sis.refills[2] + (g_sis.cls_long != g_sis.cls_small));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_mix),	cmocka_unit_test(test_forward),
	    cmocka_unit_test(test_stop_inside), cmocka_unit_test(test_stop_race),
	    cmocka_unit_test(test_bounded),	cmocka_unit_test(test_send_in_slot),
	};

	vz_test_watchdog(600);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
