/* SPDX-License-Identifier: MIT */
/*
 * Deterministic simulation. A simulated runtime is made from the same
 * vz_config as a real one, but every shard runs on the calling thread,
 * time is virtual, and the order in which shards take their turns, how
 * much each turn does, when cross-shard batches, pool jobs and I/O
 * completions arrive, and how many waiting foreign posts a turn takes are
 * drawn from a PRNG seeded by one 64-bit number.
 * The same seed and the same test actions give the same sequence of
 * handled messages, bit for bit: a race found once replays from its seed.
 *
 * What the simulation keeps from the real runtime's guarantees: FIFO per
 * (sender, receiver) pair, exactly-once delivery or a dead letter, timers
 * never early. Everything the real runtime leaves free (which shard runs
 * first, how turns interleave, when a ring is drained, the order of pool
 * completions, the moment a foreign post is taken) is chosen by the seed.
 * Virtual time advances only when nothing is runnable, jumping to the next
 * timer deadline. Nothing starts a thread: no shard thread, no pool
 * worker; pool jobs run inline on the driving thread at a drawn step.
 *
 * Sockets (io.h) are the simulation's own in-memory network: the same
 * calls, events and receive buffers, but virtual descriptors and ports,
 * nothing in the kernel. Each segment arrives after a drawn delay
 * (net_delay_ns), in order per connection, in a drawn order across
 * connections; windows are drawn per connection (writes may be short);
 * the VZ_SIM_FAULT_NET_* faults add resets, short transfers, refused
 * connects and lost datagrams. Files are not simulated: their operations
 * end with VZ_ENOSYS, and vz_io_adopt() refuses real descriptors
 * (docs/simulation.md, "Sockets").
 *
 * Thread rule for every function here on a vz_sim: the thread that called
 * vz_sim_create(). Those that drive or free it (vz_sim_step(),
 * vz_sim_run(), vz_sim_destroy()) return VZ_EWRONGTHREAD from any other;
 * the queries read what that thread writes and are not checked. That
 * thread may also call the runtime's API on vz_sim_runtime(): vz_spawn()
 * (before start, or between steps), vz_post() (a foreign post, taken by
 * the target shard at a drawn turn), vz_stop(), vz_runtime_start(),
 * vz_runtime_stop().
 * Design and invariants: runtime/sim/NOTES.md.
 */
#ifndef VELOZ_SIM_H
#define VELOZ_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "actor.h"
#include "config.h"
#include "export.h"
#include "runtime.h"

VZ_BEGIN_DECLS

typedef struct vz_sim vz_sim;

/* Faults the seed may inject (vz_sim_options.faults). Each fault decision
 * is drawn with probability fault_permille / 1000 from the seed's PRNG. */
#define VZ_SIM_FAULT_DELAY 0x1u /* hold a ring's messages until the run is otherwise quiet */
#define VZ_SIM_FAULT_POOL  0x2u /* a pool job completes with VZ_EIO without running */
/* Per step: one live user actor, drawn, ends as if it had called vz_fail()
 * with VZ_SIM_CRASH_CODE and the text "simulated crash" (exit reason
 * VZ_EXIT_FAILED: its watchers get DOWN, its links an abnormal exit, its
 * supervisor restarts it). It happens between two turns of its shard,
 * never inside a receive; its on_stop runs. Spared: the runtime's own
 * actors (port proxies) and those crash_ok refuses. */
#define VZ_SIM_FAULT_CRASH 0x4u
/* The in-memory network (sockets of a simulated runtime, see above):
 * NET_RESET, per step: one connection is reset (both ends: ECONNRESET).
 * NET_SHORT, per stream write or read: it moves fewer bytes.
 * NET_ERROR, per connect: refused (ECONNREFUSED); per stream write or
 * read: it fails with ECONNRESET and the peer gets a reset.
 * NET_DROP, per datagram: lost on the way. NET: all four. */
#define VZ_SIM_FAULT_NET_RESET 0x8u
#define VZ_SIM_FAULT_NET_SHORT 0x10u
#define VZ_SIM_FAULT_NET_ERROR 0x20u
#define VZ_SIM_FAULT_NET_DROP  0x40u
#define VZ_SIM_FAULT_NET                                                                           \
	(VZ_SIM_FAULT_NET_RESET | VZ_SIM_FAULT_NET_SHORT | VZ_SIM_FAULT_NET_ERROR |                \
	 VZ_SIM_FAULT_NET_DROP)

