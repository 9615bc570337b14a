/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Redis Cluster (docs/architecture.md §5.9): see cluster.h.
 *
 * Nodes are created as the map names them and never freed before the
 * cache: a call may hold a node while another thread changes the map,
 * and a cluster has few nodes. The map (slot -> node index) is read
 * without a lock: each entry is one atomic, and a node's pointer is
 * published (release) before any slot names its index.
 *
 * Keys are "<ns>:{<key>}", so a key, its lease "<ns>:{<key>}:lease" and
 * a group's generation key share their slot: the store script, which
 * touches a key and its lease, runs on one node.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "conn.h"

#define NODES_MAX 256
#define NO_NODE 0xffff
/* How often the map may be asked for: after a MOVED (the map is wrong),
   and after a node did not answer (it may have been replaced; the
   listener, retrying its link, asks too). */
#define REFRESH_MOVED_MS 100
#define REFRESH_DOWN_MS 1000
#define HOPS_MAX 5 /* redirections followed for one command */

struct tc__cluster {
    tc_options o;
    tc__topo t;
    const tc__logger *lg;
    tc__counters *ctr;

    pthread_mutex_t mu; /* guards node creation, masters, gen */
    tc__l2 *_Atomic nodes[NODES_MAX];
    tc__addr addrs[NODES_MAX];
    atomic_uint nnodes;
    _Atomic uint16_t owner[TC__SLOTS];
    /* the masters (nodes owning a slot), and their generation */
    uint16_t masters[NODES_MAX];
    size_t nmasters;
    atomic_int incomplete; /* a slot has no live master (a failover) */
    int full_logged;       /* NODES_MAX reached, said once; under mu */
    /* why the last refresh found no map, and a refusal among the
       reasons (a wrong password), for tc_health before any node is
       known; under mu */
    char map_error[128];
    int map_refusal;
    _Atomic uint64_t gen;

    atomic_int refreshing;
    _Atomic uint64_t last_try;
};

/* ---- slots ---- */

static uint16_t crc16(const char *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((unsigned char)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021)
                               : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned tc__cluster_slot_of_tag(const char *tag, size_t len)
{
    return crc16(tag, len) % TC__SLOTS;
}

unsigned tc__cluster_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) % TC__SLOTS;
    }
    return crc16(key, len) % TC__SLOTS;
}

/* ---- nodes ---- */

static tc__l2 *node(tc__cluster *cl, unsigned i)
{
    return atomic_load_explicit(&cl->nodes[i], memory_order_acquire);
}

/* The index of a's node, made if new; NO_NODE if out of room or memory. */
static unsigned node_at_locked(tc__cluster *cl, const tc__addr *a)
{
    unsigned n = atomic_load(&cl->nnodes);
    for (unsigned i = 0; i < n; i++)
        if (tc__addr_eq(&cl->addrs[i], a))
            return i;
    tc__l2 *l2;
    if (n == NODES_MAX) {
        if (!cl->full_logged++)
            tc__log(cl->lg, TC_LOG_ERROR, "cluster.full",
                    "cluster: more than %d node addresses seen; new ones "
                    "are not followed (reopen the cache)",
                    NODES_MAX);
        return NO_NODE;
    }
    if (tc__l2_node_create(&l2, &cl->o, a, cl->lg, cl->ctr) != TC_OK)
        return NO_NODE;
    cl->addrs[n] = *a;
    atomic_store_explicit(&cl->nodes[n], l2, memory_order_release);
    atomic_store(&cl->nnodes, n + 1);
    return n;
}

static unsigned node_at(tc__cluster *cl, const tc__addr *a)
{
    pthread_mutex_lock(&cl->mu);
    unsigned i = node_at_locked(cl, a);
    pthread_mutex_unlock(&cl->mu);
    return i;
}

/* ---- the map ---- */

/* The masters as CLUSTER NODES lists them now (seen), the generation
   moving if the set changed. mu held. */
