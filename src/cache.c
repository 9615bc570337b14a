/* SPDX-License-Identifier: BSD-3-Clause */
/* tc_open/tc_close and the operations: L1, then Redis, then the caller.
   Every public function validates its arguments before it touches
   anything, so bad input changes nothing. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "coherence.h"
#include "conn.h"
#include "flight.h"
#include "fork.h"
#include "l1.h"
#include "l2.h"
#include "l2ops.h"
#include "renew.h"
#include "replay.h"

/* ---- validation ---- */

/* The c == NULL check of tc__enter makes its own check redundant: the
   key checks below run after it. */
int tc__check_key(const tc_cache *c, const char *key, size_t *klen)
{
    if (!c || !key || !key[0] || key[0] == '\x01') /* 0x01: group.c */
        return TC_EINVAL;
    /* On a cluster "<ns>:{}..." has an empty hash tag: the key and its
       lease would hash apart, and no computed value could be stored. */
    if (key[0] == '}' && c->topo.kind == TC__TOPO_CLUSTER)
        return TC_EINVAL;
    size_t n = strnlen(key, (size_t)c->opt.max_key_bytes + 1);
    if (n > c->opt.max_key_bytes)
        return TC_ETOOBIG;
    *klen = n;
    return TC_OK;
}

int tc__check_value(const tc_cache *c, const void *val, size_t len)
{
    if (!val && len)
        return TC_EINVAL;
    return len > c->opt.max_value_bytes ? TC_ETOOBIG : TC_OK;
}

/* ---- open / close ---- */

static void set_logger(tc__logger *lg, const tc_options *o)
{
    lg->efn = o->log_event_fn;
    lg->fn = o->log_fn;
    lg->ud = o->log_ud;
    lg->level = o->log_level;
}

static int has_l2(const tc_options *o, const tc__topo *t)
{
    return t->kind != TC__TOPO_SINGLE || o->redis_host[0] ||
           o->redis_socket[0];
}

/* What the open line names: the endpoint, the master's name and the
   first sentinel, or the first seed. */
static void where(const tc_cache *c, char *buf, size_t cap)
{
    char first[TC_HOST_MAX + 16];
    if (c->topo.kind == TC__TOPO_SINGLE) {
        tc__conn_endpoint(&c->opt, buf, cap);
        return;
    }
    tc__addr_str(&c->topo.nodes[0], first, sizeof(first));
    if (c->topo.kind == TC__TOPO_SENTINEL)
        snprintf(buf, cap, "master \"%s\" of sentinels %s%s", c->topo.master,
                 first, c->topo.n > 1 ? ",..." : "");
    else
        snprintf(buf, cap, "cluster (seed %s%s)", first,
                 c->topo.n > 1 ? ",..." : "");
}

/* One line that says what this cache is: which Redis (never the
   credentials), in what state, and how it stays coherent. */
static void log_opened(tc_cache *c)
{
    static const char *const modes[] = {"auto", "none", "channel"};
    const char *mode = modes[c->opt.coherence];
    if (!c->l2) {
        tc__log(&c->lg, TC_LOG_INFO, "cache.open",
                "opened namespace \"%s\": L1 only (no redis configured)",
                c->opt.ns);
        return;
    }
    char ep[TC_HOST_MAX + TC_NS_MAX + 64];
    tc_health_info h;
    where(c, ep, sizeof(ep));
    if (c->topo.kind != TC__TOPO_CLUSTER) /* a cluster has only db 0 */
        snprintf(ep + strlen(ep), sizeof(ep) - strlen(ep), " db %d",
                 c->opt.redis_db);
    memset(&h, 0, sizeof(h));
    tc__l2_health(c->l2, &h);
    tc__log(&c->lg, TC_LOG_INFO, "cache.open",
            "opened namespace \"%s\": redis %s (%s), coherence %s%s",
            c->opt.ns, ep,
            h.l2_refused     ? "refused"
            : h.l2_connected ? "connected"
                             : "unreachable",
            mode,
            c->opt.coherence == TC_COHERENCE_NONE
                ? " (one process: the L1 is trusted)"
                : "");
}

