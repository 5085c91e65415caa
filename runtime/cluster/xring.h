/* SPDX-License-Identifier: MIT */
/*
 * Single-producer single-consumer ring of variable-length records: how a
 * shard hands outgoing cluster messages to the transport thread without a
 * lock, a syscall or an allocation. The producer (a shard thread, or a
 * foreign thread holding the foreign ring's mutex) reserves a record,
 * writes it in place and publishes it; the consumer (the transport thread)
 * reads records in order, may rewrite their bytes in place (it stamps the
 * sequence number into the wire header) and hands them to the client
 * straight from the ring, then releases them.
 *
 * Positions are free-running byte counts (uint64_t, never wrapping in
 * practice); the byte of position p is buf[p & mask]. A record never wraps
 * around the end: when the room left before the end is too small, the
 * producer writes a pad record there and starts at offset 0. Records are
 * 8-byte aligned and start with their total size (a multiple of 8).
 *
 * Same layout idea as queue/spsc_ring.h: the producer's line (tail and its
 * cached head), the consumer's line (head and its cached tail), and a
 * read-only line; each side reads the other's index only when its cache
 * says it cannot make progress.
 */
#ifndef VZ_CLUSTER_XRING_H
#define VZ_CLUSTER_XRING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VZ__XR_PAD UINT32_MAX /* rec.entry of a pad record */

/* The record header; the payload follows. */
struct vz__xrec {
	uint32_t size;	/* total bytes, header included, multiple of 8 */
	uint32_t entry; /* remote-reference index, or VZ__XR_PAD */
	uint32_t wire_len;
	uint32_t pad_;
	unsigned char wire[]; /* wire header + node name + payload (wire.h) */
};

struct vz__xring {
	/* Producer's line. */
	alignas(64) _Atomic uint64_t tail; /* published end; read by the consumer */
	uint64_t head_cache;
	uint64_t reserved; /* end of the reserved, unpublished record */
	/* Consumer's line. */
	alignas(64) _Atomic uint64_t head; /* released start; read by the producer */
	uint64_t tail_cache;
	/* Read-only after init. */
	alignas(64) unsigned char *buf;
	uint64_t size; /* power of two */
};

static inline int vz__xring_init(struct vz__xring *r, uint64_t size)
{
	memset(r, 0, sizeof *r);
	r->buf = aligned_alloc(64, size);
	if (!r->buf)
		return -1;
	r->size = size;
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	return 0;
}

static inline void vz__xring_fini(struct vz__xring *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Producer: room for a record of `bytes` (rounded to 8) contiguous bytes,
 * or NULL when the ring is full. Writes a pad record first when the room
 * before the end is too small. Publish it with vz__xring_publish(). */
static inline struct vz__xrec *vz__xring_reserve(struct vz__xring *r, uint32_t bytes)
{
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed); /* own */
	uint64_t need = (bytes + 7u) & ~(uint64_t)7;
	uint64_t off = t & (r->size - 1), pad = 0;
	struct vz__xrec *rec;

	if (off + need > r->size)
		pad = r->size - off;
	if (t + pad + need - r->head_cache > r->size) {
		/* Acquire: pairs with the consumer's release in
		 * vz__xring_release(); the bytes it released are no longer
		 * read once we see the new head. */
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (t + pad + need - r->head_cache > r->size)
			return NULL;
	}
	if (pad) {
		rec = (struct vz__xrec *)(r->buf + off);
		rec->size = (uint32_t)pad;
		rec->entry = VZ__XR_PAD;
		t += pad;
	}
	rec = (struct vz__xrec *)(r->buf + (t & (r->size - 1)));
	rec->size = (uint32_t)need;
	r->reserved = t + need;
	return rec;
}

/* Producer: make the reserved record (and any pad before it) visible.
 * Release: pairs with the consumer's acquire in vz__xring_peek(); the
 * record's bytes are written before the tail that covers them. */
static inline void vz__xring_publish(struct vz__xring *r)
{
	atomic_store_explicit(&r->tail, r->reserved, memory_order_release);
}

/* Consumer: the next record, or NULL when none is published. Pad records
 * are skipped (released) here. */
static inline struct vz__xrec *vz__xring_peek(struct vz__xring *r)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed); /* own */
	struct vz__xrec *rec;

	for (;;) {
		if (h == r->tail_cache) {
			/* Acquire: pairs with the release in vz__xring_publish(). */
			r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
			if (h == r->tail_cache)
				return NULL;
		}
		rec = (struct vz__xrec *)(r->buf + (h & (r->size - 1)));
		if (rec->entry != VZ__XR_PAD)
			return rec;
		h += rec->size;
		/* Release: the pad's bytes are done with (pairs with the
		 * producer's acquire in vz__xring_reserve()). */
		atomic_store_explicit(&r->head, h, memory_order_release);
	}
}

/* Consumer: give the record returned by the last peek back to the
 * producer. Release: pairs with the producer's acquire of head in
 * vz__xring_reserve(); our reads (and in-place writes) of the record are
 * done before the producer may overwrite it. */
static inline void vz__xring_release(struct vz__xring *r, const struct vz__xrec *rec)
{
	uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed); /* own */

	atomic_store_explicit(&r->head, h + rec->size, memory_order_release);
}

/* Any published record (or pad)? Any thread: a hint, used by the
 * consumer's sleep re-check after its full fence. Acquire: pairs with the
 * producer's release in vz__xring_publish(). */
static inline bool vz__xring_nonempty(struct vz__xring *r)
{
	return atomic_load_explicit(&r->tail, memory_order_acquire) !=
	       atomic_load_explicit(&r->head, memory_order_relaxed);
}

#endif
