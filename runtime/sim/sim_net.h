/* SPDX-License-Identifier: MIT */
/*
 * The simulated network's face toward the actors' I/O layer (runtime/aio).
 * On a simulated shard the I/O layer makes, names and closes sockets here
 * instead of in the kernel: a socket is a record of the simulation's
 * in-memory network (sim_net.c), its number a virtual descriptor at or
 * above VZ__SIM_FD_BASE (above any real descriptor: a stray close() or
 * setsockopt() on it fails with EBADF and touches nothing real). Data moves
 * through the simulated backend (sim_io.c) like through io_uring or epoll.
 * Every function here runs on the simulation's one thread (as the shard
 * whose actor called), and returns 0 / a descriptor or a negative VZ_E*.
 */
#ifndef VZ_SIM_NET_H
#define VZ_SIM_NET_H

#include <stdbool.h>
#include <stdint.h>

struct vz_sim;
struct sockaddr;

#define VZ__SIM_FD_BASE (1 << 29)

/* socket + bind (+ listen for SOCK_STREAM) on addr (port 0: a virtual
 * ephemeral port). VZ_EADDRINUSE when an open socket of the same protocol
 * has the port and the address overlaps, unless both asked for reuse;
 * VZ_ENOMEM. */
int vz__sim_net_bound(struct vz_sim *sim, const struct sockaddr *addr, uint32_t len, int type,
		      int reuse, int backlog);
/* An unbound stream socket of `family` (vz_tcp_connect). VZ_ENOMEM. */
int vz__sim_net_socket(struct vz_sim *sim, int family);
/* close(2): a graceful FIN to the peer, or a reset when linger-0 was asked
 * or unread bytes are left (as Linux does). Unknown or closed: ignored. */
void vz__sim_net_close(struct vz_sim *sim, int fd);
/* shutdown(2). VZ_ENOTCONN (not a connected stream), VZ_EINVAL. */
int vz__sim_net_shutdown(struct vz_sim *sim, int fd, int how);
/* SO_LINGER {1, 0}: the close resets the connection. */
void vz__sim_net_linger0(struct vz_sim *sim, int fd);
/* getsockname / getpeername. VZ_EINVAL (not a virtual socket),
 * VZ_ENOTCONN (peer of an unconnected socket). */
int vz__sim_net_name(struct vz_sim *sim, int fd, struct sockaddr *addr, uint32_t *len, bool peer);
/* vz_io_adopt(): the I/O layer's descriptor type (VZ__FD_TCP_LISTEN,
 * VZ__FD_TCP, VZ__FD_UDP) of an open virtual socket, VZ_EINVAL for any
 * other number (a real descriptor cannot be adopted by a simulated shard). */
int vz__sim_net_kind(struct vz_sim *sim, int fd);

#endif
