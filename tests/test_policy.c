/* SPDX-License-Identifier: BSD-3-Clause */
/* L1 eviction policies: which key each one evicts on short sequences
   worked out by hand, the sketch's aging and admission, the flooding
   guards, and the bounds, TTL and invalidations under every policy. */
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

#define SEED 0x5eed5eed5eedULL

static tc__l1 *make(int policy, uint64_t entries, uint64_t bytes,
                    uint64_t sample)
{
    tc__l1_config cfg = {.max_entries = entries,
                         .max_bytes = bytes,
                         .shards = 1,
                         .clock = fake_clock,
                         .policy = policy,
                         .seed = SEED,
                         .sample = sample};
    tc__l1 *l1 = NULL;
    CU_ASSERT_FATAL(tc__l1_create(&l1, &cfg) == TC_OK);
    return l1;
}

static int put(tc__l1 *l1, const char *key, uint64_t ttl)
{
    tc_value *v = tc__value_new(key, strlen(key));
    int rc = tc__l1_put(l1, key, strlen(key), tc__hash(key, strlen(key)), v,
                        ttl, TC__EPOCH_ANY);
    tc_value_release(v);
    return rc;
}

/* A lookup: a hit counts as an access for the policy. */
static int get(tc__l1 *l1, const char *key)
{
    tc_value *v = tc__l1_get(l1, key, strlen(key), tc__hash(key, strlen(key)),
                             UINT64_MAX);
    int ok = v && v->len == strlen(key) && memcmp(v->data, key, v->len) == 0;
    tc_value_release(v);
    return ok;
}

static unsigned freq(tc__l1 *l1, const char *key)
{
    return tc__l1_frequency(l1, key, strlen(key), tc__hash(key, strlen(key)));
}

static uint64_t entries(tc__l1 *l1)
{
    tc__l1_stats st;
    tc__l1_counts(l1, &st);
    return st.entries;
}

static const int policies[] = {TC_POLICY_LRU, TC_POLICY_LFU,
                               TC_POLICY_TINYLFU};
#define NPOL (sizeof(policies) / sizeof(policies[0]))

static void test_bad_policy(void)
{
    tc__l1_config cfg = {.max_entries = 10, .max_bytes = 1 << 20, .policy = 3};
    tc__l1 *l1 = NULL;
    CU_ASSERT_EQUAL(tc__l1_create(&l1, &cfg), TC_EINVAL);
    cfg.policy = -1;
    CU_ASSERT_EQUAL(tc__l1_create(&l1, &cfg), TC_EINVAL);
    CU_ASSERT_PTR_NULL(l1);
}

/* W-TinyLFU allocates a sketch, a doorkeeper and its ghosts per shard: a
   failure at any of the allocations of create is TC_ENOMEM, with
   nothing left. */
static void test_create_oom(void)
{
    int failed = 0, ok = 0;
    for (long n = 0; n < 16; n++) {
        tc__l1_config cfg = {.max_entries = 1000,
                             .max_bytes = 1 << 20,
                             .shards = 4,
                             .policy = TC_POLICY_TINYLFU};
        tc__l1 *l1 = NULL;
        tc__alloc_fail_after(n);
        int rc = tc__l1_create(&l1, &cfg);
        tc__alloc_fail_after(-1);
        if (rc == TC_OK) {
            ok++;
            CU_ASSERT_PTR_NOT_NULL(l1);
            tc__l1_destroy(l1);
        } else {
            failed++;
            CU_ASSERT_EQUAL(rc, TC_ENOMEM);
            CU_ASSERT_PTR_NULL(l1);
        }
    }
    CU_ASSERT_EQUAL(failed, 2 + 3 * 4); /* l1, shards, 3 a shard */
    CU_ASSERT_EQUAL(ok, 16 - failed);
}

/* Three slots. a is read twice, b once, c never: d evicts c, the least
   frequent; then e evicts d (count 1, more recent than nothing else at
   count 1). LRU on the same sequence evicts c, then a. */
