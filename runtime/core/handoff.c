// SPDX-License-Identifier: MIT
/*
 * Zero-copy hand-off (message.h): a send whose payload the sender writes
 * in place (vz_send_reserve / vz_send_commit / vz_send_abort) and the
 * forwarding of the message being handled (vz_forward). Both run on the
 * actor's own shard thread and touch only that shard's state (the
 * reservation record sh->ho, core.h), its mailboxes and its outboxes, so
 * nothing here is shared with another thread except through the paths
 * vz_send() already uses (the outbox and ring to another shard, and the
 * bounded-mailbox counter, a relaxed counter as in vz__bounded_admit()).
 *
 * Accounting (runtime/DESIGN.md invariant 2): a reservation counts as
 * nothing until its commit, which counts one send (sent_local or
 * sent_remote) exactly as vz_send() does; an abort, or a commit that
 * fails, gives back any bounded-mailbox place and the block. A forward is
 * one more send; the forwarded receive itself counts as handled.
 */
#include <string.h>

#include "core/core.h"

/* The common checks of a send from self (vz_send()'s order): on success
 * *shp is the calling shard. */
static int check_self(vz_actor *self, struct vz__shard **shp)
{
	struct vz__shard *sh;

	if (!self)
		return VZ_EINVAL;
	sh = self->shard;
	if (vz__tls_shard != sh)
		return VZ_EWRONGTHREAD;
	if (!(self->flags & VZ__ACTOR_LIVE))
		return VZ_ESTALE;
	*shp = sh;
	return 0;
}

static bool stopping(const struct vz__shard *sh)
{
	/* Relaxed, as in send_from() (send.c): a commit that races with
	 * stop is either refused here or dead-lettered by the drain. */
	return atomic_load_explicit(&sh->rt->state, memory_order_relaxed) >= VZ__RT_STOPPING ||
	       atomic_load_explicit(&sh->phase, memory_order_relaxed) != VZ__PHASE_RUN;
}

/* Checks on the target of a user send from sh, and its admissions (the
 * outbox bound for another shard, the bounded mailbox): send_from()'s
 * refusals in its order. *counted is 1 when a bounded-mailbox place is
 * held (give it back with vz__undo_admit() if the send does not happen). */
static int admit(struct vz__shard *sh, vz_ref to, size_t len, int *counted)
{
	vz_runtime *rt = sh->rt;
	unsigned dest;
	int rc;

	*counted = 0;
	if (vz_ref_shard(to) == VZ_MAX_SHARDS - 1 && !vz_ref_is_null(to))
		return VZ_EINVAL; /* another node: vz_send() */
	if (len > VZ_MSG_MAX_PAYLOAD)
		return VZ_ETOOBIG;
	if (vz_ref_is_null(to))
		return VZ_ESTALE;
	dest = vz_ref_shard(to);
	if (dest >= rt->nshards)
		return VZ_ENOSHARD;
	if (stopping(sh))
		return VZ_ESTOPPED;
	if (dest == sh->id) {
		if (!vz__actor_lookup(sh, to))
			return VZ_ESTALE;
	} else {
		rc = vz__outbox_admit(sh, dest);
		if (rc < 0)
			return rc;
	}
	/* Relaxed: the hint send_from() reads (core.h, bounded_live). */
	if (atomic_load_explicit(&rt->shards[dest]->bounded_live, memory_order_relaxed)) {
		rc = vz__bounded_admit(rt->shards[dest], to);
		if (rc < 0) {
			VZ__STAT_ADD(sh, mailbox_full, 1);
			return rc;
		}
		*counted = rc;
	}
	return 0;
}

/* Give back a bounded-mailbox place taken for `to` (nothing was sent). */
static void unadmit(struct vz__shard *sh, vz_ref to)
{
	struct vz_msg tmp = {.to = to, .flags = VZ__MSG_INFLIGHT};

	vz__undo_admit(sh->rt->shards[vz_ref_shard(to)], &tmp);
}

/* Close sh's reservation without sending: place and block given back. */
static void drop(struct vz__shard *sh)
{
	struct vz__handoff *h = &sh->ho;

	if (h->counted)
		unadmit(sh, h->to);
	if (h->m)
		vz__msg_release(sh, h->m);
	h->owner = NULL;
	h->buf = NULL;
	h->m = NULL;
	h->counted = 0;
}

