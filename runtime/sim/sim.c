// SPDX-License-Identifier: MIT
/*
 * The simulation driver: a runtime whose shards are all embedded and
 * driven from one thread, a virtual clock, and a seeded PRNG that picks
 * which shard runs its turn next, how much that turn may do, which rings
 * into it are held back, and when pool jobs and I/O completions happen.
 * NOTES.md beside this file states the invariants; the runtime itself
 * knows of the simulation only through two seams (the clock read,
 * vz__shard_clock(), and the handled-message hook in deliver.c) and the
 * backend and pool it is given.
 */
#include "sim/sim.h"

#include "config/config_int.h"
#include "core/lanes.h"

#include <veloz/io.h>

#include <stdlib.h>
#include <string.h>

/* ---- PRNG: xoshiro256**, seeded through splitmix64 ---------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(vz_sim *sim)
{
	uint64_t *s = sim->rng;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t vz__sim_below(vz_sim *sim, uint64_t n)
{
	/* Modulo bias is below 2^-40 for every n used here (< 2^24). */
	return next_u64(sim) % n;
}

bool vz__sim_chance(vz_sim *sim, uint32_t permille)
{
	return permille && vz__sim_below(sim, 1000) < permille;
}

/* ---- the seams the core calls ------------------------------------------- */

uint64_t vz__sim_now(const vz_sim *sim)
{
	return sim->now_ns;
}

static inline uint64_t mix(uint64_t h, uint64_t w)
{
	h ^= w;
	h *= 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 31);
}

static uint64_t mix_bytes(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t w;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, b + i, 8);
		h = mix(h, w);
	}
	if (i < len) {
		w = 0;
		memcpy(&w, b + i, len - i);
		h = mix(h, w);
	}
	return h;
}

/* deliver.c, just before a receive call: chain the message into the order
 * signature. Every field that a test could observe goes in, the payload
 * bytes included (timer events carry virtual times, pool completions
 * their drawn job ids: both deterministic). */
void vz__sim_handled(vz_sim *sim, const struct vz__shard *sh, const struct vz_msg *m)
{
	uint64_t h = sim->st.signature;

	h = mix(h, sh->id);
	h = mix(h, m->to.id);
	h = mix(h, m->from.id);
	h = mix(h, (uint64_t)m->type << 32 | m->len);
	if (m->type == VZ_MSG_IO && m->len >= sizeof(vz_io_event)) {
		/* An I/O event points at a receive buffer and into itself:
		 * addresses, which differ from run to run. Its bytes go in
		 * instead of the pointers. */
		vz_io_event ev;

		memcpy(&ev, m->data, sizeof ev);
		if (ev.data)
			h = mix_bytes(h, ev.data, ev.len);
		ev.data = NULL;
		ev.peer = NULL;
		h = mix_bytes(h, &ev, sizeof ev);
		h = mix_bytes(h, m->data + sizeof ev, m->len - sizeof ev);
	} else {
		/* Through the accessor: an inline mailbox cell's view keeps
		 * its payload in the cell (core.h, VZ__MSG_VIEW). */
		h = mix_bytes(h, vz_msg_data(m), m->len);
	}
	sim->st.signature = h;
	sim->st.handled++;
}

/* life.c: vz_monitor() on a simulated runtime. Monitor ids travel in
 * DOWN payloads (hashed into the signature) and key the watcher maps
 * whose order is the order DOWNs go out, so they must follow the run,
 * not the process. The driving thread is the only caller. */
uint64_t vz__sim_monitor_id(vz_sim *sim)
{
	return (uint64_t)1 << 62 | ++sim->next_monitor;
}

/* pool_api.c asks whether a runtime is simulated. */
vz_sim *vz__runtime_sim(vz_runtime *rt);
vz_sim *vz__runtime_sim(vz_runtime *rt)
{
	return rt->sim;
}

/* ---- create and destroy --------------------------------------------------- */

