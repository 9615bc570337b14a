/* SPDX-License-Identifier: BSD-3-Clause */
/* Degradation: Redis down at open, killed mid-run, frozen, restarted.
   Calls keep succeeding, none waits much past the timeouts, the breaker
   opens and closes, and each state change is logged once. */
#include <CUnit/CUnit.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"

/* Generous bound on one call while Redis is down or frozen: a hang would
   take far longer, a slow shared machine should not fail it. */
#define CALL_BOUND_MS 1500

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int unreachable_lines, back_lines;

static void count_log(void *ud, int level, const char *msg)
{
    (void)ud, (void)level;
    pthread_mutex_lock(&log_mu);
    if (strstr(msg, " unreachable: "))
        unreachable_lines++;
    if (strstr(msg, " back after "))
        back_lines++;
    pthread_mutex_unlock(&log_mu);
}

static tc_options base; /* what open_logged starts from */

static tc_cache *open_logged(th_redis *r, const char *ns, int strict)
{
    tc_options o = base;
    th_options(r, &o);
    o.degraded_l1_ttl_ms = base.degraded_l1_ttl_ms;
    o.coherence = base.coherence;
    snprintf(o.ns, sizeof(o.ns), "%s", ns);
    o.strict = strict;
    o.log_fn = count_log;
    o.log_level = TC_LOG_INFO; /* recovery is logged at INFO */
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    return c;
}

static void reset_log(void)
{
    pthread_mutex_lock(&log_mu);
    unreachable_lines = back_lines = 0;
    pthread_mutex_unlock(&log_mu);
}

/* Runs n set+get pairs; returns the slowest call in ms; every call must
   succeed (set) or hit/miss (get). */
static uint64_t hammer(tc_cache *c, int n, int *hits)
{
    uint64_t worst = 0;
    char key[16];
    *hits = 0;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i % 8);
        uint64_t t0 = th_now_ms();
        CU_ASSERT_EQUAL(tc_set(c, key, "v", 1, 0), TC_OK);
        tc_value *v = NULL;
        int rc = tc_get(c, key, &v);
        CU_ASSERT(rc == TC_OK || rc == TC_MISS);
        *hits += rc == TC_OK;
        tc_value_release(v);
        uint64_t dt = th_now_ms() - t0;
        worst = dt > worst ? dt : worst;
    }
    return worst;
}

static void test_down_at_open(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    th_redis_kill(r);
    reset_log();
    base.degraded_l1_ttl_ms = 0; /* bypass the L1 while the link is down */
    tc_cache *c = open_logged(r, "downopen", 0);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_configured, 1);
    CU_ASSERT_EQUAL(h.l2_connected, 0);
    CU_ASSERT_NOT_EQUAL(h.breaker, TC_BREAKER_CLOSED);
    CU_ASSERT(strlen(h.last_error) > 0);
    int hits;
    uint64_t worst = hammer(c, 200, &hits);
    CU_ASSERT(worst < CALL_BOUND_MS);
    /* No invalidation link and degraded_l1_ttl_ms 0: bypassed. */
    CU_ASSERT_EQUAL(hits, 0);
    CU_ASSERT_EQUAL(unreachable_lines, 1);
    tc_stats_info s;
    tc_stats(c, &s);
    CU_ASSERT(s.degraded_ops > 0);

    /* With a degraded lifetime, or for one process, the L1 serves. */
    base.degraded_l1_ttl_ms = 60000;
    tc_cache *short_lived = open_logged(r, "downopen", 0);
    base.degraded_l1_ttl_ms = 1000; /* the default, for the later tests */
    hammer(short_lived, 200, &hits);
    CU_ASSERT_EQUAL(hits, 200);
    tc_close(short_lived);
    base.coherence = TC_COHERENCE_NONE;
    tc_cache *single = open_logged(r, "downopen", 0);
    base.coherence = TC_COHERENCE_AUTO;
    hammer(single, 200, &hits);
    CU_ASSERT_EQUAL(hits, 200);
    tc_close(single);

    tc_cache *strict = open_logged(r, "downopen", 1);
    CU_ASSERT_EQUAL(tc_set(strict, "k", "v", 1, 0), TC_EBACKEND);
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_get(strict, "other", &v), TC_EBACKEND);
    CU_ASSERT_EQUAL(tc_del(strict, "k"), TC_EBACKEND);
    tc_close(strict);
    tc_close(c);
    th_redis_stop(r);
}

