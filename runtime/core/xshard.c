// SPDX-License-Identifier: MIT
/*
 * Cross-shard traffic: the ring matrix, outgoing batches with their
 * overflow, the doorbell that spares a shard from polling N-1 empty rings,
 * the return path that brings message memory home, the foreign inbox, and
 * the sender's half of the wake-up protocol.
 *
 * One SPSC ring per ordered pair (src -> dst) carries both messages for
 * dst's actors and blocks of dst's pools that src has finished with
 * (flag VZ__MSG_RETURNING): one mechanism, one doorbell, and a block always
 * goes home to the shard that allocated it, which frees it into its own
 * pool (no allocator lock anywhere).
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
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "util/fault.h"

#define DRAIN_CHUNK    64u  /* pointers popped per ring access */
#define DRAIN_PER_RING 256u /* per ring per turn, then the next ring */

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
			d->in[src] = aligned_alloc(VZ__LINE, sizeof(struct vz__spsc));
			if (!d->in[src])
				return VZ_ENOMEM;
			rc = vz__spsc_init(d->in[src], entries, node);
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
				vz__spsc_fini(d->in[src]);
				free(d->in[src]);
			}
		}
		free(d->in);
		d->in = NULL;
	}
}

/*
 * Sender's half of the wake-up protocol, after publishing to `target`.
 * Pairs with vz__shard_sleep(): it stores sleeping = 1, issues a full
 * barrier, then re-checks every source (the doorbell and the inbox's tail
 * among them). The barriers are the runtime's sleep fence
 * (util/membarrier.h), read from target->sleep_fence by both ends:
 *
 * - fence (symmetric): the caller's publish ends in a seq_cst
 *   read-modify-write: the doorbell's fetch_or after a ring publish
 *   (vz__flush_one()), or the inbox push's exchange (vz__mpsc_push_sc(),
 *   foreign posts); no separate fence. Our load of `sleeping` is seq_cst.
 *   The sleeper's is a seq_cst fence (vz__full_fence_on()). In the single
 *   order of seq_cst operations either our RMW comes first (the sleeper's
 *   re-check after its fence sees it and does not block) or its fence does
 *   (our load here sees its 1 and we wake it).
 * - membarrier (asymmetric): the caller publishes with release (doorbell)
 *   or acq_rel (inbox) RMWs, what the queues need for themselves; here a
 *   compiler barrier (vz__light_fence()) and a relaxed load. The sleeper's
 *   membarrier() makes this thread execute a full barrier somewhere in its
 *   program: before our publish, and our load comes after it and after
 *   the sleeper's store, so it reads 1; after our publish, and the
 *   sleeper's re-check, which follows the membarrier() call, sees it.
 *   Relaxed is enough for the load: only its value is used (the exchange
 *   below acquires what the sleeper published); the compiler barrier keeps
 *   it after the publish, which is all the CPU ordering the argument asks
 *   of this side.
 *
 * The exchange (seq_cst in both modes, it is rare) makes exactly one of
 * several concurrent senders pay for the syscall.
 *
 * That sender now owns the wake-up: everyone else reads 0 and leaves. So a
 * failed wake must not just be dropped (the target would sleep with work
 * queued, and every later sender would see 0): retry, from the second try
 * through the eventfd (the path a foreign thread uses; it does not depend
 * on our ring's submission queue); if it still fails, store sleeping = 1
 * back so the next sender, or the caller's own retry, tries again, and
 * return VZ_EIO. Each failure is counted in the target's wake_failures.
 * Returns 0 when the target was woken or did not need it.
 */
#define WAKE_TRIES 4

