/* One line per event of note on stderr (journald adds the timestamp):
 * "level=info msg=\"...\" key=value ...". Repeated identical messages are
 * rate-limited by the callers that can repeat (delivery errors). */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

typedef enum { VG_LOG_DEBUG, VG_LOG_INFO, VG_LOG_WARN, VG_LOG_ERROR } vg_log_level_t;

/* Messages below level are dropped. Not thread-safe to change while
 * other threads log; set it once at start. */
void vg_log_set_level(vg_log_level_t level);
void vg_log(vg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
