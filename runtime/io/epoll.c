// SPDX-License-Identifier: MIT
/*
 * The epoll implementation of the I/O backend (io.h), for kernels or
 * sandboxes without io_uring: the same semantics through readiness and
 * non-blocking syscalls. An operation is tried at once when nothing is
 * queued ahead of it on its fd and direction; if it would block it waits
 * in a per-fd FIFO (read side, write side) and the fd is registered
 * (level-triggered) for exactly the directions that have waiters. Results
 * go to a completed list whose callbacks run in the next vz__io_wait(),
 * never inside vz__io_submit(). Wake-ups, from shards and foreign threads
 * alike, are an eventfd write, coalesced through one flag as in
 * io_uring.c (NOTES.md, "Wake tokens").
 */
#include "io/io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <veloz/error.h>

#include "util/clock.h"
#include "util/fault.h"

enum {
	OP_IDLE = 0,
	OP_QUEUED = 0x45505155,	    /* "EPQU": waiting in an fd queue */
	OP_CONNECTING = 0x45504343, /* "EPCC": queued, connect() in progress */
	OP_DONE = 0x4550444e,	    /* "EPDN": result in op->res, done pending */
	OP_FILE = 0x45504649,	    /* "EPFI": with the file helper thread */
	MAX_EVENTS = 64,
	/* Results a multishot op may produce per readiness event: a busy
	 * socket gives the others their turn after this many (level
	 * triggered, so it is reported again by the next wait). */
	MULTI_BATCH = 16,
};

#define EFD_KEY	 UINT64_MAX	  /* epoll data of the wake eventfd; fds are >= 0 */
#define FEFD_KEY (UINT64_MAX - 1) /* the file helper's "results are waiting" eventfd */

/*
 * Blocking file operations. A regular file has no readiness (epoll_ctl
 * refuses it) and its read, write, fsync and open may block for as long
 * as the disk takes, so they run on one helper thread per instance,
 * started at the first such operation. Handing over and back is under
 * `mu`: the owner appends to `todo` and signals `cv`; the helper runs the
 * syscall, appends the op (result in op->res) to `done` and writes the
 * eventfd `efd`, which the owner's epoll set holds (FEFD_KEY); the owner's
 * wait then takes `done` under `mu`. The mutex orders every field of an
 * op handed over (the owner's writes before the append, the helper's
 * op->res before its append), so no atomics are needed here.
 */
struct files {
	pthread_t thread;
	bool started;
	int efd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct vz__io_op *todo_head, *todo_tail; /* guarded by mu */
	struct vz__io_op *done_head, *done_tail; /* guarded by mu */
	bool stop;				 /* guarded by mu */
	uint32_t busy;				 /* owner-only: ops handed over, not back */
};

/* Per-fd bookkeeping, indexed by fd number; lives until destroy, so an
 * event that names an fd whose ops are gone finds empty queues. */
struct fdent {
	struct vz__io_op *rd_head, *rd_tail; /* READ, RECV, ACCEPT */
	struct vz__io_op *wr_head, *wr_tail; /* WRITE, SEND, CONNECT */
	uint32_t registered;		     /* events in the epoll set; 0 = not in it */
	bool nb_checked;		     /* O_NONBLOCK ensured since it became busy */
};

struct ep {
	struct vz__io_head head;
	int epfd;
	int efd;	   /* wake eventfd, non-blocking */
	struct fdent *fds; /* fds[fd] for fd < nfds */
	size_t nfds;
	struct vz__io_op *done_head, *done_tail; /* results waiting for their callback */
	int multi_done; /* multishot callbacks run by process_fd() in this wait */
	struct files files;
	bool destroying;
	bool no_pwait2; /* epoll_pwait2 is missing (ENOSYS) or refused: ms waits */

	/* Owner-written statistics (see io_uring.c for the pattern). */
	atomic_uint_least64_t wait_syscalls;
	atomic_uint_least64_t interrupted;
	atomic_uint_least64_t ops_completed;
	atomic_uint_least64_t wakes_consumed;

	/* Written by every waker and by the owner: own cache line. */
	alignas(64) atomic_uint wake_pending;
	atomic_uint_least64_t wakes_sent;
	atomic_uint_least64_t wakes_coalesced;
	atomic_uint_least64_t wake_failures;
};

static const struct vz__io_ops ep_ops;

static struct ep *to_ep(struct vz__io *io)
{
	return (struct ep *)(void *)io;
}

