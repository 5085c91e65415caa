// SPDX-License-Identifier: MIT
/*
 * Benchmark `pool` (BENCH.md): an actor on a shard submits N small jobs
 * (a 64-byte payload, checksummed by the job) to a worker pool, at most
 * WINDOW in flight, and counts the completions that come back to it as
 * messages on its shard. Figures: jobs per second end to end (first submit
 * to last completion handled) and the completion latency histogram (submit
 * to completion handled by the actor, every job recorded). Same placement
 * for every implementation: the shard on CPU 0, one pool worker on CPU 1,
 * and the same runtime carrying the completions back:
 *   veloz   - vz_pool_submit(); completion VZ_MSG_POOL_DONE handed back by
 *             the worker over its completion ring to the shard, which
 *             delivers it as a local message (lock-free queues, futex
 *             event count; runtime/pool/NOTES.md counts the RMWs)
 *   classic - mutex + condition-variable pool (baseline/classic_pool.c);
 *             the job vz_post()s its completion to the actor
 *   tbb     - tbb::task_group in a task_arena (baseline/tbb_pool.cpp); the
 *             job vz_post()s its completion
 * Variant "direct" takes the actor and the runtime's message path out: a
 * plain thread on CPU 0 submits (at most WINDOW in flight) and each
 * completion bumps a counter, so the figure is the pools' own
 * submit/execute/complete machinery. The bench's own bookkeeping of a
 * finished job (latency histogram, checksum) runs on the worker right
 * after the job for every implementation, so no pool carries another's
 * accounting. Baselines: the job then bumps the counter on the worker.
 * veloz: through the pool's internal interface, with its completions
 * coming back over the completion ring to the submitting thread, which
 * collects them between submissions (vz__pool_reap(), as a shard's loop
 * does) and bumps the counter there: veloz's return path is in its
 * figure, because it is part of what the pool does (a completion reaches
 * the submitter); the baselines have none. (Until the bookkeeping moved,
 * veloz's ran on the submitting thread, the bottleneck of this variant,
 * and the baselines' on the worker: a handicap of the harness, not of
 * the pool.)
 * Counters next to the figures: syscalls_per_job (veloz: FUTEX_WAKE calls
 * made by submissions, vz_pool_stats.submit_wakeups; classic: condvar
 * signals to a waiting worker) and sleeps_per_job (worker blocked). Then
 * idle_cpu_pct: CPU time used by the pool's worker threads over an idle
 * interval after a burst of work (veloz and classic).
 */
#include "bench.h"
#include "bench_rt.h"
#include "baseline/classic_pool.h"

#include <dirent.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <veloz/pool.h>

#include "pool/pool.h"
#include "topo/topo.h"

#ifdef VZ_HAVE_TBB
/* baseline/tbb_pool.cpp */
typedef void (*tbb_job_fn)(void *arg, const void *payload, size_t len);
struct tbb_pool;
int tbb_pool_create(unsigned nworkers, const int *cpus, struct tbb_pool **out);
int tbb_pool_submit(struct tbb_pool *p, tbb_job_fn fn, void *arg, const void *payload, size_t len);
void tbb_pool_destroy(struct tbb_pool *p);
#endif

/* Declared by the runtime core (runtime/core/runtime.h); used only to print the
 * pool placement the runtime chose. */
struct vz__pool_set *vz__runtime_pools(vz_runtime *rt);

#define MSG_START VZ_MSG_USER
#define MSG_DONE  (VZ_MSG_USER + 1) /* baseline completions */
#define WINDOW	  256		    /* jobs in flight per actor */
#define PAYLOAD	  64

enum impl_kind { IMPL_VELOZ, IMPL_CLASSIC, IMPL_TBB };

/* A job's input and output. */
struct job_in {
	uint64_t t_submit;
	uint64_t seq;
	unsigned char data[PAYLOAD - 16];
};
struct job_out {
	uint64_t t_submit;
	uint64_t seq;
	uint64_t sum;
};

static uint64_t expect_sum[256]; /* checksum of the payload of seq, by seq & 255 */

/* One repetition, shared between the main thread and the actor. Fields are
 * written by the actor's shard only, except those set before MSG_START. */
