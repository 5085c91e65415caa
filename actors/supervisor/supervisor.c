// SPDX-License-Identifier: MIT
/*
 * The supervisor actor (include/veloz/supervisor.h), built only on the
 * public API: vz_spawn_on() to start children anywhere, links with
 * trapped exits to learn how each ended, vz_stop() to stop them, and
 * vz_fail() to fail upward.
 *
 * Each child is in one state:
 *   IDLE      not running and not wanted (temporary or transient that ended,
 *             or never started yet)
 *   WANT      to be started, in spec order, once nothing is in flight
 *   SPAWNING  vz_spawn_on() sent; its VZ_MSG_SPAWNED (matched by tag) due
 *   RUNNING   linked; its VZ_MSG_EXIT due when it ends
 *   TO_STOP   running, to be stopped for a restart
 *   STOPPING  the supervisor stopped it for a restart; its EXIT due
 * step() moves the plan on: nothing happens while a child is SPAWNING or
 * STOPPING; otherwise the highest TO_STOP child is stopped, or else the
 * lowest WANT child is started. So the children of a restart are stopped
 * in reverse spec order, each waited for, before any starts, and they
 * start in spec order, one at a time. Exactly one EXIT
 * comes per started incarnation (the link, or "no such actor" if it ended
 * before the link arrived), which is what the states count on.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <veloz.h>
#include <veloz/supervisor.h>

enum cstate { C_IDLE, C_WANT, C_SPAWNING, C_RUNNING, C_TO_STOP, C_STOPPING };

struct child {
	vz_ref ref;
	uint64_t tag; /* of the spawn in flight */
	enum cstate st;
	bool restart_after; /* TO_STOP, STOPPING: WANT once its EXIT comes */
	bool stop_on_spawn; /* SPAWNING: part of a restart, TO_STOP when up */
};

struct sup {
	vz_sup_spec spec; /* a copy; children[] is the caller's */
	struct child *c;
	uint64_t *restarts; /* ring of restart times, max_restarts entries */
	uint32_t nrestarts, next_restart;
	uint64_t tag_seq;
	bool starting;	    /* the first start is under way */
	bool shutting_down; /* vz_sup_shutdown(): no restarts, stop at the end */
};

static void publish(const struct sup *s, unsigned i, vz_ref r)
{
	vz_sup_name *n = s->spec.children[i].name;

	/* Release: pairs with the acquire in vz_sup_name_ref() on any
	 * thread; the child's init has run (its SPAWNED came back). */
	if (n)
		__atomic_store_n(&n->ref, r.id,
				 __ATOMIC_RELEASE); /* pairs with vz_sup_name_ref() */
}

static int spawn_child(vz_actor *self, struct sup *s, unsigned i)
{
	const vz_sup_child *cs = &s->spec.children[i];

	s->c[i].tag = ++s->tag_seq;
	s->c[i].st = C_SPAWNING;
	s->c[i].stop_on_spawn = false;
	return vz_spawn_on(self, cs->shard, cs->spec, cs->arg, cs->arg_len, s->c[i].tag);
}

/* Stop the children started so far, last first (their links would stop
 * them anyway when this fails; this also reaches children that trap). */
static void stop_children(vz_actor *self, struct sup *s)
{
	vz_runtime *rt = vz_actor_runtime(self);

	for (unsigned i = s->spec.nchildren; i-- > 0;) {
		if (!vz_ref_is_null(s->c[i].ref)) {
			(void)vz_unlink(self, s->c[i].ref);
			(void)vz_stop(rt, s->c[i].ref);
			s->c[i].ref = VZ_REF_NULL;
		}
		publish(s, i, VZ_REF_NULL);
		s->c[i].st = C_IDLE;
	}
}

static void fail(vz_actor *self, struct sup *s, int32_t code, const char *why)
{
	stop_children(self, s);
	(void)vz_fail(self, code, why);
}

