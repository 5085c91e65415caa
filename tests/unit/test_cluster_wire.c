// SPDX-License-Identifier: MIT
/*
 * The cluster's pieces that need no server: the wire header (round trip;
 * every truncation, trailing byte, wrong magic or version refused; random
 * bytes never read out of bounds), the transport ring of variable-length
 * records (order, wrap-around with pad records, full), and the [cluster]
 * section of the INI loader. VZ_TEST_BACKEND_INDEPENDENT
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"
#include "cluster/xring.h"
#include "config/config_int.h"

static size_t encode(unsigned char *buf, const char *node, const void *payload, uint32_t len)
{
	struct vz__wire w = {.type = 300,
			     .len = len,
			     .stream = 7,
			     .seq = 0,
			     .node_id = 0x1122334455667788ull,
			     .from = 42,
			     .to = 43,
			     .node = node,
			     .node_len = (uint8_t)strlen(node)};

	vz__wire_encode(buf, &w);
	memcpy(buf + VZ__WIRE_HDR + w.node_len, payload, len);
	vz__wire_stamp(buf, 9, 1234);
	return vz__wire_size(w.node_len, len);
}

static void test_wire_round_trip(void **state)
{
	unsigned char buf[256];
	struct vz__wire w;
	size_t n = encode(buf, "node-1", "payload!", 8);

	(void)state;
	assert_int_equal(n, 48 + 6 + 8);
	assert_int_equal(vz__wire_decode(buf, n, &w), 0);
	assert_int_equal(w.type, 300);
	assert_int_equal(w.len, 8);
	assert_int_equal(w.stream, 9);
	assert_int_equal(w.seq, 1234);
	assert_true(w.node_id == 0x1122334455667788ull);
	assert_int_equal(w.from, 42);
	assert_int_equal(w.to, 43);
	assert_int_equal(w.node_len, 6);
	assert_memory_equal(w.node, "node-1", 6);
	assert_memory_equal(w.payload, "payload!", 8);
	/* Little-endian on the wire whatever the host. */
	assert_int_equal(buf[0], 'V');
	assert_int_equal(buf[3], '1');
	assert_int_equal(buf[8], 300 & 0xff);
	assert_int_equal(buf[9], 300 >> 8);
}

static void test_wire_refuses(void **state)
{
	unsigned char buf[256], bad[256];
	struct vz__wire w;
	size_t n = encode(buf, "n", "abcd", 4);

	(void)state;
	for (size_t k = 0; k < n; k++)
		assert_int_equal(vz__wire_decode(buf, k, &w), -1); /* every truncation */
	memcpy(bad, buf, n);
	bad[n] = 0;
	assert_int_equal(vz__wire_decode(bad, n + 1, &w), -1); /* a trailing byte */
	memcpy(bad, buf, n);
	bad[0] ^= 1;
	assert_int_equal(vz__wire_decode(bad, n, &w), -1); /* magic */
	memcpy(bad, buf, n);
	bad[4] = VZ__WIRE_VERSION + 1;
	assert_int_equal(vz__wire_decode(bad, n, &w), -1); /* version */
	memcpy(bad, buf, n);
	bad[5] = 40;
	assert_int_equal(vz__wire_decode(bad, n, &w), -1); /* header too short */
	memcpy(bad, buf, n);
	bad[6] = 0;
	assert_int_equal(vz__wire_decode(bad, n, &w), -1); /* no node name */
	memcpy(bad, buf, n);
	bad[12] = 0xff;
	bad[15] = 0xff;
	assert_int_equal(vz__wire_decode(bad, n, &w), -1); /* length beyond the bytes */
}

/* Several records back to back (one NATS message of a batch): each found
 * in turn with its size; a truncated last one is refused. */
static void test_wire_batch(void **state)
{
	unsigned char buf[512];
	struct vz__wire w;
	size_t n = 0, off = 0, used;
	uint32_t k = 0;

	(void)state;
	for (uint32_t i = 0; i < 5; i++)
		n += encode(buf + n, "nb", "0123456789", i * 2);
	assert_int_equal(vz__wire_decode(buf, n, &w), -1); /* not one record */
	while (off < n) {
		assert_int_equal(vz__wire_decode_next(buf + off, n - off, &w, &used), 0);
		assert_int_equal(w.len, k * 2);
		assert_memory_equal(w.node, "nb", 2);
		off += used;
		k++;
	}
	assert_int_equal(k, 5);
	assert_int_equal(off, n);
	assert_int_equal(vz__wire_decode_next(buf + n - used, used - 1, &w, &used), -1);
}

