/* SPDX-License-Identifier: MIT */
/*
 * Runtime configuration. A vz_config is a plain struct the caller owns:
 * fill it with vz_config_default(), change what you need, and pass it to
 * vz_runtime_create(). vz_config_load() fills the same struct from an INI
 * file (and the VZ_* environment overrides), so embedders without a file and
 * users with one end up in the same place.
 */
#ifndef VELOZ_CONFIG_H
#define VELOZ_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"

VZ_BEGIN_DECLS

#define VZ_MAX_SHARDS	  256  /* shards in one runtime */
#define VZ_MAX_CPUS	  1024 /* CPU numbers 0..VZ_MAX_CPUS-1 */
#define VZ_MAX_NODES	  64   /* NUMA nodes */
#define VZ_MAX_CLASSES	  8    /* scheduling classes of one runtime */
#define VZ_CLASS_NAME_MAX 32   /* bytes of a class name, NUL included */

/* A set of CPU numbers. */
typedef struct vz_cpuset {
	uint64_t bits[VZ_MAX_CPUS / 64];
} vz_cpuset;

/* Written "auto", "io_uring" or "epoll" in a file (runtime.backend) and in
 * VZ_BACKEND, in any case ("EPOLL" works); every reader (vz_config_load(),
 * vz_config_apply_env(), vz_runtime_create()'s own look at VZ_BACKEND,
 * veloz-topo) uses the same parser. */
typedef enum vz_backend_kind {
	VZ_BACKEND_AUTO = 0, /* io_uring when it works here, else epoll */
	VZ_BACKEND_IO_URING,
	VZ_BACKEND_EPOLL,
} vz_backend_kind;

typedef enum vz_idle_policy {
	VZ_IDLE_SPIN_THEN_SLEEP = 0, /* spin idle_spin_us, then block */
	VZ_IDLE_SPIN,		     /* never block: lowest latency, 100% CPU */
	VZ_IDLE_SLEEP,		     /* block as soon as there is nothing to do */
} vz_idle_policy;

/* What a submission to a full worker-pool queue does. */
typedef enum vz_pool_overload {
	VZ_POOL_REJECT = 0, /* vz_pool_submit() returns VZ_EFULL */
	VZ_POOL_SPILL,	    /* try the other nodes' pools before refusing */
} vz_pool_overload;

/* Per-shard settings. ring_entries 0 means "use the runtime default";
 * cpu -1 means "place automatically" (vz_config_default() sets it), and 0 is
 * CPU 0, not a default. */
/* Embedded shards run on whichever of the embedder's threads polls them;
 * the runtime never sets that thread's affinity. Their `cpu` therefore
 * pins nothing: -1 reserves no CPU (auto placement and pool workers use it
 * for others), and a CPU named there is validated and kept free of other
 * shards (and of workers unless pool.share_shard_cpus) for the embedder to
 * run its thread on. vz_runtime_shard_cpu() reports -1 for them. */
typedef struct vz_shard_config {
	int cpu;	       /* CPU to pin to; -1 = chosen by the runtime (none if embedded) */
	uint32_t ring_entries; /* capacity of rings into this shard; 0 = default */
	bool embedded;	       /* driven by the embedder via vz_shard_poll() */
} vz_shard_config;

/* The machine as the runtime should see it. Detected when nnodes == 0;
 * a declared topology (tests, containers that hide NUMA) otherwise. */
typedef struct vz_topology_decl {
	uint32_t nnodes;		   /* 0 = detect */
	vz_cpuset node_cpus[VZ_MAX_NODES]; /* CPUs of each declared node */
} vz_topology_decl;

typedef struct vz_pool_config {
	uint32_t
	    workers_per_node;	 /* 0 = one per CPU of the node not used by a shard (at least 1) */
	uint32_t queue_capacity; /* per pool, power of two; 0 = default (4096) */
	vz_pool_overload overload;
	bool share_shard_cpus; /* may workers run on CPUs that host shards */
	uint64_t nodes;	       /* bit n set: node n gets a pool; 0 = every node with CPUs */
} vz_pool_config;
#define VZ_CONFIG_HAS_POOL_NODES 1 /* vz_pool_config.nodes exists */

