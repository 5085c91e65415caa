/* SPDX-License-Identifier: MIT */
/*
 * Ports: how a thread outside the runtime (an engine's thread) gets
 * answers. A port is an actor reference whose messages land in a queue
 * that the thread drains, with an eventfd it can poll or block on. Post
 * through the port (vz_port_post()) and the receiver sees the port as the
 * sender, so its vz_reply() (or any vz_send() to vz_port_ref()) arrives in
 * the port, in the order the port's shard handled them.
 *
 * Behind the reference is a small actor on the port's shard that copies
 * each message into the queue (one allocation per message: ports are for
 * conversations with engine threads, not for bulk traffic). Messages to a
 * port count like messages to any actor (sent, then handled when the
 * copy is queued). The port lives until vz_port_destroy(); the runtime
 * stopping closes it (vz_port_recv() then returns VZ_ESTOPPED once it is
 * empty), but its memory and fd are freed only by vz_port_destroy().
 */
#ifndef VELOZ_PORT_H
#define VELOZ_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "export.h"
#include "runtime.h"

VZ_BEGIN_DECLS

typedef struct vz_port vz_port;

/* A message taken from a port. */
typedef struct vz_port_msg {
	uint32_t type;
	uint32_t corr; /* vz_msg_corr() of the message: the ask it answers, or 0 */
	vz_ref from;   /* sender, null when posted from outside an actor */
	size_t len;    /* payload bytes (copied into the caller's buffer) */
} vz_port_msg;

/* Create a port on `shard` (its actor lives there). Any thread that runs
 * no shard of rt (VZ_EWRONGTHREAD from a shard thread), before or after
 * start; after start this waits for the shard, as vz_spawn_wait(). Errors:
 * VZ_EINVAL (NULL), VZ_ENOSHARD, VZ_ENOMEM, VZ_EIO (no eventfd),
 * VZ_ESTOPPED. */
VZ_API int vz_port_create(vz_runtime *rt, unsigned shard, vz_port **out);

/* The port's reference: give it to actors, or use it as a reply-to. Any
 * thread. Null for NULL. */
VZ_API vz_ref vz_port_ref(const vz_port *p);

/* An eventfd that is readable while the port holds a message or is closed.
 * Poll it (POLLIN, EPOLLIN level-triggered); never read or close it. Any
 * thread. -1 for NULL. */
VZ_API int vz_port_fd(const vz_port *p);

/* vz_post() with the port as the sender. With corr non-NULL the message is
 * an ask: *corr receives its correlation id (never 0), and the receiver's
 * vz_reply() carries it back (vz_port_msg.corr). There is no deadline:
 * wait with vz_port_wait()'s timeout, and ignore a reply whose id you gave
 * up on. Any thread (also a shard thread). Errors: those of vz_post(), and
 * VZ_EINVAL for a NULL p. */
VZ_API int vz_port_post(vz_port *p, vz_ref to, uint32_t type, const void *payload, size_t len,
			uint32_t *corr);

/* Answer a message taken from the port, as vz_reply() does: to m->from,
 * with the port as the sender; when m is an ask (m->corr != 0, e.g. an
 * actor's vz_ask() to vz_port_ref()), the answer carries its id back and
 * is matched against the asker's deadline. Any thread. Errors: VZ_EINVAL
 * (NULL, m from outside any actor, type < VZ_MSG_USER), and those of
 * vz_post(). */
VZ_API int vz_port_reply(vz_port *p, const vz_port_msg *m, uint32_t type, const void *payload,
			 size_t len);

/* vz_spawn_on() for a thread that does not want to wait: the result comes
 * to the port as one VZ_MSG_SPAWNED message (payload vz_spawned,
 * lifecycle.h), arg_len bytes of arg copied for init. VZ_SHARD_HERE: the
 * port's shard. Any thread that runs no shard of the port's runtime
 * (else VZ_EWRONGTHREAD: actors use vz_spawn_on()). Errors (no message
 * will come): VZ_EINVAL
 * (NULL p or spec, no receive, state too big, an unknown scheduling
 * class, NULL arg with arg_len > 0), VZ_ETOOBIG, VZ_ENOSHARD, and those
 * of vz_post() (VZ_ESTATE before start, VZ_ESTOPPED, VZ_ENOMEM). */
VZ_API int vz_port_spawn(vz_port *p, unsigned shard, const vz_actor_spec *spec, const void *arg,
			 size_t arg_len, uint64_t tag);

/* Take the oldest message: its header into *out and its payload into
 * buf (cap bytes). 0; VZ_EAGAIN when the port is empty; VZ_ETOOBIG when
 * the payload does not fit (out->len tells the size; the message stays);
 * VZ_ESTOPPED when empty and closed (the runtime stopped, or the port is
 * being destroyed); VZ_EINVAL for NULL p or out, or NULL buf with cap > 0.
 * Any thread; several may call it, each message goes to one. */
VZ_API int vz_port_recv(vz_port *p, vz_port_msg *out, void *buf, size_t cap);

/* Block until the port holds a message or is closed, at most timeout_ns
 * (< 0: no limit). 0 when something is there, VZ_ETIMEDOUT, VZ_EINVAL.
 * Any thread that runs no shard (it would stall the shard). */
VZ_API int vz_port_wait(vz_port *p, int64_t timeout_ns);

/* Stop the port's actor (messages still on their way to it are then
 * dead-lettered) and free the port, its queue and its fd once the actor is
 * gone. Any thread, once; no other call on p may run at the same time or
 * follow. While rt runs, before vz_runtime_destroy(); once rt has stopped
 * the port is closed and this does not touch rt, so it may also come after
 * vz_runtime_destroy(). NULL is a no-op. */
VZ_API void vz_port_destroy(vz_port *p);

VZ_END_DECLS

#endif
