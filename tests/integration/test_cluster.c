// SPDX-License-Identifier: MIT
/*
 * Clusters end to end (include/veloz/cluster.h), with a real nats-server
 * started on 127.0.0.1 at a random port and runtime processes of this
 * program (the test re-executes itself as "child" nodes): ping-pong
 * through names with replies to the sender proxy, in order; a queue
 * group spreading load over two processes; a broadcast reaching every
 * node; the server killed and restarted mid-stream with conservation
 * checked (sent = delivered + counted losses) and order kept; a node that
 * dies (its name disappears, sends to it are counted and dead-lettered);
 * a foreign message on a veloz subject (dropped, counted, the node goes
 * on); bad credentials (a clear error at create); the server's
 * max_payload (VZ_ETOOBIG); monitors on other nodes' actors (one DOWN
 * with the actor's reason, on unregistering, at once for no one, when
 * the node is killed with SIGKILL or leaves; vz_demonitor() idempotent).
 * Skips (77) only when nats-server is not
 * installed, or when libveloz was built without libnats.
 */
#include "testutil.h"

#include "../../bench/lib/nats_server.h"

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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef VZ_HAVE_NATS /* libveloz was built with (and links) libnats */
#include <nats/nats.h>
#define HAVE_NATS_CLIENT 1
#endif

enum {
	T_PING = VZ_MSG_USER + 1,
	T_PONG,
	T_DATA,
	T_START,
	T_FAIL,
	T_UNREG,
	T_WATCH,
	T_UNWATCH,
	T_PINGTO
};

#define CMD_FD	 3
#define REPLY_FD 4

/* ---- the server: bench/lib/nats_server.h, shared with bench/cluster.c ---- */

static struct vz_nats_server srv;
static char url[64];
static char ns[32];

/* ---- a child node: a runtime process of this program ------------------- */

/* What a child reports (one struct per 'c' command). */
struct report {
	uint64_t handled[4]; /* per actor */
	uint64_t last_seq;
	uint64_t order_errors;
	vz_cluster_stats st;
};

static _Atomic uint64_t c_handled[4], c_last, c_order_err;

struct sink {
	unsigned idx;
};

static int sink_init(vz_actor *self, void *state, const void *arg)
{
	struct sink *s = state;

	(void)self;
	s->idx = *(const unsigned *)arg;
	return 0;
}

static vz_cluster *child_cluster;
static const char *child_name;

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct sink *s = state;
	uint64_t seq = 0;

	if (vz_msg_type(m) == T_FAIL) {
		VZ_TEST_CHECK(vz_fail(self, 42, "planned") == 0);
		return;
	}
	if (vz_msg_type(m) == T_UNREG) {
		VZ_TEST_CHECK(vz_cluster_unregister(child_cluster, vz_self(self), child_name,
						    VZ_NAME_UNIQUE) == 0);
		return;
	}

	if (vz_msg_type(m) == T_PING) {
		VZ_TEST_CHECK(vz_reply(self, m, T_PONG, vz_msg_data(m), vz_msg_len(m)) == 0);
		atomic_fetch_add(&c_handled[s->idx], 1);
		return;
	}
	if (vz_msg_len(m) >= 8)
		memcpy(&seq, vz_msg_data(m), 8);
	if (seq <= atomic_load(&c_last))
		atomic_fetch_add(&c_order_err, 1);
	atomic_store(&c_last, seq);
	atomic_fetch_add(&c_handled[s->idx], 1);
}

static const vz_actor_spec sink_spec = {
    .name = "sink", .state_size = sizeof(struct sink), .init = sink_init, .receive = sink_receive};

static int parse_kind(const char *k)
{
	return k[0] == 'q' ? VZ_NAME_QUEUE : k[0] == 'b' ? VZ_NAME_BROADCAST : VZ_NAME_UNIQUE;
}

/* argv: child <url> <ns> <node> <name> <kind u|q|b> <actors> */
static int child_main(int argc, char **argv)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_cluster *c;
	vz_config_error err;
	vz_ref actors[4];
	unsigned nact;
	char cmd;
	int rc;

	if (argc < 8)
		return 2;
	nact = (unsigned)atoi(argv[7]);
	if (nact > 4)
		return 2;
	vz_test_config(&cfg, 1);
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "%s", argv[2]);
	snprintf(cfg.cluster.ns, sizeof cfg.cluster.ns, "%s", argv[3]);
	snprintf(cfg.cluster.node, sizeof cfg.cluster.node, "%s", argv[4]);
	cfg.cluster.reconnect_wait_ms = 50;
	if (vz_runtime_create(&cfg, &rt) < 0)
		return 3;
	rc = vz_cluster_create(rt, NULL, &c, &err);
	if (rc < 0) {
		fprintf(stderr, "child %s: cluster: %s: %s\n", argv[4], vz_errname(rc),
			err.message);
		return 4;
	}
	child_cluster = c;
	child_name = argv[5];
	for (unsigned i = 0; i < nact; i++) {
		vz_ref a;

		if (vz_spawn(rt, 0, &sink_spec, &i, &a) < 0)
			return 5;
		actors[i] = a;
		/* Kind 'm' (monitor tests): actor 0 has the unique name, actor
		 * 1 answers pings as "echo". */
		if (argv[6][0] == 'm')
			rc = vz_cluster_register(c, a, i ? "echo" : argv[5], VZ_NAME_UNIQUE);
		else
			rc = vz_cluster_register(c, a, argv[5], parse_kind(argv[6]));
		if (rc < 0)
			return 5;
	}
	if (vz_runtime_start(rt) < 0)
		return 6;
	rc = vz_cluster_sync(c, 10000);
	if (rc < 0) {
		vz_cluster_stats st;

		vz_cluster_stats_get(c, &st);
		fprintf(stderr,
			"child %s: sync: %s (disconnects %llu reconnects %llu received %llu "
			"malformed %llu)\n",
			argv[4], vz_errname(rc), (unsigned long long)st.disconnects,
			(unsigned long long)st.reconnects, (unsigned long long)st.received,
			(unsigned long long)st.malformed);
		return 6;
	}
	if (write(REPLY_FD, "R", 1) != 1)
		return 7;
	while (read(CMD_FD, &cmd, 1) == 1) {
		struct report r = {0};

		if (cmd == 'q')
			break;
		if (cmd == 's') {
			/* Sync: every subscription this node holds (renewed
			 * after a reconnect) has reached the server. */
			char ok = vz_cluster_sync(c, 10000) == 0 ? 'S' : 'T';

			if (write(REPLY_FD, &ok, 1) != 1)
				return 8;
			continue;
		}
		if (cmd == 'f' || cmd == 'u') {
			if (vz_post(rt, actors[0], cmd == 'f' ? T_FAIL : T_UNREG, NULL, 0) < 0)
				return 9;
			continue;
		}
		for (int i = 0; i < 4; i++)
			r.handled[i] = atomic_load(&c_handled[i]);
		r.last_seq = atomic_load(&c_last);
		r.order_errors = atomic_load(&c_order_err);
		vz_cluster_stats_get(c, &r.st);
		if (write(REPLY_FD, &r, sizeof r) != (ssize_t)sizeof r)
			return 8;
	}
	vz_runtime_stop(rt);
	vz_cluster_destroy(c);
	vz_runtime_destroy(rt);
	return 0;
}

