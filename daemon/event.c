#include "vigil/event.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "vigil/utf8.h"

struct vg_decoder {
    vg_event_limits_t limits;
    json_tokener *tok;
};

struct vg_event {
    json_object *root;
    const char *raw;
    size_t raw_len;
};

vg_decoder_t *vg_decoder_new(const vg_event_limits_t *limits)
{
    vg_decoder_t *dec = calloc(1, sizeof(*dec));
    if (!dec)
        return NULL;
    dec->limits.max_bytes = limits && limits->max_bytes ? limits->max_bytes : 1024 * 1024;
    dec->limits.max_depth = limits && limits->max_depth ? limits->max_depth : 64;
    /* json-c counts the outermost object as depth 1. */
    dec->tok = json_tokener_new_ex((int)dec->limits.max_depth);
    if (!dec->tok) {
        vg_decoder_destroy(dec);
        return NULL;
    }
    json_tokener_set_flags(dec->tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    return dec;
}

void vg_decoder_destroy(vg_decoder_t *dec)
{
    if (!dec)
        return;
    if (dec->tok)
        json_tokener_free(dec->tok);
    free(dec);
}

const char *vg_event_status_name(vg_event_status_t st)
{
    switch (st) {
    case VG_EVENT_OK: return "ok";
    case VG_EVENT_TOO_LARGE: return "too_large";
    case VG_EVENT_BAD_UTF8: return "invalid_utf8";
    case VG_EVENT_TOO_DEEP: return "too_deep";
    case VG_EVENT_BAD_JSON: return "invalid_json";
    case VG_EVENT_NOT_OBJECT: return "not_object";
    }
    return "unknown";
}

static bool only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    return true;
}

vg_event_status_t vg_decoder_parse(vg_decoder_t *dec, const char *buf, size_t len,
                                   vg_event_t **out, char *err, size_t err_size)
{
    *out = NULL;
    if (len > dec->limits.max_bytes) {
        snprintf(err, err_size, "event of %zu bytes exceeds the limit of %zu bytes", len,
                 dec->limits.max_bytes);
        return VG_EVENT_TOO_LARGE;
    }
    /* json-c validates UTF-8 only inside strings it decodes; checking the
     * whole message first also catches bytes between tokens and gives one
     * clear reason. */
    if (!vg_utf8_valid(buf, len)) {
        snprintf(err, err_size, "event is not valid UTF-8");
        return VG_EVENT_BAD_UTF8;
    }
    if (len > (size_t)0x7fffffff) {
        snprintf(err, err_size, "event too large to decode");
        return VG_EVENT_TOO_LARGE;
    }
    json_tokener_reset(dec->tok);
    json_object *root = json_tokener_parse_ex(dec->tok, buf, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(dec->tok);
    if (!root && jerr == json_tokener_continue) {
        snprintf(err, err_size, "invalid JSON: unexpected end of input");
        return VG_EVENT_BAD_JSON;
    }
    if (jerr != json_tokener_success) {
        if (root)
            json_object_put(root);
        if (jerr == json_tokener_error_depth) {
            snprintf(err, err_size, "event nests deeper than %zu levels", dec->limits.max_depth);
            return VG_EVENT_TOO_DEEP;
        }
        snprintf(err, err_size, "invalid JSON at byte %zu: %s",
                 json_tokener_get_parse_end(dec->tok), json_tokener_error_desc(jerr));
        return VG_EVENT_BAD_JSON;
    }
    size_t end = json_tokener_get_parse_end(dec->tok);
    if (end < len && !only_space(buf + end, len - end)) {
        json_object_put(root);
        snprintf(err, err_size, "invalid JSON: unexpected data after the object at byte %zu",
                 end);
        return VG_EVENT_BAD_JSON;
    }
    if (!json_object_is_type(root, json_type_object)) {
        const char *what = root ? json_type_to_name(json_object_get_type(root)) : "null";
        json_object_put(root);
        snprintf(err, err_size, "event is a JSON %s, not an object", what);
        return VG_EVENT_NOT_OBJECT;
    }
    vg_event_t *ev = calloc(1, sizeof(*ev));
    if (!ev) {
        json_object_put(root);
        snprintf(err, err_size, "out of memory");
        return VG_EVENT_BAD_JSON;
    }
    ev->root = root;
    ev->raw = buf;
    ev->raw_len = len;
    *out = ev;
    return VG_EVENT_OK;
}

void vg_event_destroy(vg_event_t *ev)
{
    if (!ev)
        return;
    if (ev->root)
        json_object_put(ev->root);
    free(ev);
}

json_object *vg_event_json(const vg_event_t *ev)
{
    return ev->root;
}

const char *vg_event_raw(const vg_event_t *ev, size_t *len)
{
    if (len)
        *len = ev->raw_len;
    return ev->raw;
}
