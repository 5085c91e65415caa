// SPDX-License-Identifier: MIT
/*
 * Benchmark `spawn` (BENCH.md): an actor on shard 0 spawns N actors with no
 * state on its own shard (vz_spawn after start must run on the target
 * shard's thread), then stops them all. Figures:
 *   throughput      - actors created and stopped per second (whole cycle)
 *   spawn_ns        - time per vz_spawn
 *   stop_ns         - time per vz_stop (home shard: immediate)
 *   bytes_per_actor - resident memory growth with N idle actors alive,
 *                     divided by N (malloc_trim before each repetition so
 *                     freed memory of the previous one is not reused
 *                     silently)
 *   malloc_bytes_per_actor - the same measured as malloc'ed bytes
 * The reference array is allocated and touched before the first
 * measurement, so it is not counted. Baseline per BENCH.md: CAF, not
 * written yet (said on stderr).
 */
#include "bench.h"
#include "bench_rt.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_START = VZ_MSG_USER };

struct run {
	uint64_t n;
	vz_ref *refs;
	uint64_t t0, t1, t2; /* start, all spawned, all stopped */
	uint64_t rss0, rss1; /* before / with N actors alive */
	uint64_t mal0, mal1;
	int err;
	_Atomic int done; /* release by the spawner, acquire by main */
};

struct ctx {
	vz_backend_kind backend;
	struct run run;
	struct bench_series spawn_ns, stop_ns, bytes, mbytes;
};

static void idle_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
}

static const vz_actor_spec idle_spec = {
    .name = "idle",
    .state_size = 0,
    .receive = idle_receive,
};

static int spawner_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	*(struct run **)state = (struct run *)arg;
	return 0;
}

static void spawner_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct run *r = *(struct run **)state;
	vz_runtime *rt = vz_actor_runtime(self);
	unsigned shard = vz_actor_shard(self);
	int rc = 0;

	if (vz_msg_type(m) != MSG_START)
		return;
	r->rss0 = bench_rss_bytes();
	r->mal0 = bench_malloc_bytes();
	r->t0 = bench_now_ns();
	for (uint64_t i = 0; i < r->n; i++) {
		rc = vz_spawn(rt, shard, &idle_spec, NULL, &r->refs[i]);
		if (rc < 0)
			goto out;
	}
	r->t1 = bench_now_ns();
	r->rss1 = bench_rss_bytes();
	r->mal1 = bench_malloc_bytes();
	for (uint64_t i = 0; i < r->n; i++) {
		rc = vz_stop(rt, r->refs[i]);
		if (rc < 0)
			goto out;
	}
	r->t2 = bench_now_ns();
out:
	r->err = rc;
	if (rc < 0)
		fprintf(stderr, "spawn: %s\n", vz_strerror(rc));
	/* Pairs with the acquire in bench_wait_flag(). */
	atomic_store_explicit(&r->done, 1, memory_order_release);
}

static const vz_actor_spec spawner_spec = {
    .name = "spawner",
    .state_size = sizeof(struct run *),
    .init = spawner_init,
    .receive = spawner_receive,
};

static int run_veloz(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	struct run *r = &c->run;
	struct bench_rt_opts o = {
	    .backend = c->backend, .nshards = 1, .cpu = {1}, .quiet = rep > 0};
	vz_shard_stats st;
	vz_runtime *rt;
	vz_ref sp;
	int rc;

	malloc_trim(0);
	if (bench_rt_create(&o, &rt) < 0)
		return -1;
	r->err = 0;
	atomic_store_explicit(&r->done, 0, memory_order_relaxed);
	rc = vz_spawn(rt, 0, &spawner_spec, r, &sp);
	if (rc == 0)
		rc = bench_rt_start(rt);
	if (rc == 0)
		rc = vz_post(rt, sp, MSG_START, NULL, 0);
	if (rc < 0) {
		fprintf(stderr, "spawn: veloz setup: %s\n", vz_strerror(rc));
		bench_rt_destroy(rt);
		return -1;
	}
	if (!bench_wait_flag(&r->done, 120.0)) {
		fprintf(stderr, "spawn: not finished after 120 s\n");
		bench_rt_destroy(rt);
		return -1;
	}
	bench_rt_stats(rt, &st, NULL);
	bench_rt_destroy(rt);
	if (r->err < 0)
		return -1;
	if (st.actors_spawned < r->n || st.actors_stopped < r->n) {
		fprintf(stderr, "spawn: stats disagree: spawned %llu stopped %llu of %llu\n",
			(unsigned long long)st.actors_spawned,
			(unsigned long long)st.actors_stopped, (unsigned long long)r->n);
		return -1;
	}
	*value = (double)r->n * 1e9 / (double)(r->t2 - r->t0);
	if (rep >= 0) {
		double n = (double)r->n;

		bench_series_add(&c->spawn_ns, (double)(r->t1 - r->t0) / n);
		bench_series_add(&c->stop_ns, (double)(r->t2 - r->t1) / n);
		bench_series_add(&c->bytes, ((double)r->rss1 - (double)r->rss0) / n);
		bench_series_add(&c->mbytes, ((double)r->mal1 - (double)r->mal0) / n);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ctx ctx[2];
	struct bench_impl impls[2];
	uint64_t n;
	vz_ref *refs;
	int k = 0;

	bench_init(argc, argv, "spawn");
	n = bench_size(1000000, 100000);
	fprintf(stderr,
		"spawn: %llu actors with no state, spawned and stopped from an actor on CPU %d\n",
		(unsigned long long)n, bench_cpu(1));
	bench_pin(0, "main thread");
	refs = malloc(n * sizeof(*refs));
	if (!refs) {
		fprintf(stderr, "spawn: out of memory\n");
		return 1;
	}
	memset(refs, 0, n * sizeof(*refs)); /* resident before any measurement */
	for (int b = 0; b < 2; b++) {
		const char *be = bench_backend_name(bench_backends[b]);

		if (!bench_variant_enabled(be) || !bench_rt_backend_ok(bench_backends[b]))
			continue;
		ctx[k] = (struct ctx){.backend = bench_backends[b]};
		ctx[k].run.n = n;
		ctx[k].run.refs = refs;
		bench_series_init(&ctx[k].spawn_ns, "spawn", be, "veloz", "spawn_ns", "ns");
		bench_series_init(&ctx[k].stop_ns, "spawn", be, "veloz", "stop_ns", "ns");
		bench_series_init(&ctx[k].bytes, "spawn", be, "veloz", "bytes_per_actor", "B");
		bench_series_init(&ctx[k].mbytes, "spawn", be, "veloz", "malloc_bytes_per_actor",
				  "B");
		impls[k] = (struct bench_impl){.impl = "veloz", .fn = run_veloz, .ctx = &ctx[k]};
		k++;
	}
	bench_run_side_by_side(impls, k, bench_opts.reps, true, "spawn", "", "throughput",
			       "actors/s");
	for (int i = 0; i < k; i++) {
		impls[i].s.variant = ctx[i].bytes.variant;
		bench_emit_series(&impls[i].s);
		bench_emit_series(&ctx[i].spawn_ns);
		bench_emit_series(&ctx[i].stop_ns);
		bench_emit_series(&ctx[i].bytes);
		bench_emit_series(&ctx[i].mbytes);
	}
	bench_skip("caf", "no CAF baseline yet");
	free(refs);
	return 0;
}
