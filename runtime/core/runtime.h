/* SPDX-License-Identifier: MIT */
/*
 * The runtime (struct vz_runtime): its configuration, shards, backend
 * choice, state and stop rounds, and the calls of its lifecycle file
 * (runtime.c). Written by create and start, read-only afterwards, except
 * the fields on their own cache line, whose comments say who writes them.
 */
#ifndef VZ_CORE_RUNTIME_H
#define VZ_CORE_RUNTIME_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <veloz.h>

#include "io/io.h"
#include "topo/topo.h"
#include "util/cacheline.h"
#include "util/membarrier.h"

struct vz__shard;
struct vz_sim;
struct vz__watch;
struct vz__shm;
struct vz_cluster;

enum vz__rt_state {
	VZ__RT_CREATED = 0,
	VZ__RT_RUNNING,
	VZ__RT_STOPPING,
	VZ__RT_STOPPED,
};

struct vz__pool_set;

struct vz_runtime {
	vz_config cfg;
	struct vz__topology topo;
	unsigned nshards;
	struct vz__shard **shards;
	enum vz__io_kind io_kind;
	char backend_reason[256];
	char backend_flags[96]; /* written by start, read-only afterwards */
	/* The sleep protocol's fence (util/membarrier.h) and why; written
	 * by create, read-only afterwards (each shard has a copy). */
	enum vz__sleep_fence sleep_fence;
	char sleep_fence_reason[256];
	uint64_t tick_ns;
	uint64_t spin_ns;
	struct vz__pool_set *pools;
	/* Simulated runtime (runtime/sim/NOTES.md), NULL otherwise. Written
	 * by create, read-only afterwards. */
	struct vz_sim *sim;
	bool started_once;
	/* enum vz__rt_state. Written by start/stop (seq_cst), read by senders. */
	alignas(VZ__LINE) _Atomic uint32_t state;
	/* Stop rounds: incremented by the stopper (release), read by shards. */
	alignas(VZ__LINE) _Atomic uint32_t stop_round;
	/* Slab allocations by foreign posters (foreign pools grow). */
	alignas(VZ__LINE) _Atomic uint64_t foreign_refills;
	/* Written by create, read-only afterwards (registry.c). */
	vz_cpuset reserved;   /* CPUs kept for the embedder */
	vz_cpuset shard_cpus; /* CPUs of runtime-owned shards (overlap warning) */
	/* The process's list of live runtimes; guarded by registry.c's mutex. */
	struct vz_runtime *live_next;
	bool live_linked;
	/* vz_runtime_stop_async() (stop_async.c): the thread running the
	 * stop, and enum vz__stopper_state, advanced by compare-and-swap
	 * (acq_rel: the creator's write of `stopper` is seen by the joiner). */
	pthread_t stopper;
	_Atomic uint32_t stopper_state;
	/* stats/watchdog.c and stats/shm.c: made by start (the segment by
	 * create), owned by the thread that starts, stops and destroys. */
	struct vz__watch *watch;
	struct vz__shm *shm;
	unsigned shm_no; /* this process's runtime number in the segment name */
	/* The node's cluster (runtime/cluster), or NULL. Stored (release) by
	 * vz_cluster_create() and cleared by destroy; read (acquire) by the
	 * send paths only for a reference naming shard VZ__REMOTE_SHARD. */
	_Atomic(struct vz_cluster *) cluster;
};

/* runtime.c */
/* vz_runtime_create() for a simulated runtime (sim != NULL, runtime/sim):
 * every shard embedded, no backend probe, no worker pool. */
int vz__runtime_create(const vz_config *cfg, struct vz_sim *sim, vz_runtime **out);
struct vz__pool_set *vz__runtime_pools(vz_runtime *rt);
const struct vz__topology *vz__runtime_topology(const vz_runtime *rt);
int vz__runtime_shard_cpu(const vz_runtime *rt, unsigned shard);

#endif
