/* SPDX-License-Identifier: BSD-3-Clause */
/* Redis Cluster: the slot map and a pool per node (each node is a tc__l2
   of its own, with its own breaker). l2.c routes every command through
   tc__cluster_argv when the cache runs on a cluster. */
#ifndef TC_CLUSTER_H
#define TC_CLUSTER_H

#include "l2.h"
#include "topo.h"

typedef struct tc__cluster tc__cluster;

#define TC__SLOTS 16384

/* The slot of a Redis key: CRC16 (XMODEM) of its {hash tag} if it has a
   non-empty one, else of the whole key, modulo 16384. */
unsigned tc__cluster_slot(const char *key, size_t len);
/* The slot of a hash tag already found (its bytes, without the braces). */
unsigned tc__cluster_slot_of_tag(const char *tag, size_t len);

/* Learns the slot map from the seeds (Redis being down is not an error:
   the first calls ask again). TC_OK or TC_ENOMEM. */
int tc__cluster_create(tc__cluster **out, const tc_options *o,
                       const tc__topo *t, const tc__logger *lg,
                       tc__counters *ctr);
void tc__cluster_destroy(tc__cluster *cl); /* NULL-safe */

/* Runs one command on the node serving argv[key_arg]'s slot, following
   MOVED (and refreshing the map) and ASK (with ASKING); as tc__l2_argv
   otherwise. */
int tc__cluster_argv(tc__cluster *cl, int key_arg, int argc, const char **argv,
                     const size_t *lens, tc__l2_reply_fn fn, void *ud);
/* tc__l2_get, _set, _del and _unlink_match on a cluster: the first three
   on the key's node, the last on every master. */
int tc__cluster_get(tc__cluster *cl, const char *rkey, size_t rlen,
                    tc__l2_reader fn, void *ud);
int tc__cluster_set(tc__cluster *cl, const char *rkey, size_t rlen,
                    const char *val, size_t len, uint32_t ttl_ms);
int tc__cluster_del(tc__cluster *cl, const char *rkey, size_t rlen);
int tc__cluster_unlink_match(tc__cluster *cl, const char *pattern,
                             uint64_t *n);
/* tc__l2_scan_get on a cluster: each master in turn. */
int tc__cluster_scan_get(tc__cluster *cl, const char *pattern,
                         const tc__l2_scan_fns *fns);
/* tc__l2_del_many on a cluster: every key is tried, master by master. */
int tc__cluster_del_many(tc__cluster *cl, const tc__l2_key *keys, size_t n,
                         int *rcs);
/* tc__l2_get_many on a cluster: a pipeline per master, then each key
   that failed there alone through tc__cluster_get. */
int tc__cluster_get_many(tc__cluster *cl, tc__l2_getm *gets, size_t n);
/* tc__l2_alive on every master's node. */
void tc__cluster_alive(tc__cluster *cl);
/* fn on each master's node in turn; stops at the first error, which it
   returns. */
int tc__cluster_each_master(tc__cluster *cl, int (*fn)(void *, tc__l2 *),
                            void *ud);
/* The number of masters, their addresses (at most max of them in out)
   and the generation of that set:
   it moves when a master joins, leaves or is replaced, not when a slot
   moves between masters already there. */
size_t tc__cluster_masters(tc__cluster *cl, tc__addr *out, size_t max,
                           uint64_t *gen);
uint64_t tc__cluster_gen(tc__cluster *cl);
/* 1 while the map has slots that no live master serves (a failover under
   way): the listener asks for the map often until it is whole again. */
int tc__cluster_incomplete(tc__cluster *cl);
/* Asks a node for CLUSTER NODES, at most once per 100 ms unless force. */
void tc__cluster_refresh(tc__cluster *cl, int force);
/* The same, unless the last attempt is less than min_ms old. */
void tc__cluster_refresh_after(tc__cluster *cl, uint64_t min_ms);

/* Every node's health folded into one: the worst breaker, connected only
   if every master is. */
void tc__cluster_health(tc__cluster *cl, tc_health_info *out);
int tc__cluster_refusal(tc__cluster *cl);

void tc__cluster_lock(tc__cluster *cl);
void tc__cluster_unlock(tc__cluster *cl);
void tc__cluster_after_fork(tc__cluster *cl);

#endif
