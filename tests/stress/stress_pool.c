// SPDX-License-Identifier: MIT
/*
 * Worker pool under real threads. Phase 1 (the lost-wake-up hunt): two
 * submitter threads, acting as shards 0 and 1, submit bursts of 1..8 jobs
 * and wait for them, while the pool's two workers sleep as soon as they find
 * nothing (no polling window): every burst races a worker on its way to
 * sleep, 10^6 submissions at scale 1. A lost wake-up leaves a burst waiting
 * forever and the watchdog fails the test. Phase 2: two nodes with tiny
 * queues under SPILL, workers polling, submitters flooding and retrying on
 * VZ_EFULL: spill, steal and full-queue paths at once. Both phases cancel
 * some jobs right after submitting them. Every job must complete exactly
 * once (fn ran, or VZ_ECANCELED), and the pool's counters must agree.
 * VZ_TEST_BACKEND_INDEPENDENT
 * VZ_TEST_SLEEP_FENCES: the set's handshakes under both fences (a set
 * outside a runtime follows VZ_SLEEP_FENCE).
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"
#include "topo/topo.h"

#define NSUB 2

struct sub {
	unsigned shard;
	uint64_t n;		    /* jobs to submit */
	_Atomic uint64_t completed; /* completions received (posted by workers) */
	_Atomic uint8_t *seen;	    /* completions per job (by tag) */
	uint64_t canceled_ok;	    /* cancels that returned 0 */
	uint64_t full;		    /* VZ_EFULL seen */
	unsigned burst_max;	    /* 1..8 in phase 1 */
	struct vz__pool_set *ps;
	unsigned seed;
};

static struct sub subs[NSUB];
static atomic_uint_fast64_t ran;      /* job functions that ran */
static atomic_uint_fast64_t canceled; /* completions with VZ_ECANCELED */
static atomic_int bad;		      /* anything unexpected in a completion */

static vz_ref ref_of(unsigned shard)
{
	return (vz_ref){((uint64_t)shard << 56) | 0x77};
}

static int post(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	vz_pool_done d;
	unsigned s = vz_ref_shard(to);

	(void)rt;
	memcpy(&d, payload, sizeof d);
	if (type != VZ_MSG_POOL_DONE || s >= NSUB || to.id != ref_of(s).id || d.tag >= subs[s].n ||
	    len != sizeof d + d.result_len || (d.status != 0 && d.status != VZ_ECANCELED)) {
		atomic_store(&bad, 1);
		return 0;
	}
	if (d.status == VZ_ECANCELED)
		atomic_fetch_add_explicit(&canceled, 1, memory_order_relaxed);
	/* Relaxed: exactly-once is checked after all threads joined. */
	atomic_fetch_add_explicit(&subs[s].seen[d.tag], 1, memory_order_relaxed);
	/* Release: pairs with the submitter's acquire load of completed. */
	atomic_fetch_add_explicit(&subs[s].completed, 1, memory_order_release);
	return 0;
}

static int work(void *arg, const void *payload, size_t len, void *result, size_t *result_len)
{
	(void)arg, (void)payload, (void)len, (void)result;
	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
	*result_len = 0;
	return 0;
}

static void *submitter(void *arg)
{
	struct sub *s = arg;
	uint64_t i = 0, done_target;
	vz_job job = {.fn = work};
	vz_job_id id;

	while (i < s->n) {
		unsigned burst = 1 + (unsigned)rand_r(&s->seed) % s->burst_max;

		for (unsigned b = 0; b < burst && i < s->n; b++, i++) {
			int rc;

			job.tag = i;
			while ((rc = vz__pool_submit_as(s->ps, s->shard, ref_of(s->shard), &job,
							&id)) == VZ_EFULL) {
				s->full++;
				sched_yield();
			}
			if (rc != 0) {
				atomic_store(&bad, 1);
				return NULL;
			}
			if ((i & 15) == 7 &&
			    vz__pool_cancel_as(s->ps, s->shard, ref_of(s->shard), id) == 0)
				s->canceled_ok++;
		}
		/* Phase 1: wait for the whole burst, so the workers go idle
		 * (and to sleep) before the next one. Phase 2 does not wait. */
		done_target = s->burst_max > 1 ? i : 0;
		while (atomic_load_explicit(&s->completed, memory_order_acquire) < done_target)
			sched_yield();
	}
	while (atomic_load_explicit(&s->completed, memory_order_acquire) < s->n)
		sched_yield();
	return NULL;
}

