/* SPDX-License-Identifier: MIT */
/*
 * Clusters: actors reachable from other processes and hosts by name, over
 * NATS (https://nats.io; the library links the C client libnats when it was
 * found at build time, otherwise every call here returns VZ_ENOSYS).
 *
 * A node is one runtime joined to a NATS server with vz_cluster_create().
 * An actor registers a name in the cluster's namespace; any actor or
 * thread on any node resolves the name to a vz_ref and sends to it with
 * the ordinary vz_send(), vz_post() and vz_reply(): the reference is a
 * local proxy, so actor code does not know where its peer lives. A
 * message that arrives from another node carries, as its sender, a proxy
 * for the actor that sent it, so vz_reply() answers across nodes too.
 *
 * Three kinds of names:
 * - VZ_NAME_UNIQUE: one actor in the whole namespace.
 * - VZ_NAME_QUEUE: several actors (on one or many nodes) share the name;
 *   each message goes to one of them (NATS queue group across nodes, round
 *   robin among the actors of one node).
 * - VZ_NAME_BROADCAST: every actor registered under the name gets every
 *   message (market-data fan-out).
 *
 * Delivery contract across nodes (weaker than message.h's, and stated as
 * it is):
 * - FIFO per (sender, receiver) pair while the connection to the server
 *   stays up, when the receiver is addressed through one reference (one
 *   name, or the proxy a reply goes to). Messages to the same actor through
 *   two different names may interleave differently than they were sent.
 * - At most once. A message is never delivered twice; it may be lost, and
 *   every loss the cluster can know of is counted (vz_cluster_stats) and
 *   given to the runtime's dead-letter hook (vz_config.dead_letter) with a
 *   reason, on the thread that found out:
 *     VZ_ENOENT  no actor had the name when the server routed the message
 *                (never registered, unregistered, its node died); found by
 *                the sender's node (the server's "no responders" answer).
 *                The hook gets the proxy's reference, the type, no payload,
 *                once per message (the messages of one transport turn to
 *                one reference travel as one NATS message; the type is 0
 *                when they were not all of one type).
 *     VZ_EIO     the connection was down and the client's reconnect buffer
 *                was full, or the client gave up reconnecting (sender), or
 *                messages of a stream never arrived (a gap in the per-stream
 *                sequence seen by the receiver: written to a connection the
 *                server lost, e.g. across a server restart); type 0, no
 *                payload, one call per missing message.
 *     VZ_EFULL   the receiving client dropped messages it could not keep up
 *                with (slow consumer), or the target's bounded mailbox was
 *                full (receiver).
 *     VZ_ESTALE, VZ_ESTOPPED  the target actor was gone or its runtime
 *                stopping when the message arrived (receiver; counted by
 *                the core as any dead letter).
 *   Gaps are detected for unique names, broadcast names and replies; not
 *   for queue names, whose stream is split between receivers by design.
 *   A loss is found once a later message of the same stream arrives.
 *   Known limits of the counting: a node that dies without its TCP
 *   connection closing (host crash, cable cut) keeps its names on the
 *   server until the server's pings give up on it (ping_interval x
 *   ping_max, 2 min x 2 by default): messages routed to it meanwhile are
 *   lost uncounted. And when both ends reconnect after a server restart
 *   and the sender is back first, a message may be counted twice, as
 *   VZ_ENOENT at the sender and as a gap at the receiver.
 * - Malformed or foreign messages on the namespace's subjects are dropped
 *   and counted (malformed), never delivered.
 * - Payload limit: the smaller of the server's max_payload less the
 *   header (vz_cluster_max_payload()) and VZ_MSG_MAX_PAYLOAD; a longer send
 *   to a remote reference returns VZ_ETOOBIG.
 *
 * Monitors across nodes (lifecycle.h). vz_monitor() takes a remote
 * reference to one actor: a unique name (whoever has it when the request
 * arrives) or the sender proxy of a received message; a queue or
 * broadcast name names no one actor (VZ_EINVAL). As for a local actor the
 * watcher gets exactly one VZ_MSG_DOWN, whose actor field is the remote
 * reference it watched, and vz_demonitor() is idempotent (a DOWN already
 * on its way is dropped). The DOWN comes:
 *   - when the actor ends: its own exit reason (FAILED with vz_fail()'s
 *     code and text, STOPPED, NORMAL; SHUTDOWN when its runtime stops);
 *   - when the unique name is unregistered while the actor lives on:
 *     VZ_EXIT_NOPROC, code VZ_ENOENT, "name unregistered";
 *   - at once when there is no such actor (no one has the name, a stale
 *     proxy): VZ_EXIT_NOPROC, code VZ_ENOENT;
 *   - when its node is lost: VZ_EXIT_NOPROC, code VZ_EIO, "node lost:
 *     <node>". Every node publishes a heartbeat every heartbeat_ms
 *     ([cluster], 250 by default) and a goodbye when it leaves; a node not
 *     heard from for node_timeout_ms (4 heartbeats by default) is lost, so
 *     a node killed without warning (SIGKILL, host crash) gives DOWN
 *     between node_timeout_ms - its heartbeat_ms and node_timeout_ms +
 *     this node's heartbeat_ms / 4 after its death, plus the delays of a
 *     loaded machine in running the transport threads (a node whose
 *     transport thread, or whose server, falls node_timeout_ms behind is
 *     taken for lost: its monitors end though its actors live on, so
 *     choose the timeout above the stalls the machines can see); heartbeats cost
 *     each node one small message per heartbeat_ms, and one received per
 *     other node. A node that comes back under the
 *     same name is a new incarnation: monitors of the old one end. When
 *     this node's own connection is down it hears no one, and its
 *     monitors on other nodes end the same way;
 *   - when the request is not answered within node_timeout_ms (lost with
 *     a server restart): VZ_EXIT_NOPROC, code VZ_ETIMEDOUT.
 * The DOWN of an actor's end comes after the messages it sent the watcher
 * through the same reference (the watcher's proxy), not necessarily after
 * those it sent through a name. A DOWN lost on the way (server restart)
 * is not replaced while both nodes stay up: the monitor then ends only
 * with its node. Links (vz_link()) do not cross nodes.
 *
 * Threads. The node has one transport thread that owns the NATS
 * connection: it takes the messages shards hand it (a lock-free ring per
 * shard, published once per send and flushed to the socket once per loop
 * turn of the transport), publishes them (consecutive messages to one
 * reference taken in one turn go back to back in one NATS message, up to
 * the server's max_payload: one reply subject and one routing by the
 * server for all of them), reads the socket and posts what
 * arrives to the target actors through their shard's foreign inbox. No call
 * a shard thread makes into the cluster waits for the network or takes a
 * lock held across I/O.
 */
