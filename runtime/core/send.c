// SPDX-License-Identifier: MIT
/*
 * The send paths: from an actor or shard thread (local mailbox or outbox
 * to another shard) and from any other thread (the target shard's foreign
 * inbox). All checks come before anything changes, so a refused send has
 * no effect (runtime/DESIGN.md invariant 3).
 */
#include <string.h>

#include "core/core.h"
#include "util/fence.h"

static int check_args(const vz_runtime *rt, vz_ref to, const void *payload, size_t len)
{
	if (!payload && len)
		return VZ_EINVAL;
	if (len > VZ_MSG_MAX_PAYLOAD)
		return VZ_ETOOBIG;
	if (vz_ref_is_null(to))
		return VZ_ESTALE;
	if (vz_ref_shard(to) >= rt->nshards)
		return VZ_ENOSHARD;
	return 0;
}

/* Copy a payload; most are a few words, for which a call to memcpy costs
 * more than the copy. Two overlapping moves cover every size in a range. */
static inline void copy_payload(unsigned char *dst, const unsigned char *src, size_t len)
{
	uint64_t a, b;
	uint32_t c, d;

	if (len >= 8 && len <= 16) {
		memcpy(&a, src, 8);
		memcpy(&b, src + len - 8, 8);
		memcpy(dst, &a, 8);
		memcpy(dst + len - 8, &b, 8);
	} else if (len >= 4 && len < 8) {
		memcpy(&c, src, 4);
		memcpy(&d, src + len - 4, 4);
		memcpy(dst, &c, 4);
		memcpy(dst + len - 4, &d, 4);
	} else if (len > 16) {
		memcpy(dst, src, len);
	} else {
		for (size_t i = 0; i < len; i++)
			dst[i] = src[i];
	}
}

static inline void fill(struct vz_msg *m, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
			const void *payload, size_t len)
{
	m->to = to;
	m->from = from;
	m->type = type;
	m->len = (uint32_t)len;
	m->flags |= flags;
	copy_payload(m->data, payload, len);
}

/* From shard sh's own thread. Inlined into vz_send(), the hot path. */
static inline __attribute__((always_inline)) int send_from(struct vz__shard *sh, vz_ref from,
							   vz_ref to, uint32_t type, uint8_t flags,
							   const void *payload, size_t len)
{
	vz_runtime *rt = sh->rt;
	struct vz_actor *target = NULL;
	unsigned dest;
	struct vz_msg *m;
	int rc = check_args(rt, to, payload, len), counted = 0;

	if (rc < 0)
		return rc;
	/* Relaxed: this thread is a shard of rt, and stop only moves to
	 * STOPPING while shards run; a send that races with it is either
	 * refused here or dead-lettered by the drain rounds. */
	if (atomic_load_explicit(&rt->state, memory_order_relaxed) >= VZ__RT_STOPPING ||
	    atomic_load_explicit(&sh->phase, memory_order_relaxed) != VZ__PHASE_RUN)
		return VZ_ESTOPPED;
	dest = vz_ref_shard(to);
	if (dest == sh->id) {
		/* Local: refuse a stale target now, synchronously. */
		target = vz__actor_lookup(sh, to);
		if (!target)
			return VZ_ESTALE;
	}
	if (!(flags & VZ__MSG_SYS) &&
	    atomic_load_explicit(&rt->shards[dest]->bounded_live, memory_order_relaxed)) {
		counted = vz__bounded_admit(rt->shards[dest], to);
		if (counted < 0) {
			VZ__STAT_ADD(sh, mailbox_full, 1);
			return counted;
		}
	}
	m = vz__msg_alloc(sh, len);
	if (!m)
		goto nomem;
	fill(m, from, to, type, flags, payload, len);
	if (counted)
		m->flags |= VZ__MSG_INFLIGHT;
	if (target) {
		if (!(flags & VZ__MSG_UNCOUNTED))
			VZ__STAT_ADD(sh, sent_local, 1);
		/* Straight into the mailbox: the target is live (just looked
		 * up) and the shard is running (checked above). */
		vz__list_push(&target->mbox, m);
		vz__make_ready(sh, target);
	} else {
		if (!(flags & VZ__MSG_UNCOUNTED))
			VZ__STAT_ADD(sh, sent_remote, 1);
		vz__outbox_push(sh, dest, m, false);
	}
	return 0;
nomem:
	if (counted) {
		/* give the count back: nothing was sent */
		struct vz_msg tmp = {.to = to, .flags = VZ__MSG_INFLIGHT};
		vz__undo_admit(rt->shards[dest], &tmp);
	}
	return VZ_ENOMEM;
}

