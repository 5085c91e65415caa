// SPDX-License-Identifier: MIT
/* The classic mutex + condition-variable worker pool (see classic_pool.h). */
#include "baseline/classic_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct job {
	classic_job_fn fn;
	void *arg;
	size_t len;
	unsigned char payload[CLASSIC_POOL_PAYLOAD];
};

struct classic_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* idle workers wait here */
	struct job *ring;
	unsigned capacity, head, count;
	unsigned waiting; /* workers blocked on cond */
	bool stop;
	struct classic_pool_stats st;
	unsigned nworkers, started;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct classic_pool *p = arg;
	struct job j;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->count == 0 && !p->stop) {
			p->waiting++;
			p->st.waits++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->waiting--;
		}
		if (p->count == 0) { /* stop, and nothing left */
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		j = p->ring[p->head];
		p->head = (p->head + 1) % p->capacity;
		p->count--;
		p->st.ran++;
		pthread_mutex_unlock(&p->lock);
		j.fn(j.arg, j.payload, j.len);
	}
}

int classic_pool_create(unsigned capacity, unsigned nworkers, const int *cpus,
			struct classic_pool **out)
{
	struct classic_pool *p = calloc(1, sizeof *p);

	if (!p || capacity == 0 || nworkers == 0)
		goto fail;
	p->capacity = capacity;
	p->nworkers = nworkers;
	p->ring = calloc(capacity, sizeof *p->ring);
	p->threads = calloc(nworkers, sizeof *p->threads);
	if (!p->ring || !p->threads)
		goto fail;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	for (unsigned i = 0; i < nworkers; i++) {
		pthread_attr_t attr;
		int rc;

		pthread_attr_init(&attr);
		if (cpus && cpus[i] >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(cpus[i], &set);
			pthread_attr_setaffinity_np(&attr, sizeof set, &set);
		}
		rc = pthread_create(&p->threads[i], &attr, worker, p);
		pthread_attr_destroy(&attr);
		if (rc == 0)
			pthread_setname_np(p->threads[i], "classic-pool");
		if (rc != 0) {
			classic_pool_destroy(p);
			return -1;
		}
		p->started++;
	}
	*out = p;
	return 0;
fail:
	if (p) {
		free(p->ring);
		free(p->threads);
		free(p);
	}
	return -1;
}

int classic_pool_submit(struct classic_pool *p, classic_job_fn fn, void *arg, const void *payload,
			size_t len)
{
	struct job *j;

	if (len > CLASSIC_POOL_PAYLOAD)
		return -1;
	pthread_mutex_lock(&p->lock);
	if (p->count == p->capacity) {
		p->st.full++;
		pthread_mutex_unlock(&p->lock);
		return -1;
	}
	j = &p->ring[(p->head + p->count) % p->capacity];
	j->fn = fn;
	j->arg = arg;
	j->len = len;
	if (len)
		memcpy(j->payload, payload, len);
	p->count++;
	p->st.submitted++;
	if (p->waiting > 0) {
		p->st.signals++;
		pthread_cond_signal(&p->cond);
	}
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void classic_pool_stats(struct classic_pool *p, struct classic_pool_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = p->st;
	pthread_mutex_unlock(&p->lock);
}

void classic_pool_destroy(struct classic_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->ring);
	free(p->threads);
	free(p);
}
