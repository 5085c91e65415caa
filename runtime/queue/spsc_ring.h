/* SPDX-License-Identifier: MIT */
/*
 * Bounded single-producer single-consumer ring of `void *`. Exactly one
 * thread pushes and exactly one thread pops. It carried the messages
 * between shards until the slot ring (slot_ring.h) replaced it there; it
 * stays as the measured baseline of the raw-queue benchmark
 * (bench/queues.c) and for its tests.
 *
 * Layout: three 64-byte cache lines. The producer writes only its line
 * (tail and its cached copy of head), the consumer writes only its line
 * (head and its cached copy of tail), and the third line (mask, slots) is
 * written once by vz__spsc_init() and then only read, so it stays shared in
 * both caches. Each side reads the other's index only when its cached copy
 * says it cannot make progress, and publishes a whole batch with one
 * release store, so a busy ring costs about one cache-line transfer per
 * batch in each direction rather than one per item.
 *
 * 64 bytes apart, not 128: the pair of lines an adjacent-line prefetcher
 * fetches together would also pull the other side's line, but putting the
 * two lines 128 bytes apart (bench/queues.c, veloz-line128, run side by
 * side) made no difference beyond the order in which the two ran, on the
 * AMD EPYC (Zen 5) machines we measure on. Re-measure on Intel parts.
 *
 * Indices are free-running uint32_t counters (wrapping modulo 2^32); the
 * slot of index i is slots[i & mask] and tail - head is the fill level
 * even across the 2^32 wrap, which is why capacity is at most 2^31.
 *
 * The slots are plain (non-atomic) pointers: a slot is written by the
 * producer only while the consumer cannot read it, and read by the consumer
 * only while the producer cannot write it; the release/acquire pairs on
 * tail and head below are what make that true. See NOTES.md beside this
 * file for the invariants and every pairing of atomics.
 *
 * The struct is meant to be embedded by its owner (caller owns the struct,
 * vz__spsc_init() allocates the slots, vz__spsc_fini() frees them). It is
 * 64-byte aligned: memory holding it must come from an allocator that
 * honours that (aligned_alloc(64, ...), numa_alloc_onnode(), or a static).
 */
#ifndef VZ_SPSC_RING_H
#define VZ_SPSC_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef VZ__SPSC_LINE /* bench/queues.c builds a 128-byte copy */
#define VZ__SPSC_LINE 64
#endif
/* Largest capacity: indices are uint32_t and tail - head must stay
 * unambiguous across their wrap. */
#define VZ__SPSC_MAX_CAPACITY (UINT32_C(1) << 31)

struct vz__spsc {
	/* Producer's line: written only by the producer thread. */
	alignas(VZ__SPSC_LINE) _Atomic uint32_t tail; /* next index to fill; read by the consumer */
	uint32_t head_cache;			      /* producer's last view of head */

	/* Consumer's line: written only by the consumer thread. */
	alignas(VZ__SPSC_LINE) _Atomic uint32_t head; /* next index to take; read by the producer */
	uint32_t tail_cache;			      /* consumer's last view of tail */

	/* Read-only after vz__spsc_init(). */
	alignas(VZ__SPSC_LINE) void **slots;
	uint32_t mask; /* capacity - 1 */
	uint32_t capacity;
	size_t alloc_bytes; /* size handed to the allocator, for vz__spsc_fini() */
	bool numa;	    /* slots came from numa_alloc_onnode() */
};

_Static_assert(sizeof(struct vz__spsc) == 3 * VZ__SPSC_LINE, "spsc ring is three cache lines");
_Static_assert(offsetof(struct vz__spsc, head) == VZ__SPSC_LINE, "consumer line");
_Static_assert(offsetof(struct vz__spsc, slots) == 2 * VZ__SPSC_LINE, "read-only line");

