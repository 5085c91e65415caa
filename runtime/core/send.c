// SPDX-License-Identifier: MIT
/*
 * The send paths: from an actor or shard thread (local mailbox or outbox
 * to another shard) and from any other thread (the target shard's foreign
 * inbox). All checks come before anything changes, so a refused send has
 * no effect (runtime/DESIGN.md invariant 3).
 */
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/lanes.h"
#include "core/send_fast.h"
#include "util/copy.h"
#include "util/fault.h"

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

static inline void fill(struct vz_msg *m, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
			uint32_t corr, const void *payload, size_t len)
{
	m->to = to;
	m->from = from;
	m->type = type;
	m->len = (uint32_t)len;
	m->flags |= flags;
	m->corr = corr;
	vz__copy_payload(m->data, payload, len);
}

/* From shard sh's own thread. Inlined into vz_send(), the hot path. */
static inline __attribute__((always_inline)) int send_from(struct vz__shard *sh, vz_ref from,
							   vz_ref to, uint32_t type, uint8_t flags,
							   uint32_t corr, const void *payload,
							   size_t len)
{
	vz_runtime *rt = sh->rt;
	struct vz_actor *target = NULL;
	unsigned dest;
	struct vz_msg *m;
	int rc, counted = 0;

	/* A reference to another node (runtime/cluster): handed to the
	 * cluster's ring for the transport; one compare on the local path. */
	if (__builtin_expect(vz_ref_shard(to) == VZ_MAX_SHARDS - 1, 0)) {
		rc = vz__remote_send(rt, sh, from, to, type, payload, len);
		if (rc <= 0)
			return rc;
	}
	rc = check_args(rt, to, payload, len);
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
	} else if (!(flags & VZ__MSG_SYS)) {
		rc = vz__outbox_admit(sh, dest);
		if (rc < 0)
			return rc;
	}
	if (!(flags & VZ__MSG_SYS) &&
	    atomic_load_explicit(&rt->shards[dest]->bounded_live, memory_order_relaxed)) {
		counted = vz__bounded_admit(rt->shards[dest], to);
		if (counted < 0) {
			VZ__STAT_ADD(sh, mailbox_full, 1);
			return counted;
		}
	}
	/* Local, plain and small (mailbox.h): the message is written into
	 * the target's mailbox cells, no block. Replies to asks, runtime
	 * messages and large payloads take a block, which the mailbox queues
	 * in the same order. A target whose mail spilled (no segment memory)
	 * takes blocks until the spill is handled, so order holds. */
	if (target && len <= VZ__CELL_INLINE_MAX && flags == 0 && corr == 0 &&
	    __builtin_expect(!(target->flags & VZ__ACTOR_SPILL), 1)) {
		unsigned n = vz__cell_span(len);
		struct vz__cell *c = vz__mbox_reserve(&sh->segs, &target->mbox, n);

		if (__builtin_expect(!c, 0))
			goto nomem;
		c->u.from = from.id;
		c->type = type;
		c->len = (uint16_t)len;
		c->flags = counted ? VZ__MSG_INFLIGHT : 0;
		c->kind = (uint8_t)n;
		/* Through a char pointer: the payload runs on into the
		 * following cells of the span. */
		vz__copy_payload((unsigned char *)c + offsetof(struct vz__cell, data), payload,
				 len);
		vz__mbox_commit(&target->mbox, c, n);
		VZ__STAT_ADD(sh, sent_local, 1);
		vz__make_ready(sh, target);
		return 0;
	}
	m = vz__msg_alloc(sh, len);
	if (!m)
		goto nomem;
	fill(m, from, to, type, flags, corr, payload, len);
	if (counted)
		m->flags |= VZ__MSG_INFLIGHT;
	if (target) {
		if (!(flags & VZ__MSG_UNCOUNTED))
			VZ__STAT_ADD(sh, sent_local, 1);
		/* Straight into the mailbox: the target is live (just looked
		 * up) and the shard is running (checked above). */
		vz__mbox_push(sh, target, m);
	} else {
		if (!(flags & VZ__MSG_UNCOUNTED)) {
			VZ__STAT_ADD(sh, sent_remote, 1);
			vz__obs_add(&sh->obs.o->sent_to[dest], 1);
		}
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
	return send_from(sh, from, to, type, flags, 0, payload, len);
}

