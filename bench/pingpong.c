// SPDX-License-Identifier: MIT
/*
 * Benchmark `pingpong` (BENCH.md): two actors bounce one 8-byte message;
 * every round trip is timed (clock read before the send, after the reply
 * arrives) into a log-linear histogram, and the percentiles of each
 * repetition are reduced over repetitions. Variants are rows of the
 * `variants` table: where actor B lives relative to A (same shard, another
 * shard), how many round trips, and which CPUs. Adding a variant is adding
 * a row. `cross-shard` runs the shards under the default idle policy
 * (spin, then sleep); `cross-shard-spin` under VZ_IDLE_SPIN (busy-poll,
 * never block), the figure compared with the cache-line limit.
 *   veloz   - actor A sends MSG_PING (vz_send), B answers with vz_reply
 *   classic - the same bounce as tasks: A's task posts B's task to B's loop
 *             and back (one loop for "local", two loops for "cross-shard")
 *   limit   - a cache line bounced between the two CPUs (cross-core only)
 * CAF is a BENCH.md baseline here too; there is no CAF baseline yet, which
 * the program says on stderr.
 */
#include "bench.h"
#include "bench_rt.h"
#include "baseline/classic_loop.h"

#include <stdatomic.h>
#include <stdio.h>

enum { MSG_START = VZ_MSG_USER, MSG_PING, MSG_PONG };

struct variant {
	const char *name;
	unsigned nshards;      /* shards in the runtime (loops for classic) */
	unsigned b_shard;      /* where actor B lives; A is on shard 0 */
	int cpu[2];	       /* bench_cpu() index of shard 0 and shard 1 */
	uint64_t rounds;       /* round trips per repetition */
	uint64_t quick_rounds; /* with --quick */
	bool limit;	       /* also measure the cache-line limit */
	vz_idle_policy idle;   /* veloz shards' idle policy */
};

static const struct variant variants[] = {
    {"local", 1, 0, {1, 0}, 1000000, 100000, false, VZ_IDLE_SPIN_THEN_SLEEP},
    {"cross-shard", 2, 1, {0, 1}, 200000, 20000, true, VZ_IDLE_SPIN_THEN_SLEEP},
    /* Both shards busy-poll (never block): the runtime's floor against
     * the cache-line limit. */
    {"cross-shard-spin", 2, 1, {0, 1}, 200000, 20000, true, VZ_IDLE_SPIN},
};

/* Shared by A and the main thread: A writes during the run and publishes
 * with `done`. */
struct pp {
	struct bench_hist *hist;
	uint64_t rounds;
	uint64_t count;	  /* round trips completed (A only) */
	uint64_t t0;	  /* send time of the round in flight (A only) */
	uint64_t bad;	  /* replies with a wrong sequence number */
	_Atomic int done; /* release by A after the last round, acquire by main */
};

static void pp_reset(struct pp *p, uint64_t rounds)
{
	bench_hist_reset(p->hist);
	p->rounds = rounds;
	p->count = 0;
	p->bad = 0;
	atomic_store_explicit(&p->done, 0, memory_order_relaxed);
}

/* A got the reply to round p->count: record it; true when more to do. */
static bool pp_round_done(struct pp *p, uint64_t seq)
{
	bench_hist_record(p->hist, bench_now_ns() - p->t0);
	if (seq != p->count)
		p->bad++;
	if (++p->count == p->rounds) {
		/* Pairs with the acquire in bench_wait_flag(). */
		atomic_store_explicit(&p->done, 1, memory_order_release);
		return false;
	}
	return true;
}

static int pp_wait(struct pp *p, const char *impl)
{
	if (!bench_wait_flag(&p->done, 30.0)) {
		fprintf(stderr, "pingpong: %s: %llu of %llu round trips after 30 s\n", impl,
			(unsigned long long)p->count, (unsigned long long)p->rounds);
		return -1;
	}
	if (p->bad) {
		fprintf(stderr, "pingpong: %s: %llu replies out of sequence\n", impl,
			(unsigned long long)p->bad);
		return -1;
	}
	return 0;
}

/* One implementation of one variant: its ctx for the runner. */
struct ctx {
	const struct variant *v;
	vz_backend_kind backend;
	struct pp pp;
	struct bench_lat lat;
};

static uint64_t rounds_of(const struct variant *v)
{
	return bench_size(v->rounds, v->quick_rounds);
}