static void test_lfu_by_hand(void)
{
    tc__l1 *l1 = make(TC_POLICY_LFU, 3, 1 << 20, 0);
    put(l1, "a", 10000);
    put(l1, "b", 10000);
    put(l1, "c", 10000);
    CU_ASSERT(get(l1, "a"));
    CU_ASSERT(get(l1, "a"));
    CU_ASSERT(get(l1, "b"));
    CU_ASSERT_EQUAL(freq(l1, "a"), 3);
    CU_ASSERT_EQUAL(freq(l1, "b"), 2);
    CU_ASSERT_EQUAL(freq(l1, "c"), 1);
    put(l1, "d", 10000);
    CU_ASSERT_EQUAL(freq(l1, "c"), 0); /* evicted */
    CU_ASSERT_EQUAL(freq(l1, "d"), 1);
    put(l1, "e", 10000);
    CU_ASSERT_EQUAL(freq(l1, "d"), 0);
    CU_ASSERT(get(l1, "a") && get(l1, "b") && get(l1, "e"));
    tc__l1_destroy(l1);

    /* Ties go by recency: c and b at count 1, b the older: b goes. */
    l1 = make(TC_POLICY_LFU, 3, 1 << 20, 0);
    put(l1, "a", 10000);
    put(l1, "b", 10000);
    put(l1, "c", 10000);
    CU_ASSERT(get(l1, "a"));
    put(l1, "d", 10000);
    CU_ASSERT_EQUAL(freq(l1, "b"), 0);
    CU_ASSERT(get(l1, "a") && get(l1, "c") && get(l1, "d"));
    tc__l1_destroy(l1);

    l1 = make(TC_POLICY_LRU, 3, 1 << 20, 0);
    put(l1, "a", 10000);
    put(l1, "b", 10000);
    put(l1, "c", 10000);
    CU_ASSERT(get(l1, "a"));
    CU_ASSERT(get(l1, "a"));
    CU_ASSERT(get(l1, "b"));
    put(l1, "d", 10000); /* c is the least recent */
    put(l1, "e", 10000); /* then a */
    CU_ASSERT(!get(l1, "c"));
    CU_ASSERT(!get(l1, "a"));
    tc__l1_destroy(l1);
}

/* LFU aging: every count halves after `sample` accesses (inserts and
   hits), the order within a count kept. */
static void test_lfu_aging(void)
{
    tc__l1 *l1 = make(TC_POLICY_LFU, 10, 1 << 20, 20);
    put(l1, "a", 10000); /* 1 access */
    for (int i = 0; i < 9; i++)
        CU_ASSERT(get(l1, "a")); /* 10 */
    put(l1, "b", 10000);         /* 11 */
    for (int i = 0; i < 4; i++)
        CU_ASSERT(get(l1, "b")); /* 15 */
    put(l1, "c", 10000);         /* 16 */
    CU_ASSERT_EQUAL(freq(l1, "a"), 10);
    CU_ASSERT_EQUAL(freq(l1, "b"), 5);
    CU_ASSERT_EQUAL(freq(l1, "c"), 1);
    for (int i = 0; i < 3; i++)
        CU_ASSERT(get(l1, "c")); /* 19: c at 4 */
    CU_ASSERT_EQUAL(freq(l1, "c"), 4);
    CU_ASSERT(get(l1, "c")); /* 20: c at 5, then all halve */
    CU_ASSERT_EQUAL(freq(l1, "a"), 5);
    CU_ASSERT_EQUAL(freq(l1, "b"), 2);
    CU_ASSERT_EQUAL(freq(l1, "c"), 2);
    /* additions are at 10 after the halving: ten more reads take a from
       5 to 15, and the tenth brings the next halving */
    for (int i = 0; i < 9; i++)
        CU_ASSERT(get(l1, "a"));
    CU_ASSERT_EQUAL(freq(l1, "a"), 14);
    CU_ASSERT(get(l1, "a"));
    CU_ASSERT_EQUAL(freq(l1, "a"), 7);
    tc__l1_destroy(l1);

    l1 = make(TC_POLICY_LFU, 10, 1 << 20, 1000);
    put(l1, "a", 10000);
    for (int i = 0; i < 40; i++)
        CU_ASSERT(get(l1, "a"));
    CU_ASSERT_EQUAL(freq(l1, "a"), 15);
    tc__l1_destroy(l1);
}

