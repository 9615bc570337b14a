/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Test harness, continued: a private Redis Sentinel group and a private
 * Redis Cluster, built from th_redis servers. See harness.h.
 *
 * Everything here talks to the servers with plain hiredis calls through
 * th_redis_cmd, never through tiercache: the tests check the library
 * against what these functions say.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TH_POLL_MS 20

static void nap_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int live(const th_redis *r)
{
    return r && th_redis_pid(r) > 0;
}

/* 1 if the reply is a status or string equal to s. */
static int reply_is(const redisReply *rep, const char *s)
{
    return rep &&
           (rep->type == REDIS_REPLY_STATUS ||
            rep->type == REDIS_REPLY_STRING) &&
           strcmp(rep->str, s) == 0;
}

/* Runs a command that must answer +OK; says why not on stderr. */
static int cmd_ok(const th_redis *r, const char *what, redisReply *rep)
{
    int ok = reply_is(rep, "OK");

    if (!ok)
        fprintf(stderr, "harness: %s on port %d: %s\n", what, th_redis_port(r),
                rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                                                      : "no or odd reply");
    if (rep)
        freeReplyObject(rep);
    return ok;
}

/* The text of an INFO-like reply (INFO, CLUSTER INFO), or NULL. */
static char *info_text(const th_redis *r, const char *cmd)
{
    redisReply *rep = th_redis_cmd(r, cmd);
    char *text = NULL;

    if (rep && rep->type == REDIS_REPLY_STRING)
        text = strdup(rep->str);
    if (rep)
        freeReplyObject(rep);
    return text;
}

/* 1 if the INFO-like text has the line "field:value". */
static int info_has(const char *text, const char *field, const char *value)
{
    char line[128];

    snprintf(line, sizeof line, "%s:%s\r\n", field, value);
    return text && strstr(text, line) != NULL;
}

/* The first element of ROLE: "master", "slave" or "sentinel"; "" when
   the server does not answer. */
static void role_of(const th_redis *r, char *out, size_t cap)
{
    redisReply *rep = live(r) ? th_redis_cmd(r, "ROLE") : NULL;

    out[0] = '\0';
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
        rep->element[0]->type == REDIS_REPLY_STRING)
        snprintf(out, cap, "%s", rep->element[0]->str);
    if (rep)
        freeReplyObject(rep);
}

static int is_master(const th_redis *r)
{
    char role[16];

    role_of(r, role, sizeof role);
    return strcmp(role, "master") == 0;
}

/* Appends "127.0.0.1:<port>" to a comma-separated list. */
static void list_add(char *list, size_t cap, int port)
{
    size_t n = strlen(list);

    snprintf(list + n, cap - n, "%s127.0.0.1:%d", n ? "," : "", port);
}

/* ================================================================ */
/* Sentinel                                                          */
/* ================================================================ */

#define TH_SENTINELS_MAX 5
#define TH_SENTINEL_READY_MS 15000
#define TH_SYNC_MS 10000

struct th_sentinel {
    char name[64];
    char pass[64]; /* the sentinels' requirepass, or "" */
    int nsent;
    th_redis *data[2];
    th_redis *sent[TH_SENTINELS_MAX];
    char addrs[TH_SENTINELS_MAX * 24];
};

/* Waits until the replica's link to its master is up: synced. */
static int wait_synced(const th_redis *replica, uint32_t timeout_ms)
{
    uint64_t deadline = th_now_ms() + timeout_ms;

    for (;;) {
        char *info = info_text(replica, "INFO replication");
        int up = info_has(info, "master_link_status", "up");

        free(info);
        if (up)
            return 0;
        if (th_now_ms() >= deadline) {
            fprintf(stderr, "harness: replica on port %d never synced\n",
                    th_redis_port(replica));
            return -1;
        }
        nap_ms(TH_POLL_MS);
    }
}

/* The value under `key` in a RESP2 field list [k1, v1, k2, v2, ...]. */
static const char *field_of(const redisReply *list, const char *key)
{
    if (!list || list->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < list->elements; i += 2)
        if (list->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(list->element[i]->str, key) == 0 &&
            list->element[i + 1]->type == REDIS_REPLY_STRING)
            return list->element[i + 1]->str;
    return NULL;
}

