/* SPDX-License-Identifier: MIT */
/*
 * The transport seam: what the cluster needs from the thing that carries
 * bytes between nodes. Subject-addressed publish with an optional reply
 * subject, subscriptions (plain or in a queue group), a "no one had that
 * subject" report, and a poll that waits for input or a wake-up. The NATS
 * client is the one implementation today (tp_nats.c); a data path over
 * UCX (or shared memory between processes of one host) would implement the
 * same operations, keeping NATS for names and discovery if it wanted.
 *
 * Threads: every operation except wake() and close() runs on the cluster's
 * transport thread. publish() only buffers; flush() writes what is
 * buffered without waiting for the peer; poll() is the only call that
 * blocks, and only for its timeout.
 */
#ifndef VZ_CLUSTER_TRANSPORT_H
#define VZ_CLUSTER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include <veloz/config.h>

struct vz__tp;

/* One message read from the server for subscription `user` (as given to
 * subscribe()). data is valid during the call. */
typedef void (*vz__tp_deliver_fn)(void *ctx, void *user, const void *data, size_t len);

/* The server answered a publish with reply subject `reply` with "no
 * responders". Called on a client thread (not the transport thread). */
typedef void (*vz__tp_noresp_fn)(void *ctx, const char *reply);

/* Connection events, on a client thread: up = 0 lost (why: the client's
 * last error, may be ""), 1 back. */
typedef void (*vz__tp_conn_fn)(void *ctx, int up, const char *why);

struct vz__tp_hooks {
	void *ctx;
	vz__tp_noresp_fn no_responders;
	vz__tp_conn_fn conn;
	/* Where no-responders answers come to: a subject prefix unique to
	 * this node ("_vzr.<id>"); publish() replies are under it. */
	const char *reply_prefix;
};

struct vz__tp_ops {
	const char *name;
	/* Connect. 0, or VZ_EIO / VZ_ECONFIG / VZ_ENOMEM with err filled. */
	int (*open)(const vz_cluster_config *cfg, const char *node, const struct vz__tp_hooks *h,
		    struct vz__tp **out, vz_config_error *err);
	/* Subscribe to subject (queue group `queue` when non-NULL). *handle
	 * for unsubscribe. 0 or VZ_EIO / VZ_ENOMEM. */
	int (*subscribe)(struct vz__tp *t, const char *subject, const char *queue, void *user,
			 void **handle);
	void (*unsubscribe)(struct vz__tp *t, void *handle);
	/* Buffer one message. 0, VZ_EIO (disconnected with the reconnect
	 * buffer full, or closed for good), VZ_ETOOBIG. */
	int (*publish)(struct vz__tp *t, const char *subject, const char *reply, const void *data,
		       size_t len);
	/* Write what is buffered, without blocking. Returns 1 when it wrote. */
	int (*flush)(struct vz__tp *t);
	/* Wait at most timeout_ms (-1: until input or wake; 0: no wait) and
	 * hand every message that arrived to fn. Returns the number handed. */
	int (*poll)(struct vz__tp *t, int timeout_ms, vz__tp_deliver_fn fn, void *ctx);
	/* Make a poll that waits (or the next one) return. Any thread. */
	void (*wake)(struct vz__tp *t);
	/* Messages the client dropped for subscription handle since the last
	 * call (slow consumer). */
	uint64_t (*dropped)(struct vz__tp *t, void *handle);
	/* The server's largest message body. */
	size_t (*max_payload)(struct vz__tp *t);
	/* Write what is buffered (bounded), close, free. Not concurrently
	 * with the other operations. */
	void (*close)(struct vz__tp *t);
};

#ifdef VZ_HAVE_NATS
extern const struct vz__tp_ops vz__tp_nats;
#endif

#endif
