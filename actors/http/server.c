// SPDX-License-Identifier: MIT
/*
 * The HTTP/1.1 server (server.h): a per-shard date actor and a connection
 * actor per connection. A received chunk is parsed in place; each complete
 * request appends its answer to the connection's output buffer, which is
 * queued with one send per chunk (quiet: no event unless it fails), so a
 * pipelined burst costs one send however many requests it holds.
 */
#include "server.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "response.h"

/* Output buffer per connection; flushed early when less than OUT_SLACK is
 * left (no single answer is that long). */
#define OUT_CAP	  8192u
#define OUT_SLACK 1024u

enum { TAG_LAST = 1, TAG_DRAINED };

struct shard_slot {
	/* date: written by the shard's date actor, read by the connection
	 * actors of the same shard, all on one thread: no synchronisation. */
	alignas(64) char date[VZ_HTTP_DATE_LEN + 1];
	/* requests: one writer (this shard), relaxed snapshots elsewhere. */
	atomic_uint_fast64_t requests;
};

struct vz_http_server {
	vz_listener *listener;
	vz_http_limits limits;
	unsigned nshards;
	struct shard_slot *shard;
	vz_ref *dates; /* the date actors, for a failed create to stop */
};

/* ---- date actor ---------------------------------------------------------- */

struct date_actor {
	vz_http_server *s;
	unsigned shard;
};

struct date_arg {
	vz_http_server *s;
	unsigned shard;
};

/* The runtime's wall clock, not time(NULL): a simulated runtime's is
 * virtual, so its answers are the same in every run of a seed. */
static void date_refresh(vz_actor *self, struct date_actor *d)
{
	vz_http_date_format(d->s->shard[d->shard].date, (time_t)(vz_wall_ns(self) / 1000000000ll));
}

static int date_init(vz_actor *self, void *state, const void *arg)
{
	const struct date_arg *da = arg;
	struct date_actor *d = state;
	uint64_t to_next;

	d->s = da->s;
	d->shard = da->shard;
	date_refresh(self, d);
	/* Fire just after each second boundary, so the cached text turns
	 * over with the clock (at most one loop turn late). */
	to_next = 1000000000ull - (uint64_t)(vz_wall_ns(self) % 1000000000ll) + 1000;
	return vz_timer_arm(self, to_next, 1000000000ull, 0, NULL);
}

static void date_receive(vz_actor *self, void *state, const vz_msg *m)
{
	if (vz_msg_type(m) == VZ_MSG_TIMER)
		date_refresh(self, state);
}

static const vz_actor_spec date_spec = {
    .name = "http-date",
    .state_size = sizeof(struct date_actor),
    .init = date_init,
    .receive = date_receive,
};

/* ---- connection actor ---------------------------------------------------- */

struct conn {
	vz_http_server *s;
	struct shard_slot *slot;
	vz_fd fd;
	vz_io_op recv;
	bool receiving;
	bool closing; /* the last answer is queued: close once it is written */
	bool paused;  /* the send queue filled: receiving stopped until it drains */
	uint32_t used;
	vz_http_parser p;
	char out[OUT_CAP];
};

static void finish(vz_actor *self, struct conn *c)
{
	vz_io_close(self, c->fd);
	vz_stop(vz_actor_runtime(self), vz_self(self));
}

/* Queue the output buffer. The last one asks for its event, so the
 * connection closes only once the answer is written. */
static int flush(vz_actor *self, struct conn *c, bool last)
{
	vz_io_req q = {.tag = last ? TAG_LAST : 0, .flags = last ? 0 : VZ_IO_QUIET};
	const vz_io_req marker = {.tag = TAG_DRAINED};
	long queued;
	int rc;

	if (c->used == 0 && !last)
		return 0;
	rc = vz_io_send(self, c->fd, c->out, c->used, &q, NULL);
	if (rc == VZ_EFULL) {
		/* A client pipelining faster than it reads: stop receiving,
		 * and queue the answers to what is already on its way past
		 * the bound (raised by just what they need; bounded, since no
		 * new receive starts). A zero-length marker's event says when
		 * the queue has drained. */
		queued = vz_io_sendq_bytes(self, c->fd);
		if (queued < 0 ||
		    vz_io_set_sendq_limit(self, c->fd, (size_t)queued + c->used + 1) < 0)
			return VZ_EFULL;
		rc = vz_io_send(self, c->fd, c->out, c->used, &q, NULL);
		if (rc == 0 && !c->paused) {
			rc = vz_io_send(self, c->fd, NULL, 0, &marker, NULL);
			c->paused = rc == 0;
		}
		if (rc == 0 && c->receiving)
			vz_io_cancel(self, c->recv);
	}
	c->used = 0;
	return rc;
}

