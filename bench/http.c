// SPDX-License-Identifier: MIT
/*
 * bench http: HTTP/1.1 plaintext ("Hello, World!", TechEmpower's rules)
 * under wrk on 127.0.0.1. Each server runs in its own process pinned to
 * CPU 1; wrk (one thread, 64 connections) is pinned to CPU 0. Variants:
 *   plaintext-io_uring, plaintext-epoll  one request at a time per connection
 *   pipelined16-io_uring                 16 requests per write (wrk lua script)
 * The veloz server's backend is the variant's; libuv (epoll) and nginx (one
 * worker, `return 200 "Hello, World!"`) are the same in every variant.
 * Implementations run in turn (veloz, libuv, nginx, veloz, ...) against
 * servers that stay up for the whole variant.
 *
 * Per repetition: throughput (req/s, wrk), cpu_us_per_req (server utime +
 * stime from /proc/<pid>/stat over the wrk run / requests; user_us_per_req
 * its user part: the rest is the kernel, mostly TCP), lat_p99 (wrk's,
 * per request or per pipelined batch); for veloz also
 * pool_refills_per_req (the runtime's pool refills over the run / requests
 * answered) and mallocs_per_req (malloc-family calls made by the
 * statically linked code, libveloz and the actors, counted by link-time
 * wrappers, over the run / requests: a connection actor's state is
 * allocated when it is spawned, so each run's 64 new connections show up
 * here, spread over its requests). ratio_vs_libuv_cpu_us_per_req and
 * ratio_vs_nginx_cpu_us_per_req: per-pair baseline / veloz (> 1: veloz
 * uses less CPU per request).
 *
 * Needs wrk (bench/setup); without it every figure is skipped with a note.
 */
#include "bench.h"
#include "bench_rt.h"
#include "bench_srv.h"
#include "baseline/uv_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <veloz.h>
#include <veloz/io.h>

#include "http/server.h"

#define CONNS 64

/* ---- allocation count (-Wl,--wrap=..., bench/CMakeLists.txt) -------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);

/* Any thread of the server allocates; relaxed: a count, read in a
 * snapshot taken while the load has stopped. */
static atomic_uint_fast64_t mallocs;

void *__wrap_malloc(size_t n)
{
	atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
	return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
	return __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
	return __real_realloc(p, n);
}

void *__wrap_aligned_alloc(size_t a, size_t n)
{
	atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
	return __real_aligned_alloc(a, n);
}

int __wrap_posix_memalign(void **p, size_t a, size_t n)
{
	atomic_fetch_add_explicit(&mallocs, 1, memory_order_relaxed);
	return __real_posix_memalign(p, a, n);
}

static char workdir[256];
static char wrk_path[512], nginx_path[512];

/* ---- the servers (child processes) --------------------------------------- */

struct vz_ctx {
	vz_backend_kind backend;
};

static int serve_veloz(struct bench_srv_shm *shm, void *ctx)
{
	const struct vz_ctx *c = ctx;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	vz_http_server_opts o = {0};
	vz_http_server *srv;
	vz_runtime *rt;
	vz_config cfg;
	sigset_t set;
	int rc, sig;

	bench_srv_block(&set);
	vz_config_default(&cfg);
	/* The operator's VZ_* settings (VZ_IDLE, VZ_SPIN_US, ...) apply. */
	if ((rc = vz_config_apply_env(&cfg, NULL)) < 0) {
		fprintf(stderr, "veloz server: VZ_* environment: %s\n", vz_strerror(rc));
		return -1;
	}
	cfg.nshards = 1; /* on the one CPU this process may use */
	cfg.backend = c->backend;
	if ((rc = vz_runtime_create(&cfg, &rt)) < 0) {
		fprintf(stderr, "veloz server: create: %s\n", vz_strerror(rc));
		return -1;
	}
	o.listen.addr = (const struct sockaddr *)&a;
	o.listen.addrlen = sizeof a;
	if ((rc = vz_http_server_create(rt, &o, &srv)) < 0 || (rc = vz_runtime_start(rt)) < 0) {
		fprintf(stderr, "veloz server: %s\n", vz_strerror(rc));
		return -1;
	}
	atomic_store_explicit(&shm->snapshots, 1, memory_order_relaxed);
	/* release: the parent that sees the port also sees snapshots set */
	atomic_store_explicit(&shm->port, vz_http_server_port(srv), memory_order_release);
	for (;;) {
		vz_shard_stats st;

		if (sigwait(&set, &sig) != 0 || sig == SIGTERM)
			break;
		vz_stats_total(rt, &st, NULL);
		shm->requests = vz_http_server_requests(srv, 0);
		shm->conns = vz_http_server_connections(srv, 0);
		shm->pool_refills = st.pool_refills;
		shm->mallocs = atomic_load_explicit(&mallocs, memory_order_relaxed);
		shm->io_bufs_exhausted = st.io_bufs_exhausted;
		atomic_store_explicit(&shm->done,
				      atomic_load_explicit(&shm->req, memory_order_relaxed),
				      memory_order_release);
	}
	vz_runtime_stop(rt);
	vz_http_server_destroy(srv);
	vz_runtime_destroy(rt);
	return 0;
}

