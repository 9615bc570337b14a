/* SPDX-License-Identifier: BSD-3-Clause */
/* Logs a person can use: what the cache opened, every connection line
   naming its endpoint (never a password), recovery at INFO, the default
   stderr line with a timestamp and the pid, and connections named in
   CLIENT LIST. */
#include <CUnit/CUnit.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define SECRET "pw-never-in-a-log"

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char lines[64][512];
static int levels[64];
static int nlines;

static void capture(void *ud, int level, const char *msg)
{
    (void)ud;
    pthread_mutex_lock(&log_mu);
    if (nlines < 64) {
        snprintf(lines[nlines], sizeof(lines[0]), "%s", msg);
        levels[nlines++] = level;
    }
    pthread_mutex_unlock(&log_mu);
}

/* The level of the first line holding both words, -1 if none. */
static int level_of(const char *w1, const char *w2)
{
    int level = -1;
    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < nlines && level < 0; i++)
        if (strstr(lines[i], w1) && (!w2 || strstr(lines[i], w2)))
            level = levels[i];
    pthread_mutex_unlock(&log_mu);
    return level;
}

static int any_line_has(const char *w)
{
    return level_of(w, NULL) >= 0;
}

static void dump_lines(void)
{
    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < nlines; i++)
        fprintf(stderr, "    [%d] %s\n", levels[i], lines[i]);
    pthread_mutex_unlock(&log_mu);
}

/* Calls until the line shows up, at most about ms. */
static int call_until(tc_cache *c, const char *w1, const char *w2, int ms)
{
    char buf[8];
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < (uint64_t)ms;) {
        if (level_of(w1, w2) >= 0)
            return 1;
        th_get_str(c, "k", buf, sizeof(buf));
        usleep(20000);
    }
    return level_of(w1, w2) >= 0;
}

static void test_lifecycle_lines(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    redisReply *rep = th_redis_cmd(r, "CONFIG SET requirepass %s", SECRET);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
    freeReplyObject(rep);
    tc_options o;
    th_options(r, &o);
    snprintf(o.redis_password, sizeof(o.redis_password), "%s", SECRET);
    o.log_fn = capture;
    o.log_level = TC_LOG_INFO;
    o.breaker_cooldown_ms = 50;
    o.listener_ping_ms = 100;
    char ep[64];
    snprintf(ep, sizeof(ep), "127.0.0.1:%d", th_redis_port(r));
    nlines = 0;
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    /* what it opened, once, at INFO */
    CU_ASSERT_EQUAL(level_of("opened namespace", ep), TC_LOG_INFO);
    CU_ASSERT(any_line_has("coherence auto"));
    CU_ASSERT(any_line_has("(connected)"));
    /* the mode it runs in, from the listener, at INFO */
    CU_ASSERT(call_until(c, "invalidation link up to redis", ep, 5000));
    CU_ASSERT_EQUAL(level_of("invalidation link up", ep), TC_LOG_INFO);
    CU_ASSERT(any_line_has("(tracking)"));

    /* an outage: WARN, with the endpoint */
    th_redis_kill(r);
    CU_ASSERT(call_until(c, "unreachable", ep, 5000));
    CU_ASSERT_EQUAL(level_of("unreachable", ep), TC_LOG_WARN);
    CU_ASSERT(call_until(c, "invalidation link to redis", "down", 5000));
    CU_ASSERT_EQUAL(level_of("invalidation link to redis", "down"),
                    TC_LOG_WARN);
    CU_ASSERT_EQUAL(tc_del(c, "k"), TC_OK); /* queued for replay */

    /* recovery: INFO */
    CU_ASSERT_FATAL(th_redis_restart(r) == 0);
    rep = th_redis_cmd(r, "CONFIG SET requirepass %s", SECRET);
    freeReplyObject(rep);
    CU_ASSERT(call_until(c, "back after", ep, 10000));
    CU_ASSERT_EQUAL(level_of("back after", ep), TC_LOG_INFO);
    CU_ASSERT(call_until(c, "invalidation link up again", ep, 10000));
    CU_ASSERT_EQUAL(level_of("invalidation link up again", ep), TC_LOG_INFO);
    CU_ASSERT(call_until(c, "replayed", NULL, 10000));
    CU_ASSERT_EQUAL(level_of("replayed", NULL), TC_LOG_INFO);
    CU_ASSERT(!any_line_has(SECRET));
    if (CU_get_number_of_failures() > 0)
        dump_lines();
    tc_close(c);
    th_redis_stop(r);
}

