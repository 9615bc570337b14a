/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * cluster: tiercache on Redis Cluster and Sentinel. Each figure is taken
 * on a private cluster of 3 masters with a replica each
 * (tests/harness.h), beside the same on the bench's single
 * redis-server, and beside the floor: raw hiredis sent straight to the
 * node that owns the key's slot.
 *
 *   get        tc_get with no L1 (every get a GET on Redis) on the
 *              cluster and on the single node, and raw GETs to the key's
 *              master and to the single node: four series taking turns
 *              in blocks (measure_sides), over one key per master;
 *   set        tc_set (L1 on, as deployed) on both, and raw SET PX of
 *              the same envelope to the key's master and to the single
 *              node, 1000 keys: on 1 thread (blocks taking turns) and on
 *              SET_THREADS threads (phases of PHASE_MS taking turns, the
 *              median phase of each series);
 *   coherence  the coherence scenario's lag (coherence_lag.c), tracking
 *              mode, the cluster and the single node as two targets of
 *              one writer and one reader process; the floor is a raw
 *              PUBLISH -> message on one cluster node;
 *   failover   SIGKILL a master while a loop writes a key with tc_set on
 *              one handle and reads it on another with no L1: seconds to
 *              the first read of the value just written with tc_health
 *              saying connected, beside Redis's own failover time. For
 *              Sentinel (a fresh group each round: 1 master, 1 replica,
 *              3 sentinels, down-after-milliseconds 1000) that is the
 *              first +switch-master a sentinel publishes; for Cluster
 *              (cluster-node-timeout 1000, another master each round,
 *              the key on its slots) the first ROLE on its replica that
 *              says master. The caches keep the library's defaults
 *              (timeouts, breaker) but for the log level.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "internal.h" /* tc__env_encode: the raw SET sends real envelopes */

#define MASTERS 3
#define REPLICAS 1
#define SLOTS 16384
#define VLEN 64            /* value bytes, get and set */
#define SET_KEYS 1000      /* the set paths cycle over these */
#define SET_THREADS 4      /* the threaded set case */
#define PHASE_MS 60        /* ... runs each series this long at a time */
#define MAX_PHASES 21      /* ... this many times (full run) */
#define L1_ENTRIES 100000  /* the default L1 bound */
#define LOOP_PAUSE_US 1000 /* between two write+read of the failover loop */
#define ROLE_POLL_US 2000  /* ROLE on the replica, while it is not master */
#define FAILOVER_MS 30000  /* a failover not over by then has failed */
#define WAIT_OK_MS 20000   /* the cluster serving every slot again */

typedef struct world {
    const th_redis *r; /* the single node */
    th_cluster *c;
    th_redis **owners; /* each slot's master, at the start */
    FILE *csv;
} world;

/* ---- caches and connections ---- */

/* Like open_cache: strict, a roomy command timeout. */
static tc_cache *open_cluster(world *w, uint64_t l1_entries, tc_options *o)
{
    tc_cache *c;
    th_cluster_options(w->c, o);
    o->strict = 1;
    o->command_timeout_ms = 2000;
    o->l1_max_entries = l1_entries;
    int rc = tc_open(&c, o);
    if (rc != TC_OK)
        die("cluster: tc_open: %s", tc_strerror(rc));
    return c;
}

static int master_index(const world *w, const char *rkey)
{
    th_redis *owner = w->owners[th_cluster_slot(rkey, strlen(rkey))];
    for (int m = 0; m < MASTERS; m++)
        if (owner == th_cluster_node(w->c, m))
            return m;
    die("cluster: %s: its slot has no master of the first %d", rkey, MASTERS);
}

/* Raw connections to each master, indexed as th_cluster_node. */
static void connect_masters(world *w, redisContext **out)
{
    for (int m = 0; m < MASTERS; m++)
        out[m] = raw_connect(th_cluster_node(w->c, m), 0);
}

static void free_all(redisContext **ctx, int n)
{
    for (int i = 0; i < n; i++)
        redisFree(ctx[i]);
}

static void csv_pcts(FILE *f, const char *part, const char *series,
                     const uint64_t *sorted, size_t n)
{
    static const double pcts[] = {50, 90, 99, 99.9};
    static const char *const names[] = {"p50", "p90", "p99", "p999"};
    for (int i = 0; i < 4; i++)
        fprintf(f, "%s,%s,,%s_us,%.3f\n", part, series, names[i],
                pct_us(sorted, n, pcts[i]));
    fprintf(f, "%s,%s,,n,%zu\n", part, series, n);
}

/* ---- get: tc_get (no L1) and raw GET, cluster and single node ---- */

