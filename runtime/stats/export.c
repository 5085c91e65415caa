// SPDX-License-Identifier: MIT
/*
 * Snapshot export: JSON (vz_stats_json) and the Prometheus text format
 * (vz_stats_prometheus). Both write into the caller's buffer with
 * snprintf's contract (the return value is the length the whole text
 * needs), so an embedder can serve them from its own HTTP endpoint
 * without the runtime allocating.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

struct out {
	char *buf;
	size_t len, used; /* used may exceed len: the length needed */
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room = o->used < o->len ? o->len - o->used : 0;

	va_start(ap, fmt);
	n = vsnprintf(room ? o->buf + o->used : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->used += (size_t)n;
}

/* A JSON or Prometheus label string: type names come from user specs. */
static void put_str(struct out *o, const char *s)
{
	put(o, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			put(o, "\\%c", c);
		else if (c < 0x20)
			put(o, "\\u%04x", c);
		else
			put(o, "%c", c);
	}
	put(o, "\"");
}

static int finish(struct out *o)
{
	if (o->len)
		o->buf[o->used < o->len ? o->used : o->len - 1] = '\0';
	return o->used > (size_t)INT32_MAX ? VZ_ENOMEM : (int)o->used;
}

#define SHARD_FIELDS(X)                                                                            \
	X(sent_local)                                                                              \
	X(sent_remote)                                                                             \
	X(received_foreign)                                                                        \
	X(received_remote)                                                                         \
	X(handled)                                                                                 \
	X(dead_letters)                                                                            \
	X(turns)                                                                                   \
	X(idle_turns)                                                                              \
	X(sleeps)                                                                                  \
	X(wakeups_sent)                                                                            \
	X(pool_refills)                                                                            \
	X(ring_full)                                                                               \
	X(overflow_queued)                                                                         \
	X(mailbox_full)                                                                            \
	X(timers_fired)                                                                            \
	X(timers_dropped)                                                                          \
	X(actors_live)                                                                             \
	X(actors_spawned)                                                                          \
	X(actors_stopped)                                                                          \
	X(outbox_full)                                                                             \
	X(wake_failures)                                                                           \
	X(lanes_in_use)                                                                            \
	X(lanes_hwm)                                                                               \
	X(lanes_active)                                                                            \
	X(lanes_exhausted)                                                                         \
	X(lane_posts)                                                                              \
	X(lane_fallback_posts)                                                                     \
	X(lane_doorbells)

/* Shard fields that are levels, not running counts (Prometheus gauges). */
static bool is_gauge(const char *field)
{
	return !strcmp(field, "actors_live") || !strcmp(field, "lanes_in_use") ||
	       !strcmp(field, "lanes_hwm") || !strcmp(field, "lanes_active");
}

static void json_hist(struct out *o, const char *name, const vz_hist *h)
{
	bool first = true;

	put(o,
	    "\"%s\": {\"count\": %llu, \"sum_ns\": %llu, \"p50_ns\": %llu, \"p90_ns\": %llu, "
	    "\"p99_ns\": %llu, \"max_ns\": %llu, \"buckets\": [",
	    name, (unsigned long long)h->count, (unsigned long long)h->sum,
	    (unsigned long long)vz_hist_quantile(h, 0.5),
	    (unsigned long long)vz_hist_quantile(h, 0.9),
	    (unsigned long long)vz_hist_quantile(h, 0.99), (unsigned long long)h->max);
	/* Non-empty buckets as [lowest value, count]: mergeable by a reader
	 * that knows the bucket layout (stats.h). */
	for (unsigned i = 0; i < VZ_HIST_BUCKETS; i++) {
		if (!h->bucket[i])
			continue;
		put(o, "%s[%llu, %llu]", first ? "" : ", ", (unsigned long long)vz_hist_lower(i),
		    (unsigned long long)h->bucket[i]);
		first = false;
	}
	put(o, "]}");
}

VZ_API int vz_stats_json(const vz_stats_snapshot *s, char *buf, size_t len)
{
	struct out o = {buf, len, 0};
	unsigned n;

	if (!s || (!buf && len))
		return VZ_EINVAL;
	n = s->nshards;
	put(&o, "{\"version\": %u, \"backend\": ", s->version);
	put_str(&o, s->backend);
	put(&o, ", \"taken_ns\": %llu, \"nshards\": %u, \"shards\": [",
	    (unsigned long long)s->taken_ns, n);
	for (unsigned i = 0; i < n; i++) {
		const vz_shard_stats *c = &s->shard[i];

		put(&o, "%s\n  {\"shard\": %u", i ? "," : "", i);
#define X(f) put(&o, ", \"" #f "\": %llu", (unsigned long long)c->f);
		SHARD_FIELDS(X)
#undef X
		put(&o, ", \"wakeups_received\": %llu, \"stalls\": %llu, \"pool_jobs\": %llu",
		    (unsigned long long)s->obs[i].wakeups_received,
		    (unsigned long long)s->obs[i].stalls, (unsigned long long)s->obs[i].pool_jobs);
		put(&o, ", \"sent_to\": [");
		for (unsigned j = 0; j < n; j++)
			put(&o, "%s%llu", j ? ", " : "",
			    (unsigned long long)s->sent_to[(size_t)i * n + j]);
		put(&o, "], \"received_from\": [");
		for (unsigned j = 0; j < n; j++)
			put(&o, "%s%llu", j ? ", " : "",
			    (unsigned long long)s->received_from[(size_t)i * n + j]);
		put(&o, "]}");
	}
	put(&o, "],\n \"types\": [");
	for (unsigned k = 0; k < s->ntypes; k++) {
		const vz_type_stats *t = &s->types[k];

		put(&o, "%s\n  {\"shard\": %u, \"name\": ", k ? "," : "", t->shard);
		put_str(&o, t->name);
		put(&o,
		    ", \"spawned\": %llu, \"handled\": %llu, \"runs\": %llu, "
		    "\"mailbox_hwm\": %llu, ",
		    (unsigned long long)t->spawned, (unsigned long long)t->handled,
		    (unsigned long long)t->runs, (unsigned long long)t->mailbox_hwm);
		json_hist(&o, "wait", &t->wait);
		put(&o, ", ");
		json_hist(&o, "handle", &t->handle);
		put(&o, "}");
	}
	put(&o, "]}\n");
	return finish(&o);
}

