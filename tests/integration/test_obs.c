// SPDX-License-Identifier: MIT
/*
 * Observability: per-actor-type metrics give exact counts for a known
 * workload (and so do the per-destination counters, the JSON and the
 * Prometheus text); the histogram buckets are consistent; and the stall
 * detector names an actor that sleeps 50 ms in its receive, once per stall.
 *
 * No timed assertion: the stall case waits (bounded, 30 s) for a report;
 * the sleeper keeps napping, 50 ms at a time, in the same loop turn until
 * the report has come, so a loaded machine that runs the watchdog late
 * only makes the stall longer. What is checked is the report's content.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MSG_GO = VZ_MSG_USER, MSG_ITEM, MSG_NAP };

#define N_LOCAL	 100u
#define N_REMOTE 50u

/* ---- the known workload -------------------------------------------------- */

static int all_in; /* set (release) when both sinks have everything */
static atomic_uint sink_got, remote_got;

struct producer {
	vz_ref local, remote;
};

static int producer_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	memcpy(state, arg, sizeof(struct producer));
	return 0;
}

static void producer_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct producer *p = state;

	if (vz_msg_type(m) != MSG_GO)
		return;
	for (uint64_t i = 0; i < N_LOCAL; i++)
		VZ_TEST_CHECK(vz_send(self, p->local, MSG_ITEM, &i, sizeof i) == 0);
	for (uint64_t i = 0; i < N_REMOTE; i++)
		VZ_TEST_CHECK(vz_send(self, p->remote, MSG_ITEM, &i, sizeof i) == 0);
}

static void check_done(void)
{
	/* Relaxed counters; the flag is released once both are complete. */
	if (atomic_load_explicit(&sink_got, memory_order_relaxed) == N_LOCAL &&
	    atomic_load_explicit(&remote_got, memory_order_relaxed) == N_REMOTE)
		__atomic_store_n(&all_in, 1, __ATOMIC_RELEASE);
}

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	if (vz_msg_type(m) == MSG_ITEM)
		atomic_fetch_add_explicit(&sink_got, 1, memory_order_relaxed);
	check_done();
}

static void remote_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	if (vz_msg_type(m) == MSG_ITEM)
		atomic_fetch_add_explicit(&remote_got, 1, memory_order_relaxed);
	check_done();
}

static const vz_actor_spec producer_spec = {.name = "producer",
					    .state_size = sizeof(struct producer),
					    .init = producer_init,
					    .receive = producer_receive};
static const vz_actor_spec sink_spec = {.name = "sink", .receive = sink_receive};
static const vz_actor_spec remote_spec = {.name = "remote-sink", .receive = remote_receive};

static const vz_type_stats *find_type(const vz_stats_snapshot *s, unsigned shard, const char *name)
{
	for (unsigned k = 0; k < s->ntypes; k++)
		if (s->types[k].shard == shard && !strcmp(s->types[k].name, name))
			return &s->types[k];
	return NULL;
}

