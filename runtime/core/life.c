// SPDX-License-Identifier: MIT
/*
 * What an actor knows about the lives of others, and tells them about its
 * own: exit reasons, monitors, links, and pending asks with their
 * deadlines (include/veloz/lifecycle.h, ask.h).
 *
 * Each actor that uses any of these gets a struct vz__life (a->life),
 * allocated on first use and freed when the actor ends; actors that never
 * use them pay one NULL test at stop and one flag test per message. All of
 * it is owner-only, like the rest of the actor (runtime/DESIGN.md
 * invariant 1): another shard learns about it only through messages.
 *
 * Protocol. Requests travel as runtime messages (VZ__MSG_SYS |
 * VZ__MSG_UNCOUNTED) on the normal send paths, so they keep the per-pair
 * FIFO order with everything else one shard sends another, and take the
 * target's urgent lane on arrival:
 *   MONITOR {watcher, id}  target adds (id -> watcher) to its watchers;
 *                          if the target is gone, DOWN(NOPROC) goes back.
 *   DEMONITOR {id}         target forgets the watcher.
 *   LINK / UNLINK          target adds / removes the sender to its links;
 *                          LINK to a gone target sends EXITSIG(NOPROC) back.
 *   EXITSIG {from, exit}   from a linked actor that ended.
 * When an actor ends (vz__life_end()), it sends DOWN to every watcher,
 * EXITSIG to every link, and DEMONITOR for every monitor it still holds
 * (so targets do not keep dead watchers). DOWN is delivered only while the
 * watcher still holds the monitor id: a demonitor before the DOWN is
 * handled makes it a drop, and a monitor ends with its DOWN, so a DOWN
 * comes at most once; it comes at least once because the target, or the
 * target's shard if it is gone, answers every MONITOR. An EXITSIG acts
 * only while the receiver still has the sender in its links (an unlink
 * first makes it a drop).
 *
 * Monitor ids come from one process-wide counter, so a target can key its
 * watchers by id alone. Ask correlation ids are per actor life (32 bits,
 * never 0); an ask's deadline is an ordinary timer of the asker whose tag
 * has bit 63 set and the id below, recognised by its handle in the table
 * of pending asks (a user's timer with such a tag never matches: handles
 * of live timers are unique).
 */
#include <stdlib.h>
#include <string.h>

#include <veloz/cluster.h>

#include "core/core.h"
#include "util/clock.h"

/* ---- a small map: nonzero 64-bit key -> 64-bit value ---------------------- */

/* Open addressing, linear probing, deletion by backward shift (no
 * tombstones), capacity a power of two kept at most 3/4 full. Owner-only. */
struct map {
	uint64_t *keys; /* 0 = empty */
	uint64_t *vals;
	uint32_t cap, n;
};

static inline uint32_t map_home(const struct map *m, uint64_t k)
{
	return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32) & (m->cap - 1);
}

static uint64_t *map_find(const struct map *m, uint64_t k)
{
	if (!m->cap)
		return NULL;
	for (uint32_t i = map_home(m, k);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == k)
			return &m->vals[i];
		if (!m->keys[i])
			return NULL;
	}
}

static int map_grow(struct map *m)
{
	struct map g = {0};

	g.cap = m->cap ? m->cap * 2 : 8;
	g.keys = calloc(g.cap, sizeof *g.keys);
	g.vals = calloc(g.cap, sizeof *g.vals);
	if (!g.keys || !g.vals) {
		free(g.keys);
		free(g.vals);
		return VZ_ENOMEM;
	}
	for (uint32_t i = 0; i < m->cap; i++) {
		uint32_t j;

		if (!m->keys[i])
			continue;
		for (j = map_home(&g, m->keys[i]); g.keys[j]; j = (j + 1) & (g.cap - 1))
			;
		g.keys[j] = m->keys[i];
		g.vals[j] = m->vals[i];
	}
	g.n = m->n;
	free(m->keys);
	free(m->vals);
	*m = g;
	return 0;
}

