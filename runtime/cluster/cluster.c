// SPDX-License-Identifier: MIT
/*
 * The cluster's public calls, its table of remote references, and the
 * send path that hands a message for another node to the transport thread
 * (vz__remote_send(), reached from core/send.c). The transport thread and
 * the inbound path are in transport_loop.c; the NATS client behind the
 * transport seam in tp_nats.c. See cluster_int.h for who owns what.
 *
 * Built without libnats, everything here still compiles: vz_cluster_create()
 * returns VZ_ENOSYS, so no cluster ever exists and every other call finds
 * none.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cluster/cluster_int.h"
#include "cluster/wire.h"
#include "config/config_int.h"
#include "core/core.h"
#include "util/fence.h"

/* ---- names ------------------------------------------------------------- */

#ifdef VZ_HAVE_NATS
/* Letters, digits, '-' and '_' (node and namespace names; NATS subject
 * tokens that need no escaping). */
static bool token_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char ch = s[n];

		if (n >= max || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
				  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
	}
	return n > 0;
}
#endif

/* Tokens as token_ok() separated by single dots. */
static bool name_ok(const char *name)
{
	size_t n = 0;
	bool tok = false;

	if (!name)
		return false;
	for (; name[n]; n++) {
		char ch = name[n];

		if (n >= VZ_CLUSTER_NAME_LEN)
			return false;
		if (ch == '.') {
			if (!tok)
				return false;
			tok = false;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			   (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
			tok = true;
		} else {
			return false;
		}
	}
	return tok;
}

static const char kind_letter[] = {'u', 'q', 'b'};

static void name_subject(const struct vz_cluster *c, const char *name, vz_name_kind kind, char *out)
{
	snprintf(out, VZ__SUBJECT_MAX, "vz.%s.%c.%s", c->ns, kind_letter[kind], name);
}

/* ---- the remote table -------------------------------------------------- */

static uint32_t hash_key(const char *subject, uint64_t target)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = subject; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h ^= target;
	h *= 0x9e3779b97f4a7c15ull;
	return (uint32_t)(h >> 32);
}

static int hash_grow(struct vz_cluster *c, uint32_t n)
{
	uint32_t cap = c->hcap ? c->hcap * 2 : 1024, *nh;

	nh = calloc(cap, sizeof *nh);
	if (!nh)
		return VZ_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct vz__rentry *e = vz__rentry_at(c, i);
		uint32_t b = hash_key(e->subject, e->target) & (cap - 1);

		e->hnext = nh[b];
		nh[b] = i + 1;
	}
	free(c->hash);
	c->hash = nh;
	c->hcap = cap;
	return 0;
}

/* Find or add the entry (kind, subject, target). Any thread; takes lock. */
int vz__rentry_get(struct vz_cluster *c, uint8_t kind, const char *subject, uint64_t target,
		   uint32_t *index)
{
	uint32_t n, b;
	struct vz__rentry *e, *chunk;
	int rc = 0;

	pthread_mutex_lock(&c->lock);
	/* Relaxed: entries change only under the lock we hold. */
	n = atomic_load_explicit(&c->nentries, memory_order_relaxed);
	b = hash_key(subject, target) & (c->hcap - 1);
	for (uint32_t i = c->hash[b]; i; i = e->hnext) {
		e = vz__rentry_at(c, i - 1);
		if (e->kind == kind && e->target == target && !strcmp(e->subject, subject)) {
			*index = i - 1;
			goto out;
		}
	}
	if (n >= VZ__RMAX_CHUNKS * VZ__RCHUNK) {
		rc = VZ_ENOMEM;
		goto out;
	}
	chunk = atomic_load_explicit(&c->chunks[n / VZ__RCHUNK], memory_order_relaxed);
	if (!chunk) {
		chunk = calloc(VZ__RCHUNK, sizeof *chunk);
		if (!chunk) {
			rc = VZ_ENOMEM;
			goto out;
		}
		/* Relaxed: published by the release store of nentries below. */
		atomic_store_explicit(&c->chunks[n / VZ__RCHUNK], chunk, memory_order_relaxed);
	}
	if (n + 1 > c->hcap / 2 && hash_grow(c, n) < 0) {
		rc = VZ_ENOMEM;
		goto out;
	}
	e = &chunk[n % VZ__RCHUNK];
	e->kind = kind;
	e->index = n;
	e->target = target;
	e->seq = 0;
	snprintf(e->subject, sizeof e->subject, "%s", subject);
	b = hash_key(subject, target) & (c->hcap - 1);
	e->hnext = c->hash[b];
	c->hash[b] = n + 1;
	/* Release: pairs with the senders' acquire in vz__remote_send(); the
	 * entry and its chunk pointer are written before they count it. */
	atomic_store_explicit(&c->nentries, n + 1, memory_order_release);
	*index = n;
out:
	pthread_mutex_unlock(&c->lock);
	return rc;
}

