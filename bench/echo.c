// SPDX-License-Identifier: MIT
/*
 * bench echo: TCP echo on 127.0.0.1. The server runs in its own process
 * pinned to CPU 1; the client is this program's main thread, pinned to
 * CPU 0. Variants (the veloz server's backend is the suffix; libuv is the
 * same epoll server in both):
 *   rtt64-<backend>      one 64-byte message at a time, each round trip
 *                        timed into a histogram (rtt_p50 headline, p90,
 *                        p99, p99.9, max); ratio_vs_libuv = libuv p50 /
 *                        veloz p50 (> 1: veloz faster)
 *   stream16k-<backend>  16 KiB writes with up to 256 KiB in flight, read
 *                        back concurrently (poll); throughput in MB/s
 *                        (10^6 bytes) from the first write to the last byte
 *                        echoed; ratio_vs_libuv = veloz / libuv
 * Implementations alternate per repetition against servers that stay up
 * for the variant.
 */
#include "bench.h"
#include "bench_rt.h"
#include "bench_srv.h"
#include "baseline/uv_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <veloz.h>

#include "net/echo.h"

#define WINDOW (256u * 1024u)
#define CHUNK  16384u

struct vz_ctx {
	vz_backend_kind backend;
};

static int serve_veloz(struct bench_srv_shm *shm, void *ctx)
{
	const struct vz_ctx *c = ctx;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	vz_listener_opts o = {0};
	vz_listener *l;
	vz_runtime *rt;
	vz_config cfg;
	sigset_t set;
	int rc, sig;

	bench_srv_block(&set);
	vz_config_default(&cfg);
	/* The operator's VZ_* settings (VZ_IDLE, VZ_SPIN_US, ...) apply. */
	if ((rc = vz_config_apply_env(&cfg, NULL)) < 0) {
		fprintf(stderr, "veloz echo: VZ_* environment: %s\n", vz_strerror(rc));
		return -1;
	}
	cfg.nshards = 1;
	cfg.backend = c->backend;
	if ((rc = vz_runtime_create(&cfg, &rt)) < 0) {
		fprintf(stderr, "veloz echo: create: %s\n", vz_strerror(rc));
		return -1;
	}
	o.addr = (const struct sockaddr *)&a;
	o.addrlen = sizeof a;
	if ((rc = vz_echo_server_create(rt, &o, &l)) < 0 || (rc = vz_runtime_start(rt)) < 0) {
		fprintf(stderr, "veloz echo: %s\n", vz_strerror(rc));
		return -1;
	}
	atomic_store_explicit(&shm->port, vz_listener_port(l), memory_order_release);
	while (sigwait(&set, &sig) == 0 && sig != SIGTERM)
		;
	vz_runtime_stop(rt);
	vz_listener_destroy(l);
	vz_runtime_destroy(rt);
	return 0;
}

static void uv_ready(int port, void *ctx)
{
	atomic_store_explicit(&((struct bench_srv_shm *)ctx)->port, port, memory_order_release);
}

static int serve_libuv(struct bench_srv_shm *shm, void *ctx)
{
	(void)ctx;
	return uv_echo_serve(0, uv_ready, shm);
}

static int dial(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

struct impl {
	const char *name;
	struct bench_srv srv;
	bool stream;
	struct bench_hist *h;
	struct bench_lat lat;
};

static int rtt_rep(struct impl *im, int rep, double *value)
{
	uint64_t n = rep < 0 ? 200 : bench_size(20000, 1000);
	char buf[64], back[64];
	int fd = dial(im->srv.port);

	if (fd < 0) {
		fprintf(stderr, "echo: %s: connect: %s\n", im->name, strerror(errno));
		return -1;
	}
	memset(buf, 'e', sizeof buf);
	bench_hist_reset(im->h);
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		size_t got = 0;

		if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
			goto broken;
		while (got < sizeof back) {
			ssize_t r = read(fd, back + got, sizeof back - got);

			if (r <= 0)
				goto broken;
			got += (size_t)r;
		}
		bench_hist_record(im->h, bench_now_ns() - t0);
	}
	close(fd);
	*value = (double)bench_hist_percentile(im->h, 50);
	if (rep >= 0)
		bench_lat_add(&im->lat, im->h);
	return 0;
broken:
	fprintf(stderr, "echo: %s: connection broke\n", im->name);
	close(fd);
	return -1;
}

