/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tc_key with a format and arguments taken from the input.
 *
 * A variadic call must pass what the format reads, or the harness, not
 * the library, has undefined behaviour. So the input picks a sequence of
 * up to three argument types (i, u, d, s, b) and a generated switch makes
 * the one call with exactly those types; the format is that sequence
 * with 'n' (no argument) inserted where the input says, and sometimes a
 * letter tc_key must refuse (it then reads no argument at all).
 *
 * Checked against a reference built from the document (MessagePack array
 * packed whole with msgpack-c, XXH3-128, "fn:<32 hex>"): the same return
 * code (TC_EINVAL, then TC_ETOOBIG, else TC_OK) and the same key; the key
 * is NUL-terminated within cap, nothing is written past cap (out is
 * exactly cap bytes on the heap), a failure leaves "" when cap > 0; also
 * with fn pointing into out, which tc_cached does.
 */
#include <msgpack.h>
#include <xxhash.h>

#include "fuzz.h"
#include "internal.h"

#define SLOTS 3

typedef struct args {
    int64_t i[SLOTS];
    uint64_t u[SLOTS];
    double d[SLOTS];
    const char *s[SLOTS];
    const void *b[SLOTS];
    size_t bn[SLOTS];
} args;

/* clang-format off */
#define A_i(k) g->i[k]
#define A_u(k) g->u[k]
#define A_d(k) g->d[k]
#define A_s(k) g->s[k]
#define A_b(k) g->b[k], g->bn[k]
/* Three copies: a macro is not expanded again inside its own expansion. */
#define EACH_A(M, ...) M(i, 0, __VA_ARGS__) M(u, 1, __VA_ARGS__) \
    M(d, 2, __VA_ARGS__) M(s, 3, __VA_ARGS__) M(b, 4, __VA_ARGS__)
#define EACH_B(M, ...) M(i, 0, __VA_ARGS__) M(u, 1, __VA_ARGS__) \
    M(d, 2, __VA_ARGS__) M(s, 3, __VA_ARGS__) M(b, 4, __VA_ARGS__)
#define EACH_C(M, ...) M(i, 0, __VA_ARGS__) M(u, 1, __VA_ARGS__) \
    M(d, 2, __VA_ARGS__) M(s, 3, __VA_ARGS__) M(b, 4, __VA_ARGS__)
