// SPDX-License-Identifier: MIT
/*
 * Reading a configuration file: the INI syntax is inih's, everything else
 * (which sections and keys exist, what their values may be, where each
 * value came from) is here. vz__config_set() is the one place a textual
 * value becomes a field of vz_config; the environment overrides (env.c) go
 * through it too, so a value means the same wherever it is written.
 *
 * Decisions (documented in tools/README.md):
 * - A key given twice is an error naming both lines; a section may appear
 *   several times ([runtime] ... [pool] ... [runtime]).
 * - Keys are lower case and matched exactly; a near miss (edit distance,
 *   case ignored) is suggested. Enum and boolean values ignore case.
 * - Numbers are decimal, without sign or suffix.
 * - inih would read an indented line as the continuation of the previous
 *   value; we refuse it instead, since no veloz value spans lines.
 * - Lines are at most 199 characters (inih's fixed line buffer); a longer
 *   line is an error rather than being cut silently.
 */
#include "config/config_int.h"
#include "topo/topo.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <veloz/error.h>

/* Largest file we read: a config is a page or two; anything larger is a
 * wrong path, not a config. */
#define MAX_FILE_BYTES (1u << 20)

static const char *const sections[] = {"runtime", "pool",  "topology", "shard",
				       "class",	  "stats", "cluster"};
static const char *const runtime_keys[] = {
    "shards",	       "cpus",		 "backend",	      "idle",
    "idle_spin_us",    "timer_tick_us",	 "ring_entries",      "batch",
    "actors_per_turn", "send_batch",	 "allow_shared_cpus", "reserve_cpus",
    "outbox_limit",    "turn_budget_us", "foreign_lanes",
};
static const char *const shard_keys[] = {"cpu", "ring_entries", "embedded"};
static const char *const class_keys[] = {"name", "shares", "quota_us", "latency"};
static const char *const pool_keys[] = {
    "workers_per_node",
    "queue_capacity",
    "overload",
    "share_shard_cpus",
#ifdef VZ_CONFIG_HAS_POOL_NODES
    "nodes",
#endif
};
static const char *const topology_keys[] = {"nodes", "node.0"};
static const char *const stats_keys[] = {"types",	    "sample_runs",	 "stall",
					 "stall_budget_us", "stall_interval_ms", "shm"};
/* [cluster] (cluster.h); the order is that of vz__config_src.cluster[]. */
static const char *const cluster_keys[] = {
    "url",
    "node",
    "namespace",
    "credentials",
    "tls",
    "tls_ca",
    "tls_cert",
    "tls_key",
    "tls_skip_verify",
    "connect_timeout_ms",
    "reconnect_wait_ms",
    "max_reconnect",
    "reconnect_buf_bytes",
    "out_ring_bytes",
    "spin_us",
    "heartbeat_ms",
    "node_timeout_ms",
};
_Static_assert(sizeof cluster_keys / sizeof cluster_keys[0] == VZ__CLUSTER_KEYS,
	       "one origin slot per [cluster] key");

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- value syntax ------------------------------------------------------ */

enum num { NUM_OK, NUM_BAD, NUM_BIG };

/* Decimal u32: digits only (inih already trimmed blanks). NUM_BIG for a
 * well-formed number above UINT32_MAX: that is a range error ("out of
 * range"), not a syntax error, and is reported as one. */
static enum num parse_num(const char *v, uint32_t *out)
{
	uint64_t x = 0;
	bool big = false;

	if (!*v)
		return NUM_BAD;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return NUM_BAD;
		if (!big) {
			x = x * 10 + (uint64_t)(*p - '0');
			big = x > UINT32_MAX; /* stops before x can wrap */
		}
	}
	if (big)
		return NUM_BIG;
	*out = (uint32_t)x;
	return NUM_OK;
}

static bool parse_u32(const char *v, uint32_t *out)
{
	return parse_num(v, out) == NUM_OK;
}

/* true|false|yes|no|on|off|1|0, any case; false when none matches. */
static bool parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < COUNT(yes); i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return true;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* "shard.N" / "node.N": the index after the prefix, or -1 if not a plain
 * decimal (at most 9 digits, so it cannot overflow). */
