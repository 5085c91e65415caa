// SPDX-License-Identifier: MIT
/*
 * Worker-pool placement and node-local memory, on declared topologies the
 * test host does not need to have (two nodes of one CPU each, four nodes
 * with a made-up distance table): which CPUs each pool's workers get, the
 * steal/spill order (near before far), each shard's home pool, and the node
 * of every allocation and memory-policy call (recorded through the pool's
 * memory table). No runtime is started. VZ_TEST_BACKEND_INDEPENDENT
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool.h"
#include "topo/topo.h"

/* ---- helpers ------------------------------------------------------------ */

/* A declared topology: node n gets the CPUs listed in cpus[n] (-1 ends). */
static void declare(vz_config *cfg, unsigned nnodes, const int cpus[][8])
{
	memset(&cfg->topology, 0, sizeof cfg->topology);
	cfg->topology.nnodes = nnodes;
	for (unsigned n = 0; n < nnodes; n++)
		for (unsigned i = 0; i < 8 && cpus[n][i] >= 0; i++)
			vz_cpuset_set(&cfg->topology.node_cpus[n], (unsigned)cpus[n][i]);
}

static struct vz__pool_plan *plan_for(vz_config *cfg, struct vz__topology *t, const int *shard_cpus,
				      unsigned nshards, const struct vz__pool_memops *ops, int *rc)
{
	struct vz__pool_plan *p = malloc(sizeof *p);

	assert_non_null(p);
	assert_int_equal(vz__topo_for_config(cfg, t), 0);
	*rc = vz__pools_plan(&cfg->pool, t, shard_cpus, nshards, ops, p);
	return p;
}

static void base_config(vz_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->pool.queue_capacity = 0;
	cfg->pool.workers_per_node = 0;
	cfg->pool.share_shard_cpus = true;
	cfg->pool.overload = VZ_POOL_REJECT;
}

/* A distance table for fake memops: dist[a][b]. */
struct fake_dist {
	int d[4][4];
};

static int fake_distance(void *ctx, int a, int b)
{
	struct fake_dist *f = ctx;

	return f->d[a][b];
}

/* ---- placement ------------------------------------------------------------ */

/* Two nodes, one CPU each, a shard on each CPU: each node's pool shares its
 * shard's CPU (share_shard_cpus), one worker; the steal order is the other
 * node; each shard is served by its own node. */
static void test_two_nodes_shared(void **state)
{
	static const int cpus[2][8] = {{0, -1}, {1, -1}};
	const int shard_cpus[2] = {0, 1};
	struct vz__topology t;
	vz_config cfg;
	int rc;

	(void)state;
	base_config(&cfg);
	declare(&cfg, 2, cpus);
	struct vz__pool_plan *p = plan_for(&cfg, &t, shard_cpus, 2, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->npools, 2);
	assert_int_equal(p->queue_capacity, VZ_POOL_DEFAULT_CAPACITY);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(p->pool[i].node, (int)i);
		assert_int_equal(p->pool[i].nworkers, 1);
		assert_int_equal(p->pool[i].cpu[0], (int)i);
		assert_true(p->pool[i].shares_shard_cpus);
		assert_int_equal(p->pool[i].nsteal, 1);
		assert_int_equal(p->pool[i].steal[0], 1 - i);
		assert_int_equal(p->pool_of_node[i], (int)i);
		assert_int_equal(p->shard_pool[i], i);
	}
	free(p);
}

/* Same machine, sharing forbidden: no CPU can host a worker, no pool. */
static void test_two_nodes_no_sharing(void **state)
{
	static const int cpus[2][8] = {{0, -1}, {1, -1}};
	const int shard_cpus[2] = {0, 1};
	struct vz__topology t;
	vz_config cfg;
	int rc;

	(void)state;
	base_config(&cfg);
	cfg.pool.share_shard_cpus = false;
	declare(&cfg, 2, cpus);
	struct vz__pool_plan *p = plan_for(&cfg, &t, shard_cpus, 2, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->npools, 0);
	assert_int_equal(p->pool_of_node[0], -1);
	assert_int_equal(p->pool_of_node[1], -1);
	free(p);
}

