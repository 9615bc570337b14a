/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Allocation failure sweep: one representative run of the API against a
 * private Redis with coherence on, with the Nth allocation failing, for
 * every N from 0 until a run completes without reaching its failure
 * point. Two sweeps: from the Nth allocation on every one fails (memory
 * is gone for the rest of the run), and only the Nth fails (the run goes
 * on with the state that failure left).
 *
 * Every call must return its success code or one of its documented
 * errors, never a wrong success: a read returns what was written, or
 * nothing, never a value a later write or a delete replaced. ASan+LSan
 * and valgrind (CI) find what a failure path leaks or touches after
 * freeing it.
 *
 * Only tiercache's own allocations (tc__malloc and friends) fail:
 * hiredis and msgpack-c allocate through their own allocators, and
 * CUnit and the harness through malloc, so a failing Redis command here
 * means a failure on tiercache's side of it, never inside hiredis.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

#define LONG_KEY 700 /* past tc__rkey's 640 bytes: its name is allocated */

typedef struct run_state {
    char long_key[LONG_KEY + 1];
    long calls; /* API calls made, for the summary */
} run_state;

/* tc_value as a string compared with want. */
static int value_is(const tc_value *v, const char *want)
{
    return v && tc_value_len(v) == strlen(want) &&
           memcmp(tc_value_data(v), want, strlen(want)) == 0;
}

/* A read: TC_OK with one of the values allowed (NULL-terminated list),
   TC_MISS, or TC_ENOMEM. Returns which value it was (index), -1 for a
   miss or an error. */
static int read_one(tc_cache *c, const char *key, const char *const *ok,
                    run_state *st)
{
    tc_value *v = NULL;
    int rc = tc_get(c, key, &v), which = -1;
    st->calls++;
    CU_ASSERT(rc == TC_OK || rc == TC_MISS || rc == TC_ENOMEM);
    CU_ASSERT((rc == TC_OK) == (v != NULL));
    for (int i = 0; rc == TC_OK && ok[i]; i++)
        if (value_is(v, ok[i]))
            which = i;
    if (rc == TC_OK && which < 0) {
        fprintf(stderr, "wrong value under \"%.20s\": \"%.*s\"\n", key,
                (int)tc_value_len(v), (const char *)tc_value_data(v));
        CU_FAIL("a read returned a value it must not");
    }
    tc_value_release(v);
    return which;
}

typedef struct with_buf {
    char data[16];
    size_t len;
} with_buf;

static void with_fn(void *ud, const void *data, size_t len)
{
    with_buf *w = ud;
    w->len = len < sizeof(w->data) ? len : sizeof(w->data);
    memcpy(w->data, data, w->len);
}

/* The compute callback: the value named by ud, in a malloc'd buffer that
   tiercache owns (and frees, whatever fails after). */
static int compute(void *ud, void **val, size_t *len, uint32_t *ttl_ms)
{
    (void)ttl_ms;
    *len = strlen(ud);
    *val = malloc(*len);
    if (!*val)
        return TC_ECOMPUTE;
    memcpy(*val, ud, *len);
    return 0;
}

/* set v1, get, set v2, get_with, del, get: on one key. */
static void key_round(tc_cache *c, const char *key, run_state *st)
{
    static const char *const v1[] = {"v1", NULL}, *const v12[] = {"v1", "v2",
                                                                  NULL};
    int s1 = tc_set(c, key, "v1", 2, 0);
    CU_ASSERT(s1 == TC_OK || s1 == TC_ENOMEM);
    read_one(c, key, v1, st);

    int s2 = tc_set(c, key, "v2", 2, 0);
    CU_ASSERT(s2 == TC_OK || s2 == TC_ENOMEM);
    with_buf w = {{0}, 0};
    int g = tc_get_with(c, key, with_fn, &w);
    CU_ASSERT(g == TC_OK || g == TC_MISS || g == TC_ENOMEM);
    if (g == TC_OK && s2 == TC_OK) /* v1 was overwritten */
        CU_ASSERT(w.len == 2 && memcmp(w.data, "v2", 2) == 0);
    if (g == TC_OK)
        CU_ASSERT(w.len == 2 && (memcmp(w.data, "v1", 2) == 0 ||
                                 memcmp(w.data, "v2", 2) == 0));
    if (s2 == TC_OK)
        read_one(c, key, v12 + 1, st);
    else
        read_one(c, key, v12, st);

    int d = tc_del(c, key);
    CU_ASSERT(d == TC_OK || d == TC_ENOMEM);
    static const char *const none[] = {NULL};
    read_one(c, key, d == TC_OK ? none : v12, st);
    st->calls += 4;
}

