// SPDX-License-Identifier: MIT
/*
 * Send queues of stream connections: each vz_io_send() copies its bytes
 * into chunks from the shard's pool (no malloc in steady state) and joins
 * the connection's FIFO of requests; one SENDMSG at a time writes up to
 * VZ__AIO_SEND_IOV chunks (so many small sends leave in one syscall or
 * SQE), and each request gets its event when its last byte is written.
 * The queue is bounded (vz_io_set_sendq_limit(), VZ_EFULL past it), so a
 * slow reader costs its own connection memory up to the bound and never
 * blocks the shard. Cancels and timeouts of queued sends, half-close after
 * the queue drains and the graceful close live here too. Owner thread.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "aio/aio.h"
#include "util/fault.h"

#define CHUNK_HDR sizeof(struct vz__aio_chunk)

static void sendq_done(struct vz__io_op *bop, int res);

void vz__sendq_free_chunks(struct vz__aio *a, struct vz__aio_op *op)
{
	struct vz__aio_chunk *c;

	while ((c = op->chunks)) {
		op->chunks = c->next;
		vz__pool_free(a->sh, c, c->cls);
		vz__counter_add(&a->chunks_out, (uint64_t)-1);
	}
}

/* Take op off the fd's request list. */
static void sq_unlink(struct vz__aio_sendq *q, struct vz__aio_op *op)
{
	struct vz__aio_op *prev = NULL;

	for (struct vz__aio_op *it = q->head; it; prev = it, it = it->lnext) {
		if (it != op)
			continue;
		if (prev)
			prev->lnext = it->lnext;
		else
			q->head = it->lnext;
		if (q->tail == it)
			q->tail = prev;
		it->lnext = NULL;
		q->queued -= it->len - it->written;
		return;
	}
}

int vz__sendq_push(struct vz__aio *a, struct vz__aio_fd *fd, struct vz__aio_op *op,
		   const void *data, size_t len)
{
	struct vz__aio_sendq *q = &fd->sq;
	struct vz__aio_chunk **tailp = &op->chunks;
	const unsigned char *p = data;
	size_t left = len;

	while (left > 0) {
		size_t room = ((size_t)64 << VZ__AIO_CHUNK_CLASS) - CHUNK_HDR;
		size_t take = left < room ? left : room;
		int cls = vz__size_class(CHUNK_HDR + take);
		struct vz__aio_chunk *c = vz__pool_alloc(a->sh, (unsigned)cls);

		if (!c) {
			vz__sendq_free_chunks(a, op);
			return VZ_ENOMEM;
		}
		vz__counter_add(&a->chunks_out, 1);
		c->next = NULL;
		c->len = (uint32_t)take;
		c->off = 0;
		c->cls = (uint32_t)cls;
		memcpy(c->data, p, take);
		*tailp = c;
		tailp = &c->next;
		p += take;
		left -= take;
	}
	op->len = (uint32_t)len;
	op->written = 0;
	op->lnext = NULL;
	if (q->tail)
		q->tail->lnext = op;
	else
		q->head = op;
	q->tail = op;
	q->queued += len;
	vz__sendq_kick(a, fd);
	return 0;
}

/* Every request left fails with res (the stream broke, or was aborted). */
static void fail_all(struct vz__aio *a, struct vz__aio_fd *fd, int res, int os_errno)
{
	struct vz__aio_sendq *q = &fd->sq;
	struct vz__aio_op *op;

	while ((op = q->head)) {
		q->head = op->lnext;
		op->lnext = NULL;
		if (!q->head)
			q->tail = NULL;
		vz__aio_finish(a, op, (op->flags & VZ__OPF_ENDING) ? op->end_res : res, os_errno,
			       VZ_FD_NULL);
	}
	q->queued = 0;
}

/* The sending side is closed for good: what is queued fails with
 * VZ_EPIPE, the peer sees end of stream. */
static void break_stream(struct vz__aio *a, struct vz__aio_fd *fd)
{
	fd->flags |= VZ__FDF_SHUT_WR;
	fd->flags &= ~VZ__FDF_SHUT_WR_PENDING;
	if (!(fd->flags & VZ__FDF_RAW_CLOSED))
		(void)vz__aio_raw_shutdown(a, fd->raw, SHUT_WR);
	fail_all(a, fd, VZ_EPIPE, EPIPE);
}

