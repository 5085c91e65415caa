// SPDX-License-Identifier: MIT
/*
 * The heart of the actor I/O layer, per shard: the descriptor table (each
 * entry owned by one actor, named by a generation-checked vz_fd), the table
 * of operation records (named by vz_io_op), the turn of backend completions
 * into VZ_MSG_IO messages, timeouts and cancels (both through the shard's
 * timer wheel and one backend cancel, so both backends share them), the
 * receive buffers' owners, and the hooks the core calls: every turn, when
 * a message is released, when an actor stops, when a timer fires. Owner
 * thread only. Design: NOTES.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio/aio.h"
#include "util/clock.h"
#include "util/fault.h"

#define ID(shard, index, gen)                                                                      \
	(((uint64_t)(shard) << 56) | ((uint64_t)(index) << 32) | (uint64_t)(gen))
#define ID_INDEX(id) ((uint32_t)((id) >> 32) & 0xffffffu)
#define ID_GEN(id)   ((uint32_t)(id))
#define MAX_CHUNKS   ((1u << 24) / VZ__AIO_CHUNK_RECS)

static uint32_t next_gen(uint32_t g)
{
	/* Generations skip 0 so no handle is ever the null one; after 2^32
	 * lives of one record a handle could name a later life (documented
	 * in NOTES.md; the tables are small and reuse is LIFO). */
	return g + 1 ? g + 1 : 1;
}

/* VZ_SEND_ZC_MIN: unset or empty = the default, "off" or 0 = never, else
 * the least bytes one write must cover to go zero-copy. */
static uint64_t zc_min_from_env(void)
{
	const char *v = getenv("VZ_SEND_ZC_MIN");
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return VZ__AIO_ZC_MIN_DEFAULT;
	if (!strcmp(v, "off"))
		return 0;
	n = strtoull(v, &end, 0);
	return *end ? VZ__AIO_ZC_MIN_DEFAULT : (uint64_t)n;
}

int vz__aio_create(struct vz__shard *sh)
{
	struct vz__aio *a = calloc(1, sizeof *a);

	if (!a)
		return VZ_ENOMEM;
	a->sh = sh;
	a->zc_min = zc_min_from_env();
	/* The I/O layer's own life in the wheel: never ended (its timers
	 * live until their op ends or the shard goes). */
	vz__timer_owner_init(&a->tmo, 1);
	sh->aio = a;
	return 0;
}

void vz__aio_quiesce(struct vz__shard *sh)
{
	if (sh->aio)
		sh->aio->dying = true;
}

void vz__aio_destroy(struct vz__shard *sh)
{
	struct vz__aio *a = sh->aio;

	if (!a)
		return;
	/* The backend is gone: nothing refers to records or buffers any
	 * more. A raw fd still open here belonged to an actor that never
	 * stopped through the core (it always does), closed for safety. */
	for (uint32_t c = 0; c < a->fd_nchunks; c++) {
		for (uint32_t i = 0; i < VZ__AIO_CHUNK_RECS; i++) {
			struct vz__aio_fd *fd = &a->fd_chunks[c][i];

			if (fd->state != VZ__FDS_FREE && !(fd->flags & VZ__FDF_RAW_CLOSED) &&
			    fd->raw >= 0)
				vz__aio_raw_close(a, fd->raw);
		}
		free(a->fd_chunks[c]);
	}
	free(a->fd_chunks);
	for (uint32_t c = 0; c < a->op_nchunks; c++)
		free(a->op_chunks[c]);
	free(a->op_chunks);
	free(a);
	sh->aio = NULL;
}

/* ---- calling actor ------------------------------------------------------- */

int vz__aio_check(const vz_actor *self)
{
	if (!self)
		return VZ_EINVAL;
	if (vz__current(self->shard->rt) != self->shard)
		return VZ_EWRONGTHREAD;
	if (!(self->flags & VZ__ACTOR_LIVE) || !self->shard->aio)
		return VZ_ESTALE;
	return 0;
}

static bool owner_live(const struct vz__aio_op *op)
{
	return op->owner && (op->owner->flags & VZ__ACTOR_LIVE) && op->owner->gen == op->owner_gen;
}

/* ---- descriptor table ---------------------------------------------------- */

static struct vz__aio_fd *fd_at(const struct vz__aio *a, uint32_t index)
{
	if (index / VZ__AIO_CHUNK_RECS >= a->fd_nchunks)
		return NULL;
	return &a->fd_chunks[index / VZ__AIO_CHUNK_RECS][index % VZ__AIO_CHUNK_RECS];
}

vz_fd vz__aio_fd_handle(const struct vz__aio *a, const struct vz__aio_fd *fd)
{
	return (vz_fd){ID(a->sh->id, fd->index, fd->gen)};
}

/* The open descriptor of handle h owned by self, or NULL. */
static struct vz__aio_fd *fd_lookup(vz_actor *self, vz_fd h)
{
	struct vz__aio *a = self->shard->aio;
	struct vz__aio_fd *fd;

	if ((unsigned)(h.id >> 56) != a->sh->id)
		return NULL;
	fd = fd_at(a, ID_INDEX(h.id));
	if (!fd || fd->gen != ID_GEN(h.id) || fd->state != VZ__FDS_OPEN || fd->owner != self ||
	    fd->type == VZ__FD_OPENING)
		return NULL;
	return fd;
}

