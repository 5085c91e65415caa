/* SPDX-License-Identifier: MIT */
/*
 * A lane: the single-producer single-consumer queue one foreign thread
 * (or one vz_producer) owns towards one shard. Records of one or more
 * 64-byte slots are written in place by the producer and committed with
 * one compare-and-swap of the tail, which is the lane's gate (a stopper
 * closes it by setting VZ__LANE_CLOSED, after which every commit fails and
 * changes nothing) and the producer's full fence of the wake-up
 * handshake; then the record's stamp (its position + 1, in its first
 * slot) is stored, and that is what the consumer polls: it reads the slot
 * it needs anyway and never the producer's tail line, which stays in the
 * producer's cache (the CAS costs no transfer). The tail is read only by
 * the sleep and park re-checks and the stopper. Between the CAS and the
 * stamp a record is committed but not yet visible: the re-checks count it
 * (the shard does not sleep on it), the drain waits for it, as the inbox
 * treats a half-linked node.
 *
 * The lane never refuses for lack of room: it is a chain of fixed-size
 * segments. The producer links a fresh segment when the current one is
 * used up (one the consumer gave back, or a new allocation), and the
 * consumer hands each segment it has finished back onto the lane's spare
 * chain, keeping up to VZ__LANE_KEEP there and freeing the rest (a few
 * atomic accesses per segment, not per record). So a producer that ran
 * ahead once and may again does not allocate and fault in fresh segments
 * each time, and a lane's memory stays bounded once its consumer caught
 * up. A record never straddles two
 * segments: a record that does not fit the rest of a segment is preceded
 * by a pad record filling it. In steady state a lane lives in two segments
 * and allocates nothing.
 *
 * Positions (tail, head) are 63-bit slot counts that only grow: no wrap,
 * no ABA. Ownership: fields marked "producer" are touched by the producer
 * thread only (one thread at a time), "consumer" by the consumer only;
 * the shared words say who writes them and which access they pair with.
 *
 * Parking: a consumer that finds a lane empty for a while stops polling
 * it (vz__lane_park()); the producer learns that with a plain load after
 * its commit (vz__lane_parked()) and rings the consumer's doorbell. The
 * store-buffer handshake (consumer: parked = 1, full fence, re-check the
 * tail; producer: the commit's seq_cst CAS, then a seq_cst load of parked)
 * means at least one side sees the other: either the consumer sees the new
 * record and stays, or the producer sees parked and rings.
 *
 * Stamps are 64-bit positions, never reused, and only first slots of
 * records ever hold one in their first word: payload in a record's later
 * slots starts after that word. So a slot's stale word (an older stamp or
 * 0) never passes for the record the consumer waits for.
 *
 * Cost per record, steady state: the producer's CAS on its own tail line
 * (one locked instruction, no line transfer: nobody else reads the line
 * on the hot path), its writes to the record's slot line(s) (one
 * ownership transfer each: the consumer read them a lap ago), one load of
 * `parked` (shared, unchanged: a hit); the consumer's read of each slot
 * line (one transfer each). Per segment (128 slots): one exchange of the
 * spare on each side.
 */
#ifndef VZ_LANE_H
#define VZ_LANE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/fence.h"

#define VZ__LANE_SLOT	   64u
#define VZ__LANE_SEG_SLOTS 128u /* slots per segment (8 KiB) */
#define VZ__LANE_MAX_REC   8u	/* most slots one record may take */
#define VZ__LANE_KEEP	   8u	/* finished segments kept for reuse */
#define VZ__LANE_CLOSED	   ((uint64_t)1 << 63)
#define VZ__LANE_KIND_PAD  0xffu

/* A slot. The first slot of a record carries its stamp and says how many
 * slots the record takes and what kind it is; the rest is the user's
 * (lanes.c). Later slots of a record are the user's from byte
 * VZ__LANE_CONT_OFF on; their first word is left alone (see above). */
