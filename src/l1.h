/* SPDX-License-Identifier: BSD-3-Clause */
/* L1: the in-process store. Sharded by key hash; each shard is a mutex, a
   uthash table, the lists of its eviction policy (LRU, LFU or W-TinyLFU:
   docs/architecture.md §4) and its own share of the entry and byte
   bounds. Values are reference-counted: a hit is a lookup plus an
   increment, and a value stays alive for its holders after eviction. */
#ifndef TC_L1_H
#define TC_L1_H

#include "internal.h"

typedef struct tc__l1 tc__l1;

typedef struct tc__l1_config {
    uint64_t max_entries; /* 0 (or max_bytes 0): an L1 that keeps nothing */
    uint64_t max_bytes;   /* value + key + per-entry overhead */
    uint32_t shards;      /* a power of two; fewer if the bounds are small */
    tc_clock_fn clock;    /* NULL: tc__mono_ms */
    void *clock_ud;
    int policy;      /* tc_policy; 0 is LRU */
    uint64_t seed;   /* W-TinyLFU's sketch seed; 0: a random one */
    uint64_t sample; /* additions before counts halve; 0: 10 per entry of
                        a shard's entry bound (at most 65536 entries) */
} tc__l1_config;

typedef struct tc__l1_counts {
    uint64_t entries, bytes, evictions, expirations, epoch_drops;
    uint64_t hits, misses; /* lookups that reached a shard */
} tc__l1_stats;

/* Matches any epoch: for puts that need no invalidation check. */
#define TC__EPOCH_ANY UINT64_MAX

int tc__l1_create(tc__l1 **out, const tc__l1_config *cfg);
void tc__l1_destroy(tc__l1 *l1); /* NULL-safe */
uint32_t tc__l1_shards(const tc__l1 *l1);
uint64_t tc__l1_seed(const tc__l1 *l1); /* the seed in use */

/* For tests and benches: what the policy knows of key's frequency (LFU:
   the entry's count, 0 if absent; W-TinyLFU: the sketch's estimate,
   whether present or not; LRU: 0). Records no access. */
unsigned tc__l1_frequency(tc__l1 *l1, const char *key, size_t klen,
                          uint64_t hash);
/* W-TinyLFU: the window's size in entries in the shard of `hash` (it
   follows its ghosts); 0 under other policies. */
uint64_t tc__l1_window(tc__l1 *l1, uint64_t hash);

/* Calls fn(ud, v) with the live value under key that entered at most
   max_age ms ago (UINT64_MAX: any age) and returns TC_OK, or returns
   TC_MISS. fn runs while v cannot be freed, with the shard's writers
   held off: it must be short and must not call into the L1. It needs no
   reference, so a hit writes nothing that other threads read. */
typedef void (*tc__l1_read_fn)(void *ud, tc_value *v);
int tc__l1_read(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                uint64_t max_age, tc__l1_read_fn fn, void *ud);

/* A new reference to the live value under key that entered at most
   max_age ms ago (UINT64_MAX: any age), or NULL. */
tc_value *tc__l1_get(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                     uint64_t max_age);

/* The fill epoch of key's shard. Every invalidation that touches the
   shard bumps it; a fill that read the epoch before its Redis GET and
   finds it changed at insert time must not insert (tc__l1_put). */
uint64_t tc__l1_epoch(tc__l1 *l1, uint64_t hash);

/* Stores a new reference to v under key for ttl_ms, replacing any older
   entry, if the shard's epoch still equals `epoch` (or it is
   TC__EPOCH_ANY). TC_OK stored; TC_MISS not stored (epoch moved, L1 off,
   or v larger than a shard's byte bound); TC_ENOMEM. */
int tc__l1_put(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
               tc_value *v, uint64_t ttl_ms, uint64_t epoch);

/* tc__l1_put that evicts nothing (warming, tc_warm): TC_ETOOBIG when
   the shard has no room left under its bounds, and what it holds stays,
   an older entry of the key included. */
int tc__l1_put_room(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                    tc_value *v, uint64_t ttl_ms, uint64_t epoch);

/* tc__l1_put for a write: the shard's epoch moves in the same critical
   section, so a read that fetched an older value before the write and
   fills after it is refused. */
int tc__l1_put_write(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                     tc_value *v, uint64_t ttl_ms, uint64_t epoch);

/* Invalidations: remove and bump the epoch(s). */
void tc__l1_del(tc__l1 *l1, const char *key, size_t klen, uint64_t hash);
void tc__l1_del_prefix(tc__l1 *l1, const char *prefix, size_t plen);
void tc__l1_clear(tc__l1 *l1);

/* Revalidation (docs/architecture.md §5.7). tc__l1_suspect makes every
   entry suspect, and moves every epoch (a fill whose GET went out
   before cannot enter): a suspect entry is kept but never served. An
   entry that enters later is not suspect. */
void tc__l1_suspect(tc__l1 *l1);

/* A suspect entry to check: a reference to its value (whose block holds
   the key, so the key lives as long as the reference), and the key. */
typedef struct tc__l1_check {
    tc_value *v;
    const char *key;
    size_t klen;
} tc__l1_check;

/* Every suspect, unexpired entry of shard i (< tc__l1_shards), in one
   pass over its table: *out gets a new tc__malloc'd array (NULL when
   there are none), whose values the caller releases before freeing it.
   Returns how many; (size_t)-1 when there is no memory for the array. */
size_t tc__l1_suspects(tc__l1 *l1, uint32_t i, tc__l1_check **out);

/* The verdict on k (hash: its key's): same, it is served again; else it
   is dropped. Either only if the entry is still the one checked and
   still suspect. Returns 1 kept, 0 dropped, -1 left as it is (gone, or
   replaced since). */
int tc__l1_confirm(tc__l1 *l1, const tc__l1_check *k, uint64_t hash, int same);

void tc__l1_counts(tc__l1 *l1, tc__l1_stats *out);

/* For tests: how many threads of this process hold a reader slot (a
   thread takes one at its first L1 read and gives it back when it
   exits; READ_SLOTS at most, the rest read under the shard's mutex). */
unsigned tc__l1_reader_slots(void);

/* For the atfork handlers: every shard lock, and back. */
void tc__l1_lock_all(tc__l1 *l1);
void tc__l1_unlock_all(tc__l1 *l1);
/* In the child, before tc__l1_unlock_all: no reader of the parent's is
   left inside a shard. */
void tc__l1_after_fork_child(tc__l1 *l1);

#endif
