/* SPDX-License-Identifier: MIT */
/*
 * Messages. A send copies the payload once: a small message to an actor of
 * the same shard goes into the target's mailbox itself (32-byte cells),
 * anything else into a pooled message (vz_send_reserve() and vz_forward()
 * below avoid even that copy). The receiver sees either as a const vz_msg*
 * valid during its receive call only: neither the pointer nor
 * vz_msg_data() may be kept past the call (copy what must outlive it; an
 * I/O buffer is kept with vz_io_buf_keep(), io.h). Delivery
 * contract: a send that returned 0 is handled exactly once by its target,
 * or counted as a dead letter (and given to the config's dead-letter hook)
 * if the target stopped first. Order is FIFO per (sender, receiver) pair,
 * across shards too. A send that returned an error changed nothing.
 */
#ifndef VELOZ_MESSAGE_H
#define VELOZ_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "export.h"

VZ_BEGIN_DECLS

/* Largest payload one message carries. */
#define VZ_MSG_MAX_PAYLOAD 16384u

/* Alignment of every received payload: vz_msg_data() is a multiple of
 * VZ_MSG_ALIGN bytes on every path a message can take (vz_send() to the
 * same or another shard, vz_post() from any thread, timer expiries, pool
 * completions, dead letters), so a receiver may read a struct whose
 * alignment is at most 16 (any scalar, long double, max_align_t, SSE
 * vectors) in place, by casting, once it has checked vz_msg_len(). Inside
 * a payload, offsets keep their alignment relative to this base: the
 * result bytes of a pool completion follow its 24-byte vz_pool_done and
 * so are 8-byte aligned (pool.h). */
#define VZ_MSG_ALIGN 16u

/* Message types below VZ_MSG_USER belong to the runtime. */
enum vz_msg_type {
	VZ_MSG_TIMER = 1,     /* payload: vz_timer_event (timer.h) */
	VZ_MSG_POOL_DONE = 2, /* payload: vz_pool_done + result bytes (pool.h) */
	VZ_MSG_IO = 3,	      /* payload: vz_io_event (io.h) */
	VZ_MSG_SPAWNED = 4,   /* payload: vz_spawned, result of vz_spawn_on() (lifecycle.h) */
	VZ_MSG_TIMEOUT = 5,   /* no payload: an ask's deadline passed; vz_msg_corr() (ask.h) */
	VZ_MSG_DOWN = 6,      /* payload: vz_down, a monitored actor ended (lifecycle.h) */
	VZ_MSG_EXIT = 7,      /* payload: vz_exit_msg, a linked actor ended (lifecycle.h) */
	VZ_MSG_USER = 256,    /* first type free for applications */
};

/* Send from inside an actor (its home shard). The receiver sees `self` as
 * the sender. Errors: VZ_EINVAL (NULL self, type < VZ_MSG_USER, NULL payload
 * with len > 0), VZ_ETOOBIG (len > VZ_MSG_MAX_PAYLOAD), VZ_ESTALE (null ref, or a
 * local target that is gone), VZ_ENOSHARD, VZ_EFULL (target's bounded mailbox is full, or, for a
 * target on another shard, the config's outbox_limit messages from this
 * shard already wait for the full ring to that shard; stats mailbox_full
 * and outbox_full tell which), VZ_ESTOPPED (runtime stopping), VZ_ENOMEM.
 * VZ_EFULL is back-pressure: nothing was sent; try again later (e.g. from
 * a timer or the next message). */
VZ_API int vz_send(vz_actor *self, vz_ref to, uint32_t type, const void *payload, size_t len);

/* Send to the sender of `m`. VZ_EINVAL when m came from outside any actor
 * (a vz_post() without a port). When m is an ask (vz_ask(), vz_port_post()
 * with a correlation), the reply carries the ask's correlation id back
 * (ask.h). Same thread rules and errors as vz_send(). */
VZ_API int vz_reply(vz_actor *self, const vz_msg *m, uint32_t type, const void *payload,
		    size_t len);

/* Send from any thread: shard threads, the embedder's threads, workers.
 * From a foreign thread the message goes through that thread's own lane
 * into the target shard (producer.h; the shard's shared inbox when the
 * shard has no lane left for the thread) and wakes the shard only if it
 * sleeps (outbox_limit applies to posts from shard threads only). Order
 * is FIFO per posting thread and target. The receiver sees a null
 * sender. Same errors as vz_send, plus VZ_ESTATE before vz_runtime_start.
 * A stale target on another shard is accepted and dead-lettered there.
 * A refusal with VZ_EFULL is counted in the mailbox_full stat (stats.h).
 *
 * May run at the same time as vz_runtime_stop() on another thread: the
 * post is either accepted, and its message handled or dead-lettered before
 * stop returns (the call itself may return 0 a moment after stop did), or
 * refused with VZ_ESTOPPED. Every post that starts after stop returned is
 * refused. Must not run at the same time as vz_runtime_destroy(), nor after
 * it: destroy needs every call on rt to have returned (runtime.h).
 * Cost from a foreign thread, through its lane: one compare-and-swap on a
 * line only that thread writes (no contended read-modify-write), the
 * record written in place (payloads up to VZ_PRODUCER_INLINE bytes), no
 * syscall unless the target sleeps; the thread's first post to a shard
 * makes its lane (a lock and an allocation). Through the inbox: two
 * read-modify-writes on the target shard's inbox line and one on a
 * foreign-pool free list. */
