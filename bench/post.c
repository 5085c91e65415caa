// SPDX-License-Identifier: MIT
/*
 * Benchmark `post` (BENCH.md): one foreign producer thread posts N tiny
 * messages (an 8-byte sequence number) to one actor on a shard; the figure
 * is messages per second end to end, from the first post to the actor
 * having handled the last. The producer runs on CPU 0 and the shard (or the
 * baseline's loop thread) on CPU 1, the same placement for every
 * implementation:
 *   veloz   - vz_post() through the thread's lane into the shard, per backend
 *   classic - mutex + condvar loop (baseline/classic_loop.c)
 *   libuv   - mutex-protected queue + uv_async_send (baseline/uv_loop.c)
 * The receiver checks the sequence (FIFO, nothing lost or duplicated), so
 * a wrong implementation fails instead of reporting a number. Counters
 * are reported per message next to the figure: mallocs_per_msg (veloz:
 * pool refills; classic: ring growth), syscalls_per_msg (veloz: wake-up
 * syscalls made by shards, which excludes the foreign producer's own
 * wake-ups; classic: condvar signals to a waiting loop) and sleeps_per_msg
 * (times the consumer blocked; each one cost the producer a wake-up).
 */
#include "bench.h"
#include "bench_rt.h"
#include "baseline/classic_loop.h"
#ifdef VZ_HAVE_LIBUV
#include "baseline/uv_loop.h"
#endif

#include <stdatomic.h>
#include <stdio.h>

#define MSG_SEQ VZ_MSG_USER

/* What the consumer side of every implementation shares with the
 * producer. Written by the consumer only, except `expected` (set before). */
struct sink {
	uint64_t expected; /* messages in this rep, set before posting */
	uint64_t seen;	   /* consumer only */
	uint64_t bad;	   /* out-of-order sequence numbers, consumer only */
	uint64_t end_ns;   /* when the last one was handled; published by done */
	_Atomic int done;  /* release by the consumer, acquire by the producer */
};

/* Count one message with sequence number seq; publish the end time after
 * the last. */
static void sink_take(struct sink *s, uint64_t seq)
{
	if (seq != s->seen)
		s->bad++;
	if (++s->seen == s->expected) {
		s->end_ns = bench_now_ns();
		/* Pairs with the acquire in bench_wait_flag(): end_ns and bad
		 * are visible to the producer once it sees done. */
		atomic_store_explicit(&s->done, 1, memory_order_release);
	}
}

static void sink_reset(struct sink *s, uint64_t n)
{
	s->expected = n;
	s->seen = 0;
	s->bad = 0;
	s->end_ns = 0;
	atomic_store_explicit(&s->done, 0, memory_order_relaxed);
}

/* Finish a rep: wait for the consumer, check, compute msgs/s. */
static int sink_finish(struct sink *s, const char *impl, uint64_t start, double *value)
{
	if (!bench_wait_flag(&s->done, 60.0)) {
		fprintf(stderr, "post: %s: only %llu of %llu messages handled after 60 s\n", impl,
			(unsigned long long)s->seen, (unsigned long long)s->expected);
		return -1;
	}
	if (s->bad) {
		fprintf(stderr, "post: %s: %llu messages out of order\n", impl,
			(unsigned long long)s->bad);
		return -1;
	}
	*value = (double)s->expected * 1e9 / (double)(s->end_ns - start);
	return 0;
}

static uint64_t nmsgs;

/* ---- veloz ------------------------------------------------------------ */

struct vz_ctx {
	vz_backend_kind backend;
	struct sink sink;
	struct bench_series mallocs, syscalls, sleeps;
};

struct actor_state {
	struct sink *sink;
};

static int sink_init(vz_actor *self, void *state, const void *arg)
{
	struct actor_state *st = state;

	(void)self;
	st->sink = (struct sink *)arg;
	return 0;
}

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct actor_state *st = state;
	uint64_t seq;

	(void)self;
	if (vz_msg_type(m) != MSG_SEQ || vz_msg_len(m) != sizeof(seq))
		return;
	__builtin_memcpy(&seq, vz_msg_data(m), sizeof(seq));
	sink_take(st->sink, seq);
}

