/* SPDX-License-Identifier: MIT */
/*
 * A message as the runtime holds it: the block header (struct vz_msg), its
 * flags and the runtime's own message types, the owner-only lists blocks
 * are chained in, the size classes, and the two pools blocks come from
 * (their layout; taking and giving back a block is msg_pool.h).
 */
#ifndef VZ_CORE_MSG_H
#define VZ_CORE_MSG_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz.h>

#include "queue/mpsc_inbox.h"
#include "util/cacheline.h"

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

/* Runtime messages that take the urgent lane (overtake user mail): the
 * lifecycle requests. Timer expiries and pool completions are mail the
 * actor sees and keep their place in the mailbox. */
static inline bool vz__msg_urgent(const struct vz_msg *m)
{
	return (m->flags & VZ__MSG_SYS) && m->type >= VZ__MSG_STOP && m->type <= VZ__MSG_EXITSIG;
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

#endif
