/* SPDX-License-Identifier: BSD-3-Clause */
/* L1 store: see l1.h. Everything below a shard's mutex is a *_locked
   helper; the public functions take and drop the lock. */
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>

#include "l1.h"

/* uthash must not exit() on OOM, and must allocate through our wrapper. */
static _Thread_local int uthash_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (uthash_oom = 1)
#define uthash_malloc(sz) tc__malloc(sz)
#define uthash_free(ptr, sz) tc__free(ptr)
#include <uthash.h>

/* An entry and its value are one allocation: the value first (so that
   its last tc_value_release frees the block, whether or not the entry is
   still in the table), then the entry at `voff`, then its key. Nothing
   is kept that can be worked out: the key's length is the hash
   handle's, the charge follows from voff and the key's length, and the
   time it entered from expires_at and ttl. */
typedef struct entry {
    UT_hash_handle hh;         /* hh.key is key[] below */
    struct entry *prev, *next; /* its list: head is the most recent */
    uint64_t expires_at;       /* clock ms */
    uint32_t ttl;              /* ms: it entered at expires_at - ttl */
    uint32_t voff;             /* its value is voff bytes before it */
    uint8_t list;              /* which of the shard's lists holds it */
    uint8_t freq;              /* LFU: its count, 0..FREQ_MAX */
    uint8_t gen;               /* its shard's gen when it entered or was
                                  confirmed; another: it is suspect */
    char key[];
} entry;

#define ENTRY_HEAD offsetof(entry, key)
/* The longest an entry lives in the L1: ttl is 32 bits of ms (49 days). */
#define TTL_MAX UINT32_MAX

static tc_value *val_of(const entry *e)
{
    return (tc_value *)((char *)e - e->voff);
}

/* What malloc takes for n bytes on a 64-bit glibc: a size word, rounded
   up to 16, 32 at least. The bound counts this, so that the bytes it
   reports are the bytes the heap gives up, to within the table's
   buckets (about 2 bytes an entry). */