VZ_API int vz_sim_options_default(vz_sim_options *opt, uint64_t seed)
{
	if (!opt)
		return VZ_EINVAL;
	memset(opt, 0, sizeof *opt);
	opt->seed = seed;
	opt->fault_permille = 20;
	opt->hold_permille = 200;
	opt->max_hold_steps = 16;
	opt->start_ns = 1000000000ull;
	opt->net_delay_ns = 100000; /* 100 us */
	return 0;
}

static void sim_free(vz_sim *sim)
{
	vz__sim_pool_fini(sim);
	vz__sim_net_free(sim);
	free(sim->held);
	free(sim->hold_left);
	free(sim->io);
	free(sim);
}

VZ_API int vz_sim_create(const vz_config *cfg, const vz_sim_options *opt, vz_sim **out)
{
	vz_config *c;
	vz_sim *sim;
	uint64_t x;
	int rc;

	if (!cfg || !out)
		return VZ_EINVAL;
	*out = NULL;
	if (cfg->nshards == 0 || cfg->nshards > VZ_MAX_SHARDS) {
		if (cfg->create_error)
			vz__config_error(cfg->create_error, "", 0, "runtime.shards",
					 "a simulation needs an explicit shard count (1..%u)",
					 VZ_MAX_SHARDS);
		return VZ_ECONFIG;
	}
	sim = calloc(1, sizeof *sim);
	c = malloc(sizeof *c); /* ~40 KiB: not on the caller's stack */
	if (!sim || !c) {
		free(sim);
		free(c);
		return VZ_ENOMEM;
	}
	if (opt)
		sim->opt = *opt;
	else
		vz_sim_options_default(&sim->opt, 0);
	if (!sim->opt.start_ns)
		sim->opt.start_ns = 1000000000ull;
	if (!sim->opt.max_hold_steps)
		sim->opt.max_hold_steps = 1;
	sim->now_ns = sim->opt.start_ns;
	x = sim->opt.seed;
	for (int i = 0; i < 4; i++)
		sim->rng[i] = splitmix64(&x);
	sim->st.seed = sim->opt.seed;
	sim->thread = vz__thread_token();
	sim->nshards = cfg->nshards;
	sim->next_job = 1;
	sim->held = calloc((size_t)cfg->nshards * (VZ_MAX_SHARDS / 64), sizeof *sim->held);
	sim->hold_left = calloc((size_t)cfg->nshards * cfg->nshards, sizeof *sim->hold_left);
	sim->io = calloc(cfg->nshards, sizeof *sim->io);
	if (!sim->held || !sim->hold_left || !sim->io || vz__sim_net_create(sim) < 0) {
		free(c);
		sim_free(sim);
		return VZ_ENOMEM;
	}

	/* Nothing may depend on the machine or start a thread: every shard
	 * embedded (no CPU, so any count fits), nothing reserved. */
	*c = *cfg;
	for (unsigned i = 0; i < c->nshards; i++) {
		c->shards[i].embedded = true;
		c->shards[i].cpu = -1;
	}
	vz_cpuset_zero(&c->cpus);
	c->reserve_count = 0;
	vz_cpuset_zero(&c->reserve_cpus);
	c->backend = VZ_BACKEND_AUTO;
	/* No stall watchdog (a thread, reading the real clock) and no
	 * shared-memory segment (a name that depends on the process). */
	c->stall_off = true;
	c->stats_shm = false;
	rc = vz__runtime_create(c, sim, &sim->rt);
	free(c);
	if (rc < 0) {
		sim_free(sim);
		return rc;
	}
	for (unsigned i = 0; i < sim->nshards; i++) {
		struct vz__shard *sh = sim->rt->shards[i];

		rc = vz__sim_io_create(sim, i, &sh->io);
		if (rc < 0) {
			vz_runtime_destroy(sim->rt);
			sim_free(sim);
			return rc;
		}
		/* This thread drives every shard, for good (as a first
		 * vz_shard_poll() would claim it): it may spawn between steps,
		 * and vz_runtime_stop() from it drives the shards itself.
		 * Relaxed: nothing else runs yet; see core.h on `driver`. */
		atomic_store_explicit(&sh->driver, sim->thread, memory_order_relaxed);
	}
	*out = sim;
	return 0;
}

