// SPDX-License-Identifier: MIT
/*
 * The I/O backend of a simulated shard, behind the same ops table as
 * io_uring.c and epoll.c (io/io.h). It never blocks and touches no file
 * descriptor: a wait only runs the callbacks of operations the driver has
 * completed, a wake has nothing to interrupt (the driver never sleeps; it
 * advances virtual time instead), and an operation waits until the driver
 * draws a step for it (vz__sim_io_step()). Today only VZ__IO_OP_NOP is
 * simulated; an operation on a descriptor is refused with VZ_ENOSYS until
 * the simulation models sockets and files (NOTES.md, "Not yet").
 */
#include "sim/sim.h"

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

	if (s->destroying)
		return VZ_ESTATE;
	if (op->state != OP_IDLE)
		return VZ_EINVAL;
	if (op->opcode != VZ__IO_OP_NOP)
		return op->opcode <= VZ__IO_OP_CONNECT ? VZ_ENOSYS : VZ_EINVAL;
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
	finish(s, op, -125 /* -ECANCELED */);
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
		finish(s, op, -125 /* -ECANCELED */);
	}
	run_done(s);
	if (s->sim->io[s->shard] == s)
		s->sim->io[s->shard] = NULL;
	free(s);
}

/* Provided receive buffers belong to descriptor I/O, which the simulation
 * does not model yet: refusing here makes vz_io_recv() and friends return
 * VZ_ENOSYS instead of pretending. */
static int sim_bufs_init(struct vz__io *io)
{
	(void)io;
	return VZ_ENOSYS;
}

static void sim_buf_put(struct vz__io *io, uint32_t bid)
{
	(void)io, (void)bid;
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

uint64_t vz__sim_io_pending(const vz_sim *sim)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < sim->nshards; i++)
		if (sim->io[i])
			n += sim->io[i]->npending;
	return n;
}

void vz__sim_io_step(vz_sim *sim)
{
	uint64_t pick = vz__sim_below(sim, vz__sim_io_pending(sim));

	for (unsigned i = 0; i < sim->nshards; i++) {
		struct vz__sim_io *s = sim->io[i];
		struct vz__io_op *op;

		if (!s || pick >= s->npending) {
			pick -= s ? s->npending : 0;
			continue;
		}
		for (op = s->pend_head; pick--; op = op->next_pending)
			;
		unlink_pending(s, op);
		finish(s, op, 0); /* a NOP's result */
		sim->st.io_completed++;
		/* Callbacks run inside the shard's wait, on its thread. */
		vz__set_current(sim->rt->shards[i]);
		vz__io_wait((struct vz__io *)(void *)s, 0);
		vz__set_current(NULL);
		return;
	}
}