/* Called for every accepted message that could not be delivered (target
 * stopped or stale, runtime stopping). Runs on the thread that found out,
 * usually the target's shard; must not block. `reason` is a VZ_E* code. */
typedef void (*vz_dead_letter_fn)(void *ctx, uint64_t to_ref, uint32_t type, const void *data,
				  size_t len, int reason);

/* Where and why vz_config_load(), vz_config_validate() or
 * vz_runtime_create() refused a configuration. Every field is written on a
 * refusal (unused parts are "" or 0). The layout is fixed: callers keep it
 * uninitialised on the stack, so it cannot carry a caller-set size field;
 * more detail, when needed, comes as a new struct behind a new pointer
 * rather than by growing this one. */
typedef struct vz_config_error {
	char file[256];
	int line;     /* 0 when the problem is not on one line */
	char key[64]; /* "section.key", or "" */
	char message[512];
} vz_config_error;

/* Severity of a runtime message, numbered as syslog's (LOG_ERR ..
 * LOG_DEBUG) so a hook can forward it unchanged. */
typedef enum vz_log_level {
	VZ_LOG_ERROR = 3,
	VZ_LOG_WARNING = 4, /* e.g. two runtimes of this process share CPUs */
	VZ_LOG_NOTICE = 5,  /* e.g. io_uring unavailable, using epoll */
	VZ_LOG_INFO = 6,
	VZ_LOG_DEBUG = 7,
} vz_log_level;

/* Receives every message the runtime writes: one line of text without a
 * trailing newline, valid during the call only. Called on the thread that
 * found out (today the thread calling vz_runtime_create(); later messages
 * may come from shard threads), possibly from several threads at once: it
 * must be thread-safe, must not block for long, and must not call into the
 * runtime that logs. */
typedef void (*vz_log_fn)(vz_log_level level, const char *text, void *user);

/* The stall detector's hook (vz_config.stall_hook); the report is
 * described in stats.h. Called on the runtime's watchdog thread, never on
 * a shard: it may block briefly and may call vz_stats_*(), but not stop
 * or destroy the runtime. */
struct vz_stall_report;
typedef void (*vz_stall_fn)(void *ctx, const struct vz_stall_report *report);

/* A scheduling class (runtime/DESIGN.md "Scheduling classes"). Every shard
 * has the same classes; an actor joins one at spawn
 * (vz_actor_spec.sched_class, an index into vz_config.classes). Busy
 * classes share a shard's time in proportion to their shares: the shard
 * runs the class with the least virtual runtime (runtime / shares), and a
 * class that was idle rejoins at the least virtual runtime of the busy
 * ones, so idling banks no credit. A latency-sensitive class is looked at
 * after every message of any other class: when it has a ready actor and
 * is not ahead in virtual runtime, it runs next, so its wait is about one
 * message's handling time plus, if it is busy, its own quota. */
typedef struct vz_class_config {
	char name[VZ_CLASS_NAME_MAX]; /* for stats and the demo; may be "" */
	uint32_t shares;	      /* weight, 1..10000 */
	/* Time one class may run in one loop turn, in µs (0 = unbounded,
	 * at most 1000000), measured with the shard's clock between actor
	 * runs and between messages of a run: a class that has used it gives
	 * the shard back, between two messages, and a run that overruns it
	 * is counted in quota_violations. */
	uint32_t quota_us;
	bool latency; /* latency-sensitive: checked between messages of others */
} vz_class_config;

#define VZ_OUTBOX_LIMIT_DEFAULT	  65536u /* vz_config.outbox_limit when 0 */
#define VZ_TURN_BUDGET_US_DEFAULT 50u	 /* vz_config.turn_budget_us of vz_config_default() */

/* Joining a cluster of processes over NATS (cluster.h; INI section
 * [cluster]). All zero (vz_config_default()) means "no cluster"; every
 * numeric field has 0 = its default. Strings are NUL-terminated. */
