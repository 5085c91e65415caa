// SPDX-License-Identifier: MIT
/*
 * Benchmark of the raw queues (runtime/queue), reported under `counting`
 * (BENCH.md): one producer thread pinned to CPU 0 floods one consumer thread
 * pinned to CPU 1 with N pointer-sized items through the queue alone (no
 * runtime around it); the figure is items per second from the producer's
 * first push to the consumer's last pop. The consumer checks every item is
 * the next number, so a broken queue cannot post a good figure.
 *
 * Variants and implementations (run side by side, A B A B ..., per variant):
 *   raw-spsc          - one item per call
 *       veloz   vz__spsc_push_batch(n=1) / vz__spsc_pop_batch(max=1)
 *       veloz-line128  the same code with the producer's and consumer's
 *               lines 128 bytes apart instead of 64 (both rings 128-byte
 *               aligned, so the 64-byte layout has both in one pair of
 *               lines that the adjacent-line prefetcher fetches together)
 *       ck_ring ck_ring_enqueue_spsc / ck_ring_dequeue_spsc
 *   raw-spsc-batch32  - items moved in groups of up to 32
 *       veloz   one push_batch / pop_batch per group (one release store each)
 *       veloz-line128  as above, 128-byte separation
 *       ck_ring 32 enqueue / dequeue calls per group (ck_ring has no batch
 *               publish; one release store per item)
 *   raw-mpsc          - intrusive MPSC queue, one producer
 *       veloz   vz__mpsc_push / vz__mpsc_pop
 *       urcu    liburcu wfcqueue: cds_wfcq_enqueue /
 *               __cds_wfcq_dequeue_nonblocking (its single-consumer,
 *               lock-free dequeue; inline, as ours)
 *   cache-line        - the physical limit: one cache line bounced between
 *       limit   the same two CPUs, round trip in ns (rtt_*)
 * Both rings have 1024 slots (ck_ring uses 1023 of them). The MPSC producer
 * reuses a pool of 4096 nodes, waiting for the consumer's progress counter
 * before it reuses one (the same scheme for both implementations). Every
 * consumer backs off ~32 pause instructions when its queue gives nothing
 * (see consumer_backoff()); producers pause once when full.
 *
 * Build: links the harness (bench/lib), libveloz (for vz__spsc_init) and,
 * when found, libck (VZ_HAVE_CK) and liburcu-cds (VZ_HAVE_URCU); without
 * them those rows are reported as skipped.
 */
#include "bench.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/mpsc_inbox.h"
#include "queue/spsc_ring.h"

/* The same ring with its producer and consumer lines 128 bytes apart (the
 * pair of lines the adjacent-line prefetcher fetches together): the header
 * again under other names, so both layouts run the same code. */
#undef VZ_SPSC_RING_H
#undef VZ__SPSC_LINE
#undef VZ__SPSC_MAX_CAPACITY
#define VZ__SPSC_LINE	    128
#define vz__spsc	    spsc128
#define vz__spsc_init	    spsc128_init_unused
#define vz__spsc_fini	    spsc128_fini_unused
#define vz__spsc_capacity   spsc128_capacity
#define vz__spsc_push_batch spsc128_push_batch
#define vz__spsc_pop_batch  spsc128_pop_batch
#include "queue/spsc_ring.h"
#undef vz__spsc
#undef vz__spsc_init
#undef vz__spsc_fini
#undef vz__spsc_capacity
#undef vz__spsc_push_batch
#undef vz__spsc_pop_batch

#ifdef VZ_HAVE_CK
#include <ck_ring.h>
#endif
#ifdef VZ_HAVE_URCU
#define _LGPL_SOURCE /* the inline (static) wfcqueue, as our queues are inline */
#include <urcu/wfcqueue.h>
#endif

#define RING_SLOTS	  1024
#define MPSC_POOL	  4096
#define MPSC_CREDIT_EVERY 256 /* consumer publishes its progress this often */

/* ---- two pinned workers ------------------------------------------------- */

