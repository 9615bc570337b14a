/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tiercache: a two-tier cache for C services.
 *
 * L1 is an in-process, sharded, bounded store; L2 is Redis. Values are
 * opaque bytes, stored in Redis inside a small MessagePack envelope.
 *
 * Thread-safety: every function may be called concurrently from any thread
 * on the same tc_cache, except tc_close, which must not race with any other
 * call on that cache. Callbacks (clock, compute) run on the calling thread
 * with no tiercache lock held; the log callback also runs on the cache's
 * invalidation listener thread and its lease-renewal thread.
 *
 * Ownership: functions that take a key or value copy it; tc_value objects
 * handed out by tc_get/tc_fetch are new references, to be released with
 * tc_value_release.
 *
 * See docs/api.md for the full contract.
 */
#ifndef TIERCACHE_H
#define TIERCACHE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define TC_EXTERN __attribute__((visibility("default")))
#else
#define TC_EXTERN
#endif

#define TC_VERSION_MAJOR 0
#define TC_VERSION_MINOR 1
#define TC_VERSION_PATCH 0
#define TC_VERSION_HEX                                                        \
    ((TC_VERSION_MAJOR << 16) | (TC_VERSION_MINOR << 8) | TC_VERSION_PATCH)

/*
 * Status codes. 0 = done, > 0 = a non-error outcome, < 0 = an error.
 * The enum, tc_strerror and tc_err_name are generated from this one map.
 * Codes are only ever appended, never renumbered.
 */
#define TC_STATUS_MAP(XX)                                                     \
    XX(OK, 0, "success")                                                      \
    XX(MISS, 1, "not found")                                                  \
    XX(EINVAL, -1, "invalid argument or configuration")                       \
    XX(ENOMEM, -2, "out of memory")                                           \
    XX(ETOOBIG, -3, "key or value over its size limit")                       \
    XX(EBACKEND, -4, "redis failed or is unreachable")                        \
    XX(ECODEC, -5, "stored bytes are not a valid tiercache value")            \
    XX(ECOMPUTE, -6, "the compute callback failed")                           \
    XX(ETIMEOUT, -7, "waited too long for another computation")               \
    XX(ABSENT, 2, "known to be absent (a cached negative result)")            \
    XX(EREFUSED, -8,                                                          \
       "redis answers but refuses: credentials, ACL, replica or database")

typedef enum {
#define TC_STATUS_ENUM_(name, code, msg) TC_##name = (code),
    TC_STATUS_MAP(TC_STATUS_ENUM_)
#undef TC_STATUS_ENUM_
} tc_status;

/* A static, human-readable description; never NULL (unknown codes too). */
TC_EXTERN const char *tc_strerror(int status);
/* The symbolic name, e.g. "TC_EINVAL"; "TC_UNKNOWN" for unknown codes. */
TC_EXTERN const char *tc_err_name(int status);

typedef struct tc_cache tc_cache; /* opaque, shared by threads */
typedef struct tc_value tc_value; /* immutable, reference-counted */

typedef enum {
    TC_LOG_DEBUG = 0,
    TC_LOG_INFO = 1,
    TC_LOG_WARN = 2,
    TC_LOG_ERROR = 3,
    TC_LOG_OFF = 4
} tc_log_level;

/* Called on the thread that hit the event, with no tiercache lock held.
   `msg` is borrowed for the duration of the call. It must not call
   tc_close on the cache that logs. */
typedef void (*tc_log_fn)(void *ud, int level, const char *msg);

/* tc_log_fn with the event's name: short, dotted, lower case and stable
   across versions ("redis.down", "link.up", "replay.done"; every one is
   listed with its level in docs/operations.md), for alerts and counts
   that should not parse `msg`. Both strings are borrowed for the call;
   `event` is never NULL. Called as tc_log_fn is, with the same rules. */
typedef void (*tc_log_event_fn)(void *ud, int level, const char *event,
                                const char *msg);

/* A millisecond clock for L1 expiry only (tests inject one); must be
   monotonic. Expiry in Redis is on CLOCK_REALTIME, whatever this is. */
typedef uint64_t (*tc_clock_fn)(void *ud);

