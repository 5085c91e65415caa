// SPDX-License-Identifier: MIT
/*
 * Worker pool behaviour: submit and complete, results, argument errors,
 * VZ_EFULL under REJECT, spilling to the other node under SPILL, stealing
 * from a backlogged node, cancel before start, deadlines, stop (queued jobs
 * cancelled, running ones finish, later submits refused), a failed start
 * leaving nothing running (fault point VZ_FAULT_THREAD_START), and the
 * event count's promise: no FUTEX_WAKE while no worker sleeps, one when a
 * worker does. Most of these record completions with a stand-in for the
 * runtime's post function (no shard involved); the end-to-end tests at the
 * bottom run a real runtime (on each backend): an actor submits and gets its
 * VZ_MSG_POOL_DONE, cancels, meets VZ_EFULL, and a completion for an actor
 * that stopped meanwhile is dead-lettered.
 *
 * VZ_TEST_SLEEP_FENCES: also under VZ_SLEEP_FENCE=fence (the handshakes'
 * symmetric fallback, util/membarrier.h).
 */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool.h"
#include "topo/topo.h"
#include "util/fault.h"

/* ---- the stand-in runtime: records every completion ------------------------ */

#define MAX_DONE 4096

struct done_rec {
	uint64_t owner;
	uint32_t type;
	vz_pool_done d;
	unsigned char result[64];
};

struct recorder {
	pthread_mutex_t lock;
	unsigned n;
	struct done_rec rec[MAX_DONE];
	int refuse; /* post returns this when nonzero */
};

static int record_post(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	struct recorder *r = (struct recorder *)(void *)rt;
	struct done_rec *d;

	assert_true(len >= sizeof(vz_pool_done));
	pthread_mutex_lock(&r->lock);
	if (r->refuse) {
		pthread_mutex_unlock(&r->lock);
		return r->refuse;
	}
	assert_true(r->n < MAX_DONE);
	d = &r->rec[r->n];
	d->owner = to.id;
	d->type = type;
	memcpy(&d->d, payload, sizeof d->d);
	assert_int_equal(d->d.result_len, len - sizeof d->d);
	memcpy(d->result, (const unsigned char *)payload + sizeof d->d,
	       d->d.result_len < sizeof d->result ? d->d.result_len : sizeof d->result);
	r->n++;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static unsigned done_count(struct recorder *r)
{
	pthread_mutex_lock(&r->lock);
	unsigned n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Wait (bounded by the watchdog) until at least n completions arrived. */
static void wait_done(struct recorder *r, unsigned n)
{
	while (done_count(r) < n)
		sched_yield();
}

static const struct done_rec *find_done(struct recorder *r, vz_job_id id)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->rec[i].d.job.id == id.id)
			return &r->rec[i];
	return NULL;
}

/* ---- jobs ------------------------------------------------------------------ */

static atomic_int ran; /* jobs whose function ran */

/* Result: the sum of the payload's two uint32_t, and arg echoed. */
static int add_job(void *arg, const void *payload, size_t len, void *result, size_t *result_len)
{
	uint32_t v[2];

	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
	assert_int_equal(len, sizeof v);
	memcpy(v, payload, sizeof v);
	v[0] += v[1];
	v[1] = (uint32_t)(uintptr_t)arg;
	assert_true(*result_len >= sizeof v);
	memcpy(result, v, sizeof v);
	*result_len = sizeof v;
	return 7;
}

/* Blocks until its gate opens; marks that it started. */
struct gate {
	atomic_int started;
	atomic_int open;
};

static int gate_job(void *arg, const void *payload, size_t len, void *result, size_t *result_len)
{
	struct gate *g = arg;

	(void)payload, (void)len, (void)result;
	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
	/* Release/acquire: the test reads `started` to know a worker holds
	 * this job; it opens the gate after its own checks. */
	atomic_fetch_add_explicit(&g->started, 1, memory_order_release);
	while (!atomic_load_explicit(&g->open, memory_order_acquire))
		sched_yield();
	*result_len = 0;
	return 0;
}

static int big_job(void *arg, const void *payload, size_t len, void *result, size_t *result_len)
{
	(void)arg, (void)payload, (void)len, (void)result;
	*result_len = VZ_POOL_MAX_RESULT + 1;
	return 0;
}

static int nop_job(void *arg, const void *payload, size_t len, void *result, size_t *result_len)
{
	(void)arg, (void)payload, (void)len, (void)result;
	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
	*result_len = 0;
	return 0;
}

/* ---- fixture --------------------------------------------------------------- */

struct fx {
	struct recorder *rec;
	struct vz__pool_set *ps;
	struct vz__pool_plan plan;
};

/* A pool set on a declared topology of `nnodes` nodes over this process's
 * first CPUs, shard s on node s % nnodes (unpinned shards would all be on
 * node 0; here shards are given the node's CPU). */
static void fx_make(struct fx *f, unsigned nnodes, unsigned workers, uint32_t cap,
		    vz_pool_overload ov, unsigned nshards, uint32_t spin_ns)
{
	struct vz__topology t;
	vz_config cfg;
	cpu_set_t mine;
	int real[2] = {-1, -1}, n = 0;
	int shard_cpus[VZ_MAX_SHARDS];

	memset(f, 0, sizeof *f);
	f->rec = calloc(1, sizeof *f->rec);
	assert_non_null(f->rec);
	pthread_mutex_init(&f->rec->lock, NULL);
	assert_int_equal(sched_getaffinity(0, sizeof mine, &mine), 0);
	for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &mine))
			real[n++] = c;
	if (n < 2)
		real[1] = real[0]; /* one CPU: both nodes name it (placement only) */
	memset(&cfg, 0, sizeof cfg);
	cfg.topology.nnodes = nnodes;
	for (unsigned i = 0; i < nnodes; i++)
		vz_cpuset_set(&cfg.topology.node_cpus[i], (unsigned)real[i]);
	for (unsigned s = 0; s < nshards; s++)
		shard_cpus[s] = real[s % nnodes];
	cfg.pool.workers_per_node = workers;
	cfg.pool.queue_capacity = cap;
	cfg.pool.overload = ov;
	cfg.pool.share_shard_cpus = true;
	assert_int_equal(vz__topo_for_config(&cfg, &t), 0);
	assert_int_equal(vz__pools_plan(&cfg.pool, &t, shard_cpus, nshards, NULL, &f->plan), 0);
	assert_int_equal(f->plan.npools, nnodes);
	f->plan.spin_ns = spin_ns;
	assert_int_equal(vz__pools_create_with((vz_runtime *)(void *)f->rec, &f->plan, NULL,
					       record_post, &f->ps),
			 0);
	atomic_store(&ran, 0);
}

