/* SPDX-License-Identifier: MIT */
/*
 * The runtime's one clock: CLOCK_MONOTONIC in nanoseconds (a vDSO call, no
 * syscall). Timers, wait deadlines and job deadlines all use it, so their
 * times compare with each other and with vz_now_ns().
 */
#ifndef VZ_CLOCK_H
#define VZ_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t vz__mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
