/* SPDX-License-Identifier: BSD-3-Clause */
/* tc_fetch: stampedes (threads and processes), stale sets, a lease
   holder killed mid-compute, early refresh, failures, negative results,
   TC_CACHED, the store script. Beside each stampede count, the count a
   naive get-then-set cache-aside gives on the same load. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "lease.h"
#include "harness.h"

static long long raw_int(const char *fmt, const char *arg)
{
    redisReply *r = th_redis_cmd(th_srv, fmt, arg);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else if (r && r->type == REDIS_REPLY_NIL)
        v = 0;
    freeReplyObject(r);
    return v;
}

/* ---- a slow computation that counts itself, in Redis (so that several
   processes count together) ---- */

typedef struct slow {
    const char *counter; /* Redis key counting the runs */
    int ms;              /* how long it takes */
    const char *value;
    int fail;
} slow;

static int slow_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    slow *s = ud;
    (void)ttl;
    freeReplyObject(th_redis_cmd(th_srv, "INCR %s", s->counter));
    usleep((useconds_t)s->ms * 1000);
    if (s->fail)
        return -1;
    *val = strdup(s->value);
    *len = strlen(s->value);
    return 0;
}

typedef struct caller {
    tc_cache *c;
    slow *s;
    const char *key;
    int naive; /* get, compute on a miss, set: what tc_fetch replaces */
    int rc;
    char got[32];
} caller;

static void *call_fetch(void *arg)
{
    caller *k = arg;
    tc_value *v = NULL;
    if (k->naive) {
        k->rc = tc_get(k->c, k->key, &v);
        if (k->rc == TC_MISS) {
            void *val;
            size_t len;
            uint32_t ttl = 0;
            k->rc = slow_compute(k->s, &val, &len, &ttl);
            tc_set(k->c, k->key, val, len, 0);
            snprintf(k->got, sizeof(k->got), "%.*s", (int)len, (char *)val);
            free(val);
            return NULL;
        }
    } else {
        k->rc = tc_fetch(k->c, k->key, 0, slow_compute, k->s, &v);
    }
    if (v)
        snprintf(k->got, sizeof(k->got), "%.*s", (int)tc_value_len(v),
                 (const char *)tc_value_data(v));
    tc_value_release(v);
    return NULL;
}

/* Released together, so that every caller misses while the first
   computation runs (thread creation is slow under valgrind). */
static pthread_barrier_t start_line;

static void *call_at_start(void *arg)
{
    pthread_barrier_wait(&start_line);
    return call_fetch(arg);
}

/* n threads on one cold key; returns how many got `want` with TC_OK. */
static int crowd(tc_cache *c, slow *s, const char *key, int n, int naive,
                 const char *want)
{
    pthread_t t[64];
    caller k[64];
    pthread_barrier_init(&start_line, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        k[i] = (caller){c, s, key, naive, -99, ""};
        pthread_create(&t[i], NULL, call_at_start, &k[i]);
    }
    int same = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(t[i], NULL);
        same += k[i].rc == TC_OK && strcmp(k[i].got, want) == 0;
    }
    pthread_barrier_destroy(&start_line);
    return same;
}

static void test_stampede_threads(void)
{
    tc_cache *c = th_open(th_srv, "sft", NULL);
    slow s = {"sft:count", 100, "computed", 0};
    CU_ASSERT_EQUAL(crowd(c, &s, "cold", 64, 0, "computed"), 64);
    long long fetch_runs = raw_int("GET %s", "sft:count");
    CU_ASSERT_EQUAL(fetch_runs, 1);
    s.counter = "sft:naive";
    crowd(c, &s, "naive", 64, 1, "computed");
    long long naive_runs = raw_int("GET %s", "sft:naive");
    fprintf(stderr,
            "  64 threads, one cold key: tc_fetch computed %lld time(s), "
            "naive cache-aside %lld\n",
            fetch_runs, naive_runs);
    CU_ASSERT(naive_runs > 1); /* the comparison shows a real stampede */
    tc_close(c);
}

