/* SPDX-License-Identifier: MIT */
/*
 * The I/O backend interface: one instance per shard, created and used on
 * the shard's own thread (io_uring SINGLE_ISSUER), except vz__io_wake(),
 * which any thread may call on any instance, and vz__io_stats(), which any
 * thread may read.
 *
 * Two implementations sit behind it (io_uring.c, epoll.c); the shard loop
 * does not know which one it has. A backend only waits, wakes and runs
 * I/O operations; the sleep/wake *protocol* (who may sleep, when a wake is
 * needed) belongs to the shard loop. Design notes: NOTES.md beside this file.
 */
#ifndef VZ_IO_H
#define VZ_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <veloz/config.h>

struct vz__io;

enum vz__io_kind {
	VZ__IO_URING = 1,
	VZ__IO_EPOLL = 2,
	VZ__IO_SIM = 3, /* a simulated runtime's backend (runtime/sim/sim_io.c) */
};

/* Choose the backend for `wanted`, honouring VZ_BACKEND=auto|io_uring|epoll
 * (any case, parsed by vz__backend_parse() like the config file's key) in
 * the environment (which wins over the config; an empty value counts as
 * unset, any other value returns VZ_ECONFIG with the reason). With AUTO,
 * probe io_uring (the kernel.io_uring_disabled sysctl, the known-bad kernel
 * table in select.c, setup with the flags we want, the opcodes and features
 * we need) and fall back to epoll, writing one line saying why into reason
 * ("" when io_uring is used), e.g.
 *   "io_uring unavailable (io_uring_setup: Operation not permitted); using epoll".
 * Forcing io_uring (config or environment) skips the known-bad kernel table
 * but not the functional probe; where it does not work it returns VZ_ENOSYS
 * with the reason. Forcing epoll never fails and says so in reason.
 * reason may be NULL when reason_len is 0. Any thread. */
int vz__io_select(vz_backend_kind wanted, enum vz__io_kind *out, char *reason, size_t reason_len);

/* vz__io_select() as runtime creation and veloz-topo use it: also sets
 * *fell_back (may be NULL) when the choice was AUTO (config and
 * environment) and io_uring did not work, i.e. when the one-line notice is
 * due; and on failure fills *err (may be NULL) with key "runtime.backend"
 * and the reason, so create can say why it refused. */
int vz__io_choose(vz_backend_kind wanted, enum vz__io_kind *out, char *reason, size_t reason_len,
		  bool *fell_back, vz_config_error *err);

/* "io_uring", "epoll", or "unknown". Any thread. */
const char *vz__io_kind_name(enum vz__io_kind kind);

struct vz__io_params {
	uint32_t entries; /* submission queue size; 0 = 256 */
};

/* Create on the owning thread. 0, VZ_ENOMEM, VZ_EIO, VZ_ENOSYS (io_uring
 * refused by the kernel: ENOSYS, EPERM, ...), VZ_EINVAL (unknown kind). */
int vz__io_create(enum vz__io_kind kind, const struct vz__io_params *p, struct vz__io **out);
/* Cancel outstanding operations, close every fd, free. Each outstanding
 * operation's callback runs exactly once, before this returns: with
 * -ECANCELED, or with its real result when the kernel had already finished
 * it (an accepted fd or received bytes are never silently dropped).
 * Callbacks that run here may not submit (VZ_ESTATE). Owning thread. No
 * wake may target the instance once destruction has begun (see
 * vz__io_wake()). */
void vz__io_destroy(struct vz__io *io);

/* Block until vz__io_wake() is called, an operation completes, or
 * timeout_ns passes (< 0: no timeout; 0: do not block). Runs completion
 * callbacks of finished operations on this thread. Returns the number of
 * completions and wake-ups consumed (>= 0), or a negative VZ_E*. An EINTR
 * is not an error: it returns 0 (and counts in vz__io_stats().interrupted;
 * note that io_uring's own task work, e.g. the teardown of any ring of the
 * thread, can interrupt a wait without a signal). Apart from EINTR, 0 means
 * the timeout passed: the wait never returns 0 before timeout_ns (it may
 * return > 0 early, for a completion or a wake). Owning thread; callbacks must not call
 * vz__io_wait() or vz__io_destroy() on the same instance. */
int vz__io_wait(struct vz__io *io, int64_t timeout_ns);

