/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * l1: tc_get + tc_value_release, and tc_get_with (the value read in
 * place, no reference), on a warm L1 (Zipf 0.99 over 10,000 keys, every
 * key in the L1), on 1 .. --threads threads, against two
 * floors over the same keys and sequence: a bare uthash lookup (no lock)
 * and a single global mutex + uthash + LRU move-to-front, each on the
 * same thread counts. Trials run every series back to back, so drift on
 * a shared machine hits them all; the medians are reported.
 *
 * Beside those, in the same trials: tc_get on 1 thread under each policy
 * the L1 has (one cache per policy, filled alike), and a hot key: every
 * thread reading one key, tc_get and tc_get_with (LRU) and the bare
 * lookup, on 1 and 2 threads, for what one key's shard and refcount cost
 * in scaling.
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
/* The hot-key series do a quarter of the lookups: one key has no spread
   to cover, and the two-thread tc_get on it is the slowest series. */
#define HOT_DIV 4

/* A floor entry: the least an L1 entry is (its own copy of the key, a
   hash handle, LRU links; the length stands in for the value). */
typedef struct fnode {
    UT_hash_handle hh;
    struct fnode *prev, *next;
    size_t len;
    char key[KEY_CAP];
} fnode;

#define NPOLICIES 3 /* TC_POLICY_LRU, _LFU, _TINYLFU: 0, 1, 2 */
static const char *const policy_names[NPOLICIES] = {"lru", "lfu", "tinylfu"};

typedef struct l1_world {
    char (*keys)[KEY_CAP];
    uint32_t *seq;
    uint32_t *hot_seq; /* nseq / HOT_DIV times key 0, Zipf's hottest */
    size_t nseq;
    fnode *table;            /* uthash head, shared by both floors */
    fnode *head, *tail;      /* LRU list, most recent first */
    pthread_mutex_t mu;      /* the locked floor's one global lock */
    tc_cache *c;             /* every key in its L1 (LRU: pc[TC_POLICY_LRU]) */
    tc_cache *pc[NPOLICIES]; /* one cache per policy, each holding every key */
    char ns[TC_NS_MAX];      /* their one namespace */
} l1_world;

enum { BARE, MUTEX_LRU, TC_GET, TC_GET_WITH };

typedef struct l1_job {
    l1_world *w;
    int kind;
    const uint32_t *seq; /* w->seq or w->hot_seq */
    size_t n;            /* lookups: seq's first n */
    tc_cache *c;
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
        HASH_FIND_STR(w->table, w->keys[j->seq[i]], e);
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
        size_t len = lru_get(w, w->keys[j->seq[i]]);
        j->sink += len;
        j->misses += len == 0;
    }
}

static void loop_tc_get(l1_job *j, size_t from, size_t to)
{
    l1_world *w = j->w;
    for (size_t i = from; i < to; i++) {
        tc_value *v;
        if (tc_get(j->c, w->keys[j->seq[i]], &v) != TC_OK) {
            j->misses++;
            continue;
        }
        j->sink += tc_value_len(v);
        tc_value_release(v);
    }
}

static void add_len(void *ud, const void *data, size_t len)
{
    (void)data;
    *(size_t *)ud = len;
}

/* tc_get_with: the value read in place, no reference taken. */
static void loop_tc_get_with(l1_job *j, size_t from, size_t to)
{
    l1_world *w = j->w;
    for (size_t i = from; i < to; i++) {
        size_t len = 0;
        if (tc_get_with(j->c, w->keys[j->seq[i]], add_len, &len) != TC_OK) {
            j->misses++;
            continue;
        }
        j->sink += len;
    }
}

static void l1_range(l1_job *j, size_t from, size_t to)
{
    if (j->kind == BARE)
        loop_bare(j, from, to);
    else if (j->kind == MUTEX_LRU)
        loop_mutex_lru(j, from, to);
    else if (j->kind == TC_GET)
        loop_tc_get(j, from, to);
    else
        loop_tc_get_with(j, from, to);
}

static void *l1_worker(void *arg)
{
    l1_job *j = arg;
    pthread_barrier_wait(j->go);
    j->t_start = now_ns();
    /* Each thread walks the whole sequence from its own start, so two
       threads do not hit the same keys in lockstep. */
    l1_range(j, j->start, j->n);
    l1_range(j, 0, j->start);
    j->t_end = now_ns();
    return NULL;
}

