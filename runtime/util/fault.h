/* SPDX-License-Identifier: MIT */
/*
 * Fault injection for tests. Compiled in only with VZ_FAULT_INJECTION (the
 * CMake option, on for test builds, off for release); otherwise every check
 * is the constant 0 and vanishes.
 *
 * A test arms a point with vz__fault_arm(point, skip, count): the next
 * `skip` checks pass, then `count` checks fail (count < 0: every check
 * fails until disarmed). Code under test asks VZ_FAULT(point) at the place
 * where the real failure would surface and takes its real error path.
 * Counters are atomics so points can be armed while other threads run.
 */
#ifndef VZ_FAULT_H
#define VZ_FAULT_H

#include <stdbool.h>

enum vz__fault_point {
	VZ_FAULT_POOL_REFILL,	     /* message/state pool cannot get a new slab */
	VZ_FAULT_RING_FULL,	     /* a cross-shard ring reports full */
	VZ_FAULT_SQ_FULL,	     /* io_uring submission queue full */
	VZ_FAULT_URING_SETUP_EPERM,  /* io_uring_setup fails with EPERM */
	VZ_FAULT_URING_SETUP_ENOSYS, /* io_uring_setup fails with ENOSYS */
	VZ_FAULT_WAIT_EINTR,	     /* a backend wait is interrupted */
	VZ_FAULT_THREAD_START,	     /* pthread_create fails (shard or worker) */
	VZ_FAULT_SOCKET_EMFILE,	     /* socket/accept fails with EMFILE */
	VZ_FAULT_SOCKET_ENOMEM,	     /* socket calls fail with ENOMEM */
	VZ_FAULT_POST_STALL,	     /* a foreign post stalls after admission until stop begins */
	VZ_FAULT_WAKE,		     /* a wake-up's syscall fails: the MSG_RING
					submission (io_uring then tries the
					eventfd) or the eventfd write */
	VZ_FAULT_IO_ENOBUFS,	     /* an actor receive finds no free buffer */
	VZ_FAULT_IO_SHORT_WRITE,     /* a send queue write is cut to one byte */
	VZ_FAULT_IO_ECONNRESET,	     /* an actor receive fails with ECONNRESET */
	VZ_FAULT_MEMBARRIER_EPERM,   /* the membarrier probe at create fails */
	VZ_FAULT_COUNT
};

#ifdef VZ_FAULT_INJECTION
void vz__fault_arm(enum vz__fault_point p, long skip, long count);
void vz__fault_disarm_all(void);
bool vz__fault_check(enum vz__fault_point p);
/* how many times the point fired since it was last armed */
long vz__fault_fired(enum vz__fault_point p);
/* Is the point armed (failures left to inject)? Consumes nothing: for a
 * fast path that steps aside to the general path, where VZ_FAULT() is
 * asked, so that arming a point keeps its exact count of checks. */
bool vz__fault_armed(enum vz__fault_point p);
#define VZ_FAULT(p)	  vz__fault_check(p)
#define VZ_FAULT_ARMED(p) vz__fault_armed(p)
#else
#define VZ_FAULT(p)	  false
#define VZ_FAULT_ARMED(p) false
#endif

#endif