VZ_API vz_runtime *vz_sim_runtime(const vz_sim *sim)
{
	return sim ? sim->rt : NULL;
}

VZ_API int vz_sim_destroy(vz_sim *sim)
{
	int rc;

	if (!sim)
		return 0;
	if (vz__thread_token() != sim->thread)
		return VZ_EWRONGTHREAD;
	/* Acquire: pairs with the seq_cst stores of the state (runtime.c). */
	if (atomic_load_explicit(&sim->rt->state, memory_order_acquire) == VZ__RT_RUNNING)
		vz_runtime_stop(sim->rt);
	rc = vz_runtime_destroy(sim->rt);
	if (rc < 0)
		return rc;
	sim_free(sim);
	return 0;
}

VZ_API uint64_t vz_sim_now_ns(const vz_sim *sim)
{
	return sim ? sim->now_ns : 0;
}

VZ_API uint64_t vz_sim_signature(const vz_sim *sim)
{
	return sim ? sim->st.signature : 0;
}

VZ_API int vz_sim_stats_get(const vz_sim *sim, vz_sim_stats *out)
{
	if (!sim || !out)
		return VZ_EINVAL;
	*out = sim->st;
	out->now_ns = sim->now_ns;
	out->io_bufs_out = vz__sim_io_bufs_out(sim);
	return 0;
}

/* ---- holding rings back ---------------------------------------------------- */

static inline uint64_t *held_words(vz_sim *sim, unsigned dst)
{
	return &sim->held[(size_t)dst * (VZ_MAX_SHARDS / 64)];
}

static inline bool is_held(vz_sim *sim, unsigned dst, unsigned src)
{
	return (held_words(sim, dst)[src / 64] >> (src % 64)) & 1;
}

static void hold(vz_sim *sim, unsigned dst, unsigned src, uint32_t steps)
{
	held_words(sim, dst)[src / 64] |= (uint64_t)1 << (src % 64);
	sim->hold_left[(size_t)dst * sim->nshards + src] = steps;
	sim->nholds++;
}

static void release(vz_sim *sim, unsigned dst, unsigned src)
{
	held_words(sim, dst)[src / 64] &= ~((uint64_t)1 << (src % 64));
	sim->hold_left[(size_t)dst * sim->nshards + src] = 0;
	sim->nholds--;
}

/* Count every finite hold down by one step; release those that expire. */
static void tick_holds(vz_sim *sim)
{
	for (unsigned d = 0; d < sim->nshards && sim->nholds; d++)
		for (unsigned s = 0; s < sim->nshards; s++) {
			uint32_t *left = &sim->hold_left[(size_t)d * sim->nshards + s];

			if (!is_held(sim, d, s) || *left == VZ__SIM_HOLD_TO_END)
				continue;
			if (--*left == 0)
				release(sim, d, s);
		}
}

/* Release every hold, or only those counted in steps (delayed = false).
 * Returns how many were released. */
static unsigned release_all(vz_sim *sim, bool delayed)
{
	unsigned n = 0;

	for (unsigned d = 0; d < sim->nshards && sim->nholds; d++)
		for (unsigned s = 0; s < sim->nshards; s++)
			if (is_held(sim, d, s) &&
			    (delayed ||
			     sim->hold_left[(size_t)d * sim->nshards + s] != VZ__SIM_HOLD_TO_END)) {
				release(sim, d, s);
				n++;
			}
	return n;
}

/* Has ring src -> dst something the shard has not taken? (The doorbell
 * bit, or the shard's own note that it left items there.) Relaxed: the
 * one thread that runs every shard reads its own stores. */
static bool ring_marked(const struct vz__shard *sh, unsigned src)
{
	uint64_t bit = (uint64_t)1 << (src % 64);

	return (sh->pending_rings[src / 64] & bit) ||
	       (atomic_load_explicit(&sh->bell[src / 64], memory_order_relaxed) & bit);
}

/* ---- which shards can run -------------------------------------------------- */

