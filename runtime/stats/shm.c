// SPDX-License-Identifier: MIT
/*
 * The shared-memory stats segment (vz_config.stats_shm): created by
 * vz_runtime_create() as /veloz-<pid>-<n>, written every 100 ms by the
 * watchdog thread (stats/watchdog.c) under a seqlock, unlinked by
 * vz_runtime_destroy(). The layout and the reader's rules are in
 * stats/shm_layout.h; vz__shm_read() is the reader tools/veloz-stats uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "stats/shm_layout.h"

struct vz__shm {
	char name[64];
	void *base;
	size_t size;
};

static atomic_uint shm_counter; /* runtime numbers of this process */

const char *vz__shm_name(const struct vz__shm *s)
{
	return s->name;
}

static uint64_t align64(uint64_t x)
{
	return (x + 63) & ~(uint64_t)63;
}

int vz__shm_create(vz_runtime *rt, struct vz__shm **out)
{
	struct vz__shm *s = calloc(1, sizeof *s);
	struct vz__shm_header *h;
	unsigned n = rt->nshards, cap = n * VZ_STATS_TYPES_MAX;
	uint64_t off;
	int fd;

	*out = NULL;
	if (!s)
		return VZ_ENOMEM;
	/* Relaxed: only uniqueness matters. */
	rt->shm_no = atomic_fetch_add_explicit(&shm_counter, 1, memory_order_relaxed);
	snprintf(s->name, sizeof s->name, VZ__SHM_PREFIX "%ld-%u", (long)getpid(), rt->shm_no);
	off = align64(sizeof *h);
	/* Read-only for others of the same user is all the tool needs. */
	fd = shm_open(s->name, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0)
		goto fail;
	h = NULL;
	{
		uint64_t shards_off = off, obs_off, sent_off, recv_off, types_off;

		obs_off = align64(shards_off + (uint64_t)n * sizeof(vz_shard_stats));
		sent_off = align64(obs_off + (uint64_t)n * sizeof(vz_shard_obs));
		recv_off = align64(sent_off + (uint64_t)n * n * sizeof(uint64_t));
		types_off = align64(recv_off + (uint64_t)n * n * sizeof(uint64_t));
		s->size = (size_t)(types_off + (uint64_t)cap * sizeof(vz_type_stats));
		if (ftruncate(fd, (off_t)s->size) < 0) {
			close(fd);
			shm_unlink(s->name);
			goto fail;
		}
		s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (s->base == MAP_FAILED) {
			shm_unlink(s->name);
			goto fail;
		}
		h = s->base;
		memcpy(h->magic, VZ__SHM_MAGIC, sizeof h->magic);
		h->version = VZ__SHM_VERSION;
		h->header_size = sizeof *h;
		h->size = s->size;
		atomic_init(&h->seq, 0);
		h->pid = getpid();
		h->runtime_no = rt->shm_no;
		h->nshards = n;
		h->types_cap = cap;
		h->shard_size = sizeof(vz_shard_stats);
		h->obs_size = sizeof(vz_shard_obs);
		h->type_size = sizeof(vz_type_stats);
		h->shards_off = shards_off;
		h->obs_off = obs_off;
		h->sent_off = sent_off;
		h->recv_off = recv_off;
		h->types_off = types_off;
	}
	*out = s;
	return 0;
fail:
	vz__log(&rt->cfg, VZ_LOG_WARNING, "stats: cannot create shared memory %s: %s", s->name,
		strerror(errno));
	free(s);
	return VZ_EIO;
}