/* W-TinyLFU on 100 slots: a window of 1, a main area of 99 (79
   protected). The window's overflow enters probation freely until the
   bounds are reached; past them it must beat probation's tail. */
static void test_tinylfu_by_hand(void)
{
    char k[16];
    tc__l1 *l1 = make(TC_POLICY_TINYLFU, 100, 1 << 20, 0);
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%d", i);
        put(l1, k, 10000);
    }
    CU_ASSERT_EQUAL(entries(l1), 100);
    /* k0 read twice more (count 3) moves to protected. x enters the
       window and pushes k99 out of it: k99 (count 1) meets probation's
       tail, now k1 (count 1), and a tie keeps the victim. */
    CU_ASSERT(get(l1, "k0"));
    CU_ASSERT(get(l1, "k0"));
    CU_ASSERT_EQUAL(freq(l1, "k0"), 3);
    put(l1, "x", 10000);
    CU_ASSERT_EQUAL(entries(l1), 100);
    CU_ASSERT_EQUAL(freq(l1, "k99"), 1);
    CU_ASSERT(!get(l1, "k99")); /* lost to k1 */
    CU_ASSERT(get(l1, "k1"));   /* now count 2, protected */
    /* x read three times in the window (count 4), then y pushes it out:
       x beats probation's tail k2 (count 1), which goes. */
    for (int i = 0; i < 3; i++)
        CU_ASSERT(get(l1, "x"));
    put(l1, "y", 10000);
    CU_ASSERT(!get(l1, "k2"));
    CU_ASSERT(get(l1, "x"));
    CU_ASSERT(get(l1, "y"));
    CU_ASSERT(get(l1, "k0"));
    CU_ASSERT_EQUAL(entries(l1), 100);
    tc__l1_destroy(l1);
}

/* One-hit wonders do not displace keys read often under W-TinyLFU; under
   LRU a scan of as many new keys flushes every one of them. */
static void test_admission(void)
{
    char k[16];
    for (size_t p = 0; p < NPOL; p++) {
        tc__l1 *l1 = make(policies[p], 64, 1 << 20, 0);
        for (int i = 0; i < 64; i++) {
            snprintf(k, sizeof k, "hot%d", i);
            put(l1, k, 10000);
        }
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < 64; i++) {
                snprintf(k, sizeof k, "hot%d", i);
                CU_ASSERT(get(l1, k));
            }
        for (int i = 0; i < 64; i++) {
            snprintf(k, sizeof k, "once%d", i);
            put(l1, k, 10000);
        }
        int kept = 0;
        for (int i = 0; i < 64; i++) {
            snprintf(k, sizeof k, "hot%d", i);
            kept += get(l1, k);
        }
        int want = policies[p] == TC_POLICY_LRU ? 0 : 63;
        /* LRU: the scan flushes all; LFU: each new key evicts the one
           before it (after one hot key); W-TinyLFU: only the hot key
           that was in the window when the scan began may go. */
        CU_ASSERT(kept >= want && kept <= (want ? 64 : 0));
        tc__l1_destroy(l1);
    }
}

/* The sketch: a first sighting only sets the doorkeeper; counts stop at
   15; after `sample` additions each halves and the doorkeeper empties. */
