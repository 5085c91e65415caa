// SPDX-License-Identifier: MIT
/*
 * The simulated runtime (include/veloz/sim.h): its refusals, that it
 * starts no thread, virtual time, pool jobs run inline (and failed by the
 * fault), simulated I/O completions, that a seed replays bit for bit while
 * different seeds interleave differently, and that a planted ordering bug
 * (a late reply taken for the answer to a newer question) is found within
 * a few hundred seeds and replays from its seed; the crash fault ends a
 * drawn actor as vz_fail() does, the same ones for the same seed.
 *
 * One thread does it all: VZ_TEST_BACKEND_INDEPENDENT (one CTest entry).
 */
#include "testutil.h"

#include <pthread.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

enum { MSG_GO = VZ_MSG_USER, MSG_PING, MSG_PONG, MSG_ASK, MSG_ANSWER };

static void nop_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
}

static const vz_actor_spec nop_spec = {.name = "nop", .receive = nop_receive};

static void sim_config(vz_config *cfg, unsigned nshards)
{
	vz_config_default(cfg);
	cfg->nshards = nshards;
}

/* ---- refusals ------------------------------------------------------------ */

static void *step_from_other_thread(void *p)
{
	return (void *)(intptr_t)vz_sim_step(p);
}

static void test_refusals(void **st)
{
	vz_config cfg;
	vz_config_error err;
	vz_sim *sim;
	pthread_t t;
	void *rc;

	(void)st;
	sim_config(&cfg, 0);
	cfg.create_error = &err;
	assert_int_equal(vz_sim_create(&cfg, NULL, &sim), VZ_ECONFIG);
	assert_string_equal(err.key, "runtime.shards");
	assert_int_equal(vz_sim_create(NULL, NULL, &sim), VZ_EINVAL);
	assert_int_equal(vz_sim_create(&cfg, NULL, NULL), VZ_EINVAL);
	assert_int_equal(vz_sim_step(NULL), VZ_EINVAL);
	assert_int_equal(vz_sim_options_default(NULL, 1), VZ_EINVAL);
	assert_int_equal(vz_sim_destroy(NULL), 0);

	sim_config(&cfg, 3);
	assert_int_equal(vz_sim_create(&cfg, NULL, &sim), 0);
	assert_string_equal(vz_runtime_backend(vz_sim_runtime(sim)), "sim");
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(vz_runtime_shard_cpu(vz_sim_runtime(sim), i), -1);
	assert_int_equal(vz_sim_step(sim), VZ_ESTATE); /* not started */
	assert_int_equal(vz_runtime_start(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_sim_step(sim), 0); /* idle */
	assert_int_equal(pthread_create(&t, NULL, step_from_other_thread, sim), 0);
	assert_int_equal(pthread_join(t, &rc), 0);
	assert_int_equal((int)(intptr_t)rc, VZ_EWRONGTHREAD);
	assert_int_equal(vz_runtime_stop(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_sim_step(sim), VZ_ESTATE); /* stopped */
	assert_int_equal(vz_sim_destroy(sim), 0);
}

/* ---- ping-pong across shards, no thread ---------------------------------- */

struct pinger {
	vz_ref peer;
	uint32_t left;
};

static int pinger_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	memcpy(state, arg, sizeof(struct pinger));
	return 0;
}

static void pinger_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct pinger *p = state;

	switch (vz_msg_type(m)) {
	case MSG_GO:
	case MSG_PONG:
		if (p->left && p->left--)
			VZ_TEST_CHECK(vz_send(self, p->peer, MSG_PING, &p->left, sizeof p->left) ==
				      0);
		break;
	case MSG_PING:
		VZ_TEST_CHECK(vz_reply(self, m, MSG_PONG, vz_msg_data(m), vz_msg_len(m)) == 0);
		break;
	}
}

static const vz_actor_spec pinger_spec = {.name = "pinger",
					  .state_size = sizeof(struct pinger),
					  .init = pinger_init,
					  .receive = pinger_receive};

/* Four pingers on shards 0 and 1 pinging ponger actors on shards 2 and 3,
 * 20 round trips each. */