/* One shard on node 0's only CPU, sharing forbidden: node 0 has no pool,
 * node 1's free CPU gets one, and shard 0 is served by node 1 (nearest). */
static void test_free_cpu_preferred(void **state)
{
	static const int cpus[2][8] = {{0, -1}, {1, -1}};
	const int shard_cpus[1] = {0};
	struct vz__topology t;
	vz_config cfg;
	int rc;

	(void)state;
	base_config(&cfg);
	cfg.pool.share_shard_cpus = false;
	declare(&cfg, 2, cpus);
	struct vz__pool_plan *p = plan_for(&cfg, &t, shard_cpus, 1, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->npools, 1);
	assert_int_equal(p->pool[0].node, 1);
	assert_int_equal(p->pool[0].nworkers, 1);
	assert_int_equal(p->pool[0].cpu[0], 1);
	assert_false(p->pool[0].shares_shard_cpus);
	assert_int_equal(p->pool[0].nsteal, 0);
	assert_int_equal(p->pool_of_node[0], -1);
	assert_int_equal(p->shard_pool[0], 0);
	free(p);
}

/* pc->nodes limits which nodes get a pool: with only node 1 chosen, node
 * 0's shard is served by node 1's pool; a mask naming no usable node leaves
 * no pool at all. */
static void test_node_mask(void **state)
{
	static const int cpus[2][8] = {{0, 1, -1}, {2, 3, -1}};
	const int shard_cpus[2] = {0, 2};
	struct vz__topology t;
	vz_config cfg;
	int rc;

	(void)state;
	base_config(&cfg);
	cfg.pool.nodes = UINT64_C(1) << 1;
	declare(&cfg, 2, cpus);
	struct vz__pool_plan *p = plan_for(&cfg, &t, shard_cpus, 2, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->npools, 1);
	assert_int_equal(p->pool[0].node, 1);
	assert_int_equal(p->pool[0].cpu[0], 3);
	assert_int_equal(p->pool_of_node[0], -1);
	assert_int_equal(p->shard_pool[0], 0);
	assert_int_equal(p->shard_pool[1], 0);
	free(p);

	cfg.pool.nodes = UINT64_C(1) << 5; /* no such node */
	p = plan_for(&cfg, &t, shard_cpus, 2, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->npools, 0);
	free(p);
}

/* Two CPUs per node, a shard on the first of each: workers prefer the free
 * CPU even with sharing allowed; one worker per free CPU by default,
 * workers_per_node spreads round-robin over the free CPUs only. */
static void test_free_cpus_and_count(void **state)
{
	static const int cpus[2][8] = {{0, 1, 2, -1}, {3, 4, 5, -1}};
	const int shard_cpus[2] = {0, 3};
	struct vz__topology t;
	vz_config cfg;
	int rc;

	(void)state;
	base_config(&cfg);
	declare(&cfg, 2, cpus);
	struct vz__pool_plan *p = plan_for(&cfg, &t, shard_cpus, 2, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->npools, 2);
	assert_int_equal(p->pool[0].nworkers, 2);
	assert_int_equal(p->pool[0].cpu[0], 1);
	assert_int_equal(p->pool[0].cpu[1], 2);
	assert_int_equal(p->pool[1].nworkers, 2);
	assert_int_equal(p->pool[1].cpu[0], 4);
	assert_int_equal(p->pool[1].cpu[1], 5);
	assert_false(p->pool[0].shares_shard_cpus);
	free(p);

	cfg.pool.workers_per_node = 5;
	p = plan_for(&cfg, &t, shard_cpus, 2, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->pool[0].nworkers, 5);
	{
		const int want[5] = {1, 2, 1, 2, 1};

		for (unsigned i = 0; i < 5; i++) {
			assert_int_equal(p->pool[0].cpu[i], want[i]);
			assert_int_equal(p->pool[1].cpu[i], want[i] + 3);
		}
	}
	free(p);
}

/* Four nodes with a distance table that is not index order: the steal order
 * follows distance (near before far), ties by node number; a shard on a
 * node without a pool is served by the nearest pool. */
