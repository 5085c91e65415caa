// SPDX-License-Identifier: MIT
/*
 * Per-shard observability state (stats/obs.h): the actor-type table, the
 * histogram arithmetic of stats.h, and snapshots (vz_stats_snapshot_create),
 * which read every counter with a relaxed load while the shards run on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int vz__obs_init(struct vz__shard *sh)
{
	const vz_config *cfg = &sh->rt->cfg;
	unsigned n = sh->rt->nshards;
	struct vz__obs *o = aligned_alloc(64, sizeof *o);

	if (!o)
		return VZ_ENOMEM;
	memset(o, 0, sizeof *o);
	sh->obs.o = o;
	o->sent_to = calloc(n, sizeof *o->sent_to);
	o->received_from = calloc(n, sizeof *o->received_from);
	if (!o->sent_to || !o->received_from)
		return VZ_ENOMEM; /* vz__obs_fini() frees what was made */
	if (!cfg->stats_types_off) {
		sh->obs.sample_every =
		    cfg->stats_sample_runs ? cfg->stats_sample_runs : VZ_STATS_SAMPLE_RUNS_DEFAULT;
		sh->obs.sample_left = sh->obs.sample_every;
	}
	return 0;
}

void vz__obs_fini(struct vz__shard *sh)
{
	struct vz__obs *o = sh->obs.o;

	if (!o)
		return;
	for (unsigned i = 0; i < VZ_STATS_TYPES_MAX; i++)
		free(o->types[i]);
	free(o->sent_to);
	free(o->received_from);
	free(o);
	sh->obs.o = NULL;
}

void vz__obs_pool_submitted(vz_runtime *rt, unsigned shard)
{
	vz__obs_add(&rt->shards[shard]->obs.o->pool_jobs, 1);
}

struct vz__atype *vz__obs_type_slow(struct vz__shard *sh, const vz_actor_spec *spec)
{
	struct vz__obs *o = sh->obs.o;
	/* Relaxed: the owner reads its own store. */
	uint32_t n = atomic_load_explicit(&o->ntypes, memory_order_relaxed);
	struct vz__atype *t = NULL;

	for (uint32_t i = 0; i < n; i++)
		if (o->types[i]->spec == spec) {
			t = o->types[i];
			goto found;
		}
	if (n == VZ_STATS_TYPES_MAX) {
		/* Full: the last entry is "(other)" from now on (its spec is
		 * cleared when the table fills, below). */
		t = o->types[n - 1];
		goto found;
	}
	t = aligned_alloc(64, sizeof *t);
	if (!t)
		return NULL;
	memset(t, 0, sizeof *t);
	if (n == VZ_STATS_TYPES_MAX - 1) {
		t->spec = NULL;
		snprintf(t->name, sizeof t->name, "(other)");
	} else {
		t->spec = spec;
		snprintf(t->name, sizeof t->name, "%s", spec->name ? spec->name : "(unnamed)");
	}
	o->types[n] = t;
	/* Release: pairs with the acquire load in snapshots; the entry
	 * (name, zeroed counters) is visible before it is counted. */
	atomic_store_explicit(&o->ntypes, n + 1, memory_order_release);
found:
	sh->obs.last_spec = spec;
	sh->obs.last_type = t;
	return t;
}

/* ---- histograms ---------------------------------------------------------- */

VZ_API unsigned vz_hist_index(uint64_t v)
{
	return vz__hist_index(v);
}

VZ_API uint64_t vz_hist_lower(unsigned i)
{
	const unsigned sub = 1u << VZ_HIST_SUB_BITS;
	unsigned e;

	if (i < sub)
		return i;
	if (i >= VZ_HIST_BUCKETS)
		i = VZ_HIST_BUCKETS - 1;
	e = i / sub + VZ_HIST_SUB_BITS - 1; /* the power of two of the octave */
	return (uint64_t)(sub + i % sub) << (e - VZ_HIST_SUB_BITS);
}

VZ_API uint64_t vz_hist_upper(unsigned i)
{
	if (i >= VZ_HIST_BUCKETS - 1)
		return UINT64_MAX;
	return vz_hist_lower(i + 1) - 1;
}

VZ_API void vz_hist_record(vz_hist *h, uint64_t v, uint64_t count)
{
	if (!h || !count)
		return;
	h->bucket[vz__hist_index(v)] += count;
	h->count += count;
	h->sum += v * count;
	if (v > h->max)
		h->max = v;
}

VZ_API void vz_hist_merge(vz_hist *dst, const vz_hist *src)
{
	if (!dst || !src)
		return;
	for (unsigned i = 0; i < VZ_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->max > dst->max)
		dst->max = src->max;
}

