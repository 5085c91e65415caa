// SPDX-License-Identifier: MIT
/*
 * vz_runtime_stop() racing other threads, repeated many times, each round a
 * fresh runtime:
 *
 * - first poll during stop: an embedded shard nobody has polled yet holds
 *   queued messages; a thread released by a barrier as stop begins starts
 *   calling vz_shard_poll() on it (at once, or once it sees the runtime
 *   stopping). Stop drives a never-polled shard itself, so the two race to
 *   claim it; exactly one may run its turns (TSan reports two), the poll
 *   that loses gets VZ_ESTOPPED or keeps polling until it does, and every
 *   queued message is dead-lettered or handled exactly once.
 *
 * - posts during stop and destroy: foreign threads post in a loop, to an
 *   unbounded and to a bounded mailbox, until a post returns VZ_ESTOPPED;
 *   another thread stops the runtime at a random moment, notes what has
 *   been handled and dead-lettered when stop returns, waits until each
 *   poster has seen VZ_ESTOPPED (without joining them) and destroys the
 *   runtime. Every accepted post must be accounted for already when stop
 *   returns, destroy must find nothing more, the VZ_EFULL refusals must be
 *   in the mailbox_full stat, and ASan/TSan must stay quiet.
 *
 * Bounded by round count (scaled with VZ_STRESS_SCALE) and the watchdog.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MSG_DATA = VZ_MSG_USER };

static atomic_ulong handled;   /* MSG_DATA handled */
static atomic_ulong dead_seen; /* dead-letter hook calls */

static void count_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
		       int reason)
{
	(void)ctx, (void)to, (void)type, (void)data, (void)len, (void)reason;
	atomic_fetch_add(&dead_seen, 1);
}

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self, (void)state;
	if (vz_msg_type(m) == MSG_DATA)
		atomic_fetch_add(&handled, 1);
}

static const vz_actor_spec sink_spec = {.name = "sink", .receive = sink_receive};
static const vz_actor_spec bounded_spec = {
    .name = "bounded", .receive = sink_receive, .mailbox_limit = 8};

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void config(vz_config *cfg)
{
	vz_test_config(cfg, 2);
	cfg->dead_letter = count_dead;
	cfg->pool.workers_per_node = 1;
}

/* ---- first poll during stop ------------------------------------------- */

#define QUEUED 64

struct first_poll {
	vz_runtime *rt;
	pthread_barrier_t *go;
	int mode; /* 0: poll at once; 1: once stop has begun; 2: 1 + a random delay */
	uint64_t seed;
	int first_rc, last_rc, bad_rc;
	unsigned polls;
};

static void *first_poller(void *p)
{
	struct first_poll *fp = p;
	vz_ref r;
	int rc;

	pthread_barrier_wait(fp->go);
	if (fp->mode > 0) {
		/* A foreign spawn on the unclaimed embedded shard is refused
		 * with VZ_EWRONGTHREAD while running and VZ_ESTOPPED once stop
		 * has begun; it changes nothing either way. */
		while ((rc = vz_spawn(fp->rt, 0, &sink_spec, NULL, &r)) == VZ_EWRONGTHREAD)
			sched_yield();
		if (rc != VZ_ESTOPPED)
			fp->bad_rc = rc;
		if (fp->mode == 2)
			for (uint64_t n = xorshift(&fp->seed) % 2000; n > 0; n--)
				__asm__ __volatile__("" ::: "memory");
	}
	fp->first_rc = rc = vz_shard_poll(fp->rt, 0, 0);
	fp->polls = 1;
	while (rc >= 0) {
		rc = vz_shard_poll(fp->rt, 0, 0);
		fp->polls++;
	}
	fp->last_rc = rc;
	return NULL;
}

