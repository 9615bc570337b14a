/* SPDX-License-Identifier: BSD-3-Clause */
/* Log lines go to the user's callback, or to stderr. */
#include <stdio.h>

#include "internal.h"

static const char *level_name(int level)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    return level >= 0 && level < 4 ? names[level] : "?";
}

void tc__log(const tc__logger *lg, int level, const char *fmt, ...)
{
    if (!lg || level < lg->level || level >= TC_LOG_OFF)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (lg->fn)
        lg->fn(lg->ud, level, msg);
    else
        fprintf(stderr, "tiercache %s: %s\n", level_name(level), msg);
}
