/* SPDX-License-Identifier: BSD-3-Clause */
/* L1 store: LRU order, bounds, TTL with an injected clock, reference
   counts across eviction, the fill-epoch rule, out-of-memory paths. */
#include <CUnit/CUnit.h>
#include <pthread.h>
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
    CU_ASSERT(has(l1, "k", "a longer value"));
    /* What is charged is the new entry's alone, as in a fresh L1. */
    tc__l1 *fresh = make_l1(100, 1 << 20, 1);
    CU_ASSERT_EQUAL(put(fresh, "k", "a longer value", 10000), TC_OK);
    tc__l1_stats f;
    tc__l1_counts(fresh, &f);
    CU_ASSERT_EQUAL(b.bytes, f.bytes);
    /* and a longer value costs its bytes, give or take malloc's 16 */
    char longer[201];
    memset(longer, 'z', 200);
    longer[200] = '\0';
    CU_ASSERT_EQUAL(put(l1, "k", longer, 10000), TC_OK);
    tc__l1_counts(l1, &b);
    CU_ASSERT(b.bytes >= a.bytes + 195 - 16 && b.bytes <= a.bytes + 195 + 16);
    tc__l1_destroy(fresh);
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

/* tc_get_with: in place on an L1 hit, nothing on a miss, and no call
   back into the cache from inside the callback. */
typedef struct with_seen {
    tc_cache *c;
    char data[16];
    size_t len;
    int calls, nested_rc, nested_set_rc, nested_open_rc;
    uint64_t nested_hits;
    int nested_health_configured;
} with_seen;

static void with_fn(void *ud, const void *data, size_t len)
{
    with_seen *w = ud;
    w->calls++;
    w->len = len;
    memcpy(w->data, data, len < sizeof(w->data) ? len : sizeof(w->data));
    tc_value *v = NULL;
    w->nested_rc = tc_get(w->c, "k", &v);
    tc_value_release(v);
    w->nested_set_rc = tc_set(w->c, "k", "other", 5, 0);
    tc_stats_info st;
    tc_stats(w->c, &st);
    w->nested_hits = st.l1_hits;
    tc_health_info h;
    h.l2_configured = 7;
    tc_health(w->c, &h);
    w->nested_health_configured = h.l2_configured;
    tc_options o;
    th_options(NULL, &o);
    tc_cache *other = NULL;
    w->nested_open_rc = tc_open(&other, &o);
    tc_close(other);
    tc_close(w->c); /* ignored: the read is still in it */
}

static void test_get_with(void)
{
    tc_cache *c = th_open(NULL, NULL, NULL);
    with_seen w = {.c = c};
    CU_ASSERT_EQUAL(tc_get_with(c, "k", with_fn, &w), TC_MISS);
    CU_ASSERT_EQUAL(w.calls, 0);
    CU_ASSERT_EQUAL(tc_get_with(c, "k", NULL, &w), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_get_with(c, "", with_fn, &w), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_get_with(NULL, "k", with_fn, &w), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_set(c, "k", "hello", 5, 0), TC_OK);
    CU_ASSERT_EQUAL(tc_get_with(c, "k", with_fn, &w), TC_OK);
    CU_ASSERT_EQUAL(w.calls, 1);
    CU_ASSERT_EQUAL(w.len, 5);
    CU_ASSERT_EQUAL(memcmp(w.data, "hello", 5), 0);
    /* Inside the callback the cache refuses to be entered, and changed
       nothing: the value is still the one set. */
    CU_ASSERT_EQUAL(w.nested_rc, TC_EINVAL);
    CU_ASSERT_EQUAL(w.nested_set_rc, TC_EINVAL);
    CU_ASSERT_EQUAL(w.nested_hits, 0);
    CU_ASSERT_EQUAL(w.nested_health_configured, 0);
    CU_ASSERT_EQUAL(w.nested_open_rc, TC_EINVAL);
    char buf[4];
    size_t len = 0;
    CU_ASSERT_EQUAL(tc_get_into(c, "k", buf, sizeof(buf), &len), TC_ETOOBIG);
    CU_ASSERT_EQUAL(len, 5);
    char big[8];
    CU_ASSERT_EQUAL(tc_get_into(c, "k", big, sizeof(big), &len), TC_OK);
    CU_ASSERT_EQUAL(memcmp(big, "hello", 5), 0);
    /* Outside, the calls work again. */
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_get(c, "k", &v), TC_OK);
    tc_value_release(v);
    tc_stats_info st;
    tc_stats(c, &st);
    CU_ASSERT_EQUAL(st.l1_hits, 4);
    CU_ASSERT_EQUAL(st.l1_misses, 1);
    tc_close(c);
}

