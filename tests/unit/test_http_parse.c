// SPDX-License-Identifier: MIT
/*
 * Unit tests of the incremental HTTP/1.1 request parser
 * (actors/http/parse.h): fields of well-formed requests, keep-alive rules,
 * pipelined requests in one buffer, bodies, every malformed input class
 * with the status it must get, the head/target/header-count limits at and
 * one past their bound, and the central property of an incremental
 * parser: feeding an input split at any byte (and one byte at a time)
 * gives exactly the events of feeding it whole.
 *
 * VZ_TEST_BACKEND_INDEPENDENT: touches no I/O backend, runs once.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"
#include "http/response.h"

/* A transcript of the events an input produced, in a canonical form that
 * does not depend on how the input was split (bodies are joined). */
struct transcript {
	char text[16384];
	size_t len;
	char body[4096];
	size_t body_len;
	int errored;
};

static void tr_add(struct transcript *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void tr_add(struct transcript *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->text + t->len, sizeof t->text - t->len, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof t->text - t->len);
	t->len += (size_t)n;
}

/* Feed one chunk, draining every event it holds. */
static void feed(vz_http_parser *p, struct transcript *t, const char *data, size_t len)
{
	size_t off = 0;

	for (int guard = 0; guard < 100000; guard++) {
		vz_http_event ev;
		size_t n = vz_http_parse(p, data + off, len - off, &ev);
		const vz_http_request *r = &p->req;

		assert_true(n <= len - off);
		off += n;
		switch (ev.kind) {
		case VZ_HTTP_EV_NONE:
			assert_int_equal(off, len);
			return;
		case VZ_HTTP_EV_REQUEST:
			assert_int_equal(strlen(r->target), r->target_len);
			tr_add(t, "R %s(%u) %s 1.%u ka=%u host=%u cl=%u:%llu nh=%u hb=%u\n",
			       r->method, r->method_id, r->target, r->version_minor, r->keep_alive,
			       r->has_host, r->has_content_length,
			       (unsigned long long)r->content_length, r->nheaders, r->head_bytes);
			break;
		case VZ_HTTP_EV_BODY:
			assert_true(ev.len > 0);
			assert_ptr_equal(ev.data, data + off - n);
			assert_true(t->body_len + ev.len <= sizeof t->body);
			memcpy(t->body + t->body_len, ev.data, ev.len);
			t->body_len += ev.len;
			if (ev.end) {
				tr_add(t, "B %zu '%.*s'\n", t->body_len, (int)t->body_len, t->body);
				t->body_len = 0;
			}
			break;
		case VZ_HTTP_EV_ERROR:
			assert_non_null(ev.reason);
			if (!t->errored)
				tr_add(t, "E %u\n", ev.status);
			t->errored = 1;
			/* sticky: the same error, nothing consumed */
			n = vz_http_parse(p, data + off, len - off, &ev);
			assert_int_equal(n, 0);
			assert_int_equal(ev.kind, VZ_HTTP_EV_ERROR);
			return;
		default:
			fail_msg("unknown event %d", ev.kind);
		}
	}
	fail_msg("parser made no progress");
}

static void parse_whole(const char *in, size_t len, const vz_http_limits *lim, struct transcript *t)
{
	vz_http_parser p;

	memset(t, 0, sizeof *t);
	vz_http_parser_init(&p, lim);
	feed(&p, t, in, len);
}

/* Every split into two chunks, and one byte at a time, must give the whole
 * input's transcript. The chunks are copied to their own heap blocks so
 * that a read past a chunk's end is caught by ASan. */
