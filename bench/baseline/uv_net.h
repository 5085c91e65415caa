/* SPDX-License-Identifier: MIT */
/*
 * libuv network baselines for the `http` and `echo` benchmarks: a
 * single-loop HTTP/1.1 responder answering exactly what the veloz server
 * answers (the same parser and response bytes, actors/http), and a TCP
 * echo server. Each runs in the calling thread until SIGTERM, after
 * calling ready(port) once it listens on 127.0.0.1 (port 0: any free
 * port). Built only with libuv (VZ_HAVE_LIBUV); otherwise the functions
 * return -1 at once.
 */
#ifndef VZ_BENCH_UV_NET_H
#define VZ_BENCH_UV_NET_H

typedef void (*uvnet_ready_fn)(int port, void *ctx);

int uv_http_serve(int port, uvnet_ready_fn ready, void *ctx);
int uv_echo_serve(int port, uvnet_ready_fn ready, void *ctx);

#endif
