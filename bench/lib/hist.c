// SPDX-License-Identifier: MIT
/*
 * Log-linear latency histogram (see bench.h): exact below 2048, then 1024
 * buckets per power of two, so every reported value is within 0.1% of the
 * sample it stands for (3 significant digits). Recording is inline in
 * bench.h; this file holds the reductions (percentiles, merge, print).
 */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One zeroed histogram; aborts the benchmark when memory is short (setup
 * time only, never on a recording path). */
struct bench_hist *bench_hist_create(void)
{
	struct bench_hist *h = calloc(1, sizeof(*h));

	if (!h) {
		fprintf(stderr, "bench: out of memory for a histogram\n");
		exit(1);
	}
	return h;
}

/* Free a histogram from bench_hist_create(); NULL is fine. */
void bench_hist_destroy(struct bench_hist *h)
{
	free(h);
}

/* Forget every sample. */
void bench_hist_reset(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
}

/* Highest value that maps to bucket idx: idx itself in the exact range,
 * else ((m + 1) << e) - 1 for mantissa m and shift e. */
uint64_t bench_hist_bucket_high(unsigned idx)
{
	unsigned e, m;

	if (idx < BENCH_HIST_SUB)
		return idx;
	e = idx / BENCH_HIST_HALF - 1;
	m = idx - e * BENCH_HIST_HALF; /* in [1024, 2047] */
	return (((uint64_t)m + 1) << e) - 1;
}

/* Rank-based percentile: the sample of rank ceil(p% * count) (at least 1),
 * reported as its bucket's highest equivalent value, never above max. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (p >= 100.0)
		return h->max;
	rank = (uint64_t)((p / 100.0) * (double)h->count + 0.999999999);
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = bench_hist_bucket_high(i);

			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

/* dst += src, bucket by bucket. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	if (src->count == 0)
		return;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
}

/* One line on stderr: label, count, p50/p90/p99/p99.9/max in unit. */
void bench_hist_print(const struct bench_hist *h, const char *label, const char *unit)
{
	fprintf(
	    stderr, "  %-28s n=%-9llu p50=%llu p90=%llu p99=%llu p99.9=%llu max=%llu %s\n", label,
	    (unsigned long long)h->count, (unsigned long long)bench_hist_percentile(h, 50.0),
	    (unsigned long long)bench_hist_percentile(h, 90.0),
	    (unsigned long long)bench_hist_percentile(h, 99.0),
	    (unsigned long long)bench_hist_percentile(h, 99.9), (unsigned long long)h->max, unit);
}
