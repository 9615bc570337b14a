/*
 * Key families invalidated together (every cached list of invoices, say)
 * in O(1), instead of a SCAN of the namespace per write (tc_del_prefix,
 * which costs ~75 ms at 100k keys and ~0.9 s at 1M on the development
 * machine; see docs/api.md).
 *
 * A group has a generation: a random token stored under the internal key
 * "\x01gen:<group>", read and cached in the L1 like any other key (so
 * tracking or the channel invalidates every process's copy when it
 * changes). tc_group_key builds "<group>@<generation>:<rest>";
 * tc_group_bump stores a new token, after which no one builds the old
 * keys again and their entries age out by TTL. Any token works, so a
 * lost generation key (expired, evicted, flushed) is replaced by a fresh
 * one: that only invalidates the family once more.
 */
#include <stdio.h>
#include <string.h>

#include "cache.h"

#define GEN_PREFIX "\x01gen:"
#define GEN_TTL_MS (24u * 3600u * 1000u)
#define GEN_LEN 16

static void new_token(char out[GEN_LEN + 1])
{
    static _Thread_local uint64_t s;
    if (!s)
        s = tc__mono_ms() ^ (uint64_t)(uintptr_t)&s ^ tc__wall_ms() << 20;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    snprintf(out, GEN_LEN + 1, "%016llx",
             (unsigned long long)(s ^ tc__wall_ms()));
}

static int gen_key(const tc_cache *c, const char *group, char *out, size_t cap)
{
    size_t glen;
    int rc = tc__check_key(c, group, &glen);
    if (rc != TC_OK)
        return rc;
    if (glen + sizeof(GEN_PREFIX) > cap ||
        glen + sizeof(GEN_PREFIX) - 1 > c->opt.max_key_bytes)
        return TC_ETOOBIG;
    snprintf(out, cap, "%s%s", GEN_PREFIX, group);
    return TC_OK;
}

/* Stores a fresh generation if the group has none (SET NX semantics are
   not needed: racing creators each store a token, and the last one read
   by everyone wins once tracking has dropped the others). */
static int read_gen(tc_cache *c, const char *gk, char out[GEN_LEN + 1])
{
    size_t gklen = strlen(gk);
    tc_value *v = NULL;
    int rc = tc__lookup(c, gk, gklen, tc__hash(gk, gklen), &v);
    if (rc == TC_OK && v->len == GEN_LEN && !(v->flags & TC__FLAG_ABSENT)) {
        memcpy(out, v->data, GEN_LEN);
        out[GEN_LEN] = '\0';
        tc_value_release(v);
        return TC_OK;
    }
    tc_value_release(v);
    if (rc != TC_OK && rc != TC_MISS)
        return rc; /* strict mode: Redis trouble */
    new_token(out);
    tc_value *nv = tc__value_new(out, GEN_LEN);
    if (!nv)
        return TC_ENOMEM;
    rc = tc__store(c, gk, gklen, nv, GEN_TTL_MS, 0);
    tc_value_release(nv);
    /* Not stored (Redis away): the fresh token still makes every key of
       the family a miss here, which is what an unknown generation must
       mean. */
    return rc == TC_EBACKEND ? TC_EBACKEND : TC_OK;
}

int tc_group_key(tc_cache *c, char *out, size_t cap, const char *group,
                 const char *rest)
{
    if (!out || !rest)
        return TC_EINVAL;
    if (cap)
        out[0] = '\0';
    char gk[TC_KEY_MAX * 8];
    int rc = gen_key(c, group, gk, sizeof(gk));
    if (rc == TC_OK)
        rc = tc__enter(c);
    char gen[GEN_LEN + 1];
    if (rc == TC_OK)
        rc = read_gen(c, gk, gen);
    if (rc != TC_OK)
        return rc;
    int n = snprintf(out, cap, "%s@%s:%s", group, gen, rest);
    if (n < 0 || (size_t)n >= cap || (size_t)n > c->opt.max_key_bytes) {
        if (cap)
            out[0] = '\0';
        return TC_ETOOBIG;
    }
    return TC_OK;
}

int tc_group_bump(tc_cache *c, const char *group)
{
    char gk[TC_KEY_MAX * 8];
    int rc = gen_key(c, group, gk, sizeof(gk));
    if (rc == TC_OK)
        rc = tc__enter(c);
    if (rc != TC_OK)
        return rc;
    char gen[GEN_LEN + 1];
    new_token(gen);
    tc_value *v = tc__value_new(gen, GEN_LEN);
    if (!v)
        return TC_ENOMEM;
    TC__INC(c->ctr.sets);
    rc = tc__store(c, gk, strlen(gk), v, GEN_TTL_MS, 0);
    tc_value_release(v);
    return rc;
}
