// SPDX-License-Identifier: MIT
/*
 * Benchmark `counting` (BENCH.md, after Savina's Counting): a sender actor
 * floods a receiver actor on the same shard with N 8-byte messages; the
 * receiver counts them and checks their order. The figure is messages per
 * second measured on the shard, from the sender's first send to the
 * receiver's last receive (so the foreign post that starts the run is not
 * in it). Variants (rows of `variants`):
 *   local         - the sender sends all N from one receive call (the
 *                   mailbox grows to N), as Savina's producer does
 *   local-burst64 - flow-controlled flood: the sender keeps two bursts of
 *                   64 in flight and sends the next burst when the receiver
 *                   acknowledges one (one ack per 64 messages), so the
 *                   mailbox stays in cache: the raw cost of one local send
 *                   + dispatch in steady state
 *   local-selfloop64 - the sender sends a burst of 64 and re-triggers itself
 *                   with a message to itself, without flow control: shows
 *                   how the loop shares turns between a self-feeding sender
 *                   and its receiver (mailbox backlog, pool growth)
 *   cross-shard-burst64 - the flow-controlled flood with the receiver on
 *                   another shard (sender's shard on CPU 0, receiver's on
 *                   CPU 1)
 * Implementations:
 *   veloz   - vz_send between two actors on one shard, per backend
 *   classic - the same flood, acks and self re-triggers as tasks posted to
 *             the loop from the loop (to a second loop thread for
 *             cross-shard)
 *   limit   - (burst variant) the payload copied into a 64-slot array and
 *             dispatched through an indirect call: queue-less delivery
 *   nometrics - (local, local-burst64) veloz with per-actor-type metrics and
 *             the stall watchdog off; veloz's ratio_vs_nometrics (paired
 *             per repetition, same run) is what the always-on
 *             observability costs local send + dispatch. Both also report
 *             cpu_throughput: messages per second of the shard thread's
 *             own CPU time (CLOCK_THREAD_CPUTIME_ID, read where start_ns
 *             and end_ns are), which time the thread spends preempted by
 *             other programs does not inflate; veloz's
 *             ratio_vs_nometrics_cpu pairs those per repetition
 * ck_ring (raw SPSC rings are compared in `queues`) and CAF are BENCH.md
 * baselines reported as skipped here.
 */
#include "bench.h"
#include "bench_rt.h"
#include "baseline/classic_loop.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { MSG_START = VZ_MSG_USER, MSG_MORE, MSG_ACK, MSG_COUNT };

/* How the sender paces itself. */
enum mode {
	ALL_AT_ONCE, /* all N from the first receive call */
	ACKED,	     /* WINDOW bursts in flight, one more per ack from the receiver */
	SELF_LOOP,   /* one burst per self-message, no flow control */
};

#define WINDOW 2

struct variant {
	const char *name;
	enum mode mode;
	uint32_t burst; /* messages per burst (ACKED, SELF_LOOP) */
	uint64_t n, quick_n;
	bool limit;
	bool metrics;	  /* also run veloz with observability off (nometrics) */
	unsigned nshards; /* 1: both actors on shard 0; 2: receiver on shard 1 */
	int cpu[2];	  /* bench_cpu() index of shard (loop) 0 and 1 */
};

static const struct variant variants[] = {
    {"local", ALL_AT_ONCE, 0, 1000000, 200000, false, true, 1, {1, 0}},
    {"local-burst64", ACKED, 64, 10000000, 1000000, true, true, 1, {1, 0}},
    {"local-selfloop64", SELF_LOOP, 64, 1000000, 200000, false, false, 1, {1, 0}},
    {"cross-shard-burst64", ACKED, 64, 2000000, 200000, false, false, 2, {0, 1}},
};

/* Shared between the shard (writes) and main (reads after done). */
struct run {
	uint64_t n;
	enum mode mode;
	uint32_t burst;
	uint64_t start_ns;	     /* sender's first send */
	uint64_t end_ns;	     /* receiver's last receive */
	uint64_t start_cpu, end_cpu; /* the same moments in the thread's CPU time */
	uint64_t got;		     /* receiver only */
	uint64_t bad;		     /* out-of-order, receiver only */
	int err;		     /* first send error, sender only */
	_Atomic int done;	     /* release by the receiver (or the sender on error) */
};

