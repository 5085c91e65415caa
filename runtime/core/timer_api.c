// SPDX-License-Identifier: MIT
/* The public timer calls: actor-owned timers in the shard's wheel. */
#include "core/actor.h"
#include "core/shard.h"
#include "util/clock.h"

static int check_owner(const vz_actor *self)
{
	if (!self)
		return VZ_EINVAL;
	if (vz__current(self->shard->rt) != self->shard)
		return VZ_EWRONGTHREAD;
	if (!(self->flags & VZ__ACTOR_LIVE))
		return VZ_ESTALE;
	return 0;
}

VZ_API int vz_timer_arm(vz_actor *self, uint64_t delay_ns, uint64_t period_ns, uint64_t tag,
			vz_timer *out)
{
	struct vz__shard *sh;
	uint64_t id;
	int rc = check_owner(self);

	if (rc < 0)
		return rc;
	sh = self->shard;
	/* A fresh clock read: the cached one may be a turn old (a turn
	 * reads the clock only every few dozen messages, and one receive may
	 * run long), and a deadline computed from it would fire up to that
	 * much before `delay_ns` after this call. No cheaper test tells how
	 * stale it is without reading a clock, so every arm reads it, inline
	 * (the vDSO call, no out-of-line wrapper; the simulation's virtual
	 * clock behind one predictable branch). */
	sh->now_ns = vz__shard_clock(sh);
	rc = vz__timers_arm(&sh->timers, &self->timers, sh->now_ns, delay_ns, period_ns, tag, &id);
	/* out NULL: fire and forget. The timer is still the actor's (armed
	 * in its current life), so stopping the actor cancels it like any
	 * other. */
	if (rc == 0 && out)
		out->id = id;
	/* Best effort: the reserve only matters if memory runs out later. */
	if (rc == 0 && sh->timer_reserve_n == 0)
		vz__timer_reserve_fill(sh, true);
	return rc;
}

VZ_API int vz_timer_cancel(vz_actor *self, vz_timer t)
{
	int rc = check_owner(self);

	if (rc < 0)
		return rc;
	return vz__timers_cancel(&self->shard->timers, &self->timers, t.id);
}

VZ_API uint64_t vz_now_ns(const vz_actor *self)
{
	return self ? self->shard->now_ns : 0;
}
