// SPDX-License-Identifier: MIT
/*
 * Worker pools: completion delivery. Every accepted job owes its actor
 * exactly one VZ_MSG_POOL_DONE; this file hands it to the set's post
 * function and decides which refusals are worth waiting out.
 */
#include "pool/internal.h"

#include <sched.h>

/* Retries of a completion the runtime refuses for a moment (see post_done). */
#define POST_RETRIES 100000u

/* Post a completion; count a refusal on w (NULL: nobody to count on).
 * On a worker (w != NULL) three refusals are worth waiting out, because
 * every accepted job owes exactly one completion and a worker may block:
 * VZ_ESTATE (workers start inside vz_runtime_start() just before the
 * runtime declares itself running, so a job queued by an actor's init can
 * finish inside that window), VZ_EAGAIN, and VZ_ENOMEM (the target shard's
 * message memory could not grow this time). Those are retried, yielding, a
 * bounded number of times, then counted as failures. VZ_ESTOPPED is final,
 * and so is every refusal off a worker (a canceller, or the stopping thread
 * of a runtime that never started, where waiting would only delay the
 * inevitable). */
void vz__pool_post_done(struct vz__pool_set *ps, struct worker *w, uint64_t owner, const void *buf,
			size_t len)
{
	int rc;

	for (unsigned i = 0;; i++) {
		rc = ps->post(ps->rt, (vz_ref){owner}, VZ_MSG_POOL_DONE, buf, len);
		if (!w || (rc != VZ_ESTATE && rc != VZ_EAGAIN && rc != VZ_ENOMEM) ||
		    i == POST_RETRIES)
			break;
		sched_yield();
	}
	if (rc < 0 && w)
		counter_add(&w->post_failures, 1);
}
