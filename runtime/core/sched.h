/* SPDX-License-Identifier: MIT */
/*
 * A shard's run queues and scheduling classes: the state deliver.c picks
 * the next actor from (putting an actor on its queue is vz__make_ready()
 * in deliver.h). Owner-only except the per-class stats.
 */
#ifndef VZ_CORE_SCHED_H
#define VZ_CORE_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <veloz.h>

struct vz_actor;

/* ---- scheduling classes ------------------------------------------------ */

struct vz__runq {
	struct vz_actor *head, *tail;
};

/* Queue-wait histogram buckets: bucket b counts waits in [2^(b-1), 2^b) ns
 * (bucket 0: under 1 ns), the last one everything longer. */
#define VZ__WAIT_BUCKETS VZ_CLASS_WAIT_BUCKETS

/* Per-class state of a shard (deliver.c). Owner-only except the stats,
 * which are load+store counters like struct vz__stat_counters. */
struct vz__class {
	uint64_t vruntime; /* charged ns * VZ__VR_SCALE / shares */
	uint64_t turn_ns;  /* runtime charged in the current turn (quota) */
	uint64_t quota_ns; /* 0 = no per-turn quota */
	uint64_t msg_ns;   /* moving average of a message cost (charge()) */
	uint32_t shares;
	bool latency;
	struct {
		_Atomic uint64_t runtime_ns, messages, runs, quota_violations;
		_Atomic uint64_t wait[VZ__WAIT_BUCKETS];
	} st;
};

struct vz__sched {
	unsigned nclasses; /* 1 = classes off: the FIFO of before */
	uint32_t runnable; /* bit c: class c was runnable at the last pick */
	uint32_t latency;  /* bit c: class c is latency-sensitive */
	uint64_t min_vr;   /* floor a waking class's vruntime is raised to */
	struct vz__class cls[VZ_MAX_CLASSES];
};

#endif
