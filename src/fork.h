/* SPDX-License-Identifier: BSD-3-Clause */
/* fork.c: the atfork handlers and a child's rebuild (docs/architecture.md
   section 7). */
#ifndef TC_FORK_H
#define TC_FORK_H

#include "handle.h"

void tc__fork_register(tc_cache *c);
void tc__fork_unregister(tc_cache *c);
/* In a child, the first call on c: drop what belongs to the parent. */
int tc__fork_rebuild(tc_cache *c);

#endif
