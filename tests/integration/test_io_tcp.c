// SPDX-License-Identifier: MIT
/*
 * Actor TCP I/O end to end on loopback (include/veloz/io.h), on every
 * backend (the runner repeats it with io_uring, epoll and io_uring
 * forbidden by seccomp): an echo server and clients on real shard threads,
 * byte-exact round trips of small messages (also through a listener with
 * TCP_NODELAY, checked on each accepted socket) and of a transfer much larger
 * than one receive buffer or send chunk; many connections opened and
 * closed with the process's descriptors counted before and after
 * (VZ_STRESS_SCALE scales the count); the same echo with every send-queue
 * write cut to one byte (fault point) and with receive buffers reported
 * exhausted; accept hitting EMFILE (fault point) and serving on; an actor
 * stopped with an accept, a connect and a receive in flight.
 *
 * Checks on shard threads are recorded and asserted by the test thread;
 * time bounds are "never happened" bounds.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/fault.h"

#define CHECK(cond) VZ_TEST_CHECK(cond)
#define NEVER_S	    (getenv("VZ_TEST_NEVER_S") ? atof(getenv("VZ_TEST_NEVER_S")) : 60.0)

static atomic_int done;
static atomic_int server_ready;
static atomic_uint port_of_server;
static atomic_ulong accepted_total, emfile_events, shed_total;
/* The server's listener is made with vz_listen_opts.nodelay = listen_nodelay;
 * accepted connections whose TCP_NODELAY differs from it are counted. */
static bool listen_nodelay;
static atomic_ulong nodelay_wrong;

/* ---- echo server ----------------------------------------------------------- */

struct server {
	vz_fd lfd;
	vz_io_op acc;
	uint32_t accepted;
};

static void addr_lo(struct sockaddr_in *sa, unsigned port)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static int server_init(vz_actor *self, void *st, const void *arg)
{
	struct server *s = st;
	struct sockaddr_in sa;
	uint32_t len = sizeof sa;
	vz_listen_opts lo = {.backlog = 1024, .reuseport = 0, .nodelay = listen_nodelay};
	int rc;

	(void)arg;
	addr_lo(&sa, 0);
	rc = vz_tcp_listen(self, (struct sockaddr *)&sa, sizeof sa, &lo, &s->lfd);
	if (rc < 0)
		return rc;
	rc = vz_io_local_addr(self, s->lfd, (struct sockaddr *)&sa, &len);
	if (rc < 0)
		return rc;
	atomic_store(&port_of_server, ntohs(sa.sin_port));
	rc = vz_io_accept(self, s->lfd, NULL, &s->acc);
	if (rc < 0)
		return rc;
	atomic_store(&server_ready, 1);
	return 0;
}

static void server_receive(vz_actor *self, void *st, const vz_msg *m)
{
	struct server *s = st;
	const vz_io_event *ev = vz_io_event_of(m);
	int rc;

	if (!ev)
		return;
	switch (ev->kind) {
	case VZ_IO_ACCEPT:
		CHECK(ev->flags & VZ_IO_EV_MORE);
		if (ev->res == VZ_EMFILE) {
			atomic_fetch_add(&emfile_events, 1);
			return;
		}
		CHECK(ev->res == 0);
		if (ev->res < 0)
			return;
		s->accepted++;
		atomic_fetch_add(&accepted_total, 1);
		{
			int v = -1;
			socklen_t vl = sizeof v;

			/* Inherited from the listener, with no setsockopt here. */
			CHECK(getsockopt(vz_io_fileno(self, ev->accepted), IPPROTO_TCP, TCP_NODELAY,
					 &v, &vl) == 0);
			if ((v != 0) != listen_nodelay)
				atomic_fetch_add(&nodelay_wrong, 1);
		}
		/* Echo everything even if the client reads late. */
		CHECK(vz_io_set_sendq_limit(self, ev->accepted, 64u << 20) == 0);
		rc = vz_io_recv(self, ev->accepted, NULL, NULL);
		CHECK(rc == 0);
		break;
	case VZ_IO_RECV:
		if (ev->flags & VZ_IO_EV_MORE) {
			vz_io_req q = {.flags = VZ_IO_QUIET};

			CHECK(ev->len > 0 && ev->data && (ev->flags & VZ_IO_EV_BUF));
			rc = vz_io_send(self, ev->fd, ev->data, ev->len, &q, NULL);
			CHECK(rc == 0);
			return;
		}
		/* End of stream (or the client's reset): close our side. */
		CHECK(ev->res == 0 || ev->res == VZ_ECONNRESET);
		CHECK(vz_io_close(self, ev->fd) == 0);
		break;
	case VZ_IO_SEND:
		/* Quiet sends report only failures: a client that closed
		 * early. */
		CHECK(ev->res == VZ_EPIPE || ev->res == VZ_ECONNRESET || ev->res == VZ_ECANCELED);
		break;
	default:
		CHECK(!"unexpected event kind at the server");
	}
}

