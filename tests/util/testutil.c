// SPDX-License-Identifier: MIT
/* See testutil.h. */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/io.h"

void vz_test_require_backend(void)
{
	const char *env = getenv("VZ_BACKEND");
	enum vz__io_kind kind;
	char reason[256];

	/* Only a forced io_uring can be missing: epoll always exists, and an
	 * unset or empty VZ_BACKEND lets the runtime fall back by itself. An
	 * invalid value is left for the test to trip over (it is a bug in the
	 * runner, not a missing kernel feature). */
	if (!env || strcmp(env, "io_uring") != 0)
		return;
	/* The same probe vz_runtime_create() runs, so "skipped" here and
	 * VZ_ENOSYS there cannot disagree. */
	if (vz__io_select(VZ_BACKEND_AUTO, &kind, reason, sizeof reason) == VZ_ENOSYS) {
		fprintf(stderr, "skipped: %s\n", reason);
		fflush(stderr);
		_exit(77);
	}
}

/* Before main(): no test program can forget it, and none starts a thread
 * or arms a fault point before the decision. */
__attribute__((constructor)) static void require_backend_before_main(void)
{
	vz_test_require_backend();
}

static void watchdog_fired(int sig)
{
	static const char msg[] = "veloz test watchdog: test exceeded its time bound (hang?)\n";

	(void)sig;
	if (write(2, msg, sizeof msg - 1) < 0)
		_exit(124);
	_exit(124);
}

void vz_test_watchdog(unsigned seconds)
{
	signal(SIGALRM, watchdog_fired);
	alarm(seconds);
}

uint64_t vz_test_scale(uint64_t n)
{
	const char *s = getenv("VZ_STRESS_SCALE");
	double f = s ? strtod(s, NULL) : 1.0;
	double v;

	if (!(f > 0))
		f = 1.0;
	v = (double)n * f;
	return v < 1 ? 1 : (uint64_t)v;
}

void vz_test_config(vz_config *cfg, unsigned nshards)
{
	vz_config_default(cfg);
	cfg->nshards = nshards;
	cfg->allow_shared_cpus = true;
}

uint64_t vz_test_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int vz_test_wait_flag(const volatile int *flag, double seconds)
{
	uint64_t end = vz_test_now_ns() + (uint64_t)(seconds * 1e9);

	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		if (vz_test_now_ns() > end)
			return 0;
		usleep(100);
	}
	return 1;
}

unsigned vz_test_count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	unsigned n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - (strcmp(path, "/proc/self/fd") == 0); /* the DIR's own fd */
}

static void *nothing(void *arg)
{
	return arg;
}

void vz_test_warm_up_threads(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, nothing, NULL) == 0)
		pthread_join(t, NULL);
}

static atomic_int fails;
static char fail_text[256];

void vz_test_record_fail(int line, const char *what)
{
	/* The first failure writes the text; the test thread reads it after
	 * an acquire load of `fails` (pairs with this acq_rel add). */
	if (atomic_fetch_add_explicit(&fails, 1, memory_order_acq_rel) == 0)
		snprintf(fail_text, sizeof fail_text, "line %d: %s", line, what);
}

void vz_test_assert_no_fails(void)
{
	int n = atomic_load_explicit(&fails, memory_order_acquire);

	if (n)
		fail_msg("%d check(s) failed on a shard thread, first at %s", n, fail_text);
}

void vz_test_reset_fails(void)
{
	atomic_store_explicit(&fails, 0, memory_order_relaxed);
}

unsigned vz_test_threads_settle(unsigned expected, double seconds)
{
	uint64_t end = vz_test_now_ns() + (uint64_t)(seconds * 1e9);
	unsigned n;

	while ((n = vz_test_count_entries("/proc/self/task")) > expected && vz_test_now_ns() < end)
		usleep(1000);
	return n;
}
