/* SPDX-License-Identifier: MIT */
/*
 * What the cross-shard files of this directory share (private to them; the
 * prototypes the rest of the core calls are in xshard.h beside this file):
 * the layout of a ring slot as they use it, and the doorbell.
 *
 * A slot (queue/slot_ring.h) is one of:
 * - INLINE: a message whose payload fits (<= VZ__SLOT_INLINE_MAX bytes) and
 *   whose block is the sender's own: header and payload copied into the
 *   slot; the sender frees its block at once and the receiver copies the
 *   slot into a block of its own pool. No block crosses cores, none comes
 *   back.
 * - BLOCK: a pointer to a message block, for a longer payload (or a block
 *   that is not the sender's to free: a forwarded or foreign one, an I/O
 *   event). A block of another shard's pool is later returned to its owner
 *   (VZ__MSG_RETURNING), as before.
 * - RETURNS: up to VZ__SLOT_RETURNS pointers of the receiver's own blocks
 *   coming home, in one slot.
 */
#ifndef VZ_CORE_XSHARD_SLOT_H
#define VZ_CORE_XSHARD_SLOT_H

#include <stdint.h>

#include <veloz.h>

#include "core/shard.h"
#include "queue/slot_ring.h"
#include "util/membarrier.h"

#define DRAIN_PER_RING 256u /* slots per ring per turn, then the next ring */

enum vz__slot_kind {
	VZ__SLOT_INLINE = 1,
	VZ__SLOT_BLOCK = 2,
	VZ__SLOT_RETURNS = 3,
};

/* slot->word: kind (bits 0-7), message flags (8-15), payload length or
 * return count (16-31). */
static inline uint32_t vz__slot_word(unsigned kind, unsigned flags, unsigned n)
{
	return (uint32_t)kind | (uint32_t)flags << 8 | (uint32_t)n << 16;
}
#define VZ__SLOT_KIND(w)  ((w)&0xffu)
#define VZ__SLOT_FLAGS(w) (((w) >> 8) & 0xffu)
#define VZ__SLOT_N(w)	  ((w) >> 16)

/* The body of an INLINE slot. */
struct vz__slot_msg {
	vz_ref to;
	vz_ref from;
	uint32_t type;
	uint32_t corr;
	unsigned char data[VZ__SLOT_BODY - 24];
};
_Static_assert(sizeof(struct vz__slot_msg) == VZ__SLOT_BODY, "inline message fills the body");
#define VZ__SLOT_INLINE_MAX ((uint32_t)sizeof(((struct vz__slot_msg *)0)->data))
#define VZ__SLOT_RETURNS    (VZ__SLOT_BODY / sizeof(void *))

/*
 * The doorbell: bit src of dst->bell set = ring src -> dst may hold slots
 * dst has not looked at. Rung by the producer after publishing, taken
 * (exchanged to 0) by dst before it drains the rings named.
 */
static inline void vz__bell_ring(struct vz__shard *from, struct vz__shard *d)
{
	/* Release: orders the slot publishes before the bit for whoever
	 * takes it (pairs with the acquire exchange in vz__bell_take());
	 * each slot's seq is itself a release store, so this only matters
	 * for the hint, but relaxed would leave the symmetric sleep fence
	 * without its RMW. Under the symmetric sleep fence it is seq_cst:
	 * the sender's "publish, full fence" of the wake-up protocol; under
	 * membarrier the sleeper's membarrier() supplies that (see
	 * vz__wake()). An RMW in both: concurrent senders set their bits
	 * in one word. */
	if (d->sleep_fence == VZ__SLEEP_FENCE_MEMBARRIER)
		atomic_fetch_or_explicit(&d->bell[from->id / 64], (uint64_t)1 << (from->id % 64),
					 memory_order_release);
	else
		atomic_fetch_or_explicit(&d->bell[from->id / 64], (uint64_t)1 << (from->id % 64),
					 memory_order_seq_cst);
}

static inline uint64_t vz__bell_take(struct vz__shard *sh, unsigned w)
{
	/* Relaxed peek first so an idle turn does not write the shared
	 * line. Acquire: pairs with the producers' fetch_or in
	 * vz__bell_ring(); the bit is cleared before the ring is read, so a
	 * publish after our read rings it again. */
	if (!atomic_load_explicit(&sh->bell[w], memory_order_relaxed))
		return 0;
	return atomic_exchange_explicit(&sh->bell[w], 0, memory_order_acquire);
}

#endif
