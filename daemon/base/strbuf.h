/* A growable byte buffer for building JSON and messages. Private to the
 * engine. Allocation failure is sticky: the buffer records it and later
 * appends do nothing, so callers check vg_strbuf_failed() once at the end. */
#ifndef VIGIL_STRBUF_H
#define VIGIL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vg_strbuf {
    char *buf;   /* always NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
    bool failed;
} vg_strbuf_t;

void vg_strbuf_init(vg_strbuf_t *sb);
void vg_strbuf_free(vg_strbuf_t *sb);
void vg_strbuf_reset(vg_strbuf_t *sb);
bool vg_strbuf_failed(const vg_strbuf_t *sb);
bool vg_strbuf_reserve(vg_strbuf_t *sb, size_t extra);
void vg_strbuf_append(vg_strbuf_t *sb, const char *s, size_t n);
void vg_strbuf_puts(vg_strbuf_t *sb, const char *s);
void vg_strbuf_putc(vg_strbuf_t *sb, char c);
void vg_strbuf_printf(vg_strbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s[0..n) as a quoted JSON string. Bytes are copied as UTF-8;
 * control characters are escaped. */
void vg_strbuf_json_string(vg_strbuf_t *sb, const char *s, size_t n);
/* Takes the buffer: returns it (caller frees) and leaves sb empty. */
char *vg_strbuf_detach(vg_strbuf_t *sb, size_t *len);

#endif
