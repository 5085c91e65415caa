// SPDX-License-Identifier: MIT
/*
 * veloz-topo: what the runtime sees on this machine and what a config would
 * do with it. Prints the detected machine (NUMA nodes with CPUs and memory,
 * SMT siblings, the affinity mask, the cgroup cpuset), the I/O backend that
 * would be chosen and why, the kernel version, and the shard placement a
 * configuration produces, with the scheduling classes every shard will
 * have. The runtime uses the same detection, validation
 * and vz__plan_shards(), so what this prints is what a runtime starts.
 *
 *   veloz-topo [--json] [FILE]      machine + placement (defaults without FILE)
 *   veloz-topo --check [--json] FILE
 *                                   validate only; "file:line: key: reason"
 *
 * Exit status: 0 fine, 1 the configuration is refused, 2 usage or the
 * machine cannot be read.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <liburing.h>

#include <veloz/config.h>
#include <veloz/error.h>

#include "config/config_int.h"
#include "io/io.h"
#include "topo/topo.h"

struct report {
	const char *file; /* NULL: defaults + environment */
	vz_config cfg;
	int cfg_rc;
	vz_config_error err;
	struct vz__topology machine; /* detected */
	struct vz__topology used;    /* what placement ran on (declared or detected) */
	int cpu_of_shard[VZ_MAX_SHARDS];
	unsigned nshards;
	vz_cpuset reserved; /* CPUs kept for the embedder */
	/* I/O */
	int io_rc;
	vz_config_error io_err; /* what vz_runtime_create() would say */
	enum vz__io_kind io_kind;
	char io_reason[256];
	uint32_t io_flags;
	bool io_flags_known;
	struct utsname uts;
};

