// SPDX-License-Identifier: MIT
/*
 * The benchmark harness (see bench.h): command line, machine description,
 * pinning, series statistics, the JSON-lines + human-table output of
 * BENCH.md, and the side-by-side runner.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <liburing.h>

struct bench_opts bench_opts = {.reps = 5, .name = "?"};

/* ---- clock and resources ---------------------------------------------- */

static uint64_t ts_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread. */
uint64_t bench_thread_cpu_ns(void)
{
	return ts_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* CPU time of every thread of the process, live and exited. */
uint64_t bench_process_cpu_ns(void)
{
	return ts_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* Second field of /proc/self/statm (resident pages) times the page size. */
uint64_t bench_rss_bytes(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Bytes in use by malloc: small-block arena plus mmapped blocks. */
uint64_t bench_malloc_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
}

/* nanosleep restarted until the whole interval passed. */
void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
			      .tv_nsec = (long)(ns % 1000000000u)};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- command line ----------------------------------------------------- */

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--quick] [--reps N] [--variant NAME]\n"
		"  --quick         small sizes (CI); same output format\n"
		"  --reps N        repetitions per implementation (default 5, max %d)\n"
		"  --variant NAME  run only this variant\n",
		argv0, BENCH_MAX_REPS);
}

/* Parse the options shared by every benchmark; exit(2) on misuse. */
void bench_init(int argc, char **argv, const char *name)
{
	bench_opts.name = name;
	bench_ncpus(); /* capture the affinity mask before anything is pinned */
	if (getenv("BENCH_QUICK") && *getenv("BENCH_QUICK") && strcmp(getenv("BENCH_QUICK"), "0"))
		bench_opts.quick = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			bench_opts.quick = true;
		} else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			char *end;
			long r = strtol(argv[++i], &end, 10);

			if (*end || r < 1 || r > BENCH_MAX_REPS) {
				usage(argv[0]);
				exit(2);
			}
			bench_opts.reps = (int)r;
		} else if (!strcmp(argv[i], "--variant") && i + 1 < argc) {
			bench_opts.variant = argv[++i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(argv[0]);
			exit(0);
		} else {
			usage(argv[0]);
			exit(2);
		}
	}
	bench_machine_print();
	fprintf(stderr, "== %s%s, %d reps ==\n", name, bench_opts.quick ? " (quick)" : "",
		bench_opts.reps);
}

/* No filter, or the filter names this variant. */
bool bench_variant_enabled(const char *variant)
{
	return !bench_opts.variant || !strcmp(bench_opts.variant, variant);
}

void bench_say_once(const char *fmt, ...)
{
	static char said[64][160];
	static int nsaid;
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	char line[160];
	bool seen = false;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&lock);
	for (int i = 0; i < nsaid && !seen; i++)
		seen = !strcmp(said[i], line);
	if (!seen && nsaid < 64)
		snprintf(said[nsaid++], sizeof(said[0]), "%s", line);
	pthread_mutex_unlock(&lock);
	if (!seen)
		fprintf(stderr, "%s\n", line);
}

/* Say on stderr why a figure is missing. */
void bench_skip(const char *what, const char *why)
{
	fprintf(stderr, "%s: %s: skipped, %s\n", bench_opts.name, what, why);
}

/* ---- machine and placement -------------------------------------------- */

/* The process's affinity mask as it was before any bench_pin(): pinning
 * the main thread narrows what sched_getaffinity() reports afterwards, but
 * placement must keep referring to the CPUs the run was given. Captured by
 * bench_init() (or the first use). */
static cpu_set_t original_mask;
static int original_count;
static pthread_once_t original_once = PTHREAD_ONCE_INIT;

static void capture_mask(void)
{
	CPU_ZERO(&original_mask);
	if (sched_getaffinity(0, sizeof(original_mask), &original_mask) == 0)
		original_count = CPU_COUNT(&original_mask);
}

static int affinity_cpus(cpu_set_t *set)
{
	pthread_once(&original_once, capture_mask);
	*set = original_mask;
	return original_count > 0 ? original_count : -1;
}

/* Size of the affinity mask (at least 1). */
int bench_ncpus(void)
{
	cpu_set_t set;
	int n = affinity_cpus(&set);

	return n > 0 ? n : 1;
}

/* The i-th allowed CPU, wrapping around the allowed set. */
int bench_cpu(int i)
{
	cpu_set_t set;
	int n = affinity_cpus(&set), k;

	if (n <= 0)
		return i;
	k = i % n;
	for (int c = 0; c < CPU_SETSIZE; c++) {
		if (CPU_ISSET(c, &set) && k-- == 0)
			return c;
	}
	return 0;
}

