// SPDX-License-Identifier: MIT
/*
 * Backend selection: the VZ_BACKEND override (read with the config loader's
 * own parser, vz__backend_parse()), the io_uring probe (sysctl,
 * known-bad kernels, a real ring set up with our flags, required opcodes
 * and features) and the one-line reason the runtime logs when it falls back
 * to epoll. The known-bad kernel table is the only place kernel versions
 * are judged; everything else is probed, so a kernel that backports a
 * feature is used and one that lacks it is refused whatever it calls itself.
 */
#include "io/io.h"
#include "config/config_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <liburing.h>

#include <veloz/error.h>

#define KV(a, b, c) (((unsigned)(a) << 16) | ((unsigned)(b) << 8) | (unsigned)(c))

/*
 * Kernels we refuse even if the probe below passes, [from, to) by
 * KV(major, minor, patch) with patch clamped to 255. Each entry says why; a
 * forced io_uring (config or VZ_BACKEND=io_uring) skips this table, as
 * libuv's uv__use_io_uring() lets its environment variable override its own.
 */
static const struct {
	unsigned from, to;
	const char *why;
} bad_kernels[] = {
    /* Destroy drains a ring with IORING_ASYNC_CANCEL_ANY (5.19). A flag
     * of a request, not an opcode: the opcode probe cannot see it, and an
     * older kernel answers -EINVAL and leaves the ring's operations
     * outstanding. (MSG_RING, 5.18, is probed as an opcode.) */
    {0, KV(5, 19, 0), "before 5.19, no IORING_ASYNC_CANCEL_ANY to drain a ring at shutdown"},
    /* Multishot receive (IORING_RECV_MULTISHOT, 6.0) is an ioprio flag,
     * not an opcode: the probe cannot see it, and 5.19 answers -EINVAL on
     * every actor receive (runtime/aio). */
    {0, KV(6, 0, 0), "before 6.0, no multishot receive (IORING_RECV_MULTISHOT)"},
};

