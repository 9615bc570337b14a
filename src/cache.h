/* SPDX-License-Identifier: BSD-3-Clause */
/* The cache handle, shared by the files that implement its operations. */
#ifndef TC_CACHE_H
#define TC_CACHE_H

#include <pthread.h>

#include "coherence.h"
#include "internal.h"
#include "l1.h"
#include "l2.h"
#include "renew.h"
#include "topo.h"

typedef struct tc__replay tc__replay;
typedef struct tc__flights tc__flights;
typedef struct tc__flight tc__flight;

struct tc_cache {
    tc_options opt; /* a copy, fixed after tc_open; its pointers NULL */
    tc__topo topo;  /* one Redis, a Sentinel's master, or a Cluster */
    tc__logger lg;
    tc__l1 *l1;
    tc__l2 *l2;                /* NULL: L1-only */
    tc__coh *coh;              /* NULL: no invalidation listener */
    tc__replay *replay;        /* with l2 */
    tc__flights *flights;      /* tc_fetch computations under way */
    tc__renew *renew;          /* keeps their leases alive (with l2) */
    atomic_int refused_logged; /* tc__refused said it once */
    /* Coherence, as the writers (l2ops.c) need it without asking the
       listener: the namespace channel, and whether Redis tracks keys for
       us (set by the listener as it subscribes; then a key's SET or DEL
       need not publish). */
    char channel[TC_NS_MAX + 16]; /* "<ns>:__tc:inval" */
    atomic_int tracking;
    tc__counters ctr;

    /* fork.c: the fork generation this handle was made for, and the
       registry of open caches that the atfork handlers walk. */
    atomic_uint gen;
    pthread_mutex_t fork_mu; /* serializes the rebuild after a fork */
    int registered;          /* in the registry (tc_open got that far) */
    tc_cache *prev, *next;
};

/* ---- cache.c ---- */
/* Runs first in every public call: the fork check (fork.c). */
int tc__enter(tc_cache *c);
/* 1 while a tc_get_with callback runs on this thread. */
int tc__in_read_fn(void);
/* Argument checks: TC_OK, TC_EINVAL or TC_ETOOBIG. */
int tc__check_key(const tc_cache *c, const char *key, size_t *klen);
int tc__check_value(const tc_cache *c, const void *val, size_t len);
/* A value over max_value_bytes for key: counted, and the older value
   deleted (L1 and Redis, as tc_del); tc_del's status. */
int tc__drop_oversized(tc_cache *c, const char *key, size_t klen);
/* Redis trouble (TC_EBACKEND, TC_EREFUSED, TC_ECODEC) becomes a miss
   unless strict; counted. */
int tc__soften(tc_cache *c, int rc);
/* A Redis call failed (TC_EBACKEND): the listener checks its link now. */
void tc__backend_failed(tc_cache *c);
/* What strict mode returns for Redis trouble rc: TC_EREFUSED for a
   refusal (of this call, or of the connection), else TC_EBACKEND. */
int tc__strict_code(tc_cache *c, int rc);
/* L1, then Redis (filling the L1 under the rule). TC_OK with *out a new
   reference (possibly a cached "absent": check TC__FLAG_ABSENT), TC_MISS,
   or an error softened by tc__soften. */
int tc__lookup(tc_cache *c, const char *key, size_t klen, uint64_t hash,
               tc_value **out);
/* The same, saying in *from where a value came from (TC_FROM_L1 or
   TC_FROM_L2; TC_FROM_L2 on a miss too). */
int tc__lookup_from(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                    tc_value **out, int *from);
/* The L1's value under key if the rule allows using the L1 now. */
tc_value *tc__l1_peek(tc_cache *c, const char *key, size_t klen,
                      uint64_t hash);
/* Puts v in the L1 if the rule allows (link up, or the degraded age). */
void tc__l1_fill(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                 tc_value *v, uint64_t ttl, uint64_t epoch);
/* The same for a write: it also moves the shard's epoch (l1.h). */
void tc__l1_fill_write(tc_cache *c, const char *key, size_t klen,
                       uint64_t hash, tc_value *v, uint64_t ttl,
                       uint64_t epoch);
/* Writes v to Redis, then to the L1 under the fill rule; a write that did
   not reach Redis is queued for replay. v must not be shared yet: its
   expiry and delta are set here. */
