// SPDX-License-Identifier: MIT
/*
 * Timer wheel tests (VZ_TEST_BACKEND_INDEPENDENT: no I/O backend involved).
 *
 * The property test drives the wheel with random operations (adds across
 * every level, beyond the range and in the past; deletes; advances by 0, one
 * tick, many ticks and jumps of months; adds and deletes from inside fire
 * callbacks) and checks each step against a reference model, a binary heap
 * of (deadline, timer): the same timers fire, never early (deadline <= now
 * of the advance that fires it) and never late (after an advance to now,
 * no timer with a deadline <= now is left pending, save those a callback
 * of that advance added as already due: they fire on the next one), in the
 * documented order, and the next-deadline value is always a lower bound of
 * the earliest deadline, exact when it is in the current tick. The seed is
 * printed; VZ_TIMER_SEED=<n> replays a run. The edge-case tests pin down the
 * corners one at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "timer/wheel.h"

#define MS  1000000ull
#define SEC 1000000000ull
#define DAY (86400ull * SEC)

/* ---- small deterministic PRNG (xoshiro256**) ---- */

static uint64_t rng_s[4];

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rnd(void)
{
	uint64_t r = rotl(rng_s[1] * 5, 7) * 9, t = rng_s[1] << 17;

	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

static void rnd_seed(uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++) {
		/* splitmix64 */
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		rng_s[i] = z ^ (z >> 31);
	}
}

/* uniform in [0, n] (n may be UINT64_MAX) */
static uint64_t rnd_upto(uint64_t n)
{
	return n == UINT64_MAX ? rnd() : rnd() % (n + 1);
}

/* ---- reference model ---- */

enum { T_FREE, T_LIVE, T_FIRED, T_CANCELLED };

struct rec {
	struct vz__wheel_entry e;
	uint64_t deadline;
	uint64_t eff;	   /* effective tick: fire order key */
	bool past;	   /* added already due */
	uint64_t added_in; /* advance number during which it was added, 0 if outside */
	uint32_t inc;	   /* incarnation, to skip stale heap items */
	uint32_t live_pos;
	int state;
};

struct hitem {
	uint64_t key; /* deadline: due once key <= now */
	uint32_t idx, inc;
};

#define MAXREC 3000

struct model {
	struct vz__wheel w;
	uint64_t tick;
	uint64_t now;	 /* largest now given to the wheel */
	uint64_t c;	 /* model of the wheel's current tick */
	uint64_t adv_no; /* advances so far; nonzero while inside one */
	bool in_advance;
	uint64_t c_mid;	   /* inside an advance: tick being fired */
	uint64_t last_eff; /* inside an advance: eff of the last fired */
	uint64_t last_d;   /* inside an advance: deadline of the last fired of the target tick */
	uint64_t target;   /* inside an advance: floor(now / tick) */
	uint64_t fired_this, live;
	struct rec recs[MAXREC];
	uint32_t live_ids[MAXREC];
	uint32_t free_ids[MAXREC];
	uint32_t nfree;
	struct hitem *heap;
	size_t hn, hcap;
	uint64_t stats_fired, stats_cancel_cb, stats_add_cb, stats_overflow, stats_past;
};

static struct model M;

static bool hless(const struct hitem *a, const struct hitem *b)
{
	return a->key < b->key;
}

static void hpush(struct model *m, struct hitem it)
{
	size_t i;

	if (m->hn == m->hcap) {
		m->hcap = m->hcap ? m->hcap * 2 : 1024;
		m->heap = realloc(m->heap, m->hcap * sizeof *m->heap);
		assert_non_null(m->heap);
	}
	i = m->hn++;
	while (i > 0 && hless(&it, &m->heap[(i - 1) / 2])) {
		m->heap[i] = m->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	m->heap[i] = it;
}

static struct hitem hpop(struct model *m)
{
	struct hitem top = m->heap[0], last = m->heap[--m->hn];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= m->hn)
			break;
		if (c + 1 < m->hn && hless(&m->heap[c + 1], &m->heap[c]))
			c++;
		if (!hless(&m->heap[c], &last))
			break;
		m->heap[i] = m->heap[c];
		i = c;
	}
	if (m->hn)
		m->heap[i] = last;
	return top;
}

static bool hitem_live(const struct model *m, const struct hitem *it)
{
	const struct rec *r = &m->recs[it->idx];

	return r->inc == it->inc && r->state == T_LIVE;
}

/* Drop stale items from the top; return the live minimum or NULL. */
static const struct hitem *htop_live(struct model *m)
{
	while (m->hn && !hitem_live(m, &m->heap[0]))
		hpop(m);
	return m->hn ? &m->heap[0] : NULL;
}