static const vz_actor_spec server_spec = {
    .name = "echo-server",
    .state_size = sizeof(struct server),
    .init = server_init,
    .receive = server_receive,
};

/* ---- clients ------------------------------------------------------------- */

#define MAXPAR 64

struct client_arg {
	unsigned port;
	unsigned nconn;	 /* connections in all */
	unsigned par;	 /* open at once */
	unsigned rounds; /* messages per connection */
	unsigned msglen;
	bool early; /* receive and first send right after connect, before its event */
};

struct conn {
	vz_fd fd;
	uint64_t sent, recvd; /* stream offsets */
	unsigned round;
	bool used;
};

struct client {
	struct client_arg arg;
	struct conn c[MAXPAR];
	unsigned started, finished;
	unsigned char buf[1 << 16];
};

static unsigned char pattern(uint64_t off, unsigned msglen)
{
	return (unsigned char)((off / msglen) * 31u + (off % msglen) * 7u + 1u);
}

static struct conn *find(struct client *c, vz_fd fd)
{
	for (unsigned i = 0; i < MAXPAR; i++)
		if (c->c[i].used && c->c[i].fd.id == fd.id)
			return &c->c[i];
	return NULL;
}

static void send_round(vz_actor *self, struct client *c, struct conn *k);

static void open_one(vz_actor *self, struct client *c)
{
	struct sockaddr_in sa;

	for (unsigned i = 0; i < MAXPAR; i++) {
		struct conn *k = &c->c[i];
		int rc;

		if (k->used)
			continue;
		addr_lo(&sa, c->arg.port);
		memset(k, 0, sizeof *k);
		rc = vz_tcp_connect(self, (struct sockaddr *)&sa, sizeof sa, NULL, &k->fd, NULL);
		CHECK(rc == 0);
		if (rc < 0)
			return;
		k->used = true;
		c->started++;
		if (c->arg.early) {
			CHECK(vz_io_recv(self, k->fd, NULL, NULL) == 0);
			CHECK(vz_io_set_sendq_limit(self, k->fd, 2u * c->arg.msglen) == 0);
			send_round(self, c, k);
		}
		return;
	}
	CHECK(!"no free connection slot");
}

static void send_round(vz_actor *self, struct client *c, struct conn *k)
{
	unsigned n = c->arg.msglen;

	for (unsigned i = 0; i < n; i++)
		c->buf[i % sizeof c->buf] = pattern(k->sent + i, n);
	/* Messages longer than the scratch buffer go in pieces. */
	for (unsigned off = 0; off < n;) {
		unsigned piece = n - off < sizeof c->buf ? n - off : (unsigned)sizeof c->buf;
		vz_io_req q = {.flags = VZ_IO_QUIET};

		for (unsigned i = 0; i < piece; i++)
			c->buf[i] = pattern(k->sent + i, n);
		CHECK(vz_io_send(self, k->fd, c->buf, piece, &q, NULL) == 0);
		k->sent += piece;
		off += piece;
	}
}

static void conn_done(vz_actor *self, struct client *c, struct conn *k)
{
	CHECK(vz_io_close(self, k->fd) == 0);
	k->used = false;
	c->finished++;
	if (c->started < c->arg.nconn)
		open_one(self, c);
	else if (c->finished == c->arg.nconn)
		atomic_store(&done, 1);
}

static int client_init(vz_actor *self, void *st, const void *arg)
{
	struct client *c = st;

	memcpy(&c->arg, arg, sizeof c->arg);
	for (unsigned i = 0; i < c->arg.par && i < c->arg.nconn; i++)
		open_one(self, c);
	return 0;
}

