/* SPDX-License-Identifier: BSD-3-Clause */
/* tc_warm against a private redis-server: a second cache warmed from the
   first one's data serves it from its L1, within the prefix, max_entries
   and the L1's own bounds; leases, other namespaces and foreign bytes
   stay out; invalidations racing the warm leave nothing stale; Redis
   away is TC_EBACKEND with nothing put in. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "peer.h"

#define BOUND_MS 3000

static tc_cache *open_on(const th_redis *r, const char *ns, int coherence,
                         uint64_t l1_max)
{
    tc_options o;
    th_options(r, &o);
    snprintf(o.ns, sizeof(o.ns), "%s", ns);
    o.coherence = coherence;
    o.listener_ping_ms = 100;
    if (l1_max) {
        o.l1_max_entries = l1_max;
        o.l1_shards = 4;
    }
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    return c;
}

static void set_str(tc_cache *c, const char *key, const char *val,
                    uint32_t ttl)
{
    CU_ASSERT_EQUAL(tc_set(c, key, val, strlen(val), ttl), TC_OK);
}

static void set_n(tc_cache *c, const char *fmt, int n)
{
    for (int i = 0; i < n; i++) {
        char k[32], v[40];
        snprintf(k, sizeof(k), fmt, i);
        snprintf(v, sizeof(v), "v-%s", k);
        set_str(c, k, v, 0);
    }
}

static void raw(const char *fmt, const char *a, const char *b)
{
    redisReply *r = th_redis_cmd(th_srv, fmt, a, b);
    CU_ASSERT_PTR_NOT_NULL(r);
    freeReplyObject(r);
}

static int say_absent(void *ud, void **val, size_t *len, uint32_t *ttl_ms)
{
    (void)ud, (void)val, (void)len, (void)ttl_ms;
    return TC_ABSENT;
}

/* The case: B starts cold and is warmed from what A stored. */
static void test_second_cache(void)
{
    tc_cache *a = open_on(th_srv, "w1", TC_COHERENCE_AUTO, 0);
    tc_cache *other = open_on(th_srv, "w1x", TC_COHERENCE_AUTO, 0);
    set_n(a, "u:%d", 200);
    set_n(a, "v:%d", 50);
    set_n(other, "u:%d", 20); /* another namespace, same keys */
    set_str(a, "u:soon", "short", 300);
    raw("SET %s %s", "w1:{u:foreign}", "not an envelope");
    raw("SET %s %s", "w1:{u:1}:lease", "holder");
    tc_value *absent = NULL;
    CU_ASSERT_EQUAL(tc_fetch(a, "u:none", 0, say_absent, NULL, &absent),
                    TC_ABSENT);

    tc_cache *b = open_on(th_srv, "w1", TC_COHERENCE_AUTO, 0);
    CU_ASSERT_EQUAL(tc_warm(b, "u:", 0), TC_OK);
    tc_stats_info s;
    tc_stats(b, &s);
    CU_ASSERT_EQUAL(s.l1_warmed, 202); /* 200 + soon + none */
    CU_ASSERT_EQUAL(s.l1_entries, 202);
    CU_ASSERT_EQUAL(s.codec_errors, 1);
    CU_ASSERT_EQUAL(s.l2_hits + s.l2_misses, 0);
    for (int i = 0; i < 200; i++) {
        char k[32], want[40], got[64];
        snprintf(k, sizeof(k), "u:%d", i);
        snprintf(want, sizeof(want), "v-%s", k);
        CU_ASSERT_EQUAL(th_get_str(b, k, got, sizeof(got)), TC_OK);
        CU_ASSERT_STRING_EQUAL(got, want);
    }
    CU_ASSERT_EQUAL(tc_get(b, "u:none", &absent), TC_ABSENT);
    tc_stats(b, &s);
    CU_ASSERT_EQUAL(s.l1_hits, 201);
    CU_ASSERT_EQUAL(s.l2_hits, 0);
    /* the prefix: v: was left to Redis */
    char got[64];
    CU_ASSERT_EQUAL(th_get_str(b, "v:3", got, sizeof(got)), TC_OK);
    tc_stats(b, &s);
    CU_ASSERT_EQUAL(s.l2_hits, 1);
    /* the TTL Redis had left, not the default */
    usleep(450 * 1000);
    CU_ASSERT_EQUAL(th_get_str(b, "u:soon", got, sizeof(got)), TC_MISS);
    /* warmed again: what is there is replaced, not doubled */
    CU_ASSERT_EQUAL(tc_warm(b, NULL, 0), TC_OK);
    tc_stats(b, &s);
    CU_ASSERT_EQUAL(s.l1_entries, 251);
    tc_close(b);
    tc_close(a);
    tc_close(other);
}

