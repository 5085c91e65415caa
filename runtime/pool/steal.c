// SPDX-License-Identifier: MIT
/*
 * Worker pools: where a worker finds its next job. Its own pool's queue
 * first, then the other pools nearest node first, but only from a pool
 * whose backlog exceeds its worker count (NUMA near-before-far stealing).
 */
#include "pool/internal.h"

/* Find one job for w: its own pool first, then the other pools in the
 * precomputed order (nearest node first), but only from a pool whose
 * backlog exceeds its own worker count, so work stays on its node unless
 * that node is behind. */
bool vz__pool_take(struct vz__pool_set *ps, struct worker *w, struct pool **from, uint32_t *idx)
{
	struct pool *p = w->pool;
	const struct vz__pool_plan_pool *pp = &ps->plan.pool[p->index];

	if (vz__mpmc_dequeue(&p->jobs, idx)) {
		*from = p;
		return true;
	}
	for (unsigned i = 0; i < pp->nsteal; i++) {
		struct pool *q = ps->pools[pp->steal[i]];

		if (vz__mpmc_approx_len(&q->jobs) > q->nworkers &&
		    vz__mpmc_dequeue(&q->jobs, idx)) {
			*from = q;
			return true;
		}
	}
	return false;
}
