/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Round trips to Redis, each beside the raw hiredis command that is its
 * floor, on the same key, bytes and kind of socket:
 *   l2   tc_get with the L1 off, served by Redis, against a raw GET;
 *        tc_mget of 100 such keys, and 100 tc_gets of them, against 100
 *        raw GETs pipelined in one round trip;
 *   set  tc_set against a raw SET PX of the same envelope bytes.
 * The two sides take turns in short blocks, so that machine noise lands
 * on both alike.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h" /* tc__env_encode: the raw SET sends real envelopes */

#define L1_ENTRIES 100000 /* the default L1 bound */
#define SET_KEYS 1000     /* the set path cycles over these */
#define BLOCK 20          /* ops one side runs before the other's turn */
#define WARMUP 200        /* untimed round trips per side before each case */
#define MIN_IO_OPS 1000   /* per side, however long it takes */

static const size_t value_sizes[] = {64, 1024, 16384};
#define NSIZES (sizeof(value_sizes) / sizeof(value_sizes[0]))

/* ---- Redis and caches ---- */

/* The command timeout is roomy enough that a scheduling hiccup on a busy
   machine is not a failure. */
tc_cache *open_cache(const th_redis *r, int unix_socket,
                     uint64_t l1_max_entries, tc_options *o)
{
    tc_cache *c;
    if (unix_socket)
        th_options_unix(r, o);
    else
        th_options(r, o);
    o->strict = 1;
    o->command_timeout_ms = 2000;
    o->l1_max_entries = l1_max_entries;
    int rc = tc_open(&c, o);
    if (rc != TC_OK)
        die("tc_open: %s", tc_strerror(rc));
    return c;
}

/* A raw connection set up like tiercache's own (hiredis sets TCP_NODELAY
   on every TCP connection). */
redisContext *raw_connect(const th_redis *r, int unix_socket)
{
    redisContext *ctx = unix_socket
                            ? redisConnectUnix(th_redis_socket(r))
                            : redisConnect("127.0.0.1", th_redis_port(r));
    if (!ctx || ctx->err)
        die("raw connect: %s", ctx ? ctx->errstr : "out of memory");
    struct timeval tv = {2, 0};
    redisSetTimeout(ctx, tv);
    if (!unix_socket)
        redisEnableKeepAlive(ctx);
    return ctx;
}

void redis_key(char *out, size_t cap, const tc_options *o, const char *key)
{
    snprintf(out, cap, "%s:{%s}", o->ns, key);
}

/* ---- timed round trips, the sides taking turns ---- */

static void run_block(timed_op op, void *ctx, uint64_t *lat, size_t first,
                      size_t m)
{
    for (size_t i = 0; i < m; i++)
        lat[i] = op(ctx, first + i);
}

/* The sides take turns in blocks of BLOCK ops, block k starting with
   side k % nsides (with two: each first in every other block), so
   machine noise (other processes, CPU frequency, Redis's own
   housekeeping) lands on all alike. Stops after n each, or once past the
   deadline (ns) with MIN_IO_OPS done. Returns the count per side. */
static size_t alternate(const timed_op *ops, int nsides, void *ctx,
                        uint64_t **lat, size_t n, uint64_t deadline)
{
    size_t done = 0;
    while (done < n && (done < MIN_IO_OPS || now_ns() < deadline)) {
        size_t m = n - done < BLOCK ? n - done : BLOCK;
        int first = (int)((done / BLOCK) % (size_t)nsides);
        for (int k = 0; k < nsides; k++) {
            int s = (first + k) % nsides;
            run_block(ops[s], ctx, lat[s] + done, done, m);
        }
        done += m;
    }
    return done;
}

size_t measure_sides(const bench_cfg *cfg, const timed_op *ops, int nsides,
                     void *ctx, uint64_t **lat, size_t n)
{
    alternate(ops, nsides, ctx, lat, WARMUP < n ? WARMUP : n, UINT64_MAX);
    size_t done =
        alternate(ops, nsides, ctx, lat, n, now_ns() + cfg->case_budget_ns);
    if (done < n)
        progress("  over its time budget: stopped at %zu per side", done);
    return done;
}

