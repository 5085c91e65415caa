// SPDX-License-Identifier: MIT
/*
 * The echo connection actor (echo.h). Two states: receiving (a multishot
 * receive armed; each chunk is queued back with a quiet send) and paused
 * (the send queue was full: the receive is cancelled, the chunks still on
 * their way are queued past the bound, and the event of a zero-length
 * marker send says when the queue has drained). It closes gracefully and
 * stops when a last marker's event says that everything queued is written.
 */
#include "echo.h"

#include <stdbool.h>

enum { TAG_DRAINED = 1, TAG_CLOSED };

struct echo {
	vz_fd fd;
	vz_io_op recv;
	bool receiving; /* a receive is armed (its final event has not come) */
	bool paused;	/* the queue filled: waiting for the drain marker */
	bool eof;	/* the peer closed: close once everything is written */
	bool closing;	/* closed gracefully: stop at the close marker's event */
};

static void finish(vz_actor *self, struct echo *e)
{
	const vz_io_req q = {.tag = TAG_CLOSED};

	if (e->closing)
		return;
	e->closing = true;
	/* A graceful close: what is queued is still written, and the event
	 * of a zero-length marker says when. Stopping drops whatever the
	 * queue still holds (io.h: an actor's stop closes its descriptors at
	 * once), so the actor stops only then, or now if the stream is
	 * broken and nothing can be written any more. */
	if (vz_io_send(self, e->fd, NULL, 0, &q, NULL) == 0 && vz_io_close(self, e->fd) == 0)
		return;
	vz_io_close(self, e->fd);
	vz_stop(vz_actor_runtime(self), vz_self(self));
}

static int arm(vz_actor *self, struct echo *e)
{
	int rc = vz_io_recv(self, e->fd, NULL, &e->recv);

	e->receiving = rc == 0;
	return rc;
}

static int echo_init(vz_actor *self, void *state, const void *arg)
{
	struct echo *e = state;
	int rc = vz_listener_adopt(self, arg, &e->fd);

	if (rc < 0)
		return rc;
	return arm(self, e);
}

/* Its event comes when everything queued before it is written. */
static int queue_marker(vz_actor *self, struct echo *e)
{
	const vz_io_req q = {.tag = TAG_DRAINED};

	return vz_io_send(self, e->fd, NULL, 0, &q, NULL);
}

static void on_data(vz_actor *self, struct echo *e, const void *data, uint32_t len)
{
	const vz_io_req q = {.flags = VZ_IO_QUIET};
	int rc = vz_io_send(self, e->fd, data, len, &q, NULL);
	long queued;

	if (rc == 0)
		return;
	if (rc != VZ_EFULL) {
		finish(self, e);
		return;
	}
	/* Full: stop receiving, and take this chunk (and the few still on
	 * their way) past the bound rather than drop or hold them. */
	queued = vz_io_sendq_bytes(self, e->fd);
	if (queued < 0 || vz_io_set_sendq_limit(self, e->fd, (size_t)queued + len) < 0 ||
	    vz_io_send(self, e->fd, data, len, &q, NULL) < 0) {
		finish(self, e);
		return;
	}
	if (e->receiving)
		vz_io_cancel(self, e->recv);
	if (!e->paused) {
		if (queue_marker(self, e) < 0 &&
		    (vz_io_set_sendq_limit(self, e->fd, (size_t)queued + len + 1) < 0 ||
		     queue_marker(self, e) < 0)) {
			finish(self, e);
			return;
		}
		e->paused = true;
	}
}

static void echo_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct echo *e = state;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev)
		return;
	if (e->closing) {
		/* Only the close marker's event matters now (the receive ends
		 * with VZ_ECANCELED, quiet sends may still fail). */
		if (ev->kind == VZ_IO_SEND && ev->tag == TAG_CLOSED)
			vz_stop(vz_actor_runtime(self), vz_self(self));
		return;
	}
	switch (ev->kind) {
	case VZ_IO_RECV:
		if (!(ev->flags & VZ_IO_EV_MORE))
			e->receiving = false;
		if (ev->res > 0 && ev->len > 0) {
			if (!e->eof)
				on_data(self, e, ev->data, ev->len);
			return;
		}
		if (ev->flags & VZ_IO_EV_MORE)
			return;
		if (ev->res == VZ_ECANCELED) {
			/* Paused on purpose. Resume here if the queue drained
			 * before this final event came (one receive at a time:
			 * the new one may only start now). */
			if (!e->paused && !e->eof && arm(self, e) < 0)
				finish(self, e);
			return;
		}
		/* End of stream or error: close once the queue is written
		 * (vz_io_close is graceful), unless the drain marker is
		 * still to come. */
		e->eof = true;
		if (!e->paused)
			finish(self, e);
		return;
	case VZ_IO_SEND:
		if (ev->tag != TAG_DRAINED) {
			if (ev->res < 0)
				finish(self, e); /* a failed quiet send: broken */
			return;
		}
		e->paused = false;
		if (ev->res < 0 || e->eof) {
			finish(self, e);
			return;
		}
		/* Drained: the bound again, and receive again (now, or when the
		 * cancelled receive's final event comes). */
		vz_io_set_sendq_limit(self, e->fd, VZ_IO_SENDQ_DEFAULT);
		if (!e->receiving && arm(self, e) < 0)
			finish(self, e);
		return;
	default:
		return;
	}
}

const vz_actor_spec vz_echo_conn_spec = {
    .name = "echo-conn",
    .state_size = sizeof(struct echo),
    .init = echo_init,
    .receive = echo_receive,
};

int vz_echo_server_create(vz_runtime *rt, const vz_listener_opts *opts, vz_listener **out)
{
	vz_listener_opts o;

	if (!opts)
		return VZ_EINVAL;
	o = *opts;
	o.conn_spec = &vz_echo_conn_spec;
	return vz_listener_create(rt, &o, out);
}
