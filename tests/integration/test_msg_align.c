// SPDX-License-Identifier: MIT
/*
 * message.h promises that vz_msg_data() is aligned to VZ_MSG_ALIGN (16)
 * bytes on every path, so receivers may read a struct in place; pool.h
 * promises the same for a job's payload copy and 8 bytes for the result
 * bytes after a vz_pool_done. This test sends payloads of every size class
 * down every path and checks each address:
 *
 *   local send, cross-shard send, vz_post() from a shard thread, vz_post()
 *   from a foreign thread (the target's foreign pool), timer expiries,
 *   dead letters (the hook's data), pool jobs (payload and result buffer as
 *   the worker sees them), pool completions (the message and its result).
 *
 * Payloads of at least sizeof(struct probe) are also read in place through
 * a 16-byte-aligned type, which UBSan's alignment check would flag if the
 * promise broke. Checks made on shard and worker threads are counted and
 * asserted by the test thread.
 */
#include "testutil.h"

#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

enum path {
	P_LOCAL,
	P_REMOTE,
	P_SHARD_POST,
	P_FOREIGN,
	P_TIMER,
	P_DEAD,
	P_JOB_PAYLOAD,
	P_JOB_RESULT,
	P_POOL_DONE,
	P_POOL_RESULT,
	NPATHS
};

static const char *const path_name[NPATHS] = {
    "local send",	    "cross-shard send",
    "vz_post from a shard", "vz_post from a foreign thread",
    "timer expiry",	    "dead letter",
    "pool job payload",	    "pool job result buffer",
    "pool completion",	    "pool completion result",
};

/* Message types: one per path that is a message. */
#define MSG_BASE (VZ_MSG_USER + 100)
enum { MSG_GO = VZ_MSG_USER };

/* Sizes that land in every message size class (header 48 + len: 64 up to
 * 32 KiB blocks) and at the edges of the copy fast paths. */
static const uint32_t sizes[] = {0, 1, 15, 16, 17, 100, 1000, 2000, 4000, 9000, VZ_MSG_MAX_PAYLOAD};
#define NSIZES (sizeof sizes / sizeof sizes[0])
/* Job payloads up to the pool's own limit, and results of several sizes. */
static const uint32_t job_sizes[] = {0, 1, 15, 16, 17, 100, VZ_POOL_MAX_PAYLOAD};
#define NJOBS (sizeof job_sizes / sizeof job_sizes[0])

/* What a payload of at least 16 bytes starts with, read in place. */
struct probe {
	alignas(16) uint64_t len; /* the payload's length */
	uint64_t magic;
};
#define MAGIC 0x616c69676e656421ull

static atomic_ulong seen[NPATHS], misaligned[NPATHS], bad_content, call_errors;
static atomic_int pool_missing;

static void check(enum path p, const void *ptr, uintptr_t align)
{
	atomic_fetch_add(&seen[p], 1);
	if ((uintptr_t)ptr % align)
		atomic_fetch_add(&misaligned[p], 1);
}

/* In place, through the aligned type; only after the address check. */
static void check_probe(const void *data, size_t len)
{
	const struct probe *pr = data;

	if (len < sizeof *pr || (uintptr_t)data % alignof(struct probe))
		return;
	if (pr->len != len || pr->magic != MAGIC)
		atomic_fetch_add(&bad_content, 1);
}

/* One source buffer per sending thread (the driver's shard and the test
 * thread fill theirs at the same time). */
static unsigned char driver_buf[VZ_MSG_MAX_PAYLOAD], main_buf[VZ_MSG_MAX_PAYLOAD];

static unsigned char *fill_payload(unsigned char *buf, size_t len)
{
	struct probe pr = {.len = len, .magic = MAGIC};

	if (len >= sizeof pr)
		memcpy(buf, &pr, sizeof pr);
	return buf;
}

static void dead_hook(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len,
		      int reason)
{
	(void)ctx;
	(void)to;
	(void)reason;
	if (type == MSG_BASE + P_DEAD) {
		check(P_DEAD, data, VZ_MSG_ALIGN);
		check_probe(data, len);
	}
}

/* ---- the sink: checks every message it gets ----------------------------- */

