/* SPDX-License-Identifier: BSD-3-Clause */
/* A Redis that answers but refuses: a wrong password, a database the
   server does not have, an ACL whose key pattern misses the namespace, a
   replica. Each must be told apart from Redis being unreachable, in
   tc_health, in last_error (the server's words, never the password) and
   in one error line naming the endpoint; strict mode fails tc_open. */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "l2.h"
#include "peer.h"
#include "topo.h"

#define SECRET "s3cret-do-not-log"

/* ---- captured log lines ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char lines[32][512];
static int levels[32];
static int nlines;

static void capture(void *ud, int level, const char *msg)
{
    (void)ud;
    pthread_mutex_lock(&log_mu);
    if (nlines < 32) {
        snprintf(lines[nlines], sizeof(lines[0]), "%s", msg);
        levels[nlines++] = level;
    }
    pthread_mutex_unlock(&log_mu);
}

static void reset_log(void)
{
    pthread_mutex_lock(&log_mu);
    nlines = 0;
    pthread_mutex_unlock(&log_mu);
}

/* Lines at `level` that hold every one of the (NULL-terminated) words. */
static int count_lines(int level, const char *w1, const char *w2)
{
    int n = 0;
    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < nlines; i++)
        if (levels[i] == level && strstr(lines[i], w1) &&
            (!w2 || strstr(lines[i], w2)))
            n++;
    pthread_mutex_unlock(&log_mu);
    return n;
}

/* No line, at any level, carries the password. */
static int secret_logged(void)
{
    int n = 0;
    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < nlines; i++)
        if (strstr(lines[i], SECRET) || strstr(lines[i], "wrong-pw"))
            n++;
    pthread_mutex_unlock(&log_mu);
    return n;
}

static void logged_options(const th_redis *r, tc_options *o, int strict)
{
    th_options(r, o);
    o->log_fn = capture;
    o->log_level = TC_LOG_DEBUG;
    o->strict = strict;
}

static char endpoint[64];

static const char *endpoint_of(const th_redis *r)
{
    snprintf(endpoint, sizeof(endpoint), "127.0.0.1:%d", th_redis_port(r));
    return endpoint;
}

static void cmd_ok(const th_redis *r, const char *fmt, const char *arg)
{
    redisReply *rep = th_redis_cmd(r, fmt, arg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
    CU_ASSERT_NOT_EQUAL(rep->type, REDIS_REPLY_ERROR);
    freeReplyObject(rep);
}

/* ---- the tests ---- */

/* The new fields came out of reserved[]: the struct keeps its size. */
static void test_health_abi(void)
{
    struct old_health {
        int l2_configured, l2_connected, breaker;
        uint64_t down_since_ms;
        char last_error[128];
        uint64_t reserved[8];
    };
    CU_ASSERT_EQUAL(sizeof(tc_health_info), sizeof(struct old_health));
    CU_ASSERT_STRING_EQUAL(tc_err_name(TC_EREFUSED), "TC_EREFUSED");
    CU_ASSERT_EQUAL(TC_EREFUSED, -8);
}

static void test_unreachable_is_not_refused(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    tc_options o;
    logged_options(r, &o, 1);
    th_redis_kill(r);
    reset_log();
    tc_cache *c;
    /* strict, yet tc_open succeeds: an outage is not a misconfiguration */
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_connected, 0);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_NONE);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "connect"));
    CU_ASSERT_EQUAL(count_lines(TC_LOG_WARN, "unreachable", endpoint_of(r)),
                    1);
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "refused", NULL), 0);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_EBACKEND);
    tc_close(c);
    th_redis_stop(r);
}

static void test_wrong_password(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    tc_options o;
    logged_options(r, &o, 0);
    cmd_ok(r, "CONFIG SET requirepass %s", SECRET);
    snprintf(o.redis_password, sizeof(o.redis_password), "wrong-pw");
    reset_log();
    tc_cache *c;
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_AUTH);
    CU_ASSERT_EQUAL(h.l2_connected, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "AUTH: WRONGPASS"));
    CU_ASSERT_PTR_NULL(strstr(h.last_error, "wrong-pw"));
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "refused", endpoint_of(r)), 1);
    CU_ASSERT_EQUAL(count_lines(TC_LOG_WARN, "unreachable", NULL), 0);
    /* calls keep failing the same way: still one line */
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "refused", NULL), 1);
    CU_ASSERT_EQUAL(secret_logged(), 0);
    tc_close(c);

    o.strict = 1;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EREFUSED);
    CU_ASSERT_PTR_NULL(c);
    /* no password at all: NOAUTH, the connection's first command */
    o.redis_password[0] = '\0';
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EREFUSED);
    o.strict = 0;
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_AUTH);
    CU_ASSERT_EQUAL(h.l2_connected, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "NOAUTH"));
    tc_close(c);
    o.strict = 1;
    /* the right one */
    snprintf(o.redis_password, sizeof(o.redis_password), "%s", SECRET);
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_NONE);
    CU_ASSERT_EQUAL(h.l2_connected, 1);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    CU_ASSERT_EQUAL(secret_logged(), 0);
    tc_close(c);
    th_redis_stop(r);
}

