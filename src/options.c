/*
 * Options: the defaults, the environment, REDIS_URL, and the check that
 * tc_open runs on a whole tc_options before using it.
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

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

#define DEFAULT_PORT 6379
#define OFF(field) offsetof(tc_options, field)

/* ---------------------------------------------------------------- errors */

static int fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the message (if there is room) and returns TC_EINVAL. */
static int fail(char *err, size_t cap, const char *fmt, ...)
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
static const char *shown(const char *v, char *buf, size_t cap)
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
   only fail at connect time, where it looks like Redis being down. */
static const char *host_problem(const char *h)
{
    for (; *h; h++)
        if (!isgraph((unsigned char)*h))
            return "contains a space or a control character";
    return NULL;
}

static const char *path_problem(const char *p)
{
    for (; *p; p++)
        if (iscntrl((unsigned char)*p))
            return "contains a control character";
    return NULL;
}

/* ------------------------------------------------------------- numbers */

typedef enum { NUM_OK, NUM_SYNTAX, NUM_RANGE } num_result;

/* Reads the leading decimal digits of s. strtoull alone would skip
   whitespace and accept a sign (wrapping "-1" to UINT64_MAX), so the first
   character must be a digit. *end gets the first byte after the digits,
   also on overflow, so that trailing junk is found before the range. */
static num_result read_digits(const char *s, uint64_t *out, const char **end)
{
    char *e;
    unsigned long long v;

    if (!isdigit((unsigned char)*s))
        return NUM_SYNTAX;
    errno = 0;
    v = strtoull(s, &e, 10);
    *out = v;
    *end = e;
    return errno == ERANGE ? NUM_RANGE : NUM_OK;
}

/* The whole of s is a number in min..max. */
static num_result parse_whole(const char *s, uint64_t min, uint64_t max,
                              uint64_t *out)
{
    const char *end;
    num_result r = read_digits(s, out, &end);

    if (r == NUM_SYNTAX || *end != '\0')
        return NUM_SYNTAX;
    return r == NUM_RANGE || *out < min || *out > max ? NUM_RANGE : NUM_OK;
}

/* A byte count: digits, then optionally one of k/m/g (KiB, MiB, GiB). */
static num_result parse_bytes(const char *s, uint64_t *out)
{
    static const char units[] = "kmg";
    const char *end, *u = NULL;
    unsigned shift = 0;
    num_result r = read_digits(s, out, &end);

    if (r == NUM_SYNTAX)
        return r;
    if (*end) {
        u = strchr(units, tolower((unsigned char)*end));
        if (!u || end[1])
            return NUM_SYNTAX;
        shift = 10 * (unsigned)(u - units + 1);
    }
    if (r == NUM_RANGE || *out > UINT64_MAX >> shift)
        return NUM_RANGE;
    *out <<= shift;
    return NUM_OK;
}

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "off"};

static num_result parse_level(const char *s, uint64_t *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof *level_names; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = i;
            return NUM_OK;
        }
    }
    return parse_whole(s, TC_LOG_DEBUG, TC_LOG_OFF, out);
}

/* ----------------------------------------------------------- REDIS_URL */

/* A piece of the URL: not NUL-terminated. */
typedef struct span {
    const char *p;
    size_t n;
} span;

static span span_of(const char *from, const char *to)
{
    span s = {from, (size_t)(to - from)};
    return s;
}

static int span_copy(span s, char *dst, size_t cap)
{
    if (s.n >= cap)
        return -1;
    memcpy(dst, s.p, s.n);
    dst[s.n] = '\0';
    return 0;
}

static int span_number(span s, uint64_t min, uint64_t max, uint64_t *out)
{
    char buf[24];

    if (span_copy(s, buf, sizeof buf) != 0)
        return -1;
    return parse_whole(buf, min, max, out) == NUM_OK ? 0 : -1;
}

