// SPDX-License-Identifier: MIT
/*
 * The actor table of a shard and the actor lifecycle: spawn, stop, and
 * generation-checked references.
 *
 * Slots live in chunks that never move, so a slot's address is stable for
 * the runtime's life. A reference is (shard, slot, generation); the slot's
 * generation is bumped when the actor stops, which makes every reference to
 * the old life stale, even after the slot is reused. Generations never
 * wrap: a slot whose last generation (VZ__GEN_LAST) has ended is retired
 * and never handed out again, so no reference can come back to life.
 *
 * What other threads see of the table: a reference is resolved (looked up,
 * its actor touched) only on its own shard, and the free list, next_unused,
 * gen and flags are owner-only plain fields. Three things are shared, for
 * bounded mailboxes checked by senders on any thread (vz__bounded_admit(),
 * vz__undo_admit()): the chunk pointers (stored once, release, by the
 * owner), each slot's `bound` (generation and limit of the current life,
 * stored with release by the owner at spawn and stop) and its `inflight`
 * counter (read-modify-written by senders and the owner).
 */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static struct vz_actor *slot_take(struct vz__shard *sh)
{
	struct vz_actor *a = sh->free_actors;
	uint32_t slot;

	if (a) {
		sh->free_actors = a->next_ready;
		return a;
	}
	slot = sh->next_unused;
	if (slot >= (1u << VZ__SLOT_BITS))
		return NULL;
	if (!atomic_load_explicit(&sh->chunks[slot / VZ__CHUNK_ACTORS], memory_order_relaxed)) {
		struct vz_actor *chunk = aligned_alloc(64, VZ__CHUNK_ACTORS * sizeof *chunk);

		if (!chunk)
			return NULL;
		memset(chunk, 0, VZ__CHUNK_ACTORS * sizeof *chunk);
		/* Release: pairs with the acquire in vz__bounded_admit(); the
		 * zeroed slots are visible before the pointer. */
		atomic_store_explicit(&sh->chunks[slot / VZ__CHUNK_ACTORS], chunk,
				      memory_order_release);
		VZ__STAT_ADD(sh, pool_refills, 1);
	}
	a = vz__slot_ptr(sh, slot);
	a->slot = slot;
	a->gen = 1;
	sh->next_unused = slot + 1;
	return a;
}

static void slot_give_back(struct vz__shard *sh, struct vz_actor *a)
{
	/* Release: pairs with the acquire in vz__bounded_admit(); a sender
	 * that reads 0 counts nothing against the ended life. */
	atomic_store_explicit(&a->bound, 0, memory_order_release);
	a->next_ready = NULL;
	if (a->gen == VZ__GEN_LAST) {
		/* Every generation of this slot has been handed out: wrapping
		 * to 1 would bring the first life's references back to life.
		 * The slot stays out of the free list for good (its memory is
		 * part of a chunk freed at destroy); lookups fail on it
		 * because it is not live. */
		a->flags = VZ__ACTOR_RETIRED;
		sh->retired_slots++;
		return;
	}
	/* Bump the generation so every reference to this life is stale. */
	a->gen++;
	a->flags = 0;
	a->next_ready = sh->free_actors;
	sh->free_actors = a;
}