static void test_steal_order_by_distance(void **state)
{
	static const int cpus[4][8] = {{0, 1, -1}, {2, 3, -1}, {4, 5, -1}, {6, 7, -1}};
	/* Shards fill node 2's CPUs; sharing off, so node 2 has no pool. */
	const int shard_cpus[3] = {0, 4, 5};
	struct fake_dist fd = {.d = {
				   {10, 20, 30, 12},
				   {20, 10, 20, 40},
				   {25, 15, 10, 21},
				   {12, 40, 21, 10},
			       }};
	struct vz__pool_memops ops = vz__pool_default_memops;
	struct vz__topology t;
	vz_config cfg;
	int rc;

	(void)state;
	ops.distance = fake_distance;
	ops.ctx = &fd;
	base_config(&cfg);
	cfg.pool.share_shard_cpus = false;
	declare(&cfg, 4, cpus);
	struct vz__pool_plan *p = plan_for(&cfg, &t, shard_cpus, 3, &ops, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->npools, 3); /* nodes 0, 1, 3 */
	assert_int_equal(p->pool[0].node, 0);
	assert_int_equal(p->pool[1].node, 1);
	assert_int_equal(p->pool[2].node, 3);
	assert_int_equal(p->pool_of_node[2], -1);
	/* node 0: node 3 (12), node 1 (20) */
	assert_int_equal(p->pool[0].nsteal, 2);
	assert_int_equal(p->pool[0].steal[0], 2);
	assert_int_equal(p->pool[0].steal[1], 1);
	/* node 1: node 0 (20), node 3 (40) */
	assert_int_equal(p->pool[1].steal[0], 0);
	assert_int_equal(p->pool[1].steal[1], 2);
	/* node 3: node 0 (12), node 1 (40) */
	assert_int_equal(p->pool[2].steal[0], 0);
	assert_int_equal(p->pool[2].steal[1], 1);
	/* shard 0 on node 0; shards 1 and 2 on node 2, which has no pool:
	 * node 1 is nearest (15; node 3 is 21, node 0 is 25) */
	assert_int_equal(p->shard_pool[0], 0);
	assert_int_equal(p->shard_pool[1], 1);
	assert_int_equal(p->shard_pool[2], 1);
	/* node 0's only free CPU is 1 */
	assert_int_equal(p->pool[0].nworkers, 1);
	assert_int_equal(p->pool[0].cpu[0], 1);

	/* Ties: make node 0 equally far from 1 and 3; node number decides. */
	fd.d[0][1] = fd.d[0][3] = 20;
	free(p);
	p = plan_for(&cfg, &t, shard_cpus, 3, &ops, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->pool[0].steal[0], 1);
	assert_int_equal(p->pool[0].steal[1], 2);
	free(p);
}

static void test_plan_errors(void **state)
{
	static const int cpus[1][8] = {{0, -1}};
	const int shard_cpus[1] = {0};
	struct vz__pool_plan *p = malloc(sizeof *p);
	struct vz__topology t;
	vz_config cfg;

	(void)state;
	base_config(&cfg);
	declare(&cfg, 1, cpus);
	assert_int_equal(vz__topo_for_config(&cfg, &t), 0);
	assert_int_equal(vz__pools_plan(NULL, &t, shard_cpus, 1, NULL, p), VZ_EINVAL);
	assert_int_equal(vz__pools_plan(&cfg.pool, NULL, shard_cpus, 1, NULL, p), VZ_EINVAL);
	assert_int_equal(vz__pools_plan(&cfg.pool, &t, NULL, 1, NULL, p), VZ_EINVAL);
	assert_int_equal(vz__pools_plan(&cfg.pool, &t, shard_cpus, VZ_MAX_SHARDS + 1, NULL, p),
			 VZ_EINVAL);
	cfg.pool.queue_capacity = 3;
	assert_int_equal(vz__pools_plan(&cfg.pool, &t, shard_cpus, 1, NULL, p), VZ_ECONFIG);
	cfg.pool.queue_capacity = 1;
	assert_int_equal(vz__pools_plan(&cfg.pool, &t, shard_cpus, 1, NULL, p), VZ_ECONFIG);
	cfg.pool.queue_capacity = VZ_POOL_MAX_CAPACITY * 2;
	assert_int_equal(vz__pools_plan(&cfg.pool, &t, shard_cpus, 1, NULL, p), VZ_ECONFIG);
	cfg.pool.queue_capacity = 64;
	cfg.pool.workers_per_node = VZ_POOL_MAX_WORKERS + 1;
	assert_int_equal(vz__pools_plan(&cfg.pool, &t, shard_cpus, 1, NULL, p), VZ_ECONFIG);
	cfg.pool.workers_per_node = 0;
	assert_int_equal(vz__pools_plan(&cfg.pool, &t, shard_cpus, 1, NULL, p), 0);
	assert_int_equal(p->queue_capacity, 64);
	free(p);
}