static void live_remove(struct model *m, uint32_t idx)
{
	struct rec *r = &m->recs[idx];
	uint32_t last = m->live_ids[--m->live];

	m->live_ids[r->live_pos] = last;
	m->recs[last].live_pos = r->live_pos;
}

static void model_init(struct model *m, uint64_t tick, uint64_t now)
{
	uint32_t i;

	memset(m->recs, 0, sizeof m->recs);
	assert_int_equal(vz__wheel_init(&m->w, tick, now), 0);
	m->tick = tick;
	m->now = now;
	m->c = now / tick;
	m->adv_no = 0;
	m->in_advance = false;
	m->live = 0;
	m->hn = 0;
	m->nfree = 0;
	for (i = MAXREC; i-- > 0;) {
		vz__wheel_entry_init(&m->recs[i].e);
		m->free_ids[m->nfree++] = i;
	}
}

/* Add record idx (not live) with deadline d, to the wheel and the model. */
static void model_add_rec(struct model *m, uint32_t idx, uint64_t d)
{
	struct rec *r = &m->recs[idx];
	uint64_t now = m->now;

	r->deadline = d;
	r->inc++;
	r->state = T_LIVE;
	r->added_in = m->in_advance ? m->adv_no : 0;
	r->past = d <= now;
	if (d <= now) {
		/* already due: fires first in the next advance, in add order */
		r->eff = m->in_advance ? m->c_mid : m->c;
		m->stats_past++;
	} else {
		r->eff = d / m->tick;
		if (r->eff - (m->in_advance ? m->c_mid : m->c) > m->w.range)
			m->stats_overflow++;
	}
	r->live_pos = (uint32_t)m->live;
	m->live_ids[m->live++] = idx;
	hpush(m, (struct hitem){.key = d, .idx = idx, .inc = r->inc});
	vz__wheel_add(&m->w, &r->e, d);
	assert_true(vz__wheel_entry_pending(&r->e));
}

static bool model_add(struct model *m, uint64_t d)
{
	uint32_t idx;

	if (!m->nfree)
		return false;
	idx = m->free_ids[--m->nfree];
	model_add_rec(m, idx, d);
	return true;
}

static void model_cancel(struct model *m, uint32_t idx)
{
	struct rec *r = &m->recs[idx];

	assert_int_equal(r->state, T_LIVE);
	assert_true(vz__wheel_del(&m->w, &r->e));
	assert_false(vz__wheel_entry_pending(&r->e));
	assert_false(vz__wheel_del(&m->w, &r->e)); /* second del: not pending */
	r->state = T_CANCELLED;
	live_remove(m, idx);
	m->free_ids[m->nfree++] = idx;
}

/* A random deadline relative to the model's time, covering every level,
 * the overflow list and the past. */
static uint64_t rand_deadline(struct model *m)
{
	uint64_t now = m->now, t = m->tick, r = rnd() % 100;
	unsigned levels = m->w.nlevels, k;
	uint64_t span;

	if (r < 8) /* past, up to 10 days */
		return now - rnd_upto(now < 10 * DAY ? now : 10 * DAY);
	if (r < 12)
		return now;
	if (r < 30) /* within 64 ticks */
		return now + rnd_upto(64 * t);
	if (r < 92) { /* some level */
		k = 1 + (unsigned)(rnd() % levels);
		span = 1ull << (6 * k);
		if (span > m->w.range)
			span = m->w.range;
		return now + rnd_upto(span * t);
	}
	/* around and beyond the range */
	return now + m->w.range * t - t * 64 + rnd_upto(2 * m->w.range * t);
}

static void on_fire(void *ctx, struct vz__wheel_entry *e)
{
	struct model *m = ctx;
	struct rec *r = (struct rec *)e; /* e is the first member */
	uint32_t idx = (uint32_t)(r - m->recs);

	assert_true(idx < MAXREC);
	if (r->state != T_LIVE)
		fail_msg("fired a timer that is not live (state %d)", r->state);
	if (r->added_in == m->adv_no)
		fail_msg("a timer added during this advance fired in it");
	if (r->deadline > m->now)
		fail_msg("early: deadline %llu > now %llu", (unsigned long long)r->deadline,
			 (unsigned long long)m->now);
	if (r->eff < m->last_eff)
		fail_msg("order: eff %llu after %llu", (unsigned long long)r->eff,
			 (unsigned long long)m->last_eff);
	/* The tick now is in fires in deadline order. */
	if (!r->past && r->eff == m->target) {
		if (r->deadline < m->last_d)
			fail_msg("order: deadline %llu after %llu in the current tick",
				 (unsigned long long)r->deadline, (unsigned long long)m->last_d);
		m->last_d = r->deadline;
	}
	assert_false(vz__wheel_entry_pending(e));
	m->last_eff = r->eff;
	m->c_mid = r->eff > m->c ? r->eff : m->c;
	assert_int_equal(vz__wheel_now_tick(&m->w), m->c_mid);
	r->state = T_FIRED;
	live_remove(m, idx);
	m->fired_this++;

	/* Deleting the entry being fired: it is no longer pending. */
	assert_false(vz__wheel_del(&m->w, e));

	switch (rnd() % 64) {
	case 0: /* cancel another live timer, possibly due in this advance */
		if (m->live) {
			m->stats_cancel_cb++;
			model_cancel(m, m->live_ids[rnd() % m->live]);
		}
		break;
	case 1: /* re-add this one (like a periodic timer) */
		m->stats_add_cb++;
		model_add_rec(m, idx, rand_deadline(m));
		return;
	case 2: /* add a fresh one */
		m->stats_add_cb++;
		model_add(m, rand_deadline(m));
		break;
	default:
		break;
	}
	m->free_ids[m->nfree++] = idx;
}

