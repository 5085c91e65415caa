// SPDX-License-Identifier: MIT
/*
 * Actor UDP I/O on every backend: datagrams between two sockets of one
 * actor on loopback (each arrives whole, with its sender's address, and
 * many are taken per turn), then multicast: a group joined on the
 * loopback interface receives what is sent to it. Where the host cannot
 * route multicast on lo (no interface, no route, datagrams that never
 * come) the program skips, exit 77 with a "skipped: <reason>" line, after
 * the unicast part has passed; it never fails for that reason.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(cond) VZ_TEST_CHECK(cond)
#define NDGRAM	    500
#define GROUP	    "239.255.42.99"

static atomic_int done;
static atomic_int mcast_recvd;
static bool multicast;

struct udp {
	vz_fd a, b;
	struct sockaddr_in aaddr, baddr;
	unsigned got, sent_final;
	bool seen[NDGRAM];
};

static int udp_init(vz_actor *self, void *st, const void *arg)
{
	struct udp *u = st;
	struct sockaddr_in sa;
	uint32_t len;
	int rc;

	(void)arg;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (multicast) {
		/* Bound to the group's port on any address, joined on lo. */
		sa.sin_addr.s_addr = htonl(INADDR_ANY);
	}
	if ((rc = vz_udp_bind(self, (struct sockaddr *)&sa, sizeof sa, 1, &u->a)) < 0)
		return rc;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((rc = vz_udp_bind(self, (struct sockaddr *)&sa, sizeof sa, 0, &u->b)) < 0)
		return rc;
	len = sizeof u->aaddr;
	if ((rc = vz_io_local_addr(self, u->a, (struct sockaddr *)&u->aaddr, &len)) < 0)
		return rc;
	len = sizeof u->baddr;
	if ((rc = vz_io_local_addr(self, u->b, (struct sockaddr *)&u->baddr, &len)) < 0)
		return rc;
	if (multicast) {
		struct sockaddr_in g = u->aaddr;
		struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};

		inet_pton(AF_INET, GROUP, &g.sin_addr);
		rc = vz_udp_join(self, u->a, (struct sockaddr *)&g, sizeof g, if_nametoindex("lo"));
		if (rc < 0)
			return rc;
		/* Send to the group out of lo (raw fd for the socket option). */
		if (setsockopt(vz_io_fileno(self, u->b), IPPROTO_IP, IP_MULTICAST_IF, &lo,
			       sizeof lo) < 0)
			return VZ_EIO;
		u->aaddr = g;
	} else {
		u->aaddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if ((rc = vz_io_recvfrom(self, u->a, NULL, NULL)) < 0)
		return rc;
	for (unsigned i = 0; i < (multicast ? 20u : NDGRAM); i++) {
		uint32_t v = i;

		rc = vz_io_sendto(self, u->b, &v, sizeof v, (struct sockaddr *)&u->aaddr,
				  sizeof u->aaddr, &(vz_io_req){.flags = VZ_IO_QUIET}, NULL);
		if (rc == VZ_EFULL)
			break; /* 64 in flight: the rest after the first ones land */
		if (rc < 0)
			return rc;
		u->sent_final++;
	}
	return 0;
}