static size_t heap_size(size_t n)
{
    size_t c = (n + sizeof(size_t) + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

static size_t charge_of(const entry *e)
{
    return heap_size(e->voff + ENTRY_HEAD + e->hh.keylen + 1);
}

/* LRU keeps one list; W-TinyLFU three segments; LFU one list per
   frequency, so that its coldest entry is the tail of the first list
   that is not empty. */
#define FREQ_MAX 15
#define NLISTS (FREQ_MAX + 1)
enum { SEG_WINDOW, SEG_PROBATION, SEG_PROTECTED };

typedef struct list {
    entry *head, *tail;
} list;

/* W-TinyLFU's frequency estimate: SKETCH_ROWS rows of `width` 4-bit
   counters, 16 to a word, behind a doorkeeper (a bloom filter that holds
   a key's first sighting). After `sample` additions every counter halves
   and the doorkeeper empties. LFU uses only `additions` and `sample`, to
   age its entries' counts the same way. A small shard's sketch is sized
   and aged as if its bound were SKETCH_MIN_ENTRIES: with fewer counters
   and a shorter memory, every key that comes back less often than a
   few hundred accesses looks new, and admission turns to LRU. */
#define SKETCH_ROWS 4
#define SKETCH_MAX_WIDTH (1u << 16) /* a row's index is 16 hash bits */
#define SKETCH_MIN_ENTRIES 300
typedef struct sketch {
    uint64_t *rows; /* SKETCH_ROWS * width / 16 words */
    uint64_t *door; /* door_bits / 64 words */
    uint32_t width, door_bits;
    uint64_t additions, sample;
} sketch;

/* A reader's record in one shard (see "readers" below). Only its own
   thread writes it, except while that thread is shut out. */
#define READ_BUF 12 /* hits a reader keeps before it applies them */
typedef struct rslot {
    atomic_uint active; /* 1 while its thread reads the shard */
    uint32_t n;         /* hits in buf, in the order they happened */
    uint64_t misses;    /* not yet added to the shard's */
    entry *buf[READ_BUF];
    char pad[128 - 16 - READ_BUF * sizeof(entry *)];
} rslot;

typedef struct shard {
    /* What a lookup reads, on a line of its own that only a writer
       (under `mu`, `writer` set, every reader gone) ever writes. */
    entry *table;       /* uthash head */
    atomic_uint writer; /* 1 while a writer holds the shard exclusively */
    uint32_t index;     /* its place in the L1's array */
    /* Moves at every tc__l1_suspect: an entry of another gen is not
       served until it is confirmed (tc__l1_confirm). */
    uint8_t gen;
    char pad_r[64 - sizeof(entry *) - 2 * sizeof(uint32_t) - 1];
    /* The rest is under the mutex. */
    pthread_mutex_t mu;
    uint64_t hits, misses; /* applied so far (readers keep theirs) */
    int policy;
    list lists[NLISTS];
    uint64_t epoch;
    uint64_t entries, bytes; /* bytes: the entries', and the table's */
    uint64_t table_bytes;    /* what uthash holds: its header and buckets */
    uint64_t max_entries, max_bytes;
    uint64_t evictions, expirations, epoch_drops;
    uint64_t n[NLISTS];                 /* entries in each list */
    uint64_t window_max, protected_max; /* W-TinyLFU, in entries */
    uint64_t climb_from; /* W-TinyLFU: lookups when the period began */
    uint64_t seed, rng;  /* W-TinyLFU: the cache's seed */
    /* W-TinyLFU's ghosts (see ghost_put): GHOSTS bloom filters of
       ghost_bits bits, the newer and older generation of each kind;
       ghost_n[kind] keys are in its newer one, at most ghost_gen; and
       the window hits minus main hits of the period begun at climb_from. */
    uint64_t *ghost;
    uint64_t ghost_bits, ghost_gen, ghost_n[2];
    int64_t ghost_net;
    sketch sk;
} shard;

/* Shards start on a 128-byte boundary and take whole multiples of it,
   so two cores on two shards never share a line (nor its prefetched
   pair). */
#define LINE 128
#define SHARD_SIZE ((sizeof(shard) + LINE - 1) / LINE * LINE)

/* Threads that read without taking a lock: each has a slot, the same in
   every cache; a thread beyond READ_SLOTS takes the shard's mutex. */
#define READ_SLOTS 64

struct tc__l1 {
    uint32_t nshards; /* a power of two */
    int off;          /* keeps nothing */
    tc_clock_fn clock;
    void *clock_ud;
    uint64_t seed;
    char *shards; /* nshards * SHARD_SIZE bytes, LINE-aligned */
    void *shards_raw;
    /* readers[k]: slot k's rslot in each shard (nshards of them), made
       by slot k's thread at its first read; freed with the L1. */
    _Atomic(rslot *) readers[READ_SLOTS];
    void *readers_raw[READ_SLOTS];
};

/* A shard smaller than this is split no further: tiny bounds over many
   shards would make the bound per shard meaningless. */
#define MIN_SHARD_ENTRIES 64
#define MIN_SHARD_BYTES (64 * 1024)

/* W-TinyLFU's shares of a shard's entry bound, and the admission rule's
   escape hatch: a candidate that loses but has been seen at least
   WARM_FREQ times is still admitted once in ADMIT_RANDOM (a power of
   two), so that keys flooded into the victim's counters cannot lock a
   warm key out for good. */
#define WINDOW_PCT 1
#define PROTECTED_PCT 80
#define WARM_FREQ 6
#define ADMIT_RANDOM 128
/* The window's size follows its ghosts (see ghost_put): each remembers
   the last 1 / GHOST_SHARE of the bound's departures of its kind, in
   two generations of half that, with GHOST_BITS_PER_KEY bits a key (3
   probes: about one false hit in 5,000). The window moves after each
   period of 1 / CLIMB_SHARE of the bound's lookups, and stays between 1
   entry and WINDOW_MAX_PCT of the bound. */
#define GHOST_SHARE 16
#define GHOST_BITS_PER_KEY 64
#define GHOSTS 4            /* filters: 2 kinds, 2 generations each */
#define GHOST_MIN_BITS 1024 /* a small shard's too */
#define CLIMB_SHARE 2
#define WINDOW_MAX_PCT 80
/* Counts age after this many additions per entry of the bound. */
#define SAMPLE_PER_ENTRY 10

static uint64_t now_ms(const tc__l1 *l1)
{
    return l1->clock ? l1->clock(l1->clock_ud) : tc__mono_ms();
}

static shard *shard_at(const tc__l1 *l1, uint32_t i)
{
    return (shard *)(l1->shards + (size_t)i * SHARD_SIZE);
}

static shard *shard_of(tc__l1 *l1, uint64_t hash)
{
    /* high bits pick the shard, low bits the uthash bucket */
    return shard_at(l1, (uint32_t)(hash >> 40) & (l1->nshards - 1));
}

/* n bytes, zeroed, at a LINE boundary; *raw is what to free. */
static void *line_calloc(size_t n, void **raw)
{
    *raw = tc__calloc(1, n + LINE - 1);
    if (!*raw)
        return NULL;
    uintptr_t p = (uintptr_t)*raw;
    return (void *)((p + LINE - 1) & ~(uintptr_t)(LINE - 1));
}

static uint32_t fit_shards(const tc__l1_config *cfg)
{
    uint32_t n = cfg->shards ? cfg->shards : 1;
    while (n > 1 && (cfg->max_entries / n < MIN_SHARD_ENTRIES ||
                     cfg->max_bytes / n < MIN_SHARD_BYTES))
        n /= 2;
    return n;
}

/* splitmix64's finalizer: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t next_rand(shard *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* pct % of n, without overflow for any n (an entry bound may be
   UINT64_MAX: bytes alone bound the L1). */
static uint64_t pct_of(uint64_t n, unsigned pct)
{
    return n / 100 * pct + n % 100 * pct / 100;
}

static void set_window_locked(shard *s, uint64_t window);

/* Ghosts for a shard of `cap` entries (at least 1). */
static int ghost_init(shard *s, uint64_t cap)
{
    s->ghost_gen = cap / GHOST_SHARE / 2 ? cap / GHOST_SHARE / 2 : 1;
    s->ghost_bits = GHOST_MIN_BITS;
    while (s->ghost_bits < GHOST_BITS_PER_KEY * s->ghost_gen)
        s->ghost_bits *= 2;
    s->ghost =
        tc__calloc((size_t)GHOSTS * s->ghost_bits / 64, sizeof(uint64_t));
    return s->ghost ? TC_OK : TC_ENOMEM;
}

static int shard_policy_init(shard *s, const tc__l1_config *cfg, uint64_t seed,
                             uint32_t index)
{
    s->policy = cfg->policy;
    s->seed = seed;
    s->rng = mix64(seed + index + 1) | 1;
    /* The sketch and the aging sample are sized by the entry bound, up
       to the widest row a 16-bit index reaches. */
    uint64_t cap =
        s->max_entries < SKETCH_MAX_WIDTH ? s->max_entries : SKETCH_MAX_WIDTH;
    uint64_t ghost_cap = cap ? cap : 1;
    if (s->policy == TC_POLICY_TINYLFU && cap < SKETCH_MIN_ENTRIES)
        cap = SKETCH_MIN_ENTRIES;
    s->sk.sample =
        cfg->sample ? cfg->sample : (cap ? cap : 1) * SAMPLE_PER_ENTRY;
    set_window_locked(s, pct_of(s->max_entries, WINDOW_PCT));
    if (s->policy != TC_POLICY_TINYLFU)
        return TC_OK;
    if (ghost_init(s, ghost_cap) != TC_OK)
        return TC_ENOMEM;
    /* Four counters a row per entry of the bound: with fewer, the keys
       of a full shard share too many counters and one-hit wonders look
       as frequent as the keys they would displace. */
    uint32_t width = 64;
    while (width < 4 * cap && width < SKETCH_MAX_WIDTH)
        width *= 2;
    s->sk.width = width;
    s->sk.door_bits = width * 4;
    s->sk.rows =
        tc__calloc((size_t)SKETCH_ROWS * width / 16, sizeof(uint64_t));
    s->sk.door = tc__calloc(s->sk.door_bits / 64, sizeof(uint64_t));
    return s->sk.rows && s->sk.door ? TC_OK : TC_ENOMEM;
}

static void shard_policy_free(shard *s)
{
    tc__free(s->sk.rows);
    tc__free(s->sk.door);
    tc__free(s->ghost);
}

int tc__l1_create(tc__l1 **out, const tc__l1_config *cfg)
{
    *out = NULL;
    if (cfg->policy < TC_POLICY_LRU || cfg->policy > TC_POLICY_TINYLFU)
        return TC_EINVAL;
    tc__l1 *l1 = tc__calloc(1, sizeof(*l1));
    if (!l1)
        return TC_ENOMEM;
    l1->off = cfg->max_entries == 0 || cfg->max_bytes == 0;
    l1->clock = cfg->clock;
    l1->clock_ud = cfg->clock_ud;
    /* A seed per cache: which keys share sketch counters differs from
       one process to the next, so no fixed set of keys floods them. */
    l1->seed = cfg->seed ? cfg->seed : tc__rand64();
    l1->nshards = fit_shards(cfg);
    l1->shards = line_calloc(l1->nshards * SHARD_SIZE, &l1->shards_raw);
    if (!l1->shards) {
        tc__free(l1);
        return TC_ENOMEM;
    }
    /* Split the bounds exactly: the shards' bounds add up to the total. */
    int rc = TC_OK;
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = shard_at(l1, i);
        s->index = i;
        pthread_mutex_init(&s->mu, NULL);
        s->max_entries = cfg->max_entries / l1->nshards +
                         (i < cfg->max_entries % l1->nshards);
        s->max_bytes =
            cfg->max_bytes / l1->nshards + (i < cfg->max_bytes % l1->nshards);
        if (rc == TC_OK && !l1->off)
            rc = shard_policy_init(s, cfg, l1->seed, i);
    }
    if (rc != TC_OK) {
        tc__l1_destroy(l1);
        return rc;
    }
    *out = l1;
    return TC_OK;
}

static void list_unlink(list *l, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        l->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        l->tail = e->prev;
}

static void list_push(list *l, entry *e)
{
    e->prev = NULL;
    e->next = l->head;
    if (l->head)
        l->head->prev = e;
    l->head = e;
    if (!l->tail)
        l->tail = e;
}

/* Puts e (in no list) at the front of list `to`. */
static void link_locked(shard *s, entry *e, unsigned to)
{
    e->list = (uint8_t)to;
    list_push(&s->lists[to], e);
    s->n[to]++;
}

/* Moves e to the front of list `to`, from whichever list holds it. */
static void relink_locked(shard *s, entry *e, unsigned to)
{
    list_unlink(&s->lists[e->list], e);
    s->n[e->list]--;
    link_locked(s, e, to);
}

/* Brings the table's share of the shard's bytes up to date: uthash
   doubles its buckets as the table grows, and frees them with its last
   entry. */
static void account_table_locked(shard *s)
{
    uint64_t t = 0;
    if (s->table) {
        const UT_hash_table *tbl = s->table->hh.tbl;
        t = heap_size(sizeof(*tbl)) +
            heap_size(tbl->num_buckets * sizeof(UT_hash_bucket));
    }
    s->bytes = s->bytes - s->table_bytes + t;
    s->table_bytes = t;
}

/* What the table costs with one more entry, at least: a new table's
   header and first buckets, when there is none yet. */
static uint64_t table_room(const shard *s)
{
    return s->table ? s->table_bytes
                    : heap_size(sizeof(UT_hash_table)) +
                          heap_size(HASH_INITIAL_NUM_BUCKETS *
                                    sizeof(UT_hash_bucket));
}

static void unlink_locked(shard *s, entry *e)
{
    HASH_DELETE(hh, s->table, e);
    if (!s->table)
        account_table_locked(s);
    list_unlink(&s->lists[e->list], e);
    s->n[e->list]--;
    s->entries--;
    s->bytes -= charge_of(e);
}

/* Removes e and frees it; the value lives on while others hold it. */
static void drop_locked(shard *s, entry *e)
{
    unlink_locked(s, e);
    tc_value_release(val_of(e)); /* frees e too, unless held */
}

/* Drops e to make room: an expiration if it had expired anyway. */
static void evict_locked(shard *s, entry *e, uint64_t now)
{
    if (e->expires_at <= now)
        s->expirations++;
    else
        s->evictions++;
    drop_locked(s, e);
}

static void clear_locked(shard *s)
{
    for (unsigned i = 0; i < NLISTS; i++)
        while (s->lists[i].head)
            drop_locked(s, s->lists[i].head);
    s->epoch++;
}

void tc__l1_destroy(tc__l1 *l1)
{
    if (!l1)
        return;
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = shard_at(l1, i);
        clear_locked(s);
        HASH_CLEAR(hh, s->table);
        shard_policy_free(s);
        pthread_mutex_destroy(&s->mu);
    }
    for (unsigned k = 0; k < READ_SLOTS; k++)
        tc__free(l1->readers_raw[k]);
    tc__free(l1->shards_raw);
    tc__free(l1);
}

