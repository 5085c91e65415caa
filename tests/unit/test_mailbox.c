// SPDX-License-Identifier: MIT
/*
 * The cell mailbox (runtime/core/mailbox.h) and the zero-copy hand-off
 * (message.h: vz_send_reserve / vz_send_commit / vz_send_abort,
 * vz_forward). Two embedded shards driven by the test thread, so every
 * callback runs on it and the order of events is fixed.
 *
 * - floods from one receive call (Savina's Counting) with payload sizes
 *   that take one to four cells or a block, from two local senders and one
 *   on the other shard: FIFO per pair, payload bytes and alignment intact,
 *   conservation (sent = handled + dead-lettered);
 * - a flooded actor stopped with its mailbox full: every message a dead
 *   letter, with its type, length and bytes;
 * - bounded mailboxes with inline messages;
 * - reserve / commit / abort: zero length, too big, stale target (at
 *   reserve and stopped before commit), commit or abort twice, two open,
 *   left open, written in place (same address at the receiver);
 * - forwarding chains across both shards: sender and ask correlation kept,
 *   no copy of a block, FIFO, errors, posts from a foreign thread;
 * - posts from a foreign thread, small ones delivered as cells: FIFO with
 *   blocks, bytes, bounded mailboxes, dead letters after a stop.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/fault.h"

enum { MSG_GO = VZ_MSG_USER, MSG_DATA, MSG_ANSWER, MSG_TEST };

static atomic_ulong dead_seen;
static uint64_t dead_bad; /* dead letters whose bytes were wrong */

/* Payload of every data message: [seq (8) | sender (4) | fill ...], the
 * fill bytes a function of seq, so a torn or misplaced copy shows. */
static void fill(unsigned char *p, size_t len, uint64_t seq, uint32_t sender)
{
	if (len >= 12) {
		memcpy(p, &seq, 8);
		memcpy(p + 8, &sender, 4);
	}
	for (size_t i = 12; i < len; i++)
		p[i] = (unsigned char)(seq * 31u + i);
}

static bool check_fill(const unsigned char *p, size_t len, uint64_t *seq, uint32_t *sender)
{
	if (len < 12)
		return false;
	memcpy(seq, p, 8);
	memcpy(sender, p + 8, 4);
	for (size_t i = 12; i < len; i++)
		if (p[i] != (unsigned char)(*seq * 31u + i))
			return false;
	return true;
}

/* Sizes cycled by the floods: 1, 2, 3, 4 cells, the largest inline, the
 * first block size, and a large block. */
static const size_t sizes[] = {12, 16, 17, 48, 80, 112, 113, 1000};
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* Sizes of the foreign posts (test_posted_cells): one to four cells, the
 * largest inline cell, past it but inline in a lane record (up to 192),
 * and a block. Dead letters are checked against these when dead_posted. */
static const size_t post_sizes[] = {12, 16, 17, 48, 80, 112, 113, 192, 193, 1000};
#define NPOST_SIZES (sizeof post_sizes / sizeof post_sizes[0])
static bool dead_posted;

/* The spill test's sizes: past a ring slot's 32 inline bytes (see there). */
static size_t spill_len(size_t len)
{
	return len <= 32 ? len + 33 : len;
}

static void count_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
		       int reason)
{
	uint64_t seq;
	uint32_t sender;

	(void)ctx;
	(void)to;
	(void)reason;
	if (type == MSG_DATA && dead_posted &&
	    (!check_fill(data, len, &seq, &sender) || len != post_sizes[seq % NPOST_SIZES]))
		dead_bad++;
	else if (type == MSG_DATA && !dead_posted &&
		 (!check_fill(data, len, &seq, &sender) ||
		  (len != sizes[seq % NSIZES] && len != spill_len(sizes[seq % NSIZES]))))
		dead_bad++;
	atomic_fetch_add(&dead_seen, 1);
}

static vz_runtime *make_rt_turn(uint32_t actors_per_turn)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_config(&cfg, 2);
	cfg.shards[0].embedded = true;
	cfg.shards[1].embedded = true;
	cfg.dead_letter = count_dead;
	/* The test thread runs the shards: no stall reports between polls.
	 * A flood to the other shard from one receive call queues it all in
	 * the outbox (its ring drains only after the call). */
	cfg.stall_off = true;
	cfg.outbox_limit = 1u << 24;
	if (actors_per_turn)
		cfg.actors_per_turn = actors_per_turn;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	return rt;
}

static vz_runtime *make_rt(void)
{
	return make_rt_turn(0);
}

