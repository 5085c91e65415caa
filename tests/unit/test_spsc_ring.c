// SPDX-License-Identifier: MIT
/*
 * Unit tests of the SPSC ring (runtime/queue/spsc_ring.h), single-threaded:
 * argument checking in init, exact partial pushes when full, empty pops,
 * batch boundaries, FIFO order across many wrap-arounds of the slot array
 * and across the 2^32 wrap of the indices, and the producer's refresh of
 * its cached view of head. Concurrency is exercised in tests/stress/stress_spsc_ring.c.
 *
 * VZ_TEST_BACKEND_INDEPENDENT: touches no I/O backend, runs once.
 */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <numa.h>

#include "queue/spsc_ring.h"
#include "spsc_peek.h"

/* Items are small integers disguised as pointers (0 included: the ring
 * must not treat NULL specially). */
static void *item(uint32_t v)
{
	return (void *)(uintptr_t)v;
}

static uint32_t val(void *p)
{
	return (uint32_t)(uintptr_t)p;
}

static void test_init_rejects_bad_capacity(void **state)
{
	static const uint32_t bad[] = {0,
				       1,
				       3,
				       5,
				       6,
				       7,
				       12,
				       100,
				       1000,
				       UINT32_C(0x80000001),
				       UINT32_C(0xffffffff),
				       UINT32_C(0x80000000) + 2};
	struct vz__spsc r;
	void *out[1] = {NULL};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&r, 0xa5, sizeof r);
		assert_int_equal(vz__spsc_init(&r, bad[i], -1), VZ_EINVAL);
		/* A failed init leaves a ring that is empty, full and safe
		 * to fini (twice). */
		assert_null(r.slots);
		assert_true(spsc_peek_empty(&r));
		assert_int_equal(vz__spsc_push_batch(&r, out, 1), 0);
		assert_int_equal(vz__spsc_pop_batch(&r, out, 1), 0);
		vz__spsc_fini(&r);
		vz__spsc_fini(&r);
	}
}

static void test_init_accepts_powers_of_two(void **state)
{
	struct vz__spsc r;

	(void)state;
	for (uint32_t cap = 2; cap <= 65536; cap <<= 1) {
		assert_int_equal(vz__spsc_init(&r, cap, -1), 0);
		assert_int_equal(vz__spsc_capacity(&r), cap);
		assert_non_null(r.slots);
		assert_int_equal((uintptr_t)r.slots % VZ__SPSC_LINE, 0);
		assert_true(spsc_peek_empty(&r));
		assert_int_equal(spsc_peek_free(&r), cap);
		vz__spsc_fini(&r);
		assert_null(r.slots);
		vz__spsc_fini(&r); /* idempotent */
	}
}

static void test_init_numa(void **state)
{
	struct vz__spsc r;
	void *in[4] = {item(1), item(2), item(3), item(4)};
	void *out[4];

	(void)state;
	if (numa_available() < 0) {
		/* No NUMA: the node is ignored, memory comes from malloc. */
		assert_int_equal(vz__spsc_init(&r, 4, 0), 0);
		assert_false(r.numa);
	} else {
		assert_int_equal(vz__spsc_init(&r, 4, numa_max_node() + 1), VZ_EINVAL);
		assert_null(r.slots);
		assert_int_equal(vz__spsc_init(&r, 4, 0), 0);
		assert_true(r.numa);
	}
	assert_int_equal(vz__spsc_push_batch(&r, in, 4), 4);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 4), 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(val(out[i]), i + 1);
	vz__spsc_fini(&r);
}

/* Sanitizer runtimes reserve far more address space than any limit we
 * could set, so the ENOMEM check only runs in plain builds. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VZ_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VZ_UNDER_SANITIZER 1
#endif
#endif

static void test_init_enomem(void **state)
{
	(void)state;
#ifdef VZ_UNDER_SANITIZER
	skip();
#else
	/* In a child (the limit must not outlive the check): cap the
	 * address space at 256 MiB, then ask for 2^31 slots (16 GiB), on
	 * both allocation paths. */
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {.rlim_cur = 256u << 20, .rlim_max = 256u << 20};
		struct vz__spsc r;
		int code = 0;

		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(10);
		if (vz__spsc_init(&r, VZ__SPSC_MAX_CAPACITY, -1) != VZ_ENOMEM)
			code |= 1;
		if (r.slots != NULL)
			code |= 2;
		vz__spsc_fini(&r);
		if (numa_available() >= 0 &&
		    vz__spsc_init(&r, VZ__SPSC_MAX_CAPACITY, 0) != VZ_ENOMEM)
			code |= 4;
		_exit(code);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

