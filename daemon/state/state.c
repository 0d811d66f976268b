/* The state of stateful rules for one input partition.
 *
 * Each stateful rule has a clock (the largest event time seen in the
 * partition, by its time field) and a watermark (clock - lateness). Events
 * older than the watermark are late: counted and dropped. A rule keeps up
 * to two tables of keys: the aggregation (threshold, spike, first_seen,
 * absence) and the output stage (throttle, digest). Each table is a hash
 * table with an LRU list (eviction at max_keys, counted) and a min-heap of
 * deadlines in event time: when the watermark reaches a deadline the entry
 * expires (absence fires, a digest is sent, anything else is forgotten).
 * Ties in the heap are broken by a per-rule sequence number, so that the
 * order of expiries (and so of alerts) depends on the input alone, also
 * after a snapshot and restore. */
#include "vigil/state.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "state_int.h" /* includes engine_int.h */
#include "strbuf.h"
#include "vigil/utf8.h"

static const char *const KIND_NAMES[] = {"threshold", "spike",    "first_seen",
                                         "absence",   "throttle", "digest"};

/* What the aggregation decided, handed to the output stage. */
typedef struct cand {
    tkind_t kind;
    const char *key; /* group key (values joined by SEP_GROUP) */
    size_t klen;
    const vg_path_t *paths;
    size_t npaths;
    uint64_t count;
    int64_t t;               /* event time of the trigger */
    int64_t wstart, wend;    /* NO_TIME: none */
    const char *value;       /* first_seen */
    size_t vlen;
    double baseline;         /* spike */
    bool partial;            /* digest flushed early */
    const entry_t *digest;
} cand_t;

typedef struct emitter {
    vg_state_t *st;
    rstate_t *r;
    vg_scanner_t *sc;        /* NULL for alerts without an event */
    const vg_event_t *ev;
    size_t match_idx;
    const vg_alert_source_t *src;
    vg_state_emit_fn fn;
    void *ctx;
    int count;
    bool failed;
    const char *why;
} emitter_t;

/* ---- time ---- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    return m == 2 && leap ? 29 : dm[m - 1];
}

static bool digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool epoch_number(double v, int64_t *ms)
{
    if (!(v > -1e15 && v < 1e15))
        return false;
    /* Seconds until the year 5138; beyond that the value is milliseconds. */
    *ms = v >= 1e11 || v <= -1e11 ? (int64_t)v : (int64_t)(v * 1000.0);
    return true;
}

bool vg_state_parse_time(const char *s, size_t n, int64_t *ms)
{
    unsigned y, mo, d, h = 0, mi = 0, se = 0;
    if (n > 0 && n <= 20 && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) &&
        (n < 5 || s[4] != '-')) {
        char buf[32], *end;
        memcpy(buf, s, n);
        buf[n] = '\0';
        double v = strtod(buf, &end);
        return *end == '\0' && epoch_number(v, ms);
    }
    if (n < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    int64_t frac = 0, off = 0;
    if (n > 10) {
        if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || n < 19 ||
            !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
            !digits(s + 17, 2, &se) || h > 23 || mi > 59 || se > 60)
            return false;
        size_t i = 19;
        if (i < n && s[i] == '.') {
            size_t k = ++i;
            int64_t scale = 100;
            while (i < n && s[i] >= '0' && s[i] <= '9') {
                frac += (s[i] - '0') * scale;
                scale /= 10;
                i++;
            }
            if (i == k)
                return false;
        }
        if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
            unsigned oh, om;
            if (!digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) || oh > 23 || om > 59)
                return false;
            off = ((int64_t)oh * 60 + om) * 60000 * (s[i] == '-' ? -1 : 1);
            i += 6;
        } else {
            return false;
        }
        if (i != n)
            return false;
    }
    int64_t days = days_from_civil((int64_t)y, mo, d);
    *ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)se * 1000 + frac - off;
    return true;
}

static void rfc3339(char *buf, size_t size, int64_t ms)
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int rem = (int)(ms - s * 1000);
    time_t tt = (time_t)s;
    struct tm tm;
    gmtime_r(&tt, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", rem);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static json_object *lookup(json_object *o, const vg_path_t *p)
{
    for (size_t i = 0; o && i < p->nparts; i++) {
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_length(o) ? json_object_array_get_idx(o, 0) : NULL;
        if (!o || !json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, p->parts[i], &o))
            return NULL;
    }
    return o;
}

static int64_t event_time(const vg_state_t *st, const rstate_t *r, const vg_event_t *ev,
                          const vg_alert_source_t *src)
{
    const vg_path_t *p = r->cfg->time_field.text ? &r->cfg->time_field : &st->default_time;
    json_object *v = lookup(vg_event_json(ev), p);
    int64_t ms;
    if (v && json_object_is_type(v, json_type_string) &&
        vg_state_parse_time(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                            &ms))
        return ms;
    if (v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) &&
        epoch_number(json_object_get_double(v), &ms))
        return ms;
    /* The producer sets the Kafka timestamp: the same range as epoch
     * numbers, so that window arithmetic cannot overflow. */
    if (src && src->topic && src->timestamp_ms >= 0 &&
        src->timestamp_ms < INT64_C(1000000000000000))
        return src->timestamp_ms;
    return NO_TIME;
}

/* ---- tables ---- */

static void entry_free(entry_t *e)
{
    if (!e)
        return;
    free(e->key);
    free(e->ts);
    for (uint32_t i = 0; i < e->nitems; i++)
        free(e->items[i]);
    free(e->items);
    free(e);
}

static bool heap_less(const entry_t *x, const entry_t *y)
{
    return x->deadline < y->deadline || (x->deadline == y->deadline && x->seq < y->seq);
}

