// SPDX-License-Identifier: MIT
/*
 * The in-memory network of a simulated runtime: TCP (listen, connect,
 * accept, byte streams with half-close and reset) and UDP between the
 * actors of one simulation, with virtual descriptors and addresses. What
 * the kernel would do on loopback, it does in memory, with every choice
 * drawn from the simulation's PRNG:
 *
 * - Each segment (a connection request, its answer, stream bytes, an end
 *   of stream, a reset, a datagram) travels towards one receiving socket
 *   and arrives after a drawn delay (0..net_delay_ns of virtual time), but
 *   never before the segment sent towards the same socket before it: one
 *   FIFO per receiving socket, so a connection's bytes arrive in order and
 *   different connections reorder freely. Which due arrival is applied next
 *   is drawn too, so even zero delays interleave connections.
 * - A stream has a window drawn per connection (1..64 KiB): a write takes
 *   at most what the peer has not yet read plus what is in flight leaves
 *   free of it (a short write), and waits while it is full; a slow reader
 *   thus holds its writer back as TCP's flow control does.
 * - Faults (vz_sim_options.faults): a connection reset from the network
 *   (both ends get a reset), a short write or read, a connect refused or a
 *   send/receive failing with ECONNRESET (the connection is gone for both
 *   ends), a datagram dropped.
 *
 * The operations themselves (their readiness, their results in the
 * backend's terms: res, cflags, provided buffers) are answered here for
 * sim_io.c, which owns the lists and the callbacks. Driving thread only.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "aio/aio.h"
#include "sim/sim.h"
#include "sim/sim_net.h"

enum { EV_SYN = 1, EV_SYNACK, EV_REFUSED, EV_DATA, EV_FIN, EV_RST, EV_DGRAM };
enum { SK_NEW = 1, SK_LISTEN, SK_STREAM, SK_DGRAM };

#define DGRAM_QUEUE_MAX 256u   /* datagrams waiting at one socket; more are dropped */
#define EPHEMERAL_LO	32768u /* virtual ports for port 0 and connecting ends */
#define EPHEMERAL_HI	60999u
#define BACKLOG_DEFAULT 4096

/* A segment on its way to, or arrived at, one socket. */
struct net_ev {
	struct net_ev *next;
	uint64_t at;		     /* virtual arrival time */
	uint32_t kind;		     /* EV_* */
	int from;		     /* sending socket's index (-1: the network) */
	uint32_t len;		     /* DATA, DGRAM: bytes at data */
	uint32_t off;		     /* DATA: bytes already read */
	struct sockaddr_storage src; /* DGRAM: the sender's address */
	uint32_t srclen;
	unsigned char data[];
};

struct sock {
	int idx;  /* in the table: the descriptor is VZ__SIM_FD_BASE + idx */
	int kind; /* SK_* */
	int family;
	bool open;	  /* not closed by its owner (counted in net->open) */
	bool reuse;	  /* SO_REUSEPORT: may share its port */
	bool connecting;  /* connect sent, no answer yet */
	bool conn_done;	  /* the connect's answer is in: conn_res */
	bool established; /* stream with a peer */
	bool rst;	  /* reset: receives and sends fail with ECONNRESET */
	bool fin_in;	  /* the peer's end of stream arrived (after its bytes) */
	bool fin_sent;	  /* our end of stream is on its way */
	bool rd_shut;	  /* shutdown(SHUT_RD) */
	bool linger0;	  /* close resets */
	int conn_res;	  /* 0 or -errno */
	struct sockaddr_storage local, remote;
	uint32_t local_len, remote_len;
	int peer;	   /* stream: the other end's index, -1 */
	uint32_t window;   /* stream: bytes in flight + unread at the peer, at most */
	uint64_t inflight; /* stream: bytes sent by this end, not yet arrived */
	/* Arrived and not yet read: DATA segments (stream) or datagrams. */
	struct net_ev *rx_head, *rx_tail;
	uint64_t rx_bytes;
	uint32_t rx_count;
	/* Listener: connections arrived and not yet accepted (indices). */
	int *aq;
	uint32_t aq_head, aq_len, aq_cap;
	int backlog;
	/* On their way to this socket, FIFO by arrival time. */
	struct net_ev *in_head, *in_tail;
	uint64_t in_last;
};

struct vz__sim_net {
	struct sock **socks;
	uint32_t n, cap;
	uint32_t next_port;
};

/* ---- sockets and addresses ------------------------------------------------ */

static struct sock *sock_at(const vz_sim *sim, int fd)
{
	const struct vz__sim_net *net = sim->net;
	long i = (long)fd - VZ__SIM_FD_BASE;

