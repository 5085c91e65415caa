// SPDX-License-Identifier: MIT
/*
 * Actor TCP I/O when things go wrong, on every backend: the remote side is
 * driven by the test thread with plain blocking sockets, the local side is
 * one actor whose event handler each test sets. Cases: the peer resets
 * (VZ_ECONNRESET, os_errno ECONNRESET); the peer half-closes (data, then
 * end of stream, and our reply still reaches it); the peer vanishes in the
 * middle of a long response (every queued send gets exactly one final
 * event, failures among them); a reader that never reads fills its bounded
 * send queue (VZ_EFULL) while another connection of the same actor keeps
 * its ping-pong going; receive and accept timeouts; cancels racing data
 * (exactly one final event per operation, nothing after it); an injected
 * ECONNRESET; an actor stopped with an accept, receives and sends in
 * flight (its descriptors closed at once, counted in /proc/self/fd, the
 * peer sees end of stream, every receive buffer back); an event queued for
 * an actor that stops first (dropped, counted, its buffer returned); a
 * connection detached by a listener and adopted by an actor on another
 * shard.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aio/aio.h" /* VZ__AIO_NBUFS, the shard's backend: buffer leak checks */
#include "util/fault.h"

#define CHECK(cond) VZ_TEST_CHECK(cond)
#define NEVER_S	    30.0

enum { MSG_GO = VZ_MSG_USER };

#define MAXC 8

struct probe {
	vz_fd lfd;
	vz_io_op acc;
	vz_fd c[MAXC];
	vz_io_op rx[MAXC];
	unsigned nc;
	uint64_t recvd[MAXC];
	unsigned finals, sends_started, sends_final, send_fail, efull;
	int last_res, last_os;
	uint64_t aux;
};

/* What the current test does with events and with MSG_GO. */
static void (*on_event)(vz_actor *self, struct probe *p, const vz_io_event *ev);
static void (*on_go)(vz_actor *self, struct probe *p, const vz_msg *m);

static atomic_uint port;
static atomic_int step; /* progress flags the test thread waits for */
static atomic_int final_res;
static atomic_int final_os;
static atomic_int counter;

static void addr_lo(struct sockaddr_in *sa, unsigned p)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)p);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static int probe_init(vz_actor *self, void *st, const void *arg)
{
	struct probe *p = st;
	struct sockaddr_in sa;
	uint32_t len = sizeof sa;
	const vz_io_req *req = arg;

	addr_lo(&sa, 0);
	if (vz_tcp_listen(self, (struct sockaddr *)&sa, sizeof sa, NULL, &p->lfd) < 0)
		return VZ_EIO;
	if (vz_io_local_addr(self, p->lfd, (struct sockaddr *)&sa, &len) < 0)
		return VZ_EIO;
	atomic_store(&port, ntohs(sa.sin_port));
	return vz_io_accept(self, p->lfd, req, &p->acc);
}

static void probe_receive(vz_actor *self, void *st, const vz_msg *m)
{
	struct probe *p = st;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev) {
		if (vz_msg_type(m) == MSG_GO && on_go)
			on_go(self, p, m);
		return;
	}
	if (ev->kind == VZ_IO_ACCEPT && ev->res == 0 && p->nc < MAXC)
		p->c[p->nc++] = ev->accepted;
	on_event(self, p, ev);
}

static const vz_actor_spec probe_spec = {
    .name = "probe",
    .state_size = sizeof(struct probe),
    .init = probe_init,
    .receive = probe_receive,
};

/* ---- harness ------------------------------------------------------------- */

static unsigned fds_before;
static vz_ref probe_ref, blocker_ref;
static bool with_blocker, with_worker;
static vz_ref worker_ref;
static const vz_actor_spec worker_spec;
static const vz_actor_spec blocker_spec;

static vz_runtime *start(const vz_io_req *accept_req)
{
	vz_config cfg;
	vz_runtime *rt;

	vz_test_reset_fails();
	atomic_store(&step, 0);
	atomic_store(&counter, 0);
	atomic_store(&final_res, 1);
	atomic_store(&final_os, 0);
	on_go = NULL;
	fds_before = vz_test_count_entries("/proc/self/fd");
	vz_test_config(&cfg, with_worker ? 2 : 1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &probe_spec, accept_req, &probe_ref), 0);
	if (with_worker)
		assert_int_equal(vz_spawn(rt, 1, &worker_spec, NULL, &worker_ref), 0);
	if (with_blocker)
		assert_int_equal(vz_spawn(rt, 0, &blocker_spec, NULL, &blocker_ref), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	return rt;
}