/* Set while a tc_get_with callback runs on this thread: the L1 holds
   the value's shard's writers off, so a call back into the cache could
   wait for itself. */
static _Thread_local int in_read_fn;

int tc__in_read_fn(void)
{
    return in_read_fn;
}

int tc_open(tc_cache **out, const tc_options *opt)
{
    if (!out)
        return TC_EINVAL;
    *out = NULL;
    if (in_read_fn) /* it registers with fork(), which waits for readers */
        return TC_EINVAL;
    tc_options o;
    if (opt)
        o = *opt;
    else
        tc_options_init(&o);
    tc__logger lg;
    set_logger(&lg, &o);
    char err[256];
    if (tc__options_check(&o, err, sizeof(err)) != TC_OK) {
        tc__log(&lg, TC_LOG_ERROR, "options.invalid", "tc_open: %s", err);
        return TC_EINVAL;
    }
    tc_cache *c = tc__calloc(1, sizeof(*c));
    if (!c)
        return TC_ENOMEM;
    c->opt = o;
    snprintf(c->channel, sizeof(c->channel), "%s:__tc:inval", o.ns);
    tc__topo_of(&o, &c->topo, err, sizeof(err)); /* checked above */
    /* the caller's strings: c->topo holds what they said */
    c->opt.redis_sentinels = c->opt.sentinel_master = NULL;
    c->opt.sentinel_password = c->opt.redis_cluster = NULL;
    set_logger(&c->lg, &o);
    tc__l1_config lc = {.max_entries = o.l1_max_entries,
                        .max_bytes = o.l1_max_bytes,
                        .shards = o.l1_shards,
                        .clock = o.clock_fn,
                        .clock_ud = o.clock_ud,
                        .policy = o.policy};
    int rc = tc__l1_create(&c->l1, &lc);
    if (rc == TC_OK && has_l2(&o, &c->topo))
        rc = tc__l2_create(&c->l2, &c->opt, &c->topo, &c->lg, &c->ctr);
    /* Strict: a Redis that refuses us is a configuration error, found now
       rather than by the first call (it has been logged). */
    if (rc == TC_OK && c->l2 && o.strict && tc__l2_refusal(c->l2))
        rc = TC_EREFUSED;
    if (rc == TC_OK && c->l2)
        rc = tc__replay_create(&c->replay, o.replay_max,
                               c->topo.kind == TC__TOPO_CLUSTER);
    if (rc == TC_OK && c->l2)
        rc = tc__renew_create(&c->renew, c);
    if (rc == TC_OK)
        rc = tc__flights_create(&c->flights);
    if (rc == TC_OK)
        log_opened(c);
    if (rc == TC_OK) /* before the listener: its lock is taken there */
        tc__fork_register(c);
    if (rc == TC_OK && c->l2 && o.coherence != TC_COHERENCE_NONE)
        rc = tc__coh_create(&c->coh, c); /* started by the first call */
    if (rc != TC_OK) {
        tc_close(c);
        return rc;
    }
    *out = c;
    return TC_OK;
}

void tc_close(tc_cache *c)
{
    /* From a tc_get_with reader the cache is in use by this very call:
       closing it would free what the read is in. */
    if (!c || in_read_fn)
        return;
    if (c->registered)
        tc__fork_unregister(c);
    /* A child closing what its parent opened: the listener is the
       parent's (its thread is not here, its pipe is shared). */
    if (atomic_load(&c->gen) != tc__forkgen()) {
        if (c->coh)
            tc__coh_abandon(c->coh);
        if (c->renew)
            tc__renew_after_fork(c->renew);
    }
    tc__coh_stop(c->coh);
    tc__renew_destroy(c->renew); /* before the pool its thread uses */
    tc__flights_destroy(c->flights);
    tc__replay_destroy(c->replay);
    tc__l2_destroy(c->l2);
    tc__l1_destroy(c->l1);
    tc__free(c);
}

