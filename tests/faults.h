/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fault suite's engine (libtctest), run by tests/test_faults.c and by
 * tc-bench's faults scenario, so that both measure with the same code.
 *
 * One phase per fault, each on a private redis-server of its own:
 *
 *   1. fork `procs` processes; each opens a cache on one namespace and
 *      runs `threads` load threads, its main thread watching the cache;
 *   2. steady load for steady_ms, then the fault, held hold_ms (one that
 *      is over at once, a CLIENT KILL or a FLUSHALL, is repeated every
 *      repeat_ms meanwhile), then healed; wait until every process has
 *      recovered (below; at most recover_max_ms), load after_ms more,
 *      stop;
 *   3. check the operation logs (history.h) with the staleness bound.
 *
 * The load: each key has one writer thread, which writes one of its
 * keys about every write_ms (tc_set of the key's next number, every tenth
 * a tc_del); the rest of the time a thread reads any key (tc_get), and
 * one op in 16 is a tc_fetch of a key of a separate set. A computed value
 * carries no writer's number, so it cannot be ordered against the sets:
 * those keys' values never change (the compute returns one fixed value
 * per key, which a tc_del drops now and then) and a fetch is checked only
 * for its status and its bytes.
 *
 * Recovery of a process: the first moment after the heal from which, for
 * TF_QUIET_MS, every sample of its main thread (every 5 ms) finds the
 * link up (tc_stats coherent), the last Redis call successful with the
 * breaker closed (tc_health), and no call served without Redis
 * (degraded_ops unchanged), provided Redis has answered one of its GETs
 * since the heal. The phase's recovery time is the last process's, from
 * the heal.
 *
 * Stale reads: a read that returned an older value than the newest write
 * of its key acknowledged more than the bound before the read began
 * (th_hist_check). "During" counts the reads begun from the injection to
 * the recovery; "after", those begun after the recovery; reads before
 * the injection are counted apart (steady state). Worst staleness: how
 * long before a read began the value it returned had been replaced by
 * an acknowledged write, the largest over the phase, bound or not.
 */
#ifndef TC_TEST_FAULTS_H
#define TC_TEST_FAULTS_H

#include <stdint.h>
#include <stdio.h>

#define TF_MAX_PROCS 8
#define TF_MAX_THREADS 16
#define TF_QUIET_MS 20
/* Statuses counted for failed ops: TC_EREFUSED (-8) .. TC_ABSENT (2). */
#define TF_RC_MIN (-8)
#define TF_RC_N 11

typedef enum {
    TF_KILL,        /* SIGKILL, restarted empty after the hold */
    TF_KILL_AOF,    /* SIGKILL, restarted from its AOF (fsync always) */
    TF_FREEZE,      /* SIGSTOP, SIGCONT after the hold */
    TF_PAUSE,       /* CLIENT PAUSE <hold> ALL */
    TF_KILL_NORMAL, /* CLIENT KILL TYPE normal, repeated */
    TF_KILL_PUBSUB, /* CLIENT KILL TYPE pubsub, repeated */
    TF_MAXMEMORY,   /* filled to maxmemory, noeviction: writes get OOM */
    TF_FLUSHALL,    /* FLUSHALL, repeated */
    TF_NFAULTS
} tf_kind;

typedef struct tf_fault {
    const char *name;
    const char *what;
    int aof;           /* the server runs with appendonly yes, fsync always */
    int repeat_ms;     /* over at once: injected again this often while held */
    int asserts_stale; /* TF_ASSERT_*: what the test holds the library to */

} tf_fault;

/* TF_ASSERT_ALL: no read staler than the bound during or after the
   fault. TF_ASSERT_LATE: none once Redis has answered again for longer
   than the allowance (TF_LATE_SLACK_MS plus one listener_ping_ms: the
   writers' listeners replay their queues that soon), and none after the
   recovery; during the outage and the allowance, another process may
   read what Redis held before a write acknowledged while it was away. */
enum { TF_ASSERT_NONE, TF_ASSERT_ALL, TF_ASSERT_LATE };
#define TF_LATE_SLACK_MS 250

