/* SPDX-License-Identifier: MIT */
/*
 * A nats-server of our own on 127.0.0.1 for the cluster's tests and its
 * benchmark (tests/integration/test_cluster.c, bench/cluster.c): find the
 * installed binary, pick a free port, write a config file (listen address
 * plus any extra lines: authorization, max_payload), start the server and
 * wait until it accepts connections; kill it (SIGKILL: a crash) or stop it
 * (SIGTERM). Header-only (every function static inline) so that both
 * programs take it without a library of its own.
 */
#ifndef VZ_BENCH_NATS_SERVER_H
#define VZ_BENCH_NATS_SERVER_H

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

struct vz_nats_server {
	pid_t pid;
	int port;
	char conf[64];
};

/* The installed nats-server, or NULL. */
static inline const char *vz_nats_server_path(void)
{
	static const char *const where[] = {"/usr/sbin/nats-server", "/usr/bin/nats-server",
					    "/usr/local/bin/nats-server",
					    "/usr/local/sbin/nats-server"};

	for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
		if (access(where[i], X_OK) == 0)
			return where[i];
	return NULL;
}

/* A port free on 127.0.0.1 a moment ago (the server may still lose it to
 * another program: start retries), or -1. */
static inline int vz_nats_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static inline bool vz_nats_port_open(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Start a server on `port` (0: a free one) with `extra` config lines
 * (NULL: none); its log goes to `log` (NULL: /dev/null, and no debug
 * output). 0 once it accepts connections, -1 after five attempts. */
static inline int vz_nats_server_start(struct vz_nats_server *s, int port, const char *extra,
				       const char *log)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		FILE *f;
		pid_t pid;

		s->port = port ? port : vz_nats_free_port();
		snprintf(s->conf, sizeof s->conf, "/tmp/vz-nats-%d-%d.conf", (int)getpid(),
			 s->port);
		f = fopen(s->conf, "w");
		if (!f)
			return -1;
		fprintf(f, "listen: 127.0.0.1:%d\n%s\n", s->port, extra ? extra : "");
		fclose(f);
		pid = fork();
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);

			dup2(null, 1);
			dup2(null, 2);
			if (log)
				execl(vz_nats_server_path(), "nats-server", "-c", s->conf, "-D",
				      "-l", log, (char *)NULL);
			execl(vz_nats_server_path(), "nats-server", "-c", s->conf, (char *)NULL);
			_exit(127);
		}
		s->pid = pid;
		for (int i = 0; i < 1000; i++) {
			int st;

			if (vz_nats_port_open(s->port))
				return 0;
			if (waitpid(pid, &st, WNOHANG) == pid)
				break; /* port taken meanwhile: try another */
			usleep(10000);
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (port)
			usleep(100000); /* the same port: let it be released */
	}
	s->pid = 0;
	return -1;
}

static inline void vz_nats_server_end(struct vz_nats_server *s, int sig)
{
	if (s->pid > 0) {
		kill(s->pid, sig);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
	unlink(s->conf);
}

/* Kill it at once (a crash: clients see their connection drop). */
static inline void vz_nats_server_kill(struct vz_nats_server *s)
{
	vz_nats_server_end(s, SIGKILL);
}

/* Ask it to stop (SIGTERM) and wait. */
static inline void vz_nats_server_stop(struct vz_nats_server *s)
{
	vz_nats_server_end(s, SIGTERM);
}

#endif