struct run {
	enum impl_kind kind;
	vz_runtime *rt;
	vz_ref actor;
	uint64_t n;
	struct classic_pool *cp;
#ifdef VZ_HAVE_TBB
	struct tbb_pool *tp;
#endif
	struct bench_hist *hist;
	uint64_t submitted, completed, bad, refused;
	uint64_t start_ns, end_ns;
	_Atomic int done; /* release by the actor, acquire by main */
};

static uint64_t fnv(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

static void fill_in(struct job_in *in, uint64_t seq, uint64_t now)
{
	in->t_submit = now;
	in->seq = seq;
	memset(in->data, (int)(seq & 255), sizeof in->data);
}

static void work(const void *payload, struct job_out *out)
{
	struct job_in in;

	memcpy(&in, payload, sizeof in);
	out->t_submit = in.t_submit;
	out->seq = in.seq;
	out->sum = fnv(in.data, sizeof in.data);
}

/* ---- the job functions -------------------------------------------------- */

static int veloz_job(void *arg, const void *payload, size_t len, void *result, size_t *result_len)
{
	struct job_out out;

	(void)arg, (void)len;
	work(payload, &out);
	memcpy(result, &out, sizeof out);
	*result_len = sizeof out;
	return 0;
}

/* Baselines: run the job, then post the completion like the veloz pool
 * does (a foreign post into the actor's shard). */
static void baseline_job(void *arg, const void *payload, size_t len)
{
	struct run *r = arg;
	struct job_out out;
	int rc;

	(void)len;
	work(payload, &out);
	while ((rc = vz_post(r->rt, r->actor, MSG_DONE, &out, sizeof out)) == VZ_EAGAIN ||
	       rc == VZ_EFULL)
		bench_cpu_relax();
	if (rc < 0)
		fprintf(stderr, "pool: vz_post: %s\n", vz_strerror(rc));
}

/* ---- the actor ---------------------------------------------------------- */

struct actor_state {
	struct run *r;
};

static int submit_one(vz_actor *self, struct run *r)
{
	struct job_in in;

	fill_in(&in, r->submitted, bench_now_ns());
	switch (r->kind) {
	case IMPL_VELOZ: {
		vz_job j = {.fn = veloz_job, .payload = &in, .payload_len = sizeof in};

		return vz_pool_submit(self, &j, NULL);
	}
	case IMPL_CLASSIC:
		return classic_pool_submit(r->cp, baseline_job, r, &in, sizeof in);
#ifdef VZ_HAVE_TBB
	case IMPL_TBB:
		return tbb_pool_submit(r->tp, baseline_job, r, &in, sizeof in);
#endif
	default:
		return -1;
	}
}

static void submit_more(vz_actor *self, struct run *r)
{
	while (r->submitted < r->n && r->submitted - r->completed < WINDOW) {
		if (submit_one(self, r) != 0) {
			r->refused++; /* retried at the next completion */
			break;
		}
		r->submitted++;
	}
}

static void complete(vz_actor *self, struct run *r, const struct job_out *out)
{
	uint64_t now = bench_now_ns();

	bench_hist_record(r->hist, now - out->t_submit);
	if (out->sum != expect_sum[out->seq & 255])
		r->bad++;
	if (++r->completed == r->n) {
		r->end_ns = now;
		/* Pairs with the acquire in bench_wait_flag(). */
		atomic_store_explicit(&r->done, 1, memory_order_release);
		return;
	}
	submit_more(self, r);
}

static int actor_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	((struct actor_state *)state)->r = (struct run *)arg;
	return 0;
}

static void actor_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct run *r = ((struct actor_state *)state)->r;
	struct job_out out;

	switch (vz_msg_type(m)) {
	case MSG_START:
		r->start_ns = bench_now_ns();
		submit_more(self, r);
		break;
	case VZ_MSG_POOL_DONE: {
		vz_pool_done d;
		const void *res;

		if (vz_pool_done_read(m, &d, &res) < 0 || d.status != 0 ||
		    d.result_len != sizeof out) {
			r->bad++;
			out.t_submit = bench_now_ns();
			out.seq = 0;
			out.sum = expect_sum[0];
		} else {
			memcpy(&out, res, sizeof out);
		}
		complete(self, r, &out);
		break;
	}
	case MSG_DONE:
		if (vz_msg_len(m) != sizeof out) {
			r->bad++;
			break;
		}
		memcpy(&out, vz_msg_data(m), sizeof out);
		complete(self, r, &out);
		break;
	}
}

