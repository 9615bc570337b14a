/* SPDX-License-Identifier: BSD-3-Clause */
/* warm: stores the values of a JSON-lines file with tc_set. The whole
   file is read and checked first, so a bad line stores nothing. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct entry {
    json_t *line; /* holds key and value */
    const char *key, *val;
    size_t val_len;
    uint32_t ttl_ms;
} entry;

typedef struct batch {
    entry *e;
    size_t n, cap;
} batch;

/* NULL if line is a good entry (filled in), else what is wrong. */
static const char *check(cli *k, json_t *j, entry *e)
{
    json_t *key = json_object_get(j, "key"),
           *val = json_object_get(j, "value");
    json_t *ttl = json_object_get(j, "ttl_ms");
    if (!json_is_object(j))
        return "not a JSON object";
    if (!json_is_string(key) || !json_is_string(val))
        return "\"key\" and \"value\" must be strings";
    e->key = json_string_value(key);
    if (!e->key[0] || strlen(e->key) != json_string_length(key))
        return "the key is empty or holds a NUL";
    if (e->key[0] == '\x01' || strlen(e->key) > k->opt.max_key_bytes)
        return "the key is reserved (byte 0x01) or too long";
    if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 0 ||
                json_integer_value(ttl) > UINT32_MAX))
        return "\"ttl_ms\" must be an integer in 0..4294967295";
    e->val = json_string_value(val);
    e->val_len = json_string_length(val);
    if (e->val_len > k->opt.max_value_bytes)
        return "the value is over max_value_bytes";
    e->ttl_ms = ttl ? (uint32_t)json_integer_value(ttl) : 0;
    e->line = j;
    return NULL;
}

static int add(batch *b, const entry *e)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        entry *ne = realloc(b->e, cap * sizeof(*ne));
        if (!ne)
            return -1;
        b->e = ne;
        b->cap = cap;
    }
    b->e[b->n++] = *e;
    return 0;
}

/* Reads every line of f into b; CLI_OK or an exit code, said. */
static int read_all(cli *k, FILE *f, const char *name, batch *b)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = CLI_OK;
    for (long no = 1; rc == CLI_OK && (len = getline(&line, &cap, f)) >= 0;
         no++) {
        if (strspn(line, " \t\r\n") == (size_t)len)
            continue; /* blank lines are allowed */
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)len, 0, &je);
        entry e;
        const char *why = j ? check(k, j, &e) : je.text;
        if (why) {
            rc = cli_fail(k, CLI_DATAERR, "%s:%ld: %s (nothing stored)", name,
                          no, why);
            json_decref(j);
        } else if (add(b, &e) != 0) {
            rc = cli_fail(k, CLI_FAILED, "out of memory");
            json_decref(j);
        }
    }
    /* getline's -1 is also a read error (a directory, EIO): not an
       empty file */
    if (rc == CLI_OK && ferror(f))
        rc = cli_fail(k, CLI_DATAERR, "%s: %s (nothing stored)", name,
                      strerror(errno));
    free(line);
    return rc;
}

static void progress(size_t i, size_t n)
{
    int w = 40, done = n ? (int)((double)i / (double)n * w) : w;
    fprintf(stderr, "\r[%.*s%*s] %zu/%zu", done,
            "########################################", w - done, "", i, n);
}

int cmd_warm(cli *k)
{
    const char *name = k->argv[0];
    FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "r");
    if (!f)
        return cli_fail(k, CLI_USAGE, "%s: cannot open", name);
    batch b = {0};
    int rc = read_all(k, f, name, &b);
    if (f != stdin)
        fclose(f);
    if (rc == CLI_OK)
        rc = cli_open(k);
    int tty = isatty(STDERR_FILENO), st = TC_OK;
    size_t i;
    for (i = 0; rc == CLI_OK && i < b.n; i++) {
        st = tc_set(k->c, b.e[i].key, b.e[i].val, b.e[i].val_len,
                    b.e[i].ttl_ms);
        if (st != TC_OK)
            break;
        if (tty && (i % 64 == 0 || i + 1 == b.n))
            progress(i + 1, b.n);
    }
    if (tty && b.n && rc == CLI_OK)
        fputc('\n', stderr);
    if (rc == CLI_OK && st != TC_OK)
        rc = cli_status(k, st, b.e[i].key);
    else if (rc == CLI_OK)
        printf("%zu values stored\n", b.n);
    for (size_t j = 0; j < b.n; j++)
        json_decref(b.e[j].line);
    free(b.e);
    return rc;
}
