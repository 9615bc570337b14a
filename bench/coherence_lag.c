/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * coherence: how long a change made by one process takes to leave
 * another process's L1, beside a raw PUBLISH -> receive between the same
 * two processes, in tracking (TC_COHERENCE_AUTO) and channel mode.
 *
 * Two processes, each with its own tc_cache on one namespace: the parent
 * writes, a forked child reads. The reader drives; the writer serves its
 * requests over a pipe:
 *   FILL    the writer tc_sets a batch of keys; the reader then reads
 *           them into its L1 and waits until no invalidation is in
 *           flight (else one left over from the fill would pass for the
 *           change and read as a tiny lag);
 *   CHANGE  the reader sees key j in its L1 and asks; the writer takes
 *           t0 and tc_sets or tc_dels it (alternately), and sends t0;
 *           the reader spins on its own L1 (c->l1, peeked without going
 *           to Redis) until the key is gone: t1;
 *   RAW     the reader blocks on its subscribed connection; the writer
 *           takes t0 and PUBLISHes; the reader receives: t1.
 * CLOCK_MONOTONIC is one clock for both processes. The two kinds of
 * sample alternate, so machine noise lands on both. The spin yields the
 * CPU between peeks: on 2 cores a pure spin would compete with the
 * reader's own listener thread and Redis.
 *
 * The machinery (coh_measure) takes one or more targets, each a set of
 * servers with its own caches and floor connections in both processes;
 * the targets take turns key by key. This scenario has one, the bench's
 * redis-server; cluster (cluster.c) puts a Cluster beside it.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "cache.h" /* the reader peeks at its own L1: c->l1 */

#define BATCH 250                   /* keys warmed per FILL */
#define SETTLE_MS 20                /* after a FILL, before reading */
#define SPIN_LIMIT_NS 2000000000ull /* a change not seen by then is lost */

enum { REQ_FILL = 1, REQ_CHANGE, REQ_RAW, REQ_STOP, ACK };

typedef struct msg {
    uint32_t kind, idx, target;
    uint64_t t0;
} msg;

typedef struct pair {
    int to_writer, from_reader; /* the pipe ends, per side */
    int to_reader, from_writer;
    char ns[TC_NS_MAX];
    char channel[TC_NS_MAX + 16];
    int mode;
    const coh_target *t;
    int nt;
} pair;

static void send_msg(int fd, uint32_t kind, uint32_t idx, uint32_t target,
                     uint64_t t0)
{
    msg m = {kind, idx, target, t0};
    if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
        die("coherence: the other process is gone");
}

static msg recv_msg(int fd)
{
    msg m;
    size_t got = 0;
    while (got < sizeof(m)) {
        ssize_t n = read(fd, (char *)&m + got, sizeof(m) - got);
        if (n <= 0)
            die("coherence: the other process is gone");
        got += (size_t)n;
    }
    return m;
}

static void key_of(char *out, size_t cap, uint32_t j)
{
    snprintf(out, cap, "lag:%u", (unsigned)j);
}

static tc_cache *open_mode(const pair *p, const coh_target *t)
{
    tc_options o;
    tc_cache *c;
    t->options(t->ud, &o);
    snprintf(o.ns, sizeof(o.ns), "%s", p->ns);
    o.coherence = p->mode;
    o.command_timeout_ms = 2000;
    if (tc_open(&c, &o) != TC_OK)
        die("coherence: %s: tc_open failed", t->name);
    return c;
}

/* ---- the writer: serves the reader's requests ---- */