/* Wait (bounded) until *v >= want. */
static int wait_ge(atomic_int *v, int want, double seconds)
{
	uint64_t end = vz_test_now_ns() + (uint64_t)(seconds * 1e9);

	while (atomic_load(v) < want) {
		if (vz_test_now_ns() > end)
			return 0;
		usleep(100);
	}
	return 1;
}

static void wait_step(int want)
{
	if (!wait_ge(&step, want, NEVER_S)) {
		vz_test_assert_no_fails();
		fail_msg("step %d never reached (at %d)", want, atomic_load(&step));
	}
}

static void finish(vz_runtime *rt)
{
	vz_shard_stats t;
	struct vz__shard *sh = NULL;

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	assert_int_equal(t.io_fds_open, 0);
	/* Every receive buffer is back (the backend lives until destroy). */
	sh = rt->shards[0];
	if (sh->aio && sh->aio->bufs_ready)
		assert_int_equal(vz__io_bufs_free(sh->io), VZ__AIO_NBUFS);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds_before);
}

static int client(void)
{
	struct sockaddr_in sa;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	assert_true(s >= 0);
	addr_lo(&sa, atomic_load(&port));
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
	(void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return s;
}

static void rst_close(int s)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	close(s);
}

static void write_all(int s, const void *buf, size_t len)
{
	const char *b = buf;

	while (len) {
		ssize_t n = write(s, b, len);

		assert_true(n > 0);
		b += n;
		len -= (size_t)n;
	}
}

/* Read exactly len bytes (or fail). */
static void read_all(int s, void *buf, size_t len)
{
	char *b = buf;

	while (len) {
		ssize_t n = read(s, b, len);

		assert_true(n > 0);
		b += n;
		len -= (size_t)n;
	}
}

/* ---- peer reset ------------------------------------------------------------ */

static void reset_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	if (ev->kind == VZ_IO_ACCEPT) {
		CHECK(vz_io_recv(self, ev->accepted, NULL, NULL) == 0);
		atomic_store(&step, 1);
	} else if (ev->kind == VZ_IO_RECV && (ev->flags & VZ_IO_EV_MORE)) {
		atomic_store(&step, 2);
	} else if (ev->kind == VZ_IO_RECV) {
		atomic_store(&final_os, ev->os_errno);
		atomic_store(&final_res, ev->res);
		CHECK(vz_io_close(self, ev->fd) == 0);
		atomic_store(&step, 3);
	}
	(void)p;
}

static void test_peer_reset(void **state)
{
	vz_runtime *rt;
	int s;

	(void)state;
	on_event = reset_ev;
	rt = start(NULL);
	s = client();
	wait_step(1);
	write_all(s, "hi", 2);
	wait_step(2);
	rst_close(s);
	wait_step(3);
	assert_int_equal(atomic_load(&final_res), VZ_ECONNRESET);
	assert_int_equal(atomic_load(&final_os), ECONNRESET);
	finish(rt);
}

/* ---- half-close ------------------------------------------------------------- */

static void half_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	if (ev->kind == VZ_IO_ACCEPT) {
		CHECK(vz_io_recv(self, ev->accepted, NULL, NULL) == 0);
	} else if (ev->kind == VZ_IO_RECV && (ev->flags & VZ_IO_EV_MORE)) {
		p->recvd[0] += ev->len;
	} else if (ev->kind == VZ_IO_RECV) {
		/* The peer is done sending; we still answer, then half-close
		 * and close (queued bytes go out first). */
		CHECK(ev->res == 0);
		CHECK(p->recvd[0] == 5);
		CHECK(vz_io_send(self, ev->fd, "reply", 5, NULL, NULL) == 0);
		CHECK(vz_io_shutdown(self, ev->fd, SHUT_WR) == 0);
		CHECK(vz_io_send(self, ev->fd, "x", 1, NULL, NULL) == VZ_EPIPE);
	} else if (ev->kind == VZ_IO_SEND) {
		CHECK(ev->res == 5);
		CHECK(vz_io_close(self, ev->fd) == 0);
		atomic_store(&step, 1);
	}
}

