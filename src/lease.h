/* SPDX-License-Identifier: BSD-3-Clause */
/* lease.c: leases across processes, and the scripts that keep them. */
#ifndef TC_LEASE_H
#define TC_LEASE_H

#include "handle.h"

extern const char tc__store_script[], tc__store_sha[];
extern const char tc__release_script[], tc__release_sha[];
extern const char tc__extend_script[], tc__extend_sha[];
/* SET <lease> token NX PX lease_ms: TC_OK taken, TC_MISS held by another,
   TC_EBACKEND. */
int tc__lease_take(tc_cache *c, const char *key, size_t klen,
                   const char *token);
/* Stores v for ttl_ms if token still holds the lease (and drops the
   lease): TC_OK stored, TC_MISS lease lost, TC_EBACKEND, TC_ENOMEM. */
int tc__lease_store(tc_cache *c, const char *key, size_t klen,
                    const char *token, const tc_value *v, uint32_t ttl_ms);
/* Extends the lease to lease_ms from now if token still holds it:
   TC_OK extended, TC_MISS lost, TC_EBACKEND. */
int tc__lease_extend(tc_cache *c, const char *key, size_t klen,
                     const char *token);
/* Drops the lease if token still holds it. */
int tc__lease_release(tc_cache *c, const char *key, size_t klen,
                      const char *token);

#endif