struct child {
	pid_t pid;
	int cmd, reply;
};

static void child_start(struct child *ch, const char *node, const char *name, const char *kind,
			unsigned actors)
{
	int to[2], from[2];
	char nact[16];
	char r = 0;
	struct pollfd p;

	snprintf(nact, sizeof nact, "%u", actors);
	assert_int_equal(pipe2(to, O_CLOEXEC), 0);
	assert_int_equal(pipe2(from, O_CLOEXEC), 0);
	ch->pid = fork();
	assert_true(ch->pid >= 0);
	if (ch->pid == 0) {
		/* dup2() onto the same number keeps O_CLOEXEC: clear it. */
		dup2(to[0], CMD_FD);
		dup2(from[1], REPLY_FD);
		fcntl(CMD_FD, F_SETFD, 0);
		fcntl(REPLY_FD, F_SETFD, 0);
		execl("/proc/self/exe", "test_cluster", "child", url, ns, node, name, kind, nact,
		      (char *)NULL);
		_exit(127);
	}
	close(to[0]);
	close(from[1]);
	ch->cmd = to[1];
	ch->reply = from[0];
	p = (struct pollfd){.fd = ch->reply, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 30000), 1);
	assert_int_equal(read(ch->reply, &r, 1), 1);
	assert_int_equal(r, 'R');
}

static void child_report(struct child *ch, struct report *r)
{
	struct pollfd p = {.fd = ch->reply, .events = POLLIN};
	size_t got = 0;

	assert_int_equal(write(ch->cmd, "c", 1), 1);
	while (got < sizeof *r) {
		ssize_t n;

		assert_int_equal(poll(&p, 1, 30000), 1);
		n = read(ch->reply, (char *)r + got, sizeof *r - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
}

static uint64_t handled_sum(const struct report *r)
{
	return r->handled[0] + r->handled[1] + r->handled[2] + r->handled[3];
}

/* The child's vz_cluster_sync(): true when it returned 0. */
static bool child_sync(struct child *ch)
{
	struct pollfd p = {.fd = ch->reply, .events = POLLIN};
	char ok = 0;

	assert_int_equal(write(ch->cmd, "s", 1), 1);
	assert_int_equal(poll(&p, 1, 30000), 1);
	assert_int_equal(read(ch->reply, &ok, 1), 1);
	return ok == 'S';
}

static void child_stop(struct child *ch)
{
	int st = 0;

	if (ch->pid <= 0)
		return;
	if (write(ch->cmd, "q", 1) != 1)
		kill(ch->pid, SIGKILL);
	waitpid(ch->pid, &st, 0);
	close(ch->cmd);
	close(ch->reply);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ch->pid = 0;
}

/* ---- the parent node ---------------------------------------------------- */

static _Atomic uint64_t dl_count, dl_enoent;

static void dead_letter(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
			int reason)
{
	(void)ctx;
	(void)to;
	(void)type;
	(void)data;
	(void)len;
	atomic_fetch_add(&dl_count, 1);
	if (reason == VZ_ENOENT)
		atomic_fetch_add(&dl_enoent, 1);
}

struct node {
	vz_runtime *rt;
	vz_cluster *c;
};

static void node_up(struct node *n, const char *name)
{
	vz_config cfg;
	vz_config_error err;
	int rc;

	vz_test_config(&cfg, 2);
	cfg.dead_letter = dead_letter;
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "%s", url);
	snprintf(cfg.cluster.ns, sizeof cfg.cluster.ns, "%s", ns);
	snprintf(cfg.cluster.node, sizeof cfg.cluster.node, "%s", name);
	cfg.cluster.reconnect_wait_ms = 50;
	assert_int_equal(vz_runtime_create(&cfg, &n->rt), 0);
	rc = vz_cluster_create(n->rt, NULL, &n->c, &err);
	if (rc < 0)
		fail_msg("cluster: %s: %s", vz_errname(rc), err.message);
	assert_int_equal(vz_runtime_start(n->rt), 0);
}

static void node_down(struct node *n)
{
	assert_int_equal(vz_runtime_stop(n->rt), 0);
	assert_int_equal(vz_cluster_destroy(n->c), 0);
	assert_int_equal(vz_runtime_destroy(n->rt), 0);
}

static void stats(struct node *n, vz_cluster_stats *st)
{
	assert_int_equal(vz_cluster_stats_get(n->c, st), 0);
}

/* Wait (bounded) until the child's handled count reaches want. */
static void wait_child(struct child *ch, uint64_t want, struct report *r)
{
	for (int i = 0; i < 3000; i++) {
		child_report(ch, r);
		if (handled_sum(r) >= want)
			return;
		usleep(10000);
	}
}

/* ---- ping-pong through names ------------------------------------------- */

struct driver {
	vz_ref peer;
	uint64_t n, next, pongs, errors;
	bool pipelined;
};

static atomic_int driver_done;

static void driver_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct driver *d = state;
	uint64_t i = 0;

	if (vz_msg_type(m) == T_START) {
		memcpy(d, vz_msg_data(m), sizeof *d);
		d->next = 1;
		if (d->pipelined) {
			for (uint64_t k = 1; k <= d->n; k++)
				VZ_TEST_CHECK(vz_send(self, d->peer, T_PING, &k, sizeof k) == 0);
			return;
		}
		VZ_TEST_CHECK(vz_send(self, d->peer, T_PING, &d->next, 8) == 0);
		return;
	}
	VZ_TEST_CHECK(vz_msg_type(m) == T_PONG && vz_msg_len(m) == 8);
	/* The sender of a pong is a proxy for the remote actor. */
	VZ_TEST_CHECK(vz_ref_is_remote(vz_actor_runtime(self), vz_msg_sender(m)));
	memcpy(&i, vz_msg_data(m), 8);
	if (i != d->next)
		d->errors++; /* out of order, or a duplicate */
	d->next = i + 1;
	d->pongs++;
	if (!d->pipelined && d->pongs < d->n)
		VZ_TEST_CHECK(vz_send(self, d->peer, T_PING, &d->next, 8) == 0);
	if (d->pongs == d->n) {
		VZ_TEST_CHECK(d->errors == 0);
		atomic_store(&driver_done, 1);
	}
}

