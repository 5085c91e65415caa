// SPDX-License-Identifier: MIT
/*
 * Per-producer lanes: how a thread that is not a shard posts into a shard
 * without sharing a line with other posters. Each producer (a thread's
 * implicit one, or a vz_producer) gets its own SPSC lane (queue/lane.h)
 * into each shard it posts to, made at its first post there and
 * registered in the shard's lane set; the set's doorbell bitmap tells the
 * shard which parked lanes have something, so it polls only lanes that
 * were busy lately, never all of them.
 *
 * Cost of one post, steady state (lane busy, not parked, shard awake):
 *   - one CAS on the lane's tail (the gate and the wake-up protocol's
 *     full fence in one locked instruction) on the producer's own line,
 *     which nobody else reads on the hot path: no transfer, no contention;
 *   - the record's slot line written in place, its stamp last (one
 *     ownership transfer: the consumer read the line a lap ago), and read
 *     once by the consumer, which polls the stamp (one transfer);
 *   - plain loads of the lane's `parked` and the shard's `sleeping`
 *     (shared, unchanged lines: hits).
 * So two line transfers (the slot's, there and back) and no contended
 * read-modify-write per message, against about four transfers and three
 * contended RMWs (gate ticket, inbox exchange, foreign-pool pop) on the
 * inbox path. The consumer copies
 * the record into a block of its own pool (hot, owner-only), so nothing
 * goes back to the producer but, once per segment (128 slots), the
 * segment itself. Parked lane: plus one fetch_or on the shard's doorbell.
 * Payload over VZ_PRODUCER_INLINE: plus the foreign-pool pop and return
 * of the inbox path (the block rides the lane by pointer).
 *
 * Lifetime. A lane has two owners: its producer (a thread, until it exits
 * or forgets a destroyed runtime; a vz_producer, until destroyed) and the
 * runtime. Both hand-offs are rare and serialised by one process-wide
 * mutex (lanes_lock), which guards prod_alive and rt_alive:
 *   - producer gone first: it marks the lane orphaned and rings its
 *     doorbell; the shard drains it and, once it is empty, unregisters
 *     and frees it (the lane's slot in the set is free for the next
 *     producer);
 *   - runtime gone first (vz_runtime_destroy()): the shard's fini frees
 *     the lane's segments and leaves only its header to the producer,
 *     which frees it when it next looks (a thread's stale entry, its
 *     exit, vz_producer_destroy()).
 * A thread's lanes are found through a thread-local list of implicit
 * producers, one per runtime it posted to; a pthread key's destructor
 * gives them back when the thread exits. A runtime is recognised by a
 * process-unique id, not by its address, which a later runtime may reuse.
 *
 * Stop (runtime.c): stop closes every lane of a shard (the lane's tail
 * gets VZ__LANE_CLOSED, after which every commit fails and changes
 * nothing) and remembers how far each had published; it is quiet only
 * once the shard has taken every lane up to that point. A commit either
 * came before the close (counted, waited for) or fails (refused with
 * VZ_ESTOPPED): there is no window between admission and publication.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/lanes.h"
#include "core/send_fast.h"
#include "queue/lane.h"
#include "util/fault.h"

#define KIND_INLINE 1u /* payload in the record's slots */
#define KIND_BLOCK  2u /* a foreign-pool vz_msg, by pointer */

/* A message record: the ring's first slot with the message header. Inline
 * payload starts at `data` and goes on in the record's later slots, from
 * byte VZ__LANE_CONT_OFF of each (lane.h: their first word is the ring's). */
struct lane_rec {
	_Atomic uint64_t stamp; /* the ring's */
	uint16_t nslots;
	uint8_t kind;
	uint8_t flags; /* vz_msg flags (VZ__MSG_SYS, INFLIGHT, ...) */
	uint32_t type;
	uint64_t to, from;
	uint32_t len;
	uint32_t corr;
	unsigned char data[24];
};
_Static_assert(sizeof(struct lane_rec) == VZ__LANE_SLOT, "a record header is one slot");
_Static_assert(offsetof(struct lane_rec, stamp) == offsetof(struct vz__lane_slot, stamp) &&
		   offsetof(struct lane_rec, nslots) == offsetof(struct vz__lane_slot, nslots) &&
		   offsetof(struct lane_rec, kind) == offsetof(struct vz__lane_slot, kind),
	       "the ring's fields stay where the ring reads them");

#define REC_FIRST      (sizeof(((struct lane_rec *)0)->data)) /* payload in slot 1 */
#define REC_CONT       (VZ__LANE_SLOT - VZ__LANE_CONT_OFF)    /* in each later slot */
#define REC_INLINE_MAX (REC_FIRST + 3u * REC_CONT)
_Static_assert(REC_INLINE_MAX == VZ_PRODUCER_INLINE, "producer.h states the inline size");
_Static_assert(4u <= VZ__LANE_MAX_REC, "an inline record fits a reservation");

#define DRAIN_PER_LANE 256u /* records per lane per turn */
/* Empty polls before a lane is parked. Parking only saves the shard from
 * polling a lane that went quiet (a few ns per turn each); a lane parked
 * too eagerly costs its producer a contended fetch_or on the doorbell per
 * post whenever the shard outpaces it (64 made the doorbell 18% of the
 * producer's time in bench `post`). A sleeping shard needs no parked
 * lanes: producers of unparked lanes wake it through `sleeping`. */