static void bump(atomic_uint_least64_t *c, uint64_t n)
{
	/* Single writer (the owner), relaxed: readers want a snapshot. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static bool read_side(enum vz__io_opcode opc)
{
	return opc == VZ__IO_OP_READ || opc == VZ__IO_OP_RECV || opc == VZ__IO_OP_ACCEPT ||
	       opc == VZ__IO_OP_RECVMSG;
}

/* A provided buffer for a VZ__IO_F_BUFSEL op, or -1 when none is free. */
static int take_buf(struct ep *e)
{
	struct vz__io_bufs *b = &e->head.bufs;

	if (!b->nfree)
		return -1;
	return (int)b->stack[--b->nfree];
}

/* Undo take_buf() (the receive would block). Not vz__io_buf_put(): the
 * caller never saw the buffer. */
static void untake_buf(struct ep *e, int bid)
{
	struct vz__io_bufs *b = &e->head.bufs;

	b->stack[b->nfree++] = (uint32_t)bid;
}

/* See io.h. */
int vz__epoll_create(const struct vz__io_params *p, struct vz__io **out)
{
	size_t size = (sizeof(struct ep) + 63) & ~(size_t)63;
	struct ep *e = aligned_alloc(64, size);
	struct epoll_event ev;

	(void)p; /* no submission queue to size */
	if (!e)
		return VZ_ENOMEM;
	memset(e, 0, size);
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (e->epfd < 0) {
		free(e);
		return errno == ENOMEM ? VZ_ENOMEM : VZ_EIO;
	}
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0) {
		close(e->epfd);
		free(e);
		return VZ_EIO;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.u64 = EFD_KEY;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->efd, &ev) < 0) {
		close(e->efd);
		close(e->epfd);
		free(e);
		return VZ_EIO;
	}
	atomic_init(&e->wake_pending, 0);
	atomic_init(&e->wakes_sent, 0);
	atomic_init(&e->wakes_coalesced, 0);
	atomic_init(&e->wake_failures, 0);
	atomic_init(&e->wait_syscalls, 0);
	atomic_init(&e->interrupted, 0);
	atomic_init(&e->ops_completed, 0);
	atomic_init(&e->wakes_consumed, 0);
	e->head.ops = &ep_ops;
	*out = (struct vz__io *)(void *)e;
	return 0;
}

/* The fd's bookkeeping, growing the table (doubling) when needed. NULL on
 * allocation failure. */
static struct fdent *fdent_get(struct ep *e, int fd)
{
	size_t want = (size_t)fd + 1;

	if (want > e->nfds) {
		size_t n = e->nfds ? e->nfds : 64;
		struct fdent *t;

		while (n < want)
			n *= 2;
		t = realloc(e->fds, n * sizeof *t);
		if (!t)
			return NULL;
		memset(t + e->nfds, 0, (n - e->nfds) * sizeof *t);
		e->fds = t;
		e->nfds = n;
	}
	return &e->fds[fd];
}

static void push_done(struct ep *e, struct vz__io_op *op, int res)
{
	if (res < 0)
		op->cflags = 0; /* a failed try gave its buffer back */
	op->state = OP_DONE;
	op->res = res;
	op->next_pending = NULL;
	if (e->done_tail)
		e->done_tail->next_pending = op;
	else
		e->done_head = op;
	e->done_tail = op;
}

/* One attempt at the operation's syscall. Returns its result (>= 0 or
 * -errno); -EAGAIN means "wait for readiness". A CONNECT that the kernel
 * started (EINPROGRESS) becomes OP_CONNECTING; its next attempt, made when
 * the fd reports writable or an error, reads SO_ERROR. */
