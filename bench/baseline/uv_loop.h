/* SPDX-License-Identifier: MIT */
/*
 * The libuv baseline for cross-thread posting: a libuv loop on its own
 * thread, a mutex-protected task queue (growable ring, no malloc per task),
 * and a uv_async_t that posters signal after appending. The loop's async
 * callback swaps the queue out under the lock and runs the tasks unlocked.
 * This is the usual libuv idiom (uv_async_send coalesces: it writes the
 * eventfd only when the async handle is not already pending).
 *
 * Compiled only with libuv (VZ_HAVE_LIBUV); without it the functions do not
 * exist and callers must check the macro. Memory: uvloop_create() allocates,
 * uvloop_destroy() frees.
 */
#ifndef VZ_BENCH_UV_LOOP_H
#define VZ_BENCH_UV_LOOP_H

#include <stdint.h>

typedef void (*uvloop_task_fn)(void *arg);

struct uvloop;

struct uvloop_stats {
	uint64_t posted;      /* tasks accepted */
	uint64_t ran;	      /* tasks run */
	uint64_t async_sends; /* uv_async_send calls (each may write an eventfd) */
	uint64_t callbacks;   /* async callbacks run (drains) */
	uint64_t grows;	      /* ring reallocations */
};

/* Create the loop (libuv loop + async handle), no thread yet. 0 or a
 * negative errno. Any thread. */
int uvloop_create(unsigned capacity, struct uvloop **out);

/* Start the loop thread, pinned to bench_cpu(cpu) when cpu >= 0. 0 or a
 * negative errno. The creating thread. */
int uvloop_start(struct uvloop *l, int cpu);

/* Queue fn(arg) on the loop thread (FIFO per poster). 0 or -ENOMEM. Any
 * thread, the loop thread included. */
int uvloop_post(struct uvloop *l, uvloop_task_fn fn, void *arg);

/* Run the tasks queued before this call, then close the handles, end the
 * loop and join its thread. Not from the loop thread. Idempotent. */
void uvloop_stop(struct uvloop *l);

/* Counters (under the lock). Any thread. */
void uvloop_stats(struct uvloop *l, struct uvloop_stats *out);

/* Free a stopped (or never started) loop. NULL is a no-op. */
void uvloop_destroy(struct uvloop *l);

#endif