/* Runs `kind` on nthreads threads, each over the first n of sequence
   `seq` (tc_get on cache c), and returns the total ops/s from the first start
   to the last finish. The workers read the clock themselves: the main
   thread may well be descheduled between the barrier and its own
   reading. */
static double l1_measure(l1_world *w, int kind, int nthreads,
                         const uint32_t *seq, size_t n, tc_cache *c)
{
    pthread_t th[MAX_THREADS];
    l1_job jobs[MAX_THREADS];
    pthread_barrier_t go;
    uint64_t misses = 0;
    pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = (l1_job){.w = w,
                           .kind = kind,
                           .seq = seq,
                           .c = c,
                           .n = n,
                           .start = n / (size_t)nthreads * (size_t)t,
                           .go = &go};
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
    return (double)nthreads * (double)n * 1e9 / (double)dt;
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

/* Reads every key once: the misses fill c's L1 from Redis. */
static void l1_read_all(l1_world *w, tc_cache *c)
{
    for (uint32_t k = 0; k < NKEYS; k++) {
        tc_value *v;
        int rc = tc_get(c, w->keys[k], &v);
        if (rc != TC_OK)
            die("l1 fill: tc_get %s: %s", w->keys[k], tc_strerror(rc));
        tc_value_release(v);
    }
}

/* Reads every key into c's L1, in rounds 100 ms apart, until it holds
   every one (else the "hits" would not all be hits). */
static void l1_read_until_full(l1_world *w, tc_cache *c, const char *name)
{
    for (int round = 1; l1_entries(c) < NKEYS; round++) {
        if (round > 50)
            die("l1 fill: the %s L1 holds %llu of %d keys after 50 rounds",
                name, (unsigned long long)l1_entries(c), NKEYS);
        if (round > 1)
            usleep(100 * 1000);
        l1_read_all(w, c);
        progress("l1: %s read round %d: the L1 holds %llu keys", name, round,
                 (unsigned long long)l1_entries(c));
    }
}

/* A cache as open_cache makes one, under `policy`, in the namespace ns
   (a fresh one when empty; it is then copied into ns). */
static tc_cache *l1_open(const th_redis *r, int policy, char *ns)
{
    tc_options o;
    tc_cache *c;
    th_options(r, &o);
    o.strict = 1;
    o.command_timeout_ms = 2000;
    o.l1_max_entries = L1_ENTRIES;
    o.policy = policy;
    if (ns[0])
        snprintf(o.ns, sizeof(o.ns), "%s", ns);
    else
        snprintf(ns, TC_NS_MAX, "%s", o.ns);
    int rc = tc_open(&c, &o);
    if (rc != TC_OK)
        die("tc_open: %s", tc_strerror(rc));
    return c;
}

/* Every key goes to Redis through tc_set. The L1 copies tc_set makes do
   not stay: with client tracking on, Redis reports our own SETs back as
   invalidations, which the listener applies a moment later. So the L1 is
   filled by reads, once those reports have settled. The other policies'
   caches share the namespace and only read (they set nothing, so
   nothing of theirs is invalidated). */
static void l1_fill_cache(l1_world *w, const th_redis *r)
{
    char *val = make_payload(L1_VALUE_LEN);
    w->ns[0] = '\0';
    w->c = w->pc[TC_POLICY_LRU] = l1_open(r, TC_POLICY_LRU, w->ns);
    for (uint32_t k = 0; k < NKEYS; k++) {
        int rc = tc_set(w->c, w->keys[k], val, L1_VALUE_LEN, TTL_MS);
        if (rc != TC_OK)
            die("l1 fill: tc_set: %s", tc_strerror(rc));
    }
    free(val);
    progress("l1: after tc_set the L1 holds %llu of %d keys",
             (unsigned long long)l1_entries(w->c), NKEYS);
    usleep(100 * 1000);
    l1_read_until_full(w, w->c, "lru");
    for (int p = 0; p < NPOLICIES; p++) {
        if (p == TC_POLICY_LRU)
            continue;
        w->pc[p] = l1_open(r, p, w->ns);
        l1_read_until_full(w, w->pc[p], policy_names[p]);
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
    w->hot_seq = xcalloc(w->nseq / HOT_DIV, sizeof(*w->hot_seq));
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
    for (int p = 0; p < NPOLICIES; p++)
        tc_close(w->pc[p]);
    free(w->seq);
    free(w->hot_seq);
    free(w->keys);
}

/* The series: each kind on 1 .. max_threads threads, run once per trial
   in this order. Series s is kind s / T on s % T + 1 threads. */
static const char *const kind_names[] = {"bare", "mutex+LRU", "tc_get",
                                         "tc_get_with"};
#define NKINDS 4

/* The series beside those: 1 thread under the other policies (LRU's is
   tc_get's own), then the hot key on 1 and 2 threads (when T >= 2). */
enum {
    X_LFU,
    X_TINYLFU,
    X_BARE_HOT1,
    X_BARE_HOT2,
    X_TC_HOT1,
    X_TC_HOT2,
    X_WITH_HOT1,
    X_WITH_HOT2,
    NX
};
static const struct {
    const char *name;
    int kind, threads, policy, hot;
} extras[NX] = {
    {"tc_get-lfu", TC_GET, 1, TC_POLICY_LFU, 0},
    {"tc_get-tinylfu", TC_GET, 1, TC_POLICY_TINYLFU, 0},
    {"bare-hotkey", BARE, 1, 0, 1},
    {"bare-hotkey", BARE, 2, 0, 1},
    {"tc_get-hotkey", TC_GET, 1, TC_POLICY_LRU, 1},
    {"tc_get-hotkey", TC_GET, 2, TC_POLICY_LRU, 1},
    {"tc_get_with-hotkey", TC_GET_WITH, 1, TC_POLICY_LRU, 1},
    {"tc_get_with-hotkey", TC_GET_WITH, 2, TC_POLICY_LRU, 1},
};

typedef struct l1_results {
    int nthreads; /* T */
    int ntrials;
    int nextras;               /* NX, or 2 when T = 1 */
    double (*ops)[MAX_TRIALS]; /* [series][trial] */
    double *med;               /* [series] */
    double xops[NX][MAX_TRIALS];
    double xmed[NX];
} l1_results;

static double med_of(const l1_results *res, int kind, int threads)
{
    return res->med[kind * res->nthreads + threads - 1];
}

/* Medians, the CSV for the plot (which draws the four kinds), and
   the spread under the table. */
static void l1_summarize(l1_results *res)
{
    char note[2048];
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
    add_note("%s", note);
    len = (size_t)snprintf(note, sizeof(note), "l1: min-max M/s:");
    for (int x = 0; x < res->nextras; x++) {
        res->xmed[x] = median(res->xops[x], n);
        fprintf(csv, "%s,%d,%.0f,%.0f,%.0f\n", extras[x].name,
                extras[x].threads, res->xmed[x], res->xops[x][0],
                res->xops[x][n - 1]);
        if (len < sizeof(note))
            len += (size_t)snprintf(
                note + len, sizeof(note) - len,
                "%s %s %dT %.1f-%.1f (median %.1f)", x ? "," : "",
                extras[x].name, extras[x].threads, res->xops[x][0] / 1e6,
                res->xops[x][n - 1] / 1e6, res->xmed[x] / 1e6);
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
    double with1 = med_of(res, TC_GET_WITH, 1);
    add_row("l1", "get_with_1t_ops_s_vs_bare", U_OPS, with1, bare1, bare);
    /* Each policy's hit path, 1 thread; LRU's is tc_get's own series. */
    for (int p = 0; p < NPOLICIES; p++) {
        double ops = p == TC_POLICY_LRU   ? tc1
                     : p == TC_POLICY_LFU ? res->xmed[X_LFU]
                                          : res->xmed[X_TINYLFU];
        snprintf(metric, sizeof(metric), "get_1t_%s_ops_s", policy_names[p]);
        add_row("l1", metric, U_OPS, ops, bare1, bare);
    }
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
        snprintf(metric, sizeof(metric), "get_with_%dt_scaling_vs_1t", t);
        snprintf(floor_is, sizeof(floor_is),
                 "tc_get_with on 1 thread (%d.00 = linear)", t);
        add_row("l1", metric, U_OPS, med_of(res, TC_GET_WITH, t), with1,
                floor_is);
        snprintf(metric, sizeof(metric), "bare_%dt_scaling_vs_1t", t);
        add_row("l1", metric, U_OPS, med_of(res, BARE, t), bare1,
                "bare lookup on 1 thread (what the machine allows)");
        snprintf(metric, sizeof(metric), "mutex_lru_%dt_scaling_vs_1t", t);
        add_row("l1", metric, U_OPS, med_of(res, MUTEX_LRU, t),
                med_of(res, MUTEX_LRU, 1),
                "mutex+LRU on 1 thread (one lock for all)");
    }
    if (res->nextras > X_WITH_HOT2) {
        /* One key on every thread: tc_get's reference is one line all
           of them write; tc_get_with writes none. The floor is what the
           bare lookup of that one key scales by on this machine. */
        double tc_s = res->xmed[X_TC_HOT2] / res->xmed[X_TC_HOT1];
        double with_s = res->xmed[X_WITH_HOT2] / res->xmed[X_WITH_HOT1];
        double bare_s = res->xmed[X_BARE_HOT2] / res->xmed[X_BARE_HOT1];
        add_row("l1", "get_2t_hotkey_scaling_vs_1t", U_PER, tc_s, bare_s,
                "bare lookup of one key, its own 2T / 1T");
        add_row("l1", "get_with_2t_hotkey_scaling_vs_1t", U_PER, with_s,
                bare_s, "bare lookup of one key, its own 2T / 1T");
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
        double ops = l1_measure(w, s / res->nthreads, s % res->nthreads + 1,
                                w->seq, w->nseq, w->c);
        if (t > 0) /* trial 0 warms caches and predictors: dropped */
            res->ops[s][t - 1] = ops;
        if (len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len, " %.1f",
                                    ops / 1e6);
    }
    for (int x = 0; x < res->nextras; x++) {
        double ops = l1_measure(w, extras[x].kind, extras[x].threads,
                                extras[x].hot ? w->hot_seq : w->seq,
                                extras[x].hot ? w->nseq / HOT_DIV : w->nseq,
                                w->pc[extras[x].policy]);
        if (t > 0)
            res->xops[x][t - 1] = ops;
        if (len < sizeof(line))
            len += (size_t)snprintf(line + len, sizeof(line) - len, "%s %.1f",
                                    x ? "" : " |", ops / 1e6);
    }
    progress("%s M/s", line);
}

void bench_l1(const th_redis *r, const bench_cfg *cfg)
{
    l1_world w;
    l1_results res;
    tc_stats_info before[NPOLICIES], after;
    res.nthreads =
        cfg->max_threads < MAX_THREADS ? cfg->max_threads : MAX_THREADS;
    res.ntrials = cfg->l1_trials < MAX_TRIALS ? cfg->l1_trials : MAX_TRIALS;
    res.nextras = res.nthreads >= 2 ? NX : X_TINYLFU + 1;
    res.ops = xcalloc((size_t)NKINDS * (size_t)res.nthreads, sizeof(*res.ops));
    res.med = xcalloc((size_t)NKINDS * (size_t)res.nthreads, sizeof(double));
    l1_setup(&w, r, cfg);
    for (int p = 0; p < NPOLICIES; p++)
        tc_stats(w.pc[p], &before[p]);
    progress("l1: %zu lookups per thread; M/s of bare, mutex+LRU, tc_get, "
             "tc_get_with on 1..%d threads | tc_get lfu, tinylfu 1T",
             w.nseq, res.nthreads);
    if (res.nextras > X_WITH_HOT2)
        progress("l1: then one key, %zu lookups per thread: bare 1T 2T, "
                 "tc_get 1T 2T, tc_get_with 1T 2T",
                 w.nseq / HOT_DIV);
    for (int t = 0; t <= res.ntrials; t++)
        l1_trial(&w, &res, t);
    for (int p = 0; p < NPOLICIES; p++) {
        tc_stats(w.pc[p], &after);
        if (after.l1_misses != before[p].l1_misses ||
            after.l2_hits != before[p].l2_hits)
            die("l1: the %s cache saw misses during the hit benchmark",
                policy_names[p]);
    }
    l1_summarize(&res);
    l1_report(&res);
    l1_teardown(&w);
    free(res.ops);
    free(res.med);
}