enum { TC_CLUSTER, TC_SINGLE, RAW_OWNER, RAW_SINGLE, NSIDES };
static const char *const side_names[NSIDES] = {
    "cluster/tc", "single/tc", "cluster/raw_owner", "single/raw"};

typedef struct get_world {
    tc_cache *tc[2]; /* TC_CLUSTER, TC_SINGLE; no L1 */
    redisContext *owner[MASTERS], *single;
    char key[MASTERS][KEY_CAP]; /* key k lives on master k */
    char rkey[2][MASTERS][RKEY_CAP];
} get_world;

static uint64_t get_tc(get_world *g, int side, size_t i)
{
    const char *key = g->key[i % MASTERS];
    tc_value *v;
    uint64_t t0 = now_ns();
    int rc = tc_get(g->tc[side], key, &v);
    size_t len = tc_value_len(v);
    tc_value_release(v);
    uint64_t dt = now_ns() - t0;
    if (rc != TC_OK || len != VLEN)
        die("cluster: tc_get %s: %s, %zu bytes", key, tc_strerror(rc), len);
    return dt;
}

static uint64_t op_get_tc_cluster(void *ctx, size_t i)
{
    return get_tc(ctx, TC_CLUSTER, i);
}

static uint64_t op_get_tc_single(void *ctx, size_t i)
{
    return get_tc(ctx, TC_SINGLE, i);
}

static uint64_t op_get_raw_owner(void *ctx, size_t i)
{
    get_world *g = ctx;
    return raw_get_ns(g->owner[i % MASTERS], g->rkey[TC_CLUSTER][i % MASTERS],
                      "cluster");
}

static uint64_t op_get_raw_single(void *ctx, size_t i)
{
    get_world *g = ctx;
    return raw_get_ns(g->single, g->rkey[TC_SINGLE][i % MASTERS], "cluster");
}

/* Key names until each master has one. */
static void pick_get_keys(world *w, get_world *g, const tc_options *oc)
{
    int have = 0;
    char key[KEY_CAP], rkey[RKEY_CAP];
    for (unsigned n = 0; have != (1 << MASTERS) - 1; n++) {
        snprintf(key, sizeof(key), "cl:%u", n);
        redis_key(rkey, sizeof(rkey), oc, key);
        int m = master_index(w, rkey);
        if (have & (1 << m))
            continue;
        have |= 1 << m;
        memcpy(g->key[m], key, KEY_CAP);
    }
}

static void bench_get(world *w, const bench_cfg *cfg)
{
    get_world g = {0};
    tc_options o[2];
    uint64_t *lat[NSIDES];
    char *val = make_payload(VLEN);
    progress("cluster: get %s, up to %zu per series, 4 series",
             size_name(VLEN), cfg->io_ops);
    g.tc[TC_CLUSTER] = open_cluster(w, 0, &o[TC_CLUSTER]);
    g.tc[TC_SINGLE] = open_cache(w->r, 0, 0, &o[TC_SINGLE]);
    connect_masters(w, g.owner);
    g.single = raw_connect(w->r, 0);
    pick_get_keys(w, &g, &o[TC_CLUSTER]);
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < MASTERS; k++) {
            redis_key(g.rkey[s][k], RKEY_CAP, &o[s], g.key[k]);
            int rc = tc_set(g.tc[s], g.key[k], val, VLEN, TTL_MS);
            if (rc != TC_OK)
                die("cluster: tc_set: %s", tc_strerror(rc));
        }
    for (int s = 0; s < NSIDES; s++)
        lat[s] = xcalloc(cfg->io_ops, sizeof(uint64_t));
    static const timed_op ops[NSIDES] = {op_get_tc_cluster, op_get_tc_single,
                                         op_get_raw_owner, op_get_raw_single};
    size_t n = measure_sides(cfg, ops, NSIDES, &g, lat, cfg->io_ops);
    for (int s = 0; s < NSIDES; s++) {
        qsort(lat[s], n, sizeof(uint64_t), cmp_u64);
        csv_pcts(w->csv, "get_64B", side_names[s], lat[s], n);
    }
    static const unsigned pcts[] = {50, 99};
    char metric[48];
    for (int i = 0; i < 2; i++) {
        double tc = pct_us(lat[TC_CLUSTER], n, pcts[i]);
        snprintf(metric, sizeof(metric), "get_%s_p%u_us", size_name(VLEN),
                 pcts[i]);
        add_row("cluster", metric, U_USEC, tc,
                pct_us(lat[RAW_OWNER], n, pcts[i]),
                "raw hiredis GET to the key's master");
        snprintf(metric, sizeof(metric), "get_%s_p%u_vs_single_us",
                 size_name(VLEN), pcts[i]);
        add_row("cluster", metric, U_USEC, tc,
                pct_us(lat[TC_SINGLE], n, pcts[i]),
                "tc_get on one redis-server (no L1), same run");
    }
    add_note("cluster: get: %zu per series; raw GET p50 %.1f us on the "
             "key's master, %.1f us on the single node (%.2fx)",
             n, pct_us(lat[RAW_OWNER], n, 50), pct_us(lat[RAW_SINGLE], n, 50),
             pct_us(lat[RAW_OWNER], n, 50) / pct_us(lat[RAW_SINGLE], n, 50));
    for (int s = 0; s < NSIDES; s++)
        free(lat[s]);
    free(val);
    free_all(g.owner, MASTERS);
    redisFree(g.single);
    tc_close(g.tc[TC_CLUSTER]);
    tc_close(g.tc[TC_SINGLE]);
}

