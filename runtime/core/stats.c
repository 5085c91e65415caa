// SPDX-License-Identifier: MIT
/* Stats snapshots: relaxed reads of counters each written by one shard,
 * plus the few that threads outside the runtime write (atomically). */
#include <stdio.h>
#include <string.h>

#include "core/lanes.h"
#include "core/runtime.h"
#include "core/sched.h"
#include "core/shard.h"
#include "core/stats.h"

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
	RD(io_submitted);
	RD(io_completed);
	RD(io_events);
	RD(io_events_dropped);
	RD(io_bufs_exhausted);
	RD(io_busy_polls);
	RD(io_sendq_full);
	RD(io_accept_backoffs);
	RD(io_fds_open);
	RD(io_send_zc);
	RD(io_send_zc_fallback);
#undef RD
	/* Foreign posts refused with VZ_EFULL are counted by the posting
	 * threads on the target shard, with a read-modify-write (relaxed:
	 * a statistic, nothing is read through it). */
	o->mailbox_full += atomic_load_explicit(&sh->mailbox_full_foreign, memory_order_relaxed);
	o->wake_failures = atomic_load_explicit(&sh->wake_failures, memory_order_relaxed);
	vz__lanes_stats(sh, o); /* the lane fields, kept in the shard's lane set */
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

VZ_API int vz_stats_class(const vz_runtime *rt, unsigned shard, unsigned cls, vz_class_stats *out)
{
	const struct vz__class *cl;

	if (!rt || !out)
		return VZ_EINVAL;
	if (shard >= rt->nshards)
		return VZ_ENOSHARD;
	/* nclasses is written at create, before any thread can ask. */
	if (cls >= rt->shards[shard]->sched.nclasses)
		return VZ_EINVAL;
	cl = &rt->shards[shard]->sched.cls[cls];
	memset(out, 0, sizeof *out);
	if (rt->cfg.nclasses > 1)
		snprintf(out->name, sizeof out->name, "%s", rt->cfg.classes[cls].name);
	/* Relaxed: counters written by the shard alone, read as a snapshot. */
	out->runtime_ns = atomic_load_explicit(&cl->st.runtime_ns, memory_order_relaxed);
	out->messages = atomic_load_explicit(&cl->st.messages, memory_order_relaxed);
	out->runs = atomic_load_explicit(&cl->st.runs, memory_order_relaxed);
	out->quota_violations =
	    atomic_load_explicit(&cl->st.quota_violations, memory_order_relaxed);
	for (unsigned b = 0; b < VZ_CLASS_WAIT_BUCKETS; b++)
		out->wait_hist[b] = atomic_load_explicit(&cl->st.wait[b], memory_order_relaxed);
	return 0;
}

VZ_API uint64_t vz_class_wait_quantile(const vz_class_stats *s, double q)
{
	uint64_t total = 0, seen = 0, want;

	if (!s || !(q > 0.0))
		return 0;
	for (unsigned b = 0; b < VZ_CLASS_WAIT_BUCKETS; b++)
		total += s->wait_hist[b];
	if (!total)
		return 0;
	want = (uint64_t)(q * (double)total + 0.999999);
	if (want > total)
		want = total;
	for (unsigned b = 0; b < VZ_CLASS_WAIT_BUCKETS; b++) {
		seen += s->wait_hist[b];
		if (seen >= want)
			return b ? (uint64_t)1 << b : 1;
	}
	return (uint64_t)1 << (VZ_CLASS_WAIT_BUCKETS - 1);
}
