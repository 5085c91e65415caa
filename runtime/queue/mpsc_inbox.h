/* SPDX-License-Identifier: MIT */
/*
 * Intrusive multi-producer single-consumer queue: the inbox through which
 * threads that are not shards (and anything else without a ring of its own)
 * hand messages to a shard. Dmitry Vyukov's non-intrusive-node algorithm:
 * a producer links its node with one atomic exchange of the tail and one
 * store into its predecessor, so push is wait-free; the consumer walks the
 * `next` pointers from its private head, keeping one node (a real one or
 * the queue's own stub) in the list as the anchor.
 *
 * Between a producer's exchange and its store into prev->next the list is
 * "half-linked": the new node is the tail but cannot be reached from head
 * yet. The consumer treats that as "not yet" - vz__mpsc_pop() returns NULL
 * and the caller tries again later - rather than spinning on the producer
 * (who may have been preempted) or skipping the node. vz__mpsc_empty()
 * reports such a queue as non-empty, so a consumer about to sleep keeps
 * polling instead (see NOTES.md).
 *
 * Nodes are embedded by the caller (the message header's first member).
 * The queue never allocates; a node belongs to the queue from its push
 * until vz__mpsc_pop() returns it, and may be reused or freed right after.
 *
 * Layout: the producers' tail on its own cache line; the consumer's head
 * and the stub on another. The struct is 64-byte aligned (see
 * spsc_ring.h for what that asks of the memory holding it). Caller owns the
 * struct; there is nothing to free, so there is no fini.
 */
#ifndef VZ_MPSC_INBOX_H
#define VZ_MPSC_INBOX_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct vz__mpsc_node {
	_Atomic(struct vz__mpsc_node *) next;
};

struct vz__mpsc {
	/* Producers' line: every push exchanges this. Points at the most
	 * recently pushed node (the stub when everything was taken). */
	alignas(64) _Atomic(struct vz__mpsc_node *) tail;

	/* Consumer's line: head (the next node to hand out, or the stub) is
	 * written only by the consumer thread; it is atomic only so that
	 * vz__mpsc_empty() may read it from any thread (every access is
	 * relaxed: plain loads and stores on the machines we target).
	 * stub.next is also written by the producer whose exchange returned
	 * the stub (the first push into an empty queue). */
	alignas(64) _Atomic(struct vz__mpsc_node *) head;
	struct vz__mpsc_node stub;
};

_Static_assert(offsetof(struct vz__mpsc, head) == 64, "consumer line apart from producers");
_Static_assert(sizeof(struct vz__mpsc) == 128, "two cache lines");

/* Make *q empty. Any thread, before the queue is shared. */
static inline void vz__mpsc_init(struct vz__mpsc *q)
{
	atomic_init(&q->stub.next, NULL);
	atomic_init(&q->tail, &q->stub);
	atomic_init(&q->head, &q->stub);
}

/*
 * First half of a push: make n the tail and return its predecessor. Until
 * vz__mpsc_push_link() runs, n is invisible to the consumer (and so is
 * anything pushed after it). Only vz__mpsc_push() and the tests that
 * reproduce the half-linked state call the halves separately.
 */
static inline struct vz__mpsc_node *vz__mpsc_push_exchange(struct vz__mpsc *q,
							   struct vz__mpsc_node *n)
{
	/* Relaxed: n is private to this thread until the exchange below, and
	 * the exchange's release half publishes this store. */
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	/* acq_rel. Release: the next producer, whose exchange returns n,
	 * stores into n->next; our NULL store above must happen before that
	 * store or it could erase the link (relaxed rejected for that). Acquire:
	 * the mirror image - our store into prev->next in
	 * vz__mpsc_push_link() must come after prev's owner initialised
	 * prev->next to NULL. Pairs with the same exchange in the other
	 * producers (and in the consumer's stub re-insertion in
	 * vz__mpsc_pop()). Not seq_cst: the sleep protocol adds its own
	 * fence after the whole push. */
	return atomic_exchange_explicit(&q->tail, n, memory_order_acq_rel);
}

/* Second half of a push: link n behind prev (the value vz__mpsc_push_exchange()
 * returned), making it reachable by the consumer. */
static inline void vz__mpsc_push_link(struct vz__mpsc_node *prev, struct vz__mpsc_node *n)
{
	/* Release: publishes n (its next == NULL and the message around it)
	 * to the consumer. Pairs with the acquire loads of ->next in
	 * vz__mpsc_pop(). Relaxed was rejected: the consumer could reach n
	 * and read its payload before the payload's writes are visible. */
	atomic_store_explicit(&prev->next, n, memory_order_release);
}

/*
 * Any thread. Append n (not currently in any queue). Wait-free: one
 * exchange and one store. Returns true when the queue looked empty just
 * before (the exchange returned the stub): a hint for wake-up decisions,
 * not a guarantee - correctness must come from the sleep protocol.
 */
