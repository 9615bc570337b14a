/* SPDX-License-Identifier: BSD-3-Clause */
/* What the cache asks of Redis, in its own terms: key names
   <ns>:{<key>}, envelope writes, and invalidations (DEL, UNLINK by
   pattern, and the message on the namespace channel). */
#include <string.h>

#include "cluster.h"
#include "l2.h"
#include "l2ops.h"

size_t tc__rkey_write(const tc_cache *c, const char *key, size_t klen,
                      const char *suffix, char *dst)
{
    size_t nslen = strlen(c->opt.ns), slen = strlen(suffix);
    memcpy(dst, c->opt.ns, nslen);
    memcpy(dst + nslen, ":{", 2);
    memcpy(dst + nslen + 2, key, klen);
    dst[nslen + 2 + klen] = '}';
    memcpy(dst + nslen + 3 + klen, suffix, slen);
    return nslen + klen + 3 + slen;
}

int tc__rkey_make_sfx(const tc_cache *c, const char *key, size_t klen,
                      const char *suffix, tc__rkey *rk)
{
    size_t need = strlen(c->opt.ns) + klen + strlen(suffix) + 4;
    rk->s = need <= sizeof(rk->small) ? rk->small : tc__malloc(need);
    if (!rk->s)
        return TC_ENOMEM;
    rk->len = tc__rkey_write(c, key, klen, suffix, rk->s);
    rk->s[rk->len] = '\0';
    return TC_OK;
}

int tc__rkey_make(const tc_cache *c, const char *key, size_t klen,
                  tc__rkey *rk)
{
    return tc__rkey_make_sfx(c, key, klen, "", rk);
}

void tc__rkey_done(tc__rkey *rk)
{
    if (rk->s != rk->small)
        tc__free(rk->s);
}

unsigned tc__key_slot(const tc_cache *c, const char *key, size_t klen)
{
    /* The tag of "<ns>:{<key>}" is the key up to its first "}"; only an
       empty one (a key that starts with "}") hashes the whole name. */
    const char *close = memchr(key, '}', klen);
    size_t tag = close ? (size_t)(close - key) : klen;
    if (tag > 0)
        return tc__cluster_slot_of_tag(key, tag);
    tc__rkey rk;
    if (tc__rkey_make(c, key, klen, &rk) != TC_OK)
        return 0; /* out of memory: some slot; a wrong one only delays */
    unsigned s = tc__cluster_slot(rk.s, rk.len);
    tc__rkey_done(&rk);
    return s;
}

int tc__envelope_of(const tc_cache *c, const tc_value *v, char **buf,
                    size_t *len)
{
    tc__envelope e = {v->flags, v->expires_at, v->delta_ms,
                      v->data,  v->len,        v->wver};
    unsigned char *z = NULL;
    size_t zlen;
    uint32_t flag;
    int rc;

    /* Without revalidation nothing needs the version, and a reader of
       tiercache 0.1.0 can read the value (docs/data-format.md). */
    if (c && !c->opt.revalidate)
        e.wver = 0;
    /* v itself stays uncompressed: it is what the L1 holds */
    if (c && !(v->flags & TC__FLAG_ABSENT)) {
        rc = tc__compress(c->opt.compression, c->opt.compress_min_bytes,
                          v->data, v->len, &z, &zlen, &flag);
        if (rc != TC_OK)
            return rc;
        if (z) {
            e.flags |= flag;
            e.payload = z;
            e.payload_len = zlen;
        }
    }
    rc = tc__env_encode(&e, buf, len) == TC_OK ? TC_OK : TC_ENOMEM;
    tc__free(z);
    return rc;
}

int tc__write_envelope(tc_cache *c, const char *key, size_t klen,
                       const tc_value *v, uint32_t ttl_ms)
{
    char *buf;
    size_t blen;
    tc__rkey rk;
    if (tc__envelope_of(c, v, &buf, &blen) != TC_OK)
        return TC_ENOMEM;
    if (tc__rkey_make(c, key, klen, &rk) != TC_OK) {
        tc__free(buf);
        return TC_ENOMEM;
    }
    int rc = tc__l2_set(c->l2, rk.s, rk.len, buf, blen, ttl_ms);
    tc__rkey_done(&rk);
    tc__free(buf);
    return rc;
}

/* SCAN patterns treat * ? [ ] \ specially: escape them. */
char *tc__glob_escape(const char *s, size_t n, size_t *outlen)
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

/* Unlinks every Redis key <ns>:{<prefix>...}, leases included. The
   pattern is <ns>:{<prefix>*}*: the "}" after the star keeps a prefix
   that itself holds a "}" from matching a shorter key ("a}" must not
   take <ns>:{a} or <ns>:{a}:lease). */
char *tc__scan_pattern(const tc_cache *c, const char *prefix, size_t plen,
                       const char *tail)
{
    size_t nlen, elen, tlen = strlen(tail);
    char *ns = tc__glob_escape(c->opt.ns, strlen(c->opt.ns), &nlen);
    char *esc = tc__glob_escape(prefix, plen, &elen);
    char *p = ns && esc ? tc__malloc(nlen + elen + tlen + 3) : NULL;
    if (p) {
        memcpy(p, ns, nlen);
        memcpy(p + nlen, ":{", 2);
        memcpy(p + nlen + 2, esc, elen);
        memcpy(p + nlen + 2 + elen, tail, tlen + 1);
    }
    tc__free(ns);
    tc__free(esc);
    return p;
}

