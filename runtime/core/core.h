/* SPDX-License-Identifier: MIT */
/*
 * The runtime core's internal picture: the runtime, its shards, actors and
 * messages, and the functions the core's files share. Read this first: it
 * names the header of each job, and a file that includes it sees them all.
 * Each header states the invariants of what it holds, once; the shared
 * fields and their pairing comments are in shard.h and runtime.h.
 *
 * The data, from the bottom up:
 *   ref.h           a reference's bit layout; making and splitting one
 *   msg.h           the message block, its flags and runtime types, owner-
 *                   only lists, size classes, the pools' layout
 *   mailbox.h       an actor's mailbox of cells and its segment cache
 *   actor.h         struct vz_actor, the actor table's calls (actor.c)
 *   sched.h         run queues and scheduling classes (picked in deliver.c)
 *   handoff.h       the reserve/commit and forward record (handoff.c)
 *   stats.h         a shard's counters and their single-writer add
 *   shard.h         struct vz__shard (which fields are shared, and how),
 *                   the loop's calls (shard.c), the hot reads of a shard's
 *                   own fields: clock, driver thread, post gate, actor table
 *   runtime.h       struct vz_runtime and the lifecycle's calls (runtime.c)
 * The paths, each header beside the file that defines it:
 *   msg_pool.h      taking and giving back blocks (msg_pool.c)
 *   deliver.h       mailbox pushes, the run queue, dead letters (deliver.c)
 *   send.h          sends and posts with a sender or flags (send.c)
 *   xshard/xshard.h outboxes, rings, drains, the inbox drain, wake-ups
 *                   (xshard/; its slot layout and doorbell: xshard/slot.h)
 *   life.h          exit reasons, monitors, links, asks (life.c)
 *   spawn_remote.h  spawns on another shard (spawn_remote.c)
 *   port.h          the runtime's own actors (port.c)
 *   stop_async.h    the asynchronous stop's thread (stop_async.c)
 *   registry.h      runtime messages, the live runtimes (registry.c)
 *   lanes.h         foreign posters' lanes (lanes.c; not included here)
 *   hooks.h         what the core calls in the parts built on it: actor
 *                   I/O (aio/), the cluster, the simulation
 *
 * Hot-path helpers are inline so one send is one straight path; each sits
 * in the header of the data it touches.
 */
#ifndef VZ_CORE_H
#define VZ_CORE_H

#include "core/ref.h"
#include "core/msg.h"
#include "core/mailbox.h"
#include "core/actor.h"
#include "core/sched.h"
#include "core/handoff.h"
#include "core/stats.h"
#include "core/shard.h"
#include "core/runtime.h"

#include "core/msg_pool.h"
#include "core/deliver.h"
#include "core/send.h"
#include "core/xshard/xshard.h"
#include "core/life.h"
#include "core/spawn_remote.h"
#include "core/port.h"
#include "core/stop_async.h"
#include "core/registry.h"

#include "core/hooks.h"

#endif
