/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The configuration parsers, which read what a deployment wrote:
 *
 * - the first line of the input is a URL for tc_options_from_url and
 *   tc__parse_redis_url (REDIS_URL);
 * - every later line "NAME=value" whose NAME tiercache reads becomes that
 *   environment variable for tc_options_init, followed by tc__options_check
 *   and, when the result has no Redis, an L1-only tc_open/tc_close.
 *
 * The environment is swapped for one built from the input (environ points
 * at it during the call) rather than set with setenv, which keeps a copy
 * of every value for the life of the process. Nothing connects anywhere:
 * tc_open runs only on options without Redis.
 *
 * Checked: return codes in the documented set; a failed URL leaves the
 * options unchanged; an accepted one sets only the endpoint fields, the
 * same whatever they held before, with a host, port and db that the
 * document allows and options that tc_open accepts; error messages are
 * NUL-terminated within their buffer and never quote a password;
 * tc_open fails exactly when tc__options_check does.
 */
#include <ctype.h>
#include <unistd.h>

#include "fuzz.h"
#include "internal.h"
#include "topo.h"

/* Every variable tc_options_init reads (api.md, "Options and
   environment"). */
static const char *const names[] = {
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_DB",
    "REDIS_PASSWORD",
    "REDIS_USERNAME",
    "REDIS_SOCKET",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_CLUSTER",
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
};
#define NNAMES (sizeof(names) / sizeof(*names))

/* tc_options_init keeps one copy of each distinct value of these four for
   the life of the process (options.c, intern): fed the fuzzer's values,
   that list would grow without bound and slow every lookup. Their parser
   is fuzzed by fuzz_topo; here a value only picks one of these. */
static const char *const canned[] = {
    "127.0.0.1:26379", "a:1,b:2,[::1]:3", "h",           "",
    "x y:1",           "mymaster",        "s3cr3t-Pa55",
};
static int interned(const char *name)
{
    return strncmp(name, "REDIS_SENTINEL", 14) == 0 ||
           strcmp(name, "REDIS_CLUSTER") == 0;
}

static void quiet(void *ud, int level, const char *msg)
{
    (void)ud, (void)level, (void)msg;
}

/* A value worth checking for in messages: a long mix of letters and
   digits, which no fixed message text holds. */
static int secret_like(const char *s, size_t n)
{
    int alpha = 0, digit = 0;
    if (n < 8)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]))
            return 0;
        alpha |= isalpha((unsigned char)s[i]) != 0;
        digit |= isdigit((unsigned char)s[i]) != 0;
    }
    return alpha && digit;
}

static void no_secret(const char *msg, const char *s, size_t n)
{
    if (!secret_like(s, n))
        return;
    for (const char *p = msg; *p; p++)
        FZ_CHECK(strncmp(p, s, n) != 0);
}

/* The userinfo of a redis:// URL as url.c finds it: up to the last '@'
   before the first '/' or '?'. */
static void url_secret(const char *url, const char **s, size_t *n)
{
    const char *sep = strstr(url, "://"), *at = NULL;
    *s = NULL;
    *n = 0;
    if (!sep)
        return;
    const char *rest = sep + 3, *end = rest + strcspn(rest, "/?");
    for (const char *p = rest; p < end; p++)
        if (*p == '@')
            at = p;
    if (!at)
        return;
    /* password after the ':' when there is one */
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    *s = colon ? colon + 1 : rest;
    *n = (size_t)(at - *s);
}

static void defaults(tc_options *o)
{
    extern char **environ;
    char *none[] = {NULL}, **saved = environ;
    environ = none;
    tc_options_init(o);
    environ = saved;
}

static int host_ok(const char *h)
{
    int v6 = strchr(h, ':') != NULL;
    if (!*h)
        return 0;
    for (; *h; h++)
        if (v6 ? !isxdigit((unsigned char)*h) && *h != ':' && *h != '.'
               : !isalnum((unsigned char)*h) && !strchr("-._", *h))
            return 0;
    return 1;
}