/* 4 processes x 16 threads, forked before any cache exists, each with a
   cache of its own. */
static long long stampede_procs(const char *ns, const char *counter, int naive)
{
    pid_t kids[4];
    for (int p = 0; p < 4; p++) {
        kids[p] = fork();
        if (kids[p] == 0) {
            tc_options o;
            th_options(th_srv, &o);
            snprintf(o.ns, sizeof(o.ns), "%s", ns);
            tc_cache *c = NULL;
            if (tc_open(&c, &o) != TC_OK)
                _exit(3);
            slow s = {counter, 100, "shared", 0};
            int ok = crowd(c, &s, "cold", 16, naive, "shared");
            tc_close(c);
            _exit(ok == 16 ? 0 : 1);
        }
    }
    for (int p = 0; p < 4; p++) {
        int st = 0;
        waitpid(kids[p], &st, 0);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    return raw_int("GET %s", counter);
}

static void test_stampede_processes(void)
{
    long long runs = stampede_procs("sfp", "sfp:count", 0);
    long long naive = stampede_procs("sfn", "sfn:count", 1);
    fprintf(stderr,
            "  4 processes x 16 threads, one cold key: tc_fetch computed "
            "%lld time(s), naive cache-aside %lld\n",
            runs, naive);
    CU_ASSERT_EQUAL(runs, 1);
    CU_ASSERT(naive > 1);
}

/* ---- stale set: the source changes and the key is deleted while a
   computation of the old value is under way ---- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_entered, gate_open;
static char source[16] = "old";

static int gated_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    char snap[16];
    snprintf(snap, sizeof(snap), "%s", source); /* read the source */
    pthread_mutex_lock(&gate_mu);
    gate_entered = 1;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    *val = strdup(snap);
    *len = strlen(snap);
    return 0;
}

static void *fetch_gated(void *arg)
{
    caller *k = arg;
    tc_value *v = NULL;
    k->rc = tc_fetch(k->c, k->key, 0, gated_compute, NULL, &v);
    if (v)
        snprintf(k->got, sizeof(k->got), "%s", (const char *)tc_value_data(v));
    tc_value_release(v);
    return NULL;
}

static void test_stale_set(void)
{
    tc_cache *c = th_open(th_srv, "stale", NULL);
    caller k = {c, NULL, "item", 0, -99, ""};
    pthread_t t;
    pthread_create(&t, NULL, fetch_gated, &k);
    pthread_mutex_lock(&gate_mu);
    while (!gate_entered)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    /* the writer: update the source, then invalidate */
    snprintf(source, sizeof(source), "new");
    CU_ASSERT_EQUAL(tc_del(c, "item"), TC_OK);
    pthread_mutex_lock(&gate_mu);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(k.rc, TC_OK);
    CU_ASSERT_STRING_EQUAL(k.got, "old"); /* its caller gets it ... */
    CU_ASSERT_EQUAL(raw_int("EXISTS %s", "stale:{item}"), 0); /* unstored */
    k = (caller){c, NULL, "item", 0, -99, ""};
    fetch_gated(&k); /* the gate is open: computes from the source now */
    CU_ASSERT_STRING_EQUAL(k.got, "new");
    CU_ASSERT_EQUAL(raw_int("EXISTS %s", "stale:{item}"), 1);
    tc_close(c);
}

/* ---- a lease holder dies mid-computation ---- */

static int hang_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    int fd = *(int *)ud;
    (void)val, (void)len, (void)ttl;
    CU_ASSERT(write(fd, "x", 1) == 1); /* tell the parent: lease held */
    for (;;)
        pause();
    return -1;
}

static void lease_600(tc_options *o)
{
    o->lease_ms = 600;
    o->fetch_wait_ms = 60000; /* a hang would show as the bound below */
}

