// SPDX-License-Identifier: MIT
/*
 * Actor lifecycle and conversations, one case at a time, on three shards
 * (the races, repeated, are in tests/stress/stress_lifecycle.c):
 * - vz_spawn_on() to another shard and to the caller's own: one
 *   VZ_MSG_SPAWNED each, with the reference or init's error;
 *   vz_spawn_wait() from a foreign thread; vz_shard_of_key();
 * - vz_ask(): the reply carries the id and cancels the deadline; a silent
 *   target gives exactly one VZ_MSG_TIMEOUT; a reply after the timeout is
 *   dropped and counted as a dead letter (VZ_ETIMEDOUT), books balanced;
 * - a port: an engine thread asks an actor on another shard and polls the
 *   port's fd for the answer; the port closes when the runtime stops;
 * - monitors across shards: DOWN with vz_fail()'s code and text; DOWN
 *   "no such actor" for a stale reference; a demonitored DOWN is dropped;
 * - links: an abnormal exit stops a linked actor that does not trap
 *   (VZ_EXIT_LINKED, same code), reaches a trapping one as VZ_MSG_EXIT,
 *   and a normal exit stops nobody;
 * - vz_runtime_stop_async() from inside an actor, vz_runtime_wait();
 * - vz_spawn_wait() racing vz_runtime_stop(): 0 or VZ_ESTOPPED, no hang,
 *   every spawned actor stopped.
 * The I/O backend comes from VZ_BACKEND (the test runner sets it).
 */
#include "testutil.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

enum {
	MSG_CMD = VZ_MSG_USER, /* payload: struct cmd */
	MSG_Q,		       /* a question: answered with MSG_A (at once) */
	MSG_Q_SILENT,	       /* a question kept: answered on MSG_ANSWER_NOW */
	MSG_ANSWER_NOW,	       /* answer the kept question */
	MSG_A,
};

enum op {
	OP_SPAWN_ON,
	OP_MONITOR,
	OP_DEMONITOR,
	OP_LINK,
	OP_TRAP,
	OP_FAIL,
	OP_ASK,
	OP_STOP_SELF,
	OP_STOP_RT,
	OP_STOP,
	OP_FAILED_INITS, /* many spawns whose init links to a gone actor, then fails */
};

struct cmd {
	enum op op;
	uint32_t type;	  /* OP_ASK: request type */
	vz_ref target;	  /* monitor, link, ask, stop */
	uint64_t arg;	  /* spawn tag, timeout, monitor index */
	unsigned shard;	  /* spawn */
	int32_t code;	  /* fail; spawn: init result */
	unsigned mon_idx; /* where to keep a monitor id */
};

static const vz_actor_spec *probe_spec(void);

/* What probes saw, for the test thread. */
#define MAX_EVENTS 64
struct event {
	uint32_t type; /* message type, or 0 for a command's own result */
	int probe;
	int rc;
	uint32_t corr;
	vz_ref ref;
	uint64_t tag;
	vz_exit exit;
	uint64_t mon;
};

static struct {
	pthread_mutex_t mu;
	struct event ev[MAX_EVENTS];
	int n;
	vz_monitor_ref mons[8];
	atomic_int dead_timedout;
	atomic_int dead_total;
	atomic_int stops; /* on_stop calls of probes */
} L = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void record(const struct event *e)
{
	pthread_mutex_lock(&L.mu);
	if (L.n < MAX_EVENTS)
		L.ev[L.n++] = *e;
	pthread_mutex_unlock(&L.mu);
}

static int nevents(void)
{
	int n;

	pthread_mutex_lock(&L.mu);
	n = L.n;
	pthread_mutex_unlock(&L.mu);
	return n;
}

/* Wait (bounded by the watchdog) until `n` events were recorded. */
static void wait_events(int n)
{
	while (nevents() < n)
		sched_yield();
}

static struct event event_at(int i)
{
	struct event e;

	pthread_mutex_lock(&L.mu);
	e = L.ev[i];
	pthread_mutex_unlock(&L.mu);
	return e;
}

static void reset(void)
{
	pthread_mutex_lock(&L.mu);
	L.n = 0;
	memset(L.mons, 0, sizeof L.mons);
	pthread_mutex_unlock(&L.mu);
	atomic_store(&L.dead_timedout, 0);
	atomic_store(&L.dead_total, 0);
	atomic_store(&L.stops, 0);
	vz_test_reset_fails();
}

