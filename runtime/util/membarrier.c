// SPDX-License-Identifier: MIT
/*
 * Choosing the sleep fence (util/membarrier.h) and the runtime's only
 * membarrier() call (the shard's sleep and the worker pools' rare sides).
 * The probe runs at every runtime create (and at every pool set created
 * outside a runtime): registration is per process and idempotent, so a
 * second runtime, or one created after a seccomp filter was installed,
 * learns the truth for itself.
 */
#include "util/membarrier.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <veloz/error.h>

#include "util/fault.h"

static void say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static long sys_membarrier(int cmd)
{
#ifdef SYS_membarrier
	return syscall(SYS_membarrier, cmd, 0u, 0);
#else
	(void)cmd;
	errno = ENOSYS;
	return -1;
#endif
}

#ifndef VZ__TSAN
/* Can this process use MEMBARRIER_CMD_PRIVATE_EXPEDITED? Registers it when
 * it can. 0, or -1 with why in `why`. */
static int probe(char *why, size_t why_len)
{
	long cmds;

	if (VZ_FAULT(VZ_FAULT_MEMBARRIER_EPERM)) {
		say(why, why_len, "membarrier: %s (injected)", strerror(EPERM));
		return -1;
	}
	cmds = sys_membarrier(MEMBARRIER_CMD_QUERY);
	if (cmds < 0) {
		say(why, why_len, "membarrier query: %s", strerror(errno));
		return -1;
	}
	if (!(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) ||
	    !(cmds & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)) {
		say(why, why_len, "kernel lacks MEMBARRIER_CMD_PRIVATE_EXPEDITED (query 0x%lx)",
		    cmds);
		return -1;
	}
	if (sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) < 0) {
		say(why, why_len, "membarrier register: %s", strerror(errno));
		return -1;
	}
	/* A filter may allow the query and the registration but not the
	 * barrier itself: try it once. */
	if (sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) < 0) {
		say(why, why_len, "membarrier: %s", strerror(errno));
		return -1;
	}
	return 0;
}
#endif

int vz__sleep_fence_choose(enum vz__sleep_fence *out, char *reason, size_t reason_len,
			   bool *fell_back)
{
	const char *env = secure_getenv("VZ_SLEEP_FENCE");

	say(reason, reason_len, "%s", "");
	*out = VZ__SLEEP_FENCE_FENCE;
	*fell_back = false;
	if (env && *env && strcmp(env, "auto") != 0 && strcmp(env, "membarrier") != 0 &&
	    strcmp(env, "fence") != 0) {
		say(reason, reason_len,
		    "unknown sleep fence '%.64s' (auto, membarrier, fence) (from VZ_SLEEP_FENCE)",
		    env);
		return VZ_ECONFIG;
	}
	if (env && strcmp(env, "fence") == 0) {
		say(reason, reason_len, "fence forced by VZ_SLEEP_FENCE");
		return 0;
	}
#ifdef VZ__TSAN
	/* ThreadSanitizer sees no ordering from membarrier(): keep the
	 * handshake it can check (util/fence.h). */
	say(reason, reason_len, "fence: membarrier is invisible to ThreadSanitizer");
	return 0;
#else
	char why[160];

	if (probe(why, sizeof why) < 0) {
		if (env && strcmp(env, "membarrier") == 0) {
			say(reason, reason_len,
			    "membarrier forced by VZ_SLEEP_FENCE but unavailable (%s)", why);
			return VZ_ENOSYS;
		}
		say(reason, reason_len, "membarrier unavailable (%s); using fence", why);
		*fell_back = true;
		return 0;
	}
	*out = VZ__SLEEP_FENCE_MEMBARRIER;
	return 0;
#endif
}

/* Per thread, so a test can count what one shard's sleep cost without
 * the pool workers' own sleeps; a plain increment next to a system call. */
static _Thread_local uint64_t membarrier_calls;

int vz__membarrier_heavy(void)
{
	membarrier_calls++;
	return sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) < 0 ? VZ_EIO : 0;
}

uint64_t vz__membarrier_calls(void)
{
	return membarrier_calls;
}

const char *vz__sleep_fence_name(enum vz__sleep_fence f)
{
	return f == VZ__SLEEP_FENCE_MEMBARRIER ? "membarrier" : "fence";
}
