/* Reading a file that must be a regular file: a rule file, a list file,
 * the configuration. A FIFO, a device or a socket there would block a
 * load (and with it a reload, and SIGTERM) forever or feed it without
 * end, so it is refused before a byte is read, as is a file over its
 * size limit. */
#ifndef VIGIL_REGFILE_H
#define VIGIL_REGFILE_H

#include <stddef.h>

#include "vigil/diag.h"
#include "vigil/yaml.h"

/* Reads the regular file at path whole into a malloc'ed buffer (NUL
 * after its *len bytes; the caller frees it). NULL with err filled
 * ("is a FIFO, not a regular file", "the file is N bytes, more than the
 * limit of max bytes", "cannot open: …") otherwise. what names the file's
 * kind in the error for a directory ("a YAML file"). */
char *vg_regfile_read(const char *path, size_t max, const char *what, size_t *len, char *err,
                      size_t err_size);

/* vg_ydoc_load_file for a file that must be regular: errors name path
 * (file:0:0) in diags. */
vg_ydoc_t *vg_ydoc_load_regular(const char *path, const vg_ylimits_t *limits, vg_diags_t *diags);

#endif
