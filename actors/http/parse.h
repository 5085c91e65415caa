/* SPDX-License-Identifier: MIT */
/*
 * An HTTP/1.1 request parser: pure (no I/O, no clock, no globals written),
 * allocation-free and incremental. Bytes are fed as they arrive, split
 * anywhere (one byte at a time works); the parser keeps what it needs to
 * carry across calls in its own fixed-size state, so the caller never has
 * to keep or re-join earlier chunks (a server receiving into runtime
 * buffers gives each buffer back as soon as it is parsed).
 *
 * What it keeps of a request: the method, the target (up to
 * VZ_HTTP_TARGET_MAX bytes, else 414), the version, and what framing and
 * connection management need (Content-Length, Transfer-Encoding,
 * Connection tokens, Host presence). Every other header is validated and
 * counted against the limits, then forgotten. The body is handed back in
 * place, as the chunks it arrived in.
 *
 * Strictness (RFC 9110/9112): CRLF line ends (a bare LF is accepted, a bare
 * CR is not), no whitespace between a header name and its colon, no
 * obsolete line folding, no control characters in values, one Host on
 * HTTP/1.1, Content-Length digits only (a conflicting second value is an
 * error, as is Content-Length together with Transfer-Encoding), versions
 * HTTP/1.0 and 1.x only (2.x and up: 505). Empty lines before a request
 * line are skipped (they count against the head limit). Transfer codings
 * are not decoded: a request with Transfer-Encoding is answered 501.
 *
 * Thread rules: a parser is a plain value; one thread at a time per parser.
 */
#ifndef VZ_ACTORS_HTTP_PARSE_H
#define VZ_ACTORS_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Longest request target kept; a longer one is refused with 414. */
#define VZ_HTTP_TARGET_MAX 512u
/* Default limits (vz_http_limits with zero fields). */
#define VZ_HTTP_DEFAULT_MAX_HEAD    8192u /* request line + headers + final CRLF */
#define VZ_HTTP_DEFAULT_MAX_HEADERS 64u

typedef struct vz_http_limits {
	uint32_t max_head;    /* bytes of the head, empty lines before it included; past
				 it: 431 (or 414 while still in the target) */
	uint32_t max_headers; /* header lines; past it: 431 */
} vz_http_limits;

enum vz_http_method {
	VZ_HTTP_OTHER = 0, /* a valid token we have no name for (the text is in method) */
	VZ_HTTP_GET,
	VZ_HTTP_HEAD,
	VZ_HTTP_POST,
	VZ_HTTP_PUT,
	VZ_HTTP_DELETE,
	VZ_HTTP_OPTIONS,
	VZ_HTTP_PATCH,
	VZ_HTTP_CONNECT,
	VZ_HTTP_TRACE,
};

/* A parsed request head. Valid from the VZ_HTTP_EV_REQUEST event until the
 * parser is fed the first byte of the next request. */
typedef struct vz_http_request {
	char method[16]; /* NUL-terminated; longer methods are refused with 501 */
	char target[VZ_HTTP_TARGET_MAX + 1]; /* NUL-terminated, as received */
	uint32_t target_len;
	uint8_t method_id;     /* enum vz_http_method */
	uint8_t version_minor; /* 0 or 1 (a later 1.x is treated as 1.1) */
	uint8_t keep_alive;    /* 1: the connection stays open after the response */
	uint8_t has_host;
	uint8_t has_content_length;
	uint32_t nheaders;	 /* header lines */
	uint32_t head_bytes;	 /* bytes of the head, leading empty lines included */
	uint64_t content_length; /* body bytes that follow the head (0 without a body) */
} vz_http_request;

enum vz_http_event_kind {
	VZ_HTTP_EV_NONE = 0, /* every byte was consumed, nothing complete: feed more */
	VZ_HTTP_EV_REQUEST,  /* a request head is complete: see vz_http_parser.req */
	VZ_HTTP_EV_BODY,     /* body bytes: data/len (in the caller's buffer); end when last */
	VZ_HTTP_EV_ERROR,    /* malformed or over a limit: answer `status`, then close */
};

typedef struct vz_http_event {
	int kind;	    /* enum vz_http_event_kind */
	int end;	    /* BODY: this chunk ends the body */
	const char *data;   /* BODY: the bytes, inside the buffer given to the call */
	size_t len;	    /* BODY: how many */
	uint16_t status;    /* ERROR: 400, 414, 431, 501 or 505 */
	const char *reason; /* ERROR: a static phrase saying what was wrong */
} vz_http_event;

typedef struct vz_http_parser {
	vz_http_request req;
	/* Everything below is private state. */
	uint64_t body_left;
	uint64_t cl_value; /* Content-Length being read */
	uint32_t max_head, max_headers;
	uint8_t state;
	uint8_t hdr;	  /* which known header the current line is */
	uint8_t name_len; /* bytes of name[] used (saturates past it: unknown) */
	uint8_t tok_len;  /* Connection token being read (saturates) */
	uint8_t sub;	  /* sub-state inside a value or the version */
	uint8_t method_len;
	uint8_t major; /* the version's major digit */
	uint8_t seen_cl, seen_te, conn_close, conn_keep;
	char name[20]; /* the current header name, lower-cased */
	char tok[12];  /* the current Connection token, lower-cased */
	uint16_t err_status;
	const char *err_reason;
} vz_http_parser;

/* Set up a parser (limits NULL or a zero field: the defaults). No
 * resources: a parser needs no fini and may be copied or dropped at any
 * point. */
void vz_http_parser_init(vz_http_parser *p, const vz_http_limits *limits);

/* Feed len bytes (len 0 is allowed). Consumes bytes up to and including
 * the first event and returns how many; fills *ev. Call again with the
 * rest (data + consumed) until the event is VZ_HTTP_EV_NONE, which means
 * everything given was consumed. After VZ_HTTP_EV_ERROR the parser stays in
 * error: every later call returns the same error, consuming nothing. */
size_t vz_http_parse(vz_http_parser *p, const char *data, size_t len, vz_http_event *ev);

/* The standard reason phrase of a status code ("OK", "Bad Request"...),
 * "Unknown" for codes it does not know. */
const char *vz_http_status_text(unsigned status);

#endif