	if (fd < VZ__SIM_FD_BASE || i >= (long)net->n)
		return NULL;
	return net->socks[i];
}

static int idx_of(const vz_sim *sim, const struct sock *s)
{
	(void)sim;
	return s->idx;
}

static int new_sock(vz_sim *sim, int family, int kind)
{
	struct vz__sim_net *net = sim->net;
	struct sock *s;

	if (net->n == net->cap) {
		uint32_t cap = net->cap ? 2 * net->cap : 64;
		struct sock **p = realloc(net->socks, cap * sizeof *p);

		if (!p)
			return VZ_ENOMEM;
		net->socks = p;
		net->cap = cap;
	}
	s = calloc(1, sizeof *s);
	if (!s)
		return VZ_ENOMEM;
	s->idx = (int)net->n;
	s->kind = kind;
	s->family = family;
	s->open = true;
	s->peer = -1;
	net->socks[net->n] = s;
	sim->st.net_socks_open++;
	return (int)net->n++;
}

static uint16_t port_of(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)a)->sin6_port)
					: ntohs(((const struct sockaddr_in *)a)->sin_port);
}

static void set_port(struct sockaddr_storage *a, uint16_t port)
{
	if (a->ss_family == AF_INET6)
		((struct sockaddr_in6 *)a)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)a)->sin_port = htons(port);
}

static bool is_any(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
	return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr,
			       sizeof(struct in6_addr));
	return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
	       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

/* Does a socket bound at `bound` take what is sent to `to`? */
static bool addr_takes(const struct sockaddr_storage *bound, const struct sockaddr_storage *to)
{
	return bound->ss_family == to->ss_family && port_of(bound) == port_of(to) &&
	       (is_any(bound) || same_host(bound, to));
}

/* The bind class: listeners (and the ends they accept) against other
 * listeners, datagram sockets against datagram sockets. */
static bool port_taken(const vz_sim *sim, int kind, const struct sockaddr_storage *a, bool reuse)
{
	for (uint32_t i = 0; i < sim->net->n; i++) {
		const struct sock *s = sim->net->socks[i];

		if (!s->open || s->kind != kind || s->local.ss_family != a->ss_family ||
		    port_of(&s->local) != port_of(a))
			continue;
		if (!(is_any(&s->local) || is_any(a) || same_host(&s->local, a)))
			continue;
		if (!(reuse && s->reuse))
			return true;
	}
	return false;
}

/* A virtual ephemeral port free for kind (the counter is the run's, so
 * the ports a run hands out depend only on the run). */
static uint16_t ephemeral(vz_sim *sim, int kind, struct sockaddr_storage *a)
{
	struct vz__sim_net *net = sim->net;

	for (uint32_t tries = 0; tries <= EPHEMERAL_HI - EPHEMERAL_LO; tries++) {
		uint16_t p = (uint16_t)net->next_port;

		net->next_port = net->next_port == EPHEMERAL_HI ? EPHEMERAL_LO : net->next_port + 1;
		set_port(a, p);
		if (!port_taken(sim, kind, a, false))
			return p;
	}
	return 0;
}

static void loopback(struct sockaddr_storage *a, uint32_t *len, int family)
{
	memset(a, 0, sizeof *a);
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)a;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		*len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)a;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof *s4;
	}
}

/* ---- segments -------------------------------------------------------------- */

static struct net_ev *new_ev(uint32_t kind, int from, uint32_t len)
{
	struct net_ev *ev = malloc(sizeof *ev + len);

	if (!ev)
		return NULL;
	memset(ev, 0, sizeof *ev);
	ev->kind = kind;
	ev->from = from;
	ev->len = len;
	return ev;
}

/* Send ev towards socket `to`: it arrives after a drawn delay, and not
 * before what was sent towards `to` earlier (FIFO per receiving socket,
 * so per connection direction). */
static void schedule(vz_sim *sim, int to, struct net_ev *ev)
{
	struct sock *t = sim->net->socks[to];
	uint64_t at = sim->now_ns;

	if (sim->opt.net_delay_ns)
		at += vz__sim_below(sim, sim->opt.net_delay_ns + 1);
	if (at < t->in_last)
		at = t->in_last;
	t->in_last = at;
	ev->at = at;
	ev->next = NULL;
	if (t->in_tail)
		t->in_tail->next = ev;
	else
		t->in_head = ev;
	t->in_tail = ev;
}

/* A segment without bytes; out of memory, it is lost (as on a real
 * network) and the simulation says so in its counters. */
