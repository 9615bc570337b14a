/* SPDX-License-Identifier: BSD-3-Clause */
/* Where the servers are: one Redis (host/port or socket), a Sentinel
   deployment (the sentinels and the master's name) or a Cluster (seed
   nodes), parsed once from the options by tc_open. */
#ifndef TC_TOPO_H
#define TC_TOPO_H

#include "internal.h"

/* One TCP endpoint; host "" with a socket path in the options means the
   options' own endpoint (conn.c). */
typedef struct tc__addr {
    char host[TC_HOST_MAX];
    int port;
} tc__addr;

enum { TC__TOPO_SINGLE = 0, TC__TOPO_SENTINEL = 1, TC__TOPO_CLUSTER = 2 };

typedef struct tc__topo {
    int kind;
    tc__addr nodes[TC_NODES_MAX]; /* sentinels, or cluster seeds */
    size_t n;
    char master[TC_NS_MAX]; /* Sentinel: the master's name */
    char sentinel_password[TC_CRED_MAX];
} tc__topo;

/* Parses "host:port[,host:port...]" ("[v6]:port" for IPv6) into out.
   TC_OK, or TC_EINVAL with the reason in err. */
int tc__addr_list(const char *s, tc__addr *out, size_t max, size_t *n,
                  char *err, size_t cap);
/* The topology the options describe; TC_EINVAL with the reason (naming
   the field) in err. */
int tc__topo_of(const tc_options *o, tc__topo *t, char *err, size_t cap);
/* "host:port" or "[v6]:port" for log lines. */
void tc__addr_str(const tc__addr *a, char *buf, size_t cap);
int tc__addr_eq(const tc__addr *a, const tc__addr *b);

#endif