/* Drive both shards until *flag or 60 s. */
static void drive(vz_runtime *rt, const int *flag)
{
	uint64_t end = vz_test_now_ns() + 60ull * 1000000000u;

	while (!*flag) {
		assert_true(vz_shard_poll(rt, 0, 0) >= 0);
		assert_true(vz_shard_poll(rt, 1, 0) >= 0);
		assert_true(vz_test_now_ns() < end);
	}
}

/* Drive both shards a while (lets everything in flight settle). */
static void drive_some(vz_runtime *rt, int turns)
{
	for (int i = 0; i < turns; i++) {
		assert_true(vz_shard_poll(rt, 0, 0) >= 0);
		assert_true(vz_shard_poll(rt, 1, 0) >= 0);
	}
}

/* Stop, check conservation and the hook, destroy. */
static void finish(vz_runtime *rt, uint64_t expect_sent, uint64_t expect_dead)
{
	vz_shard_stats t;
	uint64_t foreign, sent;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	sent = t.sent_local + t.sent_remote + foreign;
	if (expect_sent != UINT64_MAX)
		assert_int_equal(sent, expect_sent);
	if (expect_dead != UINT64_MAX)
		assert_int_equal(t.dead_letters, expect_dead);
	assert_int_equal(sent, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, atomic_load(&dead_seen));
	assert_int_equal(dead_bad, 0);
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	atomic_store(&dead_seen, 0);
	vz_test_assert_no_fails();
	vz_test_reset_fails();
}

/* ---- floods ------------------------------------------------------------ */

#define NSEND 3

static struct {
	uint64_t n;	      /* messages per sender */
	uint64_t next[NSEND]; /* receiver: next seq per sender */
	uint64_t got;	      /* receiver: messages taken */
	int done;	      /* receiver took NSEND * n */
	vz_ref sender_ref[NSEND];
	vz_ref recv;
	bool stop_after_flood; /* sender 0 stops the receiver once sent */
} fl;

static void recv_receive(vz_actor *self, void *state, const vz_msg *m)
{
	const unsigned char *p = vz_msg_data(m);
	uint64_t seq = 0;
	uint32_t sender = NSEND;

	(void)self;
	(void)state;
	VZ_TEST_CHECK(vz_msg_type(m) == MSG_DATA);
	VZ_TEST_CHECK(((uintptr_t)p % VZ_MSG_ALIGN) == 0);
	VZ_TEST_CHECK(check_fill(p, vz_msg_len(m), &seq, &sender));
	VZ_TEST_CHECK(sender < NSEND);
	if (sender >= NSEND)
		return;
	VZ_TEST_CHECK(vz_ref_eq(vz_msg_sender(m), fl.sender_ref[sender]));
	VZ_TEST_CHECK(seq == fl.next[sender]); /* FIFO per pair */
	VZ_TEST_CHECK(vz_msg_len(m) == sizes[seq % NSIZES]);
	fl.next[sender] = seq + 1;
	if (++fl.got == NSEND * fl.n)
		fl.done = 1;
}

static const vz_actor_spec recv_spec = {.name = "flood-recv", .receive = recv_receive};

/* On MSG_GO (payload: its sender index), send all n at once. */
static void flood_receive(vz_actor *self, void *state, const vz_msg *m)
{
	unsigned char buf[1000];
	uint32_t me;

	(void)state;
	if (vz_msg_type(m) != MSG_GO)
		return;
	memcpy(&me, vz_msg_data(m), sizeof me);
	fl.sender_ref[me] = vz_self(self);
	for (uint64_t s = 0; s < fl.n; s++) {
		size_t len = sizes[s % NSIZES];

		int rc;

		fill(buf, len, s, me);
		rc = vz_send(self, fl.recv, MSG_DATA, buf, len);
		/* with the receiver stopped, local sends are refused */
		VZ_TEST_CHECK(rc == 0 || (fl.stop_after_flood && rc == VZ_ESTALE));
	}
	if (fl.stop_after_flood && me == 0)
		VZ_TEST_CHECK(vz_stop(vz_actor_runtime(self), fl.recv) == 0);
}

static const vz_actor_spec flood_spec = {.name = "flooder", .receive = flood_receive};

