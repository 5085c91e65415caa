// SPDX-License-Identifier: MIT
/*
 * Worker pools: the submit and cancel paths, run on the submitting shard's
 * thread. Lock-free; a system call only when a worker of the chosen pool
 * sleeps (eventcount.h).
 *
 * Cost per submission in steady state: one RMW (the job-queue enqueue's
 * CAS), no fence (the stop and wake-up handshakes take a light barrier
 * here, the heavy one on their rare side: util/membarrier.h), the record
 * popped from
 * the shard's own cache (plain), and its two lines (header and payload)
 * fetched from the worker that last used them.
 */
#include "pool/internal.h"

#include <string.h>

/* ---- submit and cancel ------------------------------------------------------ */

int vz__pool_submit_as(struct vz__pool_set *ps, unsigned shard, vz_ref owner, const vz_job *job,
		       vz_job_id *out)
{
	struct shard_line *sl;
	struct pool *home, *p;
	struct job_rec *r;
	uint32_t idx, gen;

	if (!ps || !job || !job->fn || (job->payload_len > 0 && !job->payload))
		return VZ_EINVAL;
	if (job->payload_len > VZ_POOL_MAX_PAYLOAD)
		return VZ_ETOOBIG;
	if (shard >= ps->plan.nshards)
		return VZ_ENOSHARD;
	if (ps->plan.npools == 0)
		return VZ_ENOSYS;
	sl = &ps->shards[shard];

	/* Dekker with vz__pools_stop(): we store busy, barrier, read
	 * stopping; the stopper stores stopping, barrier, reads busy. At
	 * least one sees the other, so either we refuse or the stopper waits
	 * for us. Relaxed store + the light barrier: pairs with the heavy
	 * barrier in vz__pools_stop() (util/membarrier.h; a seq_cst fence on
	 * each side under the symmetric fence). */
	atomic_store_explicit(&sl->busy, 1, memory_order_relaxed);
	vz__asym_light(ps->fence, &sl->busy); /* the word the stopper reads */
	if (atomic_load_explicit(&ps->stopping, memory_order_relaxed)) {
		atomic_store_explicit(&sl->busy, 0, memory_order_release);
		return VZ_ESTOPPED;
	}

	home = p = ps->pools[ps->plan.shard_pool[shard]];
	/* A record the rings handed back to this shard first (no RMW), else
	 * one from the pool's free list. */
	if (sl->ncache > 0) {
		idx = sl->cache[--sl->ncache];
	} else if (!vz__mpmc_dequeue(&p->freeq, &idx)) {
		const struct vz__pool_plan_pool *pp = &ps->plan.pool[home->index];

		p = NULL;
		if (ps->plan.overload == VZ_POOL_SPILL) {
			for (unsigned i = 0; i < pp->nsteal && !p; i++) {
				struct pool *q = ps->pools[pp->steal[i]];

				if (vz__mpmc_dequeue(&q->freeq, &idx))
					p = q;
			}
		}
		if (!p) {
			/* Release: pairs with the acquire in vz__pools_stop(). */
			atomic_store_explicit(&sl->busy, 0, memory_order_release);
			counter_add(&sl->rejected, 1);
			return VZ_EFULL;
		}
	}

	r = &p->recs[idx];
	gen = r->gen + 1;
	if (gen == 0)
		gen = 1; /* ids are never 0 */
	r->gen = gen;
	r->fn = job->fn;
	r->arg = job->arg;
	r->deadline_ns = job->deadline_ns;
	r->payload_len = (uint16_t)job->payload_len;
	r->shard = (uint16_t)shard;
	if (job->payload_len)
		memcpy(r->payload, job->payload, job->payload_len);
	/* Release: a canceller of an older generation that reads these also
	 * sees that generation's end (internal.h, struct job_rec); a plain
	 * store on x86. The release store of state below publishes them to
	 * cancellers of this generation. */
	atomic_store_explicit(&r->owner, owner.id, memory_order_release);
	atomic_store_explicit(&r->tag, job->tag, memory_order_release);
	/* Release: pairs with the acquire load of state in
	 * vz__pool_cancel_as(), which then reads owner and tag. */
	atomic_store_explicit(&r->state, REC_STATE(gen, REC_QUEUED), memory_order_release);
	enqueue_sure(&p->jobs, idx);
	/* Release: our enqueue happens before the stopper's wait for busy ==
	 * 0 ends (its acquire load), so workers drain it. */
	atomic_store_explicit(&sl->busy, 0, memory_order_release);

	if (vz__ec_notify(&p->ec, ps->fence))
		counter_add(&sl->wakeups, 1);
	counter_add(&sl->submitted, 1);
	if (p != home)
		counter_add(&sl->spilled, 1);
	if (out)
		*out = make_id(p->index, idx, gen);
	return 0;
}