/* The master's port as one sentinel reports it; -1 if it cannot say. */
static int sentinel_says(const th_sentinel *s, const th_redis *sent)
{
    redisReply *rep = live(sent) ? th_redis_cmd(sent,
                                                "SENTINEL "
                                                "get-master-addr-by-name %s",
                                                s->name)
                                 : NULL;
    int port = -1;

    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        rep->element[1]->type == REDIS_REPLY_STRING)
        port = atoi(rep->element[1]->str);
    if (rep)
        freeReplyObject(rep);
    return port;
}

/* One sentinel knows the master, a healthy replica and every other
   sentinel, and finds the quorum reachable. */
static int sentinel_ready(const th_sentinel *s, const th_redis *sent)
{
    redisReply *rep;
    int ok;

    if (sentinel_says(s, sent) != th_redis_port(s->data[0]))
        return 0;
    rep = th_redis_cmd(sent, "SENTINEL replicas %s", s->name);
    ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
         field_of(rep->element[0], "flags") &&
         strcmp(field_of(rep->element[0], "flags"), "slave") == 0;
    if (rep)
        freeReplyObject(rep);
    if (!ok)
        return 0;
    rep = th_redis_cmd(sent, "SENTINEL sentinels %s", s->name);
    ok = rep && rep->type == REDIS_REPLY_ARRAY &&
         (int)rep->elements == s->nsent - 1;
    if (rep)
        freeReplyObject(rep);
    if (!ok)
        return 0;
    rep = th_redis_cmd(sent, "SENTINEL ckquorum %s", s->name);
    ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (rep)
        freeReplyObject(rep);
    return ok;
}

static int wait_sentinels(const th_sentinel *s)
{
    uint64_t deadline = th_now_ms() + TH_SENTINEL_READY_MS;

    for (;;) {
        int ready = 1;
        for (int i = 0; i < s->nsent && ready; i++)
            ready = sentinel_ready(s, s->sent[i]);
        if (ready)
            return 0;
        if (th_now_ms() >= deadline) {
            fprintf(stderr, "harness: the sentinels of %s never agreed\n",
                    s->name);
            for (int i = 0; i < s->nsent; i++)
                th_redis_dump_log(s->sent[i]);
            return -1;
        }
        nap_ms(TH_POLL_MS * 5);
    }
}

static th_redis *start_data_node(void)
{
    /* A master waits 5 s for more replicas before a diskless sync by
       default: sync at once. */
    static const char *const extra[] = {"--repl-diskless-sync-delay", "0",
                                        NULL};

    return th_redis_start_args(extra);
}

static th_redis *start_one_sentinel(const th_sentinel *s)
{
    static const char *const extra[] = {"--sentinel", NULL};
    char conf[1024];
    int quorum = s->nsent < 2 ? 1 : 2;
    int n;

    n = snprintf(conf, sizeof conf,
                 "sentinel monitor %s 127.0.0.1 %d %d\n"
                 "sentinel down-after-milliseconds %s 1000\n"
                 "sentinel failover-timeout %s 3000\n"
                 "sentinel parallel-syncs %s 1\n",
                 s->name, th_redis_port(s->data[0]), quorum, s->name, s->name,
                 s->name);
    /* Sentinels log in with their own requirepass to each other. */
    if (s->pass[0])
        snprintf(conf + n, sizeof conf - (size_t)n, "requirepass %s\n",
                 s->pass);
    th_redis_spec sp = {extra, conf, s->pass[0] ? s->pass : NULL, 0};
    return th_redis_start_spec(&sp);
}

