// SPDX-License-Identifier: MIT
/*
 * Unit tests of the slot ring (runtime/queue/slot_ring.h), single-threaded:
 * argument checking in init, an empty ring peeks nothing, a full ring
 * reserves nothing until the consumer releases, a slot is not ready before
 * it is published, FIFO order and intact bodies across many wrap-arounds
 * of the slot array with uneven batches, the wrap of the indices at 2^32,
 * and a slot of the previous lap never taken for the current one.
 * Concurrency is exercised in tests/stress/stress_slot_ring.c.
 *
 * VZ_TEST_BACKEND_INDEPENDENT: touches no I/O backend, runs once.
 */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "queue/slot_ring.h"

static void put(struct vz__slot_ring *r, uint32_t v)
{
	struct vz__slot *s = vz__slot_reserve(r);

	assert_non_null(s);
	s->word = v;
	memset(s->body, (int)(v & 0xff), sizeof s->body);
	vz__slot_publish(r, s);
}

static uint32_t take(struct vz__slot_ring *r)
{
	struct vz__slot *s = vz__slot_peek(r);
	uint32_t v;

	assert_non_null(s);
	v = s->word;
	for (size_t i = 0; i < sizeof s->body; i++)
		assert_int_equal(s->body[i], v & 0xff);
	vz__slot_consume(r);
	return v;
}

static void test_init_rejects_bad_capacity(void **state)
{
	static const uint32_t bad[] = {0, 1, 3, 6, 100, UINT32_C(0x80000001), UINT32_C(0xffffffff)};
	struct vz__slot_ring r;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(vz__slot_ring_init(&r, bad[i], -1), VZ_EINVAL);
		assert_null(r.slots);
		vz__slot_ring_fini(&r);
		vz__slot_ring_fini(&r);
	}
}

static void test_empty_and_unpublished(void **state)
{
	struct vz__slot_ring r;
	struct vz__slot *s;

	(void)state;
	assert_int_equal(vz__slot_ring_init(&r, 4, -1), 0);
	assert_null(vz__slot_peek(&r));
	/* Reserved and written but not published: not ready. */
	s = vz__slot_reserve(&r);
	assert_non_null(s);
	s->word = 7;
	memset(s->body, 7, sizeof s->body);
	assert_null(vz__slot_peek(&r));
	vz__slot_publish(&r, s);
	assert_int_equal(take(&r), 7);
	assert_null(vz__slot_peek(&r));
	vz__slot_ring_fini(&r);
}

static void test_full_until_release(void **state)
{
	struct vz__slot_ring r;

	(void)state;
	assert_int_equal(vz__slot_ring_init(&r, 8, -1), 0);
	for (uint32_t i = 0; i < 8; i++)
		put(&r, i);
	assert_null(vz__slot_reserve(&r));
	/* Consumed but not released: still full for the producer. */
	assert_int_equal(take(&r), 0);
	assert_int_equal(take(&r), 1);
	assert_null(vz__slot_reserve(&r));
	vz__slot_release(&r);
	put(&r, 8);
	put(&r, 9);
	assert_null(vz__slot_reserve(&r));
	for (uint32_t i = 2; i < 10; i++)
		assert_int_equal(take(&r), i);
	assert_null(vz__slot_peek(&r));
	vz__slot_release(&r);
	assert_int_equal(vz__slot_room_cached(&r), 0); /* cached view only */
	assert_non_null(vz__slot_reserve(&r));	       /* refreshes it */
	assert_int_equal(vz__slot_room_cached(&r), 8);
	vz__slot_ring_fini(&r);
}

/* Uneven batches over many laps: FIFO, bodies intact, never a stale slot. */
static void test_fifo_across_wrap(void **state)
{
	struct vz__slot_ring r;
	uint32_t sent = 0, got = 0;

	(void)state;
	assert_int_equal(vz__slot_ring_init(&r, 16, -1), 0);
	for (unsigned round = 0; round < 5000; round++) {
		unsigned np = 1 + round % 13, nc = 1 + (round * 7) % 11;

		for (unsigned i = 0; i < np && vz__slot_reserve(&r); i++)
			put(&r, sent++);
		for (unsigned i = 0; i < nc && vz__slot_peek(&r); i++)
			assert_int_equal(take(&r), got++);
		if (round % 3 == 0)
			vz__slot_release(&r);
	}
	while (vz__slot_peek(&r))
		assert_int_equal(take(&r), got++);
	assert_int_equal(got, sent);
	assert_true(sent > 16 * 100);
	vz__slot_ring_fini(&r);
}

/* Indices near 2^32: the slots hold what a ring that got there would hold
 * (each seq = its last index + 1, one lap back), then the counters wrap. */
static void test_index_wrap(void **state)
{
	struct vz__slot_ring r;
	const uint32_t start = UINT32_C(0xffffffff) - 20;
	uint32_t v = 0, w = 0;

	(void)state;
	assert_int_equal(vz__slot_ring_init(&r, 8, -1), 0);
	for (uint32_t i = 0; i < 8; i++) {
		uint32_t idx = start - 8 + i; /* the previous lap, this slot */

		atomic_store_explicit(&r.slots[idx & r.mask].seq, idx + 1, memory_order_relaxed);
	}
	r.tail = r.head_cache = r.next = start;
	atomic_store_explicit(&r.head, start, memory_order_relaxed);
	assert_null(vz__slot_peek(&r)); /* last lap's seq is not this lap's */
	for (unsigned round = 0; round < 40; round++) {
		put(&r, v++);
		put(&r, v++);
		assert_int_equal(take(&r), w++);
		if (round % 2)
			assert_int_equal(take(&r), w++);
		vz__slot_release(&r);
		if (!vz__slot_reserve(&r) || vz__slot_room_cached(&r) < 2) {
			while (vz__slot_peek(&r))
				assert_int_equal(take(&r), w++);
			vz__slot_release(&r);
		}
	}
	while (vz__slot_peek(&r))
		assert_int_equal(take(&r), w++);
	assert_int_equal(w, v);
	assert_true(r.next < start); /* wrapped */
	vz__slot_ring_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_rejects_bad_capacity),
	    cmocka_unit_test(test_empty_and_unpublished),
	    cmocka_unit_test(test_full_until_release),
	    cmocka_unit_test(test_fifo_across_wrap),
	    cmocka_unit_test(test_index_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
