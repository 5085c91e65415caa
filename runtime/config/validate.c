// SPDX-License-Identifier: MIT
/*
 * Checking a configuration before anything starts: every value in range,
 * rings and queues powers of two, every named CPU online and inside both the
 * affinity mask and the cgroup cpuset, no two shards on one CPU unless that
 * is allowed, no [shard.N] beyond the shard count, a declared topology that
 * makes sense, and a placement that exists. The first problem found is
 * reported with its file, line and key; nothing is printed, nothing exits.
 */
#include "config/config_int.h"
#include "topo/topo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <veloz/error.h>

/* v is a (non-zero) power of two. */
static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* lo <= v <= hi, else a field error naming the range. */
static int check_range(const struct vz__config_src *src, enum vz__cfg_field f, uint32_t v,
		       uint32_t lo, uint32_t hi, vz_config_error *err)
{
	if (v < lo || v > hi)
		return vz__config_field_error(err, src, f, "%u is out of range %u..%u", v, lo, hi);
	return 0;
}

/* A capacity: a power of two in lo..hi, or 0 ("default") when zero_ok. */
static int check_pow2(const struct vz__config_src *src, enum vz__cfg_field f, uint32_t v,
		      uint32_t lo, uint32_t hi, bool zero_ok, vz_config_error *err)
{
	if (v == 0 && zero_ok)
		return 0;
	if (v < lo || v > hi)
		return vz__config_field_error(err, src, f, "%u is out of range %u..%u%s", v, lo, hi,
					      zero_ok ? " (or 0 for the default)" : "");
	if (!pow2(v))
		return vz__config_field_error(
		    err, src, f, "%u is not a power of two (e.g. %u or %u)", v,
		    1u << (31 - __builtin_clz(v)), 1u << (32 - __builtin_clz(v)));
	return 0;
}

bool vz__config_field_range(enum vz__cfg_field f, uint32_t *lo, uint32_t *hi)
{
	uint32_t l, h;

	switch (f) {
	case VZ__F_SHARDS:
		l = 1, h = VZ_MAX_SHARDS;
		break;
	case VZ__F_IDLE_SPIN_US:
		l = 0, h = VZ__SPIN_US_MAX;
		break;
	case VZ__F_TIMER_TICK_US:
		l = VZ__TICK_US_MIN, h = VZ__TICK_US_MAX;
		break;
	case VZ__F_RING_ENTRIES:
		l = VZ__RING_MIN, h = VZ__RING_MAX;
		break;
	case VZ__F_BATCH:
	case VZ__F_ACTORS_PER_TURN:
	case VZ__F_SEND_BATCH:
		l = 1, h = VZ__BATCH_MAX;
		break;
	case VZ__F_POOL_WORKERS:
		l = 0, h = VZ__POOL_WORKERS_MAX;
		break;
	case VZ__F_POOL_QUEUE_CAPACITY:
		l = VZ__POOL_QCAP_MIN, h = VZ__POOL_QCAP_MAX;
		break;
	case VZ__F_TOPO_NODES:
		l = 0, h = VZ_MAX_NODES;
		break;
	case VZ__F_RESERVE:
		l = 0, h = VZ_MAX_CPUS - 1;
		break;
	case VZ__F_OUTBOX_LIMIT:
		l = 0, h = VZ__OUTBOX_MAX;
		break;
	case VZ__F_TURN_BUDGET_US: /* 0 = counts only */
		l = 0, h = VZ__BUDGET_US_MAX;
		break;
	case VZ__F_STATS_SAMPLE_RUNS: /* 0 = default */
		l = 0, h = 65536;
		break;
	case VZ__F_STALL_BUDGET_US: /* 0 = default; else at least 1 ms */
		l = 1000, h = 60000000;
		break;
	case VZ__F_STALL_INTERVAL_MS: /* 0 = default */
		l = 0, h = 3600000;
		break;
	case VZ__F_FOREIGN_LANES: /* 0 = default */
		l = 0, h = VZ_FOREIGN_LANES_MAX;
		break;
	default:
		return false;
	}
	*lo = l;
	*hi = h;
	return true;
}

/* check_range() with the field's own range. */
static int check_field(const struct vz__config_src *src, enum vz__cfg_field f, uint32_t v,
		       vz_config_error *err)
{
	uint32_t lo = 0, hi = 0;

	vz__config_field_range(f, &lo, &hi);
	return check_range(src, f, v, lo, hi, err);
}

