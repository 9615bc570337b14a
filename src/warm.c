/* SPDX-License-Identifier: BSD-3-Clause */
/* tc_warm: fills the L1 of a process that starts cold from what Redis
   holds, SCAN page by SCAN page with the page's GETs pipelined. Each
   value enters under the fill rule (docs/architecture.md §5.2): the
   key's shard epoch is read before its GET is sent, and an invalidation
   that reached the shard meanwhile keeps the value out. Nothing already
   in the L1 is evicted for it: the L1's own bounds decide. */
#include <string.h>

#include "cache.h"
#include "coherence.h"
#include "l1.h"
#include "l2.h"
#include "l2ops.h"
#include "replay.h"

/* Refusals for room in a row, since the last value that entered, after
   which the L1 is taken to be full: most shards are. */
#define FULL_RUN 256

typedef struct warm {
    tc_cache *c;
    size_t nslen;   /* strlen("<ns>:{") */
    uint64_t limit; /* values to put in at most */
    uint64_t filled, full_run, stale, foreign;
    int stop, oom, down;
} warm;

/* The user's key inside "<ns>:{<key>}", or NULL for what is no value
   of ours to warm: leases (SCAN MATCH already leaves them out), the
   group generations (0x01, read on first use), keys tc_get would
   refuse. */
static const char *key_of(const warm *w, const char *rkey, size_t rlen,
                          size_t *klen)
{
    if (rlen < w->nslen + 2 || rkey[rlen - 1] != '}')
        return NULL;
    const char *key = rkey + w->nslen;
    size_t n = rlen - w->nslen - 1;
    if (key[0] == '\x01' || memchr(key, '\0', n) ||
        n > w->c->opt.max_key_bytes ||
        (key[0] == '}' && w->c->topo.kind == TC__TOPO_CLUSTER))
        return NULL;
    *klen = n;
    return key;
}

static int warm_key(void *ud, const char *rkey, size_t rlen, uint64_t *tag)
{
    warm *w = ud;
    size_t klen;
    if (w->stop)
        return -1;
    const char *key = key_of(w, rkey, rlen, &klen);
    if (!key)
        return 0;
    /* before the GET is sent: see tc__l1_put */
    *tag = tc__l1_epoch(w->c->l1, tc__hash(key, klen));
    return 1;
}

/* Is the L1 full? By entries, counted over every shard. */
static int l1_full(warm *w)
{
    tc__l1_stats n;
    tc__l1_counts(w->c->l1, &n);
    return n.entries >= w->c->opt.l1_max_entries ||
           n.bytes >= w->c->opt.l1_max_bytes;
}

static int warm_value(void *ud, const char *rkey, size_t rlen, uint64_t epoch,
                      const char *buf, size_t len)
{
    warm *w = ud;
    tc_cache *c = w->c;
    size_t klen;
    const char *key = key_of(w, rkey, rlen, &klen);
    if (!buf || !key) /* gone since SCAN saw it, or a redirection */
        return 0;
    /* The listener lost its link: what comes now could go stale unseen. */
    if (c->coh && !tc__coh_ok(c->coh)) {
        w->down = w->stop = 1;
        return -1;
    }
    tc__envelope e;
    if (tc__env_decode(buf, len, c->opt.max_value_bytes, &e) != TC_OK ||
        (e.flags & ~TC__FLAGS_KNOWN) != 0) {
        TC__INC(c->ctr.codec_errors);
        w->foreign++;
        return 0;
    }
    uint64_t ttl = tc__cache_ttl_of(c, e.expires_at_ms);
    if (!ttl)
        return 0;
    tc_value *v = tc__value_new(e.payload, e.payload_len);
    if (!v) {
        w->oom = w->stop = 1;
        return -1;
    }
    v->flags = e.flags; /* an "absent" is a value like the others */
    v->delta_ms = e.delta_ms;
    v->expires_at = e.expires_at_ms;
    v->wver = e.wver;
    int rc =
        tc__l1_put_room(c->l1, key, klen, tc__hash(key, klen), v, ttl, epoch);
    tc_value_release(v);
    if (rc == TC_OK) {
        TC__INC(c->ctr.l1_warmed);
        w->full_run = 0;
        if (++w->filled >= w->limit || (w->filled % 1024 == 0 && l1_full(w)))
            w->stop = 1;
    } else if (rc == TC_ETOOBIG) {
        if (++w->full_run >= FULL_RUN || l1_full(w))
            w->stop = 1;
    } else if (rc == TC_ENOMEM) {
        w->oom = w->stop = 1;
    } else {
        w->stale++; /* an invalidation raced it: read on first use */
    }
    return w->stop ? -1 : 0;
}

int tc_warm(tc_cache *c, const char *prefix, size_t max_entries)
{
    size_t plen = 0;
    int rc = c ? TC_OK : TC_EINVAL;
    if (rc == TC_OK && prefix && prefix[0])
        rc = tc__check_key(c, prefix, &plen);
    if (rc == TC_OK)
        rc = tc__enter(c); /* starts the listener, as a first call does */
    if (rc != TC_OK)
        return rc;
    if (!c->l2 || c->opt.l1_max_entries == 0 || c->opt.l1_max_bytes == 0)
        return TC_OK; /* nothing to warm from, or nothing to warm */
    /* Coherent or not at all: without the link an entry put in now could
       outlive a change it never hears of. */
    if (c->coh && !tc__coh_ok(c->coh)) {
        tc__log(&c->lg, TC_LOG_WARN, "warm.link.down",
                "tc_warm: invalidation link down");
        return TC_EBACKEND;
    }
    /* Deletes not yet in Redis: until they are, it holds stale values. */
    if (tc__replay_pending(c) && tc__replay_run(c) != TC_OK)
        return TC_EBACKEND;
    /* "<ns>:{<prefix>*}": the values under prefix, no lease (theirs
       end in ":lease") */
    char *pattern = tc__scan_pattern(c, prefix ? prefix : "", plen, "*}");
    if (!pattern)
        return TC_ENOMEM;
    warm w = {.c = c,
              .nslen = strlen(c->opt.ns) + 2,
              .limit = max_entries ? max_entries : c->opt.l1_max_entries};
    tc__l2_scan_fns fns = {warm_key, warm_value, &w};
    uint64_t t0 = tc__mono_ms();
    rc = tc__l2_scan_get(c->l2, pattern, &fns);
    /* The prefix is the start of keys: not above debug (the namespace
       and its length say enough here). */
    tc__log(&c->lg, TC_LOG_INFO, "warm.done",
            "tc_warm of namespace %s, a prefix of %zu bytes: %llu entries "
            "in %llu ms (%llu raced, %llu foreign)",
            c->opt.ns, plen, (unsigned long long)w.filled,
            (unsigned long long)(tc__mono_ms() - t0),
            (unsigned long long)w.stale, (unsigned long long)w.foreign);
    tc__free(pattern);
    if (w.oom || rc == TC_ENOMEM)
        return TC_ENOMEM;
    if (w.down)
        return TC_EBACKEND;
    if (rc == TC_EBACKEND)
        tc__backend_failed(c);
    if (rc == TC_EBACKEND || rc == TC_EREFUSED)
        return tc__strict_code(c, rc);
    return rc;
}
