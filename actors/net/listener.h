/* SPDX-License-Identifier: MIT */
/*
 * A TCP listener that spreads connections over the shards, and gives each
 * connection its own actor.
 *
 * Two ways to spread (vz_listener_opts.mode):
 *  - VZ_LISTENER_REUSEPORT (default): one listening socket per shard, all
 *    bound to one port with SO_REUSEPORT; the kernel picks a shard per
 *    connection (by a hash of the addresses), and every accept and every
 *    connection stays on that shard: no hand-over at all.
 *  - VZ_LISTENER_HANDOFF: one listening socket on the first shard; its
 *    acceptor deals the connections round-robin over the shards, handing
 *    each descriptor over in an ordinary message (vz_io_detach /
 *    vz_io_adopt). Exact balance; one message per connection.
 *
 * Either way, each connection gets TCP_NODELAY and a new actor of the
 * caller's spec on the chosen shard; its init receives a `const vz_listener_conn *` and takes
 * the descriptor with vz_listener_adopt(). If init fails, the descriptor
 * is closed.
 *
 * The acceptor actors are spawned by vz_listener_create(), before
 * vz_runtime_start() (they listen in their init); they stop with the
 * runtime. The vz_listener object holds the port and the counters; free it
 * with vz_listener_destroy() after vz_runtime_stop().
 */
#ifndef VZ_ACTORS_NET_LISTENER_H
#define VZ_ACTORS_NET_LISTENER_H

#include <stdint.h>

#include <veloz.h>
#include <veloz/io.h>

enum vz_listener_mode {
	VZ_LISTENER_REUSEPORT = 0,
	VZ_LISTENER_HANDOFF = 1,
};

typedef struct vz_listener_opts {
	const struct sockaddr *addr; /* where to listen (port 0: any free port) */
	uint32_t addrlen;
	int mode;			/* enum vz_listener_mode */
	int backlog;			/* 0: SOMAXCONN */
	unsigned nshards;		/* spread over shards 0..nshards-1; 0: all of them */
	const vz_actor_spec *conn_spec; /* spawned per connection; must outlive the runtime */
	const void *conn_user;		/* given to each connection in vz_listener_conn.user */
} vz_listener_opts;

/* What a connection actor's init receives as `arg`. */
typedef struct vz_listener_conn {
	int raw_fd;	  /* the connection; take it with vz_listener_adopt() */
	unsigned shard;	  /* the shard it was placed on */
	const void *user; /* vz_listener_opts.conn_user */
} vz_listener_conn;

typedef struct vz_listener vz_listener;

/* Spawn the acceptors and start listening. Before vz_runtime_start(),
 * from the thread setting the runtime up (vz_spawn's rule). Errors:
 * VZ_EINVAL (NULL, no conn_spec, nshards over the runtime's),
 * VZ_ENOMEM, or the error of vz_tcp_listen() (VZ_EADDRINUSE, ...) or
 * vz_spawn(). */
int vz_listener_create(vz_runtime *rt, const vz_listener_opts *opts, vz_listener **out);

/* The bound port (host order). Any thread. */
uint16_t vz_listener_port(const vz_listener *l);

/* Connections placed on `shard` so far (0 for a shard out of range). Any
 * thread; a relaxed snapshot. */
uint64_t vz_listener_accepted(const vz_listener *l, unsigned shard);

/* Connections whose actor could not be created (spawn failed: no memory,
 * or init refused), and accepts that failed. Any thread. */
uint64_t vz_listener_failures(const vz_listener *l);

/* Free. After vz_runtime_stop(); NULL is a no-op. */
void vz_listener_destroy(vz_listener *l);

/* In a connection actor's init: adopt the connection's descriptor as
 * self's. Errors: vz_io_adopt()'s. */
int vz_listener_adopt(vz_actor *self, const void *init_arg, vz_fd *out);

#endif