/* tc_fetch twice on a key, then tc_del_prefix over it. */
static void fetch_round(tc_cache *c, run_state *st)
{
    static const char *const c12[] = {"c1", "c2", NULL};
    static const char *const none[] = {NULL};
    tc_value *v = NULL;
    int f1 = tc_fetch(c, "k:fetched", 0, compute, "c1", &v);
    CU_ASSERT(f1 == TC_OK || f1 == TC_ENOMEM);
    CU_ASSERT((f1 == TC_OK) == (v != NULL));
    if (f1 == TC_OK)
        CU_ASSERT(value_is(v, "c1"));
    tc_value_release(v);
    v = NULL;
    /* cached, or computed again if the first store failed */
    int f2 = tc_fetch(c, "k:fetched", 0, compute, "c2", &v);
    CU_ASSERT(f2 == TC_OK || f2 == TC_ENOMEM);
    if (f2 == TC_OK)
        CU_ASSERT(value_is(v, "c1") || value_is(v, "c2"));
    tc_value_release(v);
    read_one(c, "k:fetched", c12, st);

    int s = tc_set(c, "k:other", "o", 1, 0);
    CU_ASSERT(s == TC_OK || s == TC_ENOMEM);
    int p = tc_del_prefix(c, "k:");
    CU_ASSERT(p == TC_OK || p == TC_ENOMEM);
    static const char *const o[] = {"o", NULL};
    read_one(c, "k:fetched", p == TC_OK ? none : c12, st);
    read_one(c, "k:other", p == TC_OK ? none : o, st);
    st->calls += 4;
}

/* "grp@<16 hex>:x" */
static int group_key_ok(const char *k)
{
    if (strncmp(k, "grp@", 4) != 0 || strlen(k) != 4 + 16 + 2 ||
        strcmp(k + 20, ":x") != 0)
        return 0;
    return strspn(k + 4, "0123456789abcdef") == 16;
}

/* A key of the group, a value under it, a bump: the next key differs,
   so the value is out of reach. */
static void group_round(tc_cache *c, run_state *st)
{
    char k1[64], k2[64];
    static const char *const g1[] = {"g1", NULL}, *const none[] = {NULL};
    int a = tc_group_key(c, k1, sizeof(k1), "grp", "x");
    CU_ASSERT(a == TC_OK || a == TC_ENOMEM);
    CU_ASSERT(a != TC_OK || group_key_ok(k1));
    if (a == TC_OK) {
        int s = tc_set(c, k1, "g1", 2, 0);
        CU_ASSERT(s == TC_OK || s == TC_ENOMEM);
        read_one(c, k1, g1, st);
    }
    int b = tc_group_bump(c, "grp");
    CU_ASSERT(b == TC_OK || b == TC_ENOMEM);
    int a2 = tc_group_key(c, k2, sizeof(k2), "grp", "x");
    CU_ASSERT(a2 == TC_OK || a2 == TC_ENOMEM);
    CU_ASSERT(a2 != TC_OK || group_key_ok(k2));
    if (a == TC_OK && a2 == TC_OK && b == TC_OK) {
        CU_ASSERT(strcmp(k1, k2) != 0);
        read_one(c, k2, none, st);
    }
    st->calls += 5;
}

/* A compressed value (zstd, a frame allocated on both sides), then a
   batch read of it and of a missing key, then warming. (Each read after
   a failed write waits for the replay, bounded: few reads here.) */
#define BIG 600
static void batch_round(tc_cache *c, run_state *st)
{
    char big[BIG + 1];
    memset(big, 'b', BIG);
    big[BIG] = '\0';
    int s = tc_set(c, "m:big", big, BIG, 0);
    CU_ASSERT(s == TC_OK || s == TC_ENOMEM);
    const char *const keys[] = {"m:big", "m:none"};
    tc_value *out[2];
    int status[2];
    int rc = tc_mget(c, keys, 2, out, status);
    CU_ASSERT(rc == TC_OK || rc == TC_ENOMEM);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(status[i] == TC_OK || status[i] == TC_MISS ||
                  status[i] == TC_ENOMEM);
        CU_ASSERT((status[i] == TC_OK) == (out[i] != NULL));
        if (out[i]) /* only the big one was ever written */
            CU_ASSERT(i == 0 && value_is(out[i], big));
        tc_value_release(out[i]);
    }
    /* with the link up: without it tc_warm waits for it (bounded), which
       in the runs whose listener has no memory would only cost time */
    tc_stats_info si;
    tc_stats(c, &si);
    if (si.coherent) {
        int w = tc_warm(c, "m:", 10);
        CU_ASSERT(w == TC_OK || w == TC_ENOMEM || w == TC_EBACKEND);
        st->calls++;
    }
    st->calls += 2;
}

/* One run, the allocator already armed. */
static void scenario(run_state *st)
{
    tc_options o;
    th_options(th_srv, &o); /* a namespace of its own: nothing left over */
    o.max_key_bytes = 2 * LONG_KEY;
    o.coherence = TC_COHERENCE_AUTO;
    o.compression = TC_COMPRESSION_ZSTD;
    o.compress_min_bytes = 64;
    tc_cache *c = (tc_cache *)&o; /* tc_open must set it */
    int rc = tc_open(&c, &o);
    st->calls++;
    CU_ASSERT(rc == TC_OK || rc == TC_ENOMEM);
    CU_ASSERT((rc == TC_OK) == (c != NULL));
    if (rc != TC_OK)
        return;
    key_round(c, "k:short", st);
    key_round(c, st->long_key, st);
    fetch_round(c, st);
    group_round(c, st);
    batch_round(c, st);
    tc_close(c);
    st->calls++;
}

