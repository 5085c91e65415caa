/* SPDX-License-Identifier: MIT */
/*
 * I/O for actors: TCP, UDP and files through the actor's own shard (its
 * io_uring ring, or epoll where io_uring is unavailable; the behaviour
 * below is the same on both).
 *
 * Model. An actor opens descriptors; each is a vz_fd handle owned by that
 * actor, never a raw fd, so a closed handle is refused (VZ_ESTALE) even
 * after the kernel reuses the number. Operations are started by the owning
 * actor on its home shard thread and never block it; their results come
 * back to it as VZ_MSG_IO messages (read them with vz_io_event_of()),
 * queued in order with its other mail, like timer expiries. An operation
 * produces one or more events; the last one lacks VZ_IO_EV_MORE and is
 * called its final event. Every operation that was accepted (its call
 * returned 0) produces exactly one final event: its result, an error, its
 * timeout (VZ_ETIMEDOUT) or its cancellation (VZ_ECANCELED). A call that
 * returned an error started nothing and produces no event.
 *
 * Results. vz_io_event.res >= 0 is a byte count (0 on a receive: the peer
 * closed its sending side, end of stream) or 0 for success; res < 0 is a
 * VZ_E* code (error.h; vz_error_from_errno() maps the OS's errno values),
 * with the OS's own errno in os_errno for logs (0 when the error is the
 * runtime's, e.g. VZ_ETIMEDOUT).
 *
 * Ownership. Descriptors belong to the actor that opened, accepted or
 * adopted them. When the actor stops, its operations are cancelled, its
 * descriptors closed and the receive buffers it kept given back; no event
 * reaches it any more (events that were queued or still arrive are
 * dropped, counted in vz_shard_stats.io_events_dropped). A descriptor can
 * be handed to another actor, on any shard, with vz_io_detach() and
 * vz_io_adopt().
 *
 * Threads. Every call here is made from the owning actor on its home shard
 * thread (its callbacks: init, receive, on_stop), except vz_io_event_of(),
 * which only reads a message. Off that thread a call returns
 * VZ_EWRONGTHREAD; with a NULL actor, VZ_EINVAL; from an actor that has
 * stopped, VZ_ESTALE. In its on_stop an actor is still live and its calls
 * are accepted (closing is what they are for there), but every descriptor
 * it still owns is closed right after on_stop returns, so an operation
 * started there ends with its events dropped. A handle of another actor, or a
 * closed one, is VZ_ESTALE. Calls made in init before vz_runtime_start()
 * are accepted: the operations start with the shard's first loop turn.
 *
 * Errors, when several apply: a call makes its checks in this order and
 * returns the first that fails ("the common ones" below are 1-3):
 *   1. VZ_EINVAL: NULL actor;
 *   2. VZ_EWRONGTHREAD: not on the actor's home shard thread;
 *   3. VZ_ESTALE: the actor has stopped;
 *   4. the call's other arguments, those that need no handle looked up:
 *      NULL or bad pointers, addresses, flags, sizes (VZ_EINVAL, then
 *      VZ_ETOOBIG);
 *   5. VZ_ESTALE: the handle (descriptor, operation or kept buffer) is not
 *      a live one of this actor;
 *   6. what depends on the descriptor: its kind (VZ_EINVAL, e.g. a send on
 *      a UDP handle), its state and queues (VZ_EBUSY, VZ_EPIPE, VZ_EFULL);
 *   7. resources and the OS (VZ_ENOMEM, VZ_EMFILE, VZ_ENOTCONN, ...).
 * So a NULL buffer with a closed handle is VZ_EINVAL, a closed handle with
 * good arguments VZ_ESTALE, and any call from the wrong thread
 * VZ_EWRONGTHREAD.
 *
 * Every operation may carry a vz_io_req: a tag echoed in its events, and a
 * timeout. A timeout ends the operation with VZ_ETIMEDOUT when its final
 * event has not come by then (for a multishot operation: when no event has
 * come for that long); the bytes of a partly done send are then lost to
 * the stream (see vz_io_send()).
 */
#ifndef VELOZ_IO_H
#define VELOZ_IO_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "export.h"
#include "message.h"

VZ_BEGIN_DECLS

/* Addresses are the socket API's (struct sockaddr_in, sockaddr_in6 from
 * <netinet/in.h>); lengths are uint32_t, the same type as Linux's
 * uint32_t. This header does not include <sys/socket.h>, so that the
 * umbrella veloz.h adds no MSG_* or SO_* macros to an application's
 * namespace. */
struct sockaddr;

