// SPDX-License-Identifier: MIT
/*
 * Benchmark `idle` (BENCH.md): what an idle runtime costs and how fast it
 * wakes up. Three figures, each side by side with the classic loop where
 * one exists:
 *   idle_cpu_pct - CPU time used by the process's other threads (the
 *                  runtime's shard and pool threads; the main thread's own
 *                  time is subtracted) while nothing happens for 5 s (1 s
 *                  with --quick), in percent of one CPU. Default idle
 *                  policy (spin, then sleep). One shard, one classic loop.
 *   wake_*       - wake-up latency from sleep: the main thread (CPU 0)
 *                  waits 1 ms so the shard (CPU 1) has gone to sleep, then
 *                  posts a message carrying the send time; the actor
 *                  records now - sent. Histogram per repetition. How many
 *                  samples really found the shard asleep is printed (from
 *                  the sleeps counter).
 *   turn_ns      - cost of one empty loop turn: VZ_IDLE_SPIN, elapsed time
 *                  divided by the turns counter over a fixed interval.
 *   turn_ns, variants "1-ring" / "63-rings" - the same spinning shard in a
 *                  runtime of 2 and of 64 shards, where every other shard is
 *                  embedded and never polled: the measured shard has 1 or 63
 *                  empty incoming rings. The doorbell should make the two
 *                  equal (no O(N) scan of empty rings).
 */
#include "bench.h"
#include "bench_rt.h"
#include "baseline/classic_loop.h"

#include <stdatomic.h>
#include <stdio.h>

enum { MSG_WAKE = VZ_MSG_USER };

static double idle_s;
static uint64_t wake_samples;

/* Shared between the consumer (shard or loop) and main. */
struct wake {
	struct bench_hist *hist;  /* consumer only during a rep */
	_Atomic uint64_t handled; /* release by consumer, acquire by main */
};

static void wake_take(struct wake *w, uint64_t sent)
{
	bench_hist_record(w->hist, bench_now_ns() - sent);
	/* Pairs with the acquire load in wait_handled(): the histogram
	 * write is visible once main sees the count. */
	atomic_fetch_add_explicit(&w->handled, 1, memory_order_release);
}

static bool wait_handled(struct wake *w, uint64_t want)
{
	uint64_t start = bench_now_ns();

	while (atomic_load_explicit(&w->handled, memory_order_acquire) < want) {
		if (bench_now_ns() - start > 5000000000ull)
			return false;
		bench_cpu_relax();
	}
	return true;
}

struct ctx {
	vz_backend_kind backend;
	const char *variant;
	struct wake wake;
	struct bench_lat lat;
	struct bench_series cpu;
	vz_runtime *rt;
	vz_ref ref;
	struct classic_loop *loop;
};

/* ---- veloz ------------------------------------------------------------ */

static int wake_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	*(struct wake **)state = (struct wake *)arg;
	return 0;
}

static void wake_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint64_t sent;

	(void)self;
	if (vz_msg_type(m) != MSG_WAKE)
		return;
	__builtin_memcpy(&sent, vz_msg_data(m), sizeof(sent));
	wake_take(*(struct wake **)state, sent);
}

static const vz_actor_spec wake_spec = {
    .name = "wake",
    .state_size = sizeof(struct wake *),
    .init = wake_init,
    .receive = wake_receive,
};

static int veloz_up(struct ctx *c, vz_idle_policy pol, bool quiet)
{
	struct bench_rt_opts o = {
	    .backend = c->backend, .nshards = 1, .cpu = {1}, .idle_policy = pol, .quiet = quiet};
	int rc;

	if (bench_rt_create(&o, &c->rt) < 0)
		return -1;
	atomic_store_explicit(&c->wake.handled, 0, memory_order_relaxed);
	rc = vz_spawn(c->rt, 0, &wake_spec, &c->wake, &c->ref);
	if (rc == 0)
		rc = bench_rt_start(c->rt);
	if (rc < 0) {
		fprintf(stderr, "idle: veloz setup: %s\n", vz_strerror(rc));
		bench_rt_destroy(c->rt);
		c->rt = NULL;
		return -1;
	}
	return 0;
}

