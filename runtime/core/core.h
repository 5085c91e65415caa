/* SPDX-License-Identifier: MIT */
/*
 * The runtime core's internal picture: the runtime, its shards, actors and
 * messages, and the functions the core's files share. Read this first; the
 * invariants every file relies on are stated here once.
 *
 * Ownership (runtime/DESIGN.md invariant 1): everything in struct vz__shard
 * above the "shared" marker is touched only by the shard's own thread (or,
 * before start and after the threads are joined, by the single thread that
 * creates or destroys the runtime). The fields below it are shared with other
 * threads and each sits on its own cache line with a comment naming who
 * writes it and which access it pairs with.
 */
#ifndef VZ_CORE_H
#define VZ_CORE_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz.h>

#include "io/io.h"
#include "queue/mpsc_inbox.h"
#include "queue/slot_ring.h"
#include "queue/spsc_ring.h"
#include "stats/obs.h"
#include "timer/timers.h"
#include "topo/topo.h"
#include "util/clock.h"
#include "util/membarrier.h"

#include "core/mailbox.h"

#define VZ__LINE 64

/* ---- messages ---------------------------------------------------------- */

/* Size classes: block sizes 64 << c for c in [0, VZ__NCLASSES). The largest
 * holds a header plus VZ_MSG_MAX_PAYLOAD. The same classes serve actor
 * state blocks up to the largest class. */
#define VZ__NCLASSES	    10
#define VZ__CLASS_MAX_BYTES (64u << (VZ__NCLASSES - 1))

/* msg->owner: the shard whose pool the block came from, with this bit set
 * when it came from that shard's foreign pool (posted by a non-shard
 * thread) rather than its local pool. */
#define VZ__OWNER_FOREIGN 0x8000u

/* msg->flags */
#define VZ__MSG_SYS	  0x01u /* runtime-reserved type (timer, pool, stop) */
#define VZ__MSG_RETURNING 0x04u /* a block going home to its pool (xshard/) */
#define VZ__MSG_INFLIGHT  0x08u /* counted in the target's bounded-mailbox counter */
#define VZ__MSG_IOBUF	  0x10u /* VZ_MSG_IO holding a receive buffer (runtime/aio) */
#define VZ__MSG_UNCOUNTED                                                                          \
	0x02u		    /* runtime-made (timer expiry, stop request): not in                   \
			       the sent = handled + dead-lettered accounting */
#define VZ__MSG_REPLY 0x20u /* a vz_reply() to an ask: corr is the asker's (life.c) */
/* A struct vz__msg_view (below): the handler's view of an inline mailbox
 * cell, whose payload is at view->data, not in m->data. */
#define VZ__MSG_VIEW 0x40u
/* Every flag its own bit: a reply and an I/O event once shared 0x10, and
 * a reply was then taken for an event holding a receive buffer. */
_Static_assert(((VZ__MSG_SYS | VZ__MSG_UNCOUNTED | VZ__MSG_RETURNING | VZ__MSG_INFLIGHT) &
		(VZ__MSG_IOBUF | VZ__MSG_REPLY | VZ__MSG_VIEW)) == 0 &&
		   ((VZ__MSG_IOBUF | VZ__MSG_REPLY) & VZ__MSG_VIEW) == 0 &&
		   (VZ__MSG_IOBUF & VZ__MSG_REPLY) == 0 &&
		   ((VZ__MSG_SYS | VZ__MSG_UNCOUNTED | VZ__MSG_RETURNING | VZ__MSG_INFLIGHT |
		     VZ__MSG_IOBUF | VZ__MSG_REPLY | VZ__MSG_VIEW) &
		    ~0xffu) == 0,
	       "msg->flags bits overlap or overflow its 8 bits");

/* Internal message types below VZ_MSG_USER that users never see. The
 * requests STOP .. EXITSIG take the target's urgent lane (vz__msg_urgent());
 * SPAWN is addressed to a shard (vz__shard_ref()), not to an actor. All are
 * runtime-made: VZ__MSG_SYS | VZ__MSG_UNCOUNTED (life.c). */
enum {
	VZ__MSG_STOP = 200,	 /* stop the target actor (vz_stop from elsewhere) */
	VZ__MSG_MONITOR = 201,	 /* life.c: watch the target */
	VZ__MSG_DEMONITOR = 202, /* life.c: stop watching */
	VZ__MSG_LINK = 203,	 /* life.c: link with the sender */
	VZ__MSG_UNLINK = 204,	 /* life.c: unlink */
	VZ__MSG_EXITSIG = 205,	 /* life.c: a linked actor ended */
	VZ__MSG_SPAWN = 210,	 /* spawn_remote.c: spawn on the addressed shard */
};

struct vz_msg {
	union {
		struct vz__mpsc_node node; /* link: inbox, mailbox, outbox, free list */
		/* VZ__MSG_VIEW: the payload, in the mailbox cell (deliver.c) */
		const unsigned char *view_data;
	};
	vz_ref to;
	vz_ref from;
	uint32_t type;
	uint32_t len;
	uint16_t owner; /* allocating shard (| VZ__OWNER_FOREIGN) */
	uint8_t cls;	/* size class */
	uint8_t flags;
	/* Foreign free-stack link (index + 1, 0 = end). Atomic because a
	 * popping thread may read it while another pops the same block; the
	 * stack's tag makes such a stale read harmless. */
	_Atomic uint32_t fnext;
	uint32_t findex; /* foreign blocks: index in their pool, set once */
	/* Correlation of an ask (life.c): on a request, what the reply must
	 * carry; on a reply (VZ__MSG_REPLY), the asker's id; 0 = none. */
	uint32_t corr;
	alignas(16) unsigned char data[];
};
_Static_assert(sizeof(struct vz_msg) == 48, "message header is 48 bytes");
/* message.h promises VZ_MSG_ALIGN for vz_msg_data(): the header is a
 * multiple of it, and every block (local slabs and foreign chunks in
 * msg_pool.c) starts on a 64-byte boundary and is 64 << class long. */
_Static_assert(offsetof(struct vz_msg, data) % VZ_MSG_ALIGN == 0 && 64 % VZ_MSG_ALIGN == 0,
	       "vz_msg_data() must stay VZ_MSG_ALIGN-aligned (message.h)");

