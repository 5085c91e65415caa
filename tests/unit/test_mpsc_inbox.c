// SPDX-License-Identifier: MIT
/*
 * Unit tests of the MPSC inbox (runtime/queue/mpsc_inbox.h), single-threaded:
 * FIFO order, the stub being stepped over and made the anchor again, the "looked
 * empty" hint of push, empty(), node reuse, and the half-linked state
 * reproduced deterministically by running the two halves of a push
 * (exchange, then link) separately with pops in between, and the
 * consumer's cheap look vz__mpsc_idle() against pop. Concurrency is
 * exercised in tests/stress/stress_mpsc_inbox.c.
 *
 * VZ_TEST_BACKEND_INDEPENDENT: touches no I/O backend, runs once.
 */
#include "testutil.h"

#include <stdalign.h>
#include <stdlib.h>

#include "queue/mpsc_inbox.h"

/* A message-like record with the node as first member, as in the core. */
struct msg {
	struct vz__mpsc_node node;
	int id;
};

static int id_of(struct vz__mpsc_node *n)
{
	assert_non_null(n);
	return ((struct msg *)n)->id;
}

/* Tests peek at the queue's fields (single-threaded: relaxed is exact). */
static struct vz__mpsc_node *tail_of(struct vz__mpsc *q)
{
	return atomic_load_explicit(&q->tail, memory_order_relaxed);
}

static struct vz__mpsc_node *head_of(struct vz__mpsc *q)
{
	return atomic_load_explicit(&q->head, memory_order_relaxed);
}

static void test_init_empty(void **state)
{
	alignas(64) struct vz__mpsc q;

	(void)state;
	vz__mpsc_init(&q);
	assert_true(vz__mpsc_empty(&q));
	assert_null(vz__mpsc_pop(&q));
	assert_null(vz__mpsc_pop(&q));
	assert_true(vz__mpsc_empty(&q));
	assert_ptr_equal(tail_of(&q), &q.stub);
	assert_ptr_equal(head_of(&q), &q.stub);
}

static void test_fifo_single_thread(void **state)
{
	alignas(64) struct vz__mpsc q;
	struct msg m[100];

	(void)state;
	vz__mpsc_init(&q);
	for (int i = 0; i < 100; i++) {
		m[i].id = i;
		/* Only the first push finds the queue empty. */
		assert_int_equal(vz__mpsc_push(&q, &m[i].node), i == 0);
		assert_false(vz__mpsc_empty(&q));
	}
	for (int i = 0; i < 100; i++) {
		assert_false(vz__mpsc_empty(&q));
		assert_int_equal(id_of(vz__mpsc_pop(&q)), i);
	}
	assert_true(vz__mpsc_empty(&q));
	assert_null(vz__mpsc_pop(&q));
}

/* Taking the last node makes the stub the anchor again; after that the
 * queue is exactly as after init, and works again (several rounds, with
 * the same nodes reused). */
static void test_stub_reanchoring(void **state)
{
	alignas(64) struct vz__mpsc q;
	struct msg a = {.id = 1}, b = {.id = 2};

	(void)state;
	vz__mpsc_init(&q);
	for (int round = 0; round < 5; round++) {
		assert_true(vz__mpsc_push(&q, &a.node));
		assert_ptr_equal(tail_of(&q), &a.node);
		/* a is the only node: pop steps over the stub, finds a is
		 * the tail, swings the tail back to the stub and returns a. */
		assert_int_equal(id_of(vz__mpsc_pop(&q)), 1);
		assert_ptr_equal(tail_of(&q), &q.stub);
		assert_true(vz__mpsc_empty(&q));
		assert_null(vz__mpsc_pop(&q));

		/* Two nodes: the first leaves without the stub, the second
		 * with it. */
		assert_true(vz__mpsc_push(&q, &a.node));
		assert_false(vz__mpsc_push(&q, &b.node));
		assert_int_equal(id_of(vz__mpsc_pop(&q)), 1);
		assert_ptr_equal(tail_of(&q), &b.node);
		assert_false(vz__mpsc_empty(&q));
		assert_int_equal(id_of(vz__mpsc_pop(&q)), 2);
		assert_ptr_equal(tail_of(&q), &q.stub);
		assert_ptr_equal(head_of(&q), &q.stub);
		assert_true(vz__mpsc_empty(&q));
		assert_null(vz__mpsc_pop(&q));
	}
}

/* A pseudo-random mix of pushes and pops, so the queue goes through every
 * shape (empty, one node, many; stub at head or as the tail) many times,
 * with nodes reused; the push hint must say "empty" exactly when everything
 * pushed so far has been popped. */
