/* SPDX-License-Identifier: MIT */
/*
 * Per-producer lanes into a shard (lanes.c): the hooks the shard loop, the
 * send path and the runtime's lifecycle call. The lane queue itself is
 * runtime/queue/lane.h; the public side is include/veloz/producer.h.
 */
#ifndef VZ_CORE_LANES_H
#define VZ_CORE_LANES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz.h>

struct vz__shard;

/* vz__lanes_post_thread(): the calling thread has no lane into the target
 * shard (none free): use the shard's inbox. */
#define VZ__LANE_FALLBACK 1

/* shard.c: with the shard (create, destroy). init: 0, VZ_ENOMEM or
 * VZ_ECONFIG (foreign_lanes over VZ_FOREIGN_LANES_MAX). */
int vz__lanes_shard_init(struct vz__shard *sh);
void vz__lanes_shard_fini(struct vz__shard *sh);

/* shard.c, owner thread: take what the lanes hold (up to a per-lane
 * budget, everything when all) and hand it to the actors; returns the
 * messages taken. pending: anything waiting in a lane or on its doorbell
 * (the sleep protocol's re-check, after the fence). */
unsigned vz__lanes_drain(struct vz__shard *sh, bool all);
bool vz__lanes_pending(struct vz__shard *sh);

/* The first member of a shard's lane set (lanes.c; sh->lanes points at
 * the set): the bitmaps vz__lanes_drain() starts from. Fixed at init. */
struct vz__lanes_look {
	uint32_t words;		/* 64-bit words of each bitmap */
	uint64_t *active;	/* owner-only: lanes polled every turn */
	_Atomic uint64_t *bell; /* parked lanes committed to; producers' fetch_or */
};

/*
 * Owner thread, with the set (sh->lanes, passed as lanes): true when
 * vz__lanes_drain(sh, false) would find nothing to do: no lane is active
 * and no doorbell bit is set. A look without a call for the turn, which
 * asks it on every pass. The doorbell is read relaxed, as the drain's own
 * first peek is: a bit not yet visible is found by a later turn, and the
 * sleep re-check reads it seq_cst (vz__lanes_pending()). `lanes` is
 * converted to its first member (C11 6.7.2.1).
 */
static inline bool vz__lanes_idle(const void *lanes)
{
	const struct vz__lanes_look *l = lanes;

	for (uint32_t w = 0; w < l->words; w++)
		if (l->active[w] || atomic_load_explicit(&l->bell[w], memory_order_relaxed))
			return false;
	return true;
}

/* runtime.c: start opens the shard's lanes to producers; stop closes
 * them (every lane's gate) and then asks whether the shard has taken
 * everything the lanes admitted. Stopping / starting thread. */
void vz__lanes_open(struct vz__shard *sh);
void vz__lanes_close(struct vz__shard *sh);
bool vz__lanes_arrived(struct vz__shard *sh);

/* send.c: a post from a foreign thread through its implicit producer.
 * 0, a VZ_E* refusal (nothing changed), or VZ__LANE_FALLBACK. Arguments
 * already checked (check_args()). */
int vz__lanes_post_thread(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
			  uint32_t corr, const void *payload, size_t len);

/* send.c: vz_post()'s fast path, from a thread that runs no shard into a
 * runtime that is not simulated, with the arguments checked (a user type,
 * a reference to one of rt's shards, a payload that is not NULL unless
 * empty and at most VZ_MSG_MAX_PAYLOAD). Anything its lane path does not
 * cover goes to vz__post_user_slow() (send_fast.h). vz_post()'s results. */
int vz__lanes_post_user(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len);

/* Tests: lanes registered on shard `shard` right now (any thread; a
 * snapshot). */
unsigned vz__lanes_count(vz_runtime *rt, unsigned shard);

/* xshard/inbox_drain.c, owner thread: n messages just taken from the
 * inbox were posts of threads that had no lane into this shard (stats.h
 * lane_fallback_posts). Owner-only counter, no read-modify-write. */
void vz__lanes_note_fallback(struct vz__shard *sh, unsigned n);

/* stats.c: fill o's lane fields (lanes_in_use .. lane_doorbells) for sh.
 * Any thread; each field a relaxed snapshot. */
void vz__lanes_stats(const struct vz__shard *sh, vz_shard_stats *o);

#endif
