// SPDX-License-Identifier: MIT
/* The version macros, the running library's vz_version() and the CMake
 * project version agree. VZ_TEST_BACKEND_INDEPENDENT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <veloz.h>

static void test_library_matches_headers(void **state)
{
	char want[32];

	(void)state;
	assert_int_equal(vz_version(), VZ_VERSION_NUMBER);
	snprintf(want, sizeof want, "%d.%d.%d", VZ_VERSION_MAJOR, VZ_VERSION_MINOR,
		 VZ_VERSION_PATCH);
	assert_string_equal(vz_version_string(), want);
	assert_string_equal(VZ_VERSION_STRING, want);
}

static void test_cmake_reads_the_header(void **state)
{
	(void)state;
	/* VZ_PROJECT_VERSION is CMake's PROJECT_VERSION, which CMakeLists.txt
	 * reads from version.h: a drift between the two shows here. */
	assert_string_equal(VZ_PROJECT_VERSION, VZ_VERSION_STRING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_library_matches_headers),
	    cmocka_unit_test(test_cmake_reads_the_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