static const vz_actor_spec driver_spec = {
    .name = "driver", .state_size = sizeof(struct driver), .receive = driver_receive};

static void test_pingpong(void **state)
{
	struct child b;
	struct node a;
	vz_ref peer, drv;
	struct report r;
	vz_cluster_stats st;

	(void)state;
	child_start(&b, "b", "pong", "u", 1);
	/* The driver lives on a shard: spawned before start. */
	{
		vz_config cfg;
		vz_config_error err;

		vz_test_config(&cfg, 2);
		cfg.dead_letter = dead_letter;
		snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "%s", url);
		snprintf(cfg.cluster.ns, sizeof cfg.cluster.ns, "%s", ns);
		snprintf(cfg.cluster.node, sizeof cfg.cluster.node, "a");
		assert_int_equal(vz_runtime_create(&cfg, &a.rt), 0);
		assert_int_equal(vz_cluster_create(a.rt, NULL, &a.c, &err), 0);
		assert_int_equal(vz_spawn(a.rt, 1, &driver_spec, NULL, &drv), 0);
		assert_int_equal(vz_runtime_start(a.rt), 0);
		assert_int_equal(vz_cluster_resolve(a.c, "pong", VZ_NAME_UNIQUE, &peer), 0);
		assert_true(vz_ref_is_remote(a.rt, peer));
	}
	for (int pipelined = 0; pipelined < 2; pipelined++) {
		struct driver d = {
		    .peer = peer, .n = pipelined ? 5000 : 300, .pipelined = pipelined};

		atomic_store(&driver_done, 0);
		assert_int_equal(vz_post(a.rt, drv, T_START, &d, sizeof d), 0);
		assert_true(vz_test_wait_flag((volatile int *)&driver_done, 60));
		vz_test_assert_no_fails();
	}
	/* The transport counts a pong delivered after its post returns, and
	 * the driver's shard may handle it before that: under TSan the last
	 * one was once not yet counted when the driver was done. */
	for (int i = 0; i < 10000; i++) {
		stats(&a, &st);
		if (st.delivered >= 5300)
			break;
		usleep(1000);
	}
	assert_int_equal(st.sent, 5300);
	assert_int_equal(st.published, 5300);
	assert_int_equal(st.delivered, 5300); /* the pongs */
	assert_int_equal(st.lost_no_name + st.lost_conn + st.lost_gap + st.malformed, 0);
	child_report(&b, &r);
	assert_int_equal(handled_sum(&r), 5300);
	assert_int_equal(r.st.received, 5300);
	assert_true(r.st.flushes > 0);
	node_down(&a);
	child_stop(&b);
}

/* ---- queue groups and broadcast ---------------------------------------- */

static void post_n(struct node *a, vz_ref to, uint64_t from, uint64_t n)
{
	for (uint64_t i = from; i < from + n; i++) {
		int rc;

		while ((rc = vz_post(a->rt, to, T_DATA, &i, sizeof i)) == VZ_EFULL)
			usleep(100);
		assert_int_equal(rc, 0);
	}
}

static void test_queue_group(void **state)
{
	struct child b1, b2;
	struct node a;
	struct report r1, r2;
	vz_ref work;
	const uint64_t n = 4000;

	(void)state;
	child_start(&b1, "q1", "work", "q", 2);
	child_start(&b2, "q2", "work", "q", 2);
	node_up(&a, "qa");
	assert_int_equal(vz_cluster_resolve(a.c, "work", VZ_NAME_QUEUE, &work), 0);
	post_n(&a, work, 1, n);
	for (int i = 0; i < 3000; i++) {
		child_report(&b1, &r1);
		child_report(&b2, &r2);
		if (handled_sum(&r1) + handled_sum(&r2) >= n)
			break;
		usleep(10000);
	}
	/* Every message handled once, spread over both processes and, within
	 * each, over both actors. */
	assert_int_equal(handled_sum(&r1) + handled_sum(&r2), n);
	assert_true(handled_sum(&r1) > 0 && handled_sum(&r2) > 0);
	assert_true(r1.handled[0] > 0 && r1.handled[1] > 0);
	assert_true(r2.handled[0] > 0 && r2.handled[1] > 0);
	node_down(&a);
	child_stop(&b1);
	child_stop(&b2);
}

static void test_broadcast(void **state)
{
	struct child b1, b2;
	struct node a;
	struct report r1, r2;
	vz_ref md;
	const uint64_t n = 3000;

	(void)state;
	child_start(&b1, "m1", "md.eurusd", "b", 1);
	child_start(&b2, "m2", "md.eurusd", "b", 2);
	node_up(&a, "ma");
	assert_int_equal(vz_cluster_resolve(a.c, "md.eurusd", VZ_NAME_BROADCAST, &md), 0);
	post_n(&a, md, 1, n);
	wait_child(&b1, n, &r1);
	wait_child(&b2, 2 * n, &r2);
	assert_int_equal(handled_sum(&r1), n);
	assert_int_equal(r2.handled[0], n);
	assert_int_equal(r2.handled[1], n);
	assert_int_equal(r1.order_errors, 0);
	assert_int_equal(r1.last_seq, n);
	node_down(&a);
	child_stop(&b1);
	child_stop(&b2);
}

/* ---- a flood from an actor ---------------------------------------------- */

/* Sends n messages to peer in chunks of 256, yielding to its loop (a
 * message to itself) when the ring to the transport is full: the shard
 * path at full speed, so the transport meets a full socket buffer and
 * writes partially. */
struct flooder {
	vz_ref peer;
	uint64_t n, sent;
};

