// SPDX-License-Identifier: MIT
/*
 * veloz-token-ring: a token ring across every shard (the first demo; the
 * main one, veloz-demo, is the market pipeline in pipeline/).
 *
 * K actors are placed round-robin over the shards, so every hop from actor
 * i to actor i+1 crosses to another shard (with one shard, hops are local).
 * T tokens circulate at once for a fixed time; then the demo prints the
 * hop rate and each shard's counters, stops the runtime and checks that
 * every message sent was handled or dead-lettered. With two or more
 * scheduling classes in the config ([class.N]), the members of a shard are
 * spread over the classes in turn and each shard's per-class counters
 * (messages, run time, queue wait) are printed as well.
 *
 *   veloz-token-ring [--seconds S] [--tokens T] [--actors-per-shard K] [--config FILE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <veloz.h>

enum { MSG_TOKEN = VZ_MSG_USER };

struct ring {
	vz_ref *members; /* filled before start, read-only afterwards */
	unsigned n;
};

struct member {
	const struct ring *ring;
	unsigned index;
	uint64_t hops;
};

struct member_arg {
	const struct ring *ring;
	unsigned index;
};

static int member_init(vz_actor *self, void *state, const void *arg)
{
	struct member *m = state;
	const struct member_arg *a = arg;

	(void)self;
	m->ring = a->ring;
	m->index = a->index;
	return 0;
}

static void member_receive(vz_actor *self, void *state, const vz_msg *msg)
{
	struct member *m = state;
	vz_ref next;
	uint64_t token;

	if (vz_msg_type(msg) != MSG_TOKEN || vz_msg_len(msg) != sizeof token)
		return;
	memcpy(&token, vz_msg_data(msg), sizeof token);
	m->hops++;
	next = m->ring->members[(m->index + 1) % m->ring->n];
	/* During stop a send is refused (VZ_ESTOPPED): the token ends here. */
	vz_send(self, next, MSG_TOKEN, &token, sizeof token);
}

static const vz_actor_spec member_spec = {
    .name = "ring-member",
    .state_size = sizeof(struct member),
    .init = member_init,
    .receive = member_receive,
};

/* Each shard's counters per scheduling class; nothing with one class (the
 * single-class loop keeps no class counters). */
