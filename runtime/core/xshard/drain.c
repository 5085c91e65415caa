// SPDX-License-Identifier: MIT
/*
 * Incoming cross-shard traffic: the doorbell tells a shard which rings
 * have work; each is drained in chunks, messages delivered to their actors
 * and blocks of our own pools that came home freed. Also the sleep
 * protocol's re-check of every incoming source (vz__has_incoming()).
 *
 * Hot rings. A ring we have taken from since this shard last blocked is
 * polled every turn (its next slot's seq: a load that hits in our cache
 * until the producer writes the slot), so a message on it is seen without
 * the doorbell. Under the membarrier sleep fence we also tell its producer
 * (ring->watching = 1), and the producer then skips the doorbell's RMW
 * altogether (vz__xshard_notify() in outbox.c): the hot path has no locked
 * instruction and no line but the slot's crosses. Invariant: while a
 * ring's watching is 1, its consumer polls it every turn and re-checks it
 * before it blocks. Watching is cleared only on the way to sleep, before
 * the sleep protocol's barrier (vz__rings_unwatch(), called by
 * vz__shard_sleep() before it announces itself), and the re-check after
 * that barrier peeks every hot ring (vz__has_incoming()). Pairing, the
 * same store-buffer argument as the sleeping flag's (see vz__wake()): the
 * producer publishes the slot (release store of seq), a compiler barrier,
 * then loads watching (relaxed) and, when it read 0, rings; the consumer
 * stores watching = 0 and sleeping = 1, calls membarrier(), re-checks.
 * membarrier() puts a full barrier in the producer's program: before its
 * publish, and its load of watching (after the barrier) reads our 0, so it
 * rings and wakes; after it, and our re-check sees the slot. A ring's
 * producer that read a stale 1 while we were not going to sleep loses
 * nothing: the ring is still hot and polled. Rejected: clearing watching
 * at other times (a quiet ring, to bound the polling) would need a full
 * barrier on the producer's side per publish, the cost this removes; so
 * the hot set only shrinks when the shard blocks (vz__rings_cool()).
 */
#include <string.h>

#include "core/core.h"
#include "core/direct.h"
#include "core/xshard/slot.h"

/*
 * Per-message cost on this side (bench/README.md sums both sides): the
 * doorbell word (a load that misses when a producer rang it, then the
 * exchange, an RMW) once per ring per turn, and the slot line (one miss,
 * which brings an inline message whole). A message whose target has
 * nothing queued (core/direct.h) is handled right here from the slot: no
 * copy, no mailbox, no run queue. Otherwise it is copied into a block of
 * our own pool, which touches only memory of this shard. Nothing is
 * written back to the producer but `head`, once per drained batch, on the
 * consumer's own line (the producer reads it only when it finds the ring
 * full).
 */

/*
 * The shard whose slot is being dispatched directly on this thread, or
 * NULL. The slot of an inline message dispatched directly is still
 * unconsumed while its receive runs (the view reads it); a drain of the
 * same shard re-entered from inside that receive (vz_shard_poll() of the
 * shard by its own actor) would take the slot a second time, and release
 * it to the producer under the view; and it would run later messages of
 * the ring while an earlier one is being handled. Such a drain does
 * nothing instead: the rings wait for the outer drain, which goes on once
 * the receive returns. Thread-local,
 * not a shard field: only the draining thread reads or writes it. Saved
 * and restored, as a thread driving several embedded shards may nest
 * their turns.
 */
static __attribute__((tls_model("initial-exec"))) _Thread_local struct vz__shard *dispatching;

static inline void count_received(struct vz__shard *sh, unsigned src, const struct vz_msg *m)
{
	if (!(m->flags & VZ__MSG_UNCOUNTED)) {
		VZ__STAT_ADD(sh, received_remote, 1);
		vz__obs_add(&sh->obs.o->received_from[src], 1);
	}
}

/* Hand m (a block, or a view of a slot) to a now (core/direct.h): one
 * receive call before the caller moves past the slot. Returns 1. */
static unsigned run_direct(struct vz__shard *sh, unsigned src, struct vz_actor *a, struct vz_msg *m)
{
	struct vz__shard *outer = dispatching;
	unsigned done;

	count_received(sh, src, m);
	dispatching = sh;
	done = vz__run_direct(sh, a, m);
	dispatching = outer;
	return done;
}

/* A message sent by pointer, or one of our blocks coming home. */
static void receive_block(struct vz__shard *sh, unsigned src, struct vz_msg *m)
{
	if (m->flags & VZ__MSG_RETURNING) {
		/* one of ours, back home */
		m->flags &= (uint8_t)~VZ__MSG_RETURNING;
		vz__pool_free(sh, m, m->cls);
		return;
	}
	count_received(sh, src, m);
	vz__deliver_local(sh, m);
}

