// SPDX-License-Identifier: MIT
/*
 * Benchmark `sched` (BENCH.md): a latency-sensitive ping-pong next to a
 * flood, with and without scheduling classes.
 *
 * Actor A (shard 0, CPU 0) bounces an 8-byte message off actor B (shard 1,
 * CPU 1); every round trip is timed into a histogram at A.
 *   idle-<backend>:  A and B alone (B alone on its shard), classes on.
 *   flood-<backend>: the same while BULK_ACTORS bulk actors on shard 1
 *                    each keep BULK_IN_FLIGHT self-sends in flight, each
 *                    message doing BULK_WORK iterations of work (about
 *                    0.1-0.3 us): shard 1 never runs dry.
 * Implementations:
 *   veloz   - classes on: [0] "bulk" shares 100, [1] "latency" shares 100,
 *             latency-sensitive; A and B in class 1, the bulk actors in 0.
 *   noclass - the same actors with no classes: one FIFO run queue.
 *   limit   - a cache line bounced between CPU 0 and CPU 1 (both spin),
 *             in the same run: a round trip of the ping-pong moves several
 *             lines each way, so its figures follow this one when the host
 *             places the two virtual CPUs farther apart.
 * In the flood variant also:
 *   idle    - veloz without the flood, so that flood and idle are paired.
 * Ratio lines (same run, paired repetitions): ratio_vs_noclass = noclass
 * p99 / veloz p99, ratio_vs_idle = idle p99 / veloz p99 under the flood.
 * The target: flood p99 with classes <= 2x the idle p99 (ratio_vs_idle >=
 * 0.5), and >= 10x better than noclass (ratio_vs_noclass >= 10).
 */
#include "bench.h"
#include "bench_rt.h"

#include <stdatomic.h>
#include <stdio.h>

enum { MSG_START = VZ_MSG_USER, MSG_PING, MSG_PONG, MSG_BULK };

#define BULK_ACTORS    64
#define BULK_IN_FLIGHT 8
#define BULK_WORK      100

struct pp {
	struct bench_hist *hist;
	uint64_t rounds, count, t0, bad;
	_Atomic int done; /* release by A after the last round, acquire by main */
};

struct ctx {
	bool flood, classes;
	vz_backend_kind backend;
	struct pp pp;
	struct bench_lat lat;
};

struct a_state {
	struct pp *pp;
	vz_ref peer;
};

struct a_arg {
	struct pp *pp;
	vz_ref peer;
};

static int a_init(vz_actor *self, void *state, const void *arg)
{
	const struct a_arg *a = arg;
	struct a_state *st = state;

	(void)self;
	st->pp = a->pp;
	st->peer = a->peer;
	return 0;
}

static void a_ping(vz_actor *self, struct a_state *st)
{
	uint64_t seq = st->pp->count;

	st->pp->t0 = bench_now_ns();
	if (vz_send(self, st->peer, MSG_PING, &seq, sizeof(seq)) < 0)
		st->pp->bad++;
}

static void a_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct a_state *st = state;
	struct pp *p = st->pp;
	uint64_t seq;

	if (vz_msg_type(m) == MSG_START) {
		a_ping(self, st);
		return;
	}
	if (vz_msg_type(m) != MSG_PONG)
		return;
	__builtin_memcpy(&seq, vz_msg_data(m), sizeof(seq));
	bench_hist_record(p->hist, bench_now_ns() - p->t0);
	if (seq != p->count)
		p->bad++;
	if (++p->count == p->rounds) {
		/* Pairs with the acquire in bench_wait_flag(). */
		atomic_store_explicit(&p->done, 1, memory_order_release);
		return;
	}
	a_ping(self, st);
}

static void b_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) == MSG_PING)
		vz_reply(self, m, MSG_PONG, vz_msg_data(m), vz_msg_len(m));
}

static int bulk_init(vz_actor *self, void *state, const void *arg)
{
	(void)state;
	(void)arg;
	for (int i = 0; i < BULK_IN_FLIGHT; i++)
		if (vz_send(self, vz_self(self), MSG_BULK, NULL, 0) < 0)
			return VZ_EINVAL;
	return 0;
}

