/* SPDX-License-Identifier: MIT */
/*
 * Spawning on another shard (spawn_remote.c): the request a shard receives
 * (addressed to the shard itself, vz__shard_ref() in ref.h), its failure,
 * and the request and checks that vz_spawn_on() and vz_spawn_wait() share.
 */
#ifndef VZ_CORE_SPAWN_REMOTE_H
#define VZ_CORE_SPAWN_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include <veloz.h>

struct vz__shard;
struct vz_msg;

/* spawn_remote.c: a message addressed to shard sh itself
 * (vz__shard_ref()); a spawn request that will not run (answered with rc,
 * released). */
void vz__shard_msg(struct vz__shard *sh, struct vz_msg *m);
void vz__spawn_fail(struct vz__shard *sh, struct vz_msg *m, int rc);
/* Send a spawn request for `shard` whose VZ_MSG_SPAWNED goes to reply_to,
 * arg copied (any thread; vz__post_full()'s errors); and the argument
 * checks of vz_spawn_on() (VZ_EINVAL, VZ_ENOSHARD, VZ_ETOOBIG). */
int vz__spawn_request(vz_runtime *rt, vz_ref reply_to, unsigned shard, const vz_actor_spec *spec,
		      const void *arg, size_t arg_len, uint64_t tag);
int vz__spawn_check(const vz_runtime *rt, unsigned shard, const vz_actor_spec *spec,
		    const void *arg, size_t arg_len);

#endif
