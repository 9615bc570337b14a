/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The value envelope: round trips, the exact bytes, and decoding of
 * truncated, foreign, hostile and randomly corrupted input. Every decode
 * of bad bytes reads from an exact-size heap copy, so ASan and valgrind
 * catch a read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "harness.h"
#include "internal.h"

#define MIB ((size_t)1 << 20)

/* ---- helpers ---- */

static char *dup_exact(const void *p, size_t n)
{
    char *d = malloc(n > 0 ? n : 1);

    CU_ASSERT_FATAL(d != NULL);
    if (n > 0)
        memcpy(d, p, n);
    return d;
}

/* The status of decoding bytes[0..n) from an exact-size copy. */
static int decode_rc(const void *bytes, size_t n, size_t max_payload)
{
    tc__envelope e;
    char *buf = dup_exact(bytes, n);
    int rc = tc__env_decode(buf, n, max_payload, &e);

    free(buf);
    return rc;
}

static size_t encode_ok(const tc__envelope *e, char **out)
{
    size_t len = 0;

    CU_ASSERT_FATAL(tc__env_encode(e, out, &len) == TC_OK);
    CU_ASSERT_FATAL(*out != NULL);
    return len;
}

/* Encodes e, decodes it back and checks every field, and that the payload
   is the tail of the encoded buffer (zero-copy). */
static void roundtrip(const tc__envelope *e, size_t max_payload)
{
    tc__envelope d;
    char *buf;
    size_t len = encode_ok(e, &buf);

    CU_ASSERT_EQUAL_FATAL(tc__env_decode(buf, len, max_payload, &d), TC_OK);
    CU_ASSERT_EQUAL(d.flags, e->flags);
    CU_ASSERT_EQUAL(d.expires_at_ms, e->expires_at_ms);
    CU_ASSERT_EQUAL(d.delta_ms, e->delta_ms);
    CU_ASSERT_EQUAL(d.wver, e->wver);
    CU_ASSERT_EQUAL_FATAL(d.payload_len, e->payload_len);
    /* zero-copy: the payload is in buf, followed by the version if any */
    CU_ASSERT(d.payload == (const unsigned char *)buf + len - d.payload_len -
                               (e->wver ? TC__WVER_BYTES : 0));
    CU_ASSERT(!e->wver || tc__wver_is(buf, len, e->wver));
    if (e->payload_len > 0)
        CU_ASSERT(memcmp(d.payload, e->payload, e->payload_len) == 0);
    tc__free(buf);
}

static const tc__envelope small_env = {
    3, 1700000000000ULL, 250, (const unsigned char *)"hello", 5, 0};

/* ---- round trips and exact bytes ---- */

static void test_roundtrip_empty(void)
{
    tc__envelope e = {0, 0, 0, NULL, 0, 0};

    roundtrip(&e, 0);
}

static void test_roundtrip_small(void)
{
    roundtrip(&small_env, 1024);
}

static void test_roundtrip_1mib(void)
{
    unsigned char *p = malloc(MIB);
    tc__envelope e = {1, 42, 7, p, MIB, 0};
    char *buf;
    size_t len;

    CU_ASSERT_FATAL(p != NULL);
    for (size_t i = 0; i < MIB; i++)
        p[i] = (unsigned char)(i * 31 + 7);
    roundtrip(&e, MIB);
    len = encode_ok(&e, &buf);
    CU_ASSERT_EQUAL(len, MIB + 10); /* 95 01 01 2a 07 c6 xx xx xx xx */
    CU_ASSERT_EQUAL(decode_rc(buf, len, MIB - 1), TC_ECODEC);
    tc__free(buf);
    free(p);
}

static void test_roundtrip_max_fields(void)
{
    tc__envelope e = {UINT32_MAX, UINT64_MAX,
                      UINT32_MAX, (const unsigned char *)"x",
                      1,          UINT64_MAX};

    roundtrip(&e, 1);
}

