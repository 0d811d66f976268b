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
    uint64_t line;       /* number of the line last returned, from 1 */
    uint64_t bytes_read; /* bytes consumed so far */
} vg_linereader_t;

void vg_linereader_init(vg_linereader_t *lr, FILE *f, size_t max);
void vg_linereader_free(vg_linereader_t *lr);

/* Returns 1 with line and len set (the newline removed, a trailing CR kept),
 * 2 when the line was longer than max (len is its full length; its bytes
 * are discarded), 0 at end of input, -1 on a read error. */
int vg_linereader_next(vg_linereader_t *lr, const char **line, size_t *len);

#endif