static void writer(const pair *p)
{
    tc_cache *c[COH_TARGETS_MAX];
    redisContext *pub[COH_TARGETS_MAX];
    char key[KEY_CAP];
    for (int t = 0; t < p->nt; t++) {
        c[t] = open_mode(p, &p->t[t]);
        pub[t] = p->t[t].raw(p->t[t].ud, 1);
    }
    for (;;) {
        msg m = recv_msg(p->from_reader);
        uint64_t t0 = now_ns();
        redisReply *rep;
        switch (m.kind) {
        case REQ_FILL:
            for (int t = 0; t < p->nt; t++)
                for (uint32_t j = 0; j < BATCH; j++) {
                    key_of(key, sizeof(key), j);
                    if (tc_set(c[t], key, "a", 1, TTL_MS) != TC_OK)
                        die("coherence: tc_set failed");
                }
            break;
        case REQ_CHANGE:
            key_of(key, sizeof(key), m.idx);
            if ((m.idx % 2 ? tc_del(c[m.target], key)
                           : tc_set(c[m.target], key, "b", 1, TTL_MS)))
                die("coherence: the change failed");
            break;
        case REQ_RAW:
            rep = redisCommand(pub[m.target], "PUBLISH %s x", p->channel);
            if (!rep || rep->type != REDIS_REPLY_INTEGER)
                die("coherence: PUBLISH failed");
            freeReplyObject(rep);
            break;
        default:
            for (int t = 0; t < p->nt; t++) {
                redisFree(pub[t]);
                tc_close(c[t]);
            }
            return;
        }
        send_msg(p->to_reader, ACK, m.idx, m.target, t0);
    }
}

/* ---- the reader ---- */

typedef struct reader {
    const pair *p;
    tc_cache *c[COH_TARGETS_MAX];
    redisContext *sub[COH_TARGETS_MAX];
    coh_series *sh; /* one per target */
    size_t want;
} reader;

static int in_l1(tc_cache *c, const char *key)
{
    size_t klen = strlen(key);
    tc_value *v =
        tc__l1_get(c->l1, key, klen, tc__hash(key, klen), UINT64_MAX);
    tc_value_release(v);
    return v != NULL;
}

static uint64_t invalidations(tc_cache *c)
{
    tc_stats_info st;
    tc_stats(c, &st);
    return st.invalidations;
}

/* Reads the batch into one L1; 1 when every key is there. */
static int read_batch(tc_cache *c)
{
    char key[KEY_CAP];
    int all = 1;
    for (uint32_t j = 0; j < BATCH; j++) {
        tc_value *v;
        key_of(key, sizeof(key), j);
        if (tc_get(c, key, &v) == TC_OK)
            tc_value_release(v);
    }
    usleep(2000);
    for (uint32_t j = 0; j < BATCH && all; j++) {
        key_of(key, sizeof(key), j);
        all = in_l1(c, key);
    }
    return all;
}

/* Reads the batch into every L1 until every key is there and no
   invalidation has arrived for a while: none is left in flight. */
static void warm(reader *rd)
{
    int nt = rd->p->nt;
    send_msg(rd->p->to_writer, REQ_FILL, 0, 0, 0);
    recv_msg(rd->p->from_writer);
    for (int round = 0;; round++) {
        uint64_t inv[COH_TARGETS_MAX];
        int all = 1;
        if (round == 200)
            die("coherence: the L1 does not keep the batch");
        usleep(SETTLE_MS * 1000);
        for (int t = 0; t < nt; t++)
            inv[t] = invalidations(rd->c[t]);
        for (int t = 0; t < nt; t++)
            all &= read_batch(rd->c[t]);
        for (int t = 0; t < nt && all; t++)
            all = invalidations(rd->c[t]) == inv[t];
        if (all)
            return;
    }
}

static void sample_change(reader *rd, int t, uint32_t j)
{
    coh_series *sh = &rd->sh[t];
    char key[KEY_CAP];
    if (sh->n_tc >= rd->want)
        return;
    key_of(key, sizeof(key), j);
    if (!in_l1(rd->c[t], key)) { /* dropped by something else: no sample */
        sh->skipped++;
        return;
    }
    send_msg(rd->p->to_writer, REQ_CHANGE, j, (uint32_t)t, 0);
    uint64_t start = now_ns(), t1;
    while (in_l1(rd->c[t], key) && now_ns() - start < SPIN_LIMIT_NS)
        sched_yield();
    t1 = now_ns();
    msg m = recv_msg(rd->p->from_writer);
    if (t1 - start >= SPIN_LIMIT_NS) {
        sh->lost++;
        return;
    }
    sh->is_del[sh->n_tc] = j % 2;
    sh->tc[sh->n_tc++] = t1 > m.t0 ? t1 - m.t0 : 0;
}

/* A change may be skipped or lost: the raw samples may not outrun their
   array for it. */
