/* SPDX-License-Identifier: MIT */
/*
 * Per-shard table of actor timers, built on the timer wheel. Owned and
 * touched by the shard thread only (no atomics, no locks).
 *
 * A timer lives in a slot taken from chunked slabs: chunks of
 * VZ__TIMERS_CHUNK slots are allocated when no slot is free and kept until
 * fini, so arming in steady state never allocates (t->chunk_allocs counts
 * the growth). Free slots are kept as a stack of indices rather than a list
 * threaded through the slots: taking one then does not wait for a load from
 * a cold slot, so back-to-back arms overlap their cache misses. A handle is (generation << 32 |
 * slot index); the generation changes every time a slot is released, so a handle that was cancelled
 * or delivered is stale forever: a slot whose last generation (UINT32_MAX) has ended is retired
 * (never handed out again, counted in `retired`) rather than wrapped back to 1.
 *
 * Expiry protocol with the core:
 *   1. vz__timers_expire() calls `fire` for each due timer with its owner
 *      and a vz_timer_event; the core queues a VZ_MSG_TIMER to the owner.
 *   2. A one-shot timer that fired is "pending": its handle stays valid,
 *      vz__timers_cancel() on it returns 0 and releases it.
 *   3. Just before delivering the message the core calls
 *      vz__timers_deliverable(handle): true means deliver (a one-shot slot
 *      is released then, its handle stale); false means the timer was
 *      cancelled meanwhile: drop the message.
 *   A periodic timer re-arms at previous deadline + period, skipping whole
 *   periods that are already in the past when it fires (the phase is kept,
 *   one message per expiry, none for skipped periods); it stays live and
 *   deliverable until cancelled.
 *
 * Owners and lives: a slot records its owner and the owner's life (a
 * nonzero number the core gives at vz__timer_owner_init(), the actor's
 * generation). vz__timers_cancel_owner() only ends the life, O(1): no slot
 * of the owner is touched, and no list links the slots of one owner, so
 * arm and cancel never touch a neighbour's cache line. From then on the
 * owner's timers are *stale*: they never fire, are never deliverable and
 * cannot be cancelled, but they still hold their slot (and count in
 * vz__timers_live()) until they are released lazily:
 *   - an armed one when it would have fired (a periodic one at its next
 *     firing), inside vz__timers_expire(), without calling `fire`;
 *   - a fired one-shot whose message is pending when the core calls
 *     vz__timers_deliverable() for that message (false), which the core
 *     also does when it dead-letters the message;
 *   - all of them at once by vz__timers_sweep(), which arm also runs
 *     instead of growing the slab whenever at least an eighth of the slots
 *     are stale: stale slots never make the table grow beyond 8/7 of its
 *     other live timers plus one chunk. A stopped actor's one-hour timer
 *     otherwise keeps its 64-byte slot for that hour.
 * t->stale counts the stale slots not yet released, t->stale_released
 * those released so far.
 */
#ifndef VZ_TIMER_TIMERS_H
#define VZ_TIMER_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include <veloz/timer.h>

#include "timer/wheel.h"

#define VZ__TIMERS_CHUNK 1024u /* slots per slab chunk */
/* From this many chunks on (32 Ki slots, 2 MiB of them), chunks are carved
 * from 2 MiB arenas of VZ__TIMERS_ARENA_CHUNKS chunks each, which the
 * kernel is asked to back with huge pages (see grow() in timers.c). */
#define VZ__TIMERS_ARENA_FROM	32u
#define VZ__TIMERS_ARENA_CHUNKS 32u

struct vz__timer_slot;

/* The timer side of an owner (an actor): which life it is in and how many
 * timers of that life are live. Embedded in the actor struct; start each
 * life with vz__timer_owner_init(). Its memory must stay readable while
 * any slot of any of its lives is allocated (the core keeps actor chunks
 * until the shard is destroyed, after the last expire). */
struct vz__timer_owner {
	uint32_t life;	/* current life, 0 once it has ended */
	uint32_t count; /* live, not stale, timers of the current life */
};

/* One cache line per timer (chunks are 64-byte aligned): arm, cancel and
 * expiry touch this line and the wheel neighbours' only. */
struct vz__timer_slot {
	/* entry.user16: state (enum in timers.c); entry.user32: generation */
	struct vz__wheel_entry entry;
	struct vz__timer_owner *owner;
	uint64_t period_ns; /* 0: one-shot */
	uint64_t tag;
	uint32_t index;
	uint32_t life; /* the owner's life when armed: stale once it differs */
};
_Static_assert(sizeof(struct vz__timer_slot) == 64, "a timer slot is one cache line");