static void check_next_deadline(struct model *m)
{
	uint64_t nd = vz__wheel_next_deadline_ns(&m->w);
	const struct hitem *top = htop_live(m);

	assert_int_equal(vz__wheel_count(&m->w), m->live);
	if (!top) {
		assert_int_equal(nd, UINT64_MAX);
		return;
	}
	if (top->key <= m->now) {
		/* something is already due: the loop must not sleep */
		assert_true(nd <= m->now);
		return;
	}
	if (nd > top->key)
		fail_msg("next deadline %llu exceeds the earliest deadline %llu",
			 (unsigned long long)nd, (unsigned long long)top->key);
	assert_true(nd > m->now); /* sleeping until nd makes progress */
	/* In the current tick it is exact: a sleep until nd ends on time. */
	if (top->key / m->tick == m->c)
		assert_int_equal(nd, top->key);
}

static void model_advance(struct model *m, uint64_t now)
{
	uint64_t t, fired;
	const struct hitem *top;
	struct hitem keep[MAXREC];
	size_t nkeep = 0;

	m->adv_no++;
	m->in_advance = true;
	if (now > m->now)
		m->now = now;
	t = m->now / m->tick;
	m->target = t;
	m->last_eff = 0;
	m->last_d = 0;
	m->c_mid = m->c;
	m->fired_this = 0;
	fired = vz__wheel_advance(&m->w, now, on_fire, m);
	m->in_advance = false;
	assert_int_equal(fired, m->fired_this);
	m->stats_fired += fired;
	m->c = t;
	assert_int_equal(vz__wheel_now_tick(&m->w), t);
	/* Never late: every deadline <= now has fired, except what callbacks
	 * added as already due (they fire on the next advance). */
	while ((top = htop_live(m)) && top->key <= m->now) {
		struct hitem it = hpop(m);

		if (m->recs[it.idx].added_in != m->adv_no)
			fail_msg("late: deadline %llu still pending after an advance to %llu",
				 (unsigned long long)m->recs[it.idx].deadline,
				 (unsigned long long)m->now);
		keep[nkeep++] = it;
	}
	while (nkeep)
		hpush(m, keep[--nkeep]);
}

static uint64_t seed_from_env(void)
{
	const char *s = getenv("VZ_TIMER_SEED");

	if (s && *s)
		return strtoull(s, NULL, 0);
	return vz_test_now_ns() ^ ((uint64_t)getpid() << 32);
}

/* One episode: a fresh wheel at `tick` starting at `start`, `ops` steps. */
static void episode(uint64_t tick, uint64_t start, unsigned ops)
{
	struct model *m = &M;
	unsigned i;

	model_init(m, tick, start);
	for (i = 0; i < ops; i++) {
		uint64_t r = rnd() % 100, step;

		if (r < 45) {
			if (!model_add(m, rand_deadline(m)) && m->live)
				model_cancel(m, m->live_ids[rnd() % m->live]);
		} else if (r < 62) {
			if (m->live)
				model_cancel(m, m->live_ids[rnd() % m->live]);
		} else {
			r = rnd() % 100;
			if (r < 15)
				step = 0;
			else if (r < 30)
				step = tick;
			else if (r < 65)
				step = rnd_upto(64 * tick);
			else if (r < 85)
				step = rnd_upto(4096 * tick);
			else if (r < 97)
				step = rnd_upto(262144 * tick);
			else if (r < 99)
				step = rnd_upto(m->w.range * tick / 64);
			else /* months to years */
				step = rnd_upto(m->w.range * tick / 4);
			model_advance(m, m->now + step);
		}
		check_next_deadline(m);
	}
	/* Drain: a jump far enough fires everything left. */
	while (m->live) {
		model_advance(m, m->now + m->w.range * tick);
		check_next_deadline(m);
	}
	assert_int_equal(vz__wheel_next_deadline_ns(&m->w), UINT64_MAX);
	vz__wheel_fini(&m->w);
}

