// SPDX-License-Identifier: MIT
/*
 * The simulation's in-memory network, case by case: a connect with no
 * listener is refused, an abort reaches the peer as a reset and a close
 * as an end of stream, files and multicast are refused with VZ_ENOSYS, a
 * real descriptor cannot be adopted, and no real descriptor is opened at
 * all. Then a planted bug (a client that expects its whole echo in one
 * receive event) found by running seeds, and replayed from the seed that
 * found it. The many-seed runs of the echo server are stress_sim_net.c.
 *
 * VZ_TEST_BACKEND_INDEPENDENT: one thread drives the simulated backend.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <veloz/io.h>

#include "net/echo.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

static void sim_cfg(vz_config *cfg, unsigned nshards)
{
	vz_config_default(cfg);
	cfg->nshards = nshards;
}

static struct sockaddr_in loop_addr(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

/* ---- one client, one server: what each end sees ----------------------------- */

enum { SRV_ABORT = 1, SRV_CLOSE };

static struct {
	uint16_t port;
	int server_mode;
	int connect_res, recv_final, open_res, join_rc, adopt_rc;
	uint32_t got;
	int fds_during;
} T;

struct srv {
	vz_fd l, c;
};

static int srv_init(vz_actor *self, void *state, const void *arg)
{
	struct srv *s = state;
	struct sockaddr_in a = loop_addr(0), got;
	uint32_t len = sizeof got;

	(void)arg;
	VZ_TEST_CHECK(vz_tcp_listen(self, (const struct sockaddr *)&a, sizeof a, NULL, &s->l) == 0);
	VZ_TEST_CHECK(vz_io_local_addr(self, s->l, (struct sockaddr *)&got, &len) == 0);
	T.port = ntohs(got.sin_port);
	/* A second listener on the port is refused, as bind(2) would. */
	a = loop_addr(T.port);
	VZ_TEST_CHECK(vz_tcp_listen(self, (const struct sockaddr *)&a, sizeof a, NULL, &s->c) ==
		      VZ_EADDRINUSE);
	return vz_io_accept(self, s->l, NULL, NULL);
}

static void srv_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct srv *s = state;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev)
		return;
	if (ev->kind == VZ_IO_ACCEPT && ev->res == 0) {
		s->c = ev->accepted;
		VZ_TEST_CHECK(vz_io_recv(self, s->c, NULL, NULL) == 0);
		return;
	}
	if (ev->kind == VZ_IO_RECV && ev->res > 0) {
		/* The first bytes: answer, then end the connection. */
		VZ_TEST_CHECK(vz_io_send(self, s->c, "bye", 3, NULL, NULL) == 0);
		if (T.server_mode == SRV_ABORT)
			VZ_TEST_CHECK(vz_io_abort(self, s->c) == 0);
		else
			VZ_TEST_CHECK(vz_io_close(self, s->c) == 0);
		VZ_TEST_CHECK(vz_io_close(self, s->l) == 0);
	}
}

static const vz_actor_spec srv_spec = {
    .name = "srv", .state_size = sizeof(struct srv), .init = srv_init, .receive = srv_receive};

struct cli {
	vz_fd fd;
};

static int cli_init(vz_actor *self, void *state, const void *arg)
{
	struct cli *c = state;
	struct sockaddr_in to = loop_addr(*(const uint16_t *)arg);

	VZ_TEST_CHECK(vz_file_open(self, "/etc/hostname", O_RDONLY, 0, NULL, NULL) == 0);
	T.adopt_rc = vz_io_adopt(self, 0, &c->fd);
	VZ_TEST_CHECK(
	    vz_tcp_connect(self, (const struct sockaddr *)&to, sizeof to, NULL, &c->fd, NULL) == 0);
	return vz_io_send(self, c->fd, "hello", 5, NULL, NULL);
}