static void prom_hist(struct out *o, const char *metric, const vz_type_stats *t, const vz_hist *h)
{
	uint64_t cum = 0;

	for (unsigned i = 0; i < VZ_HIST_BUCKETS - 1; i++) {
		if (!h->bucket[i])
			continue;
		cum += h->bucket[i];
		/* le is the bucket's largest value, in seconds: samples are
		 * whole nanoseconds, so v <= le holds exactly for the samples
		 * counted up to this bucket. */
		put(o, "%s_bucket{shard=\"%u\",type=", metric, t->shard);
		put_str(o, t->name);
		put(o, ",le=\"%.9g\"} %llu\n", (double)vz_hist_upper(i) / 1e9,
		    (unsigned long long)cum);
	}
	put(o, "%s_bucket{shard=\"%u\",type=", metric, t->shard);
	put_str(o, t->name);
	put(o, ",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
	put(o, "%s_sum{shard=\"%u\",type=", metric, t->shard);
	put_str(o, t->name);
	put(o, "} %.9g\n", (double)h->sum / 1e9);
	put(o, "%s_count{shard=\"%u\",type=", metric, t->shard);
	put_str(o, t->name);
	put(o, "} %llu\n", (unsigned long long)h->count);
}

VZ_API int vz_stats_prometheus(const vz_stats_snapshot *s, char *buf, size_t len)
{
	struct out o = {buf, len, 0};
	unsigned n;

	if (!s || (!buf && len))
		return VZ_EINVAL;
	n = s->nshards;
	/* Every shard field is a counter ("_total") but the gauges
	 * (is_gauge()). */
#define X(f)                                                                                       \
	{                                                                                          \
		const char *sfx = is_gauge(#f) ? "" : "_total";                                    \
                                                                                                   \
		put(&o, "# TYPE veloz_shard_" #f "%s %s\n", sfx,                                   \
		    is_gauge(#f) ? "gauge" : "counter");                                           \
		for (unsigned i = 0; i < n; i++)                                                   \
			put(&o, "veloz_shard_" #f "%s{shard=\"%u\"} %llu\n", sfx, i,               \
			    (unsigned long long)s->shard[i].f);                                    \
	}
	SHARD_FIELDS(X)
#undef X
#define X(f)                                                                                       \
	put(&o, "# TYPE veloz_shard_" #f "_total counter\n");                                      \
	for (unsigned i = 0; i < n; i++)                                                           \
		put(&o, "veloz_shard_" #f "_total{shard=\"%u\"} %llu\n", i,                        \
		    (unsigned long long)s->obs[i].f);
	X(wakeups_received)
	X(stalls)
	X(pool_jobs)
#undef X
	put(&o, "# TYPE veloz_shard_sent_to_total counter\n");
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < n; j++)
			if (i != j)
				put(&o, "veloz_shard_sent_to_total{shard=\"%u\",to=\"%u\"} %llu\n",
				    i, j, (unsigned long long)s->sent_to[(size_t)i * n + j]);
	put(&o, "# TYPE veloz_actor_handled_total counter\n");
	for (unsigned k = 0; k < s->ntypes; k++) {
		put(&o, "veloz_actor_handled_total{shard=\"%u\",type=", s->types[k].shard);
		put_str(&o, s->types[k].name);
		put(&o, "} %llu\n", (unsigned long long)s->types[k].handled);
	}
	put(&o, "# TYPE veloz_actor_mailbox_hwm gauge\n");
	for (unsigned k = 0; k < s->ntypes; k++) {
		put(&o, "veloz_actor_mailbox_hwm{shard=\"%u\",type=", s->types[k].shard);
		put_str(&o, s->types[k].name);
		put(&o, "} %llu\n", (unsigned long long)s->types[k].mailbox_hwm);
	}
	put(&o, "# TYPE veloz_actor_wait_seconds histogram\n");
	for (unsigned k = 0; k < s->ntypes; k++)
		prom_hist(&o, "veloz_actor_wait_seconds", &s->types[k], &s->types[k].wait);
	put(&o, "# TYPE veloz_actor_handle_seconds histogram\n");
	for (unsigned k = 0; k < s->ntypes; k++)
		prom_hist(&o, "veloz_actor_handle_seconds", &s->types[k], &s->types[k].handle);
	return finish(&o);
}
