/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ratio: the library's own L1 (l1.c, not a model of it) replayed on
 * access traces at several sizes, beside Belady's optimum on the same
 * trace and size. A miss inserts the key, as a read-through cache does.
 *
 * Every policy the L1 has (LRU, LFU, W-TinyLFU), each as a one-shard
 * L1: with more shards the bound is split by key hash, and each shard's
 * policy sees only its keys, which is no longer the policy alone. The
 * library's default sharding is in the CSV as "lru-16shards", to show
 * what the split costs. --policy NAME replays one policy (and OPT).
 *
 * arc-oltp at 250/1000/2000 entries must reproduce the published exact
 * LRU and OPT figures (traces README) to the hundredth: the check that
 * the replay, the trace reader and the OPT are right.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "l1.h"
#include "traces.h"

#define MAX_TRACES 32
#define KEYLEN 12 /* a decimal uint32 and its NUL */

static const uint32_t arc_sizes[] = {250, 1000, 2000};
static const double arc_lru_pub[] = {16.47, 32.83, 42.47};
static const double arc_opt_pub[] = {38.43, 53.61, 60.40};
#define NARC (sizeof(arc_sizes) / sizeof(arc_sizes[0]))
/* the sizes of other traces, in % of their keys (or working set) */
static const unsigned size_pcts[] = {5, 10, 20, 40, 60};
#define NPCTS (sizeof(size_pcts) / sizeof(size_pcts[0]))
/* the curves of the plot: the policies, and the optimum */
enum { P_LRU, P_LRU16, P_LFU, P_TINYLFU, P_OPT, NPOLICY };
static const char *const policy_names[NPOLICY] = {"lru", "lru-16shards", "lfu",
                                                  "tinylfu", "opt"};
/* the L1's tc_policy for each curve but OPT */
static const int l1_policy[NPOLICY] = {TC_POLICY_LRU, TC_POLICY_LRU,
                                       TC_POLICY_LFU, TC_POLICY_TINYLFU, -1};

/* The default set: arc-oltp (the published reference) and two small
   LIRS traces; --all takes every trace file in the directory. */
static const char *const default_traces[] = {"arc-oltp.gz", "lirs-gli.gz",
                                             "lirs-multi1.gz"};
#define NDEFAULT (sizeof(default_traces) / sizeof(default_traces[0]))

static char trace_list[512]; /* for the plot: names, space-separated */

const char *ratio_trace_names(void)
{
    return trace_list;
}

/* ---- the L1 replay ---- */

typedef struct keytab {
    char (*s)[KEYLEN];
    uint8_t *len;
    uint64_t *hash;
} keytab;

static void keytab_make(keytab *kt, uint32_t nkeys)
{
    kt->s = xcalloc(nkeys, sizeof(*kt->s));
    kt->len = xcalloc(nkeys, sizeof(*kt->len));
    kt->hash = xcalloc(nkeys, sizeof(*kt->hash));
    for (uint32_t k = 0; k < nkeys; k++) {
        kt->len[k] = (uint8_t)snprintf(kt->s[k], KEYLEN, "%u", (unsigned)k);
        kt->hash[k] = tc__hash(kt->s[k], kt->len[k]);
    }
}

static void keytab_free(keytab *kt)
{
    free(kt->s);
    free(kt->len);
    free(kt->hash);
}

/* Nothing expires in a replay, and a fixed clock spares a clock_gettime
   per access. */
static uint64_t fixed_clock(void *ud)
{
    (void)ud;
    return 1;
}

static uint64_t l1_hits(const trace *t, const keytab *kt, uint32_t entries,
                        uint32_t shards, int policy)
{
    tc__l1 *l1;
    tc__l1_config cfg = {.max_entries = entries,
                         .max_bytes = UINT64_MAX / 4, /* no byte bound */
                         .shards = shards,
                         .clock = fixed_clock,
                         .policy = policy,
                         /* W-TinyLFU's sketch seed, fixed: the same
                            figures on every run (a cache draws its own) */
                         .seed = 0x7C11};
    if (tc__l1_create(&l1, &cfg) != TC_OK)
        die("ratio: tc__l1_create failed");
    tc_value *v = tc__value_new("x", 1);
    if (!v)
        die("out of memory");
    uint64_t hits = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint32_t k = t->ids[i];
        tc_value *got =
            tc__l1_get(l1, kt->s[k], kt->len[k], kt->hash[k], UINT64_MAX);
        if (got) {
            hits++;
            tc_value_release(got);
        } else if (tc__l1_put(l1, kt->s[k], kt->len[k], kt->hash[k], v,
                              UINT64_MAX, TC__EPOCH_ANY) != TC_OK) {
            die("ratio: tc__l1_put refused an entry");
        }
    }
    tc__l1_stats st;
    tc__l1_counts(l1, &st);
    if (st.entries > entries)
        die("ratio: the L1 holds %llu entries over its bound of %u",
            (unsigned long long)st.entries, (unsigned)entries);
    tc_value_release(v);
    tc__l1_destroy(l1);
    return hits;
}