static void test_property(void **state)
{
	static const uint64_t ticks[] = {1 * MS, 10000, 1 * SEC, 100000, 250 * 1000};
	uint64_t seed = seed_from_env(), total = vz_test_scale(1000000), done = 0;
	unsigned ep = 0;

	(void)state;
	vz_test_watchdog(60);
	fprintf(stderr, "test_timer_wheel: property seed %llu (set VZ_TIMER_SEED to replay)\n",
		(unsigned long long)seed);
	rnd_seed(seed);
	while (done < total) {
		uint64_t tick = ticks[ep % 5], start;
		struct vz__wheel probe;
		uint64_t top_span;

		assert_int_equal(vz__wheel_init(&probe, tick, 0), 0);
		/* top-level rotation length in ticks */
		top_span = 1ull << (6 * probe.nlevels);
		switch (ep % 4) {
		case 0: /* anywhere below 2^60 ns */
			start = rnd_upto(1ull << 60);
			break;
		case 1: /* just before a wrap of every level counter */
			start = (top_span * (1 + rnd_upto(3)) - rnd_upto(300)) * tick +
				rnd_upto(tick - 1);
			break;
		case 2: /* just before a top-level slot boundary */
			start = ((top_span >> 6) * (1 + rnd_upto(200)) - rnd_upto(100)) * tick;
			break;
		default:
			start = rnd_upto(10 * SEC);
			break;
		}
		episode(tick, start, 20000);
		done += 20000;
		ep++;
	}
	fprintf(stderr,
		"test_timer_wheel: %llu ops in %u episodes, %llu fired, %llu past, "
		"%llu beyond range, %llu adds and %llu cancels from callbacks\n",
		(unsigned long long)done, ep, (unsigned long long)M.stats_fired,
		(unsigned long long)M.stats_past, (unsigned long long)M.stats_overflow,
		(unsigned long long)M.stats_add_cb, (unsigned long long)M.stats_cancel_cb);
	/* The run must have exercised what it claims to. */
	assert_true(M.stats_overflow > 0);
	assert_true(M.stats_past > 0);
	assert_true(M.stats_cancel_cb > 0);
	free(M.heap);
	M.heap = NULL;
	M.hn = M.hcap = 0;
}

/* ---- edge cases ---- */

struct log {
	struct vz__wheel *w;
	struct vz__wheel_entry *order[64];
	unsigned n;
	struct vz__wheel_entry *victim;	 /* deleted by the first fire, if set */
	struct vz__wheel_entry *pair[2]; /* or: the first of these to fire deletes the other */
	bool victim_deleted;
};

static void log_fire(void *ctx, struct vz__wheel_entry *e)
{
	struct log *l = ctx;

	assert_true(l->n < 64);
	l->order[l->n++] = e;
	if (l->pair[0] && !l->victim)
		l->victim = e == l->pair[0] ? l->pair[1] : l->pair[0];
	if (l->victim && !l->victim_deleted)
		l->victim_deleted = vz__wheel_del(l->w, l->victim);
}

static void test_init_range(void **state)
{
	static const uint64_t ticks[] = {10000, 100000, 1 * MS, 10 * MS, 1 * SEC};
	struct vz__wheel w;
	unsigned i;

	(void)state;
	assert_int_equal(vz__wheel_init(&w, 9999, 0), VZ_EINVAL);
	assert_int_equal(vz__wheel_init(&w, SEC + 1, 0), VZ_EINVAL);
	assert_int_equal(vz__wheel_init(NULL, MS, 0), VZ_EINVAL);
	for (i = 0; i < 5; i++) {
		assert_int_equal(vz__wheel_init(&w, ticks[i], 12345), 0);
		assert_true(w.nlevels <= VZ__WHEEL_MAX_LEVELS);
		assert_true(w.range * ticks[i] >= 30 * DAY);
		assert_int_equal(vz__wheel_count(&w), 0);
		assert_int_equal(vz__wheel_next_deadline_ns(&w), UINT64_MAX);
		vz__wheel_fini(&w);
	}
}

