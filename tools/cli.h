/* SPDX-License-Identifier: BSD-3-Clause */
/* The tiercache command: what its files share. Each command is a
   function in its own file; tiercache.c parses the line and runs it. */
#ifndef TC_CLI_H
#define TC_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"

/* Exit codes (documented in --help and tiercache(1)). */
enum {
    CLI_OK = 0,
    CLI_NOTFOUND = 1,    /* get: no such key; health: degraded */
    CLI_UNREACHABLE = 2, /* Redis unreachable or refusing us */
    CLI_FAILED = 3,      /* any other failure (a Redis error reply, memory) */
    CLI_USAGE = 64,      /* bad arguments or environment */
    CLI_DATAERR = 65     /* bad input data: a warm file, a foreign value */
};

typedef struct cli {
    const char *cmd; /* for error lines */
    tc_options opt;
    int json, raw, yes, verbose;
    uint32_t ttl_ms;
    long count; /* bench: calls; stats: sampled keys */
    int argc;   /* positional arguments after the command */
    char **argv;
    tc_cache *c;
    char last_log[256]; /* the library's last WARN or ERROR line */
} cli;

/* "tiercache: <cmd>: <msg>" on stderr, one line; returns code. */
int cli_fail(cli *k, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The exit code and one error line for a library status. */
int cli_status(cli *k, int rc, const char *what);
/* Opens k->c (strict, no L1). CLI_OK or an exit code, said. */
int cli_open(cli *k);
/* 0 if key is one a cache accepts, else an exit code, said. */
int cli_check_key(cli *k, const char *key);
/* Runs fn on every master's pool (one Redis: on it). */
int cli_each_node(cli *k, int (*fn)(void *, tc__l2 *), void *ud);
/* SCAN MATCH pattern on every master: key(ud, name, len) for each Redis
   key found, page(ud) after each page (may be NULL). TC_OK or the first
   failure. */
typedef struct cli_scan_fns {
    void (*key)(void *ud, const char *name, size_t len);
    void (*page)(void *ud);
    void *ud;
} cli_scan_fns;
int cli_scan(cli *k, const char *pattern, const cli_scan_fns *fns);
/* Wall clock, microseconds, and "YYYY-MM-DDTHH:MM:SS.mmmZ" of ms. */
uint64_t cli_now_us(void);
void cli_iso(uint64_t wall_ms, char *buf, size_t cap);
/* Writes a JSON value (jansson's json_t) on stdout and frees it. */
struct json_t;
void cli_json_out(struct json_t *j);
/* A JSON string of bytes: itself when valid UTF-8, else NULL. */
struct json_t *cli_json_bytes(const void *p, size_t n);
/* Sets o[name] to the bytes as a string when they are UTF-8, else
   o[name + "_hex"] to their hex, so that no byte is lost. */
void cli_json_set_bytes(struct json_t *o, const char *name, const void *p,
                        size_t n);

int cmd_health(cli *k);
int cmd_stats(cli *k);
int cmd_get(cli *k);
int cmd_set(cli *k);
int cmd_del(cli *k);
int cmd_del_prefix(cli *k);
int cmd_flush(cli *k);
int cmd_keys(cli *k);
int cmd_watch(cli *k);
int cmd_warm(cli *k);
int cmd_bench(cli *k);

#endif
