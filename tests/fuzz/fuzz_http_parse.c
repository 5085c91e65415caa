// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the incremental HTTP/1.1 request parser
 * (actors/http/parse.c). The first input byte picks a chunk size and the
 * head limits; the rest is fed once whole and once in chunks. Besides
 * crashes, out-of-bounds reads and undefined behaviour it checks the
 * parser's contracts: every call consumes at most what it was given and
 * either makes progress or reports "need more" having consumed it all; an
 * error is sticky; body chunks lie inside the given buffer; the kept
 * target is NUL-terminated at its length and within its bound; and the
 * sequence of events (requests with their fields, body bytes, the error
 * status) does not depend on how the input was split.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_http_parse: contract broken: %s (line %d)\n", #cond, \
				__LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A running digest of the events: order-sensitive, split-independent. */
struct digest {
	uint64_t h;
	uint64_t body_bytes;
	unsigned requests;
	unsigned status;
	int errored;
};

static void mix(struct digest *d, uint64_t v)
{
	d->h = (d->h ^ v) * 0x100000001b3ull;
}

static void mix_bytes(struct digest *d, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		mix(d, b[i]);
}

static void feed(vz_http_parser *p, struct digest *d, const char *buf, size_t len)
{
	size_t off = 0;

	while (!d->errored) {
		vz_http_event ev;
		size_t n = vz_http_parse(p, buf + off, len - off, &ev);
		const vz_http_request *r = &p->req;

		CHECK(n <= len - off);
		switch (ev.kind) {
		case VZ_HTTP_EV_NONE:
			CHECK(n == len - off);
			return;
		case VZ_HTTP_EV_REQUEST:
			CHECK(n > 0);
			CHECK(r->target_len <= VZ_HTTP_TARGET_MAX);
			CHECK(r->target[r->target_len] == 0);
			CHECK(strlen(r->target) == r->target_len);
			CHECK(r->head_bytes <= p->max_head);
			CHECK(r->nheaders <= p->max_headers);
			CHECK(r->version_minor <= 1 && r->keep_alive <= 1);
			d->requests++;
			mix(d, 'R');
			mix_bytes(d, r->method, strlen(r->method));
			mix_bytes(d, r->target, r->target_len);
			mix(d, r->version_minor | (unsigned)r->keep_alive << 1 |
				   (unsigned)r->has_host << 2);
			mix(d, r->content_length);
			mix(d, r->nheaders);
			mix(d, r->head_bytes);
			break;
		case VZ_HTTP_EV_BODY:
			CHECK(n > 0 && ev.len == n);
			CHECK(ev.data == buf + off);
			mix_bytes(d, ev.data, ev.len);
			d->body_bytes += ev.len;
			if (ev.end)
				mix(d, 'B');
			break;
		case VZ_HTTP_EV_ERROR:
			CHECK(ev.status == 400 || ev.status == 414 || ev.status == 431 ||
			      ev.status == 501 || ev.status == 505);
			CHECK(ev.reason != NULL);
			d->errored = 1;
			d->status = ev.status;
			mix(d, ev.status);
			off += n;
			n = vz_http_parse(p, buf + off, len - off, &ev);
			CHECK(n == 0 && ev.kind == VZ_HTTP_EV_ERROR);
			return;
		default:
			CHECK(!"unknown event");
		}
		off += n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct digest whole = {.h = 0xcbf29ce484222325ull}, split = whole;
	vz_http_limits lim = {0};
	vz_http_parser p;
	size_t chunk;

	if (size < 1)
		return 0;
	chunk = 1 + (data[0] & 0x1f);
	if (data[0] & 0x80) {
		lim.max_head = 64 + (data[0] & 0x3f) * 8;
		lim.max_headers = 1 + (data[0] & 0x7);
	}
	data++;
	size--;

	vz_http_parser_init(&p, &lim);
	feed(&p, &whole, (const char *)data, size);

	vz_http_parser_init(&p, &lim);
	for (size_t off = 0; off < size && !split.errored; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		/* each chunk in its own block, so ASan sees a read past it */
		char *c = malloc(n);

		CHECK(c != NULL);
		memcpy(c, data + off, n);
		feed(&p, &split, c, n);
		free(c);
	}
	CHECK(whole.requests == split.requests);
	CHECK(whole.body_bytes == split.body_bytes);
	CHECK(whole.status == split.status);
	CHECK(whole.h == split.h);
	return 0;
}