th_sentinel *th_sentinel_start_opts(const th_sentinel_opts *o)
{
    th_sentinel *s = calloc(1, sizeof *s);
    redisReply *rep;

    if (!s)
        return NULL;
    snprintf(s->name, sizeof s->name, "%s",
             o && o->name ? o->name : "mymaster");
    if (o && o->password)
        snprintf(s->pass, sizeof s->pass, "%s", o->password);
    s->nsent = o && o->sentinels > 0 ? o->sentinels : 3;
    if (s->nsent > TH_SENTINELS_MAX)
        s->nsent = TH_SENTINELS_MAX;
    s->data[0] = start_data_node();
    s->data[1] = start_data_node();
    if (!s->data[0] || !s->data[1])
        goto fail;
    /* REPLICAOF as a command, not an argument: a restart of either node
       then comes back as a master, as after a failover. */
    rep = th_redis_cmd(s->data[1], "REPLICAOF 127.0.0.1 %d",
                       th_redis_port(s->data[0]));
    if (!cmd_ok(s->data[1], "REPLICAOF", rep) ||
        wait_synced(s->data[1], TH_SYNC_MS) != 0)
        goto fail;
    /* Started after the sync: their first INFO of the master lists the
       replica, instead of 10 s later. */
    for (int i = 0; i < s->nsent; i++) {
        s->sent[i] = start_one_sentinel(s);
        if (!s->sent[i])
            goto fail;
        list_add(s->addrs, sizeof s->addrs, th_redis_port(s->sent[i]));
    }
    if (wait_sentinels(s) != 0)
        goto fail;
    return s;
fail:
    th_sentinel_stop(s);
    return NULL;
}

th_sentinel *th_sentinel_start(const char *name)
{
    th_sentinel_opts o = {name, NULL, 3};

    return th_sentinel_start_opts(&o);
}

const char *th_sentinel_addrs(const th_sentinel *s)
{
    return s ? s->addrs : NULL;
}

const char *th_sentinel_name(const th_sentinel *s)
{
    return s ? s->name : NULL;
}

th_redis *th_sentinel_data(th_sentinel *s, int i)
{
    return s && (i == 0 || i == 1) ? s->data[i] : NULL;
}

th_redis *th_sentinel_node(th_sentinel *s, int i)
{
    return s && i >= 0 && i < s->nsent ? s->sent[i] : NULL;
}

th_redis *th_sentinel_current_master(th_sentinel *s)
{
    int port = -1;

    if (!s)
        return NULL;
    for (int i = 0; i < s->nsent && port < 0; i++)
        port = sentinel_says(s, s->sent[i]);
    /* What the sentinels say, if that node agrees; else whoever says it
       is a master. */
    for (int i = 0; i < 2; i++)
        if (live(s->data[i]) && th_redis_port(s->data[i]) == port &&
            is_master(s->data[i]))
            return s->data[i];
    for (int i = 0; i < 2; i++)
        if (live(s->data[i]) && is_master(s->data[i]))
            return s->data[i];
    return NULL;
}

/* Every live sentinel names the same master, other than old_port, and
   that node says it is a master: its port, else -1. */
static int switched(th_sentinel *s, int old_port)
{
    int port = -1;

    for (int i = 0; i < s->nsent; i++) {
        if (!live(s->sent[i]))
            continue;
        int p = sentinel_says(s, s->sent[i]);
        if (p < 0 || p == old_port || (port >= 0 && p != port))
            return -1;
        port = p;
    }
    for (int i = 0; i < 2; i++)
        if (port >= 0 && th_redis_port(s->data[i]) == port &&
            is_master(s->data[i]))
            return port;
    return -1;
}

int th_sentinel_wait_switch(th_sentinel *s, int old_port, uint32_t timeout_ms)
{
    uint64_t deadline = th_now_ms() + timeout_ms;

    if (!s)
        return -1;
    for (;;) {
        int port = switched(s, old_port);
        if (port > 0)
            return port;
        if (th_now_ms() >= deadline)
            break;
        nap_ms(TH_POLL_MS);
    }
    fprintf(stderr, "harness: the sentinels of %s never switched\n", s->name);
    for (int i = 0; i < s->nsent; i++)
        th_redis_dump_log(s->sent[i]);
    return -1;
}

void th_sentinel_options(const th_sentinel *s, tc_options *o)
{
    th_options(NULL, o);
    o->redis_sentinels = s->addrs;
    o->sentinel_master = s->name;
    o->sentinel_password = s->pass[0] ? s->pass : NULL;
}

void th_sentinel_stop(th_sentinel *s)
{
    if (!s)
        return;
    /* The sentinels first: they must not fail over what is stopping. */
    for (int i = 0; i < TH_SENTINELS_MAX; i++)
        th_redis_stop(s->sent[i]);
    th_redis_stop(s->data[0]);
    th_redis_stop(s->data[1]);
    free(s);
}

