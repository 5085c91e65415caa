// SPDX-License-Identifier: MIT
/*
 * The transport thread of a cluster node and the inbound path.
 *
 * One turn: apply registration commands (subscribe, unsubscribe) -> take
 * every record the shards published (bounded per ring) and hand each to
 * the client with its sequence number and a reply subject that brings a
 * "no responders" answer back to us -> one socket write for all of them
 * (flush) -> read what the server sent and deliver it -> when a turn found
 * nothing, spin for spin_us, then sleep in poll() (sleep protocol in
 * cluster_int.h).
 *
 * Inbound: a message is decoded and checked (wire.h), its sequence number
 * checked against the last one of its stream for this subscription (a gap
 * is a loss, counted and dead-lettered), its sender turned into a remote
 * reference (a proxy for the origin actor, so vz_reply() works), and it is
 * posted to the target actor(s) through their shard's foreign inbox
 * (vz__post_from()): the same path as any vz_post() from a non-shard
 * thread, FIFO for this one producer.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "cluster/wire.h"
#include "core/core.h"
#include "util/fence.h"

#define RING_BATCH 1024u /* records taken from one ring per turn */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* ---- connection events and no-responders (client threads) ------------- */

void vz__cluster_conn(void *ctx, int up, const char *why)
{
	struct vz_cluster *c = ctx;

	/* Closing the connection at destroy reports a disconnection too:
	 * not news. Relaxed: a hint set before the close. */
	if (atomic_load_explicit(&c->closing, memory_order_relaxed))
		return;
	/* Relaxed RMW: counters written by client threads. */
	atomic_fetch_add_explicit(up ? &c->st.reconnects : &c->st.disconnects, 1,
				  memory_order_relaxed);
	if (up)
		vz__log(&c->rt->cfg, VZ_LOG_NOTICE, "cluster %s: reconnected", c->node);
	else
		vz__log(&c->rt->cfg, VZ_LOG_WARNING, "cluster %s: connection lost%s%s", c->node,
			*why ? ": " : "", why);
}

static uint64_t parse_hex(const char **p)
{
	uint64_t v = 0;

	for (; **p; (*p)++) {
		char ch = **p;

		if (ch >= '0' && ch <= '9')
			v = v * 16 + (uint64_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v = v * 16 + (uint64_t)(ch - 'a' + 10);
		else
			break;
	}
	return v;
}

/* reply: "<reply_prefix>.<entry>.<type>.<id>.<count>" in hex (see
 * put_reply()). */
void vz__cluster_noresp(void *ctx, const char *reply)
{
	struct vz_cluster *c = ctx;
	size_t n = strlen(c->reply_prefix);
	const char *p;
	uint64_t idx, type, id, count;

	if (strncmp(reply, c->reply_prefix, n) != 0 || reply[n] != '.')
		return;
	p = reply + n + 1;
	idx = parse_hex(&p);
	if (*p++ != '.')
		return;
	type = parse_hex(&p);
	if (*p++ != '.')
		return;
	id = parse_hex(&p);
	if (*p++ != '.')
		return;
	count = parse_hex(&p);
	if (type && type < VZ_MSG_USER) {
		/* The cluster's own record: only a MON wants an answer, DOWN
		 * "no such actor", from the transport thread that owns the
		 * monitor table. */
		struct vz__ccmd *cmd;

		if (type != VZ__WIRE_MON)
			return;
		cmd = calloc(1, sizeof *cmd);
		if (!cmd)
			return; /* the monitor then ends by its timeout */
		cmd->op = VZ__CMD_NOPROC;
		cmd->token = id;
		/* seq_cst exchange: the "publish, full fence" of the wake-up. */
		vz__mpsc_push_sc(&c->cmds, &cmd->node);
		vz__cluster_wake(c);
		return;
	}
	/* A batch of `count` messages, none delivered. Relaxed RMW: a
	 * counter that client threads also write; it publishes nothing. */
	atomic_fetch_add_explicit(&c->st.lost_no_name, count, memory_order_relaxed);
	for (uint64_t i = 0; i < count; i++)
		vz__cluster_dead_letter(c, vz__rentry_ref(c, (uint32_t)idx).id, (uint32_t)type,
					NULL, 0, VZ_ENOENT);
}

/* ---- subscriptions (transport thread) ---------------------------------- */

static struct vz__csub *csub_new(struct vz_cluster *c, const char *subject, uint8_t kind)
{
	struct vz__csub *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	snprintf(s->subject, sizeof s->subject, "%s", subject);
	s->kind = kind;
	if (c->ops->subscribe(c->tp, subject, kind == VZ_NAME_QUEUE ? "vzq" : NULL, s, &s->handle) <
	    0) {
		free(s);
		return NULL;
	}
	s->next = c->subs;
	c->subs = s;
	return s;
}

static void csub_free(struct vz_cluster *c, struct vz__csub *s, bool unsubscribe)
{
	vz__mon_sub_gone(c, s);
	if (unsubscribe && s->handle)
		c->ops->unsubscribe(c->tp, s->handle);
	free(s->actors);
	free(s->gaps);
	free(s);
}

int vz__cluster_inbox_subscribe(struct vz_cluster *c)
{
	c->inbox_sub = csub_new(c, c->inbox, VZ__KIND_DIRECT);
	if (!c->inbox_sub)
		return VZ_EIO;
	c->hb_sub = csub_new(c, c->hb_subject, VZ__KIND_HB);
	return c->hb_sub ? 0 : VZ_EIO;
}

/* Called with the transport thread joined (or never started). */
void vz__cluster_subs_free(struct vz_cluster *c)
{
	while (c->subs) {
		struct vz__csub *s = c->subs;

		c->subs = s->next;
		csub_free(c, s, true);
	}
	c->inbox_sub = NULL;
	c->hb_sub = NULL;
}

static void csub_remove_actor(struct vz_cluster *c, struct vz__csub *s, vz_ref actor)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (vz_ref_eq(s->actors[i], actor)) {
			s->actors[i] = s->actors[--s->n];
			break;
		}
	if (s->n == 0 && s->kind <= VZ_NAME_BROADCAST) {
		struct vz__csub **pp;

		for (pp = &c->subs; *pp != s; pp = &(*pp)->next)
			;
		*pp = s->next;
		csub_free(c, s, true);
	}
}

