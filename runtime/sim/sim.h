/* SPDX-License-Identifier: MIT */
/*
 * The simulation's internal picture (public face: include/veloz/sim.h;
 * design and invariants: NOTES.md beside this file). One struct vz_sim per
 * simulated runtime, touched only by its driving thread, so nothing here
 * is atomic: the runtime's shared fields (doorbells) are still accessed
 * through their atomic types, from that one thread.
 */
#ifndef VZ_SIM_SIM_H
#define VZ_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

/* hold_left value of a ring held by VZ_SIM_FAULT_DELAY: until the run is
 * otherwise quiet, not for a number of steps. */
#define VZ__SIM_HOLD_TO_END UINT32_MAX

struct vz__sim_job;
struct vz__sim_io;
struct vz__sim_net;
struct vz__io_op;
struct vz__io_head;

struct vz_sim {
	vz_runtime *rt;
	const void *thread; /* vz__thread_token() of the driving thread */
	vz_sim_options opt;
	uint64_t now_ns; /* virtual time */
	uint64_t rng[4]; /* xoshiro256** state, seeded by splitmix64(seed) */
	vz_sim_stats st; /* signature, counters */
	unsigned nshards;
	/* Rings held back: held[dst * 4 + w] bit s = ring (64 w + s) -> dst
	 * is masked from dst's turns; hold_left[dst * nshards + src] steps
	 * remain (VZ__SIM_HOLD_TO_END: until quiet). */
	uint64_t *held;
	uint32_t *hold_left;
	unsigned nholds;
	/* Time jumps the rings held by VZ_SIM_FAULT_DELAY still sit out: a
	 * delayed message may arrive after timeouts have fired, as a late
	 * reply does (drawn when the delay is injected). */
	unsigned delay_jumps;
	unsigned idle_streak; /* consecutive turns that did no work */
	/* Pool jobs waiting for their drawn step (sim_pool.c). */
	struct vz__sim_job **jobs;
	uint32_t njobs, jobs_cap;
	uint64_t next_job;
	uint64_t next_monitor; /* vz__sim_monitor_id()'s counter */
	bool pool_stopped;
	/* A job's completion as it is built (a worker's buffer): the header
	 * and the largest result. calloc() gives 16-byte alignment. */
	alignas(16) unsigned char job_buf[VZ_MSG_MAX_PAYLOAD];
	/* The shards' backends (sim_io.c), index = shard. */
	struct vz__sim_io **io;
	/* The in-memory network (sim_net.c): sockets of every shard. */
	struct vz__sim_net *net;
};

/* Uniform draw in [0, n) from the simulation's PRNG (n > 0). */
uint64_t vz__sim_below(vz_sim *sim, uint64_t n);
/* True with probability permille / 1000. */
bool vz__sim_chance(vz_sim *sim, uint32_t permille);

/* sim_pool.c: run one drawn job (njobs > 0); free every job. */
void vz__sim_pool_step(vz_sim *sim);
void vz__sim_pool_fini(vz_sim *sim);

/* sim_io.c: the backend of one simulated shard, and the driver's side. */
int vz__sim_io_create(vz_sim *sim, unsigned shard, struct vz__io **out);
/* Operations submitted that can complete now, over every shard. */
uint64_t vz__sim_io_ready(const vz_sim *sim);
/* Complete one drawn ready operation (or give one result of a multishot
 * one) and run its callback on its shard (as that shard's thread). */
void vz__sim_io_step(vz_sim *sim);
/* Receive buffers handed out by the backends and not yet put back. */
uint64_t vz__sim_io_bufs_out(const vz_sim *sim);

/* sim_net.c: the in-memory network (its face to runtime/aio: sim_net.h). */
int vz__sim_net_create(vz_sim *sim);
void vz__sim_net_free(vz_sim *sim);
/* Segments due (arrival time reached), over every socket; apply one
 * drawn among them; the earliest arrival time (UINT64_MAX: none). */
uint64_t vz__sim_net_due(const vz_sim *sim);
void vz__sim_net_step(vz_sim *sim);
uint64_t vz__sim_net_next(const vz_sim *sim);
/* VZ_SIM_FAULT_NET_RESET, drawn once per step. */
void vz__sim_net_fault(vz_sim *sim);
/* The backend's side: a CONNECT's request at submit (0, or -errno: the
 * op's result at once); can op complete now; its result (and cflags,
 * bid) when it does. */
int vz__sim_net_connect(vz_sim *sim, struct vz__io_op *op);
bool vz__sim_net_ready(const vz_sim *sim, const struct vz__io_op *op);
int vz__sim_net_complete(vz_sim *sim, struct vz__io_head *h, struct vz__io_op *op);

#endif
