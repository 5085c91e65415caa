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

VZ_BEGIN_DECLS

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
	/* I/O (io.h), appended as one block. */
	uint64_t io_submitted;	     /* operations handed to the backend (re-arms included) */
	uint64_t io_completed;	     /* backend completions reaped */
	uint64_t io_events;	     /* VZ_MSG_IO events queued to actors */
	uint64_t io_events_dropped;  /* events for actors that had stopped (buffers returned,
					accepted fds closed) */
	uint64_t io_bufs_exhausted;  /* receives that found no free receive buffer and waited */
	uint64_t io_busy_polls;	     /* non-blocking reaps made by loop turns while I/O was
					in flight (busy or spinning; epoll: one epoll_wait
					each; io_uring: a syscall only when the kernel has
					work for us) */
	uint64_t io_sendq_full;	     /* sends refused with VZ_EFULL (send queue bound) */
	uint64_t io_accept_backoffs; /* accept pauses after EMFILE/ENFILE */
	uint64_t io_fds_open;	     /* descriptors owned by actors now */
} vz_shard_stats;

/* Copy shard's counters to *out. Any thread. VZ_ENOSHARD, VZ_EINVAL. */
VZ_API int vz_stats_shard(const vz_runtime *rt, unsigned shard, vz_shard_stats *out);

/* Sum of every shard's counters into *out. Messages from non-shard threads
 * are counted when their shard takes them (received_foreign); that sum is
 * also stored in *foreign_posts when it is not NULL. At any quiet moment
 * (after stop, say): sent_local + sent_remote + received_foreign ==
 * handled + dead_letters. Messages the runtime makes are outside these
 * books: timer expiries, stop requests, and the lifecycle messages
 * (spawn requests and VZ_MSG_SPAWNED, monitor and link requests,
 * VZ_MSG_DOWN, VZ_MSG_EXIT, VZ_MSG_TIMEOUT; lifecycle.h). Replies to asks
 * are user messages: counted, and a late one is a dead letter (ask.h).
 * Any thread. VZ_EINVAL for NULL rt or out. */
VZ_API int vz_stats_total(const vz_runtime *rt, vz_shard_stats *out, uint64_t *foreign_posts);

/* Per scheduling class of one shard (vz_config.classes). Written by the
 * shard, read by anyone: each counter is a consistent snapshot, not the
 * set. With classes off (nclasses <= 1) only class 0 exists and its
 * counters stay 0: the single-class loop measures nothing. */
#define VZ_CLASS_WAIT_BUCKETS 32
typedef struct vz_class_stats {
	char name[32];		   /* the class's configured name */
	uint64_t runtime_ns;	   /* time spent running the class's actors */
	uint64_t messages;	   /* messages its actors handled (receive calls) */
	uint64_t runs;		   /* actor runs */
	uint64_t quota_violations; /* runs that ended past the class's turn quota */
	/* Queue wait, from an actor becoming ready to its run starting
	 * (resolution: one loop turn). Bucket 0 counts waits under 1 ns,
	 * bucket b in 1..30 those in [2^(b-1), 2^b) ns, bucket 31 longer. */
	uint64_t wait_hist[VZ_CLASS_WAIT_BUCKETS];
} vz_class_stats;

/* Copy class `cls` of `shard`'s counters to *out. Any thread. VZ_EINVAL
 * (NULL, or cls not a configured class; class 0 always exists),
 * VZ_ENOSHARD. */
VZ_API int vz_stats_class(const vz_runtime *rt, unsigned shard, unsigned cls, vz_class_stats *out);

/* The p-quantile (0 < q <= 1) of a wait histogram, as the upper bound of
 * the bucket holding it, in ns; 0 when empty. Any thread. */
VZ_API uint64_t vz_class_wait_quantile(const vz_class_stats *s, double q);

VZ_END_DECLS

#endif