#define PARK_AFTER 4096u

/* One lane of one producer into one shard. */
struct vz__plane {
	struct vz__lane q;
	/* ---- owner-only (shard thread) or fixed ---- */
	alignas(64) struct vz__lane_set *set; /* fixed at registration */
	struct vz__shard *sh;
	uint32_t index; /* in set->table and the doorbell */
	uint32_t idle;	/* consumer: empty polls in a row */
	/* Stopper only (vz__lanes_close/arrived, under set->lock). */
	uint64_t stop_tail;
	/* Guarded by lanes_lock (see the file comment). */
	bool prod_alive, rt_alive;
	/* Producer gone: stored (release) by the producer's release under
	 * lanes_lock after its last commit; read (acquire) by the consumer,
	 * which then sees every record and frees the lane once empty. */
	_Atomic uint32_t orphan;
};

struct vz__lane_set {
	/* First member: what vz__lanes_idle() (lanes.h) reads. Its words
	 * and pointers are fixed at init; the arrays are the bitmaps. */
	struct vz__lanes_look look;
	/* Registration, reclaim and the stopper's pass over the table. */
	pthread_mutex_t lock;
	bool open;     /* under lock: start opens, stop closes for good */
	uint32_t cap;  /* table entries (cfg foreign_lanes) */
	uint32_t hint; /* under lock: where to look for a free entry */
	uint64_t uid;  /* the runtime's process-unique id; fixed */
	/* table[i]: the lane with doorbell bit i, or NULL. Stored under lock
	 * (release) by a registering producer and by the owner's reclaim;
	 * read by the owner (acquire: the lane's init is visible) and by the
	 * stopper under lock. */
	_Atomic(struct vz__plane *) *table;
	_Atomic uint32_t nlanes; /* registered; written under lock, read for tests and stats */
	/* Statistics (stats.h) written under lock by registering producers:
	 * the most lanes registered at once, and attaches refused for want
	 * of a free entry. A relaxed load and store: the lock orders the
	 * writers, so no read-modify-write is needed; readers load relaxed,
	 * a snapshot with nothing read through it. */
	_Atomic uint64_t st_hwm, st_exhausted;
	/* Statistics written by the owner alone (relaxed load and store,
	 * never a read-modify-write; vz__counter_add()) and read by anyone
	 * (relaxed): lanes set in `active`, records taken from lanes, posts
	 * taken from the inbox for want of a lane (vz__lanes_note_fallback()),
	 * doorbell bits taken. On a line of their own: the owner writes them
	 * in busy turns, and producers read `uid` on every post. */
	alignas(64) _Atomic uint64_t st_active, st_posts, st_fallback, st_doorbells;
	/* Doorbell: bit i = lane i was parked and has been committed to.
	 * Set by producers (fetch_or, seq_cst: also their publish before
	 * vz__wake()); taken by the owner with exchange (acquire: pairs with
	 * that fetch_or) and read by its sleep re-check (seq_cst). */
	alignas(64) _Atomic uint64_t bell[];
};

/* The producers: a thread's implicit one per runtime, or a vz_producer. */
#define NO_LANE ((struct vz__plane *)1) /* implicit: none free, use the inbox */

struct vz_producer {
	vz_runtime *rt;
	uint64_t uid; /* rt's, when made */
	bool implicit;
	struct vz_producer *next; /* the thread's list (implicit) */
	unsigned nshards;
	struct vz__plane *lane[]; /* [nshards]: NULL until the first post */
};

static pthread_mutex_t lanes_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t next_uid = 1;

/* The calling thread's implicit producers, most recently used first.
 * Initial-exec like vz__tls_shard: one load on the post path. The same
 * head is the value of tls_key, whose destructor runs at thread exit. */
static __attribute__((tls_model("initial-exec"))) _Thread_local struct vz_producer *tls_head;
static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

/* ---- lifetime -------------------------------------------------------- */

int vz__lanes_shard_init(struct vz__shard *sh)
{
	vz_runtime *rt = sh->rt;
	uint32_t cap = rt->cfg.foreign_lanes ? rt->cfg.foreign_lanes : VZ_FOREIGN_LANES_DEFAULT;
	uint32_t words = (cap + 63) / 64;
	size_t size = (sizeof(struct vz__lane_set) + words * sizeof(uint64_t) + 63) & ~(size_t)63;
	struct vz__lane_set *set;

	if (cap > VZ_FOREIGN_LANES_MAX)
		return VZ_ECONFIG;
	set = aligned_alloc(64, size);
	if (!set)
		return VZ_ENOMEM;
	memset(set, 0, size);
	set->table = calloc(cap, sizeof *set->table);
	set->look.active = calloc(words, sizeof *set->look.active);
	if (!set->table || !set->look.active) {
		free(set->table);
		free(set->look.active);
		free(set);
		return VZ_ENOMEM;
	}
	pthread_mutex_init(&set->lock, NULL);
	set->cap = cap;
	set->look.words = words;
	set->look.bell = set->bell;
	/* Shard 0 is created first (runtime.c); the others share its id.
	 * Relaxed: a unique number, no data behind it. */
	set->uid = sh->id == 0 ? atomic_fetch_add_explicit(&next_uid, 1, memory_order_relaxed)
			       : rt->shards[0]->lanes->uid;
	sh->lanes = set;
	return 0;
}

