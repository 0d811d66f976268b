/* The keys of stateful rules: the case-folded text of the values at a
 * rule's group_by paths (their product for several paths) and a
 * first_seen rule's values. They are found where the event is decoded (a
 * worker of the pool), so that the in-order state step can count an
 * event without keeping or decoding it again; the state step of `vigil
 * test` and vg_state_process call the same code on the events they have. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "path.h"
#include "strbuf.h"
#include "vigil/event.h"
#include "vigil/rule_state.h"
#include "vigil/scanner.h"
#include "vigil/utf8.h"

/* The key text of s[0..n): case-folded (keys compare like 'eq'), the
 * separators below turned into spaces; empty is no value. Values are cut
 * at VG_KEY_MAX_VALUE bytes, so the fold fits a buffer on the stack (a
 * fold writes at most three bytes per byte). */
static bool text_key(const char *s, size_t n, vg_strbuf_t *out)
{
    if (n == 0)
        return false;
    if (n > VG_KEY_MAX_VALUE)
        n = VG_KEY_MAX_VALUE;
    char fold[3 * VG_KEY_MAX_VALUE + 1];
    size_t fn = vg_utf8_fold(s, n, true, fold, NULL);
    for (size_t i = 0; i < fn; i++)
        if (fold[i] == VG_KEY_SEP_GROUP || fold[i] == VG_KEY_SEP_VALUE ||
            fold[i] == VG_KEY_SEP_WINDOW)
            fold[i] = ' ';
    vg_strbuf_append(out, fold, fn);
    return true;
}

/* The text of a leaf as a key part: strings as text_key, numbers and
 * booleans as their JSON text; null and empty strings are no value. */
static bool leaf_key(json_object *o, vg_strbuf_t *out)
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
    return text_key(s, n, out);
}

typedef struct collector {
    vg_strbuf_t *out;
    size_t first; /* where this path's values start in out */
    size_t n;
} collector_t;

/* Keeps the key text just appended at start unless this path gave it
 * already; true when VG_KEY_MAX_KEYS values are collected. */
static bool keep_unique(collector_t *c, size_t start)
{
    vg_strbuf_t *out = c->out;
    size_t vl = out->len - start;
    for (size_t at = c->first; at < start;) {
        size_t l = strlen(out->buf + at);
        if (l == vl && memcmp(out->buf + at, out->buf + start, vl) == 0) {
            out->len = start;
            out->buf[start] = '\0';
            return false;
        }
        at += l + 1;
    }
    vg_strbuf_putc(out, '\0');
    return ++c->n >= VG_KEY_MAX_KEYS;
}

/* Adds the key text of one value, unless this path gave it already;
 * stops the walk at VG_KEY_MAX_KEYS values. */
static bool collect_leaf(json_object *o, void *arg)
{
    collector_t *c = arg;
    size_t start = c->out->len;
    return leaf_key(o, c->out) && keep_unique(c, start);
}

size_t vg_event_key_values(const vg_event_t *ev, const vg_path_t *p, vg_strbuf_t *out)
{
    collector_t c = {out, out->len, 0};
    vg_event_walk(ev, p, collect_leaf, &c);
    return c.n;
}

/* group_by: $LIST (rule 16): the entity names that the evidence found
 * from the lists named by p's parts (the list and the lists it takes
 * items from); a plain item is its own name. */
static size_t entity_values(const vg_evidence_t *evd, size_t nevd, const vg_path_t *p,
                            vg_strbuf_t *out)
{
    collector_t c = {out, out->len, 0};
    for (size_t i = 0; i < nevd; i++) {
        const vg_evidence_t *e = &evd[i];
        bool from = false;
        for (size_t k = 0; k < p->nparts && !from; k++)
            from = e->list && strcmp(e->list, p->parts[k]) == 0;
        const char *name = e->entity ? e->entity : e->term;
        size_t start = out->len;
        if (from && text_key(name, strlen(name), out) && keep_unique(&c, start))
            break;
    }
    return c.n;
}

