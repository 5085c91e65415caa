// SPDX-License-Identifier: MIT
/*
 * From a configuration and a machine to a placement: the topology a config
 * declares (tests, containers that hide NUMA), and which CPU each shard is
 * pinned to. The runtime and `veloz-topo` both call vz__plan_shards(), so
 * the placement the tool prints is the one a runtime starts.
 *
 * Placement rule: shards with an explicit cpu keep it; the others take the
 * placement CPUs (cfg->cpus, or the allowed CPUs when that is empty) in
 * ascending order, skipping CPUs already pinned. With allow_shared_cpus and
 * more shards than free CPUs, the rest wrap around the placement CPUs again.
 * "shards = auto" means one shard per placement CPU (at most VZ_MAX_SHARDS).
 *
 * Reserved CPUs (runtime.reserve_cpus) are taken out of the placement CPUs
 * before any of this, so the embedder's own threads have a CPU no shard
 * time-shares: a count reserves the highest placement CPUs (shard i keeps
 * the CPU it had without the reservation), a list exactly those CPUs. A
 * shard pinned to a reserved CPU is refused rather than silently moved.
 *
 * Embedded shards run on the embedder's thread, whose affinity the runtime
 * never changes: without an explicit cpu they get none (-1) and take no
 * placement CPU from the others. An explicit cpu on an embedded shard is
 * checked and kept free like any pin (the embedder means to run there).
 */
#include "topo/topo.h"
#include "config/field.h"
#include "util/cpuset.h"

#include <stdio.h>
#include <string.h>

#include <veloz/error.h>

int vz__topo_cpu_node(const struct vz__topology *t, unsigned cpu)
{
	if (!t || cpu >= VZ_MAX_CPUS || t->cpu_node[cpu] < 0)
		return 0;
	return t->cpu_node[cpu];
}

int vz__topo_for_config(const vz_config *cfg, struct vz__topology *t)
{
	const vz_topology_decl *d = &cfg->topology;

	if (d->nnodes == 0)
		return vz__topo_detect(t);
	memset(t, 0, sizeof *t);
	t->declared = true;
	t->nnodes = d->nnodes > VZ_MAX_NODES ? VZ_MAX_NODES : d->nnodes;
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
		t->cpu_node[c] = -1;
		t->cpu_core[c] = -1;
	}
	for (unsigned n = 0; n < t->nnodes; n++) {
		t->node_cpus[n] = d->node_cpus[n];
		vz__cpuset_or(&t->online, &d->node_cpus[n]);
		for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
			/* first node wins if a (refused) declaration overlaps */
			if (vz_cpuset_has(&d->node_cpus[n], c) && t->cpu_node[c] < 0) {
				t->cpu_node[c] = (int16_t)n;
				t->cpu_core[c] = (int16_t)c; /* no SMT in a declaration */
			}
		}
	}
	t->allowed = t->online;
	t->cgroup = t->online;
	t->affinity = t->online;
	return 0;
}

bool vz__cpu_refused(const struct vz__topology *t, unsigned cpu, char *why, size_t why_len)
{
	char set[256];

	if (cpu < VZ_MAX_CPUS && vz_cpuset_has(&t->allowed, cpu))
		return false;
	if (t->declared) {
		vz__cpuset_format(&t->online, set, sizeof set);
		snprintf(why, why_len, "CPU %u is not in the declared topology (CPUs: %s)", cpu,
			 set);
	} else if (cpu >= VZ_MAX_CPUS || !vz_cpuset_has(&t->online, cpu)) {
		vz__cpuset_format(&t->online, set, sizeof set);
		snprintf(why, why_len, "CPU %u is not online (online: %s)", cpu, set);
	} else if (!vz_cpuset_has(&t->affinity, cpu)) {
		vz__cpuset_format(&t->affinity, set, sizeof set);
		snprintf(why, why_len, "CPU %u is outside the process affinity mask (%s)", cpu,
			 set);
	} else {
		vz__cpuset_format(&t->cgroup, set, sizeof set);
		snprintf(why, why_len, "CPU %u is outside the cgroup cpuset (%s)", cpu, set);
	}
	return true;
}

