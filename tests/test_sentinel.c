/* SPDX-License-Identifier: BSD-3-Clause */
/* Redis Sentinel: the master found through a private sentinel group, by
   the fields and by the environment; a wrong master name and wrong
   sentinel passwords reported in tc_health; and a failover under load in
   two processes: no failed call, the cache back on the new master soon
   after the sentinels switch, no stale read once it is, and coherence
   between the processes on the new master. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"
#include "history.h"
#include "peer.h"

#define BOUND_MS 3000      /* generous: how long a change may take to show */
#define CALL_BOUND_MS 2000 /* generous: one call while Redis is away */

static th_sentinel *sg; /* the program's group, master name "mymaster" */

static tc_cache *open_ns(const char *ns)
{
    tc_options o;
    th_sentinel_options(sg, &o);
    snprintf(o.ns, sizeof o.ns, "%s", ns);
    /* Generous: the tests assert that no call fails, and a loaded
       machine (or valgrind) can take 100 ms to answer. A dead node
       refuses connections at once: no wait comes of it. */
    o.connect_timeout_ms = 1000;
    o.command_timeout_ms = 1000;
    tc_cache *c = NULL;
    return tc_open(&c, &o) == TC_OK ? c : NULL;
}

static tc_health_info health_of(tc_cache *c)
{
    tc_health_info h;
    tc_health(c, &h);
    return h;
}

static tc_stats_info stats_of(tc_cache *c)
{
    tc_stats_info s;
    tc_stats(c, &s);
    return s;
}

/* EXISTS of the tiercache key on a data node: 1, 0, or -1 (no answer). */
static int raw_exists(th_redis *r, const char *ns, const char *key)
{
    redisReply *rep = th_redis_cmd(r, "EXISTS %s:{%s}", ns, key);
    int n = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -1;
    if (rep)
        freeReplyObject(rep);
    return n;
}

/* The master now, or the failing test's message. */
static th_redis *master_now(void)
{
    th_redis *m = th_sentinel_current_master(sg);
    if (!m)
        fprintf(stderr, "  no data node is a master\n");
    return m;
}

/* 1 if the text names one of the words, in any case. */
static int mentions(const char *text, const char *const *words)
{
    for (; *words; words++)
        if (strcasestr(text, *words))
            return 1;
    return 0;
}

/* ---- the harness itself ---- */

static void test_harness(void)
{
    th_redis *d0 = th_sentinel_data(sg, 0), *d1 = th_sentinel_data(sg, 1);
    CU_ASSERT_PTR_EQUAL(th_sentinel_current_master(sg), d0);
    redisReply *rep = th_redis_cmd(d1, "ROLE");
    CU_ASSERT(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
              strcmp(rep->element[0]->str, "slave") == 0);
    freeReplyObject(rep);
    /* three sentinels, each naming data node 0 */
    const char *addrs = th_sentinel_addrs(sg);
    int n = 1;
    for (const char *p = addrs; *p; p++)
        n += *p == ',';
    CU_ASSERT_EQUAL(n, 3);
    for (int i = 0; i < 3; i++) {
        rep = th_redis_cmd(th_sentinel_node(sg, i),
                           "SENTINEL get-master-addr-by-name mymaster");
        CU_ASSERT(rep && rep->type == REDIS_REPLY_ARRAY &&
                  rep->elements == 2 &&
                  atoi(rep->element[1]->str) == th_redis_port(d0));
        freeReplyObject(rep);
        char want[32];
        snprintf(want, sizeof want, "127.0.0.1:%d",
                 th_redis_port(th_sentinel_node(sg, i)));
        CU_ASSERT_PTR_NOT_NULL(strstr(addrs, want));
    }
}

/* ---- through the sentinels ---- */

static int compute_calls;

static int compute(void *ud, void **val, size_t *len, uint32_t *ttl_ms)
{
    (void)ud, (void)ttl_ms;
    compute_calls++;
    *val = strdup("computed");
    *len = strlen("computed");
    return *val ? 0 : -1;
}