static void flooder_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct flooder *f = state;

	if (vz_msg_type(m) == T_START)
		memcpy(f, vz_msg_data(m), sizeof *f);
	for (unsigned k = 0; k < 256 && f->sent < f->n; k++) {
		uint64_t seq = f->sent + 1;
		int rc = vz_send(self, f->peer, T_DATA, &seq, sizeof seq);

		if (rc == VZ_EFULL)
			break;
		VZ_TEST_CHECK(rc == 0);
		f->sent++;
	}
	if (f->sent < f->n)
		VZ_TEST_CHECK(vz_send(self, vz_self(self), T_PING, NULL, 0) == 0);
}

static const vz_actor_spec flooder_spec = {
    .name = "flooder", .state_size = sizeof(struct flooder), .receive = flooder_receive};

/* Regression: with partial writes the transport once handed the client an
 * empty buffer on a stale EPOLLOUT, which the client takes for a closed
 * connection: it reconnected and lost what was in flight. */
static void test_flood(void **state)
{
	struct child b;
	struct node a;
	struct report r;
	vz_cluster_stats st;
	vz_config cfg;
	vz_config_error err;
	vz_ref fl;
	struct flooder f = {.n = 300000};

	(void)state;
	child_start(&b, "fb2", "flood", "u", 1);
	vz_test_config(&cfg, 2);
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "%s", url);
	snprintf(cfg.cluster.ns, sizeof cfg.cluster.ns, "%s", ns);
	snprintf(cfg.cluster.node, sizeof cfg.cluster.node, "fa2");
	cfg.cluster.out_ring_bytes = 65536;
	assert_int_equal(vz_runtime_create(&cfg, &a.rt), 0);
	assert_int_equal(vz_cluster_create(a.rt, NULL, &a.c, &err), 0);
	assert_int_equal(vz_spawn(a.rt, 0, &flooder_spec, NULL, &fl), 0);
	assert_int_equal(vz_runtime_start(a.rt), 0);
	assert_int_equal(vz_cluster_resolve(a.c, "flood", VZ_NAME_UNIQUE, &f.peer), 0);
	assert_int_equal(vz_post(a.rt, fl, T_START, &f, sizeof f), 0);
	for (int i = 0; i < 6000; i++) {
		child_report(&b, &r);
		stats(&a, &st);
		if (handled_sum(&r) >= f.n || st.disconnects)
			break;
		usleep(10000);
	}
	vz_test_assert_no_fails();
	assert_int_equal(st.disconnects, 0);
	assert_int_equal(handled_sum(&r), f.n);
	assert_int_equal(r.order_errors, 0);
	assert_int_equal(r.st.lost_gap, 0);
	node_down(&a);
	child_stop(&b);
}

/* ---- the server restarts mid-stream ------------------------------------ */

static void test_server_restart(void **state)
{
	struct child b;
	struct node a;
	struct report r;
	vz_cluster_stats st;
	vz_ref sink;
	const uint64_t n1 = 20000, n2 = 5000;
	uint64_t losses;
	int port = srv.port, tries;

	(void)state;
	child_start(&b, "rb", "sink", "u", 1);
	node_up(&a, "ra");
	assert_int_equal(vz_cluster_resolve(a.c, "sink", VZ_NAME_UNIQUE, &sink), 0);
	post_n(&a, sink, 1, n1);
	/* The receiver has seen the stream (a gap is counted from the first
	 * number a subscription saw, cluster.h), everything of part one is
	 * handed to the client, then the server dies with some of it in
	 * flight. */
	wait_child(&b, 1, &r);
	assert_true(handled_sum(&r) >= 1);
	for (int i = 0; i < 30000; i++) {
		stats(&a, &st);
		if (st.published + st.lost_conn >= n1)
			break;
		usleep(1000);
	}
	vz_nats_server_kill(&srv);
	assert_int_equal(vz_nats_server_start(&srv, port, NULL, NULL), 0);
	/* Both ends back, then part two. A reconnect is reported once the
	 * client has queued its renewed subscriptions, not once the server
	 * has them: the child's sync (a round trip behind them on its
	 * connection) says the sink's name is live again. Without it, part
	 * two could reach the server first and be refused whole (counted
	 * VZ_ENOENT at the sender), which is the contract but not what
	 * this test checks. */
	for (int i = 0; i < 3000; i++) {
		stats(&a, &st);
		child_report(&b, &r);
		if (st.reconnects >= 1 && r.st.reconnects >= 1)
			break;
		usleep(10000);
	}
	assert_true(st.reconnects >= 1 && r.st.reconnects >= 1);
	/* Once, in a TSan run of the whole suite, the receiver's sync
	 * timed out after its reconnect (nine runs of the test after it
	 * passed); the cause was not found. The marker is at-most-once
	 * like any message, so another try is legitimate; every miss is
	 * printed with the receiver's connection counters. */
	for (tries = 0; tries < 3 && !child_sync(&b); tries++) {
		child_report(&b, &r);
		print_message("restart: the receiver's sync timed out (try %d): disconnects %llu "
			      "reconnects %llu flushes %llu received %llu\n",
			      tries + 1, (unsigned long long)r.st.disconnects,
			      (unsigned long long)r.st.reconnects, (unsigned long long)r.st.flushes,
			      (unsigned long long)r.st.received);
	}
	assert_true(tries < 3);
	assert_int_equal(vz_cluster_sync(a.c, 10000), 0);
	post_n(&a, sink, n1 + 1, n2);
	for (int i = 0; i < 3000; i++) {
		child_report(&b, &r);
		if (r.last_seq == n1 + n2)
			break;
		usleep(10000);
	}
	stats(&a, &st);
	if (r.last_seq != n1 + n2)
		fail_msg("part two: last seen %llu of %llu; sender sent %llu published %llu "
			 "no-name %llu conn %llu; receiver received %llu gap %llu slow %llu "
			 "undeliverable %llu reconnects %llu/%llu",
			 (unsigned long long)r.last_seq, (unsigned long long)(n1 + n2),
			 (unsigned long long)st.sent, (unsigned long long)st.published,
			 (unsigned long long)st.lost_no_name, (unsigned long long)st.lost_conn,
			 (unsigned long long)r.st.received, (unsigned long long)r.st.lost_gap,
			 (unsigned long long)r.st.lost_slow, (unsigned long long)r.st.undeliverable,
			 (unsigned long long)st.reconnects, (unsigned long long)r.st.reconnects);
	/* Conservation: every message sent was delivered or counted lost at
	 * one end, and what arrived arrived in order. */
	losses = st.lost_no_name + st.lost_conn + r.st.lost_gap + r.st.lost_slow +
		 r.st.undeliverable + r.st.malformed;
	print_message("restart: sent %llu delivered %llu losses %llu (gap %llu conn %llu "
		      "no-name %llu)\n",
		      (unsigned long long)st.sent, (unsigned long long)handled_sum(&r),
		      (unsigned long long)losses, (unsigned long long)r.st.lost_gap,
		      (unsigned long long)st.lost_conn, (unsigned long long)st.lost_no_name);
	assert_int_equal(st.sent, n1 + n2);
	/* Nothing vanished: every message was delivered or counted lost.
	 * Counted at most once, except what cluster.h owns up to: a message
	 * the sender replayed from its reconnect buffer before the receiver
	 * had subscribed again is counted at both ends (VZ_ENOENT here, a
	 * gap there), so the excess is bounded by lost_no_name. */
	assert_true(handled_sum(&r) + losses >= n1 + n2);
	assert_true(handled_sum(&r) + losses - st.lost_no_name <= n1 + n2);
	assert_int_equal(r.order_errors, 0);
	node_down(&a);
	child_stop(&b);
}

