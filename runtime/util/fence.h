/* SPDX-License-Identifier: MIT */
/*
 * vz__full_fence_on(&word): the seq_cst fence of the store-buffer
 * handshakes (the shard sleep protocol, the pool's event count, the pool's
 * submit/stop Dekker), named by the atomic word the other side of the
 * handshake reads after its own full barrier: the flag this side has just
 * announced (a sleeper's `sleeping`, a waiter's event-count word, a
 * submitter's `busy`, the stopper's `stopping`).
 *
 * In a normal build the word is only documentation: the macro is
 * atomic_thread_fence(memory_order_seq_cst).
 *
 * ThreadSanitizer does not model atomic_thread_fence (GCC warns with
 * -Wtsan; it sees no synchronisation through a fence at all). Under it the
 * fence becomes a seq_cst read-modify-write of that word (adding 0). The
 * other side's read of the word then synchronises with us exactly when it
 * reads our announcement, the one case where the real protocol gives it
 * something; and it gives TSan nothing anywhere else. (The former version
 * used one process-wide word for every fence, so every fence synchronised
 * with every later one, across shards, pools and runtimes: TSan saw
 * happens-before edges the real code does not have, and a data race
 * ordered only by such an edge went unreported.) On x86 the RMW is the
 * same locked instruction the fence compiles to.
 */
#ifndef VZ_FENCE_H
#define VZ_FENCE_H

#include <stdatomic.h>

#if defined(__SANITIZE_THREAD__)
#define VZ__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define VZ__TSAN 1
#endif
#endif

#ifdef VZ__TSAN
#define vz__full_fence_on(word) ((void)atomic_fetch_add_explicit((word), 0, memory_order_seq_cst))
#else
#define vz__full_fence_on(word) ((void)sizeof(word), atomic_thread_fence(memory_order_seq_cst))
#endif

#endif