static const vz_actor_spec sink_spec = {
    .name = "post-sink",
    .state_size = sizeof(struct actor_state),
    .init = sink_init,
    .receive = sink_receive,
};

static int run_veloz(void *arg, int rep, double *value)
{
	struct vz_ctx *c = arg;
	struct bench_rt_opts o = {
	    .backend = c->backend, .nshards = 1, .cpu = {1}, .quiet = rep > 0};
	vz_shard_stats s0, s1, d;
	vz_runtime *rt;
	vz_ref ref;
	uint64_t start;
	int rc;

	if (bench_rt_create(&o, &rt) < 0)
		return -1;
	sink_reset(&c->sink, nmsgs);
	rc = vz_spawn(rt, 0, &sink_spec, &c->sink, &ref);
	if (rc == 0)
		rc = bench_rt_start(rt);
	if (rc < 0) {
		fprintf(stderr, "post: veloz setup: %s\n", vz_strerror(rc));
		bench_rt_destroy(rt);
		return -1;
	}
	bench_rt_stats(rt, &s0, NULL);
	start = bench_now_ns();
	for (uint64_t i = 0; i < nmsgs; i++) {
		while ((rc = vz_post(rt, ref, MSG_SEQ, &i, sizeof(i))) == VZ_EAGAIN ||
		       rc == VZ_EFULL)
			bench_cpu_relax();
		if (rc < 0) {
			fprintf(stderr, "post: vz_post: %s\n", vz_strerror(rc));
			bench_rt_destroy(rt);
			return -1;
		}
	}
	rc = sink_finish(&c->sink, "veloz", start, value);
	bench_rt_stats(rt, &s1, NULL);
	bench_rt_destroy(rt);
	if (rc < 0)
		return -1;
	if (rep >= 0) {
		bench_rt_stats_delta(&s0, &s1, &d);
		bench_series_add(&c->mallocs, (double)d.pool_refills / (double)nmsgs);
		bench_series_add(&c->syscalls, (double)d.wakeups_sent / (double)nmsgs);
		bench_series_add(&c->sleeps, (double)d.sleeps / (double)nmsgs);
	}
	return 0;
}

/* ---- classic ---------------------------------------------------------- */

static struct sink classic_sink;

static void classic_task(void *arg)
{
	sink_take(&classic_sink, (uint64_t)(uintptr_t)arg);
}

struct classic_ctx {
	struct bench_series mallocs, syscalls, sleeps;
};

static int run_classic(void *arg, int rep, double *value)
{
	struct classic_ctx *c = arg;
	struct classic_loop *l;
	struct classic_loop_stats st;
	uint64_t start;
	int rc;

	if (classic_loop_create(1024, &l) < 0 || classic_loop_start(l, 1) < 0) {
		fprintf(stderr, "post: classic loop setup failed\n");
		return -1;
	}
	sink_reset(&classic_sink, nmsgs);
	start = bench_now_ns();
	for (uint64_t i = 0; i < nmsgs; i++) {
		if (classic_loop_post(l, classic_task, (void *)(uintptr_t)i) < 0) {
			fprintf(stderr, "post: classic_loop_post failed\n");
			classic_loop_stop(l);
			classic_loop_destroy(l);
			return -1;
		}
	}
	rc = sink_finish(&classic_sink, "classic", start, value);
	classic_loop_stop(l);
	classic_loop_stats(l, &st);
	classic_loop_destroy(l);
	if (rc == 0 && rep >= 0) {
		bench_series_add(&c->mallocs, (double)st.grows / (double)nmsgs);
		bench_series_add(&c->syscalls, (double)st.signals / (double)nmsgs);
		bench_series_add(&c->sleeps, (double)st.waits / (double)nmsgs);
	}
	return rc;
}

/* ---- libuv ------------------------------------------------------------ */

#ifdef VZ_HAVE_LIBUV
static struct sink uv_sink;

