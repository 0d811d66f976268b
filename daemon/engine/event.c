#include "vigil/event.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hex.h"
#include "path.h"
#include "prefilter_int.h"
#include "timefmt.h"
#include "vigil/utf8.h"

struct vg_decoder {
    vg_event_limits_t limits;
    char *scratch; /* reused across events: decoded keys and strings */
    size_t scratch_cap;
};

struct vg_event {
    json_object *root;
    const char *raw;
    size_t raw_len;
    bool not_ijson; /* see vg_event_is_ijson */
};

vg_decoder_t *vg_decoder_new(const vg_event_limits_t *limits)
{
    vg_decoder_t *dec = calloc(1, sizeof(*dec));
    if (!dec)
        return NULL;
    dec->limits = vg_event_limits_or_defaults(limits);
    return dec;
}

vg_event_limits_t vg_event_limits_or_defaults(const vg_event_limits_t *limits)
{
    vg_event_limits_t l = {.max_bytes = limits && limits->max_bytes ? limits->max_bytes
                                                                     : 1024 * 1024,
                           .max_depth = limits && limits->max_depth ? limits->max_depth : 64};
    return l;
}

void vg_decoder_destroy(vg_decoder_t *dec)
{
    if (!dec)
        return;
    free(dec->scratch);
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

/* Skips string bytes that need no attention (not '"', '\\' or a control
 * character) and returns the index of the first one that does, or a
 * point near the end from which the caller goes on byte by byte. The bulk
 * of an event is its text, so this runs sixteen bytes at a time with SSE2
 * (part of every x86-64), else eight at a time in a 64-bit word. */
static size_t skip_plain(const char *s, size_t i, size_t n)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\'),
                  ctl = _mm_set1_epi8(0x1f);
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        /* min(x, 0x1f) == x exactly for the bytes below 0x20 */
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, slash)),
                                   _mm_cmpeq_epi8(_mm_min_epu8(x, ctl), x));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m)
            return i + (size_t)__builtin_ctz(m);
        i += 16;
    }
#endif
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    while (i + 8 <= n) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        /* A lane is flagged when it is zero (the byte matched) or < 0x20. */
        uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x);
        if (hit & highs)
            break;
        i += 8;
    }
    return i;
}

size_t vg_json_skip_plain(const char *s, size_t i, size_t n)
{
    return skip_plain(s, i, n);
}

/* ---- the parser ------------------------------------------------------------
 *
 * One strict RFC 8259 pass that validates and builds the json-c tree at
 * once. json-c's own tokener, even in strict mode, takes NaN, Infinity,
 * "1." and raw control characters in strings (none is JSON, and each would
 * make our alerts, which embed the event's bytes, unreadable to strict
 * consumers); it also copies strings a byte at a time. Here plain string
 * runs are found eight bytes at a time and copied once. UTF-8 has been
 * validated for the whole message before this runs. The tree is the same
 * json-c would build: int64 for integers (uint64 above INT64_MAX, clamped
 * like json-c), doubles keeping their text, a later duplicate key
 * replacing an earlier one, lone \u surrogates becoming U+FFFD. */

typedef struct {
    const char *s;
    size_t n, i;
    size_t depth, max_depth;
    vg_event_status_t st; /* VG_EVENT_OK until an error */
    char *err;
    size_t err_size;
    char **scratch; /* the decoder's buffer: keys of open objects, then a string */
    size_t *cap;
    size_t used;
    bool not_ijson; /* a lone surrogate, a repeated key, a number beyond double */
} parser_t;

static json_object *parse_value(parser_t *p);

static void fail(parser_t *p, vg_event_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(parser_t *p, vg_event_status_t st, const char *fmt, ...)
{
    if (p->st != VG_EVENT_OK)
        return;
    p->st = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->err_size, fmt, ap);
    va_end(ap);
}

static void unexpected(parser_t *p, const char *wanted)
{
    if (p->i >= p->n)
        fail(p, VG_EVENT_BAD_JSON, "invalid JSON: unexpected end of input");
    else
        fail(p, VG_EVENT_BAD_JSON, "invalid JSON at byte %zu: %s", p->i, wanted);
}

static void skip_ws(parser_t *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\n' || p->s[p->i] == '\r' ||
                           p->s[p->i] == '\t'))
        p->i++;
}

/* Room for need more bytes after p->used in the scratch buffer. */
static bool reserve(parser_t *p, size_t need)
{
    if (p->used + need <= *p->cap)
        return true;
    size_t cap = *p->cap ? *p->cap : 256;
    while (cap < p->used + need)
        cap *= 2;
    char *b = realloc(*p->scratch, cap);
    if (!b) {
        fail(p, VG_EVENT_BAD_JSON, "out of memory decoding the event");
        return false;
    }
    *p->scratch = b;
    *p->cap = cap;
    return true;
}

