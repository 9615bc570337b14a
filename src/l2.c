/* SPDX-License-Identifier: BSD-3-Clause */
/* L2: see l2.h. A call takes a slot from the pool (under the pool mutex),
   does its I/O with no lock held, and gives the slot back. The circuit
   breaker lives under the same mutex. */
#include <errno.h>
#include <stdarg.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "conn.h"
#include "l2.h"
#include "sentinel.h"

typedef struct slot {
    redisContext *ctx;    /* NULL: not connected (yet, or since an error) */
    int dropped;          /* the last context was dropped after an error */
    uint64_t gen;         /* conn_gen when ctx was connected */
    redisContext *orphan; /* after a fork: a parent thread's, untouchable */
} slot;

struct tc__l2 {
    tc_options o; /* connection settings, copied */
    const tc__logger *lg;
    tc__counters *ctr;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* a slot was given back */
    slot *slots;
    uint32_t *free_ids; /* stack of free slot indexes */
    uint32_t nfree;

    /* circuit breaker, under mu */
    int state;           /* tc_breaker_state */
    int probing;         /* a half-open probe is under way */
    uint32_t fails;      /* consecutive failures */
    uint32_t attempt;    /* probes failed since the breaker opened */
    uint64_t retry_at;   /* mono ms: when the next probe may go */
    uint64_t down_since; /* mono ms, 0 when up */
    /* Bumped by every failure: an idle connection made before it (say,
       to a Redis since restarted) is replaced before use, not tried and
       counted as one more failure. */
    uint64_t conn_gen;
    char last_error[128];
    /* refusals, under mu: what Redis refused last and why (tc_refusal),
       until that command (or, for AUTH and SELECT, a connection) works */
    int refusal;
    char refused_cmd[16];
    int writes_refused;              /* since the last write that landed */
    char endpoint[TC_HOST_MAX + 16]; /* for log lines; no credentials */

    /* Where the connections go: the options' endpoint, a cluster node's
       address (has_addr), or the master a Sentinel names (sentinel; addr
       under mu, from generation sen_gen). A cluster's l2 routes every
       call to the node l2s of `cluster` and has no connection itself. */
    tc__addr addr;
    int has_addr;
    int cluster_node; /* keys of one command must share a slot */
    tc__sentinel *sentinel;
    uint64_t sen_gen;
    tc__cluster *cluster;
};

/* Writes are what stores values: when every one is refused, the cache
   computes and serves but never shares anything. */
static int is_write(const char *cmd)
{
    return strcmp(cmd, "SET") == 0 || strcmp(cmd, "EVALSHA") == 0 ||
           strcmp(cmd, "EVAL") == 0;
}

/* Records a refusal; 1 when it is news (a new kind): log it. */
static int refused_locked(tc__l2 *l2, const char *cmd, int kind,
                          const char *err)
{
    snprintf(l2->last_error, sizeof(l2->last_error), "%s: %s", cmd, err);
    if (is_write(cmd))
        l2->writes_refused = 1;
    snprintf(l2->refused_cmd, sizeof(l2->refused_cmd), "%s", cmd);
    int news = l2->refusal != kind;
    l2->refusal = kind;
    return news;
}

static void log_refusal(tc__l2 *l2, const char *cmd, int kind, const char *err)
{
    tc__log(l2->lg, TC_LOG_ERROR, "redis.refused",
            "redis %s refused %s (%s): %s", l2->endpoint, cmd,
            tc__conn_refusal_hint(kind), err);
}

/* A command that works again ends the refusal it was the subject of.
   "" names no command: a refused connection (refused_cmd "") is ended by
   a connection that works (note_connected), not by a reply. */
static void accepted_locked(tc__l2 *l2, const char *cmd)
{
    if (is_write(cmd))
        l2->writes_refused = 0;
    if (l2->refusal && cmd[0] && strcmp(cmd, l2->refused_cmd) == 0) {
        l2->refusal = TC_REFUSAL_NONE;
        l2->last_error[0] = '\0';
    }
}

/* The breaker's next probe: full jitter, capped at its cool-down. */
static uint64_t backoff_ms(tc__l2 *l2)
{
    return tc__backoff_ms(l2->attempt, l2->o.breaker_cooldown_ms);
}

/* ---- breaker (all *_locked: mu held) ---- */

/* May this call use Redis? Sets *probe when it is the half-open probe. */
static int admit_locked(tc__l2 *l2, int *probe)
{
    *probe = 0;
    if (l2->state == TC_BREAKER_CLOSED)
        return 1;
    if (l2->probing || tc__mono_ms() < l2->retry_at)
        return 0;
    l2->state = TC_BREAKER_HALF_OPEN;
    l2->probing = 1;
    *probe = 1;
    return 1;
}

/* Returns 1 when this success closed the breaker (log it once), with
   how long Redis was away in *down_ms. */
static int success_locked(tc__l2 *l2, int probe, uint64_t *down_ms)
{
    if (probe)
        l2->probing = 0;
    l2->fails = 0;
    if (l2->state == TC_BREAKER_CLOSED)
        return 0;
    *down_ms = tc__mono_ms() - l2->down_since;
    l2->state = TC_BREAKER_CLOSED;
    l2->attempt = 0;
    l2->down_since = 0;
    l2->last_error[0] = '\0';
    return 1;
}

