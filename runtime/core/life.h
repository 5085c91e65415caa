/* SPDX-License-Identifier: MIT */
/*
 * Lives of actors (life.c): exit reasons, monitors, links and asks, as the
 * shard loop and the stop path call them when an actor starts, fails or
 * ends, and when a lifecycle message arrives or cannot be delivered.
 */
#ifndef VZ_CORE_LIFE_H
#define VZ_CORE_LIFE_H

#include <stdbool.h>
#include <stdint.h>

struct vz__shard;
struct vz_actor;
struct vz_msg;

/* life.c: end a live actor of sh as vz_fail() does (exit reason FAILED,
 * code, text); from sh's thread, inside the actor's receive or between
 * turns (the simulation's crash fault). */
void vz__actor_fail(struct vz__shard *sh, struct vz_actor *a, int32_t code, const char *text);

/* life.c: monitors, links, asks, exit reasons (runtime/core/life.c) */
struct vz__life;
/* The actor ends (on its shard, after on_stop, no longer live): tell its
 * watchers and links, free a->life. reason is the stop's dead-letter code
 * (VZ_ESTOPPED: the runtime stops). */
void vz__life_end(struct vz__shard *sh, struct vz_actor *a, int reason);
/* init of a failed with rc: as vz__life_end(), with an init-failed exit. */
void vz__life_init_failed(struct vz__shard *sh, struct vz_actor *a, int rc);
/* A self-stop (vz_stop of its own reference): a normal exit. */
void vz__life_stop_self(struct vz_actor *a);
/* Runtime messages of life.c for a live actor (dispatch): true when the
 * message was consumed (released or re-queued), false to run receive. */
bool vz__life_filter(struct vz__shard *sh, struct vz_actor *a, struct vz_msg *m);
/* A runtime message of life.c or spawn_remote.c that cannot be delivered
 * (target gone, shard stopping): answer it (DOWN / EXIT "no such actor",
 * a failed spawn) and release it. */
void vz__life_dead(struct vz__shard *sh, struct vz_msg *m, int reason);

#endif
