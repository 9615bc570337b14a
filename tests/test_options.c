/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Options: defaults, every environment variable (good and malformed),
 * REDIS_URL forms, and tc__options_check field by field.
 *
 * Each test starts and ends with every variable this module reads unset,
 * so the outcome never depends on the shell that runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "harness.h"
#include "internal.h"

#define MIB (1024ULL * 1024)

static const char *const all_vars[] = {
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_DB",
    "REDIS_PASSWORD",
    "REDIS_USERNAME",
    "REDIS_SOCKET",
    "TC_NAMESPACE",
    "TC_DEFAULT_TTL_MS",
    "TC_L1_MAX_ENTRIES",
    "TC_L1_MAX_BYTES",
    "TC_LOG_LEVEL",
    "TC_CONNECT_TIMEOUT_MS",
    "TC_COMMAND_TIMEOUT_MS",
    "TC_POOL_SIZE",
    "TC_STRICT",
    "TC_MAX_KEY_BYTES",
    "TC_MAX_VALUE_BYTES",
    "TC_L1_SHARDS",
    "TC_L1_POLICY",
    "TC_COHERENCE",
    "TC_DEGRADED_L1_TTL_MS",
    "TC_LISTENER_PING_MS",
    "TC_REPLAY_MAX",
    "TC_LEASE_MS",
    "TC_FETCH_WAIT_MS",
    "TC_REFRESH_BETA_MILLI",
    "TC_TTL_JITTER_PCT",
    "TC_NEGATIVE_TTL_MS",
    "TC_BREAKER_FAILURES",
    "TC_BREAKER_COOLDOWN_MS",
    "TC_COMPRESSION",
    "TC_COMPRESS_MIN_BYTES",
    "TC_REVALIDATE",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_CLUSTER",
};

static void env_clear(void)
{
    for (size_t i = 0; i < sizeof all_vars / sizeof *all_vars; i++)
        unsetenv(all_vars[i]);
}

/* tc_options_init with exactly one variable set. */
static void init_with(tc_options *o, const char *var, const char *val)
{
    env_clear();
    setenv(var, val, 1);
    tc_options_init(o);
    env_clear();
}

static void init_clean(tc_options *o)
{
    env_clear();
    tc_options_init(o);
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The pointer fields: NULL and "" both mean unset. */
static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* The fields the environment can touch equal those of the defaults. */
static void assert_env_fields_default(const tc_options *o)
{
    tc_options d;

    init_clean(&d);
    CU_ASSERT_STRING_EQUAL(o->redis_host, d.redis_host);
    CU_ASSERT_EQUAL(o->redis_port, d.redis_port);
    CU_ASSERT_EQUAL(o->redis_db, d.redis_db);
    CU_ASSERT_STRING_EQUAL(o->redis_socket, d.redis_socket);
    CU_ASSERT_STRING_EQUAL(o->redis_username, d.redis_username);
    CU_ASSERT_STRING_EQUAL(o->redis_password, d.redis_password);
    CU_ASSERT_STRING_EQUAL(o->ns, d.ns);
    CU_ASSERT_EQUAL(o->default_ttl_ms, d.default_ttl_ms);
    CU_ASSERT_EQUAL(o->l1_max_entries, d.l1_max_entries);
    CU_ASSERT_EQUAL(o->l1_max_bytes, d.l1_max_bytes);
    CU_ASSERT_EQUAL(o->log_level, d.log_level);
    CU_ASSERT_STRING_EQUAL(or_empty(o->redis_sentinels),
                           or_empty(d.redis_sentinels));
    CU_ASSERT_STRING_EQUAL(or_empty(o->sentinel_master),
                           or_empty(d.sentinel_master));
    CU_ASSERT_STRING_EQUAL(or_empty(o->sentinel_password),
                           or_empty(d.sentinel_password));
    CU_ASSERT_STRING_EQUAL(or_empty(o->redis_cluster),
                           or_empty(d.redis_cluster));
}

/* ------------------------------------------------------------ defaults */

static void test_defaults(void)
{
    tc_options o;
    char err[160];

    init_clean(&o);
    CU_ASSERT_STRING_EQUAL(o.redis_host, "localhost");
    CU_ASSERT_EQUAL(o.redis_port, 6379);
    CU_ASSERT_EQUAL(o.redis_db, 0);
    CU_ASSERT_STRING_EQUAL(o.redis_socket, "");
    CU_ASSERT_STRING_EQUAL(o.redis_username, "");
    CU_ASSERT_STRING_EQUAL(o.redis_password, "");
    CU_ASSERT_EQUAL(o.connect_timeout_ms, 200);
    CU_ASSERT_EQUAL(o.command_timeout_ms, 100);
    CU_ASSERT_EQUAL(o.pool_size, 8);
    CU_ASSERT_STRING_EQUAL(o.ns, "tc");
    CU_ASSERT_EQUAL(o.default_ttl_ms, 300000);
    CU_ASSERT_EQUAL(o.max_key_bytes, 512);
    CU_ASSERT_EQUAL(o.max_value_bytes, 1048576);
    CU_ASSERT_EQUAL(o.l1_max_entries, 100000);
    CU_ASSERT_EQUAL(o.l1_max_bytes, 64 * MIB);
    CU_ASSERT_EQUAL(o.l1_shards, 16);
    CU_ASSERT_EQUAL(o.policy, TC_POLICY_LRU);
    CU_ASSERT_EQUAL(o.coherence, TC_COHERENCE_AUTO);
    CU_ASSERT_EQUAL(o.degraded_l1_ttl_ms, 1000);
    CU_ASSERT_EQUAL(o.listener_ping_ms, 250);
    CU_ASSERT_EQUAL(o.replay_max, 10000);
    CU_ASSERT_EQUAL(o.strict, 0);
    CU_ASSERT_EQUAL(o.breaker_failures, 3);
    CU_ASSERT_EQUAL(o.breaker_cooldown_ms, 1000);
    CU_ASSERT_PTR_NULL(o.log_fn);
    CU_ASSERT_PTR_NULL(o.log_event_fn);
    CU_ASSERT_PTR_NULL(o.log_ud);
    CU_ASSERT_EQUAL(o.log_level, TC_LOG_WARN);
    CU_ASSERT_PTR_NULL(o.clock_fn);
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_EQUAL(o.compression, TC_COMPRESSION_NONE);
    CU_ASSERT_EQUAL(o.compress_min_bytes, 1024);
    CU_ASSERT_EQUAL(o.revalidate, 1);
    for (size_t i = 0; i < sizeof o.reserved / sizeof *o.reserved; i++)
        CU_ASSERT_EQUAL(o.reserved[i], 0);
    /* new fields come out of reserved[]: the ABI keeps its size */
    CU_ASSERT_EQUAL(sizeof(tc_options), 1376);
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);
    tc_options_init(NULL); /* a no-op, not a crash */
}