int vz__plan_reserved(const vz_config *cfg, const struct vz__topology *t,
		      const struct vz__config_src *src, vz_cpuset *out, vz_config_error *err)
{
	vz_cpuset place, left;
	unsigned nplace, taken = 0;
	char why[384], set[256], res[256];
	int rc;

	if (!cfg || !t || !out)
		return VZ_EINVAL;
	vz_cpuset_zero(out);
	rc = vz__config_check_value(cfg, src, VZ__F_RESERVE, err); /* not both */
	if (rc < 0)
		return rc;
	place = vz_cpuset_count(&cfg->cpus) ? cfg->cpus : t->allowed;
	nplace = vz_cpuset_count(&place);
	vz__cpuset_format(&place, set, sizeof set);
	if (vz_cpuset_count(&cfg->reserve_cpus)) {
		for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
			if (!vz_cpuset_has(&cfg->reserve_cpus, c))
				continue;
			/* the embedder must be able to pin a thread there */
			if (vz__cpu_refused(t, c, why, sizeof why))
				return vz__config_field_error(err, src, VZ__F_RESERVE,
							      "%s; only an allowed CPU can be "
							      "reserved",
							      why);
		}
		*out = cfg->reserve_cpus;
	} else if (cfg->reserve_count) {
		if (cfg->reserve_count >= nplace)
			return vz__config_field_error(
			    err, src, VZ__F_RESERVE,
			    "reserving %u CPU%s leaves none of the %u placement CPUs (%s) for "
			    "shards; at least one must remain",
			    cfg->reserve_count, cfg->reserve_count == 1 ? "" : "s", nplace, set);
		for (unsigned c = VZ_MAX_CPUS; c-- > 0 && taken < cfg->reserve_count;) {
			if (vz_cpuset_has(&place, c)) {
				vz_cpuset_set(out, c);
				taken++;
			}
		}
		return 0;
	} else {
		return 0;
	}
	left = place;
	for (unsigned i = 0; i < VZ_MAX_CPUS / 64; i++)
		left.bits[i] &= ~out->bits[i];
	if (vz_cpuset_count(&left) == 0) {
		vz__cpuset_format(out, res, sizeof res);
		return vz__config_field_error(err, src, VZ__F_RESERVE,
					      "reserving CPUs %s leaves none of the placement "
					      "CPUs (%s) for shards; at least one must remain",
					      res, set);
	}
	return 0;
}

/* Line and key of shard i's cpu entry for messages. */
static int shard_cpu_error(vz_config_error *err, const struct vz__config_src *src, unsigned i,
			   const char *msg)
{
	char key[32];

	snprintf(key, sizeof key, "shard.%u.cpu", i);
	return vz__config_error_at(err, src, src ? src->shard_cpu[i] : 0, NULL, key, "%s", msg);
}

