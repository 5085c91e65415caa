/* SPDX-License-Identifier: MIT */
/*
 * Worker pools, internal interface. One pool per NUMA node that can host a
 * worker; the runtime core owns the set (vz__pools_create at runtime create,
 * vz__pools_start/stop/destroy alongside the shards). The public face is
 * include/veloz/pool.h.
 *
 * Layers, so each can be tested alone:
 *   - vz__pools_plan(): pure placement (which CPUs, which steal/spill order,
 *     which pool serves each shard) from a topology and the config.
 *   - vz__pools_create_with(): builds the pools of a plan, allocating every
 *     node-local byte through a vz__pool_memops table (tests record the node
 *     of each call) and posting completions through a vz__pool_post_fn (the
 *     runtime's vz__post_sys, or a test's recorder).
 *   - vz__pool_submit_as() / vz__pool_cancel_as(): the submit and cancel
 *     paths with the caller's shard and reference spelled out; the public
 *     vz_pool_submit()/vz_pool_cancel() derive them from the actor.
 * See NOTES.md beside this file for the design and its invariants.
 */
#ifndef VZ_POOL_POOL_H
#define VZ_POOL_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz/config.h>
#include <veloz/pool.h>
#include <veloz/runtime.h>

#include "util/membarrier.h"

struct vz__topology;
struct vz__pool_set;

/* Upper bound of worker threads in one pool. */
#define VZ_POOL_MAX_WORKERS 1024
/* Default and bounds of vz_pool_config.queue_capacity. */
#define VZ_POOL_DEFAULT_CAPACITY 4096u
#define VZ_POOL_MAX_CAPACITY	 (1u << 20)
/* Stack of each worker thread (reserved in node memory, touched lazily). */
#define VZ_POOL_STACK_BYTES (1u << 20)
/* How long an idle worker polls before it sleeps on the event count. Waking
 * a parked thread costs tens of microseconds on the target machines, so a
 * short poll keeps back-to-back jobs cheap; beyond it, polling only burns a
 * CPU (BENCH.md, "spin-then-sleep"). Tests set plan.spin_ns = 0 to make
 * every idle moment a sleep. */
#define VZ_POOL_SPIN_NS 20000u

/*
 * Where node-local memory comes from. Every allocation and memory-policy
 * call of the pools goes through one of these, with the node it is for, so
 * tests can record them. alloc_onnode returns zeroed, page-aligned memory of
 * at least `size` bytes or NULL; free releases what alloc_onnode returned
 * (with the same size). distance is the NUMA distance (10 = local, larger =
 * farther). set_preferred sets the calling thread's preferred node for its
 * later allocations (called by each worker as it starts). Every function may
 * be called from any thread, concurrently.
 */
struct vz__pool_memops {
	void *(*alloc_onnode)(void *ctx, size_t size, int node);
	void (*free)(void *ctx, void *p, size_t size);
	int (*distance)(void *ctx, int a, int b);
	void (*set_preferred)(void *ctx, int node);
	void *ctx;
};

/* libnuma where the node exists on this machine (numa_alloc_onnode,
 * numa_distance, numa_set_preferred); anonymous mmap, a synthetic distance
 * (10 local, 20 + |a - b| remote) and nothing otherwise (declared
 * topologies naming nodes the machine lacks). */
extern const struct vz__pool_memops vz__pool_default_memops;

/* How completions leave the pool: same contract as the core's vz__post_sys()
 * (any thread; 0 when accepted; a stale target is the runtime's business). */
typedef int (*vz__pool_post_fn)(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload,
				size_t len);

/* How a worker wakes a shard it has just handed a completion through the
 * shard's ring: the core's vz__shard_wake_index() (wake the shard's thread
 * if it sleeps; a load when it does not). Called after the worker's full
 * fence, so it pairs with the shard's sleep protocol (see complete.c). */
typedef void (*vz__pool_wake_fn)(vz_runtime *rt, unsigned shard);

struct vz__pool_plan_pool {
	int node;		      /* NUMA node */
	unsigned nworkers;	      /* >= 1 */
	int cpu[VZ_POOL_MAX_WORKERS]; /* CPU each worker is pinned to */
	unsigned nsteal;	      /* other pools, nearest first */
	uint8_t steal[VZ_MAX_NODES];  /* pool indices: steal and spill order */
	bool shares_shard_cpus;	      /* workers run on CPUs that host shards */
};

