// SPDX-License-Identifier: MIT
/*
 * Worker pools: completion delivery. Every accepted job owes its actor
 * exactly one VZ_MSG_POOL_DONE. A worker hands it to the submitting shard
 * over its completion ring to that shard (one per worker and shard, single
 * producer and single consumer: plain stores and loads, no
 * read-modify-write), and the shard's loop collects it (vz__pool_reap())
 * and delivers it as a local message. A completion that does not fit a
 * slot, finds its ring full, or comes from a set that is not attached to a
 * runtime's shards goes through the set's post function instead (a foreign
 * post into the shard's inbox); this file also decides which refusals of
 * that post are worth waiting out.
 *
 * Cost per job on the ring path (1-line completion, 24-byte result):
 *   worker: fills one slot line (one transfer: the shard last read it),
 *   release store of seq, a light barrier (a compiler barrier: the shard's
 *   sleep issues the heavy one, util/membarrier.h), one load of the
 *   shard's sleeping
 *   flag (a shared line, no transfer while the shard is awake); no RMW, no
 *   fence, no syscall unless the shard sleeps; the job's record rides back
 *   in the slot, so the worker does not touch the pool's free list;
 *   shard: one acquire load of seq (the line comes over), a copy into a
 *   local message, the record into its cache (plain), one store of head per
 *   ring per reap (a line the worker reads only when the ring looks full).
 * The foreign post it replaces cost the worker three contended RMWs (the
 * post gate, the shard's foreign message pool, the inbox tail exchange) and
 * about four line transfers, plus the shard's give-back of the block; and
 * the free-list enqueue one more RMW on the worker and one on the shard.
 */
#include "pool/internal.h"

#include <sched.h>
#include <string.h>

/* Retries of a completion the runtime refuses for a moment (see post_done). */
#define POST_RETRIES 100000u

/* Post a completion; count a refusal on w (NULL: nobody to count on).
 * On a worker (w != NULL) three refusals are worth waiting out, because
 * every accepted job owes exactly one completion and a worker may block:
 * VZ_ESTATE (workers start inside vz_runtime_start() just before the
 * runtime declares itself running, so a job queued by an actor's init can
 * finish inside that window), VZ_EAGAIN, and VZ_ENOMEM (the target shard's
 * message memory could not grow this time). Those are retried, yielding, a
 * bounded number of times, then counted as failures. VZ_ESTOPPED is final,
 * and so is every refusal off a worker (a canceller, or the stopping thread
 * of a runtime that never started, where waiting would only delay the
 * inevitable). */
void vz__pool_post_done(struct vz__pool_set *ps, struct worker *w, uint64_t owner, const void *buf,
			size_t len)
{
	int rc;

	for (unsigned i = 0;; i++) {
		rc = ps->post(ps->rt, (vz_ref){owner}, VZ_MSG_POOL_DONE, buf, len);
		if (!w || (rc != VZ_ESTATE && rc != VZ_EAGAIN && rc != VZ_ENOMEM) ||
		    i == POST_RETRIES)
			break;
		sched_yield();
	}
	if (rc < 0 && w)
		counter_add(&w->post_failures, 1);
}

/* Put one completion into ring r. False when it is full (the shard is
 * behind by a whole ring) or len does not fit a slot. Worker only. */
static bool ring_put(struct done_ring *r, uint64_t owner, uint32_t rec, const void *buf, size_t len,
		     struct done_slot **out)
{
	struct done_slot *s;

	if (len > DONE_MSG_MAX)
		return false;
	if (r->tail - r->head_cache > r->mask) {
		/* Acquire: pairs with the shard's release store of head in
		 * vz__pool_reap(): the slots it has consumed are copied out
		 * before we overwrite them. */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (r->tail - r->head_cache > r->mask)
			return false;
	}
	s = &r->slot[r->tail & r->mask];
	s->owner = owner;
	s->rec = rec;
	memcpy(s->msg, buf, len);
	/* Release: pairs with the shard's acquire load of seq in
	 * vz__pool_reap(); it reads owner, rec and msg (and the record's FREE
	 * state and fields) only after seeing this. */
	atomic_store_explicit(&s->seq, (uint32_t)(r->tail + 1), memory_order_release);
	r->tail++;
	*out = s;
	return true;
}

