/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The invalidation listener (docs/architecture.md §5.6). One thread owns
 * one connection:
 *
 *   CLIENT TRACKING ON REDIRECT <own id> BCAST PREFIX <ns>:{
 *   SUBSCRIBE __redis__:invalidate <ns>:__tc:inval
 *
 * after which Redis reports every change to a namespace key (any writer,
 * expiry, eviction; a nil message for FLUSHDB), and other tiercache
 * processes publish prefix deletes and flushes on the channel. Without
 * tracking (Redis < 6, or TC_COHERENCE_CHANNEL) only the channel is used,
 * and every write publishes there.
 *
 * The invariant the L1 relies on: while `coherent` is 1, every change
 * applied in Redis after the subscription was acknowledged is delivered
 * here and drops the key (bumping its shard's fill epoch). On subscription
 * and on losing the link the L1 is emptied, or with `revalidate` made
 * suspect (tc__l1_suspect: kept, not served), so nothing it serves
 * predates the subscription; fills whose GET went out before an
 * invalidation fail the epoch check (l1.h).
 *
 * Revalidation (docs/architecture.md §5.7): once subscribed, the listener
 * reads the write version of the suspect entries' keys (GETRANGE of the
 * envelope's last 9 bytes), a batch at a time between its reads of the
 * link, and keeps an entry whose version Redis still holds. A change made
 * before the acknowledgement shows in the version read after it; one made
 * after is delivered on the link, and if it lands between the GETRANGE
 * and the confirmation, its message waits in the socket and drops the
 * entry when the listener reads it, one batch later at most.
 *
 * The connection has no socket timeout once subscribed (a hiredis 0.14
 * context that hits one is unusable): the thread waits in poll(), sends a
 * PING every listener_ping_ms and declares the link dead when nothing has
 * arrived for twice that.
 *
 * Beyond one Redis (§5.8, §5.9): with Sentinel the link goes to the
 * master the sentinels name, and a second connection, to one sentinel,
 * hears +switch-master; a new master is a lost link. With Cluster there is
 * one link per master, each tracking the keys that master holds, and the
 * channel on the first (Redis Cluster carries a PUBLISH to every node, so
 * one subscription hears it once); the links are up or down together: any
 * one lost empties (or makes suspect) the whole L1, and a change in the set of
 * masters is a lost link too.
 */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "coherence.h"
#include "conn.h"
#include "l1.h"
#include "l2.h"
#include "l2ops.h"
#include "replay.h"
#include "sentinel.h"

#define TRACKING_CHANNEL "__redis__:invalidate"
/* The handshake (CLIENT ID, TRACKING, SUBSCRIBE) may take this long at
   most; a frozen server fails it instead of hanging the thread. */
#define HANDSHAKE_MIN_MS 1000
/* masters of a cluster followed at most */
#define LINKS_MAX 64

typedef struct link {
    redisContext *ctx;
    uint64_t last_rx;             /* mono ms of the last bytes read */
    uint64_t ping_at;             /* mono ms of a PING not answered, or 0 */
    char where[TC_HOST_MAX + 16]; /* a cluster node's address, or "" */
} coh_link;

struct tc__coh {
    tc_cache *c;
    pthread_t tid;
    int running; /* tid is a thread of this process */
    int wake[2]; /* a byte here stops poll() and back-off sleeps */
    atomic_int stop;
    atomic_int kicks;   /* TC__KICK_*: what callers asked for since */
    atomic_int started; /* launched and settled once (tc__coh_use) */
    atomic_int coherent;

    pthread_mutex_t mu; /* guards the links and watch (for fork cleanup),
                           settled, and message dispatch */
    pthread_cond_t cv;
    int settled; /* the first subscription attempt is over */
    /* Why the link is down, for tc_health: the last failure's text (a
       refusal in the server's own words) and its tc_refusal. */
    char link_error[128];
    int link_refusal;
    coh_link links[LINKS_MAX];
    size_t nlinks;
    redisContext *watch;     /* Sentinel: +switch-master */
    uint64_t watch_retry_at; /* mono ms: a failed watch waits till then */
    /* the generation of the master, or of the cluster's masters, the
       links were made for (written by the listener, read by callers) */
    _Atomic uint64_t topo_gen;
    /* what l2 follows, fixed at create: the read path (tc__coh_ok) asks
       on every L1 lookup */
    tc__sentinel *sentinel;
    tc__cluster *cluster;

    /* Revalidation (listener only): under way; the next shard to list;
       that shard's suspect entries, pend[ipend..npend) still to check;
       when it began, what it kept and dropped so far. reval_refused:
       Redis refused GETRANGE, the L1 is emptied instead from then on. */
    int reval, reval_refused;
    uint32_t reval_shard;
    tc__l1_check *pend;
    size_t npend, ipend;
    uint64_t reval_t0, reval_kept, reval_dropped;

    char endpoint[TC_HOST_MAX + 16]; /* for log lines */
    char prefix[TC_NS_MAX + 4];      /* "<ns>:{" */
    size_t plen;
};

/* The generation of the master (Sentinel) or of the set of masters
   (Cluster) now; 0 on one server. */
static uint64_t topo_now(const tc__coh *h)
{
    tc__sentinel *s = h->sentinel;
    tc__cluster *cl = h->cluster;
    return s ? tc__sentinel_gen(s) : cl ? tc__cluster_gen(cl) : 0;
}

/* Coherent, and for the masters there are now: a new one (a failover, a
   node added) may hold writes the links do not hear until the listener
   has moved, which it does within half a ping interval. */
int tc__coh_ok(const tc__coh *h)
{
    return atomic_load_explicit(&h->coherent, memory_order_acquire) &&
           atomic_load_explicit(&h->topo_gen, memory_order_relaxed) ==
               topo_now(h);
}

/* ---- what a message does to the L1 ---- */

static void drop_all(tc__coh *h)
{
    tc__l1_clear(h->c->l1);
    TC__INC(h->c->ctr.l1_flushes);
}

/* ---- revalidation ---- */

#define REVAL_BATCH 256

/* Releases what is left of the shard being checked. */
static void reval_release(tc__coh *h)
{
    for (size_t i = h->ipend; i < h->npend; i++)
        tc_value_release(h->pend[i].v);
    tc__free(h->pend);
    h->pend = NULL;
    h->npend = h->ipend = 0;
}

/* What the L1 holds may have missed messages: empty it, or make it
   suspect until a revalidation has checked it (which `subscribed`
   starts, the link being up). */
static void forget(tc__coh *h, int subscribed)
{
    reval_release(h); /* suspect again, whatever they were */
    h->reval = 0;
    if (!h->c->opt.revalidate || h->reval_refused) {
        drop_all(h);
        return;
    }
    tc__l1_suspect(h->c->l1);
    h->reval = subscribed;
    h->reval_shard = 0;
    h->reval_t0 = tc__mono_ms();
    h->reval_kept = h->reval_dropped = 0;
}

typedef struct reval_item {
    const tc__l1_check *k;
    int same;
} reval_item;

/* The reply to GETRANGE rkey -9 -1 (or, tried again alone, a GET):
   does the value end with the entry's write version? */
static int reval_reply(void *ud, const char *buf, size_t len)
{
    reval_item *it = ud;
    it->same = tc__wver_is(buf, len, it->k->v->wver);
    return TC_OK;
}

/* GETRANGE refused (an ACL from before revalidation): this process
   empties its L1 on a reconnect from now on. The pool's refusal is
   ended, since no GETRANGE will be sent again to end it. */
static void reval_refused(tc__coh *h)
{
    h->reval_refused = 1;
    tc__l2_dismiss(h->c->l2, "GETRANGE");
    tc__log(&h->c->lg, TC_LOG_WARN, "link.revalidate.refused",
            "redis %s refused GETRANGE: the L1 is emptied on every "
            "reconnect instead of revalidated (grant +getrange)",
            h->endpoint);
    forget(h, 0); /* empties it now, reval_refused being set */
}

/* One step: list the next shard's suspect entries, or check up to
   REVAL_BATCH of them in one pipelined round trip (per node on a
   cluster) and keep or drop each. An entry whose check failed (Redis
   erred, timed out) is dropped: only a version read from Redis keeps
   one. A fork in the middle leaves the child the references held here,
   which tc__coh_abandon forgets; the child's L1 is emptied anyway. */
static void revalidate_step(tc__coh *h)
{
    tc_cache *c = h->c;
    if (h->ipend == h->npend) {
        reval_release(h);
        if (h->reval_shard < tc__l1_shards(c->l1)) {
            size_t n = tc__l1_suspects(c->l1, h->reval_shard++, &h->pend);
            if (n != (size_t)-1) {
                h->npend = n;
                return;
            }
            h->reval = 0; /* no memory to list them: none is kept */
            drop_all(h);
            return;
        }
        h->reval = 0;
        if (h->reval_kept + h->reval_dropped)
            tc__log(
                &c->lg, TC_LOG_INFO, "link.revalidated",
                "L1 revalidated in %llu ms: %llu entries kept, %llu dropped",
                (unsigned long long)(tc__mono_ms() - h->reval_t0),
                (unsigned long long)h->reval_kept,
                (unsigned long long)h->reval_dropped);
        return;
    }
    const tc__l1_check *k = h->pend + h->ipend;
    size_t n = h->npend - h->ipend;
    if (n > REVAL_BATCH)
        n = REVAL_BATCH;
    reval_item it[REVAL_BATCH];
    tc__l2_getm g[REVAL_BATCH];
    size_t total = 0, nslen = strlen(c->opt.ns);
    for (size_t i = 0; i < n; i++)
        total += nslen + k[i].klen + 3;
    char *names = tc__malloc(total), *p = names;
    int refused = 0;
    for (size_t i = 0; i < n; i++) {
        it[i] = (reval_item){&k[i], 0};
        if (names) {
            size_t rlen = tc__rkey_write(c, k[i].key, k[i].klen, "", p);
            g[i] = (tc__l2_getm){p, rlen, reval_reply, &it[i], TC_EBACKEND, 1};
            p += rlen;
        }
    }
    if (names) { /* else: no memory to ask, and every entry goes */
        tc__l2_get_many(c->l2, g, n);
        for (size_t i = 0; i < n; i++)
            refused |= g[i].rc == TC_EREFUSED;
    }
    for (size_t i = 0; i < n; i++) {
        int same = names && g[i].rc == TC_OK && it[i].same;
        int verdict =
            tc__l1_confirm(c->l1, &k[i], tc__hash(k[i].key, k[i].klen), same);
        if (verdict == 1) {
            h->reval_kept++;
            TC__INC(c->ctr.l1_revalidated);
        } else if (verdict == 0) {
            h->reval_dropped++;
            TC__INC(c->ctr.l1_revalidate_drops);
        }
        tc_value_release(k[i].v);
    }
    h->ipend += n;
    tc__free(names);
    if (refused)
        reval_refused(h);
}

/* A tracked Redis key "<ns>:{<key>}" drops <key>; lease keys and keys of
   other namespaces that share the prefix are ignored. */
static void drop_rkey(tc__coh *h, const char *rkey, size_t len)
{
    if (len < h->plen + 2 || memcmp(rkey, h->prefix, h->plen) != 0 ||
        rkey[len - 1] != '}')
        return;
    const char *key = rkey + h->plen;
    size_t klen = len - h->plen - 1;
    tc__l1_del(h->c->l1, key, klen, tc__hash(key, klen));
}

static void on_tracking(tc__coh *h, const redisReply *keys)
{
    TC__INC(h->c->ctr.invalidations);
    if (keys->type == REDIS_REPLY_NIL) { /* FLUSHDB / FLUSHALL */
        drop_all(h);
        return;
    }
    if (keys->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < keys->elements; i++)
        if (keys->element[i]->type == REDIS_REPLY_STRING)
            drop_rkey(h, keys->element[i]->str, keys->element[i]->len);
}

static void record_lag(tc__coh *h, uint64_t sent_at_ms)
{
    uint64_t now = tc__wall_ms();
    tc__hist_add(&h->c->ctr.lag,
                 now > sent_at_ms ? (now - sent_at_ms) * 1000 : 0);
}

/* Anyone may publish on the channel: a message that does not decode is
   counted and ignored. */
static void on_channel(tc__coh *h, const redisReply *msg)
{
    tc__inval m;
    tc_cache *c = h->c;
    if (msg->type != REDIS_REPLY_STRING ||
        tc__inval_decode(msg->str, msg->len, c->opt.max_key_bytes, &m) !=
            TC_OK) {
        TC__INC(c->ctr.codec_errors);
        return;
    }
    TC__INC(c->ctr.invalidations);
    record_lag(h, m.sent_at_ms);
    if (m.kind == TC__INVAL_FLUSH)
        drop_all(h);
    else if (m.kind == TC__INVAL_PREFIX)
        tc__l1_del_prefix(c->l1, (const char *)m.arg, m.arg_len);
    else
        tc__l1_del(c->l1, (const char *)m.arg, m.arg_len,
                   tc__hash(m.arg, m.arg_len));
}

static int is_str(const redisReply *r, const char *s)
{
    return r->type == REDIS_REPLY_STRING && strlen(s) == r->len &&
           memcmp(r->str, s, r->len) == 0;
}

/* ["message", channel, payload]; a pong answers the link's PING
   (["pong", ""] on a subscribed connection); acks need nothing. */
static void on_reply(tc__coh *h, coh_link *l, const redisReply *r)
{
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        is_str(r->element[0], "pong")) {
        l->ping_at = 0;
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        !is_str(r->element[0], "message"))
        return;
    if (is_str(r->element[1], TRACKING_CHANNEL))
        on_tracking(h, r->element[2]);
    else if (is_str(r->element[1], h->c->channel))
        on_channel(h, r->element[2]);
}

/* ---- the link ---- */

static int subscribe_ack(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
           is_str(r->element[0], "subscribe");
}

/* Tries CLIENT TRACKING; *tracking is 0 when the server refuses it. */
static int start_tracking(tc__coh *h, redisContext *ctx, int *tracking)
{
    *tracking = 0;
    if (h->c->opt.coherence == TC_COHERENCE_CHANNEL)
        return 0;
    redisReply *r = redisCommand(ctx, "CLIENT ID");
    if (!r)
        return -1;
    long long id = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    if (id < 0)
        return 0;
    r = redisCommand(ctx, "CLIENT TRACKING ON REDIRECT %lld BCAST PREFIX %s",
                     id, h->prefix);
    if (!r)
        return -1;
    *tracking = r->type == REDIS_REPLY_STATUS;
    /* Coherent only if every writer publishes too: all processes fall
       back alike on a Redis without tracking, but one whose user lacks
       the permission hears nothing from processes that track. */
    if (!*tracking)
        tc__log(&h->c->lg, TC_LOG_WARN, "link.channel",
                "redis %s: no client tracking (%s): invalidations go "
                "through %s, which only processes without tracking write to",
                h->endpoint, r->type == REDIS_REPLY_ERROR ? r->str : "?",
                h->c->channel);
    freeReplyObject(r);
    return 0;
}

/* A subscribed connection to a (NULL: the options' endpoint), the
   namespace channel too if `channel`; or NULL with the reason in err. */
static redisContext *subscribe(tc__coh *h, const tc__addr *a, int channel,
                               int *tracking, char *err, size_t cap)
{
    const tc_options *o = &h->c->opt;
    uint32_t t = o->command_timeout_ms > HANDSHAKE_MIN_MS
                     ? o->command_timeout_ms
                     : HANDSHAKE_MIN_MS;
    int refusal; /* the pool's connections report it: see tc_health */
    redisContext *ctx = tc__conn_open(o, a, t, "listener", err, cap, &refusal);
    if (!ctx)
        return NULL;
    int acks, want = 0;
    redisReply *r = NULL;
    if (start_tracking(h, ctx, tracking) == 0) {
        want = *tracking + channel;
        if (*tracking && channel)
            r = redisCommand(ctx, "SUBSCRIBE %s %s", TRACKING_CHANNEL,
                             h->c->channel);
        else if (want)
            r = redisCommand(ctx, "SUBSCRIBE %s",
                             *tracking ? TRACKING_CHANNEL : h->c->channel);
        else /* a cluster node without tracking: nothing to hear */
            r = redisCommand(ctx, "PING");
    }
    if (!want && r && r->type == REDIS_REPLY_STATUS) {
        freeReplyObject(r);
        r = NULL;
    }
    for (acks = 0; want && subscribe_ack(r);) {
        freeReplyObject(r);
        r = NULL;
        if (++acks == want)
            break;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK)
            r = NULL;
    }
    if (acks != want || r) {
        /* An error reply says why (an ACL without the channels: NOPERM
           and the channel); it is the server's text, never a secret. */
        const char *why = ctx->err ? ctx->errstr
                          : r && r->type == REDIS_REPLY_ERROR
                              ? r->str
                              : "unexpected reply";
        snprintf(err, cap, "subscribe: %.110s", why);
        freeReplyObject(r);
        redisFree(ctx);
        return NULL;
    }
    struct timeval none = {0, 0}; /* from now on poll() does the waiting */
    redisSetTimeout(ctx, none);
    return ctx;
}