static void check_splits(const char *in, size_t len, const vz_http_limits *lim)
{
	struct transcript whole, t;
	vz_http_parser p;

	parse_whole(in, len, lim, &whole);
	for (size_t k = 0; k <= len; k++) {
		char *a = malloc(k + 1), *b = malloc(len - k + 1);

		assert_non_null(a);
		assert_non_null(b);
		memcpy(a, in, k);
		memcpy(b, in + k, len - k);
		memset(&t, 0, sizeof t);
		vz_http_parser_init(&p, lim);
		feed(&p, &t, a, k);
		if (!t.errored)
			feed(&p, &t, b, len - k);
		if (strcmp(t.text, whole.text))
			fail_msg("split at %zu:\n%s\nwhole:\n%s", k, t.text, whole.text);
		free(a);
		free(b);
	}
	memset(&t, 0, sizeof t);
	vz_http_parser_init(&p, lim);
	for (size_t k = 0; k < len && !t.errored; k++) {
		char *c = malloc(1);

		assert_non_null(c);
		*c = in[k];
		feed(&p, &t, c, 1);
		free(c);
	}
	if (strcmp(t.text, whole.text))
		fail_msg("byte at a time:\n%s\nwhole:\n%s", t.text, whole.text);
}

static void expect(const char *in, const char *want)
{
	struct transcript t;

	parse_whole(in, strlen(in), NULL, &t);
	if (strcmp(t.text, want))
		fail_msg("input:\n%s\ngot:\n%s\nwant:\n%s", in, t.text, want);
	check_splits(in, strlen(in), NULL);
}

/* Only the error status (the transcript may hold requests before it). */
static unsigned error_of(const char *in, size_t len, const vz_http_limits *lim)
{
	struct transcript t;
	const char *e;

	parse_whole(in, len, lim, &t);
	if (!t.errored)
		return 0;
	e = strstr(t.text, "E ");
	assert_non_null(e);
	return (unsigned)atoi(e + 2);
}

#define TECHEMPOWER_GET                                                                            \
	"GET /plaintext HTTP/1.1\r\n"                                                              \
	"Host: server\r\n"                                                                         \
	"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/"              \
	"xml;q=0.8,*/*;q=0.7\r\n"                                                                  \
	"Connection: keep-alive\r\n"                                                               \
	"\r\n"

