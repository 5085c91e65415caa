/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the test programs: bounded time (a watchdog that fails
 * the test instead of letting it hang), stress sizes scaled by the
 * VZ_STRESS_SCALE environment variable, a small-runtime config, and the
 * one place that decides a backend variant cannot run here (skip, 77).
 */
#ifndef VZ_TESTUTIL_H
#define VZ_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <veloz.h>

/* Exit 77 (CTest's SKIP_RETURN_CODE), printing "skipped: <reason>" to
 * stderr, when the environment forces a backend this machine cannot give:
 * VZ_BACKEND=io_uring where the probe refuses io_uring (the
 * kernel.io_uring_disabled sysctl, a seccomp filter such as Docker's
 * default, no CAP_SYS_ADMIN under io_uring_disabled=1, an old kernel).
 * Returns when the variant can run, including when VZ_BACKEND is unset or
 * names epoll. Every test program runs it before main() (a constructor in
 * testutil.c, linked into each program), so the decision is made here and
 * not by each test; a program may call it again, it is idempotent. */
void vz_test_require_backend(void);

/* Abort the process with a message if it is still running after `seconds`
 * (a hang is a failure, never a pass). Call again to re-arm; 0 disarms. */
void vz_test_watchdog(unsigned seconds);

/* n scaled by VZ_STRESS_SCALE (a float, default 1.0; CI may lower it). Never
 * less than 1. */
uint64_t vz_test_scale(uint64_t n);

/* Defaults with `nshards` shards that may share CPUs, so tests with more
 * shards than CPUs run anywhere. Backend from VZ_BACKEND (the test runner
 * sets it). */
void vz_test_config(vz_config *cfg, unsigned nshards);

/* Entries in a /proc directory, e.g. "/proc/self/fd" (open fds, not
 * counting the one used to read it) or "/proc/self/task" (threads): the
 * baseline for "no leaked fd or thread" checks. Fails the test if the
 * directory cannot be read. */
unsigned vz_test_count_entries(const char *path);

/* Threads of this process once every joined thread is really gone:
 * pthread_join() returns when the kernel clears the thread's tid, a moment
 * before its /proc/self/task entry disappears, so a count read right after
 * a join may still see it. Waits (up to `seconds`) for the count to fall to
 * `expected` and returns the last count read. Not a speed check: a thread
 * that is never reaped still fails the caller's assertion. */
unsigned vz_test_threads_settle(unsigned expected, double seconds);

/* Sanitizer runtimes start a helper thread with the first pthread_create:
 * start it before taking a thread-count baseline. */
void vz_test_warm_up_threads(void);

/* Monotonic clock in ns. */
uint64_t vz_test_now_ns(void);

/* Spin/sleep until *flag (read with acquire) is nonzero or `seconds` pass.
 * Returns 1 when it became nonzero, 0 on timeout. */
int vz_test_wait_flag(const volatile int *flag, double seconds);

/* Checks made on shard threads, where a cmocka assertion must not run:
 * VZ_TEST_CHECK(cond) records a failed condition (the first one's line and
 * text are kept), and the test thread calls vz_test_assert_no_fails() to
 * fail the current test if any was recorded. vz_test_reset_fails() clears
 * the record between tests. Any thread. */
void vz_test_record_fail(int line, const char *what);
void vz_test_assert_no_fails(void);
void vz_test_reset_fails(void);
#define VZ_TEST_CHECK(cond)                                                                        \
	do {                                                                                       \
		if (!(cond))                                                                       \
			vz_test_record_fail(__LINE__, #cond);                                      \
	} while (0)

#endif