/* Requests at the head that need no more bytes: done, or ended. */
static void settle_head(struct vz__aio *a, struct vz__aio_fd *fd)
{
	struct vz__aio_sendq *q = &fd->sq;
	struct vz__aio_op *op;

	while ((op = q->head)) {
		if (op->written == op->len) {
			sq_unlink(q, op);
			vz__aio_finish(a, op, (int)op->len, 0, VZ_FD_NULL);
			continue;
		}
		if (!(op->flags & VZ__OPF_ENDING))
			return;
		if (op->written == 0) {
			sq_unlink(q, op);
			vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
			continue;
		}
		/* Ended part way: the rest of it cannot be taken back from
		 * the peer's view of the stream, so the stream ends here. */
		sq_unlink(q, op);
		vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
		break_stream(a, fd);
		return;
	}
}

/* Requests ended while not at the head and untouched leave the queue
 * cleanly (no bytes of theirs were handed to the socket). */
static void settle_ended(struct vz__aio *a, struct vz__aio_fd *fd)
{
	struct vz__aio_op *op = fd->sq.head, *next;

	for (; op; op = next) {
		next = op->lnext;
		if ((op->flags & VZ__OPF_ENDING) && op->written == 0 && op != fd->sq.head) {
			sq_unlink(&fd->sq, op);
			vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
		}
	}
}

void vz__sendq_kick(struct vz__aio *a, struct vz__aio_fd *fd)
{
	struct vz__aio_sendq *q = &fd->sq;
	struct vz__shard *sh = a->sh;
	unsigned n = 0;
	uint64_t bytes = 0;
	bool zc;
	int rc;

	if (q->busy || (fd->flags & VZ__FDF_CONNECTING))
		return; /* one write at a time; none before the connection is up */
	settle_ended(a, fd);
	settle_head(a, fd);
	if (!q->head) {
		if ((fd->flags & VZ__FDF_SHUT_WR_PENDING) && !(fd->flags & VZ__FDF_RAW_CLOSED)) {
			fd->flags &= ~VZ__FDF_SHUT_WR_PENDING;
			fd->flags |= VZ__FDF_SHUT_WR;
			(void)vz__aio_raw_shutdown(a, fd->raw, SHUT_WR);
		}
		if (fd->flags & VZ__FDF_CLOSE_PENDING) {
			fd->flags &= ~VZ__FDF_CLOSE_PENDING;
			vz__aio_fd_close(a, fd, true, false); /* nothing left to drop */
		}
		return;
	}
	if (fd->flags & VZ__FDF_RAW_CLOSED)
		return;
	if (!sh->io) {
		/* Before start: the first turn starts it (vz__aio_turn). */
		if (!fd->kick_queued) {
			fd->kick_queued = true;
			fd->knext = a->kick_head;
			a->kick_head = fd;
		}
		return;
	}
	for (struct vz__aio_op *op = q->head; op && n < VZ__AIO_SEND_IOV; op = op->lnext) {
		for (struct vz__aio_chunk *c = op->chunks; c && n < VZ__AIO_SEND_IOV; c = c->next) {
			if (c->off == c->len)
				continue;
			q->iov[n].iov_base = c->data + c->off;
			q->iov[n].iov_len = c->len - c->off;
			bytes += c->len - c->off;
			n++;
		}
		q->cover_end = op;
	}
	if (n == 0)
		return;
	if (VZ_FAULT(VZ_FAULT_IO_SHORT_WRITE)) {
		q->iov[0].iov_len = 1; /* the kernel wrote one byte of it */
		n = 1;
	}
	/* Large writes without the kernel's copy: the chunks stay ours to
	 * free only after the notification, which the backend waits for
	 * before sendq_done runs (io.h), so nothing below changes. */
	zc = a->zc_min && bytes >= a->zc_min && !q->no_zc && vz__io_send_zc_ok(sh->io);
	memset(&q->mh, 0, sizeof q->mh);
	q->mh.msg_iov = q->iov;
	q->mh.msg_iovlen = n;
	memset(&q->bop, 0, sizeof q->bop);
	q->bop.opcode = zc ? VZ__IO_OP_SENDMSG_ZC : VZ__IO_OP_SENDMSG;
	q->bop.fd = fd->raw;
	q->bop.buf = &q->mh;
	q->bop.done = sendq_done;
	q->bop.user = fd;
	rc = vz__io_submit(sh->io, &q->bop);
	if (rc < 0) {
		/* The submission queue is full even after a flush (or the
		 * backend is going): fail what is queued rather than leave it
		 * waiting for a write nobody starts. */
		fail_all(a, fd, rc == VZ_EFULL ? VZ_EAGAIN : rc, 0);
		return;
	}
	q->busy = true;
	a->inflight++;
	VZ__STAT_ADD(sh, io_submitted, 1);
	if (zc)
		VZ__STAT_ADD(sh, io_send_zc, 1);
}