/* A descriptor owned by an actor: shard (8) | table slot (24) |
 * generation (32). 0 is the null handle. */
typedef struct vz_fd {
	uint64_t id;
} vz_fd;

#define VZ_FD_NULL ((vz_fd){0})

/* An operation that has not had its final event yet, for vz_io_cancel().
 * Generation-checked like vz_fd: once its final event has been produced
 * the handle is stale. Never 0 for a started operation. */
typedef struct vz_io_op {
	uint64_t id;
} vz_io_op;

/* What an event belongs to (vz_io_event.kind). */
enum vz_io_kind {
	VZ_IO_ACCEPT = 1, /* one event per connection; .accepted is the new handle */
	VZ_IO_CONNECT,	  /* res 0: connected */
	VZ_IO_RECV,	  /* stream bytes at .data (.len); res 0: end of stream */
	VZ_IO_RECVFROM,	  /* one datagram at .data, its sender at .peer */
	VZ_IO_SEND,	  /* res: the bytes of this send, all written */
	VZ_IO_SENDTO,	  /* res: the datagram's bytes */
	VZ_IO_READ,	  /* res: bytes read into the caller's buffer (0: end of file) */
	VZ_IO_WRITE,	  /* res: bytes written from the caller's buffer */
	VZ_IO_FSYNC,	  /* res 0: the data is on stable storage */
	VZ_IO_OPEN,	  /* res 0: .accepted is the new file handle */
};

/* Event flags (vz_io_event.flags). */
#define VZ_IO_EV_MORE 0x1u /* more events of this operation follow: not final */
#define VZ_IO_EV_BUF  0x2u /* .data is a runtime receive buffer (vz_io_buf_keep()) */

/* Largest number of bytes one receive event carries (one runtime buffer). */
#define VZ_IO_RECV_CHUNK 16384u

/* Largest datagram vz_io_sendto() takes. */
#define VZ_IO_DGRAM_MAX 16000u

/* Default bound of a connection's send queue, in bytes (vz_io_set_sendq_limit()). */
#define VZ_IO_SENDQ_DEFAULT (1u << 20)

/* Payload of a VZ_MSG_IO message (72 bytes; the payload is 16-aligned, message.h). */
typedef struct vz_io_event {
	vz_io_op op;	  /* the operation this event belongs to */
	uint64_t tag;	  /* vz_io_req.tag of that operation */
	vz_fd fd;	  /* the descriptor it ran on (OPEN: null) */
	vz_fd accepted;	  /* ACCEPT, OPEN: the new descriptor, owned by the receiver */
	const void *data; /* RECV, RECVFROM: the bytes; valid during receive unless kept */
	const struct sockaddr *peer; /* RECVFROM: the sender (inside the message), else NULL */
	int32_t res;		     /* bytes, 0, or a negative VZ_E* code */
	int32_t os_errno;	     /* the OS's errno behind a negative res, else 0 */
	uint32_t len;		     /* bytes at data */
	uint32_t peer_len;	     /* bytes at peer */
	uint16_t kind;		     /* enum vz_io_kind */
	uint16_t flags;		     /* VZ_IO_EV_* */
	uint32_t reserved_;
} vz_io_event;

VZ_STATIC_ASSERT(sizeof(vz_io_event) == 72, "vz_io_event is part of the ABI");

/* The event inside a VZ_MSG_IO message, or NULL for any other message (or
 * NULL m). Valid during the receive call, like the message. Any thread
 * that holds the message (in practice: the receiving actor). */
VZ_API const vz_io_event *vz_io_event_of(const vz_msg *m);

/* Options of one operation; a NULL vz_io_req means all zero. */
typedef struct vz_io_req {
	uint64_t tag;	     /* echoed in every event of the operation */
	uint64_t timeout_ns; /* 0: none. Else the final event is VZ_ETIMEDOUT if the
				operation has not ended by then (multishot: if no event
				came for that long). */
	uint32_t flags;	     /* VZ_IO_QUIET */
	uint32_t reserved_;  /* 0 */
} vz_io_req;

/* SEND, SENDTO, WRITE: no event on success; failures (and timeouts, and
 * cancels) still come. The operation still counts as started until then. */
#define VZ_IO_QUIET 0x1u

/* ---- TCP ---------------------------------------------------------------- */

typedef struct vz_listen_opts {
	int backlog;   /* 0: SOMAXCONN */
	int reuseport; /* nonzero: SO_REUSEPORT, so each shard may own a listener on
			  one port and the kernel spreads connections over them */
	int nodelay;   /* nonzero: accepted connections have TCP_NODELAY (Nagle off)
			  without a setsockopt each: it is set on the listener, and
			  Linux copies it into every socket the listener accepts */
} vz_listen_opts;