/* Move the plan on (see the top of the file). */
static void step(vz_actor *self, struct sup *s)
{
	for (unsigned i = 0; i < s->spec.nchildren; i++)
		if (s->c[i].st == C_SPAWNING || s->c[i].st == C_STOPPING)
			return;
	for (unsigned i = s->spec.nchildren; i-- > 0;)
		if (s->c[i].st == C_TO_STOP) {
			s->c[i].st = C_STOPPING;
			(void)vz_stop(vz_actor_runtime(self), s->c[i].ref);
			return;
		}
	for (unsigned i = 0; i < s->spec.nchildren; i++) {
		int rc;

		if (s->c[i].st != C_WANT)
			continue;
		rc = spawn_child(self, s, i);
		if (rc < 0) {
			s->c[i].st = C_IDLE;
			fail(self, s, rc, "cannot start a child");
		}
		return;
	}
	s->starting = false;
	if (s->shutting_down) /* every child has ended, last first */
		(void)vz_stop(vz_actor_runtime(self), vz_self(self));
}

/* One more restart now: false when that exceeds the intensity. */
static bool may_restart(vz_actor *self, struct sup *s)
{
	uint64_t now = vz_now_ns(self);
	uint32_t recent = 0;

	if (!s->spec.max_restarts)
		return false;
	for (uint32_t k = 0; k < s->nrestarts; k++)
		if (now - s->restarts[k] < s->spec.period_ns)
			recent++;
	if (recent >= s->spec.max_restarts)
		return false;
	s->restarts[s->next_restart] = now;
	s->next_restart = (s->next_restart + 1) % s->spec.max_restarts;
	if (s->nrestarts < s->spec.max_restarts)
		s->nrestarts++;
	return true;
}

/* Child j is part of a restart: stop it (or have it stopped once up) and
 * start it again afterwards. */
static void take_down(struct sup *s, unsigned j)
{
	struct child *c = &s->c[j];
	bool again = s->spec.children[j].restart != VZ_SUP_TEMPORARY;

	switch (c->st) {
	case C_RUNNING:
		c->st = C_TO_STOP; /* step() stops them, last first */
		c->restart_after = again;
		break;
	case C_SPAWNING:
		c->stop_on_spawn = true;
		c->restart_after = again;
		break;
	case C_TO_STOP:
	case C_STOPPING:
		c->restart_after = again;
		break;
	case C_IDLE:
		if (again && s->spec.children[j].restart == VZ_SUP_PERMANENT)
			c->st = C_WANT;
		break;
	case C_WANT:
		break;
	}
}

/* Child i ended (or could not start) while it was wanted running. */
static void child_failed(vz_actor *self, struct sup *s, unsigned i, bool abnormal)
{
	vz_sup_restart kind = s->spec.children[i].restart;
	unsigned n = s->spec.nchildren;

	if (s->shutting_down || kind == VZ_SUP_TEMPORARY ||
	    (kind == VZ_SUP_TRANSIENT && !abnormal)) {
		s->c[i].st = C_IDLE;
		step(self, s);
		return;
	}
	if (!may_restart(self, s)) {
		fail(self, s, VZ_EBUSY, "restart intensity reached");
		return;
	}
	s->c[i].st = C_WANT;
	if (s->spec.strategy == VZ_SUP_ONE_FOR_ALL) {
		for (unsigned j = n; j-- > 0;)
			if (j != i)
				take_down(s, j);
	} else if (s->spec.strategy == VZ_SUP_REST_FOR_ONE) {
		for (unsigned j = n; j-- > i + 1;)
			take_down(s, j);
	}
	step(self, s);
}

static int find(const struct sup *s, vz_ref r)
{
	for (unsigned i = 0; i < s->spec.nchildren; i++)
		if (vz_ref_eq(s->c[i].ref, r))
			return (int)i;
	return -1;
}