/* The fields the URL sets, copied from `from` into `to`. */
static void copy_endpoint(tc_options *to, const tc_options *from)
{
    memcpy(to->redis_host, from->redis_host, sizeof(to->redis_host));
    memcpy(to->redis_socket, from->redis_socket, sizeof(to->redis_socket));
    memcpy(to->redis_username, from->redis_username,
           sizeof(to->redis_username));
    memcpy(to->redis_password, from->redis_password,
           sizeof(to->redis_password));
    to->redis_port = from->redis_port;
    to->redis_db = from->redis_db;
}

static int endpoint_eq(const tc_options *a, const tc_options *b)
{
    return strcmp(a->redis_host, b->redis_host) == 0 &&
           strcmp(a->redis_socket, b->redis_socket) == 0 &&
           strcmp(a->redis_username, b->redis_username) == 0 &&
           strcmp(a->redis_password, b->redis_password) == 0 &&
           a->redis_port == b->redis_port && a->redis_db == b->redis_db;
}

static void check_url(const char *url, size_t cap)
{
    tc_options o0, o, other, before;
    char err[256], small[16];
    defaults(&o0);
    o = o0;

    int rc = tc_options_from_url(&o, url);
    FZ_CHECK(rc == TC_OK || rc == TC_EINVAL);
    if (rc != TC_OK) {
        FZ_CHECK(memcmp(&o, &o0, sizeof(o)) == 0);
    } else {
        /* only the endpoint changed */
        before = o;
        copy_endpoint(&before, &o0);
        FZ_CHECK(memcmp(&before, &o0, sizeof(o)) == 0);
        FZ_CHECK(memchr(o.redis_host, 0, sizeof(o.redis_host)) &&
                 memchr(o.redis_socket, 0, sizeof(o.redis_socket)) &&
                 memchr(o.redis_username, 0, sizeof(o.redis_username)) &&
                 memchr(o.redis_password, 0, sizeof(o.redis_password)));
        FZ_CHECK(!(o.redis_host[0] && o.redis_socket[0]));
        FZ_CHECK(!o.redis_host[0] || host_ok(o.redis_host));
        FZ_CHECK(o.redis_socket[0] == '\0' || o.redis_socket[0] == '/');
        FZ_CHECK(o.redis_port >= 1 && o.redis_port <= 65535);
        FZ_CHECK(o.redis_db >= 0);
        FZ_CHECK(tc__options_check(&o, err, sizeof(err)) == TC_OK);
        /* the URL names the whole endpoint, whatever was there */
        other = o0;
        strcpy(other.redis_host, "elsewhere");
        strcpy(other.redis_password, "old");
        strcpy(other.redis_username, "olduser");
        other.redis_port = 1;
        other.redis_db = 9;
        FZ_CHECK(tc_options_from_url(&other, url) == TC_OK);
        FZ_CHECK(endpoint_eq(&other, &o));
    }

    /* the internal form, with messages: same verdict, bounded message */
    const char *pw;
    size_t pwlen;
    url_secret(url, &pw, &pwlen);
    for (int pass = 0; pass < 2; pass++) {
        char *buf = pass ? small : err;
        size_t n = pass ? cap % sizeof(small) : sizeof(err);
        memset(buf, 'x', pass ? sizeof(small) : sizeof(err));
        o = o0;
        FZ_CHECK(tc__parse_redis_url(url, &o, buf, n) == rc);
        if (n == 0)
            FZ_CHECK(buf[0] == 'x');
        else
            FZ_CHECK(memchr(buf, 0, n) != NULL);
        if (n > 0 && rc == TC_OK)
            FZ_CHECK(buf[0] == '\0');
        if (n > 0 && pw)
            no_secret(buf, pw, pwlen);
    }
}

/* s[0..len) appears in an entry of env other than env[skip]. */
static int elsewhere(char **env, size_t n, size_t skip, const char *s,
                     size_t len)
{
    for (size_t j = 0; j < n; j++)
        for (const char *p = env[j]; j != skip && *p; p++)
            if (strncmp(p, s, len) == 0)
                return 1;
    return 0;
}