/*
 * What a receive call gets for an inline mailbox cell (mailbox.h): a
 * struct vz_msg on the dispatching stack frame with the header fields the
 * accessors and vz_reply() read (from, type, len, flags with VZ__MSG_VIEW,
 * corr 0; `to` only in a simulation) and view_data pointing at the payload
 * where it is, in the cell. The handler sees a const vz_msg * like any
 * other, valid during the call (message.h); vz_msg_data() returns
 * view_data.
 */

/* A ring entry with this bit set is a block of the receiver's own pool
 * coming home, not a message (blocks are at least 64-byte aligned). */
#define VZ__RING_RETURN ((uintptr_t)1)

/* Mailbox and list links reuse node.next. These lists are owner-only, so a
 * relaxed access (a plain move on every target we support) is enough; the
 * field is atomic only because the inbox shares it. */
static inline struct vz_msg *vz__msg_next(const struct vz_msg *m)
{
	return (struct vz_msg *)atomic_load_explicit(&m->node.next, memory_order_relaxed);
}
static inline void vz__msg_set_next(struct vz_msg *m, struct vz_msg *next)
{
	atomic_store_explicit(&m->node.next, &next->node, memory_order_relaxed);
}

/* A FIFO of messages owned by one thread. */
struct vz__msg_list {
	struct vz_msg *head, *tail;
	uint32_t len;
};

static inline void vz__list_push(struct vz__msg_list *l, struct vz_msg *m)
{
	atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
	if (l->tail)
		vz__msg_set_next(l->tail, m);
	else
		l->head = m;
	l->tail = m;
	l->len++;
}

static inline struct vz_msg *vz__list_pop(struct vz__msg_list *l)
{
	struct vz_msg *m = l->head;

	if (m) {
		l->head = vz__msg_next(m);
		if (!l->head)
			l->tail = NULL;
		l->len--;
	}
	return m;
}

/* ---- pools ------------------------------------------------------------- */

/* A shard's local pool: one free list per size class, refilled from slabs
 * that live until the runtime is destroyed. Owner-only, no atomics. */
struct vz__slab;
struct vz__pool {
	void *free[VZ__NCLASSES]; /* singly linked through the first word */
	struct vz__slab *slabs;	  /* every slab, for destroy */
	uint64_t refills;	  /* slab allocations, mirrored into stats */
};

/* A shard's foreign pool: blocks that non-shard threads take to post to
 * this shard, and that this shard gives back after delivery. A Treiber
 * stack of block indices per class with a 32-bit tag against ABA; blocks
 * live in chunks that are never freed before destroy, so reading a block's
 * link after losing a race is harmless. */
#define VZ__FPOOL_MAX_CHUNKS 4096
struct vz__fpool_class {
	/* (tag << 32) | (index + 1); 0 index = empty. CAS by posters (pop)
	 * and by the shard and growers (push). */
	alignas(VZ__LINE) _Atomic uint64_t head;
	alignas(VZ__LINE) _Atomic(unsigned char *) chunks[VZ__FPOOL_MAX_CHUNKS];
	_Atomic uint32_t nchunks;  /* published chunks; grown under grow_lock */
	uint32_t per_chunk;	   /* blocks per chunk */
	pthread_mutex_t grow_lock; /* slow path only: adding a chunk */
};

/* ---- actors ------------------------------------------------------------ */

/*
 * A reference is shard (8) | slot (24) | generation (32), the layout
 * include/veloz/actor.h promises. Generations of a slot run 1, 2, ...,
 * VZ__GEN_LAST and never wrap: when the life with generation VZ__GEN_LAST
 * ends, the slot is retired for good (never put back on the free list), so
 * a reference once stale stays stale forever (runtime/DESIGN.md invariant
 * 3). At one spawn and stop of the same slot every 60 ns a slot lasts over
 * four minutes; the 2^24 slots of a shard then last over a century, after
 * which vz_spawn() reports VZ_ENOMEM. Generation 0 is never used, so the
 * zero (null) reference never names an actor.
 */
#define VZ__SHARD_SHIFT	     56
#define VZ__SLOT_BITS	     24
#define VZ__GEN_BITS	     32
#define VZ__GEN_LAST	     UINT32_MAX
#define VZ__CHUNK_ACTORS     4096u
#define VZ__MAX_ACTOR_CHUNKS ((1u << VZ__SLOT_BITS) / VZ__CHUNK_ACTORS)

_Static_assert(VZ__SHARD_SHIFT == VZ__SLOT_BITS + VZ__GEN_BITS, "fields of a reference abut");
_Static_assert(VZ_MAX_SHARDS <= (1u << (64 - VZ__SHARD_SHIFT)),
	       "every shard id fits the reference's shard field");

enum vz__actor_flags {
	VZ__ACTOR_LIVE = 1 << 0,      /* spawned and not stopped */
	VZ__ACTOR_READY = 1 << 1,     /* in the run queue */
	VZ__ACTOR_RUNNING = 1 << 2,   /* inside its receive */
	VZ__ACTOR_STOPPING = 1 << 3,  /* stop asked from inside receive */
	VZ__ACTOR_BIG_STATE = 1 << 4, /* state came from malloc, not the pool */
	VZ__ACTOR_ACTIVE = 1 << 5,    /* the run loop holds it: it frees the slot */
	VZ__ACTOR_RETIRED = 1 << 6,   /* generations used up: never reused */
	VZ__ACTOR_NAMED = 1 << 7,     /* has cluster names: stop removes them */
	VZ__ACTOR_SPILL = 1 << 8,     /* a->spill holds messages (no segment memory) */
};

