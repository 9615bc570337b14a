/* SPDX-License-Identifier: BSD-3-Clause */
/* Counters, health, and their text forms (Prometheus, JSON). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "coherence.h"
#include "l1.h"
#include "l2.h"

void tc__hist_add(tc__hist *h, uint64_t us)
{
    /* bucket i holds (2^i, 2^(i+1)] us, so that its le (<=, in
       Prometheus) counts a value on the boundary */
    unsigned b = 0;
    for (uint64_t v = us ? us - 1 : 0; v > 1 && b < TC_LAG_BUCKETS - 1;
         v >>= 1)
        b++;
    TC__INC(h->b[b]);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

static void hist_copy(const tc__hist *h, uint64_t *buckets, uint64_t *sum_us)
{
    for (int i = 0; i < TC_LAG_BUCKETS; i++)
        buckets[i] = TC__GET(h->b[i]);
    *sum_us = TC__GET(h->sum_us);
}

void tc_health(tc_cache *c, tc_health_info *out)
{
    if (!c || !out)
        return;
    memset(out, 0, sizeof(*out));
    if (tc__in_read_fn()) /* the pool's lock may wait on a fork's prepare */
        return;
    out->l2_configured = c->l2 != NULL;
    if (c->l2)
        tc__l2_health(c->l2, out);
    if (c->coh && tc__coh_started(c->coh))
        tc__coh_health(c->coh, out);
}

void tc_stats(tc_cache *c, tc_stats_info *out)
{
    if (!c || !out)
        return;
    if (tc__in_read_fn()) { /* the L1's counts would wait for the caller */
        memset(out, 0, sizeof(*out));
        return;
    }
    /* A use like any other: it reports coherence, so the listener starts
       (or, in a child, is rebuilt) first. A failure shows as coherent 0. */
    (void)tc__enter(c);
    memset(out, 0, sizeof(*out));
    const tc__counters *k = &c->ctr;
    out->l1_misses = TC__GET(k->l1_misses); /* + the shards', below */
    out->l2_hits = TC__GET(k->l2_hits);
    out->l2_misses = TC__GET(k->l2_misses);
    out->sets = TC__GET(k->sets);
    out->deletes = TC__GET(k->deletes);
    out->backend_errors = TC__GET(k->backend_errors);
    out->degraded_ops = TC__GET(k->degraded_ops);
    out->codec_errors = TC__GET(k->codec_errors);
    out->reconnects = TC__GET(k->reconnects);
    out->breaker_opens = TC__GET(k->breaker_opens);
    out->computes = TC__GET(k->computes);
    out->oversized = TC__GET(k->oversized);
    out->l1_warmed = TC__GET(k->l1_warmed);
    out->l1_revalidated = TC__GET(k->l1_revalidated);
    out->l1_revalidate_drops = TC__GET(k->l1_revalidate_drops);
    out->invalidations = TC__GET(k->invalidations);
    out->link_losses = TC__GET(k->link_losses);
    out->l1_flushes = TC__GET(k->l1_flushes);
    out->replay_queued = TC__GET(k->replay_queued);
    out->replay_done = TC__GET(k->replay_done);
    out->replay_overflows = TC__GET(k->replay_overflows);
    hist_copy(&k->lag, out->lag_hist, &out->lag_sum_us);
    hist_copy(&k->l2_lat, out->l2_hist, &out->l2_sum_us);
    hist_copy(&k->compute_lat, out->compute_hist, &out->compute_sum_us);
    out->coherent = c->coh ? (uint64_t)tc__coh_ok(c->coh) : 0;
    tc__l1_stats n;
    tc__l1_counts(c->l1, &n);
    out->l1_entries = n.entries;
    out->l1_bytes = n.bytes;
    out->l1_evictions = n.evictions;
    out->l1_expirations = n.expirations;
    out->epoch_drops = n.epoch_drops;
    out->l1_hits = n.hits;
    out->l1_misses += n.misses;
    tc_health_info h;
    tc_health(c, &h);
    out->breaker = (uint64_t)h.breaker;
}

/* One row of the text forms: name, kind, help, value. */
typedef struct metric {
    const char *name;
    const char *type; /* "counter" or "gauge" */
    const char *help;
    uint64_t value;
} metric;

/* snprintf that keeps counting past the end of buf, like snprintf. */
typedef struct out {
    char *buf;
    size_t cap, len;
} out;

