// SPDX-License-Identifier: MIT
/*
 * The classic event loop (see classic_loop.h): mutex + condition variable
 * task queue in a growable ring, delayed tasks in the binary-heap timer
 * queue (payloads recycled through a free list), one loop thread. Every shared field is protected
 * by `mu`; nothing here is lock-free on purpose.
 */
#include "classic_loop.h"
#include "timer_heap.h"

#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct task {
	classic_task_fn fn;
	void *arg;
};

/* A delayed task: the heap's payload. Recycled through a free list so a
 * warm loop does not allocate per delayed task. */
struct dtask {
	struct task t;
	struct dtask *next_free;
};

#define DTASK_CHUNK 256

struct dchunk {
	struct dchunk *next;
	struct dtask items[DTASK_CHUNK];
};

struct classic_loop {
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* signalled by posters when `waiting` */
	struct task *ring;   /* capacity slots; [head, tail) are queued */
	uint64_t head, tail; /* free-running; slot = index & (cap - 1) */
	uint64_t cap;
	struct timer_heap timers; /* delayed tasks, payload = struct dtask * */
	struct dtask *free_dtasks;
	struct dchunk *chunks; /* every dtask ever allocated, freed at destroy */
	bool waiting;	       /* loop is (about to be) blocked on cv */
	bool stopping;
	bool started; /* a thread of ours runs the loop */
	pthread_t thread;
	pthread_t loop_thread; /* whoever runs classic_loop_run() */
	bool has_loop_thread;
	int cpu;
	struct classic_loop_stats st;
};

/* Round up to a power of two, at least 64. */
static uint64_t pow2_at_least(uint64_t n)
{
	uint64_t c = 64;

	while (c < n)
		c <<= 1;
	return c;
}

int classic_loop_create(unsigned capacity, struct classic_loop **out)
{
	struct classic_loop *l;
	pthread_condattr_t ca;

	if (!out)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->cap = pow2_at_least(capacity);
	l->ring = malloc(l->cap * sizeof(*l->ring));
	if (!l->ring || timer_heap_init(&l->timers, 1024) != 0) {
		free(l->ring);
		free(l);
		return -ENOMEM;
	}
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	/* Timed waits for the next deadline use the same clock as the heap. */
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = l;
	return 0;
}

/* Double the ring, keeping the queued tasks in order. Called with mu held. */
static int grow(struct classic_loop *l)
{
	uint64_t ncap = l->cap * 2, n = l->tail - l->head;
	struct task *nr = malloc(ncap * sizeof(*nr));

	if (!nr)
		return -ENOMEM;
	for (uint64_t i = 0; i < n; i++)
		nr[i] = l->ring[(l->head + i) & (l->cap - 1)];
	free(l->ring);
	l->ring = nr;
	l->cap = ncap;
	l->head = 0;
	l->tail = n;
	l->st.grows++;
	return 0;
}

