// SPDX-License-Identifier: MIT
/*
 * The sleep fence (runtime/util/membarrier.h): how the runtime chooses
 * between the asymmetric scheme (the sleeper's membarrier()) and the
 * symmetric one (full barriers on both sides), and that wake-ups work in
 * whichever it chose. VZ_SLEEP_FENCE=fence forces the fallback, as a
 * seccomp filter or an old kernel would; the injected fault
 * VZ_FAULT_MEMBARRIER_EPERM makes the probe fail, so "auto" must fall back
 * on its own, and a forced "membarrier" must refuse to create. In every
 * mode a shard that is asleep is woken by a foreign post and by another
 * shard, message after message, each one waiting until the target sleeps
 * again (the lost-wake-up stress, tests/stress/stress_wake.c, races the
 * protocol itself, in both modes).
 *
 * A shard asleep with pool jobs out makes one membarrier() per sleep (none
 * under the fence): the sleep's one barrier serves the pool's completion
 * rings too.
 *
 * Under ThreadSanitizer the runtime always uses the fence: the checks on
 * "membarrier" are skipped there.
 */
#include "testutil.h"

#include "util/fault.h"
#include "util/fence.h"
#include "util/membarrier.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VZ_FAULT_INJECTION
#error "test_sleep_fence needs the runtime built with VZ_FAULT_INJECTION (the default)"
#endif

enum { MSG_DATA = VZ_MSG_USER, MSG_RELAY };

#define ROUNDS 50

static atomic_ulong seen; /* MSG_DATA handled by the sink, in order */
static atomic_int errors; /* out-of-order or failed sends */

struct sink {
	uint64_t next;
};

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct sink *k = state;
	uint64_t seq;

	(void)self;
	if (vz_msg_type(m) != MSG_DATA)
		return;
	memcpy(&seq, vz_msg_data(m), sizeof seq);
	if (seq != k->next++)
		atomic_fetch_add(&errors, 1);
	/* Release: the test thread reads it (acquire) before the stats. */
	atomic_fetch_add_explicit(&seen, 1, memory_order_release);
}

static const vz_actor_spec sink_spec = {
    .name = "sink",
    .state_size = sizeof(struct sink),
    .receive = sink_receive,
};

/* On shard 0: forwards each MSG_RELAY's payload (a sink ref and a sequence
 * number) to the sink on shard 1, a cross-shard send. */
static void relay_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_ref to;
	uint64_t seq;

	(void)state;
	if (vz_msg_type(m) != MSG_RELAY)
		return;
	memcpy(&to, vz_msg_data(m), sizeof to);
	memcpy(&seq, (const char *)vz_msg_data(m) + sizeof to, sizeof seq);
	if (vz_send(self, to, MSG_DATA, &seq, sizeof seq) != 0)
		atomic_fetch_add(&errors, 1);
}

static const vz_actor_spec relay_spec = {
    .name = "relay",
    .receive = relay_receive,
};

/* Wait until `shard` has gone to sleep more than `after` times. */
static uint64_t wait_asleep(vz_runtime *rt, unsigned shard, uint64_t after)
{
	uint64_t end = vz_test_now_ns() + 60ull * 1000000000u;
	vz_shard_stats s;

	for (;;) {
		assert_int_equal(vz_stats_shard(rt, shard, &s), 0);
		if (s.sleeps > after)
			return s.sleeps;
		if (vz_test_now_ns() > end)
			fail_msg("shard %u never went to sleep", shard);
		sched_yield();
	}
}

/* Wait until the sink has handled `want` messages. */
static void wait_seen(uint64_t want)
{
	uint64_t end = vz_test_now_ns() + 60ull * 1000000000u;

	while (atomic_load_explicit(&seen, memory_order_acquire) < want) {
		if (vz_test_now_ns() > end)
			fail_msg("lost wake-up: %llu of %llu messages arrived",
				 (unsigned long long)atomic_load(&seen), (unsigned long long)want);
		sched_yield();
	}
}

/*
 * Create a runtime with VZ_SLEEP_FENCE=`env` (NULL: unset) and check the
 * choice is `want`; then ROUNDS foreign posts and ROUNDS cross-shard sends
 * (a foreign post to the relay on shard 0, which sends on to shard 1), each
 * while the target shard sleeps. Returns the reason the runtime gave.
 */
