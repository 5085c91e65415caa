// SPDX-License-Identifier: MIT
/*
 * A busy shard still looks at its clock (runtime.turn_budget_us): one actor
 * floods itself with self-sends, endlessly, and another actor on the same
 * shard arms a timer, over and over. With the budget, the timer fires
 * while the flood goes on, and the flood messages handled between arming
 * and the expiry's arrival stay far below one count-bounded turn
 * (actors_per_turn x batch = 256 x 64 = 16,384 messages): the loop stops
 * running actors once the budget is spent and expires its timers.
 *
 * Not a timed assertion: each flood message busy-waits until at least
 * FLOOD_SPIN_NS of monotonic time has passed, so a message is never
 * shorter than that, and a load that slows the machine down only makes
 * fewer messages fit in a given time. The bound checked is a message
 * count: with the budget, arm -> arrival spans the timer delay, at most one
 * tick and one turn budget (plus 64 messages and one actor run of slack),
 * i.e. at most about (100 + 10 + 50) us / 1 us + 2 x 64 + 64 ~ 350
 * messages, and the test allows MAX_FLOOD_PER_TIMER = 4096. Without the
 * budget (turn_budget_us = 0, or the code before it existed), the timer
 * actor arms early in a turn and the wheel is only looked at after the
 * turn's 16,384 messages: every round but perhaps the first sees more than
 * 16,000 (checked: that variant fails this test).
 *
 * A second case runs the same flood with the budget off and only checks
 * that the timer still fires (the counts bound the turn too).
 *
 * A third case gives the turn a long budget (10 ms) and the default 1 ms
 * wheel tick: a due timer must end the turn as a spent budget does
 * (deliver.c, timer_due()), so arm -> arrival spans the delay (at most
 * 100 messages of at least 1 us), the actor run in progress at the deadline
 * (64) and the flood's run ahead of the expiry in the next turn (64): at
 * most about 230 messages, and the test allows MAX_FLOOD_LONG_TURN = 600.
 * A turn that ran on to its budget (checked: the code before timer_due()
 * fails this case) sees about 10,000 per round; an expiry at the next tick
 * boundary, up to 1,000 more than the delay.
 */
#include "testutil.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

enum { MSG_FLOOD = VZ_MSG_USER, MSG_GO };

#define US		    1000ull
#define NEVER_S		    20.0 /* a timer not seen after this long never fired */
#define FLOOD_SPIN_NS	    (1 * US)
#define FLOOD_DEPTH	    64u /* self-sends in flight: a full batch per run */
#define TIMER_DELAY_NS	    (100 * US)
#define ROUNDS		    8u
#define MAX_FLOOD_PER_TIMER 4096u  /* a quarter of one count-bounded turn */
#define LONG_BUDGET_US	    10000u /* 10 ms: ~10,000 flood messages */
#define MAX_FLOOD_LONG_TURN 600u   /* delay + 2 runs ~ 230, see above */

/* ---- failures recorded on shard threads -------------------------------- */

#define CHECK(cond) VZ_TEST_CHECK(cond)

/* ---- the flooder ------------------------------------------------------- */

/* Flood messages handled so far. Written by the shard thread only; read by
 * the timer actor (same thread) and by the test thread (relaxed: a
 * progress counter, no data hangs off it). */
static atomic_ullong flood_count;

static void flood_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint64_t until = vz_test_now_ns() + FLOOD_SPIN_NS;
	int rc;

	(void)state;
	if (vz_msg_type(m) != MSG_FLOOD)
		return;
	while (vz_test_now_ns() < until)
		;
	/* Relaxed: see flood_count. */
	atomic_fetch_add_explicit(&flood_count, 1, memory_order_relaxed);
	rc = vz_send(self, vz_self(self), MSG_FLOOD, NULL, 0);
	/* refused only once the runtime stops, at the end of the test */
	CHECK(rc == 0 || rc == VZ_ESTOPPED);
}

static const vz_actor_spec flood_spec = {
    .name = "flood",
    .receive = flood_receive,
};

/* ---- the timer actor --------------------------------------------------- */

struct timed {
	uint64_t count_at_arm;
	unsigned round;
};

/* Per round: flood messages between arming and the expiry's arrival. */
static uint64_t per_round[ROUNDS];
static atomic_int done;

static void arm(vz_actor *self, struct timed *s)
{
	/* Relaxed: same thread as the writer. */
	s->count_at_arm = atomic_load_explicit(&flood_count, memory_order_relaxed);
	CHECK(vz_timer_arm(self, TIMER_DELAY_NS, 0, s->round, NULL) == 0);
}