static void test_sketch_aging(void)
{
    tc__l1 *l1 = make(TC_POLICY_TINYLFU, 64, 1 << 20, 100);
    CU_ASSERT_EQUAL(freq(l1, "x"), 0);
    put(l1, "x", 10000); /* addition 1: the doorkeeper */
    CU_ASSERT_EQUAL(freq(l1, "x"), 1);
    for (int i = 0; i < 9; i++) /* additions 2..10 */
        CU_ASSERT(get(l1, "x"));
    CU_ASSERT_EQUAL(freq(l1, "x"), 10);
    put(l1, "y", 10000);         /* 11 */
    for (int i = 0; i < 88; i++) /* 12..99 */
        CU_ASSERT(get(l1, "y"));
    CU_ASSERT_EQUAL(freq(l1, "y"), 15);
    CU_ASSERT_EQUAL(freq(l1, "x"), 10);
    CU_ASSERT(get(l1, "x")); /* 100: x's counters at 10, then all halve */
    CU_ASSERT_EQUAL(freq(l1, "x"), 5);
    CU_ASSERT_EQUAL(freq(l1, "y"), 7);
    /* The doorkeeper was emptied: a key seen once before is new again. */
    CU_ASSERT_EQUAL(freq(l1, "never"), 0);
    tc__l1_destroy(l1);
}

/* Flooding guards: a seed per cache, and a warm candidate that loses is
   still admitted about once in 128. */
static void test_flooding(void)
{
    tc__l1_config cfg = {
        .max_entries = 100, .max_bytes = 1 << 20, .policy = TC_POLICY_TINYLFU};
    tc__l1 *a = NULL, *b = NULL;
    CU_ASSERT_FATAL(tc__l1_create(&a, &cfg) == TC_OK);
    CU_ASSERT_FATAL(tc__l1_create(&b, &cfg) == TC_OK);
    CU_ASSERT_NOT_EQUAL(tc__l1_seed(a), tc__l1_seed(b));
    CU_ASSERT_NOT_EQUAL(tc__l1_seed(a), 0);
    tc__l1_destroy(a);
    tc__l1_destroy(b);

    /* 64 slots of keys read 20 times (count 15); then candidates read 8
       times in the window (count 9, warm, but below every victim). No
       aging: the sample is out of reach. */
    char k[16];
    tc__l1 *l1 = make(TC_POLICY_TINYLFU, 64, 1 << 20, UINT64_MAX);
    for (int i = 0; i < 64; i++) {
        snprintf(k, sizeof k, "hot%d", i);
        put(l1, k, 10000);
        for (int r = 0; r < 20; r++)
            get(l1, k);
    }
    int rounds = 4000, admitted = 0;
    for (int i = 0; i <= rounds; i++) {
        snprintf(k, sizeof k, "warm%d", i);
        put(l1, k, 10000); /* pushes warm(i-1) out of the window */
        if (i > 0) {
            char prev[16];
            snprintf(prev, sizeof prev, "warm%d", i - 1);
            admitted += get(l1, prev); /* a miss records nothing */
        }
        for (int r = 0; r < 8; r++)
            get(l1, k);
    }
    /* 4000 / 128 is about 31 */
    CU_ASSERT(admitted >= 10 && admitted <= 80);
    tc__l1_destroy(l1);

    /* A cold candidate (estimate under 6) that loses is never
       admitted. Without aging the sketch fills up, and some candidates
       look warm through shared counters: only the rounds where the
       candidate's estimate, as the admission saw it, was cold count. */
    l1 = make(TC_POLICY_TINYLFU, 64, 1 << 20, UINT64_MAX);
    for (int i = 0; i < 64; i++) {
        snprintf(k, sizeof k, "hot%d", i);
        put(l1, k, 10000);
        for (int r = 0; r < 20; r++)
            get(l1, k);
    }
    admitted = 0;
    int cold = 0;
    for (int i = 0; i <= rounds; i++) {
        snprintf(k, sizeof k, "cold%d", i);
        put(l1, k, 10000);
        if (i > 0) {
            char prev[16];
            snprintf(prev, sizeof prev, "cold%d", i - 1);
            if (freq(l1, prev) < 6) {
                cold++;
                admitted += get(l1, prev);
            }
        }
        for (int r = 0; r < 3; r++)
            get(l1, k);
    }
    CU_ASSERT(cold >= 50);
    CU_ASSERT_EQUAL(admitted, 0);
    tc__l1_destroy(l1);
}

/* The window follows its ghosts: it starts at 1 % of the bound, and
   stays within 1 entry and 80 % of it. On a loop a little longer than
   the cache no key comes back soon after it left, so the window stays
   small (a big window is a big LRU: no good on a loop). */
