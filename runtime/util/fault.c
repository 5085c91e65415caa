// SPDX-License-Identifier: MIT
/*
 * Fault-injection counters (see fault.h). The counters are process-wide on
 * purpose: a test arms a point, then drives whichever runtime it made.
 */
#include "util/fault.h"

#ifdef VZ_FAULT_INJECTION
#include <stdatomic.h>

#include <veloz/export.h>

struct fault_state {
	atomic_long skip;  /* checks still to pass before failing */
	atomic_long count; /* failures still to inject; < 0 = unlimited */
	atomic_long fired;
};

static struct fault_state faults[VZ_FAULT_COUNT];

VZ_API void vz__fault_arm(enum vz__fault_point p, long skip, long count)
{
	/* Relaxed: a test arms before starting the work it observes; thread
	 * creation or the runtime's own message passing orders the rest. */
	atomic_store_explicit(&faults[p].skip, skip, memory_order_relaxed);
	atomic_store_explicit(&faults[p].fired, 0, memory_order_relaxed);
	atomic_store_explicit(&faults[p].count, count, memory_order_relaxed);
}

VZ_API void vz__fault_disarm_all(void)
{
	for (int i = 0; i < VZ_FAULT_COUNT; i++)
		atomic_store_explicit(&faults[i].count, 0, memory_order_relaxed);
}

VZ_API long vz__fault_fired(enum vz__fault_point p)
{
	return atomic_load_explicit(&faults[p].fired, memory_order_relaxed);
}

VZ_API bool vz__fault_armed(enum vz__fault_point p)
{
	return atomic_load_explicit(&faults[p].count, memory_order_relaxed) != 0;
}

VZ_API bool vz__fault_check(enum vz__fault_point p)
{
	struct fault_state *f = &faults[p];
	long c = atomic_load_explicit(&f->count, memory_order_relaxed);

	if (c == 0)
		return false;
	/* Each check consumes one skip, then one failure; fetch_sub makes the
	 * counts exact when several threads check at once. */
	if (atomic_load_explicit(&f->skip, memory_order_relaxed) > 0 &&
	    atomic_fetch_sub_explicit(&f->skip, 1, memory_order_relaxed) > 0)
		return false;
	if (c > 0 && atomic_fetch_sub_explicit(&f->count, 1, memory_order_relaxed) <= 0) {
		atomic_fetch_add_explicit(&f->count, 1, memory_order_relaxed);
		return false;
	}
	atomic_fetch_add_explicit(&f->fired, 1, memory_order_relaxed);
	return true;
}
#endif