/* Insert or overwrite. 0 or VZ_ENOMEM (nothing changed). */
static int map_put(struct map *m, uint64_t k, uint64_t v)
{
	uint64_t *slot = map_find(m, k);
	uint32_t i;

	if (slot) {
		*slot = v;
		return 0;
	}
	if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) < 0)
		return VZ_ENOMEM;
	for (i = map_home(m, k); m->keys[i]; i = (i + 1) & (m->cap - 1))
		;
	m->keys[i] = k;
	m->vals[i] = v;
	m->n++;
	return 0;
}

/* Remove k; true (and its value in *v when v) if it was there. */
static bool map_del(struct map *m, uint64_t k, uint64_t *v)
{
	uint32_t i, j, mask = m->cap - 1;

	if (!m->cap)
		return false;
	for (i = map_home(m, k);; i = (i + 1) & mask) {
		if (!m->keys[i])
			return false;
		if (m->keys[i] == k)
			break;
	}
	if (v)
		*v = m->vals[i];
	/* Backward shift: move later entries of the probe run into the hole
	 * when their home does not lie (cyclically) in (i, j]. */
	for (j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		uint32_t h = map_home(m, m->keys[j]);

		if (i <= j ? (h > i && h <= j) : (h > i || h <= j))
			continue;
		m->keys[i] = m->keys[j];
		m->vals[i] = m->vals[j];
		i = j;
	}
	m->keys[i] = 0;
	m->n--;
	return true;
}

static void map_free(struct map *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct map){0};
}

/* ---- per-actor state ------------------------------------------------------ */

struct vz__life {
	struct map watchers; /* monitor id -> watcher ref: who watches me */
	struct map watching; /* monitor id -> target ref: whom I watch */
	struct map links;    /* ref id -> 1 */
	struct map asks;     /* corr -> deadline timer handle */
	uint32_t next_corr;
	bool trap_exits;
	bool exit_set; /* exit below decided (vz_fail, a link, a self-stop) */
	vz_exit exit;
};

#define ASK_TAG_BIT ((uint64_t)1 << 63)

/* Process-wide, so a monitor id names one monitor in every runtime.
 * Relaxed: only uniqueness matters, nothing is published through it. */
static _Atomic uint64_t next_monitor_id = 1;

static struct vz__life *life_of(struct vz_actor *a)
{
	if (!a->life)
		a->life = calloc(1, sizeof *a->life);
	return a->life;
}

static void life_free(struct vz__life *l)
{
	map_free(&l->watchers);
	map_free(&l->watching);
	map_free(&l->links);
	map_free(&l->asks);
	free(l);
}

static vz_ref ref_of(const struct vz_actor *a)
{
	return vz__make_ref(a->shard->id, a->slot, a->gen);
}

static void exit_set(vz_exit *e, uint32_t kind, int32_t code, const char *text)
{
	size_t n = text ? strlen(text) : 0;

	memset(e, 0, sizeof *e);
	e->kind = kind;
	e->code = code;
	if (n >= sizeof e->text)
		n = sizeof e->text - 1;
	if (n)
		memcpy(e->text, text, n);
}

/* Called on the owner thread with a live, owned actor. */
static int check_owner(const vz_actor *self)
{
	if (!self)
		return VZ_EINVAL;
	if (vz__current(self->shard->rt) != self->shard)
		return VZ_EWRONGTHREAD;
	if (!(self->flags & VZ__ACTOR_LIVE))
		return VZ_ESTALE;
	return 0;
}

/* A runtime message from sh (on behalf of `from`) to `to`. Errors as
 * vz__send_from(); callers that only notify ignore them (a gone target
 * needs no notice; a stopping runtime sends nothing more). */
static int sys_send(struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type, const void *p,
		    size_t len)
{
	return vz__send_from(sh, from, to, type, VZ__MSG_SYS | VZ__MSG_UNCOUNTED, p, len);
}

struct monitor_req {
	vz_ref watcher;
	uint64_t id;
};

struct exitsig {
	vz_ref from;
	vz_exit exit;
};

static int send_down(struct vz__shard *sh, vz_ref target, vz_ref watcher, uint64_t id,
		     const vz_exit *e)
{
	vz_down d = {.mon = {id}, .actor = target, .reason = *e};

	return sys_send(sh, target, watcher, VZ_MSG_DOWN, &d, sizeof d);
}

