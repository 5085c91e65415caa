// SPDX-License-Identifier: MIT
/*
 * Configuration: defaults, the INI syntax as veloz reads it (comments,
 * blanks, duplicates, cpulists), every refusal with its file, line, key and
 * reason, the VZ_* environment overrides, and the shard placement a config
 * produces. Runs against hand-built topologies, so results do not depend on
 * the machine. VZ_TEST_BACKEND_INDEPENDENT: no runtime, no I/O.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config_int.h"
#include "topo/topo.h"

/* online 0-7 in two nodes (0-3, 4-7); affinity 0-5; cgroup 0-3,6:
 * allowed 0-3. CPU 4/5 are outside the cgroup, 6 outside the affinity
 * mask, 8+ offline. */
static struct vz__topology machine;
/* four CPUs, one node, nothing excluded */
static struct vz__topology four;

static const char *const env_vars[] = {"VZ_SHARDS",	  "VZ_CPUS",	     "VZ_BACKEND",
				       "VZ_IDLE",	  "VZ_SPIN_US",	     "VZ_TICK_US",
				       "VZ_RING_ENTRIES", "VZ_RESERVE_CPUS", "VZ_STATS_SHM"};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
		unsetenv(env_vars[i]);
}

static void build_machine(struct vz__topology *t, unsigned ncpus)
{
	memset(t, 0, sizeof *t);
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
		t->cpu_node[c] = -1;
		t->cpu_core[c] = -1;
	}
	for (unsigned c = 0; c < ncpus; c++) {
		vz_cpuset_set(&t->online, c);
		t->cpu_core[c] = (int16_t)c;
	}
	t->affinity = t->online;
	t->cgroup = t->online;
	t->allowed = t->online;
	t->nnodes = 1;
	t->node_cpus[0] = t->online;
	for (unsigned c = 0; c < ncpus; c++)
		t->cpu_node[c] = 0;
}

