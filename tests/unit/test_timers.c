// SPDX-License-Identifier: MIT
/*
 * Per-shard timer table tests (VZ_TEST_BACKEND_INDEPENDENT: no I/O backend
 * involved): generation-checked handles, owner lists, the expiry and
 * deliverable protocol the core follows, periodic timers without drift,
 * cancellation from inside the expiry callback, slab growth and reuse, and
 * a randomized run of the whole protocol against a small model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "timer/timers.h"
#include "util/fault.h"

#define MS   1000000ull
#define SEC  1000000000ull
#define HOUR (3600 * SEC)

/* Records what expire reported; optionally cancels handles from inside. */
struct rec {
	struct vz__timers *t;
	unsigned n;
	vz_timer_event ev[4096];
	struct vz__timer_owner *owner[4096];
	/* cancel these (owner, handle) pairs from inside the first fire */
	struct vz__timer_owner *cancel_owner[4];
	uint64_t cancel_handle[4];
	int cancel_rc[4];
	unsigned ncancel;
	bool cancel_self; /* cancel every timer from its own fire */
};

static void on_fire(void *ctx, struct vz__timer_owner *o, const vz_timer_event *ev)
{
	struct rec *r = ctx;
	unsigned i;

	assert_true(r->n < 4096);
	r->ev[r->n] = *ev;
	r->owner[r->n] = o;
	r->n++;
	if (r->n == 1)
		for (i = 0; i < r->ncancel; i++)
			r->cancel_rc[i] =
			    vz__timers_cancel(r->t, r->cancel_owner[i], r->cancel_handle[i]);
	if (r->cancel_self)
		assert_int_equal(vz__timers_cancel(r->t, o, ev->timer.id), 0);
}

static void test_arm_args(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner o;
	uint64_t h;

	(void)state;
	assert_int_equal(vz__timers_init(&t, 5000, 0), VZ_EINVAL);
	assert_int_equal(vz__timers_init(&t, MS, 0), 0);
	vz__timer_owner_init(&o, 1);
	assert_int_equal(vz__timers_arm(&t, NULL, 0, 1, 0, 0, &h), VZ_EINVAL);
	assert_int_equal(vz__timers_arm(&t, &o, 0, 1, 0, 0, NULL), VZ_EINVAL);
	assert_int_equal(vz__timers_arm(&t, &o, 10, UINT64_MAX - 5, 0, 0, &h), VZ_EINVAL);
	assert_int_equal(vz__timers_live(&t), 0);
	assert_int_equal(vz__timers_next_deadline_ns(&t), UINT64_MAX);
	/* forged handles */
	assert_int_equal(vz__timers_cancel(&t, &o, 0), VZ_ESTALE);
	assert_int_equal(vz__timers_cancel(&t, &o, 12345), VZ_ESTALE);
	assert_false(vz__timers_deliverable(&t, 0));
	assert_int_equal(vz__timers_arm(&t, &o, 0, 1, 0, 0, &h), 0);
	assert_true(h != 0);
	assert_int_equal(vz__timers_cancel(&t, &o, h ^ (1ull << 32)), VZ_ESTALE); /* wrong gen */
	assert_int_equal(vz__timers_cancel(&t, &o, h + 1), VZ_ESTALE);		  /* free slot */
	assert_false(vz__timers_deliverable(&t, h + 1));
	assert_int_equal(vz__timers_cancel(&t, &o, h), 0);
	vz__timers_fini(&t);
}

