// SPDX-License-Identifier: MIT
/*
 * Detecting the machine: online CPUs, NUMA nodes with their CPUs and memory,
 * SMT siblings, the process affinity mask and the cgroup cpuset, all from
 * sysfs/procfs text files (plus sched_getaffinity and libnuma's
 * numa_available). Every path goes through a root prefix so tests can run
 * detection on a fake tree; the file list and fallbacks are in topo.h.
 *
 * Detection reads a few dozen small files; it runs once per runtime or tool
 * invocation, never on a hot path.
 */
#include "topo/topo.h"
#include "util/cpuset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <veloz/error.h>

#define PATH_LEN 4096

/* Read root+path into buf (NUL-terminated, at most len-1 bytes). Returns
 * the length, or -1 when the file cannot be read. */
static ssize_t read_text(const char *root, const char *path, char *buf, size_t len)
{
	char full[PATH_LEN];
	size_t got = 0;
	int fd;

	if (snprintf(full, sizeof full, "%s%s", root, path) >= (int)sizeof full)
		return -1;
	fd = open(full, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (got + 1 < len) {
		ssize_t n = read(fd, buf + got, len - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

/* A cpulist file (lenient: trailing newline, empty list, huge CPU numbers).
 * 0, or -1 when missing or malformed. */
static int read_cpulist(const char *root, const char *path, vz_cpuset *out)
{
	char buf[8192];

	vz_cpuset_zero(out);
	if (read_text(root, path, buf, sizeof buf) < 0)
		return -1;
	return vz__cpuset_parse(buf, VZ__CPUSET_ALLOW_EMPTY | VZ__CPUSET_IGNORE_HIGH, out, NULL,
				0) < 0
		   ? -1
		   : 0;
}

/* A decimal number file (core_id, physical_package_id). 0 or -1. */
static int read_long(const char *root, const char *path, long *out)
{
	char buf[64], *end;
	long v;

	if (read_text(root, path, buf, sizeof buf) <= 0)
		return -1;
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno || end == buf)
		return -1;
	*out = v;
	return 0;
}

/* "MemTotal:  4286676 kB" anywhere in a meminfo file (node files prefix
 * it with "Node N "). Bytes, or 0 when absent. */
static uint64_t read_memtotal(const char *root, const char *path)
{
	char buf[8192];
	const char *p;
	unsigned long long kb;

	if (read_text(root, path, buf, sizeof buf) < 0)
		return 0;
	p = strstr(buf, "MemTotal:");
	if (!p || sscanf(p + 9, "%llu", &kb) != 1)
		return 0;
	return (uint64_t)kb * 1024u;
}

/* Fill nnodes, node_cpus (online CPUs only), node_mem_bytes, cpu_node and
 * numa_available from the node directories; needs t->online. */
static void detect_nodes(const char *root, struct vz__topology *t)
{
	char dirpath[PATH_LEN], path[128];
	DIR *d;
	struct dirent *e;
	bool any = false;

	snprintf(dirpath, sizeof dirpath, "%s/sys/devices/system/node", root);
	d = opendir(dirpath);
	while (d && (e = readdir(d)) != NULL) {
		char *end;
		unsigned long n;

		if (strncmp(e->d_name, "node", 4) != 0 || !isdigit((unsigned char)e->d_name[4]))
			continue;
		n = strtoul(e->d_name + 4, &end, 10);
		if (*end || n >= VZ_MAX_NODES)
			continue;
		snprintf(path, sizeof path, "/sys/devices/system/node/node%lu/cpulist", n);
		if (read_cpulist(root, path, &t->node_cpus[n]) < 0)
			continue;
		/* a node lists possible CPUs; keep the online ones */
		vz__cpuset_and(&t->node_cpus[n], &t->online);
		snprintf(path, sizeof path, "/sys/devices/system/node/node%lu/meminfo", n);
		t->node_mem_bytes[n] = read_memtotal(root, path);
		if (n + 1 > t->nnodes)
			t->nnodes = (uint32_t)n + 1;
		any = true;
	}
	if (d)
		closedir(d);
	if (!any) {
		/* no NUMA in this kernel: one node with everything */
		t->nnodes = 1;
		t->node_cpus[0] = t->online;
		t->node_mem_bytes[0] = read_memtotal(root, "/proc/meminfo");
	}
	for (unsigned n = 0; n < t->nnodes; n++)
		for (unsigned c = 0; c < VZ_MAX_CPUS; c++)
			if (vz_cpuset_has(&t->node_cpus[n], c) && t->cpu_node[c] < 0)
				t->cpu_node[c] = (int16_t)n;
	t->numa_available = any;
}

/* Core of each online CPU: the lowest CPU among its thread siblings, which
 * is unique machine-wide (core_id alone repeats across packages). */
static void detect_smt(const char *root, struct vz__topology *t)
{
	char path[128];
	bool fallback = false;

	for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
		vz_cpuset sib;

		if (!vz_cpuset_has(&t->online, c))
			continue;
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu%u/topology/thread_siblings_list", c);
		if (read_cpulist(root, path, &sib) == 0 && vz_cpuset_has(&sib, c)) {
			t->cpu_core[c] = (int16_t)vz__cpuset_first(&sib);
			continue;
		}
		fallback = true;
	}
	if (!fallback)
		return;
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
		long p = 0, k;

		if (!vz_cpuset_has(&t->online, c) || t->cpu_core[c] >= 0)
			continue;
		snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u/topology/core_id", c);
		if (read_long(root, path, &k) < 0)
			continue;
		snprintf(path, sizeof path,
			 "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", c);
		read_long(root, path, &p);
		/* first CPU with the same (package, core) names the core */
		t->cpu_core[c] = (int16_t)c;
		for (unsigned o = 0; o < c; o++) {
			long op = 0, ok;
			char q[128];

			if (!vz_cpuset_has(&t->online, o))
				continue;
			snprintf(q, sizeof q, "/sys/devices/system/cpu/cpu%u/topology/core_id", o);
			if (read_long(root, q, &ok) < 0 || ok != k)
				continue;
			snprintf(q, sizeof q,
				 "/sys/devices/system/cpu/cpu%u/topology/physical_package_id", o);
			read_long(root, q, &op);
			if (op == p) {
				t->cpu_core[c] = (int16_t)o;
				break;
			}
		}
	}
}

/* Try <root><mount><path>/<file>, then the same in each parent cgroup up
 * to the mount point. 0 with *out and t->cgroup_source set, or -1. */
static int cgroup_lookup(const char *root, const char *mount, const char *cgpath,
			 const char *const *files, struct vz__topology *t, vz_cpuset *out)
{
	char dir[PATH_LEN], path[PATH_LEN];
	size_t len;

	if (snprintf(dir, sizeof dir, "%s%s", mount, cgpath) >= (int)sizeof dir)
		return -1;
	len = strlen(dir);
	while (len > 0 && dir[len - 1] == '/')
		dir[--len] = '\0';
	for (;;) {
		for (const char *const *f = files; *f; f++) {
			size_t n;

			if (snprintf(path, sizeof path, "%s/%s", dir, *f) >= (int)sizeof path)
				return -1;
			if (read_cpulist(root, path, out) == 0 && vz_cpuset_count(out) > 0) {
				/* for reports only: a cut-off path is still useful */
				n = strnlen(path, sizeof t->cgroup_source - 1);
				memcpy(t->cgroup_source, path, n);
				t->cgroup_source[n] = '\0';
				return 0;
			}
		}
		/* up one level, but not above the mount point */
		if (strlen(dir) <= strlen(mount))
			return -1;
		char *slash = strrchr(dir, '/');
		if (!slash || slash < dir + strlen(mount))
			return -1;
		*slash = '\0';
	}
}

/* Fill t->cgroup (online when no cpuset limit is found) and
 * t->cgroup_source from /proc/self/cgroup and the cgroup file systems. */
static void detect_cgroup(const char *root, struct vz__topology *t)
{
	static const char *const v2_files[] = {"cpuset.cpus.effective", NULL};
	static const char *const v1_files[] = {"cpuset.effective_cpus", "cpuset.cpus", NULL};
	static const char *const v2_mounts[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified", NULL};
	char buf[8192], v1path[2048] = "", v2path[2048] = "";
	bool have_v1 = false, have_v2 = false;
	char *line, *save = NULL;
	vz_cpuset set;

	t->cgroup = t->online;
	t->cgroup_source[0] = '\0';
	if (read_text(root, "/proc/self/cgroup", buf, sizeof buf) < 0)
		return;
	/* lines are "hierarchy-id:controller,list:path" */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char *ctl, *tok, *s2 = NULL;
		char *del;

		if (!c2)
			continue;
		*c1 = *c2 = '\0';
		ctl = c1 + 1;
		if ((del = strstr(c2 + 1, " (deleted)")) != NULL)
			*del = '\0';
		if (!strcmp(line, "0") && !*ctl) {
			snprintf(v2path, sizeof v2path, "%s", c2 + 1);
			have_v2 = true;
			continue;
		}
		for (tok = strtok_r(ctl, ",", &s2); tok; tok = strtok_r(NULL, ",", &s2)) {
			if (!strcmp(tok, "cpuset")) {
				snprintf(v1path, sizeof v1path, "%s", c2 + 1);
				have_v1 = true;
			}
		}
	}
	if (have_v2) {
		for (const char *const *m = v2_mounts; *m; m++) {
			if (cgroup_lookup(root, *m, v2path, v2_files, t, &set) == 0) {
				t->cgroup = set;
				return;
			}
		}
	}
	if (have_v1 && cgroup_lookup(root, "/sys/fs/cgroup/cpuset", v1path, v1_files, t, &set) == 0)
		t->cgroup = set;
}

/* The calling thread's affinity mask. 0 or -1. */
static int read_affinity(vz_cpuset *out)
{
	/* room for more CPUs than we track: the kernel refuses a mask smaller
	 * than its own nr_cpu_ids */
	size_t ncpus = 8 * VZ_MAX_CPUS;
	cpu_set_t *set = CPU_ALLOC(ncpus);
	size_t size = CPU_ALLOC_SIZE(ncpus);

	vz_cpuset_zero(out);
	if (!set)
		return -1;
	/* The process's mask, i.e. its main thread's (what taskset and the
	 * launcher set), not the calling thread's: an engine thread that
	 * pinned itself before creating the runtime must not shrink the
	 * runtime's view of the machine. */
	if (sched_getaffinity(getpid(), size, set) < 0) {
		CPU_FREE(set);
		return -1;
	}
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++)
		if (CPU_ISSET_S(c, size, set))
			vz_cpuset_set(out, c);
	CPU_FREE(set);
	return 0;
}