static void post_seg(vz_sim *sim, int to, uint32_t kind, int from)
{
	struct net_ev *ev = new_ev(kind, from, 0);

	if (ev)
		schedule(sim, to, ev);
	else
		sim->st.net_drops++;
}

static void free_list(struct net_ev *ev)
{
	while (ev) {
		struct net_ev *next = ev->next;

		free(ev);
		ev = next;
	}
}

static void drop_rx(struct sock *s)
{
	free_list(s->rx_head);
	s->rx_head = s->rx_tail = NULL;
	s->rx_bytes = 0;
	s->rx_count = 0;
}

static void rx_append(struct sock *s, struct net_ev *ev)
{
	ev->next = NULL;
	if (s->rx_tail)
		s->rx_tail->next = ev;
	else
		s->rx_head = ev;
	s->rx_tail = ev;
	s->rx_bytes += ev->len;
	s->rx_count++;
}

static struct sock *peer_of(const vz_sim *sim, const struct sock *s)
{
	return s->peer >= 0 ? sim->net->socks[s->peer] : NULL;
}

/* The connection dies under s (an error fault, or an RST arriving): s
 * fails from now on; with tell, the peer gets a reset too. */
static void reset_here(vz_sim *sim, struct sock *s, bool tell)
{
	struct sock *p = peer_of(sim, s);

	s->rst = true;
	drop_rx(s);
	if (tell && p && p->open && !p->rst)
		post_seg(sim, s->peer, EV_RST, idx_of(sim, s));
}

/* End of a stream end: a reset when asked (or when unread bytes are
 * left, as Linux does), else an end of stream after the bytes sent. */
static void close_stream(vz_sim *sim, struct sock *s, bool rst)
{
	struct sock *p = peer_of(sim, s);

	rst = rst || s->rx_bytes > 0;
	if (s->established && p && p->open && !s->rst) {
		if (rst)
			post_seg(sim, s->peer, EV_RST, idx_of(sim, s));
		else if (!s->fin_sent)
			post_seg(sim, s->peer, EV_FIN, idx_of(sim, s));
	}
	s->fin_sent = true;
	drop_rx(s);
}

static void sock_close(vz_sim *sim, struct sock *s)
{
	if (!s->open)
		return;
	s->open = false;
	sim->st.net_socks_open--;
	switch (s->kind) {
	case SK_LISTEN:
		/* Connections nobody accepted are reset. */
		for (uint32_t i = 0; i < s->aq_len; i++) {
			struct sock *c = sim->net->socks[s->aq[(s->aq_head + i) % s->aq_cap]];

			close_stream(sim, c, true);
			c->open = false;
			sim->st.net_socks_open--;
		}
		s->aq_len = 0;
		break;
	case SK_STREAM:
		close_stream(sim, s, s->linger0);
		break;
	default:
		drop_rx(s);
	}
}

/* ---- arrivals ---------------------------------------------------------------- */

static void refuse(vz_sim *sim, int client)
{
	post_seg(sim, client, EV_REFUSED, -1);
}

/* A connection request arrives at listener li from client ci. */
static void on_syn(vz_sim *sim, int li, int ci)
{
	struct sock *l = sim->net->socks[li], *c = sim->net->socks[ci], *srv;
	int si;

	if (!c->open)
		return; /* closed while connecting: nothing to answer */
	if (!l->open || l->kind != SK_LISTEN || l->aq_len >= (uint32_t)l->backlog) {
		refuse(sim, ci);
		return;
	}
	if (l->aq_len == l->aq_cap) {
		uint32_t cap = l->aq_cap ? 2 * l->aq_cap : 16;
		int *q = malloc(cap * sizeof *q);

		if (!q) {
			refuse(sim, ci);
			return;
		}
		for (uint32_t i = 0; i < l->aq_len; i++)
			q[i] = l->aq[(l->aq_head + i) % l->aq_cap];
		free(l->aq);
		l->aq = q;
		l->aq_cap = cap;
		l->aq_head = 0;
	}
	si = new_sock(sim, c->family, SK_STREAM);
	if (si < 0) {
		refuse(sim, ci);
		return;
	}
	srv = sim->net->socks[si];
	srv->established = true;
	srv->peer = ci;
	srv->window = c->window;
	srv->local = l->local;
	srv->local_len = l->local_len;
	if (is_any(&l->local)) {
		/* Named by the address the client asked for. */
		srv->local = c->remote;
		srv->local_len = c->remote_len;
	}
	srv->remote = c->local;
	srv->remote_len = c->local_len;
	c->peer = si;
	l->aq[(l->aq_head + l->aq_len++) % l->aq_cap] = si;
	post_seg(sim, ci, EV_SYNACK, si);
}