static void print_class_stats(vz_runtime *rt, unsigned nshards, unsigned nclasses)
{
	vz_class_stats cs;

	if (nclasses < 2)
		return;
	printf("\n%-6s %-16s %12s %10s %10s %10s %10s %8s\n", "shard", "class", "messages",
	       "run_ms", "runs", "wait_p50", "wait_p99", "overquota");
	for (unsigned s = 0; s < nshards; s++)
		for (unsigned c = 0; c < nclasses; c++) {
			char name[48], p50[24], p99[24];

			if (vz_stats_class(rt, s, c, &cs) < 0)
				continue;
			snprintf(name, sizeof name, "%u %.31s", c, cs.name);
			/* the wait quantiles are bucket upper bounds: "<=" */
			snprintf(p50, sizeof p50, "<=%llu",
				 (unsigned long long)vz_class_wait_quantile(&cs, 0.5));
			snprintf(p99, sizeof p99, "<=%llu",
				 (unsigned long long)vz_class_wait_quantile(&cs, 0.99));
			if (!cs.runs) { /* never ran: no wait to show */
				strcpy(p50, "-");
				strcpy(p99, "-");
			}
			printf("%-6u %-16s %12llu %10.1f %10llu %10s %10s %9llu\n", s, name,
			       (unsigned long long)cs.messages, (double)cs.runtime_ns / 1e6,
			       (unsigned long long)cs.runs, p50, p99,
			       (unsigned long long)cs.quota_violations);
		}
	printf("(wait: from ready to run, ns, as upper bounds of power-of-two buckets)\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "veloz-token-ring: %s: %s (%s)\n", what, vz_strerror(rc), vz_errname(rc));
	return 1;
}

/* A refusal with its detail: "what: file:line: key: reason (VZ_E...)". */
static int fail_config(const char *what, int rc, const vz_config_error *err)
{
	char line[1024];

	vz_config_error_format(err, line, sizeof line);
	fprintf(stderr, "veloz-token-ring: %s: %s (%s)\n", what, line, vz_errname(rc));
	return 1;
}

int main(int argc, char **argv)
{
	double seconds = 2.0, t0, t1;
	unsigned tokens = 64, per_shard = 2, nshards, nclasses;
	const char *config_file = NULL;
	/* one spec per class; a spec must outlive its actors */
	static vz_actor_spec specs[VZ_MAX_CLASSES];
	vz_shard_stats total, st;
	vz_config_error err;
	struct ring ring;
	vz_config cfg;
	vz_runtime *rt;
	uint64_t handled0, foreign;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--tokens") && i + 1 < argc)
			tokens = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--actors-per-shard") && i + 1 < argc)
			per_shard = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--config") && i + 1 < argc)
			config_file = argv[++i];
		else {
			fprintf(stderr,
				"usage: %s [--seconds S] [--tokens T] "
				"[--actors-per-shard K] [--config FILE]\n",
				argv[0]);
			return 2;
		}
	}
	if (seconds <= 0 || tokens == 0 || per_shard == 0)
		return fail("arguments", VZ_EINVAL);

	vz_config_default(&cfg);
	if (config_file) {
		rc = vz_config_load(&cfg, config_file, &err);
		if (rc < 0)
			return fail_config("configuration", rc, &err);
	} else if ((rc = vz_config_apply_env(&cfg, &err)) < 0) {
		return fail_config("environment", rc, &err);
	}
	/* create says why it refused (e.g. VZ_CPUS naming a CPU this machine
	 * does not have) in the same form as the loader */
	cfg.create_error = &err;
	rc = vz_runtime_create(&cfg, &rt);
	if (rc < 0)
		return fail_config("vz_runtime_create", rc, &err);
	nshards = vz_runtime_shards(rt);
	nclasses = cfg.nclasses > 1 ? cfg.nclasses : 1;
	for (unsigned c = 0; c < nclasses; c++) {
		specs[c] = member_spec;
		specs[c].sched_class = c;
	}
	ring.n = nshards * per_shard;
	ring.members = calloc(ring.n, sizeof *ring.members);
	if (!ring.members)
		return fail("calloc", VZ_ENOMEM);
	for (unsigned i = 0; i < ring.n; i++) {
		struct member_arg a = {&ring, i};
		/* member i is the (i / nshards)-th of its shard: the classes
		 * take a shard's members in turn */
		rc = vz_spawn(rt, i % nshards, &specs[(i / nshards) % nclasses], &a,
			      &ring.members[i]);
		if (rc < 0)
			return fail("vz_spawn", rc);
	}
	printf("veloz-token-ring: token ring of %u actors on %u shard(s), %u tokens, %.1f s, "
	       "backend %s\n",
	       ring.n, nshards, tokens, seconds, vz_runtime_backend(rt));
	for (unsigned s = 0; s < nshards; s++)
		printf("  shard %u on CPU %d\n", s, vz_runtime_shard_cpu(rt, s));
	if (nclasses > 1)
		for (unsigned c = 0; c < nclasses; c++)
			printf("  class %u \"%s\": shares %u%s%s\n", c, cfg.classes[c].name,
			       cfg.classes[c].shares, cfg.classes[c].latency ? ", latency" : "",
			       per_shard > c ? "" : " (no member: --actors-per-shard too small)");
	rc = vz_runtime_start(rt);
	if (rc < 0)
		return fail("vz_runtime_start", rc);

	t0 = now_s();
	for (uint64_t t = 0; t < tokens; t++) {
		rc = vz_post(rt, ring.members[(t * per_shard) % ring.n], MSG_TOKEN, &t, sizeof t);
		if (rc < 0)
			return fail("vz_post", rc);
	}
	vz_stats_total(rt, &total, &foreign);
	handled0 = total.handled;
	while (now_s() - t0 < seconds) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	vz_stats_total(rt, &total, &foreign);
	t1 = now_s();
	printf("\n%.2f M hops/s (%llu hops in %.2f s)\n",
	       (double)(total.handled - handled0) / (t1 - t0) / 1e6,
	       (unsigned long long)(total.handled - handled0), t1 - t0);

	rc = vz_runtime_stop(rt);
	if (rc < 0)
		return fail("vz_runtime_stop", rc);
	printf("\n%-6s %12s %12s %12s %10s %10s %10s %10s\n", "shard", "handled", "sent_local",
	       "sent_remote", "turns/1k", "sleeps", "wakeups", "refills");
	for (unsigned s = 0; s < nshards; s++) {
		vz_stats_shard(rt, s, &st);
		printf("%-6u %12llu %12llu %12llu %10llu %10llu %10llu %10llu\n", s,
		       (unsigned long long)st.handled, (unsigned long long)st.sent_local,
		       (unsigned long long)st.sent_remote, (unsigned long long)st.turns / 1000,
		       (unsigned long long)st.sleeps, (unsigned long long)st.wakeups_sent,
		       (unsigned long long)st.pool_refills);
	}
	print_class_stats(rt, nshards, nclasses);
	vz_stats_total(rt, &total, &foreign);
	printf("\nsent %llu = handled %llu + dead-lettered %llu: %s\n",
	       (unsigned long long)(total.sent_local + total.sent_remote + foreign),
	       (unsigned long long)total.handled, (unsigned long long)total.dead_letters,
	       total.sent_local + total.sent_remote + foreign == total.handled + total.dead_letters
		   ? "ok"
		   : "MISMATCH");
	rc = total.sent_local + total.sent_remote + foreign == total.handled + total.dead_letters
		 ? 0
		 : 1;
	vz_runtime_destroy(rt);
	free(ring.members);
	return rc;
}
