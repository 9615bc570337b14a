/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tc__decompress on anyone's payload (the frame of a flagged envelope),
 * codec and max_value_bytes chosen by the first input byte, and
 * tc__compress on the same bytes. Checked: the return code is one of the
 * documented ones; an accepted frame decodes to at most max bytes (a
 * bomb is TC_ECODEC, not a large allocation: ASan's allocation limit and
 * -rss_limit_mb would see one); whatever tc__compress keeps is smaller
 * by >= 10 % and decompresses back to the input, byte for byte.
 */
#include "fuzz.h"
#include "internal.h"

static const size_t limits[] = {0, 1, 64, 1024, 65536, 1 << 20};

static void round_trip(int codec, const uint8_t *data, size_t size)
{
    unsigned char *z = NULL;
    size_t zlen = 0;
    uint32_t flag = 0;
    tc_value *v = NULL;

    FZ_CHECK(tc__compress(codec, 0, data, size, &z, &zlen, &flag) == TC_OK);
    if (!z)
        return; /* stored raw: too small a saving */
    FZ_CHECK(flag ==
             (codec == TC_COMPRESSION_ZSTD ? TC__FLAG_ZSTD : TC__FLAG_LZ4));
    FZ_CHECK(zlen <= size - size / 10);
    FZ_CHECK(tc__decompress(flag, z, zlen, size, &v) == TC_OK);
    FZ_CHECK(tc_value_len(v) == size &&
             memcmp(tc_value_data(v), data, size) == 0);
    /* one byte under its size: refused */
    tc_value *w = NULL;
    FZ_CHECK(tc__decompress(flag, z, zlen, size - 1, &w) == TC_ECODEC);
    FZ_CHECK(w == NULL);
    tc_value_release(v);
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t flag = data[0] & 1 ? TC__FLAG_LZ4 : TC__FLAG_ZSTD;
    size_t max = limits[(data[0] >> 1) % (sizeof(limits) / sizeof(*limits))];
    tc_value *v = NULL;

    int rc = tc__decompress(flag, data + 1, size - 1, max, &v);
    FZ_CHECK(rc == TC_OK || rc == TC_ECODEC);
    FZ_CHECK((rc == TC_OK) == (v != NULL));
    if (v) {
        FZ_CHECK(tc_value_len(v) <= max);
        tc_value_release(v);
    }
    round_trip(flag == TC__FLAG_LZ4 ? TC_COMPRESSION_LZ4 : TC_COMPRESSION_ZSTD,
               data + 1, size - 1);
    return 0;
}