vz_ref vz__rentry_ref(const struct vz_cluster *c, uint32_t index)
{
	return (vz_ref){((uint64_t)VZ__REMOTE_SHARD << 56) | ((uint64_t)index << 32) | c->tag};
}

void vz__cluster_dead_letter(struct vz_cluster *c, uint64_t to, uint32_t type, const void *data,
			     size_t len, int reason)
{
	const vz_config *cfg = &c->rt->cfg;

	if (cfg->dead_letter)
		cfg->dead_letter(cfg->dead_letter_ctx, to, type, data, len, reason);
}

/* ---- the send path ------------------------------------------------------ */

/* Wake the transport thread if it sleeps. Called after a publish (release
 * store of a ring's tail, or the command queue's seq_cst exchange). The
 * full fence pairs with the transport's fence after it announced sleeping
 * (store-buffer pattern, as vz__wake() for shards): either it sees our
 * record in its re-check, or we see its flag and wake it. */
void vz__cluster_wake(struct vz_cluster *c)
{
	vz__full_fence_on(&c->sleeping);
	if (atomic_load_explicit(&c->sleeping, memory_order_relaxed) &&
	    atomic_exchange_explicit(&c->sleeping, 0, memory_order_seq_cst))
		c->ops->wake(c->tp);
}

/* The payload of core/life.c's VZ__MSG_MONITOR (its struct monitor_req). */
struct monitor_req {
	vz_ref watcher;
	uint64_t id;
};

/* A runtime message of core/life.c to a remote reference, as the
 * cluster's own record (cluster_int.h): *type and *payload rewritten into
 * buf. 0, or VZ_EINVAL for what does not cross nodes (links, spawns; a
 * monitor on a queue or broadcast name, which names no one actor). */
static int ctl_encode(const struct vz__rentry *e, uint32_t *type, const void **payload, size_t *len,
		      vz_ref *from, unsigned char *buf)
{
	switch (*type) {
	case VZ__MSG_MONITOR: {
		struct monitor_req r;

		if (*len != sizeof r || (e->kind != VZ_NAME_UNIQUE && e->kind != VZ__KIND_DIRECT))
			return VZ_EINVAL;
		memcpy(&r, *payload, sizeof r);
		*from = r.watcher;
		*type = VZ__WIRE_MON;
		vz__wire_put64(buf, r.id);
		*len = 8;
		break;
	}
	case VZ__MSG_DEMONITOR: {
		uint64_t id;

		if (*len != sizeof id)
			return VZ_EINVAL;
		memcpy(&id, *payload, sizeof id);
		*type = VZ__WIRE_DEMON;
		vz__wire_put64(buf, id);
		*len = 8;
		break;
	}
	case VZ_MSG_DOWN: {
		vz_down d;

		if (*len != sizeof d || e->kind != VZ__KIND_DIRECT)
			return VZ_EINVAL;
		memcpy(&d, *payload, sizeof d);
		*from = d.actor;
		*type = VZ__WIRE_DOWN;
		vz__wire_put64(buf, d.mon.id);
		vz__wire_put32(buf + 8, d.reason.kind);
		vz__wire_put32(buf + 12, (uint32_t)d.reason.code);
		memset(buf + 16, 0, VZ_EXIT_TEXT_MAX);
		memcpy(buf + 16, d.reason.text, strnlen(d.reason.text, VZ_EXIT_TEXT_MAX - 1));
		*len = VZ__DOWN_WIRE_LEN;
		break;
	}
	default:
		return VZ_EINVAL;
	}
	*payload = buf;
	return 0;
}

