/* SPDX-License-Identifier: BSD-3-Clause */
/* Connections: see conn.h. Making one (connect, AUTH, SELECT, CLIENT
   SETNAME, timeouts), naming its endpoint for log lines, and telling a
   refusal from other error replies. */
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "topo.h"

/* "host:port", "[v6]:port" or the socket path: what log lines name. */
void tc__conn_endpoint(const tc_options *o, char *buf, size_t cap)
{
    if (o->redis_socket[0])
        snprintf(buf, cap, "%s", o->redis_socket);
    else if (strchr(o->redis_host, ':'))
        snprintf(buf, cap, "[%s]:%d", o->redis_host, o->redis_port);
    else
        snprintf(buf, cap, "%s:%d", o->redis_host, o->redis_port);
}

/* The error replies that mean "reachable, but not for you": the server
   will keep saying so until someone changes its configuration or ours. */
int tc__conn_refusal_of(const char *cmd, const char *err)
{
    static const struct {
        const char *prefix;
        int kind;
    } known[] = {
        {"NOPERM", TC_REFUSAL_ACL},
        {"READONLY", TC_REFUSAL_READONLY},
        {"WRONGPASS", TC_REFUSAL_AUTH},
        {"NOAUTH", TC_REFUSAL_AUTH},
        {"ERR invalid password", TC_REFUSAL_AUTH},
        {"ERR AUTH", TC_REFUSAL_AUTH},             /* no password configured */
        {"ERR Client sent AUTH", TC_REFUSAL_AUTH}, /* the same, Redis < 6 */
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
        if (strncmp(err, known[i].prefix, strlen(known[i].prefix)) == 0)
            return known[i].kind;
    /* "ERR DB index is out of range", "ERR invalid DB index"; not the
       other errors SELECT may get ("ERR max number of clients reached") */
    if (strcmp(cmd, "SELECT") == 0 && strncmp(err, "ERR ", 4) == 0 &&
        strstr(err, "DB index"))
        return TC_REFUSAL_DB;
    return TC_REFUSAL_NONE;
}

const char *tc__conn_refusal_hint(int kind)
{
    switch (kind) {
    case TC_REFUSAL_AUTH:
        return "check the user name and password";
    case TC_REFUSAL_DB:
        return "no such database: check the db index";
    case TC_REFUSAL_ACL:
        return "check the user's ACL: commands, key pattern for the "
               "namespace, channels";
    case TC_REFUSAL_READONLY:
        return "a read-only replica: point the cache at the primary";
    }
    return "";
}

static struct timeval tv_of(uint32_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* One step of the handshake: 0 done, else the reason in err, with
 *refusal set when the server answered with a refusal. */
static int handshake(redisContext *ctx, const char *cmd, redisReply *r,
                     char *err, size_t cap, int *refusal)
{
    int rc = 0;
    if (!r) {
        snprintf(err, cap, "%s: %.100s", cmd, ctx->err ? ctx->errstr : "?");
        rc = -1;
    } else if (r->type == REDIS_REPLY_ERROR) {
        /* The server's words: they never repeat the password. */
        snprintf(err, cap, "%s: %.100s", cmd, r->str);
        *refusal = tc__conn_refusal_of(cmd, r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

/* A server without CLIENT SETNAME, or an ACL without it: no name, but
   nothing wrong with the connection. */
static int name_not_allowed(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "NOPERM", 6) == 0 ||
            strncmp(r->str, "ERR unknown command", 19) == 0 ||
            strncmp(r->str, "ERR unknown subcommand", 22) == 0);
}

/* CLIENT SETNAME tc:<ns>:<pid>:<role>, so that CLIENT LIST tells whose
   each connection is. Any other error reply is the first answer of a
   server that did not need AUTH or SELECT from us (NOAUTH: no password
   given; a full server): the handshake's, refusal or not. */
static int set_name(redisContext *ctx, const tc_options *o, const char *role,
                    char *err, size_t cap, int *refusal)
{
    redisReply *r = redisCommand(ctx, "CLIENT SETNAME tc:%s:%ld:%s", o->ns,
                                 (long)getpid(), role);
    if (name_not_allowed(r)) {
        freeReplyObject(r);
        return 0;
    }
    return handshake(ctx, "CLIENT SETNAME", r, err, cap, refusal);
}

/* Connected, with the timeouts set, or NULL with the reason in err. */
static redisContext *dial(const tc_options *o, const tc__addr *a,
                          uint32_t cmd_timeout_ms, char *err, size_t cap)
{
    struct timeval tv = tv_of(o->connect_timeout_ms);
    int unix_socket = !a && o->redis_socket[0];
    redisContext *ctx =
        a ? redisConnectWithTimeout(a->host, a->port, tv)
        : unix_socket
            ? redisConnectUnixWithTimeout(o->redis_socket, tv)
            : redisConnectWithTimeout(o->redis_host, o->redis_port, tv);
    if (!ctx) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    if (ctx->err) {
        snprintf(err, cap, "connect: %.100s", ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    /* hiredis 0.14 leaves the socket inheritable: a child that execs
       would keep the connection open. */
    fcntl(ctx->fd, F_SETFD, FD_CLOEXEC);
    struct timeval ctv = tv_of(cmd_timeout_ms);
    redisSetTimeout(ctx, ctv);
    if (!unix_socket)
        redisEnableKeepAlive(ctx);
    return ctx;
}

redisContext *tc__conn_sentinel(const tc_options *o, const tc__addr *a,
                                const char *password, char *err, size_t cap,
                                int *refusal)
{
    *refusal = TC_REFUSAL_NONE;
    redisContext *ctx = dial(o, a, o->connect_timeout_ms, err, cap);
    if (ctx && password[0] &&
        handshake(ctx, "AUTH", redisCommand(ctx, "AUTH %s", password), err,
                  cap, refusal) != 0) {
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

redisContext *tc__conn_open(const tc_options *o, const tc__addr *a,
                            uint32_t cmd_timeout_ms, const char *role,
                            char *err, size_t cap, int *refusal)
{
    *refusal = TC_REFUSAL_NONE;
    redisContext *ctx = dial(o, a, cmd_timeout_ms, err, cap);
    if (!ctx)
        return NULL;
    int rc = 0;
    if (o->redis_password[0])
        rc = handshake(ctx, "AUTH",
                       o->redis_username[0]
                           ? redisCommand(ctx, "AUTH %s %s", o->redis_username,
                                          o->redis_password)
                           : redisCommand(ctx, "AUTH %s", o->redis_password),
                       err, cap, refusal);
    if (rc == 0 && o->redis_db)
        rc = handshake(ctx, "SELECT",
                       redisCommand(ctx, "SELECT %d", o->redis_db), err, cap,
                       refusal);
    if (rc == 0)
        rc = set_name(ctx, o, role, err, cap, refusal);
    if (rc != 0) {
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}