int vz__send_corr(struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		  uint32_t corr, const void *payload, size_t len)
{
	return send_from(sh, from, to, type, flags, corr, payload, len);
}

/*
 * From a thread that is not a shard of rt: through the target's inbox.
 *
 * Invariant: a foreign post that returns 0 was admitted by its target's
 * post gate (vz__post_gate()) before vz_runtime_stop() closed it, and stop does not return
 * before the target has taken every admitted post's message from its inbox
 * (so the message is handled or dead-lettered in a stop round) or learnt
 * that the post was refused after admission (post_unpushed). A post whose
 * ticket comes after the close is refused and changes nothing. So when stop
 * returns, no accepted message is still on its way, and every later post
 * returns VZ_ESTOPPED.
 *
 * Pairings:
 * - The ticket (fetch_add, acquire) with start's release store that opens
 *   the gate: an admitted poster sees the started shards and pools.
 * - The ticket with stop's release fetch_or that closes the gate, through
 *   the chain of read-modify-writes between them: a refused poster's later
 *   read of rt->state sees STOPPING and reports VZ_ESTOPPED, not VZ_ESTATE.
 * - The release increment of post_unpushed with the stopper's acquire
 *   load in posts_arrived() (runtime.c).
 * - The push with the shard's pop, which the shard counts (inbox_taken) and
 *   reports with its round acknowledgement (release, stopper acquires).
 *
 * Cost: one read-modify-write (the ticket), in place of the acquire load
 * of rt->state made before, on the line of the inbox tail that the push
 * exchanges a moment later: no extra line to fetch, nothing on a line
 * shared by the whole runtime. (On a line of its own it measurably slowed
 * ten threads posting to one shard.)
 *
 * What it does not give: an admitted post still reads and wakes the target
 * after its push, and a refused one reads rt, so vz_runtime_destroy() may
 * not overlap any call (runtime.h).
 */
#ifdef VZ_FAULT_INJECTION
/* Test builds (VZ_FAULT_POST_STALL): a poster preempted right after
 * admission or, on a lane, right after its commit, for as long as it takes
 * a stop to begin and then some (at most about a second). */
void vz__stall_until_stopping(vz_runtime *rt)
{
	for (int i = 0; i < 10000; i++) {
		/* Relaxed: only a timing hint. */
		if (atomic_load_explicit(&rt->state, memory_order_relaxed) >= VZ__RT_STOPPING)
			break;
		usleep(100);
	}
	usleep(20000);
}
#else
void vz__stall_until_stopping(vz_runtime *rt)
{
	(void)rt;
}
#endif

