/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tc-bench: what tiercache costs over the floor it is built on. Every
 * figure is printed beside a floor measured in the same run, on the same
 * keys and bytes, so that the ratio holds on any machine (docs/
 * benchmarks.md says what each one means). It runs its own redis-server
 * (tests/harness.h: a free port, never 6379), prints one table on stdout
 * and progress on stderr, and writes bench/results/ under the current
 * directory: summary.tsv, a CSV per scenario and, with gnuplot, PNGs.
 * billgen also runs the example service (examples/billgen) and wrk.
 */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#ifndef BENCH_SRCDIR
#define BENCH_SRCDIR "."
#endif
#define MAX_FILES 32

static const struct {
    const char *name;
    unsigned bit;
    const char *what;
} scenarios[] = {
    {"memory", SC_MEMORY, "bytes per L1 entry (RSS), the byte bound"},
    {"ratio", SC_RATIO, "hit ratio on traces vs Belady's optimum"},
    {"l1", SC_L1, "tc_get L1 hits vs uthash floors, 1..N threads"},
    {"l2", SC_L2, "tc_get from Redis vs raw GET; tc_warm vs SCAN+GET"},
    {"set", SC_SET, "tc_set vs raw hiredis SET"},
    {"compress", SC_COMPRESS, "zstd, lz4 on invoice JSON; L2 hits with each"},
    {"coherence", SC_COHERENCE, "change -> other process's L1 vs PUBLISH"},
    {"stampede", SC_STAMPEDE, "tc_fetch on one cold key vs cache-aside"},
    {"billgen", SC_BILLGEN, "the billgen service under wrk vs its /health"},
    {"cluster", SC_CLUSTER, "Cluster, Sentinel vs one node vs raw; failover"},
    {"faults", SC_FAULTS, "Redis killed, frozen, paused...: fails, staleness"},
};
#define NSCEN (sizeof(scenarios) / sizeof(scenarios[0]))

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: tc-bench [options] [scenario ...] [trace file ...]\n"
        "options:\n"
        "  --quick        fewer rounds: seconds, not minutes\n"
        "  --smoke        fewer still: a check that all runs\n"
        "  --all          every trace file in the trace directory\n"
        "  --traces DIR   trace directory (default: "
        "<srcdir>/../shared/traces)\n"
        "  --srcdir DIR   the source tree, for the plot scripts\n"
        "  --threads N    l1 on 1..N threads (default 8; on a 2-core machine\n"
        "                 the rows above 2 threads are oversubscribed)\n"
        "  --synthetic    add the synthetic traces to the files\n"
        "  --policy NAME  ratio: only lru, lfu or tinylfu (and OPT)\n"
        "  --no-plots     no gnuplot\n"
        "  --billgen PATH the billgen executable (default: "
        "<builddir>/examples/billgen/\n"
        "                 billgen, beside this bench/)\n"
        "scenarios (default: all, in this order):\n");
    for (size_t i = 0; i < NSCEN; i++)
        fprintf(f, "  %-10s %s\n", scenarios[i].name, scenarios[i].what);
    fprintf(f, "Any other argument is a trace file for ratio (.gz, .xz or "
               "plain; ARC, LIRS or\nbinary int32 keys). Results go to "
               "./" RESULTS_DIR "/.\n");
}

static unsigned scenario_bit(const char *name)
{
    for (size_t i = 0; i < NSCEN; i++)
        if (!strcmp(name, scenarios[i].name))
            return scenarios[i].bit;
    return 0;
}

static void set_sizes(bench_cfg *cfg)
{
    /* Many short trials rather than a few long ones: the median of many
       shrugs off the bursts of noise a shared (virtual) machine has. */
    cfg->l1_ops = cfg->smoke   ? (size_t)1 << 14
                  : cfg->quick ? (size_t)1 << 17
                               : (size_t)1 << 19;
    cfg->l1_trials = cfg->smoke ? 1 : cfg->quick ? 5 : 11;
    cfg->io_ops = cfg->smoke ? 200 : cfg->quick ? 3000 : 20000;
    cfg->case_budget_ns = (cfg->smoke   ? 100
                           : cfg->quick ? 300
                                        : 2000) *
                          (uint64_t)1000000;
    cfg->coh_samples = cfg->smoke ? 60 : cfg->quick ? 1000 : 5000;
    cfg->mem_entries = cfg->smoke ? 20000 : cfg->quick ? 100000 : 200000;
}