void vz__pool_deliver(struct vz__pool_set *ps, struct worker *w, unsigned shard, uint64_t owner,
		      struct pool *from, uint32_t idx, const void *buf, size_t len)
{
	struct done_slot *s;

	if (ps->wake) {
		/* Relaxed: the release store of the slot's seq publishes it. */
		atomic_store_explicit(&from->recs[idx].state,
				      REC_STATE(from->recs[idx].gen, REC_FREE),
				      memory_order_relaxed);
		if (ring_put(&w->done[shard], owner, DONE_REC(from->index, idx), buf, len, &s)) {
			/* The wake-up protocol with the shard's sleep
			 * (core/shard.c vz__shard_sleep(): store sleeping = 1,
			 * its sleep fence, re-check every source,
			 * vz__pool_has_done() among them, then block). We are
			 * one more sender of that protocol:
			 *   we:    store seq (ring_put(), release); light
			 *          barrier; load sleeping (wake(): vz__wake());
			 *   shard: store sleeping; its ONE barrier; load seq
			 *          (vz__pool_has_done(), relaxed).
			 * Under membarrier the shard's barrier is membarrier(),
			 * which runs a full barrier in this thread somewhere in
			 * its program: before our store of seq, so our load of
			 * sleeping, after it, reads 1 and we wake the shard; or
			 * after it, so the shard's re-check, after membarrier()
			 * returned, sees seq. Our light barrier is then a
			 * compiler barrier: it keeps the load after the store
			 * in the program, which is all the argument asks of
			 * this side. Under the symmetric fence the shard's
			 * barrier is a seq_cst fence and ours must be one too
			 * (vz__asym_light() is, then): of two seq_cst fences one
			 * comes first, and the side after it sees the other's
			 * store. Without any barrier our load of the flag could
			 * pass the store of seq (store-buffer reordering) and
			 * both sides miss each other. The set's mode is the
			 * runtime's (vz__pools_set_fence()), the one the shard
			 * uses. Named by seq, the word the shard's re-check
			 * reads. */
			vz__asym_light(ps->fence, &s->seq);
			ps->wake(ps->rt, shard);
			return;
		}
		/* Single writer; relaxed: vz__pool_has_done() only needs a
		 * value no larger than the truth. */
		counter_add(&w->done[shard].bypassed, 1);
	}
	/* Free before posting, so an actor that resubmits on seeing the
	 * completion finds the record available. */
	free_rec(from, idx);
	counter_add(&w->done_posted, 1);
	vz__pool_post_done(ps, w, owner, buf, len);
}

/* Record rec, handed back by a worker with a completion for shard sl:
 * into the shard's cache when it belongs to the shard's home pool and the
 * cache has room, else back to its pool's free list. */
static void take_back(struct vz__pool_set *ps, unsigned shard, struct shard_line *sl, uint32_t rec)
{
	unsigned pi = rec >> 24;

	if (pi == ps->plan.shard_pool[shard] && sl->ncache < sl->cache_max)
		sl->cache[sl->ncache++] = rec & 0xffffffu;
	else
		enqueue_sure(&ps->pools[pi]->freeq, rec & 0xffffffu);
}

/* Completions of shard sl's jobs that may still be in a ring: never less
 * than the truth (every count subtracted is one the shard has seen happen,
 * and a stale bypassed only makes the figure larger). */
static int64_t maybe_in_rings(const struct vz__pool_set *ps, const struct shard_line *sl,
			      struct done_ring *const *row)
{
	int64_t n = (int64_t)(counter_get(&sl->submitted) - counter_get(&sl->reaped) -
			      counter_get(&sl->cancels));

