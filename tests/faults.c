/* SPDX-License-Identifier: BSD-3-Clause */
/* The fault suite's engine. See faults.h. */
#include "config.h"

#include "faults.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include "cache.h"
#include "harness.h"
#include "history.h"
#include "replay.h"

/*
 * The faults, and what each asserts (TF_ASSERT_*):
 *
 * - kill_aof (TF_ASSERT_LATE): Redis comes back with the values it had
 *   at the kill, while writes acknowledged during the outage (queued as
 *   deletes) wait in their writers' replay queues: until a writer's
 *   listener has replayed (within one PING interval of Redis answering,
 *   plus the replay), another process reads the old value from Redis.
 *   Counted against the write's acknowledgement that is as long as the
 *   outage (worst_ms), which no library can shorten; what it promises
 *   is the window after Redis is back, and that is what is asserted.
 * - freeze, pause (TF_ASSERT_LATE): a silent server is noticed within
 *   2 x listener_ping_ms, sooner by a process whose command timed out;
 *   from then on writes are acknowledged without it (the breaker open, a
 *   delete queued), and once it answers again the others read what it
 *   held until the writer's listener has replayed, as after kill_aof.
 *   Before the prompt replay and the 250 ms PING these served reads as
 *   stale as the hold was long (1.3 to 5.1 s); since, the worst seen is
 *   115-184 ms in most runs, 870 ms in one (a write acknowledged with
 *   the breaker open, read from the thawed server before the replay).
 */
const tf_fault tf_faults[TF_NFAULTS] = {
    [TF_KILL] = {"kill", "SIGKILL, restart empty", 0, 0, TF_ASSERT_ALL},
    [TF_KILL_AOF] = {"kill_aof", "SIGKILL, restart from AOF", 1, 0,
                     TF_ASSERT_LATE},
    [TF_FREEZE] = {"freeze", "SIGSTOP / SIGCONT", 0, 0, TF_ASSERT_LATE},
    [TF_PAUSE] = {"pause", "CLIENT PAUSE ALL", 0, 0, TF_ASSERT_LATE},
    [TF_KILL_NORMAL] = {"kill_normal", "CLIENT KILL TYPE normal", 0, 250,
                        TF_ASSERT_ALL},
    [TF_KILL_PUBSUB] = {"kill_pubsub", "CLIENT KILL TYPE pubsub", 0, 250,
                        TF_ASSERT_ALL},
    [TF_MAXMEMORY] = {"maxmemory", "maxmemory, noeviction", 0, 0,
                      TF_ASSERT_ALL},
    [TF_FLUSHALL] = {"flushall", "FLUSHALL", 0, 250, TF_ASSERT_ALL},
};

enum { K_GET, K_SET, K_DEL, K_FETCH };

#define NFETCH 8         /* the fetch keys x0..x7 */
#define SAMPLE_MS 5      /* the watching thread's period */
#define READY_MS 10000   /* a process's cache up and coherent by then */
#define STOP_MS 20000    /* a process done by then after the stop */
#define FILL_VALUE 65536 /* maxmemory: filler values of this size ... */
#define FILL_KEYS 16     /* ... this many */

int tf_find(const char *name)
{
    for (int i = 0; i < TF_NFAULTS; i++)
        if (!strcmp(name, tf_faults[i].name))
            return i;
    return -1;
}

int tf_slow_build(void)
{
#ifdef RUNNING_ON_VALGRIND
    if (RUNNING_ON_VALGRIND)
        return 1;
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    return 2;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
    return 2;
#endif
#endif
    return 0;
}