int vz__pool_cancel_as(struct vz__pool_set *ps, unsigned shard, vz_ref owner, vz_job_id id)
{
	unsigned pi = (unsigned)(id.id >> 56);
	uint32_t slot = (uint32_t)(id.id >> 32) & 0xffffffu;
	uint32_t gen = (uint32_t)id.id;
	struct job_rec *r;
	struct pool *p;
	vz_pool_done d;
	uint64_t st, tag, c;
	bool ordered;

	if (!ps || id.id == 0)
		return VZ_EINVAL;
	if (shard >= ps->plan.nshards)
		return VZ_ENOSHARD;
	if (pi >= ps->plan.npools || slot >= ps->plan.queue_capacity || gen == 0)
		return VZ_ENOENT;
	p = ps->pools[pi];
	r = &p->recs[slot];
	/* Acquire: pairs with the release store of QUEUED in submit, making
	 * that generation's owner and tag visible. */
	st = atomic_load_explicit(&r->state, memory_order_acquire);
	if (st != REC_STATE(gen, REC_QUEUED))
		return VZ_ENOENT;
	/* Acquire: see job_rec.owner (a later generation's value brings that
	 * generation's start with it, and the check of state below fails). */
	if (atomic_load_explicit(&r->owner, memory_order_acquire) != owner.id)
		return VZ_ENOENT;
	tag = atomic_load_explicit(&r->tag, memory_order_acquire);
	/* The cancellation handshake (internal.h, struct job_rec): announce
	 * the request for this generation. A CAS, not a store: if the record
	 * has moved on meanwhile, a canceller of a later generation may be
	 * using the word, and we must not overwrite its decision (the CAS
	 * then fails and we give up). Relaxed: the heavy barrier orders it
	 * before our load of state. */
	c = atomic_load_explicit(&r->cancel, memory_order_relaxed);
	if (c >> 2 == gen)
		return VZ_ENOENT; /* decided already: a second cancel */
	if (!atomic_compare_exchange_strong_explicit(&r->cancel, &c, CX(gen, CX_REQUEST),
						     memory_order_relaxed, memory_order_relaxed))
		return VZ_ENOENT;
	/* The heavy side: pairs with the worker's light barrier in
	 * start_wins() (worker.c); named by cancel, the word it loads. */
	ordered = vz__asym_heavy(ps->fence, &r->cancel);
	/* Acquire: as the first load. Still QUEUED(gen): the worker has not
	 * stored RUNNING, or has and will see our request (it then decides
	 * by CAS against ours). Anything else: it started (it may have seen
	 * the request too), or the record moved on. */
	st = atomic_load_explicit(&r->state, memory_order_acquire);
	c = CX(gen, CX_REQUEST);
	if (st != REC_STATE(gen, REC_QUEUED) || !ordered) {
		/* Give up, and withdraw, so a worker that saw the request
		 * runs the job (its CAS finds CX_RUN, or wins first). Relaxed:
		 * hands nothing over. */
		atomic_compare_exchange_strong_explicit(&r->cancel, &c, CX(gen, CX_RUN),
							memory_order_relaxed, memory_order_relaxed);
		return VZ_ENOENT;
	}
	/* Decide against the worker's REQUEST -> RUN. Release: our reads of
	 * owner and tag above happen before a worker that reads CX_CANCEL
	 * frees the record for reuse. */
	if (!atomic_compare_exchange_strong_explicit(&r->cancel, &c, CX(gen, CX_CANCEL),
						     memory_order_acq_rel, memory_order_relaxed))
		return VZ_ENOENT;
	atomic_fetch_add_explicit(&p->canceled, 1, memory_order_relaxed);
	counter_add(&ps->shards[shard].cancels, 1);
	d.job = id;
	d.tag = tag;
	d.status = VZ_ECANCELED;
	d.result_len = 0;
	/* The record stays in the job queue; the worker that dequeues it sees
	 * CANCELED and only frees it. */
	vz__pool_post_done(ps, NULL, owner.id, &d, sizeof d);
	return 0;
}