/* Four hex digits at s[i..i+4), or -1. */
static long hex4(const char *s, size_t i, size_t n)
{
    return i + 4 > n ? -1 : vg_hex_value(s + i, 4);
}

/* Parses the string at p->i (a '"'). Its text is either a span of the
 * input (*out, *len) or, when it has escapes, decoded into the scratch
 * buffer after p->used, NUL-terminated, with *in_scratch set. */
static bool parse_string(parser_t *p, const char **out, size_t *len, bool *in_scratch)
{
    const char *s = p->s;
    size_t n = p->n, i = p->i + 1, start = i;
    *in_scratch = false;
    i = skip_plain(s, i, n);
    for (;;) {
        while (i < n && s[i] != '"' && s[i] != '\\' && (unsigned char)s[i] >= 0x20)
            i++;
        if (i >= n) {
            p->i = n;
            unexpected(p, "");
            return false;
        }
        if (s[i] == '"' || s[i] == '\\')
            break;
        fail(p, VG_EVENT_BAD_JSON, "invalid JSON at byte %zu: control character in a string", i);
        return false;
    }
    if (s[i] == '"') {
        *out = s + start;
        *len = i - start;
        p->i = i + 1;
        return true;
    }
    /* Escapes: decode the rest into the scratch buffer. Decoded text is
     * never longer than its source. */
    size_t rest = n - start;
    if (!reserve(p, rest + 1))
        return false;
    char *o = *p->scratch + p->used;
    size_t k = i - start;
    memcpy(o, s + start, k);
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            o[k] = '\0';
            *out = o;
            *len = k;
            *in_scratch = true;
            p->i = i + 1;
            return true;
        }
        if (c < 0x20) {
            fail(p, VG_EVENT_BAD_JSON, "invalid JSON at byte %zu: control character in a string",
                 i);
            return false;
        }
        if (c != '\\') {
            size_t j = skip_plain(s, i, n);
            if (j == i)
                j = i + 1;
            memcpy(o + k, s + i, j - i);
            k += j - i;
            i = j;
            continue;
        }
        if (i + 1 >= n)
            break;
        char e = s[i + 1], d = 0;
        switch (e) {
        case '"': d = '"'; break;
        case '\\': d = '\\'; break;
        case '/': d = '/'; break;
        case 'b': d = '\b'; break;
        case 'f': d = '\f'; break;
        case 'n': d = '\n'; break;
        case 'r': d = '\r'; break;
        case 't': d = '\t'; break;
        default: break;
        }
        if (d) {
            o[k++] = d;
            i += 2;
            continue;
        }
        if (e != 'u') {
            fail(p, VG_EVENT_BAD_JSON, "invalid JSON at byte %zu: invalid escape '\\%c' in a string",
                 i, (e >= 0x20 && e < 0x7f) ? e : '?');
            return false;
        }
        long u = hex4(s, i + 2, n);
        if (u < 0) {
            fail(p, VG_EVENT_BAD_JSON, "invalid JSON at byte %zu: \\u needs four hex digits", i);
            return false;
        }
        i += 6;
        unsigned long cp = (unsigned long)u;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            long lo = (i + 1 < n && s[i] == '\\' && s[i + 1] == 'u') ? hex4(s, i + 2, n) : -1;
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + ((unsigned long)lo - 0xdc00);
                i += 6;
            } else {
                cp = 0xfffd; /* a lone high surrogate */
                p->not_ijson = true;
            }
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            cp = 0xfffd; /* a lone low surrogate */
            p->not_ijson = true;
        }
        /* \uXXXX (6 bytes) decodes to at most 3; a pair (12) to 4. */
        k += vg_utf8_encode((uint32_t)cp, o + k);
    }
    p->i = n;
    unexpected(p, "");
    return false;
}

static json_object *parse_number(parser_t *p)
{
    const char *s = p->s;
    size_t n = p->n, st = p->i, i = st;
    if (s[i] == '-')
        i++;
    size_t d = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    bool ok = i > d && !(s[d] == '0' && i - d > 1), is_double = false;
    if (ok && i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        ok = i > f;
        is_double = true;
    }
    if (ok && i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        ok = i > e;
        is_double = true;
    }
    if (!ok) {
        fail(p, VG_EVENT_BAD_JSON, "invalid JSON at byte %zu: malformed number", st);
        return NULL;
    }
    p->i = i;
    size_t len = i - st;
    if (!reserve(p, len + 1))
        return NULL;
    char *t = *p->scratch + p->used;
    memcpy(t, s + st, len);
    t[len] = '\0';
    json_object *o;
    if (is_double) {
        double v = strtod(t, NULL);
        p->not_ijson |= !isfinite(v); /* 1e999 */
        o = json_object_new_double_s(v, t);
    } else if (t[0] == '-') {
        o = json_object_new_int64(strtoll(t, NULL, 10)); /* clamps like json-c */
    } else {
        unsigned long long u = strtoull(t, NULL, 10);
        o = u <= INT64_MAX ? json_object_new_int64((int64_t)u) : json_object_new_uint64(u);
    }
    if (!o)
        fail(p, VG_EVENT_BAD_JSON, "out of memory decoding the event");
    return o;
}

