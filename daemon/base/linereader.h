/* Reads newline-separated records from a stream with a bound on record
 * size: an over-long line is skipped (its length reported) instead of
 * being buffered, so a hostile file cannot exhaust memory. */
#ifndef VIGIL_LINEREADER_H
#define VIGIL_LINEREADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct vg_linereader {
    FILE *f;
    size_t max;
    char *buf;   /* a line that straddles blocks */
    size_t cap;
    char *block; /* the current block of input */
    size_t pos, end;
    bool eof;
    const char *map; /* a regular file mapped whole: lines point into it */
    size_t map_len;
    uint64_t line;       /* number of the line last returned, from 1 */
    uint64_t bytes_read; /* bytes consumed so far */
} vg_linereader_t;

void vg_linereader_init(vg_linereader_t *lr, FILE *f, size_t max);
/* Maps a regular file instead of reading it, so lines are returned in
 * place without copies; they stay valid until vg_linereader_free (not only
 * until the next call) and are not NUL-terminated. Returns false when the
 * file cannot be mapped (then reading works as usual). */
bool vg_linereader_map(vg_linereader_t *lr);
void vg_linereader_free(vg_linereader_t *lr);

/* Returns 1 with line and len set (the newline removed, a trailing CR kept,
 * a byte-order mark before the first line dropped),
 * 2 when the line was longer than max (len is its full length; its bytes
 * are discarded), 0 at end of input, -1 on a read error. */
int vg_linereader_next(vg_linereader_t *lr, const char **line, size_t *len);

#endif
