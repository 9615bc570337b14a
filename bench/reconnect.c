/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * coherence, reconnect: what a lost invalidation link costs a warm
 * process. An L1 of RC_KEYS entries, a CLIENT KILL TYPE pubsub, then a
 * window of tc_fetch over every key in turn: the Redis GETs and the
 * source computations in that window, with the L1 emptied on the loss
 * (revalidate 0) and with it revalidated (1); and how long the
 * revalidation took beside the same GETRANGEs sent raw, pipelined as
 * the listener sends them.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"

#define RC_KEYS 10000
#define RC_BATCH 256 /* as the listener's batches */

static int compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud, (void)ttl;
    *val = strdup("computed");
    *len = 8;
    return *val ? 0 : -1;
}

/* calls= of one command in INFO commandstats. */
static uint64_t calls_of(const th_redis *r, const char *cmd)
{
    redisReply *rep = th_redis_cmd(r, "INFO commandstats");
    uint64_t n = 0;
    char want[64];
    snprintf(want, sizeof want, "cmdstat_%s:calls=", cmd);
    if (rep && rep->type == REDIS_REPLY_STRING) {
        const char *p = strstr(rep->str, want);
        if (p)
            n = strtoull(p + strlen(want), NULL, 10);
    }
    freeReplyObject(rep);
    return n;
}

/* The listener's own account, "L1 revalidated in <ms> ms: ...": written
   on its thread, read on ours; -1 before it. */
static _Atomic double logged_ms = -1;
static void on_log(void *ud, int level, const char *msg)
{
    (void)ud, (void)level;
    double ms;
    if (sscanf(msg, "L1 revalidated in %lf ms", &ms) == 1)
        logged_ms = ms;
}

typedef struct rc_result {
    uint64_t gets, computes, getranges;
    double revalidate_ms; /* kill to every entry checked; 0: not done */
    double listener_ms;   /* the listener's figure: link up to done */
} rc_result;

static void key_of(char *key, size_t i)
{
    snprintf(key, KEY_CAP, "rc:%zu", i);
}

static void run(const th_redis *r, int reval, uint64_t window_ns,
                rc_result *out)
{
    tc_options o;
    th_options(r, &o);
    snprintf(o.ns, sizeof o.ns, "rc%d", reval);
    o.revalidate = reval;
    o.l1_max_entries = 4 * RC_KEYS;
    o.l1_max_bytes = 256u << 20;
    o.log_fn = on_log;
    o.log_level = TC_LOG_INFO;
    logged_ms = -1;
    tc_cache *c = NULL;
    if (tc_open(&c, &o) != TC_OK)
        die("reconnect: tc_open failed");
    char key[KEY_CAP], *val = make_payload(64);
    for (size_t i = 0; i < RC_KEYS; i++) {
        key_of(key, i);
        if (tc_set(c, key, val, 64, TTL_MS) != TC_OK)
            die("reconnect: tc_set failed");
    }
    /* our own writes' echoes drop them: read until all are L1 hits */
    tc_stats_info s;
    for (int pass = 0; pass < 50; pass++) {
        for (size_t i = 0; i < RC_KEYS; i++) {
            key_of(key, i);
            tc_value *v = NULL;
            if (tc_get(c, key, &v) == TC_OK)
                tc_value_release(v);
        }
        tc_stats(c, &s);
        if (s.l1_entries == RC_KEYS)
            break;
    }
    if (s.l1_entries != RC_KEYS)
        die("reconnect: the L1 holds %llu of %d entries",
            (unsigned long long)s.l1_entries, RC_KEYS);

    tc_stats_info s0;
    tc_stats(c, &s0);
    uint64_t ranges0 = calls_of(r, "getrange");
    logged_ms = -1; /* the first subscription's, of an empty L1 */
    uint64_t t0 = now_ns();
    redisReply *k = th_redis_cmd(r, "CLIENT KILL TYPE pubsub");
    freeReplyObject(k);
    out->revalidate_ms = 0;
    for (size_t i = 0; now_ns() - t0 < window_ns; i = (i + 1) % RC_KEYS) {
        key_of(key, i);
        tc_value *v = NULL;
        if (tc_fetch(c, key, TTL_MS, compute, NULL, &v) == TC_OK)
            tc_value_release(v);
        if (reval && !out->revalidate_ms && i % 64 == 0 && logged_ms >= 0)
            out->revalidate_ms = (double)(now_ns() - t0) / 1e6;
    }
    tc_stats(c, &s);
    out->gets = (s.l2_hits + s.l2_misses) - (s0.l2_hits + s0.l2_misses);
    out->computes = s.computes - s0.computes;
    out->getranges = calls_of(r, "getrange") - ranges0;
    out->listener_ms = logged_ms;
    if (s.link_losses != 1)
        die("reconnect: %llu link losses, not 1",
            (unsigned long long)s.link_losses);
    tc_close(c);
    free(val);
}

/* The floor of the revalidation: the same GETRANGEs, raw, RC_BATCH to a
   round trip on one connection. */
static double raw_getranges_ms(const th_redis *r)
{
    redisContext *x = th_redis_connect(r);
    if (!x)
        die("reconnect: cannot connect");
    char rkey[RKEY_CAP];
    uint64_t t0 = now_ns();
    for (size_t from = 0; from < RC_KEYS; from += RC_BATCH) {
        size_t m = RC_KEYS - from < RC_BATCH ? RC_KEYS - from : RC_BATCH;
        for (size_t i = 0; i < m; i++) {
            snprintf(rkey, sizeof rkey, "rc1:{rc:%zu}", from + i);
            redisAppendCommand(x, "GETRANGE %s -9 -1", rkey);
        }
        for (size_t i = 0; i < m; i++) {
            redisReply *rep = NULL;
            if (redisGetReply(x, (void **)&rep) != REDIS_OK)
                die("reconnect: raw GETRANGE failed");
            freeReplyObject(rep);
        }
    }
    double ms = (double)(now_ns() - t0) / 1e6;
    redisFree(x);
    return ms;
}

void bench_reconnect(const th_redis *r, const bench_cfg *cfg)
{
    uint64_t window = (cfg->smoke ? 1 : 5) * 1000000000ull;
    rc_result flush, reval;
    progress("coherence: a lost link with %d entries in the L1, emptied",
             RC_KEYS);
    run(r, 0, window, &flush);
    progress("coherence: the same, revalidated");
    run(r, 1, window, &reval);
    double floor_ms = raw_getranges_ms(r);
    char what[64];
    snprintf(what, sizeof what, "entries in the L1 (%.0f s window)",
             (double)window / 1e9);
    add_row("coherence", "reconnect_flush_redis_gets", U_COUNT,
            (double)flush.gets, RC_KEYS, what);
    add_row("coherence", "reconnect_revalidate_redis_gets", U_COUNT,
            (double)reval.gets, RC_KEYS, what);
    add_row("coherence", "reconnect_revalidate_getranges", U_COUNT,
            (double)reval.getranges, RC_KEYS, what);
    add_row("coherence", "reconnect_revalidate_s", U_SEC,
            reval.revalidate_ms / 1e3, floor_ms / 1e3,
            "the same GETRANGEs raw, 256 a round trip");
    add_note("coherence: reconnect: source computations %llu (emptied) and "
             "%llu (revalidated): Redis kept every value; the listener "
             "logged the revalidation done %.1f ms after the link was up",
             (unsigned long long)flush.computes,
             (unsigned long long)reval.computes, reval.listener_ms);
    if (!reval.revalidate_ms)
        die("reconnect: the revalidation did not finish in the window");
}