static void run_mode(const char *env, const char *want, char *reason, size_t reason_len)
{
	uint64_t s0 = 0, s1 = 0, seq = 0;
	vz_config cfg;
	vz_runtime *rt;
	vz_ref sink, relay;

	atomic_store(&seen, 0);
	atomic_store(&errors, 0);
	if (env)
		assert_int_equal(setenv("VZ_SLEEP_FENCE", env, 1), 0);
	else
		assert_int_equal(unsetenv("VZ_SLEEP_FENCE"), 0);
	vz_test_config(&cfg, 2);
	cfg.idle_policy = VZ_IDLE_SLEEP; /* block as soon as idle */
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_string_equal(vz_runtime_sleep_fence(rt), want);
	if (reason)
		snprintf(reason, reason_len, "%s", vz_runtime_sleep_fence_reason(rt));
	print_message("VZ_SLEEP_FENCE=%s: %s (%s)\n", env ? env : "(unset)",
		      vz_runtime_sleep_fence(rt), vz_runtime_sleep_fence_reason(rt));
	assert_int_equal(vz_spawn(rt, 1, &sink_spec, NULL, &sink), 0);
	assert_int_equal(vz_spawn(rt, 0, &relay_spec, NULL, &relay), 0);
	assert_int_equal(vz_runtime_start(rt), 0);

	/* Foreign posts: the inbox push, then the flag. */
	for (unsigned i = 0; i < ROUNDS; i++) {
		s1 = wait_asleep(rt, 1, s1);
		assert_int_equal(vz_post(rt, sink, MSG_DATA, &seq, sizeof seq), 0);
		wait_seen(++seq);
	}
	/* Cross-shard sends: the ring and the doorbell, then the flag. */
	for (unsigned i = 0; i < ROUNDS; i++) {
		unsigned char p[sizeof(vz_ref) + sizeof(uint64_t)];

		s0 = wait_asleep(rt, 0, s0);
		s1 = wait_asleep(rt, 1, s1);
		memcpy(p, &sink, sizeof sink);
		memcpy(p + sizeof sink, &seq, sizeof seq);
		assert_int_equal(vz_post(rt, relay, MSG_RELAY, p, sizeof p), 0);
		wait_seen(++seq);
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	assert_int_equal(atomic_load(&errors), 0);
	assert_int_equal(unsetenv("VZ_SLEEP_FENCE"), 0);
}

#ifdef VZ__TSAN
#define AUTO_CHOICE "fence" /* membarrier is invisible to TSan */
#else
#define AUTO_CHOICE "membarrier"
#endif

/* Forced fallback: the symmetric scheme, as on a kernel without
 * membarrier; the reason says it was forced. */
static void test_forced_fence(void **st)
{
	char reason[256];

	(void)st;
	run_mode("fence", "fence", reason, sizeof reason);
	assert_non_null(strstr(reason, "forced"));
}

/* auto and membarrier: membarrier where the kernel and any seccomp filter
 * allow it (the test's runners do; this test is run under the
 * no_io_uring launcher's filter as well). */
static void test_auto_and_forced_membarrier(void **st)
{
	(void)st;
	run_mode(NULL, AUTO_CHOICE, NULL, 0);
	run_mode("auto", AUTO_CHOICE, NULL, 0);
	run_mode("membarrier", AUTO_CHOICE, NULL, 0);
}

/* The probe fails (as under a seccomp filter that forbids membarrier):
 * auto falls back to the fence and says why; wake-ups still work. */
static void test_probe_fails_auto_falls_back(void **st)
{
	char reason[256];

	(void)st;
	vz__fault_arm(VZ_FAULT_MEMBARRIER_EPERM, 0, -1);
	run_mode("auto", "fence", reason, sizeof reason);
	vz__fault_disarm_all();
#ifndef VZ__TSAN
	assert_non_null(strstr(reason, "membarrier unavailable"));
#endif
}

/* membarrier forced where it is unavailable, or an unknown value: create
 * refuses and says why; nothing is left behind. */
static void test_refusals(void **st)
{
	vz_config_error err;
	vz_config cfg;
	vz_runtime *rt = NULL;

	(void)st;
	vz_test_config(&cfg, 2);
	cfg.create_error = &err;
#ifndef VZ__TSAN
	vz__fault_arm(VZ_FAULT_MEMBARRIER_EPERM, 0, -1);
	assert_int_equal(setenv("VZ_SLEEP_FENCE", "membarrier", 1), 0);
	assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ENOSYS);
	assert_null(rt);
	assert_non_null(strstr(err.message, "membarrier forced by VZ_SLEEP_FENCE"));
	vz__fault_disarm_all();
#endif
	assert_int_equal(setenv("VZ_SLEEP_FENCE", "sometimes", 1), 0);
	assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ECONFIG);
	assert_null(rt);
	assert_non_null(strstr(err.message, "unknown sleep fence"));
	assert_int_equal(unsetenv("VZ_SLEEP_FENCE"), 0);
}

/* ---- one barrier per sleep with pool jobs out ---------------------------- */

enum { MSG_SUBMIT = VZ_MSG_USER + 10 };

static atomic_int job_gate;	  /* the job waits until the test opens it */
static atomic_int job_running;	  /* the worker has entered the job */
static atomic_int job_done_seen;  /* the actor got its VZ_MSG_POOL_DONE */
static atomic_int job_submit_err; /* vz_pool_submit()'s result */

