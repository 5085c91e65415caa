// SPDX-License-Identifier: MIT
/*
 * The supervisor (include/veloz/supervisor.h) on three shards, children
 * placed on every shard:
 * - first start in spec order; one_for_one restarts only the failed child,
 *   on its shard, under a new reference its name shows; the others keep
 *   theirs;
 * - one_for_all stops the others in reverse spec order (each waited for)
 *   and starts all in spec order; rest_for_one does so for the failed
 *   child and those after it;
 * - transient children that end normally and temporary ones are not
 *   restarted;
 * - a child that crashes in a loop: restarted max_restarts times, then
 *   the supervisor fails upward (its watcher gets DOWN with VZ_EBUSY) and
 *   no child is left;
 * - a child whose init fails during the first start fails the supervisor
 *   with that code;
 * - the runtime stops with a supervisor running: nothing left, books
 *   balanced.
 * The I/O backend comes from VZ_BACKEND (the test runner sets it).
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

enum {
	MSG_DIE = VZ_MSG_USER, /* vz_fail() */
	MSG_QUIT,	       /* stop itself: a normal exit */
	MSG_GO,		       /* watcher: monitor the ref in the payload */
};

/* Order of child starts and stops, by child id ('A', 'B', ...). */
static struct {
	pthread_mutex_t mu;
	char starts[64], stops[64];
	unsigned nstarts, nstops;
	atomic_int down_kind, down_code, downs, watching;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void reset(void)
{
	pthread_mutex_lock(&L.mu);
	L.nstarts = L.nstops = 0;
	memset(L.starts, 0, sizeof L.starts);
	memset(L.stops, 0, sizeof L.stops);
	pthread_mutex_unlock(&L.mu);
	atomic_store(&L.downs, 0);
	atomic_store(&L.watching, 0);
	vz_test_reset_fails();
}

static void log_char(char *buf, unsigned *n, char c)
{
	pthread_mutex_lock(&L.mu);
	if (*n < 63)
		buf[(*n)++] = c;
	pthread_mutex_unlock(&L.mu);
}

static void get_logs(char *starts, char *stops)
{
	pthread_mutex_lock(&L.mu);
	memcpy(starts, L.starts, sizeof L.starts);
	memcpy(stops, L.stops, sizeof L.stops);
	pthread_mutex_unlock(&L.mu);
}

struct warg {
	char id;
	bool init_fails;
};

static atomic_bool crash_b; /* B fails right after every start */

struct worker {
	char id;
};

static int worker_init(vz_actor *self, void *state, const void *arg)
{
	const struct warg *a = arg;
	struct worker *w = state;

	if (a->init_fails)
		return VZ_ENOENT;
	w->id = a->id;
	log_char(L.starts, &L.nstarts, a->id);
	if (a->id == 'B' && atomic_load(&crash_b))
		VZ_TEST_CHECK(vz_send(self, vz_self(self), MSG_DIE, NULL, 0) == 0);
	return 0;
}

static void worker_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) == MSG_DIE)
		VZ_TEST_CHECK(vz_fail(self, 9, "crash") == 0);
	else if (vz_msg_type(m) == MSG_QUIT)
		VZ_TEST_CHECK(vz_stop(vz_actor_runtime(self), vz_self(self)) == 0);
}

static void worker_stop(vz_actor *self, void *state)
{
	struct worker *w = state;

	(void)self;
	log_char(L.stops, &L.nstops, w->id);
}

static const vz_actor_spec worker_spec = {
    .name = "worker",
    .state_size = sizeof(struct worker),
    .init = worker_init,
    .receive = worker_receive,
    .on_stop = worker_stop,
};