static void apply(vz_sim *sim, int to, struct net_ev *ev)
{
	struct sock *t = sim->net->socks[to];
	struct sock *from = ev->from >= 0 ? sim->net->socks[ev->from] : NULL;

	switch (ev->kind) {
	case EV_SYN:
		on_syn(sim, to, ev->from);
		break;
	case EV_SYNACK:
		if (!t->open) {
			/* Closed while connecting: the accepted end is reset. */
			if (from && from->open)
				post_seg(sim, ev->from, EV_RST, to);
			break;
		}
		t->connecting = false;
		t->conn_done = true;
		if (t->rst) {
			t->conn_res = -ECONNRESET;
			break;
		}
		t->established = true;
		t->conn_res = 0;
		sim->st.net_conns++;
		break;
	case EV_REFUSED:
		t->connecting = false;
		t->conn_done = true;
		t->conn_res = -ECONNREFUSED;
		sim->st.net_refused++;
		break;
	case EV_DATA:
		if (from)
			from->inflight -= ev->len;
		if (!t->open || t->rst || t->rd_shut) {
			/* Bytes for an end that is gone: the sender is reset. */
			if (!t->open && from && from->open && !from->rst)
				post_seg(sim, ev->from, EV_RST, to);
			break;
		}
		sim->st.net_bytes += ev->len;
		rx_append(t, ev);
		return; /* kept until read */
	case EV_FIN:
		t->fin_in = true;
		break;
	case EV_RST:
		if (t->open && !t->rst) {
			reset_here(sim, t, false);
			if (t->connecting) {
				t->connecting = false;
				t->conn_done = true;
				t->conn_res = -ECONNRESET;
			}
		}
		break;
	case EV_DGRAM:
		if (!t->open || t->rx_count >= DGRAM_QUEUE_MAX) {
			sim->st.net_drops++;
			break;
		}
		sim->st.net_dgrams++;
		rx_append(t, ev);
		return;
	}
	free(ev);
}

uint64_t vz__sim_net_due(const vz_sim *sim)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < sim->net->n; i++) {
		const struct sock *s = sim->net->socks[i];

		n += s->in_head && s->in_head->at <= sim->now_ns;
	}
	return n;
}

uint64_t vz__sim_net_next(const vz_sim *sim)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < sim->net->n; i++) {
		const struct sock *s = sim->net->socks[i];

		if (s->in_head && s->in_head->at < next)
			next = s->in_head->at;
	}
	return next;
}

void vz__sim_net_step(vz_sim *sim)
{
	uint64_t n = vz__sim_net_due(sim), pick;

	if (!n)
		return;
	pick = vz__sim_below(sim, n);
	for (uint32_t i = 0; i < sim->net->n; i++) {
		struct sock *s = sim->net->socks[i];
		struct net_ev *ev = s->in_head;

		if (!ev || ev->at > sim->now_ns || pick--)
			continue;
		s->in_head = ev->next;
		if (!s->in_head)
			s->in_tail = NULL;
		apply(sim, (int)i, ev);
		return;
	}
}

/* VZ_SIM_FAULT_NET_RESET, per step: one drawn established connection is
 * reset by the network; both ends get the reset after what is already on
 * its way to them. */
void vz__sim_net_fault(vz_sim *sim)
{
	uint64_t n = 0, pick;

	if (!(sim->opt.faults & VZ_SIM_FAULT_NET_RESET) ||
	    !vz__sim_chance(sim, sim->opt.fault_permille))
		return;
	for (uint32_t i = 0; i < sim->net->n; i++) {
		const struct sock *s = sim->net->socks[i], *p = peer_of(sim, s);

		n += s->open && s->kind == SK_STREAM && s->established && !s->rst && p && p->open &&
		     !p->rst && s->peer > (int)i;
	}
	if (!n)
		return;
	pick = vz__sim_below(sim, n);
	for (uint32_t i = 0; i < sim->net->n; i++) {
		const struct sock *s = sim->net->socks[i], *p = peer_of(sim, s);

		if (!(s->open && s->kind == SK_STREAM && s->established && !s->rst && p &&
		      p->open && !p->rst && s->peer > (int)i) ||
		    pick--)
			continue;
		post_seg(sim, (int)i, EV_RST, -1);
		post_seg(sim, s->peer, EV_RST, -1);
		sim->st.net_resets++;
		return;
	}
}

/* ---- the I/O layer's socket calls (sim_net.h) -------------------------------- */