static const vz_actor_spec actor_spec = {
    .name = "pool-bench",
    .state_size = sizeof(struct actor_state),
    .init = actor_init,
    .receive = actor_receive,
};

/* ---- runtime ------------------------------------------------------------ */

/* One shard on CPU 0; the veloz pool gets one worker, which the plan puts
 * on the free CPU (CPU 1). */
static int make_runtime(vz_runtime **out, bool quiet)
{
	cpu_set_t saved;
	vz_config cfg;
	int rc;

	vz_config_default(&cfg);
	cfg.nshards = 1;
	cfg.allow_shared_cpus = true;
	cfg.shards[0].cpu = bench_cpu(0);
	vz_cpuset_zero(&cfg.cpus);
	for (int i = 0; i < bench_ncpus(); i++)
		vz_cpuset_set(&cfg.cpus, (unsigned)bench_cpu(i));
	cfg.pool.workers_per_node = 1;
	cfg.pool.share_shard_cpus = true;
	/* The runtime checks CPUs against the caller's mask; ours is pinned. */
	bench_affinity_widen(&saved);
	rc = vz_runtime_create(&cfg, out);
	bench_affinity_restore(&saved);
	if (rc < 0) {
		fprintf(stderr, "pool: vz_runtime_create: %s\n", vz_strerror(rc));
		return rc;
	}
	bench_machine_runtime(vz_runtime_backend(*out), vz_runtime_backend_reason(*out));
	if (!quiet) {
		const struct vz__pool_plan *p = vz__pools_get_plan(vz__runtime_pools(*out));

		bench_say_once("placement: shard 0 -> CPU %d", vz_runtime_shard_cpu(*out, 0));
		for (unsigned i = 0; p && i < p->npools; i++)
			for (unsigned w = 0; w < p->pool[i].nworkers; w++)
				bench_say_once("placement: veloz pool node %d worker %u -> CPU %d",
					       p->pool[i].node, w, p->pool[i].cpu[w]);
	}
	return 0;
}

/* ---- one repetition ----------------------------------------------------- */

struct impl_ctx {
	enum impl_kind kind;
	const char *name;
	struct bench_hist *hist;
	struct bench_lat lat;
	struct bench_series syscalls, sleeps;
};

static uint64_t njobs;

