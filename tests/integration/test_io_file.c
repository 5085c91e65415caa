// SPDX-License-Identifier: MIT
/*
 * Actor file I/O on every backend: an order journal's pattern (open with
 * O_CREAT, appended records at explicit offsets, fsync and fdatasync, read
 * back byte-exact through the actor, close), plus the failures: opening a
 * missing file (VZ_ENOENT with os_errno ENOENT), a stale handle after
 * close (VZ_ESTALE), a cancelled open (exactly one final event), and an
 * actor stopped with a file open in flight (no descriptor left behind).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond) VZ_TEST_CHECK(cond)
#define NREC	    64
#define RECLEN	    100

static char path[256];
static atomic_int done;

struct journal {
	vz_fd f;
	unsigned written, synced;
	char rec[NREC][RECLEN];
	char back[NREC * RECLEN];
	int phase;
};

static int journal_init(vz_actor *self, void *st, const void *arg)
{
	struct journal *j = st;
	vz_io_op op;

	(void)arg;
	for (int i = 0; i < NREC; i++)
		for (int k = 0; k < RECLEN; k++)
			j->rec[i][k] = (char)('a' + (i + k) % 26);
	/* A missing file first: a clear error, not a handle. */
	if (vz_file_open(self, "/nonexistent-veloz-dir/x", O_RDONLY, 0, &(vz_io_req){.tag = 1},
			 &op) < 0)
		return VZ_EIO;
	return 0;
}

static void journal_receive(vz_actor *self, void *st, const vz_msg *m)
{
	struct journal *j = st;
	const vz_io_event *ev = vz_io_event_of(m);

	if (!ev)
		return;
	CHECK(!(ev->flags & VZ_IO_EV_MORE));
	switch (ev->kind) {
	case VZ_IO_OPEN:
		if (ev->tag == 1) {
			CHECK(ev->res == VZ_ENOENT && ev->os_errno == ENOENT);
			CHECK(ev->accepted.id == 0);
			CHECK(vz_file_open(self, path, O_CREAT | O_RDWR | O_TRUNC, 0600,
					   &(vz_io_req){.tag = 2}, NULL) == 0);
			return;
		}
		CHECK(ev->res == 0 && ev->accepted.id != 0);
		j->f = ev->accepted;
		for (int i = 0; i < NREC; i++)
			CHECK(vz_io_write(self, j->f, j->rec[i], RECLEN, (int64_t)i * RECLEN, NULL,
					  NULL) == 0);
		break;
	case VZ_IO_WRITE:
		CHECK(ev->res == RECLEN);
		if (++j->written == NREC) {
			CHECK(vz_io_fsync(self, j->f, 0, NULL, NULL) == 0);
			CHECK(vz_io_fsync(self, j->f, 1, NULL, NULL) == 0);
		}
		break;
	case VZ_IO_FSYNC:
		CHECK(ev->res == 0);
		if (++j->synced == 2)
			CHECK(vz_io_read(self, j->f, j->back, sizeof j->back, 0, NULL, NULL) == 0);
		break;
	case VZ_IO_READ:
		CHECK(ev->res == (int)sizeof j->back);
		for (int i = 0; i < NREC; i++)
			CHECK(memcmp(j->back + i * RECLEN, j->rec[i], RECLEN) == 0);
		CHECK(vz_io_close(self, j->f) == 0);
		CHECK(vz_io_fsync(self, j->f, 0, NULL, NULL) == VZ_ESTALE);
		atomic_store(&done, 1);
		break;
	default:
		CHECK(!"unexpected event");
	}
}

static const vz_actor_spec journal_spec = {
    .name = "journal",
    .state_size = sizeof(struct journal),
    .init = journal_init,
    .receive = journal_receive,
};