#ifndef VELOZ_CLUSTER_H
#define VELOZ_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "config.h"
#include "export.h"
#include "runtime.h"

VZ_BEGIN_DECLS

typedef struct vz_cluster vz_cluster;

typedef enum vz_name_kind {
	VZ_NAME_UNIQUE = 0,
	VZ_NAME_QUEUE = 1,
	VZ_NAME_BROADCAST = 2,
} vz_name_kind;

/* Longest name, bytes without the NUL. A name is one or more tokens of
 * letters, digits, '-' and '_', separated by '.' ("md.eurusd"). */
#define VZ_CLUSTER_NAME_LEN 128

/* Join rt to the cluster that cfg describes (NULL: rt's own config, the
 * [cluster] section of its INI file). Connects to the server (waiting at
 * most connect_timeout_ms) and starts the transport thread. Before or
 * after vz_runtime_start(); messages that arrive before start are
 * dead-lettered (VZ_ESTATE, counted as undeliverable). One cluster per
 * runtime. A thread that is not one of rt's shards.
 * Errors: VZ_EINVAL (NULL rt or out), VZ_ENOSYS (built without libnats),
 * VZ_ECONFIG (no url, a bad node or namespace name, unreadable
 * credentials or TLS files, a runtime of VZ_MAX_SHARDS shards: the last
 * shard number marks remote references), VZ_EBUSY (rt already has a
 * cluster), VZ_EIO (cannot connect, or the server refused us: bad
 * credentials, TLS failure; the reason is in *err), VZ_ENOMEM,
 * VZ_EWRONGTHREAD. err may be NULL; on failure its message names the
 * [cluster] key or the server's reason. */
VZ_API int vz_cluster_create(vz_runtime *rt, const vz_cluster_config *cfg, vz_cluster **out,
			     vz_config_error *err);

/* Leave the cluster: unsubscribe every name, flush what is queued (at most
 * a moment), close the connection, join the transport thread, free
 * everything. A remote reference then names no shard (VZ_ENOSHARD).
 * vz_runtime_destroy() does this for a cluster still attached.
 * Call it after vz_runtime_stop() (or before start): no shard may be
 * sending meanwhile. NULL is a no-op. Not from a shard thread
 * (VZ_EWRONGTHREAD); VZ_ESTATE while the runtime runs. */
VZ_API int vz_cluster_destroy(vz_cluster *c);

/* The cluster of rt, or NULL. Any thread. */
VZ_API vz_cluster *vz_runtime_cluster(const vz_runtime *rt);

