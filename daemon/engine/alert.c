/* Alert rendering. The event is embedded as its original bytes (a valid
 * JSON object: raw CR/LF can only be white space between tokens, so they
 * are turned into spaces to keep one alert per line). */
#include "vigil/alert.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "hash.h"
#include "path.h"
#include "strbuf.h"
#include "timefmt.h"

#define SUMMARY_MAX 1024
#define SNIPPET_CONTEXT 40

void vg_alert_id(const char *rule_id, const char *ruleset_hash, const vg_alert_source_t *src,
                 char out[33])
{
    char loc[64];
    uint64_t h1 = UINT64_C(0x9e3779b97f4a7c15), h2 = UINT64_C(0xc2b2ae3d27d4eb4f);
    const char *parts[4];
    size_t np = 0;
    parts[np++] = rule_id;
    parts[np++] = ruleset_hash;
    if (src->topic) {
        parts[np++] = src->topic;
        snprintf(loc, sizeof(loc), "%d/%lld", (int)src->partition, (long long)src->offset);
    } else {
        parts[np++] = src->file ? src->file : "";
        snprintf(loc, sizeof(loc), "%llu", (unsigned long long)src->line);
    }
    parts[np++] = loc;
    for (size_t i = 0; i < np; i++) {
        /* Include the terminating NUL so that ("ab","c") != ("a","bc"). */
        h1 = vg_hash64(h1, parts[i], strlen(parts[i]) + 1);
        h2 = vg_hash64(h2 ^ h1, parts[i], strlen(parts[i]) + 1);
    }
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)vg_hash_finish(h1),
             (unsigned long long)vg_hash_finish(h2 + h1));
}

/* Appends the text of every value at path (arrays joined with ", "). */
typedef struct path_text {
    vg_strbuf_t *sb;
    bool first;
} path_text_t;

