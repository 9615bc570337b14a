/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Invalidations are never lost (docs/architecture.md §5.5). A delete,
 * prefix delete, flush or set that could not reach Redis leaves Redis
 * holding a value the caller meant to be gone (a failed SET may have
 * landed or not, and the old value is stale either way). Each is queued
 * here, bounded by replay_max; past the bound the queue collapses into
 * one namespace flush. The queue is replayed as soon as the invalidation
 * link is back, and before any call reads Redis again (tc__replay_run).
 *
 * Who replays (§5.5): the listener, the moment its link is back (and at
 * every PING while anything is queued, and whenever a caller asks it
 * to); a caller only where there is no listener, and then for no longer
 * than one command timeout. Keys go in batches, their DELs pipelined
 * (tc__invalidate_keys): one round trip per few hundred keys. A caller
 * about to read Redis waits for the replay, at most one command timeout
 * (tc__replay_gate); a write does not wait: a queued delete that lands
 * after it costs a miss, never a stale read.
 *
 * On a cluster (§5.9) one master may stay away while the others serve:
 * a queued delete then holds back only reads of its own slot, and a
 * prefix delete, a flush or an overflow still hold back every read
 * (tc__replay_gate). The replay goes on past a failed key (every item is
 * a delete, and deletes commute), so the other slots' items land.
 */
#include <pthread.h>
#include <string.h>

#include "coherence.h"
#include "l2ops.h"
#include "replay.h"

typedef struct item {
    struct item *next;
    uint32_t kind;  /* TC__INVAL_KEY, _PREFIX or _FLUSH */
    unsigned slot;  /* a key's cluster slot */
    uint64_t epoch; /* the counters' epoch it was counted in */
    size_t len;
    char arg[];
} item;

struct tc__replay {
    pthread_mutex_t mu; /* guards the list, overflow and epoch */
    item *head, **tail;
    size_t n, max;
    int overflow;       /* too many: flush the namespace instead */
    atomic_int pending; /* head != NULL || overflow, read without mu */
    atomic_int running; /* one replay at a time; no lock over I/O */
    pthread_cond_t cv;  /* pending went to 0 (a replay ended), with mu */

    /* Cluster only (slots != NULL), written under mu, read without it:
       items queued or being replayed per slot, and `wide`, the prefix
       and flush items plus 1 for an overflow. An overflow zeroes them and
       moves the epoch: items counted before it are not uncounted. */
    atomic_uint *slots;
    atomic_uint wide;
    uint64_t epoch;
};

