// SPDX-License-Identifier: MIT
/*
 * Self-test of the benchmark harness: histogram bucketing and percentiles
 * against exactly known distributions, series medians and pair ratios, and
 * the side-by-side runner's alternation. Exits 0 when every check holds,
 * 1 otherwise (printing each failed check). Run by `bench/run selftest` and
 * usable as a quick sanity check after touching bench/lib.
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "selftest: %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

/* Relative error of a reported value against the true one. */
static double rel(uint64_t got, uint64_t want)
{
	return want ? fabs((double)got - (double)want) / (double)want : (double)got;
}

static void test_hist(void)
{
	struct bench_hist *h = bench_hist_create();

	/* Exact region. */
	for (uint64_t v = 1; v <= 1000; v++)
		bench_hist_record(h, v);
	CHECK(h->count == 1000);
	CHECK(bench_hist_percentile(h, 50) == 500);
	CHECK(bench_hist_percentile(h, 99) == 990);
	CHECK(bench_hist_percentile(h, 99.9) == 999);
	CHECK(bench_hist_percentile(h, 100) == 1000);
	CHECK(h->min == 1 && h->max == 1000);

	/* Every index round-trips: bucket_high(index(v)) >= v within 0.1%. */
	for (uint64_t v = 1; v < ((uint64_t)1 << 40); v = v * 3 / 2 + 1) {
		unsigned i = bench_hist_index(v);
		uint64_t hi = bench_hist_bucket_high(i);

		CHECK(i < BENCH_HIST_BUCKETS);
		CHECK(hi >= v);
		CHECK(rel(hi, v) < 0.001);
		if (i > 0)
			CHECK(bench_hist_bucket_high(i - 1) < v);
	}
	/* Huge values clamp into the last bucket; max stays exact. */
	CHECK(bench_hist_index(UINT64_MAX) == BENCH_HIST_BUCKETS - 1);

	/* Log-spread distribution: percentiles within 0.1% of the exact ones. */
	bench_hist_reset(h);
	for (uint64_t i = 1; i <= 100000; i++)
		bench_hist_record(h, i * 997);
	CHECK(rel(bench_hist_percentile(h, 50), 50000 * 997) < 0.001);
	CHECK(rel(bench_hist_percentile(h, 90), 90000 * 997) < 0.001);
	CHECK(rel(bench_hist_percentile(h, 99.9), 99900 * 997) < 0.001);
	CHECK(h->max == 100000 * 997);

	/* Merge adds counts and keeps extremes. */
	{
		struct bench_hist *g = bench_hist_create();

		bench_hist_record(g, 5);
		bench_hist_record(g, 1u << 30);
		bench_hist_merge(g, h);
		CHECK(g->count == 100002);
		CHECK(g->min == 5 && g->max == (1u << 30));
		bench_hist_destroy(g);
	}
	bench_hist_destroy(h);
}

static void test_series(void)
{
	struct bench_series a, b;
	static const double av[] = {10, 30, 20, 50, 40};
	static const double bv[] = {5, 10, 10, 25, 10};

	bench_series_init(&a, "t", "", "a", "throughput", "msg/s");
	bench_series_init(&b, "t", "", "b", "throughput", "msg/s");
	for (int i = 0; i < 5; i++) {
		bench_series_add(&a, av[i]);
		bench_series_add(&b, bv[i]);
	}
	CHECK(bench_series_median(&a) == 30);
	CHECK(bench_series_min(&a) == 10 && bench_series_max(&a) == 50);
	/* ratios 2, 3, 2, 2, 4 -> median 2 (not 30/10 = 3, the ratio of medians) */
	CHECK(bench_pair_ratio(&a, &b) == 2);
	bench_series_add(&b, 7);
	CHECK(bench_series_median(&b) == 10);
	bench_series_init(&b, "t", "", "b", "throughput", "msg/s");
	bench_series_add(&b, 1);
	bench_series_add(&b, 4);
	CHECK(bench_series_median(&b) == 2.5);
}

static int order[32], norder;

static int rep_a(void *ctx, int rep, double *v)
{
	(void)ctx;
	if (rep >= 0 && norder < 32)
		order[norder++] = 0;
	*v = 100 + rep;
	return 0;
}

static int rep_b(void *ctx, int rep, double *v)
{
	int *calls = ctx;

	if (rep >= 0 && norder < 32)
		order[norder++] = 1;
	*v = 50;
	return ++*calls > 3 ? -1 : 0; /* fails on its 4th call */
}

static void test_runner(void)
{
	int calls = 0;
	struct bench_impl im[2] = {
	    {.impl = "a", .fn = rep_a},
	    {.impl = "b", .fn = rep_b, .ctx = &calls},
	};
	int ok = bench_run_side_by_side(im, 2, 5, true, "t", "", "throughput", "x");

	/* Warm-up is call 1 of b; reps 0 and 1 succeed; rep 2 fails. */
	CHECK(ok == 1);
	CHECK(im[0].s.n == 5 && im[1].s.n == 2);
	CHECK(im[1].failed);
	CHECK(norder == 8); /* a b a b a b(failed) a a */
	CHECK(order[0] == 0 && order[1] == 1 && order[2] == 0 && order[3] == 1);
	CHECK(bench_series_median(&im[0].s) == 102);
}

/* The JSON line: exact keys and order, numbers that parse back. */
static void test_json(void)
{
	static const double vals[] = {19400000.0, 0.000962, 2314240.5, 1.5e-07, 1e20, 0};
	static const char prefix[] = "{\"bench\":\"t\",\"variant\":\"v\\\"q\",\"impl\":\"impl\","
				     "\"metric\":\"metric\",\"value\":";
	char line[512];
	FILE *f = tmpfile();

	CHECK(f != NULL);
	if (!f)
		return;
	bench_output_to(f);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		bench_emit("t", "v\"q", "impl", "metric", vals[i], "ns", 5, vals[i], vals[i]);
	bench_output_to(NULL);
	rewind(f);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char *p;
		double v;

		CHECK(fgets(line, sizeof(line), f) != NULL);
		CHECK(!strncmp(line, prefix, strlen(prefix)));
		p = strstr(line, "\"value\":");
		CHECK(p != NULL);
		if (!p)
			continue;
		v = strtod(p + 8, &p);
		CHECK(*p == ','); /* a number JSON accepts ends here: no "e+06.0" */
		CHECK(v == vals[i] || fabs(v - vals[i]) <= 1e-5 * fabs(vals[i]));
		CHECK(strstr(line, ",\"unit\":\"ns\",\"reps\":5,\"min\":") != NULL);
		CHECK(line[strlen(line) - 2] == '}');
	}
	fclose(f);
}

static void test_limit(void)
{
	struct bench_hist *h = bench_hist_create();
	double rtt = bench_limit_pingpong(0, 1, 20000, h);

	CHECK(rtt > 0);
	CHECK(h->count == 20000);
	fprintf(stderr, "selftest: cache-line round trip %.1f ns (mean)\n", rtt);
	bench_hist_print(h, "cache-line rtt", "ns");
	bench_hist_destroy(h);
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, "selftest");
	test_hist();
	test_series();
	test_runner();
	test_json();
	test_limit();
	fprintf(stderr, "selftest: %s (%d failed checks)\n", failures ? "FAILED" : "ok", failures);
	return failures ? 1 : 0;
}
