/* SPDX-License-Identifier: MIT */
/*
 * The market pipeline demo: what its actors say to each other and what they
 * share with the main thread.
 *
 *   feed ==UDP multicast on lo==> feed_rx --TICK--> strategy (by key hash
 *            of the symbol, on its shard); the feed packs ticks into
 *            datagrams to a group the receiver joined. Timer-driven feed
 *            (feed --TICK--> strategy directly) with --no-net, or when the
 *            host cannot route multicast on lo: the reason is printed.
 *   supervisor: starts the strategies on every shard and restarts one
 *               that fails (strategy 0 fails on purpose every
 *               fail_period); the feed finds each strategy's current
 *               incarnation through the name the supervisor keeps.
 *   strategy --ORDER--> gateway --NEW--> exchange --ACK--> gateway
 *            (NEW and ACK: records over TCP on 127.0.0.1, or messages
 *            with --no-net)
 *   gateway --FILL or REJECT--> strategy
 *   gateway: an order timeout per order (timer), a risk job every
 *            risk_period (worker pool), a latency report every second.
 *
 * Everything in struct pipeline is written by main before
 * vz_runtime_start() and only read afterwards (start publishes it to the
 * shards), except the `live` counters: each has one writing actor and is
 * read by main with relaxed loads (a snapshot for the progress line).
 */
#ifndef VZ_DEMO_PIPELINE_H
#define VZ_DEMO_PIPELINE_H

#include <stdatomic.h>
#include <stdint.h>

#include <veloz.h>

#include "latency.h"

enum {
	MSG_TICK = VZ_MSG_USER, /* feed -> strategy: struct tick */
	MSG_ORDER,		/* strategy -> gateway: struct order */
	MSG_NEW,		/* gateway -> exchange: struct order (id = gateway's) */
	MSG_ACK,		/* exchange -> gateway: struct ack */
	MSG_FILL,		/* gateway -> strategy: struct report */
	MSG_REJECT,		/* gateway -> strategy: struct report (timeout, table full) */
	MSG_FEED_UP,		/* feed_rx -> feed: a datagram of the group arrived (empty) */
};

struct tick {
	uint32_t symbol;
	int32_t price; /* in ticks of 0.01 */
	uint64_t seq;
	uint64_t t_ns; /* when the feed emitted it (the shard clock) */
};

/* A feed datagram: this header, then `count` struct tick (as they are:
 * both ends are this process), seq first_seq .. first_seq + count - 1.
 * count 0: a probe (the feed asks whether the group reaches the receiver).
 * At most FEED_DGRAM_TICKS ticks, 1360 bytes: one Ethernet frame, as real
 * feeds pack theirs. */
struct feed_dgram {
	uint32_t magic; /* FEED_MAGIC */
	uint32_t count;
	uint64_t first_seq;
};
#define FEED_MAGIC	 0x564c5a46u /* "VLZF" */
#define FEED_DGRAM_TICKS 56u

/* Where the feed's ticks go (pipeline.feed_mode). */
enum feed_mode {
	FEED_STARTING = 0,  /* multicast asked for; no datagram came back yet: ticks by messages */
	FEED_MULTICAST = 1, /* ticks by UDP multicast through feed_rx */
	FEED_TIMER = 2,	    /* ticks by messages; pipeline.feed_why says why */
};

struct order {
	uint64_t id; /* the strategy's own id in MSG_ORDER, the gateway's in MSG_NEW */
	uint32_t symbol;
	int32_t price;
	int32_t qty; /* > 0 buy, < 0 sell */
	uint32_t pad;
	uint64_t t_tick_ns; /* the triggering tick's t_ns */
};

struct ack {
	uint64_t id;
	int32_t price;
	int32_t qty;
};

/* NEW and ACK go over TCP as these records, as they are (both ends are
 * this process). */
_Static_assert(sizeof(struct order) == 32, "order records are 32 bytes on the wire");
_Static_assert(sizeof(struct ack) == 16, "ack records are 16 bytes on the wire");

struct report {
	uint32_t symbol;
	int32_t qty; /* filled quantity, 0 for a reject */
};

/* What each strategy's init gets (copied by the supervisor at every start). */
struct strategy_arg {
	struct pipeline *p;
	uint32_t index;
};

