/* SPDX-License-Identifier: MIT */
/*
 * Hierarchical timer wheel, one per shard, touched only by the shard thread
 * (no atomics, no locks). Time is counted in ticks of `tick_ns` (10 us to
 * 1 s). Each level has 64 slots and a 64-bit occupancy bitmap; the number of
 * levels is chosen at init so the wheel holds every deadline at least 30
 * days ahead (see VZ__WHEEL_MIN_RANGE_NS). Farther deadlines wait in an
 * overflow list and enter the wheel as time approaches them.
 *
 * Entries are intrusive and doubly linked: add and del are O(1) and never
 * allocate. The caller owns entry memory and must keep it alive (and not
 * move it) while it is pending.
 *
 * Firing rule (exact). An advance to `now` fires exactly the pending
 * entries whose deadline is <= now, plus the "already due" entries: those
 * added with a deadline at or before the wheel's time (the largest now_ns
 * given to init or advance so far), which fire on the next advance
 * whatever its `now`. Consequences:
 *   - never early: a fired entry has d <= now of the advance that fired it
 *     (time never moves backwards; a smaller now_ns is ignored);
 *   - never late: an entry that advance(now) leaves pending has d > now.
 *     Lateness is only the caller's: how long after d it calls advance.
 * Ticks still organise the wheel: a deadline d belongs to tick
 * floor(d / tick_ns). Entries of the current tick (the one the wheel's time
 * is in) wait in a short list sorted by deadline, so a call within a tick
 * fires exactly the entries that are due and the next-deadline query gives
 * the exact earliest deadline; entries of later ticks sit in the slots.
 * Order: within one advance, entries that were pending when it started
 * fire already-due ones first (in the order they were added), then the
 * others in non-decreasing tick, and those of the tick `now` is in by
 * non-decreasing deadline; entries of an earlier tick fire in unspecified
 * order among themselves. An entry added during an advance (by the fire
 * callback) never fires in that same advance: if already due it fires on
 * the next one, so a callback that re-adds cannot loop inside one advance.
 *
 * NOTES.md has the design and the proof sketches.
 */
#ifndef VZ_TIMER_WHEEL_H
#define VZ_TIMER_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#define VZ__WHEEL_BITS	       6
#define VZ__WHEEL_SLOTS	       64
#define VZ__WHEEL_MAX_LEVELS   8
#define VZ__WHEEL_TICK_MIN_NS  10000ull				  /* 10 us */
#define VZ__WHEEL_TICK_MAX_NS  1000000000ull			  /* 1 s */
#define VZ__WHEEL_MIN_RANGE_NS (30ull * 86400ull * 1000000000ull) /* 30 days */

/* Where an entry is: a wheel slot (level * 64 + slot), or one of these. */
enum {
	VZ__WHEEL_NOWHERE = 0xffff,  /* not pending (never added, fired or deleted) */
	VZ__WHEEL_OVERFLOW = 0xfffe, /* beyond the wheel's range */
	VZ__WHEEL_DUE = 0xfffd,	     /* already due: fires on the next advance */
	VZ__WHEEL_NEAR = 0xfffc,     /* in the current tick, on the sorted near list */
};
/* In a slot's `where` (level * 64 + slot < 512): set for bank 1. */
#define VZ__WHEEL_BANK_BIT 512u
/* Entries moved ahead of their cascade per advance call (see advance). */
#define VZ__WHEEL_PRE_BATCH 128u

struct vz__wheel_link {
	struct vz__wheel_link *next, *prev;
};

/* A timer as the wheel sees it. Embed it in your own struct and recover
 * yours with container_of-style arithmetic in the fire callback. Fields are
 * the wheel's; read deadline_ns freely, write nothing. */
struct vz__wheel_entry {
	struct vz__wheel_link link;
	uint64_t deadline_ns; /* as given to vz__wheel_add() */
	uint16_t where;	      /* VZ__WHEEL_* or level * 64 + slot */
	/* The embedder's: the wheel never reads or writes them. They fill
	 * what would be tail padding, so an embedding struct can keep small
	 * fields inside the entry's 32 bytes (timers.c keeps a slot in one
	 * 64-byte line this way). */
	uint16_t user16;
	uint32_t user32;
};
/* An entry's tick, floor(deadline_ns / tick_ns), is not stored (it would
 * cost 8 bytes per timer): it is recomputed with a multiply by the tick's
 * exact reciprocal (vz__wheel_tick_of) where placement needs it. */

