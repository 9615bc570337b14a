/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tc_key: the form of a key, golden values computed here from the known
 * MessagePack bytes with libxxhash itself, which argument lists collide on
 * purpose and which must not, the size limit, bad arguments, and the same
 * key in another process.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <xxhash.h>

#include "harness.h"
#include "tiercache.h"

#define KEY_CAP 160

/* ---- helpers ---- */

/* A key through tc_keyv (tc_key is checked against it below); asserts
   success. */
static void mk(char *out, const char *fn, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = tc_keyv(out, KEY_CAP, fn, fmt, ap);
    va_end(ap);
    CU_ASSERT_EQUAL_FATAL(rc, TC_OK);
}

/* "fn:" + XXH3-128 of the given MessagePack bytes, high half first. */
static void expected(char *out, const char *fn, const void *mp, size_t n)
{
    XXH128_hash_t h = XXH3_128bits(mp, n);

    snprintf(out, KEY_CAP, "%s:%016llx%016llx", fn,
             (unsigned long long)h.high64, (unsigned long long)h.low64);
}

/* The 32 hex digits after the last ':'. */
static const char *hex_part(const char *key)
{
    const char *colon = strrchr(key, ':');

    CU_ASSERT_FATAL(colon != NULL);
    return colon + 1;
}

/* ---- form and golden values ---- */

static void test_key_form(void)
{
    char key[KEY_CAP];
    const char *hex;

    mk(key, "get_user", "isn", (int64_t)42, "x");
    CU_ASSERT(strncmp(key, "get_user:", 9) == 0);
    CU_ASSERT_EQUAL(strlen(key), 9 + 32);
    hex = key + 9;
    for (int i = 0; i < 32; i++)
        CU_ASSERT(isxdigit((unsigned char)hex[i]) &&
                  !isupper((unsigned char)hex[i]));
}

static void test_key_golden_int(void)
{
    static const unsigned char mp[] = {0x91, 0x2a}; /* [42] */
    char key[KEY_CAP], want[KEY_CAP];

    CU_ASSERT_EQUAL(tc_key(key, sizeof(key), "get_user", "i", (int64_t)42),
                    TC_OK);
    expected(want, "get_user", mp, sizeof(mp));
    CU_ASSERT_STRING_EQUAL(key, want);
}

/* The bytes other language bindings must produce for the same key. */
static void test_key_golden_mixed(void)
{
    static const unsigned char mixed[] = {0x93, 0xa2, 'a',  'b', 0xc4,
                                          0x02, 0x01, 0x02, 0xc0};
    static const unsigned char neg[] = {0x92, 0xff, 0xcf, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff};
    static const unsigned char dbl[] = {0x91, 0xcb, 0x3f, 0xf8, 0,
                                        0,    0,    0,    0,    0};
    static const unsigned char empty[] = {0x90};
    static const unsigned char bin[] = {1, 2};
    char key[KEY_CAP], want[KEY_CAP];

    mk(key, "f", "sbn", "ab", bin, sizeof(bin));
    expected(want, "f", mixed, sizeof(mixed));
    CU_ASSERT_STRING_EQUAL(key, want);
    mk(key, "f", "iu", (int64_t)-1, (uint64_t)UINT64_MAX);
    expected(want, "f", neg, sizeof(neg));
    CU_ASSERT_STRING_EQUAL(key, want);
    mk(key, "f", "d", 1.5);
    expected(want, "f", dbl, sizeof(dbl));
    CU_ASSERT_STRING_EQUAL(key, want);
    mk(key, "f", "");
    expected(want, "f", empty, sizeof(empty));
    CU_ASSERT_STRING_EQUAL(key, want);
    mk(key, "f", NULL); /* NULL fmt == "" */
    CU_ASSERT_STRING_EQUAL(key, want);
}

/* str8 (0xd9) and str32 (0xdb) headers: a 40-byte and a 70000-byte
   string. */
static void test_key_golden_long_strings(void)
{
    size_t lens[2] = {40, 70000};
    char key[KEY_CAP], want[KEY_CAP];

    for (int i = 0; i < 2; i++) {
        size_t n = lens[i], head = n < 256 ? 3 : 6;
        char *s = malloc(n + 1);
        unsigned char *mp = malloc(head + n);

        CU_ASSERT_FATAL(s != NULL && mp != NULL);
        memset(s, 'q', n);
        s[n] = '\0';
        mp[0] = 0x91;
        mp[1] = n < 256 ? 0xd9 : 0xdb;
        for (size_t b = 2; b < head; b++)
            mp[b] = (unsigned char)(n >> (8 * (head - 1 - b)));
        memcpy(mp + head, s, n);
        mk(key, "long", "s", s);
        expected(want, "long", mp, head + n);
        CU_ASSERT_STRING_EQUAL(key, want);
        free(mp);
        free(s);
    }
}

