/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Options: the defaults, the environment, and the check that tc_open runs
 * on a whole tc_options before using it. REDIS_URL is parsed in url.c.
 *
 * Nothing here allocates: every string lands in a fixed array of
 * tc_options, and anything longer than its array is an error.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "topo.h"

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

#define OFF(field) offsetof(tc_options, field)

/* ---------------------------------------------------------------- errors */

/* Writes the message (if there is room) and returns TC_EINVAL. */
int tc__fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;

    if (err && cap > 0) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return TC_EINVAL;
}

/* A value as it may appear in a log line: at most 40 bytes, with anything
   unprintable shown as '?' so a stray newline cannot forge a log line. */
const char *tc__shown(const char *v, char *buf, size_t cap)
{
    size_t i, max = cap - 4;

    for (i = 0; v[i] && i < max && i < 40; i++)
        buf[i] = isprint((unsigned char)v[i]) ? v[i] : '?';
    buf[i] = '\0';
    if (v[i])
        strcpy(buf + i, "...");
    return buf;
}

/* ------------------------------------------------------- shared checks */

/* Everything the key scheme <ns>:{<key>} and the SCAN pattern <ns>:* can
   carry unharmed: printable ASCII without space, braces, glob characters
   or the escape. */
static int ns_char_ok(char c)
{
    return c > ' ' && c <= '~' && !strchr("{}*?[]\\", c);
}

/* NULL when ns is a valid namespace, else the reason it is not. */
static const char *ns_problem(const char *ns)
{
    size_t n = strlen(ns);

    if (n == 0)
        return "is empty";
    if (n >= TC_NS_MAX)
        return "is longer than 63 bytes";
    for (; *ns; ns++)
        if (!ns_char_ok(*ns))
            return "may hold only printable ASCII other than space "
                   "and {}*?[]\\";
    return NULL;
}

/* A host name with a stray space or newline (from a .env file, say) would
   only fail at connect time, where it looks like Redis being down; so
   would "host:port" (one colon: an IPv6 address has several). */
static const char *host_problem(const char *h)
{
    const char *colon = strchr(h, ':');
    if (h[0] == '[' || (colon && !strchr(colon + 1, ':')))
        return "looks like host:port: put the port in REDIS_PORT, or use "
               "REDIS_URL=redis://host:port";
    for (; *h; h++)
        if (!isgraph((unsigned char)*h))
            return "contains a space or a control character";
    return NULL;
}

const char *tc__path_problem(const char *p)
{
    for (; *p; p++)
        if (iscntrl((unsigned char)*p))
            return "contains a control character";
    return NULL;
}

/* ------------------------------------------------------------- numbers */

/* Reads the leading decimal digits of s. strtoull alone would skip
   whitespace and accept a sign (wrapping "-1" to UINT64_MAX), so the first
   character must be a digit. *end gets the first byte after the digits,
   also on overflow, so that trailing junk is found before the range. */
static tc__num_result read_digits(const char *s, uint64_t *out,
                                  const char **end)
{
    char *e;
    unsigned long long v;

    if (!isdigit((unsigned char)*s))
        return TC__NUM_SYNTAX;
    errno = 0;
    v = strtoull(s, &e, 10);
    *out = v;
    *end = e;
    return errno == ERANGE ? TC__NUM_RANGE : TC__NUM_OK;
}

/* The whole of s is a number in min..max. */
tc__num_result tc__parse_whole(const char *s, uint64_t min, uint64_t max,
                               uint64_t *out)
{
    const char *end;
    tc__num_result r = read_digits(s, out, &end);

    if (r == TC__NUM_SYNTAX || *end != '\0')
        return TC__NUM_SYNTAX;
    return r == TC__NUM_RANGE || *out < min || *out > max ? TC__NUM_RANGE
                                                          : TC__NUM_OK;
}