/* The L1's eviction policy, per shard, under the same bounds and TTL. */
typedef enum {
    TC_POLICY_LRU = 0,    /* exact LRU: evicts the least recently used */
    TC_POLICY_LFU = 1,    /* least frequently used, counts halving as
                             they age; ties go by recency */
    TC_POLICY_TINYLFU = 2 /* W-TinyLFU: a small LRU window before a
                             segmented LRU, admitted into by a frequency
                             sketch; resists scans and one-hit wonders */
} tc_policy;

typedef enum {
    TC_COHERENCE_AUTO = 0,   /* server-assisted tracking where Redis >= 6
                                has it, else the channel */
    TC_COHERENCE_NONE = 1,   /* no cross-process invalidation: one process */
    TC_COHERENCE_CHANNEL = 2 /* only the library's own messages on
                                <ns>:__tc:inval */
} tc_coherence;

/* How values are compressed in Redis (docs/data-format.md). A value is
   stored compressed only when it has at least compress_min_bytes and the
   frame saves at least 10 %; the L1 always holds it uncompressed, and any
   reader decompresses whatever codec the writer chose. */
typedef enum {
    TC_COMPRESSION_NONE = 0, /* store values as they are */
    TC_COMPRESSION_ZSTD = 1, /* zstd frames (libzstd), level 3 */
    TC_COMPRESSION_LZ4 = 2   /* LZ4 frames (liblz4): faster, larger */
} tc_compression;

#define TC_HOST_MAX 256
#define TC_SOCKET_MAX 108
#define TC_CRED_MAX 256
#define TC_NS_MAX 64
#define TC_ENV_ERROR_MAX 160
#define TC_NODES_MAX 16 /* entries in redis_sentinels, redis_cluster */

/*
 * Plain data; fill it with tc_options_init, change what you need, pass it
 * to tc_open, which copies it. Strings are fixed arrays, so the struct may
 * be copied freely. An empty redis_host and redis_socket mean: no L2 at
 * all (L1-only; no connection is ever attempted).
 */
