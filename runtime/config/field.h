/* SPDX-License-Identifier: MIT */
/*
 * A configuration's fields as the checks see them: which value it is
 * (enum vz__cfg_field) and its "section.key" name, where each value came
 * from (struct vz__config_src), the check of one value on its own, and the
 * error reports that name the file, line and key (report.c; the one-value
 * check is validate.c's).
 *
 * Layering: runtime/config sits above runtime/topo (the loader and the
 * checks place shards on the machine, topo.h), while topo's placement
 * (topo/plan.c) reports its refusals in the config's terms. What placement
 * needs from the config is therefore this header, which includes nothing
 * of the runtime but the public header, and topo includes no other config
 * header: util/cpuset.h <- config/field.h <- topo/ <- config_int.h and the
 * rest of config/ <- core/. (The one call that still goes back up is
 * plan.c's use of vz__config_check_value(), which validate.c defines next
 * to the checks that place shards; a file of its own for the one-value
 * checks would end it.)
 */
#ifndef VZ_CONFIG_FIELD_H
#define VZ_CONFIG_FIELD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <veloz/config.h>

/* Every value a file or the environment can set, except the per-shard and
 * per-node ones (indexed separately in struct vz__config_src). */
enum vz__cfg_field {
	VZ__F_SHARDS,
	VZ__F_CPUS,
	VZ__F_BACKEND,
	VZ__F_IDLE,
	VZ__F_IDLE_SPIN_US,
	VZ__F_TIMER_TICK_US,
	VZ__F_RING_ENTRIES,
	VZ__F_BATCH,
	VZ__F_ACTORS_PER_TURN,
	VZ__F_SEND_BATCH,
	VZ__F_OUTBOX_LIMIT,
	VZ__F_ALLOW_SHARED,
	VZ__F_POOL_WORKERS,
	VZ__F_POOL_QUEUE_CAPACITY,
	VZ__F_POOL_OVERLOAD,
	VZ__F_POOL_SHARE,
	VZ__F_POOL_NODES,
	VZ__F_TOPO_NODES,
	VZ__F_RESERVE, /* reserve_count or reserve_cpus (one key) */
	VZ__F_TURN_BUDGET_US,
	VZ__F_STATS_TYPES,
	VZ__F_STATS_SAMPLE_RUNS,
	VZ__F_STALL,
	VZ__F_STALL_BUDGET_US,
	VZ__F_STALL_INTERVAL_MS,
	VZ__F_STATS_SHM,
	VZ__F_FOREIGN_LANES,
	VZ__F_COUNT
};

/* Where each value came from. line: 0 = default or set by code, > 0 = line
 * of the file, VZ__LINE_ENV = an environment variable (env[] names it). */
#define VZ__LINE_ENV (-1)

#define VZ__CLUSTER_KEYS 17 /* keys of [cluster] (load.c) */

struct vz__config_src {
	char file[256];
	int line[VZ__F_COUNT];
	const char *env[VZ__F_COUNT];	  /* static strings, e.g. "VZ_SHARDS" */
	int shard_section[VZ_MAX_SHARDS]; /* line of the first key of [shard.N]; 0 = absent */
	int shard_cpu[VZ_MAX_SHARDS];
	int shard_ring[VZ_MAX_SHARDS];
	int shard_embedded[VZ_MAX_SHARDS];
	int topo_node[VZ_MAX_NODES]; /* line of topology node.N */
	/* [class.N]: line of the section's first key, and of each key */
	int class_section[VZ_MAX_CLASSES];
	int class_name[VZ_MAX_CLASSES];
	int class_shares[VZ_MAX_CLASSES];
	int class_quota[VZ_MAX_CLASSES];
	int class_latency[VZ_MAX_CLASSES];
	/* [cluster]: line of each key, in load.c's cluster_keys order */
	int cluster[VZ__CLUSTER_KEYS];
};

/* Range and syntax-free checks of one value as it stands in cfg (what
 * vz__config_set() runs after storing a value, and vz__config_check() runs
 * for every value): numbers in range, powers of two, enums in range.
 * 0 or VZ_ECONFIG. */
int vz__config_check_value(const vz_config *cfg, const struct vz__config_src *src,
			   enum vz__cfg_field f, vz_config_error *err);

/* The "section.key" name of a field ("runtime.shards"). */
const char *vz__config_field_key(enum vz__cfg_field f);

/* Fill *err (when non-NULL) for field f, taking file/line from src and
 * appending "(from VZ_X)" for environment values. Returns VZ_ECONFIG. */
int vz__config_field_error(vz_config_error *err, const struct vz__config_src *src,
			   enum vz__cfg_field f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fill *err for a value recorded at `line` of src's file (line
 * VZ__LINE_ENV: from environment variable env, named in the message).
 * Returns VZ_ECONFIG. */
int vz__config_error_at(vz_config_error *err, const struct vz__config_src *src, int line,
			const char *env, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Fill *err with exactly these parts (file NULL = ""). Returns VZ_ECONFIG. */
int vz__config_error(vz_config_error *err, const char *file, int line, const char *key,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int vz__config_verror(vz_config_error *err, const char *file, int line, const char *key,
		      const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

#endif
