// SPDX-License-Identifier: MIT
/*
 * The sender's half of the wake-up protocol (runtime/DESIGN.md invariant
 * 4): after publishing to a shard, find out whether it sleeps and wake it.
 * The sleeper's half is vz__shard_sleep() in core/shard.c.
 */
#include "core/shard.h"
#include "core/xshard/xshard.h"

/*
 * Sender's half of the wake-up protocol, after publishing to `target`.
 * Pairs with vz__shard_sleep(): it stores sleeping = 1, issues a full
 * barrier, then re-checks every source (the doorbell, the next slot of
 * each ring it polls and the inbox's tail among them). The barriers are the runtime's sleep fence
 * (util/membarrier.h), read from target->sleep_fence by both ends:
 *
 * - fence (symmetric): the caller's publish ends in a seq_cst
 *   read-modify-write: the doorbell's fetch_or after a ring slot's publish
 *   (notify() in outbox.c; under this fence it is always rung, since a
 *   consumer tells a producer that it polls the ring only under
 *   membarrier), or the inbox push's exchange (vz__mpsc_push_sc(),
 *   foreign posts); no separate fence. Our load of `sleeping` is seq_cst.
 *   The sleeper's is a seq_cst fence (vz__full_fence_on()). In the single
 *   order of seq_cst operations either our RMW comes first (the sleeper's
 *   re-check after its fence sees it and does not block) or its fence does
 *   (our load here sees its 1 and we wake it).
 * - membarrier (asymmetric): the caller publishes with what the queues
 *   need for themselves: a ring slot's release store of its seq, then the
 *   doorbell's release fetch_or only if the consumer does not poll that
 *   ring (the same argument covers that flag, `watching`: drain.c), or
 *   the inbox's acq_rel exchange; here a compiler barrier
 *   (vz__light_fence()) and a relaxed load. No locked instruction on
 *   the sender's side for a polled ring. The sleeper's
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