struct vz__lane_slot {
	/* Position + 1 of the record this slot starts, once committed.
	 * Stored by the producer after its commit (release), polled by the
	 * consumer (acquire: the record's other bytes, and for a pad the
	 * next segment's link, are visible). */
	_Atomic uint64_t stamp;
	uint16_t nslots; /* slots in the record this slot starts */
	uint8_t kind;	 /* VZ__LANE_KIND_PAD, or the user's kind */
	uint8_t user8;
	uint32_t user32;
	unsigned char body[48];
};
#define VZ__LANE_CONT_OFF 8u /* user bytes of a record's later slots start here */
_Static_assert(sizeof(struct vz__lane_slot) == VZ__LANE_SLOT, "a slot is one cache line");

struct vz__lane_seg {
	/* The next segment. Stored by the producer (release) when it first
	 * reserves past this segment; the consumer, at this segment's end,
	 * loads it (acquire: the new segment's reset is visible) and waits
	 * while it is NULL. */
	_Atomic(struct vz__lane_seg *) next;
	/* On the spare chain: the segment under it and how many are in the
	 * chain from here. Written by the consumer before its release store
	 * of the chain, read by the producer after its acquire exchange. */
	struct vz__lane_seg *chain;
	uint32_t nchain;
	alignas(64) struct vz__lane_slot slot[VZ__LANE_SEG_SLOTS];
};

struct vz__lane {
	/* ---- producer line ---- */
	/* VZ__LANE_CLOSED | published position. Written by the producer's
	 * commit (CAS, seq_cst) and once by a stopper (fetch_or, release);
	 * read by the consumer (acquire) and the sleep re-check (seq_cst). */
	alignas(64) _Atomic uint64_t tail;
	uint64_t p_done;		  /* producer: tail's position as last committed */
	uint64_t p_next;		  /* producer: where the next record goes (>= p_done) */
	uint64_t p_end;			  /* producer: end position of p_seg */
	uint64_t p_rec;			  /* producer: start of the reserved record */
	struct vz__lane_slot *p_rec_slot; /* producer: its first slot */
	struct vz__lane_slot *p_pad_slot; /* producer: a pad to stamp with it, or NULL */
	uint64_t p_pad;			  /* producer: the pad's position */
	struct vz__lane_seg *p_seg;	  /* producer: segment holding p_next (if < p_end) */
	uint64_t segs_allocated;	  /* producer: segments it had to allocate */

	/* ---- consumer line ---- */
	/* Position consumed so far. Written by the consumer (release, after
	 * the records before it were handled), read by a stopper (acquire)
	 * to learn that every record it admitted has been taken. */
	alignas(64) _Atomic uint64_t head;
	uint64_t c_head;	    /* consumer: its own copy of head */
	uint64_t c_end;		    /* consumer: end position of c_seg */
	struct vz__lane_seg *c_seg; /* consumer: segment holding c_head */
	uint64_t segs_freed;	    /* consumer: segments freed (spare taken) */

	/* ---- read by the producer on every commit, written rarely ---- */
	/* 1 while the consumer does not poll this lane. Written by the
	 * consumer (seq_cst store before its fence when parking, relaxed
	 * when unparking: a producer that still reads 1 only rings once
	 * more); read by the producer after its commit (seq_cst). */
	alignas(64) _Atomic uint32_t parked;

	/* ---- segment hand-back: a few accesses per segment per side ---- */
	/* Chain of segments the consumer has finished (linked by `chain`),
	 * or NULL. The consumer takes it (exchange to NULL), puts one more on
	 * top and stores it back (release: its reads of the old records and
	 * the chain fields happen before the producer reuses them); only the
	 * consumer ever stores a non-NULL value. The producer takes the whole
	 * chain (exchange to NULL, acquire) when its private one is empty. */
	alignas(64) _Atomic(struct vz__lane_seg *) spare;
	struct vz__lane_seg *p_free; /* producer: the chain it took, not used yet */
};

static inline struct vz__lane_seg *vz__lane_seg_new(void)
{
	struct vz__lane_seg *s = aligned_alloc(64, sizeof *s);

	if (s) {
		atomic_init(&s->next, NULL);
		/* No stale stamp may look like a position to come. */
		for (unsigned i = 0; i < VZ__LANE_SEG_SLOTS; i++)
			atomic_init(&s->slot[i].stamp, 0);
	}
	return s;
}

