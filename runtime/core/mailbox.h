/* SPDX-License-Identifier: MIT */
/*
 * An actor's mailbox: a FIFO of 32-byte cells in 4 KiB segments, owned by
 * the actor's shard (runtime/DESIGN.md invariant 1: no atomics anywhere
 * here). A plain user message sent to an actor of the same shard with at
 * most VZ__CELL_INLINE_MAX payload bytes is written into the cells
 * themselves (a 16-byte header, then the payload): no pooled block, no
 * pointer to chase, 32 bytes per 8-byte message instead of a 64-byte
 * block, and a flood that the receiver keeps up with cycles through the
 * same one or two segments, which stay in L1. Every other message (runtime
 * messages, replies to asks, large payloads, arrivals from other shards and
 * foreign threads) is a block, and its cell holds the pointer. One queue
 * for both keeps the order of the mailbox the order of its pushes, so FIFO
 * per sender -> receiver pair holds whichever form each message took.
 *
 * Segments come from the shard's segment cache (struct vz__seg_cache), LIFO
 * free lists filled from chunks that live until the shard is destroyed:
 * the segment a receiver has just emptied is the next one a sender fills,
 * still in cache. Two sizes: a mailbox that was empty starts with a small
 * segment (128 bytes, three cells), so a million actors holding one
 * message each take 128 MB, not 4 GB; a mailbox that grows past it goes
 * on in 4 KiB segments. The last cell of a segment is kept for a link
 * (VZ__CELL_LINK) to the next one; `end` is that cell of the tail's
 * segment, so "is there room for n cells" is one pointer compare. An empty
 * mailbox holds no segment: all three ends point at a static cell that is
 * never written, which has no room, so the first push takes a segment.
 *
 * The reader never gives a segment back while the cell it handed out may
 * still be read: vz__mbox_pop() only advances, and vz__mbox_settle(),
 * called after the receive call returned, releases the segment of a
 * mailbox that became empty.
 */
#ifndef VZ_CORE_MAILBOX_H
#define VZ_CORE_MAILBOX_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vz_msg;
struct vz__shard;
struct vz_actor;

#define VZ__CELL_BYTES 32u
#define VZ__SEG_BYTES  4096u /* a large segment */
#define VZ__SEG_SMALL  128u  /* a mailbox's first segment */
/* Cells one inline message may take, and so its largest payload: the
 * first cell holds 16 bytes after the header, each further cell 32. */
#define VZ__CELL_MAX_SPAN   4u
#define VZ__CELL_INLINE_MAX (VZ__CELL_MAX_SPAN * VZ__CELL_BYTES - 16u)

/* cell->kind */
#define VZ__CELL_BLOCK 0u    /* u.msg: a pooled message */
#define VZ__CELL_LINK  0xffu /* u.next: the next segment's first cell; type: this one's bytes */
/* 1 .. VZ__CELL_MAX_SPAN: an inline message spanning that many cells */

struct vz__cell {
	union {
		uint64_t from;	       /* inline: the sender's reference */
		struct vz_msg *msg;    /* VZ__CELL_BLOCK */
		struct vz__cell *next; /* VZ__CELL_LINK */
	} u;
	uint32_t type;
	uint16_t len;
	uint8_t flags; /* inline: VZ__MSG_INFLIGHT or 0 (msg.h) */
	uint8_t kind;
	/* The payload of an inline message, continued in the next cells:
	 * 16-byte aligned, as message.h's VZ_MSG_ALIGN promises. */
	alignas(16) unsigned char data[16];
};
_Static_assert(sizeof(struct vz__cell) == VZ__CELL_BYTES, "a cell is 32 bytes");
_Static_assert((VZ__SEG_BYTES & (VZ__SEG_BYTES - 1)) == 0 &&
		   (VZ__SEG_SMALL & (VZ__SEG_SMALL - 1)) == 0 && VZ__SEG_BYTES % VZ__SEG_SMALL == 0,
	       "segment sizes are powers of two, aligned to themselves (vz__cell_seg())");
_Static_assert(VZ__SEG_SMALL / VZ__CELL_BYTES - 1 >= 1 &&
		   VZ__SEG_BYTES / VZ__CELL_BYTES - 1 >= VZ__CELL_MAX_SPAN,
	       "a small segment holds a one-cell message, a large one any inline message");

struct vz__mbox {
	struct vz__cell *head; /* next cell to read (== tail: empty) */
	struct vz__cell *tail; /* next cell to write */
	struct vz__cell *end;  /* the link cell of tail's segment */
	uint32_t len;	       /* messages queued */
	uint32_t seg_bytes;    /* size of tail's segment (0: none) */
};

