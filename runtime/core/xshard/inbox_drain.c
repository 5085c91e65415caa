// SPDX-License-Identifier: MIT
/*
 * The foreign inbox's drain: messages that threads outside the runtime
 * posted (vz_post) are taken from the shard's MPSC inbox and delivered.
 */
#include "core/deliver.h"
#include "core/shard.h"
#include "core/xshard/xshard.h"
#include "core/lanes.h"

unsigned vz__drain_inbox(struct vz__shard *sh, unsigned budget)
{
	unsigned n = 0, fallback = 0;

	while (n < budget) {
		struct vz__mpsc_node *node = vz__mpsc_pop(&sh->inbox);
		struct vz_msg *m = (struct vz_msg *)node;

		if (!node)
			break;
		if (!(m->flags & VZ__MSG_UNCOUNTED))
			VZ__STAT_ADD(sh, received_foreign, 1);
		/* Outside a simulation only two kinds of post take the inbox
		 * (send.c, post()): a stop request from a non-shard thread, and
		 * a post whose thread had no lane into this shard. Read before
		 * the delivery, which may free m. */
		fallback += !(m->type == VZ__MSG_STOP && (m->flags & VZ__MSG_SYS));
		vz__deliver_local(sh, m);
		n++;
	}
	sh->inbox_taken += n; /* for the stop protocol (posts_arrived()) */
	if (fallback && !sh->sim)
		vz__lanes_note_fallback(sh, fallback); /* stats.h lane_fallback_posts */
	return n;
}