static void on_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len, int reason)
{
	(void)ctx, (void)to, (void)type, (void)data, (void)len;
	atomic_fetch_add(&L.dead_total, 1);
	if (reason == VZ_ETIMEDOUT)
		atomic_fetch_add(&L.dead_timedout, 1);
}

/* ---- the probe actor ------------------------------------------------------ */

/* init links to the gone actor *arg (queueing itself an exit signal) and
 * fails. */
static int linker_init(vz_actor *self, void *state, const void *arg)
{
	(void)state;
	VZ_TEST_CHECK(vz_link(self, *(const vz_ref *)arg) == 0);
	return VZ_EBUSY;
}

static void linker_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self, (void)state, (void)m;
}

static const vz_actor_spec linker_spec = {
    .name = "linker", .init = linker_init, .receive = linker_receive};

struct probe {
	int id;
	vz_ref kept_from; /* MSG_Q_SILENT */
	uint32_t kept_corr;
};

static int probe_init(vz_actor *self, void *state, const void *arg)
{
	struct probe *p = state;
	int v = arg ? *(const int *)arg : 0;

	(void)self;
	if (v < 0)
		return v; /* asked to fail */
	p->id = v;
	return 0;
}

static void probe_stop(vz_actor *self, void *state)
{
	(void)self, (void)state;
	atomic_fetch_add(&L.stops, 1);
}

static void run_cmd(vz_actor *self, struct probe *p, const struct cmd *c)
{
	vz_runtime *rt = vz_actor_runtime(self);
	struct event e = {.probe = p->id};

	switch (c->op) {
	case OP_SPAWN_ON: {
		int arg = c->code;

		e.rc = vz_spawn_on(self, c->shard, probe_spec(), &arg, sizeof arg, c->arg);
		break;
	}
	case OP_MONITOR:
		e.rc = vz_monitor(self, c->target, &L.mons[c->mon_idx]);
		e.mon = L.mons[c->mon_idx].id;
		break;
	case OP_DEMONITOR:
		e.rc = vz_demonitor(self, L.mons[c->mon_idx]);
		break;
	case OP_LINK:
		e.rc = vz_link(self, c->target);
		break;
	case OP_TRAP:
		e.rc = vz_trap_exits(self, true);
		break;
	case OP_FAIL:
		e.rc = vz_fail(self, c->code, "boom");
		break;
	case OP_ASK:
		e.rc = vz_ask(self, c->target, c->type, NULL, 0, c->arg, &e.corr);
		break;
	case OP_STOP_SELF:
		e.rc = vz_stop(rt, vz_self(self));
		break;
	case OP_STOP_RT:
		e.rc = vz_runtime_stop_async(rt);
		/* a second ask, from anywhere, is refused */
		VZ_TEST_CHECK(vz_runtime_stop_async(rt) == VZ_ESTATE);
		VZ_TEST_CHECK(vz_runtime_stop(rt) == VZ_EWRONGTHREAD);
		break;
	case OP_STOP:
		e.rc = vz_stop(rt, c->target);
		break;
	case OP_FAILED_INITS: {
		/* Pool growth over many failed spawns, after a warm-up: none,
		 * unless each leaks a block (e.tag: the slabs added). */
		vz_shard_stats a, b;
		unsigned shard = vz_actor_shard(self);

		for (int i = 0; i < 1000; i++)
			VZ_TEST_CHECK(vz_spawn(rt, shard, &linker_spec, &c->target, NULL) ==
				      VZ_EBUSY);
		VZ_TEST_CHECK(vz_stats_shard(rt, shard, &a) == 0);
		for (uint64_t i = 0; i < c->arg; i++)
			VZ_TEST_CHECK(vz_spawn(rt, shard, &linker_spec, &c->target, NULL) ==
				      VZ_EBUSY);
		VZ_TEST_CHECK(vz_stats_shard(rt, shard, &b) == 0);
		e.tag = b.pool_refills - a.pool_refills;
		break;
	}
	}
	record(&e);
}

