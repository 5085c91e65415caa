// SPDX-License-Identifier: MIT
/*
 * Benchmark `timers` (BENCH.md): the per-shard timer table (runtime/timer,
 * hierarchical wheel, 1 ms tick) against the classic binary heap
 * (bench/baseline/timer_heap) and libuv timers (uv_timer_start/stop), side
 * by side in one run, implementations alternating A B C A B C per
 * repetition after one unrecorded warm-up round.
 *
 * Variants:
 *   1M-pending   N timers (1M; --quick 100k) with random delays uniform in
 *                [1 ms, 60 s]: arm_ns (arm all N), cancel_ns (cancel all N
 *                in random order), both per timer; then expiry_ns: arm N
 *                again and drive a simulated clock in 1 ms steps over the
 *                60 s, per timer fired. Veloz's expiry includes the
 *                deliverable() call the core makes per message (it releases
 *                the slot, as a heap pop frees its node). libuv reads the
 *                real clock itself, so it has no simulated-clock expiry: its
 *                expiry figure is in `all-due`. allocs_per_arm counts slab or
 *                array growth during the timed arms (steady state: 0).
 *                arm_cpu_ns, cancel_cpu_ns, expiry_cpu_ns: the same in the
 *                thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which leaves
 *                out the time other processes had the CPU: the figures to
 *                read on a loaded machine.
 *   all-due      N timers with delays uniform in [1, 60] ms on the real
 *                clock; after 61 ms one expire call fires them all:
 *                expiry_ns per timer, for all three.
 *   lookup-<n>   next-deadline lookup cost with n pending (1k, 100k, 1M,
 *                10M; --quick 1k, 100k): veloz vz__timers_next_deadline_ns,
 *                classic timer_heap_peek, libuv uv_backend_timeout;
 *                next_deadline_ns per call. It should be flat in n.
 *   busy-loop    K timers (200k; --quick 5k) with whole-ms delays uniform in
 *                [100 ms, 1.1 s] (--quick [20 ms, 70 ms]) on the real clock,
 *                fired by a loop that reads the clock and expires in a tight
 *                loop: lateness_* = loop time at the firing minus the
 *                intended deadline (arm time + delay), as a histogram;
 *                early_fires counts firings before the intended deadline
 *                (recorded as 0 lateness). veloz fires in the first expire
 *                call at or after the deadline, whatever the tick; libuv
 *                keeps ms-truncated time and may fire up to 1 ms early.
 *   busy-loop-tick10us  the same for veloz with a 10 us tick.
 *   busy-shard-<backend>  the whole runtime: one shard (CPU 1), default
 *                1 ms tick, where one actor floods itself (64 self-sends in
 *                flight, re-sent from receive, endless) and another actor
 *                arms one-shot timers of 50 us, 200 us and 1 ms in turn
 *                (N = 600, --quick 150 per repetition), the next armed when
 *                the last arrives: lateness_* = the receiving actor's clock
 *                read when the expiry message arrives minus its deadline.
 *                impl veloz runs with the default runtime.turn_budget_us;
 *                variant busy-shard-<backend>-nobudget with
 *                turn_budget_us = 0 (the turn bounded by counts only: 256
 *                actor runs x 64 messages). With the budget lateness is
 *                about one turn; without it, one count-bounded turn.
 *   idle-shard-<backend>  the same timers with no flood: the shard sleeps
 *                (default idle policy) and must wake for each deadline;
 *                lateness includes the wake-up.
 * Ratios: "ratio_vs_<impl>_<metric>" = median over repetitions of
 * other/veloz per pair (> 1: veloz is faster/lower).
 *
 * Build (target bench_timers from bench/CMakeLists.txt, which links the
 * harness, the baselines, libveloz and libuv when found):
 *   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build
 *   build-bench --target bench_timers && build-bench/bench/bench_timers [--quick]
 */
#include "bench.h"
#include "bench_rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline/timer_heap.h"
#include "timer/timers.h"

#ifdef VZ_HAVE_LIBUV
#include <uv.h>
#endif

#define MS  1000000ull
#define SEC 1000000000ull

enum { IMPL_VELOZ, IMPL_CLASSIC, IMPL_LIBUV, NIMPL, IMPL_WHEEL = NIMPL };
static const char *const impl_name[NIMPL] = {"veloz", "classic", "libuv"};

static bool have_libuv;

/* ---- inputs ------------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static uint64_t *delays_ns;    /* per timer, uniform in the variant's range */
static uint32_t *cancel_order; /* a random permutation */
static uint64_t *handles;

static void make_inputs(uint64_t n, uint64_t lo_ns, uint64_t hi_ns, bool whole_ms)
{
	uint64_t i;

	for (i = 0; i < n; i++) {
		uint64_t d = lo_ns + rnd() % (hi_ns - lo_ns + 1);

		delays_ns[i] = whole_ms ? (d + MS - 1) / MS * MS : d;
		cancel_order[i] = (uint32_t)i;
	}
	for (i = n; i-- > 1;) {
		uint64_t j = rnd() % (i + 1);
		uint32_t t = cancel_order[i];

		cancel_order[i] = cancel_order[j];
		cancel_order[j] = t;
	}
}

