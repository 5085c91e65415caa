// SPDX-License-Identifier: MIT
/*
 * The io_uring implementation of the I/O backend (io.h): one ring per
 * shard, created on the shard's thread with SINGLE_ISSUER|DEFER_TASKRUN
 * when the kernel takes them (else COOP_TASKRUN, else nothing), operations
 * as SQEs whose user_data is the op pointer, timed waits as one
 * io_uring_enter with EXT_ARG, cross-shard wake-ups as IORING_OP_MSG_RING
 * sent from the waker's own ring, foreign-thread wake-ups as an eventfd
 * write that completes a read the ring keeps armed on that eventfd.
 * Wake-ups coalesce through one flag per ring so at most one wake token is
 * ever in flight towards a ring (NOTES.md, "Wake tokens").
 */
#include "io/io.h"

#include <errno.h>
#include <poll.h>
#include <limits.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include <veloz/error.h>

#include "util/clock.h"
#include "util/fault.h"

/*
 * user_data of every CQE this file can see. Op pointers are 8-aligned, so
 * the low three bits tell internal requests apart:
 *   op pointer        an operation (or &u->efd_op, the armed eventfd read)
 *   UD_WAKE           a wake token another ring posted with MSG_RING
 *   target | TAG_MSG  our own MSG_RING towards `target` (CQE on failure only)
 *   op | TAG_POLL     readiness poll before retrying an op the kernel
 *                     answered -EAGAIN (kernels that honour O_NONBLOCK)
 *   UD_CANCEL         a cancel request (CQE on failure only, ignored)
 */
#define TAG_MASK  ((uint64_t)7)
#define TAG_MSG	  ((uint64_t)2)
#define TAG_POLL  ((uint64_t)4)
#define UD_WAKE	  ((uint64_t)1)
#define UD_CANCEL ((uint64_t)3)

_Static_assert(_Alignof(struct vz__io_op) >= 8, "op pointers carry tags in their low 3 bits");

enum {
	OP_IDLE = 0,
	OP_INFLIGHT = 0x55524e47, /* "URNG": submitted, done not yet run */
	OP_POLLING = 0x55524e50,  /* "URNP": waiting for readiness to retry */
	OP_ZC_NOTIF = 0x55524e5a, /* "URNZ": SENDMSG_ZC result in, notification not */
	REAP_BATCH = 64,
	DEFAULT_ENTRIES = 256,
};

struct uring {
	struct vz__io_head head;
	struct io_uring ring;
	uint32_t flags;	   /* setup flags in use */
	uint32_t features; /* IORING_FEAT_* the kernel reported */
	int efd;	   /* foreign-thread wake-ups; blocking, read by the ring */
	uint64_t efd_buf;  /* the armed read's target */
	struct vz__io_op efd_op;
	uint32_t inflight;	      /* user operations submitted, done not yet run */
	struct io_uring_buf_ring *br; /* provided buffers (group 0), or NULL */
	size_t br_bytes;
	bool efd_armed;	 /* efd_op queued or in the kernel */
	bool efd_broken; /* the eventfd read failed unexpectedly: waits fail */
	bool send_zc;	 /* the kernel has IORING_OP_SENDMSG_ZC (probed at create) */
	bool destroying;

	/* Owner-written statistics; atomics only so vz__io_stats() may read
	 * them from any thread (single writer: plain load + store, relaxed). */
	atomic_uint_least64_t wait_syscalls;
	atomic_uint_least64_t interrupted;
	atomic_uint_least64_t ops_completed;
	atomic_uint_least64_t wakes_consumed;
	atomic_uint_least64_t sq_full;
	atomic_uint_least64_t cq_overflow;

	/* Written by every waker (any thread) and by the owner when it
	 * consumes a token: its own cache line, away from the owner's fields. */
	alignas(64) atomic_uint wake_pending;
	atomic_uint_least64_t wakes_sent;
	atomic_uint_least64_t wakes_coalesced;
	atomic_uint_least64_t wake_failures;
};

static const struct vz__io_ops uring_ops;

static struct uring *to_uring(struct vz__io *io)
{
	return (struct uring *)(void *)io;
}

