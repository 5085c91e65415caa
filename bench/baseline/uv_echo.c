// SPDX-License-Identifier: MIT
/*
 * libuv TCP echo server (uv_net.h): one loop, TCP_NODELAY; each read is
 * written back with uv_try_write from the loop-wide read buffer, and only
 * what the socket did not take is copied into a queued uv_write. While
 * writes are queued, reading stops (back-pressure), as the veloz echo
 * actor does.
 */
#include "uv_net.h"

#ifdef VZ_HAVE_LIBUV

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct econn {
	uv_tcp_t tcp;
	unsigned pending;
	int eof;
};

struct ewrite {
	uv_write_t req;
	char data[];
};

static uv_loop_t *eloop;
static uv_tcp_t eserver;
static uv_signal_t eterm;
static char ebuf[65536];

static void e_closed(uv_handle_t *h)
{
	free(h->data);
}

static void e_close(struct econn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, e_closed);
}

static void e_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	(void)h;
	(void)s;
	*b = uv_buf_init(ebuf, sizeof ebuf);
}

static void e_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void e_written(uv_write_t *req, int status)
{
	struct econn *c = req->handle->data;

	free(req);
	c->pending--;
	if (status < 0 || (c->eof && c->pending == 0)) {
		e_close(c);
		return;
	}
	if (c->pending == 0)
		uv_read_start((uv_stream_t *)&c->tcp, e_alloc, e_read);
}

static void e_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct econn *c = s->data;
	uv_buf_t wb;
	int w;

	if (n < 0) {
		c->eof = 1;
		if (c->pending == 0)
			e_close(c);
		else
			uv_read_stop(s);
		return;
	}
	if (n == 0)
		return;
	wb = uv_buf_init(b->base, (unsigned)n);
	w = c->pending ? 0 : uv_try_write(s, &wb, 1);
	if (w < 0 && w != UV_EAGAIN) {
		e_close(c);
		return;
	}
	if (w < 0)
		w = 0;
	if (w < n) {
		struct ewrite *ew = malloc(sizeof *ew + (size_t)(n - w));

		if (!ew) {
			e_close(c);
			return;
		}
		memcpy(ew->data, b->base + w, (size_t)(n - w));
		wb = uv_buf_init(ew->data, (unsigned)(n - w));
		c->pending++;
		uv_write(&ew->req, s, &wb, 1, e_written);
		uv_read_stop(s);
	}
}

static void e_conn(uv_stream_t *srv, int status)
{
	struct econn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof *c);
	if (!c)
		return;
	uv_tcp_init(eloop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
		e_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, e_alloc, e_read);
}

static void e_close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, h->type == UV_TCP && h != (uv_handle_t *)&eserver ? e_closed : NULL);
}

static void e_term(uv_signal_t *s, int signum)
{
	(void)signum;
	uv_walk(s->loop, e_close_any, NULL);
}

int uv_echo_serve(int port, uvnet_ready_fn ready, void *ctx)
{
	struct sockaddr_in a;
	struct sockaddr_storage ss;
	int len = sizeof ss;

	eloop = uv_default_loop();
	uv_signal_init(eloop, &eterm);
	uv_signal_start(&eterm, e_term, SIGTERM);
	uv_tcp_init(eloop, &eserver);
	uv_ip4_addr("127.0.0.1", port, &a);
	if (uv_tcp_bind(&eserver, (const struct sockaddr *)&a, 0) < 0 ||
	    uv_listen((uv_stream_t *)&eserver, SOMAXCONN, e_conn) < 0)
		return -1;
	uv_tcp_getsockname(&eserver, (struct sockaddr *)&ss, &len);
	ready(ntohs(((struct sockaddr_in *)&ss)->sin_port), ctx);
	uv_run(eloop, UV_RUN_DEFAULT);
	uv_loop_close(eloop);
	return 0;
}

#else

int uv_echo_serve(int port, uvnet_ready_fn ready, void *ctx)
{
	(void)port;
	(void)ready;
	(void)ctx;
	return -1;
}

#endif
