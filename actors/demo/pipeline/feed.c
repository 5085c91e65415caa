// SPDX-License-Identifier: MIT
/*
 * The feed: a synthetic market-data source. A periodic timer (feed_period,
 * 100 us by default) emits the ticks owed at the configured rate since the
 * previous expiry; each tick moves one random symbol's price by -1, 0 or +1.
 *
 * Where the ticks go. With the network (the default) the feed publishes
 * them as UDP multicast on the loopback interface, packed up to
 * FEED_DGRAM_TICKS per datagram (pipeline.h), to a group that feed_rx
 * (feed_rx.c) joined; feed_rx routes each tick to the strategy that owns
 * its symbol, as a market-data handler does with an exchange's feed. The
 * feed first checks that the group reaches the receiver: until feed_rx
 * says a datagram arrived (MSG_FEED_UP), it sends a probe datagram per
 * expiry and the ticks themselves straight to the strategies, so none is
 * lost while it finds out. If none comes back within FEED_PROBE_NS (a
 * host or container that does not route multicast on lo), or the socket
 * cannot be set up, or a send fails, it stays with, or goes back to, the
 * timer-driven feed: ticks as messages to the strategies (pipeline_owner()),
 * on whatever shard they are, and pipeline.feed_why says why (main prints
 * it). --no-net is the timer-driven feed from the start.
 *
 * A send refused by back-pressure (VZ_EFULL: the ring to that shard is
 * full and its outbox at its limit; for datagrams, 64 already in flight)
 * is counted and the ticks dropped, as a real feed handler drops what its
 * consumers cannot take; so is a tick for a strategy its supervisor is
 * restarting. The price walk goes on.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <veloz/io.h>

#include "pipeline.h"

#define MAX_BURST     8192		      /* ticks per expiry; more is not owed, it is lost */
#define FEED_PROBE_NS (1000ull * 1000 * 1000) /* how long the group may stay silent at first */
#define TAG_TICK      0
#define TAG_PROBE     1

struct feed {
	struct pipeline *p;
	int32_t *price; /* per symbol */
	uint64_t seq;
	uint64_t rng;
	uint64_t last_ns;
	double owed;
	vz_fd sock; /* the multicast sender (FEED_STARTING, FEED_MULTICAST) */
	vz_timer probe;
	struct sockaddr_in group;
	/* the datagram being filled */
	struct {
		struct feed_dgram h;
		struct tick t[FEED_DGRAM_TICKS];
	} d;
};

_Static_assert(sizeof(struct feed_dgram) + FEED_DGRAM_TICKS * sizeof(struct tick) <= 1400,
	       "a feed datagram fits an Ethernet frame");