static void put(out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

/* Room for collect's rows: a row more than it has fails to compile. */
#define METRICS_MAX 40
static size_t collect(const tc_stats_info *s, metric *m)
{
    const metric rows[] = {
        {"l1_hits_total", "counter", "L1 hits", s->l1_hits},
        {"l1_misses_total", "counter", "L1 misses", s->l1_misses},
        {"l2_hits_total", "counter", "Redis hits", s->l2_hits},
        {"l2_misses_total", "counter", "Redis misses", s->l2_misses},
        {"sets_total", "counter", "tc_set and tc_group_bump calls", s->sets},
        {"deletes_total", "counter", "tc_del calls", s->deletes},
        {"l1_evictions_total", "counter", "L1 evictions", s->l1_evictions},
        {"l1_expirations_total", "counter", "L1 expirations",
         s->l1_expirations},
        {"backend_errors_total", "counter", "failed Redis calls",
         s->backend_errors},
        {"degraded_ops_total", "counter", "calls served without Redis",
         s->degraded_ops},
        {"codec_errors_total", "counter", "foreign or corrupt values",
         s->codec_errors},
        {"reconnects_total", "counter", "reconnections after a failure",
         s->reconnects},
        {"breaker_opens_total", "counter", "circuit breaker openings",
         s->breaker_opens},
        {"computes_total", "counter", "tc_fetch computations", s->computes},
        {"oversized_total", "counter",
         "values over max_value_bytes, not cached", s->oversized},
        {"l1_warmed_total", "counter", "values tc_warm put in the L1",
         s->l1_warmed},
        {"l1_revalidated_total", "counter",
         "L1 entries a reconnect kept, unchanged in Redis", s->l1_revalidated},
        {"l1_revalidate_drops_total", "counter",
         "L1 entries a reconnect dropped", s->l1_revalidate_drops},
        {"invalidations_total", "counter", "invalidations received",
         s->invalidations},
        {"epoch_drops_total", "counter", "L1 fills refused after a race",
         s->epoch_drops},
        {"link_losses_total", "counter", "invalidation link losses",
         s->link_losses},
        {"l1_flushes_total", "counter", "times the L1 was emptied",
         s->l1_flushes},
        {"replay_queued_total", "counter", "invalidations queued for replay",
         s->replay_queued},
        {"replay_done_total", "counter", "queued invalidations replayed",
         s->replay_done},
        {"replay_overflows_total", "counter",
         "replay queue overflows (namespace flushed)", s->replay_overflows},
        {"coherent", "gauge", "1 while the invalidation link is up",
         s->coherent},
        {"l1_entries", "gauge", "entries in the L1", s->l1_entries},
        {"l1_bytes", "gauge", "bytes charged to the L1", s->l1_bytes},
        {"breaker_state", "gauge", "0 closed, 1 open, 2 half-open",
         s->breaker},
    };
    _Static_assert(sizeof(rows) <= METRICS_MAX * sizeof(metric),
                   "METRICS_MAX is too small for the rows");
    memcpy(m, rows, sizeof(rows));
    return sizeof(rows) / sizeof(rows[0]);
}

/* A histogram of TC_LAG_BUCKETS log2 microsecond buckets, the last one
   open-ended. */
typedef struct hist {
    const char *name; /* Prometheus, after tiercache_; JSON: json */
    const char *json;
    const char *help;
    const uint64_t *b;
    const uint64_t *sum_us; /* the observations added up, in us */
} hist;

/* Prometheus: cumulative buckets with their upper bounds 2^(i+1) us in
   seconds, the last one +Inf; JSON: the raw counts and the sum in us. */
static void put_hist(out *o, tc_format fmt, const hist *h)
{
    uint64_t n = 0;
    if (fmt == TC_FORMAT_JSON)
        put(o, ",\"%s_us_log2_hist\":[", h->json);
    else
        put(o, "# HELP tiercache_%s %s\n# TYPE tiercache_%s histogram\n",
            h->name, h->help, h->name);
    for (int i = 0; i < TC_LAG_BUCKETS; i++) {
        n += h->b[i];
        if (fmt == TC_FORMAT_JSON)
            put(o, "%s%llu", i ? "," : "", (unsigned long long)h->b[i]);
        else if (i < TC_LAG_BUCKETS - 1)
            put(o, "tiercache_%s_bucket{le=\"%.6f\"} %llu\n", h->name,
                (double)(2ULL << i) / 1e6, (unsigned long long)n);
    }
    if (fmt == TC_FORMAT_JSON) {
        put(o, "]");
        if (h->sum_us)
            put(o, ",\"%s_us_sum\":%llu", h->json,
                (unsigned long long)*h->sum_us);
        return;
    }
    put(o, "tiercache_%s_bucket{le=\"+Inf\"} %llu\n", h->name,
        (unsigned long long)n);
    if (h->sum_us)
        put(o, "tiercache_%s_sum %.6f\n", h->name, (double)*h->sum_us / 1e6);
    put(o, "tiercache_%s_count %llu\n", h->name, (unsigned long long)n);
}

static void put_hists(out *o, tc_format fmt, const tc_stats_info *s)
{
    const hist hs[] = {
        {"inval_lag_seconds", "inval_lag", "channel invalidation lag",
         s->lag_hist, &s->lag_sum_us},
        {"l2_command_duration_seconds", "l2_command",
         "Redis command round trips through the pool", s->l2_hist,
         &s->l2_sum_us},
        {"compute_duration_seconds", "compute",
         "tc_fetch compute callback runs", s->compute_hist,
         &s->compute_sum_us},
    };
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        put_hist(o, fmt, &hs[i]);
}

size_t tc_stats_format(tc_cache *c, tc_format fmt, char *buf, size_t cap)
{
    if (!c || (!buf && cap) ||
        (fmt != TC_FORMAT_PROMETHEUS && fmt != TC_FORMAT_JSON))
        return 0;
    tc_stats_info s; /* one snapshot for the counters and histograms */
    tc_stats(c, &s);
    metric m[METRICS_MAX];
    size_t n = collect(&s, m);
    out o = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        unsigned long long v = (unsigned long long)m[i].value;
        if (fmt == TC_FORMAT_PROMETHEUS)
            put(&o,
                "# HELP tiercache_%s %s\n# TYPE tiercache_%s %s\n"
                "tiercache_%s %llu\n",
                m[i].name, m[i].help, m[i].name, m[i].type, m[i].name, v);
        else
            put(&o, "%s\"%s\":%llu", i ? "," : "{", m[i].name, v);
    }
    put_hists(&o, fmt, &s);
    if (fmt == TC_FORMAT_JSON)
        put(&o, "}\n");
    return o.len;
}