static void flood_setup(vz_runtime **rtp, uint64_t n, bool stop)
{
	vz_runtime *rt = make_rt();
	vz_ref s[NSEND];

	memset(&fl, 0, sizeof fl);
	fl.n = n;
	fl.stop_after_flood = stop;
	assert_int_equal(vz_spawn(rt, 0, &recv_spec, NULL, &fl.recv), 0);
	/* two senders on the receiver's shard, one on the other */
	assert_int_equal(vz_spawn(rt, 0, &flood_spec, NULL, &s[0]), 0);
	assert_int_equal(vz_spawn(rt, 0, &flood_spec, NULL, &s[1]), 0);
	assert_int_equal(vz_spawn(rt, 1, &flood_spec, NULL, &s[2]), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	for (uint32_t i = 0; i < NSEND; i++)
		assert_int_equal(vz_post(rt, s[i], MSG_GO, &i, sizeof i), 0);
	*rtp = rt;
}

static void test_flood_fifo(void **st)
{
	uint64_t n = vz_test_scale(100000);
	vz_runtime *rt;

	(void)st;
	flood_setup(&rt, n, false);
	drive(rt, &fl.done);
	for (int i = 0; i < NSEND; i++)
		assert_int_equal(fl.next[i], n);
	/* 3 starts posted + the flood */
	finish(rt, 3 + NSEND * n, 0);
}

/* The receiver is stopped right after sender 0's flood, in the same turn:
 * what it had not handled is dead-lettered with its bytes intact. */
static void test_flood_stopped(void **st)
{
	uint64_t n = vz_test_scale(20000);
	vz_runtime *rt;
	vz_shard_stats t;

	(void)st;
	flood_setup(&rt, n, true);
	drive_some(rt, 2000);
	vz_stats_total(rt, &t, NULL);
	assert_true(t.dead_letters > 0);
	finish(rt, UINT64_MAX, UINT64_MAX);
}

/* ---- bounded mailbox, inline messages ---------------------------------- */

static struct {
	vz_ref target;
	int accepted, full, handled, done;
} bd;

static void bounded_recv(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
	bd.handled++;
}

static const vz_actor_spec bounded_spec = {
    .name = "bounded", .receive = bounded_recv, .mailbox_limit = 8};

static void bounded_send(vz_actor *self, void *state, const vz_msg *m)
{
	uint64_t x = 7;

	(void)state;
	if (vz_msg_type(m) != MSG_GO)
		return;
	for (int i = 0; i < 20; i++) {
		int rc = vz_send(self, bd.target, MSG_DATA, &x, sizeof x);

		if (rc == 0)
			bd.accepted++;
		else if (rc == VZ_EFULL)
			bd.full++;
		else
			VZ_TEST_CHECK(!"unexpected error");
	}
	bd.done++;
}

static const vz_actor_spec bsend_spec = {.name = "bsend", .receive = bounded_send};

static void test_bounded_inline(void **st)
{
	vz_runtime *rt = make_rt();
	vz_ref s;

	(void)st;
	memset(&bd, 0, sizeof bd);
	assert_int_equal(vz_spawn(rt, 0, &bounded_spec, NULL, &bd.target), 0);
	assert_int_equal(vz_spawn(rt, 0, &bsend_spec, NULL, &s), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, s, MSG_GO, NULL, 0), 0);
	drive_some(rt, 50);
	assert_int_equal(bd.accepted, 8);
	assert_int_equal(bd.full, 12);
	assert_int_equal(bd.handled, 8);
	/* the places came back: another round is accepted the same way */
	assert_int_equal(vz_post(rt, s, MSG_GO, NULL, 0), 0);
	drive_some(rt, 50);
	assert_int_equal(bd.accepted, 16);
	assert_int_equal(bd.handled, 16);
	finish(rt, 2 + 16, 0);
}

/* ---- reserve / commit / abort -------------------------------------------- */

static struct {
	vz_ref local, remote, bounded, victim;
	int step_done;
	int rc[32];
	void *bufs[8];
	const void *seen[8]; /* receiver: vz_msg_data() of each arrival */
	size_t seen_len[8];
	int nseen;
	vz_actor *self; /* the tester, for the wrong-thread check */
} rs;

static void rs_recv(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	if (rs.nseen < 8) {
		rs.seen[rs.nseen] = vz_msg_data(m);
		rs.seen_len[rs.nseen] = vz_msg_len(m);
		if (vz_msg_len(m) >= 4)
			VZ_TEST_CHECK(memcmp(vz_msg_data(m), "abcd", 4) == 0);
	}
	rs.nseen++;
}

static const vz_actor_spec rs_recv_spec = {.name = "rs-recv", .receive = rs_recv};
static const vz_actor_spec rs_bounded_spec = {
    .name = "rs-bounded", .receive = rs_recv, .mailbox_limit = 1};

