/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The value envelope stored in Redis:
 *   [1 (format version), flags, expires_at_ms, delta_ms, payload (bin)
 *    (, write version)]
 * The write version, when there is one, is always packed as a uint64
 * (0xcf + 8 bytes): it is then the envelope's last 9 bytes, which a
 * revalidation reads alone (GETRANGE key -9 -1, docs/data-format.md).
 *
 * Encoding packs straight into one exact-size buffer. Decoding reads bytes
 * anyone may have written, and msgpack-c's unpacker allocates from a
 * container's declared size alone, so a bounded checker walks the bytes
 * first; only an envelope-shaped input ever reaches the unpacker.
 */
#include <string.h>

#include <msgpack.h>

#include "internal.h"

#define ENV_ITEMS 5 /* without a write version; 6 with one */
#define INVAL_ITEMS 4
/* The longest envelope around a payload: array32, four uint64s, bin32,
   the write version. */
#define ENV_HEAD_MAX (5 + 4 * 9 + 5 + 9)

/* ---- encode ---- */

/* The packer's sink: the sizing pass only counts (dst NULL), the writing
   pass copies into the buffer the sizing pass measured. */
typedef struct env_sink {
    char *dst;
    size_t len;
    size_t cap;
} env_sink;

static int sink_write(void *data, const char *buf, size_t len)
{
    env_sink *s = data;

    if (s->dst != NULL) {
        if (len > s->cap - s->len)
            return -1;
        if (len > 0) /* an empty payload may be NULL */
            memcpy(s->dst + s->len, buf, len);
    }
    s->len += len;
    return 0;
}

static int pack_envelope(env_sink *s, const tc__envelope *e)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, s, sink_write);
    if (msgpack_pack_array(&pk, ENV_ITEMS + (e->wver != 0)) != 0 ||
        msgpack_pack_uint8(&pk, TC__ENV_VERSION) != 0 ||
        msgpack_pack_uint32(&pk, e->flags) != 0 ||
        msgpack_pack_uint64(&pk, e->expires_at_ms) != 0 ||
        msgpack_pack_uint32(&pk, e->delta_ms) != 0 ||
        msgpack_pack_bin(&pk, e->payload_len) != 0 ||
        msgpack_pack_bin_body(&pk, e->payload, e->payload_len) != 0)
        return -1;
    if (e->wver && msgpack_pack_fix_uint64(&pk, e->wver) != 0)
        return -1;
    return 0;
}

typedef int (*pack_fn)(env_sink *s, const void *item);

/* Packs item twice: once to measure, once into an exact-size buffer. */
static int pack_exact(pack_fn pack, const void *item, char **out,
                      size_t *outlen)
{
    env_sink s = {NULL, 0, 0};

    pack(&s, item);
    s.cap = s.len;
    s.len = 0;
    s.dst = tc__malloc(s.cap);
    if (s.dst == NULL)
        return TC_ENOMEM;
    if (pack(&s, item) != 0 || s.len != s.cap) {
        tc__free(s.dst); /* unreachable: both passes pack the same items */
        return TC_ENOMEM;
    }
    *out = s.dst;
    *outlen = s.len;
    return TC_OK;
}

static int pack_envelope_item(env_sink *s, const void *item)
{
    return pack_envelope(s, item);
}

int tc__env_encode(const tc__envelope *e, char **out, size_t *outlen)
{
    if (e == NULL || out == NULL || outlen == NULL ||
        (e->payload == NULL && e->payload_len > 0))
        return TC_EINVAL;
    *out = NULL;
    *outlen = 0;
    /* bin32 is the largest bin; msgpack_pack_bin would silently truncate
       a longer length. */
    if (e->payload_len > UINT32_MAX ||
        e->payload_len > SIZE_MAX - ENV_HEAD_MAX)
        return TC_ETOOBIG;
    return pack_exact(pack_envelope_item, e, out, outlen);
}

static int pack_inval(env_sink *s, const void *item)
{
    const tc__inval *m = item;
    msgpack_packer pk;

    msgpack_packer_init(&pk, s, sink_write);
    if (msgpack_pack_array(&pk, INVAL_ITEMS) != 0 ||
        msgpack_pack_uint8(&pk, TC__ENV_VERSION) != 0 ||
        msgpack_pack_uint32(&pk, m->kind) != 0 ||
        msgpack_pack_uint64(&pk, m->sent_at_ms) != 0 ||
        msgpack_pack_bin(&pk, m->arg_len) != 0 ||
        msgpack_pack_bin_body(&pk, m->arg, m->arg_len) != 0)
        return -1;
    return 0;
}

