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

#endif