/* ---- the three implementations' state ----------------------------------- */

static struct vz__timers vt;
static struct vz__wheel ww; /* the bare wheel, for 1M-pending-wheel-only */
static struct vz__wheel_entry *wents;
static struct vz__timer_owner vowner;
static struct timer_heap th;
#ifdef VZ_HAVE_LIBUV
static uv_loop_t uvloop;
static uv_timer_t *uvt;
static uint64_t nuvt, uvt_cap; /* initialised handles; capacity (never moved) */
#endif

static uint64_t fired;	       /* callbacks run in the current measurement */
static uint64_t loop_now;      /* the busy loop's clock read of this turn */
static uint64_t *intended;     /* busy loop: intended deadline per timer */
static struct bench_hist *lat; /* busy loop: lateness of this repetition */
static uint64_t early;	       /* busy loop: fired before the intended deadline */

static void record_lateness(uint64_t deadline)
{
	if (loop_now < deadline) {
		early++;
		bench_hist_record(lat, 0);
	} else {
		bench_hist_record(lat, loop_now - deadline);
	}
}

/* veloz: what the core does per expiry, minus the message: check the timer
 * is deliverable (which releases a one-shot's slot). */
static struct vz__timers *fire_table = &vt; /* the table being expired */

static void veloz_fire(void *ctx, struct vz__timer_owner *o, const vz_timer_event *ev)
{
	(void)o;
	if (!vz__timers_deliverable(fire_table, ev->timer.id))
		abort();
	fired++;
	if (ctx)
		record_lateness(ev->deadline_ns);
}

/* bare wheel: count. */
static void wheel_fire(void *ctx, struct vz__wheel_entry *e)
{
	(void)ctx;
	(void)e;
	fired++;
}

/* classic: the payload of a heap entry is a task object, as in the classic
 * loop (baseline/classic_loop.c reads its task from the entry's payload):
 * expiring an entry touches that object, as veloz's expiry touches its
 * slot. */
struct ctask {
	void (*fn)(struct ctask *t, bool timed);
	uint64_t index;
};

static struct ctask *ctasks;

static void classic_task(struct ctask *t, bool timed)
{
	fired++;
	if (timed)
		record_lateness(intended[t->index]);
}

/* Pop and run every entry due at `now`. */
static void classic_expire(uint64_t now, bool timed)
{
	uint64_t d;
	void *p;

	while (timer_heap_peek(&th, &d, &p) == 0 && d <= now) {
		struct ctask *t = p;

		timer_heap_pop(&th, NULL, NULL);
		t->fn(t, timed);
	}
}

#ifdef VZ_HAVE_LIBUV
static bool uv_timed;

static void uv_fire(uv_timer_t *h)
{
	fired++;
	if (uv_timed)
		record_lateness(intended[h - uvt]);
}

/* Make sure there are n initialised handles (uv_timer_init once each: a
 * steady-state program initialises a handle once and restarts it). The
 * array is allocated once at its final size: libuv links the handles into
 * its lists, so they must never move. */
static void uv_handles(uint64_t n)
{
	if (n > uvt_cap)
		abort();
	for (; nuvt < n; nuvt++)
		uv_timer_init(&uvloop, &uvt[nuvt]);
}
#endif

/* Sanity check of the heap baseline before timing it: a wrong baseline
 * would make every ratio meaningless. */
static void check_heap(void)
{
	struct timer_heap h;
	uint64_t hs[2000], prev = 0, d, i;
	bool live[2000] = {false};
	void *p;
	unsigned n = 0;

	if (timer_heap_init(&h, 0) != 0)
		abort();
	for (i = 0; i < 2000; i++) {
		if (timer_heap_push(&h, rnd() % 1000, (void *)(uintptr_t)i, &hs[i]) != 0)
			abort();
		live[i] = true;
	}
	for (i = 0; i < 2000; i += 3) {
		if (timer_heap_cancel(&h, hs[i], &p) != 0 || (uintptr_t)p != i ||
		    timer_heap_cancel(&h, hs[i], NULL) == 0)
			abort();
		live[i] = false;
	}
	while (timer_heap_pop(&h, &d, &p) == 0) {
		if (d < prev || !live[(uintptr_t)p])
			abort();
		live[(uintptr_t)p] = false;
		prev = d;
		n++;
	}
	if (n != 2000 - 667)
		abort();
	timer_heap_fini(&h);
}

/* ---- side-by-side driver ------------------------------------------------ */

struct figure {
	struct bench_series s[NIMPL];
	bool used;
};

static void figure_init(struct figure *f, const char *variant, const char *metric, const char *unit)
{
	int i;

	for (i = 0; i < NIMPL; i++)
		bench_series_init(&f->s[i], "timers", variant, impl_name[i], metric, unit);
	f->used = true;
}

