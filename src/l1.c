/* SPDX-License-Identifier: BSD-3-Clause */
/* L1 store: see l1.h. Everything below a shard's mutex is a *_locked
   helper; the public functions take and drop the lock. */
#include <pthread.h>
#include <string.h>

#include "l1.h"

/* uthash must not exit() on OOM, and must allocate through our wrapper. */
static _Thread_local int uthash_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (uthash_oom = 1)
#define uthash_malloc(sz) tc__malloc(sz)
#define uthash_free(ptr, sz) tc__free(ptr)
#include <uthash.h>

typedef struct entry {
    UT_hash_handle hh;
    struct entry *prev, *next; /* LRU list: head is the most recent */
    tc_value *val;             /* one reference held by the entry */
    uint64_t born;             /* clock ms when it entered */
    uint64_t expires_at;       /* clock ms */
    size_t charge;             /* bytes counted against the bound */
    size_t klen;
    char key[];
} entry;

typedef struct shard {
    pthread_mutex_t mu;
    entry *table; /* uthash head */
    entry *head, *tail;
    uint64_t epoch;
    uint64_t entries, bytes;
    uint64_t max_entries, max_bytes;
    uint64_t evictions, expirations, epoch_drops;
    /* Counted here, under the lock already held, rather than in one
       atomic shared by every thread: a hit then writes no line that
       other shards' hits write too. */
    uint64_t hits, misses;
} shard;

/* One shard per cache line pair at least, so two cores hitting two
   shards do not fight over one line. */
typedef struct padded_shard {
    shard s;
    char pad[128 - sizeof(shard) % 128];
} padded_shard;

struct tc__l1 {
    uint32_t nshards; /* a power of two */
    int off;          /* keeps nothing */
    tc_clock_fn clock;
    void *clock_ud;
    padded_shard *shards;
};

/* A shard smaller than this is split no further: tiny bounds over many
   shards would make the bound per shard meaningless. */
#define MIN_SHARD_ENTRIES 64
#define MIN_SHARD_BYTES (64 * 1024)

static uint64_t now_ms(const tc__l1 *l1)
{
    return l1->clock ? l1->clock(l1->clock_ud) : tc__mono_ms();
}

static shard *shard_of(tc__l1 *l1, uint64_t hash)
{
    /* high bits pick the shard, low bits the uthash bucket */
    return &l1->shards[(hash >> 40) & (l1->nshards - 1)].s;
}

static uint32_t fit_shards(const tc__l1_config *cfg)
{
    uint32_t n = cfg->shards ? cfg->shards : 1;
    while (n > 1 && (cfg->max_entries / n < MIN_SHARD_ENTRIES ||
                     cfg->max_bytes / n < MIN_SHARD_BYTES))
        n /= 2;
    return n;
}

int tc__l1_create(tc__l1 **out, const tc__l1_config *cfg)
{
    *out = NULL;
    tc__l1 *l1 = tc__calloc(1, sizeof(*l1));
    if (!l1)
        return TC_ENOMEM;
    l1->off = cfg->max_entries == 0 || cfg->max_bytes == 0;
    l1->clock = cfg->clock;
    l1->clock_ud = cfg->clock_ud;
    l1->nshards = fit_shards(cfg);
    l1->shards = tc__calloc(l1->nshards, sizeof(padded_shard));
    if (!l1->shards) {
        tc__free(l1);
        return TC_ENOMEM;
    }
    /* Split the bounds exactly: the shards' bounds add up to the total. */
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = &l1->shards[i].s;
        pthread_mutex_init(&s->mu, NULL);
        s->max_entries = cfg->max_entries / l1->nshards +
                         (i < cfg->max_entries % l1->nshards);
        s->max_bytes =
            cfg->max_bytes / l1->nshards + (i < cfg->max_bytes % l1->nshards);
    }
    *out = l1;
    return TC_OK;
}

static void list_unlink_locked(shard *s, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->tail = e->prev;
}