int vz__actor_spawn(struct vz__shard *sh, const vz_actor_spec *spec, const void *arg, vz_ref *out)
{
	struct vz_actor *a = slot_take(sh);
	int cls, rc;

	if (!a)
		return VZ_ENOMEM;
	a->shard = sh;
	a->spec = spec;
	vz__mbox_init(&a->mbox);
	a->spill = (struct vz__msg_list){0};
	a->urg_head = a->urg_tail = NULL;
	a->sched_cls = spec->sched_class;
	a->next_ready = NULL;
	a->io_fds = NULL;
	a->io_kept = NULL;
	a->otype = vz__obs_type(&sh->obs, sh, spec);
	/* The life is the generation: unique per life of this slot and never
	 * wrapped, so timers of an earlier life stay stale (timers.h). */
	vz__timer_owner_init(&a->timers, a->gen);
	a->state = NULL;
	a->life = NULL;
	a->flags = 0;
	if (spec->state_size) {
		cls = vz__size_class(spec->state_size);
		if (cls >= 0) {
			a->state = vz__pool_alloc(sh, (unsigned)cls);
			a->state_cls = (uint16_t)cls;
		} else {
			a->state = malloc(spec->state_size);
			a->flags |= VZ__ACTOR_BIG_STATE;
		}
		if (!a->state) {
			slot_give_back(sh, a);
			return VZ_ENOMEM;
		}
		memset(a->state, 0, spec->state_size);
	}
	a->flags |= VZ__ACTOR_LIVE;
	/* Release: pairs with the acquire in vz__bounded_admit(). */
	atomic_store_explicit(&a->bound, (uint64_t)a->gen << 32 | spec->mailbox_limit,
			      memory_order_release);
	if (spec->init) {
		rc = spec->init(a, a->state, arg);
		vz__handoff_end(sh, a); /* a reservation left open (message.h) */
		if (rc < 0) {
			/* The actor never existed: no on_stop, no stats. */
			vz__timers_cancel_owner(&sh->timers, &a->timers);
			if (a->life) /* init linked or monitored: tell them */
				vz__life_init_failed(sh, a, rc);
			a->flags &= (uint16_t)~VZ__ACTOR_LIVE;
			vz__aio_actor_stopped(sh, a);
			vz__mbox_dead_letter_all(sh, a, VZ_ESTALE);
			/* init may have queued itself an exit signal (a link to
			 * a gone actor, life.c) */
			while (a->urg_head) {
				struct vz_msg *m = a->urg_head;

				a->urg_head = vz__msg_next(m);
				vz__dead_letter(sh, m, VZ_ESTALE);
			}
			a->urg_tail = NULL;
			if (a->flags & VZ__ACTOR_BIG_STATE)
				free(a->state);
			else if (a->state)
				vz__pool_free(sh, a->state, a->state_cls);
			slot_give_back(sh, a);
			return rc;
		}
	}
	VZ__STAT_ADD(sh, actors_spawned, 1);
	if (a->otype)
		vz__obs_add(&a->otype->spawned, 1);
	VZ__STAT_ADD(sh, actors_live, 1);
	if (spec->mailbox_limit)
		atomic_store_explicit(
		    &sh->bounded_live,
		    atomic_load_explicit(&sh->bounded_live, memory_order_relaxed) + 1,
		    memory_order_relaxed);
	if (out)
		*out = vz__make_ref(sh->id, a->slot, a->gen);
	return 0;
}

/*
 * Stop an actor on its own shard now: dead-letter its mailbox, cancel its
 * timers, run on_stop, free its state, make its references stale. If it is
 * inside its own receive, only mark it; deliver.c finishes the stop when
 * receive returns.
 */
