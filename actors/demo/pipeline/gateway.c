// SPDX-License-Identifier: MIT
/*
 * The order gateway: the one place orders leave the process.
 *
 * Each order from a strategy gets a gateway id and a slot in a fixed table
 * (no allocation per order), goes to the exchange, and arms an order
 * timeout on the shard's timer wheel. The exchange's ACK cancels the
 * timeout, records tick-to-acknowledgement latency (from the feed's tick to
 * now) and reports the fill to the strategy; a timeout that fires first
 * rejects the order to the strategy, and an ACK arriving after it is
 * counted as late. A second periodic timer submits a risk job to the
 * worker pool (blocking-style work that must not run on a shard); a third
 * publishes the last second's latency percentiles for the progress line.
 *
 * The exchange is reached over TCP on 127.0.0.1 (connected in init, to the
 * port the exchange's init published): each order is one 32-byte record
 * queued on the connection with a quiet send, and the acknowledgements
 * come back as 16-byte records in the receive stream, possibly split
 * across chunks. If the connection fails or breaks, the gateway says so
 * (live.net_errors) and carries on over messages, as with --no-net.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

#define TABLE_SIZE 65536u /* orders in flight; power of two */
#define TAG_RISK   1u
#define TAG_SECOND 2u
#define TAG_ORDER  (1ull << 63) /* | gateway id: an order timeout */

struct pending {
	uint64_t id; /* 0: free */
	vz_ref strategy;
	uint64_t t_tick_ns;
	vz_timer timeout;
	uint32_t symbol;
	int32_t qty;
};

struct gateway {
	struct pipeline *p;
	struct pending *table;
	uint64_t next_id;
	int64_t net_position;
	int risk_off; /* no worker pool here */
	uint64_t risk_unavailable;
	struct lat_hist all, second;
	int net; /* the TCP connection is in use */
	vz_fd conn;
	unsigned char partial[sizeof(struct ack)];
	size_t npartial;
};

struct risk_input {
	int64_t net_position;
	uint64_t open_orders;
};

/* Runs on a worker thread: a small Monte Carlo of the position's one-day
 * loss, standing in for the risk model a real engine would call. */
static int risk_job(void *arg, const void *payload, size_t len, void *result, size_t *result_len)
{
	const struct risk_input *in = payload;
	uint64_t s = 0x2545f4914f6cdd1dull;
	double worst = 0;

	(void)arg;
	if (len != sizeof *in)
		return VZ_EINVAL;
	for (int i = 0; i < 20000; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		double move = ((double)(s % 2001) - 1000.0) / 1000.0;
		double loss = -move * (double)in->net_position;
		if (loss > worst)
			worst = loss;
	}
	memcpy(result, &worst, sizeof worst);
	*result_len = sizeof worst;
	return 0;
}

static int gateway_init(vz_actor *self, void *state, const void *arg)
{
	struct gateway *g = state;
	int rc;

	g->p = (struct pipeline *)arg;
	g->table = calloc(TABLE_SIZE, sizeof *g->table);
	if (!g->table)
		return VZ_ENOMEM;
	if (g->p->net) {
		struct sockaddr_in sin = {.sin_family = AF_INET,
					  .sin_port = htons(g->p->exchange_port)};

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		/* Orders sent before the connect completes wait in the
		 * connection's queue. */
		rc = vz_tcp_connect(self, (const struct sockaddr *)&sin, sizeof sin, NULL, &g->conn,
				    NULL);
		if (rc < 0)
			fprintf(stderr,
				"veloz-demo: gateway cannot connect: %s; orders go as "
				"messages\n",
				vz_strerror(rc));
		g->net = rc == 0;
	}
	rc = vz_timer_arm(self, g->p->risk_period_ns, g->p->risk_period_ns, TAG_RISK, NULL);
	if (rc == 0)
		rc = vz_timer_arm(self, 1000000000ull, 1000000000ull, TAG_SECOND, NULL);
	return rc;
}

static void to_strategy(vz_actor *self, const struct pending *o, uint32_t type, int32_t qty)
{
	struct report r = {.symbol = o->symbol, .qty = qty};

	vz_send(self, o->strategy, type, &r, sizeof r);
}

static int send_new(vz_actor *self, struct gateway *g, const struct order *o)
{
	if (g->net) {
		vz_io_req quiet = {.flags = VZ_IO_QUIET};

		return vz_io_send(self, g->conn, o, sizeof *o, &quiet, NULL);
	}
	return vz_send(self, g->p->exchange, MSG_NEW, o, sizeof *o);
}

static void on_order(vz_actor *self, struct gateway *g, const vz_msg *m)
{
	const struct order *in = vz_msg_data(m);
	uint64_t id = ++g->next_id;
	struct pending *o = &g->table[id & (TABLE_SIZE - 1)];
	struct order out = *in;

	if (o->id) { /* the slot's previous order is still in flight */
		struct pending tmp = {.strategy = vz_msg_sender(m), .symbol = in->symbol};

		live_add(&g->p->live.rejected, 1);
		to_strategy(self, &tmp, MSG_REJECT, 0);
		return;
	}
	*o = (struct pending){.id = id,
			      .strategy = vz_msg_sender(m),
			      .t_tick_ns = in->t_tick_ns,
			      .symbol = in->symbol,
			      .qty = in->qty};
	out.id = id;
	if (send_new(self, g, &out) < 0 ||
	    vz_timer_arm(self, g->p->order_timeout_ns, 0, TAG_ORDER | id, &o->timeout) < 0) {
		live_add(&g->p->live.rejected, 1);
		to_strategy(self, o, MSG_REJECT, 0);
		o->id = 0;
		return;
	}
	live_add(&g->p->live.orders, 1);
}