static __attribute__((noinline)) int post_foreign(vz_runtime *rt, vz_ref from, vz_ref to,
						  uint32_t type, uint8_t flags, uint32_t corr,
						  const void *payload, size_t len)
{
	struct vz__shard *target = rt->shards[vz_ref_shard(to)];
	struct vz_msg *m;
	uint32_t state;
	int counted = 0;

	/* Acquire: see the pairings above (start's open, stop's close). */
	if (atomic_fetch_add_explicit(vz__post_gate(target), 1, memory_order_acquire) &
	    VZ__GATE_CLOSED) {
		/* Acquire: pairs with the seq_cst stores of the state. */
		state = atomic_load_explicit(&rt->state, memory_order_acquire);
		return state >= VZ__RT_STOPPING ? VZ_ESTOPPED : VZ_ESTATE;
	}
	if (VZ_FAULT(VZ_FAULT_POST_STALL))
		vz__stall_until_stopping(rt);
	if (!(flags & VZ__MSG_SYS) &&
	    atomic_load_explicit(&target->bounded_live, memory_order_relaxed)) {
		counted = vz__bounded_admit(target, to);
		if (counted < 0) {
			/* Relaxed: a statistic (stats.c sums it in). */
			atomic_fetch_add_explicit(&target->mailbox_full_foreign, 1,
						  memory_order_relaxed);
			goto refused;
		}
	}
	m = vz__fpool_alloc(rt, target, len);
	if (!m) {
		if (counted) {
			struct vz_msg tmp = {.to = to, .flags = VZ__MSG_INFLIGHT};
			vz__undo_admit(target, &tmp);
		}
		counted = VZ_ENOMEM;
		goto refused;
	}
	fill(m, from, to, type, flags, corr, payload, len);
	if (counted)
		m->flags |= VZ__MSG_INFLIGHT;
	/* Symmetric sleep fence: the push's exchange is seq_cst, the
	 * sender's "publish, full fence" of the wake-up protocol, so no
	 * separate fence is needed before vz__wake() reads the sleeping
	 * flag. Under membarrier the sleeper's membarrier() is that fence
	 * and the push keeps only the acq_rel exchange the inbox's own
	 * linking needs (vz__mpsc_push_exchange()). See vz__wake(). */
	if (target->sleep_fence == VZ__SLEEP_FENCE_MEMBARRIER)
		vz__mpsc_push(&target->inbox, &m->node);
	else
		vz__mpsc_push_sc(&target->inbox, &m->node);
	vz__wake(NULL, target);
	return 0;
refused:
	/* Admitted, but nothing will reach the inbox: tell the stopper not
	 * to wait for it. Release: pairs with the acquire in posts_arrived(),
	 * so the stopper's view of this post is final once it counts it. */
	atomic_fetch_add_explicit(&target->post_unpushed, 1, memory_order_release);
	return counted;
}

/* A post from a thread that is not a shard of rt: through the thread's own
 * lane into the target (lanes.c); through the inbox (post_foreign()) only
 * when the shard had no lane left for this thread, and in a simulation,
 * whose scheduler models (and delays) foreign posts through the inbox
 * (runtime/sim/sim.c, hold_posts()). Kept apart from post_foreign() so the
 * lane path does not pay for the inbox path's registers. */
static inline int post_thread(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
			      uint32_t corr, const void *payload, size_t len)
{
	if (__builtin_expect(!rt->sim, 1)) {
		int rc = vz__lanes_post_thread(rt, from, to, type, flags, corr, payload, len);

		if (__builtin_expect(rc != VZ__LANE_FALLBACK, 1))
			return rc;
	}
	return post_foreign(rt, from, to, type, flags, corr, payload, len);
}

static int post(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, uint8_t flags, uint32_t corr,
		const void *payload, size_t len)
{
	struct vz__shard *cur;
	int rc;

	if (!rt)
		return VZ_EINVAL;
	cur = vz__current(rt);
	if (__builtin_expect(vz_ref_shard(to) == VZ_MAX_SHARDS - 1, 0) && !(flags & VZ__MSG_SYS)) {
		rc = vz__remote_send(rt, cur, VZ_REF_NULL, to, type, payload, len);
		if (rc <= 0)
			return rc;
	}
	rc = check_args(rt, to, payload, len);
	if (rc < 0)
		return rc;
	if (cur)
		return vz__send_corr(cur, from, to, type, flags, corr, payload, len);
	/* A stop request overtakes user mail (actor.h): through the inbox,
	 * which a turn drains before the lanes, not behind this thread's
	 * earlier posts in its lane, which a turn drains in bounded chunks
	 * and the actor would handle first. */
	if (__builtin_expect(type == VZ__MSG_STOP && (flags & VZ__MSG_SYS), 0))
		return post_foreign(rt, from, to, type, flags, corr, payload, len);
	return post_thread(rt, from, to, type, flags, corr, payload, len);
}

int vz__post_full(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		  uint32_t corr, const void *payload, size_t len)
{
	return post(rt, from, to, type, flags, corr, payload, len);
}

int vz__post_from(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, const void *payload,
		  size_t len)
{
	int rc = check_args(rt, to, payload, len);

	if (rc < 0)
		return rc;
	return post_thread(rt, from, to, type, 0, 0, payload, len);
}