int vz__aio_enter(vz_actor *self, vz_fd h, int args, struct vz__aio_fd **fd)
{
	int rc = vz__aio_check(self);

	*fd = NULL;
	if (rc < 0)
		return rc;
	if (args < 0)
		return args;
	*fd = fd_lookup(self, h);
	return *fd ? 0 : VZ_ESTALE;
}

/* Slow path: one more chunk of records (one malloc, counted as a pool
 * refill, like the core's slabs). */
static int grow(struct vz__aio *a, bool fds)
{
	uint32_t n = fds ? a->fd_nchunks : a->op_nchunks;
	size_t rec = fds ? sizeof(struct vz__aio_fd) : sizeof(struct vz__aio_op);
	void **arr = fds ? (void **)a->fd_chunks : (void **)a->op_chunks;
	unsigned char *chunk;

	if (n >= MAX_CHUNKS)
		return VZ_ENOMEM;
	arr = realloc(arr, (n + 1) * sizeof *arr);
	if (!arr)
		return VZ_ENOMEM;
	if (fds)
		a->fd_chunks = (struct vz__aio_fd **)arr;
	else
		a->op_chunks = (struct vz__aio_op **)arr;
	chunk = calloc(VZ__AIO_CHUNK_RECS, rec);
	if (!chunk)
		return VZ_ENOMEM;
	arr[n] = chunk;
	VZ__STAT_ADD(a->sh, pool_refills, 1);
	/* Free list in index order (pushed backwards). */
	for (uint32_t i = VZ__AIO_CHUNK_RECS; i-- > 0;) {
		if (fds) {
			struct vz__aio_fd *fd = (struct vz__aio_fd *)(void *)(chunk + i * rec);

			fd->index = n * VZ__AIO_CHUNK_RECS + i;
			fd->gen = 1;
			fd->anext = a->fd_free;
			a->fd_free = fd;
		} else {
			struct vz__aio_op *op = (struct vz__aio_op *)(void *)(chunk + i * rec);

			op->index = n * VZ__AIO_CHUNK_RECS + i;
			op->gen = 1;
			op->lnext = a->op_free;
			a->op_free = op;
		}
	}
	if (fds)
		a->fd_nchunks++;
	else
		a->op_nchunks++;
	return 0;
}

struct vz__aio_fd *vz__aio_fd_new(struct vz__aio *a, vz_actor *self, int raw, int type)
{
	struct vz__aio_fd *fd;
	uint32_t index, gen;

	if (!a->fd_free && grow(a, true) < 0)
		return NULL;
	fd = a->fd_free;
	a->fd_free = fd->anext;
	index = fd->index;
	gen = fd->gen;
	memset(fd, 0, sizeof *fd);
	fd->index = index;
	fd->gen = gen;
	fd->raw = raw;
	fd->type = (uint16_t)type;
	fd->state = VZ__FDS_OPEN;
	fd->aio = a;
	fd->owner = self;
	fd->sq.limit = VZ_IO_SENDQ_DEFAULT;
	fd->anext = self->io_fds;
	if (fd->anext)
		fd->anext->aprev = fd;
	self->io_fds = fd;
	if (raw >= 0)
		VZ__STAT_ADD(a->sh, io_fds_open, 1);
	return fd;
}

static void close_raw(struct vz__aio *a, struct vz__aio_fd *fd)
{
	if (fd->flags & VZ__FDF_RAW_CLOSED)
		return;
	fd->flags |= VZ__FDF_RAW_CLOSED;
	if (fd->raw < 0)
		return;
	/* A submission still queued in the SQ may name this number: let the
	 * kernel resolve it before the number can be reused. */
	if (a->inflight && a->sh->io)
		vz__io_flush(a->sh->io);
	vz__aio_raw_close(a, fd->raw);
	VZ__STAT_ADD(a->sh, io_fds_open, (uint64_t)-1);
}

static void fd_unlink_owner(struct vz__aio_fd *fd)
{
	if (!fd->owner)
		return;
	if (fd->aprev)
		fd->aprev->anext = fd->anext;
	else
		fd->owner->io_fds = fd->anext;
	if (fd->anext)
		fd->anext->aprev = fd->aprev;
	fd->anext = fd->aprev = NULL;
	fd->owner = NULL;
}

static void fd_free(struct vz__aio *a, struct vz__aio_fd *fd)
{
	if (fd->kick_queued) {
		struct vz__aio_fd **pp = &a->kick_head;

		while (*pp && *pp != fd)
			pp = &(*pp)->knext;
		if (*pp)
			*pp = fd->knext;
		fd->kick_queued = false;
	}
	fd_unlink_owner(fd);
	fd->state = VZ__FDS_FREE;
	fd->gen = next_gen(fd->gen);
	fd->anext = a->fd_free;
	a->fd_free = fd;
}

