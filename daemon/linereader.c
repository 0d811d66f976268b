#include "linereader.h"

#include <stdlib.h>
#include <string.h>

void vg_linereader_init(vg_linereader_t *lr, FILE *f, size_t max)
{
    memset(lr, 0, sizeof(*lr));
    lr->f = f;
    lr->max = max;
}

void vg_linereader_free(vg_linereader_t *lr)
{
    free(lr->buf);
    lr->buf = NULL;
}

int vg_linereader_next(vg_linereader_t *lr, const char **line, size_t *len)
{
    size_t n = 0;
    bool over = false;
    int c;
    if (!lr->buf) {
        lr->cap = 4096;
        lr->buf = malloc(lr->cap);
        if (!lr->buf)
            return -1;
    }
    /* getc_unlocked keeps this tight; the stream belongs to one thread. */
    while ((c = getc_unlocked(lr->f)) != EOF) {
        lr->bytes_read++;
        if (c == '\n')
            break;
        if (!over && n + 1 >= lr->cap) {
            if (n >= lr->max) {
                over = true;
            } else {
                size_t ncap = lr->cap * 2;
                if (ncap > lr->max + 2)
                    ncap = lr->max + 2;
                char *nb = realloc(lr->buf, ncap);
                if (!nb)
                    return -1;
                lr->buf = nb;
                lr->cap = ncap;
            }
        }
        if (!over)
            lr->buf[n] = (char)c;
        n++;
    }
    if (c == EOF && ferror(lr->f))
        return -1;
    if (c == EOF && n == 0)
        return 0;
    lr->line++;
    *len = n;
    if (over || n > lr->max)
        return 2;
    lr->buf[n] = '\0';
    *line = lr->buf;
    return 1;
}
