/* SPDX-License-Identifier: BSD-3-Clause */
/* 8 threads mixing get/set/del on overlapping keys, through Redis and
   L1-only, with small L1 bounds so that eviction races with hits. Run
   under TSan in CI. Every value names the key it was written for, so a
   read that returns another key's bytes (or torn bytes) is caught. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define THREADS 8
#define KEYS 32
#define OPS 3000

typedef struct worker {
    tc_cache *c;
    unsigned seed;
    int bad;    /* reads whose bytes do not belong to the key */
    int errors; /* calls that returned an error status */
    int hits;
    int gets;
} worker;

static unsigned next(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* "<key>|<writer>|<seq>|<key>": both ends must name the key read. */
static int value_ok(const char *key, const tc_value *v)
{
    char buf[128];
    size_t n = tc_value_len(v);
    if (n == 0 || n >= sizeof(buf))
        return 0;
    memcpy(buf, tc_value_data(v), n);
    buf[n] = '\0';
    size_t kl = strlen(key);
    const char *tail = strrchr(buf, '|');
    return strncmp(buf, key, kl) == 0 && buf[kl] == '|' && tail &&
           strcmp(tail + 1, key) == 0;
}

static void *run(void *arg)
{
    worker *w = arg;
    char key[16], val[96];
    for (int i = 0; i < OPS; i++) {
        unsigned r = next(&w->seed);
        snprintf(key, sizeof(key), "key%u", r % KEYS);
        unsigned op = (r >> 12) % 10;
        int rc;
        if (op < 6) {
            tc_value *v = NULL;
            rc = tc_get(w->c, key, &v);
            w->gets++;
            if (rc == TC_OK) {
                w->hits++;
                w->bad += !value_ok(key, v);
            }
            tc_value_release(v);
            rc = rc == TC_MISS ? TC_OK : rc;
        } else if (op < 9) {
            int n = snprintf(val, sizeof(val), "%s|%p|%d|%s", key, (void *)w,
                             i, key);
            rc = tc_set(w->c, key, val, (size_t)n, 0);
        } else {
            rc = tc_del(w->c, key);
        }
        w->errors += rc != TC_OK;
    }
    return NULL;
}

static void run_threads(tc_cache *c)
{
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){c, 1234u + (unsigned)i * 7919u, 0, 0, 0, 0};
        CU_ASSERT_FATAL(pthread_create(&t[i], NULL, run, &w[i]) == 0);
    }
    int bad = 0, errors = 0, hits = 0, gets = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        bad += w[i].bad;
        errors += w[i].errors;
        hits += w[i].hits;
        gets += w[i].gets;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT(hits > 0);
    tc_stats_info s;
    tc_stats(c, &s);
    CU_ASSERT(s.l1_entries <= KEYS);
    /* every hit a thread saw was counted once, in one tier */
    CU_ASSERT_EQUAL(s.l1_hits + s.l2_hits, (uint64_t)hits);
    CU_ASSERT_EQUAL(s.l1_hits + s.l1_misses, (uint64_t)gets);
}

static void with_redis(int coherence)
{
    tc_options o;
    th_options(th_srv, &o);
    o.l1_max_entries = 16; /* fewer than KEYS: evictions race with hits */
    o.l1_shards = 1;
    o.pool_size = 4; /* fewer than threads: the pool is contended */
    o.coherence = coherence;
    /* No backend error is asserted below: on a loaded machine (ASan, 8
       threads on 2 cores) a 100 ms command timeout is a timing bound,
       and this test is about races, not timeouts. */
    o.command_timeout_ms = 2000;
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    run_threads(c);
    tc_stats_info s;
    tc_stats(c, &s);
    /* Whether the threads evicted depends on timing: with one shard,
       every write refuses the fills racing it (the epoch rule), and with
       the listener its own invalidations empty the L1 too. One writer
       alone, without the listener, must evict: KEYS > l1_max_entries. */
    if (coherence == TC_COHERENCE_NONE) {
        for (int i = 0; i < KEYS; i++) {
            char key[16];
            snprintf(key, sizeof(key), "seq%d", i);
            CU_ASSERT_EQUAL(tc_set(c, key, "v", 1, 0), TC_OK);
        }
        tc_stats(c, &s);
        CU_ASSERT(s.l1_evictions > 0);
    }
    CU_ASSERT(s.l2_hits > 0);
    CU_ASSERT_EQUAL(s.backend_errors, 0);
    tc_close(c);
}

static void test_with_redis(void)
{
    with_redis(TC_COHERENCE_NONE);
}

/* The same with the listener thread dropping keys under the workers. */
static void test_with_listener(void)
{
    with_redis(TC_COHERENCE_AUTO);
}

static void test_l1_only(void)
{
    tc_options o;
    th_options(NULL, &o);
    o.l1_max_entries = 20;
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    run_threads(c);
    tc_close(c);
}

/* Prefix deletes and flushes racing with the rest. */
static void *flusher(void *arg)
{
    tc_cache *c = arg;
    for (int i = 0; i < 40; i++) {
        CU_ASSERT_EQUAL(i % 2 ? tc_flush(c) : tc_del_prefix(c, "key1"), TC_OK);
    }
    return NULL;
}

static void test_flush_races(void)
{
    tc_cache *c = th_open(th_srv, NULL, NULL);
    pthread_t f;
    CU_ASSERT_FATAL(pthread_create(&f, NULL, flusher, c) == 0);
    run_threads(c);
    pthread_join(f, NULL);
    tc_close(c);
}

int main(void)
{
    static const th_test tests[] = {
        {"with_redis", test_with_redis},
        {"with_listener", test_with_listener},
        {"l1_only", test_l1_only},
        {"flush_races", test_flush_races},
        {NULL, NULL},
    };
    return th_run_redis("concurrency", tests);
}