static void fx_free(struct fx *f)
{
	vz__pools_destroy(f->ps);
	pthread_mutex_destroy(&f->rec->lock);
	free(f->rec);
}

static vz_ref ref_of(unsigned shard)
{
	return (vz_ref){((uint64_t)shard << 56) | (0x100 + shard)};
}

static int submit_add(struct fx *f, unsigned shard, uint32_t a, uint32_t b, uint64_t tag,
		      vz_job_id *id)
{
	uint32_t v[2] = {a, b};
	vz_job job = {.fn = add_job,
		      .arg = (void *)(uintptr_t)(a ^ b),
		      .payload = v,
		      .payload_len = sizeof v,
		      .tag = tag};

	return vz__pool_submit_as(f->ps, shard, ref_of(shard), &job, id);
}

static int submit_gate(struct fx *f, unsigned shard, struct gate *g, vz_job_id *id)
{
	vz_job job = {.fn = gate_job, .arg = g, .tag = 999};

	return vz__pool_submit_as(f->ps, shard, ref_of(shard), &job, id);
}

static void wait_started(struct gate *g, int n)
{
	while (atomic_load_explicit(&g->started, memory_order_acquire) < n)
		sched_yield();
}

static vz_pool_stats stats(struct fx *f, unsigned node)
{
	vz_pool_stats s;

	assert_int_equal(vz__pool_stats_of(f->ps, node, &s), 0);
	return s;
}

/* Worker threads of any pool set in this process (they are named
 * "vz-pool<node>.<index>"). */
static int pool_thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[300], name[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* exited meanwhile */
		if (fgets(name, sizeof name, f) && strncmp(name, "vz-pool", 7) == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Wait until exactly n pool workers exist. A joined thread can stay listed
 * in /proc for a moment after pthread_join() returns, so poll; a worker
 * that really keeps running makes this hang and the watchdog fail the
 * test. */
static void expect_workers(int n)
{
	while (pool_thread_count() != n)
		sched_yield();
}

/* ---- tests ----------------------------------------------------------------- */

static void test_submit_complete(void **state)
{
	struct fx f;
	vz_job_id ids[200];

	(void)state;
	fx_make(&f, 1, 2, 64, VZ_POOL_REJECT, 1, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	for (unsigned i = 0; i < 200; i++) {
		int rc;

		/* 64 records: when all are in flight, wait for some back. */
		while ((rc = submit_add(&f, 0, i, 1000, 5000 + i, &ids[i])) == VZ_EFULL)
			sched_yield();
		assert_int_equal(rc, 0);
		assert_true(ids[i].id != 0);
	}
	wait_done(f.rec, 200);
	vz__pools_stop(f.ps);
	assert_int_equal(f.rec->n, 200);
	for (unsigned i = 0; i < 200; i++) {
		const struct done_rec *d = find_done(f.rec, ids[i]);
		uint32_t v[2];

		/* ids of records in flight at once are distinct; a recycled
		 * record gets a new generation, so every id is unique */
		assert_non_null(d);
		assert_int_equal(d->owner, ref_of(0).id);
		assert_int_equal(d->type, VZ_MSG_POOL_DONE);
		assert_int_equal(d->d.tag, 5000 + i);
		assert_int_equal(d->d.status, 7);
		assert_int_equal(d->d.result_len, 8);
		memcpy(v, d->result, sizeof v);
		assert_int_equal(v[0], i + 1000);
		assert_int_equal(v[1], i ^ 1000);
	}
	{
		vz_pool_stats s = stats(&f, 0);

		assert_int_equal(s.submitted, 200);
		assert_int_equal(s.executed, 200);
		assert_int_equal(s.workers, 2);
		assert_int_equal(s.queue_capacity, 64);
		assert_int_equal(s.queued, 0);
		assert_int_equal(s.spilled, 0);
		assert_int_equal(s.canceled, 0);
	}
	fx_free(&f);
}

/* ---- completion rings (vz__pools_attach) ------------------------------------ */

static atomic_int ring_wakes;	  /* wake() calls: one per ring publish */
static atomic_int ring_delivered; /* deliver() calls */
static pthread_t ring_reaper;	  /* the thread that must call deliver() */
static atomic_int ring_wrong_thread;

static void ring_wake(vz_runtime *rt, unsigned shard)
{
	(void)rt;
	assert_int_equal(shard, 0);
	atomic_fetch_add_explicit(&ring_wakes, 1, memory_order_relaxed);
}

static int ring_deliver(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	if (!pthread_equal(pthread_self(), ring_reaper))
		atomic_store(&ring_wrong_thread, 1);
	atomic_fetch_add_explicit(&ring_delivered, 1, memory_order_relaxed);
	return record_post(rt, to, type, payload, len);
}

/* 100 result bytes: more than a ring slot carries (88). */
static int ring_big_job(void *arg, const void *payload, size_t len, void *result,
			size_t *result_len)
{
	(void)arg, (void)payload, (void)len;
	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
	memset(result, 0x5a, 100);
	*result_len = 100;
	return 0;
}

/* Completions of an attached set come back over the worker's ring to the
 * submitting shard and are delivered by vz__pool_reap() on the reaping
 * thread; a full ring and a large result fall back to post on the worker;
 * the records come back with the ring's completions into the shard's
 * cache (the next submission reuses the last one handed back). */
static void test_ring_completions(void **state)
{
	struct fx f;
	vz_job_id ids[300], big, next;
	vz_job bj = {.fn = ring_big_job, .tag = 77};
	const struct done_rec *d;
	unsigned posted;

	(void)state;
	atomic_store(&ring_wakes, 0);
	atomic_store(&ring_delivered, 0);
	atomic_store(&ring_wrong_thread, 0);
	ring_reaper = pthread_self();
	fx_make(&f, 1, 1, 1024, VZ_POOL_REJECT, 1, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_attach(NULL, ring_wake, ring_deliver), VZ_EINVAL);
	assert_int_equal(vz__pools_attach(f.ps, NULL, ring_deliver), VZ_EINVAL);
	assert_int_equal(vz__pools_attach(f.ps, ring_wake, ring_deliver), 0);
	assert_false(vz__pool_has_done(f.ps, 0));
	assert_int_equal(vz__pool_reap(f.ps, 0, 1000), 0);
	assert_int_equal(vz__pools_start(f.ps), 0);
	assert_int_equal(vz__pools_attach(f.ps, ring_wake, ring_deliver), VZ_ESTATE);
	for (unsigned i = 0; i < 300; i++)
		assert_int_equal(submit_add(&f, 0, i, 3, i, &ids[i]), 0);
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), &bj, &big), 0);
	/* Nobody reaps yet: 256 fill the ring (256 slots for one worker and
	 * one shard), the other 44 and the large one are posted. */
	while (atomic_load(&ran) < 301)
		sched_yield();
	wait_done(f.rec, 45);
	posted = done_count(f.rec);
	assert_int_equal(posted, 45);
	assert_int_equal(atomic_load(&ring_wakes), 256);
	assert_int_equal(atomic_load(&ring_delivered), 0);
	assert_true(vz__pool_has_done(f.ps, 0));
	assert_true(vz__pool_has_done(f.ps, 0)); /* only looks */
	assert_int_equal(vz__pool_reap(f.ps, 0, 100), 100);
	assert_int_equal(vz__pool_reap(f.ps, 0, 1000), 156);
	assert_false(vz__pool_has_done(f.ps, 0));
	assert_int_equal(vz__pool_reap(f.ps, 0, 1000), 0);
	assert_int_equal(atomic_load(&ring_delivered), 256);
	assert_int_equal(atomic_load(&ring_wrong_thread), 0);
	/* Ring completions came first (ids[0..255]) in order. The 64th one
	 * handed back filled the cache (64 records); the next submission takes
	 * the record on top. */
	assert_int_equal(f.rec->rec[posted + 63].d.job.id, ids[63].id);
	assert_int_equal(submit_add(&f, 0, 1, 2, 999, &next), 0);
	assert_int_equal((next.id >> 32) & 0xffffff, (ids[63].id >> 32) & 0xffffff);
	assert_true(next.id != ids[63].id); /* a new generation */
	/* Its function ran before the worker publishes: collect until it
	 * is there (bounded by the watchdog). */
	for (unsigned got = 0; got == 0;) {
		got = vz__pool_reap(f.ps, 0, 1000);
		assert_true(got <= 1);
		if (!got)
			sched_yield();
	}
	vz__pools_stop(f.ps);
	/* Exactly once each, with the right result. */
	assert_int_equal(done_count(f.rec), 302);
	for (unsigned i = 0; i < 300; i++) {
		uint32_t v[2];

		d = find_done(f.rec, ids[i]);
		assert_non_null(d);
		assert_int_equal(d->d.tag, i);
		assert_int_equal(d->d.status, 7);
		memcpy(v, d->result, sizeof v);
		assert_int_equal(v[0], i + 3);
	}
	d = find_done(f.rec, big);
	assert_non_null(d);
	assert_int_equal(d->d.status, 0);
	assert_int_equal(d->d.result_len, 100);
	assert_int_equal(d->result[0], 0x5a);
	{
		vz_pool_stats s = stats(&f, 0);

		assert_int_equal(s.submitted, 302);
		assert_int_equal(s.executed, 302);
		assert_int_equal(s.post_failures, 0);
	}
	fx_free(&f);
}

