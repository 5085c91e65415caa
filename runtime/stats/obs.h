/* SPDX-License-Identifier: MIT */
/*
 * Observability inside the runtime: the per-actor-type table of each shard,
 * the hooks the run loop calls around an actor run, the turn sequence the
 * stall watchdog reads, and the watchdog/publisher thread's entry points.
 *
 * Cost rule (runtime/DESIGN.md invariant 6, bench/README.md "metrics"):
 * per message the loop stores two owner-only pointers (what a stall report
 * names); every counter below is added once per actor run, with the
 * single-writer load+store of vz__counter_add(); the clock is read only for
 * one run in stats_sample_runs. Everything here that other threads read is
 * written by the shard alone (relaxed load + store) or by the watchdog
 * alone, and read as a snapshot with relaxed loads.
 */
#ifndef VZ_STATS_OBS_H
#define VZ_STATS_OBS_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <veloz.h>

#include "util/clock.h"

struct vz__shard;
struct vz_actor;
struct vz_msg;

/* One actor type of one shard. Allocated by the shard (or the creating
 * thread before start) at the first spawn of its spec and never moved or
 * freed before the runtime is destroyed; published to readers by the
 * release store of vz__obs.ntypes. */
struct vz__atype {
	/* Line-aligned (and so a multiple of 64 long, as aligned_alloc()
	 * wants): the shard writes the counters, readers share no line with
	 * anything else of the shard's. */
	alignas(64) const vz_actor_spec *spec; /* the key; NULL for "(other)" */
	char name[VZ_TYPE_NAME_MAX];
	_Atomic uint64_t handled, runs, mbox_hwm, spawned;
	_Atomic uint64_t wait_sum, wait_max, handle_sum, handle_max;
	_Atomic uint64_t wait[VZ_HIST_BUCKETS];
	_Atomic uint64_t handle[VZ_HIST_BUCKETS];
};

/* Stall record, filled by the stalled shard's own thread in the signal
 * handler (stats/watchdog.c) and read by the watchdog. */
enum { VZ__STALL_IDLE = 0, VZ__STALL_REQ, VZ__STALL_BUSY, VZ__STALL_DONE };
#define VZ__STALL_FRAMES 32
struct vz__stall_rec {
	/* IDLE -> REQ by the watchdog (release: the request), REQ -> BUSY by
	 * the handler's CAS (acquire), BUSY -> DONE by the handler (release:
	 * pairs with the watchdog's acquire load, which then reads the
	 * fields), and REQ -> IDLE by the watchdog when it gives up waiting
	 * (a CAS, so it and the handler cannot both own the record). */
	_Atomic uint32_t state;
	bool in_receive;
	uint32_t msg_type;
	char actor[VZ_TYPE_NAME_MAX];
	int nframes;
	void *frames[VZ__STALL_FRAMES];
};

/* The part of a shard's observability other threads read. */
struct vz__obs {
	/* 2 * turns begun, + 1 while a turn runs: odd means "in a turn".
	 * Written by the shard (relaxed load + store), read by the watchdog
	 * (relaxed: it only compares values over time, nothing is read
	 * through it). Own line: the shard writes it twice a turn. */
	alignas(64) _Atomic uint64_t turn_seq;
	/* Shard-written counters (load + store). */
	alignas(64) _Atomic uint64_t wakeups_received, pool_jobs;
	/* The type table: types[0 .. ntypes-1] are published. ntypes is
	 * stored (release) by the owner after the entry is filled; readers
	 * load it (acquire) before reading the entries. */
	_Atomic uint32_t ntypes;
	struct vz__atype *types[VZ_STATS_TYPES_MAX];
	/* [nshards] each: user messages sent to / taken from each shard. */
	_Atomic uint64_t *sent_to, *received_from;
	/* Written by the watchdog only. */
	alignas(64) _Atomic uint64_t stalls;
	alignas(64) struct vz__stall_rec stall;
};

/* The owner-only part, embedded in struct vz__shard. */
struct vz__obs_hot {
	struct vz__obs *o;
	/* What the shard handles right now, for the stall report: stored
	 * before each receive call (dispatch()), read by the signal handler
	 * on this same thread, so plain fields. cur_actor's RUNNING flag
	 * tells whether cur_msg is still the one being handled. */
	struct vz_actor *cur_actor;
	const struct vz_msg *cur_msg;
	uint32_t sample_left;		/* runs until the next timed one */
	uint32_t sample_every;		/* cfg.stats_sample_runs */
	const vz_actor_spec *last_spec; /* vz__obs_type() cache */
	struct vz__atype *last_type;
};

