/* SPDX-License-Identifier: BSD-3-Clause */
/* tc_stats_format's Prometheus text passes the real `promtool check
   metrics` (Debian's prometheus package; exit 77 without it), and the
   latency histograms count Redis round trips and compute callbacks. */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h" /* tc__hist */

/* promtool's exit status on text, -1 if it could not be run. */
static int promtool_check(const char *text)
{
    char path[] = "/tmp/tc-metrics-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    int st = system(cmd);
    unlink(path);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* The value of the sample named exactly `name` (with labels if any). */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return atof(p + n + 1);
    return -1;
}

static int slow_compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    (void)ud;
    (void)ttl;
    usleep(3000); /* at least 3 ms: not in the buckets under 2.048 ms */
    *val = strdup("v");
    *len = 1;
    return *val ? 0 : -1;
}

static void test_promtool_passes(void)
{
    tc_cache *c = th_open(th_srv, "metrics", NULL);
    CU_ASSERT_EQUAL(tc_set(c, "a", "1", 1, 0), TC_OK);
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_fetch(c, "f", 0, slow_compute, NULL, &v), TC_OK);
    tc_value_release(v);
    tc_stats_info s;
    tc_stats(c, &s);
    uint64_t l2n = 0, cn = 0;
    for (int i = 0; i < TC_LAG_BUCKETS; i++) {
        l2n += s.l2_hist[i];
        cn += s.compute_hist[i];
    }
    CU_ASSERT(l2n >= 2); /* the SET, the fetch's GET and lease at least */
    CU_ASSERT(s.l2_sum_us > 0);
    CU_ASSERT_EQUAL(cn, 1);
    CU_ASSERT(s.compute_sum_us >= 3000);
    CU_ASSERT_EQUAL(s.compute_hist[0] + s.compute_hist[10], 0);

    size_t need = tc_stats_format(c, TC_FORMAT_PROMETHEUS, NULL, 0);
    char *text = malloc(need + 1);
    CU_ASSERT_FATAL(text != NULL);
    tc_stats_format(c, TC_FORMAT_PROMETHEUS, text, need + 1);
    int rc = promtool_check(text);
    if (rc != 0)
        fprintf(stderr, "\n%s\n", text);
    CU_ASSERT_EQUAL(rc, 0);
    const char *h = "tiercache_compute_duration_seconds";
    char name[128];
    snprintf(name, sizeof(name), "%s_count", h);
    CU_ASSERT_EQUAL(sample(text, name), 1);
    snprintf(name, sizeof(name), "%s_bucket{le=\"+Inf\"}", h);
    CU_ASSERT_EQUAL(sample(text, name), 1);
    snprintf(name, sizeof(name), "%s_bucket{le=\"0.002048\"}", h);
    CU_ASSERT_EQUAL(sample(text, name), 0);
    snprintf(name, sizeof(name), "%s_sum", h);
    CU_ASSERT(sample(text, name) >= 0.003);
    CU_ASSERT(sample(text, "tiercache_l2_command_duration_seconds_count") >=
              2);
    CU_ASSERT(sample(text, "tiercache_l2_command_duration_seconds_sum") > 0);
    free(text);

    char json[16384];
    tc_stats_format(c, TC_FORMAT_JSON, json, sizeof(json));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"compute_us_log2_hist\":["));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"l2_command_us_sum\":"));
    tc_close(c);
}

/* The check above can fail: promtool refuses a counter without _total,
   a unit that is not a base unit, a metric without HELP. */
static void test_promtool_refuses(void)
{
    CU_ASSERT_NOT_EQUAL(promtool_check("# HELP x_hits hits\n"
                                       "# TYPE x_hits counter\nx_hits 1\n"),
                        0);
    CU_ASSERT_NOT_EQUAL(promtool_check("# HELP x_milliseconds ms\n"
                                       "# TYPE x_milliseconds gauge\n"
                                       "x_milliseconds 1\n"),
                        0);
    CU_ASSERT_NOT_EQUAL(promtool_check("# TYPE x gauge\nx 1\n"), 0);
}

/* What promtool lets pass: buckets that are cumulative, ending with
   le="+Inf" equal to _count. 1 if histogram `h` in text is so. */
static int histogram_ok(const char *text, const char *h)
{
    char prefix[128];
    int n = snprintf(prefix, sizeof(prefix), "%s_bucket{le=\"", h);
    double last = -1, prev = 0;
    int inf = 0, buckets = 0;
    for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
        const char *val = strstr(p, "} ");
        if (!val || inf)
            return 0; /* a bucket after +Inf */
        inf = strncmp(p + n, "+Inf\"", 5) == 0;
        last = atof(val + 2);
        if (last < prev)
            return 0;
        prev = last;
        buckets++;
    }
    char count[128], sum[128];
    snprintf(count, sizeof(count), "%s_count", h);
    snprintf(sum, sizeof(sum), "%s_sum", h);
    return buckets == TC_LAG_BUCKETS && inf && sample(text, count) == last &&
           sample(text, sum) >= 0;
}

static void test_histogram_shape(void)
{
    const char *good = "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                       "h_sum 0.5\nh_count 2\n";
    const char *no_inf = "h_bucket{le=\"1\"} 1\nh_bucket{le=\"2\"} 2\n"
                         "h_count 2\n";
    const char *down = "h_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\n"
                       "h_count 2\n";
    /* the checker itself (two buckets are too few) */
    CU_ASSERT(!histogram_ok(good, "h")); /* too few buckets */
    CU_ASSERT(!histogram_ok(no_inf, "h"));
    CU_ASSERT(!histogram_ok(down, "h"));
    tc_cache *c = th_open(th_srv, NULL, NULL);
    CU_ASSERT_EQUAL(tc_set(c, "a", "1", 1, 0), TC_OK);
    static char text[65536];
    CU_ASSERT_FATAL(tc_stats_format(c, TC_FORMAT_PROMETHEUS, text,
                                    sizeof(text)) < sizeof(text));
    CU_ASSERT(histogram_ok(text, "tiercache_inval_lag_seconds"));
    CU_ASSERT(histogram_ok(text, "tiercache_l2_command_duration_seconds"));
    CU_ASSERT(histogram_ok(text, "tiercache_compute_duration_seconds"));
    tc_close(c);
}

/* le is "at most" in Prometheus: a value on a bucket's bound is in it. */
static void test_bucket_bounds(void)
{
    static const struct {
        uint64_t us;
        int bucket;
    } cases[] = {{0, 0},
                 {1, 0},
                 {2, 0},
                 {3, 1},
                 {4, 1},
                 {5, 2},
                 {8, 2},
                 {9, 3},
                 {1024, 9},
                 {1025, 10},
                 {UINT64_MAX / 2, 23}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tc__hist h;
        memset(&h, 0, sizeof(h));
        tc__hist_add(&h, cases[i].us);
        CU_ASSERT_EQUAL(atomic_load(&h.b[cases[i].bucket]), 1);
    }
}

int main(void)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        fprintf(stderr, "promtool not installed (Debian: prometheus)\n");
        return getenv("CI") ? 1 : 77; /* CI installs it: ./bootstrap */
    }
    static const th_test tests[] = {
        {"promtool_passes", test_promtool_passes},
        {"promtool_refuses", test_promtool_refuses},
        {"histogram_shape", test_histogram_shape},
        {"bucket_bounds", test_bucket_bounds},
        {NULL, NULL},
    };
    return th_run_redis("metrics", tests);
}
