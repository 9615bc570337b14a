/* SPDX-License-Identifier: BSD-3-Clause */
/* Random 64-bit numbers for lease tokens, generation tokens, TTL jitter
   and early-refresh draws: a per-thread xorshift64* seeded from the
   kernel (getrandom), seeded again in a forked child so that workers of
   one parent do not draw the same tokens. */
#include <sys/random.h>

#include "internal.h"

static _Thread_local uint64_t state;
static _Thread_local unsigned seeded_gen = ~0u;

static void seed(void)
{
    uint64_t s = 0;
    if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
        s = tc__wall_ms() ^ ((uint64_t)(uintptr_t)&state << 16);
    state = s ? s : 0x9E3779B97F4A7C15ULL;
    seeded_gen = tc__forkgen();
}

uint64_t tc__rand64(void)
{
    if (seeded_gen != tc__forkgen())
        seed();
    uint64_t x = state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t tc__backoff_ms(uint32_t attempt, uint32_t cap_ms)
{
    uint64_t ceil = (uint64_t)TC__BACKOFF_BASE_MS
                    << (attempt < 16 ? attempt : 16);
    if (ceil > cap_ms)
        ceil = cap_ms;
    return tc__rand64() % (ceil + 1);
}
