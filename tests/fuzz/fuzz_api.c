// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the public API. The input bytes are a program of
 * public calls on a fresh one-shard runtime whose shard is `embedded`: the
 * fuzzer's thread drives it with vz_shard_poll(), so everything runs on one
 * thread and a crash replays from its input (timers with a zero delay or a
 * 1 ms period are the only dependence on the clock).
 *
 * Calls from the fuzzer thread: start, spawn, post (good, stale, forged and
 * null references, reserved types, payloads up to one byte over the
 * maximum), stop an actor, poll, drain, stop the runtime, arm an
 * out-of-memory fault. Calls from inside actors, carried by command
 * messages: send, reply, forward a command, arm and cancel timers, stop
 * itself or another actor, spawn, submit to the (absent) worker pool,
 * lifecycle calls a shard thread may not make, monitor and demonitor, link,
 * trap exits, fail, and ask (a forwarded command with a deadline, which
 * the receiver may answer with vz_reply()).
 *
 * A model follows the program and predicts each return code exactly where
 * the contract fixes it (a set of documented codes elsewhere), which actors
 * are alive, and how many messages every bounded mailbox holds. After every
 * step: the runtime's live-actor count matches the model, and no stopped
 * actor ever ran receive. After every drain and at the end: sent = handled +
 * dead-lettered, and every message the program saw accepted was handled or
 * given to the dead-letter hook exactly once. Lifecycle: a DOWN comes only
 * for a monitor its receiver made and still holds, at most once and never
 * after vz_demonitor(); an ask gets at most one answer (reply or timeout),
 * and a reply that comes after its timeout is a dead letter (VZ_ETIMEDOUT). The runtime is stopped
 * and destroyed per input; LeakSanitizer checks that nothing is left.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <veloz.h>

#include "util/fault.h"

#define NSLOTS		16
#define MAX_ACTORS	2048 /* spawns beyond are skipped */
#define MAX_DRAIN_POLLS 100000

enum {
	MSG_DATA = VZ_MSG_USER,
	MSG_CMD,  /* payload: command bytes (see run_command) */
	MSG_PONG, /* a reply */
};

