// SPDX-License-Identifier: MIT
/*
 * The I/O backend of a simulated shard, behind the same ops table as
 * io_uring.c and epoll.c (io/io.h). It never blocks and touches no file
 * descriptor: a wait only runs the callbacks of operations the driver has
 * completed, a wake has nothing to interrupt (the driver never sleeps; it
 * advances virtual time instead), and an operation waits until it can
 * complete (the in-memory network, sim_net.c, says when: bytes arrived, a
 * connection came, the window has room) and the driver draws a step for
 * it (vz__sim_io_step()). Results are the real backends': the same res,
 * cflags, provided buffers (taken from a stack, as epoll does) and
 * multishot rules (io/io.h), so the actors' I/O layer above cannot tell.
 * Files have no simulation: their operations end with -ENOSYS.
 */
#include "sim/sim.h"

#include <errno.h>
#include <stdlib.h>

enum { OP_IDLE = 0, OP_PENDING = 0x53495050 /* "SIPP" */, OP_DONE = 0x5349444e /* "SIDN" */ };

struct vz__sim_io {
	struct vz__io_head head;
	vz_sim *sim;
	unsigned shard;
	/* Submitted, not yet completed (FIFO through next_pending); the
	 * driver draws which completes next. */
	struct vz__io_op *pend_head, *pend_tail;
	uint64_t npending;
	/* Completed, callback not yet run (FIFO). */
	struct vz__io_op *done_head, *done_tail;
	bool destroying;
	uint64_t wakes, completed, waits;
};

static const struct vz__io_ops sim_ops;

static struct vz__sim_io *to_sio(struct vz__io *io)
{
	return (struct vz__sim_io *)(void *)io;
}

static void push(struct vz__io_op **head, struct vz__io_op **tail, struct vz__io_op *op)
{
	op->next_pending = NULL;
	if (*tail)
		(*tail)->next_pending = op;
	else
		*head = op;
	*tail = op;
}

/* Unlink op from the pending list (it is there). */
static void unlink_pending(struct vz__sim_io *s, struct vz__io_op *op)
{
	struct vz__io_op **pp = &s->pend_head, *prev = NULL;

	while (*pp != op) {
		prev = *pp;
		pp = &(*pp)->next_pending;
	}
	*pp = op->next_pending;
	if (s->pend_tail == op)
		s->pend_tail = prev;
	s->npending--;
}

static void finish(struct vz__sim_io *s, struct vz__io_op *op, int res)
{
	op->res = res;
	op->state = OP_DONE;
	push(&s->done_head, &s->done_tail, op);
}

/* Run the callbacks of completed operations; they may submit again. */
static int run_done(struct vz__sim_io *s)
{
	int n = 0;
	struct vz__io_op *op;

	while ((op = s->done_head)) {
		s->done_head = op->next_pending;
		if (!s->done_head)
			s->done_tail = NULL;
		op->state = OP_IDLE;
		s->completed++;
		op->done(op, op->res);
		n++;
	}
	return n;
}

static int sim_wait(struct vz__io *io, int64_t timeout_ns)
{
	(void)timeout_ns; /* never blocks: the driver advances virtual time */
	to_sio(io)->waits++;
	return run_done(to_sio(io));
}

static int sim_wake(struct vz__io *self, struct vz__io *target)
{
	(void)self;
	to_sio(target)->wakes++;
	return 0;
}

static int sim_submit(struct vz__io *io, struct vz__io_op *op)
{
	struct vz__sim_io *s = to_sio(io);
	int rc;

	if (s->destroying)
		return VZ_ESTATE;
	if (op->state != OP_IDLE || op->opcode > VZ__IO_OP_LAST ||
	    op->opcode == VZ__IO_OP_SENDMSG_ZC /* vz__io_send_zc_ok() is false */)
		return VZ_EINVAL;
	if (op->fd < 0 && op->opcode != VZ__IO_OP_NOP && op->opcode != VZ__IO_OP_OPENAT)
		return VZ_EINVAL;
	op->cflags = 0;
	if (op->opcode == VZ__IO_OP_CONNECT) {
		rc = vz__sim_net_connect(s->sim, op);
		if (rc < 0) {
			/* Ends at once with rc, still through a wait (io.h:
			 * done never runs inside submit). */
			op->state = OP_DONE;
			op->res = rc;
			push(&s->done_head, &s->done_tail, op);
			return 0;
		}
	}
	op->state = OP_PENDING;
	push(&s->pend_head, &s->pend_tail, op);
	s->npending++;
	return 0;
}

