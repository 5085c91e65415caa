/* SPDX-License-Identifier: MIT */
/*
 * Worker pools: where an actor sends work that would block its shard (file
 * system calls, DNS, compression, a long computation). The runtime keeps one
 * pool per NUMA node, its threads pinned to that node's CPUs and its queues
 * in that node's memory (see vz_pool_config in config.h).
 *
 * An actor submits a job; a worker of the pool of the actor's node runs
 * job->fn (or, when that pool's queue is full and the overload policy is
 * VZ_POOL_SPILL, a worker of the nearest other node that has room); the
 * outcome comes back to the actor as one VZ_MSG_POOL_DONE message on its
 * home shard, whose payload is a vz_pool_done followed by the result bytes
 * (read it with vz_pool_done_read()). Every accepted job produces exactly one
 * completion: fn's return, VZ_ECANCELED (cancelled, or queued when the
 * runtime stopped), or VZ_ETIMEDOUT (its deadline passed before it started).
 * If the actor has stopped by then, the completion is dead-lettered like any
 * message to a stopped actor.
 *
 * Submission never blocks and takes no lock; it makes a system call only
 * when a worker of the chosen pool is asleep (vz_pool_stats.submit_wakeups
 * counts those).
 */
#ifndef VELOZ_POOL_H
#define VELOZ_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "export.h"
#include "message.h"
#include "runtime.h"

VZ_BEGIN_DECLS

/* Largest job payload copied at submission: 256 bytes, far below the
 * message limit VZ_MSG_MAX_PAYLOAD because every queued job keeps its copy
 * in a fixed-size record. Larger inputs: pass a pointer in `arg` and keep
 * the memory alive until the completion arrives. vz_pool_submit() refuses
 * a larger payload_len with VZ_ETOOBIG (the code for any payload over its
 * limit; its vz_strerror() text names both limits). */
#define VZ_POOL_MAX_PAYLOAD 256u

/* Identifies a submitted job until its completion has been posted. Never 0.
 * An id is (pool, record, 32-bit generation); records are reused in FIFO
 * order over the pool's queue_capacity records, so an id is told apart from
 * later jobs for 2^32 reuses of its record (queue_capacity * 2^32 jobs of
 * that pool: 2^44 with the default 4096, months at 10^6 jobs/s); after that
 * a cancel with a long-dead id could name a later job of the same actor. */
typedef struct vz_job_id {
	uint64_t id;
} vz_job_id;

/* Header of a VZ_MSG_POOL_DONE payload; result_len result bytes follow. */
typedef struct vz_pool_done {
	vz_job_id job;	     /* what vz_pool_submit() returned */
	uint64_t tag;	     /* the job's tag */
	int32_t status;	     /* fn's return, VZ_ECANCELED or VZ_ETIMEDOUT */
	uint32_t result_len; /* bytes of result that follow (0 unless fn ran) */
} vz_pool_done;

VZ_STATIC_ASSERT(sizeof(vz_pool_done) == 24, "vz_pool_done is part of the ABI");

/* Largest result a job may produce: a completion is one message. */
#define VZ_POOL_MAX_RESULT (VZ_MSG_MAX_PAYLOAD - sizeof(vz_pool_done))

/*
 * The job's work, run on a worker thread. It gets the job's arg and a copy of
 * its payload (aligned to VZ_MSG_ALIGN, 16 bytes, like a message payload),
 * may write up to *result_len bytes (VZ_POOL_MAX_RESULT on entry) to
 * `result` (8-byte aligned: it becomes the bytes after the 24-byte
 * vz_pool_done of the completion) and sets *result_len to the bytes
 * written. Its return value (0 or a negative VZ_E* by convention) becomes
 * vz_pool_done.status. It may block; it must not touch actors (it may
 * vz_post() to them). Setting *result_len above VZ_POOL_MAX_RESULT makes
 * the status VZ_ETOOBIG and drops the result.
 */
typedef int (*vz_job_fn)(void *arg, const void *payload, size_t payload_len, void *result,
			 size_t *result_len);

