// SPDX-License-Identifier: MIT
/* See forbid_io_uring.h. */
#include "forbid_io_uring.h"

#include <errno.h>
#include <seccomp.h>
#include <stddef.h>

int vz_test_forbid_io_uring(void)
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