static void test_empty_vars_are_unset(void)
{
    tc_options o;

    env_clear();
    for (size_t i = 0; i < sizeof all_vars / sizeof *all_vars; i++)
        setenv(all_vars[i], "", 1);
    tc_options_init(&o);
    env_clear();
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    assert_env_fields_default(&o);
}

/* ------------------------------------------------------ good variables */

static void test_env_redis_vars(void)
{
    tc_options o;

    env_clear();
    setenv("REDIS_HOST", "cache.internal", 1);
    setenv("REDIS_PORT", "6380", 1);
    setenv("REDIS_DB", "2147483647", 1);
    setenv("REDIS_PASSWORD", "p@ss word:%41", 1);
    setenv("REDIS_USERNAME", "app", 1);
    setenv("REDIS_SOCKET", "/run/redis/redis.sock", 1);
    tc_options_init(&o);
    env_clear();
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(o.redis_host, "cache.internal");
    CU_ASSERT_EQUAL(o.redis_port, 6380);
    CU_ASSERT_EQUAL(o.redis_db, 2147483647);
    /* Plain variables are taken as they are: no %-decoding. */
    CU_ASSERT_STRING_EQUAL(o.redis_password, "p@ss word:%41");
    CU_ASSERT_STRING_EQUAL(o.redis_username, "app");
    CU_ASSERT_STRING_EQUAL(o.redis_socket, "/run/redis/redis.sock");

    init_with(&o, "REDIS_PORT", "1");
    CU_ASSERT_EQUAL(o.redis_port, 1);
    init_with(&o, "REDIS_PORT", "65535");
    CU_ASSERT_EQUAL(o.redis_port, 65535);
    init_with(&o, "REDIS_DB", "0");
    CU_ASSERT_EQUAL(o.redis_db, 0);
}

static void test_env_tc_vars(void)
{
    tc_options o;

    env_clear();
    setenv("TC_NAMESPACE", "billgen:v2_x-y.z", 1);
    setenv("TC_DEFAULT_TTL_MS", "4294967295", 1);
    setenv("TC_L1_MAX_ENTRIES", "18446744073709551615", 1);
    setenv("TC_L1_MAX_BYTES", "123", 1);
    setenv("TC_LOG_LEVEL", "ErRoR", 1);
    tc_options_init(&o);
    env_clear();
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(o.ns, "billgen:v2_x-y.z");
    CU_ASSERT_EQUAL(o.default_ttl_ms, UINT32_MAX);
    CU_ASSERT_EQUAL(o.l1_max_entries, UINT64_MAX);
    CU_ASSERT_EQUAL(o.l1_max_bytes, 123);
    CU_ASSERT_EQUAL(o.log_level, TC_LOG_ERROR);

    init_with(&o, "TC_DEFAULT_TTL_MS", "1");
    CU_ASSERT_EQUAL(o.default_ttl_ms, 1);
    init_with(&o, "TC_L1_MAX_ENTRIES", "0"); /* L1 off */
    CU_ASSERT_EQUAL(o.l1_max_entries, 0);
    init_with(&o, "TC_L1_MAX_ENTRIES", "007");
    CU_ASSERT_EQUAL(o.l1_max_entries, 7);
    init_with(&o, "TC_L1_MAX_BYTES", "0");
    CU_ASSERT_EQUAL(o.l1_max_bytes, 0);
    init_with(&o, "TC_NAMESPACE", "x");
    CU_ASSERT_STRING_EQUAL(o.ns, "x");
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
}

static void test_env_l1_bytes_suffixes(void)
{
    static const struct {
        const char *in;
        uint64_t want;
    } cases[] = {
        {"1k", 1024},
        {"2K", 2048},
        {"64m", 64 * MIB},
        {"3M", 3 * MIB},
        {"1g", 1024 * MIB},
        {"16G", 16 * 1024 * MIB},
        {"0k", 0},
        {"17179869183G", 17179869183ULL << 30}, /* the largest that fits */
    };
    tc_options o;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        init_with(&o, "TC_L1_MAX_BYTES", cases[i].in);
        CU_ASSERT_STRING_EQUAL(o.env_error, "");
        CU_ASSERT_EQUAL(o.l1_max_bytes, cases[i].want);
    }
}

static void test_env_log_levels(void)
{
    static const struct {
        const char *in;
        int want;
    } cases[] = {
        {"debug", TC_LOG_DEBUG}, {"INFO", TC_LOG_INFO}, {"Warn", TC_LOG_WARN},
        {"error", TC_LOG_ERROR}, {"off", TC_LOG_OFF},   {"0", TC_LOG_DEBUG},
        {"1", TC_LOG_INFO},      {"3", TC_LOG_ERROR},   {"4", TC_LOG_OFF},
    };
    tc_options o;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        init_with(&o, "TC_LOG_LEVEL", cases[i].in);
        CU_ASSERT_STRING_EQUAL(o.env_error, "");
        CU_ASSERT_EQUAL(o.log_level, cases[i].want);
    }
}

/* ------------------------------------------------- malformed variables */

/* var=val is reported in env_error by name, leaves every field at its
   default, and makes tc__options_check fail with the same text. */
static void expect_bad_env(const char *var, const char *val);

/* Every other option from the environment: a good value lands in its
   field, a malformed or out-of-range one makes tc_open fail naming the
   variable. */
typedef struct opt_var {
    const char *var, *good;
    size_t off;
    int is_int; /* int field, else uint32_t */
    long long want;
    const char *bad, *out_of_range;
} opt_var;

#define OF(f) offsetof(tc_options, f)
static const opt_var opt_vars[] = {
    {"TC_CONNECT_TIMEOUT_MS", "1500", OF(connect_timeout_ms), 0, 1500, "1s",
     "0"},
    {"TC_COMMAND_TIMEOUT_MS", "250", OF(command_timeout_ms), 0, 250, "-1",
     "60001"},
    {"TC_POOL_SIZE", "3", OF(pool_size), 0, 3, "three", "1025"},
    {"TC_STRICT", "true", OF(strict), 1, 1, "maybe", "2"},
    {"TC_MAX_KEY_BYTES", "1024", OF(max_key_bytes), 0, 1024, "1k", "65537"},
    {"TC_MAX_VALUE_BYTES", "2m", OF(max_value_bytes), 0, 2 * MIB, "2x",
     "513m"},
    {"TC_L1_SHARDS", "4", OF(l1_shards), 0, 4, "4.0", "2048"},
    {"TC_L1_POLICY", "TinyLFU", OF(policy), 1, TC_POLICY_TINYLFU, "fifo",
     "arc"},
    {"TC_COHERENCE", "channel", OF(coherence), 1, TC_COHERENCE_CHANNEL,
     "tracking", "2"},
    {"TC_DEGRADED_L1_TTL_MS", "250", OF(degraded_l1_ttl_ms), 0, 250, "1e3",
     "3600001"},
    {"TC_LISTENER_PING_MS", "500", OF(listener_ping_ms), 0, 500, "", "9"},
    {"TC_REPLAY_MAX", "42", OF(replay_max), 0, 42, "42 ", "0"},
    {"TC_LEASE_MS", "2500", OF(lease_ms), 0, 2500, "2.5s", "9"},
    {"TC_FETCH_WAIT_MS", "7000", OF(fetch_wait_ms), 0, 7000, "x", "0"},
    {"TC_REFRESH_BETA_MILLI", "0", OF(refresh_beta_milli), 0, 0, "1.0",
     "100001"},
    {"TC_TTL_JITTER_PCT", "10", OF(ttl_jitter_pct), 0, 10, "10%", "51"},
    {"TC_NEGATIVE_TTL_MS", "100", OF(negative_ttl_ms), 0, 100, "+1", "0"},
    {"TC_BREAKER_FAILURES", "5", OF(breaker_failures), 0, 5, "five", "0"},
    {"TC_BREAKER_COOLDOWN_MS", "2000", OF(breaker_cooldown_ms), 0, 2000, "2s",
     "600001"},
    {"TC_COMPRESSION", "zstd", OF(compression), 1, TC_COMPRESSION_ZSTD, "gzip",
     "3"},
    {"TC_COMPRESS_MIN_BYTES", "4k", OF(compress_min_bytes), 0, 4096, "4q",
     "513m"},
    {"TC_REVALIDATE", "off", OF(revalidate), 1, 0, "sometimes", "2"},
};