/* Opcodes the io_uring backend issues. */
static const struct {
	int op;
	const char *name;
} required_ops[] = {
    {IORING_OP_MSG_RING, "IORING_OP_MSG_RING"},
    {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"},
    {IORING_OP_READ, "IORING_OP_READ"},
    {IORING_OP_WRITE, "IORING_OP_WRITE"},
    {IORING_OP_SEND, "IORING_OP_SEND"},
    {IORING_OP_RECV, "IORING_OP_RECV"},
    {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},
    {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
    {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"},
    {IORING_OP_NOP, "IORING_OP_NOP"},
    {IORING_OP_RECVMSG, "IORING_OP_RECVMSG"},
    {IORING_OP_SENDMSG, "IORING_OP_SENDMSG"},
    {IORING_OP_OPENAT, "IORING_OP_OPENAT"},
    {IORING_OP_FSYNC, "IORING_OP_FSYNC"},
};

/* Features the io_uring backend relies on. */
static const struct {
	uint32_t feat;
	const char *why;
} required_feats[] = {
    {IORING_FEAT_EXT_ARG, "no IORING_FEAT_EXT_ARG (timed wait in one syscall)"},
    {IORING_FEAT_NODROP, "no IORING_FEAT_NODROP (completions could be lost)"},
    {IORING_FEAT_RW_CUR_POS, "no IORING_FEAT_RW_CUR_POS (read/write at offset -1)"},
};

static void say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* kernel.io_uring_disabled: 0 allowed, 1 only for the io_uring_group (or
 * CAP_SYS_ADMIN), 2 disabled. -1 when the sysctl does not exist. */
static int read_disabled_sysctl(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	int v = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* The running kernel's entry in bad_kernels, or NULL. Writes the release
 * string into rel. */
static const char *kernel_refused(char *rel, size_t rel_len)
{
	struct utsname u;
	unsigned a = 0, b = 0, c = 0;
	unsigned v;

	if (uname(&u) < 0)
		return NULL;
	snprintf(rel, rel_len, "%s", u.release);
	if (sscanf(u.release, "%u.%u.%u", &a, &b, &c) < 2)
		return NULL;
	v = KV(a > 255 ? 255 : a, b > 255 ? 255 : b, c > 255 ? 255 : c);
	for (size_t i = 0; i < sizeof bad_kernels / sizeof bad_kernels[0]; i++)
		if (v >= bad_kernels[i].from && v < bad_kernels[i].to)
			return bad_kernels[i].why;
	return NULL;
}

/* Does io_uring work here the way io_uring.c uses it? 0, or -1 with a
 * short reason in why. check_table: consult bad_kernels. */
static int probe_uring(bool check_table, char *why, size_t why_len)
{
	struct io_uring ring;
	struct io_uring_probe *probe;
	uint32_t flags, features;
	char rel[128], err[128];
	const char *bad;
	int disabled = read_disabled_sysctl();
	int ret;

	if (disabled == 2) {
		say(why, why_len, "kernel.io_uring_disabled=2");
		return -1;
	}
	if (check_table && (bad = kernel_refused(rel, sizeof rel))) {
		say(why, why_len, "kernel %s refused: %s", rel, bad);
		return -1;
	}
	ret = vz__uring_setup(&ring, 8, &flags, &features);
	if (ret < 0) {
		const char *msg = strerror_r(-ret, err, sizeof err);

		say(why, why_len, "io_uring_setup: %s%s", msg,
		    disabled == 1 && ret == -EPERM
			? "; kernel.io_uring_disabled=1 allows only the io_uring_group"
			: "");
		return -1;
	}
	ret = 0;
	for (size_t i = 0; i < sizeof required_feats / sizeof required_feats[0]; i++) {
		if (!(features & required_feats[i].feat)) {
			say(why, why_len, "%s", required_feats[i].why);
			ret = -1;
			break;
		}
	}
	if (ret == 0) {
		probe = io_uring_get_probe_ring(&ring);
		if (!probe) {
			say(why, why_len, "io_uring_register(IORING_REGISTER_PROBE) failed");
			ret = -1;
		}
		for (size_t i = 0; probe && i < sizeof required_ops / sizeof required_ops[0]; i++) {
			if (!io_uring_opcode_supported(probe, required_ops[i].op)) {
				say(why, why_len, "missing opcode %s", required_ops[i].name);
				ret = -1;
				break;
			}
		}
		if (probe)
			io_uring_free_probe(probe);
	}
	io_uring_queue_exit(&ring);
	return ret;
}

static int select_kind(vz_backend_kind wanted, const char *by, enum vz__io_kind *out, char *reason,
		       size_t reason_len, char *why, size_t why_len);

/* See io.h. */
int vz__io_choose(vz_backend_kind wanted, enum vz__io_kind *out, char *reason, size_t reason_len,
		  bool *fell_back, vz_config_error *err)
{
	const char *env = getenv("VZ_BACKEND");
	const char *by = "the configuration";
	char why[200];
	int rc;

	say(reason, reason_len, "%s", "");
	if (fell_back)
		*fell_back = false;
	if (!out)
		return VZ_EINVAL;
	if (env && *env) {
		/* The loader's parser: any value a file or vz_config_apply_env()
		 * accepts is accepted here, "auto" and "EPOLL" included. */
		if (vz__backend_parse(env, &wanted) < 0) {
			say(reason, reason_len,
			    "unknown backend '%.64s' (" VZ__BACKEND_CHOICES ") (from VZ_BACKEND)",
			    env);
			if (err)
				vz__config_error(err, "", 0, "runtime.backend", "%s", reason);
			return VZ_ECONFIG;
		}
		by = "VZ_BACKEND";
	}
	rc = select_kind(wanted, by, out, reason, reason_len, why, sizeof why);
	if (rc == 0 && fell_back)
		*fell_back = wanted == VZ_BACKEND_AUTO && *out == VZ__IO_EPOLL;
	if (rc < 0 && err)
		vz__config_error(err, "", 0, "runtime.backend", "%s",
				 reason && reason[0] ? reason : "no usable I/O backend");
	return rc;
}

int vz__io_select(vz_backend_kind wanted, enum vz__io_kind *out, char *reason, size_t reason_len)
{
	return vz__io_choose(wanted, out, reason, reason_len, NULL, NULL);
}

/* The choice for `wanted` once the environment has had its say. */
static int select_kind(vz_backend_kind wanted, const char *by, enum vz__io_kind *out, char *reason,
		       size_t reason_len, char *why, size_t why_len)
{
	switch (wanted) {
	case VZ_BACKEND_EPOLL:
		*out = VZ__IO_EPOLL;
		say(reason, reason_len, "epoll forced by %s", by);
		return 0;
	case VZ_BACKEND_IO_URING:
		if (probe_uring(false, why, why_len) < 0) {
			say(reason, reason_len, "io_uring forced by %s but unavailable (%s)", by,
			    why);
			return VZ_ENOSYS;
		}
		*out = VZ__IO_URING;
		return 0;
	case VZ_BACKEND_AUTO:
		if (probe_uring(true, why, why_len) < 0) {
			*out = VZ__IO_EPOLL;
			say(reason, reason_len, "io_uring unavailable (%s); using epoll", why);
			return 0;
		}
		*out = VZ__IO_URING;
		return 0;
	}
	say(reason, reason_len, "unknown backend kind %d", (int)wanted);
	return VZ_EINVAL;
}