static void test_window_loop(void)
{
    char k[16];
    tc__l1 *l1 = make(TC_POLICY_TINYLFU, 200, 1 << 20, 400);
    uint64_t h0 = tc__hash("x", 1);
    CU_ASSERT_EQUAL(tc__l1_window(l1, h0), 2);
    uint64_t seen_max = 0, seen_min = UINT64_MAX;
    for (int i = 0; i < 40000; i++) {
        snprintf(k, sizeof k, "k%d", i % 250);
        if (!get(l1, k))
            put(l1, k, 10000);
        uint64_t w = tc__l1_window(l1, h0);
        seen_max = w > seen_max ? w : seen_max;
        seen_min = w < seen_min ? w : seen_min;
        CU_ASSERT(entries(l1) <= 200);
    }
    CU_ASSERT(seen_min >= 1);
    CU_ASSERT(seen_max <= 160);
    CU_ASSERT(tc__l1_window(l1, h0) < 100);
    tc__l1_destroy(l1);
    l1 = make(TC_POLICY_LRU, 200, 1 << 20, 0);
    CU_ASSERT_EQUAL(tc__l1_window(l1, h0), 0);
    tc__l1_destroy(l1);
}

/* Recency: 200 slots full of keys read often, then new keys each read
   once more 4 keys later. At first the window (2 entries) lets each go
   before it comes back, and the admission keeps the frequent keys: the
   returning key is a ghost of the window's, so the window grows until
   it holds them, and then the returns hit. Each move is at most the
   ghosts' depth (12 entries here), so it stops a step past the need. */
static void test_window_grows(void)
{
    char k[16], back[16];
    tc__l1 *l1 = make(TC_POLICY_TINYLFU, 200, 1 << 20, UINT64_MAX);
    uint64_t h0 = tc__hash("x", 1);
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "hot%d", i);
        put(l1, k, 10000);
        for (int r = 0; r < 10; r++)
            get(l1, k);
    }
    CU_ASSERT_EQUAL(tc__l1_window(l1, h0), 2);
    int early = 0, late = 0, rounds = 4000;
    for (int i = 0; i < rounds; i++) {
        snprintf(k, sizeof k, "new%d", i);
        put(l1, k, 10000);
        if (i < 4)
            continue;
        snprintf(back, sizeof back, "new%d", i - 4);
        int hit = get(l1, back);
        if (!hit)
            put(l1, back, 10000);
        early += i < 100 && hit;
        late += i >= rounds - 100 && hit;
    }
    uint64_t w = tc__l1_window(l1, h0);
    CU_ASSERT(w >= 5 && w <= 40); /* no more than the returns need */
    CU_ASSERT(early < 50);
    CU_ASSERT(late >= 90);
    tc__l1_destroy(l1);
}

/* Entries and bytes never over their bounds, under every policy, on a
   mix of sizes, reads and replacements; also with no entry bound at all
   (UINT64_MAX: the bytes alone bound it). */
static void test_bounds(void)
{
    char k[32], val[600];
    memset(val, 'v', sizeof val);
    for (size_t c = 0; c < 2 * NPOL; c++) {
        size_t p = c % NPOL;
        uint64_t max_entries = c < NPOL ? 50 : UINT64_MAX;
        tc__l1 *l1 = make(policies[p], max_entries, 8000, 0);
        uint64_t x = 12345;
        for (int i = 0; i < 20000; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned key = (unsigned)(x >> 33) % 300;
            key = (x >> 60) < 8 ? key % 20 : key; /* some hot keys */
            snprintf(k, sizeof k, "key%u", key);
            if (!get(l1, k)) {
                size_t len = (x >> 20) % sizeof val;
                tc_value *v = tc__value_new(val, len);
                CU_ASSERT_EQUAL(tc__l1_put(l1, k, strlen(k),
                                           tc__hash(k, strlen(k)), v, 10000,
                                           TC__EPOCH_ANY),
                                TC_OK);
                tc_value_release(v);
            }
            tc__l1_stats st;
            tc__l1_counts(l1, &st);
            CU_ASSERT(st.entries <= max_entries);
            CU_ASSERT(st.bytes <= 8000);
            if (st.entries > max_entries || st.bytes > 8000)
                break;
        }
        tc__l1_stats st;
        tc__l1_counts(l1, &st);
        CU_ASSERT(st.evictions > 0);
        CU_ASSERT(st.hits > 0);
        tc__l1_destroy(l1);
    }
}

