// SPDX-License-Identifier: MIT
/*
 * The TCP and UDP calls of include/veloz/io.h and what their completions
 * become: listen, accept (multishot, with a pause after EMFILE), connect,
 * stream and datagram receives into the shard's provided buffers
 * (multishot; paused, never ended, when buffers run out or the actor lags
 * VZ__AIO_RECV_CAP chunks behind), datagram sends and multicast. Sends on
 * streams are sendq.c's. Owner thread.
 */
#include <errno.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "aio/aio.h"
#include "util/fault.h"

/* ---- arming receives and accepts --------------------------------------- */

void vz__net_arm_rx(struct vz__aio *a, struct vz__aio_op *op)
{
	struct vz__shard *sh = a->sh;
	int rc;

	if (op->flags & VZ__OPF_ENDING) {
		if (!(op->flags & VZ__OPF_IN_BACKEND))
			vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
		return;
	}
	if (op->flags & (VZ__OPF_IN_BACKEND | VZ__OPF_PENDING | VZ__OPF_NOBUF | VZ__OPF_BACKOFF))
		return; /* armed, or waiting already */
	if (!sh->io) {
		vz__aio_submit(a, op); /* queued for the first turn */
		return;
	}
	if (op->kind == VZ_IO_ACCEPT) {
		op->bop.opcode = VZ__IO_OP_ACCEPT;
		op->bop.flags = VZ__IO_F_MULTI;
		vz__aio_submit(a, op);
		return;
	}
	rc = vz__aio_bufs_ready(a);
	if (rc < 0) {
		vz__aio_finish(a, op, rc, 0, VZ_FD_NULL);
		return;
	}
	if (op->bufs_out >= VZ__AIO_RECV_CAP) {
		op->flags |= VZ__OPF_PAUSED; /* resumed by rx_credit() */
		return;
	}
	if (vz__io_bufs_free(sh->io) == 0 || VZ_FAULT(VZ_FAULT_IO_ENOBUFS)) {
		vz__aio_wait_buf(a, op);
		return;
	}
	op->bop.flags = VZ__IO_F_BUFSEL | VZ__IO_F_MULTI;
	if (op->kind == VZ_IO_RECV) {
		op->bop.opcode = VZ__IO_OP_RECV;
	} else {
		memset(&op->mh, 0, sizeof op->mh);
		op->iov.iov_base = NULL;
		op->iov.iov_len = VZ_IO_RECV_CHUNK;
		op->mh.msg_name = &op->addr;
		op->mh.msg_namelen = sizeof op->addr;
		op->mh.msg_iov = &op->iov;
		op->mh.msg_iovlen = 1;
		op->bop.opcode = VZ__IO_OP_RECVMSG;
		op->bop.buf = &op->mh;
	}
	vz__aio_submit(a, op);
}

/* A multishot op's backend part ended: arm it again, or end it. */
static void rearm(struct vz__aio *a, struct vz__aio_op *op)
{
	if (op->flags & VZ__OPF_ENDING)
		vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
	else
		vz__net_arm_rx(a, op);
}

/* ---- completions ---------------------------------------------------------- */

