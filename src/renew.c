/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Lease renewal (see renew.h). One thread per cache, started with the
 * first lease, wakes every lease_ms / 3 and sends, for each lease held
 * here, a script that extends it only while its token still holds: a
 * lease lost to a tc_del or taken over after an expiry is never revived,
 * so two holders never both store (the store script checks the token).
 * The list is edited under mu; the Redis calls go out without it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "handle.h"
#include "lease.h"
#include "renew.h"

struct tc__held {
    tc__held *prev, *next;
    int orphan; /* a parent's, after fork: freed only by destroy */
    size_t klen;
    char token[33];
    char key[]; /* klen bytes */
};

struct tc__renew {
    tc_cache *c;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t tid;
    int running, stop;
    tc__held *held;    /* leases of computations under way */
    tc__held *orphans; /* after a fork */
};

int tc__renew_create(tc__renew **out, tc_cache *c)
{
    tc__renew *r = tc__calloc(1, sizeof(*r));
    *out = r;
    if (!r)
        return TC_ENOMEM;
    r->c = c;
    pthread_mutex_init(&r->mu, NULL);
    tc__cond_init_mono(&r->cv);
    return TC_OK;
}

static void free_list(tc__held *h)
{
    while (h) {
        tc__held *next = h->next;
        tc__free(h);
        h = next;
    }
}

void tc__renew_destroy(tc__renew *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    int joined = r->running;
    pthread_mutex_unlock(&r->mu);
    if (joined)
        pthread_join(r->tid, NULL);
    free_list(r->held);
    free_list(r->orphans);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    tc__free(r);
}

/* A copy of what is held now: the calls go out without the lock, and
   the entries may be dropped meanwhile. */
static tc__held *snapshot_locked(tc__renew *r)
{
    tc__held *copy = NULL;
    for (tc__held *h = r->held; h; h = h->next) {
        tc__held *n = tc__malloc(sizeof(*n) + h->klen);
        if (!n)
            break; /* this round renews fewer; the next tries again */
        memcpy(n, h, sizeof(*n) + h->klen);
        n->next = copy;
        copy = n;
    }
    return copy;
}

static void renew_all(tc__renew *r, tc__held *list)
{
    for (tc__held *h = list; h; h = h->next)
        tc__lease_extend(r->c, h->key, h->klen, h->token);
}

static void *renew_main(void *arg)
{
    tc__renew *r = arg;
    uint32_t every = r->c->opt.lease_ms / 3 ? r->c->opt.lease_ms / 3 : 1;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec at = tc__deadline_ms(every);
        while (!r->stop &&
               pthread_cond_timedwait(&r->cv, &r->mu, &at) != ETIMEDOUT)
            ;
        if (r->stop)
            break;
        tc__held *list = snapshot_locked(r);
        pthread_mutex_unlock(&r->mu);
        renew_all(r, list);
        free_list(list);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

tc__held *tc__renew_hold(tc__renew *r, const char *key, size_t klen,
                         const char *token)
{
    tc__held *h = tc__calloc(1, sizeof(*h) + klen);
    if (!h)
        return NULL;
    h->klen = klen;
    memcpy(h->key, key, klen);
    snprintf(h->token, sizeof(h->token), "%s", token);
    pthread_mutex_lock(&r->mu);
    if (!r->running && !r->stop &&
        pthread_create(&r->tid, NULL, renew_main, r) == 0)
        r->running = 1;
    if (!r->running) {
        pthread_mutex_unlock(&r->mu);
        tc__free(h);
        return NULL;
    }
    h->next = r->held;
    if (r->held)
        r->held->prev = h;
    r->held = h;
    pthread_mutex_unlock(&r->mu);
    return h;
}

void tc__renew_drop(tc__renew *r, tc__held *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&r->mu);
    int orphan = h->orphan;
    if (!orphan) {
        if (h->prev)
            h->prev->next = h->next;
        else
            r->held = h->next;
        if (h->next)
            h->next->prev = h->prev;
    }
    pthread_mutex_unlock(&r->mu);
    if (!orphan)
        tc__free(h);
}

void tc__renew_lock(tc__renew *r)
{
    pthread_mutex_lock(&r->mu);
}

void tc__renew_unlock(tc__renew *r)
{
    pthread_mutex_unlock(&r->mu);
}

/* The thread is the parent's; so are the computations whose leases are
   listed (a thread that forked from inside one may still drop it here:
   the entry stays valid, on the orphan list, until destroy). Under mu
   like every edit of the list: the caller holds at most fork_mu. */
void tc__renew_after_fork(tc__renew *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->held) {
        tc__held *h = r->held;
        r->held = h->next;
        h->orphan = 1;
        h->prev = NULL;
        h->next = r->orphans;
        r->orphans = h;
    }
    r->running = 0;
    tc__cond_init_mono(&r->cv); /* may count the parent's thread */
    pthread_mutex_unlock(&r->mu);
}
