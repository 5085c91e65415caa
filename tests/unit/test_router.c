// SPDX-License-Identifier: MIT
/*
 * The key-hash router (actors/router): parts are spread round-robin over
 * the shards; every keyed message, sent from an actor or posted from a
 * foreign thread, reaches the part that owns its key (each owner checks
 * the route of every key it receives, and that it runs on its own shard);
 * the same key always lands on the same part; keys spread over every part;
 * a router over caller-made refs routes the same way; bad arguments are
 * refused. Runs once per backend.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "router/router.h"

enum { MSG_KEYED = VZ_MSG_USER, MSG_GO };

#define NSHARDS	  2
#define PER_SHARD 3
#define NPARTS	  (NSHARDS * PER_SHARD)
#define NKEYS	  600

static vz_router *g_router; /* set before start, read-only afterwards */
static atomic_uint_fast64_t g_received[NPARTS];
static atomic_uint_fast64_t g_total;

struct owner {
	unsigned part;
	unsigned nparts;
};

static int owner_init(vz_actor *self, void *state, const void *arg)
{
	const vz_router_part_arg *pa = arg;
	struct owner *o = state;

	(void)self;
	VZ_TEST_CHECK(pa->nparts == NPARTS);
	VZ_TEST_CHECK(pa->user == &g_router);
	o->part = pa->part;
	o->nparts = pa->nparts;
	return 0;
}

static void owner_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct owner *o = state;
	const char *key = vz_msg_data(m);
	size_t len = vz_msg_len(m);

	if (vz_msg_type(m) != MSG_KEYED)
		return;
	/* The key's route names this actor, and the actor is on its shard. */
	VZ_TEST_CHECK(vz_router_part(g_router, key, len) == o->part);
	VZ_TEST_CHECK(vz_ref_eq(vz_router_owner(g_router, key, len), vz_self(self)));
	VZ_TEST_CHECK(vz_actor_shard(self) == o->part % NSHARDS);
	/* Relaxed: counters only; the test thread reads them after it saw
	 * g_total reach its goal (acq_rel below) or after stop. */
	atomic_fetch_add_explicit(&g_received[o->part], 1, memory_order_relaxed);
	/* acq_rel: publishes this owner's count increment to the test thread
	 * that acquires g_total; relaxed would let it see the total before
	 * the per-part counts. */
	atomic_fetch_add_explicit(&g_total, 1, memory_order_acq_rel);
}

static const vz_actor_spec owner_spec = {
    .name = "router-owner",
    .state_size = sizeof(struct owner),
    .init = owner_init,
    .receive = owner_receive,
};

static void key_of(unsigned i, char *buf, size_t *len)
{
	*len = (size_t)snprintf(buf, 32, "key-%u", i);
}

/* A client actor: on MSG_GO sends every key through the router. */
static void client_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)state;
	if (vz_msg_type(m) != MSG_GO)
		return;
	for (unsigned i = 0; i < NKEYS; i++) {
		char key[32];
		size_t len;

		key_of(i, key, &len);
		VZ_TEST_CHECK(vz_router_send(self, g_router, key, len, MSG_KEYED, key, len) == 0);
	}
}

static const vz_actor_spec client_spec = {
    .name = "router-client",
    .receive = client_receive,
};

