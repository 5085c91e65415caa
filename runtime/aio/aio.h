/* SPDX-License-Identifier: MIT */
/*
 * The actor-facing I/O layer (include/veloz/io.h) on top of the backend
 * (runtime/io/io.h): per shard, a table of descriptors owned by actors, a
 * table of operation records, the receive buffers' owners, the send
 * queues, and the turn of completions into VZ_MSG_IO messages. Everything
 * here is touched by the shard's own thread only (no atomics); the only
 * shared things are the statistics counters, written with the core's
 * single-writer helper. Design: NOTES.md beside this file.
 *
 * Files: fdtab.c (tables, events, timeouts, cancel, buffers, actor stop,
 * the shard's hooks), sendq.c (send queues), net.c (TCP and UDP calls),
 * file.c (file calls).
 */
#ifndef VZ_AIO_H
#define VZ_AIO_H

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core.h"
#include "sim/sim_net.h"

#define VZ__AIO_NBUFS	    512u /* receive buffers per shard (io.h bufs) */
#define VZ__AIO_RECV_CAP    8u	 /* chunks of one receive unhandled before it pauses */
#define VZ__AIO_DGRAM_CAP   64u	 /* datagrams of one handle in flight */
#define VZ__AIO_FD_OPS_MAX  64u	 /* file operations of one handle in flight */
#define VZ__AIO_SEND_IOV    16u	 /* chunks one send-queue write covers */
#define VZ__AIO_DGRAM_BURST 16u	 /* datagrams per socket per turn (io_uring) */
#define VZ__AIO_BACKOFF_NS  (10u * 1000u * 1000u) /* accept pause after EMFILE */
#define VZ__AIO_CHUNK_CLASS 8u			  /* largest send chunk: 64 << 8 = 16 KiB */
#define VZ__AIO_PATH_MAX    4096u

_Static_assert(VZ_IO_RECV_CHUNK == 16384u, "receive buffers are VZ_IO_RECV_CHUNK bytes");

enum vz__aio_fd_type {
	VZ__FD_TCP_LISTEN = 1,
	VZ__FD_TCP,
	VZ__FD_UDP,
	VZ__FD_FILE,
	VZ__FD_OTHER,	/* adopted: whatever it is */
	VZ__FD_OPENING, /* placeholder of a file open in flight (no handle yet) */
};

enum vz__aio_fd_state {
	VZ__FDS_FREE = 0,
	VZ__FDS_OPEN,
	VZ__FDS_CLOSING, /* handle stale; waits for its operations and queued sends */
};

/* fd flags */
#define VZ__FDF_SHUT_WR_PENDING 0x1u  /* shutdown(SHUT_WR) once the send queue drains */
#define VZ__FDF_SHUT_WR		0x2u  /* sending side closed: sends fail with VZ_EPIPE */
#define VZ__FDF_CLOSE_PENDING	0x4u  /* close once the send queue drains */
#define VZ__FDF_RAW_CLOSED	0x8u  /* raw fd closed (or handed away) */
#define VZ__FDF_CONNECTING	0x10u /* connect in flight: sends wait for it */

/* op flags */
#define VZ__OPF_QUIET	   0x01u /* no success event */
#define VZ__OPF_IN_BACKEND 0x02u /* bop submitted; its last done not run yet */
#define VZ__OPF_ENDING	   0x04u /* cancel or timeout asked: end_res is the final result */
#define VZ__OPF_PAUSED	   0x08u /* receive/accept waiting (buffers, mailbox cap, backoff) */
#define VZ__OPF_PENDING	   0x10u /* on the shard's list of ops to submit */
#define VZ__OPF_NOBUF	   0x20u /* on the shard's list of receives waiting for a buffer */
#define VZ__OPF_BACKOFF	   0x40u /* accept paused after EMFILE, timer armed */
#define VZ__OPF_WRITTEN	   0x80u /* send: some of its bytes reached the socket */

struct vz__aio;
struct vz__aio_fd;

/* A chunk of queued send bytes: a block of the shard's pool (class cls). */
struct vz__aio_chunk {
	struct vz__aio_chunk *next;
	uint32_t len; /* bytes in data */
	uint32_t off; /* bytes already written */
	uint32_t cls;
	uint32_t pad_;
	unsigned char data[];
};