int vz__wake(struct vz__shard *from, struct vz__shard *target)
{
	struct vz__io *self = from ? from->io : NULL;

	if (target->sleep_fence == VZ__SLEEP_FENCE_MEMBARRIER) {
		vz__light_fence();
		if (!atomic_load_explicit(&target->sleeping, memory_order_relaxed))
			return 0;
	} else if (!atomic_load_explicit(&target->sleeping, memory_order_seq_cst)) {
		return 0;
	}
	if (!atomic_exchange_explicit(&target->sleeping, 0, memory_order_seq_cst))
		return 0;
	/* target->io was written by the target before it stored sleeping = 1;
	 * our exchange read that store, so the read of io is ordered after
	 * it. */
	for (unsigned i = 0; i < WAKE_TRIES; i++) {
		if (vz__io_wake(self, target->io) == 0) {
			if (from)
				VZ__STAT_ADD(from, wakeups_sent, 1);
			return 0;
		}
		/* Relaxed: a statistic (any thread; see core.h). */
		atomic_fetch_add_explicit(&target->wake_failures, 1, memory_order_relaxed);
		self = NULL;
	}
	/* seq_cst, like every other write of the flag: a later sender's
	 * seq_cst load after its own publish either reads this 1 and wakes,
	 * or reads a 0 the target stored on its own way out of a wait (it is
	 * awake and re-checks its sources then). If the target is in fact
	 * awake already, the 1 costs at most one spare wake-up, which its
	 * next wait absorbs, as after any race on this flag. */
	atomic_store_explicit(&target->sleeping, 1, memory_order_seq_cst);
	return VZ_EIO;
}

void vz__outbox_push(struct vz__shard *sh, unsigned dest, struct vz_msg *m, bool is_return)
{
	struct vz__outbox *ob = &sh->out[dest];

	sh->out_dirty[dest / 64] |= (uint64_t)1 << (dest % 64);
	if (is_return && ob->nret < VZ__RET_BATCH) {
		ob->ret[ob->nret++] = m;
		if (ob->nret == VZ__RET_BATCH)
			vz__flush_one(sh, dest);
		return;
	}
	if (is_return) {
		m->flags |= VZ__MSG_RETURNING; /* overflow: linked like a message */
	} else {
		ob->has_msgs = true;
		if (!(m->flags & VZ__MSG_SYS))
			ob->nmsgs++;
	}
	vz__list_push(&ob->q, m);
	if (ob->q.len >= sh->rt->cfg.send_batch)
		vz__flush_one(sh, dest);
}

/* Publish as much of the outbox for dest as its ring takes. Returns the
 * number published. */