static long long field_of(const tc_options *o, const opt_var *v)
{
    int i;
    uint32_t u;
    if (v->is_int) {
        memcpy(&i, (const char *)o + v->off, sizeof i);
        return i;
    }
    memcpy(&u, (const char *)o + v->off, sizeof u);
    return u;
}

static void test_env_every_option(void)
{
    for (size_t i = 0; i < sizeof opt_vars / sizeof *opt_vars; i++) {
        const opt_var *v = &opt_vars[i];
        tc_options o;
        init_with(&o, v->var, v->good);
        if (o.env_error[0] || field_of(&o, v) != v->want)
            fprintf(stderr, "\n  %s=%s: got %lld, env_error \"%s\"\n", v->var,
                    v->good, field_of(&o, v), o.env_error);
        CU_ASSERT_STRING_EQUAL(o.env_error, "");
        CU_ASSERT_EQUAL(field_of(&o, v), v->want);
        if (v->bad[0]) /* "" is unset, not malformed */
            expect_bad_env(v->var, v->bad);
        expect_bad_env(v->var, v->out_of_range);
    }
    /* ... and tc_open refuses it, naming the variable */
    tc_options o;
    char msg[256] = "";
    init_with(&o, "TC_COHERENCE", "tracking");
    o.log_fn = NULL;
    o.log_level = TC_LOG_OFF;
    tc_cache *c;
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
    CU_ASSERT_EQUAL(tc__options_check(&o, msg, sizeof msg), TC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "TC_COHERENCE"));
    init_with(&o, "TC_L1_POLICY", "lfu");
    CU_ASSERT_EQUAL(o.policy, TC_POLICY_LFU);
    init_with(&o, "TC_L1_POLICY", "w-tinylfu");
    CU_ASSERT_EQUAL(o.policy, TC_POLICY_TINYLFU);
    init_with(&o, "TC_L1_POLICY", "lru");
    CU_ASSERT_EQUAL(o.policy, TC_POLICY_LRU);
    init_with(&o, "TC_COHERENCE", "NONE");
    CU_ASSERT_EQUAL(o.coherence, TC_COHERENCE_NONE);
    init_with(&o, "TC_COMPRESSION", "LZ4");
    CU_ASSERT_EQUAL(o.compression, TC_COMPRESSION_LZ4);
    init_with(&o, "TC_COMPRESSION", "none");
    CU_ASSERT_EQUAL(o.compression, TC_COMPRESSION_NONE);
    init_with(&o, "TC_COMPRESS_MIN_BYTES", "0");
    CU_ASSERT_EQUAL(o.compress_min_bytes, 0);
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
}

/* REDIS_HOST=host:port is a mistake worth a clear word, not a DNS error
   at connect time; an IPv6 address (several colons) is fine. */
static void test_env_host_with_port(void)
{
    tc_options o;
    init_with(&o, "REDIS_HOST", "cache.internal:6380");
    CU_ASSERT_PTR_NOT_NULL(strstr(o.env_error, "REDIS_PORT"));
    CU_ASSERT_PTR_NOT_NULL(strstr(o.env_error, "REDIS_URL"));
    CU_ASSERT_STRING_EQUAL(o.redis_host, "localhost");
    init_with(&o, "REDIS_HOST", "[::1]:6380");
    CU_ASSERT_PTR_NOT_NULL(strstr(o.env_error, "REDIS_PORT"));
    init_with(&o, "REDIS_HOST", "::1");
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(o.redis_host, "::1");
}

static void test_options_from_url(void)
{
    tc_options o;
    init_clean(&o);
    o.redis_db = 7;
    CU_ASSERT_EQUAL(tc_options_from_url(&o, "redis://u:p%40w@cache:6380/2"),
                    TC_OK);
    CU_ASSERT_STRING_EQUAL(o.redis_host, "cache");
    CU_ASSERT_EQUAL(o.redis_port, 6380);
    CU_ASSERT_EQUAL(o.redis_db, 2);
    CU_ASSERT_STRING_EQUAL(o.redis_username, "u");
    CU_ASSERT_STRING_EQUAL(o.redis_password, "p@w");
    tc_options before = o;
    CU_ASSERT_EQUAL(tc_options_from_url(&o, "redis://cache:99999"), TC_EINVAL);
    CU_ASSERT_EQUAL(memcmp(&o, &before, sizeof o), 0); /* unchanged */
    CU_ASSERT_EQUAL(tc_options_from_url(&o, "unix:///tmp/r.sock?db=1"), TC_OK);
    CU_ASSERT_STRING_EQUAL(o.redis_socket, "/tmp/r.sock");
    CU_ASSERT_STRING_EQUAL(o.redis_host, "");
    CU_ASSERT_STRING_EQUAL(o.redis_password, ""); /* the URL is the whole */
    CU_ASSERT_EQUAL(tc_options_from_url(&o, "none"), TC_OK);
    CU_ASSERT_STRING_EQUAL(o.redis_socket, "");
    CU_ASSERT_EQUAL(tc_options_from_url(NULL, "none"), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_options_from_url(&o, NULL), TC_EINVAL);
}

static void expect_bad_env(const char *var, const char *val)
{
    tc_options o;
    char err[TC_ENV_ERROR_MAX] = "", prefix[64];

    init_with(&o, var, val);
    snprintf(prefix, sizeof prefix, "%s: ", var);
    if (!starts_with(o.env_error, prefix))
        fprintf(stderr, "\n  %s=\"%s\": env_error \"%s\"\n", var, val,
                o.env_error);
    CU_ASSERT_TRUE(starts_with(o.env_error, prefix));
    assert_env_fields_default(&o);
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, o.env_error);
}

