// SPDX-License-Identifier: MIT
/*
 * The NATS transport (transport.h) on the C client libnats, driven by our
 * own event loop through the client's event-loop adapter interface
 * (natsOptions_SetEventLoop): the client never writes to the socket on its
 * own, it asks us to (the write callback), and the transport thread does so
 * once per turn with natsConnection_ProcessWriteEvent(). That is what lets
 * one write carry every message of a turn (the throughput of the client's
 * buffered mode) without the 1 ms the client's own flusher waits before
 * writing (its latency): both at once.
 *
 * Subscriptions are synchronous ones, read with a zero timeout on the
 * transport thread right after it parsed the socket's bytes: no client
 * delivery thread and no hand-over between threads on the way in. The one
 * asynchronous subscription is the "no responders" inbox, off the data
 * path.
 *
 * Threads: the adapter callbacks run on whichever thread the client calls
 * them from (the transport thread while publishing or reading, the
 * connecting thread at open, the client's reconnect thread, the client's
 * ping timer). They only touch the epoll set (thread-safe), two atomics
 * and the wake eventfd.
 */
#ifdef VZ_HAVE_NATS

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <nats/nats.h>

#include "cluster/transport.h"
#include "config/config_int.h"
#include "core/core.h"

struct tp_sub {
	natsSubscription *s;
	void *user;
	uint64_t dropped_seen;
	struct tp_sub *next, *prev;
};

/* What the client's own threads call back into: the hooks, behind a lock
 * and a "closed" mark. The client may run a connection or subscription
 * callback after natsConnection_Destroy() returned (its callback thread
 * holds its own reference), so the transport and the cluster may be gone
 * by then: close marks the box under the lock, after which a callback
 * does nothing, and the box itself is freed by whichever of the client's
 * two last callbacks (connection closed, subscription complete) comes
 * second. */
struct tp_box {
	pthread_mutex_t mu;
	bool closed;	  /* under mu */
	_Atomic int refs; /* the connection and the no-responders subscription */
	struct vz__tp_hooks hooks;
};

static void box_put(struct tp_box *b)
{
	/* acq_rel: the last holder sees every write of the other one. */
	if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
		pthread_mutex_destroy(&b->mu);
		free(b);
	}
}

struct vz__tp {
	natsConnection *nc;
	natsOptions *opts;
	natsSubscription *noresp;
	struct tp_box *box;
	char reply_sub[96];
	int epfd;
	int wakefd;
	/* The client's socket, -1 when detached. Written by the attach and
	 * detach callbacks (any client thread), read by the transport thread
	 * to tell its events apart: relaxed, epoll_ctl itself orders the
	 * registration. */
	_Atomic int sock;
	/* The client has bytes to write (its write callback said ADD and no
	 * REMOVE since). Set by any thread that publishes or pings, cleared
	 * by ProcessWriteEvent on the transport thread. Relaxed store plus
	 * the eventfd wake when set from another thread: the write to the
	 * eventfd orders it before the transport's next poll. */
	_Atomic int want_write;
	/* EPOLLOUT registered (a partial write is pending). The transport
	 * thread's, but attach and detach (client threads, on reconnect)
	 * reset it with the socket: relaxed, epoll_ctl orders the
	 * registration itself. */
	_Atomic bool epollout;
	pthread_t owner; /* the transport thread, once it polled */
	_Atomic bool owner_set;
	struct tp_sub *subs; /* transport thread only */
};

static int set_events(struct vz__tp *t, int fd, uint32_t ev)
{
	struct epoll_event e = {.events = ev, .data.fd = fd};

	if (epoll_ctl(t->epfd, EPOLL_CTL_MOD, fd, &e) == 0)
		return 0;
	if (errno == ENOENT && epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &e) == 0)
		return 0;
	return -1;
}

static bool on_owner(struct vz__tp *t)
{
	/* Acquire: pairs with the release that publishes owner. */
	return atomic_load_explicit(&t->owner_set, memory_order_acquire) &&
	       pthread_equal(t->owner, pthread_self());
}