static void test_oneshot_protocol(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner a, b;
	struct rec *r = calloc(1, sizeof *r);
	uint64_t h1, h2, h3, now = 10 * SEC;

	(void)state;
	assert_non_null(r);
	r->t = &t;
	assert_int_equal(vz__timers_init(&t, MS, now), 0);
	vz__timer_owner_init(&a, 1);
	vz__timer_owner_init(&b, 1);
	assert_int_equal(vz__timers_arm(&t, &a, now, 5 * MS, 0, 111, &h1), 0);
	assert_int_equal(vz__timers_arm(&t, &a, now, 5 * MS, 0, 222, &h2), 0);
	assert_int_equal(vz__timers_arm(&t, &b, now, 9 * MS, 0, 333, &h3), 0);
	assert_int_equal(vz__timers_live(&t), 3);
	assert_int_equal(vz__timers_next_deadline_ns(&t), now + 5 * MS);
	/* Another owner cannot cancel a's timer. */
	assert_int_equal(vz__timers_cancel(&t, &b, h1), VZ_ESTALE);
	/* Not due yet. */
	assert_int_equal(vz__timers_expire(&t, now + 5 * MS - 1, on_fire, r), 0);
	assert_int_equal(vz__timers_expire(&t, now + 6 * MS, on_fire, r), 2);
	assert_ptr_equal(r->owner[0], &a);
	assert_int_equal(r->ev[0].deadline_ns, now + 5 * MS);
	assert_int_equal(r->ev[0].fired_ns, now + 6 * MS);
	assert_true((r->ev[0].timer.id == h1 && r->ev[0].tag == 111) ||
		    (r->ev[0].timer.id == h2 && r->ev[0].tag == 222));
	/* Fired, message pending: both still live. h1 is delivered; h2 is
	 * cancelled before delivery, so its message must be dropped. */
	assert_int_equal(vz__timers_live(&t), 3);
	assert_true(vz__timers_deliverable(&t, h1));
	assert_false(vz__timers_deliverable(&t, h1)); /* released: stale now */
	assert_int_equal(vz__timers_cancel(&t, &a, h1), VZ_ESTALE);
	assert_int_equal(vz__timers_cancel(&t, &a, h2), 0);
	assert_false(vz__timers_deliverable(&t, h2));
	assert_int_equal(vz__timers_cancel(&t, &a, h2), VZ_ESTALE);
	assert_int_equal(a.count, 0);
	/* An armed one-shot has no message to deliver. */
	assert_false(vz__timers_deliverable(&t, h3));
	assert_int_equal(vz__timers_cancel(&t, &b, h3), 0);
	assert_int_equal(vz__timers_expire(&t, now + SEC, on_fire, r), 0);
	assert_int_equal(vz__timers_live(&t), 0);
	assert_int_equal(vz__timers_next_deadline_ns(&t), UINT64_MAX);
	vz__timers_fini(&t);
	free(r);
}

/* A table past VZ__TIMERS_ARENA_FROM chunks carves its chunks from 2 MiB
 * arenas (timers.c, grow()): slots there work like any other, and fini
 * frees each arena once (the sanitizer build checks no leak and no bad
 * free), with the last arena only partly used. */
static void test_large_table_arenas(void **state)
{
	const uint32_t n = (VZ__TIMERS_ARENA_FROM + VZ__TIMERS_ARENA_CHUNKS + 3) *
			   VZ__TIMERS_CHUNK; /* 1 arena full, 1 partly */
	struct vz__timers t;
	struct vz__timer_owner a;
	struct rec *r = calloc(1, sizeof *r);
	uint64_t *h = malloc(n * sizeof *h), now = SEC;
	uint32_t i;

	(void)state;
	assert_non_null(r);
	assert_non_null(h);
	assert_int_equal(vz__timers_init(&t, MS, now), 0);
	vz__timer_owner_init(&a, 1);
	r->t = &t;
	for (i = 0; i < n; i++)
		assert_int_equal(vz__timers_arm(&t, &a, now, (1 + i % 4000) * MS, 0, i, &h[i]), 0);
	assert_int_equal(t.nchunks, VZ__TIMERS_ARENA_FROM + VZ__TIMERS_ARENA_CHUNKS + 3);
	assert_int_equal(t.arena_left, VZ__TIMERS_ARENA_CHUNKS - 3);
	/* keep only the timers of tags 0 .. 4095 % 4000, i.e. one per ms */
	for (i = 4000; i < n; i++)
		assert_int_equal(vz__timers_cancel(&t, &a, h[i]), 0);
	for (i = 0; i < 4000; i++)
		assert_int_equal(vz__timers_cancel(&t, &a, h[i] + (1ull << 32)), VZ_ESTALE);
	now += 5 * SEC;
	assert_int_equal(vz__timers_expire(&t, now, on_fire, r), 4000);
	for (i = 0; i < r->n; i++) {
		assert_int_equal(r->ev[i].tag, i); /* deadline order: tag i at i + 1 ms */
		assert_true(vz__timers_deliverable(&t, r->ev[i].timer.id));
	}
	assert_int_equal(vz__timers_live(&t), 0);
	vz__timers_fini(&t);
	free(h);
	free(r);
}