int vz__sim_net_bound(vz_sim *sim, const struct sockaddr *addr, uint32_t len, int type, int reuse,
		      int backlog)
{
	struct sockaddr_storage a;
	int kind = type == SOCK_STREAM ? SK_LISTEN : SK_DGRAM, i;
	struct sock *s;

	memset(&a, 0, sizeof a);
	memcpy(&a, addr, len < sizeof a ? len : sizeof a);
	if (port_of(&a) == 0) {
		if (!ephemeral(sim, kind, &a))
			return VZ_EADDRINUSE;
	} else if (port_taken(sim, kind, &a, reuse != 0)) {
		return VZ_EADDRINUSE;
	}
	i = new_sock(sim, a.ss_family, kind);
	if (i < 0)
		return i;
	s = sim->net->socks[i];
	s->local = a;
	s->local_len =
	    a.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	s->reuse = reuse != 0;
	s->backlog = backlog > 0 ? backlog : BACKLOG_DEFAULT;
	return VZ__SIM_FD_BASE + i;
}

int vz__sim_net_socket(vz_sim *sim, int family)
{
	int i = new_sock(sim, family, SK_NEW);

	return i < 0 ? i : VZ__SIM_FD_BASE + i;
}

void vz__sim_net_close(vz_sim *sim, int fd)
{
	struct sock *s = sock_at(sim, fd);

	if (s)
		sock_close(sim, s);
}

int vz__sim_net_shutdown(vz_sim *sim, int fd, int how)
{
	struct sock *s = sock_at(sim, fd);

	if (!s || !s->open)
		return VZ_EINVAL;
	if (s->kind != SK_STREAM || !s->established)
		return VZ_ENOTCONN;
	if (how == SHUT_RD || how == SHUT_RDWR) {
		s->rd_shut = true;
		drop_rx(s);
	}
	if ((how == SHUT_WR || how == SHUT_RDWR) && !s->fin_sent) {
		struct sock *p = peer_of(sim, s);

		s->fin_sent = true;
		if (p && p->open && !s->rst)
			post_seg(sim, s->peer, EV_FIN, idx_of(sim, s));
	}
	return 0;
}

void vz__sim_net_linger0(vz_sim *sim, int fd)
{
	struct sock *s = sock_at(sim, fd);

	if (s)
		s->linger0 = true;
}

int vz__sim_net_name(vz_sim *sim, int fd, struct sockaddr *addr, uint32_t *len, bool peer)
{
	const struct sock *s = sock_at(sim, fd);
	const struct sockaddr_storage *a;
	uint32_t n;

	if (!s || !s->open)
		return VZ_EINVAL;
	if (peer && !s->established)
		return VZ_ENOTCONN;
	a = peer ? &s->remote : &s->local;
	n = peer ? s->remote_len : s->local_len;
	if (!n) { /* an unbound socket: the family's any-address, port 0 */
		static const struct sockaddr_storage none;

		a = &none;
		n = s->family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in);
		memcpy(addr, a, *len < n ? *len : n);
		addr->sa_family = (sa_family_t)s->family;
		*len = n;
		return 0;
	}
	memcpy(addr, a, *len < n ? *len : n);
	*len = n;
	return 0;
}

int vz__sim_net_kind(vz_sim *sim, int fd)
{
	const struct sock *s = sock_at(sim, fd);

	if (!s || !s->open)
		return VZ_EINVAL;
	switch (s->kind) {
	case SK_LISTEN:
		return VZ__FD_TCP_LISTEN;
	case SK_DGRAM:
		return VZ__FD_UDP;
	default:
		return VZ__FD_TCP;
	}
}

/* ---- operations (sim_io.c) ---------------------------------------------------- */

/* VZ__IO_OP_CONNECT submitted: send the connection request (or, with
 * VZ_SIM_FAULT_NET_ERROR, have it refused). Returns 0, or -errno for an
 * op that ends at once with it (sim_io.c keeps that result). */
