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
#include "core/xshard/slot.h"
#include "util/copy.h"
#include "util/fault.h"

/*
 * Per-message cost on this path (the sender's side; bench/README.md sums
 * both sides): the slot line (written, then read by the receiver: one
 * transfer); the reads of the ring's `watching` and the target's
 * `sleeping` lines (shared and unchanged while the target is awake and
 * polls this ring: no transfer, no locked instruction). Only when the
 * target does not poll the ring (it is cold, or the sleep fence is the
 * symmetric one): per flush one doorbell fetch_or, a locked RMW on the
 * target's bell line (one transfer there, one back when the target takes
 * the bit). No block crosses for a message of up to VZ__SLOT_INLINE_MAX
 * bytes, so nothing comes back either; and the first such message of a
 * turn from vz_send() takes no block of the sender's pool either
 * (vz__outbox_send_inline() writes it into the slot itself). The rest of
 * a burst is queued as blocks and written into slots back to back at the
 * flush: writing each into its slot as it is sent and publishing at the
 * flush took fewer instructions but measured slower (cross-shard-burst64
 * 41-43 against 57-61 M msg/s).
 */

/* Copy m into slot s: inline when it fits and the block is ours to free,
 * else its pointer. True when the caller is to free m (it was copied). */
static bool slot_fill(struct vz__shard *sh, struct vz__slot *s, struct vz_msg *m)
{
	if (m->len <= VZ__SLOT_INLINE_MAX && m->owner == sh->id &&
	    !(m->flags & (VZ__MSG_RETURNING | VZ__MSG_IOBUF))) {
		struct vz__slot_msg *b = (struct vz__slot_msg *)s->body;

		b->to = m->to;
		b->from = m->from;
		b->type = m->type;
		b->corr = m->corr;
		memcpy(b->data, m->data, m->len);
		s->word = vz__slot_word(VZ__SLOT_INLINE, m->flags, m->len);
		return true;
	}
	memcpy(s->body, &m, sizeof m);
	s->word = vz__slot_word(VZ__SLOT_BLOCK, 0, 0);
	return false;
}

/* Publish m into ring r (a slot reserved there); frees m when copied. */
static void put_msg(struct vz__shard *sh, struct vz__slot_ring *r, struct vz__slot *s,
		    struct vz_msg *m)
{
	bool copied = slot_fill(sh, s, m);

	vz__slot_publish(r, s);
	if (copied)
		vz__pool_free(sh, m, m->cls);
}

/* After a publish to d: ring its doorbell and wake it if it sleeps. A
 * failed wake is owed (retried by the next flush; this shard does not
 * sleep meanwhile: has_work() sees a dirty outbox). */
static void notify(struct vz__shard *sh, unsigned dest, struct vz__shard *d, bool wake)
{
	struct vz__outbox *ob = &sh->out[dest];

	/* A consumer that polls our ring every turn (ring->watching, only
	 * ever 1 under the membarrier sleep fence) needs no doorbell. The
	 * compiler barrier keeps the load after our publish (a release store
	 * does not stop a later load from moving above it); relaxed is
	 * enough on the CPU side: the consumer's membarrier() before its
	 * re-check supplies the full barrier between our publish and this
	 * load (pairing and argument in drain.c's top comment). */
	vz__light_fence();
	if (!atomic_load_explicit(&d->in[sh->id]->watching, memory_order_relaxed))
		vz__bell_ring(sh, d);
	if (wake || ob->wake_owed)
		ob->wake_owed = vz__wake(sh, d) < 0;
	if (ob->wake_owed)
		sh->out_dirty[dest / 64] |= (uint64_t)1 << (dest % 64);
}

/*
 * vz_send()'s cross-shard fast path (send.c): the message goes straight
 * into dest's ring slot, with the effects vz__outbox_push() has for the
 * block send_from() would have built (publish at once as the first message
 * for dest since the last flush, sent_remote and sent_to counted, doorbell
 * and wake-up through notify(), dest dirty until the end-of-turn flush),
 * without taking a block from the pool, filling it, copying it into the
 * slot and freeing it again.
 *
 * The caller has checked everything send_from() checks before it takes a
 * block: the calling thread runs sh, the sender is live, `to` is not null
 * and names shard dest != sh->id of this runtime, the runtime and sh run,
 * dest has no bounded actor (nothing to count), the message is plain
 * (no flags, no correlation) and has a payload when len > 0. Outbox admission needs no check: a
 * clean outbox for dest holds no message, and cfg.outbox_limit is at least 1.
 *
 * Returns 0 when sent, or 1 when this path does not apply and nothing was
 * done: the payload does not fit in a slot (len > VZ__SLOT_INLINE_MAX),
 * something of ours already waits for dest this turn (the message
 * must queue behind it, FIFO), the ring is full, or the ring-full fault
 * point is armed (so that its every check is made by the general path).
 * The caller then takes the general path, which decides from scratch.
 */
int vz__outbox_send_inline(struct vz__shard *sh, unsigned dest, vz_ref from, vz_ref to,
			   uint32_t type, const void *payload, size_t len)
{
	uint64_t bit = (uint64_t)1 << (dest % 64);
	struct vz__shard *d;
	struct vz__slot_ring *r;
	struct vz__slot_msg *b;
	struct vz__slot *s;

	if (len > VZ__SLOT_INLINE_MAX || (sh->out_dirty[dest / 64] & bit) ||
	    VZ_FAULT_ARMED(VZ_FAULT_RING_FULL))
		return 1;
	d = sh->rt->shards[dest];
	r = d->in[sh->id];
	s = vz__slot_reserve(r);
	if (!s)
		return 1;
	b = (struct vz__slot_msg *)s->body;
	b->to = to;
	b->from = from;
	b->type = type;
	b->corr = 0;
	vz__copy_inline(b->data, payload, len);
	s->word = vz__slot_word(VZ__SLOT_INLINE, 0, (unsigned)len);
	vz__slot_publish(r, s);
	sh->out_dirty[dest / 64] |= bit;
	VZ__STAT_ADD(sh, sent_remote, 1);
	vz__obs_add(&sh->obs.o->sent_to[dest], 1);
	notify(sh, dest, d, true);
	return 0;
}

