/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tc-bench: what tiercache costs over the floor it is built on. Shared
 * declarations of the benchmark's files:
 *
 *   main.c           arguments, the scenario list, the run
 *   util.c           messages, clocks, percentiles, Zipf keys, processes
 *   report.c         result rows, the table, summary.tsv, CSV files
 *   plot.c           gnuplot, when installed
 *   l1_hits.c        l1: warm tc_get hits against bare and locked uthash
 *   io.c             l2 and set: round trips against raw hiredis; l2's
 *                    tc_warm against a raw SCAN + pipelined GET
 *   traces.c         trace files (ARC, LIRS, cache2k) and synthetic ones
 *   belady.c         Belady's optimal hit ratio
 *   hit_ratio.c      ratio: the L1's policy replayed on the traces
 *   coherence_lag.c  coherence: a change in one process seen by another
 *   reconnect.c      coherence: a lost link, the L1 emptied or revalidated
 *   memory.c         memory: bytes per entry, the byte bound
 *   stampede.c       stampede: tc_fetch on one cold key
 *   billgen.c        billgen: the example service under wrk, cached vs
 *                    --no-cache, beside /health and a static 404
 *   billgen_svc.c    starting, stopping and asking a billgen instance
 *   cluster.c        cluster: Redis Cluster and Sentinel beside one node
 *                    and raw hiredis to the key's node; failover times
 *   faults.c         faults: the fault table of tests/faults.h (Redis
 *                    killed, frozen, paused, ...): failures, recovery,
 *                    stale reads
 *
 * Every figure is a row: a value beside the floor it is compared with,
 * measured in the same run.
 */
#ifndef TC_BENCH_H
#define TC_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "harness.h"

#define RESULTS_DIR "bench/results"
#define KEY_CAP 32
#define RKEY_CAP (TC_NS_MAX + KEY_CAP + 4) /* <ns>:{<key>} */
#define TTL_MS 300000u

enum {
    SC_MEMORY = 1 << 0,
    SC_RATIO = 1 << 1,
    SC_L1 = 1 << 2,
    SC_L2 = 1 << 3,
    SC_SET = 1 << 4,
    SC_COHERENCE = 1 << 5,
    SC_STAMPEDE = 1 << 6,
    SC_BILLGEN = 1 << 7,
    SC_CLUSTER = 1 << 8,
    SC_FAULTS = 1 << 9,
    SC_COMPRESS = 1 << 10
};
/* The scenarios that talk to Redis; the others run without a server. */
#define SC_NEEDS_REDIS                                                        \
    (SC_L1 | SC_L2 | SC_SET | SC_COHERENCE | SC_STAMPEDE | SC_BILLGEN |       \
     SC_CLUSTER | SC_COMPRESS)

typedef struct bench_cfg {
    int quick, smoke, all;    /* run sizes: --quick, --smoke, --all */
    unsigned scenarios;       /* SC_* bits */
    int plots;                /* 0: --no-plots */
    int max_threads;          /* l1: 1 .. this many threads */
    size_t l1_ops;            /* lookups per thread and trial */
    int l1_trials;            /* odd, so the median is one of them */
    size_t io_ops;            /* timed round trips per side and case */
    uint64_t case_budget_ns;  /* past it a case stops, io_ops or not */
    size_t coh_samples;       /* coherence: changes timed per mode */
    size_t mem_entries;       /* memory: inserts for bytes per entry */
    const char *srcdir;       /* the source tree: gnuplot scripts */
    const char *traces_dir;   /* ratio: where the trace files are */
    const char **trace_files; /* ratio: files named on the command line */
    int ntrace_files;
    int synthetic;       /* ratio: also (or, without traces, only) synthetic */
    const char *policy;  /* ratio: only this policy (and OPT); NULL: all */
    const char *billgen; /* billgen: the executable */
} bench_cfg;

/* ---- util.c ---- */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void progress(const char *fmt, ...);
/* In a forked child: die() then ends it with _exit, not exit. */
void mark_child(void);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
uint64_t now_ns(void);
char *make_payload(size_t len);
const char *size_name(size_t n); /* 64B, 1KiB, 16KiB */
int cmp_u64(const void *a, const void *b);
double median(double *v, int n); /* sorts v */
/* The nearest-rank percentile of n sorted latencies (ns), in us. */
double pct_us(const uint64_t *sorted, size_t n, double pct);
uint64_t splitmix64(uint64_t *state);
/* n ranks in [0, nkeys) drawn from Zipf(s), rank 0 the most frequent. */
uint32_t *zipf_sequence(size_t n, uint32_t nkeys, double s, uint64_t seed);
/* Starts argv (searched in PATH) with its stdout on a pipe (out_fd >= 0)
   or on ours (out_fd NULL). Returns the pid; -1 with errno set. */
pid_t spawn(const char *const argv[], int *out_fd);
/* Waits for pid; its exit status, or -1 if it did not exit normally. */
int wait_exit(pid_t pid);
void make_results_dir(void);

/* ---- report.c ---- */
/* U_PER: a small rate (queries per request), to the thousandth; U_SEC:
   seconds (a failover), to the millisecond. */