static void test_deadline_now_and_past(void **state)
{
	struct vz__wheel w;
	struct vz__wheel_entry a, b, c;
	struct log l = {.w = &w};
	uint64_t base = 2 * DAY + 5 * SEC, now = base + 300000; /* not tick aligned */

	(void)state;
	assert_int_equal(vz__wheel_init(&w, MS, now), 0);
	vz__wheel_entry_init(&a);
	vz__wheel_entry_init(&b);
	vz__wheel_entry_init(&c);
	vz__wheel_add(&w, &a, now);	  /* == now */
	vz__wheel_add(&w, &b, now - DAY); /* far past */
	vz__wheel_add(&w, &c, 0);	  /* the epoch */
	assert_int_equal(vz__wheel_count(&w), 3);
	assert_true(vz__wheel_next_deadline_ns(&w) <= now);
	/* Same now again: all three fire, in add order. */
	assert_int_equal(vz__wheel_advance(&w, now, log_fire, &l), 3);
	assert_ptr_equal(l.order[0], &a);
	assert_ptr_equal(l.order[1], &b);
	assert_ptr_equal(l.order[2], &c);
	assert_int_equal(vz__wheel_count(&w), 0);
	/* A deadline 1 ns ahead of an unaligned now, in the same tick: the
	 * next deadline is exact, and it fires at that ns, not before and not
	 * at the tick boundary. */
	vz__wheel_add(&w, &a, now + 1);
	assert_int_equal(vz__wheel_next_deadline_ns(&w), now + 1);
	assert_int_equal(vz__wheel_advance(&w, now, log_fire, &l), 0);
	assert_int_equal(vz__wheel_advance(&w, now + 1, log_fire, &l), 1);
	/* Same for one in the next tick, and a second in the tick reached. */
	vz__wheel_add(&w, &a, base + MS + 700000);
	vz__wheel_add(&w, &b, base + MS + 200000);
	assert_int_equal(vz__wheel_next_deadline_ns(&w), base + MS + 200000);
	assert_int_equal(vz__wheel_advance(&w, base + MS + 199999, log_fire, &l), 0);
	assert_int_equal(vz__wheel_next_deadline_ns(&w), base + MS + 200000);
	assert_int_equal(vz__wheel_advance(&w, base + MS + 200000, log_fire, &l), 1);
	assert_ptr_equal(l.order[4], &b);
	assert_int_equal(vz__wheel_next_deadline_ns(&w), base + MS + 700000);
	assert_int_equal(vz__wheel_advance(&w, base + MS + 699999, log_fire, &l), 0);
	assert_int_equal(vz__wheel_advance(&w, base + MS + 700000, log_fire, &l), 1);
	assert_ptr_equal(l.order[5], &a);
	/* Time going backwards changes nothing and fires nothing new. */
	vz__wheel_add(&w, &a, base + SEC);
	assert_int_equal(vz__wheel_advance(&w, SEC, log_fire, &l), 0);
	assert_int_equal(vz__wheel_now_tick(&w), base / MS + 1);
	assert_int_equal(l.n, 6);
	assert_int_equal(vz__wheel_advance(&w, base + SEC, log_fire, &l), 1);
	vz__wheel_fini(&w);
}

static void test_next_deadline_exact_and_bound(void **state)
{
	struct vz__wheel w;
	struct vz__wheel_entry e[4];
	struct log l = {.w = &w};
	uint64_t base = 1000 * 64 * MS; /* tick 64000: digit 0 is 0 */
	unsigned i;

	(void)state;
	assert_int_equal(vz__wheel_init(&w, MS, base), 0);
	for (i = 0; i < 4; i++)
		vz__wheel_entry_init(&e[i]);
	/* Level 0: the exact deadline. */
	vz__wheel_add(&w, &e[0], base + 10 * MS + 1);
	assert_int_equal(vz__wheel_next_deadline_ns(&w), base + 10 * MS + 1);
	vz__wheel_del(&w, &e[0]);
	/* Level 2 (5000 ticks away): the start of its slot, early but a
	 * lower bound; after waking there the bound tightens, and the timer
	 * fires only once due. */
	vz__wheel_add(&w, &e[1], base + 5000 * MS + 7);
	{
		uint64_t nd = vz__wheel_next_deadline_ns(&w), prev = 0;
		unsigned wakeups = 0;

		assert_true(nd <= base + 5000 * MS + 7);
		assert_true(nd > base);
		while (vz__wheel_count(&w)) {
			assert_true(nd > prev);
			assert_true(nd <= base + 5000 * MS + 7);
			prev = nd;
			vz__wheel_advance(&w, nd, log_fire, &l);
			wakeups++;
			nd = vz__wheel_next_deadline_ns(&w);
		}
		assert_int_equal(prev, base + 5000 * MS + 7); /* last wake-up is exact */
		assert_true(wakeups <= w.nlevels);
		assert_int_equal(l.n, 1);
	}
	vz__wheel_fini(&w);
}

