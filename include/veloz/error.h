/* SPDX-License-Identifier: MIT */
/*
 * Error codes. Every public function returns 0 (or a count) on success and a
 * negative VZ_E* code on failure; errno is never used across the API.
 * The table below is the single source for the codes, their names and
 * their messages (vz_errname(), vz_strerror()). A code means the same kind
 * of failure wherever it is returned; the function's documentation says
 * which limit or state applied (e.g. VZ_ETOOBIG: the message limit for
 * vz_send()/vz_post(), the much smaller job payload limit for
 * vz_pool_submit()).
 */
#ifndef VELOZ_ERROR_H
#define VELOZ_ERROR_H

#include "export.h"

VZ_BEGIN_DECLS

/* X(name, value, message) */
#define VZ_ERROR_TABLE(X)                                                                          \
	X(VZ_EINVAL, -1, "invalid argument")                                                       \
	X(VZ_ENOMEM, -2, "out of memory")                                                          \
	X(VZ_ESTALE, -3, "stale or forged reference")                                              \
	X(VZ_ENOSHARD, -4, "no such shard")                                                        \
	X(VZ_ETOOBIG, -5,                                                                          \
	  "payload over its limit: VZ_MSG_MAX_PAYLOAD (message), VZ_POOL_MAX_PAYLOAD (pool job) "  \
	  "or VZ_POOL_MAX_RESULT (pool job result)")                                               \
	X(VZ_EFULL, -6, "bounded queue or mailbox is full")                                        \
	X(VZ_EWRONGTHREAD, -7, "called from a thread that may not call this")                      \
	X(VZ_ESTATE, -8, "not allowed in the object's current state")                              \
	X(VZ_ESTOPPED, -9, "runtime or actor is stopped")                                          \
	X(VZ_ENOSYS, -10, "feature not available on this system")                                  \
	X(VZ_EIO, -11, "system call failed")                                                       \
	X(VZ_EAGAIN, -12, "resource temporarily unavailable, try again")                           \
	X(VZ_ECONFIG, -13, "invalid configuration")                                                \
	X(VZ_ENOENT, -14, "no such object")                                                        \
	X(VZ_ETIMEDOUT, -15, "timed out")                                                          \
	X(VZ_ECANCELED, -16, "canceled")                                                           \
	X(VZ_EBUSY, -17, "object is busy")                                                         \
	X(VZ_ECONNRESET, -18, "connection reset by peer")                                          \
	X(VZ_ECONNREFUSED, -19, "connection refused")                                              \
	X(VZ_ECONNABORTED, -20, "connection aborted")                                              \
	X(VZ_EPIPE, -21, "broken pipe: the sending side is closed")                                \
	X(VZ_ENOTCONN, -22, "socket is not connected")                                             \
	X(VZ_EADDRINUSE, -23, "address already in use")                                            \
	X(VZ_EADDRNOTAVAIL, -24, "address not available")                                          \
	X(VZ_ENETUNREACH, -25, "network unreachable")                                              \
	X(VZ_EHOSTUNREACH, -26, "host unreachable")                                                \
	X(VZ_EMFILE, -27, "too many open files")                                                   \
	X(VZ_EACCES, -28, "permission denied")                                                     \
	X(VZ_EEXIST, -29, "file exists")                                                           \
	X(VZ_ENOSPC, -30, "no space left on device")                                               \
	X(VZ_ENODEV, -31, "no such device or interface")                                           \
	X(VZ_ENOLANE, -32, "no free producer lane on the target shard (vz_config.foreign_lanes)")

enum vz_error {
	VZ_OK = 0,
#define VZ__ERR_ENUM(name, value, msg) name = value,
	VZ_ERROR_TABLE(VZ__ERR_ENUM)
#undef VZ__ERR_ENUM
};

/* Human-readable message for a VZ_E* code (or 0). Never NULL; unknown codes
 * give "unknown error". Any thread. */
VZ_API const char *vz_strerror(int err);

/* The VZ_E* code for an errno value from the OS (a positive errno; a
 * negative one is taken as -errno): the network and file codes above
 * where one matches (EAGAIN/EWOULDBLOCK -> VZ_EAGAIN, ETIMEDOUT ->
 * VZ_ETIMEDOUT, ECANCELED -> VZ_ECANCELED, ENFILE -> VZ_EMFILE, EPERM ->
 * VZ_EACCES, ...), VZ_EIO for anything else, 0 for 0. Any thread. */
VZ_API int vz_error_from_errno(int errnum);

/* The symbolic name ("VZ_EINVAL") of a code; "VZ_OK" for 0, "VZ_E?" for an
 * unknown code. Any thread. */
VZ_API const char *vz_errname(int err);

VZ_END_DECLS

#endif