/* Set up an empty lane, parked (the first commit rings the doorbell).
 * 0, or -1 when the first segment cannot be allocated. Caller owns the
 * memory, 64-byte aligned; any thread, before the lane is shared. */
static inline int vz__lane_init(struct vz__lane *l)
{
	struct vz__lane_seg *s = vz__lane_seg_new();

	if (!s)
		return -1;
	atomic_init(&l->tail, 0);
	atomic_init(&l->head, 0);
	atomic_init(&l->parked, 1);
	atomic_init(&l->spare, NULL);
	l->p_free = NULL;
	l->p_done = l->p_next = l->p_rec = l->p_pad = 0;
	l->p_rec_slot = l->p_pad_slot = NULL;
	l->p_end = VZ__LANE_SEG_SLOTS;
	l->p_seg = s;
	l->segs_allocated = 0;
	l->c_head = 0;
	l->c_end = VZ__LANE_SEG_SLOTS;
	l->c_seg = s;
	l->segs_freed = 0;
	return 0;
}

/* Free every segment. Nobody may use the lane afterwards (or during). */
static inline void vz__lane_fini(struct vz__lane *l)
{
	struct vz__lane_seg *s = l->c_seg, *n;

	/* Relaxed: single-threaded by now; the chain from the consumer's
	 * segment reaches every segment the producer linked (also one it
	 * linked for a record it never committed). */
	while (s) {
		n = atomic_load_explicit(&s->next, memory_order_relaxed);
		free(s);
		s = n;
	}
	for (s = atomic_load_explicit(&l->spare, memory_order_relaxed); s; s = n) {
		n = s->chain;
		free(s);
	}
	for (s = l->p_free; s; s = n) {
		n = s->chain;
		free(s);
	}
	l->p_free = NULL;
	l->c_seg = l->p_seg = NULL;
	atomic_store_explicit(&l->spare, NULL, memory_order_relaxed);
}

/* ---- producer ---------------------------------------------------------- */

/*
 * vz__lane_reserve() when the record fits what is left of the current
 * segment; NULL otherwise, having changed nothing a commit would publish
 * (the caller then takes vz__lane_reserve() below, which links a
 * segment). No call, so a caller's fast path keeps its arguments in
 * scratch registers. Producer only.
 */
static inline struct vz__lane_slot *vz__lane_reserve_here(struct vz__lane *l, unsigned n,
							  uint8_t kind)
{
	struct vz__lane_slot *s;

	if (__builtin_expect(l->p_next + n > l->p_end, 0))
		return NULL;
	s = &l->p_seg->slot[VZ__LANE_SEG_SLOTS - (l->p_end - l->p_next)];
	s->nslots = (uint16_t)n;
	s->kind = kind;
	l->p_rec = l->p_next;
	l->p_rec_slot = s;
	return s;
}

/*
 * Reserve n (1..VZ__LANE_MAX_REC) contiguous slots for the next record
 * and return the first; the caller fills them (first slot's nslots and
 * kind are set here) and then calls vz__lane_commit(). NULL when a new
 * segment was needed and could not be allocated: nothing is published,
 * and a later reserve starts over. A reservation that is never committed
 * is simply overwritten by the next one. Producer only.
 */
