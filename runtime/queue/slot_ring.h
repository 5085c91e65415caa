/* SPDX-License-Identifier: MIT */
/*
 * Bounded single-producer single-consumer ring of 64-byte slots in which
 * the slot is the item: the producer writes what it sends into the slot
 * itself (core/xshard/ puts a small message's header and payload there)
 * and a per-slot sequence number says when the slot is ready. One ring per
 * ordered pair of shards; exactly one thread produces and exactly one
 * consumes.
 *
 * Why not the pointer ring (spsc_ring.h): there a message costs the
 * consumer three serialised cache misses (the producer's tail, the slot,
 * then the block the slot points to) and the block later travels home.
 * Here the consumer polls the slot it will read next; the miss that tells
 * it the slot is ready brings the message with it, and no index of the
 * producer is ever read.
 *
 * Invariant (indices are free-running uint32_t, slot of index i is
 * slots[i & mask], capacity a power of two <= 2^31):
 * - the slot of index i is ready exactly when its seq equals i + 1. A slot
 *   written for index i - capacity holds i + 1 - capacity, and one never
 *   written holds 0 (for i < capacity, i + 1 is never 0), so neither can be
 *   taken for i + 1.
 * - the producer writes the slot of index i only when i - head < capacity
 *   for the consumer's published head, i.e. the consumer has finished with
 *   the slot's previous use (index i - capacity).
 * - the consumer reads the slot of index i only after reading seq == i + 1.
 *
 * Pairings (each written again at its atomic):
 * 1. seq: the producer's release store of i + 1 after writing the slot's
 *    body, with the consumer's acquire load that finds i + 1 before
 *    reading the body. Relaxed rejected: the consumer could read a body
 *    not yet written. A shared tail index (spsc_ring.h's scheme) rejected:
 *    it is one more line that ping-pongs per batch and one more serialised
 *    miss before the consumer may read the slot.
 * 2. head: the consumer's release store after it has read every slot up to
 *    head, with the producer's acquire load when its cached view says the
 *    ring is full. Relaxed rejected: the producer could overwrite a slot
 *    the consumer is still reading. Consumer clearing each slot (a
 *    FastForward-style empty mark) rejected: the consumer would write
 *    every slot line, so each would travel back to the producer dirty
 *    instead of being invalidated once; head is stored once per batch on
 *    the consumer's own line and read by the producer only when full.
 * 3. watching (a hint; see core/xshard/ for the protocol that uses it):
 *    written by the consumer rarely, read relaxed by the producer; on a
 *    line of its own so that the consumer's head stores do not evict it
 *    from the producer's cache.
 *
 * Layout: producer line (its index and cached head; no other thread reads
 * it), consumer line (published head, its private cursor), hint line,
 * read-only line (slots, mask).
 */
#ifndef VZ_SLOT_RING_H
#define VZ_SLOT_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VZ__SLOT_BYTES	      64
#define VZ__SLOT_BODY	      (VZ__SLOT_BYTES - 8)
#define VZ__SLOT_MAX_CAPACITY (UINT32_C(1) << 31)

struct vz__slot {
	_Atomic uint32_t seq; /* index + 1 once ready (see the invariant) */
	uint32_t word;	      /* the user's: kind, length */
	alignas(8) unsigned char body[VZ__SLOT_BODY];
};
_Static_assert(sizeof(struct vz__slot) == VZ__SLOT_BYTES, "a slot is one cache line");

struct vz__slot_ring {
	/* Producer's line: only the producer reads or writes it. */
	alignas(64) uint32_t tail; /* next index to fill */
	uint32_t head_cache;	   /* producer's last view of head */

	/* Consumer's line: written only by the consumer; head is read by the
	 * producer when its cached view is full. */
	alignas(64) _Atomic uint32_t head; /* published: slots before it are free */
	uint32_t next;			   /* next index to read (consumer's own) */

	/* Hint line: written by the consumer when it changes, read by the
	 * producer after every publish. */
	alignas(64) _Atomic uint32_t watching;