static void test_keyv_matches_key(void)
{
    char a[KEY_CAP], b[KEY_CAP];

    CU_ASSERT_EQUAL(tc_key(a, sizeof(a), "fn", "isd", (int64_t)-7, "z", 0.25),
                    TC_OK);
    mk(b, "fn", "isd", (int64_t)-7, "z", 0.25);
    CU_ASSERT_STRING_EQUAL(a, b);
}

/* ---- what collides and what does not ---- */

static void test_key_deterministic(void)
{
    char a[KEY_CAP], b[KEY_CAP];
    char *dup = strdup("same");

    CU_ASSERT_FATAL(dup != NULL);
    mk(a, "fn", "sib", "same", (int64_t)5, "xy", (size_t)2);
    mk(b, "fn", "sib", dup, (int64_t)5, "xy", (size_t)2);
    CU_ASSERT_STRING_EQUAL(a, b); /* the bytes count, not the pointer */
    free(dup);
}

static void test_key_type_matters(void)
{
    char i1[KEY_CAP], s1[KEY_CAP], d1[KEY_CAP];

    mk(i1, "fn", "i", (int64_t)1);
    mk(s1, "fn", "s", "1");
    mk(d1, "fn", "d", 1.0);
    CU_ASSERT_STRING_NOT_EQUAL(i1, s1);
    CU_ASSERT_STRING_NOT_EQUAL(i1, d1);
    CU_ASSERT_STRING_NOT_EQUAL(s1, d1);
}

/* MessagePack has one integer family: a non-negative int64 is packed
   exactly like the same uint64, so 'i' 1 and 'u' 1 are the SAME key (as
   in every other MessagePack binding). Negative ones differ. */
