/* SPDX-License-Identifier: MIT */
/*
 * Ports (port.c) as the rest of the core sees them: which actors are the
 * runtime's own (a port's proxy), for the stats that leave them out.
 */
#ifndef VZ_CORE_PORT_H
#define VZ_CORE_PORT_H

#include <stdbool.h>

#include <veloz.h>

/* port.c: is spec one of the runtime's own actors (a port's proxy)? */
bool vz__runtime_own_actor(const vz_actor_spec *spec);

#endif
