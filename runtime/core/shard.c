// SPDX-License-Identifier: MIT
/*
 * The shard loop. One turn: drain the foreign inbox and the incoming rings
 * whose doorbell rang -> run ready actors (bounded) -> expire timers ->
 * flush outgoing batches -> if nothing happened, spin for a while, then
 * sleep in the backend until the next timer deadline or a wake-up.
 *
 * The same turn runs on a runtime-owned thread (vz__shard_thread_main) or
 * on the embedder's thread (vz_shard_poll in runtime.c).
 *
 * Sleep protocol (runtime/DESIGN.md invariant 4), receiver side:
 *   sleeping = 1; full barrier; re-check every source; block; sleeping = 0.
 * Sender side (xshard/wake.c, vz__wake): publish; barrier; load sleeping; if
 * exchange(sleeping, 0) was 1, wake. Which side's barrier is a real one is
 * the runtime's sleep fence (util/membarrier.h): symmetric ("fence": the
 * receiver's seq_cst fence pairs with the sender's seq_cst publishing RMW,
 * the doorbell's fetch_or, the inbox push's exchange or a lane's commit
 * CAS, and its seq_cst
 * load) or asymmetric ("membarrier": the receiver's membarrier() makes
 * every sender execute a full barrier, so the sender's is only a compiler
 * barrier). See vz__wake().
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "core/lanes.h"
#include "pool/pool.h"
#include "util/clock.h"
#include "util/fence.h"

/* Initial-exec: the library is linked at start-up, so the variable sits in
 * static TLS and an access is one load, with no __tls_get_addr call. */
__attribute__((tls_model("initial-exec"))) _Thread_local struct vz__shard *vz__tls_shard;

void vz__set_current(struct vz__shard *sh)
{
	vz__tls_shard = sh;
}

