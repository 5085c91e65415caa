/* SPDX-License-Identifier: MIT */
/*
 * Network benchmarks (http, echo): each server runs in its own process,
 * forked from the benchmark and pinned to one CPU, so its CPU time can be
 * read from /proc/<pid>/stat (utime + stime, every thread) while the load
 * generator runs elsewhere. A shared page carries the bound port back and
 * lets the parent ask the server for a snapshot of its counters (SIGUSR1)
 * at the start and end of a measurement. Header-only, like bench_rt.h.
 */
#ifndef VZ_BENCH_SRV_H
#define VZ_BENCH_SRV_H

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

/* The page shared with a server process. */
struct bench_srv_shm {
	/* port: 0 while starting, the bound port once listening, -1 when the
	 * server failed. Written once by the child (release), polled by the
	 * parent (acquire): the counters' first snapshot is ordered after it. */
	atomic_int port;
	/* Snapshot handshake: the parent bumps req and signals; the child
	 * writes the counters, then stores done = req (release); the parent
	 * waits for done == req (acquire) before reading them. */
	atomic_uint req, done;
	/* Set by a server that answers SIGUSR1 (before it stores port): only
	 * those are asked; for the others SIGUSR1 would be fatal. */
	atomic_int snapshots;
	uint64_t requests;     /* served so far (veloz: answered requests) */
	uint64_t pool_refills; /* veloz: slab allocations of every shard */
	uint64_t conns;
	uint64_t io_bufs_exhausted;
	uint64_t mallocs; /* malloc-family calls counted by the server, if it counts */
};

struct bench_srv {
	pid_t pid;
	struct bench_srv_shm *shm;
	int port;
	const char *name;
};

/* The server side: run until SIGTERM; store the port when listening. */
typedef int (*bench_srv_fn)(struct bench_srv_shm *shm, void *ctx);

/* Fork a server pinned to bench_cpu(cpu_index) running fn(shm, ctx), or
 * exec'ing argv when fn is NULL (then *port_hint is the port it was told
 * to use, set in shm by the parent once it accepts connections). Waits up
 * to 10 s for the port. Returns 0 or -1 (with a message). */
static inline int bench_srv_start(struct bench_srv *s, const char *name, int cpu_index,
				  bench_srv_fn fn, void *ctx, char *const *argv, int fixed_port)
{
	uint64_t end;
	cpu_set_t set;

	memset(s, 0, sizeof *s);
	s->name = name;
	s->shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (s->shm == MAP_FAILED) {
		s->shm = NULL;
		return -1;
	}
	memset(s->shm, 0, sizeof *s->shm);
	fflush(NULL);
	s->pid = fork();
	if (s->pid < 0) {
		perror("fork");
		return -1;
	}
	if (s->pid == 0) {
		CPU_ZERO(&set);
		CPU_SET(bench_cpu(cpu_index), &set);
		sched_setaffinity(0, sizeof set, &set);
		if (!fn) {
			int devnull = open("/dev/null", O_WRONLY);

			if (devnull >= 0)
				dup2(devnull, 1);
			if (argv && argv[0])
				execvp(argv[0], argv);
			fprintf(stderr, "%s: exec: %s\n", name, strerror(errno));
			_exit(127);
		}
		if (fn(s->shm, ctx) < 0)
			atomic_store_explicit(&s->shm->port, -1, memory_order_release);
		_exit(0);
	}
	fprintf(stderr, "placement: %s server (pid %d) -> CPU %d\n", name, (int)s->pid,
		bench_cpu(cpu_index));
	end = bench_now_ns() + 10000000000ull;
	for (;;) {
		int port = atomic_load_explicit(&s->shm->port, memory_order_acquire);

		if (!fn && fixed_port) {
			/* an exec'd server: ready once it accepts a connection */
			struct sockaddr_in a = {.sin_family = AF_INET,
						.sin_port = htons((uint16_t)fixed_port),
						.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
			int fd = socket(AF_INET, SOCK_STREAM, 0);

			if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
				port = fixed_port;
			if (fd >= 0)
				close(fd);
		}
		if (port > 0) {
			s->port = port;
			return 0;
		}
		if (port < 0 || bench_now_ns() > end || waitpid(s->pid, NULL, WNOHANG) == s->pid) {
			fprintf(stderr, "%s: server did not start\n", name);
			if (waitpid(s->pid, NULL, WNOHANG) == 0) {
				kill(s->pid, SIGKILL);
				waitpid(s->pid, NULL, 0);
			}
			s->pid = 0;
			return -1;
		}
		bench_sleep_ns(5000000);
	}
}

/* CPU time (user + system, all threads) of a process in ns, from
 * /proc/<pid>/stat (clock-tick resolution, 10 ms at 100 Hz); the user part
 * in *user_ns when it is not NULL. */
static inline uint64_t bench_proc_cpu_ns2(pid_t pid, uint64_t *user_ns)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	/* fields after the command (which may hold spaces) */
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	if (user_ns)
		*user_ns = ut * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
	return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

static inline uint64_t bench_proc_cpu_ns(pid_t pid)
{
	return bench_proc_cpu_ns2(pid, NULL);
}

/* Ask the server for a snapshot of its counters (no-op for exec'd ones). */
static inline void bench_srv_snapshot(struct bench_srv *s)
{
	unsigned want;
	uint64_t end = bench_now_ns() + 2000000000ull;

	if (!s->pid || !atomic_load_explicit(&s->shm->snapshots, memory_order_relaxed))
		return;
	want = atomic_fetch_add_explicit(&s->shm->req, 1, memory_order_relaxed) + 1;
	kill(s->pid, SIGUSR1);
	while (atomic_load_explicit(&s->shm->done, memory_order_acquire) != want &&
	       bench_now_ns() < end)
		bench_sleep_ns(100000);
}

static inline void bench_srv_stop(struct bench_srv *s)
{
	uint64_t end = bench_now_ns() + 5000000000ull;

	if (s->pid) {
		kill(s->pid, SIGTERM);
		while (waitpid(s->pid, NULL, WNOHANG) == 0) {
			if (bench_now_ns() > end) {
				fprintf(stderr, "%s: server ignored SIGTERM, killed\n", s->name);
				kill(s->pid, SIGKILL);
				waitpid(s->pid, NULL, 0);
				break;
			}
			bench_sleep_ns(2000000);
		}
	}
	if (s->shm)
		munmap(s->shm, 4096);
	memset(s, 0, sizeof *s);
}

/* Block SIGTERM and SIGUSR1 in the calling thread (before the server
 * creates threads, so they inherit it) and return the set for sigwait. */
static inline void bench_srv_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Find executable `prog` in PATH (then /usr/sbin, where nginx lives and
 * which is often not in a user's PATH); its path into out. Returns 1 when
 * found, else 0. */
static inline int bench_find_program(const char *prog, char *out, size_t outlen)
{
	const char *path = getenv("PATH");

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);

		snprintf(out, outlen, "%.*s/%s", (int)n, path, prog);
		if (n && access(out, X_OK) == 0)
			return 1;
		path += n + (colon ? 1 : 0);
	}
	snprintf(out, outlen, "/usr/sbin/%s", prog);
	return access(out, X_OK) == 0;
}

#endif
