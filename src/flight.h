/* SPDX-License-Identifier: BSD-3-Clause */
/* flight.c: single-flight, one computation of a key at a time in this
   process. */
#ifndef TC_FLIGHT_H
#define TC_FLIGHT_H

#include "internal.h"

typedef struct tc__flights tc__flights;
typedef struct tc__flight tc__flight;

int tc__flights_create(tc__flights **out);
void tc__flights_destroy(tc__flights *t); /* NULL-safe */
/* Joins the computation of key: 1 = the caller leads (compute, then
   tc__flight_land), 0 = it waits (tc__flight_wait), -1 = no memory. */
int tc__flight_join(tc__flights *t, const char *key, size_t klen,
                    tc__flight **out);
/* Leads only if no one else does: 1 = leads, 0 = someone does. */
int tc__flight_try_lead(tc__flights *t, const char *key, size_t klen,
                        tc__flight **out);
/* The leader's result (rc, v: v gets its own reference) to the waiters. */
void tc__flight_land(tc__flights *t, tc__flight *f, int rc, tc_value *v);
/* Waits at most wait_ms: the leader's rc and a new reference to its
   value, or TC_ETIMEOUT. Either way the caller is done with f. */
int tc__flight_wait(tc__flights *t, tc__flight *f, uint32_t wait_ms,
                    tc_value **out);
/* Invalidations: later callers start a computation of their own instead
   of joining one that may have read the source before the change; its
   waiters already there retry (the lost lease lands TC_MISS). */
void tc__flight_detach(tc__flights *t, const char *key, size_t klen);
void tc__flight_detach_prefix(tc__flights *t, const char *prefix, size_t plen);
void tc__flights_lock(tc__flights *t);
void tc__flights_unlock(tc__flights *t);
void tc__flights_after_fork(tc__flights *t);

#endif