/* Emit the series (only veloz's when `only_veloz`), then other/veloz
 * ratios per pair. */
static void figure_emit(const struct figure *f, bool only_veloz)
{
	int i, k;

	for (i = 0; i < (only_veloz ? 1 : NIMPL); i++)
		bench_emit_series(&f->s[i]);
	for (i = 1; i < NIMPL; i++) {
		const struct bench_series *a = &f->s[i], *b = &f->s[IMPL_VELOZ];
		double r[BENCH_MAX_REPS], lo = INFINITY, hi = 0, tmp;
		int n = a->n < b->n ? a->n : b->n, j, m = 0;
		char metric[64];

		for (j = 0; j < n; j++)
			if (b->v[j] > 0)
				r[m++] = a->v[j] / b->v[j];
		if (!m)
			continue;
		for (j = 0; j < m; j++) {
			lo = r[j] < lo ? r[j] : lo;
			hi = r[j] > hi ? r[j] : hi;
		}
		/* median by insertion sort (m <= 101) */
		for (j = 1; j < m; j++)
			for (k = j; k > 0 && r[k - 1] > r[k]; k--) {
				tmp = r[k];
				r[k] = r[k - 1];
				r[k - 1] = tmp;
			}
		snprintf(metric, sizeof metric, "ratio_vs_%s_%s", a->impl, a->metric);
		bench_emit("timers", a->variant, "veloz", metric,
			   m % 2 ? r[m / 2] : (r[m / 2 - 1] + r[m / 2]) / 2, "x", m, lo, hi);
	}
}

/* ---- variant 1M-pending ---------------------------------------------------- */

static uint64_t sim_now; /* simulated clock for veloz and classic */

/* The calling thread's CPU time: unlike the wall clock, it leaves out the
 * time the OS gave the CPU to other processes, which on the shared 2-CPU
 * machines is most of the noise (the *_cpu_ns figures). */
static uint64_t cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* out[0..2]: arm, cancel, expiry ns per timer (wall); out[3]: allocations
 * per arm; out[4..6]: arm, cancel, expiry in thread CPU time. */
