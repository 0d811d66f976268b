/* Dotted field paths as rules write them ("title", "doc.source"): the
 * check the compiler makes, and the split at the dots, which is the one
 * path type of daemon/base/path.h with the compiler's out-of-memory
 * report. */
#include <stdlib.h>
#include <string.h>

#include "path.h"

#include "ruleset_int.h"

/* Names between dots must not be empty; NUL would cut the path short. */
bool vg_rc_valid_path(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.' || memchr(s, '\0', len))
        return false;
    return strstr(s, "..") == NULL;
}

/* Splits s at its dots into *parts (malloc'ed, *nparts of them), through
 * the one path type (daemon/base/path.h). On failure *parts holds the
 * *nparts parts made so far, for the caller's destroy. */
bool vg_rc_split_path(compiler_t *c, const char *s, size_t len, char ***parts, size_t *nparts)
{
    vg_path_t p;
    bool ok = vg_path_init(&p, s, len);
    free(p.text);
    *parts = p.parts;
    *nparts = p.nparts;
    if (!ok)
        vg_rc_oom(c);
    return ok;
}

bool vg_rc_make_path(compiler_t *c, vg_path_t *p, const char *s, size_t len)
{
    if (vg_path_init(p, s, len))
        return true;
    vg_rc_oom(c);
    return false;
}
