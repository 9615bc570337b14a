/*
 * Internal interfaces shared by the library's files. Nothing here is
 * exported from the shared library; non-static names start with tc__.
 *
 * Lock order (the only one in the library; take them in this order):
 *   1. l2 pool mutex           (l2.c; held only to take or give back a slot)
 *   2. an L1 shard mutex       (l1.c; never two shards at once)
 * No lock is held across network I/O or a user callback.
 */
#ifndef TC_INTERNAL_H
#define TC_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tiercache.h"

#define TC__UNUSED(x) ((void)(x))

/* ---- alloc.c: every allocation goes through these, so tests can fail the
   Nth one (tc__alloc_fail_after) and check the out-of-memory paths. ---- */
void *tc__malloc(size_t n);
void *tc__calloc(size_t n, size_t size);
void *tc__realloc(void *p, size_t n);
void tc__free(void *p);
char *tc__strndup(const char *s, size_t n);
/* n < 0: never fail (the default); n >= 0: the allocation after the next
   n succeed fails, and so does every one after it. */
void tc__alloc_fail_after(long n);

/* ---- clock ---- */
uint64_t tc__mono_ms(void); /* CLOCK_MONOTONIC */
uint64_t tc__wall_ms(void); /* CLOCK_REALTIME, for expiry stored in Redis */
/* a + b, saturating at UINT64_MAX */
static inline uint64_t tc__add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- log.c ---- */
typedef struct tc__logger {
    tc_log_fn fn; /* NULL: stderr */
    void *ud;
    int level;
} tc__logger;
void tc__log(const tc__logger *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- value.c ---- */
struct tc_value {
    atomic_uint refs;
    size_t len;
    unsigned char data[]; /* len bytes, then a NUL for convenience */
};
/* A new value holding a copy of data[0..len), one reference. NULL on OOM. */
tc_value *tc__value_new(const void *data, size_t len);
static inline tc_value *tc__value_ref(tc_value *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
    return v;
}

/* ---- codec.c: the value envelope of docs/data-format.md ----
   [version=1, flags, expires_at_ms, delta_ms, payload(bin)] */
#define TC__ENV_VERSION 1
typedef struct tc__envelope {
    uint32_t flags;
    uint64_t expires_at_ms;       /* wall-clock ms; 0 = none */
    uint32_t delta_ms;            /* time the value took to compute */
    const unsigned char *payload; /* borrowed */
    size_t payload_len;
} tc__envelope;
/* Encodes e into a new tc__malloc'd buffer (*out, *outlen). TC_OK/ENOMEM. */
int tc__env_encode(const tc__envelope *e, char **out, size_t *outlen);
/* Decodes buf[0..len) into *e; e->payload points into buf. Checks every
   declared size against the bytes present before the unpacker sees them,
   and rejects a payload over max_payload. TC_OK or TC_ECODEC. */
int tc__env_decode(const char *buf, size_t len, size_t max_payload,
                   tc__envelope *e);

/* ---- options.c ---- */
/* TC_OK, or TC_EINVAL with a message naming the bad field in err. */
int tc__options_check(const tc_options *o, char *err, size_t cap);
/* Parses redis://[user[:pass]@]host[:port][/db], rediss:// (rejected:
   no TLS), unix:///path[?db=N], or "none" (L1-only) into o. TC_OK or
   TC_EINVAL with a message in err; o is unchanged on error. */
int tc__parse_redis_url(const char *url, tc_options *o, char *err, size_t cap);

/* ---- stats ---- */
typedef struct tc__counters {
    atomic_uint_fast64_t l1_hits, l1_misses, l2_hits, l2_misses, sets, deletes,
        backend_errors, degraded_ops, codec_errors, reconnects, breaker_opens,
        computes;
} tc__counters;
#define TC__INC(ctr) atomic_fetch_add_explicit(&(ctr), 1, memory_order_relaxed)
#define TC__GET(ctr) atomic_load_explicit(&(ctr), memory_order_relaxed)

/* 64-bit hash of a key: shard selection and the uthash bucket. */
uint64_t tc__hash(const void *key, size_t len);

#endif /* TC_INTERNAL_H */