static void timed_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct timed *s = state;
	uint64_t now;

	if (vz_msg_type(m) == MSG_GO) {
		arm(self, s);
		return;
	}
	if (vz_msg_type(m) != VZ_MSG_TIMER)
		return;
	now = atomic_load_explicit(&flood_count, memory_order_relaxed);
	/* the flood went on meanwhile: the shard was busy the whole time */
	CHECK(now > s->count_at_arm);
	per_round[s->round] = now - s->count_at_arm;
	if (++s->round < ROUNDS) {
		arm(self, s);
		return;
	}
	/* Release: pairs with the test thread's acquire wait; per_round[] is
	 * visible to it. */
	atomic_store_explicit(&done, 1, memory_order_release);
}

static const vz_actor_spec timed_spec = {
    .name = "timed",
    .state_size = sizeof(struct timed),
    .receive = timed_receive,
};

/* ---- the scenario ------------------------------------------------------ */

/* One shard, the given wheel tick (0: the default) and budget: start the
 * flood, then the timer rounds; returns when they are done (fails after
 * NEVER_S). */
static vz_runtime *run(uint32_t budget_us, uint32_t tick_us)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref f, t;
	uint64_t end;

	vz_test_reset_fails();
	atomic_store(&done, 0);
	atomic_store(&flood_count, 0);
	memset(per_round, 0, sizeof per_round);
	vz_test_config(&cfg, 1);
	if (tick_us)
		cfg.timer_tick_us = tick_us;
	cfg.turn_budget_us = budget_us;
	assert_int_equal(cfg.actors_per_turn, 256);
	assert_int_equal(cfg.batch, FLOOD_DEPTH);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &flood_spec, NULL, &f), 0);
	assert_int_equal(vz_spawn(rt, 0, &timed_spec, NULL, &t), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	for (unsigned i = 0; i < FLOOD_DEPTH; i++)
		assert_int_equal(vz_post(rt, f, MSG_FLOOD, NULL, 0), 0);
	/* the flood is running before the first arm */
	end = vz_test_now_ns() + (uint64_t)(NEVER_S * 1e9);
	while (atomic_load_explicit(&flood_count, memory_order_relaxed) < 1000) {
		assert_true(vz_test_now_ns() < end);
		sched_yield();
	}
	assert_int_equal(vz_post(rt, t, MSG_GO, NULL, 0), 0);
	if (!vz_test_wait_flag((volatile int *)&done, NEVER_S)) {
		vz_test_assert_no_fails();
		fail_msg("the timer did not fire %u times within %.0f s", ROUNDS, NEVER_S);
	}
	vz_test_assert_no_fails();
	return rt;
}

/* Stop with the flood still going; conservation and clean shutdown. */
static void finish(vz_runtime *rt)
{
	vz_shard_stats s;
	uint64_t foreign, at = atomic_load_explicit(&flood_count, memory_order_relaxed);
	uint64_t end = vz_test_now_ns() + (uint64_t)(NEVER_S * 1e9);

	/* it never stopped flooding */
	while (atomic_load_explicit(&flood_count, memory_order_relaxed) <= at) {
		assert_true(vz_test_now_ns() < end);
		sched_yield();
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &s, &foreign), 0);
	assert_int_equal(s.sent_local + s.sent_remote + foreign, s.handled + s.dead_letters);
	assert_int_equal(s.timers_fired, ROUNDS);
	assert_int_equal(s.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
}

static void test_busy_shard_fires_timers(void **st)
{
	vz_runtime *rt;

	(void)st;
	rt = run(VZ_TURN_BUDGET_US_DEFAULT, 10);
	for (unsigned i = 0; i < ROUNDS; i++) {
		print_message("round %u: %llu flood messages between arm and expiry\n", i,
			      (unsigned long long)per_round[i]);
		assert_in_range(per_round[i], 1, MAX_FLOOD_PER_TIMER);
	}
	finish(rt);
}

static void test_no_budget_still_fires(void **st)
{
	vz_runtime *rt;

	(void)st;
	rt = run(0, 10);
	for (unsigned i = 0; i < ROUNDS; i++)
		print_message("round %u (no budget): %llu flood messages between arm and expiry\n",
			      i, (unsigned long long)per_round[i]);
	finish(rt);
}

static void test_due_timer_ends_long_turn(void **st)
{
	vz_runtime *rt;

	(void)st;
	rt = run(LONG_BUDGET_US, 0);
	for (unsigned i = 0; i < ROUNDS; i++) {
		print_message("round %u (10 ms budget): %llu flood messages between arm and "
			      "expiry\n",
			      i, (unsigned long long)per_round[i]);
		assert_in_range(per_round[i], 1, MAX_FLOOD_LONG_TURN);
	}
	finish(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_busy_shard_fires_timers),
	    cmocka_unit_test(test_no_budget_still_fires),
	    cmocka_unit_test(test_due_timer_ends_long_turn),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
