/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous stop (stop_async.c): the states of the thread that runs
 * a stop asked for from anywhere, and the join that destroy makes.
 */
#ifndef VZ_CORE_STOP_ASYNC_H
#define VZ_CORE_STOP_ASYNC_H

#include <veloz.h>

enum vz__stopper_state {
	VZ__STOPPER_NONE = 0, /* no async stop asked */
	VZ__STOPPER_STARTING, /* the asker is creating the thread */
	VZ__STOPPER_RUNNING,  /* created; not joined */
	VZ__STOPPER_JOINING,  /* one thread is joining it */
	VZ__STOPPER_JOINED,
	VZ__STOPPER_FAILED, /* the thread could not be created */
};

/* stop_async.c: join the async stop's thread if there is one (destroy). */
void vz__stopper_join(vz_runtime *rt);

#endif