/* One operation of an actor: from the call that started it to its final
 * event. Lives in the shard's op table (chunks that never move). */
struct vz__aio_op {
	struct vz__io_op bop;		  /* backend op; bop.user = this */
	struct vz__aio_op *fnext, *fprev; /* the fd's list of operations */
	struct vz__aio_op *lnext;	  /* pending / nobuf list, or send queue */
	struct vz__aio_fd *fd;
	struct vz_actor *owner;
	uint32_t owner_gen;
	uint32_t index, gen; /* handle: shard | index | gen */
	uint16_t kind;	     /* enum vz_io_kind; 0 = free */
	uint16_t pad_;
	uint32_t flags; /* VZ__OPF_* */
	int32_t end_res;
	int32_t end_os;		    /* the OS errno behind end_res, if any */
	uint32_t bufs_out;	    /* RECV/RECVFROM: events holding a buffer, not yet released */
	uint32_t burst, burst_turn; /* RECVFROM: datagrams re-armed at once this turn */
	uint64_t tag;
	uint64_t timeout_ns;
	uint64_t timer; /* timeout (or backoff) timer handle, 0 = none */
	struct vz_msg *final;
	/* SEND: its chunks, bytes and bytes written; SENDTO: its datagram */
	struct vz__aio_chunk *chunks;
	uint32_t len, written;
	/* CONNECT target, RECVFROM source, SENDTO destination */
	struct sockaddr_storage addr;
	uint32_t addrlen;
	struct msghdr mh;
	struct iovec iov;
	void *block; /* OPEN: the path copy (pool class block_cls) */
	uint32_t block_cls;
};

/* The send queue of a connection: requests (SEND ops) in order, written by
 * one SENDMSG at a time over up to VZ__AIO_SEND_IOV chunks. */
struct vz__aio_sendq {
	struct vz__aio_op *head, *tail;
	uint64_t queued; /* bytes queued, not yet written */
	uint64_t limit;
	struct vz__io_op bop; /* bop.user = the fd */
	struct msghdr mh;
	struct iovec iov[VZ__AIO_SEND_IOV];
	struct vz__aio_op *cover_end; /* last request the write in flight covers */
	bool busy;		      /* bop in the backend */
	bool cut_short;		      /* a request was dropped mid-write: shut down when bop ends */
	bool no_zc;		      /* the kernel refused zero-copy on this socket */
};

struct vz__aio_fd {
	int raw;
	uint32_t index, gen;
	uint16_t type;	/* enum vz__aio_fd_type */
	uint16_t state; /* enum vz__aio_fd_state */
	uint32_t flags; /* VZ__FDF_* */
	struct vz__aio *aio;
	struct vz_actor *owner;
	struct vz__aio_fd *anext, *aprev; /* the owner's list */
	struct vz__aio_op *ops;		  /* operations not yet final (sends included) */
	uint32_t nops;
	uint32_t nsmall;       /* file ops and datagrams in flight (caps) */
	struct vz__aio_op *rx; /* the receive or accept, if any */
	struct vz__aio_sendq sq;
	struct vz__aio_fd *knext; /* on the shard's list of queues to start */
	bool kick_queued;
};

/* Who holds a receive buffer. */
enum { VZ__BUF_FREE = 0, VZ__BUF_OUT, VZ__BUF_KEPT };
struct vz__aio_buf {
	uint32_t gen;
	uint16_t state;
	uint16_t pad_;
	struct vz_actor *owner;		   /* KEPT: the keeper */
	struct vz__aio_buf *knext, *kprev; /* the keeper's list */
	struct vz__aio_op *op;		   /* OUT: the receive it counts against */
	uint32_t op_gen;
};

#define VZ__AIO_CHUNK_RECS 256u

