/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Redis Sentinel (docs/architecture.md §5.8): see sentinel.h.
 *
 * The invariant the others rely on: the generation moves only when the
 * address changes, and only to a server that said "master" to ROLE. The
 * pool drops its connections to an older generation before using them,
 * and the listener treats a new generation as a lost link (its L1 was
 * kept coherent by the old master, whose last writes the new one may not
 * have), resubscribes on the new master and replays what is queued.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "sentinel.h"

#define REFRESH_MIN_MS 100

struct tc__sentinel {
    tc_options o; /* timeouts and the data nodes' credentials */
    tc__topo t;
    const tc__logger *lg;

    pthread_mutex_t mu; /* guards master, gen, err, next_watch */
    tc__addr master;
    _Atomic uint64_t gen; /* written under mu; read without it too */
    char err[128];
    size_t next_watch;         /* the sentinel the next watch connects to */
    size_t last_good;          /* the sentinel that answered last */
    atomic_int refreshing;     /* one refresh at a time; no lock over I/O */
    atomic_int again;          /* a forced refresh came during one: redo */
    _Atomic uint64_t last_try; /* mono ms of the last refresh */
};

/* ROLE on a, as a data connection: 1 when it is a master. */
static int is_master(tc__sentinel *s, const tc__addr *a, char *err, size_t cap)
{
    int refusal;
    redisContext *ctx = tc__conn_open(&s->o, a, s->o.connect_timeout_ms,
                                      "probe", err, cap, &refusal);
    if (!ctx)
        return 0;
    redisReply *r = redisCommand(ctx, "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING &&
             strcmp(r->element[0]->str, "master") == 0;
    if (!ok) {
        char where[TC_HOST_MAX + 16];
        tc__addr_str(a, where, sizeof(where));
        snprintf(err, cap, "%.60s: %s", where,
                 !r                             ? "no answer to ROLE"
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "not a master (yet)");
    }
    freeReplyObject(r);
    redisFree(ctx);
    return ok;
}

/* What sentinel i says the master is: 0 with *a set, else -1 and err. */
static int ask(tc__sentinel *s, size_t i, tc__addr *a, char *err, size_t cap)
{
    int refusal;
    char where[TC_HOST_MAX + 16];
    tc__addr_str(&s->t.nodes[i], where, sizeof(where));
    char why[128];
    redisContext *ctx =
        tc__conn_sentinel(&s->o, &s->t.nodes[i], s->t.sentinel_password, why,
                          sizeof(why), &refusal);
    if (!ctx) {
        snprintf(err, cap, "sentinel %.60s: %s", where, why);
        return -1;
    }
    redisReply *r =
        redisCommand(ctx, "SENTINEL get-master-addr-by-name %s", s->t.master);
    int rc = -1;
    uint64_t port;
    if (!r)
        snprintf(err, cap, "sentinel %.60s: %.80s", where, ctx->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, cap, "sentinel %.60s: %.80s", where, r->str);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
             r->element[0]->type != REDIS_REPLY_STRING ||
             r->element[1]->type != REDIS_REPLY_STRING)
        snprintf(err, cap, "sentinel %.60s: no master named \"%s\"", where,
                 s->t.master);
    else if (r->element[0]->len >= sizeof(a->host) ||
             tc__parse_whole(r->element[1]->str, 1, 65535, &port) !=
                 TC__NUM_OK)
        snprintf(err, cap, "sentinel %.60s: a malformed address", where);
    else {
        memcpy(a->host, r->element[0]->str, r->element[0]->len + 1);
        a->port = (int)port;
        rc = 0;
    }
    freeReplyObject(r);
    redisFree(ctx);
    return rc;
}

static void found(tc__sentinel *s, const tc__addr *a, size_t i)
{
    char where[TC_HOST_MAX + 16];
    int moved = 0;
    pthread_mutex_lock(&s->mu);
    s->last_good = i;
    s->err[0] = '\0';
    if (s->gen == 0 || !tc__addr_eq(&s->master, a)) {
        moved = s->gen != 0;
        s->master = *a;
        atomic_fetch_add(&s->gen, 1);
    }
    pthread_mutex_unlock(&s->mu);
    tc__addr_str(a, where, sizeof(where));
    if (moved)
        tc__log(s->lg, TC_LOG_WARN, "sentinel.switch",
                "sentinel: master \"%s\" is now %s", s->t.master, where);
}