/* ---- monitors on other nodes' actors ------------------------------------- */

/* The watcher (on the parent node) does what it is told and records what
 * comes back: monitors made, their DOWNs, pongs. Read by the test thread
 * once the flags it waits for are set. */
#define MAXW 8
static vz_monitor_ref w_mon[MAXW];
static int w_rc[MAXW], w_unrc[2];
static atomic_int w_nmon, w_ndown, w_pongs;
static vz_down w_down[MAXW];
static vz_ref w_pong_from;
static uint64_t w_down_ns[MAXW];

static void watcher_receive(vz_actor *self, void *state, const vz_msg *m)
{
	vz_ref r;
	int k;

	(void)state;
	switch (vz_msg_type(m)) {
	case T_WATCH:
		memcpy(&r, vz_msg_data(m), sizeof r);
		k = atomic_load(&w_nmon);
		w_rc[k] = vz_monitor(self, r, &w_mon[k]);
		atomic_store(&w_nmon, k + 1);
		break;
	case T_UNWATCH:
		memcpy(&k, vz_msg_data(m), sizeof k);
		/* Twice: the second finds nothing to do, and says 0 too. */
		w_unrc[0] = vz_demonitor(self, w_mon[k]);
		w_unrc[1] = vz_demonitor(self, w_mon[k]);
		break;
	case T_PINGTO: {
		uint64_t one = 1;

		memcpy(&r, vz_msg_data(m), sizeof r);
		VZ_TEST_CHECK(vz_send(self, r, T_PING, &one, sizeof one) == 0);
		break;
	}
	case T_PONG:
		w_pong_from = vz_msg_sender(m);
		atomic_fetch_add(&w_pongs, 1);
		break;
	case VZ_MSG_DOWN:
		k = atomic_load(&w_ndown);
		if (k < MAXW) {
			memcpy(&w_down[k], vz_msg_data(m), sizeof w_down[k]);
			w_down_ns[k] = vz_test_now_ns();
		}
		atomic_store(&w_ndown, k + 1);
		break;
	default:
		break;
	}
}

static const vz_actor_spec watcher_spec = {.name = "watcher", .receive = watcher_receive};

static bool wait_int(atomic_int *v, int want)
{
	for (int i = 0; i < 60000; i++) {
		if (atomic_load(v) >= want)
			return true;
		usleep(1000);
	}
	return false;
}

/* A parent node with a watcher; heartbeats every 100 ms, a node unheard
 * of for 10 s is lost. Generous, because a node is taken for lost when
 * its transport thread or the server falls that far behind (cluster.h):
 * under TSan on a loaded 2-CPU machine a transport thread has been seen
 * to fall a second behind, and at a load average near 30 one test saw no
 * heartbeat for 3 s. The tests that wait for a node to be declared lost
 * pay this timeout once each. */
static vz_ref watcher_node_up_with(struct node *n, const char *name, uint32_t timeout_ms,
				   const char *own_name, vz_ref *own)
{
	vz_config cfg;
	vz_config_error err;
	unsigned idx = 0;
	vz_ref w;

	vz_test_config(&cfg, 2);
	cfg.dead_letter = dead_letter;
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "%s", url);
	snprintf(cfg.cluster.ns, sizeof cfg.cluster.ns, "%s", ns);
	snprintf(cfg.cluster.node, sizeof cfg.cluster.node, "%s", name);
	cfg.cluster.heartbeat_ms = 100;
	cfg.cluster.node_timeout_ms = timeout_ms;
	assert_int_equal(vz_runtime_create(&cfg, &n->rt), 0);
	assert_int_equal(vz_cluster_create(n->rt, NULL, &n->c, &err), 0);
	assert_int_equal(vz_spawn(n->rt, 1, &watcher_spec, NULL, &w), 0);
	if (own_name) {
		/* An actor of this node with a name (it answers pings). */
		assert_int_equal(vz_spawn(n->rt, 0, &sink_spec, &idx, own), 0);
		assert_int_equal(vz_cluster_register(n->c, *own, own_name, VZ_NAME_UNIQUE), 0);
	}
	assert_int_equal(vz_runtime_start(n->rt), 0);
	assert_int_equal(vz_cluster_sync(n->c, 10000), 0);
	atomic_store(&w_nmon, 0);
	atomic_store(&w_ndown, 0);
	atomic_store(&w_pongs, 0);
	return w;
}

static vz_ref watcher_node_up(struct node *n, const char *name)
{
	return watcher_node_up_with(n, name, 10000, NULL, NULL);
}

static void watch(struct node *n, vz_ref w, vz_ref target)
{
	int k = atomic_load(&w_nmon);

	assert_int_equal(vz_post(n->rt, w, T_WATCH, &target, sizeof target), 0);
	assert_true(wait_int(&w_nmon, k + 1));
}

/* A ping to `to` and its pong: everything the peer node sent the watcher
 * before it answered has been handled by then (one connection, one
 * inbox, in order). */
static void round_trip(struct node *n, vz_ref w, vz_ref to)
{
	int k = atomic_load(&w_pongs);

	assert_int_equal(vz_post(n->rt, w, T_PINGTO, &to, sizeof to), 0);
	assert_true(wait_int(&w_pongs, k + 1));
}

static void child_cmd(struct child *ch, char cmd)
{
	assert_int_equal(write(ch->cmd, &cmd, 1), 1);
}

