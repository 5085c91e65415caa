// SPDX-License-Identifier: MIT
/*
 * Response formatting (response.h). Written with explicit copies and a
 * hand-rolled decimal conversion instead of snprintf: this runs once per
 * request on the hot path of both servers, and the plaintext response is
 * 130-odd bytes.
 */
#include "response.h"

#include <string.h>

void vz_http_date_format(char *out, time_t t)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	gmtime_r(&t, &tm);
	/* "Www, DD Mmm YYYY HH:MM:SS GMT" */
	memcpy(out, days[tm.tm_wday], 3);
	out[3] = ',';
	out[4] = ' ';
	out[5] = (char)('0' + tm.tm_mday / 10);
	out[6] = (char)('0' + tm.tm_mday % 10);
	out[7] = ' ';
	memcpy(out + 8, months[tm.tm_mon], 3);
	out[11] = ' ';
	{
		int y = tm.tm_year + 1900;

		out[12] = (char)('0' + (y / 1000) % 10);
		out[13] = (char)('0' + (y / 100) % 10);
		out[14] = (char)('0' + (y / 10) % 10);
		out[15] = (char)('0' + y % 10);
	}
	out[16] = ' ';
	out[17] = (char)('0' + tm.tm_hour / 10);
	out[18] = (char)('0' + tm.tm_hour % 10);
	out[19] = ':';
	out[20] = (char)('0' + tm.tm_min / 10);
	out[21] = (char)('0' + tm.tm_min % 10);
	out[22] = ':';
	out[23] = (char)('0' + tm.tm_sec / 10);
	out[24] = (char)('0' + tm.tm_sec % 10);
	memcpy(out + 25, " GMT", 4);
	out[29] = 0;
}

/* Appends that stop at the end of the buffer; the caller checks `ok`. */
struct w {
	char *p, *end;
	int ok;
};

static void put(struct w *w, const char *s, size_t n)
{
	if ((size_t)(w->end - w->p) < n) {
		w->ok = 0;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
}

#define PUT_LIT(w, lit) put((w), (lit), sizeof(lit) - 1)

static void put_uint(struct w *w, size_t v)
{
	char tmp[24];
	size_t i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(w, tmp + i, sizeof tmp - i);
}

size_t vz_http_response(char *out, size_t cap, unsigned status, const char *date,
			const char *content_type, const char *extra, const char *body, size_t blen,
			int conn, int head_only)
{
	struct w w = {out, out + cap, 1};
	const char *text = vz_http_status_text(status);
	char code[3] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
			(char)('0' + status % 10)};

	PUT_LIT(&w, "HTTP/1.1 ");
	put(&w, code, 3);
	put(&w, " ", 1);
	put(&w, text, strlen(text));
	PUT_LIT(&w, "\r\nServer: " VZ_HTTP_SERVER_NAME "\r\nDate: ");
	put(&w, date, VZ_HTTP_DATE_LEN);
	PUT_LIT(&w, "\r\nContent-Type: ");
	put(&w, content_type, strlen(content_type));
	PUT_LIT(&w, "\r\nContent-Length: ");
	put_uint(&w, blen);
	if (conn == VZ_HTTP_CONN_CLOSE)
		PUT_LIT(&w, "\r\nConnection: close");
	else if (conn == VZ_HTTP_CONN_KEEP_10)
		PUT_LIT(&w, "\r\nConnection: keep-alive");
	PUT_LIT(&w, "\r\n");
	if (extra)
		put(&w, extra, strlen(extra));
	PUT_LIT(&w, "\r\n");
	if (!head_only && blen)
		put(&w, body, blen);
	return w.ok ? (size_t)(w.p - out) : 0;
}

size_t vz_http_answer(char *out, size_t cap, const vz_http_request *req, const char *date,
		      int *close)
{
	int conn = !req->keep_alive	     ? VZ_HTTP_CONN_CLOSE
		   : req->version_minor == 0 ? VZ_HTTP_CONN_KEEP_10
					     : VZ_HTTP_CONN_KEEP;
	int head = req->method_id == VZ_HTTP_HEAD;

	*close = !req->keep_alive;
	if ((req->target_len == 10 && !memcmp(req->target, "/plaintext", 10)) ||
	    (req->target_len == 1 && req->target[0] == '/')) {
		if (req->method_id == VZ_HTTP_GET || head)
			return vz_http_response(out, cap, 200, date, "text/plain", NULL,
						VZ_HTTP_HELLO, sizeof VZ_HTTP_HELLO - 1, conn,
						head);
		return vz_http_response(out, cap, 405, date, "text/plain", "Allow: GET, HEAD\r\n",
					"Method Not Allowed\n", 19, conn, 0);
	}
	return vz_http_response(out, cap, 404, date, "text/plain", NULL, "Not Found\n", 10, conn,
				head);
}

size_t vz_http_answer_error(char *out, size_t cap, unsigned status, const char *date)
{
	char body[64];
	const char *text = vz_http_status_text(status);
	size_t n = strlen(text);

	if (n > sizeof body - 1)
		n = sizeof body - 1;
	memcpy(body, text, n);
	body[n++] = '\n';
	return vz_http_response(out, cap, status, date, "text/plain", NULL, body, n,
				VZ_HTTP_CONN_CLOSE, 0);
}