static void test_half_close(void **state)
{
	vz_runtime *rt;
	char buf[8];
	int s;

	(void)state;
	on_event = half_ev;
	rt = start(NULL);
	s = client();
	write_all(s, "hello", 5);
	assert_int_equal(shutdown(s, SHUT_WR), 0);
	read_all(s, buf, 5);
	assert_memory_equal(buf, "reply", 5);
	assert_int_equal(read(s, buf, sizeof buf), 0); /* then end of stream */
	wait_step(1);
	close(s);
	finish(rt);
}

/* ---- the peer vanishes in the middle of a long response ---------------------- */

#define BIG_SENDS 64
#define BIG_LEN	  (256u << 10)

static void vanish_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	static unsigned char blob[BIG_LEN];

	if (ev->kind == VZ_IO_ACCEPT) {
		CHECK(vz_io_set_sendq_limit(self, ev->accepted, (size_t)BIG_SENDS * BIG_LEN) == 0);
		for (unsigned i = 0; i < BIG_SENDS; i++) {
			CHECK(vz_io_send(self, ev->accepted, blob, BIG_LEN, NULL, NULL) == 0);
			p->sends_started++;
		}
		atomic_store(&step, 1);
	} else if (ev->kind == VZ_IO_SEND) {
		CHECK(!(ev->flags & VZ_IO_EV_MORE));
		p->sends_final++;
		if (ev->res < 0) {
			CHECK(ev->res == VZ_ECONNRESET || ev->res == VZ_EPIPE);
			p->send_fail++;
		} else {
			CHECK(ev->res == (int)BIG_LEN);
		}
		if (p->sends_final == p->sends_started) {
			CHECK(p->send_fail > 0);
			CHECK(vz_io_close(self, ev->fd) == 0);
			atomic_store(&step, 2);
		}
	}
}

static void test_peer_vanishes(void **state)
{
	vz_runtime *rt;
	static char buf[1 << 16];
	int s;

	(void)state;
	on_event = vanish_ev;
	rt = start(NULL);
	s = client();
	wait_step(1);
	read_all(s, buf, sizeof buf); /* a little of the response */
	rst_close(s);
	wait_step(2);
	finish(rt);
}

/* ---- a reader that never reads, next to one that does ------------------------ */

static void slow_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	static unsigned char blob[16384];

	if (ev->kind == VZ_IO_ACCEPT) {
		if (p->nc == 1) {
			/* Connection 0: flood it until its queue refuses. */
			int rc;

			CHECK(vz_io_set_sendq_limit(self, ev->accepted, 256u << 10) == 0);
			while ((rc = vz_io_send(self, ev->accepted, blob, sizeof blob,
						&(vz_io_req){.flags = VZ_IO_QUIET}, NULL)) == 0)
				p->sends_started++;
			CHECK(rc == VZ_EFULL);
			CHECK(vz_io_sendq_bytes(self, ev->accepted) >= (long)(256u << 10) - 16384);
			atomic_store(&step, 1);
		} else {
			CHECK(vz_io_recv(self, ev->accepted, NULL, NULL) == 0);
		}
	} else if (ev->kind == VZ_IO_RECV && (ev->flags & VZ_IO_EV_MORE)) {
		/* Connection 1: echo (ping-pong driven by the test). */
		CHECK(vz_io_send(self, ev->fd, ev->data, ev->len,
				 &(vz_io_req){.flags = VZ_IO_QUIET}, NULL) == 0);
	} else if (ev->kind == VZ_IO_RECV) {
		CHECK(vz_io_close(self, ev->fd) == 0);
		CHECK(vz_io_abort(self, p->c[0]) == 0);
		atomic_store(&step, 2);
	}
}

static void test_slow_reader(void **state)
{
	vz_runtime *rt;
	vz_shard_stats t;
	int slow, fast;

	(void)state;
	on_event = slow_ev;
	rt = start(NULL);
	slow = client();
	wait_step(1);
	fast = client();
	for (int i = 0; i < 200; i++) {
		char b[4] = {(char)i, 1, 2, 3}, r[4];

		write_all(fast, b, sizeof b);
		read_all(fast, r, sizeof r);
		assert_memory_equal(b, r, sizeof b);
	}
	close(fast);
	wait_step(2);
	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	assert_true(t.io_sendq_full >= 1);
	close(slow);
	finish(rt);
}

/* ---- timeouts ----------------------------------------------------------------- */