/*
 * The producer and consumer threads live for the whole program, pinned once
 * (so the placement is printed once). For each repetition the main thread
 * hands both a job and waits on a semaphore; the workers meet at a spinning
 * start line so the producer's clock starts when both are running.
 */
struct job {
	void (*produce)(void *ctx);
	void (*consume)(void *ctx);
	void *ctx;
};

static struct {
	struct job job;	      /* written by main before posting the semaphores */
	sem_t go[2];	      /* main -> producer (0), consumer (1) */
	sem_t done;	      /* workers -> main */
	_Atomic int at_start; /* start line: both workers arrived */
	_Atomic int quit;
	uint64_t t_start; /* producer: clock at the start line */
	uint64_t t_end;	  /* consumer: clock after the last pop */
	uint64_t bad;	  /* consumer: items out of sequence */
} w;

/* Both workers wait here; the producer then starts the clock. */
static void start_line(void)
{
	/* acq_rel/acquire: plain handshake between the two workers; nothing
	 * is published through it except "I am running". */
	atomic_fetch_add_explicit(&w.at_start, 1, memory_order_acq_rel);
	while (atomic_load_explicit(&w.at_start, memory_order_acquire) < 2)
		bench_cpu_relax();
}

/* What every consumer does when its queue gave nothing: wait ~32 pause
 * instructions before polling again. Re-polling at once makes a consumer
 * that has caught up run in lockstep with the producer, pulling the
 * producer's index line and the slot (or node) line being written on every
 * item; that measures the polling loop more than the queue (measured: with
 * a single pause, veloz raw-spsc ran at ~0.7x ck_ring because its consumer
 * caught up more often; with this back-off, at ~1.4x). Same policy for every
 * implementation. */
static void consumer_backoff(void)
{
	for (int i = 0; i < 32; i++)
		bench_cpu_relax();
}

static void *worker(void *arg)
{
	int role = (int)(intptr_t)arg;

	bench_pin(role, role == 0 ? "producer" : "consumer");
	for (;;) {
		/* sem_wait/sem_post order the job fields and results. */
		sem_wait(&w.go[role]);
		/* Relaxed: set before the semaphore post that woke us. */
		if (atomic_load_explicit(&w.quit, memory_order_relaxed))
			return NULL;
		start_line();
		if (role == 0) {
			w.t_start = bench_now_ns();
			w.job.produce(w.job.ctx);
		} else {
			w.job.consume(w.job.ctx);
			w.t_end = bench_now_ns();
		}
		sem_post(&w.done);
	}
}

/* Run one job on the pinned pair; returns items/s, or -1 when the consumer
 * found a wrong item. */
static double run_job(void (*produce)(void *), void (*consume)(void *), void *ctx, uint64_t n,
		      const char *what)
{
	w.job.produce = produce;
	w.job.consume = consume;
	w.job.ctx = ctx;
	w.bad = 0;
	atomic_store_explicit(&w.at_start, 0, memory_order_relaxed);
	sem_post(&w.go[0]);
	sem_post(&w.go[1]);
	sem_wait(&w.done);
	sem_wait(&w.done);
	if (w.bad) {
		fprintf(stderr, "queues: %s: %llu items out of sequence\n", what,
			(unsigned long long)w.bad);
		return -1;
	}
	return (double)n * 1e9 / (double)(w.t_end - w.t_start);
}

/* ---- SPSC: veloz --------------------------------------------------------- */

struct spsc_ctx {
	uint64_t n;
	uint32_t batch;
	struct vz__spsc *ring;
	struct spsc128 *ring128;
#ifdef VZ_HAVE_CK
	struct ck_ring *ck;
	struct ck_ring_buffer *ck_buf;
#endif
};

