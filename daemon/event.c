#include "vigil/event.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    /* json-c counts a scalar value as a level too: {"a":1} is depth 2 to
     * it, but nests one object deep to a user. */
    dec->tok = json_tokener_new_ex((int)dec->limits.max_depth + 1);
    if (!dec->tok) {
        vg_decoder_destroy(dec);
        return NULL;
    }
    /* UTF-8 is validated once for the whole message before parsing. */
    json_tokener_set_flags(dec->tok, JSON_TOKENER_STRICT);
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

/* Skips string bytes that need no attention (not '"', '\\' or a control
 * character), eight at a time: the bulk of an event is its text. */
static size_t skip_plain(const char *s, size_t i, size_t n)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    while (i + 8 <= n) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t quote = x ^ (ones * '"'), slash = x ^ (ones * '\\');
        /* A lane is flagged when it is zero (the byte matched) or < 0x20. */
        uint64_t hit = ((quote - ones) & ~quote) | ((slash - ones) & ~slash) |
                       ((x - ones * 0x20) & ~x);
        if (hit & highs)
            break;
        i += 8;
    }
    return i;
}

/* json-c's strict mode still takes NaN, Infinity, "1." and raw control
 * characters in strings; none is JSON, and each would make our alerts
 * (which embed the event's bytes) unreadable to strict consumers. This
 * pass checks strings, numbers and literals; json-c checks structure. */
static bool strict_json(const char *s, size_t n, char *err, size_t err_size)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            i++;
            for (;;) {
                i = skip_plain(s, i, n);
                if (i >= n || s[i] == '"')
                    break;
                if ((unsigned char)s[i] < 0x20) {
                    snprintf(err, err_size,
                             "invalid JSON at byte %zu: control character in a string", i);
                    return false;
                }
                i += s[i] == '\\' ? 2 : 1;
            }
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t st = i;
            if (s[i] == '-')
                i++;
            size_t d = i;
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
            bool ok = i > d && !(s[d] == '0' && i - d > 1);
            if (ok && i < n && s[i] == '.') {
                size_t f = ++i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
                ok = i > f;
            }
            if (ok && i < n && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < n && (s[i] == '+' || s[i] == '-'))
                    i++;
                size_t e = i;
                while (i < n && s[i] >= '0' && s[i] <= '9')
                    i++;
                ok = i > e;
            }
            if (!ok) {
                snprintf(err, err_size, "invalid JSON at byte %zu: malformed number", st);
                return false;
            }
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            size_t st = i;
            while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
                i++;
            size_t l = i - st;
            if (!((l == 4 && memcmp(s + st, "true", 4) == 0) ||
                  (l == 5 && memcmp(s + st, "false", 5) == 0) ||
                  (l == 4 && memcmp(s + st, "null", 4) == 0))) {
                snprintf(err, err_size, "invalid JSON at byte %zu: unexpected word '%.*s'", st,
                         l > 20 ? 20 : (int)l, s + st);
                return false;
            }
        } else {
            i++;
        }
    }
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
    if (!strict_json(buf, len, err, err_size))
        return VG_EVENT_BAD_JSON;
    json_tokener_reset(dec->tok);
    json_object *root = json_tokener_parse_ex(dec->tok, buf, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(dec->tok);
    bool at_end = false;
    if (!root && jerr == json_tokener_continue) {
        /* A bare number or literal may be waiting for a delimiter: a NUL
         * ends it (and anything still open stays an error). */
        root = json_tokener_parse_ex(dec->tok, "", 1);
        jerr = json_tokener_get_error(dec->tok);
        at_end = true;
        if (!root && jerr == json_tokener_continue) {
            snprintf(err, err_size, "invalid JSON: unexpected end of input");
            return VG_EVENT_BAD_JSON;
        }
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
    size_t end = at_end ? len : json_tokener_get_parse_end(dec->tok);
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
