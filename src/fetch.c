/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tc_fetch: get-or-compute without stampedes or stale sets
 * (docs/architecture.md §6).
 *
 *   1. L1, then Redis (tc__lookup).
 *   2. Single-flight in the process (flight.c): one thread computes a
 *      key, the others wait for its result.
 *   3. A lease across processes (lease.c): the holder computes and stores
 *      only while its token still holds; the others poll Redis with a
 *      short back-off and take the lease themselves if it expires.
 *   4. Early refresh (XFetch, Vattani et al., VLDB 2015): a hit with
 *      now - delta * beta * ln(rand) >= expiry is recomputed by one caller
 *      while the others keep getting the current value.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "coherence.h"
#include "flight.h"
#include "l1.h"
#include "l2ops.h"
#include "lease.h"
#include "renew.h"
#include "replay.h"

/* ---- randomness for XFetch, jitter and lease tokens ---- */

/* Uniform in (0, 1]: ln() of it is finite. */
static double rand01(void)
{
    return ((double)(tc__rand64() >> 11) + 1.0) / 9007199254740992.0;
}

/* 128 random bits as hex: a lease token no other caller will hold. */
static void make_token(char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)tc__rand64(),
             (unsigned long long)tc__rand64());
}

/* The TTL shortened by up to ttl_jitter_pct, so that keys computed
   together do not expire together. */
static uint32_t jittered(const tc_cache *c, uint32_t ttl)
{
    uint64_t span = (uint64_t)ttl * c->opt.ttl_jitter_pct / 100;
    return span ? ttl - (uint32_t)(tc__rand64() % (span + 1)) : ttl;
}

static int should_refresh(const tc_cache *c, const tc_value *v)
{
    if (!c->opt.refresh_beta_milli || !v->expires_at || !v->delta_ms)
        return 0;
    double beta = c->opt.refresh_beta_milli / 1000.0;
    double ahead = -(double)v->delta_ms * beta * log(rand01());
    return (double)tc__wall_ms() + ahead >= (double)v->expires_at;
}

/* ---- computing ---- */

/* Runs the callback. TC_OK with *out a new, unshared value (a cached
   "absent" when the callback said so) and *ttl what to store it for (0:
   do not store: also for a value over max_value_bytes, whose older one
   is deleted), TC_ECOMPUTE, TC_ENOMEM. */
static int compute(tc_cache *c, const char *key, size_t klen, tc_compute_fn fn,
                   void *ud, uint32_t ttl, tc_value **out, uint32_t *store_ttl)
{
    void *val = NULL;
    size_t len = 0;
    uint32_t want = ttl;
    uint64_t t0 = tc__mono_us();
    *out = NULL;
    TC__INC(c->ctr.computes);
    int r = fn(ud, &val, &len, &want);
    uint64_t took_us = tc__mono_us() - t0;
    tc__hist_add(&c->ctr.compute_lat, took_us);
    uint64_t delta = took_us / 1000;
    if (r == TC_ABSENT) { /* nothing was handed over */
        val = NULL;
        len = 0;
        want = c->opt.negative_ttl_ms;
    } else if (r != 0 || (!val && len)) {
        return TC_ECOMPUTE; /* nothing was handed over */
    }
    /* Too big to cache is no reason to withhold it from its caller. */
    int oversized = tc__check_value(c, val, len) == TC_ETOOBIG;
    tc_value *v = tc__value_new(val, len);
    free(val); /* the callback's buffer is malloc'd: plain free */
    if (!v)
        return TC_ENOMEM;
    v->flags = r == TC_ABSENT ? TC__FLAG_ABSENT : 0;
    v->delta_ms = delta > UINT32_MAX ? UINT32_MAX : (uint32_t)delta;
    /* The callback may lower the TTL, never raise it. */
    *store_ttl = want > ttl && r != TC_ABSENT ? ttl : want;
    *out = v;
    if (oversized) {
        *store_ttl = 0;
        tc__drop_oversized(c, key, klen); /* lease included */
    }
    return TC_OK;
}

/* Gives the lease back. Where Redis cannot be reached to do it, the key
   (value and lease) is queued for deletion: a lease left behind would
   make every other caller wait lease_ms for nothing. */