/* ---- events: every line named; nothing secret above DEBUG ---- */

#define KEY "key-q8v2"   /* a key's bytes: never above DEBUG */
#define VALUE "val-z9w4" /* a value's bytes: never in any line */
#define EV_MAX 512

static char ev_names[EV_MAX][32];
static char ev_msgs[EV_MAX][512];
static int ev_levels[EV_MAX];
static int nev;
static atomic_int old_fn_calls;

static void capture_event(void *ud, int level, const char *event,
                          const char *msg)
{
    (void)ud;
    pthread_mutex_lock(&log_mu);
    if (nev < EV_MAX) {
        snprintf(ev_names[nev], sizeof(ev_names[0]), "%s", event);
        snprintf(ev_msgs[nev], sizeof(ev_msgs[0]), "%s", msg);
        ev_levels[nev++] = level;
    }
    pthread_mutex_unlock(&log_mu);
}

static void count_old(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)level;
    (void)msg;
    atomic_fetch_add(&old_fn_calls, 1);
}

/* The lowest level event `name` arrived at, -1 if it did not. */
static int event_level(const char *name)
{
    int level = -1;
    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < nev; i++)
        if (strcmp(ev_names[i], name) == 0 &&
            (level < 0 || ev_levels[i] < level))
            level = ev_levels[i];
    pthread_mutex_unlock(&log_mu);
    return level;
}

/* Lines at min_level or above whose text holds w. */
static int lines_with(const char *w, int min_level)
{
    int n = 0;
    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < nev; i++)
        n += ev_levels[i] >= min_level && strstr(ev_msgs[i], w) != NULL;
    pthread_mutex_unlock(&log_mu);
    return n;
}

/* short, dotted, lower case: [a-z]+(.[a-z]+)+ */
static int name_ok(const char *e)
{
    int dots = 0;
    for (const char *p = e; *p; p++) {
        if (*p == '.') {
            if (p == e || p[-1] == '.' || !p[1])
                return 0;
            dots++;
        } else if (!islower((unsigned char)*p)) {
            return 0;
        }
    }
    return dots > 0 && strlen(e) < 32;
}

static int all_names_ok(void)
{
    int ok = nev > 0;
    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < nev; i++)
        if (!name_ok(ev_names[i])) {
            fprintf(stderr, "\n  bad event name \"%s\"\n", ev_names[i]);
            ok = 0;
        }
    pthread_mutex_unlock(&log_mu);
    return ok;
}

static void dump_events(void)
{
    pthread_mutex_lock(&log_mu);
    for (int i = 0; i < nev; i++)
        fprintf(stderr, "    [%d] %s: %s\n", ev_levels[i], ev_names[i],
                ev_msgs[i]);
    pthread_mutex_unlock(&log_mu);
}

static int wait_event(tc_cache *c, const char *name, int ms)
{
    char buf[8];
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < (uint64_t)ms;) {
        if (event_level(name) >= 0)
            return 1;
        th_get_str(c, "other", buf, sizeof(buf));
        usleep(20000);
    }
    return event_level(name) >= 0;
}

static int give_value(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud;
    (void)ttl;
    *val = strdup(VALUE "-computed");
    *len = *val ? strlen(*val) : 0;
    return *val ? 0 : -1;
}

/* The checks below can fail: the scanner finds what it looks for. */
static void test_event_checks_can_fail(void)
{
    CU_ASSERT(name_ok("redis.down"));
    CU_ASSERT(!name_ok("redis"));
    CU_ASSERT(!name_ok("Redis.down"));
    CU_ASSERT(!name_ok("redis..down"));
    CU_ASSERT(!name_ok("redis down"));
    pthread_mutex_lock(&log_mu);
    nev = 0;
    pthread_mutex_unlock(&log_mu);
    capture_event(NULL, TC_LOG_WARN, "x.y", "leaks " SECRET " " KEY);
    CU_ASSERT_EQUAL(lines_with(SECRET, TC_LOG_INFO), 1);
    CU_ASSERT_EQUAL(lines_with(KEY, TC_LOG_ERROR), 0);
    CU_ASSERT_EQUAL(event_level("x.y"), TC_LOG_WARN);
}

