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
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Install the filter on the calling thread (and its future children).
 * 0 or a negative errno value from libseccomp. */
static int forbid_io_uring(void)
{
	static const char *const calls[] = {"io_uring_setup", "io_uring_enter",
					    "io_uring_register"};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int ret = 0;

	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof calls / sizeof calls[0] && ret == 0; i++) {
		int nr = seccomp_syscall_resolve_name(calls[i]);

		/* A libseccomp that predates the call cannot name it; the
		 * kernel then cannot have it either on this arch. */
		if (nr == __NR_SCMP_ERROR)
			continue;
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
	}
	/* seccomp_load sets no_new_privs itself (SCMP_FLTATR_CTL_NNP). */
	if (ret == 0)
		ret = seccomp_load(ctx);
	seccomp_release(ctx);
	return ret;
}

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
	ret = forbid_io_uring();
	if (ret < 0) {
		fprintf(stderr, "no_io_uring: cannot install the seccomp filter: %s\n",
			strerror(-ret));
		return 125;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no_io_uring: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