/* The watched actor fails: one DOWN with its reason, for the monitor that
 * was not taken back; vz_demonitor() is idempotent. */
static void test_monitor_remote_fail(void **state)
{
	struct child b;
	struct node a;
	vz_ref w, watched, echo;
	int zero = 0;

	(void)state;
	child_start(&b, "mb1", "watched", "m", 2);
	w = watcher_node_up(&a, "ma1");
	assert_int_equal(vz_cluster_resolve(a.c, "watched", VZ_NAME_UNIQUE, &watched), 0);
	assert_int_equal(vz_cluster_resolve(a.c, "echo", VZ_NAME_UNIQUE, &echo), 0);
	watch(&a, w, watched);
	watch(&a, w, watched);
	assert_int_equal(w_rc[0], 0);
	assert_int_equal(w_rc[1], 0);
	assert_true(w_mon[0].id != w_mon[1].id);
	assert_int_equal(vz_post(a.rt, w, T_UNWATCH, &zero, sizeof zero), 0);
	/* Both monitors have reached the watched actor (the ping to it comes
	 * behind them), and its node has answered both. */
	round_trip(&a, w, watched);
	assert_int_equal(w_unrc[0], 0);
	assert_int_equal(w_unrc[1], 0);
	child_cmd(&b, 'f');
	assert_true(wait_int(&w_ndown, 1));
	round_trip(&a, w, echo);
	vz_test_assert_no_fails();
	assert_int_equal(atomic_load(&w_ndown), 1);
	assert_int_equal(w_down[0].mon.id, w_mon[1].id);
	assert_true(vz_ref_eq(w_down[0].actor, watched));
	assert_int_equal(w_down[0].reason.kind, VZ_EXIT_FAILED);
	assert_int_equal(w_down[0].reason.code, 42);
	assert_string_equal(w_down[0].reason.text, "planned");
	node_down(&a);
	child_stop(&b);
}

/* The name is unregistered while its actor lives on: DOWN (NOPROC,
 * VZ_ENOENT). A name no one has: DOWN at once. A queue name names no one
 * actor: refused. */
static void test_monitor_remote_unregister(void **state)
{
	struct child b;
	struct node a;
	vz_ref w, watched, nobody, group;

	(void)state;
	child_start(&b, "mb2", "watched", "m", 2);
	w = watcher_node_up(&a, "ma2");
	assert_int_equal(vz_cluster_resolve(a.c, "watched", VZ_NAME_UNIQUE, &watched), 0);
	assert_int_equal(vz_cluster_resolve(a.c, "nobody", VZ_NAME_UNIQUE, &nobody), 0);
	assert_int_equal(vz_cluster_resolve(a.c, "grp", VZ_NAME_QUEUE, &group), 0);
	watch(&a, w, group);
	assert_int_equal(w_rc[0], VZ_EINVAL);
	watch(&a, w, nobody);
	assert_int_equal(w_rc[1], 0);
	assert_true(wait_int(&w_ndown, 1));
	assert_int_equal(w_down[0].mon.id, w_mon[1].id);
	assert_true(vz_ref_eq(w_down[0].actor, nobody));
	assert_int_equal(w_down[0].reason.kind, VZ_EXIT_NOPROC);
	assert_int_equal(w_down[0].reason.code, VZ_ENOENT);
	watch(&a, w, watched);
	assert_int_equal(w_rc[2], 0);
	round_trip(&a, w, watched);
	child_cmd(&b, 'u');
	assert_true(wait_int(&w_ndown, 2));
	assert_int_equal(w_down[1].mon.id, w_mon[2].id);
	assert_int_equal(w_down[1].reason.kind, VZ_EXIT_NOPROC);
	assert_int_equal(w_down[1].reason.code, VZ_ENOENT);
	assert_string_equal(w_down[1].reason.text, "name unregistered");
	vz_test_assert_no_fails();
	node_down(&a);
	child_stop(&b);
	/* The child's actor lived on and its runtime stopped cleanly; no
	 * second DOWN came for its end (the watcher was taken back). */
	assert_int_equal(atomic_load(&w_ndown), 2);
}

/* The watched node is killed (SIGKILL: no goodbye, no DOWN from its
 * actors): monitors through a name and through a sender proxy both get
 * DOWN (NOPROC, VZ_EIO) once its heartbeats stop. A node that leaves
 * cleanly ends them at once (its actors' shutdown DOWN or its goodbye). */
static void test_monitor_node_killed(void **state)
{
	struct child b, b2;
	struct node a;
	vz_ref w, watched, echo, proxy;
	uint64_t killed;

	(void)state;
	child_start(&b, "mb3", "watched", "m", 2);
	w = watcher_node_up(&a, "ma3");
	assert_int_equal(vz_cluster_resolve(a.c, "watched", VZ_NAME_UNIQUE, &watched), 0);
	assert_int_equal(vz_cluster_resolve(a.c, "echo", VZ_NAME_UNIQUE, &echo), 0);
	round_trip(&a, w, echo);
	proxy = w_pong_from; /* echo itself, as its node's proxy */
	assert_true(vz_ref_is_remote(a.rt, proxy));
	assert_false(vz_ref_eq(proxy, echo));
	watch(&a, w, watched);
	watch(&a, w, proxy);
	assert_int_equal(w_rc[0], 0);
	assert_int_equal(w_rc[1], 0);
	round_trip(&a, w, watched);
	round_trip(&a, w, proxy);
	killed = vz_test_now_ns();
	kill(b.pid, SIGKILL);
	waitpid(b.pid, NULL, 0);
	close(b.cmd);
	close(b.reply);
	assert_true(wait_int(&w_ndown, 2));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(w_down[i].reason.kind, VZ_EXIT_NOPROC);
		assert_int_equal(w_down[i].reason.code, VZ_EIO);
		print_message("node killed: DOWN %d after %.0f ms: %s\n", i,
			      (double)(w_down_ns[i] - killed) / 1e6, w_down[i].reason.text);
	}
	assert_true(w_down[0].mon.id != w_down[1].mon.id);

	/* A clean leave: the actor's shutdown DOWN, before any timeout. */
	child_start(&b2, "mb4", "watched2", "m", 2);
	assert_int_equal(vz_cluster_resolve(a.c, "watched2", VZ_NAME_UNIQUE, &watched), 0);
	watch(&a, w, watched);
	assert_int_equal(w_rc[2], 0);
	round_trip(&a, w, watched);
	child_stop(&b2);
	assert_true(wait_int(&w_ndown, 3));
	print_message("clean leave: DOWN kind %u code %d: %s\n", w_down[2].reason.kind,
		      w_down[2].reason.code, w_down[2].reason.text);
	assert_int_equal(w_down[2].mon.id, w_mon[2].id);
	assert_int_equal(w_down[2].reason.kind, VZ_EXIT_SHUTDOWN);
	vz_test_assert_no_fails();
	node_down(&a);
	assert_int_equal(atomic_load(&w_ndown), 3);
}

