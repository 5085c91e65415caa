// SPDX-License-Identifier: MIT
/*
 * Setup and teardown of the SPSC ring (spsc_ring.h): validating the
 * capacity and allocating the slot array on the consumer's NUMA node when
 * asked to. The hot paths are inline in the header.
 */
#include "queue/spsc_ring.h"

#include <stdlib.h>

#include <numa.h>

#include <veloz/error.h>

/* Round up to a multiple of the cache line (aligned_alloc wants the size to
 * be a multiple of the alignment). */
static size_t round_to_line(size_t n)
{
	return (n + VZ__SPSC_LINE - 1) & ~(size_t)(VZ__SPSC_LINE - 1);
}

int vz__spsc_init(struct vz__spsc *r, uint32_t capacity, int numa_node)
{
	size_t bytes;
	void **slots;
	bool use_numa = false;

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

	bytes = round_to_line((size_t)capacity * sizeof(void *));
	if (numa_node >= 0 && numa_available() >= 0) {
		if (numa_node > numa_max_node())
			return VZ_EINVAL;
		use_numa = true;
	}
	if (use_numa)
		slots = numa_alloc_onnode(bytes, numa_node); /* page-aligned, mmap */
	else
		slots = aligned_alloc(VZ__SPSC_LINE, bytes);
	if (slots == NULL)
		return VZ_ENOMEM;

	/* The slots are left unwritten: the producer's first writes fault the
	 * pages in (on the requested node with libnuma, first-touch
	 * otherwise), and nothing reads a slot before it was written. */
	r->slots = slots;
	r->mask = capacity - 1;
	r->capacity = capacity;
	r->alloc_bytes = bytes;
	r->numa = use_numa;
	return 0;
}

void vz__spsc_fini(struct vz__spsc *r)
{
	if (r->slots != NULL) {
		if (r->numa)
			numa_free(r->slots, r->alloc_bytes);
		else
			free(r->slots);
	}
	r->slots = NULL;
	r->mask = 0;
	r->capacity = 0;
	r->alloc_bytes = 0;
	r->numa = false;
}