/* An option's value: argv[++*i]. */
static const char *value_of(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "tc-bench: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

/* One argument; 0 ok, 1 help, -1 bad. */
static int parse_one(int argc, char **argv, int *i, bench_cfg *cfg)
{
    const char *a = argv[*i], *v;
    unsigned bit = scenario_bit(a);
    if (bit)
        cfg->scenarios |= bit;
    else if (!strcmp(a, "--quick"))
        cfg->quick = 1;
    else if (!strcmp(a, "--smoke"))
        cfg->smoke = cfg->quick = 1;
    else if (!strcmp(a, "--all"))
        cfg->all = 1;
    else if (!strcmp(a, "--synthetic"))
        cfg->synthetic = 1;
    else if (!strcmp(a, "--no-plots"))
        cfg->plots = 0;
    else if (!strcmp(a, "--traces") || !strcmp(a, "--srcdir")) {
        if (!(v = value_of(argc, argv, i)))
            return -1;
        *(a[2] == 't' ? &cfg->traces_dir : &cfg->srcdir) = v;
    } else if (!strcmp(a, "--policy")) {
        if (!(v = value_of(argc, argv, i)))
            return -1;
        if (strcmp(v, "lru") && strcmp(v, "lfu") && strcmp(v, "tinylfu")) {
            fprintf(stderr, "tc-bench: --policy: lru, lfu or tinylfu\n");
            return -1;
        }
        cfg->policy = v;
    } else if (!strcmp(a, "--billgen")) {
        if (!(v = value_of(argc, argv, i)))
            return -1;
        cfg->billgen = v;
    } else if (!strcmp(a, "--threads")) {
        if (!(v = value_of(argc, argv, i)))
            return -1;
        cfg->max_threads = atoi(v);
        if (cfg->max_threads < 1 || cfg->max_threads > 16) {
            fprintf(stderr, "tc-bench: --threads: 1 to 16\n");
            return -1;
        }
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
        return 1;
    else if (a[0] != '-' && access(a, R_OK) == 0 &&
             cfg->ntrace_files < MAX_FILES) {
        cfg->trace_files[cfg->ntrace_files++] = a;
        cfg->scenarios |= SC_RATIO;
    } else {
        fprintf(stderr, "tc-bench: unknown argument or unreadable file: %s\n",
                a);
        return -1;
    }
    return 0;
}

/* <builddir>/examples/billgen/billgen, builddir being where this
   executable's bench/ is; relative to the current directory if
   /proc/self/exe cannot say. */
static const char *default_billgen(void)
{
    static char path[PATH_MAX + 32];
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;
    if (n <= 0)
        return "examples/billgen/billgen";
    exe[n] = '\0';
    for (int up = 0; up < 2; up++) { /* the file, then bench/ */
        if (!(slash = strrchr(exe, '/')))
            return "examples/billgen/billgen";
        *slash = '\0';
        if (up == 1 && !strcmp(slash + 1, ".libs") && strrchr(exe, '/'))
            *strrchr(exe, '/') = '\0'; /* a libtool build */
    }
    snprintf(path, sizeof(path), "%s/examples/billgen/billgen",
             exe[0] ? exe : "");
    return path;
}

/* 0 ok, 1 help was asked for, -1 a bad argument. */
static int parse_args(int argc, char **argv, bench_cfg *cfg)
{
    static char traces[4096];
    static const char *files[MAX_FILES];
    memset(cfg, 0, sizeof(*cfg));
    cfg->plots = 1;
    cfg->max_threads = 8;
    cfg->srcdir = BENCH_SRCDIR;
    cfg->trace_files = files;
    for (int i = 1; i < argc; i++) {
        int rc = parse_one(argc, argv, &i, cfg);
        if (rc != 0)
            return rc;
    }
    if (!cfg->scenarios)
        cfg->scenarios = ~0u;
    if (!cfg->billgen)
        cfg->billgen = default_billgen();
    if (!cfg->traces_dir) {
        snprintf(traces, sizeof(traces), "%s/../shared/traces", cfg->srcdir);
        cfg->traces_dir = traces;
    }
    set_sizes(cfg);
    return 0;
}

static void describe_env(const th_redis *r, const bench_cfg *cfg, char *out,
                         size_t cap)
{
    char ver[32] = "-";
    redisReply *rep = r ? th_redis_cmd(r, "INFO server") : NULL;
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
             sysconf(_SC_NPROCESSORS_ONLN),
             cfg->smoke   ? "smoke"
             : cfg->quick ? "quick"
                          : "full",
#ifdef __OPTIMIZE__
             ""
#else
             " (UNOPTIMIZED build: figures mean little)"
#endif
    );
}

/* 0, or 1 when a scenario failed without stopping the others. */
static int run(const bench_cfg *cfg, const th_redis *r)
{
    unsigned s = cfg->scenarios;
    int failed = 0;
    if (s & SC_MEMORY) /* first: a fresh heap measures RSS growth best */
        bench_memory(cfg);
    if (s & SC_RATIO)
        bench_ratio(cfg);
    if (s & SC_L1)
        bench_l1(r, cfg);
    if (s & SC_L2)
        bench_l2(r, cfg);
    if (s & SC_SET)
        bench_set(r, cfg);
    if (s & SC_COMPRESS)
        bench_compress(r, cfg);
    if (s & SC_COHERENCE) {
        bench_coherence(r, cfg);
        bench_reconnect(r, cfg);
    }
    if (s & SC_STAMPEDE)
        bench_stampede(r, cfg);
    if (s & SC_BILLGEN) /* it loads the whole machine */
        failed |= bench_billgen(r, cfg) != 0;
    if (s & SC_CLUSTER) /* 6 more servers, then 4 failovers */
        failed |= bench_cluster(r, cfg) != 0;
    if (s & SC_FAULTS) /* last: forks its load, a server per fault */
        failed |= bench_faults(cfg) != 0;
    return failed;
}

int main(int argc, char **argv)
{
    bench_cfg cfg;
    char env[200];
    int rc = parse_args(argc, argv, &cfg);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a dead peer is an error, not a crash */
    uint64_t t0 = now_ns();
    th_redis *r = NULL;
    if (cfg.scenarios & SC_NEEDS_REDIS) {
        r = th_redis_start();
        if (!r)
            die("cannot start a redis-server");
    }
    describe_env(r, &cfg, env, sizeof(env));
    if (r)
        progress("%s; redis on port %d", env, th_redis_port(r));
    int failed = run(&cfg, r);
    th_redis_stop(r);
    print_table(env);
    write_summary();
    if (cfg.plots)
        plot_all(&cfg);
    progress("done in %.1f s%s", (double)(now_ns() - t0) / 1e9,
             failed ? "; a scenario FAILED (see above)" : "");
    return failed;
}