static void set_masters_locked(tc__cluster *cl, const char *seen)
{
    uint16_t m[NODES_MAX];
    size_t n = 0;
    unsigned nn = atomic_load(&cl->nnodes);
    for (unsigned i = 0; i < nn; i++)
        if (seen[i])
            m[n++] = (uint16_t)i;
    int same = n == cl->nmasters;
    for (size_t k = 0; same && k < n; k++)
        same = seen[cl->masters[k]];
    if (same)
        return;
    memcpy(cl->masters, m, n * sizeof(*m));
    cl->nmasters = n;
    atomic_fetch_add(&cl->gen, 1);
}

/* The next space-separated field of a line, NUL-terminated in place. */
static char *field(char **p)
{
    while (**p == ' ')
        ++*p;
    if (!**p)
        return NULL;
    char *f = *p;
    while (**p && **p != ' ')
        ++*p;
    if (**p)
        *(*p)++ = '\0';
    return f;
}

static int has_flag(const char *flags, const char *f)
{
    size_t n = strlen(f);
    for (const char *p = flags; p; p = strchr(p, ',')) {
        p += *p == ',';
        if (strncmp(p, f, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    }
    return 0;
}

/* "host:port@cport[,hostname]" into a; "" host (a node that does not
   know its address yet): the one we asked. -1 if malformed. */
static int node_addr(char *s, tc__addr *a, const tc__addr *asked)
{
    char *at = strchr(s, '@');
    if (at)
        *at = '\0';
    char *colon = strrchr(s, ':');
    uint64_t port;
    if (!colon || tc__parse_whole(colon + 1, 1, 65535, &port) != TC__NUM_OK)
        return -1;
    *colon = '\0';
    if ((size_t)(colon - s) >= sizeof(a->host))
        return -1;
    if (*s)
        memcpy(a->host, s, (size_t)(colon - s) + 1);
    else
        memcpy(a->host, asked->host, sizeof(a->host));
    a->port = (int)port;
    return 0;
}

/* One line of CLUSTER NODES: "<id> <addr> <flags> <master> <ping> <pong>
   <epoch> <link> <slot>..." where a slot is "n", "a-b", or a migration
   in brackets (skipped: the owner is the node without brackets). A
   master that is not marked failed is watched even with no slot: a slot
   may migrate to it. */
static void apply_line(tc__cluster *cl, char *line, const tc__addr *asked,
                       char *seen)
{
    char *p = line, *f[8];
    for (int k = 0; k < 8; k++)
        if (!(f[k] = field(&p)))
            return;
    tc__addr a;
    if (!has_flag(f[2], "master") || has_flag(f[2], "fail") ||
        has_flag(f[2], "noaddr") || has_flag(f[2], "handshake") ||
        node_addr(f[1], &a, asked) != 0)
        return;
    unsigned i = node_at_locked(cl, &a);
    if (i == NO_NODE)
        return;
    seen[i] = 1;
    for (char *slot; (slot = field(&p)) != NULL;) {
        char *end;
        if (slot[0] == '[')
            continue;
        unsigned long lo = strtoul(slot, &end, 10), hi = lo;
        if (*end == '-')
            hi = strtoul(end + 1, &end, 10);
        if (*end || lo > hi || hi >= TC__SLOTS)
            continue;
        for (unsigned long s = lo; s <= hi; s++)
            atomic_store_explicit(&cl->owner[s], (uint16_t)i,
                                  memory_order_release);
    }
}

/* Applies a CLUSTER NODES reply; 0, or -1 if it names no master. */
static int apply(tc__cluster *cl, const redisReply *r, const tc__addr *asked)
{
    if (r->type != REDIS_REPLY_STRING)
        return -1;
    char *text = tc__malloc(r->len + 1);
    if (!text)
        return -1;
    memcpy(text, r->str, r->len);
    text[r->len] = '\0';
    char seen[NODES_MAX] = {0};
    pthread_mutex_lock(&cl->mu);
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        apply_line(cl, line, asked, seen);
    }
    int any = memchr(seen, 1, sizeof(seen)) != NULL;
    if (any) {
        set_masters_locked(cl, seen);
        int orphans = 0;
        for (unsigned s = 0; s < TC__SLOTS && !orphans; s++) {
            uint16_t i =
                atomic_load_explicit(&cl->owner[s], memory_order_relaxed);
            orphans = i == NO_NODE || !seen[i];
        }
        atomic_store(&cl->incomplete, orphans);
    }
    pthread_mutex_unlock(&cl->mu);
    tc__free(text);
    return any ? 0 : -1;
}

/* CLUSTER NODES from a; 0 when the map was updated. */
static int ask(tc__cluster *cl, const tc__addr *a, char *err, size_t cap,
               int *refusal)
{
    redisContext *ctx = tc__conn_open(&cl->o, a, cl->o.connect_timeout_ms,
                                      "probe", err, cap, refusal);
    if (!ctx)
        return -1;
    redisReply *r = redisCommand(ctx, "CLUSTER NODES");
    int rc = r ? apply(cl, r, a) : -1;
    if (rc != 0)
        snprintf(err, cap, "CLUSTER NODES: %.100s",
                 !r                             ? ctx->errstr
                 : r->type == REDIS_REPLY_ERROR ? r->str
                                                : "not a slot map");
    freeReplyObject(r);
    redisFree(ctx);
    return rc;
}

/* 1 when the node's last call worked (its breaker is closed). */
static int node_up(tc__cluster *cl, unsigned i)
{
    tc_health_info h;
    memset(&h, 0, sizeof(h));
    tc__l2_health(node(cl, i), &h);
    return h.l2_connected;
}

/* The known nodes that answer first (a dead master would cost a connect
   timeout), then the others, then the seeds. */
static void refresh_now(tc__cluster *cl)
{
    char err[160] = "no node answered";
    /* A node's address never changes once published (nnodes): read with
       no lock. The sweep stops after a few nodes' worth of timeouts. */
    uint64_t give_up =
        tc__mono_ms() +
        3 * ((uint64_t)cl->o.connect_timeout_ms + cl->o.command_timeout_ms);
    unsigned nn = atomic_load(&cl->nnodes);
    int refusal = TC_REFUSAL_NONE, any = TC_REFUSAL_NONE;
    for (int up = 1; up >= 0; up--)
        for (unsigned i = 0; i < nn && tc__mono_ms() < give_up; i++) {
            if (node_up(cl, i) != up)
                continue;
            if (ask(cl, &cl->addrs[i], err, sizeof(err), &refusal) == 0)
                return;
            any = any ? any : refusal;
        }
    for (size_t i = 0; i < cl->t.n && tc__mono_ms() < give_up; i++) {
        if (ask(cl, &cl->t.nodes[i], err, sizeof(err), &refusal) == 0)
            return;
        any = any ? any : refusal;
    }
    pthread_mutex_lock(&cl->mu);
    snprintf(cl->map_error, sizeof(cl->map_error), "cluster: %.110s", err);
    int news = any && any != cl->map_refusal; /* a refusal: said once */
    cl->map_refusal = any;
    pthread_mutex_unlock(&cl->mu);
    if (news)
        tc__log(cl->lg, TC_LOG_ERROR, "cluster.map.refused",
                "cluster: no slot map: %s", err);
    else
        tc__log(cl->lg, TC_LOG_DEBUG, "cluster.map.failed",
                "cluster: no slot map: %s", err);
}

void tc__cluster_refresh(tc__cluster *cl, int force)
{
    tc__cluster_refresh_after(cl, force ? 0 : REFRESH_MOVED_MS);
}

void tc__cluster_refresh_after(tc__cluster *cl, uint64_t min_ms)
{
    uint64_t now = tc__mono_ms();
    int idle = 0;
    if ((!min_ms || now - atomic_load(&cl->last_try) >= min_ms) &&
        atomic_compare_exchange_strong(&cl->refreshing, &idle, 1)) {
        atomic_store(&cl->last_try, now);
        refresh_now(cl);
        atomic_store(&cl->refreshing, 0);
    }
}

int tc__cluster_create(tc__cluster **out, const tc_options *o,
                       const tc__topo *t, const tc__logger *lg,
                       tc__counters *ctr)
{
    tc__cluster *cl = tc__calloc(1, sizeof(*cl));
    *out = cl;
    if (!cl)
        return TC_ENOMEM;
    cl->o = *o;
    cl->t = *t;
    cl->lg = lg;
    cl->ctr = ctr;
    pthread_mutex_init(&cl->mu, NULL);
    for (unsigned s = 0; s < TC__SLOTS; s++)
        atomic_init(&cl->owner[s], NO_NODE);
    tc__cluster_refresh(cl, 1);
    return TC_OK;
}

void tc__cluster_destroy(tc__cluster *cl)
{
    if (!cl)
        return;
    unsigned n = atomic_load(&cl->nnodes);
    for (unsigned i = 0; i < n; i++)
        tc__l2_destroy(node(cl, i));
    pthread_mutex_destroy(&cl->mu);
    tc__free(cl);
}

/* ---- routing ---- */

enum { REDIRECT_NONE, REDIRECT_MOVED, REDIRECT_ASK, REDIRECT_TRYAGAIN };

typedef struct route {
    tc__l2_reply_fn fn;
    void *ud;
    const tc__addr *from; /* the node asked */
    int called;           /* the node answered */
    int redirect;
    unsigned slot;
    tc__addr to;
} route;

/* "MOVED <slot> <host>:<port>" or "ASK ...": where to go instead. */
static int parse_redirect(route *rt, const char *err)
{
    int kind = strncmp(err, "MOVED ", 6) == 0 ? REDIRECT_MOVED
               : strncmp(err, "ASK ", 4) == 0 ? REDIRECT_ASK
                                              : REDIRECT_NONE;
    if (kind == REDIRECT_NONE)
        return 0;
    const char *p = strchr(err, ' ') + 1;
    char *end;
    unsigned long slot = strtoul(p, &end, 10);
    if (end == p || *end != ' ' || slot >= TC__SLOTS)
        return 0;
    /* "host:port" where an IPv6 host has no brackets, and an empty host
       (Redis 7: "the node you asked") */
    const char *addr = end + 1, *colon = strrchr(addr, ':');
    uint64_t port;
    size_t hlen = colon ? (size_t)(colon - addr) : 0;
    if (!colon || hlen >= sizeof(rt->to.host) ||
        tc__parse_whole(colon + 1, 1, 65535, &port) != TC__NUM_OK)
        return 0;
    if (hlen == 0) {
        rt->to = *rt->from;
    } else {
        memcpy(rt->to.host, addr, hlen);
        rt->to.host[hlen] = '\0';
    }
    rt->to.port = (int)port;
    rt->slot = (unsigned)slot;
    rt->redirect = kind;
    return 1;
}

static int route_reply(void *ud, const redisReply *r)
{
    route *rt = ud;
    rt->called = 1;
    if (r->type == REDIS_REPLY_ERROR && parse_redirect(rt, r->str))
        return TC_EBACKEND;
    /* the keys of a multi-key command are split between the two nodes
       of a slot being migrated: a moment later they are not */
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "TRYAGAIN", 8) == 0) {
        rt->redirect = REDIRECT_TRYAGAIN;
        return TC_EBACKEND;
    }
    return rt->fn(rt->ud, r);
}