/* The code and text of a simulated crash (vz_exit.code, vz_exit.text). */
#define VZ_SIM_CRASH_CODE (-9999)
#define VZ_SIM_CRASH_TEXT "simulated crash"

typedef struct vz_sim_options {
	uint64_t seed;
	uint32_t faults;	 /* VZ_SIM_FAULT_* bits; 0 = none */
	uint32_t fault_permille; /* chance of each fault decision (per step, per job) */
	/* Before a shard's turn, each ring into it that holds something is
	 * held back for 1..max_hold_steps more steps with this chance: the
	 * drawn delay of a cross-shard batch (a ring is FIFO, so per-pair
	 * order is kept). With the same chance the turn takes only a drawn
	 * prefix of the posts waiting in the shard's inbox. */
	uint32_t hold_permille;
	uint32_t max_hold_steps;
	uint64_t start_ns; /* virtual time at create (never 0) */
	/* Appended fields; zero is the old behaviour. */
	/* VZ_SIM_FAULT_CRASH: at most this many crashes in the run (0 = no
	 * limit), and which actors may crash: crash_ok(crash_ctx, spec) is
	 * asked for each live user actor when a crash is drawn (on the
	 * simulation's thread, between steps; NULL = every one may). */
	uint32_t max_crashes;
	bool (*crash_ok)(void *crash_ctx, const vz_actor_spec *spec);
	void *crash_ctx;
	/* The in-memory network: each segment (bytes, a connection request
	 * or its answer, an end of stream, a reset, a datagram) arrives after
	 * a delay drawn in 0..net_delay_ns of virtual time, never before one
	 * sent earlier towards the same socket (0: no delay; the order of
	 * arrivals across sockets is still drawn). */
	uint64_t net_delay_ns;
} vz_sim_options;

/* Defaults for `seed`: no faults (fault_permille 20 when turned on),
 * hold_permille 200, max_hold_steps 16, start at 1 s, no cap on crashes
 * and every user actor crashable, network delays up to 100 us.
 * VZ_EINVAL for NULL. */
VZ_API int vz_sim_options_default(vz_sim_options *opt, uint64_t seed);

/* Create a simulated runtime from cfg (copied) and opt (NULL: defaults
 * with seed 0). Every shard becomes embedded and is driven by the calling
 * thread; cfg's CPU choices, reserved CPUs and backend are ignored, since
 * nothing runs on another CPU. cfg->nshards must be explicit (a count per
 * detected CPU would make a run depend on the machine): VZ_ECONFIG when it
 * is 0. Otherwise the errors of vz_runtime_create() (VZ_EINVAL, VZ_ECONFIG,
 * VZ_ENOMEM, VZ_EIO). The runtime is created, not started: spawn initial
 * actors, then vz_runtime_start(vz_sim_runtime(sim)). */
VZ_API int vz_sim_create(const vz_config *cfg, const vz_sim_options *opt, vz_sim **out);

/* The simulated runtime; NULL for NULL. */
VZ_API vz_runtime *vz_sim_runtime(const vz_sim *sim);

/* One step: one shard's turn, one pool job, one I/O completion, or one
 * arrival on the network, chosen by the PRNG among those that can run;
 * when nothing can, held rings are released first, then virtual time
 * jumps to the next timer deadline or network arrival.
 * Returns 1 after a step, 0 when the run is idle (nothing runnable, no
 * timer armed), VZ_EINVAL (NULL), VZ_EWRONGTHREAD, VZ_ESTATE (runtime not
 * running: not started, or stopped). */
VZ_API int vz_sim_step(vz_sim *sim);

/* Step until idle (returns 0), or until max_steps steps have run with work
 * left (VZ_EAGAIN: a livelock or a periodic timer; 0 = no limit), or until
 * virtual time would pass until_ns (VZ_ETIMEDOUT, time left at the last
 * deadline not after until_ns; 0 = no limit). Errors as vz_sim_step(). */
VZ_API int vz_sim_run(vz_sim *sim, uint64_t max_steps, uint64_t until_ns);

/* Virtual time in ns (what vz_now_ns() and timers see). 0 for NULL. */
VZ_API uint64_t vz_sim_now_ns(const vz_sim *sim);

/* Order signature: a 64-bit hash chained over every message handled so far
 * (shard, receiver, sender, type, payload), in order. Same seed and same
 * actions give the same signature. 0 for NULL. */
VZ_API uint64_t vz_sim_signature(const vz_sim *sim);