static int try_op(struct ep *e, struct vz__io_op *op)
{
	ssize_t r;
	int bid = -1;

	op->cflags = 0;
	op->data_off = 0;
	if (op->flags & VZ__IO_F_BUFSEL) {
		bid = take_buf(e);
		if (bid < 0)
			return -ENOBUFS;
		if (op->opcode == VZ__IO_OP_RECVMSG) {
			struct msghdr *mh = op->buf;

			mh->msg_iov[0].iov_base =
			    e->head.bufs.mem + (size_t)bid * e->head.bufs.size;
			mh->msg_iov[0].iov_len = e->head.bufs.size;
		}
	}
	for (;;) {
		switch (op->opcode) {
		case VZ__IO_OP_READ:
			r = op->offset < 0 ? read(op->fd, op->buf, op->len)
					   : pread(op->fd, op->buf, op->len, (off_t)op->offset);
			break;
		case VZ__IO_OP_WRITE:
			r = op->offset < 0 ? write(op->fd, op->buf, op->len)
					   : pwrite(op->fd, op->buf, op->len, (off_t)op->offset);
			break;
		case VZ__IO_OP_RECV:
			if (bid >= 0)
				r = recv(op->fd, e->head.bufs.mem + (size_t)bid * e->head.bufs.size,
					 e->head.bufs.size, MSG_DONTWAIT);
			else
				r = recv(op->fd, op->buf, op->len, MSG_DONTWAIT);
			break;
		case VZ__IO_OP_RECVMSG:
			r = recvmsg(op->fd, (struct msghdr *)op->buf, MSG_DONTWAIT);
			break;
		case VZ__IO_OP_SENDMSG:
			r = sendmsg(op->fd, (const struct msghdr *)op->buf,
				    MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		case VZ__IO_OP_OPENAT:
			/* Blocks this thread for the open itself: epoll has no
			 * asynchronous open (NOTES.md). */
			r = openat(AT_FDCWD, (const char *)op->buf, (int)op->len | O_CLOEXEC,
				   (mode_t)op->offset);
			break;
		case VZ__IO_OP_FSYNC:
			r = (op->flags & VZ__IO_F_DATASYNC) ? fdatasync(op->fd) : fsync(op->fd);
			break;
		case VZ__IO_OP_SEND:
			r = send(op->fd, op->buf, op->len, MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		case VZ__IO_OP_ACCEPT:
			r = accept4(op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			break;
		case VZ__IO_OP_CONNECT:
			if (op->state == OP_CONNECTING) {
				int err = 0;
				socklen_t len = sizeof err;

				if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
					return -errno;
				return -err;
			}
			r = connect(op->fd, (const struct sockaddr *)op->buf, op->len);
			if (r < 0 && errno == EINPROGRESS) {
				op->state = OP_CONNECTING;
				return -EAGAIN;
			}
			break;
		default:
			r = -1;
			errno = EINVAL;
			break;
		}
		if (r >= 0) {
			if (bid >= 0) {
				op->cflags |= VZ__IO_CF_BUF;
				op->bid = (uint32_t)bid;
			}
			return r > INT_MAX ? INT_MAX : (int)r;
		}
		if (errno == EINTR)
			continue;
		if (bid >= 0)
			untake_buf(e, bid);
		if (errno == EWOULDBLOCK)
			return -EAGAIN;
		return -errno;
	}
}

/* Register the fd for exactly the directions that have waiters (removing
 * it when none do, so a hung-up fd nobody waits on cannot spin the loop).
 * 0 or -errno. */
static int update_interest(struct ep *e, int fd, struct fdent *fe)
{
	uint32_t want = (fe->rd_head ? EPOLLIN : 0u) | (fe->wr_head ? EPOLLOUT : 0u);
	struct epoll_event ev;
	int r;

	if (want == fe->registered)
		return 0;
	if (!want) {
		/* ENOENT/EBADF: the fd was closed, epoll already forgot it. */
		(void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
		fe->registered = 0;
		fe->nb_checked = false;
		return 0;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = want;
	ev.data.u64 = (uint64_t)fd;
	r = epoll_ctl(e->epfd, fe->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
	if (r < 0 && errno == ENOENT) /* closed and reopened behind our back */
		r = epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev);
	else if (r < 0 && errno == EEXIST)
		r = epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev);
	if (r < 0)
		return -errno;
	fe->registered = want;
	return 0;
}

/* Complete every queued op of the fd with `res` (registration failed). */
static void fail_fd(struct ep *e, struct fdent *fe, int res)
{
	struct vz__io_op *lists[2] = {fe->rd_head, fe->wr_head};

	fe->rd_head = fe->rd_tail = fe->wr_head = fe->wr_tail = NULL;
	for (int i = 0; i < 2; i++) {
		while (lists[i]) {
			struct vz__io_op *op = lists[i];

			lists[i] = op->next_pending;
			push_done(e, op, res);
		}
	}
}

/* A multishot op at the head of its queue: up to MULTI_BATCH results, each
 * handed to done at once with VZ__IO_CF_MORE (we are inside ep_wait, where
 * callbacks run). Returns true when the op is still queued and would block
 * (or had its batch), false when it ended: then its last result is r_out,
 * for the done list. The callback may cancel the op or queue others behind
 * it: it is looked for at the head again after each call. */
static bool run_multi(struct ep *e, struct vz__io_op **head, struct vz__io_op *op, int *r_out)
{
	for (int i = 0; i < MULTI_BATCH; i++) {
		int r = try_op(e, op);

		if (r == -EAGAIN)
			return true;
		/* End of stream, an error, no buffer: the last result. An
		 * accept's fd 0 is a result like any other. */
		if (r < 0 || (r == 0 && op->opcode != VZ__IO_OP_ACCEPT)) {
			*r_out = r;
			return false;
		}
		op->cflags |= VZ__IO_CF_MORE;
		op->res = r;
		bump(&e->ops_completed, 1);
		e->multi_done++; /* a completion this wait returns for */
		op->done(op, r);
		if (*head != op || op->state != OP_QUEUED)
			return true; /* cancelled (or moved) by its callback */
		/*
		 * A stream read that returned less than asked emptied the
		 * socket's receive queue (TCP copies until the buffer is full
		 * or the queue is empty): stop here instead of paying one
		 * more recvfrom for its EAGAIN, and let readiness bring us
		 * back. Safe because the fd is registered level-triggered
		 * (update_interest() never sets EPOLLET): EPOLLIN is reported
		 * by every epoll_wait for as long as the queue holds a byte,
		 * so bytes that arrived after this read, or the rare ones a
		 * short read left behind (urgent data, a racing softirq), are
		 * reported by the next wait, which the shard makes in its next
		 * turn (a busy poll) or sleeps in. Under EPOLLET the second
		 * case would be a lost wake-up (no new edge until the peer
		 * sends again); this is why this backend is level-triggered.
		 * Datagram receives (one datagram per read, never "short")
		 * and accepts keep reading until EAGAIN or the batch cap.
		 */
		if (op->opcode == VZ__IO_OP_RECV && (op->flags & VZ__IO_F_BUFSEL) &&
		    (uint32_t)r < e->head.bufs.size)
			return true;
	}
	return true;
}

/* Try the queue's ops in order until one would block. */
static void run_queue(struct ep *e, struct vz__io_op **head, struct vz__io_op **tail)
{
	while (*head) {
		struct vz__io_op *op = *head;
		int r;

		if (op->flags & VZ__IO_F_MULTI) {
			if (run_multi(e, head, op, &r))
				return;
		} else {
			r = try_op(e, op);
		}
		if (r == -EAGAIN)
			return;
		*head = op->next_pending;
		if (!*head)
			*tail = NULL;
		push_done(e, op, r);
	}
}

static void process_fd(struct ep *e, int fd, uint32_t events)
{
	struct fdent *fe;
	int r;

	if (fd < 0 || (size_t)fd >= e->nfds)
		return;
	fe = &e->fds[fd];
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))
		run_queue(e, &fe->rd_head, &fe->rd_tail);
	if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
		run_queue(e, &fe->wr_head, &fe->wr_tail);
	r = update_interest(e, fd, fe);
	if (r < 0)
		fail_fd(e, fe, r);
}

/* Put the fd in non-blocking mode (once per busy period) for the ops
 * whose syscall has no per-call non-blocking flag. */
static void ensure_nonblock(struct fdent *fe, const struct vz__io_op *op)
{
	int fl;

	if (fe->nb_checked || op->opcode == VZ__IO_OP_RECV || op->opcode == VZ__IO_OP_SEND ||
	    op->opcode == VZ__IO_OP_RECVMSG || op->opcode == VZ__IO_OP_SENDMSG)
		return;
	fe->nb_checked = true;
	fl = fcntl(op->fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK))
		(void)fcntl(op->fd, F_SETFL, fl | O_NONBLOCK);
}

static void list_add(struct vz__io_op **head, struct vz__io_op **tail, struct vz__io_op *op)
{
	op->next_pending = NULL;
	if (*tail)
		(*tail)->next_pending = op;
	else
		*head = op;
	*tail = op;
}

/* The file helper thread: run queued file ops until told to stop. */
static void *files_main(void *arg)
{
	struct ep *e = arg;
	struct files *f = &e->files;

	for (;;) {
		struct vz__io_op *op;
		uint64_t one = 1;
		int r;

		pthread_mutex_lock(&f->mu);
		while (!f->todo_head && !f->stop)
			pthread_cond_wait(&f->cv, &f->mu);
		op = f->todo_head;
		if (!op) {
			pthread_mutex_unlock(&f->mu);
			return NULL;
		}
		f->todo_head = op->next_pending;
		if (!f->todo_head)
			f->todo_tail = NULL;
		pthread_mutex_unlock(&f->mu);
		/* File ops never select a buffer, so try_op() reads nothing of
		 * e but the op itself here. */
		r = try_op(e, op);
		pthread_mutex_lock(&f->mu);
		op->res = r;
		list_add(&f->done_head, &f->done_tail, op);
		pthread_mutex_unlock(&f->mu);
		/* Wake the owner's wait; EAGAIN (counter saturated) means a
		 * wake is pending already. */
		while (write(f->efd, &one, sizeof one) < 0 && errno == EINTR)
			;
	}
}

/* Start the helper (first file op). 0 or -errno. */
static int files_start(struct ep *e)
{
	struct files *f = &e->files;
	struct epoll_event ev;
	int rc;

	if (f->started)
		return 0;
	f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (f->efd < 0)
		return -errno;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.u64 = FEFD_KEY;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, f->efd, &ev) < 0) {
		rc = -errno;
		close(f->efd);
		return rc;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	rc = pthread_create(&f->thread, NULL, files_main, e);
	if (rc) {
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
		close(f->efd);
		return -rc;
	}
	f->started = true;
	return 0;
}

