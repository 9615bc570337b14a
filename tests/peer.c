/* SPDX-License-Identifier: BSD-3-Clause */
/* A peer process driven over pipes: see peer.h. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "peer.h"

long th_wait_value(tc_cache *c, const char *key, const char *want,
                   uint32_t bound_ms)
{
    char buf[256];
    uint64_t t0 = th_now_ms();
    for (;;) {
        int rc = th_get_str(c, key, buf, sizeof buf);
        if (want ? rc == TC_OK && strcmp(buf, want) == 0 : rc == TC_MISS)
            return (long)(th_now_ms() - t0);
        if (th_now_ms() - t0 > bound_ms)
            return -1;
        usleep(1000);
    }
}

static uint64_t l1_hits(tc_cache *c)
{
    tc_stats_info s;
    tc_stats(c, &s);
    return s.l1_hits;
}

int th_warm(tc_cache *c, const char *key)
{
    char buf[256];
    for (int i = 0; i < 200; i++) {
        uint64_t hits = l1_hits(c);
        th_get_str(c, key, buf, sizeof buf);
        if (l1_hits(c) > hits)
            return 1;
        usleep(1000);
    }
    return 0;
}

/* The child's loop: one reply line per command, flushed at once, as the
   parent waits for it. Returns on Q, EOF or a command nobody knows. */
static void serve(tc_cache *c, const th_peer_conf *conf, FILE *in, FILE *out)
{
    char line[512], a[256], b[256], buf[256];
    while (fgets(line, sizeof line, in)) {
        a[0] = b[0] = '\0'; /* "" when absent, for the extra hook */
        int n = sscanf(line + 1, "%255s %255s", a, b);
        const char *want = n == 2 && strcmp(b, "-") ? b : NULL;
        switch (line[0]) {
        case 'G':
            fprintf(out,
                    th_get_str(c, a, buf, sizeof buf) == TC_OK ? "V %s\n"
                                                               : "M%s\n",
                    buf);
            break;
        case 'W':
            fprintf(out, "%ld\n",
                    conf->wait ? conf->wait(c, a, want)
                               : th_wait_value(c, a, want, conf->wait_ms));
            break;
        case 'S':
            fprintf(out, "%d\n", tc_set(c, a, b, strlen(b), 0));
            break;
        case 'D':
            fprintf(out, "%d\n", tc_del(c, a));
            break;
        case 'H':
            fprintf(out, "%d\n", th_warm(c, a));
            break;
        case 'Q':
            return;
        default:
            if (!conf->extra || !conf->extra(c, line[0], a, b, out, conf->ud))
                return;
        }
        fflush(out);
    }
}

int th_peer_start(th_peer *p, const th_peer_conf *conf)
{
    int down[2], up[2];
    if (pipe(down) || pipe(up))
        return -1;
    p->pid = fork();
    if (p->pid == 0) {
        close(down[1]);
        close(up[0]);
        tc_cache *c = conf->open(conf->ud);
        FILE *in = fdopen(down[0], "r"), *out = fdopen(up[1], "w");
        if (c)
            serve(c, conf, in, out);
        tc_close(c);
        /* _exit: the atexit handlers are the parent's (one kills every
           server), not this child's to run */
        _exit(c ? 0 : 3);
    }
    close(down[0]);
    close(up[1]);
    p->to = fdopen(down[1], "w");
    p->from = fdopen(up[0], "r");
    p->reply[0] = '\0';
    return p->pid > 0 ? 0 : -1;
}

static void vsend(th_peer *p, const char *fmt, va_list ap)
{
    vfprintf(p->to, fmt, ap);
    fputc('\n', p->to);
    fflush(p->to);
}

void th_peer_send(th_peer *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsend(p, fmt, ap);
    va_end(ap);
}

const char *th_peer_recv(th_peer *p)
{
    if (!fgets(p->reply, sizeof p->reply, p->from))
        return "";
    p->reply[strcspn(p->reply, "\n")] = '\0';
    return p->reply;
}

const char *th_peer_ask(th_peer *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsend(p, fmt, ap);
    va_end(ap);
    return th_peer_recv(p);
}

int th_peer_stop(th_peer *p)
{
    fputs("Q\n", p->to);
    fclose(p->to);
    fclose(p->from);
    int st = 0;
    waitpid(p->pid, &st, 0);
    if (WIFSIGNALED(st))
        fprintf(stderr, "peer killed by signal %d\n", WTERMSIG(st));
    return WIFEXITED(st) ? WEXITSTATUS(st) : 99;
}
