// SPDX-License-Identifier: MIT
/*
 * Binary min-heap timer queue with O(log n) cancel: see timer_heap.h. Heap
 * items carry the deadline next to the node index so that sifting compares
 * within the items array without touching the nodes, which are only written
 * to record their new position.
 */
#include "timer_heap.h"

#include <errno.h>
#include <stdlib.h>

#define NIL UINT32_MAX

/* Grow items[] and nodes[] to `cap`, threading new nodes onto the free
 * list. 0 or -ENOMEM. */
static int grow(struct timer_heap *h, uint32_t cap)
{
	struct timer_heap_item *items;
	struct timer_heap_node *nodes;
	uint32_t i;

	items = realloc(h->items, (size_t)cap * sizeof *items);
	if (!items)
		return -ENOMEM;
	h->items = items;
	nodes = realloc(h->nodes, (size_t)cap * sizeof *nodes);
	if (!nodes)
		return -ENOMEM;
	h->nodes = nodes;
	for (i = cap; i-- > h->cap;) {
		nodes[i].payload = NULL;
		nodes[i].pos = NIL;
		nodes[i].gen = 1;
		nodes[i].next_free = h->free_head;
		h->free_head = i;
	}
	h->cap = cap;
	h->grows++;
	return 0;
}

int timer_heap_init(struct timer_heap *h, uint32_t capacity)
{
	h->items = NULL;
	h->nodes = NULL;
	h->n = 0;
	h->cap = 0;
	h->free_head = NIL;
	h->grows = 0;
	if (capacity && grow(h, capacity) != 0) {
		timer_heap_fini(h);
		return -ENOMEM;
	}
	h->grows = 0;
	return 0;
}

void timer_heap_fini(struct timer_heap *h)
{
	free(h->items);
	free(h->nodes);
	h->items = NULL;
	h->nodes = NULL;
	h->n = 0;
	h->cap = 0;
	h->free_head = NIL;
}

static inline void put(struct timer_heap *h, uint32_t pos, struct timer_heap_item it)
{
	h->items[pos] = it;
	h->nodes[it.node].pos = pos;
}

/* Move `it` up from hole `pos` to its place. */
static void sift_up(struct timer_heap *h, uint32_t pos, struct timer_heap_item it)
{
	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;

		if (h->items[parent].deadline <= it.deadline)
			break;
		put(h, pos, h->items[parent]);
		pos = parent;
	}
	put(h, pos, it);
}

/* Move `it` down from hole `pos` to its place (n items, hole included). */
static void sift_down(struct timer_heap *h, uint32_t pos, struct timer_heap_item it)
{
	for (;;) {
		uint32_t c = 2 * pos + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->items[c + 1].deadline < h->items[c].deadline)
			c++;
		if (it.deadline <= h->items[c].deadline)
			break;
		put(h, pos, h->items[c]);
		pos = c;
	}
	put(h, pos, it);
}

int timer_heap_push(struct timer_heap *h, uint64_t deadline, void *payload, uint64_t *handle)
{
	struct timer_heap_node *node;
	uint32_t idx;

	if (h->free_head == NIL) {
		uint32_t cap = h->cap ? h->cap * 2 : 64;

		if (cap <= h->cap || grow(h, cap) != 0)
			return -ENOMEM;
	}
	idx = h->free_head;
	node = &h->nodes[idx];
	h->free_head = node->next_free;
	node->payload = payload;
	h->n++;
	sift_up(h, h->n - 1, (struct timer_heap_item){.deadline = deadline, .node = idx});
	if (handle)
		*handle = (uint64_t)node->gen << 32 | idx;
	return 0;
}

/* Take the item at `pos` out of the heap and free its node. */
static void remove_at(struct timer_heap *h, uint32_t pos)
{
	struct timer_heap_node *node = &h->nodes[h->items[pos].node];
	struct timer_heap_item last = h->items[--h->n];

	node->pos = NIL;
	if (++node->gen == 0)
		node->gen = 1;
	node->next_free = h->free_head;
	h->free_head = (uint32_t)(node - h->nodes);
	if (pos == h->n)
		return; /* it was the last item */
	if (pos > 0 && last.deadline < h->items[(pos - 1) / 2].deadline)
		sift_up(h, pos, last);
	else
		sift_down(h, pos, last);
}

int timer_heap_cancel(struct timer_heap *h, uint64_t handle, void **payload)
{
	uint32_t idx = (uint32_t)handle;
	struct timer_heap_node *node;

	if (idx >= h->cap)
		return -ENOENT;
	node = &h->nodes[idx];
	if (node->pos == NIL || node->gen != (uint32_t)(handle >> 32))
		return -ENOENT;
	if (payload)
		*payload = node->payload;
	remove_at(h, node->pos);
	return 0;
}

int timer_heap_peek(const struct timer_heap *h, uint64_t *deadline, void **payload)
{
	if (!h->n)
		return -ENOENT;
	if (deadline)
		*deadline = h->items[0].deadline;
	if (payload)
		*payload = h->nodes[h->items[0].node].payload;
	return 0;
}

int timer_heap_pop(struct timer_heap *h, uint64_t *deadline, void **payload)
{
	if (timer_heap_peek(h, deadline, payload) != 0)
		return -ENOENT;
	remove_at(h, 0);
	return 0;
}