	/* Read-only after vz__slot_ring_init(). */
	alignas(64) struct vz__slot *slots;
	uint32_t mask;
	uint32_t capacity;
	size_t alloc_bytes;
	bool numa;
};
_Static_assert(sizeof(struct vz__slot_ring) == 4 * 64, "slot ring is four cache lines");

/*
 * Initialise an empty ring of `capacity` slots (a power of two in
 * [2, 2^31]), allocated on NUMA node numa_node when >= 0 and libnuma has
 * NUMA support, else with aligned_alloc(64, ...) (util/node_alloc.h, which
 * also says when numa_node is VZ_EINVAL). Every seq starts at 0.
 * Returns 0, VZ_EINVAL or VZ_ENOMEM; on failure fini is a harmless no-op.
 * Any thread, before the ring is shared.
 */
int vz__slot_ring_init(struct vz__slot_ring *r, uint32_t capacity, int numa_node);

/* Free the slots (whatever they hold is the caller's concern). No
 * concurrent use; idempotent. */
void vz__slot_ring_fini(struct vz__slot_ring *r);

/*
 * Producer only. The slot to fill next, or NULL when the ring is full. The
 * caller writes its body and word, then calls vz__slot_publish(); nothing
 * is visible to the consumer before that. Reads the consumer's head
 * (acquire) only when the cached view is full.
 */
static inline struct vz__slot *vz__slot_reserve(struct vz__slot_ring *r)
{
	uint32_t tail = r->tail;

	if (tail - r->head_cache >= r->capacity) {
		/* Acquire: pairs with the release store of head in
		 * vz__slot_release() (pairing 2): the consumer's reads of the
		 * slots it gave back happen before our overwrites. */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (tail - r->head_cache >= r->capacity)
			return NULL;
	}
	return &r->slots[tail & r->mask];
}

/* Producer only: make the slot vz__slot_reserve() returned ready. */
static inline void vz__slot_publish(struct vz__slot_ring *r, struct vz__slot *s)
{
	/* Release: pairs with the acquire load of seq in vz__slot_peek()
	 * (pairing 1); the body and word written before are visible to a
	 * consumer that sees the new seq. */
	atomic_store_explicit(&s->seq, r->tail + 1, memory_order_release);
	r->tail++;
}

/* Producer only: free slots as far as the producer knows (a lower bound). */
static inline uint32_t vz__slot_room_cached(const struct vz__slot_ring *r)
{
	return r->capacity - (r->tail - r->head_cache);
}

/*
 * Consumer only. The next slot if it is ready, else NULL. The slot stays
 * the consumer's to read until vz__slot_consume() moves past it and a
 * later vz__slot_release() hands it back.
 */
static inline struct vz__slot *vz__slot_peek(struct vz__slot_ring *r)
{
	struct vz__slot *s = &r->slots[r->next & r->mask];

	/* Acquire: pairs with the release store in vz__slot_publish()
	 * (pairing 1). */
	if (atomic_load_explicit(&s->seq, memory_order_acquire) != r->next + 1)
		return NULL;
	return s;
}

/* Consumer only: done reading the slot vz__slot_peek() returned. */
static inline void vz__slot_consume(struct vz__slot_ring *r)
{
	r->next++;
}

/* Consumer only: hand every consumed slot back to the producer (once per
 * batch; until then the producer may see the ring fuller than it is). */
static inline void vz__slot_release(struct vz__slot_ring *r)
{
	/* Relaxed read of our own store. Release: pairs with the acquire
	 * load in vz__slot_reserve() (pairing 2): our reads of the slots
	 * before r->next are done before the producer reuses them. */
	if (atomic_load_explicit(&r->head, memory_order_relaxed) != r->next)
		atomic_store_explicit(&r->head, r->next, memory_order_release);
}

/* Any thread that does not race the producer (tests, the stopped
 * runtime): items published and not yet consumed. */
static inline uint32_t vz__slot_ring_fill_quiet(const struct vz__slot_ring *r)
{
	return r->tail - r->next;
}

#endif