static void veloz_spsc_produce(void *arg)
{
	struct spsc_ctx *c = arg;
	void *buf[32];
	uint64_t next = 1; /* items are 1..n */

	while (next <= c->n) {
		uint32_t k = c->batch;

		if (k > c->n - next + 1)
			k = (uint32_t)(c->n - next + 1);
		for (uint32_t i = 0; i < k; i++)
			buf[i] = (void *)(uintptr_t)(next + i);
		for (uint32_t done = 0; done < k;) {
			uint32_t got = vz__spsc_push_batch(c->ring, buf + done, k - done);

			if (got == 0)
				bench_cpu_relax();
			done += got;
		}
		next += k;
	}
}

static void veloz_spsc_consume(void *arg)
{
	struct spsc_ctx *c = arg;
	void *buf[32];
	uint64_t expect = 1, bad = 0;

	while (expect <= c->n) {
		uint32_t got = vz__spsc_pop_batch(c->ring, buf, c->batch);

		if (got == 0) {
			consumer_backoff();
			continue;
		}
		for (uint32_t i = 0; i < got; i++, expect++)
			bad += (uintptr_t)buf[i] != expect;
	}
	w.bad = bad;
}

static int veloz_spsc_rep(void *arg, int rep, double *value)
{
	struct spsc_ctx *c = arg;

	(void)rep;
	*value = run_job(veloz_spsc_produce, veloz_spsc_consume, c, c->n, "veloz spsc");
	return *value < 0 ? -1 : 0;
}

/* ---- SPSC: veloz, lines 128 bytes apart ------------------------------------ */

static void line128_produce(void *arg)
{
	struct spsc_ctx *c = arg;
	void *buf[32];
	uint64_t next = 1;

	while (next <= c->n) {
		uint32_t k = c->batch;

		if (k > c->n - next + 1)
			k = (uint32_t)(c->n - next + 1);
		for (uint32_t i = 0; i < k; i++)
			buf[i] = (void *)(uintptr_t)(next + i);
		for (uint32_t done = 0; done < k;) {
			uint32_t got = spsc128_push_batch(c->ring128, buf + done, k - done);

			if (got == 0)
				bench_cpu_relax();
			done += got;
		}
		next += k;
	}
}

static void line128_consume(void *arg)
{
	struct spsc_ctx *c = arg;
	void *buf[32];
	uint64_t expect = 1, bad = 0;

	while (expect <= c->n) {
		uint32_t got = spsc128_pop_batch(c->ring128, buf, c->batch);

		if (got == 0) {
			consumer_backoff();
			continue;
		}
		for (uint32_t i = 0; i < got; i++, expect++)
			bad += (uintptr_t)buf[i] != expect;
	}
	w.bad = bad;
}

static int line128_rep(void *arg, int rep, double *value)
{
	struct spsc_ctx *c = arg;

	(void)rep;
	*value = run_job(line128_produce, line128_consume, c, c->n, "veloz-line128 spsc");
	return *value < 0 ? -1 : 0;
}

/* ---- SPSC: ck_ring ------------------------------------------------------- */

#ifdef VZ_HAVE_CK
static void ck_spsc_produce(void *arg)
{
	struct spsc_ctx *c = arg;
	uint64_t next = 1;

	while (next <= c->n) {
		uint32_t k = c->batch;

		if (k > c->n - next + 1)
			k = (uint32_t)(c->n - next + 1);
		for (uint32_t i = 0; i < k; i++) {
			while (
			    !ck_ring_enqueue_spsc(c->ck, c->ck_buf, (void *)(uintptr_t)(next + i)))
				bench_cpu_relax();
		}
		next += k;
	}
}

static void ck_spsc_consume(void *arg)
{
	struct spsc_ctx *c = arg;
	uint64_t expect = 1, bad = 0;

	while (expect <= c->n) {
		uint32_t got = 0;
		void *v;

		/* Up to `batch` per round, as the veloz consumer does. */
		while (got < c->batch && ck_ring_dequeue_spsc(c->ck, c->ck_buf, &v)) {
			bad += (uintptr_t)v != expect;
			expect++;
			got++;
		}
		if (got == 0)
			consumer_backoff();
	}
	w.bad = bad;
}

