/* SPDX-License-Identifier: BSD-3-Clause */
/* Cross-process coherence against a real Redis: other processes' writes,
   other clients' writes, expiry, FLUSHDB, a killed listener connection,
   a frozen Redis during a delete, a prefork parent, and a randomized
   multi-process stress run with a staleness checker. Both tracking and
   channel mode. */
#include <CUnit/CUnit.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache.h"
#include "harness.h"
#include "peer.h"

#define PING_MS 100   /* a dead link is noticed within 2 x this */
#define BOUND_MS 3000 /* generous: how long a change may take to show */

/* degraded: degraded_l1_ttl_ms, what the L1 may serve while the link is
   down (the default, 1000, is beyond the stress run's bound). */
static int revalidate = 1; /* tc_options.revalidate of the next open */

static tc_cache *open_degraded(const char *ns, int mode, uint32_t degraded)
{
    tc_options o;
    th_options(th_srv, &o);
    snprintf(o.ns, sizeof(o.ns), "%s", ns);
    o.coherence = mode;
    o.listener_ping_ms = PING_MS;
    o.degraded_l1_ttl_ms = degraded;
    o.revalidate = revalidate;
    tc_cache *c = NULL;
    if (tc_open(&c, &o) != TC_OK)
        return NULL;
    return c;
}

static tc_cache *open_mode(const char *ns, int mode)
{
    return open_degraded(ns, mode, 1000);
}

/* Polls c until key reads as `want` (NULL: a miss). Returns the time it
   took in microseconds, or -1 past BOUND_MS. */
static long wait_value(tc_cache *c, const char *key, const char *want)
{
    char buf[256];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (;;) {
        int rc = th_get_str(c, key, buf, sizeof(buf));
        clock_gettime(CLOCK_MONOTONIC, &b);
        long us =
            (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000L;
        if (want ? rc == TC_OK && strcmp(buf, want) == 0 : rc == TC_MISS)
            return us;
        if (us > BOUND_MS * 1000L)
            return -1;
        usleep(200);
    }
}

static int wait_stat(tc_cache *c, size_t offset, uint64_t atleast)
{
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < BOUND_MS;) {
        tc_stats_info s;
        tc_stats(c, &s);
        uint64_t v;
        memcpy(&v, (char *)&s + offset, sizeof(v));
        if (v >= atleast)
            return 1;
        usleep(1000);
    }
    return 0;
}
#define WAIT_STAT(c, field, n)                                                \
    wait_stat((c), offsetof(tc_stats_info, field), (n))

static tc_stats_info stats_of(tc_cache *c)
{
    tc_stats_info s;
    tc_stats(c, &s);
    return s;
}

/* ---- a peer process with a cache of its own (peer.h) ---- */

typedef struct peer_at {
    const char *ns;
    int mode;
} peer_at;

static tc_cache *peer_open(void *ud)
{
    const peer_at *at = ud;
    return open_mode(at->ns, at->mode);
}

/* Its W replies in microseconds: the lag figures reported below. */
static int peer_start(th_peer *p, const char *ns, int mode)
{
    peer_at at = {ns, mode}; /* the child has its own copy */
    th_peer_conf conf = {.open = peer_open, .wait = wait_value, .ud = &at};
    return th_peer_start(p, &conf);
}

/* ---- lag figures, printed for the record ---- */

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void report(const char *what, long *us, int n)
{
    if (n == 0)
        return;
    qsort(us, (size_t)n, sizeof(long), cmp_long);
    fprintf(stderr, "  %-34s n=%d p50=%ld us p99=%ld us max=%ld us\n", what, n,
            us[n / 2], us[(n * 99) / 100], us[n - 1]);
}

/* ---- tests ---- */