static void client_receive(vz_actor *self, void *st, const vz_msg *m)
{
	struct client *c = st;
	const vz_io_event *ev = vz_io_event_of(m);
	struct conn *k;

	if (!ev)
		return;
	k = find(c, ev->fd);
	if (!k) {
		/* The final event of a receive on a connection we closed. */
		CHECK(ev->kind == VZ_IO_RECV && !(ev->flags & VZ_IO_EV_MORE));
		CHECK(ev->res == VZ_ECANCELED || ev->res == 0);
		return;
	}
	switch (ev->kind) {
	case VZ_IO_CONNECT:
		CHECK(ev->res == 0);
		if (ev->res < 0) {
			conn_done(self, c, k);
			return;
		}
		if (c->arg.early)
			break; /* already receiving and sending */
		CHECK(vz_io_recv(self, k->fd, NULL, NULL) == 0);
		CHECK(vz_io_set_sendq_limit(self, k->fd, 2u * c->arg.msglen) == 0);
		send_round(self, c, k);
		break;
	case VZ_IO_RECV: {
		const unsigned char *p = ev->data;
		uint64_t want = (uint64_t)c->arg.rounds * c->arg.msglen;

		if (!(ev->flags & VZ_IO_EV_MORE)) {
			/* The server shed this connection (accept hit EMFILE
			 * and closed it): allowed, counted. */
			CHECK(ev->res == 0 || ev->res == VZ_ECONNRESET);
			atomic_fetch_add(&shed_total, 1);
			conn_done(self, c, k);
			return;
		}
		for (uint32_t i = 0; i < ev->len; i++)
			if (p[i] != pattern(k->recvd + i, c->arg.msglen)) {
				CHECK(!"echoed byte differs");
				break;
			}
		k->recvd += ev->len;
		CHECK(k->recvd <= want);
		if (k->recvd == want) {
			conn_done(self, c, k);
		} else if (k->recvd == k->sent) {
			k->round++;
			send_round(self, c, k);
		}
		break;
	}
	default:
		CHECK(!"unexpected event kind at a client");
	}
}

static const vz_actor_spec client_spec = {
    .name = "echo-client",
    .state_size = sizeof(struct client),
    .init = client_init,
    .receive = client_receive,
};

/* ---- harness ------------------------------------------------------------- */

static unsigned fds_before;

static vz_runtime *start_rt(unsigned shards)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_reset_fails();
	atomic_store(&done, 0);
	atomic_store(&server_ready, 0);
	atomic_store(&accepted_total, 0);
	atomic_store(&emfile_events, 0);
	atomic_store(&shed_total, 0);
	atomic_store(&nodelay_wrong, 0);
	fds_before = vz_test_count_entries("/proc/self/fd");
	vz_test_config(&cfg, shards);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	return rt;
}

static void finish(vz_runtime *rt)
{
	vz_shard_stats t;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	assert_int_equal(t.io_fds_open, 0);
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
	/* Every socket, ring, eventfd and epoll fd is gone. */
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds_before);
}

