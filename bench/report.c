/* SPDX-License-Identifier: BSD-3-Clause */
/* Results: one row per figure, printed as a table and written to
   bench/results/summary.tsv at the end; CSV files for the details and
   the plots. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define SUMMARY RESULTS_DIR "/summary.tsv"
#define MAX_CSV 16

typedef struct row {
    char scenario[16];
    char metric[96];
    unit u;
    double value, floor; /* ratio = value / floor */
    char floor_is[80];
} row;

static row *rows;
static int nrows, cap_rows;
static char **notes;
static int nnotes;
static char csv_names[MAX_CSV][32];
static int ncsv;

void add_row(const char *scenario, const char *metric, unit u, double value,
             double floor, const char *floor_is)
{
    if (nrows == cap_rows) {
        cap_rows = cap_rows ? 2 * cap_rows : 64;
        rows = xrealloc(rows, (size_t)cap_rows * sizeof(*rows));
    }
    row *r = &rows[nrows++];
    snprintf(r->scenario, sizeof(r->scenario), "%s", scenario);
    snprintf(r->metric, sizeof(r->metric), "%s", metric);
    r->u = u;
    r->value = value;
    r->floor = floor;
    snprintf(r->floor_is, sizeof(r->floor_is), "%s", floor_is);
}

void add_note(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    notes = xrealloc(notes, (size_t)(nnotes + 1) * sizeof(*notes));
    notes[nnotes] = strdup(line);
    if (!notes[nnotes++])
        die("out of memory");
}

static void fmt_figure(char *out, size_t cap, unit u, double v)
{
    switch (u) {
    case U_USEC:
        snprintf(out, cap, "%.1f us", v);
        break;
    case U_PCT:
        snprintf(out, cap, "%.2f %%", v);
        break;
    case U_BYTES:
        if (v >= 1024.0 * 1024.0)
            snprintf(out, cap, "%.2f MiB", v / (1024.0 * 1024.0));
        else
            snprintf(out, cap, "%.1f B", v);
        break;
    case U_COUNT:
        snprintf(out, cap, "%.0f", v);
        break;
    case U_PER:
        snprintf(out, cap, "%.3f", v);
        break;
    case U_SEC:
        snprintf(out, cap, "%.3f s", v);
        break;
    case U_OPS:
    default:
        if (v >= 1e6)
            snprintf(out, cap, "%.2f M/s", v / 1e6);
        else
            snprintf(out, cap, "%.1f k/s", v / 1e3);
        break;
    }
}

static double ratio_of(const row *r)
{
    return r->floor != 0.0 ? r->value / r->floor : 0.0;
}

void print_table(const char *env)
{
    char fig[32], flo[32];
    int w = 6;
    for (int i = 0; i < nrows; i++) {
        int len = (int)strlen(rows[i].metric);
        w = len > w ? len : w;
    }
    printf("\ntc-bench: %s\n\n", env);
    printf("%-9s %-*s %12s %12s %7s  %s\n", "scenario", w, "metric", "figure",
           "floor", "ratio", "floor is");
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        fmt_figure(fig, sizeof(fig), r->u, r->value);
        fmt_figure(flo, sizeof(flo), r->u, r->floor);
        printf("%-9s %-*s %12s %12s %6.2fx  %s\n", r->scenario, w, r->metric,
               fig, flo, ratio_of(r), r->floor_is);
    }
    printf("\nratio = figure / floor. ops/s: 1.00 is as fast as the floor "
           "(lower is slower);\nlatency: 1.00 is no overhead (higher is "
           "slower); scaling: 2.00 is ideal on 2 threads;\nhit ratio: the "
           "fraction of Belady's optimum reached (1.00 = optimal);\nbytes: "
           "RSS per entry over what the L1 accounts for (1.00 = exact), "
           "bound: <= 1.00 holds;\nqueries per request: lower is "
           "better (0.00 = every request a cache hit);\nseconds: 1.00 is "
           "no time added to the floor's (higher is slower).\n");
    for (int i = 0; i < nnotes; i++)
        printf("%s\n", notes[i]);
}

void write_summary(void)
{
    make_results_dir();
    FILE *f = fopen(SUMMARY, "w");
    if (!f)
        die("%s: %s", SUMMARY, strerror(errno));
    fprintf(f, "scenario\tmetric\tvalue\tfloor\tratio\n");
    for (int i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        /* us to the ns; whole ops/s; hit ratios past the hundredth;
           seconds to the millisecond */
        int prec = r->u == U_USEC || r->u == U_SEC  ? 3
                   : r->u == U_PCT || r->u == U_PER ? 4
                                                    : r->u == U_BYTES;
        fprintf(f, "%s\t%s\t%.*f\t%.*f\t%.4f\n", r->scenario, r->metric, prec,
                r->value, prec, r->floor, ratio_of(r));
    }
    if (fclose(f) != 0)
        die("%s: %s", SUMMARY, strerror(errno));
    progress("wrote %s (%d rows)", SUMMARY, nrows);
}

FILE *csv_open(const char *name, const char *header)
{
    char path[128];
    make_results_dir();
    snprintf(path, sizeof(path), "%s/%s.csv", RESULTS_DIR, name);
    FILE *f = fopen(path, "w");
    if (!f)
        die("%s: %s", path, strerror(errno));
    fprintf(f, "%s\n", header);
    return f;
}

void csv_close(FILE *f, const char *name)
{
    if (fclose(f) != 0)
        die("%s/%s.csv: %s", RESULTS_DIR, name, strerror(errno));
    if (ncsv < MAX_CSV && !csv_written(name))
        snprintf(csv_names[ncsv++], sizeof(csv_names[0]), "%s", name);
    progress("wrote %s/%s.csv", RESULTS_DIR, name);
}

int csv_written(const char *name)
{
    for (int i = 0; i < ncsv; i++)
        if (!strcmp(csv_names[i], name))
            return 1;
    return 0;
}

/* Every sample of the body would be thousands of lines per curve: 200
   evenly spaced ranks, and every rank of the top 1 % (the tail is what
   the plots are for), capped at 200 more. */
void csv_cdf(FILE *f, const char *label, const uint64_t *sorted, size_t n)
{
    if (n == 0)
        return;
    size_t tail = n - n / 100, step = n / 200 ? n / 200 : 1;
    size_t tail_step = (n - tail) / 200 ? (n - tail) / 200 : 1;
    for (size_t i = 0; i < n;) {
        fprintf(f, "%s,%.5f,%.3f\n", label, (double)(i + 1) / (double)n,
                (double)sorted[i] / 1000.0);
        if (i == n - 1)
            break;
        i += i >= tail ? tail_step : step;
        if (i >= n)
            i = n - 1;
    }
}