static int pingpong(vz_sim *sim, void *ctx)
{
	vz_runtime *rt = vz_sim_runtime(sim);
	vz_ref pongers[2], pingers[4];

	(void)ctx;
	for (unsigned i = 0; i < 2; i++)
		if (vz_spawn(rt, 2 + i, &nop_spec, NULL, &pongers[i]) < 0)
			return 1;
	/* the pongers are pingers with nothing to send: they only reply */
	for (unsigned i = 0; i < 2; i++) {
		struct pinger none = {VZ_REF_NULL, 0};

		if (vz_spawn(rt, 2 + i, &pinger_spec, &none, &pongers[i]) < 0)
			return 1;
	}
	for (unsigned i = 0; i < 4; i++) {
		struct pinger a = {pongers[i % 2], 20};

		if (vz_spawn(rt, i / 2, &pinger_spec, &a, &pingers[i]) < 0)
			return 1;
	}
	if (vz_runtime_start(rt) < 0)
		return 1;
	for (unsigned i = 0; i < 4; i++)
		if (vz_post(rt, pingers[i], MSG_GO, NULL, 0) < 0)
			return 1;
	return vz_sim_run(sim, 100000, 0) == 0 ? 0 : 1;
}

static void test_no_threads_and_replay(void **st)
{
	vz_config cfg;
	vz_sim_test t = {"pingpong", pingpong, NULL, &cfg, NULL};
	vz_sim_result a, b;
	uint64_t sigs[20];
	unsigned distinct = 0, threads = vz_test_count_entries("/proc/self/task");
	vz_sim *sim;
	vz_sim_stats s;

	(void)st;
	vz_test_reset_fails();
	sim_config(&cfg, 4);
	/* One run by hand: no thread at any point. */
	assert_int_equal(vz_sim_create(&cfg, NULL, &sim), 0);
	assert_int_equal(vz_test_count_entries("/proc/self/task"), threads);
	assert_int_equal(pingpong(sim, NULL), 0);
	assert_int_equal(vz_test_count_entries("/proc/self/task"), threads);
	assert_int_equal(vz_sim_stats_get(sim, &s), 0);
	assert_int_equal(s.handled, 4 + 4 * 20 * 2); /* GO, then 20 PINGs and PONGs each */
	assert_int_equal(s.signature, vz_sim_signature(sim));
	assert_true(s.turns > 0 && s.steps >= s.turns);
	assert_int_equal(vz_sim_destroy(sim), 0);
	vz_test_assert_no_fails();

	/* The same seed twice: the same sequence. Different seeds: different
	 * interleavings (the signature hashes the handled order). */
	for (uint64_t seed = 1; seed <= 20; seed++) {
		assert_int_equal(vz_sim_run_seed(&t, seed, &a), 0);
		assert_int_equal(vz_sim_run_seed(&t, seed, &b), 0);
		assert_int_equal(a.signature, b.signature);
		assert_int_equal(a.handled, b.handled);
		assert_int_equal(a.steps, b.steps);
		assert_int_equal(a.handled, 4 + 4 * 20 * 2);
		sigs[seed - 1] = a.signature;
		distinct++;
		for (uint64_t k = 0; k + 1 < seed; k++)
			if (sigs[k] == a.signature) {
				distinct--;
				break;
			}
	}
	print_message("20 seeds, %u distinct order signatures\n", distinct);
	assert_true(distinct >= 10);
	vz_test_assert_no_fails();
}

/* ---- foreign posts interleave with ring traffic --------------------------- */

/* X (shard 1) records where the message from Y (shard 0) landed among
 * five posts from the test; Y sends it on its GO, also posted. */
static unsigned landed_at, posts_seen;

static void x_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	if (vz_msg_type(m) == MSG_PING)
		landed_at = posts_seen;
	else if (vz_msg_type(m) == MSG_GO)
		posts_seen++;
}

static const vz_actor_spec x_spec = {.name = "x", .receive = x_receive};

static int interleave(vz_sim *sim, void *ctx)
{
	vz_runtime *rt = vz_sim_runtime(sim);
	struct pinger y = {VZ_REF_NULL, 1};
	vz_ref x, yr;

	(void)ctx;
	landed_at = posts_seen = 0;
	if (vz_spawn(rt, 1, &x_spec, NULL, &x) < 0)
		return 1;
	y.peer = x;
	if (vz_spawn(rt, 0, &pinger_spec, &y, &yr) < 0 || vz_runtime_start(rt) < 0 ||
	    vz_post(rt, yr, MSG_GO, NULL, 0) < 0)
		return 1;
	for (int i = 0; i < 5; i++)
		if (vz_post(rt, x, MSG_GO, NULL, 0) < 0)
			return 1;
	return vz_sim_run(sim, 1000, 0) == 0 && posts_seen == 5 ? 0 : 1;
}