static uint64_t next_random(uint64_t *s)
{
	/* xorshift64*: enough for a price walk */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static int mode(const struct pipeline *p)
{
	/* Relaxed: the feed's own thread wrote it (or main before start). */
	return atomic_load_explicit(&p->feed_mode, memory_order_relaxed);
}

void feed_fall_back(struct pipeline *p, const char *fmt, ...)
{
	va_list ap;

	if (mode(p) == FEED_TIMER)
		return; /* final: the first reason stays */
	va_start(ap, fmt);
	vsnprintf(p->feed_why, sizeof p->feed_why, fmt, ap);
	va_end(ap);
	/* Release: publishes feed_why to main, which acquires feed_mode
	 * before reading it; relaxed would let main print a half-written
	 * reason. */
	atomic_store_explicit(&p->feed_mode, FEED_TIMER, memory_order_release);
}

/* The feed goes back to messages: close the sender, stop probing. */
static void to_timer(vz_actor *self, struct feed *f)
{
	if (f->sock.id) {
		vz_io_close(self, f->sock);
		f->sock = VZ_FD_NULL;
	}
	if (f->probe.id)
		vz_timer_cancel(self, f->probe);
	f->probe = (vz_timer){0};
}

/* The sending socket: bound to 127.0.0.1, multicast out of the feed's
 * interface (lo) with TTL 0, so that no router would forward a datagram
 * beyond this host, and looped back to local members (the default, made
 * explicit). 0, or a reason in feed_why (fallen back). */
static int open_sender(vz_actor *self, struct feed *f)
{
	struct pipeline *p = f->p;
	struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct ip_mreqn ifr = {.imr_ifindex = (int)p->feed_ifindex};
	unsigned char ttl = 0, loop = 1;
	int rc, raw;

	rc = vz_udp_bind(self, (const struct sockaddr *)&lo, sizeof lo, 0, &f->sock);
	if (rc < 0) {
		feed_fall_back(p, "binding the sender: %s", vz_strerror(rc));
		return rc;
	}
	raw = vz_io_fileno(self, f->sock);
	if (setsockopt(raw, IPPROTO_IP, IP_MULTICAST_IF, &ifr, sizeof ifr) < 0 ||
	    setsockopt(raw, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0 ||
	    setsockopt(raw, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) < 0) {
		rc = vz_error_from_errno(errno);
		feed_fall_back(p, "multicast options on %s: %s", p->feed_ifname, vz_strerror(rc));
		to_timer(self, f);
		return rc;
	}
	f->group = (struct sockaddr_in){
	    .sin_family = AF_INET, .sin_port = p->feed_port, .sin_addr.s_addr = p->feed_group};
	return 0;
}

static int feed_init(vz_actor *self, void *state, const void *arg)
{
	struct feed *f = state;

	f->p = (struct pipeline *)arg;
	f->price = malloc(f->p->symbols * sizeof *f->price);
	if (!f->price)
		return VZ_ENOMEM;
	for (uint32_t s = 0; s < f->p->symbols; s++)
		f->price[s] = 10000;
	f->rng = 0x9e3779b97f4a7c15ull;
	f->last_ns = vz_now_ns(self);
	if (mode(f->p) == FEED_STARTING && open_sender(self, f) == 0) {
		int rc = vz_timer_arm(self, FEED_PROBE_NS, 0, TAG_PROBE, &f->probe);

		if (rc < 0) {
			free(f->price);
			return rc;
		}
	}
	return vz_timer_arm(self, f->p->feed_period_ns, f->p->feed_period_ns, TAG_TICK, NULL);
}

/* Send the datagram filled so far (count ticks; 0: a probe). Returns the
 * ticks that went out: all of them, none (VZ_EFULL: 64 datagrams already in
 * flight; counted as refused), or, when the send failed otherwise and the
 * feed fell back, the ones routed as messages instead. */
static uint64_t flush(vz_actor *self, struct feed *f)
{
	uint32_t n = f->d.h.count;
	uint64_t routed = 0;
	vz_io_req quiet = {.flags = VZ_IO_QUIET};
	int rc;

	f->d.h.magic = FEED_MAGIC;
	rc = vz_io_sendto(self, f->sock, &f->d, sizeof f->d.h + (size_t)n * sizeof(struct tick),
			  (const struct sockaddr *)&f->group, sizeof f->group, &quiet, NULL);
	f->d.h.count = 0;
	f->d.h.first_seq = f->seq + 1;
	if (rc == 0)
		return n;
	if (rc == VZ_EFULL) {
		live_add(&f->p->live.ticks_refused, n);
		return 0;
	}
	feed_fall_back(f->p, "sending to the group: %s", vz_strerror(rc));
	to_timer(self, f);
	for (uint32_t i = 0; i < n; i++)
		routed += pipeline_route(self, f->p, &f->d.t[i]) == 0;
	return routed;
}

static void emit(vz_actor *self, struct feed *f, uint64_t now_ns, uint64_t n)
{
	uint64_t sent = 0, refused = 0, unrouted = 0;
	int m = mode(f->p);

	if (m != FEED_TIMER && f->sock.id) {
		f->d.h.count = 0;
		f->d.h.first_seq = f->seq + 1;
		if (m == FEED_STARTING)
			(void)flush(self, f); /* the probe */
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = next_random(&f->rng);
		struct tick t = {
		    .symbol = (uint32_t)(r % f->p->symbols),
		    .seq = ++f->seq,
		    .t_ns = now_ns,
		};
		int rc;

		f->price[t.symbol] += (int32_t)((r >> 32) % 3) - 1;
		t.price = f->price[t.symbol];
		if (mode(f->p) == FEED_MULTICAST && f->sock.id) {
			f->d.t[f->d.h.count++] = t;
			if (f->d.h.count == FEED_DGRAM_TICKS)
				sent += flush(self, f);
			continue;
		}
		rc = pipeline_route(self, f->p, &t);
		if (rc == 0)
			sent++;
		else if (rc == VZ_EFULL)
			refused++;
		else if (rc == VZ_ESTALE)
			unrouted++;
	}
	if (mode(f->p) == FEED_MULTICAST && f->sock.id && f->d.h.count)
		sent += flush(self, f);
	live_add(&f->p->live.ticks, sent);
	if (refused)
		live_add(&f->p->live.ticks_refused, refused);
	if (unrouted)
		live_add(&f->p->live.ticks_unrouted, unrouted);
}

static void feed_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct feed *f = state;
	const vz_timer_event *ev;
	const vz_io_event *io;
	uint64_t n;

	if (vz_msg_type(m) == MSG_FEED_UP) {
		/* The group reaches the receiver: ticks go by multicast from
		 * the next expiry on. A message from feed_rx on this shard,
		 * so nothing to publish but the mode, for main's line. */
		if (mode(f->p) == FEED_STARTING) {
			if (f->probe.id)
				vz_timer_cancel(self, f->probe);
			f->probe = (vz_timer){0};
			atomic_store_explicit(
			    &f->p->feed_mode, FEED_MULTICAST,
			    memory_order_release); /* pairs as in feed_fall_back */
		}
		return;
	}
	if ((io = vz_io_event_of(m))) {
		/* A quiet datagram send failed (ECONNREFUSED, ENETUNREACH, ...). */
		if (io->kind == VZ_IO_SENDTO && io->res < 0 && mode(f->p) != FEED_TIMER) {
			feed_fall_back(f->p, "sending to the group: %s", vz_strerror(io->res));
			to_timer(self, f);
		}
		return;
	}
	if (vz_msg_type(m) != VZ_MSG_TIMER)
		return;
	ev = vz_msg_data(m);
	if (ev->tag == TAG_PROBE) {
		f->probe = (vz_timer){0};
		if (mode(f->p) == FEED_STARTING) {
			char g[INET_ADDRSTRLEN] = "?";

			inet_ntop(AF_INET, &f->group.sin_addr, g, sizeof g);
			feed_fall_back(f->p,
				       "no datagram came back from group %s on %s within %.1f s: "
				       "the host does not route multicast there",
				       g, f->p->feed_ifname, (double)FEED_PROBE_NS / 1e9);
			to_timer(self, f);
		}
		return;
	}
	f->owed += f->p->rate * (double)(ev->fired_ns - f->last_ns) / 1e9;
	f->last_ns = ev->fired_ns;
	n = (uint64_t)f->owed;
	if (n > MAX_BURST) {
		n = MAX_BURST;
		f->owed = 0;
	} else {
		f->owed -= (double)n;
	}
	emit(self, f, ev->fired_ns, n);
}

static void feed_stop(vz_actor *self, void *state)
{
	struct feed *f = state;

	(void)self;
	free(f->price);
}

const vz_actor_spec feed_spec = {
    .name = "feed",
    .state_size = sizeof(struct feed),
    .init = feed_init,
    .receive = feed_receive,
    .on_stop = feed_stop,
};