int vz__config_check_value(const vz_config *cfg, const struct vz__config_src *src,
			   enum vz__cfg_field f, vz_config_error *err)
{
	switch (f) {
	case VZ__F_SHARDS:
		if (cfg->nshards > VZ_MAX_SHARDS)
			return vz__config_field_error(err, src, f,
						      "%u is out of range 1..%u (or auto)",
						      cfg->nshards, VZ_MAX_SHARDS);
		return 0;
	case VZ__F_BACKEND:
		if ((unsigned)cfg->backend > VZ_BACKEND_EPOLL)
			return vz__config_field_error(err, src, f, "unknown backend %d",
						      (int)cfg->backend);
		return 0;
	case VZ__F_IDLE:
		if ((unsigned)cfg->idle_policy > VZ_IDLE_SLEEP)
			return vz__config_field_error(err, src, f, "unknown idle policy %d",
						      (int)cfg->idle_policy);
		return 0;
	case VZ__F_IDLE_SPIN_US:
		return check_field(src, f, cfg->idle_spin_us, err);
	case VZ__F_TIMER_TICK_US:
		return check_field(src, f, cfg->timer_tick_us, err);
	case VZ__F_RING_ENTRIES:
		return check_pow2(src, f, cfg->ring_entries, VZ__RING_MIN, VZ__RING_MAX, false,
				  err);
	case VZ__F_BATCH:
		return check_field(src, f, cfg->batch, err);
	case VZ__F_ACTORS_PER_TURN:
		return check_field(src, f, cfg->actors_per_turn, err);
	case VZ__F_SEND_BATCH:
		return check_field(src, f, cfg->send_batch, err);
	case VZ__F_OUTBOX_LIMIT: /* 0 = default */
		return check_field(src, f, cfg->outbox_limit, err);
	case VZ__F_TURN_BUDGET_US: /* 0 = counts only */
		return check_field(src, f, cfg->turn_budget_us, err);
	case VZ__F_STATS_SAMPLE_RUNS:
		return check_field(src, f, cfg->stats_sample_runs, err);
	case VZ__F_STALL_BUDGET_US: /* 0 = the default, outside the range */
		return cfg->stall_budget_us ? check_field(src, f, cfg->stall_budget_us, err) : 0;
	case VZ__F_STALL_INTERVAL_MS:
		return check_field(src, f, cfg->stall_interval_ms, err);
	case VZ__F_FOREIGN_LANES:
		if (cfg->foreign_lanes > VZ_FOREIGN_LANES_MAX)
			return vz__config_field_error(
			    err, src, f,
			    "%u is out of range 0..%u (0 for the default, "
			    "%u lanes per shard)",
			    cfg->foreign_lanes, VZ_FOREIGN_LANES_MAX, VZ_FOREIGN_LANES_DEFAULT);
		return 0;
	case VZ__F_POOL_WORKERS:
		return check_field(src, f, cfg->pool.workers_per_node, err);
	case VZ__F_POOL_QUEUE_CAPACITY:
		return check_pow2(src, f, cfg->pool.queue_capacity, VZ__POOL_QCAP_MIN,
				  VZ__POOL_QCAP_MAX, true, err);
	case VZ__F_POOL_OVERLOAD:
		if ((unsigned)cfg->pool.overload > VZ_POOL_SPILL)
			return vz__config_field_error(err, src, f, "unknown overload policy %d",
						      (int)cfg->pool.overload);
		return 0;
	case VZ__F_TOPO_NODES:
		return check_field(src, f, cfg->topology.nnodes, err);
	case VZ__F_RESERVE:
		if (cfg->reserve_count && vz_cpuset_count(&cfg->reserve_cpus))
			return vz__config_field_error(err, src, f,
						      "reserve_count (%u) and reserve_cpus are "
						      "both set; give one of them",
						      cfg->reserve_count);
		return check_field(src, f, cfg->reserve_count, err);
	case VZ__F_CPUS:
	case VZ__F_ALLOW_SHARED:
	case VZ__F_POOL_SHARE:
	case VZ__F_STATS_TYPES:
	case VZ__F_STALL:
	case VZ__F_STATS_SHM:
	case VZ__F_POOL_NODES:
	case VZ__F_COUNT:
		break;
	}
	return 0;
}

