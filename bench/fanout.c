// SPDX-License-Identifier: MIT
/*
 * Benchmark `fanout` (BENCH.md, after Savina's Big): K actors on every
 * shard (default 2 shards on CPUs 0 and 1, K = 8). Each actor sends a ping
 * to an actor chosen at random on another shard, which answers with a
 * pong; an actor keeps P pings in flight (P = 4) and sends its next ping
 * when a pong comes back, until the run's N pings (1M, 100k with --quick)
 * are answered (N / (shards * K) per actor). The figure is messages per
 * second (pings + pongs) from the first send to the last pong, measured on
 * the shards; every pong is checked (count and sequence sum per actor, and
 * the pings handled add up to N).
 *   veloz   - vz_send for the ping, vz_reply for the pong, per backend
 *             (variant name carries the backend); counters from
 *             vz_stats_total(): mallocs_per_msg (pool refills / msgs),
 *             syscalls_per_msg (wake-up syscalls / msgs),
 *             ring_full_per_msg
 *   classic - one classic loop thread per CPU, each actor a struct living
 *             on one loop; a message is classic_loop_post() of the
 *             handler to the target's loop, the (target, sender, sequence)
 *             packed into the task's argument (no allocation per message);
 *             counters: ring growth and condition-variable signals per msg
 */
#include "bench.h"
#include "bench_rt.h"
#include "baseline/classic_loop.h"

#include <stdatomic.h>
#include <stdio.h>

enum { MSG_START = VZ_MSG_USER, MSG_PING, MSG_PONG };

#define NSHARDS	   2
#define MAX_K	   64
#define MAX_ACTORS (NSHARDS * MAX_K)

struct variant {
	const char *name;
	unsigned k;	/* actors per shard */
	unsigned depth; /* pings in flight per actor */
	uint64_t n, quick_n;
	int cpu[NSHARDS]; /* bench_cpu() index of each shard (loop) */
};

static const struct variant variants[] = {
    {"k8-p4", 8, 4, 1000000, 100000, {0, 1}},
};

/* One actor's bookkeeping, written only by the thread its shard (loop)
 * runs on during a run, read by main after `done`. */
struct peer {
	uint64_t quota;	   /* pings this actor sends */
	uint64_t sent;	   /* pings sent */
	uint64_t pongs;	   /* pongs received */
	uint64_t pong_sum; /* sum of the sequence numbers of the pongs */
	uint64_t pings_in; /* pings answered */
	uint64_t bad;	   /* pongs with a sequence never sent */
	uint64_t rng;	   /* xorshift64 state */
	uint64_t start_ns; /* first send */
	uint64_t end_ns;   /* last pong */
	unsigned id;	   /* index in run.peers: shard * k + i */
	int err;	   /* first send error */
	char pad[64];	   /* keep neighbours' hot fields apart */
};

/* Shared between the shards and main. */
struct run {
	unsigned k, depth;
	uint64_t n;
	struct peer peers[MAX_ACTORS];
	vz_ref refs[MAX_ACTORS];   /* veloz: written by main before start */
	_Atomic unsigned finished; /* actors whose pongs are all in */
	_Atomic int done;	   /* release by the last actor to finish (or on error) */
};

static void run_reset(struct run *r, const struct variant *v)
{
	uint64_t n = bench_size(v->n, v->quick_n), per;

	r->k = v->k;
	r->depth = v->depth;
	per = n / (NSHARDS * v->k);
	r->n = per * NSHARDS * v->k;
	for (unsigned i = 0; i < NSHARDS * v->k; i++) {
		r->peers[i] = (struct peer){
		    .quota = per, .id = i, .rng = 0x9E3779B97F4A7C15ull * (i + 1) | 1};
	}
	atomic_store_explicit(&r->finished, 0, memory_order_relaxed);
	atomic_store_explicit(&r->done, 0, memory_order_relaxed);
}

/* A random actor on another shard than `from`'s: its index. */
static inline unsigned run_pick(const struct run *r, struct peer *from)
{
	uint64_t x = from->rng;
	unsigned shard = from->id / r->k, other;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	from->rng = x;
	/* NSHARDS - 1 other shards; with two, the other one. */
	other = (shard + 1 + (unsigned)((x >> 32) % (NSHARDS - 1))) % NSHARDS;
	return other * r->k + (unsigned)(x % r->k);
}

