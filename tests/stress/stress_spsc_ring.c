// SPDX-License-Identifier: MIT
/*
 * Stress tests of the SPSC ring (runtime/queue/spsc_ring.h) with real
 * threads:
 *  - one producer and one consumer move a counted sequence through small
 *    rings (capacity 256 and 2) with random batch sizes on both sides; the
 *    consumer checks every item is exactly the next number (FIFO, nothing
 *    lost, nothing duplicated) while a third thread keeps reading both
 *    indices (spsc_peek_empty(), tests/util/spsc_peek.h);
 *  - the sleep-protocol handshake ("publish, seq_cst fence, read the
 *    sleeping flag" against "store the flag, seq_cst fence, re-check"),
 *    with the ring's indices standing in for the doorbell the shard loop
 *    re-checks, raced round after round: at least one side must see the
 *    other.
 * Sizes scale with VZ_STRESS_SCALE; a watchdog turns a hang into a failure.
 * Worker threads never call cmocka asserts: they record what they saw and
 * the main thread checks it.
 *
 * VZ_TEST_BACKEND_INDEPENDENT: touches no I/O backend, runs once.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "queue/spsc_ring.h"
#include "spsc_peek.h"

#define MAX_BATCH 64

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* Spin a little, then give the CPU away: with two CPUs shared by three
 * threads (and other builds) a pure spin could starve the peer. */
static void backoff(unsigned *spins)
{
	if (++*spins > 64) {
		*spins = 0;
		sched_yield();
	}
}

/* ---- FIFO / no loss / no duplicate ------------------------------------ */

struct fifo_run {
	struct vz__spsc *ring;
	uint64_t total;
	uint32_t seed;
	_Atomic int done;	  /* consumer finished (or gave up) */
	_Atomic int failed;	  /* consumer saw a wrong item */
	uint64_t received;	  /* consumer: items taken */
	uint64_t first_bad_at;	  /* consumer: index of the first wrong item */
	uint64_t first_bad_value; /* consumer: what it found there */
	uint64_t partial_pushes;  /* producer: pushes that took fewer than asked */
	uint64_t empty_seen;	  /* observer: true answers of spsc_peek_empty() */
	uint64_t empty_calls;	  /* observer */
};

static void *fifo_producer(void *arg)
{
	struct fifo_run *run = arg;
	void *batch[MAX_BATCH];
	uint64_t next = 0;
	uint32_t seed = run->seed;
	unsigned spins = 0;

	while (next < run->total) {
		uint32_t want = 1 + xorshift(&seed) % MAX_BATCH;
		uint32_t got;

		if (want > run->total - next)
			want = (uint32_t)(run->total - next);
		for (uint32_t i = 0; i < want; i++)
			batch[i] = (void *)(uintptr_t)(next + i);
		got = vz__spsc_push_batch(run->ring, batch, want);
		next += got;
		if (got < want)
			run->partial_pushes++;
		if (got == 0) {
			/* Relaxed: a stop hint only; nothing is read through it. */
			if (atomic_load_explicit(&run->failed, memory_order_relaxed))
				break;
			backoff(&spins);
		}
	}
	return NULL;
}

static void *fifo_consumer(void *arg)
{
	struct fifo_run *run = arg;
	void *batch[MAX_BATCH];
	uint64_t expect = 0;
	uint32_t seed = run->seed ^ 0x9e3779b9u;
	unsigned spins = 0;

	while (expect < run->total) {
		uint32_t max = 1 + xorshift(&seed) % MAX_BATCH;
		uint32_t got = vz__spsc_pop_batch(run->ring, batch, max);

		if (got == 0) {
			backoff(&spins);
			continue;
		}
		for (uint32_t i = 0; i < got; i++, expect++) {
			if ((uint64_t)(uintptr_t)batch[i] != expect) {
				run->first_bad_at = expect;
				run->first_bad_value = (uint64_t)(uintptr_t)batch[i];
				atomic_store_explicit(&run->failed, 1, memory_order_relaxed);
				goto out;
			}
		}
	}
out:
	run->received = expect;
	/* Release: publishes received/first_bad_* to the observer thread,
	 * which acquires `done`; the main thread reads them after join. */
	atomic_store_explicit(&run->done, 1, memory_order_release);
	return NULL;
}