int classic_loop_post(struct classic_loop *l, classic_task_fn fn, void *arg)
{
	bool wake;

	pthread_mutex_lock(&l->mu);
	if (l->tail - l->head == l->cap && grow(l) != 0) {
		pthread_mutex_unlock(&l->mu);
		return -ENOMEM;
	}
	l->ring[l->tail & (l->cap - 1)] = (struct task){fn, arg};
	l->tail++;
	l->st.posted++;
	wake = l->waiting;
	if (wake) {
		/* One signal per sleep: later posters see waiting == false. */
		l->waiting = false;
		l->st.signals++;
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	return 0;
}

/* A free delayed-task slot, allocating a chunk of them when the free list is
 * empty (counted as a grow). Called with mu held. */
static struct dtask *dtask_get(struct classic_loop *l)
{
	struct dtask *d = l->free_dtasks;

	if (!d) {
		struct dchunk *c = malloc(sizeof(*c));

		if (!c)
			return NULL;
		c->next = l->chunks;
		l->chunks = c;
		for (unsigned i = 0; i < DTASK_CHUNK; i++) {
			c->items[i].next_free = l->free_dtasks;
			l->free_dtasks = &c->items[i];
		}
		l->st.grows++;
		d = l->free_dtasks;
	}
	l->free_dtasks = d->next_free;
	return d;
}

/* Return a delayed-task slot to the free list. Called with mu held. */
static void dtask_put(struct classic_loop *l, struct dtask *d)
{
	d->next_free = l->free_dtasks;
	l->free_dtasks = d;
}

int classic_loop_post_delayed(struct classic_loop *l, uint64_t delay_ns, classic_task_fn fn,
			      void *arg, uint64_t *handle)
{
	uint64_t deadline = bench_now_ns() + delay_ns, h = 0;
	struct dtask *d;
	int rc = -ENOMEM;

	pthread_mutex_lock(&l->mu);
	d = dtask_get(l);
	if (d) {
		d->t = (struct task){fn, arg};
		rc = timer_heap_push(&l->timers, deadline, d, &h);
		if (rc != 0) {
			dtask_put(l, d);
			rc = -ENOMEM;
		}
	}
	if (rc == 0) {
		l->st.delayed++;
		/* A new earliest deadline must shorten the loop's timed wait. */
		if (l->waiting) {
			l->waiting = false;
			l->st.signals++;
			pthread_cond_signal(&l->cv);
		}
	}
	pthread_mutex_unlock(&l->mu);
	if (rc == 0 && handle)
		*handle = h;
	return rc;
}

int classic_loop_cancel(struct classic_loop *l, uint64_t handle)
{
	void *payload = NULL;
	int rc;

	pthread_mutex_lock(&l->mu);
	rc = timer_heap_cancel(&l->timers, handle, &payload);
	if (rc == 0) {
		dtask_put(l, payload);
		l->st.cancelled++;
	}
	pthread_mutex_unlock(&l->mu);
	return rc == 0 ? 0 : -ENOENT;
}

bool classic_loop_on_loop(const struct classic_loop *l)
{
	return l->has_loop_thread && pthread_equal(l->loop_thread, pthread_self());
}

/* Move due delayed tasks into batch[] (up to room). Called with mu held. */
static unsigned take_due(struct classic_loop *l, struct task *batch, unsigned n, unsigned room,
			 uint64_t now)
{
	uint64_t deadline;
	void *payload;

	while (n < room && timer_heap_peek(&l->timers, &deadline, &payload) == 0 &&
	       deadline <= now) {
		struct dtask *d = payload;

		timer_heap_pop(&l->timers, NULL, NULL);
		batch[n++] = d->t;
		dtask_put(l, d);
	}
	return n;
}

void classic_loop_run(struct classic_loop *l)
{
	struct task batch[CLASSIC_BATCH];

	l->loop_thread = pthread_self();
	l->has_loop_thread = true;
	pthread_mutex_lock(&l->mu);
	for (;;) {
		unsigned n = 0;
		uint64_t deadline;
		void *payload;

		while (n < CLASSIC_BATCH && l->head != l->tail) {
			batch[n++] = l->ring[l->head & (l->cap - 1)];
			l->head++;
		}
		if (timer_heap_peek(&l->timers, &deadline, &payload) == 0)
			n = take_due(l, batch, n, CLASSIC_BATCH, bench_now_ns());
		l->st.turns++;
		if (n == 0) {
			if (l->stopping)
				break;
			/* Nothing to do: wait for a post or the next deadline. */
			l->waiting = true;
			l->st.waits++;
			if (timer_heap_peek(&l->timers, &deadline, &payload) == 0) {
				struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000u),
						      .tv_nsec = (long)(deadline % 1000000000u)};

				pthread_cond_timedwait(&l->cv, &l->mu, &ts);
			} else {
				pthread_cond_wait(&l->cv, &l->mu);
			}
			l->waiting = false;
			continue;
		}
		l->st.ran += n;
		pthread_mutex_unlock(&l->mu);
		for (unsigned i = 0; i < n; i++)
			batch[i].fn(batch[i].arg);
		pthread_mutex_lock(&l->mu);
	}
	pthread_mutex_unlock(&l->mu);
}

static void *loop_main(void *arg)
{
	struct classic_loop *l = arg;

	if (l->cpu >= 0)
		bench_pin(l->cpu, "classic loop");
	classic_loop_run(l);
	return NULL;
}

int classic_loop_start(struct classic_loop *l, int cpu)
{
	int rc;

	l->cpu = cpu;
	rc = pthread_create(&l->thread, NULL, loop_main, l);
	if (rc != 0)
		return -rc;
	l->started = true;
	return 0;
}

void classic_loop_stop(struct classic_loop *l)
{
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	if (l->waiting) {
		l->waiting = false;
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (l->started && !classic_loop_on_loop(l)) {
		pthread_join(l->thread, NULL);
		l->started = false;
	}
}

void classic_loop_stats(struct classic_loop *l, struct classic_loop_stats *out)
{
	pthread_mutex_lock(&l->mu);
	*out = l->st;
	pthread_mutex_unlock(&l->mu);
}

void classic_loop_destroy(struct classic_loop *l)
{
	if (!l)
		return;
	/* Pending delayed tasks live in the chunks: freeing those frees them. */
	timer_heap_fini(&l->timers);
	while (l->chunks) {
		struct dchunk *c = l->chunks;

		l->chunks = c->next;
		free(c);
	}
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l->ring);
	free(l);
}
