/* SPDX-License-Identifier: MIT */
/*
 * The echo server: a connection actor (vz_echo_conn_spec, for
 * vz_listener_opts.conn_spec) that writes back every byte it receives, in
 * order, and closes when the peer closes. Received chunks are runtime
 * buffers (zero copy in); each is queued on the connection's send queue
 * (one copy into its pooled chunks) with no event on success.
 *
 * Back-pressure: when the send queue is full (a peer that sends but does
 * not read), the actor cancels its receive and queues the chunks already
 * on their way anyway, raising the queue's bound by just what they need
 * (bounded: no new receive is started); a zero-length marker send tells
 * it when everything queued is written, and then it restores the bound and
 * receives again. Nothing is dropped and no receive buffer is held, so a
 * slow reader slows only its own connection.
 *
 * vz_echo_server_create() is the listener with this spec in one call.
 */
#ifndef VZ_ACTORS_NET_ECHO_H
#define VZ_ACTORS_NET_ECHO_H

#include "listener.h"

extern const vz_actor_spec vz_echo_conn_spec;

/* vz_listener_create() with conn_spec = vz_echo_conn_spec (opts->conn_spec
 * is ignored). Same rules and errors. */
int vz_echo_server_create(vz_runtime *rt, const vz_listener_opts *opts, vz_listener **out);

#endif
