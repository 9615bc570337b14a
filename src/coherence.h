/* SPDX-License-Identifier: BSD-3-Clause */
/* Coherence: the invalidation listener (one thread, one connection of its
   own) and the queue of invalidations that could not reach Redis. */
#ifndef TC_COHERENCE_H
#define TC_COHERENCE_H

#include "internal.h"

typedef struct tc__coh tc__coh;

/* The listener of c, not started: a process that never uses its cache
   (the parent of a prefork service) keeps no thread and no connection
   for it. TC_OK or TC_ENOMEM. */
int tc__coh_create(tc__coh **out, tc_cache *c);
/* Starts the listener if it is not (the caller serializes: fork_mu).
   TC_OK or TC_ENOMEM. */
int tc__coh_start(tc__coh *h);
/* 1 once tc__coh_start has launched it. */
int tc__coh_started(const tc__coh *h);
/* Waits (bounded) for its first attempt to subscribe, so that the call
   that started it finds the cache coherent against a healthy Redis. */
void tc__coh_wait(tc__coh *h);
/* Stops and joins the listener; NULL-safe. */
void tc__coh_stop(tc__coh *h);

/* 1 while subscribed: every change to a namespace key made from now on
   reaches this process's L1. */
int tc__coh_ok(const tc__coh *h);

/* Asks the listener, without waiting, to replay the queue now
   (TC__KICK_REPLAY), or to PING its links now because a command on the
   pool timed out (TC__KICK_PROBE): a server that froze is then declared
   lost one PING interval later. */
enum { TC__KICK_REPLAY = 1, TC__KICK_PROBE = 2 };
void tc__coh_kick(tc__coh *h, int what);

/* While the link is down: why, into out's last_error (unless the pool
   has an error of its own to show) and l2_refused (a refusal, such as
   an ACL without the channels, unless the pool has one). */
void tc__coh_health(tc__coh *h, tc_health_info *out);

/* fork(): the prepare handler takes the listener's lock, the parent's and
   the child's release it; in the child, tc__coh_after_fork forgets the
   parent's thread and connection (without writing to it) and starts a
   listener of its own, which the caller waits for (tc__coh_wait) with no
   lock held. TC_OK or TC_ENOMEM. */
void tc__coh_lock(tc__coh *h);
void tc__coh_unlock(tc__coh *h);
int tc__coh_after_fork(tc__coh *h);
/* In a child that closes the handle before any other call: forget the
   parent's thread and connection without touching them. */
void tc__coh_abandon(tc__coh *h);

#endif
