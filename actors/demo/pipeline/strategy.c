// SPDX-License-Identifier: MIT
/*
 * A strategy: keeps, for each symbol it owns, an exponential moving average
 * of the price (weight 1/16, fixed point) and a position. When the price
 * strays more than signal_threshold from its average and the symbol has no
 * order in flight, it sends a mean-reverting order of one lot to the
 * gateway (sell above the average, buy below); the gateway's FILL or
 * REJECT clears the flight. All state is the actor's own: no locks,
 * whatever shard it runs on.
 *
 * Strategy 0 fails on purpose fail_period after each start (vz_fail from
 * a timer expiry): its supervisor restarts it, as a new actor with fresh
 * state, on the same shard. Fills for orders of the failed incarnation
 * reach no one: they are dead-lettered and counted.
 */
#include <stdlib.h>

#include "pipeline.h"

#define PLANNED_FAILURE 42

struct symbol_state {
	int64_t avg16;	  /* moving average * 16; 0 = no tick seen yet */
	int32_t position; /* lots */
	uint8_t in_flight;
};

struct strategy {
	struct pipeline *p;
	struct symbol_state *sym; /* indexed by symbol (only owned ones are used) */
	uint64_t next_id;
};

static int strategy_init(vz_actor *self, void *state, const void *arg)
{
	const struct strategy_arg *a = arg;
	struct strategy *s = state;

	s->p = a->p;
	s->sym = calloc(s->p->symbols, sizeof *s->sym);
	if (!s->sym)
		return VZ_ENOMEM;
	/* Relaxed: a count for the report, read after stop. */
	atomic_fetch_add_explicit(&s->p->live.strategy_starts, 1, memory_order_relaxed);
	if (a->index == 0 && s->p->fail_period_ns)
		return vz_timer_arm(self, s->p->fail_period_ns, 0, PLANNED_FAILURE, NULL);
	return 0;
}

static void on_tick(vz_actor *self, struct strategy *s, const struct tick *t)
{
	struct symbol_state *st = &s->sym[t->symbol];
	int64_t px16 = (int64_t)t->price * 16, dev;

	if (st->avg16 == 0)
		st->avg16 = px16;
	st->avg16 += (px16 - st->avg16) / 16;
	dev = (px16 - st->avg16) / 16;
	if (st->in_flight || (dev < s->p->signal_threshold && dev > -s->p->signal_threshold))
		return;
	struct order o = {
	    .id = ++s->next_id,
	    .symbol = t->symbol,
	    .price = t->price,
	    .qty = dev > 0 ? -1 : 1,
	    .t_tick_ns = t->t_ns,
	};
	if (vz_send(self, s->p->gateway, MSG_ORDER, &o, sizeof o) == 0)
		st->in_flight = 1;
}

static void strategy_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct strategy *s = state;
	const struct report *r;

	switch (vz_msg_type(m)) {
	case MSG_TICK:
		on_tick(self, s, vz_msg_data(m));
		break;
	case VZ_MSG_TIMER: /* the planned failure */
		vz_fail(self, PLANNED_FAILURE, "planned failure (the demo's)");
		break;
	case MSG_FILL:
	case MSG_REJECT:
		r = vz_msg_data(m);
		s->sym[r->symbol].in_flight = 0;
		s->sym[r->symbol].position += r->qty;
		break;
	}
}

static void strategy_stop(vz_actor *self, void *state)
{
	struct strategy *s = state;

	(void)self;
	free(s->sym);
}

const vz_actor_spec strategy_spec = {
    .name = "strategy",
    .state_size = sizeof(struct strategy),
    .init = strategy_init,
    .receive = strategy_receive,
    .on_stop = strategy_stop,
};
