#include "linereader.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* Input is read in blocks; a line is returned in place when it lies in
 * the block, and assembled in `buf` only when it straddles two blocks. */
#define BLOCK (256 * 1024)

void vg_linereader_init(vg_linereader_t *lr, FILE *f, size_t max)
{
    memset(lr, 0, sizeof(*lr));
    lr->f = f;
    lr->max = max;
}

bool vg_linereader_map(vg_linereader_t *lr)
{
    struct stat st;
    int fd = fileno(lr->f);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0)
        return false;
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return false;
    madvise(m, (size_t)st.st_size, MADV_SEQUENTIAL);
    lr->map = m;
    lr->map_len = (size_t)st.st_size;
    return true;
}

static int next_mapped(vg_linereader_t *lr, const char **line, size_t *len)
{
    if (lr->pos >= lr->map_len)
        return 0;
    const char *start = lr->map + lr->pos;
    size_t avail = lr->map_len - lr->pos;
    const char *nl = memchr(start, '\n', avail);
    size_t take = nl ? (size_t)(nl - start) : avail;
    lr->pos += take + (nl ? 1 : 0);
    lr->bytes_read = lr->pos;
    lr->line++;
    *len = take;
    if (take > lr->max)
        return 2;
    *line = start;
    return 1;
}

void vg_linereader_free(vg_linereader_t *lr)
{
    if (lr->map)
        munmap((void *)lr->map, lr->map_len);
    lr->map = NULL;
    free(lr->buf);
    free(lr->block);
    lr->buf = NULL;
    lr->block = NULL;
}

static int refill(vg_linereader_t *lr)
{
    if (lr->eof)
        return 0;
    size_t n = fread(lr->block, 1, BLOCK, lr->f);
    if (n == 0) {
        if (ferror(lr->f))
            return -1;
        lr->eof = true;
        return 0;
    }
    lr->pos = 0;
    lr->end = n;
    return 1;
}

/* Appends block bytes to the assembled line, unless it is over the limit
 * (then only its length is counted). */
static int append(vg_linereader_t *lr, const char *p, size_t n, size_t *len, bool *over)
{
    if (!*over && *len + n > lr->max) {
        *over = true;
    }
    if (!*over) {
        if (*len + n + 1 > lr->cap) {
            size_t ncap = lr->cap ? lr->cap : 4096;
            while (ncap < *len + n + 1)
                ncap *= 2;
            char *nb = realloc(lr->buf, ncap);
            if (!nb)
                return -1;
            lr->buf = nb;
            lr->cap = ncap;
        }
        memcpy(lr->buf + *len, p, n);
    }
    *len += n;
    return 0;
}

static int next_line(vg_linereader_t *lr, const char **line, size_t *len);

int vg_linereader_next(vg_linereader_t *lr, const char **line, size_t *len)
{
    int r = next_line(lr, line, len);
    /* A byte-order mark (U+FEFF, as editors on Windows write it) before
     * the first line is no part of it. */
    if (r == 1 && lr->line == 1 && *len >= 3 && memcmp(*line, "\xEF\xBB\xBF", 3) == 0) {
        *line += 3;
        *len -= 3;
    }
    return r;
}

static int next_line(vg_linereader_t *lr, const char **line, size_t *len)
{
    if (lr->map)
        return next_mapped(lr, line, len);
    if (!lr->block) {
        lr->block = malloc(BLOCK + 1);
        if (!lr->block)
            return -1;
    }
    size_t n = 0;
    bool over = false, partial = false;
    for (;;) {
        if (lr->pos >= lr->end) {
            int r = refill(lr);
            if (r < 0)
                return -1;
            if (r == 0) {
                if (!partial)
                    return 0;
                break; /* last line without a newline */
            }
        }
        char *start = lr->block + lr->pos;
        size_t avail = lr->end - lr->pos;
        char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) : avail;
        lr->pos += take + (nl ? 1 : 0);
        lr->bytes_read += take + (nl ? 1 : 0);
        if (nl && !partial) {
            /* The common case: the whole line is inside the block. */
            lr->line++;
            *len = take;
            if (take > lr->max)
                return 2;
            start[take] = '\0';
            *line = start;
            return 1;
        }
        partial = true;
        if (append(lr, start, take, &n, &over) != 0)
            return -1;
        if (nl)
            break;
    }
    lr->line++;
    *len = n;
    if (over)
        return 2;
    lr->buf[n] = '\0';
    *line = lr->buf;
    return 1;
}
