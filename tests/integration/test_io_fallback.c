// SPDX-License-Identifier: MIT
/*
 * The epoll fallback where io_uring is forbidden. A forked child installs
 * the same seccomp filter as tests/util/no_io_uring.c (io_uring_setup,
 * io_uring_enter and io_uring_register fail with EPERM, as under Docker's
 * default profile) and checks that selection falls back to epoll with a
 * reason naming the failure, that forcing io_uring (config, environment,
 * create) is refused with VZ_ENOSYS, and that an epoll instance works
 * there: a wake-up from another thread ends a blocking wait, a pipe read
 * completes, destroy leaks no fd. The child's own checks report through
 * its exit status (0 = all held; else the number of the failed check).
 *
 * Chooses its backends itself: VZ_TEST_BACKEND_INDEPENDENT.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include "forbid_io_uring.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/io.h"

#define CHILD_SKIP 77

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

#define CHECK(n, cond)                                                                             \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "child check %d failed: %s (reason: \"%s\")\n", n, #cond,  \
				reason);                                                           \
			_exit(n);                                                                  \
		}                                                                                  \
	} while (0)

struct rd {
	int calls, res;
};

static void rd_done(struct vz__io_op *op, int res)
{
	struct rd *r = op->user;

	r->calls++;
	r->res = res;
}

static void *waker(void *arg)
{
	/* Give the owner time to block; a wake that comes first must work
	 * too, so this only sharpens the test. */
	usleep(20000);
	return (void *)(intptr_t)vz__io_wake(NULL, arg);
}

/* Runs in the forked child; never returns. uring_here: io_uring works
 * outside the filter, so the reason must name the filter's EPERM (on a
 * machine without io_uring the earlier refusal is reported instead). */
static void child(bool uring_here)
{
	char reason[256] = "";
	enum vz__io_kind k = 0;
	struct vz__io *io = NULL;
	struct vz__io_op op;
	struct rd r = {0};
	char buf[8] = {0};
	pthread_t th;
	void *wret;
	int fds, p[2], ret;

	vz_test_watchdog(30); /* alarms are not inherited across fork */
	unsetenv("VZ_BACKEND");
	ret = vz_test_forbid_io_uring();
	if (ret < 0) {
		fprintf(stderr, "seccomp unavailable (%s): skipping\n", strerror(-ret));
		_exit(CHILD_SKIP);
	}

	CHECK(1, vz__io_select(VZ_BACKEND_AUTO, &k, reason, sizeof reason) == 0);
	CHECK(2, k == VZ__IO_EPOLL);
	CHECK(3, strstr(reason, "io_uring unavailable (") == reason);
	CHECK(3, !uring_here || strstr(reason, "(io_uring_setup: Operation not permitted"));
	CHECK(4, strstr(reason, "; using epoll"));
	CHECK(5, !strchr(reason, '\n'));
	fprintf(stderr, "child: %s\n", reason);

	CHECK(6, vz__io_select(VZ_BACKEND_IO_URING, &k, reason, sizeof reason) == VZ_ENOSYS);
	CHECK(7, !uring_here || strstr(reason, "Operation not permitted"));
	setenv("VZ_BACKEND", "io_uring", 1);
	CHECK(8, vz__io_select(VZ_BACKEND_AUTO, &k, reason, sizeof reason) == VZ_ENOSYS);
	CHECK(9, strstr(reason, "VZ_BACKEND"));
	setenv("VZ_BACKEND", "epoll", 1);
	CHECK(10, vz__io_select(VZ_BACKEND_IO_URING, &k, reason, sizeof reason) == 0);
	CHECK(11, k == VZ__IO_EPOLL);
	unsetenv("VZ_BACKEND");
	CHECK(12, vz__io_create(VZ__IO_URING, NULL, &io) == VZ_ENOSYS && io == NULL);

	fds = count_fds();
	CHECK(13, vz__io_create(VZ__IO_EPOLL, NULL, &io) == 0);
	CHECK(14, pthread_create(&th, NULL, waker, io) == 0);
	CHECK(15, vz__io_wait(io, -1) >= 0); /* > 0, or 0 for an EINTR */
	CHECK(16, pthread_join(th, &wret) == 0 && wret == NULL);
	while (vz__io_wait(io, 0) > 0)
		;

	CHECK(17, pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
	memset(&op, 0, sizeof op);
	op.opcode = VZ__IO_OP_READ;
	op.fd = p[0];
	op.buf = buf;
	op.len = sizeof buf;
	op.offset = -1;
	op.done = rd_done;
	op.user = &r;
	CHECK(18, vz__io_submit(io, &op) == 0);
	CHECK(19, vz__io_wait(io, 0) == 0 && r.calls == 0);
	CHECK(20, write(p[1], "abc", 3) == 3);
	while (r.calls == 0)
		CHECK(21, vz__io_wait(io, -1) >= 0);
	CHECK(22, r.res == 3 && memcmp(buf, "abc", 3) == 0);
	close(p[0]);
	close(p[1]);
	vz__io_destroy(io);
	CHECK(23, count_fds() == fds);
	_exit(0);
}

static void test_epoll_fallback_under_seccomp(void **state)
{
	enum vz__io_kind k = VZ__IO_EPOLL;
	int status = 0;
	pid_t pid;

	(void)state;
	unsetenv("VZ_BACKEND");
	assert_int_equal(vz__io_select(VZ_BACKEND_AUTO, &k, NULL, 0), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(k == VZ__IO_URING);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == CHILD_SKIP) {
		skip();
		return;
	}
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Outside the filter the same process still gets its normal answer: the
 * filter stayed in the child. */
static void test_parent_unaffected(void **state)
{
	char reason[256];
	enum vz__io_kind k;
	struct vz__io *io;

	(void)state;
	unsetenv("VZ_BACKEND");
	assert_int_equal(vz__io_select(VZ_BACKEND_AUTO, &k, reason, sizeof reason), 0);
	print_message("this machine: %s%s%s\n", vz__io_kind_name(k), reason[0] ? ": " : "", reason);
	assert_int_equal(vz__io_create(k, NULL, &io), 0);
	vz__io_destroy(io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_epoll_fallback_under_seccomp),
	    cmocka_unit_test(test_parent_unaffected),
	};
	int ret;

	vz_test_watchdog(60);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	vz_test_watchdog(0);
	return ret;
}