static void test_delay_zero_and_reuse(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner a;
	struct rec *r = calloc(1, sizeof *r);
	uint64_t h, h2, now = 3 * SEC + 123456; /* not tick aligned */

	(void)state;
	assert_non_null(r);
	r->t = &t;
	assert_int_equal(vz__timers_init(&t, MS, now), 0);
	vz__timer_owner_init(&a, 1);
	/* delay 0 at the loop's cached now: due on the next expire. */
	assert_int_equal(vz__timers_arm(&t, &a, now, 0, 0, 7, &h), 0);
	assert_true(vz__timers_next_deadline_ns(&t) <= now);
	assert_int_equal(vz__timers_expire(&t, now, on_fire, r), 1);
	assert_true(vz__timers_deliverable(&t, h));
	/* The slot is reused (lowest free first) under a new handle. */
	assert_int_equal(vz__timers_arm(&t, &a, now, 10 * MS, 0, 8, &h2), 0);
	assert_int_equal((uint32_t)h2, (uint32_t)h);
	assert_true(h2 != h);
	assert_int_equal(vz__timers_cancel(&t, &a, h), VZ_ESTALE);
	assert_false(vz__timers_deliverable(&t, h));
	assert_int_equal(vz__timers_cancel(&t, &a, h2), 0);
	vz__timers_fini(&t);
	free(r);
}

/* A slot's generations never wrap: past its last generation the slot is
 * retired, so no handle of an earlier life can name a later timer. Drives
 * one slot through its last lives (setting its generation near the limit
 * directly) and past them. */
static void test_generation_exhausted_slot_retired(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner a;
	uint64_t h, old[8];
	unsigned nold = 0;
	uint32_t idx;

	(void)state;
	assert_int_equal(vz__timers_init(&t, MS, SEC), 0);
	vz__timer_owner_init(&a, 1);
	assert_int_equal(vz__timers_arm(&t, &a, SEC, 10 * MS, 0, 1, &h), 0);
	idx = (uint32_t)h;
	old[nold++] = h;
	assert_int_equal(vz__timers_cancel(&t, &a, h), 0);
	/* The slot is free now; jump to its last generations. */
	/* entry.user32 is the slot's generation (timers.c) */
	t.chunks[idx / VZ__TIMERS_CHUNK][idx % VZ__TIMERS_CHUNK].entry.user32 = UINT32_MAX - 2;
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(vz__timers_arm(&t, &a, SEC, 10 * MS, 0, 2, &h), 0);
		assert_int_equal((uint32_t)h, idx); /* LIFO: the same slot */
		assert_int_equal((uint32_t)(h >> 32), UINT32_MAX - 2 + i);
		old[nold++] = h;
		assert_int_equal(vz__timers_cancel(&t, &a, h), 0);
	}
	assert_int_equal(t.retired, 1);
	/* Past the limit: the slot is never handed out again, and no handle
	 * of any of its lives works, before or after other timers come and
	 * go. */
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(vz__timers_arm(&t, &a, SEC, 10 * MS, 0, 3, &h), 0);
		assert_int_not_equal((uint32_t)h, idx);
		for (unsigned k = 0; k < nold; k++) {
			assert_true(old[k] != h);
			assert_int_equal(vz__timers_cancel(&t, &a, old[k]), VZ_ESTALE);
			assert_false(vz__timers_deliverable(&t, old[k]));
		}
		if (i % 2)
			assert_int_equal(vz__timers_cancel(&t, &a, h), 0);
	}
	vz__timers_cancel_owner(&t, &a);
	vz__timers_sweep(&t); /* its armed timers are stale: release them now */
	assert_int_equal(t.live, 0);
	vz__timers_fini(&t);
}