static void sink_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint32_t type = vz_msg_type(m);

	(void)self;
	(void)state;
	if (type < MSG_BASE || type >= MSG_BASE + NPATHS)
		return;
	check((enum path)(type - MSG_BASE), vz_msg_data(m), VZ_MSG_ALIGN);
	check_probe(vz_msg_data(m), vz_msg_len(m));
}

static const vz_actor_spec sink_spec = {.name = "sink", .receive = sink_receive};

/* ---- the driver: sends, arms timers, submits jobs ----------------------- */

/* A refused call on a shard thread: counted, asserted by the test thread. */
#define CALL(expr)                                                                                 \
	do {                                                                                       \
		if ((expr) != 0)                                                                   \
			atomic_fetch_add(&call_errors, 1);                                         \
	} while (0)

struct go {
	vz_ref local, remote, dead;
};

static int job(void *arg, const void *payload, size_t payload_len, void *result, size_t *result_len)
{
	size_t want = (size_t)(uintptr_t)arg;

	check(P_JOB_PAYLOAD, payload, VZ_MSG_ALIGN);
	check_probe(payload, payload_len);
	check(P_JOB_RESULT, result, 8);
	if (want > *result_len)
		want = *result_len;
	memset(result, 0x5a, want);
	*result_len = want;
	return 0;
}

static void driver_receive(vz_actor *self, void *state, const vz_msg *m)
{
	uint32_t type = vz_msg_type(m);
	vz_runtime *rt = vz_actor_runtime(self);
	int rc;

	(void)state;
	if (type == MSG_GO) {
		struct go g;

		memcpy(&g, vz_msg_data(m), sizeof g);
		for (size_t i = 0; i < NSIZES; i++) {
			unsigned char *payload_buf = fill_payload(driver_buf, sizes[i]);

			CALL(vz_send(self, g.local, MSG_BASE + P_LOCAL, payload_buf, sizes[i]));
			CALL(vz_send(self, g.remote, MSG_BASE + P_REMOTE, payload_buf, sizes[i]));
			CALL(vz_post(rt, g.local, MSG_BASE + P_SHARD_POST, payload_buf, sizes[i]));
			CALL(vz_post(rt, g.remote, MSG_BASE + P_SHARD_POST, payload_buf, sizes[i]));
			/* stale on another shard: accepted, dead-lettered there */
			CALL(vz_send(self, g.dead, MSG_BASE + P_DEAD, payload_buf, sizes[i]));
		}
		CALL(vz_timer_arm(self, 1000000, 0, 1, &(vz_timer){0}));
		CALL(vz_timer_arm(self, 2000000, 0, 2, &(vz_timer){0}));
		for (size_t i = 0; i < NJOBS; i++) {
			/* results of 0, 1, 8, ... bytes, the last one the largest */
			size_t rlen = i + 1 == NJOBS ? VZ_POOL_MAX_RESULT : (size_t)1 << (2 * i);
			vz_job j = {.fn = job, .arg = (void *)(uintptr_t)rlen};

			j.payload = fill_payload(driver_buf, job_sizes[i]);
			j.payload_len = job_sizes[i];
			rc = vz_pool_submit(self, &j, NULL);
			if (rc == VZ_ENOSYS)
				atomic_store(&pool_missing, 1);
			else
				CALL(rc);
		}
		return;
	}
	if (type == VZ_MSG_TIMER) {
		check(P_TIMER, vz_msg_data(m), VZ_MSG_ALIGN);
		/* in place: the payload is a vz_timer_event */
		if (((const vz_timer_event *)vz_msg_data(m))->tag == 0)
			atomic_fetch_add(&bad_content, 1);
		return;
	}
	if (type == VZ_MSG_POOL_DONE) {
		vz_pool_done d;
		const void *res;

		check(P_POOL_DONE, vz_msg_data(m), VZ_MSG_ALIGN);
		if (vz_pool_done_read(m, &d, &res) != 0 || d.status != 0) {
			atomic_fetch_add(&bad_content, 1);
			return;
		}
		/* in place: the header through its own type */
		if (((const vz_pool_done *)vz_msg_data(m))->result_len != d.result_len)
			atomic_fetch_add(&bad_content, 1);
		if (d.result_len > 0)
			check(P_POOL_RESULT, res, 8);
	}
}

