// SPDX-License-Identifier: MIT
/*
 * Topology detection on fake sysfs/procfs trees built in a temporary
 * directory (two NUMA nodes, SMT pairs, cgroup v2 and v1 cpusets, a kernel
 * without NUMA, a CPU without a siblings file), plus sanity checks of
 * detection on the real machine and placement on a detected topology.
 * VZ_TEST_BACKEND_INDEPENDENT: no runtime, no I/O backend.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_int.h"
#include "topo/topo.h"

static char root[64];

/* mkdir -p for the parent of root+path, then write text. */
static void put(const char *path, const char *text)
{
	char full[512];
	FILE *f;

	snprintf(full, sizeof full, "%s%s", root, path);
	for (char *p = full + strlen(root) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(full, 0755) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", full, strerror(errno));
		*p = '/';
	}
	f = fopen(full, "w");
	if (!f)
		fail_msg("create %s: %s", full, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static void rm_tree(void)
{
	char cmd[128];

	/* root is our own mkdtemp directory */
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	if (system(cmd) != 0)
		print_error("could not remove %s\n", root);
}

static int new_tree(void **state)
{
	(void)state;
	vz_test_watchdog(20);
	snprintf(root, sizeof root, "/tmp/veloz-test-topo-XXXXXX");
	if (!mkdtemp(root))
		return -1;
	return 0;
}

static int drop_tree(void **state)
{
	(void)state;
	rm_tree();
	return 0;
}

static vz_cpuset set_of(const char *list)
{
	vz_cpuset s;

	assert_int_equal(vz__cpuset_parse(list, VZ__CPUSET_ALLOW_EMPTY, &s, NULL, 0), 0);
	return s;
}

static void assert_set(const vz_cpuset *s, const char *want)
{
	char buf[256];

	vz__cpuset_format(s, buf, sizeof buf);
	assert_string_equal(buf, want);
}

/* 8 CPUs, nodes 0 (0-3) and 1 (4-7), SMT pairs (0,1) (2,3) (4,5) (6,7);
 * CPUs 6 and 7 have no siblings list, only core_id/package (the fallback),
 * and their core_id equals CPU 0's in the other package. */
static void two_node_machine(void)
{
	char path[128], text[32];

	put("/sys/devices/system/cpu/online", "0-7\n");
	put("/sys/devices/system/node/node0/cpulist", "0-3\n");
	put("/sys/devices/system/node/node0/meminfo",
	    "Node 0 MemTotal:        1048576 kB\nNode 0 MemFree:  1000 kB\n");
	put("/sys/devices/system/node/node1/cpulist", "4-7\n");
	put("/sys/devices/system/node/node1/meminfo", "Node 1 MemTotal:        2097152 kB\n");
	put("/sys/devices/system/node/possible", "0-1\n"); /* not a node directory */
	for (unsigned c = 0; c < 8; c++) {
		if (c < 6) {
			snprintf(path, sizeof path,
				 "/sys/devices/system/cpu/cpu%u/topology/thread_siblings_list", c);
			snprintf(text, sizeof text, "%u-%u\n", c & ~1u, c | 1u);
			put(path, text);
		}
		snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u/topology/core_id", c);
		snprintf(text, sizeof text, "%u\n", (c % 4) / 2);
		put(path, text);
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", c);
		snprintf(text, sizeof text, "%u\n", c / 4);
		put(path, text);
	}
}

static void test_two_nodes_smt_cgroup_v2(void **state)
{
	struct vz__topology t;
	vz_cpuset aff = set_of("1-7");

	(void)state;
	two_node_machine();
	/* limit in the parent cgroup only: detection must walk up */
	put("/proc/self/cgroup", "0::/app.slice/svc.scope\n");
	put("/sys/fs/cgroup/app.slice/cpuset.cpus.effective", "0-5\n");
	put("/sys/fs/cgroup/cpuset.cpus.effective", "0-7\n");

	assert_int_equal(vz__topo_detect_at(root, &aff, &t), 0);
	assert_false(t.declared);
	assert_true(t.numa_available);
	assert_set(&t.online, "0-7");
	assert_set(&t.affinity, "1-7");
	assert_set(&t.cgroup, "0-5");
	assert_string_equal(t.cgroup_source, "/sys/fs/cgroup/app.slice/cpuset.cpus.effective");
	assert_set(&t.allowed, "1-5");
	assert_int_equal(t.nnodes, 2);
	assert_set(&t.node_cpus[0], "0-3");
	assert_set(&t.node_cpus[1], "4-7");
	assert_int_equal(t.node_mem_bytes[0], 1048576ull * 1024);
	assert_int_equal(t.node_mem_bytes[1], 2097152ull * 1024);
	for (unsigned c = 0; c < 8; c++) {
		assert_int_equal(t.cpu_node[c], c / 4);
		assert_int_equal(vz__topo_cpu_node(&t, c), (int)(c / 4));
		/* siblings share a core id; cores differ machine-wide */
		assert_int_equal(t.cpu_core[c], (int)(c & ~1u));
	}
	assert_int_equal(t.cpu_node[8], -1);
	assert_int_equal(vz__topo_cpu_node(&t, 8), 0);

	/* placement on it: auto takes the allowed CPUs in order */
	{
		vz_config cfg;
		vz_config_error err;
		int cpu[VZ_MAX_SHARDS];
		unsigned n;

		vz_config_default(&cfg);
		assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), 0);
		assert_int_equal(n, 5);
		for (unsigned i = 0; i < n; i++)
			assert_int_equal(cpu[i], (int)i + 1);
		cfg.nshards = 1;
		cfg.shards[0].cpu = 6;
		assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), VZ_ECONFIG);
		assert_string_equal(err.key, "shard.0.cpu");
		assert_non_null(strstr(err.message, "CPU 6 is outside the cgroup cpuset (0-5)"));
		cfg.shards[0].cpu = 0;
		assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), VZ_ECONFIG);
		assert_non_null(strstr(err.message, "CPU 0 is outside the process affinity mask"));
	}
}