/* Results the helper finished: to the done list (their callbacks run in
 * this wait's run_done()). */
static void files_reap(struct ep *e)
{
	struct files *f = &e->files;
	struct vz__io_op *op;
	uint64_t v;

	if (read(f->efd, &v, sizeof v) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&f->mu);
	op = f->done_head;
	f->done_head = f->done_tail = NULL;
	pthread_mutex_unlock(&f->mu);
	while (op) {
		struct vz__io_op *next = op->next_pending;

		f->busy--;
		push_done(e, op, op->res);
		op = next;
	}
}

/* Is this op one for the file helper? OPENAT and FSYNC always; READ and
 * WRITE on a regular file (or a block device). One fstat per op: these
 * are not the socket hot path (sockets use RECV/SEND). */
static bool is_file_op(const struct vz__io_op *op)
{
	struct stat st;

	if (op->opcode == VZ__IO_OP_OPENAT || op->opcode == VZ__IO_OP_FSYNC)
		return true;
	if (op->opcode != VZ__IO_OP_READ && op->opcode != VZ__IO_OP_WRITE)
		return false;
	return fstat(op->fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode));
}

/* See io.h. */
static int ep_submit(struct vz__io *io, struct vz__io_op *op)
{
	struct ep *e = to_ep(io);
	struct vz__io_op **head, **tail;
	struct fdent *fe;
	int r;

	if (e->destroying)
		return VZ_ESTATE;
	if (op->state == OP_QUEUED || op->state == OP_CONNECTING || op->state == OP_DONE ||
	    op->state == OP_FILE)
		return VZ_EINVAL;
	if ((unsigned)op->opcode > VZ__IO_OP_LAST || op->opcode == VZ__IO_OP_SENDMSG_ZC)
		return VZ_EINVAL;
	if ((op->flags & VZ__IO_F_BUFSEL) && !e->head.bufs.mem)
		return VZ_EINVAL;
	if (op->opcode == VZ__IO_OP_NOP) {
		push_done(e, op, 0);
		return 0;
	}
	/* No readiness for these: the file helper thread runs them, so the
	 * shard never waits for a disk. */
	if ((op->opcode == VZ__IO_OP_OPENAT || op->fd >= 0) && is_file_op(op)) {
		int rc = files_start(e);

		if (rc < 0) {
			/* No thread: run it here rather than fail it. */
			push_done(e, op, try_op(e, op));
			return 0;
		}
		op->state = OP_FILE;
		e->files.busy++;
		pthread_mutex_lock(&e->files.mu);
		list_add(&e->files.todo_head, &e->files.todo_tail, op);
		pthread_cond_signal(&e->files.cv);
		pthread_mutex_unlock(&e->files.mu);
		return 0;
	}
	if (op->fd < 0)
		return VZ_EINVAL;
	fe = fdent_get(e, op->fd);
	if (!fe)
		return VZ_ENOMEM;
	if (read_side(op->opcode)) {
		head = &fe->rd_head;
		tail = &fe->rd_tail;
	} else {
		head = &fe->wr_head;
		tail = &fe->wr_tail;
	}
	op->state = OP_QUEUED;
	op->next_pending = NULL;
	if (!*head) {
		/* Nothing ahead of it: try now, queue only if it would block.
		 * An fd with no waiters at all may be a new file behind a
		 * reused number: check its mode again. */
		if (!fe->registered)
			fe->nb_checked = false;
		ensure_nonblock(fe, op);
		/* A multishot op waits for readiness: its results go to done
		 * from inside a wait, never from here. */
		r = (op->flags & VZ__IO_F_MULTI) ? -EAGAIN : try_op(e, op);
		if (r != -EAGAIN) {
			push_done(e, op, r);
			return 0;
		}
	}
	if (*tail)
		(*tail)->next_pending = op;
	else
		*head = op;
	*tail = op;
	r = update_interest(e, op->fd, fe);
	if (r < 0)
		fail_fd(e, fe, r); /* the op has started: it completes with the error */
	return 0;
}