void vz__aio_fd_drop(struct vz__aio *a, struct vz__aio_fd *fd, bool keep_raw)
{
	if (keep_raw) {
		if (fd->raw >= 0 && !(fd->flags & VZ__FDF_RAW_CLOSED))
			VZ__STAT_ADD(a->sh, io_fds_open, (uint64_t)-1);
		fd->flags |= VZ__FDF_RAW_CLOSED;
	} else {
		close_raw(a, fd);
	}
	fd_free(a, fd);
}

void vz__aio_fd_maybe_free(struct vz__aio *a, struct vz__aio_fd *fd)
{
	if (fd->state == VZ__FDS_CLOSING && (fd->flags & VZ__FDF_RAW_CLOSED) && fd->nops == 0 &&
	    !fd->sq.busy)
		fd_free(a, fd);
}

void vz__aio_fd_close(struct vz__aio *a, struct vz__aio_fd *fd, bool abort, bool rst)
{
	struct vz__aio_op *op, *next;

	if (fd->state == VZ__FDS_FREE)
		return;
	fd->state = VZ__FDS_CLOSING;
	for (op = fd->ops; op; op = next) {
		next = op->fnext;
		if (op->kind != VZ_IO_SEND)
			vz__aio_end(a, op, VZ_ECANCELED);
	}
	if (abort) {
		vz__sendq_abort(a, fd);
		if (rst && fd->type == VZ__FD_TCP && fd->raw >= 0 &&
		    !(fd->flags & VZ__FDF_RAW_CLOSED)) {
			struct linger lg = {.l_onoff = 1, .l_linger = 0};

			if (vz__aio_simulated(a))
				vz__sim_net_linger0(a->sh->sim, fd->raw);
			else
				(void)setsockopt(fd->raw, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		}
		close_raw(a, fd);
	} else if (!fd->sq.head && !fd->sq.busy) {
		close_raw(a, fd);
	} else {
		fd->flags |= VZ__FDF_CLOSE_PENDING;
	}
	vz__aio_fd_maybe_free(a, fd);
}

/* ---- operation records --------------------------------------------------- */

static struct vz__aio_op *op_at(const struct vz__aio *a, uint32_t index)
{
	if (index / VZ__AIO_CHUNK_RECS >= a->op_nchunks)
		return NULL;
	return &a->op_chunks[index / VZ__AIO_CHUNK_RECS][index % VZ__AIO_CHUNK_RECS];
}

vz_io_op vz__aio_op_handle(const struct vz__aio *a, const struct vz__aio_op *op)
{
	return (vz_io_op){ID(a->sh->id, op->index, op->gen)};
}

static void op_done(struct vz__io_op *bop, int res);

/* The timer tag of an op: its index and generation. */
static uint64_t op_tag(const struct vz__aio_op *op)
{
	return (uint64_t)op->gen << 32 | op->index;
}

static void timer_stop(struct vz__aio *a, struct vz__aio_op *op)
{
	if (op->timer) {
		(void)vz__timers_cancel(&a->sh->timers, &a->tmo, op->timer);
		op->timer = 0;
	}
}

static int timer_start(struct vz__aio *a, struct vz__aio_op *op, uint64_t delay_ns)
{
	struct vz__shard *sh = a->sh;

	sh->now_ns = vz__mono_ns();
	return vz__timers_arm(&sh->timers, &a->tmo, sh->now_ns, delay_ns, 0, op_tag(op),
			      &op->timer);
}

struct vz__aio_op *vz__aio_op_new(struct vz__aio *a, vz_actor *self, struct vz__aio_fd *fd,
				  unsigned kind, const vz_io_req *req)
{
	struct vz__aio_op *op;
	uint32_t index, gen;

	if (!a->op_free && grow(a, false) < 0)
		return NULL;
	op = a->op_free;
	a->op_free = op->lnext;
	index = op->index;
	gen = op->gen;
	memset(op, 0, sizeof *op);
	op->index = index;
	op->gen = gen;
	op->final = vz__msg_alloc(a->sh, sizeof(vz_io_event));
	if (!op->final) {
		op->lnext = a->op_free;
		a->op_free = op;
		return NULL;
	}
	op->kind = (uint16_t)kind;
	op->fd = fd;
	op->owner = self;
	op->owner_gen = self->gen;
	op->bop.user = op;
	op->bop.done = op_done;
	op->bop.fd = fd ? fd->raw : -1;
	if (req) {
		op->tag = req->tag;
		op->timeout_ns = req->timeout_ns;
		if (req->flags & VZ_IO_QUIET)
			op->flags |= VZ__OPF_QUIET;
	}
	if (op->timeout_ns && timer_start(a, op, op->timeout_ns) < 0) {
		vz__msg_release(a->sh, op->final);
		op->lnext = a->op_free;
		a->op_free = op;
		op->kind = 0;
		return NULL;
	}
	op->fnext = fd->ops;
	if (op->fnext)
		op->fnext->fprev = op;
	fd->ops = op;
	fd->nops++;
	return op;
}

static void op_free(struct vz__aio *a, struct vz__aio_op *op)
{
	struct vz__aio_fd *fd = op->fd;

	timer_stop(a, op);
	if (op->fprev)
		op->fprev->fnext = op->fnext;
	else
		fd->ops = op->fnext;
	if (op->fnext)
		op->fnext->fprev = op->fprev;
	fd->nops--;
	if (fd->rx == op)
		fd->rx = NULL;
	if (op->final)
		vz__msg_release(a->sh, op->final);
	if (op->block)
		vz__pool_free(a->sh, op->block, op->block_cls);
	if (op->kind == VZ_IO_SEND)
		vz__sendq_free_chunks(a, op);
	if (op->kind == VZ_IO_SENDTO || op->kind == VZ_IO_READ || op->kind == VZ_IO_WRITE ||
	    op->kind == VZ_IO_FSYNC)
		fd->nsmall--;
	op->kind = 0;
	op->gen = next_gen(op->gen);
	op->lnext = a->op_free;
	a->op_free = op;
	vz__aio_fd_maybe_free(a, fd);
}

void vz__aio_op_drop(struct vz__aio *a, struct vz__aio_op *op)
{
	op_free(a, op);
}

/* Take op off a singly linked shard list (rare: cancel of a waiting op). */
static void list_remove(struct vz__aio_op **head, struct vz__aio_op **tail, struct vz__aio_op *op)
{
	struct vz__aio_op *prev = NULL;

	for (struct vz__aio_op *it = *head; it; prev = it, it = it->lnext) {
		if (it != op)
			continue;
		if (prev)
			prev->lnext = it->lnext;
		else
			*head = it->lnext;
		if (*tail == it)
			*tail = prev;
		it->lnext = NULL;
		return;
	}
}

static void list_append(struct vz__aio_op **head, struct vz__aio_op **tail, struct vz__aio_op *op)
{
	op->lnext = NULL;
	if (*tail)
		(*tail)->lnext = op;
	else
		*head = op;
	*tail = op;
}

/* ---- events -------------------------------------------------------------- */

static void deliver(struct vz__aio *a, struct vz__aio_op *op, struct vz_msg *m,
		    const vz_io_event *ev, size_t extra)
{
	struct vz__shard *sh = a->sh;

	m->to = vz__make_ref(sh->id, op->owner->slot, op->owner_gen);
	m->from = VZ_REF_NULL;
	m->type = VZ_MSG_IO;
	m->len = (uint32_t)(sizeof *ev + extra);
	m->flags |= VZ__MSG_SYS | VZ__MSG_UNCOUNTED;
	memcpy(m->data, ev, sizeof *ev);
	VZ__STAT_ADD(sh, io_events, 1);
	vz__deliver_local(sh, m);
}

static void fill(const struct vz__aio *a, const struct vz__aio_op *op, vz_io_event *ev, int res,
		 int os_errno, vz_fd accepted)
{
	memset(ev, 0, sizeof *ev);
	ev->op = vz__aio_op_handle(a, op);
	ev->tag = op->tag;
	ev->fd =
	    op->fd && op->fd->type != VZ__FD_OPENING ? vz__aio_fd_handle(a, op->fd) : VZ_FD_NULL;
	ev->accepted = accepted;
	ev->res = res;
	ev->os_errno = res < 0 ? os_errno : 0;
	ev->kind = op->kind;
}

bool vz__aio_emit_more(struct vz__aio *a, struct vz__aio_op *op, int res, int os_errno,
		       vz_fd accepted, int bid, uint32_t len)
{
	struct vz__shard *sh = a->sh;
	size_t extra = op->kind == VZ_IO_RECVFROM && bid >= 0 ? op->mh.msg_namelen : 0;
	struct vz_msg *m;
	vz_io_event ev;

	if (!owner_live(op)) {
		if (bid >= 0)
			vz__aio_buf_free(a, (uint32_t)bid);
		VZ__STAT_ADD(sh, io_events_dropped, 1);
		return false;
	}
	m = vz__msg_alloc(sh, sizeof ev + extra);
	if (!m) {
		/* No memory for the event: the data cannot reach the actor,
		 * so the operation ends (VZ_ENOMEM) rather than lose it
		 * silently. */
		if (bid >= 0)
			vz__aio_buf_free(a, (uint32_t)bid);
		VZ__STAT_ADD(sh, io_events_dropped, 1);
		vz__aio_end(a, op, VZ_ENOMEM);
		return false;
	}
	fill(a, op, &ev, res, os_errno, accepted);
	ev.flags = VZ_IO_EV_MORE;
	if (bid >= 0) {
		struct vz__aio_buf *b = &a->bufs[bid];

		ev.data = (const unsigned char *)vz__io_buf_addr(sh->io, (uint32_t)bid) +
			  op->bop.data_off;
		ev.len = len;
		ev.flags |= VZ_IO_EV_BUF;
		m->flags |= VZ__MSG_IOBUF;
		b->state = VZ__BUF_OUT;
		b->op = op;
		b->op_gen = op->gen;
		op->bufs_out++;
		if (extra) {
			memcpy(m->data + sizeof ev, &op->addr, extra);
			ev.peer = (const struct sockaddr *)(const void *)(m->data + sizeof ev);
			ev.peer_len = (uint32_t)extra;
		}
	}
	deliver(a, op, m, &ev, extra);
	vz__aio_touch(a, op);
	return true;
}

void vz__aio_finish(struct vz__aio *a, struct vz__aio_op *op, int res, int os_errno, vz_fd accepted)
{
	struct vz__shard *sh = a->sh;

	if (op->flags & VZ__OPF_PENDING)
		list_remove(&a->pending_head, &a->pending_tail, op);
	if (op->flags & VZ__OPF_NOBUF)
		list_remove(&a->nobuf_head, &a->nobuf_tail, op);
	op->flags &= ~(VZ__OPF_PENDING | VZ__OPF_NOBUF);
	if ((op->flags & VZ__OPF_ENDING) && res == op->end_res && !os_errno)
		os_errno = op->end_os;
	timer_stop(a, op);
	if (!owner_live(op)) {
		VZ__STAT_ADD(sh, io_events_dropped, 1);
	} else if (!((op->flags & VZ__OPF_QUIET) && res >= 0)) {
		vz_io_event ev;
		struct vz_msg *m = op->final;

		op->final = NULL;
		fill(a, op, &ev, res, os_errno, accepted);
		deliver(a, op, m, &ev, 0);
	}
	if (op->kind == VZ_IO_CONNECT && (op->fd->flags & VZ__FDF_CONNECTING)) {
		/* However the connect ended (its completion, or ended before
		 * it reached the backend): the sends queued behind it leave
		 * now or fail with its error, and a close asked meanwhile
		 * completes. After its own event, so they follow it. */
		struct vz__aio_fd *fd = op->fd;

		fd->flags &= ~VZ__FDF_CONNECTING;
		op_free(a, op);
		if (fd->state == VZ__FDS_FREE)
			return;
		if (res < 0)
			vz__sendq_fail(a, fd, res == VZ_ECANCELED ? VZ_ENOTCONN : res,
				       res == VZ_ECANCELED ? ENOTCONN : os_errno);
		vz__sendq_kick(a, fd);
		vz__aio_fd_maybe_free(a, fd);
		return;
	}
	op_free(a, op);
}

void vz__aio_touch(struct vz__aio *a, struct vz__aio_op *op)
{
	if (!op->timeout_ns || (op->flags & (VZ__OPF_ENDING | VZ__OPF_BACKOFF)))
		return;
	timer_stop(a, op);
	if (timer_start(a, op, op->timeout_ns) < 0)
		op->timer = 0; /* no memory for the timer: no timeout rather than none at all */
}

void vz__aio_submit(struct vz__aio *a, struct vz__aio_op *op)
{
	struct vz__shard *sh = a->sh;
	int rc;

	op->bop.fd = op->fd && op->fd->type != VZ__FD_OPENING ? op->fd->raw : -1;
	if (!sh->io || a->pending_head) {
		/* Before the shard's first turn (init before start), or
		 * behind others already waiting: keep the order. */
		op->flags |= VZ__OPF_PENDING;
		list_append(&a->pending_head, &a->pending_tail, op);
		return;
	}
	rc = vz__io_submit(sh->io, &op->bop);
	if (rc == VZ_EFULL) {
		op->flags |= VZ__OPF_PENDING;
		list_append(&a->pending_head, &a->pending_tail, op);
		return;
	}
	if (rc < 0) {
		vz__aio_finish(a, op, rc, 0, VZ_FD_NULL);
		return;
	}
	op->flags |= VZ__OPF_IN_BACKEND;
	a->inflight++;
	VZ__STAT_ADD(sh, io_submitted, 1);
}

void vz__aio_end(struct vz__aio *a, struct vz__aio_op *op, int res)
{
	if (op->flags & VZ__OPF_ENDING)
		return;
	op->flags |= VZ__OPF_ENDING;
	op->end_res = res;
	timer_stop(a, op);
	if (op->kind == VZ_IO_SEND) {
		vz__sendq_end(a, op, res);
		return;
	}
	if (op->flags & VZ__OPF_IN_BACKEND) {
		/* Its last done call brings the final event (io.h: -ECANCELED
		 * or its real result). */
		if (vz__io_cancel(a->sh->io, &op->bop) == VZ_EFULL) {
			vz__io_flush(a->sh->io);
			(void)vz__io_cancel(a->sh->io, &op->bop);
		}
		return;
	}
	/* Waiting on our side (buffers, backoff, pending submit). */
	vz__aio_finish(a, op, res, 0, VZ_FD_NULL);
}

/* Backend completion of an op record. */
static void op_done(struct vz__io_op *bop, int res)
{
	struct vz__aio_op *op = bop->user;
	struct vz__aio *a = op->fd->aio;

	if (a->dying)
		return; /* the shard is going: its tables are freed wholesale */
	if (!(bop->cflags & VZ__IO_CF_MORE)) {
		op->flags &= ~VZ__OPF_IN_BACKEND;
		a->inflight--;
	}
	VZ__STAT_ADD(a->sh, io_completed, 1);
	switch (op->kind) {
	case VZ_IO_READ:
	case VZ_IO_WRITE:
	case VZ_IO_FSYNC:
	case VZ_IO_OPEN:
		vz__file_done(a, op, res);
		break;
	default:
		vz__net_done(a, op, res);
		break;
	}
}

/* ---- receive buffers ----------------------------------------------------- */

static uint32_t bid_of(const struct vz__aio *a, const void *data)
{
	const unsigned char *base = vz__io_buf_addr(a->sh->io, 0);

	return (uint32_t)(((const unsigned char *)data - base) / VZ_IO_RECV_CHUNK);
}

/* A receive's chunk was handled or kept: it may read again. */
static void rx_credit(struct vz__aio *a, struct vz__aio_op *op)
{
	op->bufs_out--;
	if ((op->flags & VZ__OPF_PAUSED) && !(op->flags & (VZ__OPF_NOBUF | VZ__OPF_BACKOFF)) &&
	    !(op->flags & VZ__OPF_IN_BACKEND) && op->bufs_out < VZ__AIO_RECV_CAP) {
		op->flags &= ~VZ__OPF_PAUSED;
		vz__net_arm_rx(a, op);
	}
}

void vz__aio_buf_free(struct vz__aio *a, uint32_t bid)
{
	struct vz__aio_buf *b = &a->bufs[bid];
	struct vz__aio_op *w;

	if (b->state == VZ__BUF_OUT && b->op && b->op->kind && b->op->gen == b->op_gen)
		rx_credit(a, b->op);
	b->state = VZ__BUF_FREE;
	b->op = NULL;
	b->owner = NULL;
	b->gen = next_gen(b->gen);
	vz__io_buf_put(a->sh->io, bid);
	/* A receive waiting for a buffer takes this one. */
	if ((w = a->nobuf_head)) {
		a->nobuf_head = w->lnext;
		if (!a->nobuf_head)
			a->nobuf_tail = NULL;
		w->lnext = NULL;
		w->flags &= ~(VZ__OPF_NOBUF | VZ__OPF_PAUSED);
		vz__net_arm_rx(a, w);
	}
}

/* See aio.h. */
void vz__aio_wait_buf(struct vz__aio *a, struct vz__aio_op *op)
{
	VZ__STAT_ADD(a->sh, io_bufs_exhausted, 1);
	op->flags |= VZ__OPF_NOBUF | VZ__OPF_PAUSED;
	list_append(&a->nobuf_head, &a->nobuf_tail, op);
}

/* See aio.h. */
int vz__aio_bufs_ready(struct vz__aio *a)
{
	int rc;

	if (a->bufs_ready)
		return 0;
	if (!a->sh->io)
		return VZ_EAGAIN;
	rc = vz__io_bufs_init(a->sh->io, VZ__AIO_NBUFS, VZ_IO_RECV_CHUNK);
	if (rc < 0)
		return rc;
	a->bufs_ready = true;
	return 0;
}

/* ---- core hooks ---------------------------------------------------------- */

unsigned vz__aio_turn(struct vz__shard *sh)
{
	struct vz__aio *a = sh->aio;
	unsigned n = 0;
	int r;

	if (!a || !sh->io)
		return 0;
	a->turns++;
	while (a->kick_head) {
		struct vz__aio_fd *fd = a->kick_head;

		a->kick_head = fd->knext;
		fd->knext = NULL;
		fd->kick_queued = false;
		if (fd->state != VZ__FDS_FREE)
			vz__sendq_kick(a, fd);
	}
	if (a->pending_head) {
		/* Take the whole list: a submission that finds the queue full
		 * again goes back on it, with the rest behind it, in order. */
		struct vz__aio_op *op = a->pending_head, *next;

		a->pending_head = a->pending_tail = NULL;
		for (; op; op = next) {
			next = op->lnext;
			op->lnext = NULL;
			op->flags &= ~VZ__OPF_PENDING;
			if (a->pending_head) {
				op->flags |= VZ__OPF_PENDING;
				list_append(&a->pending_head, &a->pending_tail, op);
				continue;
			}
			if (op->kind == VZ_IO_RECV || op->kind == VZ_IO_RECVFROM ||
			    op->kind == VZ_IO_ACCEPT)
				vz__net_arm_rx(a, op);
			else
				vz__aio_submit(a, op);
			n++;
		}
	}
	/* Receives waiting for a buffer while some are free (the shortage
	 * was injected, or the buffers came back by a path that resumes
	 * nobody): give them one each, as far as they go. */
	while (a->nobuf_head && vz__io_bufs_free(sh->io) > 0) {
		struct vz__aio_op *w = a->nobuf_head;

		a->nobuf_head = w->lnext;
		if (!a->nobuf_head)
			a->nobuf_tail = NULL;
		w->lnext = NULL;
		w->flags &= ~(VZ__OPF_NOBUF | VZ__OPF_PAUSED);
		vz__net_arm_rx(a, w);
		n++;
		if (w->flags & VZ__OPF_NOBUF)
			break; /* short again */
	}
	if (a->inflight) {
		/* A busy shard reaps every turn while operations are out
		 * (io_uring: no syscall unless the kernel has something for
		 * us; epoll: one epoll_wait). */
		VZ__STAT_ADD(sh, io_busy_polls, 1);
		r = vz__io_wait(sh->io, 0);
		if (r > 0)
			n += (unsigned)r;
	}
	return n;
}

bool vz__aio_has_work(const struct vz__shard *sh)
{
	return sh->aio && sh->io &&
	       (sh->aio->pending_head || (sh->aio->nobuf_head && vz__io_bufs_free(sh->io) > 0));
}

void vz__aio_actor_stopped(struct vz__shard *sh, struct vz_actor *actor)
{
	struct vz__aio *a = sh->aio;
	struct vz__aio_fd *fd, *next;
	struct vz__aio_buf *b;

	if (!a)
		return;
	while ((b = actor->io_kept)) {
		actor->io_kept = b->knext;
		b->knext = b->kprev = NULL;
		vz__aio_buf_free(a, (uint32_t)(b - a->bufs));
	}
	for (fd = actor->io_fds; fd; fd = next) {
		next = fd->anext;
		vz__aio_fd_close(a, fd, true, false);
	}
	/* Entries still waiting for their operations' last completions
	 * leave the list now: the slot may get a new actor meanwhile. */
	while ((fd = actor->io_fds))
		fd_unlink_owner(fd);
}

void vz__aio_msg_done(struct vz__shard *sh, struct vz_msg *m, bool dropped)
{
	struct vz__aio *a = sh->aio;

	if (dropped)
		VZ__STAT_ADD(sh, io_events_dropped, 1);
	if (a && (m->flags & VZ__MSG_IOBUF)) {
		const vz_io_event *ev = (const void *)m->data;

		m->flags &= (uint8_t)~VZ__MSG_IOBUF;
		vz__aio_buf_free(a, bid_of(a, ev->data));
	}
}

bool vz__aio_timer(struct vz__shard *sh, struct vz__timer_owner *o, const vz_timer_event *ev)
{
	struct vz__aio *a = sh->aio;
	struct vz__aio_op *op;

	if (!a || o != &a->tmo)
		return false;
	/* Release the fired one-shot's slot now: no message carries it. */
	(void)vz__timers_deliverable(&sh->timers, ev->timer.id);
	op = op_at(a, (uint32_t)ev->tag);
	if (!op || !op->kind || op->gen != (uint32_t)(ev->tag >> 32) || op->timer != ev->timer.id)
		return true;
	op->timer = 0;
	if (op->flags & VZ__OPF_BACKOFF) {
		op->flags &= ~(VZ__OPF_BACKOFF | VZ__OPF_PAUSED);
		vz__aio_touch(a, op);
		vz__net_arm_rx(a, op);
		return true;
	}
	vz__aio_end(a, op, VZ_ETIMEDOUT);
	return true;
}

/* See aio.h. */
void vz__aio_backoff(struct vz__aio *a, struct vz__aio_op *op)
{
	VZ__STAT_ADD(a->sh, io_accept_backoffs, 1);
	timer_stop(a, op);
	op->flags |= VZ__OPF_BACKOFF | VZ__OPF_PAUSED;
	if (timer_start(a, op, VZ__AIO_BACKOFF_NS) < 0) {
		op->flags &= ~(VZ__OPF_BACKOFF | VZ__OPF_PAUSED);
		vz__net_arm_rx(a, op); /* no timer: try again at once */
	}
}

/* ---- public: any descriptor ---------------------------------------------- */

VZ_API const vz_io_event *vz_io_event_of(const vz_msg *m)
{
	if (!m || m->type != VZ_MSG_IO || !(m->flags & VZ__MSG_SYS) || m->len < sizeof(vz_io_event))
		return NULL;
	return (const vz_io_event *)(const void *)m->data;
}

VZ_API int vz_io_cancel(vz_actor *self, vz_io_op h)
{
	struct vz__aio *a;
	struct vz__aio_op *op;
	int rc = vz__aio_check(self);

	if (rc < 0)
		return rc;
	a = self->shard->aio;
	if ((unsigned)(h.id >> 56) != a->sh->id)
		return VZ_ESTALE;
	op = op_at(a, ID_INDEX(h.id));
	if (!op || !op->kind || op->gen != ID_GEN(h.id) || op->owner != self ||
	    op->owner_gen != self->gen)
		return VZ_ESTALE;
	vz__aio_end(a, op, VZ_ECANCELED);
	return 0;
}

/* vz_io_close() (graceful) and vz_io_abort() (at once, with a reset). */
static int close_call(vz_actor *self, vz_fd h, bool abort)
{
	struct vz__aio_fd *fd;
	int rc = vz__aio_enter(self, h, 0, &fd);

	if (rc < 0)
		return rc;
	vz__aio_fd_close(self->shard->aio, fd, abort, abort);
	return 0;
}

VZ_API int vz_io_close(vz_actor *self, vz_fd h)
{
	return close_call(self, h, false);
}

VZ_API int vz_io_abort(vz_actor *self, vz_fd h)
{
	return close_call(self, h, true);
}

VZ_API int vz_io_detach(vz_actor *self, vz_fd h, int *raw_out)
{
	struct vz__aio_fd *fd;
	int rc = vz__aio_enter(self, h, raw_out ? 0 : VZ_EINVAL, &fd);

	if (rc < 0)
		return rc;
	if (fd->nops || fd->sq.busy || fd->sq.head)
		return VZ_EBUSY;
	*raw_out = fd->raw;
	vz__aio_fd_drop(self->shard->aio, fd, true);
	return 0;
}

VZ_API int vz_io_adopt(vz_actor *self, int raw, vz_fd *out)
{
	struct vz__aio *a;
	struct vz__aio_fd *fd;
	int type = VZ__FD_OTHER, st, fl, rc = vz__aio_check(self);
	socklen_t len = sizeof st;

	if (rc < 0)
		return rc;
	if (raw < 0 || !out)
		return VZ_EINVAL;
	a = self->shard->aio;
	if (vz__aio_simulated(a)) {
		/* Only the simulation's own sockets (from vz_io_detach). */
		type = vz__sim_net_kind(a->sh->sim, raw);
		if (type < 0)
			return type;
		goto adopt;
	}
	fl = fcntl(raw, F_GETFL);
	if (fl < 0)
		return VZ_EINVAL;
	if (!(fl & O_NONBLOCK))
		(void)fcntl(raw, F_SETFL, fl | O_NONBLOCK);
	(void)fcntl(raw, F_SETFD, FD_CLOEXEC);
	if (getsockopt(raw, SOL_SOCKET, SO_TYPE, &st, &len) == 0) {
		int acc = 0;

		len = sizeof acc;
		if (st == SOCK_DGRAM)
			type = VZ__FD_UDP;
		else if (st == SOCK_STREAM &&
			 getsockopt(raw, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc)
			type = VZ__FD_TCP_LISTEN;
		else if (st == SOCK_STREAM)
			type = VZ__FD_TCP;
	} else if (errno == ENOTSOCK) {
		type = VZ__FD_FILE;
	}
adopt:
	fd = vz__aio_fd_new(a, self, raw, type);
	if (!fd)
		return VZ_ENOMEM;
	*out = vz__aio_fd_handle(a, fd);
	return 0;
}

VZ_API int vz_io_fileno(vz_actor *self, vz_fd h)
{
	struct vz__aio_fd *fd;
	int rc = vz__aio_enter(self, h, 0, &fd);

	return rc < 0 ? rc : fd->raw;
}

static int addr_call(vz_actor *self, vz_fd h, struct sockaddr *addr, uint32_t *len, bool peer)
{
	struct vz__aio_fd *fd;
	socklen_t l;
	int rc = vz__aio_enter(self, h, addr && len ? 0 : VZ_EINVAL, &fd);

	if (rc < 0)
		return rc;
	if (vz__aio_simulated(self->shard->aio))
		return vz__sim_net_name(self->shard->sim, fd->raw, addr, len, peer);
	l = *len;
	rc = peer ? getpeername(fd->raw, addr, &l) : getsockname(fd->raw, addr, &l);
	if (rc < 0)
		return vz_error_from_errno(errno);
	*len = l;
	return 0;
}

VZ_API int vz_io_local_addr(vz_actor *self, vz_fd fd, struct sockaddr *addr, uint32_t *len)
{
	return addr_call(self, fd, addr, len, false);
}

VZ_API int vz_io_peer_addr(vz_actor *self, vz_fd fd, struct sockaddr *addr, uint32_t *len)
{
	return addr_call(self, fd, addr, len, true);
}

VZ_API int vz_io_buf_keep(vz_actor *self, const vz_msg *cm, vz_io_buf *out)
{
	struct vz_msg *m = (struct vz_msg *)(uintptr_t)cm;
	const vz_io_event *ev;
	struct vz__aio *a;
	struct vz__aio_buf *b;
	uint32_t bid;
	int rc = vz__aio_check(self);

	if (rc < 0)
		return rc;
	if (!m || !out || !(ev = vz_io_event_of(m)) || !(ev->flags & VZ_IO_EV_BUF))
		return VZ_EINVAL;
	if (m->to.id != vz_self(self).id)
		return VZ_EINVAL;
	if (!(m->flags & VZ__MSG_IOBUF))
		return VZ_EBUSY; /* kept already */
	a = self->shard->aio;
	bid = bid_of(a, ev->data);
	b = &a->bufs[bid];
	m->flags &= (uint8_t)~VZ__MSG_IOBUF;
	if (b->op && b->op->kind && b->op->gen == b->op_gen)
		rx_credit(a, b->op);
	b->op = NULL;
	b->state = VZ__BUF_KEPT;
	b->owner = self;
	b->kprev = NULL;
	b->knext = self->io_kept;
	if (b->knext)
		b->knext->kprev = b;
	self->io_kept = b;
	out->id = (uint64_t)b->gen << 32 | bid;
	return 0;
}

VZ_API int vz_io_buf_release(vz_actor *self, vz_io_buf h)
{
	struct vz__aio *a;
	struct vz__aio_buf *b;
	uint32_t bid = (uint32_t)h.id;
	int rc = vz__aio_check(self);

	if (rc < 0)
		return rc;
	a = self->shard->aio;
	if (bid >= VZ__AIO_NBUFS)
		return VZ_ESTALE;
	b = &a->bufs[bid];
	if (b->state != VZ__BUF_KEPT || b->gen != (uint32_t)(h.id >> 32) || b->owner != self)
		return VZ_ESTALE;
	if (b->kprev)
		b->kprev->knext = b->knext;
	else
		self->io_kept = b->knext;
	if (b->knext)
		b->knext->kprev = b->kprev;
	b->knext = b->kprev = NULL;
	vz__aio_buf_free(a, bid);
	return 0;
}
