// SPDX-License-Identifier: MIT
/*
 * Spawning on any shard after start (include/veloz/lifecycle.h):
 * vz_spawn_on() from an actor, whose result comes back as a
 * VZ_MSG_SPAWNED message, and vz_spawn_wait() for a thread outside the
 * runtime that waits for the result; plus placement by key.
 *
 * A spawn for another shard is a request message addressed to that shard
 * itself (vz__shard_ref(): generation 0, which no actor has), sent on the
 * ordinary paths (outbox and ring from a shard, inbox from a foreign
 * thread), so it is subject to the same stop protocol as any message: when
 * vz_runtime_stop() returns, every accepted request has been carried out
 * or refused with VZ_ESTOPPED, and its requester answered. The request is
 * runtime-made and uncounted (lifecycle.h), and never refused by an
 * outbox bound. init runs on the target shard like any vz_spawn() there.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/actor.h"
#include "core/deliver.h"
#include "core/msg.h"
#include "core/msg_pool.h"
#include "core/ref.h"
#include "core/runtime.h"
#include "core/send.h"
#include "core/shard.h"
#include "core/spawn_remote.h"

/* A foreign thread blocked in vz_spawn_wait(), on its own stack. The
 * shard completes it once, under the mutex; the waiter cannot return (and
 * free it) before the shard has unlocked. */
struct spawn_waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
	vz_ref ref;
};

/* Payload of VZ__MSG_SPAWN; arg bytes follow for vz_spawn_on(). 48 bytes,
 * so the copied argument keeps VZ_MSG_ALIGN alignment. */
struct spawn_req {
	const vz_actor_spec *spec;
	struct spawn_waiter *waiter; /* vz_spawn_wait(), else NULL */
	const void *arg_ptr;	     /* vz_spawn_wait(): the waiting caller's arg */
	uint64_t tag;
	uint32_t arg_len; /* vz_spawn_on(): bytes copied after this header */
	uint32_t shard;
	uint64_t pad_;
};
_Static_assert(sizeof(struct spawn_req) % VZ_MSG_ALIGN == 0, "copied arg stays aligned");
_Static_assert(sizeof(struct spawn_req) <= 64, "VZ_SPAWN_ARG_MAX leaves room for the header");

static void answer(struct vz__shard *sh, vz_ref requester, const struct spawn_req *r, int rc,
		   vz_ref ref)
{
	if (r->waiter) {
		pthread_mutex_lock(&r->waiter->mu);
		r->waiter->rc = rc;
		r->waiter->ref = ref;
		r->waiter->done = true;
		pthread_cond_signal(&r->waiter->cv);
		pthread_mutex_unlock(&r->waiter->mu);
		return;
	}
	if (!vz_ref_is_null(requester)) {
		vz_spawned res = {.tag = r->tag, .actor = ref, .rc = rc, .shard = r->shard};

		/* A gone requester leaves the child alive, as vz_spawn()'s
		 * caller ending would; a stopping runtime sends nothing. */
		(void)vz__send_from(sh, ref, requester, VZ_MSG_SPAWNED,
				    VZ__MSG_SYS | VZ__MSG_UNCOUNTED, &res, sizeof res);
	}
}

void vz__spawn_fail(struct vz__shard *sh, struct vz_msg *m, int rc)
{
	struct spawn_req r;

	memcpy(&r, m->data, sizeof r);
	answer(sh, m->from, &r, rc, VZ_REF_NULL);
	vz__msg_release(sh, m);
}

void vz__shard_msg(struct vz__shard *sh, struct vz_msg *m)
{
	struct spawn_req r;
	vz_ref ref = VZ_REF_NULL;
	const void *arg;
	int rc;

	if (!(m->flags & VZ__MSG_SYS) || m->type != VZ__MSG_SPAWN) {
		/* A forged reference with generation 0: as any stale one. */
		vz__dead_letter(sh, m, VZ_ESTALE);
		return;
	}
	memcpy(&r, m->data, sizeof r);
	/* Relaxed: this is a shard thread; a request that races the start of
	 * a stop either spawns (and round 1 stops the actor) or is refused. */
	if (atomic_load_explicit(&sh->phase, memory_order_relaxed) != VZ__PHASE_RUN ||
	    atomic_load_explicit(&sh->rt->state, memory_order_relaxed) >= VZ__RT_STOPPING) {
		vz__spawn_fail(sh, m, VZ_ESTOPPED);
		return;
	}
	arg = r.waiter ? r.arg_ptr : r.arg_len ? (const void *)(m->data + sizeof r) : NULL;
	rc = vz__actor_spawn(sh, r.spec, arg, &ref);
	answer(sh, m->from, &r, rc, ref);
	vz__msg_release(sh, m);
}

static int check_spec(const vz_runtime *rt, unsigned shard, const vz_actor_spec *spec)
{
	if (!spec || !spec->receive || spec->state_size > (1u << 20))
		return VZ_EINVAL;
	if (shard >= rt->nshards)
		return VZ_ENOSHARD;
	if (spec->sched_class >= rt->shards[shard]->sched.nclasses)
		return VZ_EINVAL;
	return 0;
}