#define VZ_CLUSTER_PATH_MAX 256 /* bytes of a URL list or a file path, NUL included */
#define VZ_CLUSTER_NAME_MAX 64	/* bytes of a node name or namespace, NUL included */
typedef struct vz_cluster_config {
	/* NATS server URL(s), comma-separated ("nats://10.0.0.5:4222"); a
	 * tls:// URL also turns TLS on. "" = no cluster configured. */
	char url[VZ_CLUSTER_PATH_MAX];
	/* This node's name, unique among the processes of the namespace
	 * (replies find their way back by it); "" = "<hostname>-<pid>".
	 * Letters, digits, '-' and '_'. */
	char node[VZ_CLUSTER_NAME_MAX];
	/* Namespace: separates clusters sharing one NATS server; "" =
	 * "veloz". Same characters as node. */
	char ns[VZ_CLUSTER_NAME_MAX];
	/* NATS credentials file (user JWT + NKey seed, `nsc` writes it); ""
	 * = none. Passwords and tokens go in the URL (nats://user:pw@host). */
	char credentials[VZ_CLUSTER_PATH_MAX];
	/* TLS, passed to the client as they are: CA bundle to verify the
	 * server, client certificate chain and key (both or neither). */
	bool tls;
	char tls_ca[VZ_CLUSTER_PATH_MAX];
	char tls_cert[VZ_CLUSTER_PATH_MAX];
	char tls_key[VZ_CLUSTER_PATH_MAX];
	bool tls_skip_verify;	      /* testing only: accept any server certificate */
	uint32_t connect_timeout_ms;  /* 0 = 2000 */
	uint32_t reconnect_wait_ms;   /* between reconnect attempts; 0 = 100 */
	uint32_t max_reconnect;	      /* attempts before giving up; 0 = forever */
	uint32_t reconnect_buf_bytes; /* kept while disconnected; 0 = 8 MiB */
	/* Outgoing buffer of each shard towards the transport, bytes, a
	 * power of two (at least 4096; below 64 KiB, 64 KiB is used, room
	 * for the largest message twice); 0 = 1 MiB. Full: VZ_EFULL. */
	uint32_t out_ring_bytes;
	/* The transport thread polls this long for work before it sleeps;
	 * 0 = not at all. Spinning pays only with a CPU to spare: on the
	 * 2-CPU machine of bench/README.md, 50 us doubled the round trip. */
	uint32_t spin_us;
	/* Node liveness for monitors on other nodes' actors (cluster.h):
	 * every node publishes a heartbeat this often; 0 = 250. */
	uint32_t heartbeat_ms;
	/* A node not heard from for this long (no heartbeat, no answer) is
	 * taken for dead: monitors on its actors get DOWN. 0 = 4 heartbeats. */
	uint32_t node_timeout_ms;
} vz_cluster_config;

