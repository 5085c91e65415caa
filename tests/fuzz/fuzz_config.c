// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the configuration front door: INI parsing (inih plus
 * our reader and key handling), validation against a fixed machine, shard
 * placement, and the cpulist syntax. Besides crashes, leaks and undefined
 * behaviour it checks the contracts the rest of the runtime relies on:
 * a refusal is always VZ_ECONFIG with a terminated, non-empty message and a
 * line inside the input; an accepted config always has a placement whose
 * CPUs are allowed and distinct unless sharing is on; a cpulist that parses
 * prints back to the same set.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <veloz/error.h>

#include "config/config_int.h"
#include "topo/topo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_config: contract broken: %s (line %d)\n", #cond,     \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* 8 CPUs in two nodes; affinity 0-6, cgroup 0-5,7: allowed 0-5. */
static struct vz__topology machine;

static void build_machine(void)
{
	memset(&machine, 0, sizeof machine);
	machine.nnodes = 2;
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
		machine.cpu_node[c] = -1;
		machine.cpu_core[c] = -1;
	}
	for (unsigned c = 0; c < 8; c++) {
		vz_cpuset_set(&machine.online, c);
		vz_cpuset_set(&machine.node_cpus[c / 4], c);
		machine.cpu_node[c] = (int16_t)(c / 4);
		machine.cpu_core[c] = (int16_t)(c & ~1u);
		if (c <= 6)
			vz_cpuset_set(&machine.affinity, c);
		if (c <= 5 || c == 7)
			vz_cpuset_set(&machine.cgroup, c);
		if (c <= 5)
			vz_cpuset_set(&machine.allowed, c);
	}
}

static void check_error(const vz_config_error *err, size_t lines)
{
	CHECK(memchr(err->file, '\0', sizeof err->file));
	CHECK(memchr(err->key, '\0', sizeof err->key));
	CHECK(memchr(err->message, '\0', sizeof err->message));
	CHECK(err->message[0] != '\0');
	CHECK(err->line >= 0 && (size_t)err->line <= lines);
	CHECK(err->line == 0 || strcmp(err->file, "fuzz.ini") == 0);
}

static void check_cpulist(const uint8_t *data, size_t size)
{
	char text[512], out[4096], why[128];
	vz_cpuset a, b;

	if (size >= sizeof text)
		size = sizeof text - 1;
	memcpy(text, data, size);
	text[size] = '\0';
	if (vz__cpuset_parse(text, VZ__CPUSET_ALLOW_EMPTY, &a, why, sizeof why) < 0) {
		CHECK(why[0] != '\0');
		return;
	}
	CHECK(vz__cpuset_format(&a, out, sizeof out) < sizeof out);
	CHECK(vz__cpuset_parse(out, VZ__CPUSET_ALLOW_EMPTY, &b, why, sizeof why) == 0);
	CHECK(memcmp(&a, &b, sizeof a) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static vz_config cfg;
	static struct vz__config_src src;
	static struct vz__topology declared;
	const struct vz__topology *t = &machine;
	vz_config_error err;
	int cpu[VZ_MAX_SHARDS];
	unsigned n = 0;
	size_t lines = 1;
	int rc;

	if (!ready) {
		build_machine();
		ready = true;
	}
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';

	check_cpulist(data, size);

	vz_config_default(&cfg);
	memset(&err, 0x5a, sizeof err);
	rc = vz__config_parse(&cfg, &src, (const char *)data, size, "fuzz.ini", &err);
	CHECK(rc == 0 || rc == VZ_ECONFIG);
	if (rc < 0) {
		check_error(&err, lines);
		return 0;
	}
	if (cfg.topology.nnodes) {
		CHECK(vz__topo_for_config(&cfg, &declared) == 0);
		t = &declared;
	}
	rc = vz__config_check(&cfg, t, &src, &err);
	CHECK(rc == 0 || rc == VZ_ECONFIG);
	if (rc < 0) {
		check_error(&err, lines);
		return 0;
	}
	/* accepted: the runtime will plan exactly this, so it must succeed */
	CHECK(vz__plan_shards(&cfg, t, cpu, &n, &err) == 0);
	CHECK(n >= 1 && n <= VZ_MAX_SHARDS);
	for (unsigned i = 0; i < n; i++) {
		/* an embedded shard without a cpu runs on the embedder's
		 * thread and takes none */
		if (cfg.shards[i].embedded && cfg.shards[i].cpu < 0) {
			CHECK(cpu[i] == -1);
			continue;
		}
		CHECK(cpu[i] >= 0 && vz_cpuset_has(&t->allowed, (unsigned)cpu[i]));
		if (cfg.shards[i].cpu >= 0)
			CHECK(cpu[i] == cfg.shards[i].cpu);
		for (unsigned j = 0; j < i && !cfg.allow_shared_cpus; j++)
			CHECK(cpu[i] != cpu[j]);
	}
	/* and the public validator agrees with the file-aware one */
	if (cfg.topology.nnodes)
		CHECK(vz_config_validate(&cfg, &err) == 0);
	return 0;
}
