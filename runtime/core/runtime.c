// SPDX-License-Identifier: MIT
/*
 * The runtime's lifecycle: create (validate, place shards, choose the
 * backend, build shards, rings and pools), start (one pinned thread per
 * non-embedded shard), stop (a bounded drain that loses nothing), destroy
 * (free every byte, close every fd), and the embedder's poll.
 *
 * Stop protocol. After the state becomes STOPPING, sends are refused
 * (VZ_ESTOPPED). Then the stopper runs numbered rounds: it publishes
 * round r, wakes every shard, and waits until each has acknowledged r. In
 * its first round a shard stops all its actors (their mailboxes are
 * dead-lettered, timers cancelled); in every round it drains its inbox and
 * all incoming rings (dead-lettering messages, taking blocks home) and
 * flushes its outboxes, and reports how much it moved. Everything pushed
 * in round r-1 was pushed before the stopper started round r, so a round in
 * which no shard moved anything and every outbox is empty proves that no
 * message is left anywhere. Foreign posts are admitted through a gate per
 * shard (see post_foreign() in send.c): stop closes every gate, learns how
 * many posts each admitted, and is quiet only once each shard has taken
 * that many messages from its inbox (less those refused after admission),
 * so a post that was admitted but not yet pushed when stop began is
 * waited for, never left behind. Then shards exit and are joined.
 *
 * Embedded shards. An embedded shard runs on whichever thread holds its
 * `driver` claim: the embedder's thread whose first vz_shard_poll() won it,
 * or the stopping thread when stop finds the shard never polled. Both
 * claim with one compare-and-swap from NULL on the same word, so exactly
 * one thread ever runs the shard's turns; a poll that finds the stopper's
 * claim returns VZ_ESTOPPED without touching the shard.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <liburing.h>

#include "config/config_int.h"
#include "core/core.h"
#include "core/lanes.h"
#include "pool/pool.h"
#include "util/fault.h"

struct vz__pool_set *vz__runtime_pools(vz_runtime *rt)
{
	return rt->pools;
}

const struct vz__topology *vz__runtime_topology(const vz_runtime *rt)
{
	return &rt->topo;
}

/* The driver claim of an embedded shard that the stopping thread drives:
 * its address is the value, never a thread's token. */
const char vz__stop_claim = 0;

/* The CPU the runtime pins the shard's thread to. An embedded shard runs on
 * its driver's thread, whose affinity is the embedder's: -1, even when its
 * config names a CPU (that CPU is only kept free and used for the shard's
 * memory placement). */
int vz__runtime_shard_cpu(const vz_runtime *rt, unsigned shard)
{
	if (!rt || shard >= rt->nshards)
		return VZ_ENOSHARD;
	if (rt->shards[shard]->embedded ||
	    /* Acquire: pairs with the release in pin(). */
	    atomic_load_explicit(&rt->shards[shard]->unpinned, memory_order_acquire))
		return -1;
	return rt->shards[shard]->cpu;
}

/* A declared topology (vz_config.topology) replaces detection for
 * placement, so validation checks CPUs against it, not the machine. Fine
 * for veloz-topo showing a plan for another machine; a runtime, though,
 * pins threads there, so every declared CPU must be one this process may
 * run on. 0, VZ_ECONFIG with the node and CPU in err, or VZ_EIO. */
static int declared_cpus_exist(const struct vz__topology *t, vz_config_error *err)
{
	struct vz__topology *real;
	char set[256];
	int rc = 0;

	if (!t->declared)
		return 0;
	real = malloc(sizeof *real);
	if (!real || vz__topo_detect(real) < 0) {
		free(real);
		vz__config_error(err, "", 0, "", "cannot read the machine's topology");
		return VZ_EIO;
	}
	for (unsigned n = 0; n < t->nnodes && rc == 0; n++) {
		for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
			char key[32];

			if (!vz_cpuset_has(&t->node_cpus[n], c) || vz_cpuset_has(&real->allowed, c))
				continue;
			snprintf(key, sizeof key, "topology.node.%u", n);
			vz__cpuset_format(&real->allowed, set, sizeof set);
			vz__config_error(err, "", 0, key,
					 "CPU %u is declared but this process cannot run on it "
					 "(allowed: %s); a runtime pins threads to declared CPUs",
					 c, set);
			rc = VZ_ECONFIG;
			break;
		}
	}
	free(real);
	return rc;
}