static void pending_rep(int impl, uint64_t n, double out[7])
{
	uint64_t t0, t1, c0 = 0, c1 = 0, i, allocs;

	for (i = 0; i < 7; i++)
		out[i] = NAN;
	if (impl == IMPL_WHEEL) {
		uint64_t now = sim_now;

		t0 = bench_now_ns();
		c0 = cpu_now();
		for (i = 0; i < n; i++)
			vz__wheel_add(&ww, &wents[i], now + delays_ns[i]);
		c1 = cpu_now();
		t1 = bench_now_ns();
		out[0] = (double)(t1 - t0) / (double)n;
		out[4] = (double)(c1 - c0) / (double)n;
		out[3] = 0; /* entries are the caller's memory */
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (i = 0; i < n; i++)
			vz__wheel_del(&ww, &wents[cancel_order[i]]);
		c1 = cpu_now();
		t1 = bench_now_ns();
		out[1] = (double)(t1 - t0) / (double)n;
		out[5] = (double)(c1 - c0) / (double)n;
		for (i = 0; i < n; i++)
			vz__wheel_add(&ww, &wents[i], now + delays_ns[i]);
		fired = 0;
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (sim_now = now + MS; sim_now <= now + 60 * SEC + MS; sim_now += MS)
			vz__wheel_advance(&ww, sim_now, wheel_fire, NULL);
		c1 = cpu_now();
		t1 = bench_now_ns();
		if (fired != n || vz__wheel_count(&ww) != 0) {
			fprintf(stderr, "timers: wheel fired %llu of %llu\n",
				(unsigned long long)fired, (unsigned long long)n);
			exit(1);
		}
		out[2] = (double)(t1 - t0) / (double)n;
		out[6] = (double)(c1 - c0) / (double)n;
	} else if (impl == IMPL_VELOZ) {
		uint64_t now = sim_now;

		allocs = vt.chunk_allocs;
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (i = 0; i < n; i++)
			vz__timers_arm(&vt, &vowner, now, delays_ns[i], 0, i, &handles[i]);
		c1 = cpu_now();
		t1 = bench_now_ns();
		out[0] = (double)(t1 - t0) / (double)n;
		out[4] = (double)(c1 - c0) / (double)n;
		out[3] = (double)(vt.chunk_allocs - allocs) / (double)n;
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (i = 0; i < n; i++)
			vz__timers_cancel(&vt, &vowner, handles[cancel_order[i]]);
		c1 = cpu_now();
		t1 = bench_now_ns();
		out[1] = (double)(t1 - t0) / (double)n;
		out[5] = (double)(c1 - c0) / (double)n;
		for (i = 0; i < n; i++)
			vz__timers_arm(&vt, &vowner, now, delays_ns[i], 0, i, &handles[i]);
		fired = 0;
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (sim_now = now + MS; sim_now <= now + 60 * SEC + MS; sim_now += MS)
			vz__timers_expire(&vt, sim_now, veloz_fire, NULL);
		c1 = cpu_now();
		t1 = bench_now_ns();
		if (fired != n || vz__timers_live(&vt) != 0) {
			fprintf(stderr, "timers: veloz fired %llu of %llu\n",
				(unsigned long long)fired, (unsigned long long)n);
			exit(1);
		}
		out[2] = (double)(t1 - t0) / (double)n;
		out[6] = (double)(c1 - c0) / (double)n;
	} else if (impl == IMPL_CLASSIC) {
		uint64_t now = sim_now;

		allocs = th.grows;
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (i = 0; i < n; i++)
			timer_heap_push(&th, now + delays_ns[i], &ctasks[i], &handles[i]);
		c1 = cpu_now();
		t1 = bench_now_ns();
		out[0] = (double)(t1 - t0) / (double)n;
		out[4] = (double)(c1 - c0) / (double)n;
		out[3] = (double)(th.grows - allocs) / (double)n;
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (i = 0; i < n; i++)
			timer_heap_cancel(&th, handles[cancel_order[i]], NULL);
		c1 = cpu_now();
		t1 = bench_now_ns();
		out[1] = (double)(t1 - t0) / (double)n;
		out[5] = (double)(c1 - c0) / (double)n;
		for (i = 0; i < n; i++)
			timer_heap_push(&th, now + delays_ns[i], &ctasks[i], &handles[i]);
		fired = 0;
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (sim_now = now + MS; sim_now <= now + 60 * SEC + MS; sim_now += MS)
			classic_expire(sim_now, false);
		c1 = cpu_now();
		t1 = bench_now_ns();
		if (fired != n || timer_heap_count(&th) != 0) {
			fprintf(stderr, "timers: classic fired %llu of %llu\n",
				(unsigned long long)fired, (unsigned long long)n);
			exit(1);
		}
		out[2] = (double)(t1 - t0) / (double)n;
		out[6] = (double)(c1 - c0) / (double)n;
	} else {
#ifdef VZ_HAVE_LIBUV
		uv_handles(n);
		uv_update_time(&uvloop);
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (i = 0; i < n; i++)
			uv_timer_start(&uvt[i], uv_fire, delays_ns[i] / MS, 0);
		c1 = cpu_now();
		t1 = bench_now_ns();
		out[0] = (double)(t1 - t0) / (double)n;
		out[4] = (double)(c1 - c0) / (double)n;
		out[3] = 0; /* handles are the caller's memory; libuv's heap is intrusive */
		t0 = bench_now_ns();
		c0 = cpu_now();
		for (i = 0; i < n; i++)
			uv_timer_stop(&uvt[cancel_order[i]]);
		c1 = cpu_now();
		t1 = bench_now_ns();
		out[1] = (double)(t1 - t0) / (double)n;
		out[5] = (double)(c1 - c0) / (double)n;
#endif
	}
}

static void variant_pending(void)
{
	const char *variant = bench_opts.quick ? "100k-pending" : "1M-pending";
	const char *wvariant =
	    bench_opts.quick ? "100k-pending-wheel-only" : "1M-pending-wheel-only";
	uint64_t n = bench_size(1000000, 100000), i;
	struct figure f[7], fw[3];
	int rep, impl;

	if (!bench_variant_enabled(variant))
		return;
	wents = calloc(n, sizeof *wents);
	if (!wents || vz__wheel_init(&ww, MS, sim_now) != 0)
		abort();
	for (i = 0; i < n; i++)
		vz__wheel_entry_init(&wents[i]);
	figure_init(&fw[0], wvariant, "arm_ns", "ns");
	figure_init(&fw[1], wvariant, "cancel_ns", "ns");
	figure_init(&fw[2], wvariant, "expiry_ns", "ns");
	make_inputs(n, MS, 60 * SEC, false);
	figure_init(&f[0], variant, "arm_ns", "ns");
	figure_init(&f[1], variant, "cancel_ns", "ns");
	figure_init(&f[2], variant, "expiry_ns", "ns");
	figure_init(&f[3], variant, "allocs_per_arm", "count");
	figure_init(&f[4], variant, "arm_cpu_ns", "ns");
	figure_init(&f[5], variant, "cancel_cpu_ns", "ns");
	figure_init(&f[6], variant, "expiry_cpu_ns", "ns");
	/* Pre-grow veloz's slab and the heap's arrays once (untimed): the
	 * figures are steady state. */
	for (i = 0; i < n; i++)
		vz__timers_arm(&vt, &vowner, sim_now, delays_ns[i], 0, i, &handles[i]);
	/* Cancelled one by one: ending the owner's life would leave them
	 * stale in the wheel until they are due. */
	for (i = 0; i < n; i++)
		vz__timers_cancel(&vt, &vowner, handles[i]);
	for (i = 0; i < n; i++)
		timer_heap_push(&th, 0, NULL, &handles[i]);
	while (timer_heap_pop(&th, NULL, NULL) == 0)
		;
	if (!have_libuv)
		bench_skip("libuv", "not installed");
	else
		bench_skip("1M-pending libuv expiry_ns",
			   "libuv reads the real clock; its expiry is in variant all-due");
	for (rep = -1; rep < bench_opts.reps; rep++) {
		for (impl = 0; impl <= IMPL_WHEEL; impl++) {
			double v[7];
			int k;

			if (impl == IMPL_LIBUV && !have_libuv)
				continue;
			pending_rep(impl, n, v);
			if (rep < 0)
				continue;
			if (impl == IMPL_WHEEL) {
				for (k = 0; k < 3; k++)
					bench_series_add(&fw[k].s[IMPL_VELOZ], v[k]);
				continue;
			}
			for (k = 0; k < 7; k++)
				if (!isnan(v[k]))
					bench_series_add(&f[k].s[impl], v[k]);
			if (impl == IMPL_CLASSIC) /* the wheel-only ratios use the same reps */
				for (k = 0; k < 3; k++)
					bench_series_add(&fw[k].s[IMPL_CLASSIC], v[k]);
		}
		if (rep >= 0)
			fprintf(stderr, "timers: %s rep %d done\n", variant, rep);
	}
	for (i = 0; i < 7; i++)
		figure_emit(&f[i], false);
	for (i = 0; i < 3; i++)
		figure_emit(&fw[i], true);
	vz__wheel_fini(&ww);
	free(wents);
}