static void count(atomic_uint_fast64_t *ctr)
{
	/* single writer: load + store, no locked RMW (see shard_slot) */
	atomic_store_explicit(ctr, atomic_load_explicit(ctr, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Parse one received chunk and answer every request it completes. */
static void on_data(vz_actor *self, struct conn *c, const char *data, size_t len)
{
	size_t off = 0;

	while (off < len && !c->closing) {
		vz_http_event ev;
		size_t w;
		int close_after;

		off += vz_http_parse(&c->p, data + off, len - off, &ev);
		if (ev.kind == VZ_HTTP_EV_NONE)
			break;
		if (ev.kind == VZ_HTTP_EV_BODY)
			continue; /* no route takes a body: skipped */
		if (OUT_CAP - c->used < OUT_SLACK && flush(self, c, false) < 0)
			goto broken;
		count(&c->slot->requests);
		if (ev.kind == VZ_HTTP_EV_ERROR) {
			w = vz_http_answer_error(c->out + c->used, OUT_CAP - c->used, ev.status,
						 c->slot->date);
			close_after = 1;
		} else {
			w = vz_http_answer(c->out + c->used, OUT_CAP - c->used, &c->p.req,
					   c->slot->date, &close_after);
		}
		c->used += (uint32_t)w;
		if (close_after)
			c->closing = true;
	}
	if (flush(self, c, c->closing) < 0)
		goto broken;
	if (c->closing && c->receiving) {
		/* Nothing more is read; the close waits for the last send. */
		vz_io_cancel(self, c->recv);
	}
	return;
broken:
	/* A dead or shut-down connection (VZ_EPIPE, ...), or no memory:
	 * drop it. */
	vz_io_abort(self, c->fd);
	vz_stop(vz_actor_runtime(self), vz_self(self));
}

static int conn_init(vz_actor *self, void *state, const void *arg)
{
	const vz_listener_conn *lc = arg;
	struct conn *c = state;
	int rc;

	c->s = (vz_http_server *)lc->user;
	c->slot = &c->s->shard[lc->shard];
	vz_http_parser_init(&c->p, &c->s->limits);
	rc = vz_listener_adopt(self, arg, &c->fd);
	if (rc < 0)
		return rc;
	rc = vz_io_recv(self, c->fd, NULL, &c->recv);
	c->receiving = rc == 0;
	return rc;
}

static int rearm(vz_actor *self, struct conn *c)
{
	int rc = vz_io_recv(self, c->fd, NULL, &c->recv);

	c->receiving = rc == 0;
	return rc;
}

static void conn_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct conn *c = state;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev)
		return;
	if (ev->kind == VZ_IO_RECV) {
		if (!(ev->flags & VZ_IO_EV_MORE))
			c->receiving = false;
		if (ev->res > 0 && ev->len > 0) {
			if (!c->closing)
				on_data(self, c, ev->data, ev->len);
			return;
		}
		if (ev->flags & VZ_IO_EV_MORE)
			return;
		/* Our own cancel for a pause: receive again if the queue
		 * drained before this final event came (one receive at a
		 * time), else the drain marker's event will. */
		if (ev->res == VZ_ECANCELED && !c->closing) {
			if (!c->paused && rearm(self, c) < 0)
				finish(self, c);
			return;
		}
		/* End of stream, error or our cancel for a close: when an
		 * answer is still being written, its event finishes the
		 * connection. The answers already queued (to requests sent
		 * just before the peer's end of stream) are written first:
		 * a zero-length last send's event says when, since stopping
		 * now would drop them. */
		if (!c->closing) {
			c->closing = true;
			if (flush(self, c, true) < 0)
				finish(self, c);
		}
		return;
	}
	if (ev->kind != VZ_IO_SEND)
		return;
	if (ev->tag == TAG_LAST || ev->res < 0) {
		finish(self, c);
	} else if (ev->tag == TAG_DRAINED) {
		c->paused = false;
		vz_io_set_sendq_limit(self, c->fd, VZ_IO_SENDQ_DEFAULT);
		if (!c->receiving && !c->closing && rearm(self, c) < 0)
			finish(self, c);
	}
}

static const vz_actor_spec conn_spec = {
    .name = "http-conn",
    .state_size = sizeof(struct conn),
    .init = conn_init,
    .receive = conn_receive,
};

/* ---- the server ---------------------------------------------------------- */

int vz_http_server_create(vz_runtime *rt, const vz_http_server_opts *opts, vz_http_server **out)
{
	unsigned total = vz_runtime_shards(rt);
	vz_listener_opts lo;
	vz_http_server *s;
	int rc;

	if (!rt || !opts || !out || opts->listen.nshards > total)
		return VZ_EINVAL;
	s = calloc(1, sizeof *s);
	if (!s)
		return VZ_ENOMEM;
	s->limits = opts->limits;
	s->nshards = opts->listen.nshards ? opts->listen.nshards : total;
	s->shard = aligned_alloc(64, s->nshards * sizeof *s->shard);
	s->dates = calloc(s->nshards, sizeof *s->dates);
	if (!s->shard || !s->dates) {
		rc = VZ_ENOMEM;
		goto fail;
	}
	memset(s->shard, 0, s->nshards * sizeof *s->shard);
	for (unsigned i = 0; i < s->nshards; i++) {
		struct date_arg da = {.s = s, .shard = i};

		rc = vz_spawn(rt, i, &date_spec, &da, &s->dates[i]);
		if (rc < 0)
			goto fail;
	}
	lo = opts->listen;
	lo.nshards = s->nshards;
	lo.conn_spec = &conn_spec;
	lo.conn_user = s;
	rc = vz_listener_create(rt, &lo, &s->listener);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	/* Before start a stop is immediate: no date actor outlives s. */
	for (unsigned i = 0; s->dates && i < s->nshards; i++)
		if (!vz_ref_is_null(s->dates[i]))
			vz_stop(rt, s->dates[i]);
	free(s->dates);
	free(s->shard);
	free(s);
	return rc;
}

uint16_t vz_http_server_port(const vz_http_server *s)
{
	return s ? vz_listener_port(s->listener) : 0;
}

uint64_t vz_http_server_requests(const vz_http_server *s, unsigned shard)
{
	if (!s || shard >= s->nshards)
		return 0;
	return atomic_load_explicit(&s->shard[shard].requests, memory_order_relaxed);
}

uint64_t vz_http_server_connections(const vz_http_server *s, unsigned shard)
{
	return s ? vz_listener_accepted(s->listener, shard) : 0;
}

void vz_http_server_destroy(vz_http_server *s)
{
	if (!s)
		return;
	vz_listener_destroy(s->listener);
	free(s->dates);
	free(s->shard);
	free(s);
}