struct vz_actor {
	struct vz__mbox mbox; /* 32: owner-only mailbox of cells (mailbox.h) */
	/* Urgent lane: runtime lifecycle messages (vz__msg_urgent()), handled
	 * before any user mail at the start of the actor's next run. Kept
	 * apart from mbox so user mail keeps its per-pair FIFO order and a
	 * stop request does not wait behind it. Owner-only. */
	struct vz_msg *urg_head, *urg_tail;
	const vz_actor_spec *spec;
	void *state;
	struct vz_actor *next_ready; /* run queue link; free-slot link when dead */
	struct vz__shard *shard;
	struct vz__timer_owner timers;
	uint32_t gen; /* generation of the current (or next, or last) life */
	uint32_t slot;
	uint16_t flags;
	uint16_t state_cls;
	uint32_t sched_cls; /* scheduling class (vz_actor_spec.sched_class) */
	/* sh->now_ns when the actor last joined its class's run queue, for
	 * the class queue-wait histogram (classes on only). */
	uint64_t ready_ns;
	/* (generation << 32) | mailbox_limit of the current life, 0 when
	 * dead: written by the owner (release) at spawn and stop, read by
	 * senders on other threads (acquire) to apply a bounded mailbox. */
	_Atomic uint64_t bound;
	/* I/O (runtime/aio): the descriptors it owns and the receive
	 * buffers it keeps, closed and given back when it stops. Owner-only. */
	struct vz__aio_fd *io_fds;
	struct vz__aio_buf *io_kept;
	/* Messages accepted for this actor and not yet handled or
	 * dead-lettered, counted only for bounded mailboxes: senders on any
	 * thread fetch_add before sending (relaxed: it is a counter, the
	 * message itself is published by the ring or inbox), the owner
	 * fetch_subs after handling. */
	_Atomic uint32_t inflight;
	/* Monitors, links, asks and the exit reason (life.c); NULL until the
	 * actor (or a watcher of it on this shard) first uses one. Owner-only. */
	struct vz__life *life;
	struct vz__atype *otype; /* per-type stats entry (stats/obs.h), or NULL */
	/* Blocks that arrived when no mailbox segment could be had (out of
	 * memory): they, and everything after them, wait here in order
	 * until the cells before them are handled. VZ__ACTOR_SPILL is set
	 * while it is not empty. Owner-only. */
	struct vz__msg_list spill;
};

/* ---- scheduling classes ------------------------------------------------ */

struct vz__runq {
	struct vz_actor *head, *tail;
};

/* Queue-wait histogram buckets: bucket b counts waits in [2^(b-1), 2^b) ns
 * (bucket 0: under 1 ns), the last one everything longer. */
#define VZ__WAIT_BUCKETS VZ_CLASS_WAIT_BUCKETS

/* Per-class state of a shard (deliver.c). Owner-only except the stats,
 * which are load+store counters like struct vz__stat_counters. */
struct vz__class {
	uint64_t vruntime; /* charged ns * VZ__VR_SCALE / shares */
	uint64_t turn_ns;  /* runtime charged in the current turn (quota) */
	uint64_t quota_ns; /* 0 = no per-turn quota */
	uint64_t msg_ns;   /* moving average of a message cost (charge()) */
	uint32_t shares;
	bool latency;
	struct {
		_Atomic uint64_t runtime_ns, messages, runs, quota_violations;
		_Atomic uint64_t wait[VZ__WAIT_BUCKETS];
	} st;
};

struct vz__sched {
	unsigned nclasses; /* 1 = classes off: the FIFO of before */
	uint32_t runnable; /* bit c: class c was runnable at the last pick */
	uint32_t latency;  /* bit c: class c is latency-sensitive */
	uint64_t min_vr;   /* floor a waking class's vruntime is raised to */
	struct vz__class cls[VZ_MAX_CLASSES];
};

/* ---- zero-copy hand-off (handoff.c) ---------------------------------- */

/* The shard's one open send reservation (vz_send_reserve()) and the block
 * the running receive handed on with vz_forward(). Owner-only. */
struct vz__handoff {
	struct vz_actor *owner; /* the reserving actor; NULL: none open */
	void *buf;		/* what vz_send_reserve() returned */
	vz_ref from, to;
	uint32_t type, len;
	int counted;	  /* a bounded-mailbox admission is held */
	struct vz_msg *m; /* the block written in place, or NULL: stage */
	/* The message being handled that vz_forward() handed on as it is:
	 * dispatch() must not give it back (deliver.c), and clears this. */
	const struct vz_msg *taken;
	/* The last message forwarded, and the shard's handled count then:
	 * a receive call sees one value of it (dispatch counts after the
	 * call), so a second forward of the same message is told apart
	 * from a later message at the same address (views). */
	const struct vz_msg *fwd;
	uint64_t fwd_at;
	/* Small local payloads are written here and go into the target's
	 * mailbox cells at commit (mailbox.h). */
	alignas(16) unsigned char stage[VZ__CELL_INLINE_MAX];
};

/* handoff.c: drop the reservation of actor a if it left one open (end of
 * its run, of init, of on_stop). */
void vz__handoff_end(struct vz__shard *sh, struct vz_actor *a);

/* ---- shards ------------------------------------------------------------ */

/* Counters written by their shard only (relaxed load + store, never a
 * read-modify-write) and read by anyone (relaxed). */
struct vz__stat_counters {
	_Atomic uint64_t sent_local, sent_remote, received_foreign, received_remote, handled,
	    dead_letters, turns, idle_turns, sleeps, wakeups_sent, pool_refills, ring_full,
	    overflow_queued, mailbox_full, timers_fired, timers_dropped, actors_live,
	    actors_spawned, actors_stopped, outbox_full;
	/* I/O (runtime/aio), in the order of vz_shard_stats. */
	_Atomic uint64_t io_submitted, io_completed, io_events, io_events_dropped,
	    io_bufs_exhausted, io_busy_polls, io_sendq_full, io_accept_backoffs, io_fds_open;
	_Atomic uint64_t io_send_zc, io_send_zc_fallback;
};

/* Add to a counter that one thread writes and any thread reads as a
 * snapshot: a relaxed load and store, never a read-modify-write (no
 * locked instruction on the hot path; a reader may see the old value). */
static inline void vz__counter_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

#define VZ__STAT_ADD(sh, field, n) vz__counter_add(&(sh)->stats.field, (n))

/* Messages (and returns) waiting to be published to one destination. */
#define VZ__RET_BATCH 32 /* blocks going home, kept per destination */

struct vz__outbox {
	struct vz__msg_list q; /* FIFO; includes overflow when the ring was full */
	/* Blocks of dest's pools going home. Kept as pointers, not linked
	 * through the block, so returning one does not write to its cache
	 * line (the owner is the next to touch it); they travel tagged with
	 * VZ__RING_RETURN. When the array is full they fall back to q. */
	void *ret[VZ__RET_BATCH];
	uint32_t nret;
	bool has_msgs; /* q holds messages (not only returns): wake may be needed */
	/* User messages in q (neither VZ__MSG_SYS nor blocks going home):
	 * what cfg.outbox_limit bounds (vz__outbox_admit()). */
	uint32_t nmsgs;
	uint32_t parked; /* head messages already counted in overflow_queued */
	bool stalled;	 /* ring full and the target already rung and woken */
	bool wake_owed;	 /* the last wake of dest failed: retry next turn */
};

