// SPDX-License-Identifier: MIT
/*
 * Stress tests of the MPSC inbox (runtime/queue/mpsc_inbox.h) with real
 * threads:
 *  - producers (four with a million each, then one paced producer with a
 *    million) push numbered messages into one inbox; the consumer checks
 *    every producer's numbers arrive in order with none missing or
 *    repeated, and the total. Messages come from a small pool per producer and go back to
 *    it through an SPSC ring (the runtime's return path in miniature), so
 *    nodes are reused while other nodes are in flight and the pool running
 *    dry makes producers wait for the consumer. Four producers on two CPUs
 *    leave half-linked nodes behind; one paced producer against a consumer
 *    that keeps up makes most pops take the last node (most pushes find
 *    the inbox empty) while the producer races it;
 *  - the sleep-protocol handshake on the inbox (push, seq_cst fence, read
 *    the flag against store the flag, seq_cst fence, vz__mpsc_empty()) with
 *    two producers racing the consumer each round: a consumer that finds
 *    the inbox "empty" while a producer missed its flag is a lost wake-up.
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

#include "queue/mpsc_inbox.h"
#include "queue/spsc_ring.h"

#define MAX_PROD 4
#define POOL	 256 /* messages per producer */

static void backoff(unsigned *spins)
{
	if (++*spins > 64) {
		*spins = 0;
		sched_yield();
	}
}

/* ---- per-producer FIFO, total count ------------------------------------ */

struct msg {
	struct vz__mpsc_node node; /* first member, as in the runtime */
	uint32_t producer;
	uint64_t seq;
};

struct producer {
	struct fifo_run *run;
	uint32_t id;
	struct vz__spsc *returns; /* consumer -> this producer: used messages */
	struct msg *pool;	  /* POOL messages, owned by this producer */
	uint64_t looked_empty;	  /* pushes that reported an empty inbox */
};

struct fifo_run {
	struct vz__mpsc *inbox;
	uint64_t per_producer;
	uint32_t nprod;
	bool paced; /* producers pause a random 0..31 spins between pushes */
	struct producer prod[MAX_PROD];
	_Atomic int stop;	     /* consumer gave up after an error */
	uint64_t received;	     /* consumer: messages taken */
	uint64_t errors;	     /* consumer: out-of-order, foreign or repeated */
	uint64_t not_yet;	     /* consumer: NULL pops while not empty */
	uint64_t next_seq[MAX_PROD]; /* consumer: expected next seq per producer */
};

/* Spin a random 0..31 pause loops: a producer slower than the consumer. */
static void pace(uint32_t *seed)
{
	uint32_t x = *seed;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*seed = x;
	for (uint32_t i = 0; i < (x & 31); i++) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#else
		atomic_signal_fence(memory_order_seq_cst);
#endif
	}
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct fifo_run *run = p->run;
	void *free_list[POOL];
	uint32_t nfree = POOL;
	unsigned spins = 0;
	uint32_t seed = 0x2545f491u + p->id;

	for (uint32_t i = 0; i < POOL; i++)
		free_list[i] = &p->pool[i];
	for (uint64_t seq = 0; seq < run->per_producer;) {
		struct msg *m;

		if (nfree == 0) {
			/* Pool dry: take back what the consumer returned. */
			nfree = vz__spsc_pop_batch(p->returns, free_list, POOL);
			if (nfree == 0) {
				/* Relaxed: a stop hint only. */
				if (atomic_load_explicit(&run->stop, memory_order_relaxed))
					break;
				backoff(&spins);
				continue;
			}
		}
		m = free_list[--nfree];
		m->producer = p->id;
		m->seq = seq++;
		p->looked_empty += vz__mpsc_push(run->inbox, &m->node);
		if (run->paced)
			pace(&seed);
	}
	return NULL;
}

static void *consumer_main(void *arg)
{
	struct fifo_run *run = arg;
	uint64_t total = run->per_producer * run->nprod;
	unsigned spins = 0;

	while (run->received < total) {
		struct vz__mpsc_node *n = vz__mpsc_pop(run->inbox);
		struct msg *m;

		if (n == NULL) {
			if (!vz__mpsc_empty(run->inbox))
				run->not_yet++;
			backoff(&spins);
			continue;
		}
		m = (struct msg *)n;
		run->received++;
		if (m->producer >= run->nprod || m->seq != run->next_seq[m->producer]) {
			run->errors++;
			/* Relaxed: a stop hint only. */
			atomic_store_explicit(&run->stop, 1, memory_order_relaxed);
			break;
		}
		run->next_seq[m->producer]++;
		/* Give it back. The return ring holds the whole pool, so this
		 * never finds it full. */
		if (vz__spsc_push_batch(run->prod[m->producer].returns, (void **)&m, 1) != 1) {
			run->errors++;
			atomic_store_explicit(&run->stop, 1, memory_order_relaxed);
			break;
		}
	}
	return NULL;
}

