/* SPDX-License-Identifier: BSD-3-Clause */
/* health (connection, version, tracking, breaker, round trip) and bench
   (tc_get beside PING, p50 and p99). */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "coherence.h"
#include "conn.h"

static int keep_version(void *ud, const redisReply *r)
{
    const char *v = r->type == REDIS_REPLY_STRING
                        ? strstr(r->str, "redis_version:")
                        : NULL;
    if (!v)
        return TC_EBACKEND;
    snprintf(ud, 32, "%.*s", (int)strcspn(v + 14, "\r\n"), v + 14);
    return TC_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-th quantile (0..1) of n sorted samples. */
static uint64_t quantile(const uint64_t *s, size_t n, double q)
{
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return n ? s[i < n ? i : n - 1] : 0;
}

/* n PINGs on the pool, each timed; sorted into us[]. TC_OK or the
   first failure. */
static int pings(cli *k, uint64_t *us, size_t n)
{
    /* with an argument: on a cluster tc__l2_argv routes by argv[1] */
    const char *argv[] = {"PING", "tiercache"};
    size_t lens[] = {4, 9};
    for (size_t i = 0; i < n; i++) {
        uint64_t t = cli_now_us();
        int rc = tc__l2_argv(k->c->l2, 2, argv, lens, tc__l2_reply_ok, NULL);
        if (rc != TC_OK)
            return rc;
        us[i] = cli_now_us() - t;
    }
    qsort(us, n, sizeof(*us), cmp_u64);
    return TC_OK;
}

static const char *breaker_name(int b)
{
    return b == TC_BREAKER_OPEN        ? "open"
           : b == TC_BREAKER_HALF_OPEN ? "half-open"
                                       : "closed";
}

typedef struct report {
    char endpoint[300], version[32];
    int state; /* CLI_OK, CLI_NOTFOUND (degraded), CLI_UNREACHABLE */
    const char *why, *link;
    uint64_t rtt_us;
    tc_health_info h;
} report;

static void health_print(cli *k, const report *r)
{
    static const char *states[] = {"healthy", "degraded", "unreachable"};
    if (k->json) {
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string(states[r->state]));
        json_object_set_new(o, "endpoint", json_string(r->endpoint));
        json_object_set_new(o, "namespace", json_string(k->opt.ns));
        json_object_set_new(o, "connected", json_boolean(r->h.l2_connected));
        json_object_set_new(o, "server_version", json_string(r->version));
        json_object_set_new(o, "coherence", json_string(r->link));
        json_object_set_new(o, "breaker",
                            json_string(breaker_name(r->h.breaker)));
        json_object_set_new(o, "rtt_us", json_integer((json_int_t)r->rtt_us));
        json_object_set_new(o, "problem", json_string(r->why ? r->why : ""));
        cli_json_out(o);
        return;
    }
    printf("status     %s%s%s\n", states[r->state], r->why ? ": " : "",
           r->why ? r->why : "");
    printf("endpoint   %s (namespace %s)\n", r->endpoint, k->opt.ns);
    printf("connected  %s\n", r->h.l2_connected ? "yes" : "no");
    printf("server     redis %s\n", r->version[0] ? r->version : "?");
    printf("coherence  %s\n", r->link);
    printf("breaker    %s\n", breaker_name(r->h.breaker));
    if (r->state != CLI_UNREACHABLE)
        printf("rtt        %llu us (median of 5 PINGs)\n",
               (unsigned long long)r->rtt_us);
}

/* The invalidation link, started as a cache's first call starts it. */
static const char *link_of(cli *k)
{
    tc_value *v = NULL;
    tc_get(k->c, "tiercache:health", &v); /* its outcome does not matter */
    tc_value_release(v);
    if (!k->c->coh)
        return "none (TC_COHERENCE=none)";
    if (!tc__coh_ok(k->c->coh))
        return "down";
    return atomic_load(&k->c->tracking) ? "client tracking"
                                        : "channel (no client tracking)";
}