static void run_echo(unsigned shards, const struct client_arg *ca_in)
{
	vz_runtime *rt = start_rt(shards);
	struct client_arg ca = *ca_in;

	assert_int_equal(vz_spawn(rt, 0, &server_spec, NULL, NULL), 0);
	ca.port = atomic_load(&port_of_server);
	assert_int_equal(vz_spawn(rt, shards - 1, &client_spec, &ca, NULL), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	if (!vz_test_wait_flag((volatile int *)&done, NEVER_S)) {
		vz_shard_stats t;

		for (unsigned i = 0; i < shards; i++) {
			vz_stats_shard(rt, i, &t);
			fprintf(stderr,
				"shard %u: sub %llu comp %llu ev %llu polls %llu sleeps %llu turns "
				"%llu\n",
				i, (unsigned long long)t.io_submitted,
				(unsigned long long)t.io_completed, (unsigned long long)t.io_events,
				(unsigned long long)t.io_busy_polls, (unsigned long long)t.sleeps,
				(unsigned long long)t.turns);
		}
		vz_stats_total(rt, &t, NULL);
		fprintf(
		    stderr,
		    "io: submitted %llu completed %llu events %llu dropped %llu nobuf %llu polls "
		    "%llu fds %llu accepted %lu\n",
		    (unsigned long long)t.io_submitted, (unsigned long long)t.io_completed,
		    (unsigned long long)t.io_events, (unsigned long long)t.io_events_dropped,
		    (unsigned long long)t.io_bufs_exhausted, (unsigned long long)t.io_busy_polls,
		    (unsigned long long)t.io_fds_open, atomic_load(&accepted_total));
		vz_test_assert_no_fails();
		fail_msg("echo did not finish");
	}
	vz_test_assert_no_fails();
	finish(rt);
}

/* Small round trips, one connection, client and server on one shard. */
static void test_echo_small(void **state)
{
	struct client_arg ca = {.nconn = 1, .par = 1, .rounds = 200, .msglen = 64};

	(void)state;
	run_echo(1, &ca);
}

/* A listener made with vz_listen_opts.nodelay hands out connections that
 * have TCP_NODELAY (set once on the listener, inherited by each accepted
 * socket, on every backend's accept); without it they do not. */
static void test_listen_nodelay(void **state)
{
	struct client_arg ca = {.nconn = 8, .par = 4, .rounds = 4, .msglen = 64};

	(void)state;
	listen_nodelay = true;
	run_echo(2, &ca);
	listen_nodelay = false;
	assert_int_equal(atomic_load(&accepted_total), ca.nconn);
	assert_int_equal(atomic_load(&nodelay_wrong), 0);
	/* and the default leaves Nagle on */
	run_echo(1, &ca);
	assert_int_equal(atomic_load(&accepted_total), ca.nconn);
	assert_int_equal(atomic_load(&nodelay_wrong), 0);
}

/* 4 MiB each way on two connections across two shards: many receive
 * buffers and send chunks per message. */
static void test_echo_large(void **state)
{
	struct client_arg ca = {.nconn = 2, .par = 2, .rounds = 2, .msglen = 2u << 20};

	(void)state;
	run_echo(2, &ca);
}

/* Many connections opened and closed, 64 at a time; fds counted. */
static void test_many_connections(void **state)
{
	struct client_arg ca = {
	    .nconn = (unsigned)vz_test_scale(10000), .par = 64, .rounds = 1, .msglen = 16};

	(void)state;
	run_echo(2, &ca);
	assert_int_equal(atomic_load(&accepted_total), ca.nconn);
	assert_int_equal(atomic_load(&shed_total), 0);
}

/* Every write of every send queue cut to one byte: the stream still
 * arrives whole and in order. */
static void test_short_writes(void **state)
{
	struct client_arg ca = {.nconn = 2, .par = 2, .rounds = 20, .msglen = 3000};

	(void)state;
	vz__fault_arm(VZ_FAULT_IO_SHORT_WRITE, 0, -1);
	run_echo(1, &ca);
	assert_true(vz__fault_fired(VZ_FAULT_IO_SHORT_WRITE) > 100);
	vz__fault_disarm_all();
}

/* Receives find no buffer now and then: they wait, never end. */
static void test_enobufs(void **state)
{
	struct client_arg ca = {.nconn = 4, .par = 4, .rounds = 50, .msglen = 100};
	vz_runtime *rt;
	vz_shard_stats t;

	(void)state;
	/* Every third arm of a receive finds the buffers "exhausted". */
	vz__fault_arm(VZ_FAULT_IO_ENOBUFS, 2, 40);
	rt = start_rt(1);
	assert_int_equal(vz_spawn(rt, 0, &server_spec, NULL, NULL), 0);
	ca.port = atomic_load(&port_of_server);
	assert_int_equal(vz_spawn(rt, 0, &client_spec, &ca, NULL), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	if (!vz_test_wait_flag((volatile int *)&done, NEVER_S)) {
		vz_test_assert_no_fails();
		fail_msg("echo did not finish");
	}
	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	assert_true(t.io_bufs_exhausted > 0);
	vz__fault_disarm_all();
	finish(rt);
}

/* accept() runs out of descriptors: the server hears VZ_EMFILE (not
 * final), pauses, and accepts every connection after all. */
static void test_accept_emfile(void **state)
{
	struct client_arg ca = {.nconn = 8, .par = 8, .rounds = 1, .msglen = 10};

	(void)state;
	/* The listener and the 8 client sockets pass; then 3 accepts fail. */
	vz__fault_arm(VZ_FAULT_SOCKET_EMFILE, 9, 3);
	run_echo(1, &ca);
	/* Each EMFILE sheds the connection the kernel had queued (its
	 * client sees end of stream or a reset) and the rest are served. */
	assert_int_equal(atomic_load(&emfile_events), 3);
	assert_int_equal(atomic_load(&shed_total), 3);
	assert_int_equal(atomic_load(&accepted_total), ca.nconn - 3);
	vz__fault_disarm_all();
}

/* Receive and send queued on a connection before its connect completed
 * (even before the runtime started, for the first ones): they wait for it. */
static void test_send_before_connected(void **state)
{
	struct client_arg ca = {.nconn = 16, .par = 8, .rounds = 5, .msglen = 200, .early = true};

	(void)state;
	run_echo(2, &ca);
	assert_int_equal(atomic_load(&accepted_total), ca.nconn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_echo_small),	  cmocka_unit_test(test_listen_nodelay),
	    cmocka_unit_test(test_echo_large),	  cmocka_unit_test(test_many_connections),
	    cmocka_unit_test(test_short_writes),  cmocka_unit_test(test_enobufs),
	    cmocka_unit_test(test_accept_emfile), cmocka_unit_test(test_send_before_connected),
	};

	vz_test_watchdog(280);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