VZ_API int vz_spawn_on(vz_actor *self, unsigned shard, const vz_actor_spec *spec, const void *arg,
		       size_t arg_len, uint64_t tag)
{
	struct vz__shard *sh;
	vz_ref me;
	int rc;

	if (!self || (!arg && arg_len))
		return VZ_EINVAL;
	sh = self->shard;
	if (vz__current(sh->rt) != sh)
		return VZ_EWRONGTHREAD;
	if (!(self->flags & VZ__ACTOR_LIVE))
		return VZ_ESTALE;
	if (shard == VZ_SHARD_HERE)
		shard = sh->id;
	rc = check_spec(sh->rt, shard, spec);
	if (rc < 0)
		return rc;
	if (arg_len > VZ_SPAWN_ARG_MAX)
		return VZ_ETOOBIG;
	/* Relaxed: as send_from() reads it on a shard thread. */
	if (atomic_load_explicit(&sh->rt->state, memory_order_relaxed) >= VZ__RT_STOPPING)
		return VZ_ESTOPPED;
	me = vz__make_ref(sh->id, self->slot, self->gen);
	if (shard == sh->id) {
		vz_ref child = VZ_REF_NULL;
		vz_spawned res = {.tag = tag, .shard = shard};

		res.rc = vz__actor_spawn(sh, spec, arg_len ? arg : NULL, &child);
		res.actor = child;
		rc = vz__send_from(sh, child, me, VZ_MSG_SPAWNED, VZ__MSG_SYS | VZ__MSG_UNCOUNTED,
				   &res, sizeof res);
		if (rc < 0 && res.rc == 0) {
			/* No result can reach the caller: undo the spawn, so
			 * the error means "nothing was spawned". */
			struct vz_actor *c = vz__actor_lookup(sh, child);

			if (c)
				vz__actor_stop_now(sh, c, VZ_ESTALE);
		}
		return rc;
	}
	return vz__spawn_request(sh->rt, me, shard, spec, arg, arg_len, tag);
}

int vz__spawn_request(vz_runtime *rt, vz_ref reply_to, unsigned shard, const vz_actor_spec *spec,
		      const void *arg, size_t arg_len, uint64_t tag)
{
	struct spawn_req r = {.spec = spec, .tag = tag, .shard = shard};
	unsigned char small[256];
	unsigned char *buf;
	int rc;

	r.arg_len = (uint32_t)arg_len;
	buf = sizeof r + arg_len <= sizeof small ? small : malloc(sizeof r + arg_len);
	if (!buf)
		return VZ_ENOMEM;
	memcpy(buf, &r, sizeof r);
	if (arg_len)
		memcpy(buf + sizeof r, arg, arg_len);
	/* From a shard thread through its outbox, else the shard's inbox. */
	rc = vz__post_full(rt, reply_to, vz__shard_ref(shard), VZ__MSG_SPAWN,
			   VZ__MSG_SYS | VZ__MSG_UNCOUNTED, 0, buf, sizeof r + arg_len);
	if (buf != small)
		free(buf);
	return rc;
}

int vz__spawn_check(const vz_runtime *rt, unsigned shard, const vz_actor_spec *spec,
		    const void *arg, size_t arg_len)
{
	int rc;

	if (!arg && arg_len)
		return VZ_EINVAL;
	rc = check_spec(rt, shard, spec);
	if (rc < 0)
		return rc;
	return arg_len > VZ_SPAWN_ARG_MAX ? VZ_ETOOBIG : 0;
}

VZ_API int vz_spawn_wait(vz_runtime *rt, unsigned shard, const vz_actor_spec *spec, const void *arg,
			 vz_ref *out)
{
	struct spawn_waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct spawn_req r = {.spec = spec, .waiter = &w, .arg_ptr = arg, .shard = shard};
	struct vz__shard *cur, *sh;
	uint32_t state;
	int rc;

	if (!rt)
		return VZ_EINVAL;
	rc = check_spec(rt, shard, spec);
	if (rc < 0)
		return rc;
	sh = rt->shards[shard];
	cur = vz__current(rt);
	/* Acquire: pairs with the seq_cst stores in start/stop. */
	state = atomic_load_explicit(&rt->state, memory_order_acquire);
	if (state == VZ__RT_CREATED || cur == sh || (!cur && sh->embedded && vz__is_driver(sh)))
		return vz_spawn(rt, shard, spec, arg, out); /* it may spawn there itself */
	if (state >= VZ__RT_STOPPING)
		return VZ_ESTOPPED;
	if (cur)
		return VZ_EWRONGTHREAD; /* a shard must not block: vz_spawn_on() */
	rc = vz__post_full(rt, VZ_REF_NULL, vz__shard_ref(shard), VZ__MSG_SPAWN,
			   VZ__MSG_SYS | VZ__MSG_UNCOUNTED, 0, &r, sizeof r);
	if (rc == 0) {
		/* Accepted: the stop protocol guarantees the shard takes it
		 * (spawns, or refuses with VZ_ESTOPPED) and answers. */
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		rc = w.rc;
		if (rc == 0 && out)
			*out = w.ref;
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return rc;
}

VZ_API unsigned vz_shard_of_key(const vz_runtime *rt, uint64_t key)
{
	uint64_t h = key;

	if (!rt)
		return 0;
	/* splitmix64's finaliser: nearby keys land on unrelated shards */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return (unsigned)(((h >> 32) * rt->nshards) >> 32);
}
