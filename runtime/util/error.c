// SPDX-License-Identifier: MIT
/* vz_strerror() and vz_errname() over the single table in error.h, and the
 * one mapping from the OS's errno values to VZ_E* codes. */
#include <errno.h>

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

VZ_API int vz_error_from_errno(int errnum)
{
	if (errnum < 0)
		errnum = -errnum;
	switch (errnum) {
	case 0:
		return 0;
	case EINVAL:
	case EBADF:
	case ENOTSOCK:
	case EAFNOSUPPORT:
	case EPROTONOSUPPORT:
	case EOPNOTSUPP:
	case EDESTADDRREQ:
	case EISDIR:
	case ENOTDIR:
	case EFAULT:
		return VZ_EINVAL;
	case ENOMEM:
	case ENOBUFS:
		return VZ_ENOMEM;
	case EAGAIN:
		return VZ_EAGAIN;
	case ENOENT:
		return VZ_ENOENT;
	case ETIMEDOUT:
		return VZ_ETIMEDOUT;
	case ECANCELED:
		return VZ_ECANCELED;
	case EBUSY:
		return VZ_EBUSY;
	case ENOSYS:
		return VZ_ENOSYS;
	case ECONNRESET:
		return VZ_ECONNRESET;
	case ECONNREFUSED:
		return VZ_ECONNREFUSED;
	case ECONNABORTED:
		return VZ_ECONNABORTED;
	case EPIPE:
	case ESHUTDOWN:
		return VZ_EPIPE;
	case ENOTCONN:
		return VZ_ENOTCONN;
	case EADDRINUSE:
		return VZ_EADDRINUSE;
	case EADDRNOTAVAIL:
		return VZ_EADDRNOTAVAIL;
	case ENETUNREACH:
	case ENETDOWN:
		return VZ_ENETUNREACH;
	case EHOSTUNREACH:
	case EHOSTDOWN:
		return VZ_EHOSTUNREACH;
	case EMFILE:
	case ENFILE:
		return VZ_EMFILE;
	case EACCES:
	case EPERM:
		return VZ_EACCES;
	case EEXIST:
		return VZ_EEXIST;
	case ENOSPC:
	case EDQUOT:
		return VZ_ENOSPC;
	case ENODEV:
	case ENXIO:
		return VZ_ENODEV;
	case EMSGSIZE:
	case ENAMETOOLONG:
	case EFBIG:
		return VZ_ETOOBIG;
	default:
		return VZ_EIO;
	}
}
