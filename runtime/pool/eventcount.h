/* SPDX-License-Identifier: MIT */
/*
 * Event count on a futex: how idle pool workers sleep without lost
 * wake-ups, and why a submission costs no system call while no worker
 * sleeps -- nor while a wake-up it could issue is already on its way.
 *
 * One 64-bit word: the epoch (high half, also the futex word) and the
 * number of announced waiters (low half).
 *
 * Waiter (a worker that found no work):
 *     key = vz__ec_prepare(ec, f, &ok); waiters++ (seq_cst), heavy barrier,
 *                                   read epoch
 *     if (work is visible now)      re-check every source it must not miss
 *             vz__ec_cancel(ec, key);
 *     else
 *             vz__ec_wait(ec, key); sleep unless the epoch moved
 * Notifier (a submitter, after publishing work):
 *     vz__ec_notify(ec, f);         light barrier; if waiters: claim them all
 *                                   (waiters = 0, epoch++) and FUTEX_WAKE all
 *
 * Why nothing is lost: the waiter's increment and the notifier's publish
 * are each followed by a barrier, and then each reads what the other
 * wrote (the waiter the queue, the notifier the waiter count). The
 * barriers are the asymmetric pair of util/membarrier.h under the set's
 * fence mode `f`: the waiter (once per sleep) is the heavy side, the
 * notifier (once per job) the light one; under the symmetric fallback both
 * are seq_cst fences. Either way the pair acts as a fence on each side:
 * one comes first, so either the waiter sees the work in its
 * re-check, or the notifier sees the count > 0 and moves the epoch (or
 * finds that another notifier just did, which then wakes everybody). The
 * kernel compares the epoch with `key` under its futex lock, so a claimed
 * waiter is either already queued on the futex (and woken) or returns at
 * once.
 *
 * Why wake-ups do not pile up: a notifier claims every announced waiter at
 * once (the count drops to 0 with the epoch bump), so the submissions that
 * follow, until some worker announces itself again, see 0 and make no
 * system call. The price is that all sleepers of the pool wake together
 * when work arrives after a quiet spell; those that find nothing announce
 * themselves again. A waiter that cancels, or returns from the futex
 * without having been claimed (a signal), takes itself out of the count,
 * but only while the epoch is still the one it announced under.
 *
 * Cost: a notifier that finds no waiter does the light barrier (a
 * compiler barrier under membarrier, a locked op on its own stack line
 * under the fallback) and one load of a line that changes only when a
 * worker goes to sleep or wakes. No system call, no shared write.
 *
 * The caller owns the struct (it lives inside a node-local pool).
 */
#ifndef VZ_POOL_EVENTCOUNT_H
#define VZ_POOL_EVENTCOUNT_H

#include <limits.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/fence.h"	     /* vz__full_fence_on(): seq_cst fence, TSan-visible */
#include "util/membarrier.h" /* vz__asym_light/heavy(): the two sides of a handshake */

struct vz__eventcount {
	/* epoch << 32 | waiters. Waiters add and remove themselves; notifiers
	 * claim them all (waiters = 0, epoch + 1). The epoch half is the futex
	 * word. */
	alignas(64) _Atomic uint64_t state;
};

#define VZ__EC_WAITERS(s) ((uint32_t)(s))
#define VZ__EC_EPOCH(s)	  ((uint32_t)((s) >> 32))

/* The futex word: the epoch half of state (the kernel reads 32 bits). */
static inline uint32_t *vz__ec_futex_word(struct vz__eventcount *ec)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (uint32_t *)((char *)&ec->state + 4);
#else
	return (uint32_t *)&ec->state;
#endif
}

/* Zero ec. Before sharing it. */
static inline void vz__ec_init(struct vz__eventcount *ec)
{
	atomic_init(&ec->state, 0);
}