static void bump(atomic_uint_least64_t *c, uint64_t n)
{
	/* Single writer (the owner): no RMW needed; relaxed because readers
	 * only want a snapshot. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* See io.h. */
int vz__uring_setup(struct io_uring *ring, uint32_t entries, uint32_t *flags, uint32_t *features)
{
	/* Best first. TASKRUN_FLAG lets a non-blocking wait skip the syscall
	 * when the kernel has no deferred work for us (it sets
	 * IORING_SQ_TASKRUN when there is). EINVAL means "flag unknown here":
	 * try the next set; anything else (EPERM, ENOSYS, ENOMEM) will not get
	 * better with fewer flags. */
	static const uint32_t sets[] = {
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
	    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	    IORING_SETUP_COOP_TASKRUN,
	    0,
	};
	int ret = -EINVAL;

	if (VZ_FAULT(VZ_FAULT_URING_SETUP_EPERM))
		return -EPERM;
	if (VZ_FAULT(VZ_FAULT_URING_SETUP_ENOSYS))
		return -ENOSYS;
	for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
		struct io_uring_params p;

		memset(&p, 0, sizeof p);
		p.flags = sets[i];
		ret = io_uring_queue_init_params(entries, ring, &p);
		if (ret == 0) {
			*flags = sets[i];
			*features = p.features;
			return 0;
		}
		if (ret != -EINVAL)
			break;
	}
	return ret;
}

/* An SQE, flushing the queue once when it is full. `faultable` lets the
 * VZ_FAULT_SQ_FULL point pretend the queue is full (user submissions only;
 * internal requests must not eat the test's injected failures). NULL when
 * the queue is still full after the flush. */
static struct io_uring_sqe *get_sqe(struct uring *u, bool faultable)
{
	struct io_uring_sqe *sqe;

	sqe = (faultable && VZ_FAULT(VZ_FAULT_SQ_FULL)) ? NULL : io_uring_get_sqe(&u->ring);
	if (sqe)
		return sqe;
	bump(&u->sq_full, 1);
	/* Hand the queued SQEs to the kernel so their slots come free. */
	(void)io_uring_submit(&u->ring);
	if (faultable && VZ_FAULT(VZ_FAULT_SQ_FULL))
		return NULL;
	return io_uring_get_sqe(&u->ring);
}

/* Keep one read armed on the eventfd (it completes when a foreign thread
 * writes it). The SQE goes to the kernel with the next enter. A blocking
 * eventfd on purpose: kernels that honour O_NONBLOCK in io_uring would
 * complete the read at once with -EAGAIN instead of waiting. */
static void arm_efd(struct uring *u)
{
	struct io_uring_sqe *sqe;

	if (u->efd_armed || u->efd_broken || u->destroying)
		return;
	sqe = get_sqe(u, false);
	if (!sqe)
		return; /* retried at the top of the next wait */
	io_uring_prep_read(sqe, u->efd, &u->efd_buf, sizeof u->efd_buf, 0);
	io_uring_sqe_set_data(sqe, &u->efd_op);
	u->efd_armed = true;
}

/* See io.h. */
int vz__uring_create(const struct vz__io_params *p, struct vz__io **out)
{
	size_t size = (sizeof(struct uring) + 63) & ~(size_t)63;
	struct uring *u = aligned_alloc(64, size);
	uint32_t entries = p->entries ? p->entries : DEFAULT_ENTRIES;
	int ret;

	if (!u)
		return VZ_ENOMEM;
	memset(u, 0, size);
	ret = vz__uring_setup(&u->ring, entries, &u->flags, &u->features);
	if (ret < 0) {
		free(u);
		if (ret == -ENOMEM)
			return VZ_ENOMEM;
		if (ret == -EMFILE || ret == -ENFILE)
			return VZ_EIO;
		return VZ_ENOSYS;
	}
	u->efd = eventfd(0, EFD_CLOEXEC);
	if (u->efd < 0) {
		io_uring_queue_exit(&u->ring);
		free(u);
		return VZ_EIO;
	}
	atomic_init(&u->wake_pending, 0);
	atomic_init(&u->wakes_sent, 0);
	atomic_init(&u->wakes_coalesced, 0);
	atomic_init(&u->wake_failures, 0);
	atomic_init(&u->wait_syscalls, 0);
	atomic_init(&u->interrupted, 0);
	atomic_init(&u->ops_completed, 0);
	atomic_init(&u->wakes_consumed, 0);
	atomic_init(&u->sq_full, 0);
	atomic_init(&u->cq_overflow, 0);
	u->head.ops = &uring_ops;
	{
		/* Once per ring: zero-copy sends exist from 6.1 on. */
		struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);

		u->send_zc = probe && io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC);
		if (probe)
			io_uring_free_probe(probe);
	}
	arm_efd(u);
	*out = (struct vz__io *)(void *)u;
	return 0;
}

