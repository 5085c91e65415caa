// SPDX-License-Identifier: MIT
/*
 * The pool's public functions (include/veloz/pool.h) and the core-facing
 * vz__pools_create(): the thin layer that turns an actor into (runtime,
 * shard, reference) and binds completions to the runtime's vz__post_sys().
 * Everything else lives in pool.c and plan.c, which do not need the core.
 */
#include "pool/pool.h"

#include <stdlib.h>
#include <string.h>

#include <veloz/actor.h>
#include <veloz/error.h>
#include <veloz/message.h>
#include <veloz/runtime.h>
#include <veloz/sim.h>

/* The core's internal entry points this file uses (runtime/core/send.h
 * and runtime.h declare them too; these declarations must stay identical). */
int vz__post_sys(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len);
struct vz__pool_set *vz__runtime_pools(vz_runtime *rt);
/* runtime/sim/sim_pool.c: a simulated runtime's jobs (NULL sim: real). */
vz_sim *vz__runtime_sim(vz_runtime *rt);
int vz__sim_pool_submit(vz_sim *sim, vz_ref owner, const vz_job *job, vz_job_id *out);
int vz__sim_pool_cancel(vz_sim *sim, vz_ref owner, vz_job_id id);
/* stats/obs.h declares it too: a job accepted from an actor of `shard`. */
void vz__obs_pool_submitted(vz_runtime *rt, unsigned shard);

int vz__pools_create(vz_runtime *rt, const vz_config *cfg, const struct vz__topology *topo,
		     const int *shard_cpus, unsigned nshards, struct vz__pool_set **out)
{
	struct vz__pool_plan *plan;
	int err;

	if (!cfg || !topo || !out)
		return VZ_EINVAL;
	/* The plan is ~40 KiB: keep it off the caller's stack. */
	plan = malloc(sizeof *plan);
	if (!plan)
		return VZ_ENOMEM;
	err = vz__pools_plan(&cfg->pool, topo, shard_cpus, nshards, NULL, plan);
	if (err == 0)
		err = vz__pools_create_with(rt, plan, NULL, vz__post_sys, out);
	/* The runtime's sleep fence for every handshake: the completions'
	 * with the shards' sleep must use the shards' own scheme. Then the
	 * completions come back over the rings, collected by the shards. */
	if (err == 0 &&
	    ((err = vz__pools_set_fence(*out, vz__runtime_sleep_fence_mode(rt))) < 0 ||
	     (err = vz__pools_attach(*out, vz__shard_wake_index, vz__shard_pool_done)) < 0))
		vz__pools_destroy(*out);
	free(plan);
	return err;
}

/* The actor's shard, or VZ_EWRONGTHREAD when the calling thread is not the
 * one running (or driving) that shard: the submit and cancel paths write
 * per-shard counters and flags that have exactly one writer. */
static int home_shard(vz_actor *self, vz_runtime **rt)
{
	unsigned shard = vz_actor_shard(self);

	*rt = vz_actor_runtime(self);
	if (vz_current_shard(*rt) != (int)shard)
		return VZ_EWRONGTHREAD;
	return (int)shard;
}

VZ_API int vz_pool_submit(vz_actor *self, const vz_job *job, vz_job_id *out)
{
	vz_runtime *rt;
	int shard, rc;

	if (!self)
		return VZ_EINVAL;
	shard = home_shard(self, &rt);
	if (shard < 0)
		return shard;
	if (vz__runtime_sim(rt))
		return vz__sim_pool_submit(vz__runtime_sim(rt), vz_self(self), job, out);
	rc = vz__pool_submit_as(vz__runtime_pools(rt), (unsigned)shard, vz_self(self), job, out);
	if (rc == 0)
		vz__obs_pool_submitted(rt, (unsigned)shard);
	return rc;
}

VZ_API int vz_pool_cancel(vz_actor *self, vz_job_id id)
{
	vz_runtime *rt;
	int shard;

	if (!self)
		return VZ_EINVAL;
	shard = home_shard(self, &rt);
	if (shard < 0)
		return shard;
	if (vz__runtime_sim(rt))
		return vz__sim_pool_cancel(vz__runtime_sim(rt), vz_self(self), id);
	return vz__pool_cancel_as(vz__runtime_pools(rt), (unsigned)shard, vz_self(self), id);
}

VZ_API int vz_stats_pool(const vz_runtime *rt, unsigned node, vz_pool_stats *out)
{
	if (!rt || !out)
		return VZ_EINVAL;
	/* The core's accessor takes a non-const runtime; it only reads. */
	return vz__pool_stats_of(vz__runtime_pools((vz_runtime *)rt), node, out);
}

VZ_API int vz_pool_nodes(const vz_runtime *rt, unsigned *nodes, unsigned max)
{
	if (!rt)
		return VZ_EINVAL;
	return vz__pool_nodes_of(vz__runtime_pools((vz_runtime *)rt), nodes, max);
}

VZ_API int vz_pool_done_read(const vz_msg *m, vz_pool_done *out, const void **result)
{
	size_t len;

	if (!m || !out || vz_msg_type(m) != VZ_MSG_POOL_DONE)
		return VZ_EINVAL;
	len = vz_msg_len(m);
	if (len < sizeof *out)
		return VZ_EINVAL;
	/* memcpy: *out is the caller's, and copying keeps this decoder
	 * independent of the payload alignment (VZ_MSG_ALIGN) anyway. */
	memcpy(out, vz_msg_data(m), sizeof *out);
	if (out->result_len != len - sizeof *out)
		return VZ_EINVAL;
	if (result)
		*result = (const unsigned char *)vz_msg_data(m) + sizeof *out;
	return 0;
}
