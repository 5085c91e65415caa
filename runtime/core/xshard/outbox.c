// SPDX-License-Identifier: MIT
/*
 * Outgoing cross-shard traffic: each shard's outbox per destination (a FIFO
 * of messages waiting for ring room, plus a batch of blocks going home),
 * publishing it into the destination's ring, the doorbell's ring and the
 * wake-up that follows, and the bound that refuses a send once too many
 * wait (cfg.outbox_limit). See rings.c for the whole picture.
 */
#include <string.h>

#include "core/core.h"
#include "core/xshard/xshard.h"
#include "util/fault.h"

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