/* The foreign-thread wake path: one eventfd write. Also the fallback when
 * a MSG_RING could not be sent or was refused. 0 or VZ_EIO. The eventfd is
 * blocking, so the write cannot fail with EAGAIN (it would block on a
 * saturated counter, which with at most one token in flight never
 * happens); EINTR is retried; anything else is a real failure. */
static int wake_by_eventfd(struct uring *t)
{
	uint64_t one = 1;
	ssize_t r;

	if (VZ_FAULT(VZ_FAULT_WAKE))
		return VZ_EIO;
	do
		r = write(t->efd, &one, sizeof one);
	while (r < 0 && errno == EINTR);
	/* EAGAIN: the counter is saturated, so a token is already waiting
	 * for t; that is a delivered wake (as in epoll.c). A live eventfd
	 * fails no other way, so past fault injection this never fails. */
	return r == (ssize_t)sizeof one || (r < 0 && errno == EAGAIN) ? 0 : VZ_EIO;
}

/* The token this waker owed t could not be sent: give the flag back, so the
 * next wake sends one instead of coalescing into a token that does not
 * exist (a flag left at 1 would swallow every later wake for good). An
 * exchange, not a store: acq_rel like every other write of the flag, so
 * the release sequence the owner's clear acquires from is not broken.
 * Wakers that coalesced into our attempt meanwhile were told a token is on
 * its way: our caller must retry (vz__wake() does) or re-arm its own
 * protocol (io.h). */
static int wake_failed(struct uring *t)
{
	atomic_exchange_explicit(&t->wake_pending, 0, memory_order_acq_rel);
	atomic_fetch_add_explicit(&t->wake_failures, 1, memory_order_relaxed); /* statistic */
	return VZ_EIO;
}

/* See io.h and NOTES.md ("Wake tokens"). */
static int uring_wake(struct vz__io *self_io, struct vz__io *target)
{
	struct uring *t = to_uring(target);
	struct uring *s = self_io ? to_uring(self_io) : NULL;
	struct io_uring_sqe *sqe;

	/* acq_rel: the release publishes what the caller wrote before waking
	 * (pairs with the acquire of the owner's exchange in reap(), directly
	 * or through the release sequence of later wakers' exchanges); the
	 * acquire orders us after the owner's last clear. Seeing 1 means a
	 * token is in flight or being consumed: the owner's clear comes after
	 * our exchange and will synchronise with it, so no syscall. */
	if (atomic_exchange_explicit(&t->wake_pending, 1, memory_order_acq_rel)) {
		/* Statistics: relaxed, read only as a snapshot. */
		atomic_fetch_add_explicit(&t->wakes_coalesced, 1, memory_order_relaxed);
		return 0;
	}
	atomic_fetch_add_explicit(&t->wakes_sent, 1, memory_order_relaxed); /* statistic */
	/* An injected failure stands for io_uring_submit() failing (EBUSY,
	 * EAGAIN): nothing queued, so the eventfd below carries the token. */
	if (s && !s->destroying && !VZ_FAULT(VZ_FAULT_WAKE)) {
		sqe = get_sqe(s, false);
		if (sqe) {
			io_uring_prep_msg_ring(sqe, t->ring.ring_fd, 0, UD_WAKE, 0);
			io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)t | TAG_MSG);
			/* Success needs no CQE on our side; a failure does
			 * (reap() falls back to the eventfd). */
			if (s->features & IORING_FEAT_CQE_SKIP)
				sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
			if (io_uring_submit(&s->ring) >= 0)
				return 0;
			/* Not entered (e.g. called from a thread that is not
			 * s's owner): the SQE stays queued and may still go
			 * out later, a harmless second token; wake now. */
		}
	}
	if (wake_by_eventfd(t) == 0)
		return 0;
	return wake_failed(t);
}