static void test_empty_pop(void **state)
{
	struct vz__spsc r;
	void *out[8] = {0};
	void *in[3] = {item(7), item(8), item(9)};

	(void)state;
	assert_int_equal(vz__spsc_init(&r, 8, -1), 0);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 8), 0);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 0), 0);
	assert_true(spsc_peek_empty(&r));

	assert_int_equal(vz__spsc_push_batch(&r, in, 0), 0); /* n == 0: nothing */
	assert_true(spsc_peek_empty(&r));
	assert_int_equal(vz__spsc_push_batch(&r, in, 3), 3);
	assert_false(spsc_peek_empty(&r));
	assert_int_equal(vz__spsc_pop_batch(&r, out, 0), 0); /* max == 0: nothing */
	assert_false(spsc_peek_empty(&r));
	assert_int_equal(vz__spsc_pop_batch(&r, out, 8), 3);
	assert_int_equal(val(out[0]), 7);
	assert_int_equal(val(out[1]), 8);
	assert_int_equal(val(out[2]), 9);
	assert_true(spsc_peek_empty(&r));
	assert_int_equal(vz__spsc_pop_batch(&r, out, 8), 0);
	vz__spsc_fini(&r);
}

static void test_full_partial_push(void **state)
{
	struct vz__spsc r;
	void *in[16], *out[16];

	(void)state;
	for (uint32_t i = 0; i < 16; i++)
		in[i] = item(100 + i);
	assert_int_equal(vz__spsc_init(&r, 8, -1), 0);

	assert_int_equal(vz__spsc_push_batch(&r, in, 5), 5);
	assert_int_equal(spsc_peek_free(&r), 3);
	/* Asked for 5, room for 3: exactly the first 3 go in. */
	assert_int_equal(vz__spsc_push_batch(&r, in + 5, 5), 3);
	assert_int_equal(spsc_peek_free(&r), 0);
	assert_int_equal(vz__spsc_push_batch(&r, in + 8, 1), 0);
	assert_int_equal(vz__spsc_push_batch(&r, in + 8, 8), 0);

	/* Consumer frees 2: the producer's full view refreshes. */
	assert_int_equal(vz__spsc_pop_batch(&r, out, 2), 2);
	assert_int_equal(val(out[0]), 100);
	assert_int_equal(val(out[1]), 101);
	assert_int_equal(spsc_peek_free(&r), 2);
	/* Batch larger than the free space: exact k again, in order. */
	assert_int_equal(vz__spsc_push_batch(&r, in + 8, 5), 2);
	assert_int_equal(vz__spsc_push_batch(&r, in + 10, 1), 0);

	/* Everything comes out once, in order: 102..109. */
	assert_int_equal(vz__spsc_pop_batch(&r, out, 16), 8);
	for (uint32_t i = 0; i < 8; i++)
		assert_int_equal(val(out[i]), 102 + i);
	assert_true(spsc_peek_empty(&r));
	vz__spsc_fini(&r);
}

static void test_push_refreshes_stale_head(void **state)
{
	struct vz__spsc r;
	void *in[4] = {item(1), item(2), item(3), item(4)};
	void *out[4];

	(void)state;
	assert_int_equal(vz__spsc_init(&r, 4, -1), 0);
	assert_int_equal(vz__spsc_push_batch(&r, in, 3), 3);
	assert_int_equal(spsc_peek_free(&r), 1);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 2), 2);
	/* The producer's cached head still shows 1 free; the truth is 3. */
	assert_int_equal(r.head_cache, 0);
	assert_int_equal(spsc_peek_free(&r), 3);
	/* A push of 3 refreshes and fits all three. */
	assert_int_equal(vz__spsc_push_batch(&r, in, 3), 3);
	assert_int_equal(spsc_peek_free(&r), 0);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 4), 4);
	assert_int_equal(val(out[0]), 3);
	assert_int_equal(val(out[1]), 1);
	assert_int_equal(val(out[2]), 2);
	assert_int_equal(val(out[3]), 3);
	vz__spsc_fini(&r);
}

static void test_pop_smaller_than_available(void **state)
{
	struct vz__spsc r;
	void *in[6], *out[6];

	(void)state;
	for (uint32_t i = 0; i < 6; i++)
		in[i] = item(i);
	assert_int_equal(vz__spsc_init(&r, 8, -1), 0);
	assert_int_equal(vz__spsc_push_batch(&r, in, 6), 6);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 4), 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(val(out[i]), i);
	assert_false(spsc_peek_empty(&r));
	assert_int_equal(vz__spsc_pop_batch(&r, out, 1), 1);
	assert_int_equal(val(out[0]), 4);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 4), 1);
	assert_int_equal(val(out[0]), 5);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 4), 0);
	vz__spsc_fini(&r);
}