static void test_cgroup_v1_hybrid(void **state)
{
	struct vz__topology t;
	vz_cpuset aff = set_of("0-7");

	(void)state;
	two_node_machine();
	/* hybrid: v2 mounted at unified without cpuset, v1 cpuset controller */
	put("/proc/self/cgroup", "5:cpuacct,cpu:/\n3:cpuset:/grp\n0::/user.slice\n");
	put("/sys/fs/cgroup/unified/user.slice/cgroup.procs", "");
	put("/sys/fs/cgroup/cpuset/grp/cpuset.effective_cpus", "2-3\n");
	put("/sys/fs/cgroup/cpuset/grp/cpuset.cpus", "2-4\n");
	put("/sys/fs/cgroup/cpuset/cpuset.effective_cpus", "0-7\n");
	assert_int_equal(vz__topo_detect_at(root, &aff, &t), 0);
	assert_set(&t.cgroup, "2-3");
	assert_string_equal(t.cgroup_source, "/sys/fs/cgroup/cpuset/grp/cpuset.effective_cpus");
	assert_set(&t.allowed, "2-3");

	/* without effective_cpus, cpuset.cpus is used */
	{
		char path[256];

		snprintf(path, sizeof path, "%s/sys/fs/cgroup/cpuset/grp/cpuset.effective_cpus",
			 root);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(vz__topo_detect_at(root, &aff, &t), 0);
	assert_set(&t.cgroup, "2-4");
	assert_set(&t.allowed, "2-4");
}

static void test_no_numa_no_cgroup(void **state)
{
	struct vz__topology t;
	vz_cpuset aff = set_of("0-3");

	(void)state;
	put("/sys/devices/system/cpu/online", "0-3\n");
	put("/proc/meminfo", "MemTotal:       4000000 kB\nMemFree: 1 kB\n");
	put("/proc/self/cgroup", "0::/\n");
	assert_int_equal(vz__topo_detect_at(root, &aff, &t), 0);
	assert_false(t.numa_available);
	assert_int_equal(t.nnodes, 1);
	assert_set(&t.node_cpus[0], "0-3");
	assert_int_equal(t.node_mem_bytes[0], 4000000ull * 1024);
	assert_set(&t.cgroup, "0-3"); /* no limit: all online */
	assert_string_equal(t.cgroup_source, "");
	assert_set(&t.allowed, "0-3");
	for (unsigned c = 0; c < 4; c++)
		assert_int_equal(t.cpu_core[c], -1); /* no topology files */
}

static void test_offline_cpus_and_sparse_nodes(void **state)
{
	struct vz__topology t;
	vz_cpuset aff = set_of("0-15");

	(void)state;
	/* CPU 2 offline; nodes 0 and 2 (node 1 absent); affinity wider than online */
	put("/sys/devices/system/cpu/online", "0-1,3\n");
	put("/sys/devices/system/node/node0/cpulist", "0-2\n");
	put("/sys/devices/system/node/node2/cpulist", "3\n");
	put("/sys/devices/system/node/node3/cpulist", "\n"); /* memory-only node */
	assert_int_equal(vz__topo_detect_at(root, &aff, &t), 0);
	assert_int_equal(t.nnodes, 4);
	assert_set(&t.node_cpus[0], "0-1");
	assert_set(&t.node_cpus[1], "");
	assert_set(&t.node_cpus[2], "3");
	assert_set(&t.node_cpus[3], "");
	assert_set(&t.allowed, "0-1,3");
	assert_int_equal(t.cpu_node[2], -1);
	assert_int_equal(t.cpu_node[3], 2);
}

static void test_missing_online_is_eio(void **state)
{
	struct vz__topology t;

	(void)state;
	assert_int_equal(vz__topo_detect_at(root, NULL, &t), VZ_EIO);
	put("/sys/devices/system/cpu/online", "garbage\n");
	assert_int_equal(vz__topo_detect_at(root, NULL, &t), VZ_EIO);
	assert_int_equal(vz__topo_detect_at(root, NULL, NULL), VZ_EINVAL);
}

/* Plan cfg on t; the reserved set and the shard CPUs as cpulists. */
static int plan_reserve(const vz_config *cfg, const struct vz__topology *t, char *shards,
			char *reserved, vz_config_error *err)
{
	int cpu[VZ_MAX_SHARDS];
	vz_cpuset placed, res;
	unsigned n;
	int rc;

	rc = vz__plan_shards(cfg, t, cpu, &n, err);
	if (rc < 0)
		return rc;
	vz_cpuset_zero(&placed);
	for (unsigned i = 0; i < n; i++) {
		/* no shard on a CPU twice here: sharing is not allowed */
		assert_false(vz_cpuset_has(&placed, (unsigned)cpu[i]));
		vz_cpuset_set(&placed, (unsigned)cpu[i]);
	}
	vz__cpuset_format(&placed, shards, 256);
	assert_int_equal(vz__plan_reserved(cfg, t, NULL, &res, err), 0);
	vz__cpuset_format(&res, reserved, 256);
	return 0;
}

/* CPUs reserved for the embedder on the fake two-node machine (allowed
 * 1-5): auto placement leaves them out, a count takes the highest
 * placement CPUs, a list exactly its CPUs; pins to a reserved CPU, a
 * reservation that leaves no CPU for shards, a reserved CPU the process
 * may not use, and a count together with a list are refused. */
static void test_reserved_cpus_placement(void **state)
{
	struct vz__topology t;
	vz_cpuset aff = set_of("1-7");
	vz_config_error err;
	vz_config cfg;
	char shards[256], res[256];
	int cpu[VZ_MAX_SHARDS];
	unsigned n;

	(void)state;
	two_node_machine();
	put("/proc/self/cgroup", "0::/svc\n");
	put("/sys/fs/cgroup/svc/cpuset.cpus.effective", "0-5\n");
	assert_int_equal(vz__topo_detect_at(root, &aff, &t), 0);
	assert_set(&t.allowed, "1-5");

	/* nothing reserved: every allowed CPU hosts a shard */
	vz_config_default(&cfg);
	assert_int_equal(plan_reserve(&cfg, &t, shards, res, &err), 0);
	assert_string_equal(shards, "1-5");
	assert_string_equal(res, "");

	/* a count: the highest placement CPU(s); shards = auto shrinks */
	cfg.reserve_count = 1;
	assert_int_equal(plan_reserve(&cfg, &t, shards, res, &err), 0);
	assert_string_equal(shards, "1-4");
	assert_string_equal(res, "5");
	cfg.reserve_count = 2;
	assert_int_equal(plan_reserve(&cfg, &t, shards, res, &err), 0);
	assert_string_equal(shards, "1-3");
	assert_string_equal(res, "4-5");
	/* ... of runtime.cpus when that narrows placement */
	cfg.reserve_count = 1;
	cfg.cpus = set_of("1-3");
	assert_int_equal(plan_reserve(&cfg, &t, shards, res, &err), 0);
	assert_string_equal(shards, "1-2");
	assert_string_equal(res, "3");
	vz_cpuset_zero(&cfg.cpus);

	/* a list: exactly those CPUs, wherever they are */
	cfg.reserve_count = 0;
	cfg.reserve_cpus = set_of("1,4");
	assert_int_equal(plan_reserve(&cfg, &t, shards, res, &err), 0);
	assert_string_equal(shards, "2-3,5");
	assert_string_equal(res, "1,4");

	/* explicit shard counts are placed around the reservation */
	cfg.nshards = 2;
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cpu[0], 2);
	assert_int_equal(cpu[1], 3);
	/* more shards than unreserved CPUs: refused, unless sharing, and
	 * then the extra shards wrap around the unreserved CPUs only */
	cfg.nshards = 5;
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "runtime.shards");
	assert_non_null(strstr(err.message, "reserve fewer CPUs"));
	cfg.allow_shared_cpus = true;
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), 0);
	for (unsigned i = 0; i < n; i++)
		assert_true(cpu[i] == 2 || cpu[i] == 3 || cpu[i] == 5);
	cfg.allow_shared_cpus = false;

	/* a shard pinned to a reserved CPU is refused, not moved */
	cfg.nshards = 2;
	cfg.shards[1].cpu = 4;
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "shard.1.cpu");
	assert_non_null(strstr(err.message, "CPU 4 is reserved for the embedder"));
	cfg.shards[1].cpu = 5;
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), 0);
	assert_int_equal(cpu[0], 2);
	assert_int_equal(cpu[1], 5);
	cfg.shards[1].cpu = -1;
	cfg.nshards = 0;

	/* a reserved CPU must be one the process may use */
	cfg.reserve_cpus = set_of("6");
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "runtime.reserve_cpus");
	assert_non_null(strstr(err.message, "CPU 6 is outside the cgroup cpuset"));

	/* at least one CPU must remain for shards */
	cfg.reserve_cpus = set_of("1-5");
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "runtime.reserve_cpus");
	assert_non_null(strstr(err.message, "leaves none of the placement CPUs (1-5)"));
	vz_cpuset_zero(&cfg.reserve_cpus);
	cfg.reserve_count = 5;
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "runtime.reserve_cpus");
	assert_non_null(strstr(err.message, "reserving 5 CPUs leaves none of the 5 placement"));
	cfg.reserve_count = 4;
	assert_int_equal(plan_reserve(&cfg, &t, shards, res, &err), 0);
	assert_string_equal(shards, "1");
	assert_string_equal(res, "2-5");

	/* a count and a list at once: which one was meant? */
	cfg.reserve_count = 1;
	cfg.reserve_cpus = set_of("1");
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "runtime.reserve_cpus");
	assert_non_null(strstr(err.message, "both set"));
}