enum vz__shard_phase {
	VZ__PHASE_RUN = 0,
	VZ__PHASE_DRAIN, /* actors stopped; drain rings, dead-letter arrivals */
	VZ__PHASE_EXIT,
};

struct vz__shard {
	/* ---- owner-only ---- */
	struct vz_runtime *rt;
	unsigned id;
	int cpu;
	bool embedded;
	struct vz__io *io;
	struct vz__aio *aio; /* actors' I/O (runtime/aio) */
	uint64_t now_ns;
	/* The simulation driving this shard (runtime/sim), NULL in a real
	 * runtime: the seam for the clock (vz__shard_clock()) and the
	 * handled-message hook (deliver.c). Set at create, never changed. */
	struct vz_sim *sim;

	/* actor table: chunks of VZ__CHUNK_ACTORS that never move. The
	 * pointer array has its full size from the start, so other threads
	 * may read it: a chunk pointer is stored (release) once by the owner
	 * and read (acquire) by senders checking a bounded mailbox. */
	_Atomic(struct vz_actor *) *chunks;
	uint32_t next_unused;	      /* slots [0, next_unused) have been used */
	struct vz_actor *free_actors; /* stopped slots to reuse */
	uint32_t retired_slots;	      /* slots whose generations ran out */

	/* Run queues, one per scheduling class (class 0 only when the
	 * config declares none: the plain FIFO of before). */
	struct vz__runq rq[VZ_MAX_CLASSES];
	struct vz__sched sched; /* class picking and per-class stats */

	struct vz__pool pool;
	struct vz__seg_cache segs; /* mailbox segments (mailbox.h) */
	struct vz__handoff ho;	   /* reserve/commit and forward (handoff.c) */
	struct vz__timers timers;
	bool timers_ready;
	void *timer_reserve; /* blocks kept for expiry messages (shard.c) */
	uint32_t timer_reserve_n;
	struct vz__outbox *out;			    /* [nshards] */
	uint64_t out_dirty[VZ_MAX_SHARDS / 64];	    /* destinations with a non-empty outbox */
	uint64_t pending_rings[VZ_MAX_SHARDS / 64]; /* sources left non-empty last drain */
	/* Rings polled every turn without waiting for their doorbell:
	 * those we took from since the shard last blocked. Of these, the
	 * ones whose producer was told so (ring->watching = 1, membarrier
	 * sleep fence only; core/xshard/drain.c). */
	uint64_t hot_rings[VZ_MAX_SHARDS / 64];
	uint64_t watched_rings[VZ_MAX_SHARDS / 64];
	struct vz__msg_list fpool_returns[VZ__NCLASSES]; /* foreign blocks to give back */
	uint32_t fpool_pending;				 /* blocks in fpool_returns, all classes */

	uint64_t idle_since_ns;
	unsigned stop_round_done;
	uint64_t stop_moved; /* messages moved in the current stop round */
	pthread_t thread;
	bool thread_started;
	/* Written and read by the stopping thread only (vz_runtime_stop()):
	 * foreign posts admitted through the post gate before stop closed it. */
	uint64_t posts_admitted;
	/* Foreign-inbox messages taken so far (vz__drain_inbox()); reported
	 * to the stopper through round_taken. */
	uint64_t inbox_taken;
	struct vz__obs_hot obs; /* per-type stats, stall report (stats/obs.h) */

	/* ---- shared ---- */

	/* Incoming rings: in[src] carries src -> this shard. Allocated by
	 * this shard's create on its node; written by src (producer side) and
	 * by this shard (consumer side). NULL for src == id. */
	struct vz__slot_ring **in;

	/* Doorbell: bit src set = ring src -> this shard may be non-empty.
	 * Set by producers with fetch_or after publishing (release), pairs
	 * with the exchange in drain_rings() (acquire), which clears it
	 * before the ring is drained. */
	alignas(VZ__LINE) _Atomic uint64_t bell[VZ_MAX_SHARDS / 64];

	/* 1 while the shard is (about to be) blocked in the backend. Stored
	 * by the owner, then a full barrier, then every source re-checked;
	 * senders publish, then load it and exchange it to 0 and wake only
	 * if it was 1. The barriers pair (store-buffer pattern): at least one
	 * side sees the other's write, so no wake-up is lost. Which side pays
	 * is `sleep_fence` below (util/membarrier.h): symmetric, the owner's
	 * seq_cst fence against the senders' seq_cst publishing RMW (the
	 * doorbell's fetch_or, the inbox push's exchange, a lane's commit
	 * CAS in lanes.c, always seq_cst) and seq_cst load;
	 * or asymmetric, the owner's membarrier() against the senders'
	 * compiler barrier. A sender whose wake fails stores 1 back
	 * (vz__wake()) so the duty passes to the next sender. */
	alignas(VZ__LINE) _Atomic uint32_t sleeping;
	/* enum vz__sleep_fence, the runtime's choice. Written at create,
	 * read-only afterwards; on the flag's line, which every sender
	 * reads anyway, so choosing costs no extra cache line. */
	uint8_t sleep_fence;

	/* Live actors with a bounded mailbox on this shard. Written by the
	 * owner (relaxed: a hint that saves senders from reading the target
	 * actor's slot when no actor here is bounded; an actor's bound itself
	 * is published by the release store of its `bound` field, and a
	 * sender that misses a just-spawned bounded actor merely does not
	 * count one message against it). */
	alignas(VZ__LINE) _Atomic uint32_t bounded_live;

	/* Stop protocol: the last round this shard completed (release), what
	 * it moved in it and how many inbox messages it has taken in all;
	 * read by the stopping thread (acquire on round_acked). */
	alignas(VZ__LINE) _Atomic uint32_t round_acked;
	_Atomic uint64_t round_moved;
	_Atomic uint64_t round_taken;
	_Atomic uint32_t phase; /* enum vz__shard_phase, written by the stopper */
	/* The shard's thread could not be pinned to `cpu` (runtime.c pin()):
	 * stored once by that thread at start (release), read by
	 * vz_runtime_shard_cpu() on any thread (acquire). Written once, so it
	 * shares this cold line. */
	_Atomic bool unpinned;