/* 1 when node i is one the listener watches (or will, once it sees the
   generation this map has). */
static void watch(tc__cluster *cl, unsigned i)
{
    pthread_mutex_lock(&cl->mu);
    int w = 0;
    for (size_t k = 0; k < cl->nmasters && !w; k++)
        w = cl->masters[k] == i;
    if (!w) {
        cl->masters[cl->nmasters++] = (uint16_t)i;
        atomic_fetch_add(&cl->gen, 1);
    }
    pthread_mutex_unlock(&cl->mu);
}

int tc__cluster_argv(tc__cluster *cl, int key_arg, int argc, const char **argv,
                     const size_t *lens, tc__l2_reply_fn fn, void *ud)
{
    unsigned slot = tc__cluster_slot(argv[key_arg], lens[key_arg]);
    unsigned i = atomic_load_explicit(&cl->owner[slot], memory_order_acquire);
    int asking = 0, rc = TC_EBACKEND;
    uint64_t give_up = 0; /* TRYAGAIN: retried for one command timeout */
    for (int hop = 0; hop < HOPS_MAX; hop++) {
        if (i == NO_NODE) {
            tc__cluster_refresh(cl, 0);
            i = atomic_load_explicit(&cl->owner[slot], memory_order_acquire);
            if (i == NO_NODE)
                return TC_EBACKEND;
        }
        route rt = {fn, ud, &cl->addrs[i], 0, REDIRECT_NONE, 0, {{0}, 0}};
        rc = asking ? tc__l2_argv_asking(node(cl, i), argc, argv, lens,
                                         route_reply, &rt)
                    : tc__l2_argv(node(cl, i), argc, argv, lens, route_reply,
                                  &rt);
        if (rt.redirect == REDIRECT_NONE) {
            /* A node that did not answer may have been replaced: the map
               may know better by now (rate-limited). */
            if (!rt.called && rc == TC_EBACKEND)
                tc__cluster_refresh_after(cl, REFRESH_DOWN_MS);
            return rc;
        }
        if (rt.redirect == REDIRECT_TRYAGAIN) {
            uint64_t now = tc__mono_ms();
            if (!give_up)
                give_up = now + cl->o.command_timeout_ms;
            if (now >= give_up)
                return rc;
            struct timespec ts = {0, 2000000}; /* 2 ms */
            nanosleep(&ts, NULL);
            i = atomic_load_explicit(&cl->owner[slot], memory_order_acquire);
            asking = 0;
            hop--; /* bounded by give_up, not by the hops */
            continue;
        }
        i = node_at(cl, &rt.to);
        if (i == NO_NODE)
            return TC_EBACKEND;
        asking = rt.redirect == REDIRECT_ASK;
        /* A master the listener does not watch (one just added): its
           writes would not reach the L1. It joins the masters now, and
           the new generation keeps the L1 out of use (tc__coh_ok) until
           the listener watches it too, whatever a refresh finds. */
        watch(cl, i);
        if (!asking) { /* the slot has a new owner: learn it, and the rest */
            atomic_store_explicit(&cl->owner[slot], (uint16_t)i,
                                  memory_order_release);
            tc__cluster_refresh(cl, 0);
        }
    }
    return rc;
}

