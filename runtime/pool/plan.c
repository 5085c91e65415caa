// SPDX-License-Identifier: MIT
/*
 * Pool placement (vz__pools_plan) and the default node-memory table. The
 * plan is a pure function of the topology, the pool settings and the shard
 * CPUs, so tests can check placement on declared machines (two nodes, one
 * CPU each) that the test host does not have.
 */
#include "pool/pool.h"

#include <numa.h>
#include <string.h>
#include <sys/mman.h>

#include <veloz/error.h>

#include "topo/topo.h"

/* ---- default memory table ---------------------------------------------- */

/* True when libnuma works here and `node` is a node of this machine. */
static bool node_exists(int node)
{
	return node >= 0 && numa_available() >= 0 && node <= numa_max_node();
}

static void *default_alloc_onnode(void *ctx, size_t size, int node)
{
	void *p;

	(void)ctx;
	if (node_exists(node))
		return numa_alloc_onnode(size, node); /* mmap + mbind: zeroed, page-aligned */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void default_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	if (p)
		munmap(p, size); /* what numa_free() does too */
}

static int default_distance(void *ctx, int a, int b)
{
	int d;

	(void)ctx;
	if (node_exists(a) && node_exists(b)) {
		d = numa_distance(a, b);
		if (d > 0)
			return d;
	}
	/* Synthetic, for nodes the machine does not have: local 10 (as the
	 * ACPI SLIT), remote farther with the node-number gap. */
	return a == b ? 10 : 20 + (a > b ? a - b : b - a);
}

static void default_set_preferred(void *ctx, int node)
{
	(void)ctx;
	if (node_exists(node))
		numa_set_preferred(node);
}

const struct vz__pool_memops vz__pool_default_memops = {
    .alloc_onnode = default_alloc_onnode,
    .free = default_free,
    .distance = default_distance,
    .set_preferred = default_set_preferred,
    .ctx = NULL,
};

/* ---- planning ----------------------------------------------------------- */

/* Node of `cpu` in t: the declared or detected node sets decide, cpu_node[]
 * is the fallback; -1 when the CPU belongs to no node. */
static int cpu_node_of(const struct vz__topology *t, unsigned cpu)
{
	for (unsigned n = 0; n < t->nnodes && n < VZ_MAX_NODES; n++)
		if (vz_cpuset_has(&t->node_cpus[n], cpu))
			return (int)n;
	return cpu < VZ_MAX_CPUS ? t->cpu_node[cpu] : -1;
}

/* Order the pools other than `self` by (distance from node, node number)
 * into out[]; returns how many. */
static unsigned order_by_distance(const struct vz__pool_plan *p, const struct vz__pool_memops *ops,
				  int node, int self, uint8_t *out)
{
	int dist[VZ_MAX_NODES];
	unsigned n = 0;

	for (unsigned i = 0; i < p->npools; i++) {
		if ((int)i == self)
			continue;
		int d = ops->distance(ops->ctx, node, p->pool[i].node);
		unsigned j = n++;

		/* Insertion sort; pools are visited in ascending node order,
		 * so equal distances keep node order. */
		while (j > 0 && dist[j - 1] > d) {
			dist[j] = dist[j - 1];
			out[j] = out[j - 1];
			j--;
		}
		dist[j] = d;
		out[j] = (uint8_t)i;
	}
	return n;
}

int vz__pools_plan(const vz_pool_config *pc, const struct vz__topology *t, const int *shard_cpus,
		   unsigned nshards, const struct vz__pool_memops *ops, struct vz__pool_plan *out)
{
	vz_cpuset shard_set;
	uint32_t cap;

	if (!pc || !t || !out || (nshards > 0 && !shard_cpus) || nshards > VZ_MAX_SHARDS)
		return VZ_EINVAL;
	if (!ops)
		ops = &vz__pool_default_memops;
	cap = pc->queue_capacity ? pc->queue_capacity : VZ_POOL_DEFAULT_CAPACITY;
	if (cap < 2 || cap > VZ_POOL_MAX_CAPACITY || (cap & (cap - 1)) != 0)
		return VZ_ECONFIG;
	if (pc->workers_per_node > VZ_POOL_MAX_WORKERS)
		return VZ_ECONFIG;

	memset(out, 0, sizeof *out);
	out->queue_capacity = cap;
	out->overload = pc->overload;
	out->nshards = nshards;
	out->spin_ns = VZ_POOL_SPIN_NS;
	for (unsigned n = 0; n < VZ_MAX_NODES; n++)
		out->pool_of_node[n] = -1;

	vz_cpuset_zero(&shard_set);
	for (unsigned s = 0; s < nshards; s++)
		if (shard_cpus[s] >= 0)
			vz_cpuset_set(&shard_set, (unsigned)shard_cpus[s]);

	for (unsigned n = 0; n < t->nnodes && n < VZ_MAX_NODES; n++) {
		int usable[VZ_MAX_CPUS], nusable = 0, nfree = 0;
		int freecpu[VZ_MAX_CPUS];
		struct vz__pool_plan_pool *pp;
		unsigned want;

		for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
			if (!vz_cpuset_has(&t->node_cpus[n], c) || !vz_cpuset_has(&t->allowed, c))
				continue;
			usable[nusable++] = (int)c;
			if (!vz_cpuset_has(&shard_set, c))
				freecpu[nfree++] = (int)c;
		}
		if (pc->nodes != 0 && !((pc->nodes >> n) & 1))
			continue; /* the config leaves this node without a pool */
		if (nusable == 0 || (nfree == 0 && !pc->share_shard_cpus))
			continue; /* no CPU of this node may host a worker */

		pp = &out->pool[out->npools];
		pp->node = (int)n;
		pp->shares_shard_cpus = nfree == 0;
		want = pc->workers_per_node ? pc->workers_per_node
					    : (nfree > 0 ? (unsigned)nfree : 1u);
		if (want > VZ_POOL_MAX_WORKERS)
			want = VZ_POOL_MAX_WORKERS;
		pp->nworkers = want;
		for (unsigned w = 0; w < want; w++)
			pp->cpu[w] = nfree > 0 ? freecpu[w % (unsigned)nfree]
					       : usable[w % (unsigned)nusable];
		out->pool_of_node[n] = (int)out->npools;
		out->npools++;
	}

	for (unsigned i = 0; i < out->npools; i++)
		out->pool[i].nsteal =
		    order_by_distance(out, ops, out->pool[i].node, (int)i, out->pool[i].steal);

	for (unsigned s = 0; s < nshards && out->npools > 0; s++) {
		int node = shard_cpus[s] >= 0 ? cpu_node_of(t, (unsigned)shard_cpus[s]) : 0;
		uint8_t near[VZ_MAX_NODES];

		if (node >= 0 && node < VZ_MAX_NODES && out->pool_of_node[node] >= 0) {
			out->shard_pool[s] = (uint8_t)out->pool_of_node[node];
		} else {
			/* The node has no pool: the nearest pool serves it. */
			order_by_distance(out, ops, node < 0 ? 0 : node, -1, near);
			out->shard_pool[s] = near[0];
		}
	}
	return 0;
}