static void run_producers(uint32_t nprod, uint64_t per_producer, bool paced)
{
	struct vz__mpsc *inbox = aligned_alloc(64, sizeof *inbox);
	struct fifo_run *run = calloc(1, sizeof *run);
	pthread_t prod[MAX_PROD], cons;
	uint64_t t0 = vz_test_now_ns(), looked_empty = 0;
	struct vz__mpsc_node *n;

	assert_non_null(inbox);
	assert_non_null(run);
	vz__mpsc_init(inbox);
	run->inbox = inbox;
	run->nprod = nprod;
	run->paced = paced;
	run->per_producer = per_producer;
	atomic_init(&run->stop, 0);
	for (uint32_t i = 0; i < nprod; i++) {
		struct producer *p = &run->prod[i];

		p->run = run;
		p->id = i;
		p->returns = aligned_alloc(64, sizeof *p->returns);
		p->pool = calloc(POOL, sizeof *p->pool);
		assert_non_null(p->returns);
		assert_non_null(p->pool);
		assert_int_equal(vz__spsc_init(p->returns, POOL, -1), 0);
	}
	assert_int_equal(pthread_create(&cons, NULL, consumer_main, run), 0);
	for (uint32_t i = 0; i < nprod; i++)
		assert_int_equal(pthread_create(&prod[i], NULL, producer_main, &run->prod[i]), 0);
	for (uint32_t i = 0; i < nprod; i++)
		assert_int_equal(pthread_join(prod[i], NULL), 0);
	assert_int_equal(pthread_join(cons, NULL), 0);

	for (uint32_t i = 0; i < nprod; i++)
		looked_empty += run->prod[i].looked_empty;
	fprintf(stderr,
		"inbox: %u x %llu messages in %.2f s, %llu errors, %llu not-yet pops, "
		"%llu pushes found it empty\n",
		nprod, (unsigned long long)run->per_producer, (vz_test_now_ns() - t0) / 1e9,
		(unsigned long long)run->errors, (unsigned long long)run->not_yet,
		(unsigned long long)looked_empty);
	assert_true(run->errors == 0);
	assert_true(run->received == run->per_producer * nprod);
	for (uint32_t i = 0; i < nprod; i++)
		assert_true(run->next_seq[i] == run->per_producer);
	/* Every push was popped: nothing left, and the queue is back to its
	 * initial shape. */
	n = vz__mpsc_pop(inbox);
	assert_null(n);
	assert_true(vz__mpsc_empty(inbox));
	for (uint32_t i = 0; i < nprod; i++) {
		vz__spsc_fini(run->prod[i].returns);
		free(run->prod[i].returns);
		free(run->prod[i].pool);
	}
	free(inbox);
	free(run);
}

static void test_four_producers(void **state)
{
	(void)state;
	/* More producers than CPUs: preempted producers leave half-linked
	 * nodes for the consumer to wait behind. */
	run_producers(4, vz_test_scale(1000000), false);
}

static void test_one_producer(void **state)
{
	(void)state;
	/* One paced producer against a consumer that keeps up: the inbox
	 * is mostly empty, so nearly every pop takes the last node and swings
	 * the tail back to the stub while the producer may be exchanging it. */
	run_producers(1, vz_test_scale(1000000), true);
}

/* ---- sleep-protocol handshake ------------------------------------------ */

/*
 * Each round: the inbox is empty and the flag clear. Released together by a
 * spinning barrier (plus a random delay each), two producers each push one message, fence, read the
 * flag; the consumer stores the flag, fences, asks vz__mpsc_empty(). If the
 * consumer saw "empty" while some producer's push is still in the inbox and
 * that producer read the flag as 0, nobody would wake the consumer: lost.
 * Between rounds the consumer drains exactly two messages, which must come
 * out at once (both pushes are complete by then).
 *
 * Arrivals per round on one counter: three at the start barrier, three
 * after their half, one more from the consumer after scoring and draining
 * (7).
 */