static int run_rep(void *arg, int rep, double *value)
{
	struct impl_ctx *c = arg;
	struct run *r = calloc(1, sizeof *r);
	vz_pool_stats p0 = {0}, p1 = {0};
	struct classic_pool_stats cs = {0};
	int worker_cpu = bench_cpu(1);
	unsigned node = 0;
	int rc = -1;

	if (!r)
		return -1;
	r->kind = c->kind;
	r->n = njobs;
	r->hist = c->hist;
	bench_hist_reset(c->hist);
	if (make_runtime(&r->rt, rep > 0) < 0)
		goto out;
	if (c->kind == IMPL_CLASSIC && classic_pool_create(4096, 1, &worker_cpu, &r->cp) < 0) {
		fprintf(stderr, "pool: classic pool setup failed\n");
		goto out;
	}
#ifdef VZ_HAVE_TBB
	if (c->kind == IMPL_TBB) {
		cpu_set_t saved;

		bench_affinity_widen(&saved); /* TBB reads the mask when it starts */
		rc = tbb_pool_create(1, &worker_cpu, &r->tp);
		bench_affinity_restore(&saved);
		if (rc < 0) {
			fprintf(stderr, "pool: tbb pool setup failed\n");
			goto out;
		}
	}
#endif
	if (c->kind != IMPL_VELOZ)
		bench_say_once("placement: %s pool worker 0 -> CPU %d", c->name, worker_cpu);
	rc = vz_spawn(r->rt, 0, &actor_spec, r, &r->actor);
	if (rc == 0)
		rc = bench_rt_start(r->rt);
	if (rc < 0) {
		fprintf(stderr, "pool: runtime setup: %s\n", vz_strerror(rc));
		rc = -1;
		goto out;
	}
	vz_pool_nodes(r->rt, &node, 1);
	vz_stats_pool(r->rt, node, &p0);
	rc = vz_post(r->rt, r->actor, MSG_START, NULL, 0);
	if (rc < 0 || !bench_wait_flag(&r->done, 60.0)) {
		fprintf(stderr, "pool: %s: %llu of %llu jobs completed (%s)\n", c->name,
			(unsigned long long)r->completed, (unsigned long long)r->n,
			rc < 0 ? vz_strerror(rc) : "timeout");
		rc = -1;
		goto out;
	}
	vz_stats_pool(r->rt, node, &p1);
	if (r->bad) {
		fprintf(stderr, "pool: %s: %llu wrong completions\n", c->name,
			(unsigned long long)r->bad);
		rc = -1;
		goto out;
	}
	*value = (double)r->n * 1e9 / (double)(r->end_ns - r->start_ns);
	rc = 0;
out:
	if (r->cp) {
		classic_pool_stats(r->cp, &cs);
	}
	if (r->rt)
		bench_rt_destroy(r->rt); /* actor gone before the baseline pools */
	classic_pool_destroy(r->cp);
#ifdef VZ_HAVE_TBB
	tbb_pool_destroy(r->tp);
#endif
	if (rc == 0 && rep >= 0) {
		bench_lat_add(&c->lat, c->hist);
		if (c->kind == IMPL_VELOZ) {
			bench_series_add(&c->syscalls,
					 (double)(p1.submit_wakeups - p0.submit_wakeups) /
					     (double)njobs);
			bench_series_add(&c->sleeps, (double)(p1.worker_sleeps - p0.worker_sleeps) /
							 (double)njobs);
		} else if (c->kind == IMPL_CLASSIC) {
			bench_series_add(&c->syscalls, (double)cs.signals / (double)njobs);
			bench_series_add(&c->sleeps, (double)cs.waits / (double)njobs);
		}
	}
	free(r);
	return rc;
}

/* ---- variant "direct": no actor, no runtime messages ---------------------- */

/* Shared between the submitting thread and the (single) worker. */
struct direct {
	/* Written by the worker (baselines) or the submitting thread
	 * (veloz), one writer in each run. */
	alignas(64) _Atomic uint64_t completed;
	alignas(64) struct bench_hist *hist; /* recorded by the worker */
	uint64_t bad;			     /* worker only */
	alignas(64) uint64_t bad_done;	     /* submitting thread only */
};

static struct direct direct_sink;

/* The bench's bookkeeping of a finished job, on the worker right after
 * the job, for every implementation. */
static void direct_record(const struct job_out *out)
{
	bench_hist_record(direct_sink.hist, bench_now_ns() - out->t_submit);
	if (out->sum != expect_sum[out->seq & 255])
		direct_sink.bad++;
}

static void direct_count(void)
{
	/* Release: pairs with the submitter's acquire load; one writer. */
	atomic_store_explicit(&direct_sink.completed,
			      atomic_load_explicit(&direct_sink.completed, memory_order_relaxed) +
				  1,
			      memory_order_release);
}

/* veloz's job in this variant: the job, then the bookkeeping, on the
 * worker as for the baselines; the result still travels back. */
static int direct_veloz_job(void *arg, const void *payload, size_t len, void *result,
			    size_t *result_len)
{
	int rc = veloz_job(arg, payload, len, result, result_len);
	struct job_out out;

	memcpy(&out, result, sizeof out);
	direct_record(&out);
	return rc;
}

/* The veloz pool's completion sink in this variant: check the
 * completion's shape and count it, on the submitting thread (the ring's
 * deliver, called by vz__pool_reap()). The ring holds the whole window,
 * so the worker never posts; if it did (direct_post_worker), the figure
 * would not be the ring's: fail. */
static int direct_post(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	(void)rt, (void)to, (void)payload;
	if (type != VZ_MSG_POOL_DONE || len != sizeof(vz_pool_done) + sizeof(struct job_out))
		direct_sink.bad_done++;
	direct_count();
	return 0;
}

static _Atomic uint64_t direct_worker_posts;

