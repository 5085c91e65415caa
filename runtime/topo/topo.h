/* SPDX-License-Identifier: MIT */
/*
 * The machine as the runtime sees it: CPUs, NUMA nodes, affinity and cgroup
 * limits. Filled by detection (sysfs, libnuma, sched_getaffinity, the cgroup
 * cpuset) or from a declared topology in vz_config (tests, containers).
 */
#ifndef VZ_TOPO_H
#define VZ_TOPO_H

#include <stdbool.h>
#include <stdint.h>

#include <veloz/config.h>

struct vz__topology {
	vz_cpuset online;                 /* CPUs the kernel has online */
	vz_cpuset allowed;                /* affinity mask ∩ cgroup cpuset ∩ online */
	vz_cpuset cgroup;                 /* the cgroup cpuset (all online when none) */
	uint32_t nnodes;                  /* >= 1 */
	vz_cpuset node_cpus[VZ_MAX_NODES];
	uint64_t node_mem_bytes[VZ_MAX_NODES]; /* 0 when unknown */
	int16_t cpu_node[VZ_MAX_CPUS];    /* node of each CPU, -1 if none */
	int16_t cpu_core[VZ_MAX_CPUS];    /* core id; SMT siblings share it; -1 if unknown */
	bool numa_available;              /* libnuma says the kernel has NUMA */
	bool declared;                    /* came from vz_config.topology */
};

/* Detect the running machine. 0 or VZ_EIO. */
int vz__topo_detect(struct vz__topology *t);

/* Build from cfg->topology when cfg->topology.nnodes > 0 (declared: CPUs of
 * the declared nodes count as online and allowed), else detect. */
int vz__topo_for_config(const vz_config *cfg, struct vz__topology *t);

/* Node of a CPU (0 when unknown). */
int vz__topo_cpu_node(const struct vz__topology *t, unsigned cpu);

/* Shard placement for cfg on t: the CPU of each shard (-1 = unpinned is never
 * produced: every shard gets a CPU) and the shard count. Auto placement takes
 * allowed CPUs in order (cfg->cpus when non-empty), skipping CPUs pinned by
 * explicit per-shard entries. Returns 0 or VZ_ECONFIG with *err filled. */
struct vz_config_error;
int vz__plan_shards(const vz_config *cfg, const struct vz__topology *t,
		    int cpu_of_shard[VZ_MAX_SHARDS], unsigned *nshards,
		    struct vz_config_error *err);

#endif
