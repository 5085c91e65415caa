/* SPDX-License-Identifier: MIT */
/*
 * Internals of configuration loading and checking, shared by the files of
 * runtime/config (load, environment, validation, cpuset syntax), the
 * topology planner, the veloz-topo tool, the tests and the fuzz target.
 *
 * The public struct vz_config has no room for "where did this value come
 * from", yet every error must name the file, line and key. That bookkeeping
 * lives in struct vz__config_src, filled while a file and the environment
 * are applied and consulted by the checks; code that fills a vz_config by
 * hand simply has no source (NULL), and errors then carry line 0 and file "".
 */
#ifndef VZ_CONFIG_INT_H
#define VZ_CONFIG_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz/config.h>

struct vz__topology;

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

/* ---- cpuset syntax (cpuset_parse.c) ---------------------------------- */

#define VZ__CPUSET_ALLOW_EMPTY 1u /* "" (only blanks) is the empty set, not an error */
#define VZ__CPUSET_IGNORE_HIGH 2u /* CPUs >= VZ_MAX_CPUS are dropped, not an error */

/* Parse the kernel's cpulist syntax: comma-separated CPU numbers and
 * inclusive ranges "a-b", blanks allowed around every token ("0-3, 8,
 * 10-11"). Decimal only; no stride. Fills *out (cleared first). Returns 0,
 * or VZ_EINVAL with a one-line reason in why (may be NULL). Any thread. */
int vz__cpuset_parse(const char *s, unsigned flags, vz_cpuset *out, char *why, size_t why_len);

/* Write s in the same syntax, ranges collapsed ("0-3,8,10-11"; "" for the
 * empty set) into buf (always NUL-terminated when len > 0; truncated output
 * ends in "..."). Returns the length the full text needs (like snprintf). */
size_t vz__cpuset_format(const vz_cpuset *s, char *buf, size_t len);

/* a = a ∩ b; a = a ∪ b; lowest CPU of s or -1; a ⊆ b */
void vz__cpuset_and(vz_cpuset *a, const vz_cpuset *b);
void vz__cpuset_or(vz_cpuset *a, const vz_cpuset *b);
int vz__cpuset_first(const vz_cpuset *s);
bool vz__cpuset_subset(const vz_cpuset *a, const vz_cpuset *b);

/* ---- the backend's names (backend.c) ------------------------------------ */

/* The spellings every reader accepts, for messages. */
#define VZ__BACKEND_CHOICES "auto|io_uring|epoll"

/* The one parser of a backend name, used by the INI loader, the VZ_BACKEND
 * override (vz_config_apply_env), the I/O layer's own look at VZ_BACKEND at
 * runtime creation, and veloz-topo: "auto", "io_uring" or "epoll", case
 * ignored, nothing else (no blanks: a file's value is already trimmed).
 * 0 with *out set, or VZ_EINVAL. Any thread. */
int vz__backend_parse(const char *s, vz_backend_kind *out);

/* The config spelling of a kind ("auto", "io_uring", "epoll"); "?" for a
 * value outside the enum. */
const char *vz__backend_name(vz_backend_kind kind);

/* ---- values and keys (load.c) ----------------------------------------- */

/* Apply one "key = value" of [section]. line > 0 for a file line,
 * VZ__LINE_ENV with env_name set for an environment variable. Checks the
 * syntax and the range of the value (everything that does not need the
 * machine or other keys); records the origin in src (must not be NULL).
 * 0 or VZ_ECONFIG with *err filled (err may be NULL). */
int vz__config_set(vz_config *cfg, struct vz__config_src *src, const char *section, const char *key,
		   const char *value, int line, const char *env_name, vz_config_error *err);

/* Parse INI text (len bytes, need not be NUL-terminated) named `name` into
 * cfg, recording origins in src (cleared first; must not be NULL). No
 * environment, no machine checks. Duplicate keys are an error. 0 or
 * VZ_ECONFIG with *err filled. */
int vz__config_parse(vz_config *cfg, struct vz__config_src *src, const char *text, size_t len,
		     const char *name, vz_config_error *err);

/* The whole of vz_config_load() on text already in memory, checked against
 * t (NULL: the topology cfg declares, else the detected machine). */
int vz__config_load_text(vz_config *cfg, const char *text, size_t len, const char *name,
			 const struct vz__topology *t, vz_config_error *err);

