// SPDX-License-Identifier: MIT
/*
 * The echo connection actor (echo.h). States: receiving (a multishot
 * receive armed; each chunk is queued back with a quiet send), or held
 * (the queue was full: chunks are kept, the receive is cancelled, and a
 * zero-length marker send's event says the queue drained).
 */
#include "echo.h"

#include <stdbool.h>

enum { TAG_DRAINED = 1 };

struct held {
	vz_io_buf buf;
	const void *data;
	uint32_t len;
};

struct echo {
	vz_fd fd;
	vz_io_op recv;
	bool receiving; /* a receive is armed (its final event has not come) */
	bool waiting;	/* a drain marker is queued */
	bool eof;	/* the peer closed: close once everything is written */
	unsigned nheld;
	struct held held[VZ_ECHO_MAX_HELD];
};

static void finish(vz_actor *self, struct echo *e)
{
	for (unsigned i = 0; i < e->nheld; i++)
		vz_io_buf_release(self, e->held[i].buf);
	e->nheld = 0;
	/* A graceful close: what is queued is still written. */
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

/* Queue the held chunks in order; true when all went. */
static bool flush_held(vz_actor *self, struct echo *e)
{
	unsigned i = 0;

	while (i < e->nheld) {
		const vz_io_req q = {.flags = VZ_IO_QUIET};
		int rc = vz_io_send(self, e->fd, e->held[i].data, e->held[i].len, &q, NULL);

		if (rc == VZ_EFULL)
			break;
		vz_io_buf_release(self, e->held[i].buf);
		if (rc < 0) {
			i++;
			e->eof = true; /* broken: give up */
			continue;
		}
		i++;
	}
	for (unsigned j = i; j < e->nheld; j++)
		e->held[j - i] = e->held[j];
	e->nheld -= i;
	return e->nheld == 0;
}

static void wait_drain(vz_actor *self, struct echo *e)
{
	const vz_io_req q = {.tag = TAG_DRAINED};

	if (e->waiting)
		return;
	/* Its event comes when everything queued before it is written. */
	if (vz_io_send(self, e->fd, NULL, 0, &q, NULL) == 0)
		e->waiting = true;
	else
		finish(self, e);
}

static void on_data(vz_actor *self, struct echo *e, const vz_msg *m, const vz_io_event *ev)
{
	const vz_io_req q = {.flags = VZ_IO_QUIET};
	int rc = VZ_EFULL;

	if (e->nheld == 0)
		rc = vz_io_send(self, e->fd, ev->data, ev->len, &q, NULL);
	if (rc == 0)
		return;
	if (rc != VZ_EFULL || e->nheld == VZ_ECHO_MAX_HELD ||
	    vz_io_buf_keep(self, m, &e->held[e->nheld].buf) < 0) {
		finish(self, e);
		return;
	}
	e->held[e->nheld].data = ev->data;
	e->held[e->nheld].len = ev->len;
	e->nheld++;
	if (e->receiving)
		vz_io_cancel(self, e->recv);
	wait_drain(self, e);
}

static void echo_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct echo *e = state;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev)
		return;
	switch (ev->kind) {
	case VZ_IO_RECV:
		if (!(ev->flags & VZ_IO_EV_MORE))
			e->receiving = false;
		if (ev->res > 0 && ev->len > 0) {
			on_data(self, e, m, ev);
			return;
		}
		if (ev->res == VZ_ECANCELED) {
			/* Paused on purpose. Resume here if the queue drained
			 * before this final event came (one receive at a time:
			 * the new one may only start now). */
			if (!e->waiting && !e->nheld && !e->eof && arm(self, e) < 0)
				finish(self, e);
			return;
		}
		if (ev->flags & VZ_IO_EV_MORE)
			return;
		/* End of stream or error: write back what is held, then go. */
		e->eof = true;
		if (e->nheld)
			wait_drain(self, e);
		else
			finish(self, e);
		return;
	case VZ_IO_SEND:
		if (ev->tag != TAG_DRAINED) {
			if (ev->res < 0)
				finish(self, e); /* a failed quiet send: broken */
			return;
		}
		e->waiting = false;
		if (ev->res < 0 || !flush_held(self, e)) {
			if (ev->res < 0)
				finish(self, e);
			else
				wait_drain(self, e);
			return;
		}
		if (e->eof)
			finish(self, e);
		else if (!e->receiving && arm(self, e) < 0)
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