unsigned vz__flush_one(struct vz__shard *sh, unsigned dest)
{
	struct vz__outbox *ob = &sh->out[dest];
	struct vz__shard *d = sh->rt->shards[dest];
	struct vz__spsc *ring = d->in[sh->id];
	unsigned total = 0;

	while (ob->q.head) {
		void *batch[DRAIN_CHUNK];
		uint8_t users[DRAIN_CHUNK]; /* user messages in batch[0..i] */
		struct vz_msg *m = ob->q.head;
		uint32_t n = 0, k, nuser = 0;

		/* Read every link (and flag) before publishing: once a
		 * message is in the ring, the receiver owns it and reuses its
		 * link field. */
		while (m && n < DRAIN_CHUNK) {
			nuser += !(m->flags & (VZ__MSG_SYS | VZ__MSG_RETURNING));
			users[n] = (uint8_t)nuser;
			batch[n++] = m;
			m = vz__msg_next(m);
		}
		k = VZ_FAULT(VZ_FAULT_RING_FULL) ? 0 : vz__spsc_push_batch(ring, batch, n);
		if (k) {
			ob->nmsgs -= users[k - 1];
			/* m is the first message after the batch (or NULL);
			 * batch[k] onwards are still ours, links intact. */
			ob->q.head = k == n ? m : batch[k];
			if (!ob->q.head)
				ob->q.tail = NULL;
			ob->q.len -= k;
			ob->parked = ob->parked > k ? ob->parked - k : 0;
		}
		total += k;
		if (k < n) {
			VZ__STAT_ADD(sh, ring_full, 1);
			/* Count each message once, the first time it has to
			 * wait, however often the retry finds the ring full. */
			VZ__STAT_ADD(sh, overflow_queued, ob->q.len - ob->parked);
			ob->parked = ob->q.len;
			break;
		}
	}
	/* Then the blocks going home (after the messages: the target
	 * handles its messages first and frees these afterwards). */
	if (!ob->q.head && ob->nret) {
		void *tagged[VZ__RET_BATCH];
		uint32_t k;

		for (uint32_t i = 0; i < ob->nret; i++)
			tagged[i] = (void *)((uintptr_t)ob->ret[i] | VZ__RING_RETURN);
		k = VZ_FAULT(VZ_FAULT_RING_FULL) ? 0 : vz__spsc_push_batch(ring, tagged, ob->nret);
		if (k < ob->nret) {
			VZ__STAT_ADD(sh, ring_full, 1);
			memmove(ob->ret, ob->ret + k, (ob->nret - k) * sizeof ob->ret[0]);
		}
		ob->nret -= k;
		total += k;
	}
	if (!ob->q.head && !ob->nret)
		ob->stalled = false;
	/* Also when nothing fit: the ring may be full of returns the target
	 * was never woken for, and it must drain them to make room. Once per
	 * stall is enough: the target, woken with its doorbell set, drains
	 * the whole ring, and our next publish that fits rings and wakes
	 * again; repeating it every turn would only compete for the CPU.
	 * And when a wake-up failed last time: retried every turn until it
	 * goes through (see below). */
	if (total || ((ob->q.head || ob->nret) && !ob->stalled) || ob->wake_owed) {
		/* Left-overs (even returns only) keep this shard from sleeping
		 * until the target drains, so the target must be awake. */
		bool wake = ob->has_msgs || ob->q.head || ob->nret || ob->wake_owed;

		ob->stalled = total == 0;

		if (!ob->q.head)
			ob->has_msgs = false;
		/* Release: publishes the ring's tail store above to whoever
		 * clears the bit (pairs with the exchange in
		 * vz__drain_rings()); relaxed was rejected for that. Under
		 * the symmetric sleep fence it is seq_cst as well, the
		 * sender's "publish, full fence" of the wake-up protocol;
		 * under membarrier the sleeper's membarrier() supplies that
		 * (see vz__wake()). An RMW in both: concurrent senders set
		 * their bits in one word. */
		if (d->sleep_fence == VZ__SLEEP_FENCE_MEMBARRIER)
			atomic_fetch_or_explicit(&d->bell[sh->id / 64],
						 (uint64_t)1 << (sh->id % 64),
						 memory_order_release);
		else
			atomic_fetch_or_explicit(&d->bell[sh->id / 64],
						 (uint64_t)1 << (sh->id % 64),
						 memory_order_seq_cst);
		/* Only returns, all published: memory can wait until the
		 * owner wakes for another reason; no wake-up spent on it. */
		/* A wake that failed even after vz__wake()'s retries: what
		 * we published may be the target's only work, so keep the
		 * destination dirty and try again next turn (this shard does
		 * not sleep meanwhile: has_work() sees a dirty outbox). */
		if (wake)
			ob->wake_owed = vz__wake(sh, d) < 0;
	}
	if (!ob->q.head && !ob->nret && !ob->wake_owed)
		sh->out_dirty[dest / 64] &= ~((uint64_t)1 << (dest % 64));
	return total;
}

/* vz__outbox_admit() found the bound reached: publish what the ring takes
 * now, and refuse only if that did not make room. Nothing else changes on
 * refusal (the flush only moves messages already accepted). */
int vz__outbox_admit_slow(struct vz__shard *sh, unsigned dest)
{
	vz__flush_one(sh, dest);
	if (sh->out[dest].nmsgs < sh->rt->cfg.outbox_limit)
		return 0;
	VZ__STAT_ADD(sh, outbox_full, 1);
	return VZ_EFULL;
}

unsigned vz__flush_outboxes(struct vz__shard *sh)
{
	unsigned total = 0;

	for (unsigned w = 0; w < (sh->rt->nshards + 63) / 64; w++) {
		uint64_t bits = sh->out_dirty[w];

		while (bits) {
			unsigned dest = w * 64 + (unsigned)__builtin_ctzll(bits);

			bits &= bits - 1;
			total += vz__flush_one(sh, dest);
		}
	}
	return total;
}

bool vz__outboxes_empty(const struct vz__shard *sh)
{
	for (unsigned w = 0; w < (sh->rt->nshards + 63) / 64; w++)
		if (sh->out_dirty[w])
			return false;
	return true;
}

static void receive_one(struct vz__shard *sh, unsigned src, struct vz_msg *m)
{
	if ((uintptr_t)m & VZ__RING_RETURN) {
		m = (struct vz_msg *)((uintptr_t)m & ~VZ__RING_RETURN);
		vz__pool_free(sh, m, m->cls);
		return;
	}
	if (m->flags & VZ__MSG_RETURNING) {
		/* one of ours, back home */
		m->flags &= (uint8_t)~VZ__MSG_RETURNING;
		vz__pool_free(sh, m, m->cls);
		return;
	}
	if (!(m->flags & VZ__MSG_UNCOUNTED)) {
		VZ__STAT_ADD(sh, received_remote, 1);
		vz__obs_add(&sh->obs.o->received_from[src], 1);
	}
	vz__deliver_local(sh, m);
}