static void test_owner_cancel(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner a, b;
	struct rec *r = calloc(1, sizeof *r);
	uint64_t ha[300], hb[10], now = 0;
	unsigned i;

	(void)state;
	assert_non_null(r);
	r->t = &t;
	assert_int_equal(vz__timers_init(&t, MS, now), 0);
	vz__timer_owner_init(&a, 1);
	vz__timer_owner_init(&b, 1);
	for (i = 0; i < 300; i++) /* one-shots, some due soon; periodic every third */
		assert_int_equal(
		    vz__timers_arm(&t, &a, now, (i % 7 + 1) * MS, i % 3 ? 0 : 2 * MS, i, &ha[i]),
		    0);
	for (i = 0; i < 10; i++)
		assert_int_equal(vz__timers_arm(&t, &b, now, (i + 1) * MS, 0, i, &hb[i]), 0);
	/* Some of a's fire (pending one-shots, re-armed periodic ones). */
	assert_true(vz__timers_expire(&t, 3 * MS, on_fire, r) > 0);
	assert_int_equal(a.count, 300);
	vz__timers_cancel_owner(&t, &a);
	assert_int_equal(a.count, 0);
	/* Stale, not released yet: nothing was walked. */
	assert_int_equal(t.stale, 300);
	assert_int_equal(vz__timers_live(&t), 310);
	for (i = 0; i < 300; i++) {
		assert_int_equal(vz__timers_cancel(&t, &a, ha[i]), VZ_ESTALE);
		/* never deliverable; a fired one-shot is released here (the
		 * core calls this for the message, delivered or dead-lettered) */
		assert_false(vz__timers_deliverable(&t, ha[i]));
	}
	assert_true(t.stale < 300);
	/* Nothing of a's fires any more (its armed ones are released when
	 * due, periodic ones at their next firing); b's all do. */
	r->n = 0;
	assert_int_equal(vz__timers_expire(&t, SEC, on_fire, r), 7); /* b's 4..10 ms */
	for (i = 0; i < r->n; i++)
		assert_ptr_equal(r->owner[i], &b);
	assert_int_equal(t.stale, 0);
	assert_int_equal(t.stale_released, 300);
	assert_int_equal(vz__timers_live(&t), 10); /* b's fired, messages pending */
	vz__timers_cancel_owner(&t, &b);
	assert_int_equal(t.stale, 10);
	for (i = 0; i < 10; i++)
		assert_false(vz__timers_deliverable(&t, hb[i])); /* dead-lettered */
	assert_int_equal(t.stale, 0);
	assert_int_equal(vz__timers_live(&t), 0);
	assert_int_equal(vz__timers_next_deadline_ns(&t), UINT64_MAX);
	vz__timers_fini(&t);
	free(r);
}

/* Stopping an owner ends its life without walking its timers; the same
 * owner memory then starts a new life (an actor slot reused), and nothing
 * of the old life fires for, or can be cancelled by, the new one. */