static inline struct vz__lane_slot *vz__lane_reserve(struct vz__lane *l, unsigned n, uint8_t kind)
{
	struct vz__lane_slot *s = vz__lane_reserve_here(l, n, kind);
	struct vz__lane_seg *seg;

	if (__builtin_expect(s != NULL, 1))
		return s;
	if (!l->p_free)
		/* Acquire: pairs with the consumer's release store in
		 * vz__lane_next_seg(): its last reads of the segments happen
		 * before our writes into them. */
		l->p_free = atomic_exchange_explicit(&l->spare, NULL, memory_order_acquire);
	seg = l->p_free;
	if (seg) {
		l->p_free = seg->chain;
	} else {
		seg = vz__lane_seg_new();
		if (!seg)
			return NULL;
		l->segs_allocated++;
	}
	/* Relaxed: the consumer reads this segment's link only after our
	 * release store of the link to it below. */
	atomic_store_explicit(&seg->next, NULL, memory_order_relaxed);
	if (l->p_next < l->p_end) {
		/* The rest of this segment is one pad record, stamped with
		 * the next commit. */
		s = &l->p_seg->slot[VZ__LANE_SEG_SLOTS - (l->p_end - l->p_next)];
		s->nslots = (uint16_t)(l->p_end - l->p_next);
		s->kind = VZ__LANE_KIND_PAD;
		l->p_pad_slot = s;
		l->p_pad = l->p_next;
	}
	/* Release: pairs with the consumer's acquire load at the end of this
	 * segment (vz__lane_peek()). Linking before the commit is harmless:
	 * the consumer reaches the end of this segment only through stamped
	 * records, the pad's among them. */
	atomic_store_explicit(&l->p_seg->next, seg, memory_order_release);
	l->p_seg = seg;
	l->p_next = l->p_end;
	l->p_end += VZ__LANE_SEG_SLOTS;
	return vz__lane_reserve_here(l, n, kind); /* n fits a fresh segment */
}

/*
 * Commit the record reserved last (n slots, as reserved), with any pad
 * before it, then stamp them. 0, or -1 when the lane was closed: then
 * nothing is committed (and never will be). seq_cst CAS: it is the
 * producer's "publish, full fence" of the park handshake
 * (vz__lane_parked() reads after it) and of the shard's sleep protocol
 * (vz__wake() reads `sleeping` after it); the re-checks on the other side
 * read the tail. Acquire on failure: a producer refused by a close sees
 * what the stopper wrote before its release fetch_or (the runtime's
 * state). Producer only.
 */
static inline int vz__lane_commit(struct vz__lane *l, unsigned n)
{
	uint64_t expected = l->p_done;
	uint64_t end = l->p_rec + n;

	if (!atomic_compare_exchange_strong_explicit(&l->tail, &expected, end, memory_order_seq_cst,
						     memory_order_acquire))
		return -1; /* only a close changes tail behind our back */
	l->p_done = l->p_next = end;
	/* Release: pairs with the consumer's acquire load of the stamp in
	 * vz__lane_peek(); the record's bytes are visible with it. */
	if (l->p_pad_slot) {
		atomic_store_explicit(&l->p_pad_slot->stamp, l->p_pad + 1, memory_order_release);
		l->p_pad_slot = NULL;
	}
	atomic_store_explicit(&l->p_rec_slot->stamp, l->p_rec + 1, memory_order_release);
	return 0;
}

/* After a commit: does the consumer want a doorbell for this lane?
 * seq_cst: the load half of the park handshake (see the file comment);
 * pairs with the consumer's store + fence in vz__lane_park(). */
static inline bool vz__lane_parked(struct vz__lane *l)
{
	return atomic_load_explicit(&l->parked, memory_order_seq_cst) != 0;
}

/* Producer: closed by a stopper? Relaxed: a hint to give up early; the
 * commit's CAS is what decides. */
static inline bool vz__lane_closed_hint(struct vz__lane *l)
{
	return (atomic_load_explicit(&l->tail, memory_order_relaxed) & VZ__LANE_CLOSED) != 0;
}

/* ---- consumer ---------------------------------------------------------- */

/* The consumer finished c_seg: move to next and put the old one on the
 * spare chain (or free it when the chain is long enough). */
static inline void vz__lane_next_seg(struct vz__lane *l, struct vz__lane_seg *next)
{
	struct vz__lane_seg *old = l->c_seg, *prev;

	l->c_seg = next;
	l->c_end += VZ__LANE_SEG_SLOTS;
	/* Relaxed: only we store a non-NULL chain, and we wrote what it
	 * holds; the producer may take it between this and our store (it
	 * then finds NULL and allocates, a rare extra segment). */
	prev = atomic_exchange_explicit(&l->spare, NULL, memory_order_relaxed);
	if (prev && prev->nchain >= VZ__LANE_KEEP) {
		free(old);
		l->segs_freed++;
		old = prev;
	} else {
		old->chain = prev;
		old->nchain = prev ? prev->nchain + 1 : 1;
	}
	/* Release: pairs with the producer's acquire exchange, so our reads
	 * of the old records (and the chain fields) happen before it reuses
	 * the segments. */
	atomic_store_explicit(&l->spare, old, memory_order_release);
}