/* Announce that the caller is about to sleep and return the key for
 * vz__ec_wait() / vz__ec_cancel(). The caller must then re-check for work
 * and either cancel or wait; it must cancel, and not wait, when *ordered
 * comes back false (the heavy barrier was refused: notifiers would not be
 * seen to publish, so the caller polls instead). f: the set's fence mode,
 * the same as the notifiers'. */
static inline uint32_t vz__ec_prepare(struct vz__eventcount *ec, enum vz__sleep_fence f,
				      bool *ordered)
{
	/* seq_cst RMW followed by a full fence: the caller's re-check loads
	 * (acquire) must not move above the increment; pairs with the fence
	 * in vz__ec_notify(). Only on the way to sleep. */
	uint64_t s = atomic_fetch_add_explicit(&ec->state, 1, memory_order_seq_cst) + 1;

	/* The heavy barrier (util/membarrier.h): pairs with the light one in
	 * vz__ec_notify(), so notifiers pay no fence per job; on the word
	 * vz__ec_notify() reads after its barrier. */
	*ordered = vz__asym_heavy(f, &ec->state);
	return VZ__EC_EPOCH(s);
}

/* Withdraw an announcement made under epoch `key`, unless a notifier has
 * claimed it already (the epoch moved; the count no longer includes us). */
static inline void vz__ec_cancel(struct vz__eventcount *ec, uint32_t key)
{
	/* Relaxed: the count is only a hint to notifiers; the pairing that
	 * matters is prepare's fence against notify's. */
	uint64_t s = atomic_load_explicit(&ec->state, memory_order_relaxed);

	while (VZ__EC_EPOCH(s) == key && VZ__EC_WAITERS(s) > 0) {
		if (atomic_compare_exchange_weak_explicit(
			&ec->state, &s, s - 1, memory_order_relaxed, memory_order_relaxed))
			return;
	}
}

/* Sleep until the epoch moves away from key (returns at once if it already
 * has), then withdraw the announcement if nobody claimed it. May return
 * without work to do (a signal, or woken with the others); the caller loops
 * and re-checks anyway. */
static inline void vz__ec_wait(struct vz__eventcount *ec, uint32_t key)
{
	/* The kernel reads the epoch under its own lock; a bump that happened
	 * after our key was read makes this return EAGAIN at once. */
	syscall(SYS_futex, vz__ec_futex_word(ec), FUTEX_WAIT_PRIVATE, key, NULL, NULL, 0);
	vz__ec_cancel(ec, key);
}

/* After publishing work: if any worker announced itself, claim them all and
 * wake them. Returns true when it made the FUTEX_WAKE system call (callers
 * count those). f: as for vz__ec_prepare(). Any thread. */
static inline bool vz__ec_notify(struct vz__eventcount *ec, enum vz__sleep_fence f)
{
	uint64_t s;

	/* Pairs with the heavy barrier in vz__ec_prepare(): orders our
	 * publish of the work before our read of the waiter count (a
	 * compiler barrier under membarrier, else a seq_cst fence; see
	 * util/membarrier.h for why that suffices). Named by the event-count
	 * word, the one both sides touch (the work itself is the caller's:
	 * under TSan the waiter's prepare, an RMW of this word, then
	 * synchronises with us in whichever order the two came). */
	vz__asym_light(f, &ec->state);
	/* Relaxed: ordered by the barrier above. */
	s = atomic_load_explicit(&ec->state, memory_order_relaxed);
	while (VZ__EC_WAITERS(s) > 0) {
		/* Release: a waiter that reads the new epoch also sees the work
		 * published before it. A failed CAS reloads s: a waiter came or
		 * went (retry), or another notifier claimed them (count 0: it
		 * wakes them, we are done). */
		if (atomic_compare_exchange_weak_explicit(
			&ec->state, &s, (uint64_t)(VZ__EC_EPOCH(s) + 1u) << 32,
			memory_order_release, memory_order_relaxed)) {
			syscall(SYS_futex, vz__ec_futex_word(ec), FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
				NULL, 0);
			return true;
		}
	}
	return false;
}

#endif