static void open_locked(tc__l2 *l2)
{
    l2->state = TC_BREAKER_OPEN;
    l2->attempt = 0;
    l2->down_since = tc__mono_ms();
    l2->retry_at = l2->down_since + backoff_ms(l2);
}

/* Returns 1 when this failure opened the breaker (log it once). */
static int failure_locked(tc__l2 *l2, int probe, const char *err)
{
    snprintf(l2->last_error, sizeof(l2->last_error), "%s", err);
    l2->conn_gen++; /* the other pooled connections are suspect too */
    if (probe)
        l2->probing = 0;
    /* A probe reopens the breaker, unless a call admitted before it
       opened has closed it meanwhile: then this is an ordinary failure. */
    if (probe && l2->state != TC_BREAKER_CLOSED) {
        l2->attempt++;
        l2->state = TC_BREAKER_OPEN;
        l2->retry_at = tc__mono_ms() + backoff_ms(l2);
        return 0;
    }
    if (l2->state != TC_BREAKER_CLOSED || ++l2->fails < l2->o.breaker_failures)
        return 0;
    open_locked(l2);
    return 1;
}

static void note_success(tc__l2 *l2, int probe, const char *cmd)
{
    uint64_t down_ms = 0;
    pthread_mutex_lock(&l2->mu);
    int closed = success_locked(l2, probe, &down_ms);
    accepted_locked(l2, cmd);
    pthread_mutex_unlock(&l2->mu);
    if (closed)
        tc__log(l2->lg, TC_LOG_INFO, "redis.up", "redis %s back after %.1f s",
                l2->endpoint, (double)down_ms / 1000.0);
}

/* A connection that failed; `refusal` when the server refused it (AUTH,
   SELECT), which is logged as such, not as Redis being away. */
static void note_failure(tc__l2 *l2, int probe, const char *err, int refusal)
{
    TC__INC(l2->ctr->backend_errors);
    pthread_mutex_lock(&l2->mu);
    int opened = failure_locked(l2, probe, err);
    int news = 0;
    if (refusal) {
        news = l2->refusal != refusal;
        l2->refusal = refusal;
        l2->refused_cmd[0] = '\0'; /* a connection ends it, not a command */
    }
    pthread_mutex_unlock(&l2->mu);
    if (opened)
        TC__INC(l2->ctr->breaker_opens);
    if (news)
        tc__log(l2->lg, TC_LOG_ERROR, "redis.refused",
                "redis %s refused the connection (%s): %s", l2->endpoint,
                tc__conn_refusal_hint(refusal), err);
    else if (opened && !refusal)
        tc__log(l2->lg, TC_LOG_WARN, "redis.down", "redis %s unreachable: %s",
                l2->endpoint, err);
}

/* A connection was made: a refusal of AUTH or SELECT is over. */
static void note_connected(tc__l2 *l2)
{
    pthread_mutex_lock(&l2->mu);
    if (l2->refusal == TC_REFUSAL_AUTH || l2->refusal == TC_REFUSAL_DB) {
        l2->refusal = TC_REFUSAL_NONE;
        l2->last_error[0] = '\0';
    }
    pthread_mutex_unlock(&l2->mu);
}

/* Takes a free slot, waiting up to the command timeout for one. */
static int take_slot_locked(tc__l2 *l2, uint32_t *id)
{
    struct timespec deadline = tc__deadline_ms(l2->o.command_timeout_ms);
    while (l2->nfree == 0)
        if (pthread_cond_timedwait(&l2->cv, &l2->mu, &deadline) == ETIMEDOUT)
            return 0;
    *id = l2->free_ids[--l2->nfree];
    return 1;
}

static void give_slot(tc__l2 *l2, uint32_t id)
{
    pthread_mutex_lock(&l2->mu);
    l2->free_ids[l2->nfree++] = id;
    pthread_cond_signal(&l2->cv);
    pthread_mutex_unlock(&l2->mu);
}

/* A call in progress: the slot and whether it is the breaker's probe. */
typedef struct call {
    uint32_t id;
    int probe;
    redisContext *ctx;
    char cmd[16];   /* its command's name, for the refusal bookkeeping */
    uint64_t t0_us; /* when it asked for a slot: the latency histogram */
} call;

/* The first word of a command, as Redis names it. */
static void set_cmd(call *cl, const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && i < sizeof(cl->cmd) - 1 && s[i] && s[i] != ' '; i++)
        cl->cmd[i] = s[i];
    cl->cmd[i] = '\0';
}

/* Sentinel: the master changed since the pool connected (generation
   gen, address a). Its connections to the old one go (conn_gen), and a
   breaker opened by the old one's death probes the new one at once: the
   next call, not the end of a back-off. mu held. */
static void adopt_master_locked(tc__l2 *l2, const tc__addr *a, uint64_t gen)
{
    l2->addr = *a;
    l2->sen_gen = gen;
    l2->conn_gen++;
    l2->retry_at = 0;
    l2->attempt = 0;
}

/* No master known yet: ask the sentinels (an admitted call only, so that
   an open breaker keeps callers from asking in a loop). 0, or -1 with the
   failure noted. */
