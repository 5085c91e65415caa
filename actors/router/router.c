// SPDX-License-Identifier: MIT
/*
 * The key-hash router (router.h): a table of part references and a pure
 * key -> part map. Nothing is written after creation, which is what makes
 * routing safe from every thread without atomics.
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

/* 2^20 parts is far more than any shard count times a sensible number of
 * owners per shard, and keeps the multiply-shift exact. */
#define MAX_PARTS (1u << 20)

struct vz_router {
	unsigned n;
	vz_ref parts[]; /* part i: on shard i % nshards when made by create */
};

uint64_t vz_router_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	/* FNV's low bits mix well, its high bits less so for short keys; the
	 * part index comes from the high bits (multiply-shift), so finish with
	 * MurmurHash3's fmix64 avalanche. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

unsigned vz_router_part(const vz_router *r, const void *key, size_t len)
{
	/* Lemire's fastrange on the top 32 bits: uniform in [0, n) without a
	 * division. */
	uint64_t top = vz_router_hash(key, len) >> 32;

	return (unsigned)((top * r->n) >> 32);
}

vz_ref vz_router_owner(const vz_router *r, const void *key, size_t len)
{
	return r->parts[vz_router_part(r, key, len)];
}

unsigned vz_router_parts(const vz_router *r)
{
	return r ? r->n : 0;
}

vz_ref vz_router_part_ref(const vz_router *r, unsigned i)
{
	return r && i < r->n ? r->parts[i] : VZ_REF_NULL;
}

static vz_router *alloc_router(unsigned n)
{
	vz_router *r = calloc(1, sizeof *r + (size_t)n * sizeof r->parts[0]);

	if (r)
		r->n = n;
	return r;
}

int vz_router_from_refs(const vz_ref *refs, unsigned n, vz_router **out)
{
	vz_router *r;

	if (!refs || !out || n == 0 || n > MAX_PARTS)
		return VZ_EINVAL;
	r = alloc_router(n);
	if (!r)
		return VZ_ENOMEM;
	memcpy(r->parts, refs, (size_t)n * sizeof refs[0]);
	*out = r;
	return 0;
}

int vz_router_create(vz_runtime *rt, const vz_actor_spec *spec, unsigned per_shard, const void *arg,
		     vz_router **out)
{
	unsigned nshards = vz_runtime_shards(rt), n;
	vz_router *r;

	if (!rt || !spec || !out || per_shard == 0 || nshards == 0 ||
	    per_shard > MAX_PARTS / nshards)
		return VZ_EINVAL;
	n = per_shard * nshards;
	r = alloc_router(n);
	if (!r)
		return VZ_ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		vz_router_part_arg pa = {.part = i, .nparts = n, .user = arg};
		int rc = vz_spawn(rt, i % nshards, spec, &pa, &r->parts[i]);

		if (rc < 0) {
			while (i-- > 0)
				vz_stop(rt, r->parts[i]);
			free(r);
			return rc;
		}
	}
	*out = r;
	return 0;
}

void vz_router_destroy(vz_router *r)
{
	free(r);
}

int vz_router_send(vz_actor *self, const vz_router *r, const void *key, size_t keylen,
		   uint32_t type, const void *payload, size_t len)
{
	if (!r)
		return VZ_EINVAL;
	return vz_send(self, vz_router_owner(r, key, keylen), type, payload, len);
}

int vz_router_post(vz_runtime *rt, const vz_router *r, const void *key, size_t keylen,
		   uint32_t type, const void *payload, size_t len)
{
	if (!r)
		return VZ_EINVAL;
	return vz_post(rt, vz_router_owner(r, key, keylen), type, payload, len);
}