/* th_redis_cmd on a server that wants SECRET. */
static void authed_cmd(th_redis *r, const char *cmd)
{
    redisContext *ctx = th_redis_connect(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    redisReply *rep = redisCommand(ctx, "AUTH %s", SECRET);
    CU_ASSERT(rep && rep->type == REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    rep = redisCommand(ctx, cmd);
    CU_ASSERT(rep && rep->type != REDIS_REPLY_ERROR);
    freeReplyObject(rep);
    redisFree(ctx);
}

static void test_events_and_secrets(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    redisReply *rep = th_redis_cmd(r, "CONFIG SET requirepass %s", SECRET);
    CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
    freeReplyObject(rep);
    pthread_mutex_lock(&log_mu);
    nev = 0;
    pthread_mutex_unlock(&log_mu);
    atomic_store(&old_fn_calls, 0);

    /* a bad URL holding the password: refused at open, at ERROR */
    char url[160];
    snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:99999", SECRET);
    setenv("REDIS_URL", url, 1);
    tc_options o;
    tc_options_init(&o);
    unsetenv("REDIS_URL");
    o.log_event_fn = capture_event;
    o.log_level = TC_LOG_DEBUG;
    tc_cache *c = NULL;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
    CU_ASSERT_EQUAL(event_level("options.invalid"), TC_LOG_ERROR);

    /* the real one, by URL with the password; both callbacks set */
    th_options(NULL, &o);
    snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:%d", SECRET,
             th_redis_port(r));
    CU_ASSERT_EQUAL_FATAL(tc_options_from_url(&o, url), TC_OK);
    o.log_fn = count_old;
    o.log_event_fn = capture_event;
    o.log_level = TC_LOG_DEBUG;
    o.breaker_cooldown_ms = 50;
    o.listener_ping_ms = 100;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_EQUAL(event_level("cache.open"), TC_LOG_INFO);
    CU_ASSERT_EQUAL(tc_set(c, KEY, VALUE, strlen(VALUE), 0), TC_OK);
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_fetch(c, KEY "-f", 0, give_value, NULL, &v), TC_OK);
    tc_value_release(v);
    CU_ASSERT(wait_event(c, "link.up", 5000));

    /* a corrupt value under a key */
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "SET %s:{%s-bad} %s", o.ns, KEY,
             VALUE "-corrupt");
    authed_cmd(r, cmd);
    char buf[64];
    CU_ASSERT_EQUAL(th_get_str(c, KEY "-bad", buf, sizeof(buf)), TC_MISS);
    CU_ASSERT_EQUAL(event_level("value.corrupt"), TC_LOG_DEBUG);

    /* refusals: writes the ACL forbids, then allowed again */
    authed_cmd(r, "ACL SETUSER default -set -eval -evalsha");
    tc_set(c, KEY "-refused", VALUE, strlen(VALUE), 0);
    CU_ASSERT_EQUAL(event_level("redis.refused"), TC_LOG_ERROR);
    authed_cmd(r, "ACL SETUSER default +@all");
    CU_ASSERT_EQUAL(tc_set(c, KEY, VALUE, strlen(VALUE), 0), TC_OK);

    /* warming by a prefix of keys, which its info line must not show */
    CU_ASSERT_EQUAL(tc_warm(c, KEY, 0), TC_OK);
    CU_ASSERT_EQUAL(event_level("warm.done"), TC_LOG_INFO);

    /* the DEBUG lines do hold keys: what the check below looks for */
    CU_ASSERT_EQUAL(tc_del_prefix(c, KEY), TC_OK);
    CU_ASSERT(lines_with(KEY, TC_LOG_DEBUG) > 0);

    /* an outage and its recovery */
    th_redis_kill(r);
    CU_ASSERT(wait_event(c, "redis.down", 5000));
    CU_ASSERT(wait_event(c, "link.down", 5000));
    CU_ASSERT_EQUAL(tc_del(c, KEY), TC_OK); /* queued for replay */
    CU_ASSERT_EQUAL(tc_set(c, KEY, VALUE, strlen(VALUE), 0), TC_OK);
    CU_ASSERT_FATAL(th_redis_restart(r) == 0);
    rep = th_redis_cmd(r, "CONFIG SET requirepass %s", SECRET);
    freeReplyObject(rep);
    CU_ASSERT(wait_event(c, "redis.up", 10000));
    CU_ASSERT(wait_event(c, "replay.done", 10000));
    CU_ASSERT_EQUAL(event_level("redis.down"), TC_LOG_WARN);
    CU_ASSERT_EQUAL(event_level("link.down"), TC_LOG_WARN);
    CU_ASSERT_EQUAL(event_level("redis.up"), TC_LOG_INFO);
    CU_ASSERT_EQUAL(event_level("link.up"), TC_LOG_INFO);
    CU_ASSERT_EQUAL(event_level("replay.done"), TC_LOG_INFO);
    tc_close(c);
    th_redis_stop(r);

    CU_ASSERT(all_names_ok());
    CU_ASSERT_EQUAL(atomic_load(&old_fn_calls), 0); /* log_event_fn wins */
    CU_ASSERT_EQUAL(lines_with(SECRET, TC_LOG_DEBUG), 0);
    CU_ASSERT_EQUAL(lines_with(VALUE, TC_LOG_DEBUG), 0);
    CU_ASSERT_EQUAL(lines_with(KEY, TC_LOG_INFO), 0);
    if (CU_get_number_of_failures() > 0)
        dump_events();
}