/* The format other languages read: pin the bytes. */
static void test_encode_exact_bytes(void)
{
    static const unsigned char want[] = {0x95, 0x01, 0x00, 0x00, 0x00,
                                         0xc4, 0x02, 'h',  'i'};
    tc__envelope e = {0, 0, 0, (const unsigned char *)"hi", 2, 0};
    char *buf;
    size_t len = encode_ok(&e, &buf);

    CU_ASSERT_EQUAL(len, sizeof(want));
    CU_ASSERT(memcmp(buf, want, sizeof(want)) == 0);
    tc__free(buf);
}

/* The write version: a sixth item, always 0xcf + 8 bytes, last, so that
   GETRANGE key -9 -1 reads it alone. */
static void test_write_version(void)
{
    static const unsigned char want[] = {0x96, 0x01, 0x00, 0x00, 0x00, 0xc4,
                                         0x02, 'h',  'i',  0xcf, 0x00, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x05};
    tc__envelope e = {0, 0, 0, (const unsigned char *)"hi", 2, 5}, d;
    char *buf;
    size_t len = encode_ok(&e, &buf);

    CU_ASSERT_EQUAL(len, sizeof(want));
    CU_ASSERT(memcmp(buf, want, sizeof(want)) == 0);
    CU_ASSERT(tc__wver_is(buf, len, 5));
    CU_ASSERT(!tc__wver_is(buf, len, 6));
    CU_ASSERT(!tc__wver_is(buf, len, 0)); /* 0 is "none": never matches */
    CU_ASSERT(!tc__wver_is(buf, 8, 5));   /* shorter than a version */
    tc__free(buf);

    /* another writer may pack it shorter: read, but not a match for the
       tail check, so a revalidation drops such an entry */
    static const unsigned char small[] = {0x96, 0x01, 0x00, 0x00, 0x00,
                                          0xc4, 0x02, 'h',  'i',  0x05};
    buf = dup_exact(small, sizeof(small));
    CU_ASSERT_EQUAL(tc__env_decode(buf, sizeof(small), 16, &d), TC_OK);
    CU_ASSERT_EQUAL(d.wver, 5);
    CU_ASSERT(!tc__wver_is(buf, sizeof(small), 5));
    free(buf);

    /* seven items, a negative version, a string version: not ours */
    static const unsigned char seven[] = {0x97, 0x01, 0x00, 0x00, 0x00, 0xc4,
                                          0x02, 'h',  'i',  0x05, 0x05};
    static const unsigned char neg[] = {0x96, 0x01, 0x00, 0x00, 0x00,
                                        0xc4, 0x02, 'h',  'i',  0xff};
    static const unsigned char str[] = {0x96, 0x01, 0x00, 0x00, 0x00, 0xc4,
                                        0x02, 'h',  'i',  0xa1, 'v'};
    CU_ASSERT_EQUAL(decode_rc(seven, sizeof(seven), 16), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(neg, sizeof(neg), 16), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(str, sizeof(str), 16), TC_ECODEC);
    /* five items and trailing bytes that look like a version: refused */
    static const unsigned char trail[] = {0x95, 0x01, 0x00, 0x00, 0x00,
                                          0xc4, 0x02, 'h',  'i',  0x05};
    CU_ASSERT_EQUAL(decode_rc(trail, sizeof(trail), 16), TC_ECODEC);
}

static void test_encode_bad_args(void)
{
    tc__envelope e = {0, 0, 0, NULL, 5, 0};
    char *out = (char *)&e;
    size_t len = 9;

    CU_ASSERT_EQUAL(tc__env_encode(NULL, &out, &len), TC_EINVAL);
    CU_ASSERT_EQUAL(tc__env_encode(&e, &out, &len), TC_EINVAL);
    e.payload = (const unsigned char *)"abcde";
    CU_ASSERT_EQUAL(tc__env_encode(&e, NULL, &len), TC_EINVAL);
    CU_ASSERT_EQUAL(tc__env_encode(&e, &out, NULL), TC_EINVAL);
#if SIZE_MAX > UINT32_MAX
    /* bin32 cannot say it; the payload is never read */
    e.payload_len = (size_t)UINT32_MAX + 1;
    CU_ASSERT_EQUAL(tc__env_encode(&e, &out, &len), TC_ETOOBIG);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(len, 0);
#endif
}

