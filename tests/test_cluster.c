/* SPDX-License-Identifier: BSD-3-Clause */
/* Redis Cluster: a private cluster of 3 masters with a replica each.
   Keys land on the master of their slot; coherence between processes
   and tc_fetch's single computation hold on every master; prefix
   deletes and flushes reach every master; a slot migrated under load
   costs no failed call and no stale read; a killed master's keys degrade
   while the other masters keep serving, and come back by themselves once
   its replica has taken over. */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "history.h"
#include "peer.h"

#include "cache.h" /* the l2 behind a cache */
#include "l2.h"

#define SLOTS 16384
#define MASTERS 3
#define BOUND_MS 3000      /* generous: how long a change may take to show */
#define CALL_BOUND_MS 2000 /* generous: one call while a master is away */

static th_cluster *cl;

static tc_cache *open_ns(const char *ns)
{
    tc_options o;
    th_cluster_options(cl, &o);
    snprintf(o.ns, sizeof o.ns, "%s", ns);
    /* Generous: the tests assert that no call fails, and a loaded
       machine (or valgrind) can take 100 ms to answer. A dead node
       refuses connections at once: no wait comes of it. */
    o.connect_timeout_ms = 1000;
    o.command_timeout_ms = 1000;
    tc_cache *c = NULL;
    return tc_open(&c, &o) == TC_OK ? c : NULL;
}

static tc_stats_info stats_of(tc_cache *c)
{
    tc_stats_info s;
    tc_stats(c, &s);
    return s;
}

/* The slot of a tiercache key: that of "<ns>:{<key>}". */
static unsigned slot_of(const char *ns, const char *key)
{
    char rkey[256];
    int n = snprintf(rkey, sizeof rkey, "%s:{%s}", ns, key);
    return th_cluster_slot(rkey, (size_t)n);
}

/* The slot map, from one CLUSTER SLOTS (free it). */
static th_redis **owners(void)
{
    th_redis **map = calloc(SLOTS, sizeof *map);
    CU_ASSERT_PTR_NOT_NULL_FATAL(map);
    CU_ASSERT_FATAL(th_cluster_owners(cl, map) == 0);
    return map;
}

/* The distinct masters of the map, in node order; their count. */
static int masters_of(th_redis **map, th_redis **out)
{
    int n = 0;
    for (int i = 0; i < th_cluster_nodes(cl); i++) {
        th_redis *r = th_cluster_node(cl, i);
        for (int s = 0; s < SLOTS; s++)
            if (map[s] == r) {
                out[n++] = r;
                break;
            }
    }
    return n;
}

/* "<prefix><i>" for the first i whose slot m owns. */
static void key_on(th_redis **map, th_redis *m, const char *ns,
                   const char *prefix, char *out, size_t cap)
{
    for (int i = 0;; i++) {
        snprintf(out, cap, "%s%d", prefix, i);
        if (map[slot_of(ns, out)] == m)
            return;
    }
}

/* EXISTS of the tiercache key on a node: 1, 0, or -1 (no answer, or an
   error such as MOVED). */
static int raw_exists(th_redis *r, const char *ns, const char *key)
{
    redisReply *rep = th_redis_cmd(r, "EXISTS %s:{%s}", ns, key);
    int n = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -1;
    if (rep)
        freeReplyObject(rep);
    return n;
}

/* How many keys match the pattern on a node, -1 if it cannot say. */
static long raw_count(th_redis *r, const char *pattern)
{
    redisReply *rep = th_redis_cmd(r, "KEYS %s", pattern);
    long n = rep && rep->type == REDIS_REPLY_ARRAY ? (long)rep->elements : -1;
    if (rep)
        freeReplyObject(rep);
    return n;
}

/* ---- the harness itself ---- */

static void test_harness(void)
{
    static const char *const keys[] = {
        "foo",        "tc:{k1}",       "{user1000}.following",
        "foo{}{bar}", "foo{{bar}}zap", "{}x",
        "a{b",        "a}b{c}",        NULL};
    for (const char *const *k = keys; *k; k++) {
        redisReply *rep =
            th_redis_cmd(th_cluster_node(cl, 0), "CLUSTER KEYSLOT %s", *k);
        CU_ASSERT(rep && rep->type == REDIS_REPLY_INTEGER &&
                  rep->integer == th_cluster_slot(*k, strlen(*k)));
        freeReplyObject(rep);
    }
    CU_ASSERT_EQUAL(th_cluster_nodes(cl), 2 * MASTERS);
    th_redis **map = owners(), *m[2 * MASTERS];
    CU_ASSERT_EQUAL(masters_of(map, m), MASTERS);
    for (int i = 0; i < th_cluster_nodes(cl); i++) {
        redisReply *rep = th_redis_cmd(th_cluster_node(cl, i), "ROLE");
        CU_ASSERT(rep && rep->type == REDIS_REPLY_ARRAY &&
                  strcmp(rep->element[0]->str,
                         i < MASTERS ? "master" : "slave") == 0);
        freeReplyObject(rep);
    }
    /* a raw key goes with its slot, there and back */
    unsigned slot = th_cluster_slot("raw", 3);
    th_redis *from = map[slot], *to = map[(slot + SLOTS / 2) % SLOTS];
    CU_ASSERT_FATAL(from != to);
    freeReplyObject(th_redis_cmd(from, "SET raw here"));
    CU_ASSERT_EQUAL(th_cluster_migrate(cl, slot, to), 0);
    CU_ASSERT_PTR_EQUAL(th_cluster_owner(cl, slot), to);
    redisReply *rep = th_redis_cmd(to, "GET raw");
    CU_ASSERT(rep && rep->type == REDIS_REPLY_STRING &&
              strcmp(rep->str, "here") == 0);
    freeReplyObject(rep);
    CU_ASSERT_EQUAL(th_cluster_migrate(cl, slot, from), 0);
    CU_ASSERT_PTR_EQUAL(th_cluster_owner(cl, slot), from);
    freeReplyObject(th_redis_cmd(from, "DEL raw"));
    free(map);
}