static void test_basic(void)
{
    tc_options o;
    th_sentinel_options(sg, &o);
    CU_ASSERT_STRING_EQUAL(o.sentinel_master, "mymaster"); /* explicit */
    snprintf(o.ns, sizeof o.ns, "basic");
    tc_cache *c = NULL, *d = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    th_redis *m = master_now();
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);

    char buf[64];
    CU_ASSERT_EQUAL(tc_set(c, "k", "v1", 2, 0), TC_OK);
    CU_ASSERT_EQUAL(raw_exists(m, "basic", "k"), 1);
    CU_ASSERT_EQUAL(th_get_str(c, "k", buf, sizeof buf), TC_OK);
    CU_ASSERT_STRING_EQUAL(buf, "v1");
    tc_health_info h = health_of(c);
    CU_ASSERT_EQUAL(h.l2_configured, 1);
    CU_ASSERT_EQUAL(h.l2_connected, 1);
    CU_ASSERT_STRING_EQUAL(h.last_error, "");

    /* another handle reads it from Redis */
    CU_ASSERT_FATAL(tc_open(&d, &o) == TC_OK);
    CU_ASSERT_EQUAL(th_get_str(d, "k", buf, sizeof buf), TC_OK);
    CU_ASSERT_STRING_EQUAL(buf, "v1");
    CU_ASSERT_EQUAL(stats_of(d).l2_hits, 1);

    CU_ASSERT_EQUAL(tc_del(c, "k"), TC_OK);
    CU_ASSERT_EQUAL(raw_exists(m, "basic", "k"), 0);
    CU_ASSERT(th_wait_value(d, "k", NULL, BOUND_MS) >= 0);

    /* tc_fetch: computed once, then read from Redis by the other */
    tc_value *v = NULL;
    int from = TC_FROM_NONE;
    compute_calls = 0;
    CU_ASSERT_EQUAL(tc_fetch_from(c, "f", 0, compute, NULL, &v, &from), TC_OK);
    CU_ASSERT_EQUAL(from, TC_FROM_COMPUTED);
    tc_value_release(v);
    CU_ASSERT_EQUAL(raw_exists(m, "basic", "f"), 1);
    CU_ASSERT_EQUAL(tc_fetch_from(d, "f", 0, compute, NULL, &v, &from), TC_OK);
    CU_ASSERT_EQUAL(from, TC_FROM_L2);
    CU_ASSERT(v && tc_value_len(v) == 8 &&
              memcmp(tc_value_data(v), "computed", 8) == 0);
    tc_value_release(v);
    CU_ASSERT_EQUAL(compute_calls, 1);
    tc_close(c);
    tc_close(d);
}

static const char *const endpoint_vars[] = {"REDIS_URL",
                                            "REDIS_HOST",
                                            "REDIS_PORT",
                                            "REDIS_SOCKET",
                                            "REDIS_CLUSTER",
                                            "REDIS_SENTINELS",
                                            "REDIS_SENTINEL_MASTER",
                                            "REDIS_SENTINEL_PASSWORD",
                                            NULL};

static void clear_endpoint_vars(void)
{
    for (const char *const *v = endpoint_vars; *v; v++)
        unsetenv(*v);
}

/* REDIS_SENTINELS alone: the master's name defaults to "mymaster". */
static void test_env(void)
{
    tc_options o;
    clear_endpoint_vars();
    setenv("REDIS_SENTINELS", th_sentinel_addrs(sg), 1);
    tc_options_init(&o);
    clear_endpoint_vars();
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    snprintf(o.ns, sizeof o.ns, "env");
    o.log_level = TC_LOG_ERROR;
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    CU_ASSERT_EQUAL(raw_exists(master_now(), "env", "k"), 1);
    CU_ASSERT_EQUAL(health_of(c).l2_connected, 1);
    tc_close(c);

    /* REDIS_URL beside it: refused, naming both */
    setenv("REDIS_SENTINELS", th_sentinel_addrs(sg), 1);
    setenv("REDIS_URL", "redis://127.0.0.1:1", 1);
    tc_options_init(&o);
    clear_endpoint_vars();
    CU_ASSERT_PTR_NOT_NULL(strstr(o.env_error, "REDIS_URL"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o.env_error, "REDIS_SENTINELS"));
    o.log_level = TC_LOG_OFF;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
    CU_ASSERT_PTR_NULL(c);
}