/* Readers without the lock, beside writers that replace, delete, clear
   and evict: every hit is the value its key was given (each value
   names its key), and once the threads are done the shard counts add
   up to the lookups exactly. More threads than reader slots, so some
   read under the mutex. TSan and valgrind check the rest. */
#define RW_THREADS 72
#define RW_KEYS 64
#define RW_LOOKUPS 2000

typedef struct rw_ctx {
    tc__l1 *l1;
    pthread_barrier_t *go;
    int writer;
    unsigned seed;
    uint64_t lookups, bad;
} rw_ctx;

static void rw_key(char *key, size_t cap, unsigned k)
{
    snprintf(key, cap, "key:%u", k);
}

static void *rw_thread(void *arg)
{
    rw_ctx *x = arg;
    char key[32], val[48];
    pthread_barrier_wait(x->go);
    for (int i = 0; i < RW_LOOKUPS; i++) {
        unsigned k = (x->seed = x->seed * 1103515245u + 12345u) >> 8;
        k %= RW_KEYS;
        rw_key(key, sizeof(key), k);
        size_t klen = strlen(key);
        uint64_t h = tc__hash(key, klen);
        if (x->writer) {
            if (i % 97 == 0) {
                tc__l1_clear(x->l1);
            } else if (i % 3 == 0) {
                tc__l1_del(x->l1, key, klen, h);
            } else {
                snprintf(val, sizeof(val), "%s=%d", key, i);
                tc_value *v = tc__value_new(val, strlen(val));
                tc__l1_put(x->l1, key, klen, h, v, 1000000, TC__EPOCH_ANY);
                tc_value_release(v);
            }
            continue;
        }
        tc_value *v = tc__l1_get(x->l1, key, klen, h, UINT64_MAX);
        x->lookups++;
        if (v && (v->len <= klen || memcmp(v->data, key, klen) != 0 ||
                  v->data[klen] != '='))
            x->bad++;
        tc_value_release(v);
    }
    return NULL;
}

static void test_readers_and_writers(void)
{
    /* 32 entries in all: the writers' puts evict too. */
    tc__l1_config cfg = {.max_entries = 32, .max_bytes = 1 << 20, .shards = 1};
    for (int policy = TC_POLICY_LRU; policy <= TC_POLICY_TINYLFU; policy++) {
        cfg.policy = policy;
        tc__l1 *l1 = NULL;
        CU_ASSERT_FATAL(tc__l1_create(&l1, &cfg) == TC_OK);
        pthread_t th[RW_THREADS];
        rw_ctx ctx[RW_THREADS];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, RW_THREADS);
        for (int t = 0; t < RW_THREADS; t++) {
            ctx[t] = (rw_ctx){.l1 = l1,
                              .go = &go,
                              .writer = t % 8 == 0,
                              .seed = (unsigned)t * 7919u + 1};
            CU_ASSERT_FATAL(pthread_create(&th[t], NULL, rw_thread, &ctx[t]) ==
                            0);
        }
        uint64_t lookups = 0, bad = 0;
        for (int t = 0; t < RW_THREADS; t++) {
            pthread_join(th[t], NULL);
            lookups += ctx[t].lookups;
            bad += ctx[t].bad;
        }
        pthread_barrier_destroy(&go);
        CU_ASSERT_EQUAL(bad, 0);
        tc__l1_stats st;
        tc__l1_counts(l1, &st);
        CU_ASSERT_EQUAL(st.hits + st.misses, lookups);
        CU_ASSERT(st.entries <= 32);
        tc__l1_destroy(l1);
    }
}

/* A thread's reader slot is given back when it exits: many more
   threads than slots, one after the other, leave the count as it was. */
static void *one_read(void *arg)
{
    tc__l1 *l1 = arg;
    tc_value_release(tc__l1_get(l1, "k", 1, tc__hash("k", 1), UINT64_MAX));
    return (void *)(uintptr_t)tc__l1_reader_slots();
}

static void test_reader_slots_recycled(void)
{
    tc__l1 *l1 = make_l1(100, 1 << 20, 1);
    CU_ASSERT_EQUAL(put(l1, "k", "v", 1000), TC_OK);
    present(l1, "k"); /* this thread takes its slot */
    unsigned base = tc__l1_reader_slots();
    CU_ASSERT(base >= 1);
    for (int i = 0; i < 200; i++) {
        pthread_t t;
        void *in_use = NULL;
        CU_ASSERT_FATAL(pthread_create(&t, NULL, one_read, l1) == 0);
        pthread_join(t, &in_use);
        CU_ASSERT_EQUAL((uintptr_t)in_use, base + 1);
    }
    CU_ASSERT_EQUAL(tc__l1_reader_slots(), base);
    tc__l1_destroy(l1);
}

