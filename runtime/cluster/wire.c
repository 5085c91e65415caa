// SPDX-License-Identifier: MIT
/*
 * Encoding and checking the cluster wire header (layout in wire.h). Byte
 * by byte, so it reads the same on any host; the decoder never reads past
 * the n bytes it was given, whatever the header claims.
 */
#include "cluster/wire.h"

#include <string.h>

void vz__wire_put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void vz__wire_put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint32_t vz__wire_get32(const unsigned char *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t vz__wire_get64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

void vz__wire_encode(unsigned char *buf, const struct vz__wire *w)
{
	vz__wire_put32(buf, VZ__WIRE_MAGIC);
	buf[4] = VZ__WIRE_VERSION;
	buf[5] = VZ__WIRE_HDR;
	buf[6] = w->node_len;
	buf[7] = 0;
	vz__wire_put32(buf + 8, w->type);
	vz__wire_put32(buf + 12, w->len);
	vz__wire_put32(buf + 16, w->stream);
	vz__wire_put32(buf + 20, w->seq);
	vz__wire_put64(buf + 24, w->node_id);
	vz__wire_put64(buf + 32, w->from);
	vz__wire_put64(buf + 40, w->to);
	memcpy(buf + VZ__WIRE_HDR, w->node, w->node_len);
}

void vz__wire_stamp(unsigned char *buf, uint32_t stream, uint32_t seq)
{
	vz__wire_put32(buf + 16, stream);
	vz__wire_put32(buf + 20, seq);
}

int vz__wire_decode(const unsigned char *buf, size_t n, struct vz__wire *w)
{
	size_t used;

	/* One record, exactly: no trailing bytes. */
	if (vz__wire_decode_next(buf, n, w, &used) < 0 || used != n)
		return -1;
	return 0;
}

int vz__wire_decode_next(const unsigned char *buf, size_t n, struct vz__wire *w, size_t *used)
{
	size_t hdr;

	if (n < VZ__WIRE_HDR || vz__wire_get32(buf) != VZ__WIRE_MAGIC || buf[4] != VZ__WIRE_VERSION)
		return -1;
	hdr = buf[5];
	if (hdr < VZ__WIRE_HDR || buf[6] > VZ__WIRE_NODE || buf[6] == 0)
		return -1;
	w->node_len = buf[6];
	w->type = vz__wire_get32(buf + 8);
	w->len = vz__wire_get32(buf + 12);
	w->stream = vz__wire_get32(buf + 16);
	w->seq = vz__wire_get32(buf + 20);
	w->node_id = vz__wire_get64(buf + 24);
	w->from = vz__wire_get64(buf + 32);
	w->to = vz__wire_get64(buf + 40);
	/* The record must fit in what is left: no short payload. Compared
	 * without overflow (each term is bounded). */
	if ((uint64_t)hdr + w->node_len + w->len > n)
		return -1;
	w->node = (const char *)buf + hdr;
	w->payload = buf + hdr + w->node_len;
	*used = hdr + w->node_len + w->len;
	return 0;
}
