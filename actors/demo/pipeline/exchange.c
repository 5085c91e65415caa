// SPDX-License-Identifier: MIT
/*
 * The exchange simulator: acknowledges every new order at its limit price,
 * in the order received (what a matching engine's order entry does before
 * any matching). It lives on the last shard, so every order crosses shards
 * twice.
 *
 * Order entry is TCP on 127.0.0.1, as a real venue's would be: the
 * exchange listens on a port the kernel picks (published in
 * pipeline.exchange_port before the runtime starts), accepts the
 * gateway's connection, reads fixed 32-byte order records from the
 * stream (a record may be split across receives: the remainder waits in
 * `partial`) and answers each chunk's orders with one send of 16-byte
 * acknowledgement records. With --no-net the same orders arrive as
 * MSG_NEW messages and are answered with MSG_ACK.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "pipeline.h"

#define MAX_ACKS (VZ_IO_RECV_CHUNK / sizeof(struct order) + 1)

struct exchange {
	struct pipeline *p;
	uint64_t orders;
	vz_fd listener, conn;
	unsigned char partial[sizeof(struct order)];
	size_t npartial;
	struct ack acks[MAX_ACKS];
};

static int exchange_init(vz_actor *self, void *state, const void *arg)
{
	struct exchange *x = state;
	struct sockaddr_in sin = {.sin_family = AF_INET};
	uint32_t len = sizeof sin;
	int rc;

	x->p = (struct pipeline *)arg;
	if (!x->p->net)
		return 0;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rc = vz_tcp_listen(self, (const struct sockaddr *)&sin, sizeof sin, NULL, &x->listener);
	if (rc == 0)
		rc = vz_io_local_addr(self, x->listener, (struct sockaddr *)&sin, &len);
	if (rc == 0)
		rc = vz_io_accept(self, x->listener, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "veloz-demo: exchange cannot listen on 127.0.0.1: %s\n",
			vz_strerror(rc));
		return rc;
	}
	/* Read by the gateway's init, which runs after this one, before
	 * the runtime starts. */
	x->p->exchange_port = ntohs(sin.sin_port);
	return 0;
}

static struct ack ack_of(const struct order *o)
{
	return (struct ack){.id = o->id, .price = o->price, .qty = o->qty};
}

/* Answer every whole order record in data[0..len), keeping a split one. */
static void on_bytes(vz_actor *self, struct exchange *x, const unsigned char *data, size_t len)
{
	size_t nacks = 0;
	struct order o;

	if (x->npartial) {
		size_t need = sizeof o - x->npartial, take = len < need ? len : need;

		memcpy(x->partial + x->npartial, data, take);
		x->npartial += take;
		data += take;
		len -= take;
		if (x->npartial < sizeof o)
			return;
		memcpy(&o, x->partial, sizeof o);
		x->acks[nacks++] = ack_of(&o);
		x->npartial = 0;
	}
	for (; len >= sizeof o; data += sizeof o, len -= sizeof o) {
		memcpy(&o, data, sizeof o);
		x->acks[nacks++] = ack_of(&o);
	}
	memcpy(x->partial, data, len);
	x->npartial = len;
	x->orders += nacks;
	if (nacks) {
		vz_io_req quiet = {.flags = VZ_IO_QUIET};

		/* VZ_EFULL would mean the gateway stopped reading: its
		 * orders then time out, which the demo counts. */
		vz_io_send(self, x->conn, x->acks, nacks * sizeof x->acks[0], &quiet, NULL);
	}
}

static void on_io(vz_actor *self, struct exchange *x, const vz_io_event *ev)
{
	switch (ev->kind) {
	case VZ_IO_ACCEPT:
		if (ev->res < 0 || x->conn.id) /* one gateway: a second one is refused */
			break;
		x->conn = ev->accepted;
		vz_io_recv(self, x->conn, NULL, NULL);
		break;
	case VZ_IO_RECV:
		if (ev->res > 0)
			on_bytes(self, x, ev->data, ev->len);
		else if (!(ev->flags & VZ_IO_EV_MORE)) /* the gateway closed, or failed */
			vz_io_close(self, x->conn);
		break;
	}
}

static void exchange_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct exchange *x = state;
	const struct order *o;
	struct ack a;

	if (vz_msg_type(m) == VZ_MSG_IO) {
		on_io(self, x, vz_io_event_of(m));
		return;
	}
	if (vz_msg_type(m) != MSG_NEW)
		return;
	o = vz_msg_data(m);
	a = ack_of(o);
	x->orders++;
	vz_reply(self, m, MSG_ACK, &a, sizeof a);
}

const vz_actor_spec exchange_spec = {
    .name = "exchange",
    .state_size = sizeof(struct exchange),
    .init = exchange_init,
    .receive = exchange_receive,
};