static void test_cancel_during_cascade(void **state)
{
	struct vz__wheel w;
	struct vz__wheel_entry a, b, c;
	struct log l = {.w = &w};

	(void)state;
	assert_int_equal(vz__wheel_init(&w, MS, 0), 0);
	vz__wheel_entry_init(&a);
	vz__wheel_entry_init(&b);
	vz__wheel_entry_init(&c);
	/* All three live on level 1 and 2 and come down by cascading in one
	 * advance; a and b share a due tick before the advance's target, so
	 * they fire in unspecified order (the two lists of a slot), and the
	 * first one's callback deletes the other, due in the same advance;
	 * c is due later. */
	vz__wheel_add(&w, &a, 100 * MS);
	vz__wheel_add(&w, &b, 100 * MS + 1);
	vz__wheel_add(&w, &c, 9000 * MS);
	l.pair[0] = &a;
	l.pair[1] = &b;
	assert_int_equal(vz__wheel_advance(&w, 200 * MS, log_fire, &l), 1);
	assert_true(l.victim_deleted);
	assert_true(l.order[0] == &a || l.order[0] == &b);
	assert_false(vz__wheel_entry_pending(&a));
	assert_false(vz__wheel_entry_pending(&b));
	assert_int_equal(vz__wheel_count(&w), 1);
	/* Same with the victim in the same level-0 slot as the firing one. */
	l.n = 0;
	l.victim_deleted = false;
	l.victim = NULL;
	l.pair[0] = &a;
	l.pair[1] = &c;
	vz__wheel_add(&w, &a, 8999 * MS + 1); /* same due tick as c */
	assert_int_equal(vz__wheel_advance(&w, 20000 * MS, log_fire, &l), 1);
	assert_true(l.victim_deleted);
	assert_int_equal(vz__wheel_count(&w), 0);
	assert_int_equal(vz__wheel_next_deadline_ns(&w), UINT64_MAX);
	vz__wheel_fini(&w);
}

/* Entries with equal deadlines fire in the order they were added, also
 * when they come down by cascading into the tick the advance stops in (a
 * slot's two lists: equal deadlines share one). */
static void test_equal_deadlines_fifo(void **state)
{
	struct vz__wheel w;
	struct vz__wheel_entry e[16], other[16];
	struct log l = {.w = &w};
	unsigned i;

	(void)state;
	assert_int_equal(vz__wheel_init(&w, MS, 0), 0);
	for (i = 0; i < 16; i++) {
		vz__wheel_entry_init(&e[i]);
		vz__wheel_entry_init(&other[i]);
	}
	/* 16 at 5000.5 ms (level 2, then cascaded), interleaved with 16 at
	 * other deadlines of the same tick, and both sets in reverse order of
	 * address every other time. */
	for (i = 0; i < 16; i++) {
		vz__wheel_add(&w, &e[i % 2 ? 15 - i / 2 : i / 2], 5000 * MS + MS / 2);
		vz__wheel_add(&w, &other[i], 5000 * MS + i * 1000);
	}
	assert_int_equal(vz__wheel_advance(&w, 5000 * MS + MS / 2, log_fire, &l), 32);
	for (i = 0, l.n = 0; i < 32; i++) {
		struct vz__wheel_entry *x = l.order[i];

		if (x >= e && x < e + 16) {
			unsigned k = l.n++;

			assert_ptr_equal(x, &e[k % 2 ? 15 - k / 2 : k / 2]);
		}
	}
	assert_int_equal(l.n, 16);
	vz__wheel_fini(&w);
}

static void test_wraparound(void **state)
{
	struct vz__wheel w;
	struct vz__wheel_entry e[8];
	struct log l = {.w = &w};
	uint64_t top, start;
	unsigned i;

	(void)state;
	assert_int_equal(vz__wheel_init(&w, MS, 0), 0);
	top = 1ull << (6 * w.nlevels); /* ticks in one top-level rotation */
	vz__wheel_fini(&w);
	start = (top - 3) * MS; /* every level counter is about to wrap */
	assert_int_equal(vz__wheel_init(&w, MS, start), 0);
	for (i = 0; i < 8; i++)
		vz__wheel_entry_init(&e[i]);
	/* Due at 1, 3, 4, 70, 4100 ticks ahead: they cross the wrap of
	 * every level. */
	vz__wheel_add(&w, &e[0], start + 1 * MS);
	vz__wheel_add(&w, &e[1], start + 3 * MS);
	vz__wheel_add(&w, &e[2], start + 4 * MS);
	vz__wheel_add(&w, &e[3], start + 70 * MS);
	vz__wheel_add(&w, &e[4], start + 4100 * MS);
	assert_int_equal(vz__wheel_next_deadline_ns(&w), start + 1 * MS);
	for (i = 0; i < 5000; i++) { /* one tick at a time */
		unsigned before = l.n;

		vz__wheel_advance(&w, start + i * MS, log_fire, &l);
		if (l.n != before)
			assert_int_equal(l.order[l.n - 1]->deadline_ns, start + i * MS);
	}
	assert_int_equal(l.n, 5);
	for (i = 0; i < 5; i++)
		assert_ptr_equal(l.order[i], &e[i]);
	vz__wheel_fini(&w);
}

