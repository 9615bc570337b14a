/* SPDX-License-Identifier: BSD-3-Clause */
/* tc_mget and tc_mfetch: mixes of L1 hits, Redis hits, misses, absent
   values, bad keys and foreign bytes in one batch; the counters; Redis
   away (soft and strict); no stale fill while writers race the batch;
   one computation per missing key, threads stampeding included. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static void trusted(tc_options *o)
{
    o->coherence = TC_COHERENCE_NONE; /* the L1 trusted from the start */
}

static void trusted_strict(tc_options *o)
{
    trusted(o);
    o->strict = 1;
}

static tc_cache *open_ns(const char *ns, int strict)
{
    return th_open(th_srv, ns, strict ? trusted_strict : trusted);
}

static int value_is(const tc_value *v, const char *s)
{
    return v && tc_value_len(v) == strlen(s) &&
           memcmp(tc_value_data(v), s, strlen(s)) == 0;
}

static void release_all(tc_value **out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tc_value_release(out[i]);
        out[i] = NULL;
    }
}

static int absent_fn(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)val, (void)len, (void)ttl;
    return TC_ABSENT;
}

static void test_mix(void)
{
    char ns[32];
    snprintf(ns, sizeof(ns), "mix%d", (int)getpid());
    tc_cache *w = open_ns(ns, 0), *c = open_ns(ns, 0);
    CU_ASSERT(tc_set(w, "l1", "one", 3, 60000) == TC_OK);
    CU_ASSERT(tc_set(w, "l2", "two", 3, 60000) == TC_OK);
    tc_value *v = NULL;
    CU_ASSERT(tc_get(c, "l1", &v) == TC_OK); /* now in c's L1 */
    tc_value_release(v);
    CU_ASSERT(tc_fetch(w, "gone", 0, absent_fn, NULL, &v) == TC_ABSENT);
    redisReply *r = th_redis_cmd(th_srv, "SET %s:{foreign} %s", ns, "junk");
    freeReplyObject(r);
    char big[600];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    const char *keys[] = {"l1", "l2", "nope", "gone",
                          big,  "",   NULL,   "foreign"};
    size_t n = sizeof(keys) / sizeof(keys[0]);
    tc_value *out[8];
    int st[8];
    tc_stats_info s0, s1;
    tc_stats(c, &s0);
    CU_ASSERT(tc_mget(c, keys, n, out, st) == TC_ETOOBIG);
    tc_stats(c, &s1);
    CU_ASSERT(st[0] == TC_OK && value_is(out[0], "one"));
    CU_ASSERT(st[1] == TC_OK && value_is(out[1], "two"));
    CU_ASSERT(st[2] == TC_MISS && !out[2]);
    CU_ASSERT(st[3] == TC_ABSENT && !out[3]);
    CU_ASSERT(st[4] == TC_ETOOBIG && !out[4]);
    CU_ASSERT(st[5] == TC_EINVAL && !out[5]);
    CU_ASSERT(st[6] == TC_EINVAL && !out[6]);
    CU_ASSERT(st[7] == TC_MISS && !out[7]); /* foreign bytes: a miss */
    /* as tc_get counts: one L1 hit, four to Redis (two found) */
    CU_ASSERT(s1.l1_hits - s0.l1_hits == 1);
    CU_ASSERT(s1.l1_misses - s0.l1_misses == 4);
    CU_ASSERT(s1.l2_hits - s0.l2_hits == 2);
    CU_ASSERT(s1.l2_misses - s0.l2_misses == 1);
    CU_ASSERT(s1.codec_errors - s0.codec_errors == 1);
    release_all(out, n);

    /* again: what Redis had is in the L1 now */
    tc_stats(c, &s0);
    CU_ASSERT(tc_mget(c, keys, 4, out, st) == TC_OK);
    tc_stats(c, &s1);
    CU_ASSERT(st[0] == TC_OK && st[1] == TC_OK && st[2] == TC_MISS &&
              st[3] == TC_ABSENT);
    CU_ASSERT(value_is(out[1], "two"));
    CU_ASSERT(s1.l1_hits - s0.l1_hits == 3);
    CU_ASSERT(s1.l2_hits == s0.l2_hits);
    release_all(out, 4);

    /* strict: the foreign value is an error of its own key */
    tc_cache *sc = open_ns(ns, 1);
    CU_ASSERT(tc_mget(sc, keys + 7, 1, out, st) == TC_ECODEC);
    CU_ASSERT(st[0] == TC_ECODEC && !out[0]);
    const char *pair[] = {"l2", "foreign"};
    CU_ASSERT(tc_mget(sc, pair, 2, out, st) == TC_ECODEC);
    CU_ASSERT(st[0] == TC_OK && value_is(out[0], "two"));
    release_all(out, 2);
    tc_close(sc);
    tc_close(c);
    tc_close(w);
}

