// SPDX-License-Identifier: MIT
/*
 * The dispatch layer of the I/O backend: every vz__io_* call goes through
 * the ops table at the head of the instance (struct vz__io_head, io.h), so
 * the shard loop never knows which implementation it drives. Selection
 * lives in select.c, the implementations in io_uring.c and epoll.c.
 */
#include "io/io.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <veloz/error.h>

static struct vz__io_head *head_of(struct vz__io *io)
{
	return (struct vz__io_head *)(void *)io;
}

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
	struct vz__io_bufs b;

	if (!io)
		return;
	/* The buffers outlive the backend: the kernel may write into them
	 * until the ring is gone. */
	b = head_of(io)->bufs;
	ops_of(io)->destroy(io);
	if (b.mem)
		munmap(b.mem, (size_t)b.n * b.size);
	free(b.stack);
}

/* See io.h. */
int vz__io_bufs_init(struct vz__io *io, uint32_t nbufs, uint32_t size)
{
	struct vz__io_head *h = head_of(io);
	void *mem;
	int rc;

	if (h->bufs.mem)
		return VZ_ESTATE;
	if (!nbufs || (nbufs & (nbufs - 1)) || nbufs > 32768 || !size || size > (1u << 20))
		return VZ_EINVAL;
	/* mmap: page-aligned, and untouched pages cost no memory until a
	 * receive first fills them. */
	mem = mmap(NULL, (size_t)nbufs * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (mem == MAP_FAILED)
		return VZ_ENOMEM;
	h->bufs.mem = mem;
	h->bufs.n = nbufs;
	h->bufs.size = size;
	h->bufs.nfree = nbufs;
	rc = ops_of(io)->bufs_init(io);
	if (rc < 0) {
		munmap(mem, (size_t)nbufs * size);
		free(h->bufs.stack);
		memset(&h->bufs, 0, sizeof h->bufs);
	}
	return rc;
}

/* See io.h. */
void *vz__io_buf_addr(struct vz__io *io, uint32_t bid)
{
	struct vz__io_head *h = head_of(io);

	if (!h->bufs.mem || bid >= h->bufs.n)
		return NULL;
	return h->bufs.mem + (size_t)bid * h->bufs.size;
}

/* See io.h. */
void vz__io_buf_put(struct vz__io *io, uint32_t bid)
{
	struct vz__io_head *h = head_of(io);

	if (!h->bufs.mem || bid >= h->bufs.n)
		return;
	h->bufs.nfree++;
	ops_of(io)->buf_put(io, bid);
}

/* See io.h. */
uint32_t vz__io_bufs_free(const struct vz__io *io)
{
	return ((const struct vz__io_head *)(const void *)io)->bufs.nfree;
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
bool vz__io_send_zc_ok(const struct vz__io *io)
{
	return ops_of(io)->kind == VZ__IO_URING && vz__uring_send_zc_ok(io);
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

/* See io.h. */
void vz__io_flush(struct vz__io *io)
{
	if (ops_of(io)->flush)
		ops_of(io)->flush(io);
}