static void unlink_locked(shard *s, entry *e)
{
    HASH_DELETE(hh, s->table, e);
    list_unlink_locked(s, e);
    s->entries--;
    s->bytes -= e->charge;
}

static void push_front_locked(shard *s, entry *e)
{
    e->prev = NULL;
    e->next = s->head;
    if (s->head)
        s->head->prev = e;
    s->head = e;
    if (!s->tail)
        s->tail = e;
}

/* Removes e and frees it; the value lives on while others hold it. */
static void drop_locked(shard *s, entry *e)
{
    unlink_locked(s, e);
    tc_value_release(e->val);
    tc__free(e);
}

static void clear_locked(shard *s)
{
    while (s->head)
        drop_locked(s, s->head);
    s->epoch++;
}

void tc__l1_destroy(tc__l1 *l1)
{
    if (!l1)
        return;
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = &l1->shards[i].s;
        clear_locked(s);
        HASH_CLEAR(hh, s->table);
        pthread_mutex_destroy(&s->mu);
    }
    tc__free(l1->shards);
    tc__free(l1);
}

uint32_t tc__l1_shards(const tc__l1 *l1)
{
    return l1->nshards;
}

static entry *find_locked(shard *s, const char *key, size_t klen,
                          uint64_t hash)
{
    entry *e = NULL;
    HASH_FIND_BYHASHVALUE(hh, s->table, key, klen, (unsigned)hash, e);
    return e;
}

