/* Dotted field paths as rules write them ("title", "doc.source"): the
 * check and the split at the dots. Text conditions, field conditions and
 * stateful settings all go through these three functions, so that one
 * shared path type can replace them in one place. */
#include <stdlib.h>
#include <string.h>

#include "ruleset_int.h"

/* Names between dots must not be empty; NUL would cut the path short. */
bool vg_rc_valid_path(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.' || memchr(s, '\0', len))
        return false;
    return strstr(s, "..") == NULL;
}

/* Splits s at its dots into *parts (malloc'ed, *nparts of them). On
 * failure *parts holds the *nparts parts made so far, for the caller's
 * destroy. */
bool vg_rc_split_path(compiler_t *c, const char *s, size_t len, char ***parts, size_t *nparts)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '.';
    *nparts = 0;
    *parts = calloc(n, sizeof(char *));
    if (!*parts) {
        vg_rc_oom(c);
        return false;
    }
    const char *end = s + len;
    for (const char *p = s;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t l = dot ? (size_t)(dot - p) : (size_t)(end - p);
        if (!((*parts)[*nparts] = vg_rc_strndup(c, p, l)))
            return false;
        (*nparts)++;
        if (!dot)
            return true;
        p = dot + 1;
    }
}

bool vg_rc_make_path(compiler_t *c, vg_path_t *p, const char *s, size_t len)
{
    p->text = vg_rc_strndup(c, s, len);
    return p->text && vg_rc_split_path(c, s, len, &p->parts, &p->nparts);
}
