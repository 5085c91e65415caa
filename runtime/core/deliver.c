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
#include <stddef.h>
#include <string.h>

#include "core/core.h"
#include "core/direct.h"
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

	if (__builtin_expect((m->flags & VZ__MSG_SYS) && m->type >= VZ__MSG_MONITOR, 0)) {
		vz__life_dead(sh, m, reason); /* answers it (life.c), uncounted */
		return;
	}
	vz__undo_admit(sh, m);
	if ((m->flags & VZ__MSG_SYS) && m->type == VZ_MSG_TIMER) {
		vz_timer_event ev;

		/* A fired one-shot's slot waits for this message: release it
		 * (its owner stopped, or the shard is stopping). */
		memcpy(&ev, m->data, sizeof ev);
		vz__timers_deliverable(&sh->timers, ev.timer.id);
	}
	if ((m->flags & VZ__MSG_SYS) && m->type == VZ_MSG_IO)
		vz__aio_msg_done(sh, m, true); /* its buffer back, counted as dropped */
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

	if (__builtin_expect(!a && vz__ref_gen(m->to) == 0, 0)) {
		vz__shard_msg(sh, m); /* to the shard itself (spawn_remote.c) */
		return;
	}
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
	vz__mbox_push(sh, a, m);
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
	/* Monitors, links, asks (life.c): requests, DOWN filtering, reply
	 * matching and ask timeouts. One test on the common path. */
	if (__builtin_expect(m->flags & (VZ__MSG_SYS | VZ__MSG_REPLY), 0) &&
	    vz__life_filter(sh, a, m))
		return 0;
	/* The simulation's order signature (runtime/sim): one predictable
	 * branch, never taken in a real runtime. */
	if (__builtin_expect(sh->sim != NULL, 0))
		vz__sim_handled(sh->sim, sh, m);
	/* For a stall report (stats/obs.h): plain stores, read only by this
	 * thread's own signal handler. */
	sh->obs.cur_actor = a;
	sh->obs.cur_msg = m;
	/* Compiler-only barrier (no instruction): the handler, which may
	 * interrupt this thread anywhere, sees these two before RUNNING. Pairs
	 * with the signal fence in stall_handler(). */
	atomic_signal_fence(memory_order_release);
	a->flags |= VZ__ACTOR_RUNNING;
	a->spec->receive(a, a->state, m);
	a->flags &= (uint16_t)~VZ__ACTOR_RUNNING;
	if (__builtin_expect(sh->ho.taken == m, 0)) {
		/* vz_forward() handed the block on (handoff.c): it is no
		 * longer ours to read or release; the receive counts. */
		sh->ho.taken = NULL;
		VZ__STAT_ADD(sh, handled, 1);
		finish_stop_if_asked(sh, a);
		return 1;
	}
	if (m->flags & VZ__MSG_IOBUF)
		vz__aio_msg_done(sh, m, false); /* not kept: back to the ring */
	vz__undo_admit(sh, m);
	if (!(m->flags & VZ__MSG_UNCOUNTED))
		VZ__STAT_ADD(sh, handled, 1);
	vz__msg_release(sh, m);
	finish_stop_if_asked(sh, a);
	return 1;
}

/* Handle an inline cell for live actor a (mailbox.h): the receive call
 * sees a view of it (struct vz_msg with VZ__MSG_VIEW, core.h) built on
 * this frame; the payload stays in the cell, which stays valid until the
 * caller's vz__mbox_settle(). Inline cells are plain user messages (never
 * VZ__MSG_SYS, VZ__MSG_REPLY or VZ__MSG_UNCOUNTED), so none of dispatch()'s
 * runtime-message tests apply. Returns 1 (receive ran). */