/* socket + bind + listen, synchronous (none of them blocks). Sets
 * SO_REUSEADDR (and SO_REUSEPORT when asked, TCP_NODELAY when asked); port
 * 0 picks a free port, which vz_io_local_addr() tells. opts may be NULL
 * (all zero). Errors:
 * the common ones (top of this file), VZ_EINVAL (NULL addr or out, a
 * family other than AF_INET/AF_INET6), VZ_EADDRINUSE, VZ_EACCES,
 * VZ_EADDRNOTAVAIL, VZ_EMFILE (no descriptor left), VZ_ENOMEM. */
VZ_API int vz_tcp_listen(vz_actor *self, const struct sockaddr *addr, uint32_t len,
			 const vz_listen_opts *opts, vz_fd *out);

/* Accept connections on a listener until cancelled, closed or failed: one
 * VZ_IO_ACCEPT event per connection (VZ_IO_EV_MORE set) whose .accepted is
 * a connected, non-blocking TCP handle owned by the receiver. Out of
 * descriptors (EMFILE/ENFILE): an event with res VZ_EMFILE and
 * VZ_IO_EV_MORE set, then accepting pauses briefly and resumes by itself
 * (the listener keeps serving; stat io_accept_backoffs). Other failures
 * end it with a final event. One accept at a time per listener (VZ_EBUSY).
 * Errors: the common ones, VZ_EINVAL (not a listener), VZ_EBUSY, VZ_ENOMEM. */
VZ_API int vz_io_accept(vz_actor *self, vz_fd listener, const vz_io_req *req, vz_io_op *out);

/* Non-blocking connect. *out is the new handle at once (owned by self; it
 * may be closed before the connect ends, which cancels it); one final
 * VZ_IO_CONNECT event says whether it connected (res 0) or not
 * (VZ_ECONNREFUSED, VZ_ETIMEDOUT, VZ_ENETUNREACH, VZ_EHOSTUNREACH, ...).
 * op may be NULL. Errors: the common ones, VZ_EINVAL (NULL addr or out, bad
 * family), VZ_EMFILE, VZ_ENOMEM. */
VZ_API int vz_tcp_connect(vz_actor *self, const struct sockaddr *addr, uint32_t len,
			  const vz_io_req *req, vz_fd *out, vz_io_op *op);

/* Receive a stream into runtime buffers until end of stream, error, cancel
 * or close: one VZ_IO_RECV event per chunk (up to VZ_IO_RECV_CHUNK bytes,
 * VZ_IO_EV_MORE | VZ_IO_EV_BUF set), without a copy; the buffer goes back
 * to the shard when the receive call returns unless kept with
 * vz_io_buf_keep(). The final event is res 0 (the peer closed: end of
 * stream), or an error (VZ_ECONNRESET, ...), VZ_ECANCELED, VZ_ETIMEDOUT.
 * Buffer shortage never ends it: the receive waits until buffers come
 * back (stat io_bufs_exhausted). A connection whose chunks wait unhandled
 * in the actor's mailbox (8 of them) is not read further until the actor
 * catches up, so a slow actor slows its own peer, not the shard. One
 * receive at a time per descriptor (VZ_EBUSY). Errors: the common ones,
 * VZ_EINVAL (a listener or file), VZ_EBUSY, VZ_ENOMEM. */
VZ_API int vz_io_recv(vz_actor *self, vz_fd fd, const vz_io_req *req, vz_io_op *out);

/* Queue len bytes on the connection's send queue (copied into pooled
 * chunks: no allocation per send in steady state) and write them in order,
 * after those queued before. One final VZ_IO_SEND event when all of them
 * are written (res = len; none with VZ_IO_QUIET) or on failure
 * (VZ_EPIPE, VZ_ECONNRESET, ...: the send and every one queued after it
 * fail). A send cancelled or timed out before any of its bytes were
 * written is taken out of the queue cleanly; one that was partly written
 * leaves the stream broken: the rest is dropped, the connection's sending
 * side is shut down and later sends fail with VZ_EPIPE. len 0 is allowed
 * (its event comes when the bytes before it are written). On a connection
 * from vz_tcp_connect() sends may be queued before its VZ_IO_CONNECT event:
 * they are written once it connects, or fail with its error. out may be NULL.
 * Errors: the common ones, VZ_EINVAL (NULL data with len > 0, not a
 * connected stream), VZ_EFULL (the queue would exceed its limit,
 * vz_io_set_sendq_limit(); nothing was queued: back-pressure, stat
 * io_sendq_full), VZ_EPIPE (sending side shut down or broken), VZ_ENOMEM. */