/* An actor of this very node watched through its name (the request goes
 * round through the server): the node hears its own heartbeats, so the
 * monitor outlives the node timeout and ends with the actor's own DOWN.
 * (It once ended "node lost" after the timeout: own heartbeats were
 * ignored.) */
static void test_monitor_own_node(void **state)
{
	struct node a;
	vz_ref w, mine, name;

	(void)state;
	w = watcher_node_up_with(&a, "ma5", 5000, "mine", &mine);
	assert_int_equal(vz_cluster_resolve(a.c, "mine", VZ_NAME_UNIQUE, &name), 0);
	watch(&a, w, name);
	assert_int_equal(w_rc[0], 0);
	round_trip(&a, w, name);
	sleep(6); /* past the node timeout: heartbeats must keep it */
	assert_int_equal(vz_stop(a.rt, mine), 0);
	assert_true(wait_int(&w_ndown, 1));
	print_message("own node: DOWN kind %u code %d: %s\n", w_down[0].reason.kind,
		      w_down[0].reason.code, w_down[0].reason.text);
	assert_int_equal(w_down[0].mon.id, w_mon[0].id);
	assert_int_equal(w_down[0].reason.kind, VZ_EXIT_STOPPED);
	vz_test_assert_no_fails();
	node_down(&a);
	assert_int_equal(atomic_load(&w_ndown), 1);
}

/* ---- failures ------------------------------------------------------------ */

static void test_node_dies(void **state)
{
	struct child b;
	struct node a;
	struct report r;
	vz_cluster_stats st;
	vz_ref victim;
	uint64_t one = 1, before = atomic_load(&dl_enoent);

	(void)state;
	child_start(&b, "vb", "victim", "u", 1);
	node_up(&a, "va");
	assert_int_equal(vz_cluster_resolve(a.c, "victim", VZ_NAME_UNIQUE, &victim), 0);
	assert_int_equal(vz_post(a.rt, victim, T_DATA, &one, 8), 0);
	wait_child(&b, 1, &r);
	assert_int_equal(handled_sum(&r), 1);
	kill(b.pid, SIGKILL);
	waitpid(b.pid, NULL, 0);
	close(b.cmd);
	close(b.reply);
	/* Its name is gone with its connection: a send finds no one, and
	 * says so (counted, dead-lettered with VZ_ENOENT). */
	for (int i = 0; i < 3000; i++) {
		one++;
		assert_int_equal(vz_post(a.rt, victim, T_DATA, &one, 8), 0);
		stats(&a, &st);
		if (st.lost_no_name)
			break;
		usleep(10000);
	}
	assert_true(st.lost_no_name >= 1);
	assert_true(atomic_load(&dl_enoent) > before);
	node_down(&a);
}

static atomic_int local_seen;

static void local_receive(vz_actor *self, void *state, const vz_msg *m)
{
	(void)self;
	(void)state;
	(void)m;
	atomic_fetch_add(&local_seen, 1);
}

static const vz_actor_spec local_spec = {.name = "local", .receive = local_receive};

/* A name of this node, resolved by this node (through the server); gone
 * once its actor stops: later sends are counted and dead-lettered. */
static void test_unregister_on_stop(void **state)
{
	vz_config cfg;
	vz_config_error err;
	struct node a;
	vz_cluster_stats st;
	vz_ref act, name;
	uint64_t one = 1;

	(void)state;
	vz_test_config(&cfg, 2);
	cfg.dead_letter = dead_letter;
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "%s", url);
	snprintf(cfg.cluster.ns, sizeof cfg.cluster.ns, "%s", ns);
	snprintf(cfg.cluster.node, sizeof cfg.cluster.node, "ua");
	assert_int_equal(vz_runtime_create(&cfg, &a.rt), 0);
	assert_int_equal(vz_cluster_create(a.rt, NULL, &a.c, &err), 0);
	assert_int_equal(vz_spawn(a.rt, 1, &local_spec, NULL, &act), 0);
	assert_int_equal(vz_cluster_register(a.c, act, "tmp", VZ_NAME_UNIQUE), 0);
	assert_int_equal(vz_cluster_register(a.c, act, "tmp", VZ_NAME_UNIQUE), VZ_EBUSY);
	assert_int_equal(vz_cluster_register(a.c, act, "q", VZ_NAME_QUEUE), 0);
	assert_int_equal(vz_cluster_unregister(a.c, act, "q", VZ_NAME_QUEUE), 0);
	assert_int_equal(vz_cluster_unregister(a.c, act, "q", VZ_NAME_QUEUE), VZ_ENOENT);
	assert_int_equal(vz_runtime_start(a.rt), 0);
	/* After start, only the actor's own shard may register it. */
	assert_int_equal(vz_cluster_register(a.c, act, "other", VZ_NAME_UNIQUE), VZ_EWRONGTHREAD);
	assert_int_equal(vz_cluster_sync(a.c, 10000), 0);
	assert_int_equal(vz_cluster_resolve(a.c, "tmp", VZ_NAME_UNIQUE, &name), 0);
	atomic_store(&local_seen, 0);
	assert_int_equal(vz_post(a.rt, name, T_DATA, &one, 8), 0);
	for (int i = 0; i < 3000 && !atomic_load(&local_seen); i++)
		usleep(1000);
	assert_int_equal(atomic_load(&local_seen), 1);
	assert_int_equal(vz_stop(a.rt, act), 0);
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(vz_post(a.rt, name, T_DATA, &one, 8), 0);
		stats(&a, &st);
		if (st.lost_no_name)
			break;
		usleep(10000);
	}
	assert_true(st.lost_no_name >= 1);
	assert_int_equal(atomic_load(&local_seen), 1);
	node_down(&a);
}