/* The real machine: whatever it is, the sets must be consistent. */
static void test_real_machine(void **state)
{
	struct vz__topology t;
	vz_cpuset nodes;
	vz_config cfg;
	vz_config_error err;
	int cpu[VZ_MAX_SHARDS];
	unsigned n;

	(void)state;
	assert_int_equal(vz__topo_detect(&t), 0);
	assert_true(vz_cpuset_count(&t.online) >= 1);
	assert_true(vz_cpuset_count(&t.allowed) >= 1); /* we are running somewhere */
	assert_true(vz__cpuset_subset(&t.allowed, &t.online));
	assert_true(vz__cpuset_subset(&t.allowed, &t.affinity));
	assert_true(vz__cpuset_subset(&t.allowed, &t.cgroup));
	assert_true(t.nnodes >= 1 && t.nnodes <= VZ_MAX_NODES);
	vz_cpuset_zero(&nodes);
	for (unsigned i = 0; i < t.nnodes; i++)
		vz__cpuset_or(&nodes, &t.node_cpus[i]);
	assert_true(vz__cpuset_subset(&t.online, &nodes));
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++)
		if (vz_cpuset_has(&t.online, c))
			assert_true(t.cpu_node[c] >= 0);
	/* defaults place one shard on every allowed CPU */
	vz_config_default(&cfg);
	assert_int_equal(vz_config_validate(&cfg, &err), 0);
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), 0);
	assert_int_equal(n, vz_cpuset_count(&t.allowed));
	for (unsigned i = 0; i < n; i++)
		assert_true(vz_cpuset_has(&t.allowed, (unsigned)cpu[i]));
}