static void give_back(tc_cache *c, const char *key, size_t klen,
                      const char *token)
{
    int rc = tc__lease_release(c, key, klen, token);
    if (rc == TC_EBACKEND)
        tc__replay_push(c, TC__INVAL_KEY, key, klen);
}

/* Computes under the lease `token` and stores while it holds. */
static int compute_leased(tc_cache *c, const char *key, size_t klen,
                          uint64_t hash, uint64_t epoch, uint32_t ttl,
                          tc_compute_fn fn, void *ud, const char *token,
                          tc_value **out, int *shareable, int *from)
{
    uint32_t keep;
    /* Renewed while fn runs: lease_ms bounds how long a dead holder
       stalls the key, not how long a live one may compute. */
    tc__held *held = tc__renew_hold(c->renew, key, klen, token);
    int rc = compute(c, key, klen, fn, ud, ttl, out, &keep);
    tc__renew_drop(c->renew, held);
    *shareable = 1;
    *from = TC_FROM_UNCACHED;
    if (rc != TC_OK || keep == 0) {
        give_back(c, key, klen, token);
        return rc;
    }
    tc_value *v = *out;
    v->expires_at = tc__add_sat(tc__wall_ms(), keep);
    int sr = tc__lease_store(c, key, klen, token, v, keep);
    if (sr == TC_OK && tc__publish_set(c, key, klen) != TC_OK)
        sr = TC_EBACKEND;
    if (sr == TC_OK) {
        *from = TC_FROM_COMPUTED;
        tc__cache_fill(c, key, klen, hash, v, keep, epoch);
    } else if (sr == TC_MISS) {
        *shareable = 0; /* invalidated meanwhile: waiters must not get it */
        /* The lease is gone: a tc_del came after this computation began
           (or the lease expired and another caller holds it now). */
        tc__log(&c->lg, TC_LOG_DEBUG, "lease.lost",
                "lease lost: result not stored");
    } else if (sr == TC_ENOMEM) { /* nothing was sent */
        give_back(c, key, klen, token);
    } else {
        TC__INC(c->ctr.degraded_ops); /* it may have landed: undo it */
        tc__replay_push(c, TC__INVAL_KEY, key, klen);
    }
    return TC_OK;
}

/* Redis is away: single-flight still holds here, and the value goes to
   the L1 (if the rule allows) but not to Redis. */
static int compute_local(tc_cache *c, const char *key, size_t klen,
                         uint64_t hash, uint64_t epoch, uint32_t ttl,
                         tc_compute_fn fn, void *ud, tc_value **out,
                         int *shareable, int *from)
{
    uint32_t keep;
    int rc = compute(c, key, klen, fn, ud, ttl, out, &keep);
    *shareable = 1; /* a tc_del here detaches the flight (flight.c) */
    /* Not in Redis: for every other process this was a bypass. */
    *from = TC_FROM_UNCACHED;
    /* With the link up Redis is the reference: a value that is not in
       Redis would not be invalidated by a DEL elsewhere (no tracking
       message for a key that does not exist). */
    int link_up = c->l2 && c->coh && tc__coh_ok(c->coh);
    if (rc == TC_OK && keep && !link_up) {
        (*out)->expires_at = tc__add_sat(tc__wall_ms(), keep);
        tc__cache_fill(c, key, klen, hash, *out, keep, epoch);
    }
    return rc;
}