int vz__config_check_shard(const vz_config *cfg, const struct vz__config_src *src, unsigned i,
			   vz_config_error *err)
{
	const vz_shard_config *s = &cfg->shards[i];
	char key[40];
	uint32_t v = s->ring_entries;

	if (s->cpu < -1 || s->cpu >= VZ_MAX_CPUS) {
		snprintf(key, sizeof key, "shard.%u.cpu", i);
		return vz__config_error_at(err, src, src ? src->shard_cpu[i] : 0, NULL, key,
					   "CPU %d is out of range 0..%u (or -1 for auto)", s->cpu,
					   VZ_MAX_CPUS - 1);
	}
	snprintf(key, sizeof key, "shard.%u.ring_entries", i);
	if (v != 0 && (v < VZ__RING_MIN || v > VZ__RING_MAX))
		return vz__config_error_at(err, src, src ? src->shard_ring[i] : 0, NULL, key,
					   "%u is out of range %u..%u (or 0 for the default)", v,
					   VZ__RING_MIN, VZ__RING_MAX);
	if (v != 0 && !pow2(v))
		return vz__config_error_at(err, src, src ? src->shard_ring[i] : 0, NULL, key,
					   "%u is not a power of two (e.g. %u or %u)", v,
					   1u << (31 - __builtin_clz(v)),
					   1u << (32 - __builtin_clz(v)));
	return 0;
}

/* The declared topology: nodes 0..nnodes-1 each with CPUs, no CPU in two
 * nodes, nothing declared beyond nnodes. */
static int check_topology_decl(const vz_config *cfg, const struct vz__config_src *src,
			       vz_config_error *err)
{
	const vz_topology_decl *d = &cfg->topology;
	vz_cpuset seen;
	char key[32];

	if (d->nnodes == 0) {
		for (unsigned n = 0; n < VZ_MAX_NODES; n++) {
			if (vz_cpuset_count(&d->node_cpus[n]) && src && src->topo_node[n]) {
				snprintf(key, sizeof key, "topology.node.%u", n);
				return vz__config_error_at(err, src, src->topo_node[n], NULL, key,
							   "node %u declared but topology.nodes is "
							   "not set (nodes = N declares N nodes)",
							   n);
			}
		}
		return 0;
	}
	vz_cpuset_zero(&seen);
	for (unsigned n = 0; n < VZ_MAX_NODES; n++) {
		const vz_cpuset *c = &d->node_cpus[n];
		int line = src ? src->topo_node[n] : 0;
		vz_cpuset overlap = *c;

		snprintf(key, sizeof key, "topology.node.%u", n);
		if (n >= d->nnodes) {
			if (vz_cpuset_count(c))
				return vz__config_error_at(err, src, line, NULL, key,
							   "node %u does not exist (topology.nodes "
							   "= %u declares nodes 0..%u)",
							   n, d->nnodes, d->nnodes - 1);
			continue;
		}
		if (!vz_cpuset_count(c))
			return vz__config_error_at(
			    err, src, line ? line : (src ? src->line[VZ__F_TOPO_NODES] : 0), NULL,
			    key, "declared node %u has no CPUs", n);
		vz__cpuset_and(&overlap, &seen);
		if (vz_cpuset_count(&overlap))
			return vz__config_error_at(err, src, line, NULL, key,
						   "CPU %d is declared in two nodes",
						   vz__cpuset_first(&overlap));
		vz__cpuset_or(&seen, c);
	}
	return 0;
}

