// SPDX-License-Identifier: MIT
/* See testutil.h. */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