/* Does a turn of sh have something to do now, with held rings masked? */
static bool shard_runnable(vz_sim *sim, struct vz__shard *sh)
{
	if (vz__any_ready(sh) || !vz__outboxes_empty(sh) || sh->fpool_pending ||
	    !vz__mpsc_empty(&sh->inbox) || vz__lanes_pending(sh) || vz__aio_has_work(sh))
		return true;
	if (vz__timers_live(&sh->timers) && vz__timers_next_deadline_ns(&sh->timers) <= sim->now_ns)
		return true;
	for (unsigned s = 0; s < sim->nshards; s++)
		if (s != sh->id && ring_marked(sh, s) && !is_held(sim, sh->id, s))
			return true;
	return false;
}

/* Foreign posts (the test's, pool completions) may wait for a later turn
 * too: with hold_permille, only a drawn prefix of the shard's inbox stays
 * for this turn; the rest is taken out, in order, and put back after the
 * turn (nothing posts to the inbox during a turn: a shard sends through
 * rings, and the driver posts only between steps), so the inbox's FIFO
 * order is kept. The shard's own count of taken posts (inbox_taken, for
 * the stop protocol) is untouched: only vz__drain_inbox() counts. */
static void hold_posts(vz_sim *sim, struct vz__shard *sh, struct vz__msg_list *held)
{
	struct vz__msg_list all = {0};
	struct vz__mpsc_node *node;
	uint64_t keep;

	if (vz__mpsc_empty(&sh->inbox) || !vz__sim_chance(sim, sim->opt.hold_permille))
		return;
	while ((node = vz__mpsc_pop(&sh->inbox)))
		vz__list_push(&all, (struct vz_msg *)node);
	keep = vz__sim_below(sim, all.len);
	for (uint64_t i = 0; i < keep; i++)
		vz__mpsc_push(&sh->inbox, &vz__list_pop(&all)->node);
	*held = all;
}

static void put_back_posts(struct vz__shard *sh, struct vz__msg_list *held)
{
	struct vz_msg *m;

	while ((m = vz__list_pop(held)))
		vz__mpsc_push(&sh->inbox, &m->node);
}

/* One turn of shard d, as its thread, with held rings masked and the
 * turn's limits drawn. */
static void run_turn(vz_sim *sim, unsigned d)
{
	vz_runtime *rt = sim->rt;
	struct vz__shard *sh = rt->shards[d];
	uint64_t saved[VZ_MAX_SHARDS / 64] = {0};
	uint64_t *hw = held_words(sim, d);
	unsigned nwords = (sim->nshards + 63) / 64;
	uint32_t batch = rt->cfg.batch, apt = rt->cfg.actors_per_turn;
	uint32_t send_batch = rt->cfg.send_batch;
	struct vz__msg_list posts = {0};
	unsigned work;

	/* A batch waiting in a ring may be held back for a drawn number of
	 * steps: the whole ring is, so the pair's FIFO order is kept. */
	for (unsigned s = 0; s < sim->nshards; s++)
		if (s != d && ring_marked(sh, s) && !is_held(sim, d, s) &&
		    vz__sim_chance(sim, sim->opt.hold_permille)) {
			hold(sim, d, s, 1 + (uint32_t)vz__sim_below(sim, sim->opt.max_hold_steps));
			sim->st.holds++;
		}
	for (unsigned w = 0; w < nwords; w++) {
		if (!hw[w])
			continue;
		/* Relaxed: only this thread runs shards; the bits move to the
		 * owner-only pending word after the turn. */
		saved[w] = (atomic_fetch_and_explicit(&sh->bell[w], ~hw[w], memory_order_relaxed) |
			    sh->pending_rings[w]) &
			   hw[w];
		sh->pending_rings[w] &= ~hw[w];
	}
	hold_posts(sim, sh, &posts);
	/* The turn's limits: how many actors and messages it runs before
	 * the others get a turn, and how early batches are published. */
	rt->cfg.batch = 1 + (uint32_t)vz__sim_below(sim, batch);
	rt->cfg.actors_per_turn = 1 + (uint32_t)vz__sim_below(sim, apt);
	rt->cfg.send_batch = 1 + (uint32_t)vz__sim_below(sim, send_batch);
	vz__set_current(sh);
	work = vz__shard_turn(sh);
	vz__set_current(NULL);
	rt->cfg.batch = batch;
	rt->cfg.actors_per_turn = apt;
	rt->cfg.send_batch = send_batch;
	for (unsigned w = 0; w < nwords; w++)
		sh->pending_rings[w] |= saved[w];
	put_back_posts(sh, &posts);
	sim->st.turns++;
	sim->idle_streak = work ? 0 : sim->idle_streak + 1;
}