/* ---- input -------------------------------------------------------------- */

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t take8(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t take64(struct input *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | take8(in);
	return v;
}

/* ---- the model ---------------------------------------------------------- */

/* Every actor the program spawned, by model id (1, 2, ...; 0 is "none"). */
struct slot {
	vz_ref ref;	  /* null: never spawned */
	bool live;	  /* spawned, on_stop not yet run */
	uint32_t limit;	  /* mailbox limit, 0 = unbounded */
	uint32_t pending; /* accepted messages not yet handled or dead-lettered */
};

static struct {
	vz_runtime *rt;
	struct slot actors[MAX_ACTORS];
	uint32_t slot_mid[NSLOTS]; /* the actors the program names by number */
	uint32_t next_mid;
	bool started, stopped;
	bool fault_armed;
	uint64_t inits_ok, on_stops;
	uint64_t accepted, observed, dead;
} M;

static unsigned char big[VZ_MSG_MAX_PAYLOAD + 1];

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_api: %s:%d: check failed: %s: ", __FILE__, __LINE__, \
				#cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static int trace = -1; /* FUZZ_API_TRACE=1: print every checked call */

static void trace_call(const char *what, int rc)
{
	if (trace < 0)
		trace = getenv("FUZZ_API_TRACE") != NULL;
	if (trace)
		fprintf(stderr, "  %s -> %s\n", what, vz_errname(rc));
}

/* rc is `want`, or (with the fault armed and `may_oom`) VZ_ENOMEM. */
static void expect(const char *what, int rc, int want, bool may_oom)
{
	trace_call(what, rc);
	if (rc == want || (may_oom && M.fault_armed && rc == VZ_ENOMEM))
		return;
	CHECK(0, "%s returned %s, the model predicts %s", what, vz_errname(rc), vz_errname(want));
}

/* rc is one of the n codes in `ok` (or VZ_ENOMEM with the fault armed). */
static void expect_in(const char *what, int rc, const int *ok, size_t n)
{
	trace_call(what, rc);
	for (size_t i = 0; i < n; i++)
		if (rc == ok[i])
			return;
	if (M.fault_armed && rc == VZ_ENOMEM)
		return;
	CHECK(0, "%s returned %s, not a documented code here", what, vz_errname(rc));
}

/* The actor a reference names (live or not), or NULL when it names none
 * the program spawned. */
static struct slot *slot_of_ref(vz_ref r)
{
	if (vz_ref_is_null(r))
		return NULL;
	for (uint32_t i = 1; i <= M.next_mid; i++)
		if (vz_ref_eq(M.actors[i].ref, r))
			return &M.actors[i];
	return NULL;
}

static struct slot *slot_of_mid(uint32_t mid)
{
	return mid && mid <= M.next_mid ? &M.actors[mid] : NULL;
}

/* ---- actors ------------------------------------------------------------- */

struct fa {
	uint32_t mid;
	vz_timer timers[4];
	uint64_t mons[4]; /* monitors this actor made, for demonitor */
};

/* Monitors and asks the program made, for the at-most-once checks. */
#define MAX_MONS 512
#define MAX_ASKS 512
static struct {
	struct {
		uint32_t mid;
		uint64_t id;
		bool active;
	} mon[MAX_MONS];
	unsigned nmon;
	struct {
		uint32_t mid;
		uint32_t corr;
		bool pending;
	} ask[MAX_ASKS];
	unsigned nask;
} LM;

static void down_seen(uint32_t mid, uint64_t id)
{
	for (unsigned i = 0; i < LM.nmon; i++)
		if (LM.mon[i].id == id) {
			CHECK(LM.mon[i].mid == mid, "DOWN %llu to the wrong actor",
			      (unsigned long long)id);
			CHECK(LM.mon[i].active, "DOWN %llu twice or after demonitor",
			      (unsigned long long)id);
			LM.mon[i].active = false;
			return;
		}
	CHECK(LM.nmon == MAX_MONS, "DOWN for unknown monitor %llu", (unsigned long long)id);
}

static void answer_seen(uint32_t mid, uint32_t corr, const char *what)
{
	for (unsigned i = 0; i < LM.nask; i++)
		if (LM.ask[i].mid == mid && LM.ask[i].corr == corr) {
			CHECK(LM.ask[i].pending, "second answer (%s) to ask %u of actor %u", what,
			      corr, mid);
			LM.ask[i].pending = false;
			return;
		}
	CHECK(LM.nask == MAX_ASKS, "%s for unknown ask %u of actor %u", what, corr, mid);
}

struct spawn_req {
	uint32_t mid;
	bool fail;
};

static int fa_init(vz_actor *self, void *state, const void *arg)
{
	const struct spawn_req *r = arg;
	struct fa *a = state;

	(void)self;
	if (r->fail)
		return VZ_ENOENT;
	a->mid = r->mid;
	M.inits_ok++;
	/* the spawner fills in a bounded spec's limit after vz_spawn() */
	M.actors[r->mid] = (struct slot){vz_self(self), true, 0, 0};
	return 0;
}

static void fa_stop(vz_actor *self, void *state)
{
	struct fa *a = state;
	struct slot *s = slot_of_mid(a->mid);

	(void)self;
	M.on_stops++;
	if (s) {
		CHECK(s->live, "on_stop twice for actor %u", a->mid);
		s->live = false;
	}
}

static void run_command(vz_actor *self, struct fa *a, const vz_msg *m, struct input *in);

static void fa_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct fa *a = state;
	struct slot *s = slot_of_mid(a->mid);
	uint32_t type = vz_msg_type(m);

	CHECK(!s || s->live, "a stopped actor (%u) ran receive", a->mid);
	if (type == VZ_MSG_TIMER) /* not counted in sent/handled */
		return;
	/* lifecycle messages: runtime-made, not counted either */
	if (type == VZ_MSG_DOWN) {
		const vz_down *d = vz_msg_data(m);

		down_seen(a->mid, d->mon.id);
		return;
	}
	if (type == VZ_MSG_TIMEOUT) {
		answer_seen(a->mid, vz_msg_corr(m), "timeout");
		return;
	}
	if (type == VZ_MSG_SPAWNED) {
		const vz_spawned *sp = vz_msg_data(m);

		CHECK(sp->rc == 0 || sp->rc == VZ_ENOENT || (M.fault_armed && sp->rc == VZ_ENOMEM),
		      "spawn result %s", vz_errname(sp->rc));
		CHECK((sp->rc == 0) == !vz_ref_is_null(sp->actor), "spawn result and reference");
		return;
	}
	if (type == VZ_MSG_EXIT)
		return;
	if (type == MSG_PONG && vz_msg_corr(m))
		answer_seen(a->mid, vz_msg_corr(m), "reply");
	CHECK(type >= VZ_MSG_USER, "unexpected type %u", type);
	M.observed++;
	if (type == MSG_CMD) {
		struct input in = {vz_msg_data(m), vz_msg_len(m)};

		run_command(self, a, m, &in);
	}
	/* the runtime gives the bounded-mailbox count back when we return
	 * (the command may have given our slot to a new actor: look again) */
	s = slot_of_mid(a->mid);
	if (s && s->limit)
		s->pending--;
}

