/* SPDX-License-Identifier: MIT */
/*
 * A shard (struct vz__shard): the loop's state, who may touch which field,
 * and the shard loop's calls (shard.c); plus the inline helpers that read
 * a shard's own fields on the hot path: its clock, which thread drives it,
 * its post gate and its actor table.
 *
 * Ownership (runtime/DESIGN.md invariant 1): everything in struct vz__shard
 * above the "shared" marker is touched only by the shard's own thread (or,
 * before start and after the threads are joined, by the single thread that
 * creates or destroys the runtime). The fields below it are shared with other
 * threads and each sits on its own cache line with a comment naming who
 * writes it and which access it pairs with.
 */
#ifndef VZ_CORE_SHARD_H
#define VZ_CORE_SHARD_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz.h>

#include "core/actor.h"
#include "core/handoff.h"
#include "core/mailbox.h"
#include "core/msg.h"
#include "core/ref.h"
#include "core/sched.h"
#include "core/stats.h"
#include "io/io.h"
#include "queue/mpsc_inbox.h"
#include "queue/slot_ring.h"
#include "core/hooks.h"
#include "stats/obs.h"
#include "timer/timers.h"
#include "util/cacheline.h"
#include "util/clock.h"
#include "util/membarrier.h"

struct vz_runtime;
struct vz_sim;
struct vz__outbox;
struct vz__aio;
struct vz__lane_set;

enum vz__shard_phase {
	VZ__PHASE_RUN = 0,
	VZ__PHASE_DRAIN, /* actors stopped; drain rings, dead-letter arrivals */
	VZ__PHASE_EXIT,
};

struct vz__shard {
	/* ---- owner-only ---- */
	struct vz_runtime *rt;
	unsigned id;
	int cpu;
	bool embedded;
	struct vz__io *io;
	struct vz__aio *aio; /* actors' I/O (runtime/aio) */
	uint64_t now_ns;
	/* The simulation driving this shard (runtime/sim), NULL in a real
	 * runtime: the seam for the clock (vz__shard_clock()) and the
	 * handled-message hook (deliver.c). Set at create, never changed. */
	struct vz_sim *sim;

	/* actor table: chunks of VZ__CHUNK_ACTORS that never move. The
	 * pointer array has its full size from the start, so other threads
	 * may read it: a chunk pointer is stored (release) once by the owner
	 * and read (acquire) by senders checking a bounded mailbox. */
	_Atomic(struct vz_actor *) *chunks;
	uint32_t next_unused;	      /* slots [0, next_unused) have been used */
	struct vz_actor *free_actors; /* stopped slots to reuse */
	uint32_t retired_slots;	      /* slots whose generations ran out */

	/* Run queues, one per scheduling class (class 0 only when the
	 * config declares none: the plain FIFO of before). */
	struct vz__runq rq[VZ_MAX_CLASSES];
	struct vz__sched sched; /* class picking and per-class stats */

	struct vz__pool pool;
	struct vz__seg_cache segs; /* mailbox segments (mailbox.h) */
	struct vz__handoff ho;	   /* reserve/commit and forward (handoff.c) */
	struct vz__timers timers;
	bool timers_ready;
	void *timer_reserve; /* blocks kept for expiry messages (shard.c) */
	uint32_t timer_reserve_n;
	struct vz__outbox *out;			    /* [nshards] */
	uint64_t out_dirty[VZ_MAX_SHARDS / 64];	    /* destinations with a non-empty outbox */
	uint64_t pending_rings[VZ_MAX_SHARDS / 64]; /* sources left non-empty last drain */
	/* Rings polled every turn without waiting for their doorbell:
	 * those we took from since the shard last blocked. Of these, the
	 * ones whose producer was told so (ring->watching = 1, membarrier
	 * sleep fence only; core/xshard/drain.c). */
	uint64_t hot_rings[VZ_MAX_SHARDS / 64];
	uint64_t watched_rings[VZ_MAX_SHARDS / 64];
	struct vz__msg_list fpool_returns[VZ__NCLASSES]; /* foreign blocks to give back */
	uint32_t fpool_pending;				 /* blocks in fpool_returns, all classes */

	uint64_t idle_since_ns;
	unsigned stop_round_done;
	uint64_t stop_moved; /* messages moved in the current stop round */
	pthread_t thread;
	bool thread_started;
	/* Written and read by the stopping thread only (vz_runtime_stop()):
	 * foreign posts admitted through the post gate before stop closed it. */
	uint64_t posts_admitted;
	/* Foreign-inbox messages taken so far (vz__drain_inbox()); reported
	 * to the stopper through round_taken. */
	uint64_t inbox_taken;
	struct vz__obs_hot obs; /* per-type stats, stall report (stats/obs.h) */