/* Wake `target` out of vz__io_wait (or make its next wait return at once).
 * `self` is the caller's own instance when the caller is a shard (io_uring
 * then sends IORING_OP_MSG_RING from the caller's ring: no eventfd), or
 * NULL from any other thread (eventfd write). Costs at most one syscall,
 * none when a wake is already pending on target (wakes coalesce, so stale
 * wake-ups never pile up). 0 or VZ_EIO.
 *
 * VZ_EIO: no token could be sent (io_uring: the MSG_RING could not be
 * submitted and the eventfd write failed too; epoll: the eventfd write
 * failed). Nothing is left pending: the coalescing flag is cleared, so the
 * next call tries again rather than counting on a token that does not
 * exist, and the failure is counted (vz__io_stats().wake_failures). A call
 * that coalesced into the failed attempt meanwhile was told 0; so the
 * caller that gets VZ_EIO must retry or otherwise make sure the target is
 * woken (vz__wake() retries and then hands the duty to the next sender).
 * A MSG_RING the kernel refuses later is retried through the eventfd from
 * the sender's next wait; if that write fails too, the flag is cleared the
 * same way but nobody retries (no caller is left to tell), and since the
 * target's shard-level sleeping flag was already taken, later senders do
 * not wake it either until it wakes by itself (timer, stop).
 *
 * When a wake can fail at all: an eventfd write that finds the counter
 * saturated (EAGAIN) means a token is already waiting, which both backends
 * count as delivered; a live eventfd fails no other way. So VZ_EIO, and the
 * losses above, come only from fault injection (VZ_FAULT_WAKE) or an
 * eventfd broken under us. A foreign poster whose vz__wake() fails for
 * good likewise hands the duty to the next sender and returns 0 (its
 * message is queued): with no later sender the target sleeps until a
 * timer or stop wakes it. The tests inject both cases; a blocking retry in
 * vz_post was rejected because a wake that fails for good would then hang
 * the engine's thread instead.
 *
 * Guarantee: when this returns, the target's current or next vz__io_wait()
 * returns promptly (> 0), and everything the caller wrote before the call
 * happens-before the target's return from that wait (the wake flag is
 * exchanged acq_rel on both sides, see NOTES.md).
 *
 * Lifetime: target must stay alive while any thread may wake it. A
 * shard's MSG_RING that the kernel refuses is retried through the target's
 * eventfd from the sender's next vz__io_wait(), so a target must also
 * outlive the next wait of every shard that woke it (stop all shard loops
 * before destroying any instance). */
int vz__io_wake(struct vz__io *self, struct vz__io *target);

/* One I/O operation. The caller owns the struct and keeps it alive until
 * `done` has run. Zero the struct before its first submit (the backend
 * fields must start at 0); it may be resubmitted from its own `done`.
 * `done` runs on the owning thread inside vz__io_wait() (or
 * vz__io_destroy()) with res >= 0 (bytes, or the accepted fd) or a negative
 * errno value. The fd should be non-blocking: the io_uring backend accepts
 * either mode, the epoll backend switches a blocking fd to O_NONBLOCK before
 * its first operation (as libuv does). Several operations may be
 * outstanding on one fd; those in the same direction (read side: READ,
 * RECV, ACCEPT; write side: WRITE, SEND, CONNECT) are started in
 * submission order. */
enum vz__io_opcode {
	VZ__IO_OP_NOP = 0,
	VZ__IO_OP_READ, /* read(fd, buf, len) at offset (-1: current) */
	VZ__IO_OP_WRITE,
	VZ__IO_OP_RECV,	   /* recv(fd, buf, len, 0) */
	VZ__IO_OP_SEND,	   /* send(fd, buf, len, MSG_NOSIGNAL) */
	VZ__IO_OP_ACCEPT,  /* accept4(fd, NULL, NULL, SOCK_NONBLOCK|SOCK_CLOEXEC) */
	VZ__IO_OP_CONNECT, /* connect(fd, buf as sockaddr, len) */
	VZ__IO_OP_RECVMSG, /* recvmsg(fd, buf as msghdr, 0): read side */
	VZ__IO_OP_SENDMSG, /* sendmsg(fd, buf as msghdr, MSG_NOSIGNAL): write side */
	VZ__IO_OP_OPENAT,  /* openat(AT_FDCWD, buf as path, len as flags | O_CLOEXEC,
			      offset as mode); fd unused. res: the new fd */
	VZ__IO_OP_FSYNC,   /* fsync(fd), fdatasync with VZ__IO_F_DATASYNC */
	/* SENDMSG without copying the bytes (io_uring IORING_OP_SENDMSG_ZC;
	 * only where vz__io_send_zc_ok(), else VZ_EINVAL): write side. The
	 * kernel reads the iovecs' memory until its notification, so done
	 * runs once, after both the result and the notification: until then
	 * the memory must stay put. Where the kernel refuses zero-copy for
	 * this socket (-EOPNOTSUPP, -EINVAL) the backend sends it as a plain
	 * SENDMSG and sets VZ__IO_CF_ZC_FALLBACK. */
	VZ__IO_OP_SENDMSG_ZC,
};
#define VZ__IO_OP_LAST VZ__IO_OP_SENDMSG_ZC

