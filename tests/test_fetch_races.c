/* SPDX-License-Identifier: BSD-3-Clause */
/* tc_fetch races found in review, one test each: waiters joining a
   computation after a tc_del, an L1-only fill after a tc_del, a local fill
   no DEL elsewhere can reach, a second computation of one key, a group
   read during a Redis hiccup, an orphaned lease, OOM sweeps, long names
   in TC_CACHED. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "harness.h"

static int wait_coherent(tc_cache *c)
{
    for (int i = 0; i < 300; i++) {
        tc_stats_info s;
        tc_stats(c, &s);
        if (s.coherent)
            return 1;
        usleep(10000);
    }
    return 0;
}

/* ---- a gate: the computation reads the source, then waits ---- */
static pthread_mutex_t gmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gcv = PTHREAD_COND_INITIALIZER;
static int entered, opened;
static char source[16];
static atomic_int runs;

static void gate_reset(void)
{
    entered = opened = 0;
    atomic_store(&runs, 0);
    snprintf(source, sizeof(source), "old");
}

static int gated(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    char snap[16];
    atomic_fetch_add(&runs, 1);
    pthread_mutex_lock(&gmu);
    snprintf(snap, sizeof(snap), "%s", source);
    entered++;
    pthread_cond_broadcast(&gcv);
    while (!opened)
        pthread_cond_wait(&gcv, &gmu);
    pthread_mutex_unlock(&gmu);
    *val = strdup(snap);
    *len = strlen(snap);
    return 0;
}

static void wait_entered(int n)
{
    pthread_mutex_lock(&gmu);
    while (entered < n)
        pthread_cond_wait(&gcv, &gmu);
    pthread_mutex_unlock(&gmu);
}

static void gate_open(void)
{
    pthread_mutex_lock(&gmu);
    opened = 1;
    pthread_cond_broadcast(&gcv);
    pthread_mutex_unlock(&gmu);
}

typedef struct job {
    tc_cache *c;
    const char *key;
    int rc;
    char got[16];
} job;

static void *fetch_job(void *arg)
{
    job *j = arg;
    tc_value *v = NULL;
    j->rc = tc_fetch(j->c, j->key, 0, gated, NULL, &v);
    snprintf(j->got, sizeof(j->got), "%s",
             v ? (const char *)tc_value_data(v) : "");
    tc_value_release(v);
    return NULL;
}

/* 1. A caller that starts after tc_del returned joins the flight of a
   computation that read the old source, and gets the old value. */
static void run_waiter_after_del(tc_cache *c)
{
    gate_reset();
    job a = {c, "item", -99, ""}, b = {c, "item", -99, ""};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, fetch_job, &a);
    wait_entered(1);
    snprintf(source, sizeof(source), "new"); /* the writer */
    CU_ASSERT_EQUAL(tc_del(c, "item"), TC_OK);
    pthread_create(&tb, NULL, fetch_job, &b); /* strictly after tc_del */
    usleep(200 * 1000);
    gate_open();
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    fprintf(stderr, "  A got %s, B (after tc_del) got %s, computes %d\n",
            a.got, b.got, atomic_load(&runs));
    CU_ASSERT_STRING_EQUAL(b.got, "new");
}

static void test_waiter_after_del(void)
{
    tc_cache *c = th_open(th_srv, NULL, NULL);
    run_waiter_after_del(c);
    tc_close(c);
}

/* 2. L1-only: compute_local fills with TC__EPOCH_ANY, so a tc_del during
   the computation does not stop the stale fill. */
static void test_l1only_stale_fill(void)
{
    tc_cache *c = th_open(NULL, NULL, NULL);
    gate_reset();
    job a = {c, "item", -99, ""};
    pthread_t ta;
    pthread_create(&ta, NULL, fetch_job, &a);
    wait_entered(1);
    snprintf(source, sizeof(source), "new");
    CU_ASSERT_EQUAL(tc_del(c, "item"), TC_OK);
    gate_open();
    pthread_join(ta, NULL);
    char buf[16];
    int rc = th_get_str(c, "item", buf, sizeof(buf));
    fprintf(stderr, "  L1-only after tc_del: rc %d value '%s'\n", rc, buf);
    CU_ASSERT_EQUAL(rc, TC_MISS);
    tc_close(c);
}