void tf_config_init(tf_config *c)
{
    int slow = tf_slow_build();
    const char *secs = getenv("TC_FAULT_SECONDS");

    memset(c, 0, sizeof *c);
    c->procs = 2;
    c->threads = slow == 1 ? 2 : 4;
    c->keys_per_thread = 2;
    c->write_ms = 50;
    c->pause_us = 2000;
    c->steady_ms = 500;
    c->hold_ms = 1000;
    c->recover_max_ms = 5000;
    c->after_ms = 1000;
    c->connect_timeout_ms = 200; /* the library's defaults */
    c->command_timeout_ms = 100;
    c->listener_ping_ms = 250;
    c->degraded_l1_ttl_ms = 250;
    c->lease_ms = 500;
    if (slow == 2) { /* a sanitizer: the machine is slower, not the code */
        c->command_timeout_ms = 250;
    } else if (slow == 1) {
        c->connect_timeout_ms = 1000;
        c->command_timeout_ms = 1000;
        c->listener_ping_ms = 500;
        c->degraded_l1_ttl_ms = 500;
        c->lease_ms = 2000;
        c->steady_ms = 1000;
        c->hold_ms = 1500;
        c->recover_max_ms = 15000;
        c->after_ms = 1500;
        c->pause_us = 10000;
    }
    if (secs && atoi(secs) > 0) {
        c->hold_ms = (uint32_t)atoi(secs) * 1000u;
        c->steady_ms = 1000;
        c->after_ms = c->hold_ms / 2 > 2000 ? c->hold_ms / 2 : 2000;
        c->recover_max_ms = 10000;
    }
    c->hang_ms = 20 * c->command_timeout_ms;
}

uint32_t tf_bound_ms(const tf_config *c)
{
    return c->stale_ms ? c->stale_ms
                       : 2 * c->listener_ping_ms + c->degraded_l1_ttl_ms;
}

/* ---- what the processes share ---- */

typedef struct thread_stats {
    long ops[4], failed[4];
    long failed_rc[TF_RC_N];
    uint64_t slowest_us;
} thread_stats;

typedef struct shared {
    atomic_int stop;
    _Atomic uint64_t heal_us; /* 0 until the fault is healed */
    atomic_int ready[TF_MAX_PROCS];
    _Atomic uint64_t recovered_us[TF_MAX_PROCS];
    tc_stats_info end[TF_MAX_PROCS]; /* each process's, at the stop */
    thread_stats ts[TF_MAX_PROCS * TF_MAX_THREADS];
} shared;

/* One phase: its configuration, server and shared state. */
typedef struct phase {
    const tf_config *c;
    int fault;
    th_redis *r;
    char ns[32];
    shared *sh;
    th_log **logs; /* procs x threads */
    uint32_t nkeys;
} phase;

/* ---- the processes ---- */

typedef struct loader {
    phase *p;
    tc_cache *cache;
    int proc, thread;
} loader;

static int compute_fixed(void *ud, void **val, size_t *len, uint32_t *ttl_ms)
{
    (void)ttl_ms;
    *val = strdup(ud);
    *len = strlen(ud);
    return *val ? 0 : -1;
}

/* Counts one op; bad: it did not return what the docs promise. */
static void count(thread_stats *ts, int kind, int rc, int bad,
                  uint64_t took_us)
{
    ts->ops[kind]++;
    if (bad) {
        ts->failed[kind]++;
        if (rc >= TF_RC_MIN && rc < TF_RC_MIN + TF_RC_N)
            ts->failed_rc[rc - TF_RC_MIN]++;
    }
    if (took_us > ts->slowest_us)
        ts->slowest_us = took_us;
}

static void key_name(char *out, size_t cap, uint32_t key)
{
    snprintf(out, cap, "k%u", key);
}

/* One write of one of the thread's keys: the next number, every tenth a
   delete; and every eighth time a delete of a fetch key too. */
static void do_write(const loader *a, th_log *log, thread_stats *ts,
                     int64_t *ver, unsigned r)
{
    const tf_config *c = a->p->c;
    uint32_t first =
        (uint32_t)(a->proc * c->threads + a->thread) * c->keys_per_thread;
    uint32_t i = r % c->keys_per_thread, key = first + i;
    int64_t v = ver[i] + 1;
    int del = v % 10 == 0;
    char name[16], val[24];
    th_op *op = th_log_begin(log, key, del ? TH_OP_DEL : TH_OP_SET);

    if (!op)
        return;
    ver[i] = v;
    key_name(name, sizeof name, key);
    snprintf(val, sizeof val, "%lld", (long long)v);
    int rc = del ? tc_del(a->cache, name)
                 : tc_set(a->cache, name, val, strlen(val), 0);
    th_log_end(log, op, rc, v);
    count(ts, del ? K_DEL : K_SET, rc, rc != TC_OK, op->end_us - op->start_us);
    if ((r >> 8) % 8 == 0) {
        uint64_t t0 = th_now_us();
        snprintf(name, sizeof name, "x%u", (r >> 12) % NFETCH);
        rc = tc_del(a->cache, name);
        count(ts, K_DEL, rc, rc != TC_OK, th_now_us() - t0);
    }
}