static void on_dead(void *ctx, uint64_t to, uint32_t type, const void *data, size_t len, int reason)
{
	struct slot *s = slot_of_ref((vz_ref){to});

	(void)ctx;
	(void)data;
	(void)len;
	CHECK(reason == VZ_ESTALE || reason == VZ_ESTOPPED ||
		  (reason == VZ_ETIMEDOUT && type == MSG_PONG),
	      "dead-letter reason %s (type %u)", vz_errname(reason), type);
	CHECK(type >= VZ_MSG_USER, "dead letter of type %u", type);
	M.dead++;
	if (s && s->limit && s->pending)
		s->pending--;
}

static const vz_actor_spec spec_plain = {
    .name = "fuzz",
    .state_size = sizeof(struct fa),
    .init = fa_init,
    .receive = fa_receive,
    .on_stop = fa_stop,
};
static vz_actor_spec spec_bounded[3];

/* Spawn per the model: kind picks plain, bounded (limit 1..3) or failing
 * init; the new actor goes to slot j. `inside`: from an actor. */
static void do_spawn(unsigned j, uint8_t kind, bool inside)
{
	const vz_actor_spec *spec = &spec_plain;
	struct spawn_req req = {M.next_mid + 1, (kind & 7) == 7};
	uint32_t limit = 0;
	vz_ref r = VZ_REF_NULL;
	int rc;

	if (M.next_mid + 1 >= MAX_ACTORS)
		return;
	if ((kind & 7) >= 4 && (kind & 7) < 7) {
		limit = (kind & 7) - 3;
		spec = &spec_bounded[limit - 1];
	}
	rc = vz_spawn(M.rt, 0, spec, &req, &r);
	if (M.stopped) {
		expect("vz_spawn after stop", rc, VZ_ESTOPPED, false);
		return;
	}
	if (M.started && !inside) {
		/* The embedder's thread may spawn on its embedded shard
		 * after start once it drives it (first vz_shard_poll());
		 * before that it is refused. Init may fail as asked. */
		const int ok[] = {VZ_EWRONGTHREAD, req.fail ? VZ_ENOENT : 0};

		expect_in("vz_spawn from the driving thread", rc, ok, 2);
		if (rc != 0)
			return;
	} else {
		expect("vz_spawn", rc, req.fail ? VZ_ENOENT : 0, true);
	}
	if (rc != 0) {
		CHECK(vz_ref_is_null(r), "failed spawn wrote a reference");
		return;
	}
	M.next_mid = req.mid;
	M.actors[req.mid] = (struct slot){r, true, limit, 0};
	M.slot_mid[j] = req.mid;
}

