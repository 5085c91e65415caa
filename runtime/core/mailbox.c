// SPDX-License-Identifier: MIT
/*
 * The slow paths of the cell mailbox (mailbox.h): where segments come
 * from, starting a new segment, and dead-lettering what a stopped actor
 * leaves in its mailbox.
 *
 * Segments are carved from chunks the shard maps and keeps until it is
 * destroyed; steady state maps nothing (a chunk is counted in the
 * pool_refills stat like a message slab). Chunks double from 64 KiB up to
 * 2 MiB. A 2 MiB chunk is 2 MiB-aligned and asks for transparent huge
 * pages: a flood that queues a million messages (Savina's Counting) then
 * takes 16 page faults for its 32 MiB of cells instead of 8192, which on
 * the development VM was the largest single cost of such a flood. Where
 * huge pages are off the advice is a no-op.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"
#include "util/fault.h"

#define CHUNK_MIN (64u * 1024u)
#define CHUNK_MAX (2u * 1024u * 1024u)

struct vz__seg_chunk {
	struct vz__seg_chunk *next;
	void *base;
	size_t bytes;
};

/* Never written: only its address is used, as every end of an empty
 * mailbox, so vz__mbox_reserve() finds no room and the first push goes to
 * vz__mbox_grow(). */
static struct vz__cell nil_cell;
struct vz__cell *const vz__mbox_nil = &nil_cell;

/* bytes of memory aligned to `align` (a power of two, >= the page size). */
static void *map_aligned(size_t bytes, size_t align)
{
	size_t span = bytes + align;
	unsigned char *p =
	    mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t start, end;

	if (p == MAP_FAILED)
		return NULL;
	start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	end = start + bytes;
	if (start > (uintptr_t)p)
		munmap(p, start - (uintptr_t)p);
	if ((uintptr_t)p + span > end)
		munmap((void *)end, (uintptr_t)p + span - end);
	return (void *)start;
}

int vz__seg_refill(struct vz__seg_cache *sc)
{
	size_t bytes = sc->next_chunk ? sc->next_chunk : CHUNK_MIN;
	struct vz__seg_chunk *ch;
	unsigned char *mem;

	if (VZ_FAULT(VZ_FAULT_POOL_REFILL))
		return VZ_ENOMEM;
	ch = malloc(sizeof *ch);
	if (!ch)
		return VZ_ENOMEM;
	mem = map_aligned(bytes, bytes >= CHUNK_MAX ? CHUNK_MAX : VZ__SEG_BYTES);
	if (!mem) {
		free(ch);
		return VZ_ENOMEM;
	}
#ifdef MADV_HUGEPAGE
	if (bytes >= CHUNK_MAX)
		(void)madvise(mem, bytes, MADV_HUGEPAGE); /* advice only */
#endif
	ch->base = mem;
	ch->bytes = bytes;
	ch->next = sc->chunks;
	sc->chunks = ch;
	/* Pushed in reverse so the first segments handed out are the first
	 * of the chunk: a flood then walks the chunk in address order. */
	for (size_t off = bytes; off >= VZ__SEG_BYTES; off -= VZ__SEG_BYTES)
		vz__seg_free(sc, mem + off - VZ__SEG_BYTES, VZ__SEG_BYTES);
	sc->next_chunk = bytes * 2 <= CHUNK_MAX ? bytes * 2 : CHUNK_MAX;
	sc->refills++;
	if (sc->refill_stat)
		vz__counter_add(sc->refill_stat, 1);
	return 0;
}

void vz__seg_cache_fini(struct vz__seg_cache *sc)
{
	struct vz__seg_chunk *ch, *next;
	_Atomic uint64_t *stat = sc->refill_stat;

	for (ch = sc->chunks; ch; ch = next) {
		next = ch->next;
		munmap(ch->base, ch->bytes);
		free(ch);
	}
	memset(sc, 0, sizeof *sc);
	sc->refill_stat = stat;
}

/* A free segment of `bytes`, or NULL. Small ones are cut from a large one
 * when none is free (and stay small). */
static void *seg_take(struct vz__seg_cache *sc, uint32_t bytes)
{
	unsigned k = bytes == VZ__SEG_BYTES;
	unsigned char *seg;

	if (!sc->free[k]) {
		if (!sc->free[1] && vz__seg_refill(sc) < 0)
			return NULL;
		if (!k) {
			seg = sc->free[1];
			sc->free[1] = *(void **)seg;
			for (uint32_t off = VZ__SEG_BYTES; off >= VZ__SEG_SMALL;
			     off -= VZ__SEG_SMALL)
				vz__seg_free(sc, seg + off - VZ__SEG_SMALL, VZ__SEG_SMALL);
		}
	}
	seg = sc->free[k];
	sc->free[k] = *(void **)seg;
	return seg;
}

struct vz__cell *vz__mbox_grow(struct vz__seg_cache *sc, struct vz__mbox *mb, unsigned n)
{
	/* Small to start with (one message is the common case), large once
	 * the mailbox grows or the message needs more cells. */
	uint32_t bytes =
	    mb->seg_bytes || n > VZ__SEG_SMALL / VZ__CELL_BYTES - 1 ? VZ__SEG_BYTES : VZ__SEG_SMALL;
	struct vz__cell *first = seg_take(sc, bytes);

	if (!first)
		return NULL;
	if (!mb->seg_bytes) {
		mb->head = mb->tail = first;
	} else {
		/* The reader follows the link once it has read every message
		 * before it, then gives this segment back. */
		mb->tail->kind = VZ__CELL_LINK;
		mb->tail->type = mb->seg_bytes;
		mb->tail->u.next = first;
		mb->tail = first;
	}
	mb->end = first + bytes / VZ__CELL_BYTES - 1;
	mb->seg_bytes = bytes;
	return first;
}

/* Owner thread of sh; a is no longer live. Every message left in a's
 * mailbox becomes a dead letter (deliver.c's rules: counted, hooked,
 * bounded-mailbox count given back), and its segments go back. */
void vz__mbox_dead_letter_all(struct vz__shard *sh, struct vz_actor *a, int reason)
{
	vz_runtime *rt = sh->rt;
	vz_ref to = vz__make_ref(sh->id, a->slot, a->gen);

	while (!vz__mbox_empty(&a->mbox)) {
		struct vz__cell *c = vz__mbox_pop(&sh->segs, &a->mbox);

		if (c->kind == VZ__CELL_BLOCK) {
			vz__dead_letter(sh, c->u.msg, reason);
			continue;
		}
		if (c->flags & VZ__MSG_INFLIGHT)
			/* Relaxed: a pure counter (vz__bounded_admit()). */
			atomic_fetch_sub_explicit(&a->inflight, 1, memory_order_relaxed);
		VZ__STAT_ADD(sh, dead_letters, 1);
		if (rt->cfg.dead_letter)
			rt->cfg.dead_letter(rt->cfg.dead_letter_ctx, to.id, c->type, c->data,
					    c->len, reason);
	}
	vz__mbox_settle(&sh->segs, &a->mbox);
	while (a->spill.head)
		vz__dead_letter(sh, vz__list_pop(&a->spill), reason);
	a->flags &= (uint16_t)~VZ__ACTOR_SPILL;
}
