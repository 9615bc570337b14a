/* SPDX-License-Identifier: BSD-3-Clause */
/* What the commands share: error lines and exit codes, opening the
   cache from the environment and the flags, clocks, JSON output. */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cluster.h"

int cli_fail(cli *k, int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tiercache: %s: ", k->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_status(cli *k, int rc, const char *what)
{
    tc_health_info h;
    tc_health(k->c, &h);
    /* The library's own words say which server and why. */
    const char *why = h.last_error[0] ? h.last_error : k->last_log;
    /* A failure while the server is connected is an error reply (say
       WRONGTYPE), not an unreachable Redis. */
    int code = rc == TC_EBACKEND && h.l2_connected      ? CLI_FAILED
               : rc == TC_EBACKEND || rc == TC_EREFUSED ? CLI_UNREACHABLE
               : rc == TC_EINVAL || rc == TC_ETOOBIG    ? CLI_USAGE
               : rc == TC_ECODEC                        ? CLI_DATAERR
                                                        : CLI_FAILED;
    if (why[0])
        return cli_fail(k, code, "%s: %s (%s)", what, tc_strerror(rc), why);
    return cli_fail(k, code, "%s: %s", what, tc_strerror(rc));
}

/* Keeps the library's log lines off stderr (one error line is ours to
   print), unless -v; the last one is kept for that line. */
static void log_line(void *ud, int level, const char *msg)
{
    cli *k = ud;
    if (k->verbose)
        fprintf(stderr, "tiercache: %s: log: %s\n", k->cmd, msg);
    if (level >= TC_LOG_WARN)
        snprintf(k->last_log, sizeof(k->last_log), "%s", msg);
}

int cli_open(cli *k)
{
    char err[TC_ENV_ERROR_MAX + 32];
    if (k->opt.env_error[0])
        return cli_fail(k, CLI_USAGE, "environment: %s", k->opt.env_error);
    if (tc__options_check(&k->opt, err, sizeof(err)) != TC_OK)
        return cli_fail(k, CLI_USAGE, "%s", err);
    if (!k->opt.redis_host[0] && !k->opt.redis_socket[0] &&
        !(k->opt.redis_cluster && k->opt.redis_cluster[0]) &&
        !(k->opt.redis_sentinels && k->opt.redis_sentinels[0]))
        return cli_fail(k, CLI_UNREACHABLE, "no Redis configured (url none)");
    k->opt.strict = 1;         /* a write that fails must say so */
    k->opt.l1_max_entries = 0; /* every read goes to Redis */
    k->opt.log_fn = log_line;
    k->opt.log_ud = k;
    if (k->verbose)
        k->opt.log_level = TC_LOG_DEBUG;
    int rc = tc_open(&k->c, &k->opt);
    if (rc != TC_OK)
        return cli_fail(k,
                        rc == TC_EINVAL ? CLI_USAGE
                        : rc == TC_EREFUSED || rc == TC_EBACKEND
                            ? CLI_UNREACHABLE
                            : CLI_FAILED,
                        "%s%s%s", tc_strerror(rc), k->last_log[0] ? ": " : "",
                        k->last_log);
    return CLI_OK;
}

int cli_check_key(cli *k, const char *key)
{
    if (!key[0])
        return cli_fail(k, CLI_USAGE, "the key is empty");
    if (key[0] == '\x01')
        return cli_fail(k, CLI_USAGE,
                        "keys starting with byte 0x01 are "
                        "reserved");
    if (strlen(key) > k->opt.max_key_bytes)
        return cli_fail(k, CLI_USAGE, "the key is over %u bytes",
                        k->opt.max_key_bytes);
    return 0;
}

int cli_each_node(cli *k, int (*fn)(void *, tc__l2 *), void *ud)
{
    tc__cluster *cl = tc__l2_cluster(k->c->l2);
    return cl ? tc__cluster_each_master(cl, fn, ud) : fn(ud, k->c->l2);
}

typedef struct scan_state {
    const char *pattern;
    const cli_scan_fns *fns;
    char cursor[32];
} scan_state;

static int scan_page(void *ud, const redisReply *r)
{
    scan_state *s = ud;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
        return TC_EBACKEND;
    snprintf(s->cursor, sizeof(s->cursor), "%s", r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements; i++)
        s->fns->key(s->fns->ud, r->element[1]->element[i]->str,
                    r->element[1]->element[i]->len);
    return TC_OK;
}

/* One node, until its cursor comes back to 0. */
static int scan_node(void *ud, tc__l2 *l2)
{
    scan_state *s = ud;
    int rc;
    strcpy(s->cursor, "0");
    do {
        const char *argv[] = {"SCAN",     s->cursor, "MATCH",
                              s->pattern, "COUNT",   "1000"};
        size_t lens[] = {4, strlen(s->cursor), 5, strlen(s->pattern), 5, 4};
        rc = tc__l2_argv(l2, 6, argv, lens, scan_page, s);
        if (s->fns->page)
            s->fns->page(s->fns->ud);
    } while (rc == TC_OK && strcmp(s->cursor, "0") != 0);
    return rc;
}

int cli_scan(cli *k, const char *pattern, const cli_scan_fns *fns)
{
    scan_state s = {pattern, fns, "0"};
    return cli_each_node(k, scan_node, &s);
}

void cli_json_set_bytes(json_t *o, const char *name, const void *p, size_t n)
{
    json_t *s = cli_json_bytes(p, n);
    if (s) {
        json_object_set_new(o, name, s);
        return;
    }
    char field[64], *hex = malloc(2 * n + 1);
    const unsigned char *b = p;
    for (size_t i = 0; hex && i < n; i++)
        sprintf(hex + 2 * i, "%02x", b[i]);
    if (hex)
        hex[2 * n] = '\0';
    snprintf(field, sizeof(field), "%s_hex", name);
    json_object_set_new(o, field, json_string(hex ? hex : ""));
    free(hex);
}

uint64_t cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void cli_iso(uint64_t wall_ms, char *buf, size_t cap)
{
    time_t s = (time_t)(wall_ms / 1000);
    struct tm tm;
    char day[32];
    gmtime_r(&s, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03uZ", day, (unsigned)(wall_ms % 1000));
}

void cli_json_out(json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(j);
}

json_t *cli_json_bytes(const void *p, size_t n)
{
    return json_stringn(p, n); /* NULL: not UTF-8, or a NUL inside */
}