static void timeout_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	(void)p;
	if (ev->kind == VZ_IO_ACCEPT && (ev->flags & VZ_IO_EV_MORE)) {
		CHECK(ev->res == 0);
		CHECK(vz_io_recv(self, ev->accepted,
				 &(vz_io_req){.tag = 7, .timeout_ns = 20 * 1000 * 1000},
				 NULL) == 0);
		return;
	}
	CHECK(!(ev->flags & VZ_IO_EV_MORE));
	CHECK(ev->res == VZ_ETIMEDOUT && ev->os_errno == 0);
	if (ev->kind == VZ_IO_RECV) {
		CHECK(ev->tag == 7);
		CHECK(vz_io_close(self, ev->fd) == 0);
	}
	atomic_fetch_add(&counter, 1);
}

/* A receive with no data times out; so does the accept (no connection for
 * its timeout after the first). */
static void test_timeouts(void **state)
{
	vz_runtime *rt;
	vz_io_req acc = {.timeout_ns = 300 * 1000 * 1000};
	int s;

	(void)state;
	on_event = timeout_ev;
	rt = start(&acc);
	s = client();
	if (!wait_ge(&counter, 2, NEVER_S))
		fail_msg("timeouts never came");
	vz_test_assert_no_fails();
	close(s);
	finish(rt);
}

/* ---- cancels racing data -------------------------------------------------------- */

static void race_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	if (ev->kind == VZ_IO_ACCEPT) {
		CHECK(vz_io_recv(self, ev->accepted, NULL, &p->rx[0]) == 0);
		p->aux = p->rx[0].id;
		/* Cancel before it ever reached the backend. */
		CHECK(vz_io_cancel(self, p->rx[0]) == 0);
		CHECK(vz_io_cancel(self, p->rx[0]) == 0); /* again: still not final, no-op */
		return;
	}
	CHECK(ev->kind == VZ_IO_RECV);
	CHECK(ev->op.id == p->aux); /* nothing after a final event */
	if (ev->flags & VZ_IO_EV_MORE) {
		p->recvd[0] += ev->len;
		return;
	}
	CHECK(ev->res == VZ_ECANCELED || ev->res == 0);
	CHECK(vz_io_cancel(self, ev->op) == VZ_ESTALE);
	p->finals++;
	if (p->finals == 300 || ev->res == 0) {
		CHECK(vz_io_close(self, ev->fd) == 0);
		atomic_store(&step, 1);
		return;
	}
	/* Next round: start a receive and cancel it after one event or at
	 * once, alternately, while the peer keeps writing. */
	CHECK(vz_io_recv(self, ev->fd, NULL, &p->rx[0]) == 0);
	p->aux = p->rx[0].id;
	if (p->finals % 2)
		CHECK(vz_io_cancel(self, p->rx[0]) == 0);
	else
		p->sends_started = 1; /* cancel on its first event */
}

static void race_ev_outer(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	race_ev(self, p, ev);
	if (ev->kind == VZ_IO_RECV && (ev->flags & VZ_IO_EV_MORE) && p->sends_started) {
		p->sends_started = 0;
		CHECK(vz_io_cancel(self, ev->op) == 0);
	}
}

static void test_cancel_races(void **state)
{
	vz_runtime *rt;
	char buf[512];
	int s;

	(void)state;
	on_event = race_ev_outer;
	rt = start(NULL);
	s = client();
	memset(buf, 'x', sizeof buf);
	/* Keep data coming while the actor starts and cancels receives. */
	while (!atomic_load(&step)) {
		if (write(s, buf, sizeof buf) < 0)
			break;
		usleep(50);
	}
	wait_step(1);
	close(s);
	finish(rt);
}

/* ---- injected ECONNRESET ------------------------------------------------------- */

static void test_injected_reset(void **state)
{
	vz_runtime *rt;
	int s;

	(void)state;
	on_event = reset_ev;
	rt = start(NULL);
	s = client();
	wait_step(1);
	vz__fault_arm(VZ_FAULT_IO_ECONNRESET, 0, 1);
	write_all(s, "hi", 2);
	wait_step(3);
	vz__fault_disarm_all();
	assert_int_equal(atomic_load(&final_res), VZ_ECONNRESET);
	assert_int_equal(atomic_load(&final_os), ECONNRESET);
	close(s);
	finish(rt);
}

/* ---- an actor stopped with operations in flight -------------------------------- */