typedef struct tc_options {
    char redis_host[TC_HOST_MAX];     /* REDIS_HOST, "localhost" */
    int redis_port;                   /* REDIS_PORT, 6379 */
    int redis_db;                     /* REDIS_DB, 0 */
    char redis_socket[TC_SOCKET_MAX]; /* REDIS_SOCKET; wins over host */
    char redis_username[TC_CRED_MAX]; /* REDIS_USERNAME (ACL, Redis >= 6) */
    char redis_password[TC_CRED_MAX]; /* REDIS_PASSWORD */
    uint32_t connect_timeout_ms;      /* 200 */
    uint32_t command_timeout_ms;      /* 100 */
    uint32_t pool_size;               /* 8 connections at most */

    char ns[TC_NS_MAX];       /* TC_NAMESPACE, "tc": keys are <ns>:{<key>} */
    uint32_t default_ttl_ms;  /* TC_DEFAULT_TTL_MS, 300000 */
    uint32_t max_key_bytes;   /* 512 */
    uint32_t max_value_bytes; /* 1 MiB */

    uint64_t l1_max_entries; /* TC_L1_MAX_ENTRIES, 100000; 0 = no L1 */
    uint64_t l1_max_bytes;   /* TC_L1_MAX_BYTES, 64 MiB; 0 = no L1 */
    uint32_t l1_shards;      /* a power of two, 16 */
    int policy;              /* tc_policy */
    int coherence;           /* tc_coherence */
    /* While the invalidation link is down the L1 cannot be trusted: it
       serves entries no older than this, 1000 by default (an outage would
       otherwise send every request to the source); 0 bypasses it. */
    uint32_t degraded_l1_ttl_ms;
    uint32_t listener_ping_ms; /* PING on the link, dead when one goes
                                  unanswered this long; 250 */
    uint32_t replay_max; /* invalidations queued while Redis is away, 10000;
                            past it the namespace is flushed on return */

    /* tc_fetch */
    uint32_t lease_ms;      /* a computation's lease on its key, renewed
                               every lease_ms / 3 while it runs: how long a
                               dead holder stalls the key, 2000 */
    uint32_t fetch_wait_ms; /* longest wait for another's computation before
                               TC_ETIMEOUT, 15000 (above lease_ms, so a
                               dead holder's lease expires first) */
    uint32_t refresh_beta_milli; /* early refresh beta x 1000 (XFetch);
                                    1000 = 1.0; 0 turns it off */
    uint32_t ttl_jitter_pct;     /* TTLs of computed values shortened by up to
                                    this percentage at random, 0..50; 0 */
    uint32_t negative_ttl_ms;    /* lifetime of a cached "absent", 5000 */

    int strict; /* 1: Redis failures return TC_EBACKEND, codec TC_ECODEC */
    uint32_t breaker_failures;    /* consecutive failures that open it, 3 */
    uint32_t breaker_cooldown_ms; /* back-off cap before a probe, 1000 */

    tc_log_fn log_fn; /* NULL: lines at or above log_level go to stderr */
    void *log_ud;     /* log_fn's and log_event_fn's */
    int log_level;    /* TC_LOG_LEVEL, TC_LOG_WARN */

    tc_clock_fn clock_fn; /* NULL: CLOCK_MONOTONIC_COARSE */
    void *clock_ud;

    /* Set by tc_options_init when an environment variable is malformed:
       tc_open then fails with TC_EINVAL and logs this text. */
    char env_error[TC_ENV_ERROR_MAX];

    /* Beyond one Redis (docs/operations.md, "Sentinel" and "Cluster").
       Lists are "host:port[,host:port...]" ("[v6]:port" for IPv6), at
       most TC_NODES_MAX entries. Set either list and it names the servers:
       redis_host and redis_port are ignored, redis_socket must be empty,
       and setting both lists is TC_EINVAL. The strings are the caller's:
       tc_open reads them and keeps a copy, so they need to live only
       until it returns (tc_options_init points them at process-lifetime
       copies of the environment's values). NULL or "" = not used. */
    const char *redis_sentinels;   /* REDIS_SENTINELS: the sentinels */
    const char *sentinel_master;   /* REDIS_SENTINEL_MASTER, "mymaster" */
    const char *sentinel_password; /* REDIS_SENTINEL_PASSWORD (AUTH to the
                                      sentinels; redis_username/password
                                      go to the data nodes) */
    const char *redis_cluster;     /* REDIS_CLUSTER: seed nodes */

    int compression;             /* TC_COMPRESSION, tc_compression, none */
    uint32_t compress_min_bytes; /* TC_COMPRESS_MIN_BYTES, 1024: smaller
                                    values are stored raw */
    /* TC_REVALIDATE, 1: when the invalidation link comes back, the L1's
       entries are checked against Redis and those it still holds are
       kept (until then they are not served); 0: the L1 is emptied. */
    int revalidate;

    /* Lines with their event names, at or above log_level, with log_ud.
       When set it wins: log_fn is then never called. NULL: log_fn. */
    tc_log_event_fn log_event_fn;

    /* zero; room to grow without an ABI break (the pointers and the
       fields above took their room from it, so the struct keeps its
       size) */
    uint64_t
        reserved[16 -
                 (4 * sizeof(const char *) + sizeof(tc_log_event_fn) + 7) / 8 -
                 2];
} tc_options;

/* Defaults, then the environment (REDIS_URL, else REDIS_HOST/PORT/DB/
   PASSWORD/USERNAME/SOCKET; or REDIS_SENTINELS with REDIS_SENTINEL_MASTER
   and REDIS_SENTINEL_PASSWORD; or REDIS_CLUSTER: two of REDIS_URL,
   REDIS_SENTINELS, REDIS_CLUSTER, REDIS_HOST/REDIS_SOCKET at once are an
   error naming both; TC_NAMESPACE, TC_DEFAULT_TTL_MS,
   TC_L1_MAX_ENTRIES, TC_L1_MAX_BYTES, TC_LOG_LEVEL). Never fails: a
   malformed variable is recorded in opt->env_error for tc_open. */
TC_EXTERN void tc_options_init(tc_options *opt);

/* Sets the endpoint fields of *opt (host, port, db, socket, username,
   password) from a URL as REDIS_URL takes it: redis://[[user]:pass@]host
   [:port][/db], unix:///path[?db=N], or "none" (L1-only). What the URL
   leaves out gets its default. TC_OK, or TC_EINVAL (NULL argument or a
   malformed URL) with *opt unchanged. */
TC_EXTERN int tc_options_from_url(tc_options *opt, const char *url);

/* Opens a cache. `opt` is copied; NULL means tc_options_init defaults.
   Redis being unreachable is not an error (see tc_health).
   Returns TC_OK, TC_EINVAL (bad option or environment, logged),
   TC_ENOMEM. On error *out is NULL. */