static void uv_ready(int port, void *ctx)
{
	struct bench_srv_shm *shm = ctx;

	atomic_store_explicit(&shm->port, port, memory_order_release);
}

static int serve_libuv(struct bench_srv_shm *shm, void *ctx)
{
	(void)ctx;
	return uv_http_serve(0, uv_ready, shm);
}

/* A free port on 127.0.0.1 for a server we cannot ask (nginx). */
static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static int start_nginx(struct bench_srv *s)
{
	char conf[512], prefix[300];
	int port = free_port();
	FILE *f;

	snprintf(conf, sizeof conf, "%s/nginx.conf", workdir);
	snprintf(prefix, sizeof prefix, "%s/", workdir);
	f = fopen(conf, "w");
	if (!f || port < 0)
		return -1;
	/* One process that is the worker (no master), as the benchmark
	 * table says: "nginx (1 worker)". */
	fprintf(f,
		"worker_processes 1;\ndaemon off;\nmaster_process off;\n"
		"error_log %s/error.log;\npid %s/nginx.pid;\n"
		"events { worker_connections 4096; }\n"
		"http {\n access_log off;\n server_tokens off;\n"
		" keepalive_requests 100000000;\n"
		" client_body_temp_path %s/body;\n proxy_temp_path %s/proxy;\n"
		" fastcgi_temp_path %s/fcgi;\n uwsgi_temp_path %s/uwsgi;\n"
		" scgi_temp_path %s/scgi;\n"
		" server {\n  listen 127.0.0.1:%d;\n"
		"  location / { default_type text/plain; return 200 \"Hello, World!\"; }\n"
		" }\n}\n",
		workdir, workdir, workdir, workdir, workdir, workdir, workdir, port);
	fclose(f);
	{
		char *argv[] = {nginx_path, "-p", prefix, "-c", conf, NULL};

		return bench_srv_start(s, "nginx", 1, NULL, NULL, argv, port);
	}
}

/* ---- wrk ------------------------------------------------------------------ */

static int write_script(void)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof path, "%s/plaintext.lua", workdir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	/* TechEmpower's request headers; WRK_DEPTH requests per write. */
	fputs("local depth = tonumber(os.getenv('WRK_DEPTH') or '1')\n"
	      "wrk.headers['Accept'] = 'text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,"
	      "application/xml;q=0.8,*/*;q=0.7'\n"
	      "wrk.headers['Connection'] = 'keep-alive'\n"
	      "local req\n"
	      "init = function(args)\n"
	      "  local r = {}\n"
	      "  for i = 1, depth do r[i] = wrk.format(nil, '/plaintext') end\n"
	      "  req = table.concat(r)\n"
	      "end\n"
	      "request = function() return req end\n"
	      "done = function(summary, latency, requests)\n"
	      "  local e = summary.errors\n"
	      "  io.write(string.format('VZRESULT %d %d %d %d %d\\n', summary.requests,\n"
	      "    summary.duration, e.connect + e.read + e.write + e.status + e.timeout,\n"
	      "    latency:percentile(50), latency:percentile(99)))\n"
	      "end\n",
	      f);
	fclose(f);
	return 0;
}

struct wrk_result {
	uint64_t requests, duration_us, errors, p50_us, p99_us;
};

