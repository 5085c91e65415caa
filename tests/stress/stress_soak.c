// SPDX-License-Identifier: MIT
/*
 * Conservation soak: a mixed workload on three shards for a bounded time,
 * then a stop with traffic still flowing, then the books must balance.
 *
 * Workers (four per shard) drive themselves with self-messages and send
 * bursts to workers on their own shard and on others; each keeps one
 * short-lived child that it replaces by spawning on its own shard, and that
 * is stopped from everywhere (its parent, itself, a worker on another shard,
 * a foreign thread). Workers arm and cancel one-shot and periodic timers and
 * submit (and sometimes cancel) worker-pool jobs. Two foreign threads post
 * to workers and children and stop children, and keep posting while the
 * runtime stops.
 *
 * Every counted message carries a unique id and a per-(sender, receiver)
 * sequence number. At the end: the runtime's stats balance (sent = handled
 * + dead-lettered); every message the test's actors accepted was either
 * handled or given to the dead-letter hook exactly once (counts and a sum of
 * hashed ids agree); every pair was FIFO with no gap while the receiver
 * lived; every armed one-shot timer fired or was cancelled exactly once, no
 * cancelled timer fired; every spawned actor got its on_stop; no thread and
 * no fd outlives the runtime.
 *
 * Length: VZ_SOAK_SECONDS (default 20) times VZ_STRESS_SCALE, at least 2 s.
 */
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SHARDS		  3
#define WORKERS_PER_SHARD 4
#define WORKERS		  (SHARDS * WORKERS_PER_SHARD)
#define POSTERS		  2
#define MAIN_ID		  (WORKERS + POSTERS)	  /* the test thread's kick-off posts */
#define SENDERS		  (WORKERS + POSTERS + 1) /* sender ids: workers, posters, main */
#define BURST		  16
#define INFLIGHT_LIMIT	  20000 /* accepted - (handled + dead) before senders pause */

enum {
	MSG_GO = VZ_MSG_USER, /* a worker's self-trigger */
	MSG_DATA,
	MSG_STOP_SELF, /* a child stops itself on this one */
};

/* Payload of every counted user message. */
struct payload {
	uint32_t sender; /* sender id */
	uint32_t pad;
	uint64_t uid;  /* unique over the run: (sender << 40) | n */
	uint64_t pseq; /* per (sender, receiver) sequence number */
};

/* ---- the books ---------------------------------------------------------- */

static atomic_ulong accepted, handled, dead;		    /* counted messages */
static atomic_ulong accepted_hash, handled_hash, dead_hash; /* sums of mix(uid) */
static atomic_ulong order_errors, timer_errors, other_errors;
static atomic_ulong oneshot_armed, oneshot_fired, oneshot_cancelled, oneshot_pending;
static atomic_ulong periodic_fired, jobs_done, jobs_cancelled, children_spawned, on_stops;
static atomic_int error_taken;
static char first_error[256]; /* written once, read after every thread is joined */
static atomic_int g_ending;   /* set after the stop: paused posters leave */

/* Count an error; the first one's text is kept for the failure message. */
static void error_note(atomic_ulong *counter, const char *fmt, long a, long b)
{
	atomic_fetch_add(counter, 1);
	if (atomic_fetch_add(&error_taken, 1) == 0)
		snprintf(first_error, sizeof first_error, fmt, a, b);
}

/* A 64-bit mix (splitmix64's finalizer): a lost or duplicated id changes
 * the sum with overwhelming probability. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void book_accepted(uint64_t uid)
{
	atomic_fetch_add_explicit(&accepted, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&accepted_hash, mix(uid), memory_order_relaxed);
}

static void book_handled(uint64_t uid)
{
	atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&handled_hash, mix(uid), memory_order_relaxed);
}

static uint64_t inflight(void)
{
	uint64_t a = atomic_load_explicit(&accepted, memory_order_relaxed);
	uint64_t d = atomic_load_explicit(&handled, memory_order_relaxed) +
		     atomic_load_explicit(&dead, memory_order_relaxed);

	return a > d ? a - d : 0;
}

static void on_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len, int reason)
{
	uint64_t uid = 0;

	(void)ctx;
	(void)to;
	if (reason != VZ_ESTALE && reason != VZ_ESTOPPED)
		error_note(&other_errors, "dead letter reason %ld type %ld", reason, type);
	if (type == VZ_MSG_POOL_DONE && len >= sizeof(vz_pool_done)) {
		vz_pool_done d;

		memcpy(&d, data, sizeof d);
		uid = d.tag;
	} else if (type >= VZ_MSG_USER && len >= sizeof(struct payload)) {
		struct payload p;

		memcpy(&p, data, sizeof p);
		uid = p.uid;
	} else {
		error_note(&other_errors, "dead letter of type %ld len %ld", type, (long)len);
	}
	atomic_fetch_add_explicit(&dead, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&dead_hash, mix(uid), memory_order_relaxed);
}

/* ---- shared between actors and posters ---------------------------------- */

