/* SPDX-License-Identifier: MIT */
/*
 * The machine as the runtime sees it: CPUs, NUMA nodes, affinity and cgroup
 * limits. Filled by detection (sysfs, libnuma, sched_getaffinity, the cgroup
 * cpuset) or from a declared topology in vz_config (tests, containers).
 * Also the placement of shards on it (plan.c).
 *
 * Layering: topo sits below the config loader and checks (config_int.h,
 * which include this header) and above util/cpuset.h and config/field.h,
 * the one config header it includes (placement refusals name the config's
 * file, line and key). Nothing in runtime/topo includes config_int.h.
 */
#ifndef VZ_TOPO_H
#define VZ_TOPO_H

#include <stdbool.h>
#include <stdint.h>

#include <veloz/config.h>

struct vz__topology {
	vz_cpuset online;  /* CPUs the kernel has online */
	vz_cpuset allowed; /* affinity mask ∩ cgroup cpuset ∩ online */
	vz_cpuset cgroup;  /* the cgroup cpuset (all online when none) */
	uint32_t nnodes;   /* >= 1 */
	vz_cpuset node_cpus[VZ_MAX_NODES];
	uint64_t node_mem_bytes[VZ_MAX_NODES]; /* 0 when unknown */
	int16_t cpu_node[VZ_MAX_CPUS];	       /* node of each CPU, -1 if none */
	int16_t cpu_core[VZ_MAX_CPUS];	       /* core id; SMT siblings share it; -1 if unknown */
	bool numa_available;		       /* libnuma says the kernel has NUMA */
	bool declared;			       /* came from vz_config.topology */
	/* Added after the first version of this header (reports, tools): */
	vz_cpuset affinity;	 /* the process affinity mask as read */
	char cgroup_source[256]; /* file the cgroup cpuset came from; "" = none */
};

/* Detect the running machine. 0 or VZ_EIO (no online CPU list and no
 * affinity mask to stand in for it). Same as vz__topo_detect_at(NULL, NULL, t). Any thread. */
int vz__topo_detect(struct vz__topology *t);

/* Detection with the file system rooted at `root` ("/" or NULL: the real
 * one): every absolute path read (/sys/devices/system/..., /proc/self/cgroup,
 * /sys/fs/cgroup/...) is prefixed with it, so tests can point it at a fake
 * tree. `affinity` replaces sched_getaffinity() when non-NULL (a fake tree has
 * no process behind it); NULL reads the calling thread's mask. libnuma is
 * asked only for the real root; under a fake root numa_available means "the
 * tree has a node directory". 0 or VZ_EIO. Any thread.
 *
 * Sources, in order of preference:
 *   online      sys/devices/system/cpu/online (real root only: the affinity
 *               mask when that file cannot be read, e.g. no /sys mounted)
 *   nodes       sys/devices/system/node/node<N>/cpulist (N < VZ_MAX_NODES);
 *               no node directory = one node 0 holding every online CPU
 *   memory      node<N>/meminfo MemTotal; proc/meminfo without node dirs
 *   SMT         cpu<N>/topology/thread_siblings_list (core = lowest sibling,
 *               unique machine-wide), else (physical_package_id, core_id)
 *   cgroup      cgroup v2 cpuset.cpus.effective of the path in
 *               proc/self/cgroup under sys/fs/cgroup or sys/fs/cgroup/unified,
 *               else v1 cpuset.effective_cpus / cpuset.cpus under
 *               sys/fs/cgroup/cpuset; a missing file at the process's cgroup
 *               is looked up in its parents. None found: cgroup = online. */
int vz__topo_detect_at(const char *root, const vz_cpuset *affinity, struct vz__topology *t);

/* Build from cfg->topology when cfg->topology.nnodes > 0 (declared: CPUs of
 * the declared nodes count as online and allowed), else detect. */
int vz__topo_for_config(const vz_config *cfg, struct vz__topology *t);

/* Node of a CPU (0 when unknown). */
int vz__topo_cpu_node(const struct vz__topology *t, unsigned cpu);

/* Shard placement for cfg on t: the CPU of each shard (-1 = unpinned is never
 * produced: every shard gets a CPU) and the shard count. Auto placement takes
 * allowed CPUs in order (cfg->cpus when non-empty), skipping CPUs pinned by
 * explicit per-shard entries. Details (decided with the implementation):
 * nshards == 0 means one shard per placement CPU, at most VZ_MAX_SHARDS;
 * every CPU in cfg->cpus and every pinned CPU must be in t->allowed; two
 * shards on one CPU, or more unpinned shards than free placement CPUs, are
 * refused unless cfg->allow_shared_cpus, in which case the extra shards wrap
 * around the placement CPUs from the lowest. CPUs reserved for the embedder
 * (vz__plan_reserved) are not placement CPUs, and a pin to one is refused. Example, 4 CPUs, nshards
 * 3, shards[0].cpu 1: shard 0 -> 1, shard 1 -> 0, shard 2 -> 2. Errors carry line 0 and file "" (a
 * config file's lines are known only to the loader). Returns 0, VZ_EINVAL for NULL arguments, or
 * VZ_ECONFIG with *err filled (err may be NULL). Any thread. */
struct vz_config_error;
int vz__plan_shards(const vz_config *cfg, const struct vz__topology *t,
		    int cpu_of_shard[VZ_MAX_SHARDS], unsigned *nshards,
		    struct vz_config_error *err);

/* Placement's checks, naming in their errors where each value came from
 * (src, config/field.h; NULL: file "", line 0). Defined in plan.c; called
 * by the config checks (validate.c), the runtime's create and veloz-topo. */
struct vz__config_src;

/* Placement with origins (vz__plan_shards() is this with src NULL). */
int vz__plan_shards_src(const vz_config *cfg, const struct vz__topology *t,
			const struct vz__config_src *src, int cpu_of_shard[VZ_MAX_SHARDS],
			unsigned *nshards, vz_config_error *err);

/* The CPUs cfg reserves for the embedder on t (vz_config.reserve_count /
 * reserve_cpus), checked: each listed CPU allowed, count and list not both
 * set, at least one placement CPU left. *out is empty when nothing is
 * reserved. 0 or VZ_ECONFIG naming runtime.reserve_cpus. */
int vz__plan_reserved(const vz_config *cfg, const struct vz__topology *t,
		      const struct vz__config_src *src, vz_cpuset *out, vz_config_error *err);

/* Why CPU `cpu` may not host a shard on t ("CPU 5 is not online (online:
 * 0-3)", "... outside the process affinity mask ...", "... outside the
 * cgroup cpuset ..."): true with the reason in why, or false when it is
 * allowed. */
bool vz__cpu_refused(const struct vz__topology *t, unsigned cpu, char *why, size_t why_len);

#endif
