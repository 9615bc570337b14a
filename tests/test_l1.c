/* SPDX-License-Identifier: BSD-3-Clause */
/* L1 store: LRU order, bounds, TTL with an injected clock, reference
   counts across eviction, the fill-epoch rule, out-of-memory paths. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "l1.h"

static uint64_t fake_now = 1000;

static uint64_t fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static tc__l1 *make_l1(uint64_t entries, uint64_t bytes, uint32_t shards)
{
    tc__l1_config cfg = {.max_entries = entries,
                         .max_bytes = bytes,
                         .shards = shards,
                         .clock = fake_clock};
    tc__l1 *l1 = NULL;
    CU_ASSERT_FATAL(tc__l1_create(&l1, &cfg) == TC_OK);
    return l1;
}

static int put(tc__l1 *l1, const char *key, const char *val, uint64_t ttl)
{
    tc_value *v = tc__value_new(val, strlen(val));
    int rc = tc__l1_put(l1, key, strlen(key), tc__hash(key, strlen(key)), v,
                        ttl, TC__EPOCH_ANY);
    tc_value_release(v);
    return rc;
}

/* 1 if key is present with exactly `val`. */
static int has(tc__l1 *l1, const char *key, const char *val)
{
    tc_value *v = tc__l1_get(l1, key, strlen(key), tc__hash(key, strlen(key)),
                             UINT64_MAX);
    int ok = v && v->len == strlen(val) && memcmp(v->data, val, v->len) == 0;
    tc_value_release(v);
    return ok;
}

static int present(tc__l1 *l1, const char *key)
{
    tc_value *v = tc__l1_get(l1, key, strlen(key), tc__hash(key, strlen(key)),
                             UINT64_MAX);
    tc_value_release(v);
    return v != NULL;
}

static void test_lru_order(void)
{
    tc__l1 *l1 = make_l1(3, 1 << 20, 16);
    CU_ASSERT_EQUAL(tc__l1_shards(l1), 1); /* tiny bound: one shard */
    CU_ASSERT_EQUAL(put(l1, "a", "1", 10000), TC_OK);
    CU_ASSERT_EQUAL(put(l1, "b", "2", 10000), TC_OK);
    CU_ASSERT_EQUAL(put(l1, "c", "3", 10000), TC_OK);
    CU_ASSERT(has(l1, "a", "1")); /* a is now the most recent */
    CU_ASSERT_EQUAL(put(l1, "d", "4", 10000), TC_OK);
    CU_ASSERT(!present(l1, "b")); /* b was the least recent */
    CU_ASSERT(has(l1, "a", "1"));
    CU_ASSERT(has(l1, "c", "3"));
    CU_ASSERT(has(l1, "d", "4"));
    tc__l1_stats n;
    tc__l1_counts(l1, &n);
    CU_ASSERT_EQUAL(n.entries, 3);
    CU_ASSERT_EQUAL(n.evictions, 1);
    tc__l1_destroy(l1);
}

static void test_entry_bound(void)
{
    tc__l1 *l1 = make_l1(1000, 64 << 20, 16);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CU_ASSERT_EQUAL(put(l1, key, "v", 10000), TC_OK);
    }
    tc__l1_stats n;
    tc__l1_counts(l1, &n);
    CU_ASSERT(n.entries <= 1000);
    CU_ASSERT_EQUAL(n.entries + n.evictions, 5000);
    CU_ASSERT(present(l1, "k4999")); /* the newest survives */
    tc__l1_destroy(l1);
}

static void test_byte_bound(void)
{
    const uint64_t max = 256 * 1024;
    tc__l1 *l1 = make_l1(100000, max, 16);
    char val[1001], key[32];
    memset(val, 'x', 1000);
    val[1000] = '\0';
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CU_ASSERT_EQUAL(put(l1, key, val, 10000), TC_OK);
        tc__l1_stats n;
        tc__l1_counts(l1, &n);
        CU_ASSERT(n.bytes <= max);
    }
    tc__l1_stats n;
    tc__l1_counts(l1, &n);
    CU_ASSERT(n.evictions > 0);
    CU_ASSERT(n.bytes > max / 2); /* the bound is used, not just obeyed */
    tc__l1_destroy(l1);
}

