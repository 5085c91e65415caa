// SPDX-License-Identifier: MIT
/*
 * libuv HTTP/1.1 responder (uv_net.h), written to be a fair, tuned
 * baseline: one loop, TCP_NODELAY, keep-alive and pipelining, the same
 * incremental parser and the same response bytes as the veloz server
 * (actors/http/parse.c, response.c), the Date header refreshed by a
 * one-second timer. Reads go into one loop-wide 64 KiB buffer (libuv calls
 * read_cb right after filling it, so one buffer serves every connection);
 * all answers to one read are written with one uv_try_write, falling back
 * to a queued uv_write (with a copy) only when the socket is full. No
 * allocation per request in steady state.
 */
#include "uv_net.h"

#ifdef VZ_HAVE_LIBUV

#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "http/parse.h"
#include "http/response.h"

#define OUT_CAP	  8192u
#define OUT_SLACK 1024u

struct conn {
	uv_tcp_t tcp;
	vz_http_parser p;
	bool closing;
	unsigned pending_writes;
	uint32_t used;
	char out[OUT_CAP];
};

struct pending {
	uv_write_t req;
	size_t len;
	char data[]; /* the unwritten rest, copied */
};

static uv_loop_t *loop;
static uv_tcp_t server;
static uv_timer_t date_timer;
static uv_signal_t term;
static char date[VZ_HTTP_DATE_LEN + 1];
static char readbuf[65536];
static vz_http_limits limits;

static void on_closed(uv_handle_t *h)
{
	free(h->data);
}

static void conn_close(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status)
{
	struct pending *pw = (struct pending *)req;
	struct conn *c = req->handle->data;

	free(pw);
	c->pending_writes--;
	if (status < 0 || (c->closing && c->pending_writes == 0))
		conn_close(c);
}

/* Write the output buffer: directly when the socket takes it, else the
 * rest is copied and queued. */
static void flush(struct conn *c)
{
	uv_buf_t b = uv_buf_init(c->out, c->used);
	int n = 0;

	if (c->used == 0)
		return;
	/* Order: a queued write must go first, so try_write only when none. */
	if (c->pending_writes == 0) {
		n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (n < 0 && n != UV_EAGAIN) {
			c->used = 0;
			conn_close(c);
			return;
		}
		if (n < 0)
			n = 0;
	}
	if ((uint32_t)n < c->used) {
		size_t rest = c->used - (uint32_t)n;
		struct pending *pw = malloc(sizeof *pw + rest);

		if (!pw) {
			c->used = 0;
			conn_close(c);
			return;
		}
		memcpy(pw->data, c->out + n, rest);
		pw->len = rest;
		b = uv_buf_init(pw->data, (unsigned)rest);
		c->pending_writes++;
		if (uv_write(&pw->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
			c->pending_writes--;
			free(pw);
			conn_close(c);
		}
	}
	c->used = 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(readbuf, sizeof readbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	size_t off = 0, len;

	if (nread < 0) {
		conn_close(c);
		return;
	}
	len = (size_t)nread;
	while (off < len && !c->closing) {
		vz_http_event ev;
		int close_after;
		size_t w;

		off += vz_http_parse(&c->p, buf->base + off, len - off, &ev);
		if (ev.kind == VZ_HTTP_EV_NONE)
			break;
		if (ev.kind == VZ_HTTP_EV_BODY)
			continue;
		if (OUT_CAP - c->used < OUT_SLACK)
			flush(c);
		if (ev.kind == VZ_HTTP_EV_ERROR) {
			w = vz_http_answer_error(c->out + c->used, OUT_CAP - c->used, ev.status,
						 date);
			close_after = 1;
		} else {
			w = vz_http_answer(c->out + c->used, OUT_CAP - c->used, &c->p.req, date,
					   &close_after);
		}
		c->used += (uint32_t)w;
		if (close_after)
			c->closing = true;
	}
	flush(c);
	if (c->closing) {
		uv_read_stop(s);
		if (c->pending_writes == 0)
			conn_close(c);
	}
}

static void on_connection(uv_stream_t *srv, int status)
{
	struct conn *c;

	if (status < 0)
		return;
	c = malloc(sizeof *c);
	if (!c)
		return;
	c->closing = false;
	c->pending_writes = 0;
	c->used = 0;
	vz_http_parser_init(&c->p, &limits);
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_date(uv_timer_t *t)
{
	(void)t;
	vz_http_date_format(date, time(NULL));
}

static void close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, h->type == UV_TCP && h != (uv_handle_t *)&server ? on_closed : NULL);
}

static void on_term(uv_signal_t *s, int signum)
{
	(void)signum;
	uv_walk(s->loop, close_any, NULL);
}

int uv_http_serve(int port, uvnet_ready_fn ready, void *ctx)
{
	struct sockaddr_in a;
	struct sockaddr_storage ss;
	int len = sizeof ss;

	loop = uv_default_loop();
	vz_http_date_format(date, time(NULL));
	uv_timer_init(loop, &date_timer);
	uv_timer_start(&date_timer, on_date, 1000, 1000);
	uv_signal_init(loop, &term);
	uv_signal_start(&term, on_term, SIGTERM);
	uv_tcp_init(loop, &server);
	uv_ip4_addr("127.0.0.1", port, &a);
	if (uv_tcp_bind(&server, (const struct sockaddr *)&a, 0) < 0 ||
	    uv_listen((uv_stream_t *)&server, SOMAXCONN, on_connection) < 0)
		return -1;
	uv_tcp_getsockname(&server, (struct sockaddr *)&ss, &len);
	ready(ntohs(((struct sockaddr_in *)&ss)->sin_port), ctx);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return 0;
}

#else

int uv_http_serve(int port, uvnet_ready_fn ready, void *ctx)
{
	(void)port;
	(void)ready;
	(void)ctx;
	return -1;
}

#endif