/* Warms up, then times up to cfg->io_ops of each side. On a machine so
   busy that a case outruns its time budget it stops early, so that the
   whole run stays bounded; the count is returned and said. */
static size_t measure_pair(const bench_cfg *cfg, timed_op a, timed_op b,
                           void *ctx, uint64_t *lat_a, uint64_t *lat_b)
{
    timed_op ops[2] = {a, b};
    uint64_t *lat[2] = {lat_a, lat_b};
    return measure_sides(cfg, ops, 2, ctx, lat, cfg->io_ops);
}

double ops_per_s(const uint64_t *lat, size_t n)
{
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += lat[i];
    return (double)n * 1e9 / (double)total;
}

/* ---- l2: gets served by Redis ---- */

typedef struct get_case {
    tc_cache *c; /* L1 off */
    redisContext *raw;
    char key[KEY_CAP];
    char rkey[RKEY_CAP];
    size_t vlen;
} get_case;

static uint64_t tc_get_op(void *ctx, size_t i)
{
    get_case *g = ctx;
    tc_value *v;
    uint64_t t0 = now_ns();
    int rc = tc_get(g->c, g->key, &v);
    size_t len = tc_value_len(v);
    tc_value_release(v);
    uint64_t dt = now_ns() - t0;
    if (rc != TC_OK || len != g->vlen)
        die("l2: tc_get %s: %s, %zu bytes", g->key, tc_strerror(rc), len);
    return dt;
}

uint64_t raw_get_ns(redisContext *ctx, const char *rkey, const char *scenario)
{
    uint64_t t0 = now_ns();
    redisReply *rep = redisCommand(ctx, "GET %s", rkey);
    int ok = rep && rep->type == REDIS_REPLY_STRING;
    if (rep)
        freeReplyObject(rep);
    uint64_t dt = now_ns() - t0;
    if (!ok)
        die("%s: raw GET %s: %s", scenario, rkey,
            rep ? "not a string" : "failed");
    return dt;
}

static uint64_t raw_get_op(void *ctx, size_t i)
{
    get_case *g = ctx;
    (void)i;
    return raw_get_ns(g->raw, g->rkey, "l2");
}

static void l2_report(const get_case *g, const char *sock, uint64_t *lat_tc,
                      uint64_t *lat_raw, size_t n, FILE *cdf)
{
    char metric[48], floor_is[80], label[48];
    static const unsigned pcts[] = {50, 99};
    qsort(lat_tc, n, sizeof(*lat_tc), cmp_u64);
    qsort(lat_raw, n, sizeof(*lat_raw), cmp_u64);
    snprintf(floor_is, sizeof(floor_is), "raw hiredis GET, same key, %s",
             sock);
    for (int i = 0; i < 2; i++) {
        snprintf(metric, sizeof(metric), "get_%s_%s_p%u_us", sock,
                 size_name(g->vlen), pcts[i]);
        add_row("l2", metric, U_USEC, pct_us(lat_tc, n, pcts[i]),
                pct_us(lat_raw, n, pcts[i]), floor_is);
    }
    snprintf(label, sizeof(label), "%s/%s/tc_get", sock, size_name(g->vlen));
    csv_cdf(cdf, label, lat_tc, n);
    snprintf(label, sizeof(label), "%s/%s/raw_GET", sock, size_name(g->vlen));
    csv_cdf(cdf, label, lat_raw, n);
}