static int ck_spsc_rep(void *arg, int rep, double *value)
{
	struct spsc_ctx *c = arg;

	(void)rep;
	*value = run_job(ck_spsc_produce, ck_spsc_consume, c, c->n, "ck_ring spsc");
	return *value < 0 ? -1 : 0;
}
#endif

/* ---- MPSC ------------------------------------------------------------------ */

struct vnode {
	struct vz__mpsc_node node;
	uint64_t seq;
};

#ifdef VZ_HAVE_URCU
struct unode {
	struct cds_wfcq_node node;
	uint64_t seq;
};
#endif

struct mpsc_ctx {
	uint64_t n;
	/* Consumer's progress (items taken), published every
	 * MPSC_CREDIT_EVERY items: the producer reuses node s % MPSC_POOL
	 * only when s - consumed < MPSC_POOL. Own line. */
	alignas(64) _Atomic uint64_t consumed;
	alignas(64) struct vz__mpsc q;
	struct vnode *vpool;
#ifdef VZ_HAVE_URCU
	alignas(64) struct __cds_wfcq_head uhead;
	alignas(64) struct cds_wfcq_tail utail;
	struct unode *upool;
#endif
};

/* Producer: wait until node `seq % MPSC_POOL` is free again. */
static void wait_credit(struct mpsc_ctx *c, uint64_t seq, uint64_t *known)
{
	while (seq - *known >= MPSC_POOL) {
		/* Acquire: pairs with the consumer's release store of
		 * consumed; its reads of the node happen before our reuse. */
		*known = atomic_load_explicit(&c->consumed, memory_order_acquire);
		if (seq - *known >= MPSC_POOL)
			bench_cpu_relax();
	}
}

static void give_credit(struct mpsc_ctx *c, uint64_t taken)
{
	if (taken % MPSC_CREDIT_EVERY == 0)
		/* Release: pairs with the acquire in wait_credit(). */
		atomic_store_explicit(&c->consumed, taken, memory_order_release);
}

static void veloz_mpsc_produce(void *arg)
{
	struct mpsc_ctx *c = arg;
	uint64_t known = 0;

	for (uint64_t s = 0; s < c->n; s++) {
		struct vnode *v = &c->vpool[s % MPSC_POOL];

		wait_credit(c, s, &known);
		v->seq = s;
		vz__mpsc_push(&c->q, &v->node);
	}
}

static void veloz_mpsc_consume(void *arg)
{
	struct mpsc_ctx *c = arg;
	uint64_t taken = 0, bad = 0;

	while (taken < c->n) {
		struct vz__mpsc_node *n = vz__mpsc_pop(&c->q);

		if (n == NULL) {
			consumer_backoff();
			continue;
		}
		bad += ((struct vnode *)n)->seq != taken;
		give_credit(c, ++taken);
	}
	w.bad = bad;
}

static int veloz_mpsc_rep(void *arg, int rep, double *value)
{
	struct mpsc_ctx *c = arg;

	(void)rep;
	vz__mpsc_init(&c->q);
	atomic_store_explicit(&c->consumed, 0, memory_order_relaxed);
	*value = run_job(veloz_mpsc_produce, veloz_mpsc_consume, c, c->n, "veloz mpsc");
	return *value < 0 ? -1 : 0;
}

#ifdef VZ_HAVE_URCU
static void urcu_mpsc_produce(void *arg)
{
	struct mpsc_ctx *c = arg;
	uint64_t known = 0;

	for (uint64_t s = 0; s < c->n; s++) {
		struct unode *u = &c->upool[s % MPSC_POOL];

		wait_credit(c, s, &known);
		u->seq = s;
		cds_wfcq_node_init(&u->node);
		cds_wfcq_enqueue(&c->uhead, &c->utail, &u->node);
	}
}

