// SPDX-License-Identifier: MIT
/*
 * Worker pools: the lifecycle (create, start, stop, destroy). The other
 * jobs live beside it: submit.c (submit and cancel), worker.c (the worker
 * loop), steal.c (where a worker finds work), complete.c (completion
 * delivery), stats.c (counters). Nothing here knows the runtime core:
 * completions leave through the set's post function, so the pools can be
 * tested with a recorder in place of the runtime. NOTES.md beside this
 * file gives the design; the comments give the orderings.
 */
#include "pool/internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/fault.h"

/* ---- lifecycle -------------------------------------------------------------- */

static void free_pool(struct vz__pool_set *ps, struct pool *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		ps->ops.free(ps->ops.ctx, p->workers[i].stack, VZ_POOL_STACK_BYTES);
	ps->ops.free(ps->ops.ctx, p, p->block_bytes);
}

/* One node-local block: the pool, its workers, both queues' cells, the job
 * records, the workers' completion buffers and completion rings (one per
 * worker and shard, on the worker's node: the worker writes them); plus one
 * stack per worker. The block comes zeroed, which is every ring's empty
 * state (head 0, seq 0). */
static int build_pool(struct vz__pool_set *ps, unsigned index)
{
	const struct vz__pool_plan_pool *pp = &ps->plan.pool[index];
	size_t cap = ps->plan.queue_capacity;
	size_t o_workers = align_up(sizeof(struct pool), 64);
	size_t o_jobs = align_up(o_workers + pp->nworkers * sizeof(struct worker), 64);
	size_t o_free = align_up(o_jobs + vz__mpmc_cells_bytes(cap), 64);
	size_t o_recs = align_up(o_free + vz__mpmc_cells_bytes(cap), 64);
	size_t o_bufs = align_up(o_recs + cap * sizeof(struct job_rec), 64);
	size_t nrings = (size_t)pp->nworkers * ps->plan.nshards;
	size_t o_rings = align_up(o_bufs + pp->nworkers * (size_t)VZ_MSG_MAX_PAYLOAD, 64);
	size_t o_slots = align_up(o_rings + nrings * sizeof(struct done_ring), 64);
	size_t total = o_slots + nrings * ps->done_slots * sizeof(struct done_slot);
	struct done_ring *rings;
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
		atomic_init(&p->recs[i].cancel, 0);
		if (!vz__mpmc_enqueue(&p->freeq, (uint32_t)i))
			abort();
	}
	ps->pools[index] = p;
	rings = (struct done_ring *)(base + o_rings);
	for (size_t i = 0; i < nrings; i++) {
		rings[i].slot = (struct done_slot *)(base + o_slots) + i * ps->done_slots;
		rings[i].mask = ps->done_slots - 1;
	}
	for (unsigned i = 0; i < pp->nworkers; i++) {
		struct worker *w = &p->workers[i];

		w->pool = p;
		w->index = i;
		w->cpu = pp->cpu[i];
		w->buf = base + o_bufs + (size_t)i * VZ_MSG_MAX_PAYLOAD;
		w->done = rings + (size_t)i * ps->plan.nshards;
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

/* Slots per completion ring: 256 (32 KiB: a busy actor's whole window of
 * jobs in flight) while there are at most 128 (worker, shard) pairs,
 * halved as the pairs double, down to 16 (2 KiB), so all rings together
 * stay within 4 MiB up to 2048 pairs. A ring that is full only sends its
 * completion the slower way (a foreign post). */
static uint32_t done_slots_for(size_t pairs)
{
	uint32_t slots = 256;

	while (slots > 16 && pairs * slots > 128u * 256u)
		slots /= 2;
	return slots;
}

int vz__pools_set_fence(struct vz__pool_set *ps, enum vz__sleep_fence fence)
{
	int rc = 0;

	if (!ps || (fence != VZ__SLEEP_FENCE_FENCE && fence != VZ__SLEEP_FENCE_MEMBARRIER))
		return VZ_EINVAL;
	pthread_mutex_lock(&ps->life);
	if (ps->state != SET_CREATED)
		rc = VZ_ESTATE;
	else
		ps->fence = fence; /* plain: see the field (internal.h) */
	pthread_mutex_unlock(&ps->life);
	return rc;
}

int vz__pools_attach(struct vz__pool_set *ps, vz__pool_wake_fn wake, vz__pool_post_fn deliver)
{
	int rc = 0;

	if (!ps || !wake || !deliver)
		return VZ_EINVAL;
	pthread_mutex_lock(&ps->life);
	if (ps->state != SET_CREATED) {
		rc = VZ_ESTATE;
	} else {
		/* Plain: pthread_create orders them for the workers. */
		ps->wake = wake;
		ps->deliver = deliver;
	}
	pthread_mutex_unlock(&ps->life);
	return rc;
}

int vz__pools_create_with(vz_runtime *rt, const struct vz__pool_plan *plan,
			  const struct vz__pool_memops *ops, vz__pool_post_fn post,
			  struct vz__pool_set **out)
{
	struct vz__pool_set *ps;
	enum vz__sleep_fence fence;
	bool fell_back;
	int err = 0;

	if (!plan || !post || !out || plan->npools > VZ_MAX_NODES || plan->nshards > VZ_MAX_SHARDS)
		return VZ_EINVAL;
	/* The handshakes' barriers, before any thread that uses them exists
	 * (a runtime replaces the choice with its own: vz__pools_set_fence()). */
	err = vz__sleep_fence_choose(&fence, NULL, 0, &fell_back);
	if (err < 0)
		return err;
	ps = aligned_alloc(64, align_up(sizeof *ps, 64));
	if (!ps)
		return VZ_ENOMEM;
	memset(ps, 0, sizeof *ps);
	ps->fence = fence;
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
	for (unsigned i = 0; i < plan->npools; i++)
		ps->nworkers_all += plan->pool[i].nworkers;
	ps->done_slots = done_slots_for((size_t)plan->nshards * ps->nworkers_all);
	ps->done_of = malloc(sizeof *ps->done_of * ((size_t)plan->nshards * ps->nworkers_all + 1));
	if (!ps->done_of)
		err = VZ_ENOMEM;
	for (unsigned i = 0; i < plan->npools && err == 0; i++)
		err = build_pool(ps, i);
	if (err) {
		for (unsigned i = 0; i < plan->npools; i++)
			if (ps->pools[i])
				free_pool(ps, ps->pools[i]);
		free(ps->done_of);
		free(ps->shards);
		free(ps);
		return err;
	}
	/* Shard s's row: its ring of every worker, pool by pool; and its
	 * cache of free records, bounded so the pool's shards together keep
	 * at most an eighth of its records (a shard whose cache is empty may
	 * see VZ_EFULL while others hold free records: keep that margin
	 * small). */
	for (unsigned s = 0, k; s < plan->nshards; s++) {
		unsigned homed = 0;

		for (unsigned t = 0; t < plan->nshards; t++)
			homed += plan->shard_pool[t] == plan->shard_pool[s];
		ps->shards[s].cache_max = plan->queue_capacity / 8 / homed;
		if (ps->shards[s].cache_max > RECS_CACHE_MAX)
			ps->shards[s].cache_max = RECS_CACHE_MAX;
		k = 0;
		for (unsigned i = 0; i < plan->npools; i++)
			for (unsigned j = 0; j < ps->pools[i]->nworkers; j++)
				ps->done_of[(size_t)s * ps->nworkers_all + k++] =
				    &ps->pools[i]->workers[j].done[s];
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
		vz__ec_notify(&ps->pools[i]->ec, ps->fence);
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
		rc = pthread_create(&w->tid, &attr, vz__pool_worker_main, w);
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
	/* Dekker with vz__pool_submit_as(): our store of stopping, the heavy
	 * barrier, our loads of every busy below; its store of busy, the light
	 * barrier, its load of stopping (util/membarrier.h: either we see its
	 * busy = 1 and wait, or it sees stopping and refuses). Relaxed store:
	 * the barrier orders it. If membarrier() is refused here (only a
	 * seccomp filter installed after create can do that) the submitters'
	 * compiler barrier orders nothing: known limit, NOTES.md. */
	atomic_store_explicit(&ps->stopping, 1, memory_order_relaxed);
	(void)vz__asym_heavy(ps->fence, &ps->stopping); /* the word submitters read */
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
			vz__pool_run_job(ps, NULL, ps->pools[i], idx);
	ps->state = SET_STOPPED;
	pthread_mutex_unlock(&ps->life);
}

void vz__pools_destroy(struct vz__pool_set *ps)
{
	if (!ps)
		return;
	vz__pools_stop(ps);
	/* Completions still in the rings: their shards stopped without
	 * collecting them (only a start that failed after the workers ran can
	 * leave any). Every thread that touched them is joined, so this
	 * thread may be their consumer now; post (and count) what it takes:
	 * through post, since this is no shard's thread. */
	ps->deliver = ps->post;
	for (unsigned s = 0; s < ps->plan.nshards; s++)
		vz__pool_reap(ps, s, UINT32_MAX);
	for (unsigned i = 0; i < ps->plan.npools; i++)
		free_pool(ps, ps->pools[i]);
	pthread_mutex_destroy(&ps->life);
	free(ps->done_of);
	free(ps->shards);
	free(ps);
}