int tc__cluster_each_master(tc__cluster *cl, int (*fn)(void *, tc__l2 *),
                            void *ud)
{
    uint16_t m[NODES_MAX];
    pthread_mutex_lock(&cl->mu);
    size_t n = cl->nmasters;
    memcpy(m, cl->masters, n * sizeof(*m));
    pthread_mutex_unlock(&cl->mu);
    if (n == 0)
        return TC_EBACKEND;
    for (size_t k = 0; k < n; k++) {
        int rc = fn(ud, node(cl, m[k]));
        if (rc != TC_OK)
            return rc;
    }
    return TC_OK;
}

/* ---- the commands of l2.h ---- */

typedef struct get_call {
    tc__l2_reader fn;
    void *ud;
} get_call;

static int get_reply(void *ud, const redisReply *r)
{
    get_call *g = ud;
    if (r->type == REDIS_REPLY_STRING)
        return g->fn(g->ud, r->str, r->len);
    return r->type == REDIS_REPLY_NIL ? TC_MISS : TC_EBACKEND;
}

int tc__cluster_get(tc__cluster *cl, const char *rkey, size_t rlen,
                    tc__l2_reader fn, void *ud)
{
    get_call g = {fn, ud};
    const char *argv[] = {"GET", rkey};
    size_t lens[] = {3, rlen};
    return tc__cluster_argv(cl, 1, 2, argv, lens, get_reply, &g);
}