	/* Embedded shards: who may run this shard's turns. NULL until claimed;
	 * then, for good, either the vz__thread_token() of the embedder's
	 * thread whose first vz_shard_poll() claimed it, or &vz__stop_claim
	 * when vz_runtime_stop() found it unclaimed and drives it itself.
	 * Shared: claimed by one compare-and-swap from NULL, raced by a first
	 * poll and the stopper (see await_round() and vz_shard_poll() in
	 * runtime.c); read by pollers and by vz_spawn() (actor.c). No data is
	 * handed over through it, so every access is relaxed: the winner of
	 * the CAS owns the shard, the loser touches nothing of it. */
	alignas(VZ__LINE) _Atomic(const void *) driver;

	/* Foreign posters' refusals (post_foreign() in send.c), written by
	 * non-shard threads with read-modify-writes, only when a post is
	 * refused after its admission (the gate itself is vz__post_gate()).
	 * post_unpushed: admitted posts refused afterwards (full mailbox, no
	 * memory), so the stopper does not wait for their message.
	 * mailbox_full_foreign: VZ_EFULL refusals of foreign posts to this
	 * shard, summed into the mailbox_full stat (a foreign thread cannot
	 * use the owner's load+store counters). */
	alignas(VZ__LINE) _Atomic uint64_t post_unpushed;
	_Atomic uint64_t mailbox_full_foreign;

	alignas(VZ__LINE) struct vz__mpsc inbox;

	/* Foreign posters' lanes into this shard (lanes.c): made by create,
	 * read-only pointer afterwards; the set says who writes what. */
	struct vz__lane_set *lanes;

	alignas(VZ__LINE) struct vz__stat_counters stats;

	/* Failed attempts to wake this shard (vz__wake()). Unlike stats,
	 * written by any waking thread (relaxed fetch_add: a counter, read
	 * as a snapshot); on its own line so the failure path never
	 * touches the owner's counters. */
	alignas(VZ__LINE) _Atomic uint64_t wake_failures;

	alignas(VZ__LINE) struct vz__fpool_class fpool[VZ__NCLASSES];
};

enum vz__rt_state {
	VZ__RT_CREATED = 0,
	VZ__RT_RUNNING,
	VZ__RT_STOPPING,
	VZ__RT_STOPPED,
};

struct vz__pool_set;

struct vz_runtime {
	vz_config cfg;
	struct vz__topology topo;
	unsigned nshards;
	struct vz__shard **shards;
	enum vz__io_kind io_kind;
	char backend_reason[256];
	char backend_flags[96]; /* written by start, read-only afterwards */
	/* The sleep protocol's fence (util/membarrier.h) and why; written
	 * by create, read-only afterwards (each shard has a copy). */
	enum vz__sleep_fence sleep_fence;
	char sleep_fence_reason[256];
	uint64_t tick_ns;
	uint64_t spin_ns;
	struct vz__pool_set *pools;
	/* Simulated runtime (runtime/sim/NOTES.md), NULL otherwise. Written
	 * by create, read-only afterwards. */
	struct vz_sim *sim;
	bool started_once;
	/* enum vz__rt_state. Written by start/stop (seq_cst), read by senders. */
	alignas(VZ__LINE) _Atomic uint32_t state;
	/* Stop rounds: incremented by the stopper (release), read by shards. */
	alignas(VZ__LINE) _Atomic uint32_t stop_round;
	/* Slab allocations by foreign posters (foreign pools grow). */
	alignas(VZ__LINE) _Atomic uint64_t foreign_refills;
	/* Written by create, read-only afterwards (registry.c). */
	vz_cpuset reserved;   /* CPUs kept for the embedder */
	vz_cpuset shard_cpus; /* CPUs of runtime-owned shards (overlap warning) */
	/* The process's list of live runtimes; guarded by registry.c's mutex. */
	struct vz_runtime *live_next;
	bool live_linked;
	/* vz_runtime_stop_async() (stop_async.c): the thread running the
	 * stop, and enum vz__stopper_state, advanced by compare-and-swap
	 * (acq_rel: the creator's write of `stopper` is seen by the joiner). */
	pthread_t stopper;
	_Atomic uint32_t stopper_state;
	/* stats/watchdog.c and stats/shm.c: made by start (the segment by
	 * create), owned by the thread that starts, stops and destroys. */
	struct vz__watch *watch;
	struct vz__shm *shm;
	unsigned shm_no; /* this process's runtime number in the segment name */
	/* The node's cluster (runtime/cluster), or NULL. Stored (release) by
	 * vz_cluster_create() and cleared by destroy; read (acquire) by the
	 * send paths only for a reference naming shard VZ__REMOTE_SHARD. */
	_Atomic(struct vz_cluster *) cluster;
};

enum vz__stopper_state {
	VZ__STOPPER_NONE = 0, /* no async stop asked */
	VZ__STOPPER_STARTING, /* the asker is creating the thread */
	VZ__STOPPER_RUNNING,  /* created; not joined */
	VZ__STOPPER_JOINING,  /* one thread is joining it */
	VZ__STOPPER_JOINED,
	VZ__STOPPER_FAILED, /* the thread could not be created */
};

/* stop_async.c: join the async stop's thread if there is one (destroy). */
void vz__stopper_join(vz_runtime *rt);

/* ---- hot-path helpers, inline so one send is one straight path -------- */

/* runtime/sim: the virtual clock and the handled-message hook. */
uint64_t vz__sim_now(const struct vz_sim *sim);
void vz__sim_handled(struct vz_sim *sim, const struct vz__shard *sh, const struct vz_msg *m);
/* A monitor id for a simulated runtime: a per-simulation counter (the
 * process-wide one would make a run depend on the runs before it in the
 * process), with bit 62 set so it never equals a real runtime's. */
uint64_t vz__sim_monitor_id(struct vz_sim *sim);
/* Complete every job still queued with VZ_ECANCELED and refuse later
 * submissions (vz_runtime_stop(), as vz__pools_stop() does for workers). */
void vz__sim_pool_stop(struct vz_sim *sim);

/* The shard's clock read (runtime/DESIGN.md, "time has one source per
 * shard"): CLOCK_MONOTONIC, or the simulation's virtual time. One
 * predictable branch on an owner-only field, no #ifdef: a real runtime
 * never takes it. */
static inline uint64_t vz__shard_clock(const struct vz__shard *sh)
{
	if (__builtin_expect(sh->sim != NULL, 0))
		return vz__sim_now(sh->sim);
	return vz__mono_ns();
}

/* The shard the calling thread runs or drives (any runtime), or NULL. */
extern __attribute__((tls_model("initial-exec"))) _Thread_local struct vz__shard *vz__tls_shard;

