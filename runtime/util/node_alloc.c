// SPDX-License-Identifier: MIT
/*
 * Node-placed allocation (node_alloc.h): libnuma's numa_alloc_onnode()
 * when a node is asked for and libnuma works here, aligned_alloc() with
 * first-touch placement otherwise, and the matching free.
 */
#include "util/node_alloc.h"

#include <stdint.h>
#include <stdlib.h>

#include <numa.h>

#include <veloz/error.h>

/* The smallest page Linux has; numa_alloc_onnode() aligns to the page. */
#define MIN_PAGE 4096u

int vz__node_alloc(size_t bytes, size_t align, int node, void **p, bool *on_node)
{
	*p = NULL;
	*on_node = false;
	if (bytes == 0 || align == 0 || (align & (align - 1)) != 0 || align > MIN_PAGE)
		return VZ_EINVAL;
	if (node >= 0 && numa_available() >= 0) {
		if (node > numa_max_node())
			return VZ_EINVAL;
		*p = numa_alloc_onnode(bytes, node); /* mmap + mbind: page-aligned, zeroed */
		if (*p == NULL)
			return VZ_ENOMEM;
		*on_node = true;
		return 0;
	}
	/* aligned_alloc() wants the size to be a multiple of the alignment. */
	if (bytes > SIZE_MAX - (align - 1))
		return VZ_ENOMEM;
	*p = aligned_alloc(align, (bytes + align - 1) & ~(align - 1));
	return *p == NULL ? VZ_ENOMEM : 0;
}

void vz__node_free(void *p, size_t bytes, bool on_node)
{
	if (p == NULL)
		return;
	if (on_node)
		numa_free(p, bytes);
	else
		free(p);
}
