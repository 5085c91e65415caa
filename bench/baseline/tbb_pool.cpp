// SPDX-License-Identifier: MIT
/*
 * The TBB baseline of the `pool` benchmark (BENCH.md): jobs run through a
 * tbb::task_group inside a tbb::task_arena whose worker threads are pinned
 * to given CPUs (a task_scheduler_observer pins each thread as it joins the
 * arena). The submitting thread only calls run(), never wait() until
 * destroy, so jobs execute on the arena's workers, as with a worker pool.
 * Built only when TBB is found (VZ_HAVE_TBB); the C side (bench/pool.c)
 * declares the three extern "C" functions below itself.
 */
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <cstring>
#include <new>
#include <vector>

extern "C" {
typedef void (*tbb_job_fn)(void *arg, const void *payload, size_t len);
struct tbb_pool;
int tbb_pool_create(unsigned nworkers, const int *cpus, struct tbb_pool **out);
int tbb_pool_submit(struct tbb_pool *p, tbb_job_fn fn, void *arg, const void *payload, size_t len);
void tbb_pool_destroy(struct tbb_pool *p);
}

namespace
{

constexpr size_t kPayload = 64;

/* Pins every thread that enters the arena to the next CPU of the list. */
class pinner : public tbb::task_scheduler_observer
{
      public:
	pinner(tbb::task_arena &a, std::vector<int> cpus)
	    : tbb::task_scheduler_observer(a), cpus_(std::move(cpus))
	{
		observe(true);
	}
	void on_scheduler_entry(bool worker) override
	{
		if (!worker || cpus_.empty())
			return;
		unsigned i = next_.fetch_add(1, std::memory_order_relaxed) % cpus_.size();
		if (cpus_[i] < 0)
			return;
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpus_[i], &set);
		pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	}

      private:
	std::vector<int> cpus_;
	std::atomic<unsigned> next_{0};
};

struct job {
	tbb_job_fn fn;
	void *arg;
	size_t len;
	unsigned char payload[kPayload];
	void operator()() const
	{
		fn(arg, payload, len);
	}
};

} // namespace

struct tbb_pool {
	/* TBB sizes its worker market from the process mask at first use; a
	 * benchmark's pinned main thread would leave it no worker at all. */
	tbb::global_control limit;
	/* One reserved slot for the submitting thread, nworkers for workers. */
	tbb::task_arena arena;
	tbb::task_group group;
	pinner pin;

	tbb_pool(unsigned nworkers, std::vector<int> cpus)
	    : limit(tbb::global_control::max_allowed_parallelism, nworkers + 1),
	      arena(static_cast<int>(nworkers) + 1, 1), pin(arena, std::move(cpus))
	{
	}
};

extern "C" int tbb_pool_create(unsigned nworkers, const int *cpus, struct tbb_pool **out)
{
	std::vector<int> c;

	for (unsigned i = 0; cpus && i < nworkers; i++)
		c.push_back(cpus[i]);
	try {
		*out = new tbb_pool(nworkers, c);
		(*out)->arena.initialize();
	} catch (...) {
		return -1;
	}
	return 0;
}

extern "C" int tbb_pool_submit(struct tbb_pool *p, tbb_job_fn fn, void *arg, const void *payload,
			       size_t len)
{
	if (len > kPayload)
		return -1;
	job j;
	j.fn = fn;
	j.arg = arg;
	j.len = len;
	if (len)
		std::memcpy(j.payload, payload, len);
	try {
		p->arena.execute([&] { p->group.run(j); });
	} catch (...) {
		return -1;
	}
	return 0;
}

extern "C" void tbb_pool_destroy(struct tbb_pool *p)
{
	if (!p)
		return;
	p->arena.execute([&] { p->group.wait(); });
	delete p;
}
