// SPDX-License-Identifier: MIT
/*
 * Ports (include/veloz/port.h): a reference that engine threads read.
 *
 * A port is a small actor (the proxy) on the port's shard plus a queue
 * shared with the threads that read it. The proxy's receive copies each
 * message (header and payload) into a node and appends it under the
 * port's mutex; readers take nodes under the same mutex. The queue is off
 * the runtime's hot paths, so a mutex (not a lock-free list) keeps it
 * plain: the one producer is the port's shard, the consumers are engine
 * threads, and the eventfd protocol below needs the producer's append and
 * the consumer's reset to be atomic with respect to each other.
 *
 * eventfd protocol: its counter is nonzero exactly while the queue holds a
 * message or the port is closed. The producer writes 1 when it makes the
 * queue non-empty (and when it closes an empty port); a consumer that
 * empties an open port reads the counter back to 0 -- both under the
 * mutex, so no append can slip between a consumer's "now empty" and its
 * reset. Pollers therefore see POLLIN exactly when vz_port_recv() has
 * something to return (a message, or VZ_ESTOPPED).
 *
 * Lifetime: two references, the creating thread's (dropped by
 * vz_port_destroy()) and the proxy's (dropped by its on_stop, which runs
 * whether the port is destroyed, the runtime stops, or it is destroyed
 * without ever starting). The last one frees the port and closes the fd.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/msg.h"
#include "core/port.h"
#include "core/runtime.h"
#include "core/send.h"
#include "core/shard.h"
#include "core/spawn_remote.h"

struct port_node {
	struct port_node *next;
	vz_port_msg h;
	unsigned char data[];
};

struct vz_port {
	vz_runtime *rt;
	vz_ref ref;
	int efd;
	pthread_mutex_t mu; /* guards head, tail, closed and the eventfd counter */
	struct port_node *head, *tail;
	bool closed; /* the proxy ran on_stop: nothing more will come */
	/* 2 while both the creating thread and the proxy hold the port.
	 * acq_rel fetch_sub: the last dropper sees every write the other made
	 * to the port before dropping (release), before it frees (acquire). */
	_Atomic int refs;
	/* Ask ids of vz_port_post(); several threads may post. Relaxed: only
	 * uniqueness matters. */
	_Atomic uint32_t next_corr;
};

static void efd_signal(struct vz_port *p)
{
	uint64_t one = 1;

	/* Cannot block (the counter stays far below its maximum: it is
	 * written only on an empty -> non-empty edge) and cannot fail on a
	 * valid eventfd with a valid buffer. */
	(void)!write(p->efd, &one, sizeof one);
}

static void efd_reset(struct vz_port *p)
{
	uint64_t v;

	(void)!read(p->efd, &v, sizeof v); /* EAGAIN when already 0 */
}

static void port_unref(struct vz_port *p)
{
	struct port_node *n;

	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	while ((n = p->head)) {
		p->head = n->next;
		free(n);
	}
	close(p->efd);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- the proxy actor ---------------------------------------------------- */

static int proxy_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	memcpy(state, &arg, sizeof arg);
	return 0;
}

static void proxy_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct vz_port *p;
	struct port_node *n;
	size_t len = vz_msg_len(m);

	(void)self;
	memcpy(&p, state, sizeof p);
	n = malloc(sizeof *n + len);
	if (!n)
		return; /* handled, and lost: the port cannot grow */
	n->next = NULL;
	n->h = (vz_port_msg){
	    .type = vz_msg_type(m), .corr = vz_msg_corr(m), .from = vz_msg_sender(m), .len = len};
	if (len)
		memcpy(n->data, vz_msg_data(m), len);
	pthread_mutex_lock(&p->mu);
	if (p->tail) {
		p->tail->next = n;
	} else {
		p->head = n;
		efd_signal(p);
	}
	p->tail = n;
	pthread_mutex_unlock(&p->mu);
}

static void proxy_stop(vz_actor *self, void *state)
{
	struct vz_port *p;

	(void)self;
	memcpy(&p, state, sizeof p);
	pthread_mutex_lock(&p->mu);
	p->closed = true;
	if (!p->head)
		efd_signal(p);
	pthread_mutex_unlock(&p->mu);
	port_unref(p);
}

static const vz_actor_spec proxy_spec = {
    .name = "port",
    .state_size = sizeof(struct vz_port *),
    .init = proxy_init,
    .receive = proxy_receive,
    .on_stop = proxy_stop,
};

/* The runtime's own actors are port proxies only; the simulation's crash
 * fault spares them (a crash there would be the runtime's, not the
 * application's). */
bool vz__runtime_own_actor(const vz_actor_spec *spec)
{
	return spec == &proxy_spec;
}

/* ---- public --------------------------------------------------------------- */