/* ---- set: tc_set (L1 on) and raw SET, 1 and SET_THREADS threads ---- */

typedef struct set_world {
    tc_cache *tc[2]; /* TC_CLUSTER, TC_SINGLE; with their L1 */
    char (*keys)[KEY_CAP];
    char (*rkeys[2])[RKEY_CAP];
    uint8_t *master; /* each key's master */
    char *payload;
    char *env; /* the envelope tc_set builds around payload */
    size_t elen;
} set_world;

/* One thread's connections and counts. */
typedef struct setter {
    set_world *s;
    int side, t;
    redisContext *owner[MASTERS], *single;
    uint64_t phase_ns, ops, t_start, t_end;
    pthread_barrier_t *go;
} setter;

static void set_once(setter *st, int side, size_t k)
{
    set_world *s = st->s;
    redisReply *rep;
    int rc;
    switch (side) {
    case TC_CLUSTER:
    case TC_SINGLE:
        rc = tc_set(s->tc[side], s->keys[k], s->payload, VLEN, TTL_MS);
        if (rc != TC_OK)
            die("cluster: tc_set: %s", tc_strerror(rc));
        return;
    default:
        /* The same command tiercache sends, envelope and all, to the
           same keys, as set does. */
        rep = redisCommand(
            side == RAW_OWNER ? st->owner[s->master[k]] : st->single,
            "SET %s %b PX %u", s->rkeys[side == RAW_OWNER ? 0 : 1][k], s->env,
            s->elen, TTL_MS);
        rc = rep && rep->type == REDIS_REPLY_STATUS;
        if (rep)
            freeReplyObject(rep);
        if (!rc)
            die("cluster: raw SET failed");
    }
}

static uint64_t timed_set(void *ctx, int side, size_t i)
{
    uint64_t t0 = now_ns();
    set_once(ctx, side, i % SET_KEYS);
    return now_ns() - t0;
}

static uint64_t op_set_tc_cluster(void *ctx, size_t i)
{
    return timed_set(ctx, TC_CLUSTER, i);
}

static uint64_t op_set_tc_single(void *ctx, size_t i)
{
    return timed_set(ctx, TC_SINGLE, i);
}

static uint64_t op_set_raw_owner(void *ctx, size_t i)
{
    return timed_set(ctx, RAW_OWNER, i);
}

static uint64_t op_set_raw_single(void *ctx, size_t i)
{
    return timed_set(ctx, RAW_SINGLE, i);
}

/* A thread of a phase: its own quarter of the keys, for phase_ns by its
   own clock. */
static void *set_worker(void *arg)
{
    setter *st = arg;
    size_t per = SET_KEYS / SET_THREADS, first = (size_t)st->t * per;
    pthread_barrier_wait(st->go);
    st->t_start = now_ns();
    st->ops = 0;
    do {
        set_once(st, st->side, first + st->ops % per);
        st->ops++;
        st->t_end = now_ns();
    } while (st->t_end - st->t_start < st->phase_ns);
    return NULL;
}

/* One phase of one series on SET_THREADS threads: total ops/s from the
   first start to the last finish. */
static double set_phase(setter *th, int side)
{
    pthread_t id[SET_THREADS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, SET_THREADS + 1);
    for (int t = 0; t < SET_THREADS; t++) {
        th[t].side = side;
        th[t].go = &go;
        if (pthread_create(&id[t], NULL, set_worker, &th[t]) != 0)
            die("pthread_create failed");
    }
    pthread_barrier_wait(&go);
    uint64_t first = UINT64_MAX, last = 0, ops = 0;
    for (int t = 0; t < SET_THREADS; t++) {
        pthread_join(id[t], NULL);
        ops += th[t].ops;
        first = th[t].t_start < first ? th[t].t_start : first;
        last = th[t].t_end > last ? th[t].t_end : last;
    }
    pthread_barrier_destroy(&go);
    return (double)ops * 1e9 / (double)(last - first);
}