static void run_reset(struct run *r, const struct variant *v)
{
	r->n = bench_size(v->n, v->quick_n);
	r->mode = v->mode;
	r->burst = v->burst;
	r->start_ns = r->end_ns = 0;
	r->got = r->bad = 0;
	r->err = 0;
	atomic_store_explicit(&r->done, 0, memory_order_relaxed);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Receiver side, shared by veloz and classic. Returns true when the
 * sender should get an ack (ACKED mode, a burst completed, more to come). */
static inline bool run_take(struct run *r, uint64_t seq)
{
	if (seq != r->got)
		r->bad++;
	if (++r->got == r->n) {
		r->end_ns = bench_now_ns();
		r->end_cpu = thread_cpu_ns();
		/* Pairs with the acquire in bench_wait_flag(). */
		atomic_store_explicit(&r->done, 1, memory_order_release);
		return false;
	}
	return r->mode == ACKED && r->got % r->burst == 0;
}

/* Sender side: where the sends of this call stop, given how many were
 * sent and whether this is the start. */
static inline uint64_t run_burst_end(const struct run *r, uint64_t sent, bool start)
{
	uint64_t end;

	if (r->mode == ALL_AT_ONCE)
		return r->n;
	end = sent + (uint64_t)r->burst * (start && r->mode == ACKED ? WINDOW : 1);
	return end < r->n ? end : r->n;
}

static int run_finish(struct run *r, const char *impl, double *value)
{
	if (!bench_wait_flag(&r->done, 60.0)) {
		fprintf(stderr, "counting: %s: %llu of %llu after 60 s\n", impl,
			(unsigned long long)r->got, (unsigned long long)r->n);
		return -1;
	}
	if (r->err || r->bad || r->got != r->n) {
		fprintf(stderr, "counting: %s: send error %d, %llu out of order\n", impl, r->err,
			(unsigned long long)r->bad);
		return -1;
	}
	*value = (double)r->n * 1e9 / (double)(r->end_ns - r->start_ns);
	return 0;
}

struct ctx {
	const struct variant *v;
	vz_backend_kind backend;
	bool no_metrics;
	struct run run;
	struct bench_series mallocs, syscalls, ringfull;
	struct bench_series cpu; /* cpu_throughput (same-shard variants) */
};

/* ---- veloz ------------------------------------------------------------ */

struct recv_state {
	struct run *run;
};

struct send_state {
	struct run *run;
	vz_ref peer;
	uint64_t sent;
};

struct send_arg {
	struct run *run;
	vz_ref peer;
};

static int recv_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	((struct recv_state *)state)->run = (struct run *)arg;
	return 0;
}

static void recv_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct run *r = ((struct recv_state *)state)->run;
	uint64_t seq;
	int rc;

	__builtin_memcpy(&seq, vz_msg_data(m), sizeof(seq));
	if (run_take(r, seq) && (rc = vz_reply(self, m, MSG_ACK, NULL, 0)) < 0) {
		r->err = rc;
		fprintf(stderr, "counting: vz_reply: %s\n", vz_strerror(rc));
		/* Pairs with the acquire in bench_wait_flag(): stop waiting. */
		atomic_store_explicit(&r->done, 1, memory_order_release);
	}
}

static int send_init(vz_actor *self, void *state, const void *arg)
{
	const struct send_arg *a = arg;
	struct send_state *st = state;

	(void)self;
	st->run = a->run;
	st->peer = a->peer;
	return 0;
}

/* On the start or an ack (or our own MSG_MORE), send the next burst(s);
 * in SELF_LOOP mode, then ask ourselves for more. */
static void send_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct send_state *st = state;
	struct run *r = st->run;
	bool start = vz_msg_type(m) == MSG_START;
	uint64_t end = run_burst_end(r, st->sent, start);
	int rc;

	if (start) {
		r->start_ns = bench_now_ns();
		r->start_cpu = thread_cpu_ns();
	}
	for (; st->sent < end; st->sent++) {
		rc = vz_send(self, st->peer, MSG_COUNT, &st->sent, sizeof(st->sent));
		if (rc < 0)
			goto fail;
	}
	if (r->mode == SELF_LOOP && st->sent < r->n) {
		rc = vz_send(self, vz_self(self), MSG_MORE, NULL, 0);
		if (rc < 0)
			goto fail;
	}
	return;
