// SPDX-License-Identifier: MIT
/*
 * libuv baseline loop (see uv_loop.h): mutex-protected ring of tasks drained
 * by a uv_async_t callback on the loop thread. Everything shared is under
 * `mu`; libuv itself provides the wake-up (uv_async_send, which is safe from
 * any thread).
 */
#ifdef VZ_HAVE_LIBUV

#include "uv_loop.h"

#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

struct task {
	uvloop_task_fn fn;
	void *arg;
};

struct uvloop {
	uv_loop_t loop;
	uv_async_t async;
	pthread_mutex_t mu;
	struct task *ring; /* [head, tail) queued, free-running indices */
	uint64_t head, tail, cap;
	bool stopping; /* set under mu; the callback closes the handle */
	bool started;
	bool initialised; /* loop + async exist (for destroy) */
	int cpu;
	pthread_t thread;
	struct uvloop_stats st;
};

#define UVLOOP_BATCH 64

/* Double the ring keeping order. Called with mu held. */
static int grow(struct uvloop *l)
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

/* The async callback: drain the queue in batches (lock per batch), run
 * unlocked. libuv may coalesce several sends into one callback, and a send
 * made while we drain makes the callback run again, so nothing is missed. */
static void on_async(uv_async_t *a)
{
	struct uvloop *l = a->data;
	struct task batch[UVLOOP_BATCH];
	bool stop;

	for (;;) {
		unsigned n = 0;

		pthread_mutex_lock(&l->mu);
		l->st.callbacks++;
		while (n < UVLOOP_BATCH && l->head != l->tail) {
			batch[n++] = l->ring[l->head & (l->cap - 1)];
			l->head++;
		}
		l->st.ran += n;
		stop = l->stopping && n == 0;
		pthread_mutex_unlock(&l->mu);
		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++)
			batch[i].fn(batch[i].arg);
	}
	if (stop)
		uv_close((uv_handle_t *)&l->async, NULL);
}

int uvloop_create(unsigned capacity, struct uvloop **out)
{
	struct uvloop *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return -ENOMEM;
	l->cap = 64;
	while (l->cap < capacity)
		l->cap <<= 1;
	l->ring = malloc(l->cap * sizeof(*l->ring));
	if (!l->ring) {
		free(l);
		return -ENOMEM;
	}
	rc = uv_loop_init(&l->loop);
	if (rc == 0) {
		rc = uv_async_init(&l->loop, &l->async, on_async);
		if (rc != 0)
			uv_loop_close(&l->loop);
	}
	if (rc != 0) {
		free(l->ring);
		free(l);
		return rc; /* libuv errors are negative errno values */
	}
	l->async.data = l;
	l->initialised = true;
	pthread_mutex_init(&l->mu, NULL);
	*out = l;
	return 0;
}

static void *loop_main(void *arg)
{
	struct uvloop *l = arg;

	if (l->cpu >= 0)
		bench_pin(l->cpu, "libuv loop");
	uv_run(&l->loop, UV_RUN_DEFAULT); /* returns once the async is closed */
	return NULL;
}

int uvloop_start(struct uvloop *l, int cpu)
{
	int rc;

	l->cpu = cpu;
	rc = pthread_create(&l->thread, NULL, loop_main, l);
	if (rc != 0)
		return -rc;
	l->started = true;
	return 0;
}

int uvloop_post(struct uvloop *l, uvloop_task_fn fn, void *arg)
{
	pthread_mutex_lock(&l->mu);
	if (l->tail - l->head == l->cap && grow(l) != 0) {
		pthread_mutex_unlock(&l->mu);
		return -ENOMEM;
	}
	l->ring[l->tail & (l->cap - 1)] = (struct task){fn, arg};
	l->tail++;
	l->st.posted++;
	l->st.async_sends++;
	pthread_mutex_unlock(&l->mu);
	/* After unlocking, as libuv code usually does; the callback re-checks
	 * the queue under the lock, so the order does not lose a task. */
	uv_async_send(&l->async);
	return 0;
}

void uvloop_stop(struct uvloop *l)
{
	if (!l->started)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_mutex_unlock(&l->mu);
	uv_async_send(&l->async);
	pthread_join(l->thread, NULL);
	l->started = false;
}

void uvloop_stats(struct uvloop *l, struct uvloop_stats *out)
{
	pthread_mutex_lock(&l->mu);
	*out = l->st;
	pthread_mutex_unlock(&l->mu);
}

void uvloop_destroy(struct uvloop *l)
{
	if (!l)
		return;
	if (l->initialised) {
		if (!uv_is_closing((uv_handle_t *)&l->async))
			uv_close((uv_handle_t *)&l->async, NULL);
		uv_run(&l->loop, UV_RUN_NOWAIT); /* let the close complete */
		uv_loop_close(&l->loop);
	}
	pthread_mutex_destroy(&l->mu);
	free(l->ring);
	free(l);
}

#else
/* Without libuv this file is empty on purpose (ISO C wants a declaration). */
typedef int vz_bench_uv_loop_unused;
#endif
