// SPDX-License-Identifier: MIT
/*
 * Worker pools: whether the asymmetric barriers of asym.h can use
 * membarrier in this process. Decided once, when the first pool set is
 * created, before any thread that uses a barrier exists; so the two sides
 * of a handshake always agree on which kind they use.
 */
#include "pool/asym.h"

#include <pthread.h>

_Atomic int vz__asym_ok;

static pthread_once_t asym_once = PTHREAD_ONCE_INIT;

static void asym_decide(void)
{
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);

	if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
		return;
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0)
		return;
	/* Relaxed: pthread_once and the pthread_create of every thread that
	 * reads it order it. */
	atomic_store_explicit(&vz__asym_ok, 1, memory_order_relaxed);
}

void vz__asym_init(void)
{
	pthread_once(&asym_once, asym_decide);
}