/* Drain one ring up to `limit` items. Returns the number taken; sets the
 * source's pending bit when it stopped with items left. */
static unsigned drain_ring(struct vz__shard *sh, unsigned src, unsigned limit)
{
	struct vz__spsc *ring = sh->in[src];
	unsigned total = 0;

	while (total < limit) {
		void *items[DRAIN_CHUNK];
		uint32_t n;

		/* The next slot's line is known before the producer's tail is:
		 * start fetching it now, so the two misses overlap instead of
		 * following each other (head is our own index: relaxed). */
		__builtin_prefetch(
		    &ring->slots[atomic_load_explicit(&ring->head, memory_order_relaxed) &
				 ring->mask]);
		n = vz__spsc_pop_batch(ring, items, DRAIN_CHUNK);
		for (uint32_t i = 0; i < n; i++) {
			/* likewise the next message while this one is handled */
			if (i + 1 < n)
				__builtin_prefetch(
				    (void *)((uintptr_t)items[i + 1] & ~VZ__RING_RETURN));
			receive_one(sh, src, items[i]);
		}
		total += n;
		if (n < DRAIN_CHUNK)
			return total;
	}
	sh->pending_rings[src / 64] |= (uint64_t)1 << (src % 64);
	return total;
}

/*
 * Drain incoming rings whose doorbell rang (or that were left non-empty last
 * time), up to DRAIN_PER_RING each; `all` drains every ring completely
 * (stop). An idle turn reads one word per 64 sources: no O(N) scan.
 */
unsigned vz__drain_rings(struct vz__shard *sh, bool all)
{
	unsigned nwords = (sh->rt->nshards + 63) / 64;
	unsigned total = 0;

	for (unsigned w = 0; w < nwords; w++) {
		uint64_t bits = sh->pending_rings[w];

		/* Relaxed peek first so an idle turn does not write the
		 * shared line. */
		if (atomic_load_explicit(&sh->bell[w], memory_order_relaxed))
			/* Acquire: pairs with the producers' fetch_or
			 * (seq_cst, so release) after their ring publish;
			 * the bit is cleared before the ring is read, so a
			 * publish after our read rings it again. */
			bits |= atomic_exchange_explicit(&sh->bell[w], 0, memory_order_acquire);
		if (all)
			bits = ~(uint64_t)0;
		sh->pending_rings[w] = 0;
		while (bits) {
			unsigned src = w * 64 + (unsigned)__builtin_ctzll(bits);

			bits &= bits - 1;
			if (src >= sh->rt->nshards || src == sh->id)
				continue;
			total += drain_ring(sh, src, all ? UINT32_MAX : DRAIN_PER_RING);
		}
	}
	return total;
}

unsigned vz__drain_inbox(struct vz__shard *sh, unsigned budget)
{
	unsigned n = 0;

	while (n < budget) {
		struct vz__mpsc_node *node = vz__mpsc_pop(&sh->inbox);

		if (!node)
			break;
		if (!(((struct vz_msg *)node)->flags & VZ__MSG_UNCOUNTED))
			VZ__STAT_ADD(sh, received_foreign, 1);
		vz__deliver_local(sh, (struct vz_msg *)node);
		n++;
	}
	sh->inbox_taken += n; /* for the stop protocol (posts_arrived()) */
	return n;
}

/* Anything waiting for this shard? Used by the sleep protocol's re-check
 * after its full barrier (seq_cst fence or membarrier()): each load here is
 * the reader's half of a publish + barrier pairing (see vz__wake()). */
bool vz__has_incoming(struct vz__shard *sh)
{
	unsigned nwords = (sh->rt->nshards + 63) / 64;

	for (unsigned w = 0; w < nwords; w++)
		if (sh->pending_rings[w] ||
		    atomic_load_explicit(&sh->bell[w], memory_order_seq_cst))
			return true;
	return !vz__mpsc_empty(&sh->inbox);
}
