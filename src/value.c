/* SPDX-License-Identifier: BSD-3-Clause */
/* Immutable, reference-counted values: a hit hands out a reference, no
   copy. The last release frees. */
#include <string.h>

#include "internal.h"

tc_value *tc__value_new(const void *data, size_t len)
{
    if (len > UINT32_MAX - sizeof(tc_value) - 1)
        return NULL; /* beyond any max_value_bytes */
    tc_value *v = tc__malloc(sizeof(*v) + len + 1);
    if (!v)
        return NULL;
    atomic_init(&v->refs, 1);
    v->flags = 0;
    v->delta_ms = 0;
    v->expires_at = 0;
    v->wver = tc__rand64(); /* never 0; one read from Redis takes its own */
    v->len = (uint32_t)len;
    if (len && data)
        memcpy(v->data, data, len);
    v->data[len] = '\0';
    return v;
}

const void *tc_value_data(const tc_value *v)
{
    return v ? v->data : NULL;
}

size_t tc_value_len(const tc_value *v)
{
    return v ? v->len : 0;
}

void tc_value_release(tc_value *v)
{
    if (!v)
        return;
    /* acq_rel: the thread that frees must see every write made before the
       other holders let go (the data itself is never written after new). */
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1)
        tc__free(v);
}