VZ_API int vz_send_reserve(vz_actor *self, vz_ref to, uint32_t type, size_t len, void **buf)
{
	struct vz__shard *sh;
	struct vz__handoff *h;
	struct vz_msg *m = NULL;
	int rc, counted;

	if (buf)
		*buf = NULL;
	if (!self || !buf || type < VZ_MSG_USER)
		return VZ_EINVAL;
	rc = check_self(self, &sh);
	if (rc < 0)
		return rc;
	h = &sh->ho;
	if (h->owner)
		return VZ_EBUSY;
	rc = admit(sh, to, len, &counted);
	if (rc < 0)
		return rc;
	if (vz_ref_shard(to) != sh->id || len > VZ__CELL_INLINE_MAX) {
		/* Written where it travels: the block itself. */
		m = vz__msg_alloc(sh, len);
		if (!m) {
			if (counted)
				unadmit(sh, to);
			return VZ_ENOMEM;
		}
		m->to = to;
		m->from = vz_self(self);
		m->type = type;
		m->len = (uint32_t)len;
		m->corr = 0;
		if (counted)
			m->flags |= VZ__MSG_INFLIGHT;
	}
	h->owner = self;
	h->from = vz_self(self);
	h->to = to;
	h->type = type;
	h->len = (uint32_t)len;
	h->counted = counted;
	h->m = m;
	h->buf = m ? (void *)m->data : (void *)h->stage;
	*buf = h->buf;
	return 0;
}

/* The open reservation of self with this buf, or NULL. */
static struct vz__handoff *find(struct vz__shard *sh, vz_actor *self, void *buf)
{
	struct vz__handoff *h = &sh->ho;

	return h->owner == self && h->buf == buf ? h : NULL;
}

VZ_API int vz_send_commit(vz_actor *self, void *buf)
{
	struct vz__shard *sh;
	struct vz__handoff *h;
	struct vz_actor *target = NULL;
	struct vz_msg *m;
	unsigned dest;

	if (!self || !buf)
		return VZ_EINVAL;
	sh = self->shard;
	if (vz__tls_shard != sh)
		return VZ_EWRONGTHREAD;
	h = find(sh, self, buf);
	if (!h)
		return VZ_ENOENT;
	if (!(self->flags & VZ__ACTOR_LIVE)) {
		drop(sh);
		return VZ_ESTALE;
	}
	if (stopping(sh)) {
		drop(sh);
		return VZ_ESTOPPED;
	}
	dest = vz_ref_shard(h->to);
	if (dest == sh->id) {
		target = vz__actor_lookup(sh, h->to);
		if (!target) {
			drop(sh);
			return VZ_ESTALE;
		}
	}
	m = h->m;
	if (!m) {
		/* Small and local: into the target's cells, as vz_send(). */
		unsigned n = vz__cell_span(h->len);
		struct vz__cell *c = NULL;

		if (!(target->flags & VZ__ACTOR_SPILL))
			c = vz__mbox_reserve(&sh->segs, &target->mbox, n);
		if (c) {
			c->u.from = h->from.id;
			c->type = h->type;
			c->len = (uint16_t)h->len;
			c->flags = h->counted ? VZ__MSG_INFLIGHT : 0;
			c->kind = (uint8_t)n;
			memcpy((unsigned char *)c + offsetof(struct vz__cell, data), h->stage,
			       h->len);
			vz__mbox_commit(&target->mbox, c, n);
			h->counted = 0;
			drop(sh);
			VZ__STAT_ADD(sh, sent_local, 1);
			vz__make_ready(sh, target);
			return 0;
		}
		m = vz__msg_alloc(sh, h->len);
		if (!m) {
			drop(sh);
			return VZ_ENOMEM;
		}
		m->to = h->to;
		m->from = h->from;
		m->type = h->type;
		m->len = h->len;
		m->corr = 0;
		if (h->counted)
			m->flags |= VZ__MSG_INFLIGHT;
		memcpy(m->data, h->stage, h->len);
	}
	/* The message is on its way: nothing of the reservation to give
	 * back any more. */
	h->m = NULL;
	h->counted = 0;
	drop(sh);
	if (target) {
		VZ__STAT_ADD(sh, sent_local, 1);
		vz__mbox_push(sh, target, m);
	} else {
		VZ__STAT_ADD(sh, sent_remote, 1);
		vz__obs_add(&sh->obs.o->sent_to[dest], 1);
		vz__outbox_push(sh, dest, m, false);
	}
	return 0;
}