/* Watches one actor and records its DOWN. */
static void watcher_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) == MSG_GO) {
		vz_monitor_ref mon;

		VZ_TEST_CHECK(vz_monitor(self, *(const vz_ref *)vz_msg_data(m), &mon) == 0);
		atomic_store(&L.watching, 1);
	} else if (vz_msg_type(m) == VZ_MSG_DOWN) {
		const vz_down *d = vz_msg_data(m);

		atomic_store(&L.down_kind, (int)d->reason.kind);
		atomic_store(&L.down_code, d->reason.code);
		atomic_fetch_add(&L.downs, 1);
	}
}

static const vz_actor_spec watcher_spec = {.name = "watcher", .receive = watcher_receive};

#define NKIDS 3
static struct warg args[NKIDS];
static vz_sup_name names[NKIDS];
static vz_sup_child kids[NKIDS];

static void setup_kids(vz_sup_restart restart)
{
	for (unsigned i = 0; i < NKIDS; i++) {
		args[i] = (struct warg){.id = (char)('A' + i)};
		atomic_store(&names[i].ref, 0);
		kids[i] = (vz_sup_child){.spec = &worker_spec,
					 .arg = &args[i],
					 .arg_len = sizeof args[i],
					 .shard = i,
					 .restart = restart,
					 .name = &names[i]};
	}
}

static vz_runtime *make_rt(void)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_config(&cfg, 3);
	cfg.pool.workers_per_node = 1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	return rt;
}

static void wait_all_named(void)
{
	for (unsigned i = 0; i < NKIDS; i++)
		while (vz_ref_is_null(vz_sup_name_ref(&names[i])))
			sched_yield();
}

/* Wait until name i shows a running child other than `old`. */
static vz_ref wait_renamed(unsigned i, vz_ref old)
{
	vz_ref r;

	do {
		sched_yield();
		r = vz_sup_name_ref(&names[i]);
	} while (vz_ref_is_null(r) || vz_ref_eq(r, old));
	return r;
}

static void wait_count(const unsigned *n, unsigned want)
{
	for (;;) {
		unsigned v;

		pthread_mutex_lock(&L.mu);
		v = *n;
		pthread_mutex_unlock(&L.mu);
		if (v >= want)
			return;
		sched_yield();
	}
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
	vz_test_assert_no_fails();
	atomic_store(&crash_b, false);
}

static void run_strategy(vz_sup_strategy strategy, const char *want_stops, const char *want_starts,
			 const bool *renamed)
{
	vz_sup_spec spec = {.strategy = strategy,
			    .max_restarts = 5,
			    .period_ns = 60000000000ull,
			    .children = kids,
			    .nchildren = NKIDS};
	char starts[64], stops[64];
	vz_ref before[NKIDS], sup;
	vz_runtime *rt;

	reset();
	setup_kids(VZ_SUP_PERMANENT);
	rt = make_rt();
	assert_int_equal(vz_spawn_wait(rt, 0, &vz_supervisor, &spec, &sup), 0);
	wait_all_named();
	get_logs(starts, stops);
	assert_string_equal(starts, "ABC");
	for (unsigned i = 0; i < NKIDS; i++) {
		before[i] = vz_sup_name_ref(&names[i]);
		assert_int_equal(vz_ref_shard(before[i]), i);
	}
	assert_int_equal(vz_post(rt, before[1], MSG_DIE, NULL, 0), 0);
	wait_count(&L.nstarts, 3 + (unsigned)strlen(want_starts));
	for (unsigned i = 0; i < NKIDS; i++) {
		if (renamed[i]) {
			vz_ref now = wait_renamed(i, before[i]);

			assert_int_equal(vz_ref_shard(now), i);
		} else {
			assert_true(vz_ref_eq(vz_sup_name_ref(&names[i]), before[i]));
		}
	}
	get_logs(starts, stops);
	assert_string_equal(stops, want_stops);
	assert_string_equal(starts + 3, want_starts);
	finish(rt);
	/* the runtime's stop ended them all, names cleared by the supervisor */
	for (unsigned i = 0; i < NKIDS; i++)
		assert_true(vz_ref_is_null(vz_sup_name_ref(&names[i])));
}