/* ---- veloz ------------------------------------------------------------ */

struct a_state {
	struct pp *pp;
	vz_ref peer;
	int err;
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
	int rc;

	st->pp->t0 = bench_now_ns();
	rc = vz_send(self, st->peer, MSG_PING, &seq, sizeof(seq));
	if (rc < 0 && !st->err) {
		st->err = rc;
		fprintf(stderr, "pingpong: vz_send: %s\n", vz_strerror(rc));
	}
}

static void a_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct a_state *st = state;
	uint64_t seq;

	switch (vz_msg_type(m)) {
	case MSG_START:
		a_ping(self, st);
		break;
	case MSG_PONG:
		__builtin_memcpy(&seq, vz_msg_data(m), sizeof(seq));
		if (pp_round_done(st->pp, seq))
			a_ping(self, st);
		break;
	}
}

static void b_receive(vz_actor *self, void *state, const vz_msg *m)
{
	int rc;

	(void)state;
	if (vz_msg_type(m) != MSG_PING)
		return;
	rc = vz_reply(self, m, MSG_PONG, vz_msg_data(m), vz_msg_len(m));
	if (rc < 0)
		fprintf(stderr, "pingpong: vz_reply: %s\n", vz_strerror(rc));
}

static const vz_actor_spec a_spec = {
    .name = "ping",
    .state_size = sizeof(struct a_state),
    .init = a_init,
    .receive = a_receive,
};

static const vz_actor_spec b_spec = {
    .name = "pong",
    .state_size = 0,
    .receive = b_receive,
};

static int run_veloz(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	const struct variant *v = c->v;
	struct bench_rt_opts o = {.backend = c->backend,
				  .nshards = v->nshards,
				  .cpu = {v->cpu[0], v->cpu[1]},
				  .idle_policy = v->idle,
				  .quiet = rep > 0};
	struct a_arg aa;
	vz_runtime *rt;
	vz_ref a, b;
	int rc;

	if (bench_rt_create(&o, &rt) < 0)
		return -1;
	pp_reset(&c->pp, rounds_of(v));
	aa.pp = &c->pp;
	rc = vz_spawn(rt, v->b_shard, &b_spec, NULL, &b);
	if (rc == 0) {
		aa.peer = b;
		rc = vz_spawn(rt, 0, &a_spec, &aa, &a);
	}
	if (rc == 0)
		rc = bench_rt_start(rt);
	if (rc == 0)
		rc = vz_post(rt, a, MSG_START, NULL, 0);
	if (rc < 0) {
		fprintf(stderr, "pingpong: veloz setup: %s\n", vz_strerror(rc));
		bench_rt_destroy(rt);
		return -1;
	}
	rc = pp_wait(&c->pp, "veloz");
	bench_rt_destroy(rt);
	if (rc < 0)
		return -1;
	*value = (double)bench_hist_percentile(c->pp.hist, 50.0);
	if (rep >= 0)
		bench_lat_add(&c->lat, c->pp.hist);
	return 0;
}

/* ---- classic ---------------------------------------------------------- */

/* One bounce context for the classic loops (tasks carry no payload beyond
 * their argument, so the sequence rides in the shared struct). */
static struct {
	struct classic_loop *la, *lb;
	struct pp *pp;
	uint64_t seq;
} cb;

static void classic_a(void *arg);

/* B's task: answer on A's loop. */
static void classic_b(void *arg)
{
	classic_loop_post(cb.la, classic_a, arg);
}

/* A's task: the reply to the round in flight (arg = its sequence), or
 * the start (arg = UINTPTR_MAX). */
static void classic_a(void *arg)
{
	uintptr_t seq = (uintptr_t)arg;

	if (seq != UINTPTR_MAX && !pp_round_done(cb.pp, seq))
		return;
	cb.pp->t0 = bench_now_ns();
	classic_loop_post(cb.lb, classic_b, (void *)(uintptr_t)cb.pp->count);
}