TC_EXTERN int tc_open(tc_cache **out, const tc_options *opt);
/* NULL-safe. Frees everything; must not race with other calls. */
TC_EXTERN void tc_close(tc_cache *c);

/* Stores a copy of val[0..len) under key in Redis and the L1.
   ttl_ms 0 = the default TTL. It does not wait for queued invalidations
   to be replayed first. If the SET or its channel message fails, the
   key's delete is queued for replay and, outside strict mode, TC_OK is
   returned (the value kept in the L1 only where no invalidation link is
   up to correct it). TC_OK, TC_EINVAL, TC_ETOOBIG (the older value is
   deleted), TC_ENOMEM (nothing sent); strict: TC_EBACKEND, TC_EREFUSED. */
TC_EXTERN int tc_set(tc_cache *c, const char *key, const void *val, size_t len,
                     uint32_t ttl_ms);
/* TC_OK with *out a new reference (release it); else *out is NULL:
   TC_MISS, or TC_ABSENT for a cached "absent" (stored by tc_fetch).
   Errors: TC_EINVAL, TC_ETOOBIG, TC_ENOMEM; strict: TC_EBACKEND,
   TC_EREFUSED, TC_ECODEC. */
TC_EXTERN int tc_get(tc_cache *c, const char *key, tc_value **out);
/* Copies the value into buf. *len (required) gets the value's length, also
   when buf is too small: then TC_ETOOBIG and buf is untouched. */
TC_EXTERN int tc_get_into(tc_cache *c, const char *key, void *buf, size_t cap,
                          size_t *len);
/* Calls fn(ud, data, len) once with the value under key, in place: no
   copy and no reference, so a key that every thread reads costs them no
   shared write. data is valid only during the call. On an L1 hit fn runs
   while the key's L1 shard holds its writers off: keep it short (copy,
   parse), and do not call tiercache from it (such calls fail with
   TC_EINVAL). TC_OK (fn was called), TC_MISS, TC_ABSENT, or tc_get's
   errors; fn is called only on TC_OK. */
typedef void (*tc_read_fn)(void *ud, const void *data, size_t len);
TC_EXTERN int tc_get_with(tc_cache *c, const char *key, tc_read_fn fn,
                          void *ud);
/* tc_get of n keys: those the L1 has, then the rest from Redis in one
   round trip (a pipeline per node on a cluster). status[i] and out[i] are
   keys[i]'s, as tc_get would return them (TC_OK with a new reference,
   else out[i] NULL: TC_MISS, TC_ABSENT, or an error of that key alone).
   Returns TC_OK when no key had an error (a miss or an absent value is
   none), else the worst of their errors (docs/api.md); TC_EINVAL when an
   argument is NULL (n > 0). n == 0: TC_OK. */
TC_EXTERN int tc_mget(tc_cache *c, const char *const *keys, size_t n,
                      tc_value **out, int *status);
/* Removes key (and its lease) from the L1 and Redis. TC_OK whether or not
   it existed. */
TC_EXTERN int tc_del(tc_cache *c, const char *key);
/* Removes every key starting with prefix (non-empty), L1 and Redis. */
TC_EXTERN int tc_del_prefix(tc_cache *c, const char *prefix);
/* Removes every key of the namespace, L1 and Redis (never FLUSHDB). */
TC_EXTERN int tc_flush(tc_cache *c);

/* Fills the L1 from Redis, for a process that starts cold: the values
   of the namespace whose keys start with prefix (NULL or "": all of
   them; leases and group generations are never warmed), SCANned and
   read with pipelined GETs. At most max_entries values enter (0: as
   many as the L1 holds), each with what Redis has left of its TTL, and
   none evicts anything: once the L1 is full, warming stops. Coherent:
   the invalidation listener must be up (the call starts it, as a first
   call does), and a value an invalidation races is left out. Foreign
   bytes are skipped (codec_errors); cached "absent" markers are warmed.
   TC_OK (also with no Redis or no L1: nothing to do), TC_EINVAL,
   TC_ETOOBIG (prefix over max_key_bytes), TC_ENOMEM, and, strict or
   not, TC_EBACKEND (Redis or the invalidation link down: what entered
   before stays, it is coherent) or TC_EREFUSED. tc_stats' l1_warmed
   counts the values put in. */
TC_EXTERN int tc_warm(tc_cache *c, const char *prefix, size_t max_entries);

