/* SPDX-License-Identifier: MIT */
/*
 * Supervisors (actors/supervisor/supervisor.c, built only on the public
 * API): an actor that starts children from specs, on any shards, watches
 * them through links (it traps exits) and restarts them by a strategy,
 * within a restart intensity; past it, the supervisor fails upward.
 *
 * Start: children start one after the other, in spec order, each once the
 * previous one's init has run (its VZ_MSG_SPAWNED came back). If a
 * child's init fails during this first start, the supervisor stops the
 * children it started (in reverse order) and fails with that code.
 *
 * A child ends: by its restart kind (permanent: always restarted;
 * transient: only after an abnormal exit, vz_exit_abnormal(); temporary:
 * never) the strategy picks which children restart:
 *   VZ_SUP_ONE_FOR_ONE   just that one;
 *   VZ_SUP_ONE_FOR_ALL   every child: the others are stopped in reverse
 *                        spec order (each waited for), then all start in
 *                        spec order;
 *   VZ_SUP_REST_FOR_ONE  that one and those after it in spec order,
 *                        likewise.
 * Each such decision is one restart. More than max_restarts restarts
 * within period_ns and the supervisor fails (vz_fail() with VZ_EBUSY,
 * "restart intensity reached"): its watchers get DOWN with that reason,
 * its own links an abnormal exit, and every child linked to it (all of
 * them, unless they trap exits) stops.
 *
 * A restarted child is a new actor with a new reference. The supervisor
 * keeps each child's vz_sup_name current: the reference of the child's
 * running incarnation, null between an end and the next start. Any thread
 * may read it with vz_sup_name_ref(); a send to a reference read just
 * before a restart is refused (VZ_ESTALE) or dead-lettered, never
 * delivered to the new incarnation.
 *
 * Stop: vz_sup_shutdown() stops the children in reverse spec order, each
 * waited for, and then the supervisor itself (a normal exit). When the
 * supervisor stops otherwise (vz_stop(), the runtime stopping, or it
 * fails), its on_stop only asks its children to stop in reverse spec order
 * (a child on the supervisor's shard stops at once; one elsewhere gets a
 * stop request, so children on different shards may end in any order),
 * and a child whose start was still in flight then is not reached; it
 * ends with the runtime.
 */
#ifndef VELOZ_SUPERVISOR_H
#define VELOZ_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "export.h"
#include "lifecycle.h"

VZ_BEGIN_DECLS

typedef enum vz_sup_strategy {
	VZ_SUP_ONE_FOR_ONE = 0,
	VZ_SUP_ONE_FOR_ALL,
	VZ_SUP_REST_FOR_ONE,
} vz_sup_strategy;

typedef enum vz_sup_restart {
	VZ_SUP_PERMANENT = 0,
	VZ_SUP_TRANSIENT,
	VZ_SUP_TEMPORARY,
} vz_sup_restart;

/* Where a supervisor publishes a child's current reference. Caller-owned,
 * zero-initialised, must outlive the supervisor. */
typedef struct vz_sup_name {
	/* Written by the supervisor with a release store, read with an
	 * acquire load (vz_sup_name_ref()). A plain uint64_t accessed through
	 * the compiler's __atomic builtins rather than _Atomic, so that this
	 * header also compiles as C++ (which has no _Atomic before C++23). */
	uint64_t ref;
} vz_sup_name;

/* The child's current reference, or null (not running). Any thread.
 * Acquire: pairs with the supervisor's release store, so the reference is
 * not read before the child's init has run. */
static inline vz_ref vz_sup_name_ref(const vz_sup_name *n)
{
	vz_ref r = {__atomic_load_n(&n->ref, __ATOMIC_ACQUIRE)};

	return r;
}

typedef struct vz_sup_child {
	const vz_actor_spec *spec; /* must outlive the supervisor */
	const void *arg;	   /* arg_len bytes copied at every start (vz_spawn_on()) */
	size_t arg_len;
	unsigned shard; /* VZ_SHARD_HERE: the supervisor's shard */
	vz_sup_restart restart;
	vz_sup_name *name; /* optional */
} vz_sup_child;

typedef struct vz_sup_spec {
	vz_sup_strategy strategy;
	uint32_t max_restarts; /* restart intensity: at most this many ... */
	uint64_t period_ns;    /* ... within this window, else the supervisor fails */
	const vz_sup_child *children;
	unsigned nchildren; /* at most VZ_SUP_MAX_CHILDREN */
} vz_sup_spec;

#define VZ_SUP_MAX_CHILDREN 1024

/* The supervisor actor. Spawn it with arg = a const vz_sup_spec * that
 * outlives it: vz_spawn(rt, shard, &vz_supervisor, &spec, &ref), or
 * vz_spawn_wait(), or from an actor vz_spawn_on(self, shard, &vz_supervisor,
 * &spec, sizeof spec, tag) (the struct is copied; its children array must
 * outlive the supervisor). Its init returns VZ_EINVAL for a bad spec (NULL,
 * no or too many children, a child without spec), VZ_ENOMEM. */
VZ_API extern const vz_actor_spec vz_supervisor;

/* The message type vz_sup_shutdown() sends; a supervisor takes no other. */
#define VZ_SUP_MSG_SHUTDOWN 0x7fff0000u

/* Ask supervisor `sup` for an orderly stop: children in reverse spec
 * order, each one's end waited for, then the supervisor. Any thread (a
 * vz_post()); same errors. The stop happens on the supervisor's shard
 * later; monitor the supervisor to learn when it is done. */
VZ_API int vz_sup_shutdown(vz_runtime *rt, vz_ref sup);

VZ_END_DECLS

#endif
