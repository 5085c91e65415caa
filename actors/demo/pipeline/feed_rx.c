// SPDX-License-Identifier: MIT
/*
 * feed_rx: the market-data handler of the multicast feed. Its init binds a
 * UDP socket to the feed's group (port picked by the kernel, published in
 * pipeline.feed_port for the feed) and joins the group on the feed's
 * interface (vz_udp_join); then it receives datagrams (vz_io_recvfrom:
 * multishot, many per loop turn, no copy), decodes the ticks packed in each
 * (struct feed_dgram, pipeline.h) and routes every tick to the strategy
 * that owns its symbol, exactly as the timer-driven feed does. The first
 * datagram that arrives, the feed's probe, tells the feed (MSG_FEED_UP)
 * that the group works. Gaps in the tick sequence are counted as lost
 * (datagrams the feed could not send, or the kernel dropped: a socket
 * buffer that overflowed).
 *
 * It lives on shard 0 with the feed (main.c), so the tick counters it
 * shares with the feed have one writing thread, and the ticks it sends
 * to a strategy follow those the feed sent directly before it switched.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <veloz/io.h>

#include "pipeline.h"

struct feed_rx {
	struct pipeline *p;
	vz_fd sock;
	uint64_t expect; /* the next tick seq; 0 before the first tick datagram */
	int told;	 /* MSG_FEED_UP sent */
};

static int feed_rx_init(vz_actor *self, void *state, const void *arg)
{
	struct feed_rx *r = state;
	struct pipeline *p = (struct pipeline *)arg;
	struct sockaddr_in g = {.sin_family = AF_INET, .sin_addr.s_addr = p->feed_group};
	uint32_t len = sizeof g;
	char gs[INET_ADDRSTRLEN] = "?";
	int rc;

	r->p = p;
	inet_ntop(AF_INET, &g.sin_addr, gs, sizeof gs);
	/* Bound to the group's address: only its datagrams come here. */
	rc = vz_udp_bind(self, (const struct sockaddr *)&g, sizeof g, 1, &r->sock);
	if (rc < 0) {
		feed_fall_back(p, "binding to group %s: %s", gs, vz_strerror(rc));
		return rc;
	}
	rc = vz_io_local_addr(self, r->sock, (struct sockaddr *)&g, &len);
	if (rc < 0) {
		feed_fall_back(p, "reading the bound port: %s", vz_strerror(rc));
		return rc;
	}
	p->feed_port = g.sin_port; /* before start: main's spawn of the feed reads it */
	rc = vz_udp_join(self, r->sock, (const struct sockaddr *)&g, sizeof g, p->feed_ifindex);
	if (rc < 0) {
		feed_fall_back(p, "joining group %s on %s: %s", gs, p->feed_ifname,
			       vz_strerror(rc));
		return rc;
	}
	rc = vz_io_recvfrom(self, r->sock, NULL, NULL);
	if (rc < 0)
		feed_fall_back(p, "receiving from the group: %s", vz_strerror(rc));
	return rc;
}

static void datagram(vz_actor *self, struct feed_rx *r, const vz_io_event *ev)
{
	struct pipeline *p = r->p;
	struct feed_dgram h;
	uint64_t refused = 0, unrouted = 0;

	if (ev->len < sizeof h || p->feed_drop)
		return; /* not ours, or --feed-drop: as if it never came */
	memcpy(&h, ev->data, sizeof h);
	if (h.magic != FEED_MAGIC || h.count > FEED_DGRAM_TICKS ||
	    ev->len != sizeof h + (size_t)h.count * sizeof(struct tick))
		return;
	if (!r->told) {
		r->told = 1;
		(void)vz_send(self, p->feed, MSG_FEED_UP, NULL, 0);
	}
	if (h.count == 0)
		return; /* a probe */
	live_add(&p->live.datagrams, 1);
	if (r->expect && h.first_seq > r->expect)
		live_add(&p->live.ticks_lost, h.first_seq - r->expect);
	r->expect = h.first_seq + h.count;
	for (uint32_t i = 0; i < h.count; i++) {
		struct tick t;
		int rc;

		/* The buffer is the runtime's, 16-aligned; the ticks follow a
		 * 16-byte header, but copy anyway rather than assume it. */
		memcpy(&t, (const unsigned char *)ev->data + sizeof h + i * sizeof t, sizeof t);
		rc = pipeline_route(self, p, &t);
		if (rc == VZ_EFULL)
			refused++;
		else if (rc == VZ_ESTALE)
			unrouted++;
	}
	live_add(&p->live.ticks_mcast, h.count);
	if (refused)
		live_add(&p->live.ticks_refused, refused);
	if (unrouted)
		live_add(&p->live.ticks_unrouted, unrouted);
}

static void feed_rx_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct feed_rx *r = state;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev || ev->kind != VZ_IO_RECVFROM)
		return;
	if (ev->flags & VZ_IO_EV_MORE) {
		if (ev->res >= 0)
			datagram(self, r, ev);
		return;
	}
	/* The receive ended (an error; a cancel only comes with our stop):
	 * start it again, the group is still joined. */
	if (!atomic_load_explicit(&r->p->stopping, memory_order_relaxed))
		(void)vz_io_recvfrom(self, r->sock, NULL, NULL);
}

const vz_actor_spec feed_rx_spec = {
    .name = "feed-rx",
    .state_size = sizeof(struct feed_rx),
    .init = feed_rx_init,
    .receive = feed_rx_receive,
};