typedef enum { U_OPS, U_USEC, U_PCT, U_BYTES, U_COUNT, U_PER, U_SEC } unit;
void add_row(const char *scenario, const char *metric, unit u, double value,
             double floor, const char *floor_is);
/* A line printed under the table. */
__attribute__((format(printf, 1, 2))) void add_note(const char *fmt, ...);
void print_table(const char *env);
void write_summary(void);
/* bench/results/<name>.csv, opened for writing with its header line. */
FILE *csv_open(const char *name, const char *header);
void csv_close(FILE *f, const char *name);
/* Appends the CDF of n sorted latencies (ns) to f as rows
   "<label>,<fraction>,<us>", thinned to a few hundred points. */
void csv_cdf(FILE *f, const char *label, const uint64_t *sorted, size_t n);
/* Whether bench/results/<name>.csv was written by this run. */
int csv_written(const char *name);

/* ---- plot.c ---- */
void plot_all(const bench_cfg *cfg);

/* ---- coherence_lag.c: the lag machinery, cluster.c's too ---- */
#define COH_TARGETS_MAX 2
/* Where a lag is measured: servers, and the raw connections of the floor.
   The callbacks run in both processes (the reader is forked). */
typedef struct coh_target {
    const char *name;
    /* tc_options_init'ed and pointed at the servers (ns is set after) */
    void (*options)(const void *ud, tc_options *o);
    /* a raw connection for the floor: PUBLISH (pub 1) or SUBSCRIBE */
    redisContext *(*raw)(const void *ud, int pub);
    const void *ud;
} coh_target;
/* One target's samples (ns), in a mapping shared with the reader. */
typedef struct coh_series {
    size_t n_tc, n_raw, lost, skipped;
    uint64_t *tc, *raw;
    uint8_t *is_del; /* per tc sample: a tc_del (else a tc_set) */
} coh_series;
/* The bench's redis-server as a target. */
void coh_target_single(coh_target *t, const th_redis *r);
/* Times up to `want` changes per target (tc_set and tc_del in turn) and
   as many raw PUBLISHes, in coherence mode `mode` (tc_coherence), the
   targets taking turns key by key, within budget_ns. Returns nt series;
   coh_free them. */
coh_series *coh_measure(const coh_target *t, int nt, int mode, const char *tag,
                        size_t want, uint64_t budget_ns);
void coh_free(coh_series *s, int nt, size_t want);

/* ---- the scenarios ---- */
void bench_l1(const th_redis *r, const bench_cfg *cfg);
void bench_l2(const th_redis *r, const bench_cfg *cfg);
void bench_reconnect(const th_redis *r, const bench_cfg *cfg);
void bench_set(const th_redis *r, const bench_cfg *cfg);
/* Codec ratio and speed on invoice JSON, and L2 hits with each codec. */
void bench_compress(const th_redis *r, const bench_cfg *cfg);
void bench_ratio(const bench_cfg *cfg);
const char *ratio_trace_names(void); /* space-separated, for the plot */
void bench_coherence(const th_redis *r, const bench_cfg *cfg);
void bench_memory(const bench_cfg *cfg);
void bench_stampede(const th_redis *r, const bench_cfg *cfg);
/* 0 when done or skipped (a SKIP line); -1 when the service failed. */
int bench_billgen(const th_redis *r, const bench_cfg *cfg);
/* 0 when done; -1 when a cluster, a sentinel group or a failover
   failed (said under the table). */
int bench_cluster(const th_redis *r, const bench_cfg *cfg);
/* Starts a redis-server of its own per fault. 0 when done; -1 when a
   fault's phase failed to run (said under the table). */
int bench_faults(const bench_cfg *cfg);

/* ---- shared by the Redis scenarios (io.c) ---- */
/* th_options plus strict (a Redis failure stops the bench rather than
   passing for a fast miss) and a roomy command timeout. */
tc_cache *open_cache(const th_redis *r, int unix_socket,
                     uint64_t l1_max_entries, tc_options *o);
/* A raw hiredis connection set up like tiercache's own, with a 2 s
   timeout. */
redisContext *raw_connect(const th_redis *r, int unix_socket);
/* One raw GET of rkey on ctx, timed: nanoseconds. Anything but a string
   back ends the run (die, naming the scenario). */
uint64_t raw_get_ns(redisContext *ctx, const char *rkey, const char *scenario);
/* The Redis name of a key, as docs/data-format.md has it. */
void redis_key(char *out, size_t cap, const tc_options *o, const char *key);
/* One timed operation: its i-th run, returning nanoseconds. */
typedef uint64_t (*timed_op)(void *ctx, size_t i);
/* Times up to n runs of each of the nsides ops, into lat[side], the
   sides taking turns in short blocks (after an untimed warm-up), until
   cfg->case_budget_ns is spent; the count per side. */
size_t measure_sides(const bench_cfg *cfg, const timed_op *ops, int nsides,
                     void *ctx, uint64_t **lat, size_t n);
/* n latencies (ns) as back-to-back throughput. */
double ops_per_s(const uint64_t *lat, size_t n);

#endif /* TC_BENCH_H */
