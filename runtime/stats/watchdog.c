// SPDX-License-Identifier: MIT
/*
 * The runtime's watchdog thread: the stall detector and the publisher of
 * the shared-memory stats segment. It needs no privileges (no perf, no
 * ptrace): it watches each shard's turn sequence (stats/obs.h), and when a
 * shard has been in the same turn for longer than the budget it asks the
 * shard's own thread, by a signal, to write down what it is handling and
 * its own stack (backtrace() in the handler), then reports once per stall
 * through the embedder's hook or the log. The shards never wait for it
 * and never take a lock it holds.
 *
 * The signal is VZ__STALL_SIGNAL, a real-time signal the runtime installs
 * a handler for only if nobody else has one (its disposition is SIG_DFL);
 * otherwise stalls are still reported, without the stack and the names.
 */
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define VZ__STALL_SIGNAL (SIGRTMIN + 7)

/* How long the watchdog waits for a signalled shard to write its record.
 * A shard blocked in a system call runs the handler at once; one that is
 * preempted runs it when it next gets the CPU, which on a loaded machine
 * can take a while. The watchdog blocks meanwhile (state_wait()), so a
 * long limit costs nothing but the other shards' next look. */
#define HANDLER_WAIT_NS (2000u * 1000000u)
#define PUBLISH_NS	(100u * 1000000u)
#define IDLE_LOOKS	4u

struct watch_shard {
	uint64_t seq;	      /* turn_seq last seen */
	uint64_t since;	      /* watchdog clock when it was first seen */
	bool reported;	      /* this stall was reported (or suppressed) */
	uint64_t last_report; /* watchdog clock of the last report */
};

struct vz__watch {
	vz_runtime *rt;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop; /* under lock */
	bool stall_on, have_signal;
	uint64_t budget_ns, interval_ns;
	/* How often the watchdog looks: twice per budget while some shard
	 * is awake, every IDLE_LOOKS budgets while all sleep (so an idle
	 * runtime costs 25 wake-ups a second, not 200, at the default
	 * budget); at least every PUBLISH_NS with a stats segment. */
	uint64_t period_ns, idle_period_ns;
	struct watch_shard *ws; /* [nshards], watchdog thread only */
};

/* ---- the signal handler: runs on the stalled shard's thread ------------ */

static void stall_handler(int sig, siginfo_t *si, void *uctx)
{
	struct vz__shard *sh = vz__tls_shard;
	struct vz__stall_rec *r;
	uint32_t want = VZ__STALL_REQ;
	int saved = errno;

	(void)sig;
	(void)si;
	(void)uctx;
	if (!sh || !sh->obs.o)
		return;
	r = &sh->obs.o->stall;
	/* Acquire: pairs with the watchdog's release store of REQ; the CAS
	 * makes the record ours (the watchdog may cancel a REQ by its own
	 * CAS, never a BUSY one). */
	if (!atomic_compare_exchange_strong_explicit(&r->state, &want, VZ__STALL_BUSY,
						     memory_order_acquire, memory_order_relaxed))
		return;
	/* cur_actor and cur_msg are this thread's own plain stores
	 * (dispatch()): no other thread is involved in reading them. */
	r->in_receive = sh->obs.cur_actor && (sh->obs.cur_actor->flags & VZ__ACTOR_RUNNING);
	/* Pairs with the signal fence in dispatch(): RUNNING seen, so the
	 * current actor and message stored before it are too. */
	atomic_signal_fence(memory_order_acquire);
	r->actor[0] = '\0';
	r->msg_type = 0;
	if (r->in_receive) {
		const char *name = sh->obs.cur_actor->spec->name;
		size_t i = 0;

		for (; name && name[i] && i + 1 < sizeof r->actor; i++)
			r->actor[i] = name[i];
		r->actor[i] = '\0';
		r->msg_type = sh->obs.cur_msg->type;
	}
	/* backtrace() was called once by the watchdog before any signal,
	 * so its unwinder is loaded and it does not allocate here. */
	r->nframes = backtrace(r->frames, VZ__STALL_FRAMES);
	/* Release: pairs with the watchdog's acquire load of DONE. */
	atomic_store_explicit(&r->state, VZ__STALL_DONE, memory_order_release);
	/* Wake the watchdog blocked in state_wait() (futex: async-signal-
	 * safe, one syscall per stall report). */
	syscall(SYS_futex, (uint32_t *)&r->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	errno = saved;
}

static pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;
static bool handler_installed;

/* Install the handler once per process, if the signal is free. */
static bool install_handler(void)
{
	struct sigaction old, sa;
	bool ok;

	pthread_mutex_lock(&handler_lock);
	if (!handler_installed && sigaction(VZ__STALL_SIGNAL, NULL, &old) == 0 &&
	    !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof sa);
		sa.sa_sigaction = stall_handler;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		sigemptyset(&sa.sa_mask);
		handler_installed = sigaction(VZ__STALL_SIGNAL, &sa, NULL) == 0;
	}
	ok = handler_installed;
	pthread_mutex_unlock(&handler_lock);
	return ok;
}

