/* SPDX-License-Identifier: MIT */
/*
 * The "classic" baseline of BENCH.md: the event-loop design veloz replaces,
 * written honestly and reasonably tuned. One loop thread; a task queue of
 * (function, argument) pairs in a growable ring buffer protected by one
 * mutex and one condition variable; delayed tasks in a binary-heap timer
 * queue (baseline/timer_heap.h) under the same mutex. A post from any
 * thread (the loop thread included) locks, appends, and signals the
 * condition variable only when the loop is waiting on it. The loop takes up
 * to CLASSIC_BATCH tasks per lock acquisition and runs them unlocked.
 *
 * Tuning that is in (so the comparison is fair): no malloc per task (the
 * ring doubles when full, amortised, and counts it), no signal when the loop
 * is awake, batched draining, CLOCK_MONOTONIC timed waits for the next
 * deadline. What is deliberately not in: lock-free queues, spinning before
 * sleeping, per-thread queues: that is what veloz adds.
 *
 * Memory: classic_loop_create() allocates, classic_loop_destroy() frees.
 */
#ifndef VZ_BENCH_CLASSIC_LOOP_H
#define VZ_BENCH_CLASSIC_LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef void (*classic_task_fn)(void *arg);

struct classic_loop;

/* Tasks the loop takes out of the queue per lock acquisition. */
#define CLASSIC_BATCH 64

/* Counters, read with classic_loop_stats(). */
struct classic_loop_stats {
	uint64_t posted;    /* tasks accepted by post (immediate) */
	uint64_t delayed;   /* tasks accepted by post_delayed */
	uint64_t cancelled; /* delayed tasks cancelled before running */
	uint64_t ran;	    /* tasks run (immediate and delayed) */
	uint64_t turns;	    /* lock acquisitions by the loop that took work or waited */
	uint64_t waits;	    /* times the loop blocked on the condition variable */
	uint64_t signals;   /* pthread_cond_signal calls made by posters */
	uint64_t grows;	    /* ring or delayed-task pool growth (the only mallocs after create) */
};

/* Create a loop whose ring starts with `capacity` slots (rounded up to a
 * power of two, at least 64). No thread yet. Returns 0 or -ENOMEM/-EINVAL
 * (negative errno: this is a baseline, not the veloz API). Any thread. */
int classic_loop_create(unsigned capacity, struct classic_loop **out);

/* Start the loop thread, pinned to bench_cpu(cpu) when cpu >= 0. Returns 0
 * or a negative errno. The creating thread. */
int classic_loop_start(struct classic_loop *l, int cpu);

/* Run the loop on the calling thread until classic_loop_stop() (instead of
 * classic_loop_start()). */
void classic_loop_run(struct classic_loop *l);

/* Queue fn(arg) to run on the loop thread, after every task posted before it
 * by the same thread. Returns 0, or -ENOMEM when the ring could not grow.
 * Any thread. */
int classic_loop_post(struct classic_loop *l, classic_task_fn fn, void *arg);

/* Queue fn(arg) to run once `delay_ns` have passed (never earlier). On
 * success *handle (when non-NULL) names the delayed task for
 * classic_loop_cancel(). Returns 0, -ENOMEM. Any thread. */
int classic_loop_post_delayed(struct classic_loop *l, uint64_t delay_ns, classic_task_fn fn,
			      void *arg, uint64_t *handle);

/* Cancel a delayed task that has not run yet: 0, or -ENOENT when it already
 * ran or was cancelled. Any thread. */
int classic_loop_cancel(struct classic_loop *l, uint64_t handle);

/* True when the calling thread is the loop's thread. */
bool classic_loop_on_loop(const struct classic_loop *l);

/* Ask the loop to return after the tasks queued before this call have run,
 * and join its thread when classic_loop_start() created one. Any thread but
 * the loop's own (from the loop thread it only sets the flag). Idempotent. */
void classic_loop_stop(struct classic_loop *l);

/* Snapshot of the counters (under the lock). Any thread. */
void classic_loop_stats(struct classic_loop *l, struct classic_loop_stats *out);

/* Free a stopped (or never started) loop. NULL is a no-op. */
void classic_loop_destroy(struct classic_loop *l);

#endif