/* Waits (bounded) until a set through c lands in Redis again. */
static int wait_l2_back(th_redis *r, tc_cache *c, const char *rkey)
{
    for (uint64_t t0 = th_now_ms(); th_now_ms() - t0 < 10000;) {
        tc_set(c, "probe", "p", 1, 0);
        redisReply *rep = th_redis_cmd(r, "EXISTS %s", rkey);
        int yes = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer;
        freeReplyObject(rep);
        if (yes)
            return 1;
        usleep(20000);
    }
    return 0;
}

static void test_killed_and_restarted(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    reset_log();
    tc_cache *c = open_logged(r, "kill", 0);
    int hits;
    hammer(c, 20, &hits);
    CU_ASSERT_EQUAL(hits, 20);

    th_redis_kill(r);
    uint64_t worst = hammer(c, 300, &hits);
    CU_ASSERT(worst < CALL_BOUND_MS);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_NOT_EQUAL(h.breaker, TC_BREAKER_CLOSED);
    tc_stats_info s;
    tc_stats(c, &s);
    CU_ASSERT(s.breaker_opens >= 1);
    CU_ASSERT(s.backend_errors >= 3);
    CU_ASSERT_EQUAL(unreachable_lines, 1); /* once, not per call */

    CU_ASSERT_FATAL(th_redis_restart(r) == 0);
    CU_ASSERT(wait_l2_back(r, c, "kill:{probe}"));
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.breaker, TC_BREAKER_CLOSED);
    CU_ASSERT_EQUAL(h.l2_connected, 1);
    tc_stats(c, &s);
    CU_ASSERT(s.reconnects >= 1);
    CU_ASSERT_EQUAL(back_lines, 1);
    /* L2 is really used again: another cache reads c's write */
    tc_cache *other = open_logged(r, "kill", 0);
    CU_ASSERT_EQUAL(tc_set(c, "after", "yes", 3, 0), TC_OK);
    char buf[8];
    size_t len;
    CU_ASSERT_EQUAL(tc_get_into(other, "after", buf, sizeof(buf), &len),
                    TC_OK);
    tc_close(other);
    tc_close(c);
    th_redis_stop(r);
}

static void test_frozen(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    reset_log();
    tc_cache *c = open_logged(r, "frozen", 0);
    int hits;
    hammer(c, 5, &hits);
    th_redis_freeze(r);
    uint64_t t0 = th_now_ms();
    uint64_t worst = hammer(c, 100, &hits);
    uint64_t total = th_now_ms() - t0;
    CU_ASSERT(worst < CALL_BOUND_MS);
    /* the breaker stops the waiting: 100 round trips at the command
       timeout each would take 20 s */
    CU_ASSERT(total < 10000);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_NOT_EQUAL(h.breaker, TC_BREAKER_CLOSED);
    th_redis_thaw(r);
    CU_ASSERT(wait_l2_back(r, c, "frozen:{probe}"));
    tc_close(c);
    th_redis_stop(r);
}

/* ---- what an outage costs the source, against how stale the L1 may be:
   the figures behind the default degraded_l1_ttl_ms (docs/operations.md).
   The L1 runs on a simulated clock, so the counts do not depend on how
   fast this machine is: 10 s of an outage at 1000 requests a second over
   50 hot keys, one tc_fetch per simulated millisecond. ---- */

#define SIM_MS 10000
#define SIM_KEYS 50

static _Atomic uint64_t sim_now;

static uint64_t sim_clock(void *ud)
{
    (void)ud;
    return sim_now;
}

/* The value is the simulated time it was computed at. */
static int sim_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    uint64_t *t = malloc(sizeof(*t));
    if (!t)
        return -1;
    *t = sim_now;
    *val = t;
    *len = sizeof(*t);
    return 0;
}

typedef struct outage_figures {
    uint64_t requests, computes, max_age_ms;
} outage_figures;

static outage_figures run_outage(uint32_t degraded_ms)
{
    outage_figures f = {0, 0, 0};
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    tc_options o = base;
    th_options(r, &o);
    o.degraded_l1_ttl_ms = degraded_ms;
    o.clock_fn = sim_clock;
    o.listener_ping_ms = 100;
    o.log_level = TC_LOG_OFF;
    sim_now = 1000000;
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_EQUAL(tc_set(c, "warm", "x", 1, 0), TC_OK);
    th_redis_kill(r);
    tc_stats_info s;
    uint64_t t0 = th_now_ms();
    do { /* the listener notices the loss */
        usleep(5000);
        tc_stats(c, &s);
    } while (s.coherent && th_now_ms() - t0 < 10000);
    CU_ASSERT_EQUAL_FATAL(s.coherent, 0);
    uint64_t before = s.computes;
    char key[16];
    for (int t = 0; t < SIM_MS; t++, sim_now++) {
        snprintf(key, sizeof(key), "k%d", t % SIM_KEYS);
        tc_value *v = NULL;
        if (tc_fetch(c, key, 60000, sim_compute, NULL, &v) != TC_OK)
            continue;
        uint64_t at;
        memcpy(&at, tc_value_data(v), sizeof(at));
        if (sim_now - at > f.max_age_ms)
            f.max_age_ms = sim_now - at;
        tc_value_release(v);
        f.requests++;
    }
    tc_stats(c, &s);
    f.computes = s.computes - before;
    tc_close(c);
    th_redis_stop(r);
    return f;
}

