/* The daemon's log: one line per event of note on stderr, where journald
 * (or a container runtime) picks it up.
 *
 *   logfmt: ts=2026-11-29T12:00:00.123Z level=info msg="rules reloaded" rules=12
 *   json:   {"ts":"2026-11-29T12:00:00.123Z","level":"info","msg":"rules reloaded","rules":12}
 *
 * Under journald (JOURNAL_STREAM names stderr) each line starts with a
 * syslog priority ("<3>" for errors), which journald turns into the
 * entry's priority, and ts is left out because the journal has its own.
 *
 * Values are escaped for the format: quotes, backslashes and control
 * characters become escapes, ill-formed UTF-8 becomes \ufffd. A field
 * whose key names a secret (password, secret, token, credential) is
 * written as "[redacted]", and so is the value after "password=" and the
 * like inside a text, quoted or not (password="x", token: 'x',
 * "secret": "x"), and any text registered with vg_log_add_secret(),
 * wherever it appears in a line.
 *
 * Warnings and errors are rate-limited per message key: at most `burst`
 * lines per key in a window; the rest are counted, and when the window
 * has passed one summary line says "... (repeated 57 times in the last
 * 10s)". All functions are thread-safe; one line is one write(2). */
#ifndef VIGIL_LOG_H
#define VIGIL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { VG_LOG_DEBUG, VG_LOG_INFO, VG_LOG_WARN, VG_LOG_ERROR } vg_log_level_t;
typedef enum { VG_LOG_LOGFMT, VG_LOG_JSON } vg_log_format_t;

typedef struct vg_log_options {
    vg_log_format_t format; /* default logfmt */
    vg_log_level_t level;   /* lines below it are dropped; default info */
    int fd;                 /* where lines go; default 2 (stderr) */
    bool timestamps;        /* write ts; default: unless journald reads fd */
    bool priority_prefix;   /* "<N>" before each line; default: when journald reads fd */
    unsigned burst;         /* warn/error lines per key per window; 0 = no limit. Default 5 */
    unsigned window_ms;     /* the rate-limit window; default 10000 */
    /* Monotonic milliseconds for rate limiting; NULL = CLOCK_MONOTONIC.
     * Tests inject their own. */
    uint64_t (*clock_ms)(void *arg);
    void *clock_arg;
} vg_log_options_t;

/* The defaults, with timestamps/priority_prefix decided by whether
 * JOURNAL_STREAM matches fd 2. */
void vg_log_options_default(vg_log_options_t *o);

/* Replaces the settings and forgets every rate-limit count (pending
 * summaries are dropped, not written). */
void vg_log_configure(const vg_log_options_t *o);

void vg_log_set_level(vg_log_level_t level);
void vg_log_set_format(vg_log_format_t format);

/* "logfmt"/"json" and "debug"/"info"/"warn"/"error", for config and CLI.
 * The parse functions return 0, or -1 for an unknown name. */
const char *vg_log_format_name(vg_log_format_t f);
const char *vg_log_level_name(vg_log_level_t l);
int vg_log_format_parse(const char *name, vg_log_format_t *out);
int vg_log_level_parse(const char *name, vg_log_level_t *out);

/* A printf-style line whose text reads like logfmt: `msg="..." key=value
 * ...`. The text is split into fields again and written in the configured
 * format, escaped. The rate-limit key is the text with its digits left
 * out, so "offset=17" and "offset=18" count as one message. */
void vg_log(vg_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Structured fields. */
typedef enum {
    VG_LOG_F_STR,
    VG_LOG_F_INT,
    VG_LOG_F_UINT,
    VG_LOG_F_DOUBLE,
    VG_LOG_F_BOOL
} vg_log_ftype_t;
typedef struct vg_log_field {
    const char *key;
    vg_log_ftype_t type;
    const char *s; /* STR; NULL is written as an empty string */
    long long i;   /* INT, BOOL */
    unsigned long long u;
    double d;
} vg_log_field_t;

#define VG_LOG_STR(k, v) ((vg_log_field_t){.key = (k), .type = VG_LOG_F_STR, .s = (v)})
#define VG_LOG_INT(k, v) ((vg_log_field_t){.key = (k), .type = VG_LOG_F_INT, .i = (long long)(v)})
#define VG_LOG_UINT(k, v) \
    ((vg_log_field_t){.key = (k), .type = VG_LOG_F_UINT, .u = (unsigned long long)(v)})
#define VG_LOG_DOUBLE(k, v) \
    ((vg_log_field_t){.key = (k), .type = VG_LOG_F_DOUBLE, .d = (double)(v)})
#define VG_LOG_BOOL(k, v) ((vg_log_field_t){.key = (k), .type = VG_LOG_F_BOOL, .i = !!(v)})

/* One line: msg plus n fields. msg is also the rate-limit key, so keep
 * the variable details in fields. */
void vg_log_fields(vg_log_level_t level, const char *msg, const vg_log_field_t *fields, size_t n);

/* vg_log_kv(VG_LOG_INFO, "rules reloaded", VG_LOG_UINT("rules", n), ...);
 * at least one field (use vg_log_fields(level, msg, NULL, 0) for none). */
#define vg_log_kv(level, msg, ...)                                                   \
    vg_log_fields((level), (msg), (const vg_log_field_t[]){__VA_ARGS__},             \
                  sizeof((const vg_log_field_t[]){__VA_ARGS__}) / sizeof(vg_log_field_t))

/* A tuning variable of the environment (VIGIL_WORKERS, ...): unset or
 * empty gives def. A whole decimal number in [min, max] is returned. Any
 * other value (letters, a sign, a unit, out of range) is logged as a
 * warning naming the variable, the value and the range, and def is used:
 * a typo must not silently mean 0. */
unsigned long long vg_env_number(const char *name, unsigned long long min,
                                 unsigned long long max, unsigned long long def);

/* Registered secrets shorter than this are not searched for: they would
 * erase common words and numbers from every line. */
#define VG_LOG_SECRET_MIN 4

/* From now on every occurrence of text (a copy is kept) in a line, in its
 * message, keys or values, is written as [redacted], also when the line
 * is cut inside it. The configuration loader registers every value it
 * takes from the environment and every value of a kafka.properties entry
 * named like a secret. Returns 0, or -1 when out of memory. */
int vg_log_add_secret(const char *text);

/* True when text contains a registered secret: for messages that are
 * not log lines (vigil check's) and must hide it themselves. */
bool vg_log_has_secret(const char *text);

/* Forgets every registered secret (for tests; the daemon keeps them). */
void vg_log_forget_secrets(void);

/* True when a field or property name names a secret (password, passwd,
 * secret, token, credential; any case). */
bool vg_log_secret_name(const char *name);

/* Writes the summary of every key whose window has passed with lines
 * held back. Call it now and then (the daemon does, from its main loop);
 * a summary is otherwise written when its key logs again. */
void vg_log_tick(void);

/* Writes every pending summary now, windows passed or not (at exit). */
void vg_log_flush(void);

#endif