void vz__actor_stop_now(struct vz__shard *sh, struct vz_actor *a, int reason)
{
	struct vz_msg *m;

	if (!(a->flags & VZ__ACTOR_LIVE))
		return;
	if (a->flags & VZ__ACTOR_RUNNING) {
		a->flags |= VZ__ACTOR_STOPPING;
		return;
	}
	vz__timers_cancel_owner(&sh->timers, &a->timers);
	if (a->flags & VZ__ACTOR_NAMED) /* runtime/cluster: its names go first */
		vz__cluster_actor_stopped(sh, vz__make_ref(sh->id, a->slot, a->gen));
	if (a->spec->on_stop) {
		/* on_stop may send; it is still a live actor while it runs. */
		a->flags |= VZ__ACTOR_RUNNING;
		a->spec->on_stop(a, a->state);
		a->flags &= (uint16_t)~VZ__ACTOR_RUNNING;
		vz__handoff_end(sh, a);
	}
	a->flags &= (uint16_t)~VZ__ACTOR_LIVE;
	if (a->life) /* watchers, links, asks (life.c) */
		vz__life_end(sh, a, reason);
	/* Its descriptors close and its operations end now; their events
	 * (and those already queued below) are dropped, buffers returned. */
	vz__aio_actor_stopped(sh, a);
	vz__mbox_dead_letter_all(sh, a, reason);
	while ((m = a->urg_head)) {
		/* runtime requests (stop): uncounted, so only released */
		a->urg_head = vz__msg_next(m);
		vz__dead_letter(sh, m, reason);
	}
	a->urg_tail = NULL;
	if (a->flags & VZ__ACTOR_BIG_STATE)
		free(a->state);
	else if (a->state)
		vz__pool_free(sh, a->state, a->state_cls);
	a->state = NULL;
	VZ__STAT_ADD(sh, actors_live, (uint64_t)-1);
	VZ__STAT_ADD(sh, actors_stopped, 1);
	if (a->spec->mailbox_limit)
		atomic_store_explicit(
		    &sh->bounded_live,
		    atomic_load_explicit(&sh->bounded_live, memory_order_relaxed) - 1,
		    memory_order_relaxed);
	/* A ready actor stays linked in the run queue until the loop pops it,
	 * and an active one is still held by the loop: in both cases the loop
	 * finds it not live and only then returns the slot. */
	if (!(a->flags & (VZ__ACTOR_READY | VZ__ACTOR_ACTIVE)))
		slot_give_back(sh, a);
}

/* The run queue found a stopped actor: its slot can now be reused. */
void vz__actor_reap(struct vz__shard *sh, struct vz_actor *a)
{
	slot_give_back(sh, a);
}

void vz__stop_all_actors(struct vz__shard *sh)
{
	for (uint32_t s = 0; s < sh->next_unused; s++) {
		struct vz_actor *a = vz__slot_ptr(sh, s);

		if (a->flags & VZ__ACTOR_LIVE)
			vz__actor_stop_now(sh, a, VZ_ESTOPPED);
	}
}

int vz__actor_table_init(struct vz__shard *sh)
{
	sh->chunks = calloc(VZ__MAX_ACTOR_CHUNKS, sizeof *sh->chunks);
	return sh->chunks ? 0 : VZ_ENOMEM;
}

void vz__actor_table_fini(struct vz__shard *sh)
{
	if (!sh->chunks)
		return;
	for (uint32_t c = 0; c < VZ__MAX_ACTOR_CHUNKS; c++)
		free(atomic_load_explicit(&sh->chunks[c], memory_order_relaxed));
	free(sh->chunks);
	sh->chunks = NULL;
}

/*
 * Bounded mailboxes, from any thread: admit one more message for `to`, or
 * refuse with VZ_EFULL. The counter lives in the slot and is shared by all
 * lives of the slot, so a message counted against an old life and
 * dead-lettered later still gives its count back to the same counter.
 * Returns 1 when the message was counted (caller sets VZ__MSG_INFLIGHT),
 * 0 when the target is unbounded or not (any longer) alive.
 */
int vz__bounded_admit(struct vz__shard *target, vz_ref to)
{
	uint32_t slot = vz__ref_slot(to);
	struct vz_actor *chunk;
	struct vz_actor *a;
	uint64_t bound;
	uint32_t limit;

	/* Acquire: pairs with the release store of the chunk in slot_take(). */
	chunk =
	    atomic_load_explicit(&target->chunks[slot / VZ__CHUNK_ACTORS], memory_order_acquire);
	if (!chunk)
		return 0;
	a = &chunk[slot % VZ__CHUNK_ACTORS];
	/* Acquire: pairs with the release stores at spawn and stop. */
	bound = atomic_load_explicit(&a->bound, memory_order_acquire);
	limit = (uint32_t)bound;
	if (!limit || (bound >> 32) != vz__ref_gen(to))
		return 0;
	/* Relaxed: a pure counter; the message itself is published by the
	 * ring or inbox. */
	if (atomic_fetch_add_explicit(&a->inflight, 1, memory_order_relaxed) >= limit) {
		atomic_fetch_sub_explicit(&a->inflight, 1, memory_order_relaxed);
		return VZ_EFULL;
	}
	return 1;
}

