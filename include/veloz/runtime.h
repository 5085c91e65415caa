/* SPDX-License-Identifier: MIT */
/*
 * The runtime: a set of shards (one thread pinned to one CPU each), created
 * from a vz_config, started, stopped and destroyed. Nothing is global: two
 * runtimes in one process are independent.
 *
 * Lifecycle: vz_runtime_create -> (spawn initial actors) -> vz_runtime_start
 * -> ... -> vz_runtime_stop -> vz_runtime_destroy. The library owns the
 * runtime's memory; destroy frees every byte and closes every fd.
 */
#ifndef VELOZ_RUNTIME_H
#define VELOZ_RUNTIME_H

#include <stdint.h>

#include "config.h"
#include "export.h"

VZ_BEGIN_DECLS

typedef struct vz_runtime vz_runtime;

/* Create a runtime from cfg (copied; the caller may free it afterwards).
 * Validates cfg (VZ_ECONFIG), allocates shards and rings (VZ_ENOMEM), and
 * selects the I/O backend: VZ_BACKEND, when set, wins over cfg->backend
 * (VZ_ECONFIG for a value other than auto|io_uring|epoll in any case;
 * VZ_ENOSYS when io_uring is forced but does not work here). VZ_EIO when
 * the machine's topology cannot be read; VZ_EINVAL for NULL cfg or out.
 * Why it failed: set cfg->create_error to a vz_config_error of yours and
 * it is filled on every failure (key and reason; file "" and line 0 as
 * vz_config_validate() gives them), and cleared on success.
 * Messages (the epoll fallback notice; a warning when this runtime's shard
 * CPUs overlap those of another live runtime of this process) go to
 * cfg->log, stderr by default. Threads start in vz_runtime_start(). Any
 * thread. */
VZ_API int vz_runtime_create(const vz_config *cfg, vz_runtime **out);

/* Start one pinned thread per shard that is not `embedded`; embedded shards
 * are driven by vz_shard_poll() from the embedder's threads. Fails with
 * VZ_ESTATE if already started, VZ_EIO if a thread or a backend could not be
 * created (nothing is left running then). The creating thread only. */
VZ_API int vz_runtime_start(vz_runtime *rt);

/* Stop: every actor is stopped, queued and in-flight messages are handled
 * or dead-lettered, timers are cancelled, runtime threads are joined.
 * Bounded: actors get no new messages once stop begins (sends return
 * VZ_ESTOPPED). A second call changes nothing and returns VZ_ESTATE, as
 * does a call while another thread is stopping, or before
 * vz_runtime_start() (a runtime never started is simply destroyed).
 *
 * Any thread that is not running a shard of rt (from inside an actor or a
 * vz_shard_poll() call: VZ_EWRONGTHREAD; there, vz_runtime_stop_async()
 * in lifecycle.h). That includes the embedder's
 * thread that drives an embedded shard, between two polls: stop then
 * drives that shard itself. An embedded shard driven by another thread
 * must keep being polled until vz_shard_poll() returns VZ_ESTOPPED, or stop
 * waits for it; one never polled before stop begins is driven by the
 * stopping thread, and a poll arriving after that returns VZ_ESTOPPED.
 *
 * What may run at the same time as stop, on other threads: any call on rt
 * (vz_post, vz_stop, vz_spawn, vz_shard_poll, queries, stats). Each either
 * takes effect before the stop (a message it accepted is handled or
 * dead-lettered before stop returns) or is refused with VZ_ESTOPPED and
 * changes nothing. When stop returns, every message accepted by any call
 * has been handled or dead-lettered (the stats are final) and every
 * later send, post, spawn, stop or poll is refused with VZ_ESTOPPED. */
VZ_API int vz_runtime_stop(vz_runtime *rt);

/* Free everything. A started runtime must be stopped first (VZ_ESTATE,
 * nothing freed). NULL is a no-op returning 0. Not from a shard thread.
 * Nothing may run at the same time as destroy: every call on rt made by any
 * thread must have returned before destroy is called, and none may follow
 * (rt is freed memory then; no check can catch that). A thread posting in a
 * loop is done once its own call has returned VZ_ESTOPPED after stop. */