/* ================================================================ */
/* Cluster                                                           */
/* ================================================================ */

#define TH_SLOTS 16384
#define TH_CLUSTER_MAX 16
#define TH_CLUSTER_READY_MS 30000
#define TH_ID_LEN 40

struct th_cluster {
    int n, masters, replicas;
    th_redis *node[TH_CLUSTER_MAX];
    char id[TH_CLUSTER_MAX][TH_ID_LEN + 1];
    int master_of[TH_CLUSTER_MAX]; /* a replica's master at creation, or -1 */
    char seeds[TH_CLUSTER_MAX * 24];
};

/* CRC16-CCITT (XMODEM), bit by bit: what Redis Cluster hashes keys with. */
static uint16_t crc16(const char *p, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021)
                               : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned th_cluster_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len), *close;

    /* The hash tag: from the first '{' to the first '}' after it, if that
       encloses at least one byte. */
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        close = memchr(open + 1, '}', rest);
        if (close && close > open + 1) {
            key = open + 1;
            len = (size_t)(close - key);
        }
    }
    return crc16(key, len) & (TH_SLOTS - 1);
}

static int index_of(const th_cluster *c, const th_redis *r)
{
    for (int i = 0; c && i < c->n; i++)
        if (c->node[i] == r)
            return i;
    return -1;
}

static th_redis *by_port(th_cluster *c, long long port)
{
    for (int i = 0; i < c->n; i++)
        if (th_redis_port(c->node[i]) == port)
            return c->node[i];
    return NULL;
}

static const char *const cluster_args[] = {
    "--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
    /* relative to --dir, which the server changes to */
    "--cluster-config-file", "nodes.conf",
    /* The masters that are up keep serving their slots while one is down:
       what a test of a killed master looks at. */
    "--cluster-require-full-coverage", "no", "--repl-diskless-sync-delay", "0",
    NULL};

static int read_id(th_redis *r, char *out)
{
    redisReply *rep = th_redis_cmd(r, "CLUSTER MYID");
    int ok = rep && rep->type == REDIS_REPLY_STRING && rep->len == TH_ID_LEN;

    if (ok)
        memcpy(out, rep->str, TH_ID_LEN + 1);
    if (rep)
        freeReplyObject(rep);
    return ok ? 0 : -1;
}

/* ADDSLOTS [lo, hi) in one command (ADDSLOTSRANGE is Redis 7 only). */
static int add_slots(th_redis *r, int lo, int hi)
{
    int argc = 2 + hi - lo;
    const char **argv = calloc((size_t)argc, sizeof *argv);
    char(*nums)[12] = calloc((size_t)(hi - lo), sizeof *nums);
    redisContext *ctx = th_redis_connect(r);
    redisReply *rep = NULL;

    if (argv && nums && ctx) {
        argv[0] = "CLUSTER";
        argv[1] = "ADDSLOTS";
        for (int s = lo; s < hi; s++) {
            snprintf(nums[s - lo], sizeof nums[0], "%d", s);
            argv[2 + s - lo] = nums[s - lo];
        }
        rep = redisCommandArgv(ctx, argc, argv, NULL);
    }
    if (ctx)
        redisFree(ctx);
    free(argv);
    free(nums);
    return cmd_ok(r, "CLUSTER ADDSLOTS", rep) ? 0 : -1;
}

/* Each node's CLUSTER NODES: every node known, none in handshake or
   failing, and (roles = 1) each replica attached to its master. */
static int nodes_agree(const th_cluster *c, int roles)
{
    for (int i = 0; i < c->n; i++) {
        char *text = info_text(c->node[i], "CLUSTER NODES"), *save = NULL;
        int lines = 0, ok = text != NULL;

        for (char *l = text ? strtok_r(text, "\n", &save) : NULL; l && ok;
             l = strtok_r(NULL, "\n", &save)) {
            char id[TH_ID_LEN + 2], addr[64], flags[96], master[TH_ID_LEN + 2];
            if (sscanf(l, "%41s %63s %95s %41s", id, addr, flags, master) != 4)
                continue;
            lines++;
            ok = !strstr(flags, "handshake") && !strstr(flags, "noaddr") &&
                 !strstr(flags, "fail") && strstr(l, " connected");
            for (int j = 0; ok && roles && j < c->n; j++)
                if (c->master_of[j] >= 0 && strcmp(id, c->id[j]) == 0)
                    ok = strcmp(master, c->id[c->master_of[j]]) == 0;
        }
        free(text);
        if (!ok || lines != c->n)
            return 0;
    }
    return 1;
}