static void set_setup(world *w, set_world *s, setter *th)
{
    tc_options o[2];
    s->tc[TC_CLUSTER] = open_cluster(w, L1_ENTRIES, &o[TC_CLUSTER]);
    s->tc[TC_SINGLE] = open_cache(w->r, 0, L1_ENTRIES, &o[TC_SINGLE]);
    s->keys = xcalloc(SET_KEYS, sizeof(*s->keys));
    s->master = xcalloc(SET_KEYS, 1);
    for (int i = 0; i < 2; i++)
        s->rkeys[i] = xcalloc(SET_KEYS, sizeof(*s->rkeys[i]));
    for (unsigned k = 0; k < SET_KEYS; k++) {
        snprintf(s->keys[k], KEY_CAP, "clset:%04u", k);
        for (int i = 0; i < 2; i++)
            redis_key(s->rkeys[i][k], RKEY_CAP, &o[i], s->keys[k]);
        s->master[k] = (uint8_t)master_index(w, s->rkeys[0][k]);
    }
    s->payload = make_payload(VLEN);
    tc__envelope e = {0,    tc__add_sat(tc__wall_ms(), TTL_MS),
                      0,    (const unsigned char *)s->payload,
                      VLEN, 0};
    if (tc__env_encode(&e, &s->env, &s->elen) != TC_OK)
        die("cluster: cannot encode an envelope");
    for (int t = 0; t < SET_THREADS; t++) {
        th[t] = (setter){s, 0, t, {NULL}, NULL, 0, 0, 0, 0, NULL};
        connect_masters(w, th[t].owner);
        th[t].single = raw_connect(w->r, 0);
    }
}

static void set_teardown(set_world *s, setter *th)
{
    for (int t = 0; t < SET_THREADS; t++) {
        free_all(th[t].owner, MASTERS);
        redisFree(th[t].single);
    }
    tc__free(s->env);
    free(s->payload);
    for (int i = 0; i < 2; i++)
        free(s->rkeys[i]);
    free(s->master);
    free(s->keys);
    tc_close(s->tc[TC_CLUSTER]);
    tc_close(s->tc[TC_SINGLE]);
}

static void set_rows(world *w, const char *threads, const double *ops)
{
    char metric[48];
    for (int s = 0; s < NSIDES; s++)
        fprintf(w->csv, "set_%s,%s,,ops_s,%.0f\n", threads, side_names[s],
                ops[s]);
    snprintf(metric, sizeof(metric), "set_%s_ops_s", threads);
    add_row("cluster", metric, U_OPS, ops[TC_CLUSTER], ops[RAW_OWNER],
            "raw hiredis SET PX of the envelope to the key's master");
    snprintf(metric, sizeof(metric), "set_%s_vs_single_ops_s", threads);
    add_row("cluster", metric, U_OPS, ops[TC_CLUSTER], ops[TC_SINGLE],
            "tc_set on one redis-server (L1 on), same run");
    add_note("cluster: set %s: raw SET %.1f k/s to the keys' masters, %.1f "
             "k/s to the single node (%.2fx)",
             threads, ops[RAW_OWNER] / 1e3, ops[RAW_SINGLE] / 1e3,
             ops[RAW_OWNER] / ops[RAW_SINGLE]);
}