static void do_read(const loader *a, th_log *log, thread_stats *ts, unsigned r)
{
    uint32_t key = r % a->p->nkeys;
    char name[16];
    tc_value *v = NULL;
    th_op *op = th_log_begin(log, key, TH_OP_GET);

    if (!op)
        return;
    key_name(name, sizeof name, key);
    int rc = tc_get(a->cache, name, &v);
    th_log_end(log, op, rc,
               rc == TC_OK ? th_hist_version(tc_value_data(v), tc_value_len(v))
                           : 0);
    tc_value_release(v);
    count(ts, K_GET, rc, rc != TC_OK && rc != TC_MISS,
          op->end_us - op->start_us);
}

/* A fetch: TC_OK with the key's fixed value, whatever the fault. */
static void do_fetch(const loader *a, thread_stats *ts, unsigned r)
{
    char name[16], want[32];
    tc_value *v = NULL;
    uint64_t t0 = th_now_us();

    snprintf(name, sizeof name, "x%u", r % NFETCH);
    snprintf(want, sizeof want, "fixed-%s", name);
    int rc = tc_fetch(a->cache, name, 0, compute_fixed, want, &v);
    int bad = rc != TC_OK || tc_value_len(v) != strlen(want) ||
              memcmp(tc_value_data(v), want, strlen(want)) != 0;
    tc_value_release(v);
    count(ts, K_FETCH, rc, bad, th_now_us() - t0);
}

static void *load_thread(void *arg)
{
    const loader *a = arg;
    phase *p = a->p;
    int idx = a->proc * p->c->threads + a->thread;
    th_log *log = p->logs[idx];
    thread_stats *ts = &p->sh->ts[idx];
    int64_t ver[64] = {0};
    unsigned r = 2463534242u + (unsigned)idx * 7919u;
    uint64_t next_write = 0;

    while (!atomic_load(&p->sh->stop) && log->n < log->cap) {
        r ^= r << 13, r ^= r >> 17, r ^= r << 5; /* xorshift32 */
        if (th_now_ms() >= next_write) {
            do_write(a, log, ts, ver, r);
            next_write =
                th_now_ms() + p->c->write_ms / 2 + (r >> 4) % p->c->write_ms;
        } else if ((r >> 20) % 16 == 0) {
            do_fetch(a, ts, r >> 8);
        } else {
            do_read(a, log, ts, r >> 8);
        }
        if (p->c->pause_us)
            usleep((r >> 3) % p->c->pause_us);
    }
    return NULL;
}

static tc_cache *open_cache(const phase *p)
{
    tc_options o;
    tc_cache *c = NULL;

    th_options(p->r, &o);
    snprintf(o.ns, sizeof o.ns, "%s", p->ns);
    o.connect_timeout_ms = p->c->connect_timeout_ms;
    o.command_timeout_ms = p->c->command_timeout_ms;
    o.listener_ping_ms = p->c->listener_ping_ms;
    o.degraded_l1_ttl_ms = p->c->degraded_l1_ttl_ms;
    o.lease_ms = p->c->lease_ms;
    o.log_level = TC_LOG_OFF; /* faults are what this is about */
    return tc_open(&c, &o) == TC_OK ? c : NULL;
}

/* Waits until the cache's link is up (its first call starts it). */
static int wait_coherent(tc_cache *c)
{
    tc_value *v = NULL;
    tc_stats_info s;

    tc_get(c, "warm", &v);
    tc_value_release(v);
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < READY_MS;) {
        tc_stats(c, &s);
        if (s.coherent)
            return 1;
        usleep(5000);
    }
    return 0;
}

/* Recovery as faults.h defines it, sampled every SAMPLE_MS. */
typedef struct watch {
    uint64_t prev_degraded, l2_at_heal, run_from;
    int seen_heal, done;
} watch;