static bool append_leaf_text(json_object *o, void *arg)
{
    path_text_t *pt = arg;
    if (!o)
        return false; /* a null has no text */
    if (!pt->first)
        vg_strbuf_puts(pt->sb, ", ");
    pt->first = false;
    if (json_object_is_type(o, json_type_string))
        vg_strbuf_append(pt->sb, json_object_get_string(o), (size_t)json_object_get_string_len(o));
    else
        vg_strbuf_puts(pt->sb, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    return false;
}

/* A path of an alert template or of the time field. An empty last key
 * (from "" or a trailing dot) is not looked up: "{}" stands for the whole
 * event and "{a.}" for a, as they always have. */
static bool alert_path(vg_path_t *p, const char *text, size_t len)
{
    if (!vg_path_init(p, text, len))
        return false;
    if (p->nparts && !p->parts[p->nparts - 1][0])
        free(p->parts[--p->nparts]);
    return true;
}

/* Expands {path} placeholders; "{{" and "}}" are literal braces. */
static void render_summary(vg_strbuf_t *out, const char *tmpl, json_object *root)
{
    vg_strbuf_t sb;
    vg_strbuf_init(&sb);
    for (const char *p = tmpl; *p;) {
        if (p[0] == '{' && p[1] == '{') {
            vg_strbuf_putc(&sb, '{');
            p += 2;
        } else if (p[0] == '}' && p[1] == '}') {
            vg_strbuf_putc(&sb, '}');
            p += 2;
        } else if (p[0] == '{' && strchr(p, '}')) {
            const char *e = strchr(p, '}');
            vg_path_t path;
            path_text_t pt = {&sb, true};
            if (!alert_path(&path, p + 1, (size_t)(e - p - 1)))
                sb.failed = true;
            else if (root)
                vg_json_walk(root, path.parts, path.nparts, append_leaf_text, &pt);
            vg_path_free(&path);
            p = e + 1;
        } else {
            vg_strbuf_putc(&sb, *p++);
        }
    }
    size_t n = sb.len;
    if (n > SUMMARY_MAX) {
        n = SUMMARY_MAX;
        while (n > 0 && ((unsigned char)sb.buf[n] & 0xC0) == 0x80)
            n--; /* do not cut a UTF-8 sequence */
    }
    if (sb.failed)
        out->failed = true;
    vg_strbuf_json_string(out, sb.buf ? sb.buf : "", n);
    vg_strbuf_free(&sb);
}

static void snippet(vg_strbuf_t *sb, const vg_evidence_t *h)
{
    size_t s = h->offset > SNIPPET_CONTEXT ? h->offset - SNIPPET_CONTEXT : 0;
    size_t e = h->offset + h->length + SNIPPET_CONTEXT;
    if (e > h->value_len)
        e = h->value_len;
    while (s > 0 && ((unsigned char)h->value[s] & 0xC0) == 0x80)
        s--;
    while (e < h->value_len && ((unsigned char)h->value[e] & 0xC0) == 0x80)
        e++;
    vg_strbuf_json_string(sb, h->value + s, e - s);
}

static void put_time(vg_strbuf_t *sb, int64_t ms)
{
    char ts[VG_TIME_TEXT_MAX];
    vg_strbuf_printf(sb, "\"%s\"", vg_time_format_ms(ts, sizeof(ts), ms));
}

/* "event_time": the explicit one of the options, else the event's time
 * field, else the Kafka timestamp, else null. */
static void put_event_time(vg_strbuf_t *sb, json_object *root, const vg_alert_source_t *src,
                           const vg_alert_options_t *o)
{
    vg_strbuf_puts(sb, ",\"event_time\":");
    if (o->event_time_set) {
        if (o->event_time_ms == INT64_MIN)
            vg_strbuf_puts(sb, "null");
        else
            put_time(sb, o->event_time_ms);
        return;
    }
    json_object *tv = NULL;
    if (root && o->time_field && *o->time_field) {
        vg_path_t tp;
        if (alert_path(&tp, o->time_field, strlen(o->time_field)))
            tv = vg_json_lookup(root, &tp, VG_LOOKUP_OBJECTS);
        else
            sb->failed = true;
        vg_path_free(&tp);
    }
    if (tv && (json_object_is_type(tv, json_type_string) || json_object_is_type(tv, json_type_int) ||
               json_object_is_type(tv, json_type_double))) {
        if (json_object_is_type(tv, json_type_string))
            vg_strbuf_json_string(sb, json_object_get_string(tv),
                                  (size_t)json_object_get_string_len(tv));
        else
            vg_strbuf_puts(sb, json_object_to_json_string_ext(tv, JSON_C_TO_STRING_PLAIN));
    } else if (src && src->topic && src->timestamp_ms >= 0) {
        put_time(sb, src->timestamp_ms);
    } else {
        vg_strbuf_puts(sb, "null");
    }
}

static void put_matches(vg_strbuf_t *sb, const vg_rule_match_t *m, size_t max_matches)
{
    size_t nh = m->nevidence, omitted = 0;
    if (max_matches && nh > max_matches) {
        omitted = nh - max_matches;
        nh = max_matches;
    }
    vg_strbuf_puts(sb, ",\"matches\":[");
    for (size_t k = 0; k < nh; k++) {
        const vg_evidence_t *h = &m->evidence[k];
        if (k)
            vg_strbuf_putc(sb, ',');
        vg_strbuf_puts(sb, "{\"field\":");
        vg_strbuf_json_string(sb, h->field, strlen(h->field));
        vg_strbuf_puts(sb, ",\"term\":");
        vg_strbuf_json_string(sb, h->term, strlen(h->term));
        vg_strbuf_puts(sb, ",\"list\":");
        if (h->list)
            vg_strbuf_json_string(sb, h->list, strlen(h->list));
        else
            vg_strbuf_puts(sb, "null");
        if (h->entity) {
            vg_strbuf_puts(sb, ",\"entity\":");
            vg_strbuf_json_string(sb, h->entity, strlen(h->entity));
        }
        vg_strbuf_printf(sb, ",\"offset\":%zu,\"length\":%zu,\"snippet\":", h->offset, h->length);
        snippet(sb, h);
        vg_strbuf_putc(sb, '}');
    }
    vg_strbuf_putc(sb, ']');
    if (omitted)
        vg_strbuf_printf(sb, ",\"matches_omitted\":%zu", omitted);
}

static void put_source(vg_strbuf_t *sb, const vg_alert_source_t *src)
{
    vg_strbuf_puts(sb, ",\"source\":");
    if (!src) {
        vg_strbuf_puts(sb, "null");
    } else if (src->topic) {
        vg_strbuf_puts(sb, "{\"topic\":");
        vg_strbuf_json_string(sb, src->topic, strlen(src->topic));
        vg_strbuf_printf(sb, ",\"partition\":%d,\"offset\":%lld}", (int)src->partition,
                         (long long)src->offset);
    } else {
        vg_strbuf_puts(sb, "{\"file\":");
        const char *f = src->file ? src->file : "-";
        vg_strbuf_json_string(sb, f, strlen(f));
        vg_strbuf_printf(sb, ",\"line\":%llu}", (unsigned long long)src->line);
    }
}

/* An event that is JSON but not I-JSON, written from its decoded tree
 * (what the rules saw), so that strict consumers can read the alert: a
 * lone surrogate is U+FFFD, a repeated key one member holding the last
 * value (at the first one's place), and a number beyond the range of a
 * double a string of its text ("1e999"), not a value it does not have. */
static void put_decoded(vg_strbuf_t *sb, json_object *o)
{
    bool first = true;
    switch (json_object_get_type(o)) {
    case json_type_null:
        vg_strbuf_puts(sb, "null");
        return;
    case json_type_string:
        vg_strbuf_json_string(sb, json_object_get_string(o), (size_t)json_object_get_string_len(o));
        return;
    case json_type_object:
        vg_strbuf_putc(sb, '{');
        json_object_object_foreach(o, k, v)
        {
            if (!first)
                vg_strbuf_putc(sb, ',');
            first = false;
            vg_strbuf_json_string(sb, k, strlen(k));
            vg_strbuf_putc(sb, ':');
            put_decoded(sb, v);
        }
        vg_strbuf_putc(sb, '}');
        return;
    case json_type_array:
        vg_strbuf_putc(sb, '[');
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            if (i)
                vg_strbuf_putc(sb, ',');
            put_decoded(sb, json_object_array_get_idx(o, i));
        }
        vg_strbuf_putc(sb, ']');
        return;
    default: {
        /* Numbers as written (a double keeps its text), booleans. */
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        if (json_object_is_type(o, json_type_double) && !isfinite(json_object_get_double(o)))
            vg_strbuf_json_string(sb, t, strlen(t));
        else
            vg_strbuf_puts(sb, t);
    }
    }
}