void vz__shm_publish(vz_runtime *rt, struct vz__shm *s)
{
	struct vz__shm_header *h = s->base;
	char *b = s->base;
	vz_stats_snapshot *snap;
	unsigned n = rt->nshards, nt;
	uint64_t seq;

	if (vz_stats_snapshot_create(rt, &snap) < 0)
		return;
	nt = snap->ntypes < h->types_cap ? snap->ntypes : h->types_cap;
	/* Seqlock, writer side (one writer: the watchdog, or the stopping
	 * thread after the watchdog was joined). seq odd, then a release
	 * fence so no data store below is seen before the odd seq; the data;
	 * then the release store of the even seq, which pairs with the
	 * reader's acquire load of seq before its copy. */
	seq = atomic_load_explicit(&h->seq, memory_order_relaxed);
	atomic_store_explicit(&h->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(b + h->shards_off, snap->shard, (size_t)n * sizeof(vz_shard_stats));
	memcpy(b + h->obs_off, snap->obs, (size_t)n * sizeof(vz_shard_obs));
	memcpy(b + h->sent_off, snap->sent_to, (size_t)n * n * sizeof(uint64_t));
	memcpy(b + h->recv_off, snap->received_from, (size_t)n * n * sizeof(uint64_t));
	memcpy(b + h->types_off, snap->types, (size_t)nt * sizeof(vz_type_stats));
	h->ntypes = nt;
	h->published_ns = snap->taken_ns;
	h->publishes++;
	memcpy(h->backend, snap->backend, sizeof h->backend);
	atomic_store_explicit(&h->seq, seq + 2, memory_order_release);
	vz_stats_snapshot_free(snap);
}

void vz__shm_destroy(struct vz__shm *s)
{
	if (!s)
		return;
	munmap(s->base, s->size);
	shm_unlink(s->name);
	free(s);
}

/* ---- reader ---------------------------------------------------------- */

#define WHY(...) snprintf(why, whylen, __VA_ARGS__)

int vz__shm_read(const char *name, vz_stats_snapshot **out, int64_t *pid, char *why, size_t whylen)
{
	struct vz__shm_header hd;
	const struct vz__shm_header *h;
	vz_stats_snapshot *snap = NULL;
	struct stat st;
	void *base;
	char *copy = NULL;
	int fd, rc = VZ_EAGAIN;

	*out = NULL;
	fd = shm_open(name, O_RDONLY, 0);
	if (fd < 0) {
		WHY("%s: %s", name, strerror(errno));
		return errno == ENOENT ? VZ_ENOENT : VZ_EIO;
	}
	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof hd) {
		close(fd);
		WHY("%s: not a veloz stats segment (too small)", name);
		return VZ_ECONFIG;
	}
	base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (base == MAP_FAILED) {
		WHY("%s: cannot map: %s", name, strerror(errno));
		return VZ_EIO;
	}
	h = base;
	if (memcmp(h->magic, VZ__SHM_MAGIC, sizeof h->magic) != 0) {
		WHY("%s: not a veloz stats segment (bad magic)", name);
		rc = VZ_ECONFIG;
		goto out;
	}
	if (h->version != VZ__SHM_VERSION) {
		WHY("%s: stats segment version %u, but this veloz-stats reads version %u; use the "
		    "veloz-stats of the veloz the program was built with",
		    name, h->version, VZ__SHM_VERSION);
		rc = VZ_ECONFIG;
		goto out;
	}
	if (h->size > (uint64_t)st.st_size || h->nshards == 0 || h->nshards > VZ_MAX_SHARDS ||
	    h->shard_size != sizeof(vz_shard_stats) || h->obs_size != sizeof(vz_shard_obs) ||
	    h->type_size != sizeof(vz_type_stats)) {
		WHY("%s: stats segment of version %u with another record layout (a different "
		    "build); refusing it",
		    name, h->version);
		rc = VZ_ECONFIG;
		goto out;
	}
	copy = malloc((size_t)h->size);
	if (!copy) {
		rc = VZ_ENOMEM;
		goto out;
	}
	for (int tries = 0; tries < 1000; tries++) {
		/* Seqlock, reader side: acquire pairs with the writer's
		 * release store of the even seq; the acquire fence after the
		 * copy orders the copy before the second read of seq. */
		uint64_t s1 = atomic_load_explicit(&((struct vz__shm_header *)base)->seq,
						   memory_order_acquire);
		uint64_t s2;

		if (s1 & 1) {
			usleep(100);
			continue;
		}
		memcpy(copy, base, (size_t)h->size);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&((struct vz__shm_header *)base)->seq,
					  memory_order_relaxed);
		if (s1 == s2) {
			rc = 0;
			break;
		}
	}
	if (rc < 0) {
		WHY("%s: no consistent copy (the writer kept writing)", name);
		goto out;
	}
	memcpy(&hd, copy, sizeof hd);
	rc = VZ_ENOMEM;
	snap = calloc(1, sizeof *snap);
	if (!snap)
		goto out;
	snap->shard = calloc(hd.nshards, sizeof *snap->shard);
	snap->obs = calloc(hd.nshards, sizeof *snap->obs);
	snap->sent_to = calloc((size_t)hd.nshards * hd.nshards, sizeof(uint64_t));
	snap->received_from = calloc((size_t)hd.nshards * hd.nshards, sizeof(uint64_t));
	snap->types = calloc(hd.ntypes ? hd.ntypes : 1, sizeof *snap->types);
	if (!snap->shard || !snap->obs || !snap->sent_to || !snap->received_from || !snap->types ||
	    hd.ntypes > hd.types_cap) {
		vz_stats_snapshot_free(snap);
		snap = NULL;
		goto out;
	}
	snap->version = VZ_STATS_VERSION;
	snap->nshards = hd.nshards;
	snap->taken_ns = hd.published_ns;
	memcpy(snap->backend, hd.backend, sizeof snap->backend);
	snap->backend[sizeof snap->backend - 1] = '\0';
	memcpy(snap->shard, copy + hd.shards_off, (size_t)hd.nshards * sizeof(vz_shard_stats));
	memcpy(snap->obs, copy + hd.obs_off, (size_t)hd.nshards * sizeof(vz_shard_obs));
	memcpy(snap->sent_to, copy + hd.sent_off, (size_t)hd.nshards * hd.nshards * 8);
	memcpy(snap->received_from, copy + hd.recv_off, (size_t)hd.nshards * hd.nshards * 8);
	memcpy(snap->types, copy + hd.types_off, (size_t)hd.ntypes * sizeof(vz_type_stats));
	snap->ntypes = hd.ntypes;
	if (pid)
		*pid = hd.pid;
	*out = snap;
	rc = 0;
out:
	free(copy);
	munmap(base, (size_t)st.st_size);
	return rc;
}