static int send_exitsig(struct vz__shard *sh, vz_ref from, vz_ref to, const vz_exit *e)
{
	struct exitsig x = {.from = from, .exit = *e};

	return sys_send(sh, from, to, VZ__MSG_EXITSIG, &x, sizeof x);
}

static const vz_exit noproc = {.kind = VZ_EXIT_NOPROC, .text = "no such actor"};

/* ---- an actor ends --------------------------------------------------------- */

void vz__life_end(struct vz__shard *sh, struct vz_actor *a, int reason)
{
	struct vz__life *l = a->life;
	vz_ref me = ref_of(a);

	a->life = NULL;
	if (!l->exit_set) {
		if (reason == VZ_ESTOPPED)
			exit_set(&l->exit, VZ_EXIT_SHUTDOWN, 0, "shutdown");
		else
			exit_set(&l->exit, VZ_EXIT_STOPPED, 0, "stopped");
	}
	for (uint32_t i = 0; i < l->watchers.cap; i++)
		if (l->watchers.keys[i])
			(void)send_down(sh, me, (vz_ref){l->watchers.vals[i]}, l->watchers.keys[i],
					&l->exit);
	for (uint32_t i = 0; i < l->links.cap; i++)
		if (l->links.keys[i])
			(void)send_exitsig(sh, me, (vz_ref){l->links.keys[i]}, &l->exit);
	for (uint32_t i = 0; i < l->watching.cap; i++) {
		uint64_t id = l->watching.keys[i];
		vz_ref target = {l->watching.vals[i]};
		struct vz_actor *t;

		if (!id)
			continue;
		if (vz_ref_shard(target) != sh->id) {
			(void)sys_send(sh, me, target, VZ__MSG_DEMONITOR, &id, sizeof id);
			continue;
		}
		t = vz__actor_lookup(sh, target);
		if (t && t->life)
			map_del(&t->life->watchers, id, NULL);
	}
	/* Pending asks: their timers ended with the actor's (actor.c cancels
	 * them before on_stop); replies still on their way dead-letter as
	 * messages to a stale reference. */
	life_free(l);
}

void vz__life_init_failed(struct vz__shard *sh, struct vz_actor *a, int rc)
{
	struct vz__life *l = a->life;

	exit_set(&l->exit, VZ_EXIT_INIT_FAILED, rc, vz_strerror(rc));
	l->exit_set = true;
	vz__life_end(sh, a, VZ_ESTALE);
}

void vz__life_stop_self(struct vz_actor *a)
{
	if (!a->life->exit_set) {
		exit_set(&a->life->exit, VZ_EXIT_NORMAL, 0, "normal");
		a->life->exit_set = true;
	}
}

/* ---- messages for a live actor --------------------------------------------- */

/* An exit signal from `x->from` reached live actor a. */
static bool on_exitsig(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m)
{
	struct exitsig x;
	struct vz__life *l = a->life;

	memcpy(&x, m->data, sizeof x);
	if (!l || !map_del(&l->links, x.from.id, NULL)) {
		vz__msg_release(sh, m); /* unlinked meanwhile */
		return true;
	}
	if (l->trap_exits) {
		/* Becomes mail: behind what is already queued, so it comes
		 * after the linked actor's last messages. */
		vz_exit_msg e = {.actor = x.from, .reason = x.exit};

		_Static_assert(sizeof e <= sizeof x, "EXIT fits in the signal's block");
		m->type = VZ_MSG_EXIT;
		m->from = x.from;
		m->len = sizeof e;
		memcpy(m->data, &e, sizeof e);
		vz__mbox_push_block(sh, a, m);
		vz__make_ready(sh, a);
		return true;
	}
	vz__msg_release(sh, m);
	if (vz_exit_abnormal(&x.exit)) {
		char text[VZ_EXIT_TEXT_MAX];
		size_t n = strlen(x.exit.text);

		/* "linked: <their text>", truncated to fit */
		memcpy(text, "linked: ", 8);
		if (n > sizeof text - 9)
			n = sizeof text - 9;
		memcpy(text + 8, x.exit.text, n);
		text[8 + n] = '\0';
		exit_set(&l->exit, VZ_EXIT_LINKED, x.exit.code, text);
		l->exit_set = true;
		vz__actor_stop_now(sh, a, VZ_ESTALE);
	}
	return true;
}