static void run_phase(unsigned nnodes, unsigned workers, uint32_t cap, vz_pool_overload ov,
		      uint32_t spin_ns, uint64_t per_sub, unsigned burst_max, const char *name)
{
	struct vz__pool_plan *plan = malloc(sizeof *plan);
	struct vz__pool_set *ps;
	struct vz__topology t;
	vz_config cfg;
	cpu_set_t mine;
	int real[2] = {-1, -1}, n = 0, shard_cpus[NSUB];
	pthread_t th[NSUB];
	uint64_t cancels = 0, fulls = 0, total = per_sub * NSUB;
	vz_pool_stats st, sum = {0};

	assert_non_null(plan);
	assert_int_equal(sched_getaffinity(0, sizeof mine, &mine), 0);
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &mine))
			real[n++] = c;
	if (n < 2)
		real[1] = real[0];
	memset(&cfg, 0, sizeof cfg);
	cfg.topology.nnodes = nnodes;
	for (unsigned i = 0; i < nnodes; i++)
		vz_cpuset_set(&cfg.topology.node_cpus[i], (unsigned)real[i]);
	if (nnodes == 1)
		vz_cpuset_set(&cfg.topology.node_cpus[0], (unsigned)real[1]);
	for (unsigned s = 0; s < NSUB; s++)
		shard_cpus[s] = real[s];
	cfg.pool.workers_per_node = workers;
	cfg.pool.queue_capacity = cap;
	cfg.pool.overload = ov;
	cfg.pool.share_shard_cpus = true;
	assert_int_equal(vz__topo_for_config(&cfg, &t), 0);
	assert_int_equal(vz__pools_plan(&cfg.pool, &t, shard_cpus, NSUB, NULL, plan), 0);
	assert_int_equal(plan->npools, nnodes);
	plan->spin_ns = spin_ns;
	assert_int_equal(vz__pools_create_with(NULL, plan, NULL, post, &ps), 0);
	assert_int_equal(vz__pools_start(ps), 0);

	atomic_store(&ran, 0);
	atomic_store(&canceled, 0);
	for (unsigned s = 0; s < NSUB; s++) {
		memset(&subs[s], 0, sizeof subs[s]);
		subs[s].shard = s;
		subs[s].n = per_sub;
		subs[s].seen = calloc(per_sub, 1);
		assert_non_null(subs[s].seen);
		subs[s].burst_max = burst_max;
		subs[s].ps = ps;
		subs[s].seed = 12345u + s;
		assert_int_equal(pthread_create(&th[s], NULL, submitter, &subs[s]), 0);
	}
	for (unsigned s = 0; s < NSUB; s++)
		assert_int_equal(pthread_join(th[s], NULL), 0);
	assert_int_equal(atomic_load(&bad), 0);

	for (unsigned s = 0; s < NSUB; s++) {
		for (uint64_t i = 0; i < per_sub; i++)
			if (subs[s].seen[i] != 1) {
				fprintf(stderr, "%s: shard %u job %llu completed %u times\n", name,
					s, (unsigned long long)i, subs[s].seen[i]);
				fail();
			}
		cancels += subs[s].canceled_ok;
		fulls += subs[s].full;
		free(subs[s].seen);
	}
	/* A cancelled job's completion is posted by the canceller while its
	 * record still waits in the queue for a worker to skip it: stop first
	 * (which drains), then nothing may be left. */
	vz__pools_stop(ps);
	for (unsigned node = 0; node < nnodes; node++) {
		assert_int_equal(vz__pool_stats_of(ps, node, &st), 0);
		sum.submitted += st.submitted;
		sum.spilled += st.spilled;
		sum.executed += st.executed;
		sum.stolen += st.stolen;
		sum.canceled += st.canceled;
		sum.rejected += st.rejected;
		sum.submit_wakeups += st.submit_wakeups;
		sum.worker_sleeps += st.worker_sleeps;
		sum.post_failures += st.post_failures;
		assert_int_equal(st.queued, 0);
	}
	vz__pools_destroy(ps);
	free(plan);

	assert_int_equal(atomic_load(&canceled), cancels);
	assert_int_equal(atomic_load(&ran) + cancels, total);
	assert_int_equal(sum.submitted, total);
	assert_int_equal(sum.executed, atomic_load(&ran));
	assert_int_equal(sum.canceled, cancels);
	assert_int_equal(sum.rejected, fulls);
	assert_int_equal(sum.post_failures, 0);
	fprintf(stderr,
		"%s: %llu jobs, %llu cancelled, worker sleeps %llu, submit wakes %llu, "
		"spilled %llu, stolen %llu, full %llu\n",
		name, (unsigned long long)total, (unsigned long long)cancels,
		(unsigned long long)sum.worker_sleeps, (unsigned long long)sum.submit_wakeups,
		(unsigned long long)sum.spilled, (unsigned long long)sum.stolen,
		(unsigned long long)fulls);
	if (strcmp(name, "sleep-races") == 0)
		assert_true(sum.worker_sleeps > 0 && sum.submit_wakeups > 0);
}

static void test_sleep_races(void **state)
{
	(void)state;
	run_phase(1, 2, 64, VZ_POOL_REJECT, 0, vz_test_scale(500000), 8, "sleep-races");
}

static void test_spill_steal_flood(void **state)
{
	(void)state;
	run_phase(2, 1, 8, VZ_POOL_SPILL, VZ_POOL_SPIN_NS, vz_test_scale(200000), 1, "spill-steal");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sleep_races),
	    cmocka_unit_test(test_spill_steal_flood),
	};

	vz_test_watchdog(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
