/* SPDX-License-Identifier: MIT */
/*
 * Producers: posting into a runtime from threads that are not its shards
 * through lanes of their own.
 *
 * A lane is a single-producer queue from one producer to one shard. A
 * post into a lane takes no lock, touches no line another producer
 * writes, and cannot be held up by another producer that was preempted
 * half-way through its own post. Small payloads (up to
 * VZ_PRODUCER_INLINE bytes) travel inside the lane; larger ones in a
 * block of the target shard's foreign pool, still in lane order.
 *
 * Every foreign thread gets such lanes implicitly: its first vz_post()
 * (or port post, ...) to a shard creates its lane to that shard, and the
 * lanes are given back when the thread exits. A stop request (vz_stop())
 * from such a thread goes through the shard's inbox instead, which the
 * shard reads before its lanes: a stop overtakes user mail (actor.h). An engine
 * that wants to hold its lanes explicitly — e.g. one producer per task
 * queue, handed between its own threads — creates a vz_producer.
 *
 * Each shard has at most vz_config.foreign_lanes lanes (INI
 * runtime.foreign_lanes; default VZ_FOREIGN_LANES_DEFAULT) at a time.
 * When a shard has none left:
 * - vz_post() and the other implicit posts fall back, for that thread and
 *   that shard, to the shard's shared inbox (the path before lanes; two
 *   contended read-modify-writes per post) for as long as the thread
 *   lives, so the thread's own order is kept;
 * - vz_producer_post() refuses with VZ_ENOLANE and changes nothing.
 * A lane comes free once its thread has exited (or its producer was
 * destroyed) and the shard has taken everything posted through it.
 *
 * The fallback is for the thread's life, also when a lane comes free
 * later: its posts may still be in the inbox then (the shard takes a
 * bounded number per turn, and another thread's push caught half-way
 * hides those behind it), and a first post through a new lane could
 * overtake them, breaking FIFO per producer. Knowing them all taken would
 * take a marker sent through the inbox and a lane held back until the
 * shard reaches it; a sizing problem with a simple remedy does not pay
 * for that. So: give foreign_lanes at least the number of threads posting
 * to one shard that are alive at once, and watch lanes_hwm,
 * lanes_exhausted and lane_fallback_posts (stats.h). A thread that must
 * not fall back can post through a vz_producer instead: a refused
 * vz_producer_post() leaves nothing behind, so its next post tries for a
 * lane afresh.
 *
 * Order: messages from one producer to one actor are handled in the order
 * they were posted (FIFO per producer). A thread's implicit producer and
 * each vz_producer are distinct producers: there is no order between
 * them. Delivery, dead letters and the stop protocol are those of
 * vz_post() (message.h): a post that returned 0 is handled exactly once
 * or dead-lettered, also when it races with vz_runtime_stop().
 */
#ifndef VELOZ_PRODUCER_H
#define VELOZ_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "export.h"
#include "runtime.h"

VZ_BEGIN_DECLS

/* Payload bytes that travel inside the lane; larger payloads take a block
 * of the target shard's foreign pool (one more read-modify-write). */
#define VZ_PRODUCER_INLINE 192u

typedef struct vz_producer vz_producer;

/* Make a producer for rt. Lanes are made lazily, one per shard, at the
 * first post to that shard. Any thread, any state of rt before
 * vz_runtime_destroy() (posting needs a started runtime). Errors:
 * VZ_EINVAL (NULL rt or out), VZ_ENOMEM. */
VZ_API int vz_producer_create(vz_runtime *rt, vz_producer **out);

/* Post as vz_post() does, through p's lane to the target's shard. Any
 * thread that is not a shard of p's runtime, one call at a time per
 * producer (calls on one producer must not overlap; a producer may move
 * between threads that hand it over with their own synchronisation).
 * Errors: VZ_EINVAL (NULL p, type < VZ_MSG_USER, NULL payload with
 * len > 0), VZ_ETOOBIG (len > VZ_MSG_MAX_PAYLOAD), VZ_ESTALE (null ref;
 * a stale target is accepted and dead-lettered on its shard), VZ_ENOSHARD,
 * VZ_EFULL (target's bounded mailbox is full), VZ_EWRONGTHREAD (called on
 * a shard thread of the runtime: use vz_send() or vz_post() there),
 * VZ_ESTATE (before vz_runtime_start()), VZ_ESTOPPED (stop has begun),
 * VZ_ENOLANE (the target shard has no free lane and p has none there
 * yet), VZ_ENOMEM. Every refusal changes nothing. Must not overlap
 * vz_runtime_destroy(), nor follow it. */
VZ_API int vz_producer_post(vz_producer *p, vz_ref to, uint32_t type, const void *payload,
			    size_t len);

/* Give the producer's lanes back and free it. Messages it posted are
 * still delivered (or dead-lettered) as usual; the shards reclaim the
 * lanes once they have taken everything from them. Any thread, not
 * overlapping another call on p; may be called before or after
 * vz_runtime_destroy() of its runtime (after it, it frees only the
 * producer's own memory). NULL is a no-op. Returns 0. */
VZ_API int vz_producer_destroy(vz_producer *p);

VZ_END_DECLS

#endif