static void bench_set_cluster(world *w, const bench_cfg *cfg)
{
    set_world s = {0};
    setter th[SET_THREADS];
    uint64_t *lat[NSIDES];
    double ops[NSIDES];
    /* Short phases, many of them: a burst of noise on a shared machine
       outlasts a phase and lands on its neighbours, of every series. */
    int rounds = cfg->smoke ? 1 : cfg->quick ? 7 : MAX_PHASES;
    uint64_t phase_ns = (cfg->smoke ? 50 : PHASE_MS) * 1000000ull;
    set_setup(w, &s, th);

    progress("cluster: set %s, 1 thread, up to %zu per series, 4 series",
             size_name(VLEN), cfg->io_ops);
    for (int i = 0; i < NSIDES; i++)
        lat[i] = xcalloc(cfg->io_ops, sizeof(uint64_t));
    static const timed_op one[NSIDES] = {op_set_tc_cluster, op_set_tc_single,
                                         op_set_raw_owner, op_set_raw_single};
    size_t n = measure_sides(cfg, one, NSIDES, &th[0], lat, cfg->io_ops);
    for (int i = 0; i < NSIDES; i++) {
        ops[i] = ops_per_s(lat[i], n);
        free(lat[i]);
    }
    set_rows(w, "1t", ops);

    progress("cluster: set %s, %d threads, %d phases of %llu ms per series",
             size_name(VLEN), SET_THREADS, rounds,
             (unsigned long long)(phase_ns / 1000000));
    double per[NSIDES][MAX_PHASES];
    for (int t = 0; t < SET_THREADS; t++)
        th[t].phase_ns = phase_ns;
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < NSIDES; k++) { /* each series first in turn */
            int side = (r + k) % NSIDES;
            per[side][r] = set_phase(th, side);
            fprintf(w->csv, "set_%dt_phase,%s,%d,ops_s,%.0f\n", SET_THREADS,
                    side_names[side], r + 1, per[side][r]);
        }
    for (int i = 0; i < NSIDES; i++)
        ops[i] = median(per[i], rounds);
    char threads[8];
    snprintf(threads, sizeof(threads), "%dt", SET_THREADS);
    set_rows(w, threads, ops);
    set_teardown(&s, th);
}

/* ---- coherence: the cluster and the single node as two targets ---- */

static void cluster_options(const void *ud, tc_options *o)
{
    th_cluster_options(((const world *)ud)->c, o);
}

/* Publisher and subscriber on master 0: the path a tracking
   invalidation takes, from the key's master to the listener's link to
   it. */
static redisContext *cluster_raw(const void *ud, int pub)
{
    (void)pub;
    return raw_connect(th_cluster_node(((const world *)ud)->c, 0), 0);
}

static void coh_rows(world *w, coh_series *sh)
{
    static const double pcts[] = {50, 99};
    static const char *const names[] = {"p50", "p99"};
    char metric[48];
    for (int t = 0; t < 2; t++) {
        qsort(sh[t].tc, sh[t].n_tc, sizeof(uint64_t), cmp_u64);
        qsort(sh[t].raw, sh[t].n_raw, sizeof(uint64_t), cmp_u64);
    }
    csv_pcts(w->csv, "coherence_tracking", "cluster/tc", sh[0].tc, sh[0].n_tc);
    csv_pcts(w->csv, "coherence_tracking", "cluster/raw_PUBLISH", sh[0].raw,
             sh[0].n_raw);
    csv_pcts(w->csv, "coherence_tracking", "single/tc", sh[1].tc, sh[1].n_tc);
    csv_pcts(w->csv, "coherence_tracking", "single/raw_PUBLISH", sh[1].raw,
             sh[1].n_raw);
    for (int i = 0; i < 2; i++) {
        double lag = pct_us(sh[0].tc, sh[0].n_tc, pcts[i]);
        snprintf(metric, sizeof(metric), "tracking_lag_%s_us", names[i]);
        add_row("cluster", metric, U_USEC, lag,
                pct_us(sh[0].raw, sh[0].n_raw, pcts[i]),
                "raw PUBLISH -> receive on a cluster node");
        snprintf(metric, sizeof(metric), "tracking_lag_%s_vs_single_us",
                 names[i]);
        add_row("cluster", metric, U_USEC, lag,
                pct_us(sh[1].tc, sh[1].n_tc, pcts[i]),
                "the same lag on one redis-server, same run");
    }
    add_note("cluster: coherence: %zu changes timed on the cluster (%zu "
             "lost, %zu skipped), %zu on the single node; raw PUBLISH p99 "
             "%.1f us on the cluster, %.1f us on the single node",
             sh[0].n_tc, sh[0].lost, sh[0].skipped, sh[1].n_tc,
             pct_us(sh[0].raw, sh[0].n_raw, 99),
             pct_us(sh[1].raw, sh[1].n_raw, 99));
}

static void bench_coh_cluster(world *w, const bench_cfg *cfg)
{
    size_t want = cfg->smoke ? 60 : cfg->quick ? 500 : 2000;
    uint64_t budget = (cfg->smoke ? 5 : cfg->quick ? 8 : 15) * 1000000000ull;
    coh_target t[2] = {{"cluster", cluster_options, cluster_raw, w}};
    coh_target_single(&t[1], w->r);
    progress("cluster: coherence, tracking, %zu changes and as many "
             "PUBLISHes on each",
             want);
    coh_series *sh =
        coh_measure(t, 2, TC_COHERENCE_AUTO, "cluster", want, budget);
    if (sh[0].n_tc == 0 || sh[1].n_tc == 0 || !sh[0].n_raw || !sh[1].n_raw)
        die("cluster: coherence: no sample");
    if (sh[0].n_tc < want || sh[1].n_tc < want)
        progress("  over its time budget: stopped at %zu", sh[0].n_tc);
    coh_rows(w, sh);
    coh_free(sh, 2, want);
}