static void test_one_for_one(void **st)
{
	const bool renamed[NKIDS] = {false, true, false};

	(void)st;
	run_strategy(VZ_SUP_ONE_FOR_ONE, "B", "B", renamed);
}

static void test_one_for_all(void **st)
{
	const bool renamed[NKIDS] = {true, true, true};

	(void)st;
	run_strategy(VZ_SUP_ONE_FOR_ALL, "BCA", "ABC", renamed);
}

static void test_rest_for_one(void **st)
{
	const bool renamed[NKIDS] = {false, true, true};

	(void)st;
	run_strategy(VZ_SUP_REST_FOR_ONE, "BC", "BC", renamed);
}

static void test_transient_temporary(void **st)
{
	vz_sup_spec spec = {.strategy = VZ_SUP_ONE_FOR_ONE,
			    .max_restarts = 5,
			    .period_ns = 60000000000ull,
			    .children = kids,
			    .nchildren = NKIDS};
	vz_runtime *rt;
	vz_ref sup, b, c;

	(void)st;
	reset();
	setup_kids(VZ_SUP_TRANSIENT);
	kids[2].restart = VZ_SUP_TEMPORARY;
	rt = make_rt();
	assert_int_equal(vz_spawn_wait(rt, 1, &vz_supervisor, &spec, &sup), 0);
	wait_all_named();
	b = vz_sup_name_ref(&names[1]);
	c = vz_sup_name_ref(&names[2]);
	/* transient, normal exit: not restarted; temporary, crash: neither */
	assert_int_equal(vz_post(rt, b, MSG_QUIT, NULL, 0), 0);
	assert_int_equal(vz_post(rt, c, MSG_DIE, NULL, 0), 0);
	wait_count(&L.nstops, 2);
	while (!vz_ref_is_null(vz_sup_name_ref(&names[1])) ||
	       !vz_ref_is_null(vz_sup_name_ref(&names[2])))
		sched_yield();
	/* transient, crash: restarted */
	assert_int_equal(vz_post(rt, vz_sup_name_ref(&names[0]), MSG_DIE, NULL, 0), 0);
	wait_count(&L.nstarts, 4);
	{
		char starts[64], stops[64];

		get_logs(starts, stops);
		assert_string_equal(starts, "ABCA");
	}
	finish(rt);
}

static void test_crash_loop_fails_upward(void **st)
{
	vz_sup_spec spec = {.strategy = VZ_SUP_ONE_FOR_ONE,
			    .max_restarts = 3,
			    .period_ns = 60000000000ull,
			    .children = kids,
			    .nchildren = NKIDS};
	char starts[64], stops[64];
	vz_runtime *rt;
	vz_ref sup, w;
	vz_shard_stats t;

	(void)st;
	reset();
	setup_kids(VZ_SUP_PERMANENT);
	rt = make_rt();
	/* on the supervisor's shard, so the monitor is in place at once */
	assert_int_equal(vz_spawn_wait(rt, 0, &watcher_spec, NULL, &w), 0);
	assert_int_equal(vz_spawn_wait(rt, 0, &vz_supervisor, &spec, &sup), 0);
	assert_int_equal(vz_post(rt, w, MSG_GO, &sup, sizeof sup), 0);
	while (!atomic_load(&L.watching))
		sched_yield();
	wait_all_named();
	/* from now on B crashes right after every start */
	atomic_store(&crash_b, true);
	assert_int_equal(vz_post(rt, vz_sup_name_ref(&names[1]), MSG_DIE, NULL, 0), 0);
	while (atomic_load(&L.downs) < 1)
		sched_yield();
	assert_int_equal(atomic_load(&L.down_kind), VZ_EXIT_FAILED);
	assert_int_equal(atomic_load(&L.down_code), VZ_EBUSY);
	/* A, B, C, then B restarted 3 times; every child stopped */
	wait_count(&L.nstops, 6);
	get_logs(starts, stops);
	assert_string_equal(starts, "ABCBBB");
	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	while (t.actors_live != 1) { /* the watcher */
		sched_yield();
		assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	}
	finish(rt);
}