/* CPU of every thread but the caller over `idle_s` of doing nothing. */
static double measure_idle_cpu(void)
{
	uint64_t p0, m0, w0, p1, m1, w1;
	double pct;

	bench_sleep_ns(100000000); /* let spinning windows and start-up pass */
	p0 = bench_process_cpu_ns();
	m0 = bench_thread_cpu_ns();
	w0 = bench_now_ns();
	bench_sleep_ns((uint64_t)(idle_s * 1e9));
	p1 = bench_process_cpu_ns();
	m1 = bench_thread_cpu_ns();
	w1 = bench_now_ns();
	/* The two clocks are read a few hundred ns apart, so a truly idle
	 * runtime can come out a hair below zero: that is zero. */
	pct = 100.0 * ((double)(p1 - p0) - (double)(m1 - m0)) / (double)(w1 - w0);
	return pct > 0 ? pct : 0;
}

static int veloz_idle(void *arg, int rep, double *value)
{
	struct ctx *c = arg;

	if (veloz_up(c, VZ_IDLE_SPIN_THEN_SLEEP, rep > 0) < 0)
		return -1;
	*value = measure_idle_cpu();
	bench_rt_destroy(c->rt);
	c->rt = NULL;
	return 0;
}

static int veloz_wake(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	vz_shard_stats s0, s1;
	int rc = 0;

	if (veloz_up(c, VZ_IDLE_SPIN_THEN_SLEEP, true) < 0)
		return -1;
	bench_hist_reset(c->wake.hist);
	bench_rt_stats(c->rt, &s0, NULL);
	for (uint64_t i = 0; i < wake_samples && rc == 0; i++) {
		uint64_t sent;

		bench_sleep_ns(1000000);
		sent = bench_now_ns();
		rc = vz_post(c->rt, c->ref, MSG_WAKE, &sent, sizeof(sent));
		if (rc < 0)
			fprintf(stderr, "idle: vz_post: %s\n", vz_strerror(rc));
		else if (!wait_handled(&c->wake, i + 1))
			rc = -1;
	}
	bench_rt_stats(c->rt, &s1, NULL);
	bench_rt_destroy(c->rt);
	c->rt = NULL;
	if (rc < 0)
		return -1;
	if (rep == 0)
		fprintf(stderr, "idle: %s: the shard slept %llu times for %llu wake samples\n",
			c->variant, (unsigned long long)(s1.sleeps - s0.sleeps),
			(unsigned long long)wake_samples);
	*value = (double)bench_hist_percentile(c->wake.hist, 50.0);
	if (rep >= 0)
		bench_lat_add(&c->lat, c->wake.hist);
	return 0;
}

static int veloz_turn(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	vz_shard_stats s0, s1;
	uint64_t t0, t1, deadline;

	if (veloz_up(c, VZ_IDLE_SPIN, rep > 0) < 0)
		return -1;
	/* Wait until the shard is turning (start-up on a loaded machine can
	 * take a while), then measure over a fixed interval. */
	bench_rt_stats(c->rt, &s0, NULL);
	deadline = bench_now_ns() + 2000000000ull;
	do {
		bench_sleep_ns(10000000);
		bench_rt_stats(c->rt, &s1, NULL);
	} while (s1.turns == s0.turns && bench_now_ns() < deadline);
	bench_rt_stats(c->rt, &s0, NULL);
	t0 = bench_now_ns();
	bench_sleep_ns(bench_size(500000000, 100000000));
	bench_rt_stats(c->rt, &s1, NULL);
	t1 = bench_now_ns();
	bench_rt_destroy(c->rt);
	c->rt = NULL;
	if (s1.turns <= s0.turns) {
		fprintf(stderr,
			"idle: %s: no loop turns counted while spinning (turns %llu -> %llu, "
			"sleeps %llu -> %llu, %.0f ms)\n",
			c->variant, (unsigned long long)s0.turns, (unsigned long long)s1.turns,
			(unsigned long long)s0.sleeps, (unsigned long long)s1.sleeps,
			(double)(t1 - t0) / 1e6);
		return -1;
	}
	*value = (double)(t1 - t0) / (double)(s1.turns - s0.turns);
	return 0;
}

