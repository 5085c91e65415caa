// SPDX-License-Identifier: MIT
/*
 * The actor I/O tests in simulation, over many seeds (1000 by default;
 * VZ_SIM_SEEDS or --seeds changes it): the echo server of actors/net
 * (unchanged: both of its listener modes, so descriptors also travel
 * between shards with vz_io_detach/vz_io_adopt) serves clients on every
 * shard through the simulation's in-memory network, and UDP clients talk
 * to a UDP echo actor, while the seed draws delays, the order of arrivals
 * across connections, windows, short writes and reads, resets, refused
 * connects and lost datagrams.
 *
 * Checked for every run: each client's bytes come back intact and in
 * order (a prefix of what it sent; all of it without faults); every
 * operation it started ends with exactly one final event, and every
 * failure is one an application must expect (VZ_ECONNREFUSED,
 * VZ_ECONNRESET, VZ_EPIPE); the run goes idle with every client finished
 * (no hang); after stop no descriptor is open (the I/O layer's and the
 * network's counts) and every receive buffer is back.
 *
 * One thread does it all, so the backend does not matter:
 * VZ_TEST_BACKEND_INDEPENDENT (one CTest entry).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <veloz.h>
#include <veloz/io.h>

#include "http/server.h"
#include "net/echo.h"
#include "sim_setup.h"

#define MAXCLIENTS 4
#define SEC	   1000000000ull
#define UDP_COUNT  24

/* One run's record (the whole run is on this thread). */
static struct {
	int errors;
	char why[200];
	bool faults;
	uint64_t seed;
	unsigned done, ok;
	uint16_t udp_port;
	bool half_close; /* HTTP clients end with shutdown(SHUT_WR), not "Connection: close" */
	/* per TCP client: sends started, their final events, connect events */
	unsigned pieces[MAXCLIENTS], send_events[MAXCLIENTS], connect_events[MAXCLIENTS];
	/* per UDP client: sendto final events, recvfrom final events */
	unsigned sent_events[2], recv_final[2];
} R;

static void fail(const char *why, unsigned id, long a, long b)
{
	if (!R.errors++)
		snprintf(R.why, sizeof R.why, "client %u: %s (%ld, %ld)", id, why, a, b);
}

static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static unsigned char pattern(unsigned id, uint32_t off)
{
	return (unsigned char)(id * 131u + off * 7u + (off >> 8));
}

/* A failure an application must expect from a network. */
static bool expected_error(int res)
{
	return res == VZ_ECONNRESET || res == VZ_ECONNREFUSED || res == VZ_EPIPE;
}

/* ---- TCP: a client of the echo server ------------------------------------ */

struct tcp_client_arg {
	unsigned id;
	uint16_t port;
};

struct tcp_client {
	unsigned id;
	vz_fd fd;
	uint32_t total, got;
	bool closed, done;
};

static void client_close(vz_actor *self, struct tcp_client *c)
{
	if (c->closed)
		return;
	c->closed = true;
	if (vz_io_close(self, c->fd) < 0)
		fail("close refused", c->id, 0, 0);
}

static void client_finish(vz_actor *self, struct tcp_client *c, bool ok)
{
	if (c->done)
		fail("two final receive events", c->id, 0, 0);
	c->done = true;
	R.done++;
	R.ok += ok;
	client_close(self, c);
}