static tc_cache *peer_open(void *ud)
{
    (void)ud;
    tc_options o;
    th_options(th_srv, &o);
    snprintf(o.ns, sizeof(o.ns), "w7");
    o.listener_ping_ms = 100;
    tc_cache *c = NULL;
    return tc_open(&c, &o) == TC_OK ? c : NULL;
}

/* A: tc_warm(a) → "<status> <l1_warmed>"; T → "<l1_hits> <l2 reads>". */
static int peer_extra(tc_cache *c, char cmd, const char *a, const char *b,
                      FILE *out, void *ud)
{
    (void)b, (void)ud;
    tc_stats_info s;
    if (cmd == 'A') {
        int rc = tc_warm(c, a, 0);
        tc_stats(c, &s);
        fprintf(out, "%d %llu\n", rc, (unsigned long long)s.l1_warmed);
        return 1;
    }
    if (cmd == 'T') {
        tc_stats(c, &s);
        fprintf(out, "%llu %llu\n", (unsigned long long)s.l1_hits,
                (unsigned long long)(s.l2_hits + s.l2_misses));
        return 1;
    }
    return 0;
}

/* The test as processes: a second process, started cold, is
   warmed from the first one's data, serves it from its L1, and hears
   the first one's later changes to what it warmed. Forked before this
   process opens a cache (no thread of ours is in the child). */
static void test_second_process(void)
{
    th_peer p;
    th_peer_conf conf = {
        .open = peer_open, .wait_ms = BOUND_MS, .extra = peer_extra};
    CU_ASSERT_FATAL(th_peer_start(&p, &conf) == 0);
    tc_cache *a = open_on(th_srv, "w7", TC_COHERENCE_AUTO, 0);
    set_n(a, "u:%d", 100);
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&p, "A u:"), "0 100");
    for (int i = 0; i < 100; i++) {
        char want[48];
        snprintf(want, sizeof(want), "V v-u:%d", i);
        CU_ASSERT_STRING_EQUAL(th_peer_ask(&p, "G u:%d", i), want);
    }
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&p, "T"), "100 0");
    set_str(a, "u:5", "changed", 0);
    CU_ASSERT(atol(th_peer_ask(&p, "W u:5 changed")) >= 0);
    CU_ASSERT_EQUAL(tc_del(a, "u:6"), TC_OK);
    CU_ASSERT(atol(th_peer_ask(&p, "W u:6 -")) >= 0);
    CU_ASSERT_EQUAL(th_peer_stop(&p), 0);
    tc_close(a);
}

/* max_entries, and the L1's own bounds: warming evicts nothing. */
static void test_bounds(void)
{
    tc_cache *a = open_on(th_srv, "w2", TC_COHERENCE_AUTO, 0);
    set_n(a, "k:%d", 300);
    tc_cache *b = open_on(th_srv, "w2", TC_COHERENCE_AUTO, 0);
    CU_ASSERT_EQUAL(tc_warm(b, "", 10), TC_OK);
    tc_stats_info s;
    tc_stats(b, &s);
    CU_ASSERT_EQUAL(s.l1_warmed, 10);
    CU_ASSERT_EQUAL(s.l1_entries, 10);
    tc_close(b);

    b = open_on(th_srv, "w2", TC_COHERENCE_AUTO, 64);
    char got[64];
    CU_ASSERT_EQUAL(th_get_str(b, "k:7", got, sizeof(got)), TC_OK);
    CU_ASSERT_EQUAL(tc_warm(b, "k:", 0), TC_OK);
    tc_stats(b, &s);
    CU_ASSERT(s.l1_entries <= 64);
    CU_ASSERT(s.l1_warmed >= 32); /* most shards filled up */
    CU_ASSERT_EQUAL(s.l1_evictions, 0);
    CU_ASSERT_EQUAL(th_get_str(b, "k:7", got, sizeof(got)), TC_OK);
    tc_stats(b, &s);
    CU_ASSERT_EQUAL(s.l1_hits, 1); /* what was there stayed */
    tc_close(b);
    tc_close(a);
}

#define RACE_KEYS 64

typedef struct race {
    tc_cache *a;
    atomic_int stop;
    int last[RACE_KEYS];
} race;

