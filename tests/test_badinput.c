/* SPDX-License-Identifier: BSD-3-Clause */
/* Bad input gets a clear status and changes nothing: NULL and empty
   keys, oversized keys and values, bad options and environment. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static long long dbsize(void)
{
    redisReply *r = th_redis_cmd(th_srv, "DBSIZE");
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

static int dummy_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    *val = strdup("x");
    *len = 1;
    return 0;
}

static void test_bad_keys(void)
{
    tc_cache *c = th_open(th_srv, NULL, NULL);
    char big[514];
    memset(big, 'k', 513);
    big[513] = '\0'; /* one over the 512-byte default */
    char max[513];
    memset(max, 'k', 512);
    max[512] = '\0';
    tc_value *v = (tc_value *)&v; /* must be set to NULL on error */
    size_t len;
    char buf[4];

    CU_ASSERT_EQUAL(tc_set(NULL, "k", "v", 1, 0), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_set(c, NULL, "v", 1, 0), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_set(c, "", "v", 1, 0), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_set(c, big, "v", 1, 0), TC_ETOOBIG);
    CU_ASSERT_EQUAL(tc_get(c, NULL, &v), TC_EINVAL);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(tc_get(c, "", &v), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_get(c, big, &v), TC_ETOOBIG);
    CU_ASSERT_EQUAL(tc_get(c, "k", NULL), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_get(NULL, "k", &v), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_get_into(c, "k", buf, sizeof(buf), NULL), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_get_into(c, "k", NULL, 4, &len), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_del(c, NULL), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_del(c, ""), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_del(c, big), TC_ETOOBIG);
    CU_ASSERT_EQUAL(tc_del_prefix(c, ""), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_del_prefix(c, NULL), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_flush(NULL), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_fetch(c, "", 0, dummy_compute, NULL, &v), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_fetch(c, "k", 0, NULL, NULL, &v), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_fetch(c, "k", 0, dummy_compute, NULL, NULL), TC_EINVAL);
    CU_ASSERT_EQUAL(dbsize(), 0);
    tc_stats_info s;
    tc_stats(c, &s);
    CU_ASSERT_EQUAL(s.sets, 0);
    CU_ASSERT_EQUAL(s.l1_entries, 0);
    CU_ASSERT_EQUAL(s.computes, 0);
    /* the limit itself is fine */
    CU_ASSERT_EQUAL(tc_set(c, max, "v", 1, 0), TC_OK);
    CU_ASSERT_EQUAL(dbsize(), 1);
    CU_ASSERT_EQUAL(tc_flush(c), TC_OK);
    tc_close(c);
}

static void test_bad_values(void)
{
    tc_options o;
    th_options(th_srv, &o);
    o.max_value_bytes = 1000;
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    static char big[1001];
    CU_ASSERT_EQUAL(tc_set(c, "k", big, 1001, 0), TC_ETOOBIG);
    CU_ASSERT_EQUAL(tc_set(c, "k", NULL, 5, 0), TC_EINVAL);
    CU_ASSERT_EQUAL(dbsize(), 0);
    CU_ASSERT_EQUAL(tc_set(c, "k", big, 1000, 0), TC_OK);
    CU_ASSERT_EQUAL(tc_set(c, "empty", NULL, 0, 0), TC_OK);
    tc_value *v;
    CU_ASSERT_EQUAL(tc_get(c, "empty", &v), TC_OK);
    CU_ASSERT_EQUAL(tc_value_len(v), 0);
    tc_value_release(v);
    CU_ASSERT_EQUAL(dbsize(), 2);
    CU_ASSERT_EQUAL(tc_flush(c), TC_OK);
    tc_close(c);
}

/* A value too big to store replaces nothing: the older one is deleted
   (L1 and Redis) rather than served in place of the newer. */