static void watch_sample(phase *p, int proc, tc_cache *c, watch *w)
{
    uint64_t heal = atomic_load(&p->sh->heal_us), now = th_now_us();
    tc_stats_info s;
    tc_health_info h;

    tc_stats(c, &s);
    tc_health(c, &h);
    int good = s.coherent && h.l2_connected &&
               h.breaker == TC_BREAKER_CLOSED &&
               s.degraded_ops == w->prev_degraded;
    w->prev_degraded = s.degraded_ops;
    if (w->done || !heal || now < heal)
        return;
    if (!w->seen_heal) {
        w->seen_heal = 1;
        w->l2_at_heal = s.l2_hits + s.l2_misses;
    }
    if (!good) {
        w->run_from = 0;
        return;
    }
    if (!w->run_from)
        w->run_from = now;
    if (now - w->run_from >= TF_QUIET_MS * 1000u &&
        s.l2_hits + s.l2_misses > w->l2_at_heal) {
        atomic_store(&p->sh->recovered_us[proc], w->run_from);
        w->done = 1;
    }
}

/* A forked process of the load; never returns. */
static void child_main(phase *p, int proc)
{
    pthread_t t[TF_MAX_THREADS];
    loader a[TF_MAX_THREADS];
    watch w = {0};
    tc_cache *c = open_cache(p);

    if (!c || !wait_coherent(c))
        _exit(3);
    atomic_store(&p->sh->ready[proc], 1);
    for (int i = 0; i < p->c->threads; i++) {
        a[i] = (loader){p, c, proc, i};
        if (pthread_create(&t[i], NULL, load_thread, &a[i]) != 0)
            _exit(4);
    }
    while (!atomic_load(&p->sh->stop)) {
        watch_sample(p, proc, c, &w);
        usleep(SAMPLE_MS * 1000);
    }
    for (int i = 0; i < p->c->threads; i++)
        pthread_join(t[i], NULL);
    tc_stats(c, &p->sh->end[proc]);
    tc_close(c);
    _exit(0);
}

/* ---- the faults ---- */

/* 1 if rep is an answer and not an error; frees it. */
static int cmd_ok(const char *what, redisReply *rep)
{
    int ok = rep && rep->type != REDIS_REPLY_ERROR;

    if (!ok)
        fprintf(stderr, "  faults: %s: %s\n", what,
                rep ? rep->str : "no answer");
    if (rep)
        freeReplyObject(rep);
    return ok;
}

/* used_memory from INFO memory, or 0. */
static long long used_memory(th_redis *r)
{
    redisReply *rep = th_redis_cmd(r, "INFO memory");
    const char *s = rep && rep->type == REDIS_REPLY_STRING
                        ? strstr(rep->str, "used_memory:")
                        : NULL;
    long long n = s ? atoll(s + strlen("used_memory:")) : 0;

    if (rep)
        freeReplyObject(rep);
    return n;
}

/* Fills Redis with filler keys (outside the namespace), then sets
   maxmemory below what it now uses, noeviction: full, so every write is
   refused with OOM (a maxmemory just above the fill would refuse only
   the writes whose query buffer crosses it). Checks that a SET is. */
static int fill_to_maxmemory(th_redis *r)
{
    redisContext *ctx = th_redis_connect(r);
    char *blob = malloc(FILL_VALUE);
    int oom = 0;

    if (!ctx || !blob)
        goto out;
    memset(blob, 'f', FILL_VALUE);
    for (int i = 0; i < FILL_KEYS; i++)
        if (!cmd_ok("SET filler", redisCommand(ctx, "SET filler:%d %b", i,
                                               blob, (size_t)FILL_VALUE)))
            goto out;
    long long cap = used_memory(r) - FILL_KEYS * FILL_VALUE / 2;
    if (cap <= 0 ||
        !cmd_ok("CONFIG SET maxmemory-policy",
                redisCommand(ctx, "CONFIG SET maxmemory-policy noeviction")) ||
        !cmd_ok("CONFIG SET maxmemory",
                redisCommand(ctx, "CONFIG SET maxmemory %lld", cap)))
        goto out;
    redisReply *rep = redisCommand(ctx, "SET filler:probe x");
    oom =
        rep && rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "OOM", 3);
    if (rep)
        freeReplyObject(rep);
out:
    if (!oom)
        fprintf(stderr, "  faults: maxmemory: no OOM reply\n");
    free(blob);
    if (ctx)
        redisFree(ctx);
    return oom ? 0 : -1;
}

