/* SPDX-License-Identifier: MIT */
/*
 * Worker pools, the parts their files share: the job record, worker, pool
 * and set layouts, the single-writer counters, and the queue helpers the
 * submit path and the workers both use. Private to runtime/pool/; the rest
 * of the runtime goes through pool.h. Which file does what is listed in
 * NOTES.md; the orderings are explained where each field is declared.
 */
#ifndef VZ_POOL_INTERNAL_H
#define VZ_POOL_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz/error.h>

#include "pool/eventcount.h"
#include "pool/mpmc.h"
#include "pool/pool.h"
#include "util/membarrier.h"

/* Job record states, in the low two bits of job_rec.state; the generation
 * is above them. */
enum { REC_FREE = 0, REC_QUEUED = 1, REC_RUNNING = 2 };
#define REC_STATE(gen, st) (((uint64_t)(gen) << 2) | (uint64_t)(st))

/* job_rec.cancel: gen << 2 | CX_*, the cancellation handshake of that
 * generation (worker.c start_wins(), submit.c vz__pool_cancel_as()). */
enum { CX_REQUEST = 1, CX_RUN = 2, CX_CANCEL = 3 };
#define CX(gen, st) (((uint64_t)(gen) << 2) | (uint64_t)(st))

/*
 * One job, from submission until its worker (or the canceller) is done.
 *
 * Invariant: a queued generation is either run by the worker that dequeued
 * it or cancelled by vz__pool_cancel_as() (which posts its VZ_ECANCELED
 * completion), never both and never neither. Cancelling is rare, starting
 * is per job, so the decision is a store-buffer handshake with the
 * asymmetric barriers of util/membarrier.h, the heavy side on the
 * canceller:
 *   worker:    store state = RUNNING(gen); light barrier; load cancel;
 *   canceller: cancel = CX(gen, REQUEST) (CAS); heavy barrier; load state.
 * At least one sees the other's store. A worker that does not see the
 * request runs the job with no read-modify-write (the common case: one
 * plain store and one load); then the canceller sees RUNNING and gives up.
 * When the canceller still sees QUEUED, the worker has not stored RUNNING
 * yet, or has and will see the request: both then decide on `cancel` by
 * CAS, REQUEST -> CANCEL (the canceller) against REQUEST -> RUN (the
 * worker); exactly one succeeds. A canceller that gives up, or whose
 * membarrier() was refused (it cannot know the worker saw the request),
 * withdraws with REQUEST -> RUN, so a worker that did see it runs.
 */
struct job_rec {
	/* gen << 2 | REC_*. Stored QUEUED (release) by the submitter,
	 * RUNNING (relaxed, then the light barrier) by the worker that
	 * dequeued it, FREE by whoever frees it. */
	alignas(64) _Atomic uint64_t state;
	/* Atomic because the canceller reads them while the record may
	 * already be recycled. Release stores by the submitter, acquire
	 * loads by the canceller: a value of a later generation read there
	 * brings the worker's store of RUNNING with it, so the canceller's
	 * second load of state (after its barrier) cannot still see
	 * QUEUED(gen), and it gives up. */
	_Atomic uint64_t owner;
	_Atomic uint64_t tag;
	/* Plain: written by the submitter before it enqueues the index (the
	 * release in vz__mpmc_enqueue) and read by the worker after it
	 * dequeues it (the acquire in vz__mpmc_dequeue). */
	uint32_t gen;
	uint16_t payload_len;
	uint16_t shard; /* the submitting shard: where the completion goes */
	/* CX(gen, CX_*): the cancellation handshake above. Written by the
	 * canceller (CAS), and by the worker only when it saw a request for
	 * its generation (CAS); read by the worker once per job. 0 (no
	 * generation) at first; a stale generation means nothing. */
	_Atomic uint64_t cancel;
	vz_job_fn fn;
	void *arg;
	uint64_t deadline_ns;
	/* fn gets a pointer to this copy; pool.h promises it VZ_MSG_ALIGN
	 * like a message payload (it would be at offset 56 otherwise; the
	 * record stays 320 bytes either way). */
	alignas(VZ_MSG_ALIGN) unsigned char payload[VZ_POOL_MAX_PAYLOAD];
};
_Static_assert(offsetof(struct job_rec, payload) % VZ_MSG_ALIGN == 0,
	       "job payloads are VZ_MSG_ALIGN-aligned (pool.h)");
_Static_assert(offsetof(struct job_rec, payload) == 64,
	       "everything but the payload shares the record's first line");
_Static_assert(VZ_POOL_MAX_PAYLOAD <= UINT16_MAX && VZ_MAX_SHARDS <= UINT16_MAX + 1,
	       "payload_len and shard fit 16 bits");