static void test_wire_random(void **state)
{
	unsigned char *buf;
	struct vz__wire w;
	unsigned seed = 12345;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand_r(&seed) % 200);

		/* An exact-size heap block: ASan catches any read past it. */
		buf = malloc(n ? n : 1);
		for (size_t k = 0; k < n; k++)
			buf[k] = (unsigned char)rand_r(&seed);
		if (n >= 8 && (i & 1)) {
			buf[0] = 'V', buf[1] = 'Z', buf[2] = 'C', buf[3] = '1';
			buf[4] = VZ__WIRE_VERSION;
			buf[5] = (unsigned char)(48 + (rand_r(&seed) % 4));
		}
		if (vz__wire_decode(buf, n, &w) == 0)
			assert_true((size_t)(w.payload - buf) + w.len == n);
		/* As a batch: every record found lies inside the n bytes. */
		for (size_t off = 0, used; off < n; off += used) {
			if (vz__wire_decode_next(buf + off, n - off, &w, &used) < 0)
				break;
			assert_true(used > 0 && off + used <= n);
			assert_true((size_t)(w.payload - buf) + w.len == off + used);
		}
		free(buf);
	}
}

static void test_xring(void **state)
{
	struct vz__xring r;
	uint64_t next_in = 0, next_out = 0;

	(void)state;
	assert_int_equal(vz__xring_init(&r, 4096), 0);
	/* Records of varying size through several wraps, in order. */
	for (int round = 0; round < 2000; round++) {
		for (;;) {
			uint32_t len = 8 + (uint32_t)((next_in * 37) % 300);
			struct vz__xrec *rec = vz__xring_reserve(&r, (uint32_t)sizeof *rec + len);

			if (!rec)
				break;
			rec->entry = (uint32_t)next_in;
			rec->wire_len = len;
			memset(rec->wire, (int)(next_in & 0xff), len);
			vz__xring_publish(&r);
			next_in++;
			if (next_in % 5 == 0)
				break;
		}
		for (int k = 0; k < 3; k++) {
			struct vz__xrec *rec = vz__xring_peek(&r);

			if (!rec)
				break;
			assert_int_equal(rec->entry, (uint32_t)next_out);
			assert_int_equal(rec->wire_len, 8 + (next_out * 37) % 300);
			assert_int_equal(rec->wire[rec->wire_len - 1], next_out & 0xff);
			vz__xring_release(&r, rec);
			next_out++;
		}
	}
	assert_true(next_in > 1000);
	vz__xring_fini(&r);
}

static void test_config_cluster(void **state)
{
	static const char ok[] = "[cluster]\n"
				 "url = nats://10.0.0.5:4222,nats://10.0.0.6:4222\n"
				 "node = gw-1\n"
				 "namespace = prod\n"
				 "tls = yes\n"
				 "tls_skip_verify = false\n"
				 "reconnect_wait_ms = 250\n"
				 "out_ring_bytes = 65536\n"
				 "heartbeat_ms = 100\n"
				 "node_timeout_ms = 900\n";
	vz_config cfg;
	vz_config_error err;
	struct vz__config_src src;

	(void)state;
	vz_config_default(&cfg);
	assert_int_equal(vz__config_parse(&cfg, &src, ok, sizeof ok - 1, "c.ini", &err), 0);
	assert_string_equal(cfg.cluster.url, "nats://10.0.0.5:4222,nats://10.0.0.6:4222");
	assert_string_equal(cfg.cluster.node, "gw-1");
	assert_string_equal(cfg.cluster.ns, "prod");
	assert_true(cfg.cluster.tls);
	assert_false(cfg.cluster.tls_skip_verify);
	assert_int_equal(cfg.cluster.reconnect_wait_ms, 250);
	assert_int_equal(cfg.cluster.out_ring_bytes, 65536);
	assert_int_equal(cfg.cluster.heartbeat_ms, 100);
	assert_int_equal(cfg.cluster.node_timeout_ms, 900);

	vz_config_default(&cfg);
	assert_int_equal(vz__config_parse(&cfg, &src, "[cluster]\nurll = x\n", 20, "c.ini", &err),
			 VZ_ECONFIG);
	assert_non_null(strstr(err.message, "did you mean 'url'"));
	assert_int_equal(
	    vz__config_parse(&cfg, &src, "[cluster]\ntls = maybe\n", 22, "c.ini", &err),
	    VZ_ECONFIG);
	assert_string_equal(err.key, "cluster.tls");
	assert_int_equal(
	    vz__config_parse(&cfg, &src, "[cluster]\nout_ring_bytes = 5000\n", 32, "c.ini", &err),
	    VZ_ECONFIG);
	assert_int_equal(err.line, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_wire_round_trip), cmocka_unit_test(test_wire_refuses),
	    cmocka_unit_test(test_wire_batch),	    cmocka_unit_test(test_wire_random),
	    cmocka_unit_test(test_xring),	    cmocka_unit_test(test_config_cluster),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
