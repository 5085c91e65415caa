// SPDX-License-Identifier: MIT
/*
 * A reference, once stale, is stale forever (include/veloz/actor.h,
 * runtime/DESIGN.md invariant 3). Free actor slots are reused last in,
 * first out, so an actor spawned and stopped in a loop lives again and
 * again in one slot; each life has the next generation of that slot. This
 * test drives one slot through its very last generation (setting the
 * slot's generation close to the limit directly, instead of spawning
 * four billion actors) and past it, and checks that:
 *   - no reference is ever handed out twice (the generation does not wrap
 *     back to a value an old reference carries);
 *   - the slot whose generations ran out is retired: later spawns never
 *     get it;
 *   - every old reference is refused where the contract says so: vz_stop()
 *     and a local vz_send() give VZ_ESTALE, a cross-shard vz_send() and a
 *     foreign vz_post() are accepted and dead-lettered with VZ_ESTALE, and
 *     the actors alive now receive none of it.
 */
#include "testutil.h"

#include "core/core.h"

#include <sched.h>
#include <stdatomic.h>
#include <string.h>

enum { MSG_DATA = VZ_MSG_USER, MSG_GO };

#define LIVES_AT_END 3	/* lives of the slot up to and including the last */
#define LATER	     16 /* spawns after the slot was retired */
#define MAX_STALE    (1 + LIVES_AT_END + LATER)

static struct {
	vz_ref stale[MAX_STALE];
	unsigned nstale;
	atomic_uint dead;	/* dead letters, all checked in the hook */
	atomic_uint bad;	/* anything unexpected */
	atomic_uint received;	/* messages that reached a live actor */
	atomic_uint local_done; /* the shard-0 prober finished */
	atomic_uint cross_sent; /* accepted cross-shard sends to stale refs */
	atomic_uint cross_done;
} T;

static bool is_stale(uint64_t id)
{
	for (unsigned i = 0; i < T.nstale; i++)
		if (T.stale[i].id == id)
			return true;
	return false;
}

static void on_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len, int reason)
{
	(void)ctx;
	(void)data;
	(void)len;
	if (reason != VZ_ESTALE || type != MSG_DATA || !is_stale(to))
		atomic_fetch_add(&T.bad, 1);
	atomic_fetch_add(&T.dead, 1);
}

/* Counts what reaches it: with only stale references in play, nothing. */
static void counting_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
	atomic_fetch_add(&T.received, 1);
}

static const vz_actor_spec counting_spec = {.name = "live", .receive = counting_receive};

/* On shard 0 (home of every stale reference): each local send is refused. */
static void local_prober_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) != MSG_GO) {
		atomic_fetch_add(&T.bad, 1);
		return;
	}
	for (unsigned i = 0; i < T.nstale; i++)
		if (vz_send(self, T.stale[i], MSG_DATA, NULL, 0) != VZ_ESTALE)
			atomic_fetch_add(&T.bad, 1);
	atomic_store(&T.local_done, 1);
}

static const vz_actor_spec local_prober_spec = {.name = "local-prober",
						.receive = local_prober_receive};

/* On shard 1: each send is accepted here and dead-lettered on shard 0. */
static void cross_prober_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) != MSG_GO) {
		atomic_fetch_add(&T.bad, 1);
		return;
	}
	for (unsigned i = 0; i < T.nstale; i++) {
		if (vz_send(self, T.stale[i], MSG_DATA, NULL, 0) == 0)
			atomic_fetch_add(&T.cross_sent, 1);
		else
			atomic_fetch_add(&T.bad, 1);
	}
	atomic_store(&T.cross_done, 1);
}

static const vz_actor_spec cross_prober_spec = {.name = "cross-prober",
						.receive = cross_prober_receive};

static void wait_until(atomic_uint *v, unsigned want)
{
	/* No deadline here: the watchdog turns a hang into a failure. */
	while (atomic_load(v) < want)
		sched_yield();
}

static void remember(vz_ref r, vz_ref *all, unsigned *nall)
{
	for (unsigned i = 0; i < *nall; i++)
		assert_false(vz_ref_eq(all[i], r)); /* never handed out twice */
	all[(*nall)++] = r;
}