int tc__replay_create(tc__replay **out, size_t max, int per_slot)
{
    tc__replay *q = tc__calloc(1, sizeof(*q));
    *out = q;
    if (!q)
        return TC_ENOMEM;
    if (per_slot && !(q->slots = tc__calloc(16384, sizeof(*q->slots)))) {
        tc__free(q);
        *out = NULL;
        return TC_ENOMEM;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->tail = &q->head;
    q->max = max;
    return TC_OK;
}

/* mu held. The counters start again: nothing, or only the overflow. */
static void recount_locked(tc__replay *q, int overflow)
{
    if (!q->slots)
        return;
    for (unsigned i = 0; i < 16384; i++)
        atomic_store_explicit(&q->slots[i], 0, memory_order_relaxed);
    atomic_store(&q->wide, overflow ? 1u : 0u);
    q->epoch++;
}

/* mu held: it counts (+1) or no longer counts (-1). */
static void count_locked(tc__replay *q, const item *it, int d)
{
    if (!q->slots || it->epoch != q->epoch)
        return;
    atomic_uint *c =
        it->kind == TC__INVAL_KEY ? &q->slots[it->slot] : &q->wide;
    if (d > 0)
        atomic_fetch_add(c, 1);
    else
        atomic_fetch_sub(c, 1);
}

static void free_list(item *it)
{
    while (it) {
        item *next = it->next;
        tc__free(it);
        it = next;
    }
}

static void clear_locked(tc__replay *q)
{
    free_list(q->head);
    q->head = NULL;
    q->tail = &q->head;
    q->n = 0;
    q->overflow = 0;
    recount_locked(q, 0);
    atomic_store(&q->pending, 0);
}

void tc__replay_destroy(tc__replay *q)
{
    if (!q)
        return;
    clear_locked(q);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    tc__free(q->slots);
    tc__free(q);
}

/* The last item queued, from its next pointer's address (tail). */
static int tail_is(const tc__replay *q, uint32_t kind, const char *arg,
                   size_t len)
{
    const item *last =
        (const item *)((const char *)q->tail - offsetof(item, next));
    return last->kind == kind && last->len == len &&
           memcmp(last->arg, arg, len) == 0;
}

void tc__replay_push(tc_cache *c, uint32_t kind, const char *arg, size_t len)
{
    tc__replay *q = c->replay;
    item *it = kind == TC__INVAL_FLUSH ? NULL : tc__malloc(sizeof(*it) + len);
    if (it)
        it->slot =
            kind == TC__INVAL_KEY && q->slots ? tc__key_slot(c, arg, len) : 0;
    pthread_mutex_lock(&q->mu);
    if (!it || q->n >= q->max) {
        /* A flush covers everything queued, and any lost item. */
        if (!q->overflow && kind != TC__INVAL_FLUSH)
            TC__INC(c->ctr.replay_overflows);
        free_list(q->head);
        q->head = NULL;
        q->tail = &q->head;
        q->n = 0;
        q->overflow = 1;
        recount_locked(q, 1);
        tc__free(it);
    } else if (q->head && kind != TC__INVAL_FLUSH &&
               tail_is(q, kind, arg, len)) {
        /* the same as the last one (a hot key written in a loop through
           an outage): replaying it twice in a row changes nothing */
        tc__free(it);
    } else {
        it->next = NULL;
        it->kind = kind;
        it->len = len;
        it->epoch = q->epoch;
        memcpy(it->arg, arg, len);
        count_locked(q, it, +1);
        *q->tail = it;
        q->tail = &it->next;
        q->n++;
    }
    atomic_store(&q->pending, 1);
    pthread_mutex_unlock(&q->mu);
    TC__INC(c->ctr.replay_queued);
}

/* Puts back what a failed replay did not do, ahead of newer items. */
static void requeue(tc__replay *q, item *rest, int overflow)
{
    if (!rest && !overflow)
        return;
    pthread_mutex_lock(&q->mu);
    item **end = &rest;
    size_t n = 0;
    while (*end) {
        end = &(*end)->next;
        n++;
    }
    *end = q->head;
    if (!q->head)
        q->tail = end;
    q->head = rest;
    q->n += n;
    q->overflow |= overflow;
    if (q->overflow) { /* the flush covers the items */
        free_list(q->head);
        q->head = NULL;
        q->tail = &q->head;
        q->n = 0;
        recount_locked(q, 1);
    }
    atomic_store(&q->pending, 1);
    pthread_mutex_unlock(&q->mu);
}

int tc__replay_pending(const tc_cache *c)
{
    return c->replay && atomic_load(&c->replay->pending);
}

/* Waits until nothing is queued, or until deadline (mono ms). */
static int wait_settled(tc__replay *q, uint64_t deadline)
{
    pthread_mutex_lock(&q->mu);
    while (atomic_load(&q->pending)) {
        uint64_t now = tc__mono_ms();
        if (now >= deadline)
            break;
        struct timespec ts = tc__deadline_ms(deadline - now);
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
    }
    int rc = atomic_load(&q->pending) ? TC_EBACKEND : TC_OK;
    pthread_mutex_unlock(&q->mu);
    return rc;
}

static int replay(tc_cache *c, uint64_t deadline);

/* Before a call reads Redis: the queue replayed, by the listener if
   there is one (asked to, and waited for), else by this thread; either
   way for at most one command timeout. */
static int settle(tc_cache *c)
{
    tc__replay *q = c->replay;
    if (!q || !atomic_load(&q->pending))
        return TC_OK;
    uint64_t deadline = tc__mono_ms() + c->opt.command_timeout_ms;
    tc__replay_nudge(c);
    if (!atomic_load(&q->pending))
        return TC_OK;
    /* With the link down the server is likely away too: no wait (the
       listener replays within a PING interval of its return). Else wait
       for the listener's replay, or another thread's. */
    if (c->coh && tc__coh_started(c->coh) && !tc__coh_ok(c->coh))
        return TC_EBACKEND;
    return wait_settled(q, deadline);
}

int tc__replay_gate(tc_cache *c, const char *key, size_t klen)
{
    int rc = settle(c);
    tc__replay *q = c->replay;
    if (rc == TC_OK || !q || !q->slots || atomic_load(&q->wide))
        return rc;
    return atomic_load(&q->slots[tc__key_slot(c, key, klen)]) ? rc : TC_OK;
}

void tc__replay_gate_many(tc_cache *c, const char *const *keys,
                          const size_t *klens, size_t n, int *rcs)
{
    /* One settle for all: a second would wait out the same queue. */
    int rc = n ? settle(c) : TC_OK;
    tc__replay *q = c->replay;
    for (size_t i = 0; i < n; i++) {
        if (rc == TC_OK || !q || !q->slots || atomic_load(&q->wide))
            rcs[i] = rc;
        else
            rcs[i] = atomic_load(&q->slots[tc__key_slot(c, keys[i], klens[i])])
                         ? rc
                         : TC_OK;
    }
}

void tc__replay_nudge(tc_cache *c)
{
    if (!tc__replay_pending(c))
        return;
    if (c->coh && tc__coh_started(c->coh))
        tc__coh_kick(c->coh, TC__KICK_REPLAY);
    else
        replay(c, tc__mono_ms() + c->opt.command_timeout_ms);
}

int tc__replay_run(tc_cache *c)
{
    return replay(c, 0);
}

/* One item that is not a key (a prefix delete), as before batches. */
static int replay_one(tc_cache *c, item *it)
{
    int r = tc__invalidate_l2(c, it->kind, it->arg, it->len);
    if (r == TC_EREFUSED) { /* would be refused forever: drop it */
        tc__refused(c, "a replayed invalidation");
        r = TC_OK;
    }
    return r;
}

/* Key items handed to tc__invalidate_keys at once. */
#define BATCH 512

/* Replays up to BATCH key items from *list (advancing it): those done
   are freed, those that failed are appended at *failed_tail. Returns
   how many were done, and in *rc the first failure. */
static size_t replay_keys(tc_cache *c, item **list, item ***failed_tail,
                          int *rc)
{
    tc__replay *q = c->replay;
    item *run[BATCH];
    const char *keys[BATCH];
    size_t lens[BATCH], m = 0, done = 0;
    int rcs[BATCH];
    for (item *it = *list; it && it->kind == TC__INVAL_KEY && m < BATCH;
         it = it->next) {
        run[m] = it;
        keys[m] = it->arg;
        lens[m++] = it->len;
    }
    if (m == 0) /* the caller saw a key item first: never */
        return 0;
    *list = run[m - 1]->next;
    tc__invalidate_keys(c, keys, lens, m, rcs);
    for (size_t k = 0; k < m; k++) {
        if (rcs[k] == TC_EREFUSED) {
            tc__refused(c, "a replayed invalidation");
            rcs[k] = TC_OK;
        }
        if (rcs[k] == TC_OK) {
            pthread_mutex_lock(&q->mu);
            count_locked(q, run[k], -1);
            pthread_mutex_unlock(&q->mu);
            tc__free(run[k]);
            done++;
            continue;
        }
        if (*rc == TC_OK)
            *rc = rcs[k];
        run[k]->next = NULL;
        **failed_tail = run[k];
        *failed_tail = &run[k]->next;
    }
    return done;
}

static int replay(tc_cache *c, uint64_t deadline)
{
    tc__replay *q = c->replay;
    if (!q || !atomic_load(&q->pending))
        return TC_OK;
    int idle = 0;
    if (!atomic_compare_exchange_strong(&q->running, &idle, 1))
        return TC_EBACKEND; /* another thread replays: not ready yet */
    pthread_mutex_lock(&q->mu);
    item *list = q->head;
    int overflow = q->overflow;
    q->head = NULL;
    q->tail = &q->head;
    q->n = 0;
    q->overflow = 0;
    /* `pending` stays set until the replay is over: readers must keep
       off Redis while the DELs are still on their way. */
    pthread_mutex_unlock(&q->mu);

    size_t done = 0;
    int rc = TC_OK;
    if (overflow) {
        rc = tc__invalidate_l2(c, TC__INVAL_FLUSH, "", 0);
        if (rc == TC_EREFUSED) {
            tc__refused(c, "a replayed flush");
            rc = TC_OK;
        }
        overflow = rc != TC_OK;
        done += rc == TC_OK;
        if (rc == TC_OK) { /* the overflow no longer holds reads back */
            pthread_mutex_lock(&q->mu);
            if (q->slots && !q->overflow)
                atomic_fetch_sub(&q->wide, 1);
            pthread_mutex_unlock(&q->mu);
        }
    }
    /* On one server a failure ends the replay (the rest would fail
       alike); on a cluster it holds back only its own keys. */
    item *failed = NULL, **failed_tail = &failed;
    while (list &&
           (rc == TC_OK || (q->slots && list->kind == TC__INVAL_KEY))) {
        if (deadline && tc__mono_ms() >= deadline) {
            if (rc == TC_OK)
                rc = TC_EBACKEND; /* out of time: the rest waits */
            break;
        }
        if (list->kind == TC__INVAL_KEY) {
            done += replay_keys(c, &list, &failed_tail, &rc);
            continue;
        }
        int r = replay_one(c, list);
        if (r != TC_OK) {
            rc = r;
            break;
        }
        item *next = list->next;
        pthread_mutex_lock(&q->mu);
        count_locked(q, list, -1);
        pthread_mutex_unlock(&q->mu);
        tc__free(list);
        done++;
        list = next;
    }
    if (failed) { /* ahead of what was not tried, in their order */
        *failed_tail = list;
        list = failed;
        if (rc == TC_OK)
            rc = TC_EBACKEND;
    }
    requeue(q, list, overflow);
    pthread_mutex_lock(&q->mu);
    if (!q->head && !q->overflow) {
        atomic_store(&q->pending, 0);
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    atomic_store(&q->running, 0);
    if (done) {
        for (size_t i = 0; i < done; i++)
            TC__INC(c->ctr.replay_done);
        tc__log(&c->lg, TC_LOG_INFO, "replay.done",
                "%zu queued invalidation%s replayed%s", done,
                done == 1 ? "" : "s",
                rc == TC_OK ? "" : ", the rest wait for redis");
    }
    return rc;
}

void tc__replay_lock(tc__replay *q)
{
    pthread_mutex_lock(&q->mu);
}

void tc__replay_unlock(tc__replay *q)
{
    pthread_mutex_unlock(&q->mu);
}

/* In a child after fork(): the parent replays its own queue. */
void tc__replay_after_fork(tc__replay *q)
{
    pthread_cond_init(&q->cv, NULL); /* a parent's waiter is not here */
    clear_locked(q);
    atomic_store(&q->running, 0);
}
