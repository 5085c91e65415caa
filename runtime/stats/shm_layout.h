/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory stats segment's layout, shared by the runtime (the
 * writer, stats/shm.c) and tools/veloz-stats (a reader in another
 * process). A reader checks magic and version before anything else and
 * refuses a segment of another version: the layout below is only
 * meaningful to a reader built from the same version of this file.
 *
 * Consistency: one writer (the runtime's watchdog thread) and a seqlock.
 * The writer makes seq odd, writes, makes it even; a reader copies the
 * segment between two reads of an even, unchanged seq and retries
 * otherwise. Readers never write, so they can never block a shard or the
 * writer (the segment is mapped read-only by the tool).
 */
#ifndef VZ_STATS_SHM_LAYOUT_H
#define VZ_STATS_SHM_LAYOUT_H

#include <stdatomic.h>
#include <stdint.h>

#include <veloz.h>

#define VZ__SHM_MAGIC	"VZSTATS"
#define VZ__SHM_VERSION 1u
#define VZ__SHM_PREFIX	"/veloz-"

struct vz__shm_header {
	char magic[8];	  /* VZ__SHM_MAGIC, NUL included */
	uint32_t version; /* VZ__SHM_VERSION; first field a reader checks after magic */
	uint32_t header_size;
	uint64_t size;	      /* bytes of the whole segment */
	_Atomic uint64_t seq; /* seqlock: odd while the writer writes */
	int64_t pid;
	uint32_t runtime_no;
	uint32_t nshards;
	uint32_t types_cap;  /* room for this many vz_type_stats */
	uint32_t ntypes;     /* of them in use */
	uint32_t shard_size; /* sizeof(vz_shard_stats) of the writer */
	uint32_t obs_size;   /* sizeof(vz_shard_obs) */
	uint32_t type_size;  /* sizeof(vz_type_stats) */
	uint32_t pad_;
	uint64_t published_ns; /* writer's monotonic clock */
	uint64_t publishes;
	char backend[16];
	/* Byte offsets from the start of the segment. */
	uint64_t shards_off; /* nshards x shard_size */
	uint64_t obs_off;    /* nshards x obs_size */
	uint64_t sent_off;   /* nshards^2 uint64_t */
	uint64_t recv_off;   /* nshards^2 uint64_t */
	uint64_t types_off;  /* types_cap x type_size */
};

/* Read the segment `name` ("/veloz-<pid>-<n>") into a new snapshot
 * (free it with vz_stats_snapshot_free()). 0; VZ_ENOENT (no such segment);
 * VZ_ECONFIG (not a veloz segment, or another version: why[] says which);
 * VZ_EIO (cannot map it) or VZ_EAGAIN (no consistent copy after many
 * tries); VZ_ENOMEM. *pid gets the writer's process id. why[] gets one line
 * on failure. Any thread of any process. */
int vz__shm_read(const char *name, vz_stats_snapshot **out, int64_t *pid, char *why, size_t whylen);

#endif
