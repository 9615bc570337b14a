/* SPDX-License-Identifier: BSD-3-Clause */
/* Redis Sentinel: which server is the master now. The pool asks here
   before it connects, the listener watches +switch-master through
   tc__sentinel_watch, and anyone who finds the master gone (a refused
   connection, a READONLY reply) asks the sentinels again. */
#ifndef TC_SENTINEL_H
#define TC_SENTINEL_H

#include "topo.h"

typedef struct tc__sentinel tc__sentinel;
struct redisContext;

/* Asks the sentinels once (a master not found is not an error: the pool
   and the listener ask again). TC_OK or TC_ENOMEM. */
int tc__sentinel_create(tc__sentinel **out, const tc_options *o,
                        const tc__topo *t, const tc__logger *lg);
void tc__sentinel_destroy(tc__sentinel *s); /* NULL-safe */

/* The master as last found, in *out, and its generation: 0 while none is
   known, and one more each time the master changes. */
uint64_t tc__sentinel_master(tc__sentinel *s, tc__addr *out);
/* The generation alone, without a lock (the read path asks). */
uint64_t tc__sentinel_gen(tc__sentinel *s);
/* Asks the sentinels again, unless another thread is at it or did it less
   than 100 ms ago (force: unless another thread is at it). The master
   each one names counts only once ROLE on it says "master". Returns the
   generation then. */
uint64_t tc__sentinel_refresh(tc__sentinel *s, int force);
/* Why no master is known, for tc_health (empty once one is). */
void tc__sentinel_error(tc__sentinel *s, char *buf, size_t cap);

/* A connection to one of the sentinels (the next one each time),
   subscribed to +switch-master; NULL with the reason in err. */
struct redisContext *tc__sentinel_watch(tc__sentinel *s, char *err,
                                        size_t cap);
/* Reads what arrived on it (no I/O beyond that read): 1 when our
   master switched (the caller asks again: tc__sentinel_refresh), 0 when
   nothing that matters came, -1 when the connection failed. */
int tc__sentinel_watch_read(tc__sentinel *s, struct redisContext *ctx);

/* fork() */
void tc__sentinel_lock(tc__sentinel *s);
void tc__sentinel_unlock(tc__sentinel *s);
void tc__sentinel_after_fork(tc__sentinel *s);

#endif