/* The values of one group_by item: a field's, or a list's entities. */
static size_t path_values(const vg_event_t *ev, const vg_evidence_t *evd, size_t nevd,
                          const vg_path_t *p, vg_strbuf_t *out)
{
    if (p->text[0] == '$')
        return entity_values(evd, nevd, p, out);
    return vg_event_key_values(ev, p, out);
}

/* The keys of a single group_by path, without the copies of the general
 * case below: the values themselves, each key taken up to its first NUL
 * byte as that case does (a value with a NUL in it, from "\u0000", gives
 * two keys there, the second one cut off by the count). */
static bool one_path_keys(const vg_event_t *ev, const vg_evidence_t *evd, size_t nevd,
                          const vg_path_t *path, vg_strbuf_t *keys, size_t *nkeys)
{
    size_t at = keys->len;
    *nkeys = path_values(ev, evd, nevd, path, keys);
    if (vg_strbuf_failed(keys))
        return false;
    for (size_t k = 0; k < *nkeys; k++)
        at += strlen(keys->buf + at) + 1;
    if (keys->buf) {
        keys->len = at;
        keys->buf[at] = '\0';
    }
    return true;
}

/* The group keys of an event: the product of each path's values, last
 * path fastest. No path: one empty key. A path without a value: no key
 * (the event counts for nothing in this rule). */
static bool group_keys(const vg_event_t *ev, const vg_evidence_t *evd, size_t nevd,
                       const vg_path_t *paths, size_t np, vg_strbuf_t *keys, size_t *nkeys,
                       uint64_t *dropped)
{
    *nkeys = 0;
    if (np == 0) {
        vg_strbuf_putc(keys, '\0');
        *nkeys = 1;
        return !vg_strbuf_failed(keys);
    }
    if (np == 1)
        return one_path_keys(ev, evd, nevd, paths, keys, nkeys);
    vg_strbuf_t vals[VG_KEY_MAX_PATHS];
    size_t nv[VG_KEY_MAX_PATHS] = {0};
    bool ok = np <= VG_KEY_MAX_PATHS;
    if (!ok)
        np = 0;
    for (size_t i = 0; i < np; i++) {
        vg_strbuf_init(&vals[i]);
        nv[i] = path_values(ev, evd, nevd, &paths[i], &vals[i]);
        ok = ok && !vg_strbuf_failed(&vals[i]);
    }
    size_t total = np ? 1 : 0;
    for (size_t i = 0; i < np; i++)
        total = total * nv[i] > VG_KEY_MAX_KEYS * 64 ? VG_KEY_MAX_KEYS * 64 : total * nv[i];
    size_t idx[VG_KEY_MAX_PATHS] = {0};
    const char *cur[VG_KEY_MAX_PATHS] = {0};
    for (size_t i = 0; i < np; i++)
        cur[i] = vals[i].buf;
    for (size_t k = 0; ok && k < total; k++) {
        if (*nkeys == VG_KEY_MAX_KEYS) {
            *dropped += total - k;
            break;
        }
        for (size_t i = 0; i < np; i++) {
            if (i)
                vg_strbuf_putc(keys, VG_KEY_SEP_GROUP);
            vg_strbuf_puts(keys, cur[i]);
        }
        vg_strbuf_putc(keys, '\0');
        (*nkeys)++;
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
    return ok && !vg_strbuf_failed(keys);
}

bool vg_event_rule_keys(const vg_event_t *ev, const vg_rule_state_t *cfg, const vg_evidence_t *evd,
                        size_t nevd, vg_event_keys_t *out)
{
    bool agg = cfg->kind != VG_AGG_NONE;
    const vg_path_t *paths = agg || !cfg->out_group_set ? cfg->group : cfg->out_group;
    size_t np = agg || !cfg->out_group_set ? cfg->ngroup : cfg->nout_group;
    out->nkeys = out->nvalues = 0;
    out->dropped = 0;
    if (!group_keys(ev, evd, nevd, paths, np, out->keys, &out->nkeys, &out->dropped))
        return false;
    if (agg && cfg->kind == VG_AGG_FIRST_SEEN)
        out->nvalues = vg_event_key_values(ev, &cfg->field, out->values);
    return !vg_strbuf_failed(out->values);
}
