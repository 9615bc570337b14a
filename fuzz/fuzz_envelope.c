/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tc__env_decode on anyone's bytes (a GET reply), under a limit chosen by
 * the first input byte. Checked: the return code is one of the documented
 * ones; it accepts exactly what the reference reader of data-format.md
 * accepts, with the same fields; the payload lies inside the input; a
 * failure leaves the envelope zeroed; an accepted envelope re-encodes to
 * the smallest encoding the document describes and decodes back to the
 * same fields.
 */
#include <limits.h>

#include "fuzz.h"
#include "internal.h"

static const size_t limits[] = {
    0, 1, 15, 16, 127, 255, 256, 65535, 65536, 1 << 20, UINT32_MAX, SIZE_MAX,
};

/* The reference: docs/data-format.md, "Decoding". */
static int ref_decode(const uint8_t *buf, size_t len, size_t max,
                      tc__envelope *e)
{
    ref_rd r = {buf, len};
    uint64_t v[4], n, wver = 0;
    memset(e, 0, sizeof(*e));
    if (ref_array_n(&r, &n) != 0 || (n != 5 && n != 6))
        return -1;
    for (int i = 0; i < 4; i++)
        if (ref_uint(&r, &v[i]) != 0)
            return -1;
    if (ref_bin(&r, max, &e->payload, &e->payload_len) != 0 ||
        (n == 6 && ref_uint(&r, &wver) != 0) || r.left != 0)
        return -1;
    if (v[0] != 1 || v[1] > UINT32_MAX || v[3] > UINT32_MAX)
        return -1;
    e->flags = (uint32_t)v[1];
    e->expires_at_ms = v[2];
    e->delta_ms = (uint32_t)v[3];
    e->wver = wver;
    return 0;
}

/* Bytes msgpack's smallest encoding of a uint takes. */
static size_t uint_size(uint64_t v)
{
    return v <= 0x7f         ? 1
           : v <= 0xff       ? 2
           : v <= 0xffff     ? 3
           : v <= UINT32_MAX ? 5
                             : 9;
}

/* docs/data-format.md, "Encoding". */
static size_t encoded_size(const tc__envelope *e)
{
    size_t n = e->payload_len;
    size_t bin = n < 256 ? 2 : n < 65536 ? 3 : 5;
    return 1 + 1 + uint_size(e->flags) + uint_size(e->expires_at_ms) +
           uint_size(e->delta_ms) + bin + n + (e->wver ? 9 : 0);
}

static int same(const tc__envelope *a, const tc__envelope *b)
{
    return a->flags == b->flags && a->expires_at_ms == b->expires_at_ms &&
           a->delta_ms == b->delta_ms && a->payload_len == b->payload_len &&
           a->wver == b->wver &&
           (a->payload_len == 0 ||
            memcmp(a->payload, b->payload, a->payload_len) == 0);
}

static void round_trip(const tc__envelope *e)
{
    char *out = NULL, *again = NULL;
    size_t outlen = 0, againlen = 0;
    tc__envelope back;

    FZ_CHECK(tc__env_encode(e, &out, &outlen) == TC_OK);
    FZ_CHECK(outlen == encoded_size(e));
    FZ_CHECK((unsigned char)out[0] == (e->wver ? 0x96 : 0x95) &&
             out[1] == 0x01);
    /* the write version, always 0xcf + 8 bytes, is the last 9 */
    FZ_CHECK(!e->wver || tc__wver_is(out, outlen, e->wver));
    /* exactly at the limit: a payload of max_payload bytes is accepted */
    FZ_CHECK(tc__env_decode(out, outlen, e->payload_len, &back) == TC_OK);
    FZ_CHECK(same(e, &back));
    /* the payload is in the buffer, followed by the version if any */
    FZ_CHECK(back.payload >= (const unsigned char *)out &&
             back.payload + back.payload_len ==
                 (const unsigned char *)out + outlen -
                     (e->wver ? TC__WVER_BYTES : 0));
    if (e->payload_len > 0) /* and one byte under it, refused */
        FZ_CHECK(tc__env_decode(out, outlen, e->payload_len - 1, &back) ==
                 TC_ECODEC);
    FZ_CHECK(tc__env_encode(e, &again, &againlen) == TC_OK);
    FZ_CHECK(againlen == outlen && memcmp(again, out, outlen) == 0);
    free(again);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tc__envelope zero;
    if (size < 1)
        return 0;
    size_t max = limits[data[0] % (sizeof(limits) / sizeof(*limits))];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    tc__envelope e, ref;

    memset(&e, 0xa5, sizeof(e)); /* the decoder must overwrite all of it */
    int rc = tc__env_decode(buf, len, max, &e);
    int want = ref_decode((const uint8_t *)buf, len, max, &ref);
    FZ_CHECK(rc == TC_OK || rc == TC_ECODEC);
    if (rc != TC_OK) {
        FZ_CHECK(memcmp(&e, &zero, sizeof(e)) == 0);
        FZ_CHECK(want != 0);
        return 0;
    }
    FZ_CHECK(want == 0);
    FZ_CHECK(same(&e, &ref));
    FZ_CHECK(e.payload == ref.payload); /* points into buf, not a copy */
    FZ_CHECK(e.payload_len <= max);
    round_trip(&e);
    return 0;
}
