// SPDX-License-Identifier: MIT
/*
 * Cross-shard messages of every size through the slot rings
 * (core/xshard/): payloads of 0 bytes, around the inline limit of a slot
 * (VZ__SLOT_INLINE_MAX, copied into the slot) and past it (sent as a block
 * that comes home), mixed in one stream through rings small enough to
 * overflow. Each message is echoed back; both sides check type, length,
 * every payload byte, the sender and FIFO order per pair, and at the end
 * the runtime's conservation (sent = handled + dead-lettered, none dead).
 * Also an ask across shards, whose correlation travels in the slot.
 *
 * VZ_TEST_SLEEP_FENCES: also run with VZ_SLEEP_FENCE=fence.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <string.h>

#include "core/core.h"
#include "core/xshard/slot.h"

#include <veloz/ask.h>

enum { MSG_GO = VZ_MSG_USER, MSG_DATA, MSG_ECHO, MSG_Q, MSG_A };

#define N    6000u
#define RING 16u

static const uint32_t lens[] = {
    0,	1,   8,	   VZ__SLOT_INLINE_MAX - 1, VZ__SLOT_INLINE_MAX, VZ__SLOT_INLINE_MAX + 1, 48,
    64, 200, 1000, VZ_MSG_MAX_PAYLOAD};

static unsigned char byte_of(uint32_t seq, uint32_t i)
{
	return (unsigned char)(seq * 131u + i * 7u + 1u);
}

static uint32_t len_of(uint32_t seq)
{
	return lens[seq % (sizeof lens / sizeof lens[0])];
}

static unsigned char buf[VZ_MSG_MAX_PAYLOAD];

static void fill(uint32_t seq)
{
	uint32_t len = len_of(seq);

	for (uint32_t i = 0; i < len; i++)
		buf[i] = byte_of(seq, i);
	if (len >= 4)
		memcpy(buf, &seq, 4);
}

/* The check is that of fill(): seq in the first 4 bytes when there is
 * room, else implied by the order. */
static void check(const vz_msg *m, uint32_t seq)
{
	const unsigned char *d = vz_msg_data(m);
	uint32_t len = len_of(seq);

	VZ_TEST_CHECK(vz_msg_len(m) == len);
	if (vz_msg_len(m) != len)
		return;
	for (uint32_t i = len >= 4 ? 4 : 0; i < len; i++)
		VZ_TEST_CHECK(d[i] == byte_of(seq, i));
	if (len >= 4) {
		uint32_t got;

		memcpy(&got, d, 4);
		VZ_TEST_CHECK(got == seq);
	}
}

struct side {
	vz_ref peer;
	uint32_t next; /* next seq expected */
	atomic_int *done;
};

static atomic_int g_done;

static void sender_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct side *s = state;

	switch (vz_msg_type(m)) {
	case MSG_GO:
		memcpy(&s->peer, vz_msg_data(m), sizeof s->peer);
		/* Everything in one turn: the ring (RING slots) overflows into
		 * the outbox and FIFO must hold across both. */
		for (uint32_t seq = 0; seq < N; seq++) {
			fill(seq);
			VZ_TEST_CHECK(vz_send(self, s->peer, MSG_DATA, buf, len_of(seq)) == 0);
		}
		break;
	case MSG_ECHO:
		VZ_TEST_CHECK(vz_ref_eq(vz_msg_sender(m), s->peer));
		check(m, s->next);
		if (++s->next == N)
			atomic_store(&g_done, 1);
		break;
	}
}

static void echo_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct side *s = state;

	if (vz_msg_type(m) == MSG_Q) {
		VZ_TEST_CHECK(vz_reply(self, m, MSG_A, vz_msg_data(m), vz_msg_len(m)) == 0);
		return;
	}
	VZ_TEST_CHECK(vz_msg_type(m) == MSG_DATA);
	check(m, s->next);
	s->next++;
	/* Echo the very message back: the same bytes, inline or by block. */
	VZ_TEST_CHECK(vz_send(self, vz_msg_sender(m), MSG_ECHO, vz_msg_data(m), vz_msg_len(m)) ==
		      0);
}

