// SPDX-License-Identifier: MIT
/*
 * bench cluster: two processes through one local nats-server (started
 * here on 127.0.0.1 at a free port), veloz against the raw NATS C client
 * in both of its modes, side by side (A B C A B C ...):
 *
 *   pingpong  one 16-byte message bounced between the processes, every
 *             round trip timed into a histogram (rtt_p50, rtt_p99, ...):
 *             veloz: an actor sends to a resolved unique name, the echo
 *             actor answers with vz_reply() (to the sender proxy);
 *             raw: publish with a reply subject, the peer's callback
 *             publishes to it, the driver waits on a sync subscription.
 *   oneway    N 16-byte messages from one process to the other, msgs/s
 *             from the first send until the receiver has counted them all
 *             (it answers "done"): veloz: an actor sends in chunks of 256
 *             (yielding to its loop when the ring to the transport is
 *             full); raw: a loop of natsConnection_Publish().
 *
 * Implementations: veloz (the cluster transport: one socket write per
 * transport turn), nats-asap (natsOptions_SetSendAsap: a write per
 * message, lowest latency), nats (the default: the client's flusher thread
 * writes at most every millisecond, highest throughput).
 *
 * Each repetition starts a fresh peer process (this program re-executed as
 * "peer"); setup (process start, connect, subscribe) is not measured.
 * Processes and the server are not pinned: on 2 CPUs the five busy threads
 * share them as the scheduler decides, as they would in production.
 * Skips with a note when nats-server is not installed or libveloz was
 * built without libnats.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <veloz.h>

#include "bench.h"
#include "nats_server.h"

#ifdef VZ_HAVE_NATS /* libveloz was built with (and links) libnats */
#include <nats/nats.h>
#define HAVE_NATS 1
#endif

#define PAYLOAD 16
enum { T_PING = VZ_MSG_USER + 1, T_PONG, T_DATA, T_DONE, T_START, T_MORE };

static char url[64];
static char ns[32];

/* ---- the server ----------------------------------------------------------- */

/* bench/lib/nats_server.h, shared with tests/integration/test_cluster.c. */
static struct vz_nats_server server;

static int server_start(void)
{
	if (vz_nats_server_start(&server, 0, NULL, getenv("BENCH_CLUSTER_SERVER_LOG")) < 0)
		return -1;
	snprintf(url, sizeof url, "nats://127.0.0.1:%d", server.port);
	return 0;
}

/* ---- veloz nodes ------------------------------------------------------------ */

struct vnode {
	vz_runtime *rt;
	vz_cluster *c;
};

static int vnode_up(struct vnode *n, const char *node, const vz_actor_spec *spec, vz_ref *actor,
		    const char *name)
{
	vz_config cfg;
	vz_config_error err;
	int rc;

	vz_config_default(&cfg);
	cfg.nshards = 1;
	cfg.allow_shared_cpus = true;
	/* Sleep at once when idle: two processes and the server share 2
	 * CPUs, and a spinning shard takes the CPU the server needs to pass
	 * the message on (measured: 20 us of spin made the round trip about
	 * 1.5x longer). The transport thread does not spin either (the
	 * cluster default). BENCH_CLUSTER_IDLE / _SHARD_SPIN / _SPIN try
	 * other settings. */
	cfg.idle_policy = VZ_IDLE_SLEEP;
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "%s", url);
	snprintf(cfg.cluster.ns, sizeof cfg.cluster.ns, "%s", ns);
	snprintf(cfg.cluster.node, sizeof cfg.cluster.node, "%s", node);
	if (getenv("BENCH_CLUSTER_SPIN"))
		cfg.cluster.spin_us = (uint32_t)atoi(getenv("BENCH_CLUSTER_SPIN"));
	if (getenv("BENCH_CLUSTER_IDLE"))
		cfg.idle_policy = (vz_idle_policy)atoi(getenv("BENCH_CLUSTER_IDLE"));
	if (getenv("BENCH_CLUSTER_SHARD_SPIN"))
		cfg.idle_spin_us = (uint32_t)atoi(getenv("BENCH_CLUSTER_SHARD_SPIN"));
	if ((rc = vz_runtime_create(&cfg, &n->rt)) < 0)
		return rc;
	if ((rc = vz_cluster_create(n->rt, NULL, &n->c, &err)) < 0) {
		fprintf(stderr, "cluster: %s: %s\n", vz_errname(rc), err.message);
		vz_runtime_destroy(n->rt);
		return rc;
	}
	if ((rc = vz_spawn(n->rt, 0, spec, NULL, actor)) < 0)
		return rc;
	if (name && (rc = vz_cluster_register(n->c, *actor, name, VZ_NAME_UNIQUE)) < 0)
		return rc;
	if ((rc = vz_runtime_start(n->rt)) < 0)
		return rc;
	return vz_cluster_sync(n->c, 10000);
}