static void test_first_poll_during_stop(void **st)
{
	uint64_t rounds = vz_test_scale(300), seed = 0x9e3779b97f4a7c15ull;
	unsigned stopper_won = 0, poller_won = 0;

	(void)st;
	for (uint64_t i = 0; i < rounds; i++) {
		pthread_barrier_t go;
		struct first_poll fp = {0};
		vz_config cfg;
		vz_runtime *rt;
		vz_shard_stats t;
		uint64_t foreign;
		pthread_t th;
		vz_ref r;

		atomic_store(&handled, 0);
		atomic_store(&dead_seen, 0);
		config(&cfg);
		cfg.shards[0].embedded = true;
		assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
		assert_int_equal(vz_spawn(rt, 0, &sink_spec, NULL, &r), 0);
		assert_int_equal(vz_runtime_start(rt), 0);
		/* queued in the embedded shard's inbox: nobody polls it yet */
		for (unsigned k = 0; k < QUEUED; k++)
			assert_int_equal(vz_post(rt, r, MSG_DATA, &k, sizeof k), 0);
		assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
		fp.rt = rt;
		fp.go = &go;
		fp.mode = (int)(i % 3);
		fp.seed = xorshift(&seed) | 1;
		assert_int_equal(pthread_create(&th, NULL, first_poller, &fp), 0);
		pthread_barrier_wait(&go);
		assert_int_equal(vz_runtime_stop(rt), 0);
		pthread_join(th, NULL);
		pthread_barrier_destroy(&go);

		if (fp.bad_rc)
			fail_msg("round %llu: spawn while stopping returned %s",
				 (unsigned long long)i, vz_errname(fp.bad_rc));
		if (fp.last_rc != VZ_ESTOPPED)
			fail_msg("round %llu: last poll returned %s", (unsigned long long)i,
				 vz_errname(fp.last_rc));
		if (fp.first_rc == VZ_ESTOPPED)
			stopper_won++;
		else
			poller_won++;
		/* every queued message exactly once, handled or dead */
		assert_int_equal(atomic_load(&handled) + atomic_load(&dead_seen), QUEUED);
		assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
		assert_int_equal(foreign, QUEUED);
		assert_int_equal(t.sent_local + t.sent_remote + foreign,
				 t.handled + t.dead_letters);
		assert_int_equal(t.dead_letters, atomic_load(&dead_seen));
		/* the shard stays bound to whoever claimed it */
		assert_int_equal(vz_shard_poll(rt, 0, 0),
				 fp.first_rc == VZ_ESTOPPED ? VZ_ESTOPPED : VZ_EWRONGTHREAD);
		assert_int_equal(vz_runtime_destroy(rt), 0);
	}
	printf("first poll during stop: %llu rounds, stop drove the shard in %u, "
	       "the poller in %u\n",
	       (unsigned long long)rounds, stopper_won, poller_won);
}

/* ---- posts during stop and destroy ------------------------------------ */

#define POSTERS 3

struct race {
	vz_runtime *rt;
	vz_ref to[2];
	atomic_ulong accepted, full, attempts;
	atomic_int posters_done, errors;
	uint64_t seed;
	/* results of the stopping thread */
	unsigned long at_stop, after_destroy, mailbox_full;
	int stop_rc, destroy_rc;
};

static void *race_poster(void *p)
{
	struct race *rc = p;
	unsigned long ok = 0, full = 0;

	for (uint64_t n = 0;; n++) {
		int r = vz_post(rc->rt, rc->to[n & 1], MSG_DATA, &n, sizeof n);

		atomic_fetch_add_explicit(&rc->attempts, 1, memory_order_relaxed);
		if (r == 0)
			ok++;
		else if (r == VZ_EFULL)
			full++;
		else if (r == VZ_ENOMEM)
			/* The foreign pool is bounded (VZ__FPOOL_MAX_CHUNKS):
			 * three posters into an unbounded sink can fill it
			 * when the sink's shard gets little CPU (a loaded
			 * machine). A refusal changes nothing, by contract,
			 * so it is no error here; let the shard catch up. */
			sched_yield();
		else if (r == VZ_ESTOPPED)
			break;
		else
			atomic_fetch_add(&rc->errors, 1);
	}
	atomic_fetch_add(&rc->accepted, ok);
	atomic_fetch_add(&rc->full, full);
	/* After our last call on rt: the stopping thread may destroy it. */
	atomic_fetch_add_explicit(&rc->posters_done, 1, memory_order_release);
	return NULL;
}