/* Run wrk pinned to CPU 0 against port; parse the script's line. */
static int run_wrk(int port, int depth, double seconds, struct wrk_result *r)
{
	char url[64], dur[16], conns[16], script[300], depth_s[8], line[256];
	int pipefd[2], status, got = 0;
	pid_t pid;
	FILE *f;

	snprintf(url, sizeof url, "http://127.0.0.1:%d/plaintext", port);
	snprintf(dur, sizeof dur, "%.0fs", seconds);
	snprintf(conns, sizeof conns, "%d", CONNS);
	snprintf(script, sizeof script, "%s/plaintext.lua", workdir);
	snprintf(depth_s, sizeof depth_s, "%d", depth);
	if (pipe(pipefd) < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		cpu_set_t set;
		char *argv[] = {wrk_path, "-t1", "-c", conns, "-d", dur, "-s", script, url, NULL};

		CPU_ZERO(&set);
		CPU_SET(bench_cpu(0), &set);
		sched_setaffinity(0, sizeof set, &set);
		setenv("WRK_DEPTH", depth_s, 1);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(wrk_path, argv);
		_exit(127);
	}
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long a, b, c, d, e;

		if (sscanf(line, "VZRESULT %llu %llu %llu %llu %llu", &a, &b, &c, &d, &e) == 5) {
			r->requests = a;
			r->duration_us = b;
			r->errors = c;
			r->p50_us = d;
			r->p99_us = e;
			got = 1;
		}
	}
	if (f)
		fclose(f);
	waitpid(pid, &status, 0);
	return got && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- one implementation ---------------------------------------------------- */

struct impl {
	const char *name;
	struct bench_srv srv;
	int depth;
	double seconds;
	struct bench_series cpu, user, p99, refills, mallocs;
	bool is_veloz;
};

static int rep(void *vctx, int r, double *value)
{
	struct impl *im = vctx;
	struct wrk_result w = {0};
	uint64_t cpu0, cpu1, user0, user1, req0 = 0, refills0 = 0, mallocs0 = 0, nreq;

	bench_srv_snapshot(&im->srv);
	req0 = im->srv.shm->requests;
	refills0 = im->srv.shm->pool_refills;
	mallocs0 = im->srv.shm->mallocs;
	cpu0 = bench_proc_cpu_ns2(im->srv.pid, &user0);
	if (run_wrk(im->srv.port, im->depth, im->seconds, &w) < 0) {
		fprintf(stderr, "http: %s: wrk failed\n", im->name);
		return -1;
	}
	cpu1 = bench_proc_cpu_ns2(im->srv.pid, &user1);
	bench_srv_snapshot(&im->srv);
	if (w.requests == 0 || w.duration_us == 0) {
		fprintf(stderr, "http: %s: no requests completed\n", im->name);
		return -1;
	}
	if (w.errors)
		fprintf(stderr, "http: %s: wrk counted %llu errors\n", im->name,
			(unsigned long long)w.errors);
	*value = (double)w.requests * 1e6 / (double)w.duration_us;
	if (r < 0)
		return 0;
	bench_series_add(&im->cpu, (double)(cpu1 - cpu0) / 1e3 / (double)w.requests);
	bench_series_add(&im->user, (double)(user1 - user0) / 1e3 / (double)w.requests);
	bench_series_add(&im->p99, (double)w.p99_us);
	if (im->is_veloz) {
		nreq = im->srv.shm->requests - req0;
		if (nreq == 0)
			nreq = 1;
		bench_series_add(&im->refills,
				 (double)(im->srv.shm->pool_refills - refills0) / (double)nreq);
		bench_series_add(&im->mallocs,
				 (double)(im->srv.shm->mallocs - mallocs0) / (double)nreq);
	}
	return 0;
}