static int inject(phase *p)
{
    th_redis *r = p->r;

    switch (p->fault) {
    case TF_KILL:
    case TF_KILL_AOF:
        th_redis_kill(r);
        return 0;
    case TF_FREEZE:
        th_redis_freeze(r);
        return 0;
    case TF_PAUSE:
        return cmd_ok("CLIENT PAUSE",
                      th_redis_cmd(r, "CLIENT PAUSE %u ALL", p->c->hold_ms))
                   ? 0
                   : -1;
    case TF_KILL_NORMAL:
        return cmd_ok("CLIENT KILL",
                      th_redis_cmd(r, "CLIENT KILL TYPE normal"))
                   ? 0
                   : -1;
    case TF_KILL_PUBSUB:
        return cmd_ok("CLIENT KILL",
                      th_redis_cmd(r, "CLIENT KILL TYPE pubsub"))
                   ? 0
                   : -1;
    case TF_MAXMEMORY:
        return fill_to_maxmemory(r);
    case TF_FLUSHALL:
        return cmd_ok("FLUSHALL", th_redis_cmd(r, "FLUSHALL")) ? 0 : -1;
    }
    return -1;
}

static int heal(phase *p)
{
    th_redis *r = p->r;

    switch (p->fault) {
    case TF_KILL:
    case TF_KILL_AOF:
        return th_redis_restart(r);
    case TF_FREEZE:
        th_redis_thaw(r);
        return 0;
    case TF_MAXMEMORY:
        if (!cmd_ok("CONFIG SET maxmemory",
                    th_redis_cmd(r, "CONFIG SET maxmemory 0")))
            return -1;
        for (int i = 0; i < FILL_KEYS; i++)
            freeReplyObject(th_redis_cmd(r, "DEL filler:%d", i));
        return 0;
    default: /* a pause ends by itself; the others are over at once */
        return 0;
    }
}

/* Holds the fault until the heal is due, injecting it again every
   repeat_ms if it is one that is over at once. */
static int hold(phase *p, uint64_t until_ms)
{
    int every = tf_faults[p->fault].repeat_ms;

    while (th_now_ms() < until_ms) {
        uint64_t next = every ? th_now_ms() + (uint64_t)every : until_ms;
        while (th_now_ms() < next && th_now_ms() < until_ms)
            usleep(2000);
        if (every && th_now_ms() < until_ms && inject(p) != 0)
            return -1;
    }
    return 0;
}

/* When Redis answers PING again (ms), or 0 past deadline. */
static uint64_t wait_redis(th_redis *r, uint64_t deadline)
{
    while (th_now_ms() < deadline) {
        redisReply *rep = th_redis_cmd(r, "PING");
        int ok = rep && rep->type == REDIS_REPLY_STATUS;
        if (rep)
            freeReplyObject(rep);
        if (ok)
            return th_now_ms();
        usleep(1000);
    }
    return 0;
}

/* ---- a phase ---- */

static int phase_setup(phase *p)
{
    const tf_config *c = p->c;
    static const char *const aof[] = {"--appendonly", "yes", "--appendfsync",
                                      "always", NULL};
    uint32_t span =
        c->steady_ms + c->hold_ms + c->recover_max_ms + c->after_ms + READY_MS;
    /* at most one op per pause_us / 2 on average, and never more than
       one per 100 us however fast the ops */
    uint32_t per_ms = c->pause_us >= 2000 ? 2 : 10;
    int nlogs = c->procs * c->threads;

    if (c->procs < 1 || c->procs > TF_MAX_PROCS || c->threads < 1 ||
        c->threads > TF_MAX_THREADS || c->keys_per_thread < 1 ||
        c->keys_per_thread > 64)
        return -1;
    p->nkeys = (uint32_t)nlogs * c->keys_per_thread;
    snprintf(p->ns, sizeof p->ns, "f%d_%s", (int)getpid(),
             tf_faults[p->fault].name);
    p->r = th_redis_start_args(tf_faults[p->fault].aof ? aof : NULL);
    p->sh = mmap(NULL, sizeof *p->sh, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    p->logs = calloc((size_t)nlogs, sizeof *p->logs);
    if (!p->r || p->sh == MAP_FAILED || !p->logs)
        return -1;
    memset(p->sh, 0, sizeof *p->sh);
    for (int i = 0; i < nlogs; i++)
        if (!(p->logs[i] = th_log_new(span * per_ms, 1)))
            return -1;
    return 0;
}

static void phase_free(phase *p)
{
    for (int i = 0; p->logs && i < p->c->procs * p->c->threads; i++)
        th_log_free(p->logs[i]);
    free(p->logs);
    if (p->sh && p->sh != MAP_FAILED)
        munmap(p->sh, sizeof *p->sh);
    th_redis_stop(p->r);
}

/* Forks the processes and waits until each is coherent. */
static int start_procs(phase *p, pid_t *pids)
{
    fflush(NULL); /* nothing buffered is written twice */
    for (int i = 0; i < p->c->procs; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            return -1;
        if (pids[i] == 0)
            child_main(p, i);
    }
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < READY_MS;) {
        int n = 0;
        for (int i = 0; i < p->c->procs; i++)
            n += atomic_load(&p->sh->ready[i]);
        if (n == p->c->procs)
            return 0;
        usleep(5000);
    }
    fprintf(stderr, "  faults: a process's cache did not come up\n");
    return -1;
}

