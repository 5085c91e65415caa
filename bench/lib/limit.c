// SPDX-License-Identifier: MIT
/*
 * The physical limit for cross-core latency: one cache line bounced between
 * two spinning threads pinned to two CPUs. Thread A writes an odd sequence
 * number, thread B waits for it and answers with the next even one; one
 * round trip is two cache-line transfers. Nothing a runtime does across
 * cores can beat this, so every cross-core latency is printed next to it,
 * measured in the same run (the host may re-place virtual CPUs between
 * runs, BENCH.md).
 */
#include "bench.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>

struct pp {
	alignas(64) _Atomic uint64_t line; /* written by both sides in turn */
	alignas(64) uint64_t rounds;	   /* read-only after setup */
	int cpu_b;
	_Atomic int ready; /* B is pinned and spinning */
};

/* Thread B: answer every odd value v with v + 1 until the last round. */
static void *responder(void *arg)
{
	struct pp *p = arg;
	uint64_t want = 1;

	bench_pin(p->cpu_b, "limit responder");
	/* Pairs with the acquire load of ready in bench_limit_pingpong(): A
	 * starts timing only once B is spinning on its CPU. */
	atomic_store_explicit(&p->ready, 1, memory_order_release);
	for (uint64_t i = 0; i < p->rounds; i++, want += 2) {
		/* Acquire pairs with A's release store of `want`; nothing else
		 * is published, but acquire keeps the loop honest on weak CPUs. */
		while (atomic_load_explicit(&p->line, memory_order_acquire) != want)
			bench_cpu_relax();
		/* Release pairs with A's acquire spin on want + 1. */
		atomic_store_explicit(&p->line, want + 1, memory_order_release);
	}
	return NULL;
}

/* See bench.h. The calling thread becomes side A (pinned to cpu_a) and stays
 * pinned there afterwards. */
double bench_limit_pingpong(int cpu_a, int cpu_b, uint64_t rounds, struct bench_hist *h)
{
	static struct pp p; /* static: alignment without malloc; one user at a time */
	pthread_t t;
	uint64_t start, end, v = 1;

	atomic_store_explicit(&p.line, 0, memory_order_relaxed);
	atomic_store_explicit(&p.ready, 0, memory_order_relaxed);
	p.rounds = rounds;
	p.cpu_b = cpu_b;
	if (pthread_create(&t, NULL, responder, &p) != 0) {
		fprintf(stderr, "limit: cannot create the responder thread\n");
		return -1;
	}
	bench_pin(cpu_a, "limit initiator");
	/* Pairs with the release store of ready in responder(). */
	while (!atomic_load_explicit(&p.ready, memory_order_acquire))
		bench_cpu_relax();
	start = bench_now_ns();
	for (uint64_t i = 0; i < rounds; i++, v += 2) {
		uint64_t t0 = h ? bench_now_ns() : 0;

		/* Release/acquire pair with the responder's acquire/release. */
		atomic_store_explicit(&p.line, v, memory_order_release);
		while (atomic_load_explicit(&p.line, memory_order_acquire) != v + 1)
			bench_cpu_relax();
		if (h)
			bench_hist_record(h, bench_now_ns() - t0);
	}
	end = bench_now_ns();
	pthread_join(t, NULL);
	return rounds ? (double)(end - start) / (double)rounds : 0;
}