static vz_runtime *g_rt;
static vz_ref worker_ref[WORKERS];
/* Each worker's current child (a reference id), published with release for
 * posters and other workers; the child's generation makes reuse harmless. */
static _Atomic uint64_t child_ref[WORKERS];

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* A receiver's FIFO check: from one sender, sequence numbers arrive as
 * 0, 1, 2, ... with no gap (a message can only be missing if its receiver
 * stopped, and then it never sees a later one). */
static void check_order(uint64_t *next, const struct payload *p)
{
	if (p->sender >= SENDERS) {
		error_note(&order_errors, "sender id %ld out of range (uid %ld)", p->sender,
			   (long)p->uid);
		return;
	}
	if (p->pseq != next[p->sender])
		error_note(&order_errors, "pair sequence %ld, expected %ld", (long)p->pseq,
			   (long)next[p->sender]);
	next[p->sender] = p->pseq + 1;
}

/* ---- children ----------------------------------------------------------- */

struct child {
	uint64_t next[SENDERS];
	uint64_t rng;
};

static void child_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct child *c = state;
	struct payload p;

	if (vz_msg_len(m) < sizeof p) {
		error_note(&other_errors, "child got type %ld len %ld", vz_msg_type(m),
			   (long)vz_msg_len(m));
		return;
	}
	memcpy(&p, vz_msg_data(m), sizeof p);
	check_order(c->next, &p);
	book_handled(p.uid);
	if (vz_msg_type(m) == MSG_STOP_SELF) {
		int rc = vz_stop(vz_actor_runtime(self), vz_self(self));

		/* refused once the runtime is stopping: it is stopped anyway */
		if (rc != 0 && rc != VZ_ESTOPPED)
			error_note(&other_errors, "child self-stop %ld", rc, 0);
	}
}

static void count_stop(vz_actor *self, void *state)
{
	(void)self;
	(void)state;
	atomic_fetch_add_explicit(&on_stops, 1, memory_order_relaxed);
}

static const vz_actor_spec child_spec = {
    .name = "soak-child",
    .state_size = sizeof(struct child),
    .receive = child_receive,
    .on_stop = count_stop,
};

/* ---- workers ------------------------------------------------------------ */

static int job_fn(void *arg, const void *payload, size_t payload_len, void *result,
		  size_t *result_len)
{
	uint64_t v = 0;

	(void)arg;
	if (payload_len == sizeof v)
		memcpy(&v, payload, sizeof v);
	v = mix(v);
	memcpy(result, &v, sizeof v);
	*result_len = sizeof v;
	return 0;
}

struct worker {
	uint32_t id;
	uint64_t rng;
	uint64_t uids;		    /* ids handed out */
	uint64_t next_in[SENDERS];  /* FIFO check, incoming */
	uint64_t next_out[WORKERS]; /* pair sequence, outgoing to workers */
	vz_ref child;
	uint64_t child_seq; /* pair sequence to the current child */
	bool chain_idle;    /* no MSG_GO in flight: the timer restarts it */
	vz_timer periodic;
	uint64_t period_ns;
	vz_timer oneshot;
	bool oneshot_live;	   /* armed, neither fired nor cancelled yet */
	uint64_t cancelled_ids[8]; /* recently cancelled one-shots: must not fire */
	unsigned ncancelled;
};

static uint64_t new_uid(struct worker *w)
{
	return ((uint64_t)w->id << 40) | w->uids++;
}

/* Send one counted message; the pair sequence advances only on success.
 * `expect_stale`: the target may be gone (a child). */
static int worker_send(vz_actor *self, struct worker *w, vz_ref to, uint32_t type, uint64_t *pseq,
		       bool expect_stale)
{
	struct payload p = {w->id, 0, new_uid(w), *pseq};
	int rc = vz_send(self, to, type, &p, sizeof p);

	if (rc == 0) {
		book_accepted(p.uid);
		(*pseq)++;
	} else if (rc != VZ_ESTOPPED && !(expect_stale && rc == VZ_ESTALE)) {
		error_note(&other_errors, "vz_send: %ld (type %ld)", rc, type);
	}
	return rc;
}