/* The shard the calling thread runs or drives, for this runtime, or NULL. */
static inline struct vz__shard *vz__current(const vz_runtime *rt)
{
	struct vz__shard *sh = vz__tls_shard;

	return sh && sh->rt == rt ? sh : NULL;
}

void vz__set_current(struct vz__shard *sh);

/* The calling thread's identity as a pointer (the address of its own
 * vz__tls_shard, distinct for every live thread), for the embedded shards'
 * driver word: pthread_t has no atomic form and no "nobody" value. Like a
 * pthread_t, it may be reused by a thread created after this one ended. */
static inline const void *vz__thread_token(void)
{
	return (const void *)&vz__tls_shard;
}

/* driver value of an embedded shard that vz_runtime_stop() claimed. */
extern const char vz__stop_claim;

/* Does the calling thread drive embedded shard sh? Relaxed: a thread sees
 * its own claim; any other value is never equal to its token. */
static inline bool vz__is_driver(struct vz__shard *sh)
{
	return atomic_load_explicit(&sh->driver, memory_order_relaxed) == vz__thread_token();
}

/* A shard's post gate: VZ__GATE_CLOSED | number of foreign posts admitted
 * while open. Every foreign post takes a ticket with one fetch_add; the
 * result says whether it was admitted. Closed from creation until start
 * opens it, closed again (for good) by stop; see the invariant at
 * post_foreign() in send.c. It is the inbox's spare word on the producers'
 * line, which the post's push takes exclusive a moment later anyway. */
#define VZ__GATE_CLOSED ((uint64_t)1 << 63)

static inline _Atomic uint64_t *vz__post_gate(struct vz__shard *sh)
{
	return &sh->inbox.user;
}

static inline vz_ref vz__make_ref(unsigned shard, uint32_t slot, uint32_t gen)
{
	return (vz_ref){((uint64_t)shard << VZ__SHARD_SHIFT) | ((uint64_t)slot << VZ__GEN_BITS) |
			gen};
}

static inline uint32_t vz__ref_slot(vz_ref r)
{
	return (uint32_t)(r.id >> VZ__GEN_BITS) & ((1u << VZ__SLOT_BITS) - 1);
}

static inline uint32_t vz__ref_gen(vz_ref r)
{
	return (uint32_t)r.id; /* the low VZ__GEN_BITS == 32 bits */
}

static inline struct vz_actor *vz__slot_ptr(struct vz__shard *sh, uint32_t slot)
{
	/* Relaxed: the owner reads its own store. */
	struct vz_actor *chunk =
	    atomic_load_explicit(&sh->chunks[slot / VZ__CHUNK_ACTORS], memory_order_relaxed);

	return &chunk[slot % VZ__CHUNK_ACTORS];
}

/* The live actor `ref` names on sh, or NULL (stale, forged, other shard).
 * Owner thread of sh. */
static inline struct vz_actor *vz__actor_lookup(struct vz__shard *sh, vz_ref ref)
{
	uint32_t slot = vz__ref_slot(ref);
	struct vz_actor *a;

	if (vz_ref_shard(ref) != sh->id || slot >= sh->next_unused)
		return NULL;
	a = vz__slot_ptr(sh, slot);
	if (a->gen != vz__ref_gen(ref) || !(a->flags & VZ__ACTOR_LIVE))
		return NULL;
	return a;
}

/* Size class for a block of `bytes`, or -1 when larger than the largest. */
static inline int vz__size_class(size_t bytes)
{
	unsigned c;

	if (bytes <= 64)
		return 0;
	c = 64u - (unsigned)__builtin_clzll((unsigned long long)(bytes - 1)) - 6u;
	return c < VZ__NCLASSES ? (int)c : -1;
}

/* Slow path of vz__pool_alloc(): add a slab to class cls. 0 or VZ_ENOMEM. */
int vz__pool_refill(struct vz__shard *sh, unsigned cls);

static inline void *vz__pool_alloc(struct vz__shard *sh, unsigned cls)
{
	void **b = sh->pool.free[cls];

	if (__builtin_expect(!b, 0)) {
		if (vz__pool_refill(sh, cls) < 0)
			return NULL;
		b = sh->pool.free[cls];
	}
	sh->pool.free[cls] = *b;
	return b;
}

static inline void vz__pool_free(struct vz__shard *sh, void *block, unsigned cls)
{
	void **b = block;

	*b = sh->pool.free[cls];
	sh->pool.free[cls] = b;
}

/* A message from sh's own pool with room for len payload bytes, or NULL. */
static inline struct vz_msg *vz__msg_alloc(struct vz__shard *sh, size_t len)
{
	int cls = vz__size_class(sizeof(struct vz_msg) + len);
	struct vz_msg *m;

	if (cls < 0)
		return NULL;
	m = vz__pool_alloc(sh, (unsigned)cls);
	if (!m)
		return NULL;
	m->owner = (uint16_t)sh->id;
	m->cls = (uint8_t)cls;
	m->flags = 0;
	return m;
}

/* Append to its class's run queue unless already there. Owner thread.
 * ready_ns is stored always (a store to a line this writes anyway) rather
 * than behind a test of whether classes are on. */
static inline void vz__make_ready(struct vz__shard *sh, struct vz_actor *a)
{
	struct vz__runq *q;

	if (a->flags & VZ__ACTOR_READY)
		return;
	q = &sh->rq[a->sched_cls];
	a->flags |= VZ__ACTOR_READY;
	a->next_ready = NULL;
	a->ready_ns = sh->now_ns;
	if (q->tail)
		q->tail->next_ready = a;
	else
		q->head = a;
	q->tail = a;
}

/* Runtime messages that take the urgent lane (overtake user mail): the
 * lifecycle requests. Timer expiries and pool completions are mail the
 * actor sees and keep their place in the mailbox. */
static inline bool vz__msg_urgent(const struct vz_msg *m)
{
	return (m->flags & VZ__MSG_SYS) && m->type >= VZ__MSG_STOP && m->type <= VZ__MSG_EXITSIG;
}

/* Append block m to a's mailbox (no urgent test): a cell holding the
 * pointer, or, when no segment can be had, the spill list (never fails:
 * arrivals from other threads were accepted already). */
