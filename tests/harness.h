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
/* The same with more server arguments, NULL-terminated (at most 16),
   e.g. {"--databases", "2", NULL}; kept for th_redis_restart. */
th_redis *th_redis_start_args(const char *const *extra);

typedef struct th_redis_spec {
    const char *const *extra; /* as th_redis_start_args, or NULL */
    /* The text of a config file the server reads before its arguments,
       or NULL. It is written to the server's directory, writable:
       sentinel mode (extra {"--sentinel", NULL}) rewrites it. */
    const char *conf;
    /* Sent with AUTH on every connection the harness makes to it (the
       readiness PING, th_redis_connect, th_redis_cmd), or NULL. */
    const char *pass;
    /* A cluster node: its bus port (port + 10000) must be free as well.
       Such ports are taken from 12000..21999, below the kernel's
       ephemeral range, so no client's local port takes one. */
    int bus;
} th_redis_spec;
/* The most general start, which the others call. */
th_redis *th_redis_start_spec(const th_redis_spec *spec);

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
/* CLIENT KILL TYPE pubsub on r and, in the same MULTI, SET rkey to a
   tiercache value holding `value` (an envelope without a write version,
   60 s to live): a change no invalidation reports, which a reconnect
   must catch. 0, or -1 if r did not answer as it should. */
int th_kill_links_and_set(const th_redis *r, const char *rkey,
                          const char *value);
/* Prints the end of its log file on stderr: why it failed. */
void th_redis_dump_log(const th_redis *r);
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
/* How most tests open a cache: th_options(r, o), the namespace ns unless
   NULL (else th_options' unique one), tweak(o) unless NULL, then tc_open,
   which must succeed: a failure is said on stderr and is a fatal CUnit
   assertion (call it from the test's thread). tc_close the cache. */
tc_cache *th_open(const th_redis *r, const char *ns,
                  void (*tweak)(tc_options *o));

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

/* ---- Redis Sentinel (harness_dist.c) ----
   Two data nodes (node 0 the master, node 1 its replica) and a group of
   sentinels (redis-server <conf> --sentinel) watching node 0 under a
   name, with quorum 2 (1 for a lone sentinel), down-after-milliseconds
   1000, failover-timeout 3000 and parallel-syncs 1: a killed master is
   replaced in about 2 to 6 s. All th_redis servers, private as above. */
typedef struct th_sentinel th_sentinel;

typedef struct th_sentinel_opts {
    const char *name;     /* the master's name; NULL: "mymaster" */
    const char *password; /* the sentinels' requirepass; NULL: none */
    int sentinels;        /* 1..5; 0: 3 */
} th_sentinel_opts;

/* Starts the data nodes, waits for the replica's sync, starts the
   sentinels and returns once each of them knows the master, the replica
   and every other sentinel and finds the quorum reachable (SENTINEL
   ckquorum): about 2 to 4 s, as sentinels find each other through
   hello messages sent every 2 s. NULL on failure, said on stderr. */
th_sentinel *th_sentinel_start_opts(const th_sentinel_opts *o);
/* 3 sentinels, no password. */
th_sentinel *th_sentinel_start(const char *name);

/* "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3": every sentinel. */
const char *th_sentinel_addrs(const th_sentinel *s);
const char *th_sentinel_name(const th_sentinel *s);
/* Data node 0 (the first master) or 1 (its first replica). */
th_redis *th_sentinel_data(th_sentinel *s, int i);
/* Sentinel i, for raw checks (th_redis_cmd sends its password). */
th_redis *th_sentinel_node(th_sentinel *s, int i);
/* The data node that is the master now: the one the sentinels name if it
   says so (ROLE), else any running node that says so; NULL if none. */
th_redis *th_sentinel_current_master(th_sentinel *s);
/* Waits until every running sentinel names the same master, on a port
   other than old_port, and that node says it is a master (ROLE). Returns
   its port, or -1 after timeout_ms. The time it takes after a kill is
   the failover time. */
int th_sentinel_wait_switch(th_sentinel *s, int old_port, uint32_t timeout_ms);
/* th_options(NULL, o), then the sentinel list, the name and password. The
   strings point into s: keep s until tc_open has returned. */
void th_sentinel_options(const th_sentinel *s, tc_options *o);
/* Stops the sentinels, then the data nodes, and frees it. NULL-safe. */
void th_sentinel_stop(th_sentinel *s);

/* ---- Redis Cluster (harness_dist.c) ----
   `masters` masters with `replicas` replicas each, every node a th_redis
   started with cluster-enabled yes, cluster-node-timeout 1000 and
   cluster-require-full-coverage no (the masters that are up keep serving
   while one is down), its nodes.conf in its own directory. Nodes
   0..masters-1 are the masters at the start, then come the replicas of
   master 0, of master 1, ... A killed master's replica takes over in
   about 2 to 3 s. */
typedef struct th_cluster th_cluster;

/* Starts the nodes and builds the cluster with plain commands, as
   redis-cli --cluster create does (distinct config epochs, even slot
   ranges, MEET, REPLICATE); returns once every node says cluster_state:ok
   with all 16384 slots assigned and ok, knows every node with none in
   handshake or failing, sees each replica under its master, and every
   replica has synced. About 2 to 4 s; NULL on failure (said on stderr).
   At most 16 nodes. */
th_cluster *th_cluster_start(int masters, int replicas);
/* Every node, "127.0.0.1:p,...". */
const char *th_cluster_seeds(const th_cluster *c);
int th_cluster_nodes(const th_cluster *c);
th_redis *th_cluster_node(th_cluster *c, int i);
/* The slot of a Redis key: CRC16-XMODEM of the key, or of its hash tag
   (from the first '{' to the first '}' after it, when not empty),
   & 16383. Of a tiercache key: th_cluster_slot("<ns>:{<key>}", ...). */
unsigned th_cluster_slot(const char *key, size_t len);
/* map[16384]: each slot's master by the first node that answers CLUSTER
   SLOTS (NULL: unassigned). 0, or -1 when no node answers. */
int th_cluster_owners(th_cluster *c, th_redis **map);
/* One slot's master, the same way; NULL if unknown. */
th_redis *th_cluster_owner(th_cluster *c, unsigned slot);
/* Moves a slot and its keys from its master to `to` (a master): SETSLOT
   IMPORTING on `to`, MIGRATING on the owner, then hook(ud) if not NULL
   (a test's load then runs against a slot half moved: ASK replies), then
   GETKEYSINSLOT + MIGRATE in batches of 10 until the owner has none,
   SETSLOT NODE on `to`, the owner and every other master. Returns 0 once
   every running node maps the slot to `to`, else -1 (said on stderr). */
int th_cluster_migrate_hook(th_cluster *c, unsigned slot, th_redis *to,
                            void (*hook)(void *ud), void *ud);
int th_cluster_migrate(th_cluster *c, unsigned slot, th_redis *to);
/* Waits until every running node says cluster_state:ok and maps every
   slot to a running node that says it is a master (after a kill: the
   replica has been promoted). 0, or -1 after timeout_ms. */
int th_cluster_wait_ok(th_cluster *c, uint32_t timeout_ms);
/* th_options(NULL, o), then redis_cluster = every node (a pointer into
   c: keep c until tc_open has returned). */
void th_cluster_options(const th_cluster *c, tc_options *o);
/* Stops every node and frees it. NULL-safe. */
void th_cluster_stop(th_cluster *c);

#endif /* TC_TEST_HARNESS_H */
