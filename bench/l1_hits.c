/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * l1: tc_get + tc_value_release on a warm L1 (Zipf 0.99 over 10,000
 * keys, every key in the L1), on 1 .. --threads threads, against two
 * floors over the same keys and sequence: a bare uthash lookup (no lock)
 * and a single global mutex + uthash + LRU move-to-front, each on the
 * same thread counts. Trials run every series back to back, so drift on
 * a shared machine hits them all; the medians are reported.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The floors use uthash's defaults (malloc, exit on OOM): fine here. */
#include <uthash.h>

#include "bench.h"

#define NKEYS 10000 /* the L1 key space */
#define ZIPF_S 0.99
#define L1_VALUE_LEN 64
#define L1_ENTRIES 100000 /* the default L1 bound, far above NKEYS */
#define MAX_THREADS 16
#define MAX_TRIALS 31

/* A floor entry: the least an L1 entry is (its own copy of the key, a
   hash handle, LRU links; the length stands in for the value). */
typedef struct fnode {
    UT_hash_handle hh;
    struct fnode *prev, *next;
    size_t len;
    char key[KEY_CAP];
} fnode;

typedef struct l1_world {
    char (*keys)[KEY_CAP];
    uint32_t *seq;
    size_t nseq;
    fnode *table;       /* uthash head, shared by both floors */
    fnode *head, *tail; /* LRU list, most recent first */
    pthread_mutex_t mu; /* the locked floor's one global lock */
    tc_cache *c;        /* every key in its L1 */
} l1_world;

enum { BARE, MUTEX_LRU, TC_GET };

typedef struct l1_job {
    l1_world *w;
    int kind;
    size_t start; /* where in the sequence this thread begins */
    pthread_barrier_t *go;
    uint64_t sink, misses;
    uint64_t t_start, t_end; /* this thread's own clock readings */
} l1_job;

static void lru_unlink(l1_world *w, fnode *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        w->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        w->tail = e->prev;
}

static void lru_push_front(l1_world *w, fnode *e)
{
    e->prev = NULL;
    e->next = w->head;
    if (w->head)
        w->head->prev = e;
    w->head = e;
    if (!w->tail)
        w->tail = e;
}

/* The locked floor's get: what a one-lock LRU cache does on a hit. */
static size_t lru_get(l1_world *w, const char *key)
{
    fnode *e;
    size_t len = 0;
    pthread_mutex_lock(&w->mu);
    HASH_FIND_STR(w->table, key, e);
    if (e) {
        if (w->head != e) {
            lru_unlink(w, e);
            lru_push_front(w, e);
        }
        len = e->len;
    }
    pthread_mutex_unlock(&w->mu);
    return len;
}

static void loop_bare(l1_job *j, size_t from, size_t to)
{
    l1_world *w = j->w;
    for (size_t i = from; i < to; i++) {
        fnode *e;
        HASH_FIND_STR(w->table, w->keys[w->seq[i]], e);
        if (e)
            j->sink += e->len;
        else
            j->misses++;
    }
}

static void loop_mutex_lru(l1_job *j, size_t from, size_t to)
{
    l1_world *w = j->w;
    for (size_t i = from; i < to; i++) {
        size_t len = lru_get(w, w->keys[w->seq[i]]);
        j->sink += len;
        j->misses += len == 0;
    }
}

static void loop_tc_get(l1_job *j, size_t from, size_t to)
{
    l1_world *w = j->w;
    for (size_t i = from; i < to; i++) {
        tc_value *v;
        if (tc_get(w->c, w->keys[w->seq[i]], &v) != TC_OK) {
            j->misses++;
            continue;
        }
        j->sink += tc_value_len(v);
        tc_value_release(v);
    }
}

static void l1_range(l1_job *j, size_t from, size_t to)
{
    if (j->kind == BARE)
        loop_bare(j, from, to);
    else if (j->kind == MUTEX_LRU)
        loop_mutex_lru(j, from, to);
    else
        loop_tc_get(j, from, to);
}

static void *l1_worker(void *arg)
{
    l1_job *j = arg;
    pthread_barrier_wait(j->go);
    j->t_start = now_ns();
    /* Each thread walks the whole sequence from its own start, so two
       threads do not hit the same keys in lockstep. */
    l1_range(j, j->start, j->w->nseq);
    l1_range(j, 0, j->start);
    j->t_end = now_ns();
    return NULL;
}

/* Runs `kind` on nthreads threads, each over the whole sequence, and
   returns the total ops/s from the first start to the last finish. The
   workers read the clock themselves: the main thread may well be
   descheduled between the barrier and its own reading. */
