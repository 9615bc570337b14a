/* SPDX-License-Identifier: BSD-3-Clause */
/* Log lines go to the user's callback, or to stderr with a UTC
   timestamp and the pid: several processes of a prefork service write
   to the same stream. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static const char *level_name(int level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return level >= 0 && level < 4 ? names[level] : "?";
}

/* One fprintf: stdio's lock keeps a line whole among threads. */
static void to_stderr(int level, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ tiercache[%ld] %s: %s\n", when,
            ts.tv_nsec / 1000000L, (long)getpid(), level_name(level), msg);
}

void tc__log(const tc__logger *lg, int level, const char *event,
             const char *fmt, ...)
{
    if (!lg || level < lg->level || level >= TC_LOG_OFF)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (lg->efn)
        lg->efn(lg->ud, level, event, msg);
    else if (lg->fn)
        lg->fn(lg->ud, level, msg);
    else
        to_stderr(level, msg);
}