	for (unsigned k = 0; k < ps->nworkers_all && n > 0; k++)
		n -= (int64_t)counter_get(&row[k]->bypassed);
	return n;
}

unsigned vz__pool_reap(struct vz__pool_set *ps, unsigned shard, unsigned max)
{
	struct shard_line *sl;
	struct done_ring **row;
	unsigned n = 0;
	int rc;

	if (!ps || !ps->wake || shard >= ps->plan.nshards)
		return 0;
	sl = &ps->shards[shard];
	/* Every job this shard submitted has come back through a ring or was
	 * cancelled: nothing can be in a ring, and a shard that does not use
	 * the pool pays one load of its own line per turn. (Completions that
	 * bypassed the rings keep the difference above 0: then we scan.) */
	if (counter_get(&sl->submitted) == counter_get(&sl->reaped) + counter_get(&sl->cancels))
		return 0;
	row = &ps->done_of[(size_t)shard * ps->nworkers_all];
	for (unsigned k = 0; k < ps->nworkers_all && n < max; k++) {
		struct done_ring *r = row[k];
		/* Relaxed: we are the only writer of head. */
		uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed), h0 = h;

		while (n < max) {
			struct done_slot *s = &r->slot[h & r->mask];

			vz_pool_done d;

			/* Acquire: pairs with the worker's release store of
			 * seq in ring_put(); owner, rec and msg are its. */
			if (atomic_load_explicit(&s->seq, memory_order_acquire) !=
			    (uint32_t)(h + 1))
				break;
			memcpy(&d, s->msg, sizeof d);
			rc = ps->deliver(ps->rt, (vz_ref){s->owner}, VZ_MSG_POOL_DONE, s->msg,
					 sizeof d + d.result_len);
			/* Out of message memory: keep it for a later reap (the
			 * shard's turn comes back; exactly once either way). */
			if (rc == VZ_ENOMEM)
				break;
			if (rc < 0)
				counter_add(&sl->reap_failures, 1);
			if (s->rec != DONE_NO_REC)
				take_back(ps, shard, sl, s->rec);
			h++;
			n++;
		}
		if (h != h0) {
			/* Release: pairs with the worker's acquire load of
			 * head in ring_put(); our copies of these slots are
			 * done before it may overwrite them. */
			atomic_store_explicit(&r->head, h, memory_order_release);
			counter_add(&sl->reaped, h - h0);
		}
	}
	return n;
}

bool vz__pool_has_done(struct vz__pool_set *ps, unsigned shard)
{
	struct done_ring **row;

	if (!ps || !ps->wake || shard >= ps->plan.nshards)
		return false;
	row = &ps->done_of[(size_t)shard * ps->nworkers_all];
	/* No job of ours can come back through a ring: nothing to scan. */
	if (maybe_in_rings(ps, &ps->shards[shard], row) <= 0)
		return false;
	/* No barrier here. The caller is the shard's sleep re-check: it has
	 * stored its sleeping flag and issued its sleep fence (core/shard.c),
	 * the heavy side of the handshake of vz__pool_deliver(), whose light
	 * side each worker takes between its store of a slot's seq and its
	 * load of the flag. That one barrier orders the flag before these
	 * loads for the rings exactly as it does for the shard's other
	 * sources (util/membarrier.h, "One barrier per shard sleep"): every
	 * worker's seq stored before its barrier point is visible below, or
	 * that worker's load of the flag reads 1 and it wakes the shard. A
	 * second barrier here ordered nothing more and cost a membarrier()
	 * per sleep with jobs out. */
	for (unsigned k = 0; k < ps->nworkers_all; k++) {
		struct done_ring *r = row[k];
		uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

		/* Relaxed: only a hint here; vz__pool_reap() acquires. After
		 * the caller's sleep fence a relaxed load still sees a seq the
		 * worker stored before its own barrier (see above). */
		if (atomic_load_explicit(&r->slot[h & r->mask].seq, memory_order_relaxed) ==
		    (uint32_t)(h + 1))
			return true;
	}
	return false;
}