int vz__plan_shards_src(const vz_config *cfg, const struct vz__topology *t,
			const struct vz__config_src *src, int cpu_of_shard[VZ_MAX_SHARDS],
			unsigned *nshards, vz_config_error *err)
{
	int16_t owner[VZ_MAX_CPUS];
	vz_cpuset place, reserved;
	unsigned count, unpinned = 0, free_cpus = 0, next = 0;
	char why[384], set[256];
	int rc;

	if (!cfg || !t || !cpu_of_shard || !nshards)
		return VZ_EINVAL;
	place = vz_cpuset_count(&cfg->cpus) ? cfg->cpus : t->allowed;
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++) {
		if (vz_cpuset_has(&place, c) && vz__cpu_refused(t, c, why, sizeof why))
			return vz__config_field_error(err, src, VZ__F_CPUS, "%s", why);
	}
	rc = vz__plan_reserved(cfg, t, src, &reserved, err);
	if (rc < 0)
		return rc;
	for (unsigned i = 0; i < VZ_MAX_CPUS / 64; i++)
		place.bits[i] &= ~reserved.bits[i];
	count = cfg->nshards;
	if (count == 0) {
		count = vz_cpuset_count(&place);
		if (count > VZ_MAX_SHARDS)
			count = VZ_MAX_SHARDS;
	}
	if (count == 0)
		return vz__config_field_error(err, src, VZ__F_SHARDS,
					      "no CPU to place shards on (the allowed set is "
					      "empty)");
	if (count > VZ_MAX_SHARDS)
		return vz__config_field_error(err, src, VZ__F_SHARDS,
					      "%u shards is out of range 1..%u", count,
					      VZ_MAX_SHARDS);

	/* explicit pins first, so auto placement can step around them */
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++)
		owner[c] = -1;
	for (unsigned i = 0; i < count; i++) {
		int c = cfg->shards[i].cpu;

		cpu_of_shard[i] = -1;
		if (c < 0) {
			if (!cfg->shards[i].embedded)
				unpinned++;
			continue;
		}
		if (vz__cpu_refused(t, (unsigned)c, why, sizeof why))
			return shard_cpu_error(err, src, i, why);
		/* An embedded shard runs on the embedder's thread, so a reserved
		 * CPU is exactly where it may say it runs. */
		if (!cfg->shards[i].embedded && vz_cpuset_has(&reserved, (unsigned)c)) {
			vz__cpuset_format(&reserved, set, sizeof set);
			snprintf(why, sizeof why,
				 "CPU %d is reserved for the embedder (runtime.reserve_cpus: %s); "
				 "pin the shard elsewhere or reserve another CPU",
				 c, set);
			return shard_cpu_error(err, src, i, why);
		}
		if (owner[c] >= 0 && !cfg->allow_shared_cpus) {
			snprintf(why, sizeof why,
				 "CPU %d already hosts shard %d; set runtime.allow_shared_cpus = "
				 "true to share it",
				 c, owner[c]);
			return shard_cpu_error(err, src, i, why);
		}
		if (owner[c] < 0)
			owner[c] = (int16_t)i;
		cpu_of_shard[i] = c;
	}
	for (unsigned c = 0; c < VZ_MAX_CPUS; c++)
		if (vz_cpuset_has(&place, c) && owner[c] < 0)
			free_cpus++;
	if (unpinned > free_cpus && !cfg->allow_shared_cpus) {
		vz__cpuset_format(&place, set, sizeof set);
		return vz__config_field_error(
		    err, src, VZ__F_SHARDS,
		    "%u shards without a cpu need %u free CPUs but only %u "
		    "of the placement CPUs (%s) are free; lower shards, "
		    "widen runtime.cpus%s or set runtime.allow_shared_cpus "
		    "= true",
		    unpinned, unpinned, free_cpus, set,
		    vz_cpuset_count(&reserved) ? ", reserve fewer CPUs" : "");
	}
	if (unpinned > 0 && vz_cpuset_count(&place) == 0)
		return vz__config_field_error(err, src, VZ__F_SHARDS,
					      "no CPU to place unpinned shards on");

	/* free placement CPUs in order, then (shared) round robin over all */
	for (unsigned i = 0; i < count; i++) {
		if (cpu_of_shard[i] >= 0 || cfg->shards[i].embedded)
			continue;
		if (free_cpus > 0) {
			while (!vz_cpuset_has(&place, next) || owner[next] >= 0)
				next++;
			owner[next] = (int16_t)i;
			cpu_of_shard[i] = (int)next;
			free_cpus--;
			if (free_cpus == 0)
				next = 0;
			continue;
		}
		while (!vz_cpuset_has(&place, next))
			next = (next + 1) % VZ_MAX_CPUS;
		cpu_of_shard[i] = (int)next;
		next = (next + 1) % VZ_MAX_CPUS;
	}
	*nshards = count;
	return 0;
}

int vz__plan_shards(const vz_config *cfg, const struct vz__topology *t,
		    int cpu_of_shard[VZ_MAX_SHARDS], unsigned *nshards, struct vz_config_error *err)
{
	return vz__plan_shards_src(cfg, t, NULL, cpu_of_shard, nshards, err);
}
