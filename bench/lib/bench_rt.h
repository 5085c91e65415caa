/* SPDX-License-Identifier: MIT */
/*
 * Helpers for benchmarks that run the veloz runtime: create a runtime for a
 * given backend with shards pinned to chosen CPUs (printing the placement
 * and the backend line), iterate over the backends to compare, wait for a
 * flag with a deadline, and take counter deltas from vz_stats_total().
 * Header-only (static inline) so the harness library itself does not depend
 * on libveloz.
 */
#ifndef VZ_BENCH_RT_H
#define VZ_BENCH_RT_H

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <veloz.h>

#include "bench.h"

/* The backends every runtime benchmark runs, io_uring first. */
static const vz_backend_kind bench_backends[2] = {VZ_BACKEND_IO_URING, VZ_BACKEND_EPOLL};

static inline const char *bench_backend_name(vz_backend_kind k)
{
	return k == VZ_BACKEND_IO_URING ? "io_uring" : k == VZ_BACKEND_EPOLL ? "epoll" : "auto";
}

/* Options for bench_rt_create(). */
struct bench_rt_opts {
	vz_backend_kind backend;
	unsigned nshards;
	int cpu[8];			/* bench_cpu() index per shard (first nshards used) */
	vz_idle_policy idle_policy;	/* default VZ_IDLE_SPIN_THEN_SLEEP (0) */
	uint32_t idle_spin_us;		/* 0 = the runtime default */
	bool quiet;			/* do not print placement (printed once anyway) */
	bool no_turn_budget;		/* runtime.turn_budget_us = 0 (counts only) */
	unsigned nclasses;		/* scheduling classes (0 = none) */
	const vz_class_config *classes; /* nclasses entries */
	bool no_metrics;		/* per-actor-type stats and the stall watchdog off */
};

/*
 * Create a runtime per *o: shard i pinned to bench_cpu(o->cpu[i]), shared
 * CPUs allowed (so two shards fit on a one-CPU machine). Prints the
 * placement and the backend line. Returns 0, or the negative VZ_E* code of
 * the failing call after printing it; *out is NULL then. The main thread.
 */
static inline int bench_rt_create(const struct bench_rt_opts *o, vz_runtime **out)
{
	cpu_set_t saved;
	vz_config cfg;
	int rc;

	*out = NULL;
	vz_config_default(&cfg);
	cfg.nshards = o->nshards;
	cfg.allow_shared_cpus = true;
	cfg.backend = o->backend;
	cfg.idle_policy = o->idle_policy;
	if (o->idle_spin_us)
		cfg.idle_spin_us = o->idle_spin_us;
	/* BENCH_NO_TURN_BUDGET=1: every runtime of the run without the time
	 * budget, to measure what the budget's clock reads cost a benchmark. */
	if (o->no_turn_budget || getenv("BENCH_NO_TURN_BUDGET"))
		cfg.turn_budget_us = 0;
	for (unsigned i = 0; i < o->nshards && i < 8; i++)
		cfg.shards[i].cpu = bench_cpu(o->cpu[i]);
	/* The observability the runtime has by default (per-type metrics,
	 * the stall watchdog) is on unless asked off: counting's `nometrics`
	 * impl measures what it costs. */
	cfg.stats_types_off = o->no_metrics;
	cfg.stall_off = o->no_metrics;
	cfg.nclasses = o->nclasses;
	for (unsigned i = 0; i < o->nclasses && i < VZ_MAX_CLASSES; i++)
		cfg.classes[i] = o->classes[i];
	/* The run's CPUs, not the (pinned) calling thread's mask. */
	vz_cpuset_zero(&cfg.cpus);
	for (int i = 0; i < bench_ncpus(); i++)
		vz_cpuset_set(&cfg.cpus, (unsigned)bench_cpu(i));
	bench_affinity_widen(&saved);
	rc = vz_runtime_create(&cfg, out);
	bench_affinity_restore(&saved);
	if (rc < 0) {
		vz_config_error err;

		memset(&err, 0, sizeof(err));
		if (rc == VZ_ECONFIG)
			vz_config_validate(&cfg, &err);
		fprintf(stderr, "%s: vz_runtime_create(%s): %s%s%s%s%s\n", bench_opts.name,
			bench_backend_name(o->backend), vz_strerror(rc), err.key[0] ? ": " : "",
			err.key, err.message[0] ? ": " : "", err.message);
		*out = NULL;
		return rc;
	}
	bench_machine_runtime(vz_runtime_backend(*out), vz_runtime_backend_reason(*out));
	for (unsigned i = 0; i < o->nshards && !o->quiet; i++)
		bench_say_once("placement: %s shard %u -> CPU %d", vz_runtime_backend(*out), i,
			       vz_runtime_shard_cpu(*out, i));
	return 0;
}