static void forget_thread_producers(vz_runtime *rt, uint64_t uid);

/* vz_runtime_destroy() (or a failed create): threads are joined. Lanes
 * whose producer is gone are freed; the others keep only their header for
 * their producer. */
void vz__lanes_shard_fini(struct vz__shard *sh)
{
	struct vz__lane_set *set = sh->lanes;

	if (!set)
		return;
	/* The destroying thread's own implicit producer for this runtime
	 * goes now rather than at its next post or its exit. */
	if (sh->id == 0)
		forget_thread_producers(sh->rt, set->uid);
	pthread_mutex_lock(&lanes_lock);
	for (uint32_t i = 0; i < set->cap; i++) {
		/* Relaxed: single-threaded on the runtime's side now. */
		struct vz__plane *pl = atomic_load_explicit(&set->table[i], memory_order_relaxed);

		if (!pl)
			continue;
		vz__lane_fini(&pl->q);
		pl->rt_alive = false;
		if (!pl->prod_alive)
			free(pl);
	}
	pthread_mutex_unlock(&lanes_lock);
	pthread_mutex_destroy(&set->lock);
	free(set->table);
	free(set->look.active);
	free(set);
	sh->lanes = NULL;
}

/* The producer lets go of pl (thread exit, destroyed producer, stale
 * entry). Caller holds lanes_lock. */
static void lane_let_go(struct vz__plane *pl)
{
	struct vz__lane_set *set;
	struct vz__shard *sh;
	uint32_t idx;

	pl->prod_alive = false;
	if (!pl->rt_alive) {
		free(pl); /* segments went with the runtime */
		return;
	}
	/* The runtime lives (its destroy waits for lanes_lock): tell the
	 * shard, which frees the lane once it is empty. Read what the ring
	 * needs first: once orphan is stored the shard may free pl. */
	set = pl->set;
	sh = pl->sh;
	idx = pl->index;
	/* Release: pairs with the consumer's acquire in drain_lane(); our
	 * last commit happens before it sees the orphan. */
	atomic_store_explicit(&pl->orphan, 1, memory_order_release);
	/* seq_cst: the publish before vz__wake()'s read of `sleeping`; pairs
	 * with the sleep re-check (vz__lanes_pending()). */
	atomic_fetch_or_explicit(&set->bell[idx / 64], (uint64_t)1 << (idx % 64),
				 memory_order_seq_cst);
	(void)vz__wake(NULL, sh);
}

static void producer_free(struct vz_producer *p)
{
	pthread_mutex_lock(&lanes_lock);
	for (unsigned s = 0; s < p->nshards; s++)
		if (p->lane[s] && p->lane[s] != NO_LANE)
			lane_let_go(p->lane[s]);
	pthread_mutex_unlock(&lanes_lock);
	free(p);
}

static struct vz_producer *producer_new(vz_runtime *rt, bool implicit)
{
	struct vz_producer *p = calloc(1, sizeof *p + rt->nshards * sizeof p->lane[0]);

	if (!p)
		return NULL;
	p->rt = rt;
	p->uid = rt->shards[0]->lanes->uid;
	p->implicit = implicit;
	p->nshards = rt->nshards;
	return p;
}

/* pthread key destructor: the thread exits. */
static void thread_exit(void *head)
{
	struct vz_producer *p = head, *next;

	tls_head = NULL;
	for (; p; p = next) {
		next = p->next;
		producer_free(p);
	}
}

static void tls_key_make(void)
{
	(void)pthread_key_create(&tls_key, thread_exit);
}

static void forget_thread_producers(vz_runtime *rt, uint64_t uid)
{
	struct vz_producer **pp = &tls_head, *p;
	bool had = tls_head != NULL; /* then tls_key exists */

	while ((p = *pp)) {
		if (p->rt == rt && p->uid == uid) {
			*pp = p->next;
			producer_free(p);
			continue;
		}
		pp = &p->next;
	}
	if (had)
		(void)pthread_setspecific(tls_key, tls_head);
}

/* The calling thread's implicit producer for rt, made on first use;
 * entries of destroyed runtimes that had rt's address go on the way.
 * NULL: out of memory. */
static struct vz_producer *thread_producer_slow(vz_runtime *rt, uint64_t uid)
{
	struct vz_producer **pp = &tls_head, *p;

	pthread_once(&tls_once, tls_key_make);
	while ((p = *pp)) {
		if (p->rt == rt && p->uid == uid) {
			*pp = p->next; /* found: to the front below */
			break;
		}
		if (p->rt == rt) {
			/* rt's address, another runtime: that one is gone. */
			*pp = p->next;
			producer_free(p);
			continue;
		}
		pp = &p->next;
	}
	if (!p) {
		p = producer_new(rt, true);
		if (!p)
			return NULL;
	}
	p->next = tls_head;
	tls_head = p;
	(void)pthread_setspecific(tls_key, tls_head);
	return p;
}

/* ---- producer side ----------------------------------------------------- */

/* The state that explains a refused post: STOPPING or later -> stopped,
 * else not started. Acquire: pairs with the seq_cst stores of the state;
 * a commit refused by a close read the close with acquire, and the close
 * came after STOPPING (vz_runtime_stop()). */
static int refusal(vz_runtime *rt)
{
	return atomic_load_explicit(&rt->state, memory_order_acquire) >= VZ__RT_STOPPING
		   ? VZ_ESTOPPED
		   : VZ_ESTATE;
}