/* ---- keys on every master ---- */

#define RT_KEYS 1000

static void test_roundtrip(void)
{
    tc_cache *a = open_ns("rt"), *b = open_ns("rt");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    char key[16], val[16], buf[16];
    for (int i = 0; i < RT_KEYS; i++) {
        snprintf(key, sizeof key, "key%d", i);
        snprintf(val, sizeof val, "val%d", i);
        CU_ASSERT_EQUAL(tc_set(a, key, val, strlen(val), 0), TC_OK);
    }
    int good = 0;
    for (int i = 0; i < RT_KEYS; i++) {
        snprintf(key, sizeof key, "key%d", i);
        snprintf(val, sizeof val, "val%d", i);
        good += th_get_str(b, key, buf, sizeof buf) == TC_OK &&
                strcmp(buf, val) == 0;
    }
    CU_ASSERT_EQUAL(good, RT_KEYS);
    CU_ASSERT_EQUAL(stats_of(b).l2_hits, RT_KEYS); /* b read Redis */
    /* "<ns>:{}x}" has an empty hash tag: its lease would hash elsewhere,
       so such keys are refused on a cluster; "x}y" keeps tag "x" */
    CU_ASSERT_EQUAL(tc_set(a, "}x", "v", 1, 0), TC_EINVAL);
    CU_ASSERT_EQUAL(th_get_str(a, "}x", buf, sizeof buf), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_set(a, "x}y", "v", 1, 0), TC_OK);
    CU_ASSERT_EQUAL(th_get_str(b, "x}y", buf, sizeof buf), TC_OK);
    /* a command of one word has no key to route by (it read past argv,
       which ASan sees): some node answers it */
    const char *ping[] = {"PING"};
    size_t ping_len[] = {4};
    CU_ASSERT_EQUAL(
        tc__l2_argv(a->l2, 1, ping, ping_len, tc__l2_reply_ok, NULL), TC_OK);

    /* A password the nodes refuse: no map, and health says refused (not
       unreachable), with the server's words and never the password. */
    tc_options o;
    th_cluster_options(cl, &o);
    snprintf(o.redis_password, sizeof o.redis_password, "s3cr3t-pw");
    tc_cache *bad = NULL;
    CU_ASSERT_EQUAL_FATAL(tc_open(&bad, &o), TC_OK);
    tc_health_info h;
    tc_health(bad, &h);
    CU_ASSERT_EQUAL(h.l2_connected, 0);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_AUTH);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "AUTH"));
    CU_ASSERT_PTR_NULL(strstr(h.last_error, "s3cr3t"));
    CU_ASSERT_EQUAL(th_get_str(bad, "key1", buf, sizeof buf), TC_MISS);
    tc_close(bad);
    o.strict = 1;
    CU_ASSERT_EQUAL(tc_open(&bad, &o), TC_EREFUSED);

    /* each key on its slot's master; every master holds some */
    th_redis **map = owners(), *m[2 * MASTERS];
    int nm = masters_of(map, m), placed = 0, per[2 * MASTERS] = {0};
    for (int i = 0; i < RT_KEYS; i++) {
        snprintf(key, sizeof key, "key%d", i);
        th_redis *owner = map[slot_of("rt", key)];
        placed += raw_exists(owner, "rt", key) == 1;
        for (int j = 0; j < nm; j++)
            per[j] += m[j] == owner;
    }
    CU_ASSERT_EQUAL(placed, RT_KEYS);
    for (int j = 0; j < nm; j++)
        CU_ASSERT(per[j] > RT_KEYS / 6);
    fprintf(stderr, "  keys per master: %d %d %d\n", per[0], per[1], per[2]);
    free(map);
    tc_close(a);
    tc_close(b);
}

/* ---- a peer process with a cache of its own (peer.h) ---- */

static tc_cache *peer_open(void *ud)
{
    return open_ns(ud);
}

