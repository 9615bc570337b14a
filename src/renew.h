/* SPDX-License-Identifier: BSD-3-Clause */
/* Lease renewal: while a computation runs, its lease in Redis is
   extended every lease_ms / 3 by a helper thread of the cache, so that
   lease_ms can be short (a dead holder is taken over in about one lease)
   however long a live computation takes. */
#ifndef TC_RENEW_H
#define TC_RENEW_H

#include "internal.h"

typedef struct tc__renew tc__renew;
typedef struct tc__held tc__held; /* one lease being kept */

/* No thread yet: it starts with the first lease held. TC_OK, TC_ENOMEM. */
int tc__renew_create(tc__renew **out, tc_cache *c);
/* Stops and joins the thread (if this process started it); NULL-safe. */
void tc__renew_destroy(tc__renew *r);

/* Keeps the lease of key held by token alive until tc__renew_drop. NULL
   when memory or a thread cannot be had: the lease then lives lease_ms,
   as it did before renewal existed. */
tc__held *tc__renew_hold(tc__renew *r, const char *key, size_t klen,
                         const char *token);
/* Stops renewing it; NULL-safe. */
void tc__renew_drop(tc__renew *r, tc__held *h);

/* fork(): the lock for the atfork handlers; in the child, forget the
   parent's thread and its leases (their computations are not here). */
void tc__renew_lock(tc__renew *r);
void tc__renew_unlock(tc__renew *r);
void tc__renew_after_fork(tc__renew *r);

#endif