/* Fill sqe for op (user_data = op). */
static void prep_op(struct io_uring_sqe *sqe, struct vz__io_op *op)
{
	switch (op->opcode) {
	case VZ__IO_OP_NOP:
		io_uring_prep_nop(sqe);
		break;
	case VZ__IO_OP_READ:
		io_uring_prep_read(sqe, op->fd, op->buf, op->len, (uint64_t)op->offset);
		break;
	case VZ__IO_OP_WRITE:
		io_uring_prep_write(sqe, op->fd, op->buf, op->len, (uint64_t)op->offset);
		break;
	case VZ__IO_OP_RECV:
		if (op->flags & VZ__IO_F_BUFSEL) {
			/* len 0: the whole selected buffer. */
			if (op->flags & VZ__IO_F_MULTI)
				io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, 0);
			else
				io_uring_prep_recv(sqe, op->fd, NULL, 0, 0);
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = 0;
		} else {
			io_uring_prep_recv(sqe, op->fd, op->buf, op->len, 0);
		}
		break;
	case VZ__IO_OP_RECVMSG:
		if ((op->flags & VZ__IO_F_BUFSEL) && (op->flags & VZ__IO_F_MULTI))
			io_uring_prep_recvmsg_multishot(sqe, op->fd, (struct msghdr *)op->buf, 0);
		else
			io_uring_prep_recvmsg(sqe, op->fd, (struct msghdr *)op->buf, 0);
		if (op->flags & VZ__IO_F_BUFSEL) {
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = 0;
		}
		break;
	case VZ__IO_OP_SENDMSG:
		io_uring_prep_sendmsg(sqe, op->fd, (const struct msghdr *)op->buf, MSG_NOSIGNAL);
		break;
	case VZ__IO_OP_SENDMSG_ZC:
		io_uring_prep_sendmsg_zc(sqe, op->fd, (const struct msghdr *)op->buf, MSG_NOSIGNAL);
		break;
	case VZ__IO_OP_OPENAT:
		io_uring_prep_openat(sqe, AT_FDCWD, (const char *)op->buf, (int)op->len | O_CLOEXEC,
				     (mode_t)op->offset);
		break;
	case VZ__IO_OP_FSYNC:
		io_uring_prep_fsync(sqe, op->fd,
				    (op->flags & VZ__IO_F_DATASYNC) ? IORING_FSYNC_DATASYNC : 0);
		break;
	case VZ__IO_OP_SEND:
		io_uring_prep_send(sqe, op->fd, op->buf, op->len, MSG_NOSIGNAL);
		break;
	case VZ__IO_OP_ACCEPT:
		if (op->flags & VZ__IO_F_MULTI)
			io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL,
						       SOCK_NONBLOCK | SOCK_CLOEXEC);
		else
			io_uring_prep_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		break;
	case VZ__IO_OP_CONNECT:
		io_uring_prep_connect(sqe, op->fd, (const struct sockaddr *)op->buf, op->len);
		break;
	}
	io_uring_sqe_set_data(sqe, op);
}

/* A multishot RECVMSG result: the buffer holds a struct
 * io_uring_recvmsg_out, the sender's address (msg_namelen bytes
 * reserved), then the payload. Copy the address to the caller's msghdr and
 * point data_off at the payload; returns the payload length (or -EINVAL
 * for a result too short to hold the header). */
static int recvmsg_unpack(struct uring *u, struct vz__io_op *op, int res)
{
	struct msghdr *mh = op->buf;
	unsigned char *buf = u->head.bufs.mem + (size_t)op->bid * u->head.bufs.size;
	struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, res, mh);
	unsigned char *payload;
	unsigned int n;
	uint32_t room = mh->msg_namelen;

	if (!o)
		return -EINVAL;
	payload = io_uring_recvmsg_payload(o, mh);
	n = io_uring_recvmsg_payload_length(o, res, mh);
	memcpy(mh->msg_name, io_uring_recvmsg_name(o), o->namelen < room ? o->namelen : room);
	mh->msg_namelen = o->namelen < room ? o->namelen : room;
	op->data_off = (uint32_t)(payload - buf);
	return (int)n;
}

/* The op's callback: once for a single-shot op; for a multishot one once
 * per CQE, the last one (no IORING_CQE_F_MORE) ending it. */
static void complete_op(struct uring *u, struct vz__io_op *op, int res, uint32_t cqe_flags)
{
	op->cflags = (op->flags & VZ__IO_F_ZC_FELL_BACK) ? VZ__IO_CF_ZC_FALLBACK : 0;
	op->flags &= ~VZ__IO_F_ZC_FELL_BACK;
	op->data_off = 0;
	if (cqe_flags & IORING_CQE_F_BUFFER) {
		op->cflags |= VZ__IO_CF_BUF;
		op->bid = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
		u->head.bufs.nfree--;
		if (op->opcode == VZ__IO_OP_RECVMSG && (op->flags & VZ__IO_F_MULTI) && res >= 0)
			res = recvmsg_unpack(u, op, res);
	}
	if (cqe_flags & IORING_CQE_F_MORE) {
		op->cflags |= VZ__IO_CF_MORE;
	} else {
		u->inflight--;
		op->state = OP_IDLE;
	}
	op->res = res;
	bump(&u->ops_completed, 1);
	op->done(op, res);
}