static int put_record(struct vz_cluster *c, struct vz__xring *r, const struct vz__rentry *e,
		      vz_ref from, uint32_t type, const void *payload, size_t len)
{
	size_t wire = vz__wire_size(c->node_len, len);
	struct vz__xrec *rec = vz__xring_reserve(r, (uint32_t)(sizeof *rec + wire));
	struct vz__wire w = {
	    .type = type,
	    .len = (uint32_t)len,
	    .stream = e->index,
	    .node_id = c->node_id,
	    .from = from.id,
	    .to = e->kind == VZ__KIND_DIRECT ? e->target : 0,
	    .node = c->node,
	    .node_len = c->node_len,
	};

	if (!rec)
		return VZ_EFULL;
	rec->entry = e->index;
	rec->wire_len = (uint32_t)wire;
	vz__wire_encode(rec->wire, &w);
	if (len)
		memcpy(rec->wire + VZ__WIRE_HDR + c->node_len, payload, len);
	vz__xring_publish(r);
	return 0;
}

int vz__remote_send(vz_runtime *rt, struct vz__shard *sh, vz_ref from, vz_ref to, uint32_t type,
		    const void *payload, size_t len)
{
	/* Acquire: pairs with the release store in vz_cluster_create(); the
	 * cluster is fully built before a sender sees it. */
	struct vz_cluster *c = atomic_load_explicit(&rt->cluster, memory_order_acquire);
	uint32_t idx = (uint32_t)(to.id >> 32) & ((1u << 24) - 1);
	unsigned char ctl[VZ__DOWN_WIRE_LEN];
	struct vz__rentry *e;
	int rc;

	if (!c)
		return 1;
	if (!payload && len)
		return VZ_EINVAL;
	if (len > c->max_payload)
		return VZ_ETOOBIG;
	/* Acquire: pairs with the release in vz__rentry_get(). */
	if ((uint32_t)to.id != c->tag ||
	    idx >= atomic_load_explicit(&c->nentries, memory_order_acquire))
		return VZ_ESTALE;
	/* Relaxed: a hint; destroy waits for the runtime to be stopped, so no
	 * shard is here when it frees anything. */
	if (atomic_load_explicit(&c->closing, memory_order_relaxed))
		return VZ_ESTOPPED;
	e = vz__rentry_at(c, idx);
	if (type < VZ_MSG_USER) {
		rc = ctl_encode(e, &type, &payload, &len, &from, ctl);
		if (rc < 0)
			return rc;
	}
	if (sh) {
		rc = put_record(c, &c->out[sh->id], e, from, type, payload, len);
	} else {
		pthread_mutex_lock(&c->foreign_lock);
		rc = put_record(c, &c->foreign, e, from, type, payload, len);
		pthread_mutex_unlock(&c->foreign_lock);
	}
	if (rc == 0)
		vz__cluster_wake(c);
	return rc;
}

/* ---- registrations ------------------------------------------------------ */

static int push_cmd(struct vz_cluster *c, uint8_t op, vz_ref actor, const char *name,
		    vz_name_kind kind)
{
	struct vz__ccmd *cmd = calloc(1, sizeof *cmd);

	if (!cmd)
		return VZ_ENOMEM;
	cmd->op = op;
	cmd->kind = (uint8_t)kind;
	cmd->actor = actor;
	if (name)
		snprintf(cmd->name, sizeof cmd->name, "%s", name);
	/* seq_cst exchange: also the "publish, full fence" of the wake-up. */
	vz__mpsc_push_sc(&c->cmds, &cmd->node);
	vz__cluster_wake(c);
	return 0;
}

/* Thread rules of vz_spawn() for an actor of rt: 0 with *sh set (and the
 * actor's flags writable by us), or a VZ_E* code. */
static int actor_thread_check(struct vz_cluster *c, vz_ref actor, struct vz__shard **sh_out,
			      struct vz_actor **a_out)
{
	vz_runtime *rt = c->rt;
	struct vz__shard *sh, *cur;
	uint32_t state;

