// SPDX-License-Identifier: MIT
/*
 * Delivery on the target's shard: mailbox append, the run queue, dispatch
 * to receive, and dead letters. Everything here runs on the shard's own
 * thread, so mailboxes and the run queue are plain lists with no atomics
 * (runtime/DESIGN.md, "The path of one message").
 *
 * Accounting (runtime/DESIGN.md invariant 2): every counted message ends in
 * exactly one of `handled` (a receive call) or `dead_letters` (the hook),
 * and its memory goes back through vz__msg_release() exactly once.
 */
#include <string.h>

#include "core/core.h"

/* Give back a bounded-mailbox count taken by vz__bounded_admit(), once
 * per message (the flag is cleared). The slot is found from the reference,
 * which may be stale: the count belongs to the slot, not to one life. Any
 * thread; sh is the target's shard. */
void vz__undo_admit(struct vz__shard *sh, struct vz_msg *m)
{
	uint32_t slot;
	struct vz_actor *chunk;

	if (!(m->flags & VZ__MSG_INFLIGHT))
		return;
	slot = vz__ref_slot(m->to);
	/* Acquire: pairs with the release store of the chunk in slot_take()
	 * (this may run on a sender's thread when a send is undone). */
	chunk = atomic_load_explicit(&sh->chunks[slot / VZ__CHUNK_ACTORS], memory_order_acquire);
	/* Relaxed: a pure counter (see vz__bounded_admit()). */
	atomic_fetch_sub_explicit(&chunk[slot % VZ__CHUNK_ACTORS].inflight, 1,
				  memory_order_relaxed);
	m->flags &= (uint8_t)~VZ__MSG_INFLIGHT;
}

void vz__dead_letter(struct vz__shard *sh, struct vz_msg *m, int reason)
{
	vz_runtime *rt = sh->rt;

	vz__undo_admit(sh, m);
	if (!(m->flags & VZ__MSG_UNCOUNTED)) {
		VZ__STAT_ADD(sh, dead_letters, 1);
		if (rt->cfg.dead_letter)
			rt->cfg.dead_letter(rt->cfg.dead_letter_ctx, m->to.id, m->type, m->data,
					    m->len, reason);
	}
	vz__msg_release(sh, m);
}

/* A message for an actor of this shard, from any source. */
void vz__deliver_local(struct vz__shard *sh, struct vz_msg *m)
{
	struct vz_actor *a = vz__actor_lookup(sh, m->to);

	if (!a) {
		/* A stop request for an actor that is already gone is moot. */
		if (m->type == VZ__MSG_STOP && (m->flags & VZ__MSG_SYS))
			vz__msg_release(sh, m);
		else
			vz__dead_letter(sh, m, VZ_ESTALE);
		return;
	}
	if (atomic_load_explicit(&sh->phase, memory_order_relaxed) != VZ__PHASE_RUN) {
		vz__dead_letter(sh, m, VZ_ESTOPPED);
		return;
	}
	vz__list_push(&a->mbox, m);
	vz__make_ready(sh, a);
}

static void finish_stop_if_asked(struct vz__shard *sh, struct vz_actor *a)
{
	if (a->flags & VZ__ACTOR_STOPPING) {
		a->flags &= (uint16_t)~VZ__ACTOR_STOPPING;
		vz__actor_stop_now(sh, a, VZ_ESTALE);
	}
}

/* Handle one message for a live actor. Returns 1 when receive ran. */
static unsigned dispatch(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m)
{
	if (m->flags & VZ__MSG_SYS) {
		if (m->type == VZ__MSG_STOP) {
			vz__msg_release(sh, m);
			vz__actor_stop_now(sh, a, VZ_ESTALE);
			return 0;
		}
		if (m->type == VZ_MSG_TIMER) {
			const vz_timer_event *ev = (const void *)m->data;

			if (!vz__timers_deliverable(&sh->timers, ev->timer.id)) {
				/* cancelled after it fired: dropped, by contract */
				vz__msg_release(sh, m);
				return 0;
			}
		}
	}
	a->flags |= VZ__ACTOR_RUNNING;
	a->spec->receive(a, a->state, m);
	a->flags &= (uint16_t)~VZ__ACTOR_RUNNING;
	vz__undo_admit(sh, m);
	if (!(m->flags & VZ__MSG_UNCOUNTED))
		VZ__STAT_ADD(sh, handled, 1);
	vz__msg_release(sh, m);
	finish_stop_if_asked(sh, a);
	return 1;
}

/*
 * Run ready actors: at most actors_per_turn of them, each at most `batch`
 * messages (runtime/DESIGN.md invariant 5). An actor with mail left goes to
 * the back of the queue, so one busy actor cannot starve the others.
 */
void vz__run_ready(struct vz__shard *sh, unsigned *handled)
{
	unsigned actors = sh->rt->cfg.actors_per_turn;
	unsigned batch = sh->rt->cfg.batch;
	unsigned done = 0;

	while (actors-- > 0 && sh->rq_head) {
		struct vz_actor *a = sh->rq_head;
		struct vz_msg *m;
		unsigned n = 0, batch_now;

		sh->rq_head = a->next_ready;
		if (!sh->rq_head)
			sh->rq_tail = NULL;
		a->flags &= (uint16_t)~VZ__ACTOR_READY;
		if (!(a->flags & VZ__ACTOR_LIVE)) {
			vz__actor_reap(sh, a);
			continue;
		}
		/* Only what was queued when the run began: a message the actor
		 * sends itself waits for its next turn, so a self-driving
		 * actor cannot take `batch` times its share. */
		if (batch > a->mbox.len)
			batch_now = a->mbox.len;
		else
			batch_now = batch;
		a->flags |= VZ__ACTOR_ACTIVE;
		while (n < batch_now && (a->flags & VZ__ACTOR_LIVE) &&
		       (m = vz__list_pop(&a->mbox))) {
			done += dispatch(sh, a, m);
			n++;
		}
		a->flags &= (uint16_t)~VZ__ACTOR_ACTIVE;
		if (!(a->flags & VZ__ACTOR_LIVE)) {
			/* Stopped during this run. If it sent itself a message
			 * earlier in the run, it was queued again then (while
			 * still live): the queue holds it and frees the slot
			 * when it pops it. Freeing it here too would put the
			 * slot on the free list twice. */
			if (!(a->flags & VZ__ACTOR_READY))
				vz__actor_reap(sh, a);
		} else if (a->mbox.head) {
			vz__make_ready(sh, a);
		}
	}
	*handled += done;
}
