// SPDX-License-Identifier: MIT
/*
 * Lifecycle and conversations under races, on three shards:
 *
 * - monitors, links and asks racing stops and sends: watcher actors run
 *   rounds; each round spawns a target on another shard (vz_spawn_on),
 *   monitors it twice (one monitor is dropped again, right away or later,
 *   possibly with its DOWN already queued), links to it (trapping exits),
 *   sends it messages, asks it questions answered at once or after a
 *   random delay with deadlines from 0 to 2 ms, and tells it to fail,
 *   while a foreign thread posts to and stops targets at random. Every
 *   round must see exactly one DOWN for the kept monitor, none for the
 *   dropped one after vz_demonitor(), exactly one EXIT, and exactly one
 *   answer (reply or timeout) per ask; late replies are dead letters.
 * - a tree of 11,111 actors (fan-out 10, depth 4) spread over the shards
 *   with vz_spawn_on() from init, each linked to its parent: a failure of
 *   the root stops every one of them (VZ_EXIT_LINKED), with nothing live
 *   and nothing leaked (ASan) afterwards.
 * - ports polled from foreign threads: engine threads ask an actor on
 *   another shard through their own ports in a loop and wait on the fd.
 * Every case ends with sent = handled + dead-lettered. Bounded by counts
 * (scaled with VZ_STRESS_SCALE) and the watchdog.
 */
#include "testutil.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

#define NSHARDS	    3
#define NWATCHERS   6
#define MAX_PENDING 8
#define NTARGETS    64 /* refs the foreign thread picks from */

enum {
	MSG_GO = VZ_MSG_USER,
	MSG_DATA,
	MSG_Q,	    /* answered at once */
	MSG_Q_SLOW, /* answered after a random delay */
	MSG_DIE,    /* vz_fail() */
	MSG_A,
};

static atomic_int watchers_done;
static atomic_ulong dead_total, dead_late;
static _Atomic uint64_t targets[NTARGETS];
static atomic_uint round_counter;

static void on_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len, int reason)
{
	(void)ctx, (void)to, (void)type, (void)data, (void)len;
	atomic_fetch_add(&dead_total, 1);
	if (reason == VZ_ETIMEDOUT)
		atomic_fetch_add(&dead_late, 1);
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* ---- the target ----------------------------------------------------------- */

struct target {
	uint64_t seed;
	struct {
		vz_ref to;
		uint32_t corr;
	} kept[MAX_PENDING];
	unsigned nkept;
};

static int target_init(vz_actor *self, void *state, const void *arg)
{
	struct target *t = state;

	(void)arg;
	t->seed = vz_self(self).id | 1;
	return 0;
}

static void target_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct target *t = state;

	switch (vz_msg_type(m)) {
	case MSG_Q:
		(void)vz_reply(self, m, MSG_A, NULL, 0); /* the asker may be gone */
		break;
	case MSG_Q_SLOW:
		if (t->nkept < MAX_PENDING) {
			t->kept[t->nkept].to = vz_msg_sender(m);
			t->kept[t->nkept].corr = vz_msg_corr(m);
			t->nkept++;
			VZ_TEST_CHECK(vz_timer_arm(self, rnd(&t->seed) % 3000000, 0, 0, NULL) == 0);
		}
		break;
	case VZ_MSG_TIMER:
		if (t->nkept) {
			t->nkept--;
			(void)vz_respond(self, t->kept[t->nkept].to, t->kept[t->nkept].corr, MSG_A,
					 NULL, 0);
		}
		break;
	case MSG_DIE:
		VZ_TEST_CHECK(vz_fail(self, 1, "die") == 0);
		break;
	}
}

static const vz_actor_spec target_spec = {
    .name = "target",
    .state_size = sizeof(struct target),
    .init = target_init,
    .receive = target_receive,
};

/* ---- the watcher ---------------------------------------------------------- */

struct watcher {
	uint64_t seed;
	unsigned rounds_left;
	vz_ref target;
	uint64_t keep, drop;
	bool drop_active, got_down, got_exit, spawning;
	uint32_t pending[MAX_PENDING];
	unsigned npending;
};

static void start_round(vz_actor *self, struct watcher *w)
{
	unsigned shard =
	    (vz_actor_shard(self) + 1 + (unsigned)(rnd(&w->seed) % (NSHARDS - 1))) % NSHARDS;

	w->got_down = w->got_exit = false;
	w->spawning = true;
	VZ_TEST_CHECK(vz_spawn_on(self, shard, &target_spec, NULL, 0, w->rounds_left) == 0);
}

