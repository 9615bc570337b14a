/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * stampede: T threads in each of P processes call tc_fetch on one cold
 * key whose computation takes COMPUTE_MS, beside a naive cache-aside
 * (tc_get; on a miss compute and tc_set) under the same load. Figures:
 * how many times the computation ran (target 1: single-flight in the
 * process, a lease across processes) with the naive count as the floor,
 * and the callers' wait p99 beside the compute time itself.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define COMPUTE_MS 50
#define MAX_THREADS 16

typedef struct shared {
    atomic_int computes;
    atomic_int ready; /* processes at the barrier */
    atomic_int go;
    uint64_t wait_ns[8 * MAX_THREADS]; /* one slot per caller */
} shared;

typedef struct caller {
    tc_cache *c;
    shared *sh;
    const char *key;
    int naive;
    uint64_t *wait_ns;
} caller;

static int compute(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    shared *sh = ud;
    (void)ttl;
    atomic_fetch_add(&sh->computes, 1);
    usleep(COMPUTE_MS * 1000);
    *val = strdup("computed");
    *len = 8;
    return 0;
}

static void *call(void *arg)
{
    caller *k = arg;
    while (!atomic_load(&k->sh->go))
        ;
    uint64_t t0 = now_ns();
    tc_value *v = NULL;
    if (!k->naive) {
        tc_fetch(k->c, k->key, 0, compute, k->sh, &v);
    } else if (tc_get(k->c, k->key, &v) == TC_MISS) {
        void *val;
        size_t len;
        uint32_t ttl = 0;
        compute(k->sh, &val, &len, &ttl);
        tc_set(k->c, k->key, val, len, 0);
        free(val);
    }
    tc_value_release(v);
    *k->wait_ns = now_ns() - t0;
    return NULL;
}

/* One process: its own cache, T callers behind the shared barrier. */
static void run_process(const th_redis *r, shared *sh, int p, int threads,
                        const char *key, int naive)
{
    tc_options o;
    th_options(r, &o);
    /* One namespace for all the processes: they share one cache. */
    snprintf(o.ns, sizeof(o.ns), "stampede");
    o.command_timeout_ms = 2000;
    tc_cache *c = NULL;
    if (tc_open(&c, &o) != TC_OK)
        die("stampede: tc_open failed");
    pthread_t t[MAX_THREADS];
    caller k[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        k[i] = (caller){c, sh, key, naive, &sh->wait_ns[p * threads + i]};
        pthread_create(&t[i], NULL, call, &k[i]);
    }
    atomic_fetch_add(&sh->ready, 1);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    tc_close(c);
}

/* Returns the computations; fills *p99 with the callers' wait, in us. */
static int one_load(const th_redis *r, int threads, int procs, int naive,
                    const char *key, double *p99)
{
    shared *sh = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        die("stampede: mmap failed");
    memset(sh, 0, sizeof(*sh));
    pid_t pids[8];
    for (int p = 0; p < procs; p++) {
        pids[p] = fork();
        if (pids[p] < 0)
            die("stampede: fork failed");
        if (pids[p] == 0) {
            mark_child();
            run_process(r, sh, p, threads, key, naive);
            _exit(0);
        }
    }
    while (atomic_load(&sh->ready) < procs)
        usleep(1000);
    atomic_store(&sh->go, 1);
    for (int p = 0; p < procs; p++)
        if (wait_exit(pids[p]) != 0)
            die("stampede: a process failed");
    size_t n = (size_t)threads * (size_t)procs;
    qsort(sh->wait_ns, n, sizeof(uint64_t), cmp_u64);
    *p99 = pct_us(sh->wait_ns, n, 99.0);
    int computes = atomic_load(&sh->computes);
    munmap(sh, sizeof(shared));
    return computes;
}

void bench_stampede(const th_redis *r, const bench_cfg *cfg)
{
    static const int shapes[][2] = {{16, 1}, {16, 4}};
    int nshapes = cfg->smoke ? 1 : 2;
    for (int s = 0; s < nshapes; s++) {
        int threads = shapes[s][0], procs = shapes[s][1];
        char key[KEY_CAP], naive_key[KEY_CAP], metric[64];
        snprintf(key, sizeof(key), "cold%dx%d", threads, procs);
        snprintf(naive_key, sizeof(naive_key), "naive%dx%d", threads, procs);
        progress("stampede: %d threads x %d processes, %d ms compute", threads,
                 procs, COMPUTE_MS);
        double p99, naive_p99;
        int runs = one_load(r, threads, procs, 0, key, &p99);
        int naive = one_load(r, threads, procs, 1, naive_key, &naive_p99);
        snprintf(metric, sizeof(metric), "fetch_%dx%d_computes", threads,
                 procs);
        add_row("stampede", metric, U_COUNT, runs, naive,
                "naive cache-aside (get, compute on miss, set), same load");
        snprintf(metric, sizeof(metric), "fetch_%dx%d_wait_p99_us", threads,
                 procs);
        add_row("stampede", metric, U_USEC, p99, COMPUTE_MS * 1000.0,
                "the compute time itself");
    }
}