struct vz__aio {
	struct vz__shard *sh;
	struct vz__aio_op **op_chunks;
	uint32_t op_nchunks;
	struct vz__aio_op *op_free;
	struct vz__aio_fd **fd_chunks;
	uint32_t fd_nchunks;
	struct vz__aio_fd *fd_free;
	/* Owner of I/O timeouts and accept backoffs in the shard's wheel. */
	struct vz__timer_owner tmo;
	struct vz__aio_op *pending_head, *pending_tail; /* to submit (no io yet, SQ full) */
	struct vz__aio_op *nobuf_head, *nobuf_tail;	/* receives waiting for a buffer */
	struct vz__aio_buf bufs[VZ__AIO_NBUFS];
	bool bufs_ready;
	bool dying;		      /* the shard is being destroyed: completions ignored */
	struct vz__aio_fd *kick_head; /* send queues filled before the backend existed */
	uint32_t inflight;	      /* backend ops whose last done has not run */
	uint32_t turns;		      /* vz__aio_turn() calls (datagram bursts) */
	/* A write covering at least this many bytes goes zero-copy where the
	 * backend can (SENDMSG_ZC); 0: never. VZ_SEND_ZC_MIN, read at create. */
	uint64_t zc_min;
	/* Send chunks taken from the pool and not given back. Written by the
	 * shard only (vz__counter_add: relaxed load + store), read by tests
	 * from any thread as a snapshot (relaxed: nothing is read through
	 * it), so "every chunk came back" can be checked while running. */
	_Atomic uint64_t chunks_out;
};

/* Default of vz__aio.zc_min (NOTES.md, "Zero-copy sends"). */
#define VZ__AIO_ZC_MIN_DEFAULT ((uint64_t)0)

/* ---- fdtab.c: shared by the aio files ---- */

/* The shard's aio state, created with the shard. */
int vz__aio_create(struct vz__shard *sh);
void vz__aio_destroy(struct vz__shard *sh);

/* Check self is callable, in the order io.h promises ("Errors, when
 * several apply"): VZ_EINVAL (NULL), VZ_EWRONGTHREAD (not on its home
 * shard's thread), VZ_ESTALE (stopped); else 0. The opening of every
 * public call that takes no descriptor handle; its own argument checks
 * come right after. */
int vz__aio_check(const vz_actor *self);
/*
 * The opening of every public call on a descriptor handle, in the same
 * order: vz__aio_check(self); then `args`, the result of the call's
 * checks of its other arguments (0 or a negative VZ_E*, found from those
 * arguments alone, never from self or the handle); then the handle:
 * 0 with *fd the open descriptor h owned by self, or VZ_ESTALE. On any
 * error *fd is NULL. What depends on the descriptor (its kind, its state,
 * room in its queues) the call checks after this.
 */
int vz__aio_enter(vz_actor *self, vz_fd h, int args, struct vz__aio_fd **fd);
/* A new fd entry for raw (OPEN, owned by self), or NULL (VZ_ENOMEM). */
struct vz__aio_fd *vz__aio_fd_new(struct vz__aio *a, vz_actor *self, int raw, int type);
vz_fd vz__aio_fd_handle(const struct vz__aio *a, const struct vz__aio_fd *fd);
/* Give an unused entry back (no ops), closing raw unless keep_raw. */
void vz__aio_fd_drop(struct vz__aio *a, struct vz__aio_fd *fd, bool keep_raw);
/* Close the entry: graceful (queued sends first) or abort. */
void vz__aio_fd_close(struct vz__aio *a, struct vz__aio_fd *fd, bool abort, bool rst);
/* Free the entry if it is closing and nothing refers to it any more. */
void vz__aio_fd_maybe_free(struct vz__aio *a, struct vz__aio_fd *fd);

/* A new op record of kind for fd, owned by self, with its final event's
 * message and timeout set up from req; NULL when out of memory. */
struct vz__aio_op *vz__aio_op_new(struct vz__aio *a, vz_actor *self, struct vz__aio_fd *fd,
				  unsigned kind, const vz_io_req *req);
/* Undo vz__aio_op_new() for an op that never started. */
void vz__aio_op_drop(struct vz__aio *a, struct vz__aio_op *op);
vz_io_op vz__aio_op_handle(const struct vz__aio *a, const struct vz__aio_op *op);
/* Hand op->bop to the backend (or queue it for the next turn). */
void vz__aio_submit(struct vz__aio *a, struct vz__aio_op *op);
/* The op's final event (res: >= 0, or a negative VZ_E*; os_errno for
 * logs), then free it. accepted: ACCEPT/OPEN result, else VZ_FD_NULL. */
