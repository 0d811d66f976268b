/* Dotted field paths (see path.h). */
#include "path.h"

#include <stdlib.h>
#include <string.h>

size_t vg_path_count_parts(const char *text, size_t len)
{
    size_t parts = 1;
    for (size_t i = 0; i < len; i++)
        parts += text[i] == '.';
    return parts;
}

bool vg_path_init(vg_path_t *p, const char *text, size_t len)
{
    memset(p, 0, sizeof(*p));
    size_t parts = vg_path_count_parts(text, len);
    p->text = malloc(len + 1);
    p->parts = calloc(parts, sizeof(char *));
    if (!p->text || !p->parts)
        return false;
    memcpy(p->text, text, len);
    p->text[len] = '\0';
    const char *q = p->text, *end = p->text + len;
    for (size_t k = 0; k < parts; k++) {
        const char *e = memchr(q, '.', (size_t)(end - q));
        size_t l = e ? (size_t)(e - q) : (size_t)(end - q);
        if (!(p->parts[k] = malloc(l + 1)))
            return false;
        memcpy(p->parts[k], q, l);
        p->parts[k][l] = '\0';
        p->nparts++;
        q = e ? e + 1 : end;
    }
    return true;
}

bool vg_path_init_str(vg_path_t *p, const char *text)
{
    return vg_path_init(p, text, strlen(text));
}

void vg_path_free(vg_path_t *p)
{
    if (!p)
        return;
    free(p->text);
    for (size_t i = 0; i < p->nparts; i++)
        free(p->parts[i]);
    free(p->parts);
    memset(p, 0, sizeof(*p));
}
