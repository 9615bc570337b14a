/* SPDX-License-Identifier: BSD-3-Clause */
/* Recovery paths found by review, each once a real bug: readers passing
   the replay gate while a replay is under way, an idle process that
   never replays, a refusal that is only a Redis not ready yet, an older
   read fill overwriting a write without a listener, a failed tc_open
   left in the fork registry, a fork while a thread waits for a pool
   slot. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "harness.h"

static tc_cache *open_ns(const char *ns, int mode, void (*tweak)(tc_options *))
{
    tc_options o;
    th_options(th_srv, &o);
    snprintf(o.ns, sizeof(o.ns), "%s", ns);
    o.coherence = mode;
    o.listener_ping_ms = 100;
    if (tweak)
        tweak(&o);
    tc_cache *c = NULL;
    return tc_open(&c, &o) == TC_OK ? c : NULL;
}

static long long exists(const char *rkey)
{
    redisReply *r = th_redis_cmd(th_srv, "EXISTS %s", rkey);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

static tc_stats_info stats_of(tc_cache *c)
{
    tc_stats_info s;
    tc_stats(c, &s);
    return s;
}

/* ---- readers and the replay gate ---- */

static atomic_int stop_readers, saw_old;
static tc_cache *gate_c;

static void *reader(void *arg)
{
    char buf[32];
    (void)arg;
    while (!atomic_load(&stop_readers))
        if (th_get_str(gate_c, "k", buf, sizeof(buf)) == TC_OK &&
            strcmp(buf, "old") == 0)
            atomic_fetch_add(&saw_old, 1);
    return NULL;
}

static void big_queue(tc_options *o)
{
    o->replay_max = 100000;
}

/* While one thread replays 5000 queued deletes, no other may read Redis
   (it still holds the deleted value) or keep what it read. */
static void test_replay_gate(void)
{
    gate_c = open_ns("gate", TC_COHERENCE_AUTO, big_queue);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gate_c);
    CU_ASSERT_EQUAL(tc_set(gate_c, "k", "old", 3, 0), TC_OK);
    th_redis_freeze(th_srv);
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "dummy%d", i);
        tc_del(gate_c, key);
    }
    CU_ASSERT_EQUAL(tc_del(gate_c, "k"), TC_OK);
    th_redis_thaw(th_srv);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, reader, NULL);
    /* The readers run until the whole queue is replayed: a bound that
       only catches a hang (valgrind on a loaded machine replays slowly). */
    uint64_t until = th_now_ms() + 60000;
    while (stats_of(gate_c).replay_done < 5001 && th_now_ms() < until)
        usleep(20000);
    usleep(200000); /* reads after the replay too */
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&saw_old), 0);
    CU_ASSERT(stats_of(gate_c).replay_done >= 5001);
    CU_ASSERT_EQUAL(exists("gate:{k}"), 0);
    tc_close(gate_c);
}

/* A delete queued during a short freeze reaches Redis while the process
   makes no further call. */