/* An op answered -EAGAIN: the kernel honoured O_NONBLOCK on its fd (6.18
 * does not for pipes, sockets and eventfds; older kernels do). Wait for
 * readiness with a poll and retry, so both fd modes mean "complete when
 * ready", as on epoll. false when there is nothing to retry (the op then
 * completes with -EAGAIN). */
static bool poll_then_retry(struct uring *u, struct vz__io_op *op)
{
	struct io_uring_sqe *sqe;
	bool rd = op->opcode == VZ__IO_OP_READ || op->opcode == VZ__IO_OP_RECV ||
		  op->opcode == VZ__IO_OP_ACCEPT || op->opcode == VZ__IO_OP_RECVMSG;

	if (u->destroying || op->opcode == VZ__IO_OP_NOP || op->opcode == VZ__IO_OP_CONNECT ||
	    op->opcode == VZ__IO_OP_OPENAT || op->opcode == VZ__IO_OP_FSYNC)
		return false;
	sqe = get_sqe(u, false);
	if (!sqe)
		return false;
	io_uring_prep_poll_add(sqe, op->fd, rd ? POLLIN : POLLOUT);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | TAG_POLL);
	op->state = OP_POLLING;
	return true;
}

/* A CQE of a SENDMSG_ZC op, two per submission when the kernel took the
 * bytes: the result (IORING_CQE_F_MORE: a notification follows) and, once
 * the kernel no longer reads the memory, the notification
 * (IORING_CQE_F_NOTIF, same user_data). The op's done runs only at the
 * notification, with the result's value, so its caller frees or reuses
 * the memory only when that is safe; the op stays counted in inflight
 * until then, so destroy reaps every notification too. A refusal of
 * zero-copy (-EOPNOTSUPP, -EINVAL, no notification) is sent again as a
 * plain SENDMSG. 0: the CQE completes the op the ordinary way (a result
 * without notification); 1: consumed here; 2: consumed, done has run. */
static int zc_cqe(struct uring *u, struct vz__io_op *op, int res, uint32_t flags)
{
	struct io_uring_sqe *sqe;

	if (flags & IORING_CQE_F_MORE) {
		op->res = res;
		op->state = OP_ZC_NOTIF;
		return 1;
	}
	if (flags & IORING_CQE_F_NOTIF) {
		res = op->res;
		op->state = OP_INFLIGHT;
	}
	if ((res == -EOPNOTSUPP || res == -EINVAL) && !u->destroying && (sqe = get_sqe(u, false))) {
		/* Refused (the kernel posts a notification for a refusal
		 * too: the memory was never used, send it again plainly). */
		op->opcode = VZ__IO_OP_SENDMSG;
		op->flags |= VZ__IO_F_ZC_FELL_BACK;
		prep_op(sqe, op);
		return 1;
	}
	if (flags & IORING_CQE_F_NOTIF) {
		complete_op(u, op, res, 0);
		return 2;
	}
	return 0;
}

/* Run one batch of CQEs (copied out, CQ already advanced, so callbacks may
 * submit, cancel or wake freely). Returns completions + tokens consumed
 * and adds the tokens' weight to *tokens. */