static void probe_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct probe *p = state;
	struct event e = {.type = vz_msg_type(m), .probe = p->id, .corr = vz_msg_corr(m)};

	switch (vz_msg_type(m)) {
	case MSG_CMD:
		run_cmd(self, p, vz_msg_data(m));
		return;
	case MSG_Q:
		VZ_TEST_CHECK(vz_reply(self, m, MSG_A, NULL, 0) == 0);
		return;
	case MSG_Q_SILENT: /* recorded: the answer must wait until it is here */
		p->kept_from = vz_msg_sender(m);
		p->kept_corr = vz_msg_corr(m);
		break;
	case MSG_ANSWER_NOW:
		VZ_TEST_CHECK(vz_respond(self, p->kept_from, p->kept_corr, MSG_A, NULL, 0) == 0);
		return;
	case VZ_MSG_SPAWNED: {
		const vz_spawned *s = vz_msg_data(m);

		e.rc = s->rc;
		e.ref = s->actor;
		e.tag = s->tag;
		VZ_TEST_CHECK(vz_ref_eq(vz_msg_sender(m), s->actor));
		VZ_TEST_CHECK(s->rc < 0 || vz_ref_shard(s->actor) == s->shard);
		break;
	}
	case VZ_MSG_DOWN: {
		const vz_down *d = vz_msg_data(m);

		e.exit = d->reason;
		e.ref = d->actor;
		e.mon = d->mon.id;
		break;
	}
	case VZ_MSG_EXIT: {
		const vz_exit_msg *x = vz_msg_data(m);

		e.exit = x->reason;
		e.ref = x->actor;
		break;
	}
	case VZ_MSG_TIMEOUT:
	case MSG_A:
		break;
	case VZ_MSG_TIMER: /* probes arm none: an ask's deadline must not leak out */
		VZ_TEST_CHECK(!"a timer expiry reached a probe");
		return;
	default:
		return;
	}
	record(&e);
}

static const vz_actor_spec probe_spec_v = {
    .name = "probe",
    .state_size = sizeof(struct probe),
    .init = probe_init,
    .receive = probe_receive,
    .on_stop = probe_stop,
};

static const vz_actor_spec *probe_spec(void)
{
	return &probe_spec_v;
}

/* ---- helpers ---------------------------------------------------------------- */

static vz_runtime *make_rt(unsigned nshards)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_config(&cfg, nshards);
	cfg.dead_letter = on_dead;
	cfg.pool.workers_per_node = 1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	return rt;
}

static vz_ref spawn_probe(vz_runtime *rt, unsigned shard, int id)
{
	vz_ref r;

	assert_int_equal(vz_spawn_wait(rt, shard, &probe_spec_v, &id, &r), 0);
	return r;
}

static void cmd(vz_runtime *rt, vz_ref to, struct cmd c)
{
	assert_int_equal(vz_post(rt, to, MSG_CMD, &c, sizeof c), 0);
}

/* Post a command and wait for the event it records; returns it. */
/* A reference to an actor of `shard` that has stopped. */
static vz_ref vz_test_gone(vz_runtime *rt, unsigned shard)
{
	int id = 99, before = atomic_load(&L.stops);
	vz_ref r;

	assert_int_equal(vz_spawn_wait(rt, shard, &probe_spec_v, &id, &r), 0);
	assert_int_equal(vz_stop(rt, r), 0);
	while (atomic_load(&L.stops) == before)
		sched_yield();
	return r;
}

/* Run command c on probe `to` and return its result (the first event of
 * type 0 recorded after it was posted). A message the command sends to
 * another shard leaves during the probe's turn, so its receiver may record
 * its event before the probe records the command's result. */
static struct event call(vz_runtime *rt, vz_ref to, struct cmd c)
{
	int n = nevents();

	cmd(rt, to, c);
	for (int i = n;; i++) {
		wait_events(i + 1);
		if (event_at(i).type == 0)
			return event_at(i);
	}
}

/* `from` asks `to` and waits for the answer: every request `from` sent
 * `to` before (monitor, link) has then reached it (per-pair FIFO). */
static void sync_with(vz_runtime *rt, vz_ref from, vz_ref to)
{
	int n = nevents();

	cmd(rt, from,
	    (struct cmd){.op = OP_ASK, .type = MSG_Q, .target = to, .arg = 60000000000ull});
	wait_events(n + 2);
	assert_int_equal(event_at(n).rc, 0);
	assert_int_equal(event_at(n + 1).type, MSG_A);
}

static void finish(vz_runtime *rt)
{
	vz_shard_stats t;
	uint64_t foreign;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, (uint64_t)atomic_load(&L.dead_total));
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
}

/* ---- cases ------------------------------------------------------------------ */

