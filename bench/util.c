/* SPDX-License-Identifier: BSD-3-Clause */
/* tc-bench helpers: messages, clocks, percentiles, the Zipf key sequence
   and child processes (decompressors, gnuplot). */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

static int is_child;

void mark_child(void)
{
    is_child = 1;
}

void die(const char *fmt, ...)
{
    va_list ap;
    fputs(is_child ? "tc-bench (child): " : "tc-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    /* The harness's atexit handler kills the redis-server: the parent's
       business, never a child's. */
    if (is_child)
        _exit(1);
    exit(1);
}

void progress(const char *fmt, ...)
{
    va_list ap;
    fputs("tc-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die("out of memory");
    return p;
}

void *xrealloc(void *p, size_t size)
{
    p = realloc(p, size ? size : 1);
    if (!p)
        die("out of memory");
    return p;
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

char *make_payload(size_t len)
{
    char *p = xcalloc(len, 1);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)('a' + i % 26);
    return p;
}

const char *size_name(size_t n)
{
    return n == 64 ? "64B" : n == 1024 ? "1KiB" : "16KiB";
}

int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

double pct_us(const uint64_t *sorted, size_t n, double pct)
{
    if (n == 0)
        return 0.0;
    /* ceil(pct% of n), 1-based; the epsilon keeps 99.9% of 1000 at 999 */
    size_t rank = (size_t)ceil(pct * (double)n / 100.0 - 1e-9);
    if (rank > n)
        rank = n;
    return (double)sorted[rank ? rank - 1 : 0] / 1000.0;
}

uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Drawn before any timing, so that timed loops do no RNG work. */
uint32_t *zipf_sequence(size_t n, uint32_t nkeys, double s, uint64_t seed)
{
    double *cdf = xcalloc(nkeys, sizeof(*cdf));
    double sum = 0.0;
    for (uint32_t r = 0; r < nkeys; r++) {
        sum += pow(r + 1.0, -s);
        cdf[r] = sum;
    }
    uint32_t *seq = xcalloc(n, sizeof(*seq));
    for (size_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(&seed) >> 11) * 0x1.0p-53 * sum;
        uint32_t lo = 0, hi = nkeys - 1;
        while (lo < hi) { /* the first rank whose cdf reaches u */
            uint32_t mid = lo + (hi - lo) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        seq[i] = lo;
    }
    free(cdf);
    return seq;
}

pid_t spawn(const char *const argv[], int *out_fd)
{
    posix_spawn_file_actions_t fa;
    int fds[2] = {-1, -1}, err;
    pid_t pid;
    if (out_fd && pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    if (out_fd) {
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
        posix_spawn_file_actions_addclose(&fa, fds[1]);
    }
    /* posix_spawn's argv is char *const[]; it does not write to it. */
    err = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (out_fd) {
        close(fds[1]);
        if (err)
            close(fds[0]);
        else
            *out_fd = fds[0];
    }
    if (err) {
        errno = err;
        return -1;
    }
    return pid;
}

int wait_exit(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        die("mkdir %s: %s", path, strerror(errno));
}

void make_results_dir(void)
{
    make_dir("bench");
    make_dir(RESULTS_DIR);
}