static void overwrite_and_delete(int mode, const char *ns)
{
    th_peer b; /* forked first: this process has no threads yet */
    CU_ASSERT_FATAL(peer_start(&b, ns, mode) == 0);
    tc_cache *a = open_mode(ns, mode);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    long lag[40];
    int n = 0, bad = 0;
    for (int i = 0; i < 20; i++) {
        char v1[32], v2[32];
        snprintf(v1, sizeof(v1), "one-%d", i);
        snprintf(v2, sizeof(v2), "two-%d", i);
        CU_ASSERT_EQUAL(tc_set(a, "k", v1, strlen(v1), 0), TC_OK);
        CU_ASSERT(atol(th_peer_ask(&b, "W k %s", v1)) >= 0);
        /* warm: now the peer answers from its L1 */
        CU_ASSERT_STRING_EQUAL(th_peer_ask(&b, "H k"), "1");
        CU_ASSERT_EQUAL(tc_set(a, "k", v2, strlen(v2), 0), TC_OK);
        long us = atol(th_peer_ask(&b, "W k %s", v2));
        bad += us < 0;
        if (us >= 0)
            lag[n++] = us;
        CU_ASSERT_EQUAL(tc_del(a, "k"), TC_OK);
        us = atol(th_peer_ask(&b, "W k -"));
        bad += us < 0;
        if (us >= 0)
            lag[n++] = us;
    }
    CU_ASSERT_EQUAL(bad, 0);
    report(mode == TC_COHERENCE_CHANNEL ? "peer sees change (channel)"
                                        : "peer sees change (tracking)",
           lag, n);
    CU_ASSERT_EQUAL(th_peer_stop(&b), 0);
    tc_close(a);
}

static void test_overwrite_delete_tracking(void)
{
    overwrite_and_delete(TC_COHERENCE_AUTO, "owt");
}

static void test_overwrite_delete_channel(void)
{
    overwrite_and_delete(TC_COHERENCE_CHANNEL, "owc");
}

