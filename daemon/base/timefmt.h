/* Event and alert times as RFC 3339 text: the one formatter the alert
 * renderer and the stateful-rule windows share. */
#ifndef VIGIL_TIMEFMT_H
#define VIGIL_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any time vg_time_format_ms writes, NUL included. */
#define VG_TIME_TEXT_MAX 64

/* Writes epoch milliseconds ms as "2024-05-01T09:12:00.000Z" (UTC, always
 * three fraction digits; times before 1970 round down to the whole
 * millisecond, so the fraction is never negative). Returns buf. */
char *vg_time_format_ms(char *buf, size_t size, int64_t ms);

/* Milliseconds since the epoch on the wall clock (CLOCK_REALTIME). */
int64_t vg_time_now_ms(void);

#endif
