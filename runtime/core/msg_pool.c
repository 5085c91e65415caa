// SPDX-License-Identifier: MIT
/*
 * Message and state memory. Two kinds of pool, both by size class:
 *
 * - A shard's local pool: free lists owned by the shard, refilled from
 *   slabs. The shard thread touches a slab first, so with the kernel's
 *   first-touch policy its pages land on the shard's NUMA node. Blocks
 *   travel to other shards inside messages but always come home to be
 *   freed (the return path, xshard/), so no lock or atomic is ever needed.
 *
 * - A shard's foreign pool: blocks that threads which are not shards take
 *   to post to this shard (vz_post from an engine thread or a worker). Many
 *   threads pop, the shard pushes back after delivery, so it is a lock-free
 *   stack; see the comments at the atomics for its ABA story.
 *
 * Steady state allocates nothing: slabs are only added when a class runs
 * dry, and each addition is counted (stats pool_refills).
 */
#include <stdlib.h>
#include <string.h>

#include "core/msg.h"
#include "core/msg_pool.h"
#include "core/runtime.h"
#include "core/shard.h"
#include "core/xshard/xshard.h"
#include "util/fault.h"

#define SLAB_BYTES (64u * 1024u)

struct vz__slab {
	struct vz__slab *next;
	size_t bytes;
	alignas(64) unsigned char mem[];
};

int vz__pool_init(struct vz__pool *p)
{
	memset(p, 0, sizeof *p);
	return 0;
}

void vz__pool_fini(struct vz__pool *p)
{
	struct vz__slab *s = p->slabs, *next;

	for (; s; s = next) {
		next = s->next;
		free(s);
	}
	memset(p, 0, sizeof *p);
}

/* Slow path: carve a new slab into class cls's free list. */
int vz__pool_refill(struct vz__shard *sh, unsigned cls)
{
	struct vz__pool *p = &sh->pool;
	size_t block = 64u << cls;
	size_t bytes = block * 4 > SLAB_BYTES ? block * 4 : SLAB_BYTES;
	struct vz__slab *s;
	size_t n;

	if (VZ_FAULT(VZ_FAULT_POOL_REFILL))
		return VZ_ENOMEM;
	s = aligned_alloc(64, sizeof *s + bytes);
	if (!s)
		return VZ_ENOMEM;
	s->bytes = bytes;
	s->next = p->slabs;
	p->slabs = s;
	n = bytes / block;
	for (size_t i = n; i-- > 0;) {
		void **b = (void **)(s->mem + i * block);
		*b = p->free[cls];
		p->free[cls] = b;
	}
	p->refills++;
	VZ__STAT_ADD(sh, pool_refills, 1);
	return 0;
}

/* ---- foreign pool ---------------------------------------------------- */

int vz__fpool_init(struct vz__fpool_class *fc, unsigned cls)
{
	size_t block = 64u << cls;

	atomic_init(&fc->head, 0);
	for (unsigned i = 0; i < VZ__FPOOL_MAX_CHUNKS; i++)
		atomic_init(&fc->chunks[i], NULL);
	atomic_init(&fc->nchunks, 0);
	fc->per_chunk = (uint32_t)(SLAB_BYTES / block);
	if (fc->per_chunk < 4)
		fc->per_chunk = 4;
	return pthread_mutex_init(&fc->grow_lock, NULL) ? VZ_ENOMEM : 0;
}

void vz__fpool_fini(struct vz__fpool_class *fc)
{
	uint32_t n = atomic_load_explicit(&fc->nchunks, memory_order_relaxed);

	for (uint32_t i = 0; i < n; i++)
		free(atomic_load_explicit(&fc->chunks[i], memory_order_relaxed));
	pthread_mutex_destroy(&fc->grow_lock);
}

static struct vz_msg *fpool_block(struct vz__fpool_class *fc, unsigned cls, uint32_t index)
{
	/* Acquire: pairs with the release store of the chunk pointer in
	 * fpool_grow(). An index can only be seen after its chunk was
	 * published, since blocks are pushed after that store. */
	unsigned char *chunk =
	    atomic_load_explicit(&fc->chunks[index / fc->per_chunk], memory_order_acquire);

	return (struct vz_msg *)(chunk + (size_t)(index % fc->per_chunk) * (64u << cls));
}

/*
 * Push the chain first..last (linked through fnext, last's link set here)
 * onto the stack. Any thread. Release on success: pairs with the acquire
 * in fpool_pop(), so the popper sees the links written here (and the shard's
 * last use of the blocks happens-before their reuse).
 */
static void fpool_push_chain(struct vz__fpool_class *fc, uint32_t first, struct vz_msg *last)
{
	uint64_t old = atomic_load_explicit(&fc->head, memory_order_relaxed);
	uint64_t new;

	do {
		atomic_store_explicit(&last->fnext, (uint32_t)old, memory_order_relaxed);
		new = ((old >> 32) + 1) << 32 | (uint64_t)(first + 1);
	} while (!atomic_compare_exchange_weak_explicit(&fc->head, &old, new, memory_order_release,
							memory_order_relaxed));
}

/*
 * Pop one block or return NULL. The tag in the high half changes on every
 * push and pop, so a CAS that read a block's link, lost the block to
 * another thread, and saw the same index come back on top fails instead of
 * installing a stale link (ABA). The racy read of fnext itself is safe:
 * chunks are never freed while the runtime lives.
 */