uint32_t tc__l1_shards(const tc__l1 *l1)
{
    return l1->nshards;
}

uint64_t tc__l1_seed(const tc__l1 *l1)
{
    return l1->seed;
}

/* ---- the sketch (W-TinyLFU) ---- */

static unsigned counter_at(const sketch *k, unsigned row, uint64_t h)
{
    uint64_t c =
        row * (uint64_t)k->width + ((h >> (16 * row)) & (k->width - 1));
    return (unsigned)(k->rows[c >> 4] >> ((c & 15) << 2)) & 15;
}

static void counter_inc(sketch *k, unsigned row, uint64_t h)
{
    uint64_t c =
        row * (uint64_t)k->width + ((h >> (16 * row)) & (k->width - 1));
    k->rows[c >> 4] += 1ULL << ((c & 15) << 2);
}

/* The doorkeeper's two bits for h: 1 if both were set already. */
static int door_test(const sketch *k, uint64_t h, int set)
{
    uint64_t g = mix64(h + 0x9E3779B97F4A7C15ULL);
    uint64_t b1 = g & (k->door_bits - 1), b2 = (g >> 32) & (k->door_bits - 1);
    int had = (k->door[b1 >> 6] >> (b1 & 63) & 1) &&
              (k->door[b2 >> 6] >> (b2 & 63) & 1);
    if (set) {
        k->door[b1 >> 6] |= 1ULL << (b1 & 63);
        k->door[b2 >> 6] |= 1ULL << (b2 & 63);
    }
    return had;
}

static unsigned sketch_min(const sketch *k, uint64_t h)
{
    unsigned m = FREQ_MAX;
    for (unsigned r = 0; r < SKETCH_ROWS; r++) {
        unsigned c = counter_at(k, r, h);
        if (c < m)
            m = c;
    }
    return m;
}

/* Halves every count: the sketch forgets the past by half each sample. */
static void sketch_age(sketch *k)
{
    size_t words = (size_t)SKETCH_ROWS * k->width / 16;
    for (size_t i = 0; i < words; i++)
        k->rows[i] = (k->rows[i] >> 1) & 0x7777777777777777ULL;
    memset(k->door, 0, k->door_bits / 8);
    k->additions /= 2;
}

static uint64_t sketch_key(const shard *s, uint64_t hash)
{
    return mix64(hash ^ s->seed);
}