bool vz__life_filter(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m)
{
	struct vz__life *l;

	if (m->flags & VZ__MSG_REPLY) {
		uint64_t timer;

		l = a->life;
		if (!l || !l->asks.cap)
			return false; /* never asked: a port's proxy passes replies on */
		if (!map_del(&l->asks, m->corr, &timer)) {
			/* answered already, or timed out: dropped, counted */
			vz__dead_letter(sh, m, VZ_ETIMEDOUT);
			return true;
		}
		(void)vz__timers_cancel(&sh->timers, &a->timers, timer);
		return false;
	}
	switch (m->type) {
	case VZ_MSG_TIMER: {
		vz_timer_event ev;
		uint64_t *timer;

		memcpy(&ev, m->data, sizeof ev);
		l = a->life;
		if (!l || !(ev.tag & ASK_TAG_BIT))
			return false;
		timer = map_find(&l->asks, (uint32_t)ev.tag);
		if (!timer || *timer != ev.timer.id)
			return false; /* a user timer with that tag */
		map_del(&l->asks, (uint32_t)ev.tag, NULL);
		/* The expiry becomes the ask's timeout, in place. */
		m->type = VZ_MSG_TIMEOUT;
		m->corr = (uint32_t)ev.tag;
		m->len = 0;
		return false;
	}
	case VZ_MSG_DOWN: {
		vz_down d;

		memcpy(&d, m->data, sizeof d);
		l = a->life;
		if (l && map_del(&l->watching, d.mon.id, NULL))
			return false;
		vz__msg_release(sh, m); /* demonitored: dropped */
		return true;
	}
	case VZ__MSG_MONITOR: {
		struct monitor_req r;

		memcpy(&r, m->data, sizeof r);
		vz__msg_release(sh, m);
		l = life_of(a);
		if (!l || map_put(&l->watchers, r.id, r.watcher.id) < 0) {
			vz_exit e;

			exit_set(&e, VZ_EXIT_NOPROC, VZ_ENOMEM, "cannot watch: out of memory");
			(void)send_down(sh, ref_of(a), r.watcher, r.id, &e);
		}
		return true;
	}
	case VZ__MSG_DEMONITOR: {
		uint64_t id;

		memcpy(&id, m->data, sizeof id);
		vz__msg_release(sh, m);
		if (a->life)
			map_del(&a->life->watchers, id, NULL);
		return true;
	}
	case VZ__MSG_LINK: {
		vz_ref from = m->from;

		vz__msg_release(sh, m);
		l = life_of(a);
		if (!l || map_put(&l->links, from.id, 1) < 0) {
			vz_exit e;

			exit_set(&e, VZ_EXIT_NOPROC, VZ_ENOMEM, "cannot link: out of memory");
			(void)send_exitsig(sh, ref_of(a), from, &e);
		}
		return true;
	}
	case VZ__MSG_UNLINK:
		if (a->life)
			map_del(&a->life->links, m->from.id, NULL);
		vz__msg_release(sh, m);
		return true;
	case VZ__MSG_EXITSIG:
		return on_exitsig(sh, a, m);
	default:
		return false;
	}
}

/* ---- messages that found no live actor -------------------------------------- */

void vz__life_dead(struct vz__shard *sh, struct vz_msg *m, int reason)
{
	(void)reason;
	switch (m->type) {
	case VZ__MSG_MONITOR: {
		struct monitor_req r;

		memcpy(&r, m->data, sizeof r);
		(void)send_down(sh, m->to, r.watcher, r.id, &noproc);
		break;
	}
	case VZ__MSG_LINK:
		(void)send_exitsig(sh, m->to, m->from, &noproc);
		break;
	case VZ__MSG_SPAWN:
		vz__spawn_fail(sh, m, reason); /* answers and releases it */
		return;
	default: /* DEMONITOR, UNLINK, EXITSIG to a gone actor: moot */
		break;
	}
	vz__msg_release(sh, m);
}

/* ---- public: exit reasons, monitors, links ---------------------------------- */

VZ_API int vz_fail(vz_actor *self, int32_t code, const char *text)
{
	int rc = check_owner(self);

	if (rc < 0)
		return rc;
	if (!(self->flags & VZ__ACTOR_RUNNING))
		return VZ_ESTATE;
	vz__actor_fail(self->shard, self, code, text);
	return 0;
}