static void test_bad_arguments(void **state)
{
	struct fx f;
	unsigned char big[VZ_POOL_MAX_PAYLOAD + 1] = {0};
	vz_job job = {.fn = nop_job};
	vz_job_id id = {0};
	vz_pool_stats s;
	unsigned nodes[4];

	(void)state;
	fx_make(&f, 1, 1, 16, VZ_POOL_REJECT, 2, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pool_submit_as(NULL, 0, ref_of(0), &job, &id), VZ_EINVAL);
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), NULL, &id), VZ_EINVAL);
	job.fn = NULL;
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), &job, &id), VZ_EINVAL);
	job.fn = nop_job;
	job.payload_len = 4; /* NULL payload */
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), &job, &id), VZ_EINVAL);
	job.payload = big;
	job.payload_len = sizeof big;
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), &job, &id), VZ_ETOOBIG);
	job.payload_len = VZ_POOL_MAX_PAYLOAD;
	assert_int_equal(vz__pool_submit_as(f.ps, 2, ref_of(2), &job, &id), VZ_ENOSHARD);
	assert_int_equal(id.id, 0); /* nothing stored on failure */
	assert_int_equal(vz__pool_cancel_as(f.ps, 0, ref_of(0), (vz_job_id){0}), VZ_EINVAL);
	assert_int_equal(vz__pool_cancel_as(f.ps, 0, ref_of(0), (vz_job_id){12345}), VZ_ENOENT);
	assert_int_equal(vz__pool_cancel_as(f.ps, 0, ref_of(0), (vz_job_id){~0ull}), VZ_ENOENT);
	assert_int_equal(vz__pool_stats_of(f.ps, 1, &s), VZ_ENOENT);
	assert_int_equal(vz__pool_stats_of(f.ps, 0, NULL), VZ_EINVAL);
	assert_int_equal(vz__pool_nodes_of(f.ps, nodes, 4), 1);
	assert_int_equal(nodes[0], 0);
	assert_int_equal(vz__pool_nodes_of(f.ps, NULL, 0), 1);
	assert_int_equal(vz__pool_nodes_of(f.ps, NULL, 1), VZ_EINVAL);
	/* Accepted before start: runs once workers start. */
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), &job, &id), 0);
	assert_int_equal(vz__pools_start(f.ps), 0);
	assert_int_equal(vz__pools_start(f.ps), VZ_ESTATE);
	wait_done(f.rec, 1);
	assert_int_equal(f.rec->rec[0].d.status, 0);
	assert_int_equal(atomic_load(&ran), 1);
	fx_free(&f);
}