static void tp_wake(struct vz__tp *t)
{
	uint64_t one = 1;

	/* Best effort: a full counter (EAGAIN) already means "wake". */
	if (write(t->wakefd, &one, sizeof one) < 0 && errno != EAGAIN)
		return;
}

/* ---- the client's event-loop adapter ---------------------------------- */

static natsStatus ev_attach(void **user, void *loop, natsConnection *nc, natsSock sock)
{
	struct vz__tp *t = loop;

	(void)nc;
	*user = t;
	/* Relaxed: see struct vz__tp. */
	atomic_store_explicit(&t->sock, (int)sock, memory_order_relaxed);
	atomic_store_explicit(&t->epollout, false, memory_order_relaxed);
	if (set_events(t, (int)sock, EPOLLIN) < 0)
		return NATS_SYS_ERROR;
	tp_wake(t);
	return NATS_OK;
}

static natsStatus ev_read(void *user, bool add)
{
	(void)user;
	(void)add;
	/* The socket stays registered for input from attach to detach: the
	 * client only removes it on its way to detach. */
	return NATS_OK;
}

static natsStatus ev_write(void *user, bool add)
{
	struct vz__tp *t = user;

	atomic_store_explicit(&t->want_write, add ? 1 : 0, memory_order_relaxed);
	if (add && !on_owner(t))
		tp_wake(t);
	return NATS_OK;
}

static natsStatus ev_detach(void *user)
{
	struct vz__tp *t = user;
	int fd = atomic_exchange_explicit(&t->sock, -1, memory_order_relaxed);

	if (fd >= 0)
		(void)epoll_ctl(t->epfd, EPOLL_CTL_DEL, fd, NULL);
	atomic_store_explicit(&t->epollout, false, memory_order_relaxed);
	return NATS_OK;
}

/* ---- connection events ------------------------------------------------ */

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct tp_box *b = closure;
	const char *why = NULL;

	natsConnection_GetLastError(nc, &why);
	pthread_mutex_lock(&b->mu);
	if (!b->closed && b->hooks.conn)
		b->hooks.conn(b->hooks.ctx, 0, why ? why : "");
	pthread_mutex_unlock(&b->mu);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct tp_box *b = closure;

	(void)nc;
	pthread_mutex_lock(&b->mu);
	if (!b->closed && b->hooks.conn)
		b->hooks.conn(b->hooks.ctx, 1, "");
	pthread_mutex_unlock(&b->mu);
}

static void on_closed(natsConnection *nc, void *closure)
{
	(void)nc;
	box_put(closure);
}

static void on_noresp(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct tp_box *b = closure;

	(void)nc;
	(void)sub;
	pthread_mutex_lock(&b->mu);
	if (!b->closed && natsMsg_IsNoResponders(msg) && b->hooks.no_responders)
		b->hooks.no_responders(b->hooks.ctx, natsMsg_GetSubject(msg));
	pthread_mutex_unlock(&b->mu);
	natsMsg_Destroy(msg);
}

static void on_noresp_done(void *closure)
{
	box_put(closure);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	/* Slow-consumer drops are counted per subscription (dropped()); the
	 * rest reaches us as disconnections. */
	(void)nc;
	(void)sub;
	(void)err;
	(void)closure;
}

/* ---- open / close ------------------------------------------------------ */

static int fail(vz_config_error *err, int rc, const char *key, const char *what, natsStatus s)
{
	const char *last = nats_GetLastError(NULL);

	vz__config_error(err, "", 0, key, "%s: %s%s%s", what, natsStatus_GetText(s),
			 last && *last ? ": " : "", last ? last : "");
	return rc;
}

static int tp_open(const vz_cluster_config *cfg, const char *node, const struct vz__tp_hooks *h,
		   struct vz__tp **out, vz_config_error *err)
{
	struct vz__tp *t = calloc(1, sizeof *t);
	struct epoll_event e = {.events = EPOLLIN};
	natsStatus s;
	char name[128];
	int rc = VZ_ECONFIG;