static void test_beyond_range_and_jumps(void **state)
{
	struct vz__wheel w;
	struct vz__wheel_entry far, farther, day, soon;
	struct log l = {.w = &w};
	uint64_t now = 7 * SEC, range_ns;

	(void)state;
	assert_int_equal(vz__wheel_init(&w, MS, now), 0);
	range_ns = w.range * MS;
	vz__wheel_entry_init(&far);
	vz__wheel_entry_init(&farther);
	vz__wheel_entry_init(&day);
	vz__wheel_entry_init(&soon);
	vz__wheel_add(&w, &far, now + range_ns + 5 * MS); /* just beyond: overflow */
	assert_int_equal(far.where, VZ__WHEEL_OVERFLOW);
	vz__wheel_add(&w, &farther, now + 3 * range_ns); /* far beyond */
	vz__wheel_add(&w, &day, now + 3 * DAY + 1);
	vz__wheel_add(&w, &soon, now + range_ns); /* exactly at the range: in the wheel */
	assert_true(soon.where < VZ__WHEEL_MAX_LEVELS * VZ__WHEEL_SLOTS);
	assert_true(vz__wheel_next_deadline_ns(&w) <= now + 3 * DAY + MS);
	/* The clock jumps forward by 5 days: the 3-day timer fires, late by
	 * the jump (it was due long ago) but after its deadline. */
	now += 5 * DAY;
	assert_int_equal(vz__wheel_advance(&w, now, log_fire, &l), 1);
	assert_ptr_equal(l.order[0], &day);
	/* Not clamped: one ns before their due times nothing fires. */
	assert_int_equal(vz__wheel_advance(&w, 7 * SEC + range_ns - 1, log_fire, &l), 0);
	assert_int_equal(vz__wheel_advance(&w, 7 * SEC + range_ns, log_fire, &l), 1);
	assert_ptr_equal(l.order[1], &soon);
	assert_true(vz__wheel_next_deadline_ns(&w) <= 7 * SEC + range_ns + 5 * MS);
	assert_int_equal(vz__wheel_advance(&w, 7 * SEC + range_ns + 5 * MS - 1, log_fire, &l), 0);
	assert_int_equal(vz__wheel_advance(&w, 7 * SEC + range_ns + 5 * MS, log_fire, &l), 1);
	assert_ptr_equal(l.order[2], &far);
	assert_int_equal(vz__wheel_advance(&w, 7 * SEC + 3 * range_ns - 1, log_fire, &l), 0);
	assert_int_equal(vz__wheel_advance(&w, UINT64_MAX / 2, log_fire, &l), 1);
	assert_ptr_equal(l.order[3], &farther);
	/* A deadline past the representable due time never fires, and the
	 * bound stays a lower bound. */
	vz__wheel_add(&w, &far, UINT64_MAX);
	assert_true(vz__wheel_next_deadline_ns(&w) < UINT64_MAX);
	assert_int_equal(vz__wheel_advance(&w, UINT64_MAX - 1, log_fire, &l), 0);
	assert_true(vz__wheel_del(&w, &far));
	vz__wheel_fini(&w);
}

struct readd {
	struct vz__wheel *w;
	unsigned fired;
};

static void readd_fire(void *ctx, struct vz__wheel_entry *e)
{
	struct readd *r = ctx;

	r->fired++;
	/* already due: must wait for the next advance, not loop here */
	vz__wheel_add(r->w, e, 0);
}

struct bounded {
	uint64_t n, last_d, now, early;
};

static void bounded_fire(void *ctx, struct vz__wheel_entry *e)
{
	struct bounded *b = ctx;

	b->n++;
	if (e->deadline_ns > b->now)
		b->early++;
}

/*
 * No advance re-files more than a batch of entries when the loop advances
 * often: thousands of timers in one level-1 slot (ticks 64..127) and in one
 * level-2 slot (ticks 4096..8191) come down a batch per advance ahead of
 * their cascade, and every timer still fires exactly when due. (Moving a
 * whole slot in the advance that reaches it is what made timers due just
 * after a slot boundary late.)
 */