static unsigned sketch_estimate(const shard *s, uint64_t hash)
{
    uint64_t h = sketch_key(s, hash);
    unsigned f = sketch_min(&s->sk, h) + (unsigned)door_test(&s->sk, h, 0);
    return f < FREQ_MAX ? f : FREQ_MAX;
}

/* One access: a first sighting only enters the doorkeeper; later ones
   raise the key's smallest counters (conservative update). */
static void sketch_count(shard *s, uint64_t hash)
{
    sketch *k = &s->sk;
    uint64_t h = sketch_key(s, hash);
    if (door_test(k, h, 1)) {
        unsigned m = sketch_min(k, h);
        for (unsigned r = 0; m < FREQ_MAX && r < SKETCH_ROWS; r++)
            if (counter_at(k, r, h) == m)
                counter_inc(k, r, h);
    }
    if (++k->additions >= k->sample)
        sketch_age(k);
}

/* ---- the ghosts (W-TinyLFU) ---- */

/* The window takes the hits a cache of pure recency would get, the main
   area those of frequency; which of the two wants room shows in the
   keys each has just let go of (as in ARC). Two kinds of ghosts:
   GHOST_WINDOW, the window's candidates that lost the admission and
   left; GHOST_MAIN, the main area's victims. A key that misses while a
   ghost of one kind only is a hit that a window (or main area) a few
   entries bigger would have had. The ghosts are shallow (1 /
   GHOST_SHARE of the bound): they measure what the next few entries are
   worth, not whether a much bigger window would catch a loop. */
enum { GHOST_WINDOW, GHOST_MAIN };

/* Filter `gen` (0: newer, 1: older) of `kind`. */
static uint64_t *ghost_filter(shard *s, unsigned kind, unsigned gen)
{
    return s->ghost + (size_t)(2 * kind + gen) * (s->ghost_bits / 64);
}

/* h's three bits in filter f: 1 if all were set already. */
static int ghost_bits_test(const shard *s, uint64_t *f, uint64_t h, int set)
{
    uint64_t g = mix64(h + 0x632BE59BD9B4E019ULL), m = s->ghost_bits - 1;
    uint64_t b[3] = {g & m, (g >> 21) & m, (g >> 42) & m};
    int had = 1;
    for (int i = 0; i < 3; i++) {
        had &= (int)(f[b[i] >> 6] >> (b[i] & 63) & 1);
        if (set)
            f[b[i] >> 6] |= 1ULL << (b[i] & 63);
    }
    return had;
}

/* e leaves the shard as a ghost of `kind` (unless it expired: it would
   miss anyway). When the newer generation is full it becomes the older
   one, and the older one is forgotten. */
static void ghost_put(shard *s, unsigned kind, const entry *e, uint64_t now)
{
    if (e->expires_at <= now)
        return;
    if (++s->ghost_n[kind] > s->ghost_gen) {
        memcpy(ghost_filter(s, kind, 1), ghost_filter(s, kind, 0),
               s->ghost_bits / 8);
        memset(ghost_filter(s, kind, 0), 0, s->ghost_bits / 8);
        s->ghost_n[kind] = 1;
    }
    uint64_t h = sketch_key(s, e->hh.hashv); /* as sketch_add is given */
    ghost_bits_test(s, ghost_filter(s, kind, 0), h, 1);
}

static int ghost_has(shard *s, unsigned kind, uint64_t h)
{
    return ghost_bits_test(s, ghost_filter(s, kind, 0), h, 0) ||
           ghost_bits_test(s, ghost_filter(s, kind, 1), h, 0);
}

/* A key arrives that was not in the shard: a ghost of one kind only
   counts for its side of the window's boundary. */
static void ghost_check(shard *s, uint64_t hash)
{
    uint64_t h = sketch_key(s, hash);
    int w = ghost_has(s, GHOST_WINDOW, h), m = ghost_has(s, GHOST_MAIN, h);
    if (w != m)
        s->ghost_net += w ? 1 : -1;
}

/* An insert: the key missed (or was written), so the ghosts hear of it
   before the sketch counts it. Hits count through sketch_count alone. */
static void sketch_add(shard *s, uint64_t hash)
{
    ghost_check(s, hash);
    sketch_count(s, hash);
}

/* ---- LFU ---- */

/* Halves every entry's count, keeping each list's order; of two lists
   that merge, the one that had the lower count stays nearer the tail. */
static void lfu_age(shard *s)
{
    for (unsigned f = 1; f < NLISTS; f++) {
        list *from = &s->lists[f], *to = &s->lists[f / 2];
        if (!from->head)
            continue;
        for (entry *e = from->head; e; e = e->next) {
            e->list = (uint8_t)(f / 2);
            e->freq = (uint8_t)(f / 2);
        }
        from->tail->next = to->head;
        if (to->head)
            to->head->prev = from->tail;
        else
            to->tail = from->tail;
        to->head = from->head;
        s->n[f / 2] += s->n[f];
        s->n[f] = 0;
        from->head = from->tail = NULL;
    }
    s->sk.additions /= 2;
}

static void lfu_add(shard *s)
{
    if (++s->sk.additions >= s->sk.sample)
        lfu_age(s);
}

/* ---- the window's climb (W-TinyLFU) ---- */

static void set_window_locked(shard *s, uint64_t window)
{
    uint64_t cap = s->max_entries;
    uint64_t most = pct_of(cap, WINDOW_MAX_PCT);
    if (window > most)
        window = most;
    if (window < 1)
        window = 1;
    s->window_max = window;
    s->protected_max = pct_of(cap > window ? cap - window : 0, PROTECTED_PCT);
    while (s->n[SEG_PROTECTED] > s->protected_max)
        relink_locked(s, s->lists[SEG_PROTECTED].tail, SEG_PROBATION);
    /* a smaller window hands its overflow over at the next insert */
}

/* After a period of 1 / CLIMB_SHARE of the bound's lookups, the window
   moves by one entry for each ghost hit it had over the main area's
   (less for each it had under): the two sides' ghost hits over the
   same period measure which wants the next entries more, whatever the
   period's hit ratio did for reasons of its own. */