static void test_idle_replay(void)
{
    tc_cache *a = open_ns("idle", TC_COHERENCE_CHANNEL, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(tc_set(a, "k", "old", 3, 0), TC_OK);
    th_redis_freeze(th_srv);
    CU_ASSERT_EQUAL(tc_del(a, "k"), TC_OK); /* times out: queued */
    th_redis_thaw(th_srv);
    int gone = 0;
    for (uint64_t t0 = th_now_ms(); !gone && th_now_ms() - t0 < 3000;) {
        gone = exists("idle:{k}") == 0 && stats_of(a).replay_done >= 1;
        usleep(10000);
    }
    CU_ASSERT(gone);
    tc_close(a);
}

/* A demoted server (-READONLY; a restarting one says -LOADING) may be
   promoted again: health and the log say it refuses, but the delete
   waits and goes out afterwards. */
static void test_not_ready_is_not_refused(void)
{
    tc_cache *a = open_ns("ro", TC_COHERENCE_AUTO, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(tc_set(a, "k", "old", 3, 0), TC_OK);
    freeReplyObject(th_redis_cmd(th_srv, "REPLICAOF 127.0.0.1 1"));
    CU_ASSERT_EQUAL(tc_del(a, "k"), TC_OK);
    CU_ASSERT(stats_of(a).replay_queued >= 1);
    tc_health_info h;
    tc_health(a, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_READONLY);
    char buf[16];
    CU_ASSERT_EQUAL(th_get_str(a, "k", buf, sizeof(buf)), TC_MISS);
    freeReplyObject(th_redis_cmd(th_srv, "REPLICAOF NO ONE"));
    int gone = 0;
    for (uint64_t t0 = th_now_ms(); !gone && th_now_ms() - t0 < 3000;) {
        gone = exists("ro:{k}") == 0;
        usleep(10000);
    }
    CU_ASSERT(gone);
    CU_ASSERT_EQUAL(th_get_str(a, "k", buf, sizeof(buf)), TC_MISS);
    tc_close(a);
}

/* ---- without a listener: a slow read must not undo a write ---- */

static _Thread_local int clock_calls, clock_armed;

static uint64_t slow_clock(void *ud)
{
    (void)ud;
    if (clock_armed && ++clock_calls == 2) /* the fill after the GET */
        usleep(300000);
    return tc__mono_ms();
}

static tc_cache *race_c;

static void *slow_reader(void *arg)
{
    char buf[32];
    (void)arg;
    clock_armed = 1;
    clock_calls = 0;
    th_get_str(race_c, "k", buf, sizeof(buf));
    return NULL;
}

static void no_listener_slow_clock(tc_options *o)
{
    o->clock_fn = slow_clock;
}

static void test_slow_read_after_write(void)
{
    race_c = open_ns("nsr", TC_COHERENCE_NONE, no_listener_slow_clock);
    CU_ASSERT_PTR_NOT_NULL_FATAL(race_c);
    tc_cache *w = open_ns("nsr", TC_COHERENCE_NONE, NULL);
    CU_ASSERT_EQUAL(tc_set(w, "k", "old", 3, 0), TC_OK); /* not in race_c */
    pthread_t t;
    pthread_create(&t, NULL, slow_reader, NULL);
    usleep(100000); /* the reader holds "old", about to fill */
    CU_ASSERT_EQUAL(tc_set(race_c, "k", "new", 3, 0), TC_OK);
    pthread_join(t, NULL);
    char buf[32];
    th_get_str(race_c, "k", buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "new");
    tc_close(w);
    tc_close(race_c);
}

/* ---- fork ---- */

/* A tc_open that fails must not stay in the fork registry. */
static void test_failed_open_not_registered(void)
{
    tc_options o;
    th_options(NULL, &o);
    tc_cache *c = NULL, *c2 = NULL;
    tc__alloc_fail_after(1); /* the cache, then the L1 fails */
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_ENOMEM);
    tc__alloc_fail_after(-1);
    CU_ASSERT_EQUAL_FATAL(tc_open(&c2, &o), TC_OK);
    pid_t pid = fork(); /* prepare walks the registry */
    if (pid == 0)
        _exit(0);
    int st = 0;
    CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st));
    tc_close(c2);
}

static tc_cache *pool_c;

static void *pool_user(void *arg)
{
    char buf[32];
    (void)arg;
    th_get_str(pool_c, "x", buf, sizeof(buf));
    return NULL;
}

static void *child_worker(void *arg)
{
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "w%ld_%d", (long)(intptr_t)arg, i % 7);
        tc_set(pool_c, key, "v", 1, 0);
    }
    return NULL;
}

static void one_slow_slot(tc_options *o)
{
    o->pool_size = 1;
    o->command_timeout_ms = 3000;
}

/* Forked while one thread held the only pool slot and another waited
   for it: the child's threads still get the slot. */
static void test_fork_with_pool_waiter(void)
{
#if defined(__SANITIZE_THREAD__)
    return; /* the child starts threads: see test_coherence's prefork */
#endif
    pool_c = open_ns("fpw", TC_COHERENCE_NONE, one_slow_slot);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pool_c);
    th_redis_freeze(th_srv);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, pool_user, NULL); /* holds the slot */
    usleep(100000);
    pthread_create(&t2, NULL, pool_user, NULL); /* waits on the condvar */
    usleep(100000);
    int go[2];
    CU_ASSERT_FATAL(pipe(go) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        char ch;
        if (read(go[0], &ch, 1) != 1)
            _exit(2);
        pthread_t w[4];
        for (long i = 0; i < 4; i++)
            pthread_create(&w[i], NULL, child_worker, (void *)(intptr_t)i);
        for (int i = 0; i < 4; i++)
            pthread_join(w[i], NULL);
        _exit(0);
    }
    th_redis_thaw(th_srv);
    CU_ASSERT(write(go[1], "g", 1) == 1);
    int st = 0, done = 0;
    for (int i = 0; i < 1000 && !done; i++) {
        done = waitpid(pid, &st, WNOHANG) == pid;
        usleep(10000);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    CU_ASSERT(done && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    close(go[0]);
    close(go[1]);
    tc_close(pool_c);
}

int main(void)
{
    static const th_test tests[] = {
        {"replay_gate", test_replay_gate},
        {"idle_replay", test_idle_replay},
        {"not_ready_is_not_refused", test_not_ready_is_not_refused},
        {"slow_read_after_write", test_slow_read_after_write},
        {"failed_open_not_registered", test_failed_open_not_registered},
        {"fork_with_pool_waiter", test_fork_with_pool_waiter},
        {NULL, NULL},
    };
    return th_run_redis("recovery", tests);
}