/* vz_fail()'s effect, also used by the simulation's crash fault between
 * two turns (the actor not inside receive: it stops at once). */
void vz__actor_fail(struct vz__shard *sh, struct vz_actor *a, int32_t code, const char *text)
{
	/* Recorded even with no watcher or link yet: the actor may still
	 * link or be watched before this receive returns. Without memory
	 * for the record the stop still happens (watchers would then read
	 * "stopped"). */
	if (life_of(a) && !a->life->exit_set) {
		exit_set(&a->life->exit, VZ_EXIT_FAILED, code, text);
		a->life->exit_set = true;
	}
	vz__actor_stop_now(sh, a, VZ_ESTALE);
}

static int check_target(const vz_runtime *rt, vz_ref r)
{
	if (vz_ref_is_null(r))
		return VZ_ESTALE;
	if (vz_ref_shard(r) >= rt->nshards)
		return VZ_ENOSHARD;
	return 0;
}

VZ_API int vz_monitor(vz_actor *self, vz_ref target, vz_monitor_ref *out)
{
	vz_monitor_ref unused;
	struct vz__shard *sh;
	struct vz__life *l;
	struct vz_actor *t;
	uint64_t id;
	vz_ref me;
	int rc = check_owner(self);

	if (rc < 0)
		return rc;
	/* out NULL: a monitor the caller will never demonitor (as a timer
	 * armed without a handle); it still ends with its DOWN. */
	if (!out)
		out = &unused;
	sh = self->shard;
	rc = check_target(sh->rt, target);
	/* Another node's actor: the request below travels through the
	 * cluster (runtime/cluster/monitor.c), which answers as a shard. */
	if (rc == VZ_ENOSHARD && vz_ref_is_remote(sh->rt, target))
		rc = 0;
	if (rc < 0)
		return rc;
	if (atomic_load_explicit(&sh->rt->state, memory_order_relaxed) >= VZ__RT_STOPPING)
		return VZ_ESTOPPED; /* relaxed: as send_from() reads it */
	l = life_of(self);
	if (!l)
		return VZ_ENOMEM;
	id = sh->sim ? vz__sim_monitor_id(sh->sim)
		     : atomic_fetch_add_explicit(&next_monitor_id, 1, memory_order_relaxed);
	if (map_put(&l->watching, id, target.id) < 0)
		return VZ_ENOMEM;
	me = ref_of(self);
	if (vz_ref_shard(target) == sh->id) {
		t = vz__actor_lookup(sh, target);
		if (!t) {
			/* Gone: DOWN at once, as a message like any DOWN. */
			rc = send_down(sh, target, me, id, &noproc);
			if (rc < 0) {
				map_del(&l->watching, id, NULL);
				return rc;
			}
		} else if (!life_of(t) || map_put(&t->life->watchers, id, me.id) < 0) {
			map_del(&l->watching, id, NULL);
			return VZ_ENOMEM;
		}
	} else {
		struct monitor_req r = {.watcher = me, .id = id};

		rc = sys_send(sh, me, target, VZ__MSG_MONITOR, &r, sizeof r);
		if (rc < 0) {
			map_del(&l->watching, id, NULL);
			return rc;
		}
	}
	out->id = id;
	return 0;
}

VZ_API int vz_demonitor(vz_actor *self, vz_monitor_ref mon)
{
	struct vz__shard *sh;
	uint64_t target;
	int rc = check_owner(self);

	if (rc < 0)
		return rc;
	sh = self->shard;
	if (!self->life || !map_del(&self->life->watching, mon.id, &target))
		return 0;
	if (vz_ref_shard((vz_ref){target}) == sh->id) {
		struct vz_actor *t = vz__actor_lookup(sh, (vz_ref){target});

		if (t && t->life)
			map_del(&t->life->watchers, mon.id, NULL);
	} else {
		(void)sys_send(sh, ref_of(self), (vz_ref){target}, VZ__MSG_DEMONITOR, &mon.id,
			       sizeof mon.id);
	}
	return 0;
}

