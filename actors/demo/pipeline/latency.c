// SPDX-License-Identifier: MIT
/* The demo's latency histogram: reset, merge, quantiles (latency.h). */
#include "latency.h"

#include <string.h>

void lat_reset(struct lat_hist *h)
{
	memset(h, 0, sizeof *h);
}

void lat_merge(struct lat_hist *into, const struct lat_hist *from)
{
	for (unsigned i = 0; i < LAT_BUCKETS; i++)
		into->bucket[i] += from->bucket[i];
	into->count += from->count;
	if (from->max > into->max)
		into->max = from->max;
}

/* Largest value that falls in bucket i. */
static uint64_t upper_of(unsigned i)
{
	unsigned e, sub;

	if (i < LAT_SUB)
		return i;
	e = i / LAT_SUB + LAT_SUB_BITS - 1;
	sub = i % LAT_SUB;
	return (((uint64_t)(LAT_SUB + sub)) << (e - LAT_SUB_BITS)) +
	       ((uint64_t)1 << (e - LAT_SUB_BITS)) - 1;
}

uint64_t lat_quantile(const struct lat_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (!h->count)
		return 0;
	if (q >= 1.0)
		return h->max;
	rank = (uint64_t)(q * (double)h->count);
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < LAT_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t u = upper_of(i);
			return u < h->max ? u : h->max;
		}
	}
	return h->max;
}