int tc__cluster_set(tc__cluster *cl, const char *rkey, size_t rlen,
                    const char *val, size_t len, uint32_t ttl_ms)
{
    char px[16];
    snprintf(px, sizeof(px), "%u", (unsigned)ttl_ms);
    const char *argv[] = {"SET", rkey, val, "PX", px};
    size_t lens[] = {3, rlen, len, 2, strlen(px)};
    return tc__cluster_argv(cl, 1, 5, argv, lens, tc__l2_reply_ok, NULL);
}

/* Two commands, not DEL key lease: while their slot migrates, the two
   keys may be on different nodes for as long as the migration takes
   (TRYAGAIN), and a delete must not wait for it. The lease goes first: a
   computation that stores between the two finds its lease gone and
   stores nothing, and one that stored before is deleted with the key. */
int tc__cluster_del(tc__cluster *cl, const char *rkey, size_t rlen)
{
    char *lease = tc__malloc(rlen + 6);
    if (!lease)
        return TC_ENOMEM;
    memcpy(lease, rkey, rlen);
    memcpy(lease + rlen, ":lease", 6);
    const char *argv[] = {"DEL", lease};
    size_t lens[] = {3, rlen + 6};
    int rc = tc__cluster_argv(cl, 1, 2, argv, lens, tc__l2_reply_ok, NULL);
    tc__free(lease);
    if (rc != TC_OK)
        return rc;
    argv[1] = rkey;
    lens[1] = rlen;
    return tc__cluster_argv(cl, 1, 2, argv, lens, tc__l2_reply_ok, NULL);
}