typedef struct vz_job {
	vz_job_fn fn;	      /* required */
	void *arg;	      /* passed through untouched */
	const void *payload;  /* copied at submission; may be NULL when payload_len == 0 */
	size_t payload_len;   /* <= VZ_POOL_MAX_PAYLOAD */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC (as vz_now_ns()); not started by then ->
			       * VZ_ETIMEDOUT without running. 0 = none */
	uint64_t tag;	      /* echoed in the completion */
} vz_job;

/* Submit a job from inside an actor (its home shard only). On success stores
 * the job's id in *out (when out is non-NULL) and returns 0; exactly one
 * completion will follow. Errors (nothing was queued, no completion):
 * VZ_EINVAL (NULL self/job/fn, NULL payload with payload_len > 0),
 * VZ_ETOOBIG (payload_len > VZ_POOL_MAX_PAYLOAD, i.e. 256 bytes, not the
 * message limit), VZ_EWRONGTHREAD (not called on the actor's home shard
 * thread), VZ_EFULL (the pool of the actor's node is full, and with
 * VZ_POOL_SPILL every other pool too),
 * VZ_ESTOPPED (the runtime is stopping), VZ_ENOSYS (the runtime has no pool:
 * no CPU could host a worker, see vz_pool_config.share_shard_cpus). */
VZ_API int vz_pool_submit(vz_actor *self, const vz_job *job, vz_job_id *out);

/* Cancel a job this actor submitted, if no worker has started it. Returns 0
 * when it will not run (its completion, status VZ_ECANCELED, is posted now);
 * VZ_ENOENT when it has started or finished, or the id is not one of this
 * actor's jobs; VZ_EINVAL for NULL self or a zero id; VZ_EWRONGTHREAD off
 * the actor's home shard thread. From inside the submitting actor only. */
VZ_API int vz_pool_cancel(vz_actor *self, vz_job_id id);

/* Counters of one node's pool. Each counter has one writer (a shard or a
 * worker); a snapshot is consistent per counter, not across counters. */
typedef struct vz_pool_stats {
	uint32_t node;		 /* NUMA node of the pool */
	uint32_t workers;	 /* worker threads */
	uint32_t queue_capacity; /* jobs the pool can hold */
	uint32_t queued;	 /* jobs waiting now (approximate) */
	uint64_t submitted;	 /* jobs accepted from shards of this node */
	uint64_t spilled;	 /* ... of which went to another node's pool */
	uint64_t rejected;	 /* VZ_EFULL returned to shards of this node */
	uint64_t submit_wakeups; /* FUTEX_WAKE system calls made by those submissions */
	uint64_t executed;	 /* jobs whose fn ran on this pool's workers */
	uint64_t stolen;	 /* ... of which were taken from another node's queue */
	uint64_t canceled;	 /* jobs queued here that completed with VZ_ECANCELED */
	uint64_t timed_out;	 /* jobs that completed with VZ_ETIMEDOUT */
	uint64_t worker_sleeps;	 /* times a worker of this pool blocked on its futex */
	uint64_t post_failures;	 /* completions the runtime refused to accept */
} vz_pool_stats;

/* Copy the counters of the pool of NUMA node `node` (named like
 * vz_stats_shard() in stats.h). VZ_EINVAL for NULL, VZ_ENOENT when the node
 * has no pool. Any thread. */
VZ_API int vz_stats_pool(const vz_runtime *rt, unsigned node, vz_pool_stats *out);

/* Store the NUMA nodes that have a pool in nodes[0..max-1] (ascending) and
 * return how many pools there are (which may exceed max). VZ_EINVAL for NULL
 * rt, or NULL nodes with max > 0. Any thread. */
VZ_API int vz_pool_nodes(const vz_runtime *rt, unsigned *nodes, unsigned max);

/* Decode a received VZ_MSG_POOL_DONE message: copy its header to *out and,
 * when result is non-NULL, point *result at the result bytes (valid during
 * receive only; 8-byte aligned, since they start sizeof(vz_pool_done) = 24
 * bytes after a VZ_MSG_ALIGN-aligned vz_msg_data()). VZ_EINVAL when m is
 * NULL, is not a VZ_MSG_POOL_DONE message, or is malformed. From the
 * receiving actor. */
VZ_API int vz_pool_done_read(const vz_msg *m, vz_pool_done *out, const void **result);

VZ_END_DECLS

#endif