/* A read from a thread-exit destructor that runs after the thread gave
   its reader slot back must not use that slot, which a new thread may
   take at once (TSan and ASan see two threads in one slot). */
static pthread_key_t late_key;

static void *read_a_lot(void *arg)
{
    tc__l1 *l1 = arg;
    for (int i = 0; i < 2000; i++)
        CU_ASSERT(present(l1, "k"));
    return NULL;
}

static void late_reader(void *arg)
{
    pthread_t t;
    if (pthread_create(&t, NULL, read_a_lot, arg) != 0)
        return;
    read_a_lot(arg);
    pthread_join(t, NULL);
}

static void *read_then_exit(void *arg)
{
    pthread_setspecific(late_key, arg);
    CU_ASSERT(present(arg, "k")); /* takes a slot */
    return NULL;
}

static void test_read_after_slot_release(void)
{
    tc__l1 *l1 = make_l1(100, 1 << 20, 1);
    CU_ASSERT_EQUAL(put(l1, "k", "v", 1000000), TC_OK);
    present(l1, "k"); /* the slots' key exists before late_key */
    unsigned base = tc__l1_reader_slots();
    /* made after the L1's: its destructor runs after the slot's */
    CU_ASSERT_FATAL(pthread_key_create(&late_key, late_reader) == 0);
    for (int i = 0; i < 5; i++) {
        pthread_t t;
        CU_ASSERT_FATAL(pthread_create(&t, NULL, read_then_exit, l1) == 0);
        pthread_join(t, NULL);
    }
    CU_ASSERT_EQUAL(tc__l1_reader_slots(), base);
    pthread_key_delete(late_key);
    tc__l1_destroy(l1);
}

/* With every slot taken a thread reads under the mutex, and takes a
   slot once one is free again. */
typedef struct hold_ctx {
    tc__l1 *l1;
    pthread_barrier_t *held, *go;
} hold_ctx;

static void *hold_slot(void *arg)
{
    hold_ctx *h = arg;
    present(h->l1, "k");
    pthread_barrier_wait(h->held);
    pthread_barrier_wait(h->go);
    return NULL;
}

static void test_slots_exhausted(void)
{
    tc__l1 *l1 = make_l1(100, 1 << 20, 1);
    CU_ASSERT_EQUAL(put(l1, "k", "v", 1000000), TC_OK);
    present(l1, "k");
    unsigned free_slots = 64 - tc__l1_reader_slots();
    pthread_t th[64];
    pthread_barrier_t held, go;
    pthread_barrier_init(&held, NULL, free_slots + 1);
    pthread_barrier_init(&go, NULL, free_slots + 1);
    hold_ctx h = {l1, &held, &go};
    for (unsigned i = 0; i < free_slots; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, hold_slot, &h) == 0);
    pthread_barrier_wait(&held);
    CU_ASSERT_EQUAL(tc__l1_reader_slots(), 64);
    /* one more: no slot, the read still works */
    pthread_t extra;
    pthread_barrier_t mid, end;
    pthread_barrier_init(&mid, NULL, 2);
    pthread_barrier_init(&end, NULL, 2);
    hold_ctx x = {l1, &mid, &end};
    CU_ASSERT_FATAL(pthread_create(&extra, NULL, hold_slot, &x) == 0);
    pthread_barrier_wait(&mid); /* it has read, slotless */
    pthread_barrier_wait(&go);  /* the others leave */
    for (unsigned i = 0; i < free_slots; i++)
        pthread_join(th[i], NULL);
    unsigned after = tc__l1_reader_slots();
    CU_ASSERT(after < 64);
    pthread_barrier_wait(&end);
    pthread_join(extra, NULL);
    pthread_barrier_destroy(&held);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&mid);
    pthread_barrier_destroy(&end);
    tc__l1_destroy(l1);
}

/* A thread that found no slot takes one when it reads again after one
   was given back. */
static void *read_twice(void *arg)
{
    hold_ctx *h = arg;
    present(h->l1, "k");
    pthread_barrier_wait(h->held);
    pthread_barrier_wait(h->go);
    present(h->l1, "k");
    return (void *)(uintptr_t)tc__l1_reader_slots();
}

