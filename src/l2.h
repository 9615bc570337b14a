/* SPDX-License-Identifier: BSD-3-Clause */
/* L2: Redis through a pool of hiredis connections, with timeouts and a
   circuit breaker. Each context is used by one thread at a time; one that
   erred or timed out is freed, never reused. */
#ifndef TC_L2_H
#define TC_L2_H

#include "internal.h"

typedef struct tc__l2 tc__l2;

/* Connects one connection eagerly so tc_health is right from the start;
   Redis being down is not an error here. TC_OK or TC_ENOMEM. */
struct tc__topo;
struct tc__addr;
int tc__l2_create(tc__l2 **out, const tc_options *o, const struct tc__topo *t,
                  const tc__logger *lg, tc__counters *ctr);
/* A cluster node's pool (cluster.c): connects to a on first use. */
int tc__l2_node_create(tc__l2 **out, const tc_options *o,
                       const struct tc__addr *a, const tc__logger *lg,
                       tc__counters *ctr);
void tc__l2_destroy(tc__l2 *l2); /* NULL-safe */

/* Called with the reply bytes of a GET (borrowed: valid during the call,
   on the calling thread, no lock held); its return is tc__l2_get's. */
typedef int (*tc__l2_reader)(void *ud, const char *buf, size_t len);

/* Each returns TC_OK, TC_MISS (GET: no such key), TC_EBACKEND (Redis
   failed, timed out, or the breaker skipped it) or TC_EREFUSED (Redis
   answered with a refusal, see tc_refusal, or does not know the command;
   other error replies are TC_EBACKEND). */
int tc__l2_get(tc__l2 *l2, const char *rkey, size_t rlen, tc__l2_reader fn,
               void *ud);
int tc__l2_set(tc__l2 *l2, const char *rkey, size_t rlen, const char *val,
               size_t len, uint32_t ttl_ms);
/* DEL <rkey> <rkey>:lease */
int tc__l2_del(tc__l2 *l2, const char *rkey, size_t rlen);
/* SCAN MATCH pattern + UNLINK of every key found; *n gets the count. */
int tc__l2_unlink_match(tc__l2 *l2, const char *pattern, uint64_t *n);

/* Runs one command. fn sees every reply the server sent, error replies
   too (borrowed, during the call), and its return is returned; a failed
   connection or a skipped call is TC_EBACKEND, a refusal TC_EREFUSED,
   both without calling fn. */
struct redisReply;
typedef int (*tc__l2_reply_fn)(void *ud, const struct redisReply *r);
int tc__l2_argv(tc__l2 *l2, int argc, const char **argv, const size_t *lens,
                tc__l2_reply_fn fn, void *ud);

/* tc__l2_argv after ASKING on the same connection (cluster.c). */
int tc__l2_argv_asking(tc__l2 *l2, int argc, const char **argv,
                       const size_t *lens, tc__l2_reply_fn fn, void *ud);
/* A reply_fn for commands whose reply says only whether they worked:
   TC_OK for anything but an error reply. */
int tc__l2_reply_ok(void *ud, const struct redisReply *r);
/* A reply_fn for a SET's reply, which says more: TC_OK (+OK), TC_MISS
   (nil: an NX lost), TC_EBACKEND (anything else). */
int tc__l2_reply_status(void *ud, const struct redisReply *r);

/* The Sentinel or Cluster behind l2, NULL if none (the listener follows
   them too). */
struct tc__sentinel *tc__l2_sentinel(tc__l2 *l2);
struct tc__cluster *tc__l2_cluster(tc__l2 *l2);

/* One command of a pipeline: up to four words, and its outcome. */
typedef struct tc__l2_cmd {
    int argc;
    const char *argv[4];
    size_t lens[4];
    int rc; /* as tc__l2_argv with tc__l2_reply_ok: TC_OK, TC_EBACKEND
               (a failed connection, an error or redirection reply),
               TC_EREFUSED */
    /* NULL, or called with every reply that is not an error (borrowed,
       during the call); its return is then rc: how a pipeline hands back
       what the server said, not only whether it worked. */
    tc__l2_reply_fn fn;
    void *ud;
} tc__l2_cmd;

/* Sends n commands on one connection without waiting, then reads their
   n replies: one round trip for all (each read bounded by the command
   timeout). When the connection fails, the commands not answered get
   TC_EBACKEND. Returns TC_OK when every reply was read, whatever they
   said; TC_EBACKEND otherwise. On a cluster, all the keys must be of
   slots one node serves (cluster.c routes; a redirection is just a
   failed command). */