/* Each sentinel in turn, the last one that answered first. */
static void resolve(tc__sentinel *s)
{
    char err[256] = "no sentinel answered";
    pthread_mutex_lock(&s->mu);
    size_t start = s->last_good;
    pthread_mutex_unlock(&s->mu);
    for (size_t k = 0; k < s->t.n; k++) {
        size_t i = (start + k) % s->t.n;
        tc__addr a;
        if (ask(s, i, &a, err, sizeof(err)) == 0 &&
            is_master(s, &a, err, sizeof(err))) {
            found(s, &a, i);
            return;
        }
    }
    pthread_mutex_lock(&s->mu);
    snprintf(s->err, sizeof(s->err), "%.127s", err);
    pthread_mutex_unlock(&s->mu);
    tc__log(s->lg, TC_LOG_DEBUG, "sentinel.lookup.failed",
            "sentinel: master \"%s\" not found: %s", s->t.master, err);
}

uint64_t tc__sentinel_refresh(tc__sentinel *s, int force)
{
    uint64_t now = tc__mono_ms();
    int idle = 0;
    /* A forced refresh (+switch-master) must not be lost to one already
       under way, which may have asked before the switch: it runs again. */
    if (force)
        atomic_store(&s->again, 1);
    if ((force || now - atomic_load(&s->last_try) >= REFRESH_MIN_MS) &&
        atomic_compare_exchange_strong(&s->refreshing, &idle, 1)) {
        atomic_store(&s->last_try, now);
        for (;;) {
            do {
                atomic_store(&s->again, 0);
                resolve(s);
            } while (atomic_load(&s->again));
            atomic_store(&s->refreshing, 0);
            /* a forced one that came between the check and the release
               found us still at it: it is ours to run */
            idle = 0;
            if (!atomic_load(&s->again) ||
                !atomic_compare_exchange_strong(&s->refreshing, &idle, 1))
                break;
        }
    }
    tc__addr a;
    return tc__sentinel_master(s, &a);
}

uint64_t tc__sentinel_master(tc__sentinel *s, tc__addr *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->master;
    uint64_t gen = s->gen;
    pthread_mutex_unlock(&s->mu);
    return gen;
}

uint64_t tc__sentinel_gen(tc__sentinel *s)
{
    return atomic_load_explicit(&s->gen, memory_order_acquire);
}

void tc__sentinel_error(tc__sentinel *s, char *buf, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    snprintf(buf, cap, "%s", s->err);
    pthread_mutex_unlock(&s->mu);
}

int tc__sentinel_create(tc__sentinel **out, const tc_options *o,
                        const tc__topo *t, const tc__logger *lg)
{
    tc__sentinel *s = tc__calloc(1, sizeof(*s));
    *out = s;
    if (!s)
        return TC_ENOMEM;
    s->o = *o;
    s->t = *t;
    s->lg = lg;
    pthread_mutex_init(&s->mu, NULL);
    tc__sentinel_refresh(s, 1);
    return TC_OK;
}

void tc__sentinel_destroy(tc__sentinel *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->mu);
    tc__free(s);
}

redisContext *tc__sentinel_watch(tc__sentinel *s, char *err, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    size_t i = s->next_watch++ % s->t.n;
    pthread_mutex_unlock(&s->mu);
    int refusal;
    char why[128];
    redisContext *ctx =
        tc__conn_sentinel(&s->o, &s->t.nodes[i], s->t.sentinel_password, why,
                          sizeof(why), &refusal);
    if (!ctx) {
        snprintf(err, cap, "sentinel watch: %s", why);
        return NULL;
    }
    redisReply *r = redisCommand(ctx, "SUBSCRIBE +switch-master");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3;
    if (!ok)
        snprintf(err, cap, "sentinel watch: %.100s",
                 !r                             ? ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "unexpected reply");
    freeReplyObject(r);
    if (!ok) {
        redisFree(ctx);
        return NULL;
    }
    struct timeval none = {0, 0}; /* the listener's poll() waits */
    redisSetTimeout(ctx, none);
    return ctx;
}

/* "+switch-master" payload: "<name> <old ip> <old port> <new ip> <new
   port>". Only our master's switch matters. */
static int ours(tc__sentinel *s, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return 0;
    size_t n = strlen(s->t.master);
    const char *p = r->element[2]->str;
    return r->element[2]->len > n && strncmp(p, s->t.master, n) == 0 &&
           p[n] == ' ';
}

int tc__sentinel_watch_read(tc__sentinel *s, redisContext *ctx)
{
    if (redisBufferRead(ctx) != REDIS_OK)
        return -1;
    int rc = 0, switched = 0;
    for (;;) {
        void *r = NULL;
        if (redisGetReplyFromReader(ctx, &r) != REDIS_OK)
            rc = -1;
        if (!r)
            break;
        switched |= ours(s, r);
        freeReplyObject(r);
    }
    return rc < 0 ? rc : switched;
}

void tc__sentinel_lock(tc__sentinel *s)
{
    pthread_mutex_lock(&s->mu);
}

void tc__sentinel_unlock(tc__sentinel *s)
{
    pthread_mutex_unlock(&s->mu);
}

void tc__sentinel_after_fork(tc__sentinel *s)
{
    atomic_store(&s->refreshing, 0); /* a parent thread's, not ours */
}
