// SPDX-License-Identifier: MIT
/*
 * The feed: a synthetic market-data source. A periodic timer (feed_period,
 * 100 us by default) emits the ticks owed at the configured rate since the
 * previous expiry; each tick moves one random symbol's price by -1, 0 or +1
 * and goes to the strategy that owns the symbol (pipeline_owner()), on
 * whatever shard that is. A send refused by back-pressure (VZ_EFULL: the
 * ring to that shard is full and its outbox at its limit) is counted and
 * the tick dropped, as a real feed handler drops what its consumers cannot
 * take; so is a tick for a strategy its supervisor is restarting. The
 * price walk goes on.
 */
#include <stdlib.h>

#include "pipeline.h"

#define MAX_BURST 8192 /* ticks per expiry; more than that is not owed, it is lost */

struct feed {
	struct pipeline *p;
	int32_t *price; /* per symbol */
	uint64_t seq;
	uint64_t rng;
	uint64_t last_ns;
	double owed;
};

static uint64_t next_random(uint64_t *s)
{
	/* xorshift64*: enough for a price walk */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static int feed_init(vz_actor *self, void *state, const void *arg)
{
	struct feed *f = state;

	f->p = (struct pipeline *)arg;
	f->price = malloc(f->p->symbols * sizeof *f->price);
	if (!f->price)
		return VZ_ENOMEM;
	for (uint32_t s = 0; s < f->p->symbols; s++)
		f->price[s] = 10000;
	f->rng = 0x9e3779b97f4a7c15ull;
	f->last_ns = vz_now_ns(self);
	return vz_timer_arm(self, f->p->feed_period_ns, f->p->feed_period_ns, 0, NULL);
}

static void emit(vz_actor *self, struct feed *f, uint64_t now_ns, uint64_t n)
{
	uint64_t sent = 0, refused = 0, unrouted = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t r = next_random(&f->rng);
		struct tick t = {
		    .symbol = (uint32_t)(r % f->p->symbols),
		    .seq = ++f->seq,
		    .t_ns = now_ns,
		};
		int rc;

		f->price[t.symbol] += (int32_t)((r >> 32) % 3) - 1;
		t.price = f->price[t.symbol];
		/* The owner's current incarnation: null while the
		 * supervisor restarts it, and a reference read just before
		 * a restart is refused (VZ_ESTALE) or dead-lettered. */
		rc = vz_send(self,
			     vz_sup_name_ref(&f->p->strategies[pipeline_owner(f->p, t.symbol)]),
			     MSG_TICK, &t, sizeof t);
		if (rc == 0)
			sent++;
		else if (rc == VZ_EFULL)
			refused++;
		else if (rc == VZ_ESTALE)
			unrouted++;
	}
	live_add(&f->p->live.ticks, sent);
	if (refused)
		live_add(&f->p->live.ticks_refused, refused);
	if (unrouted)
		live_add(&f->p->live.ticks_unrouted, unrouted);
}

static void feed_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct feed *f = state;
	const vz_timer_event *ev;
	uint64_t n;

	if (vz_msg_type(m) != VZ_MSG_TIMER)
		return;
	ev = vz_msg_data(m);
	f->owed += f->p->rate * (double)(ev->fired_ns - f->last_ns) / 1e9;
	f->last_ns = ev->fired_ns;
	n = (uint64_t)f->owed;
	if (n > MAX_BURST) {
		n = MAX_BURST;
		f->owed = 0;
	} else {
		f->owed -= (double)n;
	}
	emit(self, f, ev->fired_ns, n);
}

static void feed_stop(vz_actor *self, void *state)
{
	struct feed *f = state;

	(void)self;
	free(f->price);
}

const vz_actor_spec feed_spec = {
    .name = "feed",
    .state_size = sizeof(struct feed),
    .init = feed_init,
    .receive = feed_receive,
    .on_stop = feed_stop,
};