/* Unlink op from a queue; true when it was there. */
static bool unlink_op(struct vz__io_op **head, struct vz__io_op **tail, struct vz__io_op *op)
{
	struct vz__io_op *prev = NULL;

	for (struct vz__io_op *it = *head; it; prev = it, it = it->next_pending) {
		if (it != op)
			continue;
		if (prev)
			prev->next_pending = it->next_pending;
		else
			*head = it->next_pending;
		if (*tail == it)
			*tail = prev;
		return true;
	}
	return false;
}

/* See io.h. A queued op is taken out and completes with -ECANCELED; one
 * that already has its result keeps it. */
static int ep_cancel(struct vz__io *io, struct vz__io_op *op)
{
	struct ep *e = to_ep(io);
	struct fdent *fe;

	if (op->state == OP_DONE)
		return 0;
	if (op->state == OP_FILE) {
		/* Not started yet: it comes out now. Running: its real
		 * result comes back from the helper. */
		bool taken = false;
		struct vz__io_op *prev = NULL;

		pthread_mutex_lock(&e->files.mu);
		for (struct vz__io_op *it = e->files.todo_head; it;
		     prev = it, it = it->next_pending) {
			if (it != op)
				continue;
			if (prev)
				prev->next_pending = it->next_pending;
			else
				e->files.todo_head = it->next_pending;
			if (e->files.todo_tail == it)
				e->files.todo_tail = prev;
			taken = true;
			break;
		}
		pthread_mutex_unlock(&e->files.mu);
		if (taken) {
			e->files.busy--;
			push_done(e, op, -ECANCELED);
		}
		return 0;
	}
	if (op->state != OP_QUEUED && op->state != OP_CONNECTING)
		return VZ_ENOENT;
	if (op->fd < 0 || (size_t)op->fd >= e->nfds)
		return VZ_ENOENT;
	fe = &e->fds[op->fd];
	if (!unlink_op(&fe->rd_head, &fe->rd_tail, op) &&
	    !unlink_op(&fe->wr_head, &fe->wr_tail, op))
		return VZ_ENOENT;
	push_done(e, op, -ECANCELED);
	if (update_interest(e, op->fd, fe) < 0)
		fail_fd(e, fe, -EIO);
	return 0;
}