static inline unsigned dispatch_cell(struct vz__shard *sh, struct vz_actor *a,
				     const struct vz__cell *c)
{
	struct vz_msg v;
	uint8_t cflags = c->flags;

	v.view_data = (const unsigned char *)c + offsetof(struct vz__cell, data);
	v.from.id = c->u.from;
	v.type = c->type;
	v.len = c->len;
	v.flags = VZ__MSG_VIEW;
	v.corr = 0;
	if (__builtin_expect(sh->sim != NULL, 0)) {
		v.to = vz__make_ref(sh->id, a->slot, a->gen);
		vz__sim_handled(sh->sim, sh, &v);
	}
	/* For a stall report, as in dispatch(). */
	sh->obs.cur_actor = a;
	sh->obs.cur_msg = &v;
	/* Compiler-only barrier: pairs with the signal fence in
	 * stall_handler(), as in dispatch(). */
	atomic_signal_fence(memory_order_release);
	a->flags |= VZ__ACTOR_RUNNING;
	a->spec->receive(a, a->state, &v);
	a->flags &= (uint16_t)~VZ__ACTOR_RUNNING;
	if (__builtin_expect(cflags & VZ__MSG_INFLIGHT, 0))
		/* Relaxed: a pure counter (vz__bounded_admit()). */
		atomic_fetch_sub_explicit(&a->inflight, 1, memory_order_relaxed);
	VZ__STAT_ADD(sh, handled, 1);
	finish_stop_if_asked(sh, a);
	return 1;
}

/* Messages queued for a: cells, then the spill list. */
static inline uint32_t mail_len(const struct vz_actor *a)
{
	return a->mbox.len + a->spill.len;
}

/* Handle a's oldest message: the cells first, then (only once they are
 * empty, so order holds) the spill list, which is left for good when it
 * empties. The caller knows a has one (mail_len() > 0). Returns 1 when a
 * receive ran. */
static inline unsigned run_next(struct vz__shard *sh, struct vz_actor *a)
{
	struct vz__cell *c;
	unsigned r;

	if (__builtin_expect(vz__mbox_empty(&a->mbox), 0)) {
		struct vz_msg *m = vz__list_pop(&a->spill);

		if (!m) /* nothing queued after all: a caller's bug, but harmless */
			return 0;
		if (!a->spill.head)
			a->flags &= (uint16_t)~VZ__ACTOR_SPILL;
		return dispatch(sh, a, m);
	}
	c = vz__mbox_pop(&sh->segs, &a->mbox);
	if (c->kind == VZ__CELL_BLOCK)
		r = dispatch(sh, a, c->u.msg);
	else
		r = dispatch_cell(sh, a, c);
	vz__mbox_settle(&sh->segs, &a->mbox);
	return r;
}

/*
 * Handle the inline cells (mailbox.h) at the head of a's mailbox, at most
 * max of them: what run_next() and dispatch_cell() do for each, with what
 * is the same for every message of the run done once. That is the view's
 * constant fields (flags VZ__MSG_VIEW, corr 0: a view on this frame, as
 * dispatch_cell()'s is on its frame), a's receive function and state
 * (fixed while a lives, and the loop ends when a stops) and the
 * simulation's test (the caller never comes here for a simulated shard).
 * Stops before a block (run_next() dispatches it), at an empty mailbox (a
 * spill list may follow) and when a is no longer live. Per message the
 * stall report's pointers are still stored, since a receive call may run
 * a nested turn (an embedded shard polled from inside it) that stores its
 * own. Returns the messages handled (each one a receive call).
 */
static unsigned run_cells(struct vz__shard *sh, struct vz_actor *a, unsigned max)
{
	struct vz__mbox *mb = &a->mbox;
	vz_receive_fn receive = a->spec->receive;
	void *state = a->state;
	struct vz_msg v;
	unsigned n = 0;

	v.flags = VZ__MSG_VIEW;
	v.corr = 0;
	while (n < max) {
		struct vz__cell *c = mb->head;
		uint8_t cflags;

		if (c == mb->tail)
			break;
		if (__builtin_expect(c->kind == VZ__CELL_LINK, 0)) {
			/* vz__mbox_pop()'s step to the next segment, kept
			 * (head moved) even if a block stops the run there. */
			struct vz__cell *next = c->u.next;

			vz__seg_free(&sh->segs, vz__cell_seg(c, c->type), c->type);
			mb->head = c = next;
		}
		if (c->kind == VZ__CELL_BLOCK)
			break;
		/* vz__mbox_pop() of an inline cell. */
		mb->head = c + c->kind;
		mb->len--;
		cflags = c->flags;
		v.view_data = (const unsigned char *)c + offsetof(struct vz__cell, data);
		v.from.id = c->u.from;
		v.type = c->type;
		v.len = c->len;
		/* For a stall report, as in dispatch(). */
		sh->obs.cur_actor = a;
		sh->obs.cur_msg = &v;
		/* Compiler-only barrier: pairs with the signal fence in
		 * stall_handler(), as in dispatch(). */
		atomic_signal_fence(memory_order_release);
		a->flags |= VZ__ACTOR_RUNNING;
		receive(a, state, &v);
		a->flags &= (uint16_t)~VZ__ACTOR_RUNNING;
		if (__builtin_expect(cflags & VZ__MSG_INFLIGHT, 0))
			/* Relaxed: a pure counter (vz__bounded_admit()). */
			atomic_fetch_sub_explicit(&a->inflight, 1, memory_order_relaxed);
		VZ__STAT_ADD(sh, handled, 1);
		n++;
		finish_stop_if_asked(sh, a);
		/* The cell is done with (the receive call returned). */
		vz__mbox_settle(&sh->segs, mb);
		if (!(a->flags & VZ__ACTOR_LIVE))
			break;
	}
	return n;
}