static void test_owner_new_life(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner a;
	struct rec *r = calloc(1, sizeof *r);
	uint64_t old[3], h, now = 0;

	(void)state;
	assert_non_null(r);
	r->t = &t;
	assert_int_equal(vz__timers_init(&t, MS, now), 0);
	vz__timer_owner_init(&a, 7);
	assert_int_equal(vz__timers_arm(&t, &a, now, 2 * MS, 0, 1, &old[0]), 0);
	assert_int_equal(vz__timers_arm(&t, &a, now, 3 * MS, MS, 2, &old[1]), 0);
	assert_int_equal(vz__timers_arm(&t, &a, now, HOUR, 0, 3, &old[2]), 0);
	vz__timers_cancel_owner(&t, &a);
	vz__timers_cancel_owner(&t, &a); /* again: nothing more */
	assert_int_equal(t.stale, 3);
	assert_int_equal(vz__timers_arm(&t, &a, now, MS, 0, 9, &h), VZ_ESTALE);
	vz__timer_owner_init(&a, 8);
	assert_int_equal(vz__timers_arm(&t, &a, now, 5 * MS, 0, 4, &h), 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(vz__timers_cancel(&t, &a, old[i]), VZ_ESTALE);
	/* Only the new life's timer fires; the old one-shot and the periodic
	 * one are released at their (first) deadline, unfired. */
	assert_int_equal(vz__timers_expire(&t, 10 * MS, on_fire, r), 1);
	assert_int_equal(r->ev[0].timer.id, h);
	assert_int_equal(r->ev[0].tag, 4);
	assert_int_equal(t.stale_released, 2);
	assert_int_equal(t.stale, 1); /* the hour-long one still holds its slot */
	assert_int_equal(vz__timers_live(&t), 2);
	assert_true(vz__timers_deliverable(&t, h));
	/* nothing of the old life ever fires */
	assert_int_equal(vz__timers_expire(&t, 2 * HOUR, on_fire, r), 0);
	assert_int_equal(t.stale, 0);
	assert_int_equal(vz__timers_live(&t), 0);
	assert_int_equal(vz__timers_next_deadline_ns(&t), UINT64_MAX);
	vz__timers_fini(&t);
	free(r);
}

/* Stale slots do not make the slab grow: when arm finds no free slot and
 * an eighth of the slots are stale, it sweeps them instead. */
static void test_stale_swept_before_growth(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner a, b;
	uint64_t h;
	unsigned i, n = 4 * VZ__TIMERS_CHUNK;

	(void)state;
	assert_int_equal(vz__timers_init(&t, MS, 0), 0);
	vz__timer_owner_init(&a, 1);
	vz__timer_owner_init(&b, 1);
	for (i = 0; i < n; i++) /* an hour away: never due in this test */
		assert_int_equal(vz__timers_arm(&t, &a, 0, HOUR + i, 0, i, &h), 0);
	assert_int_equal(t.chunk_allocs, 4);
	vz__timers_cancel_owner(&t, &a); /* O(1): all n stale, none released */
	assert_int_equal(t.stale, n);
	assert_int_equal(vz__timers_live(&t), n);
	vz__timer_owner_init(&a, 2);
	for (i = 0; i < n; i++)
		assert_int_equal(vz__timers_arm(&t, i % 2 ? &a : &b, 0, HOUR + i, 0, i, &h), 0);
	assert_int_equal(t.chunk_allocs, 4); /* the stale slots were reused */
	assert_int_equal(t.sweeps, 1);
	assert_int_equal(t.stale, 0);
	assert_int_equal(t.stale_released, n);
	assert_int_equal(vz__timers_live(&t), n);
	assert_int_equal(a.count, n / 2);
	assert_int_equal(b.count, n / 2);
	vz__timers_fini(&t);
}

static void test_periodic_no_drift(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner a;
	struct rec *r = calloc(1, sizeof *r);
	const uint64_t start = 1 * SEC + 777, period = MS + 7; /* not a tick multiple */
	uint64_t h, now = start;
	unsigned k;

	(void)state;
	assert_non_null(r);
	r->t = &t;
	assert_int_equal(vz__timers_init(&t, MS, start), 0);
	vz__timer_owner_init(&a, 1);
	assert_int_equal(vz__timers_arm(&t, &a, start, period, period, 42, &h), 0);
	/* A loop that sleeps until the next deadline each time. */
	for (k = 1; k <= 1000; k++) {
		unsigned before = r->n;

		do {
			uint64_t nd = vz__timers_next_deadline_ns(&t);

			assert_true(nd > now);
			now = nd;
			vz__timers_expire(&t, now, on_fire, r);
		} while (r->n == before);
		assert_int_equal(r->n, before + 1);
		assert_int_equal(r->ev[before].deadline_ns, start + k * period);
		assert_int_equal(r->ev[before].timer.id, h);
		assert_true(r->ev[before].fired_ns >= r->ev[before].deadline_ns);
		assert_true(r->ev[before].fired_ns < r->ev[before].deadline_ns + MS);
		assert_true(vz__timers_deliverable(&t, h)); /* periodic: while armed */
	}
	/* Fall 10.5 periods behind: one expiry, missed periods skipped, the
	 * phase kept. */
	r->n = 0;
	now = start + 1000 * period + 10 * period + period / 2;
	assert_int_equal(vz__timers_expire(&t, now, on_fire, r), 1);
	assert_int_equal(r->ev[0].deadline_ns, start + 1001 * period);
	r->n = 0;
	assert_int_equal(vz__timers_expire(&t, start + 1011 * period + MS, on_fire, r), 1);
	assert_int_equal(r->ev[0].deadline_ns, start + 1011 * period);
	assert_true(vz__timers_deliverable(&t, h));
	assert_int_equal(vz__timers_cancel(&t, &a, h), 0);
	assert_false(vz__timers_deliverable(&t, h));
	r->n = 0;
	assert_int_equal(vz__timers_expire(&t, now + SEC, on_fire, r), 0);
	vz__timers_fini(&t);
	free(r);
}

static void test_cancel_inside_fire(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner a, b;
	struct rec *r = calloc(1, sizeof *r);
	uint64_t h1, h2, h3, h4, hp;
	unsigned n;

	(void)state;
	assert_non_null(r);
	r->t = &t;
	assert_int_equal(vz__timers_init(&t, MS, 0), 0);
	vz__timer_owner_init(&a, 1);
	vz__timer_owner_init(&b, 1);
	assert_int_equal(vz__timers_arm(&t, &a, 0, 1 * MS, 0, 1, &h1), 0);
	assert_int_equal(vz__timers_arm(&t, &a, 0, 2 * MS, 0, 2, &h2), 0);  /* same expire */
	assert_int_equal(vz__timers_arm(&t, &b, 0, 50 * MS, 0, 3, &h3), 0); /* later */
	assert_int_equal(vz__timers_arm(&t, &a, 0, 1 * MS, 0, 4, &h4), 0);  /* cancelled twice */
	/* The first fire cancels h2 (due in this expire), h3 (later), h4
	 * (maybe fired already, maybe not: either way cancel succeeds once
	 * and the second attempt is stale) and itself, pending. */
	r->ncancel = 4;
	r->cancel_owner[0] = &a;
	r->cancel_handle[0] = h2;
	r->cancel_owner[1] = &b;
	r->cancel_handle[1] = h3;
	r->cancel_owner[2] = &a;
	r->cancel_handle[2] = h4;
	r->cancel_owner[3] = &a;
	r->cancel_handle[3] = h4;
	n = vz__timers_expire(&t, 10 * MS, on_fire, r);
	assert_int_equal(n, r->n);
	assert_int_equal(r->cancel_rc[0], 0);
	assert_int_equal(r->cancel_rc[1], 0);
	assert_int_equal(r->cancel_rc[2], 0);
	assert_int_equal(r->cancel_rc[3], VZ_ESTALE);
	/* h2 and h3 never fired; h1 fired, and h4 fired only if it came first. */
	assert_true(r->n == 1 || r->n == 2);
	for (unsigned i = 0; i < r->n; i++)
		assert_true(r->ev[i].timer.id == h1 || r->ev[i].timer.id == h4);
	assert_false(vz__timers_deliverable(&t, h4));
	assert_true(vz__timers_deliverable(&t, h1));
	assert_int_equal(vz__timers_live(&t), 0);
	/* A periodic timer cancelled from its own fire does not come back. */
	r->n = 0;
	r->ncancel = 0;
	r->cancel_self = true;
	assert_int_equal(vz__timers_arm(&t, &a, 10 * MS, MS, MS, 5, &hp), 0);
	assert_int_equal(vz__timers_expire(&t, 100 * MS, on_fire, r), 1);
	assert_false(vz__timers_deliverable(&t, hp));
	assert_int_equal(vz__timers_expire(&t, 200 * MS, on_fire, r), 0);
	assert_int_equal(vz__timers_live(&t), 0);
	assert_int_equal(vz__timers_next_deadline_ns(&t), UINT64_MAX);
	vz__timers_fini(&t);
	free(r);
}

static void test_slab_growth(void **state)
{
	struct vz__timers t;
	struct vz__timer_owner a;
	uint64_t *h = malloc(3000 * sizeof *h), allocs = 0;
	unsigned i, round;

	(void)state;
	assert_non_null(h);
	assert_int_equal(vz__timers_init(&t, MS, 0), 0);
	vz__timer_owner_init(&a, 1);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < 3000; i++)
			assert_int_equal(vz__timers_arm(&t, &a, 0, (i + 1) * MS, 0, i, &h[i]), 0);
		if (round == 0)
			allocs = t.chunk_allocs;
		/* steady state: no growth after the first round */
		assert_int_equal(t.chunk_allocs, allocs);
		assert_int_equal(allocs, (3000 + VZ__TIMERS_CHUNK - 1) / VZ__TIMERS_CHUNK);
		for (i = 0; i < 3000; i += 2)
			assert_int_equal(vz__timers_cancel(&t, &a, h[i]), 0);
		vz__timers_cancel_owner(&t, &a);
		vz__timer_owner_init(&a, round + 2); /* the next life */
		for (i = 0; i < 3000; i++)
			assert_int_equal(vz__timers_cancel(&t, &a, h[i]), VZ_ESTALE);
		/* the odd ones are stale, not yet released: the next round's
		 * arms sweep them instead of growing the slab */
		assert_int_equal(t.stale, 1500);
	}
