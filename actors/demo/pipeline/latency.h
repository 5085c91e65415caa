/* SPDX-License-Identifier: MIT */
/*
 * A log-linear latency histogram for the demo (HdrHistogram's idea, in
 * small): values below 16 ns are exact, above that every power of two is
 * split into 16 buckets, so a reported percentile is within 1/16 (6.25 %)
 * above the true value. 976 buckets cover the whole uint64_t range; two
 * histograms merge by adding buckets. One writer; no atomics (the demo
 * reads a histogram only after its writer has published it, see gateway.c).
 */
#ifndef VZ_DEMO_LATENCY_H
#define VZ_DEMO_LATENCY_H

#include <stdint.h>

#define LAT_SUB_BITS 4
#define LAT_SUB	     (1u << LAT_SUB_BITS)
#define LAT_BUCKETS  ((64 - LAT_SUB_BITS + 1) * LAT_SUB)

struct lat_hist {
	uint64_t count;
	uint64_t max;
	uint64_t bucket[LAT_BUCKETS];
};

static inline unsigned lat_bucket_of(uint64_t v)
{
	unsigned e;

	if (v < LAT_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= LAT_SUB_BITS */
	return (e - LAT_SUB_BITS + 1) * LAT_SUB +
	       (unsigned)((v >> (e - LAT_SUB_BITS)) & (LAT_SUB - 1));
}

static inline void lat_record(struct lat_hist *h, uint64_t v)
{
	h->bucket[lat_bucket_of(v)]++;
	h->count++;
	if (v > h->max)
		h->max = v;
}

void lat_reset(struct lat_hist *h);
void lat_merge(struct lat_hist *into, const struct lat_hist *from);
/* The q-quantile (0 < q <= 1) as the upper bound of its bucket (the exact
 * max for q == 1); 0 when empty. */
uint64_t lat_quantile(const struct lat_hist *h, double q);

#endif
