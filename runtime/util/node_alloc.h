/* SPDX-License-Identifier: MIT */
/*
 * Memory placed on a NUMA node, for the buffers that one thread writes and
 * another reads at a high rate (the slot arrays of the rings: they belong
 * on the consumer's node). One place decides how such memory is got and,
 * from what it remembers, how it is given back.
 *
 * Contract of vz__node_alloc(bytes, align, node, &p, &on_node):
 * - node >= 0 and libnuma works here (numa_available() >= 0): node must be
 *   a node of this machine (<= numa_max_node()), else VZ_EINVAL and nothing
 *   is allocated. The memory comes from numa_alloc_onnode(): an mmap bound
 *   to the node (mbind), page-aligned (so any align up to the page size
 *   holds) and zeroed; *on_node = true.
 * - otherwise (node < 0: no placement asked; or no NUMA support, where the
 *   machine has one node and any node number is accepted): aligned_alloc()
 *   of bytes rounded up to align, contents unspecified; *on_node = false.
 *   Its pages land, by the kernel's first-touch policy, on the node of the
 *   CPU that first writes them, so a caller that cares writes them first
 *   from the owning thread.
 * - bytes must be > 0 and align a power of two no larger than the page
 *   size (4096), else VZ_EINVAL.
 * Returns 0, VZ_EINVAL or VZ_ENOMEM; on failure *p is NULL and *on_node
 * false. Any thread.
 *
 * vz__node_free(p, bytes, on_node) gives it back: bytes and on_node must
 * be those of the vz__node_alloc() that returned p (numa_free() needs the
 * size; free() does not). NULL p is a no-op. Any thread.
 *
 * Not used by runtime/pool/, whose node memory goes through a table of
 * replaceable functions (pool.h) so its tests can declare machines the
 * host does not have.
 */
#ifndef VZ_NODE_ALLOC_H
#define VZ_NODE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

int vz__node_alloc(size_t bytes, size_t align, int node, void **p, bool *on_node);
void vz__node_free(void *p, size_t bytes, bool on_node);

#endif