/* vz_runtime_start() with the caller's affinity widened for the call (the
 * runtime checks shard CPUs against the calling thread's mask, and a
 * benchmark's main thread is pinned elsewhere). */
static inline int bench_rt_start(vz_runtime *rt)
{
	cpu_set_t saved;
	int rc;

	bench_affinity_widen(&saved);
	rc = vz_runtime_start(rt);
	bench_affinity_restore(&saved);
	return rc;
}

/* Stop and destroy, reporting (not hiding) errors. NULL is a no-op. */
static inline void bench_rt_destroy(vz_runtime *rt)
{
	int rc;

	if (!rt)
		return;
	rc = vz_runtime_stop(rt);
	if (rc < 0 && rc != VZ_ESTATE)
		fprintf(stderr, "%s: vz_runtime_stop: %s\n", bench_opts.name, vz_strerror(rc));
	rc = vz_runtime_destroy(rt);
	if (rc < 0)
		fprintf(stderr, "%s: vz_runtime_destroy: %s\n", bench_opts.name, vz_strerror(rc));
}

/* Is this backend usable here? Creates and destroys a one-shard runtime
 * (not started). Prints why when it is not. */
static inline bool bench_rt_backend_ok(vz_backend_kind k)
{
	cpu_set_t saved;
	vz_config cfg;
	vz_runtime *rt = NULL;
	int rc;

	vz_config_default(&cfg);
	cfg.nshards = 1;
	cfg.backend = k;
	vz_cpuset_zero(&cfg.cpus);
	for (int i = 0; i < bench_ncpus(); i++)
		vz_cpuset_set(&cfg.cpus, (unsigned)bench_cpu(i));
	bench_affinity_widen(&saved);
	rc = vz_runtime_create(&cfg, &rt);
	bench_affinity_restore(&saved);
	if (rc < 0) {
		vz_config_error err;
		char why[700];

		memset(&err, 0, sizeof(err));
		if (rc == VZ_ECONFIG)
			vz_config_validate(&cfg, &err);
		snprintf(why, sizeof(why), "runtime refused the backend: %s%s%s", vz_strerror(rc),
			 err.message[0] ? ": " : "", err.message);
		bench_skip(bench_backend_name(k), why);
		return false;
	}
	if (strcmp(vz_runtime_backend(rt), bench_backend_name(k)) != 0) {
		bench_skip(bench_backend_name(k), "runtime fell back to another backend");
		vz_runtime_destroy(rt);
		return false;
	}
	vz_runtime_destroy(rt);
	return true;
}

/* Wait until *flag (acquire) is nonzero: spin briefly, then sleep in steps
 * growing from 20 us to 1 ms (so a waiting main thread sharing a CPU with a
 * shard disturbs it rarely; the figures never depend on when the waiter
 * notices). Returns true when set, false after timeout_s seconds. */
static inline bool bench_wait_flag(const _Atomic int *flag, double timeout_s)
{
	uint64_t start = bench_now_ns(), limit = (uint64_t)(timeout_s * 1e9), step = 20000;
	unsigned spins = 0;

	/* Acquire pairs with the release store of the flag by whoever sets
	 * it, so data written before the flag is visible after. */
	while (!atomic_load_explicit(flag, memory_order_acquire)) {
		if (++spins < 4096) {
			bench_cpu_relax();
			continue;
		}
		if (bench_now_ns() - start > limit)
			return false;
		bench_sleep_ns(step);
		if (step < 1000000)
			step *= 2;
	}
	return true;
}

/* Counters of the whole runtime (vz_stats_total); zeroed on error. */
static inline void bench_rt_stats(vz_runtime *rt, vz_shard_stats *s, uint64_t *foreign)
{
	uint64_t f = 0;

	if (vz_stats_total(rt, s, &f) < 0) {
		memset(s, 0, sizeof(*s));
		f = 0;
	}
	if (foreign)
		*foreign = f;
}

/* *d = b - a, field by field (vz_shard_stats is all uint64_t). */
static inline void bench_rt_stats_delta(const vz_shard_stats *a, const vz_shard_stats *b,
					vz_shard_stats *d)
{
	const uint64_t *pa = (const uint64_t *)a, *pb = (const uint64_t *)b;
	uint64_t *pd = (uint64_t *)d;

	_Static_assert(sizeof(vz_shard_stats) % sizeof(uint64_t) == 0, "stats are uint64_t");
	for (size_t i = 0; i < sizeof(vz_shard_stats) / sizeof(uint64_t); i++)
		pd[i] = pb[i] - pa[i];
}

#endif