/* The payload of an inline slot, where a view reads it: VZ_MSG_ALIGN
 * aligned as message.h promises (slots are 64-byte aligned). */
_Static_assert((offsetof(struct vz__slot, body) + offsetof(struct vz__slot_msg, data)) %
		       VZ_MSG_ALIGN ==
		   0,
	       "an inline payload in a slot is VZ_MSG_ALIGN-aligned");

/*
 * Take what slot s (ring's next) holds and move past it (consume); *direct
 * is what this drain may still dispatch directly (core/direct.h). Returns
 * the receive calls made here (0 or 1), or -1 (the slot left in place, not
 * consumed, to be taken again later) only when an inline message to be
 * queued finds our pool unable to grow: nothing is lost and the ring's
 * order is kept.
 *
 * Before a direct receive the slots consumed so far go back to the
 * producer (vz__slot_release(); else they would stay its until the end of
 * the batch, however long the receive takes, where the mailbox path hands
 * them back before any receive runs). A block's slot goes back with them:
 * the pointer is all the receive needs. An inline message's slot is the
 * one thing held during its receive, which reads it through the view; it
 * is consumed only after the receive has returned.
 */
static int receive_slot(struct vz__shard *sh, unsigned src, struct vz__slot_ring *ring,
			const struct vz__slot *s, unsigned *direct)
{
	uint32_t w = s->word; /* after the acquire of seq in vz__slot_peek() */
	struct vz_actor *a;
	int ran = 0;

	switch (VZ__SLOT_KIND(w)) {
	case VZ__SLOT_INLINE: {
		const struct vz__slot_msg *b = (const struct vz__slot_msg *)s->body;
		uint32_t len = VZ__SLOT_N(w);
		uint8_t flags = (uint8_t)VZ__SLOT_FLAGS(w);
		struct vz_msg *m;

		/* A plain user message (a bounded-mailbox count is all it may
		 * carry) for an actor with nothing queued: its receive reads
		 * the slot through a view, valid until the receive returns. */
		if (*direct && !(flags & (uint8_t)~VZ__MSG_INFLIGHT) &&
		    (a = vz__direct_target(sh, b->to)) != NULL) {
			struct vz_msg v;

			v.view_data = b->data;
			v.to = b->to;
			v.from = b->from;
			v.type = b->type;
			v.corr = b->corr;
			v.len = len;
			v.flags = (uint8_t)(VZ__MSG_VIEW | flags);
			(*direct)--;
			vz__slot_release(ring);
			ran = (int)run_direct(sh, src, a, &v);
			break;
		}
		m = vz__msg_alloc(sh, len);
		if (!m)
			return -1;
		m->to = b->to;
		m->from = b->from;
		m->type = b->type;
		m->corr = b->corr;
		m->len = len;
		m->flags = flags;
		memcpy(m->data, b->data, len);
		count_received(sh, src, m);
		vz__deliver_local(sh, m);
		break;
	}
	case VZ__SLOT_BLOCK: {
		struct vz_msg *m;

		memcpy(&m, s->body, sizeof m);
		/* The block is a message as the mailbox would hold it:
		 * dispatch() does everything the mailbox path does (a reply's
		 * matching, release or hand-on). Not a runtime message (the
		 * urgent lane and the lifecycle rules), nor one of our blocks
		 * coming home. */
		if (*direct && !(m->flags & (VZ__MSG_SYS | VZ__MSG_RETURNING)) &&
		    (a = vz__direct_target(sh, m->to)) != NULL) {
			(*direct)--;
			vz__slot_consume(ring);
			vz__slot_release(ring);
			return (int)run_direct(sh, src, a, m);
		}
		receive_block(sh, src, m);
		break;
	}
	default: { /* VZ__SLOT_RETURNS */
		void *blocks[VZ__SLOT_RETURNS];
		uint32_t n = VZ__SLOT_N(w);

		memcpy(blocks, s->body, n * sizeof blocks[0]);
		for (uint32_t i = 0; i < n; i++)
			vz__pool_free(sh, blocks[i], ((struct vz_msg *)blocks[i])->cls);
		break;
	}
	}
	vz__slot_consume(ring);
	return ran;
}

/* We took from ring src: poll it every turn from now on and, under the
 * membarrier sleep fence, tell its producer it may skip the doorbell (see
 * the comment at the top). */