static inline void vz__obs_add(_Atomic uint64_t *c, uint64_t n)
{
	/* Single writer: relaxed load + store, as vz__counter_add(). */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void vz__obs_max(_Atomic uint64_t *c, uint64_t v)
{
	if (v > atomic_load_explicit(c, memory_order_relaxed))
		atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline unsigned vz__hist_index(uint64_t v)
{
	unsigned e, i;

	if (v < (1u << VZ_HIST_SUB_BITS))
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	i = (e - VZ_HIST_SUB_BITS + 1) * (1u << VZ_HIST_SUB_BITS) +
	    (unsigned)((v >> (e - VZ_HIST_SUB_BITS)) & ((1u << VZ_HIST_SUB_BITS) - 1));
	return i < VZ_HIST_BUCKETS ? i : VZ_HIST_BUCKETS - 1;
}

/* A pool job accepted from an actor of `shard` (pool_api.c, on that
 * shard's thread). */
void vz__obs_pool_submitted(vz_runtime *rt, unsigned shard);

/* Shard create/destroy (stats/obs.c). */
int vz__obs_init(struct vz__shard *sh);
void vz__obs_fini(struct vz__shard *sh);
/* The type entry of spec on sh, created at its first spawn; NULL when
 * types are off or memory ran out (the actor is then not counted). Owner
 * thread (or the creator before start). */
struct vz__atype *vz__obs_type_slow(struct vz__shard *sh, const vz_actor_spec *spec);
static inline struct vz__atype *vz__obs_type(struct vz__obs_hot *h, struct vz__shard *sh,
					     const vz_actor_spec *spec)
{
	if (!h->sample_every)
		return NULL;
	if (h->last_spec == spec)
		return h->last_type;
	return vz__obs_type_slow(sh, spec);
}

/* Around one actor run. begin returns the run's start time when this run
 * is timed, else 0; `depth` is the mailbox length at the start. */
static inline uint64_t vz__obs_run_begin(struct vz__obs_hot *h, struct vz__atype *t, uint32_t depth,
					 uint64_t ready_ns)
{
	uint64_t now;

	if (!t)
		return 0;
	vz__obs_max(&t->mbox_hwm, depth);
	if (__builtin_expect(--h->sample_left != 0, 1))
		return 0;
	h->sample_left = h->sample_every;
	now = vz__mono_ns();
	if (ready_ns && now > ready_ns) {
		uint64_t w = now - ready_ns;

		vz__obs_add(&t->wait[vz__hist_index(w)], 1);
		vz__obs_add(&t->wait_sum, w);
		vz__obs_max(&t->wait_max, w);
	} else {
		vz__obs_add(&t->wait[0], 1);
	}
	return now;
}

/* Returns the clock read at the end of a timed run (0 otherwise), which
 * the caller may use as its fresh now_ns. */
static inline uint64_t vz__obs_run_end(struct vz__atype *t, uint64_t start, unsigned handled)
{
	uint64_t now, per;

	if (!t)
		return 0;
	vz__obs_add(&t->handled, handled);
	vz__obs_add(&t->runs, 1);
	if (__builtin_expect(!start, 1))
		return 0;
	now = vz__mono_ns();
	if (handled) {
		per = (now - start) / handled;
		vz__obs_add(&t->handle[vz__hist_index(per)], handled);
		vz__obs_add(&t->handle_sum, now - start);
		vz__obs_max(&t->handle_max, per);
	}
	return now;
}

/* A turn begins / ends (shard.c). */
static inline void vz__obs_turn_mark(struct vz__obs *o)
{
	vz__obs_add(&o->turn_seq, 1);
}

/* The watchdog and publisher thread (stats/watchdog.c): started by
 * vz_runtime_start() after the shards, stopped by vz_runtime_stop() after
 * they are joined (and on a failed start). 0 or VZ_ENOMEM / VZ_EIO. */
struct vz__watch;
int vz__watch_start(vz_runtime *rt, struct vz__watch **out);
void vz__watch_stop(struct vz__watch *w);

/* Shared-memory segment (stats/shm.c). */
struct vz__shm;
int vz__shm_create(vz_runtime *rt, struct vz__shm **out);
void vz__shm_publish(vz_runtime *rt, struct vz__shm *s);
void vz__shm_destroy(struct vz__shm *s);
const char *vz__shm_name(const struct vz__shm *s);

#endif
