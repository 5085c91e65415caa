// SPDX-License-Identifier: MIT
/*
 * Setup and teardown of the slot ring (slot_ring.h): validating the
 * capacity, allocating the slots on the consumer's NUMA node when asked
 * to, and zeroing every sequence number (the invariant needs "never
 * written" to read as 0). The hot paths are inline in the header.
 */
#include "queue/slot_ring.h"

#include <string.h>

#include <veloz/error.h>

#include "util/node_alloc.h"

int vz__slot_ring_init(struct vz__slot_ring *r, uint32_t capacity, int numa_node)
{
	size_t bytes;
	void *mem;
	bool on_node;
	struct vz__slot *slots;
	int rc;

	memset(r, 0, sizeof *r);
	atomic_init(&r->head, 0);
	atomic_init(&r->watching, 0);
	if (capacity < 2 || capacity > VZ__SLOT_MAX_CAPACITY || (capacity & (capacity - 1)) != 0)
		return VZ_EINVAL;
	bytes = (size_t)capacity * sizeof(struct vz__slot);
	rc = vz__node_alloc(bytes, VZ__SLOT_BYTES, numa_node, &mem, &on_node);
	if (rc < 0)
		return rc;
	slots = mem;
	/* seq = 0 in every slot: "never written" (slot_ring.h). Written by
	 * this thread before the ring is shared; the thread start that
	 * shares it publishes these stores. */
	for (uint32_t i = 0; i < capacity; i++)
		atomic_init(&slots[i].seq, 0);
	r->slots = slots;
	r->mask = capacity - 1;
	r->capacity = capacity;
	r->alloc_bytes = bytes;
	r->numa = on_node;
	return 0;
}

void vz__slot_ring_fini(struct vz__slot_ring *r)
{
	vz__node_free(r->slots, r->alloc_bytes, r->numa);
	r->slots = NULL;
	r->mask = 0;
	r->capacity = 0;
	r->alloc_bytes = 0;
	r->numa = false;
}