static void test_journal(void **state)
{
	vz_config cfg;
	vz_runtime *rt;
	unsigned fds;
	char buf[RECLEN];
	int fd;

	(void)state;
	vz_test_reset_fails();
	atomic_store(&done, 0);
	fds = vz_test_count_entries("/proc/self/fd");
	vz_test_config(&cfg, 1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &journal_spec, NULL, NULL), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	if (!vz_test_wait_flag((volatile int *)&done, 30.0)) {
		vz_test_assert_no_fails();
		fail_msg("journal never finished");
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds);
	/* And the bytes are really in the file. */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, RECLEN, 5 * RECLEN), RECLEN);
	assert_int_equal(buf[0], 'a' + 5 % 26);
	close(fd);
}

/* ---- cancel and stop with an open in flight ------------------------------ */

static void opener_receive(vz_actor *self, void *st, const vz_msg *m)
{
	const vz_io_event *ev = vz_io_event_of(m);
	int *finals = st;

	(void)self;
	if (!ev)
		return;
	CHECK(ev->kind == VZ_IO_OPEN && !(ev->flags & VZ_IO_EV_MORE));
	/* Cancelled before it ran, or it had already opened the file. */
	CHECK(ev->res == VZ_ECANCELED || ev->res == 0);
	if (ev->res == 0)
		CHECK(vz_io_close(self, ev->accepted) == 0);
	if (++*finals == 2)
		atomic_store(&done, 1);
}

static int opener_init(vz_actor *self, void *st, const void *arg)
{
	vz_io_op op;

	(void)st;
	(void)arg;
	if (vz_file_open(self, path, O_RDONLY, 0, NULL, &op) < 0)
		return VZ_EIO;
	if (vz_io_cancel(self, op) < 0)
		return VZ_EIO;
	if (vz_file_open(self, path, O_RDONLY, 0, NULL, &op) < 0)
		return VZ_EIO;
	return vz_io_cancel(self, op);
}

static const vz_actor_spec opener_spec = {
    .name = "opener",
    .state_size = sizeof(int),
    .init = opener_init,
    .receive = opener_receive,
};

static int stopper_init(vz_actor *self, void *st, const void *arg)
{
	(void)st;
	(void)arg;
	for (int i = 0; i < 8; i++)
		if (vz_file_open(self, path, O_RDONLY, 0, NULL, NULL) < 0)
			return VZ_EIO;
	return 0;
}

static void stopper_receive(vz_actor *self, void *st, const vz_msg *m)
{
	(void)self;
	(void)st;
	(void)m;
}

static const vz_actor_spec stopper_spec = {
    .name = "stopper",
    .init = stopper_init,
    .receive = stopper_receive,
};

static void test_cancel_and_stop(void **state)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref r;
	vz_shard_stats t;
	unsigned fds;

	(void)state;
	vz_test_reset_fails();
	atomic_store(&done, 0);
	fds = vz_test_count_entries("/proc/self/fd");
	vz_test_config(&cfg, 1);
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &opener_spec, NULL, NULL), 0);
	assert_int_equal(vz_spawn(rt, 0, &stopper_spec, NULL, &r), 0);
	/* Stopped before start: its opens never reach the kernel. */
	assert_int_equal(vz_stop(rt, r), 0);
	assert_int_equal(vz_spawn(rt, 0, &stopper_spec, NULL, &r), 0);
	assert_int_equal(vz_runtime_start(rt), 0);
	/* Stopped while its opens may be in flight or done. */
	assert_int_equal(vz_stop(rt, r), 0);
	if (!vz_test_wait_flag((volatile int *)&done, 30.0)) {
		vz_test_assert_no_fails();
		fail_msg("cancelled opens never ended");
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_stats_total(rt, &t, NULL), 0);
	assert_int_equal(t.io_fds_open, 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);
	vz_test_assert_no_fails();
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_journal),
	    cmocka_unit_test(test_cancel_and_stop),
	};
	const char *tmp = getenv("TMPDIR");
	int rc;

	snprintf(path, sizeof path, "%s/veloz-io-file-%d", tmp && *tmp ? tmp : "/tmp",
		 (int)getpid());
	vz_test_watchdog(120);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	return rc;
}
