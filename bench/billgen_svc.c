/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The billgen scenario's services (billgen.h): starting and stopping
 * billgen processes, a minimal HTTP/1.1 client to talk to an instance,
 * and the counters of its workers' /metrics.
 *
 * Every process started here is in a process group of its own, gets
 * SIGTERM if tc-bench dies (PR_SET_PDEATHSIG), and is stopped by SIGTERM
 * and waited for at the end (SIGKILL to its group only if it does not
 * go).
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

#include "billgen.h"

#define WORKERS 2      /* per instance */
#define START_MS 20000 /* until the listening line and a 200 /health */
#define STOP_MS 15000  /* from SIGTERM to the parent's exit */
#define HTTP_TIMEOUT_S 10
#define HTTP_MAX (16u << 20)
#define SCRAPE_TRIES 256 /* /metrics GETs to meet every worker */
#define LIVE_MAX 2       /* services running at once */

/* ---- child processes ---- */

static service *live[LIVE_MAX]; /* for the exit handler */
int svc_warned;

void svc_warn(const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    progress("billgen: WARNING: %s", msg);
    add_note("billgen: WARNING: %s", msg);
    svc_warned = 1;
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

pid_t svc_child(char *const argv[], char *const envp[], const char *out,
                const char *err)
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

/* svc_stop (billgen.h), the exit handler's list aside. */
static int stop_group(service *s, int quiet)
{
    int st = 0, code = -1, zombies;
    pid_t w = 0;
    if (s->pid <= 0)
        return 0;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
        if (!quiet && WIFEXITED(st))
            svc_warn("%s instance: had exited by itself, status %d", s->name,
                     WEXITSTATUS(st));
        else if (!quiet)
            svc_warn("%s instance: had died by itself, signal %d", s->name,
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
            svc_warn("%s instance: still running %d s after SIGTERM: killed",
                     s->name, STOP_MS / 1000);
        kill(-s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
    } else if (w > 0 && WIFEXITED(st)) {
        code = WEXITSTATUS(st);
        if (code != 0 && !quiet)
            svc_warn("%s instance: exit status %d after SIGTERM (want 0)",
                     s->name, code);
    } else if (w > 0 && !quiet) {
        svc_warn("%s instance: killed by signal %d after SIGTERM", s->name,
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
            svc_warn("%s instance: %d process(es) of its group still running "
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
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i])
            svc_stop(live[i], 1);
}

/* Puts s on the list stop_live stops (add), or takes it off. */
static void list_live(service *s, int add)
{
    static int registered;
    if (add && !registered++)
        atexit(stop_live);
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i] == (add ? NULL : s)) {
            live[i] = add ? s : NULL;
            return;
        }
}

int svc_stop(service *s, int quiet)
{
    int code = stop_group(s, quiet);
    list_live(s, 0);
    return code;
}

void svc_tail(const char *path)
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

int svc_get(const service *s, const char *path, const char *extra,
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

void svc_resp_free(http_resp *r)
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

int svc_start(service *s, const char *bin, const char *db, char *const envp[],
              int no_cache)
{
    char workers[8], why[200];
    list_live(s, 1);
    snprintf(workers, sizeof(workers), "%d", WORKERS);
    char *argv[] = {(char *)bin, "serve",     "--port",
                    "0",         "--workers", workers,
                    "--db",      (char *)db,  no_cache ? "--no-cache" : NULL,
                    NULL};
    s->pid = svc_child(argv, envp, s->out, s->err);
    if (s->pid < 0) {
        s->pid = 0;
        svc_warn("%s instance: fork: %s", s->name, strerror(errno));
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
            svc_warn("%s instance exited at start", s->name);
            svc_tail(s->err);
            return -1;
        }
        if (!found)
            usleep(10000);
    }
    if (!found) {
        svc_warn("%s instance: no `listening on http://ADDR:PORT with N "
                 "workers` line on stdout within %d s",
                 s->name, START_MS / 1000);
        svc_tail(s->out);
        svc_tail(s->err);
        return -1;
    }
    if (s->workers != WORKERS)
        svc_warn("%s instance: says %d workers, asked for %d", s->name,
                 s->workers, WORKERS);
    if (s->workers < 1 || s->workers > MAX_WORKERS)
        s->workers = WORKERS;
    /* The socket is listening: the first /health waits for a worker. */
    http_resp r;
    int rc;
    while ((rc = svc_get(s, "/health", NULL, &r, why, sizeof(why))) != 0 ||
           r.status != 200) {
        if (rc == 0)
            snprintf(why, sizeof(why), "status %d", r.status);
        svc_resp_free(&r);
        if (now_ns() >= deadline) {
            svc_warn("%s instance: GET /health: %s", s->name, why);
            svc_tail(s->err);
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
        svc_warn("%s instance: /health status \"%s\" with Redis up", s->name,
                 status);
    if (r.worker < 1 || r.worker > s->workers)
        svc_warn("%s instance: X-Worker \"%d\" not in 1..%d", s->name,
                 r.worker, s->workers);
    svc_resp_free(&r);
    return 0;
}

char **svc_env(const th_redis *r, char **url)
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

int svc_scrape(const service *s, counters *w)
{
    int seen = 0;
    char why[200];
    memset(w, 0, (MAX_WORKERS + 1) * sizeof(*w));
    for (int i = 0; i < SCRAPE_TRIES && seen < s->workers; i++) {
        http_resp r;
        if (i % 32 == 31)
            usleep(20000); /* let the workers' accept order move */
        if (svc_get(s, "/metrics", NULL, &r, why, sizeof(why)) != 0)
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
                svc_resp_free(&r);
                return -1;
            }
            w[k].seen = 1;
            seen++;
        }
        svc_resp_free(&r);
    }
    return seen;
}