static void test_encode_enomem(void)
{
    char *out = NULL;
    size_t len = 0;

    tc__alloc_fail_after(0);
    CU_ASSERT_EQUAL(tc__env_encode(&small_env, &out, &len), TC_ENOMEM);
    tc__alloc_fail_after(-1);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_EQUAL(len, 0);
}

/* What another MessagePack library may write: wide headers, signed ints
   holding non-negative values, bin16 for a short payload. */
static void test_decode_foreign_writer(void)
{
    static const unsigned char wide[] = {
        0xdc, 0x00, 0x05,                         /* array16 */
        0xd0, 0x01,                               /* int8 1 */
        0xd1, 0x00, 0x07,                         /* int16 7 */
        0xcf, 0,    0,    0,   0,  0, 0, 0, 0x2a, /* uint64 */
        0xd3, 0,    0,    0,   0,  0, 0, 0, 0x05, /* int64 */
        0xc5, 0x00, 0x02, 'h', 'i'};              /* bin16 */
    static const unsigned char a32[] = {
        0xdd, 0,    0, 0, 5, 0x01, 0xd2, 0, 0, 0, 9, 0xcc,
        0xff, 0xce, 0, 1, 0, 0,    0xc6, 0, 0, 0, 0};
    tc__envelope e;

    CU_ASSERT_EQUAL_FATAL(
        tc__env_decode((const char *)wide, sizeof(wide), 16, &e), TC_OK);
    CU_ASSERT_EQUAL(e.flags, 7);
    CU_ASSERT_EQUAL(e.expires_at_ms, 42);
    CU_ASSERT_EQUAL(e.delta_ms, 5);
    CU_ASSERT_EQUAL(e.payload_len, 2);
    CU_ASSERT(e.payload == wide + sizeof(wide) - 2);
    CU_ASSERT_EQUAL_FATAL(
        tc__env_decode((const char *)a32, sizeof(a32), 16, &e), TC_OK);
    CU_ASSERT_EQUAL(e.flags, 9);
    CU_ASSERT_EQUAL(e.expires_at_ms, 255);
    CU_ASSERT_EQUAL(e.delta_ms, 65536);
    CU_ASSERT_EQUAL(e.payload_len, 0);
}

/* ---- bad input ---- */

static void test_decode_every_truncation(void)
{
    unsigned char big[300];
    tc__envelope envs[3] = {
        small_env,
        {UINT32_MAX, UINT64_MAX, UINT32_MAX, big, sizeof(big), 7},
        {0, 0, 0, NULL, 0, 0}};

    memset(big, 0xab, sizeof(big));
    for (int k = 0; k < 3; k++) {
        char *buf;
        size_t len = encode_ok(&envs[k], &buf);

        for (size_t n = 0; n < len; n++)
            CU_ASSERT_EQUAL(decode_rc(buf, n, SIZE_MAX), TC_ECODEC);
        CU_ASSERT_EQUAL(decode_rc(buf, len, SIZE_MAX), TC_OK);
        tc__free(buf);
    }
}

static void test_decode_trailing_bytes(void)
{
    char *buf, *two;
    size_t len = encode_ok(&small_env, &buf);

    two = malloc(2 * len);
    CU_ASSERT_FATAL(two != NULL);
    memcpy(two, buf, len);
    memcpy(two + len, buf, len);
    CU_ASSERT_EQUAL(decode_rc(two, len + 1, SIZE_MAX), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(two, 2 * len, SIZE_MAX), TC_ECODEC);
    free(two);
    tc__free(buf);
}