/* Register a new lane for p into shard s. 0, or VZ_ESTATE / VZ_ESTOPPED
 * (lanes not open), VZ_ENOLANE, VZ_ENOMEM. Slow path. */
static __attribute__((noinline, cold)) int lane_attach(struct vz_producer *p, unsigned s)
{
	struct vz__shard *sh = p->rt->shards[s];
	struct vz__lane_set *set = sh->lanes;
	struct vz__plane *pl;
	uint32_t idx = UINT32_MAX, n;
	int rc = 0;

	pthread_mutex_lock(&set->lock);
	if (!set->open) {
		rc = refusal(p->rt);
		goto out;
	}
	for (uint32_t k = 0; k < set->cap; k++) {
		uint32_t i = (set->hint + k) % set->cap;

		/* Relaxed: entries change only under the lock we hold. */
		if (!atomic_load_explicit(&set->table[i], memory_order_relaxed)) {
			idx = i;
			break;
		}
	}
	if (idx == UINT32_MAX) {
		/* Under the lock: see st_exhausted. */
		vz__counter_add(&set->st_exhausted, 1);
		rc = VZ_ENOLANE;
		goto out;
	}
	pl = aligned_alloc(64, sizeof *pl);
	if (!pl || vz__lane_init(&pl->q) < 0) {
		free(pl);
		rc = VZ_ENOMEM;
		goto out;
	}
	pl->set = set;
	pl->sh = sh;
	pl->index = idx;
	pl->idle = 0;
	pl->stop_tail = 0;
	pl->prod_alive = pl->rt_alive = true;
	atomic_init(&pl->orphan, 0);
	/* Release: pairs with the owner's acquire load of the entry; the
	 * lane's init is visible before the owner polls it. */
	atomic_store_explicit(&set->table[idx], pl, memory_order_release);
	n = atomic_load_explicit(&set->nlanes, memory_order_relaxed) + 1;
	atomic_store_explicit(&set->nlanes, n, memory_order_relaxed);
	/* Relaxed, under the lock: see st_hwm. */
	if (n > atomic_load_explicit(&set->st_hwm, memory_order_relaxed))
		atomic_store_explicit(&set->st_hwm, n, memory_order_relaxed);
	set->hint = idx + 1;
	p->lane[s] = pl;
out:
	pthread_mutex_unlock(&set->lock);
	return rc;
}

static inline void copy_bytes(unsigned char *dst, const void *src, size_t len)
{
	if (len == 8)
		memcpy(dst, src, 8); /* the common word-sized payload, inline */
	else if (len)
		memcpy(dst, src, len);
}

/* Slots for an inline payload of len bytes. */
static inline unsigned rec_slots(size_t len)
{
	return len <= REC_FIRST ? 1 : 1 + (unsigned)((len - REC_FIRST + REC_CONT - 1) / REC_CONT);
}

/* Payload into / out of a record's slots (r and the n - 1 slots after). */
static inline void rec_put(struct lane_rec *r, const unsigned char *src, size_t len)
{
	unsigned char *slot = (unsigned char *)r;
	size_t k = len < REC_FIRST ? len : REC_FIRST;

	copy_bytes(r->data, src, k);
	if (len == k)
		return; /* also an empty payload, whose src may be NULL */
	for (src += k, len -= k; len; src += k, len -= k) {
		slot += VZ__LANE_SLOT;
		k = len < REC_CONT ? len : REC_CONT;
		memcpy(slot + VZ__LANE_CONT_OFF, src, k);
	}
}

static inline void rec_get(unsigned char *dst, const struct lane_rec *r, size_t len)
{
	const unsigned char *slot = (const unsigned char *)r;
	size_t k = len < REC_FIRST ? len : REC_FIRST;

	copy_bytes(dst, r->data, k);
	for (dst += k, len -= k; len; dst += k, len -= k) {
		slot += VZ__LANE_SLOT;
		k = len < REC_CONT ? len : REC_CONT;
		memcpy(dst, slot + VZ__LANE_CONT_OFF, k);
	}
}

/*
 * Wake the target if it sleeps, after a commit. vz__wake()'s own first test
 * is made here, inline, so a post to an awake shard (the common case) makes
 * no call; when the flag says it may sleep, vz__wake() makes that test
 * again (the same loads, its own pairing) and wakes it. The loads: after
 * the commit's seq_cst CAS (the sender's publish and full fence), a
 * compiler barrier and a relaxed load when the sleeper pays with
 * membarrier(), else a seq_cst load; either pairs with the sleeper's
 * announce, fence, re-check (vz__shard_sleep(); see vz__wake()).
 */
static inline void lane_wake(struct vz__shard *target)
{
	if (target->sleep_fence == VZ__SLEEP_FENCE_MEMBARRIER) {
		vz__light_fence();
		if (!atomic_load_explicit(&target->sleeping, memory_order_relaxed))
			return;
	} else if (!atomic_load_explicit(&target->sleeping, memory_order_seq_cst)) {
		return;
	}
	(void)vz__wake(NULL, target);
}

/*
 * What follows every commit on pl (lane_post() and the fast user post):
 * the stall fault point (a poster preempted right after its commit,
 * before it rings or wakes: stop must find the record without being
 * told), then, after the commit's seq_cst CAS (the publish and full
 * fence), the bell of a parked lane (see vz__lane_park()) and the wake of
 * a sleeping target (lane_wake()).
 */