static void maybe_done(vz_actor *self, struct watcher *w)
{
	if (w->spawning || !w->got_down || !w->got_exit || w->npending)
		return;
	atomic_fetch_add(&round_counter, 1);
	if (--w->rounds_left == 0) {
		atomic_fetch_add(&watchers_done, 1);
		return;
	}
	start_round(self, w);
}

static void resolve(struct watcher *w, uint32_t corr)
{
	for (unsigned i = 0; i < w->npending; i++)
		if (w->pending[i] == corr) {
			w->pending[i] = w->pending[--w->npending];
			return;
		}
	VZ_TEST_CHECK(!"an answer for no pending ask (twice, or unknown)");
}

static void on_spawned(vz_actor *self, struct watcher *w, const vz_spawned *s)
{
	static const uint64_t deadlines[] = {0, 10000, 200000, 2000000};
	vz_monitor_ref mk, md;
	unsigned n;

	w->spawning = false;
	VZ_TEST_CHECK(s->rc == 0);
	if (s->rc)
		return;
	w->target = s->actor;
	atomic_store(&targets[rnd(&w->seed) % NTARGETS], s->actor.id);
	VZ_TEST_CHECK(vz_monitor(self, w->target, &mk) == 0);
	VZ_TEST_CHECK(vz_monitor(self, w->target, &md) == 0);
	w->keep = mk.id;
	w->drop = md.id;
	w->drop_active = true;
	if (rnd(&w->seed) & 1) {
		VZ_TEST_CHECK(vz_demonitor(self, md) == 0);
		w->drop_active = false;
	}
	VZ_TEST_CHECK(vz_link(self, w->target) == 0);
	n = (unsigned)(rnd(&w->seed) % 4);
	for (unsigned i = 0; i < n; i++)
		(void)vz_send(self, w->target, MSG_DATA, NULL, 0); /* may be stopped */
	n = 1 + (unsigned)(rnd(&w->seed) % 3);
	for (unsigned i = 0; i < n; i++) {
		uint32_t corr;
		uint32_t type = rnd(&w->seed) & 1 ? MSG_Q : MSG_Q_SLOW;
		int rc =
		    vz_ask(self, w->target, type, NULL, 0, deadlines[rnd(&w->seed) % 4], &corr);

		/* a local target already stopped: refused, nothing comes */
		VZ_TEST_CHECK(rc == 0 || rc == VZ_ESTALE);
		if (rc == 0)
			w->pending[w->npending++] = corr;
	}
	if (rnd(&w->seed) % 3 == 0)
		(void)vz_stop(vz_actor_runtime(self), w->target);
	else
		(void)vz_send(self, w->target, MSG_DIE, NULL, 0);
}

static void watcher_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct watcher *w = state;

	switch (vz_msg_type(m)) {
	case MSG_GO:
		w->seed = vz_self(self).id * 2654435761u | 1;
		w->rounds_left = *(const unsigned *)vz_msg_data(m);
		VZ_TEST_CHECK(vz_trap_exits(self, true) == 0);
		start_round(self, w);
		return;
	case VZ_MSG_SPAWNED:
		on_spawned(self, w, vz_msg_data(m));
		break;
	case VZ_MSG_DOWN: {
		const vz_down *d = vz_msg_data(m);

		if (d->mon.id == w->drop) {
			VZ_TEST_CHECK(w->drop_active);
			w->drop_active = false;
			break;
		}
		VZ_TEST_CHECK(d->mon.id == w->keep && !w->got_down);
		VZ_TEST_CHECK(vz_ref_eq(d->actor, w->target));
		w->got_down = true;
		break;
	}
	case VZ_MSG_EXIT: {
		const vz_exit_msg *x = vz_msg_data(m);

		VZ_TEST_CHECK(vz_ref_eq(x->actor, w->target) && !w->got_exit);
		w->got_exit = true;
		break;
	}
	case VZ_MSG_TIMER: /* it arms none: an ask's deadline must not leak out */
		VZ_TEST_CHECK(!"a timer expiry reached the watcher");
		return;
	case MSG_A:
	case VZ_MSG_TIMEOUT:
		resolve(w, vz_msg_corr(m));
		/* a late demonitor: its DOWN may be queued already */
		if (w->drop_active && (rnd(&w->seed) & 1)) {
			VZ_TEST_CHECK(vz_demonitor(self, (vz_monitor_ref){w->drop}) == 0);
			w->drop_active = false;
		}
		break;
	default:
		return;
	}
	maybe_done(self, w);
}