static int handle_batch(struct uring *u, const uint64_t *ud, const int32_t *res, const uint32_t *fl,
			unsigned n, uint64_t *tokens)
{
	int count = 0;

	for (unsigned i = 0; i < n; i++) {
		struct vz__io_op *op;
		int zc;

		if (ud[i] == UD_WAKE) {
			(*tokens)++;
			count++;
			continue;
		}
		if (ud[i] == UD_CANCEL || ud[i] == LIBURING_UDATA_TIMEOUT)
			continue;
		if ((ud[i] & TAG_MASK) == TAG_MSG) {
			/* Our MSG_RING was refused: the target never got the
			 * token we took, so deliver it through its eventfd
			 * (the target outlives our next wait, io.h). */
			if (!u->destroying) {
				struct uring *t = (struct uring *)(uintptr_t)(ud[i] & ~TAG_MASK);

				/* A failure here has no caller to retry: the
				 * flag is given back so the next wake of t
				 * sends a token (the sleeping flag of t's
				 * shard is beyond this layer; see io.h). */
				if (wake_by_eventfd(t) < 0)
					(void)wake_failed(t);
			}
			continue;
		}
		if ((ud[i] & TAG_MASK) == TAG_POLL) {
			/* Readiness (or an error, or the poll's cancel):
			 * retry the op, or complete it with what we know. */
			struct io_uring_sqe *sqe = NULL;
			int r = res[i];

			op = (struct vz__io_op *)(uintptr_t)(ud[i] & ~TAG_MASK);
			if (r >= 0 && !u->destroying && (sqe = get_sqe(u, false))) {
				prep_op(sqe, op);
				op->state = OP_INFLIGHT;
				continue;
			}
			if (r >= 0)
				r = u->destroying ? -ECANCELED : -EAGAIN;
			count++;
			complete_op(u, op, r, 0);
			continue;
		}
		op = (struct vz__io_op *)(uintptr_t)ud[i];
		if (op == &u->efd_op) {
			u->efd_armed = false;
			if (res[i] > 0) {
				*tokens += u->efd_buf;
				count++;
			} else if (res[i] != -EINTR && res[i] != -EAGAIN && !u->destroying) {
				u->efd_broken = true;
			}
			arm_efd(u);
			continue;
		}
		if (op->opcode == VZ__IO_OP_SENDMSG_ZC && (zc = zc_cqe(u, op, res[i], fl[i]))) {
			/* 2: the notification ran done, a completion, so a
			 * blocking wait returns to let its event be handled. */
			count += zc == 2;
			continue;
		}
		if (res[i] == -EAGAIN && !(fl[i] & IORING_CQE_F_MORE) && poll_then_retry(u, op))
			continue;
		count++;
		complete_op(u, op, res[i], fl[i]);
	}
	return count;
}

/* Consume what the CQ holds (bounded by one CQ's worth so a flood of
 * completions cannot keep one wait busy forever), then clear the wake flag
 * if a token was among them. Returns completions + wake-ups consumed. */
static int reap(struct uring *u)
{
	struct io_uring_cqe *cqes[REAP_BATCH];
	uint64_t ud[REAP_BATCH];
	int32_t res[REAP_BATCH];
	uint32_t fl[REAP_BATCH];
	unsigned budget = u->ring.cq.ring_entries;
	uint64_t tokens = 0;
	int count = 0;

	if (io_uring_cq_has_overflow(&u->ring))
		bump(&u->cq_overflow, 1);
	while (budget > 0) {
		unsigned n = io_uring_peek_batch_cqe(&u->ring, cqes,
						     budget < REAP_BATCH ? budget : REAP_BATCH);

		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			ud[i] = io_uring_cqe_get_data64(cqes[i]);
			res[i] = cqes[i]->res;
			fl[i] = cqes[i]->flags;
		}
		io_uring_cq_advance(&u->ring, n);
		budget -= n;
		count += handle_batch(u, ud, res, fl, n, &tokens);
	}
	if (tokens > 0) {
		bump(&u->wakes_consumed, tokens);
		/* Only after consuming a token, so at most one is ever in
		 * flight (NOTES.md). acq_rel: the acquire pairs with the
		 * release of every waker's exchange (uring_wake()), so what
		 * they wrote before waking is visible once this wait
		 * returns; the release orders our consumption before the next
		 * waker's exchange that reads 0 and sends a new token. */
		atomic_exchange_explicit(&u->wake_pending, 0, memory_order_acq_rel);
	}
	return count;
}

/* A wait that must not block: enter the kernel only when there is
 * something to submit or deferred work to run, so an idle poll costs no
 * syscall on rings set up with TASKRUN_FLAG. */
static int enter_nowait(struct uring *u)
{
	unsigned sqf = IO_URING_READ_ONCE(*u->ring.sq.kflags);
	bool deferred = (u->flags & (IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN)) != 0;
	bool flagged = (u->flags & IORING_SETUP_TASKRUN_FLAG) != 0;

	if (io_uring_sq_ready(&u->ring) == 0 &&
	    !(sqf & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) && !(deferred && !flagged))
		return 0;
	bump(&u->wait_syscalls, 1);
	return io_uring_submit_and_get_events(&u->ring);
}