VZ_API int vz_post(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len);

/*
 * Zero-copy hand-off, from inside an actor (its home shard).
 *
 * Reserve, write, commit (the get / prep / submit shape of liburing):
 * vz_send_reserve() makes every check vz_send() makes for a message of
 * `len` bytes, takes its place against a bounded mailbox, and returns in
 * *buf where to write the payload (VZ_MSG_ALIGN-aligned, len bytes; with
 * len 0 a valid pointer that must not be written). vz_send_commit() sends
 * it: the message joins the FIFO order from self to `to` at the commit,
 * exactly as a vz_send() at that moment would (sends made between reserve
 * and commit go first). A payload past the inline size of a mailbox cell
 * (over 112 bytes) for an actor of the same shard, or past the inline size
 * of a cross-shard ring slot (over 32 bytes) for an actor on another shard,
 * is written straight into the message that travels: no copy at all. A
 * smaller payload is copied once at commit, into the target's mailbox cells
 * or into the ring slot (a copy of a few bytes costs less than moving a
 * block between cores), which costs what vz_send()'s copy does.
 *
 * One reservation at a time per shard: it belongs to the calling actor
 * and to the callback that made it (receive, init or on_stop). If that
 * callback returns (at the latest when the actor's current run ends)
 * without committing or aborting it, the runtime aborts it. After commit
 * or abort, buf is no longer the caller's.
 *
 * vz_send_reserve() errors: those of vz_send() (VZ_EINVAL for NULL self or
 * buf or type < VZ_MSG_USER or a reference to another node, VZ_EWRONGTHREAD,
 * VZ_ETOOBIG, VZ_ESTALE, VZ_ENOSHARD, VZ_EFULL, VZ_ESTOPPED, VZ_ENOMEM),
 * and VZ_EBUSY when a reservation is already open on this shard. On error
 * *buf is NULL and nothing is held.
 *
 * vz_send_commit(): 0, or VZ_EINVAL (NULL self or buf), VZ_EWRONGTHREAD,
 * VZ_ENOENT (no open reservation of self with this buf: never reserved,
 * committed or aborted already), or one of these after which nothing was
 * sent and the reservation is gone: VZ_ESTALE (self, or a target on this
 * shard, stopped since the reserve), VZ_ESTOPPED (the runtime began
 * stopping since), VZ_ENOMEM (no memory for the target's mailbox). A
 * target on another shard that stopped meanwhile gets a dead letter, as
 * with vz_send().
 *
 * vz_send_abort(): nothing is sent and the mailbox place is given back;
 * 0, or VZ_EINVAL, VZ_EWRONGTHREAD, VZ_ENOENT as for commit.
 */
VZ_API int vz_send_reserve(vz_actor *self, vz_ref to, uint32_t type, size_t len, void **buf);
VZ_API int vz_send_commit(vz_actor *self, void *buf);
VZ_API int vz_send_abort(vz_actor *self, void *buf);

/*
 * Hand the message self is handling now (m, its receive argument) on to
 * `to` without copying it: the payload, type, sender (vz_msg_sender() at
 * `to` is m's sender, not self) and an ask's correlation (so `to` may
 * vz_reply() the asker directly) travel as they are; a reply to one of
 * self's own asks arrives as a plain message (correlation 0). The message
 * takes its place in self -> to's FIFO order at this call. m itself is
 * counted as handled by self; the forward is a send (sent_local or
 * sent_remote) handled or dead-lettered at `to`.
 *
 * After 0, m is no longer self's: do not read it or its payload again in
 * this call. The message's memory moves with it when it is a block this
 * shard may hand on; a small message from a mailbox cell or one handled
 * straight from a cross-shard ring slot (a payload of up to 32 bytes whose
 * receiver had nothing queued), or a message posted from a foreign thread
 * going to another shard, is copied once (no worse than vz_send()).
 *
 * Same thread rules and errors as vz_send(), plus: VZ_EINVAL when m is
 * NULL or not the message self is handling in the current receive call,
 * or a runtime message (type < VZ_MSG_USER); VZ_ESTATE when m was already
 * forwarded. On error m is still self's, unchanged.
 */
VZ_API int vz_forward(vz_actor *self, const vz_msg *m, vz_ref to);

/* Accessors for a received message (valid during receive only).
 * vz_msg_data() is aligned to VZ_MSG_ALIGN (16) bytes, also when the
 * length is 0. */
VZ_API uint32_t vz_msg_type(const vz_msg *m);
VZ_API const void *vz_msg_data(const vz_msg *m);
VZ_API size_t vz_msg_len(const vz_msg *m);
VZ_API vz_ref vz_msg_sender(const vz_msg *m); /* VZ_REF_NULL when posted from outside */
/* The correlation id of an ask (ask.h): on a request, nonzero when the
 * sender asked (vz_reply() carries it back); on a reply or a
 * VZ_MSG_TIMEOUT, the id vz_ask() returned. 0 otherwise or for NULL. */
VZ_API uint32_t vz_msg_corr(const vz_msg *m);

VZ_END_DECLS

#endif
