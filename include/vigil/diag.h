/* Diagnostics: compiler-style messages collected while loading rules or
 * configuration, so that every error in a file is reported in one run. */
#ifndef VIGIL_DIAG_H
#define VIGIL_DIAG_H

#include <stddef.h>

typedef enum { VG_DIAG_ERROR, VG_DIAG_WARNING, VG_DIAG_NOTE } vg_diag_level_t;

typedef struct vg_diag {
    vg_diag_level_t level;
    char *file;     /* may be NULL */
    unsigned line;  /* 1-based; 0 when unknown */
    unsigned col;   /* 1-based; 0 when unknown */
    char *message;  /* "what is wrong (hint)" without the location prefix */
} vg_diag_t;

typedef struct vg_diags vg_diags_t;

/* Returns an empty collection, or NULL when out of memory. */
vg_diags_t *vg_diags_new(void);
void vg_diags_destroy(vg_diags_t *d);

/* Adds one message. file may be NULL; fmt is printf-style. Never fails
 * visibly: on allocation failure the error count still goes up. */
void vg_diags_add(vg_diags_t *d, vg_diag_level_t level, const char *file, unsigned line,
                  unsigned col, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

size_t vg_diags_count(const vg_diags_t *d);
/* Makes every warning an error (vigil check --strict); returns how many. */
size_t vg_diags_promote_warnings(vg_diags_t *d);
size_t vg_diags_errors(const vg_diags_t *d);
const vg_diag_t *vg_diags_get(const vg_diags_t *d, size_t i);

/* Formats diagnostic i as "file:line:col: error: message" into buf. */
void vg_diags_format(const vg_diags_t *d, size_t i, char *buf, size_t size);

/* Writes every message, one per line, to a stdio stream (FILE *). */
void vg_diags_print(const vg_diags_t *d, void *stream);

/* Returns the candidate closest to word (edit distance, ignoring case), or
 * NULL when none is close enough to be a plausible typo. */
const char *vg_suggest(const char *word, const char *const *candidates, size_t n);

/* Copies at most max bytes of s[0..len) into buf (size bytes), for quoting
 * user text in a message: control characters become '?', and a cut
 * string ends in "..." without splitting a UTF-8 sequence. Always
 * NUL-terminates buf. */
void vg_diag_excerpt(const char *s, size_t len, size_t max, char *buf, size_t size);

#endif