static void l2_case(const th_redis *r, const bench_cfg *cfg, int unix_socket,
                    size_t vlen, uint64_t *lat_tc, uint64_t *lat_raw,
                    FILE *cdf)
{
    get_case g = {0};
    tc_options o;
    const char *sock = unix_socket ? "unix" : "tcp";
    progress("l2: %s %s, %zu round trips per side", sock, size_name(vlen),
             cfg->io_ops);
    g.c = open_cache(r, unix_socket, 0, &o); /* no L1: every get is L2 */
    g.raw = raw_connect(r, unix_socket);
    g.vlen = vlen;
    snprintf(g.key, sizeof(g.key), "l2:%s", size_name(vlen));
    redis_key(g.rkey, sizeof(g.rkey), &o, g.key);
    char *val = make_payload(vlen);
    int rc = tc_set(g.c, g.key, val, vlen, TTL_MS);
    free(val);
    if (rc != TC_OK)
        die("l2: tc_set: %s", tc_strerror(rc));
    size_t n = measure_pair(cfg, tc_get_op, raw_get_op, &g, lat_tc, lat_raw);
    l2_report(&g, sock, lat_tc, lat_raw, n, cdf);
    redisFree(g.raw);
    tc_close(g.c);
}

/* ---- l2: a batch of gets served by Redis ---- */

#define BATCH 100

typedef struct batch_case {
    tc_cache *c; /* L1 off */
    redisContext *raw;
    char keys[BATCH][KEY_CAP];
    char rkeys[BATCH][RKEY_CAP];
    const char *kp[BATCH];
    size_t vlen;
} batch_case;

static uint64_t tc_mget_op(void *ctx, size_t i)
{
    batch_case *b = ctx;
    tc_value *out[BATCH];
    int st[BATCH];
    (void)i;
    uint64_t t0 = now_ns();
    int rc = tc_mget(b->c, b->kp, BATCH, out, st);
    size_t good = 0;
    for (size_t k = 0; k < BATCH; k++) {
        good += st[k] == TC_OK && tc_value_len(out[k]) == b->vlen;
        tc_value_release(out[k]);
    }
    uint64_t dt = now_ns() - t0;
    if (rc != TC_OK || good != BATCH)
        die("l2: tc_mget: %s, %zu of %d", tc_strerror(rc), good, BATCH);
    return dt;
}

static uint64_t tc_get_x100_op(void *ctx, size_t i)
{
    batch_case *b = ctx;
    (void)i;
    uint64_t t0 = now_ns();
    for (size_t k = 0; k < BATCH; k++) {
        tc_value *v;
        int rc = tc_get(b->c, b->kp[k], &v);
        size_t len = tc_value_len(v);
        tc_value_release(v);
        if (rc != TC_OK || len != b->vlen)
            die("l2: tc_get %s: %s", b->kp[k], tc_strerror(rc));
    }
    return now_ns() - t0;
}

static uint64_t raw_pipeline_op(void *ctx, size_t i)
{
    batch_case *b = ctx;
    (void)i;
    uint64_t t0 = now_ns();
    for (size_t k = 0; k < BATCH; k++)
        if (redisAppendCommand(b->raw, "GET %s", b->rkeys[k]) != REDIS_OK)
            die("l2: raw pipeline: %s", b->raw->errstr);
    size_t good = 0;
    for (size_t k = 0; k < BATCH; k++) {
        redisReply *rep = NULL;
        if (redisGetReply(b->raw, (void **)&rep) != REDIS_OK || !rep)
            die("l2: raw pipeline: %s", b->raw->errstr);
        good += rep->type == REDIS_REPLY_STRING;
        freeReplyObject(rep);
    }
    uint64_t dt = now_ns() - t0;
    if (good != BATCH)
        die("l2: raw pipeline: %zu of %d strings", good, BATCH);
    return dt;
}

/* One tc_mget of BATCH keys Redis serves, beside BATCH tc_gets of the
   same keys and the floor of both: BATCH raw GETs in one pipeline. */
