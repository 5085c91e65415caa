/* SPDX-License-Identifier: MIT */
/*
 * Test-only view of a slot ring (runtime/queue/slot_ring.h) from a thread
 * that is neither its producer nor its consumer.
 */
#ifndef VZ_TEST_SLOT_PEEK_H
#define VZ_TEST_SLOT_PEEK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "queue/slot_ring.h"

/*
 * Has the producer published its n-th item (index n - 1, n >= 1)? True
 * from its publish until the slot is reused a lap later. Any thread.
 * Acquire: pairs with the release store of seq in vz__slot_publish(), as
 * the consumer's load does.
 */
static inline bool slot_published(struct vz__slot_ring *r, uint32_t n)
{
	return atomic_load_explicit(&r->slots[(n - 1) & r->mask].seq, memory_order_acquire) == n;
}

#endif
