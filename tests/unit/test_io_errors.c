// SPDX-License-Identifier: MIT
/*
 * Which error an actor I/O call returns when several things are wrong at
 * once: the order include/veloz/io.h states ("Errors, when several
 * apply") on vz_io_send(), vz_io_shutdown(), vz_udp_join() and
 * vz_io_close(): a NULL actor before anything, the wrong thread before
 * the arguments, the arguments before the handle, the handle before the
 * descriptor's kind. Every refused call changes nothing: the descriptor
 * used in the wrong-thread calls is still open and closes normally.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define CHECK(cond) VZ_TEST_CHECK(cond)

enum { MSG_PROBE = VZ_MSG_USER, MSG_CLOSE };

/* prober and udp: written by the shard thread before its release store of
 * `probed`, read by the test thread after vz_test_wait_flag() saw that
 * store (its acquire load pairs with it). */
static vz_actor *prober;
static vz_fd udp;
static atomic_int probed, closed;

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

/* On the owner's thread, with a live actor. */
static void probe(vz_actor *self)
{
	struct sockaddr_in lo = v4("127.0.0.1"), group = v4("239.255.42.98");
	const struct sockaddr *unicast = (const struct sockaddr *)&lo;
	const struct sockaddr *mcast = (const struct sockaddr *)&group;
	static const char byte = 'x';

	CHECK(vz_udp_bind(self, unicast, sizeof lo, 0, &udp) == 0);
	/* 4 before 5: arguments before the handle. */
	CHECK(vz_io_send(self, VZ_FD_NULL, NULL, 5, NULL, NULL) == VZ_EINVAL);
	CHECK(vz_io_shutdown(self, VZ_FD_NULL, 12345) == VZ_EINVAL);
	CHECK(vz_udp_join(self, VZ_FD_NULL, unicast, sizeof lo, 0) == VZ_EINVAL);
	CHECK(vz_udp_join(self, VZ_FD_NULL, NULL, 0, 0) == VZ_EINVAL);
	/* 5 alone: good arguments, no such handle. */
	CHECK(vz_io_send(self, VZ_FD_NULL, &byte, 1, NULL, NULL) == VZ_ESTALE);
	CHECK(vz_io_shutdown(self, VZ_FD_NULL, SHUT_WR) == VZ_ESTALE);
	CHECK(vz_udp_join(self, VZ_FD_NULL, mcast, sizeof group, 0) == VZ_ESTALE);
	CHECK(vz_io_close(self, VZ_FD_NULL) == VZ_ESTALE);
	/* 4 before 6: arguments before the descriptor's kind (a UDP handle
	 * is the wrong kind for vz_io_send()). */
	CHECK(vz_io_send(self, udp, &byte, (size_t)INT32_MAX + 1, NULL, NULL) == VZ_ETOOBIG);
	CHECK(vz_io_send(self, udp, NULL, 1, NULL, NULL) == VZ_EINVAL);
	CHECK(vz_udp_join(self, udp, unicast, sizeof lo, 0) == VZ_EINVAL);
	/* 6 alone. */
	CHECK(vz_io_send(self, udp, &byte, 1, NULL, NULL) == VZ_EINVAL);
}

static void prober_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) == MSG_PROBE) {
		probe(self);
		prober = self;
		/* release: prober and udp are written before the test
		 * thread reads them (pairs with vz_test_wait_flag()). */
		atomic_store_explicit(&probed, 1, memory_order_release);
	} else if (vz_msg_type(m) == MSG_CLOSE) {
		/* The refused calls from the other thread changed nothing. */
		CHECK(vz_io_close(self, udp) == 0);
		CHECK(vz_io_close(self, udp) == VZ_ESTALE);
		/* release: pairs with vz_test_wait_flag()'s acquire */
		atomic_store_explicit(&closed, 1, memory_order_release);
	}
}

static const vz_actor_spec prober_spec = {.name = "prober", .receive = prober_receive};

static void test_null_actor_first(void **state)
{
	struct sockaddr_in lo = v4("127.0.0.1");

	(void)state;
	/* 1 before everything: every other argument is bad too. */
	assert_int_equal(vz_io_send(NULL, VZ_FD_NULL, NULL, 5, NULL, NULL), VZ_EINVAL);
	assert_int_equal(vz_io_shutdown(NULL, VZ_FD_NULL, 12345), VZ_EINVAL);
	assert_int_equal(vz_udp_join(NULL, VZ_FD_NULL, (const struct sockaddr *)&lo, sizeof lo, 0),
			 VZ_EINVAL);
	assert_int_equal(vz_io_close(NULL, VZ_FD_NULL), VZ_EINVAL);
}

static void test_precedence(void **state)
{
	struct sockaddr_in lo = v4("127.0.0.1");
	vz_config cfg;
	vz_runtime *rt;
	vz_ref r;

	(void)state;
	vz_test_reset_fails();
	/* relaxed: no shard thread runs yet; runtime start publishes these */
	atomic_store_explicit(&probed, 0, memory_order_relaxed);
	atomic_store_explicit(&closed, 0, memory_order_relaxed);
	vz_test_config(&cfg, 1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &prober_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_post(rt, r, MSG_PROBE, NULL, 0), 0);
	if (!vz_test_wait_flag((volatile int *)&probed, 30.0)) {
		vz_test_assert_no_fails();
		fail_msg("the prober never ran");
	}
	vz_test_assert_no_fails();
	/* 2 before 4, 5 and 6: this thread is not the actor's, whatever the
	 * arguments and handle. */
	assert_int_equal(vz_io_send(prober, VZ_FD_NULL, NULL, 5, NULL, NULL), VZ_EWRONGTHREAD);
	assert_int_equal(vz_io_send(prober, udp, &lo, 1, NULL, NULL), VZ_EWRONGTHREAD);
	assert_int_equal(vz_io_shutdown(prober, udp, 12345), VZ_EWRONGTHREAD);
	assert_int_equal(vz_udp_join(prober, VZ_FD_NULL, NULL, 0, 0), VZ_EWRONGTHREAD);
	assert_int_equal(vz_io_close(prober, udp), VZ_EWRONGTHREAD);
	assert_int_equal(vz_post(rt, r, MSG_CLOSE, NULL, 0), 0);
	if (!vz_test_wait_flag((volatile int *)&closed, 30.0)) {
		vz_test_assert_no_fails();
		fail_msg("the prober never closed");
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_null_actor_first),
	    cmocka_unit_test(test_precedence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