static void test_env_bad_numbers(void)
{
    static const char *const cases[][2] = {
        {"REDIS_PORT", "abc"},
        {"REDIS_PORT", "0"},
        {"REDIS_PORT", "70000"},
        {"REDIS_PORT", "-1"},
        {"REDIS_PORT", "+5"},
        {"REDIS_PORT", " 5"},
        {"REDIS_PORT", "5 "},
        {"REDIS_PORT", "0x10"},
        {"REDIS_PORT", "99999999999999999999999"},
        {"REDIS_DB", "-1"},
        {"REDIS_DB", "2147483648"},
        {"REDIS_DB", "1.5"},
        {"TC_DEFAULT_TTL_MS", "0"},
        {"TC_DEFAULT_TTL_MS", "4294967296"},
        {"TC_DEFAULT_TTL_MS", "99999999999"},
        {"TC_DEFAULT_TTL_MS", "5m"},
        {"TC_L1_MAX_ENTRIES", "12x"},
        {"TC_L1_MAX_ENTRIES", "-0"},
        {"TC_L1_MAX_ENTRIES", "18446744073709551616"},
        {"TC_L1_MAX_ENTRIES", "\t1"},
        {"TC_L1_MAX_BYTES", "10q"},
        {"TC_L1_MAX_BYTES", "10mb"},
        {"TC_L1_MAX_BYTES", "10 m"},
        {"TC_L1_MAX_BYTES", "k"},
        {"TC_L1_MAX_BYTES", "-1k"},
        {"TC_L1_MAX_BYTES", "17179869184g"}, /* 2^64 */
        {"TC_L1_MAX_BYTES", "18446744073709551616"},
        {"TC_LOG_LEVEL", "loud"},
        {"TC_LOG_LEVEL", "5"},
        {"TC_LOG_LEVEL", "-1"},
        {"TC_LOG_LEVEL", "warning"},
        {"TC_LOG_LEVEL", " warn"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        expect_bad_env(cases[i][0], cases[i][1]);
}

static void test_env_bad_strings(void)
{
    char s[400];

    memset(s, 'a', sizeof s - 1);
    s[sizeof s - 1] = '\0';
    s[TC_NS_MAX] = '\0'; /* 64 bytes */
    expect_bad_env("TC_NAMESPACE", s);
    s[TC_NS_MAX] = 'a';
    s[TC_HOST_MAX] = '\0';
    expect_bad_env("REDIS_HOST", s);
    s[TC_HOST_MAX] = 'a';
    s[TC_CRED_MAX] = '\0';
    expect_bad_env("REDIS_PASSWORD", s);
    expect_bad_env("REDIS_USERNAME", s);
    s[TC_CRED_MAX] = 'a';
    s[0] = '/';
    s[TC_SOCKET_MAX] = '\0';
    expect_bad_env("REDIS_SOCKET", s);

    expect_bad_env("TC_NAMESPACE", "a{b");
    expect_bad_env("TC_NAMESPACE", "a}b");
    expect_bad_env("TC_NAMESPACE", "a*");
    expect_bad_env("TC_NAMESPACE", "a?");
    expect_bad_env("TC_NAMESPACE", "[a]");
    expect_bad_env("TC_NAMESPACE", "a\\b");
    expect_bad_env("TC_NAMESPACE", "a b");
    expect_bad_env("TC_NAMESPACE", "caf\xc3\xa9");
    expect_bad_env("REDIS_HOST", "localhost\n");
    expect_bad_env("REDIS_HOST", "local host");
    expect_bad_env("REDIS_SOCKET", "/tmp/redis.sock\n");
}

static void test_env_lengths_at_limit(void)
{
    tc_options o;
    char s[TC_HOST_MAX];

    memset(s, 'h', sizeof s);
    s[TC_NS_MAX - 1] = '\0';
    init_with(&o, "TC_NAMESPACE", s);
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(o.ns, s);
    s[TC_NS_MAX - 1] = 'h';
    s[TC_HOST_MAX - 1] = '\0';
    init_with(&o, "REDIS_HOST", s);
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(o.redis_host, s);
    s[0] = '/';
    s[TC_SOCKET_MAX - 1] = '\0';
    init_with(&o, "REDIS_SOCKET", s);
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(o.redis_socket, s);
}

static void test_env_error_text(void)
{
    tc_options o;

    init_with(&o, "TC_L1_MAX_ENTRIES", "12x");
    CU_ASSERT_STRING_EQUAL(o.env_error,
                           "TC_L1_MAX_ENTRIES: \"12x\" is not a whole number");
    init_with(&o, "REDIS_PORT", "70000");
    CU_ASSERT_STRING_EQUAL(o.env_error,
                           "REDIS_PORT: \"70000\" is out of range (1..65535)");
    /* A control character is not copied into a log line. */
    init_with(&o, "TC_DEFAULT_TTL_MS", "5\nFAKE");
    CU_ASSERT_PTR_NULL(strchr(o.env_error, '\n'));
    /* Nor is a password, even one that is too long. */
    init_with(&o, "REDIS_PASSWORD",
              "hunter2hunter2hunter2hunter2hunter2"
              "hunter2hunter2hunter2hunter2hunter2"
              "hunter2hunter2hunter2hunter2hunter2"
              "hunter2hunter2hunter2hunter2hunter2"
              "hunter2hunter2hunter2hunter2hunter2"
              "hunter2hunter2hunter2hunter2hunter2"
              "hunter2hunter2hunter2hunter2hunter2"
              "hunter2hunter2hunter2hunter2hunter2");
    CU_ASSERT_TRUE(starts_with(o.env_error, "REDIS_PASSWORD: "));
    CU_ASSERT_PTR_NULL(strstr(o.env_error, "hunter2"));
    init_with(&o, "REDIS_URL", "redis://u:hunter2@host:99999");
    CU_ASSERT_TRUE(starts_with(o.env_error, "REDIS_URL: "));
    CU_ASSERT_PTR_NULL(strstr(o.env_error, "hunter2"));
    /* A long value is cut, and the message still fits. */
    init_with(&o, "TC_L1_MAX_ENTRIES",
              "1111111111111111111111111111111111111111111111111111111111111"
              "1111111111111111111111111111111111111111111111111111111111111"
              "x");
    CU_ASSERT_TRUE(starts_with(o.env_error, "TC_L1_MAX_ENTRIES: \""));
    CU_ASSERT_PTR_NOT_NULL(strstr(o.env_error, "...\" is not a whole"));
}

static void test_env_first_error_wins(void)
{
    tc_options o;

    env_clear();
    setenv("REDIS_PORT", "abc", 1);
    setenv("TC_LOG_LEVEL", "loud", 1);
    setenv("TC_NAMESPACE", "good", 1);
    setenv("TC_L1_MAX_ENTRIES", "5", 1);
    tc_options_init(&o);
    env_clear();
    CU_ASSERT_TRUE(starts_with(o.env_error, "REDIS_PORT: "));
    CU_ASSERT_EQUAL(o.redis_port, 6379);
    CU_ASSERT_EQUAL(o.log_level, TC_LOG_WARN);
    /* The good ones are still applied. */
    CU_ASSERT_STRING_EQUAL(o.ns, "good");
    CU_ASSERT_EQUAL(o.l1_max_entries, 5);
}

/* ----------------------------------------------------------- REDIS_URL */

typedef struct url_case {
    const char *url;
    const char *host;
    int port, db;
    const char *socket, *user, *pass;
} url_case;

static void check_url_fields(const tc_options *o, const url_case *c)
{
    CU_ASSERT_STRING_EQUAL(o->redis_host, c->host);
    CU_ASSERT_EQUAL(o->redis_port, c->port);
    CU_ASSERT_EQUAL(o->redis_db, c->db);
    CU_ASSERT_STRING_EQUAL(o->redis_socket, c->socket);
    CU_ASSERT_STRING_EQUAL(o->redis_username, c->user);
    CU_ASSERT_STRING_EQUAL(o->redis_password, c->pass);
}

static const url_case good_urls[] = {
    {"redis://h", "h", 6379, 0, "", "", ""},
    {"redis://cache.example.com:6380/3", "cache.example.com", 6380, 3, "", "",
     ""},
    {"REDIS://H-1_x", "H-1_x", 6379, 0, "", "", ""},
    {"redis://user:pass@h:1/15", "h", 1, 15, "", "user", "pass"},
    {"redis://:pass@h", "h", 6379, 0, "", "", "pass"},
    {"redis://secret@h", "h", 6379, 0, "", "", "secret"}, /* as redis-cli */
    {"redis://u%40x:p%3A%2f%25%41@h", "h", 6379, 0, "", "u@x", "p:/%A"},
    {"redis://u:p@ss@h", "h", 6379, 0, "", "u", "p@ss"},
    {"redis://u:@h", "h", 6379, 0, "", "u", ""},
    {"redis://[::1]", "::1", 6379, 0, "", "", ""},
    {"redis://[::1]:7000/2", "::1", 7000, 2, "", "", ""},
    {"redis://[2001:db8::7]:65535", "2001:db8::7", 65535, 0, "", "", ""},
    {"redis://10.0.0.5:6379/", "10.0.0.5", 6379, 0, "", "", ""},
    {"redis://h?db=4", "h", 6379, 4, "", "", ""},
    {"redis://h:1/2147483647", "h", 1, 2147483647, "", "", ""},
    {"unix:///tmp/redis.sock", "", 6379, 0, "/tmp/redis.sock", "", ""},
    {"unix:///run/r.sock?db=5", "", 6379, 5, "/run/r.sock", "", ""},
    {"none", "", 6379, 0, "", "", ""},
    {"NONE", "", 6379, 0, "", "", ""},
};

static void test_url_forms(void)
{
    for (size_t i = 0; i < sizeof good_urls / sizeof *good_urls; i++) {
        const url_case *c = &good_urls[i];
        tc_options o;
        char err[TC_ENV_ERROR_MAX] = "x";
        int rc;

        init_clean(&o);
        /* What the URL leaves out is reset, not kept from before. */
        strcpy(o.redis_username, "old");
        strcpy(o.redis_password, "old");
        strcpy(o.redis_socket, "/old");
        o.redis_port = 1234;
        o.redis_db = 9;
        rc = tc__parse_redis_url(c->url, &o, err, sizeof err);
        if (rc != TC_OK)
            fprintf(stderr, "\n  %s: %s\n", c->url, err);
        CU_ASSERT_EQUAL(rc, TC_OK);
        CU_ASSERT_STRING_EQUAL(err, "");
        check_url_fields(&o, c);
        CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);
    }
}

static void test_url_from_env(void)
{
    tc_options o;

    env_clear();
    setenv("REDIS_URL", "redis://u:p@urlhost:7001/4", 1);
    setenv("REDIS_HOST", "envhost", 1);
    setenv("REDIS_PORT", "abc", 1); /* ignored, so not an error either */
    setenv("REDIS_DB", "1", 1);
    setenv("REDIS_PASSWORD", "envpass", 1);
    setenv("REDIS_USERNAME", "envuser", 1);
    setenv("REDIS_SOCKET", "/env.sock", 1);
    setenv("TC_NAMESPACE", "still", 1);
    tc_options_init(&o);
    env_clear();
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(o.redis_host, "urlhost");
    CU_ASSERT_EQUAL(o.redis_port, 7001);
    CU_ASSERT_EQUAL(o.redis_db, 4);
    CU_ASSERT_STRING_EQUAL(o.redis_socket, "");
    CU_ASSERT_STRING_EQUAL(o.redis_username, "u");
    CU_ASSERT_STRING_EQUAL(o.redis_password, "p");
    CU_ASSERT_STRING_EQUAL(o.ns, "still"); /* TC_ variables still apply */

    init_with(&o, "REDIS_URL", "none");
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(o.redis_host, "");
    CU_ASSERT_STRING_EQUAL(o.redis_socket, "");

    /* A bad URL is an error, keeps the defaults, and the REDIS_* variables
       stay ignored. */
    env_clear();
    setenv("REDIS_URL", "http://x", 1);
    setenv("REDIS_HOST", "envhost", 1);
    tc_options_init(&o);
    env_clear();
    CU_ASSERT_TRUE(starts_with(o.env_error, "REDIS_URL: "));
    CU_ASSERT_STRING_EQUAL(o.redis_host, "localhost");
}

static void test_url_rejected(void)
{
    static const char *const cases[][2] = {
        {"rediss://h:6380", "TLS (rediss://) is not supported by this build"},
        {"REDISS://h", "TLS (rediss://) is not supported by this build"},
        {"redis://", "no host"},
        {"redis://:6379", "no host"},
        {"redis://u:p@", "no host"},
        {"redis://host:99999", "port"},
        {"redis://host:0", "port"},
        {"redis://host:", "port"},
        {"redis://host:-1", "port"},
        {"redis://host:+1", "port"},
        {"redis://host:12ab", "port"},
        {"redis://host/abc", "db"},
        {"redis://host/-1", "db"},
        {"redis://host/2147483648", "db"},
        {"redis://host/1/2", "db"},
        {"redis://host/1?db=2", "db is given twice"},
        {"redis://host?db=", "db"},
        {"redis://host?timeout=5", "unknown parameter"},
        {"redis://ho st", "bad host name"},
        {"redis://host#frag", "bad host name"},
        {"redis://::1", "brackets"},
        {"redis://[::1", "bad IPv6 address"},
        {"redis://[::1]x", "bad IPv6 address"},
        {"redis://[]", "no host"},
        {"redis://[zz]", "bad IPv6 address"},
        {"redis://[1.2.3.4]", "bad IPv6 address"},
        {"redis://u:p%4@h", "password has a bad %-escape"},
        {"redis://u:p%zz@h", "password has a bad %-escape"},
        {"redis://u:p%@h", "password has a bad %-escape"},
        {"redis://u:p%00x@h", "password has a bad %-escape"},
        {"redis://%4:p@h", "username has a bad %-escape"},
        {"unix://", "absolute path"},
        {"unix://tmp/sock", "absolute path"},
        {"unix:///s?db=x", "db"},
        {"unix:///s?password=x", "unknown parameter"},
        {"http://x", "unsupported scheme \"http\""},
        {"redis+unix:///tmp/s", "unsupported scheme"},
        {"localhost:6379", "not a URL"},
        {"", "not a URL"},
        {"none ", "not a URL"},
        {"averyveryverylongscheme://x", "not a URL"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tc_options o, before;
        char err[TC_ENV_ERROR_MAX] = "";
        int rc;

        init_clean(&o);
        strcpy(o.redis_password, "keep");
        memcpy(&before, &o, sizeof o);
        rc = tc__parse_redis_url(cases[i][0], &o, err, sizeof err);
        if (rc != TC_EINVAL || !strstr(err, cases[i][1]))
            fprintf(stderr, "\n  \"%s\": rc %d, \"%s\"\n", cases[i][0], rc,
                    err);
        CU_ASSERT_EQUAL(rc, TC_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i][1]));
        /* Unchanged on error, even where parsing got halfway. */
        CU_ASSERT_EQUAL(memcmp(&o, &before, sizeof o), 0);
    }
}