static void *fifo_observer(void *arg)
{
	struct fifo_run *run = arg;

	/* Acquire: pairs with the release store of done in fifo_consumer(). */
	while (!atomic_load_explicit(&run->done, memory_order_acquire)) {
		run->empty_seen += spsc_peek_empty(run->ring);
		run->empty_calls++;
		if ((run->empty_calls & 63) == 0)
			sched_yield();
	}
	return NULL;
}

static void run_fifo(uint32_t capacity, uint64_t total, uint32_t seed)
{
	struct vz__spsc *ring = aligned_alloc(64, sizeof *ring);
	struct fifo_run run = {.total = total, .seed = seed};
	pthread_t prod, cons, obs;
	uint64_t t0 = vz_test_now_ns();
	void *left[1];

	assert_non_null(ring);
	assert_int_equal(vz__spsc_init(ring, capacity, -1), 0);
	run.ring = ring;
	atomic_init(&run.done, 0);
	atomic_init(&run.failed, 0);
	assert_int_equal(pthread_create(&cons, NULL, fifo_consumer, &run), 0);
	assert_int_equal(pthread_create(&obs, NULL, fifo_observer, &run), 0);
	assert_int_equal(pthread_create(&prod, NULL, fifo_producer, &run), 0);
	assert_int_equal(pthread_join(prod, NULL), 0);
	assert_int_equal(pthread_join(cons, NULL), 0);
	assert_int_equal(pthread_join(obs, NULL), 0);

	fprintf(stderr,
		"spsc capacity %u: %llu items in %.2f s, %llu partial pushes, "
		"empty() true %llu of %llu calls\n",
		capacity, (unsigned long long)run.received, (vz_test_now_ns() - t0) / 1e9,
		(unsigned long long)run.partial_pushes, (unsigned long long)run.empty_seen,
		(unsigned long long)run.empty_calls);
	if (atomic_load_explicit(&run.failed, memory_order_relaxed))
		fprintf(stderr, "item %llu was %llu\n", (unsigned long long)run.first_bad_at,
			(unsigned long long)run.first_bad_value);
	assert_false(atomic_load_explicit(&run.failed, memory_order_relaxed));
	assert_true(run.received == total);
	/* Nothing extra came out, and the ring is empty from the
	 * consumer's side after the join. */
	assert_true(spsc_peek_empty(ring));
	assert_int_equal(vz__spsc_pop_batch(ring, left, 1), 0);
	vz__spsc_fini(ring);
	free(ring);
}

static void test_fifo_capacity_256(void **state)
{
	(void)state;
	/* Pushes and pops of 1..64 keep the ring between full and empty;
	 * 10^7 items is ~0.5 s on one pair of cores. */
	run_fifo(256, vz_test_scale(10000000), 0x12345678u);
}

static void test_fifo_capacity_2(void **state)
{
	(void)state;
	/* Every batch is cut to at most 2: maximal full/empty churn and
	 * index traffic per item. Fewer items: when the machine is busy,
	 * nearly every one costs a trip through the scheduler. */
	run_fifo(2, vz_test_scale(200000), 0xdeadbeefu);
}

/* ---- sleep-protocol handshake ------------------------------------------ */

/*
 * Each round: the ring is empty and the flag clear. Released together by a
 * spinning two-thread barrier (plus a random delay each), the producer pushes one item, fences,
 * reads the flag; the consumer sets the flag, fences, asks spsc_peek_empty(). "Producer read 0 and
 * consumer saw empty" is a lost wake-up. Without either fence, or with an empty() that looked at a
 * cached index, store buffering lets it happen on x86.
 *
 * Five arrivals per round on one counter: both threads at the start
 * barrier (2), both after their half (4), the consumer after scoring the
 * round and resetting the ring and flag (5).
 */
struct dekker {
	struct vz__spsc *ring;
	uint64_t rounds;
	_Atomic uint64_t arrived;
	_Atomic int sleeping; /* the consumer's flag */
	uint64_t lost;	      /* rounds where neither saw the other */
	uint64_t both;	      /* rounds where both saw the other */
	int saw_flag;	      /* producer's observation this round */
	int saw_empty;	      /* consumer's observation this round */
};

/* Arrive (release: hands what this thread wrote so far to the other one)
 * and wait until `want` arrivals (acquire: pairs with the other thread's
 * release increment). Spins hard so both threads leave together, yields
 * only when the other thread seems descheduled. */
