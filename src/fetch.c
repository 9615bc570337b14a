/* tc_fetch: get-or-compute, the C form of @cached(expire=...). This is the
   plain version: L1, then Redis, then the callback, then store.
   Single-flight, leases and early refresh come with DESIGN 7. */
#include <stdlib.h>

#include "cache.h"

static int compute(tc_cache *c, const char *key, size_t klen, uint32_t ttl,
                   tc_compute_fn fn, void *ud, tc_value **out)
{
    void *val = NULL;
    size_t len = 0;
    uint32_t want = ttl;
    uint64_t t0 = tc__mono_ms();
    TC__INC(c->ctr.computes);
    if (fn(ud, &val, &len, &want) != 0)
        return TC_ECOMPUTE; /* nothing was handed over */
    if (!val && len)
        return TC_ECOMPUTE;
    uint64_t delta = tc__mono_ms() - t0;
    int rc = tc__check_value(c, val, len);
    tc_value *v = rc == TC_OK ? tc__value_new(val, len) : NULL;
    free(val); /* the callback's buffer is malloc'd: plain free */
    if (rc != TC_OK)
        return rc;
    if (!v)
        return TC_ENOMEM;
    /* The callback may lower the TTL (0: return it, keep no copy). */
    if (want > ttl)
        want = ttl;
    if (want)
        tc__store(c, key, klen, v, want,
                  delta > UINT32_MAX ? UINT32_MAX : (uint32_t)delta);
    *out = v;
    return TC_OK;
}

int tc_fetch(tc_cache *c, const char *key, uint32_t ttl_ms, tc_compute_fn fn,
             void *ud, tc_value **out)
{
    if (!out)
        return TC_EINVAL;
    *out = NULL;
    size_t klen;
    int rc = tc__check_key(c, key, &klen);
    if (rc != TC_OK)
        return rc;
    if (!fn)
        return TC_EINVAL;
    rc = tc_get(c, key, out);
    if (rc != TC_MISS)
        return rc;
    return compute(c, key, klen, ttl_ms ? ttl_ms : c->opt.default_ttl_ms, fn,
                   ud, out);
}