static void lease_600_impatient(tc_options *o)
{
    o->lease_ms = 600;
    o->fetch_wait_ms = 300;
}

static char *lease_token(const char *lkey)
{
    redisReply *r = th_redis_cmd(th_srv, "GET %s", lkey);
    char *t = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return t;
}

/* Waits (bounded) for a byte on fd: 1 if it came. */
static int wait_byte(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    char x;
    return select(fd + 1, &set, NULL, NULL, &tv) == 1 && read(fd, &x, 1) == 1;
}

/* A computation that runs far longer than lease_ms keeps its lease (it is
   renewed), so no second holder computes meanwhile; once its process is
   killed the lease lapses within about one lease_ms and the next caller
   has the value. The child uses the handle its parent opened and used:
   renewal after fork() is part of what is tested. */
static void test_lease_renewed_then_taken_over(void)
{
    tc_cache *c = th_open(th_srv, "renew", lease_600);
    slow warm = {"renew:warm", 1, "warm", 0};
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_fetch(c, "warm", 0, slow_compute, &warm, &v), TC_OK);
    tc_value_release(v); /* the parent's renewal thread runs now */
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    pid_t kid = fork();
    if (kid == 0) {
        tc_fetch(c, "k", 0, hang_compute, &p[1], &v);
        _exit(0);
    }
    CU_ASSERT_FATAL(wait_byte(p[0], 30000));
    char *token = lease_token("renew:{k}:lease");
    CU_ASSERT_PTR_NOT_NULL_FATAL(token);
    /* four leases later, still the child's, still alive */
    usleep(4 * 600 * 1000);
    char *still = lease_token("renew:{k}:lease");
    CU_ASSERT_PTR_NOT_NULL(still);
    CU_ASSERT(still && strcmp(still, token) == 0);
    free(still);
    /* meanwhile nobody else computes: a waiter times out instead */
    tc_cache *other = th_open(th_srv, "renew", lease_600_impatient);
    slow s = {"renew:count", 1, "second", 0};
    CU_ASSERT_EQUAL(tc_fetch(other, "k", 0, slow_compute, &s, &v),
                    TC_ETIMEOUT);
    CU_ASSERT_EQUAL(raw_int("GET %s", "renew:count"), 0);
    tc_close(other);

    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    slow r = {"renew:count", 10, "rescued", 0};
    uint64_t t0 = th_now_ms();
    CU_ASSERT_EQUAL(tc_fetch(c, "k", 0, slow_compute, &r, &v), TC_OK);
    uint64_t waited = th_now_ms() - t0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(memcmp(tc_value_data(v), "rescued", 7), 0);
    tc_value_release(v);
    CU_ASSERT_EQUAL(raw_int("GET %s", "renew:count"), 1);
    /* lease + compute is 610 ms: a generous bound, far below a hang */
    CU_ASSERT(waited < 15000);
    fprintf(stderr, "  renewed lease, holder killed: value after %llu ms\n",
            (unsigned long long)waited);
    free(token);
    close(p[0]);
    close(p[1]);
    tc_close(c);
}

static void short_lease(tc_options *o)
{
    o->lease_ms = 400;
}

static void test_lease_holder_killed(void)
{
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    pid_t kid = fork();
    if (kid == 0) {
        tc_cache *c = th_open(th_srv, "dead", short_lease);
        tc_value *v;
        tc_fetch(c, "k", 0, hang_compute, &p[1], &v);
        _exit(0);
    }
    char x;
    CU_ASSERT_FATAL(read(p[0], &x, 1) == 1);
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    CU_ASSERT_EQUAL(raw_int("EXISTS %s", "dead:{k}:lease"), 1);
    tc_cache *c = th_open(th_srv, "dead", short_lease);
    slow s = {"dead:count", 10, "rescued", 0};
    uint64_t t0 = th_now_ms();
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_fetch(c, "k", 0, slow_compute, &s, &v), TC_OK);
    uint64_t waited = th_now_ms() - t0;
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(memcmp(tc_value_data(v), "rescued", 7), 0);
    CU_ASSERT(waited < 5000); /* no deadlock: within the lease and a bit */
    fprintf(stderr, "  lease holder killed: value after %llu ms (lease %d)\n",
            (unsigned long long)waited, 400);
    tc_value_release(v);
    close(p[0]);
    close(p[1]);
    tc_close(c);
}