int vz__post_sys(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	uint8_t flags = VZ__MSG_SYS;

	if (type == VZ__MSG_STOP)
		flags |= VZ__MSG_UNCOUNTED;
	return post(rt, VZ_REF_NULL, to, type, flags, 0, payload, len);
}

/* Out of line, so vz_post()'s fast path saves no registers for post(). */
__attribute__((noinline)) int vz__post_user_slow(vz_runtime *rt, vz_ref to, uint32_t type,
						 const void *payload, size_t len)
{
	return post(rt, VZ_REF_NULL, to, type, 0, 0, payload, len);
}

/*
 * vz_post(). The fast path is a thread that runs no shard (of any runtime)
 * posting a valid message to one of rt's shards, rt not simulated: then
 * post() would find no current shard, no remote reference and no argument
 * to refuse, and take the thread's lane (post_thread()), which
 * vz__lanes_post_user() does without re-deriving any of that; whatever its
 * lane path does not cover comes back to post() (vz__post_user_slow()).
 * Anything else, including every error, goes to post() (through
 * vz__post_user_slow()), which decides it from scratch, so both paths
 * refuse the same inputs with the same code. A reference naming shard
 * VZ_MAX_SHARDS - 1 is left to post(): it may be another node's
 * (vz__remote_send()).
 */
VZ_API int vz_post(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	unsigned s = vz_ref_shard(to);

	if (type < VZ_MSG_USER)
		return VZ_EINVAL;
	if (__builtin_expect(rt != NULL && vz__tls_shard == NULL && s < rt->nshards &&
				 s != VZ_MAX_SHARDS - 1 && !vz_ref_is_null(to) &&
				 len <= VZ_MSG_MAX_PAYLOAD && (payload || !len) && !rt->sim,
			     1))
		return vz__lanes_post_user(rt, to, type, payload, len);
	return vz__post_user_slow(rt, to, type, payload, len);
}

/* vz_send() when the fast path below does not apply: every check, in
 * the documented order, and every kind of target. Out of line so the fast
 * path saves no registers it does not use. */
static __attribute__((noinline)) int send_slow(vz_actor *self, vz_ref to, uint32_t type,
					       const void *payload, size_t len)
{
	struct vz__shard *sh = self->shard;

	/* The calling thread runs sh (vz__current(sh->rt) == sh: sh is not
	 * NULL, so comparing the thread's shard with it says the same). */
	if (vz__tls_shard != sh)
		return VZ_EWRONGTHREAD;
	if (!(self->flags & VZ__ACTOR_LIVE))
		return VZ_ESTALE;
	return send_from(sh, vz__make_ref(sh->id, self->slot, self->gen), to, type, 0, 0, payload,
			 len);
}

/* Write the inline message of a vz_send() fast path from `from` into cell
 * c (the first of n) of target's mailbox, and account for it as
 * send_from() does (sent_local, ready). */
static inline __attribute__((always_inline)) void
send_put(struct vz__shard *sh, struct vz_actor *target, struct vz__cell *c, unsigned n,
	 uint64_t from, uint32_t type, const void *payload, size_t len)
{
	vz__cell_put_hdr(c, from, type, len, 0, n);
	vz__copy_inline(vz__cell_payload(c), payload, len);
	vz__mbox_commit(&target->mbox, c, n);
	VZ__STAT_ADD(sh, sent_local, 1);
	vz__make_ready(sh, target);
}

/* vz_send()'s fast path with every check made, when the target's tail
 * segment has no room for the message (or the mailbox has no segment):
 * start one (mailbox.h's vz__mbox_reserve() slow path) and write the cell
 * there. Out of line, so the fast path makes no call; it passes what it
 * still holds (from, the sender's reference, and the live target), from
 * which the sender and `to` are found again for send_slow(), which decides
 * when no segment can be had, as it did when the fast path grew the
 * mailbox itself (it tries once more, then reports VZ_ENOMEM). */
