/* SPDX-License-Identifier: MIT */
/*
 * Cross-shard traffic as the rest of the core calls it (this directory;
 * rings.c has the whole picture): a shard's outbox per destination and the
 * bound on it, the ring matrix, publishing and draining, the foreign inbox's
 * drain and the sender's half of the wake-up. The slot layout and the
 * doorbell, private to this directory's files, are slot.h.
 */
#ifndef VZ_CORE_XSHARD_H
#define VZ_CORE_XSHARD_H

#include <stdbool.h>
#include <stdint.h>

#include <veloz.h>

#include "core/msg.h"
#include "core/runtime.h"
#include "core/shard.h"

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

/* xshard/ (rings.c, outbox.c, drain.c, wake.c, inbox_drain.c) */
int vz__rings_create(vz_runtime *rt);
void vz__rings_destroy(vz_runtime *rt);
void vz__outbox_push(struct vz__shard *sh, unsigned dest, struct vz_msg *m, bool is_return);
int vz__outbox_send_inline(struct vz__shard *sh, unsigned dest, vz_ref from, vz_ref to,
			   uint32_t type, const void *payload, size_t len);
unsigned vz__flush_outboxes(struct vz__shard *sh);
unsigned vz__flush_one(struct vz__shard *sh, unsigned dest);
unsigned vz__drain_rings(struct vz__shard *sh, bool all);
unsigned vz__drain_inbox(struct vz__shard *sh, unsigned budget);
bool vz__has_incoming(struct vz__shard *sh);
void vz__rings_unwatch(struct vz__shard *sh);
void vz__rings_cool(struct vz__shard *sh);
int vz__wake(struct vz__shard *from, struct vz__shard *target);

/* Nothing queued in any outbox and no wake owed (no bit of out_dirty):
 * vz__flush_outboxes() would do nothing. Inline, as the turn asks it
 * every time. Owner thread of sh. */
static inline bool vz__outboxes_empty(const struct vz__shard *sh)
{
	for (unsigned w = 0; w < (sh->rt->nshards + 63) / 64; w++)
		if (sh->out_dirty[w])
			return false;
	return true;
}

#endif