int vz__sim_net_connect(vz_sim *sim, struct vz__io_op *op)
{
	struct sock *c = sock_at(sim, op->fd), *l;
	struct sockaddr_storage to;
	uint64_t n = 0, pick;
	int ci, li = -1;

	if (!c || !c->open)
		return -EBADF;
	if (c->kind != SK_NEW)
		return c->established ? -EISCONN : -EALREADY;
	if (op->len < sizeof(struct sockaddr_in) || op->len > sizeof to)
		return -EINVAL;
	memset(&to, 0, sizeof to);
	memcpy(&to, op->buf, op->len);
	if (to.ss_family != c->family)
		return -EAFNOSUPPORT;
	ci = idx_of(sim, c);
	loopback(&c->local, &c->local_len, c->family);
	if (!ephemeral(sim, SK_STREAM, &c->local)) /* (c is not SK_STREAM yet) */
		return -EADDRNOTAVAIL;
	c->kind = SK_STREAM;
	c->connecting = true;
	c->remote = to;
	c->remote_len = op->len;
	c->window = 1024u << vz__sim_below(sim, 7); /* 1..64 KiB */
	if ((sim->opt.faults & VZ_SIM_FAULT_NET_ERROR) &&
	    vz__sim_chance(sim, sim->opt.fault_permille)) {
		refuse(sim, ci);
		return 0;
	}
	/* Listeners sharing the port (SO_REUSEPORT): one is drawn, as the
	 * kernel's hash picks one. */
	for (uint32_t i = 0; i < sim->net->n; i++) {
		l = sim->net->socks[i];
		n += l->open && l->kind == SK_LISTEN && addr_takes(&l->local, &to);
	}
	pick = n ? vz__sim_below(sim, n) : 0;
	for (uint32_t i = 0; n && i < sim->net->n; i++) {
		l = sim->net->socks[i];
		if (l->open && l->kind == SK_LISTEN && addr_takes(&l->local, &to) && !pick--) {
			li = (int)i;
			break;
		}
	}
	if (li < 0)
		refuse(sim, ci);
	else
		post_seg(sim, li, EV_SYN, ci);
	return 0;
}

/* Free room of s's window towards its peer. */
static uint64_t room(const vz_sim *sim, const struct sock *s)
{
	const struct sock *p = peer_of(sim, s);
	uint64_t used = s->inflight + (p && p->open ? p->rx_bytes : 0);

	return used >= s->window ? 0 : s->window - used;
}

static uint64_t iov_total(const struct msghdr *mh)
{
	uint64_t n = 0;

	for (size_t i = 0; i < mh->msg_iovlen; i++)
		n += mh->msg_iov[i].iov_len;
	return n;
}

static void iov_gather(const struct msghdr *mh, unsigned char *out, uint64_t n)
{
	for (size_t i = 0; i < mh->msg_iovlen && n; i++) {
		uint64_t take = mh->msg_iov[i].iov_len < n ? mh->msg_iov[i].iov_len : n;

		memcpy(out, mh->msg_iov[i].iov_base, take);
		out += take;
		n -= take;
	}
}

bool vz__sim_net_ready(const vz_sim *sim, const struct vz__io_op *op)
{
	const struct sock *s = sock_at(sim, op->fd);

	switch (op->opcode) {
	case VZ__IO_OP_ACCEPT:
		return !s || s->kind != SK_LISTEN || s->aq_len > 0;
	case VZ__IO_OP_CONNECT:
		return !s || s->conn_done;
	case VZ__IO_OP_RECV:
		if (!s || s->kind != SK_STREAM)
			return true; /* an error at once */
		return s->rst || s->rx_bytes > 0 || s->fin_in || s->rd_shut ||
		       (s->conn_done && s->conn_res < 0) || (!s->connecting && !s->established);
	case VZ__IO_OP_RECVMSG:
		return !s || s->kind != SK_DGRAM || s->rx_count > 0;
	case VZ__IO_OP_SENDMSG:
		if (!s || s->kind != SK_STREAM)
			return true;
		return s->rst || s->fin_sent || !s->established || room(sim, s) > 0;
	default:
		return true; /* refused at once (files) */
	}
}

/* A provided buffer for a receive, or -1 (sim_io.c's stack). */
static int take_buf(struct vz__io_head *h)
{
	if (!h->bufs.stack || !h->bufs.nfree)
		return -1;
	return (int)h->bufs.stack[--h->bufs.nfree];
}

