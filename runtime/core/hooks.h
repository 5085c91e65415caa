/* SPDX-License-Identifier: MIT */
/*
 * Where the core calls out to the parts built on top of it: the actor I/O
 * layer (runtime/aio/fdtab.c), the cluster (runtime/cluster/cluster.c) and
 * the simulation (runtime/sim/sim.c, sim_pool.c). Those parts include
 * core.h and define these functions; the core declares them here and
 * includes none of their headers, so the include graph between the core
 * and them goes one way (their layout: aio/aio.h, cluster/cluster_int.h,
 * sim/sim.h).
 */
#ifndef VZ_CORE_HOOKS_H
#define VZ_CORE_HOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz.h>

struct vz__shard;
struct vz_actor;
struct vz_msg;
struct vz_sim;
struct vz__timer_owner;

/* runtime/sim: the virtual clock and the handled-message hook. */
uint64_t vz__sim_now(const struct vz_sim *sim);
void vz__sim_handled(struct vz_sim *sim, const struct vz__shard *sh, const struct vz_msg *m);
/* A monitor id for a simulated runtime: a per-simulation counter (the
 * process-wide one would make a run depend on the runs before it in the
 * process), with bit 62 set so it never equals a real runtime's. */
uint64_t vz__sim_monitor_id(struct vz_sim *sim);
/* Complete every job still queued with VZ_ECANCELED and refuse later
 * submissions (vz_runtime_stop(), as vz__pools_stop() does for workers). */
void vz__sim_pool_stop(struct vz_sim *sim);

/* runtime/aio/fdtab.c: the actor I/O layer's hooks into the core */
int vz__aio_create(struct vz__shard *sh);
/* Before the backend is destroyed: completions its destroy still runs
 * touch nothing (the timer table and pools may be gone already). */
void vz__aio_quiesce(struct vz__shard *sh);
/* After the backend is destroyed: frees the tables, closes leftover fds. */
void vz__aio_destroy(struct vz__shard *sh);
/* Per turn: submit what waits, reap completions when operations are in
 * flight. Returns the completions handled. */
unsigned vz__aio_turn(struct vz__shard *sh);
/* Submissions waiting for the next turn? */
bool vz__aio_has_work(const struct vz__shard *sh);
/* Actor a stopped (LIVE already cleared): close its fds, cancel its ops,
 * give back its kept buffers. */
void vz__aio_actor_stopped(struct vz__shard *sh, struct vz_actor *a);
/* A VZ_MSG_IO message is released: after its receive call, or dropped
 * (dead letter; counted in io_events_dropped). */
void vz__aio_msg_done(struct vz__shard *sh, struct vz_msg *m, bool dropped);
/* A timer fired: true when it was one of the I/O layer's (handled). */
bool vz__aio_timer(struct vz__shard *sh, struct vz__timer_owner *o, const vz_timer_event *ev);

/* runtime/cluster/cluster.c */
/* A send to a remote reference (shard field VZ__REMOTE_SHARD, cluster.h):
 * 1 when rt has no cluster (the caller goes on as for any reference),
 * else 0 or a VZ_E* code. sh: the calling shard, NULL for other threads. */
int vz__remote_send(vz_runtime *rt, struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type,
		    const void *payload, size_t len);
/* An actor with VZ__ACTOR_NAMED stopped: drop its names. Owner thread. */
void vz__cluster_actor_stopped(struct vz__shard *sh, vz_ref actor);
/* vz_runtime_destroy(): destroy a cluster the caller left attached. */
void vz__cluster_runtime_gone(vz_runtime *rt);

#endif
