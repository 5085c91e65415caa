// SPDX-License-Identifier: MIT
/*
 * Pool completions through a real runtime: the completion rings (one per
 * worker and shard), collected by the shards' loops, and the fallback post
 * for results too large for a ring slot. Two shards that sleep as soon as
 * they are idle (VZ_IDLE_SLEEP), two actors on each, two workers.
 *
 * Phase 1 (the lost-wake-up hunt on the shard's side): every actor submits
 * bursts of 1..8 jobs and waits for all of them before the next burst, so
 * its shard goes to sleep with jobs out and each burst's completions race
 * the shard on its way to sleep (a lost wake-up leaves an actor waiting
 * forever: the watchdog fails the test). Every 16th job is cancelled right
 * after its submission, every 8th returns a result too large for a slot
 * (the fallback post), the others 0..80 bytes whose content is checked.
 * Every job must complete exactly once, with its own result, the pool's
 * counters must agree, with no refused completion, and the runtime's
 * message books balance (stats.h) in both phases.
 *
 * Phase 2 (stop with completions on their way): the actors keep 32 jobs in
 * flight each while the runtime is stopped under them. Every accepted job
 * must come back exactly once, either handled by its actor before the stop
 * or dead-lettered by it (a completion reaped after its actor stopped).
 *
 * VZ_TEST_SLEEP_FENCES: run in both sleep fences (tests/CMakeLists.txt):
 * the completions' handshake with the shards' sleep is the runtime's fence.
 */
#include "testutil.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <veloz.h>

#define NSHARDS	  2
#define PER_SHARD 2
#define NACTORS	  (NSHARDS * PER_SHARD)
#define MSG_GO	  VZ_MSG_USER
#define BIG	  150 /* result bytes: more than a ring slot holds */

struct actor {
	uint64_t ref;
	uint64_t n;	    /* jobs to submit */
	unsigned window;    /* phase 2: jobs in flight; 0: phase 1 bursts */
	uint64_t submitted; /* accepted */
	uint64_t completed; /* completions handled */
	uint64_t outstanding;
	uint64_t cancels;
	uint64_t retries; /* VZ_EFULL with nothing out */
	unsigned seed;
	uint8_t *seen; /* completions per tag, handled or dead-lettered */
	_Atomic int done;
};

static struct actor actors[NACTORS];
static _Atomic uint64_t dead; /* completions dead-lettered */
static _Atomic int bad;

static size_t result_len_of(uint64_t tag)
{
	return (tag & 7) == 3 ? BIG : (size_t)(tag % 81);
}

static int job_fn(void *arg, const void *payload, size_t len, void *result, size_t *result_len)
{
	uint64_t tag;
	size_t n;

	(void)arg;
	if (len != sizeof tag)
		return -1;
	memcpy(&tag, payload, sizeof tag);
	n = result_len_of(tag);
	if (n > *result_len)
		return -1;
	for (size_t i = 0; i < n; i++)
		((unsigned char *)result)[i] = (unsigned char)(tag + i);
	*result_len = n;
	return 0;
}

/* One completion of actor a's job: exactly once, and the right bytes. */
static void check_done(struct actor *a, const vz_pool_done *d, const unsigned char *res)
{
	uint64_t tag = d->tag;

	if (tag >= a->n) {
		atomic_store(&bad, 1);
		return;
	}
	a->seen[tag]++;
	if (d->status == VZ_ECANCELED) {
		if (d->result_len != 0)
			atomic_store(&bad, 2);
		return;
	}
	if (d->status != 0 || d->result_len != result_len_of(tag)) {
		atomic_store(&bad, 3);
		return;
	}
	for (size_t i = 0; i < d->result_len; i++)
		if (res[i] != (unsigned char)(tag + i))
			atomic_store(&bad, 4);
}

static void submit_some(vz_actor *self, struct actor *a)
{
	unsigned burst = a->window ? a->window : 1 + (unsigned)rand_r(&a->seed) % 8;

	while (a->submitted < a->n && a->outstanding < burst) {
		uint64_t tag = a->submitted;
		vz_job job = {.fn = job_fn, .payload = &tag, .payload_len = sizeof tag, .tag = tag};
		vz_job_id id;
		int rc = vz_pool_submit(self, &job, &id);

		if (rc == VZ_EFULL && a->outstanding == 0) {
			/* Nothing of ours out to bring a record back: try
			 * again after the shard's next turn. */
			int again;

			a->retries++;
			/* A stop may have begun (test_stop_in_flight): its
			 * refusal is the contract, not a failure. */
			again = vz_send(self, vz_self(self), MSG_GO, NULL, 0);
			if (again != 0 && again != VZ_ESTOPPED)
				atomic_store(&bad, 8);
			break;
		}
		if (rc == VZ_EFULL || rc == VZ_ESTOPPED)
			break; /* more at the next completion */
		if (rc != 0) {
			atomic_store(&bad, 5);
			return;
		}
		a->submitted++;
		a->outstanding++;
		if ((tag & 15) == 9 && vz_pool_cancel(self, id) == 0)
			a->cancels++;
	}
}