static void replace_child(vz_actor *self, struct worker *w)
{
	vz_runtime *rt = vz_actor_runtime(self);
	int rc = vz_stop(rt, w->child); /* immediate here; may already be gone */

	if (rc != 0 && rc != VZ_ESTALE && rc != VZ_ESTOPPED)
		error_note(&other_errors, "parent stop: %ld", rc, 0);
	rc = vz_spawn(rt, vz_actor_shard(self), &child_spec, NULL, &w->child);
	if (rc == 0) {
		atomic_fetch_add_explicit(&children_spawned, 1, memory_order_relaxed);
		w->child_seq = 0;
		/* Release: posters read it with acquire. */
		atomic_store_explicit(&child_ref[w->id], w->child.id, memory_order_release);
	} else if (rc != VZ_ESTOPPED) {
		error_note(&other_errors, "child spawn: %ld", rc, 0);
	}
}

static void timers_step(vz_actor *self, struct worker *w)
{
	uint64_t r = rnd(&w->rng);
	int rc;

	if (!w->oneshot_live && (r & 3) == 0) {
		rc = vz_timer_arm(self, 100000 + (r >> 40) % 2000000, 0, 1, &w->oneshot);
		if (rc == 0) {
			w->oneshot_live = true;
			atomic_fetch_add_explicit(&oneshot_armed, 1, memory_order_relaxed);
		} else {
			error_note(&timer_errors, "one-shot arm: %ld", rc, 0);
		}
	} else if (w->oneshot_live && (r & 3) == 1) {
		rc = vz_timer_cancel(self, w->oneshot);
		if (rc == 0) {
			w->oneshot_live = false;
			w->cancelled_ids[w->ncancelled++ % 8] = w->oneshot.id;
			atomic_fetch_add_explicit(&oneshot_cancelled, 1, memory_order_relaxed);
		} else {
			/* not delivered yet, so it must still be cancellable */
			error_note(&timer_errors, "one-shot cancel: %ld", rc, 0);
		}
	}
	if ((r >> 8) % 64 == 0) {
		/* new period: cancel and re-arm */
		rc = vz_timer_cancel(self, w->periodic);
		if (rc != 0)
			error_note(&timer_errors, "periodic cancel: %ld", rc, 0);
		w->period_ns = 500000 + (r >> 20) % 3000000;
		rc = vz_timer_arm(self, w->period_ns, w->period_ns, 2, &w->periodic);
		if (rc != 0)
			error_note(&timer_errors, "periodic re-arm: %ld", rc, 0);
	}
}

static void pool_step(vz_actor *self, struct worker *w)
{
	uint64_t uid = new_uid(w);
	vz_job job = {.fn = job_fn, .payload = &uid, .payload_len = sizeof uid, .tag = uid};
	vz_job_id id;
	int rc = vz_pool_submit(self, &job, &id);

	if (rc == 0) {
		book_accepted(uid); /* its completion is a counted message */
		if (rnd(&w->rng) % 4 == 0) {
			rc = vz_pool_cancel(self, id);
			if (rc != 0 && rc != VZ_ENOENT)
				error_note(&other_errors, "pool cancel: %ld", rc, 0);
		}
	} else if (rc != VZ_EFULL && rc != VZ_ESTOPPED && rc != VZ_ENOSYS) {
		error_note(&other_errors, "pool submit: %ld", rc, 0);
	}
}