static void climb_locked(shard *s)
{
    uint64_t lookups = s->hits + s->misses;
    uint64_t period = s->max_entries / CLIMB_SHARE;
    if (lookups - s->climb_from < (period ? period : 1))
        return;
    s->climb_from = lookups;
    int64_t net = s->ghost_net;
    s->ghost_net = 0;
    if (net == 0)
        return;
    /* the ghosts vouch for their depth, no further */
    int64_t most = (int64_t)(2 * s->ghost_gen);
    net = net > most ? most : net < -most ? -most : net;
    uint64_t w = s->window_max;
    if (net < 0)
        w = (uint64_t)-net < w ? w - (uint64_t)-net : 1;
    else
        w = (uint64_t)net < UINT64_MAX - w ? w + (uint64_t)net : UINT64_MAX;
    set_window_locked(s, w); /* which keeps it within its bounds */
}

/* ---- hits ---- */

static void hit_tinylfu_locked(shard *s, entry *e, uint64_t hash)
{
    sketch_count(s, hash);
    if (e->list != SEG_PROBATION) { /* window or protected: to its front */
        if (s->lists[e->list].head != e)
            relink_locked(s, e, e->list);
        return;
    }
    /* A second touch in probation earns protection; the protected
       segment's overflow goes back to probation's front. */
    relink_locked(s, e, SEG_PROTECTED);
    while (s->n[SEG_PROTECTED] > s->protected_max)
        relink_locked(s, s->lists[SEG_PROTECTED].tail, SEG_PROBATION);
}

static void hit_locked(shard *s, entry *e, uint64_t hash)
{
    if (s->policy == TC_POLICY_LFU) {
        if (e->freq < FREQ_MAX)
            e->freq++;
        relink_locked(s, e, e->freq);
        lfu_add(s);
    } else {
        hit_tinylfu_locked(s, e, hash);
        climb_locked(s);
    }
}

/* One hit, in the order it happened: exact LRU moves e to the front. */
static void apply_hit_locked(shard *s, entry *e)
{
    s->hits++;
    if (s->policy != TC_POLICY_LRU) {
        hit_locked(s, e, e->hh.hashv);
    } else if (s->lists[0].head != e) {
        list_unlink(&s->lists[0], e);
        list_push(&s->lists[0], e);
    }
}

static entry *find_locked(shard *s, const char *key, size_t klen,
                          uint64_t hash)
{
    entry *e = NULL;
    HASH_FIND_BYHASHVALUE(hh, s->table, key, klen, (unsigned)hash, e);
    return e;
}

/* ---- readers ----

   A hit writes nothing that another core reads (docs/architecture.md
   §4.2). The shard's table and its entries' keys, values and times are
   read without the mutex, by a thread that has announced itself in its
   rslot (`active`); what the policy does with the hit (move to the
   front, count) is kept in that rslot and applied later under the
   mutex, in order.

   The invariants:
   - The table, and any entry's hh, key, klen, val, born and expires_at,
     change (and entries are freed) only under exclusion: the mutex held,
     `writer` set, and every rslot of the shard seen inactive after that.
     A reader sets `active`, then finds `writer` clear (both seq_cst:
     one of the two threads sees the other's store), or takes the mutex
     instead.
   - The lists and counts change under the mutex alone: a reader never
     looks at them, and they are other fields than the ones it reads.
   - An rslot's buffer holds only entries that are in the table: exclusion
     applies every buffer of the shard before it changes anything, and a
     thread applies its own under the mutex. So a buffered entry is never
     freed memory, and the order of one thread's hits is kept: on one
     thread, every policy sees exactly the accesses in order, which is
     what the hit-ratio replay measures. */

static atomic_uint_fast64_t slot_map; /* bit k: slot k has a live thread */
static atomic_uint slot_top;          /* 1 + the highest slot ever taken */
/* slot + 1; 0: none yet; SLOT_NONE: all were taken (tried again once
   one is free); SLOT_GONE: the thread is exiting (its slot was given
   back, and a read from a later destructor must not take one). */
static _Thread_local int my_slot;
#define SLOT_NONE (-1)
#define SLOT_GONE (-2)
static pthread_key_t slot_key; /* frees the slot at thread exit */
static int slot_key_ok;
static pthread_once_t slot_once = PTHREAD_ONCE_INIT;

static void slot_release(void *p)
{
    unsigned k = (unsigned)((uintptr_t)p - 1);
    my_slot = SLOT_GONE; /* runs on the exiting thread itself */
    atomic_fetch_and(&slot_map, ~((uint_fast64_t)1 << k));
}

/* In a child of fork() only the forking thread lives on. */
static void slot_child(void)
{
    atomic_store(&slot_map, my_slot > 0
                                ? (uint_fast64_t)1 << (unsigned)(my_slot - 1)
                                : 0);
}

static void slot_init(void)
{
    slot_key_ok = pthread_key_create(&slot_key, slot_release) == 0 &&
                  pthread_atfork(NULL, NULL, slot_child) == 0;
}

/* This thread's slot, taken at its first read; -1 if all are taken. */
static int take_slot(void)
{
    pthread_once(&slot_once, slot_init);
    my_slot = SLOT_NONE;
    if (!slot_key_ok)
        return -1;
    uint_fast64_t map = atomic_load(&slot_map);
    for (;;) {
        if (map == UINT_FAST64_MAX || (READ_SLOTS < 64 && map >> READ_SLOTS))
            return -1;
        unsigned k = (unsigned)__builtin_ctzll(~(unsigned long long)map);
        if (k >= READ_SLOTS)
            return -1;
        if (!atomic_compare_exchange_weak(&slot_map, &map,
                                          map | (uint_fast64_t)1 << k))
            continue;
        if (pthread_setspecific(slot_key, (void *)(uintptr_t)(k + 1)) != 0) {
            atomic_fetch_and(&slot_map, ~((uint_fast64_t)1 << k));
            return -1;
        }
        unsigned top = atomic_load(&slot_top);
        while (top < k + 1 &&
               !atomic_compare_exchange_weak(&slot_top, &top, k + 1))
            ;
        my_slot = (int)k + 1;
        return (int)k;
    }
}

unsigned tc__l1_reader_slots(void)
{
    return (unsigned)__builtin_popcountll(atomic_load(&slot_map));
}

/* This thread's rslot in s, or NULL: no slot, or no memory for one. */
static rslot *my_rslot(tc__l1 *l1, shard *s)
{
    int k = my_slot - 1;
    if (my_slot <= 0) {
        if (my_slot == SLOT_GONE ||
            (my_slot == SLOT_NONE &&
             atomic_load_explicit(&slot_map, memory_order_relaxed) ==
                 UINT_FAST64_MAX))
            return NULL;
        if ((k = take_slot()) < 0)
            return NULL;
    }
    rslot *r = atomic_load_explicit(&l1->readers[k], memory_order_acquire);
    if (!r) {
        /* Only slot k's thread makes it: no race with another maker. */
        r = line_calloc(l1->nshards * sizeof(rslot), &l1->readers_raw[k]);
        if (!r)
            return NULL;
        atomic_store_explicit(&l1->readers[k], r, memory_order_release);
    }
    return &r[s->index];
}

