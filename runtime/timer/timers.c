// SPDX-License-Identifier: MIT
/*
 * Per-shard actor timer table: generation-checked handles over slab slots,
 * each slot an entry of the shard's timer wheel. See timers.h for the
 * contract and the expiry protocol with the core.
 */
#include "timer/timers.h"

#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <veloz/error.h>

#include "util/fault.h"

enum slot_state {
	SLOT_FREE = 0, /* on the free list */
	SLOT_ARMED,    /* in the wheel (one-shot not yet fired, or periodic) */
	SLOT_PENDING,  /* one-shot fired; its message awaits deliverable() */
};

/* A slot's state and generation live in its wheel entry's embedder bytes
 * (the padding it would otherwise have), which keeps a slot at 64 bytes. */
#define STATE(s) ((s)->entry.user16)
#define GEN(s)	 ((s)->entry.user32)

/* How many arms ahead arm prefetches the slot it will hand out. */
#define ARM_PREFETCH 16u

/* The handle of live slot `s`: its generation and index. */
static inline uint64_t make_handle(const struct vz__timer_slot *s)
{
	return (uint64_t)GEN(s) << 32 | s->index;
}

/* The slot embedding wheel entry `e`. */
static inline struct vz__timer_slot *slot_of_entry(struct vz__wheel_entry *e)
{
	return (struct vz__timer_slot *)((char *)e - offsetof(struct vz__timer_slot, entry));
}

/* Whether live slot `s` belongs to a life of its owner that has ended. */
static inline bool slot_stale(const struct vz__timer_slot *s)
{
	return s->life != s->owner->life;
}

/* The live slot named by `handle`, or NULL if the handle is stale. */
static struct vz__timer_slot *lookup(const struct vz__timers *t, uint64_t handle)
{
	uint32_t index = (uint32_t)handle, gen = (uint32_t)(handle >> 32);
	struct vz__timer_slot *s;

	if (index / VZ__TIMERS_CHUNK >= t->nchunks)
		return NULL;
	s = &t->chunks[index / VZ__TIMERS_CHUNK][index % VZ__TIMERS_CHUNK];
	if (STATE(s) == SLOT_FREE || GEN(s) != gen)
		return NULL;
	return s;
}

int vz__timers_init(struct vz__timers *t, uint64_t tick_ns, uint64_t now_ns)
{
	int rc;

	if (!t)
		return VZ_EINVAL;
	rc = vz__wheel_init(&t->wheel, tick_ns, now_ns);
	if (rc < 0)
		return rc;
	t->chunks = NULL;
	t->nchunks = 0;
	t->chunks_cap = 0;
	t->arena_next = NULL;
	t->arena_left = 0;
	t->free_idx = NULL;
	t->nfree = 0;
	t->live = 0;
	t->chunk_allocs = 0;
	t->retired = 0;
	t->stale = 0;
	t->stale_released = 0;
	t->sweeps = 0;
	return 0;
}

void vz__timers_fini(struct vz__timers *t)
{
	uint32_t i;

	vz__wheel_fini(&t->wheel);
	for (i = 0; i < t->nchunks; i++)
		/* An arena is freed through its first chunk, its base. */
		if (i < VZ__TIMERS_ARENA_FROM ||
		    (i - VZ__TIMERS_ARENA_FROM) % VZ__TIMERS_ARENA_CHUNKS == 0)
			free(t->chunks[i]);
	free(t->chunks);
	free(t->free_idx);
	t->chunks = NULL;
	t->nchunks = 0;
	t->chunks_cap = 0;
	t->arena_next = NULL;
	t->arena_left = 0;
	t->free_idx = NULL;
	t->nfree = 0;
	t->live = 0;
	t->stale = 0;
}

void vz__timer_owner_init(struct vz__timer_owner *o, uint32_t life)
{
	o->life = life;
	o->count = 0;
}

