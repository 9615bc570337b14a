/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Internal interfaces shared by the library's files. Nothing here is
 * exported from the shared library; non-static names start with tc__.
 *
 * Lock order (the only one in the library; take them in this order):
 *   0. the fork registry, then a cache's fork_mu   (fork.c)
 *   1. l2 pool mutex       (l2.c; held only to take or give back a slot)
 *      on a cluster: the router l2's, then the slot map's (cluster.c),
 *      then each node's pool mutex in node order; then the Sentinel's
 *      (sentinel.c). None is taken while another is held, except by the
 *      fork prepare handler, in this order.
 *   2. replay queue mutex  (replay.c; held only to edit the list)
 *   2b. single-flight mutex (flight.c; held to join, land, or wait)
 *   2c. lease renewal mutex (renew.c; held to edit its list, or to wait
 *       for the next round)
 *   3. listener mutex      (coherence.c; held while it reads a readable
 *                           link, dispatches, and writes a PING: no call
 *                           under it blocks, see read_messages)
 *   4. an L1 shard mutex   (l1.c; never two shards at once, except in the
 *                           fork prepare handler, which takes all in order)
 * No lock is held across network I/O or a user callback, nor while a
 * first call (or a child's first call after fork()) waits for the
 * listener it started to subscribe.
 */
#ifndef TC_INTERNAL_H
#define TC_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tiercache.h"

/* ---- alloc.c: every allocation goes through these, so tests can fail the
   Nth one (tc__alloc_fail_after) and check the out-of-memory paths. ---- */
void *tc__malloc(size_t n);
void *tc__calloc(size_t n, size_t size);
void tc__free(void *p);
/* n < 0: never fail (the default); n >= 0: the allocation after the next
   n succeed fails, and so does every one after it. */
void tc__alloc_fail_after(long n);
/* The same, but only that one allocation fails: the ones after it
   succeed, as when memory comes back. */
void tc__alloc_fail_once(long n);
/* How many allocations failed since the last tc__alloc_fail_after or
   tc__alloc_fail_once: 0 after a run means the run never reached its
   failure point. */
long tc__alloc_failures(void);

/* ---- clock ---- */
uint64_t tc__mono_ms(void); /* CLOCK_MONOTONIC */
uint64_t tc__wall_ms(void); /* CLOCK_REALTIME, for expiry stored in Redis */
uint64_t tc__mono_us(void); /* CLOCK_MONOTONIC, precise: latency histograms */
/* A condition variable whose timed waits use CLOCK_MONOTONIC. */
void tc__cond_init_mono(pthread_cond_t *cv);
/* ms from now on CLOCK_MONOTONIC, for such a condvar's timed wait. */
struct timespec tc__deadline_ms(uint64_t ms);
/* a + b, saturating at UINT64_MAX */
static inline uint64_t tc__add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- forkgen.c ---- */
/* The fork generation: 0 in the first process, one more in each child
   (fork.c's child handler bumps it). One relaxed load. */
unsigned tc__forkgen(void);
void tc__forkgen_bump(void);

/* ---- rand.c ---- */
/* 64 random bits; per thread, seeded from the kernel, and again after a
   fork. Not for secrets. */
uint64_t tc__rand64(void);
/* Full jitter (AWS architecture blog): uniform in [0, min(cap, base *
   2^attempt)] ms. The breaker's probes and the listener's reconnects. */
#define TC__BACKOFF_BASE_MS 25
uint64_t tc__backoff_ms(uint32_t attempt, uint32_t cap_ms);

/* ---- log.c ---- */
typedef struct tc__logger {
    tc_log_fn fn; /* NULL, and efn too: stderr */
    void *ud;
    int level;
    tc_log_event_fn efn; /* wins over fn */
} tc__logger;
/* `event` names the call site's event: a string literal, listed with the
   call's level (a literal TC_LOG_*) in docs/operations.md, "Log events";
   tests/log_events.sh holds the two in step. */
void tc__log(const tc__logger *lg, int level, const char *event,
             const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- value.c ---- */
struct tc_value {
    atomic_uint refs;
    uint32_t flags;      /* TC__FLAG_*: as stored in the envelope */
    uint32_t delta_ms;   /* what computing it took (early refresh) */
    uint32_t len;        /* values are at most 512 MiB (options.c) */
    uint64_t expires_at; /* wall ms it expires in Redis, 0 = unknown */
    /* Which write made it: random, non-zero for a value made here (a
       write's), the envelope's for one read (0: it had none). A
       revalidation keeps an L1 entry whose version Redis still holds. */
    uint64_t wver;
    unsigned char data[]; /* len bytes, then a NUL for convenience */
};
/* Envelope flags. A reader rejects a value with any other flag. */
#define TC__FLAG_ABSENT 1u /* a cached negative result, no payload */
#define TC__FLAG_ZSTD 2u   /* the payload is one zstd frame */
#define TC__FLAG_LZ4 4u    /* the payload is one LZ4 frame */
#define TC__FLAGS_CODEC (TC__FLAG_ZSTD | TC__FLAG_LZ4)
#define TC__FLAGS_KNOWN (TC__FLAG_ABSENT | TC__FLAGS_CODEC)
/* A new value holding a copy of data[0..len) (uninitialized when data is
   NULL, for the caller to fill before sharing it), one reference. NULL on OOM
   (and for len over 4 GiB, beyond any max_value_bytes). */
tc_value *tc__value_new(const void *data, size_t len);
static inline tc_value *tc__value_ref(tc_value *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
    return v;
}

/* ---- compress.c: payload compression (docs/data-format.md) ---- */
/* 1 if a reader of this version understands flags: no unknown bit, at
   most one codec, no codec on an "absent". */
int tc__flags_ok(uint32_t flags);
/* Compresses src[0..len) with codec (tc_compression) when len >= min_bytes
   and the frame saves >= 10 %: then *out is a new tc__malloc'd frame of
   *outlen bytes and *flag its TC__FLAG_*. Otherwise *out is NULL (store
   raw). TC_OK or TC_ENOMEM. */
int tc__compress(int codec, size_t min_bytes, const void *src, size_t len,
                 unsigned char **out, size_t *outlen, uint32_t *flag);
/* Decompresses the frame src[0..len) of the codec in flags into a new
   value (one reference, flags etc. zero). Refuses, before allocating, a
   frame whose declared size is over max or missing; the frame must fill
   src exactly and decode to exactly its declared size. TC_OK, TC_ECODEC,
   TC_ENOMEM, TC_EINVAL (no codec flag). */
int tc__decompress(uint32_t flags, const unsigned char *src, size_t len,
                   size_t max, tc_value **out);

/* ---- codec.c: the value envelope of docs/data-format.md ----
   [version=1, flags, expires_at_ms, delta_ms, payload(bin)(, wver)] */
#define TC__ENV_VERSION 1
typedef struct tc__envelope {
    uint32_t flags;
    uint64_t expires_at_ms;       /* wall-clock ms; 0 = none */
    uint32_t delta_ms;            /* time the value took to compute */
    const unsigned char *payload; /* borrowed */
    size_t payload_len;
    uint64_t wver; /* the write version; 0: none (a 5-item envelope) */
} tc__envelope;
/* A write version is packed as 0xcf and 8 bytes big-endian, last: the
   envelope's last TC__WVER_BYTES bytes. */
#define TC__WVER_BYTES 9
/* 1 if buf[0..len) ends with the write version wver (non-zero). */
int tc__wver_is(const char *buf, size_t len, uint64_t wver);
/* Encodes e into a new tc__malloc'd buffer (*out, *outlen). TC_OK,
   TC_ENOMEM, TC_EINVAL (NULL arguments), TC_ETOOBIG (payload >= 4 GiB). */
int tc__env_encode(const tc__envelope *e, char **out, size_t *outlen);
/* Decodes buf[0..len) into *e; e->payload points into buf. Checks every
   declared size against the bytes present before the unpacker sees them,
   and rejects a payload over max_payload. TC_OK or TC_ECODEC (TC_EINVAL
   for NULL arguments, TC_ENOMEM if the unpacker's zone cannot be had). */
int tc__env_decode(const char *buf, size_t len, size_t max_payload,
                   tc__envelope *e);

/* Invalidation messages on <ns>:__tc:inval, for every process's L1:
   [1, kind, sent_at_ms (wall), arg (bin: the key or prefix; empty for a
   flush)]. */
enum { TC__INVAL_KEY = 1, TC__INVAL_PREFIX = 2, TC__INVAL_FLUSH = 3 };
typedef struct tc__inval {
    uint32_t kind;
    uint64_t sent_at_ms;
    const unsigned char *arg; /* borrowed */
    size_t arg_len;
} tc__inval;
/* TC_OK, TC_ENOMEM, TC_EINVAL, TC_ETOOBIG; *out is tc__malloc'd. */
int tc__inval_encode(const tc__inval *m, char **out, size_t *outlen);
/* TC_OK or TC_ECODEC (anything but a well-formed message with an arg of
   at most max_arg bytes); m->arg points into buf. */
int tc__inval_decode(const char *buf, size_t len, size_t max_arg,
                     tc__inval *m);

/* ---- options.c ---- */
/* TC_OK, or TC_EINVAL with a message naming the bad field in err. */
int tc__options_check(const tc_options *o, char *err, size_t cap);

/* ---- url.c ---- */
/* Parses redis://[[user]:pass@]host[:port][/db][?db=N] (a lone "x@" is a
   password, as redis-cli reads it), unix:///path[?db=N], or "none" (any
   case; L1-only) into o; rediss:// is rejected (no TLS in this build).
   TC_OK or TC_EINVAL with a message in err; o is unchanged on error. */
int tc__parse_redis_url(const char *url, tc_options *o, char *err, size_t cap);

/* ---- options.c helpers shared with url.c ---- */
/* The port when neither REDIS_URL nor REDIS_PORT names one. */
#define TC__DEFAULT_PORT 6379
/* Writes the message into err (if there is room); returns TC_EINVAL. */
int tc__fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* v for a log line, in buf: <= 40 bytes, unprintables as '?'. */
const char *tc__shown(const char *v, char *buf, size_t cap);
/* NULL when p is usable as a socket path, else the reason it is not. */
const char *tc__path_problem(const char *p);
/* What tc__parse_whole found. */
typedef enum { TC__NUM_OK, TC__NUM_SYNTAX, TC__NUM_RANGE } tc__num_result;
/* The whole of s is a decimal number in min..max, stored in *out. */
tc__num_result tc__parse_whole(const char *s, uint64_t min, uint64_t max,
                               uint64_t *out);

/* ---- stats ---- */
/* A latency histogram: bucket i counts (2^i, 2^(i+1)] us (0: <= 2 us, the
   last one open-ended); relaxed atomics, no lock. */
typedef struct tc__hist {
    atomic_uint_fast64_t b[TC_LAG_BUCKETS];
    atomic_uint_fast64_t sum_us;
} tc__hist;
/* Counts one observation of us microseconds. */
void tc__hist_add(tc__hist *h, uint64_t us);
typedef struct tc__counters {
    atomic_uint_fast64_t l1_misses, l2_hits, l2_misses, sets, deletes,
        backend_errors, degraded_ops, codec_errors, reconnects, breaker_opens,
        computes, oversized, l1_warmed, l1_revalidated, l1_revalidate_drops;
    /* coherence */
    atomic_uint_fast64_t invalidations, link_losses, l1_flushes, replay_queued,
        replay_done, replay_overflows;
    tc__hist lag, l2_lat, compute_lat;
} tc__counters;
#define TC__INC(ctr) atomic_fetch_add_explicit(&(ctr), 1, memory_order_relaxed)
#define TC__GET(ctr) atomic_load_explicit(&(ctr), memory_order_relaxed)

/* ---- hash.c ---- */
/* 64-bit hash of a key: shard selection and the uthash bucket. */
uint64_t tc__hash(const void *key, size_t len);

#endif /* TC_INTERNAL_H */