static const vz_actor_spec sender_spec = {
    .name = "sender",
    .state_size = sizeof(struct side),
    .receive = sender_receive,
};

static const vz_actor_spec echo_spec = {
    .name = "echo",
    .state_size = sizeof(struct side),
    .receive = echo_receive,
};

static vz_runtime *make_rt(vz_idle_policy idle)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_config(&cfg, 2);
	cfg.ring_entries = RING;
	cfg.send_batch = RING / 2;
	cfg.idle_policy = idle;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	return rt;
}

static void finish(vz_runtime *rt)
{
	vz_shard_stats t;
	uint64_t foreign;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
}

static void sizes(vz_idle_policy idle)
{
	vz_runtime *rt = make_rt(idle);
	vz_ref a, b;
	vz_shard_stats s0, s1;

	vz_test_reset_fails();
	atomic_store(&g_done, 0);
	assert_int_equal(vz_spawn(rt, 0, &sender_spec, NULL, &a), 0);
	assert_int_equal(vz_spawn(rt, 1, &echo_spec, NULL, &b), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, a, MSG_GO, &b, sizeof b), 0);
	assert_true(vz_test_wait_flag((volatile int *)&g_done, 120));
	assert_int_equal(vz_stats_shard(rt, 0, &s0), 0);
	assert_int_equal(vz_stats_shard(rt, 1, &s1), 0);
	assert_int_equal(s0.sent_remote, N);
	assert_int_equal(s1.received_remote, N);
	assert_int_equal(s1.sent_remote, N);
	assert_int_equal(s0.received_remote, N);
	assert_true(s0.ring_full > 0); /* the burst did overflow the ring */
	finish(rt);
}

static void test_sizes_sleep(void **st)
{
	(void)st;
	sizes(VZ_IDLE_SLEEP);
}

static void test_sizes_spin(void **st)
{
	(void)st;
	sizes(VZ_IDLE_SPIN);
}

/* An ask from an actor on shard 0 to one on shard 1: its correlation
 * rides in the slot (inline), both ways, and must match. */
struct asker {
	vz_ref peer;
	uint32_t corr;
};

static void asker_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct asker *s = state;

	switch (vz_msg_type(m)) {
	case MSG_GO:
		memcpy(&s->peer, vz_msg_data(m), sizeof s->peer);
		VZ_TEST_CHECK(vz_ask(self, s->peer, MSG_Q, "abc", 3, 60000000000ull, &s->corr) ==
			      0);
		break;
	case MSG_A:
		VZ_TEST_CHECK(vz_msg_corr(m) == s->corr);
		VZ_TEST_CHECK(vz_msg_len(m) == 3 && !memcmp(vz_msg_data(m), "abc", 3));
		atomic_store(&g_done, 1);
		break;
	default:
		VZ_TEST_CHECK(!"unexpected message (ask timed out?)");
		atomic_store(&g_done, 1);
	}
}

static const vz_actor_spec asker_spec = {
    .name = "asker",
    .state_size = sizeof(struct asker),
    .receive = asker_receive,
};

static void test_ask_across(void **st)
{
	vz_runtime *rt = make_rt(VZ_IDLE_SLEEP);
	vz_ref a, b;

	(void)st;
	vz_test_reset_fails();
	atomic_store(&g_done, 0);
	assert_int_equal(vz_spawn(rt, 0, &asker_spec, NULL, &a), 0);
	assert_int_equal(vz_spawn(rt, 1, &echo_spec, NULL, &b), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, a, MSG_GO, &b, sizeof b), 0);
	assert_true(vz_test_wait_flag((volatile int *)&g_done, 60));
	finish(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sizes_sleep),
	    cmocka_unit_test(test_sizes_spin),
	    cmocka_unit_test(test_ask_across),
	};

	vz_test_watchdog(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
