/* tc_open/tc_close and the operations: L1, then Redis, then the caller.
   Every public function validates its arguments before it touches
   anything, so bad input changes nothing. */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "cache.h"

uint64_t tc__hash(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}

/* ---- validation ---- */

static int check_key(const tc_cache *c, const char *key, size_t *klen)
{
    if (!c || !key || !key[0])
        return TC_EINVAL;
    size_t n = strnlen(key, (size_t)c->opt.max_key_bytes + 1);
    if (n > c->opt.max_key_bytes)
        return TC_ETOOBIG;
    *klen = n;
    return TC_OK;
}

static int check_value(const tc_cache *c, const void *val, size_t len)
{
    if (!val && len)
        return TC_EINVAL;
    return len > c->opt.max_value_bytes ? TC_ETOOBIG : TC_OK;
}

/* ---- Redis key names: <ns>:{<key>} ---- */

typedef struct rkey {
    char *s;
    size_t len;
    char small[640]; /* fits the default key limit; longer keys: heap */
} rkey;

static int rkey_make(const tc_cache *c, const char *key, size_t klen, rkey *rk)
{
    size_t nslen = strlen(c->opt.ns);
    size_t need = nslen + klen + 4; /* ":{", "}", NUL */
    rk->s = need <= sizeof(rk->small) ? rk->small : tc__malloc(need);
    if (!rk->s)
        return TC_ENOMEM;
    memcpy(rk->s, c->opt.ns, nslen);
    memcpy(rk->s + nslen, ":{", 2);
    memcpy(rk->s + nslen + 2, key, klen);
    memcpy(rk->s + nslen + 2 + klen, "}", 2);
    rk->len = need - 1;
    return TC_OK;
}

static void rkey_done(rkey *rk)
{
    if (rk->s != rk->small)
        tc__free(rk->s);
}

/* ---- open / close ---- */

static void set_logger(tc__logger *lg, const tc_options *o)
{
    lg->fn = o->log_fn;
    lg->ud = o->log_ud;
    lg->level = o->log_level;
}

static int has_l2(const tc_options *o)
{
    return o->redis_host[0] || o->redis_socket[0];
}

int tc_open(tc_cache **out, const tc_options *opt)
{
    if (!out)
        return TC_EINVAL;
    *out = NULL;
    tc_options o;
    if (opt)
        o = *opt;
    else
        tc_options_init(&o);
    tc__logger lg;
    set_logger(&lg, &o);
    char err[256];
    if (tc__options_check(&o, err, sizeof(err)) != TC_OK) {
        tc__log(&lg, TC_LOG_ERROR, "tc_open: %s", err);
        return TC_EINVAL;
    }
    tc_cache *c = tc__calloc(1, sizeof(*c));
    if (!c)
        return TC_ENOMEM;
    c->opt = o;
    set_logger(&c->lg, &o);
    tc__l1_config lc = {o.l1_max_entries, o.l1_max_bytes, o.l1_shards,
                        o.clock_fn, o.clock_ud};
    int rc = tc__l1_create(&c->l1, &lc);
    if (rc == TC_OK && has_l2(&o))
        rc = tc__l2_create(&c->l2, &c->opt, &c->lg, &c->ctr);
    if (rc != TC_OK) {
        tc_close(c);
        return rc;
    }
    *out = c;
    return TC_OK;
}

void tc_close(tc_cache *c)
{
    if (!c)
        return;
    tc__l2_destroy(c->l2);
    tc__l1_destroy(c->l1);
    tc__free(c);
}

/* ---- reads ---- */

typedef struct fill {
    const tc_cache *c;
    tc_value *v;
    uint64_t expires_at; /* wall ms, 0 = none */
} fill;

/* Runs on the reply bytes of a GET: they may be anyone's, so the codec
   checks them before anything is allocated from them. */
static int fill_from_reply(void *ud, const char *buf, size_t len)
{
    fill *f = ud;
    tc__envelope e;
    if (tc__env_decode(buf, len, f->c->opt.max_value_bytes, &e) != TC_OK)
        return TC_ECODEC;
    f->v = tc__value_new(e.payload, e.payload_len);
    f->expires_at = e.expires_at_ms;
    return f->v ? TC_OK : TC_ENOMEM;
}

/* How long a value read from Redis may live in the L1: what Redis has
   left of its TTL. 0: do not keep it. */
static uint64_t l1_ttl_of(const tc_cache *c, uint64_t expires_at)
{
    if (!expires_at)
        return c->opt.default_ttl_ms;
    uint64_t now = tc__wall_ms();
    return expires_at > now ? expires_at - now : 0;
}

