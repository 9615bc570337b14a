/* SPDX-License-Identifier: BSD-3-Clause */
/* get (the envelope decoded by the library's own decoder), set, del,
   del-prefix, flush, keys. Writes go through the public API, so the
   invalidations reach every process's L1. */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "l2ops.h"

/* ---- get ---- */

typedef struct got {
    char *buf; /* the stored bytes, a copy */
    size_t len;
    long long pttl;
} got;

static int keep_reply(void *ud, const char *buf, size_t len)
{
    got *g = ud;
    if (!(g->buf = malloc(len + 1)))
        return TC_ENOMEM;
    memcpy(g->buf, buf, len);
    g->len = len;
    return TC_OK;
}

static int keep_pttl(void *ud, const redisReply *r)
{
    if (r->type != REDIS_REPLY_INTEGER)
        return TC_EBACKEND;
    ((got *)ud)->pttl = r->integer;
    return TC_OK;
}

static const char *flag_names(uint32_t f)
{
    return f & TC__FLAG_ABSENT ? "absent"
           : f & TC__FLAG_ZSTD ? "zstd"
           : f & TC__FLAG_LZ4  ? "lz4"
                               : "none";
}

static void print_text(const tc__envelope *e, const tc_value *v, const got *g,
                       const char *key)
{
    const unsigned char *p = v ? v->data : e->payload;
    size_t n = v ? v->len : e->payload_len;
    char when[40] = "none";
    if (e->expires_at_ms)
        cli_iso(e->expires_at_ms, when, sizeof(when));
    printf("key       %s\n", key);
    printf("flags     %u (%s)\n", e->flags, flag_names(e->flags));
    printf("size      %zu bytes (stored %zu, envelope %zu)\n", n,
           e->payload_len, g->len);
    printf("expires   %s (Redis TTL %lld ms)\n", when, g->pttl);
    printf("delta_ms  %u\n", e->delta_ms);
    if (e->wver) /* 16 hex digits, as a script would compare them */
        printf("version   %016llx\n", (unsigned long long)e->wver);
    else
        printf("version   none\n");
    printf("payload   ");
    for (size_t i = 0; i < n && i < 4096; i++)
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    printf("%s\n", n > 4096 ? "... (--raw for all of it)" : "");
}

static void print_json(const tc__envelope *e, const tc_value *v, const got *g,
                       const char *key)
{
    const unsigned char *p = v ? v->data : e->payload;
    size_t n = v ? v->len : e->payload_len;
    json_t *o = json_object();
    cli_json_set_bytes(o, "key", key, strlen(key));
    json_object_set_new(o, "flags", json_integer(e->flags));
    json_object_set_new(o, "codec", json_string(flag_names(e->flags)));
    json_object_set_new(o, "absent", json_boolean(e->flags & TC__FLAG_ABSENT));
    json_object_set_new(o, "expires_at_ms",
                        json_integer((json_int_t)e->expires_at_ms));
    json_object_set_new(o, "ttl_ms", json_integer(g->pttl));
    json_object_set_new(o, "delta_ms", json_integer(e->delta_ms));
    if (e->wver) { /* as a string: JSON numbers lose 64-bit precision */
        char ver[24];
        snprintf(ver, sizeof ver, "%016llx", (unsigned long long)e->wver);
        json_object_set_new(o, "write_version", json_string(ver));
    } else {
        json_object_set_new(o, "write_version", json_null());
    }
    json_object_set_new(o, "size", json_integer((json_int_t)n));
    json_object_set_new(o, "stored_bytes", json_integer((json_int_t)g->len));
    cli_json_set_bytes(o, "payload", p, n); /* or payload_hex */
    cli_json_out(o);
}

/* Decodes g's bytes and prints them as asked. */
static int show(cli *k, const got *g, const char *key)
{
    tc__envelope e;
    tc_value *v = NULL;
    int rc = tc__env_decode(g->buf, g->len, k->opt.max_value_bytes, &e);
    if (rc == TC_OK && !tc__flags_ok(e.flags))
        rc = TC_ECODEC;
    if (rc == TC_OK && (e.flags & TC__FLAGS_CODEC))
        rc = tc__decompress(e.flags, e.payload, e.payload_len,
                            k->opt.max_value_bytes, &v);
    if (rc != TC_OK)
        return cli_fail(k, rc == TC_ENOMEM ? CLI_FAILED : CLI_DATAERR,
                        "%s: %zu bytes that are not a tiercache value (%s)",
                        key, g->len, tc_strerror(rc));
    if (k->raw) {
        if (!(e.flags & TC__FLAG_ABSENT))
            fwrite(v ? v->data : e.payload, 1, v ? v->len : e.payload_len,
                   stdout);
    } else if (k->json) {
        print_json(&e, v, g, key);
    } else {
        print_text(&e, v, g, key);
    }
    tc_value_release(v);
    return CLI_OK;
}

