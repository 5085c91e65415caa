/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy hand-off (handoff.c): the shard's record of an open send
 * reservation and of the message vz_forward() handed on, and the hook that
 * drops a reservation an actor left open. Owner-only.
 */
#ifndef VZ_CORE_HANDOFF_H
#define VZ_CORE_HANDOFF_H

#include <stdalign.h>
#include <stdint.h>

#include <veloz.h>

#include "core/mailbox.h"

struct vz__shard;
struct vz_actor;
struct vz_msg;

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

#endif