/* MSG_TEST with a step number: each step is one receive call. */
static void rs_tester(vz_actor *self, void *state, const vz_msg *m)
{
	vz_runtime *rt = vz_actor_runtime(self);
	uint32_t step;
	void *b = NULL, *b2 = NULL;
	int *rc = rs.rc;

	(void)state;
	rs.self = self;
	memcpy(&step, vz_msg_data(m), sizeof step);
	switch (step) {
	case 0:
		/* zero length: a valid pointer, and it arrives empty */
		rc[0] = vz_send_reserve(self, rs.local, MSG_DATA, 0, &b);
		VZ_TEST_CHECK(b != NULL);
		rc[1] = vz_send_commit(self, b);
		/* committed: a second commit or an abort finds nothing */
		rc[2] = vz_send_commit(self, b);
		rc[3] = vz_send_abort(self, b);
		/* too big, type, NULL out, stale, no shard */
		rc[4] = vz_send_reserve(self, rs.local, MSG_DATA, VZ_MSG_MAX_PAYLOAD + 1, &b);
		VZ_TEST_CHECK(b == NULL);
		rc[5] = vz_send_reserve(self, rs.local, 5, 4, &b);
		rc[6] = vz_send_reserve(self, rs.local, MSG_DATA, 4, NULL);
		rc[7] = vz_send_reserve(self, VZ_REF_NULL, MSG_DATA, 4, &b);
		rc[8] = vz_send_reserve(self, (vz_ref){(uint64_t)7 << 56 | 1}, MSG_DATA, 4, &b);
		/* two open at once */
		rc[9] = vz_send_reserve(self, rs.local, MSG_DATA, 4, &b);
		rc[10] = vz_send_reserve(self, rs.local, MSG_DATA, 4, &b2);
		VZ_TEST_CHECK(b2 == NULL);
		/* abort: nothing sent; then commit finds nothing */
		rc[11] = vz_send_abort(self, b);
		rc[12] = vz_send_commit(self, b);
		rc[13] = vz_send_abort(self, b);
		break;
	case 1:
		/* small local, large local, large remote: written in place */
		rc[0] = vz_send_reserve(self, rs.local, MSG_DATA, 40, &b);
		memcpy(b, "abcd", 4);
		rc[1] = vz_send_commit(self, b);
		rc[2] = vz_send_reserve(self, rs.local, MSG_DATA, 1000, &b);
		VZ_TEST_CHECK(((uintptr_t)b % VZ_MSG_ALIGN) == 0);
		memcpy(b, "abcd", 4);
		rs.bufs[0] = b;
		rc[3] = vz_send_commit(self, b);
		/* past a ring slot's 32 inline bytes: the block travels */
		rc[4] = vz_send_reserve(self, rs.remote, MSG_DATA, 200, &b);
		memcpy(b, "abcd", 4);
		rs.bufs[1] = b;
		rc[5] = vz_send_commit(self, b);
		break;
	case 2:
		/* the target stops between reserve and commit: nothing sent */
		rc[0] = vz_send_reserve(self, rs.victim, MSG_DATA, 8, &b);
		rc[1] = vz_stop(rt, rs.victim);
		rc[2] = vz_send_commit(self, b);
		rc[3] = vz_send_reserve(self, rs.victim, MSG_DATA, 8, &b);
		/* the same with a block */
		break;
	case 3:
		/* bounded target (limit 1): the reservation holds the place */
		rc[0] = vz_send_reserve(self, rs.bounded, MSG_DATA, 8, &b);
		rc[1] = vz_send(self, rs.bounded, MSG_DATA, "abcdefgh", 8);
		rc[2] = vz_send_abort(self, b);
		rc[3] = vz_send(self, rs.bounded, MSG_DATA, "abcdefgh", 8);
		break;
	case 4:
		/* left open: the runtime aborts it when this run ends */
		rc[0] = vz_send_reserve(self, rs.local, MSG_DATA, 500, &b);
		rs.bufs[2] = b;
		break;
	case 5:
		rc[0] = vz_send_commit(self, rs.bufs[2]);
		rc[1] = vz_send_reserve(self, rs.local, MSG_DATA, 8, &b);
		rc[2] = vz_send_abort(self, b);
		break;
	}
	rs.step_done = 1;
}

static const vz_actor_spec rs_tester_spec = {.name = "rs-tester", .receive = rs_tester};

static void rs_step(vz_runtime *rt, vz_ref tester, uint32_t step)
{
	memset(rs.rc, 0x7f, sizeof rs.rc);
	rs.step_done = 0;
	assert_int_equal(vz_post(rt, tester, MSG_TEST, &step, sizeof step), 0);
	drive(rt, &rs.step_done);
	drive_some(rt, 20);
}