/* A spinning shard 0 with nshards - 1 idle incoming rings. */
static int ring_matrix_turn(void *arg, int rep, double *value)
{
	unsigned nshards = *(const unsigned *)arg;
	vz_shard_stats s0, s1;
	uint64_t t0, t1, deadline;
	cpu_set_t saved;
	vz_runtime *rt;
	vz_config cfg;
	int rc;

	(void)rep;
	vz_config_default(&cfg);
	cfg.nshards = nshards;
	cfg.allow_shared_cpus = true;
	cfg.idle_policy = VZ_IDLE_SPIN;
	cfg.shards[0].cpu = bench_cpu(1);
	for (unsigned i = 1; i < nshards; i++) {
		cfg.shards[i].cpu = bench_cpu(0);
		cfg.shards[i].embedded = true; /* never polled: its rings stay empty */
	}
	vz_cpuset_zero(&cfg.cpus);
	for (int i = 0; i < bench_ncpus(); i++)
		vz_cpuset_set(&cfg.cpus, (unsigned)bench_cpu(i));
	bench_affinity_widen(&saved);
	rc = vz_runtime_create(&cfg, &rt);
	if (rc == 0 && (rc = vz_runtime_start(rt)) < 0)
		vz_runtime_destroy(rt);
	bench_affinity_restore(&saved);
	if (rc < 0) {
		fprintf(stderr, "idle: ring matrix of %u shards: %s\n", nshards, vz_strerror(rc));
		return -1;
	}
	vz_stats_shard(rt, 0, &s0);
	deadline = bench_now_ns() + 2000000000ull;
	do {
		bench_sleep_ns(10000000);
		vz_stats_shard(rt, 0, &s1);
	} while (s1.turns == s0.turns && bench_now_ns() < deadline);
	vz_stats_shard(rt, 0, &s0);
	t0 = bench_now_ns();
	bench_sleep_ns(bench_size(500000000, 100000000));
	vz_stats_shard(rt, 0, &s1);
	t1 = bench_now_ns();
	vz_runtime_stop(rt);
	vz_runtime_destroy(rt);
	if (s1.turns <= s0.turns)
		return -1;
	*value = (double)(t1 - t0) / (double)(s1.turns - s0.turns);
	return 0;
}

/* ---- classic ---------------------------------------------------------- */

static struct wake *classic_wake;

static void classic_task(void *arg)
{
	wake_take(classic_wake, (uint64_t)(uintptr_t)arg);
}

static int classic_idle(void *arg, int rep, double *value)
{
	struct ctx *c = arg;

	(void)rep;
	if (classic_loop_create(64, &c->loop) < 0 || classic_loop_start(c->loop, 1) < 0)
		return -1;
	*value = measure_idle_cpu();
	classic_loop_stop(c->loop);
	classic_loop_destroy(c->loop);
	return 0;
}

static int classic_wake_rep(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	struct classic_loop_stats st;
	int rc = 0;

	if (classic_loop_create(64, &c->loop) < 0 || classic_loop_start(c->loop, 1) < 0)
		return -1;
	bench_hist_reset(c->wake.hist);
	atomic_store_explicit(&c->wake.handled, 0, memory_order_relaxed);
	classic_wake = &c->wake;
	for (uint64_t i = 0; i < wake_samples && rc == 0; i++) {
		bench_sleep_ns(1000000);
		rc = classic_loop_post(c->loop, classic_task, (void *)(uintptr_t)bench_now_ns());
		if (rc == 0 && !wait_handled(&c->wake, i + 1))
			rc = -1;
	}
	classic_loop_stop(c->loop);
	classic_loop_stats(c->loop, &st);
	classic_loop_destroy(c->loop);
	if (rc < 0)
		return -1;
	if (rep == 0)
		fprintf(stderr, "idle: classic: the loop waited %llu times for %llu wake samples\n",
			(unsigned long long)st.waits, (unsigned long long)wake_samples);
	*value = (double)bench_hist_percentile(c->wake.hist, 50.0);
	if (rep >= 0)
		bench_lat_add(&c->lat, c->wake.hist);
	return 0;
}