void vz__outbox_push(struct vz__shard *sh, unsigned dest, struct vz_msg *m, bool is_return)
{
	struct vz__outbox *ob = &sh->out[dest];
	uint64_t bit = (uint64_t)1 << (dest % 64);

	/*
	 * Publish at once the first message for this destination since the
	 * last flush (nothing of ours waits for its ring, so FIFO holds) when
	 * its ring has room, and ring and wake at once: a lone message, or
	 * the first of a burst, is not held back until the end of the turn.
	 * The rest of a burst waits in the outbox for the end-of-turn flush
	 * (or send_batch), which writes the slots back to back and rings
	 * once. Rejected: publishing every message at once. The receiver,
	 * polling the ring, then takes the burst one message per turn while
	 * the producer is still writing the next slots, and the slot lines
	 * bounce between the cores (counting cross-shard-burst64 measured
	 * slower so).
	 */
	if (!is_return && !(sh->out_dirty[dest / 64] & bit) && !VZ_FAULT(VZ_FAULT_RING_FULL)) {
		struct vz__slot_ring *r = sh->rt->shards[dest]->in[sh->id];
		struct vz__slot *s = vz__slot_reserve(r);

		if (s) {
			put_msg(sh, r, s, m);
			/* Dirty until the end-of-turn flush: later messages
			 * of this turn queue behind this one. */
			sh->out_dirty[dest / 64] |= bit;
			notify(sh, dest, sh->rt->shards[dest], true);
			return;
		}
	}
	sh->out_dirty[dest / 64] |= bit;
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
 * number of messages and returned blocks published. */
unsigned vz__flush_one(struct vz__shard *sh, unsigned dest)
{
	struct vz__outbox *ob = &sh->out[dest];
	struct vz__shard *d = sh->rt->shards[dest];
	struct vz__slot_ring *ring = d->in[sh->id];
	unsigned total = 0;

	if (ob->q.head) {
		bool fault = VZ_FAULT(VZ_FAULT_RING_FULL);

		while (ob->q.head) {
			struct vz__slot *s = fault ? NULL : vz__slot_reserve(ring);
			struct vz_msg *m;

			if (!s) {
				VZ__STAT_ADD(sh, ring_full, 1);
				/* Count each message once, the first time it
				 * has to wait, however often the retry finds
				 * the ring full. */
				VZ__STAT_ADD(sh, overflow_queued, ob->q.len - ob->parked);
				ob->parked = ob->q.len;
				break;
			}
			/* Unlinked before it is published: once in the
			 * ring, the receiver owns a block sent by pointer
			 * and reuses its link. */
			m = vz__list_pop(&ob->q);
			if (!(m->flags & (VZ__MSG_SYS | VZ__MSG_RETURNING)))
				ob->nmsgs--;
			if (ob->parked)
				ob->parked--;
			put_msg(sh, ring, s, m);
			total++;
		}
	}
	/* Then the blocks going home, several to a slot (after the
	 * messages: the target handles its messages first and frees these
	 * afterwards). */
	if (!ob->q.head && ob->nret) {
		bool fault = VZ_FAULT(VZ_FAULT_RING_FULL);
		uint32_t done = 0;

		while (done < ob->nret) {
			struct vz__slot *s = fault ? NULL : vz__slot_reserve(ring);
			uint32_t k = ob->nret - done;

			if (!s) {
				VZ__STAT_ADD(sh, ring_full, 1);
				break;
			}
			if (k > VZ__SLOT_RETURNS)
				k = VZ__SLOT_RETURNS;
			memcpy(s->body, &ob->ret[done], k * sizeof ob->ret[0]);
			s->word = vz__slot_word(VZ__SLOT_RETURNS, 0, k);
			vz__slot_publish(ring, s);
			done += k;
		}
		memmove(ob->ret, ob->ret + done, (ob->nret - done) * sizeof ob->ret[0]);
		ob->nret -= done;
		total += done;
	}
	if (!ob->q.head && !ob->nret)
		ob->stalled = false;
	/* Also when nothing fit: the ring may be full of returns the target
	 * was never woken for, and it must drain them to make room. Once per
	 * stall is enough: the target, woken with its doorbell set, drains
	 * the whole ring, and our next publish that fits rings and wakes
	 * again; repeating it every turn would only compete for the CPU.
	 * And when a wake-up failed last time: retried every turn until it
	 * goes through (notify()). */
	if (total || ((ob->q.head || ob->nret) && !ob->stalled) || ob->wake_owed) {
		/* Left-overs (even returns only) keep this shard from sleeping
		 * until the target drains, so the target must be awake. Only
		 * returns, all published: memory can wait until the owner
		 * wakes for another reason; no wake-up spent on it. */
		bool wake = ob->has_msgs || ob->q.head || ob->nret;

		ob->stalled = total == 0;
		if (!ob->q.head)
			ob->has_msgs = false;
		notify(sh, dest, d, wake);
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