/* A byte count: digits, then optionally one of k/m/g (KiB, MiB, GiB). */
static tc__num_result parse_bytes(const char *s, uint64_t *out)
{
    static const char units[] = "kmg";
    const char *end, *u = NULL;
    unsigned shift = 0;
    tc__num_result r = read_digits(s, out, &end);

    if (r == TC__NUM_SYNTAX)
        return r;
    if (*end) {
        u = strchr(units, tolower((unsigned char)*end));
        if (!u || end[1])
            return TC__NUM_SYNTAX;
        shift = 10 * (unsigned)(u - units + 1);
    }
    if (r == TC__NUM_RANGE || *out > UINT64_MAX >> shift)
        return TC__NUM_RANGE;
    *out <<= shift;
    return TC__NUM_OK;
}

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

static tc__num_result parse_level(const char *s, uint64_t *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof *level_names; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = i;
            return TC__NUM_OK;
        }
    }
    return tc__parse_whole(s, TC_LOG_DEBUG, TC_LOG_OFF, out);
}

/* --------------------------------------------------------- environment */

typedef enum {
    ENV_STR,     /* a char array of `cap` bytes */
    ENV_INT,     /* int, min..max */
    ENV_U32,     /* uint32_t, min..max */
    ENV_U64,     /* uint64_t, min..max */
    ENV_BYTES,   /* uint64_t, with an optional k/m/g suffix, min..max */
    ENV_BYTES32, /* the same into a uint32_t */
    ENV_LEVEL,   /* int: a level name or 0..4 */
    ENV_NAME     /* int: one of the names of `names` */
} env_kind;

/* A word an ENV_NAME variable takes, and what it stores; a NULL `why`
   is valid, else the word is known but refused for that reason. */
typedef struct env_name {
    const char *word;
    int value;
    const char *why;
} env_name;

static const env_name coherence_names[] = {
    {"auto", TC_COHERENCE_AUTO, NULL},
    {"none", TC_COHERENCE_NONE, NULL},
    {"channel", TC_COHERENCE_CHANNEL, NULL},
    {NULL, 0, "is not one of auto, none, channel"},
};

static const env_name policy_names[] = {
    {"lru", TC_POLICY_LRU, NULL},
    {"lfu", TC_POLICY_LFU, NULL},
    {"tinylfu", TC_POLICY_TINYLFU, NULL},
    {"w-tinylfu", TC_POLICY_TINYLFU, NULL},
    {NULL, 0, "is not a policy (lru, lfu, tinylfu)"},
};

static const env_name compression_names[] = {
    {"none", TC_COMPRESSION_NONE, NULL},
    {"zstd", TC_COMPRESSION_ZSTD, NULL},
    {"lz4", TC_COMPRESSION_LZ4, NULL},
    {NULL, 0, "is not one of none, zstd, lz4"},
};

static const env_name bool_names[] = {
    {"0", 0, NULL},    {"1", 1, NULL},  {"false", 0, NULL},
    {"true", 1, NULL}, {"no", 0, NULL}, {"yes", 1, NULL},
    {"off", 0, NULL},  {"on", 1, NULL}, {NULL, 0, "is not 0 or 1"},
};

#define ENV_REDIS 1 /* ignored when REDIS_URL is set */

typedef struct env_var {
    const char *name;
    env_kind kind;
    size_t off;
    size_t cap;                           /* ENV_STR */
    const char *(*problem)(const char *); /* ENV_STR, may be NULL */
    uint64_t min, max;                    /* the numbers */
    int flags;
    const env_name *names; /* ENV_NAME */
} env_var;

