/*
 * tc-bench: what tiercache costs over the floor it is built on.
 *
 * Every figure is printed beside a floor measured in the same run, on the
 * same keys and bytes, so that the ratio holds on any machine:
 *   l1   tc_get hits on a warm L1 (Zipf 0.99 over 10,000 keys), against a
 *        bare uthash lookup and a global mutex + uthash + LRU;
 *   l2   tc_get with the L1 off, served by Redis, against a raw hiredis
 *        GET of the same Redis key over the same kind of socket;
 *   set  tc_set against a raw hiredis SET of the same envelope bytes.
 * It runs its own redis-server (tests/harness.h), prints one table on
 * stdout and progress on stderr, and writes bench/results/summary.tsv
 * under the current directory.
 *
 * Usage: tc-bench [--quick] [l1|l2|set ...]
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The floors use uthash's defaults (malloc, exit on OOM): fine here. */
#include <uthash.h>

#include "harness.h"
#include "internal.h" /* tc__env_encode: the raw SET sends real envelopes */

#define NKEYS 10000 /* the L1 key space */
#define ZIPF_S 0.99
#define KEY_CAP 32
#define RKEY_CAP (TC_NS_MAX + KEY_CAP + 4) /* <ns>:{<key>} */
#define L1_VALUE_LEN 64
#define L1_ENTRIES 100000 /* the default L1 bound, far above NKEYS */
#define SET_KEYS 1000     /* the set path cycles over these */
#define TTL_MS 300000u
#define BLOCK 20        /* ops one side runs before the other's turn */
#define WARMUP 200      /* untimed round trips per side before each case */
#define MIN_IO_OPS 1000 /* per side, however long it takes */
#define MAX_TRIALS 15
#define MAX_ROWS 32
#define TSV_DIR "bench/results"
#define TSV_PATH TSV_DIR "/summary.tsv"

static const size_t value_sizes[] = {64, 1024, 16384};
#define NSIZES (sizeof(value_sizes) / sizeof(value_sizes[0]))

typedef struct bench_cfg {
    int quick;
    int l1, l2, set;         /* the scenarios to run */
    size_t l1_ops;           /* lookups per thread and trial */
    int l1_trials;           /* odd, so the median is one of them */
    size_t io_ops;           /* timed round trips per side and case */
    uint64_t case_budget_ns; /* past it a case stops, io_ops or not */
} bench_cfg;

/* ---- small helpers ---- */