static int a_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	*(struct actor **)state = (struct actor *)arg;
	return 0;
}

static void a_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct actor *a = *(struct actor **)state;
	vz_pool_done d;
	const void *res;

	if (vz_msg_type(m) == VZ_MSG_POOL_DONE) {
		if (vz_pool_done_read(m, &d, &res) < 0) {
			atomic_store(&bad, 6);
			return;
		}
		check_done(a, &d, res);
		a->completed++;
		a->outstanding--;
		if (a->completed == a->n) {
			/* Release: pairs with the main thread's acquire. */
			atomic_store_explicit(&a->done, 1, memory_order_release);
			return;
		}
		/* Phase 1: the next burst only once this one is all back. */
		if (a->window || a->outstanding == 0)
			submit_some(self, a);
	} else if (vz_msg_type(m) == MSG_GO) {
		submit_some(self, a);
	}
}

static const vz_actor_spec spec = {
    .name = "pool-done",
    .state_size = sizeof(struct actor *),
    .init = a_init,
    .receive = a_receive,
};

/* After the stop: a completion whose actor had stopped. */
static void on_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len, int reason)
{
	vz_pool_done d;

	(void)ctx, (void)reason;
	if (type != VZ_MSG_POOL_DONE || len < sizeof d)
		return;
	memcpy(&d, data, sizeof d);
	for (unsigned i = 0; i < NACTORS; i++) {
		/* The dead letter names the owner; the tag tells the job.
		 * Called on the owner's shard thread (or, after the stop,
		 * the destroying thread), never two at once per actor. */
		if (actors[i].ref == to && d.tag < actors[i].n) {
			actors[i].seen[d.tag]++;
			atomic_fetch_add_explicit(&dead, 1, memory_order_relaxed);
			return;
		}
	}
	atomic_store(&bad, 7);
}

static vz_runtime *start(uint64_t n, unsigned window)
{
	vz_config cfg;
	vz_runtime *rt;

	atomic_store(&dead, 0);
	atomic_store(&bad, 0);
	vz_test_config(&cfg, NSHARDS);
	cfg.idle_policy = VZ_IDLE_SLEEP;
	cfg.pool.workers_per_node = 2;
	cfg.pool.share_shard_cpus = true;
	cfg.pool.queue_capacity = 64;
	cfg.dead_letter = on_dead;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	for (unsigned i = 0; i < NACTORS; i++) {
		struct actor *a = &actors[i];
		vz_ref r;

		memset(a, 0, sizeof *a);
		a->n = n;
		a->window = window;
		a->seed = 777u + i;
		a->seen = calloc(n, 1);
		assert_non_null(a->seen);
		assert_int_equal(vz_spawn(rt, i / PER_SHARD, &spec, a, &r), 0);
		a->ref = r.id;
	}
	assert_int_equal(vz_runtime_start(rt), 0);
	for (unsigned i = 0; i < NACTORS; i++)
		assert_int_equal(vz_post(rt, (vz_ref){actors[i].ref}, MSG_GO, NULL, 0), 0);
	return rt;
}

static void sum_stats(vz_runtime *rt, vz_pool_stats *sum)
{
	unsigned nodes[VZ_MAX_NODES];
	int np = vz_pool_nodes(rt, nodes, VZ_MAX_NODES);
	vz_pool_stats st;

	assert_true(np >= 1);
	memset(sum, 0, sizeof *sum);
	for (int i = 0; i < np && i < VZ_MAX_NODES; i++) {
		assert_int_equal(vz_stats_pool(rt, nodes[i], &st), 0);
		sum->submitted += st.submitted;
		sum->executed += st.executed;
		sum->canceled += st.canceled;
		sum->post_failures += st.post_failures;
		sum->timed_out += st.timed_out;
	}
}

/* STRESS_POOL_DONE_DEBUG set: say where everyone is, every 10 s. */
static void debug_hang(vz_runtime *rt)
{
	static uint64_t last;
	uint64_t now = vz_test_now_ns();
	vz_pool_stats sum;

	if (now - last < 10000000000ull)
		return;
	last = now;
	sum_stats(rt, &sum);
	fprintf(stderr, "pool: submitted %llu executed %llu canceled %llu\n",
		(unsigned long long)sum.submitted, (unsigned long long)sum.executed,
		(unsigned long long)sum.canceled);
	for (unsigned i = 0; i < NACTORS; i++)
		fprintf(stderr, "actor %u: submitted %llu completed %llu out %llu retries %llu\n",
			i, (unsigned long long)actors[i].submitted,
			(unsigned long long)actors[i].completed,
			(unsigned long long)actors[i].outstanding,
			(unsigned long long)actors[i].retries);
}

