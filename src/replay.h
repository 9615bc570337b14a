/* SPDX-License-Identifier: BSD-3-Clause */
/* replay.c: the queue of invalidations that did not reach Redis. */
#ifndef TC_REPLAY_H
#define TC_REPLAY_H

#include "handle.h"

/* per_slot: a cluster's queue, whose items hold back reads of their slot
   only (tc__replay_gate). */
int tc__replay_create(tc__replay **out, size_t max, int per_slot);
void tc__replay_destroy(tc__replay *q); /* NULL-safe */
/* Queues an invalidation that did not reach Redis. */
void tc__replay_push(tc_cache *c, uint32_t kind, const char *arg, size_t len);
/* Replays the queue if there is one, on this thread, however long it
   takes (the listener's way). TC_OK: nothing is pending, Redis may be
   read; TC_EBACKEND: something still is (Redis away, or another thread
   is replaying). */
int tc__replay_run(tc_cache *c);
/* Has the queue replayed soon, waiting for nothing: the listener is
   asked to; without one, this thread replays for at most one command
   timeout. For a write, which need not wait. */
void tc__replay_nudge(tc_cache *c);
/* For a call about to read key from Redis: has the queue replayed (by
   the listener if there is one) and waits for that, at most one command
   timeout. TC_OK when it may go to Redis. On a cluster that is also when
   nothing queued is for key's slot and no prefix delete, flush or overflow is
   queued. */
int tc__replay_gate(tc_cache *c, const char *key, size_t klen);
/* tc__replay_gate of n keys with one wait: rcs[i] gets keys[i]'s. */
void tc__replay_gate_many(tc_cache *c, const char *const *keys,
                          const size_t *klens, size_t n, int *rcs);
/* 1 while anything is queued or being replayed. */
int tc__replay_pending(const tc_cache *c);
void tc__replay_lock(tc__replay *q);
void tc__replay_unlock(tc__replay *q);
void tc__replay_after_fork(tc__replay *q);

#endif