static const vz_actor_spec watcher_spec = {
    .name = "watcher",
    .state_size = sizeof(struct watcher),
    .receive = watcher_receive,
};

static atomic_int chaos_stop;

/* Posts to and stops targets at random until told to stop. */
static void *chaos(void *p)
{
	vz_runtime *rt = p;
	uint64_t seed = 88172645463325252ull;

	while (!atomic_load(&chaos_stop)) {
		vz_ref r = {atomic_load(&targets[rnd(&seed) % NTARGETS])};

		if (vz_ref_is_null(r)) {
			sched_yield();
			continue;
		}
		if (rnd(&seed) % 4 == 0)
			(void)vz_stop(rt, r);
		else
			(void)vz_post(rt, r, MSG_DATA, NULL, 0);
		if (rnd(&seed) % 16 == 0)
			sched_yield();
	}
	return NULL;
}

static vz_runtime *make_rt(void)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_config(&cfg, NSHARDS);
	cfg.dead_letter = on_dead;
	cfg.pool.workers_per_node = 1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	return rt;
}

static void finish(vz_runtime *rt)
{
	vz_shard_stats t;
	uint64_t foreign;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, atomic_load(&dead_total));
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(t.actors_spawned, t.actors_stopped);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
}

static void test_monitor_link_ask_races(void **st)
{
	unsigned rounds = (unsigned)vz_test_scale(300);
	vz_runtime *rt;
	pthread_t th;

	(void)st;
	vz_test_reset_fails();
	atomic_store(&watchers_done, 0);
	atomic_store(&dead_total, 0);
	atomic_store(&chaos_stop, 0);
	rt = make_rt();
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(pthread_create(&th, NULL, chaos, rt), 0);
	for (unsigned i = 0; i < NWATCHERS; i++) {
		vz_ref w;

		assert_int_equal(vz_spawn_wait(rt, i % NSHARDS, &watcher_spec, NULL, &w), 0);
		assert_int_equal(vz_post(rt, w, MSG_GO, &rounds, sizeof rounds), 0);
	}
	while (atomic_load(&watchers_done) < NWATCHERS)
		sched_yield();
	atomic_store(&chaos_stop, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	printf("rounds %u, late replies dropped %lu\n", atomic_load(&round_counter),
	       (unsigned long)atomic_load(&dead_late));
	finish(rt);
}

/* ---- the tree --------------------------------------------------------------- */

#define FANOUT 10
#define DEPTH  4 /* levels below the root */

static atomic_int tree_inits, tree_stops, tree_linked_downs;

struct node_arg {
	vz_ref parent;
	unsigned depth;
	uint64_t index;
};

static const vz_actor_spec *node_spec(void);

static int node_init(vz_actor *self, void *state, const void *arg)
{
	const struct node_arg *a = arg;

	(void)state;
	if (a && !vz_ref_is_null(a->parent) && vz_link(self, a->parent) != 0)
		return VZ_EINVAL;
	if (a && a->depth < DEPTH)
		for (unsigned i = 0; i < FANOUT; i++) {
			struct node_arg c = {vz_self(self), a->depth + 1, a->index * FANOUT + i};
			unsigned shard = vz_shard_of_key(vz_actor_runtime(self), c.index);

			if (vz_spawn_on(self, shard, node_spec(), &c, sizeof c, c.index) != 0)
				return VZ_ENOMEM;
		}
	atomic_fetch_add(&tree_inits, 1);
	return 0;
}

static void node_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) == MSG_DIE)
		VZ_TEST_CHECK(vz_fail(self, 5, "root") == 0);
	else if (vz_msg_type(m) == VZ_MSG_SPAWNED)
		VZ_TEST_CHECK(((const vz_spawned *)vz_msg_data(m))->rc == 0);
}

static void node_stop(vz_actor *self, void *state)
{
	(void)self, (void)state;
	atomic_fetch_add(&tree_stops, 1);
}

static const vz_actor_spec node_spec_v = {
    .name = "node", .init = node_init, .receive = node_receive, .on_stop = node_stop};

static const vz_actor_spec *node_spec(void)
{
	return &node_spec_v;
}