static int find_master(tc__l2 *l2, int probe)
{
    tc__addr a;
    tc__sentinel_refresh(l2->sentinel, 0);
    uint64_t gen = tc__sentinel_master(l2->sentinel, &a);
    if (gen == 0) {
        char err[128];
        tc__sentinel_error(l2->sentinel, err, sizeof(err));
        note_failure(l2, probe, err, TC_REFUSAL_NONE);
        return -1;
    }
    pthread_mutex_lock(&l2->mu);
    if (gen > l2->sen_gen)
        adopt_master_locked(l2, &a, gen);
    pthread_mutex_unlock(&l2->mu);
    return 0;
}

/* TC_OK with a connected context in cl->ctx, or TC_EBACKEND (skipped by
   the breaker, pool exhausted, or connecting failed). */
static int call_begin(tc__l2 *l2, call *cl, const char *cmd, size_t cmdlen)
{
    cl->t0_us = tc__mono_us();
    set_cmd(cl, cmd, cmdlen);
    tc__addr sa;
    uint64_t sgen = l2->sentinel ? tc__sentinel_master(l2->sentinel, &sa) : 0;
    pthread_mutex_lock(&l2->mu);
    if (sgen > l2->sen_gen) /* before the breaker: see adopt; never back */
        adopt_master_locked(l2, &sa, sgen);
    int admitted = admit_locked(l2, &cl->probe);
    int got = admitted && take_slot_locked(l2, &cl->id);
    if (admitted && !got && cl->probe)
        l2->probing = 0; /* no slot: let a later call probe */
    uint64_t gen = l2->conn_gen;
    tc__addr addr = l2->addr;
    pthread_mutex_unlock(&l2->mu);
    if (!got)
        return TC_EBACKEND;
    if (l2->sentinel && sgen == 0) {
        if (find_master(l2, cl->probe) != 0) {
            give_slot(l2, cl->id);
            return TC_EBACKEND;
        }
        pthread_mutex_lock(&l2->mu);
        gen = l2->conn_gen;
        addr = l2->addr;
        pthread_mutex_unlock(&l2->mu);
    }
    slot *s = &l2->slots[cl->id];
    if (s->ctx && s->gen != gen) { /* dropped unused, nothing sent */
        redisFree(s->ctx);
        s->ctx = NULL;
        s->dropped = 1;
    }
    if (!s->ctx) {
        char err[128];
        int refusal;
        s->ctx = tc__conn_open(&l2->o, l2->has_addr ? &addr : NULL,
                               l2->o.command_timeout_ms, "pool", err,
                               sizeof(err), &refusal);
        if (!s->ctx) {
            note_failure(l2, cl->probe, err, refusal);
            give_slot(l2, cl->id);
            if (l2->sentinel) /* a master gone: maybe replaced */
                tc__sentinel_refresh(l2->sentinel, 0);
            return TC_EBACKEND;
        }
        note_connected(l2);
        if (s->dropped)
            TC__INC(l2->ctr->reconnects);
        s->dropped = 0;
        s->gen = gen;
    }
    cl->ctx = s->ctx;
    return TC_OK;
}

/* An error reply that trying again will not change: a refusal (above),
   or a command the server does not have. LOADING, BUSY, OOM, MASTERDOWN
   and the like pass: they are a Redis that is not ready. */
static int refused_for_good(const char *err)
{
    return strncmp(err, "ERR unknown command", 19) == 0 ||
           strncmp(err, "ERR unknown subcommand", 22) == 0;
}

/* An error reply: the server is there. A refusal is recorded for
   tc_health and logged at error once per kind; the rest at debug. */
static int error_reply(tc__l2 *l2, call *cl, const char *err)
{
    TC__INC(l2->ctr->backend_errors);
    int kind = tc__conn_refusal_of(cl->cmd, err);
    note_success(l2, cl->probe, "");
    pthread_mutex_lock(&l2->mu);
    int news = kind && refused_locked(l2, cl->cmd, kind, err);
    pthread_mutex_unlock(&l2->mu);
    if (news)
        log_refusal(l2, cl->cmd, kind, err);
    else
        tc__log(l2->lg, TC_LOG_DEBUG, "redis.error", "redis error reply: %s",
                err);
    /* A replica may be promoted back (a failover under way): what it
       refuses is retried, queued invalidations included, while health
       and the log say what is going on. */
    if (kind == TC_REFUSAL_READONLY) {
        if (l2->sentinel) /* a master demoted: who is it now? */
            tc__sentinel_refresh(l2->sentinel, 0);
        return TC_EBACKEND;
    }
    return kind || refused_for_good(err) ? TC_EREFUSED : TC_EBACKEND;
}

/* Ends a call. A NULL reply means the context failed (I/O error or
   timeout): it is freed, never reused. An error reply leaves it usable. */
static int call_end(tc__l2 *l2, call *cl, redisReply *r)
{
    slot *s = &l2->slots[cl->id];
    int rc = TC_OK;
    if (!r) {
        char err[128];
        snprintf(err, sizeof(err), "%s",
                 s->ctx->err ? s->ctx->errstr : "no reply");
        redisContext *dead = s->ctx;
        s->ctx = NULL;
        redisFree(dead);
        s->dropped = 1;
        note_failure(l2, cl->probe, err, TC_REFUSAL_NONE);
        rc = TC_EBACKEND;
    } else if (r->type == REDIS_REPLY_ERROR &&
               (strncmp(r->str, "NOSCRIPT", 8) == 0 ||
                strncmp(r->str, "MOVED ", 6) == 0 ||
                strncmp(r->str, "ASK ", 4) == 0)) {
        /* expected: the caller sends EVAL, or follows the redirection */
        note_success(l2, cl->probe, "");
        rc = TC_EBACKEND;
    } else if (r->type == REDIS_REPLY_ERROR) {
        rc = error_reply(l2, cl, r->str);
    } else {
        note_success(l2, cl->probe, cl->cmd);
    }
    give_slot(l2, cl->id);
    tc__hist_add(&l2->ctr->l2_lat, tc__mono_us() - cl->t0_us);
    return rc;
}