/* The first call on a cache starts its listener and waits (bounded) for
   its first subscription, with no lock held: the listener's log lines
   may reach a callback that calls into this cache. Threads that come
   meanwhile go on; the L1 serves them as on a link down until then.
   A launch that fails (no descriptor for its pipe, no thread) leaves it
   so, and the next call tries again. */
static void start_listener(tc_cache *c)
{
    int launched = 0;
    pthread_mutex_lock(&c->fork_mu);
    if (!tc__coh_started(c->coh))
        launched = tc__coh_start(c->coh) == TC_OK;
    pthread_mutex_unlock(&c->fork_mu);
    if (launched)
        tc__coh_wait(c->coh);
}

/* Every call on a cache starts here. In a child after fork() the first
   call rebuilds what cannot be shared with the parent (fork.c). */
int tc__enter(tc_cache *c)
{
    if (!c)
        return TC_EINVAL;
    if (in_read_fn)
        return TC_EINVAL;
    if (atomic_load_explicit(&c->gen, memory_order_relaxed) != tc__forkgen())
        return tc__fork_rebuild(c);
    if (c->coh && !tc__coh_started(c->coh))
        start_listener(c);
    return TC_OK;
}

/* ---- may the L1 be used? ---- */

/* Without a listener the L1 is trusted (one process, or L1-only). While
   the link is down it is bypassed, or with degraded_l1_ttl_ms serves
   entries no older than that. Returns the age limit for reads, 0 for
   "bypass". */
static uint64_t l1_max_age(const tc_cache *c)
{
    if (!c->coh || tc__coh_ok(c->coh))
        return UINT64_MAX;
    return c->opt.degraded_l1_ttl_ms;
}

/* Puts into the L1 under the same rule, with the TTL cut to the degraded
   lifetime while the link is down. A write's fill (`write`) also moves
   the epoch, in the same critical section: a read that fetched the older
   value before this write must not put it back over the newer one
   (nothing else would correct it without a listener); where the L1 may
   not take it, the older entry goes. */
static void fill(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                 tc_value *v, uint64_t ttl, uint64_t epoch, int write)
{
    uint64_t max_age = l1_max_age(c);
    if (max_age == 0) {
        if (write)
            tc__l1_del(c->l1, key, klen, hash);
        return;
    }
    if (ttl > max_age)
        ttl = max_age;
    if (write)
        tc__l1_put_write(c->l1, key, klen, hash, v, ttl, epoch);
    else
        tc__l1_put(c->l1, key, klen, hash, v, ttl, epoch);
}

void tc__cache_fill(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                    tc_value *v, uint64_t ttl, uint64_t epoch)
{
    fill(c, key, klen, hash, v, ttl, epoch, 0);
}

void tc__cache_fill_write(tc_cache *c, const char *key, size_t klen,
                          uint64_t hash, tc_value *v, uint64_t ttl,
                          uint64_t epoch)
{
    fill(c, key, klen, hash, v, ttl, epoch, 1);
}

/* ---- reads ---- */

typedef struct reply_fill {
    const tc_cache *c;
    tc_value *v;
} reply_fill;

/* Runs on the reply bytes of a GET: they may be anyone's, so the codec
   checks them before anything is allocated from them. */
static int fill_from_reply(void *ud, const char *buf, size_t len)
{
    reply_fill *f = ud;
    tc__envelope e;
    /* An unknown flag (a codec of a newer writer, say) must not be
       returned as if the payload were plain bytes. */
    if (tc__env_decode(buf, len, f->c->opt.max_value_bytes, &e) != TC_OK ||
        !tc__flags_ok(e.flags))
        return TC_ECODEC;
    if (e.flags & TC__FLAGS_CODEC) {
        /* the L1 holds values uncompressed: decode once, here */
        int rc = tc__decompress(e.flags, e.payload, e.payload_len,
                                f->c->opt.max_value_bytes, &f->v);
        if (rc != TC_OK)
            return rc;
    } else if (!(f->v = tc__value_new(e.payload, e.payload_len))) {
        return TC_ENOMEM;
    }
    f->v->flags = e.flags & ~TC__FLAGS_CODEC;
    f->v->delta_ms = e.delta_ms;
    f->v->expires_at = e.expires_at_ms;
    f->v->wver = e.wver;
    return TC_OK;
}