static void test_foreign_message(void **state)
{
#ifdef HAVE_NATS_CLIENT
	struct child b;
	struct node a;
	struct report r;
	natsConnection *nc;
	char subject[128];
	uint64_t one = 1;

	(void)state;
	child_start(&b, "fb", "target", "u", 1);
	snprintf(subject, sizeof subject, "vz.%s.u.target", ns);
	assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
	/* Not ours at all, a truncated header, a header claiming more bytes
	 * than sent. */
	natsConnection_PublishString(nc, subject, "hello");
	natsConnection_Publish(nc, subject, "VZC1", 4);
	{
		unsigned char h[48] = {'V', 'Z', 'C', '1', 1, 48, 1, 0, 0x01, 0x01, 0, 0, 0xff};

		natsConnection_Publish(nc, subject, h, sizeof h);
	}
	natsConnection_Flush(nc);
	natsConnection_Destroy(nc);
	node_up(&a, "fa");
	{
		vz_ref t;

		assert_int_equal(vz_cluster_resolve(a.c, "target", VZ_NAME_UNIQUE, &t), 0);
		assert_int_equal(vz_post(a.rt, t, T_DATA, &one, 8), 0);
	}
	wait_child(&b, 1, &r);
	/* Dropped and counted; the node goes on and delivers the next one. */
	assert_int_equal(r.st.malformed, 3);
	assert_int_equal(handled_sum(&r), 1);
	node_down(&a);
	child_stop(&b);
#else
	(void)state;
	skip();
#endif
}

static void test_bad_credentials(void **state)
{
	struct vz_nats_server auth = {0};
	vz_config cfg;
	vz_config_error err;
	vz_runtime *rt;
	vz_cluster *c;
	int rc;

	(void)state;
	assert_int_equal(
	    vz_nats_server_start(&auth, 0, "authorization { user: vz, password: s3cret }", NULL),
	    0);
	vz_test_config(&cfg, 1);
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "nats://vz:wrong@127.0.0.1:%d",
		 auth.port);
	cfg.cluster.max_reconnect = 1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	rc = vz_cluster_create(rt, NULL, &c, &err);
	assert_int_equal(rc, VZ_EIO);
	print_message("bad credentials: %s: %s\n", err.key, err.message);
	assert_non_null(strstr(err.message, "uthoriz"));
	assert_null(vz_runtime_cluster(rt));
	/* A credentials file that is not there: refused before connecting. */
	snprintf(cfg.cluster.credentials, sizeof cfg.cluster.credentials, "/nonexistent/x.creds");
	assert_int_equal(vz_cluster_create(rt, &cfg.cluster, &c, &err), VZ_ECONFIG);
	assert_string_equal(err.key, "cluster.credentials");
	/* The right password works. */
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "nats://vz:s3cret@127.0.0.1:%d",
		 auth.port);
	cfg.cluster.credentials[0] = '\0';
	assert_int_equal(vz_cluster_create(rt, &cfg.cluster, &c, &err), 0);
	assert_int_equal(vz_cluster_destroy(c), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_nats_server_kill(&auth);
}

static void test_max_payload(void **state)
{
	struct vz_nats_server small = {0};
	vz_config cfg;
	vz_config_error err;
	vz_runtime *rt;
	vz_cluster *c;
	vz_ref r;
	static unsigned char big[2048];
	size_t max;

	(void)state;
	assert_int_equal(vz_nats_server_start(&small, 0, "max_payload: 1024", NULL), 0);
	vz_test_config(&cfg, 1);
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "nats://127.0.0.1:%d", small.port);
	snprintf(cfg.cluster.node, sizeof cfg.cluster.node, "px");
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_cluster_create(rt, NULL, &c, &err), 0);
	max = vz_cluster_max_payload(c);
	assert_int_equal(max, 1024 - 48 - 2);
	assert_int_equal(vz_runtime_start(rt), 0);
	assert_int_equal(vz_cluster_resolve(c, "x", VZ_NAME_UNIQUE, &r), 0);
	assert_int_equal(vz_post(rt, r, T_DATA, big, max + 1), VZ_ETOOBIG);
	assert_int_equal(vz_post(rt, r, T_DATA, big, max), 0);
	/* Bad names and kinds are refused. */
	assert_int_equal(vz_cluster_resolve(c, "a..b", VZ_NAME_UNIQUE, &r), VZ_EINVAL);
	assert_int_equal(vz_cluster_resolve(c, "a b", VZ_NAME_UNIQUE, &r), VZ_EINVAL);
	assert_int_equal(vz_cluster_resolve(c, "x", (vz_name_kind)7, &r), VZ_EINVAL);
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_cluster_destroy(c), 0);
	/* After destroy a remote reference is just an unknown shard. */
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_nats_server_kill(&small);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pingpong),
	    cmocka_unit_test(test_queue_group),
	    cmocka_unit_test(test_broadcast),
	    cmocka_unit_test(test_foreign_message),
	    cmocka_unit_test(test_node_dies),
	    cmocka_unit_test(test_bad_credentials),
	    cmocka_unit_test(test_max_payload),
	    cmocka_unit_test(test_flood),
	    cmocka_unit_test(test_unregister_on_stop),
	    cmocka_unit_test(test_server_restart),
	    cmocka_unit_test(test_monitor_remote_fail),
	    cmocka_unit_test(test_monitor_remote_unregister),
	    cmocka_unit_test(test_monitor_node_killed),
	    cmocka_unit_test(test_monitor_own_node),
	};
	vz_config cfg;
	vz_runtime *rt;
	vz_cluster *c;
	int rc;

	if (argc > 1 && !strcmp(argv[1], "child"))
		return child_main(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	vz_test_config(&cfg, 1);
	snprintf(cfg.cluster.url, sizeof cfg.cluster.url, "nats://127.0.0.1:1");
	if (vz_runtime_create(&cfg, &rt) < 0)
		return 1;
	rc = vz_cluster_create(rt, NULL, &c, NULL);
	vz_runtime_destroy(rt);
	if (rc == VZ_ENOSYS) {
		printf("skipped: libveloz built without libnats (cluster support)\n");
		return 77;
	}
	if (!vz_nats_server_path()) {
		printf("skipped: nats-server is not installed (apt-get install nats-server)\n");
		return 77;
	}
	vz_test_watchdog(600);
	if (vz_nats_server_start(&srv, 0, NULL, NULL) < 0) {
		printf("cannot start nats-server\n");
		return 1;
	}
	snprintf(url, sizeof url, "nats://127.0.0.1:%d", srv.port);
	snprintf(ns, sizeof ns, "t%d", (int)getpid());
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	vz_nats_server_kill(&srv);
	return rc;
}
