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
#include <veloz/lifecycle.h>

#include "cluster/transport.h"
#include "cluster/wire.h"
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

enum { VZ__CMD_REG = 1, VZ__CMD_UNREG, VZ__CMD_STOPPED, VZ__CMD_SYNC, VZ__CMD_NOPROC };

#define VZ__KIND_HB 4 /* the heartbeat subscription (subscription kind) */

/* Wire types of the cluster's own records: below VZ_MSG_USER, so never an
 * application's. Monitor records travel unsequenced (seq 0): a lost one
 * is not an application's loss, and the timeouts of monitor.c cover it.
 *   SYNC   marker of vz_cluster_sync() to ourselves; payload: the token
 *   MON    watch `to` (or the unique name's holder); payload: monitor id;
 *          from = the watcher on the sending node
 *   DEMON  stop watching; payload: monitor id
 *   DOWN   a watched actor ended; payload: VZ__DOWN_WIRE_LEN bytes (id,
 *          exit kind, code, text); to = the watcher
 *   ACK    the watched actor's node took the monitor; payload: id;
 *          from = the watched actor
 *   HB     heartbeat on "vz.<ns>.hb"; no payload
 *   BYE    the node leaves (on "vz.<ns>.hb"); no payload */
#define VZ__WIRE_SYNC	  1u
#define VZ__WIRE_MON	  2u
#define VZ__WIRE_DEMON	  3u
#define VZ__WIRE_DOWN	  4u
#define VZ__WIRE_ACK	  5u
#define VZ__WIRE_HB	  6u
#define VZ__WIRE_BYE	  7u
#define VZ__DOWN_WIRE_LEN (16u + VZ_EXIT_TEXT_MAX)

struct vz__ccmd {
	struct vz__mpsc_node node;
	uint8_t op;
	uint8_t kind;
	vz_ref actor;
	uint64_t token; /* VZ__CMD_SYNC; VZ__CMD_NOPROC: the monitor id */
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

/* A monitor across nodes (monitor.c), transport thread only. "Held": an
 * actor of this node watches an actor of another node; "given": an actor
 * of this node is watched, through a unique name, by another node's. */
struct vz__mon {
	uint64_t id;	      /* the monitor id of vz_monitor(); 0 = free slot */
	uint64_t local;	      /* held: the watcher; given: the watched actor */
	uint32_t entry;	      /* remote-table index: held: the target; given: the watcher */
	uint32_t peer;	      /* held: index + 1 in peers once the target's node answered */
	uint64_t node_id;     /* held: the incarnation of that node */
	uint64_t t_ns;	      /* held: when asked */
	struct vz__csub *sub; /* given: the unique name's subscription */
};

struct vz__monmap {
	struct vz__mon *s;
	uint32_t cap, n;
};

/* Another node as heartbeats show it (monitor.c), transport thread only. */
struct vz__peer {
	char name[VZ__WIRE_NODE + 1];
	uint64_t node_id; /* latest incarnation heard */
	uint64_t seen_ns; /* when last heard from */
	bool gone;	  /* said goodbye */
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
	/* The open batch (transport_loop.c): consecutive records of entry
	 * batch_entry, back to back; batch_type their type or 0 when mixed,
	 * batch_seq0 the entry's sequence number before them. */
	unsigned char *batch;
	size_t batch_len, batch_cap;
	uint32_t batch_n, batch_entry, batch_type, batch_seq0;
	struct vz__csub *hb_sub;
	char hb_subject[VZ__SUBJECT_MAX]; /* "vz.<ns>.hb" */
	struct vz__monmap held, given;
	struct vz__peer *peers;
	uint32_t npeers, peercap;
	uint64_t hb_ns, timeout_ns, hb_next, check_next;

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
/* Wake the transport thread if it sleeps (after publishing work). */
void vz__cluster_wake(struct vz_cluster *c);
int vz__rentry_get(struct vz_cluster *c, uint8_t kind, const char *subject, uint64_t target,
		   uint32_t *index);
vz_ref vz__rentry_ref(const struct vz_cluster *c, uint32_t index);
void vz__cluster_dead_letter(struct vz_cluster *c, uint64_t to, uint32_t type, const void *data,
			     size_t len, int reason);

/* transport_loop.c */
/* Publish one of the cluster's own records to entry `entry` (transport
 * thread). */
void vz__cluster_send_ctl(struct vz_cluster *c, uint32_t entry, uint32_t type, uint64_t from,
			  const void *payload, size_t len);
/* The remote reference for the sender of w (a proxy for that actor). */
vz_ref vz__cluster_sender(struct vz_cluster *c, const struct vz__wire *w);
/* Post a runtime message (VZ__MSG_SYS) to a local actor from the
 * transport thread. */
int vz__cluster_post_sys(struct vz_cluster *c, vz_ref from, vz_ref to, uint32_t type,
			 const void *payload, size_t len);

/* monitor.c (transport thread) */
struct vz__wire;
/* A MON / DEMON / DOWN record drained from a shard's ring, before it is
 * published: book-keeping of held and given monitors. false: do not
 * publish it. */
bool vz__mon_outgoing(struct vz_cluster *c, const struct vz__rentry *e, uint32_t type,
		      uint64_t from, const unsigned char *payload, uint32_t len);
/* A control record (type below VZ_MSG_USER) arrived on subscription s. */
void vz__mon_incoming(struct vz_cluster *c, struct vz__csub *s, const struct vz__wire *w);
/* No one had the name a MON record went to: DOWN "no such actor". */
void vz__mon_noproc(struct vz_cluster *c, uint64_t id);
/* `actor` lost the unique name of subscription s (unregistered, not
 * stopped): DOWN to the nodes that watch it through that name. */
void vz__mon_unregistered(struct vz_cluster *c, struct vz__csub *s, vz_ref actor);
/* `actor` stopped: forget what was given through its names (its own DOWN
 * is on its way from its shard). */
void vz__mon_stopped(struct vz_cluster *c, vz_ref actor);
/* Subscription s is being freed. */
void vz__mon_sub_gone(struct vz_cluster *c, struct vz__csub *s);
/* Heartbeats: publish ours when due, check the peers; returns the time
 * of the next tick (vz__clock_ns() scale). */
uint64_t vz__mon_tick(struct vz_cluster *c, uint64_t now);
/* Leaving: say goodbye. */
void vz__mon_bye(struct vz_cluster *c);
void vz__mon_free(struct vz_cluster *c);

void *vz__cluster_thread(void *arg);
int vz__cluster_inbox_subscribe(struct vz_cluster *c);
void vz__cluster_subs_free(struct vz_cluster *c);
void vz__cluster_noresp(void *ctx, const char *reply);
void vz__cluster_conn(void *ctx, int up, const char *why);

#endif
