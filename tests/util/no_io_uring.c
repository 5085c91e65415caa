// SPDX-License-Identifier: MIT
/*
 * no_io_uring: run a program with io_uring forbidden, the way Docker's
 * default seccomp profile forbids it. Installs a seccomp filter that makes
 * io_uring_setup, io_uring_enter and io_uring_register fail with EPERM
 * (every other syscall allowed), then execs its arguments, which inherit
 * the filter:
 *
 *   no_io_uring ./unit_test_io_backend
 *
 * The test suite reruns runtime tests under it so the epoll fallback is
 * exercised end to end: VZ_BACKEND=io_uring then skips (exit 77), AUTO
 * must pick epoll. Exit status 125 when the filter cannot be installed,
 * 127 when the program cannot be executed (as env(1) does).
 */
#include <errno.h>
#include "forbid_io_uring.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int ret;

	if (argc < 2) {
		fprintf(stderr,
			"usage: %s PROGRAM [ARG...]\n"
			"Run PROGRAM with io_uring_setup/enter/register failing with EPERM.\n",
			argv[0]);
		return 125;
	}
	ret = vz_test_forbid_io_uring();
	if (ret < 0) {
		fprintf(stderr, "no_io_uring: cannot install the seccomp filter: %s\n",
			strerror(-ret));
		return 125;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no_io_uring: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