extern const tf_fault tf_faults[TF_NFAULTS];
/* The fault of that name, or -1. */
int tf_find(const char *name);

typedef struct tf_config {
    int procs, threads;
    uint32_t keys_per_thread;
    uint32_t write_ms; /* a thread writes one of its keys about this often */
    uint32_t pause_us; /* a thread sleeps up to this long between ops */
    uint32_t steady_ms, hold_ms, recover_max_ms, after_ms;
    /* the caches' options */
    uint32_t connect_timeout_ms, command_timeout_ms;
    uint32_t listener_ping_ms, degraded_l1_ttl_ms, lease_ms;
    /* The staleness bound; 0: the documented one (docs/operations.md),
       2 x listener_ping_ms + degraded_l1_ttl_ms. */
    uint32_t stale_ms;
    uint32_t hang_ms; /* an op slower than this is a hang */
    int quiet;        /* 1: no violation details on stderr */
} tf_config;

/* 1 under valgrind (RUNNING_ON_VALGRIND, when configure found its
   header), 2 under a sanitizer, else 0. */
int tf_slow_build(void);
/* The short suite for this build: 2 processes x 4 threads (2 x 2 under
   valgrind), holds of 1 s, the library's timeouts but a 250 ms ping and
   degraded lifetime (so the bound, 750 ms, is reached within a short
   hold); scaled up under valgrind and the sanitizers. TC_FAULT_SECONDS=N
   in the environment holds each fault N s instead (the long suite). */
void tf_config_init(tf_config *c);
uint32_t tf_bound_ms(const tf_config *c);

typedef struct tf_result {
    const char *fault;
    int ran;          /* 0: the phase could not run (said on stderr) */
    int children_ok;  /* every process exited 0 */
    long ops, failed; /* attempted; not returning what the docs promise */
    long kind_ops[4], kind_failed[4]; /* get, set, del, fetch */
    long failed_rc[TF_RC_N];          /* by status, index rc - TF_RC_MIN */
    long degraded;    /* calls served without Redis (tc_stats), all
                         processes: that the fault was felt */
    long link_losses; /* times a process's invalidation link went down */
    double slowest_ms;
    uint32_t command_timeout_ms;
    long fault_ms;      /* injection -> heal */
    long redis_back_ms; /* heal -> Redis answers PING */
    long recovery_ms;   /* heal -> every process recovered; -1: not
                           within recover_max_ms */
    uint32_t bound_ms;
    long reads_before, stale_before;
    long reads_during, stale_during;
    long reads_after, stale_after;
    long stale_late; /* stale reads begun after Redis was back for more
                        than the allowance (TF_ASSERT_LATE) */
    long lost_after; /* misses after recovery of a value a set had stored */
    double worst_stale_ms;
    long broken; /* logs whose numbering is wrong: a bug of the suite */
} tf_result;

/* Runs one fault's phase. 0, or -1 if it could not run (out->ran 0).
   Call it from a process with no other thread (it forks), from the
   thread that started no server yet (th_redis's parent-death signal). */
int tf_run(const tf_config *c, int fault, tf_result *out);

/* The replay of a queue of n deletes, on its own: a server with AOF
   holds n keys; it is killed; tc_del queues n deletes; it restarts with
   the keys back; the queue is replayed on this thread (no listener, the
   breaker told the server answers, as the listener does). */
typedef struct tf_replay_result {
    long n;
    double queue_ms;       /* the n tc_del calls while the server was away */
    double replay_ms;      /* tc__replay_run, all of it */
    double raw_ms;         /* the floor: n "DEL k k:lease", pipelined, raw */
    long replayed;         /* replay_done counted */
    long left;             /* of the n keys, still in Redis after the replay */
    double slowest_del_ms; /* the slowest tc_del while queueing */
} tf_replay_result;
int tf_replay(long n, tf_replay_result *out);

/* The table: a header and one line per fault. */
void tf_print_header(FILE *f);
void tf_print_row(FILE *f, const tf_result *r);

#endif /* TC_TEST_FAULTS_H */