static void test_interleaved(void **state)
{
	alignas(64) struct vz__mpsc q;
	struct msg m[64];
	int next_in = 0, next_out = 0;
	unsigned seed = 99;

	(void)state;
	vz__mpsc_init(&q);
	for (int i = 0; i < 64; i++)
		m[i].id = -1;
	for (int iter = 0; iter < 20000; iter++) {
		seed = seed * 1103515245u + 12345u;
		int pushes = (int)((seed >> 16) % 4);
		seed = seed * 1103515245u + 12345u;
		int pops = (int)((seed >> 16) % 4);

		/* At most 64 in flight so nodes can be reused by index. */
		for (int i = 0; i < pushes && next_in - next_out < 64; i++) {
			struct msg *x = &m[next_in % 64];

			x->id = next_in++;
			assert_int_equal(vz__mpsc_push(&q, &x->node), next_in - 1 == next_out);
		}
		for (int i = 0; i < pops; i++) {
			struct vz__mpsc_node *n = vz__mpsc_pop(&q);

			if (next_out == next_in) {
				assert_null(n);
				assert_true(vz__mpsc_empty(&q));
			} else {
				assert_int_equal(id_of(n), next_out++);
			}
		}
	}
	assert_true(next_out > 1000);
}

/* Half-linked, case 1: the first push into an empty queue has exchanged
 * (its predecessor is the stub) but not linked. */
static void test_half_linked_first(void **state)
{
	alignas(64) struct vz__mpsc q;
	struct msg a = {.id = 1};
	struct vz__mpsc_node *prev;

	(void)state;
	vz__mpsc_init(&q);
	prev = vz__mpsc_push_exchange(&q, &a.node);
	assert_ptr_equal(prev, &q.stub);
	/* Not yet: nothing reachable, but not empty either (a consumer about
	 * to sleep must keep polling). */
	assert_null(vz__mpsc_pop(&q));
	assert_null(vz__mpsc_pop(&q));
	assert_false(vz__mpsc_empty(&q));
	vz__mpsc_push_link(prev, &a.node);
	assert_int_equal(id_of(vz__mpsc_pop(&q)), 1);
	assert_true(vz__mpsc_empty(&q));
	assert_null(vz__mpsc_pop(&q));
}

/* Half-linked, case 2: a, then b exchanged behind a but not linked. The
 * consumer reaches a, sees a->next == NULL but tail == b != a: it must
 * return NULL (not a: b would then be unreachable) and not spin. */
static void test_half_linked_behind_node(void **state)
{
	alignas(64) struct vz__mpsc q;
	struct msg a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
	struct vz__mpsc_node *prev;

	(void)state;
	vz__mpsc_init(&q);
	assert_true(vz__mpsc_push(&q, &a.node));
	prev = vz__mpsc_push_exchange(&q, &b.node);
	assert_ptr_equal(prev, &a.node);
	assert_null(vz__mpsc_pop(&q));
	assert_null(vz__mpsc_pop(&q));
	assert_false(vz__mpsc_empty(&q));
	/* A third producer completes meanwhile: still blocked behind b. */
	assert_false(vz__mpsc_push(&q, &c.node));
	assert_null(vz__mpsc_pop(&q));
	/* b's producer resumes: everything comes out in order. */
	vz__mpsc_push_link(prev, &b.node);
	assert_int_equal(id_of(vz__mpsc_pop(&q)), 1);
	assert_int_equal(id_of(vz__mpsc_pop(&q)), 2);
	assert_int_equal(id_of(vz__mpsc_pop(&q)), 3);
	assert_null(vz__mpsc_pop(&q));
	assert_true(vz__mpsc_empty(&q));
}

/* Half-linked while the consumer holds the last node: the consumer's
 * compare-and-swap of the tail (head -> stub) must fail and leave the tail
 * alone, the pop must return NULL, and nothing may be lost or reordered
 * when the producer links. Repeated with the stub in front (first push
 * complete, second half-linked) and with a real node in front. */
