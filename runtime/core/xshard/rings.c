// SPDX-License-Identifier: MIT
/*
 * Cross-shard traffic: the ring matrix, outgoing batches with their
 * overflow, the doorbell that spares a shard from polling N-1 empty rings,
 * the return path that brings message memory home, the foreign inbox, and
 * the sender's half of the wake-up protocol.
 *
 * One slot ring per ordered pair (src -> dst, queue/slot_ring.h) carries
 * both messages for dst's actors and blocks of dst's pools that src has
 * finished with: one mechanism, one doorbell. A message whose payload fits
 * travels inside its slot (xshard.h), so no block crosses; a longer one
 * travels as a pointer to its block, and the block always goes home to the
 * shard that allocated it, which frees it into its own pool (no allocator
 * lock anywhere).
 *
 * Sending never blocks and never drops: a message waits in the sender's
 * outbox for its destination (a FIFO, so order is kept) until the ring has
 * room; a ring found full is counted (stats ring_full, overflow_queued).
 * The wait is bounded: once cfg.outbox_limit user messages wait for one
 * destination (and a flush finds its ring still full), the next user send
 * there is refused with VZ_EFULL before anything changes (stat
 * outbox_full), as a bounded mailbox refuses. Runtime messages (stop
 * requests) and blocks going home are never refused: the stop protocol and
 * the return path must always make progress, and both are bounded by what
 * was accepted before.
 *
 * This file: the ring matrix, one ring per ordered pair, allocated for the
 * destination's NUMA node. The other jobs are beside it: xshard.h (the
 * slot's layout, the doorbell), outbox.c (publishing at once, overflow,
 * ringing), drain.c (the receiver's side, hot rings),
 * wake.c (the sender's half of the wake-up protocol), inbox_drain.c (the
 * foreign inbox).
 */
#include <stdlib.h>

#include "core/runtime.h"
#include "core/shard.h"
#include "core/xshard/xshard.h"

static int shard_node(vz_runtime *rt, unsigned shard)
{
	int cpu = rt->shards[shard]->cpu;

	return cpu >= 0 ? vz__topo_cpu_node(&rt->topo, (unsigned)cpu) : -1;
}

/* Rings into each shard are allocated for that shard's node. */
int vz__rings_create(vz_runtime *rt)
{
	for (unsigned dst = 0; dst < rt->nshards; dst++) {
		struct vz__shard *d = rt->shards[dst];
		uint32_t entries = rt->cfg.shards[dst].ring_entries
				       ? rt->cfg.shards[dst].ring_entries
				       : rt->cfg.ring_entries;
		int node = rt->topo.numa_available ? shard_node(rt, dst) : -1;

		d->in = calloc(rt->nshards, sizeof *d->in);
		if (!d->in)
			return VZ_ENOMEM;
		for (unsigned src = 0; src < rt->nshards; src++) {
			int rc;

			if (src == dst)
				continue;
			d->in[src] = aligned_alloc(VZ__LINE, sizeof(struct vz__slot_ring));
			if (!d->in[src])
				return VZ_ENOMEM;
			rc = vz__slot_ring_init(d->in[src], entries, node);
			if (rc < 0) {
				free(d->in[src]);
				d->in[src] = NULL;
				return rc;
			}
		}
	}
	return 0;
}

void vz__rings_destroy(vz_runtime *rt)
{
	for (unsigned dst = 0; dst < rt->nshards; dst++) {
		struct vz__shard *d = rt->shards[dst];

		if (!d || !d->in)
			continue;
		for (unsigned src = 0; src < rt->nshards; src++) {
			if (d->in[src]) {
				vz__slot_ring_fini(d->in[src]);
				free(d->in[src]);
			}
		}
		free(d->in);
		d->in = NULL;
	}
}
