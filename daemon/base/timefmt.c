/* RFC 3339 times (see timefmt.h). */
#include "timefmt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- parsing ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    return m == 2 && leap ? 29 : dm[m - 1];
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool vg_time_from_epoch(double v, int64_t *ms)
{
    if (!(v > -1e15 && v < 1e15))
        return false;
    /* Seconds until the year 5138; beyond that the value is milliseconds. */
    *ms = v >= 1e11 || v <= -1e11 ? (int64_t)v : (int64_t)(v * 1000.0);
    return true;
}

bool vg_time_parse(const char *s, size_t n, int64_t *ms)
{
    unsigned y, mo, d, h = 0, mi = 0, se = 0;
    if (n > 0 && n <= 20 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) &&
        (n < 5 || s[4] != '-')) {
        char buf[32], *end;
        memcpy(buf, s, n);
        buf[n] = '\0';
        double v = strtod(buf, &end);
        return *end == '\0' && vg_time_from_epoch(v, ms);
    }
    if (n < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    int64_t frac = 0, off = 0;
    if (n > 10) {
        if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || n < 19 ||
            !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
            !digits(s + 17, 2, &se) || h > 23 || mi > 59 || se > 60)
            return false;
        size_t i = 19;
        if (i < n && s[i] == '.') {
            size_t k = ++i;
            int64_t scale = 100;
            while (i < n && s[i] >= '0' && s[i] <= '9') {
                frac += (s[i] - '0') * scale;
                scale /= 10;
                i++;
            }
            if (i == k)
                return false;
        }
        if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
            unsigned oh, om;
            if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
                return false;
            off = ((int64_t)oh * 60 + om) * 60000 * (s[i] == '-' ? -1 : 1);
            i += 6;
        } else {
            return false;
        }
        if (i != n)
            return false;
    }
    int64_t days = days_from_civil((int64_t)y, mo, d);
    *ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)se * 1000 + frac - off;
    return true;
}
