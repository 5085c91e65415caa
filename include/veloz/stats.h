/* SPDX-License-Identifier: MIT */
/*
 * Per-shard counters. Each is written by its shard's thread (except
 * mailbox_full's share from foreign posts, counted by the posting threads,
 * and wake_failures, counted by whoever failed to wake the shard) and read
 * by anyone: a snapshot is consistent per counter, not across counters.
 * They exist to show what should not happen on hot paths (pool refills,
 * ring-full events, wake-up syscalls) next to benchmark figures.
 */
#ifndef VELOZ_STATS_H
#define VELOZ_STATS_H

#include <stdint.h>

#include "export.h"
#include "runtime.h"

typedef struct vz_shard_stats {
	uint64_t sent_local;	   /* accepted sends to actors on the same shard */
	uint64_t sent_remote;	   /* accepted sends to other shards */
	uint64_t received_foreign; /* messages taken from the foreign inbox (vz_post from
				      non-shard threads, pool completions) */
	uint64_t received_remote;  /* messages taken from incoming rings */
	uint64_t handled;	   /* receive calls for counted messages: user messages and
				      pool completions (timer expiries are in timers_fired) */
	uint64_t dead_letters;	   /* accepted messages not delivered */
	uint64_t turns;		   /* loop turns */
	uint64_t idle_turns;	   /* turns that found nothing to do */
	uint64_t sleeps;	   /* times the shard blocked in the backend */
	uint64_t wakeups_sent;	   /* wake-up syscalls this shard made */
	uint64_t pool_refills;	   /* slab allocations (malloc) by the pools */
	uint64_t ring_full;	   /* publishes that found a ring full */
	uint64_t overflow_queued;  /* messages and blocks going home parked in an outbox
				      because the ring was full (each counted once) */
	uint64_t mailbox_full;	   /* sends and posts refused with VZ_EFULL: counted on the
				      sending shard, or for a post from a non-shard thread on
				      the target's shard */
	uint64_t timers_fired;
	uint64_t timers_dropped; /* expiries given up: no memory, reserve exhausted */
	uint64_t actors_live;
	uint64_t actors_spawned;
	uint64_t actors_stopped;
	uint64_t outbox_full;	/* sends refused with VZ_EFULL because runtime.outbox_limit
				   messages already waited for a full ring to that shard */
	uint64_t wake_failures; /* wake-ups towards this shard whose syscall failed
				   (MSG_RING and eventfd both); each is retried, and
				   after a few tries the next sender retries it. The
				   one counter here written by other threads. */
} vz_shard_stats;

/* Copy shard's counters to *out. Any thread. VZ_ENOSHARD, VZ_EINVAL. */
VZ_API int vz_stats_shard(const vz_runtime *rt, unsigned shard, vz_shard_stats *out);

/* Sum of every shard's counters into *out. Messages from non-shard threads
 * are counted when their shard takes them (received_foreign); that sum is
 * also stored in *foreign_posts when it is not NULL. At any quiet moment
 * (after stop, say): sent_local + sent_remote + received_foreign ==
 * handled + dead_letters. Any thread. VZ_EINVAL for NULL rt or out. */
VZ_API int vz_stats_total(const vz_runtime *rt, vz_shard_stats *out, uint64_t *foreign_posts);

#endif