static inline void lane_ring_and_wake(vz_runtime *rt, struct vz__plane *pl,
				      struct vz__shard *target)
{
	if (VZ_FAULT(VZ_FAULT_POST_STALL))
		vz__stall_until_stopping(rt);
	if (__builtin_expect(vz__lane_parked(&pl->q), 0))
		/* seq_cst: pairs with the owner's exchange (acquire) and with
		 * the sleep re-check's seq_cst load of the word. */
		atomic_fetch_or_explicit(&pl->set->bell[pl->index / 64],
					 (uint64_t)1 << (pl->index % 64), memory_order_seq_cst);
	lane_wake(target);
}

/*
 * Post through p's lane into the target's shard. 0, a refusal, or
 * VZ__LANE_FALLBACK (implicit producer without a lane there). Arguments
 * are checked by the caller. Every refusal changes nothing.
 */
static int lane_post(struct vz_producer *p, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
		     uint32_t corr, const void *payload, size_t len)
{
	vz_runtime *rt = p->rt;
	unsigned s = vz_ref_shard(to);
	struct vz__shard *target = rt->shards[s];
	struct vz__plane *pl = p->lane[s];
	struct vz_msg *block = NULL;
	struct lane_rec *r;
	unsigned n;
	int counted = 0, rc;

	if (__builtin_expect(pl == NULL, 0)) {
		rc = lane_attach(p, s);
		if (rc == VZ_ENOLANE && p->implicit) {
			/* For the rest of this thread's life: switching back to
			 * a lane later could overtake its posts still in the
			 * inbox (producer.h says why that is not worth
			 * preventing). Counted in lanes_exhausted, its posts
			 * in lane_fallback_posts (stats.h). */
			p->lane[s] = NO_LANE;
			return VZ__LANE_FALLBACK;
		}
		if (rc < 0)
			return rc;
		pl = p->lane[s];
	}
	if (__builtin_expect(pl == NO_LANE, 0))
		return VZ__LANE_FALLBACK;
	if (__builtin_expect(vz__lane_closed_hint(&pl->q), 0))
		return refusal(rt);
	if (!(flags & VZ__MSG_SYS) &&
	    atomic_load_explicit(&target->bounded_live, memory_order_relaxed)) {
		counted = vz__bounded_admit(target, to);
		if (counted < 0) {
			/* Relaxed: a statistic (stats.c sums it in). */
			atomic_fetch_add_explicit(&target->mailbox_full_foreign, 1,
						  memory_order_relaxed);
			return counted;
		}
		if (counted)
			flags |= VZ__MSG_INFLIGHT;
	}
	if (__builtin_expect(len <= REC_INLINE_MAX, 1)) {
		n = rec_slots(len);
		r = (struct lane_rec *)vz__lane_reserve(&pl->q, n, KIND_INLINE);
		if (!r)
			goto nomem;
		rec_put(r, payload, len);
	} else {
		n = 1;
		block = vz__fpool_alloc(rt, target, len);
		if (!block)
			goto nomem;
		block->to = to;
		block->from = from;
		block->type = type;
		block->len = (uint32_t)len;
		block->flags |= flags;
		block->corr = corr;
		memcpy(block->data, payload, len);
		r = (struct lane_rec *)vz__lane_reserve(&pl->q, 1, KIND_BLOCK);
		if (!r)
			goto nomem;
		memcpy(r->data, &block, sizeof block);
	}
	r->flags = flags;
	r->type = type;
	r->to = to.id;
	r->from = from.id;
	r->len = (uint32_t)len;
	r->corr = corr;
	if (__builtin_expect(vz__lane_commit(&pl->q, n) < 0, 0)) {
		rc = refusal(rt);
		goto undo;
	}
	lane_ring_and_wake(rt, pl, target);
	return 0;
nomem:
	rc = VZ_ENOMEM;
undo:
	if (block)
		vz__fpool_put(target, block);
	if (counted) {
		struct vz_msg tmp = {.to = to, .flags = VZ__MSG_INFLIGHT};

		vz__undo_admit(target, &tmp);
	}
	return rc;
}

/* The thread's first post to rt (or to another runtime since): kept out
 * of line so the common path below saves no registers (callgrind: 42
 * instructions per post when it was inlined, 10 without). */
static __attribute__((noinline, cold)) int post_thread_slow(vz_runtime *rt, uint64_t uid,
							    vz_ref from, vz_ref to, uint32_t type,
							    uint8_t flags, uint32_t corr,
							    const void *payload, size_t len)
{
	struct vz_producer *p = thread_producer_slow(rt, uid);

	if (!p)
		return VZ_ENOMEM;
	return lane_post(p, from, to, type, flags, corr, payload, len);
}

int vz__lanes_post_thread(vz_runtime *rt, vz_ref from, vz_ref to, uint32_t type, uint8_t flags,
			  uint32_t corr, const void *payload, size_t len)
{
	struct vz_producer *p = tls_head;
	uint64_t uid = rt->shards[vz_ref_shard(to)]->lanes->uid;

	if (__builtin_expect(!p || p->rt != rt || p->uid != uid, 0))
		return post_thread_slow(rt, uid, from, to, type, flags, corr, payload, len);
	return lane_post(p, from, to, type, flags, corr, payload, len);
}

