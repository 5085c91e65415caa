/* SPDX-License-Identifier: MIT */
/*
 * An actor as its shard holds it (struct vz_actor) and the actor table's
 * calls (actor.c): spawn, stop, the table of slots, the bounded-mailbox
 * admission. Everything in the struct is owner-only except the fields whose
 * comment names the threads that share them (bound, inflight).
 */
#ifndef VZ_CORE_ACTOR_H
#define VZ_CORE_ACTOR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <veloz.h>

#include "core/mailbox.h"
#include "core/msg.h"
#include "core/ref.h"
#include "timer/timers.h"

struct vz__shard;
struct vz__life;
struct vz__atype;
struct vz__aio_fd;
struct vz__aio_buf;

/* The actor table: slots in chunks of VZ__CHUNK_ACTORS that never move
 * (actor.c; references are ref.h). */
#define VZ__CHUNK_ACTORS     4096u
#define VZ__MAX_ACTOR_CHUNKS ((1u << VZ__SLOT_BITS) / VZ__CHUNK_ACTORS)

enum vz__actor_flags {
	VZ__ACTOR_LIVE = 1 << 0,      /* spawned and not stopped */
	VZ__ACTOR_READY = 1 << 1,     /* in the run queue */
	VZ__ACTOR_RUNNING = 1 << 2,   /* inside its receive */
	VZ__ACTOR_STOPPING = 1 << 3,  /* stop asked from inside receive */
	VZ__ACTOR_BIG_STATE = 1 << 4, /* state came from malloc, not the pool */
	VZ__ACTOR_ACTIVE = 1 << 5,    /* the run loop holds it: it frees the slot */
	VZ__ACTOR_RETIRED = 1 << 6,   /* generations used up: never reused */
	VZ__ACTOR_NAMED = 1 << 7,     /* has cluster names: stop removes them */
	VZ__ACTOR_SPILL = 1 << 8,     /* a->spill holds messages (no segment memory) */
};

struct vz_actor {
	struct vz__mbox mbox; /* 32: owner-only mailbox of cells (mailbox.h) */
	/* Urgent lane: runtime lifecycle messages (vz__msg_urgent()), handled
	 * before any user mail at the start of the actor's next run. Kept
	 * apart from mbox so user mail keeps its per-pair FIFO order and a
	 * stop request does not wait behind it. Owner-only. */
	struct vz_msg *urg_head, *urg_tail;
	const vz_actor_spec *spec;
	void *state;
	struct vz_actor *next_ready; /* run queue link; free-slot link when dead */
	struct vz__shard *shard;
	struct vz__timer_owner timers;
	uint32_t gen; /* generation of the current (or next, or last) life */
	uint32_t slot;
	uint16_t flags;
	uint16_t state_cls;
	uint32_t sched_cls; /* scheduling class (vz_actor_spec.sched_class) */
	/* sh->now_ns when the actor last joined its class's run queue, for
	 * the class queue-wait histogram (classes on only). */
	uint64_t ready_ns;
	/* (generation << 32) | mailbox_limit of the current life, 0 when
	 * dead: written by the owner (release) at spawn and stop, read by
	 * senders on other threads (acquire) to apply a bounded mailbox. */
	_Atomic uint64_t bound;
	/* I/O (runtime/aio): the descriptors it owns and the receive
	 * buffers it keeps, closed and given back when it stops. Owner-only. */
	struct vz__aio_fd *io_fds;
	struct vz__aio_buf *io_kept;
	/* Messages accepted for this actor and not yet handled or
	 * dead-lettered, counted only for bounded mailboxes: senders on any
	 * thread fetch_add before sending (relaxed: it is a counter, the
	 * message itself is published by the ring or inbox), the owner
	 * fetch_subs after handling. */
	_Atomic uint32_t inflight;
	/* Monitors, links, asks and the exit reason (life.c); NULL until the
	 * actor (or a watcher of it on this shard) first uses one. Owner-only. */
	struct vz__life *life;
	struct vz__atype *otype; /* per-type stats entry (stats/obs.h), or NULL */
	/* Blocks that arrived when no mailbox segment could be had (out of
	 * memory): they, and everything after them, wait here in order
	 * until the cells before them are handled. VZ__ACTOR_SPILL is set
	 * while it is not empty. Owner-only. */
	struct vz__msg_list spill;
};

/* Has a mail waiting (cells, spill or urgent lane)? */
static inline bool vz__actor_has_mail(const struct vz_actor *a)
{
	return !vz__mbox_empty(&a->mbox) || a->urg_head || (a->flags & VZ__ACTOR_SPILL);
}

/* actor.c */
int vz__actor_spawn(struct vz__shard *sh, const vz_actor_spec *spec, const void *arg, vz_ref *out);
void vz__actor_stop_now(struct vz__shard *sh, struct vz_actor *a, int reason);
int vz__actor_table_init(struct vz__shard *sh);
void vz__actor_table_fini(struct vz__shard *sh);
int vz__bounded_admit(struct vz__shard *target, vz_ref to);
void vz__stop_all_actors(struct vz__shard *sh);
void vz__actor_reap(struct vz__shard *sh, struct vz_actor *a);

#endif