/* Calls on c succeed within CALL_BOUND_MS each: the set, and the get
   with a miss or the value (the L1 may keep a value for
   degraded_l1_ttl_ms while Redis is away). */
static void calls_degrade(tc_cache *c)
{
    char buf[16];
    uint64_t t0 = th_now_ms();
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    CU_ASSERT(th_now_ms() - t0 < CALL_BOUND_MS);
    t0 = th_now_ms();
    int rc = th_get_str(c, "k", buf, sizeof buf);
    CU_ASSERT(rc == TC_MISS || (rc == TC_OK && strcmp(buf, "v") == 0));
    CU_ASSERT(th_now_ms() - t0 < CALL_BOUND_MS);
}

/* A name the sentinels do not know: not an error at open, but no Redis,
   and tc_health says why. */
static void test_wrong_master_name(void)
{
    tc_options o;
    th_sentinel_options(sg, &o);
    o.sentinel_master = "nosuchmaster";
    snprintf(o.ns, sizeof o.ns, "wrongname");
    o.log_level = TC_LOG_OFF;
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    calls_degrade(c);
    tc_health_info h = health_of(c);
    static const char *const words[] = {"nosuchmaster", "sentinel", "master",
                                        NULL};
    fprintf(stderr, "  last_error: \"%s\"\n", h.last_error);
    CU_ASSERT_EQUAL(h.l2_configured, 1);
    CU_ASSERT_EQUAL(h.l2_connected, 0);
    CU_ASSERT(mentions(h.last_error, words));
    /* not written to mymaster's master instead */
    CU_ASSERT_EQUAL(raw_exists(master_now(), "wrongname", "k"), 0);
    tc_close(c);
}

/* Sentinels with a password: the right one works, a wrong or missing
   one is reported as such. */
static void test_sentinel_password(void)
{
    th_sentinel_opts so = {"authmaster", "sentinel-pw", 1};
    th_sentinel *a = th_sentinel_start_opts(&so);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    static const char *const words[] = {"auth", "pass", NULL};
    const char *passes[] = {"sentinel-pw", "wrong-pw", NULL};
    for (int i = 0; i < 3; i++) {
        tc_options o;
        th_sentinel_options(a, &o);
        o.sentinel_password = passes[i];
        snprintf(o.ns, sizeof o.ns, "pw%d", i);
        o.log_level = TC_LOG_OFF;
        tc_cache *c = NULL;
        CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
        if (i == 0) {
            CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
            CU_ASSERT_EQUAL(health_of(c).l2_connected, 1);
        } else {
            calls_degrade(c);
            tc_health_info h = health_of(c);
            fprintf(stderr, "  %s password: last_error \"%s\"\n",
                    passes[i] ? "wrong" : "no", h.last_error);
            CU_ASSERT_EQUAL(h.l2_connected, 0);
            CU_ASSERT(mentions(h.last_error, words));
        }
        char ns[8];
        snprintf(ns, sizeof ns, "pw%d", i);
        CU_ASSERT_EQUAL(raw_exists(th_sentinel_data(a, 0), ns, "k"), i == 0);
        tc_close(c);
    }
    th_sentinel_stop(a);
}

/* ---- peer processes with a cache of their own (peer.h), under load ---- */