/* ---- public ---------------------------------------------------------- */

VZ_API vz_ref vz_self(const vz_actor *self)
{
	if (!self)
		return VZ_REF_NULL;
	return vz__make_ref(self->shard->id, self->slot, self->gen);
}

VZ_API vz_runtime *vz_actor_runtime(const vz_actor *self)
{
	return self ? self->shard->rt : NULL;
}

VZ_API unsigned vz_actor_shard(const vz_actor *self)
{
	return self ? self->shard->id : 0;
}

VZ_API int vz_spawn(vz_runtime *rt, unsigned shard, const vz_actor_spec *spec, const void *arg,
		    vz_ref *out)
{
	uint32_t state;
	struct vz__shard *sh;

	if (!rt || !spec || !spec->receive || spec->state_size > (1u << 20))
		return VZ_EINVAL;
	if (shard >= rt->nshards)
		return VZ_ENOSHARD;
	sh = rt->shards[shard];
	if (spec->sched_class >= sh->sched.nclasses)
		return VZ_EINVAL;
	/* Acquire: pairs with the seq_cst stores in start/stop. */
	state = atomic_load_explicit(&rt->state, memory_order_acquire);
	if (state >= VZ__RT_STOPPING)
		return VZ_ESTOPPED;
	if (state == VZ__RT_RUNNING) {
		int rc;

		if (vz__current(rt) == sh)
			return vz__actor_spawn(sh, spec, arg, out);
		/* The embedder's thread that drives this shard, between two
		 * polls: it stands in for the shard, as inside a poll. */
		if (!sh->embedded || !vz__is_driver(sh) || vz__current(rt))
			return VZ_EWRONGTHREAD;
		vz__set_current(sh);
		rc = vz__actor_spawn(sh, spec, arg, out);
		vz__set_current(NULL);
		return rc;
	}
	/* Before start the caller stands in for the shard's thread (nothing
	 * else runs yet), so init may send and arm timers; thread creation
	 * at start orders all of it before the shard's first turn. */
	{
		struct vz__shard *prev = vz__current(rt);
		int rc;

		vz__set_current(sh);
		rc = vz__actor_spawn(sh, spec, arg, out);
		vz__set_current(prev);
		return rc;
	}
}

VZ_API int vz_stop(vz_runtime *rt, vz_ref ref)
{
	struct vz__shard *cur, *sh;
	uint32_t state;
	unsigned shard;

	if (!rt)
		return VZ_EINVAL;
	if (vz_ref_is_null(ref))
		return VZ_ESTALE;
	shard = vz_ref_shard(ref);
	if (shard >= rt->nshards)
		return VZ_ENOSHARD;
	sh = rt->shards[shard];
	state = atomic_load_explicit(&rt->state, memory_order_acquire);
	if (state >= VZ__RT_STOPPING)
		return VZ_ESTOPPED;
	cur = vz__current(rt);
	if (state == VZ__RT_CREATED || cur == sh) {
		struct vz_actor *a = vz__actor_lookup(sh, ref);

		if (!a)
			return VZ_ESTALE;
		if ((a->flags & VZ__ACTOR_RUNNING) && a->life)
			vz__life_stop_self(a); /* from its own receive: a normal exit */
		vz__actor_stop_now(sh, a, VZ_ESTALE);
		return 0;
	}
	return vz__post_sys(rt, ref, VZ__MSG_STOP, NULL, 0);
}