static int tcp_client_init(vz_actor *self, void *state, const void *arg)
{
	const struct tcp_client_arg *a = arg;
	struct tcp_client *c = state;
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(a->port)};
	uint64_t rng = mix64(R.seed * 64 + a->id);
	unsigned char buf[4096];
	int rc;

	c->id = a->id;
	c->total = 1 + (uint32_t)(rng % (48 * 1024));
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = vz_tcp_connect(self, (const struct sockaddr *)&to, sizeof to, NULL, &c->fd, NULL);
	if (rc < 0)
		return rc;
	/* Everything queued before the connect is answered (written once it
	 * connects, or failed with its error), then the sending side shut. */
	for (uint32_t off = 0; off < c->total;) {
		uint32_t n;

		rng = mix64(rng);
		n = 1 + (uint32_t)(rng % sizeof buf);
		if (n > c->total - off)
			n = c->total - off;
		for (uint32_t i = 0; i < n; i++)
			buf[i] = pattern(c->id, off + i);
		rc = vz_io_send(self, c->fd, buf, n, &(vz_io_req){.tag = n}, NULL);
		if (rc < 0)
			return rc;
		R.pieces[c->id]++;
		off += n;
	}
	return vz_io_shutdown(self, c->fd, SHUT_WR);
}

static void tcp_client_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct tcp_client *c = state;
	const vz_io_event *ev = vz_io_event_of(m);
	const unsigned char *p;

	if (!ev)
		return;
	switch (ev->kind) {
	case VZ_IO_CONNECT:
		R.connect_events[c->id]++;
		if (ev->res == 0) {
			if (vz_io_recv(self, c->fd, NULL, NULL) < 0)
				fail("recv refused", c->id, 0, 0);
			return;
		}
		if (!expected_error(ev->res) || !R.faults)
			fail("connect failed", c->id, ev->res, 0);
		client_finish(self, c, false);
		return;
	case VZ_IO_SEND:
		R.send_events[c->id]++;
		if (ev->flags & VZ_IO_EV_MORE)
			fail("a send event with MORE", c->id, 0, 0);
		if (ev->res != (int32_t)ev->tag && !(R.faults && expected_error(ev->res)))
			fail("send result", c->id, ev->res, (long)ev->tag);
		return;
	case VZ_IO_RECV:
		if (ev->res > 0) {
			p = ev->data;
			if (c->got + ev->len > c->total) {
				fail("more bytes than sent", c->id, c->got, ev->len);
				return;
			}
			for (uint32_t i = 0; i < ev->len; i++)
				if (p[i] != pattern(c->id, c->got + i)) {
					fail("byte out of order", c->id, c->got + i, p[i]);
					return;
				}
			c->got += ev->len;
		}
		if (ev->flags & VZ_IO_EV_MORE)
			return;
		if (ev->res == 0 && c->got != c->total)
			fail("end of stream early", c->id, c->got, c->total);
		else if (ev->res < 0 && (!expected_error(ev->res) || !R.faults))
			fail("receive failed", c->id, ev->res, c->got);
		client_finish(self, c, ev->res == 0);
		return;
	default:
		fail("unexpected event", c->id, ev->kind, ev->res);
	}
}

static const vz_actor_spec tcp_client_spec = {
    .name = "tcp-client",
    .state_size = sizeof(struct tcp_client),
    .init = tcp_client_init,
    .receive = tcp_client_receive,
};

/* ---- HTTP: a client of actors/http, pipelining ---------------------------- */

#define HTTP_REQS 6
#define HTTP_BUF  8192

static const char http_body[] = "Hello, World!";

struct http_client {
	unsigned id;
	vz_fd fd;
	uint32_t got;
	bool closed, done;
	char buf[HTTP_BUF];
};

static int http_client_init(vz_actor *self, void *state, const void *arg)
{
	const struct tcp_client_arg *a = arg;
	struct http_client *c = state;
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(a->port)};
	uint64_t rng = mix64(R.seed * 64 + 16 + a->id);
	char reqs[HTTP_REQS * 64];
	uint32_t len = 0;
	int rc;

	c->id = a->id;
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (unsigned i = 0; i < HTTP_REQS; i++)
		len += (uint32_t)snprintf(
		    reqs + len, sizeof reqs - len, "GET /plaintext HTTP/1.1\r\nHost: sim\r\n%s\r\n",
		    i == HTTP_REQS - 1 && !R.half_close ? "Connection: close\r\n" : "");
	rc = vz_tcp_connect(self, (const struct sockaddr *)&to, sizeof to, NULL, &c->fd, NULL);
	/* The requests in pieces cut anywhere, all queued at once. */
	for (uint32_t off = 0; rc == 0 && off < len;) {
		uint32_t n;

		rng = mix64(rng);
		n = 1 + (uint32_t)(rng % 80);
		if (n > len - off)
			n = len - off;
		rc = vz_io_send(self, c->fd, reqs + off, n, &(vz_io_req){.tag = n}, NULL);
		R.pieces[c->id]++;
		off += n;
	}
	return rc == 0 && R.half_close ? vz_io_shutdown(self, c->fd, SHUT_WR) : rc;
}