static void test_reserve_commit(void **st)
{
	vz_runtime *rt = make_rt();
	vz_ref t;
	void *b = NULL;

	(void)st;
	memset(&rs, 0, sizeof rs);
	assert_int_equal(vz_spawn(rt, 0, &rs_recv_spec, NULL, &rs.local), 0);
	assert_int_equal(vz_spawn(rt, 1, &rs_recv_spec, NULL, &rs.remote), 0);
	assert_int_equal(vz_spawn(rt, 0, &rs_bounded_spec, NULL, &rs.bounded), 0);
	assert_int_equal(vz_spawn(rt, 0, &rs_recv_spec, NULL, &rs.victim), 0);
	assert_int_equal(vz_spawn(rt, 0, &rs_tester_spec, NULL, &t), 0);
	assert_int_equal(vz_runtime_start(rt), 0);

	rs_step(rt, t, 0);
	assert_int_equal(rs.rc[0], 0);
	assert_int_equal(rs.rc[1], 0);
	assert_int_equal(rs.rc[2], VZ_ENOENT);
	assert_int_equal(rs.rc[3], VZ_ENOENT);
	assert_int_equal(rs.rc[4], VZ_ETOOBIG);
	assert_int_equal(rs.rc[5], VZ_EINVAL);
	assert_int_equal(rs.rc[6], VZ_EINVAL);
	assert_int_equal(rs.rc[7], VZ_ESTALE);
	assert_int_equal(rs.rc[8], VZ_ENOSHARD);
	assert_int_equal(rs.rc[9], 0);
	assert_int_equal(rs.rc[10], VZ_EBUSY);
	assert_int_equal(rs.rc[11], 0);
	assert_int_equal(rs.rc[12], VZ_ENOENT);
	assert_int_equal(rs.rc[13], VZ_ENOENT);
	assert_int_equal(rs.nseen, 1); /* only the zero-length one */
	assert_int_equal(rs.seen_len[0], 0);

	rs_step(rt, t, 1);
	for (int i = 0; i < 6; i++)
		assert_int_equal(rs.rc[i], 0);
	assert_int_equal(rs.nseen, 4);
	assert_int_equal(rs.seen_len[1], 40);
	assert_int_equal(rs.seen_len[2], 1000);
	/* no copy: the receiver reads where the sender wrote */
	assert_ptr_equal(rs.seen[2], rs.bufs[0]);
	assert_ptr_equal(rs.seen[3], rs.bufs[1]);

	rs_step(rt, t, 2);
	assert_int_equal(rs.rc[0], 0);
	assert_int_equal(rs.rc[1], 0);
	assert_int_equal(rs.rc[2], VZ_ESTALE);
	assert_int_equal(rs.rc[3], VZ_ESTALE);
	assert_int_equal(rs.nseen, 4);

	rs_step(rt, t, 3);
	assert_int_equal(rs.rc[0], 0);
	assert_int_equal(rs.rc[1], VZ_EFULL);
	assert_int_equal(rs.rc[2], 0);
	assert_int_equal(rs.rc[3], 0);
	assert_int_equal(rs.nseen, 5);

	rs_step(rt, t, 4);
	assert_int_equal(rs.rc[0], 0);
	rs_step(rt, t, 5);
	assert_int_equal(rs.rc[0], VZ_ENOENT); /* aborted by the runtime */
	assert_int_equal(rs.rc[1], 0);	       /* so not busy either */
	assert_int_equal(rs.rc[2], 0);
	assert_int_equal(rs.nseen, 5);

	/* from a thread that is not the actor's shard (between polls) */
	assert_int_equal(vz_send_reserve(rs.self, rs.local, MSG_DATA, 8, &b), VZ_EWRONGTHREAD);
	assert_int_equal(vz_send_commit(rs.self, rs.bufs[0]), VZ_EWRONGTHREAD);
	assert_int_equal(vz_send_abort(rs.self, rs.bufs[0]), VZ_EWRONGTHREAD);
	assert_int_equal(vz_send_commit(NULL, rs.bufs[0]), VZ_EINVAL);

	/* 6 steps posted + 5 committed or sent */
	finish(rt, 6 + 5, 0);
}

/* ---- forwarding chains ---------------------------------------------------- */

#define HOPS 5

static struct {
	vz_ref hop[HOPS]; /* hop[i] forwards to hop[i + 1]; the last takes */
	vz_ref origin;	  /* sends the stream and asks */
	uint64_t n, got, next;
	int done, answered;
	const void *first_addr[2]; /* a block's payload address at hop 0 and at the end */
	int rc_twice, rc_other, rc_stale, rc_runtime;
	uint32_t ask_corr, answer_corr;
} fw;