/* Register `actor` (of this node) under `name`. The same thread rules as
 * vz_spawn(): before vz_runtime_start() any one thread; afterwards the
 * actor's own shard thread (inside the actor, typically with vz_self()).
 * The subscription is made by the transport thread shortly after: a
 * message sent before it reached the server may find no one (VZ_ENOENT
 * for the sender). When the actor stops, all its names are removed.
 * Errors: VZ_EINVAL (NULL, a bad name or kind), VZ_ESTALE (actor not live
 * or not of this runtime), VZ_EBUSY (a unique name this node already
 * has; the same unique name on two nodes is not detected: both receive),
 * VZ_EWRONGTHREAD, VZ_ESTOPPED, VZ_ENOMEM. */
VZ_API int vz_cluster_register(vz_cluster *c, vz_ref actor, const char *name, vz_name_kind kind);

/* Wait until every registration and unregistration this node made before
 * the call has reached the server, so that a message any node sends from
 * now on finds the names (a round trip through the server: a marker
 * published behind them on the same connection comes back). Typical use:
 * register, start, sync, then tell the other processes you are ready.
 * The same after a reconnect (stats.reconnects grew): the client renews
 * every subscription on the new connection, and a sync made then returns
 * once the server has them.
 * Not from a shard thread (VZ_EWRONGTHREAD): it waits. VZ_ETIMEDOUT
 * after timeout_ms (the connection is down), VZ_EINVAL, VZ_ENOMEM. */
VZ_API int vz_cluster_sync(vz_cluster *c, uint32_t timeout_ms);

/* Remove one registration (same thread rules). VZ_ENOENT when actor did
 * not have that name; otherwise as vz_cluster_register(). */
VZ_API int vz_cluster_unregister(vz_cluster *c, vz_ref actor, const char *name, vz_name_kind kind);

/* A reference for `name` (of kind `kind`) usable with vz_send(),
 * vz_post() and vz_reply() from any node, this one included. Purely
 * local: it does not ask whether someone has the name now (a message
 * that finds no one is dead-lettered with VZ_ENOENT on this node).
 * Resolving the same name twice gives the same reference; it stays valid
 * until vz_cluster_destroy(). Any thread. Errors: VZ_EINVAL (NULL, bad
 * name or kind), VZ_ENOMEM (more than 2^24 remote references). */
VZ_API int vz_cluster_resolve(vz_cluster *c, const char *name, vz_name_kind kind, vz_ref *out);

/* Is r a reference to something on another node (a resolved name or the
 * sender proxy of a received message)? Any thread. */
VZ_API int vz_ref_is_remote(const vz_runtime *rt, vz_ref r);

/* Largest payload a send to a remote reference takes (see the contract
 * above). Any thread; 0 for NULL. */
VZ_API size_t vz_cluster_max_payload(const vz_cluster *c);

/* This node's name. Any thread; "" for NULL. */
VZ_API const char *vz_cluster_node(const vz_cluster *c);

/* Counters of one node. Written by the transport thread (and the NATS
 * client's threads for no_responders and the connection events), read by
 * anyone: each a consistent snapshot, not the set. Conservation, once
 * traffic has stopped and the last message of every stream has arrived:
 * the senders' sent == the receivers' delivered + every counted loss on
 * both sides (lost_no_name + lost_conn + lost_full on the sender; lost_gap
 * + lost_slow + undeliverable + malformed-that-were-ours on the receiver);
 * see tests/integration/test_cluster.c. */
typedef struct vz_cluster_stats {
	uint64_t sent;		/* sends to remote references taken by the transport */
	uint64_t published;	/* of those, handed to the NATS client */
	uint64_t received;	/* well-formed messages read from the server */
	uint64_t delivered;	/* of those, posts the target's shard accepted (then handled,
				   or dead-lettered there if the actor had stopped: the
				   shard's dead_letters, vz_stats_shard()) */
	uint64_t lost_no_name;	/* VZ_ENOENT: nobody had the name */
	uint64_t lost_conn;	/* VZ_EIO at the sender: connection down, buffer full */
	uint64_t lost_gap;	/* VZ_EIO at the receiver: missing sequence numbers */
	uint64_t lost_slow;	/* VZ_EFULL: dropped by this client as a slow consumer */
	uint64_t undeliverable; /* arrived, but the post was refused (runtime not started
				   or stopping, bounded mailbox full) or no local actor
				   had the name any more */
	uint64_t malformed;	/* dropped: not a veloz message, or a bad header */
	uint64_t disconnects;	/* times the connection to the server was lost */
	uint64_t reconnects;	/* times it came back */
	uint64_t flushes;	/* socket writes of batched messages */
} vz_cluster_stats;

/* Copy the counters. Any thread. VZ_EINVAL for NULL. */
VZ_API int vz_cluster_stats_get(const vz_cluster *c, vz_cluster_stats *out);

VZ_END_DECLS

#endif