/* Stops and reaps them: 1 if each exited 0 in time. */
static int stop_procs(phase *p, const pid_t *pids)
{
    int ok = 1;
    uint64_t deadline = th_now_ms() + STOP_MS;

    atomic_store(&p->sh->stop, 1);
    for (int i = 0; i < p->c->procs; i++) {
        int st = 0;
        pid_t got;
        if (pids[i] <= 0)
            continue;
        while ((got = waitpid(pids[i], &st, WNOHANG)) == 0 &&
               th_now_ms() < deadline)
            usleep(5000);
        if (got == 0) {
            fprintf(stderr, "  faults: process %d hangs: killed\n", i);
            kill(pids[i], SIGKILL);
            waitpid(pids[i], &st, 0);
            ok = 0;
        } else if (got < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "  faults: process %d ended with status %d\n", i,
                    st);
            ok = 0;
        }
    }
    return ok;
}

static void add_stats(const phase *p, tf_result *out)
{
    for (int i = 0; i < p->c->procs; i++) {
        out->degraded += (long)p->sh->end[i].degraded_ops;
        out->link_losses += (long)p->sh->end[i].link_losses;
    }
    for (int i = 0; i < p->c->procs * p->c->threads; i++) {
        const thread_stats *ts = &p->sh->ts[i];
        for (int k = 0; k < 4; k++) {
            out->kind_ops[k] += ts->ops[k];
            out->kind_failed[k] += ts->failed[k];
            out->ops += ts->ops[k];
            out->failed += ts->failed[k];
        }
        for (int k = 0; k < TF_RC_N; k++)
            out->failed_rc[k] += ts->failed_rc[k];
        if ((double)ts->slowest_us / 1000.0 > out->slowest_ms)
            out->slowest_ms = (double)ts->slowest_us / 1000.0;
    }
}

/* The logs, in three windows of read start: before the injection,
   during (to the recovery), after. */
static void check_logs(const phase *p, uint64_t inject_us, uint64_t rec_us,
                       uint64_t late_us, tf_result *out)
{
    th_hist_result h;
    th_hist_opts o = {0, 0, inject_us, out->bound_ms, p->c->quiet ? 0 : 3, 0};
    int n = p->c->procs * p->c->threads;

    th_hist_check_opts(p->logs, n, p->nkeys, &o, &h);
    out->reads_before = h.checked, out->stale_before = h.stale;
    out->broken = h.broken;
    out->worst_stale_ms = h.worst_stale_ms;
    o.reads_from_us = inject_us, o.reads_until_us = rec_us;
    th_hist_check_opts(p->logs, n, p->nkeys, &o, &h);
    out->reads_during = h.checked, out->stale_during = h.stale;
    if (h.worst_stale_ms > out->worst_stale_ms)
        out->worst_stale_ms = h.worst_stale_ms;
    if (late_us && late_us < rec_us) {
        o.reads_from_us = late_us, o.reads_until_us = rec_us;
        th_hist_check_opts(p->logs, n, p->nkeys, &o, &h);
        out->stale_late = h.stale;
    }
    o.reads_from_us = rec_us, o.reads_until_us = 0;
    th_hist_check_opts(p->logs, n, p->nkeys, &o, &h);
    out->reads_after = h.checked, out->stale_after = h.stale;
    out->lost_after = h.lost;
    if (h.worst_stale_ms > out->worst_stale_ms)
        out->worst_stale_ms = h.worst_stale_ms;
}