/* fn claiming more result than fits: status VZ_ETOOBIG, no bytes. */
static void test_result_too_big(void **state)
{
	struct fx f;
	vz_job job = {.fn = big_job, .tag = 3};
	vz_job_id id;

	(void)state;
	fx_make(&f, 1, 1, 16, VZ_POOL_REJECT, 1, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), &job, &id), 0);
	wait_done(f.rec, 1);
	assert_int_equal(f.rec->rec[0].d.status, VZ_ETOOBIG);
	assert_int_equal(f.rec->rec[0].d.result_len, 0);
	assert_int_equal(f.rec->rec[0].d.tag, 3);
	fx_free(&f);
}

/* REJECT: the pool holds `capacity` jobs (running ones included); one more
 * is refused with VZ_EFULL, counted, and changes nothing. No worker sleeps
 * while the only worker runs the gate job, so none of these submissions
 * makes a system call. */
static void test_full_reject_no_syscall_when_busy(void **state)
{
	struct fx f;
	struct gate g = {0};
	vz_job_id id[4], extra = {0};
	vz_pool_stats s;

	(void)state;
	fx_make(&f, 1, 1, 4, VZ_POOL_REJECT, 1, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	assert_int_equal(submit_gate(&f, 0, &g, &id[0]), 0);
	wait_started(&g, 1); /* the only worker is busy now */
	s = stats(&f, 0);
	uint64_t wakes_before = s.submit_wakeups;
	for (unsigned i = 1; i < 4; i++)
		assert_int_equal(submit_add(&f, 0, i, i, i, &id[i]), 0);
	assert_int_equal(submit_add(&f, 0, 9, 9, 9, &extra), VZ_EFULL);
	assert_int_equal(extra.id, 0);
	s = stats(&f, 0);
	assert_int_equal(s.rejected, 1);
	assert_int_equal(s.submitted, 4);
	assert_int_equal(s.queued, 3);
	assert_int_equal(s.submit_wakeups, wakes_before); /* busy worker: no FUTEX_WAKE */
	atomic_store_explicit(&g.open, 1, memory_order_release);
	wait_done(f.rec, 4);
	/* a slot is free again */
	assert_int_equal(submit_add(&f, 0, 1, 2, 3, &extra), 0);
	wait_done(f.rec, 5);
	fx_free(&f);
}

/* A sleeping worker costs exactly one FUTEX_WAKE per submission that finds
 * it asleep. */
static void test_wake_sleeping_worker(void **state)
{
	struct fx f;
	vz_job_id id;
	vz_pool_stats s;

	(void)state;
	fx_make(&f, 1, 1, 16, VZ_POOL_REJECT, 1, 0);
	assert_int_equal(vz__pools_start(f.ps), 0);
	/* The worker finds nothing and sleeps: worker_sleeps is bumped just
	 * before its futex wait, after it announced itself as a waiter, and
	 * nothing else can wake it. */
	do {
		sched_yield();
		s = stats(&f, 0);
	} while (s.worker_sleeps < 1);
	assert_int_equal(s.submit_wakeups, 0);
	assert_int_equal(submit_add(&f, 0, 1, 1, 1, &id), 0);
	s = stats(&f, 0);
	assert_int_equal(s.submit_wakeups, 1);
	wait_done(f.rec, 1);
	fx_free(&f);
}

/* SPILL: with node 0's pool full, node 0's shard spills to node 1; when
 * both are full, VZ_EFULL. */
static void test_spill_to_other_node(void **state)
{
	struct fx f;
	struct gate g = {0};
	vz_job_id id[4], extra;
	vz_pool_stats s0, s1;

	(void)state;
	fx_make(&f, 2, 1, 2, VZ_POOL_SPILL, 2, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(submit_gate(&f, 0, &g, &id[i]), 0);
	/* ids name their pool in the top byte: two on node 0, two spilled */
	assert_int_equal(id[0].id >> 56, 0);
	assert_int_equal(id[1].id >> 56, 0);
	assert_int_equal(id[2].id >> 56, 1);
	assert_int_equal(id[3].id >> 56, 1);
	assert_int_equal(submit_gate(&f, 0, &g, &extra), VZ_EFULL);
	s0 = stats(&f, 0);
	s1 = stats(&f, 1);
	assert_int_equal(s0.submitted, 4);
	assert_int_equal(s0.spilled, 2);
	assert_int_equal(s0.rejected, 1);
	assert_int_equal(s1.submitted, 0); /* counted for the submitting shard's node */
	/* node 1's own shard is refused too: its pool is full */
	assert_int_equal(submit_gate(&f, 1, &g, &extra), VZ_EFULL);
	atomic_store_explicit(&g.open, 1, memory_order_release);
	wait_done(f.rec, 4);
	vz__pools_stop(f.ps);
	for (unsigned i = 0; i < 4; i++) {
		const struct done_rec *d = find_done(f.rec, id[i]);

		assert_non_null(d);
		assert_int_equal(d->owner, ref_of(0).id);
		assert_int_equal(d->d.status, 0);
	}
	s0 = stats(&f, 0);
	s1 = stats(&f, 1);
	assert_int_equal(s0.executed + s1.executed, 4);
	fx_free(&f);
}

/* REJECT never spills. */
static void test_reject_does_not_spill(void **state)
{
	struct fx f;
	struct gate g = {0};
	vz_job_id id[2], extra;

	(void)state;
	fx_make(&f, 2, 1, 2, VZ_POOL_REJECT, 2, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	assert_int_equal(submit_gate(&f, 0, &g, &id[0]), 0);
	assert_int_equal(submit_gate(&f, 0, &g, &id[1]), 0);
	assert_int_equal(submit_gate(&f, 0, &g, &extra), VZ_EFULL);
	assert_int_equal(stats(&f, 0).spilled, 0);
	atomic_store_explicit(&g.open, 1, memory_order_release);
	wait_done(f.rec, 2);
	fx_free(&f);
}

/* An awake worker of node 1 takes jobs from node 0's queue when node 0 is
 * backlogged (more queued than node 0 has workers). */
static void test_steal_from_backlogged_node(void **state)
{
	struct fx f;
	struct gate g = {0};
	vz_job_id id;
	unsigned sent1 = 0;

	(void)state;
	fx_make(&f, 2, 1, 64, VZ_POOL_REJECT, 2, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	assert_int_equal(submit_gate(&f, 0, &g, &id), 0);
	wait_started(&g, 1);
	for (unsigned i = 0; i < 8; i++)
		assert_int_equal(submit_add(&f, 0, i, 0, i, &id), 0);
	/* Keep node 1's worker awake with its own jobs until it has stolen
	 * one (bounded by the watchdog, not by a timer). */
	while (stats(&f, 1).stolen == 0) {
		if (submit_add(&f, 1, 0, 0, 0, &id) == 0)
			sent1++;
		while (done_count(f.rec) < sent1 && stats(&f, 1).stolen == 0)
			sched_yield();
	}
	assert_true(stats(&f, 1).stolen >= 1);
	assert_int_equal(stats(&f, 0).stolen, 0);
	atomic_store_explicit(&g.open, 1, memory_order_release);
	wait_done(f.rec, 1 + 8 + sent1);
	fx_free(&f);
}

/* Cancel before start: completion ECANCELED at once, fn never runs; a
 * running job, a finished one, another actor's job and a second cancel get
 * VZ_ENOENT. */
static void test_cancel(void **state)
{
	struct fx f;
	struct gate g = {0};
	vz_job_id a, b, c;

	(void)state;
	fx_make(&f, 1, 1, 16, VZ_POOL_REJECT, 2, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	assert_int_equal(submit_gate(&f, 0, &g, &a), 0);
	wait_started(&g, 1);
	assert_int_equal(submit_add(&f, 0, 1, 2, 77, &b), 0);
	assert_int_equal(submit_add(&f, 1, 1, 2, 78, &c), 0);
	assert_int_equal(vz__pool_cancel_as(f.ps, 0, ref_of(0), a), VZ_ENOENT); /* running */
	assert_int_equal(vz__pool_cancel_as(f.ps, 0, ref_of(0), c), VZ_ENOENT); /* not ours */
	assert_int_equal(vz__pool_cancel_as(f.ps, 0, ref_of(0), b), 0);
	assert_int_equal(done_count(f.rec), 1); /* posted by cancel itself */
	assert_int_equal(f.rec->rec[0].d.job.id, b.id);
	assert_int_equal(f.rec->rec[0].d.status, VZ_ECANCELED);
	assert_int_equal(f.rec->rec[0].d.tag, 77);
	assert_int_equal(f.rec->rec[0].owner, ref_of(0).id);
	assert_int_equal(vz__pool_cancel_as(f.ps, 0, ref_of(0), b), VZ_ENOENT); /* twice */
	atomic_store_explicit(&g.open, 1, memory_order_release);
	wait_done(f.rec, 3);
	assert_int_equal(vz__pool_cancel_as(f.ps, 1, ref_of(1), c), VZ_ENOENT); /* finished */
	assert_int_equal(find_done(f.rec, a)->d.status, 0);
	assert_int_equal(find_done(f.rec, c)->d.status, 7);
	assert_int_equal(atomic_load(&ran), 2); /* a and c; b never ran */
	assert_int_equal(stats(&f, 0).canceled, 1);
	/* The cancelled record is reused once the worker skipped it: all 16
	 * slots are available again. */
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(submit_gate(&f, 0, &g, &a), 0);
	wait_done(f.rec, 3 + 16);
	fx_free(&f);
}

/* A deadline already passed: VZ_ETIMEDOUT without running; a far one runs. */
static void test_deadline(void **state)
{
	struct fx f;
	vz_job job = {.fn = nop_job, .deadline_ns = 1, .tag = 1};
	vz_job_id late, fine;

	(void)state;
	fx_make(&f, 1, 1, 16, VZ_POOL_REJECT, 1, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), &job, &late), 0);
	job.deadline_ns = vz_test_now_ns() + 3600ull * 1000000000ull;
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), &job, &fine), 0);
	wait_done(f.rec, 2);
	assert_int_equal(find_done(f.rec, late)->d.status, VZ_ETIMEDOUT);
	assert_int_equal(find_done(f.rec, fine)->d.status, 0);
	assert_int_equal(atomic_load(&ran), 1);
	assert_int_equal(stats(&f, 0).timed_out, 1);
	fx_free(&f);
}