/* Add one chunk of free slots. The slow path of arm; 0 or VZ_ENOMEM. */
static int grow(struct vz__timers *t)
{
	struct vz__timer_slot *chunk;
	uint32_t *stack, i;

	if (t->nchunks >= UINT32_MAX / VZ__TIMERS_CHUNK)
		return VZ_ENOMEM; /* indices must fit in 32 bits */
	if (VZ_FAULT(VZ_FAULT_POOL_REFILL))
		return VZ_ENOMEM;
	if (t->nchunks == t->chunks_cap) {
		/* Double the chunk table and the free-index stack together:
		 * the stack can then hold every slot, so release() never
		 * grows it. */
		uint32_t cap = t->chunks_cap ? t->chunks_cap * 2 : 8;
		struct vz__timer_slot **c = realloc(t->chunks, cap * sizeof *c);

		if (!c)
			return VZ_ENOMEM;
		t->chunks = c;
		stack = realloc(t->free_idx, (size_t)cap * VZ__TIMERS_CHUNK * sizeof *stack);
		if (!stack)
			return VZ_ENOMEM; /* chunks_cap unchanged: retried next time */
		t->free_idx = stack;
		t->chunks_cap = cap;
	}
	if (t->nchunks < VZ__TIMERS_ARENA_FROM) {
		/* Line-aligned, so each slot is exactly one cache line. */
		chunk = aligned_alloc(64, VZ__TIMERS_CHUNK * sizeof *chunk);
		if (!chunk)
			return VZ_ENOMEM;
	} else {
		/*
		 * A large table: cancel and expiry touch slots in random
		 * order, and with 4 KiB pages nearly every touch of a table of
		 * a million slots (64 MiB) also misses the TLB. Chunks then
		 * come from 2 MiB arenas, 2 MiB aligned, with MADV_HUGEPAGE:
		 * where transparent huge pages are enabled (even in "madvise"
		 * mode) one TLB entry covers 32 Ki slots. Best effort: without
		 * huge pages this is ordinary memory. The arena is carved in
		 * order, so chunk ARENA_FROM + k * ARENA_CHUNKS is its base
		 * (fini frees it there). Its first touch may commit the whole
		 * 2 MiB: at most one arena beyond the slots in use.
		 */
		if (!t->arena_left) {
			size_t sz =
			    (size_t)VZ__TIMERS_ARENA_CHUNKS * VZ__TIMERS_CHUNK * sizeof *chunk;
			struct vz__timer_slot *arena = aligned_alloc(sz, sz);

			if (!arena)
				return VZ_ENOMEM;
			(void)madvise(arena, sz, MADV_HUGEPAGE);
			t->arena_next = arena;
			t->arena_left = VZ__TIMERS_ARENA_CHUNKS;
		}
		chunk = t->arena_next;
		t->arena_next += VZ__TIMERS_CHUNK;
		t->arena_left--;
	}
	/* Push in reverse so the lowest index is handed out first. */
	for (i = VZ__TIMERS_CHUNK; i-- > 0;) {
		struct vz__timer_slot *s = &chunk[i];

		vz__wheel_entry_init(&s->entry);
		s->owner = NULL;
		s->life = 0;
		s->period_ns = 0;
		s->tag = 0;
		GEN(s) = 1;
		s->index = t->nchunks * VZ__TIMERS_CHUNK + i;
		STATE(s) = SLOT_FREE;
		t->free_idx[t->nfree++] = s->index;
	}
	t->chunks[t->nchunks++] = chunk;
	t->chunk_allocs++;
	return 0;
}

/* Return a live slot (not in the wheel any more) to the free list; its
 * handle goes stale. */
static void release(struct vz__timers *t, struct vz__timer_slot *s)
{
	if (slot_stale(s))
		t->stale--; /* its life's count moved to t->stale at cancel_owner */
	else
		s->owner->count--;
	STATE(s) = SLOT_FREE;
	t->live--;
	if (GEN(s) == UINT32_MAX) {
		/* Every generation of this slot has been handed out: wrapping
		 * to 1 would make the handles of its first lives valid again
		 * (the free stack is LIFO, so one timer re-armed in a loop
		 * cycles one slot: 2^32 arms is minutes, not years). The slot
		 * stays off the free stack for good; its handles all fail the
		 * state check. Its memory goes with its chunk at fini. */
		t->retired++;
		return;
	}
	GEN(s)++; /* every handle of the life that ended is stale */
	t->free_idx[t->nfree++] = s->index;
}

int vz__timers_arm(struct vz__timers *t, struct vz__timer_owner *o, uint64_t now_ns,
		   uint64_t delay_ns, uint64_t period_ns, uint64_t tag, uint64_t *handle_out)
{
	struct vz__timer_slot *s;
	uint32_t index;

	if (!t || !o || !handle_out || delay_ns > UINT64_MAX - now_ns)
		return VZ_EINVAL;
	if (!o->life)
		return VZ_ESTALE; /* e.g. armed from on_stop: it could never fire */
	if (!t->nfree) {
		int rc;

		/* Stale slots are released lazily; before they make the slab
		 * grow, reclaim them all when they are an eighth of it. The
		 * sweep costs O(slots) and frees at least slots / 8, so O(8)
		 * per slot it frees. */
		if (t->stale && t->stale >= (uint64_t)t->nchunks * VZ__TIMERS_CHUNK / 8)
			vz__timers_sweep(t);
		rc = t->nfree ? 0 : grow(t);

		if (rc < 0)
			return rc;
	}
	index = t->free_idx[--t->nfree];
	s = &t->chunks[index / VZ__TIMERS_CHUNK][index % VZ__TIMERS_CHUNK];
	if (t->nfree >= ARM_PREFETCH) {
		/* The slot the ARM_PREFETCH-th next arm will take: after
		 * cancels or expiries in random order the free stack is in
		 * random order and each slot a cold miss; started now, that
		 * miss overlaps the arms in between. A write prefetch: arm
		 * writes the line. */
		uint32_t ahead = t->free_idx[t->nfree - ARM_PREFETCH];

		__builtin_prefetch(&t->chunks[ahead / VZ__TIMERS_CHUNK][ahead % VZ__TIMERS_CHUNK],
				   1);
	}
	s->owner = o;
	s->life = o->life;
	o->count++;
	s->period_ns = period_ns;
	s->tag = tag;
	STATE(s) = SLOT_ARMED;
	t->live++;
	vz__wheel_add(&t->wheel, &s->entry, now_ns + delay_ns);
	*handle_out = make_handle(s);
	return 0;
}