static void apply_cmd(struct vz_cluster *c, struct vz__ccmd *cmd)
{
	char subject[VZ__SUBJECT_MAX];
	struct vz__csub *s, *next;

	if (cmd->op == VZ__CMD_SYNC) {
		/* A marker to ourselves, behind every SUB written so far. */
		unsigned char buf[VZ__WIRE_HDR + VZ__WIRE_NODE + 8];
		struct vz__wire w = {.type = VZ__WIRE_SYNC,
				     .len = 8,
				     .node_id = c->node_id,
				     .to = 1,
				     .node = c->node,
				     .node_len = c->node_len};

		vz__wire_encode(buf, &w);
		memcpy(buf + VZ__WIRE_HDR + c->node_len, &cmd->token, 8);
		(void)c->ops->publish(c->tp, c->inbox, NULL, buf, vz__wire_size(c->node_len, 8));
		return;
	}
	if (cmd->op == VZ__CMD_NOPROC) {
		vz__mon_noproc(c, cmd->token);
		return;
	}
	if (cmd->op == VZ__CMD_STOPPED) {
		vz__mon_stopped(c, cmd->actor);
		for (s = c->subs; s; s = next) {
			next = s->next;
			if (s->kind <= VZ_NAME_BROADCAST)
				csub_remove_actor(c, s, cmd->actor);
		}
		return;
	}
	snprintf(subject, sizeof subject, "vz.%s.%c.%s", c->ns, "uqb"[cmd->kind], cmd -> name);
	for (s = c->subs; s; s = s->next)
		if (s->kind <= VZ_NAME_BROADCAST && !strcmp(s->subject, subject))
			break;
	if (cmd->op == VZ__CMD_UNREG) {
		if (s) {
			vz__mon_unregistered(c, s, cmd->actor);
			csub_remove_actor(c, s, cmd->actor);
		}
		return;
	}
	if (!s && !(s = csub_new(c, subject, cmd->kind))) {
		vz__log(&c->rt->cfg, VZ_LOG_ERROR, "cluster: cannot subscribe to %s", subject);
		return;
	}
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 4;
		vz_ref *a = realloc(s->actors, cap * sizeof *a);

		if (!a)
			return;
		s->actors = a;
		s->cap = cap;
	}
	s->actors[s->n++] = cmd->actor;
}