static void *stop_thread(void *arg)
{
	vz__pools_stop(arg);
	return NULL;
}

/* Stop: the running job finishes, queued ones complete with VZ_ECANCELED
 * (posted), later submissions are refused, every worker is joined. */
static void test_stop(void **state)
{
	struct fx f;
	struct gate g = {0};
	vz_job_id a, q[5], late;
	pthread_t t;

	(void)state;
	fx_make(&f, 1, 1, 16, VZ_POOL_REJECT, 1, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	expect_workers(1);
	assert_int_equal(submit_gate(&f, 0, &g, &a), 0);
	wait_started(&g, 1);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(submit_add(&f, 0, i, i, 100 + i, &q[i]), 0);
	assert_int_equal(pthread_create(&t, NULL, stop_thread, f.ps), 0);
	/* Once a submission is refused with VZ_ESTOPPED, stop has begun
	 * (until then they are accepted, or refused because the queue is full
	 * behind the gate). */
	for (;;) {
		int rc = submit_add(&f, 0, 0, 0, 0, &late);

		if (rc == VZ_ESTOPPED)
			break;
		assert_true(rc == 0 || rc == VZ_EFULL);
		sched_yield();
	}
	assert_int_equal(submit_add(&f, 0, 0, 0, 0, &late), VZ_ESTOPPED);
	atomic_store_explicit(&g.open, 1, memory_order_release);
	assert_int_equal(pthread_join(t, NULL), 0);
	expect_workers(0);
	/* Everything accepted completed exactly once. */
	{
		unsigned ok = 0, canceled = 0, n = done_count(f.rec);
		uint64_t seen = 0;

		for (unsigned i = 0; i < n; i++) {
			assert_int_equal(f.rec->rec[i].type, VZ_MSG_POOL_DONE);
			if (f.rec->rec[i].d.status == VZ_ECANCELED)
				canceled++;
			else
				ok++;
		}
		seen = stats(&f, 0).submitted;
		assert_int_equal(n, seen);
		assert_int_equal(find_done(f.rec, a)->d.status, 0);
		for (unsigned i = 0; i < 5; i++)
			assert_int_equal(find_done(f.rec, q[i])->d.status, VZ_ECANCELED);
		assert_int_equal((unsigned)atomic_load(&ran), ok);
		assert_int_equal(stats(&f, 0).canceled, canceled);
	}
	assert_int_equal(vz__pool_submit_as(f.ps, 0, ref_of(0), &(vz_job){.fn = nop_job}, &late),
			 VZ_ESTOPPED);
	vz__pools_stop(f.ps); /* idempotent */
	assert_int_equal(vz__pools_start(f.ps), VZ_ESTATE);
	fx_free(&f);
}

static void *stop_when_told(void *arg)
{
	struct vz__pool_set *ps = arg;

	while (!atomic_load_explicit(&ran, memory_order_acquire))
		sched_yield();
	vz__pools_stop(ps);
	return NULL;
}

/* Two threads stopping at once: both return, after the workers are gone,
 * and every worker is joined exactly once. */
static void test_concurrent_stop(void **state)
{
	struct fx f;
	pthread_t t[2];
	vz_job_id id;

	(void)state;
	fx_make(&f, 2, 2, 8, VZ_POOL_REJECT, 2, VZ_POOL_SPIN_NS);
	assert_int_equal(vz__pools_start(f.ps), 0);
	expect_workers(4);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, stop_when_told, f.ps), 0);
	/* `ran` doubles as the go signal: the first job's run releases both */
	assert_int_equal(submit_add(&f, 0, 1, 1, 1, &id), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	expect_workers(0);
	assert_int_equal(submit_add(&f, 0, 1, 1, 1, &id), VZ_ESTOPPED);
	assert_int_equal(done_count(f.rec), 1);
	fx_free(&f);
}