static void test_spawn_anywhere(void **st)
{
	vz_runtime *rt;
	vz_ref a, far;
	struct event e;
	int bad = 7;

	(void)st;
	reset();
	rt = make_rt(3);
	/* before start vz_spawn_wait() is vz_spawn() */
	a = spawn_probe(rt, 0, 1);
	assert_int_equal(vz_runtime_start(rt), 0);
	/* from a foreign thread after start: waits for the shard */
	far = spawn_probe(rt, 2, 2);
	assert_int_equal(vz_ref_shard(far), 2);
	assert_int_equal(vz_spawn(rt, 2, &probe_spec_v, &bad, &far), VZ_EWRONGTHREAD);
	bad = VZ_ENOENT;
	assert_int_equal(vz_spawn_wait(rt, 1, &probe_spec_v, &bad, &far), VZ_ENOENT);
	assert_int_equal(vz_spawn_wait(rt, 9, &probe_spec_v, &bad, &far), VZ_ENOSHARD);

	/* from an actor: to another shard, to its own, a failing init */
	e = call(rt, a, (struct cmd){.op = OP_SPAWN_ON, .shard = 1, .arg = 11, .code = 3});
	assert_int_equal(e.rc, 0);
	wait_events(2);
	e = event_at(1);
	assert_int_equal(e.type, VZ_MSG_SPAWNED);
	assert_int_equal(e.rc, 0);
	assert_int_equal(e.tag, 11);
	assert_int_equal(vz_ref_shard(e.ref), 1);
	e = call(rt, a, (struct cmd){.op = OP_SPAWN_ON, .shard = VZ_SHARD_HERE, .arg = 12});
	assert_int_equal(e.rc, 0);
	wait_events(4);
	e = event_at(3);
	assert_int_equal(e.type, VZ_MSG_SPAWNED);
	assert_int_equal(vz_ref_shard(e.ref), 0);
	e = call(rt, a, (struct cmd){.op = OP_SPAWN_ON, .shard = 2, .arg = 13, .code = VZ_EBUSY});
	wait_events(6);
	e = event_at(5);
	assert_int_equal(e.type, VZ_MSG_SPAWNED);
	assert_int_equal(e.rc, VZ_EBUSY);
	assert_true(vz_ref_is_null(e.ref));
	e = call(rt, a, (struct cmd){.op = OP_SPAWN_ON, .shard = 5});
	assert_int_equal(e.rc, VZ_ENOSHARD);

	for (uint64_t k = 0; k < 1000; k++)
		assert_true(vz_shard_of_key(rt, k) < 3);
	assert_int_equal(vz_shard_of_key(rt, 42), vz_shard_of_key(rt, 42));
	finish(rt);
}

static void test_ask(void **st)
{
	vz_runtime *rt;
	vz_ref asker, ans;
	struct event e, r;

	(void)st;
	reset();
	rt = make_rt(2);
	assert_int_equal(vz_runtime_start(rt), 0);
	asker = spawn_probe(rt, 0, 1);
	ans = spawn_probe(rt, 1, 2);

	/* answered: the reply carries the id (a deadline no test run
	 * reaches: which of two racing answers wins is stress_lifecycle's) */
	e = call(rt, asker,
		 (struct cmd){.op = OP_ASK, .type = MSG_Q, .target = ans, .arg = 60000000000ull});
	assert_int_equal(e.rc, 0);
	assert_int_not_equal(e.corr, 0);
	wait_events(2);
	r = event_at(1);
	assert_int_equal(r.type, MSG_A);
	assert_int_equal(r.corr, e.corr);

	/* silent: exactly one timeout */
	e = call(rt, asker,
		 (struct cmd){.op = OP_ASK, .type = MSG_Q_SILENT, .target = ans, .arg = 1000000});
	assert_int_equal(e.rc, 0);
	/* the command's result, the question's arrival (which may come
	 * first: the question leaves during the asker's turn) and the
	 * timeout, in any order */
	wait_events(5);
	{
		int timeouts = 0, silent = 0;

		for (int i = 2; i < 5; i++) {
			r = event_at(i);
			if (r.type == VZ_MSG_TIMEOUT) {
				assert_int_equal(r.corr, e.corr);
				timeouts++;
			}
			silent += r.type == MSG_Q_SILENT;
		}
		assert_int_equal(timeouts, 1);
		assert_int_equal(silent, 1);
	}
	/* the late answer is dropped and counted */
	assert_int_equal(vz_post(rt, ans, MSG_ANSWER_NOW, NULL, 0), 0);
	while (atomic_load(&L.dead_timedout) < 1)
		sched_yield();

	/* a third ask still works, and nothing else arrived */
	e = call(rt, asker,
		 (struct cmd){.op = OP_ASK, .type = MSG_Q, .target = ans, .arg = 60000000000ull});
	wait_events(7);
	r = event_at(6);
	assert_int_equal(r.type, MSG_A);
	assert_int_equal(r.corr, e.corr);
	assert_int_equal(nevents(), 7);

	/* refused asks: nothing comes */
	e = call(rt, asker, (struct cmd){.op = OP_ASK, .type = 3, .target = ans});
	assert_int_equal(e.rc, VZ_EINVAL);
	e = call(rt, asker, (struct cmd){.op = OP_ASK, .type = MSG_Q, .target = VZ_REF_NULL});
	assert_int_equal(e.rc, VZ_ESTALE);
	finish(rt);
	assert_int_equal(atomic_load(&L.dead_timedout), 1);
}