int vz__config_check(const vz_config *cfg, const struct vz__topology *t,
		     const struct vz__config_src *src, vz_config_error *err)
{
	int cpu_of_shard[VZ_MAX_SHARDS];
	unsigned count;
	int rc;

	if (!cfg || !t)
		return VZ_EINVAL;
	for (int f = 0; f < VZ__F_COUNT; f++) {
		rc = vz__config_check_value(cfg, src, (enum vz__cfg_field)f, err);
		if (rc < 0)
			return rc;
	}
	rc = check_topology_decl(cfg, src, err);
	if (rc < 0)
		return rc;

	/* placement: CPUs allowed, pins allowed and distinct, enough CPUs */
	rc = vz__plan_shards_src(cfg, t, src, cpu_of_shard, &count, err);
	if (rc < 0)
		return rc;
	/* entries past the count are unused (a file naming one is caught below) */
	for (unsigned i = 0; i < count; i++) {
		rc = vz__config_check_shard(cfg, src, i, err);
		if (rc < 0)
			return rc;
	}
	if (src) {
		for (unsigned i = count; i < VZ_MAX_SHARDS; i++) {
			char key[32];

			if (!src->shard_section[i])
				continue;
			snprintf(key, sizeof key, "shard.%u", i);
			if (cfg->nshards)
				return vz__config_error_at(
				    err, src, src->shard_section[i], NULL, key,
				    "shard %u does not exist: runtime.shards "
				    "= %u (shards 0..%u)",
				    i, count, count - 1);
			return vz__config_error_at(err, src, src->shard_section[i], NULL, key,
						   "shard %u does not exist: runtime.shards = auto "
						   "gives %u shards here (shards 0..%u)",
						   i, count, count - 1);
		}
	}

	rc = vz__config_check_classes(cfg, src, err);
	if (rc < 0)
		return rc;

	/* one publish must fit in every ring it goes to */
	for (unsigned i = 0; i < count; i++) {
		uint32_t ring =
		    cfg->shards[i].ring_entries ? cfg->shards[i].ring_entries : cfg->ring_entries;

		if (cfg->send_batch > ring)
			return vz__config_field_error(err, src, VZ__F_SEND_BATCH,
						      "%u is larger than the %u-entry ring of "
						      "shard %u",
						      cfg->send_batch, ring, i);
	}

#ifdef VZ_CONFIG_HAS_POOL_NODES
	for (unsigned n = 0; n < 64; n++) {
		if (!(cfg->pool.nodes >> n & 1))
			continue;
		if (n >= t->nnodes || !vz_cpuset_count(&t->node_cpus[n]))
			return vz__config_field_error(err, src, VZ__F_POOL_NODES,
						      "pool on node %u, which does not exist here "
						      "(nodes with CPUs: 0..%u)",
						      n, t->nnodes - 1);
	}
#endif
	return 0;
}

VZ_API int vz_config_validate(const vz_config *cfg, vz_config_error *err)
{
	struct vz__topology *t;
	int rc;

	if (!cfg)
		return VZ_EINVAL;
	t = malloc(sizeof *t);
	if (!t)
		return VZ_ENOMEM;
	if (vz__topo_for_config(cfg, t) < 0)
		rc = vz__config_error(err, "", 0, "", "cannot read the machine's topology");
	else
		rc = vz__config_check(cfg, t, NULL, err);
	free(t);
	return rc;
}

int vz__config_check_classes(const vz_config *cfg, const struct vz__config_src *src,
			     vz_config_error *err)
{
	char key[48];

	if (cfg->nclasses > VZ_MAX_CLASSES)
		return vz__config_error(err, src ? src->file : "", 0, "class",
					"%u scheduling classes; at most %u", cfg->nclasses,
					VZ_MAX_CLASSES);
	if (cfg->nclasses < 2)
		return 0; /* one class: shares and quota unused */
	for (unsigned c = 0; c < cfg->nclasses; c++) {
		const vz_class_config *k = &cfg->classes[c];

		if (src && !src->class_section[c]) {
			/* Blamed on the highest section, the one that made
			 * the count: that is the line to renumber or the
			 * place to add the missing one before. */
			unsigned last = cfg->nclasses - 1;

			snprintf(key, sizeof key, "class.%u", last);
			return vz__config_error_at(err, src, src->class_section[last], NULL, key,
						   "classes are numbered from 0 without gaps: "
						   "[class.%u] is missing (there are %u)",
						   c, cfg->nclasses);
		}
		if (k->shares < 1 || k->shares > VZ__SHARES_MAX) {
			/* No shares key: the class's section line. */
			int line = src ? (src->class_shares[c] ? src->class_shares[c]
							       : src->class_section[c])
				       : 0;

			snprintf(key, sizeof key, "class.%u.shares", c);
			return vz__config_error_at(err, src, line, NULL, key,
						   "shares %u is out of range 1..%u%s", k->shares,
						   VZ__SHARES_MAX,
						   k->shares ? "" : " (every class needs shares)");
		}
		if (k->quota_us > VZ__QUOTA_US_MAX) {
			snprintf(key, sizeof key, "class.%u.quota_us", c);
			return vz__config_error_at(err, src, src ? src->class_quota[c] : 0, NULL,
						   key, "%u is out of range 0..%u", k->quota_us,
						   VZ__QUOTA_US_MAX);
		}
	}
	return 0;
}