static void close_links(tc__coh *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = h->nlinks;
    coh_link l[LINKS_MAX];
    memcpy(l, h->links, n * sizeof(*l));
    h->nlinks = 0;
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < n; i++)
        redisFree(l[i].ctx);
}

/* Where the links go: the options' endpoint (n 1, *a unused), the
   Sentinel's master, or the cluster's masters. 0, or -1 when no master
   is known. */
static int targets(tc__coh *h, tc__addr *a, size_t *n, int *use_addr,
                   char *err, size_t cap)
{
    tc__sentinel *s = h->sentinel;
    tc__cluster *cl = h->cluster;
    *n = 1;
    *use_addr = s || cl;
    if (s) {
        /* asked again on every (re)subscription: a +switch-master missed
           while the watch was down must not leave the link on a demoted
           master (rate-limited, so a retry loop does not hammer them) */
        tc__sentinel_refresh(s, tc__sentinel_master(s, a) == 0);
        uint64_t gen = tc__sentinel_master(s, a);
        atomic_store(&h->topo_gen, gen);
        if (gen == 0) {
            tc__sentinel_error(s, err, cap);
            return -1;
        }
        tc__addr_str(a, h->endpoint, sizeof(h->endpoint));
    } else if (cl) {
        uint64_t gen;
        *n = tc__cluster_masters(cl, a, LINKS_MAX, &gen);
        if (*n == 0) {
            tc__cluster_refresh(cl, 1);
            *n = tc__cluster_masters(cl, a, LINKS_MAX, &gen);
        }
        atomic_store(&h->topo_gen, gen);
        if (*n == 0) {
            snprintf(err, cap, "cluster: no slot map");
            return -1;
        }
        if (*n > LINKS_MAX) { /* never coherent with masters unheard */
            snprintf(err, cap,
                     "cluster: %zu masters, more than the %d the listener "
                     "follows",
                     *n, LINKS_MAX);
            return -1;
        }
        snprintf(h->endpoint, sizeof(h->endpoint), "cluster (%zu masters)",
                 *n);
    }
    return 0;
}