/* ---- reporting ------------------------------------------------------------ */

/* Sleep until *state may no longer be `seen` (the handler's futex wake),
 * or ns pass, or a spurious wake-up: the caller looks again. */
static void state_wait(_Atomic uint32_t *state, uint32_t seen, uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};

	syscall(SYS_futex, (uint32_t *)state, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
}

static void report(struct vz__watch *w, unsigned i, uint64_t stalled)
{
	vz_runtime *rt = w->rt;
	struct vz__shard *sh = rt->shards[i];
	struct vz__stall_rec *r = &sh->obs.o->stall;
	vz_stall_report rep;
	char **syms = NULL;
	char *bt = NULL;
	size_t btlen = 0;
	bool got = false;

	memset(&rep, 0, sizeof rep);
	rep.shard = i;
	rep.stalled_ns = stalled;
	rep.budget_ns = w->budget_ns;
	rep.backtrace = "";
	if (w->have_signal && !sh->embedded && sh->thread_started) {
		uint64_t t0 = vz__mono_ns();

		atomic_store_explicit(&r->state, VZ__STALL_IDLE, memory_order_relaxed);
		/* Release: the handler's acquire CAS pairs with it. */
		atomic_store_explicit(&r->state, VZ__STALL_REQ, memory_order_release);
		if (pthread_kill(sh->thread, VZ__STALL_SIGNAL) == 0) {
			for (;;) {
				uint32_t st = atomic_load_explicit(&r->state, memory_order_acquire);
				uint32_t req = VZ__STALL_REQ;

				if (st == VZ__STALL_DONE) {
					got = true;
					break;
				}
				if (st == VZ__STALL_REQ && vz__mono_ns() - t0 > HANDLER_WAIT_NS &&
				    atomic_compare_exchange_strong_explicit(
					&r->state, &req, VZ__STALL_IDLE, memory_order_relaxed,
					memory_order_relaxed))
					break; /* gave up; the handler will not touch it */
				/* Block until the handler's wake (or 10 ms): a
				 * stall is often the thread being preempted, and
				 * polling here would take the CPU it waits for. */
				state_wait(&r->state, st, 10000000u);
			}
		} else {
			atomic_store_explicit(&r->state, VZ__STALL_IDLE, memory_order_relaxed);
		}
	}
	if (got) {
		rep.in_receive = r->in_receive;
		memcpy(rep.actor, r->actor, sizeof rep.actor);
		rep.msg_type = r->msg_type;
		rep.nframes = (unsigned)(r->nframes > 0 ? r->nframes : 0);
		/* Frame 0 is the handler itself: leave it out. */
		if (rep.nframes > 1)
			syms = backtrace_symbols(r->frames + 1, r->nframes - 1);
		rep.nframes = syms ? rep.nframes - 1 : 0;
		if (syms) {
			FILE *f = open_memstream(&bt, &btlen);

			if (f) {
				for (unsigned k = 0; k < rep.nframes; k++)
					fprintf(f, "  #%u %s\n", k, syms[k]);
				fclose(f);
			}
			if (bt)
				rep.backtrace = bt;
		}
		atomic_store_explicit(&r->state, VZ__STALL_IDLE, memory_order_relaxed);
	}
	if (rt->cfg.stall_hook) {
		rt->cfg.stall_hook(rt->cfg.stall_hook_ctx, &rep);
	} else {
		if (got && rep.in_receive)
			vz__log(&rt->cfg, VZ_LOG_WARNING,
				"shard %u stalled: one loop turn has run for %llu ms (budget %llu "
				"ms), in actor '%s' handling message type %u%s",
				i, (unsigned long long)(stalled / 1000000u),
				(unsigned long long)(w->budget_ns / 1000000u), rep.actor,
				rep.msg_type, syms ? "; its stack:" : "");
		else if (got)
			vz__log(&rt->cfg, VZ_LOG_WARNING,
				"shard %u stalled: one loop turn has run for %llu ms (budget %llu "
				"ms), outside any actor's receive%s",
				i, (unsigned long long)(stalled / 1000000u),
				(unsigned long long)(w->budget_ns / 1000000u),
				syms ? "; its stack:" : "");
		else
			vz__log(&rt->cfg, VZ_LOG_WARNING,
				"shard %u stalled: one loop turn has run for %llu ms (budget %llu "
				"ms); what it runs is unknown (%s)",
				i, (unsigned long long)(stalled / 1000000u),
				(unsigned long long)(w->budget_ns / 1000000u),
				sh->embedded	 ? "an embedded shard runs on the embedder's thread"
				: w->have_signal ? "its thread did not answer the signal"
						 : "the stall signal has another handler");
		/* One line a frame: the log hook takes lines, and a whole
		 * stack would not fit in one. */
		for (unsigned k = 0; syms && k < rep.nframes; k++)
			vz__log(&rt->cfg, VZ_LOG_WARNING, "  #%u %s", k, syms[k]);
	}
	free(bt);
	free(syms);
}

