/* The alerts of stateful rules: the rule's ordinary alert rendered with
 * a deterministic id and a "state" object (what fired, for which group,
 * over which window), through the engine's alert renderer. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state_int.h"
#include "strbuf.h"
#include "timefmt.h"

static const char *const KIND_NAMES[] = {"threshold", "spike",    "first_seen",
                                         "absence",   "throttle", "digest"};

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
    vg_time_format_ms(ts, sizeof(ts), ms);
    vg_strbuf_printf(sb, ",\"%s\":\"%s\"", name, ts);
}

static void put_state(vg_strbuf_t *sb, const rstate_t *r, const cand_t *c, uint64_t suppressed)
{
    vg_strbuf_printf(sb, "{\"kind\":\"%s\",\"group\":", KIND_NAMES[c->kind]);
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
 * template with {path} replaced by the group value of that path, as text
 * into out. */
static void put_summary(vg_strbuf_t *out, const rstate_t *r, const cand_t *c)
{
    const char *tmpl = vg_rule_summary(r->rule) ? vg_rule_summary(r->rule) : vg_rule_title(r->rule);
    for (const char *p = tmpl; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            vg_strbuf_putc(out, *p);
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
                    vg_strbuf_append(out, k, (size_t)(ke - k));
                k = ke < kend ? ke + 1 : kend;
            }
            p = e + 1;
        } else {
            vg_strbuf_putc(out, *p++);
        }
    }
}

/* Hands a rendered alert (json, NULL when rendering failed) to the
 * callback with its Kafka key, and frees it. */
static void emit_json(emitter_t *em, rstate_t *r, const cand_t *c, char *json, size_t len)
{
    vg_strbuf_t key;
    vg_strbuf_init(&key);
    put_key(&key, r, c);
    if (!json || vg_strbuf_failed(&key)) {
        vg_state_fail(em, "out of memory rendering a stateful alert");
    } else {
        /* An empty key (a group value that folds to nothing, like "\u0000")
         * leaves key.buf NULL; the contract and the producer want "". */
        vg_state_alert_t a = {r->rule, json, len, key.buf ? key.buf : ""};
        if (em->fn && em->fn(em->ctx, &a) != 0)
            vg_state_fail(em, "the alert could not be delivered");
        em->count++;
        r->stats.alerts++;
    }
    free(json);
    vg_strbuf_free(&key);
}

/* The id and "state" object of a stateful alert into opts (the object
 * in st->sb, valid until the next alert). */
static void state_options(emitter_t *em, const rstate_t *r, const cand_t *c, uint64_t suppressed,
                          const vg_alert_source_t *id_src, char id[33], vg_alert_options_t *o)
{
    vg_state_t *st = em->st;
    state_id(st, r, c, id_src, id);
    vg_strbuf_reset(&st->sb);
    put_state(&st->sb, r, c, suppressed);
    o->alert_id = id;
    o->state = st->sb.buf;
    o->state_len = st->sb.len;
}

const vg_event_t *vg_state_event(emitter_t *em)
{
    if (em->ev || em->failed)
        return em->ev;
    vg_state_t *st = em->st;
    /* The bytes were decoded once already, under the input's limits:
     * none applies again. */
    static const vg_event_limits_t unlimited = {SIZE_MAX, SIZE_MAX};
    if (!st->dec && !(st->dec = vg_decoder_new(&unlimited))) {
        vg_state_fail(em, "out of memory");
        return NULL;
    }
    char err[256];
    if (!em->raw || vg_decoder_parse(st->dec, em->raw, em->raw_len, &em->decoded, err,
                                     sizeof(err)) != VG_EVENT_OK) {
        vg_state_fail(em, em->raw ? "out of memory decoding the event again"
                                  : "the event is not at hand");
        return NULL;
    }
    em->ev = em->decoded;
    return em->ev;
}

void vg_state_end_event(emitter_t *em)
{
    vg_event_destroy(em->decoded);
    em->decoded = NULL;
    em->ev = NULL;
}

/* An alert about the event being processed: the ordinary alert of the
 * rule (evidence, summary, event) with a deterministic id and a "state"
 * object. */
void vg_state_emit_event_alert(emitter_t *em, rstate_t *r, const cand_t *c, uint64_t suppressed)
{
    char id[33];
    vg_alert_options_t o = {.time_field = r->time_field};
    state_options(em, r, c, suppressed, em->src, id, &o);
    const vg_event_t *ev = vg_state_event(em);
    if (!ev)
        return;
    size_t len = 0;
    char *json = vg_strbuf_failed(&em->st->sb)
                     ? NULL
                     : vg_alert_render_match(em->st->rs, ev, em->match, em->src, &o, &len);
    emit_json(em, r, c, json, len);
}

/* An alert that no single event caused (absence, digest): no evidence,
 * no event, the group values in the summary, the window's end as its
 * event time. */
void vg_state_emit_timer_alert(emitter_t *em, rstate_t *r, const cand_t *c)
{
    char id[33];
    vg_alert_options_t o = {.event_time_set = true, .event_time_ms = c->wend};
    state_options(em, r, c, 0, NULL, id, &o);
    vg_strbuf_t summary;
    vg_strbuf_init(&summary);
    put_summary(&summary, r, c);
    o.summary = summary.buf ? summary.buf : "";
    o.summary_len = summary.len;
    const vg_alert_source_t *src = em->src;
    vg_rule_match_t m = {.rule = r->rule};
    size_t len = 0;
    char *json = vg_strbuf_failed(&em->st->sb) || vg_strbuf_failed(&summary)
                     ? NULL
                     : vg_alert_render_match(em->st->rs, NULL, &m,
                                             src && (src->topic || src->file) ? src : NULL, &o,
                                             &len);
    vg_strbuf_free(&summary);
    emit_json(em, r, c, json, len);
}

/* ---- the output stage: each, throttle, digest ---- */

char *vg_state_digest_item(emitter_t *em, const rstate_t *r, int64_t t)
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
    const vg_event_t *ev = vg_state_event(em);
    if (!ev) {
        vg_strbuf_free(&sb);
        return NULL;
    }
    json_object *root = vg_event_json(ev);
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

