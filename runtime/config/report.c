// SPDX-License-Identifier: MIT
/*
 * Filling vz_config_error: every refusal of a configuration goes through
 * here, so each one names the file, the line, the "section.key" and a
 * reason the same way, and mentions the environment variable when the value
 * came from one. Also the "did you mean" suggestions for misspelt sections
 * and keys (edit distance).
 */
#include "config/config_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <veloz/error.h>

static const char *const field_keys[VZ__F_COUNT] = {
    [VZ__F_SHARDS] = "runtime.shards",
    [VZ__F_CPUS] = "runtime.cpus",
    [VZ__F_BACKEND] = "runtime.backend",
    [VZ__F_IDLE] = "runtime.idle",
    [VZ__F_IDLE_SPIN_US] = "runtime.idle_spin_us",
    [VZ__F_TIMER_TICK_US] = "runtime.timer_tick_us",
    [VZ__F_RING_ENTRIES] = "runtime.ring_entries",
    [VZ__F_BATCH] = "runtime.batch",
    [VZ__F_ACTORS_PER_TURN] = "runtime.actors_per_turn",
    [VZ__F_SEND_BATCH] = "runtime.send_batch",
    [VZ__F_OUTBOX_LIMIT] = "runtime.outbox_limit",
    [VZ__F_ALLOW_SHARED] = "runtime.allow_shared_cpus",
    [VZ__F_POOL_WORKERS] = "pool.workers_per_node",
    [VZ__F_POOL_QUEUE_CAPACITY] = "pool.queue_capacity",
    [VZ__F_POOL_OVERLOAD] = "pool.overload",
    [VZ__F_POOL_SHARE] = "pool.share_shard_cpus",
    [VZ__F_POOL_NODES] = "pool.nodes",
    [VZ__F_TOPO_NODES] = "topology.nodes",
    [VZ__F_RESERVE] = "runtime.reserve_cpus",
    [VZ__F_TURN_BUDGET_US] = "runtime.turn_budget_us",
    [VZ__F_STATS_TYPES] = "stats.types",
    [VZ__F_STATS_SAMPLE_RUNS] = "stats.sample_runs",
    [VZ__F_STALL] = "stats.stall",
    [VZ__F_STALL_BUDGET_US] = "stats.stall_budget_us",
    [VZ__F_STALL_INTERVAL_MS] = "stats.stall_interval_ms",
    [VZ__F_STATS_SHM] = "stats.shm",
    [VZ__F_FOREIGN_LANES] = "runtime.foreign_lanes",
};

const char *vz__config_field_key(enum vz__cfg_field f)
{
	if ((unsigned)f >= VZ__F_COUNT)
		return "";
	return field_keys[f];
}

/* snprintf-copy that treats NULL as "". */
static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

int vz__config_verror(vz_config_error *err, const char *file, int line, const char *key,
		      const char *fmt, va_list ap)
{
	if (!err)
		return VZ_ECONFIG;
	copy_str(err->file, sizeof err->file, file);
	err->line = line < 0 ? 0 : line;
	copy_str(err->key, sizeof err->key, key);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	return VZ_ECONFIG;
}

int vz__config_error(vz_config_error *err, const char *file, int line, const char *key,
		     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vz__config_verror(err, file, line, key, fmt, ap);
	va_end(ap);
	return VZ_ECONFIG;
}

/* The common tail of the two "at a recorded place" variants. */
static int error_at_v(vz_config_error *err, const struct vz__config_src *src, int line,
		      const char *env, const char *key, const char *fmt, va_list ap)
{
	size_t n;

	if (!err)
		return VZ_ECONFIG;
	if (line == VZ__LINE_ENV || !src) {
		/* not from the file: no file name, no line */
		vz__config_verror(err, "", 0, key, fmt, ap);
	} else {
		vz__config_verror(err, line > 0 ? src->file : "", line, key, fmt, ap);
	}
	if (line == VZ__LINE_ENV && env) {
		n = strlen(err->message);
		snprintf(err->message + n, sizeof err->message - n, " (from %s)", env);
	}
	return VZ_ECONFIG;
}

int vz__config_error_at(vz_config_error *err, const struct vz__config_src *src, int line,
			const char *env, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_at_v(err, src, line, env, key, fmt, ap);
	va_end(ap);
	return VZ_ECONFIG;
}

int vz__config_field_error(vz_config_error *err, const struct vz__config_src *src,
			   enum vz__cfg_field f, const char *fmt, ...)
{
	va_list ap;
	int line = src ? src->line[f] : 0;
	const char *env = src ? src->env[f] : NULL;

	va_start(ap, fmt);
	error_at_v(err, src, line, env, vz__config_field_key(f), fmt, ap);
	va_end(ap);
	return VZ_ECONFIG;
}

VZ_API int vz_config_error_format(const vz_config_error *e, char *buf, size_t len)
{
	char where[300] = "";
	int n;

	if (!e)
		return snprintf(buf, len, "%s", "");
	if (e->file[0] && e->line > 0)
		snprintf(where, sizeof where, "%.255s:%d: ", e->file, e->line);
	else if (e->file[0])
		snprintf(where, sizeof where, "%.255s: ", e->file);
	n = snprintf(buf, len, "%s%.64s%s%.512s", where, e->key, e->key[0] ? ": " : "", e->message);
	return n;
}

/* Levenshtein distance ignoring case, both strings capped at 63 chars
 * (longer words are never plausible typos of our short names). */
static unsigned edit_distance(const char *a, const char *b)
{
	unsigned row[64];
	size_t la = strlen(a), lb = strlen(b);

	if (la > 63 || lb > 63)
		return 64;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned cost =
			    tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			unsigned best = diag + cost;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *vz__config_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	unsigned best_d = ~0u;
	size_t len = strlen(word);
	/* a third of the word, at least 2: "shrads" -> "shards", not "x" -> "cpus" */
	unsigned limit = (unsigned)(len / 3 > 2 ? len / 3 : 2);

	for (size_t i = 0; i < n; i++) {
		unsigned d = edit_distance(word, candidates[i]);

		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	if (!best || best_d > limit)
		return NULL;
	return best;
}
