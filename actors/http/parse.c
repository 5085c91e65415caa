// SPDX-License-Identifier: MIT
/*
 * The incremental HTTP/1.1 request parser (parse.h): one byte-driven state
 * machine whose whole memory is the vz_http_parser value, so a request may
 * arrive split at any byte and nothing is ever re-scanned or copied but
 * the few fields kept (method, target, the tokens of the headers that
 * frame the message). The common runs (target, values of headers we do
 * not interpret) are scanned in tight inner loops; the byte-level switch
 * handles the delimiters.
 */
#include "parse.h"

#include <string.h>

enum state {
	S_START,    /* before a request line: empty lines are skipped */
	S_START_CR, /* a CR before the request line: LF must follow */
	S_METHOD,
	S_TARGET_START,
	S_TARGET,
	S_VERSION, /* sub = bytes of "HTTP/x.y" matched */
	S_RL_CR,   /* CR after the version */
	S_HDR_START,
	S_HDR_NAME,
	S_HDR_VALUE,
	S_HDR_CR,
	S_END_CR, /* CR of the empty line ending the head */
	S_BODY,
	S_DONE, /* a request is complete; the next byte starts another */
	S_ERROR,
};

enum hdr {
	H_OTHER,
	H_HOST,
	H_CONTENT_LENGTH,
	H_TRANSFER_ENCODING,
	H_CONNECTION,
};

/* Content-Length values above this are refused (no body that large is
 * real, and it keeps cl_value * 10 + 9 far from overflowing). */
#define CL_MAX (UINT64_C(1) << 53)

/* token characters (RFC 9110 5.6.2): what methods and header names are
 * made of. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* A field-value byte: visible, space, tab or obs-text (RFC 9110 5.5). */
static inline int value_char(unsigned char c)
{
	return (c >= 0x20 && c != 0x7f) || c == '\t';
}

/* A request-target byte: visible ASCII (no space, no control). */
static inline int target_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

static inline unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

void vz_http_parser_init(vz_http_parser *p, const vz_http_limits *limits)
{
	memset(p, 0, sizeof *p);
	p->max_head = limits && limits->max_head ? limits->max_head : VZ_HTTP_DEFAULT_MAX_HEAD;
	p->max_headers =
	    limits && limits->max_headers ? limits->max_headers : VZ_HTTP_DEFAULT_MAX_HEADERS;
	p->state = S_START;
}