/* VZ_SIM_FAULT_DELAY: hold one drawn ring that has something in it until
 * the run is otherwise quiet. */
static void maybe_delay(vz_sim *sim)
{
	unsigned n = 0, pick;

	if (!(sim->opt.faults & VZ_SIM_FAULT_DELAY) ||
	    !vz__sim_chance(sim, sim->opt.fault_permille))
		return;
	for (unsigned d = 0; d < sim->nshards; d++)
		for (unsigned s = 0; s < sim->nshards; s++)
			n += s != d && !is_held(sim, d, s) && ring_marked(sim->rt->shards[d], s);
	if (!n)
		return;
	pick = (unsigned)vz__sim_below(sim, n);
	for (unsigned d = 0; d < sim->nshards; d++)
		for (unsigned s = 0; s < sim->nshards; s++)
			if (s != d && !is_held(sim, d, s) && ring_marked(sim->rt->shards[d], s) &&
			    pick-- == 0) {
				hold(sim, d, s, VZ__SIM_HOLD_TO_END);
				sim->st.delays++;
				sim->delay_jumps = (unsigned)vz__sim_below(sim, 4);
				return;
			}
}

/* May this actor crash? Live, a user actor, and not refused by the test. */
static bool crashable(vz_sim *sim, const struct vz_actor *a)
{
	return (a->flags & VZ__ACTOR_LIVE) && !vz__runtime_own_actor(a->spec) &&
	       (!sim->opt.crash_ok || sim->opt.crash_ok(sim->opt.crash_ctx, a->spec));
}

/* VZ_SIM_FAULT_CRASH: end one drawn live user actor as vz_fail() would.
 * Called between steps, so no shard is inside a turn and no actor inside
 * its receive: the actor stops at once (on_stop runs as its shard), and
 * the DOWN and exit messages it leaves wait in its shard's outboxes and
 * mailboxes for the next turns, as they would after a real vz_fail().
 * The actors are counted and picked in (shard, slot) order, which depends
 * only on the run so far. */
static void maybe_crash(vz_sim *sim)
{
	uint64_t n = 0, pick;

	if (!(sim->opt.faults & VZ_SIM_FAULT_CRASH) ||
	    (sim->opt.max_crashes && sim->st.crashes >= sim->opt.max_crashes) ||
	    !vz__sim_chance(sim, sim->opt.fault_permille))
		return;
	for (unsigned d = 0; d < sim->nshards; d++) {
		struct vz__shard *sh = sim->rt->shards[d];

		for (uint32_t s = 0; s < sh->next_unused; s++)
			n += crashable(sim, vz__slot_ptr(sh, s));
	}
	if (!n)
		return;
	pick = vz__sim_below(sim, n);
	for (unsigned d = 0; d < sim->nshards; d++) {
		struct vz__shard *sh = sim->rt->shards[d];

		for (uint32_t s = 0; s < sh->next_unused; s++) {
			struct vz_actor *a = vz__slot_ptr(sh, s);

			if (!crashable(sim, a) || pick-- != 0)
				continue;
			vz__set_current(sh);
			vz__actor_fail(sh, a, VZ_SIM_CRASH_CODE, VZ_SIM_CRASH_TEXT);
			vz__set_current(NULL);
			sim->st.crashes++;
			sim->idle_streak = 0;
			return;
		}
	}
}

/* Turns in a row that did nothing before the run counts as quiet anyway:
 * a shard whose batch waits for a ring held full is "runnable" without
 * being able to move. */