static void runtime_free(vz_runtime *rt)
{
	vz__cluster_runtime_gone(rt);
	vz__live_remove(rt);
	vz__shm_destroy(rt->shm);
	if (rt->pools)
		vz__pools_destroy(rt->pools);
	vz__rings_destroy(rt);
	if (rt->shards)
		for (unsigned i = 0; i < rt->nshards; i++)
			vz__shard_destroy(rt->shards[i]);
	free(rt->shards);
	free(rt);
}

/* The topology the pools are planned on: rt's, without the CPUs reserved
 * for the embedder, so no worker lands there either. NULL when nothing is
 * reserved (use rt->topo) or on ENOMEM (*rc set). */
static struct vz__topology *pool_topology(const vz_runtime *rt, int *rc)
{
	struct vz__topology *t;

	*rc = 0;
	if (!vz_cpuset_count(&rt->reserved))
		return NULL;
	t = malloc(sizeof *t);
	if (!t) {
		*rc = VZ_ENOMEM;
		return NULL;
	}
	*t = rt->topo;
	for (unsigned i = 0; i < VZ_MAX_CPUS / 64; i++)
		t->allowed.bits[i] &= ~rt->reserved.bits[i];
	return t;
}

VZ_API int vz_runtime_create(const vz_config *cfg, vz_runtime **out)
{
	return vz__runtime_create(cfg, NULL, out);
}