const char *vz_http_status_text(unsigned status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

/* Forget the previous request: only the fields a new one fills in. */
static void reset_request(vz_http_parser *p)
{
	vz_http_request *r = &p->req;

	r->method[0] = 0;
	r->target[0] = 0;
	r->target_len = 0;
	r->method_id = VZ_HTTP_OTHER;
	r->version_minor = 0;
	r->keep_alive = 0;
	r->has_host = 0;
	r->has_content_length = 0;
	r->nheaders = 0;
	r->head_bytes = 0;
	r->content_length = 0;
	p->body_left = 0;
	p->method_len = 0;
	p->seen_cl = p->seen_te = p->conn_close = p->conn_keep = 0;
	p->state = S_START;
}

/* Enter the error state; every later call reports it again. */
static size_t fail(vz_http_parser *p, vz_http_event *ev, size_t consumed, unsigned status,
		   const char *reason)
{
	p->state = S_ERROR;
	p->err_status = (uint16_t)status;
	p->err_reason = reason;
	ev->kind = VZ_HTTP_EV_ERROR;
	ev->status = (uint16_t)status;
	ev->reason = reason;
	return consumed;
}

static uint8_t method_id(const char *m, unsigned len)
{
	static const struct {
		const char *name;
		uint8_t len, id;
	} known[] = {
	    {"GET", 3, VZ_HTTP_GET},	   {"HEAD", 4, VZ_HTTP_HEAD},
	    {"POST", 4, VZ_HTTP_POST},	   {"PUT", 3, VZ_HTTP_PUT},
	    {"DELETE", 6, VZ_HTTP_DELETE}, {"OPTIONS", 7, VZ_HTTP_OPTIONS},
	    {"PATCH", 5, VZ_HTTP_PATCH},   {"CONNECT", 7, VZ_HTTP_CONNECT},
	    {"TRACE", 5, VZ_HTTP_TRACE},
	};

	/* Methods are case-sensitive (RFC 9110 9.1): "get" is another one. */
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (known[i].len == len && !memcmp(known[i].name, m, len))
			return known[i].id;
	return VZ_HTTP_OTHER;
}

/* The header whose name was just read (lower-cased in p->name). */
static uint8_t header_id(const vz_http_parser *p)
{
	switch (p->name_len) {
	case 4:
		return !memcmp(p->name, "host", 4) ? H_HOST : H_OTHER;
	case 10:
		return !memcmp(p->name, "connection", 10) ? H_CONNECTION : H_OTHER;
	case 14:
		return !memcmp(p->name, "content-length", 14) ? H_CONTENT_LENGTH : H_OTHER;
	case 17:
		return !memcmp(p->name, "transfer-encoding", 17) ? H_TRANSFER_ENCODING : H_OTHER;
	default:
		return H_OTHER;
	}
}

/* End of one Connection token: only "close" and "keep-alive" matter. */
static void conn_token_end(vz_http_parser *p)
{
	if (p->tok_len == 5 && !memcmp(p->tok, "close", 5))
		p->conn_close = 1;
	else if (p->tok_len == 10 && !memcmp(p->tok, "keep-alive", 10))
		p->conn_keep = 1;
	p->tok_len = 0;
}

/* Sub-states of a Content-Length value. */
enum { CL_LEAD, CL_DIGITS, CL_TRAIL };

/* One byte of a value we interpret (value_char() already holds). Returns
 * 0, or an error status with *why set. */
static unsigned value_byte(vz_http_parser *p, unsigned char c, const char **why)
{
	switch (p->hdr) {
	case H_CONTENT_LENGTH:
		if (c >= '0' && c <= '9') {
			if (p->sub == CL_TRAIL) {
				*why = "Content-Length is not one number";
				return 400;
			}
			p->sub = CL_DIGITS;
			p->cl_value = p->cl_value * 10 + (uint64_t)(c - '0');
			if (p->cl_value > CL_MAX) {
				*why = "Content-Length too large";
				return 400;
			}
		} else if (c == ' ' || c == '\t') {
			if (p->sub == CL_DIGITS)
				p->sub = CL_TRAIL;
		} else {
			*why = "Content-Length is not a number";
			return 400;
		}
		return 0;
	case H_CONNECTION:
		if (c == ',' || c == ' ' || c == '\t') {
			conn_token_end(p);
		} else if (tchar[c] && p->tok_len < sizeof p->tok) {
			p->tok[p->tok_len++] = (char)lower(c);
		} else {
			/* too long or not a token: matches nothing */
			p->tok_len = sizeof p->tok;
		}
		return 0;
	default:
		return 0;
	}
}

/* The value of the current header line ended. Returns 0 or an error
 * status. */
static unsigned value_end(vz_http_parser *p, const char **why)
{
	switch (p->hdr) {
	case H_CONTENT_LENGTH:
		if (p->sub == CL_LEAD) {
			*why = "empty Content-Length";
			return 400;
		}
		if (p->seen_cl && p->cl_value != p->req.content_length) {
			*why = "conflicting Content-Length";
			return 400;
		}
		p->seen_cl = 1;
		p->req.content_length = p->cl_value;
		return 0;
	case H_CONNECTION:
		conn_token_end(p);
		return 0;
	default:
		return 0;
	}
}

/* The empty line ending the head was read. Returns 0 or an error status. */
static unsigned head_end(vz_http_parser *p, const char **why)
{
	vz_http_request *r = &p->req;

	if (p->seen_te) {
		*why = p->seen_cl ? "both Transfer-Encoding and Content-Length"
				  : "Transfer-Encoding is not supported";
		return p->seen_cl ? 400 : 501;
	}
	if (r->version_minor >= 1 && !r->has_host) {
		*why = "HTTP/1.1 request without Host";
		return 400;
	}
	r->has_content_length = p->seen_cl;
	if (!p->seen_cl)
		r->content_length = 0;
	r->keep_alive = r->version_minor >= 1 ? !p->conn_close : (p->conn_keep && !p->conn_close);
	p->body_left = r->content_length;
	p->state = p->body_left ? S_BODY : S_DONE;
	return 0;
}

size_t vz_http_parse(vz_http_parser *p, const char *data, size_t len, vz_http_event *ev)
{
	const unsigned char *s = (const unsigned char *)data;
	vz_http_request *r = &p->req;
	const char *why = NULL;
	unsigned st;
	size_t i = 0;

	ev->kind = VZ_HTTP_EV_NONE;
	ev->end = 0;
	ev->data = NULL;
	ev->len = 0;
	ev->status = 0;
	ev->reason = NULL;

	if (p->state == S_ERROR)
		return fail(p, ev, 0, p->err_status, p->err_reason);
	if (p->state == S_BODY) {
		size_t n = len < p->body_left ? len : (size_t)p->body_left;

		if (n == 0)
			return 0;
		p->body_left -= n;
		ev->kind = VZ_HTTP_EV_BODY;
		ev->data = data;
		ev->len = n;
		ev->end = p->body_left == 0;
		if (ev->end)
			p->state = S_DONE;
		return n;
	}
	if (p->state == S_DONE) {
		if (len == 0)
			return 0;
		reset_request(p);
	}

	while (i < len) {
		unsigned char c = s[i];

		/* The head limit: counted byte by byte so an error names the
		 * exact byte that crossed it, whatever the split. */
		if (r->head_bytes >= p->max_head)
			return fail(p, ev, i,
				    p->state == S_TARGET || p->state == S_TARGET_START ? 414 : 431,
				    "request head too large");

		switch (p->state) {
		case S_START:
			if (c == '\r') {
				p->state = S_START_CR;
			} else if (c == '\n') {
				/* a bare empty line: skipped too */
			} else if (tchar[c]) {
				p->method_len = 1;
				r->method[0] = (char)c;
				p->state = S_METHOD;
			} else {
				return fail(p, ev, i, 400, "bad request line");
			}
			break;
		case S_START_CR:
			if (c != '\n')
				return fail(p, ev, i, 400, "CR without LF");
			p->state = S_START;
			break;
		case S_METHOD:
			if (tchar[c]) {
				if (p->method_len >= sizeof r->method - 1)
					return fail(p, ev, i, 501, "method too long");
				r->method[p->method_len++] = (char)c;
			} else if (c == ' ') {
				r->method[p->method_len] = 0;
				r->method_id = method_id(r->method, p->method_len);
				p->state = S_TARGET_START;
			} else {
				return fail(p, ev, i, 400, "bad method");
			}
			break;
		case S_TARGET_START:
		case S_TARGET: {
			/* The target is one run of visible bytes: copy it in one
			 * go, bounded by the buffer and the head limit. */
			size_t room = p->max_head - r->head_bytes, j = i;

			if (!target_char(c)) {
				if (c == ' ' && p->state == S_TARGET) {
					r->target[r->target_len] = 0;
					p->state = S_VERSION;
					p->sub = 0;
					break;
				}
				return fail(p, ev, i, 400, "bad request target");
			}
			while (j < len && j - i < room && target_char(s[j]))
				j++;
			if (r->target_len + (j - i) > VZ_HTTP_TARGET_MAX)
				return fail(p, ev, i, 414, "request target too long");
			memcpy(r->target + r->target_len, s + i, j - i);
			r->target_len += (uint32_t)(j - i);
			r->head_bytes += (uint32_t)(j - i);
			p->state = S_TARGET;
			i = j;
			continue;
		}
		case S_VERSION:
			if (p->sub < 5) {
				if (c != (unsigned char)"HTTP/"[p->sub])
					return fail(p, ev, i, 400, "bad HTTP version");
			} else if (p->sub == 5 || p->sub == 7) {
				if (c < '0' || c > '9')
					return fail(p, ev, i, 400, "bad HTTP version");
				if (p->sub == 5)
					p->major = (uint8_t)(c - '0');
				else
					r->version_minor = c > '0' ? 1 : 0;
			} else if (p->sub == 6) {
				if (c != '.')
					return fail(p, ev, i, 400, "bad HTTP version");
			} else if (c == '\r' || c == '\n') {
				if (p->major != 1)
					return fail(p, ev, i, 505, "HTTP version not supported");
				p->state = c == '\r' ? S_RL_CR : S_HDR_START;
			} else {
				return fail(p, ev, i, 400, "bad HTTP version");
			}
			p->sub++;
			break;
		case S_RL_CR:
			if (c != '\n')
				return fail(p, ev, i, 400, "CR without LF");
			p->state = S_HDR_START;
			break;
		case S_HDR_START:
			if (c == '\r') {
				p->state = S_END_CR;
			} else if (c == '\n') {
				r->head_bytes++;
				i++;
				if ((st = head_end(p, &why)))
					return fail(p, ev, i - 1, st, why);
				ev->kind = VZ_HTTP_EV_REQUEST;
				return i;
			} else if (tchar[c]) {
				if (r->nheaders >= p->max_headers)
					return fail(p, ev, i, 431, "too many header lines");
				r->nheaders++;
				p->name[0] = (char)lower(c);
				p->name_len = 1;
				p->state = S_HDR_NAME;
			} else if (c == ' ' || c == '\t') {
				return fail(p, ev, i, 400, "obsolete line folding");
			} else {
				return fail(p, ev, i, 400, "bad header name");
			}
			break;
		case S_HDR_NAME:
			if (tchar[c]) {
				if (p->name_len < sizeof p->name)
					p->name[p->name_len] = (char)lower(c);
				if (p->name_len < 255)
					p->name_len++;
			} else if (c == ':') {
				p->hdr = header_id(p);
				p->sub = 0;
				p->tok_len = 0;
				p->cl_value = 0;
				if (p->hdr == H_HOST) {
					if (r->has_host)
						return fail(p, ev, i, 400, "more than one Host");
					r->has_host = 1;
				} else if (p->hdr == H_TRANSFER_ENCODING) {
					p->seen_te = 1;
				}
				p->state = S_HDR_VALUE;
			} else {
				return fail(p, ev, i, 400, "bad header name");
			}
			break;
		case S_HDR_VALUE:
			if (p->hdr == H_OTHER || p->hdr == H_HOST ||
			    p->hdr == H_TRANSFER_ENCODING) {
				/* Uninterpreted value: scan the run in one go. */
				size_t room = p->max_head - r->head_bytes, j = i;

				while (j < len && j - i < room && value_char(s[j]))
					j++;
				if (j > i) {
					r->head_bytes += (uint32_t)(j - i);
					i = j;
					continue;
				}
			} else if (value_char(c)) {
				if ((st = value_byte(p, c, &why)))
					return fail(p, ev, i, st, why);
				break;
			}
			if (c == '\r' || c == '\n') {
				if ((st = value_end(p, &why)))
					return fail(p, ev, i, st, why);
				p->state = c == '\r' ? S_HDR_CR : S_HDR_START;
			} else {
				return fail(p, ev, i, 400, "control character in header value");
			}
			break;
		case S_HDR_CR:
			if (c != '\n')
				return fail(p, ev, i, 400, "CR without LF");
			p->state = S_HDR_START;
			break;
		case S_END_CR:
			if (c != '\n')
				return fail(p, ev, i, 400, "CR without LF");
			r->head_bytes++;
			i++;
			if ((st = head_end(p, &why)))
				return fail(p, ev, i - 1, st, why);
			ev->kind = VZ_HTTP_EV_REQUEST;
			return i;
		default:
			return fail(p, ev, i, 500, "parser state corrupt");
		}
		r->head_bytes++;
		i++;
	}
	return len;
}
