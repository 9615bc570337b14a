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
 * Every process started here is in a process group of its own, gets
 * SIGTERM if tc-bench dies (PR_SET_PDEATHSIG), and is stopped by SIGTERM
 * and waited for at the end (SIGKILL to its group only if it does not
 * go). Skipped, with a SKIP line, without the billgen binary or wrk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define PATH_CAP 512
#define DIR_CAP 200     /* the temporary directory: room for its files */
#define MAX_WORKERS 64  /* billgen's own limit */
#define WORKERS 2       /* per instance */
#define WRK_THREADS "2" /* wrk -t */
#define WRK_CONNS "16"  /* wrk -c */
#define START_MS 20000  /* until the listening line and a 200 /health */
#define STOP_MS 15000   /* from SIGTERM to the parent's exit */
#define HTTP_TIMEOUT_S 10
#define HTTP_MAX (16u << 20)
#define SCRAPE_TRIES 256 /* /metrics GETs to meet every worker */
#define WARM_TRIES 200   /* GETs to get a hit-l1 from every worker */
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

/* ---- child processes ---- */

typedef struct service {
    const char *name; /* "cached", "uncached" */
    pid_t pid;        /* the parent; also its process group; 0: gone */
    char addr[64];    /* as printed: 127.0.0.1, [::1] */
    char host[64];    /* for getaddrinfo: no brackets */
    int port, workers;
    char out[PATH_CAP], err[PATH_CAP]; /* its stdout and stderr */
} service;

static service *live[2]; /* for the exit handler */
static int warned;       /* set by warn(): the service looked wrong */

__attribute__((format(printf, 1, 2))) static void warn(const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    progress("billgen: WARNING: %s", msg);
    add_note("billgen: WARNING: %s", msg);
    warned = 1;
}

/* In the forked child: async-signal-safe calls only, until exec. */
static void exec_child(char *const argv[], char *const envp[], pid_t parent,
                       const char *out, const char *err)
{
    static const char msg[] = "tc-bench: cannot exec billgen\n";
    sigset_t none;
    struct sigaction dfl;
    int fd;
    /* SIGTERM, not SIGKILL: billgen's parent then stops its workers. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(127);
    setpgid(0, 0);
    /* tc-bench ignores SIGPIPE; the service starts as from a shell. */
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    fd = open("/dev/null", O_RDONLY);
    if (fd >= 0)
        dup2(fd, 0);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0)
        dup2(fd, 1);
    fd = open(err, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0)
        dup2(fd, 2);
    /* hiredis connections of the bench are not close-on-exec */
    for (fd = 3; fd < 1024; fd++)
        close(fd);
    execve(argv[0], argv, envp);
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(127);
    _exit(127);
}

static pid_t start_child(char *const argv[], char *const envp[],
                         const char *out, const char *err)
{
    pid_t parent = getpid();
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid == 0)
        exec_child(argv, envp, parent, out, err);
    if (pid > 0)
        setpgid(pid, pid); /* also here: no window before kill(-pid) */
    return pid;
}

/* The processes of group pgid still there, zombies among them. */
static int group_count(pid_t pgid, int *zombies)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    *zombies = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[300], buf[512], state;
        int ppid, pgrp;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        const char *p = strrchr(buf, ')'); /* the name may hold spaces */
        if (!p || sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
            continue;
        if (pgrp == pgid) {
            n++;
            *zombies += state == 'Z';
        }
    }
    closedir(d);
    return n;
}

/* SIGTERM, then wait (SIGKILL to the group past STOP_MS). Says what
   looked wrong unless quiet. Returns the parent's exit status, -1 if it
   did not exit by itself with one. */
