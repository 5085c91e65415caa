// SPDX-License-Identifier: MIT
/*
 * Monitors on other nodes' actors (cluster.h, "Monitors across nodes"):
 * vz_monitor() of a remote reference gets exactly one VZ_MSG_DOWN, as for
 * a local actor, when the actor ends, when its unique name is taken from
 * it, when its node leaves or stops being heard from, and at once when
 * there is no such actor. Everything here runs on the transport thread.
 *
 * The watching node (W) and the watched node (T) share the work with the
 * core's own monitors (core/life.c):
 *   - vz_monitor() on W sends VZ__MSG_MONITOR {watcher, id} to the remote
 *     reference: the cluster's send path turns it into a MON record on the
 *     same ring, so it keeps its place among the watcher's messages. When
 *     the transport drains it, W remembers a "held" monitor (id ->
 *     watcher, target) and publishes it with a reply subject, so that a
 *     name nobody has comes back as "no responders": DOWN(NOPROC) at once.
 *   - T's transport gives the actor (the reference's actor, or the unique
 *     name's holder) an ordinary VZ__MSG_MONITOR whose watcher is the
 *     sender proxy of W's watcher, and answers ACK. From then on the
 *     actor's own end (core/life.c) sends DOWN to that proxy, which the
 *     send path turns into a DOWN record to W; a stale actor answers
 *     DOWN(NOPROC) the same way. When the name is unregistered (the actor
 *     lives on), T's transport sends DOWN itself and takes the watcher back.
 *   - W delivers a DOWN only for a monitor it still holds, then forgets it:
 *     whichever of the actor's DOWN, a node-loss DOWN or a timeout comes
 *     first is the only one. vz_demonitor() (or the watcher's end) sends
 *     DEMON, which drops the held monitor on W and takes the watcher back
 *     on T; the core drops a DOWN already queued to the watcher.
 *   - Liveness: every node publishes a heartbeat on "vz.<ns>.hb" every
 *     heartbeat_ms and a goodbye when it leaves; a held monitor is bound
 *     to the incarnation of the node that acknowledged it. It gets DOWN
 *     (NOPROC, code VZ_EIO) when that node said goodbye, came back as a
 *     new incarnation, or was not heard from for node_timeout_ms; one not
 *     acknowledged within node_timeout_ms gets DOWN (NOPROC, VZ_ETIMEDOUT).
 *     This node not hearing the others (its own connection down) counts
 *     the same: their monitors end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "cluster/wire.h"
#include "core/core.h"

/* The payload of core/life.c's VZ__MSG_MONITOR (its struct monitor_req):
 * who watches, and the monitor id. */
struct monitor_req {
	vz_ref watcher;
	uint64_t id;
};

/* ---- a map: monitor id -> struct vz__mon --------------------------------- */

/* Open addressing, linear probing, deletion by backward shift; at most
 * half full. */