static void burst(vz_actor *self, struct worker *w)
{
	unsigned shard = vz_actor_shard(self);

	for (int i = 0; i < BURST; i++) {
		uint64_t r = rnd(&w->rng);
		unsigned k = (unsigned)(r >> 32) % 10;
		unsigned to;

		if (k < 5) /* a worker on this shard */
			to = shard * WORKERS_PER_SHARD + (unsigned)(r >> 8) % WORKERS_PER_SHARD;
		else if (k < 9) /* any worker */
			to = (unsigned)(r >> 8) % WORKERS;
		else
			to = WORKERS; /* the child */
		if (to < WORKERS) {
			if (worker_send(self, w, worker_ref[to], MSG_DATA, &w->next_out[to],
					false) == VZ_ESTOPPED)
				return;
		} else if (!vz_ref_is_null(w->child)) {
			uint32_t type = (r & 0xff) < 3 ? MSG_STOP_SELF : MSG_DATA;

			worker_send(self, w, w->child, type, &w->child_seq, true);
		}
	}
	{
		uint64_t r = rnd(&w->rng);

		if (r % 48 == 0)
			replace_child(self, w);
		if ((r >> 8) % 24 == 0) { /* stop another worker's child: queued */
			uint64_t c = atomic_load_explicit(&child_ref[(r >> 16) % WORKERS],
							  memory_order_acquire);
			int rc = c ? vz_stop(vz_actor_runtime(self), (vz_ref){c}) : 0;

			if (rc != 0 && rc != VZ_ESTALE && rc != VZ_ESTOPPED)
				error_note(&other_errors, "remote child stop: %ld", rc, 0);
		}
		if ((r >> 24) % 8 == 0)
			timers_step(self, w);
		if ((r >> 32) % 8 == 0)
			pool_step(self, w);
	}
}

static void worker_timer(vz_actor *self, struct worker *w, const vz_msg *m)
{
	vz_timer_event ev;

	memcpy(&ev, vz_msg_data(m), sizeof ev);
	if (ev.tag == 2) {
		if (ev.timer.id != w->periodic.id)
			error_note(&timer_errors, "expiry of a cancelled periodic timer", 0, 0);
		atomic_fetch_add_explicit(&periodic_fired, 1, memory_order_relaxed);
		if (w->chain_idle && inflight() < INFLIGHT_LIMIT) {
			w->chain_idle = false;
			if (worker_send(self, w, vz_self(self), MSG_GO, &w->next_out[w->id],
					false) != 0)
				w->chain_idle = true;
		}
		return;
	}
	for (unsigned i = 0; i < 8 && i < w->ncancelled; i++)
		if (w->cancelled_ids[i] == ev.timer.id)
			error_note(&timer_errors, "a cancelled one-shot fired", 0, 0);
	if (!w->oneshot_live || ev.timer.id != w->oneshot.id) {
		error_note(&timer_errors, "unexpected one-shot expiry", 0, 0);
		return;
	}
	w->oneshot_live = false;
	atomic_fetch_add_explicit(&oneshot_fired, 1, memory_order_relaxed);
}

static void worker_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct worker *w = state;
	struct payload p;

	switch (vz_msg_type(m)) {
	case VZ_MSG_TIMER:
		worker_timer(self, w, m);
		return;
	case VZ_MSG_POOL_DONE: {
		vz_pool_done d;

		if (vz_pool_done_read(m, &d, NULL) != 0 ||
		    (d.status != 0 && d.status != VZ_ECANCELED)) {
			error_note(&other_errors, "bad completion, status %ld", d.status, 0);
			return;
		}
		atomic_fetch_add_explicit(d.status ? &jobs_cancelled : &jobs_done, 1,
					  memory_order_relaxed);
		book_handled(d.tag);
		return;
	}
	case MSG_GO:
	case MSG_DATA:
		break;
	default:
		error_note(&other_errors, "worker got type %ld", vz_msg_type(m), 0);
		return;
	}
	memcpy(&p, vz_msg_data(m), sizeof p);
	check_order(w->next_in, &p);
	book_handled(p.uid);
	if (vz_msg_type(m) != MSG_GO)
		return;
	if (p.sender == MAIN_ID) { /* the kick-off: start the periodic timer */
		int rc = vz_timer_arm(self, w->period_ns, w->period_ns, 2, &w->periodic);

		if (rc != 0)
			error_note(&timer_errors, "periodic arm: %ld", rc, 0);
	}
	burst(self, w);
	if (inflight() < INFLIGHT_LIMIT) {
		if (worker_send(self, w, vz_self(self), MSG_GO, &w->next_out[w->id], false) != 0)
			w->chain_idle = true;
	} else {
		w->chain_idle = true; /* the periodic timer restarts the chain */
	}
}

/* Workers do nothing until the test thread's first MSG_GO, posted after
 * vz_runtime_start() returned: actors that run inside the start window
 * (before the runtime is RUNNING) meet a known runtime bug, covered by
 * test_faults' test_start_window. */
static int worker_init(vz_actor *self, void *state, const void *arg)
{
	struct worker *w = state;

	(void)self;
	w->id = (uint32_t)(uintptr_t)arg;
	w->rng = mix(w->id + 1) | 1;
	w->period_ns = 1000000;
	return 0;
}

