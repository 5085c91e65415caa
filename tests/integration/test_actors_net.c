// SPDX-License-Identifier: MIT
/*
 * The actors library's network servers end to end over loopback, with a
 * plain blocking-socket client on the test thread:
 *  - HTTP: keep-alive (several requests, one connection), 16 pipelined
 *    requests in one write, the required headers (Server, a well-formed
 *    Date, Content-Type, Content-Length) and body, HEAD, 404, 400 on
 *    garbage then close, 431 past the head limit then close,
 *    "Connection: close" and HTTP/1.0 without keep-alive close after the
 *    answer, HTTP/1.0 with keep-alive stays open; a client pipelining
 *    200,000 requests without reading is paused, not dropped, and gets
 *    every answer;
 *  - the listener spreading connections over two shards, in both modes
 *    (hand-off: exactly round-robin; SO_REUSEPORT: every connection served,
 *    counted per shard), each connection with TCP_NODELAY (inherited from
 *    the listening socket);
 *  - echo: bytes come back in order, from small writes and from a 32 MiB
 *    stream whose first part is written without reading until nothing
 *    moves (the echo's send queue fills: receiving paused, resumed once
 *    drained; stat io_sendq_full shows it happened).
 * Every case ends with the runtime stopped and no descriptor left open.
 * Runs per backend and under the seccomp launcher.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <veloz/io.h>

#include "http/server.h"
#include "net/echo.h"

#define NSHARDS 2

/* ---- a plain client ------------------------------------------------------ */

static int poll_retry(struct pollfd *p, int timeout_ms);

static int dial(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 20};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	/* a server that never answers fails the read, not the whole run */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		/* interrupted: the connect goes on; wait for its result */
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t len = sizeof err;

		assert_int_equal(errno, EINTR);
		assert_int_equal(poll_retry(&p, 20000), 1);
		assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
		assert_int_equal(err, 0);
	}
	return fd;
}

/* Blocking calls on this thread can return EINTR: seen under ASan with
 * io_uring shards in the process, though no handler but the watchdog's is
 * installed. A client retries them, as any client must. */
static ssize_t read_retry(int fd, void *p, size_t n)
{
	ssize_t r;

	do
		r = read(fd, p, n);
	while (r < 0 && errno == EINTR);
	return r;
}

static int poll_retry(struct pollfd *p, int timeout_ms)
{
	int r;

	do
		r = poll(p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static void write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		assert_true(w > 0);
		c += w;
		n -= (size_t)w;
	}
}

/* A connection whose receive buffer is small and fixed (no autotuning),
 * so a peer writing to it is held back soon. */
static int dial_small(uint16_t port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), sz = 65536;

	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz), 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};

		assert_int_equal(errno, EINTR);
		assert_int_equal(poll_retry(&p, 20000), 1);
	}
	return fd;
}

/* Buffered reader of HTTP responses. */
struct reader {
	int fd;
	char buf[65536];
	size_t len;
	int eof;
};

static int fill(struct reader *r)
{
	ssize_t n;

	if (r->len == sizeof r->buf)
		return 0;
	n = read_retry(r->fd, r->buf + r->len, sizeof r->buf - r->len);
	if (n <= 0) {
		r->eof = 1;
		return 0;
	}
	r->len += (size_t)n;
	return 1;
}

struct response {
	int status;
	char head[2048];
	char body[256];
	size_t body_len;
};