/* In the order of the documentation; the first bad one is reported. */
static const env_var env_vars[] = {
    {"REDIS_HOST", ENV_STR, OFF(redis_host), TC_HOST_MAX, host_problem, 0, 0,
     ENV_REDIS, NULL},
    {"REDIS_PORT", ENV_INT, OFF(redis_port), 0, NULL, 1, 65535, ENV_REDIS,
     NULL},
    {"REDIS_DB", ENV_INT, OFF(redis_db), 0, NULL, 0, INT_MAX, ENV_REDIS, NULL},
    {"REDIS_PASSWORD", ENV_STR, OFF(redis_password), TC_CRED_MAX, NULL, 0, 0,
     ENV_REDIS, NULL},
    {"REDIS_USERNAME", ENV_STR, OFF(redis_username), TC_CRED_MAX, NULL, 0, 0,
     ENV_REDIS, NULL},
    {"REDIS_SOCKET", ENV_STR, OFF(redis_socket), TC_SOCKET_MAX,
     tc__path_problem, 0, 0, ENV_REDIS, NULL},
    {"TC_NAMESPACE", ENV_STR, OFF(ns), TC_NS_MAX, ns_problem, 0, 0, 0, NULL},
    {"TC_DEFAULT_TTL_MS", ENV_U32, OFF(default_ttl_ms), 0, NULL, 1, UINT32_MAX,
     0, NULL},
    {"TC_L1_MAX_ENTRIES", ENV_U64, OFF(l1_max_entries), 0, NULL, 0, UINT64_MAX,
     0, NULL},
    {"TC_L1_MAX_BYTES", ENV_BYTES, OFF(l1_max_bytes), 0, NULL, 0, UINT64_MAX,
     0, NULL},
    {"TC_LOG_LEVEL", ENV_LEVEL, OFF(log_level), 0, NULL, TC_LOG_DEBUG,
     TC_LOG_OFF, 0, NULL},
    /* the rest of tc_options, with the ranges of range_rules below */
    {"TC_CONNECT_TIMEOUT_MS", ENV_U32, OFF(connect_timeout_ms), 0, NULL, 1,
     60000, 0, NULL},
    {"TC_COMMAND_TIMEOUT_MS", ENV_U32, OFF(command_timeout_ms), 0, NULL, 1,
     60000, 0, NULL},
    {"TC_POOL_SIZE", ENV_U32, OFF(pool_size), 0, NULL, 1, 1024, 0, NULL},
    {"TC_STRICT", ENV_NAME, OFF(strict), 0, NULL, 0, 1, 0, bool_names},
    {"TC_MAX_KEY_BYTES", ENV_U32, OFF(max_key_bytes), 0, NULL, 1, 65536, 0,
     NULL},
    {"TC_MAX_VALUE_BYTES", ENV_BYTES32, OFF(max_value_bytes), 0, NULL, 1,
     512 * MIB, 0, NULL},
    {"TC_L1_SHARDS", ENV_U32, OFF(l1_shards), 0, NULL, 1, 1024, 0, NULL},
    {"TC_L1_POLICY", ENV_NAME, OFF(policy), 0, NULL, 0, 0, 0, policy_names},
    {"TC_COHERENCE", ENV_NAME, OFF(coherence), 0, NULL, 0, 2, 0,
     coherence_names},
    {"TC_DEGRADED_L1_TTL_MS", ENV_U32, OFF(degraded_l1_ttl_ms), 0, NULL, 0,
     3600000, 0, NULL},
    {"TC_LISTENER_PING_MS", ENV_U32, OFF(listener_ping_ms), 0, NULL, 10, 60000,
     0, NULL},
    {"TC_REPLAY_MAX", ENV_U32, OFF(replay_max), 0, NULL, 1, 10000000, 0, NULL},
    {"TC_LEASE_MS", ENV_U32, OFF(lease_ms), 0, NULL, 10, 3600000, 0, NULL},
    {"TC_FETCH_WAIT_MS", ENV_U32, OFF(fetch_wait_ms), 0, NULL, 1, 3600000, 0,
     NULL},
    {"TC_REFRESH_BETA_MILLI", ENV_U32, OFF(refresh_beta_milli), 0, NULL, 0,
     100000, 0, NULL},
    {"TC_TTL_JITTER_PCT", ENV_U32, OFF(ttl_jitter_pct), 0, NULL, 0, 50, 0,
     NULL},
    {"TC_NEGATIVE_TTL_MS", ENV_U32, OFF(negative_ttl_ms), 0, NULL, 1,
     UINT32_MAX, 0, NULL},
    {"TC_COMPRESSION", ENV_NAME, OFF(compression), 0, NULL, 0, 2, 0,
     compression_names},
    {"TC_REVALIDATE", ENV_NAME, OFF(revalidate), 0, NULL, 0, 1, 0, bool_names},
    {"TC_COMPRESS_MIN_BYTES", ENV_BYTES32, OFF(compress_min_bytes), 0, NULL, 0,
     512 * MIB, 0, NULL},
    {"TC_BREAKER_FAILURES", ENV_U32, OFF(breaker_failures), 0, NULL, 1,
     UINT32_MAX, 0, NULL},
    {"TC_BREAKER_COOLDOWN_MS", ENV_U32, OFF(breaker_cooldown_ms), 0, NULL, 1,
     600000, 0, NULL},
};

