/* SPDX-License-Identifier: BSD-3-Clause */
/* watch: the namespace's invalidations as they come, on a connection of
   its own subscribed as the library's listener is (coherence.c): client
   tracking redirected to itself, and the <ns>:__tc:inval channel. */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "conn.h"
#include "sentinel.h"

static volatile sig_atomic_t stop;
static void on_sigint(int sig)
{
    stop = sig;
}

typedef struct watcher {
    cli *k;
    char channel[TC_NS_MAX + 16], prefix[TC_NS_MAX + 4];
    uint64_t tracking, channel_msgs, bad, second, total_at_second;
    int tracked;
} watcher;

static void stamp(void)
{
    char t[40];
    cli_iso(tc__wall_ms(), t, sizeof(t));
    printf("%s ", t);
}

static void print_bytes(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x20 && (unsigned char)p[i] < 0x7f)
            putchar(p[i]);
        else
            printf("\\x%02x", (unsigned char)p[i]);
}

static void on_tracking(watcher *w, const redisReply *names)
{
    size_t pl = strlen(w->prefix);
    if (names->type != REDIS_REPLY_ARRAY) { /* nil: FLUSHDB or FLUSHALL */
        w->tracking++;
        stamp();
        printf("tracking flushdb\n");
        return;
    }
    for (size_t i = 0; i < names->elements; i++) {
        const redisReply *n = names->element[i];
        if (n->type != REDIS_REPLY_STRING || n->len <= pl)
            continue;
        int value = n->str[n->len - 1] == '}';
        w->tracking++;
        stamp();
        printf("tracking %s ", value ? "key" : "other");
        /* a value's Redis key is <ns>:{<key>}: print <key> */
        print_bytes(n->str + pl, n->len - pl - (size_t)value);
        putchar('\n');
    }
}

static void on_channel(watcher *w, const redisReply *msg)
{
    static const char *kinds[] = {"?", "key", "prefix", "flush"};
    tc__inval m;
    if (tc__inval_decode(msg->str, msg->len, w->k->opt.max_key_bytes, &m) !=
        TC_OK) {
        w->bad++;
        stamp();
        printf("channel undecodable message (%zu bytes)\n", msg->len);
        return;
    }
    w->channel_msgs++;
    uint64_t now = tc__wall_ms();
    stamp();
    printf("channel %s ", kinds[m.kind]);
    print_bytes((const char *)m.arg, m.arg_len);
    printf("%s(lag %lld ms)\n", m.arg_len ? " " : "",
           (long long)(now - m.sent_at_ms));
}

static void on_reply(watcher *w, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") != 0)
        return; /* a PONG, a subscribe ack */
    if (strcmp(r->element[1]->str, "__redis__:invalidate") == 0)
        on_tracking(w, r->element[2]);
    else if (r->element[2]->type == REDIS_REPLY_STRING)
        on_channel(w, r->element[2]);
}

/* CLIENT TRACKING to ourselves, then SUBSCRIBE; 0 or -1 (err said). */
static int subscribe(watcher *w, redisContext *ctx, char *err, size_t cap)
{
    redisReply *r = redisCommand(ctx, "CLIENT ID");
    long long id = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    r = id < 0 ? NULL
               : redisCommand(ctx,
                              "CLIENT TRACKING ON REDIRECT %lld BCAST "
                              "PREFIX %s",
                              id, w->prefix);
    w->tracked = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    r = w->tracked ? redisCommand(ctx, "SUBSCRIBE __redis__:invalidate %s",
                                  w->channel)
                   : redisCommand(ctx, "SUBSCRIBE %s", w->channel);
    for (int acks = 0; r && r->type == REDIS_REPLY_ARRAY;) {
        freeReplyObject(r);
        if (++acks == 1 + w->tracked)
            return 0;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK)
            r = NULL;
    }
    snprintf(err, cap, "subscribe: %s",
             ctx->err ? ctx->errstr
             : r      ? r->str
                      : "no reply");
    freeReplyObject(r);
    return -1;
}

static void second_line(watcher *w, uint64_t start)
{
    uint64_t total = w->tracking + w->channel_msgs + w->bad;
    fprintf(stderr,
            "# %llu s: %llu/s (total %llu: tracking %llu, channel "
            "%llu)\n",
            (unsigned long long)((cli_now_us() - start) / 1000000),
            (unsigned long long)(total - w->total_at_second),
            (unsigned long long)total, (unsigned long long)w->tracking,
            (unsigned long long)w->channel_msgs);
    w->total_at_second = total;
}

/* Reads until SIGINT or a failed connection; 0 or -1. */
static int serve(watcher *w, redisContext *ctx)
{
    uint64_t start = cli_now_us(), next = start + 1000000;
    struct pollfd p = {ctx->fd, POLLIN, 0};
    while (!stop) {
        uint64_t now = cli_now_us();
        if (now >= next) {
            second_line(w, start);
            /* from now: after a suspension, next + 1 s would still be in
               the past, and poll's wait below would underflow */
            next = now + 1000000;
        }
        int n = poll(&p, 1, (int)((next - now) / 1000) + 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0 && redisBufferRead(ctx) != REDIS_OK)
            return -1;
        void *r;
        while (n > 0 && redisGetReplyFromReader(ctx, &r) == REDIS_OK && r) {
            on_reply(w, r);
            freeReplyObject(r);
        }
        fflush(stdout);
    }
    return 0;
}

/* The server to watch: the options' one, or the Sentinel's master. */
static redisContext *connect_to(cli *k, char *err, size_t cap)
{
    tc__addr a, *ap = NULL;
    int refusal;
    tc__sentinel *s = tc__l2_sentinel(k->c->l2);
    if (s && tc__sentinel_master(s, &a) == 0) {
        snprintf(err, cap, "the sentinels name no master");
        return NULL;
    }
    if (s)
        ap = &a;
    return tc__conn_open(&k->c->opt, ap, 2000, "watch", err, cap, &refusal);
}

int cmd_watch(cli *k)
{
    watcher w = {.k = k};
    char err[200];
    int rc = cli_open(k);
    if (rc)
        return rc;
    if (tc__l2_cluster(k->c->l2))
        return cli_fail(k, CLI_USAGE, "not supported on a cluster yet");
    snprintf(w.channel, sizeof(w.channel), "%s:__tc:inval", k->opt.ns);
    snprintf(w.prefix, sizeof(w.prefix), "%s:{", k->opt.ns);
    redisContext *ctx = connect_to(k, err, sizeof(err));
    if (!ctx || subscribe(&w, ctx, err, sizeof(err)) != 0) {
        redisFree(ctx);
        return cli_fail(k, CLI_UNREACHABLE, "%s", err);
    }
    struct sigaction sa = {.sa_handler = on_sigint};
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: poll() returns */
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "# watching %s* (%s) and %s; Ctrl-C stops\n", w.prefix,
            w.tracked ? "client tracking" : "no client tracking", w.channel);
    rc = serve(&w, ctx);
    redisFree(ctx);
    printf("total %llu invalidations: tracking %llu, channel %llu, "
           "undecodable %llu\n",
           (unsigned long long)(w.tracking + w.channel_msgs + w.bad),
           (unsigned long long)w.tracking, (unsigned long long)w.channel_msgs,
           (unsigned long long)w.bad);
    fflush(stdout);
    return rc ? cli_fail(k, CLI_UNREACHABLE, "the connection was lost")
              : CLI_OK;
}
