/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Per-worker request metrics: counts by route, method and status, and a
 * latency histogram by route and method, all lock-free counters; written
 * out after tiercache's own stats in Prometheus text.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billgen.h"

static const char *const routes[] = {"/api/users",
                                     "/api/users/{id}",
                                     "/api/products",
                                     "/api/products/{id}",
                                     "/api/invoices",
                                     "/api/invoices/{id}",
                                     "/api/invoices/{id}/bill",
                                     "/health",
                                     "/metrics",
                                     "other"};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))
static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "other"};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))
static const int statuses[] = {200, 201, 204, 304, 400, 404, 405,
                               409, 413, 415, 422, 500, 503, 0};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]))
/* Upper bounds in microseconds; the last bucket is +Inf. */
static const uint64_t bounds_us[] = {250,    500,     1000,   2500,   5000,
                                     10000,  25000,   50000,  100000, 250000,
                                     500000, 1000000, 2500000};
#define NBOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))

static _Atomic uint64_t counts[NROUTES][NMETHODS][NSTATUS];
static _Atomic uint64_t hist[NROUTES][NMETHODS][NBOUNDS + 1];
static _Atomic uint64_t sum_us[NROUTES][NMETHODS];

static size_t index_of(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return n - 1; /* "other" */
}

void bg_metrics_record(const char *method, const char *route, int status,
                       uint64_t micros)
{
    size_t r = index_of(routes, NROUTES, route);
    size_t m = index_of(methods, NMETHODS, method);
    size_t s = NSTATUS - 1;
    for (size_t i = 0; i + 1 < NSTATUS; i++)
        if (statuses[i] == status)
            s = i;
    size_t b = 0;
    while (b < NBOUNDS && micros > bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&counts[r][m][s], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hist[r][m][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sum_us[r][m], micros, memory_order_relaxed);
}

typedef struct buf {
    char *p;
    size_t len, cap;
    int failed;
} buf;

static void put(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n) * 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void put_requests(buf *b)
{
    put(b, "# HELP billgen_http_requests_total HTTP requests answered.\n"
           "# TYPE billgen_http_requests_total counter\n");
    for (size_t r = 0; r < NROUTES; r++)
        for (size_t m = 0; m < NMETHODS; m++)
            for (size_t s = 0; s < NSTATUS; s++) {
                uint64_t n = atomic_load(&counts[r][m][s]);
                if (!n)
                    continue;
                char st[8];
                snprintf(st, sizeof(st), "%d", statuses[s]);
                put(b,
                    "billgen_http_requests_total{route=\"%s\",method=\"%s\","
                    "status=\"%s\"} %llu\n",
                    routes[r], methods[m], s + 1 < NSTATUS ? st : "other",
                    (unsigned long long)n);
            }
}

static void put_latency(buf *b)
{
    put(b, "# HELP billgen_http_request_duration_seconds Time to answer.\n"
           "# TYPE billgen_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r < NROUTES; r++)
        for (size_t m = 0; m < NMETHODS; m++) {
            uint64_t acc = 0, total = 0;
            for (size_t i = 0; i <= NBOUNDS; i++)
                total += atomic_load(&hist[r][m][i]);
            if (!total)
                continue;
            const char *lbl = "billgen_http_request_duration_seconds";
            for (size_t i = 0; i < NBOUNDS; i++) {
                acc += atomic_load(&hist[r][m][i]);
                put(b,
                    "%s_bucket{route=\"%s\",method=\"%s\",le=\"%g\"} %llu\n",
                    lbl, routes[r], methods[m], bounds_us[i] / 1e6,
                    (unsigned long long)acc);
            }
            put(b,
                "%s_bucket{route=\"%s\",method=\"%s\",le=\"+Inf\"} %llu\n"
                "%s_sum{route=\"%s\",method=\"%s\"} %.6f\n"
                "%s_count{route=\"%s\",method=\"%s\"} %llu\n",
                lbl, routes[r], methods[m], (unsigned long long)total, lbl,
                routes[r], methods[m], atomic_load(&sum_us[r][m]) / 1e6, lbl,
                routes[r], methods[m], (unsigned long long)total);
        }
}

char *bg_metrics_text(size_t *len)
{
    buf b = {NULL, 0, 0, 0};
    tc_cache *c = bg_cache();
    size_t need = c ? tc_stats_format(c, TC_FORMAT_PROMETHEUS, NULL, 0) : 0;
    b.cap = need + 16384;
    b.p = malloc(b.cap);
    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    if (c)
        b.len = tc_stats_format(c, TC_FORMAT_PROMETHEUS, b.p, b.cap);
    if (b.len >= b.cap)
        b.len = 0; /* grew meanwhile: leave it out rather than cut it */
    put(&b,
        "# HELP billgen_worker The worker that answered.\n"
        "# TYPE billgen_worker gauge\nbillgen_worker %d\n",
        bg_worker_no);
    put(&b,
        "# HELP billgen_sqlite_queries_total SQL statements run.\n"
        "# TYPE billgen_sqlite_queries_total counter\n"
        "billgen_sqlite_queries_total %llu\n",
        (unsigned long long)bg_db_queries());
    put_requests(&b);
    put_latency(&b);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
