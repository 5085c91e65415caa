// SPDX-License-Identifier: MIT
/*
 * Incoming cross-shard traffic: the doorbell tells a shard which rings
 * have work; each is drained in chunks, messages delivered to their actors
 * and blocks of our own pools that came home freed. Also the sleep
 * protocol's re-check of every incoming source (vz__has_incoming()).
 */
#include "core/core.h"
#include "core/xshard/xshard.h"

static void receive_one(struct vz__shard *sh, unsigned src, struct vz_msg *m)
{
	if ((uintptr_t)m & VZ__RING_RETURN) {
		m = (struct vz_msg *)((uintptr_t)m & ~VZ__RING_RETURN);
		vz__pool_free(sh, m, m->cls);
		return;
	}
	if (m->flags & VZ__MSG_RETURNING) {
		/* one of ours, back home */
		m->flags &= (uint8_t)~VZ__MSG_RETURNING;
		vz__pool_free(sh, m, m->cls);
		return;
	}
	if (!(m->flags & VZ__MSG_UNCOUNTED)) {
		VZ__STAT_ADD(sh, received_remote, 1);
		vz__obs_add(&sh->obs.o->received_from[src], 1);
	}
	vz__deliver_local(sh, m);
}

/* Drain one ring up to `limit` items. Returns the number taken; sets the
 * source's pending bit when it stopped with items left. */
static unsigned drain_ring(struct vz__shard *sh, unsigned src, unsigned limit)
{
	struct vz__spsc *ring = sh->in[src];
	unsigned total = 0;

	while (total < limit) {
		void *items[DRAIN_CHUNK];
		uint32_t n;

		/* The next slot's line is known before the producer's tail is:
		 * start fetching it now, so the two misses overlap instead of
		 * following each other (head is our own index: relaxed). */
		__builtin_prefetch(
		    &ring->slots[atomic_load_explicit(&ring->head, memory_order_relaxed) &
				 ring->mask]);
		n = vz__spsc_pop_batch(ring, items, DRAIN_CHUNK);
		for (uint32_t i = 0; i < n; i++) {
			/* likewise the next message while this one is handled */
			if (i + 1 < n)
				__builtin_prefetch(
				    (void *)((uintptr_t)items[i + 1] & ~VZ__RING_RETURN));
			receive_one(sh, src, items[i]);
		}
		total += n;
		if (n < DRAIN_CHUNK)
			return total;
	}
	sh->pending_rings[src / 64] |= (uint64_t)1 << (src % 64);
	return total;
}

/*
 * Drain incoming rings whose doorbell rang (or that were left non-empty last
 * time), up to DRAIN_PER_RING each; `all` drains every ring completely
 * (stop). An idle turn reads one word per 64 sources: no O(N) scan.
 */
unsigned vz__drain_rings(struct vz__shard *sh, bool all)
{
	unsigned nwords = (sh->rt->nshards + 63) / 64;
	unsigned total = 0;

	for (unsigned w = 0; w < nwords; w++) {
		uint64_t bits = sh->pending_rings[w];

		/* Relaxed peek first so an idle turn does not write the
		 * shared line. */
		if (atomic_load_explicit(&sh->bell[w], memory_order_relaxed))
			/* Acquire: pairs with the producers' fetch_or
			 * (seq_cst, so release) after their ring publish;
			 * the bit is cleared before the ring is read, so a
			 * publish after our read rings it again. */
			bits |= atomic_exchange_explicit(&sh->bell[w], 0, memory_order_acquire);
		if (all)
			bits = ~(uint64_t)0;
		sh->pending_rings[w] = 0;
		while (bits) {
			unsigned src = w * 64 + (unsigned)__builtin_ctzll(bits);

			bits &= bits - 1;
			if (src >= sh->rt->nshards || src == sh->id)
				continue;
			total += drain_ring(sh, src, all ? UINT32_MAX : DRAIN_PER_RING);
		}
	}
	return total;
}

/* Anything waiting for this shard? Used by the sleep protocol's re-check
 * after its full barrier (seq_cst fence or membarrier()): each load here is
 * the reader's half of a publish + barrier pairing (see vz__wake()). */
bool vz__has_incoming(struct vz__shard *sh)
{
	unsigned nwords = (sh->rt->nshards + 63) / 64;

	for (unsigned w = 0; w < nwords; w++)
		if (sh->pending_rings[w] ||
		    atomic_load_explicit(&sh->bell[w], memory_order_seq_cst))
			return true;
	return !vz__mpsc_empty(&sh->inbox);
}