/* A batch split by node: slot_of(ud, k) names key k's slot, and
   on_node(cl, i, idx, m, ud) gets the keys idx[0..m) that the map says
   node i serves, ITEMS_MAX at most at a time. Keys of a slot no node is
   known for are left to the caller's single-key path, as are all of
   them when there is no memory for the split. */
#define ITEMS_MAX 128
typedef void (*node_batch_fn)(tc__cluster *cl, unsigned i, const size_t *idx,
                              size_t m, void *ud);
static void by_node(tc__cluster *cl, size_t n,
                    unsigned (*slot_of)(void *, size_t), node_batch_fn on_node,
                    void *ud)
{
    uint16_t *owner = tc__malloc((n ? n : 1) * sizeof(*owner));
    if (!owner)
        return;
    size_t idx[ITEMS_MAX];
    for (size_t k = 0; k < n; k++)
        owner[k] = atomic_load_explicit(&cl->owner[slot_of(ud, k)],
                                        memory_order_acquire);
    for (size_t k = 0; k < n; k++) {
        unsigned i = owner[k];
        if (i == NO_NODE)
            continue;
        size_t m = 0;
        for (size_t j = k; j < n; j++) {
            if (owner[j] != i)
                continue;
            owner[j] = NO_NODE; /* taken */
            idx[m++] = j;
            if (m == ITEMS_MAX) {
                on_node(cl, i, idx, m, ud);
                m = 0;
            }
        }
        if (m)
            on_node(cl, i, idx, m, ud);
    }
    tc__free(owner);
}

/* tc__cluster_del_many's batch: the keys and their outcomes. */
typedef struct del_batch {
    const tc__l2_key *keys;
    int *rcs;
} del_batch;

static unsigned del_slot(void *ud, size_t k)
{
    const tc__l2_key *key = &((del_batch *)ud)->keys[k];
    return tc__cluster_slot(key->rkey, key->rlen);
}

/* A node's share: two DELs a key (the lease first, as in
   tc__cluster_del), in one pipeline. */
static void del_on_node(tc__cluster *cl, unsigned i, const size_t *idx,
                        size_t m, void *ud)
{
    del_batch *d = ud;
    tc__l2_cmd cmds[2 * ITEMS_MAX];
    for (size_t k = 0; k < m; k++) {
        const tc__l2_key *key = &d->keys[idx[k]];
        cmds[2 * k] = (tc__l2_cmd){
            2, {"DEL", key->lease}, {3, key->llen}, 0, NULL, NULL};
        cmds[2 * k + 1] =
            (tc__l2_cmd){2, {"DEL", key->rkey}, {3, key->rlen}, 0, NULL, NULL};
    }
    tc__l2_pipeline(node(cl, i), cmds, 2 * m);
    for (size_t k = 0; k < m; k++) {
        int a = cmds[2 * k].rc, b = cmds[2 * k + 1].rc;
        d->rcs[idx[k]] = a == TC_EREFUSED || b == TC_EREFUSED ? TC_EREFUSED
                         : a == TC_OK && b == TC_OK           ? TC_OK
                                                              : TC_EBACKEND;
    }
}