static void worker_stop(vz_actor *self, void *state)
{
	struct worker *w = state;

	(void)self;
	if (w->oneshot_live)
		atomic_fetch_add_explicit(&oneshot_pending, 1, memory_order_relaxed);
	count_stop(self, state);
}

static const vz_actor_spec worker_spec = {
    .name = "soak-worker",
    .state_size = sizeof(struct worker),
    .init = worker_init,
    .receive = worker_receive,
    .on_stop = worker_stop,
};

/* ---- foreign posters ---------------------------------------------------- */

struct poster {
	uint32_t id; /* sender id */
	uint64_t rng, uids;
	uint64_t next_out[WORKERS];
	uint64_t child_seen[WORKERS], child_seq[WORKERS];
	uint64_t posts, refused;
};

static int poster_post(struct poster *p, vz_ref to, uint64_t *pseq)
{
	struct payload pl = {p->id, 0, ((uint64_t)p->id << 40) | p->uids++, *pseq};
	int rc;

	for (;;) {
		rc = vz_post(g_rt, to, MSG_DATA, &pl, sizeof pl);
		if (rc != VZ_ENOMEM)
			break;
		/* the foreign pool at its cap: back off */
		p->refused++;
		sched_yield();
	}
	if (rc == 0) {
		book_accepted(pl.uid);
		(*pseq)++;
		p->posts++;
	} else if (rc != VZ_ESTOPPED) {
		error_note(&other_errors, "vz_post: %ld", rc, 0);
	}
	return rc;
}

static void *poster_main(void *arg)
{
	struct poster *p = arg;

	for (;;) {
		uint64_t r = rnd(&p->rng);
		unsigned w = (unsigned)(r >> 16) % WORKERS;
		int rc;

		if (inflight() > INFLIGHT_LIMIT) {
			if (atomic_load(&g_ending))
				break;
			usleep(100);
			continue;
		}
		if (r % 8 == 0) {
			/* Acquire: pairs with the parent's release store. */
			uint64_t c = atomic_load_explicit(&child_ref[w], memory_order_acquire);

			if (!c)
				continue;
			if (c != p->child_seen[w]) {
				p->child_seen[w] = c;
				p->child_seq[w] = 0;
			}
			if ((r >> 8) % 16 == 0) {
				rc = vz_stop(g_rt, (vz_ref){c});
				if (rc != 0 && rc != VZ_ESTOPPED)
					error_note(&other_errors, "foreign child stop: %ld", rc, 0);
			} else {
				rc = poster_post(p, (vz_ref){c}, &p->child_seq[w]);
			}
		} else {
			rc = poster_post(p, worker_ref[w], &p->next_out[w]);
		}
		if (rc == VZ_ESTOPPED)
			break;
	}
	return NULL;
}

/* ---- the run ------------------------------------------------------------ */

static unsigned soak_seconds(void)
{
	const char *s = getenv("VZ_SOAK_SECONDS");
	unsigned base = s && atoi(s) > 0 ? (unsigned)atoi(s) : 20;
	unsigned secs = (unsigned)vz_test_scale(base * 1000u) / 1000u;

	return secs < 2 ? 2 : secs;
}