static void test_too_big_for_l1(void)
{
    tc__l1 *l1 = make_l1(100, 64 * 1024, 1);
    static char big[70 * 1024];
    memset(big, 'y', sizeof(big) - 1);
    CU_ASSERT_EQUAL(put(l1, "big", big, 10000), TC_MISS);
    CU_ASSERT(!present(l1, "big"));
    tc__l1_destroy(l1);
}

static void test_ttl_expiry(void)
{
    tc__l1 *l1 = make_l1(100, 1 << 20, 1);
    fake_now = 1000;
    CU_ASSERT_EQUAL(put(l1, "t", "v", 100), TC_OK);
    fake_now = 1099;
    CU_ASSERT(has(l1, "t", "v"));
    fake_now = 1100;
    CU_ASSERT(!present(l1, "t"));
    tc__l1_stats n;
    tc__l1_counts(l1, &n);
    CU_ASSERT_EQUAL(n.expirations, 1);
    CU_ASSERT_EQUAL(n.entries, 0);
    tc__l1_destroy(l1);
}

static void test_expired_trimmed_on_insert(void)
{
    tc__l1 *l1 = make_l1(100, 1 << 20, 1);
    fake_now = 5000;
    CU_ASSERT_EQUAL(put(l1, "old", "v", 10), TC_OK);
    fake_now = 6000;
    CU_ASSERT_EQUAL(put(l1, "new", "v", 10000), TC_OK);
    tc__l1_stats n;
    tc__l1_counts(l1, &n);
    CU_ASSERT_EQUAL(n.entries, 1); /* "old" left on the insert */
    CU_ASSERT_EQUAL(n.expirations, 1);
    tc__l1_destroy(l1);
}

static void test_ref_survives_eviction(void)
{
    tc__l1 *l1 = make_l1(1, 1 << 20, 1);
    CU_ASSERT_EQUAL(put(l1, "a", "alpha", 10000), TC_OK);
    tc_value *v = tc__l1_get(l1, "a", 1, tc__hash("a", 1), UINT64_MAX);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(put(l1, "b", "beta", 10000), TC_OK); /* evicts a */
    CU_ASSERT(!present(l1, "a"));
    tc__l1_clear(l1);
    tc__l1_destroy(l1);
    /* the holder's reference keeps the bytes alive (ASan/valgrind) */
    CU_ASSERT_EQUAL(tc_value_len(v), 5);
    CU_ASSERT_EQUAL(memcmp(tc_value_data(v), "alpha", 5), 0);
    tc_value_release(v);
}

static void test_replace_accounting(void)
{
    tc__l1 *l1 = make_l1(100, 1 << 20, 1);
    CU_ASSERT_EQUAL(put(l1, "k", "short", 10000), TC_OK);
    tc__l1_stats a, b;
    tc__l1_counts(l1, &a);
    CU_ASSERT_EQUAL(put(l1, "k", "a longer value", 10000), TC_OK);
    tc__l1_counts(l1, &b);
    CU_ASSERT_EQUAL(b.entries, 1);
    CU_ASSERT_EQUAL(b.bytes, a.bytes + strlen("a longer value") - 5);
    CU_ASSERT(has(l1, "k", "a longer value"));
    tc__l1_destroy(l1);
}

/* The fill rule: a put carrying the epoch read before an invalidation
   must not insert. */
static void test_epoch_rule(void)
{
    tc__l1 *l1 = make_l1(100, 1 << 20, 1);
    uint64_t h = tc__hash("k", 1);
    uint64_t epoch = tc__l1_epoch(l1, h);
    tc__l1_del(l1, "k", 1, h); /* an invalidation arrives */
    tc_value *v = tc__value_new("stale", 5);
    CU_ASSERT_EQUAL(tc__l1_put(l1, "k", 1, h, v, 10000, epoch), TC_MISS);
    CU_ASSERT(!present(l1, "k"));
    CU_ASSERT_EQUAL(tc__l1_put(l1, "k", 1, h, v, 10000, tc__l1_epoch(l1, h)),
                    TC_OK);
    CU_ASSERT(has(l1, "k", "stale"));
    tc_value_release(v);
    tc__l1_destroy(l1);
}