fail:
	r->err = rc;
	fprintf(stderr, "counting: vz_send: %s\n", vz_strerror(rc));
	/* Pairs with the acquire in bench_wait_flag(): stop waiting. */
	atomic_store_explicit(&r->done, 1, memory_order_release);
}

static const vz_actor_spec recv_spec = {
    .name = "count-recv",
    .state_size = sizeof(struct recv_state),
    .init = recv_init,
    .receive = recv_receive,
};

static const vz_actor_spec send_spec = {
    .name = "count-send",
    .state_size = sizeof(struct send_state),
    .init = send_init,
    .receive = send_receive,
};

static int run_veloz(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	struct bench_rt_opts o = {.backend = c->backend,
				  .nshards = c->v->nshards,
				  .cpu = {c->v->cpu[0], c->v->cpu[1]},
				  .quiet = rep > 0,
				  .no_metrics = c->no_metrics};
	vz_shard_stats s0, s1, d;
	struct send_arg sa;
	vz_runtime *rt;
	vz_ref recv, snd;
	int rc;

	if (bench_rt_create(&o, &rt) < 0)
		return -1;
	run_reset(&c->run, c->v);
	rc = vz_spawn(rt, c->v->nshards - 1, &recv_spec, &c->run, &recv);
	sa.run = &c->run;
	sa.peer = recv;
	if (rc == 0)
		rc = vz_spawn(rt, 0, &send_spec, &sa, &snd);
	if (rc == 0)
		rc = bench_rt_start(rt);
	bench_rt_stats(rt, &s0, NULL);
	if (rc == 0)
		rc = vz_post(rt, snd, MSG_START, NULL, 0);
	if (rc < 0) {
		fprintf(stderr, "counting: veloz setup: %s\n", vz_strerror(rc));
		bench_rt_destroy(rt);
		return -1;
	}
	rc = run_finish(&c->run, "veloz", value);
	bench_rt_stats(rt, &s1, NULL);
	bench_rt_destroy(rt);
	if (rc == 0 && rep >= 0) {
		bench_rt_stats_delta(&s0, &s1, &d);
		bench_series_add(&c->mallocs, (double)d.pool_refills / (double)c->run.n);
		bench_series_add(&c->syscalls, (double)d.wakeups_sent / (double)c->run.n);
		bench_series_add(&c->ringfull, (double)d.ring_full / (double)c->run.n);
		if (c->v->nshards == 1 && c->run.end_cpu > c->run.start_cpu)
			bench_series_add(&c->cpu, (double)c->run.n * 1e9 /
						      (double)(c->run.end_cpu - c->run.start_cpu));
	}
	return rc;
}

/* ---- classic ---------------------------------------------------------- */

static struct {
	struct classic_loop *l;	 /* the sender's loop */
	struct classic_loop *lr; /* the receiver's loop (== l when local) */
	struct run *run;
	uint64_t sent;
} cc;

static void classic_send(void *arg);

static void classic_recv(void *arg)
{
	if (run_take(cc.run, (uint64_t)(uintptr_t)arg) &&
	    classic_loop_post(cc.l, classic_send, NULL) < 0) {
		cc.run->err = -1;
		atomic_store_explicit(&cc.run->done, 1, memory_order_release);
	}
}

/* arg != NULL: the start. */
static void classic_send(void *arg)
{
	struct run *r = cc.run;
	uint64_t end = run_burst_end(r, cc.sent, arg != NULL);

	if (arg)
		r->start_ns = bench_now_ns();
	for (; cc.sent < end; cc.sent++) {
		if (classic_loop_post(cc.lr, classic_recv, (void *)(uintptr_t)cc.sent) < 0)
			goto fail;
	}
	if (r->mode == SELF_LOOP && cc.sent < r->n &&
	    classic_loop_post(cc.l, classic_send, NULL) < 0)
		goto fail;
	return;
fail:
	r->err = -1;
	/* Pairs with the acquire in bench_wait_flag(). */
	atomic_store_explicit(&r->done, 1, memory_order_release);
}

