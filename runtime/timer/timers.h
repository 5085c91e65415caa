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
 */
#ifndef VZ_TIMER_TIMERS_H
#define VZ_TIMER_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include <veloz/timer.h>

#include "timer/wheel.h"

#define VZ__TIMERS_CHUNK 1024u /* slots per slab chunk */

struct vz__timer_slot;

/* Head of an actor's list of live timers (armed or fired-and-pending).
 * Embedded in the actor struct; initialise with vz__timer_owner_init(). */
struct vz__timer_owner {
	struct vz__timer_slot *head;
	uint32_t count; /* live timers of this owner */
};

struct vz__timer_slot {
	struct vz__wheel_entry entry;
	struct vz__timer_owner *owner;
	struct vz__timer_slot *onext, *oprev; /* owner list */
	uint64_t period_ns;		      /* 0: one-shot */
	uint64_t tag;
	uint32_t gen;
	uint32_t index;
	uint8_t state; /* enum in timers.c */
};

struct vz__timers {
	struct vz__wheel wheel;
	struct vz__timer_slot **chunks; /* chunk i holds indices [i * CHUNK, (i + 1) * CHUNK) */
	uint32_t nchunks, chunks_cap;
	uint32_t *free_idx; /* stack of free slot indices, capacity chunks_cap * CHUNK */
	uint32_t nfree;
	uint64_t live;	       /* slots not free */
	uint64_t chunk_allocs; /* slab growth events (each is one malloc) */
	uint64_t retired;      /* slots whose 2^32 - 1 generations are used up */
};

/* Initialise an empty table whose wheel ticks every `tick_ns` (see
 * vz__wheel_init) starting at `now_ns`. No allocation yet. Returns 0 or
 * VZ_EINVAL. */
int vz__timers_init(struct vz__timers *t, uint64_t tick_ns, uint64_t now_ns);

/* Free every slab. Owners whose timers were still live must not be used
 * with this table again (their lists point into freed memory): cancel
 * owners first. */
void vz__timers_fini(struct vz__timers *t);

/* An owner with no timers. */
void vz__timer_owner_init(struct vz__timer_owner *o);

/* Arm a timer for owner `o`, first due at now_ns + delay_ns, then every
 * period_ns if period_ns > 0. A deadline at or before the time of the last
 * expire (e.g. delay 0 with the loop's cached now) fires on the next
 * expire; otherwise the firing rule of wheel.h applies. `tag` comes
 * back in the event. On success stores the handle in *handle_out (never 0)
 * and returns 0. VZ_EINVAL: NULL argument, or now_ns + delay_ns overflows.
 * VZ_ENOMEM: the slab could not grow. */
int vz__timers_arm(struct vz__timers *t, struct vz__timer_owner *o, uint64_t now_ns,
		   uint64_t delay_ns, uint64_t period_ns, uint64_t tag, uint64_t *handle_out);

/* Cancel a live timer of `o`: an armed one will not fire; a fired one-shot
 * whose message is pending will not be delivered (deliverable() says
 * false). The handle becomes stale. Returns 0, or VZ_ESTALE when the handle
 * is not live or belongs to another owner (nothing changes then). Safe from
 * inside the expire callback, for any handle including the firing one. */
int vz__timers_cancel(struct vz__timers *t, struct vz__timer_owner *o, uint64_t handle);

/* Cancel every live timer of `o` (the actor stopped). O(its timers). */
void vz__timers_cancel_owner(struct vz__timers *t, struct vz__timer_owner *o);

/* Lower bound of the next due time in ns, UINT64_MAX if none is armed; see
 * vz__wheel_next_deadline_ns(). O(1). */
uint64_t vz__timers_next_deadline_ns(const struct vz__timers *t);

/* Fire every timer due at `now_ns` (see the firing rule in wheel.h): for
 * each, `fire(ctx, owner, &event)` is called with an event valid only
 * during the call. `fire` may arm and cancel timers (not call expire).
 * Returns how many fired. */
unsigned vz__timers_expire(struct vz__timers *t, uint64_t now_ns,
			   void (*fire)(void *ctx, struct vz__timer_owner *o,
					const vz_timer_event *ev),
			   void *ctx);

/* Called by the core just before it delivers a VZ_MSG_TIMER for `handle`.
 * One-shot: true if it fired and was not cancelled since, and the slot is
 * released (the handle is stale from now on); false otherwise. Periodic:
 * true while the timer is armed. Stale handle: false. */
bool vz__timers_deliverable(struct vz__timers *t, uint64_t handle);

/* Number of live timers in the table. */
static inline uint64_t vz__timers_live(const struct vz__timers *t)
{
	return t->live;
}

#endif
