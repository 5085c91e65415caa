/* SPDX-License-Identifier: MIT */
/*
 * Taking a block from a pool and giving it back (msg_pool.c; the pools'
 * layout is msg.h): the shard's local pool on the hot path, inline, with
 * its slow paths, and the foreign pools that non-shard threads post from.
 */
#ifndef VZ_CORE_MSG_POOL_H
#define VZ_CORE_MSG_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <veloz.h>

#include "core/msg.h"
#include "core/shard.h"

/* msg_pool.c */
int vz__pool_init(struct vz__pool *p);
void vz__pool_fini(struct vz__pool *p);
int vz__fpool_init(struct vz__fpool_class *fc, unsigned cls);
void vz__fpool_fini(struct vz__fpool_class *fc);
struct vz_msg *vz__fpool_alloc(vz_runtime *rt, struct vz__shard *target, size_t len);
void vz__fpool_give_back(struct vz__shard *sh);			/* push fpool_returns home */
void vz__fpool_put(struct vz__shard *target, struct vz_msg *m); /* unused block back */

/* Size class for a block of `bytes`, or -1 when larger than the largest. */
static inline int vz__size_class(size_t bytes)
{
	unsigned c;

	if (bytes <= 64)
		return 0;
	c = 64u - (unsigned)__builtin_clzll((unsigned long long)(bytes - 1)) - 6u;
	return c < VZ__NCLASSES ? (int)c : -1;
}

/* Slow path of vz__pool_alloc(): add a slab to class cls. 0 or VZ_ENOMEM. */
int vz__pool_refill(struct vz__shard *sh, unsigned cls);

static inline void *vz__pool_alloc(struct vz__shard *sh, unsigned cls)
{
	void **b = sh->pool.free[cls];

	if (__builtin_expect(!b, 0)) {
		if (vz__pool_refill(sh, cls) < 0)
			return NULL;
		b = sh->pool.free[cls];
	}
	sh->pool.free[cls] = *b;
	return b;
}

static inline void vz__pool_free(struct vz__shard *sh, void *block, unsigned cls)
{
	void **b = block;

	*b = sh->pool.free[cls];
	sh->pool.free[cls] = b;
}

/* A message from sh's own pool with room for len payload bytes, or NULL. */
static inline struct vz_msg *vz__msg_alloc(struct vz__shard *sh, size_t len)
{
	int cls = vz__size_class(sizeof(struct vz_msg) + len);
	struct vz_msg *m;

	if (cls < 0)
		return NULL;
	m = vz__pool_alloc(sh, (unsigned)cls);
	if (!m)
		return NULL;
	m->owner = (uint16_t)sh->id;
	m->cls = (uint8_t)cls;
	m->flags = 0;
	return m;
}

void vz__msg_release_slow(struct vz__shard *sh, struct vz_msg *m);

/* Give a message's memory back: own pool directly, anything else through
 * vz__msg_release_slow() (foreign return list or the owner's return path).
 * Owner thread of sh. */
static inline void vz__msg_release(struct vz__shard *sh, struct vz_msg *m)
{
	if (__builtin_expect(m->owner == sh->id, 1))
		vz__pool_free(sh, m, m->cls);
	else
		vz__msg_release_slow(sh, m);
}

#endif