static int peer_start(th_peer *p, const char *ns)
{
    th_peer_conf conf = {
        .open = peer_open, .wait_ms = BOUND_MS, .ud = (void *)ns};
    return th_peer_start(p, &conf);
}

/* A write or delete here reaches the peer's L1, for a key on each
   master. */
static void test_coherence(void)
{
    th_peer b = {0}; /* forked first: this process has no threads yet */
    CU_ASSERT_FATAL(peer_start(&b, "coh") == 0);
    tc_cache *a = open_ns("coh");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    th_redis **map = owners(), *m[2 * MASTERS];
    int nm = masters_of(map, m);
    CU_ASSERT_EQUAL(nm, MASTERS);
    for (int j = 0; j < nm; j++) {
        char key[32];
        key_on(map, m[j], "coh", "c", key, sizeof key);
        CU_ASSERT_EQUAL(tc_set(a, key, "one", 3, 0), TC_OK);
        CU_ASSERT(atol(th_peer_ask(&b, "W %s one", key)) >= 0);
        CU_ASSERT_STRING_EQUAL(th_peer_ask(&b, "H %s", key), "1");
        CU_ASSERT_EQUAL(tc_set(a, key, "two", 3, 0), TC_OK);
        CU_ASSERT(atol(th_peer_ask(&b, "W %s two", key)) >= 0);
        CU_ASSERT_STRING_EQUAL(th_peer_ask(&b, "H %s", key), "1");
        CU_ASSERT_EQUAL(tc_del(a, key), TC_OK);
        CU_ASSERT_EQUAL(raw_exists(m[j], "coh", key), 0);
        CU_ASSERT(atol(th_peer_ask(&b, "W %s -", key)) >= 0);
        /* the peer writes, this process had it in its L1 */
        CU_ASSERT_STRING_EQUAL(th_peer_ask(&b, "S %s three", key), "0");
        CU_ASSERT(th_wait_value(a, key, "three", BOUND_MS) >= 0);
        CU_ASSERT_STRING_EQUAL(th_peer_ask(&b, "D %s", key), "0");
        CU_ASSERT(th_wait_value(a, key, NULL, BOUND_MS) >= 0);
    }
    free(map);
    CU_ASSERT_EQUAL(th_peer_stop(&b), 0);
    tc_close(a);
}

/* ---- a reconnect: the L1 revalidated node by node ---- */

#define RV_PER 4 /* keys per master; the first is changed unseen */
static void test_revalidate(void)
{
    tc_cache *a = open_ns("rvc");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    th_redis **map = owners(), *m[2 * MASTERS];
    int nm = masters_of(map, m);
    CU_ASSERT_EQUAL_FATAL(nm, MASTERS);
    char keys[MASTERS][RV_PER][32], buf[32];
    for (int j = 0; j < nm; j++)
        for (int i = 0; i < RV_PER; i++) {
            char prefix[16];
            snprintf(prefix, sizeof prefix, "m%dk%d_", j, i);
            key_on(map, m[j], "rvc", prefix, keys[j][i], sizeof keys[j][i]);
            CU_ASSERT_EQUAL(tc_set(a, keys[j][i], "old", 3, 0), TC_OK);
        }
    usleep(100 * 1000); /* the echoes of our own writes */
    for (int j = 0; j < nm; j++)
        for (int i = 0; i < RV_PER; i++)
            CU_ASSERT(th_get_str(a, keys[j][i], buf, sizeof buf) == TC_OK);
    CU_ASSERT_EQUAL(stats_of(a).l1_entries, MASTERS * RV_PER);
    /* every node's link cut, with a change no message reports */
    for (int j = 0; j < nm; j++) {
        char rkey[64];
        snprintf(rkey, sizeof rkey, "rvc:{%s}", keys[j][0]);
        CU_ASSERT_EQUAL(th_kill_links_and_set(m[j], rkey, "new"), 0);
    }
    uint64_t t0 = th_now_ms();
    tc_stats_info s;
    do {
        usleep(2000);
        s = stats_of(a);
    } while ((s.l1_revalidated < MASTERS * (RV_PER - 1) ||
              s.l1_revalidate_drops < MASTERS || !s.coherent) &&
             th_now_ms() - t0 < BOUND_MS);
    /* (at least: a revalidation between two kills counts its entries
       again at the next) */
    CU_ASSERT(s.l1_revalidated >= MASTERS * (RV_PER - 1));
    CU_ASSERT(s.l1_revalidate_drops >= MASTERS);
    /* the kept ones from the L1, the changed ones from Redis */
    uint64_t l2 = s.l2_hits;
    for (int j = 0; j < nm; j++)
        for (int i = 0; i < RV_PER; i++) {
            CU_ASSERT(th_get_str(a, keys[j][i], buf, sizeof buf) == TC_OK);
            CU_ASSERT_STRING_EQUAL(buf, i ? "old" : "new");
        }
    CU_ASSERT_EQUAL(stats_of(a).l2_hits - l2, MASTERS);
    free(map);
    tc_close(a);
}