/*
 * vz_post()'s fast path (lanes.h): the thread's implicit producer for rt
 * exists and has a lane into the target's shard, the lane is open, no
 * actor of that shard has a bounded mailbox, and the payload fits a
 * record in what is left of the lane's current segment. Then none of
 * lane_post()'s other branches can apply, and this is lane_post() with
 * from, flags and correlation 0: the same record, commit, doorbell and
 * wake-up. Anything else, before anything changed, goes to
 * vz__post_user_slow(), which decides the post from scratch. No call on
 * the way to the commit, and the target and lane are found once.
 */
int vz__lanes_post_user(vz_runtime *rt, vz_ref to, uint32_t type, const void *payload, size_t len)
{
	struct vz_producer *p = tls_head;
	unsigned s = vz_ref_shard(to);
	struct vz__shard *target = rt->shards[s];
	struct vz__plane *pl;
	struct lane_rec *r;
	unsigned n;

	if (__builtin_expect(!p || p->rt != rt || p->uid != target->lanes->uid, 0))
		goto slow;
	pl = p->lane[s];
	/* The bounded_live hint is read as lane_post() reads it (relaxed). */
	if (__builtin_expect(pl == NULL || pl == NO_LANE || len > REC_INLINE_MAX ||
				 vz__lane_closed_hint(&pl->q) ||
				 atomic_load_explicit(&target->bounded_live, memory_order_relaxed),
			     0))
		goto slow;
	n = rec_slots(len);
	r = (struct lane_rec *)vz__lane_reserve_here(&pl->q, n, KIND_INLINE);
	if (__builtin_expect(!r, 0))
		goto slow;
	rec_put(r, payload, len);
	r->flags = 0;
	r->type = type;
	r->to = to.id;
	r->from = 0;
	r->len = (uint32_t)len;
	r->corr = 0;
	if (__builtin_expect(vz__lane_commit(&pl->q, n) < 0, 0))
		return refusal(rt); /* closed: nothing was committed */
	lane_ring_and_wake(rt, pl, target);
	return 0;
slow:
	return vz__post_user_slow(rt, to, type, payload, len);
}

/* ---- the public producer ------------------------------------------------ */

VZ_API int vz_producer_create(vz_runtime *rt, vz_producer **out)
{
	struct vz_producer *p;

	if (!rt || !out)
		return VZ_EINVAL;
	p = producer_new(rt, false);
	if (!p)
		return VZ_ENOMEM;
	*out = p;
	return 0;
}

VZ_API int vz_producer_post(vz_producer *p, vz_ref to, uint32_t type, const void *payload,
			    size_t len)
{
	vz_runtime *rt;
	int rc;

	if (!p || type < VZ_MSG_USER || (!payload && len))
		return VZ_EINVAL;
	rt = p->rt;
	if (vz__current(rt))
		return VZ_EWRONGTHREAD;
	if (__builtin_expect(vz_ref_shard(to) == VZ_MAX_SHARDS - 1, 0)) {
		rc = vz__remote_send(rt, NULL, VZ_REF_NULL, to, type, payload, len);
		if (rc <= 0)
			return rc;
	}
	if (len > VZ_MSG_MAX_PAYLOAD)
		return VZ_ETOOBIG;
	if (vz_ref_is_null(to))
		return VZ_ESTALE;
	if (vz_ref_shard(to) >= rt->nshards)
		return VZ_ENOSHARD;
	return lane_post(p, VZ_REF_NULL, to, type, 0, 0, payload, len);
}

VZ_API int vz_producer_destroy(vz_producer *p)
{
	if (p)
		producer_free(p);
	return 0;
}

/* ---- consumer side (the shard's own thread) ----------------------------- */

/* The message a record carries, in a block of sh's own pool (or the
 * foreign-pool block it points to). NULL: sh's pool cannot grow. */
static struct vz_msg *rec_msg(struct vz__shard *sh, const struct lane_rec *r)
{
	struct vz_msg *m;

	if (r->kind == KIND_BLOCK) {
		memcpy(&m, r->data, sizeof m);
		return m;
	}
	m = vz__msg_alloc(sh, r->len);
	if (!m)
		return NULL;
	m->to.id = r->to;
	m->from.id = r->from;
	m->type = r->type;
	m->len = r->len;
	m->flags |= r->flags;
	m->corr = r->corr;
	rec_get(m->data, r, r->len);
	return m;
}

/* Lane i starts being polled every turn (its `active` bit), counted in
 * st_active (owner only, see there). */
static inline void lane_activate(struct vz__lane_set *set, uint32_t i)
{
	uint64_t bit = (uint64_t)1 << (i % 64);

	if (!(set->look.active[i / 64] & bit)) {
		set->look.active[i / 64] |= bit;
		vz__counter_add(&set->st_active, 1);
	}
}

/* Lane i is no longer polled (parked or freed). */
static inline void lane_deactivate(struct vz__lane_set *set, uint32_t i)
{
	uint64_t bit = (uint64_t)1 << (i % 64);

	if (set->look.active[i / 64] & bit) {
		set->look.active[i / 64] &= ~bit;
		/* Owner only: a relaxed load and store, as vz__counter_add(). */
		atomic_store_explicit(&set->st_active,
				      atomic_load_explicit(&set->st_active, memory_order_relaxed) -
					  1,
				      memory_order_relaxed);
	}
}