/* 3. Tracking mode, link up, a lease SET that fails transiently: the
   value is computed locally and put in the L1 although it is not in
   Redis; another process's tc_del then DELs nothing, so Redis sends no
   invalidation and the old value stays in this L1 for its whole TTL. */
static void test_local_fill_invisible_del(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_FATAL(r != NULL);
    tc_cache *a = th_open(r, "inv", NULL), *b = th_open(r, "inv", NULL);
    CU_ASSERT_FATAL(wait_coherent(a) && wait_coherent(b));
    gate_reset();
    job j = {a, "item", -99, ""};
    pthread_t t;
    th_redis_freeze(r); /* the GET and the lease SET time out (100 ms) */
    pthread_create(&t, NULL, fetch_job, &j);
    wait_entered(1); /* computing locally, from the old source */
    th_redis_thaw(r);
    usleep(50 * 1000);
    snprintf(source, sizeof(source), "new"); /* the writer, elsewhere */
    CU_ASSERT_EQUAL(tc_del(b, "item"), TC_OK);
    usleep(100 * 1000);
    gate_open();
    pthread_join(t, NULL);
    usleep(300 * 1000); /* any invalidation has arrived by now */
    tc_stats_info s;
    tc_stats(a, &s);
    char buf[16];
    int rc = th_get_str(a, "item", buf, sizeof(buf));
    fprintf(stderr,
            "  after B's tc_del: A's tc_get rc %d '%s' (coherent %llu)\n", rc,
            buf, (unsigned long long)s.coherent);
    CU_ASSERT(rc == TC_MISS || strcmp(buf, "new") == 0);
    tc_close(a);
    tc_close(b);
    th_redis_stop(r);
}

/* 4. Double computation: a leader becomes leader after another leader
   landed (its own lookup missed just before the store), and the lease is
   free again: it computes a second time. */
static atomic_int cnt;
static int quick(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    atomic_fetch_add(&cnt, 1);
    usleep(3000);
    *val = strdup("x");
    *len = 1;
    return 0;
}

typedef struct hammer {
    tc_cache *c;
    int id;
    atomic_int *go;
} hammer;

static void *hammer_run(void *arg)
{
    hammer *h = arg;
    char key[32];
    for (int k = 0; k < 200; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        while (atomic_load(h->go) < k)
            usleep(100); /* 16 spinners on 2 cores starve the leader */
        usleep((useconds_t)(rand() % 6000));
        tc_value *v = NULL;
        tc_fetch(h->c, key, 0, quick, NULL, &v);
        tc_value_release(v);
        if (h->id == 0) {
            usleep(8000);
            atomic_fetch_add(h->go, 1);
        }
    }
    return NULL;
}

/* What is counted here is single-flight and the lease re-check, not lease
   expiry: under valgrind on a loaded machine a starved leader (and its
   renewal thread) can outlive a 2 s lease, lose it, store nothing, and
   leave the key to a second computation, as designed. */
static void long_lease(tc_options *o)
{
    o->lease_ms = 30000;
}

static void hammer_with(int caches)
{
    tc_cache *c[2] = {th_open(th_srv, "dbl", long_lease), NULL};
    c[1] = caches == 2 ? th_open(th_srv, "dbl", long_lease) : c[0];
    wait_coherent(c[0]);
    wait_coherent(c[1]);
    atomic_int go = 0;
    atomic_store(&cnt, 0);
    pthread_t t[16];
    hammer h[16];
    for (int i = 0; i < 16; i++) {
        h[i] = (hammer){c[i % 2], i, &go};
        pthread_create(&t[i], NULL, hammer_run, &h[i]);
    }
    for (int i = 0; i < 16; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "  %d cache(s), 16 threads, 200 cold keys: %d computes\n",
            caches, atomic_load(&cnt));
    CU_ASSERT_EQUAL(atomic_load(&cnt), 200);
    freeReplyObject(th_redis_cmd(th_srv, "FLUSHALL"));
    tc_close(c[0]);
    if (caches == 2)
        tc_close(c[1]);
}