static void test_slot_retired_after_last_generation(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	struct vz__shard *sh;
	struct vz_actor *a;
	vz_ref all[MAX_STALE + 8], r, live[4], local_prober, cross_prober;
	unsigned nall = 0;
	uint32_t slot;
	vz_shard_stats t;
	uint64_t foreign;

	(void)st;
	memset(&T, 0, sizeof T);
	vz_test_watchdog(60);
	vz_test_config(&cfg, 2);
	cfg.dead_letter = on_dead;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);

	/* First life of the slot (generation 1), then stopped: before start
	 * vz_stop acts at once and the slot goes back on the free list. */
	assert_int_equal(vz_spawn(rt, 0, &counting_spec, NULL, &r), 0);
	slot = vz__ref_slot(r);
	remember(r, all, &nall);
	T.stale[T.nstale++] = r;
	assert_int_equal(vz_stop(rt, r), 0);
	assert_int_equal(vz_stop(rt, r), VZ_ESTALE);

	/* Fast-forward: the slot's next life is the third from its last. */
	sh = rt->shards[0];
	a = vz__slot_ptr(sh, slot);
	assert_ptr_equal(sh->free_actors, a);
	a->gen = VZ__GEN_LAST - (LIVES_AT_END - 1);

	/* The last lives of the slot: LIFO reuse gives the same slot each
	 * time, with the next generation. */
	for (unsigned i = 0; i < LIVES_AT_END; i++) {
		assert_int_equal(vz_spawn(rt, 0, &counting_spec, NULL, &r), 0);
		assert_int_equal(vz__ref_slot(r), slot);
		assert_int_equal(vz__ref_gen(r), VZ__GEN_LAST - (LIVES_AT_END - 1) + i);
		remember(r, all, &nall);
		T.stale[T.nstale++] = r;
		assert_int_equal(vz_stop(rt, r), 0);
	}
	/* Past the limit: spawn and stop again and again; the retired slot
	 * never comes back and no reference repeats. */
	for (unsigned i = 0; i < LATER; i++) {
		assert_int_equal(vz_spawn(rt, 0, &counting_spec, NULL, &r), 0);
		remember(r, all, &nall);
		assert_int_not_equal(vz__ref_slot(r), slot);
		T.stale[T.nstale++] = r;
		assert_int_equal(vz_stop(rt, r), 0);
	}
	for (unsigned i = 0; i < T.nstale; i++)
		assert_int_equal(vz_stop(rt, T.stale[i]), VZ_ESTALE);
	/* The slot's generations are used up: retired, off the free list. */
	assert_true(a->flags & VZ__ACTOR_RETIRED);
	assert_int_equal(sh->retired_slots, 1);
	for (struct vz_actor *f = sh->free_actors; f; f = f->next_ready)
		assert_ptr_not_equal(f, a);

	/* Actors alive while the stale references are used. */
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(vz_spawn(rt, i % 2, &counting_spec, NULL, &live[i]), 0);
		if (i % 2 == 0)
			assert_int_not_equal(vz__ref_slot(live[i]), slot);
		remember(live[i], all, &nall);
	}
	assert_int_equal(vz_spawn(rt, 0, &local_prober_spec, NULL, &local_prober), 0);
	assert_int_equal(vz_spawn(rt, 1, &cross_prober_spec, NULL, &cross_prober), 0);
	assert_int_not_equal(vz__ref_slot(local_prober), slot);

	assert_int_equal(vz_runtime_start(rt), 0);
	/* From a foreign thread: accepted, then dead-lettered on shard 0. */
	for (unsigned i = 0; i < T.nstale; i++)
		assert_int_equal(vz_post(rt, T.stale[i], MSG_DATA, NULL, 0), 0);
	assert_int_equal(vz_post(rt, local_prober, MSG_GO, NULL, 0), 0);
	assert_int_equal(vz_post(rt, cross_prober, MSG_GO, NULL, 0), 0);
	wait_until(&T.local_done, 1);
	wait_until(&T.cross_done, 1);
	assert_int_equal(atomic_load(&T.cross_sent), T.nstale);
	wait_until(&T.dead, 2 * T.nstale);

	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(atomic_load(&T.bad), 0);
	assert_int_equal(atomic_load(&T.received), 0);
	assert_int_equal(atomic_load(&T.dead), 2 * T.nstale);
	assert_int_equal(vz_stats_total(rt, &t, &foreign), 0);
	assert_int_equal(t.dead_letters, 2 * T.nstale);
	assert_int_equal(t.sent_local + t.sent_remote + foreign, t.handled + t.dead_letters);
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_watchdog(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slot_retired_after_last_generation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
