// SPDX-License-Identifier: MIT
/*
 * The public API's contract on bad input and lifecycle misuse: every call
 * returns its documented VZ_E* code and changes nothing; nothing crashes.
 * Also the error table, and the runtime's queries.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_X = VZ_MSG_USER };

static void nop_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
}

static const vz_actor_spec nop_spec = {.name = "nop", .receive = nop_receive};

static void test_error_table(void **s)
{
	(void)s;
	assert_string_equal(vz_errname(0), "VZ_OK");
	assert_string_equal(vz_errname(VZ_EINVAL), "VZ_EINVAL");
	assert_string_equal(vz_errname(VZ_EBUSY), "VZ_EBUSY");
	assert_string_equal(vz_errname(12345), "VZ_E?");
	assert_string_equal(vz_strerror(VZ_ESTALE), "stale or forged reference");
	assert_string_equal(vz_strerror(-9999), "unknown error");
	/* VZ_ETOOBIG comes from sends (VZ_MSG_MAX_PAYLOAD) and from pool
	 * submissions (VZ_POOL_MAX_PAYLOAD, 64 times smaller): its one text
	 * must not name only the message limit. */
	assert_non_null(strstr(vz_strerror(VZ_ETOOBIG), "VZ_MSG_MAX_PAYLOAD"));
	assert_non_null(strstr(vz_strerror(VZ_ETOOBIG), "VZ_POOL_MAX_PAYLOAD"));
	assert_non_null(strstr(vz_strerror(VZ_ETOOBIG), "VZ_POOL_MAX_RESULT"));
	for (int e = -1; e >= VZ_EBUSY; e--) {
		assert_string_not_equal(vz_strerror(e), "unknown error");
		assert_string_not_equal(vz_errname(e), "VZ_E?");
	}
}

static void test_null_everywhere(void **s)
{
	vz_shard_stats st;
	vz_ref r;

	(void)s;
	assert_int_equal(vz_config_default(NULL), VZ_EINVAL);
	assert_int_equal(vz_runtime_create(NULL, NULL), VZ_EINVAL);
	assert_int_equal(vz_runtime_start(NULL), VZ_EINVAL);
	assert_int_equal(vz_runtime_stop(NULL), VZ_EINVAL);
	assert_int_equal(vz_runtime_destroy(NULL), 0);
	assert_int_equal(vz_runtime_shards(NULL), 0);
	assert_int_equal(vz_spawn(NULL, 0, &nop_spec, NULL, &r), VZ_EINVAL);
	assert_int_equal(vz_stop(NULL, r), VZ_EINVAL);
	assert_int_equal(vz_post(NULL, VZ_REF_NULL, MSG_X, NULL, 0), VZ_EINVAL);
	assert_int_equal(vz_send(NULL, VZ_REF_NULL, MSG_X, NULL, 0), VZ_EINVAL);
	assert_int_equal(vz_reply(NULL, NULL, MSG_X, NULL, 0), VZ_EINVAL);
	assert_int_equal(vz_stats_shard(NULL, 0, &st), VZ_EINVAL);
	assert_int_equal(vz_stats_total(NULL, &st, NULL), VZ_EINVAL);
	assert_int_equal(vz_shard_poll(NULL, 0, 0), VZ_EINVAL);
	assert_int_equal(vz_timer_arm(NULL, 1, 0, 0, NULL), VZ_EINVAL);
	assert_int_equal(vz_msg_type(NULL), 0);
	assert_null(vz_msg_data(NULL));
	assert_int_equal(vz_current_shard(NULL), -1);
}

static void test_lifecycle_misuse(void **s)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref r, bad;
	vz_actor_spec no_receive = {.name = "x"};
	vz_actor_spec huge = {.name = "x", .receive = nop_receive, .state_size = (1u << 20) + 1};
	char big[VZ_MSG_MAX_PAYLOAD + 1];

	(void)s;
	memset(big, 0, sizeof big);
	vz_test_config(&cfg, 2);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_runtime_shards(rt), 2);
	assert_true(strcmp(vz_runtime_backend(rt), "io_uring") == 0 ||
		    strcmp(vz_runtime_backend(rt), "epoll") == 0);

	/* spawn errors */
	assert_int_equal(vz_spawn(rt, 2, &nop_spec, NULL, &r), VZ_ENOSHARD);
	assert_int_equal(vz_spawn(rt, 0, NULL, NULL, &r), VZ_EINVAL);
	assert_int_equal(vz_spawn(rt, 0, &no_receive, NULL, &r), VZ_EINVAL);
	assert_int_equal(vz_spawn(rt, 0, &huge, NULL, &r), VZ_EINVAL);
	assert_int_equal(vz_spawn(rt, 0, &nop_spec, NULL, &r), 0);

	/* before start */
	assert_int_equal(vz_post(rt, r, MSG_X, NULL, 0), VZ_ESTATE);
	assert_int_equal(vz_shard_poll(rt, 0, 0), VZ_EINVAL); /* not embedded */
	assert_int_equal(vz_runtime_stop(rt), VZ_ESTATE);

	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_runtime_start(rt), VZ_ESTATE);

	/* send errors, all before anything changes */
	assert_int_equal(vz_post(rt, r, 5, NULL, 0), VZ_EINVAL); /* reserved type */
	assert_int_equal(vz_post(rt, r, MSG_X, NULL, 4), VZ_EINVAL);
	assert_int_equal(vz_post(rt, r, MSG_X, big, sizeof big), VZ_ETOOBIG);
	assert_int_equal(vz_post(rt, VZ_REF_NULL, MSG_X, NULL, 0), VZ_ESTALE);
	bad.id = (uint64_t)7 << 56;
	assert_int_equal(vz_post(rt, bad, MSG_X, NULL, 0), VZ_ENOSHARD);
	assert_int_equal(vz_post(rt, r, MSG_X, big, VZ_MSG_MAX_PAYLOAD), 0);

	/* spawn from a foreign thread after start */
	assert_int_equal(vz_spawn(rt, 0, &nop_spec, NULL, &bad), VZ_EWRONGTHREAD);
	assert_int_equal(vz_current_shard(rt), -1);

	assert_int_equal(vz_runtime_destroy(rt), VZ_ESTATE); /* running */
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_stop(rt), VZ_ESTATE);
	assert_int_equal(vz_post(rt, r, MSG_X, NULL, 0), VZ_ESTOPPED);
	assert_int_equal(vz_runtime_start(rt), VZ_ESTATE);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