static void on_ack(vz_actor *self, struct gateway *g, const struct ack *a)
{
	struct pending *o = &g->table[a->id & (TABLE_SIZE - 1)];
	uint64_t lat;

	if (o->id != a->id) { /* its timeout fired first */
		live_add(&g->p->live.late_acks, 1);
		return;
	}
	vz_timer_cancel(self, o->timeout);
	lat = vz_now_ns(self) - o->t_tick_ns;
	lat_record(&g->all, lat);
	lat_record(&g->second, lat);
	g->net_position += a->qty;
	to_strategy(self, o, MSG_FILL, a->qty);
	o->id = 0;
	live_add(&g->p->live.acks, 1);
}

/* The order connection failed or broke: say so once, go on over messages
 * (orders in flight on it time out and are counted). */
static void net_down(vz_actor *self, struct gateway *g, const vz_io_event *ev)
{
	if (!g->net)
		return;
	g->net = 0;
	vz_io_close(self, g->conn);
	/* Relaxed: only whether to say it; the runtime's stop closes the
	 * exchange's end, which is no failure. */
	if (atomic_load_explicit(&g->p->stopping, memory_order_relaxed))
		return;
	fprintf(stderr,
		"veloz-demo: order connection to the exchange: %s; orders go as "
		"messages\n",
		ev->res < 0 ? vz_strerror(ev->res) : "closed by the exchange");
	live_add(&g->p->live.net_errors, 1);
}

/* Acknowledgement records from the stream; one may be split across
 * chunks (the remainder waits in `partial`). */
static void on_ack_bytes(vz_actor *self, struct gateway *g, const unsigned char *data, size_t len)
{
	struct ack a;

	if (g->npartial) {
		size_t need = sizeof a - g->npartial, take = len < need ? len : need;

		memcpy(g->partial + g->npartial, data, take);
		g->npartial += take;
		data += take;
		len -= take;
		if (g->npartial < sizeof a)
			return;
		memcpy(&a, g->partial, sizeof a);
		on_ack(self, g, &a);
		g->npartial = 0;
	}
	for (; len >= sizeof a; data += sizeof a, len -= sizeof a) {
		memcpy(&a, data, sizeof a);
		on_ack(self, g, &a);
	}
	memcpy(g->partial, data, len);
	g->npartial = len;
}

static void on_io(vz_actor *self, struct gateway *g, const vz_io_event *ev)
{
	switch (ev->kind) {
	case VZ_IO_CONNECT:
		if (ev->res < 0 || vz_io_recv(self, g->conn, NULL, NULL) < 0)
			net_down(self, g, ev);
		break;
	case VZ_IO_RECV:
		if (ev->res > 0)
			on_ack_bytes(self, g, ev->data, ev->len);
		else if (!(ev->flags & VZ_IO_EV_MORE))
			net_down(self, g, ev);
		break;
	case VZ_IO_SEND: /* quiet sends report only failures */
		net_down(self, g, ev);
		break;
	}
}

static void on_timer(vz_actor *self, struct gateway *g, const vz_timer_event *ev)
{
	if (ev->tag & TAG_ORDER) {
		uint64_t id = ev->tag & ~TAG_ORDER;
		struct pending *o = &g->table[id & (TABLE_SIZE - 1)];

		if (o->id == id) {
			live_add(&g->p->live.timeouts, 1);
			to_strategy(self, o, MSG_REJECT, 0);
			o->id = 0;
		}
	} else if (ev->tag == TAG_RISK && !g->risk_off) {
		struct risk_input in = {.net_position = g->net_position};
		vz_job job = {.fn = risk_job, .payload = &in, .payload_len = sizeof in};
		int rc = vz_pool_submit(self, &job, NULL);

		if (rc == VZ_ENOSYS) /* no CPU could host a worker: stop asking */
			g->risk_off = 1;
		if (rc < 0 && rc != VZ_ESTOPPED) /* (the runtime stopping is no failure) */
			g->risk_unavailable++;
	} else if (ev->tag == TAG_SECOND) {
		atomic_store_explicit(&g->p->live.interval_p50, lat_quantile(&g->second, 0.5),
				      memory_order_relaxed);
		atomic_store_explicit(&g->p->live.interval_p99, lat_quantile(&g->second, 0.99),
				      memory_order_relaxed);
		lat_reset(&g->second);
	}
}

static void gateway_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct gateway *g = state;
	vz_pool_done done;

	switch (vz_msg_type(m)) {
	case MSG_ORDER:
		on_order(self, g, m);
		break;
	case MSG_ACK:
		on_ack(self, g, vz_msg_data(m));
		break;
	case VZ_MSG_IO:
		on_io(self, g, vz_io_event_of(m));
		break;
	case VZ_MSG_TIMER:
		on_timer(self, g, vz_msg_data(m));
		break;
	case VZ_MSG_POOL_DONE:
		if (vz_pool_done_read(m, &done, NULL) == 0 && done.status == 0)
			live_add(&g->p->live.risk_checks, 1);
		break;
	}
}

static void gateway_stop(vz_actor *self, void *state)
{
	struct gateway *g = state;

	(void)self;
	/* Main reads these once vz_runtime_stop() has returned. */
	g->p->latency = g->all;
	g->p->net_position = g->net_position;
	g->p->risk_unavailable = g->risk_unavailable;
	free(g->table);
}

const vz_actor_spec gateway_spec = {
    .name = "gateway",
    .state_size = sizeof(struct gateway),
    .init = gateway_init,
    .receive = gateway_receive,
    .on_stop = gateway_stop,
};