static int direct_post_worker(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload,
			      size_t len)
{
	(void)rt, (void)to, (void)type, (void)payload, (void)len;
	/* Relaxed: read after the run. */
	atomic_fetch_add_explicit(&direct_worker_posts, 1, memory_order_relaxed);
	return 0;
}

/* The submitting thread never sleeps: nothing to wake. */
static void direct_wake(vz_runtime *rt, unsigned shard)
{
	(void)rt, (void)shard;
}

static void direct_baseline_job(void *arg, const void *payload, size_t len)
{
	struct job_out out;

	(void)arg, (void)len;
	work(payload, &out);
	direct_record(&out);
	direct_count();
}

/* A veloz pool set outside any runtime: one node holding both CPUs, the
 * "shard" (submitting thread) on CPU 0, so the one worker goes to CPU 1. */
static int direct_veloz_create(struct vz__pool_set **out)
{
	struct vz__pool_plan *plan = malloc(sizeof *plan);
	struct vz__topology t;
	vz_config cfg;
	int shard_cpu = bench_cpu(0), rc;

	if (!plan)
		return -1;
	memset(&cfg, 0, sizeof cfg);
	cfg.topology.nnodes = 1;
	vz_cpuset_set(&cfg.topology.node_cpus[0], (unsigned)bench_cpu(0));
	vz_cpuset_set(&cfg.topology.node_cpus[0], (unsigned)bench_cpu(1));
	cfg.pool.workers_per_node = 1;
	cfg.pool.share_shard_cpus = true;
	rc = vz__topo_for_config(&cfg, &t);
	if (rc == 0)
		rc = vz__pools_plan(&cfg.pool, &t, &shard_cpu, 1, NULL, plan);
	if (rc == 0)
		rc = vz__pools_create_with(NULL, plan, NULL, direct_post_worker, out);
	if (rc == 0 && (rc = vz__pools_attach(*out, direct_wake, direct_post)) < 0)
		vz__pools_destroy(*out);
	if (rc == 0) {
		bench_say_once("placement: direct veloz pool worker 0 -> CPU %d",
			       plan->pool[0].cpu[0]);
		rc = vz__pools_start(*out);
		if (rc < 0)
			vz__pools_destroy(*out);
	}
	free(plan);
	return rc < 0 ? -1 : 0;
}