/* Predict a send or post to `to` that passed the argument checks. */
static int predict_target(vz_ref to, bool foreign)
{
	struct slot *s = slot_of_ref(to);

	if (s && s->live)
		return s->limit && s->pending >= s->limit ? VZ_EFULL : 0;
	/* gone: refused on its own shard, accepted (then dead) from outside */
	return foreign ? 0 : VZ_ESTALE;
}

static void note_accepted(vz_ref to)
{
	struct slot *s = slot_of_ref(to);

	M.accepted++;
	if (s && s->live && s->limit)
		s->pending++;
}

static uint32_t pick_type(uint8_t b)
{
	return (b & 15) == 0 ? (uint32_t)(b >> 4) : MSG_DATA; /* < VZ_MSG_USER */
}

static size_t pick_len(uint8_t b)
{
	static const size_t lens[] = {
	    0, 1, 16, 17, 100, 1000, 4096, VZ_MSG_MAX_PAYLOAD, VZ_MSG_MAX_PAYLOAD + 1};

	return lens[b % (sizeof lens / sizeof lens[0])];
}

static int predict_args(vz_ref to, uint32_t type, size_t len)
{
	if (type < VZ_MSG_USER)
		return VZ_EINVAL;
	if (len > VZ_MSG_MAX_PAYLOAD)
		return VZ_ETOOBIG;
	if (vz_ref_is_null(to))
		return VZ_ESTALE;
	if (vz_ref_shard(to) != 0)
		return VZ_ENOSHARD;
	return 1; /* no argument error */
}

static int predict_post(vz_ref to, uint32_t type, size_t len)
{
	int p = predict_args(to, type, len);

	if (p <= 0)
		return p;
	if (!M.started)
		return VZ_ESTATE;
	if (M.stopped)
		return VZ_ESTOPPED;
	return predict_target(to, true);
}

static vz_ref slot_ref(uint8_t b)
{
	return M.actors[M.slot_mid[b % NSLOTS]].ref;
}

static int job_fn(void *arg, const void *payload, size_t payload_len, void *result,
		  size_t *result_len)
{
	(void)arg;
	(void)payload;
	(void)payload_len;
	(void)result;
	*result_len = 0;
	return 0;
}

