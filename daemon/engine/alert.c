/* Alert rendering. The event is embedded as its original bytes (a valid
 * JSON object: raw CR/LF can only be white space between tokens, so they
 * are turned into spaces to keep one alert per line). */
#include "vigil/alert.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_int.h"
#include "hash.h"
#include "strbuf.h"

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

static void rfc3339_ms(char *buf, size_t size, int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}

/* Appends the text of the value(s) at a dotted path, arrays joined with
 * ", ". Returns false when nothing was there. */
static bool append_path_text(vg_strbuf_t *sb, json_object *o, const char *path, size_t plen,
                             bool *first, unsigned depth)
{
    if (!o || depth > 64)
        return false;
    if (json_object_is_type(o, json_type_array)) {
        bool any = false;
        for (size_t i = 0; i < json_object_array_length(o); i++)
            any |= append_path_text(sb, json_object_array_get_idx(o, i), path, plen, first,
                                    depth + 1);
        return any;
    }
    if (plen == 0) {
        if (!*first)
            vg_strbuf_puts(sb, ", ");
        *first = false;
        if (json_object_is_type(o, json_type_string))
            vg_strbuf_append(sb, json_object_get_string(o), (size_t)json_object_get_string_len(o));
        else
            vg_strbuf_puts(sb, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        return true;
    }
    const char *dot = memchr(path, '.', plen);
    size_t kl = dot ? (size_t)(dot - path) : plen;
    char key[256];
    if (kl >= sizeof(key) || !json_object_is_type(o, json_type_object))
        return false;
    memcpy(key, path, kl);
    key[kl] = '\0';
    json_object *next;
    if (!json_object_object_get_ex(o, key, &next))
        return false;
    return append_path_text(sb, next, dot ? dot + 1 : path + plen, dot ? plen - kl - 1 : 0,
                            first, depth + 1);
}

/* The value at a dotted path of objects (no arrays), or NULL. */
static json_object *lookup_path(json_object *o, const char *path)
{
    char key[256];
    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t kl = dot ? (size_t)(dot - path) : strlen(path);
        if (kl >= sizeof(key) || !json_object_is_type(o, json_type_object))
            return NULL;
        memcpy(key, path, kl);
        key[kl] = '\0';
        if (!json_object_object_get_ex(o, key, &o))
            return NULL;
        path = dot ? dot + 1 : path + kl;
    }
    return o;
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
            bool first = true;
            append_path_text(&sb, root, p + 1, (size_t)(e - p - 1), &first, 0);
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
    vg_strbuf_json_string(out, sb.buf ? sb.buf : "", n);
    vg_strbuf_free(&sb);
}