#ifdef VZ_FAULT_INJECTION
	/* The slab cannot grow: VZ_ENOMEM, and nothing changes. */
	for (i = 0; i < 3000; i++)
		assert_int_equal(vz__timers_arm(&t, &a, 0, MS, 0, i, &h[i]), 0);
	for (; i < allocs * VZ__TIMERS_CHUNK; i++)
		assert_int_equal(vz__timers_arm(&t, &a, 0, MS, 0, i, &h[0]), 0);
	vz__fault_arm(VZ_FAULT_POOL_REFILL, 0, 1);
	assert_int_equal(vz__timers_arm(&t, &a, 0, MS, 0, 0, &h[0]), VZ_ENOMEM);
	assert_int_equal(vz__fault_fired(VZ_FAULT_POOL_REFILL), 1);
	vz__fault_disarm_all();
	assert_int_equal(vz__timers_live(&t), allocs * VZ__TIMERS_CHUNK);
	assert_int_equal(t.chunk_allocs, allocs);
	assert_int_equal(vz__timers_arm(&t, &a, 0, MS, 0, 0, &h[0]), 0);
	assert_int_equal(t.chunk_allocs, allocs + 1);
	vz__timers_cancel_owner(&t, &a);
#endif
	vz__timers_fini(&t);
	free(h);
}