/* ---- node-local memory ---------------------------------------------------- */

#define MAX_CALLS 256

/* Records every call of the memory table, then does the real thing. */
struct recorder {
	pthread_mutex_t lock;
	unsigned nalloc, nfree, npref;
	struct {
		void *p;
		size_t size;
		int node;
	} alloc[MAX_CALLS];
	size_t freed_bytes;
	struct {
		int node;
		int cpu_count; /* CPUs in the calling thread's affinity */
		int cpu;       /* the only CPU, when cpu_count == 1 */
	} pref[MAX_CALLS];
};

static void *rec_alloc(void *ctx, size_t size, int node)
{
	struct recorder *r = ctx;
	void *p = vz__pool_default_memops.alloc_onnode(NULL, size, node);

	pthread_mutex_lock(&r->lock);
	if (r->nalloc < MAX_CALLS) {
		r->alloc[r->nalloc].p = p;
		r->alloc[r->nalloc].size = size;
		r->alloc[r->nalloc].node = node;
	}
	r->nalloc++;
	pthread_mutex_unlock(&r->lock);
	return p;
}

static void rec_free(void *ctx, void *p, size_t size)
{
	struct recorder *r = ctx;

	pthread_mutex_lock(&r->lock);
	r->nfree++;
	r->freed_bytes += size;
	pthread_mutex_unlock(&r->lock);
	vz__pool_default_memops.free(NULL, p, size);
}

static void rec_preferred(void *ctx, int node)
{
	struct recorder *r = ctx;
	cpu_set_t set;
	int count = -1, cpu = -1;

	if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0) {
		count = CPU_COUNT(&set);
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set)) {
				cpu = c;
				break;
			}
	}
	pthread_mutex_lock(&r->lock);
	if (r->npref < MAX_CALLS) {
		r->pref[r->npref].node = node;
		r->pref[r->npref].cpu_count = count;
		r->pref[r->npref].cpu = cpu;
	}
	r->npref++;
	pthread_mutex_unlock(&r->lock);
}

static int no_post(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	(void)rt, (void)to, (void)type, (void)payload, (void)len;
	return 0;
}

/* Two declared nodes on two real CPUs of this process: every block and
 * stack is allocated for its pool's node, each worker sets its preferred
 * node to its pool's and runs pinned to its planned CPU, and destroy frees
 * exactly what was allocated. */