static void exact_counts(void **unused)
{
	struct producer p;
	vz_stats_snapshot *s;
	const vz_type_stats *t;
	vz_runtime *rt;
	vz_config cfg;
	vz_ref prod;
	char *buf;
	int n;

	(void)unused;
	vz_test_reset_fails();
	all_in = 0;
	atomic_store(&sink_got, 0);
	atomic_store(&remote_got, 0);
	vz_test_config(&cfg, 2);
	cfg.stats_sample_runs = 1; /* every run timed: histogram counts are exact */
	cfg.stall_off = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &sink_spec, NULL, &p.local), 0);
	assert_int_equal(vz_spawn(rt, 1, &remote_spec, NULL, &p.remote), 0);
	assert_int_equal(vz_spawn(rt, 0, &producer_spec, &p, &prod), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, prod, MSG_GO, NULL, 0), 0);
	assert_true(vz_test_wait_flag(&all_in, 30.0));
	assert_int_equal(vz_runtime_stop(rt), 0);
	vz_test_assert_no_fails();

	assert_int_equal(vz_stats_snapshot_create(rt, &s), 0);
	assert_int_equal(s->version, VZ_STATS_VERSION);
	assert_int_equal(s->nshards, 2);
	assert_int_equal(s->ntypes, 3);
	t = find_type(s, 0, "producer");
	assert_non_null(t);
	assert_int_equal(t->spawned, 1);
	assert_int_equal(t->handled, 1);
	assert_int_equal(t->runs, 1);
	assert_int_equal(t->mailbox_hwm, 1);
	assert_int_equal(t->wait.count, 1);
	assert_int_equal(t->handle.count, 1);
	/* 100 messages from one receive: the sink's mailbox is 100 deep when
	 * its first run starts; batch 64 makes that two runs. */
	t = find_type(s, 0, "sink");
	assert_non_null(t);
	assert_int_equal(t->spawned, 1);
	assert_int_equal(t->handled, N_LOCAL);
	assert_int_equal(t->mailbox_hwm, N_LOCAL);
	assert_int_equal(t->runs, 2);
	assert_int_equal(t->wait.count, 2);
	assert_int_equal(t->handle.count, N_LOCAL);
	t = find_type(s, 1, "remote-sink");
	assert_non_null(t);
	assert_int_equal(t->handled, N_REMOTE);
	assert_int_equal(t->handle.count, N_REMOTE);
	assert_null(find_type(s, 1, "sink"));
	/* Per destination: 0 -> 1 carried N_REMOTE, nothing went 1 -> 0. */
	assert_int_equal(s->sent_to[0 * 2 + 1], N_REMOTE);
	assert_int_equal(s->sent_to[1 * 2 + 0], 0);
	assert_int_equal(s->received_from[1 * 2 + 0], N_REMOTE);
	assert_int_equal(s->received_from[0 * 2 + 1], 0);
	assert_int_equal(s->shard[0].sent_local, N_LOCAL);
	assert_int_equal(s->shard[0].sent_remote, N_REMOTE);
	assert_true(s->obs[0].turn_seq % 2 == 0); /* stopped: no turn runs */

	/* JSON: sized by a first call, then written whole. */
	n = vz_stats_json(s, NULL, 0);
	assert_true(n > 0);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(vz_stats_json(s, buf, (size_t)n + 1), n);
	assert_int_equal(strlen(buf), (size_t)n);
	assert_non_null(strstr(buf, "{\"shard\": 0, \"name\": \"sink\", \"spawned\": 1, "
				    "\"handled\": 100, \"runs\": 2, \"mailbox_hwm\": 100, "));
	assert_non_null(strstr(buf, "\"sent_to\": [0, 50]"));
	free(buf);
	/* A short buffer: truncated, terminated, same length reported. */
	{
		char small[16];

		assert_int_equal(vz_stats_json(s, small, sizeof small), n);
		assert_int_equal(strlen(small), sizeof small - 1);
	}
	n = vz_stats_prometheus(s, NULL, 0);
	assert_true(n > 0);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(vz_stats_prometheus(s, buf, (size_t)n + 1), n);
	assert_non_null(strstr(buf, "veloz_actor_handled_total{shard=\"0\",type=\"sink\"} 100\n"));
	assert_non_null(strstr(buf, "veloz_shard_sent_to_total{shard=\"0\",to=\"1\"} 50\n"));
	assert_non_null(
	    strstr(buf, "veloz_actor_handle_seconds_count{shard=\"0\",type=\"sink\"} 100\n"));
	assert_non_null(
	    strstr(buf, "veloz_actor_wait_seconds_bucket{shard=\"1\",type=\"remote-sink\","));
	assert_non_null(strstr(buf, "# TYPE veloz_shard_actors_live gauge\n"
				    "veloz_shard_actors_live{shard=\"0\"} 0\n"));
	assert_non_null(strstr(buf, "veloz_shard_actors_spawned_total{shard=\"0\"} 2\n"));
	assert_null(strstr(buf, "veloz_shard_actors_live_total"));
	free(buf);
	vz_stats_snapshot_free(s);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* Types off: nothing per type, the rest as before. */
static void types_off(void **unused)
{
	struct producer p;
	vz_stats_snapshot *s;
	vz_runtime *rt;
	vz_config cfg;
	vz_ref prod;

	(void)unused;
	vz_test_reset_fails();
	all_in = 0;
	atomic_store(&sink_got, 0);
	atomic_store(&remote_got, 0);
	vz_test_config(&cfg, 2);
	cfg.stats_types_off = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &sink_spec, NULL, &p.local), 0);
	assert_int_equal(vz_spawn(rt, 1, &remote_spec, NULL, &p.remote), 0);
	assert_int_equal(vz_spawn(rt, 0, &producer_spec, &p, &prod), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, prod, MSG_GO, NULL, 0), 0);
	assert_true(vz_test_wait_flag(&all_in, 30.0));
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_snapshot_create(rt, &s), 0);
	assert_int_equal(s->ntypes, 0);
	assert_int_equal(s->sent_to[1], N_REMOTE);
	vz_stats_snapshot_free(s);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* Pool jobs an actor submits are counted on its shard; their completions
 * are messages its type handled. */
#define N_JOBS 3u
static int jobs_done;