static int run_classic(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	struct classic_loop_stats st, st2;
	int rc;

	if (classic_loop_create(1024, &cc.l) < 0 || classic_loop_start(cc.l, c->v->cpu[0]) < 0)
		return -1;
	cc.lr = cc.l;
	if (c->v->nshards > 1 && (classic_loop_create(1024, &cc.lr) < 0 ||
				  classic_loop_start(cc.lr, c->v->cpu[1]) < 0)) {
		classic_loop_stop(cc.l);
		classic_loop_destroy(cc.l);
		return -1;
	}
	run_reset(&c->run, c->v);
	cc.run = &c->run;
	cc.sent = 0;
	classic_loop_post(cc.l, classic_send, (void *)1);
	rc = run_finish(&c->run, "classic", value);
	classic_loop_stop(cc.l);
	classic_loop_stats(cc.l, &st);
	if (cc.lr != cc.l) {
		classic_loop_stop(cc.lr);
		classic_loop_stats(cc.lr, &st2);
		classic_loop_destroy(cc.lr);
		st.grows += st2.grows;
		st.signals += st2.signals;
	}
	classic_loop_destroy(cc.l);
	if (rc == 0 && rep >= 0) {
		bench_series_add(&c->mallocs, (double)st.grows / (double)c->run.n);
		bench_series_add(&c->syscalls, (double)st.signals / (double)c->run.n);
	}
	return rc;
}

/* ---- limit: copy into a small array, dispatch by indirect call -------- */

static void limit_recv(struct run *r, const void *payload)
{
	uint64_t seq;

	__builtin_memcpy(&seq, payload, sizeof(seq));
	if (seq != r->got)
		r->bad++;
	r->got++;
}

static void (*volatile limit_fn)(struct run *, const void *) = limit_recv;

static int run_limit(void *arg, int rep, double *value)
{
	struct ctx *c = arg;
	struct run *r = &c->run;
	uint64_t slots[64];
	uint32_t burst = c->v->burst ? c->v->burst : 64;

	(void)rep;
	run_reset(r, c->v);
	r->start_ns = bench_now_ns();
	for (uint64_t sent = 0; sent < r->n;) {
		void (*fn)(struct run *, const void *) = limit_fn;
		uint32_t k = 0;

		for (; k < burst && sent < r->n; k++, sent++)
			__builtin_memcpy(&slots[k % 64], &sent, sizeof(sent));
		bench_clobber(slots);
		for (uint32_t i = 0; i < k; i++)
			fn(r, &slots[i % 64]);
	}
	r->end_ns = bench_now_ns();
	if (r->bad || r->got != r->n)
		return -1;
	*value = (double)r->n * 1e9 / (double)(r->end_ns - r->start_ns);
	return 0;
}

/* ---- driver ----------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* veloz / nometrics cpu_throughput, pair by pair (repetition k of each ran
 * side by side), as ratio_vs_nometrics_cpu: median, min and max. */
static void emit_cpu_ratio(const struct bench_series *num, const struct bench_series *den)
{
	double r[BENCH_MAX_REPS];
	int k = num->n < den->n ? num->n : den->n;

	if (k <= 0)
		return;
	for (int i = 0; i < k; i++)
		r[i] = num->v[i] / den->v[i];
	qsort(r, (size_t)k, sizeof r[0], cmp_double);
	bench_emit(num->bench, num->variant, num->impl, "ratio_vs_nometrics_cpu",
		   k % 2 ? r[k / 2] : (r[k / 2 - 1] + r[k / 2]) / 2, "x", k, r[0], r[k - 1]);
}