int cmd_health(cli *k)
{
    report r = {.state = CLI_OK, .why = NULL};
    uint64_t us[5];
    int rc = cli_open(k);
    if (rc)
        return rc;
    tc__conn_endpoint(&k->c->opt, r.endpoint, sizeof(r.endpoint));
    if (k->c->topo.kind != TC__TOPO_SINGLE)
        snprintf(r.endpoint, sizeof(r.endpoint), "%s",
                 k->c->topo.kind == TC__TOPO_CLUSTER ? "cluster" : "sentinel");
    const char *argv[] = {"INFO", "server"};
    size_t lens[] = {4, 6};
    rc = tc__l2_argv(k->c->l2, 2, argv, lens, keep_version, r.version);
    if (rc == TC_OK)
        rc = pings(k, us, 5);
    r.rtt_us = rc == TC_OK ? us[2] : 0;
    r.link = rc == TC_OK ? link_of(k) : "down";
    tc_health(k->c, &r.h);
    if (rc != TC_OK) {
        r.state = CLI_UNREACHABLE;
        r.why = r.h.last_error[0] ? r.h.last_error : tc_strerror(rc);
    } else if (r.h.breaker != TC_BREAKER_CLOSED || r.h.l2_writes_refused) {
        r.state = CLI_NOTFOUND;
        r.why = r.h.l2_writes_refused ? "writes are refused" : "breaker";
    } else if (strcmp(r.link, "down") == 0 ||
               (k->opt.coherence == TC_COHERENCE_AUTO &&
                strcmp(r.link, "client tracking") != 0)) {
        /* TC_COHERENCE=channel chose the channel: that is no fault */
        r.state = CLI_NOTFOUND;
        r.why = "invalidations do not use client tracking";
    }
    health_print(k, &r);
    return r.state;
}

/* ---- bench ---- */

static int bench_gets(cli *k, const char *key, uint64_t *us, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        tc_value *v = NULL;
        uint64_t t = cli_now_us();
        int rc = tc_get(k->c, key, &v);
        us[i] = cli_now_us() - t;
        tc_value_release(v);
        if (rc != TC_OK)
            return rc == TC_MISS ? TC_EBACKEND : rc;
    }
    qsort(us, n, sizeof(*us), cmp_u64);
    return TC_OK;
}

static void bench_print(cli *k, const uint64_t *g, const uint64_t *p, size_t n)
{
    if (k->json) {
        json_t *o = json_object();
        json_object_set_new(o, "calls", json_integer((json_int_t)n));
        json_object_set_new(o, "get_p50_us",
                            json_integer((json_int_t)quantile(g, n, .5)));
        json_object_set_new(o, "get_p99_us",
                            json_integer((json_int_t)quantile(g, n, .99)));
        json_object_set_new(o, "ping_p50_us",
                            json_integer((json_int_t)quantile(p, n, .5)));
        json_object_set_new(o, "ping_p99_us",
                            json_integer((json_int_t)quantile(p, n, .99)));
        cli_json_out(o);
        return;
    }
    printf("%-6s %10s %10s\n", "", "p50 us", "p99 us");
    printf("%-6s %10llu %10llu   tc_get of a 64-byte value, L1 off\n", "get",
           (unsigned long long)quantile(g, n, .5),
           (unsigned long long)quantile(g, n, .99));
    printf("%-6s %10llu %10llu   PING on one connection: the floor\n", "ping",
           (unsigned long long)quantile(p, n, .5),
           (unsigned long long)quantile(p, n, .99));
    printf("(%zu calls each)\n", n);
}

int cmd_bench(cli *k)
{
    size_t n = k->count > 0 ? (size_t)k->count : 2000;
    char key[64], val[64];
    int rc = cli_open(k);
    if (rc)
        return rc;
    uint64_t *g = calloc(n, sizeof(*g)), *p = calloc(n, sizeof(*p));
    if (!g || !p) {
        free(g);
        free(p);
        return cli_fail(k, CLI_FAILED, "out of memory");
    }
    snprintf(key, sizeof(key), "tiercache:bench:%ld", (long)getpid());
    memset(val, 'x', sizeof(val));
    rc = tc_set(k->c, key, val, sizeof(val), 60000);
    if (rc == TC_OK)
        rc = bench_gets(k, key, g, n);
    if (rc == TC_OK)
        rc = pings(k, p, n);
    tc_del(k->c, key);
    if (rc == TC_OK)
        bench_print(k, g, p, n);
    free(g);
    free(p);
    return rc == TC_OK ? CLI_OK : cli_status(k, rc, "bench");
}