static int direct_rep(void *arg, int rep, double *value)
{
	struct impl_ctx *c = arg;
	struct vz__pool_set *ps = NULL;
	struct classic_pool *cp = NULL;
#ifdef VZ_HAVE_TBB
	struct tbb_pool *tp = NULL;
#endif
	vz_pool_stats p0 = {0}, p1 = {0};
	struct classic_pool_stats cs = {0};
	int worker_cpu = bench_cpu(1), rc = 0;
	uint64_t start, end, submitted = 0;
	cpu_set_t saved;

	direct_sink.hist = c->hist;
	direct_sink.bad = 0;
	direct_sink.bad_done = 0;
	atomic_store_explicit(&direct_sink.completed, 0, memory_order_relaxed);
	bench_hist_reset(c->hist);
	bench_affinity_widen(&saved);
	if (c->kind == IMPL_VELOZ)
		rc = direct_veloz_create(&ps);
	else if (c->kind == IMPL_CLASSIC)
		rc = classic_pool_create(4096, 1, &worker_cpu, &cp);
#ifdef VZ_HAVE_TBB
	else
		rc = tbb_pool_create(1, &worker_cpu, &tp);
#endif
	bench_affinity_restore(&saved);
	if (rc < 0) {
		fprintf(stderr, "pool: direct %s setup failed\n", c->name);
		return -1;
	}
	if (ps)
		vz__pool_stats_of(ps, 0, &p0);
	start = bench_now_ns();
	while (submitted < njobs) {
		struct job_in in;

		if (ps)
			vz__pool_reap(ps, 0, WINDOW);
		/* Acquire: pairs with the worker's release in direct_complete(). */
		if (submitted -
			atomic_load_explicit(&direct_sink.completed, memory_order_acquire) >=
		    WINDOW) {
			bench_cpu_relax();
			continue;
		}
		fill_in(&in, submitted, bench_now_ns());
		if (ps) {
			vz_job j = {
			    .fn = direct_veloz_job, .payload = &in, .payload_len = sizeof in};

			rc = vz__pool_submit_as(ps, 0, (vz_ref){1}, &j, NULL);
		} else if (cp) {
			rc = classic_pool_submit(cp, direct_baseline_job, NULL, &in, sizeof in);
		}
#ifdef VZ_HAVE_TBB
		else {
			rc = tbb_pool_submit(tp, direct_baseline_job, NULL, &in, sizeof in);
		}
#endif
		if (rc != 0) {
			bench_cpu_relax();
			continue;
		}
		submitted++;
	}
	while (atomic_load_explicit(&direct_sink.completed, memory_order_acquire) < njobs) {
		if (ps)
			vz__pool_reap(ps, 0, WINDOW);
		bench_cpu_relax();
	}
	end = bench_now_ns();
	if (ps) {
		vz__pool_stats_of(ps, 0, &p1);
		vz__pools_destroy(ps);
	}
	if (cp) {
		classic_pool_stats(cp, &cs);
		classic_pool_destroy(cp);
	}
#ifdef VZ_HAVE_TBB
	tbb_pool_destroy(tp);
#endif
	if (atomic_load_explicit(&direct_worker_posts, memory_order_relaxed)) {
		fprintf(stderr, "pool: direct veloz: completions missed the ring\n");
		return -1;
	}
	if (direct_sink.bad || direct_sink.bad_done) {
		fprintf(stderr, "pool: direct %s: %llu wrong completions\n", c->name,
			(unsigned long long)(direct_sink.bad + direct_sink.bad_done));
		return -1;
	}
	*value = (double)njobs * 1e9 / (double)(end - start);
	if (rep >= 0) {
		bench_lat_add(&c->lat, c->hist);
		if (c->kind == IMPL_VELOZ) {
			bench_series_add(&c->syscalls,
					 (double)(p1.submit_wakeups - p0.submit_wakeups) /
					     (double)njobs);
			bench_series_add(&c->sleeps, (double)(p1.worker_sleeps - p0.worker_sleeps) /
							 (double)njobs);
		} else if (c->kind == IMPL_CLASSIC) {
			bench_series_add(&c->syscalls, (double)cs.signals / (double)njobs);
			bench_series_add(&c->sleeps, (double)cs.waits / (double)njobs);
		}
	}
	return 0;
}

/* ---- idle --------------------------------------------------------------- */

/* CPU time (ns) of this process's threads whose name starts with prefix,
 * from /proc/self/task/<tid>/schedstat (ns on CPU). */
static uint64_t threads_cpu_ns(const char *prefix)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	uint64_t sum = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		char path[300], name[64] = "";
		unsigned long long ns = 0;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(name, sizeof name, f))
			name[0] = 0;
		fclose(f);
		if (strncmp(name, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			sum += ns;
		fclose(f);
	}
	closedir(d);
	return sum;
}

/* Pool worker CPU over an idle interval that follows a burst of jobs, in
 * percent of one CPU. */
