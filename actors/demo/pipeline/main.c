// SPDX-License-Identifier: MIT
/*
 * veloz-demo: a small market pipeline on the detected topology (pipeline.h
 * draws it). Runs for --duration seconds at --rate ticks per second, shows
 * one progress line per second, then each shard's counters, the
 * tick-to-acknowledgement latency percentiles, the delivery books
 * (sent = handled + dead-lettered) and writes a JSON summary.
 *
 *   veloz-demo [--duration S] [--rate TICKS_PER_S] [--symbols N]
 *              [--strategies-per-shard K] [--order-timeout-us U] [--fail-every S]
 *              [--no-net] [--feed-group ADDR] [--feed-interface IF] [--feed-drop]
 *              [--config FILE] [--json PATH | --no-json]
 *
 * The feed publishes its ticks as UDP multicast on lo unless --no-net; where
 * the host cannot (no such interface, no route, datagrams that never come
 * back) it says why and runs timer-driven, ticks as messages (feed.c).
 * --feed-drop makes the receiver ignore every datagram, as a host that does
 * not deliver multicast on lo would, to see that fallback where it works.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pipeline.h"

struct options {
	double duration;
	double rate;
	unsigned symbols;
	unsigned per_shard;
	unsigned order_timeout_us;
	double fail_every;
	int no_net;
	const char *feed_group;
	const char *feed_if;
	int feed_drop;
	const char *config;
	const char *json;
};

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--duration S] [--rate TICKS_PER_S] [--symbols N]\n"
		"          [--strategies-per-shard K] [--order-timeout-us U] [--fail-every S]\n"
		"          [--no-net] [--feed-group ADDR] [--feed-interface IF] [--feed-drop]\n"
		"          [--config FILE] [--json PATH | --no-json]\n",
		argv0);
}

static int parse(int argc, char **argv, struct options *o)
{
	*o = (struct options){.duration = 10,
			      .rate = 200000,
			      .symbols = 1000,
			      .per_shard = 2,
			      .order_timeout_us = 5000,
			      .fail_every = 2,
			      .feed_group = "239.255.77.1",
			      .feed_if = "lo",
			      .json = "veloz-demo.json"};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-json")) {
			o->json = NULL;
			continue;
		}
		if (!strcmp(a, "--no-net")) {
			o->no_net = 1;
			continue;
		}
		if (!strcmp(a, "--feed-drop")) {
			o->feed_drop = 1;
			continue;
		}
		if (!v) {
			usage(argv[0]);
			return -1;
		}
		if (!strcmp(a, "--duration"))
			o->duration = atof(v);
		else if (!strcmp(a, "--rate"))
			o->rate = atof(v);
		else if (!strcmp(a, "--symbols"))
			o->symbols = (unsigned)atoi(v);
		else if (!strcmp(a, "--strategies-per-shard"))
			o->per_shard = (unsigned)atoi(v);
		else if (!strcmp(a, "--order-timeout-us"))
			o->order_timeout_us = (unsigned)atoi(v);
		else if (!strcmp(a, "--fail-every"))
			o->fail_every = atof(v);
		else if (!strcmp(a, "--feed-group"))
			o->feed_group = v;
		else if (!strcmp(a, "--feed-interface"))
			o->feed_if = v;
		else if (!strcmp(a, "--config"))
			o->config = v;
		else if (!strcmp(a, "--json"))
			o->json = v;
		else {
			usage(argv[0]);
			return -1;
		}
		i++;
	}
	if (!(o->duration > 0) || !(o->rate > 0) || o->symbols == 0 || o->per_shard == 0 ||
	    o->order_timeout_us == 0 || !(o->fail_every >= 0)) {
		fprintf(stderr, "veloz-demo: every value must be positive\n");
		return -1;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "veloz-demo: %s: %s (%s)\n", what, vz_strerror(rc), vz_errname(rc));
	return 1;
}

static int fail_config(const char *what, int rc, const vz_config_error *err)
{
	char line[1024];

	vz_config_error_format(err, line, sizeof line);
	fprintf(stderr, "veloz-demo: %s: %s (%s)\n", what, line, vz_errname(rc));
	return 1;
}

static uint64_t get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

static int feed_mode(struct pipeline *p)
{
	/* Acquire: pairs with the feed's release store (feed_fall_back()),
	 * so feed_why is whole when the mode says FEED_TIMER. */
	return atomic_load_explicit(&p->feed_mode, memory_order_acquire);
}