/* Signal main: stop waiting (error) or the run is over. */
static void run_signal(struct run *r)
{
	/* Pairs with the acquire in bench_wait_flag(). */
	atomic_store_explicit(&r->done, 1, memory_order_release);
}

/* Actor p got the pong for sequence seq. Returns true when it should send
 * another ping. */
static inline bool run_pong(struct run *r, struct peer *p, uint64_t seq)
{
	if (seq >= p->sent)
		p->bad++;
	p->pong_sum += seq;
	if (++p->pongs < p->quota)
		return p->sent < p->quota;
	p->end_ns = bench_now_ns();
	/* acq_rel: the last actor to finish acquires every other actor's
	 * release of its bookkeeping (this same counter), and its own release
	 * of `done` then publishes all of it to main. */
	if (atomic_fetch_add_explicit(&r->finished, 1, memory_order_acq_rel) + 1 == NSHARDS * r->k)
		run_signal(r);
	return false;
}

static int run_finish(struct run *r, const char *impl, double *value)
{
	uint64_t start = UINT64_MAX, end = 0, pings = 0, bad = 0;
	int err = 0;

	if (!bench_wait_flag(&r->done, 60.0)) {
		fprintf(stderr, "fanout: %s: %u of %u actors done after 60 s\n", impl,
			atomic_load_explicit(&r->finished, memory_order_relaxed), NSHARDS * r->k);
		return -1;
	}
	for (unsigned i = 0; i < NSHARDS * r->k; i++) {
		const struct peer *p = &r->peers[i];

		if (p->err && !err)
			err = p->err;
		/* Every pong arrived, once: count and sum of 0..quota-1. */
		if (p->pongs != p->quota || p->pong_sum != p->quota * (p->quota - 1) / 2)
			bad++;
		bad += p->bad;
		pings += p->pings_in;
		if (p->start_ns < start)
			start = p->start_ns;
		if (p->end_ns > end)
			end = p->end_ns;
	}
	if (err || bad || pings != r->n) {
		fprintf(stderr,
			"fanout: %s: send error %d, %llu bad pong counts, %llu of %llu pings\n",
			impl, err, (unsigned long long)bad, (unsigned long long)pings,
			(unsigned long long)r->n);
		return -1;
	}
	*value = 2.0 * (double)r->n * 1e9 / (double)(end - start);
	return 0;
}

struct ctx {
	const struct variant *v;
	vz_backend_kind backend;
	struct bench_series mallocs, syscalls, ringfull;
};

static struct run the_run;

/* ---- veloz ------------------------------------------------------------ */

struct actor_state {
	struct run *run;
	struct peer *me;
};

static int actor_init(vz_actor *self, void *state, const void *arg)
{
	struct actor_state *st = state;
	const unsigned *id = arg;

	(void)self;
	st->run = &the_run;
	st->me = &the_run.peers[*id];
	return 0;
}

/* Send the next ping of st->me; false (and main told) on error. */
static bool actor_ping(vz_actor *self, struct actor_state *st)
{
	struct peer *p = st->me;
	unsigned to = run_pick(st->run, p);
	int rc = vz_send(self, st->run->refs[to], MSG_PING, &p->sent, sizeof(p->sent));

	if (rc < 0) {
		p->err = rc;
		fprintf(stderr, "fanout: vz_send: %s\n", vz_strerror(rc));
		run_signal(st->run);
		return false;
	}
	p->sent++;
	return true;
}

static void actor_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct actor_state *st = state;
	struct peer *p = st->me;
	uint64_t seq;
	int rc;

	switch (vz_msg_type(m)) {
	case MSG_PING:
		p->pings_in++;
		rc = vz_reply(self, m, MSG_PONG, vz_msg_data(m), vz_msg_len(m));
		if (rc < 0) {
			p->err = rc;
			fprintf(stderr, "fanout: vz_reply: %s\n", vz_strerror(rc));
			run_signal(st->run);
		}
		break;
	case MSG_PONG:
		__builtin_memcpy(&seq, vz_msg_data(m), sizeof(seq));
		if (run_pong(st->run, p, seq))
			actor_ping(self, st);
		break;
	case MSG_START:
		p->start_ns = bench_now_ns();
		for (unsigned i = 0; i < st->run->depth && p->sent < p->quota; i++) {
			if (!actor_ping(self, st))
				break;
		}
		break;
	}
}

static const vz_actor_spec actor_spec = {
    .name = "fanout",
    .state_size = sizeof(struct actor_state),
    .init = actor_init,
    .receive = actor_receive,
};

