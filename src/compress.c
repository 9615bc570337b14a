/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Payload compression (docs/data-format.md, "Compressed payloads"): a
 * zstd frame (envelope flag 2) or an LZ4 frame (flag 4), each declaring
 * the size of what it holds.
 *
 * Invariants: a value is compressed only when that saves at least 10 %;
 * decompression reads the declared size first, refuses one over the
 * reader's max_value_bytes before allocating anything, and decodes into
 * a buffer of exactly that size, so a frame that lies (a bomb) fails
 * instead of growing anything.
 */
#include <pthread.h>
#include <string.h>

#include <lz4frame.h>
#include <zstd.h>

#include "internal.h"

#define ZSTD_LEVEL 3
#define LZ4_BLOCK_MIN (64 * 1024) /* the block size our frames use */
#define LZ4_FLG_CONTENT_SIZE 0x08 /* FLG bit: the frame declares its size */

int tc__flags_ok(uint32_t flags)
{
    uint32_t codec = flags & TC__FLAGS_CODEC;

    if (flags & ~TC__FLAGS_KNOWN)
        return 0;
    /* at most one codec, and an "absent" has no payload to compress */
    if (codec & (codec - 1))
        return 0;
    return !(codec && (flags & TC__FLAG_ABSENT));
}

/* ---- per-thread contexts ----

   Making a zstd context costs more than compressing a 1 KiB value with
   it (docs/benchmarks.md, "compress"), and an LZ4 one is a ~100 KiB
   allocation. So each thread keeps one of each kind, made at its first
   use and freed at its exit; zstd resets its contexts at each frame, and
   the LZ4 one is reset before each (a frame that failed leaves it
   mid-way). Without memory for them, the one-shot calls are used. */
typedef struct codec_ctx {
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
    LZ4F_dctx *ld;
} codec_ctx;

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static int ctx_key_ok;

static void ctx_free(void *p)
{
    codec_ctx *x = p;
    ZSTD_freeCCtx(x->zc);
    ZSTD_freeDCtx(x->zd);
    if (x->ld)
        LZ4F_freeDecompressionContext(x->ld);
    tc__free(x);
}

static void ctx_init(void)
{
    ctx_key_ok = pthread_key_create(&ctx_key, ctx_free) == 0;
}

/* This thread's contexts (the fields made on demand), or NULL. */
static codec_ctx *ctx_get(void)
{
    pthread_once(&ctx_once, ctx_init);
    if (!ctx_key_ok)
        return NULL;
    codec_ctx *x = pthread_getspecific(ctx_key);
    if (!x && (x = tc__calloc(1, sizeof(*x))) &&
        pthread_setspecific(ctx_key, x) != 0) {
        tc__free(x);
        x = NULL;
    }
    return x;
}

/* ---- compress ---- */

static size_t zstd_frame(const unsigned char *src, size_t len,
                         unsigned char *dst, size_t cap)
{
    codec_ctx *x = ctx_get();
    if (x && !x->zc)
        x->zc = ZSTD_createCCtx();
    size_t n = x && x->zc
                   ? ZSTD_compressCCtx(x->zc, dst, cap, src, len, ZSTD_LEVEL)
                   : ZSTD_compress(dst, cap, src, len, ZSTD_LEVEL);
    return ZSTD_isError(n) ? 0 : n;
}

/* 64 KiB independent blocks: the smallest buffers for any reader. The
   content size goes into the header, which our reader requires. */
static void lz4_prefs(LZ4F_preferences_t *p, size_t len)
{
    memset(p, 0, sizeof(*p));
    p->frameInfo.blockSizeID = LZ4F_max64KB;
    p->frameInfo.blockMode = LZ4F_blockIndependent;
    p->frameInfo.contentSize = len;
}

static size_t lz4_frame(const unsigned char *src, size_t len,
                        unsigned char *dst, size_t cap)
{
    LZ4F_preferences_t p;

    lz4_prefs(&p, len);
    size_t n = LZ4F_compressFrame(dst, cap, src, len, &p);
    return LZ4F_isError(n) ? 0 : n;
}

static size_t frame_bound(int codec, size_t len)
{
    LZ4F_preferences_t p;

    if (codec == TC_COMPRESSION_ZSTD)
        return ZSTD_compressBound(len);
    lz4_prefs(&p, len);
    return LZ4F_compressFrameBound(len, &p);
}

int tc__compress(int codec, size_t min_bytes, const void *src, size_t len,
                 unsigned char **out, size_t *outlen, uint32_t *flag)
{
    *out = NULL;
    *outlen = 0;
    *flag = 0;
    if (codec == TC_COMPRESSION_NONE || len == 0 || len < min_bytes)
        return TC_OK;
    size_t cap = frame_bound(codec, len);
    unsigned char *dst = tc__malloc(cap);
    if (!dst)
        return TC_ENOMEM;
    size_t n = codec == TC_COMPRESSION_ZSTD ? zstd_frame(src, len, dst, cap)
                                            : lz4_frame(src, len, dst, cap);
    /* worth it only when it saves >= 10 %: n <= 0.9 len */
    if (n == 0 || n > len - len / 10) {
        tc__free(dst);
        return TC_OK;
    }
    *out = dst;
    *outlen = n;
    *flag = codec == TC_COMPRESSION_ZSTD ? TC__FLAG_ZSTD : TC__FLAG_LZ4;
    return TC_OK;
}