/* A literal (true, false, null); *is_null tells null (a NULL object to
 * json-c) from an error. */
static json_object *parse_word(parser_t *p, bool *is_null)
{
    const char *s = p->s;
    size_t st = p->i, i = st;
    while (i < p->n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        i++;
    size_t l = i - st;
    *is_null = false;
    if (l == 4 && memcmp(s + st, "true", 4) == 0) {
        p->i = i;
        return json_object_new_boolean(1);
    }
    if (l == 5 && memcmp(s + st, "false", 5) == 0) {
        p->i = i;
        return json_object_new_boolean(0);
    }
    if (l == 4 && memcmp(s + st, "null", 4) == 0) {
        p->i = i;
        *is_null = true;
        return NULL;
    }
    if (l == 0)
        fail(p, VG_EVENT_BAD_JSON, "invalid JSON at byte %zu: unexpected character '%c'", st,
             (s[st] >= 0x20 && s[st] < 0x7f) ? s[st] : '?');
    else
        fail(p, VG_EVENT_BAD_JSON, "invalid JSON at byte %zu: unexpected word '%.*s'", st,
             l > 20 ? 20 : (int)l, s + st);
    return NULL;
}

static bool enter(parser_t *p)
{
    if (++p->depth > p->max_depth) {
        fail(p, VG_EVENT_TOO_DEEP, "event nests deeper than %zu levels", p->max_depth);
        return false;
    }
    p->i++; /* the '{' or '[' */
    skip_ws(p);
    return true;
}

static json_object *parse_object(parser_t *p)
{
    if (!enter(p))
        return NULL;
    json_object *obj = json_object_new_object();
    if (!obj) {
        fail(p, VG_EVENT_BAD_JSON, "out of memory decoding the event");
        return NULL;
    }
    if (p->i < p->n && p->s[p->i] == '}') {
        p->i++;
        p->depth--;
        return obj;
    }
    size_t added = 0;
    for (;;) {
        if (p->i >= p->n || p->s[p->i] != '"') {
            unexpected(p, "expected a quoted key");
            goto fail;
        }
        const char *k;
        size_t klen;
        bool in_scratch;
        if (!parse_string(p, &k, &klen, &in_scratch))
            goto fail;
        /* The key waits in the scratch buffer while its value is parsed
         * (which may push keys of its own after it). */
        size_t mark = p->used;
        if (!in_scratch) {
            if (!reserve(p, klen + 1))
                goto fail;
            memcpy(*p->scratch + p->used, k, klen);
            (*p->scratch)[p->used + klen] = '\0';
        }
        p->used += klen + 1;
        skip_ws(p);
        if (p->i >= p->n || p->s[p->i] != ':') {
            unexpected(p, "expected ':' after a key");
            p->used = mark;
            goto fail;
        }
        p->i++;
        skip_ws(p);
        json_object *v = parse_value(p);
        p->used = mark;
        if (p->st != VG_EVENT_OK) {
            json_object_put(v);
            goto fail;
        }
        /* json_object_object_add copies the key; a repeated key replaces
         * the earlier value, as json-c's tokener does. */
        if (klen == strlen(*p->scratch + mark)) {
            if (json_object_object_add(obj, *p->scratch + mark, v) != 0) {
                json_object_put(v);
                fail(p, VG_EVENT_BAD_JSON, "out of memory decoding the event");
                goto fail;
            }
            added++;
        } else {
            json_object_put(v); /* a key with \u0000 cannot be looked up by path */
        }
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            skip_ws(p);
            continue;
        }
        if (p->i < p->n && p->s[p->i] == '}') {
            p->i++;
            /* Fewer members than were added: a key was repeated. */
            p->not_ijson |= (size_t)json_object_object_length(obj) != added;
            break;
        }
        unexpected(p, "expected ',' or '}' in an object");
        goto fail;
    }
    p->depth--;
    return obj;
fail:
    json_object_put(obj);
    return NULL;
}

static json_object *parse_array(parser_t *p)
{
    if (!enter(p))
        return NULL;
    json_object *arr = json_object_new_array();
    if (!arr) {
        fail(p, VG_EVENT_BAD_JSON, "out of memory decoding the event");
        return NULL;
    }
    if (p->i < p->n && p->s[p->i] == ']') {
        p->i++;
        p->depth--;
        return arr;
    }
    for (;;) {
        json_object *v = parse_value(p);
        if (p->st != VG_EVENT_OK) {
            json_object_put(v);
            goto fail;
        }
        if (json_object_array_add(arr, v) != 0) {
            json_object_put(v);
            fail(p, VG_EVENT_BAD_JSON, "out of memory decoding the event");
            goto fail;
        }
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            skip_ws(p);
            continue;
        }
        if (p->i < p->n && p->s[p->i] == ']') {
            p->i++;
            break;
        }
        unexpected(p, "expected ',' or ']' in an array");
        goto fail;
    }
    p->depth--;
    return arr;