static int job_fn(void *arg, const void *payload, size_t len, void *result, size_t *rlen)
{
	(void)arg;
	(void)payload;
	(void)len;
	(void)result;
	*rlen = 0;
	return 0;
}

static void submitter_receive(vz_actor *self, void *state, const vz_msg *m)
{
	unsigned *done = state;
	vz_job job = {.fn = job_fn};

	if (vz_msg_type(m) == MSG_GO) {
		for (unsigned i = 0; i < N_JOBS; i++)
			VZ_TEST_CHECK(vz_pool_submit(self, &job, NULL) == 0);
	} else if (vz_msg_type(m) == VZ_MSG_POOL_DONE && ++*done == N_JOBS) {
		__atomic_store_n(&jobs_done, 1, __ATOMIC_RELEASE);
	}
}

static const vz_actor_spec submitter_spec = {
    .name = "submitter", .state_size = sizeof(unsigned), .receive = submitter_receive};

static void pool_jobs_counted(void **unused)
{
	vz_stats_snapshot *s;
	const vz_type_stats *t;
	vz_runtime *rt;
	vz_config cfg;
	vz_ref a;

	(void)unused;
	vz_test_reset_fails();
	jobs_done = 0;
	vz_test_config(&cfg, 1);
	cfg.stall_off = true;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &submitter_spec, NULL, &a), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, a, MSG_GO, NULL, 0), 0);
	assert_true(vz_test_wait_flag(&jobs_done, 30.0));
	assert_int_equal(vz_runtime_stop(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(vz_stats_snapshot_create(rt, &s), 0);
	assert_int_equal(s->obs[0].pool_jobs, N_JOBS);
	t = find_type(s, 0, "submitter");
	assert_non_null(t);
	assert_int_equal(t->handled, 1 + N_JOBS);
	vz_stats_snapshot_free(s);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* ---- histograms ---------------------------------------------------------- */

static void hist_buckets(void **unused)
{
	vz_hist a, b;

	(void)unused;
	/* Every value lies in its bucket, buckets tile the line, and a bucket
	 * is at most 1/8 of its lower bound wide. */
	for (uint64_t v = 0; v < 5000000; v = v < 64 ? v + 1 : v + v / 7 + 1) {
		unsigned i = vz_hist_index(v);

		assert_true(vz_hist_lower(i) <= v && v <= vz_hist_upper(i));
		if (i >= 8 && i < VZ_HIST_BUCKETS - 1)
			assert_true((vz_hist_upper(i) - vz_hist_lower(i) + 1) * 8 <=
				    vz_hist_lower(i));
	}
	for (unsigned i = 0; i + 1 < VZ_HIST_BUCKETS; i++)
		assert_int_equal(vz_hist_upper(i) + 1, vz_hist_lower(i + 1));
	assert_int_equal(vz_hist_index(UINT64_MAX), VZ_HIST_BUCKETS - 1);
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	vz_hist_record(&a, 100, 90);
	vz_hist_record(&b, 10000, 10);
	vz_hist_merge(&a, &b);
	assert_int_equal(a.count, 100);
	assert_int_equal(a.max, 10000);
	assert_int_equal(a.sum, 100 * 90 + 10000 * 10);
	assert_int_equal(vz_hist_quantile(&a, 0.5), vz_hist_upper(vz_hist_index(100)));
	assert_int_equal(vz_hist_quantile(&a, 0.95), 10000); /* capped at max */
	assert_int_equal(vz_hist_quantile(&a, 0.0), 0);
}

/* ---- stall detector -------------------------------------------------------- */

static int reported; /* release by the hook */
static atomic_uint sleeper_reports, reports;
static vz_stall_report got;
static char got_bt[4096];

static void stall_hook(void *ctx, const vz_stall_report *r)
{
	(void)ctx;
	atomic_fetch_add(&reports, 1);
	if (!r->in_receive || strcmp(r->actor, "sleeper") != 0)
		return; /* a preempted shard on a loaded machine: not ours */
	if (atomic_fetch_add(&sleeper_reports, 1) == 0) {
		got = *r;
		snprintf(got_bt, sizeof got_bt, "%s", r->backtrace);
		got.backtrace = got_bt;
		__atomic_store_n(&reported, 1, __ATOMIC_RELEASE);
	}
}

static void nap_50ms(void)
{
	uint64_t end = vz_test_now_ns() + 50000000u;
	uint64_t now;

	/* The stall signal interrupts nanosleep: sleep the rest again. */
	while ((now = vz_test_now_ns()) < end) {
		struct timespec ts = {0, (long)(end - now)};

		nanosleep(&ts, NULL);
	}
}

static void sleeper_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	if (vz_msg_type(m) != MSG_NAP)
		return;
	/* 50 ms naps in this one receive call (one turn, one stall) until
	 * the report is in, at most 600 of them (30 s). */
	for (int i = 0; i < 600 && !__atomic_load_n(&reported, __ATOMIC_ACQUIRE); i++)
		nap_50ms();
}

static const vz_actor_spec sleeper_spec = {.name = "sleeper", .receive = sleeper_receive};

static void stall_names_actor(void **unused)
{
	vz_stats_snapshot *s;
	vz_runtime *rt;
	vz_config cfg;
	vz_ref sl;

	(void)unused;
	vz_test_config(&cfg, 1);
	cfg.stall_budget_us = 10000;
	cfg.stall_interval_ms = 1; /* no rate limit in the way of "once per stall" */
	cfg.stall_hook = stall_hook;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &sleeper_spec, NULL, &sl), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, sl, MSG_NAP, NULL, 0), 0);
	assert_true(vz_test_wait_flag(&reported, 30.0));
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(got.shard, 0);
	assert_true(got.in_receive);
	assert_string_equal(got.actor, "sleeper");
	assert_int_equal(got.msg_type, MSG_NAP);
	assert_int_equal(got.budget_ns, 10000000u);
	assert_true(got.stalled_ns >= got.budget_ns);
	/* The shard's own stack, taken by its own thread. */
	assert_true(got.nframes > 0);
	assert_true(strlen(got.backtrace) > 0);
	/* Once per stall: the long turn was reported once, though the
	 * watchdog looked at it many times. */
	assert_int_equal(atomic_load(&sleeper_reports), 1);
	assert_int_equal(vz_stats_snapshot_create(rt, &s), 0);
	assert_true(s->obs[0].stalls >= 1);
	assert_int_equal(s->obs[0].stalls, atomic_load(&reports));
	vz_stats_snapshot_free(s);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* An embedded shard's stall: reported, without names or stack (its thread
 * is the embedder's, which the runtime does not signal). */