/* Borrowed views into an immutable value; valid until it is released. */
TC_EXTERN const void *tc_value_data(const tc_value *v);
TC_EXTERN size_t tc_value_len(const tc_value *v);
/* Drops one reference; NULL-safe. */
TC_EXTERN void tc_value_release(tc_value *v);

/*
 * Get-or-compute, the C form of @cached(expire=...).
 *
 * L1, then Redis; on a miss one caller computes while the others wait for
 * its result: the other threads of this process (single-flight), and
 * other processes through a lease in Redis. A computation that started
 * before a tc_del of its key never stores its result (the lease is gone),
 * though its caller still gets it. A value close to its expiry is
 * recomputed early by one caller while the rest keep getting it (XFetch).
 *
 * `fn` runs on the calling thread with no lock held. It returns:
 *   0          a value: it hands over a malloc'd buffer in *val and *len
 *              (tiercache frees it) and may lower *ttl_ms (0: return the
 *              value but do not store it);
 *   TC_ABSENT  the value does not exist: that is cached for
 *              negative_ttl_ms and tc_fetch returns TC_ABSENT;
 *   else       a failure: TC_ECOMPUTE, nothing is stored and nothing is
 *              freed (the callback keeps whatever it allocated).
 *
 * Returns TC_OK with *out a new reference, TC_ABSENT (*out NULL),
 * TC_ECOMPUTE, TC_ETIMEOUT (another computation took longer than
 * fetch_wait_ms), TC_EINVAL, TC_ETOOBIG, TC_ENOMEM; strict: TC_EBACKEND,
 * TC_EREFUSED, TC_ECODEC.
 */
typedef int (*tc_compute_fn)(void *ud, void **val, size_t *len,
                             uint32_t *ttl_ms);
TC_EXTERN int tc_fetch(tc_cache *c, const char *key, uint32_t ttl_ms,
                       tc_compute_fn fn, void *ud, tc_value **out);

/* tc_compute_fn told which key it computes (tc_mfetch). */
typedef int (*tc_mcompute_fn)(void *ud, const char *key, void **val,
                              size_t *len, uint32_t *ttl_ms);
/* tc_fetch of n keys: one tc_mget for all, then a computation for each
   key that missed (single-flight and leases as tc_fetch, one key after
   another, on the calling thread): fn(ud, key, ...), as tc_fetch's fn.
   status[i] and out[i] are keys[i]'s, as tc_fetch would return them; the
   return is as tc_mget's. */
TC_EXTERN int tc_mfetch(tc_cache *c, const char *const *keys, size_t n,
                        uint32_t ttl_ms, tc_mcompute_fn fn, void *ud,
                        tc_value **out, int *status);

/* Where the value a tc_fetch_from returned came from. */
typedef enum {
    TC_FROM_NONE = 0,     /* nothing returned (an error) */
    TC_FROM_L1 = 1,       /* this process's L1 */
    TC_FROM_L2 = 2,       /* Redis (possibly another process's computation) */
    TC_FROM_COMPUTED = 3, /* this call computed it, and it was stored */
    TC_FROM_SHARED = 4,   /* another thread of this process computed it */
    TC_FROM_UNCACHED = 5  /* this call computed it and it was not stored in
                             Redis: Redis away, the lease lost to a tc_del,
                             or the callback said not to store it */
} tc_from;

/* tc_fetch that also says where the value came from, in *from (required;
   a tc_from): what a service needs for an X-Cache header or per-tier
   counters. A cached "absent" (TC_ABSENT) reports its tier as well. */
TC_EXTERN int tc_fetch_from(tc_cache *c, const char *key, uint32_t ttl_ms,
                            tc_compute_fn fn, void *ud, tc_value **out,
                            int *from);

/*
 * tc_fetch with the key built by tc_key from `name` and the arguments that
 * fmt describes: the function behind TC_CACHED. The key must fit in
 * TC_KEY_MAX bytes (it always does for names under 64 bytes).
 */
#define TC_KEY_MAX 128
TC_EXTERN int tc_cached(tc_cache *c, uint32_t ttl_ms, const char *name,
                        tc_compute_fn fn, void *ud, tc_value **out,
                        const char *fmt, ...);
/* TC_CACHED(cache, ttl_ms, fn, ud, &out, fmt, args...): the key is
   fn's name plus the hashed arguments, as @cached(expire=...) does. */