static void vnode_down(struct vnode *n)
{
	vz_runtime_stop(n->rt);
	vz_cluster_destroy(n->c);
	vz_runtime_destroy(n->rt);
}

/* Peer side: echo pings, count data and answer "done" at n. */
struct vpeer {
	uint64_t n, seen;
};

static uint64_t peer_n;

static void vpeer_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct vpeer *p = state;

	if (vz_msg_type(m) == T_PING) {
		vz_reply(self, m, T_PONG, vz_msg_data(m), vz_msg_len(m));
		return;
	}
	if (++p->seen == peer_n)
		vz_reply(self, m, T_DONE, NULL, 0);
}

static const vz_actor_spec vpeer_spec = {
    .name = "peer", .state_size = sizeof(struct vpeer), .receive = vpeer_receive};

/* Driver side. */
struct vdriver {
	vz_ref peer;
	uint64_t n, sent, got;
	uint64_t t0;
	bool oneway;
};

static struct bench_hist *drv_hist;
static atomic_int drv_done;
static uint64_t drv_t_end, drv_fails;

static void vdriver_send_chunk(vz_actor *self, struct vdriver *d)
{
	unsigned char buf[PAYLOAD] = {0};

	for (unsigned k = 0; k < 256 && d->sent < d->n; k++) {
		int rc = vz_send(self, d->peer, T_DATA, buf, sizeof buf);

		if (rc == VZ_EFULL)
			break;
		if (rc < 0) {
			drv_fails++;
			break;
		}
		d->sent++;
	}
	if (d->sent < d->n)
		vz_send(self, vz_self(self), T_MORE, NULL, 0);
}

static void vdriver_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct vdriver *d = state;
	unsigned char buf[PAYLOAD] = {0};
	uint64_t now;

	switch (vz_msg_type(m)) {
	case T_START:
		memcpy(d, vz_msg_data(m), sizeof *d);
		d->t0 = bench_now_ns();
		if (d->oneway) {
			vdriver_send_chunk(self, d);
			return;
		}
		vz_send(self, d->peer, T_PING, buf, sizeof buf);
		return;
	case T_MORE:
		vdriver_send_chunk(self, d);
		return;
	case T_DONE:
		drv_t_end = bench_now_ns();
		atomic_store(&drv_done, 1);
		return;
	case T_PONG:
		now = bench_now_ns();
		bench_hist_record(drv_hist, now - d->t0);
		if (++d->got == d->n) {
			atomic_store(&drv_done, 1);
			return;
		}
		d->t0 = bench_now_ns();
		vz_send(self, d->peer, T_PING, buf, sizeof buf);
		return;
	}
}

static const vz_actor_spec vdriver_spec = {
    .name = "driver", .state_size = sizeof(struct vdriver), .receive = vdriver_receive};

/* ---- raw NATS ----------------------------------------------------------------- */

#ifdef HAVE_NATS
static natsConnection *raw_connect(bool asap)
{
	natsOptions *o;
	natsConnection *nc = NULL;

	natsOptions_Create(&o);
	natsOptions_SetURL(o, url);
	natsOptions_SetSendAsap(o, asap);
	if (natsConnection_Connect(&nc, o) != NATS_OK)
		nc = NULL;
	natsOptions_Destroy(o);
	return nc;
}

static _Atomic uint64_t raw_seen;

static void raw_on_ping(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *cl)
{
	(void)sub;
	(void)cl;
	natsConnection_Publish(nc, natsMsg_GetReply(m), natsMsg_GetData(m),
			       natsMsg_GetDataLength(m));
	natsMsg_Destroy(m);
}