/* ---- early refresh ---- */

static void eager(tc_options *o)
{
    o->refresh_beta_milli = 3000;
}

static atomic_int version;

static int versioned_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    usleep(60 * 1000); /* a measurable delta */
    char buf[16];
    snprintf(buf, sizeof(buf), "v%d", atomic_fetch_add(&version, 1));
    *val = strdup(buf);
    *len = strlen(buf);
    return 0;
}

static void test_early_refresh(void)
{
    tc_cache *c = th_open(th_srv, "early", eager);
    int errors = 0, absent = 0;
    tc_value *first = NULL;
    CU_ASSERT_EQUAL(tc_fetch(c, "hot", 600, versioned_compute, NULL, &first),
                    TC_OK);
    tc_value_release(first);
    tc_stats_info s;
    tc_stats(c, &s);
    uint64_t cold_misses = s.l2_misses; /* the first, cold computation */
    uint64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < 2500) {
        tc_value *v = NULL;
        int rc = tc_fetch(c, "hot", 600, versioned_compute, NULL, &v);
        errors += rc != TC_OK;
        absent += v == NULL;
        tc_value_release(v);
        usleep(2000);
    }
    tc_stats(c, &s);
    fprintf(stderr,
            "  early refresh: %d computes in 2.5 s with a 600 ms TTL; "
            "misses in Redis after the first %llu\n",
            atomic_load(&version),
            (unsigned long long)(s.l2_misses - cold_misses));
    CU_ASSERT_EQUAL(errors, 0);
    CU_ASSERT_EQUAL(absent, 0);
    CU_ASSERT(atomic_load(&version) >= 4); /* refreshed, more than once */
    /* only the first, cold fetch found nothing: refreshes came before
       the value expired, so no caller ever waited on a miss after it */
    CU_ASSERT_EQUAL(s.l2_misses, cold_misses);
    tc_close(c);
}

/* ---- failures, timeouts, negative results ---- */

static void test_compute_failure(void)
{
    tc_cache *c = th_open(th_srv, "fail", NULL);
    slow s = {"fail:count", 50, "never", 1};
    CU_ASSERT_EQUAL(crowd(c, &s, "k", 8, 0, "never"), 0);
    CU_ASSERT_EQUAL(raw_int("GET %s", "fail:count"), 1); /* one ran */
    CU_ASSERT_EQUAL(raw_int("EXISTS %s", "fail:{k}"), 0);
    CU_ASSERT_EQUAL(raw_int("EXISTS %s", "fail:{k}:lease"), 0);
    tc_value *v = NULL;
    s.ms = 1;
    CU_ASSERT_EQUAL(tc_fetch(c, "k", 0, slow_compute, &s, &v), TC_ECOMPUTE);
    CU_ASSERT_PTR_NULL(v);
    s.fail = 0;
    CU_ASSERT_EQUAL(tc_fetch(c, "k", 0, slow_compute, &s, &v), TC_OK);
    tc_value_release(v);
    tc_close(c);
}

static void impatient(tc_options *o)
{
    o->fetch_wait_ms = 100;
}

static void test_wait_timeout(void)
{
    tc_cache *c = th_open(th_srv, "late", impatient);
    slow s = {"late:count", 600, "slow", 0};
    pthread_t t;
    caller lead = {c, &s, "k", 0, -99, ""};
    pthread_create(&t, NULL, call_fetch, &lead);
    usleep(100 * 1000);
    caller wait = {c, &s, "k", 0, -99, ""};
    call_fetch(&wait);
    CU_ASSERT_EQUAL(wait.rc, TC_ETIMEOUT);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(lead.rc, TC_OK);
    tc_close(c);
}

