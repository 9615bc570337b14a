/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Operation logs of a load run, and the staleness check over them.
 *
 * Each key has exactly one writer thread, which numbers its writes of
 * that key 1, 2, 3, ... (a set stores the decimal number, a delete takes
 * the next number too), so the writes of a key are totally ordered and a
 * value read names the write that stored it. Times are CLOCK_MONOTONIC in
 * microseconds, one clock for every process of the machine, and a log is
 * a plain array: made with shared = 1 it lives in shared memory, so
 * forked processes can fill logs their parent checks.
 */
#ifndef TC_TEST_HISTORY_H
#define TC_TEST_HISTORY_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TH_OP_GET = 0, TH_OP_SET = 1, TH_OP_DEL = 2 } th_op_kind;

typedef struct th_op {
    uint32_t key;
    int32_t kind; /* th_op_kind */
    int32_t rc;   /* what the call returned */
    int64_t ver;  /* SET, DEL: its number; GET: the number read, 0 for a
                     miss, -1 for a value that is not a number */
    uint64_t start_us, end_us;
} th_op;

typedef struct th_log {
    uint32_t cap, n; /* filled by one thread */
    int shared;      /* mmap'd, else malloc'd */
    th_op ops[];
} th_log;

/* A log for cap operations; shared = 1: in MAP_SHARED memory, for a
   forked child to fill. NULL on failure. */
th_log *th_log_new(uint32_t cap, int shared);
void th_log_free(th_log *l); /* NULL-safe */

uint64_t th_now_us(void);

/* Starts the next operation (its start time is now); NULL when the log
   is full: the caller stops. */
th_op *th_log_begin(th_log *l, uint32_t key, th_op_kind kind);
/* Ends it: its status, the version (see th_op), and the end time. */
void th_log_end(th_log *l, th_op *op, int rc, int64_t ver);

/* The version a GET read: the value as a decimal number, -1 if it is
   not one. */
int64_t th_hist_version(const void *data, size_t len);

typedef struct th_hist_result {
    long writes, reads;
    long errors;  /* a GET that returned neither TC_OK nor TC_MISS, a SET
                     or DEL that did not return TC_OK */
    long checked; /* reads with a write to compare with (see below) */
    long stale;   /* ... that returned an older value than that write,
                     or a value no write had stored yet */
    long lost;    /* ... that missed, though that write is a set and no
                     delete of the key had begun before the read ended */
    long broken;  /* a key whose writes are not numbered 1, 2, 3, ... */
    /* The worst staleness seen, bound or not: of the successful reads that
       returned a value, the longest time between the acknowledgement of
       the write that replaced that value (set or delete) and the read's
       start. 0 when every read returned the current value. */
    double worst_stale_ms;
} th_hist_result;

/*
 * Checks every read against the newest write of its key that was
 * acknowledged more than stale_ms before the read began, among the writes
 * that began at or after from_us (0: all): a read returns that version or
 * a newer one, or misses where that write (or one begun before the read
 * ended) is a delete. Reads with no such write are not checked: before
 * from_us (a failover, say) a write may be lost. Keys are 0..nkeys-1.
 * Prints the first few violations on stderr.
 */
void th_hist_check(th_log *const *logs, int nlogs, uint32_t nkeys,
                   uint64_t from_us, uint32_t stale_ms, th_hist_result *out);

/* th_hist_check with more to say: which reads to check, and how many
   violations to print. */
typedef struct th_hist_opts {
    uint64_t from_us;        /* as th_hist_check's */
    uint64_t reads_from_us;  /* only reads begun at or after this ... */
    uint64_t reads_until_us; /* ... and before this (0: no end) */
    uint32_t stale_ms;       /* as th_hist_check's */
    int show;                /* violations printed on stderr, at most */
    int show_lost;           /* 0: print stale reads only, not misses */
} th_hist_opts;
void th_hist_check_opts(th_log *const *logs, int nlogs, uint32_t nkeys,
                        const th_hist_opts *o, th_hist_result *out);

/* One line on stderr with the figures. */
void th_hist_print(const char *label, const th_hist_result *r);

#endif /* TC_TEST_HISTORY_H */