/* Look at every shard's turn; report the stalls. Returns true when every
 * shard was asleep between two turns and none had turned since the last
 * look: the runtime is idle, and the watchdog may look less often. */
static bool check_stalls(struct vz__watch *w, uint64_t now)
{
	bool quiet = true;

	for (unsigned i = 0; i < w->rt->nshards; i++) {
		struct vz__shard *sh = w->rt->shards[i];
		struct vz__obs *o = sh->obs.o;
		struct watch_shard *s = &w->ws[i];
		/* Relaxed: compared over time, nothing read through it. */
		uint64_t seq = atomic_load_explicit(&o->turn_seq, memory_order_relaxed);

		/* Relaxed: a hint for the watchdog's pace, nothing more. */
		if (seq != s->seq || (seq & 1) ||
		    !atomic_load_explicit(&sh->sleeping, memory_order_relaxed))
			quiet = false;
		if (seq != s->seq) {
			s->seq = seq;
			s->since = now;
			s->reported = false;
			continue;
		}
		if (!(seq & 1) || s->reported || now - s->since < w->budget_ns)
			continue;
		/* One stall, counted once, reported at most once per interval
		 * per shard. The watchdog is the counter's only writer. */
		s->reported = true;
		vz__obs_add(&o->stalls, 1);
		if (s->last_report && now - s->last_report < w->interval_ns)
			continue;
		s->last_report = now;
		report(w, i, now - s->since);
	}
	return quiet;
}

static void *watch_main(void *p)
{
	struct vz__watch *w = p;
	uint64_t last_pub = 0;
	bool quiet = false;

	pthread_setname_np(pthread_self(), "vz-watchdog");
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		struct timespec ts;
		uint64_t now, period = quiet ? w->idle_period_ns : w->period_ns;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(period / 1000000000u);
		ts.tv_nsec += (long)(period % 1000000000u);
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&w->cond, &w->lock, &ts);
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->lock);
		now = vz__mono_ns();
		if (w->stall_on)
			quiet = check_stalls(w, now);
		if (w->rt->shm && now - last_pub >= PUBLISH_NS) {
			vz__shm_publish(w->rt, w->rt->shm);
			last_pub = now;
		}
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int vz__watch_start(vz_runtime *rt, struct vz__watch **out)
{
	const vz_config *cfg = &rt->cfg;
	struct vz__watch *w;
	pthread_condattr_t ca;

	*out = NULL;
	if (cfg->stall_off && !rt->shm)
		return 0;
	w = calloc(1, sizeof *w);
	if (!w)
		return VZ_ENOMEM;
	w->ws = calloc(rt->nshards, sizeof *w->ws);
	if (!w->ws) {
		free(w);
		return VZ_ENOMEM;
	}
	w->rt = rt;
	w->stall_on = !cfg->stall_off;
	w->budget_ns =
	    (uint64_t)(cfg->stall_budget_us ? cfg->stall_budget_us : VZ_STALL_BUDGET_US_DEFAULT) *
	    1000u;
	w->interval_ns = (uint64_t)(cfg->stall_interval_ms ? cfg->stall_interval_ms
							   : VZ_STALL_INTERVAL_MS_DEFAULT) *
			 1000000u;
	/* Look twice per budget: a stall is seen between 1 and 1.5 budgets
	 * after the watchdog first saw its turn, which is at most one look
	 * after the turn began, or IDLE_LOOKS budgets when the runtime was
	 * idle before it (so a stall that ends sooner than that after an idle
	 * spell may go unreported; it is still long). */
	w->period_ns = w->stall_on ? w->budget_ns / 2 : PUBLISH_NS;
	w->idle_period_ns = w->stall_on ? w->budget_ns * IDLE_LOOKS : PUBLISH_NS;
	if (rt->shm) {
		if (w->period_ns > PUBLISH_NS)
			w->period_ns = PUBLISH_NS;
		if (w->idle_period_ns > PUBLISH_NS)
			w->idle_period_ns = PUBLISH_NS;
	}
	if (w->stall_on) {
		void *f[1];

		/* Load the unwinder now, off any signal handler. */
		(void)backtrace(f, 1);
		w->have_signal = install_handler();
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		pthread_cond_destroy(&w->cond);
		pthread_mutex_destroy(&w->lock);
		free(w->ws);
		free(w);
		return VZ_EIO;
	}
	*out = w;
	return 0;
}

void vz__watch_stop(struct vz__watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	if (w->rt->shm)
		vz__shm_publish(w->rt, w->rt->shm); /* the final figures */
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w->ws);
	free(w);
}