static long parse_index(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	long v = 0;
	size_t digits = 0;

	if (strncmp(s, prefix, n) != 0)
		return -1;
	for (s += n; *s; s++, digits++) {
		if (*s < '0' || *s > '9' || digits >= 9)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return digits ? v : -1;
}

/* ---- setting one value ------------------------------------------------- */

struct setctx {
	vz_config *cfg;
	struct vz__config_src *src;
	const char *key; /* "section.key" for messages */
	const char *value;
	int line;
	const char *env;
	vz_config_error *err;
};

#define SET_ERR(c, ...)                                                                            \
	vz__config_error_at((c)->err, (c)->src, (c)->line, (c)->env, (c)->key, __VA_ARGS__)

/* Refuse a key already set in this file; record where this one is. */
static int claim(struct setctx *c, int *slot)
{
	if (c->line > 0 && *slot > 0)
		return SET_ERR(c, "duplicate key (already set on line %d)", *slot);
	*slot = c->line;
	return 0;
}

/* claim() for a top-level field, also recording the variable name for
 * environment values. */
static int claim_field(struct setctx *c, enum vz__cfg_field f)
{
	int rc = claim(c, &c->src->line[f]);

	if (rc == 0)
		c->src->env[f] = c->line == VZ__LINE_ENV ? c->env : NULL;
	return rc;
}

/* A number too large for 32 bits, reported like any out-of-range value
 * (with the range when the field has one: lo..hi). */
static int too_big(struct setctx *c, bool ranged, uint32_t lo, uint32_t hi)
{
	if (ranged)
		return SET_ERR(c, "%.64s is out of range %u..%u", c->value, lo, hi);
	return SET_ERR(c, "%.64s is out of range (at most %u)", c->value, UINT32_MAX);
}

/* Store a decimal u32 value into *dst, then range-check field f. */
static int set_u32(struct setctx *c, enum vz__cfg_field f, uint32_t *dst)
{
	uint32_t v, lo = 0, hi = 0;
	int rc = claim_field(c, f);

	if (rc < 0)
		return rc;
	switch (parse_num(c->value, &v)) {
	case NUM_BAD:
		return SET_ERR(c, "'%.64s' is not a number (decimal digits only)", c->value);
	case NUM_BIG: {
		bool ranged = vz__config_field_range(f, &lo, &hi);

		return too_big(c, ranged, lo, hi);
	}
	case NUM_OK:
		break;
	}
	*dst = v;
	return vz__config_check_value(c->cfg, c->src, f, c->err);
}

/* Store a boolean value into *dst. */
static int set_bool(struct setctx *c, enum vz__cfg_field f, bool *dst)
{
	int rc = claim_field(c, f);

	if (rc < 0)
		return rc;
	if (!parse_bool(c->value, dst))
		return SET_ERR(c, "'%.64s' is not a boolean (true|false)", c->value);
	return 0;
}

/* runtime.reserve_cpus: a count ("1": the highest placement CPU), or
 * "cpus LIST" / "cpu N" for exactly those CPUs ("cpus 2-3", "cpu 0"). A
 * bare number is always a count: the keyword keeps "reserve CPU 1" and
 * "reserve 1 CPU" from being the same text. */
static int set_reserve(struct setctx *c)
{
	vz_config *cfg = c->cfg;
	const char *v = c->value;
	char why[128];
	uint32_t n;
	int rc;

	if ((rc = claim_field(c, VZ__F_RESERVE)) < 0)
		return rc;
	cfg->reserve_count = 0;
	vz_cpuset_zero(&cfg->reserve_cpus);
	if (!strncasecmp(v, "cpus", 4) && (v[4] == ' ' || v[4] == '\t'))
		v += 5;
	else if (!strncasecmp(v, "cpu", 3) && (v[3] == ' ' || v[3] == '\t'))
		v += 4;
	else if (!strcasecmp(v, "none"))
		return 0;
	else {
		switch (parse_num(v, &n)) {
		case NUM_BAD:
			return SET_ERR(c,
				       "'%.64s' is not a CPU count or list (write e.g. 1, "
				       "cpus 2-3 or none)",
				       v);
		case NUM_BIG:
			return too_big(c, true, 0, VZ_MAX_CPUS - 1);
		case NUM_OK:
			break;
		}
		cfg->reserve_count = n;
		return vz__config_check_value(cfg, c->src, VZ__F_RESERVE, c->err);
	}
	if (vz__cpuset_parse(v, 0, &cfg->reserve_cpus, why, sizeof why) < 0)
		return SET_ERR(c, "bad CPU list '%.64s': %s (write e.g. cpus 2-3)", v, why);
	return 0;
}

/* The set_<section>() functions: 0 stored, VZ_ECONFIG refused (err
 * filled), 1 no such key in the section (the caller reports it). */
static int set_runtime(struct setctx *c, const char *name)
{
	vz_config *cfg = c->cfg;
	char why[128];
	int rc;

	if (!strcmp(name, "shards")) {
		uint32_t v;

		if ((rc = claim_field(c, VZ__F_SHARDS)) < 0)
			return rc;
		if (!strcasecmp(c->value, "auto")) {
			cfg->nshards = 0;
			return 0;
		}
		if (parse_num(c->value, &v) == NUM_BIG)
			return SET_ERR(c, "%.64s is out of range 1..%u (or auto)", c->value,
				       VZ_MAX_SHARDS);
		if (!parse_u32(c->value, &v) || v == 0)
			return SET_ERR(c, "'%.64s' is not a shard count (1..%u or auto)", c->value,
				       VZ_MAX_SHARDS);
		cfg->nshards = v;
		return vz__config_check_value(cfg, c->src, VZ__F_SHARDS, c->err);
	}
	if (!strcmp(name, "cpus")) {
		if ((rc = claim_field(c, VZ__F_CPUS)) < 0)
			return rc;
		if (!strcasecmp(c->value, "auto")) {
			vz_cpuset_zero(&cfg->cpus);
			return 0;
		}
		if (vz__cpuset_parse(c->value, 0, &cfg->cpus, why, sizeof why) < 0)
			return SET_ERR(c, "bad CPU list '%.64s': %s (write e.g. 0-3,8 or auto)",
				       c->value, why);
		return 0;
	}
	if (!strcmp(name, "backend")) {
		if ((rc = claim_field(c, VZ__F_BACKEND)) < 0)
			return rc;
		if (vz__backend_parse(c->value, &cfg->backend) < 0)
			return SET_ERR(c, "unknown backend '%.64s' (" VZ__BACKEND_CHOICES ")",
				       c->value);
		return 0;
	}
	if (!strcmp(name, "idle")) {
		if ((rc = claim_field(c, VZ__F_IDLE)) < 0)
			return rc;
		if (!strcasecmp(c->value, "spin_then_sleep"))
			cfg->idle_policy = VZ_IDLE_SPIN_THEN_SLEEP;
		else if (!strcasecmp(c->value, "spin"))
			cfg->idle_policy = VZ_IDLE_SPIN;
		else if (!strcasecmp(c->value, "sleep"))
			cfg->idle_policy = VZ_IDLE_SLEEP;
		else
			return SET_ERR(c,
				       "unknown idle policy '%.64s' (spin|sleep|spin_then_sleep)",
				       c->value);
		return 0;
	}
	if (!strcmp(name, "idle_spin_us"))
		return set_u32(c, VZ__F_IDLE_SPIN_US, &cfg->idle_spin_us);
	if (!strcmp(name, "timer_tick_us"))
		return set_u32(c, VZ__F_TIMER_TICK_US, &cfg->timer_tick_us);
	if (!strcmp(name, "ring_entries"))
		return set_u32(c, VZ__F_RING_ENTRIES, &cfg->ring_entries);
	if (!strcmp(name, "batch"))
		return set_u32(c, VZ__F_BATCH, &cfg->batch);
	if (!strcmp(name, "actors_per_turn"))
		return set_u32(c, VZ__F_ACTORS_PER_TURN, &cfg->actors_per_turn);
	if (!strcmp(name, "send_batch"))
		return set_u32(c, VZ__F_SEND_BATCH, &cfg->send_batch);
	if (!strcmp(name, "outbox_limit"))
		return set_u32(c, VZ__F_OUTBOX_LIMIT, &cfg->outbox_limit);
	if (!strcmp(name, "turn_budget_us"))
		return set_u32(c, VZ__F_TURN_BUDGET_US, &cfg->turn_budget_us);
	if (!strcmp(name, "foreign_lanes"))
		return set_u32(c, VZ__F_FOREIGN_LANES, &cfg->foreign_lanes);
	if (!strcmp(name, "allow_shared_cpus"))
		return set_bool(c, VZ__F_ALLOW_SHARED, &cfg->allow_shared_cpus);
	if (!strcmp(name, "reserve_cpus"))
		return set_reserve(c);
	return 1; /* unknown */
}

static int set_pool(struct setctx *c, const char *name)
{
	vz_pool_config *p = &c->cfg->pool;
	int rc;

	if (!strcmp(name, "workers_per_node"))
		return set_u32(c, VZ__F_POOL_WORKERS, &p->workers_per_node);
	if (!strcmp(name, "queue_capacity"))
		return set_u32(c, VZ__F_POOL_QUEUE_CAPACITY, &p->queue_capacity);
	if (!strcmp(name, "share_shard_cpus"))
		return set_bool(c, VZ__F_POOL_SHARE, &p->share_shard_cpus);
	if (!strcmp(name, "overload")) {
		if ((rc = claim_field(c, VZ__F_POOL_OVERLOAD)) < 0)
			return rc;
		if (!strcasecmp(c->value, "reject"))
			p->overload = VZ_POOL_REJECT;
		else if (!strcasecmp(c->value, "spill"))
			p->overload = VZ_POOL_SPILL;
		else
			return SET_ERR(c, "unknown overload policy '%.64s' (reject|spill)",
				       c->value);
		return 0;
	}
#ifdef VZ_CONFIG_HAS_POOL_NODES
	if (!strcmp(name, "nodes")) {
		vz_cpuset set;
		char why[128];

		if ((rc = claim_field(c, VZ__F_POOL_NODES)) < 0)
			return rc;
		if (!strcasecmp(c->value, "all")) {
			p->nodes = 0;
			return 0;
		}
		/* node lists use the CPU list syntax */
		if (vz__cpuset_parse(c->value, 0, &set, why, sizeof why) < 0)
			return SET_ERR(c, "bad node list '%.64s': %s (write e.g. 0,1 or all)",
				       c->value, why);
		for (unsigned i = 64; i < VZ_MAX_CPUS; i++)
			if (vz_cpuset_has(&set, i))
				return SET_ERR(c, "node %u is beyond the maximum %u", i,
					       VZ_MAX_NODES - 1);
		p->nodes = set.bits[0];
		return 0;
	}
#endif
	return 1;
}

static int set_shard(struct setctx *c, unsigned idx, const char *name)
{
	vz_shard_config *s = &c->cfg->shards[idx];
	int rc;

	if (!strcmp(name, "cpu")) {
		uint32_t v;

		if ((rc = claim(c, &c->src->shard_cpu[idx])) < 0)
			return rc;
		if (!strcasecmp(c->value, "auto") || !strcmp(c->value, "-1")) {
			s->cpu = -1;
			return 0;
		}
		if (parse_num(c->value, &v) == NUM_BIG)
			return too_big(c, true, 0, VZ_MAX_CPUS - 1);
		if (!parse_u32(c->value, &v))
			return SET_ERR(c, "'%.64s' is not a CPU number (or auto)", c->value);
		if (v >= VZ_MAX_CPUS)
			return SET_ERR(c, "CPU %u is out of range 0..%u", v, VZ_MAX_CPUS - 1);
		s->cpu = (int)v;
		return 0;
	}
	if (!strcmp(name, "ring_entries")) {
		if ((rc = claim(c, &c->src->shard_ring[idx])) < 0)
			return rc;
		if (parse_num(c->value, &s->ring_entries) == NUM_BIG)
			return too_big(c, true, VZ__RING_MIN, VZ__RING_MAX);
		if (!parse_u32(c->value, &s->ring_entries))
			return SET_ERR(c, "'%.64s' is not a number (decimal digits only)",
				       c->value);
		return vz__config_check_shard(c->cfg, c->src, idx, c->err);
	}
	if (!strcmp(name, "embedded")) {
		if ((rc = claim(c, &c->src->shard_embedded[idx])) < 0)
			return rc;
		if (!parse_bool(c->value, &s->embedded))
			return SET_ERR(c, "'%.64s' is not a boolean (true|false)", c->value);
		return 0;
	}
	return 1;
}

/* [class.N]: one scheduling class. Declaring [class.N] makes the runtime
 * have at least N + 1 classes (vz_config.nclasses); the checks
 * (vz__config_check_classes()) then want every class numbered below it. */
static int set_class(struct setctx *c, unsigned idx, const char *name)
{
	vz_class_config *k = &c->cfg->classes[idx];
	enum num r;
	int rc;

	if (c->cfg->nclasses < idx + 1)
		c->cfg->nclasses = idx + 1;
	if (!strcmp(name, "name")) {
		if ((rc = claim(c, &c->src->class_name[idx])) < 0)
			return rc;
		if (strlen(c->value) >= sizeof k->name)
			return SET_ERR(c, "name longer than %zu characters", sizeof k->name - 1);
		snprintf(k->name, sizeof k->name, "%s", c->value);
		return 0;
	}
	if (!strcmp(name, "latency")) {
		if ((rc = claim(c, &c->src->class_latency[idx])) < 0)
			return rc;
		if (!parse_bool(c->value, &k->latency))
			return SET_ERR(c, "'%.64s' is not a boolean (true|false)", c->value);
		return 0;
	}
	if (!strcmp(name, "shares") || !strcmp(name, "quota_us")) {
		bool shares = name[0] == 's';
		uint32_t *dst = shares ? &k->shares : &k->quota_us;
		uint32_t lo = shares ? 1 : 0, hi = shares ? VZ__SHARES_MAX : VZ__QUOTA_US_MAX;

		if ((rc = claim(c, shares ? &c->src->class_shares[idx]
					  : &c->src->class_quota[idx])) < 0)
			return rc;
		r = parse_num(c->value, dst);
		if (r == NUM_BIG)
			return too_big(c, true, lo, hi);
		if (r == NUM_BAD)
			return SET_ERR(c, "'%.64s' is not a number (decimal digits only)",
				       c->value);
		if (*dst < lo || *dst > hi)
			return SET_ERR(c, "%u is out of range %u..%u", *dst, lo, hi);
		return 0;
	}
	return 1;
}

/* [stats]: observability (README "Observability"). types and stall are
 * written as on/off but stored inverted (stats_types_off, stall_off), so a
 * zeroed vz_config keeps them on. */
static int set_stats(struct setctx *c, const char *name)
{
	vz_config *cfg = c->cfg;
	bool on;
	int rc;

	if (!strcmp(name, "types") || !strcmp(name, "stall")) {
		bool types = name[0] == 't';

		rc = set_bool(c, types ? VZ__F_STATS_TYPES : VZ__F_STALL, &on);
		if (rc < 0)
			return rc;
		if (types)
			cfg->stats_types_off = !on;
		else
			cfg->stall_off = !on;
		return 0;
	}
	if (!strcmp(name, "sample_runs"))
		return set_u32(c, VZ__F_STATS_SAMPLE_RUNS, &cfg->stats_sample_runs);
	if (!strcmp(name, "stall_budget_us"))
		return set_u32(c, VZ__F_STALL_BUDGET_US, &cfg->stall_budget_us);
	if (!strcmp(name, "stall_interval_ms"))
		return set_u32(c, VZ__F_STALL_INTERVAL_MS, &cfg->stall_interval_ms);
	if (!strcmp(name, "shm"))
		return set_bool(c, VZ__F_STATS_SHM, &cfg->stats_shm);
	return 1;
}

static int set_topology(struct setctx *c, const char *name)
{
	vz_topology_decl *t = &c->cfg->topology;
	char why[128];
	long idx;
	int rc;

	if (!strcmp(name, "nodes"))
		return set_u32(c, VZ__F_TOPO_NODES, &t->nnodes);
	idx = parse_index(name, "node.");
	if (idx < 0) {
		if (strncmp(name, "node.", 5) == 0)
			return SET_ERR(c, "bad node index '%.32s' (write node.0, node.1, ...)",
				       name + 5);
		return 1;
	}
	if (idx >= VZ_MAX_NODES)
		return SET_ERR(c, "node %ld is out of range 0..%u", idx, VZ_MAX_NODES - 1);
	if ((rc = claim(c, &c->src->topo_node[idx])) < 0)
		return rc;
	if (vz__cpuset_parse(c->value, 0, &t->node_cpus[idx], why, sizeof why) < 0)
		return SET_ERR(c, "bad CPU list '%.64s': %s", c->value, why);
	return 0;
}

/* [cluster]: strings are stored as given (the cluster checks names and
 * files when it starts, where it can say what is wrong with them); numbers
 * and booleans are checked here. */
static int set_cluster(struct setctx *c, const char *name)
{
	vz_cluster_config *k = &c->cfg->cluster;
	char *str[] = {k->url, k->node,	  k->ns,       k->credentials,
		       NULL,   k->tls_ca, k->tls_cert, k->tls_key};
	size_t cap[] = {
	    sizeof k->url,    sizeof k->node,	  sizeof k->ns,	    sizeof k->credentials, 0,
	    sizeof k->tls_ca, sizeof k->tls_cert, sizeof k->tls_key};
	uint32_t *num[] = {&k->connect_timeout_ms,  &k->reconnect_wait_ms, &k->max_reconnect,
			   &k->reconnect_buf_bytes, &k->out_ring_bytes,	   &k->spin_us,
			   &k->heartbeat_ms,	    &k->node_timeout_ms};
	unsigned i;
	int rc;

	for (i = 0; i < COUNT(cluster_keys); i++)
		if (!strcmp(name, cluster_keys[i]))
			break;
	if (i == COUNT(cluster_keys))
		return 1;
	if ((rc = claim(c, &c->src->cluster[i])) < 0)
		return rc;
	if (i < COUNT(str) && str[i]) {
		if (strlen(c->value) >= cap[i])
			return SET_ERR(c, "value longer than %zu characters", cap[i] - 1);
		snprintf(str[i], cap[i], "%s", c->value);
		return 0;
	}
	if (!strcmp(name, "tls") || !strcmp(name, "tls_skip_verify")) {
		if (!parse_bool(c->value, name[3] ? &k->tls_skip_verify : &k->tls))
			return SET_ERR(c, "'%.64s' is not a boolean (true|false)", c->value);
		return 0;
	}
	switch (parse_num(c->value, num[i - 9])) {
	case NUM_BAD:
		return SET_ERR(c, "'%.64s' is not a number (decimal digits only)", c->value);
	case NUM_BIG:
		return too_big(c, false, 0, 0);
	case NUM_OK:
		break;
	}
	if (!strcmp(name, "out_ring_bytes") && k->out_ring_bytes &&
	    (k->out_ring_bytes < 4096 || (k->out_ring_bytes & (k->out_ring_bytes - 1))))
		return SET_ERR(c, "%u is not a power of two of at least 4096 (or 0)",
			       k->out_ring_bytes);
	return 0;
}

/* Suggestion for an unknown key of a section, as " (did you mean 'x'?)". */
static void unknown_key(struct setctx *c, const char *section, const char *name,
			const char *const *keys, size_t nkeys)
{
	const char *s = vz__config_suggest(name, keys, nkeys);

	if (s)
		SET_ERR(c, "unknown key '%.48s' in [%.48s]; did you mean '%s'?", name, section, s);
	else
		SET_ERR(c, "unknown key '%.48s' in [%.48s]", name, section);
}

/* Check a section name; fills *shard_idx (-1 when not a shard section).
 * 0 or VZ_ECONFIG with the suggestion. */
static int check_section(const char *section, long *shard_idx, vz_config_error *err,
			 const struct vz__config_src *src, int line, const char *env)
{
	char head[64];
	const char *dot;
	const char *s;

	*shard_idx = -1;
	if (!strncmp(section, "class.", 6)) {
		long ci = parse_index(section, "class.");

		if (ci < 0)
			return vz__config_error_at(err, src, line, env, section,
						   "bad class index '%.32s' in [%.48s] (write "
						   "[class.0], [class.1], ...)",
						   section + 6, section);
		if (ci >= VZ_MAX_CLASSES)
			return vz__config_error_at(err, src, line, env, section,
						   "class index %ld is out of range 0..%u", ci,
						   VZ_MAX_CLASSES - 1);
		return 0;
	}
	if (!strcmp(section, "runtime") || !strcmp(section, "pool") ||
	    !strcmp(section, "topology") || !strcmp(section, "stats") ||
	    !strcmp(section, "cluster"))
		return 0;
	if (!strncmp(section, "shard.", 6)) {
		*shard_idx = parse_index(section, "shard.");
		if (*shard_idx < 0)
			return vz__config_error_at(err, src, line, env, section,
						   "bad shard index '%.32s' in [%.48s] (write "
						   "[shard.0], [shard.1], ...)",
						   section + 6, section);
		if (*shard_idx >= VZ_MAX_SHARDS)
			return vz__config_error_at(err, src, line, env, section,
						   "shard index %ld is out of range 0..%u",
						   *shard_idx, VZ_MAX_SHARDS - 1);
		return 0;
	}
	/* suggest on the part before a dot: [shards.1] -> shard.1. The
	 * indexed sections are suggested with their index ([classes] ->
	 * [class.N]): [class] alone would be refused in turn. */
	dot = strchr(section, '.');
	snprintf(head, sizeof head, "%.*s", dot ? (int)(dot - section) : 63, section);
	s = vz__config_suggest(head, sections, COUNT(sections));
	if (s && (!strcmp(s, "shard") || !strcmp(s, "class")))
		return vz__config_error_at(err, src, line, env, section,
					   "unknown section [%.48s]; did you mean [%s.%.32s]?",
					   section, s, dot && dot[1] ? dot + 1 : "N");
	if (s)
		return vz__config_error_at(err, src, line, env, section,
					   "unknown section [%.48s]; did you mean [%s]?", section,
					   s);
	return vz__config_error_at(
	    err, src, line, env, section,
	    "unknown section [%.48s] (known: runtime, pool, topology, stats, "
	    "shard.N, class.N, cluster)",
	    section);
}

int vz__config_set(vz_config *cfg, struct vz__config_src *src, const char *section,
		   const char *name, const char *value, int line, const char *env_name,
		   vz_config_error *err)
{
	char key[128];
	struct setctx c = {cfg, src, key, value, line, env_name, err};
	long idx;
	int rc;

	snprintf(key, sizeof key, "%.60s.%.60s", section, name);
	rc = check_section(section, &idx, err, src, line, env_name);
	if (rc < 0)
		return rc;
	if (!strcmp(section, "runtime")) {
		rc = set_runtime(&c, name);
		if (rc > 0)
			unknown_key(&c, section, name, runtime_keys, COUNT(runtime_keys));
	} else if (!strcmp(section, "pool")) {
		rc = set_pool(&c, name);
		if (rc > 0)
			unknown_key(&c, section, name, pool_keys, COUNT(pool_keys));
	} else if (!strcmp(section, "topology")) {
		rc = set_topology(&c, name);
		if (rc > 0)
			unknown_key(&c, section, name, topology_keys, COUNT(topology_keys));
	} else if (!strcmp(section, "stats")) {
		rc = set_stats(&c, name);
		if (rc > 0)
			unknown_key(&c, section, name, stats_keys, COUNT(stats_keys));
	} else if (!strcmp(section, "cluster")) {
		rc = set_cluster(&c, name);
		if (rc > 0)
			unknown_key(&c, section, name, cluster_keys, COUNT(cluster_keys));
	} else if (!strncmp(section, "class.", 6)) {
		idx = parse_index(section, "class.");
		if (line > 0 && src->class_section[idx] == 0)
			src->class_section[idx] = line;
		rc = set_class(&c, (unsigned)idx, name);
		if (rc > 0)
			unknown_key(&c, section, name, class_keys, COUNT(class_keys));
	} else {
		if (line > 0 && src->shard_section[idx] == 0)
			src->shard_section[idx] = line;
		rc = set_shard(&c, (unsigned)idx, name);
		if (rc > 0)
			unknown_key(&c, section, name, shard_keys, COUNT(shard_keys));
	}
	return rc == 0 ? 0 : VZ_ECONFIG;
}

/* ---- the INI file ------------------------------------------------------ */

struct parse {
	vz_config *cfg;
	struct vz__config_src *src;
	const char *text;
	size_t len;
	size_t pos;
	int line;      /* physical line last handed to inih (1-based) */
	bool key_seen; /* a key since the last section header (inih's prev_name) */
	int err_line;  /* line of the first error we found; 0 = none */
	vz_config_error err;
};

/* Record the first error at the current line; returns VZ_ECONFIG. */
static int parse_fail(struct parse *ps, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int parse_fail(struct parse *ps, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vz__config_verror(&ps->err, ps->src->file, ps->line, key, fmt, ap);
	va_end(ap);
	ps->err_line = ps->line;
	return VZ_ECONFIG;
}

/* Look at a raw line before inih does, for what inih would accept silently:
 * an overlong line, a NUL byte, an indented continuation line, and a section
 * header (checked here so an empty unknown section is caught too, at its own
 * line). */
static void check_line(struct parse *ps, const char *raw, size_t n, size_t max)
{
	const char *p = raw, *end = raw + n;
	const char *close;
	char section[128];
	long idx;
	vz_config_error e;

	if (memchr(raw, '\0', n)) {
		parse_fail(ps, "", "NUL byte in line");
		return;
	}
	if (n > max) {
		parse_fail(ps, "", "line longer than %zu characters", max);
		return;
	}
	if (ps->line == 1 && n >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
	    (unsigned char)p[2] == 0xBF)
		p += 3;
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	/* Every indented line that is not blank or a comment is refused, as
	 * tools/README.md says. inih alone would treat it two ways: after a
	 * key, as the continuation of that key's value; as the first line
	 * after a section header (inih forgets the previous key there), as
	 * an ordinary key with the blanks stripped. One rule is easier to
	 * know than that difference. */
	if (p < end && isspace((unsigned char)*p)) {
		const char *q = p;

		while (q < end && isspace((unsigned char)*q))
			q++;
		if (q < end && *q != ';' && *q != '#') {
			if (ps->key_seen)
				parse_fail(ps, "",
					   "indented line would continue the previous value; "
					   "values are one line, remove the indentation");
			else
				parse_fail(ps, "",
					   "indented line; keys and sections start at the "
					   "beginning of the line, remove the indentation");
			return;
		}
		p = q;
	}
	if (p >= end || *p != '[')
		return;
	close = memchr(p, ']', (size_t)(end - p));
	if (!close)
		return; /* inih reports the missing ']' */
	snprintf(section, sizeof section, "%.*s", (int)(close - p - 1), p + 1);
	ps->key_seen = false;
	if (check_section(section, &idx, &e, ps->src, ps->line, NULL) < 0) {
		ps->err = e;
		ps->err_line = ps->line;
		return;
	}
	if (idx >= 0 && ps->src->shard_section[idx] == 0)
		ps->src->shard_section[idx] = ps->line;
	if (!strncmp(section, "class.", 6)) {
		idx = parse_index(section, "class.");
		if (ps->src->class_section[idx] == 0)
			ps->src->class_section[idx] = ps->line;
		if (ps->cfg->nclasses < (uint32_t)idx + 1)
			ps->cfg->nclasses = (uint32_t)idx + 1;
	}
}

/* inih reader over our buffer: one physical line per call, so inih's line
 * numbers and ours agree. Stops (NULL) after the first error. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	size_t start = ps->pos, end = start, n, max = num > 1 ? (size_t)num - 1 : 0;

	if (ps->err_line || ps->pos >= ps->len)
		return NULL;
	while (end < ps->len && ps->text[end] != '\n')
		end++;
	n = end - start;
	ps->pos = end < ps->len ? end + 1 : end;
	ps->line++;
	check_line(ps, ps->text + start, n, max);
	if (ps->err_line)
		return NULL;
	memcpy(str, ps->text + start, n);
	str[n] = '\0';
	return str;
}

/* inih handler: one key of one section. Always returns 1 (errors are kept
 * in ps so inih's own return value means "syntax error at line N"). */
static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;

	if (ps->err_line)
		return 1;
	ps->key_seen = true;
	if (!section[0]) {
		parse_fail(ps, name,
			   "key outside any section (put it under [runtime], [pool], [topology], "
			   "[shard.N], [class.N] or [cluster])");
		return 1;
	}
	if (vz__config_set(ps->cfg, ps->src, section, name, value, ps->line, NULL, &ps->err) < 0)
		ps->err_line = ps->line;
	return 1; /* errors are ours to report; inih's return is for syntax */
}

int vz__config_parse(vz_config *cfg, struct vz__config_src *src, const char *text, size_t len,
		     const char *name, vz_config_error *err)
{
	struct parse ps;
	int rc;

	memset(src, 0, sizeof *src);
	snprintf(src->file, sizeof src->file, "%s", name ? name : "");
	memset(&ps, 0, sizeof ps);
	ps.cfg = cfg;
	ps.src = src;
	ps.text = text;
	ps.len = len;
	rc = ini_parse_stream(read_line, &ps, on_key, &ps);
	if (rc > 0 && (ps.err_line == 0 || rc < ps.err_line))
		return vz__config_error(err, src->file, rc, "",
					"syntax error: expected '[section]', 'key = value' or a "
					"comment");
	if (ps.err_line) {
		if (err)
			*err = ps.err;
		return VZ_ECONFIG;
	}
	if (rc < 0)
		return vz__config_error(err, src->file, 0, "", "parser failed (%d)", rc);
	return 0;
}

/* Parse, environment, check: the common tail of every load. */
static int load_text(vz_config *cfg, const char *text, size_t len, const char *name,
		     const struct vz__topology *t, vz_config_error *err)
{
	struct vz__config_src *src = calloc(1, sizeof *src);
	struct vz__topology *own = NULL;
	int rc;

	if (!src)
		return VZ_ENOMEM;
	rc = vz__config_parse(cfg, src, text, len, name, err);
	if (rc == 0)
		rc = vz__config_apply_env_src(cfg, src, err);
	if (rc == 0 && !t) {
		own = malloc(sizeof *own);
		if (!own) {
			rc = VZ_ENOMEM;
		} else if (vz__topo_for_config(cfg, own) < 0) {
			rc = vz__config_error(err, "", 0, "",
					      "cannot read the machine's topology from sysfs");
		}
		t = own;
	}
	if (rc == 0)
		rc = vz__config_check(cfg, t, src, err);
	free(own);
	free(src);
	return rc;
}

int vz__config_load_text(vz_config *cfg, const char *text, size_t len, const char *name,
			 const struct vz__topology *t, vz_config_error *err)
{
	if (!cfg || (!text && len))
		return VZ_EINVAL;
	return load_text(cfg, text ? text : "", len, name, t, err);
}

/* strerror() is not thread-safe and loading may run on any thread. */
static const char *errtext(int e, char *buf, size_t len)
{
	return strerror_r(e, buf, len); /* the GNU variant: returns the text */
}

int vz__config_load_on(vz_config *cfg, const char *path, const struct vz__topology *t,
		       vz_config_error *err)
{
	char *buf, ebuf[128];
	size_t len = 0;
	int fd, rc;

	if (!cfg || !path)
		return VZ_EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		vz__config_error(err, path, 0, "", "cannot open: %s",
				 errtext(errno, ebuf, sizeof ebuf));
		return VZ_ENOENT;
	}
	buf = malloc(MAX_FILE_BYTES + 1);
	if (!buf) {
		close(fd);
		return VZ_ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, MAX_FILE_BYTES + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = vz__config_error(err, path, 0, "", "cannot read: %s",
					      errtext(errno, ebuf, sizeof ebuf));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > MAX_FILE_BYTES) {
			rc = vz__config_error(err, path, 0, "",
					      "file larger than %u bytes; not a configuration?",
					      MAX_FILE_BYTES);
			goto out;
		}
	}
	rc = load_text(cfg, buf, len, path, t, err);
out:
	free(buf);
	close(fd);
	return rc;
}

VZ_API int vz_config_load(vz_config *cfg, const char *path, vz_config_error *err)
{
	return vz__config_load_on(cfg, path, NULL, err);
}