static void sendq_done(struct vz__io_op *bop, int res)
{
	struct vz__aio_fd *fd = bop->user;
	struct vz__aio *a = fd->aio;
	struct vz__aio_sendq *q = &fd->sq;

	if (a->dying)
		return; /* the shard is going: its tables are freed wholesale */
	q->busy = false;
	a->inflight--;
	VZ__STAT_ADD(a->sh, io_completed, 1);
	if (bop->cflags & VZ__IO_CF_ZC_FALLBACK) {
		/* Refused for this socket (not a TCP one, say): plain from now. */
		q->no_zc = true;
		VZ__STAT_ADD(a->sh, io_send_zc_fallback, 1);
	}
	if (res > 0) {
		uint64_t n = (uint64_t)res;

		q->queued -= n;
		for (struct vz__aio_op *op = q->head; op && n; op = op->lnext) {
			for (struct vz__aio_chunk *c = op->chunks; c && n; c = c->next) {
				uint32_t take = c->len - c->off;

				if (take > n)
					take = (uint32_t)n;
				c->off += take;
				op->written += take;
				n -= take;
			}
			/* Written chunks go back to the pool at once. */
			while (op->chunks && op->chunks->off == op->chunks->len) {
				struct vz__aio_chunk *c = op->chunks;

				op->chunks = c->next;
				vz__pool_free(a->sh, c, c->cls);
				vz__counter_add(&a->chunks_out, (uint64_t)-1);
			}
		}
		settle_head(a, fd);
		if (q->cut_short) {
			q->cut_short = false;
			break_stream(a, fd);
		}
	} else if (res < 0 && res != -EAGAIN && res != -EINTR) {
		int os = 0, code = vz__aio_res(res, &os);

		/* The stream is broken (reset, pipe) or we were cancelled by
		 * an abort: every queued request fails, later sends too. */
		fd->flags |= VZ__FDF_SHUT_WR;
		fd->flags &= ~VZ__FDF_SHUT_WR_PENDING;
		fail_all(a, fd, res == -ECANCELED ? VZ_ECANCELED : code, os);
	}
	if (fd->state == VZ__FDS_CLOSING && (fd->flags & VZ__FDF_RAW_CLOSED)) {
		/* Aborted meanwhile: whatever is left fails. */
		fail_all(a, fd, VZ_ECANCELED, 0);
		vz__aio_fd_maybe_free(a, fd);
		return;
	}
	vz__sendq_kick(a, fd);
	vz__aio_fd_maybe_free(a, fd);
}

/* Is op among the requests the write in flight covers (its chunks may be
 * in the kernel's hands)? */
static bool covered(const struct vz__aio_sendq *q, const struct vz__aio_op *op)
{
	if (!q->busy)
		return false;
	for (const struct vz__aio_op *it = q->head; it; it = it->lnext) {
		if (it == op)
			return true;
		if (it == q->cover_end)
			return false;
	}
	return false;
}

void vz__sendq_end(struct vz__aio *a, struct vz__aio_op *op, int res)
{
	struct vz__aio_fd *fd = op->fd;
	struct vz__aio_sendq *q = &fd->sq;

	(void)res; /* op->end_res holds it */
	if (covered(q, op))
		return; /* the write in flight decides (sendq_done -> settle_head) */
	if (op->written == 0) {
		sq_unlink(q, op);
		vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
		vz__aio_fd_maybe_free(a, fd);
		return;
	}
	/* Part written, nothing in flight: it is the head; end the stream. */
	settle_head(a, fd);
	vz__aio_fd_maybe_free(a, fd);
}

