// SPDX-License-Identifier: MIT
/* Stats snapshots: relaxed reads of counters each written by one shard,
 * plus the few that threads outside the runtime write (atomically). */
#include <string.h>

#include "core/core.h"

static void read_counters(const struct vz__shard *sh, vz_shard_stats *o)
{
	const struct vz__stat_counters *c = &sh->stats;

#define RD(f) o->f = atomic_load_explicit(&c->f, memory_order_relaxed)
	RD(sent_local);
	RD(sent_remote);
	RD(received_foreign);
	RD(received_remote);
	RD(handled);
	RD(dead_letters);
	RD(turns);
	RD(idle_turns);
	RD(sleeps);
	RD(wakeups_sent);
	RD(pool_refills);
	RD(ring_full);
	RD(overflow_queued);
	RD(mailbox_full);
	RD(timers_fired);
	RD(timers_dropped);
	RD(actors_live);
	RD(actors_spawned);
	RD(actors_stopped);
	RD(outbox_full);
#undef RD
	/* Foreign posts refused with VZ_EFULL are counted by the posting
	 * threads on the target shard, with a read-modify-write (relaxed:
	 * a statistic, nothing is read through it). */
	o->mailbox_full += atomic_load_explicit(&sh->mailbox_full_foreign, memory_order_relaxed);
	o->wake_failures = atomic_load_explicit(&sh->wake_failures, memory_order_relaxed);
}

VZ_API int vz_stats_shard(const vz_runtime *rt, unsigned shard, vz_shard_stats *out)
{
	if (!rt || !out)
		return VZ_EINVAL;
	if (shard >= rt->nshards)
		return VZ_ENOSHARD;
	read_counters(rt->shards[shard], out);
	return 0;
}

VZ_API int vz_stats_total(const vz_runtime *rt, vz_shard_stats *out, uint64_t *foreign_posts)
{
	if (!rt || !out)
		return VZ_EINVAL;
	memset(out, 0, sizeof *out);
	for (unsigned i = 0; i < rt->nshards; i++) {
		vz_shard_stats s;
		uint64_t *dst = (uint64_t *)out, *src = (uint64_t *)&s;

		read_counters(rt->shards[i], &s);
		for (size_t k = 0; k < sizeof s / sizeof(uint64_t); k++)
			dst[k] += src[k];
	}
	out->pool_refills += atomic_load_explicit(&rt->foreign_refills, memory_order_relaxed);
	if (foreign_posts)
		*foreign_posts = out->received_foreign;
	return 0;
}
