/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * faults: the fault table of tests/faults.h, with the same engine as
 * tests/test_faults (2 processes x 4 threads of get/set/del/fetch, one
 * private redis-server per fault), each figure beside a floor:
 *
 *   <fault>_failed_ops     ops that did not return what the docs promise
 *                          outside strict mode; floor: ops attempted
 *   <fault>_slowest_op_us  the slowest op; floor: command_timeout_ms
 *   <fault>_recovery_s     from the injection until every process has
 *                          recovered (faults.h); floor: from the
 *                          injection until Redis answers PING again
 *   <fault>_stale_during   reads staler than the documented bound, from
 *   <fault>_stale_after    the injection to the recovery / after it;
 *                          floor: the reads checked in that window
 *   <fault>_worst_stale_s  the worst staleness seen, bound or not;
 *                          floor: the bound
 *   replay_queue_us        10,000 deletes queued while Redis was away,
 *                          replayed (tests/faults.h, tf_replay); floor:
 *                          the same DELs sent raw, pipelined
 *   replay_queue_slowest_del_us  the slowest of those tc_del calls;
 *                          floor: command_timeout_ms
 *
 * Every row also goes to bench/results/faults.csv with the rest of the
 * figures (degraded calls, Redis's own time back, link losses).
 */
#include <string.h>

#include "bench.h"
#include "faults.h"

static void sizes(const bench_cfg *cfg, tf_config *c)
{
    tf_config_init(c);
    c->quiet = 1;
    if (cfg->smoke) {
        c->threads = 2;
        c->steady_ms = 200;
        c->hold_ms = 300;
        c->after_ms = 300;
        c->recover_max_ms = 3000;
    } else if (!cfg->quick) {
        c->steady_ms = 1000;
        c->hold_ms = 2000;
        c->after_ms = 1500;
    }
}

static void rows(const tf_result *r, const tf_config *c)
{
    char m[96];
    double ratio_floor = (double)(r->fault_ms + r->redis_back_ms) / 1000.0;
    long rec = r->recovery_ms >= 0 ? r->recovery_ms : (long)c->recover_max_ms;

    snprintf(m, sizeof m, "%s_failed_ops", r->fault);
    add_row("faults", m, U_COUNT, (double)r->failed, (double)r->ops,
            "ops attempted");
    snprintf(m, sizeof m, "%s_slowest_op_us", r->fault);
    add_row("faults", m, U_USEC, r->slowest_ms * 1000.0,
            (double)r->command_timeout_ms * 1000.0, "command_timeout_ms");
    snprintf(m, sizeof m, "%s_recovery_s", r->fault);
    add_row("faults", m, U_SEC, (double)(r->fault_ms + rec) / 1000.0,
            ratio_floor, "fault to Redis answering again");
    snprintf(m, sizeof m, "%s_stale_during", r->fault);
    add_row("faults", m, U_COUNT, (double)r->stale_during,
            (double)r->reads_during, "reads checked, fault to recovery");
    snprintf(m, sizeof m, "%s_stale_after", r->fault);
    add_row("faults", m, U_COUNT, (double)r->stale_after,
            (double)r->reads_after, "reads checked after recovery");
    snprintf(m, sizeof m, "%s_worst_stale_s", r->fault);
    add_row("faults", m, U_SEC, r->worst_stale_ms / 1000.0,
            (double)r->bound_ms / 1000.0, "documented staleness bound");
    if (r->recovery_ms < 0)
        add_note("faults: %s: not recovered within %u ms (recovery_s "
                 "counts that much)",
                 r->fault, c->recover_max_ms);
}

static void csv_row(FILE *f, const tf_result *r)
{
    fprintf(f,
            "%s,%ld,%ld,%ld,%ld,%.3f,%u,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%.3f,%u\n",
            r->fault, r->ops, r->failed, r->degraded, r->link_losses,
            r->slowest_ms, r->command_timeout_ms, r->fault_ms,
            r->redis_back_ms, r->recovery_ms, r->reads_during, r->stale_during,
            r->reads_after, r->stale_after, r->worst_stale_ms, r->bound_ms);
}

int bench_faults(const bench_cfg *cfg)
{
    tf_config c;
    int failed = 0;

    sizes(cfg, &c);
    progress("faults: %d processes x %d threads, hold %u ms, bound %u ms",
             c.procs, c.threads, c.hold_ms, tf_bound_ms(&c));
    FILE *csv = csv_open(
        "faults", "fault,ops,failed,degraded,link_losses,slowest_ms,"
                  "command_timeout_ms,fault_ms,redis_back_ms,recovery_ms,"
                  "reads_during,stale_during,reads_after,stale_after,"
                  "worst_stale_ms,bound_ms");
    tf_print_header(stderr);
    for (int f = 0; f < TF_NFAULTS; f++) {
        tf_result r;
        if (tf_run(&c, f, &r) != 0 || !r.children_ok) {
            add_note("faults: %s FAILED to run (see above)", r.fault);
            failed = 1;
            if (!r.ran)
                continue;
        }
        tf_print_row(stderr, &r);
        csv_row(csv, &r);
        rows(&r, &c);
    }
    csv_close(csv, "faults");
    /* The replay of a long queue, beside the raw pipelined DELs it sends
       (a round trip per 256 keys either way). */
    tf_replay_result rp;
    long n = cfg->smoke ? 1000 : 10000;
    if (tf_replay(n, &rp) != 0) {
        add_note("faults: the replay of %ld deletes FAILED to run", n);
        failed = 1;
    } else {
        add_row("faults", "replay_queue_us", U_USEC, rp.replay_ms * 1000.0,
                rp.raw_ms * 1000.0, "the same DELs, raw and pipelined");
        add_row("faults", "replay_queue_slowest_del_us", U_USEC,
                rp.slowest_del_ms * 1000.0,
                (double)c.command_timeout_ms * 1000.0,
                "command_timeout_ms (tc_del while Redis is away)");
        add_note("faults: replay of %ld queued deletes: %.1f ms (%ld "
                 "replayed, %ld keys left); raw pipelined DEL %.1f ms",
                 rp.n, rp.replay_ms, rp.replayed, rp.left, rp.raw_ms);
    }
    add_note("faults: bound %u ms = 2 x listener_ping_ms (%u) + "
             "degraded_l1_ttl_ms (%u); recovery as tests/faults.h defines "
             "it; docs/benchmarks.md",
             tf_bound_ms(&c), c.listener_ping_ms, c.degraded_l1_ttl_ms);
    return failed ? -1 : 0;
}