static void test_posts_interleave(void **st)
{
	vz_config cfg;
	vz_sim_test t = {"interleave", interleave, NULL, &cfg, NULL};
	vz_sim_result r;
	unsigned seen = 0;

	(void)st;
	vz_test_reset_fails();
	sim_config(&cfg, 2);
	for (uint64_t seed = 1; seed <= 200; seed++) {
		assert_int_equal(vz_sim_run_seed(&t, seed, &r), 0);
		seen |= 1u << landed_at;
	}
	print_message("positions of the ring message among 5 posts: 0x%x\n", seen);
	/* before all of them, after all of them, and in between */
	assert_true(seen & 1u);
	assert_true(seen & (1u << 5));
	assert_true(seen & 0x1eu);
	vz_test_assert_no_fails();
}

/* ---- virtual time --------------------------------------------------------- */

static uint64_t fired[4], deadlines[4];
static unsigned nfired;

static int timers_init(vz_actor *self, void *state, const void *arg)
{
	(void)state;
	(void)arg;
	/* 10 s, 1 s, 1 h: virtual, so the test does not wait for them. */
	if (vz_timer_arm(self, 10000000000ull, 0, 0, NULL) < 0 ||
	    vz_timer_arm(self, 1000000000ull, 0, 1, NULL) < 0 ||
	    vz_timer_arm(self, 3600000000000ull, 0, 2, NULL) < 0)
		return VZ_EINVAL;
	return 0;
}

static void timers_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_timer_event ev;

	(void)self;
	(void)state;
	if (vz_msg_type(m) != VZ_MSG_TIMER || nfired >= 4)
		return;
	memcpy(&ev, vz_msg_data(m), sizeof ev);
	fired[nfired] = ev.fired_ns;
	deadlines[nfired++] = ev.deadline_ns;
	VZ_TEST_CHECK(vz_now_ns(self) >= ev.deadline_ns);
}

static const vz_actor_spec timers_spec = {
    .name = "timers", .init = timers_init, .receive = timers_receive};

static void periodic_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
}

static int periodic_init(vz_actor *self, void *state, const void *arg)
{
	(void)state;
	(void)arg;
	return vz_timer_arm(self, 1000000, 1000000, 0, NULL); /* every 1 ms */
}

static const vz_actor_spec periodic_spec = {
    .name = "periodic", .init = periodic_init, .receive = periodic_receive};