/* Every link up and subscribed, or none (-1, the reason in err). */
static int subscribe_all(tc__coh *h, char *err, size_t cap)
{
    tc__addr a[LINKS_MAX];
    size_t n;
    int use_addr, all_track = 1;
    if (targets(h, a, &n, &use_addr, err, cap) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int tracking = 0;
        char why[160];
        redisContext *ctx = subscribe(h, use_addr ? &a[i] : NULL, i == 0,
                                      &tracking, why, sizeof(why));
        if (!ctx) {
            char where[TC_HOST_MAX + 16];
            if (use_addr)
                tc__addr_str(&a[i], where, sizeof(where));
            snprintf(err, cap, "%.60s%s%.90s", use_addr ? where : "",
                     use_addr ? ": " : "", why);
            close_links(h);
            /* the master may be gone for good: ask who serves now */
            if (h->sentinel)
                tc__sentinel_refresh(h->sentinel, 0);
            if (h->cluster)
                tc__cluster_refresh(h->cluster, 0);
            return -1;
        }
        all_track &= tracking;
        pthread_mutex_lock(&h->mu);
        coh_link *l = &h->links[h->nlinks++];
        l->ctx = ctx;
        l->last_rx = tc__mono_ms();
        l->where[0] = '\0';
        if (h->cluster)
            tc__addr_str(&a[i], l->where, sizeof(l->where));
        pthread_mutex_unlock(&h->mu);
    }
    atomic_store(&h->c->tracking, all_track);
    return 0;
}

