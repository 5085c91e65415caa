/* SPDX-License-Identifier: MIT */
/*
 * A shard's statistics counters: written by the shard alone with a
 * relaxed load and store, read by anyone as a snapshot (stats.c builds
 * vz_shard_stats from them; stats/ exports them).
 */
#ifndef VZ_CORE_STATS_H
#define VZ_CORE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Counters written by their shard only (relaxed load + store, never a
 * read-modify-write) and read by anyone (relaxed). */
struct vz__stat_counters {
	_Atomic uint64_t sent_local, sent_remote, received_foreign, received_remote, handled,
	    dead_letters, turns, idle_turns, sleeps, wakeups_sent, pool_refills, ring_full,
	    overflow_queued, mailbox_full, timers_fired, timers_dropped, actors_live,
	    actors_spawned, actors_stopped, outbox_full;
	/* I/O (runtime/aio), in the order of vz_shard_stats. */
	_Atomic uint64_t io_submitted, io_completed, io_events, io_events_dropped,
	    io_bufs_exhausted, io_busy_polls, io_sendq_full, io_accept_backoffs, io_fds_open;
	_Atomic uint64_t io_send_zc, io_send_zc_fallback;
};

/* Add to a counter that one thread writes and any thread reads as a
 * snapshot: a relaxed load and store, never a read-modify-write (no
 * locked instruction on the hot path; a reader may see the old value). */
static inline void vz__counter_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

#define VZ__STAT_ADD(sh, field, n) vz__counter_add(&(sh)->stats.field, (n))

#endif