static void *race_stopper(void *p)
{
	struct race *rc = p;
	uint64_t want = xorshift(&rc->seed) % 3000;
	vz_shard_stats t;

	while (atomic_load_explicit(&rc->attempts, memory_order_relaxed) < want)
		sched_yield();
	rc->stop_rc = vz_runtime_stop(rc->rt);
	rc->at_stop = atomic_load(&handled) + atomic_load(&dead_seen);
	/* Pairs with the posters' release: their counts are final. */
	while (atomic_load_explicit(&rc->posters_done, memory_order_acquire) < POSTERS)
		sched_yield();
	vz_stats_total(rc->rt, &t, NULL);
	rc->mailbox_full = t.mailbox_full;
	rc->destroy_rc = vz_runtime_destroy(rc->rt);
	rc->after_destroy = atomic_load(&handled) + atomic_load(&dead_seen);
	return NULL;
}

static void test_posts_racing_stop_and_destroy(void **st)
{
	uint64_t rounds = vz_test_scale(150), seed = 0x2545f4914f6cdd1dull;
	unsigned long total = 0, fulls = 0;

	(void)st;
	for (uint64_t i = 0; i < rounds; i++) {
		struct race *rc = calloc(1, sizeof *rc);
		pthread_t posters[POSTERS], stopper;
		vz_config cfg;

		assert_non_null(rc);
		atomic_store(&handled, 0);
		atomic_store(&dead_seen, 0);
		config(&cfg);
		assert_int_equal(vz_runtime_create(&cfg, &rc->rt), 0);
		assert_int_equal(vz_spawn(rc->rt, 0, &sink_spec, NULL, &rc->to[0]), 0);
		assert_int_equal(vz_spawn(rc->rt, 1, &bounded_spec, NULL, &rc->to[1]), 0);
		assert_int_equal(vz_runtime_start(rc->rt), 0);
		rc->seed = xorshift(&seed) | 1;
		for (int k = 0; k < POSTERS; k++)
			assert_int_equal(pthread_create(&posters[k], NULL, race_poster, rc), 0);
		assert_int_equal(pthread_create(&stopper, NULL, race_stopper, rc), 0);
		pthread_join(stopper, NULL);
		for (int k = 0; k < POSTERS; k++)
			pthread_join(posters[k], NULL);

		assert_int_equal(rc->stop_rc, 0);
		assert_int_equal(rc->destroy_rc, 0);
		assert_int_equal(atomic_load(&rc->errors), 0);
		/* every accepted post handled or dead-lettered when stop returned,
		 * nothing left for destroy */
		if (rc->at_stop != atomic_load(&rc->accepted))
			fail_msg("round %llu: %lu posts accepted, %lu dealt with when stop "
				 "returned",
				 (unsigned long long)i, (unsigned long)atomic_load(&rc->accepted),
				 rc->at_stop);
		assert_int_equal(rc->after_destroy, rc->at_stop);
		assert_int_equal(rc->mailbox_full, atomic_load(&rc->full));
		total += atomic_load(&rc->accepted);
		fulls += atomic_load(&rc->full);
		free(rc);
	}
	printf("posts racing stop: %llu rounds, %lu posts accepted, %lu refused full\n",
	       (unsigned long long)rounds, total, fulls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_poll_during_stop),
	    cmocka_unit_test(test_posts_racing_stop_and_destroy),
	};

	vz_test_watchdog(500);
	vz_test_warm_up_threads();
	if (getenv("VZ_TEST_FILTER"))
		cmocka_set_test_filter(getenv("VZ_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
