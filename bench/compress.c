/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * compress: what the codecs do to invoice-like JSON of 1, 4, 16 and
 * 64 KiB (the size ratio, floor 1.0 = stored raw; compression and
 * decompression speed in bytes/s, floor memcpy), and what a tc_get from
 * Redis of a 16 KiB value costs with each codec (floor: a raw GET of
 * the uncompressed envelope).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "internal.h"

static const size_t json_sizes[] = {1024, 4096, 16384, 65536};
#define NJSON (sizeof(json_sizes) / sizeof(json_sizes[0]))
static const char *const codec_names[] = {"none", "zstd", "lz4"};

static void kib_name(char *out, size_t cap, size_t n)
{
    snprintf(out, cap, "%zuKiB", n / 1024);
}

/* Invoice-like JSON of exactly n bytes (n >= 2): repeated keys, varying
   SKUs, quantities and prices, as a billing service would cache. */
static char *invoice_json(size_t n, unsigned seed)
{
    char *buf = xcalloc(1, n + 1), item[200];
    size_t off =
        (size_t)snprintf(buf, n,
                         "{\"invoice\":%u,\"customer\":{\"id\":%u,\"name\":"
                         "\"Customer %u\"},\"currency\":\"EUR\",\"lines\":[",
                         seed, seed * 17u, seed % 997u);
    for (unsigned line = 0; off < n; line++) {
        int k = snprintf(item, sizeof item,
                         "{\"line\":%u,\"sku\":\"P-%05u\",\"qty\":%u,"
                         "\"unit_cents\":%u,\"vat_pct\":%u,\"desc\":"
                         "\"Widget model %u, size %c\"},",
                         line, (seed * 7919u + line * 31u) % 100000u,
                         line % 9 + 1, (seed + line) * 137u % 99999u,
                         line % 3 ? 20 : 5, line % 50, 'A' + line % 6);
        size_t take = (size_t)k < n - off ? (size_t)k : n - off;
        memcpy(buf + off, item, take);
        off += take;
    }
    buf[n - 2] = ']';
    buf[n - 1] = '}';
    return buf;
}

/* Bytes per second of `iters` runs of each step on one value. */
static void codec_case(const bench_cfg *cfg, int codec, size_t len)
{
    char *src = invoice_json(len, 7), *copy = xcalloc(1, len);
    size_t budget = cfg->smoke   ? (4u << 20)
                    : cfg->quick ? (32u << 20)
                                 : (256u << 20);
    size_t iters = budget / len < 3 ? 3 : budget / len;
    unsigned char *z = NULL;
    size_t zlen = len;
    uint32_t flag = 0;
    uint64_t t_pack = 0, t_unpack = 0, t_copy = 0, t0;

    for (size_t i = 0; i < iters; i++) {
        tc__free(z);
        t0 = now_ns();
        if (tc__compress(codec, 0, src, len, &z, &zlen, &flag) != TC_OK)
            die("compress: out of memory");
        t_pack += now_ns() - t0;
    }
    if (!z)
        die("compress: %s kept nothing of %zu JSON bytes", codec_names[codec],
            len);
    for (size_t i = 0; i < iters; i++) {
        tc_value *v;
        t0 = now_ns();
        if (tc__decompress(flag, z, zlen, len, &v) != TC_OK)
            die("compress: %s frame refused", codec_names[codec]);
        t_unpack += now_ns() - t0;
        if (memcmp(tc_value_data(v), src, len) != 0)
            die("compress: %s round trip differs", codec_names[codec]);
        tc_value_release(v);
    }
    for (size_t i = 0; i < iters; i++) {
        t0 = now_ns();
        memcpy(copy, src, len);
        __asm__ volatile("" : : "r"(copy) : "memory");
        t_copy += now_ns() - t0;
    }
    char sz[24], metric[48];
    double bytes = (double)len * (double)iters;
    double copy_bps = bytes * 1e9 / (double)(t_copy ? t_copy : 1);
    kib_name(sz, sizeof sz, len);
    snprintf(metric, sizeof metric, "%s_%s_ratio", codec_names[codec], sz);
    add_row("compress", metric, U_PER, (double)zlen / (double)len, 1.0,
            "stored raw");
    snprintf(metric, sizeof metric, "%s_%s_pack_bytes_s", codec_names[codec],
             sz);
    add_row("compress", metric, U_OPS, bytes * 1e9 / (double)t_pack, copy_bps,
            "memcpy of the same bytes");
    snprintf(metric, sizeof metric, "%s_%s_unpack_bytes_s", codec_names[codec],
             sz);
    add_row("compress", metric, U_OPS, bytes * 1e9 / (double)t_unpack,
            copy_bps, "memcpy of the same bytes");
    tc__free(z);
    free(copy);
    free(src);
}

