#include "vigil/log.h"

#include <stdarg.h>
#include <stdio.h>

static vg_log_level_t min_level = VG_LOG_INFO;

void vg_log_set_level(vg_log_level_t level)
{
    min_level = level;
}

void vg_log(vg_log_level_t level, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One fprintf per line so lines from two threads never interleave. */
    fprintf(stderr, "vigil: level=%s %s\n", names[level], msg);
}