/* The answers: HTTP_REQS of them, each 200 with the body, the last one
 * saying it closes (none does when the client half-closed instead). */
static bool http_answers_ok(const struct http_client *c)
{
	const char *p = c->buf, *end = c->buf + c->got;
	unsigned n = 0;

	while (p < end) {
		const char *head_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
		size_t head = head_end ? (size_t)(head_end + 2 - p) : 0; /* lines with their CRLF */

		if (strncmp(p, "HTTP/1.1 200 OK\r\n", 17) || !head_end ||
		    !memmem(p, head, "Content-Length: 13\r\n", 20) ||
		    (size_t)(end - head_end) < 4 + sizeof http_body - 1 ||
		    memcmp(head_end + 4, http_body, sizeof http_body - 1))
			return false;
		n++;
		if ((n == HTTP_REQS && !R.half_close) !=
		    (memmem(p, head, "Connection: close\r\n", 19) != NULL))
			return false;
		p = head_end + 4 + sizeof http_body - 1;
	}
	return n == HTTP_REQS;
}

static void http_client_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct http_client *c = state;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev)
		return;
	switch (ev->kind) {
	case VZ_IO_CONNECT:
		R.connect_events[c->id]++;
		if (ev->res == 0) {
			if (vz_io_recv(self, c->fd, NULL, NULL) < 0)
				fail("recv refused", c->id, 0, 0);
			return;
		}
		if (!expected_error(ev->res) || !R.faults)
			fail("connect failed", c->id, ev->res, 0);
		break;
	case VZ_IO_SEND:
		R.send_events[c->id]++;
		if (ev->res != (int32_t)ev->tag && !(R.faults && expected_error(ev->res)))
			fail("send result", c->id, ev->res, (long)ev->tag);
		return;
	case VZ_IO_RECV:
		if (ev->res > 0) {
			if (c->got + ev->len > HTTP_BUF) {
				fail("answers too long", c->id, c->got, ev->len);
				return;
			}
			memcpy(c->buf + c->got, ev->data, ev->len);
			c->got += ev->len;
		}
		if (ev->flags & VZ_IO_EV_MORE)
			return;
		if (ev->res == 0 && !http_answers_ok(c))
			fail("answers wrong or cut short", c->id, c->got, 0);
		else if (ev->res < 0 && (!expected_error(ev->res) || !R.faults))
			fail("receive failed", c->id, ev->res, c->got);
		R.ok += ev->res == 0;
		break;
	default:
		fail("unexpected event", c->id, ev->kind, ev->res);
		return;
	}
	if (c->done)
		fail("two final events", c->id, 0, 0);
	c->done = true;
	R.done++;
	vz_io_close(self, c->fd);
}

static const vz_actor_spec http_client_spec = {
    .name = "http-client",
    .state_size = sizeof(struct http_client),
    .init = http_client_init,
    .receive = http_client_receive,
};

/* ---- UDP: an echo actor and its clients --------------------------------- */

struct udp_echo {
	vz_fd fd;
};