/* vz__io_op.flags (in). */
#define VZ__IO_F_BUFSEL                                                                            \
	0x1u /* RECV, RECVMSG: the backend picks one of its provided buffers                       \
		(vz__io_bufs_init()) when data arrives; buf (RECVMSG: iov[0]) is                   \
		ignored. The completion has VZ__IO_CF_BUF and bid set, or res                      \
		-ENOBUFS when none was free. */
#define VZ__IO_F_MULTI                                                                             \
	0x2u		       /* ACCEPT, RECV with BUFSEL: multishot. done runs once per          \
				  result, with VZ__IO_CF_MORE on every call but the last; the op   \
				  stays outstanding until that last call (an error, end of stream, \
				  -ENOBUFS, a cancel, or the backend's own choice to stop: the     \
				  caller re-arms if it still wants more). */
#define VZ__IO_F_DATASYNC 0x4u /* FSYNC: fdatasync */
/* Backend-private: a SENDMSG_ZC resent as SENDMSG (io_uring.c). */
#define VZ__IO_F_ZC_FELL_BACK 0x80000000u

/* vz__io_op.cflags (out, set before each done call). */
#define VZ__IO_CF_MORE	      0x1u /* a multishot op: more results follow */
#define VZ__IO_CF_BUF	      0x2u /* bid names the provided buffer holding the data */
#define VZ__IO_CF_ZC_FALLBACK 0x4u /* SENDMSG_ZC: the kernel refused zero-copy; sent as SENDMSG */

struct vz__io_op {
	enum vz__io_opcode opcode;
	int fd;
	void *buf;
	uint32_t len;
	int64_t offset;
	void (*done)(struct vz__io_op *op, int res);
	void *user;
	uint32_t flags;	 /* VZ__IO_F_* */
	uint32_t cflags; /* VZ__IO_CF_*, out */
	uint32_t bid;	 /* out, with VZ__IO_CF_BUF */
	/* out, with VZ__IO_CF_BUF: where the data starts in that buffer (0
	 * but for io_uring's multishot RECVMSG, whose buffers begin with a
	 * header and the sender's address). For RECVMSG the sender's address
	 * is in the msghdr's msg_name / msg_namelen when done runs, on both
	 * backends; the caller restores msg_namelen to its room before the
	 * next result. */
	uint32_t data_off;
	/* backend-private */
	struct vz__io_op *next_pending;
	uint32_t state;
	int32_t res;
};

/* Queue an operation; it starts no later than the next vz__io_wait(). 0,
 * VZ_EFULL (submission queue full even after a flush; nothing queued),
 * VZ_EINVAL (unknown opcode, fd < 0 for an opcode that needs one, op
 * already outstanding), VZ_ESTATE (instance being destroyed), VZ_ENOMEM
 * (epoll: per-fd bookkeeping). On error nothing changes and `done` will
 * not run. Owning thread. */
int vz__io_submit(struct vz__io *io, struct vz__io_op *op);

/* Ask for an operation to stop early; its `done` still runs exactly once
 * (with -ECANCELED if it was stopped, with its real result if it had
 * already finished). 0, VZ_ENOENT if not outstanding, VZ_EFULL (io_uring:
 * no room for the cancel request even after a flush; try again after a
 * wait). Owning thread. */
int vz__io_cancel(struct vz__io *io, struct vz__io_op *op);

/*
 * Provided receive buffers: `nbufs` (a power of two, at most 32768) buffers
 * of `size` bytes each, allocated (and freed at destroy) by the instance,
 * all free at first. Ops with VZ__IO_F_BUFSEL take one when data arrives
 * (io_uring: a registered buffer ring, group 0; epoll: a free stack) and
 * the caller gives it back with vz__io_buf_put() when done with the bytes.
 * Once per instance: 0, VZ_ESTATE (already set up), VZ_EINVAL, VZ_ENOMEM,
 * VZ_EIO (the kernel refused the ring). Owning thread.
 */
int vz__io_bufs_init(struct vz__io *io, uint32_t nbufs, uint32_t size);
/* Address of buffer bid; NULL before vz__io_bufs_init(). Owning thread. */
void *vz__io_buf_addr(struct vz__io *io, uint32_t bid);
/* Hand buffer bid back for receiving. Owning thread. */
void vz__io_buf_put(struct vz__io *io, uint32_t bid);
/* Buffers free for receiving now (approximate on io_uring: the kernel may
 * be taking one). Owning thread. */
