// SPDX-License-Identifier: MIT
/*
 * Unit tests of the lane (runtime/queue/lane.h), the per-producer SPSC
 * queue foreign posts travel in: FIFO across many segments with records of
 * every size (so pads at segment ends are crossed), a reservation that is
 * never committed leaving no trace, a closed lane refusing every commit
 * and changing nothing, the stopper's close position and the consumer's
 * published head, the park handshake in both of its outcomes, and the
 * segment hand-back (two segments in steady state, nothing allocated per
 * record). The last test runs a producer and a consumer thread and checks
 * order and sizes across a million records.
 *
 * VZ_TEST_BACKEND_INDEPENDENT: touches no I/O backend, runs once.
 */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/lane.h"

static struct vz__lane *lane_new(void)
{
	struct vz__lane *l = aligned_alloc(64, sizeof *l);

	assert_non_null(l);
	assert_int_equal(vz__lane_init(l), 0);
	return l;
}

static void lane_free(struct vz__lane *l)
{
	vz__lane_fini(l);
	free(l);
}

/* Record i takes 1 + i % n slots and carries i in user32 and in every
 * slot's first body word. */
static unsigned rec_slots(uint32_t i, unsigned n)
{
	return 1 + i % n;
}

static void put(struct vz__lane *l, uint32_t i, unsigned n)
{
	struct vz__lane_slot *s = vz__lane_reserve(l, n, 1);

	assert_non_null(s);
	assert_int_equal(s->nslots, n);
	s->user32 = i;
	for (unsigned k = 0; k < n; k++)
		memcpy(s[k].body, &i, sizeof i);
	assert_int_equal(vz__lane_commit(l, n), 0);
}

static void take(struct vz__lane *l, uint32_t i, unsigned n)
{
	struct vz__lane_slot *s = vz__lane_peek(l);
	uint32_t v;

	assert_non_null(s);
	assert_int_equal(s->kind, 1);
	assert_int_equal(s->nslots, n);
	assert_int_equal(s->user32, i);
	for (unsigned k = 0; k < n; k++) {
		memcpy(&v, s[k].body, sizeof v);
		assert_int_equal(v, i);
	}
	vz__lane_advance(l, n);
}

static void test_fifo_across_segments(void **st)
{
	struct vz__lane *l = lane_new();
	const uint32_t total = 20 * VZ__LANE_SEG_SLOTS;

	(void)st;
	assert_null(vz__lane_peek(l));
	assert_true(vz__lane_empty(l));
	/* Bursts of different lengths, so the consumer lags by varying
	 * amounts and record sizes 1..MAX_REC hit every segment end. */
	for (uint32_t i = 0, j = 0; i < total;) {
		uint32_t burst = 1 + i % 37;

		for (uint32_t k = 0; k < burst && i < total; k++, i++)
			put(l, i, rec_slots(i, VZ__LANE_MAX_REC));
		assert_false(vz__lane_empty(l));
		for (; j < i; j++)
			take(l, j, rec_slots(j, VZ__LANE_MAX_REC));
		assert_null(vz__lane_peek(l));
		assert_true(vz__lane_empty(l));
	}
	/* Bursts of up to 37 * 8 slots run up to three segments ahead of
	 * the consumer; whatever it finished was handed back, kept (up to
	 * VZ__LANE_KEEP) or freed, so no more than that is alive. */
	assert_true(1 + l->segs_allocated - l->segs_freed <= 5 + VZ__LANE_KEEP);
	lane_free(l);
}

static void test_steady_state_allocates_nothing(void **st)
{
	struct vz__lane *l = lane_new();

	(void)st;
	/* A consumer less than a segment behind: two segments take turns,
	 * the second allocated once, then only handed back and forth. */
	for (uint32_t i = 0, j = 0; i < 50 * VZ__LANE_SEG_SLOTS;) {
		for (uint32_t k = 0; k < 1 + i % 97; k++, i++)
			put(l, i, 1);
		for (; j < i; j++)
			take(l, j, 1);
	}
	assert_int_equal(l->segs_allocated, 1);
	assert_int_equal(l->segs_freed, 0);
	lane_free(l);
}