static int sim_cancel(struct vz__io *io, struct vz__io_op *op)
{
	struct vz__sim_io *s = to_sio(io);

	if (op->state != OP_PENDING)
		return VZ_ENOENT;
	unlink_pending(s, op);
	op->cflags = 0; /* the last call: no MORE, no buffer (io.h) */
	finish(s, op, -ECANCELED);
	return 0;
}

static uint32_t sim_setup_flags(const struct vz__io *io)
{
	(void)io;
	return 0;
}

static void sim_stats(const struct vz__io *io, struct vz__io_stats *out)
{
	const struct vz__sim_io *s = (const struct vz__sim_io *)(const void *)io;

	*out = (struct vz__io_stats){0};
	out->wakes_coalesced = s->wakes;
	out->ops_completed = s->completed;
}

static void sim_destroy(struct vz__io *io)
{
	struct vz__sim_io *s = to_sio(io);

	s->destroying = true;
	while (s->pend_head) {
		struct vz__io_op *op = s->pend_head;

		unlink_pending(s, op);
		op->cflags = 0;
		finish(s, op, -ECANCELED);
	}
	run_done(s);
	if (s->sim->io[s->shard] == s)
		s->sim->io[s->shard] = NULL;
	free(s);
}

/* See io.h (vz__io_bufs_init): a stack of free buffer ids, as epoll.c
 * keeps; sim_net.c takes from its top when data is received. */
static int sim_bufs_init(struct vz__io *io)
{
	struct vz__io_bufs *b = &to_sio(io)->head.bufs;

	b->stack = malloc((size_t)b->n * sizeof *b->stack);
	if (!b->stack)
		return VZ_ENOMEM;
	for (uint32_t i = 0; i < b->n; i++)
		b->stack[i] = b->n - 1 - i;
	return 0;
}

/* See io.h (vz__io_buf_put); io.c counted it in nfree already. */
static void sim_buf_put(struct vz__io *io, uint32_t bid)
{
	struct vz__io_bufs *b = &to_sio(io)->head.bufs;

	b->stack[b->nfree - 1] = bid;
}

static const struct vz__io_ops sim_ops = {
    .kind = VZ__IO_SIM,
    .destroy = sim_destroy,
    .wait = sim_wait,
    .wake = sim_wake,
    .submit = sim_submit,
    .cancel = sim_cancel,
    .setup_flags = sim_setup_flags,
    .stats = sim_stats,
    .bufs_init = sim_bufs_init,
    .buf_put = sim_buf_put,
};

int vz__sim_io_create(vz_sim *sim, unsigned shard, struct vz__io **out)
{
	struct vz__sim_io *s = calloc(1, sizeof *s);

	if (!s)
		return VZ_ENOMEM;
	s->head.ops = &sim_ops;
	s->sim = sim;
	s->shard = shard;
	sim->io[shard] = s;
	*out = (struct vz__io *)(void *)s;
	return 0;
}

uint64_t vz__sim_io_ready(const vz_sim *sim)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < sim->nshards; i++) {
		const struct vz__sim_io *s = sim->io[i];

		for (const struct vz__io_op *op = s ? s->pend_head : NULL; op;
		     op = op->next_pending)
			n += vz__sim_net_ready(sim, op);
	}
	return n;
}

uint64_t vz__sim_io_bufs_out(const vz_sim *sim)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < sim->nshards; i++) {
		const struct vz__sim_io *s = sim->io[i];

		if (s && s->head.bufs.mem)
			n += s->head.bufs.n - s->head.bufs.nfree;
	}
	return n;
}

void vz__sim_io_step(vz_sim *sim)
{
	uint64_t n = vz__sim_io_ready(sim), pick;

	if (!n)
		return; /* a crash drawn before this step ended the op */
	pick = vz__sim_below(sim, n);
	for (unsigned i = 0; i < sim->nshards; i++) {
		struct vz__sim_io *s = sim->io[i];
		struct vz__io_op *op;
		int res;

		for (op = s ? s->pend_head : NULL; op; op = op->next_pending)
			if (vz__sim_net_ready(sim, op) && pick-- == 0)
				break;
		if (!op)
			continue;
		/* Callbacks run as the owning shard, as inside its wait. */
		vz__set_current(sim->rt->shards[i]);
		res = op->opcode == VZ__IO_OP_NOP ? 0 : vz__sim_net_complete(sim, &s->head, op);
		sim->st.io_completed++;
		if (op->cflags & VZ__IO_CF_MORE) {
			/* A multishot result: the op stays outstanding (its
			 * callback may cancel it, which ends it below). */
			s->completed++;
			op->done(op, res);
		} else {
			unlink_pending(s, op);
			finish(s, op, res);
		}
		vz__io_wait((struct vz__io *)(void *)s, 0);
		vz__set_current(NULL);
		return;
	}
}