static int command(tc__l2 *l2, const char *fmt, ...);

/* At open: a write that changes nothing (the namespace's "{}" is no
   user's key, so no invalidation goes out either) finds an ACL key
   pattern that misses the namespace, or a replica, before the first
   tc_set is silently not stored. */
static void probe_write(tc__l2 *l2)
{
    command(l2, "DEL %s:{}", l2->o.ns);
}

/* The parts every l2 has; no connection yet. */
static tc__l2 *l2_new(const tc_options *o, const tc__logger *lg,
                      tc__counters *ctr)
{
    tc__l2 *l2 = tc__calloc(1, sizeof(*l2));
    if (!l2)
        return NULL;
    l2->o = *o;
    l2->lg = lg;
    l2->ctr = ctr;
    l2->slots = tc__calloc(o->pool_size, sizeof(slot));
    l2->free_ids = tc__calloc(o->pool_size, sizeof(uint32_t));
    if (!l2->slots || !l2->free_ids) {
        tc__free(l2->slots);
        tc__free(l2->free_ids);
        tc__free(l2);
        return NULL;
    }
    for (uint32_t i = 0; i < o->pool_size; i++)
        l2->free_ids[l2->nfree++] = o->pool_size - 1 - i;
    pthread_mutex_init(&l2->mu, NULL);
    tc__cond_init_mono(&l2->cv);
    tc__conn_endpoint(o, l2->endpoint, sizeof(l2->endpoint));
    return l2;
}

/* The first connection, eagerly: a Redis that is down at open opens the
   breaker at once (and is logged once), rather than after the first few
   calls have each waited for it. */
static void connect_first(tc__l2 *l2)
{
    call cl;
    if (call_begin(l2, &cl, "PING", 4) == TC_OK) {
        give_slot(l2, cl.id);
        probe_write(l2);
        return;
    }
    pthread_mutex_lock(&l2->mu);
    int opened_here = l2->state == TC_BREAKER_CLOSED;
    if (opened_here)
        open_locked(l2);
    pthread_mutex_unlock(&l2->mu);
    if (opened_here)
        TC__INC(l2->ctr->breaker_opens);
    if (opened_here && !l2->refusal)
        tc__log(l2->lg, TC_LOG_WARN, "redis.down", "redis %s unreachable: %s",
                l2->endpoint, l2->last_error);
}

int tc__l2_create(tc__l2 **out, const tc_options *o, const tc__topo *t,
                  const tc__logger *lg, tc__counters *ctr)
{
    tc__l2 *l2 = *out = l2_new(o, lg, ctr);
    if (!l2)
        return TC_ENOMEM;
    int rc = TC_OK;
    if (t->kind == TC__TOPO_CLUSTER) {
        snprintf(l2->endpoint, sizeof(l2->endpoint), "cluster");
        rc = tc__cluster_create(&l2->cluster, o, t, lg, ctr);
    } else if (t->kind == TC__TOPO_SENTINEL) {
        snprintf(l2->endpoint, sizeof(l2->endpoint), "master \"%s\"",
                 t->master);
        l2->has_addr = 1;
        rc = tc__sentinel_create(&l2->sentinel, o, t, lg);
    }
    if (rc != TC_OK) {
        tc__l2_destroy(l2);
        *out = NULL;
        return rc;
    }
    if (!l2->cluster)
        connect_first(l2);
    return TC_OK;
}

int tc__l2_node_create(tc__l2 **out, const tc_options *o, const tc__addr *a,
                       const tc__logger *lg, tc__counters *ctr)
{
    tc__l2 *l2 = *out = l2_new(o, lg, ctr);
    if (!l2)
        return TC_ENOMEM;
    l2->addr = *a;
    l2->has_addr = 1;
    l2->cluster_node = 1;
    tc__addr_str(a, l2->endpoint, sizeof(l2->endpoint));
    return TC_OK;
}

tc__sentinel *tc__l2_sentinel(tc__l2 *l2)
{
    return l2->sentinel;
}

tc__cluster *tc__l2_cluster(tc__l2 *l2)
{
    return l2->cluster;
}

void tc__l2_destroy(tc__l2 *l2)
{
    if (!l2)
        return;
    for (uint32_t i = 0; i < l2->o.pool_size; i++)
        if (l2->slots[i].ctx)
            redisFree(l2->slots[i].ctx);
    tc__cluster_destroy(l2->cluster);
    tc__sentinel_destroy(l2->sentinel);
    pthread_cond_destroy(&l2->cv);
    pthread_mutex_destroy(&l2->mu);
    tc__free(l2->slots);
    tc__free(l2->free_ids);
    tc__free(l2);
}

