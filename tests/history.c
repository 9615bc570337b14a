/* SPDX-License-Identifier: BSD-3-Clause */
/* Operation logs and the staleness check. See history.h. */
#include "history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "tiercache.h"

/* How many violations th_hist_check prints in detail. */
#define TH_HIST_SHOW 5

static size_t log_size(uint32_t cap)
{
    return sizeof(th_log) + (size_t)cap * sizeof(th_op);
}

th_log *th_log_new(uint32_t cap, int shared)
{
    th_log *l;

    if (shared) {
        l = mmap(NULL, log_size(cap), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (l == MAP_FAILED)
            return NULL;
    } else {
        l = calloc(1, log_size(cap));
        if (!l)
            return NULL;
    }
    l->cap = cap;
    l->n = 0;
    l->shared = shared;
    return l;
}

void th_log_free(th_log *l)
{
    if (!l)
        return;
    if (l->shared)
        munmap(l, log_size(l->cap));
    else
        free(l);
}

uint64_t th_now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

th_op *th_log_begin(th_log *l, uint32_t key, th_op_kind kind)
{
    th_op *op;

    if (l->n >= l->cap)
        return NULL;
    op = &l->ops[l->n];
    memset(op, 0, sizeof *op);
    op->key = key;
    op->kind = kind;
    op->start_us = th_now_us();
    return op;
}

void th_log_end(th_log *l, th_op *op, int rc, int64_t ver)
{
    op->end_us = th_now_us();
    op->rc = rc;
    op->ver = ver;
    l->n++;
}

int64_t th_hist_version(const void *data, size_t len)
{
    const char *p = data;
    int64_t v = 0;

    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* ---- the check ---- */

typedef struct key_writes {
    const th_op **w; /* in version order */
    uint32_t n, cap;
} key_writes;

static int is_error(const th_op *op)
{
    if (op->kind == TH_OP_GET)
        return op->rc != TC_OK && op->rc != TC_MISS;
    return op->rc != TC_OK;
}

static int add_write(key_writes *k, const th_op *op)
{
    if (k->n == k->cap) {
        uint32_t cap = k->cap ? k->cap * 2 : 64;
        const th_op **w = realloc(k->w, cap * sizeof *w);
        if (!w)
            return -1;
        k->w = w;
        k->cap = cap;
    }
    k->w[k->n++] = op;
    return 0;
}

/* The newest write acknowledged at or before t, or -1. The writes of a
   key come from one thread, one after the other: their end times
   increase with their index. */
static long newest_before(const key_writes *k, uint64_t t)
{
    long lo = 0, hi = (long)k->n - 1, found = -1;

    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        if (k->w[mid]->end_us <= t) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

/* What one check needs besides the read: shown counts down from the
   caller's limit. */
typedef struct check_ctx {
    uint64_t from_us, stale_us;
    long shown;
    int show_lost;
    th_hist_result *out;
} check_ctx;

static void show(const char *what, int log, const th_op *rd, const th_op *w,
                 long *shown)
{
    if (*shown <= 0)
        return;
    (*shown)--;
    fprintf(stderr,
            "  %s: key %u read by log %d in [%llu, %llu] us got %lld; "
            "newest write due: %s %lld in [%llu, %llu] us\n",
            what, rd->key, log, (unsigned long long)rd->start_us,
            (unsigned long long)rd->end_us, (long long)rd->ver,
            w->kind == TH_OP_SET ? "set" : "del", (long long)w->ver,
            (unsigned long long)w->start_us, (unsigned long long)w->end_us);
}

/* How long before rd began the value it read had been replaced by an
   acknowledged write (one begun at or after from_us); 0 if it had not.
   The write that replaced version v is the one numbered v + 1, w[v]. */
static double staleness_ms(const th_op *rd, const key_writes *k,
                           uint64_t from_us)
{
    if (rd->ver <= 0 || rd->ver >= (int64_t)k->n)
        return 0;
    const th_op *next = k->w[rd->ver];
    if (next->start_us < from_us || next->end_us >= rd->start_us)
        return 0;
    return (double)(rd->start_us - next->end_us) / 1000.0;
}

/* Checks one successful read; adds to out. */
static void check_read(const th_op *rd, int log, const key_writes *k,
                       check_ctx *cx)
{
    uint64_t from_us = cx->from_us, stale_us = cx->stale_us;
    th_hist_result *out = cx->out;
    long *shown = &cx->shown;
    long i = rd->start_us >= stale_us
                 ? newest_before(k, rd->start_us - stale_us)
                 : -1;
    double age = staleness_ms(rd, k, from_us);

    if (age > out->worst_stale_ms)
        out->worst_stale_ms = age;
    if (i < 0 || k->w[i]->start_us < from_us)
        return; /* nothing acknowledged to compare with */
    out->checked++;
    const th_op *due = k->w[i];
    if (rd->ver != 0) {
        /* a value: at least as new as the write due, and one that a set
           begun before the read ended has stored */
        const th_op *src =
            rd->ver > 0 && rd->ver <= (int64_t)k->n ? k->w[rd->ver - 1] : NULL;
        if (rd->ver < due->ver || !src || src->kind != TH_OP_SET ||
            src->start_us > rd->end_us) {
            out->stale++;
            show("stale read", log, rd, due, shown);
        }
        return;
    }
    /* a miss: right after a delete, or a delete under way */
    if (due->kind == TH_OP_DEL)
        return;
    for (uint32_t j = (uint32_t)i + 1;
         j < k->n && k->w[j]->start_us <= rd->end_us; j++)
        if (k->w[j]->kind == TH_OP_DEL)
            return;
    out->lost++;
    if (cx->show_lost)
        show("missed a value", log, rd, due, shown);
}

/* 1 if the read began in o's window. */
static int in_window(const th_op *op, const th_hist_opts *o)
{
    return op->start_us >= o->reads_from_us &&
           (o->reads_until_us == 0 || op->start_us < o->reads_until_us);
}

void th_hist_check(th_log *const *logs, int nlogs, uint32_t nkeys,
                   uint64_t from_us, uint32_t stale_ms, th_hist_result *out)
{
    th_hist_opts o = {from_us, 0, 0, stale_ms, TH_HIST_SHOW, 1};

    th_hist_check_opts(logs, nlogs, nkeys, &o, out);
}

void th_hist_check_opts(th_log *const *logs, int nlogs, uint32_t nkeys,
                        const th_hist_opts *o, th_hist_result *out)
{
    key_writes *keys = calloc(nkeys ? nkeys : 1, sizeof *keys);
    check_ctx cx = {o->from_us, (uint64_t)o->stale_ms * 1000u, o->show,
                    o->show_lost, out};

    memset(out, 0, sizeof *out);
    if (!keys) {
        out->broken = 1;
        return;
    }
    /* the writes of each key, in their writer's order */
    for (int l = 0; l < nlogs; l++)
        for (uint32_t i = 0; logs[l] && i < logs[l]->n; i++) {
            const th_op *op = &logs[l]->ops[i];
            out->errors += is_error(op);
            if (op->kind == TH_OP_GET)
                continue;
            out->writes++;
            if (op->key >= nkeys || add_write(&keys[op->key], op) != 0)
                out->broken++;
        }
    for (uint32_t k = 0; k < nkeys; k++)
        for (uint32_t i = 0; i < keys[k].n; i++)
            if (keys[k].w[i]->ver != (int64_t)i + 1) {
                out->broken++;
                fprintf(stderr, "  key %u: write %u is numbered %lld\n", k, i,
                        (long long)keys[k].w[i]->ver);
                break;
            }
    for (int l = 0; l < nlogs; l++)
        for (uint32_t i = 0; logs[l] && i < logs[l]->n; i++) {
            const th_op *op = &logs[l]->ops[i];
            if (op->kind != TH_OP_GET || !in_window(op, o))
                continue;
            out->reads++;
            if (op->key < nkeys && !is_error(op))
                check_read(op, l, &keys[op->key], &cx);
        }
    for (uint32_t k = 0; k < nkeys; k++)
        free(keys[k].w);
    free(keys);
}

void th_hist_print(const char *label, const th_hist_result *r)
{
    fprintf(stderr,
            "  %s: %ld writes, %ld reads (%ld checked): %ld errors, %ld "
            "stale, %ld lost, %ld broken\n",
            label, r->writes, r->reads, r->checked, r->errors, r->stale,
            r->lost, r->broken);
}