static int complete_recv(vz_sim *sim, struct vz__io_head *h, struct vz__io_op *op, struct sock *s)
{
	bool more = (op->flags & VZ__IO_F_MULTI) != 0;
	unsigned char *dst;
	uint64_t n, cap;
	int bid = -1;

	if (s->rst)
		return -ECONNRESET;
	if (s->rx_bytes == 0) {
		if (s->fin_in || s->rd_shut)
			return 0;
		return s->conn_done && s->conn_res < 0 ? s->conn_res : -ENOTCONN;
	}
	if ((sim->opt.faults & VZ_SIM_FAULT_NET_ERROR) &&
	    vz__sim_chance(sim, sim->opt.fault_permille)) {
		reset_here(sim, s, true);
		sim->st.net_resets++;
		return -ECONNRESET;
	}
	if (op->flags & VZ__IO_F_BUFSEL) {
		bid = take_buf(h);
		if (bid < 0)
			return -ENOBUFS;
		dst = h->bufs.mem + (size_t)bid * h->bufs.size;
		cap = h->bufs.size;
	} else {
		dst = op->buf;
		cap = op->len;
	}
	n = s->rx_bytes < cap ? s->rx_bytes : cap;
	if (n > 1 && (sim->opt.faults & VZ_SIM_FAULT_NET_SHORT) &&
	    vz__sim_chance(sim, sim->opt.fault_permille)) {
		n = 1 + vz__sim_below(sim, n - 1);
		sim->st.net_short++;
	}
	for (uint64_t left = n; left;) {
		struct net_ev *ev = s->rx_head;
		uint64_t take = ev->len - ev->off;

		if (take > left)
			take = left;
		memcpy(dst, ev->data + ev->off, take);
		dst += take;
		left -= take;
		ev->off += (uint32_t)take;
		if (ev->off == ev->len) {
			s->rx_head = ev->next;
			if (!s->rx_head)
				s->rx_tail = NULL;
			s->rx_count--;
			free(ev);
		}
	}
	s->rx_bytes -= n;
	if (bid >= 0) {
		op->cflags |= VZ__IO_CF_BUF;
		op->bid = (uint32_t)bid;
		op->data_off = 0;
	}
	if (more)
		op->cflags |= VZ__IO_CF_MORE;
	return (int)n;
}

static int complete_recvmsg(vz_sim *sim, struct vz__io_head *h, struct vz__io_op *op,
			    struct sock *s)
{
	struct msghdr *mh = op->buf;
	struct net_ev *ev;
	uint32_t n;
	int bid;

	(void)sim;
	if (!(op->flags & VZ__IO_F_BUFSEL))
		return -EINVAL; /* the I/O layer always selects buffers */
	bid = take_buf(h);
	if (bid < 0)
		return -ENOBUFS;
	ev = s->rx_head;
	s->rx_head = ev->next;
	if (!s->rx_head)
		s->rx_tail = NULL;
	s->rx_count--;
	s->rx_bytes -= ev->len;
	n = ev->len < h->bufs.size ? ev->len : h->bufs.size; /* truncated, as recvmsg */
	memcpy(h->bufs.mem + (size_t)bid * h->bufs.size, ev->data, n);
	if (mh->msg_name) {
		memcpy(mh->msg_name, &ev->src,
		       mh->msg_namelen < ev->srclen ? mh->msg_namelen : ev->srclen);
		mh->msg_namelen = ev->srclen;
	}
	free(ev);
	op->cflags |= VZ__IO_CF_BUF;
	op->bid = (uint32_t)bid;
	op->data_off = 0;
	if (op->flags & VZ__IO_F_MULTI)
		op->cflags |= VZ__IO_CF_MORE;
	return (int)n;
}

static int complete_send_stream(vz_sim *sim, const struct vz__io_op *op, struct sock *s)
{
	const struct msghdr *mh = op->buf;
	uint64_t total = iov_total(mh), n;
	struct net_ev *ev;

	if (s->rst)
		return -ECONNRESET;
	if (s->fin_sent)
		return -EPIPE;
	if (!s->established)
		return s->conn_done && s->conn_res < 0 ? -EPIPE : -ENOTCONN;
	if (total && (sim->opt.faults & VZ_SIM_FAULT_NET_ERROR) &&
	    vz__sim_chance(sim, sim->opt.fault_permille)) {
		reset_here(sim, s, true);
		sim->st.net_resets++;
		return -ECONNRESET;
	}
	n = room(sim, s);
	if (n > total)
		n = total;
	if (n > INT32_MAX)
		n = INT32_MAX;
	if (n > 1 && (sim->opt.faults & VZ_SIM_FAULT_NET_SHORT) &&
	    vz__sim_chance(sim, sim->opt.fault_permille)) {
		n = 1 + vz__sim_below(sim, n - 1);
		sim->st.net_short++;
	}
	if (n == 0)
		return 0;
	ev = new_ev(EV_DATA, idx_of(sim, s), (uint32_t)n);
	if (!ev)
		return -ENOBUFS;
	iov_gather(mh, ev->data, n);
	s->inflight += n;
	schedule(sim, s->peer, ev);
	return (int)n;
}

