/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * billgen: the reference service (examples/billgen, docs/billgen.md)
 * under HTTP load, each figure beside the service's own floor.
 *
 * One database seeded in a temporary directory, two instances of
 * `billgen serve --workers 2` on it: one caching through tiercache (the
 * bench's private Redis, by REDIS_URL), one with --no-cache. wrk drives
 * each case for a fixed time over a few keep-alive connections:
 *   health         GET /health on the cached instance: the floor (the
 *                  service's HTTP stack, no cached route);
 *   item_cached    GET /api/invoices/<id>, every worker's L1 warmed;
 *   item_uncached  the same GET on the --no-cache instance;
 *   list_cached    GET /api/invoices?page=1&per_page=20, warmed;
 *   list_uncached  the same on the --no-cache instance;
 *   static         GET of a route that does not exist on the cached
 *                  instance: the router's 404, no database and no cache,
 *                  the floor under the floor (/health runs a SELECT 1 and
 *                  reads the cache's health and stats).
 * The cases take turns within a round (each round starting one case
 * later), the figures are medians over the rounds. SQLite queries per
 * request come from the workers' /metrics, scraped before and after each
 * run: /metrics answers for the one worker that took the connection, so
 * the scrape repeats until every worker has answered (the approximation
 * when one never does is said under the table).
 *
 * The instances are started, stopped and spoken to by billgen_svc.c.
 * Skipped, with a SKIP line, without the billgen binary or wrk.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "billgen.h"

#define DIR_CAP 200     /* the temporary directory: room for its files */
#define WRK_THREADS "2" /* wrk -t */
#define WRK_CONNS "16"  /* wrk -c */
#define WARM_TRIES 200  /* GETs to get a hit-l1 from every worker */
#define MAX_ROUNDS 5
#define TARGET_VS_UNCACHED 5.0
#define TARGET_VS_FLOOR 0.8

/* ---- sizes ---- */

typedef struct sizes {
    int users, products, invoices;
    int secs, rounds; /* wrk -d, and rounds of every case */
} sizes;

static sizes sizes_of(const bench_cfg *cfg)
{
    if (cfg->smoke)
        return (sizes){200, 50, 1000, 1, 1};
    if (cfg->quick)
        return (sizes){2000, 200, 10000, 2, 1};
    return (sizes){10000, 1000, 50000, 5, 3};
}

/* ---- wrk ---- */

typedef struct wrk_result {
    double rps, p50_us, p75_us, p90_us, p99_us, secs;
    long requests, non2xx, sock_errors;
} wrk_result;

static double to_us(double v, const char *suffix)
{
    if (!strcmp(suffix, "ms"))
        return v * 1e3;
    if (!strcmp(suffix, "s"))
        return v * 1e6;
    if (!strcmp(suffix, "m"))
        return v * 60e6;
    return v; /* us */
}

static void parse_wrk(const char *out, wrk_result *w)
{
    memset(w, 0, sizeof(*w));
    for (const char *line = out; line && *line;) {
        const char *eol = strchr(line, '\n');
        char sfx[16];
        double v;
        int pct;
        long a, b, c, d;
        if (sscanf(line, " %d%% %lf%15s", &pct, &v, sfx) == 3) {
            double us = to_us(v, sfx);
            if (pct == 50)
                w->p50_us = us;
            else if (pct == 75)
                w->p75_us = us;
            else if (pct == 90)
                w->p90_us = us;
            else if (pct == 99)
                w->p99_us = us;
        } else if (sscanf(line, " %ld requests in %lf%15s", &a, &v, sfx) ==
                   3) {
            w->requests = a;
            w->secs = to_us(v, strtok(sfx, ",")) / 1e6;
        } else if (sscanf(line, " Non-2xx or 3xx responses: %ld", &a) == 1) {
            w->non2xx = a;
        } else if (sscanf(line,
                          " Socket errors: connect %ld, read %ld, write %ld, "
                          "timeout %ld",
                          &a, &b, &c, &d) == 4) {
            w->sock_errors = a + b + c + d;
        } else if (sscanf(line, " Requests/sec: %lf", &v) == 1) {
            w->rps = v;
        }
        line = eol ? eol + 1 : NULL;
    }
}

static int run_wrk(const char *url, int secs, wrk_result *w)
{
    char dur[16];
    snprintf(dur, sizeof(dur), "%ds", secs);
    const char *argv[] = {
        "wrk", "-t" WRK_THREADS, "-c" WRK_CONNS, "-d", dur, "--latency", url,
        NULL};
    int fd;
    pid_t pid = spawn(argv, &fd);
    if (pid < 0)
        return -1;
    size_t cap = 1 << 14, len = 0;
    char *out = xcalloc(cap + 1, 1);
    ssize_t n;
    while ((n = read(fd, out + len, cap - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        len += (size_t)n;
        if (len == cap) {
            cap *= 2;
            out = xrealloc(out, cap + 1);
        }
    }
    close(fd);
    out[len] = '\0';
    int rc = wait_exit(pid);
    parse_wrk(out, w);
    if (rc != 0 || w->rps <= 0.0 || w->p99_us <= 0.0) {
        fprintf(stderr, "---- wrk %s ----\n%s----\n", url, out);
        free(out);
        return -1;
    }
    free(out);
    return 0;
}

/* ---- the cases ---- */

enum { C_HEALTH, C_ITEM, C_ITEM_NC, C_LIST, C_LIST_NC, C_STATIC, NCASES };
#define STATIC_PATH "/tc-bench/no-such-route"

typedef struct bcase {
    const char *name;
    int uncached; /* on the --no-cache instance */
    int want_404; /* its answers are 404s */
    char path[96];
    wrk_result res[MAX_ROUNDS];
    double qpr[MAX_ROUNDS]; /* SQLite queries per request; -1 unknown */
    int partial;            /* rounds where not every worker answered */
} bcase;

/* Queries per request over the run between two scrapes; -1 unknown. */
static double queries_per_request(const service *s, const counters *a,
                                  const counters *b, const bcase *c,
                                  const wrk_result *w, int *partial)
{
    double q = 0.0, rq = 0.0;
    int both = 0;
    for (int k = 1; k <= s->workers; k++) {
        if (!a[k].seen || !b[k].seen)
            continue;
        if (b[k].requests < a[k].requests || b[k].queries < a[k].queries)
            svc_warn("%s: worker %d's counters went back during the run "
                     "(restarted?)",
                     c->name, k);
        q += b[k].queries - a[k].queries;
        rq += b[k].requests - a[k].requests;
        both++;
    }
    *partial = both < s->workers;
    if (both == 0 || rq <= 0.0)
        return -1.0;
    /* Every worker counted: its requests are wrk's, give or take the
       ones in flight at the end. */
    double slack = 0.05 * (double)w->requests + 64.0;
    if (!*partial &&
        (rq < (double)w->requests - slack || rq > (double)w->requests + slack))
        svc_warn("%s: the workers' billgen_http_requests_total grew by %.0f, "
                 "wrk counted %ld responses",
                 c->name, rq, w->requests);
    return q / rq;
}

static int run_case(const service *svc, bcase *c, int round, int secs,
                    FILE *csv)
{
    char url[256];
    counters *before = xcalloc(MAX_WORKERS + 1, sizeof(counters));
    counters *after = xcalloc(MAX_WORKERS + 1, sizeof(counters));
    wrk_result *w = &c->res[round];
    int rc = -1, partial = 0;
    snprintf(url, sizeof(url), "http://%s:%d%s", svc->addr, svc->port,
             c->path);
    int seen_a = svc_scrape(svc, before);
    if (run_wrk(url, secs, w) != 0) {
        svc_warn("%s: wrk failed on %s", c->name, url);
        goto out;
    }
    int seen_b = svc_scrape(svc, after);
    if (seen_a < 0 || seen_b < 0) {
        c->qpr[round] = -1.0;
        svc_warn("/metrics lacks billgen_sqlite_queries_total or "
                 "billgen_http_requests_total");
    } else {
        c->qpr[round] =
            queries_per_request(svc, before, after, c, w, &partial);
    }
    c->partial += partial;
    progress("billgen:   %-13s %9.0f req/s  p50 %8.1f us  p99 %8.1f us  "
             "%.3f queries/request%s",
             c->name, w->rps, w->p50_us, w->p99_us, c->qpr[round],
             partial ? " (not every worker's /metrics)" : "");
    if ((w->non2xx && !c->want_404) || w->sock_errors)
        svc_warn("%s: wrk saw %ld non-2xx/3xx responses and %ld socket errors "
                 "in %ld requests",
                 c->name, w->non2xx, w->sock_errors, w->requests);
    fprintf(csv,
            "%d,%s,%s,%s,%.2f,%ld,%.1f,%.1f,%.1f,%.1f,%.1f,%ld,%ld,%.4f\n",
            round + 1, c->name, svc->name, c->path, w->secs, w->requests,
            w->rps, w->p50_us, w->p75_us, w->p90_us, w->p99_us, w->non2xx,
            w->sock_errors, c->qpr[round]);
    rc = 0;
out:
    free(before);
    free(after);
    return rc;
}

/* ---- warming and checks ---- */

/* GETs path on the cached instance until every worker has answered from
   its own L1; the last body into *body (free it). */
static int warm(const service *s, const char *path, char **body)
{
    int hit[MAX_WORKERS + 1] = {0}, nhit = 0, i;
    char trail[160] = "", why[200];
    size_t tl = 0;
    *body = NULL;
    for (i = 0; i < WARM_TRIES && nhit < s->workers; i++) {
        http_resp r;
        if (svc_get(s, path, NULL, &r, why, sizeof(why)) != 0) {
            svc_warn("GET %s: %s", path, why);
            return -1;
        }
        if (r.status != 200) {
            svc_warn("GET %s: status %d: %.200s", path, r.status, r.body);
            svc_resp_free(&r);
            return -1;
        }
        if (tl < sizeof(trail) - 24)
            tl += (size_t)snprintf(trail + tl, sizeof(trail) - tl, " %s@%d",
                                   r.xcache[0] ? r.xcache : "-", r.worker);
        if (r.worker >= 1 && r.worker <= s->workers && !hit[r.worker] &&
            !strcmp(r.xcache, "hit-l1")) {
            hit[r.worker] = 1;
            nhit++;
        }
        free(*body);
        *body = strdup(r.body);
        svc_resp_free(&r);
    }
    progress("billgen: warmed %s in %d GETs (X-Cache@worker:%s%s)", path, i,
             trail, tl >= sizeof(trail) - 24 ? " ..." : "");
    if (nhit < s->workers)
        svc_warn("GET %s: only %d of %d workers answered hit-l1 in %d GETs",
                 path, nhit, s->workers, i);
    return 0;
}

/* The --no-cache twin of a warmed GET: bypass, and the same body; and
   the cached instance's ETag answered with 304. */
static int check_pair(const service *cached, const service *nc,
                      const char *path, const char *body)
{
    http_resp r;
    char why[200], inm[200];
    if (svc_get(nc, path, NULL, &r, why, sizeof(why)) != 0 ||
        r.status != 200) {
        svc_warn("GET %s (--no-cache): %s", path,
                 r.raw ? "status not 200" : why);
        svc_resp_free(&r);
        return -1;
    }
    if (strcmp(r.xcache, "bypass") != 0)
        svc_warn("GET %s (--no-cache): X-Cache \"%s\", want bypass", path,
                 r.xcache);
    if (!body || strcmp(r.body, body) != 0)
        svc_warn("GET %s: cached and --no-cache bodies differ (%zu vs %zu "
                 "bytes)",
                 path, body ? strlen(body) : 0, r.body_len);
    svc_resp_free(&r);
    if (svc_get(cached, path, NULL, &r, why, sizeof(why)) != 0)
        return 0;
    if (!r.etag[0]) {
        svc_warn("GET %s: no ETag", path);
    } else {
        snprintf(inm, sizeof(inm), "If-None-Match: %s", r.etag);
        svc_resp_free(&r);
        if (svc_get(cached, path, inm, &r, why, sizeof(why)) == 0 &&
            r.status != 304)
            svc_warn(
                "GET %s with a matching If-None-Match: status %d, want 304",
                path, r.status);
    }
    svc_resp_free(&r);
    return 0;
}

/* ---- the report ---- */

static double med(double *v, int n)
{
    double tmp[MAX_ROUNDS];
    memcpy(tmp, v, (size_t)n * sizeof(*v));
    return median(tmp, n);
}

static double med_of(const bcase *c, int n, size_t field)
{
    double v[MAX_ROUNDS];
    for (int i = 0; i < n; i++)
        v[i] = *(const double *)((const char *)&c->res[i] + field);
    return med(v, n);
}

#define RPS(c) med_of(c, n, offsetof(wrk_result, rps))
#define P99(c) med_of(c, n, offsetof(wrk_result, p99_us))

static void report(bcase *cs, int n, const sizes *z)
{
    bcase *h = &cs[C_HEALTH], *it = &cs[C_ITEM], *itn = &cs[C_ITEM_NC];
    bcase *li = &cs[C_LIST], *lin = &cs[C_LIST_NC], *st = &cs[C_STATIC];
    double q[NCASES];
    for (int i = 0; i < NCASES; i++)
        q[i] = med(cs[i].qpr, n);
    add_row("billgen", "item_cached_rps", U_OPS, RPS(it), RPS(h),
            "GET /health, same instance (the floor); target >= 0.8x");
    add_row("billgen", "item_cached_vs_uncached", U_OPS, RPS(it), RPS(itn),
            "the same GET on the --no-cache instance; target >= 5x");
    add_row("billgen", "item_cached_vs_static", U_OPS, RPS(it), RPS(st),
            "an unknown route's 404: no database, no cache");
    add_row("billgen", "health_vs_static", U_OPS, RPS(h), RPS(st),
            "an unknown route's 404: what /health costs over it");
    add_row("billgen", "list_cached_rps", U_OPS, RPS(li), RPS(h),
            "GET /health, same instance (the floor)");
    add_row("billgen", "list_cached_vs_uncached", U_OPS, RPS(li), RPS(lin),
            "the same GET on the --no-cache instance");
    add_row("billgen", "item_cached_p99_us", U_USEC, P99(it), P99(h),
            "GET /health p99, same load");
    add_row("billgen", "item_uncached_p99_us", U_USEC, P99(itn), P99(h),
            "GET /health p99, same load");
    add_row("billgen", "list_cached_p99_us", U_USEC, P99(li), P99(h),
            "GET /health p99, same load");
    add_row("billgen", "list_uncached_p99_us", U_USEC, P99(lin), P99(h),
            "GET /health p99, same load");
    add_row("billgen", "queries_per_request_item_cached", U_PER, q[C_ITEM],
            q[C_ITEM_NC], "the --no-cache item GET's (fraction left)");
    add_row("billgen", "queries_per_request_item_uncached", U_PER,
            q[C_ITEM_NC], 1.0, "one query a request");
    add_row("billgen", "queries_per_request_list_cached", U_PER, q[C_LIST],
            q[C_LIST_NC], "the --no-cache list GET's (fraction left)");
    add_row("billgen", "queries_per_request_list_uncached", U_PER,
            q[C_LIST_NC], 1.0, "one query a request");
    add_row("billgen", "queries_per_request_health", U_PER, q[C_HEALTH], 1.0,
            "one query a request (0: the floor reads no database)");

    double vs_nc = RPS(it) / RPS(itn), vs_floor = RPS(it) / RPS(h);
    double vs_static = RPS(it) / RPS(st);
    add_note("billgen: %d users, %d products, %d invoices; wrk -t%s -c%s "
             "-d%ds --latency, %d round%s, medians; 2 workers per instance",
             z->users, z->products, z->invoices, WRK_THREADS, WRK_CONNS,
             z->secs, n, n > 1 ? "s" : "");
    add_note("billgen: targets: cached item >= %.0fx uncached: %.2fx, %s; "
             ">= %.1fx the /health floor: %.2fx, %s",
             TARGET_VS_UNCACHED, vs_nc,
             vs_nc >= TARGET_VS_UNCACHED ? "met" : "MISSED", TARGET_VS_FLOOR,
             vs_floor, vs_floor >= TARGET_VS_FLOOR ? "met" : "MISSED");
    add_note("billgen: /health is no static floor (a SELECT 1, the cache's "
             "health and stats); against a static 404 the cached item is "
             "%.2fx (%s 0.8x), /health %.2fx",
             vs_static, vs_static >= TARGET_VS_FLOOR ? ">=" : "<",
             RPS(h) / RPS(st));
    if (n > 1) {
        char line[400];
        size_t len =
            (size_t)snprintf(line, sizeof(line), "billgen: req/s min-max:");
        for (int i = 0; i < NCASES && len < sizeof(line); i++) {
            double lo = cs[i].res[0].rps, hi = lo;
            for (int k = 1; k < n; k++) {
                lo = cs[i].res[k].rps < lo ? cs[i].res[k].rps : lo;
                hi = cs[i].res[k].rps > hi ? cs[i].res[k].rps : hi;
            }
            len += (size_t)snprintf(line + len, sizeof(line) - len,
                                    " %s %.0f-%.0f", cs[i].name, lo, hi);
        }
        add_note("%s", line);
    }
    int partial = 0;
    for (int i = 0; i < NCASES; i++)
        partial += cs[i].partial;
    add_note("billgen: queries/request = growth of billgen_sqlite_queries_"
             "total / billgen_http_requests_total (less /metrics), summed "
             "over %s",
             partial ? "the workers whose /metrics answered (NOT every "
                       "worker in some runs: an approximation)"
                     : "every worker");
}

/* ---- the scenario ---- */

static int in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[PATH_CAP];
    if (!path)
        return 0;
    while (*path) {
        size_t len = strcspn(path, ":");
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, len ? path : ".",
                 prog);
        if (access(buf, X_OK) == 0)
            return 1;
        path += len + (path[len] == ':');
    }
    return 0;
}

static void skip(const char *why)
{
    progress("billgen: SKIP: %s", why);
    add_note("billgen: SKIP: %s", why);
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    rmdir(dir);
}

static int seed(const char *bin, const char *dir, const char *db,
                char *const envp[], const sizes *z)
{
    char u[16], p[16], i[16], out[PATH_CAP], err[PATH_CAP];
    snprintf(u, sizeof(u), "%d", z->users);
    snprintf(p, sizeof(p), "%d", z->products);
    snprintf(i, sizeof(i), "%d", z->invoices);
    snprintf(out, sizeof(out), "%s/seed.out", dir);
    snprintf(err, sizeof(err), "%s/seed.err", dir);
    char *argv[] = {(char *)bin,  "seed", "--db",       (char *)db,
                    "--users",    u,      "--products", p,
                    "--invoices", i,      NULL};
    progress("billgen: seed --users %s --products %s --invoices %s", u, p, i);
    uint64_t t0 = now_ns();
    pid_t pid = svc_child(argv, envp, out, err);
    int rc = pid > 0 ? wait_exit(pid) : -1;
    double secs = (double)(now_ns() - t0) / 1e9;
    if (rc != 0) {
        svc_warn("billgen seed: exit status %d", rc);
        svc_tail(out);
        svc_tail(err);
        return -1;
    }
    struct stat sb;
    char wal[PATH_CAP + 8];
    double mib = stat(db, &sb) == 0 ? (double)sb.st_size / 1048576.0 : 0.0;
    snprintf(wal, sizeof(wal), "%s-wal", db);
    if (stat(wal, &sb) == 0) /* what seed leaves in the WAL counts too */
        mib += (double)sb.st_size / 1048576.0;
    progress("billgen: seeded in %.1f s (%.1f MiB)", secs, mib);
    add_note("billgen: seed took %.1f s, database %.1f MiB", secs, mib);
    return 0;
}

static int measure(const bench_cfg *cfg, service *svc, const sizes *z)
{
    bcase cs[NCASES] = {
        {.name = "health"},
        {.name = "item_cached"},
        {.name = "item_uncached", .uncached = 1},
        {.name = "list_cached"},
        {.name = "list_uncached", .uncached = 1},
        {.name = "static", .want_404 = 1},
    };
    const char *list = "/api/invoices?page=1&per_page=20";
    char *item_body = NULL, *list_body = NULL;
    int rc = -1;
    (void)cfg;
    snprintf(cs[C_HEALTH].path, sizeof(cs[0].path), "/health");
    snprintf(cs[C_STATIC].path, sizeof(cs[0].path), STATIC_PATH);
    snprintf(cs[C_ITEM].path, sizeof(cs[0].path), "/api/invoices/%d",
             z->invoices / 2);
    snprintf(cs[C_ITEM_NC].path, sizeof(cs[0].path), "%s", cs[C_ITEM].path);
    snprintf(cs[C_LIST].path, sizeof(cs[0].path), "%s", list);
    snprintf(cs[C_LIST_NC].path, sizeof(cs[0].path), "%s", list);
    if (warm(&svc[0], cs[C_ITEM].path, &item_body) != 0 ||
        warm(&svc[0], list, &list_body) != 0 ||
        check_pair(&svc[0], &svc[1], cs[C_ITEM].path, item_body) != 0 ||
        check_pair(&svc[0], &svc[1], list, list_body) != 0)
        goto out;
    http_resp nf;
    char why[200];
    if (svc_get(&svc[0], STATIC_PATH, NULL, &nf, why, sizeof(why)) != 0 ||
        nf.status != 404) {
        svc_warn("GET %s: %s, want a 404", STATIC_PATH,
                 nf.raw ? "another status" : why);
        svc_resp_free(&nf);
        goto out;
    }
    svc_resp_free(&nf);
    FILE *csv = csv_open("billgen", "round,case,instance,path,seconds,"
                                    "requests,rps,p50_us,p75_us,p90_us,"
                                    "p99_us,non2xx,socket_errors,"
                                    "queries_per_request");
    for (int r = 0; r < z->rounds; r++) {
        progress("billgen: round %d of %d, wrk -d%ds per case", r + 1,
                 z->rounds, z->secs);
        for (int k = 0; k < NCASES; k++) {
            bcase *c = &cs[(k + r) % NCASES];
            if (run_case(&svc[c->uncached], c, r, z->secs, csv) != 0) {
                csv_close(csv, "billgen");
                goto out;
            }
        }
    }
    csv_close(csv, "billgen");
    /* Still served from the L1 after the load? */
    http_resp h;
    if (svc_get(&svc[0], cs[C_ITEM].path, NULL, &h, why, sizeof(why)) == 0) {
        if (strcmp(h.xcache, "hit-l1") != 0)
            svc_warn("GET %s after the runs: X-Cache \"%s\", want hit-l1",
                     cs[C_ITEM].path, h.xcache);
        svc_resp_free(&h);
    }
    report(cs, z->rounds, z);
    rc = 0;
out:
    free(item_body);
    free(list_body);
    return rc;
}

int bench_billgen(const th_redis *r, const bench_cfg *cfg)
{
    char dir[DIR_CAP], db[PATH_CAP], why[PATH_CAP + 80];
    const char *tmp = getenv("TMPDIR");
    sizes z = sizes_of(cfg);
    service svc[2] = {{.name = "cached"}, {.name = "uncached"}};
    int rc = -1;

    if (access(cfg->billgen, X_OK) != 0) {
        snprintf(why, sizeof(why),
                 "no billgen executable at %s (build it, or --billgen PATH)",
                 cfg->billgen);
        skip(why);
        return 0;
    }
    if (!in_path("wrk")) {
        skip("no wrk in PATH (Debian: apt-get install wrk)");
        return 0;
    }
    if (!tmp || !*tmp || strlen(tmp) > DIR_CAP - 32)
        tmp = "/tmp";
    snprintf(dir, sizeof(dir), "%s/tc-billgen-XXXXXX", tmp);
    if (!mkdtemp(dir))
        die("billgen: mkdtemp %s: %s", dir, strerror(errno));
    snprintf(db, sizeof(db), "%s/bill.db", dir);
    char *url;
    char **env = svc_env(r, &url);
    svc_warned = 0;
    progress("billgen: %s, database in %s", cfg->billgen, dir);
    if (seed(cfg->billgen, dir, db, env, &z) != 0)
        goto out;
    for (int i = 0; i < 2; i++) {
        snprintf(svc[i].out, sizeof(svc[i].out), "%s/%s.out", dir,
                 svc[i].name);
        snprintf(svc[i].err, sizeof(svc[i].err), "%s/%s.err", dir,
                 svc[i].name);
        if (svc_start(&svc[i], cfg->billgen, db, env, i) != 0)
            goto out;
    }
    rc = measure(cfg, svc, &z);
out:
    for (int i = 0; i < 2; i++)
        svc_stop(&svc[i], 0);
    if (rc != 0 || svc_warned) {
        /* what the services said, for the report */
        for (int i = 0; i < 2; i++)
            if (svc[i].err[0])
                svc_tail(svc[i].err);
    }
    if (rc != 0)
        add_note("billgen: FAILED (above); no rows");
    remove_tree(dir);
    free(url);
    free(env);
    return rc;
}