int tc__cluster_del_many(tc__cluster *cl, const tc__l2_key *keys, size_t n,
                         int *rcs)
{
    /* A pipeline per node the map names; a key that fails there (its
       slot moved, its node is away) goes again alone through
       tc__cluster_del, which follows redirections and asks the map. */
    for (size_t k = 0; k < n; k++)
        rcs[k] = TC_EBACKEND;
    del_batch d = {keys, rcs};
    by_node(cl, n, del_slot, del_on_node, &d);
    int rc = TC_OK;
    for (size_t k = 0; k < n; k++) {
        if (rcs[k] == TC_EBACKEND)
            rcs[k] = tc__cluster_del(cl, keys[k].rkey, keys[k].rlen);
        if (rc == TC_OK && rcs[k] != TC_OK)
            rc = rcs[k];
    }
    return rc;
}

static unsigned get_slot(void *ud, size_t k)
{
    const tc__l2_getm *g = &((tc__l2_getm *)ud)[k];
    return tc__cluster_slot(g->rkey, g->rlen);
}

/* A node's share of tc__cluster_get_many: its GETs in one pipeline. */
static void get_on_node(tc__cluster *cl, unsigned i, const size_t *idx,
                        size_t m, void *ud)
{
    tc__l2_getm *gets = ud;
    tc__l2_cmd cmds[ITEMS_MAX];
    for (size_t k = 0; k < m; k++)
        cmds[k] = tc__l2_getm_cmd(&gets[idx[k]]);
    tc__l2_pipeline(node(cl, i), cmds, m);
    for (size_t k = 0; k < m; k++)
        gets[idx[k]].rc = cmds[k].rc;
}

int tc__cluster_get_many(tc__cluster *cl, tc__l2_getm *gets, size_t n)
{
    /* As tc__cluster_del_many: a pipeline per node, then what failed
       there alone through tc__cluster_get. */
    for (size_t k = 0; k < n; k++)
        gets[k].rc = TC_EBACKEND;
    by_node(cl, n, get_slot, get_on_node, gets);
    int rc = TC_OK;
    for (size_t k = 0; k < n; k++) {
        if (gets[k].rc == TC_EBACKEND)
            gets[k].rc = tc__cluster_get(cl, gets[k].rkey, gets[k].rlen,
                                         gets[k].fn, gets[k].ud);
        if (rc == TC_OK &&
            (gets[k].rc == TC_EBACKEND || gets[k].rc == TC_EREFUSED))
            rc = gets[k].rc;
    }
    return rc;
}

void tc__cluster_alive(tc__cluster *cl)
{
    pthread_mutex_lock(&cl->mu);
    size_t n = cl->nmasters;
    uint16_t m[NODES_MAX];
    memcpy(m, cl->masters, n * sizeof(*m));
    pthread_mutex_unlock(&cl->mu);
    for (size_t k = 0; k < n; k++)
        tc__l2_alive(node(cl, m[k]));
}

typedef struct unlink_call {
    const char *pattern;
    uint64_t n;
} unlink_call;

static int unlink_on(void *ud, tc__l2 *l2)
{
    unlink_call *u = ud;
    uint64_t n = 0;
    int rc = tc__l2_unlink_match(l2, u->pattern, &n);
    u->n += n;
    return rc;
}

int tc__cluster_unlink_match(tc__cluster *cl, const char *pattern, uint64_t *n)
{
    unlink_call u = {pattern, 0};
    int rc = tc__cluster_each_master(cl, unlink_on, &u);
    *n = u.n;
    return rc;
}

static int scan_get_on(void *ud, tc__l2 *l2)
{
    const void *const *a = ud;
    return tc__l2_scan_get(l2, a[0], a[1]);
}

int tc__cluster_scan_get(tc__cluster *cl, const char *pattern,
                         const tc__l2_scan_fns *fns)
{
    const void *a[2] = {pattern, fns};
    return tc__cluster_each_master(cl, scan_get_on, (void *)a);
}