VZ_API int vz_port_create(vz_runtime *rt, unsigned shard, vz_port **out)
{
	struct vz_port *p;
	int rc;

	if (!rt || !out)
		return VZ_EINVAL;
	if (shard >= rt->nshards)
		return VZ_ENOSHARD;
	p = calloc(1, sizeof *p);
	if (!p)
		return VZ_ENOMEM;
	p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->efd < 0) {
		free(p);
		return errno == ENOMEM ? VZ_ENOMEM : VZ_EIO;
	}
	pthread_mutex_init(&p->mu, NULL);
	p->rt = rt;
	atomic_init(&p->refs, 2);
	atomic_init(&p->next_corr, 0);
	rc = vz_spawn_wait(rt, shard, &proxy_spec, p, &p->ref);
	if (rc < 0) {
		close(p->efd);
		pthread_mutex_destroy(&p->mu);
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

VZ_API vz_ref vz_port_ref(const vz_port *p)
{
	return p ? p->ref : VZ_REF_NULL;
}

VZ_API int vz_port_fd(const vz_port *p)
{
	return p ? p->efd : -1;
}

VZ_API int vz_port_post(vz_port *p, vz_ref to, uint32_t type, const void *payload, size_t len,
			uint32_t *corr)
{
	uint32_t id = 0;
	int rc;

	if (!p || type < VZ_MSG_USER)
		return VZ_EINVAL;
	if (corr)
		do /* never 0: 0 means "not an ask" */
			id = atomic_fetch_add_explicit(&p->next_corr, 1, memory_order_relaxed) + 1;
		while (!id);
	rc = vz__post_full(p->rt, p->ref, to, type, 0, id, payload, len);
	if (rc == 0 && corr)
		*corr = id;
	return rc;
}

VZ_API int vz_port_reply(vz_port *p, const vz_port_msg *m, uint32_t type, const void *payload,
			 size_t len)
{
	if (!p || !m || vz_ref_is_null(m->from) || type < VZ_MSG_USER)
		return VZ_EINVAL;
	/* An answer to an ask carries its id back marked as a reply, as
	 * vz_reply() does, so the asker matches it (life.c). */
	return vz__post_full(p->rt, p->ref, m->from, type, m->corr ? VZ__MSG_REPLY : 0, m->corr,
			     payload, len);
}

VZ_API int vz_port_spawn(vz_port *p, unsigned shard, const vz_actor_spec *spec, const void *arg,
			 size_t arg_len, uint64_t tag)
{
	int rc;

	if (!p)
		return VZ_EINVAL;
	if (vz__current(p->rt))
		return VZ_EWRONGTHREAD; /* an actor has vz_spawn_on() */
	if (shard == VZ_SHARD_HERE)
		shard = vz_ref_shard(p->ref);
	rc = vz__spawn_check(p->rt, shard, spec, arg, arg_len);
	if (rc < 0)
		return rc;
	return vz__spawn_request(p->rt, p->ref, shard, spec, arg, arg_len, tag);
}

VZ_API int vz_port_recv(vz_port *p, vz_port_msg *out, void *buf, size_t cap)
{
	struct port_node *n;
	int rc = 0;

	if (!p || !out || (!buf && cap))
		return VZ_EINVAL;
	pthread_mutex_lock(&p->mu);
	n = p->head;
	if (!n) {
		rc = p->closed ? VZ_ESTOPPED : VZ_EAGAIN;
	} else if (n->h.len > cap) {
		*out = n->h;
		rc = VZ_ETOOBIG;
	} else {
		p->head = n->next;
		if (!p->head) {
			p->tail = NULL;
			if (!p->closed)
				efd_reset(p);
		}
	}
	pthread_mutex_unlock(&p->mu);
	if (rc || !n)
		return rc;
	*out = n->h;
	if (n->h.len)
		memcpy(buf, n->data, n->h.len);
	free(n);
	return 0;
}

VZ_API int vz_port_wait(vz_port *p, int64_t timeout_ns)
{
	struct pollfd pfd;
	struct timespec ts, *tsp = NULL;
	int n;

	if (!p)
		return VZ_EINVAL;
	pfd.fd = p->efd;
	pfd.events = POLLIN;
	if (timeout_ns >= 0) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
		tsp = &ts;
	}
	do
		n = ppoll(&pfd, 1, tsp, NULL);
	while (n < 0 && errno == EINTR); /* a signal: wait again (whole timeout) */
	if (n < 0)
		return VZ_EIO;
	return n ? 0 : VZ_ETIMEDOUT;
}

VZ_API void vz_port_destroy(vz_port *p)
{
	bool closed;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	closed = p->closed;
	pthread_mutex_unlock(&p->mu);
	/* Still open: the proxy lives (or its stop is under way); ask it to
	 * stop. A refusal (the runtime is stopping) is fine: the stop ends it
	 * too. Closed: its on_stop ran, rt is not touched (it may be gone). */
	if (!closed)
		(void)vz_stop(p->rt, p->ref);
	port_unref(p);
}
