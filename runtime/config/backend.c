// SPDX-License-Identifier: MIT
/*
 * The names of the I/O backends. There is exactly one parser: the INI
 * loader, the VZ_BACKEND override, the I/O layer's look at VZ_BACKEND when
 * a runtime is created, and veloz-topo all call vz__backend_parse(), so a
 * value one of them accepts is accepted by all and means the same (they
 * once disagreed: "auto" and "EPOLL" loaded fine, then made every
 * vz_runtime_create() fail).
 */
#include "config/config_int.h"

#include <strings.h>

#include <veloz/error.h>

static const struct {
	const char *name;
	vz_backend_kind kind;
} backends[] = {
    {"auto", VZ_BACKEND_AUTO},
    {"io_uring", VZ_BACKEND_IO_URING},
    {"epoll", VZ_BACKEND_EPOLL},
};

int vz__backend_parse(const char *s, vz_backend_kind *out)
{
	if (!s || !out)
		return VZ_EINVAL;
	/* Case ignored like every enumerated value (tools/README.md). */
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
		if (!strcasecmp(s, backends[i].name)) {
			*out = backends[i].kind;
			return 0;
		}
	}
	return VZ_EINVAL;
}

const char *vz__backend_name(vz_backend_kind kind)
{
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (backends[i].kind == kind)
			return backends[i].name;
	return "?";
}
