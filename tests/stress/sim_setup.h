/* SPDX-License-Identifier: MIT */
/*
 * What the simulation stress programs (stress_sim*.c) share around
 * vz_sim_main(), which already runs each test over the seeds, names the
 * first failing seed with the command that replays it, and replays it:
 * the small-ring runtime they all simulate, fault options, and the books
 * checked after the final stop. Header-only (each program includes it
 * once); the helpers call only the public API.
 */
#ifndef VZ_TEST_SIM_SETUP_H
#define VZ_TEST_SIM_SETUP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <veloz.h>

/* Defaults with `nshards` shards and small rings (8 entries, batches of
 * 4), so that rings fill and outboxes overflow within a short run. */
static inline void vz_test_sim_config(vz_config *cfg, unsigned nshards)
{
	vz_config_default(cfg);
	cfg->nshards = nshards;
	cfg->ring_entries = 8;
	cfg->send_batch = 4;
}

/* Default options (the seed is vz_sim_main()'s) with `faults`
 * (VZ_SIM_FAULT_* bits) drawn at `permille` per decision. */
static inline void vz_test_sim_faults(vz_sim_options *opt, uint32_t faults, uint32_t permille)
{
	vz_sim_options_default(opt, 0);
	opt->faults = faults;
	opt->fault_permille = permille;
}

/* Stop rt, then check its books: every message sent (by actors and by
 * foreign threads) was handled or dead-lettered, no actor is live, and,
 * unless dead_ok, none was dead-lettered. Returns 0, or prints what is
 * wrong and returns 1 (a failed run for vz_sim_main()). */
static inline int vz_test_sim_stop_and_count(vz_runtime *rt, bool dead_ok)
{
	vz_shard_stats t;
	uint64_t foreign;

	if (vz_runtime_stop(rt) != 0 || vz_stats_total(rt, &t, &foreign) != 0)
		return printf("stop failed\n"), 1;
	if (t.sent_local + t.sent_remote + foreign != t.handled + t.dead_letters ||
	    (!dead_ok && t.dead_letters != 0) || t.actors_live != 0) {
		printf(
		    "conservation: sent %llu + %llu + %llu, handled %llu, dead %llu, live %llu\n",
		    (unsigned long long)t.sent_local, (unsigned long long)t.sent_remote,
		    (unsigned long long)foreign, (unsigned long long)t.handled,
		    (unsigned long long)t.dead_letters, (unsigned long long)t.actors_live);
		return 1;
	}
	return 0;
}

#endif