/* After a stop, the runtime's books balance (stats.h): completions that
 * came over the rings count as messages from non-shard threads. */
static void check_books(vz_runtime *rt)
{
	vz_shard_stats t;
	uint64_t foreign = 0;

	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	if (t.sent_local + t.sent_remote + foreign != t.handled + t.dead_letters) {
		fprintf(stderr,
			"books: sent %llu + %llu + foreign %llu != handled %llu + dead %llu\n",
			(unsigned long long)t.sent_local, (unsigned long long)t.sent_remote,
			(unsigned long long)foreign, (unsigned long long)t.handled,
			(unsigned long long)t.dead_letters);
		fail();
	}
}

static void test_bursts_exactly_once(void **state)
{
	uint64_t n = vz_test_scale(40000), cancels = 0, retries = 0;
	vz_runtime *rt;
	vz_pool_stats sum;
	vz_shard_stats ss;
	uint64_t sleeps = 0;

	(void)state;
	rt = start(n, 0);
	for (unsigned i = 0; i < NACTORS; i++)
		/* Acquire: pairs with the actor's release store. A wrong
		 * completion stops its actor: fail now rather than wait. */
		while (!atomic_load_explicit(&actors[i].done, memory_order_acquire) &&
		       !atomic_load(&bad)) {
			if (getenv("STRESS_POOL_DONE_DEBUG"))
				debug_hang(rt);
			sched_yield();
		}
	assert_int_equal(atomic_load(&bad), 0);
	sum_stats(rt, &sum);
	for (unsigned s = 0; s < NSHARDS; s++) {
		assert_int_equal(vz_stats_shard(rt, s, &ss), 0);
		sleeps += ss.sleeps;
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	check_books(rt);
	for (unsigned i = 0; i < NACTORS; i++) {
		struct actor *a = &actors[i];

		assert_int_equal(a->submitted, n);
		assert_int_equal(a->completed, n);
		for (uint64_t t = 0; t < n; t++)
			if (a->seen[t] != 1) {
				fprintf(stderr, "actor %u job %llu completed %u times\n", i,
					(unsigned long long)t, a->seen[t]);
				fail();
			}
		cancels += a->cancels;
		retries += a->retries;
	}
	assert_int_equal(sum.submitted, n * NACTORS);
	assert_int_equal(sum.executed + sum.canceled, n * NACTORS);
	assert_int_equal(sum.canceled, cancels);
	assert_int_equal(sum.post_failures, 0);
	assert_int_equal(atomic_load(&dead), 0);
	fprintf(stderr,
		"bursts: %llu jobs, %llu cancelled, shard sleeps %llu, full-and-idle %llu\n",
		(unsigned long long)(n * NACTORS), (unsigned long long)cancels,
		(unsigned long long)sleeps, (unsigned long long)retries);
	assert_true(sleeps > 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	for (unsigned i = 0; i < NACTORS; i++)
		free(actors[i].seen);
}

static void test_stop_in_flight(void **state)
{
	uint64_t n = vz_test_scale(200000), handled = 0, accepted = 0;
	vz_runtime *rt;

	(void)state;
	rt = start(n, 32);
	/* Let the flood get going, then stop under it. */
	while (atomic_load_explicit(&actors[0].done, memory_order_acquire) == 0) {
		vz_pool_stats sum;

		sum_stats(rt, &sum);
		if (sum.executed > n / 8)
			break;
		sched_yield();
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	check_books(rt);
	/* The shards are joined: their actors' fields are final. */
	assert_int_equal(atomic_load(&bad), 0);
	for (unsigned i = 0; i < NACTORS; i++) {
		struct actor *a = &actors[i];

		for (uint64_t t = 0; t < n; t++)
			if (a->seen[t] != (t < a->submitted)) {
				fprintf(stderr, "actor %u job %llu of %llu: %u completions\n", i,
					(unsigned long long)t, (unsigned long long)a->submitted,
					a->seen[t]);
				fail();
			}
		handled += a->completed;
		accepted += a->submitted;
	}
	assert_int_equal(handled + atomic_load(&dead), accepted);
	fprintf(stderr, "stop: %llu accepted, %llu handled, %llu dead-lettered\n",
		(unsigned long long)accepted, (unsigned long long)handled,
		(unsigned long long)atomic_load(&dead));
	assert_int_equal(vz_runtime_destroy(rt), 0);
	for (unsigned i = 0; i < NACTORS; i++)
		free(actors[i].seen);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bursts_exactly_once),
	    cmocka_unit_test(test_stop_in_flight),
	};

	vz_test_watchdog(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
