/* SPDX-License-Identifier: BSD-3-Clause */
/* Node lists and the topology of the options: see topo.h. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "topo.h"

/* One "host:port" or "[v6]:port" of n bytes. */
static int parse_one(const char *s, size_t n, tc__addr *a, char *err,
                     size_t cap)
{
    const char *colon = NULL, *host = s;
    size_t hlen;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close + 1 >= s + n || close[1] != ':')
            return tc__fail(err, cap, "\"%.*s\": expected [v6-address]:port",
                            (int)(n > 40 ? 40 : n), s);
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        for (size_t i = n; i > 0; i--)
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        if (!colon)
            return tc__fail(err, cap, "\"%.*s\": expected host:port",
                            (int)(n > 40 ? 40 : n), s);
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen))
            return tc__fail(err, cap,
                            "\"%.*s\": an IPv6 address goes in brackets",
                            (int)(n > 40 ? 40 : n), s);
    }
    char port[8];
    size_t plen = (size_t)(s + n - colon - 1);
    uint64_t p;
    if (hlen == 0 || hlen >= sizeof(a->host))
        return tc__fail(err, cap, "\"%.*s\": %s host name",
                        (int)(n > 40 ? 40 : n), s, hlen ? "too long a" : "no");
    if (plen == 0 || plen >= sizeof(port))
        return tc__fail(err, cap, "\"%.*s\": no port", (int)(n > 40 ? 40 : n),
                        s);
    memcpy(port, colon + 1, plen);
    port[plen] = '\0';
    if (tc__parse_whole(port, 1, 65535, &p) != TC__NUM_OK)
        return tc__fail(err, cap, "\"%.*s\": the port is not 1..65535",
                        (int)(n > 40 ? 40 : n), s);
    for (size_t i = 0; i < hlen; i++)
        if ((unsigned char)host[i] <= ' ' || host[i] == ',')
            return tc__fail(err, cap, "\"%.*s\": a space in the host name",
                            (int)(n > 40 ? 40 : n), s);
    /* in brackets an IPv6 address (hex, ':', '.', a '%' zone); outside
       them no bracket at all */
    for (size_t i = 0; i < hlen; i++)
        if (host != s
                ? !isxdigit((unsigned char)host[i]) && !strchr(":.%", host[i])
                : host[i] == '[' || host[i] == ']')
            return tc__fail(err, cap, "\"%.*s\": not a host name or address",
                            (int)(n > 40 ? 40 : n), s);
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    a->port = (int)p;
    return TC_OK;
}

int tc__addr_list(const char *s, tc__addr *out, size_t max, size_t *n,
                  char *err, size_t cap)
{
    *n = 0;
    if (!s || !*s)
        return tc__fail(err, cap, "empty list");
    for (;;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len == 0)
            return tc__fail(err, cap, "an empty entry in the list");
        if (*n == max)
            return tc__fail(err, cap, "more than %zu entries", max);
        if (parse_one(s, len, &out[*n], err, cap) != TC_OK)
            return TC_EINVAL;
        ++*n;
        if (!end)
            return TC_OK;
        s = end + 1;
    }
}

static int set(const char *s)
{
    return s && *s;
}

int tc__topo_of(const tc_options *o, tc__topo *t, char *err, size_t cap)
{
    char why[120];
    memset(t, 0, sizeof(*t));
    if (set(o->redis_sentinels) && set(o->redis_cluster))
        return tc__fail(err, cap,
                        "redis_sentinels and redis_cluster are both set: "
                        "choose one");
    const char *list =
        set(o->redis_sentinels) ? o->redis_sentinels : o->redis_cluster;
    const char *name =
        set(o->redis_sentinels) ? "redis_sentinels" : "redis_cluster";
    if (!set(list))
        return TC_OK;
    if (o->redis_socket[0])
        return tc__fail(err, cap,
                        "redis_socket and %s are both set: "
                        "choose one",
                        name);
    if (tc__addr_list(list, t->nodes, TC_NODES_MAX, &t->n, why, sizeof(why)) !=
        TC_OK)
        return tc__fail(err, cap, "%s: %s", name, why);
    if (set(o->redis_cluster)) {
        t->kind = TC__TOPO_CLUSTER;
        if (o->redis_db != 0) /* SELECT is refused in cluster mode */
            return tc__fail(err, cap,
                            "redis_db: %d, but a cluster has only "
                            "database 0",
                            o->redis_db);
        return TC_OK;
    }
    t->kind = TC__TOPO_SENTINEL;
    const char *m = set(o->sentinel_master) ? o->sentinel_master : "mymaster";
    if (strlen(m) >= sizeof(t->master))
        return tc__fail(err, cap, "sentinel_master: longer than %zu bytes",
                        sizeof(t->master) - 1);
    for (const char *p = m; *p; p++)
        if ((unsigned char)*p <= ' ')
            return tc__fail(err, cap,
                            "sentinel_master: a space or control character");
    snprintf(t->master, sizeof(t->master), "%s", m);
    if (o->sentinel_password &&
        strlen(o->sentinel_password) >= sizeof(t->sentinel_password))
        return tc__fail(err, cap, "sentinel_password: longer than %zu bytes",
                        sizeof(t->sentinel_password) - 1);
    if (o->sentinel_password)
        snprintf(t->sentinel_password, sizeof(t->sentinel_password), "%s",
                 o->sentinel_password);
    return TC_OK;
}

void tc__addr_str(const tc__addr *a, char *buf, size_t cap)
{
    if (strchr(a->host, ':'))
        snprintf(buf, cap, "[%s]:%d", a->host, a->port);
    else
        snprintf(buf, cap, "%s:%d", a->host, a->port);
}

int tc__addr_eq(const tc__addr *a, const tc__addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}