	if (!t)
		return VZ_ENOMEM;
	t->box = calloc(1, sizeof *t->box);
	if (!t->box) {
		free(t);
		return VZ_ENOMEM;
	}
	pthread_mutex_init(&t->box->mu, NULL);
	atomic_init(&t->box->refs, 2);
	t->box->hooks = *h;
	atomic_init(&t->sock, -1);
	atomic_init(&t->epollout, false);
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	e.data.fd = t->wakefd;
	if (t->epfd < 0 || t->wakefd < 0 || epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wakefd, &e) < 0) {
		rc = vz__config_error(err, "", 0, "", "cannot create the transport's epoll set");
		rc = VZ_EIO;
		goto out;
	}
	snprintf(name, sizeof name, "veloz:%s", node);
	s = natsOptions_Create(&t->opts);
	if (s == NATS_OK)
		s = natsOptions_SetURL(t->opts, cfg->url); /* splits a comma list */
	if (s != NATS_OK) {
		rc = fail(err, VZ_ECONFIG, "cluster.url", "bad server URL", s);
		goto out;
	}
	natsOptions_SetName(t->opts, name);
	natsOptions_SetTimeout(t->opts, cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 2000);
	natsOptions_SetAllowReconnect(t->opts, true);
	natsOptions_SetMaxReconnect(t->opts, cfg->max_reconnect ? (int)cfg->max_reconnect : -1);
	natsOptions_SetReconnectWait(t->opts,
				     cfg->reconnect_wait_ms ? cfg->reconnect_wait_ms : 100);
	natsOptions_SetReconnectBufSize(
	    t->opts, cfg->reconnect_buf_bytes ? (int)cfg->reconnect_buf_bytes : 8 << 20);
	/* With the event loop, "send asap" means: no flusher thread; every
	 * publish asks our loop to write, and the loop writes once per turn. */
	natsOptions_SetSendAsap(t->opts, true);
	natsOptions_SetIOBufSize(t->opts, 256 * 1024);
	natsOptions_SetNoEcho(t->opts, false);
	natsOptions_SetDisconnectedCB(t->opts, on_disconnected, t->box);
	natsOptions_SetReconnectedCB(t->opts, on_reconnected, t->box);
	natsOptions_SetClosedCB(t->opts, on_closed, t->box);
	natsOptions_SetErrorHandler(t->opts, on_error, t);
	if (cfg->credentials[0]) {
		s = natsOptions_SetUserCredentialsFromFiles(t->opts, cfg->credentials, NULL);
		if (s != NATS_OK) {
			rc = fail(err, VZ_ECONFIG, "cluster.credentials",
				  "cannot use the credentials file", s);
			goto out;
		}
	}
	if (cfg->tls || !strncmp(cfg->url, "tls://", 6)) {
		s = natsOptions_SetSecure(t->opts, true);
		if (s == NATS_OK && cfg->tls_ca[0])
			s = natsOptions_LoadCATrustedCertificates(t->opts, cfg->tls_ca);
		if (s != NATS_OK) {
			rc = fail(err, VZ_ECONFIG, "cluster.tls_ca", "TLS setup failed", s);
			goto out;
		}
		if (cfg->tls_cert[0] || cfg->tls_key[0]) {
			s = natsOptions_LoadCertificatesChain(t->opts, cfg->tls_cert, cfg->tls_key);
			if (s != NATS_OK) {
				rc = fail(err, VZ_ECONFIG, "cluster.tls_cert",
					  "cannot load the client certificate and key", s);
				goto out;
			}
		}
		if (cfg->tls_skip_verify)
			natsOptions_SkipServerVerification(t->opts, true);
	}
	s = natsOptions_SetEventLoop(t->opts, t, ev_attach, ev_read, ev_write, ev_detach);
	if (s == NATS_OK)
		s = natsConnection_Connect(&t->nc, t->opts);
	if (s != NATS_OK) {
		rc = fail(err, VZ_EIO, "cluster.url", "cannot join the NATS server", s);
		goto out;
	}
	snprintf(t->reply_sub, sizeof t->reply_sub, "%s.>", h->reply_prefix);
	s = natsConnection_Subscribe(&t->noresp, t->nc, t->reply_sub, on_noresp, t->box);
	if (s == NATS_OK &&
	    natsSubscription_SetOnCompleteCB(t->noresp, on_noresp_done, t->box) != NATS_OK) {
		natsSubscription_Destroy(t->noresp);
		t->noresp = NULL;
		s = NATS_ERR;
	}
	if (s != NATS_OK) {
		rc = fail(err, VZ_EIO, "cluster.url", "cannot subscribe", s);
		goto out;
	}
	*out = t;
	return 0;
