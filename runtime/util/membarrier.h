/* SPDX-License-Identifier: MIT */
/*
 * The asymmetric sleep fence: which half of the shard sleep protocol pays
 * for the store-buffer handshake (runtime/DESIGN.md invariant 4).
 *
 * The protocol is a store-buffer (Dekker) handshake: the sleeper stores
 * `sleeping = 1` then reads every source; a sender publishes into a source
 * then reads `sleeping`. Each side needs a full barrier between its store
 * and its load, or both loads may miss (a lost wake-up).
 *
 * VZ__SLEEP_FENCE_FENCE (symmetric): the sleeper issues a seq_cst fence,
 * every sender's publish ends in a seq_cst read-modify-write and its load
 * of the flag is seq_cst. Works everywhere; every message pays the
 * sender's full barrier.
 *
 * VZ__SLEEP_FENCE_MEMBARRIER (asymmetric, Seastar's scheme, also folly's
 * asymmetricHeavyBarrier): the sleeper, after storing `sleeping = 1` and
 * before its re-check, calls membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED).
 * The kernel makes every other running thread of the process execute a
 * full memory barrier before the call returns (threads not running have
 * passed through a context switch, itself a full barrier), and the call
 * is a full barrier for the caller. A sender then needs only a compiler
 * barrier (vz__light_fence()) between its publish and its load of the
 * flag. Proof: the barrier the sender executed falls at some point of its
 * program. If its publish is before that point, the publish is visible to
 * the sleeper's re-check, which runs after membarrier() returned. If the
 * publish is after it, so is the sender's load of `sleeping` (program
 * order, kept by the compiler barrier and by the CPU, which never moves a
 * load before an earlier full barrier), and that barrier came after the
 * sleeper's store (the caller's own full barrier at the start of the
 * call): the load reads 1 and the sender wakes the sleeper. The sleeper
 * pays a syscall (and IPIs to the CPUs running the process's other
 * threads) per sleep; it is about to make a blocking syscall anyway.
 *
 * The mode is chosen once per runtime at create (vz__sleep_fence_choose())
 * and copied to every shard, next to its `sleeping` flag; sleeper and
 * senders of one shard always read the same value. ThreadSanitizer cannot
 * see the barriers membarrier() makes in other threads, so a TSan build
 * always uses the symmetric scheme (VZ__TSAN, util/fence.h).
 */
#ifndef VZ_MEMBARRIER_H
#define VZ_MEMBARRIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/fence.h"

enum vz__sleep_fence {
	VZ__SLEEP_FENCE_FENCE = 0,  /* symmetric: senders' seq_cst RMW + load */
	VZ__SLEEP_FENCE_MEMBARRIER, /* asymmetric: sleeper's membarrier() */
};

/* The sender's half of the asymmetric scheme: only the compiler may not
 * move the load of `sleeping` above the publish; the CPU's ordering comes
 * from the sleeper's membarrier(). */
#define vz__light_fence() atomic_signal_fence(memory_order_seq_cst)

/*
 * Choose the scheme for a runtime being created. The environment variable
 * VZ_SLEEP_FENCE (auto, membarrier or fence; unset or empty = auto) picks
 * it; auto takes membarrier when the kernel offers it and the process may
 * use it (probed with MEMBARRIER_CMD_QUERY, then registered with
 * MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, which is per process and
 * idempotent, then one trial barrier), and the symmetric fence otherwise
 * (old kernel, seccomp, EPERM). `reason` (may be NULL) receives why the
 * choice was made; *fell_back is set when auto found membarrier unusable. Thread rules: any thread,
 * at runtime create. Returns 0; VZ_ECONFIG for an unknown value; VZ_ENOSYS when membarrier was
 * asked for and is unavailable. Under ThreadSanitizer the result is always
 * the symmetric fence (a request for membarrier is noted in `reason`).
 */
int vz__sleep_fence_choose(enum vz__sleep_fence *out, char *reason, size_t reason_len,
			   bool *fell_back);

/* The sleeper's half of the asymmetric scheme: a full barrier in every
 * thread of the process. 0, or VZ_EIO when the kernel refused (never after
 * a successful vz__sleep_fence_choose() unless a seccomp filter installed
 * later forbids it). Owner thread of the sleeping shard. */
int vz__membarrier_heavy(void);

const char *vz__sleep_fence_name(enum vz__sleep_fence f);

#endif