/* Read one response; 0 when the connection ended first. */
static int read_response(struct reader *r, struct response *out, int head_only)
{
	char *end, *cl;
	size_t hlen, blen = 0;

	for (;;) {
		end = memmem(r->buf, r->len, "\r\n\r\n", 4);
		if (end)
			break;
		if (!fill(r))
			return 0;
	}
	hlen = (size_t)(end - r->buf) + 4;
	assert_true(hlen < sizeof out->head);
	memcpy(out->head, r->buf, hlen);
	out->head[hlen] = 0;
	assert_int_equal(sscanf(out->head, "HTTP/1.1 %d ", &out->status), 1);
	cl = strstr(out->head, "\r\nContent-Length: ");
	assert_non_null(cl);
	if (!head_only)
		blen = (size_t)strtoul(cl + 18, NULL, 10);
	assert_true(blen < sizeof out->body);
	while (r->len < hlen + blen)
		if (!fill(r))
			return 0;
	memcpy(out->body, r->buf + hlen, blen);
	out->body_len = blen;
	memmove(r->buf, r->buf + hlen + blen, r->len - hlen - blen);
	r->len -= hlen + blen;
	return 1;
}

/* The connection ends (EOF) with nothing more after what was read. */
static void expect_eof(struct reader *r)
{
	while (fill(r))
		;
	assert_int_equal(r->len, 0);
	assert_true(r->eof);
}

