/* SPDX-License-Identifier: MIT */
/*
 * Asymmetric store-load barriers for the pools' Dekker handshakes, where
 * one side runs once per job and the other rarely:
 *   - submit (busy = 1, then read stopping) against vz__pools_stop();
 *   - the event count's notifier (publish a job, then read the waiter
 *     count) against a worker going to sleep (vz__ec_prepare());
 *   - a worker's completion (publish a ring slot, then read the shard's
 *     sleeping flag) against the shard's sleep re-check.
 * The frequent side issues vz__asym_light(): only a compiler barrier. The
 * rare side issues vz__asym_heavy(): membarrier(MEMBARRIER_CMD_PRIVATE_
 * EXPEDITED), which makes every running thread of the process execute a
 * full barrier before it returns (the kernel interrupts the CPUs running
 * them; a thread that is not running passed a barrier when it was switched
 * out). So either the light side's store is visible to the heavy side's
 * load after the membarrier, or the light side's load comes after that
 * barrier and sees the heavy side's store: never both missed, as with a
 * fence on each side. Liburcu, Folly and Seastar use the same scheme.
 *
 * Without membarrier (old kernels, seccomp), or under ThreadSanitizer,
 * which cannot see it, both sides are vz__full_fence_on() of the named
 * word, as before. vz__asym_init() decides once per process, at the first
 * pool set, before any thread that uses the barriers exists.
 */
#ifndef VZ_POOL_ASYM_H
#define VZ_POOL_ASYM_H

#include <linux/membarrier.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/fence.h"

/* 1 when membarrier is registered for the process. Written at most once,
 * by the first vz__asym_init(), before any thread that reads it exists
 * (pthread_once and pthread_create order it); relaxed everywhere. */
extern _Atomic int vz__asym_ok;

/* Register the process for expedited private membarriers if the kernel
 * has them; only the first call decides. Any thread, before it creates
 * threads that use the barriers. */
void vz__asym_init(void);

#ifdef VZ__TSAN
#define vz__asym_light(word) vz__full_fence_on(word)
#define vz__asym_heavy(word) vz__full_fence_on(word)
#else
/* The frequent side, between its store and its load. `word` names what
 * the other side reads, for the fence this becomes without membarrier. */
#define vz__asym_light(word)                                                                       \
	do {                                                                                       \
		if (__builtin_expect(atomic_load_explicit(&vz__asym_ok, memory_order_relaxed), 1)) \
			atomic_signal_fence(memory_order_seq_cst);                                 \
		else                                                                               \
			vz__full_fence_on(word);                                                   \
	} while (0)

/* The rare side, between its store and its load. */
#define vz__asym_heavy(word)                                                                       \
	do {                                                                                       \
		vz__full_fence_on(word);                                                           \
		if (atomic_load_explicit(&vz__asym_ok, memory_order_relaxed))                      \
			syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);           \
	} while (0)
#endif

#endif
