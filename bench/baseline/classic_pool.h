/* SPDX-License-Identifier: MIT */
/*
 * The "classic" worker-pool baseline of BENCH.md (`pool`): the design the
 * veloz worker pool replaces, written honestly and reasonably tuned. A
 * bounded ring of jobs protected by one mutex, one condition variable for
 * idle workers, worker threads pinned to given CPUs. A submit locks, copies
 * the job (function, argument, payload) into the ring, and signals the
 * condition variable only when a worker waits on it. A worker locks, takes
 * one job, unlocks and runs it.
 *
 * Tuning that is in: no malloc per job (payload copied inline, ring
 * preallocated), no signal when no worker waits, one lock acquisition per
 * job on each side. What is deliberately not in: lock-free queues, spinning
 * before sleeping, NUMA placement, per-worker queues: that is what veloz
 * adds.
 *
 * Memory: classic_pool_create() allocates, classic_pool_destroy() frees.
 */
#ifndef VZ_BENCH_CLASSIC_POOL_H
#define VZ_BENCH_CLASSIC_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Payload bytes a job carries inline. */
#define CLASSIC_POOL_PAYLOAD 64

/* The job: gets its argument and its copied payload. */
typedef void (*classic_job_fn)(void *arg, const void *payload, size_t len);

struct classic_pool;

struct classic_pool_stats {
	uint64_t submitted; /* jobs accepted */
	uint64_t ran;	    /* jobs run */
	uint64_t signals;   /* pthread_cond_signal calls (a waiting worker: a futex wake) */
	uint64_t waits;	    /* times a worker blocked on the condition variable */
	uint64_t full;	    /* submits refused because the ring was full */
};

/* Create a pool with room for `capacity` queued jobs and `nworkers` threads,
 * worker i pinned to cpus[i] (-1: not pinned; cpus may be NULL). Threads
 * start here. 0 or -1. */
int classic_pool_create(unsigned capacity, unsigned nworkers, const int *cpus,
			struct classic_pool **out);

/* Queue a job; payload (len <= CLASSIC_POOL_PAYLOAD) is copied. 0, or -1
 * when the ring is full or len is too large. Any thread. */
int classic_pool_submit(struct classic_pool *p, classic_job_fn fn, void *arg, const void *payload,
			size_t len);

/* Counters (taken under the lock). Any thread. */
void classic_pool_stats(struct classic_pool *p, struct classic_pool_stats *out);

/* Run what is queued, join the workers, free everything. NULL is a no-op. */
void classic_pool_destroy(struct classic_pool *p);

#endif