static const char *span_rchr(span s, char c)
{
    for (size_t i = s.n; i > 0; i--)
        if (s.p[i - 1] == c)
            return s.p + i - 1;
    return NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %XX escapes of s into dst. %00 is refused: it would cut the
   credential short without anyone noticing. */
static int pct_decode(span s, char *dst, size_t cap, const char *what,
                      char *err, size_t ecap)
{
    size_t o = 0;

    for (size_t i = 0; i < s.n; i++) {
        int c = (unsigned char)s.p[i];
        if (c == '%') {
            int hi = i + 2 < s.n ? hex_value(s.p[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(s.p[i + 2]) : -1;
            if (lo < 0 || (hi | lo) == 0)
                return fail(err, ecap, "%s has a bad %%-escape", what);
            c = hi << 4 | lo;
            i += 2;
        }
        if (o + 1 >= cap)
            return fail(err, ecap, "%s is longer than %zu bytes", what,
                        cap - 1);
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return TC_OK;
}

/* [[user]:password@] -- a userinfo without ':' is a password alone, as
   redis-cli reads it (AUTH with one argument). */
static int parse_userinfo(span ui, tc_options *t, char *err, size_t cap)
{
    const char *colon = memchr(ui.p, ':', ui.n);
    span pass = ui;
    int rc;

    if (colon) {
        rc = pct_decode(span_of(ui.p, colon), t->redis_username,
                        sizeof t->redis_username, "username", err, cap);
        if (rc != TC_OK)
            return rc;
        pass = span_of(colon + 1, ui.p + ui.n);
    }
    return pct_decode(pass, t->redis_password, sizeof t->redis_password,
                      "password", err, cap);
}

static int host_char_ok(char c, int bracketed)
{
    if (bracketed)
        return isxdigit((unsigned char)c) || c == ':' || c == '.';
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_';
}

static int set_host(span h, int bracketed, tc_options *t, char *err,
                    size_t cap)
{
    if (h.n == 0)
        return fail(err, cap, "no host");
    for (size_t i = 0; i < h.n; i++)
        if (!host_char_ok(h.p[i], bracketed))
            return fail(err, cap,
                        bracketed ? "bad IPv6 address" : "bad host name");
    if (bracketed && !memchr(h.p, ':', h.n))
        return fail(err, cap, "bad IPv6 address");
    if (span_copy(h, t->redis_host, sizeof t->redis_host) != 0)
        return fail(err, cap, "host is longer than %d bytes", TC_HOST_MAX - 1);
    return TC_OK;
}

/* host[:port] or [v6]:port */
static int parse_hostport(span hp, tc_options *t, char *err, size_t cap)
{
    const char *end = hp.p + hp.n, *port = NULL;
    span host = hp;
    int bracketed = hp.n > 0 && hp.p[0] == '[', rc;
    uint64_t v;

    if (bracketed) {
        const char *close = memchr(hp.p, ']', hp.n);
        if (!close || (close + 1 < end && close[1] != ':'))
            return fail(err, cap, "bad IPv6 address");
        host = span_of(hp.p + 1, close);
        port = close + 1 < end ? close + 1 : NULL;
    } else if ((port = memchr(hp.p, ':', hp.n)) != NULL) {
        if (memchr(port + 1, ':', (size_t)(end - port - 1)))
            return fail(err, cap,
                        "IPv6 addresses go in brackets: "
                        "redis://[::1]:6379");
        host = span_of(hp.p, port);
    }
    rc = set_host(host, bracketed, t, err, cap);
    if (rc != TC_OK || !port)
        return rc;
    if (span_number(span_of(port + 1, end), 1, 65535, &v) != 0)
        return fail(err, cap, "port is not a number in 1..65535");
    t->redis_port = (int)v;
    return TC_OK;
}

static int set_db(span s, tc_options *t, char *err, size_t cap)
{
    uint64_t v;

    if (span_number(s, 0, INT_MAX, &v) != 0)
        return fail(err, cap, "db is not a number in 0..%d", INT_MAX);
    t->redis_db = (int)v;
    return TC_OK;
}

/* ?db=N[&...]: the only parameter known; any other is an error rather
   than something quietly ignored. */
static int parse_query(const char *q, int have_db, tc_options *t, char *err,
                       size_t cap)
{
    while (*q) {
        const char *amp = q + strcspn(q, "&");
        if (amp > q) {
            if (strncmp(q, "db=", 3) != 0)
                return fail(err, cap,
                            "unknown parameter (only db=N is supported)");
            if (have_db)
                return fail(err, cap, "db is given twice");
            have_db = 1;
            if (set_db(span_of(q + 3, amp), t, err, cap) != TC_OK)
                return TC_EINVAL;
        }
        q = *amp ? amp + 1 : amp;
    }
    return TC_OK;
}

/* redis://[[user]:password@]host[:port][/db][?db=N] */
static int parse_tcp(const char *rest, tc_options *t, char *err, size_t cap)
{
    const char *end = rest + strcspn(rest, "/?"), *at, *q;
    span auth = span_of(rest, end);
    int rc, have_db = 0;

    /* The last '@': a password may hold a literal one. */
    if ((at = span_rchr(auth, '@')) != NULL) {
        rc = parse_userinfo(span_of(rest, at), t, err, cap);
        if (rc != TC_OK)
            return rc;
        auth = span_of(at + 1, end);
    }
    rc = parse_hostport(auth, t, err, cap);
    if (rc != TC_OK)
        return rc;
    q = end + strcspn(end, "?");
    if (*end == '/' && q > end + 1) {
        rc = set_db(span_of(end + 1, q), t, err, cap);
        if (rc != TC_OK)
            return rc;
        have_db = 1;
    }
    return *q ? parse_query(q + 1, have_db, t, err, cap) : TC_OK;
}

/* unix:///path/to/socket[?db=N] */
static int parse_unix(const char *rest, tc_options *t, char *err, size_t cap)
{
    const char *q = rest + strcspn(rest, "?"), *why;
    span path = span_of(rest, q);

    if (*rest != '/')
        return fail(err, cap,
                    "unix:// needs an absolute path: unix:///path/to/sock");
    if (span_copy(path, t->redis_socket, sizeof t->redis_socket) != 0)
        return fail(err, cap, "socket path is longer than %d bytes",
                    TC_SOCKET_MAX - 1);
    if ((why = path_problem(t->redis_socket)) != NULL)
        return fail(err, cap, "socket path %s", why);
    t->redis_host[0] = '\0';
    return *q ? parse_query(q + 1, 0, t, err, cap) : TC_OK;
}

/* The URL names the whole endpoint: what it leaves out is the default,
   not whatever the struct held before. */
static void reset_endpoint(tc_options *t)
{
    t->redis_host[0] = '\0';
    t->redis_socket[0] = '\0';
    t->redis_username[0] = '\0';
    t->redis_password[0] = '\0';
    t->redis_port = DEFAULT_PORT;
    t->redis_db = 0;
}

/* No message quotes the URL: it may carry a password into a log. */
static int parse_url(const char *url, tc_options *t, char *err, size_t cap)
{
    const char *sep = strstr(url, "://");
    char scheme[16], buf[24];

    if (strcasecmp(url, "none") == 0)
        return TC_OK;
    if (!sep || span_copy(span_of(url, sep), scheme, sizeof scheme) != 0)
        return fail(err, cap,
                    "not a URL: expected redis://host[:port][/db], "
                    "unix:///path[?db=N] or none");
    if (strcasecmp(scheme, "redis") == 0)
        return parse_tcp(sep + 3, t, err, cap);
    if (strcasecmp(scheme, "unix") == 0)
        return parse_unix(sep + 3, t, err, cap);
    if (strcasecmp(scheme, "rediss") == 0)
        return fail(err, cap,
                    "TLS (rediss://) is not supported by this build");
    return fail(err, cap,
                "unsupported scheme \"%s\" (expected redis://, unix:// "
                "or none)",
                shown(scheme, buf, sizeof buf));
}

int tc__parse_redis_url(const char *url, tc_options *o, char *err, size_t cap)
{
    tc_options t;
    int rc;

    if (!url || !o)
        return fail(err, cap, "no URL");
    t = *o;
    reset_endpoint(&t);
    rc = parse_url(url, &t, err, cap);
    if (rc == TC_OK) {
        *o = t;
        if (err && cap > 0)
            err[0] = '\0';
    }
    return rc;
}

/* --------------------------------------------------------- environment */

typedef enum {
    ENV_STR,   /* a char array of `cap` bytes */
    ENV_INT,   /* int, min..max */
    ENV_U32,   /* uint32_t, min..max */
    ENV_U64,   /* uint64_t, min..max */
    ENV_BYTES, /* uint64_t, with an optional k/m/g suffix */
    ENV_LEVEL  /* int: a level name or 0..4 */
} env_kind;

#define ENV_REDIS 1 /* ignored when REDIS_URL is set */

typedef struct env_var {
    const char *name;
    env_kind kind;
    size_t off;
    size_t cap;                           /* ENV_STR */
    const char *(*problem)(const char *); /* ENV_STR, may be NULL */
    uint64_t min, max;                    /* the numbers but ENV_BYTES */
    int flags;
} env_var;

/* In the order of the documentation; the first bad one is reported. */
static const env_var env_vars[] = {
    {"REDIS_HOST", ENV_STR, OFF(redis_host), TC_HOST_MAX, host_problem, 0, 0,
     ENV_REDIS},
    {"REDIS_PORT", ENV_INT, OFF(redis_port), 0, NULL, 1, 65535, ENV_REDIS},
    {"REDIS_DB", ENV_INT, OFF(redis_db), 0, NULL, 0, INT_MAX, ENV_REDIS},
    {"REDIS_PASSWORD", ENV_STR, OFF(redis_password), TC_CRED_MAX, NULL, 0, 0,
     ENV_REDIS},
    {"REDIS_USERNAME", ENV_STR, OFF(redis_username), TC_CRED_MAX, NULL, 0, 0,
     ENV_REDIS},
    {"REDIS_SOCKET", ENV_STR, OFF(redis_socket), TC_SOCKET_MAX, path_problem,
     0, 0, ENV_REDIS},
    {"TC_NAMESPACE", ENV_STR, OFF(ns), TC_NS_MAX, ns_problem, 0, 0, 0},
    {"TC_DEFAULT_TTL_MS", ENV_U32, OFF(default_ttl_ms), 0, NULL, 1, UINT32_MAX,
     0},
    {"TC_L1_MAX_ENTRIES", ENV_U64, OFF(l1_max_entries), 0, NULL, 0, UINT64_MAX,
     0},
    {"TC_L1_MAX_BYTES", ENV_BYTES, OFF(l1_max_bytes), 0, NULL, 0, UINT64_MAX,
     0},
    {"TC_LOG_LEVEL", ENV_LEVEL, OFF(log_level), 0, NULL, TC_LOG_DEBUG,
     TC_LOG_OFF, 0},
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
        env_fail(o, "%s: \"%s\" %s", ev->name, shown(v, buf, sizeof buf), why);
        return;
    }
    memcpy((char *)o + ev->off, v, n + 1);
}

static num_result env_parse_number(const env_var *ev, const char *v,
                                   uint64_t *out)
{
    switch (ev->kind) {
    case ENV_BYTES:
        return parse_bytes(v, out);
    case ENV_LEVEL:
        return parse_level(v, out);
    default:
        return parse_whole(v, ev->min, ev->max, out);
    }
}

static const char *env_syntax_text(env_kind kind)
{
    switch (kind) {
    case ENV_BYTES:
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

    if (ev->kind == ENV_INT || ev->kind == ENV_LEVEL)
        memcpy(p, &i, sizeof i);
    else if (ev->kind == ENV_U32)
        memcpy(p, &u32, sizeof u32);
    else
        memcpy(p, &v, sizeof v);
}

static void env_number(tc_options *o, const env_var *ev, const char *v)
{
    char buf[48];
    uint64_t n = 0;
    num_result r = env_parse_number(ev, v, &n);

    if (r == NUM_SYNTAX)
        env_fail(o, "%s: \"%s\" %s", ev->name, shown(v, buf, sizeof buf),
                 env_syntax_text(ev->kind));
    else if (r == NUM_RANGE)
        env_fail(o, "%s: \"%s\" is out of range (%llu..%llu)", ev->name,
                 shown(v, buf, sizeof buf), (unsigned long long)ev->min,
                 (unsigned long long)ev->max);
    else
        store_number(o, ev, n);
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
    o->redis_port = DEFAULT_PORT;
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
    o->strict = 0;
    o->breaker_failures = 3;
    o->breaker_cooldown_ms = 1000;
    o->log_level = TC_LOG_WARN;
}

void tc_options_init(tc_options *opt)
{
    const char *url, *v;

    if (!opt)
        return;
    set_defaults(opt);
    url = env_get("REDIS_URL");
    if (url)
        env_redis_url(opt, url);
    for (size_t i = 0; i < sizeof env_vars / sizeof *env_vars; i++) {
        const env_var *ev = &env_vars[i];
        if ((url && (ev->flags & ENV_REDIS)) || !(v = env_get(ev->name)))
            continue;
        if (ev->kind == ENV_STR)
            env_string(opt, ev, v);
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
    {"policy", OFF(policy), 1, TC_POLICY_LRU, TC_POLICY_LRU,
     "is not TC_POLICY_LRU, the only policy so far"},
    {"coherence", OFF(coherence), 1, TC_COHERENCE_AUTO, TC_COHERENCE_NONE,
     "is not TC_COHERENCE_AUTO or TC_COHERENCE_NONE"},
    {"strict", OFF(strict), 1, 0, 1, "is not 0 or 1"},
    {"breaker_failures", OFF(breaker_failures), 0, 1, UINT32_MAX, NULL},
    {"breaker_cooldown_ms", OFF(breaker_cooldown_ms), 0, 1, 600000, NULL},
    {"log_level", OFF(log_level), 1, TC_LOG_DEBUG, TC_LOG_OFF,
     "is not a tc_log_level (0..4)"},
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
            return fail(err, cap,
                        "reserved[%zu]: not zero (start from "
                        "tc_options_init)",
                        i);
    for (size_t i = 0; i < sizeof str_fields / sizeof *str_fields; i++) {
        const str_field *f = &str_fields[i];
        if (!memchr((const char *)o + f->off, '\0', f->size))
            return fail(err, cap, "%s: not NUL-terminated within %zu bytes",
                        f->name, f->size);
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
            return fail(err, cap, "%s: %lld %s", r->name, v, r->what);
        return fail(err, cap, "%s: %lld is out of range (%lld..%lld)", r->name,
                    v, r->min, r->max);
    }
    return TC_OK;
}

int tc__options_check(const tc_options *o, char *err, size_t cap)
{
    const char *why;
    char buf[48];
    int rc;

    if (!o)
        return fail(err, cap, "no options");
    if ((rc = check_layout(o, err, cap)) != TC_OK)
        return rc;
    if (o->env_error[0])
        return fail(err, cap, "%s", o->env_error);
    if ((rc = check_ranges(o, err, cap)) != TC_OK)
        return rc;
    /* The port matters only when a TCP connection will be made. */
    if (o->redis_host[0] && !o->redis_socket[0] &&
        (o->redis_port < 1 || o->redis_port > 65535))
        return fail(err, cap, "redis_port: %d is out of range (1..65535)",
                    o->redis_port);
    if (o->l1_shards & (o->l1_shards - 1))
        return fail(err, cap, "l1_shards: %u is not a power of two",
                    (unsigned)o->l1_shards);
    if ((why = ns_problem(o->ns)) != NULL)
        return fail(err, cap, "ns: \"%s\" %s", shown(o->ns, buf, sizeof buf),
                    why);
    return TC_OK;
}