static void test_wrong_db(void)
{
    static const char *const args[] = {"--databases", "2", NULL};
    th_redis *r = th_redis_start_args(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    char port[16];
    snprintf(port, sizeof(port), "%d", th_redis_port(r));
    unsetenv("REDIS_URL");
    setenv("REDIS_HOST", "127.0.0.1", 1);
    setenv("REDIS_PORT", port, 1);
    setenv("REDIS_DB", "5", 1);
    tc_options o;
    tc_options_init(&o);
    unsetenv("REDIS_HOST");
    unsetenv("REDIS_PORT");
    unsetenv("REDIS_DB");
    CU_ASSERT_EQUAL_FATAL(o.redis_db, 5);
    snprintf(o.ns, sizeof(o.ns), "db");
    o.log_fn = capture;
    o.log_level = TC_LOG_INFO;
    reset_log();
    tc_cache *c;
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_DB);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "SELECT: ERR"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "out of range"));
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "database", endpoint_of(r)), 1);
    tc_close(c);
    o.strict = 1;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EREFUSED);
    o.redis_db = 1; /* one it has */
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_NONE);
    tc_close(c);
    th_redis_stop(r);
}

/* A full server answers SELECT with "ERR max number of clients
   reached": Redis is busy, not misconfigured, whatever the db index. */
static void test_full_server_is_not_refused(void)
{
    static const char *const args[] = {"--maxclients", "1", NULL};
    th_redis *r = th_redis_start_args(args);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    redisContext *slot = th_redis_connect(r); /* the only one */
    CU_ASSERT_PTR_NOT_NULL_FATAL(slot);
    redisReply *rep = redisCommand(slot, "PING");
    CU_ASSERT(rep && rep->type == REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    tc_options o;
    logged_options(r, &o, 1);
    o.redis_db = 1;
    reset_log();
    tc_cache *c;
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_NONE);
    CU_ASSERT_EQUAL(h.l2_connected, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "max number of clients"));
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "database", NULL), 0);
    tc_close(c);
    o.redis_db = 0; /* the first answer is then CLIENT SETNAME's */
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_NONE);
    CU_ASSERT_EQUAL(h.l2_connected, 0);
    tc_close(c);
    redisFree(slot);
    th_redis_stop(r);
}

/* The least a tiercache user needs, as docs/operations.md lists it:
   the namespace's keys, its channel and the tracking channel, and these
   commands. */
#define MIN_ACL                                                               \
    "on >" SECRET " resetkeys ~mine:* resetchannels &__redis__:invalidate "   \
    "&mine:__tc:inval -@all +get +getrange +set +del +unlink +scan +ping "    \
    "+publish +evalsha +eval +pexpire +subscribe +client|id "                 \
    "+client|tracking +client|setname %s"

static tc_cache *open_as(const th_redis *r, const char *user, uint32_t lease)
{
    tc_options o;
    logged_options(r, &o, 0);
    snprintf(o.ns, sizeof(o.ns), "mine");
    snprintf(o.redis_username, sizeof(o.redis_username), "%s", user);
    snprintf(o.redis_password, sizeof(o.redis_password), SECRET);
    o.lease_ms = lease;
    tc_cache *c = NULL;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_OK);
    return c;
}

/* Slow enough that its lease is renewed (PEXPIRE) while it runs. */
static int slow_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    usleep(300 * 1000);
    *val = strdup("computed");
    *len = 8;
    return *val ? 0 : -1;
}