/* ---- randomized protocol run against a model ---- */

/* M_STALE_*: the owner stopped; the table releases the slot lazily (an
 * armed one at its deadline, a pending one at its message). */
enum { M_FREE, M_ARMED, M_PENDING, M_STALE_ARMED, M_STALE_PENDING };

struct mt {
	uint64_t handle;
	int owner; /* 0..3 */
	int state;
	uint64_t deadline, period;
};

#define NT 512

struct proto {
	struct vz__timers t;
	struct vz__timer_owner owners[4];
	uint32_t life[4]; /* each owner's current life */
	struct mt m[NT];
	uint64_t now;
	/* messages queued to owners, in order: handle per message */
	uint64_t queue[1 << 16];
	unsigned qhead, qtail;
	uint64_t fired, delivered, dropped, stale_released;
};

static struct proto P;

static struct mt *find(struct proto *p, uint64_t handle)
{
	unsigned i;

	for (i = 0; i < NT; i++)
		if (p->m[i].state != M_FREE && p->m[i].handle == handle)
			return &p->m[i];
	return NULL;
}

static void proto_fire(void *ctx, struct vz__timer_owner *o, const vz_timer_event *ev)
{
	struct proto *p = ctx;
	struct mt *x = find(p, ev->timer.id);

	assert_non_null(x);
	assert_ptr_equal(o, &p->owners[x->owner]);
	assert_int_equal(x->state, M_ARMED);
	assert_int_equal(ev->deadline_ns, x->deadline);
	assert_true(ev->deadline_ns <= p->now);
	if (x->period) {
		/* next deadline: first phase point after now */
		uint64_t d = x->deadline + x->period;

		while (d <= p->now)
			d += x->period;
		x->deadline = d;
	} else {
		x->state = M_PENDING;
	}
	assert_true((p->qtail - p->qhead) < (1u << 16));
	p->queue[p->qtail++ & 0xffff] = ev->timer.id;
	p->fired++;
}

