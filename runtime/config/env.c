// SPDX-License-Identifier: MIT
/*
 * VZ_* environment overrides, applied after the file so an operator can
 * change a deployed configuration without editing it. Each variable is the
 * same as one key ([runtime], or [stats] for VZ_STATS_SHM) and goes through vz__config_set(), so
 * the value syntax and ranges are the file's; errors name the key and the variable.
 *
 * VZ_BACKEND is also read by the I/O layer when a runtime is created (it
 * wins over the config there); setting cfg->backend from it here agrees
 * with that and makes `veloz-topo` show the backend that will be used.
 * Both read it with vz__backend_parse(), so they accept the same values.
 */
#include "config/config_int.h"

#include <stdlib.h>
#include <string.h>

#include <veloz/error.h>

static const struct {
	const char *var;
	const char *section;
	const char *key;
} overrides[] = {
    {"VZ_SHARDS", "runtime", "shards"},
    {"VZ_CPUS", "runtime", "cpus"},
    {"VZ_BACKEND", "runtime", "backend"},
    {"VZ_IDLE", "runtime", "idle"},
    {"VZ_SPIN_US", "runtime", "idle_spin_us"},
    {"VZ_TICK_US", "runtime", "timer_tick_us"},
    {"VZ_RING_ENTRIES", "runtime", "ring_entries"},
    {"VZ_RESERVE_CPUS", "runtime", "reserve_cpus"},
    {"VZ_STATS_SHM", "stats", "shm"},
};

int vz__config_apply_env_src(vz_config *cfg, struct vz__config_src *src, vz_config_error *err)
{
	struct vz__config_src scratch;

	if (!cfg)
		return VZ_EINVAL;
	if (!src) {
		/* origins are needed while setting (duplicate check, messages) */
		memset(&scratch, 0, sizeof scratch);
		src = &scratch;
	}
	for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
		/* getenv is safe against concurrent getenv; a concurrent setenv
		 * elsewhere in the process is the caller's race, as with libc */
		const char *v = secure_getenv(overrides[i].var);
		int rc;

		if (!v || !*v)
			continue; /* unset or empty: no override */
		rc = vz__config_set(cfg, src, overrides[i].section, overrides[i].key, v,
				    VZ__LINE_ENV, overrides[i].var, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

VZ_API int vz_config_apply_env(vz_config *cfg, vz_config_error *err)
{
	return vz__config_apply_env_src(cfg, NULL, err);
}