static void busy_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	static unsigned char blob[65536];
	struct sockaddr_in sa;
	vz_fd out;

	if (ev->kind == VZ_IO_ACCEPT && ev->res == 0) {
		CHECK(vz_io_recv(self, ev->accepted, NULL, NULL) == 0);
		CHECK(vz_io_set_sendq_limit(self, ev->accepted, 8u << 20) == 0);
		for (int i = 0; i < 64; i++)
			CHECK(vz_io_send(self, ev->accepted, blob, sizeof blob, NULL, NULL) == 0);
		if (p->nc == 1) {
			/* A connect to ourselves in flight too. */
			addr_lo(&sa, atomic_load(&port));
			CHECK(vz_tcp_connect(self, (struct sockaddr *)&sa, sizeof sa, NULL, &out,
					     NULL) == 0);
		}
		if (p->nc == 2)
			atomic_store(&step, 1);
	}
}

static void test_stop_in_flight(void **state)
{
	vz_runtime *rt;
	vz_shard_stats t;
	char b;
	int s;

	(void)state;
	on_event = busy_ev;
	rt = start(NULL);
	s = client();
	write_all(s, "abc", 3);
	wait_step(1);
	assert_int_equal(vz_stop(rt, probe_ref), 0);
	/* The actor's side closes: the peer reads what it was sent, then
	 * end of stream or a reset (unsent bytes were dropped). */
	for (;;) {
		static char sink[1 << 16];
		ssize_t n = read(s, sink, sizeof sink);

		if (n <= 0)
			break;
	}
	/* Its descriptors are gone while the runtime still runs. Up to 30 s:
	 * under TSan on a loaded machine the actor's turns with 8 MiB of
	 * queued sends took 10 ms each and 2 s was seen to be too short. */
	for (int i = 0; i < 30000; i++) {
		assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
		if (t.io_fds_open == 0)
			break;
		usleep(1000);
	}
	assert_int_equal(t.io_fds_open, 0);
	assert_int_equal(t.actors_live, 0);
	(void)b;
	close(s);
	finish(rt);
}

/* ---- events for a stopped actor are dropped, buffers returned ---------------- */

static atomic_int blocker_go;

static void blocker_receive(vz_actor *self, void *st, const vz_msg *m)
{
	(void)self;
	(void)st;
	(void)m;
	/* Hold the shard (no reaping, no inbox) until the test says so. */
	atomic_store(&step, 2);
	while (!atomic_load(&blocker_go))
		usleep(100);
}

static const vz_actor_spec blocker_spec = {.name = "blocker", .receive = blocker_receive};

static void drop_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	(void)p;
	if (ev->kind == VZ_IO_ACCEPT) {
		CHECK(vz_io_recv(self, ev->accepted, NULL, NULL) == 0);
		atomic_store(&step, 1);
	} else if (ev->kind == VZ_IO_RECV) {
		CHECK(!"the event should have been dropped with its stopped actor");
	}
}

/* The probe's receive event is queued in its mailbox (the shard reaps it
 * after the blocker's run) and its stop request arrives with the next
 * turn's inbox: the event is dropped, counted, and its buffer returned. */
static void test_event_dropped(void **state)
{
	vz_runtime *rt;
	vz_shard_stats t;
	int s;

	(void)state;
	on_event = drop_ev;
	atomic_store(&blocker_go, 0);
	with_blocker = true;
	rt = start(NULL);
	with_blocker = false;
	s = client();
	wait_step(1);
	assert_int_equal(vz_post(rt, blocker_ref, MSG_GO, NULL, 0), 0);
	wait_step(2);
	write_all(s, "data", 4);
	usleep(20000); /* on the wire; the shard is held, nothing reaps it yet */
	assert_int_equal(vz_stop(rt, probe_ref), 0);
	atomic_store(&blocker_go, 1);
	for (int i = 0; i < 5000; i++) {
		assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
		if (t.actors_live == 1)
			break;
		usleep(1000);
	}
	assert_int_equal(t.actors_live, 1);
	/* The queued data event, and the final events of its receive and
	 * its accept, which its stop cancelled. */
	assert_int_equal(t.io_events_dropped, 3);
	assert_int_equal(t.io_fds_open, 0);
	close(s);
	finish(rt); /* also: every receive buffer back */
}

/* ---- a connection handed to an actor on another shard ------------------------- */

