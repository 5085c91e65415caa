// SPDX-License-Identifier: MIT
/*
 * The FIFO and conservation tests of stress_flood.c, in simulation, over
 * many seeds (1000 by default; VZ_SIM_SEEDS or --seeds changes it): every
 * shard floods every other through small rings while the seed decides the
 * interleaving, holds rings back, delays one to the end of the schedule,
 * fails pool jobs and fires timers in virtual time. Per pair FIFO, nothing
 * lost, nothing handled twice, sent = handled + dead-lettered after stop.
 * A failure prints the command that replays it (vz_sim_main()).
 *
 * One thread does it all, so the backend does not matter:
 * VZ_TEST_BACKEND_INDEPENDENT (one CTest entry).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <veloz.h>

#include "sim_setup.h"

enum { MSG_GO = VZ_MSG_USER, MSG_DATA };

#define MAXSH 4

struct mesh_msg {
	uint32_t from_shard;
	uint32_t src_index;
	uint64_t seq;
};

/* One run's shared record (the whole run is on this thread). */
static struct {
	int errors;
	uint64_t received, expected;
	uint64_t timers, jobs_ok, jobs_failed, full;
	char why[160];
} R;

static void fail(const char *why)
{
	if (!R.errors++)
		snprintf(R.why, sizeof R.why, "%s", why);
}

/* One sink per shard: checks the sequence of each source (one source
 * actor per ordered pair, indexed by the source's shard). */
struct sink {
	uint64_t next[MAXSH * MAXSH];
};

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct sink *k = state;
	struct mesh_msg mm;

	(void)self;
	if (vz_msg_type(m) != MSG_DATA)
		return;
	memcpy(&mm, vz_msg_data(m), sizeof mm);
	if (mm.src_index >= MAXSH * MAXSH || mm.seq != k->next[mm.src_index])
		fail("out of order or duplicated");
	else
		k->next[mm.src_index]++;
	R.received++;
}

static const vz_actor_spec sink_spec = {
    .name = "sink",
    .state_size = sizeof(struct sink),
    .receive = sink_receive,
};

struct src {
	vz_ref sink;
	uint32_t index;
	uint64_t seq, count;
	unsigned burst;
};

static int src_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	memcpy(state, arg, sizeof(struct src));
	return 0;
}

static int job_fn(void *arg, const void *payload, size_t len, void *result, size_t *rlen)
{
	(void)arg;
	(void)payload;
	(void)len;
	memcpy(result, "ok", 2);
	*rlen = 2;
	return 0;
}

/* Sends `burst` sequenced messages per GO and re-triggers itself; also
 * arms a timer and submits a pool job on its first GO. */
static void src_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct src *s = state;
	vz_pool_done d;

	switch (vz_msg_type(m)) {
	case VZ_MSG_TIMER:
		R.timers++;
		return;
	case VZ_MSG_POOL_DONE:
		if (vz_pool_done_read(m, &d, NULL) < 0)
			fail("bad completion");
		else if (d.status == 0)
			R.jobs_ok++;
		else if (d.status == VZ_EIO)
			R.jobs_failed++;
		else
			fail("unexpected job status");
		return;
	case MSG_GO:
		break;
	default:
		return;
	}
	if (s->seq == 0) {
		vz_job job = {.fn = job_fn, .tag = s->index};

		if (vz_timer_arm(self, 1000000ull * (1 + s->index), 0, s->index, NULL) < 0 ||
		    vz_pool_submit(self, &job, NULL) < 0)
			fail("timer or job refused");
	}
	for (unsigned i = 0; i < s->burst && s->seq < s->count; i++, s->seq++) {
		struct mesh_msg mm = {vz_actor_shard(self), s->index, s->seq};

		if (vz_send(self, s->sink, MSG_DATA, &mm, sizeof mm) != 0) {
			fail("send refused");
			return;
		}
	}
	if (s->seq < s->count && vz_send(self, vz_self(self), MSG_GO, NULL, 0) != 0)
		fail("self-send refused");
}

static const vz_actor_spec src_spec = {
    .name = "src",
    .state_size = sizeof(struct src),
    .init = src_init,
    .receive = src_receive,
};

/* ---- bounded receivers: VZ_EFULL, retry from a timer -------------------- */

#define BOUND 4u

static const vz_actor_spec bounded_sink_spec = {
    .name = "bounded-sink",
    .state_size = sizeof(struct sink),
    .receive = sink_receive,
    .mailbox_limit = BOUND,
};

/* Sends until VZ_EFULL, then retries the same sequence number from a
 * 100 us timer (a refused send changed nothing). */
static void retry_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct src *s = state;

	if (vz_msg_type(m) != MSG_GO && vz_msg_type(m) != VZ_MSG_TIMER)
		return;
	while (s->seq < s->count) {
		struct mesh_msg mm = {vz_actor_shard(self), s->index, s->seq};
		int rc = vz_send(self, s->sink, MSG_DATA, &mm, sizeof mm);

		if (rc == VZ_EFULL) {
			R.full++;
			if (vz_timer_arm(self, 100000, 0, 0, NULL) != 0)
				fail("timer refused");
			return;
		}
		if (rc != 0) {
			fail("send refused");
			return;
		}
		s->seq++;
	}
}

static const vz_actor_spec retry_spec = {
    .name = "retry",
    .state_size = sizeof(struct src),
    .init = src_init,
    .receive = retry_receive,
};

