// SPDX-License-Identifier: MIT
/*
 * Supervision in simulation, over many seeds (1000 by default; VZ_SIM_SEEDS
 * or --seeds changes it): a one_for_one supervisor with permanent workers
 * on every shard, the workers exchanging messages through the names the
 * supervisor keeps, while the seed crashes workers (VZ_SIM_FAULT_CRASH),
 * delays rings to the end of the schedule (VZ_SIM_FAULT_DELAY) and decides
 * the interleaving. After every step and at the end it checks:
 *   - every crash of a worker is followed by exactly one restart, or, past
 *     the restart intensity, the supervisor fails (DOWN with VZ_EBUSY)
 *     after at most max_restarts restarts; which of the two is predicted
 *     from the number of crashes the seed drew (the period is longer than
 *     any run, so intensity is a plain count);
 *   - a child's name is null or names the child's latest incarnation,
 *     never an older one; once the run is quiet (supervisor alive) it names
 *     a live incarnation;
 *   - no message is delivered to an incarnation it was not sent to (each
 *     carries the reference it was sent to);
 *   - a crashed worker's watcher gets DOWN with VZ_EXIT_FAILED and the
 *     simulation's code and text;
 *   - after stop, sent = handled + dead-lettered and no actor is live (and
 *     under ASan, nothing leaked).
 * A failure prints the command that replays it (vz_sim_main()).
 *
 * One thread does it all, so the backend does not matter:
 * VZ_TEST_BACKEND_INDEPENDENT (one CTest entry).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <veloz.h>

#include "sim_setup.h"

enum { MSG_GO = VZ_MSG_USER, MSG_DATA, MSG_HELLO };

#define NCHILD 6
#define ROUNDS 12 /* messages each incarnation sends */

struct data_msg {
	vz_ref to; /* the reference the sender read from the name */
	uint32_t from_child;
	uint32_t seq;
};

struct hello {
	uint32_t child;
	uint32_t incarnation;
};

/* One run's shared record (the whole run is on this thread). */
static struct {
	int errors;
	char why[200];
	vz_sup_name names[NCHILD];
	vz_sup_child children[NCHILD];
	vz_sup_spec spec;
	unsigned nshards;
	uint64_t starts[NCHILD]; /* inits of each child */
	vz_ref latest[NCHILD];	 /* the latest incarnation's reference */
	bool live[NCHILD];	 /* is the latest incarnation live? */
	uint64_t named[NCHILD];	 /* the latest reference seen in the name */
	uint64_t sent, delivered, refused;
	uint64_t crash_downs, other_downs;
	vz_ref sup, watcher;
	bool sup_down;
	vz_exit sup_reason;
} R;

static void fail(const char *why)
{
	if (!R.errors++)
		snprintf(R.why, sizeof R.why, "%s", why);
}

/* ---- the watcher: spawns the supervisor, monitors it and every worker --- */

static void watcher_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_monitor_ref mon;
	vz_spawned sp;
	vz_down d;

	(void)state;
	switch (vz_msg_type(m)) {
	case MSG_GO:
		if (vz_spawn_on(self, 0, &vz_supervisor, &R.spec, sizeof R.spec, 1) != 0)
			fail("supervisor spawn refused");
		return;
	case VZ_MSG_SPAWNED:
		memcpy(&sp, vz_msg_data(m), sizeof sp);
		if (sp.rc != 0) {
			fail("supervisor did not start");
			return;
		}
		R.sup = sp.actor;
		if (vz_monitor(self, sp.actor, &mon) != 0)
			fail("monitor of the supervisor refused");
		return;
	case MSG_HELLO:
		if (vz_monitor(self, vz_msg_sender(m), &mon) != 0)
			fail("monitor of a worker refused");
		return;
	case VZ_MSG_DOWN:
		memcpy(&d, vz_msg_data(m), sizeof d);
		if (d.actor.id == R.sup.id) {
			R.sup_down = true;
			R.sup_reason = d.reason;
			return;
		}
		if (d.reason.kind == VZ_EXIT_FAILED) {
			if (d.reason.code != VZ_SIM_CRASH_CODE ||
			    strcmp(d.reason.text, VZ_SIM_CRASH_TEXT) != 0)
				fail("a crashed worker's DOWN has the wrong code or text");
			R.crash_downs++;
		} else {
			R.other_downs++;
		}
		return;
	default:
		return;
	}
}

static const vz_actor_spec watcher_spec = {
    .name = "watcher",
    .receive = watcher_receive,
};