/* Jobs queued on a set that never started still complete (cancelled) at
 * stop; a refused post is counted, not retried forever. */
static void test_stop_without_start(void **state)
{
	struct fx f;
	vz_job_id id;

	(void)state;
	fx_make(&f, 2, 1, 8, VZ_POOL_REJECT, 2, VZ_POOL_SPIN_NS);
	assert_int_equal(submit_add(&f, 0, 1, 1, 1, &id), 0);
	assert_int_equal(submit_add(&f, 1, 1, 1, 2, &id), 0);
	vz__pools_stop(f.ps);
	assert_int_equal(done_count(f.rec), 2);
	assert_int_equal(f.rec->rec[0].d.status, VZ_ECANCELED);
	assert_int_equal(f.rec->rec[1].d.status, VZ_ECANCELED);
	assert_int_equal(atomic_load(&ran), 0);
	fx_free(&f);
}

/* A thread that cannot start: VZ_EIO, nothing left running, and the set
 * can start later. */
static void test_start_failure(void **state)
{
#ifdef VZ_FAULT_INJECTION
	struct fx f;
	vz_job_id id;

	(void)state;
	fx_make(&f, 2, 2, 8, VZ_POOL_REJECT, 2, VZ_POOL_SPIN_NS);
	for (long skip = 0; skip < 4; skip++) {
		vz__fault_arm(VZ_FAULT_THREAD_START, skip, 1);
		assert_int_equal(vz__pools_start(f.ps), VZ_EIO);
		assert_int_equal(vz__fault_fired(VZ_FAULT_THREAD_START), 1);
		expect_workers(0);
	}
	vz__fault_disarm_all();
	/* queued while down, run after a successful start */
	assert_int_equal(submit_add(&f, 0, 2, 3, 4, &id), 0);
	assert_int_equal(vz__pools_start(f.ps), 0);
	expect_workers(4);
	wait_done(f.rec, 1);
	assert_int_equal(f.rec->rec[0].d.status, 7);
	vz__pools_stop(f.ps);
	expect_workers(0);
	fx_free(&f);
#else
	(void)state;
	skip();
#endif
}

/* The runtime refusing a completion is counted on the worker's pool. */
static void test_post_failure_counted(void **state)
{
	struct fx f;
	vz_job_id id;

	(void)state;
	fx_make(&f, 1, 1, 8, VZ_POOL_REJECT, 1, VZ_POOL_SPIN_NS);
	f.rec->refuse = VZ_ESTOPPED;
	assert_int_equal(vz__pools_start(f.ps), 0);
	assert_int_equal(submit_add(&f, 0, 1, 1, 1, &id), 0);
	while (stats(&f, 0).post_failures == 0)
		sched_yield();
	assert_int_equal(stats(&f, 0).executed, 1);
	fx_free(&f);
}

/* ---- end to end: a real runtime, an actor, its completions ----------------- */

enum { MSG_ADD = VZ_MSG_USER, MSG_CANCEL, MSG_FULL, MSG_GATE };

/* What the actor saw; written by its shard, read by the test after an
 * acquire load of `ndone` (or `step`). */
static struct {
	int submit_rc[4];
	int cancel_rc[2];
	vz_job_id ids[4];
	struct {
		vz_pool_done d;
		uint32_t v[2];
		vz_ref from;
	} done[8];
	atomic_int ndone;
	atomic_int step;    /* bumped after each command message is handled */
	atomic_int stopped; /* on_stop ran */
	atomic_int dead;    /* dead letters of type VZ_MSG_POOL_DONE */
	vz_job_id dead_id;
} e2e;

static struct gate e2e_gate;
static vz_actor *e2e_self; /* stashed to call from the wrong thread */

