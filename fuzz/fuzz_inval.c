/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tc__inval_decode on anyone's message (whoever may PUBLISH on the
 * namespace channel), under a limit chosen by the first input byte.
 * Checked as for envelopes: the documented return codes; exactly the
 * messages the reference reader of data-format.md accepts, with the same
 * fields; arg inside the input; a zeroed message on failure; and the
 * round trip through tc__inval_encode.
 */
#include "fuzz.h"
#include "internal.h"

static const size_t limits[] = {0,   1,     16,    255,        256,
                                512, 65535, 65536, UINT32_MAX, SIZE_MAX};

/* The reference: docs/data-format.md, "What a receiver accepts". */
static int ref_decode(const uint8_t *buf, size_t len, size_t max, tc__inval *m)
{
    ref_rd r = {buf, len};
    uint64_t version, kind;
    memset(m, 0, sizeof(*m));
    if (ref_array(&r, 4) != 0 || ref_uint(&r, &version) != 0 ||
        ref_uint(&r, &kind) != 0 || ref_uint(&r, &m->sent_at_ms) != 0 ||
        ref_bin(&r, max, &m->arg, &m->arg_len) != 0 || r.left != 0 ||
        version != 1 || kind < 1 || kind > 3)
        return -1;
    m->kind = (uint32_t)kind;
    return 0;
}

static int same(const tc__inval *a, const tc__inval *b)
{
    return a->kind == b->kind && a->sent_at_ms == b->sent_at_ms &&
           a->arg_len == b->arg_len &&
           (a->arg_len == 0 || memcmp(a->arg, b->arg, a->arg_len) == 0);
}

static void round_trip(const tc__inval *m)
{
    char *out = NULL;
    size_t outlen = 0;
    tc__inval back;
    size_t bin = m->arg_len < 256 ? 2 : m->arg_len < 65536 ? 3 : 5;
    uint64_t t = m->sent_at_ms;
    size_t tlen = t <= 0x7f         ? 1
                  : t <= 0xff       ? 2
                  : t <= 0xffff     ? 3
                  : t <= UINT32_MAX ? 5
                                    : 9;

    FZ_CHECK(tc__inval_encode(m, &out, &outlen) == TC_OK);
    /* fixarray, version, kind as fixints; then sent_at and the bin */
    FZ_CHECK(outlen == 3 + tlen + bin + m->arg_len);
    FZ_CHECK((unsigned char)out[0] == 0x94 && out[1] == 0x01 &&
             out[2] == (char)m->kind);
    FZ_CHECK(tc__inval_decode(out, outlen, m->arg_len, &back) == TC_OK);
    FZ_CHECK(same(m, &back));
    if (m->arg_len > 0)
        FZ_CHECK(tc__inval_decode(out, outlen, m->arg_len - 1, &back) ==
                 TC_ECODEC);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const tc__inval zero;
    if (size < 1)
        return 0;
    size_t max = limits[data[0] % (sizeof(limits) / sizeof(*limits))];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    tc__inval m, ref;

    memset(&m, 0xa5, sizeof(m));
    int rc = tc__inval_decode(buf, len, max, &m);
    int want = ref_decode((const uint8_t *)buf, len, max, &ref);
    FZ_CHECK(rc == TC_OK || rc == TC_ECODEC);
    if (rc != TC_OK) {
        FZ_CHECK(memcmp(&m, &zero, sizeof(m)) == 0);
        FZ_CHECK(want != 0);
        return 0;
    }
    FZ_CHECK(want == 0);
    FZ_CHECK(same(&m, &ref) && m.arg == ref.arg);
    FZ_CHECK(m.arg_len <= max);
    round_trip(&m);
    return 0;
}