/* ---- workers ------------------------------------------------------------- */

struct worker {
	uint32_t child;
	uint32_t sent;
	vz_ref me;
};

static int worker_init(vz_actor *self, void *state, const void *arg)
{
	struct worker *w = state;
	uint32_t child;
	int rc;

	memcpy(&child, arg, sizeof child);
	w->child = child;
	w->me = vz_self(self);
	R.starts[child]++;
	R.latest[child] = w->me;
	R.live[child] = true;
	/* The watcher monitors every incarnation. */
	{
		struct hello h = {child, (uint32_t)R.starts[child]};

		rc = vz_send(self, R.watcher, MSG_HELLO, &h, sizeof h);
		if (rc != 0)
			fail("hello refused");
	}
	return vz_send(self, w->me, MSG_GO, NULL, 0);
}

static void worker_stop(vz_actor *self, void *state)
{
	struct worker *w = state;

	(void)self;
	if (R.latest[w->child].id == w->me.id)
		R.live[w->child] = false;
}

static void worker_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct worker *w = state;
	struct data_msg dm;

	switch (vz_msg_type(m)) {
	case MSG_DATA:
		memcpy(&dm, vz_msg_data(m), sizeof dm);
		if (dm.to.id != w->me.id || !R.live[w->child] || R.latest[w->child].id != w->me.id)
			fail("message delivered to an incarnation it was not sent to");
		R.delivered++;
		return;
	case MSG_GO:
		break;
	default:
		return;
	}
	/* One message to the next child (by its name) per GO, then GO again. */
	{
		uint32_t next = (w->child + 1 + w->sent) % NCHILD;
		vz_ref to = vz_sup_name_ref(&R.names[next]);
		int rc;

		dm = (struct data_msg){to, w->child, w->sent};
		if (vz_ref_is_null(to)) {
			R.refused++;
		} else {
			rc = vz_send(self, to, MSG_DATA, &dm, sizeof dm);
			if (rc == 0)
				R.sent++;
			else if (rc == VZ_ESTALE)
				R.refused++;
			else
				fail("send refused");
		}
	}
	if (++w->sent < ROUNDS && vz_send(self, w->me, MSG_GO, NULL, 0) != 0)
		fail("self-send refused");
}

static const vz_actor_spec worker_spec = {
    .name = "worker",
    .state_size = sizeof(struct worker),
    .init = worker_init,
    .receive = worker_receive,
    .on_stop = worker_stop,
};

/* Only workers crash: the supervisor and the watcher are spared. */
static bool crash_ok(void *ctx, const vz_actor_spec *spec)
{
	(void)ctx;
	return spec == &worker_spec;
}

/* ---- the run ------------------------------------------------------------- */

struct variant {
	unsigned nshards;
	uint32_t max_restarts;
};

static uint32_t child_args[NCHILD];

/* Every name null or the child's latest incarnation. */
static void check_names(void)
{
	for (unsigned i = 0; i < NCHILD; i++) {
		vz_ref r = vz_sup_name_ref(&R.names[i]);

		if (!vz_ref_is_null(r) && r.id != R.latest[i].id)
			fail("a name names an older incarnation");
	}
}