static void bulk_receive(vz_actor *self, void *state, const vz_msg *m)
{
	volatile unsigned sink = 0;

	(void)state;
	(void)m;
	for (unsigned i = 0; i < BULK_WORK; i++)
		sink += i;
	vz_send(self, vz_self(self), MSG_BULK, NULL, 0); /* VZ_ESTOPPED at the end */
}

static const vz_class_config classes[2] = {
    {.name = "bulk", .shares = 100},
    {.name = "latency", .shares = 100, .latency = true},
};

static int run_veloz(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	unsigned lat = c->classes ? 1 : 0;
	vz_actor_spec a_spec = {.name = "ping",
				.state_size = sizeof(struct a_state),
				.init = a_init,
				.receive = a_receive,
				.sched_class = lat};
	vz_actor_spec b_spec = {.name = "pong", .receive = b_receive, .sched_class = lat};
	vz_actor_spec bulk_spec = {.name = "bulk", .init = bulk_init, .receive = bulk_receive};
	struct bench_rt_opts o = {.backend = c->backend,
				  .nshards = 2,
				  .cpu = {0, 1},
				  .quiet = rep > 0,
				  .nclasses = c->classes ? 2 : 0,
				  .classes = classes};
	struct a_arg aa;
	vz_runtime *rt;
	vz_ref a, b;
	int rc = 0;

	if (bench_rt_create(&o, &rt) < 0)
		return -1;
	bench_hist_reset(c->pp.hist);
	c->pp.rounds = bench_size(20000, 2000);
	c->pp.count = c->pp.bad = 0;
	atomic_store_explicit(&c->pp.done, 0, memory_order_relaxed);
	for (int i = 0; c->flood && i < BULK_ACTORS && rc == 0; i++)
		rc = vz_spawn(rt, 1, &bulk_spec, NULL, NULL);
	if (rc == 0)
		rc = vz_spawn(rt, 1, &b_spec, NULL, &b);
	aa.pp = &c->pp;
	aa.peer = b;
	if (rc == 0)
		rc = vz_spawn(rt, 0, &a_spec, &aa, &a);
	if (rc == 0)
		rc = bench_rt_start(rt);
	if (rc == 0)
		rc = vz_post(rt, a, MSG_START, NULL, 0);
	if (rc < 0) {
		fprintf(stderr, "sched: veloz setup: %s\n", vz_strerror(rc));
		bench_rt_destroy(rt);
		return -1;
	}
	if (!bench_wait_flag(&c->pp.done, 60.0)) {
		fprintf(stderr, "sched: %llu of %llu round trips after 60 s\n",
			(unsigned long long)c->pp.count, (unsigned long long)c->pp.rounds);
		rc = -1;
	} else if (c->pp.bad) {
		fprintf(stderr, "sched: %llu bad replies or sends\n",
			(unsigned long long)c->pp.bad);
		rc = -1;
	}
	if (rc == 0 && c->classes && rep == 0) {
		vz_class_stats cs;

		for (unsigned k = 0; k < 2; k++) {
			if (vz_stats_class(rt, 1, k, &cs) < 0)
				continue;
			fprintf(stderr,
				"sched %s: shard 1 class %s: %llu msgs, %.1f ms, wait p50 <= %llu "
				"ns, p99 <= %llu ns, quota violations %llu\n",
				c->flood ? "flood" : "idle", cs.name,
				(unsigned long long)cs.messages, (double)cs.runtime_ns / 1e6,
				(unsigned long long)vz_class_wait_quantile(&cs, 0.5),
				(unsigned long long)vz_class_wait_quantile(&cs, 0.99),
				(unsigned long long)cs.quota_violations);
		}
	}
	bench_rt_destroy(rt);
	if (rc < 0)
		return -1;
	*value = (double)bench_hist_percentile(c->pp.hist, 99.0);
	if (rep >= 0)
		bench_lat_add(&c->lat, c->pp.hist);
	return 0;
}