static void accept_done(struct vz__aio *a, struct vz__aio_op *op, int res, bool more)
{
	int os, code;

	if (res >= 0 && VZ_FAULT(VZ_FAULT_SOCKET_EMFILE)) {
		vz__aio_raw_close(a, res);
		res = -EMFILE;
	}
	if (res >= 0) {
		struct vz__aio_fd *nfd = NULL;

		if (!(op->owner->flags & VZ__ACTOR_LIVE) || op->owner->gen != op->owner_gen) {
			vz__aio_raw_close(a, res); /* nobody to own it */
			VZ__STAT_ADD(a->sh, io_events_dropped, 1);
		} else if (!(nfd = vz__aio_fd_new(a, op->owner, res, VZ__FD_TCP))) {
			vz__aio_raw_close(a, res);
			vz__aio_emit_more(a, op, VZ_ENOMEM, ENOMEM, VZ_FD_NULL, -1, 0);
		} else {
			vz__aio_emit_more(a, op, 0, 0, vz__aio_fd_handle(a, nfd), -1, 0);
		}
		if (!more && op->kind)
			rearm(a, op);
		return;
	}
	switch (res) {
	case -EMFILE:
	case -ENFILE:
	case -ENOBUFS:
	case -ENOMEM:
		/* Out of descriptors: say so (not final), pause, resume. */
		code = vz__aio_res(res, &os);
		if (!(op->flags & VZ__OPF_ENDING))
			vz__aio_emit_more(a, op, code == VZ_ENOMEM ? VZ_ENOMEM : VZ_EMFILE, os,
					  VZ_FD_NULL, -1, 0);
		if (!op->kind)
			return; /* ended by a failed event */
		if (op->flags & VZ__OPF_ENDING) {
			if (!more)
				vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
			return;
		}
		vz__aio_backoff(a, op);
		if (more)
			(void)vz__io_cancel(a->sh->io, &op->bop);
		return;
	case -ECANCELED:
		if (op->flags & VZ__OPF_ENDING)
			vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
		else if (!(op->flags & VZ__OPF_BACKOFF))
			vz__aio_finish(a, op, VZ_ECANCELED, ECANCELED, VZ_FD_NULL);
		return; /* backoff: its timer re-arms */
	case -ECONNABORTED:
	case -EAGAIN:
	case -EINTR:
	case -EPROTO:
	case -EPERM:
		/* The connection went before we took it: keep accepting. */
		if (!more)
			rearm(a, op);
		return;
	default:
		if (more)
			return;
		code = vz__aio_res(res, &os);
		vz__aio_finish(a, op, (op->flags & VZ__OPF_ENDING) ? op->end_res : code, os,
			       VZ_FD_NULL);
	}
}

static void rx_done(struct vz__aio *a, struct vz__aio_op *op, int res, bool more)
{
	const struct vz__io_op *b = &op->bop;
	int os, code;

	if (res >= 0 && (b->cflags & VZ__IO_CF_BUF) && (res > 0 || op->kind == VZ_IO_RECVFROM)) {
		int bid = (int)b->bid;

		if (op->kind == VZ_IO_RECV && VZ_FAULT(VZ_FAULT_IO_ECONNRESET)) {
			/* As if the kernel had said ECONNRESET: the receive
			 * ends with it (its backend part is cancelled). */
			vz__aio_buf_free(a, (uint32_t)bid);
			if (!op->kind)
				return;
			op->end_os = ECONNRESET;
			if (!more) {
				res = -ECONNRESET;
				goto fail;
			}
			vz__aio_end(a, op, VZ_ECONNRESET);
			return;
		}
		if (!vz__aio_emit_more(a, op, res, 0, VZ_FD_NULL, bid, (uint32_t)res)) {
			op->mh.msg_namelen = sizeof op->addr;
			goto after_event;
		}
		/* A multishot recvmsg reuses the header: room for the next
		 * sender's address (io.h). */
		op->mh.msg_namelen = sizeof op->addr;
		if (more && op->bufs_out >= VZ__AIO_RECV_CAP && !(op->flags & VZ__OPF_ENDING)) {
			/* The actor lags: stop reading this connection until
			 * it catches up (rx_credit() re-arms). */
			op->flags |= VZ__OPF_PAUSED;
			(void)vz__io_cancel(a->sh->io, &op->bop);
		}
	after_event:
		if (!more && op->kind && !(op->flags & VZ__OPF_IN_BACKEND)) {
			rearm(a, op);
			/* A datagram receive that ended with a result (io_uring
			 * has no multishot recvmsg here): hand the new SQE to
			 * the kernel now, so a queue of datagrams drains in this
			 * wait (up to VZ__AIO_DGRAM_BURST per socket per turn)
			 * instead of one per turn. */
			if (op->kind == VZ_IO_RECVFROM && (op->flags & VZ__OPF_IN_BACKEND) &&
			    a->sh->io) {
				if (op->burst_turn != a->turns) {
					op->burst_turn = a->turns;
					op->burst = 0;
				}
				if (++op->burst < VZ__AIO_DGRAM_BURST)
					vz__io_flush(a->sh->io);
			}
		}
		return;
	}
	if (res >= 0 && (b->cflags & VZ__IO_CF_BUF))
		vz__aio_buf_free(a, b->bid); /* 0 bytes: end of stream below */
	if (res == 0) {
		vz__aio_finish(a, op, 0, 0, VZ_FD_NULL);
		return;
	}
fail:
	switch (res) {
	case -ENOBUFS:
		if (op->flags & VZ__OPF_ENDING)
			vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
		else
			vz__aio_wait_buf(a, op);
		return;
	case -ECANCELED:
		if (op->flags & VZ__OPF_ENDING) {
			vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
		} else if (op->flags & VZ__OPF_PAUSED) {
			if (op->bufs_out < VZ__AIO_RECV_CAP) {
				op->flags &= ~VZ__OPF_PAUSED;
				vz__net_arm_rx(a, op);
			}
		} else {
			vz__aio_finish(a, op, VZ_ECANCELED, ECANCELED, VZ_FD_NULL);
		}
		return;
	case -EAGAIN:
	case -EINTR:
		if (!more)
			rearm(a, op);
		return;
	default:
		if (more)
			return;
		code = vz__aio_res(res, &os);
		vz__aio_finish(a, op, code, os, VZ_FD_NULL);
	}
}