static uint32_t home(const struct vz__monmap *m, uint64_t id)
{
	return (uint32_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (m->cap - 1);
}

static struct vz__mon *mon_find(struct vz__monmap *m, uint64_t id)
{
	if (!m->cap)
		return NULL;
	for (uint32_t i = home(m, id);; i = (i + 1) & (m->cap - 1)) {
		if (m->s[i].id == id)
			return &m->s[i];
		if (!m->s[i].id)
			return NULL;
	}
}

static struct vz__mon *mon_put(struct vz__monmap *m, const struct vz__mon *v)
{
	struct vz__mon *slot;
	uint32_t i;

	if ((m->n + 1) * 2 > m->cap) {
		uint32_t cap = m->cap ? m->cap * 2 : 16;
		struct vz__mon *ns = calloc(cap, sizeof *ns), *old = m->s;
		uint32_t ocap = m->cap;

		if (!ns)
			return NULL;
		m->s = ns;
		m->cap = cap;
		for (uint32_t k = 0; k < ocap; k++) {
			if (!old[k].id)
				continue;
			for (i = home(m, old[k].id); m->s[i].id; i = (i + 1) & (cap - 1))
				;
			m->s[i] = old[k];
		}
		free(old);
	}
	for (i = home(m, v->id); m->s[i].id && m->s[i].id != v->id; i = (i + 1) & (m->cap - 1))
		;
	slot = &m->s[i];
	if (!slot->id)
		m->n++;
	*slot = *v;
	return slot;
}

/* Remove id; true (and *out) when it was there. */
static bool mon_del(struct vz__monmap *m, uint64_t id, struct vz__mon *out)
{
	struct vz__mon *slot = mon_find(m, id);
	uint32_t i, j;

	if (!slot)
		return false;
	if (out)
		*out = *slot;
	i = (uint32_t)(slot - m->s);
	/* Backward shift: pull later members of the cluster into the hole
	 * when their home is not between the hole and them. */
	for (j = (i + 1) & (m->cap - 1); m->s[j].id; j = (j + 1) & (m->cap - 1)) {
		uint32_t h = home(m, m->s[j].id);

		if (((j - h) & (m->cap - 1)) >= ((j - i) & (m->cap - 1))) {
			m->s[i] = m->s[j];
			i = j;
		}
	}
	memset(&m->s[i], 0, sizeof m->s[i]);
	m->n--;
	return true;
}

/* The ids of the members that match, copied out (so that the caller can
 * delete while it goes through them). NULL when none, or out of memory. */
static uint64_t *mon_select(struct vz__monmap *m, bool (*match)(const struct vz__mon *, void *),
			    void *arg, uint32_t *n)
{
	uint64_t *ids = NULL;
	uint32_t k = 0;

	*n = 0;
	for (uint32_t i = 0; i < m->cap; i++) {
		if (!m->s[i].id || !match(&m->s[i], arg))
			continue;
		if (!ids && !(ids = malloc(m->n * sizeof *ids)))
			return NULL;
		ids[k++] = m->s[i].id;
	}
	*n = k;
	return ids;
}

/* ---- peers --------------------------------------------------------------- */

static struct vz__peer *peer_get(struct vz_cluster *c, const char *name, size_t len)
{
	struct vz__peer *p;

	for (uint32_t i = 0; i < c->npeers; i++)
		if (strlen(c->peers[i].name) == len && !memcmp(c->peers[i].name, name, len))
			return &c->peers[i];
	if (c->npeers == c->peercap) {
		uint32_t cap = c->peercap ? c->peercap * 2 : 8;

		p = realloc(c->peers, cap * sizeof *p);
		if (!p)
			return NULL;
		c->peers = p;
		c->peercap = cap;
	}
	p = &c->peers[c->npeers++];
	memset(p, 0, sizeof *p);
	memcpy(p->name, name, len);
	return p;
}

/* ---- DOWN ---------------------------------------------------------------- */

static void exit_fill(vz_exit *e, uint32_t kind, int32_t code, const char *text)
{
	memset(e, 0, sizeof *e);
	e->kind = kind;
	e->code = code;
	snprintf(e->text, sizeof e->text, "%s", text);
}

/* Hand the watcher of held monitor m its DOWN (m already removed). */
static void down_local(struct vz_cluster *c, const struct vz__mon *m, const vz_exit *e)
{
	vz_down d = {.mon = {m->id}, .actor = vz__rentry_ref(c, m->entry), .reason = *e};

	/* Refused only when the watcher's runtime stops (no DOWN then, as
	 * for local monitors) or the watcher is gone (dropped there). */
	(void)vz__cluster_post_sys(c, d.actor, (vz_ref){m->local}, VZ_MSG_DOWN, &d, sizeof d);
}

static void held_down(struct vz_cluster *c, uint64_t id, uint32_t kind, int32_t code,
		      const char *text)
{
	struct vz__mon m;
	vz_exit e;

	if (!mon_del(&c->held, id, &m))
		return;
	exit_fill(&e, kind, code, text);
	down_local(c, &m, &e);
}

static void down_encode(unsigned char *buf, uint64_t id, const vz_exit *e)
{
	vz__wire_put64(buf, id);
	vz__wire_put32(buf + 8, e->kind);
	vz__wire_put32(buf + 12, (uint32_t)e->code);
	memset(buf + 16, 0, VZ_EXIT_TEXT_MAX);
	memcpy(buf + 16, e->text, strnlen(e->text, VZ_EXIT_TEXT_MAX - 1));
}

/* DOWN from this node's transport to a watcher on another node. */
static void down_remote(struct vz_cluster *c, uint32_t watcher_entry, uint64_t id, vz_ref actor,
			uint32_t kind, int32_t code, const char *text)
{
	unsigned char buf[VZ__DOWN_WIRE_LEN];
	vz_exit e;

	exit_fill(&e, kind, code, text);
	down_encode(buf, id, &e);
	vz__cluster_send_ctl(c, watcher_entry, VZ__WIRE_DOWN, actor.id, buf, sizeof buf);
}

void vz__mon_noproc(struct vz_cluster *c, uint64_t id)
{
	held_down(c, id, VZ_EXIT_NOPROC, VZ_ENOENT, "no such actor");
}

/* ---- records this node sends --------------------------------------------- */

bool vz__mon_outgoing(struct vz_cluster *c, const struct vz__rentry *e, uint32_t type,
		      uint64_t from, const unsigned char *payload, uint32_t len)
{
	uint64_t id = len >= 8 ? vz__wire_get64(payload) : 0;

	switch (type) {
	case VZ__WIRE_MON: {
		struct vz__mon m = {
		    .id = id, .local = from, .entry = e->index, .t_ns = vz__clock_ns()};

		if (!mon_put(&c->held, &m)) {
			/* No memory to remember it: it could never end. */
			struct vz__mon tmp = m;
			vz_exit x;

			exit_fill(&x, VZ_EXIT_NOPROC, VZ_ENOMEM, "cannot watch: out of memory");
			down_local(c, &tmp, &x);
			return false;
		}
		return true;
	}
	case VZ__WIRE_DEMON:
		/* Forgotten here whether or not its DOWN came already; sent on
		 * anyway, so that the other side takes its watcher back. */
		mon_del(&c->held, id, NULL);
		return true;
	case VZ__WIRE_DOWN:
		mon_del(&c->given, id, NULL);
		return true;
	default:
		return true;
	}
}

/* ---- records this node receives ------------------------------------------ */

static vz_ref holder(struct vz_cluster *c, struct vz__csub *s, const struct vz__wire *w)
{
	(void)c;
	if (s->kind == VZ__KIND_DIRECT)
		return (vz_ref){w->to};
	if (s->kind == VZ_NAME_UNIQUE && s->n)
		return s->actors[0];
	return VZ_REF_NULL; /* queue and broadcast names are not watched */
}

static uint32_t entry_of(vz_ref r)
{
	return (uint32_t)(r.id >> 32) & ((1u << 24) - 1);
}

/* MON: give the actor a watcher that is the proxy of the remote one. */
static void on_mon(struct vz_cluster *c, struct vz__csub *s, const struct vz__wire *w,
		   vz_ref watcher, uint64_t id)
{
	vz_ref target = holder(c, s, w);
	struct monitor_req r = {.watcher = watcher, .id = id};
	unsigned char ack[8];
	int rc;

	if (vz_ref_is_null(target)) {
		down_remote(c, entry_of(watcher), id, target, VZ_EXIT_NOPROC, VZ_ENOENT,
			    "no such actor");
		return;
	}
	rc = vz__cluster_post_sys(c, watcher, target, VZ__MSG_MONITOR, &r, sizeof r);
	if (rc < 0) {
		down_remote(c, entry_of(watcher), id, target, VZ_EXIT_NOPROC, rc,
			    rc == VZ_ESTOPPED ? "node stopping" : "no such actor");
		return;
	}
	if (s->kind == VZ_NAME_UNIQUE) {
		struct vz__mon g = {
		    .id = id, .local = target.id, .entry = entry_of(watcher), .sub = s};

		(void)mon_put(&c->given, &g); /* without memory: no DOWN on unregister */
	}
	vz__wire_put64(ack, id);
	vz__cluster_send_ctl(c, entry_of(watcher), VZ__WIRE_ACK, target.id, ack, sizeof ack);
}

static void on_demon(struct vz_cluster *c, struct vz__csub *s, const struct vz__wire *w,
		     uint64_t id)
{
	struct vz__mon g;
	vz_ref target;

	if (mon_del(&c->given, id, &g))
		target = (vz_ref){g.local};
	else
		target = holder(c, s, w);
	if (!vz_ref_is_null(target))
		(void)vz__cluster_post_sys(c, VZ_REF_NULL, target, VZ__MSG_DEMONITOR, &id,
					   sizeof id);
}

static void on_ack(struct vz_cluster *c, const struct vz__wire *w, vz_ref target, uint64_t id)
{
	struct vz__mon *m = mon_find(&c->held, id);
	struct vz__peer *p;

	if (!m) {
		/* Ended here meanwhile (demonitored, or timed out): take the
		 * watcher back over there. */
		unsigned char buf[8];

		if (!vz_ref_is_null(target)) {
			vz__wire_put64(buf, id);
			vz__cluster_send_ctl(c, entry_of(target), VZ__WIRE_DEMON, 0, buf,
					     sizeof buf);
		}
		return;
	}
	p = peer_get(c, w->node, w->node_len);
	if (!p)
		return; /* stays unbound: ends by timeout */
	if (p->node_id != w->node_id) {
		p->node_id = w->node_id;
		p->gone = false;
	}
	p->seen_ns = vz__clock_ns();
	m->peer = (uint32_t)(p - c->peers) + 1;
	m->node_id = w->node_id;
}

static void on_down(struct vz_cluster *c, const struct vz__wire *w)
{
	struct vz__mon m;
	vz_exit e;

	if (w->len != VZ__DOWN_WIRE_LEN || !mon_del(&c->held, vz__wire_get64(w->payload), &m))
		return; /* demonitored, or ended otherwise already */
	memset(&e, 0, sizeof e);
	e.kind = vz__wire_get32(w->payload + 8);
	e.code = (int32_t)vz__wire_get32(w->payload + 12);
	memcpy(e.text, w->payload + 16, VZ_EXIT_TEXT_MAX - 1);
	down_local(c, &m, &e);
}

static void on_heartbeat(struct vz_cluster *c, const struct vz__wire *w, bool bye)
{
	struct vz__peer *p;

	/* Our own comes back too (the connection echoes): a monitor on an
	 * actor of this node, reached through a name, is bound to it, and
	 * ends like the others when we stop hearing the server. */
	p = peer_get(c, w->node, w->node_len);
	if (!p)
		return;
	if (p->node_id != w->node_id) {
		p->node_id = w->node_id;
		p->gone = false;
	}
	p->seen_ns = vz__clock_ns();
	if (bye) {
		p->gone = true;
		c->check_next = 0; /* their monitors end now */
	}
}

void vz__mon_incoming(struct vz_cluster *c, struct vz__csub *s, const struct vz__wire *w)
{
	uint64_t id = w->len >= 8 ? vz__wire_get64(w->payload) : 0;

	if (s->kind == VZ__KIND_HB) {
		if (w->type == VZ__WIRE_HB || w->type == VZ__WIRE_BYE)
			on_heartbeat(c, w, w->type == VZ__WIRE_BYE);
		return;
	}
	switch (w->type) {
	case VZ__WIRE_MON:
		if (w->len == 8 && w->from) {
			vz_ref watcher = vz__cluster_sender(c, w);

			if (!vz_ref_is_null(watcher))
				on_mon(c, s, w, watcher, id);
		}
		break;
	case VZ__WIRE_DEMON:
		if (w->len == 8)
			on_demon(c, s, w, id);
		break;
	case VZ__WIRE_ACK:
		if (w->len == 8 && s->kind == VZ__KIND_DIRECT)
			on_ack(c, w, w->from ? vz__cluster_sender(c, w) : VZ_REF_NULL, id);
		break;
	case VZ__WIRE_DOWN:
		if (s->kind == VZ__KIND_DIRECT)
			on_down(c, w);
		break;
	default:
		break;
	}
}

/* ---- names and actors that go -------------------------------------------- */

struct given_match {
	struct vz__csub *sub; /* NULL: any */
	uint64_t actor;	      /* 0: any */
};

static bool given_matches(const struct vz__mon *m, void *arg)
{
	const struct given_match *g = arg;

	return (!g->sub || m->sub == g->sub) && (!g->actor || m->local == g->actor);
}

void vz__mon_unregistered(struct vz_cluster *c, struct vz__csub *s, vz_ref actor)
{
	struct given_match g = {.sub = s, .actor = actor.id};
	uint32_t n;
	uint64_t *ids = mon_select(&c->given, given_matches, &g, &n);

	for (uint32_t i = 0; i < n; i++) {
		struct vz__mon m;

		if (!mon_del(&c->given, ids[i], &m))
			continue;
		down_remote(c, m.entry, m.id, actor, VZ_EXIT_NOPROC, VZ_ENOENT,
			    "name unregistered");
		/* The actor lives on: take the proxy watcher back. */
		(void)vz__cluster_post_sys(c, VZ_REF_NULL, actor, VZ__MSG_DEMONITOR, &m.id,
					   sizeof m.id);
	}
	free(ids);
}

void vz__mon_stopped(struct vz_cluster *c, vz_ref actor)
{
	struct given_match g = {.actor = actor.id};
	uint32_t n;
	uint64_t *ids = mon_select(&c->given, given_matches, &g, &n);

	for (uint32_t i = 0; i < n; i++)
		mon_del(&c->given, ids[i], NULL);
	free(ids);
}

void vz__mon_sub_gone(struct vz_cluster *c, struct vz__csub *s)
{
	struct given_match g = {.sub = s};
	uint32_t n;
	uint64_t *ids = mon_select(&c->given, given_matches, &g, &n);

	for (uint32_t i = 0; i < n; i++)
		mon_del(&c->given, ids[i], NULL);
	free(ids);
}

/* ---- heartbeats and liveness --------------------------------------------- */

static void publish_hb(struct vz_cluster *c, uint32_t type)
{
	unsigned char buf[VZ__WIRE_HDR + VZ__WIRE_NODE];
	struct vz__wire w = {
	    .type = type, .node_id = c->node_id, .node = c->node, .node_len = c->node_len};

	vz__wire_encode(buf, &w);
	(void)c->ops->publish(c->tp, c->hb_subject, NULL, buf, vz__wire_size(c->node_len, 0));
}

struct dead_match {
	struct vz_cluster *c;
	uint64_t now;
};

static bool is_dead(const struct vz__mon *m, void *arg)
{
	const struct dead_match *d = arg;
	const struct vz__peer *p;

	if (!m->peer)
		return d->now - m->t_ns > d->c->timeout_ns;
	p = &d->c->peers[m->peer - 1];
	return p->gone || p->node_id != m->node_id || d->now - p->seen_ns > d->c->timeout_ns;
}

static void check_held(struct vz_cluster *c, uint64_t now)
{
	struct dead_match d = {.c = c, .now = now};
	uint32_t n;
	uint64_t *ids = mon_select(&c->held, is_dead, &d, &n);

	for (uint32_t i = 0; i < n; i++) {
		struct vz__mon *m = mon_find(&c->held, ids[i]);
		char text[VZ_EXIT_TEXT_MAX];

		if (!m)
			continue;
		if (!m->peer) {
			held_down(c, ids[i], VZ_EXIT_NOPROC, VZ_ETIMEDOUT, "no answer");
			continue;
		}
		snprintf(text, sizeof text, "node lost: %.36s", c->peers[m->peer - 1].name);
		held_down(c, ids[i], VZ_EXIT_NOPROC, VZ_EIO, text);
	}
	free(ids);
}

uint64_t vz__mon_tick(struct vz_cluster *c, uint64_t now)
{
	if (now >= c->hb_next) {
		publish_hb(c, VZ__WIRE_HB);
		c->hb_next = now + c->hb_ns;
	}
	if (now >= c->check_next) {
		if (c->held.n)
			check_held(c, now);
		c->check_next = now + c->hb_ns / 4;
	}
	return c->hb_next < c->check_next ? c->hb_next : c->check_next;
}

void vz__mon_bye(struct vz_cluster *c)
{
	publish_hb(c, VZ__WIRE_BYE);
}

void vz__mon_free(struct vz_cluster *c)
{
	free(c->held.s);
	free(c->given.s);
	free(c->peers);
	memset(&c->held, 0, sizeof c->held);
	memset(&c->given, 0, sizeof c->given);
	c->peers = NULL;
	c->npeers = c->peercap = 0;
}