static int emb_reported;
static vz_stall_report emb_got;

static void emb_hook(void *ctx, const vz_stall_report *r)
{
	(void)ctx;
	if (__atomic_load_n(&emb_reported, __ATOMIC_ACQUIRE))
		return;
	emb_got = *r;
	emb_got.backtrace = NULL;
	__atomic_store_n(&emb_reported, 1, __ATOMIC_RELEASE);
}

static void emb_sleeper_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	if (vz_msg_type(m) != MSG_NAP)
		return;
	for (int i = 0; i < 600 && !__atomic_load_n(&emb_reported, __ATOMIC_ACQUIRE); i++)
		nap_50ms();
}

static const vz_actor_spec emb_sleeper_spec = {.name = "emb-sleeper",
					       .receive = emb_sleeper_receive};

static void stall_embedded(void **unused)
{
	vz_runtime *rt;
	vz_config cfg;
	vz_ref sl;

	(void)unused;
	vz_test_config(&cfg, 1);
	cfg.shards[0].embedded = true;
	cfg.stall_hook = emb_hook;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &emb_sleeper_spec, NULL, &sl), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, sl, MSG_NAP, NULL, 0), 0);
	/* Polls until the nap ran (it returns once the report is in). */
	while (!__atomic_load_n(&emb_reported, __ATOMIC_ACQUIRE))
		assert_true(vz_shard_poll(rt, 0, 1000) >= 0);
	assert_int_equal(emb_got.shard, 0);
	assert_false(emb_got.in_receive);
	assert_int_equal(emb_got.nframes, 0);
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* Threads a started runtime of this config adds. */
static unsigned threads_added(vz_config *cfg)
{
	vz_runtime *rt;
	unsigned before, after;

	assert_int_equal(vz_runtime_create(cfg, &rt), 0);
	before = vz_test_count_entries("/proc/self/task");
	assert_int_equal(vz_runtime_start(rt), 0);
	after = vz_test_count_entries("/proc/self/task");
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_threads_settle(before, 10.0);
	return after - before;
}

/* Off: no watchdog thread (on: exactly one more thread). */
static void stall_off(void **unused)
{
	vz_config cfg;
	unsigned on, off;

	(void)unused;
	vz_test_warm_up_threads();
	vz_test_config(&cfg, 1);
	on = threads_added(&cfg);
	cfg.stall_off = true;
	off = threads_added(&cfg);
	assert_int_equal(on, off + 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hist_buckets),	 cmocka_unit_test(exact_counts),
	    cmocka_unit_test(types_off),	 cmocka_unit_test(pool_jobs_counted),
	    cmocka_unit_test(stall_names_actor), cmocka_unit_test(stall_embedded),
	    cmocka_unit_test(stall_off),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