static void hop_receive(vz_actor *self, void *state, const vz_msg *m)
{
	int i = *(int *)state;
	uint64_t other[8] = {0}; /* not a message of this receive */

	if (vz_msg_type(m) == MSG_TEST) {
		/* the errors, on a message that is then handled here */
		/* a stale reference on this hop's own shard (another
		 * shard's would be accepted and dead-lettered there) */
		fw.rc_stale = vz_forward(
		    self, m,
		    (vz_ref){(uint64_t)vz_actor_shard(self) << 56 | (uint64_t)1 << 32 | 999});
		fw.rc_other = vz_forward(self, (const vz_msg *)(void *)other, fw.hop[i + 1]);
		fw.rc_runtime = vz_forward(NULL, m, fw.hop[i + 1]);
		/* still ours after a refusal */
		VZ_TEST_CHECK(vz_msg_len(m) == 4);
		VZ_TEST_CHECK(vz_forward(self, m, fw.hop[i + 1]) == 0);
		fw.rc_twice = vz_forward(self, m, fw.hop[i + 1]);
		return;
	}
	if (i == 0 && vz_msg_len(m) == 1000 && !fw.first_addr[0])
		fw.first_addr[0] = vz_msg_data(m);
	VZ_TEST_CHECK(vz_forward(self, m, fw.hop[i + 1]) == 0);
}

static void end_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint64_t seq = 0;
	uint32_t sender = 0;

	(void)state;
	if (vz_msg_type(m) == MSG_TEST)
		return;
	/* the origin's sender and correlation came through every hop */
	VZ_TEST_CHECK(vz_ref_eq(vz_msg_sender(m), fw.origin));
	if (vz_msg_corr(m)) {
		fw.answer_corr = vz_msg_corr(m);
		VZ_TEST_CHECK(vz_reply(self, m, MSG_ANSWER, NULL, 0) == 0);
		return;
	}
	VZ_TEST_CHECK(check_fill(vz_msg_data(m), vz_msg_len(m), &seq, &sender));
	VZ_TEST_CHECK(seq == fw.next);
	VZ_TEST_CHECK(vz_msg_len(m) == sizes[seq % NSIZES]);
	if (vz_msg_len(m) == 1000 && !fw.first_addr[1])
		fw.first_addr[1] = vz_msg_data(m);
	fw.next = seq + 1;
	if (++fw.got == fw.n)
		fw.done = 1;
}

static void origin_receive(vz_actor *self, void *state, const vz_msg *m)
{
	unsigned char buf[1000];

	(void)state;
	if (vz_msg_type(m) == MSG_ANSWER) {
		VZ_TEST_CHECK(vz_msg_corr(m) == fw.ask_corr);
		fw.answered = 1;
		return;
	}
	for (uint64_t s = 0; s < fw.n; s++) {
		size_t len = sizes[s % NSIZES];

		fill(buf, len, s, 0);
		VZ_TEST_CHECK(vz_send(self, fw.hop[0], MSG_DATA, buf, len) == 0);
	}
	VZ_TEST_CHECK(
	    vz_ask(self, fw.hop[0], MSG_DATA, "q", 1, 10ull * 1000000000u, &fw.ask_corr) == 0);
}

static int hop_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	*(int *)state = *(const int *)arg;
	return 0;
}

static const vz_actor_spec hop_spec = {
    .name = "hop", .state_size = sizeof(int), .init = hop_init, .receive = hop_receive};
static const vz_actor_spec end_spec = {.name = "end", .receive = end_receive};
static const vz_actor_spec origin_spec = {.name = "origin", .receive = origin_receive};

static void test_forward_chain(void **st)
{
	vz_runtime *rt = make_rt();
	vz_shard_stats t;

	(void)st;
	memset(&fw, 0, sizeof fw);
	fw.n = vz_test_scale(20000);
	/* hops alternate shards, so blocks cross both ways and stay local */
	for (int i = 0; i < HOPS - 1; i++)
		assert_int_equal(vz_spawn(rt, (unsigned)(i / 2) % 2, &hop_spec, &i, &fw.hop[i]), 0);
	assert_int_equal(vz_spawn(rt, 1, &end_spec, NULL, &fw.hop[HOPS - 1]), 0);
	assert_int_equal(vz_spawn(rt, 0, &origin_spec, NULL, &fw.origin), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, fw.origin, MSG_GO, NULL, 0), 0);
	drive(rt, &fw.done);
	drive(rt, &fw.answered);
	assert_int_equal(fw.next, fw.n);
	assert_int_equal(fw.answer_corr, fw.ask_corr);
	/* a block went all the way without a copy */
	assert_non_null(fw.first_addr[0]);
	assert_ptr_equal(fw.first_addr[0], fw.first_addr[1]);

	/* errors, and a post from this (foreign) thread forwarded on */
	assert_int_equal(vz_post(rt, fw.hop[0], MSG_TEST, "abcd", 4), 0);
	drive_some(rt, 50);
	assert_int_equal(fw.rc_stale, VZ_ESTALE);
	assert_int_equal(fw.rc_other, VZ_EINVAL);
	assert_int_equal(fw.rc_runtime, VZ_EINVAL);
	assert_int_equal(fw.rc_twice, VZ_ESTATE);
	vz_stats_total(rt, &t, NULL);
	assert_int_equal(t.dead_letters, 0);
	/* GO + TEST posted; origin n + ask; every hop forwards each of those
	 * n + 1 (and the TEST once each) on to the end, which replies once */
	finish(rt, 2 + (fw.n + 1) * HOPS + (HOPS - 1) + 1, 0);
}