static void test_outage_source_load(void)
{
    static const uint32_t settings[] = {0, 250, 1000, 5000};
    outage_figures f[4];
    fprintf(stderr,
            "\n  outage, %d req/s over %d keys for %d s (simulated):"
            "\n  degraded_l1_ttl_ms  requests  source computes  "
            "max age served (ms)\n",
            1000, SIM_KEYS, SIM_MS / 1000);
    for (int i = 0; i < 4; i++) {
        f[i] = run_outage(settings[i]);
        fprintf(stderr, "  %18u  %8llu  %15llu  %19llu\n", settings[i],
                (unsigned long long)f[i].requests,
                (unsigned long long)f[i].computes,
                (unsigned long long)f[i].max_age_ms);
        CU_ASSERT_EQUAL(f[i].requests, SIM_MS);
        /* the bound: never older than the setting */
        CU_ASSERT(f[i].max_age_ms <= settings[i]);
    }
    /* bypassed: every request reaches the source */
    CU_ASSERT_EQUAL(f[0].computes, SIM_MS);
    /* with an age bound: about one computation per key and bound */
    CU_ASSERT(f[2].computes <= (uint64_t)SIM_KEYS * (SIM_MS / 1000 + 1));
    CU_ASSERT(f[1].computes > f[2].computes && f[2].computes > f[3].computes);
}

static void test_redis_url_none(void)
{
    setenv("REDIS_URL", "none", 1);
    tc_options o;
    tc_options_init(&o);
    unsetenv("REDIS_URL");
    o.log_fn = count_log;
    reset_log();
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    tc_health_info h;
    tc_health(c, &h);
    CU_ASSERT_EQUAL(h.l2_configured, 0);
    int hits;
    hammer(c, 50, &hits);
    CU_ASSERT_EQUAL(hits, 50);
    tc_stats_info s;
    tc_stats(c, &s);
    CU_ASSERT_EQUAL(s.backend_errors, 0);
    CU_ASSERT_EQUAL(s.degraded_ops, 0);
    CU_ASSERT_EQUAL(unreachable_lines, 0);
    tc_close(c);
}

/* A listener that cannot be launched (here: no descriptor left for its
   wake pipe) is no failure of the call that tried: it goes on with the
   L1 bypassed, and a later call starts the listener. */
static void test_listener_launch_fails(void)
{
    th_redis *r = th_redis_start();
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    tc_cache *c = open_logged(r, "nofd", 0);
    struct rlimit old, none;
    CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = open("/dev/null", O_RDONLY); /* the next fd to be given */
    CU_ASSERT_FATAL(lowest >= 0);
    close(lowest);
    none = old;
    none.rlim_cur = (rlim_t)lowest;
    CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_NOFILE, &none), 0);
    char buf[8];
    int set = tc_set(c, "k", "v", 1, 0); /* the first call */
    int got = th_get_str(c, "k", buf, sizeof(buf));
    tc_stats_info s;
    tc_stats(c, &s);
    setrlimit(RLIMIT_NOFILE, &old);
    CU_ASSERT_EQUAL(set, TC_OK);
    CU_ASSERT_EQUAL(got, TC_OK);
    CU_ASSERT_EQUAL(s.coherent, 0);
    CU_ASSERT_EQUAL(th_get_str(c, "k", buf, sizeof(buf)), TC_OK);
    tc_stats(c, &s);
    CU_ASSERT_EQUAL(s.coherent, 1);
    tc_close(c);
    th_redis_stop(r);
}

int main(void)
{
    tc_options_init(&base);
    static const th_test tests[] = {
        {"down_at_open", test_down_at_open},
        {"killed_and_restarted", test_killed_and_restarted},
        {"frozen", test_frozen},
        {"redis_url_none", test_redis_url_none},
        {"outage_source_load", test_outage_source_load},
        {"listener_launch_fails", test_listener_launch_fails},
        {NULL, NULL},
    };
    return th_run("degrade", tests);
}