int tc__store(tc_cache *c, const char *key, size_t klen, tc_value *v,
              uint32_t ttl_ms, uint32_t delta_ms);

/* tc__lookup of n keys (each status[i] and out[i], absent markers
   included), the L1's misses read from Redis in one round trip: the
   replay gate, the epochs and the fills as get_l2 does for one. */
void tc__mlookup(tc_cache *c, const char *const *keys, size_t n,
                 tc_value **out, int *status);
/* The argument checks and tc__enter of tc_mget and tc_mfetch (ok 0: a
   bad argument of their own): on failure every status says why. */
int tc__mbegin(tc_cache *c, const char *const *keys, size_t n, tc_value **out,
               int *status, int ok);
/* The worst of n statuses (docs/api.md, tc_mget); TC_OK if none is an
   error. */
int tc__worst(const int *status, size_t n);

/* ---- l2ops.c ---- */
typedef struct tc__rkey {
    char *s;
    size_t len;
    char small[640]; /* fits the default key limit; longer keys: heap */
} tc__rkey;
/* How long a value read from Redis, expiring there at expires_at (wall
   ms, 0 = unknown), may live in the L1: what Redis has left of its TTL,
   at most the default TTL. 0: do not keep it. */
uint64_t tc__l1_ttl_of(const tc_cache *c, uint64_t expires_at);
/* s[0..n) with the glob characters of SCAN MATCH escaped, a new
   tc__malloc'd string (length in *outlen); NULL on OOM. */
char *tc__glob_escape(const char *s, size_t n, size_t *outlen);
/* "<ns>:{<prefix>" escaped for SCAN MATCH, then tail as it is ("*}":
   the keys under prefix; "*}*": their leases too), a new tc__malloc'd
   string; NULL on OOM. */
char *tc__scan_pattern(const tc_cache *c, const char *prefix, size_t plen,
                       const char *tail);

/* "<ns>:{<key>}" into rk (TC_OK or TC_ENOMEM); tc__rkey_done frees. */
int tc__rkey_make(const tc_cache *c, const char *key, size_t klen,
                  tc__rkey *rk);
void tc__rkey_done(tc__rkey *rk);
/* The same with a suffix after the "}" (":lease"). */
int tc__rkey_make_sfx(const tc_cache *c, const char *key, size_t klen,
                      const char *suffix, tc__rkey *rk);
/* Writes "<ns>:{<key>}<suffix>" at dst (no NUL), which has room for
   strlen(ns) + klen + 3 + strlen(suffix) bytes; returns that length. */
size_t tc__rkey_write(const tc_cache *c, const char *key, size_t klen,
                      const char *suffix, char *dst);
/* The cluster slot of key's Redis key (the whole of it: a key may start
   with a "}"). */
unsigned tc__key_slot(const tc_cache *c, const char *key, size_t klen);
/* The envelope of v (its flags, expiry and delta) in a new buffer. */
int tc__envelope_of(const tc_cache *c, const tc_value *v, char **buf,
                    size_t *len);
/* SET <ns>:{key} <envelope of v> PX ttl_ms. */
int tc__set_l2(tc_cache *c, const char *key, size_t klen, const tc_value *v,
               uint32_t ttl_ms);
/* After a SET: the channel message, when Redis does not track for us. */
int tc__publish_set(tc_cache *c, const char *key, size_t klen);
/* Logs once per cache that Redis refuses a command we need (an
   invalidation, a PUBLISH): the writers here and replay.c's. */
void tc__refused(tc_cache *c, const char *what);
/* The Redis side of an invalidation (kind TC__INVAL_*): DEL a key and its
   lease, UNLINK a prefix or the whole namespace, then the message on the
   channel where one is needed. TC_OK, TC_EBACKEND or TC_ENOMEM. */
int tc__invalidate_l2(tc_cache *c, uint32_t kind, const char *arg, size_t len);
/* tc__invalidate_l2 of n keys (TC__INVAL_KEY), the DELs pipelined: rcs[i]
   gets each key's outcome. TC_OK, or the first failure. */
int tc__invalidate_keys(tc_cache *c, const char *const *keys,
                        const size_t *lens, size_t n, int *rcs);

/* ---- replay.c ---- */
/* per_slot: a cluster's queue, whose items hold back reads of their slot
   only (tc__replay_gate). */
