/* SPDX-License-Identifier: BSD-3-Clause */
/* The fork generation: how many times this process's line forked. The
   child atfork handler (fork.c) bumps it; anything that must not carry
   state into a child (a cache handle, rand.c's per-thread seed) keeps
   the generation it was made for and compares. It lives down here so
   that the foundation can read it without knowing of caches. */
#include "internal.h"

static atomic_uint generation;

unsigned tc__forkgen(void)
{
    return atomic_load_explicit(&generation, memory_order_relaxed);
}

void tc__forkgen_bump(void)
{
    atomic_fetch_add(&generation, 1);
}