static void test_url_limits(void)
{
    tc_options o;
    char url[1024], err[TC_ENV_ERROR_MAX];
    int n;

    init_clean(&o);
    /* 255 bytes of host fit, 256 do not. */
    n = snprintf(url, sizeof url, "redis://%0255d", 0);
    CU_ASSERT_EQUAL(n, 8 + 255);
    CU_ASSERT_EQUAL(tc__parse_redis_url(url, &o, err, sizeof err), TC_OK);
    CU_ASSERT_EQUAL(strlen(o.redis_host), 255);
    snprintf(url, sizeof url, "redis://%0256d", 0);
    CU_ASSERT_EQUAL(tc__parse_redis_url(url, &o, err, sizeof err), TC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "host is longer"));

    /* Credentials count after decoding: 255 escapes make 255 bytes. */
    strcpy(url, "redis://:");
    for (int i = 0; i < 255; i++)
        strcat(url, "%41");
    strcat(url, "@h");
    CU_ASSERT_EQUAL(tc__parse_redis_url(url, &o, err, sizeof err), TC_OK);
    CU_ASSERT_EQUAL(strlen(o.redis_password), 255);
    strcpy(url, "redis://:");
    for (int i = 0; i < 256; i++)
        strcat(url, "x");
    strcat(url, "@h");
    CU_ASSERT_EQUAL(tc__parse_redis_url(url, &o, err, sizeof err), TC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "password is longer"));
    strcpy(url, "redis://");
    for (int i = 0; i < 256; i++)
        strcat(url, "u");
    strcat(url, ":p@h");
    CU_ASSERT_EQUAL(tc__parse_redis_url(url, &o, err, sizeof err), TC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "username is longer"));

    /* 107 bytes of socket path fit, 108 do not. */
    n = snprintf(url, sizeof url, "unix:///%0106d", 0);
    CU_ASSERT_EQUAL(tc__parse_redis_url(url, &o, err, sizeof err), TC_OK);
    CU_ASSERT_EQUAL(strlen(o.redis_socket), 107);
    snprintf(url, sizeof url, "unix:///%0107d", 0);
    CU_ASSERT_EQUAL(tc__parse_redis_url(url, &o, err, sizeof err), TC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "socket path is longer"));
}