typedef struct vz_config {
	uint32_t nshards;		       /* 0 = one per allowed CPU */
	vz_shard_config shards[VZ_MAX_SHARDS]; /* first nshards entries used */
	vz_cpuset cpus;			       /* CPUs for auto placement; empty = affinity mask */
	bool allow_shared_cpus;		       /* two shards on one CPU allowed */
	vz_backend_kind backend;
	vz_idle_policy idle_policy;
	uint32_t idle_spin_us;	  /* spin time before blocking, and before a timer's deadline */
	uint32_t timer_tick_us;	  /* timer wheel tick, 10..1000000 */
	uint32_t ring_entries;	  /* default cross-shard ring capacity, power of two */
	uint32_t batch;		  /* messages one actor handles per turn */
	uint32_t actors_per_turn; /* ready actors run before polling again */
	uint32_t send_batch;	  /* cross-shard messages published per store */
	/* Messages one shard may hold back for one other shard while the ring
	 * between them is full; past it vz_send() to that shard returns
	 * VZ_EFULL. 0 = default (VZ_OUTBOX_LIMIT_DEFAULT); at most 2^24. */
	uint32_t outbox_limit;
	vz_pool_config pool;
	vz_topology_decl topology;
	vz_dead_letter_fn dead_letter;
	void *dead_letter_ctx;
	/* Fields below were appended after the first version of this header;
	 * new fields go at the end. vz_config has no size/version field yet
	 * (planned before 1.0): build against the header of the library you
	 * link. */
	/* Optional: when non-NULL, vz_runtime_create() describes here why it
	 * failed (file/line/key/reason as vz_config_validate() does, and the
	 * reason for the other errors too), and clears it on success. Read
	 * only during that call; the runtime keeps no copy of the pointer. */
	vz_config_error *create_error;
	/* Runtime messages go to log(level, text, log_user); NULL = one line
	 * "veloz: text" on stderr. */
	vz_log_fn log;
	void *log_user;
	/* CPUs kept free of runtime threads (no shard, no pool worker) for the
	 * embedder's own threads. Either a count: the reserve_count highest
	 * placement CPUs (runtime.cpus, or the allowed CPUs); or exactly the
	 * CPUs in reserve_cpus (each must be allowed). Not both. At least one
	 * placement CPU must remain for shards; a shard pinned to a reserved
	 * CPU is refused. vz_runtime_reserved_cpus() tells which CPUs they are. */
	uint32_t reserve_count;
	vz_cpuset reserve_cpus;
	/* Time budget of one loop turn for running actors, in µs (INI
	 * runtime.turn_budget_us, 0..1000000): once a turn has run actors
	 * this long, the shard stops starting actor runs and expires timers,
	 * drains its inbox and rings and flushes its outgoing batches before
	 * running the remaining ready actors, in order. The clock is read
	 * every 64 messages, so a turn can overrun by up to 64 messages plus
	 * one actor run (`batch` messages). 0 = bounded by the counts
	 * (batch, actors_per_turn) only; vz_config_default() gives
	 * VZ_TURN_BUDGET_US_DEFAULT. A config filled by hand without
	 * vz_config_default() has 0 here. */
	uint32_t turn_budget_us;
	/* Scheduling classes (INI sections [class.0] .. [class.7], keys name,
	 * shares, quota_us, latency). nclasses 0 or 1: one class, every actor
	 * in it, the shard's run queue a plain FIFO as when classes did not
	 * exist (a lone class's shares and quota are then ignored). With
	 * nclasses >= 2, classes[0 .. nclasses-1] must each have shares >= 1.
	 * vz_config_default() gives 0. */
	uint32_t nclasses;
	vz_class_config classes[VZ_MAX_CLASSES];
	/* Observability (INI section [stats]; README "Observability"). Zero
	 * everywhere gives the defaults: per-actor-type metrics on, one run
	 * in 64 timed, the stall detector on with a 10 ms budget and at most
	 * one report per shard per second, no shared-memory segment. */
	bool stats_types_off;	    /* [stats] types = off: no per-type metrics */
	uint32_t stats_sample_runs; /* [stats] sample_runs: time one actor run in
				       this many, 1..65536; 0 = 64 */
	bool stall_off;		    /* [stats] stall = off: no watchdog thread */
	uint32_t stall_budget_us;   /* [stats] stall_budget_us: a turn longer
				       than this is a stall, 1000..60000000;
				       0 = 10000 */
	uint32_t stall_interval_ms; /* [stats] stall_interval_ms: least time
				       between two reports of one shard,
				       0 = 1000 */
	vz_stall_fn stall_hook;	    /* NULL = a warning through `log` */
	void *stall_hook_ctx;
	/* [stats] shm = on (or VZ_STATS_SHM=1 through vz_config_apply_env()):
	 * publish the stats in a shared-memory segment for
	 * tools/veloz-stats, refreshed every 100 ms by the watchdog thread. */
	bool stats_shm;
	/* Cluster membership (INI section [cluster]); read by
	 * vz_cluster_create() when it is given no config of its own. All
	 * zero = none. */
	vz_cluster_config cluster;
	/* Lanes per shard for posts from threads that are not shards
	 * (producer.h; INI runtime.foreign_lanes, 0..VZ_FOREIGN_LANES_MAX):
	 * at most this many foreign threads or producers hold a lane into one
	 * shard at a time. 0 = VZ_FOREIGN_LANES_DEFAULT; above
	 * VZ_FOREIGN_LANES_MAX vz_config_validate() and vz_runtime_create()
	 * return VZ_ECONFIG naming runtime.foreign_lanes. Each lane in use
	 * costs about 16 KiB. A thread whose first post to a shard finds no
	 * lane free posts to that shard through its inbox (slower, contended)
	 * for the rest of its life, even after lanes come free: give at least
	 * as many lanes as threads that post to one shard are alive at once.
	 * The stats (stats.h, lanes_hwm, lanes_exhausted,
	 * lane_fallback_posts) show whether the bound was hit. */
	uint32_t foreign_lanes;
} vz_config;

