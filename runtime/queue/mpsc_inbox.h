/* SPDX-License-Identifier: MIT */
/*
 * Intrusive multi-producer single-consumer queue: the inbox through which
 * threads that are not shards (and anything else without a ring of its own)
 * hand messages to a shard. Dmitry Vyukov's intrusive node-based MPSC
 * queue: a producer links its node with one atomic exchange of the tail and
 * one store into its predecessor, so push is wait-free; the consumer walks
 * the `next` pointers from its private head, keeping one node (a real one
 * or the queue's own stub) in the list as the anchor. One change from the
 * original: to hand out the last node the consumer swings the tail back to
 * the stub with a compare-and-swap (as liburcu's wfcqueue does) rather than
 * re-pushing the stub with an exchange, so the stub is never queued behind
 * a half-linked node.
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
#include <stdint.h>

struct vz__mpsc_node {
	_Atomic(struct vz__mpsc_node *) next;
};

struct vz__mpsc {
	/* Producers' line: every push exchanges this. Points at the most
	 * recently pushed node (the stub when everything was taken). */
	alignas(64) _Atomic(struct vz__mpsc_node *) tail;
	/* Not used by the queue: a word for its user to update next to each
	 * push (the runtime's post gate). On the producers' line, which a
	 * push takes exclusive anyway, so it costs no extra line transfer.
	 * Initialised to 0 by vz__mpsc_init(). */
	_Atomic uint64_t user;

	/* Consumer's line: head (the next node to hand out, or the stub) is
	 * written only by the consumer thread; it is atomic only so that
	 * vz__mpsc_empty() may read it from any thread (the consumer's own
	 * accesses are relaxed: plain loads and stores).
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
	atomic_init(&q->user, 0);
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
	 * producers, and with the release compare-and-swap in
	 * vz__mpsc_pop() that makes the stub the tail after setting
	 * stub.next to NULL. Not seq_cst: a push that is half of a
	 * symmetric sleep protocol uses vz__mpsc_push_sc() instead; under
	 * the asymmetric one (the consumer calls membarrier() before its
	 * re-check, util/membarrier.h) this push is enough. */
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
 * Any thread. As vz__mpsc_push(), but the exchange is seq_cst, so the push
 * itself is the "publish, full fence" half of a store-buffer handshake:
 * a seq_cst load after it (the sleeping flag) cannot be satisfied before
 * the push is visible to a consumer that fences before reading the queue.
 * Used by foreign posts; saves a separate fence per push.
 */
static inline bool vz__mpsc_push_sc(struct vz__mpsc *q, struct vz__mpsc_node *n)
{
	struct vz__mpsc_node *prev;

	/* Relaxed: published by the exchange below (as in push_exchange). */
	atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
	/* seq_cst: everything acq_rel gives (see vz__mpsc_push_exchange())
	 * plus a place in the single total order, which the wake-up protocol
	 * needs (pairs with the consumer's seq_cst fence before its re-check). */
	prev = atomic_exchange_explicit(&q->tail, n, memory_order_seq_cst);
	vz__mpsc_push_link(prev, n);
	return prev == &q->stub;
}

/*
 * Consumer only. True when vz__mpsc_pop() would return NULL because
 * nothing has reached the queue yet as far as this thread can see: head
 * is the stub and the stub has no successor. A cheap look for a consumer
 * polling a queue that is usually empty (two loads of its own line, no
 * call): false means "call vz__mpsc_pop()", true means "nothing now".
 * Relaxed loads: nothing is read through them; a push not yet visible,
 * or half-linked, reads as nothing, exactly as vz__mpsc_pop() would
 * report it, and is found by a later look (a consumer about to sleep
 * uses vz__mpsc_empty() instead, which counts a half-linked push).
 */