/* One command whose reply only says whether it worked. */
static int command(tc__l2 *l2, const char *fmt, ...)
{
    call cl;
    if (call_begin(l2, &cl, fmt, strlen(fmt)) != TC_OK)
        return TC_EBACKEND;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(cl.ctx, fmt, ap);
    va_end(ap);
    int rc = call_end(l2, &cl, r);
    freeReplyObject(r);
    return rc;
}

int tc__l2_get(tc__l2 *l2, const char *rkey, size_t rlen, tc__l2_reader fn,
               void *ud)
{
    if (l2->cluster)
        return tc__cluster_get(l2->cluster, rkey, rlen, fn, ud);
    call cl;
    if (call_begin(l2, &cl, "GET", 3) != TC_OK)
        return TC_EBACKEND;
    redisReply *r = redisCommand(cl.ctx, "GET %b", rkey, rlen);
    int rc = call_end(l2, &cl, r);
    if (rc == TC_OK) {
        if (r->type == REDIS_REPLY_STRING)
            rc = fn(ud, r->str, r->len);
        else
            rc = r->type == REDIS_REPLY_NIL ? TC_MISS : TC_EBACKEND;
    }
    freeReplyObject(r);
    return rc;
}

/* The key a command's node is chosen by: EVAL and EVALSHA name theirs
   after the script and the key count. A command of one word (PING) has
   none: its own name picks some node. */
static int key_arg(int argc, const char **argv, const size_t *lens)
{
    int script = (lens[0] == 4 && strncmp(argv[0], "EVAL", 4) == 0) ||
                 (lens[0] == 7 && strncmp(argv[0], "EVALSHA", 7) == 0);
    return script && argc > 3 ? 3 : argc > 1 ? 1 : 0;
}

int tc__l2_argv(tc__l2 *l2, int argc, const char **argv, const size_t *lens,
                tc__l2_reply_fn fn, void *ud)
{
    if (l2->cluster)
        return tc__cluster_argv(l2->cluster, key_arg(argc, argv, lens), argc,
                                argv, lens, fn, ud);
    call cl;
    if (call_begin(l2, &cl, argv[0], lens[0]) != TC_OK)
        return TC_EBACKEND;
    redisReply *r = redisCommandArgv(cl.ctx, argc, argv, lens);
    int rc = call_end(l2, &cl, r);
    if (r && rc != TC_EREFUSED)
        rc = fn(ud, r);
    freeReplyObject(r);
    return rc;
}

int tc__l2_reply_ok(void *ud, const redisReply *r)
{
    (void)ud;
    return r->type == REDIS_REPLY_ERROR ? TC_EBACKEND : TC_OK;
}

int tc__l2_reply_status(void *ud, const redisReply *r)
{
    (void)ud;
    if (r->type == REDIS_REPLY_STATUS)
        return TC_OK;
    return r->type == REDIS_REPLY_NIL ? TC_MISS : TC_EBACKEND;
}

/* ASKING, then the command, on one connection: a slot being imported
   takes the command only so. */
int tc__l2_argv_asking(tc__l2 *l2, int argc, const char **argv,
                       const size_t *lens, tc__l2_reply_fn fn, void *ud)
{
    call cl;
    if (call_begin(l2, &cl, argv[0], lens[0]) != TC_OK)
        return TC_EBACKEND;
    redisReply *ok = NULL, *r = NULL;
    if (redisAppendCommand(cl.ctx, "ASKING") == REDIS_OK &&
        redisAppendCommandArgv(cl.ctx, argc, argv, lens) == REDIS_OK &&
        redisGetReply(cl.ctx, (void **)&ok) == REDIS_OK)
        redisGetReply(cl.ctx, (void **)&r);
    freeReplyObject(ok);
    int rc = call_end(l2, &cl, r);
    if (r && rc != TC_EREFUSED)
        rc = fn(ud, r);
    freeReplyObject(r);
    return rc;
}

int tc__l2_set(tc__l2 *l2, const char *rkey, size_t rlen, const char *val,
               size_t len, uint32_t ttl_ms)
{
    if (l2->cluster)
        return tc__cluster_set(l2->cluster, rkey, rlen, val, len, ttl_ms);
    return command(l2, "SET %b %b PX %u", rkey, rlen, val, len,
                   (unsigned)ttl_ms);
}

int tc__l2_del(tc__l2 *l2, const char *rkey, size_t rlen)
{
    if (l2->cluster)
        return tc__cluster_del(l2->cluster, rkey, rlen);
    return command(l2, "DEL %b %b:lease", rkey, rlen, rkey, rlen);
}

/* A cluster node: one UNLINK per key, pipelined (keys of different
   slots cannot share a command). *out: a status reply, or NULL if the
   connection failed; the keys unlinked are added to *count. A key that
   moved away meanwhile (MOVED) is counted out: SCAN on its new node
   finds it. */
static void unlink_each(redisContext *ctx, const redisReply *keys,
                        redisReply **out, uint64_t *count)
{
    long long n = 0;
    int ok = 1;
    /* ASKING first: a key SCAN found here in a slot being imported is
       unlinked here, not redirected to the node it came from (where SCAN
       no longer finds it). On a stable slot ASKING changes nothing. */
    for (size_t i = 0; i < keys->elements && ok; i++)
        ok = redisAppendCommand(ctx, "ASKING") == REDIS_OK &&
             redisAppendCommand(ctx, "UNLINK %b", keys->element[i]->str,
                                keys->element[i]->len) == REDIS_OK;
    for (size_t i = 0; i < 2 * keys->elements && ok; i++) {
        redisReply *r = NULL;
        ok = redisGetReply(ctx, (void **)&r) == REDIS_OK && r;
        if (ok && i % 2 && r->type == REDIS_REPLY_INTEGER)
            n += r->integer;
        freeReplyObject(r);
    }
    /* a reply that says the connection is fine; the count goes apart */
    *out = ok ? redisCommand(ctx, "PING") : NULL;
    *count += (uint64_t)n;
}