VZ_API int vz_runtime_destroy(vz_runtime *rt);

/* Number of shards. Any thread. Returns 0 for NULL. */
VZ_API unsigned vz_runtime_shards(const vz_runtime *rt);

/* Name of the I/O backend in use ("io_uring" or "epoll"), and why the
 * runtime fell back to epoll ("" when it did not). Any thread. */
VZ_API const char *vz_runtime_backend(const vz_runtime *rt);
VZ_API const char *vz_runtime_backend_reason(const vz_runtime *rt);

/* io_uring setup flags the shards' rings use, as names joined by '|'
 * ("SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG"); "" for epoll or before the
 * first shard has created its ring. Any thread. */
VZ_API const char *vz_runtime_backend_flags(const vz_runtime *rt);

/* How a shard about to sleep and the threads that send to it agree that no
 * wake-up is lost: "membarrier" (the sleeper calls
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) before its last look at its
 * queues, so a sender pays no full barrier per message) or "fence" (a full
 * barrier on both sides; used where membarrier is missing or forbidden,
 * and always under ThreadSanitizer). Chosen at create; the environment
 * variable VZ_SLEEP_FENCE=auto|membarrier|fence overrides the automatic
 * choice (create fails with VZ_ENOSYS when membarrier is forced but
 * unavailable, VZ_ECONFIG for another value). The reason is why the
 * runtime uses "fence" ("" when it uses membarrier). "" for NULL. Any
 * thread. */
VZ_API const char *vz_runtime_sleep_fence(const vz_runtime *rt);
VZ_API const char *vz_runtime_sleep_fence_reason(const vz_runtime *rt);

/* CPU the runtime pinned the shard's thread to, or VZ_ENOSHARD (also for a
 * NULL rt). -1 for every embedded shard: it runs on the thread that polls
 * it, whose affinity is the embedder's (the runtime never changes it; a cpu
 * named in the shard's config is only kept free of other shards and
 * workers). -1 also for a shard whose thread could not be pinned (a
 * declared topology naming a CPU this machine lacks, or the affinity mask
 * changed): it runs unpinned and a warning went to cfg.log. Any thread. */
VZ_API int vz_runtime_shard_cpu(const vz_runtime *rt, unsigned shard);

/* The CPUs reserved for the embedder (vz_config.reserve_count or
 * reserve_cpus) into *out: no shard and no pool worker of rt runs there;
 * pin the engine's own threads to them. Empty when nothing is reserved.
 * 0, or VZ_EINVAL for NULL. Any thread. */
VZ_API int vz_runtime_reserved_cpus(const vz_runtime *rt, vz_cpuset *out);

/* Embedding: run one loop turn of an `embedded` shard on the calling thread
 * without blocking (timeout_us == 0) or blocking at most timeout_us when idle.
 * The first call binds the shard to the calling thread for good; later calls
 * from another thread return VZ_EWRONGTHREAD. The calling thread's CPU
 * affinity is never changed.
 * Returns the work the turn did, >= 0: a count of messages taken, handled
 * and published, timers fired and stop steps, not of messages handled
 * (vz_stats_shard() has those); 0 means the shard was idle. Errors:
 * VZ_EINVAL (NULL rt, or a shard that is not embedded), VZ_ENOSHARD,
 * VZ_ESTATE before start, VZ_EWRONGTHREAD (bound to another thread),
 * VZ_ESTOPPED once the shard has finished stopping, or when vz_runtime_stop()
 * began before this shard was ever polled (the stopping thread drives it
 * then); stop polling on VZ_ESTOPPED. Also an error from creating the
 * shard's I/O backend on the first call (VZ_ENOMEM, VZ_EIO, ...). */
VZ_API int vz_shard_poll(vz_runtime *rt, unsigned shard, uint32_t timeout_us);

/* The shard the calling thread runs (or drives, or stands in for while an
 * actor's init runs inside vz_spawn() before start), or -1 for any other
 * thread. */
VZ_API int vz_current_shard(const vz_runtime *rt);

VZ_END_DECLS

#endif