struct mesh {
	unsigned nshards;
	uint64_t count; /* per ordered pair */
	bool bounded;	/* bounded sinks, senders retrying (one per shard and sink) */
};

/* Bounded sinks on every shard; each shard has a retrying sender to every
 * sink, its own included (local and cross-shard admission). */
static int bounded_run(vz_sim *sim, const struct mesh *mc)
{
	vz_runtime *rt = vz_sim_runtime(sim);
	vz_ref sinks[MAXSH], srcs[MAXSH * MAXSH];
	unsigned n = 0;
	int rc;

	for (unsigned s = 0; s < mc->nshards; s++)
		if (vz_spawn(rt, s, &bounded_sink_spec, NULL, &sinks[s]) < 0)
			return printf("spawn failed\n"), 1;
	for (unsigned s = 0; s < mc->nshards; s++)
		for (unsigned d = 0; d < mc->nshards; d++) {
			struct src a = {sinks[d], s * MAXSH + d, 0, mc->count, 0};

			if (vz_spawn(rt, s, &retry_spec, &a, &srcs[n++]) < 0)
				return printf("spawn failed\n"), 1;
		}
	R.expected = (uint64_t)n * mc->count;
	if (vz_runtime_start(rt) < 0)
		return printf("start failed\n"), 1;
	for (unsigned i = 0; i < n; i++)
		if (vz_post(rt, srcs[i], MSG_GO, NULL, 0) != 0)
			return printf("post failed\n"), 1;
	rc = vz_sim_run(sim, 1000000, 0);
	if (rc != 0)
		return printf("run: %s\n", vz_strerror(rc)), 1;
	if (R.errors)
		return printf("%s\n", R.why), 1;
	if (R.received != R.expected)
		return printf("received %llu of %llu\n", (unsigned long long)R.received,
			      (unsigned long long)R.expected),
		       1;
	return vz_test_sim_stop_and_count(rt, false); /* none dead, none live */
}

static int mesh_run(vz_sim *sim, void *ctx)
{
	const struct mesh *mc = ctx;
	vz_runtime *rt = vz_sim_runtime(sim);
	vz_ref sinks[MAXSH], srcs[MAXSH * MAXSH];
	unsigned n = 0;
	int rc;

	memset(&R, 0, sizeof R);
	if (mc->bounded)
		return bounded_run(sim, mc);
	for (unsigned s = 0; s < mc->nshards; s++)
		if (vz_spawn(rt, s, &sink_spec, NULL, &sinks[s]) < 0)
			return printf("spawn failed\n"), 1;
	for (unsigned s = 0; s < mc->nshards; s++)
		for (unsigned d = 0; d < mc->nshards; d++) {
			struct src a = {sinks[d], s * MAXSH + d, 0, mc->count, 3 + s};

			if (d == s)
				continue;
			if (vz_spawn(rt, s, &src_spec, &a, &srcs[n]) < 0)
				return printf("spawn failed\n"), 1;
			n++;
		}
	R.expected = (uint64_t)n * mc->count;
	if (vz_runtime_start(rt) < 0)
		return printf("start failed\n"), 1;
	for (unsigned i = 0; i < n; i++)
		if (vz_post(rt, srcs[i], MSG_GO, NULL, 0) != 0)
			return printf("post failed\n"), 1;
	rc = vz_sim_run(sim, 1000000, 0);
	if (rc != 0)
		return printf("run: %s\n", vz_strerror(rc)), 1;
	if (R.errors)
		return printf("%s\n", R.why), 1;
	if (R.received != R.expected || R.timers != n || R.jobs_ok + R.jobs_failed != n) {
		printf("received %llu of %llu, %llu timers, %llu + %llu jobs of %u\n",
		       (unsigned long long)R.received, (unsigned long long)R.expected,
		       (unsigned long long)R.timers, (unsigned long long)R.jobs_ok,
		       (unsigned long long)R.jobs_failed, n);
		return 1;
	}
	return vz_test_sim_stop_and_count(rt, false);
}

int main(int argc, char **argv)
{
	static struct mesh two = {2, 40, false}, three = {3, 30, false}, four = {4, 12, false};
	static struct mesh bounded = {3, 12, true};
	static vz_config cfg2, cfg3, cfg4;
	static vz_sim_options plain, faulty;
	vz_sim_test tests[5];

	vz_test_sim_config(&cfg2, 2);
	vz_test_sim_config(&cfg3, 3);
	vz_test_sim_config(&cfg4, 4);
	vz_sim_options_default(&plain, 0);
	vz_test_sim_faults(&faulty, VZ_SIM_FAULT_DELAY | VZ_SIM_FAULT_POOL, 50);
	tests[0] = (vz_sim_test){"mesh2", mesh_run, &two, &cfg2, &plain};
	tests[1] = (vz_sim_test){"mesh3", mesh_run, &three, &cfg3, &plain};
	tests[2] = (vz_sim_test){"mesh3-faults", mesh_run, &three, &cfg3, &faulty};
	tests[3] = (vz_sim_test){"mesh4-faults", mesh_run, &four, &cfg4, &faulty};
	tests[4] = (vz_sim_test){"bounded3-faults", mesh_run, &bounded, &cfg3, &faulty};
	return vz_sim_main(argc, argv, tests, 5);
}
