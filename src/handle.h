/* SPDX-License-Identifier: BSD-3-Clause */
/* The cache handle, struct tc_cache: what layers 2 and 3 share. It names
   the services of layer 2 only as pointers, so that it sits below them. */
#ifndef TC_HANDLE_H
#define TC_HANDLE_H

#include "internal.h"
#include "l1.h"
#include "l2.h"
#include "topo.h"

typedef struct tc__replay tc__replay;
typedef struct tc__flights tc__flights;
typedef struct tc__coh tc__coh;
typedef struct tc__renew tc__renew;

struct tc_cache {
    tc_options opt; /* a copy, fixed after tc_open; its pointers NULL */
    tc__topo topo;  /* one Redis, a Sentinel's master, or a Cluster */
    tc__logger lg;
    tc__l1 *l1;
    tc__l2 *l2;                /* NULL: L1-only */
    tc__coh *coh;              /* NULL: no invalidation listener */
    tc__replay *replay;        /* with l2 */
    tc__flights *flights;      /* tc_fetch computations under way */
    tc__renew *renew;          /* keeps their leases alive (with l2) */
    atomic_int refused_logged; /* tc__refused said it once */
    /* Coherence, as the writers (l2ops.c) need it without asking the
       listener: the namespace channel, and whether Redis tracks keys for
       us (set by the listener as it subscribes; then a key's SET or DEL
       need not publish). */
    char channel[TC_NS_MAX + 16]; /* "<ns>:__tc:inval" */
    atomic_int tracking;
    tc__counters ctr;

    /* fork.c: the fork generation this handle was made for, and the
       registry of open caches that the atfork handlers walk. */
    atomic_uint gen;
    pthread_mutex_t fork_mu; /* serializes the rebuild after a fork */
    int registered;          /* in the registry (tc_open got that far) */
    tc_cache *prev, *next;
};

#endif
