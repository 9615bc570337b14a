/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Leases across processes (docs/architecture.md §6.2, Facebook's
 * leases): on a miss, SET <ns>:{key}:lease <token> NX PX lease_ms; the
 * holder computes and stores through a script that writes only while its
 * token still holds.
 * tc_del removes the lease with the value, so a computation that began
 * before an invalidation can never store its (stale) result.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "l2.h"
#include "l2ops.h"
#include "lease.h"

/* KEYS: value, lease. ARGV: token, envelope, px. 1 stored, 0 lease lost.
   The SHA-1 is of these exact bytes; test_fetch checks it against
   SCRIPT LOAD, so an edit that forgets to update it fails there. */
const char tc__store_script[] =
    "if redis.call('GET', KEYS[2]) == ARGV[1] then\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "  redis.call('DEL', KEYS[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";
const char tc__store_sha[] = "07cb9b3816b3da7f64a24d6dfd5ea966c8909376";

/* KEYS: lease. ARGV: token. Deletes the lease only if it is ours. */
const char tc__release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";
const char tc__release_sha[] = "c89cee65b7ab260d98c281f3c3eb6fa7c992cdd2";

/* KEYS: lease. ARGV: token, px. Extends the lease only if it is ours. */
const char tc__extend_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n";
const char tc__extend_sha[] = "3a32323a05c08607e6bc7842cfeea9552d0b61f5";

/* The value's and the lease's Redis names; no allocation for keys of the
   usual size, so a lease can be given back even when memory is short. */
static int names(const tc_cache *c, const char *key, size_t klen, tc__rkey *rk,
                 tc__rkey *lk)
{
    if (tc__rkey_make(c, key, klen, rk) != TC_OK)
        return TC_ENOMEM;
    if (tc__rkey_make_sfx(c, key, klen, ":lease", lk) != TC_OK) {
        tc__rkey_done(rk);
        return TC_ENOMEM;
    }
    return TC_OK;
}

int tc__lease_take(tc_cache *c, const char *key, size_t klen,
                   const char *token)
{
    tc__rkey rk, lk;
    char px[16];
    if (names(c, key, klen, &rk, &lk) != TC_OK)
        return TC_ENOMEM;
    snprintf(px, sizeof(px), "%u", (unsigned)c->opt.lease_ms);
    const char *argv[] = {"SET", lk.s, token, "NX", "PX", px};
    size_t lens[] = {3, lk.len, strlen(token), 2, 2, strlen(px)};
    int rc = tc__l2_argv(c->l2, 6, argv, lens, tc__l2_reply_status, NULL);
    tc__rkey_done(&lk);
    tc__rkey_done(&rk);
    return rc;
}

/* 1 -> TC_OK, 0 -> TC_MISS; NOSCRIPT -> TC_ECODEC (send EVAL instead). */
static int script_result(void *ud, const redisReply *r)
{
    (void)ud;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer ? TC_OK : TC_MISS;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
        return TC_ECODEC;
    return TC_EBACKEND;
}

/* EVALSHA, and EVAL (which loads it again) where Redis forgot the script,
   after a restart or a SCRIPT FLUSH. */
static int run_script(tc_cache *c, const char *sha, const char *script,
                      int nkeys, const char **args, const size_t *lens,
                      int nargs)
{
    const char *argv[8];
    size_t lv[8];
    char nk[4];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[0] = "EVALSHA";
    lv[0] = 7;
    argv[1] = sha;
    lv[1] = strlen(sha);
    argv[2] = nk;
    lv[2] = strlen(nk);
    for (int i = 0; i < nargs; i++) {
        argv[3 + i] = args[i];
        lv[3 + i] = lens[i];
    }
    int rc = tc__l2_argv(c->l2, 3 + nargs, argv, lv, script_result, NULL);
    if (rc == TC_ECODEC) {
        argv[0] = "EVAL";
        lv[0] = 4;
        argv[1] = script;
        lv[1] = strlen(script);
        rc = tc__l2_argv(c->l2, 3 + nargs, argv, lv, script_result, NULL);
        if (rc == TC_ECODEC)
            rc = TC_EBACKEND;
    }
    return rc;
}

int tc__lease_store(tc_cache *c, const char *key, size_t klen,
                    const char *token, const tc_value *v, uint32_t ttl_ms)
{
    tc__rkey rk, lk;
    char *env, px[16];
    size_t elen;
    if (tc__envelope_of(c, v, &env, &elen) != TC_OK)
        return TC_ENOMEM;
    if (names(c, key, klen, &rk, &lk) != TC_OK) {
        tc__free(env);
        return TC_ENOMEM;
    }
    snprintf(px, sizeof(px), "%u", (unsigned)ttl_ms);
    const char *args[] = {rk.s, lk.s, token, env, px};
    size_t lens[] = {rk.len, lk.len, strlen(token), elen, strlen(px)};
    int rc = run_script(c, tc__store_sha, tc__store_script, 2, args, lens, 5);
    tc__free(env);
    tc__rkey_done(&lk);
    tc__rkey_done(&rk);
    return rc;
}

int tc__lease_extend(tc_cache *c, const char *key, size_t klen,
                     const char *token)
{
    tc__rkey rk, lk;
    char px[16];
    if (names(c, key, klen, &rk, &lk) != TC_OK)
        return TC_ENOMEM;
    snprintf(px, sizeof(px), "%u", (unsigned)c->opt.lease_ms);
    const char *args[] = {lk.s, token, px};
    size_t lens[] = {lk.len, strlen(token), strlen(px)};
    int rc =
        run_script(c, tc__extend_sha, tc__extend_script, 1, args, lens, 3);
    tc__rkey_done(&lk);
    tc__rkey_done(&rk);
    return rc;
}

int tc__lease_release(tc_cache *c, const char *key, size_t klen,
                      const char *token)
{
    tc__rkey rk, lk;
    if (names(c, key, klen, &rk, &lk) != TC_OK)
        return TC_ENOMEM;
    const char *args[] = {lk.s, token};
    size_t lens[] = {lk.len, strlen(token)};
    int rc =
        run_script(c, tc__release_sha, tc__release_script, 1, args, lens, 2);
    tc__rkey_done(&lk);
    tc__rkey_done(&rk);
    return rc;
}