int vz__runtime_create(const vz_config *cfg, struct vz_sim *sim, vz_runtime **out)
{
	int cpus[VZ_MAX_SHARDS];
	struct vz__topology *ptopo;
	vz_config_error err;
	vz_runtime *rt = NULL;
	bool fell_back;
	unsigned n;
	int rc;

	if (!cfg || !out) {
		if (cfg && cfg->create_error)
			vz__config_error(cfg->create_error, "", 0, "", "out is NULL");
		return VZ_EINVAL;
	}
	*out = NULL;
	memset(&err, 0, sizeof err);
	/* Every failure below leaves its reason in err; cfg->create_error
	 * gets it at the end, so the caller learns why without calling
	 * vz_config_validate() again. */
	rc = vz_config_validate(cfg, &err);
	if (rc < 0)
		goto report;
	rt = aligned_alloc(VZ__LINE, sizeof *rt);
	rc = VZ_ENOMEM;
	if (!rt)
		goto report;
	memset(rt, 0, sizeof *rt);
	rt->sim = sim;
	rt->cfg = *cfg;
	rt->cfg.create_error = NULL; /* the caller's, valid during this call only */
	if (!rt->cfg.batch)
		rt->cfg.batch = 64;
	if (!rt->cfg.actors_per_turn)
		rt->cfg.actors_per_turn = 256;
	if (!rt->cfg.send_batch)
		rt->cfg.send_batch = 32;
	if (!rt->cfg.outbox_limit)
		rt->cfg.outbox_limit = VZ_OUTBOX_LIMIT_DEFAULT;
	rt->tick_ns = (uint64_t)(rt->cfg.timer_tick_us ? rt->cfg.timer_tick_us : 1000) * 1000u;
	rt->spin_ns = (uint64_t)rt->cfg.idle_spin_us * 1000u;

	rc = vz__topo_for_config(&rt->cfg, &rt->topo);
	if (rc < 0) {
		vz__config_error(&err, "", 0, "", "cannot read the machine's topology");
		goto fail;
	}
	rc = declared_cpus_exist(&rt->topo, &err);
	if (rc < 0)
		goto fail;
	rc = vz__plan_shards(&rt->cfg, &rt->topo, cpus, &n, &err);
	if (rc < 0)
		goto fail;
	rc = vz__plan_reserved(&rt->cfg, &rt->topo, NULL, &rt->reserved, &err);
	if (rc < 0)
		goto fail;
	/* A simulation's backend is its own (runtime/sim/sim_io.c): no probe,
	 * and VZ_BACKEND does not apply. */
	fell_back = false;
	rt->io_kind = VZ__IO_SIM;
	rc = sim ? 0
		 : vz__io_choose(rt->cfg.backend, &rt->io_kind, rt->backend_reason,
				 sizeof rt->backend_reason, &fell_back, &err);
	if (rc < 0)
		goto fail;
	/* One line when the runtime fell back on its own; a forced choice
	 * (config or VZ_BACKEND) is not news. */
	if (fell_back)
		vz__log(&rt->cfg, VZ_LOG_NOTICE, "%s", rt->backend_reason);
	rc = vz__sleep_fence_choose(&rt->sleep_fence, rt->sleep_fence_reason,
				    sizeof rt->sleep_fence_reason, &fell_back);
	if (rc < 0) {
		vz__config_error(&err, "", 0, "", "%s", rt->sleep_fence_reason);
		goto fail;
	}
	/* One line when auto fell back (seccomp, old kernel); a forced
	 * choice, or the TSan build's, is not news. */
	if (fell_back)
		vz__log(&rt->cfg, VZ_LOG_NOTICE, "%s", rt->sleep_fence_reason);
	rt->nshards = n;
	rt->shards = calloc(n, sizeof *rt->shards);
	rc = VZ_ENOMEM;
	if (!rt->shards)
		goto fail;
	for (unsigned i = 0; i < n; i++) {
		rc = vz__shard_create(rt, i, cpus[i], rt->cfg.shards[i].embedded, &rt->shards[i]);
		if (rc < 0)
			goto fail;
		vz__sched_init(rt->shards[i]);
	}
	/* Before start: the shard threads' creation publishes it. */
	for (unsigned i = 0; i < n; i++)
		rt->shards[i]->sleep_fence = (uint8_t)rt->sleep_fence;
	rc = vz__rings_create(rt);
	if (rc < 0)
		goto fail;
	/* A simulation runs jobs inline on its driver (runtime/sim/sim_pool.c)
	 * and starts no worker. */
	if (!sim) {
		ptopo = pool_topology(rt, &rc);
		if (rc < 0)
			goto fail;
		rc = vz__pools_create(rt, &rt->cfg, ptopo ? ptopo : &rt->topo, cpus, n, &rt->pools);
		free(ptopo);
		if (rc < 0)
			goto fail;
	}
	atomic_init(&rt->state, VZ__RT_CREATED);
	/* Embedded shards run wherever the embedder's threads run: only the
	 * runtime's own threads count for the overlap warning. */
	for (unsigned i = 0; i < n; i++)
		if (!rt->cfg.shards[i].embedded && cpus[i] >= 0)
			vz_cpuset_set(&rt->shard_cpus, (unsigned)cpus[i]);
	if (rt->cfg.stats_shm && vz__shm_create(rt, &rt->shm) == 0)
		vz__shm_publish(rt, rt->shm); /* readable (all zero) at once */
	vz__live_add(rt);
	if (cfg->create_error)
		memset(cfg->create_error, 0, sizeof *cfg->create_error);
	*out = rt;
	return 0;
fail:
	runtime_free(rt);
report:
	if (cfg->create_error) {
		if (!err.message[0])
			vz__config_error(&err, "", 0, "", "%s while creating the runtime",
					 vz_strerror(rc));
		*cfg->create_error = err;
	}
	return rc;
}

/* ---- start ------------------------------------------------------------- */

struct start_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned reported;
	int first_error;
};

struct thread_arg {
	struct vz__shard *sh;
	struct start_gate *gate;
};

