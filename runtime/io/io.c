// SPDX-License-Identifier: MIT
/*
 * The dispatch layer of the I/O backend: every vz__io_* call goes through
 * the ops table at the head of the instance (struct vz__io_head, io.h), so
 * the shard loop never knows which implementation it drives. Selection
 * lives in select.c, the implementations in io_uring.c and epoll.c.
 */
#include "io/io.h"

#include <veloz/error.h>

static const struct vz__io_ops *ops_of(const struct vz__io *io)
{
	/* Every instance begins with a struct vz__io_head (io.h), so the
	 * pointer to the instance is a pointer to its first member. */
	return ((const struct vz__io_head *)(const void *)io)->ops;
}

/* See io.h. */
const char *vz__io_kind_name(enum vz__io_kind kind)
{
	switch (kind) {
	case VZ__IO_URING:
		return "io_uring";
	case VZ__IO_EPOLL:
		return "epoll";
	case VZ__IO_SIM:
		return "sim";
	}
	return "unknown";
}

/* See io.h. */
int vz__io_create(enum vz__io_kind kind, const struct vz__io_params *p, struct vz__io **out)
{
	static const struct vz__io_params defaults = {.entries = 0};

	if (!out)
		return VZ_EINVAL;
	*out = NULL;
	if (!p)
		p = &defaults;
	switch (kind) {
	case VZ__IO_URING:
		return vz__uring_create(p, out);
	case VZ__IO_EPOLL:
		return vz__epoll_create(p, out);
	case VZ__IO_SIM:
		break; /* made by the simulation itself (vz__sim_io_create()) */
	}
	return VZ_EINVAL;
}

/* See io.h. */
void vz__io_destroy(struct vz__io *io)
{
	if (io)
		ops_of(io)->destroy(io);
}

/* See io.h. */
int vz__io_wait(struct vz__io *io, int64_t timeout_ns)
{
	return ops_of(io)->wait(io, timeout_ns);
}

/* See io.h. A shard of one kind waking an instance of the other kind (two
 * runtimes with different backends in one process) has no common ring to
 * message through, so it wakes like a foreign thread. */
int vz__io_wake(struct vz__io *self, struct vz__io *target)
{
	const struct vz__io_ops *t = ops_of(target);

	if (self && ops_of(self) != t)
		self = NULL;
	return t->wake(self, target);
}

/* See io.h. */
int vz__io_submit(struct vz__io *io, struct vz__io_op *op)
{
	if (!op || !op->done)
		return VZ_EINVAL;
	return ops_of(io)->submit(io, op);
}

/* See io.h. */
int vz__io_cancel(struct vz__io *io, struct vz__io_op *op)
{
	if (!op)
		return VZ_EINVAL;
	return ops_of(io)->cancel(io, op);
}

/* See io.h. */
uint32_t vz__io_setup_flags(const struct vz__io *io)
{
	return ops_of(io)->setup_flags(io);
}

/* See io.h. */
enum vz__io_kind vz__io_kind_of(const struct vz__io *io)
{
	return ops_of(io)->kind;
}

/* See io.h. */
void vz__io_stats(const struct vz__io *io, struct vz__io_stats *out)
{
	ops_of(io)->stats(io, out);
}