static void udp_receive(vz_actor *self, void *st, const vz_msg *m)
{
	struct udp *u = st;
	const vz_io_event *ev = vz_io_event_of(m);
	uint32_t v;

	if (!ev)
		return;
	if (ev->kind == VZ_IO_SENDTO) {
		CHECK(!"a quiet datagram send failed");
		return;
	}
	CHECK(ev->kind == VZ_IO_RECVFROM);
	CHECK(ev->flags & VZ_IO_EV_MORE);
	if (!(ev->flags & VZ_IO_EV_MORE))
		return;
	CHECK(ev->len == sizeof v && ev->peer && ev->peer_len == sizeof(struct sockaddr_in));
	if (ev->peer) {
		const struct sockaddr_in *p = (const void *)ev->peer;

		CHECK(p->sin_port == u->baddr.sin_port);
	}
	memcpy(&v, ev->data, sizeof v);
	CHECK(v < NDGRAM && !u->seen[v]);
	if (v < NDGRAM)
		u->seen[v] = true;
	u->got++;
	if (multicast) {
		atomic_store(&mcast_recvd, (int)u->got);
		return;
	}
	/* Keep the sender busy: one more for every one that landed. */
	if (u->sent_final < NDGRAM) {
		uint32_t w = u->sent_final++;

		CHECK(vz_io_sendto(self, u->b, &w, sizeof w, (struct sockaddr *)&u->aaddr,
				   sizeof u->aaddr, &(vz_io_req){.flags = VZ_IO_QUIET}, NULL) == 0);
	}
	if (u->got == NDGRAM)
		atomic_store(&done, 1);
}

static const vz_actor_spec udp_spec = {
    .name = "udp",
    .state_size = sizeof(struct udp),
    .init = udp_init,
    .receive = udp_receive,
};

static vz_runtime *run(int *spawn_rc)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_reset_fails();
	atomic_store(&done, 0);
	atomic_store(&mcast_recvd, 0);
	vz_test_config(&cfg, 1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	*spawn_rc = vz_spawn(rt, 0, &udp_spec, NULL, NULL);
	assert_int_equal(vz_runtime_start(rt), 0);
	return rt;
}

static void test_unicast(void **state)
{
	unsigned fds = vz_test_count_entries("/proc/self/fd");
	vz_shard_stats t;
	vz_runtime *rt;
	int rc;

	(void)state;
	multicast = false;
	rt = run(&rc);
	assert_int_equal(rc, 0);
	if (!vz_test_wait_flag((volatile int *)&done, 30.0)) {
		vz_test_assert_no_fails();
		fail_msg("datagrams never all arrived");
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	assert_int_equal(t.io_fds_open, 0);
	/* One submission per datagram sent; the receive is multishot on both
	 * backends, so its re-arms (buffers, mailbox cap) are few. */
	fprintf(stderr, "udp: %llu submissions for %d datagrams\n",
		(unsigned long long)t.io_submitted, NDGRAM);
	assert_true(t.io_submitted < NDGRAM + NDGRAM / 2);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds);
}

/* Multicast on lo: 0 when it worked, else a reason to skip. */
static const char *try_multicast(void)
{
	unsigned fds = vz_test_count_entries("/proc/self/fd");
	vz_runtime *rt;
	const char *why = NULL;
	int rc;

	multicast = true;
	if (if_nametoindex("lo") == 0)
		return "no loopback interface";
	rt = run(&rc);
	if (rc < 0) {
		why = rc == VZ_ENODEV || rc == VZ_EACCES || rc == VZ_EINVAL || rc == VZ_EIO
			  ? "cannot join or send to a multicast group on lo"
			  : NULL;
		if (!why) {
			fprintf(stderr, "multicast spawn failed: %s\n", vz_strerror(rc));
			why = "multicast setup failed";
		}
	} else {
		uint64_t end = vz_test_now_ns() + 3000000000ull;

		while (atomic_load(&mcast_recvd) < 20 && vz_test_now_ns() < end)
			usleep(1000);
		if (atomic_load(&mcast_recvd) == 0)
			why = "multicast datagrams on lo never arrived (host does not route them)";
		else if (atomic_load(&mcast_recvd) < 20)
			fprintf(stderr, "multicast: %d of 20 datagrams\n",
				atomic_load(&mcast_recvd));
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds);
	return why;
}

static void test_multicast(void **state)
{
	const char *why = try_multicast();

	(void)state;
	if (why) {
		fprintf(stderr, "skipped: %s\n", why);
		fflush(stderr);
		_exit(77);
	}
	assert_true(atomic_load(&mcast_recvd) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unicast),
	    cmocka_unit_test(test_multicast),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