static int sup_run(vz_sim *sim, void *ctx)
{
	const struct variant *v = ctx;
	vz_runtime *rt = vz_sim_runtime(sim);
	vz_sim_stats st;
	uint64_t restarts = 0;
	int rc;

	memset(&R, 0, sizeof R);
	R.nshards = v->nshards;
	for (unsigned i = 0; i < NCHILD; i++) {
		child_args[i] = i;
		R.children[i] = (vz_sup_child){
		    .spec = &worker_spec,
		    .arg = &child_args[i],
		    .arg_len = sizeof child_args[i],
		    .shard = i % v->nshards,
		    .restart = VZ_SUP_PERMANENT,
		    .name = &R.names[i],
		};
	}
	R.spec = (vz_sup_spec){
	    .strategy = VZ_SUP_ONE_FOR_ONE,
	    .max_restarts = v->max_restarts,
	    .period_ns = 1000000000000000ull, /* longer than any run: a plain count */
	    .children = R.children,
	    .nchildren = NCHILD,
	};
	if (vz_spawn(rt, 0, &watcher_spec, NULL, &R.watcher) < 0)
		return printf("spawn failed\n"), 1;
	if (vz_runtime_start(rt) < 0)
		return printf("start failed\n"), 1;
	if (vz_post(rt, R.watcher, MSG_GO, NULL, 0) != 0)
		return printf("post failed\n"), 1;
	for (uint64_t i = 0;; i++) {
		if (i == 1000000)
			return printf("run: no end after %llu steps\n", (unsigned long long)i), 1;
		rc = vz_sim_step(sim);
		if (rc < 0)
			return printf("step: %s\n", vz_strerror(rc)), 1;
		check_names();
		if (R.errors)
			return printf("%s (step %llu)\n", R.why, (unsigned long long)i), 1;
		if (rc == 0)
			break;
	}
	vz_sim_stats_get(sim, &st);
	for (unsigned i = 0; i < NCHILD; i++)
		restarts += R.starts[i] - 1;
	if (st.crashes <= v->max_restarts) {
		/* Every crash restarted exactly once; the supervisor lives and
		 * every name names the live incarnation. */
		if (R.sup_down)
			return printf("supervisor ended (kind %u code %d) after %llu crashes, "
				      "intensity %u\n",
				      R.sup_reason.kind, R.sup_reason.code,
				      (unsigned long long)st.crashes, v->max_restarts),
			       1;
		if (restarts != st.crashes)
			return printf("%llu crashes, %llu restarts\n",
				      (unsigned long long)st.crashes, (unsigned long long)restarts),
			       1;
		for (unsigned i = 0; i < NCHILD; i++)
			if (vz_sup_name_ref(&R.names[i]).id != R.latest[i].id || !R.live[i])
				return printf("child %u: name not its live incarnation\n", i), 1;
		/* A worker that crashed before its watcher's monitor was in
		 * place gives NOPROC instead: at most one per crash. */
		if (R.crash_downs > st.crashes)
			return printf("%llu crash DOWNs for %llu crashes\n",
				      (unsigned long long)R.crash_downs,
				      (unsigned long long)st.crashes),
			       1;
	} else {
		/* Past the intensity: exactly max_restarts restarts, then the
		 * supervisor fails upward and its children end with it. */
		if (!R.sup_down || R.sup_reason.kind != VZ_EXIT_FAILED ||
		    R.sup_reason.code != VZ_EBUSY)
			return printf("%llu crashes past intensity %u, supervisor %s (kind %u "
				      "code %d)\n",
				      (unsigned long long)st.crashes, v->max_restarts,
				      R.sup_down ? "ended" : "alive", R.sup_reason.kind,
				      R.sup_reason.code),
			       1;
		/* At most max_restarts: a restart decided while another
		 * child's start was in flight waits its turn, and the failure
		 * may come first. */
		if (restarts > v->max_restarts)
			return printf("%llu restarts past intensity %u\n",
				      (unsigned long long)restarts, v->max_restarts),
			       1;
		/* Its children end with it, but for one whose start was in
		 * flight when it failed (never named, never linked): that one
		 * ends with the runtime (supervisor.h). */
		for (unsigned i = 0; i < NCHILD; i++)
			if (!vz_ref_is_null(vz_sup_name_ref(&R.names[i])) ||
			    (R.live[i] && R.named[i] == R.latest[i].id))
				return printf("child %u outlived its failed supervisor\n", i), 1;
	}
	/* Dead letters allowed: a crash ends a worker with mail queued. */
	if (vz_test_sim_stop_and_count(rt, true))
		return 1;
	if (R.errors)
		return printf("%s\n", R.why), 1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct variant two = {2, 3}, three = {3, 5}, lax = {4, 1000};
	static vz_config cfg2, cfg3, cfg4;
	static vz_sim_options crash, crash_delay;
	vz_sim_test tests[3];

	vz_test_sim_config(&cfg2, 2);
	vz_test_sim_config(&cfg3, 3);
	vz_test_sim_config(&cfg4, 4);
	vz_test_sim_faults(&crash, VZ_SIM_FAULT_CRASH, 40);
	crash.crash_ok = crash_ok;
	vz_test_sim_faults(&crash_delay, VZ_SIM_FAULT_CRASH | VZ_SIM_FAULT_DELAY, 30);
	crash_delay.crash_ok = crash_ok;
	tests[0] = (vz_sim_test){"sup2-crash", sup_run, &two, &cfg2, &crash};
	tests[1] = (vz_sim_test){"sup3-crash-delay", sup_run, &three, &cfg3, &crash_delay};
	tests[2] = (vz_sim_test){"sup4-restarts", sup_run, &lax, &cfg4, &crash_delay};
	return vz_sim_main(argc, argv, tests, 3);
}
