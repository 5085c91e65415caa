// SPDX-License-Identifier: MIT
/*
 * Stop at its edges, one case at a time (the races themselves, repeated,
 * are in tests/stress/stress_stop_race.c):
 * - a foreign post admitted just before stop began but pushed only after
 *   (its thread stalled in between, by fault injection) is waited for:
 *   when vz_runtime_stop() returns its message has been dead-lettered;
 * - VZ_EFULL refusals of foreign posts are counted in mailbox_full;
 * - an embedded shard is never pinned: vz_runtime_shard_cpu() reports -1,
 *   the driving thread's affinity is left alone, a cpu named for it is kept
 *   free of other shards;
 * - vz_runtime_stop() from the thread that drives an embedded shard
 *   (between two polls) works, from inside its poll it is refused;
 * - a poll of an embedded shard that stop drove, because nobody had polled
 *   it, returns VZ_ESTOPPED.
 * The I/O backend comes from VZ_BACKEND (the test runner sets it).
 */
#include "testutil.h"

#include "util/fault.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifndef VZ_FAULT_INJECTION
#error "test_stop_edges needs the runtime built with VZ_FAULT_INJECTION (the default)"
#endif

enum {
	MSG_DATA = VZ_MSG_USER,
	MSG_TRY_STOP, /* the actor calls vz_runtime_stop() and records the result */
};

static atomic_ulong handled;   /* MSG_DATA handled by sinks */
static atomic_ulong dead_seen; /* dead-letter hook calls */
static atomic_int stop_rc_inside = 1;

static void count_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
		       int reason)
{
	(void)ctx, (void)to, (void)type, (void)data, (void)len, (void)reason;
	atomic_fetch_add(&dead_seen, 1);
}

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) == MSG_DATA)
		atomic_fetch_add(&handled, 1);
	else if (vz_msg_type(m) == MSG_TRY_STOP)
		atomic_store(&stop_rc_inside, vz_runtime_stop(vz_actor_runtime(self)));
}

static const vz_actor_spec sink_spec = {.name = "sink", .receive = sink_receive};
static const vz_actor_spec bounded_spec = {
    .name = "bounded", .receive = sink_receive, .mailbox_limit = 4};

static void reset(void)
{
	atomic_store(&handled, 0);
	atomic_store(&dead_seen, 0);
	atomic_store(&stop_rc_inside, 1);
	vz__fault_disarm_all();
}

static void config(vz_config *cfg, unsigned nshards)
{
	vz_test_config(cfg, nshards);
	cfg->dead_letter = count_dead;
	cfg->pool.workers_per_node = 1;
}

/* Stats balance and the hook saw every dead letter. */
static void check_balance(vz_runtime *rt)
{
	vz_shard_stats t;
	uint64_t foreign;

	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, atomic_load(&dead_seen));
}

/* ---- a post admitted before stop, pushed after it began ---------------- */

struct poster {
	vz_runtime *rt;
	vz_ref to;
	int rc;
};

static void *post_once(void *p)
{
	struct poster *ps = p;
	uint64_t v = 42;

	ps->rc = vz_post(ps->rt, ps->to, MSG_DATA, &v, sizeof v);
	return NULL;
}

static void test_post_admitted_before_stop(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	struct poster ps;
	pthread_t th;
	unsigned long at_stop;

	(void)st;
	reset();
	config(&cfg, 2);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 1, &sink_spec, NULL, &ps.to), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	ps.rt = rt;
	/* The poster is admitted, then stalls until stop has begun (and a
	 * while longer) before it pushes. */
	vz__fault_arm(VZ_FAULT_POST_STALL, 0, 1);
	assert_int_equal(pthread_create(&th, NULL, post_once, &ps), 0);
	while (vz__fault_fired(VZ_FAULT_POST_STALL) == 0)
		sched_yield();
	assert_int_equal(vz_runtime_stop(rt), 0);
	/* What stop dealt with, before the poster has even returned. */
	at_stop = atomic_load(&handled) + atomic_load(&dead_seen);
	pthread_join(th, NULL);
	assert_int_equal(ps.rc, 0); /* admitted before the gate closed */
	assert_int_equal(at_stop, 1);
	check_balance(rt);
	/* destroy finds nothing left to dead-letter */
	assert_int_equal(vz_runtime_destroy(rt), 0);
	assert_int_equal(atomic_load(&dead_seen), 1);
	vz__fault_disarm_all();
}

/* ---- VZ_EFULL of foreign posts counted ---------------------------------- */