typedef struct vz_sim_stats {
	uint64_t seed;
	uint64_t signature;
	uint64_t handled;      /* receive calls (user, timer and pool messages) */
	uint64_t steps;	       /* vz_sim_step() steps that ran something */
	uint64_t turns;	       /* shard turns run */
	uint64_t holds;	       /* rings held back for a drawn number of steps */
	uint64_t delays;       /* VZ_SIM_FAULT_DELAY injected */
	uint64_t pool_jobs;    /* jobs completed (run, failed, timed out or cancelled) */
	uint64_t pool_failed;  /* VZ_SIM_FAULT_POOL injected */
	uint64_t io_completed; /* simulated I/O completions */
	uint64_t time_jumps;   /* times virtual time advanced */
	uint64_t now_ns;       /* virtual time */
	uint64_t crashes;      /* VZ_SIM_FAULT_CRASH injected (actors ended) */
	/* The in-memory network, appended. */
	uint64_t net_socks_open; /* virtual sockets open now (0 after a clean stop) */
	uint64_t net_conns;	 /* connections established */
	uint64_t net_refused;	 /* connects refused (no listener, or VZ_SIM_FAULT_NET_ERROR) */
	uint64_t net_bytes;	 /* stream bytes arrived */
	uint64_t net_dgrams;	 /* datagrams arrived */
	uint64_t net_drops;   /* datagrams lost (VZ_SIM_FAULT_NET_DROP, nobody bound, queue full) */
	uint64_t net_resets;  /* resets injected (VZ_SIM_FAULT_NET_RESET, _NET_ERROR) */
	uint64_t net_short;   /* short writes and reads injected (VZ_SIM_FAULT_NET_SHORT) */
	uint64_t io_bufs_out; /* receive buffers held by actors or their events now
				 (0 after a clean stop) */
} vz_sim_stats;

/* Copy the counters. 0, VZ_EINVAL for NULL. */
VZ_API int vz_sim_stats_get(const vz_sim *sim, vz_sim_stats *out);

/* Stop the runtime if it is running (vz_runtime_stop(), which drives every
 * shard to the end), destroy it and free the simulation. NULL is a no-op
 * returning 0; VZ_EWRONGTHREAD from another thread (nothing freed). */
VZ_API int vz_sim_destroy(vz_sim *sim);

/* ---- running many seeds ------------------------------------------------ */

/* A simulation test: make its actors, start the runtime, post, run and
 * check; 0 when it passed, anything else when it failed (it may print
 * why). It may stop the runtime itself; it must not destroy the sim. */
typedef int (*vz_sim_test_fn)(vz_sim *sim, void *ctx);

typedef struct vz_sim_test {
	const char *name; /* for output and the replay command; no spaces */
	vz_sim_test_fn run;
	void *ctx;
	const vz_config *cfg;	   /* the runtime's config (nshards explicit) */
	const vz_sim_options *opt; /* options; its seed is replaced; NULL = defaults */
} vz_sim_test;

typedef struct vz_sim_result {
	uint64_t seed;
	uint64_t signature; /* after the test's last step (before the final stop) */
	uint64_t handled;
	uint64_t steps;
	int status; /* the test's return; a negative VZ_E* if the sim could not be made */
} vz_sim_result;

/* Run test t once with `seed`: create, t->run, read the signature,
 * destroy. Returns out->status (0 = passed). VZ_EINVAL for NULL t, run,
 * cfg or out. Any thread (it becomes the simulation's thread). */
VZ_API int vz_sim_run_seed(const vz_sim_test *t, uint64_t seed, vz_sim_result *out);

/*
 * A test program's main: runs every test of tests[0..ntests-1] over a
 * range of seeds and stops at the first failure. Each run prints one line
 * to stdout, "sim NAME seed S: signature 0x..., N handled, M steps: ok",
 * and a failure also prints the command that replays it,
 * "replay: ARGV0 --test NAME --seed S". Arguments:
 *   --test NAME           only that test
 *   --seed S              only seed S (a replay)
 *   --seeds N --first S   N seeds from S (default 1000 from 1; the
 *                         environment variable VZ_SIM_SEEDS sets N)
 *   --check-determinism   run every seed twice; fail when the two runs'
 *                         signatures (or handled counts) differ
 * Returns 0 when everything passed, 1 on a failure, 2 on bad arguments
 * (usage printed to stderr): a program ends with `return vz_sim_main(...)`.
 */
VZ_API int vz_sim_main(int argc, char **argv, const vz_sim_test *tests, unsigned ntests);

VZ_END_DECLS

#endif