static void test_fifo_across_wrap(void **state)
{
	struct vz__spsc r;
	void *in[4], *out[4];

	(void)state;
	assert_int_equal(vz__spsc_init(&r, 4, -1), 0);
	for (uint32_t i = 0; i < 3; i++)
		in[i] = item(i);
	assert_int_equal(vz__spsc_push_batch(&r, in, 3), 3);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 3), 3);
	/* Indices 3,4,5,6 -> slots 3,0,1,2: one batch split by the wrap. */
	for (uint32_t i = 0; i < 4; i++)
		in[i] = item(10 + i);
	assert_int_equal(vz__spsc_push_batch(&r, in, 4), 4);
	assert_int_equal(vz__spsc_pop_batch(&r, out, 4), 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(val(out[i]), 10 + i);
	vz__spsc_fini(&r);
}

/* Many wrap-arounds with batch sizes that do not divide the capacity, a
 * deterministic pseudo-random mix of push and pop sizes, and a model of
 * the expected fill level to check every count exactly. */
static void test_wrap_many_times(void **state)
{
	struct vz__spsc r;
	void *in[32], *out[32];
	uint32_t next_in = 0, next_out = 0, fill = 0, seed = 12345;

	(void)state;
	assert_int_equal(vz__spsc_init(&r, 16, -1), 0);
	for (int iter = 0; iter < 200000; iter++) {
		uint32_t want, got, expect;

		seed = seed * 1103515245u + 12345u;
		want = (seed >> 16) % 21; /* 0..20: up to more than capacity */
		for (uint32_t i = 0; i < want; i++)
			in[i] = item(next_in + i);
		got = vz__spsc_push_batch(&r, in, want);
		expect = want < 16 - fill ? want : 16 - fill;
		assert_int_equal(got, expect);
		next_in += got;
		fill += got;

		seed = seed * 1103515245u + 12345u;
		want = (seed >> 16) % 21;
		got = vz__spsc_pop_batch(&r, out, want);
		expect = want < fill ? want : fill;
		assert_int_equal(got, expect);
		for (uint32_t i = 0; i < got; i++)
			assert_int_equal(val(out[i]), next_out + i);
		next_out += got;
		fill -= got;
		assert_int_equal(spsc_peek_empty(&r), fill == 0);
	}
	/* The slot array wrapped many times over. */
	assert_true(next_out / 16 > 10000);
	vz__spsc_fini(&r);
}

/* The indices are free-running uint32_t: start them just below 2^32 (by
 * setting the fields, which only a test may do) and run across the wrap. */
static void test_index_wrap_2_32(void **state)
{
	struct vz__spsc r;
	void *in[8], *out[8];
	uint32_t start = UINT32_MAX - 20, seq = 0, check = 0;

	(void)state;
	assert_int_equal(vz__spsc_init(&r, 8, -1), 0);
	atomic_store_explicit(&r.tail, start, memory_order_relaxed);
	atomic_store_explicit(&r.head, start, memory_order_relaxed);
	r.head_cache = start;
	r.tail_cache = start;
	assert_true(spsc_peek_empty(&r));
	assert_int_equal(spsc_peek_free(&r), 8);
	for (int round = 0; round < 12; round++) {
		for (uint32_t i = 0; i < 8; i++)
			in[i] = item(seq + i);
		assert_int_equal(vz__spsc_push_batch(&r, in, 8), 8);
		seq += 8;
		assert_int_equal(vz__spsc_push_batch(&r, in, 1), 0);
		assert_int_equal(spsc_peek_free(&r), 0);
		assert_int_equal(vz__spsc_pop_batch(&r, out, 3), 3);
		assert_int_equal(vz__spsc_pop_batch(&r, out + 3, 8), 5);
		for (uint32_t i = 0; i < 8; i++)
			assert_int_equal(val(out[i]), check + i);
		check += 8;
		assert_true(spsc_peek_empty(&r));
	}
	/* We did cross zero. */
	assert_true(atomic_load_explicit(&r.tail, memory_order_relaxed) < start);
	vz__spsc_fini(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_rejects_bad_capacity),
	    cmocka_unit_test(test_init_accepts_powers_of_two),
	    cmocka_unit_test(test_init_numa),
	    cmocka_unit_test(test_init_enomem),
	    cmocka_unit_test(test_empty_pop),
	    cmocka_unit_test(test_full_partial_push),
	    cmocka_unit_test(test_push_refreshes_stale_head),
	    cmocka_unit_test(test_pop_smaller_than_available),
	    cmocka_unit_test(test_fifo_across_wrap),
	    cmocka_unit_test(test_wrap_many_times),
	    cmocka_unit_test(test_index_wrap_2_32),
	};

	vz_test_watchdog(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
