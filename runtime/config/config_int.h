/* SPDX-License-Identifier: MIT */
/*
 * Internals of configuration loading and checking, shared by the files of
 * runtime/config (load, environment, validation, backend names, error
 * reports), the runtime's create, the veloz-topo tool, the tests and the
 * fuzz target.
 *
 * The public struct vz_config has no room for "where did this value come
 * from", yet every error must name the file, line and key. That bookkeeping
 * lives in struct vz__config_src (field.h), filled while a file and the
 * environment are applied and consulted by the checks; code that fills a
 * vz_config by hand simply has no source (NULL), and errors then carry line
 * 0 and file "".
 *
 * Layering: this header and the files that include it sit above
 * runtime/topo; they may include topo/topo.h, never the other way round.
 * What topo's placement needs from the config (fields, origins, error
 * reports) is config/field.h, and the cpuset syntax is util/cpuset.h; both
 * are included here, so a file that includes this header sees them too.
 */
#ifndef VZ_CONFIG_INT_H
#define VZ_CONFIG_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz/config.h>

#include "config/field.h"
#include "util/cpuset.h"

struct vz__topology;

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

/* The numeric range lo..hi of a u32 field (what vz__config_check_value()
 * enforces; a capacity must also be a power of two). false for fields that
 * are not plain numbers. Lets a value too large for 32 bits be reported as
 * "out of range lo..hi" like any other. */
bool vz__config_field_range(enum vz__cfg_field f, uint32_t *lo, uint32_t *hi);

/* vz__config_check_value() (field.h) for shard i's entry (cpu
 * -1..VZ_MAX_CPUS-1, ring 0 or a power of two in range). */
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

/* The candidate closest to `word` by edit distance (ignoring case), or NULL
 * when none is close enough to be a plausible typo. */
const char *vz__config_suggest(const char *word, const char *const *candidates, size_t n);

#endif