static int cluster_ready(const th_cluster *c)
{
    char known[16];

    snprintf(known, sizeof known, "%d", c->n);
    for (int i = 0; i < c->n; i++) {
        char *info = info_text(c->node[i], "CLUSTER INFO");
        int ok = info_has(info, "cluster_state", "ok") &&
                 info_has(info, "cluster_slots_assigned", "16384") &&
                 info_has(info, "cluster_slots_ok", "16384") &&
                 info_has(info, "cluster_known_nodes", known);
        free(info);
        if (ok && c->master_of[i] >= 0) {
            info = info_text(c->node[i], "INFO replication");
            ok = info_has(info, "master_link_status", "up");
            free(info);
        }
        if (!ok)
            return 0;
    }
    return nodes_agree(c, 1);
}

static int wait_for(int (*cond)(const th_cluster *, int), const th_cluster *c,
                    int arg, uint32_t timeout_ms, const char *what)
{
    uint64_t deadline = th_now_ms() + timeout_ms;

    for (;;) {
        if (cond(c, arg))
            return 0;
        if (th_now_ms() >= deadline) {
            fprintf(stderr, "harness: cluster: %s timed out\n", what);
            for (int i = 0; i < c->n; i++)
                th_redis_dump_log(c->node[i]);
            return -1;
        }
        nap_ms(TH_POLL_MS * 2);
    }
}

static int ready_cond(const th_cluster *c, int unused)
{
    (void)unused;
    return cluster_ready(c);
}

/* What redis-cli --cluster create does, with plain commands: distinct
   config epochs, slots in even ranges to the masters, MEET, then each
   replica REPLICATEs its master once every node knows every other. */
static int cluster_create(th_cluster *c)
{
    redisReply *rep;

    for (int i = 0; i < c->n; i++) {
        if (read_id(c->node[i], c->id[i]) != 0)
            return -1;
        rep = th_redis_cmd(c->node[i], "CLUSTER SET-CONFIG-EPOCH %d", i + 1);
        if (!cmd_ok(c->node[i], "CLUSTER SET-CONFIG-EPOCH", rep))
            return -1;
    }
    for (int m = 0; m < c->masters; m++)
        if (add_slots(c->node[m], m * TH_SLOTS / c->masters,
                      (m + 1) * TH_SLOTS / c->masters) != 0)
            return -1;
    for (int i = 1; i < c->n; i++) {
        rep = th_redis_cmd(c->node[0], "CLUSTER MEET 127.0.0.1 %d",
                           th_redis_port(c->node[i]));
        if (!cmd_ok(c->node[0], "CLUSTER MEET", rep))
            return -1;
    }
    if (wait_for(nodes_agree, c, 0, TH_CLUSTER_READY_MS, "the MEETs") != 0)
        return -1;
    for (int i = c->masters; i < c->n; i++) {
        rep = th_redis_cmd(c->node[i], "CLUSTER REPLICATE %s",
                           c->id[c->master_of[i]]);
        if (!cmd_ok(c->node[i], "CLUSTER REPLICATE", rep))
            return -1;
    }
    return wait_for(ready_cond, c, 0, TH_CLUSTER_READY_MS, "the start");
}

th_cluster *th_cluster_start(int masters, int replicas)
{
    th_cluster *c;

    if (masters < 1 || replicas < 0 ||
        masters * (1 + replicas) > TH_CLUSTER_MAX)
        return NULL;
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->masters = masters;
    c->replicas = replicas;
    c->n = masters * (1 + replicas);
    /* Nodes 0..masters-1 are the masters; then the replicas of master 0,
       of master 1, ... */
    for (int i = 0; i < c->n; i++) {
        th_redis_spec sp = {cluster_args, NULL, NULL, 1};
        c->master_of[i] = i < masters ? -1 : (i - masters) / replicas;
        c->node[i] = th_redis_start_spec(&sp);
        if (!c->node[i])
            goto fail;
        list_add(c->seeds, sizeof c->seeds, th_redis_port(c->node[i]));
    }
    if (cluster_create(c) != 0)
        goto fail;
    return c;
fail:
    th_cluster_stop(c);
    return NULL;
}

