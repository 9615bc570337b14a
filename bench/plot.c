/* SPDX-License-Identifier: BSD-3-Clause */
/* PNG plots of the CSV files, by the gnuplot scripts in bench/ (run
   from the source tree), when gnuplot is installed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define VARS_CAP 4096

static int have_gnuplot(void)
{
    const char *argv[] = {"gnuplot", "--version", NULL};
    int fd;
    pid_t pid = spawn(argv, &fd);
    if (pid < 0)
        return 0;
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    close(fd);
    return wait_exit(pid) == 0;
}

/* The distinct values of the first column of bench/results/<name>.csv,
   in order of appearance, space-separated (the names have no spaces). */
static void series_of(const char *name, char *out, size_t cap)
{
    char path[128], line[512];
    size_t len = 0;
    out[0] = '\0';
    snprintf(path, sizeof(path), "%s/%s.csv", RESULTS_DIR, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (!fgets(line, sizeof(line), f)) /* the header */
        line[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, ",\n")] = '\0';
        char padded[520];
        snprintf(padded, sizeof(padded), " %s ", line);
        char have[VARS_CAP + 2];
        snprintf(have, sizeof(have), " %s ", out);
        if (strstr(have, padded) || len + strlen(line) + 2 >= cap)
            continue;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " " : "",
                                line);
    }
    fclose(f);
}

/* The series of `all` that start with `prefix`, space-separated. */
static void filter_prefix(const char *all, const char *prefix, char *out,
                          size_t cap)
{
    char buf[VARS_CAP];
    size_t len = 0, plen = strlen(prefix);
    out[0] = '\0';
    snprintf(buf, sizeof(buf), "%s", all);
    for (char *save, *w = strtok_r(buf, " ", &save); w;
         w = strtok_r(NULL, " ", &save))
        if (!strncmp(w, prefix, plen) && len + strlen(w) + 2 < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s",
                                    len ? " " : "", w);
}

/* gnuplot -e "<vars>; in='...'; out='...'" <srcdir>/bench/<script> */
static void run_script(const bench_cfg *cfg, const char *script,
                       const char *name, const char *vars)
{
    char path[4096], e[VARS_CAP + 256];
    snprintf(path, sizeof(path), "%s/bench/%s", cfg->srcdir, script);
    if (access(path, R_OK) != 0) {
        progress("plot: %s: %s; no %s.png", path, strerror(errno), name);
        return;
    }
    snprintf(e, sizeof(e), "%s%sin='%s/%s.csv'; out='%s/%s.png'", vars,
             vars[0] ? "; " : "", RESULTS_DIR, name, RESULTS_DIR, name);
    const char *argv[] = {"gnuplot", "-e", e, path, NULL};
    pid_t pid = spawn(argv, NULL);
    if (pid < 0 || wait_exit(pid) != 0)
        progress("plot: gnuplot %s failed; no %s.png", script, name);
    else
        progress("wrote %s/%s.png", RESULTS_DIR, name);
}

/* Latency distributions, one panel per series prefix ("tcp/..." and
   "unix/...", "tracking/..." and "channel/..."). */
static void plot_cdf(const bench_cfg *cfg, const char *name,
                     const char *const *panels, int npanels, const char *title)
{
    char all[VARS_CAP], sel[VARS_CAP], vars[VARS_CAP + 512];
    size_t len;
    series_of(name, all, sizeof(all));
    len = (size_t)snprintf(vars, sizeof(vars), "title='%s'; n=%d", title,
                           npanels);
    for (int i = 0; i < npanels; i++) {
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "%s/", panels[i]);
        filter_prefix(all, prefix, sel, sizeof(sel));
        len += (size_t)snprintf(vars + len, sizeof(vars) - len,
                                "; t%d='%s'; s%d='%s'", i + 1, panels[i],
                                i + 1, sel);
        if (len >= sizeof(vars))
            return;
    }
    run_script(cfg, "latency_cdf.gp", name, vars);
}

void plot_all(const bench_cfg *cfg)
{
    static const char *const sockets[] = {"tcp", "unix"};
    static const char *const modes[] = {"tracking", "channel"};
    char vars[1024];
    if (!have_gnuplot()) {
        progress("gnuplot not found: no plots (Debian: apt-get install "
                 "gnuplot-nox)");
        return;
    }
    if (csv_written("l1"))
        run_script(cfg, "l1_threads.gp", "l1", "");
    if (csv_written("l2_cdf"))
        plot_cdf(cfg, "l2_cdf", sockets, 2,
                 "L2 hit latency: tc_get (L1 off) vs raw GET");
    if (csv_written("coherence_cdf"))
        plot_cdf(
            cfg, "coherence_cdf", modes, 2,
            "Coherence lag: a change, until the other process L1 drops it, vs "
            "PUBLISH -> receive");
    if (csv_written("ratio")) {
        snprintf(vars, sizeof(vars), "traces='%s'", ratio_trace_names());
        run_script(cfg, "hit_ratio.gp", "ratio", vars);
    }
}