static double l1_measure(l1_world *w, int kind, int nthreads)
{
    pthread_t th[MAX_THREADS];
    l1_job jobs[MAX_THREADS];
    pthread_barrier_t go;
    uint64_t misses = 0;
    pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = (l1_job){
            w, kind, w->nseq / (size_t)nthreads * (size_t)t, &go, 0, 0, 0, 0};
        if (pthread_create(&th[t], NULL, l1_worker, &jobs[t]) != 0)
            die("pthread_create failed");
    }
    pthread_barrier_wait(&go);
    uint64_t first = UINT64_MAX, last = 0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
        misses += jobs[t].misses;
        first = jobs[t].t_start < first ? jobs[t].t_start : first;
        last = jobs[t].t_end > last ? jobs[t].t_end : last;
    }
    uint64_t dt = last - first;
    pthread_barrier_destroy(&go);
    if (misses)
        die("l1: %llu lookups missed; every one must hit",
            (unsigned long long)misses);
    return (double)nthreads * (double)w->nseq * 1e9 / (double)dt;
}

static void l1_fill_floor(l1_world *w)
{
    pthread_mutex_init(&w->mu, NULL);
    for (uint32_t k = 0; k < NKEYS; k++) {
        fnode *e = xcalloc(1, sizeof(*e));
        memcpy(e->key, w->keys[k], KEY_CAP);
        e->len = L1_VALUE_LEN;
        HASH_ADD_STR(w->table, key, e);
        lru_push_front(w, e);
    }
}

static uint64_t l1_entries(tc_cache *c)
{
    tc_stats_info st;
    tc_stats(c, &st);
    return st.l1_entries;
}

/* Reads every key once: the misses fill the L1 from Redis. */
static void l1_read_all(l1_world *w)
{
    for (uint32_t k = 0; k < NKEYS; k++) {
        tc_value *v;
        int rc = tc_get(w->c, w->keys[k], &v);
        if (rc != TC_OK)
            die("l1 fill: tc_get %s: %s", w->keys[k], tc_strerror(rc));
        tc_value_release(v);
    }
}

/* Every key goes to Redis through tc_set. The L1 copies tc_set makes do
   not stay: with client tracking on, Redis reports our own SETs back as
   invalidations, which the listener applies a moment later. So the L1 is
   filled by reads, once those reports have settled, until it holds every
   key (else the "hits" would not all be hits). */
static void l1_fill_cache(l1_world *w, const th_redis *r)
{
    tc_options o;
    char *val = make_payload(L1_VALUE_LEN);
    w->c = open_cache(r, 0, L1_ENTRIES, &o);
    for (uint32_t k = 0; k < NKEYS; k++) {
        int rc = tc_set(w->c, w->keys[k], val, L1_VALUE_LEN, TTL_MS);
        if (rc != TC_OK)
            die("l1 fill: tc_set: %s", tc_strerror(rc));
    }
    free(val);
    progress("l1: after tc_set the L1 holds %llu of %d keys",
             (unsigned long long)l1_entries(w->c), NKEYS);
    for (int round = 1; l1_entries(w->c) < NKEYS; round++) {
        if (round > 50)
            die("l1 fill: the L1 holds %llu of %d keys after 50 rounds",
                (unsigned long long)l1_entries(w->c), NKEYS);
        usleep(100 * 1000);
        l1_read_all(w);
        progress("l1: read round %d: the L1 holds %llu keys", round,
                 (unsigned long long)l1_entries(w->c));
    }
}

static void l1_setup(l1_world *w, const th_redis *r, const bench_cfg *cfg)
{
    memset(w, 0, sizeof(*w));
    w->keys = xcalloc(NKEYS, sizeof(*w->keys));
    for (uint32_t k = 0; k < NKEYS; k++)
        snprintf(w->keys[k], KEY_CAP, "user:%05u:profile", (unsigned)k);
    w->nseq = cfg->l1_ops;
    w->seq = zipf_sequence(w->nseq, NKEYS, ZIPF_S, 42);
    l1_fill_floor(w);
    progress("l1: filling %d keys through tc_set", NKEYS);
    l1_fill_cache(w, r);
}

static void l1_teardown(l1_world *w)
{
    fnode *e, *tmp;
    HASH_ITER(hh, w->table, e, tmp)
    {
        HASH_DEL(w->table, e);
        free(e);
    }
    pthread_mutex_destroy(&w->mu);
    tc_close(w->c);
    free(w->seq);
    free(w->keys);
}

/* The series: each kind on 1 .. max_threads threads, run once per trial
   in this order. Series s is kind s / T on s % T + 1 threads. */
static const char *const kind_names[] = {"bare", "mutex+LRU", "tc_get"};
#define NKINDS 3

typedef struct l1_results {
    int nthreads; /* T */
    int ntrials;
    double (*ops)[MAX_TRIALS]; /* [series][trial] */
    double *med;               /* [series] */
} l1_results;

static double med_of(const l1_results *res, int kind, int threads)
{
    return res->med[kind * res->nthreads + threads - 1];
}

