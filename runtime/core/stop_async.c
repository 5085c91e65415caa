// SPDX-License-Identifier: MIT
/*
 * A runtime stop asked for from anywhere, actors included
 * (vz_runtime_stop_async(), vz_runtime_wait() in
 * include/veloz/lifecycle.h).
 *
 * vz_runtime_stop() cannot run on a shard thread: it waits for every
 * shard to complete its stop rounds, the caller's own among them. So the
 * asynchronous form hands the stop to a thread of its own and returns;
 * that thread is joined by whoever waits for the stop or destroys the
 * runtime. The stop itself is the ordinary one, with all its guarantees.
 *
 * The thread's handle is published through stopper_state, a small state
 * machine advanced only by compare-and-swap or by the one thread that owns
 * the current state (see enum vz__stopper_state in stop_async.h).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "core/runtime.h"
#include "core/shard.h"
#include "core/stop_async.h"

static void *stopper_main(void *arg)
{
	/* VZ_ESTATE when a vz_runtime_stop() of another thread won the race:
	 * that one stops it, and vz_runtime_wait() waits for the state. */
	(void)vz_runtime_stop(arg);
	return NULL;
}

VZ_API int vz_runtime_stop_async(vz_runtime *rt)
{
	uint32_t expected = VZ__STOPPER_NONE;

	if (!rt)
		return VZ_EINVAL;
	/* Acquire: pairs with the seq_cst stores of the state. */
	if (atomic_load_explicit(&rt->state, memory_order_acquire) != VZ__RT_RUNNING)
		return VZ_ESTATE;
	/* One asker wins; acq_rel so the winner's later release store of
	 * RUNNING orders its write of rt->stopper for the joiner. */
	if (!atomic_compare_exchange_strong_explicit(&rt->stopper_state, &expected,
						     VZ__STOPPER_STARTING, memory_order_acq_rel,
						     memory_order_relaxed))
		return VZ_ESTATE;
	if (pthread_create(&rt->stopper, NULL, stopper_main, rt) != 0) {
		/* Release: nothing to join; pairs with the joiner's acquire. */
		atomic_store_explicit(&rt->stopper_state, VZ__STOPPER_FAILED, memory_order_release);
		return VZ_EIO;
	}
	/* Release: publishes rt->stopper; pairs with the acquire load in
	 * vz__stopper_join(). */
	atomic_store_explicit(&rt->stopper_state, VZ__STOPPER_RUNNING, memory_order_release);
	return 0;
}

void vz__stopper_join(vz_runtime *rt)
{
	for (;;) {
		/* Acquire: pairs with the release stores above and below. */
		uint32_t s = atomic_load_explicit(&rt->stopper_state, memory_order_acquire);

		if (s == VZ__STOPPER_NONE || s == VZ__STOPPER_JOINED || s == VZ__STOPPER_FAILED)
			return;
		if (s == VZ__STOPPER_RUNNING && atomic_compare_exchange_strong_explicit(
						    &rt->stopper_state, &s, VZ__STOPPER_JOINING,
						    memory_order_acquire, memory_order_relaxed)) {
			pthread_join(rt->stopper, NULL);
			/* Release: a waiter that sees JOINED sees the stop's
			 * effects, which the join ordered before this. */
			atomic_store_explicit(&rt->stopper_state, VZ__STOPPER_JOINED,
					      memory_order_release);
			return;
		}
		/* STARTING (the asker is creating it) or JOINING (another
		 * waiter joins it): a short wait, off every hot path. */
		sched_yield();
	}
}

VZ_API int vz_runtime_wait(vz_runtime *rt)
{
	if (!rt)
		return VZ_EINVAL;
	if (vz__current(rt))
		return VZ_EWRONGTHREAD;
	/* Acquire: pairs with the seq_cst stores of the state. */
	if (atomic_load_explicit(&rt->state, memory_order_acquire) == VZ__RT_CREATED)
		return VZ_ESTATE;
	vz__stopper_join(rt);
	/* A stop by vz_runtime_stop() on another thread: wait for its end. */
	while (atomic_load_explicit(&rt->state, memory_order_acquire) != VZ__RT_STOPPED)
		usleep(100);
	return 0;
}
