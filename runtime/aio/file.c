// SPDX-License-Identifier: MIT
/*
 * The file calls of include/veloz/io.h: open, read, write, fsync, each one
 * backend operation whose completion is the final event. On io_uring they
 * run in the kernel without blocking the shard (OPENAT, READ, WRITE,
 * FSYNC); on epoll a regular file has no readiness, so the backend hands
 * them to its file helper thread (runtime/io/epoll.c). A file open in flight owns a placeholder
 * entry in the actor's table, so stopping the actor cancels it like any other. Owner thread.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "aio/aio.h"

void vz__file_done(struct vz__aio *a, struct vz__aio_op *op, int res)
{
	struct vz__aio_fd *fd = op->fd;
	int os, code;

	if (op->kind == VZ_IO_OPEN) {
		bool live = (op->owner->flags & VZ__ACTOR_LIVE) && op->owner->gen == op->owner_gen;

		if (res >= 0 && (!live || fd->state != VZ__FDS_OPEN)) {
			vz__aio_raw_close(a, res); /* its owner is gone */
			vz__aio_finish(a, op, VZ_ECANCELED, 0, VZ_FD_NULL);
			return;
		}
		if (res >= 0) {
			fd->raw = res;
			fd->type = VZ__FD_FILE;
			VZ__STAT_ADD(a->sh, io_fds_open, 1);
			vz__aio_finish(a, op, 0, 0, vz__aio_fd_handle(a, fd));
			return;
		}
		code = vz__aio_res(res, &os);
		if (res == -ECANCELED && (op->flags & VZ__OPF_ENDING))
			code = op->end_res, os = 0;
		vz__aio_finish(a, op, code, os, VZ_FD_NULL);
		if (fd->state == VZ__FDS_OPEN)
			vz__aio_fd_drop(a, fd, false);
		else
			vz__aio_fd_maybe_free(a, fd);
		return;
	}
	if (res == -ECANCELED && (op->flags & VZ__OPF_ENDING)) {
		vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
		return;
	}
	code = vz__aio_res(res, &os);
	vz__aio_finish(a, op, code, os, VZ_FD_NULL);
}

VZ_API int vz_file_open(vz_actor *self, const char *path, int flags, unsigned mode,
			const vz_io_req *req, vz_io_op *out)
{
	struct vz__aio *a;
	struct vz__aio_fd *fd;
	struct vz__aio_op *op;
	size_t n;
	int cls, rc = vz__aio_check(self);

	if (rc < 0)
		return rc;
	if (!path)
		return VZ_EINVAL;
	n = strnlen(path, VZ__AIO_PATH_MAX);
	if (n >= VZ__AIO_PATH_MAX)
		return VZ_ETOOBIG;
	a = self->shard->aio;
	fd = vz__aio_fd_new(a, self, -1, VZ__FD_OPENING);
	if (!fd)
		return VZ_ENOMEM;
	op = vz__aio_op_new(a, self, fd, VZ_IO_OPEN, req);
	if (!op) {
		vz__aio_fd_drop(a, fd, false);
		return VZ_ENOMEM;
	}
	cls = vz__size_class(n + 1);
	op->block = vz__pool_alloc(a->sh, (unsigned)cls);
	if (!op->block) {
		vz__aio_op_drop(a, op);
		vz__aio_fd_drop(a, fd, false);
		return VZ_ENOMEM;
	}
	op->block_cls = (uint32_t)cls;
	memcpy(op->block, path, n + 1);
	op->bop.opcode = VZ__IO_OP_OPENAT;
	op->bop.buf = op->block;
	op->bop.len = (uint32_t)flags;
	op->bop.offset = (int64_t)mode;
	if (out)
		*out = vz__aio_op_handle(a, op);
	vz__aio_submit(a, op);
	return 0;
}

/* read / write / fsync on an open handle. */
static int file_op(vz_actor *self, vz_fd h, unsigned kind, void *buf, size_t len, int64_t offset,
		   uint32_t bflags, const vz_io_req *req, vz_io_op *out)
{
	struct vz__aio *a;
	struct vz__aio_fd *fd;
	struct vz__aio_op *op;
	bool bad = (kind != VZ_IO_FSYNC && (!buf || len > INT32_MAX)) || offset < -1;
	int rc = vz__aio_enter(self, h, bad ? VZ_EINVAL : 0, &fd);

	if (rc < 0)
		return rc;
	if (fd->type == VZ__FD_TCP_LISTEN)
		return VZ_EINVAL;
	if (fd->nsmall >= VZ__AIO_FD_OPS_MAX)
		return VZ_EBUSY;
	a = self->shard->aio;
	op = vz__aio_op_new(a, self, fd, kind, req);
	if (!op)
		return VZ_ENOMEM;
	fd->nsmall++;
	op->bop.opcode = kind == VZ_IO_READ    ? VZ__IO_OP_READ
			 : kind == VZ_IO_WRITE ? VZ__IO_OP_WRITE
					       : VZ__IO_OP_FSYNC;
	op->bop.buf = buf;
	op->bop.len = (uint32_t)len;
	op->bop.offset = offset;
	op->bop.flags = bflags;
	if (out)
		*out = vz__aio_op_handle(a, op);
	vz__aio_submit(a, op);
	return 0;
}

VZ_API int vz_io_read(vz_actor *self, vz_fd fd, void *buf, size_t len, int64_t offset,
		      const vz_io_req *req, vz_io_op *out)
{
	return file_op(self, fd, VZ_IO_READ, buf, len, offset, 0, req, out);
}

VZ_API int vz_io_write(vz_actor *self, vz_fd fd, const void *buf, size_t len, int64_t offset,
		       const vz_io_req *req, vz_io_op *out)
{
	return file_op(self, fd, VZ_IO_WRITE, (void *)(uintptr_t)buf, len, offset, 0, req, out);
}

VZ_API int vz_io_fsync(vz_actor *self, vz_fd fd, int datasync, const vz_io_req *req, vz_io_op *out)
{
	return file_op(self, fd, VZ_IO_FSYNC, NULL, 0, 0, datasync ? VZ__IO_F_DATASYNC : 0, req,
		       out);
}