typedef void (*arm_fn)(long n);

/* Runs the scenario failing allocation N for N = 0, 1, ... until a run
   reaches no failure point. Returns the number of runs. */
static long sweep(const char *name, arm_fn arm, run_state *st)
{
    long n;
    uint64_t t0 = th_now_ms();
    for (n = 0; n < 100000; n++) {
        arm(n);
        scenario(st);
        long failures = tc__alloc_failures();
        tc__alloc_fail_after(-1);
        if (failures == 0)
            break;
    }
    printf("\n    %s: N = 0..%ld, %ld calls, %llu ms ", name, n, st->calls,
           (unsigned long long)(th_now_ms() - t0));
    CU_ASSERT(n > 10); /* the sweep saw the allocations of a run */
    CU_ASSERT(n < 100000);
    return n;
}

static void test_fail_from_n_on(void)
{
    run_state st;
    memset(&st, 0, sizeof(st));
    memset(st.long_key, 'l', LONG_KEY);
    memcpy(st.long_key, "k:", 2);
    sweep("every allocation from the Nth", tc__alloc_fail_after, &st);
}

static void test_fail_only_n(void)
{
    run_state st;
    memset(&st, 0, sizeof(st));
    memset(st.long_key, 'l', LONG_KEY);
    memcpy(st.long_key, "k:", 2);
    sweep("only the Nth allocation", tc__alloc_fail_once, &st);
}

/* The raw bytes Redis holds under a cache key of namespace ns. */
static char *raw_get(const char *ns, const char *key, size_t *len)
{
    char rk[1024];
    int n = snprintf(rk, sizeof(rk), "%s:{%s}", ns, key);
    redisReply *r = th_redis_cmd(th_srv, "GET %b", rk, (size_t)n);
    char *out = NULL;
    *len = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        out = malloc(r->len);
        memcpy(out, r->str, r->len);
        *len = r->len;
    }
    freeReplyObject(r);
    return out;
}

/* A generation that cannot be read for want of memory is "not known
   now": tc_group_key answers with a fresh token kept nowhere, and must
   not write it over the group's generation in Redis, which would
   invalidate the group for every process (group.c, read_gen). The group
   name is long enough that reading its generation key allocates the
   Redis key name: that is the allocation that fails. */
static void test_group_read_oom_keeps_generation(void)
{
    tc_options o;
    th_options(th_srv, &o);
    o.max_key_bytes = 2 * LONG_KEY;
    char group[LONG_KEY + 1], gk[LONG_KEY + 8], k1[2 * LONG_KEY],
        k2[2 * LONG_KEY];
    memset(group, 'g', LONG_KEY);
    group[LONG_KEY] = '\0';
    snprintf(gk, sizeof(gk), "\x01gen:%s", group);
    tc_cache *a = NULL, *b = NULL;
    CU_ASSERT_FATAL(tc_open(&a, &o) == TC_OK);
    CU_ASSERT_FATAL(tc_open(&b, &o) == TC_OK);
    CU_ASSERT_EQUAL_FATAL(tc_group_key(a, k1, sizeof(k1), group, "x"), TC_OK);
    size_t len0, len1;
    char *before = raw_get(o.ns, gk, &len0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    /* b has the generation in Redis only, not in its L1: the first
       allocation of its read is the generation key's name */
    CU_ASSERT_EQUAL(tc_get_with(b, "warm-up", with_fn, NULL), TC_MISS);
    tc__alloc_fail_once(0);
    int rc = tc_group_key(b, k2, sizeof(k2), group, "x");
    long failures = tc__alloc_failures();
    tc__alloc_fail_after(-1);
    CU_ASSERT_EQUAL(failures, 1);
    CU_ASSERT(rc == TC_OK || rc == TC_ENOMEM);
    char *after = raw_get(o.ns, gk, &len1);
    CU_ASSERT_PTR_NOT_NULL(after);
    CU_ASSERT(after && len1 == len0 && memcmp(before, after, len0) == 0);
    /* and the next read, with memory back, finds the same generation */
    CU_ASSERT_EQUAL(tc_group_key(b, k2, sizeof(k2), group, "x"), TC_OK);
    CU_ASSERT_STRING_EQUAL(k1, k2);
    free(before);
    free(after);
    tc_close(b);
    tc_close(a);
}

int main(void)
{
    static const th_test tests[] = {
        {"fail_from_n_on", test_fail_from_n_on},
        {"fail_only_n", test_fail_only_n},
        {"group_read_oom_keeps_generation",
         test_group_read_oom_keeps_generation},
        {NULL, NULL},
    };
    return th_run_redis("allocfail", tests);
}