/* Run the callbacks of the results present now; results produced by those
 * callbacks wait for the next call, so a callback that resubmits cannot
 * keep one wait busy forever. Returns how many ran. */
static int run_done(struct ep *e)
{
	struct vz__io_op *op = e->done_head;
	int n = 0;

	e->done_head = e->done_tail = NULL;
	while (op) {
		struct vz__io_op *next = op->next_pending;
		int res = op->res;

		op->state = OP_IDLE;
		op->next_pending = NULL;
		op->cflags &= ~VZ__IO_CF_MORE; /* the last (or only) result */
		n++;
		bump(&e->ops_completed, 1);
		op->done(op, res);
		op = next;
	}
	return n;
}

/* Milliseconds for epoll_wait, rounded up so it never times out before
 * the deadline. */
static int wait_ms(uint64_t left_ns)
{
	uint64_t ms = (left_ns + 999999u) / 1000000u;

	return ms > INT_MAX ? INT_MAX : (int)ms;
}

/*
 * One epoll wait of `left_ns` (< 0: forever; 0: poll). A timer deadline is
 * exact to the ns (timer/wheel.h), so a timed wait uses epoll_pwait2 (Linux
 * 5.11, a timespec) when the kernel has it; epoll_wait's milliseconds,
 * rounded up so as never to wake early, would make a timer up to 1 ms late.
 * It is called through syscall(2) so that an older glibc (before 2.35, no
 * wrapper) still gets it; ENOSYS (older kernel) or EPERM (a seccomp filter
 * that does not know it) switches this backend to epoll_wait for good.
 */
