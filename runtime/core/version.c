// SPDX-License-Identifier: MIT
/* The running library's version (include/veloz/version.h): compiled in
 * from the same macros a program sees, so vz_version() != VZ_VERSION_NUMBER
 * means the program runs with another build of the library than it was
 * compiled against. */
#include <veloz/version.h>

VZ_API int vz_version(void)
{
	return VZ_VERSION_NUMBER;
}

VZ_API const char *vz_version_string(void)
{
	return VZ_VERSION_STRING;
}
