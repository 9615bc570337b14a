/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * memory: what an L1 entry costs, and whether the byte bound holds.
 *
 * Bytes per entry: N small entries (12-byte keys, 64-byte values) go into
 * an L1-only cache through tc_set; the growth of the resident set
 * (/proc/self/statm) over N is set beside the L1's own accounting
 * (l1_bytes / entries) and beside the key and value bytes themselves.
 * The malloc heap's growth (mallinfo2) is in the CSV: it does not depend
 * on which pages the kernel has touched.
 *
 * Byte bound: values of 16 B .. 4 KiB go into an L1 bounded to
 * l1_max_bytes until four times the bound has been written; l1_bytes is
 * read after every insert and its maximum set beside the bound.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define KEY_FMT "user:%07u" /* 12 bytes */
#define SMALL_VALUE 64
#define BOUND_BYTES ((uint64_t)4 << 20)

static uint64_t rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
        die("memory: cannot read /proc/self/statm");
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static uint64_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd; /* in use: small chunks and mmapped */
}

/* Freed memory goes back to the kernel, so that what follows is
   measured from a baseline without reusable pages in it. */
static void baseline(uint64_t *rss, uint64_t *heap)
{
    malloc_trim(0);
    *rss = rss_bytes();
    *heap = heap_bytes();
}

static tc_cache *open_l1_only(uint64_t max_entries, uint64_t max_bytes)
{
    tc_options o;
    tc_cache *c;
    th_options(NULL, &o); /* no host, no socket: L1-only */
    o.l1_max_entries = max_entries;
    o.l1_max_bytes = max_bytes;
    int rc = tc_open(&c, &o);
    if (rc != TC_OK)
        die("memory: tc_open: %s", tc_strerror(rc));
    return c;
}

static void per_entry(const bench_cfg *cfg, FILE *csv)
{
    char key[KEY_CAP], *val = make_payload(SMALL_VALUE);
    size_t n = cfg->mem_entries;
    uint64_t rss0, heap0;
    tc_stats_info st;
    /* twice the room: the bound is split over 16 shards by key hash */
    tc_cache *c = open_l1_only(2 * (uint64_t)n, (uint64_t)1 << 40);
    baseline(&rss0, &heap0);
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), KEY_FMT, (unsigned)i);
        if (tc_set(c, key, val, SMALL_VALUE, TTL_MS) != TC_OK)
            die("memory: tc_set failed");
    }
    double rss = (double)(rss_bytes() - rss0) / (double)n;
    double heap = ((double)heap_bytes() - (double)heap0) / (double)n;
    tc_stats(c, &st);
    if (st.l1_entries != n)
        die("memory: the L1 holds %llu of %zu entries",
            (unsigned long long)st.l1_entries, n);
    double acct = (double)st.l1_bytes / (double)st.l1_entries;
    double payload = (double)(strlen(key) + SMALL_VALUE);
    fprintf(csv,
            "entries,%zu\nvalue_bytes,%d\nrss_per_entry,%.1f\n"
            "heap_per_entry,%.1f\naccounted_per_entry,%.1f\n"
            "payload_per_entry,%.0f\n",
            n, SMALL_VALUE, rss, heap, acct, payload);
    add_row("memory", "bytes_per_entry_64B_rss", U_BYTES, rss, acct,
            "the L1's accounting: l1_bytes / entries");
    add_row("memory", "bytes_per_entry_64B_vs_payload", U_BYTES, rss, payload,
            "key + value bytes (12 + 64)");
    add_note("memory: %zu entries of 64 B: RSS %.1f B/entry, malloc heap "
             "%.1f B/entry, accounted %.1f B/entry",
             n, rss, heap, acct);
    progress("memory: %zu entries: RSS %.1f, heap %.1f, accounted %.1f "
             "bytes per entry",
             n, rss, heap, acct);
    tc_close(c);
    free(val);
}

static void bound(FILE *csv)
{
    char key[KEY_CAP], *val = make_payload(4096);
    uint64_t rss0, heap0, written = 0, max_seen = 0, max_rss = 0, seed = 9;
    tc_stats_info st;
    tc_cache *c = open_l1_only((uint64_t)1 << 30, BOUND_BYTES);
    baseline(&rss0, &heap0);
    for (unsigned i = 0; written < 4 * BOUND_BYTES; i++) {
        size_t len = 16 + (size_t)(splitmix64(&seed) % (4096 - 16));
        snprintf(key, sizeof(key), KEY_FMT, i);
        if (tc_set(c, key, val, len, TTL_MS) != TC_OK)
            die("memory: tc_set failed");
        written += len;
        tc_stats(c, &st);
        max_seen = st.l1_bytes > max_seen ? st.l1_bytes : max_seen;
        if (i % 256 == 0) {
            uint64_t rss = rss_bytes();
            max_rss = rss > max_rss ? rss : max_rss;
        }
    }
    uint64_t rss = rss_bytes() > max_rss ? rss_bytes() : max_rss;
    double growth = rss > rss0 ? (double)(rss - rss0) : 0.0;
    fprintf(csv,
            "bound_bytes,%llu\nbound_written_bytes,%llu\n"
            "bound_max_l1_bytes,%llu\nbound_entries_at_end,%llu\n"
            "bound_rss_growth,%.0f\nbound_heap_growth,%.0f\n",
            (unsigned long long)BOUND_BYTES, (unsigned long long)written,
            (unsigned long long)max_seen, (unsigned long long)st.l1_entries,
            growth, (double)heap_bytes() - (double)heap0);
    add_row("memory", "byte_bound_max_l1_bytes", U_BYTES, (double)max_seen,
            (double)BOUND_BYTES, "l1_max_bytes: <= 1.00 holds");
    add_row("memory", "byte_bound_rss_growth", U_BYTES, growth,
            (double)BOUND_BYTES, "l1_max_bytes (RSS, not accounting)");
    progress("memory: bound %llu B: max l1_bytes %llu, RSS growth %.0f B, "
             "%llu entries at the end",
             (unsigned long long)BOUND_BYTES, (unsigned long long)max_seen,
             growth, (unsigned long long)st.l1_entries);
    tc_close(c);
    free(val);
}

void bench_memory(const bench_cfg *cfg)
{
    FILE *csv = csv_open("memory", "measure,value");
    per_entry(cfg, csv);
    bound(csv);
    csv_close(csv, "memory");
}