static void l2_batch(const th_redis *r, const bench_cfg *cfg)
{
    batch_case *b = xcalloc(1, sizeof(*b));
    tc_options o;
    size_t n = cfg->io_ops / 20 > 10 ? cfg->io_ops / 20 : 10;
    progress("l2: batches of %d gets, tcp 64B, %zu per side", BATCH, n);
    b->c = open_cache(r, 0, 0, &o); /* no L1: every get is L2 */
    b->raw = raw_connect(r, 0);
    b->vlen = 64;
    char *val = make_payload(b->vlen);
    for (size_t k = 0; k < BATCH; k++) {
        snprintf(b->keys[k], KEY_CAP, "batch:%zu", k);
        redis_key(b->rkeys[k], RKEY_CAP, &o, b->keys[k]);
        b->kp[k] = b->keys[k];
        int rc = tc_set(b->c, b->keys[k], val, b->vlen, TTL_MS);
        if (rc != TC_OK)
            die("l2: tc_set: %s", tc_strerror(rc));
    }
    free(val);
    uint64_t *lat[3];
    for (int s = 0; s < 3; s++)
        lat[s] = xcalloc(n, sizeof(uint64_t));
    timed_op ops[3] = {tc_mget_op, tc_get_x100_op, raw_pipeline_op};
    n = measure_sides(cfg, ops, 3, b, lat, n);
    for (int s = 0; s < 3; s++)
        qsort(lat[s], n, sizeof(uint64_t), cmp_u64);
    double mget = pct_us(lat[0], n, 50), gets = pct_us(lat[1], n, 50),
           raw = pct_us(lat[2], n, 50);
    const char *floor_is = "raw hiredis, 100 GETs pipelined, tcp";
    add_row("l2", "mget_100_us", U_USEC, mget, raw, floor_is);
    add_row("l2", "get_x100_us", U_USEC, gets, raw, floor_is);
    add_note("l2: tc_mget of %d keys %.1fx faster than %d tc_gets (p50 %.0f "
             "vs %.0f us; raw pipeline %.0f us)",
             BATCH, gets / mget, BATCH, mget, gets, raw);
    for (int s = 0; s < 3; s++)
        free(lat[s]);
    redisFree(b->raw);
    tc_close(b->c);
    free(b);
}
static void bench_warm(const th_redis *r, const bench_cfg *cfg);

void bench_l2(const th_redis *r, const bench_cfg *cfg)
{
    uint64_t *lat_tc = xcalloc(cfg->io_ops, sizeof(uint64_t));
    uint64_t *lat_raw = xcalloc(cfg->io_ops, sizeof(uint64_t));
    FILE *cdf = csv_open("l2_cdf", "series,fraction,us");
    for (int unix_socket = 0; unix_socket <= 1; unix_socket++)
        for (size_t s = 0; s < NSIZES; s++)
            l2_case(r, cfg, unix_socket, value_sizes[s], lat_tc, lat_raw, cdf);
    csv_close(cdf, "l2_cdf");
    l2_batch(r, cfg);
    free(lat_tc);
    free(lat_raw);
    bench_warm(r, cfg);
}

/* ---- warm: tc_warm against a raw SCAN + pipelined GET ---- */

/* SETs n keys warm:<i> holding one 64-byte value's envelope, pipelined. */
static void warm_fill(redisContext *raw, const tc_options *o, size_t n)
{
    char *payload = make_payload(64), *env, rkey[RKEY_CAP], key[KEY_CAP];
    size_t elen;
    tc__envelope e = {0,  tc__add_sat(tc__wall_ms(), TTL_MS),
                      0,  (const unsigned char *)payload,
                      64, 0};
    if (tc__env_encode(&e, &env, &elen) != TC_OK)
        die("warm: cannot encode an envelope");
    for (size_t from = 0; from < n; from += 1000) {
        size_t m = n - from < 1000 ? n - from : 1000;
        for (size_t i = 0; i < m; i++) {
            snprintf(key, sizeof(key), "warm:%zu", from + i);
            redis_key(rkey, sizeof(rkey), o, key);
            redisAppendCommand(raw, "SET %s %b PX %u", rkey, env, elen,
                               TTL_MS);
        }
        for (size_t i = 0; i < m; i++) {
            redisReply *r = NULL;
            if (redisGetReply(raw, (void **)&r) != REDIS_OK || !r ||
                r->type == REDIS_REPLY_ERROR)
                die("warm: SET failed");
            freeReplyObject(r);
        }
    }
    tc__free(env);
    free(payload);
}

