/* SPDX-License-Identifier: BSD-3-Clause */
/* Clocks: monotonic for the L1 and timeouts, wall for expiry in Redis
   (which other processes and hosts read). */
#include <pthread.h>
#include <time.h>

#include "internal.h"

static uint64_t ms_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The coarse clock: every L1 lookup reads it, and the precise one cost a
   fifth of a hit (tc-bench l1, perf). Its tick (4 ms on Linux here) is
   far below any TTL or timeout we keep. */
uint64_t tc__mono_ms(void)
{
    return ms_of(CLOCK_MONOTONIC_COARSE);
}

uint64_t tc__wall_ms(void)
{
    return ms_of(CLOCK_REALTIME);
}

/* Precise, unlike tc__mono_ms: a Redis round trip is well under its tick. */
uint64_t tc__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void tc__cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

struct timespec tc__deadline_ms(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + ms * 1000000ULL;
    ts.tv_sec += (time_t)(ns / 1000000000ULL);
    ts.tv_nsec = (long)(ns % 1000000000ULL);
    return ts;
}