static inline void vz__mbox_push_block(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m)
{
	struct vz__cell *c;

	if (__builtin_expect(!(a->flags & VZ__ACTOR_SPILL), 1) &&
	    __builtin_expect((c = vz__mbox_reserve(&sh->segs, &a->mbox, 1)) != NULL, 1)) {
		c->u.msg = m;
		c->kind = VZ__CELL_BLOCK;
		vz__mbox_commit(&a->mbox, c, 1);
		return;
	}
	a->flags |= VZ__ACTOR_SPILL;
	vz__list_push(&a->spill, m);
}

/* Put m in a's mailbox, or in its urgent lane, and make a ready. */
static inline void vz__mbox_push(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m)
{
	if (__builtin_expect(vz__msg_urgent(m), 0)) {
		atomic_store_explicit(&m->node.next, NULL, memory_order_relaxed);
		if (a->urg_tail)
			vz__msg_set_next(a->urg_tail, m);
		else
			a->urg_head = m;
		a->urg_tail = m;
	} else {
		vz__mbox_push_block(sh, a, m);
	}
	vz__make_ready(sh, a);
}

/* Has a mail waiting (cells, spill or urgent lane)? */
static inline bool vz__actor_has_mail(const struct vz_actor *a)
{
	return !vz__mbox_empty(&a->mbox) || a->urg_head || (a->flags & VZ__ACTOR_SPILL);
}

/* Any ready actor on sh? Owner thread. */
static inline bool vz__any_ready(const struct vz__shard *sh)
{
	for (unsigned c = 0; c < sh->sched.nclasses; c++)
		if (sh->rq[c].head)
			return true;
	return false;
}

void vz__msg_release_slow(struct vz__shard *sh, struct vz_msg *m);

/* Give a message's memory back: own pool directly, anything else through
 * vz__msg_release_slow() (foreign return list or the owner's return path).
 * Owner thread of sh. */
static inline void vz__msg_release(struct vz__shard *sh, struct vz_msg *m)
{
	if (__builtin_expect(m->owner == sh->id, 1))
		vz__pool_free(sh, m, m->cls);
	else
		vz__msg_release_slow(sh, m);
}

int vz__outbox_admit_slow(struct vz__shard *sh, unsigned dest);

/* May shard sh queue one more user message for shard dest? 0, or VZ_EFULL
 * (counted in outbox_full) when cfg.outbox_limit user messages already
 * wait for that ring even after a flush. Only user sends ask: runtime
 * messages (stop requests) and blocks going home are never refused, so the
 * stop protocol and the return path cannot be blocked by the bound. Owner
 * thread of sh. */
static inline int vz__outbox_admit(struct vz__shard *sh, unsigned dest)
{
	if (__builtin_expect(sh->out[dest].nmsgs < sh->rt->cfg.outbox_limit, 1))
		return 0;
	return vz__outbox_admit_slow(sh, dest);
}

/* ---- functions shared between the core's files ---------------------- */

/* msg_pool.c */
int vz__pool_init(struct vz__pool *p);
void vz__pool_fini(struct vz__pool *p);
int vz__fpool_init(struct vz__fpool_class *fc, unsigned cls);
void vz__fpool_fini(struct vz__fpool_class *fc);
struct vz_msg *vz__fpool_alloc(vz_runtime *rt, struct vz__shard *target, size_t len);
void vz__fpool_give_back(struct vz__shard *sh);			/* push fpool_returns home */
void vz__fpool_put(struct vz__shard *target, struct vz_msg *m); /* unused block back */

/* actor.c */
int vz__actor_spawn(struct vz__shard *sh, const vz_actor_spec *spec, const void *arg, vz_ref *out);
void vz__actor_stop_now(struct vz__shard *sh, struct vz_actor *a, int reason);
/* life.c: end a live actor of sh as vz_fail() does (exit reason FAILED,
 * code, text); from sh's thread, inside the actor's receive or between
 * turns (the simulation's crash fault). */
void vz__actor_fail(struct vz__shard *sh, struct vz_actor *a, int32_t code, const char *text);
/* port.c: is spec one of the runtime's own actors (a port's proxy)? */
bool vz__runtime_own_actor(const vz_actor_spec *spec);
int vz__actor_table_init(struct vz__shard *sh);
void vz__actor_table_fini(struct vz__shard *sh);
int vz__bounded_admit(struct vz__shard *target, vz_ref to);
void vz__stop_all_actors(struct vz__shard *sh);
void vz__actor_reap(struct vz__shard *sh, struct vz_actor *a);

/* mailbox.c: a (no longer live) leaves its queued mail as dead letters */
void vz__mbox_dead_letter_all(struct vz__shard *sh, struct vz_actor *a, int reason);

/* deliver.c */
void vz__deliver_local(struct vz__shard *sh, struct vz_msg *m);
void vz__dead_letter(struct vz__shard *sh, struct vz_msg *m, int reason);
void vz__undo_admit(struct vz__shard *sh, struct vz_msg *m);
void vz__run_ready(struct vz__shard *sh, unsigned *handled);
/* Set up sh->sched from the runtime's config (shard create). */
void vz__sched_init(struct vz__shard *sh);

/* xshard/ (rings.c, outbox.c, drain.c, wake.c, inbox_drain.c) */
int vz__rings_create(vz_runtime *rt);
void vz__rings_destroy(vz_runtime *rt);
void vz__outbox_push(struct vz__shard *sh, unsigned dest, struct vz_msg *m, bool is_return);
unsigned vz__flush_outboxes(struct vz__shard *sh);
unsigned vz__flush_one(struct vz__shard *sh, unsigned dest);
unsigned vz__drain_rings(struct vz__shard *sh, bool all);
unsigned vz__drain_inbox(struct vz__shard *sh, unsigned budget);
bool vz__has_incoming(struct vz__shard *sh);
void vz__rings_unwatch(struct vz__shard *sh);
void vz__rings_cool(struct vz__shard *sh);
bool vz__outboxes_empty(const struct vz__shard *sh);
int vz__wake(struct vz__shard *from, struct vz__shard *target);

/* send.c */
int vz__post_sys(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len);
/* Fault builds: stall a foreign poster until a stop has begun (send.c). */
void vz__stall_until_stopping(vz_runtime *rt);
int vz__send_from(struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		  const void *payload, size_t len);
/* vz__send_from() with a correlation id (m->corr). */
int vz__send_corr(struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		  uint32_t corr, const void *payload, size_t len);
/* A post from any thread with a sender, flags and correlation (ports,
 * spawn requests): from a shard thread as vz__send_corr(), else through
 * the target shard's inbox. Same errors as vz_post(). */