/* The floor: what tc_warm does on the wire, with nothing decoded or
   stored. Returns the values read. */
static size_t raw_scan_get(redisContext *raw, const char *pattern)
{
    char cursor[32] = "0";
    size_t got = 0;
    do {
        redisReply *r =
            redisCommand(raw, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            die("warm: SCAN failed");
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++)
            redisAppendCommand(raw, "GET %b", keys->element[i]->str,
                               keys->element[i]->len);
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *g = NULL;
            if (redisGetReply(raw, (void **)&g) != REDIS_OK || !g)
                die("warm: GET failed");
            got += g->type == REDIS_REPLY_STRING;
            freeReplyObject(g);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return got;
}

/* A fresh cache on the namespace of o (open_cache's get a new one). */
static tc_cache *open_warm(const th_redis *r, const tc_options *o,
                           uint64_t l1_max_entries)
{
    tc_options w;
    tc_cache *c;
    th_options(r, &w);
    memcpy(w.ns, o->ns, sizeof(w.ns));
    w.command_timeout_ms = 2000;
    w.l1_max_entries = l1_max_entries;
    int rc = tc_open(&c, &w);
    if (rc != TC_OK)
        die("tc_open: %s", tc_strerror(rc));
    return c;
}

/* warm_100k_keys_s: tc_warm of 100,000 keys (fewer under --quick and
   --smoke, said in a note) into a fresh cache whose listener is up,
   beside the raw SCAN + pipelined GET of the same keys; the median of a
   few alternated trials each. */
static void bench_warm(const th_redis *r, const bench_cfg *cfg)
{
    size_t n = cfg->smoke ? 5000 : cfg->quick ? 20000 : 100000;
    int trials = cfg->smoke ? 1 : 3;
    double t_tc[3], t_raw[3];
    tc_options o;
    progress("l2: warm %zu keys, %d trials per side", n, trials);
    tc_cache *c = open_cache(r, 0, 0, &o);
    tc_close(c);
    redisContext *raw = raw_connect(r, 0);
    warm_fill(raw, &o, n);
    char pattern[RKEY_CAP + 8];
    snprintf(pattern, sizeof(pattern), "%s:{warm:*}", o.ns);
    for (int t = 0; t < trials; t++) {
        uint64_t t0 = now_ns();
        size_t got = raw_scan_get(raw, pattern);
        t_raw[t] = (double)(now_ns() - t0) / 1e9;
        if (got != n)
            die("warm: raw read %zu keys of %zu", got, n);
        c = open_warm(r, &o, 2 * n); /* room in every shard */
        tc_stats_info s;
        tc_stats(c, &s); /* the listener up first, as a first call */
        t0 = now_ns();
        int rc = tc_warm(c, "warm:", 0);
        t_tc[t] = (double)(now_ns() - t0) / 1e9;
        tc_stats(c, &s);
        tc_close(c);
        if (rc != TC_OK || s.l1_warmed != n)
            die("warm: tc_warm: %s, %llu of %zu keys", tc_strerror(rc),
                (unsigned long long)s.l1_warmed, n);
    }
    double tc = median(t_tc, trials), rw = median(t_raw, trials);
    add_row("l2", "warm_100k_keys_s", U_SEC, tc, rw,
            "raw SCAN + pipelined GET, same keys");
    add_row("l2", "warm_100k_keys_per_s", U_OPS, (double)n / tc,
            (double)n / rw, "raw SCAN + pipelined GET, same keys");
    if (n != 100000)
        add_note("l2 warm_100k_*: %zu keys in this run (100,000 in a full "
                 "one)",
                 n);
    redisFree(raw);
    c = open_warm(r, &o, 0); /* the keys go: later scenarios scan */
    tc_del_prefix(c, "warm:");
    tc_close(c);
}

/* ---- set: tc_set against a raw SET of the same bytes ---- */

typedef struct set_case {
    tc_cache *c; /* with its L1, as deployed: tc_set writes it too */
    redisContext *raw;
    char (*keys)[KEY_CAP];
    char (*rkeys)[RKEY_CAP];
    char *payload;
    size_t plen;
    char *env; /* the envelope tc_set builds around payload */
    size_t elen;
} set_case;

static uint64_t tc_set_op(void *ctx, size_t i)
{
    set_case *s = ctx;
    uint64_t t0 = now_ns();
    int rc = tc_set(s->c, s->keys[i % SET_KEYS], s->payload, s->plen, TTL_MS);
    uint64_t dt = now_ns() - t0;
    if (rc != TC_OK)
        die("set: tc_set: %s", tc_strerror(rc));
    return dt;
}

/* The same command tiercache sends, envelope and all, to the same keys:
   the tracking work in Redis and the invalidations our listener then
   handles are the same for both sides. */
static uint64_t raw_set_op(void *ctx, size_t i)
{
    set_case *s = ctx;
    uint64_t t0 = now_ns();
    redisReply *rep =
        redisCommand(s->raw, "SET %s %b PX %u", s->rkeys[i % SET_KEYS], s->env,
                     s->elen, TTL_MS);
    int ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (rep)
        freeReplyObject(rep);
    uint64_t dt = now_ns() - t0;
    if (!ok)
        die("set: raw SET failed");
    return dt;
}

static void set_setup(set_case *s, const th_redis *r, size_t plen)
{
    tc_options o;
    memset(s, 0, sizeof(*s));
    s->c = open_cache(r, 0, L1_ENTRIES, &o);
    s->raw = raw_connect(r, 0);
    s->keys = xcalloc(SET_KEYS, sizeof(*s->keys));
    s->rkeys = xcalloc(SET_KEYS, sizeof(*s->rkeys));
    for (unsigned k = 0; k < SET_KEYS; k++) {
        snprintf(s->keys[k], KEY_CAP, "set:%s:%04u", size_name(plen), k);
        redis_key(s->rkeys[k], RKEY_CAP, &o, s->keys[k]);
    }
    s->payload = make_payload(plen);
    s->plen = plen;
    tc__envelope e = {0,    tc__add_sat(tc__wall_ms(), TTL_MS),
                      0,    (const unsigned char *)s->payload,
                      plen, 0};
    if (tc__env_encode(&e, &s->env, &s->elen) != TC_OK)
        die("set: cannot encode an envelope");
}

static void set_teardown(set_case *s)
{
    tc__free(s->env);
    free(s->payload);
    free(s->rkeys);
    free(s->keys);
    redisFree(s->raw);
    tc_close(s->c);
}

static void set_case_run(const th_redis *r, const bench_cfg *cfg, size_t plen,
                         uint64_t *lat_tc, uint64_t *lat_raw)
{
    set_case s;
    char metric[48], floor_is[80];
    progress("set: tcp %s, %zu round trips per side", size_name(plen),
             cfg->io_ops);
    set_setup(&s, r, plen);
    size_t n = measure_pair(cfg, tc_set_op, raw_set_op, &s, lat_tc, lat_raw);
    snprintf(metric, sizeof(metric), "set_tcp_%s_ops_s", size_name(plen));
    snprintf(floor_is, sizeof(floor_is),
             "raw hiredis SET PX of the %zu-byte envelope, tcp", s.elen);
    add_row("set", metric, U_OPS, ops_per_s(lat_tc, n), ops_per_s(lat_raw, n),
            floor_is);
    set_teardown(&s);
}

void bench_set(const th_redis *r, const bench_cfg *cfg)
{
    uint64_t *lat_tc = xcalloc(cfg->io_ops, sizeof(uint64_t));
    uint64_t *lat_raw = xcalloc(cfg->io_ops, sizeof(uint64_t));
    for (size_t s = 0; s < NSIZES; s++)
        set_case_run(r, cfg, value_sizes[s], lat_tc, lat_raw);
    free(lat_tc);
    free(lat_raw);
}