/* ---- tc_fetch: one computation per key, two processes x 4 threads ---- */

#define ST_PROCS 2
#define ST_THREADS 4
#define ST_ALL (ST_PROCS * ST_THREADS)
#define COMPUTE_MS 100

typedef struct st_shared {
    char keys[MASTERS][32]; /* one key per master */
    atomic_int arrived[MASTERS];
    atomic_int computes[MASTERS];
    atomic_int good[MASTERS]; /* fetches that returned the right value */
} st_shared;

static st_shared *st;

static int slow_compute(void *ud, void **val, size_t *len, uint32_t *ttl_ms)
{
    int k = *(const int *)ud;
    (void)ttl_ms;
    atomic_fetch_add(&st->computes[k], 1);
    usleep(COMPUTE_MS * 1000);
    char *v = malloc(16);
    if (!v)
        return -1;
    *len = (size_t)snprintf(v, 16, "value%d", k);
    *val = v;
    return 0;
}

/* Every thread of both processes arrives, then all fetch at once
   (bounded: a missing thread costs a stampede, not a hang). */
static void *stampede_thread(void *p)
{
    tc_cache *c = p;
    for (int k = 0; k < MASTERS; k++) {
        atomic_fetch_add(&st->arrived[k], 1);
        for (uint64_t t0 = th_now_ms();
             atomic_load(&st->arrived[k]) < ST_ALL && th_now_ms() - t0 < 5000;)
            usleep(500);
        tc_value *v = NULL;
        char want[16];
        snprintf(want, sizeof want, "value%d", k);
        if (tc_fetch(c, st->keys[k], 0, slow_compute, &k, &v) == TC_OK &&
            tc_value_len(v) == strlen(want) &&
            memcmp(tc_value_data(v), want, strlen(want)) == 0)
            atomic_fetch_add(&st->good[k], 1);
        tc_value_release(v);
    }
    return NULL;
}

static int stampede_proc(void)
{
    tc_cache *c = open_ns("st");
    if (!c)
        return 3;
    pthread_t t[ST_THREADS];
    for (int i = 0; i < ST_THREADS; i++)
        pthread_create(&t[i], NULL, stampede_thread, c);
    for (int i = 0; i < ST_THREADS; i++)
        pthread_join(t[i], NULL);
    tc_close(c);
    return 0;
}

