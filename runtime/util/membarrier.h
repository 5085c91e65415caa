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
 * and copied to every shard, next to its `sleeping` flag, and to the
 * runtime's worker pools (vz__pools_set_fence()); sleeper and senders of
 * one shard always read the same value. ThreadSanitizer cannot see the
 * barriers membarrier() makes in other threads, so a TSan build always
 * uses the symmetric scheme (VZ__TSAN, util/fence.h).
 *
 * The same pair serves every other store-buffer handshake with a frequent
 * side and a rare side (vz__asym_light() / vz__asym_heavy() below): the
 * worker pools' submit against stop, a job's start against its
 * cancellation, and the event count's notify against a worker going to
 * sleep. This file is the only membarrier() caller of the runtime: one
 * probe, one mode per runtime, one fallback, one TSan rule.
 *
 * One barrier per shard sleep. A shard's sleep re-check reads every
 * source, the pool workers' completion rings among them
 * (vz__pool_has_done()); a worker's completion is one more sender of the
 * shard's protocol (publish the ring slot's seq, vz__asym_light(), load
 * `sleeping` in vz__wake()), so the shard's one barrier after its store of
 * `sleeping` orders it against every sender at once: membarrier() puts a
 * full barrier into every other thread of the process, whatever it is
 * sending, and the argument above holds for each of them separately. A
 * second barrier for the rings would order nothing the first did not.
 */
#ifndef VZ_MEMBARRIER_H
#define VZ_MEMBARRIER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 * later forbids it). Any thread; counted per thread
 * (vz__membarrier_calls()). */
int vz__membarrier_heavy(void);

/* membarrier() calls the calling thread has made through
 * vz__membarrier_heavy() (tests check what a sleep costs). */
uint64_t vz__membarrier_calls(void);

const char *vz__sleep_fence_name(enum vz__sleep_fence f);

/*
 * A store-buffer handshake between a frequent side and a rare side, under
 * fence mode `f`. Each side stores its announcement, issues its barrier,
 * then loads the other side's; the barriers guarantee that at least one of
 * the two loads sees the other side's store.
 *
 * vz__asym_light(f, word): the frequent side. Under membarrier a compiler
 * barrier (the rare side's membarrier() supplies the CPU's full barrier,
 * as argued above for the senders); under fence a seq_cst fence.
 *
 * vz__asym_heavy(f, word): the rare side. A seq_cst fence (the caller's own
 * store-load order, and the symmetric scheme's half), then under membarrier
 * membarrier() for the others. Evaluates to true when the handshake is
 * ordered, false when membarrier() was refused (see vz__membarrier_heavy()):
 * the caller must then not rely on the frequent side seeing its store
 * (a sleeper polls instead of blocking).
 *
 * `word` names the atomic the other side loads after its own barrier (the
 * one this side has just stored); under ThreadSanitizer the fences become
 * RMWs of it (util/fence.h), and the membarrier branch is compiled out,
 * since vz__sleep_fence_choose() never picks it there.
 */
#ifdef VZ__TSAN
#define vz__asym_light(f, word) ((void)(f), vz__full_fence_on(word))
#define vz__asym_heavy(f, word) ((void)(f), vz__full_fence_on(word), true)
#else
#define vz__asym_light(f, word)                                                                    \
	do {                                                                                       \
		if (__builtin_expect((f) == VZ__SLEEP_FENCE_MEMBARRIER, 1))                        \
			vz__light_fence();                                                         \
		else                                                                               \
			vz__full_fence_on(word);                                                   \
	} while (0)
#define vz__asym_heavy(f, word)                                                                    \
	(vz__full_fence_on(word), (f) != VZ__SLEEP_FENCE_MEMBARRIER || vz__membarrier_heavy() == 0)
#endif

#endif