static void sample_raw(reader *rd, int t)
{
    coh_series *sh = &rd->sh[t];
    void *rep = NULL;
    if (sh->n_raw >= rd->want)
        return;
    send_msg(rd->p->to_writer, REQ_RAW, 0, (uint32_t)t, 0);
    if (redisGetReply(rd->sub[t], &rep) != REDIS_OK)
        die("coherence: the subscribed connection failed");
    uint64_t t1 = now_ns();
    freeReplyObject(rep);
    msg m = recv_msg(rd->p->from_writer);
    sh->raw[sh->n_raw++] = t1 > m.t0 ? t1 - m.t0 : 0;
}

static void wait_coherent(tc_cache *c)
{
    for (int i = 0; i < 5000; i++) {
        tc_stats_info st;
        tc_stats(c, &st);
        if (st.coherent)
            return;
        usleep(1000);
    }
    die("coherence: the reader's cache never became coherent");
}

static int all_done(const reader *rd)
{
    for (int t = 0; t < rd->p->nt; t++)
        if (rd->sh[t].n_tc < rd->want)
            return 0;
    return 1;
}

static void reader_run(const pair *p, coh_series *sh, size_t want,
                       uint64_t budget_ns)
{
    reader rd = {p, {NULL}, {NULL}, sh, want};
    for (int t = 0; t < p->nt; t++) {
        rd.c[t] = open_mode(p, &p->t[t]);
        rd.sub[t] = p->t[t].raw(p->t[t].ud, 0);
        redisReply *rep = redisCommand(rd.sub[t], "SUBSCRIBE %s", p->channel);
        if (!rep)
            die("coherence: SUBSCRIBE failed");
        freeReplyObject(rep);
    }
    for (int t = 0; t < p->nt; t++)
        wait_coherent(rd.c[t]);
    uint64_t deadline = now_ns() + budget_ns;
    while (!all_done(&rd) && now_ns() < deadline) {
        warm(&rd);
        for (uint32_t j = 0; j < BATCH && !all_done(&rd); j++)
            for (int k = 0; k < p->nt; k++) {
                int t = (int)((j + (uint32_t)k) % (uint32_t)p->nt);
                if (j % 2) {
                    sample_change(&rd, t, j);
                    sample_raw(&rd, t);
                } else {
                    sample_raw(&rd, t);
                    sample_change(&rd, t, j);
                }
            }
    }
    send_msg(p->to_writer, REQ_STOP, 0, 0, 0);
    for (int t = 0; t < p->nt; t++) {
        redisFree(rd.sub[t]);
        tc_close(rd.c[t]);
    }
}

/* ---- one measurement: fork, time ---- */

/* The series, then each one's tc and raw arrays, then the is_del bytes:
   one shared mapping the reader fills and the parent reads. */
static size_t map_bytes(int nt, size_t want)
{
    return (size_t)nt *
           (sizeof(coh_series) + 2 * want * sizeof(uint64_t) + want);
}