static void run_variant(const struct variant *v)
{
	static char names[2][64];
	struct ctx ctx[8];
	struct bench_impl impls[8];
	int partner[8]; /* the nometrics impl paired with veloz impl i, or -1 */
	int n = 0, icl, nv;

	fprintf(stderr, "counting %s: %llu messages, %s, sender on CPU %d, receiver on CPU %d\n",
		v->name, (unsigned long long)bench_size(v->n, v->quick_n),
		v->mode == ALL_AT_ONCE ? "all from one receive call"
		: v->mode == ACKED     ? "bursts of 64, two in flight, acked"
				       : "bursts of 64 + self re-trigger",
		bench_cpu(v->cpu[0]), bench_cpu(v->cpu[v->nshards - 1]));
	for (int b = 0; b < 2; b++) {
		const char *be = bench_backend_name(bench_backends[b]);

		if (!bench_rt_backend_ok(bench_backends[b]))
			continue;
		snprintf(names[b], sizeof(names[0]), "%s-%s", v->name, be);
		ctx[n] = (struct ctx){.v = v, .backend = bench_backends[b]};
		bench_series_init(&ctx[n].mallocs, "counting", names[b], "veloz", "mallocs_per_msg",
				  "count");
		bench_series_init(&ctx[n].syscalls, "counting", names[b], "veloz",
				  "syscalls_per_msg", "count");
		bench_series_init(&ctx[n].ringfull, "counting", names[b], "veloz",
				  "ring_full_per_msg", "count");
		bench_series_init(&ctx[n].cpu, "counting", names[b], "veloz", "cpu_throughput",
				  "msg/s");
		impls[n] = (struct bench_impl){.impl = "veloz", .fn = run_veloz, .ctx = &ctx[n]};
		n++;
	}
	nv = n;
	/* The same runtime with observability off, alternating with the
	 * veloz runs above in the same run (BENCH.md rule 1). */
	for (int i = 0; i < nv; i++) {
		partner[i] = -1;
		if (!v->metrics)
			continue;
		ctx[n] = (struct ctx){.v = v, .backend = ctx[i].backend, .no_metrics = true};
		bench_series_init(&ctx[n].mallocs, "counting", ctx[i].mallocs.variant, "nometrics",
				  "-", "-");
		bench_series_init(&ctx[n].syscalls, "counting", ctx[i].mallocs.variant, "nometrics",
				  "-", "-");
		bench_series_init(&ctx[n].ringfull, "counting", ctx[i].mallocs.variant, "nometrics",
				  "-", "-");
		bench_series_init(&ctx[n].cpu, "counting", ctx[i].mallocs.variant, "nometrics",
				  "cpu_throughput", "msg/s");
		impls[n] =
		    (struct bench_impl){.impl = "nometrics", .fn = run_veloz, .ctx = &ctx[n]};
		partner[i] = n;
		n++;
	}
	icl = n;
	ctx[n] = (struct ctx){.v = v};
	bench_series_init(&ctx[n].mallocs, "counting", v->name, "classic", "mallocs_per_msg",
			  "count");
	bench_series_init(&ctx[n].syscalls, "counting", v->name, "classic", "syscalls_per_msg",
			  "count");
	impls[n] = (struct bench_impl){.impl = "classic", .fn = run_classic, .ctx = &ctx[n]};
	n++;
	if (v->limit) {
		ctx[n] = (struct ctx){.v = v};
		bench_series_init(&ctx[n].mallocs, "counting", v->name, "limit", "-", "-");
		bench_series_init(&ctx[n].syscalls, "counting", v->name, "limit", "-", "-");
		impls[n] = (struct bench_impl){.impl = "limit", .fn = run_limit, .ctx = &ctx[n]};
		n++;
	}
	bench_run_side_by_side(impls, n, bench_opts.reps, true, "counting", v->name, "throughput",
			       "msg/s");
	for (int i = 0; i < icl; i++)
		impls[i].s.variant = ctx[i].mallocs.variant;
	for (int i = 0; i < n; i++) {
		bench_emit_series(&impls[i].s);
		if (i < nv) {
			bench_emit_ratio(&impls[i].s, &impls[icl].s, true);
			if (v->limit)
				bench_emit_ratio(&impls[i].s, &impls[icl + 1].s, true);
			if (partner[i] >= 0) {
				bench_emit_ratio(&impls[i].s, &impls[partner[i]].s, true);
				emit_cpu_ratio(&ctx[i].cpu, &ctx[partner[i]].cpu);
			}
		}
		if (i < nv || i == icl) {
			bench_emit_series(&ctx[i].mallocs);
			bench_emit_series(&ctx[i].syscalls);
		}
		if (i < nv && v->nshards > 1)
			bench_emit_series(&ctx[i].ringfull);
		if (i < icl && v->metrics && ctx[i].cpu.n)
			bench_emit_series(&ctx[i].cpu);
	}
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, "counting");
	bench_pin(0, "main thread");
	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		if (bench_variant_enabled(variants[i].name))
			run_variant(&variants[i]);
	}
	bench_skip("ck_ring", "raw SPSC rings against ck_ring are in the queues benchmark");
	bench_skip("caf", "no CAF baseline yet");
	return 0;
}