VZ_API int vz_io_send(vz_actor *self, vz_fd fd, const void *data, size_t len, const vz_io_req *req,
		      vz_io_op *out);

/* Bound of fd's send queue in bytes (default VZ_IO_SENDQ_DEFAULT; at least
 * one byte). Sends already queued stay. Errors: the common ones, VZ_EINVAL. */
VZ_API int vz_io_set_sendq_limit(vz_actor *self, vz_fd fd, size_t bytes);

/* Bytes queued on fd's send queue and not yet written, or a negative code
 * (the common ones). */
VZ_API long vz_io_sendq_bytes(vz_actor *self, vz_fd fd);

/* shutdown(2). SHUT_WR (and the write half of SHUT_RDWR) takes effect
 * after the sends already queued are written; later sends fail with
 * VZ_EPIPE. No event. Errors: the common ones, VZ_EINVAL (bad how, not a
 * socket), VZ_ENOTCONN. */
VZ_API int vz_io_shutdown(vz_actor *self, vz_fd fd, int how);

/* ---- UDP ---------------------------------------------------------------- */

/* socket + bind of a UDP socket. reuse nonzero: SO_REUSEADDR and
 * SO_REUSEPORT (several sockets, e.g. one per shard, on one port or
 * multicast group). Errors: as vz_tcp_listen(). */
VZ_API int vz_udp_bind(vz_actor *self, const struct sockaddr *addr, uint32_t len, int reuse,
		       vz_fd *out);

/* Join multicast group `group` (IPv4 or IPv6) on interface ifindex (0:
 * the kernel's choice), and enable loopback of the group's datagrams.
 * Synchronous. Errors: the common ones, VZ_EINVAL (not a UDP handle, not a
 * multicast address), VZ_ENODEV (no such interface, or no route for the
 * group), VZ_EADDRINUSE (already joined), VZ_ENOMEM. */
VZ_API int vz_udp_join(vz_actor *self, vz_fd fd, const struct sockaddr *group, uint32_t len,
		       unsigned ifindex);

/* Receive datagrams until cancelled, closed or failed: one VZ_IO_RECVFROM
 * event per datagram (VZ_IO_EV_MORE | VZ_IO_EV_BUF), .peer its sender. Many
 * datagrams are taken per loop turn. Like vz_io_recv() otherwise (buffers,
 * shortage, mailbox cap); a datagram longer than VZ_IO_RECV_CHUNK is
 * truncated. Errors: the common ones, VZ_EINVAL (not UDP), VZ_EBUSY,
 * VZ_ENOMEM. */
VZ_API int vz_io_recvfrom(vz_actor *self, vz_fd fd, const vz_io_req *req, vz_io_op *out);

/* Send one datagram (copied) to `to`. One final VZ_IO_SENDTO event (none
 * with VZ_IO_QUIET on success). out may be NULL. Errors: the common ones,
 * VZ_EINVAL (not UDP, NULL to), VZ_ETOOBIG (len > VZ_IO_DGRAM_MAX),
 * VZ_EFULL (64 datagrams of this handle already wait), VZ_ENOMEM. */
VZ_API int vz_io_sendto(vz_actor *self, vz_fd fd, const void *data, size_t len,
			const struct sockaddr *to, uint32_t tolen, const vz_io_req *req,
			vz_io_op *out);

/* ---- files -------------------------------------------------------------- */

/* Open a file without blocking the shard (io_uring: IORING_OP_OPENAT; epoll:
 * see NOTES). flags as open(2) (O_CLOEXEC is always added), mode for
 * O_CREAT. One final VZ_IO_OPEN event: res 0 and .accepted the new handle,
 * or VZ_ENOENT, VZ_EACCES, VZ_EEXIST, VZ_EMFILE, VZ_ENOSPC, ... path is
 * copied (at most 4095 bytes). out may be NULL. Errors: the common ones,
 * VZ_EINVAL (NULL path), VZ_ETOOBIG (path too long), VZ_ENOMEM. */
VZ_API int vz_file_open(vz_actor *self, const char *path, int flags, unsigned mode,
			const vz_io_req *req, vz_io_op *out);

/* Read up to len bytes at offset (-1: the file position) into buf, which
 * must stay valid and untouched until the final event. One final
 * VZ_IO_READ event: res = bytes read (0: end of file). len <= INT32_MAX.
 * Errors: the common ones, VZ_EINVAL (NULL buf, len too big, a listener),
 * VZ_EBUSY (64 operations already in flight on this handle), VZ_ENOMEM. */