static void test_too_big_drops_older(void)
{
    tc_options o;
    th_options(th_srv, &o);
    o.max_value_bytes = 1000;
    tc_cache *c, *peer;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_FATAL(tc_open(&peer, &o) == TC_OK);
    static char big[1001];
    char buf[16];
    CU_ASSERT_EQUAL(tc_set(c, "k", "old", 3, 0), TC_OK);
    CU_ASSERT_EQUAL(th_get_str(c, "k", buf, sizeof(buf)), TC_OK); /* L1 */
    CU_ASSERT_EQUAL(th_get_str(peer, "k", buf, sizeof(buf)), TC_OK);
    CU_ASSERT_EQUAL(dbsize(), 1);
    CU_ASSERT_EQUAL(tc_set(c, "k", big, sizeof(big), 0), TC_ETOOBIG);
    CU_ASSERT_EQUAL(dbsize(), 0);
    CU_ASSERT_EQUAL(th_get_str(c, "k", buf, sizeof(buf)), TC_MISS);
    tc_stats_info s;
    tc_stats(c, &s);
    CU_ASSERT_EQUAL(s.oversized, 1);
    /* the other process's L1 hears of it like any delete */
    int gone = 0;
    for (uint64_t t0 = th_now_ms(); !gone && th_now_ms() - t0 < 5000;) {
        gone = th_get_str(peer, "k", buf, sizeof(buf)) == TC_MISS;
        if (!gone)
            usleep(10000);
    }
    CU_ASSERT(gone);
    char text[8192];
    tc_stats_format(c, TC_FORMAT_PROMETHEUS, text, sizeof(text));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "tiercache_oversized_total 1\n"));
    tc_stats_format(c, TC_FORMAT_JSON, text, sizeof(text));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"oversized_total\":1"));
    tc_close(peer);
    tc_close(c);
}

static int big_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    *len = 1001;
    *val = calloc(1, *len);
    return *val ? 0 : -1;
}

/* A computed result too big to cache still goes to its caller. */
static void test_too_big_computed(void)
{
    tc_options o;
    th_options(th_srv, &o);
    o.max_value_bytes = 1000;
    tc_cache *c;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    CU_ASSERT_EQUAL(tc_set(c, "k", "old", 3, 0), TC_OK);
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_fetch(c, "big", 0, big_compute, NULL, &v), TC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL(tc_value_len(v), 1001);
    tc_value_release(v);
    CU_ASSERT_EQUAL(tc_fetch(c, "big", 0, big_compute, NULL, &v), TC_OK);
    tc_value_release(v);
    tc_stats_info s;
    tc_stats(c, &s);
    CU_ASSERT_EQUAL(s.computes, 2); /* not cached: computed each time */
    CU_ASSERT_EQUAL(s.oversized, 2);
    CU_ASSERT_EQUAL(dbsize(), 1); /* "k" alone: no value, no lease left */
    CU_ASSERT_EQUAL(tc_flush(c), TC_OK);
    tc_close(c);
}

static char logged[512];

static void keep_log(void *ud, int level, const char *msg)
{
    (void)ud, (void)level;
    snprintf(logged, sizeof(logged), "%s", msg);
}

/* A malformed variable makes tc_open fail, naming it in the log. */
static void check_env(const char *var, const char *value)
{
    setenv(var, value, 1);
    tc_options o;
    tc_options_init(&o);
    unsetenv(var);
    o.log_fn = keep_log;
    logged[0] = '\0';
    tc_cache *c = (tc_cache *)&o;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
    CU_ASSERT_PTR_NULL(c);
    if (!strstr(logged, var))
        fprintf(stderr, "log for %s=%s: \"%s\"\n", var, value, logged);
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, var));
}

static void test_bad_environment(void)
{
    check_env("REDIS_PORT", "abc");
    check_env("REDIS_PORT", "70000");
    check_env("REDIS_DB", "-1");
    check_env("REDIS_URL", "http://example");
    check_env("TC_DEFAULT_TTL_MS", "0");
    check_env("TC_L1_MAX_ENTRIES", "12x");
    check_env("TC_L1_MAX_BYTES", "lots");
    check_env("TC_LOG_LEVEL", "loud");
    check_env("TC_NAMESPACE", "a{b");
    /* and a NULL options pointer reads the same environment */
    setenv("TC_L1_MAX_ENTRIES", "-5", 1);
    tc_cache *c = NULL;
    setenv("TC_LOG_LEVEL", "off", 1);
    CU_ASSERT_EQUAL(tc_open(&c, NULL), TC_EINVAL);
    unsetenv("TC_L1_MAX_ENTRIES");
    unsetenv("TC_LOG_LEVEL");
    CU_ASSERT_PTR_NULL(c);
}

