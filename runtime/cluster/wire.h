/* SPDX-License-Identifier: MIT */
/*
 * The wire format of a cluster message: a fixed 48-byte header, the origin
 * node's name, then the payload. One NATS message carries one record or
 * several back to back (a batch: the messages of one loop turn of the
 * transport to one remote reference). Every field is little-endian. A receiver
 * checks the magic, the version, the header length and that the lengths
 * add up to what the server delivered before it trusts anything; a message
 * that fails is dropped and counted (malformed), never delivered.
 *
 *   off size field
 *     0   4  magic      "VZC1" (0x31435a56 little-endian)
 *     4   1  version    VZ__WIRE_VERSION; a receiver refuses others
 *     5   1  hdr_len    48 (room for later fields: a receiver skips to
 *                        hdr_len, so a newer sender can append)
 *     6   1  node_len   bytes of the origin node's name that follow
 *     7   1  flags      0
 *     8   4  type       message type (>= VZ_MSG_USER)
 *    12   4  len        payload bytes
 *    16   4  stream     origin's stream id (its remote-reference index)
 *    20   4  seq        1, 2, ... per stream; 0 = not sequenced (queue)
 *    24   8  node_id    origin node's incarnation (random at create)
 *    32   8  from       sender actor's reference on its node (0 = none)
 *    40   8  to         target actor's reference on the receiving node,
 *                        for messages to a node (replies); 0 for names
 */
#ifndef VZ_CLUSTER_WIRE_H
#define VZ_CLUSTER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VZ__WIRE_MAGIC	 0x31435a56u
#define VZ__WIRE_VERSION 2u /* 2: records may come back to back (batches) */
#define VZ__WIRE_HDR	 48u
#define VZ__WIRE_NODE	 63u /* longest node name on the wire */

struct vz__wire {
	uint32_t type;
	uint32_t len;
	uint32_t stream;
	uint32_t seq;
	uint64_t node_id;
	uint64_t from;
	uint64_t to;
	const char *node; /* decoded: points into the buffer, not NUL-terminated */
	uint8_t node_len;
	const unsigned char *payload; /* decoded: points into the buffer */
};

/* Bytes a message with this node name and payload takes. */
static inline size_t vz__wire_size(size_t node_len, size_t len)
{
	return VZ__WIRE_HDR + node_len + len;
}

/* Write header and node name into buf (vz__wire_size(w->node_len, 0)
 * bytes); the caller copies the payload after them. */
void vz__wire_encode(unsigned char *buf, const struct vz__wire *w);

/* Stamp stream and sequence into an encoded header. */
void vz__wire_stamp(unsigned char *buf, uint32_t stream, uint32_t seq);

/* Little-endian fields, byte by byte (any host). */
void vz__wire_put32(unsigned char *p, uint32_t v);
void vz__wire_put64(unsigned char *p, uint64_t v);
uint32_t vz__wire_get32(const unsigned char *p);
uint64_t vz__wire_get64(const unsigned char *p);

/* Check and decode n bytes holding exactly one record. 0, or -1 for
 * anything malformed (then *w is unspecified). */
int vz__wire_decode(const unsigned char *buf, size_t n, struct vz__wire *w);

/* Check and decode the first record of n bytes (a batch: one NATS
 * message carries several records back to back); *used = its size. 0, or
 * -1 when it is malformed or does not fit in n. */
int vz__wire_decode_next(const unsigned char *buf, size_t n, struct vz__wire *w, size_t *used);

#endif