static void handoff_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	int raw = -1;

	(void)p;
	if (ev->kind != VZ_IO_ACCEPT || ev->res < 0)
		return;
	/* Busy handles cannot leave: an operation is in flight. */
	CHECK(vz_io_recv(self, ev->accepted, NULL, &p->rx[0]) == 0);
	CHECK(vz_io_detach(self, ev->accepted, &raw) == VZ_EBUSY);
	CHECK(vz_io_cancel(self, p->rx[0]) == 0);
}

static void handoff_final(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	int raw = -1;

	handoff_ev(self, p, ev);
	if (ev->kind == VZ_IO_RECV && !(ev->flags & VZ_IO_EV_MORE)) {
		/* Its receive has ended: now the descriptor may go. */
		CHECK(vz_io_detach(self, ev->fd, &raw) == 0);
		CHECK(vz_io_fileno(self, ev->fd) == VZ_ESTALE);
		CHECK(vz_send(self, worker_ref, MSG_GO, &raw, sizeof raw) == 0);
	}
}

static int worker_init(vz_actor *self, void *st, const void *arg)
{
	(void)self;
	(void)st;
	(void)arg;
	return 0;
}

static void worker_receive(vz_actor *self, void *st, const vz_msg *m)
{
	const vz_io_event *ev = vz_io_event_of(m);
	vz_fd *fd = st;
	int raw;

	if (!ev) {
		CHECK(vz_msg_len(m) == sizeof raw);
		memcpy(&raw, vz_msg_data(m), sizeof raw);
		CHECK(vz_io_adopt(self, raw, fd) == 0);
		CHECK(vz_io_recv(self, *fd, NULL, NULL) == 0);
		atomic_store(&step, 1);
		return;
	}
	if (ev->kind == VZ_IO_RECV && (ev->flags & VZ_IO_EV_MORE)) {
		CHECK(vz_io_send(self, ev->fd, ev->data, ev->len, NULL, NULL) == 0);
	} else if (ev->kind == VZ_IO_RECV) {
		CHECK(vz_io_close(self, ev->fd) == 0);
		atomic_store(&step, 2);
	}
}

static const vz_actor_spec worker_spec = {
    .name = "worker",
    .state_size = sizeof(vz_fd),
    .init = worker_init,
    .receive = worker_receive,
};

/* The listener on shard 0 detaches an accepted connection and the worker
 * on shard 1 adopts it and serves it. */
static void test_handoff(void **state)
{
	vz_runtime *rt;
	char b[3];
	int s;

	(void)state;
	on_event = handoff_final;
	with_worker = true;
	rt = start(NULL);
	with_worker = false;
	s = client();
	wait_step(1);
	write_all(s, "abc", 3);
	read_all(s, b, 3);
	assert_memory_equal(b, "abc", 3);
	close(s);
	wait_step(2);
	finish(rt);
}

/* ---- connect refused, with sends queued behind it -------------------------- */

static atomic_uint dead_port;

static void refused_go(vz_actor *self, struct probe *p, const vz_msg *m)
{
	struct sockaddr_in sa;
	vz_fd a, b;

	(void)m;
	addr_lo(&sa, atomic_load(&dead_port));
	/* a: its send waits for the connect and fails with its error. */
	CHECK(vz_tcp_connect(self, (struct sockaddr *)&sa, sizeof sa, NULL, &a, NULL) == 0);
	CHECK(vz_io_send(self, a, "x", 1, NULL, NULL) == 0);
	/* b: closed at once with a send queued: nothing may leak. */
	CHECK(vz_tcp_connect(self, (struct sockaddr *)&sa, sizeof sa, NULL, &b, NULL) == 0);
	CHECK(vz_io_send(self, b, "y", 1, NULL, NULL) == 0);
	CHECK(vz_io_close(self, b) == 0);
	p->aux = b.id;
}

static void refused_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	CHECK(ev->kind == VZ_IO_CONNECT || ev->kind == VZ_IO_SEND);
	if (ev->fd.id == p->aux) {
		/* The closed one: its connect cancelled (or refused first),
		 * its send failed either way. */
		CHECK(ev->res == VZ_ECANCELED || ev->res == VZ_ECONNREFUSED ||
		      ev->res == VZ_ENOTCONN);
	} else {
		CHECK(ev->res == VZ_ECONNREFUSED && ev->os_errno == ECONNREFUSED);
		if (ev->kind == VZ_IO_CONNECT)
			CHECK(vz_io_close(self, ev->fd) == 0);
	}
	if (atomic_fetch_add(&counter, 1) + 1 == 4)
		atomic_store(&step, 1);
}