static unsigned apply_cmds(struct vz_cluster *c)
{
	struct vz__mpsc_node *n;
	unsigned done = 0;

	while ((n = vz__mpsc_pop(&c->cmds))) {
		apply_cmd(c, (struct vz__ccmd *)n);
		free(n);
		done++;
	}
	return done;
}

/* ---- outbound ---------------------------------------------------------- */

static char *put_hex(char *p, uint64_t v)
{
	char tmp[16];
	int n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* "<prefix>.<entry>.<type>.<id>.<count>": id is a MON's (0 for data),
 * count the messages of a batch, type theirs (0 when they differ). */
static void put_reply(const struct vz_cluster *c, char *buf, uint32_t idx, uint32_t type,
		      uint64_t id, uint32_t count)
{
	size_t n = strlen(c->reply_prefix);
	char *p = buf + n;

	memcpy(buf, c->reply_prefix, n);
	*p++ = '.';
	p = put_hex(p, idx);
	*p++ = '.';
	p = put_hex(p, type);
	*p++ = '.';
	p = put_hex(p, id);
	*p++ = '.';
	p = put_hex(p, count);
	*p = '\0';
}

void vz__cluster_send_ctl(struct vz_cluster *c, uint32_t entry, uint32_t type, uint64_t from,
			  const void *payload, size_t len)
{
	unsigned char buf[VZ__WIRE_HDR + VZ__WIRE_NODE + VZ__DOWN_WIRE_LEN];
	const struct vz__rentry *e = vz__rentry_at(c, entry);
	struct vz__wire w = {
	    .type = type,
	    .len = (uint32_t)len,
	    .stream = e->index,
	    .node_id = c->node_id,
	    .from = from,
	    .to = e->kind == VZ__KIND_DIRECT ? e->target : 0,
	    .node = c->node,
	    .node_len = c->node_len,
	};

	if (len > VZ__DOWN_WIRE_LEN)
		return;
	vz__wire_encode(buf, &w);
	if (len)
		memcpy(buf + VZ__WIRE_HDR + c->node_len, payload, len);
	(void)c->ops->publish(c->tp, e->subject, NULL, buf, vz__wire_size(c->node_len, len));
}

int vz__cluster_post_sys(struct vz_cluster *c, vz_ref from, vz_ref to, uint32_t type,
			 const void *payload, size_t len)
{
	if (vz_ref_shard(to) >= c->nshards)
		return VZ_ESTALE;
	return vz__post_full(c->rt, from, to, type, VZ__MSG_SYS | VZ__MSG_UNCOUNTED, 0, payload,
			     len);
}

/* One of the cluster's own records from a shard's ring (a monitor's MON,
 * DEMON or DOWN): book-kept, then published unsequenced. */
static void drain_ctl(struct vz_cluster *c, const struct vz__rentry *e, struct vz__xrec *rec,
		      uint32_t type)
{
	const unsigned char *payload = rec->wire + VZ__WIRE_HDR + c->node_len;
	uint32_t len = rec->wire_len - VZ__WIRE_HDR - c->node_len;
	uint64_t from = vz__wire_get64(rec->wire + 32);
	char reply[96];

	if (!vz__mon_outgoing(c, e, type, from, payload, len))
		return;
	vz__wire_stamp(rec->wire, e->index, 0);
	if (type == VZ__WIRE_MON)
		put_reply(c, reply, e->index, type, vz__wire_get64(payload), 1);
	(void)c->ops->publish(c->tp, e->subject, type == VZ__WIRE_MON ? reply : NULL, rec->wire,
			      rec->wire_len);
}

/* Publish the open batch: records of one remote reference taken in this
 * turn, back to back in one NATS message (one reply subject, one server
 * routing, one read at the other end for all of them). */
static void batch_flush(struct vz_cluster *c)
{
	struct vz__rentry *e;
	char reply[96];
	int rc;

	if (!c->batch_n)
		return;
	e = vz__rentry_at(c, c->batch_entry);
	put_reply(c, reply, e->index, c->batch_type, 0, c->batch_n);
	rc = c->ops->publish(c->tp, e->subject, reply, c->batch, c->batch_len);
	vz__cstat_add(&c->st.sent, c->batch_n);
	if (rc == 0) {
		vz__cstat_add(&c->st.published, c->batch_n);
	} else {
		/* Refused whole: its numbers are not used, so the receiver
		 * sees no gap for what is counted here. */
		if (e->kind != VZ_NAME_QUEUE)
			e->seq = c->batch_seq0;
		vz__cstat_add(&c->st.lost_conn, c->batch_n);
		for (size_t off = 0; off < c->batch_len;) {
			struct vz__wire w;
			size_t used;

			if (vz__wire_decode_next(c->batch + off, c->batch_len - off, &w, &used) < 0)
				break; /* cannot happen: we wrote them */
			vz__cluster_dead_letter(c, vz__rentry_ref(c, e->index).id, w.type,
						w.payload, w.len,
						rc == VZ_ETOOBIG ? VZ_ETOOBIG : VZ_EIO);
			off += used;
		}
	}
	c->batch_n = 0;
	c->batch_len = 0;
}

static unsigned drain_ring(struct vz_cluster *c, struct vz__xring *r)
{
	struct vz__xrec *rec;
	unsigned n = 0;

	while (n < RING_BATCH && (rec = vz__xring_peek(r))) {
		/* The producer read nentries (acquire) before writing the
		 * record; our acquire of the ring's tail orders that. */
		struct vz__rentry *e = vz__rentry_at(c, rec->entry);
		uint32_t type = vz__wire_get32(rec->wire + 8);

		if (type < VZ_MSG_USER) {
			/* In order with the batch before it. */
			batch_flush(c);
			drain_ctl(c, e, rec, type);
			vz__xring_release(r, rec);
			n++;
			continue;
		}
		/* A batch holds consecutive records of one reference, so the
		 * order of everything taken from the rings is kept. */
		if (c->batch_n &&
		    (c->batch_entry != e->index || c->batch_len + rec->wire_len > c->batch_cap))
			batch_flush(c);
		if (!c->batch_n) {
			c->batch_entry = e->index;
			c->batch_type = type;
			c->batch_seq0 = e->seq;
		} else if (c->batch_type != type) {
			c->batch_type = 0; /* mixed: "no responders" reports type 0 */
		}
		vz__wire_stamp(rec->wire, e->index, e->kind == VZ_NAME_QUEUE ? 0 : ++e->seq);
		memcpy(c->batch + c->batch_len, rec->wire, rec->wire_len);
		c->batch_len += rec->wire_len;
		c->batch_n++;
		vz__xring_release(r, rec);
		n++;
		/* A queue group spreads NATS messages over its members: a
		 * batch would go whole to one of them. One message each. */
		if (e->kind == VZ_NAME_QUEUE)
			batch_flush(c);
	}
	return n;
}

static unsigned drain_out(struct vz_cluster *c)
{
	unsigned n = 0;

	for (unsigned i = 0; i < c->nshards; i++)
		n += drain_ring(c, &c->out[i]);
	n += drain_ring(c, &c->foreign);
	batch_flush(c);
	return n;
}

/* ---- inbound ----------------------------------------------------------- */

static struct vz__gap *gap_slot(struct vz__csub *s, uint64_t node_id, uint32_t stream)
{
	uint32_t h;

	if (s->ngaps + 1 > s->gcap / 2) {
		uint32_t cap = s->gcap ? s->gcap * 2 : 16;
		struct vz__gap *g = calloc(cap, sizeof *g);

		if (!g)
			return NULL;
		for (uint32_t i = 0; i < s->gcap; i++) {
			struct vz__gap *o = &s->gaps[i];

			if (!o->node_id)
				continue;
			h = (uint32_t)((o->node_id ^ o->stream * 0x9e3779b9u) & (cap - 1));
			while (g[h].node_id)
				h = (h + 1) & (cap - 1);
			g[h] = *o;
		}
		free(s->gaps);
		s->gaps = g;
		s->gcap = cap;
	}
	h = (uint32_t)((node_id ^ stream * 0x9e3779b9u) & (s->gcap - 1));
	while (s->gaps[h].node_id && (s->gaps[h].node_id != node_id || s->gaps[h].stream != stream))
		h = (h + 1) & (s->gcap - 1);
	if (!s->gaps[h].node_id) {
		s->gaps[h].node_id = node_id;
		s->gaps[h].stream = stream;
		s->gaps[h].last = 0;
		s->ngaps++;
	}
	return &s->gaps[h];
}

/* The sequence number of a message against its stream's last one: count
 * and dead-letter the numbers skipped (lost on the way: a gap). The first
 * message of a stream seen by this subscription sets the base. */
static void check_seq(struct vz_cluster *c, struct vz__csub *s, const struct vz__wire *w,
		      uint64_t to)
{
	struct vz__gap *g = gap_slot(s, w->node_id, w->stream);

	if (!g)
		return;
	if (g->last && w->seq > g->last + 1) {
		uint32_t lost = w->seq - g->last - 1;

		vz__cstat_add(&c->st.lost_gap, lost);
		for (uint32_t i = 0; i < lost; i++)
			vz__cluster_dead_letter(c, to, 0, NULL, 0, VZ_EIO);
	}
	if (w->seq > g->last)
		g->last = w->seq;
}

/* The remote reference for the sender of w: a DIRECT entry for (its node,
 * its actor), cached by a hash of both. */
vz_ref vz__cluster_sender(struct vz_cluster *c, const struct vz__wire *w)
{
	char subject[VZ__SUBJECT_MAX];
	uint64_t key = w->from * 0x9e3779b97f4a7c15ull;
	unsigned slot;
	uint32_t idx;

	for (uint8_t i = 0; i < w->node_len; i++)
		key = (key ^ (unsigned char)w->node[i]) * 1099511628211ull;
	key |= 1;
	slot = (unsigned)(key >> 58);
	if (c->cache_key[slot] == key) {
		struct vz__rentry *e = vz__rentry_at(c, c->cache_idx[slot]);

		/* Confirm: a 63-bit hash may still collide. */
		if (e->target == w->from)
			return vz__rentry_ref(c, c->cache_idx[slot]);
	}
	snprintf(subject, sizeof subject, "vz.%s.n.%.*s", c->ns, (int)w->node_len, w->node);
	if (vz__rentry_get(c, VZ__KIND_DIRECT, subject, w->from, &idx) < 0)
		return VZ_REF_NULL; /* no memory: the receiver sees no sender */
	c->cache_key[slot] = key;
	c->cache_idx[slot] = idx;
	return vz__rentry_ref(c, idx);
}

static void deliver_one(struct vz_cluster *c, vz_ref from, vz_ref to, const struct vz__wire *w)
{
	int rc = vz__post_from(c->rt, from, to, w->type, w->payload, w->len);

	if (rc == 0) {
		vz__cstat_add(&c->st.delivered, 1);
		return;
	}
	vz__cstat_add(&c->st.undeliverable, 1);
	vz__cluster_dead_letter(c, to.id, w->type, w->payload, w->len, rc);
}

static void on_record(struct vz_cluster *c, struct vz__csub *s, const struct vz__wire *wp)
{
	const struct vz__wire w = *wp;
	vz_ref from = VZ_REF_NULL, to;

	if (w.type < VZ_MSG_USER) {
		if (w.type == VZ__WIRE_SYNC && s == c->inbox_sub && w.len == 8 &&
		    w.node_id == c->node_id) {
			uint64_t token;

			memcpy(&token, w.payload, 8);
			/* Release: pairs with the acquire in vz_cluster_sync(). */
			if (token > atomic_load_explicit(&c->sync_done, memory_order_relaxed))
				atomic_store_explicit(&c->sync_done, token, memory_order_release);
			return;
		}
		if (w.type >= VZ__WIRE_MON && w.type <= VZ__WIRE_BYE &&
		    w.len <= VZ__DOWN_WIRE_LEN) {
			vz__mon_incoming(c, s, &w);
			return;
		}
	}
	if (s->kind == VZ__KIND_HB || w.type < VZ_MSG_USER || w.len > VZ_MSG_MAX_PAYLOAD ||
	    (s->kind == VZ__KIND_DIRECT &&
	     (w.to == 0 || vz_ref_shard((vz_ref){w.to}) >= c->nshards))) {
		vz__cstat_add(&c->st.malformed, 1);
		return;
	}
	vz__cstat_add(&c->st.received, 1);
	if (w.seq && s->kind != VZ_NAME_QUEUE)
		check_seq(c, s, &w, s->kind == VZ__KIND_DIRECT ? w.to : 0);
	if (w.from)
		from = vz__cluster_sender(c, &w);
	switch (s->kind) {
	case VZ__KIND_DIRECT:
		deliver_one(c, from, (vz_ref){w.to}, &w);
		break;
	case VZ_NAME_UNIQUE:
	case VZ_NAME_QUEUE:
		if (s->n == 0) {
			/* Unsubscribing: nobody here any more. */
			vz__cstat_add(&c->st.undeliverable, 1);
			vz__cluster_dead_letter(c, 0, w.type, w.payload, w.len, VZ_ENOENT);
			break;
		}
		to = s->actors[s->rr++ % s->n];
		deliver_one(c, from, to, &w);
		break;
	case VZ_NAME_BROADCAST:
		for (uint32_t i = 0; i < s->n; i++)
			deliver_one(c, from, s->actors[i], &w);
		break;
	}
}

/* One NATS message: one record or a batch of them (wire.h). A malformed
 * record ends the message (what follows it cannot be found): counted once. */
static void on_message(void *ctx, void *user, const void *data, size_t len)
{
	struct vz_cluster *c = ctx;
	const unsigned char *p = data;
	size_t off = 0;

	do {
		struct vz__wire w;
		size_t used;

		if (vz__wire_decode_next(p + off, len - off, &w, &used) < 0) {
			vz__cstat_add(&c->st.malformed, 1);
			return;
		}
		on_record(c, user, &w);
		off += used;
	} while (off < len);
}

static void count_slow(struct vz_cluster *c)
{
	for (struct vz__csub *s = c->subs; s; s = s->next) {
		uint64_t d = c->ops->dropped(c->tp, s->handle);

		if (d) {
			vz__cstat_add(&c->st.lost_slow, d);
			for (uint64_t i = 0; i < d; i++)
				vz__cluster_dead_letter(c, 0, 0, NULL, 0, VZ_EFULL);
		}
	}
}

/* ---- the thread -------------------------------------------------------- */

static bool has_work(struct vz_cluster *c)
{
	for (unsigned i = 0; i < c->nshards; i++)
		if (vz__xring_nonempty(&c->out[i]))
			return true;
	/* Acquire: pairs with destroy's release store of stop. */
	return vz__xring_nonempty(&c->foreign) || !vz__mpsc_empty(&c->cmds) ||
	       atomic_load_explicit(&c->stop, memory_order_acquire);
}

void *vz__cluster_thread(void *arg)
{
	struct vz_cluster *c = arg;
	uint64_t spin_ns = (uint64_t)c->cfg.spin_us * 1000u;
	uint64_t idle_since = 0, turns = 0;

	uint64_t tick;

	vz__set_current(NULL);
	for (;;) {
		unsigned work = apply_cmds(c);
		uint64_t now;
		bool stopping;

		work += drain_out(c);
		if (c->ops->flush(c->tp))
			vz__cstat_add(&c->st.flushes, 1);
		work += (unsigned)c->ops->poll(c->tp, 0, on_message, c);
		if ((++turns & 1023) == 0)
			count_slow(c);
		now = vz__clock_ns();
		tick = vz__mon_tick(c, now); /* acts only when one is due */
		/* Acquire: pairs with destroy's release store. */
		stopping = atomic_load_explicit(&c->stop, memory_order_acquire);
		if (work) {
			idle_since = 0;
			continue;
		}
		if (stopping)
			break;
		if (!idle_since)
			idle_since = now;
		if (now - idle_since < spin_ns) {
			/* Yield rather than pause: on a machine with fewer CPUs
			 * than busy threads the ones we wait for (a shard, the
			 * server, the peer) need this CPU to make progress. */
			sched_yield();
			continue;
		}
		/* Announce, full fence, re-check, then sleep: pairs with the
		 * producers' fence in wake_transport() (cluster.c). */
		atomic_store_explicit(&c->sleeping, 1, memory_order_seq_cst);
		vz__full_fence_on(&c->sleeping);
		if (!has_work(c)) {
			/* Until the next heartbeat or liveness check at most. */
			uint64_t ms = (tick > now ? tick - now : 0) / 1000000u + 1;

			(void)c->ops->poll(c->tp, ms < 1000 ? (int)ms : 1000, on_message, c);
		}
		/* Relaxed: only this thread sets it to 1 (see shard.c). */
		atomic_store_explicit(&c->sleeping, 0, memory_order_relaxed);
		idle_since = 0;
	}
	count_slow(c);
	/* Goodbye: the monitors other nodes hold on ours end now rather than
	 * after their timeout (tp close writes it). */
	vz__mon_bye(c);
	return NULL;
}