/* Pin the calling thread and say where (once per role and CPU, so
 * repetitions do not repeat the placement lines). */
int bench_pin(int i, const char *role)
{
	static struct {
		char role[48];
		int cpu;
	} said[32];
	static int nsaid;
	static pthread_mutex_t said_lock = PTHREAD_MUTEX_INITIALIZER;
	cpu_set_t set;
	int cpu = bench_cpu(i), rc;
	bool quiet = false;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc != 0) {
		fprintf(stderr, "placement: %s -> pin to CPU %d failed: %s\n", role, cpu,
			strerror(rc));
		return -1;
	}
	pthread_mutex_lock(&said_lock);
	for (int k = 0; k < nsaid; k++)
		quiet |= said[k].cpu == cpu && !strcmp(said[k].role, role);
	if (!quiet && nsaid < 32) {
		snprintf(said[nsaid].role, sizeof(said[0].role), "%s", role);
		said[nsaid++].cpu = cpu;
	}
	pthread_mutex_unlock(&said_lock);
	if (!quiet)
		fprintf(stderr, "placement: %s -> CPU %d\n", role, cpu);
	return cpu;
}

void bench_affinity_widen(cpu_set_t *saved)
{
	cpu_set_t all;

	affinity_cpus(&all);
	pthread_getaffinity_np(pthread_self(), sizeof(*saved), saved);
	pthread_setaffinity_np(pthread_self(), sizeof(all), &all);
}

void bench_affinity_restore(const cpu_set_t *saved)
{
	pthread_setaffinity_np(pthread_self(), sizeof(*saved), saved);
}

static void cpu_model(char *buf, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) != 0 || !colon)
			continue;
		colon++;
		while (*colon == ' ' || *colon == '\t')
			colon++;
		colon[strcspn(colon, "\n")] = 0;
		snprintf(buf, len, "%s", colon);
		break;
	}
	fclose(f);
}

static int numa_nodes(void)
{
	DIR *d = opendir("/sys/devices/system/node");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 1;
	while ((e = readdir(d))) {
		if (!strncmp(e->d_name, "node", 4) && e->d_name[4] >= '0' && e->d_name[4] <= '9')
			n++;
	}
	closedir(d);
	return n ? n : 1;
}