int tc__l2_pipeline(tc__l2 *l2, tc__l2_cmd *cmds, size_t n);

/* One GET of tc__l2_get_many: fn(ud, ...) as tc__l2_get's reader, and
   rc its outcome, as tc__l2_get's return. With `wver_only`, the GET is
   GETRANGE rkey -9 -1: the envelope's last TC__WVER_BYTES bytes, its
   write version if it has one (a revalidation); where a key is tried
   again alone (a cluster's redirection) it is a whole GET, so fn must
   look at the last bytes of what it is given. */
typedef struct tc__l2_getm {
    const char *rkey;
    size_t rlen;
    tc__l2_reader fn;
    void *ud;
    int rc;
    int wver_only;
} tc__l2_getm;
/* g's command, for a pipeline. */
tc__l2_cmd tc__l2_getm_cmd(tc__l2_getm *g);

/* tc__l2_get of n keys, pipelined a few hundred to a round trip (node by
   node on a cluster, where a key whose slot moved, or whose node failed,
   is tried again alone, following the redirection). Once a connection
   fails the keys not yet sent are not tried: TC_EBACKEND. Returns TC_OK,
   or the first failure (TC_EBACKEND, TC_EREFUSED). */
int tc__l2_get_many(tc__l2 *l2, tc__l2_getm *gets, size_t n);
/* A reply_fn for a tc__l2_getm (ud): a GET's reply, as tc__l2_get. */
int tc__l2_getm_reply(void *ud, const struct redisReply *r);

/* A Redis key and its lease key, for tc__l2_del_many. */
typedef struct tc__l2_key {
    const char *rkey, *lease;
    size_t rlen, llen;
} tc__l2_key;

/* tc__l2_del of n keys (each with its lease), pipelined a few hundred to
   a round trip, node by node on a cluster. rcs[i] gets each key's
   outcome (TC_OK, TC_EBACKEND, TC_EREFUSED). Once a connection fails, the
   keys not yet sent are not tried: TC_EBACKEND. Returns TC_OK, or the
   first failure. */
int tc__l2_del_many(tc__l2 *l2, const tc__l2_key *keys, size_t n, int *rcs);

/* SCAN MATCH pattern, GETs of what it finds pipelined a page at a time
   (tc_warm). For each key of a page, key(ud, rkey, rlen, &tag) says
   whether to GET it (1), skip it (0) or stop (-1), and may set a tag
   for it; it runs before the page's GETs are sent. Then value(ud, rkey,
   rlen, tag, buf, len) gets each reply's bytes (borrowed; buf NULL: the
   key is gone, or an error reply such as a redirection) and returns
   0 to go on, -1 to stop. On a cluster every master is scanned in turn.
   TC_OK (done or stopped), TC_EBACKEND, TC_EREFUSED, TC_ENOMEM. */
typedef struct tc__l2_scan_fns {
    int (*key)(void *ud, const char *rkey, size_t rlen, uint64_t *tag);
    int (*value)(void *ud, const char *rkey, size_t rlen, uint64_t tag,
                 const char *buf, size_t len);
    void *ud;
} tc__l2_scan_fns;
int tc__l2_scan_get(tc__l2 *l2, const char *pattern,
                    const tc__l2_scan_fns *fns);

/* The listener reached the server: an open breaker lets its next call
   probe at once, rather than at the end of its back-off. */
void tc__l2_alive(tc__l2 *l2);

/* PUBLISH channel msg. */
int tc__l2_publish(tc__l2 *l2, const char *channel, const char *msg,
                   size_t len);

void tc__l2_health(tc__l2 *l2, tc_health_info *out);
/* The tc_refusal in force, TC_REFUSAL_NONE if none. */
int tc__l2_refusal(tc__l2 *l2);
/* Ends a refusal of cmd as a success of it would: for a command the
   caller has stopped sending (and handles otherwise), which would
   never succeed again to end it. */
void tc__l2_dismiss(tc__l2 *l2, const char *cmd);

/* fork(): the pool lock for the atfork handlers, and the child's reset. */
void tc__l2_lock(tc__l2 *l2);
void tc__l2_unlock(tc__l2 *l2);
void tc__l2_after_fork(tc__l2 *l2);

#endif