static void test_acl_minimal(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cmd_ok(r, "ACL SETUSER tcmin " MIN_ACL, "-debug");
    reset_log();
    tc_cache *w = open_as(r, "tcmin", 200), *rd = open_as(r, "tcmin", 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rd);
    /* every path: set, get, coherence both ways, delete, prefix delete,
       a fetch whose lease is renewed, groups */
    CU_ASSERT_EQUAL(tc_set(w, "k", "v1", 2, 0), TC_OK);
    CU_ASSERT(th_wait_value(rd, "k", "v1", 2000) >= 0);
    CU_ASSERT(th_warm(rd, "k"));
    CU_ASSERT_EQUAL(tc_set(w, "k", "v2", 2, 0), TC_OK);
    CU_ASSERT(th_wait_value(rd, "k", "v2", 2000) >= 0);
    CU_ASSERT_EQUAL(tc_del(w, "k"), TC_OK);
    CU_ASSERT(th_wait_value(rd, "k", NULL, 2000) >= 0);
    CU_ASSERT_EQUAL(tc_set(w, "p:1", "x", 1, 0), TC_OK);
    CU_ASSERT_EQUAL(tc_del_prefix(w, "p:"), TC_OK);
    CU_ASSERT(th_wait_value(rd, "p:1", NULL, 2000) >= 0);
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_fetch(w, "f", 0, slow_compute, NULL, &v), TC_OK);
    CU_ASSERT(v && tc_value_len(v) == 8);
    tc_value_release(v);
    CU_ASSERT(th_wait_value(rd, "f", "computed", 2000) >= 0);
    char key[128];
    CU_ASSERT_EQUAL(tc_group_key(w, key, sizeof(key), "g", "x"), TC_OK);
    CU_ASSERT_EQUAL(tc_group_bump(w, "g"), TC_OK);
    tc_stats_info s;
    tc_health_info h;
    tc_cache *both[2] = {w, rd};
    for (int i = 0; i < 2; i++) {
        tc_stats(both[i], &s);
        tc_health(both[i], &h);
        CU_ASSERT_EQUAL(s.backend_errors, 0);
        CU_ASSERT_EQUAL(s.coherent, 1);
        CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_NONE);
        CU_ASSERT_STRING_EQUAL(h.last_error, "");
    }
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "", NULL), 0);
    CU_ASSERT_EQUAL(count_lines(TC_LOG_WARN, "", NULL), 0);
    /* and a reconnect: the L1 kept through it (GETRANGE), refused
       nothing; the only warning is the loss itself */
    tc_stats(rd, &s);
    uint64_t heard = s.invalidations;
    CU_ASSERT_EQUAL(tc_set(w, "kept", "x", 1, 0), TC_OK);
    /* the write's own invalidation first, so that it cannot drop the
       entry read next after the fact */
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < 3000; usleep(1000)) {
        tc_stats(rd, &s);
        if (s.invalidations > heard)
            break;
    }
    usleep(50 * 1000); /* and those of the writes before, if it was one */
    CU_ASSERT(th_wait_value(rd, "kept", "x", 2000) >= 0);
    CU_ASSERT(th_warm(rd, "kept"));
    cmd_ok(r, "CLIENT KILL TYPE %s", "pubsub");
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < 3000; usleep(1000)) {
        tc_stats(rd, &s);
        if (s.l1_revalidated >= 1)
            break;
    }
    CU_ASSERT(s.l1_revalidated >= 1);
    CU_ASSERT_EQUAL(s.backend_errors, 0);
    CU_ASSERT(th_warm(rd, "kept"));
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "", NULL), 0);
    CU_ASSERT_EQUAL(count_lines(TC_LOG_WARN, "", NULL),
                    count_lines(TC_LOG_WARN, "invalidation link", "down"));
    tc_close(w);
    tc_close(rd);
    th_redis_stop(r);
}

/* An ACL from before revalidation, without GETRANGE: a reconnect
   empties the L1 instead, says so once at warn, and leaves no refusal
   in force (nothing would ever end it). */
static void test_acl_no_getrange(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cmd_ok(r, "ACL SETUSER tcold " MIN_ACL, "-getrange");
    reset_log();
    tc_cache *c = open_as(r, "tcold", 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    usleep(50 * 1000); /* the write's own invalidation */
    CU_ASSERT(th_wait_value(c, "k", "v", 2000) >= 0);
    CU_ASSERT(th_warm(c, "k"));
    tc_stats_info s;
    tc_stats(c, &s);
    uint64_t flushes = s.l1_flushes;
    for (int round = 0; round < 2; round++) {
        cmd_ok(r, "CLIENT KILL TYPE %s", "pubsub");
        for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < 3000;
             usleep(1000)) {
            tc_stats(c, &s);
            if (s.l1_flushes > flushes && s.coherent)
                break;
        }
        CU_ASSERT(s.l1_flushes > flushes);
        flushes = s.l1_flushes;
        /* emptied, not kept: the next read goes to Redis */
        uint64_t l2 = s.l2_hits;
        char buf[8];
        CU_ASSERT_EQUAL(th_get_str(c, "k", buf, sizeof buf), TC_OK);
        tc_stats(c, &s);
        CU_ASSERT_EQUAL(s.l2_hits, l2 + 1);
        CU_ASSERT(th_warm(c, "k"));
    }
    CU_ASSERT_EQUAL(s.l1_revalidated, 0);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_NONE);
    CU_ASSERT_EQUAL(count_lines(TC_LOG_WARN, "refused GETRANGE", NULL), 1);
    tc_close(c);
    th_redis_stop(r);
}