static __attribute__((noinline)) int send_grow(struct vz__shard *sh, struct vz_actor *target,
					       uint64_t from, uint32_t type, const void *payload,
					       size_t len)
{
	unsigned n = vz__cell_span(len);
	struct vz__cell *c = vz__mbox_grow(&sh->segs, &target->mbox, n);

	if (__builtin_expect(!c, 0))
		return send_slow(vz__slot_ptr(sh, vz__ref_slot((vz_ref){from})),
				 vz__make_ref(sh->id, target->slot, target->gen), type, payload,
				 len);
	send_put(sh, target, c, n, from, type, payload, len);
	return 0;
}

/*
 * vz_send() to another shard of this runtime (shard dest < nshards, so not
 * a remote node's reference: that is shard VZ_MAX_SHARDS - 1, beyond
 * nshards in a runtime with a cluster) to which nothing was sent yet this
 * turn, once the sender's checks passed (the calling thread runs sh, the
 * sender is live, the payload is given when len > 0): when `to` is not
 * null, the runtime and sh run and that shard has no bounded actor,
 * vz__outbox_send_inline() (xshard/outbox.c) may write the message
 * straight into the ring slot. Anything else, or when that path
 * does not apply, goes to send_slow(), which decides from scratch.
 * Out of line: the local fast path keeps its registers.
 */
static __attribute__((noinline)) int send_cross(vz_actor *self, struct vz__shard *sh, vz_ref to,
						uint32_t type, const void *payload, size_t len)
{
	vz_runtime *rt = sh->rt;
	unsigned dest = vz_ref_shard(to);

	/* Relaxed, as in send_from() (state, phase, bounded_live). */
	if (!vz_ref_is_null(to) &&
	    atomic_load_explicit(&rt->state, memory_order_relaxed) < VZ__RT_STOPPING &&
	    atomic_load_explicit(&sh->phase, memory_order_relaxed) == VZ__PHASE_RUN &&
	    !atomic_load_explicit(&rt->shards[dest]->bounded_live, memory_order_relaxed) &&
	    vz__outbox_send_inline(sh, dest, vz__make_ref(sh->id, self->slot, self->gen), to, type,
				   payload, len) == 0)
		return 0;
	return send_slow(self, to, type, payload, len);
}

/*
 * vz_send(). The fast path is the common case of a flood (bench/README.md,
 * `counting`): a live actor on its own thread sends a small payload to a
 * live actor of its own shard, the runtime runs, no actor of the shard has
 * a bounded mailbox and the target's mail has not spilled. Then none of
 * send_slow()'s refusals can apply, and the message goes into the target's
 * mailbox cells with the same effects as send_from() (sent_local, ready).
 * Anything else, including every error, goes to send_slow(), which decides
 * it from scratch, so both paths refuse the same inputs with the same code.
 *
 * A small payload to another shard goes to send_cross(), which writes it
 * straight into the ring slot when it can.
 *
 * The fast path makes no call (a full segment goes to send_grow(), another
 * shard to send_cross(), every other case to send_slow(), all tail calls),
 * so it needs no stack frame.
 * It does not test for a remote reference (shard VZ_MAX_SHARDS - 1, which
 * send_from() hands to the cluster): it only takes a target on the calling
 * shard, and a runtime with a shard of that number has no cluster
 * (vz_cluster_create() refuses it, VZ_ECONFIG), for which
 * vz__remote_send() answers "an ordinary reference" (1).
 */