/* ---- L2 hits: a reader with no L1, one key per codec ---- */

typedef struct hit_case {
    tc_cache *reader;
    redisContext *raw;
    char rkey[RKEY_CAP];
    int codec; /* the key tc_get_op reads */
} hit_case;

static uint64_t tc_get_op(void *ctx, size_t i)
{
    hit_case *h = ctx;
    char key[16];
    tc_value *v = NULL;
    snprintf(key, sizeof key, "cz:%s", codec_names[h->codec]);
    uint64_t t0 = now_ns();
    int rc = tc_get(h->reader, key, &v);
    uint64_t dt = now_ns() - t0;
    if (rc != TC_OK)
        die("compress: tc_get %s: %s", key, tc_strerror(rc));
    tc_value_release(v);
    return dt;
}

static uint64_t raw_get_op(void *ctx, size_t i)
{
    hit_case *h = ctx;
    (void)i;
    return raw_get_ns(h->raw, h->rkey, "compress");
}

static void l2_hits(const th_redis *r, const bench_cfg *cfg)
{
    const size_t len = 16384;
    char *val = invoice_json(len, 11), key[16], metric[48];
    hit_case h = {0};
    tc_options o;
    uint64_t *lat[2];

    h.reader = open_cache(r, 0, 0, &o); /* no L1: every get is L2 */
    for (int codec = 0; codec < 3; codec++) {
        tc_options wo = o; /* the reader's namespace, with the codec */
        tc_cache *w;
        wo.compression = codec;
        if (tc_open(&w, &wo) != TC_OK)
            die("compress: tc_open");
        snprintf(key, sizeof key, "cz:%s", codec_names[codec]);
        if (tc_set(w, key, val, len, TTL_MS) != TC_OK)
            die("compress: tc_set");
        tc_close(w);
    }
    h.raw = raw_connect(r, 0);
    redis_key(h.rkey, sizeof h.rkey, &o, "cz:none");
    lat[0] = xcalloc(cfg->io_ops, sizeof(uint64_t));
    lat[1] = xcalloc(cfg->io_ops, sizeof(uint64_t));
    for (int codec = 0; codec < 3; codec++) {
        static const timed_op ops[] = {tc_get_op, raw_get_op};
        h.codec = codec;
        progress("compress: tc_get of 16 KiB JSON, %s", codec_names[codec]);
        size_t n = measure_sides(cfg, ops, 2, &h, lat, cfg->io_ops);
        qsort(lat[0], n, sizeof(uint64_t), cmp_u64);
        qsort(lat[1], n, sizeof(uint64_t), cmp_u64);
        snprintf(metric, sizeof metric, "get_16KiB_%s_p50_us",
                 codec_names[codec]);
        add_row("compress", metric, U_USEC, pct_us(lat[0], n, 50),
                pct_us(lat[1], n, 50),
                "raw hiredis GET of the uncompressed envelope");
    }
    free(lat[0]);
    free(lat[1]);
    redisFree(h.raw);
    tc_close(h.reader);
    free(val);
}

void bench_compress(const th_redis *r, const bench_cfg *cfg)
{
    for (int codec = TC_COMPRESSION_ZSTD; codec <= TC_COMPRESSION_LZ4; codec++)
        for (size_t s = 0; s < NJSON; s++) {
            progress("compress: %s, %zu bytes of JSON", codec_names[codec],
                     json_sizes[s]);
            codec_case(cfg, codec, json_sizes[s]);
        }
    l2_hits(r, cfg);
}
