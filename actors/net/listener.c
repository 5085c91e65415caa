// SPDX-License-Identifier: MIT
/*
 * The sharded TCP listener (listener.h). One acceptor actor per shard:
 * in REUSEPORT mode each owns a listening socket on the shared port and
 * spawns the connections it accepts on its own shard; in HANDOFF mode only
 * the first listens, and deals each accepted descriptor to the acceptor
 * of the next shard in turn, which spawns the connection actor there
 * (vz_spawn after start is allowed only on the target shard's own thread,
 * hence the message).
 */
#include "listener.h"

#include <netinet/in.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { MSG_HANDOFF = VZ_MSG_USER + 0x4c00 };

struct per_shard {
	/* Written only by this shard's acceptor, read by any thread: a
	 * single-writer counter, relaxed on both sides (a snapshot; nothing
	 * else is published through it). */
	alignas(64) atomic_uint_fast64_t accepted;
	atomic_uint_fast64_t failures;
};

struct vz_listener {
	vz_runtime *rt;
	vz_listener_opts opts;
	struct sockaddr_storage addr; /* the bound address (port filled in) */
	uint32_t addrlen;
	uint16_t port;
	unsigned nshards;
	vz_ref *acceptors; /* [nshards], set before start, read-only afterwards */
	struct per_shard *shard;
};

struct acceptor {
	vz_listener *l;
	unsigned shard;
	vz_fd lfd;
	unsigned next; /* HANDOFF: the shard the next connection goes to */
};

struct acceptor_arg {
	vz_listener *l;
	unsigned shard;
};

static void count(atomic_uint_fast64_t *c)
{
	/* Single writer (this shard): a relaxed load + store is enough and
	 * avoids a locked RMW; readers take relaxed snapshots. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

/* Spawn the connection actor for raw on this (the calling) shard. */
static void place_here(vz_actor *self, struct acceptor *a, int raw)
{
	vz_listener_conn c = {.raw_fd = raw, .shard = a->shard, .user = a->l->opts.conn_user};
	vz_ref ref;
	int rc;

	/* TCP_NODELAY came with the descriptor: the listener has it
	 * (acceptor_init), and accepted sockets inherit it. */
	rc = vz_spawn(vz_actor_runtime(self), a->shard, a->l->opts.conn_spec, &c, &ref);
	if (rc < 0 || c.raw_fd >= 0) {
		/* Spawn failed, or init did not adopt the descriptor. */
		if (c.raw_fd >= 0)
			close(c.raw_fd);
		if (rc < 0) {
			count(&a->l->shard[a->shard].failures);
			return;
		}
	}
	count(&a->l->shard[a->shard].accepted);
}

static int acceptor_init(vz_actor *self, void *state, const void *arg)
{
	const struct acceptor_arg *aa = arg;
	struct acceptor *a = state;
	vz_listener *l = aa->l;
	/* nodelay: request/response servers want every answer out at once,
	 * not held back by Nagle until the previous segment is acknowledged;
	 * set once on the listener, every accepted socket inherits it. */
	vz_listen_opts lo = {.backlog = l->opts.backlog,
			     .reuseport = l->opts.mode == VZ_LISTENER_REUSEPORT,
			     .nodelay = 1};
	int rc;

	a->l = l;
	a->shard = aa->shard;
	a->next = 0;
	if (l->opts.mode == VZ_LISTENER_HANDOFF && aa->shard != 0)
		return 0; /* only receives hand-offs */
	rc = vz_tcp_listen(self, (const struct sockaddr *)&l->addr, l->addrlen, &lo, &a->lfd);
	if (rc < 0)
		return rc;
	if (l->port == 0) {
		/* The first listener picked the port: the others bind it. */
		struct sockaddr_storage ss;
		uint32_t len = sizeof ss;

		rc = vz_io_local_addr(self, a->lfd, (struct sockaddr *)&ss, &len);
		if (rc < 0)
			return rc;
		if (ss.ss_family == AF_INET6)
			l->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		else
			l->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		if (l->addr.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&l->addr)->sin6_port = htons(l->port);
		else
			((struct sockaddr_in *)&l->addr)->sin_port = htons(l->port);
	}
	return vz_io_accept(self, a->lfd, NULL, NULL);
}

static void acceptor_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct acceptor *a = state;
	const vz_io_event *ev = vz_io_event_of(m);
	int raw;

	if (!ev) {
		if (vz_msg_type(m) == MSG_HANDOFF && vz_msg_len(m) == sizeof raw) {
			memcpy(&raw, vz_msg_data(m), sizeof raw);
			place_here(self, a, raw);
		}
		return;
	}
	if (ev->kind != VZ_IO_ACCEPT)
		return;
	if (ev->res < 0) {
		count(&a->l->shard[a->shard].failures);
		/* EMFILE pauses and resumes by itself (MORE set); a final
		 * failure ends accepting: start again. */
		if (!(ev->flags & VZ_IO_EV_MORE))
			vz_io_accept(self, a->lfd, NULL, NULL);
		return;
	}
	if (vz_io_detach(self, ev->accepted, &raw) < 0) {
		vz_io_close(self, ev->accepted);
		count(&a->l->shard[a->shard].failures);
		return;
	}
	if (a->l->opts.mode == VZ_LISTENER_HANDOFF) {
		unsigned to = a->next;

		a->next = (a->next + 1) % a->l->nshards;
		if (to != a->shard) {
			if (vz_send(self, a->l->acceptors[to], MSG_HANDOFF, &raw, sizeof raw) < 0) {
				close(raw);
				count(&a->l->shard[a->shard].failures);
			}
			return;
		}
	}
	place_here(self, a, raw);
}

