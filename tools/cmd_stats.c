/* SPDX-License-Identifier: BSD-3-Clause */
/* stats: what the namespace holds in Redis. One SCAN of every node
   counts the keys and keeps a uniform sample of them (reservoir); the
   sample's MEMORY USAGE, envelopes and TTLs give the distributions. */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define NSIZE 7
#define NTTL 7
static const char *size_names[NSIZE] = {"<64B",   "<256B",  "<1KiB",  "<4KiB",
                                        "<16KiB", "<64KiB", ">=64KiB"};
static const char *ttl_names[NTTL] = {"<1s", "<10s", "<1m",         "<10m",
                                      "<1h", "<1d",  ">=1d or none"};

typedef struct scan {
    cli *k;
    char pattern[TC_NS_MAX + 8];
    uint64_t keys, leases, seen;
    char **sample; /* up to cap Redis key names */
    size_t *lens, n, cap;
    /* over the sample */
    uint64_t mem, values, compressed, absent, foreign;
    uint64_t sizes[NSIZE], ttls[NTTL];
    long long got_ll;
    char *got;
    size_t got_len;
    int tty;
} scan;

static void keep(scan *s, const char *name, size_t len)
{
    size_t slot = s->n < s->cap ? s->n++ : (size_t)(random() % s->seen);
    if (slot >= s->cap)
        return;
    char *c = malloc(len + 1);
    if (!c)
        return;
    memcpy(c, name, len);
    c[len] = '\0';
    free(s->sample[slot]);
    s->sample[slot] = c;
    s->lens[slot] = len;
}

static void one_key(void *ud, const char *name, size_t len)
{
    scan *s = ud;
    if (len && name[len - 1] != '}') {
        s->leases++; /* <ns>:{key}:lease */
        return;
    }
    s->keys++;
    s->seen++;
    keep(s, name, len);
}

static void one_page(void *ud)
{
    scan *s = ud;
    if (s->tty) /* progress, on a terminal only */
        fprintf(stderr, "\rscanning: %llu keys", (unsigned long long)s->keys);
}

static int reply_ll(void *ud, const redisReply *r)
{
    ((scan *)ud)->got_ll = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    return TC_OK;
}

static int reply_str(void *ud, const redisReply *r)
{
    scan *s = ud;
    if (r->type != REDIS_REPLY_STRING)
        return TC_MISS;
    s->got = malloc(r->len ? r->len : 1);
    if (!s->got)
        return TC_ENOMEM;
    memcpy(s->got, r->str, r->len);
    s->got_len = r->len;
    return TC_OK;
}

/* Runs argv through the cache's pool. A cluster routes it by argv[1]
   and follows the MOVED of a command whose key comes later. */
static int on_key(scan *s, int argc, const char **argv, size_t *lens,
                  tc__l2_reply_fn fn)
{
    return tc__l2_argv(s->k->c->l2, argc, argv, lens, fn, s);
}

static int bucket(uint64_t v, uint64_t first, int factor, int n)
{
    int b = 0;
    for (uint64_t lim = first; b < n - 1 && v >= lim; lim *= (uint64_t)factor)
        b++;
    return b;
}

static int ttl_bucket(long long ttl)
{
    static const long long lim[NTTL - 1] = {1000,   10000,   60000,
                                            600000, 3600000, 86400000};
    int b = 0;
    while (ttl >= 0 && b < NTTL - 1 && ttl >= lim[b])
        b++;
    return ttl < 0 ? NTTL - 1 : b;
}

static void measure(scan *s, const char *name, size_t len)
{
    const char *mu[] = {"MEMORY", "USAGE", name};
    size_t mul[] = {6, 5, len};
    s->got_ll = -1;
    if (on_key(s, 3, mu, mul, reply_ll) == TC_OK && s->got_ll > 0)
        s->mem += (uint64_t)s->got_ll;
    const char *pt[] = {"PTTL", name};
    size_t ptl[] = {4, len};
    s->got_ll = -1;
    on_key(s, 2, pt, ptl, reply_ll);
    long long ttl = s->got_ll;
    const char *g[] = {"GET", name};
    size_t gl[] = {3, len};
    s->got = NULL;
    if (on_key(s, 2, g, gl, reply_str) != TC_OK)
        return; /* gone since the SCAN, or not a string */
    tc__envelope e;
    if (tc__env_decode(s->got, s->got_len, SIZE_MAX, &e) != TC_OK) {
        s->foreign++;
    } else {
        s->values++;
        s->compressed += (e.flags & TC__FLAGS_CODEC) != 0;
        s->absent += (e.flags & TC__FLAG_ABSENT) != 0;
        s->sizes[bucket(e.payload_len, 64, 4, NSIZE)]++;
        s->ttls[ttl_bucket(ttl)]++;
    }
    free(s->got);
}