/* ---- variant all-due ------------------------------------------------------ */

static double all_due_rep(int impl, uint64_t n)
{
	uint64_t t0, t1, i, now;

	fired = 0;
	if (impl == IMPL_VELOZ) {
		now = bench_now_ns();
		for (i = 0; i < n; i++)
			vz__timers_arm(&vt, &vowner, now, delays_ns[i], 0, i, &handles[i]);
		bench_sleep_ns(61 * MS);
		t0 = bench_now_ns();
		vz__timers_expire(&vt, t0, veloz_fire, NULL);
		t1 = bench_now_ns();
	} else if (impl == IMPL_CLASSIC) {
		now = bench_now_ns();
		for (i = 0; i < n; i++)
			timer_heap_push(&th, now + delays_ns[i], &ctasks[i], &handles[i]);
		bench_sleep_ns(61 * MS);
		t0 = bench_now_ns();
		classic_expire(t0, false);
		t1 = bench_now_ns();
	} else {
#ifdef VZ_HAVE_LIBUV
		uv_handles(n);
		uv_update_time(&uvloop);
		for (i = 0; i < n; i++)
			uv_timer_start(&uvt[i], uv_fire, delays_ns[i] / MS, 0);
		bench_sleep_ns(62 * MS); /* libuv's clock is ms-truncated */
		t0 = bench_now_ns();
		uv_run(&uvloop, UV_RUN_NOWAIT);
		t1 = bench_now_ns();
#else
		return NAN;
#endif
	}
	if (fired != n) {
		fprintf(stderr, "timers: all-due %s fired %llu of %llu\n", impl_name[impl],
			(unsigned long long)fired, (unsigned long long)n);
		exit(1);
	}
	return (double)(t1 - t0) / (double)n;
}

static void variant_all_due(void)
{
	uint64_t n = bench_size(1000000, 100000);
	struct figure f;
	int rep, impl;

	if (!bench_variant_enabled("all-due"))
		return;
	make_inputs(n, MS, 60 * MS, true);
	figure_init(&f, "all-due", "expiry_ns", "ns");
	for (rep = -1; rep < bench_opts.reps; rep++)
		for (impl = 0; impl < NIMPL; impl++) {
			double v;

			if (impl == IMPL_LIBUV && !have_libuv)
				continue;
			v = all_due_rep(impl, n);
			if (rep >= 0)
				bench_series_add(&f.s[impl], v);
		}
	figure_emit(&f, false);
}

/* ---- variant lookup-<n> --------------------------------------------------- */