static void test_key_int_uint_same(void)
{
    char a[KEY_CAP], b[KEY_CAP];

    mk(a, "fn", "i", (int64_t)1);
    mk(b, "fn", "u", (uint64_t)1);
    CU_ASSERT_STRING_EQUAL(a, b);
    mk(a, "fn", "i", (int64_t)INT64_MAX);
    mk(b, "fn", "u", (uint64_t)INT64_MAX);
    CU_ASSERT_STRING_EQUAL(a, b);
    mk(a, "fn", "i", (int64_t)-1);
    mk(b, "fn", "u", (uint64_t)UINT64_MAX);
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

/* Length-prefixed strings inside an array of known length: moving a
   separator or a boundary changes the key. */
static void test_key_boundaries(void)
{
    char a[KEY_CAP], b[KEY_CAP], c[KEY_CAP];

    mk(a, "fn", "ss", "a b", "c");
    mk(b, "fn", "ss", "a", "b c");
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    mk(a, "fn", "s", "ab");
    mk(b, "fn", "ss", "a", "b");
    mk(c, "fn", "sn", "ab");
    CU_ASSERT_STRING_NOT_EQUAL(a, b);
    CU_ASSERT_STRING_NOT_EQUAL(a, c);
}

/* A NULL string is nil, so 's' NULL and 'n' are the same key; nil and ""
   are not. */
static void test_key_nil(void)
{
    char nil_s[KEY_CAP], nil_n[KEY_CAP], empty[KEY_CAP];

    mk(nil_s, "fn", "s", (const char *)NULL);
    mk(nil_n, "fn", "n");
    mk(empty, "fn", "s", "");
    CU_ASSERT_STRING_EQUAL(nil_s, nil_n);
    CU_ASSERT_STRING_NOT_EQUAL(nil_s, empty);
}

static void test_key_bin_vs_str(void)
{
    char b[KEY_CAP], s[KEY_CAP], b0[KEY_CAP], bnull[KEY_CAP];

    mk(b, "fn", "b", "abc", (size_t)3);
    mk(s, "fn", "s", "abc");
    CU_ASSERT_STRING_NOT_EQUAL(b, s);
    mk(b0, "fn", "b", "abc", (size_t)0);
    mk(bnull, "fn", "b", (const void *)NULL, (size_t)0);
    CU_ASSERT_STRING_EQUAL(b0, bnull); /* both an empty bin */
    mk(s, "fn", "s", "");
    CU_ASSERT_STRING_NOT_EQUAL(b0, s);
}

/* The name is the prefix only, not hashed: f(1) and g(1) share the hex. */
static void test_key_fn_is_prefix(void)
{
    char f[KEY_CAP], g[KEY_CAP], colon[KEY_CAP];

    mk(f, "f", "i", (int64_t)1);
    mk(g, "g", "i", (int64_t)1);
    mk(colon, "mod:fn", "i", (int64_t)1);
    CU_ASSERT_STRING_NOT_EQUAL(f, g);
    CU_ASSERT_STRING_EQUAL(hex_part(f), hex_part(g));
    CU_ASSERT(strncmp(colon, "mod:fn:", 7) == 0);
    CU_ASSERT_STRING_EQUAL(hex_part(colon), hex_part(f));
}

/* ---- limits and bad arguments ---- */

static void test_key_cap(void)
{
    char key[KEY_CAP];

    /* "fn" ":" 32 hex NUL = 36 */
    CU_ASSERT_EQUAL(tc_key(key, 36, "fn", "i", (int64_t)1), TC_OK);
    CU_ASSERT_EQUAL(strlen(key), 35);
    memset(key, 'x', sizeof(key));
    CU_ASSERT_EQUAL(tc_key(key, 35, "fn", "i", (int64_t)1), TC_ETOOBIG);
    CU_ASSERT_EQUAL(key[0], '\0');
    CU_ASSERT_EQUAL(key[1], 'x');
    memset(key, 'x', sizeof(key));
    CU_ASSERT_EQUAL(tc_key(key, 0, "fn", "i", (int64_t)1), TC_ETOOBIG);
    CU_ASSERT_EQUAL(key[0], 'x'); /* cap 0: not a byte written */
}

static void test_key_bad_fmt(void)
{
    char key[KEY_CAP];

    key[0] = 'x';
    CU_ASSERT_EQUAL(tc_key(key, sizeof(key), "fn", "iz", (int64_t)1, 2),
                    TC_EINVAL);
    CU_ASSERT_EQUAL(key[0], '\0');
    CU_ASSERT_EQUAL(tc_key(key, sizeof(key), "fn", "I", (int64_t)1),
                    TC_EINVAL);
    CU_ASSERT_EQUAL(tc_key(key, sizeof(key), "fn", " "), TC_EINVAL);
}

static void test_key_bad_args(void)
{
    char key[KEY_CAP];

    CU_ASSERT_EQUAL(tc_key(NULL, 64, "fn", "i", (int64_t)1), TC_EINVAL);
    CU_ASSERT_EQUAL(tc_key(key, sizeof(key), NULL, "i", (int64_t)1),
                    TC_EINVAL);
    key[0] = 'x';
    CU_ASSERT_EQUAL(tc_key(key, sizeof(key), "", "i", (int64_t)1), TC_EINVAL);
    CU_ASSERT_EQUAL(key[0], '\0');
    CU_ASSERT_EQUAL(
        tc_key(key, sizeof(key), "fn", "b", (const void *)NULL, (size_t)1),
        TC_EINVAL);
}

/* ---- another process ---- */

static void test_key_other_process(void)
{
    char mine[KEY_CAP], theirs[KEY_CAP] = "";
    size_t got = 0;
    ssize_t n;
    int fds[2], status = -1;
    pid_t pid;

    mk(mine, "get_invoice", "isb", (int64_t)1234, "eur", "\x00\x01",
       (size_t)2);
    CU_ASSERT_FATAL(pipe(fds) == 0);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        char key[KEY_CAP];
        int rc = tc_key(key, sizeof(key), "get_invoice", "isb", (int64_t)1234,
                        "eur", "\x00\x01", (size_t)2);
        size_t len = strlen(key) + 1;

        close(fds[0]);
        _exit(rc == TC_OK && write(fds[1], key, len) == (ssize_t)len ? 0 : 1);
    }
    close(fds[1]);
    while (got < sizeof(theirs) - 1 &&
           (n = read(fds[0], theirs + got, sizeof(theirs) - 1 - got)) > 0)
        got += (size_t)n;
    close(fds[0]);
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_STRING_EQUAL(theirs, mine);
}

int main(void)
{
    static const th_test tests[] = {
        {"key_form", test_key_form},
        {"key_golden_int", test_key_golden_int},
        {"key_golden_mixed", test_key_golden_mixed},
        {"key_golden_long_strings", test_key_golden_long_strings},
        {"keyv_matches_key", test_keyv_matches_key},
        {"key_deterministic", test_key_deterministic},
        {"key_type_matters", test_key_type_matters},
        {"key_int_uint_same", test_key_int_uint_same},
        {"key_boundaries", test_key_boundaries},
        {"key_nil", test_key_nil},
        {"key_bin_vs_str", test_key_bin_vs_str},
        {"key_fn_is_prefix", test_key_fn_is_prefix},
        {"key_cap", test_key_cap},
        {"key_bad_fmt", test_key_bad_fmt},
        {"key_bad_args", test_key_bad_args},
        {"key_other_process", test_key_other_process},
        {NULL, NULL}};

    return th_run("key", tests);
}