static void gate_report(struct start_gate *g, int rc)
{
	pthread_mutex_lock(&g->lock);
	g->reported++;
	if (rc < 0 && !g->first_error)
		g->first_error = rc;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Pin the calling shard thread to sh->cpu and name it "vz-shard<id>" (so
 * top -H and perf show which thread is which shard). Validation refused
 * CPUs the process may not use, but a declared topology (tests, containers
 * that hide NUMA) may name CPUs this machine lacks, and the mask can
 * change under us: then the shard runs unpinned, says so through the log
 * hook, and vz_runtime_shard_cpu() reports -1 rather than a CPU it does
 * not run on. */
static void pin(struct vz__shard *sh)
{
	char name[16];
	cpu_set_t set;
	int rc;

	snprintf(name, sizeof name, "vz-shard%u", sh->id);
	pthread_setname_np(pthread_self(), name);
	if (sh->cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(sh->cpu, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	if (rc == 0)
		return;
	/* Release: pairs with the acquire in vz__runtime_shard_cpu(), which
	 * may run on any thread while start is still under way. */
	atomic_store_explicit(&sh->unpinned, true, memory_order_release);
	vz__log(&sh->rt->cfg, VZ_LOG_WARNING,
		"shard %u: cannot pin its thread to CPU %d (%s); it runs unpinned", sh->id, sh->cpu,
		strerror(rc));
}

static void *shard_thread(void *p)
{
	struct thread_arg *ta = p;
	struct vz__shard *sh = ta->sh;
	int rc;

	pin(sh);
	/* Timers fire at their exact deadline and the shard sleeps until it
	 * (timer/wheel.h), but the kernel may defer a normal thread's timed
	 * wake-up by its timer slack, 50 us by default: a shard thread is the
	 * runtime's own, so ask for 1 ns. Best effort: on failure the sleep
	 * is only that much later, never earlier. (An embedded shard runs on
	 * the caller's thread, whose slack is the caller's to choose.) */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	/* The backend is created on the thread that will use it (io_uring
	 * SINGLE_ISSUER). */
	rc = vz__shard_start_io(sh);
	gate_report(ta->gate, rc);
	free(ta);
	if (rc < 0)
		return NULL;
	/* No actor runs before the runtime is RUNNING: until then spawn and
	 * stop take their "not started" paths, which assume nothing else
	 * touches the shards. Start publishes RUNNING (seq_cst, so also a
	 * release) or, on failure, EXIT; the acquire loads pair with it. */
	while (atomic_load_explicit(&sh->rt->state, memory_order_acquire) == VZ__RT_CREATED) {
		if (atomic_load_explicit(&sh->phase, memory_order_acquire) == VZ__PHASE_EXIT)
			return NULL;
		usleep(20);
	}
	return vz__shard_thread_main(sh);
}

static void stop_threads(vz_runtime *rt);

/* Names of the io_uring setup flags the first runtime-owned shard's ring
 * uses (all shards probe the same way), for reports. */
static void record_backend_flags(vz_runtime *rt)
{
	static const struct {
		uint32_t flag;
		const char *name;
	} names[] = {
	    {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
	    {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
	    {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
	    {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
	};
	uint32_t flags = 0;
	size_t used = 0;

	for (unsigned i = 0; i < rt->nshards; i++)
		if (rt->shards[i]->io) {
			flags = vz__io_setup_flags(rt->shards[i]->io);
			break;
		}
	rt->backend_flags[0] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (!(flags & names[i].flag))
			continue;
		used += (size_t)snprintf(rt->backend_flags + used, sizeof rt->backend_flags - used,
					 "%s%s", used ? "|" : "", names[i].name);
		if (used >= sizeof rt->backend_flags)
			break;
	}
}

VZ_API int vz_runtime_start(vz_runtime *rt)
{
	struct start_gate gate = {.lock = PTHREAD_MUTEX_INITIALIZER,
				  .cond = PTHREAD_COND_INITIALIZER};
	unsigned started = 0;
	int rc = 0;

	if (!rt)
		return VZ_EINVAL;
	if (atomic_load_explicit(&rt->state, memory_order_acquire) != VZ__RT_CREATED ||
	    rt->shards[0]->thread_started || rt->started_once)
		return VZ_ESTATE;
	rt->started_once = true;
	for (unsigned i = 0; i < rt->nshards; i++) {
		struct vz__shard *sh = rt->shards[i];
		struct thread_arg *ta;

		if (sh->embedded)
			continue;
		ta = malloc(sizeof *ta);
		if (!ta || VZ_FAULT(VZ_FAULT_THREAD_START)) {
			free(ta);
			rc = VZ_EIO;
			break;
		}
		ta->sh = sh;
		ta->gate = &gate;
		if (pthread_create(&sh->thread, NULL, shard_thread, ta) != 0) {
			free(ta);
			rc = VZ_EIO;
			break;
		}
		sh->thread_started = true;
		started++;
	}
	pthread_mutex_lock(&gate.lock);
	while (gate.reported < started)
		pthread_cond_wait(&gate.cond, &gate.lock);
	if (!rc && gate.first_error)
		rc = gate.first_error < 0 ? VZ_EIO : 0;
	pthread_mutex_unlock(&gate.lock);
	if (!rc && rt->pools)
		rc = vz__pools_start(rt->pools);
	/* The stall watchdog and stats publisher (stats/watchdog.c): after
	 * the shard threads exist, since it may signal them. */
	if (!rc && (rc = vz__watch_start(rt, &rt->watch)) < 0)
		vz__pools_stop(rt->pools);
	if (rc < 0) {
		/* Nothing may be left running: end the threads we made. */
		stop_threads(rt);
		return rc;
	}
	record_backend_flags(rt);
	/* Open the foreign posters' gates (created closed). Release: pairs
	 * with the acquire fetch_add in post_foreign(), so an admitted poster
	 * sees the shards, backends and pools set up above. A plain store may
	 * erase tickets that refused posts took while the gate was closed;
	 * those count for nothing. Before the RUNNING store, so the gates are
	 * open (and this store ordered) for anyone who sees RUNNING. */
	for (unsigned i = 0; i < rt->nshards; i++) {
		atomic_store_explicit(vz__post_gate(rt->shards[i]), 0, memory_order_release);
		vz__lanes_open(rt->shards[i]); /* the lanes' own gates (lanes.c) */
	}
	/* seq_cst: pairs with the senders' reads of the state. */
	atomic_store_explicit(&rt->state, VZ__RT_RUNNING, memory_order_seq_cst);
	return 0;
}

/* ---- stop -------------------------------------------------------------- */

/* May the stopping thread run embedded shard sh's turns itself? Yes when
 * it drives the shard already (stop called from the driving thread, between
 * two polls) or when nobody has claimed it: then the stopper claims it, with
 * the same compare-and-swap a first vz_shard_poll() uses, so the two cannot
 * both win. Relaxed: the claim hands over no data (see core.h); what the
 * creating thread wrote into the shard is ordered by the acquire of the
 * RUNNING state in vz_runtime_stop(). */
static bool stopper_drives(struct vz__shard *sh)
{
	const void *claim = atomic_load_explicit(&sh->driver, memory_order_relaxed);

	if (!claim &&
	    atomic_compare_exchange_strong_explicit(&sh->driver, &claim, &vz__stop_claim,
						    memory_order_relaxed, memory_order_relaxed))
		return true;
	return claim == &vz__stop_claim || claim == vz__thread_token();
}

/* Drive or wait for shard sh until it has acknowledged `round`. Embedded
 * shards not claimed by another thread are driven by the caller. */
static void await_round(vz_runtime *rt, struct vz__shard *sh, uint32_t round)
{
	bool drive = sh->embedded && stopper_drives(sh);

	/* Acquire: pairs with the release store in stop_round(). */
	while (atomic_load_explicit(&sh->round_acked, memory_order_acquire) != round) {
		if (drive) {
			struct vz__shard *prev = vz__current(rt);

			vz__set_current(sh);
			vz__shard_turn(sh);
			vz__set_current(prev);
			continue;
		}
		vz__wake(NULL, sh);
		sched_yield();
	}
}

/* Has every foreign post that sh's gate admitted reached the shard (taken
 * from its inbox) or been refused after admission? Stopping thread, after
 * await_round(): round_taken is ordered by that acquire. Acquire on
 * post_unpushed: pairs with the release increment in post_foreign(). Both
 * counts only grow and never pass their final values, so equality means
 * both are final. */
static bool posts_arrived(struct vz__shard *sh)
{
	return atomic_load_explicit(&sh->round_taken, memory_order_relaxed) +
		       atomic_load_explicit(&sh->post_unpushed, memory_order_acquire) ==
		   sh->posts_admitted &&
	       vz__lanes_arrived(sh);
}

static void stop_threads(vz_runtime *rt)
{
	for (unsigned i = 0; i < rt->nshards; i++) {
		/* Release: pairs with the acquire loads of phase in the loop. */
		atomic_store_explicit(&rt->shards[i]->phase, VZ__PHASE_EXIT, memory_order_seq_cst);
		vz__wake(NULL, rt->shards[i]);
	}
	for (unsigned i = 0; i < rt->nshards; i++) {
		struct vz__shard *sh = rt->shards[i];

		if (!sh->thread_started)
			continue;
		/* A wake may have been spent before the thread slept: keep
		 * waking until it has gone. */
		while (pthread_tryjoin_np(sh->thread, NULL) == EBUSY) {
			vz__wake(NULL, sh);
			if (sh->io == NULL)
				sched_yield();
			usleep(50);
		}
		sh->thread_started = false;
	}
}

VZ_API int vz_runtime_stop(vz_runtime *rt)
{
	uint32_t expected = VZ__RT_RUNNING;
	uint32_t round = 0;
	bool quiet;

	if (!rt)
		return VZ_EINVAL;
	if (vz__current(rt))
		return VZ_EWRONGTHREAD;
	if (atomic_load_explicit(&rt->state, memory_order_acquire) != VZ__RT_RUNNING)
		return VZ_ESTATE;
	/* Workers finish or cancel their jobs while completions can still be
	 * posted. */
	vz__pools_stop(rt->pools);
	if (rt->sim)
		vz__sim_pool_stop(rt->sim);
	/* seq_cst: senders on other threads read it (acquire or relaxed)
	 * before accepting a message. */
	if (!atomic_compare_exchange_strong_explicit(&rt->state, &expected, VZ__RT_STOPPING,
						     memory_order_seq_cst, memory_order_seq_cst))
		return VZ_ESTATE;
	for (unsigned i = 0; i < rt->nshards; i++) {
		struct vz__shard *sh = rt->shards[i];

		atomic_store_explicit(&sh->phase, VZ__PHASE_DRAIN, memory_order_relaxed);
		/* Close the gate for good and learn how many posts it let in.
		 * Read-modify-writes of one atomic are totally ordered, so
		 * each poster's ticket comes either before this (admitted,
		 * counted here) or after (it sees CLOSED and is refused).
		 * Release: pairs with the poster's acquire fetch_add in
		 * post_foreign(); a poster that sees CLOSED then also sees
		 * the state change to STOPPING made before this, and returns
		 * VZ_ESTOPPED rather than VZ_ESTATE (a relaxed RMW would
		 * allow the stale RUNNING on weakly ordered CPUs). */
		sh->posts_admitted = atomic_fetch_or_explicit(vz__post_gate(sh), VZ__GATE_CLOSED,
							      memory_order_release) &
				     ~VZ__GATE_CLOSED;
		/* And every lane's gate, remembering how far each got. */
		vz__lanes_close(sh);
	}
	do {
		bool waiting = false;

		round++;
		/* seq_cst: the shards' sleep re-check reads it after their
		 * fence (has_work()); release for the round's data. */
		atomic_store_explicit(&rt->stop_round, round, memory_order_seq_cst);
		for (unsigned i = 0; i < rt->nshards; i++)
			vz__wake(NULL, rt->shards[i]);
		quiet = true;
		for (unsigned i = 0; i < rt->nshards; i++) {
			await_round(rt, rt->shards[i], round);
			if (atomic_load_explicit(&rt->shards[i]->round_moved, memory_order_relaxed))
				quiet = false;
			if (!posts_arrived(rt->shards[i]))
				waiting = true;
		}
		/* An admitted post still on its way (its thread preempted
		 * between the gate and the push): give it the CPU. */
		if (waiting) {
			quiet = false;
			sched_yield();
		}
	} while (!quiet || round < 2);
	/* Before the join: the watchdog may signal a shard thread. */
	vz__watch_stop(rt->watch);
	rt->watch = NULL;
	stop_threads(rt);
	atomic_store_explicit(&rt->state, VZ__RT_STOPPED, memory_order_seq_cst);
	return 0;
}

VZ_API int vz_runtime_destroy(vz_runtime *rt)
{
	uint32_t state;

	if (!rt)
		return 0;
	if (vz__current(rt))
		return VZ_EWRONGTHREAD;
	state = atomic_load_explicit(&rt->state, memory_order_acquire);
	if (state == VZ__RT_RUNNING || state == VZ__RT_STOPPING)
		return VZ_ESTATE;
	vz__stopper_join(rt); /* an async stop's thread may still be returning */
	/* Embedded shards never polled have no backend; the rest were joined.
	 * Actors spawned but never started (created, not started) still hold
	 * state: stop them so on_stop runs and memory is counted. */
	if (state == VZ__RT_CREATED)
		for (unsigned i = 0; i < rt->nshards; i++) {
			vz__set_current(rt->shards[i]);
			vz__stop_all_actors(rt->shards[i]);
			vz__set_current(NULL);
		}
	/* Whatever is still queued anywhere: posts that raced with stop, or
	 * (never started) what init functions sent across shards. All actors
	 * are gone, so each message is dead-lettered (counted, hooked) and
	 * each block goes home; repeat until nothing moves. */
	for (bool moved = true; moved;) {
		moved = false;
		for (unsigned i = 0; i < rt->nshards; i++) {
			struct vz__shard *sh = rt->shards[i];

			vz__set_current(sh);
			if (vz__drain_inbox(sh, UINT32_MAX) || vz__drain_rings(sh, true) ||
			    vz__flush_outboxes(sh) || !vz__outboxes_empty(sh) ||
			    !vz__mpsc_empty(&sh->inbox))
				moved = true;
			vz__set_current(NULL);
		}
	}
	runtime_free(rt);
	return 0;
}

/* ---- embedding ---------------------------------------------------------- */

VZ_API int vz_shard_poll(vz_runtime *rt, unsigned shard, uint32_t timeout_us)
{
	const void *me = vz__thread_token(), *claim;
	struct vz__shard *sh, *prev;
	uint32_t state;
	unsigned work;

	if (!rt)
		return VZ_EINVAL;
	if (shard >= rt->nshards)
		return VZ_ENOSHARD;
	sh = rt->shards[shard];
	if (!sh->embedded)
		return VZ_EINVAL;
	state = atomic_load_explicit(&rt->state, memory_order_acquire);
	if (state == VZ__RT_CREATED)
		return VZ_ESTATE;
	/* The first poll claims the shard for this thread, racing other first
	 * polls and the stopper (stopper_drives()) on one compare-and-swap.
	 * Relaxed: the claim hands over no data (see core.h); a loser reads
	 * the winner's claim and touches nothing of the shard. */
	claim = atomic_load_explicit(&sh->driver, memory_order_relaxed);
	if (!claim && atomic_compare_exchange_strong_explicit(
			  &sh->driver, &claim, me, memory_order_relaxed, memory_order_relaxed))
		claim = me;
	if (claim == &vz__stop_claim)
		return VZ_ESTOPPED; /* stop drives (or drove) it: never polled in time */
	if (claim != me)
		return VZ_EWRONGTHREAD;
	if (atomic_load_explicit(&sh->phase, memory_order_acquire) == VZ__PHASE_EXIT ||
	    state == VZ__RT_STOPPED)
		return VZ_ESTOPPED;
	if (!sh->io) {
		int rc = vz__shard_start_io(sh);

		if (rc < 0)
			return rc;
	}
	prev = vz__current(rt);
	vz__set_current(sh);
	work = vz__shard_turn(sh);
	if (!work && timeout_us) {
		vz__shard_sleep(sh, (int64_t)timeout_us * 1000);
		work = vz__shard_turn(sh);
	}
	vz__set_current(prev);
	return (int)(work > INT32_MAX ? INT32_MAX : work);
}

/* ---- queries ------------------------------------------------------------ */

VZ_API unsigned vz_runtime_shards(const vz_runtime *rt)
{
	return rt ? rt->nshards : 0;
}

VZ_API const char *vz_runtime_backend(const vz_runtime *rt)
{
	return rt ? vz__io_kind_name(rt->io_kind) : "";
}

VZ_API const char *vz_runtime_backend_reason(const vz_runtime *rt)
{
	return rt ? rt->backend_reason : "";
}

VZ_API const char *vz_runtime_backend_flags(const vz_runtime *rt)
{
	return rt ? rt->backend_flags : "";
}

VZ_API const char *vz_runtime_sleep_fence(const vz_runtime *rt)
{
	return rt ? vz__sleep_fence_name(rt->sleep_fence) : "";
}

VZ_API const char *vz_runtime_sleep_fence_reason(const vz_runtime *rt)
{
	return rt ? rt->sleep_fence_reason : "";
}

VZ_API int vz_runtime_shard_cpu(const vz_runtime *rt, unsigned shard)
{
	return vz__runtime_shard_cpu(rt, shard);
}

VZ_API int vz_current_shard(const vz_runtime *rt)
{
	struct vz__shard *sh = rt ? vz__current(rt) : NULL;

	return sh ? (int)sh->id : -1;
}
