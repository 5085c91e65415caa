/* SPDX-License-Identifier: MIT */
/*
 * The cluster's internal picture (public side: include/veloz/cluster.h).
 *
 * Remote references. A reference whose shard field is VZ__REMOTE_SHARD
 * (the last shard number, which a clustered runtime may not use) names an
 * entry of the cluster's remote table: a name (unique, queue, broadcast)
 * or an actor of another node (the sender of a message that came from
 * there). Its slot field is the entry's index, its generation the
 * cluster's tag, so a reference of another cluster object is stale. The
 * send paths (core/send.c) hand such a reference to vz__remote_send()
 * before anything else; no proxy actor sits in between.
 *
 * Threads and ownership:
 * - Entries are created under `lock` by any thread (resolve) or by the
 *   transport thread (sender proxies), written once, then published by
 *   the release store of `nentries`; readers check index < nentries
 *   (acquire) and then read the entry without a lock. Entries live until
 *   the cluster is destroyed. entry->seq is the transport thread's.
 * - Outgoing messages: one xring per shard (producer: the shard thread),
 *   one for every other thread (producers serialised by foreign_lock);
 *   the consumer of all of them is the transport thread.
 * - Registrations: the registry list (under `lock`) answers EBUSY/ENOENT
 *   at once; the transport thread's own subscription table follows it
 *   through commands on an MPSC queue.
 * - Sleep protocol of the transport thread, as the shards' (shard.c):
 *   sleeping = 1, full fence, re-check every ring and the command queue,
 *   then poll; producers publish, full fence, read sleeping and wake only
 *   if exchange(sleeping, 0) returned 1.
 */
#ifndef VZ_CLUSTER_INT_H
#define VZ_CLUSTER_INT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <veloz/cluster.h>

#include "cluster/transport.h"
#include "cluster/xring.h"
#include "queue/mpsc_inbox.h"

#define VZ__REMOTE_SHARD (VZ_MAX_SHARDS - 1u)

#define VZ__KIND_DIRECT 3 /* an actor of another node (entry kind) */

#define VZ__RCHUNK	4096u
#define VZ__RMAX_CHUNKS ((1u << 24) / VZ__RCHUNK)

#define VZ__SUBJECT_MAX 224 /* "vz.<ns>.<k>.<name>" and "vz.<ns>.n.<node>" */

struct vz__rentry {
	uint8_t kind;	 /* vz_name_kind or VZ__KIND_DIRECT */
	uint32_t index;	 /* in the table; also the stream id on the wire */
	uint64_t target; /* DIRECT: the actor's reference on its node */
	uint32_t seq;	 /* transport thread: last sequence number sent */
	uint32_t hnext;	 /* hash chain: index + 1 of the next entry, 0 = end */
	char subject[VZ__SUBJECT_MAX];
};

/* A registration as the registering threads see it (under lock). */
struct vz__reg {
	struct vz__reg *next;
	vz_ref actor;
	uint8_t kind;
	char name[VZ_CLUSTER_NAME_LEN + 1];
};

enum { VZ__CMD_REG = 1, VZ__CMD_UNREG, VZ__CMD_STOPPED, VZ__CMD_SYNC };

/* Wire type of a sync marker (vz_cluster_sync()): below VZ_MSG_USER, so
 * never an application's; payload: the 8-byte token. */
#define VZ__WIRE_SYNC 1u

struct vz__ccmd {
	struct vz__mpsc_node node;
	uint8_t op;
	uint8_t kind;
	vz_ref actor;
	uint64_t token; /* VZ__CMD_SYNC */
	char name[VZ_CLUSTER_NAME_LEN + 1];
};

/* Per-subscription sequence state: the last sequence number seen from
 * each (origin node, stream). Transport thread only. */
struct vz__gap {
	uint64_t node_id; /* 0 = free slot */
	uint32_t stream;
	uint32_t last;
};