static int ep_wait_once(struct ep *e, struct epoll_event *evs, int64_t left_ns)
{
#ifdef SYS_epoll_pwait2
	if (!e->no_pwait2 && left_ns > 0) {
		struct timespec ts = {.tv_sec = (time_t)((uint64_t)left_ns / 1000000000u),
				      .tv_nsec = (long)((uint64_t)left_ns % 1000000000u)};
		long n = syscall(SYS_epoll_pwait2, e->epfd, evs, MAX_EVENTS, &ts, NULL, 0);

		if (n >= 0 || (errno != ENOSYS && errno != EPERM))
			return (int)n;
		e->no_pwait2 = true;
	}
#endif
	return epoll_wait(e->epfd, evs, MAX_EVENTS, left_ns < 0 ? -1 : wait_ms((uint64_t)left_ns));
}

/* See io.h. */
static int ep_wait(struct vz__io *io, int64_t timeout_ns)
{
	struct ep *e = to_ep(io);
	struct epoll_event evs[MAX_EVENTS];
	uint64_t deadline = 0;
	int total = 0;

	if (VZ_FAULT(VZ_FAULT_WAIT_EINTR)) {
		bump(&e->interrupted, 1);
		return 0;
	}
	if (e->destroying)
		return VZ_ESTATE;
	if (timeout_ns > 0)
		deadline = vz__mono_ns() + (uint64_t)timeout_ns;
	for (;;) {
		uint64_t tokens = 0;
		bool intr = false;
		int64_t left;
		int n;

		if (timeout_ns == 0 || e->done_head) {
			left = 0;
		} else if (timeout_ns < 0) {
			left = -1;
		} else {
			uint64_t now = vz__mono_ns();

			left = deadline > now ? (int64_t)(deadline - now) : 0;
		}
		bump(&e->wait_syscalls, 1);
		n = ep_wait_once(e, evs, left);
		if (n < 0) {
			if (errno != EINTR)
				return VZ_EIO;
			intr = true;
			n = 0;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 == FEFD_KEY) {
				files_reap(e);
				continue;
			}
			if (evs[i].data.u64 == EFD_KEY) {
				uint64_t v;

				/* Resets the counter; EAGAIN: another read
				 * already took it. */
				if (read(e->efd, &v, sizeof v) == (ssize_t)sizeof v) {
					tokens += v;
					total++;
				}
				continue;
			}
			process_fd(e, (int)evs[i].data.u64, evs[i].events);
		}
		if (tokens > 0) {
			bump(&e->wakes_consumed, tokens);
			/* acq_rel, after consuming the token: pairs with the
			 * wakers' exchanges in ep_wake(), as in io_uring.c
			 * reap(). */
			atomic_exchange_explicit(&e->wake_pending, 0, memory_order_acq_rel);
		}
		total += run_done(e) + e->multi_done;
		e->multi_done = 0;
		if (total > 0 || timeout_ns == 0)
			return total;
		if (intr) {
			bump(&e->interrupted, 1);
			return 0;
		}
		if (timeout_ns > 0 && vz__mono_ns() >= deadline)
			return 0;
	}
}

/* See io.h: one eventfd write unless a wake is already pending. */
static int ep_wake(struct vz__io *self, struct vz__io *target)
{
	struct ep *t = to_ep(target);
	uint64_t one = 1;
	ssize_t r;

	(void)self;
	/* acq_rel: pairs with the owner's exchange in ep_wait() (see
	 * uring_wake() for the full argument). */
	if (atomic_exchange_explicit(&t->wake_pending, 1, memory_order_acq_rel)) {
		/* Statistics: relaxed, read only as a snapshot. */
		atomic_fetch_add_explicit(&t->wakes_coalesced, 1, memory_order_relaxed);
		return 0;
	}
	atomic_fetch_add_explicit(&t->wakes_sent, 1, memory_order_relaxed); /* statistic */
	if (VZ_FAULT(VZ_FAULT_WAKE)) {
		r = -1;
	} else {
		do
			r = write(t->efd, &one, sizeof one);
		while (r < 0 && errno == EINTR);
		/* EAGAIN (non-blocking eventfd): the counter is saturated,
		 * so a token is already there for the owner to read. */
		if (r < 0 && errno == EAGAIN)
			return 0;
	}
	if (r == (ssize_t)sizeof one)
		return 0;
	/* No token sent: give the flag back so the next wake sends one
	 * rather than coalescing into nothing (a flag stuck at 1 would
	 * swallow every later wake). An exchange (acq_rel), not a store,
	 * so the release sequence the owner's clear acquires from stays
	 * intact. Wakers that coalesced into this attempt meanwhile rely
	 * on our caller retrying (vz__wake() does; io.h). */
	atomic_exchange_explicit(&t->wake_pending, 0, memory_order_acq_rel);
	atomic_fetch_add_explicit(&t->wake_failures, 1, memory_order_relaxed); /* statistic */
	return VZ_EIO;
}

