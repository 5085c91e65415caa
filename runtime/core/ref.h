/* SPDX-License-Identifier: MIT */
/*
 * Actor references inside the runtime: the bit layout of a vz_ref, making
 * one and taking it apart, and the reference that names a shard itself.
 * Plain values, no shared state: any thread may use these.
 */
#ifndef VZ_CORE_REF_H
#define VZ_CORE_REF_H

#include <stdint.h>

#include <veloz.h>

/*
 * A reference is shard (8) | slot (24) | generation (32), the layout
 * include/veloz/actor.h promises. Generations of a slot run 1, 2, ...,
 * VZ__GEN_LAST and never wrap: when the life with generation VZ__GEN_LAST
 * ends, the slot is retired for good (never put back on the free list), so
 * a reference once stale stays stale forever (runtime/DESIGN.md invariant
 * 3). At one spawn and stop of the same slot every 60 ns a slot lasts over
 * four minutes; the 2^24 slots of a shard then last over a century, after
 * which vz_spawn() reports VZ_ENOMEM. Generation 0 is never used, so the
 * zero (null) reference never names an actor.
 */
#define VZ__SHARD_SHIFT 56
#define VZ__SLOT_BITS	24
#define VZ__GEN_BITS	32
#define VZ__GEN_LAST	UINT32_MAX

_Static_assert(VZ__SHARD_SHIFT == VZ__SLOT_BITS + VZ__GEN_BITS, "fields of a reference abut");
_Static_assert(VZ_MAX_SHARDS <= (1u << (64 - VZ__SHARD_SHIFT)),
	       "every shard id fits the reference's shard field");

static inline vz_ref vz__make_ref(unsigned shard, uint32_t slot, uint32_t gen)
{
	return (vz_ref){((uint64_t)shard << VZ__SHARD_SHIFT) | ((uint64_t)slot << VZ__GEN_BITS) |
			gen};
}

static inline uint32_t vz__ref_slot(vz_ref r)
{
	return (uint32_t)(r.id >> VZ__GEN_BITS) & ((1u << VZ__SLOT_BITS) - 1);
}

static inline uint32_t vz__ref_gen(vz_ref r)
{
	return (uint32_t)r.id; /* the low VZ__GEN_BITS == 32 bits */
}

/* The reference that names shard `shard` itself, never an actor:
 * generation 0 (never used by an actor) and the last slot. */
static inline vz_ref vz__shard_ref(unsigned shard)
{
	return vz__make_ref(shard, (1u << VZ__SLOT_BITS) - 1, 0);
}

#endif