static void raw_on_data(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *cl)
{
	(void)sub;
	(void)cl;
	if (atomic_fetch_add(&raw_seen, 1) + 1 == peer_n) {
		char done[64];

		snprintf(done, sizeof done, "%s.done", ns);
		natsConnection_PublishString(nc, done, "done");
		natsConnection_Flush(nc);
	}
	natsMsg_Destroy(m);
}
#endif

/* ---- the peer process -------------------------------------------------------- */

/* argv: peer <impl> <url> <ns> <n>; fd 3 = commands in, fd 4 = 'R' out. */
static int peer_main(char **argv)
{
	const char *impl = argv[2];
	char c;

	snprintf(url, sizeof url, "%s", argv[3]);
	snprintf(ns, sizeof ns, "%s", argv[4]);
	peer_n = strtoull(argv[5], NULL, 10);
	if (!strcmp(impl, "veloz")) {
		struct vnode n;
		vz_ref a;

		if (vnode_up(&n, "peer", &vpeer_spec, &a, "bench.peer") < 0)
			return 1;
		if (write(4, "R", 1) != 1 || read(3, &c, 1) < 0)
			return 1;
		if (getenv("BENCH_CLUSTER_DEBUG")) {
			vz_cluster_stats st;
			vz_shard_stats ss;

			vz_cluster_stats_get(n.c, &st);
			vz_stats_shard(n.rt, 0, &ss);
			fprintf(
			    stderr,
			    "peer: received %llu delivered %llu gap %llu slow %llu undeliverable "
			    "%llu malformed %llu disconnects %llu handled %llu dead %llu\n",
			    (unsigned long long)st.received, (unsigned long long)st.delivered,
			    (unsigned long long)st.lost_gap, (unsigned long long)st.lost_slow,
			    (unsigned long long)st.undeliverable, (unsigned long long)st.malformed,
			    (unsigned long long)st.disconnects, (unsigned long long)ss.handled,
			    (unsigned long long)ss.dead_letters);
		}
		vnode_down(&n);
		return 0;
	}
#ifdef HAVE_NATS
	{
		natsConnection *nc = raw_connect(!strcmp(impl, "nats-asap"));
		natsSubscription *s1, *s2;
		char subj[64];

		if (!nc)
			return 1;
		snprintf(subj, sizeof subj, "%s.ping", ns);
		natsConnection_Subscribe(&s1, nc, subj, raw_on_ping, NULL);
		snprintf(subj, sizeof subj, "%s.data", ns);
		natsConnection_Subscribe(&s2, nc, subj, raw_on_data, NULL);
		natsSubscription_SetPendingLimits(s2, -1, -1);
		natsConnection_Flush(nc);
		if (write(4, "R", 1) != 1 || read(3, &c, 1) < 0)
			return 1;
		natsSubscription_Destroy(s1);
		natsSubscription_Destroy(s2);
		natsConnection_Destroy(nc);
		return 0;
	}
#else
	return 1;
#endif
}

struct peer {
	pid_t pid;
	int cmd, ready;
};