#define PROCS 2
#define THREADS 4
#define KEYS_PER_THREAD 2
#define NKEYS (PROCS * THREADS * KEYS_PER_THREAD)
#define LOG_CAP 20000 /* per thread: a few hundred operations a second */
#define STALE_MS 250
#define WRITE_MS 50   /* a thread writes one of its keys about this often */
#define GRACE_MS 5000 /* after the switch, by when the cache must be back */
#define CHECK_MS 2000 /* load after that, every read checked */
#define LOAD_CAP_MS 60000 /* a load nobody stops ends by itself */

typedef struct shared {
    atomic_int stop;
} shared;

static shared *sh;
static th_log *logs[PROCS * THREADS];

typedef struct load_arg {
    tc_cache *c;
    int proc, thread;
} load_arg;

/* One write of one of the thread's keys: the next version, every tenth
   a delete. */
static void load_write(const load_arg *a, th_log *log, int64_t *ver,
                       unsigned r)
{
    uint32_t first =
        (uint32_t)(a->proc * THREADS + a->thread) * KEYS_PER_THREAD;
    uint32_t key = first + r % KEYS_PER_THREAD;
    int64_t v = ver[key - first] + 1;
    int del = v % 10 == 0;
    th_op *op = th_log_begin(log, key, del ? TH_OP_DEL : TH_OP_SET);
    if (!op)
        return;
    ver[key - first] = v;
    char name[16], val[24];
    snprintf(name, sizeof name, "k%u", key);
    snprintf(val, sizeof val, "%lld", (long long)v);
    int rc =
        del ? tc_del(a->c, name) : tc_set(a->c, name, val, strlen(val), 0);
    th_log_end(log, op, rc, v);
}

static void load_read(const load_arg *a, th_log *log, unsigned r)
{
    uint32_t key = r % NKEYS;
    th_op *op = th_log_begin(log, key, TH_OP_GET);
    if (!op)
        return;
    char name[16];
    snprintf(name, sizeof name, "k%u", key);
    tc_value *v = NULL;
    int rc = tc_get(a->c, name, &v);
    th_log_end(log, op, rc,
               rc == TC_OK ? th_hist_version(tc_value_data(v), tc_value_len(v))
                           : 0);
    tc_value_release(v);
}

/* Reads everyone's keys all the time and writes its own every
   WRITE_MS or so, so that a few writes of a key fall in STALE_MS (a
   miss is excused by a delete in that window); logs it all. */
static void *load_thread(void *p)
{
    const load_arg *a = p;
    th_log *log = logs[a->proc * THREADS + a->thread];
    int64_t ver[KEYS_PER_THREAD] = {0};
    unsigned r = 12345u + (unsigned)(a->proc * THREADS + a->thread) * 7919u;
    uint64_t end = th_now_ms() + LOAD_CAP_MS, next_write = 0;

    while (!atomic_load(&sh->stop) && th_now_ms() < end && log->n < log->cap) {
        r = r * 1103515245u + 12345u;
        if (th_now_ms() >= next_write) {
            load_write(a, log, ver, r >> 8);
            next_write = th_now_ms() + WRITE_MS / 2 + (r >> 4) % WRITE_MS;
        } else {
            load_read(a, log, r >> 8);
        }
        usleep((r >> 4) % 4000);
    }
    return NULL;
}