/* Applies r's hits and misses to s; under s's mutex, r's thread either
   the caller or shut out. */
static void drain_locked(shard *s, rslot *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        apply_hit_locked(s, r->buf[i]);
    r->n = 0;
    s->misses += r->misses;
    r->misses = 0;
}

/* Exclusion: the mutex, `writer` set, every reader of s gone and its
   hits applied. */
static void lock_excl(tc__l1 *l1, shard *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->writer, 1);
    unsigned top = atomic_load(&slot_top);
    for (unsigned k = 0; k < top; k++) {
        /* seq_cst, as the store of writer above: a slot's first read
           publishes its rslots (release), then sets active; were this
           load outside the single order, it could miss the rslots while
           that reader misses writer. */
        rslot *b = atomic_load(&l1->readers[k]);
        if (!b)
            continue;
        rslot *r = &b[s->index];
        for (unsigned spin = 0; atomic_load(&r->active); spin++)
            if (spin >= 64)
                sched_yield();
        drain_locked(s, r);
    }
    if (s->policy == TC_POLICY_TINYLFU)
        climb_locked(s);
}

static void unlock_excl(shard *s)
{
    atomic_store_explicit(&s->writer, 0, memory_order_release);
    pthread_mutex_unlock(&s->mu);
}

/* What a lookup found. */
enum { R_MISS, R_HIT, R_EXPIRED };

static int look(shard *s, const char *key, size_t klen, uint64_t hash,
                uint64_t now, uint64_t max_age, entry **out)
{
    entry *e = find_locked(s, key, klen, hash);
    *out = e;
    if (!e)
        return R_MISS;
    if (e->expires_at <= now)
        return R_EXPIRED;
    if (e->gen != s->gen)
        return R_MISS; /* suspect: Redis decides */
    uint64_t born = e->expires_at - e->ttl;
    return now - born > max_age ? R_MISS : R_HIT;
}

/* Drops key's entry if it has expired: a write like any other. */
static void expire(tc__l1 *l1, shard *s, const char *key, size_t klen,
                   uint64_t hash, uint64_t now)
{
    lock_excl(l1, s);
    entry *e = find_locked(s, key, klen, hash);
    if (e && e->expires_at <= now) {
        drop_locked(s, e);
        s->expirations++;
    }
    unlock_excl(s);
}

/* The lookup under the mutex, for a thread without an rslot or one that
   met a writer: the table cannot change (writers hold the mutex), and
   the policy is applied at once, after the thread's own earlier hits. */