static void test_connect_refused(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	vz_runtime *rt;
	int s;

	(void)state;
	/* A port nobody listens on: bound, then closed. */
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	addr_lo(&sa, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	atomic_store(&dead_port, ntohs(sa.sin_port));
	close(s);
	on_event = refused_ev;
	rt = start(NULL);
	on_go = refused_go;
	assert_int_equal(vz_post(rt, probe_ref, MSG_GO, NULL, 0), 0);
	wait_step(1);
	finish(rt);
}

/* ---- receive buffers kept past the receive call ------------------------------ */

static vz_io_buf kept[4];
static const unsigned char *kept_data[4];

static void keep_ev(vz_actor *self, struct probe *p, const vz_io_event *ev)
{
	if (ev->kind == VZ_IO_ACCEPT) {
		CHECK(vz_io_recv(self, ev->accepted, NULL, NULL) == 0);
		atomic_store(&step, 1);
		return;
	}
	if (ev->kind != VZ_IO_RECV || !(ev->flags & VZ_IO_EV_MORE))
		return;
	if (p->finals < 3) {
		/* Keep the first three chunks: their bytes stay put. */
		CHECK(ev->len == 1);
		kept_data[p->finals] = ev->data;
		p->finals++;
		atomic_store(&step, 1 + (int)p->finals);
		return;
	}
	/* The fourth: check the kept ones, give two back, keep one until
	 * the actor stops (its stop returns it). */
	for (unsigned i = 0; i < 3; i++)
		CHECK(kept_data[i][0] == (unsigned char)('a' + i));
	CHECK(vz_io_buf_release(self, kept[0]) == 0);
	CHECK(vz_io_buf_release(self, kept[0]) == VZ_ESTALE);
	CHECK(vz_io_buf_release(self, kept[1]) == 0);
	atomic_store(&step, 10);
}

static void keep_receive(vz_actor *self, void *st, const vz_msg *m)
{
	struct probe *p = st;
	const vz_io_event *ev = vz_io_event_of(m);
	unsigned before = p->finals;

	if (ev && ev->kind == VZ_IO_RECV && (ev->flags & VZ_IO_EV_MORE) && before < 3) {
		CHECK(vz_io_buf_keep(self, m, &kept[before]) == 0);
		CHECK(vz_io_buf_keep(self, m, &kept[3]) == VZ_EBUSY);
	}
	if (ev && ev->kind == VZ_IO_ACCEPT && ev->res == 0 && p->nc < MAXC)
		p->c[p->nc++] = ev->accepted;
	if (ev)
		keep_ev(self, p, ev);
}

static const vz_actor_spec keep_spec = {
    .name = "keeper",
    .state_size = sizeof(struct probe),
    .init = probe_init,
    .receive = keep_receive,
};

static void test_keep_buffers(void **state)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref r;
	vz_shard_stats t;
	int s;

	(void)state;
	vz_test_reset_fails();
	atomic_store(&step, 0);
	fds_before = vz_test_count_entries("/proc/self/fd");
	vz_test_config(&cfg, 1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &keep_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	s = client();
	wait_step(1);
	for (int i = 0; i < 4; i++) {
		char c = (char)('a' + i);

		write_all(s, &c, 1);
		wait_step(i < 3 ? 2 + i : 10);
	}
	/* Stop it with one buffer still kept: the stop gives it back
	 * (finish() counts every buffer). */
	assert_int_equal(vz_stop(rt, r), 0);
	for (int i = 0; i < 5000; i++) {
		assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
		if (t.actors_live == 0)
			break;
		usleep(1000);
	}
	close(s);
	finish(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_peer_reset),	    cmocka_unit_test(test_half_close),
	    cmocka_unit_test(test_peer_vanishes),   cmocka_unit_test(test_slow_reader),
	    cmocka_unit_test(test_timeouts),	    cmocka_unit_test(test_cancel_races),
	    cmocka_unit_test(test_injected_reset),  cmocka_unit_test(test_stop_in_flight),
	    cmocka_unit_test(test_event_dropped),   cmocka_unit_test(test_handoff),
	    cmocka_unit_test(test_connect_refused), cmocka_unit_test(test_keep_buffers),
	};

	/* The test thread writes to connections the actors close or reset:
	 * a failed write must be an error, not a fatal signal. */
	signal(SIGPIPE, SIG_IGN);
	vz_test_watchdog(280);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
