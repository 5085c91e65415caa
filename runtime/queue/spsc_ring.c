// SPDX-License-Identifier: MIT
/*
 * Setup and teardown of the SPSC ring (spsc_ring.h): validating the
 * capacity and allocating the slot array on the consumer's NUMA node when
 * asked to. The hot paths are inline in the header.
 */
#include "queue/spsc_ring.h"

#include <veloz/error.h>

#include "util/node_alloc.h"

int vz__spsc_init(struct vz__spsc *r, uint32_t capacity, int numa_node)
{
	size_t bytes;
	void *mem;
	bool on_node;
	int rc;

	/* A failed init leaves a ring that fini accepts and that reports
	 * itself empty and full (capacity 0), never a wild pointer. */
	atomic_init(&r->tail, 0);
	atomic_init(&r->head, 0);
	r->head_cache = 0;
	r->tail_cache = 0;
	r->slots = NULL;
	r->mask = 0;
	r->capacity = 0;
	r->alloc_bytes = 0;
	r->numa = false;

	if (capacity < 2 || capacity > VZ__SPSC_MAX_CAPACITY || (capacity & (capacity - 1)) != 0)
		return VZ_EINVAL;

	bytes = (size_t)capacity * sizeof(void *);
	rc = vz__node_alloc(bytes, VZ__SPSC_LINE, numa_node, &mem, &on_node);
	if (rc < 0)
		return rc;

	/* The slots are left unwritten: the producer's first writes fault the
	 * pages in (on the requested node with libnuma, first-touch
	 * otherwise), and nothing reads a slot before it was written. */
	r->slots = mem;
	r->mask = capacity - 1;
	r->capacity = capacity;
	r->alloc_bytes = bytes;
	r->numa = on_node;
	return 0;
}

void vz__spsc_fini(struct vz__spsc *r)
{
	vz__node_free(r->slots, r->alloc_bytes, r->numa);
	r->slots = NULL;
	r->mask = 0;
	r->capacity = 0;
	r->alloc_bytes = 0;
	r->numa = false;
}