static int read_locked(shard *s, rslot *r, const char *key, size_t klen,
                       uint64_t hash, uint64_t now, uint64_t max_age,
                       tc__l1_read_fn fn, void *ud)
{
    pthread_mutex_lock(&s->mu);
    if (r)
        drain_locked(s, r);
    entry *e;
    int found = look(s, key, klen, hash, now, max_age, &e);
    if (found == R_HIT) {
        apply_hit_locked(s, e);
        fn(ud, val_of(e));
    } else {
        s->misses++;
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

int tc__l1_read(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                uint64_t max_age, tc__l1_read_fn fn, void *ud)
{
    if (l1->off)
        return TC_MISS;
    uint64_t now = now_ms(l1);
    shard *s = shard_of(l1, hash);
    rslot *r = my_rslot(l1, s);
    int found = -1, full = 0;
    if (r) {
        atomic_store(&r->active, 1);
        if (!atomic_load(&s->writer)) {
            entry *e;
            found = look(s, key, klen, hash, now, max_age, &e);
            if (found == R_HIT) {
                r->buf[r->n++] = e;
                full = r->n == READ_BUF;
                fn(ud, val_of(e));
            } else {
                r->misses++;
            }
        }
        /* From here a writer may apply r's hits: r is not read again
           but under the mutex. */
        atomic_store_explicit(&r->active, 0, memory_order_release);
        if (full) {
            pthread_mutex_lock(&s->mu);
            drain_locked(s, r);
            if (s->policy == TC_POLICY_TINYLFU)
                climb_locked(s);
            pthread_mutex_unlock(&s->mu);
        }
    }
    if (found < 0)
        found = read_locked(s, r, key, klen, hash, now, max_age, fn, ud);
    if (found == R_EXPIRED)
        expire(l1, s, key, klen, hash, now);
    return found == R_HIT ? TC_OK : TC_MISS;
}

static void take_ref(void *ud, tc_value *v)
{
    *(tc_value **)ud = tc__value_ref(v);
}

tc_value *tc__l1_get(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                     uint64_t max_age)
{
    tc_value *v = NULL;
    tc__l1_read(l1, key, klen, hash, max_age, take_ref, &v);
    return v;
}

unsigned tc__l1_frequency(tc__l1 *l1, const char *key, size_t klen,
                          uint64_t hash)
{
    if (l1->off)
        return 0;
    shard *s = shard_of(l1, hash);
    unsigned f = 0;
    lock_excl(l1, s);
    if (s->policy == TC_POLICY_TINYLFU) {
        f = sketch_estimate(s, (unsigned)hash);
    } else if (s->policy == TC_POLICY_LFU) {
        entry *e = find_locked(s, key, klen, hash);
        f = e ? e->freq : 0;
    }
    unlock_excl(s);
    return f;
}

uint64_t tc__l1_window(tc__l1 *l1, uint64_t hash)
{
    shard *s = shard_of(l1, hash);
    lock_excl(l1, s);
    uint64_t w = s->policy == TC_POLICY_TINYLFU ? s->window_max : 0;
    unlock_excl(s);
    return w;
}

uint64_t tc__l1_epoch(tc__l1 *l1, uint64_t hash)
{
    shard *s = shard_of(l1, hash);
    pthread_mutex_lock(&s->mu);
    uint64_t epoch = s->epoch;
    pthread_mutex_unlock(&s->mu);
    return epoch;
}

/* LRU and LFU: the entry to evict next. */
static entry *cold_locked(shard *s)
{
    for (unsigned i = 0; i < NLISTS; i++)
        if (s->lists[i].tail)
            return s->lists[i].tail;
    return NULL;
}

/* LRU and LFU: makes room for `charge` more bytes and one more entry:
   expired entries at the cold end go first (counted as expirations),
   then the LRU (the least frequent, least recent for LFU). */
static void make_room_locked(shard *s, size_t charge, uint64_t now)
{
    entry *e;
    while ((e = cold_locked(s)) && (s->entries + 1 > s->max_entries ||
                                    s->bytes + charge > s->max_bytes))
        evict_locked(s, e, now);
    /* Trim a few more expired entries from the cold end while here. */
    for (int i = 0; i < 2 && (e = cold_locked(s)) && e->expires_at <= now;
         i++) {
        drop_locked(s, e);
        s->expirations++;
    }
}

/* LRU and LFU, once e is in: the table may have grown its buckets past
   the byte bound; the coldest others make up for it. */
static void trim_locked(shard *s, const entry *e, uint64_t now)
{
    for (unsigned i = 0; i < NLISTS && s->bytes > s->max_bytes; i++) {
        entry *c = s->lists[i].tail;
        while (c && s->bytes > s->max_bytes) {
            entry *prev = c->prev;
            if (c != e)
                evict_locked(s, c, now);
            c = prev;
        }
    }
}

/* W-TinyLFU's admission: does the window's candidate deserve the main
   area's victim's place? */
static int admit_locked(shard *s, const entry *cand, const entry *victim)
{
    unsigned fc = sketch_estimate(s, cand->hh.hashv);
    unsigned fv = sketch_estimate(s, victim->hh.hashv);
    if (fc > fv)
        return 1;
    return fc >= WARM_FREQ && (next_rand(s) & (ADMIT_RANDOM - 1)) == 0;
}

/* W-TinyLFU, after an entry entered the window: the window's overflow
   moves to probation, as long as the main area has room; once the
   bounds are reached, each overflowing candidate meets the main area's
   victim (probation's tail, else protected's) and one of them goes. */
static void tinylfu_balance_locked(shard *s, uint64_t now)
{
    for (;;) {
        int over = s->entries > s->max_entries || s->bytes > s->max_bytes;
        entry *victim = s->lists[SEG_PROBATION].tail;
        if (!victim)
            victim = s->lists[SEG_PROTECTED].tail;
        if (s->n[SEG_WINDOW] > s->window_max) {
            entry *cand = s->lists[SEG_WINDOW].tail;
            if (!over || !victim) {
                relink_locked(s, cand, SEG_PROBATION);
            } else if (cand->expires_at <= now) {
                evict_locked(s, cand, now);
            } else if (victim->expires_at <= now ||
                       admit_locked(s, cand, victim)) {
                ghost_put(s, GHOST_MAIN, victim, now);
                evict_locked(s, victim, now);
                relink_locked(s, cand, SEG_PROBATION);
            } else {
                ghost_put(s, GHOST_WINDOW, cand, now);
                evict_locked(s, cand, now);
            }
            continue;
        }
        if (!over)
            break;
        entry *out = victim ? victim : s->lists[SEG_WINDOW].tail;
        ghost_put(s, victim ? GHOST_MAIN : GHOST_WINDOW, out, now);
        evict_locked(s, out, now);
    }
    /* Trim a few expired entries from the cold ends while here. */
    for (unsigned l = SEG_WINDOW; l <= SEG_PROBATION; l++) {
        entry *e = s->lists[l].tail;
        if (e && e->expires_at <= now && s->entries > 1) {
            drop_locked(s, e);
            s->expirations++;
        }
    }
}

/* A new entry for key holding a copy of v, which it owns: the block's
   one reference. */
static entry *entry_new(const char *key, size_t klen, const tc_value *v,
                        uint64_t now, uint64_t ttl)
{
    size_t voff = (sizeof(tc_value) + v->len + 1 + 7) & ~(size_t)7;
    tc_value *nv = tc__malloc(voff + ENTRY_HEAD + klen + 1);
    if (!nv)
        return NULL;
    atomic_init(&nv->refs, 1);
    nv->flags = v->flags;
    nv->delta_ms = v->delta_ms;
    nv->expires_at = v->expires_at;
    nv->wver = v->wver;
    nv->len = v->len;
    memcpy(nv->data, v->data, v->len + 1);
    entry *e = (entry *)((char *)nv + voff);
    memset(e, 0, ENTRY_HEAD);
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    e->hh.keylen = (unsigned)klen; /* for charge_of before it is added */
    e->voff = (uint32_t)voff;
    e->ttl = ttl < TTL_MAX ? (uint32_t)ttl : TTL_MAX;
    e->expires_at = now + e->ttl;
    return e;
}

static int insert_locked(shard *s, entry *e, uint64_t hash, uint64_t now)
{
    size_t klen = e->hh.keylen, charge = charge_of(e);
    entry *old = find_locked(s, e->key, klen, hash);
    if (old)
        drop_locked(s, old);
    if (s->policy != TC_POLICY_TINYLFU)
        make_room_locked(s, charge, now);
    uthash_oom = 0;
    HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->table, e->key, klen, (unsigned)hash, e);
    if (uthash_oom)
        return TC_ENOMEM;
    e->gen = s->gen;
    s->entries++;
    s->bytes += charge;
    account_table_locked(s);
    switch (s->policy) {
    case TC_POLICY_LRU:
        link_locked(s, e, 0);
        trim_locked(s, e, now);
        break;
    case TC_POLICY_LFU:
        e->freq = 1;
        link_locked(s, e, 1);
        lfu_add(s);
        trim_locked(s, e, now);
        break;
    default:
        sketch_add(s, (unsigned)hash); /* as hits do: the table's hash */
        link_locked(s, e, SEG_WINDOW);
        tinylfu_balance_locked(s, now);
        break;
    }
    return TC_OK;
}

/* Is there room in s for e without evicting anything? A replaced entry
   of the same key makes room for it. */
static int has_room_locked(shard *s, const entry *e, uint64_t hash)
{
    entry *old = find_locked(s, e->key, e->hh.keylen, hash);
    uint64_t entries = s->entries - (old ? 1 : 0);
    uint64_t bytes = s->bytes - (old ? charge_of(old) : 0);
    return entries + 1 <= s->max_entries &&
           bytes + charge_of(e) <= s->max_bytes;
}

static int put(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
               tc_value *v, uint64_t ttl_ms, uint64_t epoch, int bump,
               int no_evict)
{
    if (l1->off)
        return TC_MISS;
    uint64_t now = now_ms(l1);
    entry *e = ttl_ms ? entry_new(key, klen, v, now, ttl_ms) : NULL;
    shard *s = shard_of(l1, hash);
    int rc = TC_MISS;
    lock_excl(l1, s);
    /* The fill rule (docs/architecture.md §5.2): an invalidation that
       reached this shard after the caller read `epoch` may concern this
       very value, which is then stale; it must not enter. */
    if (epoch != TC__EPOCH_ANY && epoch != s->epoch) {
        s->epoch_drops++;
    } else if (!e) {
        rc = ttl_ms ? TC_ENOMEM : TC_MISS;
    } else if (no_evict && !has_room_locked(s, e, hash)) {
        rc = TC_ETOOBIG; /* full: what is there stays */
    } else if (charge_of(e) + table_room(s) <= s->max_bytes) {
        rc = insert_locked(s, e, hash, now);
    }
    /* A value that does not enter must not leave an older one behind:
       the caller's write (or read) is newer than whatever is there. */
    if (rc != TC_OK && rc != TC_ETOOBIG) {
        entry *old = find_locked(s, key, klen, hash);
        if (old)
            drop_locked(s, old);
    }
    if (bump)
        s->epoch++;
    unlock_excl(s);
    if (rc != TC_OK && e)
        tc_value_release(val_of(e));
    return rc;
}

int tc__l1_put(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
               tc_value *v, uint64_t ttl_ms, uint64_t epoch)
{
    return put(l1, key, klen, hash, v, ttl_ms, epoch, 0, 0);
}

int tc__l1_put_room(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                    tc_value *v, uint64_t ttl_ms, uint64_t epoch)
{
    return put(l1, key, klen, hash, v, ttl_ms, epoch, 0, 1);
}

int tc__l1_put_write(tc__l1 *l1, const char *key, size_t klen, uint64_t hash,
                     tc_value *v, uint64_t ttl_ms, uint64_t epoch)
{
    return put(l1, key, klen, hash, v, ttl_ms, epoch, 1, 0);
}

void tc__l1_del(tc__l1 *l1, const char *key, size_t klen, uint64_t hash)
{
    shard *s = shard_of(l1, hash);
    lock_excl(l1, s);
    entry *e = find_locked(s, key, klen, hash);
    if (e)
        drop_locked(s, e);
    s->epoch++;
    unlock_excl(s);
}

void tc__l1_del_prefix(tc__l1 *l1, const char *prefix, size_t plen)
{
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = shard_at(l1, i);
        entry *e, *tmp;
        lock_excl(l1, s);
        HASH_ITER(hh, s->table, e, tmp)
        {
            if (e->hh.keylen >= plen && memcmp(e->key, prefix, plen) == 0)
                drop_locked(s, e);
        }
        s->epoch++;
        unlock_excl(s);
    }
}