VZ_API int vz_link(vz_actor *self, vz_ref other)
{
	struct vz__shard *sh;
	struct vz__life *l;
	vz_ref me;
	int rc = check_owner(self);

	if (rc < 0)
		return rc;
	sh = self->shard;
	rc = check_target(sh->rt, other);
	if (rc < 0)
		return rc;
	me = ref_of(self);
	if (vz_ref_eq(me, other))
		return VZ_EINVAL;
	if (atomic_load_explicit(&sh->rt->state, memory_order_relaxed) >= VZ__RT_STOPPING)
		return VZ_ESTOPPED; /* relaxed: as send_from() reads it */
	l = life_of(self);
	if (!l)
		return VZ_ENOMEM;
	if (map_find(&l->links, other.id))
		return 0;
	if (map_put(&l->links, other.id, 1) < 0)
		return VZ_ENOMEM;
	if (vz_ref_shard(other) == sh->id) {
		struct vz_actor *o = vz__actor_lookup(sh, other);

		if (!o) {
			/* Gone: the signal comes at once, through the lane. */
			rc = send_exitsig(sh, other, me, &noproc);
			if (rc < 0) {
				map_del(&l->links, other.id, NULL);
				return rc;
			}
		} else if (!life_of(o) || map_put(&o->life->links, me.id, 1) < 0) {
			map_del(&l->links, other.id, NULL);
			return VZ_ENOMEM;
		}
		return 0;
	}
	rc = sys_send(sh, me, other, VZ__MSG_LINK, NULL, 0);
	if (rc < 0)
		map_del(&l->links, other.id, NULL);
	return rc;
}

VZ_API int vz_unlink(vz_actor *self, vz_ref other)
{
	struct vz__shard *sh;
	int rc = check_owner(self);

	if (rc < 0)
		return rc;
	sh = self->shard;
	if (!self->life || !map_del(&self->life->links, other.id, NULL))
		return 0;
	if (vz_ref_shard(other) == sh->id) {
		struct vz_actor *o = vz__actor_lookup(sh, other);

		if (o && o->life)
			map_del(&o->life->links, ref_of(self).id, NULL);
	} else {
		(void)sys_send(sh, ref_of(self), other, VZ__MSG_UNLINK, NULL, 0);
	}
	return 0;
}

VZ_API int vz_trap_exits(vz_actor *self, bool on)
{
	int rc = check_owner(self);

	if (rc < 0)
		return rc;
	if (!life_of(self))
		return VZ_ENOMEM;
	self->life->trap_exits = on;
	return 0;
}

/* ---- public: ask ------------------------------------------------------------ */

VZ_API int vz_ask(vz_actor *self, vz_ref to, uint32_t type, const void *payload, size_t len,
		  uint64_t timeout_ns, uint32_t *corr)
{
	struct vz__shard *sh;
	struct vz__life *l;
	uint64_t timer;
	uint32_t id;
	int rc = check_owner(self);

	if (rc < 0)
		return rc;
	if (!corr || type < VZ_MSG_USER)
		return VZ_EINVAL;
	sh = self->shard;
	l = life_of(self);
	if (!l)
		return VZ_ENOMEM;
	do /* 0 is "none"; after a wrap, skip ids still pending */
		id = ++l->next_corr;
	while (!id || map_find(&l->asks, id));
	/* The deadline first: once the request is out it cannot be taken
	 * back, and an ask must end in exactly one answer. */
	sh->now_ns = vz__mono_ns(); /* as vz_timer_arm(): a fresh clock read */
	rc = vz__timers_arm(&sh->timers, &self->timers, sh->now_ns, timeout_ns, 0, ASK_TAG_BIT | id,
			    &timer);
	if (rc < 0)
		return rc;
	if (map_put(&l->asks, id, timer) < 0) {
		(void)vz__timers_cancel(&sh->timers, &self->timers, timer);
		return VZ_ENOMEM;
	}
	rc = vz__send_corr(sh, ref_of(self), to, type, 0, id, payload, len);
	if (rc < 0) {
		map_del(&l->asks, id, NULL);
		(void)vz__timers_cancel(&sh->timers, &self->timers, timer);
		return rc;
	}
	if (sh->timer_reserve_n == 0)
		vz__timer_reserve_fill(sh, true);
	*corr = id;
	return 0;
}