static void test_del_prefix_and_clear(void)
{
    tc__l1 *l1 = make_l1(1000, 1 << 20, 4);
    put(l1, "inv:1", "a", 10000);
    put(l1, "inv:2", "b", 10000);
    put(l1, "user:1", "c", 10000);
    tc__l1_del_prefix(l1, "inv:", 4);
    CU_ASSERT(!present(l1, "inv:1"));
    CU_ASSERT(!present(l1, "inv:2"));
    CU_ASSERT(has(l1, "user:1", "c"));
    tc__l1_clear(l1);
    CU_ASSERT(!present(l1, "user:1"));
    tc__l1_stats n;
    tc__l1_counts(l1, &n);
    CU_ASSERT_EQUAL(n.entries, 0);
    CU_ASSERT_EQUAL(n.bytes, 0);
    tc__l1_destroy(l1);
}

static void test_l1_off(void)
{
    tc__l1 *l1 = make_l1(0, 1 << 20, 4);
    CU_ASSERT_EQUAL(put(l1, "k", "v", 10000), TC_MISS);
    CU_ASSERT(!present(l1, "k"));
    tc__l1_destroy(l1);
}

/* Through the public API, with no Redis at all. */
static void test_l1_only_cache(void)
{
    tc_options o;
    th_options(NULL, &o);
    o.clock_fn = fake_clock;
    fake_now = 1000;
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_EQUAL(tc_set(c, "k", "hello", 5, 50), TC_OK);
    char buf[16];
    size_t len;
    CU_ASSERT_EQUAL(tc_get_into(c, "k", buf, sizeof(buf), &len), TC_OK);
    CU_ASSERT_EQUAL(len, 5);
    CU_ASSERT_EQUAL(memcmp(buf, "hello", 5), 0);
    fake_now += 50;
    CU_ASSERT_EQUAL(tc_get_into(c, "k", buf, sizeof(buf), &len), TC_MISS);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_configured, 0);
    tc_stats_info s;
    tc_stats(c, &s);
    CU_ASSERT_EQUAL(s.l1_hits, 1);
    CU_ASSERT_EQUAL(s.l1_misses, 1);
    CU_ASSERT_EQUAL(s.l1_expirations, 1);
    CU_ASSERT_EQUAL(s.backend_errors, 0);
    tc_close(c);
}

/* Fail each allocation of a set in turn: ENOMEM or OK, never a leak or a
   half-made entry (ASan and valgrind check the rest). */
static void test_oom_paths(void)
{
    tc_options o;
    th_options(NULL, &o);
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    int saw_enomem = 0;
    for (long n = 0; n < 12; n++) {
        char key[16];
        snprintf(key, sizeof(key), "k%ld", n);
        tc__alloc_fail_after(n);
        int rc = tc_set(c, key, "v", 1, 0);
        tc__alloc_fail_after(-1);
        CU_ASSERT(rc == TC_OK || rc == TC_ENOMEM);
        saw_enomem |= rc == TC_ENOMEM;
        tc_value *v = NULL;
        int g = tc_get(c, key, &v);
        CU_ASSERT(g == TC_OK || g == TC_MISS);
        if (rc == TC_ENOMEM)
            CU_ASSERT_EQUAL(g, TC_MISS);
        tc_value_release(v);
    }
    CU_ASSERT(saw_enomem);
    tc__alloc_fail_after(0);
    tc_cache *c2 = NULL;
    CU_ASSERT_EQUAL(tc_open(&c2, &o), TC_ENOMEM);
    tc__alloc_fail_after(-1);
    CU_ASSERT_PTR_NULL(c2);
    tc_close(c);
}

int main(void)
{
    static const th_test tests[] = {
        {"lru_order", test_lru_order},
        {"entry_bound", test_entry_bound},
        {"byte_bound", test_byte_bound},
        {"too_big_for_l1", test_too_big_for_l1},
        {"ttl_expiry", test_ttl_expiry},
        {"expired_trimmed_on_insert", test_expired_trimmed_on_insert},
        {"ref_survives_eviction", test_ref_survives_eviction},
        {"replace_accounting", test_replace_accounting},
        {"epoch_rule", test_epoch_rule},
        {"del_prefix_and_clear", test_del_prefix_and_clear},
        {"l1_off", test_l1_off},
        {"l1_only_cache", test_l1_only_cache},
        {"oom_paths", test_oom_paths},
        {NULL, NULL},
    };
    return th_run("l1", tests);
}