void tc__l1_clear(tc__l1 *l1)
{
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = shard_at(l1, i);
        lock_excl(l1, s);
        clear_locked(s);
        unlock_excl(s);
    }
}

void tc__l1_suspect(tc__l1 *l1)
{
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = shard_at(l1, i);
        lock_excl(l1, s);
        s->epoch++;
        /* 256 suspicions on: an entry not confirmed since the first
           would pass for a confirmed one. None is left to. */
        if (++s->gen == 0)
            clear_locked(s);
        unlock_excl(s);
    }
}

size_t tc__l1_suspects(tc__l1 *l1, uint32_t i, tc__l1_check **out)
{
    shard *s = shard_at(l1, i);
    uint64_t now = now_ms(l1);
    entry *e, *tmp;
    size_t n = 0;
    *out = NULL;
    /* The mutex alone: the table only changes under it (the readers that
       go on meanwhile change nothing), and nothing is written here but
       reference counts. One pass: resuming in the middle of a table
       that changed in between would mean starting it over. */
    pthread_mutex_lock(&s->mu);
    HASH_ITER(hh, s->table, e, tmp)
    {
        n += e->gen != s->gen && e->expires_at > now;
    }
    tc__l1_check *a = n ? tc__malloc(n * sizeof(*a)) : NULL;
    size_t k = 0;
    HASH_ITER(hh, s->table, e, tmp)
    {
        if (!a)
            break;
        if (e->gen == s->gen || e->expires_at <= now)
            continue;
        a[k].v = tc__value_ref(val_of(e));
        a[k].key = e->key;
        a[k].klen = e->hh.keylen;
        k++;
    }
    pthread_mutex_unlock(&s->mu);
    if (n && !a)
        return (size_t)-1;
    *out = a;
    return k;
}

int tc__l1_confirm(tc__l1 *l1, const tc__l1_check *k, uint64_t hash, int same)
{
    shard *s = shard_of(l1, hash);
    int verdict = -1;
    lock_excl(l1, s);
    entry *e = find_locked(s, k->key, k->klen, hash);
    /* No epoch moves: a fill racing this one read Redis after the
       subscription (an older one was refused at the suspicion), so what
       it brings is as new as what is confirmed here. */
    /* Still the entry that was checked, and still suspect: a newer one
       (a fill, a write) or a later suspicion is left as it is. */
    if (e && val_of(e) == k->v && e->gen != s->gen) {
        if (same) {
            e->gen = s->gen;
            verdict = 1;
        } else {
            drop_locked(s, e);
            verdict = 0;
        }
    }
    unlock_excl(s);
    return verdict;
}

void tc__l1_counts(tc__l1 *l1, tc__l1_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < l1->nshards; i++) {
        shard *s = shard_at(l1, i);
        lock_excl(l1, s); /* applies what readers keep: exact counts */
        out->entries += s->entries;
        out->bytes += s->bytes;
        out->evictions += s->evictions;
        out->expirations += s->expirations;
        out->epoch_drops += s->epoch_drops;
        out->hits += s->hits;
        out->misses += s->misses;
        unlock_excl(s);
    }
}

/* fork(): every shard held exclusively, in index order (no one else
   ever holds two), so that no child inherits a reader's `active`. */
void tc__l1_lock_all(tc__l1 *l1)
{
    for (uint32_t i = 0; i < l1->nshards; i++)
        lock_excl(l1, shard_at(l1, i));
}

void tc__l1_after_fork_child(tc__l1 *l1)
{
    /* A parent's reader caught between setting active and clearing it
       (it had seen writer set) is not in the child: no one else would
       clear it, and the child's first write would wait for ever. */
    for (unsigned k = 0; k < READ_SLOTS; k++) {
        rslot *b = atomic_load(&l1->readers[k]);
        for (uint32_t i = 0; b && i < l1->nshards; i++)
            atomic_store(&b[i].active, 0);
    }
}

void tc__l1_unlock_all(tc__l1 *l1)
{
    for (uint32_t i = l1->nshards; i-- > 0;)
        unlock_excl(shard_at(l1, i));
}