static inline bool vz__mpsc_push(struct vz__mpsc *q, struct vz__mpsc_node *n)
{
	struct vz__mpsc_node *prev = vz__mpsc_push_exchange(q, n);

	vz__mpsc_push_link(prev, n);
	return prev == &q->stub;
}

/*
 * Consumer only. Take the oldest node, or return NULL when the queue is
 * empty or when the oldest node's successor is half-linked (a producer has
 * exchanged the tail but not yet stored prev->next): "not yet", call again
 * later; vz__mpsc_empty() is false in that case. Never blocks, never spins.
 */
static inline struct vz__mpsc_node *vz__mpsc_pop(struct vz__mpsc *q)
{
	/* Relaxed: head is written only by this thread. */
	struct vz__mpsc_node *head = atomic_load_explicit(&q->head, memory_order_relaxed);
	/* Acquire, here and on every ->next load below: pairs with the
	 * release store in vz__mpsc_push_link(), so the node we step to (and
	 * its message) is fully visible. Relaxed was rejected for the reason
	 * given there. */
	struct vz__mpsc_node *next = atomic_load_explicit(&head->next, memory_order_acquire);
	struct vz__mpsc_node *tail;

	if (head == &q->stub) {
		/* The stub is an anchor, never returned: step over it. */
		if (next == NULL)
			return NULL; /* empty, or first push still half-linked */
		/* Relaxed: see the struct; vz__mpsc_empty() from the
		 * consumer reads its own store, and from other threads
		 * only a hint is promised. */
		atomic_store_explicit(&q->head, next, memory_order_relaxed);
		head = next;
		next = atomic_load_explicit(&head->next, memory_order_acquire);
	}
	if (next != NULL) {
		/* head has a successor: head is no longer the tail, so no
		 * producer will write head->next again and it can go. */
		atomic_store_explicit(&q->head, next, memory_order_relaxed);
		return head;
	}

	/* head is the last reachable node. If it is not the tail, a producer
	 * has exchanged past it but not linked yet: not yet.
	 * Relaxed: only the pointer value is compared, never dereferenced,
	 * and a stale value is harmless (if tail has moved on, the exchange
	 * below returns that producer's node instead of head and the load of
	 * head->next afterwards sees NULL until it links: "not yet" again). */
	tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	if (tail != head)
		return NULL;

	/* head is the only node. To hand it out we need an anchor behind it:
	 * re-insert the stub, exactly as a producer would. */
	vz__mpsc_push_link(vz__mpsc_push_exchange(q, &q->stub), &q->stub);
	next = atomic_load_explicit(&head->next, memory_order_acquire);
	if (next != NULL) {
		atomic_store_explicit(&q->head, next, memory_order_relaxed);
		return head;
	}
	/* A producer exchanged between our tail check and our exchange and
	 * has not linked behind head yet: not yet. */
	return NULL;
}

/*
 * True when every node whose push has done its exchange has been returned
 * by vz__mpsc_pop(). A half-linked push counts as not empty, and so does a
 * node the consumer could not hand out yet because a later push is
 * half-linked behind it.
 *
 * Called by the consumer, the answer is exact at the moment tail is read.
 * Called by any other thread it is a hint: it may be stale when used and,
 * while a pop runs on the consumer, may briefly disagree with the list.
 *
 * Both tests are needed. tail == stub alone is not enough: when a pop
 * re-inserts the stub and then finds a later push half-linked, it returns
 * NULL with a node still at head and tail == stub; that producer may
 * already have done its wake check, so a consumer trusting "tail == stub"
 * could go to sleep on a node that is about to become reachable.
 * With head == stub as well, every node ahead of the stub in the list was
 * handed out, and tail == stub says no exchange happened after it.
 *
 * Sleep protocol: the consumer stores its sleeping flag, issues a seq_cst
 * fence, then calls this; a producer pushes (exchange and link), issues a
 * seq_cst fence, then reads the flag. Either the producer's fence comes
 * first in the single total order of seq_cst fences, and then the tail
 * load here sees that exchange or a later one (not empty, or the node was
 * already popped), or the consumer's comes first and the producer sees the
 * flag and wakes it. See NOTES.md.
 */
static inline bool vz__mpsc_empty(const struct vz__mpsc *q)
{
	/* Relaxed: the consumer reads its own store. (Another thread gets a
	 * hint; acquire would not make it exact.) */
	const struct vz__mpsc_node *head = atomic_load_explicit(&q->head, memory_order_relaxed);
	/* Acquire: pairs with the release half of the exchange in
	 * vz__mpsc_push_exchange(). Only compared, never dereferenced here,
	 * so relaxed would be enough for this function and for the sleep
	 * protocol (whose seq_cst fence precedes the call). Acquire is kept so
	 * a consumer that acts on "not empty" by popping sees the pushed
	 * node's initialisation without relying on the caller's fences; it
	 * costs nothing on x86. */
	const struct vz__mpsc_node *tail = atomic_load_explicit(&q->tail, memory_order_acquire);

	return head == &q->stub && tail == &q->stub;
}

#endif