static void on_spawned(vz_actor *self, struct sup *s, const vz_spawned *sp)
{
	unsigned i;

	for (i = 0; i < s->spec.nchildren; i++)
		if (s->c[i].st == C_SPAWNING && s->c[i].tag == sp->tag)
			break;
	if (i == s->spec.nchildren)
		return;
	if (sp->rc < 0) {
		s->c[i].ref = VZ_REF_NULL;
		if (s->starting) {
			s->c[i].st = C_IDLE;
			fail(self, s, sp->rc, "a child's init failed");
			return;
		}
		child_failed(self, s, i, true);
		return;
	}
	s->c[i].ref = sp->actor;
	if (vz_link(self, sp->actor) < 0) {
		/* cannot watch it: stop it and count a failure */
		(void)vz_stop(vz_actor_runtime(self), sp->actor);
		s->c[i].ref = VZ_REF_NULL;
		child_failed(self, s, i, true);
		return;
	}
	if (s->c[i].stop_on_spawn) {
		s->c[i].st = C_TO_STOP;
	} else {
		s->c[i].st = C_RUNNING;
		publish(s, i, sp->actor);
	}
	step(self, s);
}

static void child_exit(vz_actor *self, struct sup *s, const vz_exit_msg *x)
{
	int i = find(s, x->actor);

	if (i < 0)
		return; /* not one of ours (someone else linked to us) */
	s->c[i].ref = VZ_REF_NULL;
	publish(s, (unsigned)i, VZ_REF_NULL);
	if (s->c[i].st == C_STOPPING || s->c[i].st == C_TO_STOP) {
		/* stopped for a restart, or ended on its own meanwhile */
		s->c[i].st = s->c[i].restart_after ? C_WANT : C_IDLE;
		step(self, s);
		return;
	}
	child_failed(self, s, (unsigned)i, vz_exit_abnormal(&x->reason));
}

static int sup_init(vz_actor *self, void *state, const void *arg)
{
	struct sup *s = state;
	const vz_sup_spec *spec = arg;
	int rc;

	if (!spec || !spec->children || !spec->nchildren || spec->nchildren > VZ_SUP_MAX_CHILDREN)
		return VZ_EINVAL;
	for (unsigned i = 0; i < spec->nchildren; i++)
		if (!spec->children[i].spec)
			return VZ_EINVAL;
	s->spec = *spec;
	s->c = calloc(spec->nchildren, sizeof *s->c);
	s->restarts = calloc(spec->max_restarts ? spec->max_restarts : 1, sizeof *s->restarts);
	rc = vz_trap_exits(self, true);
	if (!s->c || !s->restarts || rc < 0) {
		free(s->c);
		free(s->restarts);
		return rc < 0 ? rc : VZ_ENOMEM;
	}
	for (unsigned i = 0; i < spec->nchildren; i++)
		s->c[i].st = C_WANT;
	s->starting = true;
	rc = spawn_child(self, s, 0);
	if (rc < 0) {
		free(s->c);
		free(s->restarts);
		return rc;
	}
	return 0;
}

/* vz_sup_shutdown(): every child to be stopped, none restarted. */
static void begin_shutdown(vz_actor *self, struct sup *s)
{
	s->shutting_down = true;
	for (unsigned i = 0; i < s->spec.nchildren; i++) {
		struct child *c = &s->c[i];

		c->restart_after = false;
		if (c->st == C_RUNNING)
			c->st = C_TO_STOP;
		else if (c->st == C_WANT)
			c->st = C_IDLE;
		else if (c->st == C_SPAWNING)
			c->stop_on_spawn = true;
	}
	step(self, s);
}

static void sup_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct sup *s = state;

	switch (vz_msg_type(m)) {
	case VZ_SUP_MSG_SHUTDOWN:
		begin_shutdown(self, s);
		break;
	case VZ_MSG_SPAWNED:
		on_spawned(self, s, vz_msg_data(m));
		break;
	case VZ_MSG_EXIT:
		child_exit(self, s, vz_msg_data(m));
		break;
	default:
		break;
	}
}

static void sup_stop(vz_actor *self, void *state)
{
	struct sup *s = state;

	stop_children(self, s);
	free(s->c);
	free(s->restarts);
}

VZ_API int vz_sup_shutdown(vz_runtime *rt, vz_ref sup)
{
	return vz_post(rt, sup, VZ_SUP_MSG_SHUTDOWN, NULL, 0);
}

VZ_API const vz_actor_spec vz_supervisor = {
    .name = "supervisor",
    .state_size = sizeof(struct sup),
    .init = sup_init,
    .receive = sup_receive,
    .on_stop = sup_stop,
};
