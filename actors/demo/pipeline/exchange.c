// SPDX-License-Identifier: MIT
/*
 * The exchange simulator: acknowledges every new order at its limit price,
 * in the order received (what a matching engine's order entry does before
 * any matching). It lives on the last shard, so every order crosses shards
 * twice.
 */
#include "pipeline.h"

struct exchange {
	uint64_t orders;
};

static void exchange_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct exchange *x = state;
	const struct order *o;
	struct ack a;

	if (vz_msg_type(m) != MSG_NEW)
		return;
	o = vz_msg_data(m);
	a = (struct ack){.id = o->id, .price = o->price, .qty = o->qty};
	x->orders++;
	vz_reply(self, m, MSG_ACK, &a, sizeof a);
}

const vz_actor_spec exchange_spec = {
    .name = "exchange",
    .state_size = sizeof(struct exchange),
    .receive = exchange_receive,
};