	if (vz_ref_is_null(actor) || vz_ref_shard(actor) >= rt->nshards)
		return VZ_ESTALE;
	sh = rt->shards[vz_ref_shard(actor)];
	/* Acquire: pairs with the seq_cst stores of the state (start/stop). */
	state = atomic_load_explicit(&rt->state, memory_order_acquire);
	if (state >= VZ__RT_STOPPING)
		return VZ_ESTOPPED;
	cur = vz__current(rt);
	if (state == VZ__RT_RUNNING && cur != sh)
		return VZ_EWRONGTHREAD;
	*sh_out = sh;
	*a_out = vz__actor_lookup(sh, actor);
	return *a_out ? 0 : VZ_ESTALE;
}

VZ_API int vz_cluster_register(vz_cluster *c, vz_ref actor, const char *name, vz_name_kind kind)
{
	struct vz__shard *sh;
	struct vz_actor *a;
	struct vz__reg *r;
	int rc;

	if (!c || !name_ok(name) || (unsigned)kind > VZ_NAME_BROADCAST)
		return VZ_EINVAL;
	rc = actor_thread_check(c, actor, &sh, &a);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	for (r = c->regs; r; r = r->next)
		if (r->kind == kind && !strcmp(r->name, name) &&
		    (kind == VZ_NAME_UNIQUE || vz_ref_eq(r->actor, actor))) {
			pthread_mutex_unlock(&c->lock);
			return VZ_EBUSY;
		}
	r = calloc(1, sizeof *r);
	if (!r) {
		pthread_mutex_unlock(&c->lock);
		return VZ_ENOMEM;
	}
	r->actor = actor;
	r->kind = (uint8_t)kind;
	snprintf(r->name, sizeof r->name, "%s", name);
	rc = push_cmd(c, VZ__CMD_REG, actor, name, kind);
	if (rc < 0) {
		free(r);
	} else {
		r->next = c->regs;
		c->regs = r;
		a->flags |= VZ__ACTOR_NAMED;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

VZ_API int vz_cluster_unregister(vz_cluster *c, vz_ref actor, const char *name, vz_name_kind kind)
{
	struct vz__shard *sh;
	struct vz_actor *a;
	struct vz__reg **pp, *r;
	int rc;

	if (!c || !name_ok(name) || (unsigned)kind > VZ_NAME_BROADCAST)
		return VZ_EINVAL;
	rc = actor_thread_check(c, actor, &sh, &a);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	for (pp = &c->regs; (r = *pp); pp = &r->next)
		if (r->kind == kind && !strcmp(r->name, name) && vz_ref_eq(r->actor, actor))
			break;
	if (!r) {
		pthread_mutex_unlock(&c->lock);
		return VZ_ENOENT;
	}
	rc = push_cmd(c, VZ__CMD_UNREG, actor, name, kind);
	if (rc == 0) {
		*pp = r->next;
		free(r);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

VZ_API int vz_cluster_sync(vz_cluster *c, uint32_t timeout_ms)
{
	struct vz__ccmd *cmd;
	uint64_t token, deadline;

	if (!c)
		return VZ_EINVAL;
	if (vz__current(c->rt))
		return VZ_EWRONGTHREAD;
	cmd = calloc(1, sizeof *cmd);
	if (!cmd)
		return VZ_ENOMEM;
	/* Relaxed: only a unique number. */
	token = atomic_fetch_add_explicit(&c->sync_req, 1, memory_order_relaxed) + 1;
	cmd->op = VZ__CMD_SYNC;
	cmd->token = token;
	deadline = vz__clock_ns() + (uint64_t)timeout_ms * 1000000u;
	vz__mpsc_push_sc(&c->cmds, &cmd->node);
	vz__cluster_wake(c);
	/* Acquire: pairs with the transport's release store of sync_done.
	 * The deadline is read off the clock: counting the requested sleeps
	 * instead made a 10 s timeout last minutes on a loaded machine,
	 * where each usleep(100) takes far longer than asked. */
	while (atomic_load_explicit(&c->sync_done, memory_order_acquire) < token) {
		if (vz__clock_ns() >= deadline)
			return VZ_ETIMEDOUT;
		usleep(100);
	}
	return 0;
}

void vz__cluster_actor_stopped(struct vz__shard *sh, vz_ref actor)
{
	/* Acquire: pairs with the release in vz_cluster_create(). */
	struct vz_cluster *c = atomic_load_explicit(&sh->rt->cluster, memory_order_acquire);
	struct vz__reg **pp, *r;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	for (pp = &c->regs; (r = *pp);) {
		if (vz_ref_eq(r->actor, actor)) {
			*pp = r->next;
			free(r);
		} else {
			pp = &r->next;
		}
	}
	pthread_mutex_unlock(&c->lock);
	/* Without memory for the command the subscription stays until the
	 * cluster ends; what it receives is dead-lettered as stale. */
	(void)push_cmd(c, VZ__CMD_STOPPED, actor, NULL, VZ_NAME_UNIQUE);
}

VZ_API int vz_cluster_resolve(vz_cluster *c, const char *name, vz_name_kind kind, vz_ref *out)
{
	char subject[VZ__SUBJECT_MAX];
	uint32_t idx;
	int rc;

	if (!c || !out || !name_ok(name) || (unsigned)kind > VZ_NAME_BROADCAST)
		return VZ_EINVAL;
	name_subject(c, name, kind, subject);
	rc = vz__rentry_get(c, (uint8_t)kind, subject, 0, &idx);
	if (rc < 0)
		return rc;
	*out = vz__rentry_ref(c, idx);
	return 0;
}

/* ---- queries ----------------------------------------------------------- */

VZ_API vz_cluster *vz_runtime_cluster(const vz_runtime *rt)
{
	/* Acquire: pairs with the release in vz_cluster_create(). */
	return rt ? atomic_load_explicit(&((vz_runtime *)rt)->cluster, memory_order_acquire) : NULL;
}

VZ_API int vz_ref_is_remote(const vz_runtime *rt, vz_ref r)
{
	vz_cluster *c = vz_runtime_cluster(rt);

	return c && vz_ref_shard(r) == VZ__REMOTE_SHARD && (uint32_t)r.id == c->tag;
}

VZ_API size_t vz_cluster_max_payload(const vz_cluster *c)
{
	return c ? c->max_payload : 0;
}

VZ_API const char *vz_cluster_node(const vz_cluster *c)
{
	return c ? c->node : "";
}

VZ_API int vz_cluster_stats_get(const vz_cluster *c, vz_cluster_stats *o)
{
	struct vz__cstats *s;

	if (!c || !o)
		return VZ_EINVAL;
	s = (struct vz__cstats *)&c->st;
#define LD(f) o->f = atomic_load_explicit(&s->f, memory_order_relaxed)
	LD(sent);
	LD(published);
	LD(received);
	LD(delivered);
	LD(lost_no_name);
	LD(lost_conn);
	LD(lost_gap);
	LD(lost_slow);
	LD(undeliverable);
	LD(malformed);
	LD(disconnects);
	LD(reconnects);
	LD(flushes);
#undef LD
	return 0;
}

/* ---- create / destroy -------------------------------------------------- */

static void cluster_free(struct vz_cluster *c)
{
	struct vz__mpsc_node *n;

	if (c->out) {
		for (unsigned i = 0; i < c->nshards; i++)
			vz__xring_fini(&c->out[i]);
		free(c->out);
	}
	vz__xring_fini(&c->foreign);
	if (c->chunks) {
		for (uint32_t i = 0; i < VZ__RMAX_CHUNKS; i++)
			free(atomic_load_explicit(&c->chunks[i], memory_order_relaxed));
		free(c->chunks);
	}
	free(c->hash);
	while (c->regs) {
		struct vz__reg *r = c->regs;

		c->regs = r->next;
		free(r);
	}
	while ((n = vz__mpsc_pop(&c->cmds)))
		free(n);
	vz__cluster_subs_free(c);
	vz__mon_free(c);
	free(c->batch);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->foreign_lock);
	free(c);
}

#ifdef VZ_HAVE_NATS
/* Check cfg, build the cluster, connect through `ops`, start the
 * transport thread, attach to rt. The caller checked the thread. */
static int cluster_open(vz_runtime *rt, const vz_cluster_config *cfg, const struct vz__tp_ops *ops,
			vz_cluster **out, vz_config_error *err)
{
	struct vz__tp_hooks hooks;
	struct vz_cluster *c;
	uint64_t ring;
	size_t srv;
	int rc;

	if (!cfg->url[0])
		return vz__config_error(err, "", 0, "cluster.url", "no NATS server URL");
	if (cfg->node[0] && !token_ok(cfg->node, VZ__WIRE_NODE))
		return vz__config_error(err, "", 0, "cluster.node",
					"'%.64s': letters, digits, '-' and '_' only, at most %u",
					cfg->node, VZ__WIRE_NODE);
	if (cfg->ns[0] && !token_ok(cfg->ns, VZ_CLUSTER_NAME_MAX - 1))
		return vz__config_error(err, "", 0, "cluster.namespace",
					"'%.64s': letters, digits, '-' and '_' only", cfg->ns);
	if (cfg->credentials[0] && access(cfg->credentials, R_OK) != 0)
		return vz__config_error(err, "", 0, "cluster.credentials", "cannot read '%.200s'",
					cfg->credentials);
	if (rt->nshards > VZ__REMOTE_SHARD)
		return vz__config_error(err, "", 0, "runtime.shards",
					"a clustered runtime has at most %u shards (shard %u marks "
					"remote references)",
					VZ__REMOTE_SHARD, VZ__REMOTE_SHARD);
	if (atomic_load_explicit(&rt->cluster, memory_order_acquire))
		return VZ_EBUSY;
	c = aligned_alloc(64, sizeof *c);
	if (!c)
		return VZ_ENOMEM;
	memset(c, 0, sizeof *c);
	c->rt = rt;
	c->ops = ops;
	c->cfg = *cfg;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->foreign_lock, NULL);
	vz__mpsc_init(&c->cmds);
	if (cfg->node[0]) {
		snprintf(c->node, sizeof c->node, "%s", cfg->node);
	} else {
		char host[64] = "node";

		gethostname(host, sizeof host - 1);
		for (char *p = host; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '-'))
				*p = '_';
		snprintf(c->node, sizeof c->node, "%.40s-%ld", host, (long)getpid());
	}
	c->node_len = (uint8_t)strlen(c->node);
	snprintf(c->ns, sizeof c->ns, "%s", cfg->ns[0] ? cfg->ns : "veloz");
	if (getrandom(&c->node_id, sizeof c->node_id, 0) != sizeof c->node_id)
		c->node_id = ((uint64_t)getpid() << 32) ^ vz__clock_ns();
	c->node_id |= 1; /* never 0: a free gap slot */
	c->tag = (uint32_t)(c->node_id >> 32) | 1;
	/* Short: it travels with every message. 32 random bits tell the
	 * nodes of one server apart. */
	snprintf(c->reply_prefix, sizeof c->reply_prefix, "_vzr.%08x", (unsigned)c->node_id);
	snprintf(c->inbox, sizeof c->inbox, "vz.%s.n.%s", c->ns, c->node);
	snprintf(c->hb_subject, sizeof c->hb_subject, "vz.%s.hb", c->ns);
	c->hb_ns = (uint64_t)(cfg->heartbeat_ms ? cfg->heartbeat_ms : 250) * 1000000u;
	c->timeout_ns =
	    cfg->node_timeout_ms ? (uint64_t)cfg->node_timeout_ms * 1000000u : 4 * c->hb_ns;
	c->nshards = rt->nshards;
	rc = VZ_ENOMEM;
	ring = cfg->out_ring_bytes ? cfg->out_ring_bytes : 1u << 20;
	if (ring < 65536)
		ring = 65536; /* room for two records of the largest message */
	c->out = calloc(c->nshards, sizeof *c->out);
	c->chunks = calloc(VZ__RMAX_CHUNKS, sizeof *c->chunks);
	if (!c->out || !c->chunks || hash_grow(c, 0) < 0 || vz__xring_init(&c->foreign, ring) < 0)
		goto fail;
	for (unsigned i = 0; i < c->nshards; i++)
		if (vz__xring_init(&c->out[i], ring) < 0)
			goto fail;
	hooks = (struct vz__tp_hooks){
	    .ctx = c,
	    .no_responders = vz__cluster_noresp,
	    .conn = vz__cluster_conn,
	    .reply_prefix = c->reply_prefix,
	};
	rc = c->ops->open(cfg, c->node, &hooks, &c->tp, err);
	if (rc < 0)
		goto fail;
	srv = c->ops->max_payload(c->tp);
	c->batch_cap = srv;
	c->batch = malloc(srv ? srv : 1);
	if (!c->batch) {
		rc = VZ_ENOMEM;
		goto fail_tp;
	}
	srv = srv > VZ__WIRE_HDR + c->node_len ? srv - VZ__WIRE_HDR - c->node_len : 0;
	c->max_payload = srv < VZ_MSG_MAX_PAYLOAD ? srv : VZ_MSG_MAX_PAYLOAD;
	rc = vz__cluster_inbox_subscribe(c);
	if (rc < 0) {
		vz__config_error(err, "", 0, "cluster.url", "cannot subscribe to %s", c->inbox);
		goto fail_tp;
	}
	if (pthread_create(&c->thread, NULL, vz__cluster_thread, c) != 0) {
		rc = VZ_EIO;
		goto fail_tp;
	}
	c->thread_started = true;
	{
		struct vz_cluster *none = NULL;

		/* Release: pairs with the senders' acquire (vz__remote_send());
		 * everything above is visible to a sender that sees c. */
		if (!atomic_compare_exchange_strong_explicit(
			&rt->cluster, &none, c, memory_order_release, memory_order_relaxed)) {
			atomic_store_explicit(&c->stop, true, memory_order_release);
			c->ops->wake(c->tp);
			pthread_join(c->thread, NULL);
			rc = VZ_EBUSY;
			goto fail_tp;
		}
	}
	*out = c;
	return 0;
fail_tp:
	vz__cluster_subs_free(c);
	c->ops->close(c->tp);
fail:
	cluster_free(c);
	return rc;
}
#endif

VZ_API int vz_cluster_create(vz_runtime *rt, const vz_cluster_config *cfg, vz_cluster **out,
			     vz_config_error *err)
{
	if (err)
		memset(err, 0, sizeof *err);
	if (!rt || !out)
		return VZ_EINVAL;
	*out = NULL;
	if (vz__current(rt))
		return VZ_EWRONGTHREAD;
	if (!cfg)
		cfg = &rt->cfg.cluster;
#ifdef VZ_HAVE_NATS
	return cluster_open(rt, cfg, &vz__tp_nats, out, err);
#else
	vz__config_error(err, "", 0, "cluster.url",
			 "this libveloz was built without libnats (the NATS C client)");
	return VZ_ENOSYS;
#endif
}

static void cluster_end(struct vz_cluster *c)
{
	/* Relaxed: the flag only turns senders away; the runtime is stopped
	 * or not started, so no shard is sending. */
	atomic_store_explicit(&c->closing, true, memory_order_relaxed);
	/* Release: pairs with the transport's acquire; it ends after a last
	 * drain of every ring and command. */
	atomic_store_explicit(&c->stop, true, memory_order_release);
	c->ops->wake(c->tp);
	pthread_join(c->thread, NULL);
	atomic_store_explicit(&c->rt->cluster, NULL, memory_order_release);
	vz__cluster_subs_free(c);
	c->ops->close(c->tp);
	cluster_free(c);
}

VZ_API int vz_cluster_destroy(vz_cluster *c)
{
	uint32_t state;

	if (!c)
		return 0;
	if (vz__current(c->rt))
		return VZ_EWRONGTHREAD;
	state = atomic_load_explicit(&c->rt->state, memory_order_acquire);
	if (state == VZ__RT_RUNNING || state == VZ__RT_STOPPING)
		return VZ_ESTATE;
	cluster_end(c);
	return 0;
}

void vz__cluster_runtime_gone(vz_runtime *rt)
{
	struct vz_cluster *c = atomic_load_explicit(&rt->cluster, memory_order_acquire);

	if (c)
		cluster_end(c);
}