static struct vz_msg *fpool_pop(struct vz__fpool_class *fc, unsigned cls)
{
	/* Acquire: pairs with the release CAS in fpool_push_chain(). */
	uint64_t old = atomic_load_explicit(&fc->head, memory_order_acquire);
	struct vz_msg *m;
	uint64_t new;

	for (;;) {
		uint32_t idx = (uint32_t)old;

		if (idx == 0)
			return NULL;
		m = fpool_block(fc, cls, idx - 1);
		new =
		    ((old >> 32) + 1) << 32 | atomic_load_explicit(&m->fnext, memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(
			&fc->head, &old, new, memory_order_acquire, memory_order_acquire))
			return m;
	}
}

/* Slow path, any thread: add a chunk, keep one block, push the rest. */
static struct vz_msg *fpool_grow(vz_runtime *rt, struct vz__fpool_class *fc, unsigned cls)
{
	size_t block = 64u << cls;
	struct vz_msg *mine = NULL;
	unsigned char *chunk;
	uint32_t n, base;

	pthread_mutex_lock(&fc->grow_lock);
	/* Another thread may have grown it while we waited. */
	mine = fpool_pop(fc, cls);
	if (mine)
		goto out;
	n = atomic_load_explicit(&fc->nchunks, memory_order_relaxed);
	if (n == VZ__FPOOL_MAX_CHUNKS || VZ_FAULT(VZ_FAULT_POOL_REFILL))
		goto out;
	chunk = aligned_alloc(64, (size_t)fc->per_chunk * block);
	if (!chunk)
		goto out;
	/* Release: pairs with the acquire in fpool_block(). */
	atomic_store_explicit(&fc->chunks[n], chunk, memory_order_release);
	atomic_store_explicit(&fc->nchunks, n + 1, memory_order_release);
	atomic_fetch_add_explicit(&rt->foreign_refills, 1, memory_order_relaxed);
	base = n * fc->per_chunk;
	for (uint32_t i = 0; i < fc->per_chunk; i++) {
		struct vz_msg *b = (struct vz_msg *)(chunk + (size_t)i * block);

		b->findex = base + i;
		if (i >= 1 && i + 1 < fc->per_chunk)
			atomic_store_explicit(&b->fnext, base + i + 2, memory_order_relaxed);
	}
	mine = (struct vz_msg *)chunk;
	if (fc->per_chunk > 1)
		fpool_push_chain(fc, base + 1,
				 (struct vz_msg *)(chunk + (size_t)(fc->per_chunk - 1) * block));
out:
	pthread_mutex_unlock(&fc->grow_lock);
	return mine;
}

struct vz_msg *vz__fpool_alloc(vz_runtime *rt, struct vz__shard *target, size_t len)
{
	int cls = vz__size_class(sizeof(struct vz_msg) + len);
	struct vz__fpool_class *fc;
	struct vz_msg *m;

	if (cls < 0)
		return NULL;
	fc = &target->fpool[cls];
	m = fpool_pop(fc, (unsigned)cls);
	if (__builtin_expect(!m, 0))
		m = fpool_grow(rt, fc, (unsigned)cls);
	if (!m)
		return NULL;
	m->owner = (uint16_t)(target->id | VZ__OWNER_FOREIGN);
	m->cls = (uint8_t)cls;
	m->flags = 0;
	return m;
}

/* A block taken by vz__fpool_alloc() that will not be posted after all
 * (the post was refused): straight back onto its stack. Any thread. */
void vz__fpool_put(struct vz__shard *target, struct vz_msg *m)
{
	fpool_push_chain(&target->fpool[m->cls], m->findex, m);
}

/* Owner of sh: push every foreign block it has finished with back onto its
 * foreign stacks, one CAS per class. */
void vz__fpool_give_back(struct vz__shard *sh)
{
	for (unsigned c = 0; c < VZ__NCLASSES; c++) {
		struct vz__msg_list *l = &sh->fpool_returns[c];
		struct vz__fpool_class *fc = &sh->fpool[c];
		uint32_t first = 0;
		struct vz_msg *m, *prev = NULL;

		if (!l->head)
			continue;
		while ((m = vz__list_pop(l))) {
			if (prev)
				atomic_store_explicit(&prev->fnext, m->findex + 1,
						      memory_order_relaxed);
			else
				first = m->findex;
			prev = m;
		}
		fpool_push_chain(fc, first, prev);
	}
	sh->fpool_pending = 0;
}

void vz__msg_release_slow(struct vz__shard *sh, struct vz_msg *m)
{
	unsigned owner = m->owner & ~VZ__OWNER_FOREIGN;

	if (m->owner & VZ__OWNER_FOREIGN) {
		/* Foreign blocks are freed by the shard they were posted to,
		 * which is always the one releasing them. */
		vz__list_push(&sh->fpool_returns[m->cls], m);
		sh->fpool_pending++;
		if (sh->fpool_returns[m->cls].len >= 64)
			vz__fpool_give_back(sh);
	} else if (owner == sh->id) {
		vz__pool_free(sh, m, m->cls);
	} else {
		vz__outbox_push(sh, owner, m, true);
	}
}