/* Watches the root's DOWN. */
static void root_watch_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self, (void)state;
	if (vz_msg_type(m) == MSG_GO) {
		vz_monitor_ref mon;

		vz_ref root = *(const vz_ref *)vz_msg_data(m);

		/* The monitor request reaches the root before this message
		 * (per-pair FIFO), so the DOWN carries the real reason. */
		VZ_TEST_CHECK(vz_monitor(self, root, &mon) == 0);
		VZ_TEST_CHECK(vz_send(self, root, MSG_DIE, NULL, 0) == 0);
	} else if (vz_msg_type(m) == VZ_MSG_DOWN) {
		const vz_down *d = vz_msg_data(m);

		VZ_TEST_CHECK(d->reason.kind == VZ_EXIT_FAILED && d->reason.code == 5);
		atomic_fetch_add(&tree_linked_downs, 1);
	}
}

static const vz_actor_spec root_watch_spec = {.name = "rw", .receive = root_watch_receive};

static void test_tree_stopped_from_root(void **st)
{
	struct node_arg ra = {VZ_REF_NULL, 0, 0};
	int total = 1, level = 1;
	vz_runtime *rt;
	vz_ref root, rw;

	(void)st;
	vz_test_reset_fails();
	atomic_store(&dead_total, 0);
	for (int d = 0; d < DEPTH; d++)
		total += level *= FANOUT;
	rt = make_rt();
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_spawn_wait(rt, 0, &node_spec_v, &ra, &root), 0);
	while (atomic_load(&tree_inits) < total)
		sched_yield();
	assert_int_equal(vz_spawn_wait(rt, 1, &root_watch_spec, NULL, &rw), 0);
	assert_int_equal(vz_post(rt, rw, MSG_GO, &root, sizeof root), 0);
	while (atomic_load(&tree_stops) < total)
		sched_yield();
	while (atomic_load(&tree_linked_downs) < 1)
		sched_yield();
	{
		vz_shard_stats t;

		/* on_stop (tree_stops) and the DOWN come before the stopping
		 * actor's shard takes it off actors_live (actor.c), so the
		 * last one may still count for a moment: wait, bounded. */
		for (int i = 0; i < 30000; i++) {
			assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
			if (t.actors_live == 1)
				break;
			usleep(1000);
		}
		assert_int_equal(t.actors_live, 1); /* the root's watcher */
	}
	printf("tree of %d actors stopped from the root\n", total);
	finish(rt);
	assert_int_equal(atomic_load(&tree_stops), total);
}

/* ---- ports ------------------------------------------------------------------ */

static void echo_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) == MSG_Q)
		VZ_TEST_CHECK(vz_reply(self, m, MSG_A, vz_msg_data(m), vz_msg_len(m)) == 0);
}

static const vz_actor_spec echo_spec = {.name = "echo", .receive = echo_receive};

struct engine {
	vz_runtime *rt;
	vz_ref echo;
	unsigned shard, n;
	atomic_uint answered;
};

static void *engine_main(void *p)
{
	struct engine *e = p;
	vz_port *port;

	if (vz_port_create(e->rt, e->shard, &port) != 0)
		return NULL;
	for (uint64_t i = 0; i < e->n; i++) {
		struct pollfd pfd = {.fd = vz_port_fd(port), .events = POLLIN};
		vz_port_msg pm;
		uint64_t back;
		uint32_t corr;

		if (vz_port_post(port, e->echo, MSG_Q, &i, sizeof i, &corr) != 0)
			break;
		for (;;) {
			int rc = vz_port_recv(port, &pm, &back, sizeof back);

			if (rc == VZ_EAGAIN) {
				(void)poll(&pfd, 1, -1);
				continue;
			}
			if (rc == 0 && pm.corr == corr && back == i)
				atomic_fetch_add(&e->answered, 1);
			break;
		}
	}
	vz_port_destroy(port);
	return NULL;
}

static void test_ports_from_threads(void **st)
{
	struct engine e[2];
	pthread_t th[2];
	vz_runtime *rt;
	vz_ref echo;
	unsigned n = (unsigned)vz_test_scale(20000);

	(void)st;
	vz_test_reset_fails();
	atomic_store(&dead_total, 0);
	rt = make_rt();
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_spawn_wait(rt, 2, &echo_spec, NULL, &echo), 0);
	for (unsigned i = 0; i < 2; i++) {
		e[i].rt = rt;
		e[i].echo = echo;
		e[i].shard = i;
		e[i].n = n;
		atomic_init(&e[i].answered, 0);
		assert_int_equal(pthread_create(&th[i], NULL, engine_main, &e[i]), 0);
	}
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(atomic_load(&e[i].answered), n);
	}
	finish(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_monitor_link_ask_races),
	    cmocka_unit_test(test_tree_stopped_from_root),
	    cmocka_unit_test(test_ports_from_threads),
	};

	vz_test_watchdog(500);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