/* Handle a's urgent lane (vz__msg_urgent()): before any of its user mail.
 * Caller holds a (VZ__ACTOR_ACTIVE), so a stop here leaves the slot to
 * the run loop. */
static void run_urgent(struct vz__shard *sh, struct vz_actor *a)
{
	struct vz_msg *m;

	while ((a->flags & VZ__ACTOR_LIVE) && (m = a->urg_head)) {
		a->urg_head = vz__msg_next(m);
		if (!a->urg_head)
			a->urg_tail = NULL;
		dispatch(sh, a, m);
	}
}

/* Pop the head of class c's run queue. */
static inline struct vz_actor *rq_pop(struct vz__shard *sh, unsigned c)
{
	struct vz__runq *q = &sh->rq[c];
	struct vz_actor *a = q->head;

	q->head = a->next_ready;
	if (!q->head)
		q->tail = NULL;
	a->flags &= (uint16_t)~VZ__ACTOR_READY;
	return a;
}

/* After a run: give the slot back, or queue the actor again. */
static inline void after_run(struct vz__shard *sh, struct vz_actor *a)
{
	if (!(a->flags & VZ__ACTOR_LIVE)) {
		/* Stopped during this run. If it sent itself a message
		 * earlier in the run, it was queued again then (while
		 * still live): the queue holds it and frees the slot
		 * when it pops it. Freeing it here too would put the
		 * slot on the free list twice. */
		if (!(a->flags & VZ__ACTOR_READY))
			vz__actor_reap(sh, a);
	} else if (vz__actor_has_mail(a)) {
		vz__make_ready(sh, a);
	}
}

/* Handle a view of a message that stays where it arrived (an incoming ring
 * slot, core/direct.h), built by the caller: as dispatch_cell() for a
 * mailbox cell, whose rules it shares. Views are plain user messages
 * (never VZ__MSG_SYS, VZ__MSG_REPLY or VZ__MSG_UNCOUNTED), so none of
 * dispatch()'s runtime-message tests apply; unlike a cell's, the view
 * carries an ask's correlation (vz_reply() reads it). Returns 1. */
static unsigned dispatch_view(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *v)
{
	if (__builtin_expect(sh->sim != NULL, 0))
		vz__sim_handled(sh->sim, sh, v);
	/* For a stall report, as in dispatch(). */
	sh->obs.cur_actor = a;
	sh->obs.cur_msg = v;
	/* Compiler-only barrier: pairs with the signal fence in
	 * stall_handler(), as in dispatch(). */
	atomic_signal_fence(memory_order_release);
	a->flags |= VZ__ACTOR_RUNNING;
	a->spec->receive(a, a->state, v);
	a->flags &= (uint16_t)~VZ__ACTOR_RUNNING;
	if (__builtin_expect(v->flags & VZ__MSG_INFLIGHT, 0))
		/* Relaxed: a pure counter (vz__bounded_admit()). */
		atomic_fetch_sub_explicit(&a->inflight, 1, memory_order_relaxed);
	VZ__STAT_ADD(sh, handled, 1);
	finish_stop_if_asked(sh, a);
	return 1;
}

