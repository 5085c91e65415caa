/* SPDX-License-Identifier: MIT */
/*
 * Bounded multi-producer multi-consumer queue of uint32_t (D. Vyukov's
 * bounded MPMC queue with one sequence number per cell). The worker pool
 * uses two per pool: the job queue (shards enqueue record indices, workers
 * dequeue them) and the free list of job records (workers return indices,
 * shards take them). Neither side takes a lock; a producer and a consumer
 * touch the same cell only through its sequence number.
 *
 * Cell protocol, for capacity C and a free-running position p:
 *   seq == p      the cell is empty and ready for the producer of position p
 *   seq == p + 1  the cell holds the value of position p for its consumer
 *   seq == p + C  the consumer of p is done; ready for the producer of p + C
 * A producer claims p by a CAS on enq, writes the value, then publishes it
 * with a release store of seq (pairs with the consumer's acquire load of
 * seq); the consumer frees the cell with a release store of p + C (pairs
 * with the next producer's acquire load). The value itself is a plain
 * field: only the holder of a claimed position touches it.
 *
 * The caller owns the struct and the cell array (so both can live on a
 * chosen NUMA node): vz__mpmc_init() only formats them.
 */
#ifndef VZ_POOL_MPMC_H
#define VZ_POOL_MPMC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vz__mpmc_cell {
	_Atomic size_t seq;
	uint32_t value;
};

struct vz__mpmc {
	/* Written by producers (CAS), read by producers and by
	 * vz__mpmc_approx_len(). */
	alignas(64) _Atomic size_t enq;
	/* Written by consumers (CAS), read by consumers and by
	 * vz__mpmc_approx_len(). */
	alignas(64) _Atomic size_t deq;
	/* Read-only after vz__mpmc_init(). */
	alignas(64) struct vz__mpmc_cell *cells;
	size_t mask;
};

/* Bytes of cell memory for `capacity` entries. */
static inline size_t vz__mpmc_cells_bytes(size_t capacity)
{
	return capacity * sizeof(struct vz__mpmc_cell);
}

/* Format q over `cells` (vz__mpmc_cells_bytes(capacity) bytes). capacity must
 * be a power of two >= 2. Not thread-safe: call before sharing q. */
static inline void vz__mpmc_init(struct vz__mpmc *q, struct vz__mpmc_cell *cells, size_t capacity)
{
	for (size_t i = 0; i < capacity; i++)
		atomic_init(&cells[i].seq, i);
	q->cells = cells;
	q->mask = capacity - 1;
	atomic_init(&q->enq, 0);
	atomic_init(&q->deq, 0);
}

/* Claim the next position for a value published later with
 * vz__mpmc_publish(); returns its cell and stores the position in *pos, or
 * returns NULL (nothing changed) when the queue is full -- and also, for a
 * moment, when the cell it needs still belongs to a consumer that claimed
 * it but has not released it yet: a queue holding fewer than `capacity`
 * entries can refuse while a consumer is preempted mid-dequeue. Between
 * claim and publish, consumers see the queue as ending before this
 * position, so keep the two close. Any thread. */
static inline struct vz__mpmc_cell *vz__mpmc_claim(struct vz__mpmc *q, size_t *pos)
{
	/* Relaxed: the position is only a guess; the acquire load of the
	 * cell's seq below is what orders us after its previous consumer. */
	size_t p = atomic_load_explicit(&q->enq, memory_order_relaxed);
	struct vz__mpmc_cell *c;

	for (;;) {
		c = &q->cells[p & q->mask];
		/* Acquire: pairs with the release store of seq in
		 * vz__mpmc_dequeue() by the consumer that emptied this cell, so
		 * our write of value cannot overtake its read. */
		size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		intptr_t dif = (intptr_t)seq - (intptr_t)p;

		if (dif == 0) {
			/* Relaxed CAS: it only arbitrates between producers;
			 * publication is the release store in publish. */
			if (atomic_compare_exchange_weak_explicit(
				&q->enq, &p, p + 1, memory_order_relaxed, memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return NULL; /* cell still holds (or is being emptied of) p - C */
		} else {
			p = atomic_load_explicit(&q->enq, memory_order_relaxed);
		}
	}
	*pos = p;
	return c;
}

/* Publish v in the cell claimed at position pos. The claiming thread only. */
static inline void vz__mpmc_publish(struct vz__mpmc_cell *c, size_t pos, uint32_t v)
{
	c->value = v;
	/* Release: publishes value (and whatever the producer wrote before,
	 * e.g. the job record); pairs with the acquire load of seq in
	 * vz__mpmc_dequeue(). */
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
}

/* Append v: claim + publish. false when vz__mpmc_claim() refuses. Any
 * thread. */
static inline bool vz__mpmc_enqueue(struct vz__mpmc *q, uint32_t v)
{
	size_t pos;
	struct vz__mpmc_cell *c = vz__mpmc_claim(q, &pos);

	if (!c)
		return false;
	vz__mpmc_publish(c, pos, v);
	return true;
}

/* Take the oldest value into *v. Returns false when the queue is empty (or
 * its oldest entry is claimed but not yet published). Any thread. */
static inline bool vz__mpmc_dequeue(struct vz__mpmc *q, uint32_t *v)
{
	size_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
	struct vz__mpmc_cell *c;

	for (;;) {
		c = &q->cells[pos & q->mask];
		/* Acquire: pairs with the release store of seq in
		 * vz__mpmc_enqueue(), so value is visible once seq says so. */
		size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);

		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(
				&q->deq, &pos, pos + 1, memory_order_relaxed, memory_order_relaxed))
				break;
		} else if (dif < 0) {
			return false;
		} else {
			pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
		}
	}
	*v = c->value;
	/* Release: our read of value happens before the next producer of this
	 * cell writes it; pairs with the acquire load in vz__mpmc_enqueue(). */
	atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
	return true;
}

/* Entries queued now, as a hint (exact only when nobody is mid-operation).
 * Any thread. */
static inline size_t vz__mpmc_approx_len(struct vz__mpmc *q)
{
	/* Relaxed: a statistic and a stealing heuristic, never a decision
	 * that correctness depends on. */
	size_t e = atomic_load_explicit(&q->enq, memory_order_relaxed);
	size_t d = atomic_load_explicit(&q->deq, memory_order_relaxed);

	return e > d ? e - d : 0;
}

#endif
