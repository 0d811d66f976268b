/* Regular files only (regfile.h). The file is opened with O_NONBLOCK, so
 * that opening a FIFO without a writer returns at once instead of
 * waiting for one, and its type is checked on the descriptor that is
 * then read, so that it cannot be swapped between check and read. */
#include "regfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *file_kind(mode_t m)
{
    if (S_ISFIFO(m))
        return "a FIFO (named pipe)";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

/* Refuses what st describes unless it is a regular file of at most max
 * bytes; false with err filled. */
static bool acceptable(const struct stat *st, size_t max, const char *what, char *err,
                       size_t err_size)
{
    if (S_ISDIR(st->st_mode)) {
        snprintf(err, err_size, "is a directory, not %s", what);
        return false;
    }
    if (!S_ISREG(st->st_mode)) {
        snprintf(err, err_size, "is %s, not a regular file; vigil reads only regular files",
                 file_kind(st->st_mode));
        return false;
    }
    if ((uintmax_t)st->st_size > max) {
        snprintf(err, err_size, "the file is %jd bytes, more than the limit of %zu bytes",
                 (intmax_t)st->st_size, max);
        return false;
    }
    return true;
}

char *vg_regfile_read(const char *path, size_t max, const char *what, size_t *len, char *err,
                      size_t err_size)
{
    struct stat st;
    /* A socket cannot be opened at all: say what it is rather than
     * "No such device or address". */
    if (stat(path, &st) == 0 && !acceptable(&st, max, what, err, err_size))
        return NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "cannot open: %s", strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    if (fstat(fd, &st) != 0) {
        snprintf(err, err_size, "cannot read: %s", strerror(errno));
        goto fail;
    }
    if (!acceptable(&st, max, what, err, err_size))
        goto fail;
    /* One byte more than the size, to see a file that grew meanwhile. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    if (!(buf = malloc(cap + 1))) {
        snprintf(err, err_size, "out of memory reading the file");
        goto fail;
    }
    while (n < cap) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, err_size, "cannot read: %s", strerror(errno));
            goto fail;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > max || n == cap) {
        snprintf(err, err_size, "the file grew while it was read; read it again");
        goto fail;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

vg_ydoc_t *vg_ydoc_load_regular(const char *path, const vg_ylimits_t *limits, vg_diags_t *diags)
{
    size_t max = limits && limits->max_bytes ? limits->max_bytes : VG_YAML_MAX_BYTES;
    char err[256];
    size_t len = 0;
    char *buf = vg_regfile_read(path, max, "a YAML file", &len, err, sizeof(err));
    if (!buf) {
        vg_diags_add(diags, VG_DIAG_ERROR, path, 0, 0, "%s", err);
        return NULL;
    }
    vg_ydoc_t *doc = vg_ydoc_load_buffer(path, buf, len, limits, diags);
    free(buf);
    return doc;
}
