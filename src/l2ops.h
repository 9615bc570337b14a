/* SPDX-License-Identifier: BSD-3-Clause */
/* l2ops.c: the Redis names of a cache's keys, envelope writes, and the
   Redis side of an invalidation. */
#ifndef TC_L2OPS_H
#define TC_L2OPS_H

#include "handle.h"

typedef struct tc__rkey {
    char *s;
    size_t len;
    char small[640]; /* fits the default key limit; longer keys: heap */
} tc__rkey;
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
int tc__write_envelope(tc_cache *c, const char *key, size_t klen,
                       const tc_value *v, uint32_t ttl_ms);
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

#endif