const char *th_cluster_seeds(const th_cluster *c)
{
    return c ? c->seeds : NULL;
}

int th_cluster_nodes(const th_cluster *c)
{
    return c ? c->n : 0;
}

th_redis *th_cluster_node(th_cluster *c, int i)
{
    return c && i >= 0 && i < c->n ? c->node[i] : NULL;
}

/* Fills map from one node's CLUSTER SLOTS. Returns the number of slots
   assigned, or -1 if the node does not answer. */
static int slots_of(th_cluster *c, const th_redis *r, th_redis **map)
{
    redisReply *rep = live(r) ? th_redis_cmd(r, "CLUSTER SLOTS") : NULL;
    int assigned = 0;

    for (int s = 0; s < TH_SLOTS; s++)
        map[s] = NULL;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        return -1;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[2]->type != REDIS_REPLY_ARRAY ||
            e->element[2]->elements < 2)
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        th_redis *owner = by_port(c, e->element[2]->element[1]->integer);
        for (long long s = lo; s <= hi && s < TH_SLOTS; s++, assigned++)
            map[s] = owner;
    }
    freeReplyObject(rep);
    return assigned;
}

int th_cluster_owners(th_cluster *c, th_redis **map)
{
    for (int i = 0; c && i < c->n; i++)
        if (slots_of(c, c->node[i], map) >= 0)
            return 0;
    return -1;
}

th_redis *th_cluster_owner(th_cluster *c, unsigned slot)
{
    th_redis **map = calloc(TH_SLOTS, sizeof *map);
    th_redis *owner = NULL;

    if (map && slot < TH_SLOTS && th_cluster_owners(c, map) == 0)
        owner = map[slot];
    free(map);
    return owner;
}

/* Every live node says cluster_state:ok and maps every slot to a live
   node that says it is a master; with want, slot `slot` to node `want`. */
static int all_served(th_cluster *c, const th_redis *want, unsigned slot)
{
    th_redis **map = calloc(TH_SLOTS, sizeof *map);
    int ok = map != NULL;

    for (int i = 0; ok && i < c->n; i++) {
        if (!live(c->node[i]))
            continue;
        char *info = info_text(c->node[i], "CLUSTER INFO");
        ok = info_has(info, "cluster_state", "ok") &&
             slots_of(c, c->node[i], map) == TH_SLOTS;
        free(info);
        for (int s = 0; ok && s < TH_SLOTS; s++)
            ok = live(map[s]);
        if (ok && want)
            ok = map[slot] == want;
    }
    for (int i = 0; ok && i < c->n; i++) {
        /* each owner, once: is it a master by its own account? */
        int owns = 0;
        for (int s = 0; map && s < TH_SLOTS && !owns; s++)
            owns = map[s] == c->node[i];
        if (owns)
            ok = is_master(c->node[i]);
    }
    free(map);
    return ok;
}

int th_cluster_wait_ok(th_cluster *c, uint32_t timeout_ms)
{
    uint64_t deadline = th_now_ms() + timeout_ms;

    if (!c)
        return -1;
    for (;;) {
        if (all_served(c, NULL, 0))
            return 0;
        if (th_now_ms() >= deadline)
            return -1;
        nap_ms(TH_POLL_MS * 2);
    }
}

#define TH_MIGRATE_BATCH 10

/* MIGRATEs the slot's keys, TH_MIGRATE_BATCH at a time, until none is
   left on `from`. */
