/* SPDX-License-Identifier: BSD-3-Clause */
/* tc__hash: the 64-bit hash of a key that picks its L1 shard and uthash
   bucket; the listener hashes the keys it hears about the same way. */
#include <xxhash.h>

#include "internal.h"

uint64_t tc__hash(const void *key, size_t len)
{
    return XXH3_64bits(key, len);
}