#define VZ_FOREIGN_LANES_DEFAULT 64u
#define VZ_FOREIGN_LANES_MAX	 4096u

#define VZ_STATS_SAMPLE_RUNS_DEFAULT 64u
#define VZ_STALL_BUDGET_US_DEFAULT   10000u
#define VZ_STALL_INTERVAL_MS_DEFAULT 1000u

/* Fill cfg with defaults: one shard per CPU in the process affinity mask,
 * backend auto, spin 20 us then sleep, 1 ms tick, 1024-entry rings,
 * batch 64, 256 actors per turn, send_batch 32, outbox_limit 65536; pools: one per node with
 * CPUs, workers on CPUs without shards (sharing shard CPUs when there are
 * none), 4096-job queues, overload reject; no CPU reserved, messages to
 * stderr, no create_error. Never fails on a valid pointer;
 * returns VZ_EINVAL for NULL. Any thread. */
VZ_API int vz_config_default(vz_config *cfg);

/* Load an INI file into cfg (which should already hold defaults), then apply
 * VZ_* environment overrides, then validate. On failure returns VZ_ECONFIG
 * (or VZ_ENOENT if the file cannot be opened) and describes the first
 * problem in *err when err is non-NULL; cfg may be partly filled; VZ_EINVAL
 * for a NULL cfg or path. Never exits the process. Any thread. */
VZ_API int vz_config_load(vz_config *cfg, const char *path, vz_config_error *err);

/* Apply VZ_SHARDS, VZ_CPUS, VZ_BACKEND, VZ_IDLE, VZ_SPIN_US, VZ_TICK_US,
 * VZ_RING_ENTRIES, VZ_RESERVE_CPUS overrides to cfg (values as the INI keys
 * in tools/README.md; enumerated values such as VZ_BACKEND=auto|io_uring|epoll
 * ignore case). Returns VZ_ECONFIG with *err filled for a malformed value,
 * VZ_EINVAL for a NULL cfg. vz_runtime_create() reads none of these except
 * VZ_BACKEND: a program that wants the operator's VZ_* settings calls this
 * (or vz_config_load()) before create, as the README's example does, and
 * only then does veloz-topo's view of the environment match the program.
 * Any thread. */
VZ_API int vz_config_apply_env(vz_config *cfg, vz_config_error *err);

/* Check cfg against the machine (CPUs online and allowed, powers of two,
 * ranges, nodes that exist, reserved CPUs allowed with one left for
 * shards). 0 or VZ_ECONFIG with *err filled; VZ_EINVAL for a NULL cfg.
 * Any thread. */
VZ_API int vz_config_validate(const vz_config *cfg, vz_config_error *err);

/* Write *e as one line the way compilers do, "file:line: key: reason"
 * (parts that are empty are left out) into buf, always NUL-terminated when
 * len > 0. Returns the length the full text needs, as snprintf. Any thread. */
VZ_API int vz_config_error_format(const vz_config_error *e, char *buf, size_t len);

/* cpuset helpers */
static inline void vz_cpuset_zero(vz_cpuset *s)
{
	for (unsigned i = 0; i < VZ_MAX_CPUS / 64; i++)
		s->bits[i] = 0;
}
static inline void vz_cpuset_set(vz_cpuset *s, unsigned cpu)
{
	if (cpu < VZ_MAX_CPUS)
		s->bits[cpu / 64] |= (uint64_t)1 << (cpu % 64);
}
static inline bool vz_cpuset_has(const vz_cpuset *s, unsigned cpu)
{
	return cpu < VZ_MAX_CPUS && (s->bits[cpu / 64] >> (cpu % 64)) & 1;
}
static inline unsigned vz_cpuset_count(const vz_cpuset *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < VZ_MAX_CPUS / 64; i++)
		n += (unsigned)__builtin_popcountll(s->bits[i]);
	return n;
}

VZ_END_DECLS

#endif