struct engine_arg {
	vz_runtime *rt;
	vz_ref target;
	int ok;
};

/* An engine thread: its own port, a question, poll() for the answer. */
static void *engine_thread(void *p)
{
	struct engine_arg *ea = p;
	struct pollfd pfd;
	vz_port_msg pm;
	vz_port *port;
	uint32_t corr;
	char buf[32];

	if (vz_port_create(ea->rt, 0, &port) != 0)
		return NULL;
	pfd.fd = vz_port_fd(port);
	pfd.events = POLLIN;
	if (vz_port_recv(port, &pm, buf, sizeof buf) != VZ_EAGAIN)
		goto out;
	if (vz_port_post(port, ea->target, MSG_Q, NULL, 0, &corr) != 0)
		goto out;
	while (poll(&pfd, 1, -1) != 1)
		;
	if (vz_port_recv(port, &pm, buf, sizeof buf) != 0)
		goto out;
	if (pm.type != MSG_A || pm.corr != corr || !vz_ref_eq(pm.from, ea->target))
		goto out;
	/* empty again: the fd is no longer readable */
	if (poll(&pfd, 1, 0) != 0 || vz_port_wait(port, 1000) != VZ_ETIMEDOUT)
		goto out;
	/* a spawn whose result comes to the port */
	{
		int id = 5;
		vz_spawned sp;

		if (vz_port_spawn(port, 1, probe_spec(), &id, sizeof id, 77) != 0)
			goto out;
		while (vz_port_recv(port, &pm, &sp, sizeof sp) == VZ_EAGAIN)
			(void)vz_port_wait(port, -1);
		if (pm.type != VZ_MSG_SPAWNED || sp.rc != 0 || sp.tag != 77 ||
		    vz_ref_shard(sp.actor) != 1 || !vz_ref_eq(pm.from, sp.actor))
			goto out;
		if (vz_port_spawn(port, 7, probe_spec(), NULL, 0, 0) != VZ_ENOSHARD)
			goto out;
	}
	ea->ok = 1;
out:
	vz_port_destroy(port);
	return NULL;
}