static void test_url_bad_arguments(void)
{
    tc_options o;
    char err[8];

    init_clean(&o);
    CU_ASSERT_EQUAL(tc__parse_redis_url(NULL, &o, NULL, 0), TC_EINVAL);
    CU_ASSERT_EQUAL(tc__parse_redis_url("none", NULL, NULL, 0), TC_EINVAL);
    CU_ASSERT_EQUAL(tc__parse_redis_url("http://x", &o, NULL, 0), TC_EINVAL);
    CU_ASSERT_EQUAL(tc__parse_redis_url("http://x", &o, err, sizeof err),
                    TC_EINVAL);
    CU_ASSERT_EQUAL(strlen(err), sizeof err - 1); /* truncated, terminated */
    CU_ASSERT_EQUAL(tc__parse_redis_url("redis://h", &o, NULL, 0), TC_OK);
}

/* ------------------------------------------------------- options check */

/* Breaks one field of a valid struct per case; returns the field name the
   message must start with, or NULL after the last case. */
static const char *break_field(tc_options *o, int i)
{
    switch (i) {
    case 0:
        o->redis_port = 0;
        return "redis_port";
    case 1:
        o->redis_port = 65536;
        return "redis_port";
    case 2:
        o->redis_db = -1;
        return "redis_db";
    case 3:
        o->connect_timeout_ms = 0;
        return "connect_timeout_ms";
    case 4:
        o->connect_timeout_ms = 60001;
        return "connect_timeout_ms";
    case 5:
        o->command_timeout_ms = 0;
        return "command_timeout_ms";
    case 6:
        o->command_timeout_ms = 60001;
        return "command_timeout_ms";
    case 7:
        o->pool_size = 0;
        return "pool_size";
    case 8:
        o->pool_size = 1025;
        return "pool_size";
    case 9:
        o->ns[0] = '\0';
        return "ns";
    case 10:
        strcpy(o->ns, "a{b}");
        return "ns";
    case 11:
        strcpy(o->ns, "a b");
        return "ns";
    case 12:
        o->default_ttl_ms = 0;
        return "default_ttl_ms";
    case 13:
        o->max_key_bytes = 0;
        return "max_key_bytes";
    case 14:
        o->max_key_bytes = 65537;
        return "max_key_bytes";
    case 15:
        o->max_value_bytes = 0;
        return "max_value_bytes";
    case 16:
        o->max_value_bytes = 512 * MIB + 1;
        return "max_value_bytes";
    case 17:
        o->l1_shards = 0;
        return "l1_shards";
    case 18:
        o->l1_shards = 12;
        return "l1_shards";
    case 19:
        o->l1_shards = 2048;
        return "l1_shards";
    case 20:
        o->policy = 3;
        return "policy";
    case 21:
        o->policy = -1;
        return "policy";
    case 22:
        o->coherence = 3;
        return "coherence";
    case 23:
        o->strict = 2;
        return "strict";
    case 24:
        o->strict = -1;
        return "strict";
    case 25:
        o->breaker_failures = 0;
        return "breaker_failures";
    case 26:
        o->breaker_cooldown_ms = 0;
        return "breaker_cooldown_ms";
    case 27:
        o->breaker_cooldown_ms = 600001;
        return "breaker_cooldown_ms";
    case 28:
        o->log_level = -1;
        return "log_level";
    case 29:
        o->log_level = 5;
        return "log_level";
    case 30:
        memset(o->redis_host, 'h', TC_HOST_MAX);
        return "redis_host";
    case 31:
        memset(o->redis_socket, 's', TC_SOCKET_MAX);
        return "redis_socket";
    case 32:
        memset(o->redis_username, 'u', TC_CRED_MAX);
        return "redis_username";
    case 33:
        memset(o->redis_password, 'p', TC_CRED_MAX);
        return "redis_password";
    case 34:
        memset(o->ns, 'n', TC_NS_MAX);
        return "ns";
    case 35:
        memset(o->env_error, 'e', TC_ENV_ERROR_MAX);
        return "env_error";
    case 36:
        o->reserved[0] = 1;
        return "reserved[0]";
    case 37:
        /* the last one (the pointer fields took the first few) */
        o->reserved[sizeof o->reserved / sizeof *o->reserved - 1] = 1;
        return sizeof o->reserved == 11 * 8 ? "reserved[10]" : "reserved[";
    case 38:
        strcpy(o->env_error, "TC_X: bad");
        return "TC_X: bad";
    case 39:
        o->degraded_l1_ttl_ms = 3600001;
        return "degraded_l1_ttl_ms";
    case 40:
        o->listener_ping_ms = 9;
        return "listener_ping_ms";
    case 41:
        o->replay_max = 0;
        return "replay_max";
    case 42:
        o->compression = 3;
        return "compression";
    case 43:
        o->compression = -1;
        return "compression";
    case 44:
        o->compress_min_bytes = 512 * MIB + 1;
        return "compress_min_bytes";
    default:
        return NULL;
    }
}

