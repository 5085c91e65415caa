/* SPDX-License-Identifier: MIT */
/*
 * Actor lifecycle beyond vz_spawn()/vz_stop(): spawning on any shard from
 * anywhere, why an actor ended (exit reasons), monitors, links, and a
 * runtime stop asked for from inside an actor.
 *
 * Everything here reaches an actor as a message on its home shard:
 * VZ_MSG_SPAWNED (a spawn's result), VZ_MSG_DOWN (a monitored actor
 * ended), VZ_MSG_EXIT (a linked actor ended and this one traps exits).
 * They are made by the runtime and, like timer expiries, are not counted in
 * sent/handled/dead_letters (stats.h): each is handled exactly once by a
 * live target, or dropped without the dead-letter hook when the target is
 * gone. They queue behind the mail already in the target's mailbox, so a
 * DOWN or EXIT from an actor comes after every message that actor sent
 * before it ended (per-pair FIFO). The requests behind them (monitor,
 * demonitor, link, unlink, an exit signal) take the target's urgent lane,
 * as stop requests do, and are never refused by outbox or mailbox bounds.
 *
 * When the runtime stops, actors end with VZ_EXIT_SHUTDOWN and no DOWN or
 * EXIT is sent any more (every send is refused then).
 */
#ifndef VELOZ_LIFECYCLE_H
#define VELOZ_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "export.h"
#include "message.h"
#include "runtime.h"

VZ_BEGIN_DECLS

/* ---- exit reasons ------------------------------------------------------- */

typedef enum vz_exit_kind {
	VZ_EXIT_NORMAL = 0,  /* it stopped itself: vz_stop() of its own reference */
	VZ_EXIT_STOPPED,     /* vz_stop() from another actor or thread */
	VZ_EXIT_SHUTDOWN,    /* the runtime stopped */
	VZ_EXIT_FAILED,	     /* vz_fail() from its callbacks */
	VZ_EXIT_INIT_FAILED, /* its init returned an error (code) */
	VZ_EXIT_LINKED,	     /* a linked actor ended abnormally and it did not trap exits */
	VZ_EXIT_NOPROC,	     /* monitored or linked when already gone ("no such actor") */
} vz_exit_kind;

#define VZ_EXIT_TEXT_MAX 48

/* Why an actor ended: a kind, a code (vz_fail()'s, init's return, or the
 * originating code for LINKED; 0 otherwise) and a short NUL-terminated
 * text (truncated to VZ_EXIT_TEXT_MAX - 1 bytes). */
typedef struct vz_exit {
	uint32_t kind; /* vz_exit_kind */
	int32_t code;
	char text[VZ_EXIT_TEXT_MAX];
} vz_exit;

/* Abnormal exits propagate along links: FAILED, INIT_FAILED, LINKED and
 * NOPROC. NORMAL, STOPPED and SHUTDOWN do not (a trapping actor still
 * receives them as VZ_MSG_EXIT). */
static inline bool vz_exit_abnormal(const vz_exit *e)
{
	return e->kind >= VZ_EXIT_FAILED;
}

/* End the calling actor with VZ_EXIT_FAILED, `code` and `text` (NULL =
 * ""): it stops when the current receive returns (on_stop runs), its
 * watchers get DOWN with this reason and its links an abnormal exit. Its
 * shard and every other actor go on. From the actor's receive or on_stop
 * on its home shard. Errors: VZ_EINVAL (NULL self), VZ_EWRONGTHREAD,
 * VZ_ESTATE (not inside receive or on_stop, e.g. from init: return an
 * error from init instead), VZ_ESTALE (already stopped). */
VZ_API int vz_fail(vz_actor *self, int32_t code, const char *text);

/* ---- spawning anywhere -------------------------------------------------- */

/* vz_spawn_on()'s shard argument: the caller's own shard. */
#define VZ_SHARD_HERE UINT32_MAX

/* A shard picked by hashing `key` (e.g. a connection or user id), spread
 * evenly over rt's shards and the same for the same key during rt's life.
 * Any thread. 0 for a NULL rt. */
VZ_API unsigned vz_shard_of_key(const vz_runtime *rt, uint64_t key);

/* Payload of VZ_MSG_SPAWNED, the result of vz_spawn_on(). */
typedef struct vz_spawned {
	uint64_t tag;	/* the caller's tag */
	vz_ref actor;	/* the new actor (also vz_msg_sender()), null on failure */
	int32_t rc;	/* 0, or init's error, VZ_ENOMEM, VZ_ESTOPPED */
	uint32_t shard; /* where it was (to be) spawned */
} vz_spawned;

#define VZ_SPAWN_ARG_MAX (VZ_MSG_MAX_PAYLOAD - 64u) /* vz_spawn_on()'s arg_len limit */

/* Spawn an actor on any shard (VZ_SHARD_HERE: the caller's) from inside an
 * actor. arg_len bytes of arg are copied: init sees a pointer to the copy,
 * valid during init only (NULL when arg_len is 0). The result always comes
 * back as one VZ_MSG_SPAWNED message to the caller carrying `tag`, the new
 * reference or init's error; on the caller's shard init runs before this
 * returns. spec must outlive the actor. From the actor's home shard.
 * Errors (nothing was spawned, no message will come): VZ_EINVAL (NULL
 * self or spec, no receive, state too big, a scheduling class the config
 * lacks, NULL arg with arg_len > 0), VZ_ETOOBIG (arg_len >
 * VZ_SPAWN_ARG_MAX), VZ_ENOSHARD, VZ_EWRONGTHREAD, VZ_ESTALE (caller
 * stopped), VZ_ESTOPPED (runtime stopping), VZ_ENOMEM. A request that
 * reaches a stopping shard comes back with rc VZ_ESTOPPED (if the caller
 * still lives). */
