// SPDX-License-Identifier: MIT
/*
 * veloz-http: the minimal HTTP/1.1 server ("Hello, World!" on /plaintext
 * and /) on every shard, until SIGINT or SIGTERM. Prints the port, then,
 * at exit, each shard's connections and requests.
 *
 *   veloz-http [--port P] [--shards N] [--handoff]
 *   curl -i http://127.0.0.1:P/plaintext
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <veloz.h>

#include "http/server.h"

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	vz_http_server_opts o = {
	    .listen = {.addr = (const struct sockaddr *)&a, .addrlen = sizeof a}};
	unsigned nshards = 0;
	vz_http_server *srv;
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
			o.listen.mode = VZ_LISTENER_HANDOFF;
		else {
			fprintf(stderr, "usage: veloz-http [--port P] [--shards N] [--handoff]\n");
			return 2;
		}
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL); /* before the shard threads exist */
	vz_config_default(&cfg);
	cfg.nshards = nshards;
	if ((rc = vz_runtime_create(&cfg, &rt)) < 0 ||
	    (rc = vz_http_server_create(rt, &o, &srv)) < 0 || (rc = vz_runtime_start(rt)) < 0) {
		fprintf(stderr, "veloz-http: %s (%s)\n", vz_strerror(rc), vz_errname(rc));
		return 1;
	}
	printf("veloz-http: listening on 127.0.0.1:%u, %u shards, %s\n", vz_http_server_port(srv),
	       vz_runtime_shards(rt), vz_runtime_backend(rt));
	fflush(stdout);
	sigwait(&set, &sig);
	vz_runtime_stop(rt);
	for (unsigned s = 0; s < vz_runtime_shards(rt); s++)
		printf("shard %u: %llu connections, %llu requests\n", s,
		       (unsigned long long)vz_http_server_connections(srv, s),
		       (unsigned long long)vz_http_server_requests(srv, s));
	vz_http_server_destroy(srv);
	vz_runtime_destroy(rt);
	return 0;
}