static void e2e_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint32_t v[2] = {20, 22};
	vz_job add = {.fn = add_job,
		      .arg = (void *)(uintptr_t)5,
		      .payload = v,
		      .payload_len = sizeof v,
		      .tag = 42};
	vz_job gate = {.fn = gate_job, .arg = &e2e_gate, .tag = 1};

	(void)state;
	switch (vz_msg_type(m)) {
	case MSG_ADD:
		e2e_self = self;
		e2e.submit_rc[0] = vz_pool_submit(self, &add, &e2e.ids[0]);
		break;
	case MSG_CANCEL:
		/* One worker: A occupies it until the gate opens, so B cannot
		 * have started when we cancel it. */
		e2e.submit_rc[0] = vz_pool_submit(self, &gate, &e2e.ids[0]);
		e2e.submit_rc[1] = vz_pool_submit(self, &add, &e2e.ids[1]);
		e2e.cancel_rc[0] = vz_pool_cancel(self, e2e.ids[1]);
		e2e.cancel_rc[1] = vz_pool_cancel(self, e2e.ids[1]);
		break;
	case MSG_FULL:
		/* queue_capacity 2: the third is refused */
		e2e.submit_rc[0] = vz_pool_submit(self, &gate, &e2e.ids[0]);
		e2e.submit_rc[1] = vz_pool_submit(self, &add, &e2e.ids[1]);
		e2e.submit_rc[2] = vz_pool_submit(self, &add, &e2e.ids[2]);
		break;
	case MSG_GATE:
		e2e.submit_rc[0] = vz_pool_submit(self, &gate, &e2e.ids[0]);
		break;
	case VZ_MSG_POOL_DONE: {
		int n = atomic_load_explicit(&e2e.ndone, memory_order_relaxed);
		const void *res;

		assert_true(n < 8);
		assert_int_equal(vz_pool_done_read(m, &e2e.done[n].d, &res), 0);
		memset(e2e.done[n].v, 0, sizeof e2e.done[n].v);
		if (e2e.done[n].d.result_len == sizeof v)
			memcpy(e2e.done[n].v, res, sizeof v);
		e2e.done[n].from = vz_msg_sender(m);
		/* Release: pairs with the test's acquire load. */
		atomic_store_explicit(&e2e.ndone, n + 1, memory_order_release);
		return;
	}
	default:
		return;
	}
	atomic_fetch_add_explicit(&e2e.step, 1, memory_order_release);
}

static void e2e_on_stop(vz_actor *self, void *state)
{
	(void)self, (void)state;
	atomic_store_explicit(&e2e.stopped, 1, memory_order_release);
}

static void e2e_dead_letter(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
			    int reason)
{
	vz_pool_done d;

	(void)ctx, (void)to, (void)reason;
	if (type != VZ_MSG_POOL_DONE || len < sizeof d)
		return;
	memcpy(&d, data, sizeof d);
	e2e.dead_id = d.job;
	atomic_store_explicit(&e2e.dead, 1, memory_order_release);
}

static const vz_actor_spec e2e_spec = {
    .name = "pool-user",
    .receive = e2e_receive,
    .on_stop = e2e_on_stop,
};

/* Submits from init, before the runtime starts. */
static int e2e_init_submit(vz_actor *self, void *state, const void *arg)
{
	uint32_t v[2] = {1, 2};
	vz_job add = {.fn = add_job, .payload = v, .payload_len = sizeof v, .tag = 11};

	(void)state, (void)arg;
	e2e.submit_rc[3] = vz_pool_submit(self, &add, &e2e.ids[3]);
	return 0;
}

static const vz_actor_spec e2e_init_spec = {
    .name = "pool-user-init",
    .init = e2e_init_submit,
    .receive = e2e_receive,
};

static void wait_int(atomic_int *v, int at_least)
{
	while (atomic_load_explicit(v, memory_order_acquire) < at_least)
		usleep(100);
}

/* A one-shard runtime with one worker and the given queue capacity, the
 * actor spawned on shard 0, started. */
static vz_runtime *e2e_start(uint32_t cap, vz_ref *actor)
{
	vz_config cfg;
	vz_runtime *rt;

	memset(&e2e, 0, sizeof e2e);
	memset(&e2e_gate, 0, sizeof e2e_gate);
	atomic_store(&ran, 0);
	vz_test_config(&cfg, 1);
	cfg.pool.workers_per_node = 1;
	cfg.pool.queue_capacity = cap;
	cfg.pool.share_shard_cpus = true;
	cfg.dead_letter = e2e_dead_letter;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &e2e_spec, NULL, actor), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	return rt;
}