static void measure_idle(void)
{
	struct bench_series vz_s, cl_s;
	uint64_t idle_ns = bench_size(1000000000ull, 200000000ull);
	int worker_cpu = bench_cpu(1);

	bench_series_init(&vz_s, "pool", "idle", "veloz", "idle_cpu_pct", "%");
	bench_series_init(&cl_s, "pool", "idle", "classic", "idle_cpu_pct", "%");
	for (int rep = 0; rep < bench_opts.reps; rep++) {
		struct impl_ctx c = {.kind = IMPL_VELOZ, .name = "veloz"};
		struct run *r = calloc(1, sizeof *r);
		struct classic_pool *cp = NULL;
		uint64_t a, b, t0, t1;

		/* veloz: a runtime after a short burst, left alone */
		c.hist = bench_hist_create();
		if (!r || !c.hist || make_runtime(&r->rt, true) < 0) {
			free(r);
			bench_hist_destroy(c.hist);
			return;
		}
		r->kind = IMPL_VELOZ;
		r->n = 1000;
		r->hist = c.hist;
		if (vz_spawn(r->rt, 0, &actor_spec, r, &r->actor) == 0 &&
		    bench_rt_start(r->rt) == 0 &&
		    vz_post(r->rt, r->actor, MSG_START, NULL, 0) == 0 &&
		    bench_wait_flag(&r->done, 30.0)) {
			bench_sleep_ns(1000000); /* past the workers' polling window */
			a = threads_cpu_ns("vz-pool");
			t0 = bench_now_ns();
			bench_sleep_ns(idle_ns);
			b = threads_cpu_ns("vz-pool");
			t1 = bench_now_ns();
			bench_series_add(&vz_s, 100.0 * (double)(b - a) / (double)(t1 - t0));
		}
		bench_rt_destroy(r->rt);
		bench_hist_destroy(c.hist);
		free(r);

		/* classic: the same pool left alone */
		if (classic_pool_create(4096, 1, &worker_cpu, &cp) == 0) {
			bench_sleep_ns(1000000);
			a = threads_cpu_ns("classic-pool");
			t0 = bench_now_ns();
			bench_sleep_ns(idle_ns);
			b = threads_cpu_ns("classic-pool");
			t1 = bench_now_ns();
			bench_series_add(&cl_s, 100.0 * (double)(b - a) / (double)(t1 - t0));
			classic_pool_destroy(cp);
		}
	}
	bench_emit_series(&vz_s);
	bench_emit_series(&cl_s);
}

/* ---- main --------------------------------------------------------------- */

/* Run one variant side by side and emit its figures. */
static void run_variant(const char *variant, bench_rep_fn fn)
{
	struct impl_ctx ctx[3] = {
	    {.kind = IMPL_VELOZ, .name = "veloz"},
	    {.kind = IMPL_CLASSIC, .name = "classic"},
	    {.kind = IMPL_TBB, .name = "tbb"},
	};
	struct bench_impl impls[3];
	int n = 0;

	for (int i = 0; i < 3; i++) {
#ifndef VZ_HAVE_TBB
		if (ctx[i].kind == IMPL_TBB) {
			bench_skip("tbb", "not installed");
			continue;
		}
#endif
		ctx[i].hist = bench_hist_create();
		bench_lat_init(&ctx[i].lat, "pool", variant, ctx[i].name, "rtt", "ns");
		bench_series_init(&ctx[i].syscalls, "pool", variant, ctx[i].name,
				  "syscalls_per_job", "count");
		bench_series_init(&ctx[i].sleeps, "pool", variant, ctx[i].name, "sleeps_per_job",
				  "count");
		impls[n++] = (struct bench_impl){.impl = ctx[i].name, .fn = fn, .ctx = &ctx[i]};
	}
	bench_run_side_by_side(impls, n, bench_opts.reps, true, "pool", variant, "throughput",
			       "jobs/s");
	for (int i = 0; i < n; i++)
		bench_emit_series(&impls[i].s);
	for (int i = 1; i < n; i++)
		bench_emit_ratio(&impls[0].s, &impls[i].s, true);
	for (int i = 0; i < n; i++) {
		struct impl_ctx *c = impls[i].ctx;

		bench_lat_emit(&c->lat);
		bench_emit_series(&c->syscalls);
		bench_emit_series(&c->sleeps);
		bench_hist_destroy(c->hist);
	}
}

int main(int argc, char **argv)
{
	bench_init(argc, argv, "pool");
	njobs = bench_size(1000000, 100000);
	for (unsigned i = 0; i < 256; i++) {
		struct job_in in;
		struct job_out out;

		fill_in(&in, i, 0);
		work(&in, &out);
		expect_sum[i] = out.sum;
	}
	fprintf(stderr,
		"pool: %llu jobs of %d bytes, %d in flight, submitter on CPU %d, one worker on "
		"CPU %d\n",
		(unsigned long long)njobs, PAYLOAD, WINDOW, bench_cpu(0), bench_cpu(1));
	if (bench_variant_enabled("actor")) {
		bench_pin(1, "main thread (waits)");
		run_variant("actor", run_rep);
	}
	if (bench_variant_enabled("direct")) {
		bench_pin(0, "main thread (direct submitter)");
		run_variant("direct", direct_rep);
	}
	if (bench_variant_enabled("idle"))
		measure_idle();
	return 0;
}