static int move_keys(th_redis *from, th_redis *to, unsigned slot)
{
    for (;;) {
        redisReply *keys = th_redis_cmd(from, "CLUSTER GETKEYSINSLOT %u %d",
                                        slot, TH_MIGRATE_BATCH);
        if (!keys || keys->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "harness: GETKEYSINSLOT %u failed\n", slot);
            if (keys)
                freeReplyObject(keys);
            return -1;
        }
        if (keys->elements == 0) {
            freeReplyObject(keys);
            return 0;
        }
        const char *argv[7 + TH_MIGRATE_BATCH];
        size_t lens[7 + TH_MIGRATE_BATCH];
        char port[16];
        int argc = 0;
        snprintf(port, sizeof port, "%d", th_redis_port(to));
        /* MIGRATE host port "" 0 timeout KEYS k...: no REPLACE, so that
           a key on both sides (which must not happen) is an error. */
        const char *head[] = {"MIGRATE", "127.0.0.1", port,  "",
                              "0",       "5000",      "KEYS"};
        for (size_t i = 0; i < 7; i++, argc++) {
            argv[argc] = head[i];
            lens[argc] = strlen(head[i]);
        }
        for (size_t i = 0; i < keys->elements; i++, argc++) {
            argv[argc] = keys->element[i]->str;
            lens[argc] = keys->element[i]->len;
        }
        redisContext *ctx = th_redis_connect(from);
        redisReply *rep = ctx ? redisCommandArgv(ctx, argc, argv, lens) : NULL;
        int ok = reply_is(rep, "OK") || reply_is(rep, "NOKEY");
        if (!ok)
            fprintf(stderr, "harness: MIGRATE of slot %u: %s\n", slot,
                    rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                                                          : "no reply");
        if (rep)
            freeReplyObject(rep);
        if (ctx)
            redisFree(ctx);
        freeReplyObject(keys);
        if (!ok)
            return -1;
    }
}

static int setslot_node(th_redis *r, unsigned slot, const char *id)
{
    redisReply *rep = th_redis_cmd(r, "CLUSTER SETSLOT %u NODE %s", slot, id);

    return cmd_ok(r, "CLUSTER SETSLOT NODE", rep) ? 0 : -1;
}

int th_cluster_migrate_hook(th_cluster *c, unsigned slot, th_redis *to,
                            void (*hook)(void *ud), void *ud)
{
    th_redis *from = th_cluster_owner(c, slot);
    int fi = index_of(c, from), ti = index_of(c, to);
    redisReply *rep;

    if (fi < 0 || ti < 0 || slot >= TH_SLOTS || !live(to)) {
        fprintf(stderr, "harness: cannot migrate slot %u\n", slot);
        return -1;
    }
    if (fi == ti)
        return 0;
    /* The target first, as redis-cli does: a client sent there by ASK
       must find it importing. */
    rep = th_redis_cmd(to, "CLUSTER SETSLOT %u IMPORTING %s", slot, c->id[fi]);
    if (!cmd_ok(to, "CLUSTER SETSLOT IMPORTING", rep))
        return -1;
    rep =
        th_redis_cmd(from, "CLUSTER SETSLOT %u MIGRATING %s", slot, c->id[ti]);
    if (!cmd_ok(from, "CLUSTER SETSLOT MIGRATING", rep))
        return -1;
    if (hook)
        hook(ud);
    if (move_keys(from, to, slot) != 0)
        return -1;
    /* The new owner first, then the old, then every other master; the
       replicas hear it from their masters. */
    if (setslot_node(to, slot, c->id[ti]) != 0 ||
        setslot_node(from, slot, c->id[ti]) != 0)
        return -1;
    for (int i = 0; i < c->n; i++)
        if (i != fi && i != ti && live(c->node[i]) && is_master(c->node[i]) &&
            setslot_node(c->node[i], slot, c->id[ti]) != 0)
            return -1;
    /* Returns once every live node maps the slot to its new owner, so
       that th_cluster_owner agrees whichever node it asks. */
    uint64_t deadline = th_now_ms() + 10000;
    while (!all_served(c, to, slot)) {
        if (th_now_ms() >= deadline) {
            fprintf(stderr, "harness: slot %u: the move never spread\n", slot);
            return -1;
        }
        nap_ms(TH_POLL_MS);
    }
    return 0;
}

int th_cluster_migrate(th_cluster *c, unsigned slot, th_redis *to)
{
    return th_cluster_migrate_hook(c, slot, to, NULL, NULL);
}

void th_cluster_options(const th_cluster *c, tc_options *o)
{
    th_options(NULL, o);
    o->redis_cluster = c->seeds;
}

void th_cluster_stop(th_cluster *c)
{
    if (!c)
        return;
    for (int i = 0; i < TH_CLUSTER_MAX; i++)
        th_redis_stop(c->node[i]);
    free(c);
}