static int unlink_prefix(tc_cache *c, const char *prefix, size_t plen)
{
    char *pattern = tc__scan_pattern(c, prefix, plen, "*}*");
    if (!pattern)
        return TC_ENOMEM;
    uint64_t n;
    int rc = tc__l2_unlink_match(c->l2, pattern, &n);
    tc__log(&c->lg, TC_LOG_DEBUG, "prefix.deleted",
            "unlinked %llu keys matching %s", (unsigned long long)n, pattern);
    tc__free(pattern);
    return rc;
}

/* Tells the other processes on the namespace channel. */
static int publish(tc_cache *c, uint32_t kind, const char *arg, size_t len)
{
    tc__inval m = {kind, tc__wall_ms(), (const unsigned char *)arg, len};
    char *buf;
    size_t blen;
    if (tc__inval_encode(&m, &buf, &blen) != TC_OK)
        return TC_ENOMEM;
    int rc = tc__l2_publish(c->l2, c->channel, buf, blen);
    tc__free(buf);
    return rc;
}

/* With tracking, Redis reports every changed key itself; prefixes and
   flushes still go on the channel: one message instead of one per key,
   and it reaches entries that only some L1s hold. */
static int needs_publish(const tc_cache *c, uint32_t kind)
{
    return c->coh &&
           (kind != TC__INVAL_KEY ||
            !atomic_load_explicit(&c->tracking, memory_order_relaxed));
}

int tc__publish_set(tc_cache *c, const char *key, size_t klen)
{
    return needs_publish(c, TC__INVAL_KEY)
               ? publish(c, TC__INVAL_KEY, key, klen)
               : TC_OK;
}

void tc__refused(tc_cache *c, const char *what)
{
    int logged = 0;
    if (atomic_compare_exchange_strong(&c->refused_logged, &logged, 1))
        tc__log(&c->lg, TC_LOG_ERROR, "inval.refused",
                "redis refused %s (check the user's ACL): invalidations "
                "it refuses reach no other process",
                what);
}

int tc__invalidate_l2(tc_cache *c, uint32_t kind, const char *arg, size_t len)
{
    int rc;
    if (kind == TC__INVAL_KEY) {
        tc__rkey rk;
        if (tc__rkey_make(c, arg, len, &rk) != TC_OK)
            return TC_ENOMEM;
        rc = tc__l2_del(c->l2, rk.s, rk.len);
        tc__rkey_done(&rk);
    } else {
        rc = unlink_prefix(c, arg, len);
    }
    if (rc == TC_OK && needs_publish(c, kind))
        rc = publish(c, kind, arg, len);
    return rc;
}

/* On the channel, where tracking does not tell the others: a message a
   key, as tc__invalidate_l2 sends, for each key deleted (rcs[i] TC_OK,
   which becomes the publication's outcome); pipelined on one server,
   one by one on a cluster (any node takes them). */
#define PUBLISH_PIPE 256
static void publish_keys(tc_cache *c, const char *const *keys,
                         const size_t *lens, size_t n, int *rcs)
{
    tc__l2_cmd cmds[PUBLISH_PIPE];
    char *bufs[PUBLISH_PIPE];
    size_t at[PUBLISH_PIPE], m = 0;
    const char *channel = c->channel;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && rcs[i] == TC_OK && tc__l2_cluster(c->l2)) {
            rcs[i] = publish(c, TC__INVAL_KEY, keys[i], lens[i]);
            continue;
        }
        if (i < n && rcs[i] == TC_OK) {
            tc__inval msg = {TC__INVAL_KEY, tc__wall_ms(),
                             (const unsigned char *)keys[i], lens[i]};
            size_t blen;
            if (tc__inval_encode(&msg, &bufs[m], &blen) != TC_OK) {
                rcs[i] = TC_ENOMEM;
                continue;
            }
            cmds[m] = (tc__l2_cmd){3,
                                   {"PUBLISH", channel, bufs[m]},
                                   {7, strlen(channel), blen},
                                   TC_EBACKEND,
                                   NULL,
                                   NULL};
            at[m++] = i;
        }
        if (m == PUBLISH_PIPE || (i == n && m)) {
            tc__l2_pipeline(c->l2, cmds, m);
            for (size_t k = 0; k < m; k++) {
                rcs[at[k]] = cmds[k].rc;
                tc__free(bufs[k]);
            }
            m = 0;
        }
    }
}

int tc__invalidate_keys(tc_cache *c, const char *const *keys,
                        const size_t *lens, size_t n, int *rcs)
{
    /* Every name in one block: "<ns>:{<key>}" then its ":lease" form. */
    size_t nslen = strlen(c->opt.ns), total = 0;
    for (size_t i = 0; i < n; i++)
        total += 2 * (nslen + lens[i] + 3) + 6;
    char *names = tc__malloc(total ? total : 1);
    tc__l2_key *ks = tc__malloc((n ? n : 1) * sizeof(*ks));
    if (!names || !ks) {
        tc__free(names);
        tc__free(ks);
        for (size_t i = 0; i < n; i++)
            rcs[i] = TC_ENOMEM;
        return TC_ENOMEM;
    }
    char *p = names;
    for (size_t i = 0; i < n; i++) {
        ks[i].rkey = p;
        p += ks[i].rlen = tc__rkey_write(c, keys[i], lens[i], "", p);
        ks[i].lease = p;
        p += ks[i].llen = tc__rkey_write(c, keys[i], lens[i], ":lease", p);
    }
    int rc = tc__l2_del_many(c->l2, ks, n, rcs);
    tc__free(names);
    tc__free(ks);
    if (needs_publish(c, TC__INVAL_KEY))
        publish_keys(c, keys, lens, n, rcs);
    return rc;
}