static atomic_int lookups;

static int absent_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)val, (void)len, (void)ttl;
    atomic_fetch_add(&lookups, 1);
    return TC_ABSENT;
}

static void short_negative(tc_options *o)
{
    o->negative_ttl_ms = 300;
}

static void test_negative(void)
{
    tc_cache *c = th_open(th_srv, "neg", short_negative);
    tc_value *v = (tc_value *)&v;
    CU_ASSERT_EQUAL(tc_fetch(c, "nobody", 0, absent_compute, NULL, &v),
                    TC_ABSENT);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(tc_fetch(c, "nobody", 0, absent_compute, NULL, &v),
                    TC_ABSENT);
    CU_ASSERT_EQUAL(atomic_load(&lookups), 1); /* cached */
    CU_ASSERT_EQUAL(tc_get(c, "nobody", &v), TC_ABSENT);
    long long pttl = raw_int("PTTL %s", "neg:{nobody}");
    CU_ASSERT(pttl > 0 && pttl <= 300); /* its own, short TTL */
    usleep(400 * 1000);
    CU_ASSERT_EQUAL(tc_fetch(c, "nobody", 0, absent_compute, NULL, &v),
                    TC_ABSENT);
    CU_ASSERT_EQUAL(atomic_load(&lookups), 2);
    /* distinct from a miss */
    CU_ASSERT_EQUAL(tc_get(c, "somebody", &v), TC_MISS);
    tc_close(c);
}

static int get_user(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ttl;
    char buf[32];
    snprintf(buf, sizeof(buf), "user-%lld", (long long)*(int64_t *)ud);
    *val = strdup(buf);
    *len = strlen(buf);
    return 0;
}

static void test_cached_macro(void)
{
    tc_cache *c = th_open(th_srv, "mac", NULL);
    int64_t id = 42;
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(TC_CACHED(c, 300000, get_user, &id, &v, "i", id), TC_OK);
    CU_ASSERT_EQUAL(memcmp(tc_value_data(v), "user-42", 7), 0);
    tc_value_release(v);
    char key[TC_KEY_MAX], rkey[TC_KEY_MAX + 16];
    CU_ASSERT_EQUAL(tc_key(key, sizeof(key), "get_user", "i", id), TC_OK);
    snprintf(rkey, sizeof(rkey), "mac:{%s}", key);
    CU_ASSERT_EQUAL(raw_int("EXISTS %s", rkey), 1);
    long long pttl = raw_int("PTTL %s", rkey);
    CU_ASSERT(pttl > 290000 && pttl <= 300000);
    tc_close(c);
}

/* tc_fetch_from says which tier answered: computed, then this
   process's L1, then (another process's L1 being cold) Redis; with Redis
   gone the computation is not stored. */
