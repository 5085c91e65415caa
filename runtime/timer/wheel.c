// SPDX-License-Identifier: MIT
/*
 * Hierarchical timer wheel: see wheel.h for the contract and NOTES.md for
 * the design. In short: an entry of tick e = floor(deadline / tick) later
 * than the wheel's tick c sits on the level of the highest 6-bit digit in which e and c differ
 * (capped at the top level) and in the slot given by e's digit on that
 * level. So a lower level only ever holds entries earlier than every slot
 * of a higher level, the earliest entry is found from the lowest occupied
 * level's bitmap with one rotate and one count-trailing-zeros, and moving
 * time to the start of an occupied slot re-files ("cascades") that slot's
 * entries one level down or more. The top level wraps around; an entry
 * more than `range` ticks ahead would be ambiguous there and waits in the
 * overflow list instead. Entries of tick c itself wait on the near list,
 * sorted by deadline, so an advance within a tick fires exactly what is
 * due and the next deadline is exact.
 */
#include "timer/wheel.h"

#include <stddef.h>

#include <veloz/error.h>

static inline void list_init(struct vz__wheel_link *h)
{
	h->next = h;
	h->prev = h;
}

static inline bool list_empty(const struct vz__wheel_link *h)
{
	return h->next == h;
}

static inline void list_append(struct vz__wheel_link *h, struct vz__wheel_link *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void list_unlink(struct vz__wheel_link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n;
	n->prev = n;
}

/* Move every node of `from` to the empty list `to`; `from` ends empty. */
static inline void list_splice(struct vz__wheel_link *from, struct vz__wheel_link *to)
{
	if (list_empty(from)) {
		list_init(to);
		return;
	}
	to->next = from->next;
	to->prev = from->prev;
	to->next->prev = to;
	to->prev->next = to;
	list_init(from);
}

static inline struct vz__wheel_entry *entry_of(struct vz__wheel_link *l)
{
	return (struct vz__wheel_entry *)((char *)l - offsetof(struct vz__wheel_entry, link));
}

/* Rotate right; d in [0, 63]. */
static inline uint64_t ror64(uint64_t x, unsigned d)
{
	return d ? (x >> d) | (x << (64 - d)) : x;
}

/*
 * Which of its slot's two lists an entry goes to: one bit of a hash of its
 * deadline (the top bit of a multiply by 2^64 / golden ratio), so del finds
 * the list again without storing it, random deadlines split evenly (and
 * deadlines that are all multiples of some power of two too), and entries
 * with equal deadlines share a list: they keep their add order, which the
 * stable sort into the near list preserves, and the choice, like every
 * order the wheel makes, depends on the operations only, never on
 * addresses (a simulation replays the same). A walk of a linked list waits
 * for each entry's cache line before it knows the next address, one miss
 * at a time; a slot kept as two lists is walked as two interleaved chains
 * (cascade(), pre_step(), the fire loop in vz__wheel_advance()), two misses
 * in flight.
 */
static inline unsigned half_of(const struct vz__wheel_entry *e)
{
	return (unsigned)((e->deadline_ns * 0x9e3779b97f4a7c15ull) >> 63);
}

int vz__wheel_init(struct vz__wheel *w, uint64_t tick_ns, uint64_t now_ns)
{
	uint64_t need, span;
	unsigned l, s, b;

	if (!w || tick_ns < VZ__WHEEL_TICK_MIN_NS || tick_ns > VZ__WHEEL_TICK_MAX_NS)
		return VZ_EINVAL;
	/* Fewest levels whose range, 63 * 64^(L-1) ticks, covers 30 days:
	 * 4 levels at 1 s, 6 at 1 ms, 7 at 10 us. */
	need = (VZ__WHEEL_MIN_RANGE_NS + tick_ns - 1) / tick_ns;
	span = 1;
	for (l = 1; l < VZ__WHEEL_MAX_LEVELS && 63 * span < need; l++)
		span <<= VZ__WHEEL_BITS;
	w->tick_ns = tick_ns;
	{
		/* The reciprocal of wheel.h: l = ceil(log2 d) (d >= 2 here),
		 * m = floor(2^64 * (2^l - d) / d) + 1, which is < 2^64 since
		 * 2^l - d < d. */
		__extension__ typedef unsigned __int128 u128;
		unsigned lg = 64 - (unsigned)__builtin_clzll(tick_ns - 1);

		w->tick_mul = (uint64_t)((((u128)((1ull << lg) - tick_ns)) << 64) / tick_ns + 1);
		w->tick_sh = lg - 1;
	}
	w->now_ns = now_ns;
	w->cur = now_ns / tick_ns;
	w->nlevels = l;
	w->range = 63 * span;
	w->ovf_min = UINT64_MAX;
	w->count = 0;
	w->moved = 0;
	w->level_mask = 0;
	w->shadow_mask = 0;
	w->pre_level = 1;
	w->pre_tick = 0;
	list_init(&w->due);
	list_init(&w->near);
	list_init(&w->overflow);
	for (b = 0; b < 2; b++) {
		for (s = 0; s < VZ__WHEEL_SLOTS; s++)
			w->min0[b][s] = UINT64_MAX;
		for (l = 0; l < VZ__WHEEL_MAX_LEVELS; l++) {
			w->mb[l] = 0;
			w->occupied[b][l] = 0;
			for (s = 0; s < VZ__WHEEL_SLOTS; s++) {
				list_init(&w->slots[b][l][s][0]);
				list_init(&w->slots[b][l][s][1]);
			}
		}
	}
	return 0;
}

void vz__wheel_entry_init(struct vz__wheel_entry *e)
{
	list_init(&e->link);
	e->deadline_ns = 0;
	e->where = VZ__WHEEL_NOWHERE;
}

/* Mark every entry of list `h` not pending and empty the list. */
static void forget_list(struct vz__wheel_link *h)
{
	while (!list_empty(h)) {
		struct vz__wheel_entry *e = entry_of(h->next);

		list_unlink(&e->link);
		e->where = VZ__WHEEL_NOWHERE;
	}
}

void vz__wheel_fini(struct vz__wheel *w)
{
	unsigned l, s, b;

	forget_list(&w->due);
	forget_list(&w->near);
	forget_list(&w->overflow);
	for (b = 0; b < 2; b++)
		for (l = 0; l < w->nlevels; l++) {
			for (s = 0; s < VZ__WHEEL_SLOTS; s++) {
				forget_list(&w->slots[b][l][s][0]);
				forget_list(&w->slots[b][l][s][1]);
			}
			w->occupied[b][l] = 0;
		}
	w->level_mask = 0;
	w->shadow_mask = 0;
	w->count = 0;
	w->ovf_min = UINT64_MAX;
}

/*
 * File `e` (its tick >= base) in the wheel or the overflow list, relative to
 * tick `base`: w->cur for the main bank, w->pre_tick for the shadow (whose
 * entries all lie in [pre_tick, pre_tick + 64^pre_level), so on levels below
 * pre_level; at pre_tick the shadow becomes the main bank of those levels
 * and is then placed exactly as if filed there at that time). Its tick ==
 * w->cur only happens while cascading and lands in level 0's current slot,
 * which the advance loop visits next (fires it, or sorts it into the near
 * list when cur is the advance's target).
 *
 * Level = highest differing digit of its tick and w->cur, capped at the top
 * level. Below the top, e agrees with cur on every higher digit and its
 * digit on its level is larger than cur's, so its slot is strictly ahead in
 * the same rotation. On the top level the slot may be "behind" cur's digit
 * (next rotation); it is never equal to it because tick - cur <= range =
 * 63 * 64^(top) (an equal digit needs a difference above that).
 */
static void place_in(struct vz__wheel *w, struct vz__wheel_entry *e, uint64_t base, unsigned shadow)
{
	uint64_t tick = vz__wheel_tick_of(w, e->deadline_ns);
	uint64_t x = tick ^ base;
	unsigned level = 0, slot, bank;

	if (tick - base > w->range) {
		/* ovf_min may be stale (too low) only while the list stays
		 * non-empty: such a value was above cur + range when set and
		 * the advance loop rescans before cur passes it. An empty list
		 * starts afresh. (Never for the shadow: its entries are within
		 * 64^top ticks of its base.) */
		if (list_empty(&w->overflow) || tick < w->ovf_min)
			w->ovf_min = tick;
		list_append(&w->overflow, &e->link);
		e->where = VZ__WHEEL_OVERFLOW;
		return;
	}
	if (x) {
		level = (63u - (unsigned)__builtin_clzll(x)) / VZ__WHEEL_BITS;
		if (level >= w->nlevels)
			level = w->nlevels - 1;
	}
	slot = (unsigned)(tick >> (VZ__WHEEL_BITS * level)) & (VZ__WHEEL_SLOTS - 1);
	bank = w->mb[level] ^ shadow;
	if (level == 0) {
		/* Keep a lower bound of the slot's deadlines for the next
		 * deadline query: exact while nothing is deleted from the slot,
		 * too low (so safe) after a delete of its minimum. A slot that
		 * was empty starts afresh. */
		if (!(w->occupied[bank][0] & 1ull << slot) || e->deadline_ns < w->min0[bank][slot])
			w->min0[bank][slot] = e->deadline_ns;
	}
	list_append(&w->slots[bank][level][slot][half_of(e)], &e->link);
	e->where = (uint16_t)(bank * VZ__WHEEL_BANK_BIT + level * VZ__WHEEL_SLOTS + slot);
	w->occupied[bank][level] |= 1ull << slot;
	if (shadow)
		w->shadow_mask |= 1u << level;
	else
		w->level_mask |= 1u << level;
}

/* File `e` in the wheel proper relative to the current tick. */
static inline void place(struct vz__wheel *w, struct vz__wheel_entry *e)
{
	place_in(w, e, w->cur, 0);
}

/* Unlink `e` from its wheel slot and keep the bitmaps exact.
 *
 * Whether the slot empties is read from `e` itself, before the unlink: it
 * was the only entry iff its two links both point at the slot's head.
 * Reading the head after the unlink instead (list_empty) made every
 * delete from a large wheel wait for its whole cache miss: the unlink
 * stores into the two neighbours, whose addresses come from `e`'s line,
 * and when `e` is first in its slot one of them is the head itself, so the
 * processor learns to hold that load until those store addresses are
 * known, i.e. until `e`'s line arrives; back-to-back deletes then no
 * longer overlap their misses. 1M pending, random order, thread CPU time
 * per delete: 125 -> 50 ns (timer/NOTES.md). */
static void slot_unlink(struct vz__wheel *w, struct vz__wheel_entry *e)
{
	unsigned bank = e->where / VZ__WHEEL_BANK_BIT;
	unsigned level = (e->where % VZ__WHEEL_BANK_BIT) / VZ__WHEEL_SLOTS;
	unsigned slot = e->where % VZ__WHEEL_SLOTS;
	unsigned half = half_of(e);
	bool last = e->link.next == e->link.prev;

	list_unlink(&e->link);
	/* The other half's head is never written by this unlink. */
	if (last && list_empty(&w->slots[bank][level][slot][half ^ 1])) {
		w->occupied[bank][level] &= ~(1ull << slot);
		if (!w->occupied[bank][level]) {
			if (bank == w->mb[level])
				w->level_mask &= ~(1u << level);
			else
				w->shadow_mask &= ~(1u << level);
		}
	}
}

/* Insert `e` (deadline in the current tick, after the wheel's time) into the
 * near list, keeping it sorted by deadline (stable: after equal ones). The
 * walk starts at the tail: a tick's worth of timers is short, and a new
 * timer tends to be among the latest. */
static void near_insert(struct vz__wheel *w, struct vz__wheel_entry *e)
{
	struct vz__wheel_link *at = w->near.prev;

	while (at != &w->near && entry_of(at)->deadline_ns > e->deadline_ns)
		at = at->prev;
	/* insert after `at` */
	e->link.prev = at;
	e->link.next = at->next;
	at->next->prev = &e->link;
	at->next = &e->link;
	e->where = VZ__WHEEL_NEAR;
}

void vz__wheel_add(struct vz__wheel *w, struct vz__wheel_entry *e, uint64_t deadline_ns)
{
	e->deadline_ns = deadline_ns;
	w->count++;
	if (deadline_ns <= w->now_ns) {
		list_append(&w->due, &e->link);
		e->where = VZ__WHEEL_DUE;
		return;
	}
	/* deadline > now_ns >= cur * tick_ns implies tick >= cur. Equal: it
	 * is due within the current tick and goes to the ordered near list;
	 * otherwise place() files it (it needs tick > cur). Inside an advance
	 * cur may still be below the target tick, but then tick >= target >
	 * cur (deadline > now_ns >= target * tick_ns), so the near list only
	 * ever holds the current tick. */
	if (vz__wheel_tick_of(w, deadline_ns) == w->cur) {
		near_insert(w, e);
		return;
	}
	place(w, e);
}

bool vz__wheel_del(struct vz__wheel *w, struct vz__wheel_entry *e)
{
	switch (e->where) {
	case VZ__WHEEL_NOWHERE:
		return false;
	case VZ__WHEEL_DUE:
	case VZ__WHEEL_NEAR:
	case VZ__WHEEL_OVERFLOW:
		/* The overflow minimum stays a valid lower bound; the next
		 * rescan makes it exact again. */
		list_unlink(&e->link);
		break;
	default:
		slot_unlink(w, e);
		break;
	}
	e->where = VZ__WHEEL_NOWHERE;
	w->count--;
	return true;
}

/*
 * Start tick of the earliest occupied slot, UINT64_MAX if the wheel proper
 * is empty; *level_out gets its level. The lowest occupied level holds the
 * earliest entries (place() explains why), and on it the earliest slot is
 * the first set bit at or after cur's digit, cyclically.
 */
static uint64_t wheel_next(const struct vz__wheel *w, unsigned *level_out)
{
	unsigned level, shift, off;
	uint64_t hi;

	if (!w->level_mask)
		return UINT64_MAX;
	level = (unsigned)__builtin_ctz(w->level_mask);
	shift = VZ__WHEEL_BITS * level;
	hi = w->cur >> shift;
	off = (unsigned)__builtin_ctzll(
	    ror64(w->occupied[w->mb[level]][level], (unsigned)hi & (VZ__WHEEL_SLOTS - 1)));
	*level_out = level;
	return (hi + off) << shift;
}

/* Tick at which the earliest overflow entry may fit in the wheel. */
static uint64_t overflow_next(const struct vz__wheel *w)
{
	return list_empty(&w->overflow) ? UINT64_MAX : w->ovf_min - w->range;
}

uint64_t vz__wheel_next_deadline_ns(const struct vz__wheel *w)
{
	uint64_t n, o, r;
	unsigned level = 0;

	if (!list_empty(&w->due))
		return w->cur * w->tick_ns; /* <= now_ns: do not sleep */
	/* The near list holds the current tick, earlier than every slot: its
	 * head is the exact earliest deadline. */
	if (!list_empty(&w->near)) {
		r = entry_of(w->near.next)->deadline_ns;
		return r == UINT64_MAX ? UINT64_MAX - 1 : r;
	}
	n = wheel_next(w, &level);
	if (w->shadow_mask && w->pre_tick < n) {
		/* The shadow's entries are all at or after pre_tick. */
		n = w->pre_tick;
		level = 1; /* a slot start, not a level-0 minimum */
	}
	o = overflow_next(w);
	if (o <= n) {
		if (o == UINT64_MAX)
			return UINT64_MAX;
		n = o;
		level = 1; /* a slot start, not a level-0 minimum */
	}
	if (level == 0) {
		/* A level-0 slot: its deadline lower bound, exact unless its
		 * minimum was deleted. Every deadline in it is >= n * tick_ns
		 * (they all have tick n). */
		r = w->min0[w->mb[0]][n & (VZ__WHEEL_SLOTS - 1)];
		return r == UINT64_MAX ? UINT64_MAX - 1 : r;
	}
	if (n > (UINT64_MAX - 1) / w->tick_ns)
		return UINT64_MAX - 1; /* beyond representable time: still a lower bound */
	return n * w->tick_ns;
}

/* Re-file the overflow entries that now fit; recompute the exact minimum of
 * those that stay. Runs once per overflow_next() event, which is at most
 * once per insertion or cancellation of an overflow minimum. */
static void overflow_rescan(struct vz__wheel *w)
{
	struct vz__wheel_link *l = w->overflow.next, *next;
	uint64_t min = UINT64_MAX;

	for (; l != &w->overflow; l = next) {
		struct vz__wheel_entry *e = entry_of(l);

		uint64_t tick = vz__wheel_tick_of(w, e->deadline_ns);

		next = l->next;
		if (tick - w->cur <= w->range) {
			list_unlink(&e->link);
			place(w, e);
		} else if (tick < min) {
			min = tick;
		}
	}
	w->ovf_min = min;
}

/* Time has reached the start of slot `slot` on level `level` >= 1: file its
 * entries again relative to the new current tick. They all agree with cur
 * on every digit from `level` up, so each lands strictly lower; the slot
 * empties. */
static void cascade(struct vz__wheel *w, unsigned level, unsigned slot)
{
	struct vz__wheel_link *h = w->slots[w->mb[level]][level][slot];

	/* The two halves in turn (half_of()); each entry lands strictly
	 * lower, never back in this slot. */
	for (;;) {
		unsigned moved = 0;

		for (unsigned k = 0; k < 2; k++) {
			struct vz__wheel_entry *e;

			if (list_empty(&h[k]))
				continue;
			e = entry_of(h[k].next);
			/* A list walk waits for each entry's cache line in
			 * turn; fetching the next one now overlaps its miss
			 * with this entry's work (and the other half's). */
			__builtin_prefetch(e->link.next);
			list_unlink(&e->link);
			place(w, e);
			moved++;
		}
		if (!moved)
			break;
		w->moved += moved;
	}
	w->occupied[w->mb[level]][level] &= ~(1ull << slot);
	if (!w->occupied[w->mb[level]][level])
		w->level_mask &= ~(1u << level);
}

/*
 * Pre-cascade. The next cascade happens at b, the next multiple of 64
 * ticks after cur: it moves level j's slot digit_j(b), where j is the
 * highest digit in which b and cur differ (capped at the top level). That
 * slot S holds exactly the entries with ticks in [b, b + 64^j): below the
 * top they agree with cur, hence with b, on every digit above j; on the top
 * level the range limit leaves only that one rotation. Moving all of S in
 * the advance that reaches b costs tens of ns per entry, thousands of
 * entries at once, and every timer due just after b waits for it.
 *
 * Instead each advance moves at most VZ__WHEEL_PRE_BATCH entries of S into
 * the shadow bank, placed relative to b (so on levels below j). Until b the
 * shadow is only a holding area: the main bank still orders everything
 * before b, and next-deadline and the advance loop treat the shadow as an
 * event at b (its entries are all >= b). When the advance loop reaches b,
 * the main levels below j are empty (their entries were all before b), so
 * swapping the banks of those levels gives exactly the wheel that
 * cascading all of S at b would have built; the rest of S (entries not yet
 * moved, or added since) is then cascaded as before. The swap is O(j).
 *
 * For cur in [b - 64, b) the next boundary is b, so the shadow only ever
 * holds entries for one b: when pre_step finds a new b, the advance that
 * crossed the old one has swapped, and the shadow is empty.
 */
static void pre_swap(struct vz__wheel *w)
{
	unsigned l, j = w->pre_level;
	uint64_t start = w->pre_tick;

	for (l = 0; l < j; l++) {
		uint32_t bit = 1u << l;
		uint32_t in_main = w->level_mask & bit;

		/* Main levels below j are empty here (all their ticks were < b). */
		w->mb[l] ^= 1;
		w->level_mask = (w->level_mask & ~bit) | (w->shadow_mask & bit);
		w->shadow_mask = (w->shadow_mask & ~bit) | in_main;
	}
	cascade(w, j, (unsigned)(start >> (VZ__WHEEL_BITS * j)) & (VZ__WHEEL_SLOTS - 1));
}

static void pre_step(struct vz__wheel *w, unsigned budget)
{
	uint64_t b = ((w->cur >> VZ__WHEEL_BITS) + 1) << VZ__WHEEL_BITS;
	unsigned j = (63u - (unsigned)__builtin_clzll(b ^ w->cur)) / VZ__WHEEL_BITS, slot, bank;
	struct vz__wheel_link *h;

	if (j >= w->nlevels)
		j = w->nlevels - 1;
	if (w->pre_tick != b) {
		w->pre_tick = b; /* the shadow is empty: see above */
		w->pre_level = j;
	}
	slot = (unsigned)(b >> (VZ__WHEEL_BITS * j)) & (VZ__WHEEL_SLOTS - 1);
	bank = w->mb[j];
	if (!(w->occupied[bank][j] & 1ull << slot))
		return;
	h = w->slots[bank][j][slot];
	while (budget) {
		unsigned moved = 0;

		for (unsigned k = 0; k < 2 && budget; k++) {
			struct vz__wheel_entry *e;

			if (list_empty(&h[k]))
				continue;
			e = entry_of(h[k].next);
			__builtin_prefetch(e->link.next); /* as in cascade() */
			slot_unlink(w, e);
			place_in(w, e, b, 1);
			budget--;
			moved++;
		}
		if (!moved)
			break;
		w->moved += moved;
	}
}

/* Detach `e` (already unlinked) and hand it to the callback. */
static inline void fire_one(struct vz__wheel *w, struct vz__wheel_entry *e, vz__wheel_fire_fn fire,
			    void *ctx)
{
	e->where = VZ__WHEEL_NOWHERE;
	w->count--;
	fire(ctx, e);
}

/* Merge two deadline-sorted lists linked through `next` only (NULL
 * terminated); stable: on equal deadlines `a`'s entries come first. */
static struct vz__wheel_link *merge(struct vz__wheel_link *a, struct vz__wheel_link *b)
{
	struct vz__wheel_link head, *t = &head;

	while (a && b) {
		if (entry_of(b)->deadline_ns < entry_of(a)->deadline_ns) {
			t->next = b;
			b = b->next;
		} else {
			t->next = a;
			a = a->next;
		}
		t = t->next;
	}
	t->next = a ? a : b;
	return head.next;
}

/* The current tick has become the target of an advance and level 0's slot
 * `slot` holds its entries (tick == cur): sort them by deadline into the
 * near list (which is empty here: it only holds the current tick, and it
 * was emptied when cur moved). Bottom-up merge sort with a binary counter
 * of sorted runs, as the Linux list_sort: O(m log m) for m entries, stable,
 * no allocation. A tick's worth of timers is what one sort sees. */
static void slot_to_near(struct vz__wheel *w, unsigned slot)
{
	struct vz__wheel_link *h = &w->slots[w->mb[0]][0][slot][0], *h1 = h + 1, *bins[64] = {0},
			      *l, *next, *sorted = NULL;
	unsigned i, top = 0;

	if (!list_empty(h1)) {
		/* One list: the second half after the first. */
		h->prev->next = h1->next;
		h1->next->prev = h->prev;
		h1->prev->next = h;
		h->prev = h1->prev;
		list_init(h1);
	}
	h->prev->next = NULL; /* terminate, then walk through `next` only */
	for (l = h->next; l; l = next) {
		struct vz__wheel_link *carry = l;

		next = l->next;
		__builtin_prefetch(next); /* as in cascade() */
		l->next = NULL;
		for (i = 0; bins[i]; i++) {
			carry = merge(bins[i], carry);
			bins[i] = NULL;
		}
		bins[i] = carry;
		if (i >= top)
			top = i + 1;
	}
	for (i = 0; i < top; i++)
		if (bins[i])
			sorted = sorted ? merge(bins[i], sorted) : bins[i];
	list_init(h);
	w->occupied[w->mb[0]][0] &= ~(1ull << slot);
	if (!w->occupied[w->mb[0]][0])
		w->level_mask &= ~1u;
	/* Append the sorted run to the near list, restoring `prev` links. */
	for (l = sorted; l; l = next) {
		next = l->next;
		list_append(&w->near, l);
		entry_of(l)->where = VZ__WHEEL_NEAR;
	}
}

uint64_t vz__wheel_advance(struct vz__wheel *w, uint64_t now_ns, vz__wheel_fire_fn fire, void *ctx)
{
	uint64_t target, fired = 0;

	/* Time first: from here on an add from a callback with a deadline at
	 * or before now_ns is already due (next advance) and any other has a
	 * deadline after now_ns, while this call fires only deadlines at or
	 * before now_ns: nothing added here fires in this call. */
	if (now_ns > w->now_ns)
		w->now_ns = now_ns;
	target = w->now_ns / w->tick_ns;

	/* Already-due entries first. Take the whole list so that entries the
	 * callbacks add as already-due wait for the next advance. Entries
	 * still on the private list keep where == DUE, so a del from a
	 * callback unlinks them from it. */
	if (!list_empty(&w->due)) {
		struct vz__wheel_link batch;

		list_splice(&w->due, &batch);
		while (!list_empty(&batch)) {
			struct vz__wheel_entry *e = entry_of(batch.next);

			__builtin_prefetch(e->link.next); /* as in cascade() */
			list_unlink(&e->link);
			fire_one(w, e, fire, ctx);
			fired++;
		}
	}

	/* Leaving the current tick: all of the near list is due (its
	 * deadlines are below (cur + 1) * tick_ns <= now_ns), in order. A
	 * callback's add has a deadline after now_ns, so a tick >= target >
	 * cur: it goes to the wheel, never here. */
	if (target > w->cur) {
		while (!list_empty(&w->near)) {
			struct vz__wheel_entry *e = entry_of(w->near.next);

			__builtin_prefetch(e->link.next); /* as in cascade() */
			list_unlink(&e->link);
			fire_one(w, e, fire, ctx);
			fired++;
		}
	}

	/* Visit the occupied slots (and overflow events) in time order up to
	 * `target`, skipping empty time through the bitmaps. */
	for (;;) {
		unsigned level = 0, slot;
		uint64_t wn = wheel_next(w, &level);
		uint64_t on = overflow_next(w);

		/* The shadow's window starts first (ties included: nothing may
		 * be filed relative to pre_tick before the swap). */
		if (w->shadow_mask && w->pre_tick <= wn && w->pre_tick <= on) {
			if (w->pre_tick > target)
				break;
			w->cur = w->pre_tick;
			pre_swap(w);
			continue;
		}
		if (on <= wn) {
			if (on > target)
				break;
			w->cur = on;
			overflow_rescan(w);
			continue;
		}
		if (wn > target)
			break;
		w->cur = wn;
		slot = (unsigned)(wn >> (VZ__WHEEL_BITS * level)) & (VZ__WHEEL_SLOTS - 1);
		if (level > 0) {
			cascade(w, level, slot);
			continue;
		}
		if (wn == target) {
			/* The tick now_ns is in: only part of it may be due.
			 * Order it; the near pass below fires what is. */
			slot_to_near(w, slot);
			continue;
		}
		/* Level 0, a tick before target: every entry here has a
		 * deadline below (cur + 1) * tick_ns <= now_ns. Callbacks
		 * cannot add to this slot (see above: their adds go to the
		 * due list or at target or later) but may delete from it. */
		for (;;) {
			struct vz__wheel_link *h = w->slots[w->mb[0]][0][slot];
			unsigned n = 0;

			/* The two halves in turn, as in cascade(). */
			for (unsigned k = 0; k < 2; k++) {
				struct vz__wheel_entry *e;

				if (list_empty(&h[k]))
					continue;
				e = entry_of(h[k].next);
				__builtin_prefetch(e->link.next);
				slot_unlink(w, e);
				fire_one(w, e, fire, ctx);
				n++;
			}
			if (!n)
				break;
			fired += n;
		}
	}
	/* Jump the rest of the way. No slot starts and no overflow event
	 * falls in (cur, target], so for every entry on level k < top the new
	 * cur still agrees with it on the digits above k and has a smaller
	 * digit k (cur stays below the entry's slot start), and a top-level
	 * slot is still the first one with its digit after cur: every
	 * invariant of place() holds for the new cur without touching an
	 * entry. */
	w->cur = target;

	/* The current tick, in deadline order: fire what is due at now_ns
	 * exactly; the rest waits in the near list for a later advance. A
	 * callback's add (deadline > now_ns) lands after every due entry. */
	while (!list_empty(&w->near)) {
		struct vz__wheel_entry *e = entry_of(w->near.next);

		if (e->deadline_ns > w->now_ns)
			break;
		list_unlink(&e->link);
		fire_one(w, e, fire, ctx);
		fired++;
	}
	/* Spread the next cascade over the advances before it (see
	 * pre_step): at most a batch of entries per call, after this call's
	 * firings. */
	pre_step(w, VZ__WHEEL_PRE_BATCH);
	return fired;
}
