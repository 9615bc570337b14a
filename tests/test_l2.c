/* SPDX-License-Identifier: BSD-3-Clause */
/* L2 against a private redis-server: sharing between caches, TTLs, the
   stored format, prefix delete and flush scoped to the namespace,
   foreign bytes, credentials and db selection. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

/* These tests count tiers exactly; an invalidation of a cache's own write
   arriving mid-test would move a hit from one tier to the other.
   Coherence has tests of its own (test_coherence). */
static void exact(tc_options *o)
{
    o->coherence = TC_COHERENCE_NONE;
}

static void exact_strict(tc_options *o)
{
    exact(o);
    o->strict = 1;
}

static tc_cache *open_ns(const char *ns, int strict)
{
    return th_open(th_srv, ns, strict ? exact_strict : exact);
}

/* 1 if the raw Redis key exists. */
static int raw_exists(const char *rkey)
{
    redisReply *r = th_redis_cmd(th_srv, "EXISTS %s", rkey);
    int yes = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return yes;
}

static void raw_set(const char *rkey, const char *val, size_t len)
{
    redisReply *r = th_redis_cmd(th_srv, "SET %s %b", rkey, val, len);
    CU_ASSERT_PTR_NOT_NULL(r);
    freeReplyObject(r);
}

static void test_shared_between_caches(void)
{
    tc_cache *a = open_ns("share", 0), *b = open_ns("share", 0);
    char buf[64];
    CU_ASSERT_EQUAL(tc_set(a, "user:1", "alice", 5, 0), TC_OK);
    CU_ASSERT_EQUAL(th_get_str(b, "user:1", buf, sizeof(buf)), TC_OK);
    CU_ASSERT_STRING_EQUAL(buf, "alice");
    CU_ASSERT_EQUAL(th_get_str(b, "user:1", buf, sizeof(buf)), TC_OK);
    tc_stats_info s;
    tc_stats(b, &s);
    CU_ASSERT_EQUAL(s.l2_hits, 1); /* first read from Redis ... */
    CU_ASSERT_EQUAL(s.l1_hits, 1); /* ... the second from the L1 */
    CU_ASSERT_EQUAL(th_get_str(b, "user:2", buf, sizeof(buf)), TC_MISS);
    tc_stats(b, &s);
    CU_ASSERT_EQUAL(s.l2_misses, 1);
    CU_ASSERT_EQUAL(tc_del(a, "user:1"), TC_OK);
    CU_ASSERT(!raw_exists("share:{user:1}"));
    tc_close(a);
    tc_close(b);
}

static void test_ttl_in_redis(void)
{
    tc_cache *c = open_ns("ttl", 0);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 5000), TC_OK);
    redisReply *r = th_redis_cmd(th_srv, "PTTL ttl:{k}");
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_INTEGER);
    CU_ASSERT(r->integer > 4000 && r->integer <= 5000);
    freeReplyObject(r);
    CU_ASSERT_EQUAL(tc_set(c, "d", "v", 1, 0), TC_OK); /* default TTL */
    r = th_redis_cmd(th_srv, "PTTL ttl:{d}");
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_INTEGER);
    CU_ASSERT(r->integer > 290000 && r->integer <= 300000);
    freeReplyObject(r);
    tc_close(c);
}

/* The stored bytes are the documented envelope, readable by anyone. */
static void test_stored_format(void)
{
    tc_cache *c = open_ns("fmt", 0);
    CU_ASSERT_EQUAL(tc_set(c, "k", "payload", 7, 60000), TC_OK);
    redisReply *r = th_redis_cmd(th_srv, "GET fmt:{k}");
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_STRING);
    tc__envelope e;
    CU_ASSERT_EQUAL(tc__env_decode(r->str, r->len, 1 << 20, &e), TC_OK);
    CU_ASSERT_EQUAL((unsigned char)r->str[0], 0x96); /* fixarray of 6 */
    CU_ASSERT_EQUAL((unsigned char)r->str[1], 0x01); /* version 1 */
    CU_ASSERT_EQUAL(e.payload_len, 7);
    CU_ASSERT_EQUAL(memcmp(e.payload, "payload", 7), 0);
    /* the write version, last: 0xcf and 8 bytes, never 0 */
    CU_ASSERT(e.wver != 0);
    CU_ASSERT(tc__wver_is(r->str, r->len, e.wver));
    CU_ASSERT_EQUAL(r->len, 15 + 7 + TC__WVER_BYTES);
    uint64_t now = tc__wall_ms();
    CU_ASSERT(e.expires_at_ms > now + 50000 && e.expires_at_ms <= now + 60000);
    freeReplyObject(r);
    tc_close(c);
}