/* What the feed does, for the header and the summary. */
static void describe_feed(struct pipeline *p, char *out, size_t n)
{
	char g[INET_ADDRSTRLEN] = "?";
	struct in_addr a = {.s_addr = p->feed_group};

	inet_ntop(AF_INET, &a, g, sizeof g);
	switch (feed_mode(p)) {
	case FEED_MULTICAST:
		snprintf(out, n, "UDP multicast to %s:%u on %s", g, ntohs(p->feed_port),
			 p->feed_ifname);
		break;
	case FEED_STARTING:
		snprintf(out, n, "UDP multicast to %s:%u on %s (checking that it arrives)", g,
			 ntohs(p->feed_port), p->feed_ifname);
		break;
	default:
		snprintf(out, n, "timer-driven, ticks as messages (%s)", p->feed_why);
	}
}

/* Say it when the feed settled on multicast or fell back. */
static void feed_notice(struct pipeline *p, int *shown, int tty)
{
	int m = feed_mode(p);
	char d[320];

	if (m == *shown || m == FEED_STARTING)
		return;
	*shown = m;
	describe_feed(p, d, sizeof d);
	if (m == FEED_TIMER && p->mcast)
		printf("%sfeed: multicast unavailable, falling back: %s\n", tty ? "\n" : "", d);
	else
		printf("%sfeed: %s\n", tty ? "\n" : "", d);
	fflush(stdout);
}

/* One line per second: a progress line on a terminal, plain lines
 * otherwise (a log, CI). */
static void progress(struct pipeline *p, double elapsed, uint64_t prev[3], int tty)
{
	uint64_t ticks = get(&p->live.ticks), orders = get(&p->live.orders),
		 acks = get(&p->live.acks);

	printf("%s%5.1f s  ticks %7.1fk/s  orders %6.1fk/s  acks %6.1fk/s  timeouts %llu  "
	       "tick->ack p50 %6.1f us  p99 %7.1f us%s",
	       tty ? "\r" : "", elapsed, (double)(ticks - prev[0]) / 1e3,
	       (double)(orders - prev[1]) / 1e3, (double)(acks - prev[2]) / 1e3,
	       (unsigned long long)get(&p->live.timeouts), (double)get(&p->live.interval_p50) / 1e3,
	       (double)get(&p->live.interval_p99) / 1e3, tty ? "" : "\n");
	fflush(stdout);
	prev[0] = ticks, prev[1] = orders, prev[2] = acks;
}