/* ---- failover ---- */

/* The loop: tc_set a new value on one handle, read it on another with
   no L1. ok_ns: the end of the first round that began after the master
   was dead and read the value it wrote, with tc_health connected. */
typedef struct fo_loop {
    tc_cache *w, *rd;
    char key[KEY_CAP];
    /* when SIGKILL was sent; stored once the process is reaped, so that
       no round that counts can have reached the old master */
    _Atomic uint64_t kill_ns;
    _Atomic uint64_t ok_ns;
    _Atomic uint64_t before; /* rounds that worked before the kill */
    atomic_int stop;
    pthread_t id;
} fo_loop;

static void *fo_run(void *arg)
{
    fo_loop *l = arg;
    char val[24], got[24];
    for (uint64_t i = 1; !atomic_load(&l->stop); i++) {
        uint64_t kill = atomic_load(&l->kill_ns);
        size_t n = (size_t)snprintf(val, sizeof(val), "%llu",
                                    (unsigned long long)i),
               len = 0;
        tc_health_info h;
        tc_set(l->w, l->key, val, n, TTL_MS);
        int rc = tc_get_into(l->rd, l->key, got, sizeof(got), &len);
        tc_health(l->rd, &h);
        int ok =
            rc == TC_OK && len == n && !memcmp(got, val, n) && h.l2_connected;
        if (ok && !kill)
            atomic_fetch_add(&l->before, 1);
        if (ok && kill) {
            atomic_store(&l->ok_ns, now_ns());
            break;
        }
        usleep(LOOP_PAUSE_US);
    }
    return NULL;
}

/* Opens both handles on o (the writer as deployed, the reader without
   its L1) and starts the loop once it works. */
static void fo_start(fo_loop *l, tc_options *o, const char *key)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->key, sizeof(l->key), "%s", key);
    o->log_level = TC_LOG_OFF; /* the failover is expected */
    if (tc_open(&l->w, o) != TC_OK)
        die("cluster: failover: tc_open failed");
    o->l1_max_entries = 0;
    if (tc_open(&l->rd, o) != TC_OK)
        die("cluster: failover: tc_open failed");
    if (pthread_create(&l->id, NULL, fo_run, l) != 0)
        die("pthread_create failed");
    for (int i = 0; atomic_load(&l->before) < 20; i++) {
        if (i == 5000)
            die("cluster: failover: the loop never works before the kill");
        usleep(1000);
    }
}

/* The first success after the kill, or 0 past the deadline. */
static uint64_t fo_wait(fo_loop *l, uint64_t deadline)
{
    uint64_t ok;
    while (!(ok = atomic_load(&l->ok_ns)) && now_ns() < deadline)
        usleep(1000);
    atomic_store(&l->stop, 1);
    pthread_join(l->id, NULL);
    tc_close(l->w);
    tc_close(l->rd);
    return ok;
}

typedef struct fo_times {
    double cache[3], redis[3], added[3];
    int n;
} fo_times;

static void fo_record(world *w, fo_times *ft, const char *kind, uint64_t kill,
                      uint64_t redis, uint64_t cache, double extra,
                      const char *extra_name)
{
    int r = ft->n++;
    ft->redis[r] = (double)(redis - kill) / 1e9;
    ft->cache[r] = (double)(cache - kill) / 1e9;
    ft->added[r] = ft->cache[r] - ft->redis[r];
    fprintf(w->csv, "failover,%s,%d,redis_s,%.3f\n", kind, r + 1,
            ft->redis[r]);
    fprintf(w->csv, "failover,%s,%d,cache_s,%.3f\n", kind, r + 1,
            ft->cache[r]);
    fprintf(w->csv, "failover,%s,%d,added_s,%.3f\n", kind, r + 1,
            ft->added[r]);
    fprintf(w->csv, "failover,%s,%d,%s,%.3f\n", kind, r + 1, extra_name,
            extra);
    progress("  round %d: redis %.3f s, cache %.3f s (%+.3f s)", r + 1,
             ft->redis[r], ft->cache[r], ft->added[r]);
}