static void test_decode_foreign_bytes(void)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"hello", 5},
        {"\"hello\"", 7},
        {"{\"v\":1,\"p\":\"hi\"}", 16},
        {"\x81\xa1"
         "a\x01",
         4},                 /* msgpack {"a": 1} */
        {"\x2a", 1},         /* msgpack 42 */
        {"\xcd\x01\x00", 3}, /* msgpack 256 */
        {"\xc0", 1},         /* nil */
        {"\x95\xa1"
         "1\xa1"
         "2\xa1"
         "3\xa1"
         "4\xa1"
         "5",
         11},                                        /* strs */
        {"\x94\x01\x00\x00\x00", 5},                 /* four items */
        {"\x97\x01\x00\x00\x00\xc4\x00\x00\x00", 9}, /* seven items */
        {"", 0},
    };
    tc__envelope e;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CU_ASSERT_EQUAL(decode_rc(cases[i].bytes, cases[i].len, SIZE_MAX),
                        TC_ECODEC);
    CU_ASSERT_EQUAL(tc__env_decode(NULL, 0, SIZE_MAX, &e), TC_ECODEC);
    CU_ASSERT_EQUAL(tc__env_decode("x", 1, SIZE_MAX, NULL), TC_EINVAL);
}

/* msgpack-c's unpacker would allocate 2^32-1 objects (~100 GB) for this
   header; the checker must refuse it first. Run under ASan/valgrind. */
static void test_decode_huge_headers(void)
{
    static const unsigned char a32[] = {0xdd, 0xff, 0xff, 0xff,
                                        0xff, 0x01, 0x02, 0x03};
    static const unsigned char a16[] = {0xdc, 0xff, 0xff, 0x01, 0x02};
    static const unsigned char m32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0x01};
    /* the body of a valid envelope after the lying header */
    static const unsigned char body[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01,
                                         0x00, 0x00, 0x00, 0xc4, 0x00};
    static const unsigned char inner[] = {0x95, 0x01, 0xdd, 0xff,
                                          0xff, 0xff, 0xff, 0x00};

    CU_ASSERT_EQUAL(decode_rc(a32, sizeof(a32), SIZE_MAX), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(a16, sizeof(a16), SIZE_MAX), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(m32, sizeof(m32), SIZE_MAX), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(inner, sizeof(inner), SIZE_MAX), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(body, sizeof(body), SIZE_MAX), TC_ECODEC);
}

