// SPDX-License-Identifier: MIT
/*
 * veloz-router: counting words with the key-hash router. Four counter
 * actors per shard each own the words that hash to them; this (foreign)
 * thread posts every word of the text to its owner; at the end each
 * owner's counts are asked for and printed, with the shard each lives on.
 * No I/O: the router works on messages alone.
 *
 *   veloz-router [WORD ...]     (default: a built-in sentence)
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <veloz.h>

#include "router/router.h"

enum { MSG_WORD = VZ_MSG_USER, MSG_DUMP };

#define MAX_WORDS 64

struct counter {
	unsigned part;
	unsigned n;
	char word[MAX_WORDS][32];
	unsigned count[MAX_WORDS];
};

static atomic_uint dumped;

static int counter_init(vz_actor *self, void *state, const void *arg)
{
	(void)self;
	((struct counter *)state)->part = ((const vz_router_part_arg *)arg)->part;
	return 0;
}

static void counter_receive(vz_actor *self, void *state, const vz_msg *m)
{
	struct counter *c = state;
	size_t len = vz_msg_len(m);

	if (vz_msg_type(m) == MSG_DUMP) {
		for (unsigned i = 0; i < c->n; i++)
			printf("part %u (shard %u): %-12s %u\n", c->part, vz_actor_shard(self),
			       c->word[i], c->count[i]);
		fflush(stdout);
		/* release: this part's lines are printed before main sees it */
		atomic_fetch_add_explicit(&dumped, 1, memory_order_release);
		return;
	}
	if (vz_msg_type(m) != MSG_WORD || len == 0 || len >= sizeof c->word[0])
		return;
	for (unsigned i = 0; i < c->n; i++)
		if (strlen(c->word[i]) == len && !memcmp(c->word[i], vz_msg_data(m), len)) {
			c->count[i]++;
			return;
		}
	if (c->n < MAX_WORDS) {
		memcpy(c->word[c->n], vz_msg_data(m), len);
		c->word[c->n][len] = 0;
		c->count[c->n++] = 1;
	}
}

static const vz_actor_spec counter_spec = {
    .name = "word-counter",
    .state_size = sizeof(struct counter),
    .init = counter_init,
    .receive = counter_receive,
};

int main(int argc, char **argv)
{
	static const char *text[] = {"the",  "quick", "brown", "fox", "jumps", "over",	"the",
				     "lazy", "dog",   "and",   "the", "dog",   "sleeps"};
	const char *const *words = argc > 1 ? (const char *const *)argv + 1 : text;
	int nwords = argc > 1 ? argc - 1 : (int)(sizeof text / sizeof text[0]);
	vz_router *r;
	vz_runtime *rt;
	vz_config cfg;
	int rc;

	vz_config_default(&cfg);
	if ((rc = vz_runtime_create(&cfg, &rt)) < 0 ||
	    (rc = vz_router_create(rt, &counter_spec, 4, NULL, &r)) < 0 ||
	    (rc = vz_runtime_start(rt)) < 0) {
		fprintf(stderr, "veloz-router: %s\n", vz_strerror(rc));
		return 1;
	}
	for (int i = 0; i < nwords; i++)
		vz_router_post(rt, r, words[i], strlen(words[i]), MSG_WORD, words[i],
			       strlen(words[i]));
	/* Each part gets its dump request after its words (FIFO per sender). */
	for (unsigned p = 0; p < vz_router_parts(r); p++)
		vz_post(rt, vz_router_part_ref(r, p), MSG_DUMP, NULL, 0);
	/* acquire: pairs with each part's release after printing */
	while (atomic_load_explicit(&dumped, memory_order_acquire) < vz_router_parts(r))
		usleep(1000);
	vz_runtime_stop(rt);
	vz_router_destroy(r);
	vz_runtime_destroy(rt);
	return 0;
}
