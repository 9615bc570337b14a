/* SPDX-License-Identifier: BSD-3-Clause */
/* The one allocation wrapper: tests fail the Nth allocation through it. */
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

/* < 0: never fail. Otherwise the number of allocations still allowed. */
static atomic_long fail_countdown = -1;
/* Allocations failed since the last tc__alloc_fail_after/_once. */
static atomic_long failed;
/* Set: only one allocation fails, then the countdown is off again. */
static atomic_int once;

void tc__alloc_fail_after(long n)
{
    atomic_store(&failed, 0);
    atomic_store(&once, 0);
    atomic_store(&fail_countdown, n);
}

void tc__alloc_fail_once(long n)
{
    atomic_store(&failed, 0);
    atomic_store(&once, 1);
    atomic_store(&fail_countdown, n);
}

long tc__alloc_failures(void)
{
    return atomic_load(&failed);
}

static int should_fail(void)
{
    long left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (left >= 0) {
        if (left == 0) {
            /* once: only the thread that turns the countdown off fails */
            if (atomic_load(&once) &&
                !atomic_compare_exchange_weak(&fail_countdown, &left, -1))
                continue;
            atomic_fetch_add_explicit(&failed, 1, memory_order_relaxed);
            return 1;
        }
        if (atomic_compare_exchange_weak(&fail_countdown, &left, left - 1))
            return 0;
    }
    return 0;
}

void *tc__malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *tc__calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void tc__free(void *p)
{
    free(p);
}