static void nap_ms(unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* The leader's work on a miss: take the lease and compute, or wait for
   the holder's value in Redis, taking the lease over if it expires. */
static int lead(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                uint32_t ttl, tc_compute_fn fn, void *ud, tc_value **out,
                int *shareable, int *from)
{
    uint64_t epoch = tc__l1_epoch(c->l1, hash);
    *shareable = 1;
    if (!c->l2) {
        int rc = compute_local(c, key, klen, hash, epoch, ttl, fn, ud, out,
                               shareable, from);
        *from = TC_FROM_COMPUTED; /* L1-only: the L1 is the whole cache */
        return rc;
    }
    char token[33];
    make_token(token);
    uint64_t deadline = tc__mono_ms() + c->opt.fetch_wait_ms;
    for (unsigned pause = 2;; pause = pause < 32 ? pause * 2 : 50) {
        int lr = tc__replay_gate(c, key, klen);
        if (lr == TC_OK)
            lr = tc__lease_take(c, key, klen, token);
        if (lr == TC_OK) {
            /* A value stored between our miss and our lease: use it, or
               a second computation of the key would run. */
            tc_value *have = NULL;
            if (tc__lookup_from(c, key, klen, hash, &have, from) == TC_OK) {
                tc__lease_release(c, key, klen, token);
                *out = have;
                return TC_OK;
            }
            return compute_leased(c, key, klen, hash, epoch, ttl, fn, ud,
                                  token, out, shareable, from);
        }
        if (lr != TC_MISS) {
            TC__INC(c->ctr.degraded_ops);
            /* A SET NX that timed out has usually landed: give the lease
               back (best effort), or others wait lease_ms for nothing. */
            if (c->opt.strict) {
                give_back(c, key, klen, token);
                return tc__strict_code(c, lr);
            }
            int rc = compute_local(c, key, klen, hash, epoch, ttl, fn, ud, out,
                                   shareable, from);
            give_back(c, key, klen, token);
            return rc;
        }
        /* Another process computes: its value will appear in Redis. */
        if (tc__mono_ms() >= deadline)
            return TC_ETIMEOUT;
        nap_ms(pause);
        epoch = tc__l1_epoch(c->l1, hash);
        int rc = tc__lookup_from(c, key, klen, hash, out, from);
        if (rc != TC_MISS)
            return rc;
    }
}

/* A hit close to expiry: one caller recomputes, if no one else is. */
static tc_value *refresh(tc_cache *c, const char *key, size_t klen,
                         uint64_t hash, uint32_t ttl, tc_compute_fn fn,
                         void *ud, tc_value *cur)
{
    tc__flight *f;
    if (!c->l2 || tc__flight_try_lead(c->flights, key, klen, &f) != 1)
        return cur;
    uint64_t epoch = tc__l1_epoch(c->l1, hash);
    char token[33];
    make_token(token);
    tc_value *nv = NULL;
    int rc = TC_MISS;
    int share = 0, from;
    if (tc__lease_take(c, key, klen, token) == TC_OK)
        rc = compute_leased(c, key, klen, hash, epoch, ttl, fn, ud, token, &nv,
                            &share, &from);
    /* Waiters that joined meanwhile get the new value, or retry. */
    tc__flight_land(c->flights, f, share ? rc : TC_MISS,
                    share && rc == TC_OK ? nv : NULL);
    if (rc != TC_OK || !nv)
        return cur;
    tc_value_release(cur);
    return nv;
}

/* TC_OK with the value, or TC_ABSENT for a cached "absent". */
static int deliver(int rc, tc_value *v, tc_value **out)
{
    if (rc == TC_OK && v && (v->flags & TC__FLAG_ABSENT)) {
        tc_value_release(v);
        v = NULL;
        rc = TC_ABSENT;
    }
    *out = rc == TC_OK ? v : NULL;
    if (rc != TC_OK)
        tc_value_release(v);
    return rc;
}

static int fetch_miss(tc_cache *c, const char *key, size_t klen, uint64_t hash,
                      uint32_t ttl, tc_compute_fn fn, void *ud, tc_value **out,
                      int *from)
{
    uint64_t deadline = tc__mono_ms() + c->opt.fetch_wait_ms;
    for (;;) {
        tc__flight *f;
        tc_value *v = NULL;
        int role = tc__flight_join(c->flights, key, klen, &f);
        if (role < 0)
            return TC_ENOMEM;
        if (role == 1) {
            int share = 1;
            int rc = lead(c, key, klen, hash, ttl, fn, ud, &v, &share, from);
            tc__flight_land(c->flights, f, share ? rc : TC_MISS,
                            share ? v : NULL);
            return deliver(rc, v, out);
        }
        uint64_t now = tc__mono_ms();
        uint32_t left = now < deadline ? (uint32_t)(deadline - now) : 0;
        int rc = tc__flight_wait(c->flights, f, left, &v);
        *from = TC_FROM_SHARED;
        /* The leader found nothing to share (its refresh lost a race):
           try again, as leader or waiter, while time is left. */
        if (rc == TC_MISS && tc__mono_ms() < deadline)
            continue;
        /* ... and once it is out, the wait timed out: tc_fetch never
           returns TC_MISS (docs/api.md). */
        return deliver(rc == TC_MISS ? TC_ETIMEOUT : rc, v, out);
    }
}

int tc_fetch(tc_cache *c, const char *key, uint32_t ttl_ms, tc_compute_fn fn,
             void *ud, tc_value **out)
{
    int from;
    return tc_fetch_from(c, key, ttl_ms, fn, ud, out, &from);
}

int tc_fetch_from(tc_cache *c, const char *key, uint32_t ttl_ms,
                  tc_compute_fn fn, void *ud, tc_value **out, int *from)
{
    if (!out || !from)
        return TC_EINVAL;
    *out = NULL;
    *from = TC_FROM_NONE;
    size_t klen;
    int rc = tc__check_key(c, key, &klen);
    if (rc == TC_OK && !fn)
        rc = TC_EINVAL;
    if (rc == TC_OK)
        rc = tc__enter(c);
    if (rc != TC_OK)
        return rc;
    uint32_t ttl = jittered(c, ttl_ms ? ttl_ms : c->opt.default_ttl_ms);
    uint64_t hash = tc__hash(key, klen);
    tc_value *v = NULL;
    rc = tc__lookup_from(c, key, klen, hash, &v, from);
    if (rc == TC_OK) {
        if (should_refresh(c, v))
            v = refresh(c, key, klen, hash, ttl, fn, ud, v);
        return deliver(TC_OK, v, out);
    }
    if (rc != TC_MISS)
        return rc;
    rc = fetch_miss(c, key, klen, hash, ttl, fn, ud, out, from);
    if (rc != TC_OK && rc != TC_ABSENT)
        *from = TC_FROM_NONE;
    return rc;
}

/* tc_mfetch's callback behind tc_fetch's: it is told its key. */
typedef struct keyed {
    tc_mcompute_fn fn;
    void *ud;
    const char *key;
} keyed;

static int keyed_compute(void *ud, void **val, size_t *len, uint32_t *ttl_ms)
{
    const keyed *k = ud;
    return k->fn(k->ud, k->key, val, len, ttl_ms);
}

int tc_mfetch(tc_cache *c, const char *const *keys, size_t n, uint32_t ttl_ms,
              tc_mcompute_fn fn, void *ud, tc_value **out, int *status)
{
    if (n == 0)
        return c ? TC_OK : TC_EINVAL;
    int rc = tc__mbegin(c, keys, n, out, status, fn != NULL);
    if (rc != TC_OK)
        return rc;
    tc__mlookup(c, keys, n, out, status);
    /* Then each key as tc_fetch_from goes on after its lookup. */
    for (size_t i = 0; i < n; i++) {
        if (status[i] != TC_OK && status[i] != TC_MISS)
            continue;
        size_t klen = strlen(keys[i]); /* checked by tc__mlookup */
        uint32_t ttl = jittered(c, ttl_ms ? ttl_ms : c->opt.default_ttl_ms);
        uint64_t hash = tc__hash(keys[i], klen);
        tc_value *v = out[i];
        out[i] = NULL;
        keyed k = {fn, ud, keys[i]};
        if (status[i] == TC_OK) {
            if (should_refresh(c, v))
                v = refresh(c, keys[i], klen, hash, ttl, keyed_compute, &k, v);
            status[i] = deliver(TC_OK, v, &out[i]);
        } else {
            int from;
            status[i] = fetch_miss(c, keys[i], klen, hash, ttl, keyed_compute,
                                   &k, &out[i], &from);
        }
    }
    return tc__worst(status, n);
}

int tc_cached(tc_cache *c, uint32_t ttl_ms, const char *name, tc_compute_fn fn,
              void *ud, tc_value **out, const char *fmt, ...)
{
    if (out)
        *out = NULL;
    char key[TC_KEY_MAX];
    va_list ap;
    va_start(ap, fmt);
    int rc = tc_keyv(key, sizeof(key), name, fmt, ap);
    va_end(ap);
    if (rc != TC_OK)
        return rc;
    return tc_fetch(c, key, ttl_ms, fn, ud, out);
}

int tc_uncached(tc_cache *c, const char *name, const char *fmt, ...)
{
    char key[TC_KEY_MAX];
    va_list ap;
    va_start(ap, fmt);
    int rc = tc_keyv(key, sizeof(key), name, fmt, ap);
    va_end(ap);
    return rc == TC_OK ? tc_del(c, key) : rc;
}