static void test_double_compute(void)
{
    hammer_with(1);
    hammer_with(2);
}

/* 5. A read of a group during a Redis hiccup writes (or queues the DEL
   of) the generation: the family is invalidated for every process
   without a bump; with enough reads the replay queue overflows and the
   whole namespace is flushed. */
static void small_replay(tc_options *o)
{
    o->replay_max = 5;
}

static void test_group_read_hiccup(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_FATAL(r != NULL);
    tc_cache *a = th_open(r, "grh", NULL),
             *b = th_open(r, "grh", small_replay);
    CU_ASSERT_FATAL(wait_coherent(a) && wait_coherent(b));
    char ka[TC_KEY_MAX], kb[TC_KEY_MAX];
    CU_ASSERT_EQUAL(tc_group_key(a, ka, sizeof(ka), "inv", "q"), TC_OK);
    CU_ASSERT_EQUAL(tc_set(a, "user:1", "u", 1, 0), TC_OK);
    th_redis_freeze(r);
    for (int i = 0; i < 10; i++) /* read-only calls */
        tc_group_key(b, kb, sizeof(kb), "inv", "q");
    th_redis_thaw(r);
    usleep(1500 * 1000);           /* breaker cool-down */
    for (int i = 0; i < 20; i++) { /* b's next calls replay its queue */
        tc_group_key(b, kb, sizeof(kb), "inv", "q");
        usleep(100 * 1000);
    }
    usleep(200 * 1000);
    char ka2[TC_KEY_MAX];
    CU_ASSERT_EQUAL(tc_group_key(a, ka2, sizeof(ka2), "inv", "q"), TC_OK);
    redisReply *rep = th_redis_cmd(r, "EXISTS grh:{user:1}");
    long long exists = rep ? rep->integer : -1;
    freeReplyObject(rep);
    tc_stats_info s;
    tc_stats(b, &s);
    fprintf(stderr,
            "  no bump: generation %s -> %s; unrelated key in Redis: %lld;"
            " replay overflows %llu\n",
            ka, ka2, exists, (unsigned long long)s.replay_overflows);
    CU_ASSERT_STRING_EQUAL(ka, ka2);
    CU_ASSERT_EQUAL(exists, 1);
    tc_close(a);
    tc_close(b);
    th_redis_stop(r);
}

/* 6. Allocation failures everywhere on the fetch paths (run under ASan
   for leaks). */
static int plain(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    *val = strdup("v");
    *len = 1;
    return 0;
}

static int absent(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)val, (void)len, (void)ttl;
    return TC_ABSENT;
}

static void test_alloc_sweep(void)
{
    tc_cache *c = th_open(th_srv, "oom", NULL);
    tc_cache *l1 = th_open(NULL, NULL, NULL);
    char key[32], gk[TC_KEY_MAX];
    int oks = 0;
    for (long n = 0; n < 60; n++) {
        snprintf(key, sizeof(key), "k%ld", n);
        tc_value *v = NULL;
        tc__alloc_fail_after(n);
        int rc1 = tc_fetch(c, key, 0, plain, NULL, &v);
        tc__alloc_fail_after(-1);
        if (n < 10)
            fprintf(stderr, "  n=%ld rc1=%s\n", n, tc_err_name(rc1));
        tc_value_release(v);
        v = NULL;
        tc__alloc_fail_after(n);
        int rc2 = tc_fetch(c, key, 0, absent, NULL, &v); /* hit or absent */
        tc__alloc_fail_after(-1);
        tc_value_release(v);
        v = NULL;
        tc__alloc_fail_after(n);
        int rc3 = tc_fetch(l1, key, 0, plain, NULL, &v);
        tc_value_release(v);
        v = NULL;
        int rc4 = tc_group_key(c, gk, sizeof(gk), "g", key);
        int rc5 = tc_group_bump(c, "g");
        int rc6 = TC_CACHED(c, 0, plain, NULL, &v, "s", key);
        tc__alloc_fail_after(-1);
        tc_value_release(v);
        oks += rc1 == TC_OK && rc3 == TC_OK;
        (void)rc2, (void)rc4, (void)rc5, (void)rc6;
        /* no lease left behind */
        char lk[64];
        snprintf(lk, sizeof(lk), "EXISTS oom:{%s}:lease", key);
        redisReply *rep = th_redis_cmd(th_srv, lk);
        if (rep && rep->integer)
            fprintf(stderr, "  lease left behind at n=%ld\n", n);
        CU_ASSERT(rep && rep->integer == 0);
        freeReplyObject(rep);
    }
    fprintf(stderr, "  alloc sweep: %d full successes\n", oks);
    tc_close(c);
    tc_close(l1);
}