#define C1(a, ai, _) \
    case 100 + ai: return tc_key(out, cap, fn, fmt, A_##a(0));
#define C2(b, bi, a, ai) \
    case 200 + ai * 5 + bi: return tc_key(out, cap, fn, fmt, A_##a(0), \
                                          A_##b(1));
#define R2(a, ai, _) EACH_B(C2, a, ai)
#define C3(c, ci, a, ai, b, bi) \
    case 300 + ai * 25 + bi * 5 + ci: \
        return tc_key(out, cap, fn, fmt, A_##a(0), A_##b(1), A_##c(2));
#define R3B(b, bi, a, ai) EACH_C(C3, a, ai, b, bi)
#define R3A(a, ai, _) EACH_B(R3B, a, ai)
/* clang-format on */

static const char kinds[] = "iudsb";

/* The one call whose arguments have the types of kind[0..n). */
static int call_key(char *out, size_t cap, const char *fn, const char *fmt,
                    const int *kind, int n, const args *g)
{
    int code = n == 0   ? 0
               : n == 1 ? 100 + kind[0]
               : n == 2 ? 200 + kind[0] * 5 + kind[1]
                        : 300 + kind[0] * 25 + kind[1] * 5 + kind[2];
    switch (code) {
    case 0:
        return tc_key(out, cap, fn, fmt);
        EACH_A(C1, _)
        EACH_A(R2, _)
        EACH_A(R3A, _)
    }
    abort();
}

/* The reference key, or its error. */
static int ref_key(char *out, size_t cap, const char *fn, const char *fmt,
                   const args *g)
{
    if (!fn || !*fn || strspn(fmt, "iudsbn") != strlen(fmt))
        return TC_EINVAL;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int k = 0, rc = TC_OK;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, strlen(fmt));
    for (const char *f = fmt; *f && rc == TC_OK; f++) {
        switch (*f) {
        case 'n':
            msgpack_pack_nil(&pk);
            continue;
        case 'i':
            msgpack_pack_int64(&pk, g->i[k]);
            break;
        case 'u':
            msgpack_pack_uint64(&pk, g->u[k]);
            break;
        case 'd':
            msgpack_pack_double(&pk, g->d[k]);
            break;
        case 's':
            if (!g->s[k]) {
                msgpack_pack_nil(&pk);
                break;
            }
            msgpack_pack_str(&pk, strlen(g->s[k]));
            msgpack_pack_str_body(&pk, g->s[k], strlen(g->s[k]));
            break;
        case 'b':
            if ((!g->b[k] && g->bn[k]) || g->bn[k] > UINT32_MAX) {
                rc = TC_EINVAL;
                break;
            }
            msgpack_pack_bin(&pk, g->bn[k]);
            if (g->bn[k]) /* b may be NULL */
                msgpack_pack_bin_body(&pk, g->b[k], g->bn[k]);
            break;
        }
        k++;
    }
    if (rc == TC_OK) {
        XXH128_hash_t h = XXH3_128bits(sb.data, sb.size);
        if (cap < strlen(fn) + 34)
            rc = TC_ETOOBIG;
        else
            snprintf(out, cap, "%s:%016llx%016llx", fn,
                     (unsigned long long)h.high64,
                     (unsigned long long)h.low64);
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    size_t cap = fz_byte(&in);
    uint8_t mode = fz_byte(&in), shape = fz_byte(&in);
    uint8_t nils = fz_byte(&in), bad = fz_byte(&in);
    int n = shape % (SLOTS + 1), kind[SLOTS];
    args g;
    char *heap[SLOTS] = {NULL, NULL, NULL}, fmt[2 * SLOTS + 3];
    size_t f = 0;

    memset(&g, 0, sizeof(g));
    shape /= SLOTS + 1;
    for (int k = 0; k < SLOTS; k++) {
        kind[k] = (shape >> (2 * k)) % 5;
        if (k >= n)
            continue;
        if (nils & (1u << k))
            fmt[f++] = 'n';
        fmt[f++] = kinds[kind[k]];
        uint8_t len = fz_byte(&in);
        g.i[k] = (int64_t)fz_u64(&in);
        g.u[k] = fz_u64(&in);
        uint64_t bits = fz_u64(&in);
        memcpy(&g.d[k], &bits, sizeof(bits));
        heap[k] = fz_str(&in, len % 64);
        g.s[k] = (len & 0x80) ? NULL : heap[k];
        g.b[k] = heap[k];
        g.bn[k] = strlen(heap[k]);
        if (len & 0x40) /* NULL: allowed only for an empty 'b' */
            g.b[k] = NULL;
        else if ((len & 0xc0) == 0x80) /* a length bin32 cannot hold */
            g.bn[k] = (size_t)UINT32_MAX + 1 + g.bn[k];
    }
    if (nils & 0x80)
        fmt[f++] = 'n';
    fmt[f] = '\0';
    if (bad < 8) /* a letter tc_key refuses, somewhere */
        fmt[bad % (f + 1)] = "xINf%0?"[bad % 7];
    if (bad < 8 && bad % (f + 1) == f)
        fmt[f + 1] = '\0';

    char *fn = fz_str(&in, mode % 64), *out = malloc(cap), *want = NULL;
    FZ_CHECK(out != NULL);
    want = malloc(cap ? cap : 1);
    FZ_CHECK(want != NULL);
    int wrc = ref_key(want, cap, (mode & 0x80) ? NULL : fn, fmt, &g);
    const char *use = (mode & 0x80) ? NULL : fn;
    if ((mode & 0x40) && use && strlen(fn) < cap) { /* fn inside out */
        memcpy(out, fn, strlen(fn) + 1);
        use = out;
    } else if (cap) {
        memset(out, 'x', cap);
    }
    int rc = call_key(out, cap, use, fmt, kind, n, &g);
    FZ_CHECK(rc == TC_OK || rc == TC_EINVAL || rc == TC_ETOOBIG);
    if (rc != wrc) {
        fprintf(stderr, "fmt \"%s\": rc %d, reference %d\n", fmt, rc, wrc);
        FZ_CHECK(0);
    }
    if (rc == TC_OK) {
        FZ_CHECK(strcmp(out, want) == 0);
        size_t len = strlen(out);
        FZ_CHECK(len < cap && len == strlen(fn) + 33);
        for (size_t i = len - 32; i < len; i++)
            FZ_CHECK(strchr("0123456789abcdef", out[i]) != NULL);
    } else if (cap > 0) {
        FZ_CHECK(out[0] == '\0');
    }
    for (int k = 0; k < SLOTS; k++)
        free(heap[k]);
    free(fn);
    free(out);
    free(want);
    return 0;
}