static int run_veloz(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	const struct variant *v = c->v;
	struct run *r = &the_run;
	struct bench_rt_opts o = {.backend = c->backend,
				  .nshards = NSHARDS,
				  .cpu = {v->cpu[0], v->cpu[1]},
				  .quiet = rep > 0};
	vz_shard_stats s0, s1, d;
	vz_runtime *rt;
	unsigned na = NSHARDS * v->k;
	int rc = 0;

	if (bench_rt_create(&o, &rt) < 0)
		return -1;
	run_reset(r, v);
	/* Every reference is in the table before the runtime starts (the
	 * start publishes it to the shards). */
	for (unsigned i = 0; i < na && rc == 0; i++)
		rc = vz_spawn(rt, i / v->k, &actor_spec, &r->peers[i].id, &r->refs[i]);
	if (rc == 0)
		rc = bench_rt_start(rt);
	bench_rt_stats(rt, &s0, NULL);
	for (unsigned i = 0; i < na && rc == 0; i++)
		rc = vz_post(rt, r->refs[i], MSG_START, NULL, 0);
	if (rc < 0) {
		fprintf(stderr, "fanout: veloz setup: %s\n", vz_strerror(rc));
		bench_rt_destroy(rt);
		return -1;
	}
	rc = run_finish(r, "veloz", value);
	bench_rt_stats(rt, &s1, NULL);
	bench_rt_destroy(rt);
	if (rc == 0 && rep >= 0) {
		double msgs = 2.0 * (double)r->n;

		bench_rt_stats_delta(&s0, &s1, &d);
		bench_series_add(&c->mallocs, (double)d.pool_refills / msgs);
		bench_series_add(&c->syscalls, (double)d.wakeups_sent / msgs);
		bench_series_add(&c->ringfull, (double)d.ring_full / msgs);
	}
	return rc;
}

/* ---- classic ---------------------------------------------------------- */

/* A message in a task argument: target actor (8 bits), sender (8 bits),
 * sequence (48 bits). */
#define CL_SEQ_BITS 48

static struct classic_loop *cl_loops[NSHARDS];

static inline void *cl_pack(unsigned to, unsigned from, uint64_t seq)
{
	return (void *)(uintptr_t)((uint64_t)to << 56 | (uint64_t)from << CL_SEQ_BITS | seq);
}

static void cl_ping(void *arg);
static void cl_pong(void *arg);

static bool cl_send_ping(struct run *r, struct peer *p)
{
	unsigned to = run_pick(r, p);

	if (classic_loop_post(cl_loops[to / r->k], cl_ping, cl_pack(to, p->id, p->sent)) < 0) {
		p->err = -1;
		run_signal(r);
		return false;
	}
	p->sent++;
	return true;
}

/* Runs on the target's loop: answer on the sender's loop. */
static void cl_ping(void *arg)
{
	struct run *r = &the_run;
	uint64_t a = (uint64_t)(uintptr_t)arg;
	unsigned to = (unsigned)(a >> 56), from = (unsigned)(a >> CL_SEQ_BITS) & 0xff;
	uint64_t seq = a & ((1ull << CL_SEQ_BITS) - 1);

	r->peers[to].pings_in++;
	if (classic_loop_post(cl_loops[from / r->k], cl_pong, cl_pack(from, to, seq)) < 0) {
		r->peers[to].err = -1;
		run_signal(r);
	}
}

/* Runs on the ping sender's loop. */
static void cl_pong(void *arg)
{
	struct run *r = &the_run;
	uint64_t a = (uint64_t)(uintptr_t)arg;
	struct peer *p = &r->peers[a >> 56];

	if (run_pong(r, p, a & ((1ull << CL_SEQ_BITS) - 1)))
		cl_send_ping(r, p);
}

/* Runs on the actor's loop: its first `depth` pings. */
static void cl_start(void *arg)
{
	struct run *r = &the_run;
	struct peer *p = &r->peers[(uintptr_t)arg];

	p->start_ns = bench_now_ns();
	for (unsigned i = 0; i < r->depth && p->sent < p->quota; i++) {
		if (!cl_send_ping(r, p))
			break;
	}
}

