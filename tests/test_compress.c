/* SPDX-License-Identifier: BSD-3-Clause */
/* Compression against a private redis-server: round trips at the
   compress_min_bytes boundary for each codec, incompressible data stored
   raw, bombs (declared or actual size over max_value_bytes), truncated
   frames and flags this version does not know. */
#include <CUnit/CUnit.h>
#include <lz4frame.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include <zstd.h>

#include "harness.h"
#include "internal.h"

#define NS "cz"
#define MIN_BYTES 1024

/* Strict caches return a timed-out call as TC_EBACKEND: on a loaded
   machine (make distcheck beside other builds) the default 100 ms is
   too short for what these tests check, which is not time. */
static void roomy(tc_options *o)
{
    o->connect_timeout_ms = 2000;
    o->command_timeout_ms = 2000;
}

static tc_cache *open_c(int codec, uint32_t max_value, int strict)
{
    tc_options o;
    th_options(th_srv, &o);
    roomy(&o);
    snprintf(o.ns, sizeof(o.ns), NS);
    o.coherence = TC_COHERENCE_NONE;
    o.compression = codec;
    o.compress_min_bytes = MIN_BYTES;
    if (max_value)
        o.max_value_bytes = max_value;
    o.strict = strict;
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    return c;
}

/* A reader with no L1: every tc_get reads Redis. */
static tc_cache *open_reader(uint32_t max_value, int strict)
{
    tc_options o;
    th_options(th_srv, &o);
    roomy(&o);
    snprintf(o.ns, sizeof(o.ns), NS);
    o.coherence = TC_COHERENCE_NONE;
    o.l1_max_entries = 0;
    if (max_value)
        o.max_value_bytes = max_value;
    o.strict = strict;
    tc_cache *c = NULL;
    CU_ASSERT_FATAL(tc_open(&c, &o) == TC_OK);
    return c;
}

/* Invoice-like JSON of exactly n bytes (n >= 2). */
static void invoice_json(char *buf, size_t n, unsigned seed)
{
    size_t off = 0;
    int line = 0;
    off += (size_t)snprintf(buf, n, "{\"invoice\":%u,\"lines\":[", seed);
    while (off < n) {
        char item[160];
        int k = snprintf(item, sizeof item,
                         "{\"sku\":\"P-%05u\",\"qty\":%d,\"unit_cents\":%u,"
                         "\"desc\":\"Widget model %u\"},",
                         (seed * 7919u + (unsigned)line * 31u) % 100000u,
                         line % 9 + 1, (seed + (unsigned)line) * 137u % 99999u,
                         (unsigned)line % 50u);
        size_t take = (size_t)k < n - off ? (size_t)k : n - off;
        memcpy(buf + off, item, take);
        off += take;
        line++;
    }
    buf[n - 2] = ']';
    buf[n - 1] = '}';
}

/* The flags of the envelope stored under key; -1 if none. */
static long raw_flags(const char *key)
{
    char rkey[128];
    snprintf(rkey, sizeof rkey, NS ":{%s}", key);
    redisReply *r = th_redis_cmd(th_srv, "GET %s", rkey);
    long flags = -1;
    tc__envelope e;
    if (r && r->type == REDIS_REPLY_STRING &&
        tc__env_decode(r->str, r->len, UINT32_MAX, &e) == TC_OK)
        flags = (long)e.flags;
    freeReplyObject(r);
    return flags;
}

/* Stores an envelope with these flags and payload under key. */
static void put_env(const char *key, uint32_t flags, const void *p, size_t len)
{
    char rkey[128], *buf;
    size_t blen;
    tc__envelope e = {flags, 0, 0, p, len, 0};
    snprintf(rkey, sizeof rkey, NS ":{%s}", key);
    CU_ASSERT_FATAL(tc__env_encode(&e, &buf, &blen) == TC_OK);
    redisReply *r =
        th_redis_cmd(th_srv, "SET %s %b PX 60000", rkey, buf, blen);
    freeReplyObject(r);
    tc__free(buf);
}

static uint64_t codec_errors(tc_cache *c)
{
    tc_stats_info st;
    tc_stats(c, &st);
    return st.codec_errors;
}

static void expect_value(tc_cache *c, const char *key, const void *want,
                         size_t len)
{
    tc_value *v = NULL;
    CU_ASSERT_EQUAL_FATAL(tc_get(c, key, &v), TC_OK);
    CU_ASSERT_EQUAL(tc_value_len(v), len);
    CU_ASSERT(len == tc_value_len(v) &&
              memcmp(tc_value_data(v), want, len) == 0);
    tc_value_release(v);
}