uint64_t vz__clock_ns(void)
{
	return vz__mono_ns();
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

int vz__shard_create(vz_runtime *rt, unsigned id, int cpu, bool embedded, struct vz__shard **out)
{
	struct vz__shard *sh = aligned_alloc(VZ__LINE, sizeof *sh);
	int rc;

	if (!sh)
		return VZ_ENOMEM;
	memset(sh, 0, sizeof *sh);
	sh->rt = rt;
	sh->id = id;
	sh->cpu = cpu;
	sh->embedded = embedded;
	vz__mpsc_init(&sh->inbox);
	/* Closed until vz_runtime_start() opens it (post_foreign()). */
	atomic_init(vz__post_gate(sh), VZ__GATE_CLOSED);
	vz__pool_init(&sh->pool);
	sh->segs.refill_stat = &sh->stats.pool_refills;
	for (unsigned c = 0; c < VZ__NCLASSES; c++) {
		rc = vz__fpool_init(&sh->fpool[c], c);
		if (rc < 0) {
			while (c-- > 0)
				vz__fpool_fini(&sh->fpool[c]);
			free(sh);
			return rc;
		}
	}
	*out = sh; /* from here on vz__shard_destroy() cleans up */
	rc = vz__lanes_shard_init(sh);
	if (rc < 0)
		return rc;
	sh->sim = rt->sim;
	sh->now_ns = vz__shard_clock(sh);
	rc = vz__timers_init(&sh->timers, rt->tick_ns, sh->now_ns);
	if (rc < 0)
		return rc;
	sh->timers_ready = true;
	rc = vz__actor_table_init(sh);
	if (rc < 0)
		return rc;
	sh->out = calloc(rt->nshards, sizeof *sh->out);
	if (!sh->out)
		return VZ_ENOMEM;
	rc = vz__aio_create(sh);
	if (rc < 0)
		return rc;
	return vz__obs_init(sh);
}

/* Everything still queued anywhere in this shard at destroy time is dead
 * (or, for blocks from other shards, simply freed with the whole runtime). */
void vz__shard_destroy(struct vz__shard *sh)
{
	if (!sh)
		return;
	vz__lanes_shard_fini(sh); /* first: a thread letting go may still wake sh */
	vz__aio_quiesce(sh);
	if (sh->chunks)
		vz__actor_table_fini(sh);
	if (sh->timers_ready)
		vz__timers_fini(&sh->timers);
	free(sh->out);
	vz__obs_fini(sh);
	if (sh->io)
		vz__io_destroy(sh->io);
	/* After the backend: it may still name op records and buffers. */
	vz__aio_destroy(sh);
	for (unsigned c = 0; c < VZ__NCLASSES; c++)
		vz__fpool_fini(&sh->fpool[c]);
	vz__pool_fini(&sh->pool);
	vz__seg_cache_fini(&sh->segs);
	free(sh);
}

int vz__shard_start_io(struct vz__shard *sh)
{
	struct vz__io_params p = {.entries = 256};

	return vz__io_create(sh->rt->io_kind, &p, &sh->io);
}

/* A timer of this shard fired: queue its expiry to the owning actor, so it
 * is handled in order with the actor's other messages. */
/*
 * Expiry messages come from the pool like any other, but a timer that fires
 * while the pool cannot grow must not be lost: a small reserve of blocks of
 * the expiry message's size is kept aside for that case and topped up from
 * the pool's free list (never by a new slab) whenever it runs low.
 */
#define TIMER_RESERVE 64

static unsigned timer_msg_class(void)
{
	return (unsigned)vz__size_class(sizeof(struct vz_msg) + sizeof(vz_timer_event));
}

/* may_grow: take new slabs if needed (at arm time, where VZ_ENOMEM can
 * be reported); otherwise only blocks already free. */
void vz__timer_reserve_fill(struct vz__shard *sh, bool may_grow)
{
	unsigned cls = timer_msg_class();

	while (sh->timer_reserve_n < TIMER_RESERVE && (may_grow || sh->pool.free[cls])) {
		void **b = vz__pool_alloc(sh, cls);

		if (!b)
			return;
		*b = sh->timer_reserve;
		sh->timer_reserve = b;
		sh->timer_reserve_n++;
	}
}

static struct vz_msg *timer_msg_alloc(struct vz__shard *sh)
{
	struct vz_msg *m = vz__msg_alloc(sh, sizeof(vz_timer_event));
	void **b = sh->timer_reserve;

	if (m || !b)
		return m;
	sh->timer_reserve = *b;
	sh->timer_reserve_n--;
	m = (struct vz_msg *)b;
	m->owner = (uint16_t)sh->id;
	m->cls = (uint8_t)timer_msg_class();
	m->flags = 0;
	return m;
}

/* A timer of this shard fired: queue its expiry to the owning actor, so it
 * is handled in order with the actor's other messages. */
static void timer_fired(void *ctx, struct vz__timer_owner *o, const vz_timer_event *ev)
{
	struct vz__shard *sh = ctx;
	struct vz_actor *a = (struct vz_actor *)((char *)o - offsetof(struct vz_actor, timers));
	struct vz_msg *m;

	/* I/O timeouts and accept backoffs (runtime/aio) are not actors'. */
	if (vz__aio_timer(sh, o, ev))
		return;
	m = timer_msg_alloc(sh);
	VZ__STAT_ADD(sh, timers_fired, 1);
	if (!m) {
		/* More expiries at once than the reserve holds while memory
		 * cannot grow: this one is given up (counted) rather than
		 * left pending forever. */
		VZ__STAT_ADD(sh, timers_dropped, 1);
		vz__timers_deliverable(&sh->timers, ev->timer.id);
		return;
	}
	m->to = vz__make_ref(sh->id, a->slot, a->gen);
	m->from = VZ_REF_NULL;
	m->corr = 0;
	m->type = VZ_MSG_TIMER;
	m->len = sizeof *ev;
	m->flags |= VZ__MSG_SYS | VZ__MSG_UNCOUNTED;
	memcpy(m->data, ev, sizeof *ev);
	vz__deliver_local(sh, m);
}

/* The stop protocol's step for this shard (see vz_runtime_stop()). */
static unsigned stop_round(struct vz__shard *sh, uint32_t round)
{
	uint64_t moved = 0;
	unsigned handled = 0;

	if (sh->stop_round_done == 0) {
		vz__stop_all_actors(sh);
		/* Their timers are stale now, released lazily when due; the
		 * stopping shard expires nothing more, and a due one would keep
		 * vz__shard_sleep() from sleeping: release them all now. */
		vz__timers_sweep(&sh->timers);
	}
	/* Completions of the operations the stopped actors' close cancelled:
	 * reaped while the shard's thread still owns the backend (their
	 * events are dropped, their buffers and records come back). */
	moved += vz__aio_turn(sh);
	moved += vz__drain_inbox(sh, UINT32_MAX);
	moved += vz__lanes_drain(sh, true);
	moved += vz__pool_reap(sh->rt->pools, sh->id, UINT32_MAX); /* pool completions */
	moved += vz__drain_rings(sh, true);
	vz__run_ready(sh, &handled); /* reaps stopped actors left in the queue */
	moved += handled;
	moved += vz__flush_outboxes(sh);
	vz__fpool_give_back(sh);
	if (!vz__outboxes_empty(sh))
		moved++; /* a full ring: not quiet yet */
	sh->stop_round_done = round;
	atomic_store_explicit(&sh->round_moved, moved, memory_order_relaxed);
	atomic_store_explicit(&sh->round_taken, sh->inbox_taken, memory_order_relaxed);
	/* Release: pairs with the stopper's acquire load of round_acked; what
	 * this round did (and round_moved, round_taken) is visible to it. */
	atomic_store_explicit(&sh->round_acked, round, memory_order_release);
	return (unsigned)moved;
}

static unsigned turn(struct vz__shard *sh);

/* One turn between two marks of the turn sequence the stall watchdog reads
 * (stats/obs.h): odd while the turn runs. */
unsigned vz__shard_turn(struct vz__shard *sh)
{
	unsigned work;

	vz__obs_turn_mark(sh->obs.o);
	work = turn(sh);
	vz__obs_turn_mark(sh->obs.o);
	return work;
}

static unsigned turn(struct vz__shard *sh)
{
	vz_runtime *rt = sh->rt;
	unsigned work = 0, handled = 0;
	uint32_t round;

	VZ__STAT_ADD(sh, turns, 1);
	/* Acquire: pairs with the stopper's release increment. */
	round = atomic_load_explicit(&rt->stop_round, memory_order_acquire);
	if (__builtin_expect(round != sh->stop_round_done, 0))
		return stop_round(sh, round) + 1;
	if (sh->stop_round_done)
		return 0; /* stopping: only rounds do work */

	/* The inbox, the lanes, the run queue and the outboxes are called
	 * only when a look at their state (loads, no call) says they may
	 * have work; the pool, the rings and I/O make their test inside
	 * the call. A spinning shard's idle turn is what an arriving
	 * message waits out (half of one on average) before the ring drain
	 * sees it, so what an idle turn costs is in every cross-shard hop's
	 * latency (bench_idle turn_ns; bench/README.md). */
	if (!vz__mpsc_idle(&sh->inbox))
		work += vz__drain_inbox(sh, 1024);
	if (!vz__lanes_idle(sh->lanes))
		work += vz__lanes_drain(sh, false);
	work += vz__pool_reap(rt->pools, sh->id, 1024); /* pool completions */
	work += vz__drain_rings(sh, false);
	if (sh->rq[0].head || __builtin_expect(sh->sched.nclasses > 1, 0)) {
		vz__run_ready(sh, &handled);
		work += handled;
	}
	/* I/O: submissions batched over the turn go out, completions come
	 * in, every turn while operations are out (a busy shard never
	 * sleeps, so this is its only chance to reap). */
	work += vz__aio_turn(sh);
	if (vz__timers_live(&sh->timers)) {
		sh->now_ns = vz__shard_clock(sh);
		work += vz__timers_expire(&sh->timers, sh->now_ns, timer_fired, sh);
		if (sh->timer_reserve_n < TIMER_RESERVE)
			vz__timer_reserve_fill(sh, false);
	}
	if (!vz__outboxes_empty(sh))
		work += vz__flush_outboxes(sh);
	if (sh->fpool_pending)
		vz__fpool_give_back(sh);
	if (!work)
		VZ__STAT_ADD(sh, idle_turns, 1);
	return work;
}

/* Something to do right now, without blocking? Owner thread. */
static bool has_work(struct vz__shard *sh)
{
	if (vz__any_ready(sh) || !vz__outboxes_empty(sh) || vz__has_incoming(sh) ||
	    vz__lanes_pending(sh) || vz__aio_has_work(sh) ||
	    vz__pool_has_done(sh->rt->pools, sh->id))
		return true;
	/* Acquire: pairs with the stopper's release store of EXIT. */
	if (atomic_load_explicit(&sh->phase, memory_order_acquire) == VZ__PHASE_EXIT)
		return true;
	/* Acquire: pairs with the stopper's release increment. */
	return atomic_load_explicit(&sh->rt->stop_round, memory_order_acquire) !=
	       sh->stop_round_done;
}

void vz__shard_sleep(struct vz__shard *sh, int64_t timeout_ns)
{
	bool fenced = true;
	uint64_t next = vz__timers_next_deadline_ns(&sh->timers);

	if (next != UINT64_MAX) {
		uint64_t now = vz__shard_clock(sh);
		int64_t until = next > now ? (int64_t)(next - now) : 0;

		if (timeout_ns < 0 || until < timeout_ns)
			timeout_ns = until;
	}
	if (timeout_ns == 0)
		return;
	/* Announce, then a full barrier, then re-check every source (the
	 * doorbell words, the next slot of each hot ring, the inbox's tail
	 * and the lanes' stamps and doorbell among them). The barrier is
	 * the runtime's choice (util/membarrier.h), the same one the senders
	 * of this shard read in vz__wake() and in their publish:
	 *
	 * - membarrier: the store may be release (it publishes sh->io to
	 *   the waker's exchange; membarrier() orders it before the
	 *   re-check, being a full barrier for the caller). membarrier()
	 *   makes every other thread of the process execute a full barrier
	 *   before it returns; pairs with the senders' publish (a ring
	 *   slot's release store, then the release doorbell fetch_or unless
	 *   we poll that ring, the acq_rel inbox exchange, or a lane's
	 *   seq_cst commit CAS in lanes.c, stronger than needed, or a pool
	 *   worker's release store of a completion slot's seq), compiler
	 *   barrier and relaxed load of the flag in vz__wake() (and of the
	 *   ring's `watching` before it, cleared by vz__rings_unwatch()
	 *   below: core/xshard/drain.c). This one call serves every
	 *   sender, the pool workers' completion rings included: their
	 *   re-check (vz__pool_has_done()) issues no barrier of its own
	 *   (pool/complete.c, util/membarrier.h). If the kernel refuses it
	 *   (only if a seccomp filter was installed after create), the
	 *   senders are not fenced: do not block at all, or a wake-up could
	 *   be lost; the shard polls instead.
	 * - fence: seq_cst store and fence; pairs with the senders' seq_cst
	 *   RMW that publishes (doorbell fetch_or, always rung under this
	 *   fence: no ring is watched; inbox exchange; a pool worker's
	 *   seq_cst fence after its completion slot's store) followed by
	 *   their seq_cst load of the flag. The fence is named by the flag,
	 *   the word the senders read (under TSan it is an RMW of it;
	 *   util/fence.h). */
	/* Producers of hot rings skip the doorbell while told we poll
	 * (core/xshard/drain.c): take that back before the barrier, so the
	 * barrier orders it like the announcement below. */
	vz__rings_unwatch(sh);
	if (sh->sleep_fence == VZ__SLEEP_FENCE_MEMBARRIER) {
		atomic_store_explicit(&sh->sleeping, 1, memory_order_release);
		fenced = vz__membarrier_heavy() == 0;
	} else {
		atomic_store_explicit(&sh->sleeping, 1, memory_order_seq_cst);
		vz__full_fence_on(&sh->sleeping);
	}
	if (fenced && !has_work(sh)) {
		vz__rings_cool(sh); /* a doorbell makes a ring hot again */
		VZ__STAT_ADD(sh, sleeps, 1);
		vz__io_wait(sh->io, timeout_ns);
		/* A waker exchanged the flag to 0 (vz__wake()): count the
		 * wake-up received. Relaxed: a statistic. */
		if (!atomic_load_explicit(&sh->sleeping, memory_order_relaxed))
			vz__obs_add(&sh->obs.o->wakeups_received, 1);
	}
	/* Relaxed: only this thread sets it to 1; a sender that still sees 1
	 * at worst makes one spare wake-up, which our next wait absorbs. */
	atomic_store_explicit(&sh->sleeping, 0, memory_order_relaxed);
}

/* Idle policy after a turn that did nothing. Returns when it is time for
 * another turn.
 *
 * Spin-then-sleep also spins into a timer deadline: a sleep wakes some
 * tens of us after the time asked (the OS's wake-up latency, measured
 * 20-50 us on the development guest, timer/NOTES.md), so the shard sleeps
 * until spin_ns before the next deadline and spins the rest, and does not
 * sleep at all when the deadline is that close. The timer then fires late
 * by the part of the wake-up latency above spin_ns only, for at most
 * spin_ns more spinning per wake-up, the time the policy already spins
 * after every turn with work. */
static void idle(struct vz__shard *sh)
{
	vz_runtime *rt = sh->rt;
	int64_t timeout_ns = -1;
	uint64_t now, next;

	/* Spin only: the user chose latency over power, so poll again at
	 * once, without the pause the spin-then-sleep window uses. */
	if (rt->cfg.idle_policy == VZ_IDLE_SPIN)
		return;
	if (rt->cfg.idle_policy == VZ_IDLE_SPIN_THEN_SLEEP) {
		now = vz__shard_clock(sh);
		if (!sh->idle_since_ns)
			sh->idle_since_ns = now;
		if (now - sh->idle_since_ns < rt->spin_ns) {
			cpu_relax();
			return;
		}
		next = vz__timers_next_deadline_ns(&sh->timers);
		if (next != UINT64_MAX && rt->spin_ns) {
			if (next <= now + rt->spin_ns) {
				cpu_relax(); /* the deadline is within a spin */
				return;
			}
			if (next - rt->spin_ns - now <= (uint64_t)INT64_MAX)
				timeout_ns = (int64_t)(next - rt->spin_ns - now);
		}
	}
	vz__shard_sleep(sh, timeout_ns);
	sh->idle_since_ns = 0;
}

void *vz__shard_thread_main(void *arg)
{
	struct vz__shard *sh = arg;

	vz__set_current(sh);
	for (;;) {
		if (vz__shard_turn(sh)) {
			sh->idle_since_ns = 0;
			continue;
		}
		if (atomic_load_explicit(&sh->phase, memory_order_acquire) == VZ__PHASE_EXIT)
			break;
		idle(sh);
	}
	vz__set_current(NULL);
	return NULL;
}