/* One command inside an actor. Command bytes: op, then arguments. */
static void run_command(vz_actor *self, struct fa *a, const vz_msg *m, struct input *in)
{
	vz_runtime *rt = vz_actor_runtime(self);
	uint8_t op = take8(in);
	int rc;

	if (trace > 0)
		fprintf(stderr, " command %u in actor %u\n", op % 18, a->mid);
	switch (op % 18) {
	case 0: { /* send */
		vz_ref to = slot_ref(take8(in));
		uint32_t type = pick_type(take8(in));
		size_t len = pick_len(take8(in));
		int want = predict_args(to, type, len);

		if (want > 0)
			want = predict_target(to, false);
		rc = vz_send(self, to, type, big, len);
		expect("vz_send", rc, want, true);
		if (rc == 0)
			note_accepted(to);
		break;
	}
	case 1: { /* reply: to the forwarder, or refused for a post */
		vz_ref to = vz_msg_sender(m);
		int want = vz_ref_is_null(to) ? VZ_EINVAL : predict_target(to, false);

		rc = vz_reply(self, m, MSG_PONG, big, 8);
		expect("vz_reply", rc, want, true);
		if (rc == 0)
			note_accepted(to);
		break;
	}
	case 2: { /* forward the rest of the command to another actor */
		vz_ref to = slot_ref(take8(in));
		int want = predict_args(to, MSG_CMD, in->n);

		if (want > 0)
			want = predict_target(to, false);
		rc = vz_send(self, to, MSG_CMD, in->n ? in->p : NULL, in->n);
		expect("vz_send(command)", rc, want, true);
		if (rc == 0)
			note_accepted(to);
		in->n = 0;
		break;
	}
	case 3: { /* arm a timer */
		uint8_t b = take8(in);
		static const uint64_t delays[] = {0, 1000000, 3600000000000ull};
		uint64_t delay = delays[b % 3], period = b & 4 ? delays[1 + (b >> 3) % 2] : 0;

		rc = vz_timer_arm(self, delay, period, b, &a->timers[(b >> 4) % 4]);
		expect("vz_timer_arm", rc, 0, true);
		break;
	}
	case 4: { /* cancel a timer (maybe never armed, maybe fired) */
		const int ok[] = {0, VZ_ESTALE};

		rc = vz_timer_cancel(self, a->timers[take8(in) % 4]);
		expect_in("vz_timer_cancel", rc, ok, 2);
		break;
	}
	case 5: { /* stop self or another actor: immediate on this shard */
		vz_ref to = slot_ref(take8(in));
		struct slot *s = slot_of_ref(to);
		bool self_stop = vz_ref_eq(to, vz_self(self));
		int want = vz_ref_is_null(to) ? VZ_ESTALE : (s && s->live) ? 0 : VZ_ESTALE;

		rc = vz_stop(rt, to);
		expect("vz_stop (inside)", rc, self_stop ? 0 : want, false);
		break;
	}
	case 6: { /* spawn on our own shard */
		uint8_t j = take8(in);

		do_spawn(j % NSLOTS, take8(in), true);
		break;
	}
	case 7: { /* the pool: this runtime has none */
		vz_job job = {.fn = job_fn};

		expect("vz_pool_submit", vz_pool_submit(self, &job, NULL), VZ_ENOSYS, false);
		{
			const int ok[] = {VZ_ENOENT, VZ_ENOSYS};

			rc = vz_pool_cancel(self, (vz_job_id){take64(in) | 1});
			expect_in("vz_pool_cancel", rc, ok, 2);
		}
		break;
	}
	case 8: /* lifecycle calls a shard thread may not make */
		expect("vz_runtime_stop (inside)", vz_runtime_stop(rt), VZ_EWRONGTHREAD, false);
		expect("vz_runtime_destroy (inside)", vz_runtime_destroy(rt), VZ_EWRONGTHREAD,
		       false);
		expect("vz_runtime_start (inside)", vz_runtime_start(rt), VZ_ESTATE, false);
		break;
	case 9: { /* a forged reference from inside */
		vz_ref to = {take64(in)};
		int want = predict_args(to, MSG_DATA, 0);

		rc = vz_send(self, to, MSG_DATA, NULL, 0);
		expect("vz_send(forged)", rc, want > 0 ? predict_target(to, false) : want, true);
		if (rc == 0)
			note_accepted(to);
		break;
	}
	case 10: { /* monitor (a stale target: DOWN at once) */
		vz_ref to = slot_ref(take8(in));
		vz_monitor_ref mon = {0};

		rc = vz_monitor(self, to, &mon);
		expect("vz_monitor", rc, vz_ref_is_null(to) ? VZ_ESTALE : 0, true);
		if (rc == 0) {
			a->mons[mon.id % 4] = mon.id;
			if (LM.nmon < MAX_MONS) {
				LM.mon[LM.nmon].mid = a->mid;
				LM.mon[LM.nmon].id = mon.id;
				LM.mon[LM.nmon++].active = true;
			}
		}
		break;
	}
	case 11: { /* demonitor: idempotent, drops a queued DOWN */
		uint64_t id = a->mons[take8(in) % 4];

		expect("vz_demonitor", vz_demonitor(self, (vz_monitor_ref){id}), 0, false);
		for (unsigned i = 0; i < LM.nmon; i++)
			if (LM.mon[i].id == id && LM.mon[i].mid == a->mid)
				LM.mon[i].active = false;
		break;
	}
	case 12: { /* link (a stale target: an exit signal at once) */
		vz_ref to = slot_ref(take8(in));
		int want = vz_ref_is_null(to)		  ? VZ_ESTALE
			   : vz_ref_eq(to, vz_self(self)) ? VZ_EINVAL
							  : 0;

		expect("vz_link", vz_link(self, to), want, true);
		break;
	}
	case 13: /* trap exits, or stop trapping */
		expect("vz_trap_exits", vz_trap_exits(self, take8(in) & 1), 0, false);
		break;
	case 14: /* fail: ends after this receive; links and watchers hear */
		expect("vz_fail", vz_fail(self, (int32_t)take8(in), "fuzz"), 0, false);
		break;
	case 15: { /* ask: the rest of the command, forwarded with a deadline */
		vz_ref to = slot_ref(take8(in));
		uint64_t timeout = take8(in) & 1 ? 1000000 : 0;
		int want = predict_args(to, MSG_CMD, in->n);
		uint32_t corr = 0;

		if (want > 0)
			want = predict_target(to, false);
		rc = vz_ask(self, to, MSG_CMD, in->n ? in->p : NULL, in->n, timeout, &corr);
		expect("vz_ask", rc, want, true);
		if (rc == 0) {
			note_accepted(to);
			CHECK(corr != 0, "ask id 0");
			if (LM.nask < MAX_ASKS) {
				LM.ask[LM.nask].mid = a->mid;
				LM.ask[LM.nask].corr = corr;
				LM.ask[LM.nask++].pending = true;
			}
		}
		in->n = 0;
		break;
	}
	case 16: { /* vz_spawn_on() here: init runs now, the result comes as mail */
		unsigned j = take8(in) % NSLOTS;
		struct spawn_req req = {M.next_mid + 1, take8(in) & 1};

		if (M.next_mid + 1 >= MAX_ACTORS)
			break;
		rc = vz_spawn_on(self, VZ_SHARD_HERE, &spec_plain, &req, sizeof req, req.mid);
		expect("vz_spawn_on", rc, 0, true);
		if (rc == 0 && !req.fail && M.actors[req.mid].live &&
		    !vz_ref_is_null(M.actors[req.mid].ref)) {
			M.next_mid = req.mid;
			M.slot_mid[j] = req.mid;
		}
		break;
	}
	case 17: { /* vz_spawn_on() to a shard this runtime lacks */
		struct spawn_req req = {0, false};

		rc = vz_spawn_on(self, 1 + take8(in), &spec_plain, &req, sizeof req, 0);
		expect("vz_spawn_on(no shard)", rc, VZ_ENOSHARD, false);
		break;
	}
	}
}

