// SPDX-License-Identifier: MIT
/*
 * Runtime messages and the process's list of live runtimes.
 *
 * Every message the runtime writes goes through vz__log(): to the
 * embedder's vz_config.log hook when there is one, else one line on stderr.
 *
 * The list of live runtimes exists for one warning: two runtimes created
 * with defaults each put a shard on every allowed CPU, and then silently
 * time-share every CPU. Nothing else may be global (DESIGN.md §4: two
 * runtimes in one process are independent), and this list does not make
 * them dependent: it is only read to warn, never to decide anything. It is
 * a plain list under one mutex because it is touched only by
 * vz_runtime_create() and vz_runtime_destroy(), never by a shard loop, a
 * send or a poll, so a lock costs nothing that matters; a lock-free list
 * would buy nothing here.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "config/config_int.h"
#include "core/registry.h"
#include "core/runtime.h"

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static vz_runtime *live_head; /* guarded by live_lock */

void vz__log(const vz_config *cfg, vz_log_level level, const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (cfg && cfg->log) {
		cfg->log(level, text, cfg->log_user);
		return;
	}
	fprintf(stderr, "veloz: %s\n", text);
}

void vz__live_add(vz_runtime *rt)
{
	vz_cpuset overlap;
	unsigned shared_with = 0;
	char set[256];

	vz_cpuset_zero(&overlap);
	pthread_mutex_lock(&live_lock);
	for (vz_runtime *o = live_head; o; o = o->live_next) {
		vz_cpuset both = rt->shard_cpus;

		vz__cpuset_and(&both, &o->shard_cpus);
		if (vz_cpuset_count(&both)) {
			vz__cpuset_or(&overlap, &both);
			shared_with++;
		}
	}
	rt->live_next = live_head;
	live_head = rt;
	rt->live_linked = true;
	pthread_mutex_unlock(&live_lock);
	/* Logged after unlocking: the hook is the embedder's code and may
	 * create or destroy a runtime itself. */
	if (shared_with) {
		vz__cpuset_format(&overlap, set, sizeof set);
		vz__log(&rt->cfg, VZ_LOG_WARNING,
			"CPU%s %s host%s shards of this runtime and of %u other live runtime%s "
			"in this process; their threads will time-share those CPUs. "
			"Give each runtime its own CPUs (runtime.cpus, shard.N.cpu) or keep some "
			"free (runtime.reserve_cpus)",
			vz_cpuset_count(&overlap) == 1 ? "" : "s", set,
			vz_cpuset_count(&overlap) == 1 ? "s" : "", shared_with,
			shared_with == 1 ? "" : "s");
	}
}

void vz__live_remove(vz_runtime *rt)
{
	pthread_mutex_lock(&live_lock);
	if (rt->live_linked) {
		for (vz_runtime **p = &live_head; *p; p = &(*p)->live_next) {
			if (*p == rt) {
				*p = rt->live_next;
				break;
			}
		}
		rt->live_linked = false;
		rt->live_next = NULL;
	}
	pthread_mutex_unlock(&live_lock);
}

VZ_API int vz_runtime_reserved_cpus(const vz_runtime *rt, vz_cpuset *out)
{
	if (!rt || !out)
		return VZ_EINVAL;
	*out = rt->reserved; /* written by create only */
	return 0;
}