/* ---- one trace ---- */

static double pct(uint64_t hits, size_t n)
{
    return 100.0 * (double)hits / (double)n;
}

static int is_arc_oltp(const trace *t)
{
    return !strcmp(t->name, "arc-oltp");
}

/* The published check: a mismatch is a bug, said loudly. */
static void arc_check(const double lru[], const double opt[])
{
    char got[160], pub[160];
    int ok = 1;
    size_t a = 0, b = 0;
    for (size_t i = 0; i < NARC; i++) {
        /* to the hundredth: the rounded figure equals the published one */
        ok &= (long)(lru[i] * 100 + 0.5) == (long)(arc_lru_pub[i] * 100 + 0.5);
        ok &= (long)(opt[i] * 100 + 0.5) == (long)(arc_opt_pub[i] * 100 + 0.5);
        a += (size_t)snprintf(got + a, sizeof(got) - a, "%s%.2f/%.2f",
                              i ? ", " : "", lru[i], opt[i]);
        b += (size_t)snprintf(pub + b, sizeof(pub) - b, "%s%.2f/%.2f",
                              i ? ", " : "", arc_lru_pub[i], arc_opt_pub[i]);
    }
    add_note("ratio: arc-oltp at 250/1000/2000 entries, LRU/OPT %%: %s; "
             "published %s: %s",
             got, pub, ok ? "reproduced" : "MISMATCH");
    if (!ok)
        progress("ratio: arc-oltp does NOT reproduce the published figures");
}

static void sizes_of(const trace *t, uint32_t *sizes, size_t *n)
{
    *n = 0;
    if (is_arc_oltp(t)) {
        for (size_t i = 0; i < NARC; i++)
            sizes[(*n)++] = arc_sizes[i];
        return;
    }
    for (size_t i = 0; i < NPCTS; i++) {
        uint32_t s = (uint32_t)((uint64_t)t->size_base * size_pcts[i] / 100);
        if (s > 0 && (*n == 0 || s > sizes[*n - 1]))
            sizes[(*n)++] = s;
    }
}

/* Grouped by policy, so that each curve's rows are contiguous (gnuplot
   breaks a line at every row it filters out). */
static void write_csv(FILE *csv, const trace *t, const uint32_t *sizes,
                      size_t nsizes, uint64_t hits[][NPOLICY], const int *run)
{
    for (int p = 0; p < NPOLICY; p++)
        for (size_t i = 0; run[p] && i < nsizes; i++) {
            double h = pct(hits[i][p], t->n), o = pct(hits[i][P_OPT], t->n);
            fprintf(csv, "%s,%s,%u,%zu,%llu,%.4f,%.4f,%.4f\n", t->name,
                    policy_names[p], sizes[i], t->n,
                    (unsigned long long)hits[i][p], h, o, h / o);
        }
}

static void arc_rows(const double lru_pct[], const double opt_pct[])
{
    char metric[96];
    for (size_t i = 0; i < NARC; i++) {
        snprintf(metric, sizeof(metric), "arc-oltp_lru_%u_vs_published",
                 arc_sizes[i]);
        add_row("ratio", metric, U_PCT, lru_pct[i], arc_lru_pub[i],
                "published exact LRU (traces README)");
        snprintf(metric, sizeof(metric), "arc-oltp_opt_%u_vs_published",
                 arc_sizes[i]);
        add_row("ratio", metric, U_PCT, opt_pct[i], arc_opt_pub[i],
                "published Belady OPT (traces README)");
    }
    arc_check(lru_pct, opt_pct);
}

/* Which curves to compute: every one, or --policy's and OPT. */
static void pick_policies(const bench_cfg *cfg, int *run)
{
    size_t n = cfg->policy ? strlen(cfg->policy) : 0;
    for (int p = 0; p < NPOLICY; p++) {
        const char *name = policy_names[p];
        /* "lru" also picks "lru-16shards" */
        int named = cfg->policy && !strncmp(name, cfg->policy, n) &&
                    (name[n] == '\0' || name[n] == '-');
        run[p] = p == P_OPT || !cfg->policy || named;
    }
}