	/* ---- shared ---- */

	/* Incoming rings: in[src] carries src -> this shard. Allocated by
	 * this shard's create on its node; written by src (producer side) and
	 * by this shard (consumer side). NULL for src == id. */
	struct vz__slot_ring **in;

	/* Doorbell: bit src set = ring src -> this shard may be non-empty.
	 * Set by producers with fetch_or after publishing (release), pairs
	 * with the exchange in drain_rings() (acquire), which clears it
	 * before the ring is drained. */
	alignas(VZ__LINE) _Atomic uint64_t bell[VZ_MAX_SHARDS / 64];

	/* 1 while the shard is (about to be) blocked in the backend. Stored
	 * by the owner, then a full barrier, then every source re-checked;
	 * senders publish, then load it and exchange it to 0 and wake only
	 * if it was 1. The barriers pair (store-buffer pattern): at least one
	 * side sees the other's write, so no wake-up is lost. Which side pays
	 * is `sleep_fence` below (util/membarrier.h): symmetric, the owner's
	 * seq_cst fence against the senders' seq_cst publishing RMW (the
	 * doorbell's fetch_or, the inbox push's exchange, a lane's commit
	 * CAS in lanes.c, always seq_cst) and seq_cst load;
	 * or asymmetric, the owner's membarrier() against the senders'
	 * compiler barrier. A sender whose wake fails stores 1 back
	 * (vz__wake()) so the duty passes to the next sender. */
	alignas(VZ__LINE) _Atomic uint32_t sleeping;
	/* enum vz__sleep_fence, the runtime's choice. Written at create,
	 * read-only afterwards; on the flag's line, which every sender
	 * reads anyway, so choosing costs no extra cache line. */
	uint8_t sleep_fence;

	/* Live actors with a bounded mailbox on this shard. Written by the
	 * owner (relaxed: a hint that saves senders from reading the target
	 * actor's slot when no actor here is bounded; an actor's bound itself
	 * is published by the release store of its `bound` field, and a
	 * sender that misses a just-spawned bounded actor merely does not
	 * count one message against it). */
	alignas(VZ__LINE) _Atomic uint32_t bounded_live;

	/* Stop protocol: the last round this shard completed (release), what
	 * it moved in it and how many inbox messages it has taken in all;
	 * read by the stopping thread (acquire on round_acked). */
	alignas(VZ__LINE) _Atomic uint32_t round_acked;
	_Atomic uint64_t round_moved;
	_Atomic uint64_t round_taken;
	_Atomic uint32_t phase; /* enum vz__shard_phase, written by the stopper */
	/* The shard's thread could not be pinned to `cpu` (runtime.c pin()):
	 * stored once by that thread at start (release), read by
	 * vz_runtime_shard_cpu() on any thread (acquire). Written once, so it
	 * shares this cold line. */
	_Atomic bool unpinned;

	/* Embedded shards: who may run this shard's turns. NULL until claimed;
	 * then, for good, either the vz__thread_token() of the embedder's
	 * thread whose first vz_shard_poll() claimed it, or &vz__stop_claim
	 * when vz_runtime_stop() found it unclaimed and drives it itself.
	 * Shared: claimed by one compare-and-swap from NULL, raced by a first
	 * poll and the stopper (see await_round() and vz_shard_poll() in
	 * runtime.c); read by pollers and by vz_spawn() (actor.c). No data is
	 * handed over through it, so every access is relaxed: the winner of
	 * the CAS owns the shard, the loser touches nothing of it. */
	alignas(VZ__LINE) _Atomic(const void *) driver;

	/* Foreign posters' refusals (post_foreign() in send.c), written by
	 * non-shard threads with read-modify-writes, only when a post is
	 * refused after its admission (the gate itself is vz__post_gate()).
	 * post_unpushed: admitted posts refused afterwards (full mailbox, no
	 * memory), so the stopper does not wait for their message.
	 * mailbox_full_foreign: VZ_EFULL refusals of foreign posts to this
	 * shard, summed into the mailbox_full stat (a foreign thread cannot
	 * use the owner's load+store counters). */
	alignas(VZ__LINE) _Atomic uint64_t post_unpushed;
	_Atomic uint64_t mailbox_full_foreign;

	alignas(VZ__LINE) struct vz__mpsc inbox;

	/* Foreign posters' lanes into this shard (lanes.c): made by create,
	 * read-only pointer afterwards; the set says who writes what. */
	struct vz__lane_set *lanes;

	alignas(VZ__LINE) struct vz__stat_counters stats;

	/* Failed attempts to wake this shard (vz__wake()). Unlike stats,
	 * written by any waking thread (relaxed fetch_add: a counter, read
	 * as a snapshot); on its own line so the failure path never
	 * touches the owner's counters. */
	alignas(VZ__LINE) _Atomic uint64_t wake_failures;