uint32_t vz__io_bufs_free(const struct vz__io *io);

/* Hand queued submissions to the kernel now (io_uring; epoll: nothing to
 * do), e.g. before closing an fd that a queued submission names, so the
 * number is resolved before it can be reused. Allowed inside callbacks.
 * Owning thread. */
void vz__io_flush(struct vz__io *io);

/* Does this instance take VZ__IO_OP_SENDMSG_ZC (io_uring whose kernel
 * has IORING_OP_SENDMSG_ZC, probed once at create)? Owning thread. */
bool vz__io_send_zc_ok(const struct vz__io *io);
bool vz__uring_send_zc_ok(const struct vz__io *io);

/* Setup flags in use (io_uring setup flags; 0 for epoll), for reports. */
uint32_t vz__io_setup_flags(const struct vz__io *io);

/* Which implementation an instance is. Any thread. */
enum vz__io_kind vz__io_kind_of(const struct vz__io *io);

/* Counters for benchmarks and tests ("count what should not happen").
 * Read with relaxed loads: a snapshot, exact only when the instance is
 * quiescent. Any thread. */
struct vz__io_stats {
	uint64_t wakes_sent;	  /* wake calls that made a syscall (MSG_RING or eventfd write) */
	uint64_t wakes_coalesced; /* wake calls that found a wake pending: no syscall */
	uint64_t wake_failures;	  /* wake calls whose token could not be sent (VZ_EIO) */
	uint64_t wakes_consumed;  /* wake tokens consumed by vz__io_wait() */
	uint64_t wait_syscalls;	  /* epoll_wait / io_uring_enter requests made by vz__io_wait() */
	uint64_t interrupted;	  /* waits that returned 0 early for EINTR (real or injected) */
	uint64_t ops_completed;	  /* operation callbacks run */
	uint64_t sq_full;	  /* io_uring: submission queue found full */
	uint64_t cq_overflow;	  /* io_uring: waits that found the CQ overflowed */
};
void vz__io_stats(const struct vz__io *io, struct vz__io_stats *out);

/* ---- Implementation side: io.c, select.c, io_uring.c, epoll.c only. ---- */

/* Every implementation's instance begins with this header; io.c
 * dispatches through it. Immutable after create. */
struct vz__io_ops {
	enum vz__io_kind kind;
	void (*destroy)(struct vz__io *io);
	int (*wait)(struct vz__io *io, int64_t timeout_ns);
	int (*wake)(struct vz__io *self, struct vz__io *target);
	int (*submit)(struct vz__io *io, struct vz__io_op *op);
	int (*cancel)(struct vz__io *io, struct vz__io_op *op);
	uint32_t (*setup_flags)(const struct vz__io *io);
	void (*stats)(const struct vz__io *io, struct vz__io_stats *out);
	int (*bufs_init)(struct vz__io *io); /* head.bufs is filled; register them */
	void (*buf_put)(struct vz__io *io, uint32_t bid);
	void (*flush)(struct vz__io *io);
};

/* The provided buffers (vz__io_bufs_init()), kept by io.c for both
 * implementations; nfree counts buffers the caller has put back and the
 * backend has not handed out since (epoll: exact; io_uring: the ring's
 * tail minus the buffers seen in completions). */
struct vz__io_bufs {
	unsigned char *mem;
	uint32_t n, size;
	uint32_t nfree;
	uint32_t *stack; /* epoll: free bids */
};

struct vz__io_head {
	const struct vz__io_ops *ops;
	struct vz__io_bufs bufs;
};

int vz__uring_create(const struct vz__io_params *p, struct vz__io **out);
int vz__epoll_create(const struct vz__io_params *p, struct vz__io **out);

struct io_uring;
/* Set up `ring` with the best flags this kernel accepts, in order:
 * SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG, SINGLE_ISSUER|DEFER_TASKRUN,
 * COOP_TASKRUN|TASKRUN_FLAG, COOP_TASKRUN, none (EINVAL moves to the next
 * set; any other error stops). Honours the VZ_FAULT_URING_SETUP_* points.
 * Returns 0 with *flags and *features set, or a negative errno value (for
 * messages: it is the errno io_uring_setup failed with). Used by the probe
 * and by create so both see the same kernel answer. Any thread; the ring
 * belongs to the calling thread (SINGLE_ISSUER). */
int vz__uring_setup(struct io_uring *ring, uint32_t entries, uint32_t *flags, uint32_t *features);

#endif