static void check_hello(const struct response *rs)
{
	const char *d;
	char wday[4], mon[4];
	int day, year, h, m, s;

	assert_int_equal(rs->status, 200);
	assert_non_null(strstr(rs->head, "\r\nServer: veloz\r\n"));
	assert_non_null(strstr(rs->head, "\r\nContent-Type: text/plain\r\n"));
	assert_non_null(strstr(rs->head, "\r\nContent-Length: 13\r\n"));
	d = strstr(rs->head, "\r\nDate: ");
	assert_non_null(d);
	assert_int_equal(
	    sscanf(d + 8, "%3s, %d %3s %d %d:%d:%d GMT", wday, &day, mon, &year, &h, &m, &s), 7);
	assert_int_equal(d[8 + 3], ',');
	assert_true(year >= 2024 && day >= 1 && day <= 31 && h < 24 && m < 60 && s < 61);
	assert_int_equal(rs->body_len, 13);
	assert_memory_equal(rs->body, "Hello, World!", 13);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---- runtime around a server -------------------------------------------- */

static unsigned fds_open(vz_runtime *rt)
{
	vz_shard_stats st;

	assert_int_equal(vz_stats_total(rt, &st, NULL), 0);
	return (unsigned)st.io_fds_open;
}

static vz_runtime *make_runtime(void)
{
	vz_runtime *rt;
	vz_config cfg;

	vz_test_config(&cfg, NSHARDS);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	return rt;
}

static void finish_runtime(vz_runtime *rt)
{
	assert_int_equal(vz_runtime_stop(rt), 0);
	/* every connection, listener and their operations are gone */
	assert_int_equal(fds_open(rt), 0);
	vz_test_assert_no_fails();
}

static struct sockaddr_in loopback = {.sin_family = AF_INET};

static vz_http_server *start_http(vz_runtime *rt, int mode, const vz_http_limits *lim)
{
	vz_http_server_opts o = {.listen = {.addr = (const struct sockaddr *)&loopback,
					    .addrlen = sizeof loopback,
					    .mode = mode}};
	vz_http_server *s;

	loopback.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lim)
		o.limits = *lim;
	assert_int_equal(vz_http_server_create(rt, &o, &s), 0);
	assert_true(vz_http_server_port(s) != 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	return s;
}

/* ---- HTTP ------------------------------------------------------------------ */

static void test_http_keepalive_pipelined(void **state)
{
	vz_runtime *rt = make_runtime();
	vz_http_server *s = start_http(rt, VZ_LISTENER_HANDOFF, NULL);
	struct reader *r = calloc(1, sizeof *r);
	struct response rs;
	char burst[16 * 64];
	size_t blen = 0;

	(void)state;
	vz_test_watchdog(120);
	r->fd = dial(vz_http_server_port(s));
	/* keep-alive: one after another on one connection */
	for (int i = 0; i < 3; i++) {
		write_all(r->fd, GET("/plaintext"), strlen(GET("/plaintext")));
		assert_true(read_response(r, &rs, 0));
		check_hello(&rs);
		assert_null(strstr(rs.head, "Connection:"));
	}
	/* 16 pipelined in one write, split oddly across requests */
	for (int i = 0; i < 16; i++)
		blen += (size_t)snprintf(burst + blen, sizeof burst - blen, "%s",
					 i % 2 ? GET("/plaintext") : GET("/"));
	write_all(r->fd, burst, blen / 3);
	write_all(r->fd, burst + blen / 3, blen - blen / 3);
	for (int i = 0; i < 16; i++) {
		assert_true(read_response(r, &rs, 0));
		check_hello(&rs);
	}
	/* HEAD: the headers of GET, no body */
	write_all(r->fd, "HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n", 37);
	assert_true(read_response(r, &rs, 1));
	assert_int_equal(rs.status, 200);
	assert_non_null(strstr(rs.head, "Content-Length: 13\r\n"));
	/* an unknown target: 404, the connection stays */
	write_all(r->fd, GET("/nope"), strlen(GET("/nope")));
	assert_true(read_response(r, &rs, 0));
	assert_int_equal(rs.status, 404);
	/* and a request with a body, skipped, then another */
	write_all(r->fd, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody" GET("/"),
		  strlen("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody" GET("/")));
	assert_true(read_response(r, &rs, 0));
	assert_int_equal(rs.status, 404);
	assert_true(read_response(r, &rs, 0));
	check_hello(&rs);
	/* Connection: close answers, says so, and closes */
	write_all(r->fd, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" GET("/"),
		  strlen("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" GET("/")));
	assert_true(read_response(r, &rs, 0));
	check_hello(&rs);
	assert_non_null(strstr(rs.head, "\r\nConnection: close\r\n"));
	expect_eof(r);
	close(r->fd);
	assert_true(vz_http_server_requests(s, 0) + vz_http_server_requests(s, 1) >= 24);
	free(r);
	finish_runtime(rt);
	vz_http_server_destroy(s);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_watchdog(0);
}

static void test_http_versions_and_errors(void **state)
{
	vz_http_limits lim = {.max_head = 1024};
	vz_runtime *rt = make_runtime();
	vz_http_server *s = start_http(rt, VZ_LISTENER_REUSEPORT, &lim);
	uint16_t port = vz_http_server_port(s);
	struct reader *r = calloc(1, sizeof *r);
	struct response rs;
	char big[2048];

	(void)state;
	vz_test_watchdog(120);
	/* HTTP/1.0 without keep-alive: answered, then closed */
	r->fd = dial(port);
	write_all(r->fd, "GET /plaintext HTTP/1.0\r\n\r\n", 27);
	assert_true(read_response(r, &rs, 0));
	check_hello(&rs);
	assert_non_null(strstr(rs.head, "\r\nConnection: close\r\n"));
	expect_eof(r);
	close(r->fd);
	/* HTTP/1.0 with keep-alive: stays open */
	memset(r, 0, sizeof *r);
	r->fd = dial(port);
	for (int i = 0; i < 2; i++) {
		write_all(r->fd, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 42);
		assert_true(read_response(r, &rs, 0));
		check_hello(&rs);
		assert_non_null(strstr(rs.head, "\r\nConnection: keep-alive\r\n"));
	}
	close(r->fd);
	/* garbage: 400, then closed; what follows it is not answered */
	memset(r, 0, sizeof *r);
	r->fd = dial(port);
	write_all(r->fd, "\x16\x03\x01\x02\x00garbage\r\n\r\n" GET("/"),
		  strlen("\x16\x03\x01\x02") + 1 + strlen("garbage\r\n\r\n" GET("/")));
	assert_true(read_response(r, &rs, 0));
	assert_int_equal(rs.status, 400);
	assert_non_null(strstr(rs.head, "\r\nConnection: close\r\n"));
	expect_eof(r);
	close(r->fd);
	/* a head past the limit: 431, then closed */
	memset(r, 0, sizeof *r);
	r->fd = dial(port);
	memset(big, 'a', sizeof big);
	write_all(r->fd, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ", 32);
	write_all(r->fd, big, sizeof big);
	assert_true(read_response(r, &rs, 0));
	assert_int_equal(rs.status, 431);
	expect_eof(r);
	close(r->fd);
	/* a request split byte by byte is still one request */
	memset(r, 0, sizeof *r);
	r->fd = dial(port);
	for (const char *p = GET("/plaintext"); *p; p++)
		write_all(r->fd, p, 1);
	assert_true(read_response(r, &rs, 0));
	check_hello(&rs);
	close(r->fd);
	free(r);
	finish_runtime(rt);
	vz_http_server_destroy(s);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_watchdog(0);
}

/* A client that pipelines 200,000 requests without reading until nothing
 * moves (its small receive buffer, the server's send buffer and the 1 MiB
 * send queue fill), then reads: it is slowed, not dropped, and gets every
 * answer, in order. */
static void test_http_pipelining_without_reading(void **state)
{
	enum { N = 200000 };
	vz_runtime *rt = make_runtime();
	vz_http_server *s = start_http(rt, VZ_LISTENER_REUSEPORT, NULL);
	const char *req = GET("/plaintext");
	size_t rlen = strlen(req), total = (size_t)N * rlen, sent = 0;
	char *out = malloc(total);
	struct reader *r = calloc(1, sizeof *r);
	struct response rs;
	unsigned answered = 0;
	vz_shard_stats st;

	(void)state;
	vz_test_watchdog(120);
	for (size_t i = 0; i < N; i++)
		memcpy(out + i * rlen, req, rlen);
	r->fd = dial_small(vz_http_server_port(s));
	for (;;) {
		struct pollfd p = {.fd = r->fd, .events = POLLOUT};
		ssize_t w;

		/* a phase boundary, not a check: full once nothing moves for 0.5 s */
		if (sent == total || poll_retry(&p, 500) == 0)
			break;
		w = send(r->fd, out + sent, total - sent, MSG_DONTWAIT);
		assert_true(w > 0 || errno == EAGAIN);
		if (w > 0)
			sent += (size_t)w;
	}
	/* (the kernel may have taken all of it into socket buffers: whether
	 * the server paused is checked below, by its io_sendq_full stat) */
	while (answered < N) {
		struct pollfd p = {.fd = r->fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};

		assert_true(poll_retry(&p, 20000) > 0);
		if ((p.revents & POLLOUT) && sent < total) {
			ssize_t w = send(r->fd, out + sent, total - sent, MSG_DONTWAIT);

			assert_true(w > 0 || errno == EAGAIN);
			if (w > 0)
				sent += (size_t)w;
		}
		if (!(p.revents & POLLIN))
			continue;
		assert_true(fill(r));
		/* every complete answer in the buffer */
		while (memmem(r->buf, r->len, "Hello, World!", 13)) {
			assert_true(read_response(r, &rs, 0));
			check_hello(&rs);
			answered++;
		}
	}
	assert_int_equal(answered, N);
	close(r->fd);
	free(r);
	free(out);
	finish_runtime(rt);
	/* the pause really happened: a send was refused as full */
	assert_int_equal(vz_stats_total(rt, &st, NULL), 0);
	assert_true(st.io_sendq_full > 0);
	assert_int_equal(vz_http_server_requests(s, 0) + vz_http_server_requests(s, 1), N);
	vz_http_server_destroy(s);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_watchdog(0);
}

/* N connections, each answered; returns per-shard connection counts. */
static void spread(int mode, unsigned n, uint64_t per_shard[NSHARDS])
{
	vz_runtime *rt = make_runtime();
	vz_http_server *s = start_http(rt, mode, NULL);
	struct reader *r = calloc(1, sizeof *r);
	struct response rs;
	int fds[64];

	assert_true(n <= 64);
	/* all open at once, so each is a distinct connection to place */
	for (unsigned i = 0; i < n; i++)
		fds[i] = dial(vz_http_server_port(s));
	for (unsigned i = 0; i < n; i++) {
		memset(r, 0, sizeof *r);
		r->fd = fds[i];
		write_all(r->fd, GET("/"), strlen(GET("/")));
		assert_true(read_response(r, &rs, 0));
		check_hello(&rs);
	}
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
	free(r);
	finish_runtime(rt);
	for (unsigned sh = 0; sh < NSHARDS; sh++)
		per_shard[sh] = vz_http_server_connections(s, sh);
	vz_http_server_destroy(s);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

static void test_listener_spreads(void **state)
{
	uint64_t c[NSHARDS];

	(void)state;
	vz_test_watchdog(120);
	/* hand-off: dealt round-robin, exactly */
	spread(VZ_LISTENER_HANDOFF, 16, c);
	assert_int_equal(c[0], 8);
	assert_int_equal(c[1], 8);
	/* SO_REUSEPORT: the kernel's hash places them; every one is served
	 * by exactly one shard */
	spread(VZ_LISTENER_REUSEPORT, 32, c);
	assert_int_equal(c[0] + c[1], 32);
	fprintf(stderr, "SO_REUSEPORT placed 32 connections %llu / %llu\n",
		(unsigned long long)c[0], (unsigned long long)c[1]);
	vz_test_watchdog(0);
}

/* ---- the listener's connections have TCP_NODELAY -------------------------- */

static atomic_uint nd_seen, nd_on;

/* A connection actor that only looks at its socket's Nagle setting. */
static int nd_init(vz_actor *self, void *st, const void *arg)
{
	vz_fd *fd = st;
	int v = 0, rc = vz_listener_adopt(self, arg, fd);
	socklen_t vl = sizeof v;

	if (rc < 0)
		return rc;
	if (getsockopt(vz_io_fileno(self, *fd), IPPROTO_TCP, TCP_NODELAY, &v, &vl) == 0 && v)
		atomic_fetch_add(&nd_on, 1);
	atomic_fetch_add(&nd_seen, 1);
	return vz_io_close(self, *fd);
}

static void nd_receive(vz_actor *self, void *st, const vz_msg *m)
{
	(void)self, (void)st, (void)m;
}

static const vz_actor_spec nd_spec = {
    .name = "nodelay-check",
    .state_size = sizeof(vz_fd),
    .init = nd_init,
    .receive = nd_receive,
};

/* The listener sets TCP_NODELAY once on its listening socket (not per
 * connection); every connection it places, in both modes (hand-off moves
 * the descriptor to another shard), must have it. */
static void test_listener_nodelay(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	(void)state;
	vz_test_watchdog(120);
	for (int mode = VZ_LISTENER_REUSEPORT; mode <= VZ_LISTENER_HANDOFF; mode++) {
		vz_listener_opts o = {.addr = (const struct sockaddr *)&a,
				      .addrlen = sizeof a,
				      .mode = mode,
				      .conn_spec = &nd_spec};
		vz_runtime *rt = make_runtime();
		vz_listener *l;
		int fds[8];

		atomic_store(&nd_seen, 0);
		atomic_store(&nd_on, 0);
		assert_int_equal(vz_listener_create(rt, &o, &l), 0);
		assert_int_equal(vz_runtime_start(rt), 0);
		for (int i = 0; i < 8; i++)
			fds[i] = dial(vz_listener_port(l));
		/* each connection is closed by its actor once it looked */
		for (int i = 0; i < 8; i++) {
			char c;

			assert_int_equal(read_retry(fds[i], &c, 1), 0);
			close(fds[i]);
		}
		assert_int_equal(atomic_load(&nd_seen), 8);
		assert_int_equal(atomic_load(&nd_on), 8);
		finish_runtime(rt);
		vz_listener_destroy(l);
		assert_int_equal(vz_runtime_destroy(rt), 0);
	}
	vz_test_watchdog(0);
}

/* ---- echo ------------------------------------------------------------------ */

static void test_echo(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	vz_listener_opts o = {.addr = (const struct sockaddr *)&a, .addrlen = sizeof a};
	size_t big = 32u << 20, sent = 0, got = 0;
	vz_shard_stats st;
	unsigned char *out = malloc(big), *in = malloc(big);
	vz_runtime *rt = make_runtime();
	vz_listener *l;
	char small[64];
	int fd;

	(void)state;
	vz_test_watchdog(120);
	assert_int_equal(vz_echo_server_create(rt, &o, &l), 0);
	assert_int_equal(vz_runtime_start(rt), 0);

	/* small writes come back in order */
	fd = dial(vz_listener_port(l));
	for (int i = 0; i < 100; i++) {
		char back[sizeof small];
		size_t n = 0;

		memset(small, 'a' + i % 26, sizeof small);
		write_all(fd, small, sizeof small);
		while (n < sizeof back) {
			ssize_t k = read_retry(fd, back + n, sizeof back - n);

			assert_true(k > 0);
			n += (size_t)k;
		}
		assert_memory_equal(back, small, sizeof small);
	}
	close(fd);

	/* Back-pressure: 32 MiB, first written without reading until the
	 * socket takes no more (the client's small receive buffer, the
	 * server's send buffer and its 1 MiB send queue all fill, so the echo
	 * actor must pause its receive), then read and written
	 * concurrently to the end: every byte comes back, in order. */
	for (size_t i = 0; i < big; i++)
		out[i] = (unsigned char)(i * 7 + i / 251);
	fd = dial_small(vz_listener_port(l));
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		ssize_t w;

		/* a phase boundary, not a check: full once nothing moves for 0.5 s */
		if (sent == big || poll_retry(&p, 500) == 0)
			break;
		w = send(fd, out + sent, big - sent < 65536 ? big - sent : 65536, MSG_DONTWAIT);
		assert_true(w > 0 || errno == EAGAIN);
		if (w > 0)
			sent += (size_t)w;
	}
	assert_true(sent < big); /* it did fill up */
	while (got < big) {
		struct pollfd p = {.fd = fd, .events = POLLIN | (sent < big ? POLLOUT : 0)};

		assert_true(poll_retry(&p, 20000) > 0);
		if ((p.revents & POLLOUT) && sent < big) {
			ssize_t w = send(fd, out + sent, big - sent < 65536 ? big - sent : 65536,
					 MSG_DONTWAIT);

			assert_true(w > 0 || errno == EAGAIN);
			if (w > 0)
				sent += (size_t)w;
		}
		if (p.revents & POLLIN) {
			ssize_t k = recv(fd, in + got, big - got, MSG_DONTWAIT);

			assert_true(k > 0 || (k < 0 && errno == EAGAIN));
			if (k > 0)
				got += (size_t)k;
		}
	}
	assert_memory_equal(in, out, big);
	/* the server closes when the client does: shut down our side and
	 * read the end of stream */
	shutdown(fd, SHUT_WR);
	assert_int_equal(read_retry(fd, in, 1), 0);
	close(fd);
	free(out);
	free(in);
	finish_runtime(rt);
	/* the pause path really ran: a send was refused as full */
	assert_int_equal(vz_stats_total(rt, &st, NULL), 0);
	assert_true(st.io_sendq_full > 0);
	vz_listener_destroy(l);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_watchdog(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_keepalive_pipelined),
	    cmocka_unit_test(test_http_versions_and_errors),
	    cmocka_unit_test(test_http_pipelining_without_reading),
	    cmocka_unit_test(test_listener_spreads),
	    cmocka_unit_test(test_listener_nodelay),
	    cmocka_unit_test(test_echo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
