/* Event and alert times as RFC 3339 text: the one formatter the alert
 * renderer and the stateful-rule windows share. */
#ifndef VIGIL_TIMEFMT_H
#define VIGIL_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room for any time vg_time_format_ms writes, NUL included. */
#define VG_TIME_TEXT_MAX 64

/* Writes epoch milliseconds ms as "2024-05-01T09:12:00.000Z" (UTC, always
 * three fraction digits; times before 1970 round down to the whole
 * millisecond, so the fraction is never negative). Returns buf. */
char *vg_time_format_ms(char *buf, size_t size, int64_t ms);

/* Parses an event time: RFC 3339 ("2024-05-01T09:12:00Z", fractions and
 * offsets allowed), a date "2024-05-01" (midnight UTC), or epoch seconds
 * (values of 100000000000 and above are milliseconds). true and *ms on
 * success. */
bool vg_time_parse(const char *s, size_t len, int64_t *ms);

/* An epoch number (seconds, or milliseconds from 1e11 on) as
 * milliseconds; false outside +-1e15, where window arithmetic could
 * overflow. */
bool vg_time_from_epoch(double v, int64_t *ms);

/* Milliseconds since the epoch on the wall clock (CLOCK_REALTIME). */
int64_t vg_time_now_ms(void);

#endif