static void arrive_and_wait(_Atomic uint64_t *v, uint64_t want)
{
	unsigned spins = 0;

	atomic_fetch_add_explicit(v, 1, memory_order_acq_rel);
	while (atomic_load_explicit(v, memory_order_acquire) < want) {
		if (++spins > 4096) {
			spins = 0;
			sched_yield();
		}
	}
}

/* A random short delay (0..127 pause loops): scatters which side of the
 * handshake runs first, so both orders and the close race between them
 * all happen, whichever thread the barrier happens to release first. */
static void jitter(uint32_t *seed)
{
	uint32_t x = *seed;
	uint32_t n;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*seed = x;
	n = x % 128;
	for (uint32_t i = 0; i < n; i++) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#else
		atomic_signal_fence(memory_order_seq_cst);
#endif
	}
}

static void *dekker_producer(void *arg)
{
	struct dekker *d = arg;
	void *one = (void *)(uintptr_t)1;
	uint32_t seed = 0x2545f491u;

	for (uint64_t r = 0; r < d->rounds; r++) {
		uint64_t base = 5 * r;

		arrive_and_wait(&d->arrived, base + 2);
		jitter(&seed);
		if (vz__spsc_push_batch(d->ring, &one, 1) != 1) {
			d->saw_flag = -1; /* cannot happen: the ring was emptied */
		} else {
			/* The sender side of the sleep protocol. */
			atomic_thread_fence(memory_order_seq_cst);
			/* Relaxed: ordered by the fence above (pairs with the
			 * fence in dekker_consumer()). */
			d->saw_flag = atomic_load_explicit(&d->sleeping, memory_order_relaxed);
		}
		arrive_and_wait(&d->arrived, base + 5);
	}
	return NULL;
}

static void *dekker_consumer(void *arg)
{
	struct dekker *d = arg;
	void *out[2];
	uint32_t seed = 0x9e3779b9u;

	for (uint64_t r = 0; r < d->rounds; r++) {
		uint64_t base = 5 * r;

		arrive_and_wait(&d->arrived, base + 2);
		jitter(&seed);
		/* The sleeper side: announce, fence, re-check. Relaxed store:
		 * ordered by the fence (pairs with the producer's fence). */
		atomic_store_explicit(&d->sleeping, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		d->saw_empty = spsc_peek_empty(d->ring);
		arrive_and_wait(&d->arrived, base + 4);
		if (d->saw_flag == 0 && d->saw_empty)
			d->lost++;
		if (d->saw_flag == 1 && !d->saw_empty)
			d->both++;
		if (d->saw_flag < 0)
			d->lost += 1000000; /* make a broken round impossible to miss */
		/* The producer has checked in, so its item is visible. */
		if (vz__spsc_pop_batch(d->ring, out, 2) != 1)
			d->lost += 1000000;
		atomic_store_explicit(&d->sleeping, 0, memory_order_relaxed);
		atomic_fetch_add_explicit(&d->arrived, 1, memory_order_release);
	}
	return NULL;
}

static void test_sleep_handshake(void **state)
{
	struct vz__spsc *ring = aligned_alloc(64, sizeof *ring);
	struct dekker *d = calloc(1, sizeof *d);
	pthread_t prod, cons;

	(void)state;
	assert_non_null(ring);
	assert_non_null(d);
	assert_int_equal(vz__spsc_init(ring, 4, -1), 0);
	d->ring = ring;
	d->rounds = vz_test_scale(50000);
	atomic_init(&d->arrived, 0);
	atomic_init(&d->sleeping, 0);
	assert_int_equal(pthread_create(&cons, NULL, dekker_consumer, d), 0);
	assert_int_equal(pthread_create(&prod, NULL, dekker_producer, d), 0);
	assert_int_equal(pthread_join(prod, NULL), 0);
	assert_int_equal(pthread_join(cons, NULL), 0);
	fprintf(stderr, "handshake: %llu rounds, %llu lost, %llu saw each other\n",
		(unsigned long long)d->rounds, (unsigned long long)d->lost,
		(unsigned long long)d->both);
	assert_true(d->lost == 0);
	vz__spsc_fini(ring);
	free(ring);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_capacity_256),
	    cmocka_unit_test(test_fifo_capacity_2),
	    cmocka_unit_test(test_sleep_handshake),
	};

	vz_test_watchdog(240);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