out:
	pthread_mutex_lock(&t->box->mu);
	t->box->closed = true;
	pthread_mutex_unlock(&t->box->mu);
	if (!t->noresp)
		box_put(t->box); /* no subscription will complete */
	if (t->nc) {
		natsConnection_Close(t->nc); /* its closed callback puts the box */
		natsConnection_Destroy(t->nc);
	} else {
		box_put(t->box); /* no connection will call back */
	}
	natsOptions_Destroy(t->opts);
	if (t->epfd >= 0)
		close(t->epfd);
	if (t->wakefd >= 0)
		close(t->wakefd);
	free(t);
	return rc;
}

/* Write what the client buffered. Never with an empty buffer: the client
 * reads a zero-byte send as a closed connection. EPOLLOUT is registered
 * exactly while a partial write leaves bytes behind, so a full socket
 * buffer wakes us when it drains and an empty one does not spin us. */
static int tp_flush(struct vz__tp *t)
{
	int fd;
	bool want;

	/* Relaxed: our own flag, or one set by a client thread before the
	 * eventfd write we have read (see struct vz__tp). */
	if (!atomic_load_explicit(&t->want_write, memory_order_relaxed))
		return 0;
	natsConnection_ProcessWriteEvent(t->nc);
	fd = atomic_load_explicit(&t->sock, memory_order_relaxed);
	want = atomic_load_explicit(&t->want_write, memory_order_relaxed);
	if (fd >= 0 && want != atomic_load_explicit(&t->epollout, memory_order_relaxed)) {
		atomic_store_explicit(&t->epollout, want, memory_order_relaxed);
		(void)set_events(t, fd, EPOLLIN | (want ? EPOLLOUT : 0));
	}
	return 1;
}

static void tp_close(struct vz__tp *t)
{
	struct tp_sub *s, *next;

	for (int i = 0; i < 100 && atomic_load_explicit(&t->want_write, memory_order_relaxed); i++)
		tp_flush(t);
	for (s = t->subs; s; s = next) {
		next = s->next;
		natsSubscription_Destroy(s->s);
		free(s);
	}
	/* From here on the client's threads call nothing of ours. */
	pthread_mutex_lock(&t->box->mu);
	t->box->closed = true;
	pthread_mutex_unlock(&t->box->mu);
	natsSubscription_Unsubscribe(t->noresp);
	natsSubscription_Destroy(t->noresp);
	natsConnection_Close(t->nc);
	natsConnection_Destroy(t->nc);
	natsOptions_Destroy(t->opts);
	close(t->epfd);
	close(t->wakefd);
	free(t);
}

/* ---- data path --------------------------------------------------------- */

static int tp_subscribe(struct vz__tp *t, const char *subject, const char *queue, void *user,
			void **handle)
{
	struct tp_sub *s = calloc(1, sizeof *s);
	natsStatus st;

	if (!s)
		return VZ_ENOMEM;
	if (queue)
		st = natsConnection_QueueSubscribeSync(&s->s, t->nc, subject, queue);
	else
		st = natsConnection_SubscribeSync(&s->s, t->nc, subject);
	if (st != NATS_OK) {
		free(s);
		return st == NATS_NO_MEMORY ? VZ_ENOMEM : VZ_EIO;
	}
	/* Unbounded in the client: we read every subscription right after
	 * each parse, so only a stalled transport thread could pile up; the
	 * server's own slow-consumer limit bounds the connection. */
	natsSubscription_SetPendingLimits(s->s, -1, -1);
	s->user = user;
	s->next = t->subs;
	if (t->subs)
		t->subs->prev = s;
	t->subs = s;
	*handle = s;
	return 0;
}