void vz__net_done(struct vz__aio *a, struct vz__aio_op *op, int res)
{
	bool more = (op->bop.cflags & VZ__IO_CF_MORE) != 0;
	int os, code;

	switch (op->kind) {
	case VZ_IO_ACCEPT:
		accept_done(a, op, res, more);
		return;
	case VZ_IO_RECV:
	case VZ_IO_RECVFROM:
		rx_done(a, op, res, more);
		return;
	default: /* CONNECT, SENDTO: single-shot */
		if (res == -ECANCELED && (op->flags & VZ__OPF_ENDING)) {
			vz__aio_finish(a, op, op->end_res, 0, VZ_FD_NULL);
			return;
		}
		code = vz__aio_res(res, &os);
		vz__aio_finish(a, op, code, os, VZ_FD_NULL);
	}
}

/* ---- sockets --------------------------------------------------------------- */

static int check_addr(const struct sockaddr *addr, uint32_t len)
{
	if (!addr)
		return VZ_EINVAL;
	if (addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in))
		return 0;
	if (addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6))
		return 0;
	return VZ_EINVAL;
}

/* A multicast group of a family we take (vz_udp_join()'s check of its
 * address, made before the handle's). */
static bool is_group(const struct sockaddr *group, uint32_t len)
{
	const struct sockaddr_in *g4 = (const struct sockaddr_in *)(const void *)group;
	const struct sockaddr_in6 *g6 = (const struct sockaddr_in6 *)(const void *)group;

	if (check_addr(group, len) < 0)
		return false;
	if (group->sa_family == AF_INET)
		return IN_MULTICAST(ntohl(g4->sin_addr.s_addr));
	return IN6_IS_ADDR_MULTICAST(&g6->sin6_addr);
}

/* vz_io_sendto()'s checks of its bytes and destination. */
static int sendto_args(const void *data, size_t len, const struct sockaddr *to, uint32_t tolen)
{
	if ((!data && len) || check_addr(to, tolen) < 0 || tolen > sizeof(struct sockaddr_storage))
		return VZ_EINVAL;
	return len > VZ_IO_DGRAM_MAX ? VZ_ETOOBIG : 0;
}

/* A new non-blocking socket, or a negative VZ_E*. */
static int new_socket(int family, int type)
{
	int s;

	if (VZ_FAULT(VZ_FAULT_SOCKET_EMFILE))
		return VZ_EMFILE;
	s = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	return s < 0 ? vz_error_from_errno(errno) : s;
}

