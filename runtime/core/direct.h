/* SPDX-License-Identifier: MIT */
/*
 * Dispatch straight from an incoming ring slot (core/xshard/drain.c calls,
 * deliver.c runs): when the receiving shard drains a message whose target
 * has nothing queued and nothing else is waiting to run, the target's
 * receive is called right there, with a view of the message where it lies
 * (an inline payload stays in the slot; a block sent by pointer stays
 * where it is), instead of copying it into a block of this shard's pool,
 * appending it to the mailbox, making the actor ready and dispatching it
 * from the run queue later in the turn. An inline message's slot is moved
 * past only after the receive has returned (the view reads it), so the
 * producer cannot reuse it under the view; a block's slot, and the slots
 * consumed before in the batch, go back to the producer before the
 * receive runs (drain.c, receive_slot()).
 *
 * Invariant (runtime/DESIGN.md invariant 2, FIFO per (sender, receiver)
 * pair): a message m of pair (S, R) is dispatched directly only when R's
 * mailbox is empty: no cell, no spilled block, nothing in the urgent lane.
 * So no earlier message of any pair for R is queued before m, and none of
 * (S, R) in particular. Every message S sends to R on another shard goes
 * through the one ring from S's shard to R's, in send order (the outbox is
 * a FIFO in front of it), and the ring is consumed strictly in order: the
 * messages of (S, R) before m were taken from earlier slots (handled, or
 * queued to R, which the empty mailbox rules out now), and every later one
 * sits in a later slot, taken only after m's receive has returned. A slot
 * that cannot be taken now (no memory for a copy) stops the ring there,
 * so nothing behind it is dispatched ahead of it.
 *
 * What else must go first, and so forbids the direct path:
 * - runtime messages (VZ__MSG_SYS: stop and lifecycle requests take the
 *   urgent lane; timers and completions are mail) and, for an inline view,
 *   replies to asks (VZ__MSG_REPLY, matched in life.c, which may consume
 *   the message as a block): they take the mailbox path as before;
 * - any ready actor: an actor queued before this message arrived runs
 *   first (FIFO of the run queue), so the direct path needs every run
 *   queue empty. With scheduling classes configured (nclasses > 1) it is
 *   off: a run outside the class scheduler would not be charged to the
 *   target's class, and a flood to a low class would run ahead of a
 *   latency-class message later in the rings;
 * - the target running (VZ__ACTOR_RUNNING / ACTIVE: a drain re-entered
 *   from inside a receive, vz_shard_poll() of the shard from its own
 *   actor), and a shard that is stopping (phase not RUN: dead letters).
 *
 * Bounded loop latency (invariant 5): a drain makes at most cfg.batch
 * direct receive calls (shared by all its rings), then queues the rest as
 * before; a turn so runs at most `batch` messages more than the run
 * queue's own bound, each for an actor that had nothing queued while no
 * actor was waiting.
 */
#ifndef VZ_CORE_DIRECT_H
#define VZ_CORE_DIRECT_H

#include "core/core.h"

/*
 * The live actor of sh that a message for `to` may be handed to directly
 * now (the rules above, less the message's own flags, which the caller
 * tests), or NULL to queue it as before. Owner thread of sh.
 */
static inline struct vz_actor *vz__direct_target(struct vz__shard *sh, vz_ref to)
{
	struct vz_actor *a;

	if (sh->sched.nclasses > 1 || sh->rq[0].head)
		return NULL;
	/* Relaxed, as in vz__deliver_local(): the stopper's store is
	 * followed by stop rounds that dead-letter whatever this turn let
	 * through. */
	if (atomic_load_explicit(&sh->phase, memory_order_relaxed) != VZ__PHASE_RUN)
		return NULL;
	a = vz__actor_lookup(sh, to);
	if (!a || vz__actor_has_mail(a) ||
	    (a->flags & (VZ__ACTOR_READY | VZ__ACTOR_RUNNING | VZ__ACTOR_ACTIVE)))
		return NULL;
	return a;
}

/*
 * deliver.c: run a's receive on m now, as a run of one message (the same
 * accounting as a run from the run queue: handled, per-type stats, a stop
 * asked inside receive, a reservation left open, an actor that sent itself
 * mail goes to the run queue). m is a block (dispatched and released as
 * from the mailbox; vz_forward() may hand it on) or a view (VZ__MSG_VIEW,
 * view_data pointing at the payload where it lies, `to`, from, type, len
 * and corr set, VZ__MSG_INFLIGHT when counted against a bounded mailbox;
 * vz_forward() copies a view). a is what vz__direct_target() returned.
 * Returns 1 when receive ran. Owner thread of sh.
 */
unsigned vz__run_direct(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m);

#endif