static void test_simple_get(void **state)
{
	vz_http_parser p;
	vz_http_event ev;
	const char *in = "GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t n;

	(void)state;
	vz_http_parser_init(&p, NULL);
	n = vz_http_parse(&p, in, strlen(in), &ev);
	assert_int_equal(n, strlen(in));
	assert_int_equal(ev.kind, VZ_HTTP_EV_REQUEST);
	assert_string_equal(p.req.method, "GET");
	assert_int_equal(p.req.method_id, VZ_HTTP_GET);
	assert_string_equal(p.req.target, "/plaintext");
	assert_int_equal(p.req.target_len, 10);
	assert_int_equal(p.req.version_minor, 1);
	assert_int_equal(p.req.keep_alive, 1);
	assert_int_equal(p.req.has_host, 1);
	assert_int_equal(p.req.nheaders, 1);
	assert_int_equal(p.req.head_bytes, strlen(in));
	assert_int_equal(p.req.content_length, 0);
	/* Nothing more: NONE, and the request stays readable. */
	n = vz_http_parse(&p, in + strlen(in), 0, &ev);
	assert_int_equal(n, 0);
	assert_int_equal(ev.kind, VZ_HTTP_EV_NONE);
	assert_string_equal(p.req.target, "/plaintext");

	expect(TECHEMPOWER_GET, "R GET(1) /plaintext 1.1 ka=1 host=1 cl=0:0 nh=3 hb=161\n");
	expect("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
	       "R HEAD(2) / 1.1 ka=1 host=1 cl=0:0 nh=1 hb=28\n");
	/* other methods, custom tokens, absolute and asterisk forms */
	expect("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	       "R OPTIONS(6) * 1.1 ka=1 host=1 cl=0:0 nh=1 hb=31\n");
	expect("BREW http://pot/coffee?x=1#f HTTP/1.1\r\nHost: pot\r\n\r\n",
	       "R BREW(0) http://pot/coffee?x=1#f 1.1 ka=1 host=1 cl=0:0 nh=1 hb=52\n");
	/* header names are case-insensitive, methods are not */
	expect("get / HTTP/1.1\r\nhOsT: x\r\n\r\n",
	       "R get(0) / 1.1 ka=1 host=1 cl=0:0 nh=1 hb=27\n");
	/* bare LF line ends, and empty lines before the request line */
	expect("\r\n\nGET /a HTTP/1.1\nHost: x\n\n",
	       "R GET(1) /a 1.1 ka=1 host=1 cl=0:0 nh=1 hb=28\n");
	/* empty values, values with obs-text and tabs, odd token names */
	expect("GET / HTTP/1.1\r\nHost:\r\nX-A:\t v\xe9 \t\r\n!#$%&'*+-.^_`|~0aZ:1\r\n\r\n",
	       "R GET(1) / 1.1 ka=1 host=1 cl=0:0 nh=3 hb=59\n");
	/* a later 1.x minor is served as 1.1 */
	expect("GET / HTTP/1.9\r\nHost: x\r\n\r\n",
	       "R GET(1) / 1.1 ka=1 host=1 cl=0:0 nh=1 hb=27\n");
}

static void test_keep_alive_rules(void **state)
{
	static const struct {
		const char *in;
		unsigned ka;
	} cases[] = {
	    {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1},
	    {"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 0},
	    {"GET / HTTP/1.1\r\nHost: x\r\nConnection:CLOSE\r\n\r\n", 0},
	    {"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", 0},
	    {"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade ,  close \r\n\r\n", 0},
	    {"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n", 1},
	    {"GET / HTTP/1.1\r\nHost: x\r\nConnection: \"close\"\r\n\r\n", 1},
	    {"GET / HTTP/1.1\r\nHost: x\r\nX-Connection: close\r\n\r\n", 1},
	    {"GET / HTTP/1.1\r\nHost: x\r\nConnection: averyveryverylongtoken, close\r\n\r\n", 0},
	    {"GET / HTTP/1.0\r\n\r\n", 0},
	    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1},
	    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 1},
	    {"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", 0},
	    {"GET / HTTP/1.0\r\nConnection: keep-alivex\r\n\r\n", 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		vz_http_parser p;
		vz_http_event ev;
		size_t len = strlen(cases[i].in);

		vz_http_parser_init(&p, NULL);
		assert_int_equal(vz_http_parse(&p, cases[i].in, len, &ev), len);
		assert_int_equal(ev.kind, VZ_HTTP_EV_REQUEST);
		if (p.req.keep_alive != cases[i].ka)
			fail_msg("case %zu: keep_alive %u, want %u", i, p.req.keep_alive,
				 cases[i].ka);
		check_splits(cases[i].in, len, NULL);
	}
}

static void test_pipelined(void **state)
{
	char buf[16 * 256];
	size_t len = 0, off = 0;
	vz_http_parser p;
	unsigned seen = 0;

	(void)state;
	/* TechEmpower's depth-16 pipeline: 16 requests in one buffer. */
	for (int i = 0; i < 16; i++) {
		int n = snprintf(buf + len, sizeof buf - len,
				 "GET /plaintext?i=%d HTTP/1.1\r\nHost: h\r\n\r\n", i);
		len += (size_t)n;
	}
	vz_http_parser_init(&p, NULL);
	for (;;) {
		vz_http_event ev;
		size_t n = vz_http_parse(&p, buf + off, len - off, &ev);
		char want[64];

		off += n;
		if (ev.kind == VZ_HTTP_EV_NONE)
			break;
		assert_int_equal(ev.kind, VZ_HTTP_EV_REQUEST);
		snprintf(want, sizeof want, "/plaintext?i=%u", seen);
		assert_string_equal(p.req.target, want);
		seen++;
	}
	assert_int_equal(seen, 16);
	assert_int_equal(off, len);
	check_splits(buf, len, NULL);

	/* Mixed: bodies, a HTTP/1.0 request, leading CRLF between requests,
	 * and a request cut off at the end (no event for it). */
	expect("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
	       "\r\nGET /b HTTP/1.0\r\n\r\n"
	       "PUT /c HTTP/1.1\r\nContent-Length:3\r\nHost: h\r\n\r\nxyz"
	       "DELETE /d HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
	       "GET /e HTTP/1.1\r\nHo",
	       "R POST(3) /a 1.1 ka=1 host=1 cl=1:5 nh=2 hb=48\n"
	       "B 5 'hello'\n"
	       "R GET(1) /b 1.0 ka=0 host=0 cl=0:0 nh=0 hb=21\n"
	       "R PUT(4) /c 1.1 ka=1 host=1 cl=1:3 nh=2 hb=46\n"
	       "B 3 'xyz'\n"
	       "R DELETE(5) /d 1.1 ka=1 host=1 cl=1:0 nh=2 hb=50\n");
	/* A request after an error is never reported. */
	expect("GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET /bad HTTP/1.1\r\nHost : h\r\n\r\n"
	       "GET /never HTTP/1.1\r\nHost: h\r\n\r\n",
	       "R GET(1) /ok 1.1 ka=1 host=1 cl=0:0 nh=1 hb=29\nE 400\n");
}

static void test_body(void **state)
{
	const char *in = "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
	vz_http_parser p;
	vz_http_event ev;
	size_t head = strlen(in) - 10, n;

	(void)state;
	vz_http_parser_init(&p, NULL);
	n = vz_http_parse(&p, in, head + 4, &ev);
	assert_int_equal(n, head);
	assert_int_equal(ev.kind, VZ_HTTP_EV_REQUEST);
	assert_int_equal(p.req.content_length, 10);
	n = vz_http_parse(&p, in + head, 4, &ev);
	assert_int_equal(n, 4);
	assert_int_equal(ev.kind, VZ_HTTP_EV_BODY);
	assert_ptr_equal(ev.data, in + head);
	assert_int_equal(ev.end, 0);
	n = vz_http_parse(&p, in + head + 4, 0, &ev);
	assert_int_equal(n, 0);
	assert_int_equal(ev.kind, VZ_HTTP_EV_NONE);
	n = vz_http_parse(&p, in + head + 4, 6, &ev);
	assert_int_equal(n, 6);
	assert_int_equal(ev.kind, VZ_HTTP_EV_BODY);
	assert_int_equal(ev.end, 1);
	/* Repeated identical Content-Length is one value. */
	expect("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\ncontent-length:2 \r\n\r\nab",
	       "R POST(3) / 1.1 ka=1 host=1 cl=1:2 nh=3 hb=66\nB 2 'ab'\n");
	/* A body that looks like a request is a body. */
	expect("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	       "R POST(3) / 1.1 ka=1 host=1 cl=1:18 nh=2 hb=48\nB 18 'GET / HTTP/1.1\r\n\r\n'\n");
}

static void test_malformed(void **state)
{
	static const struct {
		const char *in;
		unsigned status;
	} cases[] = {
	    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400}, /* a TLS hello */
	    {" GET / HTTP/1.1\r\n\r\n", 400},
	    {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	    {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
	    {"GET /\r\n\r\n", 400}, /* HTTP/0.9 */
	    {"GET / \r\n\r\n", 400},
	    {"GET / http/1.1\r\nHost: h\r\n\r\n", 400},
	    {"GET / HTTP/1.\r\nHost: h\r\n\r\n", 400},
	    {"GET / HTTP/11\r\nHost: h\r\n\r\n", 400},
	    {"GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400},
	    {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
	    {"GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505},
	    {"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	    {"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	    {"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	    {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	    {"GET / HTTP/1.1\rHost: h\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400},
	    {"\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400}, /* obs-fold */
	    {"GET / HTTP/1.1\r\nHost: h\r\nX a\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\n\r\n", 400}, /* no Host */
	    {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1,1\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
	    {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
	    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
	    {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: "
	     "3\r\n\r\n",
	     400},
	    {"GETTINGTOOLONGMETHOD / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = strlen(cases[i].in);
		unsigned st;

		st = error_of(cases[i].in, len, NULL);
		if (st != cases[i].status)
			fail_msg("case %zu (%s): status %u, want %u", i, cases[i].in, st,
				 cases[i].status);
		check_splits(cases[i].in, len, NULL);
	}
	/* An embedded NUL (strlen would cut the table's strings short). */
	{
		static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";

		assert_int_equal(error_of(nul, sizeof nul - 1, NULL), 400);
		check_splits(nul, sizeof nul - 1, NULL);
	}
}

/* A request of exactly `total` head bytes: a padding header fills it. */
static size_t make_sized(char *buf, size_t total)
{
	const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
	size_t plen = strlen(pre), fill = total - plen - 4;

	memcpy(buf, pre, plen);
	memset(buf + plen, 'p', fill);
	memcpy(buf + plen + fill, "\r\n\r\n", 4);
	return total;
}

static void test_limits(void **state)
{
	static char buf[20000];
	vz_http_limits lim = {.max_head = 200, .max_headers = 3};
	size_t len;

	(void)state;
	/* head size: exactly the limit passes, one more is 431 */
	len = make_sized(buf, 200);
	assert_int_equal(error_of(buf, len, &lim), 0);
	check_splits(buf, len, &lim);
	len = make_sized(buf, 201);
	assert_int_equal(error_of(buf, len, &lim), 431);
	check_splits(buf, len, &lim);
	/* the default limit */
	len = make_sized(buf, VZ_HTTP_DEFAULT_MAX_HEAD);
	assert_int_equal(error_of(buf, len, NULL), 0);
	len = make_sized(buf, VZ_HTTP_DEFAULT_MAX_HEAD + 1);
	assert_int_equal(error_of(buf, len, NULL), 431);
	/* a head that never ends is refused once it passes the limit, no
	 * matter how it is fed */
	memset(buf, 0, sizeof buf);
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	memset(buf + 19, 'a', sizeof buf - 19);
	assert_int_equal(error_of(buf, sizeof buf, NULL), 431);
	/* empty lines before the request count too */
	memset(buf, '\n', 300);
	assert_int_equal(error_of(buf, 300, &lim), 431);

	/* header count: 3 pass, 4 is 431 */
	{
		const char *three = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
		const char *four = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";

		assert_int_equal(error_of(three, strlen(three), &lim), 0);
		assert_int_equal(error_of(four, strlen(four), &lim), 431);
		check_splits(four, strlen(four), &lim);
	}

	/* target: VZ_HTTP_TARGET_MAX passes, one more is 414 */
	for (size_t tl = VZ_HTTP_TARGET_MAX; tl <= VZ_HTTP_TARGET_MAX + 1; tl++) {
		struct transcript t;

		len = 0;
		memcpy(buf, "GET /", 5);
		len = 5;
		memset(buf + len, 't', tl - 1);
		len += tl - 1;
		memcpy(buf + len, " HTTP/1.1\r\nHost: h\r\n\r\n", 23);
		len += 23;
		parse_whole(buf, len, NULL, &t);
		if (tl == VZ_HTTP_TARGET_MAX)
			assert_non_null(strstr(t.text, "R GET(1) /ttt"));
		else
			assert_string_equal(t.text, "E 414\n");
		check_splits(buf, len, NULL);
	}
	/* a target cut by the head limit is 414 as well */
	lim.max_head = 64;
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'u', 100);
	assert_int_equal(error_of(buf, 105, &lim), 414);
}

/* Random inputs built from request fragments, fed in random chunks: no
 * crash, progress always, and the transcript never depends on the split. */
static void test_random_splits(void **state)
{
	static const char *frag[] = {
	    "GET ",
	    "POST ",
	    "/x ",
	    "HTTP/1.1",
	    "HTTP/1.0",
	    "\r\n",
	    "\n",
	    "\r",
	    "Host: h",
	    "Content-Length: 3",
	    "Connection: close",
	    "abc",
	    ": ",
	    " ",
	    "\t",
	    "\x80",
	};
	char buf[512];
	unsigned seed = 12345;

	(void)state;
	for (int iter = 0; iter < 2000; iter++) {
		size_t len = 0;
		struct transcript whole, t;
		vz_http_parser p;

		while (len < 300) {
			const char *f;

			seed = seed * 1103515245u + 12345u;
			f = frag[(seed >> 16) % (sizeof frag / sizeof frag[0])];
			memcpy(buf + len, f, strlen(f));
			len += strlen(f);
		}
		parse_whole(buf, len, NULL, &whole);
		memset(&t, 0, sizeof t);
		vz_http_parser_init(&p, NULL);
		for (size_t off = 0; off < len && !t.errored;) {
			size_t n;

			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % 17;
			if (n > len - off)
				n = len - off;
			feed(&p, &t, buf + off, n);
			off += n;
		}
		if (strcmp(t.text, whole.text))
			fail_msg("iteration %d:\n%s\nwhole:\n%s", iter, t.text, whole.text);
	}
}

static void test_status_text(void **state)
{
	(void)state;
	assert_string_equal(vz_http_status_text(200), "OK");
	assert_string_equal(vz_http_status_text(400), "Bad Request");
	assert_string_equal(vz_http_status_text(431), "Request Header Fields Too Large");
	assert_string_equal(vz_http_status_text(299), "Unknown");
}

/* The response bytes both servers send (actors/http/response.c). */
static void test_responses(void **state)
{
	static const char want_hello[] = "HTTP/1.1 200 OK\r\n"
					 "Server: veloz\r\n"
					 "Date: Wed, 02 Dec 2026 15:04:05 GMT\r\n"
					 "Content-Type: text/plain\r\n"
					 "Content-Length: 13\r\n"
					 "\r\n"
					 "Hello, World!";
	char date[VZ_HTTP_DATE_LEN + 1], out[512];
	vz_http_parser p;
	vz_http_event ev;
	const char *in;
	size_t n;
	int close;

	(void)state;
	vz_http_date_format(date, (time_t)1796223845); /* 2026-12-02 15:04:05 UTC */
	assert_string_equal(date, "Wed, 02 Dec 2026 15:04:05 GMT");
	vz_http_date_format(date, 0);
	assert_string_equal(date, "Thu, 01 Jan 1970 00:00:00 GMT");
	vz_http_date_format(date, (time_t)1796223845);

	in = "GET /plaintext HTTP/1.1\r\nHost: h\r\n\r\n";
	vz_http_parser_init(&p, NULL);
	vz_http_parse(&p, in, strlen(in), &ev);
	assert_int_equal(ev.kind, VZ_HTTP_EV_REQUEST);
	n = vz_http_answer(out, sizeof out, &p.req, date, &close);
	assert_int_equal(n, sizeof want_hello - 1);
	assert_memory_equal(out, want_hello, n);
	assert_int_equal(close, 0);
	/* too small a buffer: 0, never a cut response */
	assert_int_equal(vz_http_answer(out, n - 1, &p.req, date, &close), 0);

	in = "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
	vz_http_parser_init(&p, NULL);
	vz_http_parse(&p, in, strlen(in), &ev);
	n = vz_http_answer(out, sizeof out, &p.req, date, &close);
	out[n] = 0;
	assert_non_null(strstr(out, "Content-Length: 13\r\nConnection: keep-alive\r\n\r\n"));
	assert_null(strstr(out, "Hello"));
	assert_int_equal(close, 0);

	in = "GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
	vz_http_parser_init(&p, NULL);
	vz_http_parse(&p, in, strlen(in), &ev);
	n = vz_http_answer(out, sizeof out, &p.req, date, &close);
	out[n] = 0;
	assert_true(!strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24));
	assert_non_null(strstr(out, "\r\nConnection: close\r\n\r\nNot Found\n"));
	assert_int_equal(close, 1);

	in = "POST / HTTP/1.1\r\nHost: h\r\n\r\n";
	vz_http_parser_init(&p, NULL);
	vz_http_parse(&p, in, strlen(in), &ev);
	n = vz_http_answer(out, sizeof out, &p.req, date, &close);
	out[n] = 0;
	assert_true(!strncmp(out, "HTTP/1.1 405 Method Not Allowed\r\n", 33));
	assert_non_null(strstr(out, "Content-Length: 19\r\nAllow: GET, HEAD\r\n\r\nMethod"));

	n = vz_http_answer_error(out, sizeof out, 431, date);
	out[n] = 0;
	assert_true(!strncmp(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46));
	assert_non_null(strstr(out, "Connection: close\r\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_simple_get),	  cmocka_unit_test(test_keep_alive_rules),
	    cmocka_unit_test(test_pipelined),	  cmocka_unit_test(test_body),
	    cmocka_unit_test(test_malformed),	  cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_random_splits), cmocka_unit_test(test_status_text),
	    cmocka_unit_test(test_responses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