static void test_fetch_from(void)
{
    tc_cache *a = th_open(th_srv, "from", NULL),
             *b = th_open(th_srv, "from", NULL);
    int64_t id = 7;
    tc_value *v = NULL;
    int from = -1;
    CU_ASSERT_EQUAL(tc_fetch_from(a, "k", 60000, get_user, &id, &v, &from),
                    TC_OK);
    CU_ASSERT_EQUAL(from, TC_FROM_COMPUTED);
    tc_value_release(v);
    /* In tracking mode a process hears its own write and drops it from
       its L1, whenever that message arrives (under TSan, after a read
       or two has filled the L1 again): reads come from Redis until then,
       and from the L1 once one has filled it after the message. Never
       computed again. */
    int l1 = 0;
    for (int i = 0; i < 100 && !l1; i++) {
        CU_ASSERT_EQUAL(tc_fetch_from(a, "k", 60000, get_user, &id, &v, &from),
                        TC_OK);
        CU_ASSERT(from == TC_FROM_L1 || from == TC_FROM_L2);
        tc_value_release(v);
        l1 = from == TC_FROM_L1;
        if (!l1)
            usleep(10 * 1000);
    }
    CU_ASSERT(l1);
    CU_ASSERT_EQUAL(tc_fetch_from(b, "k", 60000, get_user, &id, &v, &from),
                    TC_OK);
    CU_ASSERT_EQUAL(from, TC_FROM_L2);
    CU_ASSERT_EQUAL(memcmp(tc_value_data(v), "user-7", 6), 0);
    tc_value_release(v);
    CU_ASSERT_EQUAL(tc_fetch_from(b, "k", 60000, NULL, &id, &v, &from),
                    TC_EINVAL);
    CU_ASSERT_EQUAL(from, TC_FROM_NONE);
    CU_ASSERT_EQUAL(tc_fetch_from(b, "k", 60000, get_user, &id, &v, NULL),
                    TC_EINVAL);
    tc_close(a);
    tc_close(b);

    th_redis *gone = th_redis_start();
    CU_ASSERT_FATAL(gone != NULL);
    tc_options o;
    th_options(gone, &o);
    th_redis_kill(gone);
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_EQUAL(tc_fetch_from(c, "k", 60000, get_user, &id, &v, &from),
                    TC_OK);
    CU_ASSERT_EQUAL(from, TC_FROM_UNCACHED);
    tc_value_release(v);
    tc_close(c);
    th_redis_stop(gone);
}

static atomic_int user_computes;

static int count_user(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    atomic_fetch_add(&user_computes, 1);
    return get_user(ud, val, len, ttl);
}

/* TC_UNCACHE deletes the very key TC_CACHED built: the next call computes
   again; another call's key (other arguments) stays. */
static void test_uncache_macro(void)
{
    tc_cache *c = th_open(th_srv, "unc", NULL);
    int id = 7, other = 8; /* plain ints: TC_I64 widens them */
    tc_value *v = NULL;
    atomic_store(&user_computes, 0);
    for (int i = 0; i < 2; i++) {
        int64_t arg = id;
        CU_ASSERT_EQUAL(TC_CACHED(c, 300000, count_user, &arg, &v, "is",
                                  TC_I64(id), TC_STR("eu")),
                        TC_OK);
        tc_value_release(v);
    }
    int64_t arg2 = other;
    CU_ASSERT_EQUAL(TC_CACHED(c, 300000, count_user, &arg2, &v, "is",
                              TC_I64(other), TC_STR("eu")),
                    TC_OK);
    tc_value_release(v);
    CU_ASSERT_EQUAL(atomic_load(&user_computes), 2);

    char key[TC_KEY_MAX], rkey[TC_KEY_MAX + 16];
    CU_ASSERT_EQUAL(
        tc_key(key, sizeof(key), "count_user", "is", TC_I64(id), TC_STR("eu")),
        TC_OK);
    snprintf(rkey, sizeof(rkey), "unc:{%s}", key);
    CU_ASSERT_EQUAL(raw_int("EXISTS %s", rkey), 1);
    CU_ASSERT_EQUAL(TC_UNCACHE(c, count_user, "is", TC_I64(id), TC_STR("eu")),
                    TC_OK);
    CU_ASSERT_EQUAL(raw_int("EXISTS %s", rkey), 0);

    int64_t arg = id;
    CU_ASSERT_EQUAL(TC_CACHED(c, 300000, count_user, &arg, &v, "is",
                              TC_I64(id), TC_STR("eu")),
                    TC_OK);
    CU_ASSERT_EQUAL(memcmp(tc_value_data(v), "user-7", 6), 0);
    tc_value_release(v);
    CU_ASSERT_EQUAL(atomic_load(&user_computes), 3); /* recomputed */
    CU_ASSERT_EQUAL(TC_CACHED(c, 300000, count_user, &arg2, &v, "is",
                              TC_I64(other), TC_STR("eu")),
                    TC_OK);
    tc_value_release(v);
    CU_ASSERT_EQUAL(atomic_load(&user_computes), 3); /* the other stayed */
    /* a bad format is refused before anything is deleted */
    CU_ASSERT_EQUAL(TC_UNCACHE(c, count_user, "x", 1), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_uncached(c, NULL, ""), TC_EINVAL);
    tc_close(c);
}

