/* SPDX-License-Identifier: MIT */
/*
 * A seccomp filter that makes io_uring_setup, io_uring_enter and
 * io_uring_register fail with EPERM, as Docker's default profile does.
 * Used by the no_io_uring launcher and by the fallback test.
 */
#ifndef VZ_FORBID_IO_URING_H
#define VZ_FORBID_IO_URING_H

/* Install the filter on the calling thread (and its future children).
 * 0 or a negative errno value from libseccomp. */
int vz_test_forbid_io_uring(void);

#endif