static int run_classic(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	const struct variant *v = c->v;
	struct run *r = &the_run;
	struct classic_loop_stats st;
	uint64_t grows = 0, signals = 0;
	unsigned started = 0;
	int rc = 0;

	run_reset(r, v);
	for (; started < NSHARDS; started++) {
		if (classic_loop_create(1024, &cl_loops[started]) < 0)
			break;
		if (classic_loop_start(cl_loops[started], v->cpu[started]) < 0) {
			classic_loop_destroy(cl_loops[started]);
			break;
		}
	}
	if (started < NSHARDS) {
		fprintf(stderr, "fanout: classic: loop setup failed\n");
		rc = -1;
	}
	for (unsigned i = 0; i < NSHARDS * v->k && rc == 0; i++) {
		if (classic_loop_post(cl_loops[i / v->k], cl_start, (void *)(uintptr_t)i) < 0)
			rc = -1;
	}
	if (rc == 0)
		rc = run_finish(r, "classic", value);
	else
		run_signal(r);
	for (unsigned i = 0; i < started; i++) {
		classic_loop_stop(cl_loops[i]);
		classic_loop_stats(cl_loops[i], &st);
		grows += st.grows;
		signals += st.signals;
		classic_loop_destroy(cl_loops[i]);
	}
	if (rc == 0 && rep >= 0) {
		bench_series_add(&c->mallocs, (double)grows / (2.0 * (double)r->n));
		bench_series_add(&c->syscalls, (double)signals / (2.0 * (double)r->n));
	}
	return rc;
}

/* ---- driver ----------------------------------------------------------- */

static void run_variant(const struct variant *v)
{
	static char names[2][64];
	struct ctx ctx[3];
	struct bench_impl impls[3];
	int n = 0, icl;

	fprintf(stderr,
		"fanout %s: %u shards (CPUs %d, %d) x %u actors, %u pings in flight per actor, "
		"%llu pings to random actors on the other shard\n",
		v->name, NSHARDS, bench_cpu(v->cpu[0]), bench_cpu(v->cpu[1]), v->k, v->depth,
		(unsigned long long)bench_size(v->n, v->quick_n));
	for (int b = 0; b < 2; b++) {
		const char *be = bench_backend_name(bench_backends[b]);

		if (!bench_rt_backend_ok(bench_backends[b]))
			continue;
		snprintf(names[n], sizeof(names[0]), "%s-%s", v->name, be);
		ctx[n] = (struct ctx){.v = v, .backend = bench_backends[b]};
		bench_series_init(&ctx[n].mallocs, "fanout", names[n], "veloz", "mallocs_per_msg",
				  "count");
		bench_series_init(&ctx[n].syscalls, "fanout", names[n], "veloz", "syscalls_per_msg",
				  "count");
		bench_series_init(&ctx[n].ringfull, "fanout", names[n], "veloz",
				  "ring_full_per_msg", "count");
		impls[n] = (struct bench_impl){.impl = "veloz", .fn = run_veloz, .ctx = &ctx[n]};
		n++;
	}
	icl = n;
	ctx[n] = (struct ctx){.v = v};
	bench_series_init(&ctx[n].mallocs, "fanout", v->name, "classic", "mallocs_per_msg",
			  "count");
	bench_series_init(&ctx[n].syscalls, "fanout", v->name, "classic", "syscalls_per_msg",
			  "count");
	impls[n] = (struct bench_impl){.impl = "classic", .fn = run_classic, .ctx = &ctx[n]};
	n++;
	bench_run_side_by_side(impls, n, bench_opts.reps, true, "fanout", v->name, "throughput",
			       "msg/s");
	for (int i = 0; i < icl; i++)
		impls[i].s.variant = ctx[i].mallocs.variant;
	for (int i = 0; i < n; i++) {
		bench_emit_series(&impls[i].s);
		if (i < icl)
			bench_emit_ratio(&impls[i].s, &impls[icl].s, true);
		bench_emit_series(&ctx[i].mallocs);
		bench_emit_series(&ctx[i].syscalls);
		if (i < icl)
			bench_emit_series(&ctx[i].ringfull);
	}
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, "fanout");
	bench_pin(0, "main thread");
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		_Static_assert(NSHARDS * MAX_K <= 256, "actor ids fit the classic 8-bit fields");
		if (variants[i].k > MAX_K) {
			fprintf(stderr, "fanout %s: k > %d\n", variants[i].name, MAX_K);
			return 1;
		}
		if (bench_variant_enabled(variants[i].name))
			run_variant(&variants[i]);
	}
	return 0;
}