/* The master, or the cluster's set of masters, is not the one the links
   were made for. */
static int moved(tc__coh *h, char *err, size_t cap)
{
    tc__sentinel *s = h->sentinel;
    tc__cluster *cl = h->cluster;
    tc__addr a;
    if (s && tc__sentinel_master(s, &a) != atomic_load(&h->topo_gen)) {
        char where[TC_HOST_MAX + 16];
        tc__addr_str(&a, where, sizeof(where));
        snprintf(err, cap, "the master is now %.100s", where);
        return 1;
    }
    if (cl && tc__cluster_gen(cl) != atomic_load(&h->topo_gen)) {
        snprintf(err, cap, "the cluster's masters changed");
        return 1;
    }
    return 0;
}

/* Sentinel: a connection hearing +switch-master, made again when lost;
   its failures are not the link's (the master may be fine). */
static void watch_sentinel(tc__coh *h, int readable)
{
    tc__sentinel *s = h->sentinel;
    redisContext *w = h->watch;
    if (!s)
        return;
    if (w && readable) { /* under mu: see read_messages */
        pthread_mutex_lock(&h->mu);
        int got = tc__sentinel_watch_read(s, w);
        if (got < 0)
            h->watch = NULL;
        pthread_mutex_unlock(&h->mu);
        if (got > 0) /* our master switched: ask, with no lock held */
            tc__sentinel_refresh(s, 1);
        if (got < 0) {
            redisFree(w);
            w = NULL;
        }
    }
    /* Connecting blocks this thread (within the connect timeout), while
       the links' messages wait: after a failure, not again for ten ping
       intervals. */
    if (!w && !readable && tc__mono_ms() >= h->watch_retry_at) {
        char err[160];
        w = tc__sentinel_watch(s, err, sizeof(err));
        if (!w) {
            tc__log(&h->c->lg, TC_LOG_DEBUG, "sentinel.watch.failed", "%s",
                    err);
            h->watch_retry_at =
                tc__mono_ms() + 10 * (uint64_t)h->c->opt.listener_ping_ms;
        }
        pthread_mutex_lock(&h->mu);
        h->watch = w;
        pthread_mutex_unlock(&h->mu);
    }
}