/* Expired entries are never returned, whatever the policy, and go
   before live ones when room is needed. */
static void test_ttl(void)
{
    char k[16];
    for (size_t p = 0; p < NPOL; p++) {
        tc__l1 *l1 = make(policies[p], 10, 1 << 20, 0);
        put(l1, "short", 100);
        put(l1, "long", 100000);
        for (int i = 0; i < 5; i++)
            CU_ASSERT(get(l1, "short"));
        fake_now += 100;
        CU_ASSERT(!get(l1, "short"));
        CU_ASSERT(get(l1, "long"));
        for (int i = 0; i < 10; i++) {
            snprintf(k, sizeof k, "e%d", i);
            put(l1, k, 50);
        }
        fake_now += 50;
        for (int i = 0; i < 10; i++) {
            snprintf(k, sizeof k, "e%d", i);
            CU_ASSERT(!get(l1, k));
        }
        tc__l1_stats st;
        tc__l1_counts(l1, &st);
        CU_ASSERT(st.expirations >= 1);
        CU_ASSERT(st.entries <= 10);
        tc__l1_destroy(l1);
    }
}

/* del, del_prefix and clear remove from whichever list holds the entry
   and the L1 goes on working. */
static void test_invalidations(void)
{
    char k[16];
    for (size_t p = 0; p < NPOL; p++) {
        tc__l1 *l1 = make(policies[p], 200, 1 << 20, 0);
        for (int i = 0; i < 150; i++) {
            snprintf(k, sizeof k, "%s%d", i % 2 ? "a:" : "b:", i);
            put(l1, k, 10000);
            for (int r = 0; r < i % 3; r++)
                get(l1, k);
        }
        CU_ASSERT_EQUAL(entries(l1), 150);
        tc__l1_del(l1, "a:1", 3, tc__hash("a:1", 3));
        CU_ASSERT(!get(l1, "a:1"));
        CU_ASSERT(get(l1, "a:3"));
        CU_ASSERT_EQUAL(entries(l1), 149);
        tc__l1_del_prefix(l1, "a:", 2);
        CU_ASSERT_EQUAL(entries(l1), 75);
        CU_ASSERT(!get(l1, "a:3"));
        CU_ASSERT(get(l1, "b:4"));
        tc__l1_clear(l1);
        CU_ASSERT_EQUAL(entries(l1), 0);
        CU_ASSERT(!get(l1, "b:4"));
        for (int i = 0; i < 300; i++) {
            snprintf(k, sizeof k, "c%d", i);
            put(l1, k, 10000);
        }
        CU_ASSERT_EQUAL(entries(l1), 200);
        tc__l1_stats st;
        tc__l1_counts(l1, &st);
        CU_ASSERT(st.bytes > 0);
        tc__l1_clear(l1);
        tc__l1_counts(l1, &st);
        CU_ASSERT_EQUAL(st.bytes, 0);
        tc__l1_destroy(l1);
    }
}

int main(void)
{
    static const th_test tests[] = {
        {"bad_policy", test_bad_policy},
        {"create_oom", test_create_oom},
        {"lfu_by_hand", test_lfu_by_hand},
        {"lfu_aging", test_lfu_aging},
        {"tinylfu_by_hand", test_tinylfu_by_hand},
        {"admission", test_admission},
        {"sketch_aging", test_sketch_aging},
        {"flooding", test_flooding},
        {"window_loop", test_window_loop},
        {"window_grows", test_window_grows},
        {"bounds", test_bounds},
        {"ttl", test_ttl},
        {"invalidations", test_invalidations},
        {NULL, NULL},
    };
    return th_run("policy", tests);
}