tc_value *tc__l1_get(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                     uint64_t max_age)
{
    if (l1->off)
        return NULL;
    uint64_t now = now_ms(l1);
    shard *s = shard_of(l1, hash);
    tc_value *v = NULL;
    pthread_mutex_lock(&s->mu);
    entry *e = find_locked(s, key, klen, hash);
    if (e && e->expires_at <= now) {
        drop_locked(s, e);
        s->expirations++;
        s->misses++;
    } else if (!e || now - e->born > max_age) {
        s->misses++;
    } else {
        s->hits++;
        if (s->head != e) { /* exact LRU: move to the front */
            list_unlink_locked(s, e);
            push_front_locked(s, e);
        }
        v = tc__value_ref(e->val);
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

uint64_t tc__l1_epoch(tc__l1 *l1, uint64_t hash)
{
    shard *s = shard_of(l1, hash);
    pthread_mutex_lock(&s->mu);
    uint64_t epoch = s->epoch;
    pthread_mutex_unlock(&s->mu);
    return epoch;
}

/* Makes room for `charge` more bytes and one more entry: expired entries
   at the cold end go first (counted as expirations), then the LRU. */
static void make_room_locked(shard *s, size_t charge, uint64_t now)
{
    while (s->tail && (s->entries + 1 > s->max_entries ||
                       s->bytes + charge > s->max_bytes)) {
        if (s->tail->expires_at <= now)
            s->expirations++;
        else
            s->evictions++;
        drop_locked(s, s->tail);
    }
    /* Trim a few more expired entries from the cold end while here. */
    for (int i = 0; i < 2 && s->tail && s->tail->expires_at <= now; i++) {
        drop_locked(s, s->tail);
        s->expirations++;
    }
}

static entry *entry_new(const char *key, size_t klen, tc_value *v,
                        uint64_t now, uint64_t ttl)
{
    entry *e = tc__malloc(sizeof(*e) + klen + 1);
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    e->klen = klen;
    e->val = v;
    e->born = now;
    e->expires_at = tc__add_sat(now, ttl);
    e->charge = sizeof(*e) + klen + 1 + sizeof(tc_value) + v->len + 1;
    return e;
}

static int insert_locked(shard *s, entry *e, uint64_t hash, uint64_t now)
{
    entry *old = find_locked(s, e->key, e->klen, hash);
    if (old)
        drop_locked(s, old);
    make_room_locked(s, e->charge, now);
    uthash_oom = 0;
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->table, e->key, e->klen, (unsigned)hash,
                                e);
    if (uthash_oom)
        return TC_ENOMEM;
    s->entries++;
    s->bytes += e->charge;
    push_front_locked(s, e);
    return TC_OK;
}

static int put(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
               tc_value *v, uint64_t ttl_ms, uint64_t epoch, int bump)
{
    if (l1->off)
        return TC_MISS;
    uint64_t now = now_ms(l1);
    entry *e = ttl_ms ? entry_new(key, klen, v, now, ttl_ms) : NULL;
    shard *s = shard_of(l1, hash);
    int rc = TC_MISS;
    pthread_mutex_lock(&s->mu);
    /* The fill rule (docs/architecture.md §5.2): an invalidation that
       reached this shard after the caller read `epoch` may concern this
       very value, which is then stale; it must not enter. */
    if (epoch != TC__EPOCH_ANY && epoch != s->epoch) {
        s->epoch_drops++;
    } else if (!e) {
        rc = ttl_ms ? TC_ENOMEM : TC_MISS;
    } else if (e->charge <= s->max_bytes) {
        tc__value_ref(v);
        rc = insert_locked(s, e, hash, now);
        if (rc != TC_OK)
            tc_value_release(v);
    }
    /* A value that does not enter must not leave an older one behind:
       the caller's write (or read) is newer than whatever is there. */
    if (rc != TC_OK) {
        entry *old = find_locked(s, key, klen, hash);
        if (old)
            drop_locked(s, old);
    }
    if (bump)
        s->epoch++;
    pthread_mutex_unlock(&s->mu);
    if (rc != TC_OK)
        tc__free(e);
    return rc;
}

int tc__l1_put(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
               tc_value *v, uint64_t ttl_ms, uint64_t epoch)
{
    return put(l1, key, klen, hash, v, ttl_ms, epoch, 0);
}

int tc__l1_put_write(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                     tc_value *v, uint64_t ttl_ms, uint64_t epoch)
{
    return put(l1, key, klen, hash, v, ttl_ms, epoch, 1);
}

void tc__l1_del(tc__l1 *l1, const char *key, size_t klen, uint64_t hash)
{
    shard *s = shard_of(l1, hash);
    pthread_mutex_lock(&s->mu);
    entry *e = find_locked(s, key, klen, hash);
    if (e)
        drop_locked(s, e);
    s->epoch++;
    pthread_mutex_unlock(&s->mu);
}

void tc__l1_del_prefix(tc__l1 *l1, const char *prefix, size_t plen)
{
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = &l1->shards[i].s;
        entry *e, *tmp;
        pthread_mutex_lock(&s->mu);
        HASH_ITER(hh, s->table, e, tmp)
        {
            if (e->klen >= plen && memcmp(e->key, prefix, plen) == 0)
                drop_locked(s, e);
        }
        s->epoch++;
        pthread_mutex_unlock(&s->mu);
    }
}

void tc__l1_clear(tc__l1 *l1)
{
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = &l1->shards[i].s;
        pthread_mutex_lock(&s->mu);
        clear_locked(s);
        pthread_mutex_unlock(&s->mu);
    }
}

void tc__l1_counts(tc__l1 *l1, tc__l1_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = &l1->shards[i].s;
        pthread_mutex_lock(&s->mu);
        out->entries += s->entries;
        out->bytes += s->bytes;
        out->evictions += s->evictions;
        out->expirations += s->expirations;
        out->epoch_drops += s->epoch_drops;
        out->hits += s->hits;
        out->misses += s->misses;
        pthread_mutex_unlock(&s->mu);
    }
}

/* fork(): every shard lock, in index order (no one else ever holds two). */
void tc__l1_lock_all(tc__l1 *l1)
{
    for (uint32_t i = 0; i < l1->nshards; i++)
        pthread_mutex_lock(&l1->shards[i].s.mu);
}

void tc__l1_unlock_all(tc__l1 *l1)
{
    for (uint32_t i = l1->nshards; i-- > 0;)
        pthread_mutex_unlock(&l1->shards[i].s.mu);
}