static const struct {
	uint32_t flag;
	const char *name;
} setup_flags[] = {
    {IORING_SETUP_IOPOLL, "IOPOLL"},
    {IORING_SETUP_SQPOLL, "SQPOLL"},
    {IORING_SETUP_SQ_AFF, "SQ_AFF"},
    {IORING_SETUP_CQSIZE, "CQSIZE"},
    {IORING_SETUP_CLAMP, "CLAMP"},
    {IORING_SETUP_ATTACH_WQ, "ATTACH_WQ"},
    {IORING_SETUP_R_DISABLED, "R_DISABLED"},
    {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
    {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
    {IORING_SETUP_TASKRUN_FLAG, "TASKRUN_FLAG"},
    {IORING_SETUP_SQE128, "SQE128"},
    {IORING_SETUP_CQE32, "CQE32"},
    {IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER"},
    {IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN"},
};

/* The synopsis, to stdout for --help, to stderr on misuse. */
static void usage(FILE *f)
{
	fprintf(f, "usage: veloz-topo [--json] [FILE]\n"
		   "       veloz-topo --check [--json] FILE\n"
		   "Print the detected machine and the shard placement FILE (or the\n"
		   "defaults and VZ_* environment) produces; --check only validates.\n");
}

/* Print an error the way compilers do: "file:line: key: reason" (the same
 * text vz_config_error_format() gives every embedder). */
static void print_error(FILE *f, const vz_config_error *e)
{
	char line[1024];

	vz_config_error_format(e, line, sizeof line);
	fprintf(f, "%s\n", line);
}

/* s as a JSON string literal. */
static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* A vz_config_error as a JSON object. */
static void json_error(FILE *f, const vz_config_error *e)
{
	fputs("{\"file\": ", f);
	json_str(f, e->file);
	fprintf(f, ", \"line\": %d, \"key\": ", e->line);
	json_str(f, e->key);
	fputs(", \"message\": ", f);
	json_str(f, e->message);
	fputc('}', f);
}

/* s in cpulist syntax into buf, or "none"; returns the text. */
static const char *fmt_set(const vz_cpuset *s, char *buf, size_t len)
{
	vz__cpuset_format(s, buf, len);
	return buf[0] ? buf : "none";
}

/* The cores with more than one online thread, as sets. */
static unsigned smt_groups(const struct vz__topology *t, vz_cpuset *groups, int *core_of_group)
{
	unsigned n = 0;

	for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
		if (!vz_cpuset_has(&t->online, c) || t->cpu_core[c] != (int)c)
			continue;
		vz_cpuset_zero(&groups[n]);
		for (unsigned o = c; o < VZ_MAX_CPUS; o++)
			if (vz_cpuset_has(&t->online, o) && t->cpu_core[o] == (int)c)
				vz_cpuset_set(&groups[n], o);
		if (vz_cpuset_count(&groups[n]) > 1)
			core_of_group[n++] = (int)c;
	}
	return n;
}

/* Which backend the config's `backend` (and VZ_BACKEND) selects, why, and
 * with which io_uring setup flags. The same call vz_runtime_create() makes,
 * so a refusal here is the refusal create would give. */
static void probe_io(struct report *r)
{
	struct vz__io *io = NULL;

	r->io_reason[0] = '\0';
	r->io_rc = vz__io_choose(r->cfg.backend, &r->io_kind, r->io_reason, sizeof r->io_reason,
				 NULL, &r->io_err);
	if (r->io_rc < 0)
		return;
	/* the flags the backend really gets: create one instance and ask */
	if (vz__io_create(r->io_kind, NULL, &io) == 0) {
		r->io_flags = vz__io_setup_flags(io);
		r->io_flags_known = true;
		vz__io_destroy(io);
	}
}

/* Names of the io_uring setup flags in `flags`, '|'-separated or as JSON
 * strings. */
static void print_flags(FILE *f, uint32_t flags, bool json)
{
	bool first = true;

	for (size_t i = 0; i < sizeof setup_flags / sizeof setup_flags[0]; i++) {
		if (!(flags & setup_flags[i].flag))
			continue;
		if (json)
			fprintf(f, "%s\"%s\"", first ? "" : ", ", setup_flags[i].name);
		else
			fprintf(f, "%s%s", first ? "" : "|", setup_flags[i].name);
		first = false;
	}
	if (first && !json)
		fputs("none", f);
}

/* The config spelling of a backend kind: the loader's own table. */
static const char *backend_name(vz_backend_kind b)
{
	return vz__backend_name(b);
}

/* The scheduling classes every shard will have (vz_config.classes). With
 * none or one, each shard's run queue is one FIFO and shares, quota and
 * latency are unused, so they are not shown as if they applied. */
static void print_classes(const vz_config *cfg)
{
	uint64_t total = 0;

	if (cfg->nclasses < 2) {
		printf("classes:        %s\n",
		       cfg->nclasses ? "1 ([class.0] alone: one FIFO run queue per shard)"
				     : "none (one FIFO run queue per shard)");
		return;
	}
	for (unsigned c = 0; c < cfg->nclasses; c++)
		total += cfg->classes[c].shares;
	printf("classes:        %u on every shard (busy classes split a shard's time by "
	       "shares)\n",
	       cfg->nclasses);
	for (unsigned c = 0; c < cfg->nclasses; c++) {
		const vz_class_config *k = &cfg->classes[c];

		printf("  class %u%s%s%s: shares %u (%.0f%% when all are busy), quota ", c,
		       k->name[0] ? " \"" : "", k->name, k->name[0] ? "\"" : "", k->shares,
		       total ? 100.0 * k->shares / (double)total : 0.0);
		if (k->quota_us)
			printf("%u us per turn", k->quota_us);
		else
			printf("unbounded");
		printf("%s\n", k->latency ? ", latency-sensitive" : "");
	}
}

/* The human-readable report. */
static void print_text(const struct report *r)
{
	static vz_cpuset groups[VZ_MAX_CPUS];
	static int core_of[VZ_MAX_CPUS];
	const struct vz__topology *t = &r->machine;
	char b[1024];
	unsigned ng;

	printf("kernel:         %s %s %s\n", r->uts.sysname, r->uts.release, r->uts.machine);
	printf("online CPUs:    %s\n", fmt_set(&t->online, b, sizeof b));
	printf("affinity mask:  %s\n", fmt_set(&t->affinity, b, sizeof b));
	printf("cgroup cpuset:  %s", fmt_set(&t->cgroup, b, sizeof b));
	printf(" (%s)\n", t->cgroup_source[0] ? t->cgroup_source : "no cpuset limit found");
	printf("allowed CPUs:   %s\n", fmt_set(&t->allowed, b, sizeof b));
	printf("NUMA:           %s, %u node%s\n",
	       t->numa_available ? "available" : "not available (one node)", t->nnodes,
	       t->nnodes == 1 ? "" : "s");
	for (unsigned n = 0; n < t->nnodes; n++) {
		printf("  node %u: CPUs %s", n, fmt_set(&t->node_cpus[n], b, sizeof b));
		if (t->node_mem_bytes[n])
			printf(", memory %.1f GiB",
			       (double)t->node_mem_bytes[n] / (1024.0 * 1024 * 1024));
		printf("\n");
	}
	ng = smt_groups(t, groups, core_of);
	if (ng == 0) {
		printf("SMT siblings:   none (one thread per core)\n");
	} else {
		printf("SMT siblings:   %u core%s with several threads\n", ng, ng == 1 ? "" : "s");
		for (unsigned i = 0; i < ng; i++)
			printf("  core %d: CPUs %s\n", core_of[i],
			       fmt_set(&groups[i], b, sizeof b));
	}
	if (r->io_rc < 0) {
		printf("I/O backend:    refused (%s), as vz_runtime_create() would: ",
		       vz_errname(r->io_rc));
		print_error(stdout, &r->io_err);
	} else {
		printf("I/O backend:    %s", vz__io_kind_name(r->io_kind));
		if (r->io_kind == VZ__IO_URING)
			printf(" (io_uring available)");
		else
			printf(" (io_uring not used: %s)",
			       r->io_reason[0] ? r->io_reason : "epoll requested");
		printf("\n");
		if (r->io_flags_known && r->io_kind == VZ__IO_URING) {
			printf("  setup flags:  0x%x ", r->io_flags);
			print_flags(stdout, r->io_flags, false);
			printf("\n");
		}
	}
	printf("config:         %s\n", r->file ? r->file : "defaults (+ VZ_* environment)");
	if (r->cfg_rc < 0) {
		printf("placement:      refused: ");
		print_error(stdout, &r->err);
		return;
	}
	if (r->used.declared) {
		printf("declared topology (placement uses it): %u node%s\n", r->used.nnodes,
		       r->used.nnodes == 1 ? "" : "s");
		for (unsigned n = 0; n < r->used.nnodes; n++)
			printf("  node %u: CPUs %s\n", n,
			       fmt_set(&r->used.node_cpus[n], b, sizeof b));
	}
	printf("placement:      %u shard%s, backend = %s, ring_entries = %u, tick = %u us\n",
	       r->nshards, r->nshards == 1 ? "" : "s", backend_name(r->cfg.backend),
	       r->cfg.ring_entries, r->cfg.timer_tick_us);
	if (vz_cpuset_count(&r->reserved))
		printf("  reserved:     CPU%s %s for the embedder (no shard or pool worker runs "
		       "there)\n",
		       vz_cpuset_count(&r->reserved) == 1 ? "" : "s",
		       fmt_set(&r->reserved, b, sizeof b));
	else
		printf("  reserved:     none (runtime.reserve_cpus)\n");
	for (unsigned i = 0; i < r->nshards; i++) {
		int c = r->cpu_of_shard[i];

		if (c < 0) { /* an embedded shard without a cpu */
			printf("  shard %u: driver's thread (embedded, no CPU reserved)\n", i);
			continue;
		}
		printf("  shard %u: CPU %d (node %d)%s%s\n", i, c,
		       vz__topo_cpu_node(&r->used, (unsigned)c),
		       r->cfg.shards[i].cpu >= 0 ? " pinned" : "",
		       r->cfg.shards[i].embedded ? " embedded" : "");
	}
	print_classes(&r->cfg);
}

/* The same report as one JSON document. */

static void print_json(const struct report *r)
{
	static vz_cpuset groups[VZ_MAX_CPUS];
	static int core_of[VZ_MAX_CPUS];
	const struct vz__topology *t = &r->machine;
	char b[4096];
	unsigned ng;

	printf("{\n  \"kernel\": {\"sysname\": ");
	json_str(stdout, r->uts.sysname);
	printf(", \"release\": ");
	json_str(stdout, r->uts.release);
	printf(", \"machine\": ");
	json_str(stdout, r->uts.machine);
	printf("},\n  \"cpus\": {\"online\": ");
	json_str(stdout, (vz__cpuset_format(&t->online, b, sizeof b), b));
	printf(", \"affinity\": ");
	json_str(stdout, (vz__cpuset_format(&t->affinity, b, sizeof b), b));
	printf(", \"cgroup\": ");
	json_str(stdout, (vz__cpuset_format(&t->cgroup, b, sizeof b), b));
	printf(", \"cgroup_source\": ");
	json_str(stdout, t->cgroup_source);
	printf(", \"allowed\": ");
	json_str(stdout, (vz__cpuset_format(&t->allowed, b, sizeof b), b));
	printf("},\n  \"numa_available\": %s,\n  \"nodes\": [",
	       t->numa_available ? "true" : "false");
	for (unsigned n = 0; n < t->nnodes; n++) {
		printf("%s\n    {\"node\": %u, \"cpus\": ", n ? "," : "", n);
		json_str(stdout, (vz__cpuset_format(&t->node_cpus[n], b, sizeof b), b));
		printf(", \"memory_bytes\": %llu}", (unsigned long long)t->node_mem_bytes[n]);
	}
	printf("\n  ],\n  \"smt\": [");
	ng = smt_groups(t, groups, core_of);
	for (unsigned i = 0; i < ng; i++) {
		printf("%s\n    {\"core\": %d, \"cpus\": ", i ? "," : "", core_of[i]);
		json_str(stdout, (vz__cpuset_format(&groups[i], b, sizeof b), b));
		printf("}");
	}
	printf("%s],\n  \"io\": {", ng ? "\n  " : "");
	if (r->io_rc < 0) {
		printf("\"backend\": null, \"error\": ");
		json_str(stdout, vz_errname(r->io_rc));
	} else {
		printf("\"backend\": ");
		json_str(stdout, vz__io_kind_name(r->io_kind));
		printf(", \"io_uring\": %s", r->io_kind == VZ__IO_URING ? "true" : "false");
	}
	printf(", \"reason\": ");
	json_str(stdout, r->io_reason);
	if (r->io_rc < 0) {
		printf(", \"create_error\": ");
		json_error(stdout, &r->io_err);
	}
	if (r->io_flags_known && r->io_rc >= 0) {
		printf(", \"setup_flags\": %u, \"setup_flag_names\": [", r->io_flags);
		print_flags(stdout, r->io_flags, true);
		printf("]");
	}
	printf("},\n  \"config\": {\"file\": ");
	if (r->file)
		json_str(stdout, r->file);
	else
		printf("null");
	printf(", \"ok\": %s, \"error\": ", r->cfg_rc < 0 ? "false" : "true");
	if (r->cfg_rc < 0)
		json_error(stdout, &r->err);
	else
		printf("null");
	printf("},\n  \"placement\": ");
	if (r->cfg_rc < 0) {
		printf("null\n}\n");
		return;
	}
	printf("{\"declared_topology\": %s, \"nshards\": %u, \"reserved_cpus\": ",
	       r->used.declared ? "true" : "false", r->nshards);
	json_str(stdout, (vz__cpuset_format(&r->reserved, b, sizeof b), b));
	printf(", \"shards\": [");
	for (unsigned i = 0; i < r->nshards; i++) {
		int c = r->cpu_of_shard[i];

		/* cpu and node -1: an embedded shard on its driver's thread */
		printf("%s\n    {\"shard\": %u, \"cpu\": %d, \"node\": %d, \"pinned\": %s, "
		       "\"embedded\": %s}",
		       i ? "," : "", i, c, c < 0 ? -1 : vz__topo_cpu_node(&r->used, (unsigned)c),
		       r->cfg.shards[i].cpu >= 0 ? "true" : "false",
		       r->cfg.shards[i].embedded ? "true" : "false");
	}
	/* classes: [] when there are none; with one, fifo stays true */
	printf("\n  ], \"fifo\": %s, \"classes\": [", r->cfg.nclasses < 2 ? "true" : "false");
	for (unsigned c = 0; c < r->cfg.nclasses; c++) {
		const vz_class_config *k = &r->cfg.classes[c];

		printf("%s\n    {\"class\": %u, \"name\": ", c ? "," : "", c);
		json_str(stdout, k->name);
		printf(", \"shares\": %u, \"quota_us\": %u, \"latency\": %s}", k->shares,
		       k->quota_us, k->latency ? "true" : "false");
	}
	printf("%s]}\n}\n", r->cfg.nclasses ? "\n  " : "");
}

/* Load (or default + environment), validate and plan. */
static void evaluate(struct report *r)
{
	vz_config_default(&r->cfg);
	memset(&r->err, 0, sizeof r->err);
	if (r->file)
		r->cfg_rc = vz_config_load(&r->cfg, r->file, &r->err);
	else if ((r->cfg_rc = vz_config_apply_env(&r->cfg, &r->err)) == 0)
		r->cfg_rc = vz_config_validate(&r->cfg, &r->err);
	if (r->cfg_rc < 0)
		return;
	if (vz__topo_for_config(&r->cfg, &r->used) < 0) {
		r->cfg_rc = vz__config_error(&r->err, "", 0, "", "cannot read the topology");
		return;
	}
	r->cfg_rc = vz__plan_shards(&r->cfg, &r->used, r->cpu_of_shard, &r->nshards, &r->err);
	if (r->cfg_rc == 0)
		r->cfg_rc = vz__plan_reserved(&r->cfg, &r->used, NULL, &r->reserved, &r->err);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"check", no_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	static struct report r;
	bool check = false, json = false;
	int o;

	while ((o = getopt_long(argc, argv, "cjh", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			check = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind > 1 || (check && argc - optind != 1)) {
		usage(stderr);
		return 2;
	}
	r.file = optind < argc ? argv[optind] : NULL;

	if (check) {
		evaluate(&r);
		if (json) {
			printf("{\"file\": ");
			json_str(stdout, r.file);
			printf(", \"ok\": %s, \"error\": ", r.cfg_rc < 0 ? "false" : "true");
			if (r.cfg_rc < 0)
				json_error(stdout, &r.err);
			else
				printf("null");
			printf(", \"nshards\": %u, \"nclasses\": %u}\n",
			       r.cfg_rc < 0 ? 0 : r.nshards, r.cfg_rc < 0 ? 0 : r.cfg.nclasses);
		} else if (r.cfg_rc < 0) {
			print_error(stderr, &r.err);
		} else {
			printf("%s: OK (%u shard%s", r.file, r.nshards, r.nshards == 1 ? "" : "s");
			if (r.cfg.nclasses > 1)
				printf(", %u scheduling classes", r.cfg.nclasses);
			printf(")\n");
		}
		return r.cfg_rc < 0 ? 1 : 0;
	}

	if (vz__topo_detect(&r.machine) < 0) {
		fprintf(stderr, "veloz-topo: cannot read the CPU topology from /sys: %s\n",
			vz_strerror(VZ_EIO));
		return 2;
	}
	if (uname(&r.uts) < 0)
		memset(&r.uts, 0, sizeof r.uts);
	evaluate(&r);
	probe_io(&r);
	if (json)
		print_json(&r);
	else
		print_text(&r);
	/* A backend create would refuse (VZ_BACKEND=garbage, io_uring forced
	 * where it does not work) is a refused configuration too. */
	return r.cfg_rc < 0 || r.io_rc < 0 ? 1 : 0;
}
