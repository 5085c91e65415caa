/* SPDX-License-Identifier: MIT */
/*
 * Key-hash router: a fixed set of owner actors ("parts") spread evenly
 * over the shards, and the map from a key (any bytes) to the part that
 * owns it. A message about a key goes straight from the sender to the
 * owner (one vz_send or vz_post, no hop through a router actor), so all
 * the state of one key lives on one actor and needs no lock, and keys are
 * spread over every shard.
 *
 * The map is a pure function of the key bytes and the number of parts:
 * hash (FNV-1a 64 with a final avalanche) scaled to [0, nparts) by a
 * multiply-shift; part i lives on shard i % nshards. The router is
 * immutable once made, so any thread may route and send through it with no
 * synchronisation.
 *
 * Ownership: the router owns only its table (vz_router_destroy frees it);
 * the parts are ordinary actors that stop with the runtime (or by
 * vz_stop). Destroy the router once no thread uses it any more.
 */
#ifndef VZ_ACTORS_ROUTER_H
#define VZ_ACTORS_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include <veloz.h>

typedef struct vz_router vz_router;

/* What a part's init receives as its `arg` when vz_router_create spawned
 * it. */
typedef struct vz_router_part_arg {
	unsigned part;	  /* this part's index, 0..nparts-1 */
	unsigned nparts;  /* how many parts the router has */
	const void *user; /* the `arg` given to vz_router_create */
} vz_router_part_arg;

/* Spawn per_shard parts on every shard of rt (spec: the owner actor; its
 * init gets a vz_router_part_arg) and make the router over them. Part i is
 * on shard i % nshards. Same thread rules as vz_spawn() for every shard:
 * before vz_runtime_start() from the one thread setting the runtime up.
 * Errors: VZ_EINVAL (NULL, per_shard 0, or more than 2^20 parts),
 * VZ_ENOMEM, or vz_spawn()'s error (parts spawned before it are stopped
 * again, nothing is returned). */
int vz_router_create(vz_runtime *rt, const vz_actor_spec *spec, unsigned per_shard, const void *arg,
		     vz_router **out);

/* A router over actors spawned by the caller: refs[i] becomes part i
 * (copied). Any thread. VZ_EINVAL (NULL, n 0 or over 2^20), VZ_ENOMEM. */
int vz_router_from_refs(const vz_ref *refs, unsigned n, vz_router **out);

/* Free the table. NULL is a no-op. No thread may use r then. */
void vz_router_destroy(vz_router *r);

/* The hash of a key (stable across runs and machines: the same key maps
 * to the same part index for the same nparts). Any thread. */
uint64_t vz_router_hash(const void *key, size_t len);

/* Index of the part owning key, in [0, nparts). Any thread. */
unsigned vz_router_part(const vz_router *r, const void *key, size_t len);

/* The actor owning key. Any thread. */
vz_ref vz_router_owner(const vz_router *r, const void *key, size_t len);

/* Number of parts, and part i's actor (VZ_REF_NULL when i is out of
 * range). Any thread. */
unsigned vz_router_parts(const vz_router *r);
vz_ref vz_router_part_ref(const vz_router *r, unsigned i);

/* Send a message to key's owner from inside an actor: vz_send(self,
 * owner, type, payload, len); its errors. The key is not added to the
 * payload: put it there when the owner needs it. */
int vz_router_send(vz_actor *self, const vz_router *r, const void *key, size_t keylen,
		   uint32_t type, const void *payload, size_t len);

/* The same from any thread: vz_post(rt, owner, ...); its errors. */
int vz_router_post(vz_runtime *rt, const vz_router *r, const void *key, size_t keylen,
		   uint32_t type, const void *payload, size_t len);

#endif