static int stream_rep(struct impl *im, int rep, double *value)
{
	uint64_t total = rep < 0 ? 4u << 20 : bench_size(256ull << 20, 8ull << 20);
	uint64_t sent = 0, recvd = 0, t0;
	static char out[CHUNK], in[65536];
	const char *why = "";
	int fd = dial(im->srv.port);

	if (fd < 0) {
		fprintf(stderr, "echo: %s: connect: %s\n", im->name, strerror(errno));
		return -1;
	}
	memset(out, 's', sizeof out);
	t0 = bench_now_ns();
	while (recvd < total) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		if (sent < total && sent - recvd + CHUNK <= WINDOW)
			p.events |= POLLOUT;
		int pr = poll(&p, 1, 30000);

		if (pr == 0) {
			why = "nothing for 30 s";
			goto broken;
		}
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			why = strerror(errno);
			goto broken;
		}
		if (p.revents & POLLOUT) {
			ssize_t w = send(fd, out, CHUNK, MSG_DONTWAIT);

			if (w < 0 && errno != EAGAIN) {
				why = strerror(errno);
				goto broken;
			}
			if (w > 0)
				sent += (uint64_t)w;
		}
		if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t r = recv(fd, in, sizeof in, MSG_DONTWAIT);

			if (r == 0 || (r < 0 && errno != EAGAIN)) {
				why = r == 0 ? "end of stream" : strerror(errno);
				goto broken;
			}
			if (r > 0)
				recvd += (uint64_t)r;
		}
	}
	*value = (double)total / ((double)(bench_now_ns() - t0) / 1e9) / 1e6;
	close(fd);
	return 0;
broken:
	fprintf(stderr, "echo: %s: stream broke: %s (sent %llu, received %llu)\n", im->name, why,
		(unsigned long long)sent, (unsigned long long)recvd);
	close(fd);
	return -1;
}

static int rep(void *ctx, int r, double *value)
{
	struct impl *im = ctx;

	return im->stream ? stream_rep(im, r, value) : rtt_rep(im, r, value);
}

static void run_variant(const char *variant, vz_backend_kind backend, bool stream)
{
	struct vz_ctx vctx = {.backend = backend};
	struct impl impls[2];
	struct bench_impl bi[2];
	int n = 0, iv = -1, iuv = -1;

	if (!bench_variant_enabled(variant))
		return;
	memset(impls, 0, sizeof impls);
	memset(bi, 0, sizeof bi);
	if (bench_srv_start(&impls[n].srv, "veloz", 1, serve_veloz, &vctx, NULL, 0) == 0) {
		impls[n].name = "veloz";
		iv = n++;
	}
#ifdef VZ_HAVE_LIBUV
	if (bench_srv_start(&impls[n].srv, "libuv", 1, serve_libuv, NULL, NULL, 0) == 0) {
		impls[n].name = "libuv";
		iuv = n++;
	}
#else
	bench_skip("libuv", "not installed");
#endif
	for (int i = 0; i < n; i++) {
		impls[i].stream = stream;
		impls[i].h = bench_hist_create();
		bench_lat_init(&impls[i].lat, "echo", variant, impls[i].name, "rtt", "ns");
		bi[i].impl = impls[i].name;
		bi[i].fn = rep;
		bi[i].ctx = &impls[i];
	}
	bench_pin(0, "echo client");
	bench_run_side_by_side(bi, n, bench_opts.reps, true, "echo", variant,
			       stream ? "throughput" : "rtt_p50", stream ? "MB/s" : "ns");
	for (int i = 0; i < n; i++) {
		if (bi[i].failed)
			continue;
		if (stream)
			bench_emit_series(&bi[i].s);
		else
			bench_lat_emit(&impls[i].lat);
	}
	if (iv >= 0 && iuv >= 0 && !bi[iv].failed && !bi[iuv].failed)
		bench_emit_ratio(&bi[iv].s, &bi[iuv].s, stream);
	for (int i = 0; i < n; i++) {
		bench_srv_stop(&impls[i].srv);
		bench_hist_destroy(impls[i].h);
	}
}

int main(int argc, char **argv)
{
	cpu_set_t all;

	bench_init(argc, argv, "echo");
	signal(SIGPIPE, SIG_IGN);
	/* servers are forked with their own pinning; the client pins itself
	 * per variant, after the fork (a child inherits the parent's mask
	 * and then narrows it). */
	bench_affinity_widen(&all);
	run_variant("rtt64-io_uring", VZ_BACKEND_IO_URING, false);
	bench_affinity_restore(&all);
	run_variant("rtt64-epoll", VZ_BACKEND_EPOLL, false);
	bench_affinity_restore(&all);
	run_variant("stream16k-io_uring", VZ_BACKEND_IO_URING, true);
	bench_affinity_restore(&all);
	run_variant("stream16k-epoll", VZ_BACKEND_EPOLL, true);
	return 0;
}