static int stop_service(service *s, int quiet)
{
    int st = 0, code = -1, zombies;
    pid_t w = 0;
    if (s->pid <= 0)
        return 0;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
        if (!quiet && WIFEXITED(st))
            warn("%s instance: had exited by itself, status %d", s->name,
                 WEXITSTATUS(st));
        else if (!quiet)
            warn("%s instance: had died by itself, signal %d", s->name,
                 WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        kill(-s->pid, SIGKILL); /* its workers, if any */
        s->pid = 0;
        return -1;
    }
    kill(s->pid, SIGTERM);
    uint64_t t0 = now_ns(), deadline = t0 + STOP_MS * 1000000ull;
    while ((w = waitpid(s->pid, &st, WNOHANG)) == 0 && now_ns() < deadline)
        usleep(10000);
    if (w == 0) {
        if (!quiet)
            warn("%s instance: still running %d s after SIGTERM: killed",
                 s->name, STOP_MS / 1000);
        kill(-s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
    } else if (w > 0 && WIFEXITED(st)) {
        code = WEXITSTATUS(st);
        if (code != 0 && !quiet)
            warn("%s instance: exit status %d after SIGTERM (want 0)", s->name,
                 code);
    } else if (w > 0 && !quiet) {
        warn("%s instance: killed by signal %d after SIGTERM", s->name,
             WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
    if (!quiet)
        progress("billgen: %s instance stopped in %.0f ms", s->name,
                 (double)(now_ns() - t0) / 1e6);
    /* Its workers: the parent waits for them before it exits. (Zombies
       the parent left are init's to reap; they run nothing.) */
    int left = 0;
    for (int i = 0; i < 100; i++) {
        left = group_count(s->pid, &zombies) - zombies;
        if (left <= 0)
            break;
        usleep(10000);
    }
    if (left > 0) {
        if (!quiet)
            warn("%s instance: %d process(es) of its group still running "
                 "after the parent exited: killed",
                 s->name, left);
        kill(-s->pid, SIGKILL);
    }
    s->pid = 0;
    return code;
}

/* exit() on a die() elsewhere: nothing left running. */
static void stop_live(void)
{
    for (int i = 0; i < 2; i++)
        if (live[i])
            stop_service(live[i], 1);
}

/* The last bytes of a file on stderr: why a child failed. */
static void dump_tail(const char *path)
{
    char buf[2048];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from =
        size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    fprintf(stderr, "---- end of %s ----\n%s\n----\n", path, buf);
}

/* The whole of a small file, NUL-terminated (free it); NULL if none. */
static char *read_file(const char *path)
{
    struct stat sb;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0 || sb.st_size > (off_t)HTTP_MAX) {
        close(fd);
        return NULL;
    }
    char *buf = xcalloc((size_t)sb.st_size + 1, 1);
    ssize_t n = read(fd, buf, (size_t)sb.st_size);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

/* ---- a minimal HTTP/1.1 client: one request per connection ---- */

typedef struct http_resp {
    int status;
    int worker; /* X-Worker; 0 if absent */
    char xcache[16];
    char etag[128];
    char *raw;  /* the whole response (free it) */
    char *body; /* into raw, NUL-terminated */
    size_t body_len;
} http_resp;

static int connect_to(const service *s)
{
    struct addrinfo hints = {0}, *res = NULL;
    char port[16];
    int fd = -1;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", s->port);
    if (getaddrinfo(s->host, port, &hints, &res) != 0)
        return -1;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        struct timeval tv = {HTTP_TIMEOUT_S, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* A chunked body decoded in place; its new length. */
static size_t dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;
    while (in < len) {
        char *end;
        unsigned long n = strtoul(b + in, &end, 16);
        char *eol = memchr(b + in, '\n', len - in);
        if (!eol || end == b + in || n == 0)
            break;
        in = (size_t)(eol - b) + 1;
        if (n > len - in)
            n = len - in;
        memmove(b + out, b + in, n);
        out += n;
        in += n + 2; /* the chunk's CRLF */
    }
    return out;
}

static void parse_headers(http_resp *r, char *hdr, size_t *clen, int *chunked)
{
    *clen = (size_t)-1;
    *chunked = 0;
    for (char *line = strstr(hdr, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        char *colon = strchr(line, ':'), *eol = strstr(line, "\r\n");
        if (!colon || !eol || colon > eol)
            continue;
        size_t nlen = (size_t)(colon - line);
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        int vlen = (int)(eol - v);
        if (nlen == 8 && !strncasecmp(line, "X-Worker", 8))
            r->worker = atoi(v);
        else if (nlen == 7 && !strncasecmp(line, "X-Cache", 7))
            snprintf(r->xcache, sizeof(r->xcache), "%.*s", vlen, v);
        else if (nlen == 4 && !strncasecmp(line, "ETag", 4))
            snprintf(r->etag, sizeof(r->etag), "%.*s", vlen, v);
        else if (nlen == 14 && !strncasecmp(line, "Content-Length", 14))
            *clen = strtoul(v, NULL, 10);
        else if (nlen == 17 && !strncasecmp(line, "Transfer-Encoding", 17))
            *chunked = !strncasecmp(v, "chunked", 7);
    }
}

/* GET path (with one extra header line, or NULL). 0, or -1 with a
   message in why. */
static int http_get(const service *s, const char *path, const char *extra,
                    http_resp *r, char *why, size_t whycap)
{
    char req[1024];
    size_t cap = 1 << 16, len = 0;
    memset(r, 0, sizeof(*r));
    int fd = connect_to(s);
    if (fd < 0) {
        snprintf(why, whycap, "connect: %s", strerror(errno));
        return -1;
    }
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\n%s%s"
                     "Connection: close\r\n\r\n",
                     path, s->addr, s->port, extra ? extra : "",
                     extra ? "\r\n" : "");
    if (write(fd, req, (size_t)n) != n) {
        snprintf(why, whycap, "write: %s", strerror(errno));
        close(fd);
        return -1;
    }
    r->raw = xcalloc(cap + 1, 1);
    for (;;) {
        if (len == cap) {
            if (cap >= HTTP_MAX)
                break;
            cap *= 2;
            r->raw = xrealloc(r->raw, cap + 1);
        }
        ssize_t got = read(fd, r->raw + len, cap - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(why, whycap, "read: %s", strerror(errno));
            close(fd);
            free(r->raw);
            r->raw = NULL;
            return -1;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    r->raw[len] = '\0';
    char *end = strstr(r->raw, "\r\n\r\n");
    if (!end || sscanf(r->raw, "HTTP/1.%*d %d", &r->status) != 1) {
        snprintf(why, whycap, "not an HTTP response (%zu bytes)", len);
        free(r->raw);
        r->raw = NULL;
        return -1;
    }
    size_t clen;
    int chunked;
    end[2] = '\0'; /* the headers, each line ending in CRLF */
    parse_headers(r, r->raw, &clen, &chunked);
    r->body = end + 4;
    r->body_len = len - (size_t)(r->body - r->raw);
    if (chunked)
        r->body_len = dechunk(r->body, r->body_len);
    else if (clen != (size_t)-1 && clen < r->body_len)
        r->body_len = clen;
    r->body[r->body_len] = '\0';
    return 0;
}

static void http_free(http_resp *r)
{
    free(r->raw);
    r->raw = r->body = NULL;
}

/* ---- starting an instance ---- */

/* The line `billgen: listening on http://ADDR:PORT with N workers`. */
static int parse_listening(const char *text, service *s)
{
    const char *p = strstr(text, "listening on http://");
    if (!p)
        return 0;
    p += strlen("listening on http://");
    const char *with = strstr(p, " with "), *eol = strchr(p, '\n');
    if (!with || !eol || with > eol)
        return 0;
    const char *colon = with;
    while (colon > p && *colon != ':')
        colon--;
    if (colon == p || colon - p >= (long)sizeof(s->addr))
        return 0;
    snprintf(s->addr, sizeof(s->addr), "%.*s", (int)(colon - p), p);
    if (s->addr[0] == '[')
        snprintf(s->host, sizeof(s->host), "%.*s", (int)strlen(s->addr) - 2,
                 s->addr + 1);
    else
        snprintf(s->host, sizeof(s->host), "%s", s->addr);
    s->port = atoi(colon + 1);
    s->workers = atoi(with + 6);
    return s->port > 0;
}

/* The "status" of a /health body ("?" if none). */
static void health_status(const char *body, char *out, size_t cap)
{
    const char *p = strstr(body, "\"status\"");
    snprintf(out, cap, "?");
    if (!p || !(p = strchr(p + 8, '"')))
        return;
    snprintf(out, cap, "%.*s", (int)strcspn(p + 1, "\""), p + 1);
}

static int start_service(service *s, const char *bin, const char *db,
                         char *const envp[], int no_cache)
{
    char workers[8], why[200];
    snprintf(workers, sizeof(workers), "%d", WORKERS);
    char *argv[] = {(char *)bin, "serve",     "--port",
                    "0",         "--workers", workers,
                    "--db",      (char *)db,  no_cache ? "--no-cache" : NULL,
                    NULL};
    s->pid = start_child(argv, envp, s->out, s->err);
    if (s->pid < 0) {
        s->pid = 0;
        warn("%s instance: fork: %s", s->name, strerror(errno));
        return -1;
    }
    uint64_t t0 = now_ns(), deadline = t0 + START_MS * 1000000ull;
    int found = 0;
    while (!found && now_ns() < deadline) {
        char *text = read_file(s->out);
        found = text && parse_listening(text, s);
        free(text);
        if (!found && waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            kill(-s->pid, SIGKILL); /* a worker it may have forked */
            s->pid = 0;
            warn("%s instance exited at start", s->name);
            dump_tail(s->err);
            return -1;
        }
        if (!found)
            usleep(10000);
    }
    if (!found) {
        warn("%s instance: no `listening on http://ADDR:PORT with N "
             "workers` line on stdout within %d s",
             s->name, START_MS / 1000);
        dump_tail(s->out);
        dump_tail(s->err);
        return -1;
    }
    if (s->workers != WORKERS)
        warn("%s instance: says %d workers, asked for %d", s->name, s->workers,
             WORKERS);
    if (s->workers < 1 || s->workers > MAX_WORKERS)
        s->workers = WORKERS;
    /* The socket is listening: the first /health waits for a worker. */
    http_resp r;
    int rc;
    while ((rc = http_get(s, "/health", NULL, &r, why, sizeof(why))) != 0 ||
           r.status != 200) {
        if (rc == 0)
            snprintf(why, sizeof(why), "status %d", r.status);
        http_free(&r);
        if (now_ns() >= deadline) {
            warn("%s instance: GET /health: %s", s->name, why);
            dump_tail(s->err);
            return -1;
        }
        usleep(50000);
    }
    char status[32];
    health_status(r.body, status, sizeof(status));
    progress("billgen: %s instance on %s:%d, %d workers, up in %.0f ms; "
             "/health: %s",
             s->name, s->addr, s->port, s->workers,
             (double)(now_ns() - t0) / 1e6, r.body);
    if (strcmp(status, "ok") != 0 && !no_cache)
        warn("%s instance: /health status \"%s\" with Redis up", s->name,
             status);
    if (r.worker < 1 || r.worker > s->workers)
        warn("%s instance: X-Worker \"%d\" not in 1..%d", s->name, r.worker,
             s->workers);
    http_free(&r);
    return 0;
}

/* The environment of the services: ours, REDIS_* replaced by REDIS_URL
   to the bench's server (*url, to free with the array). */
static char **service_env(const th_redis *r, char **url)
{
    extern char **environ;
    size_t n = 0, k = 0;
    while (environ[n])
        n++;
    char **env = xcalloc(n + 2, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "REDIS_", 6) != 0)
            env[k++] = environ[i];
    *url = xcalloc(64, 1);
    snprintf(*url, 64, "REDIS_URL=redis://127.0.0.1:%d", th_redis_port(r));
    env[k++] = *url;
    env[k] = NULL;
    return env;
}

/* ---- /metrics ---- */

typedef struct counters {
    int seen;
    double queries, requests;
} counters;

/* The sum of a counter's samples, skipping those whose labels hold
   skip (NULL: none); *found: samples counted. */
static double sum_metric(const char *body, const char *name, const char *skip,
                         int *found)
{
    size_t nl = strlen(name);
    double sum = 0.0;
    *found = 0;
    for (const char *line = body; line && *line;) {
        const char *eol = strchr(line, '\n'), *next = eol ? eol + 1 : NULL;
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        const char *p = line + nl;
        if (line[0] != '#' && len > nl && !strncmp(line, name, nl) &&
            (*p == '{' || *p == ' ')) {
            /* the last brace: a label value may hold one ({id}) */
            const char *close = *p == '{' ? memrchr(p, '}', len - nl) : p;
            if (close && (!skip || !memmem(p, (size_t)(close - p), skip,
                                           strlen(skip)))) {
                sum += strtod(close + (*p == '{'), NULL);
                ++*found;
            }
        }
        line = next;
    }
    return sum;
}

/* Fills w[1..workers] from /metrics until each worker has answered (or
   SCRAPE_TRIES). Returns how many answered; -1 if the metrics lack the
   counters. */
static int scrape(const service *s, counters *w)
{
    int seen = 0;
    char why[200];
    memset(w, 0, (MAX_WORKERS + 1) * sizeof(*w));
    for (int i = 0; i < SCRAPE_TRIES && seen < s->workers; i++) {
        http_resp r;
        if (i % 32 == 31)
            usleep(20000); /* let the workers' accept order move */
        if (http_get(s, "/metrics", NULL, &r, why, sizeof(why)) != 0)
            continue;
        int k = r.worker, fq, fr;
        if (r.status == 200 && k >= 1 && k <= s->workers && !w[k].seen) {
            w[k].queries =
                sum_metric(r.body, "billgen_sqlite_queries_total", NULL, &fq);
            /* not the scrapes themselves */
            w[k].requests = sum_metric(r.body, "billgen_http_requests_total",
                                       "metrics", &fr);
            /* a worker that has answered nothing yet has no samples,
               only the TYPE line */
            if ((!fq &&
                 !strstr(r.body, "# TYPE billgen_sqlite_queries_total")) ||
                (!fr &&
                 !strstr(r.body, "# TYPE billgen_http_requests_total"))) {
                http_free(&r);
                return -1;
            }
            w[k].seen = 1;
            seen++;
        }
        http_free(&r);
    }
    return seen;
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
            warn("%s: worker %d's counters went back during the run "
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
        warn("%s: the workers' billgen_http_requests_total grew by %.0f, "
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
    int seen_a = scrape(svc, before);
    if (run_wrk(url, secs, w) != 0) {
        warn("%s: wrk failed on %s", c->name, url);
        goto out;
    }
    int seen_b = scrape(svc, after);
    if (seen_a < 0 || seen_b < 0) {
        c->qpr[round] = -1.0;
        warn("/metrics lacks billgen_sqlite_queries_total or "
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
        warn("%s: wrk saw %ld non-2xx/3xx responses and %ld socket errors "
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
        if (http_get(s, path, NULL, &r, why, sizeof(why)) != 0) {
            warn("GET %s: %s", path, why);
            return -1;
        }
        if (r.status != 200) {
            warn("GET %s: status %d: %.200s", path, r.status, r.body);
            http_free(&r);
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
        http_free(&r);
    }
    progress("billgen: warmed %s in %d GETs (X-Cache@worker:%s%s)", path, i,
             trail, tl >= sizeof(trail) - 24 ? " ..." : "");
    if (nhit < s->workers)
        warn("GET %s: only %d of %d workers answered hit-l1 in %d GETs", path,
             nhit, s->workers, i);
    return 0;
}

/* The --no-cache twin of a warmed GET: bypass, and the same body; and
   the cached instance's ETag answered with 304. */
static int check_pair(const service *cached, const service *nc,
                      const char *path, const char *body)
{
    http_resp r;
    char why[200], inm[200];
    if (http_get(nc, path, NULL, &r, why, sizeof(why)) != 0 ||
        r.status != 200) {
        warn("GET %s (--no-cache): %s", path, r.raw ? "status not 200" : why);
        http_free(&r);
        return -1;
    }
    if (strcmp(r.xcache, "bypass") != 0)
        warn("GET %s (--no-cache): X-Cache \"%s\", want bypass", path,
             r.xcache);
    if (!body || strcmp(r.body, body) != 0)
        warn("GET %s: cached and --no-cache bodies differ (%zu vs %zu "
             "bytes)",
             path, body ? strlen(body) : 0, r.body_len);
    http_free(&r);
    if (http_get(cached, path, NULL, &r, why, sizeof(why)) != 0)
        return 0;
    if (!r.etag[0]) {
        warn("GET %s: no ETag", path);
    } else {
        snprintf(inm, sizeof(inm), "If-None-Match: %s", r.etag);
        http_free(&r);
        if (http_get(cached, path, inm, &r, why, sizeof(why)) == 0 &&
            r.status != 304)
            warn("GET %s with a matching If-None-Match: status %d, want 304",
                 path, r.status);
    }
    http_free(&r);
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
    pid_t pid = start_child(argv, envp, out, err);
    int rc = pid > 0 ? wait_exit(pid) : -1;
    double secs = (double)(now_ns() - t0) / 1e9;
    if (rc != 0) {
        warn("billgen seed: exit status %d", rc);
        dump_tail(out);
        dump_tail(err);
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
    if (http_get(&svc[0], STATIC_PATH, NULL, &nf, why, sizeof(why)) != 0 ||
        nf.status != 404) {
        warn("GET %s: %s, want a 404", STATIC_PATH,
             nf.raw ? "another status" : why);
        http_free(&nf);
        goto out;
    }
    http_free(&nf);
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
    if (http_get(&svc[0], cs[C_ITEM].path, NULL, &h, why, sizeof(why)) == 0) {
        if (strcmp(h.xcache, "hit-l1") != 0)
            warn("GET %s after the runs: X-Cache \"%s\", want hit-l1",
                 cs[C_ITEM].path, h.xcache);
        http_free(&h);
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
    static int registered;
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
    if (!registered++)
        atexit(stop_live);
    char *url;
    char **env = service_env(r, &url);
    warned = 0;
    progress("billgen: %s, database in %s", cfg->billgen, dir);
    if (seed(cfg->billgen, dir, db, env, &z) != 0)
        goto out;
    for (int i = 0; i < 2; i++) {
        snprintf(svc[i].out, sizeof(svc[i].out), "%s/%s.out", dir,
                 svc[i].name);
        snprintf(svc[i].err, sizeof(svc[i].err), "%s/%s.err", dir,
                 svc[i].name);
        live[i] = &svc[i];
        if (start_service(&svc[i], cfg->billgen, db, env, i) != 0)
            goto out;
    }
    rc = measure(cfg, svc, &z);
out:
    for (int i = 0; i < 2; i++) {
        if (svc[i].pid > 0)
            stop_service(&svc[i], 0);
        live[i] = NULL;
    }
    if (rc != 0 || warned) {
        /* what the services said, for the report */
        for (int i = 0; i < 2; i++)
            if (svc[i].err[0])
                dump_tail(svc[i].err);
    }
    if (rc != 0)
        add_note("billgen: FAILED (above); no rows");
    remove_tree(dir);
    free(url);
    free(env);
    return rc;
}
