// SPDX-License-Identifier: MIT
/*
 * The core's side of the worker pools' completion rings (pool/complete.c):
 * how a pool worker wakes the shard it has just handed a completion (the
 * waker's half of the sleep protocol), and how the shard, collecting its
 * rings in its turn (vz__pool_reap() from shard.c, which also checks them
 * in its sleep re-check), turns a completion into a message for the actor:
 * a block from the shard's own message pool, delivered like a timer
 * expiry, dead-lettered when the actor is gone or the shard is stopping;
 * and which sleep fence the shards use, which the pools must share.
 */
#include <sched.h>
#include <string.h>

#include "core/core.h"
#include "pool/pool.h"

/* Attempts before giving up on a wake that keeps failing. */
#define POOL_WAKE_TRIES 1000

void vz__shard_wake_index(vz_runtime *rt, unsigned shard)
{
	struct vz__shard *sh = rt->shards[shard];

	/* The worker has published its completion and issued its light
	 * barrier under the runtime's sleep fence (complete.c); vz__wake()
	 * reads the shard's sleeping flag as that fence asks (relaxed after a
	 * compiler barrier under membarrier, seq_cst under the fence) and
	 * wakes the backend only when it was set: no system call while the
	 * shard is awake. A wake that fails even after vz__wake()'s own
	 * retries leaves the flag set; try again, yielding, since the
	 * completion in the ring may be the shard's only work. */
	for (int i = 0; i < POOL_WAKE_TRIES && vz__wake(NULL, sh) < 0; i++)
		sched_yield();
}

enum vz__sleep_fence vz__runtime_sleep_fence_mode(const vz_runtime *rt)
{
	/* Chosen at create before the pools are built, constant after. */
	return rt->sleep_fence;
}

int vz__shard_pool_done(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	/* The ring is the submitting shard's, and the owner lives there: this
	 * is the calling thread's shard. */
	struct vz__shard *sh = rt->shards[vz_ref_shard(to)];
	struct vz_msg *m = vz__msg_alloc(sh, len);

	if (!m)
		return VZ_ENOMEM;
	m->to = to;
	m->from = VZ_REF_NULL;
	m->corr = 0;
	m->type = type;
	m->len = (uint32_t)len;
	m->flags |= VZ__MSG_SYS; /* counted, as vz__post_sys() sends it */
	memcpy(m->data, payload, len);
	/* In the books as a message from a non-shard thread, as when it came
	 * through the inbox (stats.h: sent + received_foreign = handled +
	 * dead_letters). */
	VZ__STAT_ADD(sh, received_foreign, 1);
	vz__deliver_local(sh, m);
	return 0;
}