struct vz__pool_plan {
	unsigned npools;			      /* 0 when no CPU can host a worker */
	struct vz__pool_plan_pool pool[VZ_MAX_NODES]; /* ascending node order */
	int pool_of_node[VZ_MAX_NODES];		      /* -1 when the node has no pool */
	unsigned nshards;
	uint8_t shard_pool[VZ_MAX_SHARDS]; /* home pool of each shard (valid when npools > 0) */
	uint32_t queue_capacity;	   /* power of two */
	vz_pool_overload overload;
	uint32_t spin_ns; /* idle workers poll this long before sleeping */
};

/*
 * Plan the pools for `nshards` shards pinned to shard_cpus[] (-1 = unpinned)
 * on topology t with settings pc. Pure: no allocation, no threads; only
 * ops->distance is called (NULL ops = vz__pool_default_memops).
 *
 * Rules: only nodes in pc->nodes (a bit mask; 0 = every node) may get a
 * pool. Such a node gets one when it has allowed CPUs that host no shard
 * (workers go there, one per such CPU by default), or, when it has none and
 * pc->share_shard_cpus is set, on its shard CPUs (one worker by default).
 * pc->workers_per_node > 0 fixes the count; workers take the chosen CPUs
 * round-robin. Each pool's steal order lists every other pool by distance,
 * then node number. A shard's home pool is the pool of its CPU's node, or
 * the nearest pool when that node has none.
 *
 * Returns 0, or VZ_EINVAL (NULL pointers, nshards > VZ_MAX_SHARDS) or
 * VZ_ECONFIG (queue_capacity not a power of two in [2, 2^24],
 * workers_per_node > VZ_POOL_MAX_WORKERS). Any thread.
 */
int vz__pools_plan(const vz_pool_config *pc, const struct vz__topology *t, const int *shard_cpus,
		   unsigned nshards, const struct vz__pool_memops *ops, struct vz__pool_plan *out);

/*
 * Build the pools of `plan`: queues, job records, worker stacks and result
 * buffers, each allocated on its pool's node through ops (copied; NULL =
 * defaults). Completions go through post(rt, ...). No thread starts.
 * The handshakes' barriers follow vz__sleep_fence_choose() (the
 * VZ_SLEEP_FENCE variable and the probe) until vz__pools_set_fence().
 * Returns 0 and *out, or VZ_EINVAL, VZ_ENOMEM (everything freed), or
 * VZ_ECONFIG / VZ_ENOSYS from vz__sleep_fence_choose() (an unknown
 * VZ_SLEEP_FENCE, or membarrier forced where it is unavailable).
 */
int vz__pools_create_with(vz_runtime *rt, const struct vz__pool_plan *plan,
			  const struct vz__pool_memops *ops, vz__pool_post_fn post,
			  struct vz__pool_set **out);

/*
 * Route completions over the completion rings: worker k's completion of a
 * job submitted by shard s goes into ring (k, s); wake(rt, s) is called
 * after each ring publish, and shard s's thread collects the completion
 * with vz__pool_reap(), which hands it to deliver (same contract as post,
 * but called on the shard's own thread; VZ_ENOMEM leaves the completion in
 * its ring for a later reap, any other refusal is counted in
 * post_failures). Without this call every completion goes through post on
 * the worker. Before vz__pools_start(), from the thread that created the
 * set. VZ_EINVAL for NULL ps, wake or deliver; VZ_ESTATE once started.
 */
int vz__pools_attach(struct vz__pool_set *ps, vz__pool_wake_fn wake, vz__pool_post_fn deliver);

/*
 * Take the runtime's sleep fence (util/membarrier.h) for every store-buffer
 * handshake of the set: the completions' handshake with a shard's sleep
 * must use the shard's scheme (its one barrier per sleep is the rare side
 * for the rings too), and the set's other handshakes follow it. Without
 * this call the set uses what vz__sleep_fence_choose() chose at create.
 * Before vz__pools_start() and before any submission, from the thread
 * that created the set. VZ_EINVAL for NULL ps or an unknown mode;
 * VZ_ESTATE once started.
 */