int vz__timers_cancel(struct vz__timers *t, struct vz__timer_owner *o, uint64_t handle)
{
	struct vz__timer_slot *s = lookup(t, handle);

	if (!s || s->owner != o || s->life != o->life || !o->life)
		return VZ_ESTALE;
	/* A periodic timer being fired right now is already re-armed (see
	 * on_fire), so del finds it in the wheel; a pending one-shot is in no
	 * list and del is a no-op. Release first, del last: del stores into
	 * the entry's two neighbours, at addresses known only once this
	 * slot's line has arrived, and loads placed after those stores (the
	 * owner's count, the table's counters) may be held until then; with
	 * the loads first, back-to-back cancels overlap their misses (1M
	 * pending, random order: about 105 -> 85 ns of thread CPU time per
	 * cancel, timer/NOTES.md). */
	release(t, s);
	vz__wheel_del(&t->wheel, &s->entry);
	return 0;
}

void vz__timers_cancel_owner(struct vz__timers *t, struct vz__timer_owner *o)
{
	/* Every slot of this life now fails slot_stale(); release() counts
	 * them down from t->stale instead of o->count. */
	t->stale += o->count;
	o->count = 0;
	o->life = 0;
}

void vz__timers_sweep(struct vz__timers *t)
{
	uint32_t c, i;

	t->sweeps++;
	for (c = 0; c < t->nchunks && t->stale; c++) {
		struct vz__timer_slot *chunk = t->chunks[c];

		for (i = 0; i < VZ__TIMERS_CHUNK; i++) {
			struct vz__timer_slot *s = &chunk[i];

			if (STATE(s) == SLOT_FREE || !slot_stale(s))
				continue;
			vz__wheel_del(&t->wheel, &s->entry); /* no-op if pending */
			t->stale_released++;
			release(t, s);
		}
	}
}

uint64_t vz__timers_next_deadline_ns(const struct vz__timers *t)
{
	return vz__wheel_next_deadline_ns(&t->wheel);
}

struct expire_ctx {
	uint64_t now_ns;
	unsigned fired;
	struct vz__timers *t;
	void (*fire)(void *ctx, struct vz__timer_owner *o, const vz_timer_event *ev);
	void *ctx;
};

/* Next deadline of a periodic timer that was due at `prev`: prev + k *
 * period for the smallest k >= 1 that is after now (missed periods are
 * skipped, the phase is kept). Saturates at UINT64_MAX, which never fires. */
static uint64_t next_period(uint64_t prev, uint64_t period, uint64_t now)
{
	uint64_t k = 1;

	if (now >= prev && now - prev >= period)
		k = (now - prev) / period + 1;
	if (k > (UINT64_MAX - prev) / period)
		return UINT64_MAX;
	return prev + k * period;
}

/* Wheel callback: update the slot's state, then tell the core. The state
 * change happens first so that the core's callback sees a consistent
 * table (it may cancel this very timer). */
static void on_fire(void *arg, struct vz__wheel_entry *e)
{
	struct expire_ctx *x = arg;
	struct vz__timer_slot *s = slot_of_entry(e);
	vz_timer_event ev;

	if (slot_stale(s)) {
		/* Its owner stopped: released now, when it would have fired
		 * (a periodic one is not re-armed). */
		x->t->stale_released++;
		release(x->t, s);
		return;
	}
	ev.timer.id = make_handle(s);
	ev.tag = s->tag;
	ev.deadline_ns = e->deadline_ns;
	ev.fired_ns = x->now_ns;
	if (s->period_ns)
		vz__wheel_add(&x->t->wheel, e,
			      next_period(e->deadline_ns, s->period_ns, x->now_ns));
	else
		STATE(s) = SLOT_PENDING;
	x->fired++;
	x->fire(x->ctx, s->owner, &ev);
}

unsigned vz__timers_expire(struct vz__timers *t, uint64_t now_ns,
			   void (*fire)(void *ctx, struct vz__timer_owner *o,
					const vz_timer_event *ev),
			   void *ctx)
{
	struct expire_ctx x = {.now_ns = now_ns, .fired = 0, .t = t, .fire = fire, .ctx = ctx};

	vz__wheel_advance(&t->wheel, now_ns, on_fire, &x);
	return x.fired;
}

bool vz__timers_deliverable(struct vz__timers *t, uint64_t handle)
{
	struct vz__timer_slot *s = lookup(t, handle);

	if (!s)
		return false;
	if (slot_stale(s)) {
		/* The owner stopped: never delivered. A pending one-shot is
		 * released here (its message is the last reference); an armed
		 * one waits for its expiry. */
		if (STATE(s) == SLOT_PENDING) {
			t->stale_released++;
			release(t, s);
		}
		return false;
	}
	if (STATE(s) == SLOT_PENDING) {
		release(t, s);
		return true;
	}
	return s->period_ns != 0; /* armed: periodic yes, one-shot has no message */
}