static int udp_bind_any(vz_actor *self, vz_fd *fd, uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct sockaddr_in got;
	uint32_t len = sizeof got;
	int rc;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = vz_udp_bind(self, (const struct sockaddr *)&a, sizeof a, 0, fd);
	if (rc == 0 && port)
		rc = vz_io_local_addr(self, *fd, (struct sockaddr *)&got, &len);
	if (rc == 0 && port)
		*port = ntohs(got.sin_port);
	if (rc == 0)
		rc = vz_io_recvfrom(self, *fd, NULL, NULL);
	return rc;
}

static int udp_echo_init(vz_actor *self, void *state, const void *arg)
{
	struct udp_echo *e = state;
	int rc;

	(void)arg;
	rc = udp_bind_any(self, &e->fd, &R.udp_port);
	return rc < 0 ? rc : vz_timer_arm(self, 2 * SEC, 0, 0, NULL);
}

static void udp_echo_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct udp_echo *e = state;
	const vz_io_event *ev = vz_io_event_of(m);

	if (vz_msg_type(m) == VZ_MSG_TIMER) {
		vz_io_close(self, e->fd);
		return;
	}
	if (!ev || ev->kind != VZ_IO_RECVFROM || ev->res < 0)
		return; /* the final event of the receive, at close */
	if (vz_io_sendto(self, e->fd, ev->data, ev->len, ev->peer, ev->peer_len,
			 &(vz_io_req){.flags = VZ_IO_QUIET}, NULL) < 0)
		fail("echo sendto refused", 99, 0, 0);
}

static const vz_actor_spec udp_echo_spec = {
    .name = "udp-echo",
    .state_size = sizeof(struct udp_echo),
    .init = udp_echo_init,
    .receive = udp_echo_receive,
};

struct udp_client {
	unsigned id;
	vz_fd fd;
	uint32_t replies;
	bool seen[UDP_COUNT];
};

static int udp_client_init(vz_actor *self, void *state, const void *arg)
{
	struct udp_client *c = state;
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(R.udp_port)};
	uint64_t rng = mix64(R.seed * 64 + 32 + *(const unsigned *)arg);
	unsigned char buf[2000];
	int rc;

	c->id = *(const unsigned *)arg;
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = udp_bind_any(self, &c->fd, NULL);
	for (uint32_t seq = 0; rc == 0 && seq < UDP_COUNT; seq++) {
		uint32_t n;

		rng = mix64(rng);
		n = 8 + (uint32_t)(rng % (sizeof buf - 8));
		memcpy(buf, &c->id, 4);
		memcpy(buf + 4, &seq, 4);
		for (uint32_t i = 8; i < n; i++)
			buf[i] = pattern(c->id, seq * 1000 + i);
		rc = vz_io_sendto(self, c->fd, buf, n, (const struct sockaddr *)&to, sizeof to,
				  &(vz_io_req){.tag = n}, NULL);
	}
	/* Replies have long come by then, unless lost. */
	return rc < 0 ? rc : vz_timer_arm(self, SEC, 0, 0, NULL);
}

static void udp_client_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct udp_client *c = state;
	const vz_io_event *ev = vz_io_event_of(m);
	const unsigned char *p;
	uint32_t id, seq;

	if (vz_msg_type(m) == VZ_MSG_TIMER) {
		vz_io_close(self, c->fd);
		R.done++;
		if (c->replies == UDP_COUNT)
			R.ok++;
		else if (!R.faults)
			fail("datagrams lost without faults", c->id, c->replies, 0);
		return;
	}
	if (!ev)
		return;
	if (ev->kind == VZ_IO_SENDTO) {
		R.sent_events[c->id - 100]++;
		if (ev->res != (int32_t)ev->tag)
			fail("sendto result", c->id, ev->res, (long)ev->tag);
		return;
	}
	if (ev->kind != VZ_IO_RECVFROM) {
		fail("unexpected event", c->id, ev->kind, ev->res);
		return;
	}
	if (!(ev->flags & VZ_IO_EV_MORE)) {
		R.recv_final[c->id - 100]++;
		if (ev->res != VZ_ECANCELED)
			fail("recvfrom ended", c->id, ev->res, 0);
		return;
	}
	p = ev->data;
	if (ev->len < 8) {
		fail("short datagram", c->id, ev->len, 0);
		return;
	}
	memcpy(&id, p, 4);
	memcpy(&seq, p + 4, 4);
	if (id != c->id || seq >= UDP_COUNT || c->seen[seq]) {
		fail("foreign or duplicated datagram", c->id, id, seq);
		return;
	}
	for (uint32_t i = 8; i < ev->len; i++)
		if (p[i] != pattern(c->id, seq * 1000 + i)) {
			fail("datagram corrupted", c->id, seq, i);
			return;
		}
	c->seen[seq] = true;
	c->replies++;
}