static void test_args(void)
{
    tc_cache *c = open_ns(NULL, 0);
    const char *keys[] = {"a"};
    tc_value *out[1] = {(tc_value *)1};
    int st[1] = {99};
    CU_ASSERT(tc_mget(c, keys, 0, NULL, NULL) == TC_OK);
    CU_ASSERT(tc_mget(NULL, keys, 0, out, st) == TC_EINVAL);
    CU_ASSERT(tc_mget(NULL, keys, 1, out, st) == TC_EINVAL);
    CU_ASSERT(st[0] == TC_EINVAL && out[0] == NULL);
    CU_ASSERT(tc_mget(c, NULL, 1, out, st) == TC_EINVAL);
    CU_ASSERT(tc_mget(c, keys, 1, NULL, st) == TC_EINVAL);
    CU_ASSERT(tc_mget(c, keys, 1, out, NULL) == TC_EINVAL);
    CU_ASSERT(tc_mfetch(c, keys, 1, 0, NULL, NULL, out, st) == TC_EINVAL);
    CU_ASSERT(st[0] == TC_EINVAL);
    tc_close(c);
}

/* Redis away: misses, or TC_EBACKEND for each key in strict mode; what
   the L1 has is still served. */
static void test_backend_down(void)
{
    th_redis *srv = th_redis_start();
    CU_ASSERT_FATAL(srv != NULL);
    tc_cache *cs[2];
    for (int strict = 0; strict < 2; strict++) {
        tc_options o;
        th_options(srv, &o);
        o.strict = strict;
        o.coherence = TC_COHERENCE_NONE;
        CU_ASSERT_FATAL(tc_open(&cs[strict], &o) == TC_OK);
        CU_ASSERT(tc_set(cs[strict], "held", "h", 1, 60000) == TC_OK);
    }
    th_redis_kill(srv);
    const char *keys[] = {"held", "k1", "k2"};
    tc_value *out[3];
    int st[3];
    CU_ASSERT(tc_mget(cs[0], keys, 3, out, st) == TC_OK);
    CU_ASSERT(st[0] == TC_OK && value_is(out[0], "h"));
    CU_ASSERT(st[1] == TC_MISS && st[2] == TC_MISS);
    release_all(out, 3);
    CU_ASSERT(tc_mget(cs[1], keys, 3, out, st) == TC_EBACKEND);
    CU_ASSERT(st[0] == TC_OK && value_is(out[0], "h"));
    CU_ASSERT(st[1] == TC_EBACKEND && st[2] == TC_EBACKEND);
    release_all(out, 3);
    tc_close(cs[0]);
    tc_close(cs[1]);
    th_redis_stop(srv);
}

/* ---- no stale fill: writers race the batch reads ---- */

#define RACE_KEYS 32
#define RACE_ROUNDS 400

typedef struct race {
    tc_cache *c;
    atomic_int stop;
    atomic_long reads;
} race;

static void race_key(char *buf, size_t cap, int k)
{
    snprintf(buf, cap, "race%d", k);
}

static void *reader(void *ud)
{
    race *r = ud;
    char names[RACE_KEYS][16];
    const char *keys[RACE_KEYS];
    for (int k = 0; k < RACE_KEYS; k++) {
        race_key(names[k], sizeof(names[k]), k);
        keys[k] = names[k];
    }
    tc_value *out[RACE_KEYS];
    int st[RACE_KEYS];
    while (!atomic_load(&r->stop)) {
        tc_mget(r->c, keys, RACE_KEYS, out, st);
        release_all(out, RACE_KEYS);
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

static void test_no_stale_fill(void)
{
    tc_cache *c = open_ns(NULL, 0);
    race r = {c, 0, 0};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, reader, &r) == 0);
    char key[16], val[32];
    int last[RACE_KEYS]; /* the last round written, -1 deleted */
    for (int round = 0; round < RACE_ROUNDS; round++) {
        for (int k = 0; k < RACE_KEYS; k++) {
            race_key(key, sizeof(key), k);
            if ((round + k) % 7 == 3) {
                CU_ASSERT(tc_del(c, key) == TC_OK);
                last[k] = -1;
            } else {
                snprintf(val, sizeof(val), "v%d", round);
                CU_ASSERT(tc_set(c, key, val, strlen(val), 60000) == TC_OK);
                last[k] = round;
            }
        }
    }
    usleep(50 * 1000); /* the readers' last batches land */
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CU_ASSERT(atomic_load(&r.reads) > 0);
    /* Whatever the readers filled, the L1 now says what was written
       last, or nothing for a key deleted last. */
    int stale = 0;
    for (int k = 0; k < RACE_KEYS; k++) {
        race_key(key, sizeof(key), k);
        const char *keys[] = {key};
        tc_value *out[1];
        int st[1];
        tc_mget(c, keys, 1, out, st);
        if (last[k] < 0) {
            stale += st[0] != TC_MISS;
        } else {
            snprintf(val, sizeof(val), "v%d", last[k]);
            stale += st[0] != TC_OK || !value_is(out[0], val);
        }
        release_all(out, 1);
    }
    printf("\n    %ld batches of %d raced %d writes: %d stale\n",
           atomic_load(&r.reads), RACE_KEYS, RACE_KEYS * RACE_ROUNDS, stale);
    CU_ASSERT(stale == 0);
    tc_close(c);
}