#define IDLE_STREAK_QUIET 64u

/* The next timer deadline of any shard or arrival on the network,
 * UINT64_MAX when there is none. */
static uint64_t next_deadline(vz_sim *sim)
{
	uint64_t next = vz__sim_net_next(sim);

	for (unsigned i = 0; i < sim->nshards; i++) {
		struct vz__shard *sh = sim->rt->shards[i];

		if (vz__timers_live(&sh->timers)) {
			uint64_t t = vz__timers_next_deadline_ns(&sh->timers);

			if (t < next)
				next = t;
		}
	}
	return next;
}

enum { CAND_POOL = -1, CAND_IO = -2, CAND_NET = -3 };

/* One step; until_ns bounds a time jump (0 = none). 1, 0 (idle), or
 * VZ_ETIMEDOUT when the next deadline is after until_ns. */
static int step(vz_sim *sim, uint64_t until_ns)
{
	int cand[VZ_MAX_SHARDS + 3];

	for (;;) {
		unsigned n = 0;
		uint64_t next;
		int c;

		for (unsigned i = 0; i < sim->nshards; i++)
			if (shard_runnable(sim, sim->rt->shards[i]))
				cand[n++] = (int)i;
		if (sim->njobs && !sim->pool_stopped)
			cand[n++] = CAND_POOL;
		if (vz__sim_io_ready(sim))
			cand[n++] = CAND_IO;
		if (vz__sim_net_due(sim))
			cand[n++] = CAND_NET;
		if (n && sim->idle_streak < IDLE_STREAK_QUIET) {
			maybe_delay(sim);
			maybe_crash(sim);
			vz__sim_net_fault(sim);
			c = cand[vz__sim_below(sim, n)];
			if (c == CAND_POOL)
				vz__sim_pool_step(sim);
			else if (c == CAND_IO)
				vz__sim_io_step(sim);
			else if (c == CAND_NET)
				vz__sim_net_step(sim);
			else
				run_turn(sim, (unsigned)c);
			if (c < 0)
				sim->idle_streak = 0;
			tick_holds(sim);
			sim->st.steps++;
			return 1;
		}
		/* Quiet: first what was held back for some steps; then what
		 * was delayed, unless it is to sit out a time jump; then time. */
		sim->idle_streak = 0;
		if (sim->nholds && release_all(sim, false))
			continue;
		next = next_deadline(sim);
		if (sim->nholds && (n || next == UINT64_MAX || !sim->delay_jumps)) {
			release_all(sim, true);
			continue;
		}
		if (n)
			continue; /* a streak of empty turns, nothing held: go on */
		if (next == UINT64_MAX)
			return 0;
		if (until_ns && next > until_ns) {
			if (sim->now_ns < until_ns)
				sim->now_ns = until_ns;
			return VZ_ETIMEDOUT;
		}
		if (next <= sim->now_ns)
			return 0; /* cannot happen: a due timer makes its shard runnable */
		if (sim->nholds)
			sim->delay_jumps--;
		sim->now_ns = next;
		sim->st.time_jumps++;
	}
}

static int check(vz_sim *sim)
{
	if (!sim)
		return VZ_EINVAL;
	if (vz__thread_token() != sim->thread)
		return VZ_EWRONGTHREAD;
	/* Acquire: pairs with the seq_cst stores of the state (runtime.c). */
	if (atomic_load_explicit(&sim->rt->state, memory_order_acquire) != VZ__RT_RUNNING)
		return VZ_ESTATE;
	return 0;
}

VZ_API int vz_sim_step(vz_sim *sim)
{
	int rc = check(sim);

	return rc < 0 ? rc : step(sim, 0);
}

VZ_API int vz_sim_run(vz_sim *sim, uint64_t max_steps, uint64_t until_ns)
{
	int rc = check(sim);

	for (uint64_t i = 0; rc == 0; i++) {
		if (max_steps && i == max_steps)
			return VZ_EAGAIN;
		rc = step(sim, until_ns);
		if (rc == 1)
			rc = 0;
		else if (rc == 0)
			return 0;
	}
	return rc;
}