/* How long a value read from Redis may live in the L1: what Redis has
   left of its TTL. 0: do not keep it. */
uint64_t tc__cache_ttl_of(const tc_cache *c, uint64_t expires_at)
{
    uint64_t now = tc__wall_ms(), left;
    if (!expires_at)
        left = c->opt.default_ttl_ms;
    else
        left = expires_at > now ? expires_at - now : 0;
    /* The envelope is anyone's and the writer's clock may be off: never
       longer than our own default. */
    return left < c->opt.default_ttl_ms ? left : c->opt.default_ttl_ms;
}

int tc__strict_code(tc_cache *c, int rc)
{
    if (rc == TC_EREFUSED)
        return TC_EREFUSED;
    int r = c->l2 ? tc__l2_refusal(c->l2) : TC_REFUSAL_NONE;
    return r == TC_REFUSAL_AUTH || r == TC_REFUSAL_DB ||
                   r == TC_REFUSAL_READONLY
               ? TC_EREFUSED
               : TC_EBACKEND;
}

/* L2 status → the caller's: Redis trouble is a miss unless strict. */
void tc__backend_failed(tc_cache *c)
{
    /* A call failed while the link looks fine: if the server froze, the
       link is the last to know (it only waits for its PING). */
    if (c->coh && tc__coh_ok(c->coh))
        tc__coh_kick(c->coh, TC__KICK_PROBE);
}

int tc__soften(tc_cache *c, int rc)
{
    if (rc == TC_EBACKEND)
        tc__backend_failed(c);
    if (rc == TC_EBACKEND || rc == TC_EREFUSED) {
        TC__INC(c->ctr.degraded_ops);
        return c->opt.strict ? tc__strict_code(c, rc) : TC_MISS;
    }
    if (rc == TC_ECODEC) {
        TC__INC(c->ctr.codec_errors);
        tc__log(&c->lg, TC_LOG_DEBUG, "value.corrupt",
                "foreign or corrupt value read");
        return c->opt.strict ? TC_ECODEC : TC_MISS;
    }
    return rc;
}

static int get_l2(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                  tc_value **out)
{
    /* Invalidations that did not reach Redis go first: until they have,
       Redis may hold what the caller deleted. */
    if (tc__replay_gate(c, key, klen) != TC_OK)
        return tc__soften(c, TC_EBACKEND);
    tc__rkey rk;
    if (tc__rkey_make(c, key, klen, &rk) != TC_OK)
        return TC_ENOMEM;
    /* The epoch is read before the GET is sent: see tc__l1_put. */
    uint64_t epoch = tc__l1_epoch(c->l1, hash);
    reply_fill f = {c, NULL};
    int rc = tc__l2_get(c->l2, rk.s, rk.len, fill_from_reply, &f);
    tc__rkey_done(&rk);
    if (rc == TC_OK) {
        TC__INC(c->ctr.l2_hits);
        uint64_t ttl = tc__cache_ttl_of(c, f.v->expires_at);
        if (ttl)
            tc__cache_fill(c, key, klen, hash, f.v, ttl, epoch);
        *out = f.v;
        return TC_OK;
    }
    if (rc == TC_MISS)
        TC__INC(c->ctr.l2_misses);
    return tc__soften(c, rc);
}

/* Hits and misses are counted by the shard; a bypassed L1 here. */
tc_value *tc__cache_peek(tc_cache *c, const char *key, size_t klen,
                         uint64_t hash)
{
    uint64_t max_age = l1_max_age(c);
    if (max_age)
        return tc__l1_get(c->l1, key, klen, hash, max_age);
    TC__INC(c->ctr.l1_misses);
    return NULL;
}

int tc__lookup_from(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                    tc_value **out, int *from)
{
    tc_value *v = tc__cache_peek(c, key, klen, hash);
    if (v) {
        *from = TC_FROM_L1;
        *out = v;
        return TC_OK;
    }
    *from = TC_FROM_L2;
    return c->l2 ? get_l2(c, key, klen, hash, out) : TC_MISS;
}