size_t tc__cluster_masters(tc__cluster *cl, tc__addr *out, size_t max,
                           uint64_t *gen)
{
    pthread_mutex_lock(&cl->mu);
    size_t n = cl->nmasters;
    for (size_t k = 0; k < n && k < max; k++)
        out[k] = cl->addrs[cl->masters[k]];
    *gen = atomic_load(&cl->gen);
    pthread_mutex_unlock(&cl->mu);
    return n;
}

int tc__cluster_incomplete(tc__cluster *cl)
{
    return atomic_load_explicit(&cl->incomplete, memory_order_relaxed);
}

uint64_t tc__cluster_gen(tc__cluster *cl)
{
    return atomic_load_explicit(&cl->gen, memory_order_acquire);
}

/* ---- health ---- */

static int worse(int a, int b)
{
    static const int rank[] = {[TC_BREAKER_CLOSED] = 0,
                               [TC_BREAKER_HALF_OPEN] = 1,
                               [TC_BREAKER_OPEN] = 2};
    return rank[b] > rank[a] ? b : a;
}

void tc__cluster_health(tc__cluster *cl, tc_health_info *out)
{
    uint16_t m[NODES_MAX];
    pthread_mutex_lock(&cl->mu);
    size_t n = cl->nmasters;
    memcpy(m, cl->masters, n * sizeof(*m));
    if (!n) { /* the nodes' health says nothing yet: the refresh's */
        snprintf(out->last_error, sizeof(out->last_error), "%s",
                 cl->map_error[0] ? cl->map_error
                                  : "cluster: no slot map yet");
        out->l2_refused = cl->map_refusal;
    }
    pthread_mutex_unlock(&cl->mu);
    out->breaker = n ? TC_BREAKER_CLOSED : TC_BREAKER_OPEN;
    out->l2_connected = n > 0;
    for (size_t k = 0; k < n; k++) {
        tc_health_info h;
        memset(&h, 0, sizeof(h));
        tc__l2_health(node(cl, m[k]), &h);
        out->breaker = worse(out->breaker, h.breaker);
        out->l2_connected &= h.l2_connected;
        if (h.down_since_ms &&
            (!out->down_since_ms || h.down_since_ms < out->down_since_ms))
            out->down_since_ms = h.down_since_ms;
        if (!out->last_error[0] && h.last_error[0])
            snprintf(out->last_error, sizeof(out->last_error),
                     "node %.40s: %.80s", cl->addrs[m[k]].host, h.last_error);
        if (!out->l2_refused)
            out->l2_refused = h.l2_refused;
        out->l2_writes_refused |= h.l2_writes_refused;
    }
}

int tc__cluster_refusal(tc__cluster *cl)
{
    uint16_t m[NODES_MAX];
    pthread_mutex_lock(&cl->mu);
    size_t n = cl->nmasters;
    memcpy(m, cl->masters, n * sizeof(*m));
    int none_yet = n ? TC_REFUSAL_NONE : cl->map_refusal;
    pthread_mutex_unlock(&cl->mu);
    if (none_yet)
        return none_yet;
    for (size_t k = 0; k < n; k++) {
        int r = tc__l2_refusal(node(cl, m[k]));
        if (r)
            return r;
    }
    return TC_REFUSAL_NONE;
}

/* ---- fork() ---- */

void tc__cluster_lock(tc__cluster *cl)
{
    pthread_mutex_lock(&cl->mu);
    unsigned n = atomic_load(&cl->nnodes);
    for (unsigned i = 0; i < n; i++)
        tc__l2_lock(node(cl, i));
}

void tc__cluster_unlock(tc__cluster *cl)
{
    unsigned n = atomic_load(&cl->nnodes);
    for (unsigned i = 0; i < n; i++)
        tc__l2_unlock(node(cl, i));
    pthread_mutex_unlock(&cl->mu);
}

void tc__cluster_after_fork(tc__cluster *cl)
{
    unsigned n = atomic_load(&cl->nnodes);
    for (unsigned i = 0; i < n; i++)
        tc__l2_after_fork(node(cl, i));
    atomic_store(&cl->refreshing, 0);
}