VZ_API int vz_send(vz_actor *self, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	struct vz__shard *sh;
	struct vz_actor *target;
	struct vz__cell *c;
	vz_runtime *rt;
	uint64_t from;
	unsigned n;

	if (!self || type < VZ_MSG_USER)
		return VZ_EINVAL;
	sh = self->shard;
	if (__builtin_expect(vz__tls_shard != sh || !(self->flags & VZ__ACTOR_LIVE) ||
				 len > VZ__CELL_INLINE_MAX || (!payload && len),
			     0))
		return send_slow(self, to, type, payload, len);
	if (vz_ref_shard(to) != sh->id) {
		unsigned dest = vz_ref_shard(to);

		/* Something of ours already went to dest this turn (its
		 * outbox is dirty): the message queues behind it on the
		 * general path. Tested here, so the rest of a burst pays this
		 * test and no more for the fast path it cannot take. */
		if (dest < sh->rt->nshards &&
		    !(sh->out_dirty[dest / 64] & ((uint64_t)1 << (dest % 64))))
			return send_cross(self, sh, to, type, payload, len);
		return send_slow(self, to, type, payload, len);
	}
	rt = sh->rt;
	/* Relaxed, as in send_from(). The bounded_live hint is read as
	 * send_from() reads it (relaxed); with any bounded actor on the shard
	 * the slow path counts the message against its target. */
	if (__builtin_expect(
		atomic_load_explicit(&rt->state, memory_order_relaxed) >= VZ__RT_STOPPING ||
		    atomic_load_explicit(&sh->phase, memory_order_relaxed) != VZ__PHASE_RUN ||
		    atomic_load_explicit(&sh->bounded_live, memory_order_relaxed) != 0,
		0))
		return send_slow(self, to, type, payload, len);
	target = vz__actor_lookup_here(sh, to); /* to's shard is sh (above) */
	if (__builtin_expect(!target || (target->flags & VZ__ACTOR_SPILL), 0))
		return send_slow(self, to, type, payload, len);
	n = vz__cell_span(len);
	from = vz__make_ref(sh->id, self->slot, self->gen).id;
	/* vz__mbox_reserve() without its slow path: the link cell (the
	 * segment's last) stays free. */
	c = target->mbox.tail;
	if (__builtin_expect((size_t)(target->mbox.end - c) < n, 0))
		return send_grow(sh, target, from, type, payload, len);
	send_put(sh, target, c, n, from, type, payload, len);
	return 0;
}

/* A reply to an ask (m->corr set, m not itself a reply) carries the ask's
 * correlation back and is marked as a reply, so the asker's shard can
 * match it against its pending asks (life.c) and drop a late one. */
VZ_API int vz_respond(vz_actor *self, vz_ref to, uint32_t corr, uint32_t type, const void *payload,
		      size_t len)
{
	struct vz__shard *sh;

	if (!corr)
		return vz_send(self, to, type, payload, len);
	if (!self || type < VZ_MSG_USER)
		return VZ_EINVAL;
	sh = self->shard;
	if (vz__current(sh->rt) != sh)
		return VZ_EWRONGTHREAD;
	if (!(self->flags & VZ__ACTOR_LIVE))
		return VZ_ESTALE;
	return send_from(sh, vz__make_ref(sh->id, self->slot, self->gen), to, type, VZ__MSG_REPLY,
			 corr, payload, len);
}

VZ_API int vz_reply(vz_actor *self, const vz_msg *m, uint32_t type, const void *payload, size_t len)
{
	if (!self || !m)
		return VZ_EINVAL;
	if (vz_ref_is_null(m->from))
		return VZ_EINVAL;
	if (m->flags & VZ__MSG_REPLY) /* a reply to a reply is a plain send */
		return vz_send(self, m->from, type, payload, len);
	return vz_respond(self, m->from, m->corr, type, payload, len);
}

VZ_API uint32_t vz_msg_corr(const vz_msg *m)
{
	return m ? m->corr : 0;
}

VZ_API uint32_t vz_msg_type(const vz_msg *m)
{
	return m ? m->type : 0;
}

VZ_API const void *vz_msg_data(const vz_msg *m)
{
	if (!m)
		return NULL;
	/* An inline mailbox cell's view (deliver.c): the payload is in the
	 * cell. */
	if (m->flags & VZ__MSG_VIEW)
		return m->view_data;
	return m->data;
}

VZ_API size_t vz_msg_len(const vz_msg *m)
{
	return m ? m->len : 0;
}

VZ_API vz_ref vz_msg_sender(const vz_msg *m)
{
	return m ? m->from : VZ_REF_NULL;
}