/* Embedded shards run on the embedder's thread: without a cpu they get -1
 * and take no placement CPU; with one it is checked and kept free. */
static void test_embedded_placement(void **state)
{
	struct vz__topology t;
	vz_config cfg;
	vz_config_error err;
	int cpu[VZ_MAX_SHARDS];
	unsigned n;

	(void)state;
	vz_config_default(&cfg);
	cfg.topology.nnodes = 1;
	vz_cpuset_zero(&cfg.topology.node_cpus[0]);
	vz_cpuset_set(&cfg.topology.node_cpus[0], 0);
	vz_cpuset_set(&cfg.topology.node_cpus[0], 1);
	assert_int_equal(vz__topo_for_config(&cfg, &t), 0);
	/* three shards on two CPUs, no sharing: fits because shard 1 is
	 * embedded and reserves nothing */
	cfg.nshards = 3;
	cfg.shards[1].embedded = true;
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(cpu[0], 0);
	assert_int_equal(cpu[1], -1);
	assert_int_equal(cpu[2], 1);
	/* an explicit cpu on an embedded shard is kept out of auto placement */
	cfg.nshards = 2;
	cfg.shards[1].cpu = 0;
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), 0);
	assert_int_equal(cpu[0], 1);
	assert_int_equal(cpu[1], 0);
	/* ... and refused like any pin when it is not allowed */
	cfg.shards[1].cpu = 5;
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "shard.1.cpu");
	/* every shard embedded: no CPU needed at all */
	cfg.nshards = 4;
	for (unsigned i = 0; i < 4; i++) {
		cfg.shards[i].cpu = -1;
		cfg.shards[i].embedded = true;
	}
	assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(cpu[i], -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_two_nodes_smt_cgroup_v2, new_tree, drop_tree),
	    cmocka_unit_test_setup_teardown(test_cgroup_v1_hybrid, new_tree, drop_tree),
	    cmocka_unit_test_setup_teardown(test_no_numa_no_cgroup, new_tree, drop_tree),
	    cmocka_unit_test_setup_teardown(test_offline_cpus_and_sparse_nodes, new_tree,
					    drop_tree),
	    cmocka_unit_test_setup_teardown(test_missing_online_is_eio, new_tree, drop_tree),
	    cmocka_unit_test_setup_teardown(test_reserved_cpus_placement, new_tree, drop_tree),
	    cmocka_unit_test(test_real_machine),
	    cmocka_unit_test(test_embedded_placement),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
