// SPDX-License-Identifier: MIT
/*
 * Worker pools: job records, the lock-free submit and cancel paths, the
 * worker loop (take, steal, spin, sleep on the event count), and the
 * lifecycle (create, start, stop, destroy). Nothing here knows the runtime
 * core: completions leave through the set's post function, so this file can
 * be tested with a recorder in place of the runtime. NOTES.md beside this
 * file gives the design; the comments here give the orderings.
 */
#include "pool/pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <veloz/error.h>

#include "pool/eventcount.h"
#include "pool/mpmc.h"
#include "util/clock.h"
#include "util/fault.h"

/* Job record states, in the low two bits of job_rec.state; the generation
 * is above them. */
enum { REC_FREE = 0, REC_QUEUED = 1, REC_RUNNING = 2, REC_CANCELED = 3 };
#define REC_STATE(gen, st) (((uint64_t)(gen) << 2) | (uint64_t)(st))

/* One job, from submission until its worker (or the canceller) is done. */
struct job_rec {
	/* gen << 2 | REC_*. Stored QUEUED (release) by the submitter; moved
	 * QUEUED -> RUNNING by the worker that dequeued it, or QUEUED ->
	 * CANCELED by vz__pool_cancel_as(), each with a CAS so exactly one
	 * of the two wins. */
	alignas(64) _Atomic uint64_t state;
	/* Atomic because the canceller reads them before its CAS while the
	 * record may already be recycled (the CAS then fails). Relaxed: the
	 * acquire load of state orders them for the generation it saw. */
	_Atomic uint64_t owner;
	_Atomic uint64_t tag;
	/* Plain: written by the submitter before it enqueues the index (the
	 * release in vz__mpmc_enqueue) and read by the worker after it
	 * dequeues it (the acquire in vz__mpmc_dequeue). */
	uint32_t gen;
	uint32_t payload_len;
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

struct pool;

struct worker {
	/* Counters: written only by this worker (load + store, no RMW), read
	 * by vz__pool_stats_of() with relaxed loads. */
	alignas(64) _Atomic uint64_t executed;
	_Atomic uint64_t stolen;
	_Atomic uint64_t timed_out;
	_Atomic uint64_t sleeps;
	_Atomic uint64_t post_failures;
	/* Read-only while the thread runs. */
	alignas(64) struct pool *pool;
	unsigned index;
	int cpu;
	void *stack;	    /* VZ_POOL_STACK_BYTES from the pool's node */
	unsigned char *buf; /* completion being built: header + result */
	pthread_t tid;
	bool running; /* lifecycle thread only */
};

/* Per shard, written only by the shard's thread. */
struct shard_line {
	/* 1 while the shard is inside vz__pool_submit_as() past its stopping
	 * check; vz__pools_stop() waits for 0. */
	alignas(64) atomic_uint busy;
	_Atomic uint64_t submitted;
	_Atomic uint64_t spilled;
	_Atomic uint64_t rejected;
	_Atomic uint64_t wakeups;
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

static size_t align_up(size_t n, size_t a)
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
static struct vz__mpmc_cell *claim_sure(struct vz__mpmc *q, size_t *pos)
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

static void enqueue_sure(struct vz__mpmc *q, uint32_t idx)
{
	size_t pos;
	struct vz__mpmc_cell *c = claim_sure(q, &pos);

	vz__mpmc_publish(c, pos, idx);
}

/* Give record idx of p back to the free list. The caller holds it (it took
 * it from the job queue, or never queued it). */
static void free_rec(struct pool *p, uint32_t idx)
{
	struct job_rec *r = &p->recs[idx];

	/* Relaxed: only cancellers read state without holding the record, and
	 * they compare it with a generation this store no longer carries. The
	 * free-list enqueue below is the release that hands the record on. */
	atomic_store_explicit(&r->state, REC_STATE(r->gen, REC_FREE), memory_order_relaxed);
	enqueue_sure(&p->freeq, idx);
}

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
static void post_done(struct vz__pool_set *ps, struct worker *w, uint64_t owner, const void *buf,
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

/* Complete record idx of `from`, taken from its job queue, on worker w (or
 * on the stopping thread when w is NULL, which only cancels). */
static void run_job(struct vz__pool_set *ps, struct worker *w, struct pool *from, uint32_t idx)
{
	struct job_rec *r = &from->recs[idx];
	unsigned char local[sizeof(vz_pool_done)];
	unsigned char *buf = w ? w->buf : local;
	vz_pool_done d;
	size_t rlen = 0;
	uint64_t owner;
	/* Acquire: pairs with the release store of QUEUED in submit (the
	 * dequeue's acquire already covers it; this keeps the CAS honest). */
	uint64_t st = atomic_load_explicit(&r->state, memory_order_acquire);

	if ((st & 3) != REC_QUEUED ||
	    !atomic_compare_exchange_strong_explicit(&r->state, &st, REC_STATE(r->gen, REC_RUNNING),
						     memory_order_acq_rel, memory_order_acquire)) {
		/* Cancelled: the canceller posted its completion already. */
		free_rec(from, idx);
		return;
	}
	owner = atomic_load_explicit(&r->owner, memory_order_relaxed);
	d.job = make_id(from->index, idx, r->gen);
	d.tag = atomic_load_explicit(&r->tag, memory_order_relaxed);
	/* Relaxed: stopping is a state change, not a publication; a job that
	 * starts just before it is seen simply runs. */
	if (!w || atomic_load_explicit(&ps->stopping, memory_order_relaxed)) {
		d.status = VZ_ECANCELED;
		atomic_fetch_add_explicit(&from->canceled, 1, memory_order_relaxed);
	} else if (r->deadline_ns && vz__mono_ns() > r->deadline_ns) {
		d.status = VZ_ETIMEDOUT;
		counter_add(&w->timed_out, 1);
	} else {
		rlen = VZ_POOL_MAX_RESULT;
		d.status = r->fn(r->arg, r->payload, r->payload_len, buf + sizeof d, &rlen);
		if (rlen > VZ_POOL_MAX_RESULT) {
			d.status = VZ_ETOOBIG;
			rlen = 0;
		}
		counter_add(&w->executed, 1);
		if (from != w->pool)
			counter_add(&w->stolen, 1);
	}
	d.result_len = (uint32_t)rlen;
	memcpy(buf, &d, sizeof d);
	/* Free before posting, so an actor that resubmits on seeing the
	 * completion finds the record available. */
	free_rec(from, idx);
	post_done(ps, w, owner, buf, sizeof d + rlen);
}

/* Find one job for w: its own pool first, then the other pools in the
 * precomputed order (nearest node first), but only from a pool whose
 * backlog exceeds its own worker count, so work stays on its node unless
 * that node is behind. */
static bool take(struct vz__pool_set *ps, struct worker *w, struct pool **from, uint32_t *idx)
{
	struct pool *p = w->pool;
	const struct vz__pool_plan_pool *pp = &ps->plan.pool[p->index];

	if (vz__mpmc_dequeue(&p->jobs, idx)) {
		*from = p;
		return true;
	}
	for (unsigned i = 0; i < pp->nsteal; i++) {
		struct pool *q = ps->pools[pp->steal[i]];

		if (vz__mpmc_approx_len(&q->jobs) > q->nworkers &&
		    vz__mpmc_dequeue(&q->jobs, idx)) {
			*from = q;
			return true;
		}
	}
	return false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pool *p = w->pool;
	struct vz__pool_set *ps = p->set;
	bool shared = ps->plan.pool[p->index].shares_shard_cpus;
	struct pool *from;
	uint32_t idx;

	ps->ops.set_preferred(ps->ops.ctx, p->node);
	for (;;) {
		uint64_t until;
		uint32_t key;
		bool found = false;

		if (take(ps, w, &from, &idx)) {
			run_job(ps, w, from, idx);
			continue;
		}
		/* Acquire: pairs with the release store in vz__pools_stop();
		 * everything submitted before it is visible to the take()
		 * below, so leaving only after that take fails loses nothing. */
		if (atomic_load_explicit(&ps->exiting, memory_order_acquire)) {
			if (take(ps, w, &from, &idx)) {
				run_job(ps, w, from, idx);
				continue;
			}
			break;
		}
		/* Poll for a while before sleeping. On a CPU shared with a
		 * shard, yield instead of pausing so the shard keeps running. */
		until = vz__mono_ns() + ps->plan.spin_ns;
		for (unsigned i = 0; ps->plan.spin_ns > 0; i++) {
			if (take(ps, w, &from, &idx)) {
				found = true;
				break;
			}
			if (atomic_load_explicit(&ps->exiting, memory_order_relaxed))
				break;
			if (shared)
				sched_yield();
			else
				cpu_relax();
			if ((i & 15) == 15 && vz__mono_ns() > until)
				break;
		}
		if (found) {
			run_job(ps, w, from, idx);
			continue;
		}
		key = vz__ec_prepare(&p->ec);
		/* Re-check after announcing (the pairing is explained in
		 * eventcount.h): our own queue and the exit flag are the
		 * sources whose wake-up we must not miss. */
		if (vz__mpmc_dequeue(&p->jobs, &idx)) {
			vz__ec_cancel(&p->ec, key);
			run_job(ps, w, p, idx);
			continue;
		}
		if (atomic_load_explicit(&ps->exiting, memory_order_acquire)) {
			vz__ec_cancel(&p->ec, key);
			continue;
		}
		counter_add(&w->sleeps, 1);
		vz__ec_wait(&p->ec, key);
	}
	return NULL;
}

/* ---- submit and cancel ------------------------------------------------------ */

int vz__pool_submit_as(struct vz__pool_set *ps, unsigned shard, vz_ref owner, const vz_job *job,
		       vz_job_id *out)
{
	struct shard_line *sl;
	struct pool *home, *p;
	struct job_rec *r;
	uint32_t idx, gen;

	if (!ps || !job || !job->fn || (job->payload_len > 0 && !job->payload))
		return VZ_EINVAL;
	if (job->payload_len > VZ_POOL_MAX_PAYLOAD)
		return VZ_ETOOBIG;
	if (shard >= ps->plan.nshards)
		return VZ_ENOSHARD;
	if (ps->plan.npools == 0)
		return VZ_ENOSYS;
	sl = &ps->shards[shard];

	/* Dekker with vz__pools_stop(): we store busy, fence, read stopping;
	 * the stopper stores stopping, fences, reads busy. At least one sees
	 * the other, so either we refuse or the stopper waits for us. Relaxed
	 * store + seq_cst fence: pairs with the fence in vz__pools_stop(). */
	atomic_store_explicit(&sl->busy, 1, memory_order_relaxed);
	vz__full_fence_on(&sl->busy); /* the word the stopper reads */
	if (atomic_load_explicit(&ps->stopping, memory_order_relaxed)) {
		atomic_store_explicit(&sl->busy, 0, memory_order_release);
		return VZ_ESTOPPED;
	}

	home = p = ps->pools[ps->plan.shard_pool[shard]];
	if (!vz__mpmc_dequeue(&p->freeq, &idx)) {
		const struct vz__pool_plan_pool *pp = &ps->plan.pool[home->index];

		p = NULL;
		if (ps->plan.overload == VZ_POOL_SPILL) {
			for (unsigned i = 0; i < pp->nsteal && !p; i++) {
				struct pool *q = ps->pools[pp->steal[i]];

				if (vz__mpmc_dequeue(&q->freeq, &idx))
					p = q;
			}
		}
		if (!p) {
			/* Release: pairs with the acquire in vz__pools_stop(). */
			atomic_store_explicit(&sl->busy, 0, memory_order_release);
			counter_add(&sl->rejected, 1);
			return VZ_EFULL;
		}
	}

	r = &p->recs[idx];
	gen = r->gen + 1;
	if (gen == 0)
		gen = 1; /* ids are never 0 */
	r->gen = gen;
	r->fn = job->fn;
	r->arg = job->arg;
	r->deadline_ns = job->deadline_ns;
	r->payload_len = (uint32_t)job->payload_len;
	if (job->payload_len)
		memcpy(r->payload, job->payload, job->payload_len);
	/* Relaxed: published by the release store of state just below. */
	atomic_store_explicit(&r->owner, owner.id, memory_order_relaxed);
	atomic_store_explicit(&r->tag, job->tag, memory_order_relaxed);
	/* Release: pairs with the acquire load of state in
	 * vz__pool_cancel_as(), which then reads owner and tag. */
	atomic_store_explicit(&r->state, REC_STATE(gen, REC_QUEUED), memory_order_release);
	enqueue_sure(&p->jobs, idx);
	/* Release: our enqueue happens before the stopper's wait for busy ==
	 * 0 ends (its acquire load), so workers drain it. */
	atomic_store_explicit(&sl->busy, 0, memory_order_release);

	if (vz__ec_notify(&p->ec))
		counter_add(&sl->wakeups, 1);
	counter_add(&sl->submitted, 1);
	if (p != home)
		counter_add(&sl->spilled, 1);
	if (out)
		*out = make_id(p->index, idx, gen);
	return 0;
}

int vz__pool_cancel_as(struct vz__pool_set *ps, unsigned shard, vz_ref owner, vz_job_id id)
{
	unsigned pi = (unsigned)(id.id >> 56);
	uint32_t slot = (uint32_t)(id.id >> 32) & 0xffffffu;
	uint32_t gen = (uint32_t)id.id;
	struct job_rec *r;
	struct pool *p;
	vz_pool_done d;
	uint64_t st, tag;

	if (!ps || id.id == 0)
		return VZ_EINVAL;
	if (shard >= ps->plan.nshards)
		return VZ_ENOSHARD;
	if (pi >= ps->plan.npools || slot >= ps->plan.queue_capacity || gen == 0)
		return VZ_ENOENT;
	p = ps->pools[pi];
	r = &p->recs[slot];
	/* Acquire: pairs with the release store of QUEUED in submit, making
	 * that generation's owner and tag visible. */
	st = atomic_load_explicit(&r->state, memory_order_acquire);
	if (st != REC_STATE(gen, REC_QUEUED))
		return VZ_ENOENT;
	if (atomic_load_explicit(&r->owner, memory_order_relaxed) != owner.id)
		return VZ_ENOENT;
	tag = atomic_load_explicit(&r->tag, memory_order_relaxed);
	/* The CAS against the worker's QUEUED -> RUNNING: one wins. Success
	 * also proves owner and tag above belonged to this generation (the
	 * record cannot be recycled while it is QUEUED). */
	if (!atomic_compare_exchange_strong_explicit(&r->state, &st, REC_STATE(gen, REC_CANCELED),
						     memory_order_acq_rel, memory_order_relaxed))
		return VZ_ENOENT;
	atomic_fetch_add_explicit(&p->canceled, 1, memory_order_relaxed);
	d.job = id;
	d.tag = tag;
	d.status = VZ_ECANCELED;
	d.result_len = 0;
	/* The record stays in the job queue; the worker that dequeues it sees
	 * CANCELED and only frees it. */
	post_done(ps, NULL, owner.id, &d, sizeof d);
	return 0;
}

/* ---- stats ------------------------------------------------------------------ */

int vz__pool_stats_of(const struct vz__pool_set *ps, unsigned node, vz_pool_stats *out)
{
	const struct pool *p;
	int pi;

	if (!ps || !out)
		return VZ_EINVAL;
	if (node >= VZ_MAX_NODES || (pi = ps->plan.pool_of_node[node]) < 0)
		return VZ_ENOENT;
	p = ps->pools[pi];
	memset(out, 0, sizeof *out);
	out->node = node;
	out->workers = p->nworkers;
	out->queue_capacity = ps->plan.queue_capacity;
	out->queued = (uint32_t)vz__mpmc_approx_len((struct vz__mpmc *)&p->jobs);
	for (unsigned s = 0; s < ps->plan.nshards; s++) {
		const struct shard_line *sl = &ps->shards[s];

		if (ps->plan.shard_pool[s] != (unsigned)pi)
			continue;
		out->submitted += counter_get(&sl->submitted);
		out->spilled += counter_get(&sl->spilled);
		out->rejected += counter_get(&sl->rejected);
		out->submit_wakeups += counter_get(&sl->wakeups);
	}
	for (unsigned i = 0; i < p->nworkers; i++) {
		const struct worker *w = &p->workers[i];

		out->executed += counter_get(&w->executed);
		out->stolen += counter_get(&w->stolen);
		out->timed_out += counter_get(&w->timed_out);
		out->worker_sleeps += counter_get(&w->sleeps);
		out->post_failures += counter_get(&w->post_failures);
	}
	out->canceled = counter_get(&p->canceled);
	return 0;
}

int vz__pool_nodes_of(const struct vz__pool_set *ps, unsigned *nodes, unsigned max)
{
	if (!ps || (!nodes && max > 0))
		return VZ_EINVAL;
	for (unsigned i = 0; i < ps->plan.npools && i < max; i++)
		nodes[i] = (unsigned)ps->plan.pool[i].node;
	return (int)ps->plan.npools;
}

const struct vz__pool_plan *vz__pools_get_plan(const struct vz__pool_set *ps)
{
	return ps ? &ps->plan : NULL;
}

/* ---- lifecycle -------------------------------------------------------------- */

static void free_pool(struct vz__pool_set *ps, struct pool *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		ps->ops.free(ps->ops.ctx, p->workers[i].stack, VZ_POOL_STACK_BYTES);
	ps->ops.free(ps->ops.ctx, p, p->block_bytes);
}

/* One node-local block: the pool, its workers, both queues' cells, the job
 * records and the workers' completion buffers; plus one stack per worker. */
static int build_pool(struct vz__pool_set *ps, unsigned index)
{
	const struct vz__pool_plan_pool *pp = &ps->plan.pool[index];
	size_t cap = ps->plan.queue_capacity;
	size_t o_workers = align_up(sizeof(struct pool), 64);
	size_t o_jobs = align_up(o_workers + pp->nworkers * sizeof(struct worker), 64);
	size_t o_free = align_up(o_jobs + vz__mpmc_cells_bytes(cap), 64);
	size_t o_recs = align_up(o_free + vz__mpmc_cells_bytes(cap), 64);
	size_t o_bufs = align_up(o_recs + cap * sizeof(struct job_rec), 64);
	size_t total = o_bufs + pp->nworkers * (size_t)VZ_MSG_MAX_PAYLOAD;
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *base;
	struct pool *p;

	base = ps->ops.alloc_onnode(ps->ops.ctx, total, pp->node);
	if (!base)
		return VZ_ENOMEM;
	p = (struct pool *)base;
	p->block_bytes = total;
	p->set = ps;
	p->index = index;
	p->node = pp->node;
	p->nworkers = 0; /* counts stacks allocated so far, for free_pool() */
	p->workers = (struct worker *)(base + o_workers);
	p->recs = (struct job_rec *)(base + o_recs);
	vz__ec_init(&p->ec);
	vz__mpmc_init(&p->jobs, (struct vz__mpmc_cell *)(base + o_jobs), cap);
	vz__mpmc_init(&p->freeq, (struct vz__mpmc_cell *)(base + o_free), cap);
	atomic_init(&p->canceled, 0);
	for (size_t i = 0; i < cap; i++) {
		atomic_init(&p->recs[i].state, REC_STATE(0, REC_FREE));
		atomic_init(&p->recs[i].owner, 0);
		atomic_init(&p->recs[i].tag, 0);
		if (!vz__mpmc_enqueue(&p->freeq, (uint32_t)i))
			abort();
	}
	ps->pools[index] = p;
	for (unsigned i = 0; i < pp->nworkers; i++) {
		struct worker *w = &p->workers[i];

		w->pool = p;
		w->index = i;
		w->cpu = pp->cpu[i];
		w->buf = base + o_bufs + (size_t)i * VZ_MSG_MAX_PAYLOAD;
		w->stack = ps->ops.alloc_onnode(ps->ops.ctx, VZ_POOL_STACK_BYTES, pp->node);
		if (!w->stack)
			return VZ_ENOMEM;
		/* A guard page below the stack: an overflow faults instead of
		 * writing over a neighbour. */
		if (page > 0)
			mprotect(w->stack, (size_t)page, PROT_NONE);
		p->nworkers = i + 1;
	}
	return 0;
}

int vz__pools_create_with(vz_runtime *rt, const struct vz__pool_plan *plan,
			  const struct vz__pool_memops *ops, vz__pool_post_fn post,
			  struct vz__pool_set **out)
{
	struct vz__pool_set *ps;
	int err = 0;

	if (!plan || !post || !out || plan->npools > VZ_MAX_NODES || plan->nshards > VZ_MAX_SHARDS)
		return VZ_EINVAL;
	ps = aligned_alloc(64, align_up(sizeof *ps, 64));
	if (!ps)
		return VZ_ENOMEM;
	memset(ps, 0, sizeof *ps);
	atomic_init(&ps->stopping, 0);
	atomic_init(&ps->exiting, 0);
	ps->rt = rt;
	ps->post = post;
	ps->ops = ops ? *ops : vz__pool_default_memops;
	ps->plan = *plan;
	ps->state = SET_CREATED;
	pthread_mutex_init(&ps->life, NULL);
	ps->shards =
	    aligned_alloc(64, align_up(sizeof(struct shard_line) * (plan->nshards + 1), 64));
	if (!ps->shards) {
		free(ps);
		return VZ_ENOMEM;
	}
	memset(ps->shards, 0, sizeof(struct shard_line) * (plan->nshards + 1));
	for (unsigned i = 0; i < plan->npools && err == 0; i++)
		err = build_pool(ps, i);
	if (err) {
		for (unsigned i = 0; i < plan->npools; i++)
			if (ps->pools[i])
				free_pool(ps, ps->pools[i]);
		free(ps->shards);
		free(ps);
		return err;
	}
	*out = ps;
	return 0;
}

/* Tell every worker to leave and join those running. Only once no
 * submission can be in flight (or none was ever possible). */
static void join_workers(struct vz__pool_set *ps)
{
	/* Release: pairs with the acquire loads in worker_main(); everything
	 * enqueued before this store is drained before a worker leaves. */
	atomic_store_explicit(&ps->exiting, 1, memory_order_release);
	for (unsigned i = 0; i < ps->plan.npools; i++)
		vz__ec_notify(&ps->pools[i]->ec);
	for (unsigned i = 0; i < ps->plan.npools; i++) {
		struct pool *p = ps->pools[i];

		for (unsigned j = 0; j < p->nworkers; j++) {
			if (p->workers[j].running) {
				pthread_join(p->workers[j].tid, NULL);
				p->workers[j].running = false;
			}
		}
	}
}

static int start_worker(struct worker *w)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t guard = page > 0 ? (size_t)page : 0;
	pthread_attr_t attr;
	cpu_set_t cpus;
	char name[16];
	int rc;

	if (VZ_FAULT(VZ_FAULT_THREAD_START))
		return VZ_EIO;
	if (pthread_attr_init(&attr) != 0)
		return VZ_EIO;
	rc = pthread_attr_setstack(&attr, (unsigned char *)w->stack + guard,
				   VZ_POOL_STACK_BYTES - guard);
	if (rc == 0 && w->cpu >= 0 && w->cpu < CPU_SETSIZE) {
		CPU_ZERO(&cpus);
		CPU_SET(w->cpu, &cpus);
		rc = pthread_attr_setaffinity_np(&attr, sizeof cpus, &cpus);
	}
	if (rc == 0)
		rc = pthread_create(&w->tid, &attr, worker_main, w);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		return VZ_EIO;
	w->running = true;
	snprintf(name, sizeof name, "vz-pool%d.%u", w->pool->node, w->index);
	pthread_setname_np(w->tid, name);
	return 0;
}

int vz__pools_start(struct vz__pool_set *ps)
{
	int rc = 0;

	if (!ps)
		return VZ_EINVAL;
	pthread_mutex_lock(&ps->life);
	if (ps->state != SET_CREATED) {
		pthread_mutex_unlock(&ps->life);
		return VZ_ESTATE;
	}
	/* Relaxed: no worker runs yet; pthread_create orders it for them. */
	atomic_store_explicit(&ps->exiting, 0, memory_order_relaxed);
	for (unsigned i = 0; i < ps->plan.npools && rc == 0; i++) {
		struct pool *p = ps->pools[i];

		for (unsigned j = 0; j < p->nworkers && rc == 0; j++)
			rc = start_worker(&p->workers[j]);
	}
	if (rc != 0) {
		/* Leave nothing running. Jobs already queued stay queued for a
		 * later start (or stop's drain). */
		join_workers(ps);
		atomic_store_explicit(&ps->exiting, 0, memory_order_relaxed);
	} else {
		ps->state = SET_STARTED;
	}
	pthread_mutex_unlock(&ps->life);
	return rc != 0 ? VZ_EIO : 0;
}

void vz__pools_stop(struct vz__pool_set *ps)
{
	uint32_t idx;

	if (!ps)
		return;
	/* Two threads may stop the runtime at once; the second waits here
	 * until the first is done, then finds the set stopped. */
	pthread_mutex_lock(&ps->life);
	if (ps->state == SET_STOPPED) {
		pthread_mutex_unlock(&ps->life);
		return;
	}
	/* Dekker with vz__pool_submit_as(): pairs with its seq_cst fence. */
	atomic_store_explicit(&ps->stopping, 1, memory_order_relaxed);
	vz__full_fence_on(&ps->stopping); /* the word submitters read */
	for (unsigned s = 0; s < ps->plan.nshards; s++) {
		/* Acquire: pairs with the release stores of busy = 0 in submit;
		 * that submission's enqueue is visible to us after this. */
		while (atomic_load_explicit(&ps->shards[s].busy, memory_order_acquire))
			sched_yield();
	}
	/* No submission can enqueue any more. Workers cancel what is queued
	 * (run_job() sees stopping), finish what runs, and leave. */
	join_workers(ps);
	/* A set that never started (or lost its workers to a failed start)
	 * still owes a completion for each queued job. */
	for (unsigned i = 0; i < ps->plan.npools; i++)
		while (vz__mpmc_dequeue(&ps->pools[i]->jobs, &idx))
			run_job(ps, NULL, ps->pools[i], idx);
	ps->state = SET_STOPPED;
	pthread_mutex_unlock(&ps->life);
}

void vz__pools_destroy(struct vz__pool_set *ps)
{
	if (!ps)
		return;
	vz__pools_stop(ps);
	for (unsigned i = 0; i < ps->plan.npools; i++)
		free_pool(ps, ps->pools[i]);
	pthread_mutex_destroy(&ps->life);
	free(ps->shards);
	free(ps);
}
