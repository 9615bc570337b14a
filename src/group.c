/* SPDX-License-Identifier: BSD-3-Clause */
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

#include <hiredis/hiredis.h>

#include "cache.h"
#include "l1.h"
#include "l2.h"
#include "l2ops.h"
#include "replay.h"

#define GEN_PREFIX "\x01gen:"
#define GEN_TTL_MS (24u * 3600u * 1000u)
#define GEN_LEN 16

static void new_token(char out[GEN_LEN + 1])
{
    snprintf(out, GEN_LEN + 1, "%016llx", (unsigned long long)tc__rand64());
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

/* ---- reading a generation ---- */

typedef struct gen_read {
    char *out;
    uint64_t expires_at, wver;
} gen_read;

/* A GET of the generation key: an envelope holding the token. */
static int gen_reply(void *ud, const char *buf, size_t len)
{
    gen_read *g = ud;
    tc__envelope e;
    if (tc__env_decode(buf, len, GEN_LEN, &e) != TC_OK ||
        e.payload_len != GEN_LEN || e.flags)
        return TC_ECODEC;
    memcpy(g->out, e.payload, GEN_LEN);
    g->out[GEN_LEN] = '\0';
    g->expires_at = e.expires_at_ms;
    g->wver = e.wver;
    return TC_OK;
}

/* Keeps a token read from (or written to) Redis in the L1. */
static void keep(tc_cache *c, const char *gk, size_t gklen, uint64_t hash,
                 const char *token, uint64_t expires_at, uint64_t wver,
                 uint64_t epoch)
{
    tc_value *v = tc__value_new(token, GEN_LEN);
    if (!v)
        return;
    v->expires_at = expires_at;
    v->wver = wver; /* what Redis holds, for a revalidation */
    uint64_t now = tc__wall_ms();
    if (expires_at > now)
        tc__cache_fill(c, gk, gklen, hash, v, expires_at - now, epoch);
    tc_value_release(v);
}

/* Redis's token: TC_OK, TC_MISS (none), TC_ECODEC (not ours), or
   TC_EBACKEND (not known now, queued invalidations included). */
static int gen_get(tc_cache *c, const char *gk, size_t gklen, uint64_t hash,
                   char out[GEN_LEN + 1])
{
    if (tc__replay_gate(c, gk, gklen) != TC_OK)
        return TC_EBACKEND;
    tc__rkey rk;
    if (tc__rkey_make(c, gk, gklen, &rk) != TC_OK)
        return TC_ENOMEM;
    uint64_t epoch = tc__l1_epoch(c->l1, hash);
    gen_read g = {out, 0, 0};
    int rc = tc__l2_get(c->l2, rk.s, rk.len, gen_reply, &g);
    tc__rkey_done(&rk);
    if (rc == TC_OK)
        keep(c, gk, gklen, hash, out, g.expires_at, g.wver, epoch);
    return rc == TC_OK || rc == TC_MISS || rc == TC_ECODEC ? rc : TC_EBACKEND;
}

/* SET [NX] a fresh token: TC_OK written (out holds it), TC_MISS another
   process was first (NX), TC_EBACKEND. */
static int gen_create(tc_cache *c, const char *gk, size_t gklen, int nx,
                      char out[GEN_LEN + 1])
{
    new_token(out);
    tc_value *v = tc__value_new(out, GEN_LEN);
    char *env = NULL, px[16];
    size_t elen;
    tc__rkey rk;
    int rc = v ? TC_OK : TC_ENOMEM;
    if (rc == TC_OK) {
        v->expires_at = tc__add_sat(tc__wall_ms(), GEN_TTL_MS);
        if (!c->opt.revalidate) /* as tc__envelope_of does */
            v->wver = 0;
        rc = tc__envelope_of(NULL, v, &env, &elen); /* never compressed */
    }
    if (rc == TC_OK)
        rc = tc__rkey_make(c, gk, gklen, &rk);
    if (rc == TC_OK) {
        snprintf(px, sizeof(px), "%u", GEN_TTL_MS);
        const char *argv[] = {"SET", rk.s, env, "PX", px, "NX"};
        size_t lens[] = {3, rk.len, elen, 2, strlen(px), 2};
        rc = tc__l2_argv(c->l2, nx ? 6 : 5, argv, lens, tc__l2_reply_status,
                         NULL);
        tc__rkey_done(&rk);
    }
    tc__free(env);
    tc_value_release(v);
    return rc;
}

/* The group's generation. A generation that cannot be known now (Redis
   away, a queue still to replay) is a fresh token kept nowhere: every key
   of the family is a miss here, which is what an unknown generation must
   mean, and nothing is written or queued that would invalidate the group
   for the others. Racing creators settle through SET NX. */
static int read_gen(tc_cache *c, const char *gk, char out[GEN_LEN + 1])
{
    size_t gklen = strlen(gk);
    uint64_t hash = tc__hash(gk, gklen);
    tc_value *v = tc__cache_peek(c, gk, gklen, hash);
    if (v) {
        int ok = v->len == GEN_LEN;
        if (ok) {
            memcpy(out, v->data, GEN_LEN);
            out[GEN_LEN] = '\0';
        }
        tc_value_release(v);
        if (ok)
            return TC_OK;
    }
    if (!c->l2) { /* one process: the L1 is the only place */
        new_token(out);
        keep(c, gk, gklen, hash, out, tc__add_sat(tc__wall_ms(), GEN_TTL_MS),
             0, TC__EPOCH_ANY);
        return TC_OK;
    }
    int rc = gen_get(c, gk, gklen, hash, out);
    /* Strict mode says what it read, as tc_get does, and leaves the key
       alone: a tc_group_bump replaces it. */
    if (rc == TC_ECODEC) {
        TC__INC(c->ctr.codec_errors);
        if (c->opt.strict)
            return TC_ECODEC;
    }
    /* Only a generation known to be missing or not ours is (re)written:
       one that could not be read (no memory for its key's name) may well
       exist, and a plain SET over it would bump the group for everyone. */
    for (int tries = 0; tries < 2 && (rc == TC_MISS || rc == TC_ECODEC);
         tries++) {
        /* none yet: create it; not ours (ECODEC): replace it */
        rc = gen_create(c, gk, gklen, rc == TC_MISS, out);
        if (rc == TC_MISS) /* another process created it first */
            rc = gen_get(c, gk, gklen, hash, out);
    }
    if (rc == TC_OK || rc == TC_ENOMEM)
        return rc;
    TC__INC(c->ctr.degraded_ops);
    if (c->opt.strict)
        return TC_EBACKEND;
    new_token(out);
    return TC_OK;
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