static void test_half_linked_tail_untouched(void **state)
{
	alignas(64) struct vz__mpsc q;
	struct msg m[4] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}};
	struct vz__mpsc_node *prev;

	(void)state;
	vz__mpsc_init(&q);
	assert_true(vz__mpsc_push(&q, &m[0].node));
	assert_false(vz__mpsc_push(&q, &m[1].node));
	assert_int_equal(id_of(vz__mpsc_pop(&q)), 0); /* head is now m[1], the last */
	prev = vz__mpsc_push_exchange(&q, &m[2].node);
	assert_ptr_equal(prev, &m[1].node);
	for (int i = 0; i < 3; i++) {
		assert_null(vz__mpsc_pop(&q));
		assert_ptr_equal(tail_of(&q), &m[2].node); /* CAS failed, no change */
		assert_ptr_equal(head_of(&q), &m[1].node);
		assert_false(vz__mpsc_empty(&q));
	}
	vz__mpsc_push_link(prev, &m[2].node);
	assert_false(vz__mpsc_push(&q, &m[3].node));
	for (int i = 1; i < 4; i++)
		assert_int_equal(id_of(vz__mpsc_pop(&q)), i);
	assert_null(vz__mpsc_pop(&q));
	assert_true(vz__mpsc_empty(&q));
	assert_ptr_equal(tail_of(&q), &q.stub);
	assert_ptr_equal(head_of(&q), &q.stub);
	/* And the queue works normally afterwards. */
	assert_true(vz__mpsc_push(&q, &m[0].node));
	assert_int_equal(id_of(vz__mpsc_pop(&q)), 0);
	assert_true(vz__mpsc_empty(&q));
}

/* vz__mpsc_empty() must not report "empty" while a node sits at head
 * waiting to be handed out, even if the tail reads as the stub. That shape
 * exists only inside a pop (between its compare-and-swap and its return)
 * or in a queue whose consumer re-anchors by re-pushing the stub; build it
 * by hand and check the answer. */
static void test_empty_needs_head_at_stub(void **state)
{
	alignas(64) struct vz__mpsc q;
	struct msg a = {.id = 1};

	(void)state;
	vz__mpsc_init(&q);
	assert_true(vz__mpsc_push(&q, &a.node));
	/* Consumer stepped to a and swung the tail to the stub, but has
	 * not handed a out yet. */
	atomic_store_explicit(&q.head, &a.node, memory_order_relaxed);
	atomic_store_explicit(&q.tail, &q.stub, memory_order_relaxed);
	atomic_store_explicit(&q.stub.next, NULL, memory_order_relaxed);
	assert_false(vz__mpsc_empty(&q));
	/* The pop completes. */
	atomic_store_explicit(&q.head, &q.stub, memory_order_relaxed);
	assert_true(vz__mpsc_empty(&q));
	assert_null(vz__mpsc_pop(&q));
}

/* vz__mpsc_idle() (the shard turn's look before it drains) says "nothing"
 * exactly where vz__mpsc_pop() would return NULL at the stub: empty, and
 * the first push half-linked. Anything that pop would hand out, including
 * a node reached past the stub and one behind a half-linked one, reads as
 * not idle. */
static void test_idle_agrees_with_pop(void **state)
{
	alignas(64) struct vz__mpsc q;
	struct msg a = {.id = 1}, b = {.id = 2};
	struct vz__mpsc_node *prev;

	(void)state;
	vz__mpsc_init(&q);
	assert_true(vz__mpsc_idle(&q));
	/* Half-linked first push: idle (pop has nothing) but not empty. */
	prev = vz__mpsc_push_exchange(&q, &a.node);
	assert_true(vz__mpsc_idle(&q));
	assert_false(vz__mpsc_empty(&q));
	assert_null(vz__mpsc_pop(&q));
	vz__mpsc_push_link(prev, &a.node);
	assert_false(vz__mpsc_idle(&q));
	/* a and b queued; taking a leaves head on b: not idle. */
	assert_false(vz__mpsc_push(&q, &b.node));
	assert_int_equal(id_of(vz__mpsc_pop(&q)), 1);
	assert_false(vz__mpsc_idle(&q));
	assert_int_equal(id_of(vz__mpsc_pop(&q)), 2);
	assert_true(vz__mpsc_idle(&q));
	assert_null(vz__mpsc_pop(&q));
	/* Again after the stub was re-anchored. */
	assert_true(vz__mpsc_push(&q, &a.node));
	assert_false(vz__mpsc_idle(&q));
	assert_int_equal(id_of(vz__mpsc_pop(&q)), 1);
	assert_true(vz__mpsc_idle(&q));
	assert_true(vz__mpsc_empty(&q));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_empty),
	    cmocka_unit_test(test_fifo_single_thread),
	    cmocka_unit_test(test_stub_reanchoring),
	    cmocka_unit_test(test_interleaved),
	    cmocka_unit_test(test_half_linked_first),
	    cmocka_unit_test(test_half_linked_behind_node),
	    cmocka_unit_test(test_half_linked_tail_untouched),
	    cmocka_unit_test(test_empty_needs_head_at_stub),
	    cmocka_unit_test(test_idle_agrees_with_pop),
	};

	vz_test_watchdog(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
