/* SPDX-License-Identifier: MIT */
/*
 * The send paths' calls for the rest of the runtime (send.c): sends from a
 * shard thread with a sender, flags or a correlation id, and posts from any
 * other thread, runtime-made ones included.
 */
#ifndef VZ_CORE_SEND_H
#define VZ_CORE_SEND_H

#include <stddef.h>
#include <stdint.h>

#include <veloz.h>

struct vz__shard;

/* send.c */
int vz__post_sys(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len);
/* Fault builds: stall a foreign poster until a stop has begun (send.c). */
void vz__stall_until_stopping(vz_runtime *rt);
int vz__send_from(struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		  const void *payload, size_t len);
/* vz__send_from() with a correlation id (m->corr). */
int vz__send_corr(struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		  uint32_t corr, const void *payload, size_t len);
/* A post from any thread with a sender, flags and correlation (ports,
 * spawn requests): from a shard thread as vz__send_corr(), else through
 * the target shard's inbox. Same errors as vz_post(). */
int vz__post_full(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		  uint32_t corr, const void *payload, size_t len);

/* send.c: a post from a non-shard thread with a sender (the cluster's
 * transport delivering a message from another node). */
int vz__post_from(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, const void *payload,
		  size_t len);

#endif