/* A run of one message outside the run queue (core/direct.h says when):
 * what vz__run_ready() does around a run, for one message. */
unsigned vz__run_direct(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m)
{
	/* Depth 1: the message would have been the mailbox's only one; no
	 * queue wait (ready_ns 0). */
	uint64_t t0 = vz__obs_run_begin(&sh->obs, a->otype, 1, 0);
	unsigned done;

	/* Held as by the run loop: a stop inside receive leaves the slot to
	 * after_run() below. */
	a->flags |= VZ__ACTOR_ACTIVE;
	if (m->flags & VZ__MSG_VIEW)
		done = dispatch_view(sh, a, m);
	else
		done = dispatch(sh, a, m);
	/* A reservation left open ends with the run (message.h). */
	if (__builtin_expect(sh->ho.owner != NULL, 0))
		vz__handoff_end(sh, a);
	a->flags &= (uint16_t)~VZ__ACTOR_ACTIVE;
	t0 = vz__obs_run_end(a->otype, t0, done);
	if (__builtin_expect(t0 != 0, 0) && !sh->sim)
		sh->now_ns = t0;
	after_run(sh, a);
	return done;
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
 * A timer is due (or may be: the wheel's next deadline is a lower bound) at
 * the turn's fresh clock reading sh->now_ns: the turn ends there as it
 * does when its budget is spent, and the loop expires the timer right
 * after it, so a flood of messages delays an expiry by at most the time
 * between two clock reads of the turn (BUDGET_CHECK_MSGS messages plus one
 * actor run), not by the rest of the budget (include/veloz/timer.h states
 * the promise). The cost is a load when no timer is live, else the O(1)
 * next-deadline query, once per clock read. Not in a simulation: its time
 * does not move inside a turn, and its drawn batch and actors_per_turn
 * stand in for the budget (runtime/sim/NOTES.md).
 */
static inline bool timer_due(const struct vz__shard *sh)
{
	return !sh->sim && vz__timers_due(&sh->timers, sh->now_ns);
}

static void run_classes(struct vz__shard *sh, unsigned *handled);

/*
 * Run ready actors (runtime/DESIGN.md invariant 5, bounded latency of the loop):
 * at most actors_per_turn actor runs, each at most `batch` messages, and
 * with a turn budget (runtime.turn_budget_us > 0) no new run once the
 * budget is spent or a timer is due (timer_due()), checked every
 * BUDGET_CHECK_MSGS messages. The first run always happens, so a turn
 * makes progress however small the budget and however often timers fire.
 *
 * Fairness: the queue is FIFO. An actor with mail left after its run goes
 * to the back, as before. When the budget stops the turn, no actor is cut
 * off mid-run: the one whose run spent the budget finished its run and
 * went to the back like any other, and those not reached keep their places
 * at the front, in order, for the next turn. (Keeping the spender at the
 * front instead would let one hot actor start every turn.)
 *
 * With scheduling classes configured (nclasses >= 2) run_classes() does
 * the turn instead; with one class this loop is the whole scheduler, as
 * before classes existed, plus one test per run for the urgent lane.
 */
void vz__run_ready(struct vz__shard *sh, unsigned *handled)
{
	unsigned actors = sh->rt->cfg.actors_per_turn;
	unsigned batch = sh->rt->cfg.batch;
	uint64_t budget_ns = (uint64_t)sh->rt->cfg.turn_budget_us * 1000u;
	uint64_t deadline_ns = 0;
	unsigned done = 0, since_check = 0;

	if (__builtin_expect(sh->sched.nclasses > 1, 0)) {
		run_classes(sh, handled);
		return;
	}
	if (budget_ns && sh->rq[0].head) {
		/* The turn's own clock read; it also refreshes vz_now_ns(). */
		sh->now_ns = vz__shard_clock(sh);
		deadline_ns = sh->now_ns + budget_ns;
	}
	while (actors-- > 0 && sh->rq[0].head) {
		struct vz_actor *a = rq_pop(sh, 0);
		unsigned n = 0, batch_now, done0 = done;
		uint64_t t0;

		if (!(a->flags & VZ__ACTOR_LIVE)) {
			vz__actor_reap(sh, a);
			n = 1;
			goto budget;
		}
		t0 = vz__obs_run_begin(&sh->obs, a->otype, mail_len(a), a->ready_ns);
		a->flags |= VZ__ACTOR_ACTIVE;
		if (__builtin_expect(a->urg_head != NULL, 0))
			run_urgent(sh, a);
		/* Only what was queued when the run began: a message the actor
		 * sends itself waits for its next turn, so a self-driving
		 * actor cannot take `batch` times its share. (A stop empties
		 * the mailbox and clears LIVE, so mail_len() > 0 while LIVE.) */
		batch_now = mail_len(a);
		if (batch_now > batch)
			batch_now = batch;
		while (n < batch_now && (a->flags & VZ__ACTOR_LIVE)) {
			/* Inline cells a run at a time (run_cells()); a block,
			 * the spill list and a simulated shard one message
			 * at a time (run_next()). */
			if (__builtin_expect(!sh->sim, 1)) {
				unsigned k = run_cells(sh, a, batch_now - n);

				n += k;
				done += k;
				if (n == batch_now || !(a->flags & VZ__ACTOR_LIVE))
					break;
			}
			done += run_next(sh, a);
			n++;
		}
		/* A reservation left open ends with the run (message.h). */
		if (__builtin_expect(sh->ho.owner != NULL, 0))
			vz__handoff_end(sh, a);
		a->flags &= (uint16_t)~VZ__ACTOR_ACTIVE;
		t0 = vz__obs_run_end(a->otype, t0, done - done0);
		/* A timed run's fresh clock reading; never in a simulation,
		 * whose time is virtual (runtime/sim). */
		if (__builtin_expect(t0 != 0, 0) && !sh->sim)
			sh->now_ns = t0;
		after_run(sh, a);
	budget:
		if (!deadline_ns)
			continue;
		since_check += n ? n : 1;
		if (since_check < BUDGET_CHECK_MSGS)
			continue;
		since_check = 0;
		sh->now_ns = vz__shard_clock(sh);
		if (sh->now_ns >= deadline_ns || timer_due(sh))
			break; /* the rest stay queued, in order */
	}
	*handled += done;
}

/* ---- scheduling classes ------------------------------------------------ */

/*
 * Virtual runtime is charged ns * VZ__VR_SCALE / shares, so with shares up
 * to 10000 a class charged 1 ns still moves (2^16 / 10000 > 1), and a
 * 64-bit vruntime lasts 2^64 / 2^16 ns ~ 8 years of one class running
 * with share 1.
 */
#define VZ__VR_SCALE 65536u

/*
 * How often a run of a class that is not latency-sensitive looks for
 * latency-class work that arrived from other threads (rings, inbox): once
 * per this many messages; a latency-class actor made ready by a local send
 * is seen after every message (a test of its queue head). Ring arrivals
 * end the turn so the loop drains them; the doorbell words are read-mostly
 * for this shard, so the look costs a load that hits the cache until a
 * producer rings.
 */
#define LAT_POLL_MSGS 4u

void vz__sched_init(struct vz__shard *sh)
{
	const vz_config *cfg = &sh->rt->cfg;
	struct vz__sched *s = &sh->sched;
	unsigned n = cfg->nclasses > 1 ? cfg->nclasses : 1;

	memset(s, 0, sizeof *s);
	s->nclasses = n;
	for (unsigned c = 0; c < n; c++) {
		struct vz__class *cl = &s->cls[c];

		cl->shares = n > 1 && cfg->classes[c].shares ? cfg->classes[c].shares : 1;
		cl->quota_ns = n > 1 ? (uint64_t)cfg->classes[c].quota_us * 1000u : 0;
		cl->latency = n > 1 && cfg->classes[c].latency;
		if (cl->latency)
			s->latency |= 1u << c;
	}
}

static inline unsigned wait_bucket(uint64_t ns)
{
	unsigned b;

	if (!ns)
		return 0;
	b = 64u - (unsigned)__builtin_clzll(ns); /* ns in [2^(b-1), 2^b) */
	return b < VZ__WAIT_BUCKETS ? b : VZ__WAIT_BUCKETS - 1;
}

/* Has a latency-sensitive class a ready actor? */
static inline bool latency_ready(const struct vz__shard *sh)
{
	for (uint32_t m = sh->sched.latency; m; m &= m - 1)
		if (sh->rq[__builtin_ctz(m)].head)
			return true;
	return false;
}

/*
 * The class to run next, or -1 when none is ready or every ready class has
 * spent its turn quota. Least virtual runtime wins; a tie goes to a
 * latency-sensitive class, then to the lower index. A class that has
 * become ready since the last pick (it was idle) first has its virtual
 * runtime raised to the shard's floor, min_vr: the least virtual runtime
 * of the ready classes as of the last pick, which never goes down. Idle
 * time banks no credit, so a class that wakes cannot then monopolise the
 * shard to catch up.
 */
static int pick(struct vz__shard *sh)
{
	struct vz__sched *s = &sh->sched;
	uint32_t ready = 0;
	uint64_t best_vr = UINT64_MAX, min_ready = UINT64_MAX;
	int best = -1;

	for (unsigned c = 0; c < s->nclasses; c++)
		if (sh->rq[c].head)
			ready |= 1u << c;
	for (uint32_t m = ready; m; m &= m - 1) {
		unsigned c = (unsigned)__builtin_ctz(m);
		struct vz__class *cl = &s->cls[c];

		if (!(s->runnable & (1u << c)) && cl->vruntime < s->min_vr)
			cl->vruntime = s->min_vr; /* woke: no banked credit */
		if (cl->vruntime < min_ready)
			min_ready = cl->vruntime;
		if (cl->quota_ns && cl->turn_ns >= cl->quota_ns)
			continue;
		if (cl->vruntime < best_vr ||
		    (cl->vruntime == best_vr && cl->latency && !s->cls[best].latency)) {
			best_vr = cl->vruntime;
			best = (int)c;
		}
	}
	s->runnable = ready;
	if (ready && min_ready > s->min_vr)
		s->min_vr = min_ready;
	return best;
}

/*
 * What a run of n messages that took `ran` ns is charged: at most
 * CHARGE_CAP times what the class's recent messages took (msg_ns, a moving
 * average of 1/8 weight), plus 1 us. On a shared machine the excess of
 * such a run is nearly always time the OS took the CPU away (preemption,
 * interrupts), which no class should pay for: uncapped, one 4 ms
 * preemption charged to a class makes the scheduler give the other class
 * 4 ms * shares ratio to catch up, and the split drifts far from the
 * shares. A class whose messages really get slower is charged the new
 * cost within a few runs, since the average follows every run (each
 * sample clamped to 8x the average, so a single outlier moves it once).
 */
#define CHARGE_CAP 4u

static inline uint64_t charge(struct vz__class *cl, uint64_t ran, unsigned n)
{
	uint64_t per = ran / (n ? n : 1), cap;

	if (!cl->msg_ns) {
		cl->msg_ns = per ? per : 1;
		return ran;
	}
	if (per > 8 * cl->msg_ns)
		per = 8 * cl->msg_ns;
	cl->msg_ns = cl->msg_ns - cl->msg_ns / 8 + per / 8 + 1;
	cap = CHARGE_CAP * cl->msg_ns * (n ? n : 1) + 1000u;
	return ran < cap ? ran : cap;
}

/*
 * One turn with classes: like the loop above (actors_per_turn runs of at
 * most `batch` messages, the turn budget, a due timer), but each run is of the actor
 * at the head of the class pick() chooses, and is timed with the clock
 * (one read per run, which also keeps sh->now_ns fresh) and charged to
 * its class. A run gives the shard back between two messages when:
 * - its class has a quota and has used it this turn (clock read per
 *   message for such classes only);
 * - its class is not latency-sensitive and a latency class has work: a
 *   ready actor (looked at after every message) or, every LAT_POLL_MSGS
 *   messages, anything in the rings or the inbox, in which case the turn
 *   ends so the loop drains them.
 * An actor cut short keeps its place at the front of its class's queue.
 */
static void run_classes(struct vz__shard *sh, unsigned *handled)
{
	struct vz__sched *s = &sh->sched;
	unsigned actors = sh->rt->cfg.actors_per_turn;
	unsigned batch = sh->rt->cfg.batch;
	uint64_t budget_ns = (uint64_t)sh->rt->cfg.turn_budget_us * 1000u;
	uint64_t now, deadline_ns, stale_mark, turn_start;
	unsigned done = 0;
	bool has_lat = s->latency != 0, end_turn = false;

	if (!vz__any_ready(sh))
		return;
	/* Actors stamped with this value (or later) became ready after the
	 * last clock read, somewhere in between: their wait is counted from
	 * this turn's start (resolution one loop turn, as the stats say). */
	stale_mark = sh->now_ns;
	now = turn_start = sh->now_ns = vz__shard_clock(sh);
	deadline_ns = budget_ns ? now + budget_ns : UINT64_MAX;
	for (unsigned c = 0; c < s->nclasses; c++)
		s->cls[c].turn_ns = 0;
	while (actors-- > 0 && !end_turn && now < deadline_ns) {
		int c = pick(sh);
		struct vz__class *cl;
		struct vz_actor *a;
		unsigned n = 0, batch_now;
		uint64_t start, left, ran, since, t0;
		bool cut = false, watch;
		unsigned done0 = done;

		if (c < 0)
			break;
		cl = &s->cls[c];
		a = rq_pop(sh, (unsigned)c);
		if (!(a->flags & VZ__ACTOR_LIVE)) {
			vz__actor_reap(sh, a);
			continue;
		}
		since = a->ready_ns >= stale_mark ? turn_start : a->ready_ns;
		vz__counter_add(&cl->st.wait[wait_bucket(now > since ? now - since : 0)], 1);
		start = now;
		left = cl->quota_ns ? cl->quota_ns - cl->turn_ns : UINT64_MAX;
		watch = has_lat && !cl->latency;
		t0 = vz__obs_run_begin(&sh->obs, a->otype, mail_len(a), a->ready_ns);
		a->flags |= VZ__ACTOR_ACTIVE;
		if (a->urg_head)
			run_urgent(sh, a);
		batch_now = mail_len(a);
		if (batch_now > batch)
			batch_now = batch;
		while (n < batch_now && (a->flags & VZ__ACTOR_LIVE)) {
			done += run_next(sh, a);
			n++;
			if (n == batch_now)
				break;
			if (cl->quota_ns && vz__shard_clock(sh) - start >= left) {
				cut = true;
				break;
			}
			if (watch) {
				if (latency_ready(sh)) {
					cut = true;
					break;
				}
				if (n % LAT_POLL_MSGS == 0 && vz__has_incoming(sh)) {
					cut = end_turn = true;
					break;
				}
			}
		}
		if (__builtin_expect(sh->ho.owner != NULL, 0))
			vz__handoff_end(sh, a);
		a->flags &= (uint16_t)~VZ__ACTOR_ACTIVE;
		vz__obs_run_end(a->otype, t0, done - done0);
		now = sh->now_ns = vz__shard_clock(sh);
		if (timer_due(sh))
			deadline_ns = now; /* ends the turn, as a spent budget does */
		ran = charge(cl, now - start, n);
		cl->turn_ns += ran;
		cl->vruntime += ran * VZ__VR_SCALE / cl->shares;
		vz__counter_add(&cl->st.runtime_ns, ran);
		vz__counter_add(&cl->st.messages, n);
		vz__counter_add(&cl->st.runs, 1);
		if (cl->quota_ns && cl->turn_ns > cl->quota_ns)
			vz__counter_add(&cl->st.quota_violations, 1);
		/* A latency class's replies to other shards leave now, not
		 * after the rest of the turn has run other classes. */
		if (cl->latency && !vz__outboxes_empty(sh))
			vz__flush_outboxes(sh);
		if (cut && (a->flags & VZ__ACTOR_LIVE) && !(a->flags & VZ__ACTOR_READY) &&
		    vz__actor_has_mail(a)) {
			/* Cut short: back to the front of its class. */
			struct vz__runq *q = &sh->rq[c];

			a->flags |= VZ__ACTOR_READY;
			a->ready_ns = now;
			a->next_ready = q->head;
			q->head = a;
			if (!q->tail)
				q->tail = a;
		} else {
			after_run(sh, a);
		}
	}
	*handled += done;
}