static const vz_actor_spec driver_spec = {.name = "driver", .receive = driver_receive};

/* ---- the test ------------------------------------------------------------ */

static void wait_seen(enum path p, unsigned long want)
{
	uint64_t end = vz_test_now_ns() + 60ull * 1000000000u;

	while (atomic_load(&seen[p]) < want) {
		if (vz_test_now_ns() > end)
			fail_msg("%s: waited 60 s for %lu messages, have %lu", path_name[p], want,
				 atomic_load(&seen[p]));
		sched_yield();
	}
}

static void test_every_path_aligned(void **st)
{
	vz_config cfg;
	vz_runtime *rt;
	vz_ref driver, local, remote, dead;
	struct go g;

	(void)st;
	vz_test_config(&cfg, 2);
	cfg.dead_letter = dead_hook;
	cfg.pool.share_shard_cpus = true;
	cfg.pool.workers_per_node = 1;
	assert_int_equal(vz_runtime_create(&cfg, &rt), 0);
	assert_int_equal(vz_spawn(rt, 0, &driver_spec, NULL, &driver), 0);
	assert_int_equal(vz_spawn(rt, 0, &sink_spec, NULL, &local), 0);
	assert_int_equal(vz_spawn(rt, 1, &sink_spec, NULL, &remote), 0);
	assert_int_equal(vz_spawn(rt, 1, &sink_spec, NULL, &dead), 0);
	assert_int_equal(vz_stop(rt, dead), 0); /* before start: immediate */
	assert_int_equal(vz_runtime_start(rt), 0);

	g = (struct go){local, remote, dead};
	assert_int_equal(vz_post(rt, driver, MSG_GO, &g, sizeof g), 0);
	for (size_t i = 0; i < NSIZES; i++) {
		unsigned char *payload_buf = fill_payload(main_buf, sizes[i]);

		assert_int_equal(vz_post(rt, local, MSG_BASE + P_FOREIGN, payload_buf, sizes[i]),
				 0);
		assert_int_equal(vz_post(rt, remote, MSG_BASE + P_FOREIGN, payload_buf, sizes[i]),
				 0);
		assert_int_equal(vz_post(rt, dead, MSG_BASE + P_DEAD, payload_buf, sizes[i]), 0);
	}

	/* The local sink runs after the driver's handler on the same shard,
	 * so once it has everything, any refused call is already counted. */
	wait_seen(P_LOCAL, NSIZES);
	assert_int_equal(atomic_load(&call_errors), 0);
	wait_seen(P_REMOTE, NSIZES);
	wait_seen(P_SHARD_POST, 2 * NSIZES);
	wait_seen(P_FOREIGN, 2 * NSIZES);
	wait_seen(P_DEAD, 2 * NSIZES); /* from the driver and from this thread */
	wait_seen(P_TIMER, 2);
	if (!atomic_load(&pool_missing)) {
		wait_seen(P_POOL_DONE, NJOBS);
		wait_seen(P_JOB_PAYLOAD, NJOBS);
		wait_seen(P_POOL_RESULT, NJOBS); /* every job returns >= 1 byte */
	} else {
		print_message("no worker pool here: pool paths not checked\n");
	}
	assert_int_equal(vz_runtime_stop(rt), 0);
	assert_int_equal(vz_runtime_destroy(rt), 0);

	for (int p = 0; p < NPATHS; p++) {
		print_message("%-30s %3lu payloads, %lu misaligned\n", path_name[p],
			      atomic_load(&seen[p]), atomic_load(&misaligned[p]));
		if (atomic_load(&misaligned[p]))
			fail_msg("%s: %lu of %lu payloads not aligned", path_name[p],
				 atomic_load(&misaligned[p]), atomic_load(&seen[p]));
	}
	assert_int_equal(atomic_load(&bad_content), 0);
	assert_int_equal(atomic_load(&call_errors), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_path_aligned),
	};
	int ret;

	vz_test_watchdog(120);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	vz_test_watchdog(0);
	return ret;
}