static void round_trips(int codec, uint32_t flag)
{
    tc_cache *w = open_c(codec, 0, 1), *r = open_reader(0, 1);
    const size_t sizes[] = {MIN_BYTES - 1, MIN_BYTES, MIN_BYTES + 1,
                            64 * 1024};
    char *buf = malloc(64 * 1024);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char key[32];
        snprintf(key, sizeof key, "rt%d-%zu", codec, sizes[i]);
        invoice_json(buf, sizes[i], (unsigned)i);
        CU_ASSERT_EQUAL(tc_set(w, key, buf, sizes[i], 60000), TC_OK);
        /* below the threshold raw, from it on compressed */
        CU_ASSERT_EQUAL(raw_flags(key), sizes[i] < MIN_BYTES ? 0 : (long)flag);
        expect_value(w, key, buf, sizes[i]); /* the L1: uncompressed */
        expect_value(r, key, buf, sizes[i]); /* Redis, decompressed */
    }
    CU_ASSERT_EQUAL(codec_errors(w), 0);
    CU_ASSERT_EQUAL(codec_errors(r), 0);
    free(buf);
    tc_close(r);
    tc_close(w);
}

static void test_zstd_round_trips(void)
{
    round_trips(TC_COMPRESSION_ZSTD, TC__FLAG_ZSTD);
}

static void test_lz4_round_trips(void)
{
    round_trips(TC_COMPRESSION_LZ4, TC__FLAG_LZ4);
}

static void test_incompressible_stored_raw(void)
{
    unsigned char buf[8192];
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    for (int codec = TC_COMPRESSION_ZSTD; codec <= TC_COMPRESSION_LZ4;
         codec++) {
        tc_cache *w = open_c(codec, 0, 1), *r = open_reader(0, 1);
        CU_ASSERT_EQUAL(tc_set(w, "rand", buf, sizeof buf, 60000), TC_OK);
        CU_ASSERT_EQUAL(raw_flags("rand"), 0);
        expect_value(r, "rand", buf, sizeof buf);
        tc_close(r);
        tc_close(w);
    }
}

static int compute_json(void *ud, void **val, size_t *len, uint32_t *ttl)
{
    *len = 4096;
    *val = malloc(*len);
    invoice_json(*val, *len, 42);
    return TC_OK;
}

/* tc_fetch stores through its lease script: compressed the same way. */
static void test_fetch_stores_compressed(void)
{
    tc_cache *w = open_c(TC_COMPRESSION_ZSTD, 0, 1), *r = open_reader(0, 1);
    tc_value *v = NULL;
    char want[4096];
    invoice_json(want, sizeof want, 42);
    CU_ASSERT_EQUAL(tc_fetch(w, "fetched", 60000, compute_json, NULL, &v),
                    TC_OK);
    tc_value_release(v);
    CU_ASSERT_EQUAL(raw_flags("fetched"), TC__FLAG_ZSTD);
    expect_value(r, "fetched", want, sizeof want);
    tc_close(r);
    tc_close(w);
}

/* ---- frames that must be refused ---- */

/* A bad envelope under key: a miss counted in codec_errors, TC_ECODEC
   when strict. */
static void expect_refused(const char *key)
{
    tc_cache *lax = open_reader(64 * 1024, 0),
             *strict = open_reader(64 * 1024, 1);
    tc_value *v = NULL;
    CU_ASSERT_EQUAL(tc_get(lax, key, &v), TC_MISS);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_EQUAL(codec_errors(lax), 1);
    CU_ASSERT_EQUAL(tc_get(strict, key, &v), TC_ECODEC);
    CU_ASSERT_PTR_NULL(v);
    tc_close(strict);
    tc_close(lax);
}

static size_t zstd_of(const void *src, size_t len, unsigned char **out)
{
    *out = malloc(ZSTD_compressBound(len));
    size_t n = ZSTD_compress(*out, ZSTD_compressBound(len), src, len, 3);
    CU_ASSERT_FATAL(!ZSTD_isError(n));
    return n;
}

static size_t lz4_of(const void *src, size_t len, unsigned char **out)
{
    LZ4F_preferences_t p;
    memset(&p, 0, sizeof p);
    p.frameInfo.contentSize = len;
    size_t cap = LZ4F_compressFrameBound(len, &p);
    *out = malloc(cap);
    size_t n = LZ4F_compressFrame(*out, cap, src, len, &p);
    CU_ASSERT_FATAL(!LZ4F_isError(n));
    return n;
}

/* Rewrites the content size of a zstd frame (bomb: it says small and
   expands to more). */
static void zstd_patch_size(unsigned char *f, uint64_t size)
{
    unsigned fhd = f[4], fcs = fhd >> 6, single = (fhd >> 5) & 1;
    static const size_t did[] = {0, 1, 2, 4};
    size_t pos = 5 + !single + did[fhd & 3];
    size_t width = fcs == 0 ? (single ? 1 : 0) : (size_t)1 << fcs;
    CU_ASSERT_FATAL(width >= 2);
    if (width == 2)
        size -= 256;
    for (size_t i = 0; i < width; i++)
        f[pos + i] = (unsigned char)(size >> (8 * i));
}

/* The same for an LZ4 frame, with its header checksum made right. */
static void lz4_patch_size(unsigned char *f, uint64_t size)
{
    CU_ASSERT_FATAL(f[4] & 0x08);
    for (int i = 0; i < 8; i++)
        f[6 + i] = (unsigned char)(size >> (8 * i));
    f[14] = (unsigned char)(XXH32(f + 4, 10, 0) >> 8);
}