static void watch(struct vz__shard *sh, unsigned src, struct vz__slot_ring *ring)
{
	uint64_t bit = (uint64_t)1 << (src % 64);

	/* The simulation (runtime/sim) decides which rings a turn may
	 * drain through the doorbell and pending bits (it holds rings back
	 * to reorder shards): no ring is hot there, every publish rings. */
	if (sh->sim)
		return;
	sh->hot_rings[src / 64] |= bit;
	if ((sh->watched_rings[src / 64] & bit) || sh->sleep_fence != VZ__SLEEP_FENCE_MEMBARRIER)
		return;
	sh->watched_rings[src / 64] |= bit;
	/* Relaxed: a hint. A producer that reads 1 only skips the doorbell,
	 * which is safe because we poll the ring from now on (the hot bit
	 * above, set by this thread, which is the one polling); nothing it
	 * reads through this flag needs ordering. */
	atomic_store_explicit(&ring->watching, 1, memory_order_relaxed);
}

void vz__rings_unwatch(struct vz__shard *sh)
{
	for (unsigned w = 0; w < (sh->rt->nshards + 63) / 64; w++) {
		uint64_t bits = sh->watched_rings[w];

		sh->watched_rings[w] = 0;
		while (bits) {
			unsigned src = w * 64 + (unsigned)__builtin_ctzll(bits);

			bits &= bits - 1;
			/* Relaxed: ordered before the re-check by the sleep
			 * protocol's barrier that follows (membarrier(); the
			 * comment at the top). */
			atomic_store_explicit(&sh->in[src]->watching, 0, memory_order_relaxed);
		}
	}
}

void vz__rings_cool(struct vz__shard *sh)
{
	memset(sh->hot_rings, 0, sizeof sh->hot_rings);
}

/* Drain one ring up to `limit` slots, with *direct direct dispatches left
 * for this drain. Returns the number of messages and returned blocks
 * taken, plus the receive calls made directly (a message taken and
 * handled counts twice, as when the run queue handles it in the same
 * turn); sets the source's pending bit when it stopped with slots left. */
static unsigned drain_ring(struct vz__shard *sh, unsigned src, unsigned limit, unsigned *direct)
{
	struct vz__slot_ring *ring = sh->in[src];
	unsigned total = 0, n = 0;
	struct vz__slot *s;

	while ((s = vz__slot_peek(ring))) {
		uint32_t w = s->word;
		int ran;

		if (n == 0)
			watch(sh, src, ring);

		if (n == limit || (ran = receive_slot(sh, src, ring, s, direct)) < 0) {
			sh->pending_rings[src / 64] |= (uint64_t)1 << (src % 64);
			break;
		}
		total += (VZ__SLOT_KIND(w) == VZ__SLOT_RETURNS ? VZ__SLOT_N(w) : 1) + (unsigned)ran;
		n++;
	}
	/* One store per batch hands the slots back (the producer reads it
	 * only when it finds the ring full). */
	vz__slot_release(ring);
	return total;
}

/*
 * Drain incoming rings whose doorbell rang (or that were left non-empty last
 * time) and the hot rings, up to DRAIN_PER_RING each; `all` drains every
 * ring completely (stop). An idle turn reads one word per 64 sources and
 * the next slot of each hot ring, all in our own cache while nothing
 * arrives: no O(N) scan over cold rings.
 */
unsigned vz__drain_rings(struct vz__shard *sh, bool all)
{
	unsigned nwords = (sh->rt->nshards + 63) / 64;
	unsigned total = 0;
	/* Direct dispatches this drain may make (core/direct.h): at most
	 * `batch`, none while stopping (`all`: every actor is gone). */
	unsigned direct = all ? 0 : sh->rt->cfg.batch;

	/* Re-entered from inside a direct receive of this shard: nothing
	 * (see `dispatching`); the doorbells stay rung, the slots in place. */
	if (__builtin_expect(dispatching == sh, 0))
		return 0;
	for (unsigned w = 0; w < nwords; w++) {
		uint64_t bits = sh->pending_rings[w];

		bits |= vz__bell_take(sh, w) | sh->hot_rings[w];
		if (all)
			bits = ~(uint64_t)0;
		sh->pending_rings[w] = 0;
		while (bits) {
			unsigned src = w * 64 + (unsigned)__builtin_ctzll(bits);

			bits &= bits - 1;
			if (src >= sh->rt->nshards || src == sh->id)
				continue;
			total += drain_ring(sh, src, all ? UINT32_MAX : DRAIN_PER_RING, &direct);
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

	for (unsigned w = 0; w < nwords; w++) {
		uint64_t hot = sh->hot_rings[w];

		if (sh->pending_rings[w] ||
		    atomic_load_explicit(&sh->bell[w], memory_order_seq_cst))
			return true;
		/* Rings whose producer may have skipped the doorbell (the
		 * comment at the top): their next slot. */
		while (hot) {
			unsigned src = w * 64 + (unsigned)__builtin_ctzll(hot);

			hot &= hot - 1;
			if (vz__slot_peek(sh->in[src]))
				return true;
		}
	}
	return !vz__mpsc_empty(&sh->inbox);
}