/*
 * The first slot of the next record, or NULL when none is published. Pads
 * are skipped here. The record stays the producer's to keep (it does not
 * touch it) until vz__lane_advance(). Consumer only.
 */
static inline struct vz__lane_slot *vz__lane_peek(struct vz__lane *l)
{
	for (;;) {
		struct vz__lane_slot *s;

		if (l->c_head == l->c_end) {
			/* Acquire: pairs with the producer's release store of
			 * the link in vz__lane_reserve(). */
			struct vz__lane_seg *next =
			    atomic_load_explicit(&l->c_seg->next, memory_order_acquire);

			if (!next)
				return NULL;
			vz__lane_next_seg(l, next);
		}
		s = &l->c_seg->slot[VZ__LANE_SEG_SLOTS - (l->c_end - l->c_head)];
		/* Acquire: pairs with the release store of the stamp in
		 * vz__lane_commit(); the record's bytes are visible. */
		if (atomic_load_explicit(&s->stamp, memory_order_acquire) != l->c_head + 1)
			return NULL;
		if (s->kind != VZ__LANE_KIND_PAD)
			return s;
		l->c_head += s->nslots;
	}
}

/* Done with the record peek returned (n = its nslots). Consumer only. */
static inline void vz__lane_advance(struct vz__lane *l, unsigned n)
{
	l->c_head += n;
}

/* Tell a stopper how far the consumer got. Release: pairs with the
 * acquire in vz__lane_taken(); what was done with the records before
 * (delivered, dead-lettered) happens before. Consumer only. */
static inline void vz__lane_publish_head(struct vz__lane *l)
{
	atomic_store_explicit(&l->head, l->c_head, memory_order_release);
}

/* Nothing committed past what the consumer took (a record committed but
 * not yet stamped counts)? Consumer only; seq_cst so it can serve as the
 * re-check after a full fence (park, sleep): pairs with the commit's CAS. */
static inline bool vz__lane_empty(struct vz__lane *l)
{
	return (atomic_load_explicit(&l->tail, memory_order_seq_cst) & ~VZ__LANE_CLOSED) ==
	       l->c_head;
}

/*
 * Stop polling the lane: announce parked, full fence, re-check. Returns
 * true when parked (the lane was still empty after the fence, so any later
 * commit's producer sees parked and rings); false when a record slipped
 * in, in which case the lane stays unparked and the caller keeps polling
 * it. The store and fence pair with the producer's commit CAS and its
 * load in vz__lane_parked() (store-buffer pattern, see the file comment).
 * Consumer only.
 */
static inline bool vz__lane_park(struct vz__lane *l)
{
	atomic_store_explicit(&l->parked, 1, memory_order_seq_cst);
	vz__full_fence_on(&l->parked);
	if (vz__lane_empty(l))
		return true;
	atomic_store_explicit(&l->parked, 0, memory_order_relaxed);
	return false;
}

/* Polled again (its doorbell rang). Relaxed: a producer that still reads
 * 1 rings once more, which costs an RMW and nothing else. Consumer only. */
static inline void vz__lane_unpark(struct vz__lane *l)
{
	atomic_store_explicit(&l->parked, 0, memory_order_relaxed);
}

/* ---- stopper ----------------------------------------------------------- */

/* Close the lane for good; returns the position published before the
 * close: every record the lane ever admits lies before it. Release: pairs
 * with the acquire of a refused commit (it sees what the stopper wrote
 * before). Any thread, once. */
static inline uint64_t vz__lane_close(struct vz__lane *l)
{
	return atomic_fetch_or_explicit(&l->tail, VZ__LANE_CLOSED, memory_order_release) &
	       ~VZ__LANE_CLOSED;
}

/* Has the consumer taken (and handled) everything before position pos?
 * Acquire: pairs with vz__lane_publish_head(). Any thread. */
static inline bool vz__lane_taken(struct vz__lane *l, uint64_t pos)
{
	return atomic_load_explicit(&l->head, memory_order_acquire) >= pos;
}

#endif