static int run_classic(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	const struct variant *v = c->v;
	int rc;

	cb.la = cb.lb = NULL;
	if (classic_loop_create(64, &cb.la) < 0 || classic_loop_start(cb.la, v->cpu[0]) < 0)
		return -1;
	cb.lb = cb.la;
	if (v->nshards > 1 && v->b_shard != 0) {
		if (classic_loop_create(64, &cb.lb) < 0 ||
		    classic_loop_start(cb.lb, v->cpu[1]) < 0) {
			classic_loop_stop(cb.la);
			classic_loop_destroy(cb.la);
			return -1;
		}
	}
	pp_reset(&c->pp, rounds_of(v));
	cb.pp = &c->pp;
	classic_loop_post(cb.la, classic_a, (void *)UINTPTR_MAX);
	rc = pp_wait(&c->pp, "classic");
	classic_loop_stop(cb.la);
	if (cb.lb != cb.la) {
		classic_loop_stop(cb.lb);
		classic_loop_destroy(cb.lb);
	}
	classic_loop_destroy(cb.la);
	if (rc < 0)
		return -1;
	*value = (double)bench_hist_percentile(c->pp.hist, 50.0);
	if (rep >= 0)
		bench_lat_add(&c->lat, c->pp.hist);
	return 0;
}

/* ---- limit ------------------------------------------------------------ */

static int run_limit(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	uint64_t rounds = rounds_of(c->v);

	bench_hist_reset(c->pp.hist);
	if (bench_limit_pingpong(c->v->cpu[0], c->v->cpu[1], rounds, c->pp.hist) < 0)
		return -1;
	/* The limit pins the calling thread; put the main thread back. */
	bench_pin(0, "main thread");
	*value = (double)bench_hist_percentile(c->pp.hist, 50.0);
	if (rep >= 0)
		bench_lat_add(&c->lat, c->pp.hist);
	return 0;
}

/* ---- driver ----------------------------------------------------------- */

static void ctx_init(struct ctx *c, const struct variant *v, const char *variant, const char *impl)
{
	c->v = v;
	c->pp.hist = bench_hist_create();
	bench_lat_init(&c->lat, "pingpong", variant, impl, "rtt", "ns");
}

static void run_variant(const struct variant *v)
{
	static char names[2][64];
	struct ctx ctx[4];
	struct bench_impl impls[4];
	int n = 0, nvz = 0, icl;

	fprintf(stderr,
		"pingpong %s: %llu round trips per rep, A on shard 0 (CPU %d), B on shard %u (CPU "
		"%d)\n",
		v->name, (unsigned long long)rounds_of(v), bench_cpu(v->cpu[0]), v->b_shard,
		bench_cpu(v->b_shard ? v->cpu[1] : v->cpu[0]));
	for (int b = 0; b < 2; b++) {
		const char *be = bench_backend_name(bench_backends[b]);

		if (!bench_rt_backend_ok(bench_backends[b]))
			continue;
		/* veloz variants carry the backend: "local-io_uring". */
		snprintf(names[nvz], sizeof(names[0]), "%s-%s", v->name, be);
		ctx[n].backend = bench_backends[b];
		ctx_init(&ctx[n], v, names[nvz], "veloz");
		impls[n] = (struct bench_impl){.impl = "veloz", .fn = run_veloz, .ctx = &ctx[n]};
		fprintf(stderr, "pingpong %s: variant \"%s\" is veloz on %s\n", v->name, names[nvz],
			be);
		n++;
		nvz++;
	}
	icl = n;
	ctx_init(&ctx[n], v, v->name, "classic");
	impls[n] = (struct bench_impl){.impl = "classic", .fn = run_classic, .ctx = &ctx[n]};
	n++;
	if (v->limit) {
		ctx_init(&ctx[n], v, v->name, "limit");
		impls[n] = (struct bench_impl){.impl = "limit", .fn = run_limit, .ctx = &ctx[n]};
		n++;
	}
	bench_run_side_by_side(impls, n, bench_opts.reps, true, "pingpong", v->name, "rtt_p50",
			       "ns");
	for (int i = 0; i < n; i++) {
		bench_lat_emit(&ctx[i].lat);
		if (i < icl) {
			bench_emit_ratio(&ctx[i].lat.p50, &ctx[icl].lat.p50, false);
			if (v->limit)
				bench_emit_ratio(&ctx[i].lat.p50, &ctx[icl + 1].lat.p50, false);
		}
	}
	for (int i = 0; i < n; i++)
		bench_hist_destroy(ctx[i].pp.hist);
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, "pingpong");
	bench_pin(0, "main thread");
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		if (bench_variant_enabled(variants[i].name))
			run_variant(&variants[i]);
	}
	bench_skip("caf", "no CAF baseline yet");
	return 0;
}