static void variant_lookup(uint64_t n, const char *variant)
{
	uint64_t calls = bench_size(10000000, 1000000), i, now, sink = 0, t0, t1;
	struct figure f;
	struct vz__timers lt;
	struct vz__timer_owner lo;
	struct timer_heap lh;
	int rep, impl;

	if (!bench_variant_enabled(variant))
		return;
	/* Setup (untimed): n timers with delays in [1 ms, 60 s] in each. */
	now = bench_now_ns();
	if (vz__timers_init(&lt, MS, now) != 0 || timer_heap_init(&lh, 0) != 0)
		abort();
	vz__timer_owner_init(&lo, 1);
	for (i = 0; i < n; i++) {
		uint64_t d = MS + rnd() % (60 * SEC), h;

		if (vz__timers_arm(&lt, &lo, now, d, 0, 0, &h) != 0 ||
		    timer_heap_push(&lh, now + d, NULL, &h) != 0) {
			fprintf(stderr, "timers: %s: out of memory\n", variant);
			exit(1);
		}
	}
#ifdef VZ_HAVE_LIBUV
	if (have_libuv) {
		uv_handles(n);
		uv_update_time(&uvloop);
		for (i = 0; i < n; i++)
			uv_timer_start(&uvt[i], uv_fire, 1 + rnd() % 60000, 0);
	}
#endif
	figure_init(&f, variant, "next_deadline_ns", "ns");
	for (rep = -1; rep < bench_opts.reps; rep++)
		for (impl = 0; impl < NIMPL; impl++) {
			if (impl == IMPL_VELOZ) {
				t0 = bench_now_ns();
				for (i = 0; i < calls; i++) {
					sink += vz__timers_next_deadline_ns(&lt);
					bench_clobber(&lt);
				}
				t1 = bench_now_ns();
			} else if (impl == IMPL_CLASSIC) {
				t0 = bench_now_ns();
				for (i = 0; i < calls; i++) {
					uint64_t d = 0;

					timer_heap_peek(&lh, &d, NULL);
					sink += d;
					bench_clobber(&lh);
				}
				t1 = bench_now_ns();
			} else {
#ifdef VZ_HAVE_LIBUV
				if (!have_libuv)
					continue;
				t0 = bench_now_ns();
				for (i = 0; i < calls; i++) {
					sink += (uint64_t)uv_backend_timeout(&uvloop);
					bench_clobber(&uvloop);
				}
				t1 = bench_now_ns();
#else
				continue;
#endif
			}
			if (rep >= 0)
				bench_series_add(&f.s[impl], (double)(t1 - t0) / (double)calls);
		}
	bench_clobber(&sink);
	figure_emit(&f, false);
	vz__timers_cancel_owner(&lt, &lo);
	vz__timers_fini(&lt);
	timer_heap_fini(&lh);
#ifdef VZ_HAVE_LIBUV
	if (have_libuv)
		for (i = 0; i < n; i++)
			uv_timer_stop(&uvt[i]);
#endif
}

/* ---- variant busy-loop ---------------------------------------------------- */

/* One busy-loop run of `impl` over k timers; fills `lat`. */
static void busy_rep(int impl, uint64_t k, struct vz__timers *t, struct vz__timer_owner *o)
{
	uint64_t t_arm, i;

	bench_hist_reset(lat);
	early = 0;
	fired = 0;
	if (impl == IMPL_VELOZ) {
		t_arm = bench_now_ns();
		for (i = 0; i < k; i++)
			vz__timers_arm(t, o, t_arm, delays_ns[i], 0, i, &handles[i]);
		while (fired < k) {
			loop_now = bench_now_ns();
			vz__timers_expire(t, loop_now, veloz_fire, lat);
		}
	} else if (impl == IMPL_CLASSIC) {
		t_arm = bench_now_ns();
		for (i = 0; i < k; i++) {
			intended[i] = t_arm + delays_ns[i];
			timer_heap_push(&th, intended[i], &ctasks[i], &handles[i]);
		}
		while (fired < k) {
			loop_now = bench_now_ns();
			classic_expire(loop_now, true);
		}
	} else {
#ifdef VZ_HAVE_LIBUV
		uv_handles(k);
		uv_update_time(&uvloop);
		t_arm = bench_now_ns();
		uv_timed = true;
		for (i = 0; i < k; i++) {
			intended[i] = t_arm + delays_ns[i];
			uv_timer_start(&uvt[i], uv_fire, delays_ns[i] / MS, 0);
		}
		while (fired < k) {
			loop_now = bench_now_ns();
			uv_run(&uvloop, UV_RUN_NOWAIT);
		}
		uv_timed = false;
#endif
	}
}

static void variant_busy(const char *variant, uint64_t tick_ns, bool others)
{
	uint64_t k = bench_size(200000, 5000);
	struct bench_lat l[NIMPL];
	struct bench_series early_s[NIMPL];
	struct vz__timers bt;
	struct vz__timer_owner bo;
	int rep, impl;

	if (!bench_variant_enabled(variant))
		return;
	if (bench_opts.quick)
		make_inputs(k, 20 * MS, 70 * MS, true);
	else
		make_inputs(k, 100 * MS, 1100 * MS, true);
	if (vz__timers_init(&bt, tick_ns, bench_now_ns()) != 0)
		abort();
	vz__timer_owner_init(&bo, 1);
	fire_table = &bt;
	for (impl = 0; impl < NIMPL; impl++) {
		bench_lat_init(&l[impl], "timers", variant, impl_name[impl], "lateness", "ns");
		bench_series_init(&early_s[impl], "timers", variant, impl_name[impl], "early_fires",
				  "count");
	}
	for (rep = -1; rep < bench_opts.reps; rep++)
		for (impl = 0; impl < NIMPL; impl++) {
			if (impl != IMPL_VELOZ && (!others || (impl == IMPL_LIBUV && !have_libuv)))
				continue;
			busy_rep(impl, k, &bt, &bo);
			if (rep < 0)
				continue;
			bench_lat_add(&l[impl], lat);
			bench_series_add(&early_s[impl], (double)early);
			if (impl == IMPL_VELOZ && early) {
				fprintf(stderr, "timers: veloz fired %llu timers early\n",
					(unsigned long long)early);
				exit(1);
			}
		}
	for (impl = 0; impl < NIMPL; impl++) {
		if (!l[impl].p50.n)
			continue;
		bench_lat_emit(&l[impl]);
		bench_emit_series(&early_s[impl]);
	}
	vz__timers_fini(&bt);
	fire_table = &vt;
}

