/* SPDX-License-Identifier: MIT */
/*
 * vz__full_fence(): the seq_cst fence of the store-buffer handshakes (the
 * shard sleep protocol, the pool's event count). ThreadSanitizer does not
 * model atomic_thread_fence (GCC warns with -Wtsan), so under it the fence
 * becomes a seq_cst read-modify-write on a shared word: every fence then
 * takes part in one total order that TSan understands, and on x86 it is the
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
extern _Atomic unsigned vz__tsan_fence_word;
#define vz__full_fence()                                                                           \
	((void)atomic_fetch_add_explicit(&vz__tsan_fence_word, 0, memory_order_seq_cst))
#else
#define vz__full_fence() atomic_thread_fence(memory_order_seq_cst)
#endif

#endif
