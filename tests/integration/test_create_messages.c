// SPDX-License-Identifier: MIT
/*
 * What an embedder sees when it creates runtimes: every runtime message
 * goes through vz_config.log (stderr only without a hook); a second live
 * runtime whose shard CPUs overlap another's gets a warning, a disjoint or
 * embedded-only one does not; the epoll fallback notice reaches the hook
 * and not stderr; a forced io_uring where it is forbidden fails with the
 * reason in vz_config.create_error; and CPUs reserved for the embedder host
 * no runtime thread at all (shards and pool workers), checked on the
 * threads' real affinity masks.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config/config_int.h"
#include "forbid_io_uring.h"
#include "topo/topo.h"

#define CHILD_SKIP 77

/* Messages a hook received. The hook may be called from any thread, so
 * the log takes a lock, as an embedder's would. */
struct log {
	pthread_mutex_t lock;
	unsigned n, warnings, notices;
	char last_warning[512];
	char last_notice[512];
};

static void hook(vz_log_level level, const char *text, void *user)
{
	struct log *l = user;

	pthread_mutex_lock(&l->lock);
	l->n++;
	if (level == VZ_LOG_WARNING) {
		l->warnings++;
		snprintf(l->last_warning, sizeof l->last_warning, "%s", text);
	} else if (level == VZ_LOG_NOTICE) {
		l->notices++;
		snprintf(l->last_notice, sizeof l->last_notice, "%s", text);
	}
	pthread_mutex_unlock(&l->lock);
}

static void log_reset(struct log *l)
{
	pthread_mutex_lock(&l->lock);
	l->n = l->warnings = l->notices = 0;
	l->last_warning[0] = l->last_notice[0] = '\0';
	pthread_mutex_unlock(&l->lock);
}

static struct log the_log = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Defaults (one shard per allowed CPU), messages to the_log. */
static void hooked_config(vz_config *cfg)
{
	vz_config_default(cfg);
	cfg->log = hook;
	cfg->log_user = &the_log;
}

static vz_cpuset allowed_cpus(void)
{
	struct vz__topology *t = malloc(sizeof *t);
	vz_cpuset s;

	assert_non_null(t);
	assert_int_equal(vz__topo_detect(t), 0);
	s = t->allowed;
	free(t);
	return s;
}

/* The n-th allowed CPU (ascending), or -1. */
static int nth_cpu(const vz_cpuset *s, unsigned n)
{
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++)
		if (vz_cpuset_has(s, c) && n-- == 0)
			return (int)c;
	return -1;
}

static void test_overlap_warning(void **state)
{
	vz_runtime *a, *b, *c, *d;
	vz_config cfg;

	(void)state;
	hooked_config(&cfg);
	log_reset(&the_log);
	assert_int_equal(vz_runtime_create(&cfg, &a), 0);
	assert_int_equal(the_log.warnings, 0); /* alone in the process */

	/* a second default runtime puts shards on the same CPUs */
	assert_int_equal(vz_runtime_create(&cfg, &b), 0);
	assert_int_equal(the_log.warnings, 1);
	assert_non_null(strstr(the_log.last_warning, "shards of this runtime and of 1 other live "
						     "runtime in this process"));
	assert_non_null(strstr(the_log.last_warning, "runtime.reserve_cpus"));
	assert_null(strchr(the_log.last_warning, '\n'));

	assert_int_equal(vz_runtime_create(&cfg, &c), 0);
	assert_int_equal(the_log.warnings, 2);
	assert_non_null(strstr(the_log.last_warning, "of 2 other live runtimes"));

	/* destroyed runtimes leave the list: d overlaps c only */
	assert_int_equal(vz_runtime_destroy(a), 0);
	assert_int_equal(vz_runtime_destroy(b), 0);
	assert_int_equal(vz_runtime_create(&cfg, &d), 0);
	assert_int_equal(the_log.warnings, 3);
	assert_non_null(strstr(the_log.last_warning, "of 1 other live runtime"));
	assert_int_equal(vz_runtime_destroy(c), 0);
	assert_int_equal(vz_runtime_destroy(d), 0);

	/* and once all are gone, a new one is alone again */
	assert_int_equal(vz_runtime_create(&cfg, &a), 0);
	assert_int_equal(the_log.warnings, 3);
	assert_int_equal(vz_runtime_destroy(a), 0);
}

