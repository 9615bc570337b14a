/* SPDX-License-Identifier: BSD-3-Clause */
/* Belady's optimal replacement (MIN): on a miss with the cache full,
   evict the key whose next use is farthest in the future. No policy can
   get more hits in a cache of that size, so it is the hit-ratio floor
   (a ceiling, really) every policy is measured against.

   Next uses are precomputed in one backward pass; the cached keys sit in
   a max-heap on their next use. A hit re-pushes its key with the new
   next use and leaves the old entry behind; stale entries are skipped
   when they surface, and the heap is rebuilt from the live ones when
   they pile up. O(n log n) over the trace. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "traces.h"

#define NOT_CACHED UINT32_MAX

uint32_t *belady_next(const trace *t)
{
    if (t->n >= (size_t)1 << 31)
        die("%s: trace too long for 32-bit next-use indices", t->name);
    uint32_t *next = xcalloc(t->n, sizeof(*next));
    uint32_t *last = xcalloc(t->nkeys, sizeof(*last));
    memset(last, 0xff, t->nkeys * sizeof(*last));
    for (size_t i = t->n; i-- > 0;) {
        uint32_t k = t->ids[i];
        /* never used again: "n + i", unique and beyond every real use */
        next[i] = last[k] == NOT_CACHED ? (uint32_t)(t->n + i) : last[k];
        last[k] = (uint32_t)i;
    }
    free(last);
    return next;
}

/* A heap item: the next use in the high half (unique among live items),
   the key in the low half; the largest is the one to evict. */
typedef struct heap {
    uint64_t *a;
    size_t n, cap;
} heap;

static void heap_push(heap *h, uint64_t x)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 1024;
        h->a = xrealloc(h->a, h->cap * sizeof(*h->a));
    }
    size_t i = h->n++;
    while (i > 0 && h->a[(i - 1) / 2] < x) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = x;
}

static void sift_down(heap *h, size_t i)
{
    uint64_t x = h->a[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->a[c + 1] > h->a[c])
            c++;
        if (h->a[c] <= x)
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    h->a[i] = x;
}

static uint64_t heap_pop(heap *h)
{
    uint64_t top = h->a[0];
    h->a[0] = h->a[--h->n];
    if (h->n)
        sift_down(h, 0);
    return top;
}

static int live(const uint32_t *cur, uint64_t x)
{
    return cur[(uint32_t)x] == (uint32_t)(x >> 32);
}

/* Keeps only the live items and heapifies them, in O(n). */
static void heap_compact(heap *h, const uint32_t *cur)
{
    size_t m = 0;
    for (size_t i = 0; i < h->n; i++)
        if (live(cur, h->a[i]))
            h->a[m++] = h->a[i];
    h->n = m;
    for (size_t i = m / 2; i-- > 0;)
        sift_down(h, i);
}

uint64_t belady_hits(const trace *t, const uint32_t *next, uint32_t cap)
{
    /* cur[k]: the next use of k while cached, NOT_CACHED otherwise */
    uint32_t *cur = xcalloc(t->nkeys, sizeof(*cur));
    memset(cur, 0xff, t->nkeys * sizeof(*cur));
    heap h = {0};
    uint64_t hits = 0;
    uint32_t count = 0;
    for (size_t i = 0; i < t->n && cap > 0; i++) {
        uint32_t k = t->ids[i];
        if (cur[k] != NOT_CACHED) {
            hits++;
        } else if (count == cap) {
            /* Demand paging: the missed key always enters; the victim is
               the cached key used farthest from now. */
            uint64_t x;
            do
                x = heap_pop(&h);
            while (!live(cur, x));
            cur[(uint32_t)x] = NOT_CACHED;
        } else {
            count++;
        }
        cur[k] = next[i];
        heap_push(&h, (uint64_t)next[i] << 32 | k);
        if (h.n > 4 * (size_t)cap + 4096)
            heap_compact(&h, cur);
    }
    free(h.a);
    free(cur);
    return hits;
}
