/* SPDX-License-Identifier: MIT */
/*
 * The "classic" timer queue: a binary min-heap of deadlines, as in the
 * event loops veloz replaces (std::priority_queue style), plus what a fair
 * comparison needs: cancel in O(log n) through the heap position stored in
 * each node, and nodes recycled from a free list so that steady-state push
 * does not allocate (the arrays grow by doubling, like a vector).
 *
 * Handles are (generation << 32 | node index) and never 0; a handle whose
 * timer was popped or cancelled is refused (-ENOENT), even after its node is
 * reused. Equal deadlines come out in unspecified order.
 *
 * Not thread-safe: the caller serialises (the classic loop holds its mutex).
 * Errors are negative errno values (this is benchmark code, not the runtime
 * API).
 */
#ifndef VZ_BENCH_TIMER_HEAP_H
#define VZ_BENCH_TIMER_HEAP_H

#include <stdint.h>

struct timer_heap_item {
	uint64_t deadline;
	uint32_t node;
};

struct timer_heap_node {
	void *payload;
	uint32_t pos; /* index in items[] while queued; UINT32_MAX when free */
	uint32_t gen;
	uint32_t next_free;
};

struct timer_heap {
	struct timer_heap_item *items; /* the heap, items[0] is the minimum */
	struct timer_heap_node *nodes;
	uint32_t n;	    /* queued timers */
	uint32_t cap;	    /* capacity of items[] and nodes[] */
	uint32_t free_head; /* first free node, UINT32_MAX if none */
	uint64_t grows;	    /* times the arrays were reallocated */
};

/* Initialise an empty heap with room for `capacity` timers (0 is fine).
 * Returns 0 or -ENOMEM. */
int timer_heap_init(struct timer_heap *h, uint32_t capacity);

/* Free the arrays. Payloads are the caller's. */
void timer_heap_fini(struct timer_heap *h);

/* Queue `payload` due at `deadline`; store its handle in *handle (may be
 * NULL). O(log n). Returns 0 or -ENOMEM. */
int timer_heap_push(struct timer_heap *h, uint64_t deadline, void *payload, uint64_t *handle);

/* Remove the timer `handle`; its payload goes to *payload (may be NULL).
 * O(log n). Returns 0, or -ENOENT when the handle is not queued. */
int timer_heap_cancel(struct timer_heap *h, uint64_t handle, void **payload);

/* The earliest timer's deadline and payload (either pointer may be NULL).
 * O(1). Returns 0, or -ENOENT when empty. */
int timer_heap_peek(const struct timer_heap *h, uint64_t *deadline, void **payload);

/* Remove the earliest timer, reporting it like peek. O(log n). Returns 0, or
 * -ENOENT when empty. */
int timer_heap_pop(struct timer_heap *h, uint64_t *deadline, void **payload);

/* Number of queued timers. */
static inline uint32_t timer_heap_count(const struct timer_heap *h)
{
	return h->n;
}

#endif