/* An empty variable counts as unset. */
static const char *env_get(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static void env_fail(tc_options *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Only the first malformed variable is reported; later ones still get
   parsed, and each bad one keeps its default. */
static void env_fail(tc_options *o, const char *fmt, ...)
{
    va_list ap;

    if (o->env_error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(o->env_error, sizeof o->env_error, fmt, ap);
    va_end(ap);
}

/* Only values that a check refuses are quoted: the checked variables
   hold no secrets, while a too-long one may be a password. */
static void env_string(tc_options *o, const env_var *ev, const char *v)
{
    const char *why;
    char buf[48];
    size_t n = strlen(v);

    if (n >= ev->cap) {
        env_fail(o, "%s: %zu bytes, longer than the %zu allowed", ev->name, n,
                 ev->cap - 1);
        return;
    }
    if (ev->problem && (why = ev->problem(v)) != NULL) {
        env_fail(o, "%s: \"%s\" %s", ev->name, tc__shown(v, buf, sizeof buf),
                 why);
        return;
    }
    memcpy((char *)o + ev->off, v, n + 1);
}

static tc__num_result env_parse_number(const env_var *ev, const char *v,
                                       uint64_t *out)
{
    tc__num_result r;
    switch (ev->kind) {
    case ENV_BYTES:
    case ENV_BYTES32:
        r = parse_bytes(v, out);
        return r == TC__NUM_OK && (*out < ev->min || *out > ev->max)
                   ? TC__NUM_RANGE
                   : r;
    case ENV_LEVEL:
        return parse_level(v, out);
    default:
        return tc__parse_whole(v, ev->min, ev->max, out);
    }
}

static const char *env_syntax_text(env_kind kind)
{
    switch (kind) {
    case ENV_BYTES:
    case ENV_BYTES32:
        return "is not a byte count (a whole number, optionally followed by "
               "k, m or g)";
    case ENV_LEVEL:
        return "is not one of debug, info, warn, error, off or 0..4";
    default:
        return "is not a whole number";
    }
}

/* memcpy: the field's type comes from the table, not from a cast lvalue. */
static void store_number(tc_options *o, const env_var *ev, uint64_t v)
{
    char *p = (char *)o + ev->off;
    int i = (int)v;
    uint32_t u32 = (uint32_t)v;

    if (ev->kind == ENV_INT || ev->kind == ENV_LEVEL || ev->kind == ENV_NAME)
        memcpy(p, &i, sizeof i);
    else if (ev->kind == ENV_U32 || ev->kind == ENV_BYTES32)
        memcpy(p, &u32, sizeof u32);
    else
        memcpy(p, &v, sizeof v);
}

static void env_number(tc_options *o, const env_var *ev, const char *v)
{
    char buf[48];
    uint64_t n = 0;
    tc__num_result r = env_parse_number(ev, v, &n);

    if (r == TC__NUM_SYNTAX)
        env_fail(o, "%s: \"%s\" %s", ev->name, tc__shown(v, buf, sizeof buf),
                 env_syntax_text(ev->kind));
    else if (r == TC__NUM_RANGE)
        env_fail(o, "%s: \"%s\" is out of range (%llu..%llu)", ev->name,
                 tc__shown(v, buf, sizeof buf), (unsigned long long)ev->min,
                 (unsigned long long)ev->max);
    else
        store_number(o, ev, n);
}

/* One of a list of words (any case); the last entry says why not. */
static void env_name_value(tc_options *o, const env_var *ev, const char *v)
{
    char buf[48];
    const env_name *n = ev->names;

    for (; n->word && strcasecmp(n->word, v) != 0; n++)
        ;
    if (n->why)
        env_fail(o, "%s: \"%s\" %s", ev->name, tc__shown(v, buf, sizeof buf),
                 n->why);
    else
        store_number(o, ev, (uint64_t)n->value);
}

static void env_redis_url(tc_options *o, const char *url)
{
    char msg[TC_ENV_ERROR_MAX];

    if (tc__parse_redis_url(url, o, msg, sizeof msg) != TC_OK)
        env_fail(o, "REDIS_URL: %s", msg);
}

static void set_defaults(tc_options *o)
{
    memset(o, 0, sizeof *o);
    strcpy(o->redis_host, "localhost");
    o->redis_port = TC__DEFAULT_PORT;
    o->redis_db = 0;
    o->connect_timeout_ms = 200;
    o->command_timeout_ms = 100;
    o->pool_size = 8;
    strcpy(o->ns, "tc");
    o->default_ttl_ms = 300000;
    o->max_key_bytes = 512;
    o->max_value_bytes = 1 * MIB;
    o->l1_max_entries = 100000;
    o->l1_max_bytes = 64 * MIB;
    o->l1_shards = 16;
    o->policy = TC_POLICY_LRU;
    o->coherence = TC_COHERENCE_AUTO;
    o->degraded_l1_ttl_ms = 1000; /* docs/operations.md: the figures */
    o->listener_ping_ms = 250;    /* a freeze: noticed within 2 x this */
    o->replay_max = 10000;
    o->lease_ms = 2000;       /* renewed while the computation runs */
    o->fetch_wait_ms = 15000; /* past lease_ms: outlive a dead holder */
    o->refresh_beta_milli = 1000;
    o->ttl_jitter_pct = 0;
    o->negative_ttl_ms = 5000;
    o->strict = 0;
    o->breaker_failures = 3;
    o->breaker_cooldown_ms = 1000;
    o->log_level = TC_LOG_WARN;
    o->compression = TC_COMPRESSION_NONE;
    o->compress_min_bytes = 1024;
    o->revalidate = 1;
}

/* The environment's strings for the pointer fields, copied once and kept
   for the life of the process: tc_options_init may run again after a
   setenv, and a tc_options filled before it must still hold a valid
   string. One copy per distinct value. */
typedef struct interned {
    struct interned *next;
    char s[];
} interned;
/* Lock-free (a push-only list), so that a fork() in the middle of one
   leaves the child nothing to wait for. Two threads interning the same
   new value at once may each add a copy: harmless. */
static interned *_Atomic intern_list;

static const char *intern(const char *v)
{
    interned *head = atomic_load(&intern_list), *it;
    for (it = head; it; it = it->next)
        if (strcmp(it->s, v) == 0)
            return it->s;
    /* malloc, not tc__malloc: this memory lives as long as the process,
       and a test's injected failure must not drop a variable */
    if ((it = malloc(sizeof(*it) + strlen(v) + 1)) == NULL)
        return NULL;
    strcpy(it->s, v);
    do
        it->next = head;
    while (!atomic_compare_exchange_weak(&intern_list, &head, it));
    return it->s;
}

/* REDIS_SENTINELS and REDIS_CLUSTER each name the servers, and so do
   REDIS_URL and REDIS_HOST/REDIS_SOCKET: a list with any other is an
   error naming both, since either could be the one meant. (REDIS_URL over
   REDIS_HOST, and REDIS_SOCKET over REDIS_HOST, are older rules.) */
static void env_topology(tc_options *o)
{
    static const char *const names[] = {"REDIS_URL", "REDIS_SENTINELS",
                                        "REDIS_CLUSTER", "REDIS_HOST",
                                        "REDIS_SOCKET"};
    const size_t count = sizeof names / sizeof *names;
    for (size_t i = 0; i < count; i++)
        for (size_t j = i + 1; j < count; j++)
            if ((i == 1 || i == 2 || j == 1 || j == 2) && env_get(names[i]) &&
                env_get(names[j])) {
                env_fail(o, "%s and %s are both set: choose one", names[i],
                         names[j]);
                return;
            }
    const char *v, *lists[] = {"REDIS_SENTINELS", "REDIS_CLUSTER"};
    for (int i = 0; i < 2; i++) {
        char why[120];
        tc__addr a[TC_NODES_MAX];
        size_t n;
        if (!(v = env_get(lists[i])))
            continue;
        if (tc__addr_list(v, a, TC_NODES_MAX, &n, why, sizeof why) != TC_OK) {
            env_fail(o, "%s: %s", lists[i], why);
            continue;
        }
        const char *copy = intern(v);
        if (!copy)
            env_fail(o, "%s: out of memory", lists[i]);
        else if (i == 0)
            o->redis_sentinels = copy;
        else
            o->redis_cluster = copy;
    }
    if ((v = env_get("REDIS_SENTINEL_MASTER")) != NULL &&
        !(o->sentinel_master = intern(v)))
        env_fail(o, "REDIS_SENTINEL_MASTER: out of memory");
    if ((v = env_get("REDIS_SENTINEL_PASSWORD")) != NULL &&
        !(o->sentinel_password = intern(v)))
        env_fail(o, "REDIS_SENTINEL_PASSWORD: out of memory");
}

void tc_options_init(tc_options *opt)
{
    const char *url, *v;

    if (!opt)
        return;
    set_defaults(opt);
    env_topology(opt);
    url = env_get("REDIS_URL");
    if (url)
        env_redis_url(opt, url);
    for (size_t i = 0; i < sizeof env_vars / sizeof *env_vars; i++) {
        const env_var *ev = &env_vars[i];
        if ((url && (ev->flags & ENV_REDIS)) || !(v = env_get(ev->name)))
            continue;
        if (ev->kind == ENV_STR)
            env_string(opt, ev, v);
        else if (ev->kind == ENV_NAME)
            env_name_value(opt, ev, v);
        else
            env_number(opt, ev, v);
    }
}

/* ---------------------------------------------------------- validation */

typedef struct str_field {
    const char *name;
    size_t off, size;
} str_field;

static const str_field str_fields[] = {
    {"redis_host", OFF(redis_host), TC_HOST_MAX},
    {"redis_socket", OFF(redis_socket), TC_SOCKET_MAX},
    {"redis_username", OFF(redis_username), TC_CRED_MAX},
    {"redis_password", OFF(redis_password), TC_CRED_MAX},
    {"ns", OFF(ns), TC_NS_MAX},
    {"env_error", OFF(env_error), TC_ENV_ERROR_MAX},
};

typedef struct range_rule {
    const char *name;
    size_t off;
    int is_int; /* int, else uint32_t */
    long long min, max;
    const char *what; /* NULL: "is out of range (min..max)" */
} range_rule;

static const range_rule range_rules[] = {
    {"redis_db", OFF(redis_db), 1, 0, INT_MAX, NULL},
    {"connect_timeout_ms", OFF(connect_timeout_ms), 0, 1, 60000, NULL},
    {"command_timeout_ms", OFF(command_timeout_ms), 0, 1, 60000, NULL},
    {"pool_size", OFF(pool_size), 0, 1, 1024, NULL},
    {"default_ttl_ms", OFF(default_ttl_ms), 0, 1, UINT32_MAX, NULL},
    {"max_key_bytes", OFF(max_key_bytes), 0, 1, 65536, NULL},
    {"max_value_bytes", OFF(max_value_bytes), 0, 1, 512 * MIB, NULL},
    {"l1_shards", OFF(l1_shards), 0, 1, 1024, NULL},
    {"policy", OFF(policy), 1, TC_POLICY_LRU, TC_POLICY_TINYLFU,
     "is not a tc_policy (0..2)"},
    {"coherence", OFF(coherence), 1, TC_COHERENCE_AUTO, TC_COHERENCE_CHANNEL,
     "is not a tc_coherence (0..2)"},
    {"degraded_l1_ttl_ms", OFF(degraded_l1_ttl_ms), 0, 0, 3600000, NULL},
    {"listener_ping_ms", OFF(listener_ping_ms), 0, 10, 60000, NULL},
    {"replay_max", OFF(replay_max), 0, 1, 10000000, NULL},
    {"lease_ms", OFF(lease_ms), 0, 10, 3600000, NULL},
    {"fetch_wait_ms", OFF(fetch_wait_ms), 0, 1, 3600000, NULL},
    {"refresh_beta_milli", OFF(refresh_beta_milli), 0, 0, 100000, NULL},
    {"ttl_jitter_pct", OFF(ttl_jitter_pct), 0, 0, 50, NULL},
    {"negative_ttl_ms", OFF(negative_ttl_ms), 0, 1, UINT32_MAX, NULL},
    {"strict", OFF(strict), 1, 0, 1, "is not 0 or 1"},
    {"breaker_failures", OFF(breaker_failures), 0, 1, UINT32_MAX, NULL},
    {"breaker_cooldown_ms", OFF(breaker_cooldown_ms), 0, 1, 600000, NULL},
    {"log_level", OFF(log_level), 1, TC_LOG_DEBUG, TC_LOG_OFF,
     "is not a tc_log_level (0..4)"},
    {"compression", OFF(compression), 1, TC_COMPRESSION_NONE,
     TC_COMPRESSION_LZ4, "is not a tc_compression (0..2)"},
    {"compress_min_bytes", OFF(compress_min_bytes), 0, 0, 512 * MIB, NULL},
    {"revalidate", OFF(revalidate), 1, 0, 1, "is not 0 or 1"},
};

static long long field_value(const tc_options *o, const range_rule *r)
{
    const char *p = (const char *)o + r->off;
    int i;
    uint32_t u;

    if (r->is_int) {
        memcpy(&i, p, sizeof i);
        return i;
    }
    memcpy(&u, p, sizeof u);
    return u;
}

/* A struct that did not come from tc_options_init shows up here first,
   before its other garbage makes a less helpful message. */
static int check_layout(const tc_options *o, char *err, size_t cap)
{
    for (size_t i = 0; i < sizeof o->reserved / sizeof *o->reserved; i++)
        if (o->reserved[i] != 0)
            return tc__fail(err, cap,
                            "reserved[%zu]: not zero (start from "
                            "tc_options_init)",
                            i);
    for (size_t i = 0; i < sizeof str_fields / sizeof *str_fields; i++) {
        const str_field *f = &str_fields[i];
        if (!memchr((const char *)o + f->off, '\0', f->size))
            return tc__fail(err, cap,
                            "%s: not NUL-terminated within %zu bytes", f->name,
                            f->size);
    }
    return TC_OK;
}

static int check_ranges(const tc_options *o, char *err, size_t cap)
{
    for (size_t i = 0; i < sizeof range_rules / sizeof *range_rules; i++) {
        const range_rule *r = &range_rules[i];
        long long v = field_value(o, r);
        if (v >= r->min && v <= r->max)
            continue;
        if (r->what)
            return tc__fail(err, cap, "%s: %lld %s", r->name, v, r->what);
        return tc__fail(err, cap, "%s: %lld is out of range (%lld..%lld)",
                        r->name, v, r->min, r->max);
    }
    return TC_OK;
}

int tc__options_check(const tc_options *o, char *err, size_t cap)
{
    const char *why;
    char buf[48];
    int rc;

    if (!o)
        return tc__fail(err, cap, "no options");
    if ((rc = check_layout(o, err, cap)) != TC_OK)
        return rc;
    if (o->env_error[0])
        return tc__fail(err, cap, "%s", o->env_error);
    if ((rc = check_ranges(o, err, cap)) != TC_OK)
        return rc;
    /* The port matters only when a TCP connection will be made. */
    if (o->redis_host[0] && !o->redis_socket[0] &&
        (o->redis_port < 1 || o->redis_port > 65535))
        return tc__fail(err, cap, "redis_port: %d is out of range (1..65535)",
                        o->redis_port);
    if (o->l1_shards & (o->l1_shards - 1))
        return tc__fail(err, cap, "l1_shards: %u is not a power of two",
                        (unsigned)o->l1_shards);
    if ((why = ns_problem(o->ns)) != NULL)
        return tc__fail(err, cap, "ns: \"%s\" %s",
                        tc__shown(o->ns, buf, sizeof buf), why);
    tc__topo t;
    return tc__topo_of(o, &t, err, cap);
}
