/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tc_key: "fn:<32 hex digits>", the XXH3-128 of the MessagePack array of
 * the arguments. The packer writes straight into the hash state, so a key
 * costs no allocation and its arguments have no length limit.
 */
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

/* Inlined, so the 64-byte-aligned state can live on our stack: its layout
   is not ABI-stable, and XXH3_createState would malloc behind tc__malloc's
   back. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "internal.h"

#define KEY_HEX_LEN 32
#define KEY_FMT_LETTERS "iudsbn"

/* The packer's sink: every byte goes into the hash, nothing is kept. */
static int hash_write(void *data, const char *buf, size_t len)
{
    if (len > 0) /* an empty 'b' argument may be NULL */
        XXH3_128bits_update(data, buf, len);
    return 0;
}

static int fmt_valid(const char *fmt)
{
    for (; *fmt != '\0'; fmt++)
        if (strchr(KEY_FMT_LETTERS, *fmt) == NULL)
            return 0;
    return 1;
}

/* str32 and bin32 are the largest: msgpack_pack_str/bin would silently
   truncate a longer length. */
static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n;

    if (s == NULL)
        return msgpack_pack_nil(pk);
    n = strlen(s);
    if (n > UINT32_MAX)
        return TC_EINVAL;
    msgpack_pack_str(pk, n);
    return msgpack_pack_str_body(pk, s, n);
}

static int pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    if ((p == NULL && n > 0) || n > UINT32_MAX)
        return TC_EINVAL;
    msgpack_pack_bin(pk, n);
    return msgpack_pack_bin_body(pk, p, n);
}

/* Packs one argument. The sink never fails, so msgpack's own returns are
   always 0 == TC_OK; only argument errors come back. The va_list travels
   by pointer because a va_list passed by value is indeterminate in the
   caller afterwards. */
static int pack_arg(msgpack_packer *pk, char letter, va_list *ap)
{
    const void *p;

    switch (letter) {
    case 'i':
        return msgpack_pack_int64(pk, va_arg(*ap, int64_t));
    case 'u':
        return msgpack_pack_uint64(pk, va_arg(*ap, uint64_t));
    case 'd':
        return msgpack_pack_double(pk, va_arg(*ap, double));
    case 's':
        return pack_str(pk, va_arg(*ap, const char *));
    case 'b':
        p = va_arg(*ap, const void *);
        return pack_bin(pk, p, va_arg(*ap, size_t));
    case 'n':
        return msgpack_pack_nil(pk);
    }
    return TC_EINVAL;
}

static int hash_args(const char *fmt, va_list *ap, XXH128_hash_t *out)
{
    XXH3_state_t st;
    msgpack_packer pk;
    int rc;

    XXH3_128bits_reset(&st);
    msgpack_packer_init(&pk, &st, hash_write);
    msgpack_pack_array(&pk, strlen(fmt));
    for (; *fmt != '\0'; fmt++) {
        rc = pack_arg(&pk, *fmt, ap);
        if (rc != TC_OK)
            return rc;
    }
    *out = XXH3_128bits_digest(&st);
    return TC_OK;
}

/* Writes "fn:<hex>" into out; the caller checked that it fits. */
static void format_key(char *out, const char *fn, size_t fnlen,
                       XXH128_hash_t h)
{
    memmove(out, fn, fnlen); /* memmove: fn may point into out */
    out[fnlen] = ':';
    snprintf(out + fnlen + 1, KEY_HEX_LEN + 1, "%016llx%016llx",
             (unsigned long long)h.high64, (unsigned long long)h.low64);
}

static int key_fail(char *out, size_t cap, int rc)
{
    if (cap > 0)
        out[0] = '\0';
    return rc;
}

int tc_keyv(char *out, size_t cap, const char *fn, const char *fmt, va_list ap)
{
    XXH128_hash_t h;
    va_list args;
    size_t fnlen;
    int rc;

    if (out == NULL)
        return TC_EINVAL;
    if (fmt == NULL)
        fmt = "";
    if (fn == NULL || fn[0] == '\0' || !fmt_valid(fmt))
        return key_fail(out, cap, TC_EINVAL);
    /* A va_list parameter may be an array decayed to a pointer, so &ap
       is not a va_list *: work on a copy. */
    va_copy(args, ap);
    rc = hash_args(fmt, &args, &h);
    va_end(args);
    if (rc != TC_OK)
        return key_fail(out, cap, rc);
    fnlen = strlen(fn);
    if (cap < KEY_HEX_LEN + 2 || cap - (KEY_HEX_LEN + 2) < fnlen)
        return key_fail(out, cap, TC_ETOOBIG);
    format_key(out, fn, fnlen, h);
    return TC_OK;
}

int tc_key(char *out, size_t cap, const char *fn, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = tc_keyv(out, cap, fn, fmt, ap);
    va_end(ap);
    return rc;
}