static void test_lease_deleted_with_value(void)
{
    tc_cache *c = open_ns("lease", 0);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    raw_set("lease:{k}:lease", "token", 5);
    CU_ASSERT_EQUAL(tc_del(c, "k"), TC_OK);
    CU_ASSERT(!raw_exists("lease:{k}"));
    CU_ASSERT(!raw_exists("lease:{k}:lease"));
    tc_close(c);
}

static void test_prefix_and_flush_scoped(void)
{
    tc_cache *a = open_ns("app", 0), *b = open_ns("app:x", 0);
    const char *keys[] = {"inv:1", "inv:2", "invoice", "user:1", "a*b", "aXb"};
    for (size_t i = 0; i < 6; i++) {
        CU_ASSERT_EQUAL(tc_set(a, keys[i], "v", 1, 0), TC_OK);
        CU_ASSERT_EQUAL(tc_set(b, keys[i], "v", 1, 0), TC_OK);
    }
    raw_set("unrelated", "x", 1);
    raw_set("app", "x", 1);
    CU_ASSERT_EQUAL(tc_del_prefix(a, "inv:"), TC_OK);
    CU_ASSERT(!raw_exists("app:{inv:1}"));
    CU_ASSERT(!raw_exists("app:{inv:2}"));
    CU_ASSERT(raw_exists("app:{invoice}"));
    CU_ASSERT(raw_exists("app:{user:1}"));
    CU_ASSERT(raw_exists("app:x:{inv:1}"));
    char buf[8];
    CU_ASSERT_EQUAL(th_get_str(a, "inv:1", buf, sizeof(buf)), TC_MISS);
    /* glob characters in a prefix are literal */
    CU_ASSERT_EQUAL(tc_del_prefix(a, "a*"), TC_OK);
    CU_ASSERT(!raw_exists("app:{a*b}"));
    CU_ASSERT(raw_exists("app:{aXb}"));
    CU_ASSERT_EQUAL(tc_flush(a), TC_OK);
    CU_ASSERT(!raw_exists("app:{invoice}"));
    CU_ASSERT(!raw_exists("app:{user:1}"));
    CU_ASSERT_EQUAL(th_get_str(a, "user:1", buf, sizeof(buf)), TC_MISS);
    CU_ASSERT(raw_exists("app:x:{inv:1}"));
    CU_ASSERT(raw_exists("app:x:{user:1}"));
    CU_ASSERT(raw_exists("unrelated"));
    CU_ASSERT(raw_exists("app"));
    tc_close(a);
    tc_close(b);
}

static void test_flush_many_keys(void)
{
    tc_cache *c = open_ns("many", 0);
    char key[32];
    for (int i = 0; i < 2500; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CU_ASSERT_EQUAL(tc_set(c, key, "v", 1, 0), TC_OK);
    }
    CU_ASSERT(raw_exists("many:{k2499}"));
    CU_ASSERT_EQUAL(tc_flush(c), TC_OK);
    redisReply *r = th_redis_cmd(th_srv, "KEYS many:*");
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_ARRAY);
    CU_ASSERT_EQUAL(r->elements, 0);
    freeReplyObject(r);
    tc_close(c);
}

/* Bytes another program left under the namespace read as a miss (or
   TC_ECODEC when strict) and are counted; never a crash. */
static void test_foreign_bytes(void)
{
    tc_cache *c = open_ns("foreign", 0), *s = open_ns("foreign", 1);
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"hello", 5},
        {"{\"json\":1}", 10},
        {"\x95\x01\x00\x00\x00", 5},           /* payload missing */
        {"\x95\x01\x00\x00\x00\xc4\x09xx", 9}, /* bin longer than bytes */
        {"\xdd\xff\xff\xff\xff\x01", 6},       /* 4-billion-element array */
        {"\x95\x02\x00\x00\x00\xc4\x01x", 8},  /* unknown version */
        {"", 0},
    };
    char key[16], rkey[48], buf[32];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(key, sizeof(key), "k%zu", i);
        snprintf(rkey, sizeof(rkey), "foreign:{%s}", key);
        raw_set(rkey, bad[i].bytes, bad[i].len);
        CU_ASSERT_EQUAL(th_get_str(c, key, buf, sizeof(buf)), TC_MISS);
        CU_ASSERT_EQUAL(th_get_str(s, key, buf, sizeof(buf)), TC_ECODEC);
    }
    tc_stats_info st;
    tc_stats(c, &st);
    CU_ASSERT_EQUAL(st.codec_errors, sizeof(bad) / sizeof(bad[0]));
    CU_ASSERT_EQUAL(st.l1_entries, 0);
    /* a good value written over the foreign one is read normally */
    CU_ASSERT_EQUAL(tc_set(c, "k0", "fine", 4, 0), TC_OK);
    CU_ASSERT_EQUAL(th_get_str(s, "k0", buf, sizeof(buf)), TC_OK);
    CU_ASSERT_STRING_EQUAL(buf, "fine");
    tc_close(c);
    tc_close(s);
}