/* The SHA-1 constants are those of the scripts' bytes, and a server that
   forgot them (SCRIPT FLUSH, a restart) is sent the script again. */
static void test_scripts(void)
{
    redisReply *r = th_redis_cmd(th_srv, "SCRIPT LOAD %s", tc__store_script);
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_STRING);
    CU_ASSERT_STRING_EQUAL(r->str, tc__store_sha);
    freeReplyObject(r);
    r = th_redis_cmd(th_srv, "SCRIPT LOAD %s", tc__release_script);
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_STRING);
    CU_ASSERT_STRING_EQUAL(r->str, tc__release_sha);
    freeReplyObject(r);
    r = th_redis_cmd(th_srv, "SCRIPT LOAD %s", tc__extend_script);
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_STRING);
    CU_ASSERT_STRING_EQUAL(r->str, tc__extend_sha);
    freeReplyObject(r);
    freeReplyObject(th_redis_cmd(th_srv, "SCRIPT FLUSH"));
    tc_cache *c = th_open(th_srv, "scr", NULL);
    slow s = {"scr:count", 1, "stored", 0};
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_fetch(c, "k", 0, slow_compute, &s, &v), TC_OK);
    tc_value_release(v);
    CU_ASSERT_EQUAL(raw_int("EXISTS %s", "scr:{k}"), 1);
    tc_stats_info st;
    tc_stats(c, &st);
    CU_ASSERT_EQUAL(st.backend_errors, 0);
    tc_close(c);
}

/* Group invalidation: one bump retires every key of the family, in
   this process and in another one, without touching other keys. */
static void test_groups(void)
{
    tc_cache *a = th_open(th_srv, "grp", NULL),
             *b = th_open(th_srv, "grp", NULL);
    char k1[TC_KEY_MAX], k2[TC_KEY_MAX], kb[TC_KEY_MAX];
    CU_ASSERT_EQUAL(tc_group_key(a, k1, sizeof(k1), "inv:list:", "q=1"),
                    TC_OK);
    CU_ASSERT_EQUAL(strncmp(k1, "inv:list:@", 10), 0);
    CU_ASSERT_EQUAL(tc_group_key(b, kb, sizeof(kb), "inv:list:", "q=1"),
                    TC_OK);
    CU_ASSERT_STRING_EQUAL(k1, kb); /* one generation for everyone */
    CU_ASSERT_EQUAL(tc_set(a, k1, "page", 4, 0), TC_OK);
    CU_ASSERT_EQUAL(tc_set(a, "user:1", "u", 1, 0), TC_OK);
    CU_ASSERT_EQUAL(tc_group_bump(a, "inv:list:"), TC_OK);
    CU_ASSERT_EQUAL(tc_group_key(a, k2, sizeof(k2), "inv:list:", "q=1"),
                    TC_OK);
    CU_ASSERT_STRING_NOT_EQUAL(k1, k2);
    /* the other process moves too (its cached generation is dropped) */
    int moved = 0;
    for (uint64_t t0 = th_now_ms(); !moved && th_now_ms() - t0 < 3000;) {
        tc_group_key(b, kb, sizeof(kb), "inv:list:", "q=1");
        moved = strcmp(kb, k2) == 0;
        usleep(1000);
    }
    CU_ASSERT(moved);
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_get(b, kb, &v), TC_MISS);
    CU_ASSERT_EQUAL(tc_get(b, "user:1", &v), TC_OK);
    tc_value_release(v);
    /* reserved names, bad arguments */
    CU_ASSERT_EQUAL(tc_set(a, "\x01gen:inv:list:", "x", 1, 0), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_group_key(a, k2, sizeof(k2), "", "x"), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_group_key(a, k2, 12, "inv:list:", "x"), TC_ETOOBIG);
    CU_ASSERT_EQUAL(tc_group_bump(a, NULL), TC_EINVAL);
    tc_close(a);
    tc_close(b);
}