static const vz_actor_spec udp_client_spec = {
    .name = "udp-client",
    .state_size = sizeof(struct udp_client),
    .init = udp_client_init,
    .receive = udp_client_receive,
};

/* ---- the runs ---------------------------------------------------------------- */

struct variant {
	unsigned nclients;
	int mode; /* enum vz_listener_mode */
	bool udp;
	bool faults; /* the options inject network faults */
	bool http;   /* the HTTP server and its clients instead of echo */
	bool half_close;
};

/* Stop, then: no descriptor open anywhere, every buffer back. */
static int stop_and_check(vz_sim *sim)
{
	vz_runtime *rt = vz_sim_runtime(sim);
	vz_shard_stats total;
	vz_sim_stats st;

	if (vz_runtime_stop(rt) < 0 || vz_stats_total(rt, &total, NULL) < 0 ||
	    vz_sim_stats_get(sim, &st) < 0)
		return printf("stop failed\n"), 1;
	if (total.io_fds_open || st.net_socks_open || st.io_bufs_out)
		return printf("after stop: %llu fds, %llu sockets open, %llu buffers out\n",
			      (unsigned long long)total.io_fds_open,
			      (unsigned long long)st.net_socks_open,
			      (unsigned long long)st.io_bufs_out),
		       1;
	return 0;
}

static int net_run(vz_sim *sim, void *ctx)
{
	const struct variant *v = ctx;
	vz_runtime *rt = vz_sim_runtime(sim);
	unsigned nsh = vz_runtime_shards(rt), expect;
	struct sockaddr_in any = {.sin_family = AF_INET};
	vz_listener_opts lo = {.addr = (const struct sockaddr *)&any, .addrlen = sizeof any};
	vz_listener *l = NULL;
	vz_http_server *hs = NULL;
	vz_http_server_opts ho;
	uint16_t port;
	vz_sim_stats st;
	vz_ref r;
	int rc;

	memset(&R, 0, sizeof R);
	vz_sim_stats_get(sim, &st);
	R.seed = st.seed;
	R.faults = v->faults;
	R.half_close = v->half_close;
	any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lo.mode = v->mode;
	if (v->http) {
		memset(&ho, 0, sizeof ho);
		ho.listen = lo;
		rc = vz_http_server_create(rt, &ho, &hs);
		port = rc == 0 ? vz_http_server_port(hs) : 0;
	} else {
		rc = vz_echo_server_create(rt, &lo, &l);
		port = rc == 0 ? vz_listener_port(l) : 0;
	}
	if (rc < 0)
		return printf("server: %s\n", vz_strerror(rc)), 1;
	for (unsigned i = 0; i < v->nclients; i++) {
		struct tcp_client_arg a = {i, port};

		rc = vz_spawn(rt, i % nsh, v->http ? &http_client_spec : &tcp_client_spec, &a, &r);
		if (rc < 0)
			break;
	}
	if (rc == 0 && v->udp) {
		rc = vz_spawn(rt, 0, &udp_echo_spec, NULL, &r);
		for (unsigned i = 0; rc == 0 && i < 2; i++) {
			unsigned id = 100 + i;

			rc = vz_spawn(rt, (i + 1) % nsh, &udp_client_spec, &id, &r);
		}
	}
	if (rc == 0)
		rc = vz_runtime_start(rt);
	/* HTTP's date actors tick every second for good: the run ends at a
	 * virtual deadline (long past any answer) instead of going idle. */
	if (rc == 0)
		rc = vz_sim_run(sim, 2000000, v->http ? vz_sim_now_ns(sim) + 30 * SEC : 0);
	if (rc == VZ_ETIMEDOUT && v->http)
		rc = 0;
	if (rc < 0) {
		vz_runtime_stop(rt);
		vz_listener_destroy(l);
		vz_http_server_destroy(hs);
		return printf("run: %s\n", vz_strerror(rc)), 1;
	}
	expect = v->nclients + (v->udp ? 2 : 0);
	if (!R.errors && R.done != expect)
		snprintf(R.why, sizeof R.why, "idle with %u of %u clients finished", R.done,
			 expect),
		    R.errors++;
	for (unsigned i = 0; !R.errors && i < v->nclients; i++)
		if (R.connect_events[i] != 1 || R.send_events[i] != R.pieces[i])
			fail("events missing at idle", i, R.connect_events[i],
			     (long)R.pieces[i] - R.send_events[i]);
	for (unsigned i = 0; !R.errors && v->udp && i < 2; i++)
		if (R.sent_events[i] != UDP_COUNT || R.recv_final[i] != 1)
			fail("datagram events missing at idle", 100 + i, R.sent_events[i],
			     R.recv_final[i]);
	if (!R.errors && !R.faults && R.ok != expect)
		snprintf(R.why, sizeof R.why, "%u of %u clients ok without faults", R.ok, expect),
		    R.errors++;
	rc = stop_and_check(sim);
	vz_listener_destroy(l);
	vz_http_server_destroy(hs);
	if (R.errors)
		return printf("%s\n", R.why), 1;
	return rc;
}