int tc__lookup(tc_cache *c, const char *key, size_t klen, uint64_t hash,
               tc_value **out)
{
    int from;
    return tc__lookup_from(c, key, klen, hash, out, &from);
}

/* A read's first steps: the key checked, the cache entered. */
static int enter_key(tc_cache *c, const char *key, size_t *klen)
{
    int rc = tc__check_key(c, key, klen);
    return rc == TC_OK ? tc__enter(c) : rc;
}

int tc_get(tc_cache *c, const char *key, tc_value **out)
{
    if (!out)
        return TC_EINVAL;
    *out = NULL;
    size_t klen;
    int rc = enter_key(c, key, &klen);
    if (rc == TC_OK)
        rc = tc__lookup(c, key, klen, tc__hash(key, klen), out);
    if (rc == TC_OK && ((*out)->flags & TC__FLAG_ABSENT)) {
        tc_value_release(*out); /* a cached "absent" (tc_fetch) */
        *out = NULL;
        rc = TC_ABSENT;
    }
    return rc;
}

/* ---- batch reads ---- */

/* A key of tc__mlookup that the L1 did not have. */
typedef struct mget_miss {
    uint64_t hash, epoch;
    size_t i; /* its index in the caller's keys */
    reply_fill f;
} mget_miss;

void tc__mlookup(tc_cache *c, const char *const *keys, size_t n,
                 tc_value **out, int *status)
{
    /* One block for the misses: their GETs, their state, and the keys
       and lengths that tc__replay_gate_many wants side by side. */
    size_t each = sizeof(tc__l2_getm) + sizeof(mget_miss) + sizeof(char *) +
                  sizeof(size_t) + sizeof(int);
    char *blk =
        c->l2 && n && n <= SIZE_MAX / each ? tc__malloc(n * each) : NULL;
    tc__l2_getm *gets = NULL;
    mget_miss *ms = NULL;
    const char **mk = NULL;
    size_t *ml = NULL;
    int *gate = NULL;
    if (blk) {
        gets = (tc__l2_getm *)blk;
        ms = (mget_miss *)(blk + n * sizeof(*gets));
        mk = (const char **)((char *)ms + n * sizeof(*ms));
        ml = (size_t *)(mk + n);
        gate = (int *)(ml + n);
    }
    size_t m = 0, nslen = strlen(c->opt.ns), total = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        size_t klen;
        status[i] = tc__check_key(c, keys[i], &klen);
        if (status[i] != TC_OK)
            continue;
        uint64_t hash = tc__hash(keys[i], klen);
        out[i] = tc__cache_peek(c, keys[i], klen, hash);
        if (out[i])
            continue;
        if (!c->l2)
            status[i] = TC_MISS;
        else if (!blk) /* no memory for the batch: one at a time */
            status[i] = get_l2(c, keys[i], klen, hash, &out[i]);
        else {
            mk[m] = keys[i];
            ml[m] = klen;
            ms[m] = (mget_miss){hash, 0, i, {c, NULL}};
            total += nslen + klen + 3;
            m++;
        }
    }
    char *names = m ? tc__malloc(total) : NULL;
    if (m && !names) {
        for (size_t k = 0; k < m; k++)
            status[ms[k].i] =
                get_l2(c, mk[k], ml[k], ms[k].hash, &out[ms[k].i]);
        m = 0;
    }
    /* Invalidations that did not reach Redis go first, as in get_l2. */
    tc__replay_gate_many(c, mk, ml, m, gate);
    size_t g = 0;
    char *p = names;
    for (size_t k = 0; k < m; k++) {
        if (gate[k] != TC_OK) {
            status[ms[k].i] = tc__soften(c, TC_EBACKEND);
            continue;
        }
        size_t rlen = tc__rkey_write(c, mk[k], ml[k], "", p);
        mk[g] = mk[k];
        ml[g] = ml[k];
        ms[g] = ms[k];
        /* Every epoch is read before any GET is sent: see tc__l1_put. */
        ms[g].epoch = tc__l1_epoch(c->l1, ms[g].hash);
        gets[g] =
            (tc__l2_getm){p, rlen, fill_from_reply, &ms[g].f, TC_EBACKEND, 0};
        p += rlen;
        g++;
    }
    if (g)
        tc__l2_get_many(c->l2, gets, g);
    for (size_t k = 0; k < g; k++) {
        size_t i = ms[k].i;
        int rc = gets[k].rc;
        if (rc == TC_OK) { /* as get_l2 */
            TC__INC(c->ctr.l2_hits);
            tc_value *v = ms[k].f.v;
            uint64_t ttl = tc__cache_ttl_of(c, v->expires_at);
            if (ttl)
                tc__cache_fill(c, mk[k], ml[k], ms[k].hash, v, ttl,
                               ms[k].epoch);
            out[i] = v;
            status[i] = TC_OK;
            continue;
        }
        if (ms[k].f.v) /* a reply decoded, then its pipeline failed */
            tc_value_release(ms[k].f.v);
        if (rc == TC_MISS)
            TC__INC(c->ctr.l2_misses);
        status[i] = tc__soften(c, rc);
    }
    tc__free(names);
    tc__free(blk);
}

