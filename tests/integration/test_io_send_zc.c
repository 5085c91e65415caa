// SPDX-License-Identifier: MIT
/*
 * Large sends on every backend, with zero-copy writes where the backend has
 * them (io_uring SENDMSG_ZC: the chunks stay queued until the kernel's
 * notification; runtime/aio/NOTES.md, "Zero-copy sends"). The peer is the
 * test thread with a plain blocking socket. Cases: 8 MiB in 64 KiB sends
 * arrive intact and in order, one final event per send, and on io_uring
 * the counters show the writes went zero-copy (and that VZ_SEND_ZC_MIN=off
 * turns it off); a connection closed gracefully, and one aborted, with
 * zero-copy writes in flight; an actor stopped with them in flight while
 * its peer is not reading; a socket the kernel will not send zero-copy
 * (AF_UNIX) falls back, counted, with the data intact. After each, every
 * send chunk is back in the pool (counted while the runtime runs), every
 * descriptor is closed (/proc/self/fd), and ASan finds nothing.
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aio/aio.h" /* chunks_out, the shard's backend */

#define CHECK(cond) VZ_TEST_CHECK(cond)
#define NEVER_S	    60.0

#define PIECE	(64u * 1024u)
#define NPIECES 128u /* 8 MiB */
#define TOTAL	((size_t)PIECE * NPIECES)

enum mode { M_STREAM, M_CLOSE, M_ABORT, M_STOP, M_UNIX };

struct probe {
	vz_fd lfd;
	vz_io_op acc;
	vz_fd c;
	unsigned finals, ok;
};

static enum mode mode;
static atomic_uint port;
static atomic_int step;
static atomic_uint finals_seen, finals_ok;
static atomic_int unix_raw = -1;
static int unix_peer = -1;

static unsigned char pattern_at(size_t off)
{
	/* Depends on the piece too, so a reordered piece is caught. */
	return (unsigned char)((off >> 16) * 131u + (off & 0xffffu) * 7u + (off >> 9));
}

static void addr_lo(struct sockaddr_in *sa, unsigned p)
{
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)p);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

/* Queue all of it: NPIECES sends of PIECE bytes. */
static void send_all(vz_actor *self, vz_fd fd)
{
	static unsigned char piece[PIECE];

	CHECK(vz_io_set_sendq_limit(self, fd, 2 * TOTAL) == 0);
	for (unsigned p = 0; p < NPIECES; p++) {
		for (size_t j = 0; j < PIECE; j++)
			piece[j] = pattern_at((size_t)p * PIECE + j);
		CHECK(vz_io_send(self, fd, piece, PIECE, NULL, NULL) == 0);
	}
}

static void after_sends(vz_actor *self, struct probe *p)
{
	switch (mode) {
	case M_CLOSE:
		CHECK(vz_io_close(self, p->c) == 0);
		break;
	case M_ABORT:
		CHECK(vz_io_abort(self, p->c) == 0);
		break;
	default:
		break;
	}
	atomic_store(&step, 1);
}

static int probe_init(vz_actor *self, void *st, const void *arg)
{
	struct probe *p = st;
	struct sockaddr_in sa;
	uint32_t len = sizeof sa;

	(void)arg;
	if (mode == M_UNIX) {
		if (vz_io_adopt(self, atomic_load(&unix_raw), &p->c) < 0)
			return VZ_EIO;
		send_all(self, p->c);
		after_sends(self, p);
		return 0;
	}
	addr_lo(&sa, 0);
	if (vz_tcp_listen(self, (struct sockaddr *)&sa, sizeof sa, NULL, &p->lfd) < 0)
		return VZ_EIO;
	if (vz_io_local_addr(self, p->lfd, (struct sockaddr *)&sa, &len) < 0)
		return VZ_EIO;
	atomic_store(&port, ntohs(sa.sin_port));
	return vz_io_accept(self, p->lfd, NULL, &p->acc);
}

static void probe_receive(vz_actor *self, void *st, const vz_msg *m)
{
	struct probe *p = st;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev)
		return;
	if (ev->kind == VZ_IO_ACCEPT && ev->res == 0) {
		p->c = ev->accepted;
		send_all(self, p->c);
		after_sends(self, p);
		return;
	}
	if (ev->kind == VZ_IO_SEND) {
		CHECK(!(ev->flags & VZ_IO_EV_MORE));
		atomic_fetch_add(&finals_seen, 1);
		if (ev->res == (int)PIECE)
			atomic_fetch_add(&finals_ok, 1);
		else
			CHECK(mode == M_ABORT && ev->res == VZ_ECANCELED);
		if ((mode == M_STREAM || mode == M_UNIX) && atomic_load(&finals_seen) == NPIECES)
			CHECK(vz_io_close(self, p->c) == 0);
	}
}