static void run_load(tc_cache *c, int proc)
{
    pthread_t t[THREADS];
    load_arg a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (load_arg){c, proc, i};
        pthread_create(&t[i], NULL, load_thread, &a[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
}

/* The peer's own command, L: runs the load until told to stop, then
   replies "done". */
static int peer_extra(tc_cache *c, char cmd, const char *a, const char *b,
                      FILE *out, void *ud)
{
    (void)a;
    (void)b;
    if (cmd != 'L')
        return 0;
    int proc = *(const int *)ud;
    run_load(c, proc);
    tc_stats_info s = stats_of(c);
    fprintf(stderr,
            "  process %d: %llu calls served without redis, %llu of "
            "%llu queued invalidations replayed\n",
            proc, (unsigned long long)s.degraded_ops,
            (unsigned long long)s.replay_done,
            (unsigned long long)s.replay_queued);
    fprintf(out, "done\n");
    return 1;
}

static tc_cache *peer_open(void *ud)
{
    (void)ud;
    return open_ns("fo");
}

/* Peer proc of the load (0..PROCS-1), on namespace "fo". */
static int peer_start(th_peer *p, int proc)
{
    th_peer_conf conf = {.open = peer_open,
                         .wait_ms = BOUND_MS,
                         .extra = peer_extra,
                         .ud = &proc}; /* the child has its own copy */
    return th_peer_start(p, &conf);
}

/* ---- the failover ---- */

/* Polls until a write through a lands on master m and a reads it from
   Redis. Returns when (ms), or 0 past deadline; counts failed calls. */
static uint64_t wait_recovered(tc_cache *a, tc_cache *b, th_redis *m,
                               uint64_t deadline, int *errors)
{
    for (int i = 0; th_now_ms() < deadline; i++) {
        char key[32], val[32], buf[32];
        snprintf(key, sizeof key, "probe%d", i);
        snprintf(val, sizeof val, "p%d", i);
        uint64_t hits = stats_of(b).l2_hits;
        *errors += tc_set(a, key, val, strlen(val), 0) != TC_OK;
        int rc = th_get_str(b, key, buf, sizeof buf);
        *errors += rc != TC_OK && rc != TC_MISS;
        if (rc == TC_OK && strcmp(buf, val) == 0 &&
            stats_of(b).l2_hits > hits && raw_exists(m, "fo", key) == 1)
            return th_now_ms();
        usleep(50 * 1000);
    }
    return 0;
}

static void sleep_until(uint64_t t_ms)
{
    while (th_now_ms() < t_ms)
        usleep(10 * 1000);
}

/* tc_health says connected, within BOUND_MS: a call on another thread
   (the listener's, say) may have failed a moment ago. */
static int wait_connected(tc_cache *c)
{
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < BOUND_MS;) {
        if (health_of(c).l2_connected)
            return 1;
        usleep(10 * 1000);
    }
    return 0;
}

/* Kills the master under load and waits for the new one; returns it,
   or NULL. Prints the failover time and how soon the cache was back. */
static th_redis *fail_over(tc_cache *a, tc_cache *b, uint64_t *t_switch,
                           int *errors)
{
    th_redis *old = master_now();
    CU_ASSERT_PTR_NOT_NULL(old);
    if (!old) /* not fatal: the caller must stop the load */
        return NULL;
    uint64_t t_kill = th_now_ms();
    th_redis_kill(old);
    int port = th_sentinel_wait_switch(sg, th_redis_port(old), 30000);
    *t_switch = th_now_ms();
    th_redis *m = master_now();
    CU_ASSERT(port > 0);
    if (port <= 0 || !m || m == old || th_redis_port(m) != port)
        return NULL;
    uint64_t t_back = wait_recovered(a, b, m, *t_switch + 10000, errors);
    fprintf(stderr,
            "  failover (kill -> every sentinel names the new master): "
            "%llu ms; cache back %lld ms after that\n",
            (unsigned long long)(*t_switch - t_kill),
            t_back ? (long long)(t_back - *t_switch) : -1LL);
    CU_ASSERT(t_back != 0);
    CU_ASSERT(t_back <= *t_switch + GRACE_MS);
    CU_ASSERT(wait_connected(a));
    CU_ASSERT(wait_connected(b));
    return m;
}

/* The logs of both processes: no failed call at all, and from from_us
   on no stale read and no lost write. */
static void check_history(uint64_t from_us)
{
    th_hist_result res;
    th_hist_check(logs, PROCS * THREADS, NKEYS, from_us, STALE_MS, &res);
    th_hist_print("failover load", &res);
    CU_ASSERT_EQUAL(res.errors, 0);
    CU_ASSERT_EQUAL(res.broken, 0);
    CU_ASSERT_EQUAL(res.stale, 0);
    CU_ASSERT_EQUAL(res.lost, 0);
    CU_ASSERT(res.writes > 50);
    CU_ASSERT(res.checked > 50);
}

/* On the new master: a delete in one process empties the other's L1. */
static void coherence_after(th_peer *p, th_redis *m)
{
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&p[0], "S cx one"), "0");
    CU_ASSERT(atol(th_peer_ask(&p[1], "W cx one")) >= 0);
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&p[1], "H cx"), "1"); /* in its L1 */
    CU_ASSERT_EQUAL(raw_exists(m, "fo", "cx"), 1);
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&p[0], "D cx"), "0");
    CU_ASSERT_EQUAL(raw_exists(m, "fo", "cx"), 0);
    CU_ASSERT(atol(th_peer_ask(&p[1], "W cx -")) >= 0);
    /* and the other way round */
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&p[1], "S cy two"), "0");
    CU_ASSERT(atol(th_peer_ask(&p[0], "W cy two")) >= 0);
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&p[0], "H cy"), "1");
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&p[1], "D cy"), "0");
    CU_ASSERT(atol(th_peer_ask(&p[0], "W cy -")) >= 0);
}