/* vz_config_load() checked against t (NULL: as vz_config_load()). */
int vz__config_load_on(vz_config *cfg, const char *path, const struct vz__topology *t,
		       vz_config_error *err);

/* vz_config_apply_env() that also records the origins in src (may be NULL). */
int vz__config_apply_env_src(vz_config *cfg, struct vz__config_src *src, vz_config_error *err);

/* ---- checks (validate.c) ---------------------------------------------- */

/* Every check vz_config_validate() makes, against topology t, naming the
 * file, line and key from src (NULL: file "", line 0). Includes the shard
 * placement (vz__plan_shards). 0 or VZ_ECONFIG. */
int vz__config_check(const vz_config *cfg, const struct vz__topology *t,
		     const struct vz__config_src *src, vz_config_error *err);

/* Placement with origins (vz__plan_shards() is this with src NULL). */
int vz__plan_shards_src(const vz_config *cfg, const struct vz__topology *t,
			const struct vz__config_src *src, int cpu_of_shard[VZ_MAX_SHARDS],
			unsigned *nshards, vz_config_error *err);

/* The CPUs cfg reserves for the embedder on t (vz_config.reserve_count /
 * reserve_cpus), checked: each listed CPU allowed, count and list not both
 * set, at least one placement CPU left. *out is empty when nothing is
 * reserved. 0 or VZ_ECONFIG naming runtime.reserve_cpus. */
int vz__plan_reserved(const vz_config *cfg, const struct vz__topology *t,
		      const struct vz__config_src *src, vz_cpuset *out, vz_config_error *err);

/* The numeric range lo..hi of a u32 field (what vz__config_check_value()
 * enforces; a capacity must also be a power of two). false for fields that
 * are not plain numbers. Lets a value too large for 32 bits be reported as
 * "out of range lo..hi" like any other. */
bool vz__config_field_range(enum vz__cfg_field f, uint32_t *lo, uint32_t *hi);

/* Range and syntax-free checks of one value as it stands in cfg (what
 * vz__config_set() runs after storing a value, and vz__config_check() runs
 * for every value): numbers in range, powers of two, enums in range.
 * 0 or VZ_ECONFIG. */
int vz__config_check_value(const vz_config *cfg, const struct vz__config_src *src,
			   enum vz__cfg_field f, vz_config_error *err);
/* The same for shard i's entry (cpu -1..VZ_MAX_CPUS-1, ring 0 or a power of
 * two in range). */
int vz__config_check_shard(const vz_config *cfg, const struct vz__config_src *src, unsigned i,
			   vz_config_error *err);

/* The scheduling classes cfg declares: nclasses in range, and with two or
 * more, each with shares 1..VZ__SHARES_MAX and quota_us at most
 * VZ__QUOTA_US_MAX. 0 or VZ_ECONFIG naming class.N.key. */
int vz__config_check_classes(const vz_config *cfg, const struct vz__config_src *src,
			     vz_config_error *err);

/* Ranges shared by parsing, validation and the documentation. */
#define VZ__SPIN_US_MAX	     1000000u
#define VZ__TICK_US_MIN	     10u
#define VZ__TICK_US_MAX	     1000000u
#define VZ__RING_MIN	     2u
#define VZ__RING_MAX	     (1u << 20)
#define VZ__BATCH_MAX	     65536u
#define VZ__OUTBOX_MAX	     (1u << 24)
#define VZ__BUDGET_US_MAX    1000000u /* runtime.turn_budget_us */
#define VZ__POOL_WORKERS_MAX 1024u
#define VZ__SHARES_MAX	     10000u   /* class.N.shares */
#define VZ__QUOTA_US_MAX     1000000u /* class.N.quota_us */
#define VZ__POOL_QCAP_MIN    2u
#define VZ__POOL_QCAP_MAX    (1u << 24)

/* Why CPU `cpu` may not host a shard on t ("CPU 5 is not online (online:
 * 0-3)", "... outside the process affinity mask ...", "... outside the
 * cgroup cpuset ..."): true with the reason in why, or false when it is
 * allowed. */
bool vz__cpu_refused(const struct vz__topology *t, unsigned cpu, char *why, size_t why_len);

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

/* The candidate closest to `word` by edit distance (ignoring case), or NULL
 * when none is close enough to be a plausible typo. */
const char *vz__config_suggest(const char *word, const char *const *candidates, size_t n);

#endif
