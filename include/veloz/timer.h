/* SPDX-License-Identifier: MIT */
/*
 * Timers owned by an actor, kept in its shard's hierarchical timer wheel.
 * Expiry is a VZ_MSG_TIMER message to the owner carrying a vz_timer_event.
 * Stopping an actor cancels its timers.
 *
 * Precision: a timer never fires before its deadline (fired_ns >=
 * deadline_ns). It fires (the wheel finds it due and queues its message)
 * in the first loop turn that reads the clock at or after the deadline, so
 * at most one loop turn late, whatever the wheel tick
 * (runtime.timer_tick_us only sizes the wheel's slots). A loop turn spends
 * at most runtime.turn_budget_us (default 50 us) running actors, overrun by
 * at most 64 messages plus one actor run of `batch` messages; that bound
 * holds on a shard that is not blocked inside an actor's receive (a receive
 * that runs long delays everything on its shard) and not preempted by the
 * OS. An idle shard sleeps until the exact deadline: an io_uring timeout,
 * or epoll_pwait2 (Linux 5.11+) on the epoll backend; where the kernel
 * lacks epoll_pwait2 the sleep is rounded up to the next millisecond. The
 * OS's wake-up latency (and its timer slack, 50 us by default for a normal
 * thread) comes on top. With turn_budget_us = 0 the turn is bounded by
 * counts only (actors_per_turn runs of up to batch messages, 16,384
 * messages by default) and a busy shard can make timers that much
 * later. The expiry message then waits in the owner's mailbox behind what
 * is already there, like any other message.
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