int vz__send_from(struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		  const void *payload, size_t len)
{
	return send_from(sh, from, to, type, flags, payload, len);
}

/*
 * From a thread that is not a shard of rt: through the target's inbox.
 *
 * A post that races with vz_runtime_stop() either sees the state change
 * and is refused, or lands in the inbox; if it lands after the shard's last
 * drain round, vz_runtime_destroy() finds it there and dead-letters it.
 * Either way it is counted once (received_foreign is counted when the
 * shard takes a message from its inbox), and nothing vanishes.
 */
static int post_foreign(vz_runtime *rt, vz_ref to, uint32_t type, uint8_t flags,
			const void *payload, size_t len)
{
	struct vz__shard *target = rt->shards[vz_ref_shard(to)];
	struct vz_msg *m;
	uint32_t state;
	int counted = 0;

	/* Acquire: pairs with the seq_cst store of RUNNING in start, so the
	 * shard's backend and pools are visible before we use them. */
	state = atomic_load_explicit(&rt->state, memory_order_acquire);
	if (state != VZ__RT_RUNNING)
		return state == VZ__RT_CREATED ? VZ_ESTATE : VZ_ESTOPPED;
	if (!(flags & VZ__MSG_SYS) &&
	    atomic_load_explicit(&target->bounded_live, memory_order_relaxed)) {
		counted = vz__bounded_admit(target, to);
		if (counted < 0)
			return counted;
	}
	m = vz__fpool_alloc(rt, target, len);
	if (!m) {
		if (counted) {
			struct vz_msg tmp = {.to = to, .flags = VZ__MSG_INFLIGHT};
			vz__undo_admit(target, &tmp);
		}
		return VZ_ENOMEM;
	}
	fill(m, VZ_REF_NULL, to, type, flags, payload, len);
	if (counted)
		m->flags |= VZ__MSG_INFLIGHT;
	/* The push's exchange is seq_cst: it is the sender's "publish, full
	 * fence" of the wake-up protocol, so no separate fence is needed
	 * before vz__wake() reads the sleeping flag (see vz__wake()). */
	vz__mpsc_push_sc(&target->inbox, &m->node);
	vz__wake(NULL, target);
	return 0;
}

static int post(vz_runtime *rt, vz_ref to, uint32_t type, uint8_t flags, const void *payload,
		size_t len)
{
	struct vz__shard *cur;
	int rc;

	if (!rt)
		return VZ_EINVAL;
	rc = check_args(rt, to, payload, len);
	if (rc < 0)
		return rc;
	cur = vz__current(rt);
	if (cur)
		return vz__send_from(cur, VZ_REF_NULL, to, type, flags, payload, len);
	return post_foreign(rt, to, type, flags, payload, len);
}

int vz__post_sys(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	uint8_t flags = VZ__MSG_SYS;

	if (type == VZ__MSG_STOP)
		flags |= VZ__MSG_UNCOUNTED;
	return post(rt, to, type, flags, payload, len);
}

VZ_API int vz_post(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	if (type < VZ_MSG_USER)
		return VZ_EINVAL;
	return post(rt, to, type, 0, payload, len);
}

VZ_API int vz_send(vz_actor *self, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	struct vz__shard *sh;

	if (!self || type < VZ_MSG_USER)
		return VZ_EINVAL;
	sh = self->shard;
	if (vz__current(sh->rt) != sh)
		return VZ_EWRONGTHREAD;
	if (!(self->flags & VZ__ACTOR_LIVE))
		return VZ_ESTALE;
	return send_from(sh, vz__make_ref(sh->id, self->slot, self->gen), to, type, 0, payload,
			 len);
}

VZ_API int vz_reply(vz_actor *self, const vz_msg *m, uint32_t type, const void *payload, size_t len)
{
	if (!self || !m)
		return VZ_EINVAL;
	if (vz_ref_is_null(m->from))
		return VZ_EINVAL;
	return vz_send(self, m->from, type, payload, len);
}

VZ_API uint32_t vz_msg_type(const vz_msg *m)
{
	return m ? m->type : 0;
}

VZ_API const void *vz_msg_data(const vz_msg *m)
{
	return m ? m->data : NULL;
}

VZ_API size_t vz_msg_len(const vz_msg *m)
{
	return m ? m->len : 0;
}

VZ_API vz_ref vz_msg_sender(const vz_msg *m)
{
	return m ? m->from : VZ_REF_NULL;
}