static void urcu_mpsc_consume(void *arg)
{
	struct mpsc_ctx *c = arg;
	uint64_t taken = 0, bad = 0;

	while (taken < c->n) {
		struct cds_wfcq_node *n = __cds_wfcq_dequeue_nonblocking(&c->uhead, &c->utail);

		if (n == NULL || n == CDS_WFCQ_WOULDBLOCK) {
			consumer_backoff();
			continue;
		}
		bad += caa_container_of(n, struct unode, node)->seq != taken;
		give_credit(c, ++taken);
	}
	w.bad = bad;
}

static int urcu_mpsc_rep(void *arg, int rep, double *value)
{
	struct mpsc_ctx *c = arg;

	(void)rep;
	__cds_wfcq_init(&c->uhead, &c->utail);
	atomic_store_explicit(&c->consumed, 0, memory_order_relaxed);
	*value = run_job(urcu_mpsc_produce, urcu_mpsc_consume, c, c->n, "urcu wfcqueue");
	return *value < 0 ? -1 : 0;
}
#endif

/* ---- the limit ------------------------------------------------------------- */

struct limit_ctx {
	uint64_t rounds;
	struct bench_hist *h;
	struct bench_lat lat;
};

/* One repetition of the cache-line bounce between CPUs 0 and 1; the
 * headline value is the p50 round trip. */
static int limit_rep(void *arg, int rep, double *value)
{
	struct limit_ctx *l = arg;

	bench_hist_reset(l->h);
	if (bench_limit_pingpong(0, 1, l->rounds, l->h) < 0)
		return -1;
	if (rep >= 0)
		bench_lat_add(&l->lat, l->h);
	*value = (double)bench_hist_percentile(l->h, 50);
	return 0;
}

/* ---- main ------------------------------------------------------------------ */

static void emit_pair(struct bench_impl *impls, int n)
{
	for (int i = 0; i < n; i++)
		bench_emit_series(&impls[i].s);
	for (int i = 1; i < n; i++)
		if (!impls[0].failed && !impls[i].failed)
			bench_emit_ratio(&impls[0].s, &impls[i].s, true);
}

static void run_spsc(const char *variant, uint32_t batch, uint64_t n)
{
	struct spsc_ctx c = {.n = n, .batch = batch};
	struct bench_impl impls[3];
	int nimpl = 0;

	if (!bench_variant_enabled(variant))
		return;
	/* Both layouts 128-byte aligned: the 64-byte layout then has its
	 * producer and consumer lines in one 128-byte pair. */
	c.ring = aligned_alloc(128, 128 * ((sizeof *c.ring + 127) / 128));
	if (c.ring == NULL || vz__spsc_init(c.ring, RING_SLOTS, -1) != 0) {
		fprintf(stderr, "queues: %s: cannot set up the ring\n", variant);
		exit(1);
	}
	c.ring128 = aligned_alloc(128, sizeof *c.ring128);
	if (c.ring128 == NULL) {
		fprintf(stderr, "queues: %s: out of memory\n", variant);
		exit(1);
	}
	memset(c.ring128, 0, sizeof *c.ring128);
	/* Slots as vz__spsc_init() allocates them. */
	c.ring128->slots = aligned_alloc(64, RING_SLOTS * sizeof(void *));
	if (c.ring128->slots == NULL)
		exit(1);
	c.ring128->mask = RING_SLOTS - 1;
	c.ring128->capacity = RING_SLOTS;
	impls[nimpl++] = (struct bench_impl){.impl = "veloz", .fn = veloz_spsc_rep, .ctx = &c};
	impls[nimpl++] = (struct bench_impl){.impl = "veloz-line128", .fn = line128_rep, .ctx = &c};
#ifdef VZ_HAVE_CK
	c.ck = aligned_alloc(64, 64 * ((sizeof *c.ck + 63) / 64));
	c.ck_buf = aligned_alloc(64, RING_SLOTS * sizeof *c.ck_buf);
	if (c.ck == NULL || c.ck_buf == NULL) {
		fprintf(stderr, "queues: %s: out of memory\n", variant);
		exit(1);
	}
	ck_ring_init(c.ck, RING_SLOTS);
	impls[nimpl++] = (struct bench_impl){.impl = "ck_ring", .fn = ck_spsc_rep, .ctx = &c};
#else
	bench_skip("ck_ring", "not installed");
#endif
	bench_run_side_by_side(impls, nimpl, bench_opts.reps, true, "counting", variant,
			       "throughput", "msgs/s");
	emit_pair(impls, nimpl);
	vz__spsc_fini(c.ring);
	free(c.ring);
	free(c.ring128->slots);
	free(c.ring128);
#ifdef VZ_HAVE_CK
	free(c.ck);
	free(c.ck_buf);
#endif
}