static int write_ping(redisContext *ctx)
{
    int done = 0;
    if (redisAppendCommand(ctx, "PING") != REDIS_OK)
        return -1;
    while (!done)
        if (redisBufferWrite(ctx, &done) != REDIS_OK)
            return -1;
    return 0;
}

/* Reads what arrived and hands each message to on_reply, all under mu,
   so that fork()'s prepare handler, which takes mu, never catches a reply
   half handled nor hiredis half way through growing its read buffer: a
   child that inherited that state would free a pointer being realloc'd
   (seen under ASan) when it closes the parent's links. The read does not
   block: poll() said the socket is readable. */
static int read_messages(tc__coh *h, coh_link *l)
{
    redisContext *ctx = l->ctx;
    int rc = 0;
    pthread_mutex_lock(&h->mu);
    if (redisBufferRead(ctx) != REDIS_OK) {
        pthread_mutex_unlock(&h->mu);
        return -1;
    }
    for (;;) {
        void *r = NULL;
        if (redisGetReplyFromReader(ctx, &r) != REDIS_OK)
            rc = -1;
        if (!r)
            break;
        on_reply(h, l, r);
        freeReplyObject(r);
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

/* Invalidations queued while Redis was away go out before the L1 is
   trusted: no read may reach Redis, or keep an L1 copy, that the
   replay is about to delete. */
static void became_coherent(tc__coh *h, int was_down)
{
    /* The server answers: the pool need not wait out its breaker's
       back-off to replay, nor the callers to read. */
    tc__l2_alive(h->c->l2);
    tc__replay_run(h->c);
    /* Messages sent before the acknowledgement are lost: start empty,
       or with every entry suspect until the revalidation says. */
    forget(h, 1);
    pthread_mutex_lock(&h->mu);
    h->link_error[0] = '\0';
    h->link_refusal = TC_REFUSAL_NONE;
    pthread_mutex_unlock(&h->mu);
    atomic_store_explicit(&h->coherent, 1, memory_order_release);
    /* The first time too: it says which mode the cache runs in. */
    tc__log(&h->c->lg, TC_LOG_INFO, "link.up",
            "invalidation link %s to redis %s (%s)",
            was_down ? "up again" : "up", h->endpoint,
            atomic_load(&h->c->tracking) ? "tracking" : "channel");
}

/* A queue left by a short failure (a pool timeout, an outage shorter
   than the link's PING) is replayed from here too, so that an idle
   process does not keep it. The link's messages wait in the socket
   meanwhile: the L1 is bypassed, then emptied, as on resubscription.
   A replay that landed nothing changed nothing in Redis: the L1 is kept
   (on a cluster with a master away for long, its slots' items fail here
   every ping while the other masters' keys are served). */
static void replay_idle(tc__coh *h)
{
    if (!tc__replay_pending(h->c))
        return;
    uint64_t done = TC__GET(h->c->ctr.replay_done);
    atomic_store_explicit(&h->coherent, 0, memory_order_release);
    tc__replay_run(h->c);
    if (TC__GET(h->c->ctr.replay_done) != done)
        forget(h, 1);
    atomic_store_explicit(&h->coherent, 1, memory_order_release);
}

/* What callers asked for (tc__coh_kick) since last time: the wake pipe
   emptied, the requests taken. */
static int take_kicks(tc__coh *h)
{
    char buf[64];
    while (read(h->wake[0], buf, sizeof(buf)) > 0)
        ;
    return atomic_exchange(&h->kicks, 0);
}

void tc__coh_kick(tc__coh *h, int what)
{
    /* One byte for any number of requests: the pipe never fills. */
    if (atomic_fetch_or(&h->kicks, what) == 0) {
        ssize_t n = write(h->wake[1], "k", 1);
        (void)n; /* full (it cannot be) or closed (stopping): no matter */
    }
}

/* Sleeps up to ms, or until tc__coh_stop. The link is down, often
   because a master died, and what it waits for is its replacement, not
   the end of its back-off: with Sentinel the watch is read meanwhile,
   with Cluster the map is asked for every MAP_POLL_MS (from this thread,
   not the callers'); a new master ends the nap. A caller waiting for
   the replay queue has it replayed at once: through the pool, which may
   reach the server though the link cannot (its breaker fails the calls
   fast while the server is away). */
#define MAP_POLL_MS 100
static void nap(tc__coh *h, uint64_t ms)
{
    tc__cluster *cl = h->cluster;
    uint64_t until = tc__mono_ms() + ms, gen = topo_now(h);
    watch_sentinel(h, 0);
    for (uint64_t now; (now = tc__mono_ms()) < until;) {
        uint64_t slice = until - now;
        if (cl && slice > MAP_POLL_MS)
            slice = MAP_POLL_MS;
        struct pollfd p[2] = {{h->wake[0], POLLIN, 0},
                              {h->watch ? h->watch->fd : -1, POLLIN, 0}};
        int n = poll(p, 2, (int)slice);
        if (atomic_load(&h->stop))
            return;
        if (n > 0 && p[0].revents && (take_kicks(h) & TC__KICK_REPLAY))
            tc__replay_run(h->c);
        if (n > 0 && p[1].revents)
            watch_sentinel(h, 1);
        if (cl)
            tc__cluster_refresh(cl, 0);
        if (topo_now(h) != gen)
            return;
    }
}

/* PINGs every link that has no PING unanswered. 0, or -1 with err set. */
static int ping_links(tc__coh *h, uint64_t now, char *err, size_t cap)
{
    for (size_t i = 0; i < h->nlinks; i++) {
        coh_link *l = &h->links[i];
        if (l->ping_at)
            continue;
        /* under mu, as reads are: a PING is a few bytes into a socket
           buffer that a live or frozen server leaves nearly empty, so it
           does not block */
        pthread_mutex_lock(&h->mu);
        int bad = write_ping(l->ctx);
        pthread_mutex_unlock(&h->mu);
        if (bad) {
            snprintf(err, cap, "%.120s", l->ctx->errstr);
            return -1;
        }
        l->ping_at = now;
    }
    return 0;
}

/* Serves the subscribed links until one fails, the masters change, or
   stop is asked. A link is dead once a PING has gone unanswered for
   listener_ping_ms: PINGs go out every listener_ping_ms, and at once
   when a caller's command timed out (TC__KICK_PROBE), so a server that
   froze is noticed within 2 x listener_ping_ms, or one interval after a
   caller saw it hang (docs/operations.md, "Consistency guarantees"). */
static void serve(tc__coh *h, char *err, size_t cap)
{
    uint64_t ping = h->c->opt.listener_ping_ms;
    uint64_t last_ping = tc__mono_ms();
    size_t n = h->nlinks; /* only this thread changes it */
    tc__cluster *cl = h->cluster;
    for (size_t i = 0; i < n; i++)
        h->links[i].ping_at = 0;
    watch_sentinel(h, 0);
    while (!atomic_load(&h->stop)) {
        struct pollfd p[LINKS_MAX + 2];
        for (size_t i = 0; i < n; i++)
            p[i] = (struct pollfd){h->links[i].ctx->fd, POLLIN, 0};
        p[n] = (struct pollfd){h->wake[0], POLLIN, 0};
        p[n + 1] = (struct pollfd){h->watch ? h->watch->fd : -1, POLLIN, 0};
        int orphans = cl && tc__cluster_incomplete(cl);
        /* A revalidation under way goes on between reads of the links:
           then poll only looks, and its 0 is no quiet interval. */
        int waits = !h->reval;
        int got = poll(
            p, n + 2, waits ? (int)(orphans ? MAP_POLL_MS : ping / 4 + 1) : 0);
        uint64_t now = tc__mono_ms();
        if (got < 0 && errno != EINTR) {
            snprintf(err, cap, "poll: %s", strerror(errno));
            return;
        }
        for (size_t i = 0; got > 0 && i < n; i++) {
            coh_link *l = &h->links[i];
            if (!p[i].revents)
                continue;
            if (read_messages(h, l) != 0) {
                snprintf(err, cap, "%.60s%s%.90s", l->where,
                         l->where[0] ? ": " : "",
                         l->ctx->err ? l->ctx->errstr : "protocol error");
                return;
            }
            l->last_rx = now;
        }
        int kicks = got > 0 && p[n].revents ? take_kicks(h) : 0;
        if (got > 0 && p[n + 1].revents)
            watch_sentinel(h, 1);
        for (size_t i = 0; i < n; i++) {
            coh_link *l = &h->links[i];
            if (l->ping_at && now - l->ping_at > ping) {
                snprintf(err, cap, "%.60s%sno answer to PING for %llu ms",
                         l->where, l->where[0] ? ": " : "",
                         (unsigned long long)(now - l->ping_at));
                return;
            }
        }
        if (orphans) /* a master died: find its replacement soon */
            tc__cluster_refresh(cl, 0);
        if (moved(h, err, cap))
            return;
        if ((kicks & TC__KICK_PROBE) && ping_links(h, now, err, cap) != 0)
            return;
        if (now - last_ping >= ping) {
            if (ping_links(h, now, err, cap) != 0)
                return;
            last_ping = now;
            replay_idle(h);
            watch_sentinel(h, 0);
        } else if ((kicks & TC__KICK_REPLAY) || (got == 0 && waits)) {
            /* asked, or a quiet quarter interval: a queue that a replay
               could not finish (the server slow to come back) is tried
               again this soon, not a whole PING interval later */
            replay_idle(h);
        }
        if (h->reval)
            revalidate_step(h);
    }
}

static void settle(tc__coh *h)
{
    pthread_mutex_lock(&h->mu);
    h->settled = 1;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* Once per outage: what the L1 holds may have missed messages. Later
   failed attempts leave it alone, so that entries written meanwhile
   under degraded_l1_ttl_ms live their (short) lifetime. */
static void lost(tc__coh *h, int *was_down, const char *why)
{
    atomic_store_explicit(&h->coherent, 0, memory_order_release);
    /* Whether the next server tracks is not known until it is
       subscribed to (a failover may reach one that refuses): writes
       publish their keys on the channel meanwhile. */
    atomic_store(&h->c->tracking, 0);
    const char *text = strncmp(why, "subscribe: ", 11) == 0 ? why + 11 : why;
    pthread_mutex_lock(&h->mu);
    snprintf(h->link_error, sizeof(h->link_error), "%s", why);
    h->link_refusal = tc__conn_refusal_of("SUBSCRIBE", text);
    pthread_mutex_unlock(&h->mu);
    reval_release(h); /* what it did not check stays suspect */
    h->reval = 0;
    if (*was_down)
        return;
    forget(h, 0);
    if (!atomic_load(&h->stop)) {
        TC__INC(h->c->ctr.link_losses);
        uint32_t age = h->c->opt.degraded_l1_ttl_ms;
        char what[64] = "the L1 is bypassed";
        if (age)
            snprintf(what, sizeof(what),
                     "the L1 serves entries up to %u ms old", (unsigned)age);
        tc__log(&h->c->lg, TC_LOG_WARN, "link.down",
                "invalidation link to redis %s down: %s; %s", h->endpoint, why,
                what);
    }
    *was_down = 1;
}

static void *listener_main(void *arg)
{
    tc__coh *h = arg;
    uint32_t attempt = 0;
    int was_down = 0;
    char err[160] = "";
    while (!atomic_load(&h->stop)) {
        int up = subscribe_all(h, err, sizeof(err)) == 0;
        /* The outcome is settled (tc_open may return) only once its
           effect on the L1 is done: a drop after it would empty what
           the caller has put there since. */
        if (!up) {
            lost(h, &was_down, err);
            settle(h);
            /* The server coming back is noticed within one PING
               interval: queued invalidations go out that soon. */
            uint64_t cap = h->c->opt.breaker_cooldown_ms;
            if (cap > h->c->opt.listener_ping_ms)
                cap = h->c->opt.listener_ping_ms;
            nap(h, tc__backoff_ms(attempt++, (uint32_t)cap));
            continue;
        }
        attempt = 0;
        became_coherent(h, was_down);
        was_down = 0;
        settle(h);
        err[0] = '\0'; /* serve sets it, unless it ends on stop */
        serve(h, err, sizeof(err));
        lost(h, &was_down, err);
        close_links(h);
    }
    pthread_mutex_lock(&h->mu);
    redisContext *w = h->watch;
    h->watch = NULL;
    pthread_mutex_unlock(&h->mu);
    if (w)
        redisFree(w);
    return NULL;
}

/* ---- lifecycle ---- */

static int launch(tc__coh *h)
{
    if (pipe(h->wake) != 0)
        return TC_ENOMEM;
    fcntl(h->wake[0], F_SETFD, FD_CLOEXEC);
    fcntl(h->wake[1], F_SETFD, FD_CLOEXEC);
    /* kicks never block a caller; the listener empties it in one go */
    fcntl(h->wake[0], F_SETFL, fcntl(h->wake[0], F_GETFL) | O_NONBLOCK);
    fcntl(h->wake[1], F_SETFL, fcntl(h->wake[1], F_GETFL) | O_NONBLOCK);
    h->settled = 0;
    atomic_store(&h->stop, 0);
    if (pthread_create(&h->tid, NULL, listener_main, h) != 0) {
        close(h->wake[0]);
        close(h->wake[1]);
        return TC_ENOMEM;
    }
    h->running = 1;
    return TC_OK;
}

/* Waits for the first subscription attempt, bounded by its timeouts. */
static void wait_settled(tc__coh *h)
{
    const tc_options *o = &h->c->opt;
    uint64_t limit = (uint64_t)o->connect_timeout_ms + 2 * HANDSHAKE_MIN_MS +
                     o->command_timeout_ms;
    struct timespec ts = tc__deadline_ms(limit);
    pthread_mutex_lock(&h->mu);
    while (!h->settled)
        if (pthread_cond_timedwait(&h->cv, &h->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&h->mu);
}

int tc__coh_create(tc__coh **out, tc_cache *c)
{
    *out = NULL;
    tc__coh *h = tc__calloc(1, sizeof(*h));
    if (!h)
        return TC_ENOMEM;
    h->c = c;
    h->sentinel = tc__l2_sentinel(c->l2);
    h->cluster = tc__l2_cluster(c->l2);
    h->plen =
        (size_t)snprintf(h->prefix, sizeof(h->prefix), "%s:{", c->opt.ns);
    tc__conn_endpoint(&c->opt, h->endpoint, sizeof(h->endpoint));
    pthread_mutex_init(&h->mu, NULL);
    tc__cond_init_mono(&h->cv);
    *out = h;
    return TC_OK;
}

int tc__coh_started(const tc__coh *h)
{
    return atomic_load_explicit(&h->started, memory_order_acquire);
}

int tc__coh_start(tc__coh *h)
{
    if (tc__coh_started(h))
        return TC_OK;
    int rc = launch(h);
    if (rc == TC_OK)
        atomic_store_explicit(&h->started, 1, memory_order_release);
    return rc;
}

void tc__coh_wait(tc__coh *h)
{
    wait_settled(h);
}

void tc__coh_stop(tc__coh *h)
{
    if (!h)
        return;
    if (h->running) {
        atomic_store(&h->stop, 1);
        ssize_t n = write(h->wake[1], "x", 1);
        (void)n; /* the flag alone ends the loop within a poll period */
        pthread_join(h->tid, NULL);
        close(h->wake[0]);
        close(h->wake[1]);
    }
    /* only after a fork: the parent's thread owned them */
    for (size_t i = 0; i < h->nlinks; i++)
        redisFree(h->links[i].ctx);
    if (h->watch)
        redisFree(h->watch);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    tc__free(h);
}

void tc__coh_lock(tc__coh *h)
{
    pthread_mutex_lock(&h->mu);
}

void tc__coh_unlock(tc__coh *h)
{
    pthread_mutex_unlock(&h->mu);
}

/* In a child after fork(): the listener thread does not exist here. Its
   connection is closed without a byte written (the parent still uses the
   same socket), and so are this process's copies of its wake pipe: a
   byte written there would wake the parent's listener, not ours. */
void tc__coh_abandon(tc__coh *h)
{
    for (size_t i = 0; i < h->nlinks; i++)
        redisFree(h->links[i].ctx);
    h->nlinks = 0;
    if (h->watch) {
        redisFree(h->watch);
        h->watch = NULL;
    }
    if (h->running) {
        close(h->wake[0]);
        close(h->wake[1]);
        h->running = 0;
    }
    atomic_store(&h->coherent, 0);
    /* The parent's thread may have been inside revalidate_step: which of
       these references it had released is not known. Left, not freed
       twice (the memory is reachable, and the child's L1 is emptied). */
    h->pend = NULL;
    h->npend = h->ipend = 0;
    h->reval = 0;
}

/* ... and a new listener starts, with a pipe of its own. The caller
   waits for it (tc__coh_wait) once it has let go of fork_mu. */
int tc__coh_after_fork(tc__coh *h)
{
    tc__coh_abandon(h);
    tc__cond_init_mono(&h->cv); /* may count a parent's waiter */
    atomic_store(&h->started, 0);
    return tc__coh_start(h);
}

void tc__coh_health(tc__coh *h, tc_health_info *out)
{
    if (tc__coh_ok(h))
        return;
    pthread_mutex_lock(&h->mu);
    if (h->link_error[0] && !out->last_error[0])
        snprintf(out->last_error, sizeof(out->last_error),
                 "invalidation link: %.100s", h->link_error);
    if (h->link_refusal && !out->l2_refused)
        out->l2_refused = h->link_refusal;
    pthread_mutex_unlock(&h->mu);
}