/* ---- fuzzer-thread steps -------------------------------------------------- */

static void check_live(void)
{
	vz_shard_stats st;

	CHECK(vz_stats_shard(M.rt, 0, &st) == 0, "stats");
	CHECK(st.actors_live == M.inits_ok - M.on_stops, "live %llu, model %llu",
	      (unsigned long long)st.actors_live, (unsigned long long)(M.inits_ok - M.on_stops));
}

static void check_books(void)
{
	vz_shard_stats t;
	uint64_t foreign;

	CHECK(vz_stats_total(M.rt, &t, &foreign) == 0, "stats");
	CHECK(t.sent_local + t.sent_remote + foreign == t.handled + t.dead_letters,
	      "sent %llu != handled %llu + dead %llu",
	      (unsigned long long)(t.sent_local + t.sent_remote + foreign),
	      (unsigned long long)t.handled, (unsigned long long)t.dead_letters);
	CHECK(t.dead_letters == M.dead, "dead %llu, hook %llu", (unsigned long long)t.dead_letters,
	      (unsigned long long)M.dead);
	/* While slab refills are made to fail, a post a thread's lane
	 * accepted may wait there for memory (lanes.c): not yet handled,
	 * not lost. Once the fault is off, every accepted message is
	 * handled or dead-lettered. */
	if (M.fault_armed)
		CHECK(M.accepted >= M.observed + M.dead, "accepted %llu < handled %llu + dead %llu",
		      (unsigned long long)M.accepted, (unsigned long long)M.observed,
		      (unsigned long long)M.dead);
	else
		CHECK(M.accepted == M.observed + M.dead,
		      "accepted %llu != handled %llu + dead %llu", (unsigned long long)M.accepted,
		      (unsigned long long)M.observed, (unsigned long long)M.dead);
}