void vz__sendq_fail(struct vz__aio *a, struct vz__aio_fd *fd, int res, int os_errno)
{
	if (!fd->sq.busy)
		fail_all(a, fd, res, os_errno);
}

void vz__sendq_abort(struct vz__aio *a, struct vz__aio_fd *fd)
{
	struct vz__aio_sendq *q = &fd->sq;

	fd->flags &= ~(VZ__FDF_CLOSE_PENDING | VZ__FDF_SHUT_WR_PENDING);
	if (q->busy) {
		/* Its chunks stay until the backend lets go of them:
		 * sendq_done fails the requests. */
		for (struct vz__aio_op *op = q->head; op; op = op->lnext)
			if (!(op->flags & VZ__OPF_ENDING)) {
				op->flags |= VZ__OPF_ENDING;
				op->end_res = VZ_ECANCELED;
			}
		if (vz__io_cancel(a->sh->io, &q->bop) == VZ_EFULL) {
			vz__io_flush(a->sh->io);
			(void)vz__io_cancel(a->sh->io, &q->bop);
		}
		return;
	}
	fail_all(a, fd, VZ_ECANCELED, 0);
}

/* ---- public ---------------------------------------------------------- */

/* vz_io_send()'s checks of its bytes (vz__aio_enter()'s `args`). */
static int send_args(const void *data, size_t len)
{
	if (!data && len)
		return VZ_EINVAL;
	return len > INT32_MAX ? VZ_ETOOBIG : 0;
}

VZ_API int vz_io_send(vz_actor *self, vz_fd h, const void *data, size_t len, const vz_io_req *req,
		      vz_io_op *out)
{
	struct vz__aio *a;
	struct vz__aio_fd *fd;
	struct vz__aio_op *op;
	int rc = vz__aio_enter(self, h, send_args(data, len), &fd);

	if (rc < 0)
		return rc;
	if (fd->type != VZ__FD_TCP && fd->type != VZ__FD_OTHER)
		return VZ_EINVAL;
	if (fd->flags & (VZ__FDF_SHUT_WR | VZ__FDF_SHUT_WR_PENDING))
		return VZ_EPIPE;
	a = self->shard->aio;
	if (fd->sq.queued && fd->sq.queued + len > fd->sq.limit) {
		VZ__STAT_ADD(a->sh, io_sendq_full, 1);
		return VZ_EFULL;
	}
	op = vz__aio_op_new(a, self, fd, VZ_IO_SEND, req);
	if (!op)
		return VZ_ENOMEM;
	if (out)
		*out = vz__aio_op_handle(a, op);
	rc = vz__sendq_push(a, fd, op, data, len);
	if (rc < 0) {
		vz__aio_op_drop(a, op);
		return rc;
	}
	return 0;
}

VZ_API int vz_io_set_sendq_limit(vz_actor *self, vz_fd h, size_t bytes)
{
	struct vz__aio_fd *fd;
	int rc = vz__aio_enter(self, h, bytes ? 0 : VZ_EINVAL, &fd);

	if (rc < 0)
		return rc;
	fd->sq.limit = bytes;
	return 0;
}

VZ_API long vz_io_sendq_bytes(vz_actor *self, vz_fd h)
{
	struct vz__aio_fd *fd;
	int rc = vz__aio_enter(self, h, 0, &fd);

	return rc < 0 ? rc : (long)fd->sq.queued;
}

VZ_API int vz_io_shutdown(vz_actor *self, vz_fd h, int how)
{
	struct vz__aio_fd *fd;
	bool how_ok = how == SHUT_RD || how == SHUT_WR || how == SHUT_RDWR;
	int rc = vz__aio_enter(self, h, how_ok ? 0 : VZ_EINVAL, &fd);

	if (rc < 0)
		return rc;
	if (fd->type == VZ__FD_FILE)
		return VZ_EINVAL;
	if (how != SHUT_WR && (rc = vz__aio_raw_shutdown(self->shard->aio, fd->raw, SHUT_RD)) < 0)
		return rc;
	if (how != SHUT_RD && !(fd->flags & VZ__FDF_SHUT_WR)) {
		fd->flags |= VZ__FDF_SHUT_WR_PENDING;
		vz__sendq_kick(self->shard->aio, fd);
	}
	return 0;
}