static void make_logs(void)
{
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(sh != MAP_FAILED);
    atomic_store(&sh->stop, 0);
    for (int i = 0; i < PROCS * THREADS; i++) {
        logs[i] = th_log_new(LOG_CAP, 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(logs[i]);
    }
}

static void free_logs(void)
{
    for (int i = 0; i < PROCS * THREADS; i++)
        th_log_free(logs[i]);
    munmap(sh, sizeof *sh);
}

/* Two processes, four threads each, read and write while the master is
   killed; two handles here measure when the cache is back. */
static void test_failover(void)
{
    make_logs();
    /* forked first: this process has no threads yet */
    th_peer p[PROCS] = {{0}};
    for (int i = 0; i < PROCS; i++)
        CU_ASSERT_FATAL(peer_start(&p[i], i) == 0);
    tc_cache *a = open_ns("fo"), *b = open_ns("fo");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    int errors = 0;
    CU_ASSERT(wait_recovered(a, b, master_now(), th_now_ms() + BOUND_MS,
                             &errors) != 0); /* works before */

    for (int i = 0; i < PROCS; i++)
        th_peer_send(&p[i], "L");
    usleep(1000 * 1000);
    uint64_t t_switch = 0;
    th_redis *m = fail_over(a, b, &t_switch, &errors);
    if (m) /* every read from GRACE_MS after the switch on is checked */
        sleep_until(t_switch + GRACE_MS + CHECK_MS);
    atomic_store(&sh->stop, 1);
    for (int i = 0; i < PROCS; i++)
        CU_ASSERT_STRING_EQUAL(th_peer_recv(&p[i]), "done");
    CU_ASSERT_EQUAL(errors, 0);
    if (m) {
        check_history((t_switch + GRACE_MS) * 1000u);
        coherence_after(p, m);
    }
    tc_close(a);
    tc_close(b);
    for (int i = 0; i < PROCS; i++)
        CU_ASSERT_EQUAL(th_peer_stop(&p[i]), 0);
    free_logs();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a dead peer fails its test, not the run */
    static const th_test tests[] = {
        {"harness", test_harness},
        {"basic", test_basic},
        {"env", test_env},
        {"wrong_master_name", test_wrong_master_name},
        {"sentinel_password", test_sentinel_password},
        {"failover", test_failover}, /* last: the master is gone after */
        {NULL, NULL},
    };
    sg = th_sentinel_start("mymaster");
    if (!sg)
        return 1;
    int rc = th_run("sentinel", tests);
    th_sentinel_stop(sg);
    return rc;
}