/* UNLINK the string keys of one SCAN page (r->element[1]) into *out.
   -1: no memory for the command, nothing was sent. */
static int unlink_page(tc__l2 *l2, redisContext *ctx, const redisReply *keys,
                       redisReply **out, uint64_t *count)
{
    *out = NULL;
    if (keys->elements == 0) {
        *out = redisCommand(ctx, "PING");
        return 0;
    }
    if (l2->cluster_node) {
        unlink_each(ctx, keys, out, count);
        return 0;
    }
    size_t n = keys->elements + 1;
    const char **argv = tc__malloc(n * sizeof(*argv));
    size_t *lens = tc__malloc(n * sizeof(*lens));
    int rc = argv && lens ? 0 : -1;
    if (rc == 0) {
        argv[0] = "UNLINK";
        lens[0] = 6;
        for (size_t i = 0; i < keys->elements; i++) {
            argv[i + 1] = keys->element[i]->str;
            lens[i + 1] = keys->element[i]->len;
        }
        *out = redisCommandArgv(ctx, (int)n, argv, lens);
    }
    tc__free(argv);
    tc__free(lens);
    return rc;
}

static int scan_reply_ok(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[0]->type == REDIS_REPLY_STRING &&
           r->element[1]->type == REDIS_REPLY_ARRAY;
}

int tc__l2_unlink_match(tc__l2 *l2, const char *pattern, uint64_t *n)
{
    *n = 0;
    if (l2->cluster)
        return tc__cluster_unlink_match(l2->cluster, pattern, n);
    call cl;
    if (call_begin(l2, &cl, "SCAN", 4) != TC_OK)
        return TC_EBACKEND;
    char cursor[32] = "0";
    redisReply *r = NULL;
    int done = 0, oom = 0;
    /* Each round trip is bounded by the command timeout; the loop ends
       when SCAN hands back cursor 0 or anything fails. */
    while (!done && !oom) {
        r = redisCommand(cl.ctx, "SCAN %s MATCH %s COUNT 1000", cursor,
                         pattern);
        if (!scan_reply_ok(r))
            break;
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *u;
        oom = unlink_page(l2, cl.ctx, r->element[1], &u, n) != 0;
        freeReplyObject(r);
        r = u;
        if (oom)
            break;
        if (!u || u->type == REDIS_REPLY_ERROR)
            break;
        if (u->type == REDIS_REPLY_INTEGER)
            *n += (uint64_t)u->integer;
        freeReplyObject(u);
        r = NULL;
        done = strcmp(cursor, "0") == 0;
    }
    redisReply ok = {.type = REDIS_REPLY_STATUS};
    if (oom) { /* the connection is fine: give it back as it is */
        call_end(l2, &cl, &ok);
        return TC_ENOMEM;
    }
    if (!done) { /* r: NULL (I/O failed) or the reply that was wrong */
        int rc = call_end(l2, &cl, r);
        freeReplyObject(r);
        return rc == TC_OK ? TC_EBACKEND : rc;
    }
    return call_end(l2, &cl, &ok);
}

/* One SCAN page's GETs, pipelined on ctx: 1 to go on, 0 to stop, -1
   when the connection failed (after the replies it could read). */
static int get_page(redisContext *ctx, const redisReply *keys,
                    const tc__l2_scan_fns *fns, uint64_t *tags, char *want)
{
    size_t sent = 0;
    int stop = 0;
    for (size_t i = 0; i < keys->elements && !stop; i++) {
        const redisReply *k = keys->element[i];
        want[i] = 0;
        if (k->type != REDIS_REPLY_STRING)
            continue;
        int w = fns->key(fns->ud, k->str, k->len, &tags[i]);
        if (w < 0)
            stop = 1;
        else if (w > 0 && redisAppendCommand(ctx, "GET %b", k->str, k->len) ==
                              REDIS_OK) {
            want[i] = 1;
            sent++;
        }
    }
    for (size_t i = 0; i < keys->elements && sent; i++) {
        if (!want[i])
            continue;
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || !r)
            return -1;
        sent--;
        const redisReply *k = keys->element[i];
        int str = r->type == REDIS_REPLY_STRING;
        if (!stop && fns->value(fns->ud, k->str, k->len, tags[i],
                                str ? r->str : NULL, str ? r->len : 0) < 0)
            stop = 1; /* the replies still come: read them */
        freeReplyObject(r);
    }
    return !stop;
}