static void fo_rows(fo_times *ft, const char *kind, const char *floor_is)
{
    char metric[48], rounds[96] = "";
    double added[3];
    for (int r = 0; r < ft->n; r++) {
        size_t len = strlen(rounds);
        snprintf(rounds + len, sizeof(rounds) - len, "%s%+.3f", r ? ", " : "",
                 ft->added[r]);
        added[r] = ft->added[r];
    }
    double cache = median(ft->cache, ft->n), redis = median(ft->redis, ft->n);
    snprintf(metric, sizeof(metric), "failover_%s_s", kind);
    add_row("cluster", metric, U_SEC, cache, redis, floor_is);
    add_note("cluster: failover %s: cache %.3f s, redis %.3f s: the cache "
             "adds %+.3f s (median of %d round%s: %s s)",
             kind, cache, redis, median(added, ft->n), ft->n,
             ft->n > 1 ? "s" : "", rounds);
}

/* SUBSCRIBE +switch-master on every sentinel. */
static void watch_switches(th_sentinel *s, redisContext **subs)
{
    for (int i = 0; i < 3; i++) {
        subs[i] = raw_connect(th_sentinel_node(s, i), 0);
        redisReply *rep = redisCommand(subs[i], "SUBSCRIBE +switch-master");
        if (!rep || rep->type != REDIS_REPLY_ARRAY)
            die("cluster: SUBSCRIBE +switch-master failed");
        freeReplyObject(rep);
    }
}

/* The first +switch-master of `name` from any sentinel: its time, or 0
   past the deadline. */
static uint64_t first_switch(redisContext **subs, const char *name,
                             uint64_t deadline)
{
    struct pollfd pfd[3];
    for (int i = 0; i < 3; i++)
        pfd[i] = (struct pollfd){subs[i]->fd, POLLIN, 0};
    while (now_ns() < deadline) {
        if (poll(pfd, 3, 10) <= 0)
            continue;
        for (int i = 0; i < 3; i++) {
            redisReply *rep;
            if (!(pfd[i].revents & POLLIN))
                continue;
            if (redisGetReply(subs[i], (void **)&rep) != REDIS_OK)
                die("cluster: a sentinel's connection failed");
            uint64_t t = now_ns();
            int hit = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
                      rep->element[2]->type == REDIS_REPLY_STRING &&
                      !strncmp(rep->element[2]->str, name, strlen(name)) &&
                      rep->element[2]->str[strlen(name)] == ' ';
            freeReplyObject(rep);
            if (hit)
                return t;
        }
    }
    return 0;
}

static int sentinel_round(world *w, fo_times *ft)
{
    th_sentinel_opts so = {"tcbench", NULL, 3};
    th_sentinel *s = th_sentinel_start_opts(&so);
    redisContext *subs[3];
    tc_options o;
    fo_loop l;
    if (!s) {
        add_note("cluster: failover sentinel: FAILED: no sentinel group");
        return -1;
    }
    th_sentinel_options(s, &o);
    fo_start(&l, &o, "fo");
    watch_switches(s, subs);
    th_redis *m = th_sentinel_current_master(s);
    int old_port = m ? th_redis_port(m) : -1;
    if (!m)
        die("cluster: the sentinels name no master");
    uint64_t kill = now_ns(), deadline = kill + FAILOVER_MS * 1000000ull;
    th_redis_kill(m);
    atomic_store(&l.kill_ns, kill);
    uint64_t sw = first_switch(subs, th_sentinel_name(s), deadline);
    /* Every sentinel agreeing, and the new master saying so: later. */
    int port = th_sentinel_wait_switch(s, old_port, FAILOVER_MS);
    uint64_t agree = now_ns();
    uint64_t ok = fo_wait(&l, deadline);
    free_all(subs, 3);
    th_sentinel_stop(s);
    if (!sw || !ok || port < 0) {
        add_note("cluster: failover sentinel: FAILED: %s within %d s",
                 !sw   ? "no +switch-master"
                 : !ok ? "no L2 hit"
                       : "no switch",
                 FAILOVER_MS / 1000);
        return -1;
    }
    fo_record(w, ft, "sentinel", kill, sw, ok, (double)(agree - kill) / 1e9,
              "all_sentinels_agree_s");
    return 0;
}

/* A key of the namespace o names, on master m's slots. */
static void key_on(world *w, const tc_options *o, int m, char *key)
{
    char rkey[RKEY_CAP];
    for (unsigned n = 0;; n++) {
        snprintf(key, KEY_CAP, "fo:%u", n);
        redis_key(rkey, sizeof(rkey), o, key);
        if (master_index(w, rkey) == m)
            return;
    }
}

static int is_master(redisContext *ctx)
{
    redisReply *rep = redisCommand(ctx, "ROLE");
    int yes = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
              rep->element[0]->type == REDIS_REPLY_STRING &&
              !strcmp(rep->element[0]->str, "master");
    if (!rep)
        die("cluster: ROLE on the replica failed");
    freeReplyObject(rep);
    return yes;
}