/* How bad each outcome of a batch is: the caller's own key first, then a
   value, then what affects every key (Redis, memory). */
static int badness(int rc)
{
    switch (rc) {
    case TC_EINVAL:
        return 1;
    case TC_ETOOBIG:
        return 2;
    case TC_ECODEC:
        return 3;
    case TC_ECOMPUTE:
        return 4;
    case TC_ETIMEOUT:
        return 5;
    case TC_EBACKEND:
        return 6;
    case TC_EREFUSED:
        return 7;
    case TC_ENOMEM:
        return 8;
    default:
        return rc < 0 ? 1 : 0; /* TC_OK, TC_MISS, TC_ABSENT: no error */
    }
}

int tc__worst(const int *status, size_t n)
{
    int worst = TC_OK;
    for (size_t i = 0; i < n; i++)
        if (badness(status[i]) > badness(worst))
            worst = status[i];
    return worst;
}

int tc__mbegin(tc_cache *c, const char *const *keys, size_t n, tc_value **out,
               int *status, int ok)
{
    if (!c || !keys || !out || !status)
        ok = 0;
    int rc = ok ? tc__enter(c) : TC_EINVAL;
    if (rc != TC_OK && out && status)
        for (size_t i = 0; i < n; i++) {
            out[i] = NULL;
            status[i] = rc;
        }
    return rc;
}

int tc_mget(tc_cache *c, const char *const *keys, size_t n, tc_value **out,
            int *status)
{
    if (n == 0)
        return c ? TC_OK : TC_EINVAL;
    int rc = tc__mbegin(c, keys, n, out, status, 1);
    if (rc != TC_OK)
        return rc;
    tc__mlookup(c, keys, n, out, status);
    for (size_t i = 0; i < n; i++)
        if (status[i] == TC_OK && (out[i]->flags & TC__FLAG_ABSENT)) {
            tc_value_release(out[i]); /* a cached "absent" (tc_fetch) */
            out[i] = NULL;
            status[i] = TC_ABSENT;
        }
    return tc__worst(status, n);
}

/* tc_get_with's callback, as the L1 calls it: an absent marker is
   reported, a value is handed to the caller's fn in place. */
typedef struct read_with {
    tc_read_fn fn;
    void *ud;
    int absent;
} read_with;

static void call_read_fn(void *ud, tc_value *v)
{
    read_with *w = ud;
    if (v->flags & TC__FLAG_ABSENT) {
        w->absent = 1;
        return;
    }
    in_read_fn = 1;
    w->fn(w->ud, v->data, v->len);
    in_read_fn = 0;
}