static void test_memory_per_node(void **state)
{
	int real[2] = {-1, -1}, n = 0;
	int cpus[2][8];
	int shard_cpus[2];
	struct recorder *r = calloc(1, sizeof *r);
	struct vz__pool_memops ops = {rec_alloc, rec_free, vz__pool_default_memops.distance,
				      rec_preferred, r};
	struct vz__pool_set *ps;
	struct vz__topology t;
	cpu_set_t mine;
	vz_config cfg;
	size_t allocated = 0;
	int rc;

	(void)state;
	assert_non_null(r);
	pthread_mutex_init(&r->lock, NULL);
	assert_int_equal(sched_getaffinity(0, sizeof mine, &mine), 0);
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &mine))
			real[n++] = c;
	if (n < 2)
		skip(); /* needs two CPUs to pin one worker per declared node */
	memset(cpus, -1, sizeof cpus);
	cpus[0][0] = real[0];
	cpus[1][0] = real[1];
	shard_cpus[0] = real[0];
	shard_cpus[1] = real[1];
	base_config(&cfg);
	cfg.pool.workers_per_node = 2;
	cfg.pool.queue_capacity = 256;
	declare(&cfg, 2, (const int(*)[8])cpus);
	struct vz__pool_plan *p = plan_for(&cfg, &t, shard_cpus, 2, &ops, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(p->npools, 2);

	assert_int_equal(vz__pools_create_with(NULL, p, &ops, no_post, &ps), 0);
	/* Per pool: one block (queues, records, buffers) + one stack per
	 * worker, all for the pool's node, in pool order. */
	assert_int_equal(r->nalloc, 2 * (1 + 2));
	for (unsigned i = 0; i < r->nalloc; i++) {
		assert_non_null(r->alloc[i].p);
		assert_int_equal(r->alloc[i].node, i < 3 ? 0 : 1);
		allocated += r->alloc[i].size;
	}
	assert_int_equal(r->alloc[1].size, VZ_POOL_STACK_BYTES);
	/* the block holds at least the records of queue_capacity jobs */
	assert_true(r->alloc[0].size > 256 * VZ_POOL_MAX_PAYLOAD);
	assert_int_equal(r->npref, 0); /* no thread yet */

	assert_int_equal(vz__pools_start(ps), 0);
	/* Each worker calls set_preferred first thing; wait for all four. */
	for (;;) {
		pthread_mutex_lock(&r->lock);
		unsigned got = r->npref;
		pthread_mutex_unlock(&r->lock);
		if (got >= 4)
			break;
		sched_yield();
	}
	vz__pools_stop(ps);
	assert_int_equal(r->npref, 4);
	{
		unsigned per_node[2] = {0, 0};

		for (unsigned i = 0; i < 4; i++) {
			int node = r->pref[i].node;

			assert_true(node == 0 || node == 1);
			per_node[node]++;
			assert_int_equal(r->pref[i].cpu_count, 1);
			assert_int_equal(r->pref[i].cpu, real[node]);
		}
		assert_int_equal(per_node[0], 2);
		assert_int_equal(per_node[1], 2);
	}
	vz__pools_destroy(ps);
	assert_int_equal(r->nfree, r->nalloc);
	assert_int_equal(r->freed_bytes, allocated);
	pthread_mutex_destroy(&r->lock);
	free(r);
	free(p);
}

/* A failed allocation frees everything allocated before it. */
static void *failing_alloc(void *ctx, size_t size, int node)
{
	struct recorder *r = ctx;

	if (r->nalloc >= 2) /* the block of pool 0 and one stack succeed */
		return NULL;
	return rec_alloc(ctx, size, node);
}

static void test_create_enomem_frees(void **state)
{
	static const int cpus[2][8] = {{0, -1}, {1, -1}};
	const int shard_cpus[2] = {0, 1};
	struct recorder *r = calloc(1, sizeof *r);
	struct vz__pool_memops ops = {failing_alloc, rec_free, vz__pool_default_memops.distance,
				      rec_preferred, r};
	struct vz__pool_set *ps = NULL;
	struct vz__topology t;
	vz_config cfg;
	int rc;

	(void)state;
	pthread_mutex_init(&r->lock, NULL);
	base_config(&cfg);
	cfg.pool.workers_per_node = 2;
	cfg.pool.queue_capacity = 16;
	declare(&cfg, 2, cpus);
	struct vz__pool_plan *p = plan_for(&cfg, &t, shard_cpus, 2, &ops, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(vz__pools_create_with(NULL, p, &ops, no_post, &ps), VZ_ENOMEM);
	assert_null(ps);
	assert_int_equal(r->nalloc, 2);
	assert_int_equal(r->nfree, 2);
	pthread_mutex_destroy(&r->lock);
	free(r);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_two_nodes_shared),
	    cmocka_unit_test(test_two_nodes_no_sharing),
	    cmocka_unit_test(test_free_cpu_preferred),
	    cmocka_unit_test(test_free_cpus_and_count),
	    cmocka_unit_test(test_node_mask),
	    cmocka_unit_test(test_steal_order_by_distance),
	    cmocka_unit_test(test_plan_errors),
	    cmocka_unit_test(test_memory_per_node),
	    cmocka_unit_test(test_create_enomem_frees),
	};

	vz_test_watchdog(30);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