static void test_no_warning_when_disjoint(void **state)
{
	vz_cpuset allowed = allowed_cpus();
	vz_runtime *a, *b;
	vz_config ca, cb;

	(void)state;
	log_reset(&the_log);
	/* a runtime whose only shard is embedded owns no thread: no overlap */
	hooked_config(&ca);
	hooked_config(&cb);
	cb.nshards = 1;
	cb.shards[0].embedded = true;
	assert_int_equal(vz_runtime_create(&ca, &a), 0);
	assert_int_equal(vz_runtime_create(&cb, &b), 0);
	assert_int_equal(the_log.warnings, 0);
	assert_int_equal(vz_runtime_destroy(b), 0);
	assert_int_equal(vz_runtime_destroy(a), 0);

	if (vz_cpuset_count(&allowed) < 2) {
		print_message("one allowed CPU: no disjoint runtimes possible here\n");
		return;
	}
	/* each runtime on its own CPU */
	hooked_config(&ca);
	hooked_config(&cb);
	vz_cpuset_set(&ca.cpus, (unsigned)nth_cpu(&allowed, 0));
	vz_cpuset_set(&cb.cpus, (unsigned)nth_cpu(&allowed, 1));
	assert_int_equal(vz_runtime_create(&ca, &a), 0);
	assert_int_equal(vz_runtime_create(&cb, &b), 0);
	assert_int_equal(the_log.warnings, 0);
	assert_int_equal(vz_runtime_destroy(a), 0);
	assert_int_equal(vz_runtime_destroy(b), 0);
}

/* Read what fd holds from the start (a temporary file). */
static void slurp(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
}

#define CHECK(n, cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			dprintf(saved_err, "child check %d failed: %s\n", n, #cond);               \
			_exit(n);                                                                  \
		}                                                                                  \
	} while (0)

/* In a forked child where io_uring is forbidden: the fallback notice goes
 * to the hook only; without a hook, to stderr; a forced io_uring says why
 * it failed. Never returns. */
static void fallback_child(void)
{
	char path[] = "/tmp/veloz-test-stderr-XXXXXX", text[2048];
	int saved_err = dup(2), fd, ret;
	vz_config_error e;
	vz_runtime *rt;
	vz_config cfg;

	vz_test_watchdog(30);
	unsetenv("VZ_BACKEND");
	ret = vz_test_forbid_io_uring();
	if (ret < 0) {
		dprintf(saved_err, "seccomp unavailable (%s): skipping\n", strerror(-ret));
		_exit(CHILD_SKIP);
	}
	fd = mkstemp(path);
	CHECK(1, fd >= 0 && saved_err >= 0);
	unlink(path);
	CHECK(2, dup2(fd, 2) == 2);

	hooked_config(&cfg);
	log_reset(&the_log);
	CHECK(3, vz_runtime_create(&cfg, &rt) == 0);
	CHECK(4, strcmp(vz_runtime_backend(rt), "epoll") == 0);
	CHECK(5, the_log.notices == 1);
	CHECK(6, strstr(the_log.last_notice, "io_uring unavailable (") == the_log.last_notice);
	CHECK(7, strstr(the_log.last_notice, "; using epoll"));
	CHECK(8, vz_runtime_destroy(rt) == 0);
	slurp(fd, text, sizeof text);
	CHECK(9, text[0] == '\0'); /* nothing on stderr with a hook */

	/* VZ_BACKEND=auto is no force: the notice is still due */
	setenv("VZ_BACKEND", "AUTO", 1);
	CHECK(10, vz_runtime_create(&cfg, &rt) == 0);
	CHECK(11, the_log.notices == 2);
	CHECK(12, vz_runtime_destroy(rt) == 0);
	unsetenv("VZ_BACKEND");

	/* the default is one line on stderr */
	vz_config_default(&cfg);
	CHECK(13, vz_runtime_create(&cfg, &rt) == 0);
	CHECK(14, vz_runtime_destroy(rt) == 0);
	slurp(fd, text, sizeof text);
	CHECK(15, strstr(text, "veloz: io_uring unavailable (") == text);
	CHECK(16, strchr(text, '\n') == text + strlen(text) - 1);

	/* forcing io_uring here fails, and says why */
	hooked_config(&cfg);
	cfg.backend = VZ_BACKEND_IO_URING;
	cfg.create_error = &e;
	rt = (vz_runtime *)0x1;
	CHECK(17, vz_runtime_create(&cfg, &rt) == VZ_ENOSYS && rt == NULL);
	CHECK(18, strcmp(e.key, "runtime.backend") == 0);
	CHECK(19, strstr(e.message, "io_uring forced by the configuration but unavailable"));
	close(fd);
	_exit(0);
}