static void replay_trace(const trace *t, FILE *csv, const int *run)
{
    uint32_t sizes[NPCTS + NARC];
    uint64_t hits[NPCTS + NARC][NPOLICY];
    size_t nsizes;
    double lru_pct[NARC], opt_pct[NARC];
    char metric[96];
    keytab kt;
    uint64_t t0 = now_ns();
    keytab_make(&kt, t->nkeys);
    uint32_t *next = belady_next(t);
    sizes_of(t, sizes, &nsizes);
    for (size_t i = 0; i < nsizes; i++) {
        char line[256];
        size_t len = 0;
        double o;
        hits[i][P_OPT] = belady_hits(t, next, sizes[i]);
        o = pct(hits[i][P_OPT], t->n);
        for (int p = 0; p < P_OPT; p++) {
            if (!run[p])
                continue;
            hits[i][p] =
                l1_hits(t, &kt, sizes[i], p == P_LRU16 ? 16 : 1, l1_policy[p]);
            double h = pct(hits[i][p], t->n);
            len += (size_t)snprintf(line + len, sizeof(line) - len,
                                    "%s %.2f %%, ", policy_names[p], h);
            if (p == P_LRU16)
                continue;
            snprintf(metric, sizeof(metric), "%s_%s_%u_hit_pct", t->name,
                     policy_names[p], sizes[i]);
            add_row("ratio", metric, U_PCT, h, o,
                    "Belady OPT, same trace and size");
        }
        if (is_arc_oltp(t) && run[P_LRU]) {
            lru_pct[i] = pct(hits[i][P_LRU], t->n);
            opt_pct[i] = o;
        }
        progress("ratio: %s at %u entries: %sOPT %.2f %%", t->name, sizes[i],
                 line, o);
    }
    write_csv(csv, t, sizes, nsizes, hits, run);
    if (is_arc_oltp(t) && run[P_LRU])
        arc_rows(lru_pct, opt_pct);
    free(next);
    keytab_free(&kt);
    progress("ratio: %s done in %.1f s", t->name,
             (double)(now_ns() - t0) / 1e9);
}

/* ---- which traces ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_trace_file(const char *name)
{
    size_t n = strlen(name);
    return n > 3 &&
           (!strcmp(name + n - 3, ".gz") || !strcmp(name + n - 3, ".xz"));
}

/* The trace files to replay, malloc'd paths; 0 when there are none. */
static int pick_files(const bench_cfg *cfg, char **paths)
{
    int n = 0;
    char path[4096];
    for (int i = 0; i < cfg->ntrace_files && n < MAX_TRACES; i++)
        paths[n++] = strdup(cfg->trace_files[i]);
    if (cfg->ntrace_files || !cfg->traces_dir)
        return n;
    DIR *d = opendir(cfg->traces_dir);
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d)) && n < MAX_TRACES;) {
        int wanted = cfg->all && is_trace_file(e->d_name);
        for (size_t i = 0; i < NDEFAULT && !wanted; i++)
            wanted = !strcmp(e->d_name, default_traces[i]);
        if (!wanted)
            continue;
        snprintf(path, sizeof(path), "%s/%s", cfg->traces_dir, e->d_name);
        paths[n++] = strdup(path);
    }
    closedir(d);
    qsort(paths, (size_t)n, sizeof(*paths), cmp_str);
    return n;
}

static void list_trace(const trace *t)
{
    size_t len = strlen(trace_list);
    snprintf(trace_list + len, sizeof(trace_list) - len, "%s%s",
             len ? " " : "", t->name);
}

void bench_ratio(const bench_cfg *cfg)
{
    char *paths[MAX_TRACES];
    int n = pick_files(cfg, paths), done = 0, run[NPOLICY];
    pick_policies(cfg, run);
    FILE *csv = csv_open("ratio", "trace,policy,entries,requests,hits,"
                                  "hit_pct,opt_pct,frac_of_opt");
    for (int i = 0; i < n; i++) {
        trace t;
        progress("ratio: reading %s", paths[i]);
        if (trace_load(paths[i], &t) == 0) {
            progress("ratio: %s: %zu accesses, %u keys", t.name, t.n,
                     (unsigned)t.nkeys);
            replay_trace(&t, csv, run);
            list_trace(&t);
            trace_free(&t);
            done++;
        }
        free(paths[i]);
    }
    if (cfg->ntrace_files && done < cfg->ntrace_files)
        die("ratio: %d of %d trace files could not be read",
            cfg->ntrace_files - done, cfg->ntrace_files);
    if (!done)
        progress("ratio: no trace files in %s: synthetic traces instead",
                 cfg->traces_dir ? cfg->traces_dir : "(none given)");
    for (int k = 0; (!done || cfg->synthetic) && k < SYN_COUNT; k++) {
        trace t;
        trace_synthetic(k, &t);
        replay_trace(&t, csv, run);
        list_trace(&t);
        trace_free(&t);
    }
    csv_close(csv, "ratio");
}
