/* SPDX-License-Identifier: MIT */
/*
 * Copies of small message payloads for the send paths (core/send.c, the
 * slot writes of core/xshard/outbox.c). Most payloads are a few words, for
 * which a call to memcpy costs more than the copy itself. Any thread; the
 * two ranges must not overlap.
 */
#ifndef VZ_UTIL_COPY_H
#define VZ_UTIL_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copy a payload; most are a few words, for which a call to memcpy costs
 * more than the copy. Two overlapping moves cover every size in a range. */
static inline void vz__copy_payload(unsigned char *dst, const unsigned char *src, size_t len)
{
	uint64_t a, b;
	uint32_t c, d;

	if (len >= 8 && len <= 16) {
		memcpy(&a, src, 8);
		memcpy(&b, src + len - 8, 8);
		memcpy(dst, &a, 8);
		memcpy(dst + len - 8, &b, 8);
	} else if (len >= 4 && len < 8) {
		memcpy(&c, src, 4);
		memcpy(&d, src + len - 4, 4);
		memcpy(dst, &c, 4);
		memcpy(dst + len - 4, &d, 4);
	} else if (len > 16) {
		memcpy(dst, src, len);
	} else {
		for (size_t i = 0; i < len; i++)
			dst[i] = src[i];
	}
}

/* vz__copy_payload() for a payload of a mailbox cell or a ring slot (at
 * most a few hundred bytes) that never calls memcpy: past 16 bytes, 16-byte moves, the last
 * one ending at len (overlapping the one before it in dst, which it
 * writes with the same bytes). Without the call the fast paths of
 * vz_send() need no callee-saved registers. */
static inline void vz__copy_inline(unsigned char *dst, const unsigned char *src, size_t len)
{
	unsigned char t[16];

	if (len <= 16) {
		vz__copy_payload(dst, src, len);
		return;
	}
	for (size_t i = 0; i + 16 < len; i += 16) {
		__builtin_memcpy(t, src + i, 16);
		__builtin_memcpy(dst + i, t, 16);
	}
	__builtin_memcpy(t, src + len - 16, 16);
	__builtin_memcpy(dst + len - 16, t, 16);
}

#endif