/* L2 status → the caller's: Redis trouble is a miss unless strict. */
static int soften(tc_cache *c, int rc)
{
    if (rc == TC_EBACKEND) {
        TC__INC(c->ctr.degraded_ops);
        return c->opt.strict ? TC_EBACKEND : TC_MISS;
    }
    if (rc == TC_ECODEC) {
        TC__INC(c->ctr.codec_errors);
        tc__log(&c->lg, TC_LOG_DEBUG, "foreign or corrupt value read");
        return c->opt.strict ? TC_ECODEC : TC_MISS;
    }
    return rc;
}

static int get_l2(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                  tc_value **out)
{
    rkey rk;
    if (rkey_make(c, key, klen, &rk) != TC_OK)
        return TC_ENOMEM;
    /* The epoch is read before the GET is sent: see tc__l1_put. */
    uint64_t epoch = tc__l1_epoch(c->l1, hash);
    fill f = {c, NULL, 0};
    int rc = tc__l2_get(c->l2, rk.s, rk.len, fill_from_reply, &f);
    rkey_done(&rk);
    if (rc == TC_OK) {
        TC__INC(c->ctr.l2_hits);
        uint64_t ttl = l1_ttl_of(c, f.expires_at);
        if (ttl)
            tc__l1_put(c->l1, key, klen, hash, f.v, ttl, epoch);
        *out = f.v;
        return TC_OK;
    }
    if (rc == TC_MISS)
        TC__INC(c->ctr.l2_misses);
    return soften(c, rc);
}

int tc_get(tc_cache *c, const char *key, tc_value **out)
{
    if (!out)
        return TC_EINVAL;
    *out = NULL;
    size_t klen;
    int rc = check_key(c, key, &klen);
    if (rc != TC_OK)
        return rc;
    uint64_t hash = tc__hash(key, klen);
    tc_value *v = tc__l1_get(c->l1, key, klen, hash);
    if (v) {
        TC__INC(c->ctr.l1_hits);
        *out = v;
        return TC_OK;
    }
    TC__INC(c->ctr.l1_misses);
    return c->l2 ? get_l2(c, key, klen, hash, out) : TC_MISS;
}

int tc_get_into(tc_cache *c, const char *key, void *buf, size_t cap,
                size_t *len)
{
    if (!len || (!buf && cap))
        return TC_EINVAL;
    *len = 0;
    tc_value *v;
    int rc = tc_get(c, key, &v);
    if (rc != TC_OK)
        return rc;
    *len = v->len;
    if (v->len > cap)
        rc = TC_ETOOBIG;
    else if (v->len)
        memcpy(buf, v->data, v->len);
    tc_value_release(v);
    return rc;
}

/* ---- writes ---- */

/* Writes v to Redis, then to the L1 under the fill rule. */
static int store(tc_cache *c, const char *key, size_t klen, tc_value *v,
                 uint32_t ttl_ms, uint32_t delta_ms)
{
    uint64_t hash = tc__hash(key, klen);
    if (!c->l2) {
        tc__l1_put(c->l1, key, klen, hash, v, ttl_ms, TC__EPOCH_ANY);
        return TC_OK;
    }
    tc__envelope e = {0, tc__add_sat(tc__wall_ms(), ttl_ms), delta_ms, v->data,
                      v->len};
    char *buf;
    size_t blen;
    rkey rk;
    if (tc__env_encode(&e, &buf, &blen) != TC_OK)
        return TC_ENOMEM;
    if (rkey_make(c, key, klen, &rk) != TC_OK) {
        tc__free(buf);
        return TC_ENOMEM;
    }
    uint64_t epoch = tc__l1_epoch(c->l1, hash);
    int rc = tc__l2_set(c->l2, rk.s, rk.len, buf, blen, ttl_ms);
    rkey_done(&rk);
    tc__free(buf);
    if (rc == TC_OK) {
        tc__l1_put(c->l1, key, klen, hash, v, ttl_ms, epoch);
        return TC_OK;
    }
    TC__INC(c->ctr.degraded_ops);
    if (c->opt.strict) {
        /* The SET may or may not have landed: keep no copy in the L1. */
        tc__l1_del(c->l1, key, klen, hash);
        return TC_EBACKEND;
    }
    /* Degraded: the L1 serves what it was given. */
    tc__l1_put(c->l1, key, klen, hash, v, ttl_ms, TC__EPOCH_ANY);
    return TC_OK;
}

int tc_set(tc_cache *c, const char *key, const void *val, size_t len,
           uint32_t ttl_ms)
{
    size_t klen;
    int rc = check_key(c, key, &klen);
    if (rc == TC_OK)
        rc = check_value(c, val, len);
    if (rc != TC_OK)
        return rc;
    tc_value *v = tc__value_new(val, len);
    if (!v)
        return TC_ENOMEM;
    TC__INC(c->ctr.sets);
    rc = store(c, key, klen, v, ttl_ms ? ttl_ms : c->opt.default_ttl_ms, 0);
    tc_value_release(v);
    return rc;
}

