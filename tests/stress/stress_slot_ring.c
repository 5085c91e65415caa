// SPDX-License-Identifier: MIT
/*
 * Stress test of the slot ring (runtime/queue/slot_ring.h) with real
 * threads: one producer and one consumer move a counted sequence through
 * small rings (capacity 64 and 2), the producer filling every byte of each
 * slot's body from the item's number, the consumer releasing after random
 * batch lengths. The consumer checks that every item is exactly the next
 * number with its body intact (FIFO, nothing lost or duplicated, no body
 * read before it was written or after it was overwritten; under
 * ThreadSanitizer a missing ordering would also be reported as a race).
 * Sizes scale with VZ_STRESS_SCALE. Worker threads never call cmocka
 * asserts: they record what they saw and the main thread checks it.
 *
 * VZ_TEST_BACKEND_INDEPENDENT: touches no I/O backend, runs once.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>

#include "queue/slot_ring.h"

struct run {
	struct vz__slot_ring r;
	uint64_t n;
	uint64_t bad; /* first wrong item + 1, 0 = none */
	uint64_t got;
};

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void *producer(void *arg)
{
	struct run *run = arg;

	for (uint64_t i = 0; i < run->n;) {
		struct vz__slot *s = vz__slot_reserve(&run->r);

		if (!s) {
			sched_yield();
			continue;
		}
		s->word = (uint32_t)i;
		memset(s->body, (int)(i * 31 & 0xff), sizeof s->body);
		vz__slot_publish(&run->r, s);
		i++;
	}
	return NULL;
}

static void *consumer(void *arg)
{
	struct run *run = arg;
	uint32_t seed = 12345, batch = 0;

	while (run->got < run->n) {
		struct vz__slot *s = vz__slot_peek(&run->r);

		if (!s) {
			vz__slot_release(&run->r);
			sched_yield();
			continue;
		}
		if (s->word != (uint32_t)run->got && !run->bad)
			run->bad = run->got + 1;
		for (size_t k = 0; k < sizeof s->body; k++)
			if (s->body[k] != (unsigned char)(run->got * 31 & 0xff) && !run->bad)
				run->bad = run->got + 1;
		vz__slot_consume(&run->r);
		run->got++;
		if (++batch >= 1 + rnd(&seed) % 40) {
			vz__slot_release(&run->r);
			batch = 0;
		}
	}
	return NULL;
}

static void one(uint32_t capacity, uint64_t n)
{
	struct run run = {.n = n};
	pthread_t p, c;

	assert_int_equal(vz__slot_ring_init(&run.r, capacity, -1), 0);
	assert_int_equal(pthread_create(&c, NULL, consumer, &run), 0);
	assert_int_equal(pthread_create(&p, NULL, producer, &run), 0);
	pthread_join(p, NULL);
	pthread_join(c, NULL);
	if (run.bad)
		fail_msg("capacity %u: item %llu wrong", capacity,
			 (unsigned long long)(run.bad - 1));
	assert_int_equal(run.got, n);
	vz__slot_ring_fini(&run.r);
}

static void test_fifo_64(void **state)
{
	(void)state;
	one(64, vz_test_scale(4000000));
}

static void test_fifo_2(void **state)
{
	(void)state;
	one(2, vz_test_scale(500000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_64),
	    cmocka_unit_test(test_fifo_2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
