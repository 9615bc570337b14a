/* SPDX-License-Identifier: BSD-3-Clause */
/* Connections to Redis, for the pool (l2.c) and the listener
   (coherence.c): how one is made, how its endpoint is named in log
   lines, and which error replies are refusals (tc_refusal). */
#ifndef TC_CONN_H
#define TC_CONN_H

#include "internal.h"

/* "host:port", "[v6]:port" or the socket path, never credentials. */
void tc__conn_endpoint(const tc_options *o, char *buf, size_t cap);

/* The tc_refusal an error reply to cmd means, TC_REFUSAL_NONE if it is
   not a refusal (OOM, LOADING, ...: a Redis not ready). */
int tc__conn_refusal_of(const char *cmd, const char *err);
/* What to check, for the log line of a refusal of that kind. */
const char *tc__conn_refusal_hint(int kind);

/* A new connection: connected within the connect timeout, authenticated,
   db selected, named tc:<ns>:<pid>:<role> (CLIENT SETNAME: "pool",
   "listener"), with cmd_timeout_ms on every command. NULL with the reason
   in err, and *refusal a tc_refusal when the server refused AUTH or
   SELECT (or CLIENT SETNAME for want of AUTH). */
struct redisContext;
struct tc__addr;
/* a: the node to connect to; NULL: the options' host, port or socket. */
struct redisContext *tc__conn_open(const tc_options *o,
                                   const struct tc__addr *a,
                                   uint32_t cmd_timeout_ms, const char *role,
                                   char *err, size_t cap, int *refusal);
/* A connection to a sentinel: AUTH with password if it is not "", no
   SELECT, no name; the connect timeout on every command. */
struct redisContext *tc__conn_sentinel(const tc_options *o,
                                       const struct tc__addr *a,
                                       const char *password, char *err,
                                       size_t cap, int *refusal);

#endif