/*
 * Completion rings (complete.c). One per (worker, shard): the worker is its
 * only producer, the shard's thread its only consumer, so a completion
 * travels back with plain stores and loads, no read-modify-write:
 *   - the slot's seq is its ready flag: the worker fills the slot, then
 *     stores seq = pos + 1 (release); the shard acquires seq at its own
 *     position and copies the completion into a message of its own;
 *   - the shard stores head (release) once per reap, after copying; the
 *     worker reads it (acquire) only when its cached copy says the ring
 *     is full.
 * A completion of up to DONE_MSG_MAX bytes (vz_pool_done + result) fits a
 * slot; a larger one, or one that finds its ring full, is posted through
 * the set's post function instead (a foreign post, as before the rings).
 */
#define DONE_SLOT_BYTES 128u
#define DONE_MSG_MAX	(DONE_SLOT_BYTES - 16u)
/* done_slot.rec: the job's record, handed back with its completion (the
 * shard frees it: no free-list RMW on the worker). */
#define DONE_REC(pool, idx) (((uint32_t)(pool) << 24) | (idx))
#define DONE_NO_REC	    UINT32_MAX

struct done_slot {
	alignas(64) _Atomic uint32_t seq; /* pos + 1 once filled for pos */
	uint32_t rec;			  /* DONE_REC() or DONE_NO_REC */
	uint64_t owner;			  /* vz_ref of the asking actor */
	/* vz_pool_done, then its result_len result bytes */
	unsigned char msg[DONE_MSG_MAX];
};
_Static_assert(sizeof(struct done_slot) == DONE_SLOT_BYTES, "one slot is two lines");

struct done_ring {
	/* Consumer (shard) side: slots consumed. Written by the shard only. */
	alignas(64) _Atomic uint64_t head;
	/* Producer (worker) side, private to the worker. */
	alignas(64) uint64_t tail;
	uint64_t head_cache; /* last head read; tail - head_cache <= slots */
	/* Completions of this shard's jobs that went through post instead
	 * (ring full, result too large). Written by the worker only; read by
	 * the shard when it goes to sleep (vz__pool_has_done()). */
	_Atomic uint64_t bypassed;
	/* Set once by vz__pools_create_with(). */
	struct done_slot *slot;
	uint32_t mask; /* slots - 1 */
};

struct pool;

struct worker {
	/* Counters: written only by this worker (load + store, no RMW), read
	 * by vz__pool_stats_of() with relaxed loads. */
	alignas(64) _Atomic uint64_t executed;
	_Atomic uint64_t stolen;
	_Atomic uint64_t timed_out;
	_Atomic uint64_t sleeps;
	_Atomic uint64_t post_failures;
	/* Completions that could not take the ring (full, or too large) and
	 * went through the set's post function. */
	_Atomic uint64_t done_posted;
	/* Read-only while the thread runs. */
	alignas(64) struct pool *pool;
	unsigned index;
	int cpu;
	void *stack;		/* VZ_POOL_STACK_BYTES from the pool's node */
	unsigned char *buf;	/* completion being built: header + result */
	struct done_ring *done; /* one ring per shard, indexed by shard */
	pthread_t tid;
	bool running; /* lifecycle thread only */
};

/* Most free records a shard keeps for itself (see shard_line.cache). */
#define RECS_CACHE_MAX 64u

/* Per shard, written only by the shard's thread. */
struct shard_line {
	/* 1 while the shard is inside vz__pool_submit_as() past its stopping
	 * check; vz__pools_stop() waits for 0. */
	alignas(64) atomic_uint busy;
	_Atomic uint64_t submitted;
	_Atomic uint64_t spilled;
	_Atomic uint64_t rejected;
	_Atomic uint64_t wakeups;
	/* Completions taken from the rings, and those the runtime refused
	 * when the shard posted them (counted into post_failures). */
	_Atomic uint64_t reaped;
	_Atomic uint64_t reap_failures;
	/* Jobs of this shard cancelled by vz__pool_cancel_as() (their
	 * completion does not use a ring). */
	_Atomic uint64_t cancels;
	/* Free records of the shard's home pool, handed back over the rings
	 * and kept here for the shard's next submissions (LIFO: the most
	 * recently used first), so neither side touches the pool's free list
	 * in steady state. At most cache_max (RECS_CACHE_MAX, fewer when the
	 * pool's records are few for its shards). Shard thread only. */
	uint32_t ncache, cache_max;
	uint32_t cache[RECS_CACHE_MAX];
};

struct pool {
	struct vz__eventcount ec; /* idle workers of this pool sleep here */
	struct vz__mpmc jobs;	  /* record indices waiting for a worker */
	struct vz__mpmc freeq;	  /* record indices free for submission */
	/* Bumped (RMW) by cancellers, the stopper and stopping workers; rare. */
	alignas(64) _Atomic uint64_t canceled;
	/* Read-only after create. */
	alignas(64) struct vz__pool_set *set;
	struct job_rec *recs;
	struct worker *workers;
	unsigned index;
	int node;
	unsigned nworkers;
	size_t block_bytes; /* the node-local block this struct heads */
};