int tc__l2_scan_get(tc__l2 *l2, const char *pattern,
                    const tc__l2_scan_fns *fns)
{
    if (l2->cluster)
        return tc__cluster_scan_get(l2->cluster, pattern, fns);
    call cl;
    if (call_begin(l2, &cl, "SCAN", 4) != TC_OK)
        return TC_EBACKEND;
    char cursor[32] = "0";
    uint64_t *tags = NULL;
    char *want = NULL;
    size_t cap = 0;
    redisReply *r = NULL;
    int more = 1, oom = 0, failed = 0;
    while (more) {
        r = redisCommand(cl.ctx, "SCAN %s MATCH %s COUNT 1000", cursor,
                         pattern);
        if (!scan_reply_ok(r))
            break;
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        if (keys->elements > cap) {
            tc__free(tags);
            tc__free(want);
            cap = keys->elements;
            tags = tc__malloc(cap * sizeof(*tags));
            want = tc__malloc(cap);
            if (!tags || !want) {
                oom = 1;
                break;
            }
        }
        int go = get_page(cl.ctx, keys, fns, tags, want);
        freeReplyObject(r);
        r = NULL;
        if (go < 0) {
            failed = 1;
            break;
        }
        more = go && strcmp(cursor, "0") != 0;
    }
    tc__free(tags);
    tc__free(want);
    redisReply ok = {.type = REDIS_REPLY_STATUS};
    if (oom) { /* the connection is fine: give it back as it is */
        freeReplyObject(r);
        call_end(l2, &cl, &ok);
        return TC_ENOMEM;
    }
    if (failed || more) { /* r: NULL (I/O failed) or the reply that was
                             wrong */
        int rc = call_end(l2, &cl, failed ? NULL : r);
        freeReplyObject(r);
        return rc == TC_OK ? TC_EBACKEND : rc;
    }
    return call_end(l2, &cl, &ok);
}

int tc__l2_pipeline(tc__l2 *l2, tc__l2_cmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cmds[i].rc = TC_EBACKEND;
    if (n == 0)
        return TC_OK;
    call cl;
    if (call_begin(l2, &cl, cmds[0].argv[0], cmds[0].lens[0]) != TC_OK)
        return TC_EBACKEND;
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = redisAppendCommandArgv(cl.ctx, cmds[i].argc, cmds[i].argv,
                                    cmds[i].lens) == REDIS_OK;
    if (!ok) { /* no memory for the buffer: nothing was written yet */
        redisReply fine = {.type = REDIS_REPLY_STATUS};
        call_end(l2, &cl, &fine);
        return TC_EBACKEND;
    }
    size_t got = 0;
    int refused = 0;
    for (; got < n; got++) {
        redisReply *r = NULL;
        if (redisGetReply(cl.ctx, (void **)&r) != REDIS_OK || !r)
            break;
        if (r->type != REDIS_REPLY_ERROR)
            cmds[got].rc =
                cmds[got].fn ? cmds[got].fn(cmds[got].ud, r) : TC_OK;
        else if (strncmp(r->str, "MOVED ", 6) && strncmp(r->str, "ASK ", 4))
            cmds[got].rc = error_reply(l2, &cl, r->str);
        refused |= cmds[got].rc == TC_EREFUSED;
        freeReplyObject(r);
    }
    /* The connection's fate: fine if every reply came, else failed. A
       refusal among them stays in force (the command's name would end
       it). */
    if (refused)
        cl.cmd[0] = '\0';
    redisReply fine = {.type = REDIS_REPLY_STATUS};
    int rc = call_end(l2, &cl, got == n ? &fine : NULL);
    return got == n ? TC_OK : rc;
}

/* At most this many commands go in one pipeline: a round trip per few
   hundred keys, and a reply buffer that stays small. */
#define PIPE_MAX 256

int tc__l2_del_many(tc__l2 *l2, const tc__l2_key *keys, size_t n, int *rcs)
{
    if (l2->cluster)
        return tc__cluster_del_many(l2->cluster, keys, n, rcs);
    tc__l2_cmd cmds[PIPE_MAX];
    int rc = TC_OK;
    for (size_t from = 0; from < n; from += PIPE_MAX) {
        size_t m = n - from < PIPE_MAX ? n - from : PIPE_MAX;
        for (size_t i = 0; i < m; i++) {
            const tc__l2_key *k = &keys[from + i];
            cmds[i] = (tc__l2_cmd){3,
                                   {"DEL", k->rkey, k->lease},
                                   {3, k->rlen, k->llen},
                                   TC_EBACKEND,
                                   NULL,
                                   NULL};
        }
        int r = rc == TC_OK ? tc__l2_pipeline(l2, cmds, m) : rc;
        for (size_t i = 0; i < m; i++)
            rcs[from + i] = rc == TC_OK ? cmds[i].rc : TC_EBACKEND;
        if (r != TC_OK)
            rc = r; /* the rest would fail the same way: not tried */
    }
    return rc;
}

int tc__l2_getm_reply(void *ud, const redisReply *r)
{
    tc__l2_getm *g = ud;
    if (r->type == REDIS_REPLY_STRING)
        return g->fn(g->ud, r->str, r->len);
    return r->type == REDIS_REPLY_NIL ? TC_MISS : TC_EBACKEND;
}

tc__l2_cmd tc__l2_getm_cmd(tc__l2_getm *g)
{
    if (g->wver_only)
        return (tc__l2_cmd){4,
                            {"GETRANGE", g->rkey, "-9", "-1"},
                            {8, g->rlen, 2, 2},
                            TC_EBACKEND,
                            tc__l2_getm_reply,
                            g};
    return (tc__l2_cmd){2,           {"GET", g->rkey},  {3, g->rlen},
                        TC_EBACKEND, tc__l2_getm_reply, g};
}