static void test_uncommitted_reservation_leaves_no_trace(void **st)
{
	struct vz__lane *l = lane_new();

	(void)st;
	put(l, 0, 1);
	/* Reserved, never committed (the post was refused): invisible... */
	assert_non_null(vz__lane_reserve(l, 3, 1));
	take(l, 0, 1);
	assert_null(vz__lane_peek(l));
	/* ... and overwritten by the next record. Also across a segment
	 * end: fill up to 2 slots before it, reserve 5 (pad + new segment),
	 * abandon, then put a 1-slot record that fits where the pad was
	 * going to be... which must now go to the new segment instead. */
	for (uint32_t i = 1; i < VZ__LANE_SEG_SLOTS - 2; i++)
		put(l, i, 1);
	assert_non_null(vz__lane_reserve(l, 5, 1));
	put(l, 1000, 1);
	put(l, 1001, 2);
	for (uint32_t i = 1; i < VZ__LANE_SEG_SLOTS - 2; i++)
		take(l, i, 1);
	take(l, 1000, 1);
	take(l, 1001, 2);
	assert_null(vz__lane_peek(l));
	lane_free(l);
}

static void test_closed_lane_refuses(void **st)
{
	struct vz__lane *l = lane_new();
	struct vz__lane_slot *s;

	(void)st;
	put(l, 7, 2);
	put(l, 8, 1);
	assert_false(vz__lane_closed_hint(l));
	/* The close reports everything published before it. */
	assert_int_equal(vz__lane_close(l), 3);
	assert_true(vz__lane_closed_hint(l));
	s = vz__lane_reserve(l, 1, 1);
	assert_non_null(s);
	assert_int_equal(vz__lane_commit(l, 1), -1);
	assert_int_equal(vz__lane_commit(l, 1), -1);
	/* What was published before stays; nothing after it appears. */
	assert_false(vz__lane_taken(l, 3));
	take(l, 7, 2);
	take(l, 8, 1);
	assert_null(vz__lane_peek(l));
	assert_true(vz__lane_empty(l));
	assert_false(vz__lane_taken(l, 3));
	vz__lane_publish_head(l);
	assert_true(vz__lane_taken(l, 3));
	lane_free(l);
}

static void test_park_handshake(void **st)
{
	struct vz__lane *l = lane_new();

	(void)st;
	/* A new lane starts parked: the first commit rings. */
	assert_true(vz__lane_parked(l));
	put(l, 1, 1);
	assert_true(vz__lane_parked(l));
	vz__lane_unpark(l);
	assert_false(vz__lane_parked(l));
	/* Not empty: parking fails and leaves the lane polled. */
	assert_false(vz__lane_park(l));
	assert_false(vz__lane_parked(l));
	take(l, 1, 1);
	/* Empty: parked, and the next commit's producer sees it. */
	assert_true(vz__lane_park(l));
	put(l, 2, 3);
	assert_true(vz__lane_parked(l));
	vz__lane_unpark(l);
	take(l, 2, 3);
	lane_free(l);
}

/* ---- two threads -------------------------------------------------------- */

#define TWO_THREAD_RECORDS 1000000u

static void *producer(void *arg)
{
	struct vz__lane *l = arg;

	for (uint32_t i = 0; i < TWO_THREAD_RECORDS; i++) {
		unsigned n = rec_slots(i * 2654435761u >> 29, VZ__LANE_MAX_REC);
		struct vz__lane_slot *s = vz__lane_reserve(l, n, 1);

		if (!s)
			abort();
		s->user32 = i;
		s[n - 1].body[0] = (unsigned char)i;
		if (vz__lane_commit(l, n) != 0)
			abort();
	}
	return NULL;
}

static void test_two_threads_fifo(void **st)
{
	struct vz__lane *l = lane_new();
	pthread_t th;
	uint32_t next = 0;

	(void)st;
	assert_int_equal(pthread_create(&th, NULL, producer, l), 0);
	while (next < TWO_THREAD_RECORDS) {
		struct vz__lane_slot *s = vz__lane_peek(l);
		unsigned n;

		if (!s) {
			sched_yield();
			continue;
		}
		n = rec_slots(next * 2654435761u >> 29, VZ__LANE_MAX_REC);
		assert_int_equal(s->user32, next);
		assert_int_equal(s->nslots, n);
		assert_int_equal(s[n - 1].body[0], (unsigned char)next);
		vz__lane_advance(l, n);
		next++;
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_null(vz__lane_peek(l));
	lane_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_across_segments),
	    cmocka_unit_test(test_steady_state_allocates_nothing),
	    cmocka_unit_test(test_uncommitted_reservation_leaves_no_trace),
	    cmocka_unit_test(test_closed_lane_refuses),
	    cmocka_unit_test(test_park_handshake),
	    cmocka_unit_test(test_two_threads_fifo),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
