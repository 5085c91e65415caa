// SPDX-License-Identifier: MIT
/*
 * Running simulation tests over many seeds: one seed (vz_sim_run_seed())
 * and a test program's whole main (vz_sim_main()): a range of seeds, the
 * first failure with the command that replays it, and a determinism check
 * that runs each seed twice and compares the order signatures.
 */
#include "sim/sim.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

VZ_API int vz_sim_run_seed(const vz_sim_test *t, uint64_t seed, vz_sim_result *out)
{
	vz_sim_options opt;
	vz_sim_stats st;
	vz_sim *sim;
	int rc;

	if (!t || !t->run || !t->cfg || !out)
		return VZ_EINVAL;
	memset(out, 0, sizeof *out);
	out->seed = seed;
	if (t->opt)
		opt = *t->opt;
	else
		vz_sim_options_default(&opt, seed);
	opt.seed = seed;
	rc = vz_sim_create(t->cfg, &opt, &sim);
	if (rc < 0) {
		out->status = rc;
		return rc;
	}
	out->status = t->run(sim, t->ctx);
	vz_sim_stats_get(sim, &st);
	out->signature = st.signature;
	out->handled = st.handled;
	out->steps = st.steps;
	rc = vz_sim_destroy(sim);
	if (rc < 0 && out->status == 0)
		out->status = rc;
	return out->status;
}

/* The replay command of the run under way, written out by a fatal signal
 * (an assert or a crash inside an actor), so even a run that never returns
 * names the seed that replays it. Filled before each run; the handler
 * only calls write(), which is async-signal-safe. */
static char replay_line[512];
static size_t replay_len;

static void on_fatal(int sig)
{
	if (replay_len)
		(void)!write(STDOUT_FILENO, replay_line, replay_len);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void arm_replay(const char *argv0, const char *name, uint64_t seed, bool determinism)
{
	int n = snprintf(replay_line, sizeof replay_line,
			 "\ncrashed; replay: %s --test %s --seed %" PRIu64 "%s\n", argv0, name,
			 seed, determinism ? " --check-determinism" : "");

	replay_len = n < 0 ? 0 : (size_t)n < sizeof replay_line ? (size_t)n : sizeof replay_line;
}

static int usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--test NAME] [--seed S | --seeds N [--first S]] "
		"[--check-determinism]\n"
		"  runs every simulation test over N seeds (default 1000, or VZ_SIM_SEEDS)\n"
		"  from S (default 1); stops at the first failure and prints how to replay it\n",
		argv0);
	return 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!s || !*s)
		return false;
	*out = strtoull(s, &end, 0);
	return *end == '\0';
}

static void print_run(const vz_sim_test *t, const vz_sim_result *r, const char *verdict)
{
	printf("sim %s seed %" PRIu64 ": signature 0x%016" PRIx64 ", %" PRIu64 " handled, %" PRIu64
	       " steps: %s\n",
	       t->name ? t->name : "test", r->seed, r->signature, r->handled, r->steps, verdict);
	fflush(stdout);
}

/* Every seed of every selected test; the first failure ends it. */
static int run_all(const char *argv0, const vz_sim_test *tests, unsigned ntests, const char *only,
		   uint64_t first, uint64_t nseeds, bool determinism)
{
	unsigned ran = 0;

	for (unsigned k = 0; k < ntests; k++) {
		const vz_sim_test *t = &tests[k];
		const char *name = t->name ? t->name : "test";

		if (only && strcmp(only, name))
			continue;
		ran++;
		for (uint64_t s = first; s - first < nseeds; s++) {
			vz_sim_result r, again;

			arm_replay(argv0, name, s, determinism);
			vz_sim_run_seed(t, s, &r);
			if (r.status != 0) {
				char verdict[128];

				/* A negative status is the simulation's own
				 * refusal (vz_sim_create()), not the test's. */
				snprintf(verdict, sizeof verdict, "FAILED (%d%s%s)", r.status,
					 r.status < 0 ? ": " : "",
					 r.status < 0 ? vz_strerror(r.status) : "");
				print_run(t, &r, verdict);
				printf("replay: %s --test %s --seed %" PRIu64 "\n", argv0, name, s);
				return 1;
			}
			if (determinism) {
				vz_sim_run_seed(t, s, &again);
				if (again.status != 0 || again.signature != r.signature ||
				    again.handled != r.handled) {
					print_run(t, &r, "first run");
					print_run(t, &again, "NOT DETERMINISTIC (second run)");
					printf("replay: %s --test %s --seed %" PRIu64
					       " --check-determinism\n",
					       argv0, name, s);
					return 1;
				}
			}
			print_run(t, &r, determinism ? "ok, deterministic" : "ok");
		}
	}
	if (!ran) {
		fprintf(stderr, "%s: no test named %s\n", argv0, only ? only : "(none)");
		return 2;
	}
	return 0;
}

VZ_API int vz_sim_main(int argc, char **argv, const vz_sim_test *tests, unsigned ntests)
{
	static const int fatal[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
	const char *argv0 = argc > 0 && argv[0] ? argv[0] : "sim-test";
	const char *only = NULL, *env = getenv("VZ_SIM_SEEDS");
	uint64_t first = 1, nseeds = 1000, one = 0;
	bool determinism = false;
	int rc;

	if (!tests)
		return usage(argv0);
	if (env && *env && !parse_u64(env, &nseeds))
		return usage(argv0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--test") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc &&
			   parse_u64(argv[i + 1], &one)) {
			first = one;
			nseeds = 1;
			i++;
		} else if (!strcmp(argv[i], "--seeds") && i + 1 < argc &&
			   parse_u64(argv[i + 1], &nseeds)) {
			i++;
		} else if (!strcmp(argv[i], "--first") && i + 1 < argc &&
			   parse_u64(argv[i + 1], &first)) {
			i++;
		} else if (!strcmp(argv[i], "--check-determinism")) {
			determinism = true;
		} else {
			return usage(argv0);
		}
	}
	for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
		signal(fatal[i], on_fatal);
	rc = run_all(argv0, tests, ntests, only, first, nseeds, determinism);
	replay_len = 0;
	for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
		signal(fatal[i], SIG_DFL);
	return rc;
}