VZ_API uint64_t vz_hist_quantile(const vz_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (!h || !h->count || !(q > 0.0) || q > 1.0)
		return 0;
	want = (uint64_t)(q * (double)h->count + 0.999999);
	if (want > h->count)
		want = h->count;
	if (!want)
		want = 1;
	for (unsigned i = 0; i < VZ_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= want) {
			uint64_t u = vz_hist_upper(i);

			return u < h->max ? u : h->max;
		}
	}
	return h->max;
}

/* ---- snapshots ----------------------------------------------------------- */

static void read_hist(vz_hist *h, _Atomic uint64_t *b, _Atomic uint64_t *sum, _Atomic uint64_t *max)
{
	/* Relaxed: single-writer counters read as a snapshot. */
	h->count = 0;
	for (unsigned i = 0; i < VZ_HIST_BUCKETS; i++) {
		h->bucket[i] = atomic_load_explicit(&b[i], memory_order_relaxed);
		h->count += h->bucket[i];
	}
	h->sum = atomic_load_explicit(sum, memory_order_relaxed);
	h->max = atomic_load_explicit(max, memory_order_relaxed);
}

static void read_type(const struct vz__atype *ct, unsigned shard, vz_type_stats *o)
{
	struct vz__atype *t = (struct vz__atype *)ct;

	memset(o, 0, sizeof *o);
	memcpy(o->name, t->name, sizeof o->name);
	o->shard = shard;
	o->handled = atomic_load_explicit(&t->handled, memory_order_relaxed);
	o->runs = atomic_load_explicit(&t->runs, memory_order_relaxed);
	o->mailbox_hwm = atomic_load_explicit(&t->mbox_hwm, memory_order_relaxed);
	o->spawned = atomic_load_explicit(&t->spawned, memory_order_relaxed);
	read_hist(&o->wait, t->wait, &t->wait_sum, &t->wait_max);
	read_hist(&o->handle, t->handle, &t->handle_sum, &t->handle_max);
}

VZ_API int vz_stats_snapshot_create(const vz_runtime *rt, vz_stats_snapshot **out)
{
	vz_stats_snapshot *s;
	unsigned n, nt = 0, k = 0;
	uint32_t counts[VZ_MAX_SHARDS];

	if (!rt || !out)
		return VZ_EINVAL;
	*out = NULL;
	n = rt->nshards;
	for (unsigned i = 0; i < n; i++) {
		/* Acquire: pairs with the release in vz__obs_type_slow(). */
		counts[i] =
		    atomic_load_explicit(&rt->shards[i]->obs.o->ntypes, memory_order_acquire);
		nt += counts[i];
	}
	s = calloc(1, sizeof *s);
	if (!s)
		return VZ_ENOMEM;
	s->shard = calloc(n, sizeof *s->shard);
	s->obs = calloc(n, sizeof *s->obs);
	s->sent_to = calloc((size_t)n * n, sizeof *s->sent_to);
	s->received_from = calloc((size_t)n * n, sizeof *s->received_from);
	s->types = calloc(nt ? nt : 1, sizeof *s->types);
	if (!s->shard || !s->obs || !s->sent_to || !s->received_from || !s->types) {
		vz_stats_snapshot_free(s);
		return VZ_ENOMEM;
	}
	s->version = VZ_STATS_VERSION;
	s->nshards = n;
	s->taken_ns = vz__mono_ns();
	snprintf(s->backend, sizeof s->backend, "%s", vz_runtime_backend(rt));
	for (unsigned i = 0; i < n; i++) {
		struct vz__obs *o = rt->shards[i]->obs.o;

		vz_stats_shard(rt, i, &s->shard[i]);
		s->obs[i].wakeups_received =
		    atomic_load_explicit(&o->wakeups_received, memory_order_relaxed);
		s->obs[i].stalls = atomic_load_explicit(&o->stalls, memory_order_relaxed);
		s->obs[i].pool_jobs = atomic_load_explicit(&o->pool_jobs, memory_order_relaxed);
		s->obs[i].turn_seq = atomic_load_explicit(&o->turn_seq, memory_order_relaxed);
		for (unsigned j = 0; j < n; j++) {
			s->sent_to[(size_t)i * n + j] =
			    atomic_load_explicit(&o->sent_to[j], memory_order_relaxed);
			s->received_from[(size_t)i * n + j] =
			    atomic_load_explicit(&o->received_from[j], memory_order_relaxed);
		}
		for (uint32_t t = 0; t < counts[i]; t++)
			read_type(o->types[t], i, &s->types[k++]);
	}
	s->ntypes = k;
	*out = s;
	return 0;
}

VZ_API void vz_stats_snapshot_free(vz_stats_snapshot *s)
{
	if (!s)
		return;
	free(s->shard);
	free(s->obs);
	free(s->sent_to);
	free(s->received_from);
	free(s->types);
	free(s);
}

VZ_API const char *vz_stats_shm_name(const vz_runtime *rt)
{
	return rt && rt->shm ? vz__shm_name(rt->shm) : NULL;
}
