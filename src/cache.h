/* SPDX-License-Identifier: BSD-3-Clause */
/* cache.c's functions, which the other operations (fetch.c, group.c,
   warm.c, stats.c) build on. The handle itself is in handle.h. */
#ifndef TC_CACHE_H
#define TC_CACHE_H

#include "handle.h"

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
tc_value *tc__cache_peek(tc_cache *c, const char *key, size_t klen,
                         uint64_t hash);
/* Puts v in the L1 if the rule allows (link up, or the degraded age). */
void tc__cache_fill(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                    tc_value *v, uint64_t ttl, uint64_t epoch);
/* The same for a write: it also moves the shard's epoch (l1.h). */
void tc__cache_fill_write(tc_cache *c, const char *key, size_t klen,
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

/* How long a value read from Redis, expiring there at expires_at (wall
   ms, 0 = unknown), may live in the L1: what Redis has left of its TTL,
   at most the default TTL. 0: do not keep it. */
uint64_t tc__cache_ttl_of(const tc_cache *c, uint64_t expires_at);

#endif
