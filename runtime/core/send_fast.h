/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the send fast paths (send.c) that the lanes' drain and fast
 * post (lanes.c) share: writing one inline message into an actor's
 * mailbox cells (mailbox.h), so both lay a cell out the same way (owner
 * thread of the mailbox, as everything in mailbox.h; no atomics), and the
 * way back from the lanes' fast post to vz_post()'s general path.
 */
#ifndef VZ_CORE_SEND_FAST_H
#define VZ_CORE_SEND_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "core/mailbox.h"

/* Fill the header of inline cell c (the first of its n cells): sender
 * from, type, payload length len (<= VZ__CELL_INLINE_MAX), cell flags
 * (VZ__MSG_INFLIGHT or 0). The payload goes to vz__cell_payload(c). Plain
 * field stores: cheaper than assembling the 8 bytes after u.from into one
 * word, which took more instructions than it saved. */
static inline void vz__cell_put_hdr(struct vz__cell *c, uint64_t from, uint32_t type, size_t len,
				    uint8_t flags, unsigned n)
{
	c->u.from = from;
	c->type = type;
	c->len = (uint16_t)len;
	c->flags = flags;
	c->kind = (uint8_t)n;
}

/* Where an inline message's payload starts; it runs on into the following
 * cells of its span, so it is written through a char pointer. */
static inline unsigned char *vz__cell_payload(struct vz__cell *c)
{
	return (unsigned char *)c + offsetof(struct vz__cell, data);
}

/* send.c: vz_post() from scratch (every check, every path: the calling
 * thread's shard, a remote reference, the lane or the inbox), for
 * vz__lanes_post_user() (lanes.c) when its fast path does not apply. */
int vz__post_user_slow(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len);

#endif