static int spawn_all(vz_runtime *rt, struct pipeline *p, unsigned per_shard)
{
	unsigned n = vz_runtime_shards(rt);
	struct strategy_arg *args;
	int rc;

	/* The exchange on the last shard, the gateway and the feed on the
	 * first: with two or more shards every order crosses shards twice
	 * and ticks cross to the strategies of other shards. The
	 * strategies are children of a supervisor on shard 0, spread over
	 * every shard; it starts them once the runtime runs. */
	p->nstrategies = n * per_shard;
	p->strategies = calloc(p->nstrategies, sizeof *p->strategies);
	p->children = calloc(p->nstrategies, sizeof *p->children);
	args = calloc(p->nstrategies, sizeof *args);
	if (!p->strategies || !p->children || !args) {
		free(args);
		return VZ_ENOMEM;
	}
	for (unsigned i = 0; i < p->nstrategies; i++) {
		args[i] = (struct strategy_arg){.p = p, .index = i};
		p->children[i] = (vz_sup_child){.spec = &strategy_spec,
						.arg = &args[i],
						.arg_len = sizeof args[i],
						.shard = i % n,
						.restart = VZ_SUP_PERMANENT,
						.name = &p->strategies[i]};
	}
	p->sup = (vz_sup_spec){.strategy = VZ_SUP_ONE_FOR_ONE,
			       .max_restarts = 10,
			       .period_ns = 1000000000ull,
			       .children = p->children,
			       .nchildren = p->nstrategies};
	/* The supervisor copies a child's arg at each of its starts, the
	 * restarts too: args must outlive it (freed after destroy). */
	p->strategy_args = args;
	if ((rc = vz_spawn(rt, n - 1, &exchange_spec, p, &p->exchange)) < 0 ||
	    (rc = vz_spawn(rt, 0, &gateway_spec, p, &p->gateway)) < 0 ||
	    (rc = vz_spawn(rt, 0, &vz_supervisor, &p->sup, &p->supervisor)) < 0)
		return rc;
	/* The multicast receiver before the feed (it picks the port the
	 * feed sends to), on the feed's shard (feed_rx.c). If it cannot
	 * join, it said why (feed_why) and the feed runs timer-driven. */
	if (p->mcast && !p->feed_ifindex)
		feed_fall_back(p, "no interface %s", p->feed_ifname);
	if (p->mcast && feed_mode(p) == FEED_STARTING)
		(void)vz_spawn(rt, 0, &feed_rx_spec, p, &p->feed_rx);
	return vz_spawn(rt, 0, &feed_spec, p, &p->feed);
}

static void print_shards(vz_runtime *rt)
{
	vz_shard_stats st;

	printf("\n%-6s %5s %12s %12s %12s %10s %10s %10s %8s\n", "shard", "cpu", "handled",
	       "sent_local", "sent_remote", "timers", "sleeps", "wakeups", "refills");
	for (unsigned s = 0; s < vz_runtime_shards(rt); s++) {
		vz_stats_shard(rt, s, &st);
		printf("%-6u %5d %12llu %12llu %12llu %10llu %10llu %10llu %8llu\n", s,
		       vz_runtime_shard_cpu(rt, s), (unsigned long long)st.handled,
		       (unsigned long long)st.sent_local, (unsigned long long)st.sent_remote,
		       (unsigned long long)st.timers_fired, (unsigned long long)st.sleeps,
		       (unsigned long long)st.wakeups_sent, (unsigned long long)st.pool_refills);
	}
}

static void write_json(const char *path, vz_runtime *rt, const struct pipeline *p,
		       const struct options *o, double seconds, const vz_shard_stats *t,
		       uint64_t foreign, int books_ok)
{
	FILE *f = fopen(path, "w");
	const struct lat_hist *h = &p->latency;
	struct live *l = (struct live *)&p->live;

	if (!f) {
		fprintf(stderr, "veloz-demo: cannot write %s\n", path);
		return;
	}
	fprintf(f,
		"{\"backend\":\"%s\",\"orders_over\":\"%s\",\"feed\":\"%s\",\"shards\":%u,"
		"\"seconds\":%.3f,"
		"\"rate\":%.0f,"
		"\"symbols\":%u,\"strategies\":%u,\n"
		" \"ticks\":%llu,\"ticks_refused\":%llu,\"feed_datagrams\":%llu,"
		"\"ticks_multicast\":%llu,\"ticks_lost\":%llu,\"orders\":%llu,\"acks\":%llu,"
		"\"timeouts\":%llu,\"late_acks\":%llu,\"rejected\":%llu,\"risk_checks\":%llu,"
		"\"strategy_restarts\":%llu,\n"
		" \"tick_to_ack_ns\":{\"count\":%llu,\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,"
		"\"max\":%llu},\n"
		" \"messages\":{\"sent\":%llu,\"handled\":%llu,\"dead_letters\":%llu,"
		"\"books_balance\":%s}}\n",
		vz_runtime_backend(rt), p->net ? "tcp" : "messages",
		atomic_load_explicit(&p->feed_mode, memory_order_acquire) == FEED_MULTICAST
		    ? "multicast"
		    : "timer",
		vz_runtime_shards(rt), seconds, o->rate, p->symbols, p->nstrategies,
		(unsigned long long)get(&l->ticks), (unsigned long long)get(&l->ticks_refused),
		(unsigned long long)get(&l->datagrams), (unsigned long long)get(&l->ticks_mcast),
		(unsigned long long)get(&l->ticks_lost), (unsigned long long)get(&l->orders),
		(unsigned long long)get(&l->acks), (unsigned long long)get(&l->timeouts),
		(unsigned long long)get(&l->late_acks), (unsigned long long)get(&l->rejected),
		(unsigned long long)get(&l->risk_checks),
		(unsigned long long)(get(&l->strategy_starts) - p->nstrategies),
		(unsigned long long)h->count, (unsigned long long)lat_quantile(h, 0.5),
		(unsigned long long)lat_quantile(h, 0.99),
		(unsigned long long)lat_quantile(h, 0.999), (unsigned long long)h->max,
		(unsigned long long)(t->sent_local + t->sent_remote + foreign),
		(unsigned long long)t->handled, (unsigned long long)t->dead_letters,
		books_ok ? "true" : "false");
	fclose(f);
	printf("summary written to %s\n", path);
}