/* ---- decompress ---- */

/* One zstd frame, nothing after it, with a declared size <= max. */
static int zstd_size(const unsigned char *src, size_t len, size_t max,
                     size_t *n)
{
    unsigned long long sz = ZSTD_getFrameContentSize(src, len);

    if (sz == ZSTD_CONTENTSIZE_UNKNOWN || sz == ZSTD_CONTENTSIZE_ERROR ||
        sz > max)
        return -1;
    if (ZSTD_findFrameCompressedSize(src, len) != len)
        return -1; /* truncated, or more frames after this one */
    *n = (size_t)sz;
    return 0;
}

static int zstd_into(const unsigned char *src, size_t len, unsigned char *dst,
                     size_t n)
{
    codec_ctx *x = ctx_get();
    if (x && !x->zd)
        x->zd = ZSTD_createDCtx();
    size_t r = x && x->zd ? ZSTD_decompressDCtx(x->zd, dst, n, src, len)
                          : ZSTD_decompress(dst, n, src, len);
    return !ZSTD_isError(r) && r == n ? 0 : -1;
}

/* The header of an LZ4 frame: it must declare its content size (<= max)
   and use blocks no larger than max(64 KiB, max), since LZ4F allocates
   two block buffers of that size. */
static int lz4_size(LZ4F_dctx *d, const unsigned char *src, size_t len,
                    size_t max, size_t *n, size_t *hdr)
{
    LZ4F_frameInfo_t fi;
    size_t used = len;

    if (len < 7 || !(src[4] & LZ4_FLG_CONTENT_SIZE))
        return -1;
    if (LZ4F_isError(LZ4F_getFrameInfo(d, &fi, src, &used)))
        return -1;
    size_t block = (size_t)1 << (2 * (fi.blockSizeID ? fi.blockSizeID : 4) +
                                 8); /* 4..7: 64 KiB..4 MiB */
    if (fi.contentSize > max || (block > LZ4_BLOCK_MIN && block > max))
        return -1;
    *n = (size_t)fi.contentSize;
    *hdr = used;
    return 0;
}

/* Decodes the rest of the frame into exactly n bytes; the frame must end
   exactly at the end of src. */
static int lz4_into(LZ4F_dctx *d, const unsigned char *src, size_t len,
                    unsigned char *dst, size_t n)
{
    LZ4F_decompressOptions_t opt = {0};
    size_t in = 0, got = 0, r = 1;

    opt.stableDst = 1;
    while (in < len && r != 0) {
        size_t sn = len - in, dn = n - got;
        r = LZ4F_decompress(d, dst + got, &dn, src + in, &sn, &opt);
        if (LZ4F_isError(r) || (sn == 0 && dn == 0))
            return -1;
        in += sn;
        got += dn;
    }
    return r == 0 && in == len && got == n ? 0 : -1;
}

static int lz4_value(const unsigned char *src, size_t len, size_t max,
                     tc_value **out)
{
    LZ4F_dctx *d = NULL;
    size_t n, hdr;
    int rc = TC_ECODEC;
    codec_ctx *x = ctx_get();

    if (x && !x->ld &&
        LZ4F_isError(LZ4F_createDecompressionContext(&x->ld, LZ4F_VERSION)))
        x->ld = NULL;
    if (x && x->ld) {
        d = x->ld;
        LZ4F_resetDecompressionContext(d);
    } else if (LZ4F_isError(
                   LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) {
        return TC_ENOMEM;
    }
    if (lz4_size(d, src, len, max, &n, &hdr) == 0) {
        tc_value *v = tc__value_new(NULL, n);
        if (!v)
            rc = TC_ENOMEM;
        else if (lz4_into(d, src + hdr, len - hdr, v->data, n) != 0)
            tc_value_release(v);
        else {
            *out = v;
            rc = TC_OK;
        }
    }
    if (!x || d != x->ld)
        LZ4F_freeDecompressionContext(d);
    return rc;
}

static int zstd_value(const unsigned char *src, size_t len, size_t max,
                      tc_value **out)
{
    size_t n;

    if (zstd_size(src, len, max, &n) != 0)
        return TC_ECODEC;
    tc_value *v = tc__value_new(NULL, n);
    if (!v)
        return TC_ENOMEM;
    if (zstd_into(src, len, v->data, n) != 0) {
        tc_value_release(v);
        return TC_ECODEC;
    }
    *out = v;
    return TC_OK;
}

int tc__decompress(uint32_t flags, const unsigned char *src, size_t len,
                   size_t max, tc_value **out)
{
    *out = NULL;
    if (flags & TC__FLAG_ZSTD)
        return zstd_value(src, len, max, out);
    if (flags & TC__FLAG_LZ4)
        return lz4_value(src, len, max, out);
    return TC_EINVAL;
}
