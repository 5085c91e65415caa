// SPDX-License-Identifier: MIT
/*
 * Worker pools: the worker loop. A worker takes a job (steal.c), runs it
 * (or completes it with VZ_ECANCELED / VZ_ETIMEDOUT without running it),
 * frees its record and delivers its completion (complete.c); when there is
 * nothing to take it polls for a while, then sleeps on its pool's event
 * count. Per job in steady state: one RMW (the job-queue dequeue), no
 * fence, no syscall: the record's start is a plain store against a
 * canceller's asymmetric handshake (internal.h, struct job_rec); the
 * completion and the record go back over a ring (complete.c).
 */
#include "pool/internal.h"

#include <string.h>

#include "util/clock.h"

/* Decide a dequeued record's generation against vz__pool_cancel_as() (the
 * handshake and its invariant: internal.h, struct job_rec). True when the
 * job is ours to complete, false when its canceller won (it has posted the
 * completion; we only free the record). Worker or stopping thread, the
 * only holder of the record. */
static bool start_wins(struct vz__pool_set *ps, struct job_rec *r, uint32_t gen)
{
	uint64_t c;

	/* Relaxed: the barrier below orders it before our load of cancel;
	 * the canceller reads it after its heavy barrier. */
	atomic_store_explicit(&r->state, REC_STATE(gen, REC_RUNNING), memory_order_relaxed);
	/* The light side: pairs with vz__asym_heavy() in vz__pool_cancel_as()
	 * (named by state, the word the canceller loads after it). Without
	 * it our load of cancel could pass our store of state and both
	 * sides would take the job. */
	vz__asym_light(ps->fence, &r->state);
	/* Acquire: when it reads CX_CANCEL, the canceller's reads of owner
	 * and tag happen before we free the record (its CAS released them). */
	c = atomic_load_explicit(&r->cancel, memory_order_acquire);
	if (__builtin_expect(c >> 2 != gen, 1))
		return true; /* no request for this generation: ours */
	/* A request: decide by CAS (the canceller CASes REQUEST -> CANCEL).
	 * Acq_rel for the same reason as the load above. */
	while (c == CX(gen, CX_REQUEST))
		if (atomic_compare_exchange_weak_explicit(&r->cancel, &c, CX(gen, CX_RUN),
							  memory_order_acq_rel,
							  memory_order_acquire))
			return true;
	return c != CX(gen, CX_CANCEL); /* CX_RUN: the canceller withdrew */
}

/* Complete record idx of `from`, taken from its job queue, on worker w (or
 * on the stopping thread when w is NULL, which only cancels). */
void vz__pool_run_job(struct vz__pool_set *ps, struct worker *w, struct pool *from, uint32_t idx)
{
	struct job_rec *r = &from->recs[idx];
	unsigned char local[sizeof(vz_pool_done)];
	unsigned char *buf = w ? w->buf : local;
	vz_pool_done d;
	size_t rlen = 0;
	uint64_t owner;
	unsigned shard;

	/* The record's fields are ours: the dequeue's acquire pairs with the
	 * submitter's release (vz__mpmc_publish()). */
	if (!start_wins(ps, r, r->gen)) {
		/* Cancelled: the canceller posted its completion already. */
		free_rec(from, idx);
		return;
	}
	owner = atomic_load_explicit(&r->owner, memory_order_relaxed);
	shard = r->shard;
	d.job = make_id(from->index, idx, r->gen);
	d.tag = atomic_load_explicit(&r->tag, memory_order_relaxed);
	/* Relaxed: stopping is a state change, not a publication; a job that
	 * starts just before it is seen simply runs. */
	if (!w || atomic_load_explicit(&ps->stopping, memory_order_relaxed)) {
		d.status = VZ_ECANCELED;
		atomic_fetch_add_explicit(&from->canceled, 1, memory_order_relaxed);
	} else if (r->deadline_ns && vz__mono_ns() > r->deadline_ns) {
		d.status = VZ_ETIMEDOUT;
		counter_add(&w->timed_out, 1);
	} else {
		rlen = VZ_POOL_MAX_RESULT;
		d.status = r->fn(r->arg, r->payload, r->payload_len, buf + sizeof d, &rlen);
		if (rlen > VZ_POOL_MAX_RESULT) {
			d.status = VZ_ETOOBIG;
			rlen = 0;
		}
		counter_add(&w->executed, 1);
		if (from != w->pool)
			counter_add(&w->stolen, 1);
	}
	d.result_len = (uint32_t)rlen;
	memcpy(buf, &d, sizeof d);
	/* The record is freed before the completion can be seen (here or by
	 * the shard that collects it), so an actor that resubmits on seeing
	 * the completion finds the record available. */
	if (w) {
		/* The record goes back with the completion (complete.c). */
		vz__pool_deliver(ps, w, shard, owner, from, idx, buf, sizeof d + rlen);
	} else {
		free_rec(from, idx);
		vz__pool_post_done(ps, w, owner, buf, sizeof d + rlen);
	}
}

void *vz__pool_worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->pool;
	struct vz__pool_set *ps = p->set;
	bool shared = ps->plan.pool[p->index].shares_shard_cpus;
	struct pool *from;
	uint32_t idx;

	ps->ops.set_preferred(ps->ops.ctx, p->node);
	for (;;) {
		uint64_t until;
		uint32_t key;
		bool found = false, ordered;

		if (vz__pool_take(ps, w, &from, &idx)) {
			vz__pool_run_job(ps, w, from, idx);
			continue;
		}
		/* Acquire: pairs with the release store in vz__pools_stop();
		 * everything submitted before it is visible to the take()
		 * below, so leaving only after that take fails loses nothing. */
		if (atomic_load_explicit(&ps->exiting, memory_order_acquire)) {
			if (vz__pool_take(ps, w, &from, &idx)) {
				vz__pool_run_job(ps, w, from, idx);
				continue;
			}
			break;
		}
		/* Poll for a while before sleeping. On a CPU shared with a
		 * shard, yield instead of pausing so the shard keeps running. */
		until = vz__mono_ns() + ps->plan.spin_ns;
		for (unsigned i = 0; ps->plan.spin_ns > 0; i++) {
			if (vz__pool_take(ps, w, &from, &idx)) {
				found = true;
				break;
			}
			if (atomic_load_explicit(&ps->exiting, memory_order_relaxed))
				break;
			if (shared)
				sched_yield();
			else
				cpu_relax();
			if ((i & 15) == 15 && vz__mono_ns() > until)
				break;
		}
		if (found) {
			vz__pool_run_job(ps, w, from, idx);
			continue;
		}
		key = vz__ec_prepare(&p->ec, ps->fence, &ordered);
		/* Re-check after announcing (the pairing is explained in
		 * eventcount.h): our own queue and the exit flag are the
		 * sources whose wake-up we must not miss. */
		if (vz__mpmc_dequeue(&p->jobs, &idx)) {
			vz__ec_cancel(&p->ec, key);
			vz__pool_run_job(ps, w, p, idx);
			continue;
		}
		if (atomic_load_explicit(&ps->exiting, memory_order_acquire)) {
			vz__ec_cancel(&p->ec, key);
			continue;
		}
		if (!ordered) {
			/* membarrier() refused: a notifier's publish may not be
			 * visible to the re-check above, nor our announcement to
			 * it. Poll instead of sleeping, as a shard does. */
			vz__ec_cancel(&p->ec, key);
			sched_yield();
			continue;
		}
		counter_add(&w->sleeps, 1);
		vz__ec_wait(&p->ec, key);
	}
	return NULL;
}
