/* SPDX-License-Identifier: MIT */
/*
 * The cache line size the runtime lays shared fields out by: a field that
 * other threads write sits alone on its line (alignas(VZ__LINE)) so that it
 * never shares one with fields its owner writes.
 */
#ifndef VZ_UTIL_CACHELINE_H
#define VZ_UTIL_CACHELINE_H

#define VZ__LINE 64

#endif
