/* SPDX-License-Identifier: MIT */
/*
 * HTTP/1.1 response bytes, shared by the veloz server (server.c) and the
 * libuv baseline in bench/, so both answer with exactly the same bytes:
 * the status line, Server, Date, Content-Type and Content-Length (the
 * headers the TechEmpower plaintext rules require), Connection when the
 * connection closes (or stays open for HTTP/1.0), then the body. Pure
 * functions; no allocation.
 */
#ifndef VZ_ACTORS_HTTP_RESPONSE_H
#define VZ_ACTORS_HTTP_RESPONSE_H

#include <stddef.h>
#include <time.h>

#include "parse.h"

/* "Wed, 02 Dec 2026 15:04:05 GMT": 29 bytes (RFC 9110 IMF-fixdate). */
#define VZ_HTTP_DATE_LEN 29u

/* The Server header's value. */
#define VZ_HTTP_SERVER_NAME "veloz"

/* The plaintext route's body. */
#define VZ_HTTP_HELLO "Hello, World!"

/* Format t (seconds since the epoch, UTC) as an IMF-fixdate into out,
 * NUL-terminated (VZ_HTTP_DATE_LEN + 1 bytes). */
void vz_http_date_format(char *out, time_t t);

enum {
	VZ_HTTP_CONN_KEEP = 0, /* nothing said: the HTTP/1.1 default */
	VZ_HTTP_CONN_CLOSE,    /* "Connection: close": the server closes after it */
	VZ_HTTP_CONN_KEEP_10,  /* "Connection: keep-alive" (an HTTP/1.0 client asked) */
};

/* Write one response into out (cap bytes). date: VZ_HTTP_DATE_LEN bytes.
 * extra: more header lines, each ending in CRLF ("Allow: GET\r\n"), or
 * NULL. body may be NULL with blen 0; head_only (a HEAD request) writes the
 * Content-Length of the body but not the body. Returns the bytes written,
 * or 0 when they do not fit (nothing useful is written then). */
size_t vz_http_response(char *out, size_t cap, unsigned status, const char *date,
			const char *content_type, const char *extra, const char *body, size_t blen,
			int conn, int head_only);

/* The answer of the minimal server to a parsed request, as both servers
 * give it: GET or HEAD of "/plaintext" or "/" is 200 with "Hello, World!"
 * as text/plain; another target is 404, another method 405 with "Allow:
 * GET, HEAD" (each with a short text/plain body). conn is chosen from req->keep_alive and the
 * version. Returns bytes written or 0 when they do not fit; *close is set
 * when the connection must close after this response. */
size_t vz_http_answer(char *out, size_t cap, const vz_http_request *req, const char *date,
		      int *close);

/* The answer to a request the parser refused (ev->status): a short
 * text/plain body naming the status, "Connection: close". */
size_t vz_http_answer_error(char *out, size_t cap, unsigned status, const char *date);

#endif
