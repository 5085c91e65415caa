// SPDX-License-Identifier: MIT
/* vz_strerror() and vz_errname() over the single table in error.h. */
#include <veloz/error.h>

VZ_API const char *vz_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define VZ__ERR_MSG(name, value, msg)                                                              \
	case value:                                                                                \
		return msg;
		VZ_ERROR_TABLE(VZ__ERR_MSG)
#undef VZ__ERR_MSG
	}
	return "unknown error";
}

VZ_API const char *vz_errname(int err)
{
	switch (err) {
	case 0:
		return "VZ_OK";
#define VZ__ERR_NAME(name, value, msg)                                                             \
	case value:                                                                                \
		return #name;
		VZ_ERROR_TABLE(VZ__ERR_NAME)
#undef VZ__ERR_NAME
	}
	return "VZ_E?";
}