VZ_API int vz_io_read(vz_actor *self, vz_fd fd, void *buf, size_t len, int64_t offset,
		      const vz_io_req *req, vz_io_op *out);

/* Write len bytes from buf at offset (-1: the file position; O_APPEND
 * files append). buf must stay valid until the final event. One final
 * VZ_IO_WRITE event: res = bytes written (a short count only at a real
 * limit, e.g. VZ_ENOSPC next). Errors: as vz_io_read(). */
VZ_API int vz_io_write(vz_actor *self, vz_fd fd, const void *buf, size_t len, int64_t offset,
		       const vz_io_req *req, vz_io_op *out);

/* fsync(2) (datasync nonzero: fdatasync). Ordered after the writes on the
 * same handle whose final event already came; writes still in flight may
 * or may not be covered: wait for their events first. One final
 * VZ_IO_FSYNC event, res 0 or an error (VZ_EIO, VZ_ENOSPC). Errors: as
 * vz_io_read(). */
VZ_API int vz_io_fsync(vz_actor *self, vz_fd fd, int datasync, const vz_io_req *req, vz_io_op *out);

/* ---- any descriptor ----------------------------------------------------- */

/* Cancel an operation of self. Its final event still comes, exactly once:
 * VZ_ECANCELED, or its real result if it had already finished. Returns 0,
 * VZ_ESTALE (its final event was already produced, or not self's), or the
 * common errors. */
VZ_API int vz_io_cancel(vz_actor *self, vz_io_op op);

/* Close. The handle is stale at once. Operations on it other than sends
 * end with VZ_ECANCELED (their final events come); sends already queued
 * are still written, with their events, then the descriptor is closed
 * (a graceful close: the peer reads everything, then end of stream).
 * Errors: the common ones. */
VZ_API int vz_io_close(vz_actor *self, vz_fd fd);

/* Close at once, dropping queued sends (VZ_ECANCELED) and, for a TCP
 * connection, resetting it (the peer sees VZ_ECONNRESET). Errors: the
 * common ones. */
VZ_API int vz_io_abort(vz_actor *self, vz_fd fd);

/* Hand a descriptor to another actor: detach the raw fd from self (the
 * handle goes stale; self must have no operation in flight on it and no
 * queued send: VZ_EBUSY), send the number in an ordinary message, and the
 * receiver adopts it. Until adopted, the raw fd is the sender's to close
 * if the message is dead-lettered. Errors: the common ones, VZ_EBUSY. */
VZ_API int vz_io_detach(vz_actor *self, vz_fd fd, int *raw_out);

/* Take ownership of an open raw fd (made non-blocking and close-on-exec).
 * Errors: the common ones, VZ_EINVAL (raw < 0 or not open), VZ_ENOMEM. */
VZ_API int vz_io_adopt(vz_actor *self, int raw, vz_fd *out);

/* The raw fd behind a handle, for setsockopt() and the like; never close
 * it yourself, and do not keep it past vz_io_close(). >= 0 or the common
 * errors. */
VZ_API int vz_io_fileno(vz_actor *self, vz_fd fd);

/* getsockname / getpeername into *addr (*len in: its size; out: the
 * address's). Errors: the common ones, VZ_EINVAL, VZ_ENOTCONN (peer). */
VZ_API int vz_io_local_addr(vz_actor *self, vz_fd fd, struct sockaddr *addr, uint32_t *len);
VZ_API int vz_io_peer_addr(vz_actor *self, vz_fd fd, struct sockaddr *addr, uint32_t *len);

/* A receive buffer kept past the receive call. */
typedef struct vz_io_buf {
	uint64_t id;
} vz_io_buf;

/* Keep the buffer of received event m (VZ_IO_EV_BUF) after the receive
 * call returns: its .data stays valid and unchanged until
 * vz_io_buf_release(). Kept buffers are not available for receiving, and
 * the shard has a fixed number (stat io_bufs_exhausted counts waits for
 * them), so keep them briefly. When self stops, its kept buffers are given
 * back. Call it inside the receive call of m. Errors: the common ones,
 * VZ_EINVAL (m carries no buffer, or is not self's current message),
 * VZ_EBUSY (already kept). */
VZ_API int vz_io_buf_keep(vz_actor *self, const vz_msg *m, vz_io_buf *out);

/* Give a kept buffer back. Errors: the common ones, VZ_ESTALE (not kept by
 * self, or released already). */
VZ_API int vz_io_buf_release(vz_actor *self, vz_io_buf buf);

VZ_END_DECLS

#endif