int cmd_get(cli *k)
{
    const char *key = k->argv[0];
    int rc = cli_check_key(k, key);
    if (rc || (rc = cli_open(k)))
        return rc;
    if (k->raw && k->json)
        return cli_fail(k, CLI_USAGE, "--raw and --json do not mix");
    tc__rkey rk;
    got g = {NULL, 0, -2};
    if (tc__rkey_make(k->c, key, strlen(key), &rk) != TC_OK)
        return cli_fail(k, CLI_FAILED, "out of memory");
    rc = tc__l2_get(k->c->l2, rk.s, rk.len, keep_reply, &g);
    const char *argv[] = {"PTTL", rk.s};
    size_t lens[] = {4, rk.len};
    if (rc == TC_OK) /* the TTL Redis has left, not only the envelope's */
        tc__l2_argv(k->c->l2, 2, argv, lens, keep_pttl, &g);
    tc__rkey_done(&rk);
    if (rc == TC_MISS)
        rc = cli_fail(k, CLI_NOTFOUND, "%s: no such key", key);
    else if (rc != TC_OK)
        rc = cli_status(k, rc, key);
    else
        rc = show(k, &g, key);
    free(g.buf);
    return rc;
}

/* ---- writes ---- */

int cmd_set(cli *k)
{
    const char *key = k->argv[0], *val = k->argv[1];
    int rc = cli_check_key(k, key);
    if (rc || (rc = cli_open(k)))
        return rc;
    rc = tc_set(k->c, key, val, strlen(val), k->ttl_ms);
    return rc == TC_OK ? CLI_OK : cli_status(k, rc, key);
}

int cmd_del(cli *k)
{
    int rc = cli_check_key(k, k->argv[0]);
    if (rc || (rc = cli_open(k)))
        return rc;
    rc = tc_del(k->c, k->argv[0]);
    return rc == TC_OK ? CLI_OK : cli_status(k, rc, k->argv[0]);
}

int cmd_del_prefix(cli *k)
{
    int rc = cli_check_key(k, k->argv[0]);
    if (rc || (rc = cli_open(k)))
        return rc;
    rc = tc_del_prefix(k->c, k->argv[0]);
    return rc == TC_OK ? CLI_OK : cli_status(k, rc, k->argv[0]);
}

/* On a terminal, unless --yes: the namespace typed back, as a check. */
static int confirmed(cli *k)
{
    char line[128];
    if (k->yes)
        return 1;
    if (!isatty(STDIN_FILENO))
        return 0;
    fprintf(stderr,
            "Delete every key of namespace '%s' on this server? "
            "Type the namespace to confirm: ",
            k->opt.ns);
    if (!fgets(line, sizeof(line), stdin))
        return 0;
    line[strcspn(line, "\n")] = '\0';
    return strcmp(line, k->opt.ns) == 0;
}

int cmd_flush(cli *k)
{
    int rc = cli_open(k);
    if (rc)
        return rc;
    if (!confirmed(k))
        return cli_fail(k, CLI_USAGE, "not confirmed: nothing deleted%s",
                        isatty(STDIN_FILENO) ? ""
                                             : " (stdin is not a "
                                               "terminal: pass --yes)");
    rc = tc_flush(k->c);
    return rc == TC_OK ? CLI_OK : cli_status(k, rc, "flush");
}

/* ---- keys ---- */

typedef struct lister {
    cli *k;
    size_t pfx; /* strlen("<ns>:{") */
    json_t *arr;
    long n;
} lister;

static void one_key(void *ud, const char *s, size_t len)
{
    lister *l = ud;
    if (len < l->pfx + 1 || s[len - 1] != '}' || s[l->pfx] == '\x01')
        return; /* a lease, or a group generation */
    const char *key = s + l->pfx;
    size_t n = len - l->pfx - 1;
    l->n++;
    if (!l->arr) {
        fwrite(key, 1, n, stdout);
        putchar('\n');
        return;
    }
    /* a key that is not UTF-8: {"key_hex": "..."} in its place */
    json_t *j = cli_json_bytes(key, n), *x;
    if (!j && (x = json_object())) {
        cli_json_set_bytes(x, "key", key, n);
        j = x;
    }
    if (j)
        json_array_append_new(l->arr, j);
}

int cmd_keys(cli *k)
{
    const char *glob = k->argc ? k->argv[0] : "*";
    int rc = cli_open(k);
    if (rc)
        return rc;
    size_t n = strlen(k->opt.ns) + strlen(glob) + 4;
    char *pattern = malloc(n);
    if (!pattern)
        return cli_fail(k, CLI_FAILED, "out of memory");
    /* the glob is the caller's: its * ? [ ] work inside the braces */
    snprintf(pattern, n, "%s:{%s}", k->opt.ns, glob);
    lister l = {k, strlen(k->opt.ns) + 2, NULL, 0};
    if (k->json)
        l.arr = json_array();
    cli_scan_fns fns = {one_key, NULL, &l};
    rc = cli_scan(k, pattern, &fns);
    free(pattern);
    if (rc != TC_OK) {
        json_decref(l.arr);
        return cli_status(k, rc, "scan");
    }
    if (l.arr)
        cli_json_out(l.arr);
    return CLI_OK;
}