/* ---- variant busy-shard ------------------------------------------------- */

enum { BS_FLOOD = VZ_MSG_USER, BS_GO };

#define BS_DEPTH 64 /* self-sends in flight: a full batch per run */

static const uint64_t bs_delays[3] = {50000, 200000, MS};

struct bs_run {
	struct bench_hist *h; /* written by the shard thread until `done` */
	uint64_t n, armed, early;
	_Atomic int done;
};

static struct bs_run bs;

static void bs_flood_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	(void)m;
	/* refused only once the runtime stops */
	(void)vz_send(self, vz_self(self), BS_FLOOD, NULL, 0);
}

static const vz_actor_spec bs_flood_spec = {.name = "flood", .receive = bs_flood_receive};

static void bs_arm(vz_actor *self)
{
	if (vz_timer_arm(self, bs_delays[bs.armed % 3], 0, 0, NULL) != 0)
		abort();
	bs.armed++;
}

static void bs_timed_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_timer_event ev;
	uint64_t now;

	(void)state;
	if (vz_msg_type(m) == BS_GO) {
		bs_arm(self);
		return;
	}
	if (vz_msg_type(m) != VZ_MSG_TIMER)
		return;
	now = bench_now_ns();
	memcpy(&ev, vz_msg_data(m), sizeof ev);
	if (now < ev.deadline_ns) {
		bs.early++;
		bench_hist_record(bs.h, 0);
	} else {
		bench_hist_record(bs.h, now - ev.deadline_ns);
	}
	if (bs.armed < bs.n) {
		bs_arm(self);
		return;
	}
	/* Release: pairs with the main thread's acquire wait; the histogram
	 * is complete. */
	atomic_store_explicit(&bs.done, 1, memory_order_release);
}

static const vz_actor_spec bs_timed_spec = {.name = "timed", .receive = bs_timed_receive};

/* One repetition: a fresh runtime, the flood, n timers. Fills bs.h. */
static bool bs_rep(vz_backend_kind be, bool budget, uint64_t n, bool flood)
{
	struct bench_rt_opts o = {.backend = be,
				  .nshards = 1,
				  .cpu = {bench_ncpus() > 1 ? 1 : 0},
				  .quiet = true,
				  .no_turn_budget = !budget};
	vz_runtime *rt;
	vz_ref f, t;
	bool ok;

	bench_hist_reset(bs.h);
	bs.n = n;
	bs.armed = 0;
	bs.early = 0;
	atomic_store_explicit(&bs.done, 0, memory_order_relaxed);
	if (bench_rt_create(&o, &rt) < 0)
		return false;
	if (vz_spawn(rt, 0, &bs_flood_spec, NULL, &f) < 0 ||
	    vz_spawn(rt, 0, &bs_timed_spec, NULL, &t) < 0 || bench_rt_start(rt) < 0) {
		bench_rt_destroy(rt);
		return false;
	}
	for (int i = 0; flood && i < BS_DEPTH; i++)
		vz_post(rt, f, BS_FLOOD, NULL, 0);
	vz_post(rt, t, BS_GO, NULL, 0);
	ok = bench_wait_flag(&bs.done, 60.0);
	bench_rt_destroy(rt);
	if (!ok)
		fprintf(stderr, "timers: busy-shard: the timers did not finish\n");
	return ok;
}

static void variant_busy_shard(void)
{
	uint64_t n = bench_size(600, 150);

	bs.h = bench_hist_create();
	if (!bs.h)
		abort();
	for (int b = 0; b < 2; b++) {
		vz_backend_kind be = bench_backends[b];
		char v[2][64];
		struct bench_lat l[2];
		struct bench_series early_s[2];

		snprintf(v[0], sizeof v[0], "busy-shard-%s", bench_backend_name(be));
		snprintf(v[1], sizeof v[1], "busy-shard-%s-nobudget", bench_backend_name(be));
		if (!bench_variant_enabled(v[0]) && !bench_variant_enabled(v[1]))
			continue;
		if (!bench_rt_backend_ok(be))
			continue;
		for (int k = 0; k < 2; k++) {
			bench_lat_init(&l[k], "timers", v[k], "veloz", "lateness", "ns");
			bench_series_init(&early_s[k], "timers", v[k], "veloz", "early_fires",
					  "count");
		}
		/* budget on, budget off, alternating, after one warm-up pair */
		for (int rep = -1; rep < bench_opts.reps; rep++)
			for (int k = 0; k < 2; k++) {
				if (!bs_rep(be, k == 0, n, true))
					exit(1);
				if (bs.early) {
					fprintf(stderr, "timers: %s fired %llu timers early\n",
						v[k], (unsigned long long)bs.early);
					exit(1);
				}
				if (rep < 0)
					continue;
				bench_lat_add(&l[k], bs.h);
				bench_series_add(&early_s[k], (double)bs.early);
			}
		for (int k = 0; k < 2; k++) {
			bench_lat_emit(&l[k]);
			bench_emit_series(&early_s[k]);
		}
	}
	bench_hist_destroy(bs.h);
}