static void drain(void)
{
	int rc = 1, polls = 0;

	if (!M.started || M.stopped)
		return;
	while (rc > 0) {
		rc = vz_shard_poll(M.rt, 0, 0);
		CHECK(rc >= 0, "vz_shard_poll: %s", vz_errname(rc));
		CHECK(++polls < MAX_DRAIN_POLLS, "no quiescence after %d polls", polls);
	}
	check_books();
}

static void stop_runtime(void)
{
	int rc = vz_runtime_stop(M.rt);

	if (!M.started || M.stopped) {
		expect("vz_runtime_stop", rc, VZ_ESTATE, false);
		return;
	}
	expect("vz_runtime_stop", rc, 0, false);
	M.stopped = true;
	check_books();
	CHECK(M.inits_ok == M.on_stops, "%llu actors spawned, %llu on_stop",
	      (unsigned long long)M.inits_ok, (unsigned long long)M.on_stops);
	expect("vz_shard_poll after stop", vz_shard_poll(M.rt, 0, 0), VZ_ESTOPPED, false);
}

static void step(struct input *in)
{
	uint8_t op = take8(in);
	int rc;

	if (trace > 0)
		fprintf(stderr, "step %u\n", op % 12);
	switch (op % 12) {
	case 0: /* start */
		rc = vz_runtime_start(M.rt);
		expect("vz_runtime_start", rc, M.started ? VZ_ESTATE : 0, false);
		M.started = true;
		break;
	case 1: { /* spawn from this thread */
		uint8_t j = take8(in);

		do_spawn(j % NSLOTS, take8(in), false);
		break;
	}
	case 2:	  /* post data */
	case 3: { /* post a command */
		vz_ref to = slot_ref(take8(in));
		bool cmd = op % 12 == 3;
		uint32_t type = cmd ? MSG_CMD : pick_type(take8(in));
		size_t len = cmd ? (size_t)take8(in) % 24 : pick_len(take8(in));
		const void *data = big;
		int want;

		if (cmd) {
			len = len < in->n ? len : in->n;
			data = len ? in->p : NULL;
		}
		want = predict_post(to, type, len);
		rc = vz_post(M.rt, to, type, data, len);
		expect("vz_post", rc, want, true);
		if (rc == 0)
			note_accepted(to);
		if (cmd) {
			in->p += len;
			in->n -= len;
		}
		break;
	}
	case 4: { /* stop an actor from this thread */
		vz_ref to = slot_ref(take8(in));
		struct slot *s = slot_of_ref(to);
		int want;

		if (vz_ref_is_null(to))
			want = VZ_ESTALE;
		else if (M.stopped)
			want = VZ_ESTOPPED;
		else if (M.started)
			want = 0; /* a request, queued */
		else
			want = s && s->live ? 0 : VZ_ESTALE;
		rc = vz_stop(M.rt, to);
		expect("vz_stop", rc, want, true);
		break;
	}
	case 5: { /* poll a few turns */
		unsigned n = take8(in) % 8;

		for (unsigned i = 0; i < n; i++) {
			rc = vz_shard_poll(M.rt, 0, 0);
			if (!M.started)
				expect("vz_shard_poll before start", rc, VZ_ESTATE, false);
			else if (M.stopped)
				expect("vz_shard_poll after stop", rc, VZ_ESTOPPED, false);
			else
				CHECK(rc >= 0, "vz_shard_poll: %s", vz_errname(rc));
		}
		break;
	}
	case 6:
		drain();
		break;
	case 7: { /* forged reference from outside */
		vz_ref to = {take64(in)};
		int want = predict_post(to, MSG_DATA, 0);
		struct slot *s = slot_of_ref(to);
		bool was_live;

		rc = vz_post(M.rt, to, MSG_DATA, NULL, 0);
		expect("vz_post(forged)", rc, want, true);
		if (rc == 0)
			note_accepted(to);
		was_live = s && s->live; /* an immediate stop changes it */
		rc = vz_stop(M.rt, to);
		if (vz_ref_is_null(to)) {
			expect("vz_stop(forged)", rc, VZ_ESTALE, false);
		} else if (vz_ref_shard(to) != 0) {
			expect("vz_stop(forged)", rc, VZ_ENOSHARD, false);
		} else if (M.stopped) {
			expect("vz_stop(forged)", rc, VZ_ESTOPPED, false);
		} else if (M.started) {
			expect("vz_stop(forged)", rc, 0, true); /* a queued request */
		} else {
			expect("vz_stop(forged)", rc, was_live ? 0 : VZ_ESTALE, false);
		}
		break;
	}
	case 8: { /* out of memory for the next few slab allocations */
		uint8_t b = take8(in);

		vz__fault_arm(VZ_FAULT_POOL_REFILL, b % 4, 1 + (b >> 2) % 3);
		M.fault_armed = true;
		break;
	}
	case 9:
		vz__fault_disarm_all();
		M.fault_armed = false;
		break;
	case 10:
		stop_runtime();
		break;
	case 11: { /* queries */
		vz_shard_stats st;
		unsigned shard = take8(in) % 2;

		expect("vz_stats_shard", vz_stats_shard(M.rt, shard, &st), shard ? VZ_ENOSHARD : 0,
		       false);
		CHECK(vz_current_shard(M.rt) == -1, "current shard outside poll");
		break;
	}
	}
	check_live();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	vz_config cfg;
	int rc;

	memset(&M, 0, sizeof M);
	memset(&LM, 0, sizeof LM);
	vz__fault_disarm_all();
	for (unsigned i = 0; i < 3; i++) {
		spec_bounded[i] = spec_plain;
		spec_bounded[i].mailbox_limit = i + 1;
	}
	vz_config_default(&cfg);
	cfg.nshards = 1;
	cfg.shards[0].embedded = true;
	cfg.shards[0].cpu = 0;
	cfg.backend = VZ_BACKEND_EPOLL; /* no io_uring probe per input */
	cfg.idle_policy = VZ_IDLE_SLEEP;
	/* One declared CPU, used by the shard: the worker pool has nowhere to
	 * run, so there is none (vz_pool_submit gives VZ_ENOSYS). */
	cfg.topology.nnodes = 1;
	vz_cpuset_zero(&cfg.topology.node_cpus[0]);
	vz_cpuset_set(&cfg.topology.node_cpus[0], 0);
	cfg.pool.share_shard_cpus = false;
	cfg.dead_letter = on_dead;
	rc = vz_runtime_create(&cfg, &M.rt);
	CHECK(rc == 0, "vz_runtime_create: %s", vz_errname(rc));
	CHECK(vz_pool_nodes(M.rt, NULL, 0) == 0, "a pool exists");

	while (in.n)
		step(&in);

	vz__fault_disarm_all();
	M.fault_armed = false;
	if (M.started && !M.stopped) {
		drain();
		stop_runtime();
	}
	check_books();
	rc = vz_runtime_destroy(M.rt);
	CHECK(rc == 0, "vz_runtime_destroy: %s", vz_errname(rc));
	CHECK(M.inits_ok == M.on_stops, "%llu actors spawned, %llu on_stop after destroy",
	      (unsigned long long)M.inits_ok, (unsigned long long)M.on_stops);
	return 0;
}
