/* SPDX-License-Identifier: MIT */
/*
 * Conversations: a request that expects one answer by a deadline.
 *
 * vz_ask() sends a message like vz_send() and gives it a correlation id;
 * the receiver answers with vz_reply(), which carries the id back. The
 * asker then gets exactly one of: the reply (its own type, vz_msg_corr()
 * == the id), or a VZ_MSG_TIMEOUT message (no payload, vz_msg_corr() ==
 * the id) once `timeout_ns` has passed without a reply. The deadline is a
 * timer of the asker's shard (timer.h precision: never early, at most one
 * loop turn late), cancelled when the reply arrives. A reply that arrives
 * after the timeout is dropped: counted as a dead letter (dead_letters,
 * and the dead-letter hook with reason VZ_ETIMEDOUT), so sent = handled +
 * dead-lettered still holds. A reply is a user message, counted like any
 * other; the timeout is runtime-made and not counted (as a timer expiry).
 *
 * Engine threads ask through a port (port.h): vz_port_post() with a
 * correlation, and the reply arrives in the port.
 */
#ifndef VELOZ_ASK_H
#define VELOZ_ASK_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "export.h"
#include "message.h"

VZ_BEGIN_DECLS

/* Ask `to` (any shard) with a message of `type` and a deadline
 * `timeout_ns` from now (0: the next loop turn, unless the reply is
 * already there). *corr receives the id the answer will carry (never 0).
 * The asker's pending asks end with the answer or with the asker's end
 * (then no answer comes). From the asking actor (its home shard). Errors:
 * those of vz_send() (nothing sent, no answer will come), VZ_EINVAL also
 * for a NULL corr or a deadline that overflows, VZ_ENOMEM when the timer
 * or the table of pending asks cannot grow. */
VZ_API int vz_ask(vz_actor *self, vz_ref to, uint32_t type, const void *payload, size_t len,
		  uint64_t timeout_ns, uint32_t *corr);

/* Answer an ask later, outside the receive call that got it: `to` and
 * `corr` are the request's vz_msg_sender() and vz_msg_corr(), kept by the
 * answering actor. The same as the vz_reply() the request would have had
 * (corr 0: a plain vz_send()). From the answering actor. Errors: those of
 * vz_send(). */
VZ_API int vz_respond(vz_actor *self, vz_ref to, uint32_t corr, uint32_t type, const void *payload,
		      size_t len);

VZ_END_DECLS

#endif
