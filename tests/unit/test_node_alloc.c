// SPDX-License-Identifier: MIT
/*
 * Unit tests of node-placed allocation (runtime/util/node_alloc.h), the
 * one place the rings get their slot arrays from: bad sizes and
 * alignments refused, no placement asked (first-touch memory, aligned
 * even for a size that is not a multiple of the alignment), a node of
 * this machine (libnuma memory, page-aligned and zeroed) and a node it
 * does not have (VZ_EINVAL, nothing allocated) where libnuma works; and
 * that both rings pass the node through and remember how to free.
 *
 * VZ_TEST_BACKEND_INDEPENDENT: touches no I/O backend, runs once.
 */
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include <numa.h>

#include "queue/slot_ring.h"
#include "queue/spsc_ring.h"
#include "util/node_alloc.h"

static void test_bad_arguments(void **state)
{
	void *p = (void *)1;
	bool on = true;

	(void)state;
	assert_int_equal(vz__node_alloc(0, 64, -1, &p, &on), VZ_EINVAL);
	assert_null(p);
	assert_false(on);
	assert_int_equal(vz__node_alloc(64, 0, -1, &p, &on), VZ_EINVAL);
	assert_int_equal(vz__node_alloc(64, 48, -1, &p, &on), VZ_EINVAL);
	assert_int_equal(vz__node_alloc(64, 8192, -1, &p, &on), VZ_EINVAL);
	assert_null(p);
	vz__node_free(NULL, 64, false); /* a no-op */
	vz__node_free(NULL, 64, true);
}

static void test_no_node(void **state)
{
	void *p;
	bool on = true;

	(void)state;
	/* 100 bytes at 64: rounded up inside, the caller need not. */
	assert_int_equal(vz__node_alloc(100, 64, -1, &p, &on), 0);
	assert_non_null(p);
	assert_false(on);
	assert_int_equal((uintptr_t)p % 64, 0);
	memset(p, 0xa5, 100);
	vz__node_free(p, 100, on);
}

static void test_on_node(void **state)
{
	void *p;
	bool on;

	(void)state;
	if (numa_available() < 0) {
		/* One node as far as this machine says: any node number is
		 * taken, the memory is first-touch. */
		assert_int_equal(vz__node_alloc(256, 64, 7, &p, &on), 0);
		assert_false(on);
		vz__node_free(p, 256, on);
		return;
	}
	assert_int_equal(vz__node_alloc(256, 64, numa_max_node() + 1, &p, &on), VZ_EINVAL);
	assert_null(p);
	assert_false(on);
	assert_int_equal(vz__node_alloc(256, 64, 0, &p, &on), 0);
	assert_true(on);
	assert_int_equal((uintptr_t)p % 4096, 0);
	for (size_t i = 0; i < 256; i++)
		assert_int_equal(((unsigned char *)p)[i], 0);
	memset(p, 0x5a, 256);
	vz__node_free(p, 256, on);
}

/* Both rings take the node through the helper: a node this machine lacks
 * is refused by each, node 0 gives libnuma memory where libnuma works,
 * and fini frees what init got (ASan checks the matching free). */
static void test_rings_pass_the_node(void **state)
{
	struct vz__slot_ring sr;
	struct vz__spsc pr;
	bool numa = numa_available() >= 0;

	(void)state;
	if (numa) {
		assert_int_equal(vz__slot_ring_init(&sr, 8, numa_max_node() + 1), VZ_EINVAL);
		assert_null(sr.slots);
		vz__slot_ring_fini(&sr);
		assert_int_equal(vz__spsc_init(&pr, 8, numa_max_node() + 1), VZ_EINVAL);
		assert_null(pr.slots);
		vz__spsc_fini(&pr);
	}
	assert_int_equal(vz__slot_ring_init(&sr, 8, 0), 0);
	assert_int_equal(sr.numa, numa);
	assert_int_equal((uintptr_t)sr.slots % VZ__SLOT_BYTES, 0);
	vz__slot_ring_fini(&sr);
	assert_int_equal(vz__spsc_init(&pr, 2, 0), 0);
	assert_int_equal(pr.numa, numa);
	vz__spsc_fini(&pr);
	/* Two pointers: smaller than a line, allocated all the same. */
	assert_int_equal(vz__spsc_init(&pr, 2, -1), 0);
	assert_false(pr.numa);
	assert_int_equal((uintptr_t)pr.slots % VZ__SPSC_LINE, 0);
	vz__spsc_fini(&pr);
	vz__spsc_fini(&pr); /* idempotent */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_no_node),
	    cmocka_unit_test(test_on_node),
	    cmocka_unit_test(test_rings_pass_the_node),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