/* Which io_uring setup flags the kernel accepts: try each on a tiny ring. */
static void uring_flags(char *buf, size_t len)
{
	static const struct {
		unsigned flags;
		const char *name;
	} probes[] = {
#ifdef IORING_SETUP_SINGLE_ISSUER
		{IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
#endif
#if defined(IORING_SETUP_DEFER_TASKRUN) && defined(IORING_SETUP_SINGLE_ISSUER)
		{IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
#endif
#ifdef IORING_SETUP_COOP_TASKRUN
		{IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
#endif
#ifdef IORING_SETUP_TASKRUN_FLAG
		{IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
#endif
	};
	size_t off = 0;
	struct io_uring ring;

	buf[0] = 0;
	if (io_uring_queue_init(2, &ring, 0) < 0) {
		snprintf(buf, len, "io_uring unavailable");
		return;
	}
	io_uring_queue_exit(&ring);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof(p));
		p.flags = probes[i].flags;
		if (io_uring_queue_init_params(2, &ring, &p) < 0)
			continue;
		io_uring_queue_exit(&ring);
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0, "%s%s",
					off ? "," : "", probes[i].name);
	}
	if (!buf[0])
		snprintf(buf, len, "none of SINGLE_ISSUER/DEFER_TASKRUN/COOP_TASKRUN");
}

/* The machine, once per bench/run (BENCH_MACHINE_PRINTED suppresses it). */
void bench_machine_print(void)
{
	char model[256], flags[256];
	struct utsname u;

	if (getenv("BENCH_MACHINE_PRINTED"))
		return;
	cpu_model(model, sizeof(model));
	uring_flags(flags, sizeof(flags));
	if (uname(&u) != 0)
		snprintf(u.release, sizeof(u.release), "?");
	fprintf(stderr,
		"machine: %s; %ld CPUs online, %d allowed; %d NUMA node(s); kernel %s %s\n"
		"machine: io_uring setup flags accepted: %s\n",
		model, sysconf(_SC_NPROCESSORS_ONLN), bench_ncpus(), numa_nodes(), u.sysname,
		u.release, flags);
}

/* The runtime line, once per distinct backend in this process. */
void bench_machine_runtime(const char *backend, const char *reason)
{
	static char printed[4][32];

	for (int i = 0; i < 4; i++) {
		if (!strcmp(printed[i], backend))
			return;
		if (!printed[i][0]) {
			snprintf(printed[i], sizeof(printed[i]), "%s", backend);
			break;
		}
	}
	fprintf(stderr, "runtime: backend=%s%s%s%s\n", backend,
		reason && *reason ? " (fallback: " : "", reason && *reason ? reason : "",
		reason && *reason ? ")" : "");
}

/* ---- series ----------------------------------------------------------- */

void bench_series_init(struct bench_series *s, const char *bench, const char *variant,
		       const char *impl, const char *metric, const char *unit)
{
	memset(s, 0, sizeof(*s));
	s->bench = bench;
	s->variant = variant ? variant : "";
	s->impl = impl;
	s->metric = metric;
	s->unit = unit;
}

void bench_series_add(struct bench_series *s, double v)
{
	if (s->n < BENCH_MAX_REPS)
		s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_of(const double *v, int n)
{
	double t[BENCH_MAX_REPS];

	if (n <= 0)
		return 0;
	memcpy(t, v, (size_t)n * sizeof(double));
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

double bench_series_median(const struct bench_series *s)
{
	return median_of(s->v, s->n);
}

double bench_series_min(const struct bench_series *s)
{
	double m = s->n ? s->v[0] : 0;

	for (int i = 1; i < s->n; i++)
		if (s->v[i] < m)
			m = s->v[i];
	return m;
}

double bench_series_max(const struct bench_series *s)
{
	double m = s->n ? s->v[0] : 0;

	for (int i = 1; i < s->n; i++)
		if (s->v[i] > m)
			m = s->v[i];
	return m;
}

static int pair_ratios(const struct bench_series *a, const struct bench_series *b, double *r,
		       bool higher_is_better)
{
	int n = a->n < b->n ? a->n : b->n, k = 0;

	for (int i = 0; i < n; i++) {
		double num = higher_is_better ? a->v[i] : b->v[i];
		double den = higher_is_better ? b->v[i] : a->v[i];

		if (den > 0)
			r[k++] = num / den;
	}
	return k;
}

double bench_pair_ratio(const struct bench_series *a, const struct bench_series *b)
{
	double r[BENCH_MAX_REPS];

	return median_of(r, pair_ratios(a, b, r, true));
}

/* ---- output ----------------------------------------------------------- */

static FILE *json_out; /* NULL = stdout */
#define OUT (json_out ? json_out : stdout)

static void fputc_json(int c)
{
	fputc(c, OUT);
}

void bench_output_to(FILE *f)
{
	json_out = f;
}

static void json_str(const char *s)
{
	fputc_json('"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(OUT, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(OUT, "\\u%04x", *s);
		else
			fputc_json(*s);
	}
	fputc_json('"');
}

static void json_num(double v)
{
	/* JSON has no inf/nan: clamp them to 0 (never expected). */
	if (v != v || v > 1e300 || v < -1e300)
		v = 0;
	/* Whole numbers print whole ("19400000.0"), the rest with 6
	 * significant digits ("0.000962", "1.5e-07"); both are JSON. */
	if (v == (double)(long long)v && v < 1e15 && v > -1e15)
		fprintf(OUT, "%.1f", v);
	else
		fprintf(OUT, "%.6g", v);
}

static void human(double v, char *buf, size_t len)
{
	double a = v < 0 ? -v : v;

	if (a >= 1e9)
		snprintf(buf, len, "%.3gG", v / 1e9);
	else if (a >= 1e6)
		snprintf(buf, len, "%.3gM", v / 1e6);
	else if (a >= 1e4)
		snprintf(buf, len, "%.3gk", v / 1e3);
	else
		snprintf(buf, len, "%.4g", v);
}

void bench_emit(const char *bench, const char *variant, const char *impl, const char *metric,
		double value, const char *unit, int reps, double min, double max)
{
	char hv[32], hmin[32], hmax[32];

	fprintf(OUT, "{\"bench\":");
	json_str(bench);
	fprintf(OUT, ",\"variant\":");
	json_str(variant ? variant : "");
	fprintf(OUT, ",\"impl\":");
	json_str(impl);
	fprintf(OUT, ",\"metric\":");
	json_str(metric);
	fprintf(OUT, ",\"value\":");
	json_num(value);
	fprintf(OUT, ",\"unit\":");
	json_str(unit);
	fprintf(OUT, ",\"reps\":%d,\"min\":", reps);
	json_num(min);
	fprintf(OUT, ",\"max\":");
	json_num(max);
	fprintf(OUT, "}\n");
	fflush(OUT);

	human(value, hv, sizeof(hv));
	human(min, hmin, sizeof(hmin));
	human(max, hmax, sizeof(hmax));
	fprintf(stderr, "| %-9s | %-14s | %-8s | %-18s | %9s | %9s - %-9s | %-7s | %2d |\n", bench,
		variant ? variant : "", impl, metric, hv, hmin, hmax, unit, reps);
}

void bench_emit_series(const struct bench_series *s)
{
	if (s->n == 0)
		return;
	bench_emit(s->bench, s->variant, s->impl, s->metric, bench_series_median(s), s->unit, s->n,
		   bench_series_min(s), bench_series_max(s));
}

void bench_emit_ratio(const struct bench_series *num, const struct bench_series *den,
		      bool higher_is_better)
{
	double r[BENCH_MAX_REPS], lo, hi;
	char metric[64];
	int k = pair_ratios(num, den, r, higher_is_better);

	if (k == 0)
		return;
	lo = hi = r[0];
	for (int i = 1; i < k; i++) {
		lo = r[i] < lo ? r[i] : lo;
		hi = r[i] > hi ? r[i] : hi;
	}
	snprintf(metric, sizeof(metric), "ratio_vs_%s", den->impl);
	bench_emit(num->bench, num->variant, num->impl, metric, median_of(r, k), "x", k, lo, hi);
}

void bench_lat_init(struct bench_lat *l, const char *bench, const char *variant, const char *impl,
		    const char *prefix, const char *unit)
{
	/* Metric names must outlive the series: keep a small static pool. */
	static char names[64][32];
	static int used;
	static const char *const suffix[5] = {"p50", "p90", "p99", "p999", "max"};
	struct bench_series *s[5] = {&l->p50, &l->p90, &l->p99, &l->p999, &l->max};

	for (int i = 0; i < 5; i++) {
		const char *m = names[used % 64];

		snprintf(names[used % 64], sizeof(names[0]), "%s_%s", prefix, suffix[i]);
		used++;
		bench_series_init(s[i], bench, variant, impl, m, unit);
	}
	l->samples = 0;
}

void bench_lat_add(struct bench_lat *l, const struct bench_hist *h)
{
	if (h->count == 0)
		return;
	bench_series_add(&l->p50, (double)bench_hist_percentile(h, 50.0));
	bench_series_add(&l->p90, (double)bench_hist_percentile(h, 90.0));
	bench_series_add(&l->p99, (double)bench_hist_percentile(h, 99.0));
	bench_series_add(&l->p999, (double)bench_hist_percentile(h, 99.9));
	bench_series_add(&l->max, (double)h->max);
	l->samples += h->count;
}

void bench_lat_emit(const struct bench_lat *l)
{
	bench_emit_series(&l->p50);
	bench_emit_series(&l->p90);
	bench_emit_series(&l->p99);
	bench_emit_series(&l->p999);
	bench_emit_series(&l->max);
}

/* ---- side-by-side runner ---------------------------------------------- */

static void run_one(struct bench_impl *im, int rep)
{
	double v = 0;
	int rc;

	if (im->failed)
		return;
	rc = im->fn(im->ctx, rep, &v);
	if (rc < 0) {
		fprintf(stderr, "%s: %s failed (rep %d), dropped from the comparison\n",
			bench_opts.name, im->impl, rep);
		im->failed = true;
		return;
	}
	if (rep >= 0)
		bench_series_add(&im->s, v);
}

int bench_run_side_by_side(struct bench_impl *impls, int n, int reps, bool warmup,
			   const char *bench, const char *variant, const char *metric,
			   const char *unit)
{
	int ok = 0;

	for (int i = 0; i < n; i++) {
		bench_series_init(&impls[i].s, bench, variant, impls[i].impl, metric, unit);
		impls[i].failed = false;
	}
	if (warmup) {
		for (int i = 0; i < n; i++)
			run_one(&impls[i], -1);
	}
	for (int r = 0; r < reps; r++) {
		for (int k = 0; k < n; k++)
			run_one(&impls[k], r);
	}
	for (int i = 0; i < n; i++)
		ok += !impls[i].failed;
	return ok;
}