static void test_create_errors(void **s)
{
	vz_config cfg;
	vz_runtime *rt = (vz_runtime *)0x1;

	(void)s;
	vz_test_config(&cfg, 2);
	cfg.ring_entries = 1000; /* not a power of two */
	assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ECONFIG);
	assert_null(rt);
	vz_test_config(&cfg, VZ_MAX_SHARDS + 1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ECONFIG);
}

/* vz_runtime_create() says why it refused through cfg.create_error, in
 * the form vz_config_validate() uses, and clears it on success. */
static void test_create_error_detail(void **s)
{
	vz_config_error e;
	vz_config cfg;
	vz_runtime *rt = NULL;

	(void)s;
	vz_test_config(&cfg, 2);
	cfg.create_error = &e;
	vz_cpuset_set(&cfg.cpus, VZ_MAX_CPUS - 1); /* no machine here has CPU 1023 online */
	memset(&e, 0x5a, sizeof e);
	assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ECONFIG);
	assert_null(rt);
	assert_string_equal(e.file, "");
	assert_int_equal(e.line, 0);
	assert_string_equal(e.key, "runtime.cpus");
	assert_non_null(strstr(e.message, "CPU 1023 is not online"));

	vz_test_config(&cfg, 2);
	cfg.create_error = &e;
	cfg.ring_entries = 1000;
	assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ECONFIG);
	assert_string_equal(e.key, "runtime.ring_entries");
	assert_non_null(strstr(e.message, "not a power of two"));

	assert_int_equal(vz_runtime_create(&cfg, NULL), VZ_EINVAL);
	assert_non_null(strstr(e.message, "NULL"));

	/* success clears what an earlier failure left */
	cfg.ring_entries = 1024;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_string_equal(e.message, "");
	assert_string_equal(e.key, "");
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

/* VZ_BACKEND accepts what the config loader accepts ("auto", any case),
 * and anything else is a clear VZ_ECONFIG from create. The test runner's
 * own VZ_BACKEND is restored afterwards. */
static void test_create_backend_env(void **s)
{
	const char *env = getenv("VZ_BACKEND");
	vz_config_error e;
	vz_config cfg;
	vz_runtime *rt;
	char saved[64];

	(void)s;
	snprintf(saved, sizeof saved, "%s", env ? env : "");
	vz_test_config(&cfg, 1);
	cfg.create_error = &e;

	setenv("VZ_BACKEND", "auto", 1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_true(strcmp(vz_runtime_backend(rt), "io_uring") == 0 ||
		    strcmp(vz_runtime_backend(rt), "epoll") == 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);

	setenv("VZ_BACKEND", "EPOLL", 1);
	cfg.backend = VZ_BACKEND_IO_URING; /* the environment wins */
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_string_equal(vz_runtime_backend(rt), "epoll");
	assert_int_equal(vz_runtime_destroy(rt), 0);

	setenv("VZ_BACKEND", "Auto", 1);
	cfg.backend = VZ_BACKEND_EPOLL; /* ... also when it says auto */
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);

	setenv("VZ_BACKEND", "garbage", 1);
	rt = (vz_runtime *)0x1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ECONFIG);
	assert_null(rt);
	assert_string_equal(e.key, "runtime.backend");
	assert_non_null(strstr(e.message, "unknown backend 'garbage' (auto|io_uring|epoll)"));
	assert_non_null(strstr(e.message, "VZ_BACKEND"));

	if (saved[0])
		setenv("VZ_BACKEND", saved, 1);
	else
		unsetenv("VZ_BACKEND");
}

static void test_destroy_without_start(void **s)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref r;

	(void)s;
	vz_test_config(&cfg, 3);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(vz_spawn(rt, (unsigned)i % 3, &nop_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_error_table),
	    cmocka_unit_test(test_null_everywhere),
	    cmocka_unit_test(test_lifecycle_misuse),
	    cmocka_unit_test(test_create_errors),
	    cmocka_unit_test(test_destroy_without_start),
	    cmocka_unit_test(test_create_error_detail),
	    cmocka_unit_test(test_create_backend_env),
	};

	vz_test_watchdog(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
