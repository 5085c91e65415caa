/* SPDX-License-Identifier: MIT */
/*
 * Runtime messages and the process's list of live runtimes (registry.c).
 */
#ifndef VZ_CORE_REGISTRY_H
#define VZ_CORE_REGISTRY_H

#include <veloz.h>

/* registry.c: runtime messages and the process's live runtimes */
/* One message through cfg->log (stderr "veloz: text" when NULL). */
void vz__log(const vz_config *cfg, vz_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Enter rt (its shard_cpus filled) in the list of live runtimes, warning
 * through rt's log hook when its shard CPUs overlap a live runtime's. */
void vz__live_add(vz_runtime *rt);
/* Leave the list (no-op when not in it). */
void vz__live_remove(vz_runtime *rt);

#endif
