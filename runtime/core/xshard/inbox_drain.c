// SPDX-License-Identifier: MIT
/*
 * The foreign inbox's drain: messages that threads outside the runtime
 * posted (vz_post) are taken from the shard's MPSC inbox and delivered.
 */
#include "core/deliver.h"
#include "core/shard.h"
#include "core/xshard/xshard.h"

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