static void test_check_rejects_each_field(void)
{
    const char *name;
    tc_options o;

    for (int i = 0;; i++) {
        char err[TC_ENV_ERROR_MAX] = "";
        int rc;

        init_clean(&o);
        if ((name = break_field(&o, i)) == NULL)
            break;
        rc = tc__options_check(&o, err, sizeof err);
        if (rc != TC_EINVAL || !starts_with(err, name))
            fprintf(stderr, "\n  case %d (%s): rc %d, \"%s\"\n", i, name, rc,
                    err);
        CU_ASSERT_EQUAL(rc, TC_EINVAL);
        CU_ASSERT_TRUE(starts_with(err, name));
    }
}

static void test_check_messages(void)
{
    tc_options o;
    char err[TC_ENV_ERROR_MAX];

    init_clean(&o);
    o.l1_shards = 12;
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "l1_shards: 12 is not a power of two");
    init_clean(&o);
    o.pool_size = 0;
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_EINVAL);
    CU_ASSERT_STRING_EQUAL(err, "pool_size: 0 is out of range (1..1024)");
    /* Garbage, as from a struct nobody initialised, is caught. */
    memset(&o, 0xa5, sizeof o);
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_EINVAL);
    CU_ASSERT_TRUE(starts_with(err, "reserved[0]: "));
    memset(&o, 0, sizeof o);
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_EINVAL);
    /* Bad arguments. */
    CU_ASSERT_EQUAL(tc__options_check(NULL, err, sizeof err), TC_EINVAL);
    o.pool_size = 0;
    CU_ASSERT_EQUAL(tc__options_check(&o, NULL, 0), TC_EINVAL);
}

static void test_check_accepts_limits(void)
{
    tc_options o;
    char err[TC_ENV_ERROR_MAX];

    init_clean(&o);
    o.redis_port = 65535;
    o.redis_db = 2147483647;
    o.connect_timeout_ms = 60000;
    o.command_timeout_ms = 1;
    o.pool_size = 1024;
    o.default_ttl_ms = UINT32_MAX;
    o.max_key_bytes = 65536;
    o.max_value_bytes = 512 * MIB;
    o.l1_shards = 1024;
    o.l1_max_entries = 0;
    o.l1_max_bytes = UINT64_MAX;
    o.coherence = TC_COHERENCE_CHANNEL;
    o.degraded_l1_ttl_ms = 3600000;
    o.listener_ping_ms = 10;
    o.replay_max = 10000000;
    o.strict = 1;
    o.breaker_failures = UINT32_MAX;
    o.breaker_cooldown_ms = 600000;
    o.log_level = TC_LOG_OFF;
    memset(o.redis_host, 'h', TC_HOST_MAX - 1);
    memset(o.redis_password, 'p', TC_CRED_MAX - 1);
    memset(o.ns, 'n', TC_NS_MAX - 1);
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);

    for (uint32_t s = 1; s <= 1024; s <<= 1) {
        o.l1_shards = s;
        CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);
    }
    /* The port is not checked where no TCP connection is made. */
    init_clean(&o);
    o.redis_host[0] = '\0';
    o.redis_port = 0;
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);
    strcpy(o.redis_host, "h");
    strcpy(o.redis_socket, "/tmp/s");
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);
}

/* ---------------------------------------------------- Sentinel, Cluster */

static void test_env_sentinel_cluster(void)
{
    tc_options o;
    char err[TC_ENV_ERROR_MAX];
    const char *list = "127.0.0.1:26379,[::1]:26380,sentinel-b.internal:1";

    env_clear();
    setenv("REDIS_SENTINELS", list, 1);
    setenv("REDIS_SENTINEL_MASTER", "cache-master", 1);
    setenv("REDIS_SENTINEL_PASSWORD", "s3cret", 1);
    tc_options_init(&o);
    env_clear(); /* the fields point at copies that outlive the variables */
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(or_empty(o.redis_sentinels), list);
    CU_ASSERT_STRING_EQUAL(or_empty(o.sentinel_master), "cache-master");
    CU_ASSERT_STRING_EQUAL(or_empty(o.sentinel_password), "s3cret");
    CU_ASSERT_STRING_EQUAL(or_empty(o.redis_cluster), "");
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);

    init_with(&o, "REDIS_CLUSTER", "node-1:7000,node-2:7001");
    CU_ASSERT_STRING_EQUAL(o.env_error, "");
    CU_ASSERT_STRING_EQUAL(or_empty(o.redis_cluster),
                           "node-1:7000,node-2:7001");
    CU_ASSERT_STRING_EQUAL(or_empty(o.redis_sentinels), "");
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);
}

/* Where a tc_open that should fail would reach for the default server
   (localhost:6379, someone else's), it finds no host at all. */
static void no_default_server(tc_options *o)
{
    o->redis_host[0] = '\0';
}

/* "h1:1,h2:2,..." with n entries. */
static void node_list(char *buf, size_t cap, int n)
{
    size_t len = 0;

    buf[0] = '\0';
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%snode%d:%d",
                                i ? "," : "", i, 7000 + i);
}