static void run_mpsc(uint64_t n)
{
	struct mpsc_ctx *c;
	struct bench_impl impls[2];
	int nimpl = 0;

	if (!bench_variant_enabled("raw-mpsc"))
		return;
	c = aligned_alloc(64, 64 * ((sizeof *c + 63) / 64));
	if (c == NULL) {
		fprintf(stderr, "queues: raw-mpsc: out of memory\n");
		exit(1);
	}
	memset(c, 0, sizeof *c);
	c->n = n;
	c->vpool = calloc(MPSC_POOL, sizeof *c->vpool);
	if (c->vpool == NULL)
		exit(1);
	impls[nimpl++] = (struct bench_impl){.impl = "veloz", .fn = veloz_mpsc_rep, .ctx = c};
#ifdef VZ_HAVE_URCU
	c->upool = calloc(MPSC_POOL, sizeof *c->upool);
	if (c->upool == NULL)
		exit(1);
	impls[nimpl++] = (struct bench_impl){.impl = "urcu", .fn = urcu_mpsc_rep, .ctx = c};
#else
	bench_skip("urcu", "not installed");
#endif
	bench_run_side_by_side(impls, nimpl, bench_opts.reps, true, "counting", "raw-mpsc",
			       "throughput", "msgs/s");
	emit_pair(impls, nimpl);
	free(c->vpool);
#ifdef VZ_HAVE_URCU
	free(c->upool);
#endif
	free(c);
}

static void run_limit(uint64_t rounds)
{
	struct limit_ctx l = {.rounds = rounds};
	struct bench_impl impl = {.impl = "limit", .fn = limit_rep, .ctx = &l};

	if (!bench_variant_enabled("cache-line"))
		return;
	l.h = bench_hist_create();
	if (l.h == NULL)
		exit(1);
	bench_lat_init(&l.lat, "counting", "cache-line", "limit", "rtt", "ns");
	bench_run_side_by_side(&impl, 1, bench_opts.reps, true, "counting", "cache-line", "rtt_p50",
			       "ns");
	bench_lat_emit(&l.lat);
	bench_hist_destroy(l.h);
}

int main(int argc, char **argv)
{
	pthread_t t[2];

	bench_init(argc, argv, "counting");
	if (bench_ncpus() < 2)
		fprintf(stderr, "queues: only one CPU allowed: producer and consumer share it\n");
	sem_init(&w.go[0], 0, 0);
	sem_init(&w.go[1], 0, 0);
	sem_init(&w.done, 0, 0);
	atomic_init(&w.at_start, 0);
	atomic_init(&w.quit, 0);
	for (int i = 0; i < 2; i++) {
		if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) != 0) {
			fprintf(stderr, "queues: cannot create worker threads\n");
			return 1;
		}
	}

	/* The limit is measured in this run, on the same CPUs, right before
	 * the queues (the host may re-place virtual CPUs between runs). */
	run_limit(bench_size(200000, 20000));
	run_spsc("raw-spsc", 1, bench_size(20000000, 1000000));
	run_spsc("raw-spsc-batch32", 32, bench_size(50000000, 2000000));
	run_mpsc(bench_size(10000000, 500000));

	/* Relaxed: the semaphore posts below publish it. */
	atomic_store_explicit(&w.quit, 1, memory_order_relaxed);
	sem_post(&w.go[0]);
	sem_post(&w.go[1]);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return 0;
}
