/* SPDX-License-Identifier: MIT */
/*
 * Per-shard counters. Each is written by its shard's thread (except
 * mailbox_full's share from foreign posts, counted by the posting threads,
 * wake_failures, counted by whoever failed to wake the shard, and the
 * lane figures marked below, written by posting threads under the shard's
 * lane-table lock) and read by anyone: a snapshot is consistent per
 * counter, not across counters. They exist to show what should not happen
 * on hot paths (pool refills, ring-full events, wake-up syscalls) next to
 * benchmark figures.
 */
#ifndef VELOZ_STATS_H
#define VELOZ_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "runtime.h"

VZ_BEGIN_DECLS

typedef struct vz_shard_stats {
	uint64_t sent_local;	   /* accepted sends to actors on the same shard */
	uint64_t sent_remote;	   /* accepted sends to other shards */
	uint64_t received_foreign; /* messages from non-shard threads: taken from the
				      foreign inbox (vz_post) or a pool's completion
				      rings (pool completions) */
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
	/* Zero-copy sends (io_uring SENDMSG_ZC), appended. */
	uint64_t io_send_zc;	      /* send-queue writes made zero-copy */
	uint64_t io_send_zc_fallback; /* of those, refused by the kernel and sent as a copy */
	/* Producer lanes (producer.h), appended: what sizing
	 * vz_config.foreign_lanes (INI runtime.foreign_lanes) needs. Fields
	 * marked "lock" are written by posting threads under the shard's
	 * lane-table lock (lanes_in_use also by the shard when it frees a
	 * lane), the others by the shard alone; none costs a post on the
	 * lane path anything. Gauges are summed by vz_stats_total() like the
	 * rest. Outside a simulation (sim.h: its posts all take the inbox
	 * and none is counted here), every message a non-shard thread posts
	 * here, but a stop request, is counted in lane_posts or
	 * lane_fallback_posts when the shard takes it; received_foreign
	 * counts the user messages among them (and pool completions). */
	uint64_t lanes_in_use;	      /* gauge, lock: lanes registered now, each held by a live
					 thread or vz_producer that posted here, or by one gone
					 whose lane the shard has not emptied yet */
	uint64_t lanes_hwm;	      /* gauge, lock: most lanes registered at once since
					 create; at foreign_lanes, every lane was taken at some
					 moment (lanes_exhausted: did anyone go without) */
	uint64_t lanes_active;	      /* gauge: of lanes_in_use, those the shard polls every
					 turn; the others are parked (quiet for a while; the
					 next post rings their doorbell) */
	uint64_t lanes_exhausted;     /* lock: posts that found no free lane here: a
					 thread's first post, after which every post of
					 that thread to this shard takes the inbox (see
					 lane_fallback_posts), or a vz_producer_post()
					 refused with VZ_ENOLANE */
	uint64_t lane_posts;	      /* messages taken from lanes (user and runtime-made) */
	uint64_t lane_fallback_posts; /* messages taken from the inbox that a non-shard
					 thread posted there because it had no lane into
					 this shard: the inbox path, with its contended
					 read-modify-writes, for the rest of that thread's
					 life (producer.h) */
	uint64_t lane_doorbells;      /* parked lanes woken by their doorbell: by a post
					 (which then paid one contended read-modify-write
					 to ring it) or by a producer letting its lane go */
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

/* ---- observability: per-actor-type metrics, snapshots, export ---------- */

/*
 * A log-linear latency histogram in the manner of HdrHistogram: values
 * 0..7 ns have a bucket each; above, every power of two [2^e, 2^(e+1)) is
 * split into 2^VZ_HIST_SUB_BITS equal buckets, so a bucket is at most
 * 1/8 = 12.5% of its lower bound wide. Values from 2^34 ns (about 17 s)
 * up share the last bucket. Every histogram has the same buckets, so two
 * merge by adding them (vz_hist_merge()): across shards, across snapshots.
 */
#define VZ_HIST_SUB_BITS 3
#define VZ_HIST_BUCKETS	 256
typedef struct vz_hist {
	uint64_t count; /* samples recorded (the buckets' sum) */
	uint64_t sum;	/* their sum, ns (mean = sum / count) */
	uint64_t max;	/* largest sample, ns */
	uint64_t bucket[VZ_HIST_BUCKETS];
} vz_hist;

/* Bucket index of a value, and a bucket's smallest and largest value (the
 * last bucket's largest is UINT64_MAX). Any thread. */
VZ_API unsigned vz_hist_index(uint64_t v);
VZ_API uint64_t vz_hist_lower(unsigned i);
VZ_API uint64_t vz_hist_upper(unsigned i);
/* Record `count` samples of value v (count 0 or a NULL h records
 * nothing). The caller's histogram: any thread, one at a time per h. */
VZ_API void vz_hist_record(vz_hist *h, uint64_t v, uint64_t count);
/* dst += src (nothing when either is NULL). As vz_hist_record(). */
VZ_API void vz_hist_merge(vz_hist *dst, const vz_hist *src);
/* The q-quantile (0 < q <= 1): the largest value of the bucket holding it,
 * but never above max; 0 when h is NULL or empty or q is out of range.
 * Any thread. */
VZ_API uint64_t vz_hist_quantile(const vz_hist *h, double q);

/*
 * Per actor type (one vz_actor_spec, named by its .name) on one shard.
 * Counted by the shard for every run of an actor of the type, unless
 * vz_config.stats_types_off. The times come from sampled runs: one actor
 * run in vz_config.stats_sample_runs (per shard, any type) reads the clock
 * when it starts and when it ends.
 * - wait: from the actor becoming ready (a message reaching its empty
 *   mailbox) to the start of its run. The start of the wait is the
 *   shard's last clock reading before it, so a wait is over-estimated by
 *   at most the time since that reading (one loop turn, or 64 messages
 *   with a turn budget): a queue wait at loop-turn resolution.
 * - handle: a sampled run of n messages that took t ns records n samples
 *   of t / n: the mean handling time of the messages of that run (receive
 *   plus the runtime's dispatch), not each message on its own.
 */
#define VZ_TYPE_NAME_MAX 48
typedef struct vz_type_stats {
	char name[VZ_TYPE_NAME_MAX]; /* spec->name, "(unnamed)" for NULL, "(other)"
					for types past VZ_STATS_TYPES_MAX */
	unsigned shard;
	uint64_t handled;     /* receive calls (every message, sampled or not) */
	uint64_t runs;	      /* actor runs */
	uint64_t mailbox_hwm; /* deepest mailbox seen at the start of a run */
	uint64_t spawned;     /* actors of the type spawned on the shard */
	vz_hist wait;	      /* one sample per sampled run */
	vz_hist handle;	      /* n samples per sampled run of n messages */
} vz_type_stats;

/* Actor types one shard tracks on its own; later types share one
 * "(other)" entry, the last. */
#define VZ_STATS_TYPES_MAX 64

/* Per-shard figures beyond vz_shard_stats. */
typedef struct vz_shard_obs {
	uint64_t wakeups_received; /* sleeps a wake-up from another thread ended */
	uint64_t stalls;	   /* turns that ran past the stall budget */
	uint64_t turn_seq;	   /* 2 * turns begun, + 1 while one runs */
	uint64_t pool_jobs;	   /* jobs its actors submitted to the worker pool
				      (accepted ones; vz_stats_pool() has the rest) */
} vz_shard_obs;

/*
 * Everything at one moment (each counter a consistent snapshot on its
 * own, not the set): made by vz_stats_snapshot_create(), freed by
 * vz_stats_snapshot_free(); the library owns the memory.
 */
typedef struct vz_stats_snapshot {
	uint32_t version; /* VZ_STATS_VERSION */
	unsigned nshards;
	uint64_t taken_ns;     /* vz_now_ns() clock */
	char backend[16];      /* "io_uring" or "epoll" */
	vz_shard_stats *shard; /* [nshards]: vz_stats_shard() of each */
	vz_shard_obs *obs;     /* [nshards] */
	/* [nshards * nshards]: sent_to[a * nshards + b] user messages shard a
	 * sent to shard b (a != b; counted when accepted), received_from[b *
	 * nshards + a] those shard b took from its ring from a. */
	uint64_t *sent_to;
	uint64_t *received_from;
	unsigned ntypes;
	vz_type_stats *types; /* [ntypes], by shard, then in order of first spawn */
} vz_stats_snapshot;
#define VZ_STATS_VERSION 1

/* Take a snapshot of rt. Any thread, while rt exists (created, running or
 * stopped). VZ_EINVAL (NULL), VZ_ENOMEM. */
VZ_API int vz_stats_snapshot_create(const vz_runtime *rt, vz_stats_snapshot **out);
/* Free a snapshot; NULL is a no-op. Any thread. */
VZ_API void vz_stats_snapshot_free(vz_stats_snapshot *s);

/* Write s as JSON (one object; shards, types with p50/p90/p99/max and the
 * non-empty buckets) into buf, NUL-terminated when len > 0. Returns the
 * length the whole text needs, as snprintf, so a caller can size buf with
 * a first call of len 0; VZ_EINVAL for a NULL s or a NULL buf with
 * len > 0, VZ_ENOMEM when the text would exceed INT32_MAX bytes. Any
 * thread. */
VZ_API int vz_stats_json(const vz_stats_snapshot *s, char *buf, size_t len);
/* The same in the Prometheus text exposition format (counters
 * veloz_shard_*_total{shard="0"}, the gauges veloz_shard_actors_live and
 * veloz_shard_lanes_{in_use,hwm,active}, veloz_actor_*{shard,type} and the two
 * histograms as veloz_actor_{wait,handle}_seconds with cumulative le
 * buckets). Returns as vz_stats_json(). Any thread. */
VZ_API int vz_stats_prometheus(const vz_stats_snapshot *s, char *buf, size_t len);

/* The name of rt's shared-memory stats segment ("/veloz-<pid>-<n>", for
 * shm_open() and tools/veloz-stats) when vz_config.stats_shm asked for
 * one and it was created, else NULL. Valid until vz_runtime_destroy().
 * Any thread. */
VZ_API const char *vz_stats_shm_name(const vz_runtime *rt);

/* What the stall detector reports (vz_config.stall_hook): shard `shard`
 * has been in one loop turn for at least stalled_ns (measured by the
 * watchdog, a lower bound). When the turn was in an actor's receive,
 * in_receive is true and actor / msg_type name the actor's type and the
 * message it is handling; backtrace holds the shard thread's stack, one
 * frame a line as backtrace_symbols() gives them (empty when it could not
 * be taken: an embedded shard, or the signal was unavailable). Valid
 * during the hook call only. */
typedef struct vz_stall_report {
	unsigned shard;
	uint64_t stalled_ns;
	uint64_t budget_ns;
	bool in_receive;
	char actor[VZ_TYPE_NAME_MAX];
	uint32_t msg_type;
	unsigned nframes;
	const char *backtrace;
} vz_stall_report;

VZ_END_DECLS

#endif