static void test_env_lists_at_limit(void)
{
    static const char *const vars[] = {"REDIS_SENTINELS", "REDIS_CLUSTER"};
    char list[1024];
    tc_options o;

    for (size_t v = 0; v < 2; v++) {
        node_list(list, sizeof list, TC_NODES_MAX);
        init_with(&o, vars[v], list);
        CU_ASSERT_STRING_EQUAL(o.env_error, "");
        node_list(list, sizeof list, TC_NODES_MAX + 1);
        expect_bad_env(vars[v], list);
    }
}

static void test_env_bad_lists(void)
{
    static const char *const vars[] = {"REDIS_SENTINELS", "REDIS_CLUSTER"};
    static const char *const bad[] = {
        "a:b",         /* port not a number */
        "host",        /* no port */
        "host:",       /* empty port */
        ":26379",      /* no host */
        "h:0",         /* port out of range */
        "h:65536",     /* port out of range */
        "h:1,,h:2",    /* an empty element */
        ",h:1",        /* an empty element */
        "h:1,",        /* an empty element */
        ",",           /* nothing but empty elements */
        "h:1 ,h:2",    /* a space */
        "[::1:26379",  /* an unclosed bracket */
        "::1:26379",   /* IPv6 without brackets */
        "[foo]:1",     /* not an address in the brackets */
        "a]b:1",       /* a bracket in a host name */
        "h:123456789", /* a port too long */
    };
    for (size_t v = 0; v < 2; v++)
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
            expect_bad_env(vars[v], bad[i]);

    /* ... and tc_open refuses it, naming the variable */
    tc_options o;
    tc_cache *c = (tc_cache *)&o; /* not NULL: tc_open must clear it */
    init_with(&o, "REDIS_SENTINELS", "a:b");
    o.log_level = TC_LOG_OFF;
    no_default_server(&o);
    CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
    CU_ASSERT_PTR_NULL(c);
    if (c != (tc_cache *)&o)
        tc_close(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(o.env_error, "REDIS_SENTINELS"));
}

/* Two ways of naming the servers at once: an error naming both. */
static void test_env_endpoint_conflicts(void)
{
    static const char *const pairs[][4] = {
        {"REDIS_URL", "redis://127.0.0.1:1", "REDIS_SENTINELS", "s:26379"},
        {"REDIS_URL", "redis://127.0.0.1:1", "REDIS_CLUSTER", "n:7000"},
        {"REDIS_SENTINELS", "s:26379", "REDIS_CLUSTER", "n:7000"},
        {"REDIS_HOST", "h", "REDIS_SENTINELS", "s:26379"},
        {"REDIS_HOST", "h", "REDIS_CLUSTER", "n:7000"},
        {"REDIS_SOCKET", "/tmp/r.sock", "REDIS_SENTINELS", "s:26379"},
        {"REDIS_SOCKET", "/tmp/r.sock", "REDIS_CLUSTER", "n:7000"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        tc_options o;
        tc_cache *c = NULL;
        env_clear();
        setenv(pairs[i][0], pairs[i][1], 1);
        setenv(pairs[i][2], pairs[i][3], 1);
        tc_options_init(&o);
        env_clear();
        if (!strstr(o.env_error, pairs[i][0]) ||
            !strstr(o.env_error, pairs[i][2]))
            fprintf(stderr, "\n  %s + %s: env_error \"%s\"\n", pairs[i][0],
                    pairs[i][2], o.env_error);
        CU_ASSERT_PTR_NOT_NULL(strstr(o.env_error, pairs[i][0]));
        CU_ASSERT_PTR_NOT_NULL(strstr(o.env_error, pairs[i][2]));
        o.log_level = TC_LOG_OFF;
        no_default_server(&o);
        CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
        CU_ASSERT_PTR_NULL(c);
        tc_close(c);
    }
}

/* The same rules for the fields, set by a program. */
static void test_fields_sentinel_cluster(void)
{
    static const struct {
        const char *sentinels, *cluster, *socket;
    } bad[] = {
        {"a:b", NULL, ""},
        {NULL, "host", ""},
        {"h:1,,h:2", NULL, ""},
        {"s:26379", "n:7000", ""},        /* both lists */
        {"s:26379", NULL, "/tmp/r.sock"}, /* a list and a socket */
        {NULL, "n:7000", "/tmp/r.sock"},
    };
    char err[TC_ENV_ERROR_MAX], many[1024];
    tc_options o;

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tc_cache *c = NULL;
        init_clean(&o);
        o.log_level = TC_LOG_OFF;
        no_default_server(&o);
        o.redis_sentinels = bad[i].sentinels;
        o.redis_cluster = bad[i].cluster;
        snprintf(o.redis_socket, sizeof o.redis_socket, "%s", bad[i].socket);
        CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_EINVAL);
        CU_ASSERT_EQUAL(tc_open(&c, &o), TC_EINVAL);
        CU_ASSERT_PTR_NULL(c);
    }
    init_clean(&o);
    node_list(many, sizeof many, TC_NODES_MAX + 1);
    o.redis_cluster = many;
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_EINVAL);
    /* Good lists pass the check; redis_host is ignored, not an error. */
    node_list(many, sizeof many, TC_NODES_MAX);
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);
    o.redis_cluster = NULL;
    o.redis_sentinels = "[::1]:26379,127.0.0.1:26380";
    o.sentinel_master = "m";
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);
    /* "" is unset */
    o.redis_sentinels = "";
    o.redis_cluster = "";
    CU_ASSERT_EQUAL(tc__options_check(&o, err, sizeof err), TC_OK);
}

int main(void)
{
    static const th_test tests[] = {
        {"defaults", test_defaults},
        {"every option from the environment", test_env_every_option},
        {"REDIS_HOST with a port", test_env_host_with_port},
        {"tc_options_from_url", test_options_from_url},
        {"empty variables are unset", test_empty_vars_are_unset},
        {"REDIS_* variables", test_env_redis_vars},
        {"TC_* variables", test_env_tc_vars},
        {"TC_L1_MAX_BYTES suffixes", test_env_l1_bytes_suffixes},
        {"TC_LOG_LEVEL names and numbers", test_env_log_levels},
        {"malformed numbers", test_env_bad_numbers},
        {"malformed strings", test_env_bad_strings},
        {"strings at their length limit", test_env_lengths_at_limit},
        {"env_error text", test_env_error_text},
        {"first error wins", test_env_first_error_wins},
        {"URL forms", test_url_forms},
        {"REDIS_URL wins over REDIS_*", test_url_from_env},
        {"URLs rejected", test_url_rejected},
        {"URL length limits", test_url_limits},
        {"URL bad arguments", test_url_bad_arguments},
        {"check rejects each field", test_check_rejects_each_field},
        {"check messages", test_check_messages},
        {"check accepts the limits", test_check_accepts_limits},
        {"Sentinel and Cluster variables", test_env_sentinel_cluster},
        {"node lists at their limit", test_env_lists_at_limit},
        {"malformed node lists", test_env_bad_lists},
        {"two endpoints at once", test_env_endpoint_conflicts},
        {"Sentinel and Cluster fields", test_fields_sentinel_cluster},
        {NULL, NULL},
    };

    return th_run("options", tests);
}
