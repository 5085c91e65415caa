/* SPDX-License-Identifier: MIT */
/*
 * Delivery on the target's shard (deliver.c): putting a message in an
 * actor's mailbox or urgent lane, the run queue, running ready actors and
 * dead letters. The pushes and the run queue's append are inline: every
 * send to a local actor and every arrival takes them. Owner thread only.
 */
#ifndef VZ_CORE_DELIVER_H
#define VZ_CORE_DELIVER_H

#include <stdbool.h>

#include "core/actor.h"
#include "core/mailbox.h"
#include "core/msg.h"
#include "core/sched.h"
#include "core/shard.h"

/* deliver.c */
void vz__deliver_local(struct vz__shard *sh, struct vz_msg *m);
void vz__dead_letter(struct vz__shard *sh, struct vz_msg *m, int reason);
void vz__undo_admit(struct vz__shard *sh, struct vz_msg *m);
void vz__run_ready(struct vz__shard *sh, unsigned *handled);
/* Set up sh->sched from the runtime's config (shard create). */
void vz__sched_init(struct vz__shard *sh);

/* Append to its class's run queue unless already there. Owner thread.
 * ready_ns is stored always (a store to a line this writes anyway) rather
 * than behind a test of whether classes are on. */
static inline void vz__make_ready(struct vz__shard *sh, struct vz_actor *a)
{
	struct vz__runq *q;

	if (a->flags & VZ__ACTOR_READY)
		return;
	q = &sh->rq[a->sched_cls];
	a->flags |= VZ__ACTOR_READY;
	a->next_ready = NULL;
	a->ready_ns = sh->now_ns;
	if (q->tail)
		q->tail->next_ready = a;
	else
		q->head = a;
	q->tail = a;
}

/* Append block m to a's mailbox (no urgent test): a cell holding the
 * pointer, or, when no segment can be had, the spill list (never fails:
 * arrivals from other threads were accepted already). */
static inline void vz__mbox_push_block(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m)
{
	struct vz__cell *c;

	if (__builtin_expect(!(a->flags & VZ__ACTOR_SPILL), 1) &&
	    __builtin_expect((c = vz__mbox_reserve(&sh->segs, &a->mbox, 1)) != NULL, 1)) {
		c->u.msg = m;
		c->kind = VZ__CELL_BLOCK;
		vz__mbox_commit(&a->mbox, c, 1);
		return;
	}
	a->flags |= VZ__ACTOR_SPILL;
	vz__list_push(&a->spill, m);
}

/* Put m in a's mailbox, or in its urgent lane, and make a ready. */
static inline void vz__mbox_push(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m)
{
	if (__builtin_expect(vz__msg_urgent(m), 0)) {
		atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
		if (a->urg_tail)
			vz__msg_set_next(a->urg_tail, m);
		else
			a->urg_head = m;
		a->urg_tail = m;
	} else {
		vz__mbox_push_block(sh, a, m);
	}
	vz__make_ready(sh, a);
}

/* Any ready actor on sh? Owner thread. */
static inline bool vz__any_ready(const struct vz__shard *sh)
{
	for (unsigned c = 0; c < sh->sched.nclasses; c++)
		if (sh->rq[c].head)
			return true;
	return false;
}

#endif