static void cli_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct cli *c = state;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev)
		return;
	switch (ev->kind) {
	case VZ_IO_OPEN:
		T.open_res = ev->res;
		return;
	case VZ_IO_CONNECT:
		T.connect_res = ev->res;
		T.fds_during = count_fds();
		if (ev->res == 0)
			VZ_TEST_CHECK(vz_io_recv(self, c->fd, NULL, NULL) == 0);
		else
			VZ_TEST_CHECK(vz_io_close(self, c->fd) == 0);
		return;
	case VZ_IO_RECV:
		if (ev->res > 0)
			T.got += ev->len;
		if (!(ev->flags & VZ_IO_EV_MORE)) {
			T.recv_final = ev->res;
			VZ_TEST_CHECK(vz_io_close(self, c->fd) == 0);
		}
		return;
	default:
		return;
	}
}

static const vz_actor_spec cli_spec = {
    .name = "cli", .state_size = sizeof(struct cli), .init = cli_init, .receive = cli_receive};

/* One run: a server (unless port is given) and a client; 0 on success. */
static void run_pair(uint64_t seed, int mode, uint16_t port)
{
	vz_config cfg;
	vz_sim_options opt;
	vz_sim *sim;
	vz_sim_stats st;
	vz_shard_stats tot;
	vz_ref r;
	int fds = count_fds();

	memset(&T, 0, sizeof T);
	T.connect_res = T.recv_final = T.open_res = 1;
	T.server_mode = mode;
	sim_cfg(&cfg, 2);
	vz_sim_options_default(&opt, seed);
	assert_int_equal(vz_sim_create(&cfg, &opt, &sim), 0);
	if (!port) {
		assert_int_equal(vz_spawn(vz_sim_runtime(sim), 0, &srv_spec, NULL, &r), 0);
		port = T.port;
		assert_true(port >= 32768); /* a virtual ephemeral port */
	}
	assert_int_equal(vz_spawn(vz_sim_runtime(sim), 1, &cli_spec, &port, &r), 0);
	assert_int_equal(vz_runtime_start(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_sim_run(sim, 100000, 0), 0);
	assert_int_equal(vz_runtime_stop(vz_sim_runtime(sim)), 0);
	assert_int_equal(vz_stats_total(vz_sim_runtime(sim), &tot, NULL), 0);
	assert_int_equal(vz_sim_stats_get(sim, &st), 0);
	assert_int_equal(tot.io_fds_open, 0);
	assert_int_equal(st.net_socks_open, 0);
	assert_int_equal(st.io_bufs_out, 0);
	assert_int_equal(vz_sim_destroy(sim), 0);
	/* Nothing real was opened, during the run or after. */
	assert_int_equal(T.fds_during, fds);
	assert_int_equal(count_fds(), fds);
	/* Files are not simulated; nor is adopting a real descriptor. */
	assert_int_equal(T.open_res, VZ_ENOSYS);
	assert_int_equal(T.adopt_rc, VZ_EINVAL);
}

static void test_refused(void **st)
{
	(void)st;
	vz_test_reset_fails();
	run_pair(1, 0, 40000);
	assert_int_equal(T.connect_res, VZ_ECONNREFUSED);
	vz_test_assert_no_fails();
}

static void test_abort_is_reset(void **st)
{
	(void)st;
	vz_test_reset_fails();
	for (uint64_t seed = 1; seed <= 20; seed++) {
		run_pair(seed, SRV_ABORT, 0);
		assert_int_equal(T.connect_res, 0);
		/* The abort drops the queued "bye" (or not, if it was written
		 * already); the reset always comes. */
		assert_int_equal(T.recv_final, VZ_ECONNRESET);
	}
	vz_test_assert_no_fails();
}

static void test_close_is_end_of_stream(void **st)
{
	(void)st;
	vz_test_reset_fails();
	for (uint64_t seed = 1; seed <= 20; seed++) {
		run_pair(seed, SRV_CLOSE, 0);
		assert_int_equal(T.connect_res, 0);
		assert_int_equal(T.got, 3); /* "bye", then end of stream */
		assert_int_equal(T.recv_final, 0);
	}
	vz_test_assert_no_fails();
}

/* ---- a planted bug: "a reply comes in one piece" ------------------------------ */

#define MSG_LEN 1500

static int bug_found;

struct naive {
	vz_fd fd;
};

static int naive_init(vz_actor *self, void *state, const void *arg)
{
	struct naive *n = state;
	struct sockaddr_in to = loop_addr(*(const uint16_t *)arg);
	unsigned char msg[MSG_LEN];

	memset(msg, 'x', sizeof msg);
	if (vz_tcp_connect(self, (const struct sockaddr *)&to, sizeof to, NULL, &n->fd, NULL) < 0)
		return -1;
	return vz_io_send(self, n->fd, msg, sizeof msg, NULL, NULL);
}

static void naive_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct naive *n = state;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev)
		return;
	if (ev->kind == VZ_IO_CONNECT && ev->res == 0) {
		vz_io_recv(self, n->fd, NULL, NULL);
	} else if (ev->kind == VZ_IO_RECV && ev->res > 0) {
		/* The bug: TCP is a byte stream, not a message stream. */
		if (ev->len != MSG_LEN)
			bug_found = 1;
		vz_io_close(self, n->fd);
	}
}