/* Counters for the progress line; one writer each (named) unless said. */
struct live {
	_Atomic uint64_t ticks; /* feed: ticks sent (as messages, or in datagrams sent) */
	/* ticks_refused, ticks_unrouted: the feed or feed_rx, whichever routes
	 * ticks; both live on shard 0, so one thread writes them. refused:
	 * also datagrams the feed could not send (VZ_EFULL), tick for tick. */
	_Atomic uint64_t ticks_refused;	  /* sends refused by back-pressure (VZ_EFULL) */
	_Atomic uint64_t ticks_unrouted;  /* owner restarting (no or a stale reference) */
	_Atomic uint64_t strategy_starts; /* strategies' inits (many writers: fetch_add) */
	_Atomic uint64_t orders;	  /* gateway: orders sent to the exchange */
	_Atomic uint64_t acks;		  /* gateway: acknowledged in time */
	_Atomic uint64_t timeouts;	  /* gateway: order timeouts that fired */
	_Atomic uint64_t late_acks;	  /* gateway: acks after their timeout */
	_Atomic uint64_t rejected;	  /* gateway: refused, pending table full */
	_Atomic uint64_t risk_checks;	  /* gateway: risk jobs completed */
	_Atomic uint64_t net_errors;	  /* gateway: the order connection failed or broke */
	_Atomic uint64_t datagrams;	  /* feed_rx: tick datagrams received */
	_Atomic uint64_t ticks_mcast;	  /* feed_rx: ticks received by multicast */
	_Atomic uint64_t ticks_lost;   /* feed_rx: ticks of datagrams that never came (seq gaps) */
	_Atomic uint64_t interval_p50; /* gateway: tick-to-ack of the last second, ns */
	_Atomic uint64_t interval_p99;
};

struct pipeline {
	/* parameters */
	uint32_t symbols;
	double rate;		 /* ticks per second */
	uint64_t feed_period_ns; /* feed timer period */
	uint64_t order_timeout_ns;
	uint64_t risk_period_ns;
	int32_t signal_threshold; /* |price - average| that makes an order */
	int net;		  /* orders over TCP on 127.0.0.1 (else messages) */
	/* The multicast feed: group address and port (network order; the
	 * port is the one feed_rx bound, set by its init), the interface
	 * (lo unless --feed-interface), and the feed's mode: written by
	 * main before start or by the feed's actor, published with a
	 * release store of feed_mode after feed_why is written (main
	 * acquires it before reading feed_why; FEED_TIMER is final, so
	 * feed_why is written once). feed_drop: feed_rx ignores every
	 * datagram (--feed-drop: shows the fallback where multicast works). */
	int mcast;
	uint32_t feed_group;
	uint16_t feed_port;
	unsigned feed_ifindex;
	const char *feed_ifname;
	int feed_drop;
	_Atomic int feed_mode;
	char feed_why[192];
	uint16_t exchange_port;	 /* the exchange's listener (set by its init) */
	_Atomic int stopping;	 /* main is stopping the runtime: no more news */
	uint64_t fail_period_ns; /* strategy 0 fails this long after each start; 0: never */
	/* actors (spawned before start) */
	vz_sup_name *strategies; /* kept current by the supervisor */
	uint32_t nstrategies;
	vz_ref gateway, exchange, feed, feed_rx, supervisor;
	vz_sup_child *children;		    /* the supervisor's spec, outliving it */
	struct strategy_arg *strategy_args; /* children[i].arg */
	vz_sup_spec sup;
	/* progress */
	struct live live;
	/* results, written by the gateway's on_stop (main reads them after
	 * vz_runtime_stop() returned, which orders them before) */
	struct lat_hist latency; /* tick emitted -> order acknowledged, ns */
	int64_t net_position;	 /* sum of fills reported to strategies */
	uint64_t risk_unavailable;
};

/* Which strategy owns a symbol: a multiplicative hash, so neighbouring
 * symbols spread over the strategies (and so over the shards). */
static inline uint32_t pipeline_owner(const struct pipeline *p, uint32_t symbol)
{
	return (uint32_t)(((uint64_t)(symbol * 2654435761u) * p->nstrategies) >> 32);
}

/* Send a tick to the strategy that owns its symbol (its current
 * incarnation: null while the supervisor restarts it, and a reference read
 * just before a restart is refused, VZ_ESTALE, or dead-lettered). vz_send's
 * result. */
static inline int pipeline_route(vz_actor *self, const struct pipeline *p, const struct tick *t)
{
	return vz_send(self, vz_sup_name_ref(&p->strategies[pipeline_owner(p, t->symbol)]),
		       MSG_TICK, t, sizeof *t);
}

static inline void live_add(_Atomic uint64_t *c, uint64_t n)
{
	/* Single writer: load + store, no RMW. Relaxed: main only wants a
	 * recent value for the progress line; the final figures come from
	 * the results, read after stop. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

extern const vz_actor_spec feed_spec, feed_rx_spec, strategy_spec, gateway_spec, exchange_spec;

/* The feed's mode becomes FEED_TIMER for the reason given (printf-style),
 * unless it is already. On the feed's or main's thread (feed.c). */
void feed_fall_back(struct pipeline *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