int main(int argc, char **argv)
{
	static struct variant reuse = {3, VZ_LISTENER_REUSEPORT, false, false, false, false};
	static struct variant handoff = {3, VZ_LISTENER_HANDOFF, true, false, false, false};
	static struct variant reuse_f = {4, VZ_LISTENER_REUSEPORT, true, true, false, false};
	static struct variant handoff_f = {4, VZ_LISTENER_HANDOFF, true, true, false, false};
	static struct variant http = {3, VZ_LISTENER_REUSEPORT, false, false, true, false};
	static struct variant http_f = {4, VZ_LISTENER_HANDOFF, false, true, true, false};
	static struct variant http_half = {3, VZ_LISTENER_REUSEPORT, false, false, true, true};
	static vz_config cfg2, cfg3;
	static vz_sim_options plain, faulty;
	vz_sim_test tests[7];

	vz_test_sim_config(&cfg2, 2);
	vz_test_sim_config(&cfg3, 3);
	vz_sim_options_default(&plain, 0);
	vz_test_sim_faults(&faulty, VZ_SIM_FAULT_NET | VZ_SIM_FAULT_DELAY, 6);
	tests[0] = (vz_sim_test){"echo-reuseport", net_run, &reuse, &cfg2, &plain};
	tests[1] = (vz_sim_test){"echo-handoff-udp", net_run, &handoff, &cfg3, &plain};
	tests[2] = (vz_sim_test){"echo-udp-faults", net_run, &reuse_f, &cfg2, &faulty};
	tests[3] = (vz_sim_test){"echo-handoff-udp-faults", net_run, &handoff_f, &cfg3, &faulty};
	tests[4] = (vz_sim_test){"http", net_run, &http, &cfg2, &plain};
	tests[5] = (vz_sim_test){"http-handoff-faults", net_run, &http_f, &cfg3, &faulty};
	tests[6] = (vz_sim_test){"http-half-close", net_run, &http_half, &cfg2, &plain};
	return vz_sim_main(argc, argv, tests, 7);
}
