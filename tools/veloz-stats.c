// SPDX-License-Identifier: MIT
/*
 * veloz-stats: a live view of a running veloz runtime's statistics, in the
 * manner of varnishstat. It attaches read-only to the shared-memory segment
 * a runtime publishes when configured to ([stats] shm = on, or
 * VZ_STATS_SHM=1 for programs that apply the environment), and shows a
 * top-like table per shard and per actor type, refreshed every second.
 *
 *   veloz-stats [--once] [--json] [--interval MS] [--pid PID | --segment NAME]
 *
 * Without --pid or --segment it looks for /dev/shm/veloz-* and takes the
 * only one it finds. The tool never writes to the segment, so it can never
 * slow down or block the runtime. A segment of another layout version is
 * refused with a message naming both versions.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stats/shm_layout.h"

static void usage(void)
{
	fprintf(stderr, "usage: veloz-stats [--once] [--json] [--interval MS] "
			"[--pid PID | --segment NAME]\n");
	exit(2);
}

/* The one live segment (of pid when pid > 0), into name. 0 found; exits
 * with a message otherwise. */
static void find_segment(long pid, char *name, size_t len)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	unsigned found = 0;
	char list[1024] = "";

	if (!d) {
		fprintf(stderr, "veloz-stats: cannot read /dev/shm: %s\n", strerror(errno));
		exit(1);
	}
	while ((e = readdir(d))) {
		long p;
		unsigned n;
		char tail;

		if (sscanf(e->d_name, "veloz-%ld-%u%c", &p, &n, &tail) != 2)
			continue;
		if (pid > 0 && p != pid)
			continue;
		if (kill((pid_t)p, 0) < 0 && errno == ESRCH)
			continue; /* left behind by a process that died */
		found++;
		snprintf(name, len, "/%s", e->d_name);
		if (strlen(list) + strlen(e->d_name) + 3 < sizeof list) {
			strcat(list, "  /");
			strcat(list, e->d_name);
		}
	}
	closedir(d);
	if (found == 1)
		return;
	if (!found)
		fprintf(stderr,
			"veloz-stats: no running veloz runtime%s publishes its stats (start it "
			"with [stats] shm = on, or VZ_STATS_SHM=1)\n",
			pid > 0 ? " of that process" : "");
	else
		fprintf(stderr,
			"veloz-stats: %u runtimes publish stats; name one with --segment:%s\n",
			found, list);
	exit(1);
}

static double rate(uint64_t now, uint64_t before, double secs)
{
	return secs > 0 && now >= before ? (double)(now - before) / secs : 0.0;
}

/* 1234 -> "1.2k" style, for the table. */
static const char *human(double v, char *buf, size_t len)
{
	if (v >= 1e9)
		snprintf(buf, len, "%.1fG", v / 1e9);
	else if (v >= 1e6)
		snprintf(buf, len, "%.1fM", v / 1e6);
	else if (v >= 1e4)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.0f", v);
	return buf;
}

static const char *dur(uint64_t ns, char *buf, size_t len)
{
	if (ns >= 1000000000u)
		snprintf(buf, len, "%.1fs", (double)ns / 1e9);
	else if (ns >= 1000000u)
		snprintf(buf, len, "%.1fms", (double)ns / 1e6);
	else if (ns >= 1000u)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	return buf;
}

