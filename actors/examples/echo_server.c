// SPDX-License-Identifier: MIT
/*
 * veloz-echo: a TCP echo server on every shard, until SIGINT or SIGTERM.
 * Prints the port, then, at exit, the connections each shard took.
 *
 *   veloz-echo [--port P] [--shards N] [--handoff]
 *
 * --handoff: one listener whose acceptor deals connections round-robin
 * over the shards (default: one SO_REUSEPORT listener per shard).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <veloz.h>

#include "net/echo.h"

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	vz_listener_opts o = {.addr = (const struct sockaddr *)&a, .addrlen = sizeof a};
	unsigned nshards = 0;
	vz_listener *l;
	vz_runtime *rt;
	vz_config cfg;
	sigset_t set;
	int rc, sig;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--port") && i + 1 < argc)
			a.sin_port = htons((uint16_t)atoi(argv[++i]));
		else if (!strcmp(argv[i], "--shards") && i + 1 < argc)
			nshards = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--handoff"))
			o.mode = VZ_LISTENER_HANDOFF;
		else {
			fprintf(stderr, "usage: veloz-echo [--port P] [--shards N] [--handoff]\n");
			return 2;
		}
	}
	/* Signals are taken by this thread with sigwait: block them before
	 * the shard threads exist, so they inherit the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	vz_config_default(&cfg);
	cfg.nshards = nshards;
	if ((rc = vz_runtime_create(&cfg, &rt)) < 0 ||
	    (rc = vz_echo_server_create(rt, &o, &l)) < 0 || (rc = vz_runtime_start(rt)) < 0) {
		fprintf(stderr, "veloz-echo: %s (%s)\n", vz_strerror(rc), vz_errname(rc));
		return 1;
	}
	printf("veloz-echo: listening on 127.0.0.1:%u, %u shards, %s\n", vz_listener_port(l),
	       vz_runtime_shards(rt), vz_runtime_backend(rt));
	fflush(stdout);
	sigwait(&set, &sig);
	vz_runtime_stop(rt);
	for (unsigned s = 0; s < vz_runtime_shards(rt); s++)
		printf("shard %u: %llu connections\n", s,
		       (unsigned long long)vz_listener_accepted(l, s));
	vz_listener_destroy(l);
	vz_runtime_destroy(rt);
	return 0;
}
