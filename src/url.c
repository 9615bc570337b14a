/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * REDIS_URL: redis://, unix:// and "none", parsed into the endpoint fields
 * of a tc_options (see tc__parse_redis_url in internal.h).
 *
 * Nothing here allocates: every string lands in a fixed array of
 * tc_options, and anything longer than its array is an error.
 */
#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

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
    return tc__parse_whole(buf, min, max, out) == TC__NUM_OK ? 0 : -1;
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
                return tc__fail(err, ecap, "%s has a bad %%-escape", what);
            c = hi << 4 | lo;
            i += 2;
        }
        if (o + 1 >= cap)
            return tc__fail(err, ecap, "%s is longer than %zu bytes", what,
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
        return tc__fail(err, cap, "no host");
    for (size_t i = 0; i < h.n; i++)
        if (!host_char_ok(h.p[i], bracketed))
            return tc__fail(err, cap,
                            bracketed ? "bad IPv6 address" : "bad host name");
    if (bracketed && !memchr(h.p, ':', h.n))
        return tc__fail(err, cap, "bad IPv6 address");
    if (span_copy(h, t->redis_host, sizeof t->redis_host) != 0)
        return tc__fail(err, cap, "host is longer than %d bytes",
                        TC_HOST_MAX - 1);
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
            return tc__fail(err, cap, "bad IPv6 address");
        host = span_of(hp.p + 1, close);
        port = close + 1 < end ? close + 1 : NULL;
    } else if ((port = memchr(hp.p, ':', hp.n)) != NULL) {
        if (memchr(port + 1, ':', (size_t)(end - port - 1)))
            return tc__fail(err, cap,
                            "IPv6 addresses go in brackets: "
                            "redis://[::1]:6379");
        host = span_of(hp.p, port);
    }
    rc = set_host(host, bracketed, t, err, cap);
    if (rc != TC_OK || !port)
        return rc;
    if (span_number(span_of(port + 1, end), 1, 65535, &v) != 0)
        return tc__fail(err, cap, "port is not a number in 1..65535");
    t->redis_port = (int)v;
    return TC_OK;
}

static int set_db(span s, tc_options *t, char *err, size_t cap)
{
    uint64_t v;

    if (span_number(s, 0, INT_MAX, &v) != 0)
        return tc__fail(err, cap, "db is not a number in 0..%d", INT_MAX);
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
                return tc__fail(err, cap,
                                "unknown parameter (only db=N is supported)");
            if (have_db)
                return tc__fail(err, cap, "db is given twice");
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
        return tc__fail(
            err, cap, "unix:// needs an absolute path: unix:///path/to/sock");
    if (span_copy(path, t->redis_socket, sizeof t->redis_socket) != 0)
        return tc__fail(err, cap, "socket path is longer than %d bytes",
                        TC_SOCKET_MAX - 1);
    if ((why = tc__path_problem(t->redis_socket)) != NULL)
        return tc__fail(err, cap, "socket path %s", why);
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
    t->redis_port = TC__DEFAULT_PORT;
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
        return tc__fail(err, cap,
                        "not a URL: expected redis://host[:port][/db], "
                        "unix:///path[?db=N] or none");
    if (strcasecmp(scheme, "redis") == 0)
        return parse_tcp(sep + 3, t, err, cap);
    if (strcasecmp(scheme, "unix") == 0)
        return parse_unix(sep + 3, t, err, cap);
    if (strcasecmp(scheme, "rediss") == 0)
        return tc__fail(err, cap,
                        "TLS (rediss://) is not supported by this build");
    return tc__fail(err, cap,
                    "unsupported scheme \"%s\" (expected redis://, unix:// "
                    "or none)",
                    tc__shown(scheme, buf, sizeof buf));
}

int tc_options_from_url(tc_options *opt, const char *url)
{
    if (!opt || !url)
        return TC_EINVAL;
    return tc__parse_redis_url(url, opt, NULL, 0);
}

int tc__parse_redis_url(const char *url, tc_options *o, char *err, size_t cap)
{
    tc_options t;
    int rc;

    if (!url || !o)
        return tc__fail(err, cap, "no URL");
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