static int complete_send_dgram(vz_sim *sim, const struct vz__io_op *op, struct sock *s)
{
	const struct msghdr *mh = op->buf;
	uint64_t total = iov_total(mh), n = 0, pick;
	struct sockaddr_storage to;
	struct net_ev *ev;
	int di = -1;

	if (!mh->msg_name || mh->msg_namelen < sizeof(struct sockaddr_in) ||
	    mh->msg_namelen > sizeof to)
		return -EDESTADDRREQ;
	if (total > VZ_IO_DGRAM_MAX)
		return -EMSGSIZE;
	memset(&to, 0, sizeof to);
	memcpy(&to, mh->msg_name, mh->msg_namelen);
	if ((sim->opt.faults & VZ_SIM_FAULT_NET_DROP) &&
	    vz__sim_chance(sim, sim->opt.fault_permille)) {
		sim->st.net_drops++;
		return (int)total; /* sent; lost on the way */
	}
	for (uint32_t i = 0; i < sim->net->n; i++) {
		const struct sock *u = sim->net->socks[i];

		n += u->open && u->kind == SK_DGRAM && addr_takes(&u->local, &to);
	}
	pick = n ? vz__sim_below(sim, n) : 0;
	for (uint32_t i = 0; n && i < sim->net->n; i++) {
		const struct sock *u = sim->net->socks[i];

		if (u->open && u->kind == SK_DGRAM && addr_takes(&u->local, &to) && !pick--) {
			di = (int)i;
			break;
		}
	}
	if (di < 0) {
		sim->st.net_drops++; /* nobody bound there: lost, as on loopback */
		return (int)total;
	}
	ev = new_ev(EV_DGRAM, idx_of(sim, s), (uint32_t)total);
	if (!ev)
		return -ENOBUFS;
	iov_gather(mh, ev->data, total);
	ev->src = s->local;
	ev->srclen = s->local_len;
	if (is_any(&ev->src)) {
		/* From a socket bound to any address: it leaves from loopback. */
		uint16_t port = port_of(&s->local);

		loopback(&ev->src, &ev->srclen, s->family);
		set_port(&ev->src, port);
	}
	schedule(sim, di, ev);
	return (int)total;
}

int vz__sim_net_complete(vz_sim *sim, struct vz__io_head *h, struct vz__io_op *op)
{
	struct sock *s = sock_at(sim, op->fd);

	op->cflags = 0;
	switch (op->opcode) {
	case VZ__IO_OP_ACCEPT: {
		int ci;

		if (!s || !s->open)
			return -EBADF;
		if (s->kind != SK_LISTEN)
			return -EINVAL;
		ci = s->aq[s->aq_head];
		s->aq_head = (s->aq_head + 1) % s->aq_cap;
		s->aq_len--;
		if (op->flags & VZ__IO_F_MULTI)
			op->cflags |= VZ__IO_CF_MORE;
		return VZ__SIM_FD_BASE + ci;
	}
	case VZ__IO_OP_CONNECT:
		return s ? s->conn_res : -EBADF;
	case VZ__IO_OP_RECV:
		if (!s || !s->open)
			return -EBADF;
		if (s->kind != SK_STREAM)
			return -ENOTCONN;
		return complete_recv(sim, h, op, s);
	case VZ__IO_OP_RECVMSG:
		if (!s || !s->open)
			return -EBADF;
		if (s->kind != SK_DGRAM)
			return -EINVAL;
		return complete_recvmsg(sim, h, op, s);
	case VZ__IO_OP_SENDMSG:
		if (!s || !s->open)
			return -EBADF;
		if (s->kind == SK_DGRAM)
			return complete_send_dgram(sim, op, s);
		if (s->kind != SK_STREAM)
			return -ENOTCONN;
		return complete_send_stream(sim, op, s);
	default:
		/* Files (OPENAT, READ, WRITE, FSYNC) and plain SEND: the
		 * simulation has no file system (NOTES.md, "Files"). */
		return -ENOSYS;
	}
}

/* ---- life -------------------------------------------------------------------- */

int vz__sim_net_create(vz_sim *sim)
{
	sim->net = calloc(1, sizeof *sim->net);
	if (!sim->net)
		return VZ_ENOMEM;
	sim->net->next_port = EPHEMERAL_LO;
	return 0;
}

void vz__sim_net_free(vz_sim *sim)
{
	struct vz__sim_net *net = sim->net;

	if (!net)
		return;
	for (uint32_t i = 0; i < net->n; i++) {
		struct sock *s = net->socks[i];

		free_list(s->rx_head);
		free_list(s->in_head);
		free(s->aq);
		free(s);
	}
	free(net->socks);
	free(net);
	sim->net = NULL;
}
