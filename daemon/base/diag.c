/* Diagnostics collection and "did you mean" suggestions. */
#include "vigil/diag.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vg_diags {
    vg_diag_t *items;
    size_t count;
    size_t cap;
    size_t errors; /* counted even when the message could not be stored */
    size_t lost;   /* messages dropped for lack of memory */
};

vg_diags_t *vg_diags_new(void)
{
    return calloc(1, sizeof(vg_diags_t));
}

void vg_diags_destroy(vg_diags_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->count; i++) {
        free(d->items[i].file);
        free(d->items[i].message);
    }
    free(d->items);
    free(d);
}

static char *vg_vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

void vg_diags_add(vg_diags_t *d, vg_diag_level_t level, const char *file, unsigned line,
                  unsigned col, const char *fmt, ...)
{
    if (d == NULL)
        return;
    /* Count first: a caller deciding "did loading fail?" must see the
     * error even when there is no memory left to keep its text. */
    if (level == VG_DIAG_ERROR)
        d->errors++;

    va_list ap;
    va_start(ap, fmt);
    char *message = vg_vformat(fmt, ap);
    va_end(ap);
    char *file_copy = file != NULL ? strdup(file) : NULL;
    if (message == NULL || (file != NULL && file_copy == NULL))
        goto lost;

    if (d->count == d->cap) {
        size_t cap = d->cap != 0 ? d->cap * 2 : 8;
        vg_diag_t *items = realloc(d->items, cap * sizeof(*items));
        if (items == NULL)
            goto lost;
        d->items = items;
        d->cap = cap;
    }
    d->items[d->count++] = (vg_diag_t){
        .level = level, .file = file_copy, .line = line, .col = col, .message = message};
    return;

lost:
    free(message);
    free(file_copy);
    d->lost++;
}

size_t vg_diags_count(const vg_diags_t *d)
{
    return d != NULL ? d->count : 0;
}

size_t vg_diags_errors(const vg_diags_t *d)
{
    return d != NULL ? d->errors : 0;
}

size_t vg_diags_promote_warnings(vg_diags_t *d)
{
    size_t n = 0;
    for (size_t i = 0; d && i < d->count; i++)
        if (d->items[i].level == VG_DIAG_WARNING) {
            d->items[i].level = VG_DIAG_ERROR;
            d->errors++;
            n++;
        }
    return n;
}

const vg_diag_t *vg_diags_get(const vg_diags_t *d, size_t i)
{
    if (d == NULL || i >= d->count)
        return NULL;
    return &d->items[i];
}

static const char *vg_level_name(vg_diag_level_t level)
{
    switch (level) {
    case VG_DIAG_WARNING:
        return "warning";
    case VG_DIAG_NOTE:
        return "note";
    case VG_DIAG_ERROR:
    default:
        return "error";
    }
}

/* The "line:col:" part of the prefix, leaving out whatever is unknown. */
static void vg_position(const vg_diag_t *m, char *buf, size_t size)
{
    if (m->line == 0)
        buf[0] = '\0';
    else if (m->col == 0)
        snprintf(buf, size, "%u:", m->line);
    else
        snprintf(buf, size, "%u:%u:", m->line, m->col);
}

void vg_diags_format(const vg_diags_t *d, size_t i, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return;
    const vg_diag_t *m = vg_diags_get(d, i);
    if (m == NULL) {
        buf[0] = '\0';
        return;
    }
    char pos[32];
    vg_position(m, pos, sizeof(pos));
    bool located = m->file != NULL || pos[0] != '\0';
    snprintf(buf, size, "%s%s%s%s%s: %s", m->file != NULL ? m->file : "",
             m->file != NULL ? ":" : "", pos, located ? " " : "", vg_level_name(m->level),
             m->message);
}

void vg_diags_print(const vg_diags_t *d, void *stream)
{
    FILE *out = stream;
    if (d == NULL || out == NULL)
        return;
    for (size_t i = 0; i < d->count; i++) {
        const vg_diag_t *m = &d->items[i];
        char pos[32];
        vg_position(m, pos, sizeof(pos));
        bool located = m->file != NULL || pos[0] != '\0';
        fprintf(out, "%s%s%s%s%s: %s\n", m->file != NULL ? m->file : "",
                m->file != NULL ? ":" : "", pos, located ? " " : "", vg_level_name(m->level),
                m->message);
    }
    if (d->lost != 0)
        fprintf(out, "error: out of memory; %zu more message%s lost\n", d->lost,
                d->lost == 1 ? " was" : "s were");
}

/* Words longer than this are not typos of a key; it also bounds the
 * distance table so it can live on the stack. */
#define VG_SUGGEST_MAX_LEN 128

/* Optimal string alignment distance (Levenshtein plus transposition of
 * two adjacent characters), ignoring ASCII case. */
static size_t vg_edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t rows[3][VG_SUGGEST_MAX_LEN + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        int ca = tolower((unsigned char)a[i - 1]);
        for (size_t j = 1; j <= lb; j++) {
            int cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca == cb ? 0 : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

static bool vg_has_prefix_nocase(const char *s, size_t ls, const char *prefix, size_t lp)
{
    if (lp > ls)
        return false;
    for (size_t i = 0; i < lp; i++)
        if (tolower((unsigned char)s[i]) != tolower((unsigned char)prefix[i]))
            return false;
    return true;
}

const char *vg_suggest(const char *word, const char *const *candidates, size_t n)
{
    if (word == NULL || candidates == NULL)
        return NULL;
    size_t lw = strlen(word);
    if (lw == 0 || lw > VG_SUGGEST_MAX_LEN)
        return NULL;

    /* A third of the word's length may be wrong (at least one character):
     * "brokres" and "gruop" are typos, "xyz" for "group" is not. */
    size_t limit = lw / 3 > 1 ? lw / 3 : 1;
    const char *best = NULL;
    size_t best_dist = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        const char *c = candidates[i];
        if (c == NULL)
            continue;
        size_t lc = strlen(c);
        if (lc == 0 || lc > VG_SUGGEST_MAX_LEN)
            continue;
        size_t dist = vg_edit_distance(word, lw, c, lc);
        /* A truncated name ("dead" for "dead_letter_topic") or one with
         * something appended ("delivery_mode") is plausible even when
         * many characters differ, as long as the shared part is not a
         * trivially short one. */
        bool plausible = dist <= limit ||
                         (lw >= 3 && vg_has_prefix_nocase(c, lc, word, lw)) ||
                         (lc >= 4 && vg_has_prefix_nocase(word, lw, c, lc));
        if (plausible && dist < best_dist) {
            best = c;
            best_dist = dist;
        }
    }
    return best;
}

void vg_diag_excerpt(const char *s, size_t len, size_t max, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return;
    size_t o = 0;
    if (s == NULL)
        len = 0;
    size_t i = 0;
    for (; i < len && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 4 >= size)
            break;
        /* Control characters would garble a terminal or a log line. */
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (i < len) {
        /* Do not leave half a UTF-8 sequence before the ellipsis. */
        size_t k = 0;
        while (k < o && k < 3 && ((unsigned char)buf[o - 1 - k] & 0xC0) == 0x80)
            k++;
        if (k < o) {
            unsigned char lead = (unsigned char)buf[o - 1 - k];
            size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            if (want > k + 1)
                o -= k + 1;
        }
        if (o + 3 < size) {
            memcpy(buf + o, "...", 3);
            o += 3;
        }
    }
    buf[o] = '\0';
}