static void uv_task(void *arg)
{
	sink_take(&uv_sink, (uint64_t)(uintptr_t)arg);
}

static int run_libuv(void *arg, int rep, double *value)
{
	struct uvloop *l;
	uint64_t start;
	int rc;

	(void)arg;
	(void)rep;
	if (uvloop_create(1024, &l) < 0 || uvloop_start(l, 1) < 0) {
		fprintf(stderr, "post: libuv loop setup failed\n");
		return -1;
	}
	sink_reset(&uv_sink, nmsgs);
	start = bench_now_ns();
	for (uint64_t i = 0; i < nmsgs; i++) {
		if (uvloop_post(l, uv_task, (void *)(uintptr_t)i) < 0) {
			fprintf(stderr, "post: uvloop_post failed\n");
			uvloop_stop(l);
			uvloop_destroy(l);
			return -1;
		}
	}
	rc = sink_finish(&uv_sink, "libuv", start, value);
	uvloop_stop(l);
	uvloop_destroy(l);
	return rc;
}
#endif

int main(int argc, char **argv)
{
	struct vz_ctx vz[2];
	struct classic_ctx cl;
	struct bench_impl impls[4];
	int n = 0, nvz = 0, icl, iuv = -1;

	bench_init(argc, argv, "post");
	nmsgs = bench_size(1000000, 200000);
	fprintf(stderr, "post: %llu messages of 8 bytes, producer on CPU %d, consumer on CPU %d\n",
		(unsigned long long)nmsgs, bench_cpu(0), bench_cpu(1));
	bench_pin(0, "producer (main thread)");

	for (int b = 0; b < 2; b++) {
		const char *name = bench_backend_name(bench_backends[b]);

		if (!bench_variant_enabled(name) || !bench_rt_backend_ok(bench_backends[b]))
			continue;
		vz[nvz].backend = bench_backends[b];
		bench_series_init(&vz[nvz].mallocs, "post", name, "veloz", "mallocs_per_msg",
				  "count");
		bench_series_init(&vz[nvz].syscalls, "post", name, "veloz", "syscalls_per_msg",
				  "count");
		bench_series_init(&vz[nvz].sleeps, "post", name, "veloz", "sleeps_per_msg",
				  "count");
		impls[n++] = (struct bench_impl){.impl = "veloz", .fn = run_veloz, .ctx = &vz[nvz]};
		nvz++;
	}
	bench_series_init(&cl.mallocs, "post", "", "classic", "mallocs_per_msg", "count");
	bench_series_init(&cl.syscalls, "post", "", "classic", "syscalls_per_msg", "count");
	bench_series_init(&cl.sleeps, "post", "", "classic", "sleeps_per_msg", "count");
	icl = n;
	impls[n++] = (struct bench_impl){.impl = "classic", .fn = run_classic, .ctx = &cl};
#ifdef VZ_HAVE_LIBUV
	iuv = n;
	impls[n++] = (struct bench_impl){.impl = "libuv", .fn = run_libuv};
#else
	bench_skip("libuv", "not installed");
#endif

	bench_run_side_by_side(impls, n, bench_opts.reps, true, "post", "", "throughput", "msg/s");

	/* The veloz series carry their backend as variant. */
	for (int i = 0; i < nvz; i++)
		impls[i].s.variant = bench_backend_name(vz[i].backend);
	for (int i = 0; i < n; i++)
		bench_emit_series(&impls[i].s);
	for (int i = 0; i < nvz; i++) {
		bench_emit_ratio(&impls[i].s, &impls[icl].s, true);
		if (iuv >= 0)
			bench_emit_ratio(&impls[i].s, &impls[iuv].s, true);
		bench_emit_series(&vz[i].mallocs);
		bench_emit_series(&vz[i].syscalls);
		bench_emit_series(&vz[i].sleeps);
	}
	bench_emit_series(&cl.mallocs);
	bench_emit_series(&cl.syscalls);
	bench_emit_series(&cl.sleeps);
	return 0;
}