/* Medians, the CSV for the plot, and the spread under the table. */
static void l1_summarize(l1_results *res)
{
    char note[512];
    int nseries = NKINDS * res->nthreads, n = res->ntrials;
    size_t len = (size_t)snprintf(note, sizeof(note),
                                  "l1: medians of %d trials; min-max M/s:", n);
    FILE *csv = csv_open("l1", "series,threads,median_ops_s,min_ops_s,"
                               "max_ops_s");
    for (int s = 0; s < nseries; s++) {
        const char *name = kind_names[s / res->nthreads];
        int threads = s % res->nthreads + 1;
        res->med[s] = median(res->ops[s], n);
        fprintf(csv, "%s,%d,%.0f,%.0f,%.0f\n", name, threads, res->med[s],
                res->ops[s][0], res->ops[s][n - 1]);
        if (len < sizeof(note))
            len += (size_t)snprintf(note + len, sizeof(note) - len,
                                    "%s %s %dT %.1f-%.1f", s ? "," : "", name,
                                    threads, res->ops[s][0] / 1e6,
                                    res->ops[s][n - 1] / 1e6);
    }
    csv_close(csv, "l1");
    add_note("%s", note);
}

static void l1_report(const l1_results *res)
{
    char metric[48], floor_is[80];
    const char *bare = "bare uthash HASH_FIND_STR, 1 thread, no lock";
    double bare1 = med_of(res, BARE, 1), tc1 = med_of(res, TC_GET, 1);
    add_row("l1", "get_1t_ops_s_vs_bare", U_OPS, tc1, bare1, bare);
    add_row("l1", "get_1t_ops_s_vs_mutex_lru", U_OPS, tc1,
            med_of(res, MUTEX_LRU, 1),
            "global mutex + uthash + LRU move-to-front, 1T");
    for (int t = 2; t <= res->nthreads; t++) {
        double tct = med_of(res, TC_GET, t);
        snprintf(metric, sizeof(metric), "get_%dt_ops_s_vs_bare", t);
        add_row("l1", metric, U_OPS, tct, bare1, bare);
        snprintf(metric, sizeof(metric), "get_%dt_scaling_vs_1t", t);
        snprintf(floor_is, sizeof(floor_is),
                 "tc_get on 1 thread (%d.00 = linear)", t);
        add_row("l1", metric, U_OPS, tct, tc1, floor_is);
        /* What t threads of read-only lookups get on this machine: the
           scaling tc_get could reach, were nothing shared written. */
        snprintf(metric, sizeof(metric), "bare_%dt_scaling_vs_1t", t);
        add_row("l1", metric, U_OPS, med_of(res, BARE, t), bare1,
                "bare lookup on 1 thread (what the machine allows)");
        snprintf(metric, sizeof(metric), "mutex_lru_%dt_scaling_vs_1t", t);
        add_row("l1", metric, U_OPS, med_of(res, MUTEX_LRU, t),
                med_of(res, MUTEX_LRU, 1),
                "mutex+LRU on 1 thread (one lock for all)");
    }
}

/* One trial: every series once, back to back, so drift hits them all. */
static void l1_trial(l1_world *w, l1_results *res, int t)
{
    char line[400];
    int nseries = NKINDS * res->nthreads;
    size_t len = (size_t)snprintf(line, sizeof(line), "l1: trial %d/%d%s:", t,
                                  res->ntrials, t ? "" : " (warm-up)");
    for (int s = 0; s < nseries; s++) {
        double ops = l1_measure(w, s / res->nthreads, s % res->nthreads + 1);
        if (t > 0) /* trial 0 warms caches and predictors: dropped */
            res->ops[s][t - 1] = ops;
        if (len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len, " %.1f",
                                    ops / 1e6);
    }
    progress("%s M/s", line);
}

void bench_l1(const th_redis *r, const bench_cfg *cfg)
{
    l1_world w;
    l1_results res;
    tc_stats_info before, after;
    res.nthreads =
        cfg->max_threads < MAX_THREADS ? cfg->max_threads : MAX_THREADS;
    res.ntrials = cfg->l1_trials < MAX_TRIALS ? cfg->l1_trials : MAX_TRIALS;
    res.ops = xcalloc((size_t)NKINDS * (size_t)res.nthreads, sizeof(*res.ops));
    res.med = xcalloc((size_t)NKINDS * (size_t)res.nthreads, sizeof(double));
    l1_setup(&w, r, cfg);
    tc_stats(w.c, &before);
    progress("l1: %zu lookups per thread; M/s of bare, mutex+LRU, tc_get "
             "on 1..%d threads",
             w.nseq, res.nthreads);
    for (int t = 0; t <= res.ntrials; t++)
        l1_trial(&w, &res, t);
    tc_stats(w.c, &after);
    if (after.l1_misses != before.l1_misses || after.l2_hits != before.l2_hits)
        die("l1: the cache saw misses during the hit benchmark");
    l1_summarize(&res);
    l1_report(&res);
    l1_teardown(&w);
    free(res.ops);
    free(res.med);
}