static void table(const char *name, long pid, const vz_stats_snapshot *s,
		  const vz_stats_snapshot *prev)
{
	double secs = prev ? (double)(s->taken_ns - prev->taken_ns) / 1e9 : 0.0;
	char a[16], b[16], c[16], d[16], e[16], f[16];

	printf("veloz-stats  %s  pid %ld  backend %s  %u shard%s  %s\n\n", name, pid, s->backend,
	       s->nshards, s->nshards == 1 ? "" : "s",
	       prev ? "(rates per second over the last refresh)" : "(totals)");
	printf("%-5s %9s %9s %9s %9s %9s %9s %8s %8s %8s %8s %6s\n", "SHARD", "TURNS",
	       prev ? "TURNS/s" : "IDLE", "HANDLED", prev ? "MSG/s" : "LOCAL", "REMOTE", "FOREIGN",
	       "RINGFULL", "SLEEPS", "WAKE-TX", "WAKE-RX", "STALLS");
	for (unsigned i = 0; i < s->nshards; i++) {
		const vz_shard_stats *x = &s->shard[i];
		const vz_shard_stats *p = prev ? &prev->shard[i] : NULL;

		printf("%-5u %9s %9s %9s %9s %9s %9s %8llu %8llu %8llu %8llu %6llu\n", i,
		       human((double)x->turns, a, sizeof a),
		       p ? human(rate(x->turns, p->turns, secs), b, sizeof b)
			 : human((double)x->idle_turns, b, sizeof b),
		       human((double)x->handled, c, sizeof c),
		       p ? human(rate(x->handled, p->handled, secs), d, sizeof d)
			 : human((double)x->sent_local, d, sizeof d),
		       human((double)x->sent_remote, e, sizeof e),
		       human((double)x->received_foreign, f, sizeof f),
		       (unsigned long long)x->ring_full, (unsigned long long)x->sleeps,
		       (unsigned long long)x->wakeups_sent,
		       (unsigned long long)s->obs[i].wakeups_received,
		       (unsigned long long)s->obs[i].stalls);
	}
	/* Lanes of non-shard threads (producer.h): what sizing
	 * runtime.foreign_lanes needs. */
	printf("\n%-5s %6s %6s %6s %9s %9s %9s %9s\n", "SHARD", "LANES", "ACTIVE", "HWM",
	       prev ? "LANEMSG/s" : "LANE-MSG", "FALLBACK", "EXHAUSTED", "DOORBELLS");
	for (unsigned i = 0; i < s->nshards; i++) {
		const vz_shard_stats *x = &s->shard[i];
		const vz_shard_stats *p = prev ? &prev->shard[i] : NULL;

		printf("%-5u %6llu %6llu %6llu %9s %9s %9llu %9s\n", i,
		       (unsigned long long)x->lanes_in_use, (unsigned long long)x->lanes_active,
		       (unsigned long long)x->lanes_hwm,
		       p ? human(rate(x->lane_posts, p->lane_posts, secs), a, sizeof a)
			 : human((double)x->lane_posts, a, sizeof a),
		       human((double)x->lane_fallback_posts, b, sizeof b),
		       (unsigned long long)x->lanes_exhausted,
		       human((double)x->lane_doorbells, c, sizeof c));
	}
	printf("\n%-5s %-20s %6s %9s %9s %8s %9s %9s %9s %9s\n", "SHARD", "ACTOR TYPE", "ACTORS",
	       "HANDLED", prev ? "MSG/s" : "RUNS", "MBOX-HWM", "WAIT-p50", "WAIT-p99", "HANDLE-p50",
	       "HANDLE-p99");
	for (unsigned k = 0; k < s->ntypes; k++) {
		const vz_type_stats *t = &s->types[k];
		const vz_type_stats *p = NULL;
		char w1[16], w2[16], h1[16], h2[16];

		if (prev)
			for (unsigned j = 0; j < prev->ntypes; j++)
				if (prev->types[j].shard == t->shard &&
				    !strcmp(prev->types[j].name, t->name))
					p = &prev->types[j];
		printf("%-5u %-20.20s %6llu %9s %9s %8llu %9s %9s %9s %9s\n", t->shard, t->name,
		       (unsigned long long)t->spawned, human((double)t->handled, a, sizeof a),
		       prev ? human(rate(t->handled, p ? p->handled : 0, secs), b, sizeof b)
			    : human((double)t->runs, b, sizeof b),
		       (unsigned long long)t->mailbox_hwm,
		       dur(vz_hist_quantile(&t->wait, 0.5), w1, sizeof w1),
		       dur(vz_hist_quantile(&t->wait, 0.99), w2, sizeof w2),
		       dur(vz_hist_quantile(&t->handle, 0.5), h1, sizeof h1),
		       dur(vz_hist_quantile(&t->handle, 0.99), h2, sizeof h2));
	}
	fflush(stdout);
}

static int print_json(const vz_stats_snapshot *s)
{
	int n = vz_stats_json(s, NULL, 0);
	char *buf;

	if (n < 0 || !(buf = malloc((size_t)n + 1)))
		return -1;
	vz_stats_json(s, buf, (size_t)n + 1);
	fputs(buf, stdout);
	fflush(stdout);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	bool once = false, json = false, tty = isatty(STDOUT_FILENO);
	long pid = 0, interval_ms = 1000;
	char name[300] = "", why[512];
	vz_stats_snapshot *prev = NULL;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--once"))
			once = true;
		else if (!strcmp(argv[i], "--json"))
			json = true;
		else if (!strcmp(argv[i], "--pid") && i + 1 < argc)
			pid = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--segment") && i + 1 < argc)
			snprintf(name, sizeof name, "%s%s", argv[i + 1][0] == '/' ? "" : "/",
				 argv[i + 1]),
			    i++;
		else if (!strcmp(argv[i], "--interval") && i + 1 < argc)
			interval_ms = strtol(argv[++i], NULL, 10);
		else
			usage();
	}
	if (interval_ms <= 0)
		usage();
	if (!name[0])
		find_segment(pid, name, sizeof name);
	for (;;) {
		vz_stats_snapshot *s;
		int64_t wpid = 0;
		int rc = vz__shm_read(name, &s, &wpid, why, sizeof why);
		struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};

		if (rc < 0) {
			if (rc == VZ_ENOENT && prev)
				fprintf(stderr,
					"veloz-stats: %s is gone (the runtime was destroyed)\n",
					name);
			else
				fprintf(stderr, "veloz-stats: %s\n", why);
			vz_stats_snapshot_free(prev);
			return 1;
		}
		if (json) {
			print_json(s);
		} else {
			if (tty && !once)
				fputs("\033[H\033[2J", stdout);
			table(name, (long)wpid, s, prev);
		}
		vz_stats_snapshot_free(prev);
		prev = s;
		if (once)
			break;
		nanosleep(&ts, NULL);
	}
	vz_stats_snapshot_free(prev);
	return 0;
}
