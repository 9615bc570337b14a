/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The test harness every CUnit test program links (libtctest.la).
 *
 * - Private redis-server instances: each on a free TCP port on 127.0.0.1
 *   (never 6379) and a unix socket in its own temporary directory, with no
 *   persistence. A server dies with the test process (PR_SET_PDEATHSIG in
 *   the child, and an atexit handler that kills every server still
 *   running), so a crashed or aborted test leaves nothing behind.
 * - Helpers to talk to such a server directly, to point a tc_options at
 *   it, and a one-suite CUnit driver.
 *
 * The registry of servers is thread-safe; a single th_redis must be driven
 * from one thread at a time. Start servers from the main thread: the
 * kernel's parent-death signal fires when the *thread* that forked the
 * server exits, not only the process.
 */
#ifndef TC_TEST_HARNESS_H
#define TC_TEST_HARNESS_H

#include <stdint.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

#include "tiercache.h"

typedef struct th_redis th_redis;

/* Starts a private redis-server and waits (about 5 s at most) until it
   answers PING on TCP. NULL on failure, with a message on stderr. */
th_redis *th_redis_start(void);
/* The same with more server arguments, NULL-terminated (at most 8), e.g.
   {"--databases", "2", NULL}; kept for th_redis_restart. */
th_redis *th_redis_start_args(const char *const *extra);

int th_redis_port(const th_redis *r);
const char *th_redis_socket(const th_redis *r); /* unix socket path */
const char *th_redis_dir(const th_redis *r);    /* its temp directory */
pid_t th_redis_pid(const th_redis *r);          /* 0 when not running */

/* SIGKILL (SIGCONT first if frozen) and reap it. Idempotent. */
void th_redis_kill(th_redis *r);
/* Kills it if running, then starts it again on the same port and socket
   (an empty data set: nothing is persisted) and waits until it answers
   PING, retrying for about 5 s while the port is busy. 0 ok, -1 error. */
int th_redis_restart(th_redis *r);
/* SIGSTOP, and returns once it has stopped: connections still open (the
   kernel accepts them) but nothing is answered. */
void th_redis_freeze(th_redis *r);
void th_redis_thaw(th_redis *r); /* SIGCONT */
/* Kills it, removes its directory and frees it. NULL-safe. */
void th_redis_stop(th_redis *r);

/* A raw hiredis TCP connection with 1 s connect and command timeouts, for
   test checks (redisFree it). NULL on failure. */
redisContext *th_redis_connect(const th_redis *r);
/* Runs one command on a fresh connection. Returns the reply, also a
   REDIS_REPLY_ERROR one (freeReplyObject it), or NULL when the server
   cannot be reached or does not answer within 1 s. */
redisReply *th_redis_cmd(const th_redis *r, const char *fmt, ...);

/* tc_options_init(o), then: TCP to 127.0.0.1 and r's port (no socket, db
   0, no credentials), a namespace unique to this process and call
   ("t<pid>_<n>"), and log_level TC_LOG_ERROR so tests stay quiet.
   r NULL: no host and no socket, i.e. L1-only. */
void th_options(const th_redis *r, tc_options *o);
/* The same over r's unix socket. */
void th_options_unix(const th_redis *r, tc_options *o);

/* tc_get_into as a NUL-terminated string in buf ("" unless TC_OK);
   returns the status. */
int th_get_str(tc_cache *c, const char *key, char *buf, size_t cap);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t th_now_ms(void);

typedef struct {
    const char *name;
    void (*fn)(void);
} th_test;

/* Registers the tests ({NULL, NULL}-terminated) as one suite, runs them in
   verbose basic mode and prints the summary. Returns the exit status for
   main: 0 only if at least one test ran and there was no failed test or
   assertion and no CUnit error; 1 otherwise. */
int th_run(const char *suite, const th_test *tests);

/* The server of th_run_redis, for the tests it runs. */
extern th_redis *th_srv;
/* th_run with one private redis-server started first (th_srv) and
   stopped after; 1 if it cannot start. */
int th_run_redis(const char *suite, const th_test *tests);

#endif /* TC_TEST_HARNESS_H */
