// SPDX-License-Identifier: MIT
/*
 * Worker pools: counters (vz_pool_stats), the nodes that have pools, and
 * the plan a set was built from. Every counter has one writer; readers
 * use relaxed loads.
 */
#include "pool/internal.h"

#include <string.h>

/* ---- stats ------------------------------------------------------------------ */

int vz__pool_stats_of(const struct vz__pool_set *ps, unsigned node, vz_pool_stats *out)
{
	const struct pool *p;
	int pi;

	if (!ps || !out)
		return VZ_EINVAL;
	if (node >= VZ_MAX_NODES || (pi = ps->plan.pool_of_node[node]) < 0)
		return VZ_ENOENT;
	p = ps->pools[pi];
	memset(out, 0, sizeof *out);
	out->node = node;
	out->workers = p->nworkers;
	out->queue_capacity = ps->plan.queue_capacity;
	out->queued = (uint32_t)vz__mpmc_approx_len((struct vz__mpmc *)&p->jobs);
	for (unsigned s = 0; s < ps->plan.nshards; s++) {
		const struct shard_line *sl = &ps->shards[s];

		if (ps->plan.shard_pool[s] != (unsigned)pi)
			continue;
		out->submitted += counter_get(&sl->submitted);
		out->spilled += counter_get(&sl->spilled);
		out->rejected += counter_get(&sl->rejected);
		out->submit_wakeups += counter_get(&sl->wakeups);
		out->post_failures += counter_get(&sl->reap_failures);
	}
	for (unsigned i = 0; i < p->nworkers; i++) {
		const struct worker *w = &p->workers[i];

		out->executed += counter_get(&w->executed);
		out->stolen += counter_get(&w->stolen);
		out->timed_out += counter_get(&w->timed_out);
		out->worker_sleeps += counter_get(&w->sleeps);
		out->post_failures += counter_get(&w->post_failures);
	}
	out->canceled = counter_get(&p->canceled);
	return 0;
}

int vz__pool_nodes_of(const struct vz__pool_set *ps, unsigned *nodes, unsigned max)
{
	if (!ps || (!nodes && max > 0))
		return VZ_EINVAL;
	for (unsigned i = 0; i < ps->plan.npools && i < max; i++)
		nodes[i] = (unsigned)ps->plan.pool[i].node;
	return (int)ps->plan.npools;
}

const struct vz__pool_plan *vz__pools_get_plan(const struct vz__pool_set *ps)
{
	return ps ? &ps->plan : NULL;
}