static void test_child_init_fails_at_start(void **st)
{
	vz_sup_spec spec = {.strategy = VZ_SUP_ONE_FOR_ONE,
			    .max_restarts = 3,
			    .period_ns = 60000000000ull,
			    .children = kids,
			    .nchildren = NKIDS};
	char starts[64], stops[64];
	vz_runtime *rt;
	vz_ref sup, w;

	(void)st;
	reset();
	setup_kids(VZ_SUP_PERMANENT);
	args[2].init_fails = true;
	rt = make_rt();
	assert_int_equal(vz_spawn_wait(rt, 2, &watcher_spec, NULL, &w), 0);
	assert_int_equal(vz_spawn_wait(rt, 1, &vz_supervisor, &spec, &sup), 0);
	assert_int_equal(vz_post(rt, w, MSG_GO, &sup, sizeof sup), 0);
	while (atomic_load(&L.downs) < 1)
		sched_yield();
	/* DOWN may be "no such actor" if the supervisor failed before the
	 * watcher's monitor arrived; otherwise it carries init's code */
	if (atomic_load(&L.down_kind) != VZ_EXIT_NOPROC) {
		assert_int_equal(atomic_load(&L.down_kind), VZ_EXIT_FAILED);
		assert_int_equal(atomic_load(&L.down_code), VZ_ENOENT);
	}
	wait_count(&L.nstops, 2);
	get_logs(starts, stops);
	assert_string_equal(starts, "AB");
	assert_string_equal(stops, "BA");
	/* a bad spec is refused by the supervisor's init */
	assert_int_equal(vz_spawn_wait(rt, 0, &vz_supervisor, NULL, &sup), VZ_EINVAL);
	finish(rt);
}

static void test_orderly_shutdown(void **st)
{
	vz_sup_spec spec = {.strategy = VZ_SUP_ONE_FOR_ALL,
			    .max_restarts = 3,
			    .period_ns = 60000000000ull,
			    .children = kids,
			    .nchildren = NKIDS};
	char starts[64], stops[64];
	vz_runtime *rt;
	vz_ref sup, w;

	(void)st;
	reset();
	setup_kids(VZ_SUP_PERMANENT);
	rt = make_rt();
	assert_int_equal(vz_spawn_wait(rt, 0, &watcher_spec, NULL, &w), 0);
	assert_int_equal(vz_spawn_wait(rt, 0, &vz_supervisor, &spec, &sup), 0);
	assert_int_equal(vz_post(rt, w, MSG_GO, &sup, sizeof sup), 0);
	while (!atomic_load(&L.watching))
		sched_yield();
	wait_all_named();
	assert_int_equal(vz_sup_shutdown(rt, sup), 0);
	while (atomic_load(&L.downs) < 1)
		sched_yield();
	/* last first, each waited for (they live on three shards), no
	 * restart, then the supervisor itself, normally */
	get_logs(starts, stops);
	assert_string_equal(stops, "CBA");
	assert_string_equal(starts, "ABC");
	assert_int_equal(atomic_load(&L.down_kind), VZ_EXIT_NORMAL);
	for (unsigned i = 0; i < NKIDS; i++)
		assert_true(vz_ref_is_null(vz_sup_name_ref(&names[i])));
	finish(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_for_one),
	    cmocka_unit_test(test_one_for_all),
	    cmocka_unit_test(test_rest_for_one),
	    cmocka_unit_test(test_transient_temporary),
	    cmocka_unit_test(test_crash_loop_fails_upward),
	    cmocka_unit_test(test_child_init_fails_at_start),
	    cmocka_unit_test(test_orderly_shutdown),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