#define TC_CACHED(c, ttl_ms, fn, ud, out, ...)                                \
    tc_cached((c), (ttl_ms), #fn, (fn), (ud), (out), __VA_ARGS__)

/* Deletes exactly the key tc_cached(c, ..., name, ..., fmt, args...)
   builds, as tc_del does (L1, Redis, lease). TC_OK (whether or not it
   existed), TC_EINVAL (bad name or fmt), TC_ETOOBIG; strict: as tc_del. */
TC_EXTERN int tc_uncached(tc_cache *c, const char *name, const char *fmt, ...);
/* TC_UNCACHE(cache, fn, fmt, args...): the key TC_CACHED(cache, ttl, fn,
   ud, &out, fmt, args...) used. */
#define TC_UNCACHE(c, fn, ...) tc_uncached((c), #fn, __VA_ARGS__)

/*
 * The arguments after fmt are read with va_arg as the letter says: 'i'
 * int64_t, 'u' uint64_t, 'd' double, 's' const char *, 'b' a pointer then
 * a size_t. An int passed for 'i' is undefined behaviour (on x86-64 the
 * upper half is whatever the register held). Wrap each argument: TC_I64,
 * TC_U64 and TC_F64 convert it to the width its letter reads and refuse
 * to compile for a pointer (TC_I64, TC_U64 also for a double); TC_STR
 * refuses anything but a char pointer (C11), TC_BIN(p, n) a length that
 * is not an integer. Each evaluates its argument once.
 */
/* clang-format off */
#define TC_I64(x) ((int64_t)(x) + (int64_t)(0 * sizeof((x) % 1)))
#define TC_U64(x) ((uint64_t)(x) + (uint64_t)(0 * sizeof((x) % 1)))
#define TC_F64(x) ((double)(x) + (double)(0 * sizeof((x) * 1.0)))
#define TC_BIN(p, n) ((const void *)(p)), \
    ((size_t)(n) + 0 * sizeof((n) % 1))
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define TC_STR(s) _Generic((s), char *: (const char *)(s), \
    const char *: (const char *)(s))
#else
#define TC_STR(s) ((const char *)(s))
#endif
/* clang-format on */

/*
 * Key families invalidated together in O(1) (every cached list of
 * invoices, say), where tc_del_prefix would SCAN the namespace. A group
 * has a generation, cached in every L1 and invalidated like any key.
 * tc_group_key writes "<group>@<generation>:<rest>" into out (copies;
 * TC_OK, TC_EINVAL, TC_ETOOBIG; strict: TC_EBACKEND); tc_group_bump moves
 * the group to a new generation, so keys built before are never built
 * again and age out by their TTL. Keys starting with byte 0x01 are
 * reserved for the generations and rejected elsewhere.
 */
TC_EXTERN int tc_group_key(tc_cache *c, char *out, size_t cap,
                           const char *group, const char *rest);
TC_EXTERN int tc_group_bump(tc_cache *c, const char *group);

/*
 * Builds "fn:<32 hex digits>" into out: XXH3-128 over the MessagePack
 * array of the arguments described by fmt: 'i' int64_t, 'u' uint64_t,
 * 'd' double, 's' const char * (NULL = nil), 'b' const void *, size_t,
 * 'n' nil (no argument). TC_OK, TC_EINVAL (bad fn or fmt), TC_ETOOBIG
 * (cap too small; out is then "").
 */
TC_EXTERN int tc_key(char *out, size_t cap, const char *fn, const char *fmt,
                     ...);
TC_EXTERN int tc_keyv(char *out, size_t cap, const char *fn, const char *fmt,
                      va_list ap);

typedef enum {
    TC_BREAKER_CLOSED = 0,   /* Redis is used */
    TC_BREAKER_OPEN = 1,     /* Redis is skipped until the next probe */
    TC_BREAKER_HALF_OPEN = 2 /* one probe is under way */
} tc_breaker_state;

/* Why a Redis that answers does not do what the cache asks. */
typedef enum {
    TC_REFUSAL_NONE = 0,
    TC_REFUSAL_AUTH = 1,    /* AUTH failed or is missing: user, password */
    TC_REFUSAL_DB = 2,      /* SELECT failed: the server has no such db */
    TC_REFUSAL_ACL = 3,     /* NOPERM: a command, key or channel the user
                               may not use (e.g. a key pattern that misses
                               the namespace) */
    TC_REFUSAL_READONLY = 4 /* READONLY: a replica, which takes no writes */
} tc_refusal;

typedef struct tc_health_info {
    int l2_configured;      /* 0: L1-only */
    int l2_connected;       /* the last Redis call succeeded */
    int breaker;            /* tc_breaker_state */
    uint64_t down_since_ms; /* monotonic ms when Redis was lost; 0 if up */
    char last_error[128];   /* the last Redis error text (a refusal: the
                               server's own words), "" if none */
    int l2_refused;         /* tc_refusal: Redis is reachable but refused
                               the last such command; 0 once it is done */
    int l2_writes_refused;  /* 1: every write since the last one that
                               landed was refused: nothing is being stored */
    uint64_t reserved[7];
} tc_health_info;

/* Fills *out with a snapshot; never fails (NULL c or out: no-op). */
TC_EXTERN void tc_health(tc_cache *c, tc_health_info *out);

#define TC_LAG_BUCKETS 24

typedef struct tc_stats_info {
    uint64_t l1_hits, l1_misses;
    uint64_t l2_hits, l2_misses;
    uint64_t sets, deletes;
    uint64_t l1_evictions, l1_expirations;
    uint64_t backend_errors; /* Redis calls that failed */
    uint64_t degraded_ops;   /* calls served without Redis because of it */
    uint64_t codec_errors;   /* foreign or corrupt bytes read from Redis */
    uint64_t reconnects;     /* new connections after a failure */
    uint64_t breaker_opens;
    uint64_t computes;             /* tc_fetch callback runs */
    uint64_t l1_entries, l1_bytes; /* current */
    uint64_t breaker;              /* tc_breaker_state */
    /* coherence */
    uint64_t coherent;      /* 1 while the invalidation link is subscribed */
    uint64_t invalidations; /* messages received on the link */
    uint64_t epoch_drops;   /* fills refused: an invalidation raced them */
    uint64_t link_losses;   /* times the link went down */
    uint64_t l1_flushes;    /* times the whole L1 was emptied */
    uint64_t replay_queued; /* invalidations queued while Redis was away */
    uint64_t replay_done;   /* ... and replayed when it came back */
    uint64_t replay_overflows; /* queue overflowed: namespace flushed */
    /* Lag of channel invalidations, sender's clock to the drop here:
       bucket i counts lags in (2^i, 2^(i+1)] microseconds (0: <= 2 us). */
    uint64_t lag_hist[TC_LAG_BUCKETS];
    /* values over max_value_bytes: tc_set refused them (and deleted the
       older value), tc_fetch returned them uncached */
    uint64_t oversized;
    uint64_t l1_warmed; /* values tc_warm put in the L1 */
    /* revalidation (tc_options.revalidate): L1 entries a reconnect kept,
       Redis holding the same write, and those it dropped */
    uint64_t l1_revalidated, l1_revalidate_drops;
    uint64_t lag_sum_us; /* lag_hist's observations added up, in us */
    uint64_t reserved[11];
    /* Latency histograms, buckets as lag_hist's but the last one also
       counts everything longer; *_sum_us adds up every observation.
       l2: a Redis command through the pool, from asking for a connection
       (connecting included) to its reply or I/O failure, not calls that got no
       connection; compute: tc_fetch's callback. */
    uint64_t l2_hist[TC_LAG_BUCKETS];
    uint64_t l2_sum_us;
    uint64_t compute_hist[TC_LAG_BUCKETS];
    uint64_t compute_sum_us;
    uint64_t reserved2[16]; /* zero; room to grow */
} tc_stats_info;

/* Fills *out with a snapshot of the counters (NULL-safe no-op). */
TC_EXTERN void tc_stats(tc_cache *c, tc_stats_info *out);

typedef enum { TC_FORMAT_PROMETHEUS = 0, TC_FORMAT_JSON = 1 } tc_format;

/* Writes the stats as text, NUL-terminated, truncated to cap. Returns the
   length the full text needs (without the NUL), like snprintf; 0 on bad
   arguments. */
TC_EXTERN size_t tc_stats_format(tc_cache *c, tc_format fmt, char *buf,
                                 size_t cap);

/* TC_VERSION_HEX of the library actually linked, and its text. */
TC_EXTERN unsigned tc_version(void);
TC_EXTERN const char *tc_version_string(void);

#ifdef __cplusplus
}
#endif
#endif /* TIERCACHE_H */
