/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness shared by every program in bench/: a monotonic
 * clock, command-line parsing (--quick, --reps N, --variant NAME), thread
 * pinning that prints the placement, a one-time description of the machine,
 * a log-linear latency histogram, a side-by-side runner that alternates
 * implementations (A B A B ...) and reduces per-repetition values to
 * median / min / max / median of per-pair ratios, and the output contract of
 * BENCH.md: one JSON object per line on stdout, a human table on stderr.
 * It also measures the physical limit: a cache line bounced between two
 * pinned threads.
 *
 * Everything here is for benchmark programs only: single-threaded use of the
 * reporting functions (call them from the main thread), no allocation on any
 * recording path.
 */
#ifndef VZ_BENCH_H
#define VZ_BENCH_H

#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* ---- clock ------------------------------------------------------------ */

/* Monotonic time in ns (CLOCK_MONOTONIC, vDSO, ~20 ns). Any thread. */
static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system) in ns of the calling thread / the whole process. */
uint64_t bench_thread_cpu_ns(void);
uint64_t bench_process_cpu_ns(void);

/* Resident set size of the process in bytes (from /proc/self/statm), 0 when
 * unreadable. */
uint64_t bench_rss_bytes(void);
/* Bytes currently allocated through malloc (mallinfo2 uordblks + hblkhd). */
uint64_t bench_malloc_bytes(void);

/* Sleep for ns nanoseconds (nanosleep, restarted on EINTR). */
void bench_sleep_ns(uint64_t ns);

