/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * billgen serve | seed. `serve` is a prefork server: the parent binds the
 * socket and migrates the database once, forks the workers (each opens
 * its own tc_cache after the fork), restarts a worker that dies, and on
 * SIGTERM/SIGINT passes SIGTERM on and waits for them all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "billgen.h"

#define MAX_WORKERS 64

typedef struct serve_opts {
    const char *bind, *db;
    long port, workers, threads;
    int no_cache;
} serve_opts;

static void usage(FILE *f)
{
    fprintf(f, "usage: billgen serve [--port P] [--bind ADDR] [--workers N] "
               "[--threads T]\n"
               "                     [--db FILE] [--no-cache]\n"
               "       billgen seed --db FILE [--users U] [--products P] "
               "[--invoices I]\n"
               "Cache settings come from the environment (REDIS_URL, "
               "TC_NAMESPACE, ...);\nsee docs/billgen.md.\n");
}

/* A whole number in [lo, hi], or -1 with a message. */
static long number(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "billgen: --%s must be a number from %ld to %ld\n",
                opt, lo, hi);
        return -1;
    }
    return v;
}

static int listen_on(const char *addr, long port, int *out_port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "billgen: --bind %s is not an IPv4 address\n", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    socklen_t len = sizeof(sa);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        fprintf(stderr, "billgen: cannot listen on %s:%ld: %s\n", addr, port,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* Every worker accepts on it: one that loses the race must not
       block. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    *out_port = ntohs(sa.sin_port);
    return fd;
}

static pid_t start_worker(int fd, int n, const serve_opts *o, int cache_on,
                          pid_t parent)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* A worker must not outlive its parent. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(0);
    /* exit, not _exit: the parent has flushed its stdio, and a leak
       checker runs at exit. */
    exit(bg_serve_worker(fd, n, (int)o->threads, cache_on));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits for the workers; restarts those that die until told to stop. */
static int supervise(int fd, const serve_opts *o, int cache_on)
{
    pid_t pids[MAX_WORKERS + 1] = {0}, self = getpid();
    double started[MAX_WORKERS + 1] = {0};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);
    for (int n = 1; n <= o->workers; n++) {
        pids[n] = start_worker(fd, n, o, cache_on, self);
        started[n] = now_s();
    }
    int stopping = 0, alive = (int)o->workers;
    double stop_at = 0;
    while (alive > 0) {
        struct timespec tick = {0, 100000000}; /* 100 ms */
        int sig = sigtimedwait(&set, NULL, &tick);
        if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
            stopping = 1;
            stop_at = now_s();
            for (int n = 1; n <= o->workers; n++)
                if (pids[n] > 0)
                    kill(pids[n], SIGTERM);
        }
        if (stopping && now_s() - stop_at > 30) /* stuck: end it */
            for (int n = 1; n <= o->workers; n++)
                if (pids[n] > 0)
                    kill(pids[n], SIGKILL);
        int status;
        pid_t dead;
        while ((dead = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int n = 1; n <= o->workers; n++) {
                if (pids[n] != dead)
                    continue;
                pids[n] = stopping ? 0 : -1; /* -1: to restart */
                if (stopping)
                    alive--;
                else
                    fprintf(stderr,
                            "billgen: worker %d (pid %d) died; "
                            "restarting it\n",
                            n, (int)dead);
            }
        }
        for (int n = 1; !stopping && n <= o->workers; n++) {
            if (pids[n] == -1 && now_s() - started[n] >= 1.0) {
                pids[n] = start_worker(fd, n, o, cache_on, self);
                started[n] = now_s();
            }
        }
    }
    close(fd);
    return 0;
}

static int serve(int argc, char **argv)
{
    serve_opts o = {"127.0.0.1", "billgen.db", 8080, 2, 4, 0};
    static const struct option longs[] = {
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"workers", required_argument, NULL, 'w'},
        {"threads", required_argument, NULL, 't'},
        {"db", required_argument, NULL, 'd'},
        {"no-cache", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c == 'p' && (o.port = number("port", optarg, 0, 65535)) < 0)
            return 2;
        if (c == 'w' &&
            (o.workers = number("workers", optarg, 1, MAX_WORKERS)) < 0)
            return 2;
        if (c == 't' && (o.threads = number("threads", optarg, 1, 256)) < 0)
            return 2;
        if (c == 'b')
            o.bind = optarg;
        if (c == 'd')
            o.db = optarg;
        if (c == 'n')
            o.no_cache = 1;
        if (c == 'h' || c == '?') {
            usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? 0 : 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    char err[TC_ENV_ERROR_MAX];
    int configured = bg_cache_configured(err, sizeof(err));
    if (configured < 0) {
        fprintf(stderr, "billgen: bad cache configuration: %s\n", err);
        return 2;
    }
    if (!configured && !o.no_cache)
        fprintf(stderr, "billgen: no Redis configured (REDIS_URL=none): an "
                        "L1 alone is not coherent across workers, so "
                        "nothing is cached\n");
    if (bg_db_init(o.db) != 0)
        return 1;
    int port;
    int fd = listen_on(o.bind, o.port, &port);
    if (fd < 0)
        return 1;
    printf("billgen: listening on http://%s:%d with %ld workers\n", o.bind,
           port, o.workers);
    fflush(stdout);
    return supervise(fd, &o, configured && !o.no_cache);
}

static int seed(int argc, char **argv)
{
    const char *db = NULL;
    long n[3] = {100, 20, 500};
    static const struct option longs[] = {
        {"db", required_argument, NULL, 'd'},
        {"users", required_argument, NULL, 'u'},
        {"products", required_argument, NULL, 'p'},
        {"invoices", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        long *slot = c == 'u' ? &n[0] : c == 'p' ? &n[1] : &n[2];
        if (c == 'd') {
            db = optarg;
        } else if (c == '?') {
            usage(stderr);
            return 2;
        } else if ((*slot = number(longs[c == 'u'   ? 1
                                         : c == 'p' ? 2
                                                    : 3]
                                       .name,
                                   optarg, 0, 10000000)) < 0) {
            return 2;
        }
    }
    if (!db || optind < argc) {
        usage(stderr);
        return 2;
    }
    return bg_seed(db, n[0], n[1], n[2]);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "billgen: libsodium failed to start\n");
        return 1;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "serve") == 0)
        return serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "seed") == 0)
        return seed(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