static void strict_on(tc_options *o)
{
    o->strict = 1;
    o->log_level = TC_LOG_OFF;
}

/* A generation key holding bytes that are not a generation: strict mode
   says so (TC_ECODEC) and leaves them; otherwise they are replaced; a
   bump replaces them in either mode. */
static void test_group_corrupt_gen(void)
{
    tc_cache *st = th_open(th_srv, "grpbad", strict_on),
             *lax = th_open(th_srv, "grpbad", NULL);
    redisReply *r = th_redis_cmd(th_srv, "SET %s junk", "grpbad:{\x01gen:g}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    freeReplyObject(r);
    char k[TC_KEY_MAX] = "x";
    CU_ASSERT_EQUAL(tc_group_key(st, k, sizeof(k), "g", "1"), TC_ECODEC);
    CU_ASSERT_STRING_EQUAL(k, "");
    r = th_redis_cmd(th_srv, "GET %s", "grpbad:{\x01gen:g}");
    CU_ASSERT(r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "junk"));
    freeReplyObject(r);
    tc_stats_info s;
    tc_stats(st, &s);
    CU_ASSERT(s.codec_errors >= 1);
    CU_ASSERT_EQUAL(tc_group_key(lax, k, sizeof(k), "g", "1"), TC_OK);
    CU_ASSERT_EQUAL(strncmp(k, "g@", 2), 0);
    CU_ASSERT_EQUAL(tc_group_bump(st, "g"), TC_OK);
    CU_ASSERT_EQUAL(tc_group_key(st, k, sizeof(k), "g", "1"), TC_OK);
    tc_close(st);
    tc_close(lax);
}

/* Redis away: single-flight still holds in the process. */
static void test_stampede_redis_down(void)
{
    th_redis *gone = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(gone);
    th_redis_kill(gone);
    tc_options o;
    th_options(gone, &o);
    o.log_level = TC_LOG_OFF;
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    slow s = {"down:count", 100, "local", 0}; /* counted in th_srv */
    tc_stats_info before, after;
    tc_stats(c, &before);
    CU_ASSERT_EQUAL(crowd(c, &s, "k", 32, 0, "local"), 32);
    tc_stats(c, &after);
    CU_ASSERT_EQUAL(after.computes - before.computes, 1);
    CU_ASSERT_EQUAL(raw_int("GET %s", "down:count"), 1);
    tc_close(c);
    th_redis_stop(gone);
}

int main(void)
{
    static const th_test tests[] = {
        {"stampede_threads", test_stampede_threads},
        {"stampede_processes", test_stampede_processes},
        {"stale_set", test_stale_set},
        {"lease_holder_killed", test_lease_holder_killed},
        {"lease_renewed_then_taken_over", test_lease_renewed_then_taken_over},
        {"early_refresh", test_early_refresh},
        {"compute_failure", test_compute_failure},
        {"wait_timeout", test_wait_timeout},
        {"negative", test_negative},
        {"cached_macro", test_cached_macro},
        {"fetch_from", test_fetch_from},
        {"uncache_macro", test_uncache_macro},
        {"scripts", test_scripts},
        {"stampede_redis_down", test_stampede_redis_down},
        {"groups", test_groups},
        {"group_corrupt_gen", test_group_corrupt_gen},
        {NULL, NULL},
    };
    return th_run_redis("fetch", tests);
}