struct vz__timers {
	struct vz__wheel wheel;
	struct vz__timer_slot **chunks; /* chunk i holds indices [i * CHUNK, (i + 1) * CHUNK) */
	uint32_t nchunks, chunks_cap;
	struct vz__timer_slot *arena_next; /* next chunk of the current arena */
	uint32_t arena_left;		   /* chunks left in it */
	uint32_t *free_idx; /* stack of free slot indices, capacity chunks_cap * CHUNK */
	uint32_t nfree;
	uint64_t live;		 /* slots not free */
	uint64_t chunk_allocs;	 /* slab growth events (each is one malloc) */
	uint64_t retired;	 /* slots whose 2^32 - 1 generations are used up */
	uint64_t stale;		 /* live slots whose owner's life has ended */
	uint64_t stale_released; /* stale slots released, ever */
	uint64_t sweeps;	 /* vz__timers_sweep() runs, ever */
};

/* Initialise an empty table whose wheel ticks every `tick_ns` (see
 * vz__wheel_init) starting at `now_ns`. No allocation yet. Returns 0 or
 * VZ_EINVAL. */
int vz__timers_init(struct vz__timers *t, uint64_t tick_ns, uint64_t now_ns);

/* Free every slab. Reads no owner: owners may already be gone. */
void vz__timers_fini(struct vz__timers *t);

/* Start life `life` of owner `o`, with no timers. `life` must be nonzero
 * and never given to the same owner memory before (the actor's generation,
 * which never wraps); the previous life, if any, must have been ended by
 * vz__timers_cancel_owner(). */
void vz__timer_owner_init(struct vz__timer_owner *o, uint32_t life);

/* Arm a timer for owner `o`, first due at now_ns + delay_ns, then every
 * period_ns if period_ns > 0. A deadline at or before the time of the last
 * expire (e.g. delay 0 with the loop's cached now) fires on the next
 * expire; otherwise the firing rule of wheel.h applies. `tag` comes
 * back in the event. On success stores the handle in *handle_out (never 0)
 * and returns 0. VZ_EINVAL: NULL argument, or now_ns + delay_ns overflows.
 * VZ_ESTALE: the owner's life has ended (cancel_owner since its init).
 * VZ_ENOMEM: the slab could not grow. */
int vz__timers_arm(struct vz__timers *t, struct vz__timer_owner *o, uint64_t now_ns,
		   uint64_t delay_ns, uint64_t period_ns, uint64_t tag, uint64_t *handle_out);

/* Cancel a live timer of `o`: an armed one will not fire; a fired one-shot
 * whose message is pending will not be delivered (deliverable() says
 * false). The handle becomes stale. Returns 0, or VZ_ESTALE when the handle
 * is not live or belongs to another owner (nothing changes then). Safe from
 * inside the expire callback, for any handle including the firing one. */
int vz__timers_cancel(struct vz__timers *t, struct vz__timer_owner *o, uint64_t handle);

/* End the current life of `o` (the actor stopped): every timer of it
 * becomes stale (see the top of this file) and is released lazily. O(1),
 * touches no slot. Calling it again before the next init does nothing. */
void vz__timers_cancel_owner(struct vz__timers *t, struct vz__timer_owner *o);

/* Release every stale slot now: O(allocated slots), reads each live slot's
 * owner. Run by arm before growing when an eighth of the slots are stale,
 * and by the core when a shard stops. Safe inside the expire callback. */
void vz__timers_sweep(struct vz__timers *t);

/* Lower bound of the next due time in ns, UINT64_MAX if none is armed; see
 * vz__wheel_next_deadline_ns(). O(1). */
uint64_t vz__timers_next_deadline_ns(const struct vz__timers *t);

/* Fire every timer due at `now_ns` (see the firing rule in wheel.h): for
 * each, `fire(ctx, owner, &event)` is called with an event valid only
 * during the call. `fire` may arm and cancel timers (not call expire).
 * A due timer whose owner's life has ended is released instead (no call,
 * counted in stale_released). Returns how many fired. */
unsigned vz__timers_expire(struct vz__timers *t, uint64_t now_ns,
			   void (*fire)(void *ctx, struct vz__timer_owner *o,
					const vz_timer_event *ev),
			   void *ctx);

/* Called by the core just before it delivers a VZ_MSG_TIMER for `handle`,
 * and when it drops such a message undelivered (dead letter).
 * One-shot: true if it fired and was not cancelled since, and the slot is
 * released (the handle is stale from now on); false otherwise. Periodic:
 * true while the timer is armed. Stale handle: false. A timer whose
 * owner's life has ended: false, and a fired one-shot is released. */
bool vz__timers_deliverable(struct vz__timers *t, uint64_t handle);

/* Number of live timers in the table, stale ones (see above) included. */
static inline uint64_t vz__timers_live(const struct vz__timers *t)
{
	return t->live;
}

/* Whether vz__timers_expire(t, now_ns) may have work: true when some timer
 * is due at now_ns (or a cascade of the wheel is: the next deadline is a
 * lower bound), false when none is. A loop that runs actors for a long
 * turn asks this whenever it reads its clock and ends the turn on true,
 * so that a flood of messages delays an expiry by at most the time
 * between two of its clock reads (core/deliver.c). O(1): a load when no
 * timer is live, else the next-deadline query. */
static inline bool vz__timers_due(const struct vz__timers *t, uint64_t now_ns)
{
	return t->live && vz__wheel_next_deadline_ns(&t->wheel) <= now_ns;
}

#endif