static void test_port(void **st)
{
	struct engine_arg ea = {0};
	vz_runtime *rt;
	pthread_t t;
	vz_port *port;
	vz_port_msg pm;

	(void)st;
	reset();
	rt = make_rt(2);
	/* a port made before start, closed by the stop */
	assert_int_equal(vz_port_create(rt, 1, &port), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	ea.rt = rt;
	ea.target = spawn_probe(rt, 1, 1);
	assert_int_equal(pthread_create(&t, NULL, engine_thread, &ea), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(ea.ok);
	/* a message to the port from outside, then the stop closes it */
	assert_int_equal(vz_post(rt, vz_port_ref(port), MSG_A, "hi", 2), 0);
	assert_int_equal(vz_port_wait(port, -1), 0);
	assert_int_equal(vz_port_recv(port, &pm, NULL, 0), VZ_ETOOBIG);
	assert_int_equal(pm.len, 2);
	{
		char b[2];

		assert_int_equal(vz_port_recv(port, &pm, b, sizeof b), 0);
		assert_memory_equal(b, "hi", 2);
	}
	/* an actor asks the engine thread (here, this one) through the port */
	{
		vz_ref asker = spawn_probe(rt, 1, 2);
		struct event e;
		int n = nevents();

		e = call(rt, asker,
			 (struct cmd){.op = OP_ASK,
				      .type = MSG_Q,
				      .target = vz_port_ref(port),
				      .arg = 60000000000ull});
		assert_int_equal(e.rc, 0);
		assert_int_equal(vz_port_wait(port, -1), 0);
		assert_int_equal(vz_port_recv(port, &pm, NULL, 0), 0);
		assert_int_equal(pm.type, MSG_Q);
		assert_int_equal(pm.corr, e.corr);
		assert_true(vz_ref_eq(pm.from, asker));
		assert_int_equal(vz_port_reply(port, &pm, MSG_A, NULL, 0), 0);
		wait_events(n + 2);
		assert_int_equal(event_at(n + 1).type, MSG_A);
		assert_int_equal(event_at(n + 1).corr, e.corr);
	}
	finish(rt); /* destroys rt; the port outlives it, closed */
	assert_int_equal(vz_port_wait(port, 0), 0);
	assert_int_equal(vz_port_recv(port, &pm, NULL, 0), VZ_ESTOPPED);
	vz_port_destroy(port);
}

static void test_monitors(void **st)
{
	vz_runtime *rt;
	vz_ref w, t1, t2;
	struct event e, d;
	int n;

	(void)st;
	reset();
	rt = make_rt(3);
	assert_int_equal(vz_runtime_start(rt), 0);
	w = spawn_probe(rt, 0, 1);
	t1 = spawn_probe(rt, 1, 2);
	t2 = spawn_probe(rt, 2, 3);

	/* a failure on another shard: DOWN with its code and text */
	e = call(rt, w, (struct cmd){.op = OP_MONITOR, .target = t1, .mon_idx = 0});
	assert_int_equal(e.rc, 0);
	sync_with(rt, w, t1);
	n = nevents();
	assert_int_equal(call(rt, t1, (struct cmd){.op = OP_FAIL, .code = 42}).rc, 0);
	wait_events(n + 2);
	d = event_at(n + 1);
	assert_int_equal(d.type, VZ_MSG_DOWN);
	assert_int_equal(d.mon, e.mon);
	assert_true(vz_ref_eq(d.ref, t1));
	assert_int_equal(d.exit.kind, VZ_EXIT_FAILED);
	assert_int_equal(d.exit.code, 42);
	assert_string_equal(d.exit.text, "boom");

	/* stale now: DOWN "no such actor" at once (remote and local) */
	n = nevents();
	e = call(rt, w, (struct cmd){.op = OP_MONITOR, .target = t1, .mon_idx = 1});
	assert_int_equal(e.rc, 0);
	wait_events(n + 2);
	d = event_at(n + 1);
	assert_int_equal(d.type, VZ_MSG_DOWN);
	assert_int_equal(d.exit.kind, VZ_EXIT_NOPROC);
	assert_int_equal(d.mon, e.mon);

	/* demonitor, then the target stops, then a second monitor: only the
	 * second's DOWN arrives (the first would have come before it) */
	e = call(rt, w, (struct cmd){.op = OP_MONITOR, .target = t2, .mon_idx = 2});
	e = call(rt, w, (struct cmd){.op = OP_DEMONITOR, .mon_idx = 2});
	assert_int_equal(e.rc, 0);
	e = call(rt, w, (struct cmd){.op = OP_DEMONITOR, .mon_idx = 2}); /* idempotent */
	assert_int_equal(e.rc, 0);
	e = call(rt, w, (struct cmd){.op = OP_STOP, .target = t2});
	assert_int_equal(e.rc, 0);
	n = nevents();
	e = call(rt, w, (struct cmd){.op = OP_MONITOR, .target = t2, .mon_idx = 3});
	wait_events(n + 2);
	d = event_at(n + 1);
	assert_int_equal(d.type, VZ_MSG_DOWN);
	assert_int_equal(d.mon, e.mon);
	assert_true(d.exit.kind == VZ_EXIT_STOPPED || d.exit.kind == VZ_EXIT_NOPROC);

	/* a self-stop is a normal exit; on the watcher's own shard */
	t1 = spawn_probe(rt, 0, 4);
	e = call(rt, w, (struct cmd){.op = OP_MONITOR, .target = t1, .mon_idx = 4});
	n = nevents();
	e = call(rt, t1, (struct cmd){.op = OP_STOP_SELF});
	wait_events(n + 2);
	d = event_at(n + 1);
	assert_int_equal(d.type, VZ_MSG_DOWN);
	assert_int_equal(d.exit.kind, VZ_EXIT_NORMAL);
	finish(rt);
}

static void test_links(void **st)
{
	vz_runtime *rt;
	vz_ref w, c, b, x, trap;
	struct event e, d;
	int n;

	(void)st;
	reset();
	rt = make_rt(3);
	assert_int_equal(vz_runtime_start(rt), 0);
	w = spawn_probe(rt, 0, 1);
	c = spawn_probe(rt, 1, 2);
	b = spawn_probe(rt, 2, 3);
	trap = spawn_probe(rt, 0, 4);

	/* c (no trap) and trap (trapping) linked to b; w watches c */
	assert_int_equal(call(rt, c, (struct cmd){.op = OP_LINK, .target = b}).rc, 0);
	assert_int_equal(call(rt, trap, (struct cmd){.op = OP_TRAP}).rc, 0);
	assert_int_equal(call(rt, trap, (struct cmd){.op = OP_LINK, .target = b}).rc, 0);
	assert_int_equal(call(rt, w, (struct cmd){.op = OP_MONITOR, .target = c}).rc, 0);
	sync_with(rt, c, b);
	sync_with(rt, trap, b);
	sync_with(rt, w, c);
	/* self-link refused */
	assert_int_equal(call(rt, c, (struct cmd){.op = OP_LINK, .target = c}).rc, VZ_EINVAL);
	n = nevents();
	assert_int_equal(call(rt, b, (struct cmd){.op = OP_FAIL, .code = 7}).rc, 0);
	/* two events follow: trap's EXIT and w's DOWN of c, in any order */
	wait_events(n + 3);
	for (int i = n + 1; i < n + 3; i++) {
		d = event_at(i);
		if (d.type == VZ_MSG_EXIT) {
			assert_int_equal(d.probe, 4);
			assert_true(vz_ref_eq(d.ref, b));
			assert_int_equal(d.exit.kind, VZ_EXIT_FAILED);
			assert_int_equal(d.exit.code, 7);
		} else {
			assert_int_equal(d.type, VZ_MSG_DOWN);
			assert_true(vz_ref_eq(d.ref, c));
			assert_int_equal(d.exit.kind, VZ_EXIT_LINKED);
			assert_int_equal(d.exit.code, 7);
			assert_string_equal(d.exit.text, "linked: boom");
		}
	}

	/* a normal exit stops nobody; the trapping actor still hears of it */
	b = spawn_probe(rt, 2, 5);
	c = spawn_probe(rt, 1, 6);
	assert_int_equal(call(rt, c, (struct cmd){.op = OP_LINK, .target = b}).rc, 0);
	assert_int_equal(call(rt, trap, (struct cmd){.op = OP_LINK, .target = b}).rc, 0);
	sync_with(rt, c, b);
	sync_with(rt, trap, b);
	n = nevents();
	assert_int_equal(call(rt, b, (struct cmd){.op = OP_STOP_SELF}).rc, 0);
	wait_events(n + 2);
	d = event_at(n + 1);
	assert_int_equal(d.type, VZ_MSG_EXIT);
	assert_int_equal(d.exit.kind, VZ_EXIT_NORMAL);
	/* c still lives once b's exit signal has reached it: it answers.
	 * trap's EXIT says only that b has ended, not that b's signal to c
	 * has arrived: it leaves shard 2 through another ring, and events of
	 * different origins are not ordered. x, on b's shard, answers c after
	 * b ended, so the answer travels behind b's signal in the one ring
	 * from shard 2 to shard 1 (FIFO per ordered shard pair, xshard/),
	 * and c handles the signal on its urgent lane before that answer, its
	 * user mail. c must not trap exits before that: a signal arriving
	 * afterwards would become an EXIT event among the next cases' events
	 * (it did, when OP_TRAP served as the liveness probe here). */
	x = spawn_probe(rt, 2, 7);
	sync_with(rt, c, x);

	/* an init that links to a gone actor and then fails leaves nothing
	 * behind (its exit signal to itself is released with it) */
	e = call(rt, w,
		 (struct cmd){.op = OP_FAILED_INITS, .target = vz_test_gone(rt, 0), .arg = 50000});
	assert_int_equal(e.tag, 0);

	/* linking to a gone actor: EXIT "no such actor" (trapping) */
	n = nevents();
	e = call(rt, trap, (struct cmd){.op = OP_LINK, .target = b});
	assert_int_equal(e.rc, 0);
	wait_events(n + 2);
	d = event_at(n + 1);
	assert_int_equal(d.type, VZ_MSG_EXIT);
	assert_int_equal(d.exit.kind, VZ_EXIT_NOPROC);
	finish(rt);
}

static void test_stop_from_inside(void **st)
{
	vz_runtime *rt;
	vz_ref a;

	(void)st;
	reset();
	rt = make_rt(2);
	assert_int_equal(vz_runtime_wait(rt), VZ_ESTATE); /* never started */
	assert_int_equal(vz_runtime_start(rt), 0);
	a = spawn_probe(rt, 1, 1);
	assert_int_equal(call(rt, a, (struct cmd){.op = OP_STOP_RT}).rc, 0);
	assert_int_equal(vz_runtime_wait(rt), 0);
	assert_int_equal(vz_runtime_wait(rt), 0);
	assert_int_equal(vz_runtime_stop(rt), VZ_ESTATE);
	assert_int_equal(atomic_load(&L.stops), 1);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
}

struct spawner_arg {
	vz_runtime *rt;
	atomic_int go;
	atomic_uint ok;
	int bad;
};

static void *spawner(void *p)
{
	struct spawner_arg *sa = p;
	int id = 9;

	while (!atomic_load(&sa->go))
		sched_yield();
	for (;;) {
		vz_ref r;
		int rc = vz_spawn_wait(sa->rt, 1, &probe_spec_v, &id, &r);

		if (rc == 0)
			atomic_fetch_add(&sa->ok, 1);
		else if (rc == VZ_ESTOPPED)
			break;
		else
			sa->bad = rc;
		if (sa->bad)
			break;
	}
	return NULL;
}

/* Spawns on the next shard again each time a spawn's result comes back,
 * until refused: vz_spawn_on() racing the stop from inside. */
static atomic_uint chain_spawned;

static void chain_receive(vz_actor *self, void *state, const vz_msg *m)
{
	int id = 8;

	(void)state;
	if (vz_msg_type(m) == VZ_MSG_SPAWNED) {
		const vz_spawned *sp = vz_msg_data(m);

		VZ_TEST_CHECK(sp->rc == 0 || sp->rc == VZ_ESTOPPED);
		if (sp->rc == 0)
			atomic_fetch_add(&chain_spawned, 1);
	} else if (vz_msg_type(m) != MSG_Q) {
		return;
	}
	(void)vz_spawn_on(self, (vz_actor_shard(self) + 1) % 2, &probe_spec_v, &id, sizeof id, 0);
}

static const vz_actor_spec chain_spec = {.name = "chain", .receive = chain_receive};

static void test_spawn_during_stop(void **st)
{
	struct spawner_arg sa = {0};
	vz_shard_stats t;
	pthread_t th;
	vz_runtime *rt;

	(void)st;
	reset();
	rt = make_rt(2);
	assert_int_equal(vz_runtime_start(rt), 0);
	sa.rt = rt;
	atomic_store(&chain_spawned, 0);
	{
		vz_ref chain;

		assert_int_equal(vz_spawn_wait(rt, 0, &chain_spec, NULL, &chain), 0);
		assert_int_equal(vz_post(rt, chain, MSG_Q, NULL, 0), 0);
	}
	assert_int_equal(pthread_create(&th, NULL, spawner, &sa), 0);
	atomic_store(&sa.go, 1);
	while (atomic_load(&sa.ok) < 50 || atomic_load(&chain_spawned) < 50)
		sched_yield();
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(sa.bad, 0);
	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	assert_int_equal(t.actors_live, 0);
	/* every actor spawned (the chain's, whose last results may not have
	 * reached it, and the thread's) was stopped */
	assert_true(t.actors_spawned >= atomic_load(&sa.ok) + atomic_load(&chain_spawned) + 1);
	assert_int_equal(t.actors_stopped, t.actors_spawned);
	vz_test_assert_no_fails();
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spawn_anywhere),
	    cmocka_unit_test(test_ask),
	    cmocka_unit_test(test_port),
	    cmocka_unit_test(test_monitors),
	    cmocka_unit_test(test_links),
	    cmocka_unit_test(test_stop_from_inside),
	    cmocka_unit_test(test_spawn_during_stop),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