static int peer_start(struct peer *p, const char *impl, uint64_t n)
{
	int to[2], from[2];
	char num[32], r;
	struct pollfd pf;

	snprintf(num, sizeof num, "%llu", (unsigned long long)n);
	if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
		return -1;
	p->pid = fork();
	if (p->pid == 0) {
		/* dup2() onto the same number keeps O_CLOEXEC: clear it. */
		dup2(to[0], 3);
		dup2(from[1], 4);
		fcntl(3, F_SETFD, 0);
		fcntl(4, F_SETFD, 0);
		execl("/proc/self/exe", "bench_cluster", "peer", impl, url, ns, num, (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	p->cmd = to[1];
	p->ready = from[0];
	pf = (struct pollfd){.fd = p->ready, .events = POLLIN};
	if (poll(&pf, 1, 30000) != 1 || read(p->ready, &r, 1) != 1 || r != 'R')
		return -1;
	return 0;
}

static void peer_stop(struct peer *p)
{
	if (write(p->cmd, "q", 1) != 1)
		kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	close(p->cmd);
	close(p->ready);
}

/* ---- repetitions ----------------------------------------------------------- */

struct ctx {
	const char *impl;
	bool oneway;
	uint64_t n;
	struct bench_lat lat;
	struct bench_hist *hist;
	vz_cluster_stats st; /* veloz driver's, last rep */
};

static int rep_veloz(struct ctx *x, double *value)
{
	struct peer p;
	struct vnode n;
	struct vdriver d = {.n = x->n, .oneway = x->oneway};
	vz_ref drv;
	uint64_t t0;
	int rc = -1;

	if (peer_start(&p, "veloz", x->n) < 0)
		return -1;
	drv_hist = x->hist;
	bench_hist_reset(x->hist);
	atomic_store(&drv_done, 0);
	if (vnode_up(&n, "driver", &vdriver_spec, &drv, NULL) < 0)
		goto out;
	if (vz_cluster_resolve(n.c, "bench.peer", VZ_NAME_UNIQUE, &d.peer) < 0)
		goto down;
	t0 = bench_now_ns();
	vz_post(n.rt, drv, T_START, &d, sizeof d);
	for (uint64_t i = 0; !atomic_load(&drv_done); i++) {
		if (bench_now_ns() - t0 > 60000000000ull) {
			vz_cluster_stats_get(n.c, &x->st);
			fprintf(stderr,
				"cluster: veloz: timed out (driver: sent %llu published %llu "
				"lost %llu, send failures %llu, received %llu delivered %llu "
				"malformed %llu)\n",
				(unsigned long long)x->st.sent, (unsigned long long)x->st.published,
				(unsigned long long)(x->st.lost_conn + x->st.lost_no_name),
				(unsigned long long)drv_fails, (unsigned long long)x->st.received,
				(unsigned long long)x->st.delivered,
				(unsigned long long)x->st.malformed);
			goto down;
		}
		bench_sleep_ns(i < 1000 ? 10000 : 1000000);
	}
	if (x->oneway)
		*value = (double)x->n / ((double)(drv_t_end - t0) / 1e9);
	else
		*value = (double)bench_hist_percentile(x->hist, 50);
	vz_cluster_stats_get(n.c, &x->st);
	rc = 0;
down:
	vnode_down(&n);
out:
	peer_stop(&p);
	return rc;
}

#ifdef HAVE_NATS
static int rep_raw(struct ctx *x, double *value)
{
	bool asap = !strcmp(x->impl, "nats-asap");
	struct peer p;
	natsConnection *nc;
	natsSubscription *sub;
	natsMsg *m;
	char subj[64], inbox[64];
	unsigned char buf[PAYLOAD] = {0};
	uint64_t t0;
	int rc = -1;

	if (peer_start(&p, x->impl, x->n) < 0)
		return -1;
	nc = raw_connect(asap);
	if (!nc)
		goto out;
	bench_hist_reset(x->hist);
	if (x->oneway) {
		snprintf(inbox, sizeof inbox, "%s.done", ns);
		snprintf(subj, sizeof subj, "%s.data", ns);
	} else {
		snprintf(inbox, sizeof inbox, "%s.pong", ns);
		snprintf(subj, sizeof subj, "%s.ping", ns);
	}
	natsConnection_SubscribeSync(&sub, nc, inbox);
	natsConnection_Flush(nc);
	t0 = bench_now_ns();
	if (x->oneway) {
		for (uint64_t i = 0; i < x->n; i++)
			if (natsConnection_Publish(nc, subj, buf, sizeof buf) != NATS_OK)
				goto unsub;
		if (natsSubscription_NextMsg(&m, sub, 120000) != NATS_OK)
			goto unsub;
		*value = (double)x->n / ((double)(bench_now_ns() - t0) / 1e9);
		natsMsg_Destroy(m);
	} else {
		for (uint64_t i = 0; i < x->n; i++) {
			uint64_t s = bench_now_ns();

			natsConnection_PublishRequest(nc, subj, inbox, buf, sizeof buf);
			if (natsSubscription_NextMsg(&m, sub, 10000) != NATS_OK)
				goto unsub;
			bench_hist_record(x->hist, bench_now_ns() - s);
			natsMsg_Destroy(m);
		}
		*value = (double)bench_hist_percentile(x->hist, 50);
	}
	rc = 0;
unsub:
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
out:
	peer_stop(&p);
	return rc;
}
#endif

static int rep(void *arg, int r, double *value)
{
	struct ctx *x = arg;
	int rc;

#ifdef HAVE_NATS
	rc = strcmp(x->impl, "veloz") ? rep_raw(x, value) : rep_veloz(x, value);
#else
	rc = rep_veloz(x, value);
#endif
	if (rc == 0 && r >= 0 && !x->oneway)
		bench_lat_add(&x->lat, x->hist);
	return rc;
}

static void run_variant(const char *variant, bool oneway, uint64_t n)
{
	static const char *const names[] = {"veloz", "nats-asap", "nats"};
	struct ctx ctx[3];
	struct bench_impl impls[3];
	int k = 0;

	if (!bench_variant_enabled(variant))
		return;
	for (int i = 0; i < 3; i++) {
#ifndef HAVE_NATS
		if (i > 0) {
			bench_skip(names[i], "nats.c headers not installed (libnats-dev)");
			continue;
		}
#endif
		memset(&ctx[k], 0, sizeof ctx[k]);
		ctx[k].impl = names[i];
		ctx[k].oneway = oneway;
		ctx[k].n = n;
		ctx[k].hist = bench_hist_create();
		bench_lat_init(&ctx[k].lat, "cluster", variant, names[i], "rtt", "ns");
		impls[k] = (struct bench_impl){.impl = names[i], .fn = rep, .ctx = &ctx[k]};
		k++;
	}
	bench_say_once("placement: driver and peer processes and nats-server unpinned on %d CPUs",
		       bench_ncpus());
	bench_run_side_by_side(impls, k, bench_opts.reps, true, "cluster", variant,
			       oneway ? "throughput" : "rtt_p50", oneway ? "msgs/s" : "ns");
	for (int i = 0; i < k; i++) {
		if (impls[i].failed)
			continue;
		if (oneway)
			bench_emit_series(&impls[i].s);
		else
			bench_lat_emit(&ctx[i].lat);
	}
	if (k == 3 && !impls[0].failed) {
		for (int i = 1; i < 3; i++)
			if (!impls[i].failed) {
				if (oneway)
					bench_emit_ratio(&impls[0].s, &impls[i].s, true);
				else
					bench_emit_ratio(&ctx[0].lat.p50, &ctx[i].lat.p50, false);
			}
		if (oneway && ctx[0].st.sent)
			fprintf(
			    stderr,
			    "cluster: oneway: veloz driver: %llu messages in %llu socket writes "
			    "(%.1f per write)\n",
			    (unsigned long long)ctx[0].st.published,
			    (unsigned long long)ctx[0].st.flushes,
			    ctx[0].st.flushes
				? (double)ctx[0].st.published / (double)ctx[0].st.flushes
				: 0.0);
	}
	for (int i = 0; i < k; i++)
		bench_hist_destroy(ctx[i].hist);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "peer"))
		return peer_main(argv);
	bench_init(argc, argv, "cluster");
	signal(SIGPIPE, SIG_IGN);
	{
		vz_config cfg;
		vz_runtime *rt;
		vz_cluster *c;

		vz_config_default(&cfg);
		cfg.nshards = 1;
		snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "nats://127.0.0.1:1");
		if (vz_runtime_create(&cfg, &rt) == 0) {
			int rc = vz_cluster_create(rt, NULL, &c, NULL);

			vz_runtime_destroy(rt);
			if (rc == VZ_ENOSYS) {
				bench_skip("all",
					   "libveloz built without libnats (cluster support)");
				return 0;
			}
		}
	}
	if (!vz_nats_server_path()) {
		bench_skip("all", "nats-server not installed (apt-get install nats-server)");
		return 0;
	}
	if (server_start() < 0) {
		fprintf(stderr, "cluster: cannot start nats-server\n");
		return 1;
	}
	snprintf(ns, sizeof ns, "b%d", (int)getpid());
	fprintf(stderr, "cluster: nats-server at %s\n", url);
	run_variant("pingpong", false, bench_size(5000, 1000));
	run_variant("oneway", true, bench_size(1000000, 100000));
	vz_nats_server_stop(&server);
	return 0;
}
