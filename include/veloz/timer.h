/* SPDX-License-Identifier: MIT */
/*
 * Timers owned by an actor, kept in its shard's hierarchical timer wheel.
 * Expiry is a VZ_MSG_TIMER message to the owner carrying a vz_timer_event.
 * Stopping an actor cancels its timers.
 *
 * Precision (the promise, with the default configuration):
 * - Never early: fired_ns >= deadline_ns, and the message arrives after it.
 * - Exact deadlines, whatever the wheel tick (runtime.timer_tick_us only
 *   sizes the wheel's slots): a timer is found due by the first loop turn
 *   that reads the clock at or after its deadline, and no pending count
 *   makes that later (cascades are spread over the turns before them).
 * - Busy shard: a turn that runs actors reads the clock every 64 messages
 *   (after the actor run that reaches them) and ends when a timer is due
 *   or its runtime.turn_budget_us (default 50 us) is spent. So a flood of
 *   messages delays an expiry by at most 64 messages plus one actor run
 *   of up to `batch` (64) messages, and then the expiry message waits
 *   behind one run of each actor queued before its owner: about 1-3 us
 *   for short messages (bench `timers` busy-shard-<backend>: p50 ~1 us,
 *   p99 3-19 us with the shard thread alone on its CPU), more when messages
 *   take long. Not bounded: a receive that runs long (nothing preempts
 *   it), and the OS preempting the shard's thread (on a shared machine
 *   that dominates the tail: tens of us to ms). With turn_budget_us = 0 a
 *   turn reads no clock while running actors and is bounded by counts only
 *   (actors_per_turn runs of up to batch messages, 16,384 messages by
 *   default): timers can be that much later.
 * - Idle shard: it sleeps until the deadline to the ns (an io_uring
 *   timeout; epoll_pwait2 on Linux 5.11+, else rounded up to the next
 *   millisecond) with a timer slack of 1 ns (on the runtime's own shard
 *   threads; an embedded shard has its caller's), but a wake-up from sleep takes
 *   the OS some tens of us (20-50 us measured on a 2-vCPU guest). With the
 *   default spin-then-sleep policy the shard wakes runtime.idle_spin_us
 *   (20 us) before the deadline and spins the rest, so only the part of
 *   the wake-up latency above that shows: p50 ~2-4 us, p99 ~30 us on that
 *   guest when otherwise quiet. VZ_IDLE_SPIN never sleeps (the busy-shard
 *   figure); VZ_IDLE_SLEEP pays the whole wake-up latency.
 * The expiry message then waits in the owner's mailbox behind what is
 * already there, like any other message.
 */
#ifndef VELOZ_TIMER_H
#define VELOZ_TIMER_H

#include <stdint.h>

#include "actor.h"
#include "export.h"

VZ_BEGIN_DECLS

/* Handle of an armed timer; generation-checked like vz_ref. */
typedef struct vz_timer {
	uint64_t id;
} vz_timer;

/* Payload of a VZ_MSG_TIMER message. */
typedef struct vz_timer_event {
	vz_timer timer;
	uint64_t tag;	      /* the value given to vz_timer_arm() */
	uint64_t deadline_ns; /* the deadline this expiry is for (monotonic) */
	uint64_t fired_ns;    /* when the wheel found it due (monotonic) */
} vz_timer_event;

/* Arm a timer `delay_ns` from now; period_ns > 0 makes it periodic without
 * drift (next deadline = previous deadline + period; periods the loop was
 * too late for are skipped, keeping the phase). From the owning actor only.
 * `out` receives the handle for vz_timer_cancel(); it may be NULL for a
 * fire-and-forget timer, which cannot be cancelled by hand but is
 * cancelled, like every timer of the actor, when the actor stops (a
 * periodic one then runs until that stop). On error *out is unchanged.
 * Errors: VZ_EINVAL (NULL self, or now + delay overflows),
 * VZ_EWRONGTHREAD (not on the actor's home shard thread), VZ_ESTALE (the
 * actor has stopped, or is running its on_stop), VZ_ENOMEM. */
VZ_API int vz_timer_arm(vz_actor *self, uint64_t delay_ns, uint64_t period_ns, uint64_t tag,
			vz_timer *out);

/* Cancel. Safe at any time: after expiry of a one-shot timer, or twice, it
 * returns VZ_ESTALE and changes nothing. An expiry message already queued
 * for a cancelled timer is dropped, not delivered. From the owning actor:
 * VZ_EINVAL for NULL self, VZ_EWRONGTHREAD off its home shard thread. */
VZ_API int vz_timer_cancel(vz_actor *self, vz_timer t);

/* Monotonic time in ns as the shard's loop last read it (cached per turn;
 * vz_timer_arm() refreshes it). From the owning actor; 0 for NULL. */
VZ_API uint64_t vz_now_ns(const vz_actor *self);

/* Wall-clock time (CLOCK_REALTIME) in ns since the Unix epoch, for what
 * must show a date (an HTTP Date header, a log line); durations and
 * deadlines use vz_now_ns(). In a simulated runtime (sim.h) it is virtual
 * too: 2026-01-01T00:00:00Z plus the virtual clock, so a run does not
 * depend on when it ran. From the owning actor; with a NULL self, the
 * real clock. Never fails. */
VZ_API int64_t vz_wall_ns(const vz_actor *self);

VZ_END_DECLS

#endif