static void test_cascade_spread(void **state)
{
	enum { N1 = 5000, N2 = 20000 };
	static struct vz__wheel_entry e[N1 + N2];
	struct vz__wheel w;
	struct bounded b = {0};
	uint64_t t, worst = 0, lcg = 12345;
	unsigned i;

	(void)state;
	assert_int_equal(vz__wheel_init(&w, MS, 0), 0);
	for (i = 0; i < N1 + N2; i++) {
		uint64_t lo = i < N1 ? 64 * MS : 4096 * MS, span = i < N1 ? 64 * MS : 4096 * MS;

		lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
		vz__wheel_entry_init(&e[i]);
		vz__wheel_add(&w, &e[i], lo + (lcg >> 20) % span);
	}
	/* Four advances per tick, each checked for never early and never late. */
	for (t = 1; t <= 8200 * 4; t++) {
		uint64_t before = w.moved, nd;

		b.now = t * MS / 4;
		vz__wheel_advance(&w, b.now, bounded_fire, &b);
		if (w.moved - before > worst)
			worst = w.moved - before;
		nd = vz__wheel_next_deadline_ns(&w);
		assert_true(nd > b.now);
	}
	assert_int_equal(b.early, 0);
	assert_int_equal(b.n, N1 + N2);
	assert_int_equal(vz__wheel_count(&w), 0);
	assert_true(worst <= VZ__WHEEL_PRE_BATCH);
	vz__wheel_fini(&w);
}

static void test_readd_from_callback(void **state)
{
	struct vz__wheel w;
	struct vz__wheel_entry e;
	struct readd r = {.w = &w};

	(void)state;
	assert_int_equal(vz__wheel_init(&w, MS, 0), 0);
	vz__wheel_entry_init(&e);
	vz__wheel_add(&w, &e, 5 * MS);
	assert_int_equal(vz__wheel_advance(&w, 10 * MS, readd_fire, &r), 1);
	assert_int_equal(vz__wheel_advance(&w, 10 * MS, readd_fire, &r), 1);
	assert_int_equal(r.fired, 2);
	assert_int_equal(vz__wheel_count(&w), 1);
	vz__wheel_fini(&w);
	assert_false(vz__wheel_entry_pending(&e));
}

/* The stored tick is gone: vz__wheel_tick_of() must equal the division
 * for every tick the wheel accepts and every 64-bit deadline. Edges (0,
 * multiples of the tick and their neighbours, the top of the range) and
 * random values, for the common ticks, powers of two and random ticks. */
static void test_tick_of_exact(void **state)
{
	static const uint64_t fixed[] = {
	    VZ__WHEEL_TICK_MIN_NS, 16384, 100000, 250000, 1000000, 1048576, 999999937,
	    VZ__WHEEL_TICK_MAX_NS};
	struct vz__wheel *w = malloc(sizeof *w);
	unsigned i, k;

	(void)state;
	assert_non_null(w);
	for (i = 0; i < 200; i++) {
		uint64_t d = i < sizeof fixed / sizeof fixed[0]
				 ? fixed[i]
				 : VZ__WHEEL_TICK_MIN_NS +
				       rnd_upto(VZ__WHEEL_TICK_MAX_NS - VZ__WHEEL_TICK_MIN_NS);
		uint64_t edge[] = {0,
				   1,
				   d - 1,
				   d,
				   d + 1,
				   UINT64_MAX,
				   UINT64_MAX - 1,
				   UINT64_MAX / d * d,
				   UINT64_MAX / d * d - 1};

		assert_int_equal(vz__wheel_init(w, d, 0), 0);
		for (k = 0; k < sizeof edge / sizeof edge[0]; k++)
			assert_int_equal(vz__wheel_tick_of(w, edge[k]), edge[k] / d);
		for (k = 0; k < 20000; k++) {
			uint64_t x = rnd() >> (rnd() % 64);
			uint64_t m = x / d * d;

			assert_int_equal(vz__wheel_tick_of(w, x), x / d);
			assert_int_equal(vz__wheel_tick_of(w, m), m / d);
			if (m)
				assert_int_equal(vz__wheel_tick_of(w, m - 1), (m - 1) / d);
		}
		vz__wheel_fini(w);
	}
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_range),
	    cmocka_unit_test(test_tick_of_exact),
	    cmocka_unit_test(test_deadline_now_and_past),
	    cmocka_unit_test(test_next_deadline_exact_and_bound),
	    cmocka_unit_test(test_cancel_during_cascade),
	    cmocka_unit_test(test_equal_deadlines_fifo),
	    cmocka_unit_test(test_wraparound),
	    cmocka_unit_test(test_beyond_range_and_jumps),
	    cmocka_unit_test(test_readd_from_callback),
	    cmocka_unit_test(test_cascade_spread),
	    cmocka_unit_test(test_property),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
