/* SPDX-License-Identifier: MIT */
/*
 * A minimal HTTP/1.1 server on the sharded listener: one actor per
 * connection, parsing with the incremental parser (parse.h) straight out
 * of the runtime's receive buffers, answering with response.h's bytes.
 *
 *  - Routes: GET or HEAD of "/plaintext" or "/" answers "Hello, World!"
 *    (text/plain) with Server, Date, Content-Type and Content-Length;
 *    another target is 404, another method on those targets 405.
 *  - Keep-alive (the HTTP/1.1 default, or HTTP/1.0 asking for it) and
 *    pipelining: every request complete in a received chunk is answered,
 *    and the answers to one chunk go out in one send.
 *  - "Connection: close", or HTTP/1.0 without keep-alive: the answer says
 *    "Connection: close" and the server closes once it is written; bytes
 *    after that request are ignored.
 *  - A malformed request gets 400 (431 past the head limit, 414 past the
 *    target limit, 501 for Transfer-Encoding, 505 for HTTP/2+), then the
 *    connection closes.
 *  - Date is formatted once per second per shard by a timer actor, and
 *    read by that shard's connections (same thread: no sharing).
 *  - A client that pipelines without reading is slowed, not dropped: once
 *    the connection's send queue (1 MiB) is full the server stops
 *    receiving from it, answers what is already on its way, and receives
 *    again when the queue has drained.
 *
 * Steady state allocates nothing per request: the parser and the output
 * buffer live in the connection actor's state, received bytes stay in the
 * runtime's buffers, and the send queue uses the runtime's pooled chunks.
 */
#ifndef VZ_ACTORS_HTTP_SERVER_H
#define VZ_ACTORS_HTTP_SERVER_H

#include <stdint.h>

#include "../net/listener.h"
#include "parse.h"

typedef struct vz_http_server_opts {
	vz_listener_opts listen; /* where and how to spread (conn_spec is ignored) */
	vz_http_limits limits;	 /* zero: the parser's defaults */
} vz_http_server_opts;

typedef struct vz_http_server vz_http_server;

/* Spawn the date actors and the listener. Before vz_runtime_start(), like
 * vz_listener_create(); its errors. */
int vz_http_server_create(vz_runtime *rt, const vz_http_server_opts *opts, vz_http_server **out);

/* The bound port. Any thread. */
uint16_t vz_http_server_port(const vz_http_server *s);

/* Requests answered (the refused ones included) on `shard`, and
 * connections placed there. Any thread; relaxed snapshots. */
uint64_t vz_http_server_requests(const vz_http_server *s, unsigned shard);
uint64_t vz_http_server_connections(const vz_http_server *s, unsigned shard);

/* Free. After vz_runtime_stop(); NULL is a no-op. */
void vz_http_server_destroy(vz_http_server *s);

#endif