static int setup(void **state)
{
	(void)state;
	vz_test_watchdog(20);
	clear_env();
	build_machine(&four, 4);
	build_machine(&machine, 8);
	vz_cpuset_zero(&machine.affinity);
	vz_cpuset_zero(&machine.cgroup);
	vz_cpuset_zero(&machine.allowed);
	vz_cpuset_zero(&machine.node_cpus[0]);
	machine.nnodes = 2;
	for (unsigned c = 0; c < 8; c++) {
		if (c <= 5)
			vz_cpuset_set(&machine.affinity, c);
		if (c <= 3 || c == 6)
			vz_cpuset_set(&machine.cgroup, c);
		if (c <= 3)
			vz_cpuset_set(&machine.allowed, c);
		vz_cpuset_set(&machine.node_cpus[c / 4], c);
		machine.cpu_node[c] = (int16_t)(c / 4);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	clear_env();
	return 0;
}

/* Load `text` as file "t.ini" against topology t (NULL: declared/detected). */
static int load_on(const char *text, const struct vz__topology *t, vz_config *cfg,
		   vz_config_error *err)
{
	vz_config_default(cfg);
	memset(err, 0x5a, sizeof *err); /* a refusal must overwrite every field */
	return vz__config_load_text(cfg, text, strlen(text), "t.ini", t, err);
}

static int load(const char *text, vz_config *cfg, vz_config_error *err)
{
	return load_on(text, &machine, cfg, err);
}

/* The refusal must be VZ_ECONFIG at exactly this place, and the message
 * must contain `what`. */
static void check_refusal(int rc, const vz_config_error *err, const char *file, int line,
			  const char *key, const char *what)
{
	if (rc != VZ_ECONFIG || strcmp(err->file, file) || err->line != line ||
	    strcmp(err->key, key) || !strstr(err->message, what))
		print_error("got rc=%d %s:%d key '%s': %s\nwant %s:%d key '%s': ...%s...\n", rc,
			    err->file, err->line, err->key, err->message, file, line, key, what);
	assert_int_equal(rc, VZ_ECONFIG);
	assert_string_equal(err->file, file);
	assert_int_equal(err->line, line);
	assert_string_equal(err->key, key);
	assert_non_null(strstr(err->message, what));
}

static void expect_refused(const char *text, int line, const char *key, const char *what)
{
	vz_config cfg;
	vz_config_error err;
	int rc = load(text, &cfg, &err);

	check_refusal(rc, &err, "t.ini", line, key, what);
}

static void expect_ok(const char *text, vz_config *cfg)
{
	vz_config_error err;
	int rc = load(text, cfg, &err);

	if (rc != 0)
		print_error("refused: %s:%d: %s: %s\n", err.file, err.line, err.key, err.message);
	assert_int_equal(rc, 0);
}

/* ---- defaults --------------------------------------------------------- */

static void test_defaults(void **state)
{
	vz_config cfg;

	(void)state;
	memset(&cfg, 0xff, sizeof cfg);
	assert_int_equal(vz_config_default(&cfg), 0);
	assert_int_equal(cfg.nshards, 0);
	for (unsigned i = 0; i < VZ_MAX_SHARDS; i++) {
		assert_int_equal(cfg.shards[i].cpu, -1);
		assert_int_equal(cfg.shards[i].ring_entries, 0);
		assert_false(cfg.shards[i].embedded);
	}
	assert_int_equal(vz_cpuset_count(&cfg.cpus), 0);
	assert_false(cfg.allow_shared_cpus);
	assert_int_equal(cfg.backend, VZ_BACKEND_AUTO);
	assert_int_equal(cfg.idle_policy, VZ_IDLE_SPIN_THEN_SLEEP);
	assert_int_equal(cfg.idle_spin_us, 20);
	assert_int_equal(cfg.timer_tick_us, 1000);
	assert_int_equal(cfg.ring_entries, 1024);
	assert_int_equal(cfg.batch, 64);
	assert_int_equal(cfg.actors_per_turn, 256);
	assert_int_equal(cfg.send_batch, 32);
	assert_int_equal(cfg.outbox_limit, VZ_OUTBOX_LIMIT_DEFAULT);
	assert_int_equal(cfg.turn_budget_us, VZ_TURN_BUDGET_US_DEFAULT);
	assert_int_equal(cfg.pool.workers_per_node, 0);
	assert_int_equal(cfg.pool.queue_capacity, 4096);
	assert_int_equal(cfg.pool.overload, VZ_POOL_REJECT);
	assert_true(cfg.pool.share_shard_cpus);
	assert_int_equal(cfg.topology.nnodes, 0);
	assert_null(cfg.dead_letter);
	assert_int_equal(vz_config_default(NULL), VZ_EINVAL);
}

static void test_defaults_validate_on_machine(void **state)
{
	vz_config cfg;
	vz_config_error err;
	int cpu[VZ_MAX_SHARDS];
	unsigned n;

	(void)state;
	vz_config_default(&cfg);
	assert_int_equal(vz__config_check(&cfg, &machine, NULL, &err), 0);
	assert_int_equal(vz__plan_shards(&cfg, &machine, cpu, &n, &err), 0);
	/* auto: one shard per allowed CPU, in order */
	assert_int_equal(n, 4);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(cpu[i], (int)i);
}

/* ---- syntax ----------------------------------------------------------- */

static void test_every_key(void **state)
{
	vz_config cfg;
	const char *text = "[runtime]\n"
			   "shards = 3\n"
			   "cpus = 0-2\n"
			   "backend = epoll\n"
			   "idle = spin\n"
			   "idle_spin_us = 50\n"
			   "timer_tick_us = 250\n"
			   "ring_entries = 256\n"
			   "batch = 16\n"
			   "actors_per_turn = 100\n"
			   "send_batch = 8\n"
			   "outbox_limit = 100\n"
			   "turn_budget_us = 0\n"
			   "allow_shared_cpus = false\n"
			   "[shard.0]\n"
			   "cpu = 3\n"
			   "ring_entries = 64\n"
			   "embedded = true\n"
			   "[shard.2]\n"
			   "cpu = auto\n"
			   "[pool]\n"
			   "workers_per_node = 2\n"
			   "queue_capacity = 512\n"
			   "overload = spill\n"
			   "share_shard_cpus = no\n";

	(void)state;
	expect_ok(text, &cfg);
	assert_int_equal(cfg.nshards, 3);
	assert_int_equal(vz_cpuset_count(&cfg.cpus), 3);
	assert_true(vz_cpuset_has(&cfg.cpus, 2));
	assert_int_equal(cfg.backend, VZ_BACKEND_EPOLL);
	assert_int_equal(cfg.idle_policy, VZ_IDLE_SPIN);
	assert_int_equal(cfg.idle_spin_us, 50);
	assert_int_equal(cfg.timer_tick_us, 250);
	assert_int_equal(cfg.ring_entries, 256);
	assert_int_equal(cfg.batch, 16);
	assert_int_equal(cfg.actors_per_turn, 100);
	assert_int_equal(cfg.send_batch, 8);
	assert_int_equal(cfg.outbox_limit, 100);
	assert_int_equal(cfg.turn_budget_us, 0);
	assert_false(cfg.allow_shared_cpus);
	assert_int_equal(cfg.shards[0].cpu, 3);
	assert_int_equal(cfg.shards[0].ring_entries, 64);
	assert_true(cfg.shards[0].embedded);
	assert_int_equal(cfg.shards[1].cpu, -1);
	assert_int_equal(cfg.shards[2].cpu, -1);
	assert_int_equal(cfg.pool.workers_per_node, 2);
	assert_int_equal(cfg.pool.queue_capacity, 512);
	assert_int_equal(cfg.pool.overload, VZ_POOL_SPILL);
	assert_false(cfg.pool.share_shard_cpus);
}

static void test_comments_and_blanks(void **state)
{
	vz_config cfg;
	/* BOM, CRLF, ';' and '#' comments (also indented), inline ' ;'
	 * comments, blanks around '=', ':' as separator, a repeated section */
	const char *text = "\xEF\xBB\xBF; leading comment\r\n"
			   "# hash comment\r\n"
			   "\r\n"
			   "[runtime]   ; section comment\r\n"
			   "   ; indented comment is still a comment\r\n"
			   "shards=2\r\n"
			   "  \t\r\n"
			   "backend   =   io_uring   ; inline comment\r\n"
			   "idle: sleep\r\n"
			   "[pool]\n"
			   "overload = SPILL\n"
			   "[runtime]\n"
			   "batch = 7\n";

	(void)state;
	expect_ok(text, &cfg);
	assert_int_equal(cfg.nshards, 2);
	assert_int_equal(cfg.backend, VZ_BACKEND_IO_URING);
	assert_int_equal(cfg.idle_policy, VZ_IDLE_SLEEP);
	assert_int_equal(cfg.pool.overload, VZ_POOL_SPILL);
	assert_int_equal(cfg.batch, 7);
}

static void test_empty_file_is_defaults(void **state)
{
	vz_config cfg, def;

	(void)state;
	expect_ok("", &cfg);
	vz_config_default(&def);
	assert_memory_equal(&cfg, &def, sizeof cfg);
	expect_ok("; only a comment\n\n", &cfg);
	assert_memory_equal(&cfg, &def, sizeof cfg);
}

static void test_duplicate_key_is_error(void **state)
{
	(void)state;
	expect_refused("[runtime]\nbatch = 1\nshards = 2\nbatch = 2\n", 4, "runtime.batch",
		       "duplicate key (already set on line 2)");
	/* also across two [runtime] sections */
	expect_refused("[runtime]\nbatch = 1\n[pool]\n[runtime]\nbatch = 2\n", 5, "runtime.batch",
		       "already set on line 2");
	expect_refused("[shard.1]\ncpu = 1\n[shard.1]\ncpu = 2\n", 4, "shard.1.cpu",
		       "already set on line 2");
}

static void test_syntax_errors(void **state)
{
	(void)state;
	expect_refused("[runtime]\nshards 2\n", 2, "", "syntax error");
	expect_refused("[runtime\nshards = 2\n", 1, "", "syntax error");
	expect_refused("shards = 2\n", 1, "shards", "outside any section");
	expect_refused("[runtime]\nshards = 2\n   batch = 3\n", 3, "", "indented line");
	{
		char text[400];

		memset(text, 0, sizeof text);
		strcpy(text, "[runtime]\n; ");
		memset(text + strlen(text), 'x', 250);
		strcat(text, "\nshards = 2\n");
		expect_refused(text, 2, "", "line longer than");
	}
	{
		vz_config cfg;
		vz_config_error err;
		static const char nul[] = "[runtime]\nbatch = 1\0 2\n";

		vz_config_default(&cfg);
		check_refusal(
		    vz__config_load_text(&cfg, nul, sizeof nul - 1, "t.ini", &machine, &err), &err,
		    "t.ini", 2, "", "NUL byte");
	}
}

static void test_cpuset_syntax(void **state)
{
	vz_cpuset s;
	char why[128], buf[64];

	(void)state;
	assert_int_equal(vz__cpuset_parse("0-3,8,10-11", 0, &s, why, sizeof why), 0);
	assert_int_equal(vz_cpuset_count(&s), 7);
	vz__cpuset_format(&s, buf, sizeof buf);
	assert_string_equal(buf, "0-3,8,10-11");

	assert_int_equal(vz__cpuset_parse(" 1 - 2 ,\t5 ", 0, &s, why, sizeof why), 0);
	vz__cpuset_format(&s, buf, sizeof buf);
	assert_string_equal(buf, "1-2,5");

	/* overlapping and unordered parts merge */
	assert_int_equal(vz__cpuset_parse("5,0-2,1-3,5", 0, &s, why, sizeof why), 0);
	vz__cpuset_format(&s, buf, sizeof buf);
	assert_string_equal(buf, "0-3,5");

	assert_int_equal(vz__cpuset_parse("0-1023", 0, &s, why, sizeof why), 0);
	assert_int_equal(vz_cpuset_count(&s), 1024);

	assert_int_equal(vz__cpuset_parse("3-1", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_non_null(strstr(why, "reversed"));
	assert_int_equal(vz__cpuset_parse("1,", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_non_null(strstr(why, "trailing"));
	assert_int_equal(vz__cpuset_parse(",1", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_int_equal(vz__cpuset_parse("1-", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_int_equal(vz__cpuset_parse("1--2", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_int_equal(vz__cpuset_parse("-1", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_int_equal(vz__cpuset_parse("0x3", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_int_equal(vz__cpuset_parse("0-7:2", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_int_equal(vz__cpuset_parse("1 2", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_int_equal(vz__cpuset_parse("1024", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_non_null(strstr(why, "beyond the maximum 1023"));
	assert_int_equal(vz__cpuset_parse("99999999999999999999", 0, &s, why, sizeof why),
			 VZ_EINVAL);
	assert_int_equal(vz__cpuset_parse("", 0, &s, why, sizeof why), VZ_EINVAL);
	assert_int_equal(vz__cpuset_parse(" \n", VZ__CPUSET_ALLOW_EMPTY, &s, why, sizeof why), 0);
	assert_int_equal(vz_cpuset_count(&s), 0);
	/* sysfs style: newline at the end, CPUs we do not track dropped */
	assert_int_equal(
	    vz__cpuset_parse("0-1,2000-2001\n", VZ__CPUSET_IGNORE_HIGH, &s, why, sizeof why), 0);
	assert_int_equal(vz_cpuset_count(&s), 2);

	/* formatting: empty, truncation marked, length like snprintf */
	vz_cpuset_zero(&s);
	assert_int_equal(vz__cpuset_format(&s, buf, sizeof buf), 0);
	assert_string_equal(buf, "");
	for (unsigned c = 0; c < 40; c += 2)
		vz_cpuset_set(&s, c);
	{
		char tiny[12];
		size_t need = vz__cpuset_format(&s, tiny, sizeof tiny);

		assert_true(need >= sizeof tiny);
		assert_true(strlen(tiny) < sizeof tiny);
		assert_non_null(strstr(tiny, "..."));
		need = vz__cpuset_format(&s, buf, sizeof buf);
		assert_int_equal(need, strlen(buf));
		assert_string_equal(buf, "0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30,32,34,36,38");
	}

	/* in a file: bad list names key and reason; "auto" empties */
	expect_refused("[runtime]\ncpus = 0-3,\n", 2, "runtime.cpus", "trailing ','");
	expect_refused("[runtime]\ncpus = 3-1\n", 2, "runtime.cpus", "reversed range");
	{
		vz_config cfg;

		expect_ok("[runtime]\ncpus = auto\n", &cfg);
		assert_int_equal(vz_cpuset_count(&cfg.cpus), 0);
	}
}

/* ---- unknown names ---------------------------------------------------- */

static void test_unknown_section(void **state)
{
	(void)state;
	expect_refused("[runtim]\nshards = 2\n", 1, "runtim",
		       "unknown section [runtim]; did you mean [runtime]?");
	expect_refused("[shards.1]\ncpu = 1\n", 1, "shards.1", "did you mean [shard.1]?");
	expect_refused("[zzz]\n", 1, "zzz", "unknown section [zzz] (known:");
	/* an empty unknown section is still caught, at its own line */
	expect_refused("[runtime]\nshards = 2\n\n[poool]\n", 4, "poool", "did you mean [pool]?");
	expect_refused("[shard.x]\ncpu = 1\n", 1, "shard.x", "bad shard index 'x'");
	expect_refused("[shard.300]\ncpu = 1\n", 1, "shard.300", "out of range 0..255");
}

static void test_unknown_key(void **state)
{
	(void)state;
	expect_refused("[runtime]\nshrads = 2\n", 2, "runtime.shrads",
		       "unknown key 'shrads' in [runtime]; did you mean 'shards'?");
	expect_refused("[runtime]\nTimer_Tick_US = 20\n", 2, "runtime.Timer_Tick_US",
		       "did you mean 'timer_tick_us'?");
	expect_refused("[pool]\nworkers = 2\n", 2, "pool.workers",
		       "unknown key 'workers' in [pool]");
	expect_refused("[shard.0]\ncpus = 1\n", 2, "shard.0.cpus", "did you mean 'cpu'?");
	expect_refused("[topology]\nnode = 1\n", 2, "topology.node", "did you mean 'nodes'?");
	expect_refused("[runtime]\nfrobnicate = 1\n", 2, "runtime.frobnicate",
		       "unknown key 'frobnicate' in [runtime]");
	{
		vz_config cfg;
		vz_config_error err;

		/* no suggestion when nothing is close */
		load("[runtime]\nfrobnicate = 1\n", &cfg, &err);
		assert_null(strstr(err.message, "did you mean"));
	}
}

/* ---- scheduling classes ----------------------------------------------- */

static void test_classes_parse(void **state)
{
	vz_config cfg;

	(void)state;
	expect_ok("[class.0]\nname = bulk\nshares = 100\n\n"
		  "[class.1]\nname = latency\nshares = 200\nquota_us = 500\nlatency = true\n",
		  &cfg);
	assert_int_equal(cfg.nclasses, 2);
	assert_string_equal(cfg.classes[0].name, "bulk");
	assert_int_equal(cfg.classes[0].shares, 100);
	assert_int_equal(cfg.classes[0].quota_us, 0);
	assert_false(cfg.classes[0].latency);
	assert_string_equal(cfg.classes[1].name, "latency");
	assert_int_equal(cfg.classes[1].shares, 200);
	assert_int_equal(cfg.classes[1].quota_us, 500);
	assert_true(cfg.classes[1].latency);
	/* the sections may come in any order, with the limits */
	expect_ok("[class.1]\nshares = 10000\nquota_us = 1000000\n[class.0]\nshares = 1\n", &cfg);
	assert_int_equal(cfg.nclasses, 2);
	assert_int_equal(cfg.classes[1].shares, 10000);
	/* one class: its shares are unused, so none are needed */
	expect_ok("[class.0]\nname = all\n", &cfg);
	assert_int_equal(cfg.nclasses, 1);
	/* no [class.N]: no classes */
	expect_ok("[runtime]\nbatch = 8\n", &cfg);
	assert_int_equal(cfg.nclasses, 0);
	/* an empty section still declares its class */
	expect_ok("[class.0]\n", &cfg);
	assert_int_equal(cfg.nclasses, 1);
}

static void test_classes_refused(void **state)
{
	(void)state;
	/* a gap: blamed on the section that made the count */
	expect_refused("[class.0]\nshares = 1\n[class.2]\nshares = 1\n", 3, "class.2",
		       "classes are numbered from 0 without gaps: [class.1] is missing (there "
		       "are 3)");
	expect_refused("[class.1]\nshares = 1\n", 1, "class.1", "[class.0] is missing");
	/* shares: 0 written is refused where it is written ... */
	expect_refused("[class.0]\nshares = 0\n[class.1]\nshares = 5\n", 2, "class.0.shares",
		       "0 is out of range 1..10000");
	/* ... and left out with two classes, at the class's section */
	expect_refused("[class.0]\nshares = 1\n\n[class.1]\nname = b\n", 4, "class.1.shares",
		       "shares 0 is out of range 1..10000 (every class needs shares)");
	expect_refused("[class.0]\nshares = 10001\n", 2, "class.0.shares",
		       "10001 is out of range 1..10000");
	expect_refused("[class.0]\nshares = -1\n", 2, "class.0.shares", "");
	expect_refused("[class.0]\nshares = 99999999999999999999\n", 2, "class.0.shares",
		       "out of range 1..10000");
	expect_refused("[class.0]\nshares = lots\n", 2, "class.0.shares", "is not a number");
	expect_refused("[class.0]\nquota_us = 1000001\n", 2, "class.0.quota_us",
		       "1000001 is out of range 0..1000000");
	expect_refused("[class.0]\nlatency = maybe\n", 2, "class.0.latency",
		       "'maybe' is not a boolean");
	expect_refused("[class.0]\nname = 0123456789012345678901234567890123\n", 2, "class.0.name",
		       "name longer than 31 characters");
	expect_refused("[class.0]\nshares = 1\nshares = 2\n", 3, "class.0.shares", "");
	/* unknown keys and sections */
	expect_refused("[class.0]\nshare = 1\n", 2, "class.0.share",
		       "unknown key 'share' in [class.0]; did you mean 'shares'?");
	expect_refused("[class.0]\nfrobnicate = 1\n", 2, "class.0.frobnicate",
		       "unknown key 'frobnicate' in [class.0]");
	expect_refused("[runtime]\nbatch = 8\n[classes]\nshares = 1\n", 3, "classes",
		       "unknown section [classes]; did you mean [class.N]?");
	expect_refused("[class]\nshares = 1\n", 1, "class", "did you mean [class.N]?");
	expect_refused("[clas.1]\nshares = 1\n", 1, "clas.1", "did you mean [class.1]?");
	expect_refused("[class.x]\nshares = 1\n", 1, "class.x", "bad class index 'x'");
	expect_refused("[class.8]\nshares = 1\n", 1, "class.8", "out of range 0..7");
	{
		vz_config cfg;
		vz_config_error err;
		char buf[512];

		/* the one-line form the tools print */
		load("[class.0]\nshares = 1\n[class.1]\nquota_us = 2000000\n", &cfg, &err);
		vz_config_error_format(&err, buf, sizeof buf);
		assert_string_equal(buf, "t.ini:4: class.1.quota_us: 2000000 is out of range "
					 "0..1000000");
		load("[class.0]\nshares = 1\n[class.2]\n", &cfg, &err);
		vz_config_error_format(&err, buf, sizeof buf);
		assert_string_equal(buf, "t.ini:3: class.2: classes are numbered from 0 without "
					 "gaps: [class.1] is missing (there are 3)");
	}
}

/* ---- values ----------------------------------------------------------- */

static void test_bad_numbers(void **state)
{
	(void)state;
	expect_refused("[runtime]\nbatch = abc\n", 2, "runtime.batch", "'abc' is not a number");
	expect_refused("[runtime]\nbatch = -1\n", 2, "runtime.batch", "not a number");
	expect_refused("[runtime]\nbatch = 1.5\n", 2, "runtime.batch", "not a number");
	expect_refused("[runtime]\nbatch = 0x10\n", 2, "runtime.batch", "not a number");

	expect_refused("[runtime]\nbatch =\n", 2, "runtime.batch", "'' is not a number");
	expect_refused("[runtime]\nshards = many\n", 2, "runtime.shards",
		       "not a shard count (1..256 or auto)");
	expect_refused("[runtime]\nshards = 0\n", 2, "runtime.shards", "1..256 or auto");
	expect_refused("[shard.0]\ncpu = one\n", 2, "shard.0.cpu", "not a CPU number");
	expect_refused("[runtime]\nbackend = uring\n", 2, "runtime.backend",
		       "unknown backend 'uring' (auto|io_uring|epoll)");
	expect_refused("[runtime]\nidle = nap\n", 2, "runtime.idle",
		       "(spin|sleep|spin_then_sleep)");
	expect_refused("[pool]\noverload = drop\n", 2, "pool.overload", "(reject|spill)");
	expect_refused("[runtime]\nallow_shared_cpus = maybe\n", 2, "runtime.allow_shared_cpus",
		       "not a boolean");
	expect_refused("[shard.1]\nembedded = 2\n", 2, "shard.1.embedded", "not a boolean");
}

/* The one backend parser: every documented spelling, in any case, and the
 * loader and the environment override use it. */
static void test_backend_parser(void **state)
{
	static const struct {
		const char *text;
		vz_backend_kind kind;
	} good[] = {
	    {"auto", VZ_BACKEND_AUTO},	       {"AUTO", VZ_BACKEND_AUTO},
	    {"io_uring", VZ_BACKEND_IO_URING}, {"IO_URING", VZ_BACKEND_IO_URING},
	    {"Io_Uring", VZ_BACKEND_IO_URING}, {"epoll", VZ_BACKEND_EPOLL},
	    {"EPOLL", VZ_BACKEND_EPOLL},       {"ePoll", VZ_BACKEND_EPOLL},
	};
	static const char *const bad[] = {"",	    "uring",  "io-uring", "iouring", " epoll",
					  "epoll ", "kqueue", "autox",	  "auto\n"};
	vz_backend_kind k;
	vz_config cfg;
	vz_config_error err;
	char text[64];

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		k = (vz_backend_kind)99;
		assert_int_equal(vz__backend_parse(good[i].text, &k), 0);
		assert_int_equal(k, good[i].kind);
		/* a file ... */
		snprintf(text, sizeof text, "[runtime]\nbackend = %s\n", good[i].text);
		expect_ok(text, &cfg);
		assert_int_equal(cfg.backend, good[i].kind);
		/* ... and the environment mean the same */
		vz_config_default(&cfg);
		cfg.backend = (vz_backend_kind)99;
		setenv("VZ_BACKEND", good[i].text, 1);
		assert_int_equal(vz_config_apply_env(&cfg, &err), 0);
		assert_int_equal(cfg.backend, good[i].kind);
		clear_env();
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		k = VZ_BACKEND_EPOLL;
		assert_int_equal(vz__backend_parse(bad[i], &k), VZ_EINVAL);
		assert_int_equal(k, VZ_BACKEND_EPOLL); /* untouched */
	}
	assert_int_equal(vz__backend_parse(NULL, &k), VZ_EINVAL);
	assert_string_equal(vz__backend_name(VZ_BACKEND_AUTO), "auto");
	assert_string_equal(vz__backend_name(VZ_BACKEND_IO_URING), "io_uring");
	assert_string_equal(vz__backend_name(VZ_BACKEND_EPOLL), "epoll");
	assert_string_equal(vz__backend_name((vz_backend_kind)42), "?");
	/* every name parses back to its kind */
	for (int b = VZ_BACKEND_AUTO; b <= VZ_BACKEND_EPOLL; b++) {
		assert_int_equal(vz__backend_parse(vz__backend_name((vz_backend_kind)b), &k), 0);
		assert_int_equal(k, b);
	}
}

/* A number too large for 32 bits is out of range like any other, with the
 * range named, not "not a number". */
static void test_too_big_is_out_of_range(void **state)
{
	vz_config cfg;
	vz_config_error err;

	(void)state;
	expect_refused("[runtime]\nring_entries = 4294967296\n", 2, "runtime.ring_entries",
		       "4294967296 is out of range 2..1048576");
	expect_refused("[runtime]\nring_entries = 4294967295\n", 2, "runtime.ring_entries",
		       "4294967295 is out of range 2..1048576");
	expect_refused("[runtime]\nidle_spin_us = 99999999999\n", 2, "runtime.idle_spin_us",
		       "99999999999 is out of range 0..1000000");
	expect_refused("[runtime]\nbatch = 123456789012345678901234567890\n", 2, "runtime.batch",
		       "is out of range 1..65536");
	expect_refused("[runtime]\nshards = 4294967296\n", 2, "runtime.shards",
		       "4294967296 is out of range 1..256 (or auto)");
	expect_refused("[shard.0]\ncpu = 4294967296\n", 2, "shard.0.cpu",
		       "4294967296 is out of range 0..1023");
	expect_refused("[shard.0]\nring_entries = 4294967296\n", 2, "shard.0.ring_entries",
		       "4294967296 is out of range 2..1048576");
	expect_refused("[pool]\nqueue_capacity = 4294967296\n", 2, "pool.queue_capacity",
		       "out of range 2..16777216");
	expect_refused("[topology]\nnodes = 4294967296\n", 2, "topology.nodes",
		       "out of range 0..64");
	/* still a syntax error when it is not a number at all */
	expect_refused("[runtime]\nring_entries = 4294967296x\n", 2, "runtime.ring_entries",
		       "is not a number");
	setenv("VZ_RING_ENTRIES", "4294967296", 1);
	vz_config_default(&cfg);
	check_refusal(vz_config_apply_env(&cfg, &err), &err, "", 0, "runtime.ring_entries",
		      "4294967296 is out of range 2..1048576 (from VZ_RING_ENTRIES)");
	clear_env();
}

/* tools/README.md: "An indented line is an error", also the first key
 * after a section header (which inih alone would take as a key). */
static void test_indented_lines(void **state)
{
	vz_config cfg;

	(void)state;
	expect_refused("[runtime]\n  shards = 2\n", 2, "", "indented line");
	expect_refused("[runtime]\n\tbatch = 3\n", 2, "", "indented line");
	expect_refused("[runtime]\nshards = 2\n[pool]\n overload = spill\n", 4, "",
		       "indented line");
	expect_refused("  [runtime]\nshards = 2\n", 1, "", "indented line");
	expect_refused("[runtime]\nshards = 2\n  [pool]\n", 3, "", "indented line");
	/* indented comments and blank lines stay fine */
	expect_ok("[runtime]\n  ; note\n\t# note\n   \nshards = 2\n", &cfg);
	assert_int_equal(cfg.nshards, 2);
}

/* runtime.reserve_cpus and VZ_RESERVE_CPUS: a count, "cpus LIST" /
 * "cpu N", or none. (Placement with a reservation: test_topo.c.) */
static void test_reserve_cpus_key(void **state)
{
	vz_config cfg;
	vz_config_error err;
	char buf[64];

	(void)state;
	expect_ok("[runtime]\nreserve_cpus = 1\n", &cfg);
	assert_int_equal(cfg.reserve_count, 1);
	assert_int_equal(vz_cpuset_count(&cfg.reserve_cpus), 0);
	expect_ok("[runtime]\nreserve_cpus = cpus 2-3\n", &cfg);
	assert_int_equal(cfg.reserve_count, 0);
	vz__cpuset_format(&cfg.reserve_cpus, buf, sizeof buf);
	assert_string_equal(buf, "2-3");
	expect_ok("[runtime]\nreserve_cpus = CPU 0\n", &cfg);
	vz__cpuset_format(&cfg.reserve_cpus, buf, sizeof buf);
	assert_string_equal(buf, "0");
	expect_ok("[runtime]\nreserve_cpus = cpus  1, 3\n", &cfg);
	vz__cpuset_format(&cfg.reserve_cpus, buf, sizeof buf);
	assert_string_equal(buf, "1,3");
	expect_ok("[runtime]\nreserve_cpus = none\n", &cfg);
	assert_int_equal(cfg.reserve_count, 0);
	assert_int_equal(vz_cpuset_count(&cfg.reserve_cpus), 0);
	expect_ok("[runtime]\nreserve_cpus = 0\n", &cfg);
	assert_int_equal(cfg.reserve_count, 0);

	expect_refused("[runtime]\nreserve_cpus = two\n", 2, "runtime.reserve_cpus",
		       "not a CPU count or list");
	expect_refused("[runtime]\nreserve_cpus = 2-3\n", 2, "runtime.reserve_cpus",
		       "not a CPU count or list (write e.g. 1, cpus 2-3 or none)");
	expect_refused("[runtime]\nreserve_cpus = cpus 3-1\n", 2, "runtime.reserve_cpus",
		       "bad CPU list '3-1'");
	expect_refused("[runtime]\nreserve_cpus = 1024\n", 2, "runtime.reserve_cpus",
		       "1024 is out of range 0..1023");
	expect_refused("[runtime]\nreserve_cpus = 1\nreserve_cpus = 2\n", 3, "runtime.reserve_cpus",
		       "duplicate key");
	expect_refused("[runtime]\nreserve_cpu = 1\n", 2, "runtime.reserve_cpu",
		       "did you mean 'reserve_cpus'?");
	/* validated against the machine with the file's line: allowed 0-3 */
	expect_refused("[runtime]\nreserve_cpus = 4\n", 2, "runtime.reserve_cpus",
		       "reserving 4 CPUs leaves none of the 4 placement CPUs (0-3)");
	expect_refused("[runtime]\nreserve_cpus = cpus 5\n", 2, "runtime.reserve_cpus",
		       "CPU 5 is outside the cgroup cpuset");
	expect_refused("[runtime]\nreserve_cpus = cpus 3\n[shard.0]\ncpu = 3\n", 4, "shard.0.cpu",
		       "CPU 3 is reserved for the embedder");
	expect_ok("[runtime]\nreserve_cpus = 1\n[shard.2]\ncpu = 2\n", &cfg);
	/* a count of 1 leaves 3 shards here: [shard.3] does not exist */
	expect_refused("[runtime]\nreserve_cpus = 1\n[shard.3]\ncpu = 0\n", 3, "shard.3",
		       "shard 3 does not exist: runtime.shards = auto gives 3 shards");

	/* the environment, with the same syntax, wins over the file */
	setenv("VZ_RESERVE_CPUS", "cpus 0", 1);
	expect_ok("[runtime]\nreserve_cpus = 2\n", &cfg);
	assert_int_equal(cfg.reserve_count, 0);
	assert_true(vz_cpuset_has(&cfg.reserve_cpus, 0));
	setenv("VZ_RESERVE_CPUS", "lots", 1);
	vz_config_default(&cfg);
	check_refusal(vz_config_apply_env(&cfg, &err), &err, "", 0, "runtime.reserve_cpus",
		      "(from VZ_RESERVE_CPUS)");
	clear_env();

	/* by code: a count and a list at once is refused */
	vz_config_default(&cfg);
	cfg.reserve_count = 1;
	vz_cpuset_set(&cfg.reserve_cpus, 0);
	assert_int_equal(vz__config_check(&cfg, &machine, NULL, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "runtime.reserve_cpus");
	assert_non_null(strstr(err.message, "both set"));
}

/* The one-line form of a refusal every tool and the demo print. */
static void test_error_format(void **state)
{
	vz_config_error e;
	char buf[1024], small[8];

	(void)state;
	vz__config_error(&e, "a.ini", 3, "runtime.batch", "0 is out of range");
	assert_int_equal(vz_config_error_format(&e, buf, sizeof buf),
			 (int)strlen("a.ini:3: runtime.batch: 0 is out of range"));
	assert_string_equal(buf, "a.ini:3: runtime.batch: 0 is out of range");
	vz__config_error(&e, "a.ini", 0, "", "cannot open");
	vz_config_error_format(&e, buf, sizeof buf);
	assert_string_equal(buf, "a.ini: cannot open");
	vz__config_error(&e, "", 0, "runtime.cpus", "CPU 7 is not online");
	vz_config_error_format(&e, buf, sizeof buf);
	assert_string_equal(buf, "runtime.cpus: CPU 7 is not online");
	vz_config_error_format(&e, small, sizeof small);
	assert_string_equal(small, "runtime");
}

static void test_out_of_range(void **state)
{
	(void)state;
	expect_refused("[runtime]\nbatch = 0\n", 2, "runtime.batch", "0 is out of range 1..65536");
	expect_refused("[runtime]\nactors_per_turn = 70000\n", 2, "runtime.actors_per_turn",
		       "out of range 1..65536");
	expect_refused("[runtime]\nsend_batch = 0\n", 2, "runtime.send_batch", "out of range");
	expect_refused("[runtime]\noutbox_limit = 16777217\n", 2, "runtime.outbox_limit",
		       "out of range 0..16777216");
	expect_refused("[runtime]\nturn_budget_us = 1000001\n", 2, "runtime.turn_budget_us",
		       "out of range 0..1000000");
	expect_refused("[runtime]\nturn_budget_us = -1\n", 2, "runtime.turn_budget_us", "");
	expect_refused("[runtime]\nidle_spin_us = 1000001\n", 2, "runtime.idle_spin_us",
		       "out of range 0..1000000");
	expect_refused("[runtime]\nshards = 300\n", 2, "runtime.shards",
		       "300 is out of range 1..256");
	expect_refused("[pool]\nworkers_per_node = 5000\n", 2, "pool.workers_per_node",
		       "out of range 0..1024");
	expect_refused("[shard.0]\ncpu = 1024\n", 2, "shard.0.cpu", "out of range 0..1023");
	expect_refused("[topology]\nnodes = 65\n", 2, "topology.nodes", "out of range 0..64");
	expect_refused("[topology]\nnodes = 1\nnode.64 = 0\n", 3, "topology.node.64",
		       "out of range 0..63");
}

static void test_tick_range(void **state)
{
	vz_config cfg;

	(void)state;
	expect_refused("[runtime]\ntimer_tick_us = 9\n", 2, "runtime.timer_tick_us",
		       "9 is out of range 10..1000000");
	expect_refused("[runtime]\n\ntimer_tick_us = 1000001\n", 3, "runtime.timer_tick_us",
		       "out of range 10..1000000");
	expect_ok("[runtime]\ntimer_tick_us = 10\n", &cfg);
	expect_ok("[runtime]\ntimer_tick_us = 1000000\n", &cfg);
}

static void test_power_of_two(void **state)
{
	vz_config cfg;

	(void)state;
	expect_refused("[runtime]\nring_entries = 1000\n", 2, "runtime.ring_entries",
		       "1000 is not a power of two (e.g. 512 or 1024)");
	expect_refused("[runtime]\nring_entries = 1\n", 2, "runtime.ring_entries",
		       "out of range 2..1048576");
	expect_refused("[shard.1]\nring_entries = 48\n", 2, "shard.1.ring_entries",
		       "not a power of two");
	expect_refused("[pool]\nqueue_capacity = 100\n", 2, "pool.queue_capacity",
		       "not a power of two");
	expect_ok("[runtime]\nring_entries = 2\nsend_batch = 2\n", &cfg);
	expect_ok("[pool]\nqueue_capacity = 0\n", &cfg); /* 0 = default */
	/* a publish batch must fit in the smallest ring */
	expect_refused("[runtime]\nsend_batch = 32\n[shard.1]\nring_entries = 16\n", 2,
		       "runtime.send_batch", "larger than the 16-entry ring of shard 1");
}

/* ---- the machine ------------------------------------------------------ */

static void test_cpu_not_online(void **state)
{
	(void)state;
	expect_refused("[runtime]\nshards = 1\n[shard.0]\ncpu = 9\n", 4, "shard.0.cpu",
		       "CPU 9 is not online (online: 0-7)");
	expect_refused("[runtime]\ncpus = 0-3,9\n", 2, "runtime.cpus", "CPU 9 is not online");
}

static void test_cpu_outside_affinity(void **state)
{
	(void)state;
	expect_refused("[runtime]\nshards = 2\n[shard.1]\ncpu = 6\n", 4, "shard.1.cpu",
		       "CPU 6 is outside the process affinity mask (0-5)");
}

static void test_cpu_outside_cgroup(void **state)
{
	(void)state;
	expect_refused("[runtime]\nshards = 2\n[shard.1]\ncpu = 5\n", 4, "shard.1.cpu",
		       "CPU 5 is outside the cgroup cpuset (0-3,6)");
	expect_refused("[runtime]\ncpus = 0-4\n", 2, "runtime.cpus",
		       "CPU 4 is outside the cgroup cpuset");
}

static void test_two_shards_one_cpu(void **state)
{
	vz_config cfg;
	const char *text = "[runtime]\nshards = 2\n%s[shard.0]\ncpu = 2\n[shard.1]\ncpu = 2\n";
	char buf[256];
	int cpu[VZ_MAX_SHARDS];
	unsigned n;
	vz_config_error err;

	(void)state;
	snprintf(buf, sizeof buf, text, "");
	expect_refused(buf, 6, "shard.1.cpu",
		       "CPU 2 already hosts shard 0; set runtime.allow_shared_cpus = true");
	snprintf(buf, sizeof buf, text, "allow_shared_cpus = true\n");
	expect_ok(buf, &cfg);
	assert_int_equal(vz__plan_shards(&cfg, &machine, cpu, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cpu[0], 2);
	assert_int_equal(cpu[1], 2);
	/* more auto shards than free CPUs */
	expect_refused("[runtime]\nshards = 5\n", 2, "runtime.shards",
		       "5 shards without a cpu need 5 free CPUs but only 4");
}

static void test_shard_index_beyond_count(void **state)
{
	(void)state;
	expect_refused("[runtime]\nshards = 2\n\n[shard.2]\ncpu = 1\n", 4, "shard.2",
		       "shard 2 does not exist: runtime.shards = 2 (shards 0..1)");
	/* auto: 4 allowed CPUs give shards 0..3 */
	expect_refused("[shard.4]\nembedded = true\n", 1, "shard.4",
		       "runtime.shards = auto gives 4 shards here");
	/* the count may come after the section */
	expect_refused("[shard.3]\ncpu = 1\n[runtime]\nshards = 3\n", 1, "shard.3",
		       "does not exist");
}

static void test_declared_topology(void **state)
{
	vz_config cfg;
	vz_config_error err;
	int cpu[VZ_MAX_SHARDS];
	unsigned n;
	int rc;

	(void)state;
	rc = load_on("[topology]\nnodes = 2\nnode.0 = 0-1\nnode.1 = 2-3\n"
		     "[runtime]\nshards = 4\n",
		     NULL, &cfg, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg.topology.nnodes, 2);
	{
		struct vz__topology t;

		assert_int_equal(vz__topo_for_config(&cfg, &t), 0);
		assert_true(t.declared);
		assert_int_equal(t.nnodes, 2);
		assert_int_equal(vz_cpuset_count(&t.allowed), 4);
		assert_int_equal(vz__topo_cpu_node(&t, 3), 1);
		assert_int_equal(vz__topo_cpu_node(&t, 0), 0);
		assert_int_equal(vz__plan_shards(&cfg, &t, cpu, &n, &err), 0);
		assert_int_equal(n, 4);
	}
	/* CPUs outside the declaration are refused as such */
	rc = load_on("[topology]\nnodes = 1\nnode.0 = 0-1\n[shard.0]\ncpu = 3\n", NULL, &cfg, &err);
	check_refusal(rc, &err, "t.ini", 5, "shard.0.cpu", "not in the declared topology");
	rc = load_on("[topology]\nnodes = 2\nnode.0 = 0-1\n", NULL, &cfg, &err);
	check_refusal(rc, &err, "t.ini", 2, "topology.node.1", "declared node 1 has no CPUs");
	rc = load_on("[topology]\nnodes = 2\nnode.0 = 0-1\nnode.1 = 1-2\n", NULL, &cfg, &err);
	check_refusal(rc, &err, "t.ini", 4, "topology.node.1", "CPU 1 is declared in two nodes");
	/* a node that does not exist */
	rc = load_on("[topology]\nnodes = 1\nnode.0 = 0-1\nnode.3 = 2\n", NULL, &cfg, &err);
	check_refusal(rc, &err, "t.ini", 4, "topology.node.3",
		      "node 3 does not exist (topology.nodes = 1");
	rc = load_on("[topology]\nnode.0 = 0-1\n", NULL, &cfg, &err);
	check_refusal(rc, &err, "t.ini", 2, "topology.node.0", "topology.nodes is not set");
	rc = load_on("[topology]\nnodes = 1\nnode.x = 0\n", NULL, &cfg, &err);
	check_refusal(rc, &err, "t.ini", 3, "topology.node.x", "bad node index 'x'");
}

#ifdef VZ_CONFIG_HAS_POOL_NODES
static void test_pool_on_missing_node(void **state)
{
	vz_config cfg;

	(void)state;
	expect_ok("[pool]\nnodes = 0-1\n", &cfg);
	assert_int_equal(cfg.pool.nodes, 3);
	expect_refused("[runtime]\nbatch = 2\n[pool]\nnodes = 0,2\n", 4, "pool.nodes",
		       "pool on node 2, which does not exist here");
	expect_refused("[pool]\nnodes = 64\n", 2, "pool.nodes", "beyond the maximum 63");
}
#endif

/* ---- validation without a file ---------------------------------------- */

static void test_validate_without_file(void **state)
{
	vz_config cfg;
	vz_config_error err;

	(void)state;
	vz_config_default(&cfg);
	cfg.timer_tick_us = 5;
	memset(&err, 0x5a, sizeof err);
	check_refusal(vz__config_check(&cfg, &machine, NULL, &err), &err, "", 0,
		      "runtime.timer_tick_us", "5 is out of range 10..1000000");

	vz_config_default(&cfg);
	cfg.ring_entries = 100;
	check_refusal(vz__config_check(&cfg, &machine, NULL, &err), &err, "", 0,
		      "runtime.ring_entries", "not a power of two");

	vz_config_default(&cfg);
	cfg.nshards = 2;
	cfg.shards[0].cpu = 1;
	cfg.shards[1].cpu = 1;
	check_refusal(vz__config_check(&cfg, &machine, NULL, &err), &err, "", 0, "shard.1.cpu",
		      "CPU 1 already hosts shard 0");

	vz_config_default(&cfg);
	cfg.backend = (vz_backend_kind)7;
	check_refusal(vz__config_check(&cfg, &machine, NULL, &err), &err, "", 0, "runtime.backend",
		      "unknown backend 7");

	/* the public entry point on a declared topology (machine-independent) */
	vz_config_default(&cfg);
	cfg.topology.nnodes = 1;
	vz_cpuset_set(&cfg.topology.node_cpus[0], 0);
	vz_cpuset_set(&cfg.topology.node_cpus[0], 1);
	assert_int_equal(vz_config_validate(&cfg, &err), 0);
	cfg.shards[0].cpu = 5;
	check_refusal(vz_config_validate(&cfg, &err), &err, "", 0, "shard.0.cpu",
		      "CPU 5 is not in the declared topology (CPUs: 0-1)");
	cfg.shards[0].cpu = -1;
	cfg.pool.queue_capacity = 3;
	check_refusal(vz_config_validate(&cfg, &err), &err, "", 0, "pool.queue_capacity",
		      "not a power of two");
	assert_int_equal(vz_config_validate(NULL, &err), VZ_EINVAL);
}

/* ---- environment ------------------------------------------------------ */

static void test_env_overrides(void **state)
{
	vz_config cfg;
	vz_config_error err;

	(void)state;
	setenv("VZ_SHARDS", "2", 1);
	setenv("VZ_CPUS", "1-3", 1);
	setenv("VZ_BACKEND", "epoll", 1);
	setenv("VZ_IDLE", "spin", 1);
	setenv("VZ_SPIN_US", "77", 1);
	setenv("VZ_TICK_US", "500", 1);
	setenv("VZ_RING_ENTRIES", "64", 1);
	/* the environment wins over the file */
	assert_int_equal(load("[runtime]\nshards = 3\nbackend = io_uring\nidle = sleep\n"
			      "idle_spin_us = 5\ntimer_tick_us = 100\nring_entries = 128\n",
			      &cfg, &err),
			 0);
	assert_int_equal(cfg.nshards, 2);
	assert_int_equal(vz_cpuset_count(&cfg.cpus), 3);
	assert_false(vz_cpuset_has(&cfg.cpus, 0));
	assert_int_equal(cfg.backend, VZ_BACKEND_EPOLL);
	assert_int_equal(cfg.idle_policy, VZ_IDLE_SPIN);
	assert_int_equal(cfg.idle_spin_us, 77);
	assert_int_equal(cfg.timer_tick_us, 500);
	assert_int_equal(cfg.ring_entries, 64);
	clear_env();

	/* the public function alone, on a code-filled config */
	vz_config_default(&cfg);
	setenv("VZ_SHARDS", "auto", 1);
	setenv("VZ_BACKEND", "io_uring", 1);
	cfg.nshards = 5;
	assert_int_equal(vz_config_apply_env(&cfg, &err), 0);
	assert_int_equal(cfg.nshards, 0);
	assert_int_equal(cfg.backend, VZ_BACKEND_IO_URING);
	/* empty means unset */
	setenv("VZ_BACKEND", "", 1);
	cfg.backend = VZ_BACKEND_EPOLL;
	assert_int_equal(vz_config_apply_env(&cfg, &err), 0);
	assert_int_equal(cfg.backend, VZ_BACKEND_EPOLL);
	clear_env();
}

static void test_env_errors(void **state)
{
	vz_config cfg;
	vz_config_error err;

	(void)state;
	setenv("VZ_TICK_US", "3", 1);
	check_refusal(load("[runtime]\nshards = 2\n", &cfg, &err), &err, "", 0,
		      "runtime.timer_tick_us", "3 is out of range 10..1000000 (from VZ_TICK_US)");
	clear_env();

	setenv("VZ_RING_ENTRIES", "100", 1);
	vz_config_default(&cfg);
	check_refusal(vz_config_apply_env(&cfg, &err), &err, "", 0, "runtime.ring_entries",
		      "not a power of two");
	assert_non_null(strstr(err.message, "(from VZ_RING_ENTRIES)"));
	clear_env();

	setenv("VZ_BACKEND", "kqueue", 1);
	check_refusal(vz_config_apply_env(&cfg, &err), &err, "", 0, "runtime.backend",
		      "unknown backend 'kqueue'");
	clear_env();

	setenv("VZ_CPUS", "0-99999", 1);
	check_refusal(vz_config_apply_env(&cfg, &err), &err, "", 0, "runtime.cpus",
		      "beyond the maximum 1023");
	clear_env();

	/* an override that conflicts with the file: the file's line is named */
	setenv("VZ_SHARDS", "1", 1);
	check_refusal(load("[runtime]\nshards = 3\n[shard.2]\ncpu = 2\n", &cfg, &err), &err,
		      "t.ini", 3, "shard.2", "shard 2 does not exist: runtime.shards = 1");
	clear_env();

	/* and a placement the override makes impossible names the variable */
	setenv("VZ_SHARDS", "6", 1);
	check_refusal(load("[runtime]\nbatch = 4\n", &cfg, &err), &err, "", 0, "runtime.shards",
		      "(from VZ_SHARDS)");
	clear_env();
}

/* ---- files on disk ---------------------------------------------------- */

static void test_load_file(void **state)
{
	char path[] = "/tmp/veloz-test-config-XXXXXX";
	const char *text = "[topology]\nnodes = 1\nnode.0 = 0-3\n"
			   "[runtime]\nshards = 3\n[shard.0]\ncpu = 1\n";
	vz_config cfg;
	vz_config_error err;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	vz_config_default(&cfg);
	assert_int_equal(vz_config_load(&cfg, path, &err), 0);
	assert_int_equal(cfg.nshards, 3);

	/* a refusal names the path given */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "[runtime]\nbatch = x\n", 20), 20);
	close(fd);
	vz_config_default(&cfg);
	check_refusal(vz_config_load(&cfg, path, &err), &err, path, 2, "runtime.batch",
		      "not a number");
	unlink(path);

	vz_config_default(&cfg);
	assert_int_equal(vz_config_load(&cfg, path, &err), VZ_ENOENT);
	assert_string_equal(err.file, path);
	assert_non_null(strstr(err.message, "cannot open"));
	assert_int_equal(vz_config_load(&cfg, NULL, &err), VZ_EINVAL);
	/* err may be NULL */
	assert_int_equal(vz_config_load(&cfg, path, NULL), VZ_ENOENT);
}

/* ---- placement -------------------------------------------------------- */

/* Done-when of the feature: "one shard on CPU 1 and the rest auto starts
 * exactly that placement" on a 4-CPU topology. */
static void test_plan_one_pinned_rest_auto(void **state)
{
	vz_config cfg;
	vz_config_error err;
	int cpu[VZ_MAX_SHARDS];
	unsigned n = 0;

	(void)state;
	assert_int_equal(load_on("[runtime]\nshards = 3\n[shard.0]\ncpu = 1\n", &four, &cfg, &err),
			 0);
	assert_int_equal(vz__plan_shards(&cfg, &four, cpu, &n, &err), 0);
	assert_int_equal(n, 3);
	assert_int_equal(cpu[0], 1);
	assert_int_equal(cpu[1], 0);
	assert_int_equal(cpu[2], 2);

	/* pinned in the middle, auto count: one per CPU */
	assert_int_equal(load_on("[shard.2]\ncpu = 0\n", &four, &cfg, &err), 0);
	assert_int_equal(vz__plan_shards(&cfg, &four, cpu, &n, &err), 0);
	assert_int_equal(n, 4);
	assert_int_equal(cpu[0], 1);
	assert_int_equal(cpu[1], 2);
	assert_int_equal(cpu[2], 0);
	assert_int_equal(cpu[3], 3);
}

static void test_plan_cpus_and_sharing(void **state)
{
	vz_config cfg;
	vz_config_error err;
	int cpu[VZ_MAX_SHARDS];
	unsigned n = 0;

	(void)state;
	/* runtime.cpus limits auto placement and the auto count */
	assert_int_equal(load_on("[runtime]\ncpus = 1,3\n", &four, &cfg, &err), 0);
	assert_int_equal(vz__plan_shards(&cfg, &four, cpu, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cpu[0], 1);
	assert_int_equal(cpu[1], 3);

	/* more shards than CPUs wrap around when sharing is allowed */
	assert_int_equal(load_on("[runtime]\nshards = 5\ncpus = 2-3\nallow_shared_cpus = on\n",
				 &four, &cfg, &err),
			 0);
	assert_int_equal(vz__plan_shards(&cfg, &four, cpu, &n, &err), 0);
	assert_int_equal(n, 5);
	assert_int_equal(cpu[0], 2);
	assert_int_equal(cpu[1], 3);
	assert_int_equal(cpu[2], 2);
	assert_int_equal(cpu[3], 3);
	assert_int_equal(cpu[4], 2);

	/* a pin outside runtime.cpus is fine if allowed; auto steps around */
	assert_int_equal(
	    load_on("[runtime]\nshards = 2\ncpus = 2-3\n[shard.1]\ncpu = 0\n", &four, &cfg, &err),
	    0);
	assert_int_equal(vz__plan_shards(&cfg, &four, cpu, &n, &err), 0);
	assert_int_equal(cpu[0], 2);
	assert_int_equal(cpu[1], 0);

	/* not enough free CPUs without sharing */
	vz_config_default(&cfg);
	cfg.nshards = 3;
	vz_cpuset_set(&cfg.cpus, 0);
	vz_cpuset_set(&cfg.cpus, 1);
	check_refusal(vz__plan_shards(&cfg, &four, cpu, &n, &err), &err, "", 0, "runtime.shards",
		      "3 shards without a cpu need 3 free CPUs but only 2");
	assert_int_equal(vz__plan_shards(NULL, &four, cpu, &n, &err), VZ_EINVAL);
}

static void test_suggest(void **state)
{
	static const char *const words[] = {"shards", "cpus", "backend", "idle"};

	(void)state;
	assert_string_equal(vz__config_suggest("shard", words, 4), "shards");
	assert_string_equal(vz__config_suggest("CPUS", words, 4), "cpus");
	assert_string_equal(vz__config_suggest("bakend", words, 4), "backend");
	assert_null(vz__config_suggest("zzzzzzzz", words, 4));
	assert_null(vz__config_suggest("", words, 0));
}

/* [stats]: every key, the inverted on/off ones, ranges, VZ_STATS_SHM. */
static void test_stats_section(void **state)
{
	vz_config cfg;
	vz_config_error err;

	(void)state;
	expect_ok("[stats]\n", &cfg);
	assert_false(cfg.stats_types_off);
	assert_false(cfg.stall_off);
	assert_false(cfg.stats_shm);
	assert_int_equal(cfg.stats_sample_runs, 0);
	assert_int_equal(cfg.stall_budget_us, 0);
	expect_ok("[stats]\ntypes = off\nsample_runs = 1\nstall = off\nstall_budget_us = 50000\n"
		  "stall_interval_ms = 250\nshm = on\n",
		  &cfg);
	assert_true(cfg.stats_types_off);
	assert_true(cfg.stall_off);
	assert_true(cfg.stats_shm);
	assert_int_equal(cfg.stats_sample_runs, 1);
	assert_int_equal(cfg.stall_budget_us, 50000);
	assert_int_equal(cfg.stall_interval_ms, 250);
	expect_ok("[stats]\nstall_budget_us = 0\n", &cfg); /* 0: the default */
	expect_refused("[stats]\nstall_budget_us = 999\n", 2, "stats.stall_budget_us",
		       "999 is out of range 1000..60000000");
	expect_refused("[stats]\nsample_runs = 65537\n", 2, "stats.sample_runs",
		       "out of range 0..65536");
	expect_refused("[stats]\nstall = maybe\n", 2, "stats.stall", "not a boolean");
	expect_refused("[stats]\nshm = on\nshm = off\n", 3, "stats.shm", "duplicate key");
	expect_refused("[stats]\nstal = on\n", 2, "stats.stal", "did you mean 'stall'?");
	/* The environment: VZ_STATS_SHM=1 is stats.shm = on. */
	vz_config_default(&cfg);
	setenv("VZ_STATS_SHM", "1", 1);
	assert_int_equal(vz_config_apply_env(&cfg, &err), 0);
	assert_true(cfg.stats_shm);
	setenv("VZ_STATS_SHM", "sometimes", 1);
	assert_int_equal(vz_config_apply_env(&cfg, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "stats.shm");
	clear_env();
}

/* runtime.foreign_lanes (producer.h): the key, its range, its refusals,
 * and the same range for a config filled in code. */
static void test_foreign_lanes_key(void **state)
{
	vz_config cfg;
	vz_config_error err;

	(void)state;
	expect_ok("[runtime]\n", &cfg);
	assert_int_equal(cfg.foreign_lanes, 0); /* the default */
	expect_ok("[runtime]\nforeign_lanes = 8\n", &cfg);
	assert_int_equal(cfg.foreign_lanes, 8);
	expect_ok("[runtime]\nforeign_lanes = 0\n", &cfg);
	assert_int_equal(cfg.foreign_lanes, 0);
	expect_ok("[runtime]\nforeign_lanes = 4096\n", &cfg);
	assert_int_equal(cfg.foreign_lanes, VZ_FOREIGN_LANES_MAX);
	expect_refused("[runtime]\nshards = 2\nforeign_lanes = 4097\n", 3, "runtime.foreign_lanes",
		       "4097 is out of range 0..4096 (0 for the default, 64 lanes per shard)");
	expect_refused("[runtime]\nforeign_lanes = 99999999999\n", 2, "runtime.foreign_lanes",
		       "99999999999 is out of range 0..4096");
	expect_refused("[runtime]\nforeign_lanes = many\n", 2, "runtime.foreign_lanes",
		       "'many' is not a number");
	expect_refused("[runtime]\nforeign_lanes = -1\n", 2, "runtime.foreign_lanes",
		       "not a number");
	expect_refused("[runtime]\nforeign_lanes = 8\nforeign_lanes = 9\n", 3,
		       "runtime.foreign_lanes", "duplicate key");
	expect_refused("[runtime]\nforeign_lane = 8\n", 2, "runtime.foreign_lane",
		       "did you mean 'foreign_lanes'?");
	/* Filled in code: vz_config_validate()'s checks name the key too. */
	vz_config_default(&cfg);
	cfg.foreign_lanes = VZ_FOREIGN_LANES_MAX + 1;
	memset(&err, 0x5a, sizeof err);
	check_refusal(vz__config_check(&cfg, &machine, NULL, &err), &err, "", 0,
		      "runtime.foreign_lanes", "4097 is out of range 0..4096");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_defaults_validate_on_machine),
	    cmocka_unit_test(test_every_key),
	    cmocka_unit_test(test_comments_and_blanks),
	    cmocka_unit_test(test_empty_file_is_defaults),
	    cmocka_unit_test(test_duplicate_key_is_error),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_cpuset_syntax),
	    cmocka_unit_test(test_unknown_section),
	    cmocka_unit_test(test_unknown_key),
	    cmocka_unit_test(test_classes_parse),
	    cmocka_unit_test(test_classes_refused),
	    cmocka_unit_test(test_bad_numbers),
	    cmocka_unit_test(test_out_of_range),
	    cmocka_unit_test(test_tick_range),
	    cmocka_unit_test(test_power_of_two),
	    cmocka_unit_test(test_cpu_not_online),
	    cmocka_unit_test(test_cpu_outside_affinity),
	    cmocka_unit_test(test_cpu_outside_cgroup),
	    cmocka_unit_test(test_two_shards_one_cpu),
	    cmocka_unit_test(test_shard_index_beyond_count),
	    cmocka_unit_test(test_declared_topology),
#ifdef VZ_CONFIG_HAS_POOL_NODES
	    cmocka_unit_test(test_pool_on_missing_node),
#endif
	    cmocka_unit_test(test_validate_without_file),
	    cmocka_unit_test(test_env_overrides),
	    cmocka_unit_test(test_env_errors),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_plan_one_pinned_rest_auto),
	    cmocka_unit_test(test_plan_cpus_and_sharing),
	    cmocka_unit_test(test_suggest),
	    cmocka_unit_test(test_backend_parser),
	    cmocka_unit_test(test_too_big_is_out_of_range),
	    cmocka_unit_test(test_indented_lines),
	    cmocka_unit_test(test_reserve_cpus_key),
	    cmocka_unit_test(test_error_format),
	    cmocka_unit_test(test_stats_section),
	    cmocka_unit_test(test_foreign_lanes_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