/* See io.h. Queued ops complete with -ECANCELED, results already in hand
 * keep their value; every callback runs before the fds are closed. */
static void ep_destroy(struct vz__io *io)
{
	struct ep *e = to_ep(io);

	e->destroying = true;
	if (e->files.started) {
		struct vz__io_op *op;

		/* Queued file ops are cancelled; the running one finishes
		 * (a disk write is not interrupted) and keeps its result. */
		pthread_mutex_lock(&e->files.mu);
		op = e->files.todo_head;
		e->files.todo_head = e->files.todo_tail = NULL;
		e->files.stop = true;
		pthread_cond_signal(&e->files.cv);
		pthread_mutex_unlock(&e->files.mu);
		pthread_join(e->files.thread, NULL);
		while (op) {
			struct vz__io_op *next = op->next_pending;

			push_done(e, op, -ECANCELED);
			op = next;
		}
		files_reap(e);
		pthread_cond_destroy(&e->files.cv);
		pthread_mutex_destroy(&e->files.mu);
		close(e->files.efd);
	}
	for (size_t fd = 0; fd < e->nfds; fd++)
		fail_fd(e, &e->fds[fd], -ECANCELED);
	while (e->done_head)
		run_done(e);
	close(e->efd);
	close(e->epfd);
	free(e->fds);
	free(e);
}

static uint32_t ep_setup_flags(const struct vz__io *io)
{
	(void)io;
	return 0;
}

static void ep_stats(const struct vz__io *io, struct vz__io_stats *out)
{
	const struct ep *e = (const struct ep *)(const void *)io;

	/* Relaxed: a snapshot (io.h). */
	out->wakes_sent = atomic_load_explicit(&e->wakes_sent, memory_order_relaxed);
	out->wakes_coalesced = atomic_load_explicit(&e->wakes_coalesced, memory_order_relaxed);
	out->wake_failures = atomic_load_explicit(&e->wake_failures, memory_order_relaxed);
	out->wakes_consumed = atomic_load_explicit(&e->wakes_consumed, memory_order_relaxed);
	out->wait_syscalls = atomic_load_explicit(&e->wait_syscalls, memory_order_relaxed);
	out->interrupted = atomic_load_explicit(&e->interrupted, memory_order_relaxed);
	out->ops_completed = atomic_load_explicit(&e->ops_completed, memory_order_relaxed);
	out->sq_full = 0;
	out->cq_overflow = 0;
}

/* See io.h (vz__io_bufs_init): a stack of free buffer ids. */
static int ep_bufs_init(struct vz__io *io)
{
	struct ep *e = to_ep(io);
	struct vz__io_bufs *b = &e->head.bufs;

	b->stack = malloc((size_t)b->n * sizeof *b->stack);
	if (!b->stack)
		return VZ_ENOMEM;
	for (uint32_t i = 0; i < b->n; i++)
		b->stack[i] = b->n - 1 - i;
	return 0;
}

/* See io.h (vz__io_buf_put); io.c counted it in nfree already. */
static void ep_buf_put(struct vz__io *io, uint32_t bid)
{
	struct ep *e = to_ep(io);

	e->head.bufs.stack[e->head.bufs.nfree - 1] = bid;
}

static const struct vz__io_ops ep_ops = {
    .kind = VZ__IO_EPOLL,
    .destroy = ep_destroy,
    .wait = ep_wait,
    .wake = ep_wake,
    .submit = ep_submit,
    .cancel = ep_cancel,
    .setup_flags = ep_setup_flags,
    .stats = ep_stats,
    .bufs_init = ep_bufs_init,
    .buf_put = ep_buf_put,
};