/* CLIENT LIST shows whose each connection is. */
static void test_client_names(void)
{
    tc_cache *c = th_open(th_srv, "named", NULL);
    CU_ASSERT_EQUAL(tc_set(c, "k", "v", 1, 0), TC_OK);
    char pool[64], listener[64];
    snprintf(pool, sizeof(pool), "name=tc:named:%ld:pool ", (long)getpid());
    snprintf(listener, sizeof(listener), "name=tc:named:%ld:listener ",
             (long)getpid());
    int found = 0;
    for (uint64_t t0 = th_now_ms(); !found && th_now_ms() - t0 < 5000;) {
        redisReply *r = th_redis_cmd(th_srv, "CLIENT LIST");
        CU_ASSERT_FATAL(r && r->type != REDIS_REPLY_ERROR);
        const char *text = r->type == REDIS_REPLY_STRING ? r->str : "";
        found = strstr(text, pool) && strstr(text, listener);
        if (!found && th_now_ms() - t0 >= 4900)
            fprintf(stderr, "\n%s\n", text);
        freeReplyObject(r);
        if (!found)
            usleep(20000);
    }
    CU_ASSERT(found);
    tc_close(c);
}

/* 1 if CLIENT LIST shows a connection named tc:<ns>:<pid>:<role>,
   waiting up to ms for it (0: look once). */
static int has_client(const char *ns, long pid, const char *role, int ms)
{
    char name[96];
    snprintf(name, sizeof(name), "name=tc:%s:%ld:%s ", ns, pid, role);
    uint64_t t0 = th_now_ms();
    for (;;) {
        redisReply *r = th_redis_cmd(th_srv, "CLIENT LIST");
        int found = r && r->type == REDIS_REPLY_STRING && strstr(r->str, name);
        freeReplyObject(r);
        if (found || th_now_ms() - t0 >= (uint64_t)ms)
            return found;
        usleep(20000);
    }
}

/* The parent of a prefork service opens its cache and forks: it keeps
   no listener for a handle it never uses; each child that uses it gets
   its own. */
static void test_listener_on_first_use(void)
{
    tc_cache *c = th_open(th_srv, "lazy", NULL);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_connected, 1);
    CU_ASSERT(has_client("lazy", (long)getpid(), "pool", 0));
    usleep(200 * 1000);
    CU_ASSERT(!has_client("lazy", (long)getpid(), "listener", 0));
    pid_t kid = fork();
    if (kid == 0) {
        char buf[8];
        th_get_str(c, "k", buf, sizeof(buf));
        _exit(has_client("lazy", (long)getpid(), "listener", 5000) ? 0 : 1);
    }
    int st = 0;
    waitpid(kid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT(!has_client("lazy", (long)getpid(), "listener", 0));
    char buf[8];
    CU_ASSERT_EQUAL(th_get_str(c, "k", buf, sizeof(buf)), TC_MISS);
    CU_ASSERT(has_client("lazy", (long)getpid(), "listener", 5000));
    tc_close(c);
}

