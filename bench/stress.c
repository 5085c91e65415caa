// SPDX-License-Identifier: MIT
/*
 * Benchmark `stress` (BENCH.md): 10 producer threads post 10,000 messages
 * each into one actor on one shard; the figure is the total time from the
 * first post of any producer (all are released together by a barrier) to
 * the actor having handled the last message, and the same as messages per
 * second. Producers share
 * CPU 0, the shard (or the classic loop thread) runs on CPU 1. The consumer
 * checks per-producer FIFO order and the total, so a lost or duplicated
 * message fails the run. Baseline: the classic mutex + condvar loop.
 */
#include "bench.h"
#include "bench_rt.h"
#include "baseline/classic_loop.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>

#define MSG_SEQ VZ_MSG_USER
#define NPROD	10

static uint64_t per_producer;

/* Consumer-side state shared by all implementations. */
struct sink {
	uint64_t expected;    /* NPROD * per_producer, set before */
	uint64_t seen;	      /* consumer only */
	uint64_t next[NPROD]; /* next sequence per producer, consumer only */
	uint64_t bad;
	uint64_t end_ns;  /* published by done */
	_Atomic int done; /* release by consumer, acquire by main */
};

static void sink_reset(struct sink *s)
{
	s->expected = NPROD * per_producer;
	s->seen = 0;
	s->bad = 0;
	s->end_ns = 0;
	for (int i = 0; i < NPROD; i++)
		s->next[i] = 0;
	atomic_store_explicit(&s->done, 0, memory_order_relaxed);
}

/* word = producer << 32 | sequence */
static void sink_take(struct sink *s, uint64_t word)
{
	unsigned p = (unsigned)(word >> 32);
	uint64_t seq = word & 0xffffffffu;

	if (p >= NPROD || seq != s->next[p])
		s->bad++;
	else
		s->next[p]++;
	if (++s->seen == s->expected) {
		s->end_ns = bench_now_ns();
		/* Pairs with the acquire in bench_wait_flag(). */
		atomic_store_explicit(&s->done, 1, memory_order_release);
	}
}