static int bound_socket(vz_actor *self, const struct sockaddr *addr, uint32_t len, int type,
			int reuseport, int backlog, int nodelay, vz_fd *out)
{
	struct vz__aio *a = self->shard->aio;
	struct vz__aio_fd *fd;
	int one = 1, s, rc;

	rc = check_addr(addr, len);
	if (rc < 0 || !out)
		return VZ_EINVAL;
	if (vz__aio_simulated(a)) {
		s = vz__sim_net_bound(a->sh->sim, addr, len, type, reuseport, backlog);
		if (s < 0)
			return s;
		goto made;
	}
	s = new_socket(addr->sa_family, type);
	if (s < 0)
		return s;
	(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		goto fail;
	/* On the listener, not per connection: the accepted socket is a clone
	 * of the listener's (tcp_create_openreq_child() keeps its Nagle
	 * setting), on io_uring's accept as on accept4(); the TCP test checks
	 * it on every backend. One setsockopt per listener instead of one per
	 * connection. */
	if (nodelay && setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		goto fail;
	if (bind(s, addr, len) < 0)
		goto fail;
	if (type == SOCK_STREAM && listen(s, backlog > 0 ? backlog : SOMAXCONN) < 0)
		goto fail;
made:
	fd = vz__aio_fd_new(a, self, s, type == SOCK_STREAM ? VZ__FD_TCP_LISTEN : VZ__FD_UDP);
	if (!fd) {
		vz__aio_raw_close(a, s);
		return VZ_ENOMEM;
	}
	*out = vz__aio_fd_handle(a, fd);
	return 0;
fail:
	rc = vz_error_from_errno(errno);
	close(s);
	return rc;
}

VZ_API int vz_tcp_listen(vz_actor *self, const struct sockaddr *addr, uint32_t len,
			 const vz_listen_opts *opts, vz_fd *out)
{
	int rc = vz__aio_check(self);

	if (rc < 0)
		return rc;
	return bound_socket(self, addr, len, SOCK_STREAM, opts ? opts->reuseport : 0,
			    opts ? opts->backlog : 0, opts ? opts->nodelay : 0, out);
}

VZ_API int vz_udp_bind(vz_actor *self, const struct sockaddr *addr, uint32_t len, int reuse,
		       vz_fd *out)
{
	int rc = vz__aio_check(self);

	if (rc < 0)
		return rc;
	return bound_socket(self, addr, len, SOCK_DGRAM, reuse, 0, 0, out);
}

/* Start a receive-like multishot op (accept, recv, recvfrom) on fd. */
static int start_rx(vz_actor *self, vz_fd h, unsigned kind, int want_type, const vz_io_req *req,
		    vz_io_op *out)
{
	struct vz__aio *a;
	struct vz__aio_fd *fd;
	struct vz__aio_op *op;
	int rc = vz__aio_enter(self, h, 0, &fd);

	if (rc < 0)
		return rc;
	if (fd->type != want_type && !(fd->type == VZ__FD_OTHER && want_type == VZ__FD_TCP))
		return VZ_EINVAL;
	if (fd->rx)
		return VZ_EBUSY;
	a = self->shard->aio;
	op = vz__aio_op_new(a, self, fd, kind, req);
	if (!op)
		return VZ_ENOMEM;
	fd->rx = op;
	if (out)
		*out = vz__aio_op_handle(a, op);
	vz__net_arm_rx(a, op);
	return 0;
}

VZ_API int vz_io_accept(vz_actor *self, vz_fd listener, const vz_io_req *req, vz_io_op *out)
{
	return start_rx(self, listener, VZ_IO_ACCEPT, VZ__FD_TCP_LISTEN, req, out);
}

VZ_API int vz_io_recv(vz_actor *self, vz_fd fd, const vz_io_req *req, vz_io_op *out)
{
	return start_rx(self, fd, VZ_IO_RECV, VZ__FD_TCP, req, out);
}

VZ_API int vz_io_recvfrom(vz_actor *self, vz_fd fd, const vz_io_req *req, vz_io_op *out)
{
	return start_rx(self, fd, VZ_IO_RECVFROM, VZ__FD_UDP, req, out);
}

VZ_API int vz_tcp_connect(vz_actor *self, const struct sockaddr *addr, uint32_t len,
			  const vz_io_req *req, vz_fd *out, vz_io_op *oop)
{
	struct vz__aio *a;
	struct vz__aio_fd *fd;
	struct vz__aio_op *op;
	int s, rc = vz__aio_check(self);

	if (rc < 0)
		return rc;
	if (check_addr(addr, len) < 0 || !out || len > sizeof(struct sockaddr_storage))
		return VZ_EINVAL;
	a = self->shard->aio;
	s = vz__aio_simulated(a) ? vz__sim_net_socket(a->sh->sim, addr->sa_family)
				 : new_socket(addr->sa_family, SOCK_STREAM);
	if (s < 0)
		return s;
	fd = vz__aio_fd_new(a, self, s, VZ__FD_TCP);
	if (!fd) {
		vz__aio_raw_close(a, s);
		return VZ_ENOMEM;
	}
	op = vz__aio_op_new(a, self, fd, VZ_IO_CONNECT, req);
	if (!op) {
		vz__aio_fd_drop(a, fd, false);
		return VZ_ENOMEM;
	}
	memcpy(&op->addr, addr, len);
	op->addrlen = len;
	fd->flags |= VZ__FDF_CONNECTING;
	op->bop.opcode = VZ__IO_OP_CONNECT;
	op->bop.buf = &op->addr;
	op->bop.len = len;
	*out = vz__aio_fd_handle(a, fd);
	if (oop)
		*oop = vz__aio_op_handle(a, op);
	vz__aio_submit(a, op);
	return 0;
}

VZ_API int vz_udp_join(vz_actor *self, vz_fd h, const struct sockaddr *group, uint32_t len,
		       unsigned ifindex)
{
	struct vz__aio_fd *fd;
	int one = 1, rc = vz__aio_enter(self, h, is_group(group, len) ? 0 : VZ_EINVAL, &fd);

	if (rc < 0)
		return rc;
	if (fd->type != VZ__FD_UDP)
		return VZ_EINVAL;
	if (vz__aio_simulated(self->shard->aio))
		return VZ_ENOSYS; /* no multicast in the simulated network */
	if (group->sa_family == AF_INET) {
		const struct sockaddr_in *g = (const struct sockaddr_in *)(const void *)group;
		struct ip_mreqn mr;

		memset(&mr, 0, sizeof mr);
		mr.imr_multiaddr = g->sin_addr;
		mr.imr_address.s_addr = htonl(INADDR_ANY);
		mr.imr_ifindex = (int)ifindex;
		if (setsockopt(fd->raw, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
			return vz_error_from_errno(errno);
		(void)setsockopt(fd->raw, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof one);
	} else {
		const struct sockaddr_in6 *g = (const struct sockaddr_in6 *)(const void *)group;
		struct ipv6_mreq mr;

		memset(&mr, 0, sizeof mr);
		mr.ipv6mr_multiaddr = g->sin6_addr;
		mr.ipv6mr_interface = ifindex;
		if (setsockopt(fd->raw, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof mr) < 0)
			return vz_error_from_errno(errno);
		(void)setsockopt(fd->raw, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one);
	}
	return 0;
}

VZ_API int vz_io_sendto(vz_actor *self, vz_fd h, const void *data, size_t len,
			const struct sockaddr *to, uint32_t tolen, const vz_io_req *req,
			vz_io_op *out)
{
	struct vz__aio *a;
	struct vz__aio_fd *fd;
	struct vz__aio_op *op;
	int cls, rc = vz__aio_enter(self, h, sendto_args(data, len, to, tolen), &fd);

	if (rc < 0)
		return rc;
	if (fd->type != VZ__FD_UDP)
		return VZ_EINVAL;
	if (fd->nsmall >= VZ__AIO_DGRAM_CAP)
		return VZ_EFULL;
	a = self->shard->aio;
	op = vz__aio_op_new(a, self, fd, VZ_IO_SENDTO, req);
	if (!op)
		return VZ_ENOMEM;
	cls = vz__size_class(len ? len : 1);
	op->block = vz__pool_alloc(a->sh, (unsigned)cls);
	if (!op->block) {
		vz__aio_op_drop(a, op);
		return VZ_ENOMEM;
	}
	op->block_cls = (uint32_t)cls;
	fd->nsmall++;
	if (len)
		memcpy(op->block, data, len);
	memcpy(&op->addr, to, tolen);
	op->iov.iov_base = op->block;
	op->iov.iov_len = len;
	memset(&op->mh, 0, sizeof op->mh);
	op->mh.msg_name = &op->addr;
	op->mh.msg_namelen = tolen;
	op->mh.msg_iov = &op->iov;
	op->mh.msg_iovlen = 1;
	op->bop.opcode = VZ__IO_OP_SENDMSG;
	op->bop.buf = &op->mh;
	if (out)
		*out = vz__aio_op_handle(a, op);
	vz__aio_submit(a, op);
	return 0;
}
