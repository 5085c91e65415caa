/* SPDX-License-Identifier: MIT */
/*
 * Test-only views of an SPSC ring's indices (runtime/queue/spsc_ring.h).
 * The runtime never asks a ring how full it is (a shard learns that an
 * incoming ring has work from its doorbell, core/xshard/), so these
 * queries live with the tests that check the ring's state from outside.
 */
#ifndef VZ_TEST_SPSC_PEEK_H
#define VZ_TEST_SPSC_PEEK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue/spsc_ring.h"

/*
 * True when the ring held no item at the moment tail was read. Any thread.
 * head is read first and tail second, both acquire so the two loads stay in
 * that order: head only grows up to tail, so head == tail at the second
 * load means every item published by then had been taken. The tail load
 * pairs with the release store of tail in vz__spsc_push_batch(), which is
 * what the sleep-protocol handshake in the stress test relies on.
 */
static inline bool spsc_peek_empty(const struct vz__spsc *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	return head == tail;
}

/* Free slots right now. Only while no other thread uses the ring (the
 * relaxed loads read the single-threaded test's own stores). */
static inline uint32_t spsc_peek_free(const struct vz__spsc *r)
{
	uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

	return r->capacity - (tail - head);
}

#endif