/* ---- driver ----------------------------------------------------------- */

int main(int argc, char **argv)
{
	static struct ctx ctx[3];
	struct bench_impl impls[3];
	int n = 0, icl;

	bench_init(argc, argv, "idle");
	idle_s = bench_opts.quick ? 1.0 : 5.0;
	wake_samples = bench_size(1000, 200);
	bench_pin(0, "main thread (poster)");
	for (int b = 0; b < 2; b++) {
		const char *be = bench_backend_name(bench_backends[b]);

		if (!bench_variant_enabled(be) || !bench_rt_backend_ok(bench_backends[b]))
			continue;
		ctx[n].backend = bench_backends[b];
		ctx[n].variant = be;
		n++;
	}
	icl = n;
	ctx[n].variant = "";
	n++;
	for (int i = 0; i < n; i++) {
		const char *impl = i < icl ? "veloz" : "classic";

		ctx[i].wake.hist = bench_hist_create();
		bench_lat_init(&ctx[i].lat, "idle", ctx[i].variant, impl, "wake", "ns");
		impls[i] = (struct bench_impl){.impl = impl, .ctx = &ctx[i]};
	}

	fprintf(stderr, "idle: CPU of an idle runtime / loop over %.0f s\n", idle_s);
	for (int i = 0; i < n; i++)
		impls[i].fn = i < icl ? veloz_idle : classic_idle;
	bench_run_side_by_side(impls, n, bench_opts.reps, false, "idle", "", "idle_cpu_pct", "%");
	for (int i = 0; i < n; i++) {
		impls[i].s.variant = ctx[i].variant;
		bench_emit_series(&impls[i].s);
	}

	fprintf(stderr, "idle: wake-up latency, %llu samples per rep, 1 ms apart\n",
		(unsigned long long)wake_samples);
	for (int i = 0; i < n; i++)
		impls[i].fn = i < icl ? veloz_wake : classic_wake_rep;
	bench_run_side_by_side(impls, n, bench_opts.reps, true, "idle", "", "wake_p50", "ns");
	for (int i = 0; i < n; i++) {
		bench_lat_emit(&ctx[i].lat);
		if (i < icl)
			bench_emit_ratio(&ctx[i].lat.p50, &ctx[icl].lat.p50, false);
	}

	fprintf(stderr, "idle: empty loop turn with VZ_IDLE_SPIN\n");
	if (icl > 0) {
		for (int i = 0; i < icl; i++)
			impls[i].fn = veloz_turn;
		bench_run_side_by_side(impls, icl, bench_opts.reps, false, "idle", "", "turn_ns",
				       "ns");
		for (int i = 0; i < icl; i++) {
			impls[i].s.variant = ctx[i].variant;
			bench_emit_series(&impls[i].s);
		}
	}
	for (int i = 0; i < n; i++)
		bench_hist_destroy(ctx[i].wake.hist);
	if (bench_variant_enabled("1-ring") || bench_variant_enabled("63-rings")) {
		static unsigned two = 2, sixty_four = 64;
		struct bench_impl rm[2] = {
		    {.impl = "veloz", .ctx = &two, .fn = ring_matrix_turn},
		    {.impl = "veloz", .ctx = &sixty_four, .fn = ring_matrix_turn},
		};

		fprintf(stderr, "idle: empty turn with 1 and with 63 idle incoming rings\n");
		bench_run_side_by_side(rm, 2, bench_opts.reps, false, "idle", "", "turn_ns", "ns");
		rm[0].s.variant = "1-ring";
		rm[1].s.variant = "63-rings";
		bench_emit_series(&rm[0].s);
		bench_emit_series(&rm[1].s);
		/* den/num: > 1 means the 63-ring turn is the cheaper one */
		bench_emit_ratio(&rm[1].s, &rm[0].s, false);
	}
	return 0;
}