static void test_unix_socket(void)
{
    tc_options o;
    th_options_unix(th_srv, &o);
    snprintf(o.ns, sizeof(o.ns), "unix");
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_EQUAL(tc_set(c, "k", "over unix", 9, 0), TC_OK);
    CU_ASSERT(raw_exists("unix:{k}"));
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_connected, 1);
    tc_close(c);
}

static void test_db_and_password(void)
{
    redisReply *r = th_redis_cmd(th_srv, "CONFIG SET requirepass s3cret");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    freeReplyObject(r);
    tc_options o;
    th_options(th_srv, &o);
    snprintf(o.ns, sizeof(o.ns), "auth");
    snprintf(o.redis_password, sizeof(o.redis_password), "s3cret");
    o.redis_db = 3;
    tc_cache *c, *wrong;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    tc_stats_info s;
    tc_stats(c, &s);
    CU_ASSERT_EQUAL(s.backend_errors, 0);
    snprintf(o.redis_password, sizeof(o.redis_password), "wrong");
    o.strict = 1;
    /* a refused AUTH is a configuration error: strict open fails */
    CU_ASSERT_EQUAL(tc_open(&wrong, &o), TC_EREFUSED);
    CU_ASSERT_PTR_NULL(wrong);

    redisContext *ctx = th_redis_connect(th_srv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    freeReplyObject(redisCommand(ctx, "AUTH s3cret"));
    freeReplyObject(redisCommand(ctx, "SELECT 3"));
    r = redisCommand(ctx, "EXISTS auth:{k}");
    CU_ASSERT(r && r->integer == 1);
    freeReplyObject(r);
    freeReplyObject(redisCommand(ctx, "SELECT 0"));
    r = redisCommand(ctx, "EXISTS auth:{k}");
    CU_ASSERT(r && r->integer == 0);
    freeReplyObject(r);
    freeReplyObject(redisCommand(ctx, "CONFIG SET requirepass %s", ""));
    redisFree(ctx);
    tc_close(c);
    tc_close(wrong);
}

static int computed;

static int compute_ok(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ttl;
    computed++;
    *val = strdup((const char *)ud);
    *len = strlen((const char *)ud);
    return 0;
}

static int compute_fail(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)val, (void)len, (void)ttl;
    computed++;
    return -1;
}

static void test_fetch_plain(void)
{
    tc_cache *a = open_ns("fetch", 0), *b = open_ns("fetch", 0);
    tc_value *v = NULL;
    computed = 0;
    CU_ASSERT_EQUAL(tc_fetch(a, "f", 0, compute_ok, "computed", &v), TC_OK);
    CU_ASSERT_EQUAL(computed, 1);
    CU_ASSERT_EQUAL(tc_value_len(v), 8);
    tc_value_release(v);
    /* the other cache finds it in Redis: no second computation */
    CU_ASSERT_EQUAL(tc_fetch(b, "f", 0, compute_ok, "other", &v), TC_OK);
    CU_ASSERT_EQUAL(computed, 1);
    CU_ASSERT_EQUAL(memcmp(tc_value_data(v), "computed", 8), 0);
    tc_value_release(v);
    CU_ASSERT_EQUAL(tc_fetch(a, "g", 0, compute_fail, NULL, &v), TC_ECOMPUTE);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT(!raw_exists("fetch:{g}"));
    tc_stats_info s;
    tc_stats(a, &s);
    CU_ASSERT_EQUAL(s.computes, 2);
    tc_close(a);
    tc_close(b);
}

static void test_get_into_small_buffer(void)
{
    tc_cache *c = open_ns("into", 0);
    CU_ASSERT_EQUAL(tc_set(c, "k", "0123456789", 10, 0), TC_OK);
    char buf[4] = "abc";
    size_t len = 0;
    CU_ASSERT_EQUAL(tc_get_into(c, "k", buf, 4, &len), TC_ETOOBIG);
    CU_ASSERT_EQUAL(len, 10);
    CU_ASSERT_STRING_EQUAL(buf, "abc"); /* untouched */
    tc_close(c);
}

int main(void)
{
    static const th_test tests[] = {
        {"shared_between_caches", test_shared_between_caches},
        {"ttl_in_redis", test_ttl_in_redis},
        {"stored_format", test_stored_format},
        {"lease_deleted_with_value", test_lease_deleted_with_value},
        {"prefix_and_flush_scoped", test_prefix_and_flush_scoped},
        {"flush_many_keys", test_flush_many_keys},
        {"foreign_bytes", test_foreign_bytes},
        {"unix_socket", test_unix_socket},
        {"db_and_password", test_db_and_password},
        {"fetch_plain", test_fetch_plain},
        {"get_into_small_buffer", test_get_into_small_buffer},
        {NULL, NULL},
    };
    return th_run_redis("l2", tests);
}
