/* SPDX-License-Identifier: MIT */
/*
 * Symbol visibility for libveloz. The library is built with hidden
 * visibility; only declarations marked VZ_API are exported.
 */
#ifndef VELOZ_EXPORT_H
#define VELOZ_EXPORT_H

#if defined(VZ_BUILDING_LIBRARY) && defined(__GNUC__)
#define VZ_API __attribute__((visibility("default")))
#else
#define VZ_API
#endif

/* Every public header wraps its declarations in these, so a C++ program
 * links against the C library without name mangling. */
#ifdef __cplusplus
#define VZ_BEGIN_DECLS extern "C" {
#define VZ_END_DECLS   }
#else
#define VZ_BEGIN_DECLS
#define VZ_END_DECLS
#endif

/* A compile-time check that reads the same in C11 and C++11. */
#ifdef __cplusplus
#define VZ_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define VZ_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#endif
