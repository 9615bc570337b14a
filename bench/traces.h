/* SPDX-License-Identifier: BSD-3-Clause */
/* Access traces for the hit-ratio scenario: files in the formats of
   ../shared/traces/README.md, or synthetic ones generated here. */
#ifndef TC_BENCH_TRACES_H
#define TC_BENCH_TRACES_H

#include <stddef.h>
#include <stdint.h>

typedef struct trace {
    char name[64];
    uint32_t *ids;      /* the accesses as dense key ids 0 .. nkeys-1 */
    size_t n;           /* accesses */
    uint32_t nkeys;     /* distinct keys */
    uint32_t size_base; /* cache sizes are fractions of this: nkeys, or
                           the working set of a synthetic trace */
} trace;

/* Reads path (.gz through gzip -dc, .xz through xz -dc, else as is) and
   recognizes the format: binary = big-endian int32 keys (cache2k); text
   whose first key line has two or more fields = ARC "start count ..."
   (keys start .. start+count-1); else one integer key per line, "*"
   lines skipped (LIRS). 0, or -1 with a message on stderr. */
int trace_load(const char *path, trace *t);

enum { SYN_ZIPF, SYN_LOOP, SYN_SCAN_ZIPF, SYN_COUNT };
/* Deterministic synthetic traces: Zipf 0.99 over 10,000 keys; a loop
   over 3,000 keys (larger than every cache size tried); Zipf 0.99 with a
   scan of 2,000 one-time keys after every 5,000 accesses. */
void trace_synthetic(int kind, trace *t);

void trace_free(trace *t);

/* ---- belady.c ---- */
/* For each access, the index of the next access to the same key, or
   n + i when there is none. Free it. */
uint32_t *belady_next(const trace *t);
/* The hits of Belady's optimal replacement in a cache of cap entries. */
uint64_t belady_hits(const trace *t, const uint32_t *next, uint32_t cap);

#endif