static void e2e_finish(vz_runtime *rt)
{
	atomic_store_explicit(&e2e_gate.open, 1, memory_order_release);
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

static void test_e2e_submit_complete(void **state)
{
	vz_ref a;
	vz_runtime *rt = e2e_start(16, &a);
	vz_pool_stats st;
	unsigned nodes[VZ_MAX_NODES];
	int np;

	(void)state;
	assert_int_equal(vz_post(rt, a, MSG_ADD, NULL, 0), 0);
	wait_int(&e2e.ndone, 1);
	assert_int_equal(e2e.submit_rc[0], 0);
	assert_int_equal(e2e.done[0].d.job.id, e2e.ids[0].id);
	assert_int_equal(e2e.done[0].d.tag, 42);
	assert_int_equal(e2e.done[0].d.status, 7);
	assert_int_equal(e2e.done[0].v[0], 42);
	assert_int_equal(e2e.done[0].v[1], 5);
	assert_true(vz_ref_is_null(e2e.done[0].from)); /* from the runtime, no sender */

	np = vz_pool_nodes(rt, nodes, VZ_MAX_NODES);
	assert_true(np >= 1);
	assert_int_equal(vz_stats_pool(rt, nodes[0], &st), 0);
	assert_int_equal(st.submitted, 1);
	assert_int_equal(st.executed, 1);
	assert_int_equal(st.workers, 1);
	assert_int_equal(vz_stats_pool(rt, VZ_MAX_NODES, &st), VZ_ENOENT);
	assert_int_equal(vz_stats_pool(NULL, 0, &st), VZ_EINVAL);
	assert_int_equal(vz_pool_submit(NULL, &(vz_job){.fn = nop_job}, NULL), VZ_EINVAL);
	/* the actor's handle used off its shard: refused, nothing queued */
	assert_int_equal(vz_pool_submit(e2e_self, &(vz_job){.fn = nop_job}, NULL), VZ_EWRONGTHREAD);
	assert_int_equal(vz_pool_cancel(e2e_self, e2e.ids[0]), VZ_EWRONGTHREAD);
	assert_int_equal(vz_stats_pool(rt, nodes[0], &st), 0);
	assert_int_equal(st.submitted, 1);
	assert_int_equal(vz_pool_cancel(NULL, (vz_job_id){1}), VZ_EINVAL);
	assert_int_equal(vz_pool_done_read(NULL, &e2e.done[0].d, NULL), VZ_EINVAL);
	e2e_finish(rt);
}

static void test_e2e_cancel(void **state)
{
	vz_ref a;
	vz_runtime *rt = e2e_start(16, &a);

	(void)state;
	assert_int_equal(vz_post(rt, a, MSG_CANCEL, NULL, 0), 0);
	wait_int(&e2e.step, 1);
	assert_int_equal(e2e.submit_rc[0], 0);
	assert_int_equal(e2e.submit_rc[1], 0);
	assert_int_equal(e2e.cancel_rc[0], 0);
	assert_int_equal(e2e.cancel_rc[1], VZ_ENOENT);
	/* B's completion arrives while A still holds the only worker */
	wait_int(&e2e.ndone, 1);
	assert_int_equal(e2e.done[0].d.job.id, e2e.ids[1].id);
	assert_int_equal(e2e.done[0].d.status, VZ_ECANCELED);
	assert_int_equal(e2e.done[0].d.tag, 42);
	assert_int_equal(e2e.done[0].d.result_len, 0);
	atomic_store_explicit(&e2e_gate.open, 1, memory_order_release);
	wait_int(&e2e.ndone, 2);
	assert_int_equal(e2e.done[1].d.job.id, e2e.ids[0].id);
	assert_int_equal(e2e.done[1].d.status, 0);
	assert_int_equal(atomic_load(&ran), 1); /* only A ran */
	e2e_finish(rt);
}

static void test_e2e_full(void **state)
{
	vz_ref a;
	vz_runtime *rt = e2e_start(2, &a);
	unsigned node;
	vz_pool_stats st;

	(void)state;
	assert_int_equal(vz_post(rt, a, MSG_FULL, NULL, 0), 0);
	wait_int(&e2e.step, 1);
	assert_int_equal(e2e.submit_rc[0], 0);
	assert_int_equal(e2e.submit_rc[1], 0);
	assert_int_equal(e2e.submit_rc[2], VZ_EFULL);
	assert_int_equal(vz_pool_nodes(rt, &node, 1), 1);
	assert_int_equal(vz_stats_pool(rt, node, &st), 0);
	assert_int_equal(st.rejected, 1);
	atomic_store_explicit(&e2e_gate.open, 1, memory_order_release);
	wait_int(&e2e.ndone, 2);
	e2e_finish(rt);
}

/* A job submitted from init (before start) completes once the runtime
 * runs, even when its worker finishes before the runtime says it is
 * running. */
static void test_e2e_submit_before_start(void **state)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref a;
	vz_pool_stats st;
	unsigned node;

	(void)state;
	memset(&e2e, 0, sizeof e2e);
	vz_test_config(&cfg, 1);
	cfg.pool.workers_per_node = 1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &e2e_init_spec, NULL, &a), 0);
	assert_int_equal(e2e.submit_rc[3], 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	wait_int(&e2e.ndone, 1);
	assert_int_equal(e2e.done[0].d.job.id, e2e.ids[3].id);
	assert_int_equal(e2e.done[0].d.status, 7);
	assert_int_equal(e2e.done[0].v[0], 3);
	assert_int_equal(vz_pool_nodes(rt, &node, 1), 1);
	assert_int_equal(vz_stats_pool(rt, node, &st), 0);
	assert_int_equal(st.post_failures, 0);
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* A runtime destroyed without ever starting: the job queued by init is
 * cancelled at once (its completion cannot be delivered: no shard ever
 * ran), nothing runs, nothing hangs or leaks. */
static void test_e2e_destroy_without_start(void **state)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref a;

	(void)state;
	memset(&e2e, 0, sizeof e2e);
	atomic_store(&ran, 0);
	vz_test_config(&cfg, 1);
	cfg.pool.workers_per_node = 1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &e2e_init_spec, NULL, &a), 0);
	assert_int_equal(e2e.submit_rc[3], 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	assert_int_equal(atomic_load(&ran), 0);
}

/* The actor stops while its job runs: the completion is dead-lettered. */
static void test_e2e_stopped_actor_dead_letters(void **state)
{
	vz_ref a;
	vz_runtime *rt = e2e_start(16, &a);
	vz_shard_stats ss;

	(void)state;
	assert_int_equal(vz_post(rt, a, MSG_GATE, NULL, 0), 0);
	wait_int(&e2e.step, 1);
	assert_int_equal(e2e.submit_rc[0], 0);
	wait_started(&e2e_gate, 1);
	assert_int_equal(vz_stop(rt, a), 0);
	wait_int(&e2e.stopped, 1);
	atomic_store_explicit(&e2e_gate.open, 1, memory_order_release);
	wait_int(&e2e.dead, 1);
	assert_int_equal(e2e.dead_id.id, e2e.ids[0].id);
	assert_int_equal(atomic_load(&e2e.ndone), 0);
	assert_int_equal(vz_stats_shard(rt, 0, &ss), 0);
	assert_true(ss.dead_letters >= 1);
	e2e_finish(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_submit_complete),
	    cmocka_unit_test(test_ring_completions),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_result_too_big),
	    cmocka_unit_test(test_full_reject_no_syscall_when_busy),
	    cmocka_unit_test(test_wake_sleeping_worker),
	    cmocka_unit_test(test_spill_to_other_node),
	    cmocka_unit_test(test_reject_does_not_spill),
	    cmocka_unit_test(test_steal_from_backlogged_node),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_deadline),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_stop_without_start),
	    cmocka_unit_test(test_concurrent_stop),
	    cmocka_unit_test(test_start_failure),
	    cmocka_unit_test(test_post_failure_counted),
	    cmocka_unit_test(test_e2e_submit_complete),
	    cmocka_unit_test(test_e2e_cancel),
	    cmocka_unit_test(test_e2e_full),
	    cmocka_unit_test(test_e2e_submit_before_start),
	    cmocka_unit_test(test_e2e_destroy_without_start),
	    cmocka_unit_test(test_e2e_stopped_actor_dead_letters),
	};

	vz_test_watchdog(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