/* A bomb of one codec: a frame of 1 MiB of zeros, under keys name and
   name2; make builds it, patch makes it lie about its size. */
static void bomb(const char *name, uint32_t flag,
                 size_t (*make)(const void *, size_t, unsigned char **),
                 void (*patch)(unsigned char *, uint64_t))
{
    size_t big = 1024 * 1024;
    char *zeros = calloc(1, big), name2[16];
    unsigned char *f;
    size_t n = make(zeros, big, &f);
    /* declares 1 MiB, the reader's max_value_bytes is 64 KiB */
    put_env(name, flag, f, n);
    expect_refused(name);
    /* declares 1000 bytes, expands to 1 MiB */
    patch(f, 1000);
    snprintf(name2, sizeof(name2), "%s2", name);
    put_env(name2, flag, f, n);
    expect_refused(name2);
    /* declares 1 GiB: refused before any allocation (that would fail
       with TC_ENOMEM, not TC_ECODEC) */
    tc_value *v = NULL;
    patch(f, 1ull << 30);
    CU_ASSERT_EQUAL(tc__decompress(flag, f, n, 64 * 1024, &v), TC_ECODEC);
    CU_ASSERT_PTR_NULL(v);
    free(f);
    free(zeros);
}

static void test_zstd_bomb(void)
{
    bomb("zbomb", TC__FLAG_ZSTD, zstd_of, zstd_patch_size);
}

static void test_lz4_bomb(void)
{
    bomb("lbomb", TC__FLAG_LZ4, lz4_of, lz4_patch_size);
}

static void test_truncated_and_trailing(void)
{
    char json[8192];
    unsigned char *f, *g;
    invoice_json(json, sizeof json, 7);
    size_t n = zstd_of(json, sizeof json, &f);
    size_t m = lz4_of(json, sizeof json, &g);
    put_env("ztrunc", TC__FLAG_ZSTD, f, n - 5);
    expect_refused("ztrunc");
    put_env("ltrunc", TC__FLAG_LZ4, g, m - 5);
    expect_refused("ltrunc");
    put_env("lhead", TC__FLAG_LZ4, g, 6); /* not even a header */
    expect_refused("lhead");
    /* a frame then garbage: not what a writer stores */
    unsigned char *zz = malloc(n + 3), *ll = malloc(m + 3);
    memcpy(zz, f, n);
    memcpy(zz + n, "xyz", 3);
    memcpy(ll, g, m);
    memcpy(ll + m, "xyz", 3);
    put_env("ztrail", TC__FLAG_ZSTD, zz, n + 3);
    expect_refused("ztrail");
    put_env("ltrail", TC__FLAG_LZ4, ll, m + 3);
    expect_refused("ltrail");
    /* the frames themselves are fine */
    tc_cache *r = open_reader(0, 1);
    put_env("zok", TC__FLAG_ZSTD, f, n);
    put_env("lok", TC__FLAG_LZ4, g, m);
    expect_value(r, "zok", json, sizeof json);
    expect_value(r, "lok", json, sizeof json);
    tc_close(r);
    free(zz);
    free(ll);
    free(f);
    free(g);
}

/* What a reader does with a flag it does not know: this version with a
   made-up bit 3 or the top bit, as 0.1.0 readers do with bits 1 and 2
   (they know bit 0 only). Never the payload as the value. */
static void test_unknown_flags(void)
{
    char json[2048];
    unsigned char *f;
    invoice_json(json, sizeof json, 3);
    size_t n = zstd_of(json, sizeof json, &f);
    put_env("unk8", 8, json, sizeof json);
    expect_refused("unk8");
    put_env("unktop", 0x80000000u | TC__FLAG_ZSTD, f, n);
    expect_refused("unktop");
    put_env("both", TC__FLAG_ZSTD | TC__FLAG_LZ4, f, n); /* two codecs */
    expect_refused("both");
    put_env("absz", TC__FLAG_ABSENT | TC__FLAG_ZSTD, f, n);
    expect_refused("absz");
    put_env("rawz", TC__FLAG_ZSTD, json, sizeof json); /* not a frame */
    expect_refused("rawz");
    /* a 0.1.0 reader knew bit 0 only: what it checks refuses both codecs */
    CU_ASSERT((TC__FLAG_ZSTD & ~TC__FLAG_ABSENT) != 0);
    CU_ASSERT((TC__FLAG_LZ4 & ~TC__FLAG_ABSENT) != 0);
    free(f);
}

int main(void)
{
    static const th_test tests[] = {
        {"zstd_round_trips", test_zstd_round_trips},
        {"lz4_round_trips", test_lz4_round_trips},
        {"incompressible_stored_raw", test_incompressible_stored_raw},
        {"fetch_stores_compressed", test_fetch_stores_compressed},
        {"zstd_bomb", test_zstd_bomb},
        {"lz4_bomb", test_lz4_bomb},
        {"truncated_and_trailing", test_truncated_and_trailing},
        {"unknown_flags", test_unknown_flags},
        {NULL, NULL},
    };
    return th_run_redis("compress", tests);
}