int vz__pools_set_fence(struct vz__pool_set *ps, enum vz__sleep_fence fence);

/* The runtime's sleep fence (core/pool_wake.c). Any thread. */
enum vz__sleep_fence vz__runtime_sleep_fence_mode(const vz_runtime *rt);

/* The core's functions for vz__pools_attach() (core/pool_wake.c). wake:
 * wake shard `shard` of rt if it sleeps (any thread). deliver: a message
 * from the shard's own pool, delivered to the local actor `to` (dead-
 * lettered when it is gone or the shard stops); only on to's shard thread;
 * VZ_ENOMEM when the shard's message memory cannot grow. */
void vz__shard_wake_index(vz_runtime *rt, unsigned shard);
int vz__shard_pool_done(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len);

/*
 * Shard `shard`'s side of the completion rings: deliver (through post) up
 * to `max` completions waiting in its rings and return how many were
 * taken. vz__pool_has_done() says whether any waits, without taking it;
 * it issues no barrier of its own: as the sleep re-check it relies on the
 * caller's (the shard's store of `sleeping`, then its sleep fence, the
 * set's mode: core/shard.c), which pairs with the workers' light barrier
 * after each ring publish (complete.c). Only the shard's thread (or the one
 * thread driving it), or any single thread once the workers are joined.
 * NULL ps: 0 / false.
 */
unsigned vz__pool_reap(struct vz__pool_set *ps, unsigned shard, unsigned max);
bool vz__pool_has_done(struct vz__pool_set *ps, unsigned shard);

/*
 * The runtime core's entry points. vz__pools_create plans with
 * vz__pools_plan and builds with vz__pools_create_with (default memops,
 * vz__post_sys); VZ_ECONFIG/VZ_EINVAL/VZ_ENOMEM. vz__pools_start starts every
 * worker; on failure (VZ_EIO, e.g. pthread_create, fault point
 * VZ_FAULT_THREAD_START) every started worker is joined again and the set
 * can be started again or destroyed; VZ_ESTATE when already started or
 * stopped. vz__pools_stop refuses later submissions (VZ_ESTOPPED), completes
 * every queued job with VZ_ECANCELED (posted), lets running jobs finish and
 * joins the workers; idempotent, and safe to call from several threads at
 * once (the later callers return once the first has finished).
 * vz__pools_destroy frees everything (stopping first if needed); NULL is a
 * no-op. Never from a worker; create and destroy from one thread, with no
 * other call running on the set.
 */
int vz__pools_create(vz_runtime *rt, const vz_config *cfg, const struct vz__topology *topo,
		     const int *shard_cpus, unsigned nshards, struct vz__pool_set **out);
int vz__pools_start(struct vz__pool_set *ps);
void vz__pools_stop(struct vz__pool_set *ps);
void vz__pools_destroy(struct vz__pool_set *ps);

/*
 * Submit `job` as actor `owner` running on shard `shard`. The thread must be
 * the only one submitting as `shard` at that moment (the shard's thread).
 * Same results as vz_pool_submit(), plus VZ_ENOSHARD for shard >=
 * plan.nshards. Lock-free; a FUTEX_WAKE only when a worker of the chosen
 * pool sleeps.
 */
int vz__pool_submit_as(struct vz__pool_set *ps, unsigned shard, vz_ref owner, const vz_job *job,
		       vz_job_id *out);

/* Cancel job `id` of `owner` (same shard rule). Same results as
 * vz_pool_cancel(). */
int vz__pool_cancel_as(struct vz__pool_set *ps, unsigned shard, vz_ref owner, vz_job_id id);

/* Counters of the pool of `node` (VZ_ENOENT when none). Any thread. */
int vz__pool_stats_of(const struct vz__pool_set *ps, unsigned node, vz_pool_stats *out);

/* Nodes that have pools, as vz_pool_nodes(). Any thread. */
int vz__pool_nodes_of(const struct vz__pool_set *ps, unsigned *nodes, unsigned max);

/* The plan the set was built from (read-only). */
const struct vz__pool_plan *vz__pools_get_plan(const struct vz__pool_set *ps);

#endif
