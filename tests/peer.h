/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A peer: a forked child process with a tc_cache of its own, driven over
 * a pair of pipes, one command line down and one reply line up. It is
 * another process of the application, so a test can check what one
 * process's write does to another process's L1 (coherence) without a
 * second program.
 *
 * Commands (one letter, then up to two words of at most 255 bytes):
 *   G key        a read: "V <value>", or "M" for a miss
 *   W key want|- th_wait_value until key reads as want ("-": a miss):
 *                the time it took (>= 0), or -1 past the bound
 *   S key val    tc_set, no TTL: its status
 *   D key        tc_del: its status
 *   H key        th_warm: 1 once a read is served by the L1, else 0
 *   Q            the child closes its cache and exits 0
 * Any other letter goes to the program's extra hook, if any; one that
 * nobody knows ends the child as Q does, and the parent reads "".
 *
 * Fork a peer before this process starts a thread (opening a cache
 * starts some): only the forking thread lives on in the child, and a
 * lock another thread held stays held there for good.
 */
#ifndef TC_TEST_PEER_H
#define TC_TEST_PEER_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tiercache.h"

/* Polls c until key reads as want (NULL: a miss), every millisecond.
   Returns the time it took in ms, or -1 past bound_ms. */
long th_wait_value(tc_cache *c, const char *key, const char *want,
                   uint32_t bound_ms);

/* Reads key until a read is served by the L1, at most 200 reads a
   millisecond apart: an invalidation of the write that was just read may
   drop the first fill, which is harmless but makes "warm" take a second
   read. 1 when warm, else 0. */
int th_warm(tc_cache *c, const char *key);

typedef struct th_peer_conf {
    /* Opens the child's cache, in the child; NULL: the child exits 3. */
    tc_cache *(*open)(void *ud);
    /* W's bound, for th_wait_value (the reply is then in ms) ... */
    uint32_t wait_ms;
    /* ... or, if not NULL, W's own wait instead: the same contract, any
       unit (test_coherence times the peer's lag in microseconds). */
    long (*wait)(tc_cache *c, const char *key, const char *want);
    /* The commands only one program has, or NULL. a and b are the words
       after the letter ("" when absent). Writes one reply line to out
       and returns 1, or returns 0 for a command it does not know. */
    int (*extra)(tc_cache *c, char cmd, const char *a, const char *b,
                 FILE *out, void *ud);
    void *ud; /* passed to open and extra, in the child */
} th_peer_conf;

typedef struct th_peer {
    pid_t pid;
    FILE *to, *from; /* the parent's ends of the pipes */
    char reply[512]; /* the last reply line, without its newline */
} th_peer;

/* Forks the child, which opens its cache with conf->open and serves
   commands until Q or EOF. 0, or -1 if the pipes or the fork fail. */
int th_peer_start(th_peer *p, const th_peer_conf *conf);

/* Sends one command line (printf format, the newline added). */
void th_peer_send(th_peer *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The next reply line (p->reply), "" if the peer is gone: a command
   that runs long (a load) is sent, and its reply read, apart. */
const char *th_peer_recv(th_peer *p);
/* th_peer_send, then th_peer_recv. The reply lives in p until the
   next one. */
const char *th_peer_ask(th_peer *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sends Q, closes the pipes and reaps the child. Its exit status (0 for
   a clean exit, 3 if its cache did not open), or 99 if a signal killed
   it (said on stderr). A dead peer fails its test, not the run: a
   program with peers ignores SIGPIPE. */
int th_peer_stop(th_peer *p);

#endif /* TC_TEST_PEER_H */