int tc_del(tc_cache *c, const char *key)
{
    size_t klen;
    int rc = check_key(c, key, &klen);
    if (rc != TC_OK)
        return rc;
    rkey rk;
    if (c->l2 && rkey_make(c, key, klen, &rk) != TC_OK)
        return TC_ENOMEM;
    TC__INC(c->ctr.deletes);
    tc__l1_del(c->l1, key, klen, tc__hash(key, klen));
    if (!c->l2)
        return TC_OK;
    rc = tc__l2_del(c->l2, rk.s, rk.len);
    rkey_done(&rk);
    rc = soften(c, rc);
    return rc == TC_MISS ? TC_OK : rc;
}

/* SCAN patterns treat * ? [ ] \ specially: escape them. */
static char *glob_escape(const char *s, size_t n, size_t *outlen)
{
    char *out = tc__malloc(2 * n + 1);
    size_t j = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strchr("*?[]\\", s[i]))
            out[j++] = '\\';
        out[j++] = s[i];
    }
    out[j] = '\0';
    *outlen = j;
    return out;
}

/* Unlinks every Redis key <ns>:{<prefix>...}, leases included. */
static int unlink_prefix(tc_cache *c, const char *prefix, size_t plen)
{
    size_t nlen, elen;
    char *ns = glob_escape(c->opt.ns, strlen(c->opt.ns), &nlen);
    char *esc = glob_escape(prefix, plen, &elen);
    char *pattern = tc__malloc(nlen + elen + 4);
    int rc = TC_ENOMEM;
    if (ns && esc && pattern) {
        memcpy(pattern, ns, nlen);
        memcpy(pattern + nlen, ":{", 2);
        memcpy(pattern + nlen + 2, esc, elen);
        memcpy(pattern + nlen + 2 + elen, "*", 2);
        uint64_t n;
        rc = tc__l2_unlink_match(c->l2, pattern, &n);
        tc__log(&c->lg, TC_LOG_DEBUG, "unlinked %llu keys matching %s",
                (unsigned long long)n, pattern);
    }
    tc__free(ns);
    tc__free(esc);
    tc__free(pattern);
    return rc;
}

int tc_del_prefix(tc_cache *c, const char *prefix)
{
    size_t plen;
    int rc = check_key(c, prefix, &plen);
    if (rc != TC_OK)
        return rc;
    tc__l1_del_prefix(c->l1, prefix, plen);
    if (!c->l2)
        return TC_OK;
    rc = soften(c, unlink_prefix(c, prefix, plen));
    return rc == TC_MISS ? TC_OK : rc;
}

int tc_flush(tc_cache *c)
{
    if (!c)
        return TC_EINVAL;
    tc__l1_clear(c->l1);
    if (!c->l2)
        return TC_OK;
    int rc = soften(c, unlink_prefix(c, "", 0));
    return rc == TC_MISS ? TC_OK : rc;
}

/* ---- get-or-compute (plain: single-flight and leases come later) ---- */

static int compute(tc_cache *c, const char *key, size_t klen, uint32_t ttl,
                   tc_compute_fn fn, void *ud, tc_value **out)
{
    void *val = NULL;
    size_t len = 0;
    uint32_t want = ttl;
    uint64_t t0 = tc__mono_ms();
    TC__INC(c->ctr.computes);
    if (fn(ud, &val, &len, &want) != 0 || (!val && len)) {
        free(val);
        return TC_ECOMPUTE;
    }
    uint64_t delta = tc__mono_ms() - t0;
    int rc = check_value(c, val, len);
    tc_value *v = rc == TC_OK ? tc__value_new(val, len) : NULL;
    free(val); /* the callback's buffer is malloc'd: plain free */
    if (rc != TC_OK)
        return rc;
    if (!v)
        return TC_ENOMEM;
    /* The callback may lower the TTL (0: return it, keep no copy). */
    if (want > ttl)
        want = ttl;
    if (want)
        store(c, key, klen, v, want,
              delta > UINT32_MAX ? UINT32_MAX : (uint32_t)delta);
    *out = v;
    return TC_OK;
}

int tc_fetch(tc_cache *c, const char *key, uint32_t ttl_ms, tc_compute_fn fn,
             void *ud, tc_value **out)
{
    if (!out)
        return TC_EINVAL;
    *out = NULL;
    size_t klen;
    int rc = check_key(c, key, &klen);
    if (rc != TC_OK)
        return rc;
    if (!fn)
        return TC_EINVAL;
    rc = tc_get(c, key, out);
    if (rc != TC_MISS)
        return rc;
    return compute(c, key, klen, ttl_ms ? ttl_ms : c->opt.default_ttl_ms, fn,
                   ud, out);
}