static void run_variant(const char *variant, vz_backend_kind backend, int depth)
{
	struct vz_ctx vctx = {.backend = backend};
	struct impl impls[3];
	struct bench_impl bi[3];
	double seconds = bench_opts.quick ? 1 : 5;
	int n = 0, iv = -1;

	if (!bench_variant_enabled(variant))
		return;
	memset(impls, 0, sizeof impls);
	memset(bi, 0, sizeof bi);
	if (bench_srv_start(&impls[n].srv, "veloz", 1, serve_veloz, &vctx, NULL, 0) == 0) {
		impls[n].name = "veloz";
		impls[n].is_veloz = true;
		iv = n++;
	}
#ifdef VZ_HAVE_LIBUV
	if (bench_srv_start(&impls[n].srv, "libuv", 1, serve_libuv, NULL, NULL, 0) == 0)
		impls[n++].name = "libuv";
#else
	bench_skip("libuv", "not installed");
#endif
	if (bench_find_program("nginx", nginx_path, sizeof nginx_path)) {
		if (start_nginx(&impls[n].srv) == 0)
			impls[n++].name = "nginx";
	} else {
		bench_skip("nginx", "not installed (bench/setup installs nginx-light)");
	}
	for (int i = 0; i < n; i++) {
		impls[i].depth = depth;
		impls[i].seconds = seconds;
		bench_series_init(&impls[i].cpu, "http", variant, impls[i].name, "cpu_us_per_req",
				  "us");
		bench_series_init(&impls[i].user, "http", variant, impls[i].name, "user_us_per_req",
				  "us");
		bench_series_init(&impls[i].p99, "http", variant, impls[i].name, "lat_p99", "us");
		bench_series_init(&impls[i].refills, "http", variant, impls[i].name,
				  "pool_refills_per_req", "x");
		bench_series_init(&impls[i].mallocs, "http", variant, impls[i].name,
				  "mallocs_per_req", "x");
		bi[i].impl = impls[i].name;
		bi[i].fn = rep;
		bi[i].ctx = &impls[i];
	}
	fprintf(stderr, "http %s: wrk -t1 -c%d -d%.0fs, depth %d, %d reps\n", variant, CONNS,
		seconds, depth, bench_opts.reps);
	/* --quick (CI): no warm-up round, so the benchmark stays short */
	bench_run_side_by_side(bi, n, bench_opts.reps, !bench_opts.quick, "http", variant,
			       "throughput", "req/s");
	for (int i = 0; i < n; i++) {
		if (bi[i].failed)
			continue;
		bench_emit_series(&bi[i].s);
		bench_emit_series(&impls[i].cpu);
		bench_emit_series(&impls[i].user);
		bench_emit_series(&impls[i].p99);
		if (impls[i].is_veloz) {
			bench_emit_series(&impls[i].refills);
			bench_emit_series(&impls[i].mallocs);
		}
	}
	if (iv >= 0 && !bi[iv].failed) {
		for (int j = 0; j < n; j++) {
			char metric[64];
			struct bench_series ratio;
			int k;

			if (j == iv || bi[j].failed)
				continue;
			snprintf(metric, sizeof metric, "ratio_vs_%s_cpu_us_per_req",
				 impls[j].name);
			bench_series_init(&ratio, "http", variant, "veloz", metric, "x");
			for (k = 0; k < impls[iv].cpu.n && k < impls[j].cpu.n; k++)
				bench_series_add(&ratio, impls[j].cpu.v[k] / impls[iv].cpu.v[k]);
			bench_emit_series(&ratio);
			snprintf(metric, sizeof metric, "ratio_vs_%s_throughput", impls[j].name);
			bench_series_init(&ratio, "http", variant, "veloz", metric, "x");
			for (k = 0; k < bi[iv].s.n && k < bi[j].s.n; k++)
				bench_series_add(&ratio, bi[iv].s.v[k] / bi[j].s.v[k]);
			bench_emit_series(&ratio);
		}
	}
	for (int i = 0; i < n; i++)
		bench_srv_stop(&impls[i].srv);
}

int main(int argc, char **argv)
{
	char cmd[300];

	bench_init(argc, argv, "http");
	if (!bench_find_program("wrk", wrk_path, sizeof wrk_path)) {
		bench_skip("all", "wrk not installed (bench/setup installs it)");
		return 0;
	}
	if (bench_ncpus() < 2)
		fprintf(stderr, "http: one CPU only: server and wrk share it\n");
	snprintf(workdir, sizeof workdir, "%s/veloz-bench-http.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(workdir) || write_script() < 0) {
		perror("http: work directory");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	run_variant("plaintext-io_uring", VZ_BACKEND_IO_URING, 1);
	run_variant("plaintext-epoll", VZ_BACKEND_EPOLL, 1);
	run_variant("pipelined16-io_uring", VZ_BACKEND_IO_URING, 16);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", workdir);
	if (system(cmd) != 0)
		fprintf(stderr, "http: could not remove %s\n", workdir);
	return 0;
}