/* 7. TC_CACHED with a long function name. */
static int
a_rather_long_function_name_that_describes_exactly_what_it_computes_for_the_invoice_module(
    void *ud, void **val, size_t *len, uint32_t *ttl)
{
    return plain(ud, val, len, ttl);
}

static void test_cached_long_name(void)
{
    tc_cache *c = th_open(th_srv, NULL, NULL);
    tc_value *v = NULL;
    int rc = TC_CACHED(
        c, 0,
        a_rather_long_function_name_that_describes_exactly_what_it_computes_for_the_invoice_module,
        NULL, &v, "i", (int64_t)1);
    fprintf(stderr, "  TC_CACHED, %zu-byte name: %s\n",
            strlen("a_rather_long_function_name_that_describes_exactly_what_"
                   "it_computes_for_the_invoice_module"),
            tc_err_name(rc));
    CU_ASSERT_EQUAL(rc, TC_OK);
    tc_value_release(v);
    tc_close(c);
}

static void test_orphan_lease(void);
int main(void)
{
    static const th_test tests[] = {
        {"waiter_after_del", test_waiter_after_del},
        {"l1only_stale_fill", test_l1only_stale_fill},
        {"local_fill_invisible_del", test_local_fill_invisible_del},
        {"double_compute", test_double_compute},
        {"group_read_hiccup", test_group_read_hiccup},
        {"alloc_sweep", test_alloc_sweep},
        {"cached_long_name", test_cached_long_name},
        {"orphan_lease", test_orphan_lease},
        {NULL, NULL},
    };
    return th_run_redis("fetch_races", tests);
}

/* 8. The lease SET times out but lands: A computes locally and never
   releases it; B then waits for the whole lease. */
static void med_lease(tc_options *o)
{
    o->lease_ms = 3000;
}

static void test_orphan_lease(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_FATAL(r != NULL);
    tc_cache *a = th_open(r, "orph", med_lease),
             *b = th_open(r, "orph", med_lease);
    CU_ASSERT_FATAL(wait_coherent(a) && wait_coherent(b));
    th_redis_freeze(r);
    tc_value *v = NULL;
    int rc = tc_fetch(a, "k", 0, plain, NULL, &v); /* GET, SET NX time out */
    tc_value_release(v);
    th_redis_thaw(r);
    usleep(100 * 1000);
    redisReply *rep = th_redis_cmd(r, "EXISTS orph:{k}:lease");
    long long lease = rep ? rep->integer : -1;
    freeReplyObject(rep);
    uint64_t t0 = th_now_ms();
    v = NULL;
    int rc2 = tc_fetch(b, "k", 0, plain, NULL, &v);
    uint64_t waited = th_now_ms() - t0;
    tc_value_release(v);
    fprintf(stderr, "  A rc %s; orphan lease %lld; B rc %s after %llu ms\n",
            tc_err_name(rc), lease, tc_err_name(rc2),
            (unsigned long long)waited);
    /* the orphan is given back (or queued and replayed within a PING of
       the link), well before its lease_ms of 3000 */
    CU_ASSERT(waited < 2000);
    tc_close(a);
    tc_close(b);
    th_redis_stop(r);
}