/* Kills master m (m: 0 .. MASTERS-1, each once): its replica takes
   over. */
static int cluster_round(world *w, fo_times *ft, int m)
{
    tc_options o;
    fo_loop l;
    char key[KEY_CAP];
    if (th_cluster_wait_ok(w->c, WAIT_OK_MS) != 0) {
        add_note("cluster: failover cluster: FAILED: the cluster is not ok");
        return -1;
    }
    th_cluster_options(w->c, &o);
    key_on(w, &o, m, key);
    fo_start(&l, &o, key);
    th_redis *master = th_cluster_node(w->c, m);
    redisContext *replica =
        raw_connect(th_cluster_node(w->c, MASTERS + m * REPLICAS), 0);
    uint64_t kill = now_ns(), deadline = kill + FAILOVER_MS * 1000000ull;
    uint64_t role = 0;
    th_redis_kill(master);
    atomic_store(&l.kill_ns, kill);
    while (now_ns() < deadline && !role) {
        if (is_master(replica))
            role = now_ns();
        else
            usleep(ROLE_POLL_US);
    }
    uint64_t ok = fo_wait(&l, deadline);
    redisFree(replica);
    /* Every node serving every slot again: for the next round, and as
       another view of Redis's own time. */
    int served = th_cluster_wait_ok(w->c, WAIT_OK_MS);
    uint64_t all_ok = now_ns();
    if (!role || !ok || served != 0) {
        add_note("cluster: failover cluster: FAILED: %s within %d s",
                 !role ? "the replica never said master"
                 : !ok ? "no L2 hit"
                       : "the cluster never ok again",
                 FAILOVER_MS / 1000);
        return -1;
    }
    fo_record(w, ft, "cluster", kill, role, ok, (double)(all_ok - kill) / 1e9,
              "cluster_ok_s");
    return 0;
}

static int bench_failover(world *w, const bench_cfg *cfg)
{
    int rounds = cfg->quick ? 1 : 3; /* --smoke too */
    fo_times st = {0}, ct = {0};
    int sfail = 0, cfail = 0;
    /* A group of its own and its failover cost about 5 s: more than the
       rest of this scenario in a smoke run. */
    if (cfg->smoke) {
        const char *why = "the Sentinel failover in --smoke (its group and "
                          "the failover take about 5 s)";
        progress("cluster: SKIP: %s", why);
        add_note("cluster: SKIP: %s", why);
    }
    for (int r = 0; r < rounds && !sfail && !cfg->smoke; r++) {
        progress("cluster: failover, Sentinel, round %d of %d", r + 1, rounds);
        sfail = sentinel_round(w, &st) != 0;
    }
    if (!sfail && !cfg->smoke)
        fo_rows(&st, "sentinel", "first +switch-master from a sentinel");
    for (int r = 0; r < rounds && !cfail; r++) {
        progress("cluster: failover, Cluster, round %d of %d: master %d "
                 "killed",
                 r + 1, rounds, r);
        cfail = cluster_round(w, &ct, r) != 0;
    }
    if (!cfail)
        fo_rows(&ct, "cluster", "the replica says master (ROLE)");
    return sfail || cfail ? -1 : 0;
}

int bench_cluster(const th_redis *r, const bench_cfg *cfg)
{
    world w = {r, NULL, xcalloc(SLOTS, sizeof(th_redis *)), NULL};
    uint64_t t0 = now_ns();
    progress("cluster: starting %d masters with %d replica%s each", MASTERS,
             REPLICAS, REPLICAS > 1 ? "s" : "");
    w.c = th_cluster_start(MASTERS, REPLICAS);
    if (!w.c || th_cluster_owners(w.c, w.owners) != 0) {
        progress("cluster: FAILED: cannot start a cluster");
        add_note("cluster: FAILED: cannot start a cluster");
        th_cluster_stop(w.c);
        free(w.owners);
        return -1;
    }
    progress("  up in %.1f s", (double)(now_ns() - t0) / 1e9);
    w.csv = csv_open("cluster", "part,series,round,measure,value");
    bench_get(&w, cfg);
    bench_set_cluster(&w, cfg);
    bench_coh_cluster(&w, cfg);
    int rc = bench_failover(&w, cfg);
    csv_close(w.csv, "cluster");
    th_cluster_stop(w.c);
    free(w.owners);
    progress("cluster: done in %.1f s", (double)(now_ns() - t0) / 1e9);
    return rc;
}