VZ_API int vz_send_abort(vz_actor *self, void *buf)
{
	struct vz__shard *sh;

	if (!self || !buf)
		return VZ_EINVAL;
	sh = self->shard;
	if (vz__tls_shard != sh)
		return VZ_EWRONGTHREAD;
	if (!find(sh, self, buf))
		return VZ_ENOENT;
	drop(sh);
	return 0;
}

void vz__handoff_end(struct vz__shard *sh, struct vz_actor *a)
{
	if (sh->ho.owner == a)
		drop(sh);
}

static void forwarded(struct vz__shard *sh, const struct vz_msg *m)
{
	sh->ho.fwd = m;
	/* Relaxed: this thread's own counter (vz__counter_add()). */
	sh->ho.fwd_at = atomic_load_explicit(&sh->stats.handled, memory_order_relaxed);
}

/*
 * vz_forward(). The block of the message being handled is handed on when
 * this shard may: to an actor of this shard always (whoever's pool it came
 * from, it goes home from here as from any receiver), to another shard
 * when it is not a foreign-pool block (those must be given back by the
 * shard they were posted to, msg_pool.c). Otherwise, and for a view of an
 * inline cell, the payload is sent as a copy with the same sender and
 * correlation. Once the block is in an outbox it may be published, handled
 * and given back by another shard before this receive returns, so nothing
 * reads it after the push: sh->ho.taken tells dispatch() not to release it.
 */
VZ_API int vz_forward(vz_actor *self, const vz_msg *cm, vz_ref to)
{
	struct vz_msg *m = (struct vz_msg *)(uintptr_t)cm;
	struct vz__shard *sh;
	struct vz_actor *target = NULL;
	unsigned dest;
	uint32_t corr;
	int rc, counted;

	if (!self || !m)
		return VZ_EINVAL;
	rc = check_self(self, &sh);
	if (rc < 0)
		return rc;
	/* Only the message of the running receive (stall-report fields,
	 * stored by dispatch before every receive call). */
	if (sh->obs.cur_msg != m || sh->obs.cur_actor != self || !(self->flags & VZ__ACTOR_RUNNING))
		return VZ_EINVAL;
	if (m->type < VZ_MSG_USER)
		return VZ_EINVAL;
	if (sh->ho.fwd == m &&
	    sh->ho.fwd_at == atomic_load_explicit(&sh->stats.handled, memory_order_relaxed))
		return VZ_ESTATE;
	corr = (m->flags & VZ__MSG_REPLY) ? 0 : m->corr;
	dest = vz_ref_shard(to);
	if (dest == VZ_MAX_SHARDS - 1 && !vz_ref_is_null(to)) {
		/* Another node: the cluster copies it anyway. */
		rc = vz__remote_send(sh->rt, sh, m->from, to, m->type, vz_msg_data(m), m->len);
		if (rc <= 0) {
			if (rc == 0)
				forwarded(sh, m);
			return rc;
		}
		return VZ_ENOSHARD; /* no cluster: as vz_send() */
	}
	if ((m->flags & VZ__MSG_VIEW) ||
	    (dest != sh->id && dest < sh->rt->nshards && (m->owner & VZ__OWNER_FOREIGN))) {
		/* A copy: m is handled here and released as usual. */
		rc = vz__send_corr(sh, m->from, to, m->type, 0, corr, vz_msg_data(m), m->len);
		if (rc == 0)
			forwarded(sh, m);
		return rc;
	}
	rc = admit(sh, to, m->len, &counted);
	if (rc < 0)
		return rc;
	if (dest == sh->id)
		target = vz__actor_lookup(sh, to);
	/* Its place against the mailbox it was sent to goes back now: the
	 * receive that holds it is as good as done. */
	vz__undo_admit(sh, m);
	m->to = to;
	m->corr = corr;
	m->flags &= (uint8_t)~VZ__MSG_REPLY;
	if (counted)
		m->flags |= VZ__MSG_INFLIGHT;
	forwarded(sh, m);
	sh->ho.taken = m;
	if (target) {
		VZ__STAT_ADD(sh, sent_local, 1);
		vz__mbox_push(sh, target, m);
	} else {
		VZ__STAT_ADD(sh, sent_remote, 1);
		vz__obs_add(&sh->obs.o->sent_to[dest], 1);
		vz__outbox_push(sh, dest, m, false);
	}
	return 0;
}