int tc__inval_encode(const tc__inval *m, char **out, size_t *outlen)
{
    if (m == NULL || out == NULL || outlen == NULL ||
        (m->arg == NULL && m->arg_len > 0))
        return TC_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (m->arg_len > UINT32_MAX)
        return TC_ETOOBIG;
    return pack_exact(pack_inval, m, out, outlen);
}

/* ---- decode: the bounded checker ---- */

/* A cursor over untrusted bytes; every read is checked against what is
   left. */
typedef struct rd {
    const unsigned char *p;
    size_t left;
} rd;

static int rd_take(rd *r, size_t n, const unsigned char **out)
{
    if (n > r->left)
        return -1;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return 0;
}

/* An n-byte big-endian unsigned integer (n <= 8). */
static int rd_be(rd *r, size_t n, uint64_t *v)
{
    const unsigned char *p;

    if (rd_take(r, n, &p) != 0)
        return -1;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = (*v << 8) | p[i];
    return 0;
}

/* Other writers may use array16/32 for a short array: accept any header
   that declares `items` to `items_max` items; *n gets how many. */
static int check_array(rd *r, uint64_t items, uint64_t items_max, uint64_t *n)
{
    const unsigned char *tag;

    if (rd_take(r, 1, &tag) != 0)
        return -1;
    if ((*tag & 0xf0) == 0x90)
        *n = *tag & 0x0f;
    else if (*tag == 0xdc || *tag == 0xdd) {
        if (rd_be(r, *tag == 0xdc ? 2 : 4, n) != 0)
            return -1;
    } else {
        return -1;
    }
    return *n >= items && *n <= items_max ? 0 : -1;
}

/* A non-negative integer of any width. Signed formats are accepted when
   their sign bit is clear, since some writers pack every integer signed;
   the value is then the same read as unsigned. */
static int read_uint(rd *r, uint64_t *v)
{
    const unsigned char *tag;
    size_t n;

    if (rd_take(r, 1, &tag) != 0)
        return -1;
    if (*tag <= 0x7f) {
        *v = *tag;
        return 0;
    }
    if (*tag >= 0xcc && *tag <= 0xcf)
        return rd_be(r, (size_t)1 << (*tag - 0xcc), v);
    if (*tag < 0xd0 || *tag > 0xd3)
        return -1;
    n = (size_t)1 << (*tag - 0xd0);
    if (rd_be(r, n, v) != 0)
        return -1;
    return *v >> (8 * n - 1) ? -1 : 0;
}

/* bin8/16/32 whose declared length is present and within the limit. */
static int check_bin(rd *r, size_t max_payload, const unsigned char **p,
                     size_t *len)
{
    const unsigned char *tag;
    uint64_t n;

    if (rd_take(r, 1, &tag) != 0 || *tag < 0xc4 || *tag > 0xc6)
        return -1;
    if (rd_be(r, (size_t)1 << (*tag - 0xc4), &n) != 0 || n > max_payload)
        return -1;
    *len = (size_t)n;
    return rd_take(r, *len, p);
}

/* The whole input must be exactly one envelope: trailing bytes mean the
   value is not what we wrote. */
static int check_envelope(const char *buf, size_t len, size_t max_payload,
                          const unsigned char **payload, size_t *payload_len)
{
    rd r = {(const unsigned char *)buf, len};
    uint64_t items, v;

    if (check_array(&r, ENV_ITEMS, ENV_ITEMS + 1, &items) != 0)
        return -1;
    for (int i = 0; i < ENV_ITEMS - 1; i++)
        if (read_uint(&r, &v) != 0)
            return -1;
    if (check_bin(&r, max_payload, payload, payload_len) != 0)
        return -1;
    if (items > ENV_ITEMS && read_uint(&r, &v) != 0)
        return -1;
    return r.left == 0 ? 0 : -1;
}

/* ---- decode: the unpacker's object into the envelope ---- */