/* See io.h. */
static int uring_wait(struct vz__io *io, int64_t timeout_ns)
{
	struct uring *u = to_uring(io);
	uint64_t deadline = 0;
	int total = 0;

	if (VZ_FAULT(VZ_FAULT_WAIT_EINTR)) {
		bump(&u->interrupted, 1);
		return 0;
	}
	if (u->destroying)
		return VZ_ESTATE;
	if (timeout_ns > 0)
		deadline = vz__mono_ns() + (uint64_t)timeout_ns;
	for (;;) {
		struct io_uring_cqe *cqe;
		int ret;

		if (u->efd_broken)
			return VZ_EIO;
		arm_efd(u);
		if (timeout_ns == 0) {
			ret = enter_nowait(u);
		} else if (timeout_ns < 0) {
			bump(&u->wait_syscalls, 1);
			ret = io_uring_submit_and_wait(&u->ring, 1);
		} else {
			uint64_t now = vz__mono_ns();
			uint64_t left = deadline > now ? deadline - now : 0;
			struct __kernel_timespec ts = {
			    .tv_sec = (long long)(left / 1000000000u),
			    .tv_nsec = (long long)(left % 1000000000u),
			};

			/* One io_uring_enter with IORING_ENTER_EXT_ARG
			 * (the probe requires IORING_FEAT_EXT_ARG). */
			bump(&u->wait_syscalls, 1);
			ret = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
		}
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			return VZ_EIO;
		total += reap(u);
		if (total > 0 || timeout_ns == 0)
			return total;
		if (ret == -EINTR) {
			bump(&u->interrupted, 1);
			return 0;
		}
		/* Only internal CQEs so far: keep waiting, so 0 keeps
		 * meaning "the timeout passed". */
		if (timeout_ns > 0 && vz__mono_ns() >= deadline)
			return 0;
	}
}

/* See io.h. */
static int uring_submit(struct vz__io *io, struct vz__io_op *op)
{
	struct uring *u = to_uring(io);
	struct io_uring_sqe *sqe;

	if (u->destroying)
		return VZ_ESTATE;
	if (op->state == OP_INFLIGHT || op->state == OP_POLLING)
		return VZ_EINVAL;
	if ((unsigned)op->opcode > VZ__IO_OP_LAST)
		return VZ_EINVAL;
	if (op->opcode != VZ__IO_OP_NOP && op->opcode != VZ__IO_OP_OPENAT && op->fd < 0)
		return VZ_EINVAL;
	if ((op->flags & VZ__IO_F_BUFSEL) && !u->br)
		return VZ_EINVAL;
	if (op->opcode == VZ__IO_OP_SENDMSG_ZC && !u->send_zc)
		return VZ_EINVAL;
	if (op->state == OP_ZC_NOTIF)
		return VZ_EINVAL;
	sqe = get_sqe(u, true);
	if (!sqe)
		return VZ_EFULL;
	prep_op(sqe, op);
	op->state = OP_INFLIGHT;
	op->res = 0;
	op->next_pending = NULL;
	u->inflight++;
	return 0;
}

/* See io.h. The cancel goes to the kernel with the next enter, behind the
 * op's own SQE if that has not been submitted yet, so it always finds it
 * unless it already completed. */
static int uring_cancel(struct vz__io *io, struct vz__io_op *op)
{
	struct uring *u = to_uring(io);
	struct io_uring_sqe *sqe;

	if (op->state != OP_INFLIGHT && op->state != OP_POLLING)
		return VZ_ENOENT;
	sqe = get_sqe(u, false);
	if (!sqe)
		return VZ_EFULL;
	/* While it waits for readiness the kernel knows it by its poll. */
	io_uring_prep_cancel64(
	    sqe, (uint64_t)(uintptr_t)op | (op->state == OP_POLLING ? TAG_POLL : 0), 0);
	io_uring_sqe_set_data64(sqe, UD_CANCEL);
	if (u->features & IORING_FEAT_CQE_SKIP)
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	return 0;
}

/* See io.h. Cancel everything (IORING_ASYNC_CANCEL_ANY, 5.19+: the reason
 * for the kernel gate in select.c), then reap until every user operation
 * and the eventfd read have completed; re-issue the cancel whenever 100 ms
 * pass without a completion, for requests that were between states. */
