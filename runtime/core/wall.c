// SPDX-License-Identifier: MIT
/*
 * vz_wall_ns() (timer.h): the wall clock as actors should read it. A real
 * runtime reads CLOCK_REALTIME; a simulated one answers from its virtual
 * clock, so that dates an actor shows (HTTP's Date header, say) and timers
 * it phases on second boundaries are the same in every run of a seed.
 */
#include <time.h>

#include "core/actor.h"
#include "core/hooks.h"
#include "core/shard.h"

/* 2026-01-01T00:00:00Z: the simulated wall clock's origin. */
#define VZ__SIM_WALL_EPOCH_NS (1767225600ll * 1000000000ll)

VZ_API int64_t vz_wall_ns(const vz_actor *self)
{
	struct timespec ts;

	if (self && __builtin_expect(self->shard->sim != NULL, 0))
		return VZ__SIM_WALL_EPOCH_NS + (int64_t)vz__sim_now(self->shard->sim);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}