static void test_decode_nested(void)
{
    static const unsigned char in_field[] = {0x95, 0x01, 0x91, 0x00,
                                             0x00, 0x00, 0xc4, 0x00};
    static const unsigned char as_payload[] = {0x95, 0x01, 0x00, 0x00,
                                               0x00, 0x95, 0x01, 0x00,
                                               0x00, 0x00, 0xc4, 0x00};
    static const unsigned char map_field[] = {0x95, 0x01, 0x00, 0x80,
                                              0x00, 0xc4, 0x00};

    CU_ASSERT_EQUAL(decode_rc(in_field, sizeof(in_field), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(as_payload, sizeof(as_payload), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(map_field, sizeof(map_field), 64), TC_ECODEC);
}

static void test_decode_bin_overlong(void)
{
    static const unsigned char b32[] = {0x95, 0x01, 0x00, 0x00, 0x00, 0xc6,
                                        0xff, 0xff, 0xff, 0xff, 'a',  'b'};
    static const unsigned char b8[] = {0x95, 0x01, 0x00, 0x00, 0x00,
                                       0xc4, 0x05, 'a',  'b'};
    static const unsigned char b16[] = {0x95, 0x01, 0x00, 0x00, 0x00,
                                        0xc5, 0x01, 0x00, 'a'};

    CU_ASSERT_EQUAL(decode_rc(b32, sizeof(b32), SIZE_MAX), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(b8, sizeof(b8), SIZE_MAX), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(b16, sizeof(b16), SIZE_MAX), TC_ECODEC);
}

/* Only bin carries a payload: str and ext are someone else's value. */
static void test_decode_payload_not_bin(void)
{
    static const unsigned char str[] = {0x95, 0x01, 0x00, 0x00,
                                        0x00, 0xa2, 'h',  'i'};
    static const unsigned char ext[] = {0x95, 0x01, 0x00, 0x00,
                                        0x00, 0xd4, 0x01, 0x00};

    CU_ASSERT_EQUAL(decode_rc(str, sizeof(str), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(ext, sizeof(ext), 64), TC_ECODEC);
}

static void test_decode_version(void)
{
    unsigned char env[] = {0x95, 0x02, 0x00, 0x00, 0x00, 0xc4, 0x00};
    unsigned char wide[] = {0x95, 0xcc, 0xff, 0x00, 0x00, 0x00, 0xc4, 0x00};

    CU_ASSERT_EQUAL(decode_rc(env, sizeof(env), 64), TC_ECODEC);
    env[1] = 0x00;
    CU_ASSERT_EQUAL(decode_rc(env, sizeof(env), 64), TC_ECODEC);
    env[1] = 0x01;
    CU_ASSERT_EQUAL(decode_rc(env, sizeof(env), 64), TC_OK);
    CU_ASSERT_EQUAL(decode_rc(wide, sizeof(wide), 64), TC_ECODEC);
}

/* Negative or non-integer fields, and integers too wide for their field. */
static void test_decode_bad_fields(void)
{
    static const unsigned char neg_fix[] = {0x95, 0x01, 0xe0, 0x00,
                                            0x00, 0xc4, 0x00};
    static const unsigned char neg_i8[] = {0x95, 0x01, 0x00, 0x00,
                                           0xd0, 0xff, 0xc4, 0x00};
    static const unsigned char neg_i64[] = {
        0x95, 0x01, 0x00, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xc4, 0x00};
    static const unsigned char dbl[] = {0x95, 0x01, 0x00, 0xcb, 0x3f,
                                        0xf0, 0,    0,    0,    0,
                                        0,    0,    0x00, 0xc4, 0x00};
    static const unsigned char flags33[] = {
        0x95, 0x01, 0xcf, 0, 0, 0, 0x01, 0, 0, 0, 0, 0x00, 0x00, 0xc4, 0x00};
    static const unsigned char delta33[] = {
        0x95, 0x01, 0x00, 0x00, 0xcf, 0, 0, 0, 0x01, 0, 0, 0, 0, 0xc4, 0x00};
    static const unsigned char bool_f[] = {0x95, 0x01, 0xc3, 0x00,
                                           0x00, 0xc4, 0x00};
    static const unsigned char flags32[] = {0x95, 0x01, 0xce, 0xff, 0xff, 0xff,
                                            0xff, 0x00, 0x00, 0xc4, 0x00};

    CU_ASSERT_EQUAL(decode_rc(neg_fix, sizeof(neg_fix), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(neg_i8, sizeof(neg_i8), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(neg_i64, sizeof(neg_i64), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(dbl, sizeof(dbl), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(flags33, sizeof(flags33), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(delta33, sizeof(delta33), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(bool_f, sizeof(bool_f), 64), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(flags32, sizeof(flags32), 64), TC_OK);
}

static void test_decode_max_payload(void)
{
    tc__envelope e = {0, 0, 0, (const unsigned char *)"0123456789", 10, 0};
    char *buf;
    size_t len = encode_ok(&e, &buf);

    CU_ASSERT_EQUAL(decode_rc(buf, len, 9), TC_ECODEC);
    CU_ASSERT_EQUAL(decode_rc(buf, len, 10), TC_OK);
    CU_ASSERT_EQUAL(decode_rc(buf, len, 0), TC_ECODEC);
    tc__free(buf);
}

static void test_decode_failure_clears_env(void)
{
    tc__envelope e = small_env;

    CU_ASSERT_EQUAL(tc__env_decode("hello", 5, 64, &e), TC_ECODEC);
    CU_ASSERT_PTR_NULL(e.payload);
    CU_ASSERT_EQUAL(e.payload_len, 0);
}

/* ---- random corruption ---- */

/* xorshift64*: the same sequence on every platform, unlike rand(). */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}

/* Flips 1-4 random bytes; one time in four also cuts the tail. */
static size_t mutate(unsigned char *b, size_t len, uint64_t *s)
{
    int flips = 1 + (int)(rng_next(s) % 4);

    for (int i = 0; i < flips; i++)
        b[rng_next(s) % len] ^= (unsigned char)(1 + rng_next(s) % 255);
    if (rng_next(s) % 4 == 0)
        len = (size_t)(rng_next(s) % len);
    return len;
}

/* Decodes one mutation from an exact-size copy; 1 when it decoded. */
static int decode_mutant(const unsigned char *b, size_t n)
{
    tc__envelope e;
    char *buf = dup_exact(b, n);
    int rc = tc__env_decode(buf, n, 256, &e);
    uintptr_t lo = (uintptr_t)buf, p = (uintptr_t)e.payload;

    CU_ASSERT(rc == TC_OK || rc == TC_ECODEC);
    if (rc == TC_OK)
        CU_ASSERT(p >= lo && e.payload_len <= n &&
                  p - lo <= n - e.payload_len);
    free(buf);
    return rc == TC_OK;
}

static void test_decode_random_flips(void)
{
    unsigned char payload[40], work[128];
    tc__envelope e = {0x12345, 1700000000000ULL, 300,
                      payload, sizeof(payload),  0x0102030405060708ULL};
    uint64_t seed = 0x7c0de7c0de7c0deULL;
    int ok = 0, bad = 0;
    char *buf;
    size_t len;

    memset(payload, 'p', sizeof(payload));
    len = encode_ok(&e, &buf);
    CU_ASSERT_FATAL(len <= sizeof(work));
    for (int i = 0; i < 20000; i++) {
        size_t n;

        memcpy(work, buf, len);
        n = mutate(work, len, &seed);
        if (decode_mutant(work, n))
            ok++;
        else
            bad++;
    }
    /* both outcomes occur, so the loop exercises both paths */
    CU_ASSERT(ok > 0);
    CU_ASSERT(bad > 0);
    tc__free(buf);
}

int main(void)
{
    static const th_test tests[] = {
        {"roundtrip_empty", test_roundtrip_empty},
        {"roundtrip_small", test_roundtrip_small},
        {"roundtrip_1mib", test_roundtrip_1mib},
        {"roundtrip_max_fields", test_roundtrip_max_fields},
        {"encode_exact_bytes", test_encode_exact_bytes},
        {"write_version", test_write_version},
        {"encode_bad_args", test_encode_bad_args},
        {"encode_enomem", test_encode_enomem},
        {"decode_foreign_writer", test_decode_foreign_writer},
        {"decode_every_truncation", test_decode_every_truncation},
        {"decode_trailing_bytes", test_decode_trailing_bytes},
        {"decode_foreign_bytes", test_decode_foreign_bytes},
        {"decode_huge_headers", test_decode_huge_headers},
        {"decode_nested", test_decode_nested},
        {"decode_bin_overlong", test_decode_bin_overlong},
        {"decode_payload_not_bin", test_decode_payload_not_bin},
        {"decode_version", test_decode_version},
        {"decode_bad_fields", test_decode_bad_fields},
        {"decode_max_payload", test_decode_max_payload},
        {"decode_failure_clears_env", test_decode_failure_clears_env},
        {"decode_random_flips", test_decode_random_flips},
        {NULL, NULL}};

    return th_run("codec", tests);
}
