/* SPDX-License-Identifier: MIT */
/*
 * Actors: state plus a receive function, living on one shard for life.
 * All calls on a vz_actor* happen on that actor's home shard (it is only
 * ever handed to the actor's own callbacks), so actor code needs no locks.
 *
 * References (vz_ref) name an actor from anywhere. A reference carries a
 * generation: once the actor stops, its reference is stale and every use is
 * refused (VZ_ESTALE) or dead-lettered, even after the slot is reused.
 */
#ifndef VELOZ_ACTOR_H
#define VELOZ_ACTOR_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "runtime.h"

VZ_BEGIN_DECLS

typedef struct vz_actor vz_actor; /* the running actor, given to its callbacks */
typedef struct vz_msg vz_msg;	  /* a received message (message.h) */

/* 64 bits: shard (8) | slot (24) | generation (32). 0 is the null ref.
 * A slot's generations are never reused: a slot whose last generation has
 * ended is retired, so a stale reference can never name a later actor. */
typedef struct vz_ref {
	uint64_t id;
} vz_ref;

#ifdef __cplusplus
#define VZ_REF_NULL (vz_ref{0})
#else
#define VZ_REF_NULL ((vz_ref){0})
#endif

static inline int vz_ref_is_null(vz_ref r)
{
	return r.id == 0;
}
static inline int vz_ref_eq(vz_ref a, vz_ref b)
{
	return a.id == b.id;
}
static inline unsigned vz_ref_shard(vz_ref r)
{
	return (unsigned)(r.id >> 56);
}

/* Runs once on the home shard before the first message; a negative return
 * aborts the spawn (the actor never existed, messages to it dead-letter). */
typedef int (*vz_init_fn)(vz_actor *self, void *state, const void *arg);
/* Handles one message. The message and its payload are valid only during
 * the call. */
typedef void (*vz_receive_fn)(vz_actor *self, void *state, const vz_msg *msg);
/* Runs once when the actor stops (after its last message). */
typedef void (*vz_stop_fn)(vz_actor *self, void *state);

typedef struct vz_actor_spec {
	const char *name;	/* for stats and logs; may be NULL */
	size_t state_size;	/* zeroed bytes handed to every callback; <= 1 MiB */
	vz_init_fn init;	/* optional */
	vz_receive_fn receive;	/* required */
	vz_stop_fn on_stop;	/* optional */
	uint32_t mailbox_limit; /* 0 = unbounded; else sends beyond it get VZ_EFULL */
	/* Appended fields; zero is the old behaviour. */
	/* Scheduling class: index into vz_config.classes (0 = the first, also
	 * the only one when the config declares none). vz_spawn() refuses an
	 * index >= the number of classes with VZ_EINVAL. */
	uint32_t sched_class;
} vz_actor_spec;

/* Spawn an actor on `shard`. spec must outlive the actor. arg is passed to
 * init (which runs before this returns). Allowed before vz_runtime_start()
 * from any one thread, and after start on the target shard's own thread
 * (an actor or the embedder driving it); from elsewhere VZ_EWRONGTHREAD:
 * an actor spawns on other shards with vz_spawn_on(), a foreign thread
 * with vz_spawn_wait() (lifecycle.h).
 * Errors: VZ_EINVAL (NULL, no receive, state too big), VZ_ENOSHARD,
 * VZ_ENOMEM (no memory, or all 2^24 actor slots of the shard are live or
 * retired), VZ_ESTOPPED, or init's own negative code. Before start, the
 * calling thread stands in for the shard while init runs: init may send,
 * arm timers and submit pool jobs, and vz_current_shard() returns the
 * shard. The thread that drives an embedded shard may also spawn on it
 * between two vz_shard_poll() calls. */
VZ_API int vz_spawn(vz_runtime *rt, unsigned shard, const vz_actor_spec *spec, const void *arg,
		    vz_ref *out);

/* Stop an actor. From its home shard (or before start): immediate; its
 * queued messages are dead-lettered and on_stop runs (from inside its own
 * receive, the stop happens when receive returns); a stale ref gives
 * VZ_ESTALE. From any other thread: a stop request is sent and 0 is
 * returned. The request takes the actor's urgent lane: once it has reached
 * the actor's shard it overtakes the user mail queued there (which is then
 * dead-lettered), so a flooded actor stops after at most the message it is
 * handling. Whether the ref is still live is only known on its shard, where
 * a request for a stopped actor is ignored (it is not a dead letter). Also VZ_EINVAL (NULL rt),
 * VZ_ENOSHARD, VZ_ESTOPPED (runtime stopping), VZ_ENOMEM. */
/* The actor's watchers and links learn why it ended (lifecycle.h): a stop
 * of itself from its own receive is VZ_EXIT_NORMAL, any other vz_stop()
 * VZ_EXIT_STOPPED. */
VZ_API int vz_stop(vz_runtime *rt, vz_ref actor);

/* The calling actor's own reference and runtime. */
VZ_API vz_ref vz_self(const vz_actor *self);
VZ_API vz_runtime *vz_actor_runtime(const vz_actor *self);
VZ_API unsigned vz_actor_shard(const vz_actor *self);

VZ_END_DECLS

#endif
