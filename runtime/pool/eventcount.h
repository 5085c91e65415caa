/* SPDX-License-Identifier: MIT */
/*
 * Event count on a futex: how idle pool workers sleep without lost
 * wake-ups, and why a submission costs no system call while no worker
 * sleeps.
 *
 * Waiter (a worker that found no work):
 *     key = vz__ec_prepare(ec);     announce: waiters++ (seq_cst), read epoch
 *     if (work is visible now)      re-check every source it must not miss
 *             vz__ec_cancel(ec);
 *     else
 *             vz__ec_wait(ec, key); sleep unless epoch != key
 * Notifier (a submitter, after publishing work):
 *     vz__ec_notify(ec, false);     seq_cst fence; if waiters: epoch++, wake
 *
 * Why nothing is lost: the waiter's waiters++ and the notifier's publish are
 * each followed by a seq_cst operation (the RMW itself on the waiter's side,
 * the fence on the notifier's), and then each reads what the other wrote
 * (the waiter the queue, the notifier `waiters`). In the single total order
 * of those seq_cst operations one comes first, so either the waiter sees the
 * work in its re-check, or the notifier sees waiters > 0, bumps the epoch
 * and calls FUTEX_WAKE. The kernel compares the epoch with `key` under its
 * futex lock, so a waiter that read the old epoch either is already queued
 * on the futex (and is woken) or finds epoch != key and returns at once.
 *
 * Cost: a notifier that finds waiters == 0 does a fence (a locked op on its
 * own stack line, ~5 ns here) and one load of a line that only changes when
 * a worker goes to sleep or wakes. No system call, no shared write.
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

/*
 * Full fence for the store-then-load (Dekker) patterns of the pool.
 * ThreadSanitizer does not model atomic_thread_fence (GCC warns with
 * -Wtsan); under it the fence becomes a seq_cst RMW on a shared dummy,
 * which TSan does model and which x86 executes as a locked instruction,
 * i.e. the same full barrier. Release builds use the real fence.
 */
#if defined(__SANITIZE_THREAD__)
static _Atomic unsigned vz__ec_tsan_fence_word;
#define vz__full_fence()                                                                  \
	((void)atomic_fetch_add_explicit(&vz__ec_tsan_fence_word, 0, memory_order_seq_cst))
#else
#define vz__full_fence() atomic_thread_fence(memory_order_seq_cst)
#endif

struct vz__eventcount {
	/* Workers announced or asleep; written by waiters, read by notifiers. */
	alignas(64) atomic_uint waiters;
	/* The futex word; bumped by notifiers that found waiters. */
	alignas(64) atomic_uint epoch;
};

/* Zero ec. Before sharing it. */
static inline void vz__ec_init(struct vz__eventcount *ec)
{
	atomic_init(&ec->waiters, 0);
	atomic_init(&ec->epoch, 0);
}

/* Announce that the caller is about to sleep and return the key for
 * vz__ec_wait(). The caller must then re-check for work and either cancel or
 * wait. */
static inline unsigned vz__ec_prepare(struct vz__eventcount *ec)
{
	/* seq_cst RMW: pairs with the seq_cst fence in vz__ec_notify(); it
	 * must be ordered before the caller's re-check of the queue (see the
	 * file comment). */
	atomic_fetch_add_explicit(&ec->waiters, 1, memory_order_seq_cst);
	/* Full fence: the caller's re-check loads are acquire, not seq_cst,
	 * and C11 only orders them after the RMW through a fence (x86 needs
	 * nothing more than the locked RMW; weaker machines do). Pairs with
	 * the fence in vz__ec_notify(). Only on the way to sleep. */
	vz__full_fence();
	/* Acquire: pairs with the release bump in vz__ec_notify(). */
	return atomic_load_explicit(&ec->epoch, memory_order_acquire);
}

/* Withdraw an announcement: the re-check found work. */
static inline void vz__ec_cancel(struct vz__eventcount *ec)
{
	/* Relaxed: a late decrement only costs a notifier a useless wake. */
	atomic_fetch_sub_explicit(&ec->waiters, 1, memory_order_relaxed);
}

/* Sleep until the epoch moves away from key (returns at once if it already
 * has), then withdraw the announcement. May return spuriously (EINTR); the
 * caller loops and re-checks anyway. */
static inline void vz__ec_wait(struct vz__eventcount *ec, unsigned key)
{
	/* The kernel reads the futex word under its own lock; a bump that
	 * happened after our key was read makes this return EAGAIN at once. */
	syscall(SYS_futex, (void *)&ec->epoch, FUTEX_WAIT_PRIVATE, key, NULL, NULL, 0);
	/* Relaxed: see vz__ec_cancel(). */
	atomic_fetch_sub_explicit(&ec->waiters, 1, memory_order_relaxed);
}

/* After publishing work: wake one sleeper (or all when `all`) if any
 * announced itself. Returns true when it made the FUTEX_WAKE system call
 * (callers count those). Any thread. */
static inline bool vz__ec_notify(struct vz__eventcount *ec, bool all)
{
	/* Pairs with the seq_cst RMW in vz__ec_prepare(): orders our publish
	 * of the work before our read of waiters. */
	vz__full_fence();
	/* Relaxed: ordered by the fence above. */
	if (atomic_load_explicit(&ec->waiters, memory_order_relaxed) == 0)
		return false;
	/* Release: a waiter that reads the new epoch in vz__ec_prepare() also
	 * sees the work published before it. */
	atomic_fetch_add_explicit(&ec->epoch, 1, memory_order_release);
	syscall(SYS_futex, (void *)&ec->epoch, FUTEX_WAKE_PRIVATE, all ? INT_MAX : 1, NULL, NULL,
		0);
	return true;
}

#endif