static void heap_set(table_t *t, size_t i, entry_t *e)
{
    t->heap[i] = e;
    e->hidx = i;
}

static void heap_fix(table_t *t, size_t i)
{
    entry_t *e = t->heap[i];
    while (i > 0 && heap_less(e, t->heap[(i - 1) / 2])) {
        heap_set(t, i, t->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        entry_t *best = e;
        if (l < t->nheap && heap_less(t->heap[l], best))
            m = l, best = t->heap[l];
        if (l + 1 < t->nheap && heap_less(t->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        heap_set(t, i, t->heap[m]);
        i = m;
    }
    heap_set(t, i, e);
}

static void heap_remove(table_t *t, entry_t *e)
{
    if (e->hidx == SIZE_MAX)
        return;
    size_t i = e->hidx;
    e->hidx = SIZE_MAX;
    entry_t *last = t->heap[--t->nheap];
    if (i < t->nheap) {
        heap_set(t, i, last);
        heap_fix(t, i);
    }
}

bool vg_state_heap_put(table_t *t, entry_t *e)
{
    if (e->hidx != SIZE_MAX) {
        heap_fix(t, e->hidx);
        return true;
    }
    if (t->nheap == t->heapcap) {
        size_t cap = t->heapcap ? t->heapcap * 2 : 64;
        entry_t **h = realloc(t->heap, cap * sizeof(*h));
        if (!h)
            return false;
        t->heap = h;
        t->heapcap = cap;
    }
    heap_set(t, t->nheap++, e);
    heap_fix(t, e->hidx);
    return true;
}

entry_t *vg_state_table_get(const table_t *t, const char *key, size_t len, uint64_t h)
{
    if (!t->nbuckets)
        return NULL;
    for (entry_t *e = t->buckets[h & (t->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && e->klen == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static void lru_unlink(table_t *t, entry_t *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        t->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        t->newest = e->older;
    e->older = e->newer = NULL;
}

static void lru_append(table_t *t, entry_t *e)
{
    e->older = t->newest;
    e->newer = NULL;
    if (t->newest)
        t->newest->newer = e;
    else
        t->oldest = e;
    t->newest = e;
}

/* Unlinks e from everything and frees it. */
static void table_drop(table_t *t, entry_t *e)
{
    entry_t **pp = &t->buckets[e->hash & (t->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(t, e);
    heap_remove(t, e);
    t->count--;
    entry_free(e);
}

static bool table_grow(table_t *t)
{
    size_t nb = t->nbuckets ? t->nbuckets * 2 : 64;
    entry_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (entry_t *e = t->buckets[i], *next; e; e = next) {
            next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
    return true;
}

/* Adds a new key (the caller checked it is absent). At max_keys the least
 * recently updated key goes first, counted in *evicted. */
entry_t *vg_state_table_add(table_t *t, const char *key, size_t len, uint64_t h,
                           uint64_t *evicted)
{
    if (t->count >= t->max_keys && t->oldest) {
        table_drop(t, t->oldest);
        (*evicted)++;
    }
    if (t->count >= t->nbuckets && !table_grow(t))
        return NULL;
    entry_t *e = calloc(1, sizeof(*e));
    if (!e || !(e->key = malloc(len + 1))) {
        free(e);
        return NULL;
    }
    memcpy(e->key, key, len);
    e->key[len] = '\0';
    e->klen = len;
    e->hash = h;
    e->hidx = SIZE_MAX;
    e->hnext = t->buckets[h & (t->nbuckets - 1)];
    t->buckets[h & (t->nbuckets - 1)] = e;
    lru_append(t, e);
    t->count++;
    return e;
}

static void table_touch(rstate_t *r, table_t *t, entry_t *e)
{
    e->seq = ++r->seq;
    lru_unlink(t, e);
    lru_append(t, e);
}

static void table_clear(table_t *t)
{
    for (entry_t *e = t->oldest, *n; e; e = n) {
        n = e->newer;
        entry_free(e);
    }
    free(t->buckets);
    free(t->heap);
    tkind_t k = t->kind;
    uint32_t mk = t->max_keys;
    memset(t, 0, sizeof(*t));
    t->kind = k;
    t->max_keys = mk;
}

uint64_t vg_state_key_hash(const char *k, size_t n) { return vg_hash64(VG_HASH_INIT, k, n); }

/* ---- construction ---- */

static bool init_path(vg_path_t *p, const char *text)
{
    memset(p, 0, sizeof(*p));
    p->text = strdup(text);
    size_t parts = 1;
    for (const char *q = text; *q; q++)
        parts += *q == '.';
    p->parts = calloc(parts, sizeof(char *));
    if (!p->text || !p->parts)
        return false;
    const char *q = text;
    for (size_t k = 0; k < parts; k++) {
        const char *e = strchr(q, '.');
        size_t l = e ? (size_t)(e - q) : strlen(q);
        if (!(p->parts[k] = strndup(q, l)))
            return false;
        p->nparts++;
        q = e ? e + 1 : q + l;
    }
    return true;
}

static void free_path(vg_path_t *p)
{
    free(p->text);
    for (size_t i = 0; i < p->nparts; i++)
        free(p->parts[i]);
    free(p->parts);
}

vg_state_t *vg_state_new(const vg_ruleset_t *rs, const vg_state_options_t *opts)
{
    vg_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->rs = rs;
    st->only = opts ? opts->only_rule : NULL;
    vg_strbuf_init(&st->sb);
    const char *tf = opts && opts->time_field && *opts->time_field ? opts->time_field
                                                                   : "published_at";
    if (!init_path(&st->default_time, tf))
        goto fail;
    st->rules = calloc(vg_ruleset_rule_count(rs) ? vg_ruleset_rule_count(rs) : 1, sizeof(rstate_t));
    if (!st->rules)
        goto fail;
    for (size_t i = 0; i < vg_ruleset_rule_count(rs); i++) {
        const vg_rule_t *rule = vg_ruleset_rule(rs, i);
        const vg_rule_t *only = opts ? opts->only_rule : NULL;
        if (!vg_rule_state(rule) || (only ? only != rule : !vg_rule_enabled(rule)))
            continue;
        rstate_t *r = &st->rules[st->nrules++];
        const vg_rule_state_t *c = vg_rule_state(rule);
        r->rule = rule;
        r->cfg = c;
        r->clock = NO_TIME;
        r->time_field = c->time_field.text ? c->time_field.text : st->default_time.text;
        r->has_agg = c->kind != VG_AGG_NONE;
        r->agg.kind = (tkind_t)(c->kind - 1);
        r->agg.max_keys = c->max_keys;
        r->has_out = c->out != VG_OUT_EACH;
        r->out.kind = c->out == VG_OUT_THROTTLE ? T_THROTTLE : T_DIGEST;
        r->out.max_keys = c->out_max_keys;
        r->out_group = c->out_group_set ? c->out_group : c->group;
        r->nout_group = c->out_group_set ? c->nout_group : c->ngroup;
    }
    return st;
fail:
    vg_state_destroy(st);
    return NULL;
}

void vg_state_clear(vg_state_t *st)
{
    for (size_t i = 0; i < st->nrules; i++) {
        rstate_t *r = &st->rules[i];
        table_clear(&r->agg);
        table_clear(&r->out);
        r->clock = NO_TIME;
        r->seq = 0;
        memset(&r->stats, 0, sizeof(r->stats));
    }
    st->events = 0;
}

void vg_state_destroy(vg_state_t *st)
{
    if (!st)
        return;
    if (st->rules)
        vg_state_clear(st);
    free(st->rules);
    free_path(&st->default_time);
    vg_strbuf_free(&st->sb);
    free(st->fold);
    free(st);
}

/* ---- group keys ---- */

typedef struct keyset {
    vg_strbuf_t buf; /* keys, each NUL-terminated */
    size_t off[MAX_KEYS_PER_EVENT], len[MAX_KEYS_PER_EVENT];
    size_t n;
    uint64_t dropped;
} keyset_t;

/* The text of a leaf as a key part: strings case-folded (keys compare like
 * 'eq'), numbers and booleans as their JSON text; null and empty strings
 * are no value. */
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

/* Collects the distinct values at path p (arrays give one per element) as
 * NUL-separated strings in out; returns how many. */
static size_t collect_values(vg_state_t *st, json_object *o, const vg_path_t *p, size_t depth,
                             vg_strbuf_t *out, size_t n, unsigned nest)
{
    if (!o || nest > 64 || n >= MAX_KEYS_PER_EVENT)
        return n;
    if (json_object_is_type(o, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(o); i++)
            n = collect_values(st, json_object_array_get_idx(o, i), p, depth, out, n, nest + 1);
        return n;
    }
    if (depth == p->nparts) {
        size_t start = out->len;
        if (!leaf_key(st, o, out))
            return n;
        /* Skip a value already collected. */
        size_t vl = out->len - start;
        for (size_t at = 0; at < start;) {
            size_t l = strlen(out->buf + at);
            if (l == vl && memcmp(out->buf + at, out->buf + start, vl) == 0) {
                out->len = start;
                out->buf[start] = '\0';
                return n;
            }
            at += l + 1;
        }
        vg_strbuf_putc(out, '\0');
        return n + 1;
    }
    json_object *next;
    if (!json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, p->parts[depth], &next))
        return n;
    return collect_values(st, next, p, depth + 1, out, n, nest + 1);
}

/* The group keys of an event: the product of each path's values. No path:
 * one empty key. A path without a value: no key (the event counts for
 * nothing in this rule). */
static bool group_keys(vg_state_t *st, json_object *root, const vg_path_t *paths, size_t np,
                       keyset_t *ks)
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
        nv[i] = collect_values(st, root, &paths[i], 0, &vals[i], 0, 0);
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

/* ---- alert rendering ---- */

static void put_group(vg_strbuf_t *sb, const char *key, size_t klen, const vg_path_t *paths,
                      size_t np)
{
    vg_strbuf_putc(sb, '{');
    const char *p = key, *end = key + klen;
    for (size_t i = 0; i < np; i++) {
        const char *e = memchr(p, SEP_GROUP, (size_t)(end - p));
        if (!e || i + 1 == np)
            e = end;
        if (i)
            vg_strbuf_putc(sb, ',');
        vg_strbuf_json_string(sb, paths[i].text, strlen(paths[i].text));
        vg_strbuf_putc(sb, ':');
        vg_strbuf_json_string(sb, p, (size_t)(e - p));
        p = e < end ? e + 1 : end;
    }
    vg_strbuf_putc(sb, '}');
}

static void put_time(vg_strbuf_t *sb, const char *name, int64_t ms)
{
    char ts[64];
    if (ms == NO_TIME) {
        vg_strbuf_printf(sb, ",\"%s\":null", name);
        return;
    }
    rfc3339(ts, sizeof(ts), ms);
    vg_strbuf_printf(sb, ",\"%s\":\"%s\"", name, ts);
}

static void put_state(vg_strbuf_t *sb, const rstate_t *r, const cand_t *c, uint64_t suppressed)
{
    vg_strbuf_printf(sb, "\"state\":{\"kind\":\"%s\",\"group\":", KIND_NAMES[c->kind]);
    put_group(sb, c->key, c->klen, c->paths, c->npaths);
    vg_strbuf_printf(sb, ",\"count\":%llu", (unsigned long long)c->count);
    put_time(sb, "window_start", c->wstart);
    put_time(sb, "window_end", c->wend);
    if (c->kind == T_FIRST_SEEN) {
        vg_strbuf_puts(sb, ",\"field\":");
        vg_strbuf_json_string(sb, r->cfg->field.text, strlen(r->cfg->field.text));
        vg_strbuf_puts(sb, ",\"value\":");
        vg_strbuf_json_string(sb, c->value, c->vlen);
    }
    if (c->kind == T_SPIKE)
        vg_strbuf_printf(sb, ",\"baseline\":%.6g,\"factor\":%.6g", c->baseline, r->cfg->factor);
    if (c->kind == T_ABSENCE)
        put_time(sb, "last_seen", c->wstart);
    if (r->cfg->out == VG_OUT_THROTTLE)
        vg_strbuf_printf(sb, ",\"suppressed\":%llu", (unsigned long long)suppressed);
    if (c->kind == T_DIGEST) {
        const entry_t *d = c->digest;
        vg_strbuf_printf(sb, ",\"partial\":%s,\"items_dropped\":%llu,\"items\":[",
                         c->partial ? "true" : "false",
                         (unsigned long long)(d->n > d->nitems ? d->n - d->nitems : 0));
        for (uint32_t i = 0; i < d->nitems; i++) {
            if (i)
                vg_strbuf_putc(sb, ',');
            vg_strbuf_puts(sb, d->items[i]);
        }
        vg_strbuf_putc(sb, ']');
    }
    vg_strbuf_putc(sb, '}');
}

/* The Kafka key: the group values joined by ',' (the rule id without
 * group_by). */
static void put_key(vg_strbuf_t *sb, const rstate_t *r, const cand_t *c)
{
    if (c->npaths == 0) {
        vg_strbuf_puts(sb, vg_rule_id(r->rule));
        return;
    }
    for (size_t i = 0; i < c->klen; i++)
        vg_strbuf_putc(sb, c->key[i] == SEP_GROUP ? ',' : c->key[i]);
}

/* Ids: rule, ruleset, kind, key and window, plus the source of the
 * triggering event when there is one; the same input gives the same ids. */
static void state_id(const vg_state_t *st, const rstate_t *r, const cand_t *c,
                     const vg_alert_source_t *src, char out[33])
{
    vg_strbuf_t sb;
    vg_strbuf_init(&sb);
    vg_strbuf_printf(&sb, "%s%c%s%c%lld%c", vg_rule_id(r->rule), 0, KIND_NAMES[c->kind], 0,
                     (long long)c->wstart, 0);
    vg_strbuf_append(&sb, c->key, c->klen);
    if (c->value) {
        vg_strbuf_putc(&sb, SEP_VALUE);
        vg_strbuf_append(&sb, c->value, c->vlen);
    }
    /* vg_alert_id hashes strings up to their NUL: spell the parts out. */
    for (size_t i = 0; i < sb.len; i++)
        if (sb.buf[i] == '\0')
            sb.buf[i] = '\x01';
    vg_alert_source_t none = {.file = "", .line = 0, .timestamp_ms = -1};
    vg_alert_id(sb.buf ? sb.buf : vg_rule_id(r->rule), vg_ruleset_hash(st->rs), src ? src : &none, out);
    vg_strbuf_free(&sb);
}

/* A summary for alerts that have no event (absence, digest): the rule's
 * template with {path} replaced by the group value of that path. */
static void put_summary(vg_strbuf_t *sb, const rstate_t *r, const cand_t *c)
{
    const char *tmpl = vg_rule_summary(r->rule) ? vg_rule_summary(r->rule) : vg_rule_title(r->rule);
    vg_strbuf_t out;
    vg_strbuf_init(&out);
    for (const char *p = tmpl; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            vg_strbuf_putc(&out, *p);
            p += 2;
        } else if (p[0] == '{' && strchr(p, '}')) {
            const char *e = strchr(p, '}');
            size_t pl = (size_t)(e - p - 1);
            const char *k = c->key, *kend = c->key + c->klen;
            for (size_t i = 0; i < c->npaths; i++) {
                const char *ke = memchr(k, SEP_GROUP, (size_t)(kend - k));
                if (!ke || i + 1 == c->npaths)
                    ke = kend;
                if (strlen(c->paths[i].text) == pl && memcmp(c->paths[i].text, p + 1, pl) == 0)
                    vg_strbuf_append(&out, k, (size_t)(ke - k));
                k = ke < kend ? ke + 1 : kend;
            }
            p = e + 1;
        } else {
            vg_strbuf_putc(&out, *p++);
        }
    }
    vg_strbuf_json_string(sb, out.buf ? out.buf : "", out.len);
    vg_strbuf_free(&out);
}

static void emit_json(emitter_t *em, const rstate_t *r, const cand_t *c)
{
    vg_state_t *st = em->st;
    vg_strbuf_t key;
    vg_strbuf_init(&key);
    put_key(&key, r, c);
    if (vg_strbuf_failed(&st->sb) || vg_strbuf_failed(&key)) {
        em->failed = true;
        em->why = "out of memory rendering a stateful alert";
    } else {
        /* An empty key (a group value that folds to nothing, like "\u0000")
         * leaves key.buf NULL; the contract and the producer want "". */
        vg_state_alert_t a = {r->rule, st->sb.buf, st->sb.len, key.buf ? key.buf : ""};
        if (em->fn && em->fn(em->ctx, &a) != 0) {
            em->failed = true;
            em->why = "the alert could not be delivered";
        }
        em->count++;
        ((rstate_t *)r)->stats.alerts++;
    }
    vg_strbuf_free(&key);
}

/* An alert about the event being processed: the ordinary alert of the
 * rule (evidence, summary, event) with a deterministic id and a "state"
 * object. */
static void emit_event_alert(emitter_t *em, rstate_t *r, const cand_t *c, uint64_t suppressed)
{
    vg_state_t *st = em->st;
    size_t len;
    char *base = vg_alert_render(em->sc, em->ev, em->match_idx, em->src, r->time_field, &len);
    static const char prefix[] = "{\"alert_id\":\"";
    const size_t idend = sizeof(prefix) - 1 + 32;
    if (!base || len <= idend + 1 || memcmp(base, prefix, sizeof(prefix) - 1) != 0 ||
        base[idend] != '"') {
        free(base);
        em->failed = true;
        em->why = "cannot render a stateful alert";
        return;
    }
    char id[33];
    state_id(st, r, c, em->src, id);
    vg_strbuf_reset(&st->sb);
    vg_strbuf_printf(&st->sb, "%s%s\",", prefix, id);
    put_state(&st->sb, r, c, suppressed);
    vg_strbuf_append(&st->sb, base + idend + 1, len - idend - 1);
    free(base);
    emit_json(em, r, c);
}

/* An alert that no single event caused (absence, digest). */
static void emit_timer_alert(emitter_t *em, rstate_t *r, const cand_t *c)
{
    vg_state_t *st = em->st;
    const vg_rule_t *rule = r->rule;
    char id[33];
    state_id(st, r, c, NULL, id);
    vg_strbuf_t *sb = &st->sb;
    vg_strbuf_reset(sb);
    vg_strbuf_printf(sb, "{\"alert_id\":\"%s\",", id);
    put_state(sb, r, c, 0);
    vg_strbuf_puts(sb, ",\"rule\":");
    vg_strbuf_json_string(sb, vg_rule_id(rule), strlen(vg_rule_id(rule)));
    vg_strbuf_puts(sb, ",\"title\":");
    vg_strbuf_json_string(sb, vg_rule_title(rule), strlen(vg_rule_title(rule)));
    vg_strbuf_printf(sb, ",\"severity\":\"%s\",\"tags\":[", vg_rule_severity(rule));
    for (size_t t = 0; t < vg_rule_tag_count(rule); t++) {
        if (t)
            vg_strbuf_putc(sb, ',');
        vg_strbuf_json_string(sb, vg_rule_tag(rule, t), strlen(vg_rule_tag(rule, t)));
    }
    vg_strbuf_puts(sb, "],\"summary\":");
    put_summary(sb, r, c);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    put_time(sb, "time", (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    put_time(sb, "event_time", c->wend);
    vg_strbuf_puts(sb, ",\"matches\":[],\"source\":");
    const vg_alert_source_t *src = em->src;
    if (src && src->topic) {
        vg_strbuf_puts(sb, "{\"topic\":");
        vg_strbuf_json_string(sb, src->topic, strlen(src->topic));
        vg_strbuf_printf(sb, ",\"partition\":%d,\"offset\":%lld}", (int)src->partition,
                         (long long)src->offset);
    } else if (src && src->file) {
        vg_strbuf_puts(sb, "{\"file\":");
        vg_strbuf_json_string(sb, src->file, strlen(src->file));
        vg_strbuf_printf(sb, ",\"line\":%llu}", (unsigned long long)src->line);
    } else {
        vg_strbuf_puts(sb, "null");
    }
    vg_strbuf_printf(sb, ",\"ruleset\":\"%s\",\"event\":null}", vg_ruleset_hash(st->rs));
    emit_json(em, r, c);
}

/* ---- the output stage: each, throttle, digest ---- */

static char *digest_item(emitter_t *em, const rstate_t *r, int64_t t)
{
    vg_strbuf_t sb;
    vg_strbuf_init(&sb);
    vg_strbuf_puts(&sb, "{\"source\":");
    const vg_alert_source_t *src = em->src;
    if (src && src->topic) {
        vg_strbuf_puts(&sb, "{\"topic\":");
        vg_strbuf_json_string(&sb, src->topic, strlen(src->topic));
        vg_strbuf_printf(&sb, ",\"partition\":%d,\"offset\":%lld}", (int)src->partition,
                         (long long)src->offset);
    } else {
        const char *f = src && src->file ? src->file : "-";
        vg_strbuf_puts(&sb, "{\"file\":");
        vg_strbuf_json_string(&sb, f, strlen(f));
        vg_strbuf_printf(&sb, ",\"line\":%llu}", src ? (unsigned long long)src->line : 0ULL);
    }
    put_time(&sb, "event_time", t);
    /* What identifies an event to a reader: its id and title, when it has them. */
    static const char *const fields[] = {"id", "title"};
    json_object *root = vg_event_json(em->ev);
    for (size_t i = 0; i < 2; i++) {
        json_object *v;
        if (json_object_object_get_ex(root, fields[i], &v) &&
            json_object_is_type(v, json_type_string)) {
            size_t n = (size_t)json_object_get_string_len(v);
            vg_strbuf_printf(&sb, ",\"%s\":", fields[i]);
            vg_strbuf_json_string(&sb, json_object_get_string(v), n > 200 ? 200 : n);
        }
    }
    (void)r;
    vg_strbuf_putc(&sb, '}');
    if (vg_strbuf_failed(&sb)) {
        vg_strbuf_free(&sb);
        return NULL;
    }
    return vg_strbuf_detach(&sb, NULL);
}

static void fire_digest(emitter_t *em, rstate_t *r, entry_t *e, bool partial)
{
    const char *sep = memchr(e->key, SEP_WINDOW, e->klen);
    cand_t c = {.kind = T_DIGEST, .key = e->key, .klen = sep ? (size_t)(sep - e->key) : e->klen,
                .paths = r->out_group, .npaths = r->nout_group, .count = e->n,
                .wstart = e->a, .wend = e->a + r->cfg->out_window_ms, .partial = partial,
                .digest = e};
    emit_timer_alert(em, r, &c);
}

/* Passes a candidate alert through throttle/digest (or straight out). t is
 * the event time of the event that caused it. */
static void output(emitter_t *em, rstate_t *r, const cand_t *c, int64_t t)
{
    if (!r->has_out) {
        emit_event_alert(em, r, c, 0);
        return;
    }
    table_t *tb = &r->out;
    int64_t w = r->cfg->out_window_ms;
    if (tb->kind == T_THROTTLE) {
        uint64_t h = vg_state_key_hash(c->key, c->klen);
        entry_t *e = vg_state_table_get(tb, c->key, c->klen, h);
        if (e && t < e->a && t >= e->b) {
            e->n++;
            r->stats.suppressed++;
            heap_remove(tb, e); /* keep it until the next alert carries the count */
            table_touch(r, tb, e);
            return;
        }
        uint64_t suppressed = e ? e->n : 0;
        if (!e && !(e = vg_state_table_add(tb, c->key, c->klen, h, &r->stats.evicted))) {
            em->failed = true;
            em->why = "out of memory";
            return;
        }
        emit_event_alert(em, r, c, suppressed);
        e->b = t;
        e->a = t + w;
        e->n = 0;
        e->deadline = e->a;
        table_touch(r, tb, e);
        if (!vg_state_heap_put(tb, e))
            em->failed = true, em->why = "out of memory";
        return;
    }
    /* digest */
    int64_t ws = floor_div(t, w) * w;
    char kbuf[64];
    int kl = snprintf(kbuf, sizeof(kbuf), "%c%lld", SEP_WINDOW, (long long)ws);
    vg_strbuf_t k;
    vg_strbuf_init(&k);
    vg_strbuf_append(&k, c->key, c->klen);
    vg_strbuf_append(&k, kbuf, (size_t)kl);
    if (vg_strbuf_failed(&k)) {
        em->failed = true;
        em->why = "out of memory";
        return;
    }
    uint64_t h = vg_state_key_hash(k.buf, k.len);
    entry_t *e = vg_state_table_get(tb, k.buf, k.len, h);
    if (!e) {
        e = vg_state_table_add(tb, k.buf, k.len, h, &r->stats.evicted);
        if (e) {
            e->a = ws;
            e->deadline = ws + w;
        }
    }
    vg_strbuf_free(&k);
    if (!e) {
        em->failed = true;
        em->why = "out of memory";
        return;
    }
    e->n++;
    if (e->nitems < r->cfg->digest_max_items) {
        char **ni = realloc(e->items, (e->nitems + 1) * sizeof(char *));
        char *item = ni ? digest_item(em, r, t) : NULL;
        if (ni)
            e->items = ni;
        if (!item) {
            em->failed = true;
            em->why = "out of memory";
            return;
        }
        e->items[e->nitems++] = item;
    }
    table_touch(r, tb, e);
    if (!vg_state_heap_put(tb, e))
        em->failed = true, em->why = "out of memory";
}

/* ---- expiry ---- */

static void expire(emitter_t *em, rstate_t *r, table_t *t, int64_t wm)
{
    while (t->nheap && t->heap[0]->deadline <= wm && !em->failed) {
        entry_t *e = t->heap[0];
        heap_remove(t, e);
        if (t->kind == T_ABSENCE) {
            cand_t c = {.kind = T_ABSENCE, .key = e->key, .klen = e->klen,
                        .paths = r->cfg->group, .npaths = r->cfg->ngroup, .count = 0,
                        .wstart = e->a, .wend = e->a + r->cfg->window_ms};
            emit_timer_alert(em, r, &c);
        } else if (t->kind == T_DIGEST) {
            fire_digest(em, r, e, false);
        }
        table_drop(t, e);
    }
}

static void advance(emitter_t *em, rstate_t *r, int64_t t)
{
    if (r->clock != NO_TIME && t <= r->clock)
        return;
    r->clock = t;
    int64_t wm = t - r->cfg->lateness_ms;
    if (r->has_agg)
        expire(em, r, &r->agg, wm);
    if (r->has_out)
        expire(em, r, &r->out, wm);
}

/* ---- the aggregations ---- */

static entry_t *get_or_add(emitter_t *em, rstate_t *r, const char *key, size_t len, bool *fresh)
{
    uint64_t h = vg_state_key_hash(key, len);
    entry_t *e = vg_state_table_get(&r->agg, key, len, h);
    *fresh = e == NULL;
    if (!e && !(e = vg_state_table_add(&r->agg, key, len, h, &r->stats.evicted))) {
        em->failed = true;
        em->why = "out of memory";
    }
    return e;
}

static void apply_threshold(emitter_t *em, rstate_t *r, const char *key, size_t klen, int64_t t)
{
    const vg_rule_state_t *cfg = r->cfg;
    bool fresh;
    entry_t *e = get_or_add(em, r, key, klen, &fresh);
    if (!e)
        return;
    /* Times at or before watermark - window can no longer be within a
     * window of any event still to come. */
    int64_t wm = r->clock - cfg->lateness_ms;
    uint32_t keep = 0;
    while (keep < e->nts && e->ts[keep] <= wm - cfg->window_ms)
        keep++;
    if (keep) {
        memmove(e->ts, e->ts + keep, (e->nts - keep) * sizeof(int64_t));
        e->nts -= keep;
    }
    if (e->nts == e->cts) {
        uint32_t cap = e->cts ? e->cts * 2 : 4;
        int64_t *n = realloc(e->ts, cap * sizeof(int64_t));
        if (!n) {
            em->failed = true;
            em->why = "out of memory";
            return;
        }
        e->ts = n;
        e->cts = cap;
    }
    uint32_t i = e->nts;
    while (i > 0 && e->ts[i - 1] > t)
        i--;
    memmove(e->ts + i + 1, e->ts + i, (e->nts - i) * sizeof(int64_t));
    e->ts[i] = t;
    e->nts++;
    uint32_t n = cfg->count;
    for (uint32_t s = i + 1 >= n ? i + 1 - n : 0; s <= i && s + n <= e->nts; s++) {
        if (e->ts[s + n - 1] - e->ts[s] < cfg->window_ms) {
            cand_t c = {.kind = T_THRESHOLD, .key = key, .klen = klen, .paths = cfg->group,
                        .npaths = cfg->ngroup, .count = n, .t = t, .wstart = e->ts[s],
                        .wend = e->ts[s + n - 1]};
            /* The events that fired are used up: counting starts again. */
            table_drop(&r->agg, e);
            output(em, r, &c, t);
            return;
        }
    }
    e->deadline = e->ts[e->nts - 1] + cfg->window_ms;
    table_touch(r, &r->agg, e);
    if (!vg_state_heap_put(&r->agg, e))
        em->failed = true, em->why = "out of memory";
}

static void apply_spike(emitter_t *em, rstate_t *r, const char *key, size_t klen, int64_t t)
{
    const vg_rule_state_t *cfg = r->cfg;
    bool fresh;
    entry_t *e = get_or_add(em, r, key, klen, &fresh);
    if (!e)
        return;
    uint32_t ring = cfg->baseline + 1;
    int64_t w = floor_div(t, cfg->window_ms);
    if (!e->ts) {
        e->ts = calloc(ring, sizeof(int64_t));
        if (!e->ts) {
            table_drop(&r->agg, e);
            em->failed = true;
            em->why = "out of memory";
            return;
        }
        e->nts = e->cts = ring;
        e->a = w;
    }
    if (w > e->a) {
        int64_t d = w - e->a;
        if (d >= ring) {
            memset(e->ts, 0, ring * sizeof(int64_t));
            e->n = 0;
        } else {
            memmove(e->ts + d, e->ts, (ring - (size_t)d) * sizeof(int64_t));
            memset(e->ts, 0, (size_t)d * sizeof(int64_t));
            e->n <<= d;
        }
        e->a = w;
    }
    int64_t j = e->a - w;
    if (j < ring) {
        e->ts[j]++;
        double base = 0;
        for (int64_t k = j + 1; k < ring; k++)
            base += (double)e->ts[k];
        base /= cfg->baseline;
        uint64_t bit = UINT64_C(1) << j;
        if (!(e->n & bit) && (uint64_t)e->ts[j] >= cfg->min_count &&
            (double)e->ts[j] >= cfg->factor * base) {
            e->n |= bit;
            cand_t c = {.kind = T_SPIKE, .key = key, .klen = klen, .paths = cfg->group,
                        .npaths = cfg->ngroup, .count = (uint64_t)e->ts[j], .t = t,
                        .wstart = w * cfg->window_ms, .wend = (w + 1) * cfg->window_ms,
                        .baseline = base};
            output(em, r, &c, t);
        }
    }
    e->deadline = (e->a + ring) * cfg->window_ms;
    table_touch(r, &r->agg, e);
    if (!vg_state_heap_put(&r->agg, e))
        em->failed = true, em->why = "out of memory";
}

static void apply_first_seen(emitter_t *em, rstate_t *r, const char *key, size_t klen,
                             int64_t t, const char *values, size_t nvalues)
{
    const vg_rule_state_t *cfg = r->cfg;
    vg_strbuf_t k;
    vg_strbuf_init(&k);
    const char *v = values;
    for (size_t i = 0; i < nvalues && !em->failed; i++, v += strlen(v) + 1) {
        size_t vl = strlen(v);
        vg_strbuf_reset(&k);
        vg_strbuf_append(&k, key, klen);
        vg_strbuf_putc(&k, SEP_VALUE);
        vg_strbuf_append(&k, v, vl);
        if (vg_strbuf_failed(&k)) {
            em->failed = true;
            em->why = "out of memory";
            break;
        }
        bool fresh;
        entry_t *e = get_or_add(em, r, k.buf, k.len, &fresh);
        if (!e)
            break;
        bool is_new = fresh || t - e->a >= cfg->window_ms;
        if (fresh || t > e->a)
            e->a = t;
        e->deadline = e->a + cfg->window_ms;
        table_touch(r, &r->agg, e);
        if (!vg_state_heap_put(&r->agg, e)) {
            em->failed = true;
            em->why = "out of memory";
            break;
        }
        if (is_new) {
            cand_t c = {.kind = T_FIRST_SEEN, .key = key, .klen = klen, .paths = cfg->group,
                        .npaths = cfg->ngroup, .count = 1, .t = t, .wstart = NO_TIME,
                        .wend = NO_TIME, .value = v, .vlen = vl};
            output(em, r, &c, t);
        }
    }
    vg_strbuf_free(&k);
}

static void apply_absence(emitter_t *em, rstate_t *r, const char *key, size_t klen, int64_t t)
{
    bool fresh;
    entry_t *e = get_or_add(em, r, key, klen, &fresh);
    if (!e)
        return;
    if (fresh || t > e->a)
        e->a = t;
    e->deadline = e->a + r->cfg->window_ms;
    table_touch(r, &r->agg, e);
    if (!vg_state_heap_put(&r->agg, e))
        em->failed = true, em->why = "out of memory";
}

/* ---- processing ---- */

static int finish(emitter_t *em, char *err, size_t err_size)
{
    if (em->failed) {
        snprintf(err, err_size, "%s", em->why ? em->why : "stateful evaluation failed");
        return -1;
    }
    return em->count;
}

int vg_state_process(vg_state_t *st, vg_scanner_t *sc, const vg_event_t *ev,
                     const vg_alert_source_t *src, vg_state_emit_fn emit, void *ctx, char *err,
                     size_t err_size)
{
    emitter_t em = {.st = st, .sc = sc, .ev = ev, .src = src, .fn = emit, .ctx = ctx};
    st->events++;
    if (st->nrules == 0)
        return 0;
    int nm = st->only ? vg_scanner_eval_rule(sc, ev, st->only, err, err_size)
                      : vg_scanner_eval_stateful(sc, ev, err, err_size);
    if (nm < 0)
        return -1;
    json_object *root = vg_event_json(ev);
    keyset_t ks;
    vg_strbuf_init(&ks.buf);
    ks.dropped = 0;
    vg_strbuf_t vals;
    vg_strbuf_init(&vals);
    for (size_t i = 0; i < st->nrules && !em.failed; i++) {
        rstate_t *r = &st->rules[i];
        r->stats.events++;
        int64_t t = event_time(st, r, ev, src);
        if (t == NO_TIME) {
            if (r->clock == NO_TIME) {
                r->stats.untimed++;
                continue;
            }
            t = r->clock; /* no time of its own: it happened "now" */
        } else if (r->clock != NO_TIME && t < r->clock - r->cfg->lateness_ms) {
            r->stats.late++;
            continue;
        }
        advance(&em, r, t);
        int mi = -1;
        for (int k = 0; k < nm; k++)
            if (vg_scanner_match(sc, (size_t)k) == r->rule)
                mi = k;
        if (mi < 0 || em.failed)
            continue;
        em.match_idx = (size_t)mi;
        const vg_path_t *paths = r->has_agg ? r->cfg->group : r->out_group;
        size_t np = r->has_agg ? r->cfg->ngroup : r->nout_group;
        ks.dropped = 0;
        if (!group_keys(st, root, paths, np, &ks)) {
            em.failed = true;
            em.why = "out of memory";
            break;
        }
        r->stats.keys_dropped += ks.dropped;
        size_t nvals = 0;
        if (r->has_agg && r->cfg->kind == VG_AGG_FIRST_SEEN) {
            vg_strbuf_reset(&vals);
            nvals = collect_values(st, root, &r->cfg->field, 0, &vals, 0, 0);
            if (nvals == 0)
                continue;
        }
        for (size_t k = 0; k < ks.n && !em.failed; k++) {
            const char *key = ks.buf.buf + ks.off[k];
            size_t klen = ks.len[k];
            if (!r->has_agg) {
                cand_t c = {.kind = r->out.kind, .key = key, .klen = klen, .paths = paths,
                            .npaths = np, .count = 1, .t = t, .wstart = NO_TIME,
                            .wend = NO_TIME};
                output(&em, r, &c, t);
                continue;
            }
            switch (r->cfg->kind) {
            case VG_AGG_THRESHOLD: apply_threshold(&em, r, key, klen, t); break;
            case VG_AGG_SPIKE: apply_spike(&em, r, key, klen, t); break;
            case VG_AGG_FIRST_SEEN:
                apply_first_seen(&em, r, key, klen, t, vals.buf, nvals);
                break;
            case VG_AGG_ABSENCE: apply_absence(&em, r, key, klen, t); break;
            default: break;
            }
        }
    }
    vg_strbuf_free(&ks.buf);
    vg_strbuf_free(&vals);
    return finish(&em, err, err_size);
}

int vg_state_advance(vg_state_t *st, int64_t time_ms, vg_state_emit_fn emit, void *ctx,
                     char *err, size_t err_size)
{
    emitter_t em = {.st = st, .fn = emit, .ctx = ctx};
    for (size_t i = 0; i < st->nrules && !em.failed; i++)
        advance(&em, &st->rules[i], time_ms);
    return finish(&em, err, err_size);
}

int vg_state_flush(vg_state_t *st, vg_state_emit_fn emit, void *ctx, char *err,
                   size_t err_size)
{
    emitter_t em = {.st = st, .fn = emit, .ctx = ctx};
    for (size_t i = 0; i < st->nrules && !em.failed; i++) {
        rstate_t *r = &st->rules[i];
        if (!r->has_out || r->out.kind != T_DIGEST)
            continue;
        while (r->out.nheap && !em.failed) {
            entry_t *e = r->out.heap[0];
            fire_digest(&em, r, e, true);
            table_drop(&r->out, e);
        }
    }
    return finish(&em, err, err_size);
}

/* ---- statistics ---- */

static void add_stats(vg_state_stats_t *to, const vg_state_stats_t *s)
{
    to->late += s->late;
    to->untimed += s->untimed;
    to->evicted += s->evicted;
    to->keys_dropped += s->keys_dropped;
    to->alerts += s->alerts;
    to->suppressed += s->suppressed;
}

void vg_state_stats(const vg_state_t *st, vg_state_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->events = st->events;
    for (size_t i = 0; i < st->nrules; i++) {
        add_stats(out, &st->rules[i].stats);
        out->keys += st->rules[i].agg.count + st->rules[i].out.count;
    }
}

bool vg_state_rule_stats(const vg_state_t *st, const vg_rule_t *rule, vg_state_stats_t *out)
{
    for (size_t i = 0; i < st->nrules; i++)
        if (st->rules[i].rule == rule) {
            *out = st->rules[i].stats;
            out->keys = st->rules[i].agg.count + st->rules[i].out.count;
            return true;
        }
    return false;
}

size_t vg_state_rule_count(const vg_state_t *st) { return st->nrules; }
const vg_rule_t *vg_state_rule(const vg_state_t *st, size_t i) { return st->rules[i].rule; }