void vz__aio_finish(struct vz__aio *a, struct vz__aio_op *op, int res, int os_errno,
		    vz_fd accepted);
/* End an op early (cancel, timeout, close): res becomes its final result
 * unless a real one arrives first. */
void vz__aio_end(struct vz__aio *a, struct vz__aio_op *op, int res);
/* Restart a receive's / accept's timeout after an event. */
void vz__aio_touch(struct vz__aio *a, struct vz__aio_op *op);
/* Backend result (-errno) to (VZ code, os errno). */
static inline int vz__aio_res(int r, int *os_errno)
{
	if (r >= 0) {
		*os_errno = 0;
		return r;
	}
	*os_errno = -r;
	return vz_error_from_errno(-r);
}

/* ---- raw descriptors: the kernel's, or the simulation's ---- */

/* On a simulated shard the sockets are the in-memory network's
 * (runtime/sim/sim_net.h): the calls that make, name, shut down or close
 * a raw descriptor go there. One predictable branch on the shard's
 * owner-only sim field, as for the clock (core/shard.h vz__shard_clock()),
 * taken per descriptor call, never per byte: the bytes go through the
 * backend, which is the simulation's own. */
static inline bool vz__aio_simulated(const struct vz__aio *a)
{
	return __builtin_expect(a->sh->sim != NULL, 0);
}

static inline void vz__aio_raw_close(struct vz__aio *a, int raw)
{
	if (vz__aio_simulated(a))
		vz__sim_net_close(a->sh->sim, raw);
	else
		close(raw);
}

/* shutdown(2): 0 or a negative VZ_E*. */
static inline int vz__aio_raw_shutdown(struct vz__aio *a, int raw, int how)
{
	if (vz__aio_simulated(a))
		return vz__sim_net_shutdown(a->sh->sim, raw, how);
	return shutdown(raw, how) < 0 ? vz_error_from_errno(errno) : 0;
}

/* ---- sendq.c ---- */
int vz__sendq_push(struct vz__aio *a, struct vz__aio_fd *fd, struct vz__aio_op *op,
		   const void *data, size_t len);
/* Start a write when idle and bytes wait (or run a pending shutdown/close). */
void vz__sendq_kick(struct vz__aio *a, struct vz__aio_fd *fd);
/* Cancel/timeout one send request. */
void vz__sendq_end(struct vz__aio *a, struct vz__aio_op *op, int res);
/* The connect failed: every queued send fails with its error. */
void vz__sendq_fail(struct vz__aio *a, struct vz__aio_fd *fd, int res, int os_errno);
/* Drop everything queued (abort, actor stop). */
void vz__sendq_abort(struct vz__aio *a, struct vz__aio_fd *fd);
/* Free a request's chunks. */
void vz__sendq_free_chunks(struct vz__aio *a, struct vz__aio_op *op);

/* ---- net.c / file.c: completion handlers per kind ---- */
void vz__net_done(struct vz__aio *a, struct vz__aio_op *op, int res);
void vz__file_done(struct vz__aio *a, struct vz__aio_op *op, int res);
/* Arm (or re-arm) a receive or accept. */
void vz__net_arm_rx(struct vz__aio *a, struct vz__aio_op *op);

/* Buffer of a receive completion into an event for op; returns false when
 * the event could not be made (buffer given back). */
bool vz__aio_emit_more(struct vz__aio *a, struct vz__aio_op *op, int res, int os_errno,
		       vz_fd accepted, int bid, uint32_t len);

/* Give a buffer back to the ring (and resume receives waiting for it). */
void vz__aio_buf_free(struct vz__aio *a, uint32_t bid);
/* The receive waits for a buffer to come back (ENOBUFS, or none free). */
void vz__aio_wait_buf(struct vz__aio *a, struct vz__aio_op *op);
/* Set up the shard's receive buffers (first receive): 0, VZ_EAGAIN (no
 * backend yet), or the backend's error. */
int vz__aio_bufs_ready(struct vz__aio *a);
/* Pause an accept after EMFILE and retry it after VZ__AIO_BACKOFF_NS. */
void vz__aio_backoff(struct vz__aio *a, struct vz__aio_op *op);

#endif