/* One subscription of this node, transport thread only. */
struct vz__csub {
	struct vz__csub *next;
	void *handle;
	uint8_t kind;
	char subject[VZ__SUBJECT_MAX];
	vz_ref *actors;
	uint32_t n, cap, rr;
	struct vz__gap *gaps;
	uint32_t ngaps, gcap;
};

/* Counters: written by the transport thread with load + store unless
 * marked (rmw), which client threads also write. Read by anyone. */
struct vz__cstats {
	_Atomic uint64_t sent, published, received, delivered, lost_conn, lost_gap, lost_slow,
	    undeliverable, malformed, flushes;
	_Atomic uint64_t lost_no_name, disconnects, reconnects; /* rmw */
};

struct vz_cluster {
	vz_runtime *rt;
	const struct vz__tp_ops *ops;
	struct vz__tp *tp;
	vz_cluster_config cfg;
	char node[VZ_CLUSTER_NAME_MAX];
	char ns[VZ_CLUSTER_NAME_MAX];
	uint8_t node_len;
	uint64_t node_id;
	uint32_t tag;
	char reply_prefix[48];
	char inbox[VZ__SUBJECT_MAX]; /* "vz.<ns>.n.<node>" */
	size_t max_payload;
	unsigned nshards;
	struct vz__xring *out; /* [nshards] */
	struct vz__xring foreign;
	pthread_mutex_t foreign_lock;

	pthread_mutex_t lock; /* entries' creation and hash, registry */
	_Atomic(struct vz__rentry *) *chunks;
	_Atomic uint32_t nentries;
	uint32_t *hash; /* index + 1, chained through hnext */
	uint32_t hcap;
	struct vz__reg *regs;

	struct vz__mpsc cmds;
	pthread_t thread;
	bool thread_started;
	_Atomic bool stop;    /* destroy asks the transport thread to end */
	_Atomic bool closing; /* destroy began: remote sends are refused */
	/* vz_cluster_sync(): tokens handed out (RMW by callers) and the
	 * highest whose marker came back (stored by the transport, release;
	 * the waiting caller acquires). */
	_Atomic uint64_t sync_req, sync_done;

	/* transport thread only */
	struct vz__csub *subs;
	struct vz__csub *inbox_sub;
	uint64_t cache_key[64]; /* sender-proxy cache: hash of (node, ref) */
	uint32_t cache_idx[64];

	/* 1 while the transport thread is (about to be) asleep in poll();
	 * see the protocol above. */
	alignas(64) _Atomic uint32_t sleeping;
	alignas(64) struct vz__cstats st;
};

static inline void vz__cstat_add(_Atomic uint64_t *c, uint64_t n)
{
	/* Single writer (the transport thread): relaxed load + store. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* The entry of index i (i < nentries, read with acquire before). */
static inline struct vz__rentry *vz__rentry_at(struct vz_cluster *c, uint32_t i)
{
	/* Relaxed: ordered by the caller's acquire of nentries. */
	struct vz__rentry *chunk =
	    atomic_load_explicit(&c->chunks[i / VZ__RCHUNK], memory_order_relaxed);

	return &chunk[i % VZ__RCHUNK];
}

/* cluster.c */
int vz__rentry_get(struct vz_cluster *c, uint8_t kind, const char *subject, uint64_t target,
		   uint32_t *index);
vz_ref vz__rentry_ref(const struct vz_cluster *c, uint32_t index);
void vz__cluster_dead_letter(struct vz_cluster *c, uint64_t to, uint32_t type, const void *data,
			     size_t len, int reason);

/* transport_loop.c */
void *vz__cluster_thread(void *arg);
int vz__cluster_inbox_subscribe(struct vz_cluster *c);
void vz__cluster_subs_free(struct vz_cluster *c);
void vz__cluster_noresp(void *ctx, const char *reply);
void vz__cluster_conn(void *ctx, int up, const char *why);

#endif