static int gated_job(void *arg, const void *payload, size_t len, void *result, size_t *result_len)
{
	(void)arg, (void)payload, (void)len, (void)result;
	/* Release/acquire: only a flag; the test reads nothing else. */
	atomic_store_explicit(&job_running, 1, memory_order_release);
	while (!atomic_load_explicit(&job_gate, memory_order_acquire))
		sched_yield();
	*result_len = 0;
	return 0;
}

static void submitter_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_job j = {.fn = gated_job};

	(void)state;
	if (vz_msg_type(m) == MSG_SUBMIT)
		atomic_store(&job_submit_err, vz_pool_submit(self, &j, NULL));
	else if (vz_msg_type(m) == VZ_MSG_POOL_DONE)
		atomic_store(&job_done_seen, 1);
}

static const vz_actor_spec submitter_spec = {
    .name = "submitter",
    .receive = submitter_receive,
};

/*
 * A shard that sleeps while one of its pool jobs is out (the worker is
 * inside it) makes one membarrier() per sleep under the membarrier fence,
 * and none under the symmetric fence: its sleep's one barrier serves the
 * completion rings as well (util/membarrier.h, "One barrier per shard
 * sleep"). The shard is embedded and driven by this thread, so the
 * per-thread count of vz__membarrier_calls() is the shard's own, and each
 * idle vz_shard_poll() is exactly one pass through the sleep protocol:
 * nothing wakes the shard (the job waits for us), so every pass finds no
 * work and blocks (counted in `sleeps`) until its timeout. Then the job
 * finishes and its completion must wake the sleeping shard.
 */
static void one_barrier_per_sleep(const char *env)
{
	uint64_t calls0, sleeps0, end;
	vz_shard_stats st;
	vz_config cfg;
	vz_runtime *rt;
	vz_ref a;
	bool membarrier;

	atomic_store(&job_gate, 0);
	atomic_store(&job_running, 0);
	atomic_store(&job_done_seen, 0);
	atomic_store(&job_submit_err, 1);
	assert_int_equal(setenv("VZ_SLEEP_FENCE", env, 1), 0);
	vz_test_config(&cfg, 1);
	cfg.shards[0].embedded = true;
	cfg.pool.workers_per_node = 1;
	cfg.pool.share_shard_cpus = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	membarrier = strcmp(vz_runtime_sleep_fence(rt), "membarrier") == 0;
	assert_int_equal(vz_spawn(rt, 0, &submitter_spec, NULL, &a), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, a, MSG_SUBMIT, NULL, 0), 0);
	end = vz_test_now_ns() + 60ull * 1000000000u;
	while (!atomic_load_explicit(&job_running, memory_order_acquire)) {
		assert_true(vz_shard_poll(rt, 0, 0) >= 0);
		if (vz_test_now_ns() > end)
			fail_msg("the job never started");
	}
	assert_int_equal(atomic_load(&job_submit_err), 0);
	/* Drain what the submission left (none of it wakes us later). */
	while (vz_shard_poll(rt, 0, 0) > 0)
		;
	assert_int_equal(vz_stats_shard(rt, 0, &st), 0);
	sleeps0 = st.sleeps;
	calls0 = vz__membarrier_calls();
	for (unsigned i = 0; i < 20; i++)
		assert_true(vz_shard_poll(rt, 0, 1000) >= 0);
	assert_int_equal(vz_stats_shard(rt, 0, &st), 0);
	print_message("VZ_SLEEP_FENCE=%s: %llu sleeps with a job out, %llu membarrier() calls\n",
		      env, (unsigned long long)(st.sleeps - sleeps0),
		      (unsigned long long)(vz__membarrier_calls() - calls0));
	assert_true(st.sleeps - sleeps0 >= 1);
	if (membarrier)
		assert_int_equal(vz__membarrier_calls() - calls0, st.sleeps - sleeps0);
	else
		assert_int_equal(vz__membarrier_calls() - calls0, 0);
	/* The completion wakes the shard out of an unbounded sleep (the
	 * watchdog fails the test if the wake-up is lost). */
	atomic_store_explicit(&job_gate, 1, memory_order_release);
	while (!atomic_load(&job_done_seen))
		assert_true(vz_shard_poll(rt, 0, UINT32_MAX) >= 0);
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	assert_int_equal(unsetenv("VZ_SLEEP_FENCE"), 0);
}

static void test_one_barrier_per_sleep_with_jobs_out(void **st)
{
	(void)st;
	one_barrier_per_sleep("fence");
	one_barrier_per_sleep("auto");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_forced_fence),
	    cmocka_unit_test(test_auto_and_forced_membarrier),
	    cmocka_unit_test(test_probe_fails_auto_falls_back),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_one_barrier_per_sleep_with_jobs_out),
	};

	vz_test_watchdog(240);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