/* Compiler barrier that keeps `p`'s pointee alive and written. */
static inline void bench_clobber(void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

/* Spin-wait hint. */
static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* ---- command line ----------------------------------------------------- */

#define BENCH_MAX_REPS 101

struct bench_opts {
	bool quick;	     /* --quick: small sizes, few reps (CI) */
	int reps;	     /* --reps N (default 5 in both modes; BENCH.md wants >= 5) */
	const char *variant; /* --variant NAME: run only this variant (NULL = all) */
	const char *name;    /* benchmark name, e.g. "post" */
};

extern struct bench_opts bench_opts;

/* Parse argv (--quick, --reps N, --variant NAME, --help) into bench_opts,
 * print the machine description (once per `bench/run`, see
 * bench_machine_print()) and a header line; on a usage error print usage
 * and exit(2). BENCH_QUICK=1 in the environment also selects --quick.
 * Call first, from main. */
void bench_init(int argc, char **argv, const char *name);

/* Pick n for the current mode: `full` normally, `quick` with --quick. */
static inline uint64_t bench_size(uint64_t full, uint64_t quick)
{
	return bench_opts.quick ? quick : full;
}

/* True when `variant` was selected by --variant (or no filter was given). */
bool bench_variant_enabled(const char *variant);

/* printf-style line on stderr, printed only the first time this exact text
 * comes up in the process (placement and setup lines that every
 * repetition would repeat). */
void bench_say_once(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print "<bench>: <what>: skipped, <why>" on stderr (a figure omitted from
 * the JSON output must say why, BENCH.md). */
void bench_skip(const char *what, const char *why);

/* ---- machine and placement -------------------------------------------- */

/* Number of CPUs this process may run on (its affinity mask as captured by
 * bench_init(), before any thread was pinned). */
int bench_ncpus(void);

/* CPU number `i` of that mask, modulo its size (so CPU "1" on a one-CPU
 * machine maps to the only CPU). */
int bench_cpu(int i);

/* Pin the calling thread to CPU bench_cpu(i) and print
 * "placement: <role> -> CPU n" on stderr (the first time for that role and
 * CPU). Returns the CPU or -1 (with a message) when pinning failed. Any
 * thread. */
int bench_pin(int i, const char *role);

/* Widen the calling thread's affinity to all the run's CPUs, saving the
 * current mask in *saved; bench_affinity_restore() puts it back. For calls
 * that check or inherit the caller's mask (creating a runtime whose shards
 * go to other CPUs than the pinned main thread's). */
void bench_affinity_widen(cpu_set_t *saved);
void bench_affinity_restore(const cpu_set_t *saved);

/* Print the machine once on stderr: CPU model, CPUs online/allowed, NUMA
 * nodes, kernel, and the io_uring setup flags this kernel accepts. When the
 * environment variable BENCH_MACHINE_PRINTED is set, print nothing (bench/run
 * prints it once for the whole run). Called by bench_init(). */
void bench_machine_print(void);

/* Print the runtime line once per (backend) value: "runtime: backend=...
 * (reason) io_uring flags: ...". Runtime-based benchmarks call it after
 * creating their runtime. */
void bench_machine_runtime(const char *backend, const char *reason);

/* ---- latency histogram ------------------------------------------------ */

/*
 * Log-linear histogram with 3 significant digits: values below 2048 are
 * exact; above, each power of two is split into 1024 equal buckets
 * (relative error < 0.1%). Values above 2^41 ns (~36 min) are clamped into
 * the last bucket (max stays exact). Fixed memory (~256 KiB), no allocation
 * per sample: allocate it once (static or bench_hist_create()).
 */
#define BENCH_HIST_SUB_BITS  11
#define BENCH_HIST_SUB	     (1u << BENCH_HIST_SUB_BITS) /* 2048 */
#define BENCH_HIST_HALF	     (BENCH_HIST_SUB / 2)
#define BENCH_HIST_MAX_SHIFT 30
#define BENCH_HIST_BUCKETS   ((BENCH_HIST_MAX_SHIFT + 2) * BENCH_HIST_HALF)

struct bench_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	double sum;
	uint64_t counts[BENCH_HIST_BUCKETS];
};

/* Allocate / free a zeroed histogram (one malloc, at setup). */
struct bench_hist *bench_hist_create(void);
void bench_hist_destroy(struct bench_hist *h);
void bench_hist_reset(struct bench_hist *h);

/* Bucket index of v. */
static inline unsigned bench_hist_index(uint64_t v)
{
	unsigned e;

	if (v < BENCH_HIST_SUB)
		return (unsigned)v;
	e = (unsigned)(63 - __builtin_clzll(v)) - (BENCH_HIST_SUB_BITS - 1);
	if (e > BENCH_HIST_MAX_SHIFT)
		return BENCH_HIST_BUCKETS - 1;
	return e * BENCH_HIST_HALF + (unsigned)(v >> e);
}

/* Record one sample. Not thread-safe: one histogram per recording thread. */
static inline void bench_hist_record(struct bench_hist *h, uint64_t v)
{
	h->counts[bench_hist_index(v)]++;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->sum += (double)v;
}

/* Highest value equivalent to bucket idx (what percentiles report). */
uint64_t bench_hist_bucket_high(unsigned idx);

/* Value at percentile p (0..100): the highest equivalent value of the bucket
 * holding the sample of rank ceil(p/100 * count), clamped to max. 0 when
 * empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);

/* Add every sample of src to dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* Print "count p50 p90 p99 p99.9 max" of h on stderr, prefixed by label. */
void bench_hist_print(const struct bench_hist *h, const char *label, const char *unit);

/* ---- series and output ------------------------------------------------ */

/* One figure over repetitions: the per-rep values of (bench, variant,
 * impl, metric). */
struct bench_series {
	const char *bench;
	const char *variant;
	const char *impl;
	const char *metric;
	const char *unit;
	int n;
	double v[BENCH_MAX_REPS];
};

void bench_series_init(struct bench_series *s, const char *bench, const char *variant,
		       const char *impl, const char *metric, const char *unit);
/* Append one repetition's value (ignored beyond BENCH_MAX_REPS). */
void bench_series_add(struct bench_series *s, double v);
double bench_series_median(const struct bench_series *s);
double bench_series_min(const struct bench_series *s);
double bench_series_max(const struct bench_series *s);

/* Median of a[i]/b[i] over the pairs both have (0 when none). */
double bench_pair_ratio(const struct bench_series *a, const struct bench_series *b);

/* Emit one figure: a JSON line on stdout
 *   {"bench":..,"variant":..,"impl":..,"metric":..,"value":..,"unit":..,
 *    "reps":..,"min":..,"max":..}
 * and a row of the human table on stderr. Flushes stdout. */
void bench_emit(const char *bench, const char *variant, const char *impl, const char *metric,
		double value, const char *unit, int reps, double min, double max);

/* Send the JSON lines to f instead of stdout (NULL: back to stdout). For
 * the harness self-test. */
void bench_output_to(FILE *f);

/* Emit a series (median as value, its min and max). Nothing when empty. */
void bench_emit_series(const struct bench_series *s);

/* Emit "ratio_vs_<impl of den>" for num's (bench, variant, impl): the median
 * of per-pair ratios num[i]/den[i], min and max of those ratios. When
 * higher_is_better is false (latencies) the ratio is den/num, so a value > 1
 * always means num is better. Nothing when no pair exists. */
void bench_emit_ratio(const struct bench_series *num, const struct bench_series *den,
		      bool higher_is_better);

/* Percentile series of a latency figure over repetitions: <prefix>_p50,
 * _p90, _p99, _p999, _max (e.g. prefix "rtt"). */
struct bench_lat {
	struct bench_series p50, p90, p99, p999, max;
	uint64_t samples; /* total samples over all reps */
};

void bench_lat_init(struct bench_lat *l, const char *bench, const char *variant, const char *impl,
		    const char *prefix, const char *unit);
/* Add one repetition's histogram (its percentiles become one value each). */
void bench_lat_add(struct bench_lat *l, const struct bench_hist *h);
void bench_lat_emit(const struct bench_lat *l);

/* ---- side-by-side runner ---------------------------------------------- */

/* One repetition of one implementation: measure, store the headline value
 * in *value, return 0; or return a negative number to mark the
 * implementation failed (it is then not run again and prints why itself).
 * rep is 0..reps-1, or -1 for the unrecorded warm-up run. */
typedef int (*bench_rep_fn)(void *ctx, int rep, double *value);

struct bench_impl {
	const char *impl; /* "veloz", "classic", ... */
	bench_rep_fn fn;
	void *ctx;
	struct bench_series s; /* filled by bench_run_side_by_side() */
	bool failed;
};

/* Run `n` implementations alternating (round r runs impls 0..n-1, so two
 * implementations run A B A B ...), for `reps` rounds, after one
 * warm-up round when `warmup`. The headline values land in impls[i].s,
 * which is initialised with (bench, variant, metric, unit). An
 * implementation whose rep function fails is reported on stderr and not run
 * again. Returns the number of implementations that did not fail. */
int bench_run_side_by_side(struct bench_impl *impls, int n, int reps, bool warmup,
			   const char *bench, const char *variant, const char *metric,
			   const char *unit);

/* ---- the physical limit: cache-line ping-pong -------------------------- */

/* Bounce one cache line between two threads pinned to bench_cpu(cpu_a) and
 * bench_cpu(cpu_b) for `rounds` round trips (both spin). Returns the mean
 * round trip in ns (total time / rounds); when h is non-NULL also records
 * each round trip (timed individually) in h. Returns a negative value when a
 * thread could not be created. */
double bench_limit_pingpong(int cpu_a, int cpu_b, uint64_t rounds, struct bench_hist *h);

#endif
