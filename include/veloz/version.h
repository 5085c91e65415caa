/* SPDX-License-Identifier: MIT */
/*
 * The library's version. The macros are the version of the headers a
 * program was compiled against; vz_version() is the version of the library
 * it runs with, so a program can refuse (or adapt to) a shared library
 * other than the one it was built for. This file is the single source of
 * the version: CMakeLists.txt reads the three numbers from it, and the
 * shared library's SONAME (libveloz.so.<major>) follows VZ_VERSION_MAJOR.
 *
 * Compatibility promise (from 1.0 on; 0.x releases may break anything in
 * a minor release): a minor release only appends (functions, enum values,
 * struct fields at the end of structs the caller zero-fills), a patch
 * release changes no interface.
 */
#ifndef VELOZ_VERSION_H
#define VELOZ_VERSION_H

#include "export.h"

VZ_BEGIN_DECLS

#define VZ_VERSION_MAJOR 0
#define VZ_VERSION_MINOR 1
#define VZ_VERSION_PATCH 0

/* One comparable number: major * 10000 + minor * 100 + patch. */
#define VZ_VERSION_NUMBER (VZ_VERSION_MAJOR * 10000 + VZ_VERSION_MINOR * 100 + VZ_VERSION_PATCH)

#define VZ__VERSION_STR2(x) #x
#define VZ__VERSION_STR(x)  VZ__VERSION_STR2(x)
/* "0.1.0" */
#define VZ_VERSION_STRING                                                                          \
	VZ__VERSION_STR(VZ_VERSION_MAJOR)                                                          \
	"." VZ__VERSION_STR(VZ_VERSION_MINOR) "." VZ__VERSION_STR(VZ_VERSION_PATCH)

/* VZ_VERSION_NUMBER of the library the program is running with. Any
 * thread, any time (also before any runtime exists). */
VZ_API int vz_version(void);

/* VZ_VERSION_STRING of the running library ("0.1.0"); never NULL, static.
 * Any thread. */
VZ_API const char *vz_version_string(void);

VZ_END_DECLS

#endif