VZ_API int vz_spawn_on(vz_actor *self, unsigned shard, const vz_actor_spec *spec, const void *arg,
		       size_t arg_len, uint64_t tag);

/* vz_spawn() for a thread that may not spawn on `shard` directly (any
 * thread that runs no shard, after vz_runtime_start()): the request goes
 * to the shard and the call waits until init has run there, so arg needs
 * no copy. Where vz_spawn() would work (before start, on the shard's own
 * thread, the thread that drives an embedded shard) it is vz_spawn().
 * Waiting for an embedded shard needs its driver to keep polling it.
 * Errors: those of vz_spawn(), plus VZ_EWRONGTHREAD from a thread running
 * another shard (use vz_spawn_on(), which does not block a shard), and
 * VZ_ESTOPPED when the runtime stops before the shard got to it. */
VZ_API int vz_spawn_wait(vz_runtime *rt, unsigned shard, const vz_actor_spec *spec, const void *arg,
			 vz_ref *out);

/* ---- monitors ----------------------------------------------------------- */

typedef struct vz_monitor_ref {
	uint64_t id; /* never 0 for a monitor made by vz_monitor() */
} vz_monitor_ref;

/* Payload of VZ_MSG_DOWN. */
typedef struct vz_down {
	vz_monitor_ref mon; /* what vz_monitor() returned */
	vz_ref actor;	    /* the monitored actor */
	vz_exit reason;
} vz_down;

/* Watch `target` (any shard, even the caller itself): when it ends, the
 * caller gets exactly one VZ_MSG_DOWN with the reason; if it is already
 * gone (a stale reference), DOWN with VZ_EXIT_NOPROC comes at once. A
 * caller may monitor the same target several times; each monitor gets its
 * own DOWN. The monitor ends with the DOWN, vz_demonitor(), or the
 * caller's own end. `out` receives the monitor for vz_demonitor(); it may
 * be NULL for a monitor that will not be taken back. From the calling
 * actor (its home shard). Errors:
 * VZ_EINVAL (NULL self), VZ_ESTALE (null target, or the caller is
 * stopped), VZ_ENOSHARD, VZ_EWRONGTHREAD, VZ_ESTOPPED (runtime stopping),
 * VZ_ENOMEM. */
VZ_API int vz_monitor(vz_actor *self, vz_ref target, vz_monitor_ref *out);

/* Stop watching. Idempotent: 0 also for a monitor whose DOWN came already,
 * or that was never made; a DOWN of it already queued to the caller is
 * dropped, never delivered. From the calling actor. VZ_EINVAL (NULL),
 * VZ_EWRONGTHREAD, VZ_ESTALE (caller stopped). */
VZ_API int vz_demonitor(vz_actor *self, vz_monitor_ref mon);

/* ---- links -------------------------------------------------------------- */

/* Payload of VZ_MSG_EXIT. */
typedef struct vz_exit_msg {
	vz_ref actor; /* the linked actor that ended */
	vz_exit reason;
} vz_exit_msg;

/* Link the caller and `other` (any shard), both ways: when either ends,
 * the other gets an exit signal. A signal with an abnormal reason
 * (vz_exit_abnormal()) stops an actor that does not trap exits, with
 * VZ_EXIT_LINKED and the same code, which in turn signals its own links;
 * an actor that traps exits gets every signal as a VZ_MSG_EXIT message
 * instead, and a normal one is otherwise ignored. Linking to a stale
 * reference signals the caller at once with VZ_EXIT_NOPROC. Linking twice
 * is one link. From the calling actor. Errors: VZ_EINVAL (NULL self,
 * other == self), VZ_ESTALE (null other, caller stopped), VZ_ENOSHARD,
 * VZ_EWRONGTHREAD, VZ_ESTOPPED, VZ_ENOMEM. */
VZ_API int vz_link(vz_actor *self, vz_ref other);

/* Remove the link both ways; a signal from `other` already on its way is
 * then ignored. Idempotent (0 when not linked). From the calling actor.
 * VZ_EINVAL, VZ_EWRONGTHREAD, VZ_ESTALE (caller stopped). */
VZ_API int vz_unlink(vz_actor *self, vz_ref other);

/* Trap exits (on = true): exit signals from links arrive as VZ_MSG_EXIT
 * messages instead of stopping the caller. Off by default. From the
 * calling actor. VZ_EINVAL, VZ_EWRONGTHREAD, VZ_ESTALE, VZ_ENOMEM. */
VZ_API int vz_trap_exits(vz_actor *self, bool on);

/* ---- stopping the runtime from inside ----------------------------------- */

/* Ask for vz_runtime_stop() without waiting for it: a runtime-owned thread
 * runs the stop. Allowed where vz_runtime_stop() is not, from an actor or
 * any shard thread, and from any other thread. Returns 0 when this call
 * started the stop; VZ_ESTATE when rt is not running or a stop was already
 * asked for or is under way; VZ_EINVAL for NULL; VZ_EIO when the thread
 * could not be created. The program then learns that the stop finished
 * with vz_runtime_wait(), and vz_runtime_destroy() also waits for it. */
VZ_API int vz_runtime_stop_async(vz_runtime *rt);

/* Wait until rt has stopped (by vz_runtime_stop_async() or a
 * vz_runtime_stop() on another thread). Returns 0 at once when it is
 * stopped already; VZ_ESTATE when it was never started; VZ_EINVAL for
 * NULL; VZ_EWRONGTHREAD from a shard thread of rt (it would wait for
 * itself). Any other thread. */
VZ_API int vz_runtime_wait(vz_runtime *rt);

VZ_END_DECLS

#endif
