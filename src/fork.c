/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fork safety (docs/architecture.md §7). A prefork server opens its
 * cache, then forks. The child must not share the parent's sockets or
 * rely on its threads:
 *
 * - prepare: take every lock of every open cache, so that no child
 *   inherits a lock held by a thread that does not exist there;
 * - parent, child: release them; the child also bumps the fork
 *   generation;
 * - every public call compares the cache's generation with the current
 *   one (one relaxed load) and, in a child, rebuilds first: the
 *   connections are dropped without a byte written, the L1 and the
 *   replay queue are emptied, and a listener of the child's own starts.
 *
 * Lock order in prepare, the same as everywhere (internal.h): the
 * registry, then per cache fork_mu, the pool, the replay queue, the
 * single-flight table, lease renewal, the listener, the shards in index
 * order. The renewal thread, like the listener, is the parent's: the
 * child starts its own with its first lease.
 */
#include <pthread.h>

#include "coherence.h"
#include "flight.h"
#include "fork.h"
#include "l1.h"
#include "l2.h"
#include "renew.h"
#include "replay.h"

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static tc_cache *registry;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void lock_cache(tc_cache *c)
{
    pthread_mutex_lock(&c->fork_mu);
    if (c->l2)
        tc__l2_lock(c->l2);
    if (c->replay)
        tc__replay_lock(c->replay);
    if (c->flights)
        tc__flights_lock(c->flights);
    if (c->renew)
        tc__renew_lock(c->renew);
    if (c->coh)
        tc__coh_lock(c->coh);
    tc__l1_lock_all(c->l1);
}

static void unlock_cache(tc_cache *c)
{
    tc__l1_unlock_all(c->l1);
    if (c->coh)
        tc__coh_unlock(c->coh);
    if (c->renew)
        tc__renew_unlock(c->renew);
    if (c->flights)
        tc__flights_unlock(c->flights);
    if (c->replay)
        tc__replay_unlock(c->replay);
    if (c->l2)
        tc__l2_unlock(c->l2);
    pthread_mutex_unlock(&c->fork_mu);
}

static void prepare(void)
{
    pthread_mutex_lock(&registry_mu);
    for (tc_cache *c = registry; c; c = c->next)
        lock_cache(c);
}

static void parent(void)
{
    for (tc_cache *c = registry; c; c = c->next)
        unlock_cache(c);
    pthread_mutex_unlock(&registry_mu);
}

static void child(void)
{
    for (tc_cache *c = registry; c; c = c->next) {
        tc__l1_after_fork_child(c->l1);
        unlock_cache(c);
    }
    tc__forkgen_bump();
    pthread_mutex_unlock(&registry_mu);
}

static void install(void)
{
    pthread_atfork(prepare, parent, child);
}

void tc__fork_register(tc_cache *c)
{
    pthread_once(&atfork_once, install);
    pthread_mutex_init(&c->fork_mu, NULL);
    pthread_mutex_lock(&registry_mu);
    atomic_store(&c->gen, tc__forkgen());
    c->prev = NULL;
    c->next = registry;
    if (registry)
        registry->prev = c;
    registry = c;
    c->registered = 1;
    pthread_mutex_unlock(&registry_mu);
}

void tc__fork_unregister(tc_cache *c)
{
    pthread_mutex_lock(&registry_mu);
    if (c->prev)
        c->prev->next = c->next;
    else if (registry == c)
        registry = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&registry_mu);
    pthread_mutex_destroy(&c->fork_mu);
}

/* The listener is waited for after fork_mu is let go, as on a first use
   (cache.c): its log lines may reach a callback that calls this cache,
   which must find the rebuild done, not wait for the lock. */
int tc__fork_rebuild(tc_cache *c)
{
    int rc = TC_OK, launched = 0;
    pthread_mutex_lock(&c->fork_mu);
    unsigned now = tc__forkgen();
    if (atomic_load(&c->gen) != now) { /* the first thread here does it */
        if (c->l2)
            tc__l2_after_fork(c->l2);
        if (c->replay)
            tc__replay_after_fork(c->replay);
        if (c->flights)
            tc__flights_after_fork(c->flights);
        if (c->renew)
            tc__renew_after_fork(c->renew);
        tc__l1_clear(c->l1);
        if (c->coh)
            rc = tc__coh_after_fork(c->coh);
        launched = c->coh && rc == TC_OK;
        atomic_store(&c->gen, now);
    }
    pthread_mutex_unlock(&c->fork_mu);
    if (launched)
        tc__coh_wait(c->coh);
    return rc;
}
