// SPDX-License-Identifier: MIT
/* The shared word behind vz__full_fence() in ThreadSanitizer builds. */
#include "util/fence.h"

#ifdef VZ__TSAN
_Atomic unsigned vz__tsan_fence_word;
#else
/* ISO C forbids an empty translation unit. */
typedef int vz__fence_unused;
#endif