enum { SET_CREATED, SET_STARTED, SET_STOPPED };

struct vz__pool_set {
	/* Set once by vz__pools_stop(); read by every submission after its
	 * seq_cst fence (see vz__pool_submit_as()). */
	alignas(64) atomic_int stopping;
	/* Set by vz__pools_stop() (and a failed start) once no submission
	 * can still be in flight; workers leave when they see it and their
	 * queue is empty. */
	alignas(64) atomic_int exiting;
	alignas(64) vz_runtime *rt;
	vz__pool_post_fn post;
	struct vz__pool_memops ops;
	int state;		   /* SET_*; under `life` */
	pthread_mutex_t life;	   /* start and stop may be called concurrently */
	struct shard_line *shards; /* plan.nshards lines */
	struct pool *pools[VZ_MAX_NODES];
	/* The store-buffer handshakes' barriers (util/membarrier.h): the
	 * runtime's sleep fence (vz__pools_set_fence()), else the probe's
	 * choice at create. Written before any other thread uses the set,
	 * read-only after (pthread_create orders it for the workers, the
	 * runtime's start for its shards). */
	enum vz__sleep_fence fence;
	/* Set by vz__pools_attach() before the workers start, read-only
	 * after: NULL while completions go through post only. */
	vz__pool_wake_fn wake;
	vz__pool_post_fn deliver; /* on the shard's thread, in vz__pool_reap() */
	/* Shard s's rings, one per worker of every pool: done_of[s *
	 * nworkers_all + k]. The shard's thread walks its row to reap. */
	struct done_ring **done_of;
	unsigned nworkers_all;
	uint32_t done_slots; /* slots per ring, a power of two */
	struct vz__pool_plan plan;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

/* Single-writer counter bump: a load and a store, no locked instruction.
 * Relaxed: readers want a recent value, not an ordering. */
static inline void counter_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint64_t counter_get(const _Atomic uint64_t *c)
{
	return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

static inline vz_job_id make_id(unsigned pool, uint32_t slot, uint32_t gen)
{
	return (vz_job_id){((uint64_t)pool << 56) | ((uint64_t)slot << 32) | gen};
}

static inline size_t align_up(size_t n, size_t a)
{
	return (n + a - 1) & ~(a - 1);
}

/* ---- jobs ---------------------------------------------------------------- */

/*
 * Claim a cell of a queue that has one for every record, so it is never
 * truly full. vz__mpmc_claim() can still refuse for a moment: when the
 * cell it needs belongs to a consumer that has claimed it (moved deq) but
 * not yet released it (stored its seq), which takes that consumer two
 * instructions unless it is preempted between them. Wait for it; yield so a
 * preempted consumer on the same CPU can finish.
 */
static inline struct vz__mpmc_cell *claim_sure(struct vz__mpmc *q, size_t *pos)
{
	struct vz__mpmc_cell *c;

	for (unsigned i = 0; !(c = vz__mpmc_claim(q, pos)); i++) {
		if (i < 64)
			cpu_relax();
		else
			sched_yield();
	}
	return c;
}

static inline void enqueue_sure(struct vz__mpmc *q, uint32_t idx)
{
	size_t pos;
	struct vz__mpmc_cell *c = claim_sure(q, &pos);

	vz__mpmc_publish(c, pos, idx);
}

/* Give record idx of p back to the free list. The caller holds it (it took
 * it from the job queue, or never queued it). */
static inline void free_rec(struct pool *p, uint32_t idx)
{
	struct job_rec *r = &p->recs[idx];

	/* Relaxed: only cancellers read state without holding the record, and
	 * they compare it with a generation this store no longer carries. The
	 * free-list enqueue below is the release that hands the record on. */
	atomic_store_explicit(&r->state, REC_STATE(r->gen, REC_FREE), memory_order_relaxed);
	enqueue_sure(&p->freeq, idx);
}

/* complete.c: post a completion; count a refusal on w (NULL: nobody to
 * count on). */
void vz__pool_post_done(struct vz__pool_set *ps, struct worker *w, uint64_t owner, const void *buf,
			size_t len);

/* complete.c: deliver a completion built in buf from worker w to `shard`:
 * through w's ring to that shard when the set is attached and it fits
 * (handing record idx of pool `from` back with it, freed by the shard),
 * else free the record and post. */
void vz__pool_deliver(struct vz__pool_set *ps, struct worker *w, unsigned shard, uint64_t owner,
		      struct pool *from, uint32_t idx, const void *buf, size_t len);

/* worker.c: complete record idx of `from` (w NULL: the stopping thread,
 * which only cancels), and the worker thread's body. */
void vz__pool_run_job(struct vz__pool_set *ps, struct worker *w, struct pool *from, uint32_t idx);
void *vz__pool_worker_main(void *arg);

/* steal.c: find one job for w, its own pool first. */
bool vz__pool_take(struct vz__pool_set *ps, struct worker *w, struct pool **from, uint32_t *idx);

#endif
