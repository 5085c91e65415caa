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
#include "util/clock.h"

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
 * How often a turn with a time budget reads the clock: once per this many
 * dispatched messages (an actor run of n messages counts n, a run that only
 * reaps counts 1), checked after each actor run. A clock read
 * (CLOCK_MONOTONIC through the vDSO) costs about 28 ns on the development
 * VM, while the cheapest local send + dispatch costs about 9 ns (counting
 * local-burst64, 112 M msg/s): a read per 64 messages adds at most
 * 28 / (64 * 9) ~ 5% to that worst case and nothing measurable to actors
 * that do real work, and the budget is overrun by at most 64 messages plus
 * one actor run (at most `batch` messages). (Clock cost: 27-31 ns per
 * read, a loop of 10^7 clock_gettime(CLOCK_MONOTONIC) calls, tsc clock
 * source; dispatch cost: bench/README.md.)
 */
#define BUDGET_CHECK_MSGS 64u

/*
 * Run ready actors (runtime/DESIGN.md invariant 5, bounded latency of the loop):
 * at most actors_per_turn actor runs, each at most `batch` messages, and
 * with a turn budget (runtime.turn_budget_us > 0) no new run once the
 * budget is spent, checked every BUDGET_CHECK_MSGS messages. The first run
 * always happens, so a turn makes progress however small the budget.
 *
 * Fairness: the queue is FIFO. An actor with mail left after its run goes
 * to the back, as before. When the budget stops the turn, no actor is cut
 * off mid-run: the one whose run spent the budget finished its run and
 * went to the back like any other, and those not reached keep their places
 * at the front, in order, for the next turn. (Keeping the spender at the
 * front instead would let one hot actor start every turn.)
 */
void vz__run_ready(struct vz__shard *sh, unsigned *handled)
{
	unsigned actors = sh->rt->cfg.actors_per_turn;
	unsigned batch = sh->rt->cfg.batch;
	uint64_t budget_ns = (uint64_t)sh->rt->cfg.turn_budget_us * 1000u;
	uint64_t deadline_ns = 0;
	unsigned done = 0, since_check = 0;

	if (budget_ns && sh->rq_head) {
		/* The turn's own clock read; it also refreshes vz_now_ns(). */
		sh->now_ns = vz__mono_ns(); /* vz__clock_ns(), inline */
		deadline_ns = sh->now_ns + budget_ns;
	}
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
			n = 1;
			goto budget;
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
	budget:
		if (!deadline_ns)
			continue;
		since_check += n ? n : 1;
		if (since_check < BUDGET_CHECK_MSGS)
			continue;
		since_check = 0;
		sh->now_ns = vz__mono_ns(); /* vz__clock_ns(), inline */
		if (sh->now_ns >= deadline_ns)
			break; /* the rest stay queued, in order */
	}
	*handled += done;
}