struct hs_msg {
	struct vz__mpsc_node node;
	int from;
};

struct handshake {
	struct vz__mpsc *inbox;
	uint64_t rounds;
	_Atomic uint64_t arrived;
	_Atomic int sleeping;
	struct hs_msg msgs[2];
	int saw_flag[2];
	uint64_t lost;	 /* rounds with a lost wake-up */
	uint64_t errors; /* rounds where the drain went wrong */
};

static void arrive_and_wait(_Atomic uint64_t *v, uint64_t want)
{
	unsigned spins = 0;

	/* acq_rel / acquire: hands each thread's writes of the round to the
	 * others (pairs with the other threads' increments). */
	atomic_fetch_add_explicit(v, 1, memory_order_acq_rel);
	while (atomic_load_explicit(v, memory_order_acquire) < want) {
		if (++spins > 256) {
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

struct hs_producer {
	struct handshake *h;
	int id;
};

static void *hs_producer_main(void *arg)
{
	struct hs_producer *hp = arg;
	struct handshake *h = hp->h;
	uint32_t seed = 0x2545f491u + (uint32_t)hp->id;

	for (uint64_t r = 0; r < h->rounds; r++) {
		uint64_t base = 7 * r;

		arrive_and_wait(&h->arrived, base + 3);
		jitter(&seed);
		vz__mpsc_push(h->inbox, &h->msgs[hp->id].node);
		/* Sender side: publish, fence, read the flag. */
		atomic_thread_fence(memory_order_seq_cst);
		/* Relaxed: ordered by the fence (pairs with the consumer's). */
		h->saw_flag[hp->id] = atomic_load_explicit(&h->sleeping, memory_order_relaxed);
		arrive_and_wait(&h->arrived, base + 7);
	}
	return NULL;
}

static void *hs_consumer_main(void *arg)
{
	struct handshake *h = arg;
	uint32_t seed = 0x9e3779b9u;

	for (uint64_t r = 0; r < h->rounds; r++) {
		uint64_t base = 7 * r;
		int saw_empty;

		arrive_and_wait(&h->arrived, base + 3);
		jitter(&seed);
		atomic_store_explicit(&h->sleeping, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		saw_empty = vz__mpsc_empty(h->inbox);
		arrive_and_wait(&h->arrived, base + 6);
		if (saw_empty && (h->saw_flag[0] == 0 || h->saw_flag[1] == 0))
			h->lost++;
		/* Both pushes are complete (linked) now: exactly two come out
		 * with no "not yet" in between, and then nothing. */
		for (int i = 0; i < 2; i++)
			if (vz__mpsc_pop(h->inbox) == NULL)
				h->errors++;
		if (vz__mpsc_pop(h->inbox) != NULL || !vz__mpsc_empty(h->inbox))
			h->errors++;
		atomic_store_explicit(&h->sleeping, 0, memory_order_relaxed);
		atomic_fetch_add_explicit(&h->arrived, 1, memory_order_release);
	}
	return NULL;
}

static void test_sleep_handshake(void **state)
{
	struct vz__mpsc *inbox = aligned_alloc(64, sizeof *inbox);
	struct handshake *h = calloc(1, sizeof *h);
	struct hs_producer hp[2];
	pthread_t prod[2], cons;

	(void)state;
	assert_non_null(inbox);
	assert_non_null(h);
	vz__mpsc_init(inbox);
	h->inbox = inbox;
	h->rounds = vz_test_scale(30000);
	atomic_init(&h->arrived, 0);
	atomic_init(&h->sleeping, 0);
	assert_int_equal(pthread_create(&cons, NULL, hs_consumer_main, h), 0);
	for (int i = 0; i < 2; i++) {
		hp[i].h = h;
		hp[i].id = i;
		assert_int_equal(pthread_create(&prod[i], NULL, hs_producer_main, &hp[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(prod[i], NULL), 0);
	assert_int_equal(pthread_join(cons, NULL), 0);
	fprintf(stderr, "inbox handshake: %llu rounds, %llu lost, %llu drain errors\n",
		(unsigned long long)h->rounds, (unsigned long long)h->lost,
		(unsigned long long)h->errors);
	assert_true(h->lost == 0);
	assert_true(h->errors == 0);
	free(inbox);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_four_producers),
	    cmocka_unit_test(test_one_producer),
	    cmocka_unit_test(test_sleep_handshake),
	};

	vz_test_watchdog(240);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