/* The fault itself: inject, hold, heal, wait for the recovery. The heal
   begins when the hold is over (a pause ends then by itself; a restart
   takes until Redis answers, which is the floor, redis_back_ms). Sets
   *rec_us to when every process had recovered, or to the deadline. */
static int run_fault(phase *p, tf_result *out, uint64_t *inject_us,
                     uint64_t *rec_us, uint64_t *late_us)
{
    uint64_t t_inject = th_now_ms(), t_heal, t_back;

    *inject_us = t_inject * 1000u;
    if (inject(p) != 0 || hold(p, t_inject + p->c->hold_ms) != 0)
        return -1;
    t_heal = th_now_ms();
    atomic_store(&p->sh->heal_us, t_heal * 1000u);
    if (heal(p) != 0)
        return -1;
    t_back = wait_redis(p->r, t_heal + 10000);
    out->fault_ms = (long)(t_heal - t_inject);
    out->redis_back_ms = t_back ? (long)(t_back - t_heal) : -1;
    *late_us =
        t_back ? (t_back + p->c->listener_ping_ms + TF_LATE_SLACK_MS) * 1000u
               : 0;
    uint64_t deadline = (t_heal + p->c->recover_max_ms) * 1000u, last = 0;
    int all = 0;
    while (!all && th_now_us() < deadline) {
        all = 1;
        for (int i = 0; i < p->c->procs; i++) {
            uint64_t t = atomic_load(&p->sh->recovered_us[i]);
            all &= t != 0;
            last = t > last ? t : last;
        }
        if (!all)
            usleep(5000);
    }
    out->recovery_ms = all ? (long)((last - t_heal * 1000u) / 1000u) : -1;
    *rec_us = all ? last : deadline;
    return 0;
}

int tf_run(const tf_config *c, int fault, tf_result *out)
{
    phase p = {c, fault, NULL, "", NULL, NULL, 0};
    pid_t pids[TF_MAX_PROCS] = {0};
    uint64_t inject_us = 0, rec_us = 0, late_us = 0;
    int rc = -1;

    memset(out, 0, sizeof *out);
    out->fault =
        fault >= 0 && fault < TF_NFAULTS ? tf_faults[fault].name : "?";
    out->recovery_ms = -1;
    out->command_timeout_ms = c->command_timeout_ms;
    out->bound_ms = tf_bound_ms(c);
    if (fault < 0 || fault >= TF_NFAULTS || phase_setup(&p) != 0) {
        fprintf(stderr, "  faults: %s: cannot set up\n", out->fault);
        phase_free(&p);
        return -1;
    }
    if (start_procs(&p, pids) == 0) {
        usleep(c->steady_ms * 1000);
        rc = run_fault(&p, out, &inject_us, &rec_us, &late_us);
        if (rc == 0)
            while (th_now_us() < rec_us + c->after_ms * 1000u)
                usleep(5000);
    }
    out->children_ok = stop_procs(&p, pids);
    if (rc == 0) {
        add_stats(&p, out);
        check_logs(&p, inject_us, rec_us, late_us, out);
        out->ran = 1;
    } else {
        th_redis_dump_log(p.r);
    }
    phase_free(&p);
    return rc;
}

/* ---- the table ---- */

void tf_print_header(FILE *f)
{
    fprintf(f, "%-12s %7s %6s %8s %9s %8s %7s %8s %8s %8s %8s %8s\n", "fault",
            "ops", "failed", "degraded", "slowest/t", "recov_ms", "back_ms",
            "stale_in", "stale_lt", "stale_af", "worst_ms", "bound_ms");
}

void tf_print_row(FILE *f, const tf_result *r)
{
    if (!r->ran) {
        fprintf(f, "%-12s did not run\n", r->fault);
        return;
    }
    fprintf(f,
            "%-12s %7ld %6ld %8ld %9.2f %8ld %7ld %8ld %8ld %8ld %8.0f %8u\n",
            r->fault, r->ops, r->failed, r->degraded,
            r->slowest_ms / (double)r->command_timeout_ms, r->recovery_ms,
            r->redis_back_ms, r->stale_during, r->stale_late, r->stale_after,
            r->worst_stale_ms, r->bound_ms);
    for (int i = 0; i < TF_RC_N; i++)
        if (r->failed_rc[i])
            fprintf(f, "  %s: %ld failed with %s\n", r->fault, r->failed_rc[i],
                    tc_err_name(i + TF_RC_MIN));
    if (r->stale_before)
        fprintf(f, "  %s: %ld stale reads before the fault\n", r->fault,
                r->stale_before);
}