static void *writer(void *ud)
{
    race *r = ud;
    for (int n = 1; !atomic_load(&r->stop); n++) {
        int i = rand() % RACE_KEYS;
        char k[32], v[32];
        snprintf(k, sizeof(k), "r:%d", i);
        if (n % 5 == 0) {
            tc_del(r->a, k);
            r->last[i] = -1;
        } else {
            snprintf(v, sizeof(v), "%d", n);
            tc_set(r->a, k, v, strlen(v), 0);
            r->last[i] = n;
        }
    }
    return NULL;
}

/* Does b read key i as A last left it, within the bound? */
static int settles(tc_cache *b, int i, int last)
{
    char k[32], want[32], got[64];
    snprintf(k, sizeof(k), "r:%d", i);
    snprintf(want, sizeof(want), "%d", last);
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < BOUND_MS;) {
        int rc = th_get_str(b, k, got, sizeof(got));
        if (last < 0 ? rc == TC_MISS : rc == TC_OK && !strcmp(got, want))
            return 1;
        usleep(1000);
    }
    return 0;
}

static void race_mode(const char *ns, int coherence)
{
    race r = {.a = open_on(th_srv, ns, coherence, 0)};
    for (int i = 0; i < RACE_KEYS; i++)
        r.last[i] = -1;
    tc_cache *b = open_on(th_srv, ns, coherence, 0);
    pthread_t t;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, writer, &r) == 0);
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < 1000;)
        CU_ASSERT_EQUAL(tc_warm(b, "r:", 0), TC_OK);
    atomic_store(&r.stop, 1);
    pthread_join(t, NULL);
    int stale = 0;
    for (int i = 0; i < RACE_KEYS; i++)
        stale += !settles(b, i, r.last[i]);
    CU_ASSERT_EQUAL(stale, 0);
    /* and once more, warmed after the writes: the same */
    CU_ASSERT_EQUAL(tc_warm(b, "r:", 0), TC_OK);
    for (int i = 0; i < RACE_KEYS; i++)
        stale += !settles(b, i, r.last[i]);
    CU_ASSERT_EQUAL(stale, 0);
    tc_close(b);
    tc_close(r.a);
}

static void test_race_tracking(void)
{
    race_mode("w3", TC_COHERENCE_AUTO);
}

static void test_race_channel(void)
{
    race_mode("w4", TC_COHERENCE_CHANNEL);
}

/* Redis away: TC_EBACKEND, strict or not, listener or not; nothing in. */
static void test_redis_down(void)
{
    static const int modes[] = {TC_COHERENCE_AUTO, TC_COHERENCE_NONE};
    for (int m = 0; m < 2; m++) {
        th_redis *r = th_redis_start();
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        tc_cache *a = open_on(r, "w5", modes[m], 0);
        set_n(a, "d:%d", 20);
        tc_cache *b = open_on(r, "w5", modes[m], 0);
        th_redis_kill(r);
        CU_ASSERT_EQUAL(tc_warm(b, "d:", 0), TC_EBACKEND);
        tc_stats_info s;
        tc_stats(b, &s);
        CU_ASSERT_EQUAL(s.l1_warmed, 0);
        CU_ASSERT_EQUAL(s.l1_entries, 0);
        tc_close(b);
        tc_close(a);
        th_redis_stop(r);
    }
}

static void test_bad_args(void)
{
    CU_ASSERT_EQUAL(tc_warm(NULL, "x", 0), TC_EINVAL);
    tc_cache *b = open_on(th_srv, "w6", TC_COHERENCE_AUTO, 0);
    CU_ASSERT_EQUAL(tc_warm(b, "\x01gen", 0), TC_EINVAL);
    char long_key[600];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    CU_ASSERT_EQUAL(tc_warm(b, long_key, 0), TC_ETOOBIG);
    tc_close(b);
    /* L1-only: nothing to warm from */
    tc_options o;
    tc_options_init(&o);
    o.redis_host[0] = '\0';
    o.redis_socket[0] = '\0';
    CU_ASSERT_FATAL(tc_open(&b, &o) == TC_OK);
    CU_ASSERT_EQUAL(tc_warm(b, NULL, 0), TC_OK);
    tc_close(b);
}

int main(void)
{
    static const th_test tests[] = {
        {"a second process warmed from the first one's data",
         test_second_process},
        {"a second cache warmed from the first one's data", test_second_cache},
        {"max_entries and the L1's bounds", test_bounds},
        {"invalidations racing the warm (tracking)", test_race_tracking},
        {"invalidations racing the warm (channel)", test_race_channel},
        {"Redis away: TC_EBACKEND, nothing in", test_redis_down},
        {"bad arguments", test_bad_args},
        {NULL, NULL}};
    signal(SIGPIPE, SIG_IGN); /* a dead peer fails its test, not the run */
    return th_run_redis("warm", tests);
}
