// SPDX-License-Identifier: MIT
/*
 * Cross-shard backpressure: what happens when a ring between two shards is
 * full. Sending never blocks and never drops (the message waits in the
 * sender's outbox), so the one way to lose progress is a shard asleep while
 * the ring it must drain is full and its peer spins waiting for room.
 *
 * The ring into a shard carries two things: messages for its actors and
 * blocks of its own pool coming home (returns). Returns wake nobody. These
 * tests fill a ring with returns while its reader sleeps, then need that
 * reader: a reply that cannot fit behind the returns must still arrive, and
 * the shard holding left-over returns must still get to sleep.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MSG_GO = VZ_MSG_USER, MSG_DATA, MSG_ACK };

#define RING  64u	  /* ring_entries: small so a flood overflows it */
#define BURST (RING + 1u) /* one more message than the ring holds */

/* Shared between the test thread and the actors of one test. */
static struct {
	atomic_int gate;     /* opened by the test thread */
	atomic_int inside;   /* the receiver is blocked in its first message */
	atomic_int acked;    /* the flooder got its reply */
	atomic_int want_ack; /* the receiver replies after the whole burst */
	vz_ref receiver;
} g;

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
		for (unsigned i = 0; i < BURST; i++)
			assert_int_equal(vz_send(self, g.receiver, MSG_DATA, NULL, 0), 0);
	} else if (vz_msg_type(m) == MSG_ACK) {
		atomic_store(&g.acked, 1);
	}
}

static const vz_actor_spec flooder_spec = {
    .name = "flooder",
    .receive = flooder_receive,
};

/* Two shards that block as soon as they are idle, rings of RING entries;
 * the flooder has sent its burst and the receiver holds it back at the
 * gate. Returns with the flooder's shard (1) asleep, its whole burst
 * published. */
static vz_runtime *setup_burst(int want_ack)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_shard_stats s;
	vz_ref f;
	uint64_t end;

	memset(&g, 0, sizeof g);
	atomic_store(&g.want_ack, want_ack);
	vz_test_config(&cfg, 2);
	cfg.ring_entries = RING;
	cfg.send_batch = 8;
	cfg.idle_policy = VZ_IDLE_SLEEP;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &receiver_spec, NULL, &g.receiver), 0);
	assert_int_equal(vz_spawn(rt, 1, &flooder_spec, NULL, &f), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, f, MSG_GO, NULL, 0), 0);
	assert_true(vz_test_wait_flag((volatile int *)&g.inside, 10));
	/* The receiver took the first message off the ring, so the other
	 * RING fit: the flooder's outbox empties and it goes to sleep. */
	end = vz_test_now_ns() + 10ull * 1000000000u;
	do {
		assert_int_equal(vz_stats_shard(rt, 1, &s), 0);
		assert_true(vz_test_now_ns() < end);
		usleep(100);
	} while (s.sent_remote < BURST);
	usleep(50 * 1000); /* let shard 1 block (idle policy: sleep at once) */
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
 * must still arrive: the flooder has to be woken to make room. 10 s is a
 * "never arrived" bound, not a timing. */
static void test_reply_behind_returns(void **st)
{
	vz_runtime *rt;
	vz_shard_stats s0;

	(void)st;
	rt = setup_burst(1);
	atomic_store(&g.gate, 1);
	if (!vz_test_wait_flag((volatile int *)&g.acked, 10)) {
		vz_stats_shard(rt, 0, &s0);
		fail_msg("reply never arrived: shard 0 made %llu turns, %llu ring-full "
			 "events, shard 1 stays asleep (lost wake-up)",
			 (unsigned long long)s0.turns, (unsigned long long)s0.ring_full);
	}
	assert_int_equal(vz_stats_shard(rt, 0, &s0), 0);
	assert_true(s0.ring_full > 0); /* the case under test did happen */
	finish(rt);
}

/* Same burst without a reply: only returns are left over in the receiver's
 * outbox. That shard has nothing to do and must get to sleep, which it
 * cannot while the ring stays full: the flooder must be woken to drain it.
 * Checked by the receiver's shard blocking at least once after the burst
 * was handled (a 10 s "never" bound). */
static void test_returns_only_overflow_sleeps(void **st)
{
	vz_runtime *rt;
	vz_shard_stats s0;
	uint64_t sleeps0, end;

	(void)st;
	rt = setup_burst(0);
	assert_int_equal(vz_stats_shard(rt, 0, &s0), 0);
	sleeps0 = s0.sleeps;
	atomic_store(&g.gate, 1);
	end = vz_test_now_ns() + 10ull * 1000000000u;
	do {
		assert_int_equal(vz_stats_shard(rt, 0, &s0), 0);
		if (vz_test_now_ns() > end)
			fail_msg("shard 0 never slept after the burst: %llu turns, %llu ring-full "
				 "events (spinning on a ring its sleeping peer never drains)",
				 (unsigned long long)s0.turns, (unsigned long long)s0.ring_full);
		usleep(1000);
	} while (s0.handled < BURST || s0.sleeps == sleeps0);
	assert_true(s0.ring_full > 0);
	finish(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_behind_returns),
	    cmocka_unit_test(test_returns_only_overflow_sleeps),
	};

	vz_test_watchdog(120);
	if (getenv("VZ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VZ_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