int tc_get_with(tc_cache *c, const char *key, tc_read_fn fn, void *ud)
{
    if (!fn)
        return TC_EINVAL;
    size_t klen;
    int rc = enter_key(c, key, &klen);
    if (rc != TC_OK)
        return rc;
    uint64_t hash = tc__hash(key, klen);
    read_with w = {fn, ud, 0};
    /* An L1 hit reads the value where it lies: no reference is taken,
       so a key every thread reads is a line every core keeps. */
    uint64_t max_age = l1_max_age(c);
    if (max_age) {
        if (tc__l1_read(c->l1, key, klen, hash, max_age, call_read_fn, &w) ==
            TC_OK)
            return w.absent ? TC_ABSENT : TC_OK;
    } else {
        TC__INC(c->ctr.l1_misses);
    }
    tc_value *v;
    rc = c->l2 ? get_l2(c, key, klen, hash, &v) : TC_MISS;
    if (rc != TC_OK)
        return rc;
    call_read_fn(&w, v);
    tc_value_release(v);
    return w.absent ? TC_ABSENT : TC_OK;
}

/* tc_get_into's copy, made in place by tc_get_with. */
typedef struct copy_out {
    void *buf;
    size_t cap, len;
} copy_out;

static void copy_value(void *ud, const void *data, size_t len)
{
    copy_out *o = ud;
    o->len = len;
    if (len <= o->cap && len)
        memcpy(o->buf, data, len);
}

int tc_get_into(tc_cache *c, const char *key, void *buf, size_t cap,
                size_t *len)
{
    if (!len || (!buf && cap))
        return TC_EINVAL;
    *len = 0;
    copy_out o = {buf, cap, 0};
    int rc = tc_get_with(c, key, copy_value, &o);
    if (rc != TC_OK)
        return rc;
    *len = o.len;
    return o.len > cap ? TC_ETOOBIG : TC_OK;
}

/* ---- writes ---- */

/* Writes v to Redis, then to the L1 under the fill rule. */
int tc__store(tc_cache *c, const char *key, size_t klen, tc_value *v,
              uint32_t ttl_ms, uint32_t delta_ms)
{
    uint64_t hash = tc__hash(key, klen);
    /* v is new and not shared yet: its metadata can still be set. */
    v->expires_at = tc__add_sat(tc__wall_ms(), ttl_ms);
    v->delta_ms = delta_ms;
    if (!c->l2) {
        tc__l1_put(c->l1, key, klen, hash, v, ttl_ms, TC__EPOCH_ANY);
        return TC_OK;
    }
    /* No replay gate here: a queued DEL that lands after this SET costs
       a miss, never a stale read. */
    uint64_t epoch = tc__l1_epoch(c->l1, hash);
    int rc = tc__write_envelope(c, key, klen, v, ttl_ms);
    if (rc == TC_ENOMEM)
        return rc; /* before anything was sent */
    /* After the SET, a message that did not go out is a lost
       invalidation for the other processes: replay it like the rest. */
    if (rc == TC_OK) {
        int prc = tc__publish_set(c, key, klen);
        if (prc == TC_EREFUSED) /* PUBLISH not allowed: say so, keep */
            tc__refused(c, "PUBLISH");
        else if (prc != TC_OK)
            rc = TC_EBACKEND;
    }
    if (rc == TC_OK) {
        tc__cache_fill_write(c, key, klen, hash, v, ttl_ms, epoch);
        return TC_OK;
    }
    /* The SET may or may not have landed, and what Redis held before is
       stale either way: have it deleted once Redis is back. */
    tc__backend_failed(c);
    TC__INC(c->ctr.degraded_ops);
    tc__replay_push(c, TC__INVAL_KEY, key, klen);
    tc__l1_del(c->l1, key, klen, hash);
    if (c->opt.strict)
        return tc__strict_code(c, rc);
    /* Degraded: the L1 serves what it was given where nothing else can
       tell it otherwise (one process, or the link down with a degraded
       lifetime). With the link up, Redis stays the reference. */
    if (!c->coh || !tc__coh_ok(c->coh))
        tc__cache_fill(c, key, klen, hash, v, ttl_ms, TC__EPOCH_ANY);
    return TC_OK;
}

static int invalidate(tc_cache *c, uint32_t kind, const char *arg, size_t len);