int vz__topo_detect_at(const char *root, const vz_cpuset *affinity, struct vz__topology *t)
{
	bool real = !root || !root[0] || !strcmp(root, "/");
	bool have_aff = true;

	if (!t)
		return VZ_EINVAL;
	if (real)
		root = "";
	memset(t, 0, sizeof *t);
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
		t->cpu_node[c] = -1;
		t->cpu_core[c] = -1;
	}
	if (affinity)
		t->affinity = *affinity;
	else if (read_affinity(&t->affinity) < 0)
		have_aff = false;
	if (read_cpulist(root, "/sys/devices/system/cpu/online", &t->online) < 0 ||
	    !vz_cpuset_count(&t->online)) {
		/* a sandbox without /sys: the CPUs we may run on are online */
		if (!real || !have_aff || !vz_cpuset_count(&t->affinity))
			return VZ_EIO;
		t->online = t->affinity;
	}
	if (!have_aff)
		t->affinity = t->online;
	detect_nodes(root, t);
	if (real)
		t->numa_available = numa_available() >= 0;
	detect_smt(root, t);
	detect_cgroup(root, t);
	t->allowed = t->online;
	vz__cpuset_and(&t->allowed, &t->affinity);
	vz__cpuset_and(&t->allowed, &t->cgroup);
	return 0;
}

int vz__topo_detect(struct vz__topology *t)
{
	return vz__topo_detect_at(NULL, NULL, t);
}