static const vz_actor_spec acceptor_spec = {
    .name = "tcp-acceptor",
    .state_size = sizeof(struct acceptor),
    .init = acceptor_init,
    .receive = acceptor_receive,
};

int vz_listener_create(vz_runtime *rt, const vz_listener_opts *opts, vz_listener **out)
{
	unsigned total = vz_runtime_shards(rt);
	vz_listener *l;
	int rc = 0;

	if (!rt || !opts || !out || !opts->addr || !opts->conn_spec || opts->nshards > total ||
	    opts->addrlen > sizeof(struct sockaddr_storage) || opts->addrlen == 0)
		return VZ_EINVAL;
	l = calloc(1, sizeof *l);
	if (!l)
		return VZ_ENOMEM;
	l->rt = rt;
	l->opts = *opts;
	l->opts.addr = NULL; /* copied below; the caller's may go away */
	memcpy(&l->addr, opts->addr, opts->addrlen);
	l->addrlen = opts->addrlen;
	l->nshards = opts->nshards ? opts->nshards : total;
	if (l->addr.ss_family == AF_INET6)
		l->port = ntohs(((struct sockaddr_in6 *)&l->addr)->sin6_port);
	else
		l->port = ntohs(((struct sockaddr_in *)&l->addr)->sin_port);
	l->acceptors = calloc(l->nshards, sizeof *l->acceptors);
	l->shard = aligned_alloc(64, ((l->nshards * sizeof *l->shard + 63) / 64) * 64);
	if (!l->acceptors || !l->shard) {
		rc = VZ_ENOMEM;
		goto fail;
	}
	memset(l->shard, 0, l->nshards * sizeof *l->shard);
	for (unsigned s = 0; s < l->nshards; s++) {
		struct acceptor_arg aa = {.l = l, .shard = s};

		rc = vz_spawn(rt, s, &acceptor_spec, &aa, &l->acceptors[s]);
		if (rc < 0) {
			while (s-- > 0)
				vz_stop(rt, l->acceptors[s]);
			goto fail;
		}
	}
	*out = l;
	return 0;
fail:
	free(l->acceptors);
	free(l->shard);
	free(l);
	return rc;
}

uint16_t vz_listener_port(const vz_listener *l)
{
	return l ? l->port : 0;
}

uint64_t vz_listener_accepted(const vz_listener *l, unsigned shard)
{
	if (!l || shard >= l->nshards)
		return 0;
	return atomic_load_explicit(&l->shard[shard].accepted, memory_order_relaxed);
}

uint64_t vz_listener_failures(const vz_listener *l)
{
	uint64_t n = 0;

	for (unsigned s = 0; l && s < l->nshards; s++)
		n += atomic_load_explicit(&l->shard[s].failures, memory_order_relaxed);
	return n;
}

void vz_listener_destroy(vz_listener *l)
{
	if (!l)
		return;
	free(l->acceptors);
	free(l->shard);
	free(l);
}

int vz_listener_adopt(vz_actor *self, const void *init_arg, vz_fd *out)
{
	/* The spawner reads raw_fd back after init: -1 means "taken". The
	 * arg is the spawner's own stack object, so the write is safe. */
	vz_listener_conn *c = (vz_listener_conn *)init_arg;
	int rc;

	if (!c || c->raw_fd < 0)
		return VZ_EINVAL;
	rc = vz_io_adopt(self, c->raw_fd, out);
	if (rc == 0)
		c->raw_fd = -1;
	return rc;
}