static void test_bad_options(void)
{
    tc_options o;
    tc_cache *c = NULL;
    th_options(th_srv, &o);
    o.l1_shards = 3;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
    th_options(th_srv, &o);
    o.reserved[0] = 1; /* not from tc_options_init */
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
    th_options(th_srv, &o);
    o.pool_size = 0;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
    th_options(th_srv, &o);
    o.ns[0] = '\0';
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_open(NULL, &o), TC_EINVAL);
    CU_ASSERT_PTR_NULL(c);
    tc_close(NULL); /* NULL-safe */
    tc_value_release(NULL);
}

static void test_status_names(void)
{
#define CHECK_NAME_(name, code, msg)                                          \
    CU_ASSERT_STRING_EQUAL(tc_err_name(code), "TC_" #name);                   \
    CU_ASSERT_STRING_EQUAL(tc_strerror(code), msg);
    TC_STATUS_MAP(CHECK_NAME_)
#undef CHECK_NAME_
    CU_ASSERT_STRING_EQUAL(tc_err_name(-999), "TC_UNKNOWN");
    CU_ASSERT_PTR_NOT_NULL(tc_strerror(12345));
    CU_ASSERT_EQUAL(TC_MISS, 1);
    CU_ASSERT_EQUAL(TC_ETIMEOUT, -7);
    CU_ASSERT_EQUAL(tc_version(), TC_VERSION_HEX);
    CU_ASSERT_STRING_EQUAL(tc_version_string(), PACKAGE_VERSION);
}

static void test_stats_format(void)
{
    tc_options o;
    th_options(th_srv, &o);
    o.coherence = TC_COHERENCE_NONE; /* the counts below are exact */
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    tc_set(c, "a", "1", 1, 0);
    tc_value *v;
    tc_get(c, "a", &v);
    tc_value_release(v);
    size_t need = tc_stats_format(c, TC_FORMAT_PROMETHEUS, NULL, 0);
    CU_ASSERT(need > 100);
    char *buf = malloc(need + 1);
    CU_ASSERT_EQUAL(tc_stats_format(c, TC_FORMAT_PROMETHEUS, buf, need + 1),
                    need);
    CU_ASSERT_EQUAL(strlen(buf), need);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\ntiercache_l1_hits_total 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "# TYPE tiercache_l1_entries gauge"));
    char small[10];
    CU_ASSERT_EQUAL(tc_stats_format(c, TC_FORMAT_PROMETHEUS, small, 10), need);
    CU_ASSERT_EQUAL(strlen(small), 9); /* truncated, terminated */
    size_t jn = tc_stats_format(c, TC_FORMAT_JSON, buf, need + 1);
    CU_ASSERT(jn > 0 && jn <= need);
    CU_ASSERT_EQUAL(buf[0], '{');
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"sets_total\":1"));
    CU_ASSERT_EQUAL(tc_stats_format(c, (tc_format)7, buf, need), 0);
    CU_ASSERT_EQUAL(tc_stats_format(NULL, TC_FORMAT_JSON, buf, need), 0);
    free(buf);
    tc_flush(c);
    tc_close(c);
}

int main(void)
{
    static const th_test tests[] = {
        {"bad_keys", test_bad_keys},
        {"bad_values", test_bad_values},
        {"too_big_drops_older", test_too_big_drops_older},
        {"too_big_computed", test_too_big_computed},
        {"bad_environment", test_bad_environment},
        {"bad_options", test_bad_options},
        {"status_names", test_status_names},
        {"stats_format", test_stats_format},
        {NULL, NULL},
    };
    return th_run_redis("badinput", tests);
}