int tc__drop_oversized(tc_cache *c, const char *key, size_t klen)
{
    TC__INC(c->ctr.oversized);
    tc__log(&c->lg, TC_LOG_DEBUG, "value.oversized",
            "value over max_value_bytes: not cached, older one deleted");
    uint64_t hash = tc__hash(key, klen);
    tc__l1_del(c->l1, key, klen, hash); /* twice: see tc_del */
    tc__flight_detach(c->flights, key, klen);
    int rc = invalidate(c, TC__INVAL_KEY, key, klen);
    tc__l1_del(c->l1, key, klen, hash);
    return rc;
}

int tc_set(tc_cache *c, const char *key, const void *val, size_t len,
           uint32_t ttl_ms)
{
    size_t klen;
    int rc = tc__check_key(c, key, &klen);
    if (rc == TC_OK && (rc = tc__check_value(c, val, len)) == TC_ETOOBIG &&
        tc__enter(c) == TC_OK) {
        /* The caller changed the value: the older one is stale now, and
           must not be served in place of one we cannot store. */
        int drc = tc__drop_oversized(c, key, klen);
        return drc == TC_OK ? TC_ETOOBIG : drc;
    }
    if (rc == TC_OK)
        rc = tc__enter(c);
    if (rc != TC_OK)
        return rc;
    tc_value *v = tc__value_new(val, len);
    if (!v)
        return TC_ENOMEM;
    TC__INC(c->ctr.sets);
    rc =
        tc__store(c, key, klen, v, ttl_ms ? ttl_ms : c->opt.default_ttl_ms, 0);
    tc_value_release(v);
    return rc;
}

/* The L2 half of del/del_prefix/flush: now, or queued for later. What
   Redis refuses outright (an ACL without DEL or PUBLISH, say) is not
   queued: a replay would be refused again and hold up every read. */
static int invalidate(tc_cache *c, uint32_t kind, const char *arg, size_t len)
{
    if (!c->l2)
        return TC_OK;
    /* Deletes commute: this one need not wait for those queued. */
    tc__replay_nudge(c);
    int rc = tc__invalidate_l2(c, kind, arg, len);
    if (rc == TC_OK)
        return TC_OK;
    if (rc == TC_EREFUSED)
        tc__refused(c, "an invalidation");
    else
        tc__replay_push(c, kind, arg, len);
    rc = tc__soften(c, rc == TC_EREFUSED ? rc : TC_EBACKEND);
    return rc == TC_MISS ? TC_OK : rc;
}

int tc_del(tc_cache *c, const char *key)
{
    size_t klen;
    int rc = tc__check_key(c, key, &klen);
    if (rc == TC_OK)
        rc = tc__enter(c);
    if (rc != TC_OK)
        return rc;
    TC__INC(c->ctr.deletes);
    uint64_t hash = tc__hash(key, klen);
    /* Before and after Redis: a read in between may have filled the L1
       with the value being deleted (its epoch was read after ours). */
    tc__l1_del(c->l1, key, klen, hash);
    tc__flight_detach(c->flights, key, klen);
    rc = invalidate(c, TC__INVAL_KEY, key, klen);
    tc__l1_del(c->l1, key, klen, hash);
    return rc;
}

int tc_del_prefix(tc_cache *c, const char *prefix)
{
    size_t plen;
    int rc = tc__check_key(c, prefix, &plen);
    if (rc == TC_OK)
        rc = tc__enter(c);
    if (rc != TC_OK)
        return rc;
    tc__l1_del_prefix(c->l1, prefix, plen); /* twice: see tc_del */
    tc__flight_detach_prefix(c->flights, prefix, plen);
    rc = invalidate(c, TC__INVAL_PREFIX, prefix, plen);
    tc__l1_del_prefix(c->l1, prefix, plen);
    return rc;
}

int tc_flush(tc_cache *c)
{
    int rc = tc__enter(c);
    if (rc != TC_OK)
        return rc;
    tc__l1_clear(c->l1); /* twice: see tc_del */
    tc__flight_detach_prefix(c->flights, "", 0);
    rc = invalidate(c, TC__INVAL_FLUSH, "", 0);
    tc__l1_clear(c->l1);
    return rc;
}