struct vz__wheel {
	uint64_t tick_ns;
	/* floor(x / tick_ns) = (t + ((x - t) >> 1)) >> tick_sh with
	 * t = mulhi(x, tick_mul), for every 64-bit x (Granlund and
	 * Montgomery, "Division by invariant integers using multiplication",
	 * 1994, fig. 4.1; tick_sh = ceil(log2 tick_ns) - 1). */
	uint64_t tick_mul;
	unsigned tick_sh;
	uint64_t now_ns;  /* largest now_ns seen (init or advance) */
	uint64_t cur;	  /* current tick, floor(now_ns / tick_ns): entries with tick < cur
			   * have fired, those with tick == cur wait on `near` */
	uint64_t range;	  /* ticks: an entry with tick - cur <= range goes in the wheel */
	uint64_t ovf_min; /* lower bound of the overflow list's ticks */
	uint64_t count;	  /* pending entries (wheel + overflow + due) */
	uint64_t moved;	  /* entries re-filed by cascades and pre-cascades, ever */
	unsigned nlevels;
	/*
	 * Two banks of slots per level. For each level, `mb[level]` names the
	 * main bank, the wheel proper; the other one is the shadow. The shadow
	 * holds entries of the next 64-tick window [pre_tick, pre_tick + 64^j)
	 * (j = pre_level, the level whose slot starts at pre_tick) already
	 * placed relative to pre_tick on levels < j: advance moves a bounded
	 * number of them per call ahead of time, and at pre_tick the banks of
	 * levels < j swap, so no advance moves a whole slot at once. An
	 * entry's `where` carries its bank (VZ__WHEEL_BANK_BIT).
	 */
	uint32_t level_mask;  /* bit k set iff main occupied[k] != 0 */
	uint32_t shadow_mask; /* bit k set iff the shadow bank of level k is occupied */
	uint8_t mb[VZ__WHEEL_MAX_LEVELS];
	unsigned pre_level;
	uint64_t pre_tick;
	uint64_t occupied[2][VZ__WHEEL_MAX_LEVELS]; /* [bank][level] */
	struct vz__wheel_link due;		    /* already due, FIFO */
	struct vz__wheel_link near; /* tick == cur, deadline > now_ns, sorted by deadline */
	uint64_t min0[2]
		     [VZ__WHEEL_SLOTS]; /* lower bound of each occupied level-0 slot's deadlines */
	struct vz__wheel_link overflow; /* beyond range, unordered */
	/* [bank][level][slot][half]: each slot is two lists, an entry going to
	 * the one a hash of its deadline picks (half_of() in wheel.c), so that
	 * a walk of a slot (cascade, fire) follows two chains of cache misses
	 * at once. */
	struct vz__wheel_link slots[2][VZ__WHEEL_MAX_LEVELS][VZ__WHEEL_SLOTS][2];
};

/* Called once per fired entry. The entry is no longer pending when this
 * runs (its `where` is VZ__WHEEL_NOWHERE): the callback may re-add it,
 * delete or add any other entry, but must not call vz__wheel_advance() or
 * vz__wheel_fini() on the same wheel. */
typedef void (*vz__wheel_fire_fn)(void *ctx, struct vz__wheel_entry *e);

/* Initialise `w` with a tick of `tick_ns` (VZ__WHEEL_TICK_MIN_NS to
 * VZ__WHEEL_TICK_MAX_NS) and the current time `now_ns`. The caller owns the
 * memory of `w` (about 34 KiB). Returns 0 or VZ_EINVAL. */
int vz__wheel_init(struct vz__wheel *w, uint64_t tick_ns, uint64_t now_ns);

/* Forget every pending entry (they become NOWHERE; nothing fires). */
void vz__wheel_fini(struct vz__wheel *w);

/* floor(x / w->tick_ns), exactly, without a division. */
static inline uint64_t vz__wheel_tick_of(const struct vz__wheel *w, uint64_t x)
{
	__extension__ typedef unsigned __int128 u128;
	uint64_t t = (uint64_t)(((u128)x * w->tick_mul) >> 64);

	return (t + ((x - t) >> 1)) >> w->tick_sh;
}

/* Make `e` an entry that is not pending. Call once before first use. */
void vz__wheel_entry_init(struct vz__wheel_entry *e);

/* True iff `e` is pending in some wheel. */
static inline bool vz__wheel_entry_pending(const struct vz__wheel_entry *e)
{
	return e->where != VZ__WHEEL_NOWHERE;
}

/* Add `e`, which must not be pending, with an absolute deadline. A
 * deadline at or before the wheel's time (the largest now_ns seen; inside
 * a fire callback, the now_ns of the running advance) is already due and
 * fires on the next advance. O(1), never allocates, never fails. */
void vz__wheel_add(struct vz__wheel *w, struct vz__wheel_entry *e, uint64_t deadline_ns);

/* Remove `e` if pending (it will not fire); returns whether it was. O(1).
 * Safe from inside the fire callback, on any entry. */
bool vz__wheel_del(struct vz__wheel *w, struct vz__wheel_entry *e);

/* A lower bound of the earliest deadline of the pending entries, in ns;
 * UINT64_MAX when nothing is pending. It is exact when the earliest entry
 * is in the current tick or on level 0 (within the current 64-tick window)
 * and no entry of that slot was deleted since it last filled; otherwise it
 * is the start of the earliest occupied slot, early by less than 64^k ticks
 * for a level-k slot, and a wake-up there only cascades. It is at most the
 * wheel's current time when something is already due, and after it
 * otherwise. A loop that sleeps until this value never sleeps past a
 * deadline. O(1): a few count-trailing-zeros, no scan. */
uint64_t vz__wheel_next_deadline_ns(const struct vz__wheel *w);

/* Move the wheel's time to `now_ns` (a smaller value than before leaves
 * the time unchanged) and call `fire` for every entry that became due, in
 * the order documented above. Jumps over empty stretches of time using the
 * bitmaps, so cost is proportional to the entries fired or cascaded, not to
 * the ticks elapsed. Returns the number of entries fired. */
uint64_t vz__wheel_advance(struct vz__wheel *w, uint64_t now_ns, vz__wheel_fire_fn fire, void *ctx);

/* Number of pending entries. */
static inline uint64_t vz__wheel_count(const struct vz__wheel *w)
{
	return w->count;
}

/* The wheel's current tick: floor(largest now_ns / tick_ns) outside an
 * advance; inside a fire callback, the tick being fired (the previous
 * current tick while that tick's remaining entries fire). */
static inline uint64_t vz__wheel_now_tick(const struct vz__wheel *w)
{
	return w->cur;
}

#endif