int tc__replay_create(tc__replay **out, size_t max, int per_slot);
void tc__replay_destroy(tc__replay *q); /* NULL-safe */
/* Queues an invalidation that did not reach Redis. */
void tc__replay_push(tc_cache *c, uint32_t kind, const char *arg, size_t len);
/* Replays the queue if there is one, on this thread, however long it
   takes (the listener's way). TC_OK: nothing is pending, Redis may be
   read; TC_EBACKEND: something still is (Redis away, or another thread
   is replaying). */
int tc__replay_run(tc_cache *c);
/* Has the queue replayed soon, waiting for nothing: the listener is
   asked to; without one, this thread replays for at most one command
   timeout. For a write, which need not wait. */
void tc__replay_nudge(tc_cache *c);
/* For a call about to read key from Redis: has the queue replayed (by
   the listener if there is one) and waits for that, at most one command
   timeout. TC_OK when it may go to Redis. On a cluster that is also when
   nothing queued is for key's slot and no prefix delete, flush or overflow is
   queued. */
int tc__replay_gate(tc_cache *c, const char *key, size_t klen);
/* tc__replay_gate of n keys with one wait: rcs[i] gets keys[i]'s. */
void tc__replay_gate_many(tc_cache *c, const char *const *keys,
                          const size_t *klens, size_t n, int *rcs);
/* 1 while anything is queued or being replayed. */
int tc__replay_pending(const tc_cache *c);
void tc__replay_lock(tc__replay *q);
void tc__replay_unlock(tc__replay *q);
void tc__replay_after_fork(tc__replay *q);

/* ---- flight.c: single-flight ---- */
int tc__flights_create(tc__flights **out);
void tc__flights_destroy(tc__flights *t); /* NULL-safe */
/* Joins the computation of key: 1 = the caller leads (compute, then
   tc__flight_land), 0 = it waits (tc__flight_wait), -1 = no memory. */
int tc__flight_join(tc__flights *t, const char *key, size_t klen,
                    tc__flight **out);
/* Leads only if no one else does: 1 = leads, 0 = someone does. */
int tc__flight_try_lead(tc__flights *t, const char *key, size_t klen,
                        tc__flight **out);
/* The leader's result (rc, v: v gets its own reference) to the waiters. */
void tc__flight_land(tc__flights *t, tc__flight *f, int rc, tc_value *v);
/* Waits at most wait_ms: the leader's rc and a new reference to its
   value, or TC_ETIMEOUT. Either way the caller is done with f. */
int tc__flight_wait(tc__flights *t, tc__flight *f, uint32_t wait_ms,
                    tc_value **out);
/* Invalidations: later callers start a computation of their own instead
   of joining one that may have read the source before the change; its
   waiters already there retry (the lost lease lands TC_MISS). */
void tc__flight_detach(tc__flights *t, const char *key, size_t klen);
void tc__flight_detach_prefix(tc__flights *t, const char *prefix, size_t plen);
void tc__flights_lock(tc__flights *t);
void tc__flights_unlock(tc__flights *t);
void tc__flights_after_fork(tc__flights *t);

/* ---- lease.c: leases across processes ---- */
extern const char tc__store_script[], tc__store_sha[];
extern const char tc__release_script[], tc__release_sha[];
extern const char tc__extend_script[], tc__extend_sha[];
/* SET <lease> token NX PX lease_ms: TC_OK taken, TC_MISS held by another,
   TC_EBACKEND. */
int tc__lease_take(tc_cache *c, const char *key, size_t klen,
                   const char *token);
/* Stores v for ttl_ms if token still holds the lease (and drops the
   lease): TC_OK stored, TC_MISS lease lost, TC_EBACKEND, TC_ENOMEM. */
int tc__lease_store(tc_cache *c, const char *key, size_t klen,
                    const char *token, const tc_value *v, uint32_t ttl_ms);
/* Extends the lease to lease_ms from now if token still holds it:
   TC_OK extended, TC_MISS lost, TC_EBACKEND. */
int tc__lease_extend(tc_cache *c, const char *key, size_t klen,
                     const char *token);
/* Drops the lease if token still holds it. */
int tc__lease_release(tc_cache *c, const char *key, size_t klen,
                      const char *token);

/* ---- fork.c ---- */
void tc__fork_register(tc_cache *c);
void tc__fork_unregister(tc_cache *c);
/* In a child, the first call on c: drop what belongs to the parent. */
int tc__fork_rebuild(tc_cache *c);

#endif