static int object_to_env(const msgpack_object *o, tc__envelope *e)
{
    const msgpack_object *it;

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < ENV_ITEMS ||
        o->via.array.size > ENV_ITEMS + 1)
        return -1;
    it = o->via.array.ptr;
    if (o->via.array.size > ENV_ITEMS &&
        it[ENV_ITEMS].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
    for (int i = 0; i < ENV_ITEMS - 1; i++)
        if (it[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return -1;
    if (it[4].type != MSGPACK_OBJECT_BIN)
        return -1;
    if (it[0].via.u64 != TC__ENV_VERSION || it[1].via.u64 > UINT32_MAX ||
        it[3].via.u64 > UINT32_MAX)
        return -1;
    e->flags = (uint32_t)it[1].via.u64;
    e->expires_at_ms = it[2].via.u64;
    e->delta_ms = (uint32_t)it[3].via.u64;
    e->payload_len = it[4].via.bin.size;
    e->wver = o->via.array.size > ENV_ITEMS ? it[ENV_ITEMS].via.u64 : 0;
    return 0;
}

/* Only checked bytes get here, so the unpacker allocates room for six
   objects in one fixed-size zone chunk, whatever the input. */
static int unpack_checked(const char *buf, size_t len, tc__envelope *e)
{
    msgpack_unpacked u;
    msgpack_unpack_return ret;
    size_t off = 0;
    int rc = TC_ECODEC;

    msgpack_unpacked_init(&u);
    ret = msgpack_unpack_next(&u, buf, len, &off);
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        rc = TC_ENOMEM;
    else if (ret == MSGPACK_UNPACK_SUCCESS && off == len &&
             object_to_env(&u.data, e) == 0)
        rc = TC_OK;
    msgpack_unpacked_destroy(&u);
    return rc;
}

int tc__env_decode(const char *buf, size_t len, size_t max_payload,
                   tc__envelope *e)
{
    const unsigned char *payload = NULL;
    size_t payload_len = 0;
    tc__envelope tmp;
    int rc;

    if (e == NULL)
        return TC_EINVAL;
    memset(e, 0, sizeof(*e)); /* no stale payload pointer on failure */
    if (buf == NULL ||
        check_envelope(buf, len, max_payload, &payload, &payload_len) != 0)
        return TC_ECODEC;
    rc = unpack_checked(buf, len, &tmp);
    if (rc != TC_OK)
        return rc;
    if (tmp.payload_len != payload_len)
        return TC_ECODEC; /* the two readers disagree: trust neither */
    /* msgpack-c 4 points bin objects into the input; the checker's
       pointer is the same address and cannot dangle into a freed zone. */
    tmp.payload = payload;
    *e = tmp;
    return TC_OK;
}

int tc__wver_is(const char *buf, size_t len, uint64_t wver)
{
    if (!wver || !buf || len < TC__WVER_BYTES)
        return 0;
    const unsigned char *p = (const unsigned char *)buf + len - TC__WVER_BYTES;
    uint64_t v = 0;
    for (int i = 1; i < TC__WVER_BYTES; i++)
        v = v << 8 | p[i];
    return p[0] == 0xcf && v == wver;
}

/* Messages on the namespace channel can be published by anyone: read
   them with the checker alone, no unpacker and no allocation. */
int tc__inval_decode(const char *buf, size_t len, size_t max_arg, tc__inval *m)
{
    rd r = {(const unsigned char *)buf, len};
    uint64_t version, kind, sent;

    if (m == NULL)
        return TC_EINVAL;
    memset(m, 0, sizeof(*m));
    uint64_t items;
    if (buf == NULL ||
        check_array(&r, INVAL_ITEMS, INVAL_ITEMS, &items) != 0 ||
        read_uint(&r, &version) != 0 || read_uint(&r, &kind) != 0 ||
        read_uint(&r, &sent) != 0 ||
        check_bin(&r, max_arg, &m->arg, &m->arg_len) != 0 || r.left != 0 ||
        version != TC__ENV_VERSION || kind < TC__INVAL_KEY ||
        kind > TC__INVAL_FLUSH) {
        memset(m, 0, sizeof(*m));
        return TC_ECODEC;
    }
    m->kind = (uint32_t)kind;
    m->sent_at_ms = sent;
    return TC_OK;
}