static const vz_actor_spec naive_spec = {.name = "naive",
					 .state_size = sizeof(struct naive),
					 .init = naive_init,
					 .receive = naive_receive};

static int planted(vz_sim *sim, void *ctx)
{
	vz_runtime *rt = vz_sim_runtime(sim);
	struct sockaddr_in any = loop_addr(0);
	vz_listener_opts lo = {.addr = (const struct sockaddr *)&any, .addrlen = sizeof any};
	vz_listener *l;
	vz_ref r;
	uint16_t port;
	int rc;

	(void)ctx;
	bug_found = 0;
	if (vz_echo_server_create(rt, &lo, &l) < 0)
		return 2;
	port = vz_listener_port(l);
	rc = vz_spawn(rt, 1, &naive_spec, &port, &r);
	if (rc == 0)
		rc = vz_runtime_start(rt);
	if (rc == 0)
		rc = vz_sim_run(sim, 100000, 0);
	vz_runtime_stop(rt);
	vz_listener_destroy(l);
	return rc < 0 ? 2 : bug_found;
}

static void test_planted_bug(void **st)
{
	vz_config cfg;
	vz_sim_options opt;
	vz_sim_test t = {"naive-client", planted, NULL, &cfg, &opt};
	vz_sim_result r, again;
	uint64_t seed;
	char seeds[] = "200", first[24];
	char *argv[] = {"test_sim_net", "--test", "naive-client", "--seeds", seeds, NULL};
	char *replay[] = {"test_sim_net", "--test", "naive-client", "--seed", first, NULL};

	(void)st;
	sim_cfg(&cfg, 2);
	vz_sim_options_default(&opt, 0);
	/* The swarm runner over 200 seeds stops at the first failure. */
	assert_int_equal(vz_sim_main(5, argv, &t, 1), 1);
	for (seed = 1; seed <= 200; seed++) {
		int rc = vz_sim_run_seed(&t, seed, &r);

		assert_int_equal(rc, r.status);
		assert_true(r.status == 0 || r.status == 1);
		if (r.status)
			break;
	}
	assert_true(seed <= 200);
	print_message("planted bug found at seed %llu (signature 0x%016llx)\n",
		      (unsigned long long)seed, (unsigned long long)r.signature);
	/* Replayed from its seed: the same failure, the same run. */
	assert_int_equal(vz_sim_run_seed(&t, seed, &again), 1);
	assert_int_equal(again.signature, r.signature);
	assert_int_equal(again.handled, r.handled);
	snprintf(first, sizeof first, "%llu", (unsigned long long)seed);
	assert_int_equal(vz_sim_main(5, replay, &t, 1), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_abort_is_reset),
	    cmocka_unit_test(test_close_is_end_of_stream),
	    cmocka_unit_test(test_planted_bug),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