static void test_slot_taken_later(void)
{
    tc__l1 *l1 = make_l1(100, 1 << 20, 1);
    CU_ASSERT_EQUAL(put(l1, "k", "v", 1000000), TC_OK);
    present(l1, "k");
    unsigned free_slots = 64 - tc__l1_reader_slots();
    pthread_t th[64], late;
    pthread_barrier_t held, go, lheld, lgo;
    pthread_barrier_init(&held, NULL, free_slots + 1);
    pthread_barrier_init(&go, NULL, free_slots + 1);
    pthread_barrier_init(&lheld, NULL, 2);
    pthread_barrier_init(&lgo, NULL, 2);
    hold_ctx h = {l1, &held, &go}, l = {l1, &lheld, &lgo};
    for (unsigned i = 0; i < free_slots; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, hold_slot, &h) == 0);
    pthread_barrier_wait(&held);
    CU_ASSERT_FATAL(pthread_create(&late, NULL, read_twice, &l) == 0);
    pthread_barrier_wait(&lheld); /* it read once, without a slot */
    pthread_barrier_wait(&go);
    for (unsigned i = 0; i < free_slots; i++)
        pthread_join(th[i], NULL);
    unsigned before = tc__l1_reader_slots();
    pthread_barrier_wait(&lgo); /* it reads again: a slot is free now */
    void *during = NULL;
    pthread_join(late, &during);
    CU_ASSERT_EQUAL((uintptr_t)during, before + 1);
    pthread_barrier_destroy(&held);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&lheld);
    pthread_barrier_destroy(&lgo);
    tc__l1_destroy(l1);
}

/* A value near the byte bound: stored within it (with the table's own
   bytes), or not stored; never over it, under any policy. */
static void test_near_bound(void)
{
    static char big[65536];
    for (int policy = TC_POLICY_LRU; policy <= TC_POLICY_TINYLFU; policy++) {
        tc__l1_config cfg = {.max_entries = 100,
                             .max_bytes = 65536,
                             .shards = 1,
                             .policy = policy,
                             .clock = fake_clock};
        tc__l1 *l1 = NULL;
        CU_ASSERT_FATAL(tc__l1_create(&l1, &cfg) == TC_OK);
        char key[16];
        for (int i = 0; i < 20; i++) {
            snprintf(key, sizeof(key), "s%d", i);
            CU_ASSERT_EQUAL(put(l1, key, "small", 100000), TC_OK);
        }
        for (size_t len = 64000; len < sizeof(big); len += 200) {
            memset(big, 'b', len);
            big[len] = '\0';
            int rc = put(l1, "big", big, 100000);
            tc__l1_stats st;
            tc__l1_counts(l1, &st);
            CU_ASSERT(st.bytes <= 65536);
            CU_ASSERT(rc == TC_OK || rc == TC_MISS);
            if (policy != TC_POLICY_TINYLFU)
                CU_ASSERT_EQUAL(present(l1, "big"), rc == TC_OK);
        }
        tc__l1_destroy(l1);
    }
}

/* Hits kept by a reader count before the next eviction: on one thread
   the LRU order is exact even though the hit was applied later. */
static void test_buffered_hits_exact(void)
{
    tc__l1 *l1 = make_l1(3, 1 << 20, 1);
    CU_ASSERT_EQUAL(put(l1, "a", "1", 1000), TC_OK);
    CU_ASSERT_EQUAL(put(l1, "b", "2", 1000), TC_OK);
    CU_ASSERT_EQUAL(put(l1, "c", "3", 1000), TC_OK);
    for (int i = 0; i < 5; i++) /* a, then b, five times: c is the LRU */
        CU_ASSERT(present(l1, i % 2 ? "b" : "a"));
    CU_ASSERT_EQUAL(put(l1, "d", "4", 1000), TC_OK);
    CU_ASSERT(!present(l1, "c"));
    CU_ASSERT(present(l1, "a") && present(l1, "b") && present(l1, "d"));
    tc__l1_stats st;
    tc__l1_counts(l1, &st);
    CU_ASSERT_EQUAL(st.hits, 8);
    CU_ASSERT_EQUAL(st.misses, 1);
    CU_ASSERT_EQUAL(st.evictions, 1);
    tc__l1_destroy(l1);
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
        {"get_with", test_get_with},
        {"readers_and_writers", test_readers_and_writers},
        {"reader_slots_recycled", test_reader_slots_recycled},
        {"buffered_hits_exact", test_buffered_hits_exact},
        {"read_after_slot_release", test_read_after_slot_release},
        {"slots_exhausted", test_slots_exhausted},
        {"slot_taken_later", test_slot_taken_later},
        {"near_bound", test_near_bound},
        {NULL, NULL},
    };
    return th_run("l1", tests);
}
