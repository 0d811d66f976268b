/* Group keys and values of the stateful rules: the case-folded text of the
 * values at the rule's paths, their product for several paths. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "vigil/utf8.h"

/* The key text of s[0..n): case-folded (keys compare like 'eq'), without
 * the separators of composite keys. */
static bool text_key(vg_state_t *st, const char *s, size_t n, vg_strbuf_t *out)
{
    if (n == 0)
        return false;
    if (n > MAX_VALUE_BYTES)
        n = MAX_VALUE_BYTES;
    if (st->fold_cap < n * 3 + 1) {
        char *f = realloc(st->fold, n * 3 + 1);
        if (!f)
            return false;
        st->fold = f;
        st->fold_cap = n * 3 + 1;
    }
    size_t fn = vg_utf8_fold(s, n, true, st->fold, NULL);
    for (size_t i = 0; i < fn; i++)
        if (st->fold[i] == SEP_GROUP || st->fold[i] == SEP_VALUE || st->fold[i] == SEP_WINDOW)
            st->fold[i] = ' ';
    vg_strbuf_append(out, st->fold, fn);
    return true;
}

/* The text of a leaf as a key part: strings as text_key, numbers and
 * booleans as their JSON text; null and empty strings are no value. */
static bool leaf_key(vg_state_t *st, json_object *o, vg_strbuf_t *out)
{
    const char *s;
    size_t n;
    if (!o)
        return false;
    if (json_object_is_type(o, json_type_string)) {
        s = json_object_get_string(o);
        n = (size_t)json_object_get_string_len(o);
    } else if (json_object_is_type(o, json_type_null)) {
        return false;
    } else {
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        n = strlen(s);
    }
    return text_key(st, s, n, out);
}

typedef struct collector {
    vg_state_t *st;
    vg_strbuf_t *out;
    size_t n;
} collector_t;

/* Keeps the key text just appended at start unless it is already there;
 * true when MAX_KEYS_PER_EVENT values are collected. */
static bool keep_unique(collector_t *c, size_t start)
{
    vg_strbuf_t *out = c->out;
    size_t vl = out->len - start;
    for (size_t at = 0; at < start;) {
        size_t l = strlen(out->buf + at);
        if (l == vl && memcmp(out->buf + at, out->buf + start, vl) == 0) {
            out->len = start;
            out->buf[start] = '\0';
            return false;
        }
        at += l + 1;
    }
    vg_strbuf_putc(out, '\0');
    return ++c->n >= MAX_KEYS_PER_EVENT;
}

/* Adds the key text of one value, unless it is already there; stops the
 * walk at MAX_KEYS_PER_EVENT values. */
static bool collect_leaf(json_object *o, void *arg)
{
    collector_t *c = arg;
    size_t start = c->out->len;
    return leaf_key(c->st, o, c->out) && keep_unique(c, start);
}

/* group_by: $LIST (rule 16): the entity names that the match's evidence
 * found from the lists named by p's parts; a plain item is its own. */
static void collect_entities(collector_t *c, const vg_rule_match_t *m, const vg_path_t *p)
{
    for (size_t i = 0; m && i < m->nevidence; i++) {
        const vg_evidence_t *e = &m->evidence[i];
        bool from = false;
        for (size_t k = 0; k < p->nparts && !from; k++)
            from = e->list && strcmp(e->list, p->parts[k]) == 0;
        const char *name = e->entity ? e->entity : e->term;
        size_t start = c->out->len;
        if (from && text_key(c->st, name, strlen(name), c->out) && keep_unique(c, start))
            return;
    }
}

size_t vg_state_collect_values(vg_state_t *st, const vg_event_t *ev, const vg_path_t *p,
                               vg_strbuf_t *out)
{
    collector_t c = {st, out, 0};
    vg_event_walk(ev, p, collect_leaf, &c);
    return c.n;
}

/* The group keys of an event: the product of each path's values. No path:
 * one empty key. A path without a value: no key (the event counts for
 * nothing in this rule). */
bool vg_state_group_keys(vg_state_t *st, const vg_event_t *ev, const vg_rule_match_t *m,
                         const vg_path_t *paths, size_t np, keyset_t *ks)
{
    vg_strbuf_reset(&ks->buf);
    ks->n = 0;
    if (np == 0) {
        vg_strbuf_putc(&ks->buf, '\0');
        ks->off[0] = 0;
        ks->len[0] = 0;
        ks->n = 1;
        return !vg_strbuf_failed(&ks->buf);
    }
    vg_strbuf_t vals[4];
    size_t nv[4] = {0};
    bool ok = true;
    for (size_t i = 0; i < np; i++) {
        vg_strbuf_init(&vals[i]);
        if (paths[i].text[0] == '$') {
            collector_t c = {st, &vals[i], 0};
            collect_entities(&c, m, &paths[i]);
            nv[i] = c.n;
        } else {
            nv[i] = vg_state_collect_values(st, ev, &paths[i], &vals[i]);
        }
        ok = ok && !vg_strbuf_failed(&vals[i]);
    }
    size_t total = 1;
    for (size_t i = 0; i < np; i++)
        total = total * nv[i] > MAX_KEYS_PER_EVENT * 64 ? MAX_KEYS_PER_EVENT * 64 : total * nv[i];
    size_t idx[4] = {0};
    const char *cur[4] = {0};
    for (size_t i = 0; i < np; i++)
        cur[i] = vals[i].buf;
    for (size_t k = 0; ok && k < total; k++) {
        if (ks->n == MAX_KEYS_PER_EVENT) {
            ks->dropped += total - k;
            break;
        }
        size_t start = ks->buf.len;
        for (size_t i = 0; i < np; i++) {
            if (i)
                vg_strbuf_putc(&ks->buf, SEP_GROUP);
            vg_strbuf_puts(&ks->buf, cur[i]);
        }
        ks->off[ks->n] = start;
        ks->len[ks->n] = ks->buf.len - start;
        vg_strbuf_putc(&ks->buf, '\0');
        ks->n++;
        /* Odometer over the value lists, last path fastest. */
        for (size_t i = np; i-- > 0;) {
            if (++idx[i] < nv[i]) {
                cur[i] += strlen(cur[i]) + 1;
                break;
            }
            idx[i] = 0;
            cur[i] = vals[i].buf;
        }
    }
    for (size_t i = 0; i < np; i++)
        vg_strbuf_free(&vals[i]);
    return ok && !vg_strbuf_failed(&ks->buf);
}