/* ---- no memory for a mailbox segment: the spill list -------------------- */

static struct {
	vz_ref recv;
	uint64_t burst; /* messages per MSG_GO */
	uint64_t sent, next, got;
} sp;

static void spill_recv(vz_actor *self, void *state, const vz_msg *m)
{
	uint64_t seq = 0;
	uint32_t sender = 0;

	(void)self;
	(void)state;
	VZ_TEST_CHECK(check_fill(vz_msg_data(m), vz_msg_len(m), &seq, &sender));
	VZ_TEST_CHECK(seq == sp.next); /* FIFO through cells and spill */
	sp.next = seq + 1;
	sp.got++;
}

static void spill_send(vz_actor *self, void *state, const vz_msg *m)
{
	unsigned char buf[1000];

	(void)state;
	(void)m;
	for (uint64_t i = 0; i < sp.burst; i++, sp.sent++) {
		size_t len = sizes[sp.sent % NSIZES];

		/* Past a ring slot's 32 inline bytes, so each message crosses
		 * as a block: an inline one needs a block of the receiver's
		 * pool and, without memory, waits in its slot instead
		 * (core/xshard/drain.c), which this test is not about. */
		len = spill_len(len);
		fill(buf, len, sp.sent, 0);
		VZ_TEST_CHECK(vz_send(self, sp.recv, MSG_DATA, buf, len) == 0);
	}
}

static const vz_actor_spec spill_recv_spec = {.name = "spill-recv", .receive = spill_recv};
static const vz_actor_spec spill_send_spec = {.name = "spill-send", .receive = spill_send};

/* Arrivals from the other shard while no segment can be had (every pool
 * refill fails) wait on the spill list and are handled in order; later
 * arrivals queue behind them even once memory is back; what is left there
 * at stop is dead-lettered. */
static void test_spill(void **st)
{
	/* one actor run (64 messages) per turn: a burst outlasts a turn */
	vz_runtime *rt = make_rt_turn(1);
	vz_ref s;
	vz_shard_stats t;

	(void)st;
	memset(&sp, 0, sizeof sp);
	sp.burst = 150; /* more than one run's batch (64) */
	assert_int_equal(vz_spawn(rt, 0, &spill_recv_spec, NULL, &sp.recv), 0);
	assert_int_equal(vz_spawn(rt, 1, &spill_send_spec, NULL, &s), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	/* shard 1 sends and publishes; shard 0 has no segment yet */
	assert_int_equal(vz_post(rt, s, MSG_GO, NULL, 0), 0);
	for (int i = 0; i < 5; i++)
		assert_true(vz_shard_poll(rt, 1, 0) >= 0);
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, -1);
	assert_true(vz_shard_poll(rt, 0, 0) >= 0); /* drains: all spill, one run */
	assert_true(vz__fault_fired(VZ_FAULT_POOL_REFILL) > 0);
	vz__fault_disarm_all();
	assert_true(sp.got > 0 && sp.got < sp.burst);
	/* memory is back; a second burst arrives behind what is spilled */
	assert_int_equal(vz_post(rt, s, MSG_GO, NULL, 0), 0);
	drive_some(rt, 50);
	assert_int_equal(sp.got, 2 * sp.burst);
	/* and once more with the spill left at stop */
	assert_int_equal(vz_post(rt, s, MSG_GO, NULL, 0), 0);
	for (int i = 0; i < 5; i++)
		assert_true(vz_shard_poll(rt, 1, 0) >= 0);
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, -1);
	assert_true(vz_shard_poll(rt, 0, 0) >= 0);
	vz__fault_disarm_all();
	vz_stats_total(rt, &t, NULL);
	assert_true(t.handled < 3 + 3 * sp.burst);
	finish(rt, 3 + 3 * sp.burst, 3 * sp.burst - sp.got);
}

