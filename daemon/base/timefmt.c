/* RFC 3339 times (see timefmt.h). */
#include "timefmt.h"

#include <stdio.h>
#include <time.h>

char *vg_time_format_ms(char *buf, size_t size, int64_t ms)
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int rem = (int)(ms - s * 1000);
    time_t tt = (time_t)s;
    struct tm tm;
    gmtime_r(&tt, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", rem);
    return buf;
}

int64_t vg_time_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}