/* A cell that is never written: where all ends of an empty mailbox
 * point (mailbox.c). */
extern struct vz__cell *const vz__mbox_nil;

/* Where a shard's segments come from. Owner-only. */
struct vz__seg_chunk;
struct vz__seg_cache {
	void *free[2];		      /* [0] small, [1] large; linked through their first word */
	struct vz__seg_chunk *chunks; /* every chunk, for fini */
	size_t next_chunk;	      /* bytes of the next chunk (grows to 2 MiB) */
	uint64_t refills;	      /* chunks added */
	/* The shard's pool_refills stat, counted with each chunk (so
	 * mallocs_per_msg in the benchmarks sees mailbox growth too). */
	_Atomic uint64_t *refill_stat;
};

static inline void vz__mbox_init(struct vz__mbox *mb)
{
	mb->head = mb->tail = mb->end = vz__mbox_nil;
	mb->len = 0;
	mb->seg_bytes = 0;
}

static inline bool vz__mbox_empty(const struct vz__mbox *mb)
{
	return mb->head == mb->tail;
}

/* Slow path of vz__mbox_reserve(): start a new segment (linking the old
 * one to it) and return its first cell, or NULL when no memory. */
struct vz__cell *vz__mbox_grow(struct vz__seg_cache *sc, struct vz__mbox *mb, unsigned n);
/* Add a chunk of segments. 0 or VZ_ENOMEM. */
int vz__seg_refill(struct vz__seg_cache *sc);
void vz__seg_cache_fini(struct vz__seg_cache *sc);

/* mailbox.c: a (no longer live) leaves its queued mail as dead letters */
void vz__mbox_dead_letter_all(struct vz__shard *sh, struct vz_actor *a, int reason);

/* Room for n (1 .. VZ__CELL_MAX_SPAN) contiguous cells at the tail, or
 * NULL (no memory). The cells are written by the caller and become part of
 * the mailbox with vz__mbox_commit(). */
static inline struct vz__cell *vz__mbox_reserve(struct vz__seg_cache *sc, struct vz__mbox *mb,
						unsigned n)
{
	/* The link cell (the segment's last) must stay free. */
	if (__builtin_expect((size_t)(mb->end - mb->tail) >= n, 1))
		return mb->tail;
	return vz__mbox_grow(sc, mb, n);
}

static inline void vz__mbox_commit(struct vz__mbox *mb, struct vz__cell *c, unsigned n)
{
	mb->tail = c + n;
	mb->len++;
}

/* Cells an inline message of len payload bytes takes: the 16-byte header
 * and the payload, rounded up to whole cells. For len <= 16 that is one
 * cell, so no branch is needed for the common small payload. */
static inline unsigned vz__cell_span(size_t len)
{
	return (unsigned)((len + 16u + VZ__CELL_BYTES - 1) / VZ__CELL_BYTES);
}

static inline void vz__seg_free(struct vz__seg_cache *sc, void *seg, uint32_t bytes)
{
	unsigned k = bytes == VZ__SEG_BYTES;

	*(void **)seg = sc->free[k];
	sc->free[k] = seg;
}

/* The segment of `bytes` that holds cell c (segments are aligned to their
 * size). */
static inline void *vz__cell_seg(const struct vz__cell *c, uint32_t bytes)
{
	return (void *)((uintptr_t)c & ~(uintptr_t)(bytes - 1));
}

/* The oldest message's cell; the mailbox must not be empty. Follows (and
 * gives back) a finished segment. The cell stays valid until the next
 * pop or vz__mbox_settle(). */
static inline struct vz__cell *vz__mbox_pop(struct vz__seg_cache *sc, struct vz__mbox *mb)
{
	struct vz__cell *c = mb->head;

	if (__builtin_expect(c->kind == VZ__CELL_LINK, 0)) {
		struct vz__cell *next = c->u.next;

		vz__seg_free(sc, vz__cell_seg(c, c->type), c->type);
		c = next;
	}
	mb->head = c + (c->kind == VZ__CELL_BLOCK ? 1 : c->kind);
	mb->len--;
	return c;
}

/* After the message of the last pop is done with: an emptied mailbox
 * gives its segment back. */
static inline void vz__mbox_settle(struct vz__seg_cache *sc, struct vz__mbox *mb)
{
	if (mb->head == mb->tail && mb->seg_bytes) {
		/* head is inside tail's segment: a message never takes the
		 * link cell, so head stops at that cell at the latest. */
		vz__seg_free(sc, vz__cell_seg(mb->head, mb->seg_bytes), mb->seg_bytes);
		vz__mbox_init(mb);
	}
}

#endif
