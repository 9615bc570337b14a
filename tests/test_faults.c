/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The fault table (tests/faults.h): two processes of four threads mix
 * tc_get, tc_set, tc_del and tc_fetch on one namespace while Redis is
 * killed (restarted empty, or from its AOF), frozen, paused, has its
 * clients killed, is filled to maxmemory or flushed. One test per fault;
 * each prints its line of the table, and the whole table is printed at
 * the end. Asserted for every fault: no crash or hang of a process, no
 * op slower than hang_ms (20 x command_timeout_ms), no failed op (outside
 * strict mode reads return TC_OK or TC_MISS and writes TC_OK whatever
 * Redis does), every process recovered within recover_max_ms, no stale
 * read before the fault; and no read staler than the documented bound
 * during or after it where the library promises that (tf_fault's
 * asserts_stale).
 *
 * Short by default (about 30 s). TC_FAULT_SECONDS=N holds each fault N s
 * (`make check-faults`: 10); TC_FAULTS=kill,freeze runs only those.
 * Under valgrind: 2 x 2 threads, longer timeouts, and only the faults of
 * VALGRIND_FAULTS.
 */
#include <CUnit/CUnit.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults.h"
#include "harness.h"

/* Under valgrind every process runs its threads one at a time: a few
   faults of each kind (an outage, a silent server, a dropped link, a
   refusal) rather than all. */
static const char *const valgrind_faults[] = {"kill", "pause", "kill_pubsub",
                                              "maxmemory", NULL};

static tf_config cfg;
static tf_result results[TF_NFAULTS];
static int selected[TF_NFAULTS];

static void run_one(int f)
{
    tf_result *r = &results[f];

    if (!selected[f]) {
        fprintf(stderr, "  not selected: skipped\n");
        return;
    }
    tf_run(&cfg, f, r);
    tf_print_header(stderr);
    tf_print_row(stderr, r);
    CU_ASSERT(r->ran);
    if (!r->ran)
        return;
    CU_ASSERT(r->children_ok);
    CU_ASSERT_EQUAL(r->failed, 0);
    CU_ASSERT(r->slowest_ms < (double)cfg.hang_ms);
    CU_ASSERT(r->recovery_ms >= 0);
    CU_ASSERT_EQUAL(r->broken, 0);
    CU_ASSERT_EQUAL(r->stale_before, 0);
    CU_ASSERT(r->kind_ops[0] > 0 && r->kind_ops[1] > 0 && r->kind_ops[3] > 0);
    /* The checks saw reads to check. Under valgrind a pause can hold
       every thread's call for the whole fault (1 s command timeouts):
       no read begins in it, and the window is empty. */
    CU_ASSERT(r->reads_after > 0);
    if (tf_slow_build() != 1)
        CU_ASSERT(r->reads_during > 0);
    if (tf_faults[f].asserts_stale == TF_ASSERT_ALL)
        CU_ASSERT_EQUAL(r->stale_during, 0);
    if (tf_faults[f].asserts_stale != TF_ASSERT_NONE) {
        CU_ASSERT_EQUAL(r->stale_late, 0);
        CU_ASSERT_EQUAL(r->stale_after, 0);
    }
}

#define FAULT_TEST(kind, fn)                                                  \
    static void fn(void)                                                      \
    {                                                                         \
        run_one(kind);                                                        \
    }
FAULT_TEST(TF_KILL, test_kill)
FAULT_TEST(TF_KILL_AOF, test_kill_aof)
FAULT_TEST(TF_FREEZE, test_freeze)
FAULT_TEST(TF_PAUSE, test_pause)
FAULT_TEST(TF_KILL_NORMAL, test_kill_normal)
FAULT_TEST(TF_KILL_PUBSUB, test_kill_pubsub)
FAULT_TEST(TF_MAXMEMORY, test_maxmemory)
FAULT_TEST(TF_FLUSHALL, test_flushall)

/* A queue of 10,000 deletes (1,000 under valgrind) replays whole when
   the server is back, every key gone, and no tc_del waited on the
   server while it was away. The times are figures, not assertions
   (tc-bench faults prints them beside a raw pipelined DEL); the bounds
   here only catch a hang. */
static void test_replay(void)
{
    long n = tf_slow_build() == 1 ? 1000 : 10000;
    tf_replay_result r;
    CU_ASSERT_EQUAL_FATAL(tf_replay(n, &r), 0);
    fprintf(stderr,
            "\n  replay of %ld queued deletes: %.1f ms (raw pipelined DEL "
            "%.1f ms); queueing them took %.1f ms, slowest tc_del %.2f ms\n",
            r.n, r.replay_ms, r.raw_ms, r.queue_ms, r.slowest_del_ms);
    CU_ASSERT_EQUAL(r.replayed, n);
    CU_ASSERT_EQUAL(r.left, 0);
    CU_ASSERT(r.slowest_del_ms < (double)cfg.hang_ms);
    CU_ASSERT(r.replay_ms < 30000.0);
}

/* Which faults run: TC_FAULTS (comma-separated names), else all, or
   valgrind's few. 0, or -1 for an unknown name. */
static int select_faults(void)
{
    const char *env = getenv("TC_FAULTS");
    char buf[256], *save = NULL;

    if (!env || !*env) {
        for (int f = 0; f < TF_NFAULTS; f++)
            selected[f] = tf_slow_build() != 1;
        for (int i = 0; tf_slow_build() == 1 && valgrind_faults[i]; i++)
            selected[tf_find(valgrind_faults[i])] = 1;
        return 0;
    }
    snprintf(buf, sizeof buf, "%s", env);
    for (char *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        int f = tf_find(t);
        if (f < 0) {
            fprintf(stderr, "TC_FAULTS: no fault named \"%s\"\n", t);
            return -1;
        }
        selected[f] = 1;
    }
    return 0;
}

int main(void)
{
    static const th_test tests[] = {
        {"kill", test_kill},
        {"kill_aof", test_kill_aof},
        {"freeze", test_freeze},
        {"pause", test_pause},
        {"kill_normal", test_kill_normal},
        {"kill_pubsub", test_kill_pubsub},
        {"maxmemory", test_maxmemory},
        {"flushall", test_flushall},
        {"replay", test_replay},
        {NULL, NULL},
    };
    signal(SIGPIPE, SIG_IGN);
    tf_config_init(&cfg);
    if (select_faults() != 0)
        return 1;
    fprintf(stderr,
            "faults: %d processes x %d threads, hold %u ms, command timeout "
            "%u ms, ping %u ms, degraded L1 %u ms: bound %u ms\n",
            cfg.procs, cfg.threads, cfg.hold_ms, cfg.command_timeout_ms,
            cfg.listener_ping_ms, cfg.degraded_l1_ttl_ms, tf_bound_ms(&cfg));
    int rc = th_run("faults", tests);
    printf("\n");
    tf_print_header(stdout);
    for (int f = 0; f < TF_NFAULTS; f++)
        if (selected[f])
            tf_print_row(stdout, &results[f]);
    for (int f = 0; f < TF_NFAULTS; f++)
        if (selected[f] && tf_faults[f].asserts_stale == TF_ASSERT_LATE)
            printf("%s: stale_in is allowed until Redis has been back one "
                   "PING interval + %d ms; stale_lt (later) must be 0 (see "
                   "tests/faults.c)\n",
                   tf_faults[f].name, TF_LATE_SLACK_MS);
    return rc;
}