static void test_foreign_mailbox_full_counted(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_shard_stats s;
	vz_ref b;
	unsigned ok = 0, full = 0;

	(void)st;
	reset();
	config(&cfg, 2);
	cfg.shards[1].embedded = true; /* never polled: nothing drains */
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 1, &bounded_spec, NULL, &b), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	for (int i = 0; i < 10; i++) {
		uint64_t v = (uint64_t)i;
		int rc = vz_post(rt, b, MSG_DATA, &v, sizeof v);

		if (rc == 0)
			ok++;
		else if (rc == VZ_EFULL)
			full++;
		else
			fail_msg("vz_post: %s", vz_errname(rc));
	}
	assert_int_equal(ok, 4);
	assert_int_equal(full, 6);
	assert_int_equal(vz_stats_shard(rt, 1, &s), 0);
	assert_int_equal(s.mailbox_full, 6); /* on the target's shard */
	assert_int_equal(vz_stats_shard(rt, 0, &s), 0);
	assert_int_equal(s.mailbox_full, 0);
	assert_int_equal(vz_stats_total(rt, &s, NULL), 0);
	assert_int_equal(s.mailbox_full, 6);
	/* this thread never polled shard 1: stop drives it and dead-letters
	 * the four; a poll afterwards is refused */
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&dead_seen), 4);
	assert_int_equal(vz_shard_poll(rt, 1, 0), VZ_ESTOPPED);
	check_balance(rt);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* ---- embedded shards are not pinned ------------------------------------- */

static void test_embedded_cpu_not_pinned(void **st)
{
	cpu_set_t before, after;
	vz_config cfg;
	vz_runtime *rt;
	int last = -1, n = 0;

	(void)st;
	reset();
	assert_int_equal(sched_getaffinity(0, sizeof before, &before), 0);
	config(&cfg, 2);
	cfg.shards[1].embedded = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_runtime_shard_cpu(rt, 1), -1);
	assert_true(vz_runtime_shard_cpu(rt, 0) >= 0);
	for (int i = 0; i < 10; i++)
		assert_true(vz_shard_poll(rt, 1, 100) >= 0);
	assert_int_equal(sched_getaffinity(0, sizeof after, &after), 0);
	assert_true(CPU_EQUAL(&before, &after));
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	assert_int_equal(sched_getaffinity(0, sizeof after, &after), 0);
	assert_true(CPU_EQUAL(&before, &after));

	/* A cpu named for an embedded shard is kept free of the others but
	 * still reported as -1 (nothing is pinned to it). Needs two CPUs. */
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &before))
			last = c, n++;
	if (n < 2 || getenv("VZ_CPUS"))
		return;
	config(&cfg, 2);
	cfg.allow_shared_cpus = false;
	cfg.shards[1].embedded = true;
	cfg.shards[1].cpu = last;
	if (vz_runtime_create(&cfg, &rt) == VZ_ECONFIG)
		return; /* outside the cgroup cpuset: nothing to check here */
	assert_int_equal(vz_runtime_shard_cpu(rt, 1), -1);
	assert_true(vz_runtime_shard_cpu(rt, 0) >= 0);
	assert_int_not_equal(vz_runtime_shard_cpu(rt, 0), last);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* ---- stop from the driving thread --------------------------------------- */

static void test_stop_from_driving_thread(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref r;
	int rc;

	(void)st;
	reset();
	config(&cfg, 2);
	cfg.shards[1].embedded = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 1, &sink_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_true(vz_shard_poll(rt, 1, 0) >= 0); /* bound to this thread */
	/* from inside the poll (an actor of the shard): refused */
	assert_int_equal(vz_post(rt, r, MSG_TRY_STOP, NULL, 0), 0);
	while (atomic_load(&stop_rc_inside) == 1)
		assert_true(vz_shard_poll(rt, 1, 1000) >= 0);
	assert_int_equal(atomic_load(&stop_rc_inside), VZ_EWRONGTHREAD);
	/* between polls: stop drives the shard itself; what is queued for it
	 * is dead-lettered */
	for (int i = 0; i < 100; i++) {
		uint64_t v = (uint64_t)i;

		assert_int_equal(vz_post(rt, r, MSG_DATA, &v, sizeof v), 0);
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&handled) + atomic_load(&dead_seen), 100);
	rc = vz_shard_poll(rt, 1, 0);
	assert_int_equal(rc, VZ_ESTOPPED);
	check_balance(rt);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* ---- a poll after stop drove a never-polled shard ----------------------- */

static void *poll_once(void *p)
{
	struct poster *ps = p;

	ps->rc = vz_shard_poll(ps->rt, 0, 0);
	return NULL;
}

static void test_poll_after_stop_drove_it(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	struct poster ps;
	pthread_t th;
	vz_ref r;

	(void)st;
	reset();
	config(&cfg, 2);
	cfg.shards[0].embedded = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &sink_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, r, MSG_DATA, NULL, 0), 0);
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&dead_seen), 1);
	ps.rt = rt;
	assert_int_equal(pthread_create(&th, NULL, poll_once, &ps), 0);
	pthread_join(th, NULL);
	assert_int_equal(ps.rc, VZ_ESTOPPED);
	assert_int_equal(vz_shard_poll(rt, 0, 0), VZ_ESTOPPED);
	check_balance(rt);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_post_admitted_before_stop),
	    cmocka_unit_test(test_foreign_mailbox_full_counted),
	    cmocka_unit_test(test_embedded_cpu_not_pinned),
	    cmocka_unit_test(test_stop_from_driving_thread),
	    cmocka_unit_test(test_poll_after_stop_drove_it),
	};

	vz_test_watchdog(120);
	vz_test_warm_up_threads();
	if (getenv("VZ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VZ_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
