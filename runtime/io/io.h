/* SPDX-License-Identifier: MIT */
/*
 * The I/O backend interface: one instance per shard, created and used on
 * the shard's own thread (io_uring SINGLE_ISSUER), except vz__io_wake(),
 * which any thread may call on any instance.
 *
 * Two implementations sit behind it (io_uring.c, epoll.c); the shard loop
 * does not know which one it has. A backend only waits, wakes and runs
 * I/O operations; the sleep/wake *protocol* (who may sleep, when a wake is
 * needed) belongs to the shard loop.
 */
#ifndef VZ_IO_H
#define VZ_IO_H

#include <stddef.h>
#include <stdint.h>

#include <veloz/config.h>

struct vz__io;

enum vz__io_kind {
	VZ__IO_URING = 1,
	VZ__IO_EPOLL = 2,
};

/* Choose the backend for `wanted`, honouring VZ_BACKEND=io_uring|epoll in
 * the environment (which wins over the config). With AUTO, probe io_uring
 * (setup with the flags we want, the opcodes we need, the
 * kernel.io_uring_disabled sysctl) and fall back to epoll, writing one line
 * saying why into reason ("" when io_uring is used). Forcing io_uring where
 * it does not work returns VZ_ENOSYS with the reason. Any thread. */
int vz__io_select(vz_backend_kind wanted, enum vz__io_kind *out, char *reason,
		  size_t reason_len);

const char *vz__io_kind_name(enum vz__io_kind kind);

struct vz__io_params {
	uint32_t entries; /* submission queue size; 0 = 256 */
};

/* Create on the owning thread. 0, VZ_ENOMEM, VZ_EIO, VZ_ENOSYS. */
int vz__io_create(enum vz__io_kind kind, const struct vz__io_params *p,
		  struct vz__io **out);
/* Cancel outstanding operations (their callbacks run with -ECANCELED),
 * close every fd, free. Owning thread. */
void vz__io_destroy(struct vz__io *io);

/* Block until vz__io_wake() is called, an operation completes, or
 * timeout_ns passes (< 0: no timeout; 0: do not block). Runs completion
 * callbacks of finished operations on this thread. Returns the number of
 * completions and wake-ups consumed (>= 0), or a negative VZ_E*. An EINTR
 * is not an error: it returns 0. Owning thread. */
int vz__io_wait(struct vz__io *io, int64_t timeout_ns);

/* Wake `target` out of vz__io_wait (or make its next wait return at once).
 * `self` is the caller's own instance when the caller is a shard (io_uring
 * then sends IORING_OP_MSG_RING from the caller's ring: no eventfd), or
 * NULL from any other thread (eventfd write). Costs one syscall. 0 or
 * VZ_EIO. */
int vz__io_wake(struct vz__io *self, struct vz__io *target);

/* One I/O operation. The caller owns the struct and keeps it alive until
 * `done` has run. `done` runs on the owning thread inside vz__io_wait()
 * with res >= 0 (bytes, or the accepted fd) or a negative errno value. */
enum vz__io_opcode {
	VZ__IO_OP_NOP = 0,
	VZ__IO_OP_READ,    /* read(fd, buf, len) at offset (-1: current) */
	VZ__IO_OP_WRITE,
	VZ__IO_OP_RECV,    /* recv(fd, buf, len, 0) */
	VZ__IO_OP_SEND,    /* send(fd, buf, len, MSG_NOSIGNAL) */
	VZ__IO_OP_ACCEPT,  /* accept4(fd, NULL, NULL, SOCK_NONBLOCK|SOCK_CLOEXEC) */
	VZ__IO_OP_CONNECT, /* connect(fd, buf as sockaddr, len) */
};

struct vz__io_op {
	enum vz__io_opcode opcode;
	int fd;
	void *buf;
	uint32_t len;
	int64_t offset;
	void (*done)(struct vz__io_op *op, int res);
	void *user;
	/* backend-private */
	struct vz__io_op *next_pending;
	uint32_t state;
};

/* Queue an operation; it starts no later than the next vz__io_wait(). 0,
 * VZ_EFULL (submission queue full even after a flush), VZ_EINVAL.
 * Owning thread. */
int vz__io_submit(struct vz__io *io, struct vz__io_op *op);

/* Ask for an operation to stop early; its `done` still runs exactly once
 * (with -ECANCELED if it was stopped). 0, VZ_ENOENT if not outstanding. */
int vz__io_cancel(struct vz__io *io, struct vz__io_op *op);

/* Setup flags in use (io_uring setup flags; 0 for epoll), for reports. */
uint32_t vz__io_setup_flags(const struct vz__io *io);

#endif
