/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Single-flight: one computation per key per process. The first caller
 * for a key leads (computes); the others wait on its flight and share
 * its result. A flight leaves the table when its leader finishes, so a
 * caller that comes later starts afresh; it is freed by whoever lets go
 * of it last (the leader or a waiter).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "flight.h"

static _Thread_local int uthash_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (uthash_oom = 1)
#define uthash_malloc(sz) tc__malloc(sz)
#define uthash_free(ptr, sz) tc__free(ptr)
#include <uthash.h>

struct tc__flight {
    UT_hash_handle hh;
    pthread_cond_t done_cv;
    int done;
    int detached; /* out of the table: a tc_del came */
    int rc;       /* the leader's status */
    tc_value *v;  /* its value (one reference), or NULL */
    int refs;     /* the leader, plus each waiter */
    size_t klen;
    char key[];
};

struct tc__flights {
    pthread_mutex_t mu;
    tc__flight *table;
};

int tc__flights_create(tc__flights **out)
{
    tc__flights *t = tc__calloc(1, sizeof(*t));
    *out = t;
    if (!t)
        return TC_ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    return TC_OK;
}

static void flight_free(tc__flight *f)
{
    tc_value_release(f->v);
    pthread_cond_destroy(&f->done_cv);
    tc__free(f);
}

void tc__flights_destroy(tc__flights *t)
{
    if (!t)
        return;
    tc__flight *f, *tmp;
    HASH_ITER(hh, t->table, f, tmp)
    {
        HASH_DEL(t->table, f);
        flight_free(f);
    }
    pthread_mutex_destroy(&t->mu);
    tc__free(t);
}

static tc__flight *flight_new(const char *key, size_t klen)
{
    tc__flight *f = tc__calloc(1, sizeof(*f) + klen + 1);
    if (!f)
        return NULL;
    tc__cond_init_mono(&f->done_cv);
    memcpy(f->key, key, klen);
    f->klen = klen;
    f->refs = 1;
    return f;
}

/* 1: the caller leads; 0: it waits on *out (or, lead_only, someone
   else leads and *out is NULL); -1: no memory. */
static int join(tc__flights *t, const char *key, size_t klen, int lead_only,
                tc__flight **out)
{
    *out = NULL;
    pthread_mutex_lock(&t->mu);
    tc__flight *f = NULL;
    HASH_FIND(hh, t->table, key, klen, f);
    int rc = 0;
    if (f && !lead_only) {
        f->refs++;
        *out = f;
    } else if (!f) {
        rc = -1;
        f = flight_new(key, klen);
        if (f) {
            uthash_oom = 0;
            HASH_ADD_KEYPTR(hh, t->table, f->key, f->klen, f);
            if (uthash_oom) {
                flight_free(f);
                f = NULL;
            }
        }
        if (f) {
            *out = f;
            rc = 1;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int tc__flight_join(tc__flights *t, const char *key, size_t klen,
                    tc__flight **out)
{
    return join(t, key, klen, 0, out);
}

int tc__flight_try_lead(tc__flights *t, const char *key, size_t klen,
                        tc__flight **out)
{
    return join(t, key, klen, 1, out);
}

/* Drops one reference, under mu. */
static void unref_locked(tc__flight *f)
{
    if (--f->refs == 0)
        flight_free(f);
}

void tc__flight_land(tc__flights *t, tc__flight *f, int rc, tc_value *v)
{
    pthread_mutex_lock(&t->mu);
    if (!f->detached)
        HASH_DEL(t->table, f);
    f->done = 1;
    f->rc = rc;
    f->v = v ? tc__value_ref(v) : NULL;
    pthread_cond_broadcast(&f->done_cv);
    unref_locked(f);
    pthread_mutex_unlock(&t->mu);
}

int tc__flight_wait(tc__flights *t, tc__flight *f, uint32_t wait_ms,
                    tc_value **out)
{
    struct timespec dl = tc__deadline_ms(wait_ms);
    pthread_mutex_lock(&t->mu);
    while (!f->done)
        if (pthread_cond_timedwait(&f->done_cv, &t->mu, &dl) == ETIMEDOUT)
            break;
    int rc = f->done ? f->rc : TC_ETIMEOUT;
    *out = f->done && f->v ? tc__value_ref(f->v) : NULL;
    unref_locked(f);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void tc__flights_lock(tc__flights *t)
{
    pthread_mutex_lock(&t->mu);
}

void tc__flights_unlock(tc__flights *t)
{
    pthread_mutex_unlock(&t->mu);
}

/* In a child after fork(): the leaders of these flights are threads of
   the parent; nobody here will land them. */
void tc__flights_after_fork(tc__flights *t)
{
    tc__flight *f, *tmp;
    HASH_ITER(hh, t->table, f, tmp)
    {
        /* Its holders were all threads of the parent. Its condvar may
           still count their waits, so it is not destroyed, only freed. */
        HASH_DEL(t->table, f);
        tc_value_release(f->v);
        tc__free(f);
    }
}

/* Every flight whose key starts with prefix (all of them for plen 0):
   tc_del_prefix and tc_flush. */
void tc__flight_detach_prefix(tc__flights *t, const char *prefix, size_t plen)
{
    tc__flight *f, *tmp;
    pthread_mutex_lock(&t->mu);
    HASH_ITER(hh, t->table, f, tmp)
    {
        if (f->klen >= plen && memcmp(f->key, prefix, plen) == 0) {
            HASH_DEL(t->table, f);
            f->detached = 1;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

/* A tc_del of key: later callers must not join a computation that may
   have read the source before the change. */
void tc__flight_detach(tc__flights *t, const char *key, size_t klen)
{
    pthread_mutex_lock(&t->mu);
    tc__flight *f = NULL;
    HASH_FIND(hh, t->table, key, klen, f);
    if (f) {
        HASH_DEL(t->table, f);
        f->detached = 1;
    }
    pthread_mutex_unlock(&t->mu);
}