static void test_fallback_notice_through_hook(void **state)
{
	int status = 0;
	pid_t pid;

	(void)state;
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		fallback_child();
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == CHILD_SKIP) {
		skip();
		return;
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* The CPUs the kernel lets thread `tid` of this process run on. */
static bool thread_cpus(const char *tid, vz_cpuset *out)
{
	char path[300], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
	f = fopen(path, "re");
	if (!f)
		return false; /* the thread has gone */
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
			line[strcspn(line, "\n")] = '\0';
			found = vz__cpuset_parse(line + 18, 0, out, NULL, 0) == 0;
			break;
		}
	}
	fclose(f);
	return found;
}

/* With one CPU reserved, no thread of the started runtime (shard or pool
 * worker) may be pinned there; the embedder's engine pins itself there. */
static void test_reserved_cpu_hosts_no_runtime_thread(void **state)
{
	vz_cpuset allowed = allowed_cpus(), reserved, cpus;
	unsigned pinned_elsewhere = 0;
	struct dirent *de;
	vz_runtime *rt;
	vz_config cfg;
	int last;
	DIR *d;

	(void)state;
	if (vz_cpuset_count(&allowed) < 2) {
		print_message("one allowed CPU: nothing can be reserved here\n");
		skip();
		return;
	}
	last = nth_cpu(&allowed, vz_cpuset_count(&allowed) - 1);
	hooked_config(&cfg);
	cfg.reserve_count = 1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_runtime_reserved_cpus(rt, &reserved), 0);
	assert_int_equal(vz_cpuset_count(&reserved), 1);
	assert_true(vz_cpuset_has(&reserved, (unsigned)last)); /* the highest */
	assert_int_equal(vz_runtime_shards(rt), vz_cpuset_count(&allowed) - 1);
	for (unsigned i = 0; i < vz_runtime_shards(rt); i++)
		assert_int_not_equal(vz_runtime_shard_cpu(rt, i), last);
	assert_int_equal(vz_runtime_start(rt), 0);

	d = opendir("/proc/self/task");
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !thread_cpus(de->d_name, &cpus))
			continue;
		/* runtime threads are pinned to one CPU; others (this one,
		 * sanitizer helpers) keep the whole mask */
		if (vz_cpuset_count(&cpus) != 1)
			continue;
		assert_false(vz_cpuset_has(&cpus, (unsigned)last));
		pinned_elsewhere++;
	}
	closedir(d);
	/* the shards at least (and the pool workers) were seen */
	assert_true(pinned_elsewhere >= vz_runtime_shards(rt));

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	assert_int_equal(vz_runtime_reserved_cpus(NULL, &reserved), VZ_EINVAL);
}

/* A declared topology may describe another machine for veloz-topo, but a
 * runtime pins threads to its CPUs: create refuses a declared CPU this
 * process cannot run on, naming the node and the CPU, instead of starting
 * shards and workers that silently run unpinned. */
static void test_declared_cpu_missing_refused(void **state)
{
	vz_cpuset allowed = allowed_cpus();
	vz_config_error why;
	vz_runtime *rt = NULL;
	vz_config cfg;
	unsigned absent = 0;

	(void)state;
	while (absent < VZ_MAX_CPUS && vz_cpuset_has(&allowed, absent))
		absent++;
	assert_true(absent < VZ_MAX_CPUS);
	hooked_config(&cfg);
	cfg.nshards = 1;
	cfg.topology.nnodes = 1;
	vz_cpuset_zero(&cfg.topology.node_cpus[0]);
	vz_cpuset_set(&cfg.topology.node_cpus[0], absent);
	cfg.create_error = &why;
	assert_int_equal(vz_runtime_create(&cfg, &rt), VZ_ECONFIG);
	assert_null(rt);
	assert_string_equal(why.key, "topology.node.0");
	assert_non_null(strstr(why.message, "cannot run on it"));

	/* The same topology with CPUs the process has is accepted. */
	vz_cpuset_zero(&cfg.topology.node_cpus[0]);
	vz_cpuset_set(&cfg.topology.node_cpus[0], (unsigned)nth_cpu(&allowed, 0));
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_runtime_shard_cpu(rt, 0), nth_cpu(&allowed, 0));
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_overlap_warning),
	    cmocka_unit_test(test_no_warning_when_disjoint),
	    cmocka_unit_test(test_fallback_notice_through_hook),
	    cmocka_unit_test(test_reserved_cpu_hosts_no_runtime_thread),
	    cmocka_unit_test(test_declared_cpu_missing_refused),
	};
	int ret;

	vz_test_watchdog(120);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	vz_test_watchdog(0);
	return ret;
}
