// SPDX-License-Identifier: MIT
/*
 * vz_config_default(): the configuration an embedder gets without a file.
 * Every number here is also the value a file falls back to for a key it
 * does not mention, and tools/README.md lists them; change both together.
 */
#include <string.h>

#include <veloz/config.h>
#include <veloz/error.h>

VZ_API int vz_config_default(vz_config *cfg)
{
	if (!cfg)
		return VZ_EINVAL;
	memset(cfg, 0, sizeof *cfg);
	cfg->nshards = 0; /* one shard per allowed CPU */
	for (unsigned i = 0; i < VZ_MAX_SHARDS; i++) {
		cfg->shards[i].cpu = -1;
		cfg->shards[i].ring_entries = 0;
		cfg->shards[i].embedded = false;
	}
	vz_cpuset_zero(&cfg->cpus); /* empty: the process affinity mask */
	cfg->allow_shared_cpus = false;
	cfg->backend = VZ_BACKEND_AUTO;
	cfg->idle_policy = VZ_IDLE_SPIN_THEN_SLEEP;
	cfg->idle_spin_us = 20;
	cfg->timer_tick_us = 1000;
	cfg->ring_entries = 1024;
	cfg->batch = 64;
	cfg->actors_per_turn = 256;
	cfg->send_batch = 32;
	cfg->outbox_limit = VZ_OUTBOX_LIMIT_DEFAULT;
	cfg->pool.workers_per_node = 0;
	cfg->pool.queue_capacity = 4096;
	cfg->pool.overload = VZ_POOL_REJECT;
	cfg->pool.share_shard_cpus = true;
	cfg->topology.nnodes = 0; /* detect */
	cfg->dead_letter = NULL;
	cfg->dead_letter_ctx = NULL;
	cfg->create_error = NULL;
	cfg->log = NULL; /* stderr */
	cfg->log_user = NULL;
	cfg->reserve_count = 0; /* no CPU kept for the embedder */
	vz_cpuset_zero(&cfg->reserve_cpus);
	cfg->turn_budget_us = VZ_TURN_BUDGET_US_DEFAULT;
	return 0;
}