static void snippet(vg_strbuf_t *sb, const vg_hit_t *h)
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
    static const vg_alert_options_t none = {0};
    if (!opts)
        opts = &none;
    const char *time_field = opts->time_field;
    const vg_rule_t *r = vg_scanner_match(sc, i);
    const vg_ruleset_t *rs = vg_scanner_ruleset(sc);
    if (!r)
        return NULL;
    json_object *root = vg_event_json(ev);
    vg_strbuf_t sb;
    vg_strbuf_init(&sb);
    char id[33];
    vg_alert_id(r->id, rs->hash, src, id);
    vg_strbuf_printf(&sb, "{\"alert_id\":\"%s\",\"rule\":", id);
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
    render_summary(&sb, r->summary ? r->summary : r->title, root);

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char ts[64];
    rfc3339_ms(ts, sizeof(ts), (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    vg_strbuf_printf(&sb, ",\"time\":\"%s\",\"event_time\":", ts);
    json_object *tv = time_field && *time_field ? lookup_path(root, time_field) : NULL;
    if (tv && (json_object_is_type(tv, json_type_string) || json_object_is_type(tv, json_type_int) ||
               json_object_is_type(tv, json_type_double))) {
        if (json_object_is_type(tv, json_type_string))
            vg_strbuf_json_string(&sb, json_object_get_string(tv),
                                  (size_t)json_object_get_string_len(tv));
        else
            vg_strbuf_puts(&sb, json_object_to_json_string_ext(tv, JSON_C_TO_STRING_PLAIN));
    } else if (src->topic && src->timestamp_ms >= 0) {
        rfc3339_ms(ts, sizeof(ts), src->timestamp_ms);
        vg_strbuf_printf(&sb, "\"%s\"", ts);
    } else {
        vg_strbuf_puts(&sb, "null");
    }

    vg_strbuf_puts(&sb, ",\"matches\":[");
    const vg_hit_t *const *hits;
    const char **lists;
    size_t nh = vg_scanner_evidence(sc, r, &hits, &lists), omitted = 0;
    if (opts->max_matches && nh > opts->max_matches) {
        omitted = nh - opts->max_matches;
        nh = opts->max_matches;
    }
    for (size_t k = 0; k < nh; k++) {
        const vg_hit_t *h = hits[k];
        if (k)
            vg_strbuf_putc(&sb, ',');
        vg_strbuf_puts(&sb, "{\"field\":");
        vg_strbuf_json_string(&sb, rs->slot_text[h->slot], strlen(rs->slot_text[h->slot]));
        vg_strbuf_puts(&sb, ",\"term\":");
        const char *term = rs->terms[h->term].text;
        vg_strbuf_json_string(&sb, term, strlen(term));
        vg_strbuf_puts(&sb, ",\"list\":");
        if (lists[k])
            vg_strbuf_json_string(&sb, lists[k], strlen(lists[k]));
        else
            vg_strbuf_puts(&sb, "null");
        vg_strbuf_printf(&sb, ",\"offset\":%zu,\"length\":%zu,\"snippet\":", h->offset,
                         h->length);
        snippet(&sb, h);
        vg_strbuf_putc(&sb, '}');
    }
    vg_strbuf_putc(&sb, ']');
    if (omitted)
        vg_strbuf_printf(&sb, ",\"matches_omitted\":%zu", omitted);
    vg_strbuf_puts(&sb, ",\"source\":");
    if (src->topic) {
        vg_strbuf_puts(&sb, "{\"topic\":");
        vg_strbuf_json_string(&sb, src->topic, strlen(src->topic));
        vg_strbuf_printf(&sb, ",\"partition\":%d,\"offset\":%lld}", (int)src->partition,
                         (long long)src->offset);
    } else {
        vg_strbuf_puts(&sb, "{\"file\":");
        const char *f = src->file ? src->file : "-";
        vg_strbuf_json_string(&sb, f, strlen(f));
        vg_strbuf_printf(&sb, ",\"line\":%llu}", (unsigned long long)src->line);
    }
    vg_strbuf_printf(&sb, ",\"ruleset\":\"%s\"", rs->hash);
    if (opts->omit_event) {
        vg_strbuf_putc(&sb, '}');
        goto done;
    }
    vg_strbuf_puts(&sb, ",\"event\":");
    size_t rawlen;
    const char *raw = vg_event_raw(ev, &rawlen);
    /* Trim surrounding white space and flatten line breaks. */
    while (rawlen && (raw[rawlen - 1] == '\n' || raw[rawlen - 1] == '\r' ||
                      raw[rawlen - 1] == ' ' || raw[rawlen - 1] == '\t'))
        rawlen--;
    while (rawlen && (*raw == '\n' || *raw == '\r' || *raw == ' ' || *raw == '\t'))
        raw++, rawlen--;
    size_t at = sb.len;
    vg_strbuf_append(&sb, raw, rawlen);
    if (!vg_strbuf_failed(&sb))
        for (char *q = sb.buf + at, *e = sb.buf + sb.len; q < e; q++)
            if (*q == '\n' || *q == '\r')
                *q = ' ';
    vg_strbuf_putc(&sb, '}');
done:
    if (vg_strbuf_failed(&sb)) {
        vg_strbuf_free(&sb);
        return NULL;
    }
    return vg_strbuf_detach(&sb, len);
}