static inline bool vz__mpsc_idle(struct vz__mpsc *q)
{
	return atomic_load_explicit(&q->head, memory_order_relaxed) == &q->stub &&
	       atomic_load_explicit(&q->stub.next, memory_order_relaxed) == NULL;
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
	struct vz__mpsc_node *expected;

	if (head == &q->stub) {
		/* The stub is an anchor, never returned: step over it. */
		if (next == NULL)
			return NULL; /* empty, or first push still half-linked */
		/* Relaxed: see the struct; nothing is published through
		 * head (vz__mpsc_empty() only compares it). */
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

	/* head is the last reachable node. If a producer has already
	 * exchanged past it (half-linked), not yet: a plain load first, so a
	 * consumer polling a half-linked queue only reads the producers' line
	 * instead of taking it away from them with a failing RMW (measured:
	 * the unconditional compare-and-swap cost about a third of the
	 * throughput of bench/queues.c raw-mpsc).
	 * Relaxed: only compared, never dereferenced; a stale value just
	 * sends us to the CAS, which decides. */
	if (atomic_load_explicit(&q->tail, memory_order_relaxed) != head)
		return NULL;

	/* head is the only node: hand it out and leave the stub as the
	 * anchor with one compare-and-swap of the tail from head to the stub.
	 * The stub is not in the list now (head moved past it), so nobody else
	 * reads or writes stub.next. Relaxed store: published by the
	 * CAS's release. */
	atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
	/* Success: release. The producer whose exchange next returns the
	 * stub will store into stub.next; our NULL store above must happen
	 * before that (pairs with the acquire half of the exchange in
	 * vz__mpsc_push_exchange()); relaxed was rejected for that reason.
	 * Nothing is read through the CAS, so no acquire.
	 * Failure: relaxed. A producer has exchanged past head; what we read
	 * next (head->next) is ordered by its own acquire load.
	 * No ABA: the tail can equal head again only if head were pushed
	 * again, and only this thread hands head out. */
	expected = head;
	if (atomic_compare_exchange_strong_explicit(&q->tail, &expected, &q->stub,
						    memory_order_release, memory_order_relaxed)) {
		atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
		return head;
	}
	/* A producer exchanged past head after our load of the tail. Once
	 * it has linked, head can go; until then: not yet. */
	next = atomic_load_explicit(&head->next, memory_order_acquire);
	if (next != NULL) {
		atomic_store_explicit(&q->head, next, memory_order_relaxed);
		return head;
	}
	return NULL;
}

/*
 * True when every node whose push has done its exchange has been returned
 * by vz__mpsc_pop(). A half-linked push counts as not empty, and so does a
 * node the consumer could not hand out yet because a later push is
 * half-linked behind it.
 *
 * Called by the consumer, the answer is exact at the moment tail is read.
 * Called by any other thread it may be stale by the time it is used.
 *
 * The test is head == stub && tail == stub. The tail becomes the stub
 * only through the consumer's compare-and-swap in vz__mpsc_pop(), which
 * succeeds only while the node it is handing out is the sole node; after
 * it, every exchange moves the tail off the stub again. head == stub is
 * also required so that another thread does not call the queue empty while
 * a pop is between that CAS and its return (the last node not yet handed
 * out), and so the answer does not rest on the pop being written that way.
 *
 * Sleep protocol: the consumer stores its sleeping flag, issues a seq_cst
 * fence, then calls this; a producer pushes with vz__mpsc_push_sc(), whose
 * tail exchange is seq_cst (no separate fence), then reads the flag
 * (seq_cst). Either the producer's exchange comes first in the single total
 * order of seq_cst operations, and then the tail load here (after the
 * consumer's fence) sees that exchange or a later value (not the stub,
 * unless the consumer has since handed that node out), or the consumer's
 * fence comes first and the producer sees the flag and wakes it. See
 * NOTES.md.
 */
static inline bool vz__mpsc_empty(const struct vz__mpsc *q)
{
	/* Acquire (for other threads; the consumer reads its own store):
	 * keeps the tail load below after this load, so head == stub then
	 * tail == stub is a consistent "everything handed out" for them too.
	 * Free on x86. */
	const struct vz__mpsc_node *head = atomic_load_explicit(&q->head, memory_order_acquire);
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
