/* The cache handle, shared by cache.c (operations) and stats.c. */
#ifndef TC_CACHE_H
#define TC_CACHE_H

#include "internal.h"
#include "l1.h"
#include "l2.h"

struct tc_cache {
    tc_options opt; /* a copy, fixed after tc_open */
    tc__logger lg;
    tc__l1 *l1;
    tc__l2 *l2; /* NULL: L1-only */
    tc__counters ctr;
};

#endif