int main(int argc, char **argv)
{
	static struct pipeline p; /* shared with the actors; see pipeline.h */
	struct options o;
	vz_config cfg;
	vz_config_error err;
	vz_runtime *rt;
	vz_shard_stats t;
	uint64_t foreign, prev[3] = {0, 0, 0};
	char feed_line[320];
	int rc, tty = isatty(STDOUT_FILENO), feed_shown;
	double t0, next, elapsed;

	if (parse(argc, argv, &o) < 0)
		return 2;
	vz_config_default(&cfg);
	rc = o.config ? vz_config_load(&cfg, o.config, &err) : vz_config_apply_env(&cfg, &err);
	if (rc < 0)
		return fail_config(o.config ? "configuration" : "environment", rc, &err);
	cfg.create_error = &err;
	if ((rc = vz_runtime_create(&cfg, &rt)) < 0)
		return fail_config("vz_runtime_create", rc, &err);

	p.symbols = o.symbols;
	p.rate = o.rate;
	p.feed_period_ns = 100 * 1000;
	p.order_timeout_ns = (uint64_t)o.order_timeout_us * 1000;
	p.risk_period_ns = 50 * 1000 * 1000;
	p.signal_threshold = 3;
	p.net = !o.no_net;
	p.mcast = !o.no_net;
	p.feed_ifname = o.feed_if;
	p.feed_ifindex = if_nametoindex(o.feed_if);
	p.feed_drop = o.feed_drop;
	if (inet_pton(AF_INET, o.feed_group, &p.feed_group) != 1 ||
	    !IN_MULTICAST(ntohl(p.feed_group))) {
		fprintf(stderr, "veloz-demo: --feed-group %s is not an IPv4 multicast address\n",
			o.feed_group);
		return 2;
	}
	if (!p.mcast)
		feed_fall_back(&p, "--no-net");
	p.fail_period_ns = (uint64_t)(o.fail_every * 1e9);
	if ((rc = spawn_all(rt, &p, o.per_shard)) < 0)
		return fail("vz_spawn", rc);

	printf("veloz demo: market pipeline on %u shard(s), backend %s%s%s\n",
	       vz_runtime_shards(rt), vz_runtime_backend(rt),
	       *vz_runtime_backend_reason(rt) ? " - " : "", vz_runtime_backend_reason(rt));
	printf("  feed %.0f ticks/s over %u symbols -> %u supervised strategies -> gateway (shard "
	       "0) -> exchange (shard %u) %s; order timeout %u us, risk job every 50 ms on the "
	       "pool\n",
	       o.rate, o.symbols, p.nstrategies, vz_runtime_shards(rt) - 1,
	       p.net ? "over TCP 127.0.0.1" : "by messages", o.order_timeout_us);
	describe_feed(&p, feed_line, sizeof feed_line);
	printf("  ticks: %s%s\n", feed_line,
	       feed_mode(&p) == FEED_TIMER && p.mcast ? " - multicast unavailable" : "");
	if (o.fail_every > 0)
		printf("  strategy 0 fails on purpose every %.1f s; its supervisor restarts it\n",
		       o.fail_every);
	if ((rc = vz_runtime_start(rt)) < 0)
		return fail("vz_runtime_start", rc);

	t0 = now_s();
	next = t0 + 1;
	feed_shown = feed_mode(&p);
	while ((elapsed = now_s() - t0) < o.duration) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
		feed_notice(&p, &feed_shown, tty);
		if (now_s() >= next) {
			progress(&p, now_s() - t0, prev, tty);
			next += 1;
		}
	}
	if (tty)
		printf("\n");
	/* Relaxed: a hint for the gateway's messages only. */
	atomic_store_explicit(&p.stopping, 1, memory_order_relaxed);
	if ((rc = vz_runtime_stop(rt)) < 0)
		return fail("vz_runtime_stop", rc);

	print_shards(rt);
	printf("\ntick -> acknowledgement latency over %llu orders: p50 %.1f us, p99 %.1f us, "
	       "p99.9 %.1f us, max %.1f us\n",
	       (unsigned long long)p.latency.count, (double)lat_quantile(&p.latency, 0.5) / 1e3,
	       (double)lat_quantile(&p.latency, 0.99) / 1e3,
	       (double)lat_quantile(&p.latency, 0.999) / 1e3, (double)p.latency.max / 1e3);
	printf(
	    "ticks %llu (%llu refused by back-pressure), orders %llu, acks %llu, "
	    "timeouts %llu, late acks %llu, rejected %llu, risk checks %llu\n",
	    (unsigned long long)get(&p.live.ticks), (unsigned long long)get(&p.live.ticks_refused),
	    (unsigned long long)get(&p.live.orders), (unsigned long long)get(&p.live.acks),
	    (unsigned long long)get(&p.live.timeouts), (unsigned long long)get(&p.live.late_acks),
	    (unsigned long long)get(&p.live.rejected),
	    (unsigned long long)get(&p.live.risk_checks));
	describe_feed(&p, feed_line, sizeof feed_line);
	if (feed_mode(&p) == FEED_MULTICAST)
		printf("feed: %s: %llu datagrams, %llu ticks received, %llu lost\n", feed_line,
		       (unsigned long long)get(&p.live.datagrams),
		       (unsigned long long)get(&p.live.ticks_mcast),
		       (unsigned long long)get(&p.live.ticks_lost));
	else
		printf("feed: %s\n", feed_line);
	printf("strategy restarts by the supervisor: %llu (ticks for a strategy not running "
	       "yet or restarting: %llu)\n",
	       (unsigned long long)(get(&p.live.strategy_starts) - p.nstrategies),
	       (unsigned long long)get(&p.live.ticks_unrouted));
	if (get(&p.live.net_errors))
		printf("order connection failures: %llu (orders then went as messages)\n",
		       (unsigned long long)get(&p.live.net_errors));
	if (p.risk_unavailable)
		printf("risk jobs not run: %llu (no worker pool on this machine, or it was full)\n",
		       (unsigned long long)p.risk_unavailable);

	vz_stats_total(rt, &t, &foreign);
	int ok = t.sent_local + t.sent_remote + foreign == t.handled + t.dead_letters;
	printf("\nsent %llu = handled %llu + dead-lettered %llu: %s\n",
	       (unsigned long long)(t.sent_local + t.sent_remote + foreign),
	       (unsigned long long)t.handled, (unsigned long long)t.dead_letters,
	       ok ? "ok" : "MISMATCH");
	if (o.json && *o.json)
		write_json(o.json, rt, &p, &o, elapsed, &t, foreign, ok);
	vz_runtime_destroy(rt);
	free(p.strategies);
	free(p.children);
	free(p.strategy_args);
	return ok ? 0 : 1;
}