static void test_soak(void **st)
{
	unsigned secs = soak_seconds();
	unsigned threads, fds;
	struct poster posters[POSTERS];
	pthread_t th[POSTERS];
	vz_shard_stats t;
	vz_pool_stats ps;
	uint64_t foreign, sent, end;
	vz_config cfg;

	(void)st;
	vz_test_warm_up_threads();
	threads = vz_test_count_entries("/proc/self/task");
	fds = vz_test_count_entries("/proc/self/fd");
	vz_test_watchdog(secs + 180);
	vz_test_config(&cfg, SHARDS);
	cfg.dead_letter = on_dead;
	assert_int_equal(vz_runtime_create(&cfg, &g_rt), 0);
	for (unsigned i = 0; i < WORKERS; i++)
		assert_int_equal(vz_spawn(g_rt, i / WORKERS_PER_SHARD, &worker_spec,
					  (void *)(uintptr_t)i, &worker_ref[i]),
				 0);
	assert_int_equal(vz_runtime_start(g_rt), 0);
	for (unsigned i = 0; i < WORKERS; i++) {
		struct payload p = {MAIN_ID, 0, ((uint64_t)MAIN_ID << 40) | i, 0};

		book_accepted(p.uid);
		assert_int_equal(vz_post(g_rt, worker_ref[i], MSG_GO, &p, sizeof p), 0);
	}
	memset(posters, 0, sizeof posters);
	for (unsigned i = 0; i < POSTERS; i++) {
		posters[i].id = WORKERS + i;
		posters[i].rng = mix(1000 + i) | 1;
		assert_int_equal(pthread_create(&th[i], NULL, poster_main, &posters[i]), 0);
	}
	end = vz_test_now_ns() + (uint64_t)secs * 1000000000u;
	while (vz_test_now_ns() < end) {
		usleep(50000);
		if (atomic_load(&other_errors) || atomic_load(&order_errors) ||
		    atomic_load(&timer_errors))
			break;
	}
	/* Stop with traffic flowing, posters still posting. */
	assert_int_equal(vz_runtime_stop(g_rt), 0);
	atomic_store(&g_ending, 1);
	for (unsigned i = 0; i < POSTERS; i++)
		pthread_join(th[i], NULL);

	assert_int_equal(vz_stats_total(g_rt, &t, &foreign), 0);
	sent = t.sent_local + t.sent_remote + foreign;
	print_message("soak %u s: sent %llu (local %llu, remote %llu, foreign %llu), handled %llu, "
		      "dead %llu; ring_full %llu, spawned %llu, timers fired %llu; one-shots "
		      "armed %lu fired %lu cancelled %lu pending %lu; periodic %lu; jobs done %lu "
		      "cancelled %lu\n",
		      secs, (unsigned long long)sent, (unsigned long long)t.sent_local,
		      (unsigned long long)t.sent_remote, (unsigned long long)foreign,
		      (unsigned long long)t.handled, (unsigned long long)t.dead_letters,
		      (unsigned long long)t.ring_full, (unsigned long long)t.actors_spawned,
		      (unsigned long long)t.timers_fired, atomic_load(&oneshot_armed),
		      atomic_load(&oneshot_fired), atomic_load(&oneshot_cancelled),
		      atomic_load(&oneshot_pending), atomic_load(&periodic_fired),
		      atomic_load(&jobs_done), atomic_load(&jobs_cancelled));
	if (atomic_load(&other_errors) + atomic_load(&order_errors) + atomic_load(&timer_errors))
		fail_msg("errors: %lu other, %lu order, %lu timer; first: %s",
			 atomic_load(&other_errors), atomic_load(&order_errors),
			 atomic_load(&timer_errors), first_error);
	/* the runtime's books */
	assert_int_equal(sent, t.handled + t.dead_letters);
	assert_int_equal(t.dead_letters, atomic_load(&dead));
	assert_int_equal(t.actors_live, 0);
	assert_int_equal(t.actors_spawned, t.actors_stopped);
	assert_int_equal(t.actors_spawned, WORKERS + atomic_load(&children_spawned));
	/* the test's books: each accepted message handled or dead, once */
	assert_int_equal(atomic_load(&accepted), atomic_load(&handled) + atomic_load(&dead));
	assert_int_equal(atomic_load(&accepted_hash),
			 atomic_load(&handled_hash) + atomic_load(&dead_hash));
	assert_int_equal(t.handled, atomic_load(&handled));
	assert_int_equal(atomic_load(&on_stops), t.actors_spawned);
	/* timers: each armed one-shot fired, was cancelled, or was pending at
	 * stop */
	assert_int_equal(atomic_load(&oneshot_armed), atomic_load(&oneshot_fired) +
							  atomic_load(&oneshot_cancelled) +
							  atomic_load(&oneshot_pending));
	/* the workload did what it says */
	assert_true(t.sent_local > 0 && t.sent_remote > 0 && foreign > 0);
	assert_true(atomic_load(&children_spawned) > 0);
	assert_true(atomic_load(&oneshot_fired) > 0 && atomic_load(&oneshot_cancelled) > 0);
	assert_true(atomic_load(&periodic_fired) > 0);
	if (vz_stats_pool(g_rt, 0, &ps) == 0) {
		assert_true(atomic_load(&jobs_done) > 0);
		assert_int_equal(ps.post_failures, 0);
	}
	assert_int_equal(vz_runtime_destroy(g_rt), 0);
	assert_int_equal(vz_test_threads_settle(threads, 10), threads);
	assert_int_equal(vz_test_count_entries("/proc/self/fd"), fds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_soak),
	};

	vz_test_watchdog(600);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
