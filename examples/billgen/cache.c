/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker's cache: one tc_cache shared by its threads, opened after the
 * fork. Cached routes go through tc_fetch_from (one computation per key
 * across every worker), with X-Cache from the tier that answered and a
 * strong ETag over the body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "billgen.h"

static tc_cache *cache;

/* The library's defaults and environment, with billgen's own defaults
   where the environment says nothing. */
static void defaults(tc_options *o)
{
    tc_options_init(o);
    if (!getenv("TC_NAMESPACE"))
        snprintf(o->ns, sizeof(o->ns), "billgen");
    /* While the invalidation link is down a worker's L1 hears no other
       worker's writes: billgen bypasses it rather than serve a bill that
       another worker has just changed. */
    if (!getenv("TC_DEGRADED_L1_TTL_MS"))
        o->degraded_l1_ttl_ms = 0;
}

int bg_cache_configured(char *err, size_t cap)
{
    tc_options o;
    defaults(&o);
    if (o.env_error[0]) {
        snprintf(err, cap, "%s", o.env_error);
        return -1;
    }
    return o.redis_host[0] != '\0' || o.redis_socket[0] != '\0';
}

int bg_cache_open(int enabled)
{
    if (!enabled)
        return 0;
    tc_options o;
    defaults(&o);
    int rc = tc_open(&cache, &o);
    if (rc != TC_OK) {
        fprintf(stderr, "billgen: worker %d: tc_open: %s\n", bg_worker_no,
                tc_strerror(rc));
        return -1;
    }
    return 0;
}

void bg_cache_close(void)
{
    tc_close(cache);
    cache = NULL;
}

tc_cache *bg_cache(void)
{
    return cache;
}

typedef struct call {
    bg_compute_fn fn;
    void *ud;
} call;

/* Runs a route's computation in one read transaction, so that what it
   reads in several statements (an invoice and its lines, a count and a
   page) is one snapshot. */
static int run(bg_compute_fn fn, void *ud, char **body, size_t *len)
{
    sqlite3 *db = bg_db();
    if (!db || sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    int rc = fn(ud, body, len);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

/* The tc_compute_fn around a route's computation: its body is handed to
   tiercache as is (malloc'd), "absent" is cached as such. */
static int compute(void *ud, void **val, size_t *len, uint32_t *ttl_ms)
{
    call *k = ud;
    char *body = NULL;
    (void)ttl_ms;
    int rc = run(k->fn, k->ud, &body, len);
    if (rc == TC_ABSENT)
        return TC_ABSENT;
    if (rc != 0)
        return -1;
    *val = body;
    return 0;
}

static const char *xcache_of(int from)
{
    switch (from) {
    case TC_FROM_L1:
        return "hit-l1";
    case TC_FROM_L2:
        return "hit-l2";
    case TC_FROM_COMPUTED:
    case TC_FROM_SHARED:
        return "miss";
    default:
        return "bypass";
    }
}

static void etag_of(bg_resp *rs)
{
    unsigned long long h = XXH3_64bits(rs->body, rs->len);
    snprintf(rs->etag, sizeof(rs->etag), "\"%016llx\"", h);
}

/* Straight from the database: no cache, or the cache failed. */
static void uncached(bg_resp *rs, const char *ctype, bg_compute_fn fn,
                     void *ud)
{
    char *body = NULL;
    size_t len = 0;
    int rc = run(fn, ud, &body, &len);
    rs->xcache = "bypass";
    if (rc == TC_ABSENT) {
        bg_problem(rs, 404, "no such resource", NULL);
    } else if (rc != 0) {
        bg_problem(rs, 500, "the database failed", NULL);
    } else {
        rs->status = 200;
        rs->ctype = ctype;
        rs->body = body;
        rs->len = len;
        etag_of(rs);
    }
}

void bg_cached(bg_req *rq, bg_resp *rs, const char *group, const char *key,
               const char *ctype, bg_compute_fn fn, void *ud)
{
    (void)rq;
    if (!cache) {
        uncached(rs, ctype, fn, ud);
        return;
    }
    char gkey[TC_KEY_MAX * 2];
    if (group &&
        tc_group_key(cache, gkey, sizeof(gkey), group, key) != TC_OK) {
        uncached(rs, ctype, fn, ud);
        return;
    }
    call k = {fn, ud};
    tc_value *v = NULL;
    int from = TC_FROM_NONE;
    int rc = tc_fetch_from(cache, group ? gkey : key, BG_ITEM_TTL_MS, compute,
                           &k, &v, &from);
    if (rc == TC_ABSENT) {
        rs->xcache = xcache_of(from);
        bg_problem(rs, 404, "no such resource", NULL);
        return;
    }
    if (rc == TC_ECOMPUTE) {
        rs->xcache = xcache_of(from);
        bg_problem(rs, 500, "the database failed", NULL);
        return;
    }
    if (rc != TC_OK) { /* a wait that timed out, a value too big: serve */
        uncached(rs, ctype, fn, ud);
        return;
    }
    bg_body(rs, 200, ctype, tc_value_data(v), tc_value_len(v));
    tc_value_release(v);
    rs->xcache = xcache_of(from);
    etag_of(rs);
}

void bg_inval_key(const char *fmt, long long id)
{
    char key[64];
    if (!cache)
        return;
    snprintf(key, sizeof(key), fmt, id);
    tc_del(cache, key);
}

void bg_inval_bill(long long invoice_id)
{
    char rest[64], key[TC_KEY_MAX * 2];
    if (!cache)
        return;
    snprintf(rest, sizeof(rest), "bill:%lld", invoice_id);
    if (tc_group_key(cache, key, sizeof(key), "bills", rest) == TC_OK)
        tc_del(cache, key);
}

void bg_inval_group(const char *group)
{
    if (cache)
        tc_group_bump(cache, group);
}