/* A valid envelope for raw writes by "another program". */
static void raw_set_value(const char *rkey, const char *val, int px)
{
    tc__envelope e = {0,           tc__wall_ms() + 60000,
                      0,           (const unsigned char *)val,
                      strlen(val), 0};
    char *buf;
    size_t len;
    CU_ASSERT_FATAL(tc__env_encode(&e, &buf, &len) == TC_OK);
    redisReply *r =
        th_redis_cmd(th_srv, "SET %s %b PX %d", rkey, buf, len, px);
    CU_ASSERT(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    tc__free(buf);
}

static void raw(const char *cmd, const char *arg)
{
    redisReply *r =
        arg ? th_redis_cmd(th_srv, cmd, arg) : th_redis_cmd(th_srv, cmd);
    CU_ASSERT_PTR_NOT_NULL(r);
    freeReplyObject(r);
}

static void test_external_changes(void)
{
    tc_cache *c = open_mode("ext", TC_COHERENCE_AUTO);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(stats_of(c).coherent, 1);
    /* another client overwrites */
    CU_ASSERT_EQUAL(tc_set(c, "k", "mine", 4, 0), TC_OK);
    CU_ASSERT(wait_value(c, "k", "mine") >= 0);
    raw_set_value("ext:{k}", "theirs", 60000);
    CU_ASSERT(wait_value(c, "k", "theirs") >= 0);
    /* another client deletes */
    CU_ASSERT(wait_value(c, "k", "theirs") >= 0); /* in the L1 again */
    raw("DEL %s", "ext:{k}");
    CU_ASSERT(wait_value(c, "k", NULL) >= 0);
    /* expiry in Redis, well before the L1's own TTL */
    CU_ASSERT_EQUAL(tc_set(c, "e", "short", 5, 60000), TC_OK);
    CU_ASSERT(wait_value(c, "e", "short") >= 0);
    raw("PEXPIRE %s 150", "ext:{e}");
    CU_ASSERT(wait_value(c, "e", NULL) >= 0);
    /* FLUSHDB: a nil invalidation empties the L1 */
    CU_ASSERT_EQUAL(tc_set(c, "f", "x", 1, 0), TC_OK);
    CU_ASSERT(wait_value(c, "f", "x") >= 0);
    uint64_t flushes = stats_of(c).l1_flushes;
    raw("FLUSHDB", NULL);
    CU_ASSERT(WAIT_STAT(c, l1_flushes, flushes + 1));
    CU_ASSERT_EQUAL(stats_of(c).l1_entries, 0);
    CU_ASSERT(wait_value(c, "f", NULL) >= 0);
    tc_close(c);
}

static void test_client_kill_pubsub(void)
{
    tc_cache *c = open_mode("kill", TC_COHERENCE_AUTO);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v1", 2, 0), TC_OK);
    CU_ASSERT(wait_value(c, "k", "v1") >= 0);
    /* changed while the link is down (in the kill's own transaction: the
       link may be back a moment later, when a change would be heard):
       never the old value */
    CU_ASSERT_EQUAL(th_kill_links_and_set(th_srv, "kill:{k}", "v2"), 0);
    CU_ASSERT(WAIT_STAT(c, link_losses, 1));
    char buf[16];
    CU_ASSERT_EQUAL(th_get_str(c, "k", buf, sizeof(buf)), TC_OK);
    CU_ASSERT_STRING_EQUAL(buf, "v2");
    /* resubscribed: the L1 serves again */
    CU_ASSERT(WAIT_STAT(c, coherent, 1));
    th_get_str(c, "k", buf, sizeof(buf));
    uint64_t hits = stats_of(c).l1_hits;
    CU_ASSERT_EQUAL(th_get_str(c, "k", buf, sizeof(buf)), TC_OK);
    CU_ASSERT_STRING_EQUAL(buf, "v2");
    CU_ASSERT(WAIT_STAT(c, l1_hits, hits + 1));
    tc_close(c);
}

/* A lost link and the changes it missed. MULTI makes them land between
   the kill and the resubscription: no message can tell the L1 of them.
   With revalidation the unchanged entries are served from the L1 again
   and the changed ones are read from Redis; without, the L1 starts
   empty. */
#define RV_KEYS 200
#define RV_CHANGED 10
static void reconnect(int reval, const char *ns)
{
    revalidate = reval;
    tc_cache *c = open_mode(ns, TC_COHERENCE_AUTO);
    revalidate = 1;
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char key[16], val[16], buf[16], rkey[32];
    for (int i = 0; i < RV_KEYS; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        CU_ASSERT_EQUAL(tc_set(c, key, val, strlen(val), 0), TC_OK);
    }
    /* a value another program wrote, without a write version */
    snprintf(rkey, sizeof(rkey), "%s:{foreign}", ns);
    raw_set_value(rkey, "f1", 60000);
    /* the echoes of our own writes drop them: read them back in */
    usleep(100 * 1000);
    for (int i = 0; i < RV_KEYS; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CU_ASSERT_EQUAL(th_get_str(c, key, buf, sizeof(buf)), TC_OK);
    }
    CU_ASSERT_EQUAL(th_get_str(c, "foreign", buf, sizeof(buf)), TC_OK);
    tc_stats_info s0 = stats_of(c);
    CU_ASSERT_EQUAL(s0.l1_entries, RV_KEYS + 1);

    redisContext *x = th_redis_connect(th_srv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    redisAppendCommand(x, "MULTI");
    redisAppendCommand(x, "CLIENT KILL TYPE pubsub");
    for (int i = 0; i < RV_CHANGED; i++) {
        snprintf(rkey, sizeof(rkey), "%s:{k%d}", ns, i * 7);
        if (i % 2)
            redisAppendCommand(x, "DEL %s", rkey);
        else
            redisAppendCommand(x, "SET %s %s", rkey, "junk");
    }
    redisAppendCommand(x, "EXEC");
    for (int i = 0; i < RV_CHANGED + 3; i++) {
        redisReply *r = NULL;
        CU_ASSERT_EQUAL(redisGetReply(x, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    redisFree(x);
    CU_ASSERT(WAIT_STAT(c, link_losses, 1));
    CU_ASSERT(WAIT_STAT(c, coherent, 1));
    if (reval) { /* every entry checked: the changed ones and the foreign
                    one dropped */
        CU_ASSERT(WAIT_STAT(c, l1_revalidated, RV_KEYS - RV_CHANGED));
        CU_ASSERT(WAIT_STAT(c, l1_revalidate_drops, RV_CHANGED + 1));
    }

    tc_stats_info s1 = stats_of(c);
    int hits = 0;
    for (int i = 0; i < RV_KEYS; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        int rc = th_get_str(c, key, buf, sizeof(buf));
        if (i % 7 == 0 && i / 7 < RV_CHANGED) {
            /* junk is not a tiercache value: a miss, as is a deleted key */
            CU_ASSERT_EQUAL(rc, TC_MISS);
        } else {
            CU_ASSERT_EQUAL(rc, TC_OK);
            CU_ASSERT_STRING_EQUAL(buf, val);
            hits++;
        }
    }
    tc_stats_info s2 = stats_of(c);
    if (reval) {
        /* kept: served from the L1, not one GET for them */
        CU_ASSERT_EQUAL(s2.l1_revalidated, (uint64_t)hits);
        CU_ASSERT_EQUAL(s2.l1_revalidate_drops, RV_CHANGED + 1);
        CU_ASSERT_EQUAL(s2.l1_hits - s1.l1_hits, (uint64_t)hits);
        CU_ASSERT_EQUAL(s2.l1_flushes, s0.l1_flushes);
    } else {
        CU_ASSERT_EQUAL(s2.l1_revalidated, 0);
        CU_ASSERT(s2.l1_flushes > s0.l1_flushes);
        CU_ASSERT_EQUAL(s2.l2_hits - s1.l2_hits, (uint64_t)hits);
    }
    /* the foreign value could not be checked: read from Redis again */
    uint64_t l2 = stats_of(c).l2_hits;
    CU_ASSERT_EQUAL(th_get_str(c, "foreign", buf, sizeof(buf)), TC_OK);
    CU_ASSERT_STRING_EQUAL(buf, "f1");
    CU_ASSERT_EQUAL(stats_of(c).l2_hits, l2 + 1);
    tc_close(c);
}

static void test_reconnect_revalidates(void)
{
    reconnect(1, "rv1");
}

static void test_reconnect_flushes(void)
{
    reconnect(0, "rv0");
}

/* A delete made while Redis is frozen is replayed when it answers again;
   no process, and not Redis, returns the deleted value after that. */
static void test_delete_while_frozen(void)
{
    th_peer b;
    CU_ASSERT_FATAL(peer_start(&b, "frz", TC_COHERENCE_AUTO) == 0);
    tc_cache *a = open_mode("frz", TC_COHERENCE_AUTO);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(tc_set(a, "k", "old", 3, 0), TC_OK);
    CU_ASSERT(atol(th_peer_ask(&b, "W k old")) >= 0);
    th_redis_freeze(th_srv);
    uint64_t t0 = th_now_ms();
    CU_ASSERT_EQUAL(tc_del(a, "k"), TC_OK);
    CU_ASSERT(th_now_ms() - t0 < 1500);
    CU_ASSERT(stats_of(a).replay_queued >= 1);
    /* the peer's link goes silent: its L1 is bypassed, Redis unreachable */
    CU_ASSERT(atol(th_peer_ask(&b, "W k -")) >= 0);
    th_redis_thaw(th_srv);
    CU_ASSERT(WAIT_STAT(a, replay_done, 1));
    redisReply *r = th_redis_cmd(th_srv, "EXISTS %s", "frz:{k}");
    CU_ASSERT(r && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    freeReplyObject(r);
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&b, "G k"), "M");
    char buf[8];
    CU_ASSERT_EQUAL(th_get_str(a, "k", buf, sizeof(buf)), TC_MISS);
    CU_ASSERT_EQUAL(th_peer_stop(&b), 0);
    tc_close(a);
}

static void prefix_and_flush(int mode, const char *ns)
{
    th_peer b;
    CU_ASSERT_FATAL(peer_start(&b, ns, mode) == 0);
    tc_cache *a = open_mode(ns, mode);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(tc_set(a, "inv:1", "i1", 2, 0), TC_OK);
    CU_ASSERT_EQUAL(tc_set(a, "inv:2", "i2", 2, 0), TC_OK);
    CU_ASSERT_EQUAL(tc_set(a, "user:1", "u1", 2, 0), TC_OK);
    CU_ASSERT(atol(th_peer_ask(&b, "W inv:1 i1")) >= 0);
    CU_ASSERT(atol(th_peer_ask(&b, "W user:1 u1")) >= 0);
    CU_ASSERT_EQUAL(tc_del_prefix(a, "inv:"), TC_OK);
    CU_ASSERT(atol(th_peer_ask(&b, "W inv:1 -")) >= 0);
    CU_ASSERT_STRING_EQUAL(th_peer_ask(&b, "G user:1"), "V u1");
    CU_ASSERT_EQUAL(tc_flush(a), TC_OK);
    CU_ASSERT(atol(th_peer_ask(&b, "W user:1 -")) >= 0);
    CU_ASSERT_EQUAL(th_peer_stop(&b), 0);
    tc_close(a);
}

static void test_prefix_flush_tracking(void)
{
    prefix_and_flush(TC_COHERENCE_AUTO, "pft");
}

static void test_prefix_flush_channel(void)
{
    prefix_and_flush(TC_COHERENCE_CHANNEL, "pfc");
}

static void test_foreign_channel_message(void)
{
    tc_cache *c = open_mode("fcm", TC_COHERENCE_CHANNEL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    uint64_t errs = stats_of(c).codec_errors;
    raw("PUBLISH fcm:__tc:inval %s", "not a message");
    raw("PUBLISH fcm:__tc:inval %s", "\x94\x01\x09\x00\xc4\x00");
    CU_ASSERT(WAIT_STAT(c, codec_errors, errs + 2));
    CU_ASSERT_EQUAL(stats_of(c).coherent, 1);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    tc_close(c);
}

/* A prefork parent opens, then forks: each child uses the inherited
   handle. No shared socket, coherence between the children. */
static int prefork_child(tc_cache *c, int i, int go_fd)
{
    char key[16], val[16], buf[32];
    int bad = 0;
    snprintf(key, sizeof(key), "child%d", i);
    snprintf(val, sizeof(val), "from%d", i);
    bad += wait_value(c, "base", "v0") < 0;
    for (int j = 0; j < 200; j++) /* interleaved traffic on each socket */
        bad += tc_set(c, key, val, strlen(val), 0) != TC_OK;
    for (int j = 0; j < 4; j++) {
        char other[16], want[16];
        snprintf(other, sizeof(other), "child%d", j);
        snprintf(want, sizeof(want), "from%d", j);
        bad += wait_value(c, other, want) < 0;
    }
    char go;
    bad += read(go_fd, &go, 1) != 1; /* the parent has overwritten base */
    bad += wait_value(c, "base", "v1") < 0;
    bad += th_get_str(c, "base", buf, sizeof(buf)) != TC_OK;
    tc_close(c);
    return bad;
}

/* ThreadSanitizer cannot follow a child that starts threads after a fork
   of a threaded parent: glibc hands the new thread the dead listener's
   descriptor, and TSan aborts on the reused id. The plain, ASan and
   valgrind runs cover this test. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

static void test_prefork(void)
{
#ifdef UNDER_TSAN
    fprintf(stderr, "  skipped under ThreadSanitizer (see the comment)\n");
    return;
#endif
    tc_cache *c = open_mode("pre", TC_COHERENCE_AUTO);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(tc_set(c, "base", "v0", 2, 0), TC_OK);
    int go[2];
    CU_ASSERT_FATAL(pipe(go) == 0);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        if (kids[i] == 0)
            _exit(prefork_child(c, i, go[0]));
    }
    /* the parent keeps using its handle meanwhile */
    for (int i = 0; i < 4; i++) {
        char key[16], want[16];
        snprintf(key, sizeof(key), "child%d", i);
        snprintf(want, sizeof(want), "from%d", i);
        CU_ASSERT(wait_value(c, key, want) >= 0);
    }
    CU_ASSERT_EQUAL(tc_set(c, "base", "v1", 2, 0), TC_OK);
    CU_ASSERT(write(go[1], "gggg", 4) == 4);
    for (int i = 0; i < 4; i++) {
        int st = 0;
        waitpid(kids[i], &st, 0);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    close(go[0]);
    close(go[1]);
    tc_stats_info s = stats_of(c);
    CU_ASSERT_EQUAL(s.coherent, 1);
    CU_ASSERT_EQUAL(s.backend_errors, 0);
    tc_close(c);
}

/* A child that closes the inherited handle before using it must leave
   the parent's listener alone (not wake it, not join it). */
static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 +
           (double)u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static void test_close_in_child(void)
{
    tc_cache *c = open_mode("cic", TC_COHERENCE_AUTO);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    pid_t kid = fork();
    if (kid == 0) {
        tc_close(c);
        _exit(0);
    }
    int st = 0;
    waitpid(kid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    double t0 = cpu_seconds();
    usleep(500 * 1000);
    double used = cpu_seconds() - t0;
    CU_ASSERT(used < 0.25); /* an idle listener, not a spinning one */
    CU_ASSERT_EQUAL(stats_of(c).coherent, 1);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    CU_ASSERT(wait_value(c, "k", "v") >= 0);
    tc_close(c);
}

/* ---- the stress run ----
   Each key has one writer process, so its versions are totally ordered
   by the writer's sequence numbers. Every process logs its operations
   with CLOCK_MONOTONIC (one clock for the machine); the checker counts
   reads that returned a version older than one whose write had been
   acknowledged more than STALE_MS before the read began. */

#define STRESS_PROCS 3
#define STRESS_KEYS 6 /* per process */
/* Log slots per process: room for a few thousand operations a second. */
static int stress_slots = 8192;
#define STRESS_SLOTS stress_slots
#define STALE_MS 100

typedef struct op {
    int key;             /* global key number */
    int write;           /* 1: set or delete, 0: read */
    long seq;            /* write: its version (odd: set, even: delete);
                            read: the version read, 0 for a miss */
    uint64_t start, end; /* microseconds */
} op;

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* What a stress process reports besides its log. */
typedef struct stress_tail {
    int n;
    uint64_t losses, kept; /* link_losses, l1_revalidated */
} stress_tail;

static void stress_proc(int id, int mode, const char *ns, double seconds,
                        op *log, stress_tail *tail)
{
    /* The bound checked is the coherent L1's. On a loaded machine a
       200 ms stall drops the link (2 x PING_MS), and a degraded L1 would
       then serve entries up to its own, documented, 1 s: bypassed here. */
    tc_cache *c = open_degraded(ns, mode, 0);
    if (!c)
        _exit(3);
    long seq[STRESS_PROCS * STRESS_KEYS] = {0};
    unsigned r = 7u + (unsigned)id * 104729u;
    uint64_t stop = now_us() + (uint64_t)(seconds * 1e6);
    int n = 0, bad = 0;
    /* keys that never change, which a revalidation may keep: read too,
       not logged, but never anything else than what was written */
    char skey[16], sbuf[16];
    snprintf(skey, sizeof(skey), "s%d", id);
    tc_set(c, skey, "still", 5, 0);
    while (now_us() < stop && n < STRESS_SLOTS) {
        r = r * 1103515245u + 12345u;
        if ((r >> 12) % 4 == 0) {
            snprintf(skey, sizeof(skey), "s%u", (r >> 14) % STRESS_PROCS);
            if (th_get_str(c, skey, sbuf, sizeof(sbuf)) == TC_OK)
                bad += strcmp(sbuf, "still") != 0;
            continue;
        }
        int k = (int)((r >> 8) % (STRESS_PROCS * STRESS_KEYS));
        char key[16], val[32], buf[32];
        snprintf(key, sizeof(key), "k%d", k);
        op *o = &log[n++];
        o->key = k;
        o->start = now_us();
        if (k / STRESS_KEYS == id && (r >> 20) % 3 == 0) { /* my key */
            long v = ++seq[k];
            o->write = 1;
            o->seq = v;
            if (v % 2) {
                snprintf(val, sizeof(val), "%ld", v);
                tc_set(c, key, val, strlen(val), 0);
            } else {
                tc_del(c, key);
            }
        } else {
            o->write = 0;
            o->seq =
                th_get_str(c, key, buf, sizeof(buf)) == TC_OK ? atol(buf) : 0;
        }
        o->end = now_us();
        usleep((r >> 4) % 400);
    }
    tc_stats_info s;
    tc_stats(c, &s);
    *tail = (stress_tail){n, s.link_losses, s.l1_revalidated};
    tc_close(c);
    if (bad)
        _exit(4);
}

/* Counts stale reads in the merged logs. */
static long check_stale(op **logs, const int *n, long *reads)
{
    long stale = 0;
    *reads = 0;
    for (int p = 0; p < STRESS_PROCS; p++)
        for (int i = 0; i < n[p]; i++) {
            const op *rd = &logs[p][i];
            if (rd->write)
                continue;
            ++*reads;
            /* the newest version of rd->key acknowledged before the
               read began minus the bound */
            long newest = -1;
            const op *w = logs[rd->key / STRESS_KEYS];
            for (int j = 0; j < n[rd->key / STRESS_KEYS]; j++)
                if (w[j].write && w[j].key == rd->key &&
                    w[j].end + STALE_MS * 1000 < rd->start &&
                    w[j].seq > newest)
                    newest = w[j].seq;
            if (newest < 0)
                continue;
            /* A value (odd version) must be at least that new. A miss is
               right after a delete (even version), or when a newer
               delete had begun before the read ended. */
            long got = rd->seq;
            int ok = got ? got >= newest : newest % 2 == 0;
            for (int j = 0; !ok && !got && j < n[rd->key / STRESS_KEYS]; j++)
                ok = w[j].write && w[j].key == rd->key && w[j].seq > newest &&
                     w[j].seq % 2 == 0 && w[j].start < rd->end;
            stale += !ok;
        }
    return stale;
}

static void *mmap_shared(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* kill_ms: every this often, CLIENT KILL TYPE pubsub cuts every
   process's link (0: never), and an ACL keeps it from subscribing again
   for DOWN_MS, so that writes land unseen meanwhile. */
#define DOWN_MS 100
static void stress(int mode, const char *ns, double seconds, int kill_ms)
{
    op *logs[STRESS_PROCS];
    int n[STRESS_PROCS];
    pid_t pids[STRESS_PROCS];
    uint64_t losses = 0, kept = 0;
    size_t size = STRESS_SLOTS * sizeof(op) + sizeof(stress_tail);
    for (int p = 0; p < STRESS_PROCS; p++) {
        logs[p] = mmap_shared(size);
        CU_ASSERT_PTR_NOT_NULL_FATAL(logs[p]);
    }
    for (int p = 0; p < STRESS_PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            stress_tail *tail = (stress_tail *)(logs[p] + STRESS_SLOTS);
            stress_proc(p, mode, ns, seconds, logs[p], tail);
            _exit(0);
        }
    }
    int kills = 0;
    for (uint64_t end = now_us() + (uint64_t)(seconds * 1e6);
         kill_ms && now_us() + (uint64_t)kill_ms * 1000 < end; kills++) {
        usleep((useconds_t)(kill_ms - DOWN_MS) * 1000);
        raw("ACL SETUSER default -subscribe", NULL);
        raw("CLIENT KILL TYPE pubsub", NULL);
        usleep(DOWN_MS * 1000);
        raw("ACL SETUSER default +subscribe", NULL);
    }
    for (int p = 0; p < STRESS_PROCS; p++) {
        int st = 0;
        waitpid(pids[p], &st, 0);
        CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        stress_tail *tail = (stress_tail *)(logs[p] + STRESS_SLOTS);
        n[p] = tail->n;
        losses += tail->losses;
        kept += tail->kept;
    }
    long reads;
    long stale = check_stale(logs, n, &reads);
    long writes = 0;
    for (int p = 0; p < STRESS_PROCS; p++)
        for (int i = 0; i < n[p]; i++)
            writes += logs[p][i].write;
    fprintf(stderr,
            "  stress (%s, %.1f s): %d processes, %ld reads, %ld writes, "
            "%ld stale (> %d ms)",
            mode == TC_COHERENCE_CHANNEL ? "channel" : "tracking", seconds,
            STRESS_PROCS, reads, writes, stale, STALE_MS);
    if (kill_ms)
        fprintf(stderr,
                "; link killed %d times, %llu losses seen, %llu entries kept "
                "by revalidation",
                kills, (unsigned long long)losses, (unsigned long long)kept);
    fprintf(stderr, "\n");
    CU_ASSERT(reads > 100);
    CU_ASSERT(writes > 20);
    CU_ASSERT_EQUAL(stale, 0);
    if (kill_ms) { /* the kills did cut links, and entries were kept */
        CU_ASSERT(kills > 0 && losses >= (uint64_t)kills);
        CU_ASSERT(kept > 0);
    }
    for (int p = 0; p < STRESS_PROCS; p++)
        munmap(logs[p], size);
}

static double stress_seconds(void)
{
    const char *s = getenv("TC_STRESS_SECONDS");
    double v = s ? atof(s) : 0;
    return v > 0 ? v : 2.0;
}

static void size_logs(double seconds)
{
    stress_slots = (int)(seconds * 6000) + 4096;
}

static void test_stress_tracking(void)
{
    size_logs(stress_seconds());
    stress(TC_COHERENCE_AUTO, "stt", stress_seconds(), 0);
}

/* The same, the links cut every KILL_MS (more often than once a second,
   so that a short run sees several): reads of entries kept through a
   reconnect are held to the same bound. */
#define KILL_MS 250
static void test_stress_kill_tracking(void)
{
    size_logs(stress_seconds());
    stress(TC_COHERENCE_AUTO, "skt", stress_seconds(), KILL_MS);
}

static void test_stress_kill_channel(void)
{
    size_logs(stress_seconds());
    stress(TC_COHERENCE_CHANNEL, "skc", stress_seconds(), KILL_MS);
}

static void test_stress_channel(void)
{
    size_logs(stress_seconds());
    stress(TC_COHERENCE_CHANNEL, "stc", stress_seconds(), 0);
}

/* ---- lag, in one process: set/del on one cache, spin on the other's
   L1 until the entry is gone; beside a raw PUBLISH -> receive ---- */

static long since_us(uint64_t t0)
{
    return (long)(now_us() - t0);
}

static tc_value *l1_peek(tc_cache *c)
{
    return tc__l1_get(c->l1, "lag", 3, tc__hash("lag", 3), UINT64_MAX);
}

static void lag_of(int mode, const char *ns, const char *label)
{
    tc_cache *a = open_mode(ns, mode), *b = open_mode(ns, mode);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    long lag[200];
    int n = 0, lost = 0;
    for (int i = 0; i < 200; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        tc_set(a, "lag", v, strlen(v), 0);
        if (wait_value(b, "lag", v) < 0 || !th_warm(b, "lag"))
            continue;
        tc_value *held;
        uint64_t t0;
        if (i % 2) {
            snprintf(v, sizeof(v), "w%d", i);
            tc_set(a, "lag", v, strlen(v), 0);
        } else {
            tc_del(a, "lag");
        }
        t0 = now_us();
        while ((held = l1_peek(b)) && since_us(t0) < BOUND_MS * 1000L) {
            tc_value_release(held);
            sched_yield(); /* the listener must run, also under valgrind */
        }
        if (held) {
            tc_value_release(held);
            lost++;
        } else {
            lag[n++] = since_us(t0);
        }
    }
    CU_ASSERT_EQUAL(lost, 0);
    CU_ASSERT(n > 100);
    report(label, lag, n);
    tc_close(a);
    tc_close(b);
}

static void test_lag(void)
{
    /* the floor: a raw PUBLISH, received on a subscribed connection */
    redisContext *sub = th_redis_connect(th_srv),
                 *pub = th_redis_connect(th_srv);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sub);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pub);
    freeReplyObject(redisCommand(sub, "SUBSCRIBE floor"));
    long raw_lag[200];
    for (int i = 0; i < 200; i++) {
        uint64_t t0 = now_us();
        freeReplyObject(redisCommand(pub, "PUBLISH floor x"));
        void *r = NULL;
        CU_ASSERT_EQUAL(redisGetReply(sub, &r), REDIS_OK);
        raw_lag[i] = since_us(t0);
        freeReplyObject(r);
    }
    report("raw PUBLISH -> receive (floor)", raw_lag, 200);
    redisFree(sub);
    redisFree(pub);
    lag_of(TC_COHERENCE_AUTO, "lgt", "set/del -> other L1 drop (tracking)");
    lag_of(TC_COHERENCE_CHANNEL, "lgc", "set/del -> other L1 drop (channel)");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* a dead peer fails its test, not the run */
    static const th_test tests[] = {
        {"overwrite_delete_tracking", test_overwrite_delete_tracking},
        {"overwrite_delete_channel", test_overwrite_delete_channel},
        {"external_changes", test_external_changes},
        {"client_kill_pubsub", test_client_kill_pubsub},
        {"reconnect_revalidates", test_reconnect_revalidates},
        {"reconnect_flushes", test_reconnect_flushes},
        {"delete_while_frozen", test_delete_while_frozen},
        {"prefix_flush_tracking", test_prefix_flush_tracking},
        {"prefix_flush_channel", test_prefix_flush_channel},
        {"foreign_channel_message", test_foreign_channel_message},
        {"prefork", test_prefork},
        {"close_in_child", test_close_in_child},
        {"stress_tracking", test_stress_tracking},
        {"stress_channel", test_stress_channel},
        {"stress_kill_tracking", test_stress_kill_tracking},
        {"stress_kill_channel", test_stress_kill_channel},
        {"lag", test_lag},
        {NULL, NULL},
    };
    return th_run_redis("coherence", tests);
}