static int env_add(char **env, size_t *n, char *line)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return 0;
    for (size_t i = 0; i < NNAMES; i++) {
        size_t nl = strlen(names[i]);
        if ((size_t)(eq - line) != nl || strncmp(line, names[i], nl) != 0)
            continue;
        if (interned(names[i])) {
            const char *v = canned[(unsigned char)eq[1] %
                                   (sizeof(canned) / sizeof(*canned))];
            char *s = malloc(nl + 2 + strlen(v));
            FZ_CHECK(s != NULL);
            sprintf(s, "%s=%s", names[i], v);
            env[(*n)++] = s;
        } else {
            env[(*n)++] = strdup(line);
        }
        return 1;
    }
    return 0;
}

/* lines[0..n): "NAME=value" */
static void check_env(char **lines, size_t nlines, size_t cap)
{
    extern char **environ;
    char **env = calloc(nlines + 1, sizeof(*env)), **saved = environ;
    size_t n = 0;
    tc_options o;
    char err[256];
    FZ_CHECK(env != NULL);
    for (size_t i = 0; i < nlines; i++)
        env_add(env, &n, lines[i]);

    environ = env;
    tc_options_init(&o);
    environ = saved;

    FZ_CHECK(memchr(o.env_error, 0, sizeof(o.env_error)) != NULL);
    memset(err, 'x', sizeof(err));
    size_t ecap = cap % sizeof(err);
    int rc = tc__options_check(&o, err, ecap);
    FZ_CHECK(rc == TC_OK || rc == TC_EINVAL);
    FZ_CHECK(rc == TC_OK || ecap == 0 || memchr(err, 0, ecap) != NULL);
    if (o.env_error[0])
        FZ_CHECK(rc == TC_EINVAL);
    /* Passwords are never quoted (unless another variable, quoted for
       its own fault, happens to hold the same text). */
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(env[i], '='), *pw = NULL;
        size_t pwlen = 0;
        if (strncmp(env[i], "REDIS_PASSWORD=", 15) == 0) {
            pw = eq + 1;
            pwlen = strlen(pw);
        } else if (strncmp(env[i], "REDIS_URL=", 10) == 0) {
            url_secret(eq + 1, &pw, &pwlen);
        }
        if (!pw || elsewhere(env, n, i, pw, pwlen))
            continue;
        no_secret(o.env_error, pw, pwlen);
        no_secret(rc != TC_OK && ecap ? err : "", pw, pwlen);
    }
    /* Without Redis, tc_open agrees with the check; it connects nowhere. */
    tc__topo t;
    if (!o.redis_host[0] && !o.redis_socket[0] &&
        tc__topo_of(&o, &t, NULL, 0) == TC_OK && t.kind == TC__TOPO_SINGLE) {
        tc_cache *c = (tc_cache *)&o; /* must be set to NULL */
        o.log_fn = quiet;
        int orc = tc_open(&c, &o);
        FZ_CHECK(orc == TC_OK || orc == TC_EINVAL || orc == TC_ENOMEM);
        FZ_CHECK((orc == TC_EINVAL) == (rc == TC_EINVAL));
        FZ_CHECK((orc == TC_OK) == (c != NULL));
        tc_close(c);
    }
    for (size_t i = 0; i < n; i++)
        free(env[i]);
    free(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* split into NUL-terminated lines */
    char *text = malloc(size + 1), **lines;
    size_t nlines = 1;
    FZ_CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    for (size_t i = 0; i < size; i++)
        nlines += text[i] == '\n';
    lines = calloc(nlines, sizeof(*lines));
    FZ_CHECK(lines != NULL);
    lines[0] = text;
    for (size_t i = 0, k = 1; i < size; i++)
        if (text[i] == '\n') {
            text[i] = '\0';
            lines[k++] = text + i + 1;
        }

    check_url(lines[0], size);
    check_env(lines + 1, nlines - 1, size);
    free(lines);
    free(text);
    return 0;
}