fail:
    json_object_put(arr);
    return NULL;
}

/* A value at p->i; NULL for null and on error (p->st tells). */
static json_object *parse_value(parser_t *p)
{
    if (p->i >= p->n) {
        unexpected(p, "");
        return NULL;
    }
    char c = p->s[p->i];
    if (c == '{')
        return parse_object(p);
    if (c == '[')
        return parse_array(p);
    if (c == '"') {
        const char *t;
        size_t len;
        bool in_scratch;
        if (!parse_string(p, &t, &len, &in_scratch))
            return NULL;
        json_object *o = json_object_new_string_len(t, (int)len);
        if (!o)
            fail(p, VG_EVENT_BAD_JSON, "out of memory decoding the event");
        return o;
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(p);
    bool is_null;
    return parse_word(p, &is_null);
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
    /* UTF-8 is checked once for the whole message: bytes between tokens
     * too, and with one clear reason. */
    if (!vg_utf8_valid(buf, len)) {
        snprintf(err, err_size, "event is not valid UTF-8");
        return VG_EVENT_BAD_UTF8;
    }
    if (len > (size_t)0x7fffffff) {
        snprintf(err, err_size, "event too large to decode");
        return VG_EVENT_TOO_LARGE;
    }
    parser_t p = {.s = buf, .n = len, .max_depth = dec->limits.max_depth, .st = VG_EVENT_OK,
                  .err = err, .err_size = err_size, .scratch = &dec->scratch,
                  .cap = &dec->scratch_cap};
    if (err_size)
        err[0] = '\0';
    skip_ws(&p);
    json_object *root = parse_value(&p);
    if (p.st == VG_EVENT_OK) {
        skip_ws(&p);
        if (p.i < len)
            fail(&p, VG_EVENT_BAD_JSON,
                 "invalid JSON: unexpected data after the value at byte %zu", p.i);
    }
    if (p.st != VG_EVENT_OK) {
        json_object_put(root);
        return p.st;
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
    ev->not_ijson = p.not_ijson;
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

bool vg_event_is_ijson(const vg_event_t *ev)
{
    return !ev->not_ijson;
}

/* ---- paths ---- */

/* Deeper than any event the decoder lets through (input.max_event_depth
 * is at most 1000, but a path walk counts array levels and keys alike):
 * a bound on the recursion, not a rule about events. */
#define WALK_MAX_DEPTH 200

static bool walk(json_object *o, char *const *parts, size_t np, vg_json_leaf_fn fn, void *arg,
                 unsigned depth)
{
    if (depth > WALK_MAX_DEPTH)
        return false;
    if (json_object_is_type(o, json_type_array)) {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n; i++)
            if (walk(json_object_array_get_idx(o, i), parts, np, fn, arg, depth + 1))
                return true;
        return false;
    }
    if (np == 0)
        return fn(o, arg);
    json_object *next;
    if (!json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, parts[0], &next))
        return false;
    return walk(next, parts + 1, np - 1, fn, arg, depth + 1);
}

bool vg_json_walk(json_object *o, char *const *parts, size_t nparts, vg_json_leaf_fn fn,
                  void *arg)
{
    return walk(o, parts, nparts, fn, arg, 0);
}

bool vg_event_walk(const vg_event_t *ev, const vg_path_t *p, vg_json_leaf_fn fn, void *arg)
{
    return walk(ev->root, p->parts, p->nparts, fn, arg, 0);
}

json_object *vg_json_lookup(json_object *o, const vg_path_t *p, vg_lookup_mode_t mode)
{
    for (size_t i = 0; o && i < p->nparts; i++) {
        if (mode == VG_LOOKUP_FIRST && json_object_is_type(o, json_type_array))
            o = json_object_array_length(o) ? json_object_array_get_idx(o, 0) : NULL;
        if (!o || !json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, p->parts[i], &o))
            return NULL;
    }
    return o;
}

bool vg_event_time(const vg_event_t *ev, const vg_path_t *p, int64_t *ms)
{
    json_object *v = vg_json_lookup(ev->root, p, VG_LOOKUP_FIRST);
    if (v && json_object_is_type(v, json_type_string))
        return vg_time_parse(json_object_get_string(v), (size_t)json_object_get_string_len(v),
                             ms);
    if (v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return vg_time_from_epoch(json_object_get_double(v), ms);
    return false;
}