/* ---- variant idle-shard ------------------------------------------------- */

static void variant_idle_shard(void)
{
	uint64_t n = bench_size(600, 150);

	bs.h = bench_hist_create();
	if (!bs.h)
		abort();
	for (int b = 0; b < 2; b++) {
		vz_backend_kind be = bench_backends[b];
		char v[64];
		struct bench_lat l;
		struct bench_series early_s;

		snprintf(v, sizeof v, "idle-shard-%s", bench_backend_name(be));
		if (!bench_variant_enabled(v) || !bench_rt_backend_ok(be))
			continue;
		bench_lat_init(&l, "timers", v, "veloz", "lateness", "ns");
		bench_series_init(&early_s, "timers", v, "veloz", "early_fires", "count");
		for (int rep = -1; rep < bench_opts.reps; rep++) {
			if (!bs_rep(be, true, n, false))
				exit(1);
			if (bs.early) {
				fprintf(stderr, "timers: %s fired %llu timers early\n", v,
					(unsigned long long)bs.early);
				exit(1);
			}
			if (rep < 0)
				continue;
			bench_lat_add(&l, bs.h);
			bench_series_add(&early_s, (double)bs.early);
		}
		bench_lat_emit(&l);
		bench_emit_series(&early_s);
	}
	bench_hist_destroy(bs.h);
}

int main(int argc, char **argv)
{
	uint64_t nmax;

	bench_init(argc, argv, "timers");
	bench_pin(0, "main (all implementations)");
#ifdef VZ_HAVE_LIBUV
	have_libuv = uv_loop_init(&uvloop) == 0;
	uvt_cap = bench_size(10000000, 100000);
	uvt = malloc(uvt_cap * sizeof *uvt); /* pages are touched only when used */
	if (!uvt)
		have_libuv = false;
#endif
	if (!have_libuv)
		bench_skip("libuv", "not installed");
	check_heap();
	nmax = bench_size(1000000, 100000);
	delays_ns = malloc(nmax * sizeof *delays_ns);
	cancel_order = malloc(nmax * sizeof *cancel_order);
	handles = malloc(nmax * sizeof *handles);
	intended = malloc(nmax * sizeof *intended);
	ctasks = malloc(nmax * sizeof *ctasks);
	for (uint64_t i = 0; ctasks && i < nmax; i++)
		ctasks[i] = (struct ctask){.fn = classic_task, .index = i};
	lat = bench_hist_create();
	sim_now = bench_now_ns();
	if (!delays_ns || !cancel_order || !handles || !intended || !ctasks || !lat ||
	    vz__timers_init(&vt, MS, sim_now) != 0 || timer_heap_init(&th, 0) != 0) {
		fprintf(stderr, "timers: out of memory\n");
		return 1;
	}
	vz__timer_owner_init(&vowner, 1);
	fprintf(stderr, "timers: veloz wheel tick 1 ms, %u levels, range %.0f days\n",
		vt.wheel.nlevels, (double)vt.wheel.range * 1e-3 / 86400.0);

	variant_pending();
	/* Real-clock variants: the table's wheel must start at the real now. */
	vz__timers_fini(&vt);
	vz__timers_init(&vt, MS, bench_now_ns());
	variant_all_due();
	variant_lookup(1000, "lookup-1k");
	variant_lookup(100000, "lookup-100k");
	if (!bench_opts.quick) {
		variant_lookup(1000000, "lookup-1M");
		variant_lookup(10000000, "lookup-10M");
	}
	variant_busy("busy-loop", MS, true);
	variant_busy("busy-loop-tick10us", 10000, false);
	variant_busy_shard();
	variant_idle_shard();

	vz__timers_fini(&vt);
	timer_heap_fini(&th);
#ifdef VZ_HAVE_LIBUV
	if (have_libuv) {
		for (uint64_t i = 0; i < nuvt; i++)
			uv_close((uv_handle_t *)&uvt[i], NULL);
		uv_run(&uvloop, UV_RUN_DEFAULT);
		uv_loop_close(&uvloop);
		free(uvt);
	}
#endif
	bench_hist_destroy(lat);
	free(delays_ns);
	free(cancel_order);
	free(handles);
	free(intended);
	free(ctasks);
	return 0;
}