static void test_virtual_time(void **st)
{
	vz_config cfg;
	vz_sim_options opt;
	vz_sim *sim;
	vz_sim_stats s;
	vz_ref r;
	uint64_t start;

	(void)st;
	vz_test_reset_fails();
	nfired = 0;
	sim_config(&cfg, 2);
	vz_sim_options_default(&opt, 7);
	assert_int_equal(vz_sim_create(&cfg, &opt, &sim), 0);
	start = vz_sim_now_ns(sim);
	assert_int_equal(start, opt.start_ns);
	assert_int_equal(vz_spawn(vz_sim_runtime(sim), 1, &timers_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_start(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_sim_run(sim, 0, 0), 0);
	assert_int_equal(nfired, 3);
	assert_int_equal(deadlines[0], start + 1000000000ull);
	assert_int_equal(deadlines[1], start + 10000000000ull);
	assert_int_equal(deadlines[2], start + 3600000000000ull);
	for (unsigned i = 0; i < 3; i++)
		assert_true(fired[i] >= deadlines[i]);
	assert_true(vz_sim_now_ns(sim) >= start + 3600000000000ull);
	assert_int_equal(vz_sim_stats_get(sim, &s), 0);
	assert_true(s.time_jumps >= 3);
	vz_test_assert_no_fails();

	/* A periodic timer never lets the run go idle: bounded by steps or
	 * by virtual time. */
	start = vz_sim_now_ns(sim);
	assert_int_equal(vz_spawn(vz_sim_runtime(sim), 0, &periodic_spec, NULL, &r), 0);
	assert_int_equal(vz_sim_run(sim, 50, 0), VZ_EAGAIN);
	assert_int_equal(vz_sim_run(sim, 0, start + 100000000ull), VZ_ETIMEDOUT);
	assert_int_equal(vz_sim_now_ns(sim), start + 100000000ull);
	assert_int_equal(vz_sim_destroy(sim), 0);
}

/* ---- pool jobs and the pool fault ----------------------------------------- */

static unsigned jobs_ok, jobs_eio, jobs_canceled, job_runs;

static int double_it(void *arg, const void *payload, size_t len, void *result, size_t *rlen)
{
	uint64_t v;

	(void)arg;
	VZ_TEST_CHECK(len == sizeof v);
	VZ_TEST_CHECK(vz_current_shard(arg) == -1); /* inline, as no shard */
	memcpy(&v, payload, sizeof v);
	v *= 2;
	memcpy(result, &v, sizeof v);
	*rlen = sizeof v;
	job_runs++;
	return 0;
}

static void jobs_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_pool_done d;
	const void *res;
	uint64_t v;
	vz_job_id id;

	(void)state;
	if (vz_msg_type(m) == MSG_GO) {
		for (uint64_t i = 1; i <= 8; i++) {
			vz_job job = {.fn = double_it,
				      .arg = vz_actor_runtime(self),
				      .payload = &i,
				      .payload_len = sizeof i,
				      .tag = i};

			VZ_TEST_CHECK(vz_pool_submit(self, &job, &id) == 0);
			if (i == 8) /* the last one is cancelled at once */
				VZ_TEST_CHECK(vz_pool_cancel(self, id) == 0);
		}
		VZ_TEST_CHECK(vz_pool_cancel(self, id) == VZ_ENOENT);
		return;
	}
	if (vz_msg_type(m) != VZ_MSG_POOL_DONE || vz_pool_done_read(m, &d, &res) < 0)
		return;
	if (d.status == 0) {
		memcpy(&v, res, sizeof v);
		VZ_TEST_CHECK(v == 2 * d.tag);
		jobs_ok++;
	} else if (d.status == VZ_EIO) {
		jobs_eio++;
	} else if (d.status == VZ_ECANCELED) {
		jobs_canceled++;
	}
}

static const vz_actor_spec jobs_spec = {.name = "jobs", .receive = jobs_receive};

static void run_jobs(uint32_t faults, uint32_t permille)
{
	vz_config cfg;
	vz_sim_options opt;
	vz_sim *sim;
	vz_sim_stats s;
	vz_shard_stats t;
	uint64_t foreign;
	vz_ref r;

	jobs_ok = jobs_eio = jobs_canceled = job_runs = 0;
	sim_config(&cfg, 2);
	vz_sim_options_default(&opt, 3);
	opt.faults = faults;
	opt.fault_permille = permille;
	assert_int_equal(vz_sim_create(&cfg, &opt, &sim), 0);
	assert_int_equal(vz_spawn(vz_sim_runtime(sim), 1, &jobs_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_start(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_post(vz_sim_runtime(sim), r, MSG_GO, NULL, 0), 0);
	assert_int_equal(vz_sim_run(sim, 0, 0), 0);
	assert_int_equal(vz_sim_stats_get(sim, &s), 0);
	assert_int_equal(s.pool_jobs, 8);
	assert_int_equal(jobs_ok + jobs_eio, 7);
	assert_int_equal(jobs_canceled, 1);
	assert_int_equal(s.pool_failed, jobs_eio);
	assert_int_equal(job_runs, jobs_ok);
	assert_int_equal(vz_runtime_stop(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_stats_total(vz_sim_runtime(sim), &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(vz_sim_destroy(sim), 0);
}

static void test_pool_inline(void **st)
{
	(void)st;
	vz_test_reset_fails();
	run_jobs(0, 0);
	assert_int_equal(jobs_ok, 7);
	run_jobs(VZ_SIM_FAULT_POOL, 1000); /* every job fails */
	assert_int_equal(jobs_eio, 7);
	assert_int_equal(job_runs, 0);
	vz_test_assert_no_fails();
}

/* Jobs still queued when the runtime stops complete with VZ_ECANCELED
 * and are dead-lettered by the stop (the actor is gone by then). */
static void test_pool_stop_cancels(void **st)
{
	vz_config cfg;
	vz_sim *sim;
	vz_shard_stats t;
	uint64_t foreign;
	vz_ref r;

	(void)st;
	vz_test_reset_fails();
	jobs_ok = jobs_eio = jobs_canceled = job_runs = 0;
	sim_config(&cfg, 1);
	assert_int_equal(vz_sim_create(&cfg, NULL, &sim), 0);
	assert_int_equal(vz_spawn(vz_sim_runtime(sim), 0, &jobs_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_start(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_post(vz_sim_runtime(sim), r, MSG_GO, NULL, 0), 0);
	/* Steps until the GO was handled (the jobs are queued), not further. */
	while (vz_sim_signature(sim) == 0)
		assert_int_equal(vz_sim_step(sim), 1);
	assert_int_equal(vz_runtime_stop(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_stats_total(vz_sim_runtime(sim), &t, &foreign), 0);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_true(t.dead_letters >= 1);
	assert_int_equal(vz_sim_destroy(sim), 0);
	vz_test_assert_no_fails();
}

/* ---- simulated I/O --------------------------------------------------------- */

static struct vz__io_op op, file_op;
static int op_res = 1, op_shard = -2, file_res = 1;

static void file_done(struct vz__io_op *o, int res)
{
	(void)o;
	file_res = res;
}

static void op_done(struct vz__io_op *o, int res)
{
	op_res = res;
	op_shard = vz_current_shard(o->user);
}

static void io_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct vz__io_op bad = {.opcode = VZ__IO_OP_READ, .fd = -1, .done = op_done};

	(void)state;
	(void)m;
	memset(&op, 0, sizeof op);
	op.opcode = VZ__IO_OP_NOP;
	op.done = op_done;
	op.user = vz_actor_runtime(self);
	VZ_TEST_CHECK(vz__io_submit(self->shard->io, &op) == 0);
	/* Refused at submit as io.h says (no descriptor); a file operation
	 * is taken and ends with -ENOSYS: the simulation has no files. */
	VZ_TEST_CHECK(vz__io_submit(self->shard->io, &bad) == VZ_EINVAL);
	memset(&file_op, 0, sizeof file_op);
	file_op.opcode = VZ__IO_OP_FSYNC;
	file_op.fd = 0;
	file_op.done = file_done;
	VZ_TEST_CHECK(vz__io_submit(self->shard->io, &file_op) == 0);
}

static const vz_actor_spec io_spec = {.name = "io", .receive = io_receive};

static void test_io_completion(void **st)
{
	vz_config cfg;
	vz_sim *sim;
	vz_sim_stats s;
	vz_ref r;

	(void)st;
	vz_test_reset_fails();
	sim_config(&cfg, 2);
	assert_int_equal(vz_sim_create(&cfg, NULL, &sim), 0);
	assert_int_equal(vz_spawn(vz_sim_runtime(sim), 1, &io_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_start(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_post(vz_sim_runtime(sim), r, MSG_GO, NULL, 0), 0);
	assert_int_equal(vz_sim_run(sim, 0, 0), 0);
	assert_int_equal(op_res, 0);
	assert_int_equal(op_shard, 1); /* its callback ran as its shard */
	assert_int_equal(file_res, -ENOSYS);
	assert_int_equal(vz_sim_stats_get(sim, &s), 0);
	assert_int_equal(s.io_completed, 2);
	assert_int_equal(vz_sim_destroy(sim), 0);
	vz_test_assert_no_fails();
}

/* ---- a planted ordering bug ------------------------------------------------ */

/* The README's example: a client asks a server on another shard to double
 * 1, 2, ..., 5, one question at a time, giving a question up after 10 ms.
 * The bug: an answer is taken to be for the current question, so a late
 * answer (delayed past its timeout) is checked against a newer one. */
#define ASKS 5

struct client {
	vz_ref server;
	uint64_t asking;
	vz_timer timeout;
};

static int wrong;

static void server_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint64_t n;

	(void)state;
	if (vz_msg_type(m) != MSG_ASK)
		return;
	memcpy(&n, vz_msg_data(m), sizeof n);
	n *= 2;
	VZ_TEST_CHECK(vz_reply(self, m, MSG_ANSWER, &n, sizeof n) == 0);
}

static const vz_actor_spec server_spec = {.name = "server", .receive = server_receive};

static void ask_next(vz_actor *self, struct client *c)
{
	if (++c->asking > ASKS)
		return;
	VZ_TEST_CHECK(vz_send(self, c->server, MSG_ASK, &c->asking, sizeof c->asking) == 0);
	VZ_TEST_CHECK(vz_timer_arm(self, 10000000, 0, 0, &c->timeout) == 0);
}

static void client_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct client *c = state;
	uint64_t answer;

	switch (vz_msg_type(m)) {
	case MSG_GO:
		memcpy(&c->server, vz_msg_data(m), sizeof c->server);
		ask_next(self, c);
		break;
	case VZ_MSG_TIMER:
		ask_next(self, c);
		break;
	case MSG_ANSWER:
		memcpy(&answer, vz_msg_data(m), sizeof answer);
		if (answer != 2 * c->asking)
			wrong++;
		vz_timer_cancel(self, c->timeout);
		ask_next(self, c);
		break;
	}
}

static const vz_actor_spec client_spec = {
    .name = "client", .state_size = sizeof(struct client), .receive = client_receive};

static int rpc(vz_sim *sim, void *ctx)
{
	vz_runtime *rt = vz_sim_runtime(sim);
	vz_ref server, client;

	(void)ctx;
	wrong = 0;
	if (vz_spawn(rt, 0, &client_spec, NULL, &client) < 0 ||
	    vz_spawn(rt, 1, &server_spec, NULL, &server) < 0 || vz_runtime_start(rt) < 0 ||
	    vz_post(rt, client, MSG_GO, &server, sizeof server) < 0 ||
	    vz_sim_run(sim, 100000, 0) < 0)
		return -1;
	return wrong;
}

static void test_planted_bug(void **st)
{
	vz_config cfg;
	vz_sim_options opt;
	vz_sim_test t = {"rpc", rpc, NULL, &cfg, &opt};
	vz_sim_result r, again;
	uint64_t seed;

	(void)st;
	vz_test_reset_fails();
	sim_config(&cfg, 2);
	/* Without the delay fault every answer beats its timeout (time moves
	 * only when nothing else can): the bug never shows. */
	vz_sim_options_default(&opt, 0);
	for (seed = 1; seed <= 200; seed++)
		assert_int_equal(vz_sim_run_seed(&t, seed, &r), 0);
	/* With it, a few seeds in a hundred delay an answer (or a question)
	 * past its timeout. */
	opt.faults = VZ_SIM_FAULT_DELAY;
	opt.fault_permille = 5;
	for (seed = 1; seed <= 300; seed++)
		if (vz_sim_run_seed(&t, seed, &r) != 0)
			break;
	assert_true(seed <= 300);
	assert_true(r.status > 0);
	print_message("planted bug found at seed %llu (signature 0x%016llx)\n",
		      (unsigned long long)seed, (unsigned long long)r.signature);
	/* The seed replays it: the same failure, the same order. */
	assert_int_equal(vz_sim_run_seed(&t, seed, &again), r.status);
	assert_int_equal(again.signature, r.signature);
	assert_int_equal(again.handled, r.handled);
	assert_int_equal(again.steps, r.steps);
	vz_test_assert_no_fails();
}

/* ---- VZ_SIM_FAULT_CRASH --------------------------------------------------- */

#define NVICTIMS 4

static struct {
	uint64_t crash_downs, other_downs, stops, handled_after_stop;
	uint64_t down_ids[NVICTIMS];
	unsigned ndown;
} C;

/* Counts its own GOs up to 200, then stops sending: work for the drawn
 * steps. */
static void victim_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint32_t *n = state;

	if (vz_msg_type(m) == MSG_GO && ++*n < 200)
		VZ_TEST_CHECK(vz_send(self, vz_self(self), MSG_GO, NULL, 0) == 0);
}

static void victim_stop(vz_actor *self, void *state)
{
	(void)self;
	(void)state;
	C.stops++;
}

static const vz_actor_spec victim_spec = {
    .name = "victim",
    .state_size = sizeof(uint32_t),
    .receive = victim_receive,
    .on_stop = victim_stop,
};

/* Monitors the references posted to it; counts the DOWNs by reason. */
static void crash_watcher_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_monitor_ref mon;
	vz_down d;

	(void)state;
	if (vz_msg_type(m) == MSG_GO) {
		VZ_TEST_CHECK(vz_monitor(self, *(const vz_ref *)vz_msg_data(m), &mon) == 0);
	} else if (vz_msg_type(m) == VZ_MSG_DOWN) {
		memcpy(&d, vz_msg_data(m), sizeof d);
		if (d.reason.kind == VZ_EXIT_FAILED && d.reason.code == VZ_SIM_CRASH_CODE &&
		    strcmp(d.reason.text, VZ_SIM_CRASH_TEXT) == 0) {
			C.crash_downs++;
			if (C.ndown < NVICTIMS)
				C.down_ids[C.ndown++] = d.actor.id;
		} else {
			C.other_downs++;
		}
	}
}

static const vz_actor_spec crash_watcher_spec = {.name = "crash-watcher",
						 .receive = crash_watcher_receive};

static bool only_victims(void *ctx, const vz_actor_spec *spec)
{
	(void)ctx;
	return spec == &victim_spec;
}

/* Victims on both shards, watched from shard 0; crashes drawn from seed. */
static void crash_run(uint64_t seed, uint32_t faults, vz_sim_stats *out)
{
	vz_config cfg;
	vz_sim_options opt;
	vz_sim *sim;
	vz_runtime *rt;
	vz_ref watcher, v[NVICTIMS];

	memset(&C, 0, sizeof C);
	sim_config(&cfg, 2);
	vz_sim_options_default(&opt, seed);
	opt.faults = faults;
	opt.fault_permille = 500;
	opt.max_crashes = 2;
	opt.crash_ok = only_victims;
	assert_int_equal(vz_sim_create(&cfg, &opt, &sim), 0);
	rt = vz_sim_runtime(sim);
	assert_int_equal(vz_spawn(rt, 0, &crash_watcher_spec, NULL, &watcher), 0);
	for (unsigned i = 0; i < NVICTIMS; i++)
		assert_int_equal(vz_spawn(rt, i % 2, &victim_spec, NULL, &v[i]), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	for (unsigned i = 0; i < NVICTIMS; i++) {
		assert_int_equal(vz_post(rt, watcher, MSG_GO, &v[i], sizeof v[i]), 0);
		assert_int_equal(vz_post(rt, v[i], MSG_GO, NULL, 0), 0);
	}
	assert_int_equal(vz_sim_run(sim, 100000, 0), 0);
	assert_int_equal(vz_sim_stats_get(sim, out), 0);
	assert_int_equal(vz_sim_destroy(sim), 0);
}

static void test_crash_fault(void **st)
{
	vz_sim_stats a, b;
	uint64_t ids[NVICTIMS];

	(void)st;
	vz_test_reset_fails();
	/* Off: nothing crashes (and the draws are those of before). */
	crash_run(7, VZ_SIM_FAULT_DELAY, &a);
	assert_int_equal(a.crashes, 0);
	assert_int_equal(C.crash_downs, 0);
	/* On: exactly max_crashes victims end as with vz_fail(): on_stop ran
	 * and the watcher got DOWN with the simulation's code and text (a
	 * victim may end before the watcher's monitor is in place: NOPROC). */
	crash_run(7, VZ_SIM_FAULT_CRASH, &a);
	assert_int_equal(a.crashes, 2);
	assert_true(C.crash_downs <= 2);
	assert_true(C.crash_downs + C.other_downs >= 2);
	assert_int_equal(C.stops, NVICTIMS); /* 2 crashed, 2 at the runtime's stop */
	memcpy(ids, C.down_ids, sizeof ids);
	/* The same seed crashes the same actors at the same points. */
	crash_run(7, VZ_SIM_FAULT_CRASH, &b);
	assert_int_equal(b.crashes, 2);
	assert_int_equal(b.signature, a.signature);
	assert_int_equal(b.handled, a.handled);
	assert_int_equal(b.steps, a.steps);
	assert_memory_equal(C.down_ids, ids, sizeof ids);
	vz_test_assert_no_fails();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refusals),	     cmocka_unit_test(test_no_threads_and_replay),
	    cmocka_unit_test(test_posts_interleave), cmocka_unit_test(test_virtual_time),
	    cmocka_unit_test(test_pool_inline),	     cmocka_unit_test(test_pool_stop_cancels),
	    cmocka_unit_test(test_io_completion),    cmocka_unit_test(test_planted_bug),
	    cmocka_unit_test(test_crash_fault),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