/* ---- foreign posts into cells ------------------------------------------ */

/* Posts from a thread that runs no shard reach a small plain message's
 * target as an inline cell, bigger ones as blocks (lanes.c, rec_to_cell()):
 * one FIFO either way. The receiver checks order, bytes, alignment, length
 * and the (null) sender; it stops itself at seq stop_at, and what is left
 * queued then, and what is posted to it afterwards, is dead-lettered with
 * its bytes. A bounded target gets its places back from cells. */
static struct {
	uint64_t next, stop_at;
	bool stopped;
	int bounded_handled;
} pc;

static void pc_recv(vz_actor *self, void *state, const vz_msg *m)
{
	const unsigned char *p = vz_msg_data(m);
	uint64_t seq = 0;
	uint32_t sender = 0;

	(void)state;
	VZ_TEST_CHECK(vz_msg_type(m) == MSG_DATA);
	VZ_TEST_CHECK(((uintptr_t)p % VZ_MSG_ALIGN) == 0);
	VZ_TEST_CHECK(vz_ref_is_null(vz_msg_sender(m)));
	VZ_TEST_CHECK(check_fill(p, vz_msg_len(m), &seq, &sender));
	VZ_TEST_CHECK(sender == 9);
	VZ_TEST_CHECK(seq == pc.next); /* FIFO */
	VZ_TEST_CHECK(vz_msg_len(m) == post_sizes[seq % NPOST_SIZES]);
	pc.next = seq + 1;
	if (pc.next == pc.stop_at) {
		VZ_TEST_CHECK(vz_stop(vz_actor_runtime(self), vz_self(self)) == 0);
		pc.stopped = true;
	}
}

static void pc_bounded_recv(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	VZ_TEST_CHECK(vz_msg_len(m) == 8);
	pc.bounded_handled++;
}

static const vz_actor_spec pc_recv_spec = {.name = "pc-recv", .receive = pc_recv};
static const vz_actor_spec pc_bounded_spec = {
    .name = "pc-bounded", .receive = pc_bounded_recv, .mailbox_limit = 4};

static int pc_post(vz_runtime *rt, vz_ref to, uint64_t seq)
{
	unsigned char buf[1000];
	size_t len = post_sizes[seq % NPOST_SIZES];

	fill(buf, len, seq, 9);
	return vz_post(rt, to, MSG_DATA, buf, len);
}

static void test_posted_cells(void **st)
{
	vz_runtime *rt = make_rt();
	uint64_t seq = 0, posted = 0;
	vz_ref r, b;
	uint64_t x = 5;
	vz_shard_stats t;

	(void)st;
	memset(&pc, 0, sizeof pc);
	pc.stop_at = 2500;
	dead_posted = true;
	assert_int_equal(vz_spawn(rt, 0, &pc_recv_spec, NULL, &r), 0);
	assert_int_equal(vz_spawn(rt, 0, &pc_bounded_spec, NULL, &b), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	/* Batches of 300 (more than a lane drains per turn, more than a
	 * run's batch, across several mailbox segments). */
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < 300; i++, posted++)
			assert_int_equal(pc_post(rt, r, seq++), 0);
		drive_some(rt, 20);
	}
	assert_true(pc.stopped);
	assert_int_equal(pc.next, pc.stop_at);
	/* To the stopped actor: accepted, then dead letters. */
	for (int i = 0; i < 20; i++, posted++)
		assert_int_equal(pc_post(rt, r, seq++), 0);
	/* The bound holds for posts queued as cells, and comes back. */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 4; i++, posted++)
			assert_int_equal(vz_post(rt, b, MSG_DATA, &x, sizeof x), 0);
		assert_int_equal(vz_post(rt, b, MSG_DATA, &x, sizeof x), VZ_EFULL);
		drive_some(rt, 20);
		assert_int_equal(pc.bounded_handled, 4 * (round + 1));
	}
	vz_stats_total(rt, &t, NULL);
	assert_int_equal(t.dead_letters, posted - 12 - pc.stop_at);
	finish(rt, posted, posted - 12 - pc.stop_at);
	dead_posted = false;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_flood_fifo),	   cmocka_unit_test(test_flood_stopped),
	    cmocka_unit_test(test_bounded_inline), cmocka_unit_test(test_reserve_commit),
	    cmocka_unit_test(test_forward_chain),  cmocka_unit_test(test_spill),
	    cmocka_unit_test(test_posted_cells),
	};

	vz_test_watchdog(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