int tc__l2_get_many(tc__l2 *l2, tc__l2_getm *gets, size_t n)
{
    if (l2->cluster)
        return tc__cluster_get_many(l2->cluster, gets, n);
    tc__l2_cmd cmds[PIPE_MAX];
    int rc = TC_OK;
    for (size_t from = 0; from < n; from += PIPE_MAX) {
        size_t m = n - from < PIPE_MAX ? n - from : PIPE_MAX;
        for (size_t i = 0; i < m; i++)
            cmds[i] = tc__l2_getm_cmd(&gets[from + i]);
        int r = rc == TC_OK ? tc__l2_pipeline(l2, cmds, m) : rc;
        for (size_t i = 0; i < m; i++)
            gets[from + i].rc = rc == TC_OK ? cmds[i].rc : TC_EBACKEND;
        if (r != TC_OK)
            rc = r; /* the rest would fail the same way: not tried */
    }
    return rc;
}

void tc__l2_alive(tc__l2 *l2)
{
    if (l2->cluster) {
        tc__cluster_alive(l2->cluster);
        return;
    }
    pthread_mutex_lock(&l2->mu);
    if (l2->state == TC_BREAKER_OPEN)
        l2->retry_at = 0;
    pthread_mutex_unlock(&l2->mu);
}

int tc__l2_publish(tc__l2 *l2, const char *channel, const char *msg,
                   size_t len)
{
    if (l2->cluster) { /* any node: the cluster bus carries it to all */
        const char *argv[] = {"PUBLISH", channel, msg};
        size_t lens[] = {7, strlen(channel), len};
        return tc__cluster_argv(l2->cluster, 1, 3, argv, lens, tc__l2_reply_ok,
                                NULL);
    }
    return command(l2, "PUBLISH %s %b", channel, msg, len);
}

void tc__l2_lock(tc__l2 *l2)
{
    pthread_mutex_lock(&l2->mu);
    if (l2->cluster)
        tc__cluster_lock(l2->cluster);
    if (l2->sentinel)
        tc__sentinel_lock(l2->sentinel);
}

void tc__l2_unlock(tc__l2 *l2)
{
    if (l2->sentinel)
        tc__sentinel_unlock(l2->sentinel);
    if (l2->cluster)
        tc__cluster_unlock(l2->cluster);
    pthread_mutex_unlock(&l2->mu);
}

/* In a child after fork(): the parent's connections are closed without a
   byte written (redisFree only closes the socket, and the parent keeps
   its own descriptor open), and every slot is free again: the threads
   that held some do not exist here. */
void tc__l2_after_fork(tc__l2 *l2)
{
    /* Idle slots: close their connections (redisFree writes nothing).
       Busy ones belonged to threads of the parent that may have been
       anywhere in hiredis: forget them, touching nothing. */
    char idle[l2->o.pool_size];
    memset(idle, 0, sizeof(idle));
    for (uint32_t i = 0; i < l2->nfree; i++)
        idle[l2->free_ids[i]] = 1;
    l2->nfree = 0;
    for (uint32_t i = 0; i < l2->o.pool_size; i++) {
        slot *s = &l2->slots[i];
        if (s->ctx && idle[i])
            redisFree(s->ctx);
        else if (s->ctx) /* kept reachable, never used or freed here */
            s->orphan = s->ctx;
        s->ctx = NULL;
        s->dropped = 0;
        l2->free_ids[l2->nfree++] = l2->o.pool_size - 1 - i;
    }
    l2->probing = 0;
    /* The parent's waiters are still counted in the condvar: a signal
       here would wait for them forever. */
    tc__cond_init_mono(&l2->cv);
    if (l2->cluster)
        tc__cluster_after_fork(l2->cluster);
    if (l2->sentinel)
        tc__sentinel_after_fork(l2->sentinel);
}

void tc__l2_health(tc__l2 *l2, tc_health_info *out)
{
    if (l2->cluster) {
        tc__cluster_health(l2->cluster, out);
        return;
    }
    pthread_mutex_lock(&l2->mu);
    out->breaker = l2->state;
    out->l2_connected = l2->state == TC_BREAKER_CLOSED && l2->fails == 0;
    out->down_since_ms = l2->down_since;
    snprintf(out->last_error, sizeof(out->last_error), "%s", l2->last_error);
    out->l2_refused = l2->refusal;
    out->l2_writes_refused = l2->writes_refused;
    pthread_mutex_unlock(&l2->mu);
}

static int dismiss_on(void *ud, tc__l2 *l2)
{
    tc__l2_dismiss(l2, ud);
    return TC_OK;
}

void tc__l2_dismiss(tc__l2 *l2, const char *cmd)
{
    if (l2->cluster) {
        tc__cluster_each_master(l2->cluster, dismiss_on, (void *)cmd);
        return;
    }
    pthread_mutex_lock(&l2->mu);
    accepted_locked(l2, cmd);
    pthread_mutex_unlock(&l2->mu);
}

int tc__l2_refusal(tc__l2 *l2)
{
    if (l2->cluster)
        return tc__cluster_refusal(l2->cluster);
    pthread_mutex_lock(&l2->mu);
    int r = l2->refusal;
    pthread_mutex_unlock(&l2->mu);
    return r;
}