	alignas(VZ__LINE) struct vz__fpool_class fpool[VZ__NCLASSES];
};

/* shard.c */
int vz__shard_create(vz_runtime *rt, unsigned id, int cpu, bool embedded, struct vz__shard **out);
void vz__shard_destroy(struct vz__shard *sh);
int vz__shard_start_io(struct vz__shard *sh);
void *vz__shard_thread_main(void *arg);
/* One loop turn; returns the work done (messages moved or handled). */
unsigned vz__shard_turn(struct vz__shard *sh);
/* Block up to timeout_ns (< 0 = until the next timer or a wake) using the
 * sleep protocol. */
void vz__shard_sleep(struct vz__shard *sh, int64_t timeout_ns);
uint64_t vz__clock_ns(void);
/* Keep expiry-message blocks aside for when the pool cannot grow. */
void vz__timer_reserve_fill(struct vz__shard *sh, bool may_grow);

/* The shard's clock read (runtime/DESIGN.md, "time has one source per
 * shard"): CLOCK_MONOTONIC, or the simulation's virtual time. One
 * predictable branch on an owner-only field, no #ifdef: a real runtime
 * never takes it. */
static inline uint64_t vz__shard_clock(const struct vz__shard *sh)
{
	if (__builtin_expect(sh->sim != NULL, 0))
		return vz__sim_now(sh->sim);
	return vz__mono_ns();
}

/* The shard the calling thread runs or drives (any runtime), or NULL. */
extern __attribute__((tls_model("initial-exec"))) _Thread_local struct vz__shard *vz__tls_shard;

/* The shard the calling thread runs or drives, for this runtime, or NULL. */
static inline struct vz__shard *vz__current(const vz_runtime *rt)
{
	struct vz__shard *sh = vz__tls_shard;

	return sh && sh->rt == rt ? sh : NULL;
}

void vz__set_current(struct vz__shard *sh);

/* The calling thread's identity as a pointer (the address of its own
 * vz__tls_shard, distinct for every live thread), for the embedded shards'
 * driver word: pthread_t has no atomic form and no "nobody" value. Like a
 * pthread_t, it may be reused by a thread created after this one ended. */
static inline const void *vz__thread_token(void)
{
	return (const void *)&vz__tls_shard;
}

/* driver value of an embedded shard that vz_runtime_stop() claimed. */
extern const char vz__stop_claim;

/* Does the calling thread drive embedded shard sh? Relaxed: a thread sees
 * its own claim; any other value is never equal to its token. */
static inline bool vz__is_driver(struct vz__shard *sh)
{
	return atomic_load_explicit(&sh->driver, memory_order_relaxed) == vz__thread_token();
}

/* A shard's post gate: VZ__GATE_CLOSED | number of foreign posts admitted
 * while open. Every foreign post takes a ticket with one fetch_add; the
 * result says whether it was admitted. Closed from creation until start
 * opens it, closed again (for good) by stop; see the invariant at
 * post_foreign() in send.c. It is the inbox's spare word on the producers'
 * line, which the post's push takes exclusive a moment later anyway. */
#define VZ__GATE_CLOSED ((uint64_t)1 << 63)

static inline _Atomic uint64_t *vz__post_gate(struct vz__shard *sh)
{
	return &sh->inbox.user;
}

static inline struct vz_actor *vz__slot_ptr(struct vz__shard *sh, uint32_t slot)
{
	/* Relaxed: the owner reads its own store. */
	struct vz_actor *chunk =
	    atomic_load_explicit(&sh->chunks[slot / VZ__CHUNK_ACTORS], memory_order_relaxed);

	return &chunk[slot % VZ__CHUNK_ACTORS];
}

/* vz__actor_lookup() below for a reference the caller has already found
 * to name shard sh: its other tests (slot in use, generation, live),
 * without comparing the shard again. Owner thread of sh. */
static inline struct vz_actor *vz__actor_lookup_here(struct vz__shard *sh, vz_ref ref)
{
	uint32_t slot = vz__ref_slot(ref);
	struct vz_actor *a;

	if (slot >= sh->next_unused)
		return NULL;
	a = vz__slot_ptr(sh, slot);
	if (a->gen != vz__ref_gen(ref) || !(a->flags & VZ__ACTOR_LIVE))
		return NULL;
	return a;
}

/* The live actor `ref` names on sh, or NULL (stale, forged, other shard).
 * Owner thread of sh. */
static inline struct vz_actor *vz__actor_lookup(struct vz__shard *sh, vz_ref ref)
{
	if (vz_ref_shard(ref) != sh->id)
		return NULL;
	return vz__actor_lookup_here(sh, ref);
}

#endif