static void tp_unsubscribe(struct vz__tp *t, void *handle)
{
	struct tp_sub *s = handle;

	natsSubscription_Unsubscribe(s->s);
	natsSubscription_Destroy(s->s);
	if (s->prev)
		s->prev->next = s->next;
	else
		t->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

static int tp_publish(struct vz__tp *t, const char *subject, const char *reply, const void *data,
		      size_t len)
{
	natsStatus s = reply ? natsConnection_PublishRequest(t->nc, subject, reply, data, (int)len)
			     : natsConnection_Publish(t->nc, subject, data, (int)len);

	if (s == NATS_OK)
		return 0;
	return s == NATS_MAX_PAYLOAD ? VZ_ETOOBIG : VZ_EIO;
}

static int drain_subs(struct vz__tp *t, vz__tp_deliver_fn fn, void *ctx)
{
	int n = 0;

	for (struct tp_sub *s = t->subs; s; s = s->next) {
		int pending = 0;
		natsMsg *m;

		if (natsSubscription_GetPending(s->s, &pending, NULL) != NATS_OK || pending <= 0)
			continue;
		while (pending-- > 0 && natsSubscription_NextMsg(&m, s->s, 0) == NATS_OK) {
			fn(ctx, s->user, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
			natsMsg_Destroy(m);
			n++;
		}
	}
	return n;
}

static int tp_poll(struct vz__tp *t, int timeout_ms, vz__tp_deliver_fn fn, void *ctx)
{
	struct epoll_event ev[4];
	int n, got = 0;

	if (!atomic_load_explicit(&t->owner_set, memory_order_relaxed)) {
		t->owner = pthread_self();
		/* Release: pairs with the acquire in on_owner(). */
		atomic_store_explicit(&t->owner_set, true, memory_order_release);
	}
	n = epoll_wait(t->epfd, ev, 4, timeout_ms);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.fd == t->wakefd) {
			uint64_t v;

			if (read(t->wakefd, &v, sizeof v) < 0 && errno != EAGAIN)
				continue;
			continue;
		}
		if (ev[i].data.fd != atomic_load_explicit(&t->sock, memory_order_relaxed))
			continue; /* an old socket's last event */
		if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			natsConnection_ProcessReadEvent(t->nc);
		if (ev[i].events & EPOLLOUT)
			tp_flush(t);
		got = 1;
	}
	if (got)
		return drain_subs(t, fn, ctx);
	return 0;
}

static uint64_t tp_dropped(struct vz__tp *t, void *handle)
{
	struct tp_sub *s = handle;
	int64_t d = 0;
	uint64_t delta;

	(void)t;
	if (natsSubscription_GetDropped(s->s, &d) != NATS_OK || d < 0)
		return 0;
	delta = (uint64_t)d - s->dropped_seen;
	s->dropped_seen = (uint64_t)d;
	return delta;
}

static size_t tp_max_payload(struct vz__tp *t)
{
	int64_t m = natsConnection_GetMaxPayload(t->nc);

	return m > 0 ? (size_t)m : 0;
}

const struct vz__tp_ops vz__tp_nats = {
    .name = "nats",
    .open = tp_open,
    .subscribe = tp_subscribe,
    .unsubscribe = tp_unsubscribe,
    .publish = tp_publish,
    .flush = tp_flush,
    .poll = tp_poll,
    .wake = tp_wake,
    .dropped = tp_dropped,
    .max_payload = tp_max_payload,
    .close = tp_close,
};

#endif /* VZ_HAVE_NATS */