static coh_series *series_map(int nt, size_t want)
{
    void *m = mmap(NULL, map_bytes(nt, want), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        die("coherence: mmap failed");
    coh_series *sh = m;
    uint64_t *arrays = (uint64_t *)(sh + nt);
    uint8_t *bytes = (uint8_t *)(arrays + 2 * (size_t)nt * want);
    for (int t = 0; t < nt; t++) {
        sh[t].tc = arrays + 2 * (size_t)t * want;
        sh[t].raw = sh[t].tc + want;
        sh[t].is_del = bytes + (size_t)t * want;
    }
    return sh;
}

void coh_free(coh_series *s, int nt, size_t want)
{
    munmap(s, map_bytes(nt, want));
}

static void make_pipes(pair *p)
{
    int a[2], b[2];
    if (pipe(a) != 0 || pipe(b) != 0)
        die("coherence: pipe failed");
    p->from_reader = a[0];
    p->to_writer = a[1];
    p->from_writer = b[0];
    p->to_reader = b[1];
}

/* The reader is a child: it ends with _exit, since exit() would run the
   harness's atexit handler, which kills the redis-server. */
coh_series *coh_measure(const coh_target *t, int nt, int mode, const char *tag,
                        size_t want, uint64_t budget_ns)
{
    pair p = {0};
    coh_series *sh = series_map(nt, want);
    if (nt < 1 || nt > COH_TARGETS_MAX)
        die("coherence: %d targets", nt);
    p.mode = mode;
    p.t = t;
    p.nt = nt;
    snprintf(p.ns, sizeof(p.ns), "bcoh%d_%s", (int)getpid(), tag);
    snprintf(p.channel, sizeof(p.channel), "%s:floor", p.ns);
    make_pipes(&p);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("coherence: fork failed");
    if (pid == 0) {
        mark_child();
        close(p.from_reader);
        close(p.to_reader);
        reader_run(&p, sh, want, budget_ns);
        _exit(0);
    }
    close(p.to_writer);
    close(p.from_writer);
    writer(&p);
    close(p.from_reader);
    close(p.to_reader);
    if (wait_exit(pid) != 0)
        die("coherence: the reader failed");
    return sh;
}

/* ---- the scenario: the bench's redis-server, two modes ---- */

static double p50_of(const coh_series *sh, int del)
{
    uint64_t *v = xcalloc(sh->n_tc, sizeof(*v));
    size_t n = 0;
    for (size_t i = 0; i < sh->n_tc; i++)
        if (sh->is_del[i] == del)
            v[n++] = sh->tc[i];
    qsort(v, n, sizeof(*v), cmp_u64);
    double p = pct_us(v, n, 50);
    free(v);
    return p;
}

static void report(const char *mode, coh_series *sh, FILE *cdf)
{
    static const double pcts[] = {50, 99, 99.9};
    static const char *const names[] = {"p50", "p99", "p999"};
    char metric[48], label[64];
    double set50 = p50_of(sh, 0), del50 = p50_of(sh, 1);
    qsort(sh->tc, sh->n_tc, sizeof(uint64_t), cmp_u64);
    qsort(sh->raw, sh->n_raw, sizeof(uint64_t), cmp_u64);
    for (int i = 0; i < 3; i++) {
        snprintf(metric, sizeof(metric), "%s_lag_%s_us", mode, names[i]);
        add_row("coherence", metric, U_USEC, pct_us(sh->tc, sh->n_tc, pcts[i]),
                pct_us(sh->raw, sh->n_raw, pcts[i]),
                "raw PUBLISH -> receive, same 2 processes");
    }
    snprintf(label, sizeof(label), "%s/tc_set+tc_del", mode);
    csv_cdf(cdf, label, sh->tc, sh->n_tc);
    snprintf(label, sizeof(label), "%s/raw_PUBLISH", mode);
    csv_cdf(cdf, label, sh->raw, sh->n_raw);
    add_note("coherence: %s: %zu changes timed (p50 tc_set %.1f us, tc_del "
             "%.1f us), %zu lost, %zu skipped",
             mode, sh->n_tc, set50, del50, sh->lost, sh->skipped);
}

static void single_options(const void *ud, tc_options *o)
{
    th_options(ud, o);
}

static redisContext *single_raw(const void *ud, int pub)
{
    (void)pub;
    return raw_connect(ud, 0);
}

void coh_target_single(coh_target *t, const th_redis *r)
{
    t->name = "single";
    t->options = single_options;
    t->raw = single_raw;
    t->ud = r;
}

void bench_coherence(const th_redis *r, const bench_cfg *cfg)
{
    static const struct {
        int mode;
        const char *name;
    } modes[] = {{TC_COHERENCE_AUTO, "tracking"},
                 {TC_COHERENCE_CHANNEL, "channel"}};
    size_t want = cfg->coh_samples;
    /* ~0.5 ms a sample pair on an idle machine; a busy one stops early */
    uint64_t budget = (cfg->smoke ? 5 : cfg->quick ? 10 : 40) * 1000000000ull;
    FILE *cdf = csv_open("coherence_cdf", "series,fraction,us");
    coh_target t;
    coh_target_single(&t, r);
    for (size_t i = 0; i < 2; i++) {
        progress("coherence: %s, %zu changes and as many PUBLISHes",
                 modes[i].name, want);
        coh_series *sh =
            coh_measure(&t, 1, modes[i].mode, modes[i].name, want, budget);
        if (sh->n_tc == 0 || sh->n_raw == 0)
            die("coherence: %s: no sample", modes[i].name);
        if (sh->n_tc < want)
            progress("  over its time budget: stopped at %zu", sh->n_tc);
        report(modes[i].name, sh, cdf);
        coh_free(sh, 1, want);
    }
    csv_close(cdf, "coherence_cdf");
}
