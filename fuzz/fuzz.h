/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared by the libFuzzer targets (fuzz/fuzz_*.c): an invariant check
 * that aborts, which libFuzzer reports as a crash with its input, and a
 * reader of the data-format.md grammar written from the document alone,
 * so that the library's codec is checked against a second reading.
 */
#ifndef TC_FUZZ_H
#define TC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Invariants of the library, not of the input: a failure is a bug. */
#define FZ_CHECK(cond)                                                        \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,        \
                    __LINE__, #cond);                                         \
            abort();                                                          \
        }                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A cursor over the input; reading past its end yields zeros. */
typedef struct fz_in {
    const uint8_t *p;
    size_t left;
} fz_in;

static inline uint8_t fz_byte(fz_in *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

static inline uint64_t fz_u64(fz_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | fz_byte(in);
    return v;
}

/* The next n bytes (fewer at the end) as a new NUL-terminated string. */
static inline char *fz_str(fz_in *in, size_t n)
{
    if (n > in->left)
        n = in->left;
    char *s = malloc(n + 1);
    FZ_CHECK(s != NULL);
    memcpy(s, in->p, n);
    s[n] = '\0';
    in->p += n;
    in->left -= n;
    return s;
}

/* ---- the reference reader of docs/data-format.md ---- */

typedef struct ref_rd {
    const uint8_t *p;
    size_t left;
} ref_rd;

/* An n-byte big-endian number; -1 when the input ends first. */
static inline int ref_be(ref_rd *r, size_t n, uint64_t *v)
{
    if (r->left < n)
        return -1;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = *v << 8 | r->p[i];
    r->p += n;
    r->left -= n;
    return 0;
}

/* "fixarray, array16 or array32": *n gets how many items it declares. */
static inline int ref_array_n(ref_rd *r, uint64_t *n)
{
    uint64_t tag;
    if (ref_be(r, 1, &tag) != 0)
        return -1;
    if (tag >= 0x90 && tag <= 0x9f)
        *n = tag - 0x90;
    else if (tag == 0xdc || tag == 0xdd) {
        if (ref_be(r, tag == 0xdc ? 2 : 4, n) != 0)
            return -1;
    } else
        return -1;
    return 0;
}

/* ... declaring exactly `items`. */
static inline int ref_array(ref_rd *r, uint64_t items)
{
    uint64_t n;
    return ref_array_n(r, &n) == 0 && n == items ? 0 : -1;
}

/* "positive fixint, uint8/16/32/64, or int8/16/32/64 holding a
   non-negative value". */
static inline int ref_uint(ref_rd *r, uint64_t *v)
{
    uint64_t tag;
    if (ref_be(r, 1, &tag) != 0)
        return -1;
    switch (tag) {
    case 0xcc:
        return ref_be(r, 1, v);
    case 0xcd:
        return ref_be(r, 2, v);
    case 0xce:
        return ref_be(r, 4, v);
    case 0xcf:
        return ref_be(r, 8, v);
    case 0xd0:
        return ref_be(r, 1, v) || *v >= 0x80 ? -1 : 0;
    case 0xd1:
        return ref_be(r, 2, v) || *v >= 0x8000 ? -1 : 0;
    case 0xd2:
        return ref_be(r, 4, v) || *v >= 0x80000000u ? -1 : 0;
    case 0xd3:
        return ref_be(r, 8, v) || *v >> 63 ? -1 : 0;
    default:
        *v = tag;
        return tag <= 0x7f ? 0 : -1;
    }
}

/* "bin8, bin16 or bin32, whose declared length is present in full and at
   most max". */
static inline int ref_bin(ref_rd *r, size_t max, const uint8_t **p,
                          size_t *len)
{
    uint64_t tag, n;
    if (ref_be(r, 1, &tag) != 0 || tag < 0xc4 || tag > 0xc6)
        return -1;
    if (ref_be(r, tag == 0xc4 ? 1 : tag == 0xc5 ? 2 : 4, &n) != 0)
        return -1;
    if (n > max || n > r->left)
        return -1;
    *p = r->p;
    *len = (size_t)n;
    r->p += n;
    r->left -= n;
    return 0;
}

#endif /* TC_FUZZ_H */