/* Without the channels the link cannot come up: tc_health and the log
   say why in the server's words (NOPERM, the channel). */
static void test_acl_no_channels(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cmd_ok(r, "ACL SETUSER tcnochan " MIN_ACL, "resetchannels");
    reset_log();
    tc_cache *c = open_as(r, "tcnochan", 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    tc_stats_info s;
    tc_stats(c, &s); /* a first call: the listener starts, and fails */
    CU_ASSERT_EQUAL(s.coherent, 0);
    tc_health_info first;
    tc_health(c, &first); /* before any write: the link's own reason */
    CU_ASSERT_EQUAL(first.l2_refused, TC_REFUSAL_ACL);
    CU_ASSERT_PTR_NOT_NULL(strstr(first.last_error, "invalidation link"));
    CU_ASSERT_PTR_NOT_NULL(strstr(first.last_error, "NOPERM"));
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK); /* the pool works */
    tc_health_info h;
    tc_stats(c, &s);
    tc_health(c, &h);
    CU_ASSERT_EQUAL(s.coherent, 0);
    CU_ASSERT_EQUAL(h.l2_connected, 1);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_ACL);
    /* the pool's PUBLISH was refused too, in the same words */
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "NOPERM"));
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "channels"));
    CU_ASSERT_EQUAL(count_lines(TC_LOG_WARN, "invalidation link", "NOPERM"),
                    1);
    CU_ASSERT_EQUAL(secret_logged(), 0);
    tc_close(c);
    th_redis_stop(r);
}

/* A user whose keys are ~other:* cannot touch <ns>:{...}. */
static void test_acl_key_pattern(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cmd_ok(r, "ACL SETUSER tcuser on >" SECRET " ~other:* &* +@all %s",
           "-debug");
    tc_options o;
    logged_options(r, &o, 0);
    snprintf(o.ns, sizeof(o.ns), "mine");
    snprintf(o.redis_username, sizeof(o.redis_username), "tcuser");
    snprintf(o.redis_password, sizeof(o.redis_password), SECRET);
    reset_log();
    tc_cache *c;
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health_info h;
    tc_health(c, &h);
    /* found at open, before any write was lost */
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_ACL);
    CU_ASSERT_EQUAL(h.l2_connected, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "NOPERM"));
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "ACL", endpoint_of(r)), 1);
    CU_ASSERT_EQUAL(h.l2_writes_refused, 0); /* no write tried yet */

    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_ACL);
    CU_ASSERT_EQUAL(h.l2_writes_refused, 1); /* nothing is being stored */
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "SET: NOPERM"));
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "ACL", NULL), 1);
    CU_ASSERT_EQUAL(secret_logged(), 0);

    /* The ACL fixed: the next write lands and health says so. */
    cmd_ok(r, "ACL SETUSER tcuser %s", "~mine:*");
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_writes_refused, 0);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_NONE);
    CU_ASSERT_STRING_EQUAL(h.last_error, "");
    tc_close(c);

    cmd_ok(r, "ACL SETUSER tcuser %s", "resetkeys");
    cmd_ok(r, "ACL SETUSER tcuser %s", "~other:*");
    o.strict = 1;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EREFUSED);
    th_redis_stop(r);
}

/* TC_OK for an error reply, the reply fn of tc__l2_argv. */
static int error_reply_ok(void *ud, const redisReply *r)
{
    (void)ud;
    return r->type == REDIS_REPLY_ERROR ? TC_OK : TC_EBACKEND;
}

static int ignore_value(void *ud, const char *buf, size_t len)
{
    (void)ud;
    (void)buf;
    (void)len;
    return TC_OK;
}

/* INCR of a string that is no number: an error reply, not a refusal. */
typedef struct incr_call {
    tc__l2 *l2;
    int rc;
} incr_call;

static void *incr_not_a_number(void *arg)
{
    incr_call *ic = arg;
    const char *argv[] = {"INCR", "notnum"};
    const size_t lens[] = {4, 6};
    ic->rc = tc__l2_argv(ic->l2, 2, argv, lens, error_reply_ok, NULL);
    return NULL;
}