static void test_protocol_random(void **state)
{
	struct proto *p = &P;
	uint64_t seed = 12345, ops = vz_test_scale(200000), i;
	const char *s = getenv("VZ_TIMER_SEED");

	(void)state;
	vz_test_watchdog(60);
	if (s && *s)
		seed = strtoull(s, NULL, 0);
	srand((unsigned)seed);
	fprintf(stderr, "test_timers: protocol seed %llu\n", (unsigned long long)seed);
	memset(p, 0, sizeof *p);
	p->now = 1000 * SEC;
	assert_int_equal(vz__timers_init(&p->t, 100000, p->now), 0);
	for (i = 0; i < 4; i++) {
		p->life[i] = 1;
		vz__timer_owner_init(&p->owners[i], 1);
	}
	for (i = 0; i < ops; i++) {
		int r = rand() % 100;
		struct mt *x = &p->m[rand() % NT];

		if (r < 35) { /* arm into a free model slot */
			if (x->state == M_FREE) {
				uint64_t delay = (uint64_t)(rand() % 50000) * 1000;

				x->owner = rand() % 4;
				x->period =
				    rand() % 4 == 0 ? (uint64_t)(rand() % 20000 + 1) * 1000 : 0;
				x->deadline = p->now + delay;
				assert_int_equal(vz__timers_arm(&p->t, &p->owners[x->owner], p->now,
								delay, x->period, 0, &x->handle),
						 0);
				assert_null(find(p, x->handle)); /* unique among live handles */
				x->state = M_ARMED;
			}
		} else if (r < 50) { /* cancel: right owner, or a wrong one */
			if (x->state == M_STALE_ARMED || x->state == M_STALE_PENDING) {
				/* neither the new life nor anyone else can */
				assert_int_equal(
				    vz__timers_cancel(&p->t, &p->owners[rand() % 4], x->handle),
				    VZ_ESTALE);
			} else if (x->state != M_FREE) {
				int o = rand() % 5 == 0 ? (x->owner + 1) % 4 : x->owner;

				if (o != x->owner) {
					assert_int_equal(
					    vz__timers_cancel(&p->t, &p->owners[o], x->handle),
					    VZ_ESTALE);
				} else {
					assert_int_equal(
					    vz__timers_cancel(&p->t, &p->owners[o], x->handle), 0);
					assert_int_equal(
					    vz__timers_cancel(&p->t, &p->owners[o], x->handle),
					    VZ_ESTALE);
					x->state = M_FREE;
				}
			}
		} else if (r < 52) { /* an owner stops */
			int o = rand() % 4;
			unsigned j;

			vz__timers_cancel_owner(&p->t, &p->owners[o]);
			/* between lives the owner cannot arm */
			{
				uint64_t h;

				assert_int_equal(
				    vz__timers_arm(&p->t, &p->owners[o], p->now, 1, 0, 0, &h),
				    VZ_ESTALE);
			}
			/* the same owner memory starts its next life at once */
			vz__timer_owner_init(&p->owners[o], ++p->life[o]);
			for (j = 0; j < NT; j++) {
				if (p->m[j].owner != o)
					continue;
				if (p->m[j].state == M_ARMED)
					p->m[j].state = M_STALE_ARMED;
				else if (p->m[j].state == M_PENDING)
					p->m[j].state = M_STALE_PENDING;
			}
		} else if (r < 75) { /* time passes, expire */
			uint64_t nd = vz__timers_next_deadline_ns(&p->t);

			p->now += (uint64_t)(rand() % 3000) * 1000;
			if (rand() % 10 == 0 && nd != UINT64_MAX && nd > p->now)
				p->now = nd; /* wake exactly at the bound */
			vz__timers_expire(&p->t, p->now, proto_fire, p);
			/* stale armed ones were released when due, without firing */
			for (unsigned j = 0; j < NT; j++) {
				if (p->m[j].state == M_STALE_ARMED && p->m[j].deadline <= p->now) {
					p->m[j].state = M_FREE;
					p->stale_released++;
				}
			}
		} else { /* the core delivers a batch of queued messages, in order */
			unsigned batch = 1 + (unsigned)(rand() % 256);

			while (batch-- && p->qhead != p->qtail) {
				uint64_t h = p->queue[p->qhead++ & 0xffff];
				struct mt *y = find(p, h);
				bool expect = y && (y->state == M_PENDING ||
						    (y->state == M_ARMED && y->period));

				assert_int_equal(vz__timers_deliverable(&p->t, h), expect);
				if (expect) {
					p->delivered++;
					if (y->state == M_PENDING)
						y->state = M_FREE;
				} else {
					p->dropped++;
					if (y && y->state == M_STALE_PENDING) {
						y->state = M_FREE; /* released with its message */
						p->stale_released++;
					}
				}
			}
		}
		/* live counts agree */
		if ((i & 1023) == 0) {
			uint64_t live = 0;
			unsigned j;

			for (j = 0; j < NT; j++)
				live += p->m[j].state != M_FREE;
			assert_int_equal(vz__timers_live(&p->t), live);
			assert_int_equal(p->t.stale_released, p->stale_released);
		}
	}
	fprintf(stderr, "test_timers: %llu ops, %llu fired, %llu delivered, %llu dropped\n",
		(unsigned long long)ops, (unsigned long long)p->fired,
		(unsigned long long)p->delivered, (unsigned long long)p->dropped);
	assert_true(p->delivered > 0 && p->dropped > 0 && p->stale_released > 0);
	for (i = 0; i < 4; i++)
		vz__timers_cancel_owner(&p->t, &p->owners[i]);
	vz__timers_sweep(&p->t); /* what a stopping shard does */
	assert_int_equal(p->t.stale, 0);
	assert_int_equal(vz__timers_live(&p->t), 0);
	vz__timers_fini(&p->t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_arm_args),
	    cmocka_unit_test(test_oneshot_protocol),
	    cmocka_unit_test(test_delay_zero_and_reuse),
	    cmocka_unit_test(test_generation_exhausted_slot_retired),
	    cmocka_unit_test(test_owner_cancel),
	    cmocka_unit_test(test_owner_new_life),
	    cmocka_unit_test(test_stale_swept_before_growth),
	    cmocka_unit_test(test_periodic_no_drift),
	    cmocka_unit_test(test_cancel_inside_fire),
	    cmocka_unit_test(test_slab_growth),
	    cmocka_unit_test(test_large_table_arenas),
	    cmocka_unit_test(test_protocol_random),
	};

	vz_test_watchdog(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