static const vz_actor_spec probe_spec = {
    .name = "zc_probe",
    .state_size = sizeof(struct probe),
    .init = probe_init,
    .receive = probe_receive,
};

/* ---- harness ---------------------------------------------------------------- */

static unsigned fds_before;
static vz_ref probe_ref;

static vz_runtime *start(enum mode m)
{
	vz_config cfg;
	vz_runtime *rt;

	mode = m;
	vz_test_reset_fails();
	atomic_store(&step, 0);
	atomic_store(&finals_seen, 0);
	atomic_store(&finals_ok, 0);
	fds_before = vz_test_count_entries("/proc/self/fd");
	vz_test_config(&cfg, 1);
	if (m == M_UNIX) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		atomic_store(&unix_raw, sv[0]);
		unix_peer = sv[1];
	}
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &probe_spec, NULL, &probe_ref), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	return rt;
}

static int wait_until(bool (*cond)(vz_runtime *), vz_runtime *rt)
{
	uint64_t end = vz_test_now_ns() + (uint64_t)(NEVER_S * 1e9);

	while (!cond(rt)) {
		if (vz_test_now_ns() > end)
			return 0;
		usleep(200);
	}
	return 1;
}

static bool stepped(vz_runtime *rt)
{
	(void)rt;
	return atomic_load(&step) >= 1;
}

/* Every send's final event handled by the actor (a stopped actor gets
 * none). A chunk comes back when its send ends, and the final event is
 * queued to the actor then, to be handled on its next run: on a loaded
 * machine that run can come well after the chunk count reads 0, so the
 * events are waited for, not assumed. */
static bool all_finals(vz_runtime *rt)
{
	(void)rt;
	return atomic_load(&finals_seen) == NPIECES;
}

/* Every chunk back, every connection closed (the listener stays while
 * its actor lives) and, unless the actor was stopped, every final event
 * handled; observed while the shard still runs. */
static bool all_back(vz_runtime *rt)
{
	vz_shard_stats t;

	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	/* Relaxed: a snapshot of a counter the shard writes (aio.h). */
	return t.io_fds_open == (mode == M_STOP || mode == M_UNIX ? 0u : 1u) &&
	       atomic_load_explicit(&rt->shards[0]->aio->chunks_out, memory_order_relaxed) == 0 &&
	       (mode == M_STOP || all_finals(rt));
}

static void finish(vz_runtime *rt, vz_shard_stats *out)
{
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, out, NULL), 0);
	assert_int_equal(out->io_fds_open, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds_before);
}

static int client(void)
{
	struct sockaddr_in sa;
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(s >= 0);
	addr_lo(&sa, atomic_load(&port));
	assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
	return s;
}

/* Read to end of stream (or an error when `may_break`), checking every
 * byte against the pattern; returns the bytes read. */
static size_t read_check(int s, bool may_break)
{
	static unsigned char buf[1 << 16];
	size_t off = 0;

	for (;;) {
		ssize_t n = read(s, buf, sizeof buf);

		if (n == 0)
			break;
		if (n < 0) {
			assert_true(may_break);
			break;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != pattern_at(off + (size_t)i))
				fail_msg("byte %zu: %u, want %u", off + (size_t)i, buf[i],
					 pattern_at(off + (size_t)i));
		off += (size_t)n;
	}
	return off;
}

static bool zc_backend(vz_runtime *rt)
{
	struct vz__shard *sh = rt->shards[0];

	return sh->io && vz__io_send_zc_ok(sh->io);
}

/* ---- cases ------------------------------------------------------------------ */

static void stream_case(bool zc_on)
{
	vz_runtime *rt;
	vz_shard_stats t;
	bool zc;
	int s;

	setenv("VZ_SEND_ZC_MIN", zc_on ? "16384" : "off", 1);
	rt = start(M_STREAM);
	s = client();
	assert_int_equal(read_check(s, false), TOTAL);
	close(s);
	assert_true(wait_until(all_back, rt));
	assert_int_equal(atomic_load(&finals_seen), NPIECES);
	assert_int_equal(atomic_load(&finals_ok), NPIECES);
	zc = zc_backend(rt);
	finish(rt, &t);
	printf("# %s: io_send_zc %llu, io_send_zc_fallback %llu, writes %llu\n",
	       zc ? "zero-copy backend" : "no zero-copy", (unsigned long long)t.io_send_zc,
	       (unsigned long long)t.io_send_zc_fallback, (unsigned long long)t.io_submitted);
	if (zc && zc_on)
		assert_true(t.io_send_zc > 0);
	else
		assert_int_equal(t.io_send_zc, 0);
	assert_int_equal(t.io_send_zc_fallback, 0);
	unsetenv("VZ_SEND_ZC_MIN");
}