/* A producer: waits at the barrier, then posts its messages through post(). */
struct producer {
	int id;
	pthread_t t;
	pthread_barrier_t *go;
	int (*post)(void *target, uint64_t word);
	void *target;
	uint64_t start_ns; /* first post, after the barrier */
	int err;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(bench_cpu(0), &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(p->go);
	p->start_ns = bench_now_ns();
	for (uint64_t i = 0; i < per_producer; i++) {
		int rc = p->post(p->target, ((uint64_t)p->id << 32) | i);

		if (rc < 0) {
			p->err = rc;
			break;
		}
	}
	return NULL;
}

/* Start NPROD producers, release them together, wait for the consumer and
 * the producers. Returns 0 and the elapsed time, or -1. */
static int run_producers(const char *impl, struct sink *s, int (*post)(void *, uint64_t),
			 void *target, double *elapsed_ns)
{
	struct producer prod[NPROD];
	pthread_barrier_t go;
	uint64_t start;
	bool ok;
	int rc = 0;

	pthread_barrier_init(&go, NULL, NPROD + 1);
	for (int i = 0; i < NPROD; i++) {
		prod[i] = (struct producer){.id = i, .go = &go, .post = post, .target = target};
		if (pthread_create(&prod[i].t, NULL, producer_main, &prod[i]) != 0) {
			fprintf(stderr, "stress: cannot create producer threads\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&go);
	ok = bench_wait_flag(&s->done, 60.0);
	start = UINT64_MAX;
	for (int i = 0; i < NPROD; i++) {
		pthread_join(prod[i].t, NULL);
		/* The clock starts at the first post of any producer (the main
		 * thread may run long after the barrier opened). */
		if (prod[i].start_ns < start)
			start = prod[i].start_ns;
		if (prod[i].err) {
			fprintf(stderr, "stress: %s: producer %d: post failed (%d)\n", impl, i,
				prod[i].err);
			rc = -1;
		}
	}
	pthread_barrier_destroy(&go);
	if (!ok) {
		fprintf(stderr, "stress: %s: %llu of %llu handled after 60 s\n", impl,
			(unsigned long long)s->seen, (unsigned long long)s->expected);
		return -1;
	}
	if (s->bad) {
		fprintf(stderr, "stress: %s: %llu messages out of order\n", impl,
			(unsigned long long)s->bad);
		return -1;
	}
	*elapsed_ns = (double)(s->end_ns - start);
	return rc;
}

/* Per-implementation results beside the headline (total time). */
struct ctx {
	vz_backend_kind backend;
	struct bench_series thr, mallocs, syscalls;
	struct sink sink;
	vz_runtime *rt;
	vz_ref ref;
};

/* ---- veloz ------------------------------------------------------------ */

struct actor_state {
	struct sink *sink;
};

static int sink_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	((struct actor_state *)state)->sink = (struct sink *)arg;
	return 0;
}

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint64_t w;

	(void)self;
	if (vz_msg_type(m) != MSG_SEQ || vz_msg_len(m) != sizeof(w))
		return;
	__builtin_memcpy(&w, vz_msg_data(m), sizeof(w));
	sink_take(((struct actor_state *)state)->sink, w);
}

static const vz_actor_spec sink_spec = {
    .name = "stress-sink",
    .state_size = sizeof(struct actor_state),
    .init = sink_init,
    .receive = sink_receive,
};

static int veloz_post(void *target, uint64_t word)
{
	struct ctx *c = target;
	int rc;

	while ((rc = vz_post(c->rt, c->ref, MSG_SEQ, &word, sizeof(word))) == VZ_EAGAIN ||
	       rc == VZ_EFULL)
		bench_cpu_relax();
	return rc;
}

static int run_veloz(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	struct bench_rt_opts o = {
	    .backend = c->backend, .nshards = 1, .cpu = {1}, .quiet = rep > 0};
	vz_shard_stats s0, s1, d;
	double ns;
	int rc;

	if (bench_rt_create(&o, &c->rt) < 0)
		return -1;
	sink_reset(&c->sink);
	rc = vz_spawn(c->rt, 0, &sink_spec, &c->sink, &c->ref);
	if (rc == 0)
		rc = bench_rt_start(c->rt);
	if (rc < 0) {
		fprintf(stderr, "stress: veloz setup: %s\n", vz_strerror(rc));
		bench_rt_destroy(c->rt);
		return -1;
	}
	bench_rt_stats(c->rt, &s0, NULL);
	rc = run_producers("veloz", &c->sink, veloz_post, c, &ns);
	bench_rt_stats(c->rt, &s1, NULL);
	bench_rt_destroy(c->rt);
	c->rt = NULL;
	if (rc < 0)
		return -1;
	*value = ns / 1e6;
	if (rep >= 0) {
		double n = (double)c->sink.expected;

		bench_rt_stats_delta(&s0, &s1, &d);
		bench_series_add(&c->thr, n * 1e9 / ns);
		bench_series_add(&c->mallocs, (double)d.pool_refills / n);
		bench_series_add(&c->syscalls, (double)d.wakeups_sent / n);
	}
	return 0;
}

/* ---- classic ---------------------------------------------------------- */

static struct sink classic_sink;

static void classic_task(void *arg)
{
	sink_take(&classic_sink, (uint64_t)(uintptr_t)arg);
}

static int classic_post(void *target, uint64_t word)
{
	return classic_loop_post(target, classic_task, (void *)(uintptr_t)word);
}

static int run_classic(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	struct classic_loop *l;
	struct classic_loop_stats st;
	double ns;
	int rc;

	if (classic_loop_create(1024, &l) < 0 || classic_loop_start(l, 1) < 0) {
		fprintf(stderr, "stress: classic loop setup failed\n");
		return -1;
	}
	sink_reset(&classic_sink);
	rc = run_producers("classic", &classic_sink, classic_post, l, &ns);
	classic_loop_stop(l);
	classic_loop_stats(l, &st);
	classic_loop_destroy(l);
	if (rc < 0)
		return -1;
	*value = ns / 1e6;
	if (rep >= 0) {
		double n = (double)classic_sink.expected;

		bench_series_add(&c->thr, n * 1e9 / ns);
		bench_series_add(&c->mallocs, (double)st.grows / n);
		bench_series_add(&c->syscalls, (double)st.signals / n);
	}
	return 0;
}

static void ctx_init(struct ctx *c, const char *variant, const char *impl)
{
	bench_series_init(&c->thr, "stress", variant, impl, "throughput", "msg/s");
	bench_series_init(&c->mallocs, "stress", variant, impl, "mallocs_per_msg", "count");
	bench_series_init(&c->syscalls, "stress", variant, impl, "syscalls_per_msg", "count");
}

int main(int argc, char **argv)
{
	static struct ctx ctx[3];
	struct bench_impl impls[3];
	int n = 0, icl;

	bench_init(argc, argv, "stress");
	per_producer = bench_size(10000, 10000);
	fprintf(stderr,
		"stress: %d producers x %llu posts, producers on CPU %d, consumer on CPU %d\n",
		NPROD, (unsigned long long)per_producer, bench_cpu(0), bench_cpu(1));
	bench_pin(0, "main thread");
	for (int b = 0; b < 2; b++) {
		const char *name = bench_backend_name(bench_backends[b]);

		if (!bench_variant_enabled(name) || !bench_rt_backend_ok(bench_backends[b]))
			continue;
		ctx[n].backend = bench_backends[b];
		ctx_init(&ctx[n], name, "veloz");
		impls[n] = (struct bench_impl){.impl = "veloz", .fn = run_veloz, .ctx = &ctx[n]};
		n++;
	}
	icl = n;
	ctx_init(&ctx[n], "", "classic");
	impls[n] = (struct bench_impl){.impl = "classic", .fn = run_classic, .ctx = &ctx[n]};
	n++;

	bench_run_side_by_side(impls, n, bench_opts.reps, true, "stress", "", "total_time", "ms");
	for (int i = 0; i < icl; i++)
		impls[i].s.variant = bench_backend_name(ctx[i].backend);
	for (int i = 0; i < n; i++) {
		bench_emit_series(&impls[i].s);
		bench_emit_series(&ctx[i].thr);
		if (i < icl)
			bench_emit_ratio(&ctx[i].thr, &ctx[icl].thr, true);
		bench_emit_series(&ctx[i].mallocs);
		bench_emit_series(&ctx[i].syscalls);
	}
	return 0;
}