/* ---- the replay of a long queue ---- */

/* n raw commands "<verb> ns:{k<i>}[ ns:{k<i>}:lease]" pipelined on one
   connection: SET with a value, or DEL of the key and its lease. */
static int raw_pipeline(th_redis *r, const char *ns, long n, int del)
{
    redisContext *ctx = th_redis_connect(r);
    if (!ctx)
        return -1;
    int ok = 1;
    for (long i = 0; i < n && ok; i++) {
        char k[64];
        snprintf(k, sizeof k, "%s:{k%ld}", ns, i);
        ok = (del ? redisAppendCommand(ctx, "DEL %s %s:lease", k, k)
                  : redisAppendCommand(ctx, "SET %s old", k)) == REDIS_OK;
    }
    for (long i = 0; i < n && ok; i++) {
        redisReply *rep = NULL;
        ok = redisGetReply(ctx, (void **)&rep) == REDIS_OK && rep &&
             rep->type != REDIS_REPLY_ERROR;
        freeReplyObject(rep);
    }
    redisFree(ctx);
    return ok ? 0 : -1;
}

static long keys_left(th_redis *r, const char *ns)
{
    redisReply *rep = th_redis_cmd(r, "EVAL %s 0 %s",
                                   "return #redis.call('KEYS', ARGV[1])", ns);
    long n = rep && rep->type == REDIS_REPLY_INTEGER ? (long)rep->integer : -1;
    freeReplyObject(rep);
    return n;
}

int tf_replay(long n, tf_replay_result *out)
{
    static const char *const aof[] = {"--appendonly", "yes", "--appendfsync",
                                      "always", NULL};
    memset(out, 0, sizeof *out);
    out->n = n;
    th_redis *r = th_redis_start_args(aof);
    if (!r)
        return -1;
    tc_options o;
    th_options(r, &o);
    snprintf(o.ns, sizeof o.ns, "rp");
    o.coherence = TC_COHERENCE_NONE; /* this thread replays, alone */
    o.replay_max = (uint32_t)(2 * n);
    o.log_level = TC_LOG_OFF;
    tc_cache *c = NULL;
    int rc = -1;
    char key[32], pattern[TC_NS_MAX + 4];
    snprintf(pattern, sizeof pattern, "%s:*", o.ns);
    if (tc_open(&c, &o) != TC_OK || raw_pipeline(r, o.ns, n, 0) != 0)
        goto done;
    th_redis_kill(r);
    uint64_t t0 = th_now_us();
    for (long i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%ld", i);
        uint64_t t = th_now_us();
        if (tc_del(c, key) != TC_OK)
            goto done;
        double ms = (double)(th_now_us() - t) / 1000.0;
        out->slowest_del_ms =
            ms > out->slowest_del_ms ? ms : out->slowest_del_ms;
    }
    out->queue_ms = (double)(th_now_us() - t0) / 1000.0;
    if (th_redis_restart(r) != 0 || keys_left(r, pattern) != n)
        goto done;
    tc_stats_info before, after;
    tc_stats(c, &before);
    tc__l2_alive(c->l2);
    t0 = th_now_us();
    int replayed = tc__replay_run(c);
    out->replay_ms = (double)(th_now_us() - t0) / 1000.0;
    tc_stats(c, &after);
    out->replayed = (long)(after.replay_done - before.replay_done);
    out->left = keys_left(r, pattern);
    /* the floor: the same keys back, deleted raw */
    if (raw_pipeline(r, o.ns, n, 0) != 0)
        goto done;
    t0 = th_now_us();
    if (raw_pipeline(r, o.ns, n, 1) != 0)
        goto done;
    out->raw_ms = (double)(th_now_us() - t0) / 1000.0;
    rc = replayed == TC_OK ? 0 : -1;
done:
    tc_close(c);
    th_redis_stop(r);
    return rc;
}