/* ---- tc_mfetch ---- */

typedef struct counted {
    atomic_int computes;
    int ms;
} counted;

/* "computed:<key>": each value says which key it was computed for. */
static int counted_fn(void *ud, const char *key, void **val, size_t *len,
                      uint32_t *ttl)
{
    counted *cn = ud;
    (void)ttl;
    atomic_fetch_add(&cn->computes, 1);
    if (cn->ms)
        usleep((useconds_t)cn->ms * 1000);
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "computed:%s", key);
    *val = strdup(buf);
    *len = (size_t)n;
    return *val ? 0 : TC_ECOMPUTE;
}

static void test_mfetch_once(void)
{
    tc_cache *c = open_ns(NULL, 0);
    CU_ASSERT(tc_set(c, "have", "stored", 6, 60000) == TC_OK);
    const char *keys[] = {"have", "m1", "m2", "", "m3"};
    tc_value *out[5];
    int st[5];
    counted cn = {0, 0};
    CU_ASSERT(tc_mfetch(c, keys, 5, 0, counted_fn, &cn, out, st) == TC_EINVAL);
    CU_ASSERT(atomic_load(&cn.computes) == 3);
    CU_ASSERT(st[0] == TC_OK && value_is(out[0], "stored"));
    CU_ASSERT(st[1] == TC_OK && value_is(out[1], "computed:m1"));
    CU_ASSERT(st[2] == TC_OK && value_is(out[2], "computed:m2"));
    CU_ASSERT(st[3] == TC_EINVAL && !out[3]);
    CU_ASSERT(st[4] == TC_OK && value_is(out[4], "computed:m3"));
    release_all(out, 5);
    CU_ASSERT(tc_mfetch(c, keys + 1, 2, 0, counted_fn, &cn, out, st) == TC_OK);
    CU_ASSERT(atomic_load(&cn.computes) == 3); /* cached now */
    release_all(out, 2);
    tc_close(c);
}

#define STAMPEDE_KEYS 16
#define STAMPEDE_THREADS 4

typedef struct stampede {
    tc_cache *c;
    counted *cn;
    atomic_int bad;
} stampede;

static void *fetcher(void *ud)
{
    stampede *s = ud;
    char names[STAMPEDE_KEYS][16];
    const char *keys[STAMPEDE_KEYS];
    for (int k = 0; k < STAMPEDE_KEYS; k++) {
        snprintf(names[k], sizeof(names[k]), "st%d", k);
        keys[k] = names[k];
    }
    tc_value *out[STAMPEDE_KEYS];
    int st[STAMPEDE_KEYS];
    if (tc_mfetch(s->c, keys, STAMPEDE_KEYS, 0, counted_fn, s->cn, out, st) !=
        TC_OK)
        atomic_fetch_add(&s->bad, 1);
    for (int k = 0; k < STAMPEDE_KEYS; k++) {
        char want[32];
        snprintf(want, sizeof(want), "computed:%s", keys[k]);
        if (st[k] != TC_OK || !value_is(out[k], want))
            atomic_fetch_add(&s->bad, 1);
    }
    release_all(out, STAMPEDE_KEYS);
    return NULL;
}

static void test_mfetch_stampede(void)
{
    tc_cache *c = open_ns(NULL, 0);
    counted cn = {0, 20};
    stampede s = {c, &cn, 0};
    pthread_t th[STAMPEDE_THREADS];
    for (int i = 0; i < STAMPEDE_THREADS; i++)
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, fetcher, &s) == 0);
    for (int i = 0; i < STAMPEDE_THREADS; i++)
        pthread_join(th[i], NULL);
    printf("\n    %d threads, %d keys: %d computes\n", STAMPEDE_THREADS,
           STAMPEDE_KEYS, atomic_load(&cn.computes));
    CU_ASSERT(atomic_load(&s.bad) == 0);
    CU_ASSERT(atomic_load(&cn.computes) == STAMPEDE_KEYS);
    tc_close(c);
}

int main(void)
{
    static const th_test tests[] = {
        {"mix", test_mix},
        {"args", test_args},
        {"backend_down", test_backend_down},
        {"no_stale_fill", test_no_stale_fill},
        {"mfetch_once", test_mfetch_once},
        {"mfetch_stampede", test_mfetch_stampede},
        {NULL, NULL},
    };
    return th_run_redis("mget", tests);
}