/* The cache-line limit between the two shards' CPUs. */
static int run_limit(void *arg, int rep, double *value)
{
	struct ctx *c = arg;

	bench_hist_reset(c->pp.hist);
	if (bench_limit_pingpong(0, 1, bench_size(20000, 2000), c->pp.hist) < 0)
		return -1;
	/* The limit pins the calling thread; put the main thread back. */
	bench_pin(0, "main thread");
	*value = (double)bench_hist_percentile(c->pp.hist, 99.0);
	if (rep >= 0)
		bench_lat_add(&c->lat, c->pp.hist);
	return 0;
}

static void ctx_init(struct ctx *c, vz_backend_kind be, bool flood, bool cls, const char *variant,
		     const char *impl)
{
	c->backend = be;
	c->flood = flood;
	c->classes = cls;
	c->pp.hist = bench_hist_create();
	bench_lat_init(&c->lat, "sched", variant, impl, "rtt", "ns");
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, "sched");
	bench_pin(0, "main thread");
	for (int b = 0; b < 2; b++) {
		const char *be = bench_backend_name(bench_backends[b]);
		char idle[32], flood[32];
		struct ctx ctx[6];
		struct bench_impl impls[4];

		if (!bench_rt_backend_ok(bench_backends[b]))
			continue;
		snprintf(idle, sizeof idle, "idle-%s", be);
		snprintf(flood, sizeof flood, "flood-%s", be);
		fprintf(stderr,
			"sched: A on shard 0 (CPU %d), B on shard 1 (CPU %d); flood: %d bulk "
			"actors x %d in flight on shard 1\n",
			bench_cpu(0), bench_cpu(1), BULK_ACTORS, BULK_IN_FLIGHT);
		if (bench_variant_enabled(idle)) {
			ctx_init(&ctx[0], bench_backends[b], false, true, idle, "veloz");
			ctx_init(&ctx[3], bench_backends[b], false, false, idle, "limit");
			impls[0] =
			    (struct bench_impl){.impl = "veloz", .fn = run_veloz, .ctx = &ctx[0]};
			impls[1] =
			    (struct bench_impl){.impl = "limit", .fn = run_limit, .ctx = &ctx[3]};
			bench_run_side_by_side(impls, 2, bench_opts.reps, true, "sched", idle,
					       "rtt_p99", "ns");
			bench_lat_emit(&ctx[0].lat);
			bench_lat_emit(&ctx[3].lat);
			bench_hist_destroy(ctx[0].pp.hist);
			bench_hist_destroy(ctx[3].pp.hist);
		}
		if (bench_variant_enabled(flood)) {
			ctx_init(&ctx[1], bench_backends[b], true, true, flood, "veloz");
			ctx_init(&ctx[2], bench_backends[b], true, false, flood, "noclass");
			/* idle again, in the same run: the flood-vs-idle target
			 * is a paired ratio, not two variants measured at
			 * different times (the host's placement of the two
			 * virtual CPUs changes the round trip several-fold) */
			ctx_init(&ctx[4], bench_backends[b], false, true, flood, "idle");
			ctx_init(&ctx[5], bench_backends[b], false, false, flood, "limit");
			impls[0] =
			    (struct bench_impl){.impl = "veloz", .fn = run_veloz, .ctx = &ctx[1]};
			impls[1] =
			    (struct bench_impl){.impl = "noclass", .fn = run_veloz, .ctx = &ctx[2]};
			impls[2] =
			    (struct bench_impl){.impl = "idle", .fn = run_veloz, .ctx = &ctx[4]};
			impls[3] =
			    (struct bench_impl){.impl = "limit", .fn = run_limit, .ctx = &ctx[5]};
			bench_run_side_by_side(impls, 4, bench_opts.reps, true, "sched", flood,
					       "rtt_p99", "ns");
			bench_lat_emit(&ctx[1].lat);
			bench_lat_emit(&ctx[2].lat);
			bench_lat_emit(&ctx[4].lat);
			bench_lat_emit(&ctx[5].lat);
			bench_emit_ratio(&ctx[1].lat.p99, &ctx[2].lat.p99, false);
			/* idle p99 / flood p99: the target is >= 0.5 */
			bench_emit_ratio(&ctx[1].lat.p99, &ctx[4].lat.p99, false);
			for (int k = 1; k < 6; k++)
				if (k != 3)
					bench_hist_destroy(ctx[k].pp.hist);
		}
	}
	return 0;
}