/*
 * Initialise an empty ring of `capacity` slots. capacity must be a power of
 * two in [2, 2^31]. The slots are allocated on NUMA node `numa_node` with
 * numa_alloc_onnode() when numa_node >= 0 and libnuma reports NUMA support
 * (then numa_node must be <= numa_max_node()), otherwise with
 * aligned_alloc(64, ...) (util/node_alloc.h). Returns 0, VZ_EINVAL (bad capacity or node) or
 * VZ_ENOMEM. On failure *r is left in a state where vz__spsc_fini() is a
 * harmless no-op. Any thread, before the ring is shared.
 */
int vz__spsc_init(struct vz__spsc *r, uint32_t capacity, int numa_node);

/*
 * Free the slots. Items still in the ring are not touched (they are the
 * caller's to drain first). No thread may use the ring concurrently. Safe on
 * a ring whose init failed and idempotent.
 */
void vz__spsc_fini(struct vz__spsc *r);

/* Number of slots. Any thread (read-only field). */
static inline uint32_t vz__spsc_capacity(const struct vz__spsc *r)
{
	return r->capacity;
}

/*
 * Producer only. Append the first k <= n items of `items`, in order, where
 * k is the free space (n when it all fits, 0 when the ring is full), and
 * publish all k with one release store of the tail. Returns k. The cached
 * head is refreshed (one acquire load of the consumer's line) only when the
 * cached view has fewer than n free slots.
 */
static inline uint32_t vz__spsc_push_batch(struct vz__spsc *r, void *const *items, uint32_t n)
{
	/* Relaxed: tail is written only by this thread, so we read our own
	 * last store; no other thread's write can be involved. */
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t free_slots = r->capacity - (tail - r->head_cache);
	uint32_t k;

	if (free_slots < n) {
		/* Acquire: pairs with the release store of head in
		 * vz__spsc_pop_batch(). The consumer read the slots it gave
		 * back *before* that store; acquiring it orders our upcoming
		 * overwrites of those slots after those reads. Relaxed was
		 * rejected: we could then overwrite a slot the consumer is
		 * still reading (a data race, a lost item). */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		free_slots = r->capacity - (tail - r->head_cache);
	}
	k = n < free_slots ? n : free_slots;
	if (k == 0)
		return 0;

	/* A plain loop, not memcpy: batches are short (often 1), and a
	 * call to memcpy with a run-time length costs more than the copy. */
	for (uint32_t i = 0; i < k; i++)
		r->slots[(tail + i) & r->mask] = items[i];

	/* Release: publishes the k slot writes above together with everything
	 * the producer wrote before (message payloads). Pairs with the
	 * acquire load of tail in vz__spsc_pop_batch().
	 * Relaxed was rejected: the consumer could see the new tail before the
	 * slot contents and read stale pointers. seq_cst is not needed here:
	 * the sleep protocol puts its own seq_cst fence after this store. */
	atomic_store_explicit(&r->tail, tail + k, memory_order_release);
	return k;
}

/*
 * Consumer only. Remove up to `max` items in FIFO order into `items` and
 * hand the slots back with one release store of head. Returns the number
 * taken (0 when empty). The cached tail is refreshed (one acquire load of
 * the producer's line) only when the cached view holds fewer than `max`.
 */
static inline uint32_t vz__spsc_pop_batch(struct vz__spsc *r, void **items, uint32_t max)
{
	/* Relaxed: head is written only by this thread. */
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t avail = r->tail_cache - head;
	uint32_t k;

	if (avail < max) {
		/* Acquire: pairs with the release store of tail in
		 * vz__spsc_push_batch(), so the slot contents (and the
		 * payloads they point to) written before it are visible
		 * below. Relaxed was rejected: we could read a slot before
		 * the producer's write of it becomes visible. */
		r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
		avail = r->tail_cache - head;
	}
	k = max < avail ? max : avail;
	if (k == 0)
		return 0;

	for (uint32_t i = 0; i < k; i++)
		items[i] = r->slots[(head + i) & r->mask];

	/* Release: orders our reads of the k slots before the producer's
	 * reuse of them. Pairs with the acquire load of head in
	 * vz__spsc_push_batch(). Relaxed was rejected: the producer could
	 * overwrite a slot before our read of it has been performed. */
	atomic_store_explicit(&r->head, head + k, memory_order_release);
	return k;
}

#endif