static long blocked_clients(const th_redis *r)
{
    redisReply *rep = th_redis_cmd(r, "INFO clients");
    const char *at = rep && rep->type == REDIS_REPLY_STRING
                         ? strstr(rep->str, "blocked_clients:")
                         : NULL;
    long n = at ? strtol(at + 16, NULL, 10) : -1;
    freeReplyObject(rep);
    return n;
}

/* A refused connection ends when a connection works, not when a command
   on a connection made before the refusal gets an unrelated error
   reply. The INCR is held by CLIENT PAUSE WRITE on the pool's first
   connection while the second one is refused. */
static void test_conn_refusal_outlives_error_reply(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cmd_ok(r, "SET notnum %s", "abc");
    cmd_ok(r, "ACL SETUSER tcuser on >" SECRET " ~* &* +@all %s", "-debug");
    tc_options o;
    logged_options(r, &o, 0);
    snprintf(o.redis_username, sizeof(o.redis_username), "tcuser");
    snprintf(o.redis_password, sizeof(o.redis_password), SECRET);
    o.pool_size = 2;
    tc__logger lg = {capture, NULL, TC_LOG_DEBUG, NULL};
    tc__counters ctr;
    memset(&ctr, 0, sizeof(ctr));
    tc__l2 *l2;
    tc__topo one = {0};
    CU_ASSERT_EQUAL_FATAL(tc__l2_create(&l2, &o, &one, &lg, &ctr), TC_OK);
    CU_ASSERT_EQUAL(tc__l2_refusal(l2), TC_REFUSAL_NONE);

    cmd_ok(r, "CLIENT PAUSE %s WRITE", "20000");
    incr_call ic = {l2, TC_OK};
    pthread_t t;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, incr_not_a_number, &ic), 0);
    for (int i = 0; i < 1000 && blocked_clients(r) < 1; i++)
        usleep(10000); /* hang bound: 10 s */
    CU_ASSERT_EQUAL(blocked_clients(r), 1);
    cmd_ok(r, "ACL SETUSER tcuser resetpass >%s", "another-pw");
    /* the other connection is made now, and refused */
    CU_ASSERT_EQUAL(tc__l2_get(l2, "k", 1, ignore_value, NULL), TC_EBACKEND);
    CU_ASSERT_EQUAL(tc__l2_refusal(l2), TC_REFUSAL_AUTH);
    cmd_ok(r, "CLIENT UNPAUSE%s", "");
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(ic.rc, TC_OK); /* it got its error reply */
    CU_ASSERT_EQUAL(tc__l2_refusal(l2), TC_REFUSAL_AUTH);
    tc__l2_destroy(l2);
    th_redis_stop(r);
}

/* A demoted primary: a replica answers reads and refuses writes. */
static void test_replica(void)
{
    th_redis *primary = th_redis_start(), *replica = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(primary);
    CU_ASSERT_PTR_NOT_NULL_FATAL(replica);
    char port[16];
    snprintf(port, sizeof(port), "%d", th_redis_port(primary));
    redisReply *rep = th_redis_cmd(replica, "REPLICAOF 127.0.0.1 %s", port);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
    freeReplyObject(rep);
    tc_options o;
    logged_options(replica, &o, 0);
    reset_log();
    tc_cache *c;
    CU_ASSERT_EQUAL_FATAL(tc_open(&c, &o), TC_OK);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_refused, TC_REFUSAL_READONLY);
    CU_ASSERT_PTR_NOT_NULL(strstr(h.last_error, "READONLY"));
    CU_ASSERT_EQUAL(count_lines(TC_LOG_ERROR, "replica", endpoint_of(replica)),
                    1);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_writes_refused, 1);
    CU_ASSERT_EQUAL(h.l2_connected, 1);
    tc_close(c);
    o.strict = 1;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EREFUSED);
    th_redis_stop(replica);
    th_redis_stop(primary);
}

int main(void)
{
    static const th_test tests[] = {
        {"health_abi", test_health_abi},
        {"unreachable_is_not_refused", test_unreachable_is_not_refused},
        {"wrong_password", test_wrong_password},
        {"wrong_db", test_wrong_db},
        {"full_server_is_not_refused", test_full_server_is_not_refused},
        {"acl_key_pattern", test_acl_key_pattern},
        {"acl_minimal", test_acl_minimal},
        {"acl_no_getrange", test_acl_no_getrange},
        {"acl_no_channels", test_acl_no_channels},
        {"replica", test_replica},
        {"conn_refusal_outlives_error_reply",
         test_conn_refusal_outlives_error_reply},
        {NULL, NULL},
    };
    return th_run("refusal", tests);
}