/* A child's first call rebuilds and starts a listener that logs "link
   up" before its first subscription counts as settled; a log callback
   that calls the same cache (allowed) must find the rebuild done, not
   wait for the rebuilding thread's lock until the settle wait gives up.
   The settle bound is raised to ~22 s so that a callback stuck until
   then misses the 10 s hang bound by far. */
static tc_cache *reenter_cache;
static atomic_int reenter_done;      /* the callback's tc_stats returned */
static atomic_int first_returned;    /* the child's first call returned */
static atomic_int done_before_first; /* ... and it was still waiting */

static void reenter_log(void *ud, int level, const char *msg)
{
    (void)ud;
    (void)level;
    if (!strstr(msg, "invalidation link up"))
        return;
    tc_stats_info s;
    tc_stats(reenter_cache, &s);
    atomic_store(&done_before_first, !atomic_load(&first_returned));
    atomic_store(&reenter_done, 1);
}

static void *first_call(void *arg)
{
    char buf[8];
    th_get_str(arg, "k", buf, sizeof(buf));
    atomic_store(&first_returned, 1);
    return NULL;
}

static int reenter_child(tc_cache *c)
{
    pthread_t t;
    if (pthread_create(&t, NULL, first_call, c) != 0)
        return 2;
    for (int i = 0; i < 1000 && !atomic_load(&reenter_done); i++)
        usleep(10000); /* hang bound: 10 s */
    int ok = atomic_load(&reenter_done) && atomic_load(&done_before_first);
    pthread_join(t, NULL);
    return ok ? 0 : 1;
}

static void test_child_callback_reenters(void)
{
    tc_options o;
    th_options(th_srv, &o);
    snprintf(o.ns, sizeof(o.ns), "reenter");
    o.log_fn = reenter_log;
    o.log_level = TC_LOG_INFO;
    o.connect_timeout_ms = 10000;
    o.command_timeout_ms = 10000;
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    reenter_cache = c;
    pid_t kid = fork(); /* before any use: the listener starts there */
    if (kid == 0)
        _exit(reenter_child(c));
    int st = 0;
    waitpid(kid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    tc_close(c);
}

/* 2026-11-30T08:10:01.123Z tiercache[1234] info: ... */
static int stderr_line_ok(const char *line, const char *want)
{
    int y, mo, d, h, mi, s, ms;
    long pid;
    char level[8];
    int n = 0;
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ tiercache[%ld] %7[a-z]: %n",
               &y, &mo, &d, &h, &mi, &s, &ms, &pid, level, &n) != 9 ||
        n == 0)
        return 0;
    return y >= 2024 && pid == (long)getpid() && strcmp(level, "info") == 0 &&
           strstr(line + n, want) != NULL;
}

static void test_stderr_format(void)
{
    char path[] = "/tmp/tc-logs-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    CU_ASSERT_FATAL(saved >= 0 && dup2(fd, 2) == 2);
    tc_options o;
    th_options(NULL, &o); /* L1-only: the open line alone */
    o.log_level = TC_LOG_INFO;
    tc_cache *c;
    int rc = tc_open(&c, &o);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CU_ASSERT_FATAL(rc == TC_OK);
    tc_close(c);
    char line[512] = "";
    FILE *f = fdopen(fd, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    rewind(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof(line), f));
    fclose(f);
    unlink(path);
    if (!stderr_line_ok(line, "opened namespace"))
        fprintf(stderr, "\n  stderr line: %s\n", line);
    CU_ASSERT(stderr_line_ok(line, "L1 only"));
}

int main(void)
{
    static const th_test tests[] = {
        {"lifecycle_lines", test_lifecycle_lines},
        {"event_checks_can_fail", test_event_checks_can_fail},
        {"events_and_secrets", test_events_and_secrets},
        {"client_names", test_client_names},
        {"stderr_format", test_stderr_format},
        {"listener_on_first_use", test_listener_on_first_use},
        {"child_callback_reenters", test_child_callback_reenters},
        {NULL, NULL},
    };
    return th_run_redis("logs", tests);
}