static void test_routes_to_owner(void **state)
{
	vz_runtime *rt;
	vz_config cfg;
	vz_ref client;
	uint64_t end;
	unsigned hit = 0;

	(void)state;
	vz_test_reset_fails();
	vz_test_watchdog(120);
	for (unsigned i = 0; i < NPARTS; i++)
		atomic_store_explicit(&g_received[i], 0, memory_order_relaxed);
	atomic_store_explicit(&g_total, 0, memory_order_relaxed);

	vz_test_config(&cfg, NSHARDS);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_router_create(rt, &owner_spec, PER_SHARD, &g_router, &g_router), 0);
	assert_int_equal(vz_router_parts(g_router), NPARTS);
	for (unsigned i = 0; i < NPARTS; i++)
		assert_int_equal(vz_ref_shard(vz_router_part_ref(g_router, i)), i % NSHARDS);
	assert_true(vz_ref_is_null(vz_router_part_ref(g_router, NPARTS)));
	assert_int_equal(vz_spawn(rt, 0, &client_spec, NULL, &client), 0);
	assert_int_equal(vz_runtime_start(rt), 0);

	/* From an actor on shard 0, and from this (foreign) thread. */
	assert_int_equal(vz_post(rt, client, MSG_GO, NULL, 0), 0);
	for (unsigned i = 0; i < NKEYS; i++) {
		char key[32];
		size_t len;

		key_of(i, key, &len);
		assert_int_equal(vz_router_post(rt, g_router, key, len, MSG_KEYED, key, len), 0);
	}
	end = vz_test_now_ns() + 60ull * 1000000000u;
	/* acquire: pairs with the owners' acq_rel increments (their per-part
	 * counts are visible once the total is). */
	while (atomic_load_explicit(&g_total, memory_order_acquire) < 2 * NKEYS &&
	       vz_test_now_ns() < end)
		usleep(200);
	assert_int_equal(vz_runtime_stop(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(atomic_load_explicit(&g_total, memory_order_acquire), 2 * NKEYS);
	/* 600 keys over 6 parts: every part owns some. */
	for (unsigned i = 0; i < NPARTS; i++)
		hit += atomic_load_explicit(&g_received[i], memory_order_relaxed) > 0;
	assert_int_equal(hit, NPARTS);
	vz_router_destroy(g_router);
	g_router = NULL;
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_watchdog(0);
}

static void test_pure_map(void **state)
{
	vz_ref refs[5];
	vz_router *a, *b;
	unsigned count[5] = {0};

	(void)state;
	for (unsigned i = 0; i < 5; i++)
		refs[i].id = 1000 + i;
	assert_int_equal(vz_router_from_refs(refs, 5, &a), 0);
	assert_int_equal(vz_router_from_refs(refs, 5, &b), 0);
	for (unsigned i = 0; i < 10000; i++) {
		char key[32];
		size_t len;
		unsigned pa;

		key_of(i, key, &len);
		pa = vz_router_part(a, key, len);
		assert_true(pa < 5);
		/* deterministic: same key, same part, in any router of the
		 * same size */
		assert_int_equal(pa, vz_router_part(b, key, len));
		assert_int_equal(vz_router_owner(a, key, len).id, 1000 + pa);
		count[pa]++;
	}
	/* roughly uniform: each part within 20% of 2000 */
	for (unsigned i = 0; i < 5; i++)
		assert_true(count[i] > 1600 && count[i] < 2400);
	/* the hash is stable (a published value must not change) */
	assert_int_equal(vz_router_hash("", 0), vz_router_hash("", 0));
	assert_true(vz_router_hash("a", 1) != vz_router_hash("b", 1));
	vz_router_destroy(a);
	vz_router_destroy(b);
	vz_router_destroy(NULL);
}

static void test_bad_arguments(void **state)
{
	vz_router *r = NULL;
	vz_ref ref = {1};
	vz_runtime *rt;
	vz_config cfg;

	(void)state;
	assert_int_equal(vz_router_from_refs(NULL, 1, &r), VZ_EINVAL);
	assert_int_equal(vz_router_from_refs(&ref, 0, &r), VZ_EINVAL);
	assert_int_equal(vz_router_from_refs(&ref, 1, NULL), VZ_EINVAL);
	assert_int_equal(vz_router_from_refs(&ref, (1u << 20) + 1, &r), VZ_EINVAL);
	assert_int_equal(vz_router_send(NULL, NULL, "k", 1, MSG_KEYED, NULL, 0), VZ_EINVAL);
	assert_int_equal(vz_router_post(NULL, NULL, "k", 1, MSG_KEYED, NULL, 0), VZ_EINVAL);
	vz_test_config(&cfg, 1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_router_create(rt, &owner_spec, 0, NULL, &r), VZ_EINVAL);
	assert_int_equal(vz_router_create(rt, NULL, 1, NULL, &r), VZ_EINVAL);
	assert_int_equal(vz_router_create(NULL, &owner_spec, 1, NULL, &r), VZ_EINVAL);
	assert_null(r);
	assert_int_equal(vz_runtime_destroy(rt), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_routes_to_owner),
	    cmocka_unit_test(test_pure_map),
	    cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