static void uring_destroy(struct vz__io *io)
{
	struct uring *u = to_uring(io);
	bool cancel = true;

	u->destroying = true;
	while (u->inflight > 0 || u->efd_armed) {
		struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
		struct io_uring_cqe *cqe;
		struct io_uring_sqe *sqe;
		int ret;

		if (cancel) {
			sqe = get_sqe(u, false);
			if (sqe) {
				io_uring_prep_cancel64(
				    sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
				io_uring_sqe_set_data64(sqe, UD_CANCEL);
			}
		}
		ret = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
		cancel = reap(u) == 0 && ret == -ETIME;
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			break; /* the ring is unusable; closing it cancels the rest */
	}
	io_uring_queue_exit(&u->ring);
	if (u->br)
		munmap(u->br, u->br_bytes);
	close(u->efd);
	free(u);
}

/* See io.h (vz__io_bufs_init). The ring of buffer descriptors is ours to
 * allocate (liburing 2.3 has no io_uring_setup_buf_ring()): page-aligned
 * memory from mmap, registered as group 0, then every buffer added and
 * the tail published once. */
static int uring_bufs_init(struct vz__io *io)
{
	struct uring *u = to_uring(io);
	struct vz__io_bufs *b = &u->head.bufs;
	struct io_uring_buf_reg reg;
	size_t bytes = (size_t)b->n * sizeof(struct io_uring_buf);
	void *mem;
	int rc;

	mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return VZ_ENOMEM;
	u->br = mem;
	u->br_bytes = bytes;
	io_uring_buf_ring_init(u->br);
	memset(&reg, 0, sizeof reg);
	reg.ring_addr = (uint64_t)(uintptr_t)mem;
	reg.ring_entries = b->n;
	reg.bgid = 0;
	rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (rc < 0) {
		munmap(mem, bytes);
		u->br = NULL;
		return rc == -ENOMEM ? VZ_ENOMEM : VZ_EIO;
	}
	for (uint32_t i = 0; i < b->n; i++)
		io_uring_buf_ring_add(u->br, b->mem + (size_t)i * b->size, b->size,
				      (unsigned short)i, io_uring_buf_ring_mask(b->n), (int)i);
	/* A release store of the tail (inside liburing): the kernel sees the
	 * entries before it sees them counted. */
	io_uring_buf_ring_advance(u->br, (int)b->n);
	return 0;
}

/* See io.h (vz__io_buf_put): one entry at the tail, published at once
 * (release store of the tail, as above). */
static void uring_buf_put(struct vz__io *io, uint32_t bid)
{
	struct uring *u = to_uring(io);
	struct vz__io_bufs *b = &u->head.bufs;

	io_uring_buf_ring_add(u->br, b->mem + (size_t)bid * b->size, b->size, (unsigned short)bid,
			      io_uring_buf_ring_mask(b->n), 0);
	io_uring_buf_ring_advance(u->br, 1);
}

/* See io.h. */
bool vz__uring_send_zc_ok(const struct vz__io *io)
{
	return ((const struct uring *)(const void *)io)->send_zc;
}

static uint32_t uring_setup_flags(const struct vz__io *io)
{
	return ((const struct uring *)(const void *)io)->flags;
}

static void uring_stats(const struct vz__io *io, struct vz__io_stats *out)
{
	const struct uring *u = (const struct uring *)(const void *)io;

	/* Relaxed: a snapshot (io.h). */
	const struct uring *m = u;

	out->wakes_sent = atomic_load_explicit(&m->wakes_sent, memory_order_relaxed);
	out->wakes_coalesced = atomic_load_explicit(&m->wakes_coalesced, memory_order_relaxed);
	out->wake_failures = atomic_load_explicit(&m->wake_failures, memory_order_relaxed);
	out->wakes_consumed = atomic_load_explicit(&m->wakes_consumed, memory_order_relaxed);
	out->wait_syscalls = atomic_load_explicit(&m->wait_syscalls, memory_order_relaxed);
	out->interrupted = atomic_load_explicit(&m->interrupted, memory_order_relaxed);
	out->ops_completed = atomic_load_explicit(&m->ops_completed, memory_order_relaxed);
	out->sq_full = atomic_load_explicit(&m->sq_full, memory_order_relaxed);
	out->cq_overflow = atomic_load_explicit(&m->cq_overflow, memory_order_relaxed);
}

/* See io.h (vz__io_flush). */
static void uring_flush(struct vz__io *io)
{
	struct uring *u = to_uring(io);

	if (!u->destroying && io_uring_sq_ready(&u->ring) > 0) {
		bump(&u->wait_syscalls, 1);
		(void)io_uring_submit(&u->ring);
	}
}

static const struct vz__io_ops uring_ops = {
    .kind = VZ__IO_URING,
    .destroy = uring_destroy,
    .wait = uring_wait,
    .wake = uring_wake,
    .submit = uring_submit,
    .cancel = uring_cancel,
    .setup_flags = uring_setup_flags,
    .stats = uring_stats,
    .bufs_init = uring_bufs_init,
    .buf_put = uring_buf_put,
    .flush = uring_flush,
};