/* The event as its original bytes, trimmed of surrounding white space,
 * line breaks flattened; decoded when they are not I-JSON. */
static void put_event(vg_strbuf_t *sb, const vg_event_t *ev)
{
    vg_strbuf_puts(sb, ",\"event\":");
    if (!ev) {
        vg_strbuf_puts(sb, "null");
        return;
    }
    if (!vg_event_is_ijson(ev)) {
        put_decoded(sb, vg_event_json(ev));
        return;
    }
    size_t rawlen;
    const char *raw = vg_event_raw(ev, &rawlen);
    while (rawlen && (raw[rawlen - 1] == '\n' || raw[rawlen - 1] == '\r' ||
                      raw[rawlen - 1] == ' ' || raw[rawlen - 1] == '\t'))
        rawlen--;
    while (rawlen && (*raw == '\n' || *raw == '\r' || *raw == ' ' || *raw == '\t'))
        raw++, rawlen--;
    size_t at = sb->len;
    vg_strbuf_append(sb, raw, rawlen);
    if (!vg_strbuf_failed(sb))
        for (char *q = sb->buf + at, *e = sb->buf + sb->len; q < e; q++)
            if (*q == '\n' || *q == '\r')
                *q = ' ';
}

char *vg_alert_render(vg_scanner_t *sc, const vg_event_t *ev, size_t i,
                      const vg_alert_source_t *src, const char *time_field, size_t *len)
{
    vg_alert_options_t o = {.time_field = time_field};
    return vg_alert_render_ex(sc, ev, i, src, &o, len);
}

char *vg_alert_render_ex(vg_scanner_t *sc, const vg_event_t *ev, size_t i,
                         const vg_alert_source_t *src, const vg_alert_options_t *opts,
                         size_t *len)
{
    vg_rule_match_t m = {.rule = vg_scanner_match(sc, i)};
    if (!m.rule)
        return NULL;
    m.nevidence = vg_scanner_match_evidence(sc, i, &m.evidence);
    return vg_alert_render_match(vg_scanner_ruleset(sc), ev, &m, src, opts, len);
}

char *vg_alert_render_match(const vg_ruleset_t *rs, const vg_event_t *ev,
                            const vg_rule_match_t *m, const vg_alert_source_t *src,
                            const vg_alert_options_t *opts, size_t *len)
{
    static const vg_alert_options_t none = {0};
    if (!opts)
        opts = &none;
    const vg_rule_t *r = m->rule;
    json_object *root = ev ? vg_event_json(ev) : NULL;
    vg_strbuf_t sb;
    vg_strbuf_init(&sb);
    char id[33];
    static const vg_alert_source_t nowhere = {.file = "", .timestamp_ms = -1};
    if (!opts->alert_id)
        vg_alert_id(r->id, rs->hash, src ? src : &nowhere, id);
    vg_strbuf_printf(&sb, "{\"alert_id\":\"%s\",", opts->alert_id ? opts->alert_id : id);
    if (opts->state) {
        vg_strbuf_puts(&sb, "\"state\":");
        vg_strbuf_append(&sb, opts->state, opts->state_len);
        vg_strbuf_putc(&sb, ',');
    }
    vg_strbuf_puts(&sb, "\"rule\":");
    vg_strbuf_json_string(&sb, r->id, strlen(r->id));
    vg_strbuf_puts(&sb, ",\"title\":");
    vg_strbuf_json_string(&sb, r->title, strlen(r->title));
    vg_strbuf_printf(&sb, ",\"severity\":\"%s\",\"tags\":[", r->severity);
    for (size_t t = 0; t < r->ntags; t++) {
        if (t)
            vg_strbuf_putc(&sb, ',');
        vg_strbuf_json_string(&sb, r->tags[t], strlen(r->tags[t]));
    }
    vg_strbuf_puts(&sb, "],\"summary\":");
    if (opts->summary)
        vg_strbuf_json_string(&sb, opts->summary, opts->summary_len);
    else
        render_summary(&sb, r->summary ? r->summary : r->title, root);
    vg_strbuf_puts(&sb, ",\"time\":");
    put_time(&sb, vg_time_now_ms());
    put_event_time(&sb, root, src, opts);
    put_matches(&sb, m, opts->max_matches);
    put_source(&sb, src);
    vg_strbuf_printf(&sb, ",\"ruleset\":\"%s\"", rs->hash);
    if (!opts->omit_event)
        put_event(&sb, ev);
    vg_strbuf_putc(&sb, '}');
    if (vg_strbuf_failed(&sb)) {
        vg_strbuf_free(&sb);
        return NULL;
    }
    return vg_strbuf_detach(&sb, len);
}