static json_t *hist_json(const char **names, const uint64_t *h, int n)
{
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(o, names[i], json_integer((json_int_t)h[i]));
    return o;
}

static void print_json(const scan *s, uint64_t mem)
{
    json_t *o = json_object();
    json_object_set_new(o, "namespace", json_string(s->k->opt.ns));
    json_object_set_new(o, "keys", json_integer((json_int_t)s->keys));
    json_object_set_new(o, "leases", json_integer((json_int_t)s->leases));
    json_object_set_new(o, "sampled", json_integer((json_int_t)s->n));
    json_object_set_new(o, "memory_bytes", json_integer((json_int_t)mem));
    json_object_set_new(o, "values", json_integer((json_int_t)s->values));
    json_object_set_new(o, "compressed",
                        json_integer((json_int_t)s->compressed));
    json_object_set_new(o, "absent", json_integer((json_int_t)s->absent));
    json_object_set_new(o, "foreign", json_integer((json_int_t)s->foreign));
    json_object_set_new(o, "value_sizes",
                        hist_json(size_names, s->sizes, NSIZE));
    json_object_set_new(o, "ttls", hist_json(ttl_names, s->ttls, NTTL));
    cli_json_out(o);
}

static void print_hist(const char *title, const char **names,
                       const uint64_t *h, int n, uint64_t of)
{
    printf("%s\n", title);
    for (int i = 0; i < n; i++)
        if (h[i])
            printf("  %-13s %8llu  %5.1f %%\n", names[i],
                   (unsigned long long)h[i],
                   100.0 * (double)h[i] / (double)of);
}

static void print_text(const scan *s, uint64_t mem)
{
    printf("namespace   %s\n", s->k->opt.ns);
    printf("keys        %llu (and %llu leases)\n", (unsigned long long)s->keys,
           (unsigned long long)s->leases);
    printf("memory      %llu bytes%s\n", (unsigned long long)mem,
           s->n < s->keys ? " (estimated from the sample)" : "");
    printf("sampled     %zu keys: %llu values, %llu absent, %llu foreign\n",
           s->n, (unsigned long long)s->values, (unsigned long long)s->absent,
           (unsigned long long)s->foreign);
    if (!s->values)
        return;
    printf("compressed  %llu (%.1f %%)\n", (unsigned long long)s->compressed,
           100.0 * (double)s->compressed / (double)s->values);
    print_hist("value sizes (stored payload)", size_names, s->sizes, NSIZE,
               s->values);
    print_hist("TTLs left", ttl_names, s->ttls, NTTL, s->values);
}

int cmd_stats(cli *k)
{
    scan s = {.k = k};
    int rc = cli_open(k);
    if (rc)
        return rc;
    s.cap = k->count > 0 ? (size_t)k->count : 1000;
    s.sample = calloc(s.cap, sizeof(*s.sample));
    s.lens = calloc(s.cap, sizeof(*s.lens));
    if (!s.sample || !s.lens) {
        free(s.sample);
        free(s.lens);
        return cli_fail(k, CLI_FAILED, "out of memory");
    }
    s.tty = isatty(STDERR_FILENO);
    snprintf(s.pattern, sizeof(s.pattern), "%s:{*", k->opt.ns);
    cli_scan_fns fns = {one_key, one_page, &s};
    rc = cli_scan(k, s.pattern, &fns);
    if (s.tty)
        fputc('\n', stderr);
    for (size_t i = 0; rc == TC_OK && i < s.n; i++)
        measure(&s, s.sample[i], s.lens[i]);
    /* memory of the whole namespace: the sample's mean times the keys */
    uint64_t mem =
        s.n ? (uint64_t)((double)s.mem / (double)s.n * (double)s.keys) : 0;
    if (rc == TC_OK)
        k->json ? print_json(&s, mem) : print_text(&s, mem);
    for (size_t i = 0; i < s.n; i++)
        free(s.sample[i]);
    free(s.sample);
    free(s.lens);
    return rc == TC_OK ? CLI_OK : cli_status(k, rc, "scan");
}