int vz__post_full(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		  uint32_t corr, const void *payload, size_t len);

/* life.c: monitors, links, asks, exit reasons (runtime/core/life.c) */
struct vz__life;
/* The actor ends (on its shard, after on_stop, no longer live): tell its
 * watchers and links, free a->life. reason is the stop's dead-letter code
 * (VZ_ESTOPPED: the runtime stops). */
void vz__life_end(struct vz__shard *sh, struct vz_actor *a, int reason);
/* init of a failed with rc: as vz__life_end(), with an init-failed exit. */
void vz__life_init_failed(struct vz__shard *sh, struct vz_actor *a, int rc);
/* A self-stop (vz_stop of its own reference): a normal exit. */
void vz__life_stop_self(struct vz_actor *a);
/* Runtime messages of life.c for a live actor (dispatch): true when the
 * message was consumed (released or re-queued), false to run receive. */
bool vz__life_filter(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m);
/* A runtime message of life.c or spawn_remote.c that cannot be delivered
 * (target gone, shard stopping): answer it (DOWN / EXIT "no such actor",
 * a failed spawn) and release it. */
void vz__life_dead(struct vz__shard *sh, struct vz_msg *m, int reason);
/* spawn_remote.c: a message addressed to shard sh itself
 * (vz__shard_ref()); a spawn request that will not run (answered with rc,
 * released). */
void vz__shard_msg(struct vz__shard *sh, struct vz_msg *m);
void vz__spawn_fail(struct vz__shard *sh, struct vz_msg *m, int rc);
/* Send a spawn request for `shard` whose VZ_MSG_SPAWNED goes to reply_to,
 * arg copied (any thread; vz__post_full()'s errors); and the argument
 * checks of vz_spawn_on() (VZ_EINVAL, VZ_ENOSHARD, VZ_ETOOBIG). */
int vz__spawn_request(vz_runtime *rt, vz_ref reply_to, unsigned shard, const vz_actor_spec *spec,
		      const void *arg, size_t arg_len, uint64_t tag);
int vz__spawn_check(const vz_runtime *rt, unsigned shard, const vz_actor_spec *spec,
		    const void *arg, size_t arg_len);

/* The reference that names shard `shard` itself, never an actor:
 * generation 0 (never used by an actor) and the last slot. */
static inline vz_ref vz__shard_ref(unsigned shard)
{
	return vz__make_ref(shard, (1u << VZ__SLOT_BITS) - 1, 0);
}

/* send.c: a post from a non-shard thread with a sender (the cluster's
 * transport delivering a message from another node). */
int vz__post_from(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, const void *payload,
		  size_t len);

/* runtime/cluster/cluster.c */
/* A send to a remote reference (shard field VZ__REMOTE_SHARD, cluster.h):
 * 1 when rt has no cluster (the caller goes on as for any reference),
 * else 0 or a VZ_E* code. sh: the calling shard, NULL for other threads. */
int vz__remote_send(vz_runtime *rt, struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type,
		    const void *payload, size_t len);
/* An actor with VZ__ACTOR_NAMED stopped: drop its names. Owner thread. */
void vz__cluster_actor_stopped(struct vz__shard *sh, vz_ref actor);
/* vz_runtime_destroy(): destroy a cluster the caller left attached. */
void vz__cluster_runtime_gone(vz_runtime *rt);

/* shard.c */
int vz__shard_create(vz_runtime *rt, unsigned id, int cpu, bool embedded, struct vz__shard **out);
void vz__shard_destroy(struct vz__shard *sh);
int vz__shard_start_io(struct vz__shard *sh);
void *vz__shard_thread_main(void *arg);
/* One loop turn; returns the work done (messages moved or handled). */
unsigned vz__shard_turn(struct vz__shard *sh);
/* Block up to timeout_ns (< 0 = until the next timer or a wake) using the
 * sleep protocol. */
void vz__shard_sleep(struct vz__shard *sh, int64_t timeout_ns);
uint64_t vz__clock_ns(void);
/* Keep expiry-message blocks aside for when the pool cannot grow. */
void vz__timer_reserve_fill(struct vz__shard *sh, bool may_grow);

/* runtime/aio/fdtab.c: the actor I/O layer's hooks into the core */
int vz__aio_create(struct vz__shard *sh);
/* Before the backend is destroyed: completions its destroy still runs
 * touch nothing (the timer table and pools may be gone already). */
void vz__aio_quiesce(struct vz__shard *sh);
/* After the backend is destroyed: frees the tables, closes leftover fds. */
void vz__aio_destroy(struct vz__shard *sh);
/* Per turn: submit what waits, reap completions when operations are in
 * flight. Returns the completions handled. */
unsigned vz__aio_turn(struct vz__shard *sh);
/* Submissions waiting for the next turn? */
bool vz__aio_has_work(const struct vz__shard *sh);
/* Actor a stopped (LIVE already cleared): close its fds, cancel its ops,
 * give back its kept buffers. */
void vz__aio_actor_stopped(struct vz__shard *sh, struct vz_actor *a);
/* A VZ_MSG_IO message is released: after its receive call, or dropped
 * (dead letter; counted in io_events_dropped). */
void vz__aio_msg_done(struct vz__shard *sh, struct vz_msg *m, bool dropped);
/* A timer fired: true when it was one of the I/O layer's (handled). */
bool vz__aio_timer(struct vz__shard *sh, struct vz__timer_owner *o, const vz_timer_event *ev);

/* runtime.c */
/* vz_runtime_create() for a simulated runtime (sim != NULL, runtime/sim):
 * every shard embedded, no backend probe, no worker pool. */
int vz__runtime_create(const vz_config *cfg, struct vz_sim *sim, vz_runtime **out);
struct vz__pool_set *vz__runtime_pools(vz_runtime *rt);
const struct vz__topology *vz__runtime_topology(const vz_runtime *rt);
int vz__runtime_shard_cpu(const vz_runtime *rt, unsigned shard);

/* registry.c: runtime messages and the process's live runtimes */
/* One message through cfg->log (stderr "veloz: text" when NULL). */
void vz__log(const vz_config *cfg, vz_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Enter rt (its shard_cpus filled) in the list of live runtimes, warning
 * through rt's log hook when its shard CPUs overlap a live runtime's. */
void vz__live_add(vz_runtime *rt);
/* Leave the list (no-op when not in it). */
void vz__live_remove(vz_runtime *rt);

#endif
