// SPDX-License-Identifier: MIT
/*
 * tools/veloz-stats end to end: a runtime of this process publishes its
 * stats segment ([stats] shm); `veloz-stats --once --json --segment NAME`
 * run as a separate process reads it, and its JSON is checked field by
 * field against the known workload. The tool refuses a segment of another
 * layout version with a message naming both versions, and the segment is
 * gone after vz_runtime_destroy().
 *
 * No timed assertion: the segment is refreshed every 100 ms, so the test
 * runs the tool until the figures show the whole workload (bounded, 30 s).
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stats/shm_layout.h"

#ifndef VZ_STATS_TOOL
#error "VZ_STATS_TOOL (the path of veloz-stats) comes from tests/CMakeLists.txt"
#endif

enum { MSG_ITEM = VZ_MSG_USER };

#define N_ITEMS 300u

static atomic_uint got;

static void counter_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	if (vz_msg_type(m) == MSG_ITEM)
		atomic_fetch_add_explicit(&got, 1, memory_order_relaxed);
}

static const vz_actor_spec counter_spec = {.name = "tool-counter", .receive = counter_receive};

/* Run the tool with args; its stdout (and stderr) into out. Exit status. */
static int run_tool(const char *args, char *out, size_t len)
{
	char cmd[512];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof cmd, "%s %s 2>&1", VZ_STATS_TOOL, args);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The unsigned number after `"key": ` in the text after `from`. */
static unsigned long long field(const char *from, const char *key)
{
	char pat[80];
	const char *p;

	snprintf(pat, sizeof pat, "\"%s\": ", key);
	p = strstr(from, pat);
	assert_non_null(p);
	return strtoull(p + strlen(pat), NULL, 10);
}

static void tool_reads_running_runtime(void **unused)
{
	static char out[1 << 16];
	char args[128];
	const char *shard1, *type;
	vz_runtime *rt;
	vz_config cfg;
	vz_ref c;
	const char *name;
	char saved[64];
	uint64_t end;
	int rc;

	(void)unused;
	vz_test_config(&cfg, 2);
	cfg.stats_shm = true;
	cfg.stats_sample_runs = 1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	name = vz_stats_shm_name(rt);
	assert_non_null(name);
	snprintf(saved, sizeof saved, "%s", name);
	assert_int_equal(vz_spawn(rt, 1, &counter_spec, NULL, &c), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	for (unsigned i = 0; i < N_ITEMS; i++)
		assert_int_equal(vz_post(rt, c, MSG_ITEM, NULL, 0), 0);
	snprintf(args, sizeof args, "--once --json --segment %s", name);
	end = vz_test_now_ns() + 30000000000ull;
	for (;;) {
		rc = run_tool(args, out, sizeof out);
		assert_int_equal(rc, 0);
		type = strstr(out, "\"name\": \"tool-counter\"");
		if (type && field(type, "handled") == N_ITEMS)
			break;
		assert_true(vz_test_now_ns() < end);
		usleep(50000);
	}
	/* Field by field, from the tool's JSON. */
	assert_int_equal(field(out, "version"), VZ_STATS_VERSION);
	assert_int_equal(field(out, "nshards"), 2);
	assert_non_null(strstr(out, vz_runtime_backend(rt)));
	shard1 = strstr(out, "{\"shard\": 1, \"sent_local\"");
	assert_non_null(shard1);
	assert_int_equal(field(shard1, "received_foreign"), N_ITEMS);
	assert_int_equal(field(shard1, "handled"), N_ITEMS);
	assert_int_equal(field(shard1, "actors_live"), 1);
	assert_int_equal(field(out, "received_foreign"), 0); /* shard 0 comes first */
	assert_true(type > shard1);
	assert_int_equal(field(strstr(out, "\"types\""), "shard"), 1);
	assert_int_equal(field(type, "spawned"), 1);
	assert_int_equal(field(type, "handled"), N_ITEMS);
	/* every run timed: one wait sample per run, one handle sample per
	 * message */
	assert_int_equal(field(strstr(type, "\"wait\""), "count"), field(type, "runs"));
	assert_int_equal(field(strstr(type, "\"handle\""), "count"), N_ITEMS);
	assert_true(field(type, "mailbox_hwm") >= 1);

	/* The table, once: a header and both tables. */
	snprintf(args, sizeof args, "--once --segment %s", name);
	assert_int_equal(run_tool(args, out, sizeof out), 0);
	assert_non_null(strstr(out, "SHARD"));
	assert_non_null(strstr(out, "ACTOR TYPE"));
	assert_non_null(strstr(out, "tool-counter"));

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	/* Removed on destroy. */
	assert_int_equal(shm_open(saved, O_RDONLY, 0), -1);
	snprintf(args, sizeof args, "--once --segment %s", saved);
	assert_int_equal(run_tool(args, out, sizeof out), 1);
}

/* A segment that says it is version 999: refused, with both versions. */
static void tool_refuses_other_version(void **unused)
{
	static char out[4096];
	struct vz__shm_header h;
	char name[64], args[128], want[128];
	int fd;

	(void)unused;
	snprintf(name, sizeof name, VZ__SHM_PREFIX "%ld-9999", (long)getpid());
	shm_unlink(name);
	fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	assert_true(fd >= 0);
	memset(&h, 0, sizeof h);
	memcpy(h.magic, VZ__SHM_MAGIC, sizeof h.magic);
	h.version = 999;
	h.header_size = sizeof h;
	h.size = sizeof h;
	assert_int_equal(write(fd, &h, sizeof h), (ssize_t)sizeof h);
	close(fd);
	snprintf(args, sizeof args, "--once --json --segment %s", name);
	assert_int_equal(run_tool(args, out, sizeof out), 1);
	snprintf(want, sizeof want,
		 "stats segment version 999, but this veloz-stats reads version %u",
		 VZ__SHM_VERSION);
	assert_non_null(strstr(out, want));
	/* Not a veloz segment at all. */
	fd = shm_open(name, O_RDWR, 0);
	assert_true(fd >= 0);
	memcpy(h.magic, "NOTVZ\0\0", 8);
	assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	close(fd);
	assert_int_equal(run_tool(args, out, sizeof out), 1);
	assert_non_null(strstr(out, "not a veloz stats segment"));
	shm_unlink(name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tool_reads_running_runtime),
	    cmocka_unit_test(tool_refuses_other_version),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