/*
 * Deliver an inline record straight into its target's mailbox cells
 * (mailbox.h), as a local vz_send() does, instead of copying it into a
 * block of sh's pool (rec_msg()) that vz__deliver_local() then queues by
 * pointer: no block to take, fill and give back, and the receive call gets
 * a view of the cell (deliver.c, dispatch_cell()). Only for what a cell
 * can carry and what vz__deliver_local() would queue as plain mail: a user
 * message (no flag but a bounded-mailbox count, VZ__MSG_INFLIGHT, which the
 * cell keeps and dispatch gives back), no correlation, a payload that fits
 * the cells, a live target on a running shard whose mail has not spilled.
 * The mailbox is one FIFO for cells and blocks, so the order of the lane
 * is the order of the mailbox whichever form each record takes. Returns
 * false, having changed nothing, when the record must take the block path.
 */
static inline bool rec_to_cell(struct vz__shard *sh, const struct lane_rec *r)
{
	struct vz_actor *a;
	struct vz__cell *c;
	unsigned n;

	if (r->kind != KIND_INLINE || (r->flags & (uint8_t)~VZ__MSG_INFLIGHT) || r->corr ||
	    r->len > VZ__CELL_INLINE_MAX)
		return false;
	a = vz__actor_lookup(sh, (vz_ref){r->to});
	/* The phase test is vz__deliver_local()'s, relaxed as there: once a
	 * stop has begun, arrivals are dead-lettered, so such a record takes
	 * the block path, which does that. */
	if (!a || (a->flags & VZ__ACTOR_SPILL) ||
	    atomic_load_explicit(&sh->phase, memory_order_relaxed) != VZ__PHASE_RUN)
		return false;
	n = vz__cell_span(r->len);
	c = vz__mbox_reserve(&sh->segs, &a->mbox, n);
	if (!c)
		return false; /* no segment: the block path spills it in order */
	vz__cell_put_hdr(c, r->from, r->type, r->len, r->flags, n);
	rec_get(vz__cell_payload(c), r, r->len);
	vz__mbox_commit(&a->mbox, c, n);
	vz__make_ready(sh, a);
	return true;
}

/* Unregister and free an orphaned, empty lane. */
static void lane_reclaim(struct vz__lane_set *set, struct vz__plane *pl)
{
	uint32_t i = pl->index;

	pthread_mutex_lock(&set->lock);
	/* Release for symmetry with registration; the entry is NULL now. */
	atomic_store_explicit(&set->table[i], NULL, memory_order_release);
	atomic_store_explicit(&set->nlanes,
			      atomic_load_explicit(&set->nlanes, memory_order_relaxed) - 1,
			      memory_order_relaxed);
	pthread_mutex_unlock(&set->lock);
	lane_deactivate(set, i);
	vz__lane_fini(&pl->q);
	free(pl);
}

/* Take up to limit records from one lane. Returns the number taken. */
static unsigned drain_lane(struct vz__shard *sh, struct vz__lane_set *set, struct vz__plane *pl,
			   unsigned limit)
{
	struct vz__lane_slot *s;
	unsigned n = 0;

	while (n < limit && (s = vz__lane_peek(&pl->q))) {
		const struct lane_rec *r = (const struct lane_rec *)s;
		struct vz_msg *m;

		if (__builtin_expect(rec_to_cell(sh, r), 1)) {
			vz__lane_advance(&pl->q, r->nslots);
			/* A user message (rec_to_cell()): counted. */
			VZ__STAT_ADD(sh, received_foreign, 1);
			n++;
			continue;
		}
		m = rec_msg(sh, r);
		if (__builtin_expect(!m, 0))
			break; /* no memory: the record waits in the lane */
		vz__lane_advance(&pl->q, r->nslots);
		if (!(m->flags & VZ__MSG_UNCOUNTED))
			VZ__STAT_ADD(sh, received_foreign, 1);
		vz__deliver_local(sh, m);
		n++;
	}
	if (n) {
		vz__lane_publish_head(&pl->q); /* for the stopper */
		vz__counter_add(&set->st_posts, n);
		pl->idle = 0;
		return n;
	}
	/* Acquire: pairs with the release store in lane_let_go(); every
	 * commit of the producer is visible, so empty now means for good. */
	if (atomic_load_explicit(&pl->orphan, memory_order_acquire)) {
		if (vz__lane_empty(&pl->q))
			lane_reclaim(set, pl);
		return 0;
	}
	if (++pl->idle >= PARK_AFTER && vz__lane_park(&pl->q))
		lane_deactivate(set, pl->index);
	return 0;
}