static void test_fetch_stampede(void)
{
    st = mmap(NULL, sizeof *st, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(st != MAP_FAILED);
    memset(st, 0, sizeof *st);
    th_redis **map = owners(), *m[2 * MASTERS];
    CU_ASSERT_FATAL(masters_of(map, m) == MASTERS);
    for (int k = 0; k < MASTERS; k++)
        key_on(map, m[k], "st", "f", st->keys[k], sizeof st->keys[k]);
    free(map);
    pid_t kids[ST_PROCS];
    for (int i = 0; i < ST_PROCS; i++) {
        kids[i] = fork();
        if (kids[i] == 0)
            _exit(stampede_proc());
    }
    for (int i = 0; i < ST_PROCS; i++) {
        int status = 0;
        waitpid(kids[i], &status, 0);
        CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int k = 0; k < MASTERS; k++) {
        fprintf(stderr, "  key %s: %d computation(s), %d/%d right values\n",
                st->keys[k], atomic_load(&st->computes[k]),
                atomic_load(&st->good[k]), ST_ALL);
        CU_ASSERT_EQUAL(atomic_load(&st->computes[k]), 1);
        CU_ASSERT_EQUAL(atomic_load(&st->good[k]), ST_ALL);
    }
    munmap(st, sizeof *st);
}

/* ---- tc_del_prefix and tc_flush on every master ---- */

#define PF_KEYS 60

/* Keys "pf:{<prefix>*" on each master: the fewest on any of them, and
   the most (LONG_MAX when one does not answer). */
static void count_on(th_redis *const *m, int nm, const char *prefix,
                     long *least, long *most)
{
    char pattern[32];
    snprintf(pattern, sizeof pattern, "pf:{%s*", prefix);
    *least = LONG_MAX;
    *most = 0;
    for (int j = 0; j < nm; j++) {
        long n = raw_count(m[j], pattern);
        if (n < 0)
            n = LONG_MAX;
        *least = n < *least ? n : *least;
        *most = n > *most ? n : *most;
    }
}

static long fewest(th_redis *const *m, int nm, const char *prefix)
{
    long least, most;
    count_on(m, nm, prefix, &least, &most);
    return least == LONG_MAX ? -1 : least;
}

static long most(th_redis *const *m, int nm, const char *prefix)
{
    long least, top;
    count_on(m, nm, prefix, &least, &top);
    return top;
}

static void test_prefix_and_flush(void)
{
    tc_cache *a = open_ns("pf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    th_redis **map = owners(), *m[2 * MASTERS];
    int nm = masters_of(map, m);
    free(map);
    char key[16], buf[16];
    for (int i = 0; i < PF_KEYS; i++) {
        snprintf(key, sizeof key, "p:%d", i);
        CU_ASSERT_EQUAL(tc_set(a, key, "p", 1, 0), TC_OK);
        snprintf(key, sizeof key, "q:%d", i);
        CU_ASSERT_EQUAL(tc_set(a, key, "q", 1, 0), TC_OK);
    }
    CU_ASSERT(fewest(m, nm, "p:") > 0); /* every master has some */
    CU_ASSERT(fewest(m, nm, "q:") > 0);

    CU_ASSERT_EQUAL(tc_del_prefix(a, "p:"), TC_OK);
    CU_ASSERT_EQUAL(most(m, nm, "p:"), 0);
    CU_ASSERT(fewest(m, nm, "q:") > 0);
    tc_cache *b = open_ns("pf");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    int misses = 0, hits = 0;
    for (int i = 0; i < PF_KEYS; i++) {
        snprintf(key, sizeof key, "p:%d", i);
        misses += th_get_str(a, key, buf, sizeof buf) == TC_MISS;
        snprintf(key, sizeof key, "q:%d", i);
        hits += th_get_str(b, key, buf, sizeof buf) == TC_OK;
    }
    CU_ASSERT_EQUAL(misses, PF_KEYS);
    CU_ASSERT_EQUAL(hits, PF_KEYS);

    CU_ASSERT_EQUAL(tc_flush(a), TC_OK);
    CU_ASSERT_EQUAL(most(m, nm, ""), 0); /* nothing of the namespace */
    CU_ASSERT(th_wait_value(b, "q:0", NULL, BOUND_MS) >= 0);
    tc_close(a);
    tc_close(b);
}

/* ---- a slot migrated under load ---- */

#define MG_KEYS 8
#define MG_WRITERS 2 /* each writes MG_KEYS / MG_WRITERS keys */
#define MG_READERS 2 /* one on each handle */
#define MG_LOG_CAP 50000
#define STALE_MS 250

static char mg_names[MG_KEYS][16];
static atomic_int mg_stop;

typedef struct mg_arg {
    tc_cache *c;
    th_log *log;
    int writer; /* its number, or -1 for a reader */
    unsigned seed;
} mg_arg;

static void mg_write(const mg_arg *a, int64_t *ver, unsigned r)
{
    int j = (int)(r % (MG_KEYS / MG_WRITERS));
    uint32_t key = (uint32_t)(a->writer * (MG_KEYS / MG_WRITERS) + j);
    int64_t v = ver[j] + 1;
    int del = v % 10 == 0;
    th_op *op = th_log_begin(a->log, key, del ? TH_OP_DEL : TH_OP_SET);
    if (!op)
        return;
    ver[j] = v;
    char val[24];
    snprintf(val, sizeof val, "%lld", (long long)v);
    int rc = del ? tc_del(a->c, mg_names[key])
                 : tc_set(a->c, mg_names[key], val, strlen(val), 0);
    th_log_end(a->log, op, rc, v);
}

static void mg_read(const mg_arg *a, unsigned r)
{
    uint32_t key = r % MG_KEYS;
    th_op *op = th_log_begin(a->log, key, TH_OP_GET);
    if (!op)
        return;
    tc_value *v = NULL;
    int rc = tc_get(a->c, mg_names[key], &v);
    th_log_end(a->log, op, rc,
               rc == TC_OK ? th_hist_version(tc_value_data(v), tc_value_len(v))
                           : 0);
    tc_value_release(v);
}

static void *mg_thread(void *p)
{
    const mg_arg *a = p;
    int64_t ver[MG_KEYS] = {0};
    unsigned r = a->seed;
    while (!atomic_load(&mg_stop) && a->log->n < a->log->cap) {
        r = r * 1103515245u + 12345u;
        /* Writers pace themselves so that a few writes of a key fall in
           STALE_MS: a miss is excused by a delete in that window. */
        if (a->writer >= 0) {
            mg_write(a, ver, r >> 8);
            usleep(10000 + (r >> 4) % 20000);
        } else {
            mg_read(a, r >> 8);
            usleep((r >> 4) % 2000);
        }
    }
    return NULL;
}

/* MG_KEYS keys of namespace "mg" in one slot; returns the slot. */
static unsigned find_keys_in_one_slot(void)
{
    unsigned slot = slot_of("mg", "m0");
    int n = 0;
    for (int i = 0; n < MG_KEYS; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        if (slot_of("mg", name) == slot)
            snprintf(mg_names[n++], sizeof mg_names[0], "%s", name);
    }
    return slot;
}

static void pause_mid_migration(void *ud)
{
    (void)ud;
    usleep(500 * 1000); /* the load meets ASK redirects */
}

/* After the run: each key's last write is what the new owner holds. */
static void check_final(th_log *const *logs, th_redis *from, th_redis *to)
{
    tc_cache *c = open_ns("mg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (uint32_t k = 0; k < MG_KEYS; k++) {
        const th_log *l = logs[k / (MG_KEYS / MG_WRITERS)];
        const th_op *last = NULL;
        for (uint32_t i = 0; i < l->n; i++)
            if (l->ops[i].key == k)
                last = &l->ops[i];
        CU_ASSERT_PTR_NOT_NULL_FATAL(last);
        int set = last->kind == TH_OP_SET;
        char want[24], buf[24];
        snprintf(want, sizeof want, "%lld", (long long)last->ver);
        CU_ASSERT_EQUAL(raw_exists(to, "mg", mg_names[k]), set);
        CU_ASSERT(raw_exists(from, "mg", mg_names[k]) != 1);
        CU_ASSERT_EQUAL(th_get_str(c, mg_names[k], buf, sizeof buf),
                        set ? TC_OK : TC_MISS);
        if (set)
            CU_ASSERT_STRING_EQUAL(buf, want);
    }
    tc_close(c);
}

static void test_migrate_under_load(void)
{
    unsigned slot = find_keys_in_one_slot();
    th_redis **map = owners(), *m[2 * MASTERS];
    int nm = masters_of(map, m);
    th_redis *from = map[slot], *to = m[0] == from ? m[1] : m[0];
    free(map);
    CU_ASSERT_FATAL(nm >= 2);
    tc_cache *a = open_ns("mg"), *b = open_ns("mg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);

    enum { N = MG_WRITERS + MG_READERS };
    th_log *logs[N];
    mg_arg args[N];
    pthread_t t[N];
    atomic_store(&mg_stop, 0);
    for (int i = 0; i < N; i++) {
        logs[i] = th_log_new(MG_LOG_CAP, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(logs[i]);
        /* writers on a; one reader on a, one on b */
        args[i] = (mg_arg){i == N - 1 ? b : a, logs[i],
                           i < MG_WRITERS ? i : -1, 7u + 7919u * (unsigned)i};
        pthread_create(&t[i], NULL, mg_thread, &args[i]);
    }
    usleep(300 * 1000);
    uint64_t t0 = th_now_ms();
    int rc = th_cluster_migrate_hook(cl, slot, to, pause_mid_migration, NULL);
    fprintf(stderr, "  slot %u moved in %llu ms\n", slot,
            (unsigned long long)(th_now_ms() - t0));
    usleep(500 * 1000);
    atomic_store(&mg_stop, 1);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_EQUAL(th_cluster_owner(cl, slot), to);

    th_hist_result res;
    th_hist_check(logs, N, MG_KEYS, 0, STALE_MS, &res);
    th_hist_print("migration load", &res);
    /* a redirect is followed, never a call served without Redis */
    uint64_t degraded = stats_of(a).degraded_ops + stats_of(b).degraded_ops;
    fprintf(stderr, "  calls served without redis: %llu\n",
            (unsigned long long)degraded);
    CU_ASSERT_EQUAL(degraded, 0);
    CU_ASSERT_EQUAL(res.errors, 0);
    CU_ASSERT_EQUAL(res.broken, 0);
    CU_ASSERT_EQUAL(res.stale, 0);
    CU_ASSERT_EQUAL(res.lost, 0);
    CU_ASSERT(res.writes > 20);
    CU_ASSERT(res.checked > 20);
    check_final(logs, from, to);
    for (int i = 0; i < N; i++)
        th_log_free(logs[i]);
    tc_close(a);
    tc_close(b);
}

/* ---- tc_mget: a pipeline per master ---- */

#define MGET_KEYS 300

static void test_mget(void)
{
    tc_cache *a = open_ns("mget"), *b = open_ns("mget");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    static char names[MGET_KEYS + 1][16];
    const char *keys[MGET_KEYS + 1];
    char val[16];
    for (int i = 0; i < MGET_KEYS; i++) {
        snprintf(names[i], sizeof names[i], "mg%d", i);
        keys[i] = names[i];
        snprintf(val, sizeof val, "val%d", i);
        CU_ASSERT_EQUAL(tc_set(a, keys[i], val, strlen(val), 0), TC_OK);
    }
    keys[MGET_KEYS] = "mg-none"; /* a miss among them */
    /* One key's slot moves after b learned the map: its GET is
       redirected, and goes again alone. */
    th_redis **map = owners();
    unsigned slot = slot_of("mget", keys[0]);
    th_redis *from = map[slot], *to = NULL;
    for (int s = 0; s < SLOTS && !to; s++)
        if (map[s] != from)
            to = map[s];
    CU_ASSERT_FATAL(to != NULL);
    tc_value *out[MGET_KEYS + 1];
    int sts[MGET_KEYS + 1];
    CU_ASSERT_EQUAL(tc_mget(b, keys + 1, 1, out, sts), TC_OK); /* map */
    tc_value_release(out[0]);
    CU_ASSERT_EQUAL(th_cluster_migrate(cl, slot, to), 0);
    tc_stats_info s0 = stats_of(b);
    CU_ASSERT_EQUAL(tc_mget(b, keys, MGET_KEYS + 1, out, sts), TC_OK);
    int good = 0;
    for (int i = 0; i < MGET_KEYS; i++) {
        snprintf(val, sizeof val, "val%d", i);
        good += sts[i] == TC_OK && tc_value_len(out[i]) == strlen(val) &&
                memcmp(tc_value_data(out[i]), val, strlen(val)) == 0;
    }
    CU_ASSERT_EQUAL(good, MGET_KEYS);
    CU_ASSERT_EQUAL(sts[MGET_KEYS], TC_MISS);
    /* keys[1] was in b's L1 already */
    CU_ASSERT_EQUAL(stats_of(b).l2_hits - s0.l2_hits, MGET_KEYS - 1);
    for (int i = 0; i <= MGET_KEYS; i++)
        tc_value_release(out[i]);
    CU_ASSERT_EQUAL(th_cluster_migrate(cl, slot, from), 0);
    free(map);
    tc_close(a);
    tc_close(b);
}

/* ---- a master killed ---- */

#define MK_KEYS 60
#define DEGRADED_MS 2500 /* past the failure detection, into the election */

typedef struct mk_keys {
    char name[MK_KEYS][16];
    int on_victim[MK_KEYS];
    int nvictim, nlive;
} mk_keys;

/* Keys on the victim read as a miss or a value and take writes; then a
   fresh handle, with the victim's failures behind it, reads every other
   master's keys from Redis. Returns the failures it saw. */
static int degraded_round(tc_cache *a, const mk_keys *k)
{
    int bad = 0, live = 0;
    char buf[16];
    for (int i = 0; i < MK_KEYS; i++) {
        if (!k->on_victim[i])
            continue;
        int rc = th_get_str(a, k->name[i], buf, sizeof buf);
        bad += rc != TC_OK && rc != TC_MISS;
        bad += tc_set(a, k->name[i], "v2", 2, 0) != TC_OK;
    }
    /* a has deletes queued for the victim's slots: they must not hold
       back its calls for the other masters' keys. A delete of a live key
       reaches Redis at once (not queued behind them). */
    for (int i = 0; i < MK_KEYS; i++) {
        if (k->on_victim[i])
            continue;
        th_redis *owner = th_cluster_owner(cl, slot_of("mk", k->name[i]));
        bad += tc_del(a, k->name[i]) != TC_OK;
        if (owner && raw_exists(owner, "mk", k->name[i]) != 0) {
            fprintf(stderr, "  %s: deleted through a, still in Redis\n",
                    k->name[i]);
            bad++;
        }
        bad += tc_set(a, k->name[i], "v1", 2, 0) != TC_OK;
        break;
    }
    tc_cache *b = open_ns("mk");
    if (!b)
        return bad + 1;
    for (int i = 0; i < MK_KEYS; i++) /* the victim's first: failures */
        if (k->on_victim[i])
            th_get_str(b, k->name[i], buf, sizeof buf);
    for (int i = 0; i < MK_KEYS; i++) {
        if (k->on_victim[i])
            continue;
        live++;
        int rc = th_get_str(b, k->name[i], buf, sizeof buf);
        if (rc != TC_OK || strcmp(buf, "v1") != 0) {
            tc_health_info h;
            tc_health(b, &h);
            fprintf(stderr, "  %s on a live master: %s, \"%s\" (%s)\n",
                    k->name[i], tc_err_name(rc), buf, h.last_error);
            bad++;
        }
    }
    bad += stats_of(b).l2_hits < (uint64_t)live;
    tc_close(b);
    return bad;
}

/* Polls until a write through a to a victim's key is read from Redis
   by c. Returns when (ms), or 0 past the deadline. */
static uint64_t wait_back(tc_cache *a, tc_cache *c, const char *key,
                          uint64_t deadline)
{
    for (int i = 0; th_now_ms() < deadline; i++) {
        char val[16], buf[16];
        snprintf(val, sizeof val, "r%d", i);
        uint64_t hits = stats_of(c).l2_hits;
        CU_ASSERT_EQUAL(tc_set(a, key, val, strlen(val), 0), TC_OK);
        int rc = th_get_str(c, key, buf, sizeof buf);
        CU_ASSERT(rc == TC_OK || rc == TC_MISS);
        if (rc == TC_OK && strcmp(buf, val) == 0 && stats_of(c).l2_hits > hits)
            return th_now_ms();
        usleep(50 * 1000);
    }
    return 0;
}

static void classify(mk_keys *k, th_redis *victim)
{
    th_redis **map = owners();
    memset(k, 0, sizeof *k);
    for (int i = 0; i < MK_KEYS; i++) {
        snprintf(k->name[i], sizeof k->name[i], "d%d", i);
        k->on_victim[i] = map[slot_of("mk", k->name[i])] == victim;
        k->nvictim += k->on_victim[i];
    }
    k->nlive = MK_KEYS - k->nvictim;
    free(map);
}

/* While the master is down (through its failure detection and into the
   election), rounds of degraded_round, 20 ms apart: a's queue of deletes
   for its failed writes stays well under replay_max. */
static void while_down(tc_cache *a, const mk_keys *k, uint64_t t_kill)
{
    int rounds = 0, bad = 0;
    while (th_now_ms() - t_kill < DEGRADED_MS) {
        uint64_t t0 = th_now_ms();
        bad += degraded_round(a, k);
        CU_ASSERT(th_now_ms() - t0 < CALL_BOUND_MS * 2);
        rounds++;
        usleep(20 * 1000);
    }
    fprintf(stderr, "  %d rounds while the master was down: %d failures\n",
            rounds, bad);
    CU_ASSERT_EQUAL(bad, 0);
}

/* Every key of the victim's slots takes a write and is read back by c
   from its slot's new master. */
static void all_back(const mk_keys *k, th_redis *victim, tc_cache *c)
{
    tc_cache *w = open_ns("mk");
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    th_redis *now = th_cluster_owner(cl, slot_of("mk", k->name[0]));
    CU_ASSERT(now != NULL && now != victim);
    for (int i = 0; i < MK_KEYS; i++) {
        if (!k->on_victim[i])
            continue;
        CU_ASSERT_EQUAL(tc_set(w, k->name[i], "v3", 2, 0), TC_OK);
        CU_ASSERT(th_wait_value(c, k->name[i], "v3", BOUND_MS) >= 0);
        th_redis *owner = th_cluster_owner(cl, slot_of("mk", k->name[i]));
        CU_ASSERT_EQUAL(raw_exists(owner, "mk", k->name[i]), 1);
    }
    tc_close(w);
}

static void test_master_killed(void)
{
    th_redis *victim = th_cluster_owner(cl, slot_of("mk", "d0"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(victim);
    mk_keys k;
    classify(&k, victim);
    CU_ASSERT_FATAL(k.nvictim > 0 && k.nlive > 0);
    tc_cache *a = open_ns("mk");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (int i = 0; i < MK_KEYS; i++)
        CU_ASSERT_EQUAL(tc_set(a, k.name[i], "v1", 2, 0), TC_OK);

    uint64_t t_kill = th_now_ms();
    th_redis_kill(victim);
    while_down(a, &k, t_kill);
    CU_ASSERT_FATAL(th_cluster_wait_ok(cl, 20000) == 0);
    uint64_t t_ok = th_now_ms();
    tc_cache *c = open_ns("mk");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    uint64_t t_back = wait_back(a, c, k.name[0], t_ok + 10000);
    fprintf(stderr,
            "  replica took over %llu ms after the kill; its keys back "
            "in the cache %lld ms after that\n",
            (unsigned long long)(t_ok - t_kill),
            t_back ? (long long)(t_back - t_ok) : -1LL);
    CU_ASSERT(t_back != 0 && t_back - t_ok <= 5000);
    /* a's queued deletes for its failed writes would remove later writes
       when replayed (a later miss, by design): they die with it. */
    tc_close(a);
    all_back(&k, victim, c);
    tc_close(c);
}

/* tc_warm scans every master: a second cache gets all of the first's
   keys, whichever node holds them, and serves them from its L1. */
static void test_warm(void)
{
    tc_cache *a = open_ns("cw"), *b = open_ns("cw");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    for (int i = 0; i < 300; i++) {
        char k[32];
        snprintf(k, sizeof(k), "c:%d", i);
        CU_ASSERT_EQUAL(tc_set(a, k, k, strlen(k), 0), TC_OK);
    }
    CU_ASSERT_EQUAL(tc_set(a, "other", "x", 1, 0), TC_OK);
    CU_ASSERT_EQUAL(tc_warm(b, "c:", 0), TC_OK);
    tc_stats_info s = stats_of(b);
    CU_ASSERT_EQUAL(s.l1_warmed, 300);
    for (int i = 0; i < 300; i++) {
        char k[32], got[64];
        snprintf(k, sizeof(k), "c:%d", i);
        CU_ASSERT_EQUAL(th_get_str(b, k, got, sizeof(got)), TC_OK);
        CU_ASSERT_STRING_EQUAL(got, k);
    }
    s = stats_of(b);
    CU_ASSERT_EQUAL(s.l1_hits, 300);
    CU_ASSERT_EQUAL(s.l2_hits, 0);
    tc_close(b);
    tc_close(a);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a dead peer fails its test, not the run */
    static const th_test tests[] = {
        {"harness", test_harness},
        {"roundtrip", test_roundtrip},
        {"coherence", test_coherence},
        {"revalidate", test_revalidate},
        {"fetch_stampede", test_fetch_stampede},
        {"prefix_and_flush", test_prefix_and_flush},
        {"migrate_under_load", test_migrate_under_load},
        {"mget", test_mget},
        {"warm", test_warm},
        {"master_killed", test_master_killed}, /* last: a node is gone */
        {NULL, NULL},
    };
    cl = th_cluster_start(MASTERS, 1);
    if (!cl)
        return 1;
    int rc = th_run("cluster", tests);
    th_cluster_stop(cl);
    return rc;
}