static void test_stream_intact(void **state)
{
	(void)state;
	stream_case(true);
}

static void test_stream_zc_off(void **state)
{
	(void)state;
	stream_case(false);
}

static void test_close_in_flight(void **state)
{
	vz_runtime *rt;
	vz_shard_stats t;
	int s;

	(void)state;
	setenv("VZ_SEND_ZC_MIN", "16384", 1);
	rt = start(M_CLOSE);
	s = client();
	assert_true(wait_until(stepped, rt));
	/* Graceful: every byte, then end of stream. */
	assert_int_equal(read_check(s, false), TOTAL);
	close(s);
	assert_true(wait_until(all_back, rt));
	assert_int_equal(atomic_load(&finals_ok), NPIECES);
	finish(rt, &t);
	unsetenv("VZ_SEND_ZC_MIN");
}

static void test_abort_in_flight(void **state)
{
	vz_runtime *rt;
	vz_shard_stats t;
	int s;

	(void)state;
	setenv("VZ_SEND_ZC_MIN", "16384", 1);
	rt = start(M_ABORT);
	s = client();
	assert_true(wait_until(stepped, rt));
	/* A prefix of the stream, then a reset. */
	assert_true(read_check(s, true) <= TOTAL);
	close(s);
	assert_true(wait_until(all_back, rt));
	/* One final event per send, written ones or cancelled ones. */
	assert_int_equal(atomic_load(&finals_seen), NPIECES);
	finish(rt, &t);
	unsetenv("VZ_SEND_ZC_MIN");
}

static void test_stop_in_flight(void **state)
{
	vz_runtime *rt;
	vz_shard_stats t;
	int s;

	(void)state;
	setenv("VZ_SEND_ZC_MIN", "16384", 1);
	rt = start(M_STOP);
	s = client();
	assert_true(wait_until(stepped, rt));
	/* The peer has not read a byte: writes are stuck in the kernel. */
	assert_int_equal(vz_stop(rt, probe_ref), 0);
	assert_true(read_check(s, true) <= TOTAL);
	close(s);
	assert_true(wait_until(all_back, rt));
	finish(rt, &t);
	unsetenv("VZ_SEND_ZC_MIN");
}

/* Stop the runtime with zero-copy writes still in the kernel (the peer
 * has not read a byte, so the closed socket still holds pages of the
 * chunks): once the peer resets, destroy must reap the notifications
 * before the pools go. */
static void test_destroy_in_flight(void **state)
{
	vz_runtime *rt;
	vz_shard_stats t;
	int s;

	(void)state;
	setenv("VZ_SEND_ZC_MIN", "16384", 1);
	rt = start(M_STOP);
	s = client();
	assert_true(wait_until(stepped, rt));
	/* Reset from our side first, so the actor's socket lets go of its
	 * queued bytes without us reading them. */
	{
		struct linger lg = {.l_onoff = 1, .l_linger = 0};

		assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	close(s);
	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	assert_int_equal(t.io_fds_open, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds_before);
	unsetenv("VZ_SEND_ZC_MIN");
}

static void test_unix_falls_back(void **state)
{
	vz_runtime *rt;
	vz_shard_stats t;
	int peer;
	bool zc;

	(void)state;
	setenv("VZ_SEND_ZC_MIN", "16384", 1);
	rt = start(M_UNIX);
	peer = unix_peer;
	assert_true(wait_until(stepped, rt));
	assert_int_equal(read_check(peer, true), TOTAL);
	close(peer);
	assert_true(wait_until(all_finals, rt));
	assert_int_equal(atomic_load(&finals_ok), NPIECES);
	zc = zc_backend(rt);
	finish(rt, &t);
	printf("# unix: io_send_zc %llu, io_send_zc_fallback %llu\n",
	       (unsigned long long)t.io_send_zc, (unsigned long long)t.io_send_zc_fallback);
	if (zc) {
		/* Refused once, then that socket is sent plain. */
		assert_int_equal(t.io_send_zc, 1);
		assert_int_equal(t.io_send_zc_fallback, 1);
	} else {
		assert_int_equal(t.io_send_zc, 0);
	}
	unsetenv("VZ_SEND_ZC_MIN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stream_intact),   cmocka_unit_test(test_stream_zc_off),
	    cmocka_unit_test(test_close_in_flight), cmocka_unit_test(test_abort_in_flight),
	    cmocka_unit_test(test_stop_in_flight),  cmocka_unit_test(test_destroy_in_flight),
	    cmocka_unit_test(test_unix_falls_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