unsigned vz__lanes_drain(struct vz__shard *sh, bool all)
{
	struct vz__lane_set *set = sh->lanes;
	unsigned total = 0;

	for (uint32_t w = 0; w < set->look.words; w++) {
		uint64_t bits;

		/* Stop rounds look at every lane, parked or not: a producer
		 * preempted between its commit and its doorbell must not keep
		 * the stop waiting for it. */
		if (__builtin_expect(all, 0))
			for (uint32_t i = w * 64; i < set->cap && i < w * 64 + 64; i++) {
				struct vz__plane *pl =
				    atomic_load_explicit(&set->table[i], memory_order_acquire);

				if (pl && !(set->look.active[w] & ((uint64_t)1 << (i % 64)))) {
					vz__lane_unpark(&pl->q);
					pl->idle = 0;
					lane_activate(set, i);
				}
			}

		/* Relaxed peek first: an idle turn does not write the line. */
		if (atomic_load_explicit(&set->bell[w], memory_order_relaxed)) {
			/* Acquire: pairs with the producers' fetch_or. The
			 * bit is cleared before the lane is polled, so a
			 * later ring is not lost. */
			bits = atomic_exchange_explicit(&set->bell[w], 0, memory_order_acquire);
			while (bits) {
				uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
				/* Acquire: pairs with the registration's
				 * release store of the entry. */
				struct vz__plane *pl =
				    atomic_load_explicit(&set->table[i], memory_order_acquire);

				bits &= bits - 1;
				if (!pl)
					continue; /* reclaimed; a late ring */
				vz__lane_unpark(&pl->q);
				pl->idle = 0;
				lane_activate(set, i);
				vz__counter_add(&set->st_doorbells, 1);
			}
		}
		bits = set->look.active[w];
		while (bits) {
			uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
			/* Relaxed: we loaded it with acquire when we
			 * activated the lane, and only we clear it. */
			struct vz__plane *pl =
			    atomic_load_explicit(&set->table[i], memory_order_relaxed);

			bits &= bits - 1;
			total += drain_lane(sh, set, pl, all ? UINT32_MAX : DRAIN_PER_LANE);
		}
	}
	return total;
}

/* The sleep re-check, after the sleeper's fence: every load here is the
 * reader's half of a publish + fence pairing (vz__lane_empty()'s seq_cst
 * tail load with the commit's CAS; the doorbell's with its fetch_or). */
bool vz__lanes_pending(struct vz__shard *sh)
{
	struct vz__lane_set *set = sh->lanes;

	for (uint32_t w = 0; w < set->look.words; w++) {
		uint64_t bits = set->look.active[w];

		if (atomic_load_explicit(&set->bell[w], memory_order_seq_cst))
			return true;
		while (bits) {
			uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
			struct vz__plane *pl =
			    atomic_load_explicit(&set->table[i], memory_order_relaxed);

			bits &= bits - 1;
			if (!vz__lane_empty(&pl->q) ||
			    atomic_load_explicit(&pl->orphan, memory_order_relaxed))
				return true;
		}
	}
	return false;
}

/* ---- start and stop ------------------------------------------------------ */

void vz__lanes_open(struct vz__shard *sh)
{
	pthread_mutex_lock(&sh->lanes->lock);
	sh->lanes->open = true;
	pthread_mutex_unlock(&sh->lanes->lock);
}

/* Under the set's lock, so no lane registers after it and none is
 * reclaimed while it looks. */
void vz__lanes_close(struct vz__shard *sh)
{
	struct vz__lane_set *set = sh->lanes;

	pthread_mutex_lock(&set->lock);
	set->open = false;
	for (uint32_t i = 0; i < set->cap; i++) {
		struct vz__plane *pl = atomic_load_explicit(&set->table[i], memory_order_relaxed);

		if (pl)
			pl->stop_tail = vz__lane_close(&pl->q);
	}
	pthread_mutex_unlock(&set->lock);
}

bool vz__lanes_arrived(struct vz__shard *sh)
{
	struct vz__lane_set *set = sh->lanes;
	bool all = true;

	pthread_mutex_lock(&set->lock);
	for (uint32_t i = 0; i < set->cap && all; i++) {
		struct vz__plane *pl = atomic_load_explicit(&set->table[i], memory_order_relaxed);

		if (pl && !vz__lane_taken(&pl->q, pl->stop_tail))
			all = false;
	}
	pthread_mutex_unlock(&set->lock);
	return all;
}

unsigned vz__lanes_count(vz_runtime *rt, unsigned shard)
{
	if (!rt || shard >= rt->nshards)
		return 0;
	/* Relaxed: a snapshot for tests. */
	return atomic_load_explicit(&rt->shards[shard]->lanes->nlanes, memory_order_relaxed);
}

/* ---- statistics ------------------------------------------------------------ */

void vz__lanes_note_fallback(struct vz__shard *sh, unsigned n)
{
	vz__counter_add(&sh->lanes->st_fallback, n);
}

void vz__lanes_stats(const struct vz__shard *sh, vz_shard_stats *o)
{
	const struct vz__lane_set *set = sh->lanes;

	if (!set)
		return; /* a shard being made or unmade: no lanes */
	/* Relaxed: each a snapshot of a counter written by one thread at a
	 * time (the owner, or whoever holds the set's lock); nothing is read
	 * through them. */
	o->lanes_in_use = atomic_load_explicit(&set->nlanes, memory_order_relaxed);
	o->lanes_hwm = atomic_load_explicit(&set->st_hwm, memory_order_relaxed);
	o->lanes_active = atomic_load_explicit(&set->st_active, memory_order_relaxed);
	o->lanes_exhausted = atomic_load_explicit(&set->st_exhausted, memory_order_relaxed);
	o->lane_posts = atomic_load_explicit(&set->st_posts, memory_order_relaxed);
	o->lane_fallback_posts = atomic_load_explicit(&set->st_fallback, memory_order_relaxed);
	o->lane_doorbells = atomic_load_explicit(&set->st_doorbells, memory_order_relaxed);
}