static __attribute__((noreturn, format(printf, 1, 2))) void
die(const char *fmt, ...)
{
    va_list ap;
    fputs("tc-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1); /* the harness's atexit handler kills the redis-server */
}

static __attribute__((format(printf, 1, 2))) void progress(const char *fmt,
                                                           ...)
{
    va_list ap;
    fputs("tc-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        die("out of memory");
    return p;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *size_name(size_t n)
{
    return n == 64 ? "64B" : n == 1024 ? "1KiB" : "16KiB";
}

static char *make_payload(size_t len)
{
    char *p = xcalloc(len, 1);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)('a' + i % 26);
    return p;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted latencies, in microseconds. */
static double pct_us(const uint64_t *sorted, size_t n, unsigned pct)
{
    size_t rank = (pct * n + 99) / 100; /* ceil(pct% of n), 1-based */
    return (double)sorted[rank ? rank - 1 : 0] / 1000.0;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

/* ---- results: one row per figure, printed and written at the end ---- */

typedef enum { OPS, USEC } unit;

typedef struct row {
    const char *scenario;
    char metric[40];
    unit u;
    double value, floor; /* ratio = value / floor */
    char floor_is[72];
} row;

static row rows[MAX_ROWS];
static int nrows;
static char l1_note[320]; /* printed under the table: the l1 spread */

static void add_row(const char *scenario, const char *metric, unit u,
                    double value, double floor, const char *floor_is)
{
    if (nrows == MAX_ROWS)
        die("too many rows");
    row *r = &rows[nrows++];
    r->scenario = scenario;
    snprintf(r->metric, sizeof(r->metric), "%s", metric);
    r->u = u;
    r->value = value;
    r->floor = floor;
    snprintf(r->floor_is, sizeof(r->floor_is), "%s", floor_is);
}

static void fmt_figure(char *out, size_t cap, unit u, double v)
{
    if (u == USEC)
        snprintf(out, cap, "%.1f us", v);
    else if (v >= 1e6)
        snprintf(out, cap, "%.2f M/s", v / 1e6);
    else
        snprintf(out, cap, "%.1f k/s", v / 1e3);
}

static void print_table(const char *env)
{
    char fig[32], flo[32];
    printf("\ntc-bench: %s\n\n", env);
    printf("%-8s %-26s %12s %12s %7s  %s\n", "scenario", "metric", "figure",
           "floor", "ratio", "floor is");
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        fmt_figure(fig, sizeof(fig), r->u, r->value);
        fmt_figure(flo, sizeof(flo), r->u, r->floor);
        printf("%-8s %-26s %12s %12s %6.2fx  %s\n", r->scenario, r->metric,
               fig, flo, r->value / r->floor, r->floor_is);
    }
    printf("\nratio = figure / floor: for ops/s 1.00 is as fast as the "
           "floor (lower is slower);\nfor latency 1.00 is no overhead "
           "(higher is slower); scaling: 2.00 is ideal on 2 threads.\n");
    if (l1_note[0])
        printf("%s\n", l1_note);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        die("mkdir %s: %s", path, strerror(errno));
}

static void write_tsv(void)
{
    make_dir("bench");
    make_dir(TSV_DIR);
    FILE *f = fopen(TSV_PATH, "w");
    if (!f)
        die("%s: %s", TSV_PATH, strerror(errno));
    fprintf(f, "scenario\tmetric\tvalue\tfloor\tratio\n");
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        int prec = r->u == USEC ? 3 : 0; /* us to the ns; whole ops/s */
        fprintf(f, "%s\t%s\t%.*f\t%.*f\t%.4f\n", r->scenario, r->metric, prec,
                r->value, prec, r->floor, r->value / r->floor);
    }
    if (fclose(f) != 0)
        die("%s: %s", TSV_PATH, strerror(errno));
    progress("wrote %s", TSV_PATH);
}

/* ---- Redis and caches ---- */

/* th_options plus: strict, so that a Redis failure stops the bench rather
   than passing for a fast miss, and a command timeout roomy enough that a
   scheduling hiccup on a busy machine is not such a failure. */
static tc_cache *open_cache(const th_redis *r, int unix_socket,
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
static redisContext *raw_connect(const th_redis *r, int unix_socket)
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

/* The Redis name of a key, as docs/data-format.md has it. */
static void redis_key(char *out, size_t cap, const tc_options *o,
                      const char *key)
{
    snprintf(out, cap, "%s:{%s}", o->ns, key);
}

static void describe_env(const th_redis *r, const bench_cfg *cfg, char *out,
                         size_t cap)
{
    char ver[32] = "?";
    redisReply *rep = th_redis_cmd(r, "INFO server");
    const char *p = rep && rep->type == REDIS_REPLY_STRING
                        ? strstr(rep->str, "redis_version:")
                        : NULL;
    if (p) {
        p += strlen("redis_version:");
        snprintf(ver, sizeof(ver), "%.*s", (int)strcspn(p, "\r\n"), p);
    }
    if (rep)
        freeReplyObject(rep);
    snprintf(out, cap, "redis %s, hiredis %d.%d.%d, %ld CPUs, %s run%s", ver,
             HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH,
             sysconf(_SC_NPROCESSORS_ONLN), cfg->quick ? "quick" : "full",
#ifdef __OPTIMIZE__
             ""
#else
             " (UNOPTIMIZED build: figures mean little)"
#endif
    );
}

/* ---- the Zipf key sequence ---- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* ln(1 + 1/k), k >= 1, as 2 atanh(1/(2k + 1)): an argument of at most
   1/3, so the series is exact to double precision in ~20 terms. */
static double ln1p_recip(double k)
{
    double z = 1.0 / (2.0 * k + 1.0), z2 = z * z, term = z, sum = 0.0;
    for (int j = 1; term > 1e-20; j += 2) {
        sum += term / j;
        term *= z2;
    }
    return 2.0 * sum;
}

/* e^x for |x| < 1, by its Taylor series. */
static double exp_small(double x)
{
    double sum = 1.0, term = 1.0;
    for (int n = 1; n < 30; n++) {
        term *= x / n;
        sum += term;
    }
    return sum;
}

/* The cumulative Zipf weights 1/(r+1)^s of ranks 0..n-1. The bench links
   no libm, hence no pow(): from rank r to r+1 the weight shrinks by
   exp(-s ln(1 + 1/(r+1))), whose arguments suit the short series above. */
static double *zipf_cdf(uint32_t n, double s)
{
    double *cdf = xcalloc(n, sizeof(*cdf));
    double w = 1.0, sum = 0.0;
    for (uint32_t r = 0; r < n; r++) {
        sum += w;
        cdf[r] = sum;
        w *= exp_small(-s * ln1p_recip(r + 1.0));
    }
    return cdf;
}

/* n key indexes drawn from Zipf(ZIPF_S), all before any timing, so the
   timed loops do no RNG work. Rank r is key r: the keys' hashes scatter
   the hot ones over the shards. */
static uint32_t *zipf_sequence(size_t n, uint64_t seed)
{
    double *cdf = zipf_cdf(NKEYS, ZIPF_S);
    uint32_t *seq = xcalloc(n, sizeof(*seq));
    for (size_t i = 0; i < n; i++) {
        double u =
            (double)(splitmix64(&seed) >> 11) * 0x1.0p-53 * cdf[NKEYS - 1];
        uint32_t lo = 0, hi = NKEYS - 1;
        while (lo < hi) { /* the first rank whose cdf reaches u */
            uint32_t mid = lo + (hi - lo) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        seq[i] = lo;
    }
    free(cdf);
    return seq;
}

/* ---- l1: warm hits against a bare and a locked uthash ---- */

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
    /* Each thread walks the whole sequence from its own start, so two
       threads do not hit the same keys in lockstep. */
    l1_range(j, j->start, j->w->nseq);
    l1_range(j, 0, j->start);
    return NULL;
}

/* Runs `kind` on nthreads threads, each over the whole sequence, and
   returns the total ops/s from the common start to the last finish. */
static double l1_measure(l1_world *w, int kind, int nthreads)
{
    pthread_t th[2];
    l1_job jobs[2];
    pthread_barrier_t go;
    uint64_t misses = 0;
    pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
    for (int t = 0; t < nthreads; t++) {
        jobs[t] = (l1_job){w, kind, w->nseq / 2 * (size_t)t, &go, 0, 0};
        if (pthread_create(&th[t], NULL, l1_worker, &jobs[t]) != 0)
            die("pthread_create failed");
    }
    pthread_barrier_wait(&go);
    uint64_t t0 = now_ns();
    for (int t = 0; t < nthreads; t++) {
        pthread_join(th[t], NULL);
        misses += jobs[t].misses;
    }
    uint64_t dt = now_ns() - t0;
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
    w->seq = zipf_sequence(w->nseq, 42);
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

/* The l1 measurements, each run once per trial, in this order. */
enum { S_BARE1, S_BARE2, S_LRU1, S_TC1, S_TC2, NSERIES };
static const struct {
    int kind, nthreads;
    const char *name;
} l1_series[NSERIES] = {
    {BARE, 1, "bare 1T"},           {BARE, 2, "bare 2T"},
    {MUTEX_LRU, 1, "mutex+LRU 1T"}, {TC_GET, 1, "tc_get 1T"},
    {TC_GET, 2, "tc_get 2T"},
};

/* Sorts each series' trials; med gets the medians, l1_note the ranges. */
static void l1_summarize(double ops[NSERIES][MAX_TRIALS], int n,
                         double med[NSERIES])
{
    size_t len = (size_t)snprintf(l1_note, sizeof(l1_note),
                                  "l1: medians of %d trials; min-max M/s:", n);
    for (int s = 0; s < NSERIES && len < sizeof(l1_note); s++) {
        med[s] = median(ops[s], n);
        len += (size_t)snprintf(l1_note + len, sizeof(l1_note) - len,
                                "%s %s %.1f-%.1f", s ? "," : "",
                                l1_series[s].name, ops[s][0] / 1e6,
                                ops[s][n - 1] / 1e6);
    }
}

static void l1_report(const double med[NSERIES])
{
    const char *bare = "bare uthash HASH_FIND_STR, 1 thread, no lock";
    add_row("l1", "get_1t_ops_s_vs_bare", OPS, med[S_TC1], med[S_BARE1], bare);
    add_row("l1", "get_1t_ops_s_vs_mutex_lru", OPS, med[S_TC1], med[S_LRU1],
            "global mutex + uthash + LRU move-to-front, 1T");
    add_row("l1", "get_2t_ops_s_vs_bare", OPS, med[S_TC2], med[S_BARE1], bare);
    add_row("l1", "get_2t_scaling_vs_1t", OPS, med[S_TC2], med[S_TC1],
            "tc_get on 1 thread (2.00 = linear)");
    /* What two threads of read-only lookups get on this machine: the
       scaling tc_get could reach, were nothing shared written. */
    add_row("l1", "bare_2t_scaling_vs_1t", OPS, med[S_BARE2], med[S_BARE1],
            "bare lookup on 1 thread (what the machine allows)");
}

/* One trial: every series once, back to back, so drift hits them all. */
static void l1_trial(l1_world *w, int t, int trials, double out[NSERIES])
{
    char line[200];
    size_t len = (size_t)snprintf(line, sizeof(line), "l1: trial %d/%d%s:", t,
                                  trials, t ? "" : " (warm-up)");
    for (int s = 0; s < NSERIES; s++) {
        out[s] = l1_measure(w, l1_series[s].kind, l1_series[s].nthreads);
        len += (size_t)snprintf(line + len, sizeof(line) - len, " %.1f",
                                out[s] / 1e6);
    }
    progress("%s M/s", line);
}

static void bench_l1(const th_redis *r, const bench_cfg *cfg)
{
    l1_world w;
    double ops[NSERIES][MAX_TRIALS], one[NSERIES], med[NSERIES];
    tc_stats_info before, after;
    int n = cfg->l1_trials;
    l1_setup(&w, r, cfg);
    tc_stats(w.c, &before);
    progress("l1: %zu lookups per thread; M/s of %s, %s, %s, %s, %s", w.nseq,
             l1_series[0].name, l1_series[1].name, l1_series[2].name,
             l1_series[3].name, l1_series[4].name);
    /* Trial 0 warms caches and branch predictors and is dropped. */
    for (int t = 0; t <= n; t++) {
        l1_trial(&w, t, n, one);
        for (int s = 0; t > 0 && s < NSERIES; s++)
            ops[s][t - 1] = one[s];
    }
    tc_stats(w.c, &after);
    if (after.l1_misses != before.l1_misses || after.l2_hits != before.l2_hits)
        die("l1: the cache saw misses during the hit benchmark");
    l1_summarize(ops, n, med);
    l1_report(med);
    l1_teardown(&w);
}

/* ---- timed round trips, two sides taking turns ---- */

/* One timed operation: its i-th run, returning nanoseconds. */
typedef uint64_t (*timed_op)(void *ctx, size_t i);

static void run_block(timed_op op, void *ctx, uint64_t *lat, size_t first,
                      size_t m)
{
    for (size_t i = 0; i < m; i++)
        lat[i] = op(ctx, first + i);
}

/* a and b take turns in blocks of BLOCK ops, each going first in every
   other block, so machine noise (other processes, CPU frequency, Redis's
   own housekeeping) lands on both alike. Stops after n each, or once past
   the deadline (ns) with MIN_IO_OPS done. Returns the count per side. */
static size_t alternate(timed_op a, timed_op b, void *ctx, uint64_t *lat_a,
                        uint64_t *lat_b, size_t n, uint64_t deadline)
{
    size_t done = 0;
    while (done < n && (done < MIN_IO_OPS || now_ns() < deadline)) {
        size_t m = n - done < BLOCK ? n - done : BLOCK;
        int b_first = (done / BLOCK) % 2;
        run_block(b_first ? b : a, ctx, (b_first ? lat_b : lat_a) + done, done,
                  m);
        run_block(b_first ? a : b, ctx, (b_first ? lat_a : lat_b) + done, done,
                  m);
        done += m;
    }
    return done;
}

/* Warms up, then times up to cfg->io_ops of each side. On a machine so
   busy that a case outruns its time budget it stops early, so that the
   whole run stays bounded; the count is returned and said. */
static size_t measure_pair(const bench_cfg *cfg, timed_op a, timed_op b,
                           void *ctx, uint64_t *lat_a, uint64_t *lat_b)
{
    alternate(a, b, ctx, lat_a, lat_b, WARMUP, UINT64_MAX);
    size_t n = alternate(a, b, ctx, lat_a, lat_b, cfg->io_ops,
                         now_ns() + cfg->case_budget_ns);
    if (n < cfg->io_ops)
        progress("  over its time budget: stopped at %zu per side", n);
    return n;
}

static double ops_per_s(const uint64_t *lat, size_t n)
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

static uint64_t raw_get_op(void *ctx, size_t i)
{
    get_case *g = ctx;
    uint64_t t0 = now_ns();
    redisReply *rep = redisCommand(g->raw, "GET %s", g->rkey);
    int ok = rep && rep->type == REDIS_REPLY_STRING;
    if (rep)
        freeReplyObject(rep);
    uint64_t dt = now_ns() - t0;
    if (!ok)
        die("l2: raw GET %s: %s", g->rkey, rep ? "not a string" : "failed");
    return dt;
}

static void l2_report(const get_case *g, const char *sock, uint64_t *lat_tc,
                      uint64_t *lat_raw, size_t n)
{
    char metric[40], floor_is[72];
    static const unsigned pcts[] = {50, 99};
    qsort(lat_tc, n, sizeof(*lat_tc), cmp_u64);
    qsort(lat_raw, n, sizeof(*lat_raw), cmp_u64);
    snprintf(floor_is, sizeof(floor_is), "raw hiredis GET, same key, %s",
             sock);
    for (int i = 0; i < 2; i++) {
        snprintf(metric, sizeof(metric), "get_%s_%s_p%u_us", sock,
                 size_name(g->vlen), pcts[i]);
        add_row("l2", metric, USEC, pct_us(lat_tc, n, pcts[i]),
                pct_us(lat_raw, n, pcts[i]), floor_is);
    }
}

static void l2_case(const th_redis *r, const bench_cfg *cfg, int unix_socket,
                    size_t vlen, uint64_t *lat_tc, uint64_t *lat_raw)
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
    l2_report(&g, sock, lat_tc, lat_raw, n);
    redisFree(g.raw);
    tc_close(g.c);
}

static void bench_l2(const th_redis *r, const bench_cfg *cfg)
{
    uint64_t *lat_tc = xcalloc(cfg->io_ops, sizeof(uint64_t));
    uint64_t *lat_raw = xcalloc(cfg->io_ops, sizeof(uint64_t));
    for (int unix_socket = 0; unix_socket <= 1; unix_socket++)
        for (size_t s = 0; s < NSIZES; s++)
            l2_case(r, cfg, unix_socket, value_sizes[s], lat_tc, lat_raw);
    free(lat_tc);
    free(lat_raw);
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
    tc__envelope e = {0, tc__add_sat(tc__wall_ms(), TTL_MS), 0,
                      (const unsigned char *)s->payload, plen};
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
    char metric[40], floor_is[72];
    progress("set: tcp %s, %zu round trips per side", size_name(plen),
             cfg->io_ops);
    set_setup(&s, r, plen);
    size_t n = measure_pair(cfg, tc_set_op, raw_set_op, &s, lat_tc, lat_raw);
    snprintf(metric, sizeof(metric), "set_tcp_%s_ops_s", size_name(plen));
    snprintf(floor_is, sizeof(floor_is),
             "raw hiredis SET PX of the %zu-byte envelope, tcp", s.elen);
    add_row("set", metric, OPS, ops_per_s(lat_tc, n), ops_per_s(lat_raw, n),
            floor_is);
    set_teardown(&s);
}

static void bench_set(const th_redis *r, const bench_cfg *cfg)
{
    uint64_t *lat_tc = xcalloc(cfg->io_ops, sizeof(uint64_t));
    uint64_t *lat_raw = xcalloc(cfg->io_ops, sizeof(uint64_t));
    for (size_t s = 0; s < NSIZES; s++)
        set_case_run(r, cfg, value_sizes[s], lat_tc, lat_raw);
    free(lat_tc);
    free(lat_raw);
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: tc-bench [--quick] [l1|l2|set ...]\n"
               "  --quick  fewer rounds: seconds rather than half a minute\n"
               "  l1       tc_get L1 hits vs uthash floors\n"
               "  l2       tc_get from Redis vs raw hiredis GET\n"
               "  set      tc_set vs raw hiredis SET\n"
               "With no scenario, all run. Results: " TSV_PATH "\n");
}

/* 0 ok, 1 help was asked for, -1 a bad argument. */
static int parse_args(int argc, char **argv, bench_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quick"))
            cfg->quick = 1;
        else if (!strcmp(a, "l1"))
            cfg->l1 = 1;
        else if (!strcmp(a, "l2"))
            cfg->l2 = 1;
        else if (!strcmp(a, "set"))
            cfg->set = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return 1;
        else {
            fprintf(stderr, "tc-bench: unknown argument: %s\n", a);
            return -1;
        }
    }
    if (!cfg->l1 && !cfg->l2 && !cfg->set)
        cfg->l1 = cfg->l2 = cfg->set = 1;
    /* Many short trials rather than a few long ones: the median of many
       shrugs off the bursts of noise a shared (virtual) machine has. */
    cfg->l1_ops = cfg->quick ? (size_t)1 << 17 : (size_t)1 << 19;
    cfg->l1_trials = cfg->quick ? 5 : 11;
    cfg->io_ops = cfg->quick ? 3000 : 20000;
    cfg->case_budget_ns = (cfg->quick ? 300 : 2000) * (uint64_t)1000000;
    return 0;
}

int main(int argc, char **argv)
{
    bench_cfg cfg;
    char env[160];
    int rc = parse_args(argc, argv, &cfg);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    uint64_t t0 = now_ns();
    th_redis *r = th_redis_start();
    if (!r)
        die("cannot start a redis-server");
    describe_env(r, &cfg, env, sizeof(env));
    progress("%s; redis on port %d", env, th_redis_port(r));
    if (cfg.l1)
        bench_l1(r, &cfg);
    if (cfg.l2)
        bench_l2(r, &cfg);
    if (cfg.set)
        bench_set(r, &cfg);
    th_redis_stop(r);
    print_table(env);
    write_tsv();
    progress("done in %.1f s", (double)(now_ns() - t0) / 1e9);
    return 0;
}
