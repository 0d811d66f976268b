/* The stateful settings of a rule (rules/README.md "Stateful rules"): one
 * aggregation (threshold, spike, first_seen or absence), an output limit
 * (throttle or digest) and event_time, parsed into a vg_rule_state_t
 * with a one-line summary and the fingerprint snapshots are matched
 * against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "ruleset_int.h"

#define MAX_GROUP_PATHS 4
#define MAX_DURATION_MS (INT64_C(3660) * 86400 * 1000)
#define DEFAULT_MAX_KEYS 100000u
#define MAX_MAX_KEYS 10000000u

static const char *const THRESHOLD_KEYS[] = {"count", "window", "group_by", "max_keys"};
static const char *const SPIKE_KEYS[] = {"factor",   "min_count", "window",
                                         "baseline", "group_by",  "max_keys"};
static const char *const FIRST_SEEN_KEYS[] = {"field", "horizon", "group_by", "max_keys"};
static const char *const ABSENCE_KEYS[] = {"window", "group_by", "max_keys"};
static const char *const THROTTLE_KEYS[] = {"window", "group_by", "max_keys"};
static const char *const DIGEST_KEYS[] = {"window", "group_by", "max_keys", "max_items"};
static const char *const EVENT_TIME_KEYS[] = {"field", "lateness"};
static const char *const AGG_KEYS[] = {"threshold", "spike", "first_seen", "absence"};
static const one_of_t ONE_AGGREGATION = {
    AGG_KEYS, N(AGG_KEYS), "a rule takes one of threshold, spike, first_seen and absence",
    "write two rules", NULL};

#define AGG_SHAPE "a map such as {count: 3, window: 24h, group_by: entities}"
#define OUT_SHAPE "a map such as {window: 1h}"
static const map_spec_t THROTTLE = {"throttle", OUT_SHAPE, "throttle", THROTTLE_KEYS,
                                    N(THROTTLE_KEYS)};
static const map_spec_t DIGEST = {"digest", OUT_SHAPE, "digest", DIGEST_KEYS, N(DIGEST_KEYS)};
static const map_spec_t EVENT_TIME = {"event_time", "{field: PATH, lateness: DURATION}",
                                      "event_time", EVENT_TIME_KEYS, N(EVENT_TIME_KEYS)};

/* Duration units, largest first: duration_text writes the largest unit
 * that divides a duration exactly. */
static const struct {
    int64_t ms;
    const char *unit;
} UNITS[] = {{7 * 86400000LL, "w"}, {86400000, "d"}, {3600000, "h"},
             {60000, "m"},          {1000, "s"},     {1, "ms"}};

/* ---- values ---- */

/* A duration such as 30s, 10m, 24h, 7d or 2w (also 500ms). */
static bool get_duration(compiler_t *c, const char *file, const vg_ynode_t *map, const char *key,
                         bool required, const vg_ynode_t *where, int64_t *ms)
{
    const vg_ynode_t *v = vg_ynode_get(map, key);
    if (!v) {
        if (required)
            ERR(c, file, where,
                "missing required key '%s' (a duration such as 30s, 10m, 24h or 7d)", key);
        return !required;
    }
    static const char hint[] = "a duration is a whole number and a unit: ms, s, m, h, d or w "
                               "(30s, 10m, 24h, 7d)";
    if (v->kind != VG_YNODE_SCALAR || v->type == VG_YSCALAR_NULL) {
        ERR(c, file, v, "'%s' takes a duration, got %s (%s)", key, vg_ynode_describe(v), hint);
        return false;
    }
    /* A bare number is the likeliest slip (seconds? minutes?): say so. */
    if (v->type == VG_YSCALAR_INT || v->type == VG_YSCALAR_FLOAT) {
        ERR(c, file, v,
            "'%s: %s' has no unit (write %ss, %sm, %sh or %sd; units are ms, s, m, h, d and w)",
            key, v->str, v->str, v->str, v->str, v->str);
        return false;
    }
    const char *p = v->str;
    int64_t n = 0;
    size_t digits = 0;
    /* Reading stops after 12 digits, so that n cannot overflow; a longer
     * number is then "not a duration". */
    while (*p >= '0' && *p <= '9' && digits < 12) {
        n = n * 10 + (*p++ - '0');
        digits++;
    }
    int64_t unit = 0;
    for (size_t i = 0; i < N(UNITS) && !unit; i++)
        if (strcmp(p, UNITS[i].unit) == 0)
            unit = UNITS[i].ms;
    if (digits == 0 || unit == 0) {
        ERR(c, file, v, "'%s: %s' is not a duration (%s)", key, v->str, hint);
        return false;
    }
    if (n > MAX_DURATION_MS / unit) {
        ERR(c, file, v, "'%s: %s' is too long (at most 3660d)", key, v->str);
        return false;
    }
    *ms = n * unit;
    return true;
}

static bool get_uint(compiler_t *c, const char *file, const vg_ynode_t *map, const char *key,
                     uint32_t min, uint32_t max, uint32_t *out)
{
    const vg_ynode_t *v = vg_ynode_get(map, key);
    if (!v)
        return true;
    if (v->kind != VG_YNODE_SCALAR || v->type != VG_YSCALAR_INT || v->num < min || v->num > max) {
        ERR(c, file, v, "'%s' takes a whole number from %u to %u, got %s%s", key, min, max,
            v->kind == VG_YNODE_SCALAR ? v->str : vg_ynode_describe(v),
            v->kind == VG_YNODE_SCALAR && v->quoted ? " (remove the quotes)" : "");
        return false;
    }
    *out = (uint32_t)v->num;
    return true;
}

static bool get_path(compiler_t *c, const char *file, const vg_ynode_t *v, const char *key,
                     vg_path_t *out)
{
    if (!is_str(v) || !vg_rc_valid_path(v->str, v->len)) {
        ERR(c, file, v, "'%s' takes a field path such as 'source' or 'meta.feed', got %s", key,
            v->kind == VG_YNODE_SCALAR ? "an invalid path" : vg_ynode_describe(v));
        return false;
    }
    return vg_rc_make_path(c, out, v->str, v->len);
}

/* group_by: $LIST (rule 16): the path's text is "$LIST" and its parts
 * are the names of the lists whose items make LIST (itself and those it
 * splices), which the evidence of a match names. */
static bool get_list_group(compiler_t *c, const char *file, const vg_ynode_t *v, vg_path_t *out)
{
    uint32_t *li = vg_strmap_get(&c->list_idx, v->str + 1, v->len - 1);
    if (!li) {
        ERR(c, file, v, "'group_by: %s': no list named '%s' (define it under 'lists:')", v->str,
            v->str + 1);
        return false;
    }
    list_def_t *l = &c->lists[*li];
    if (!vg_rc_resolve_list(c, l))
        return false;
    out->text = vg_rc_strndup(c, v->str, v->len);
    out->parts = calloc(l->nitems + 1, sizeof(char *));
    if (!out->text || !out->parts)
        return vg_rc_oom(c), false;
    out->parts[out->nparts++] = vg_rc_strndup(c, l->def.name, strlen(l->def.name));
    for (size_t i = 0; i < l->nitems; i++) {
        const char *ln = l->items[i].list;
        bool seen = false;
        for (size_t k = 0; k < out->nparts && !seen; k++)
            seen = out->parts[k] && ln && strcmp(out->parts[k], ln) == 0;
        if (!seen && ln)
            out->parts[out->nparts++] = vg_rc_strndup(c, ln, strlen(ln));
    }
    for (size_t k = 0; k < out->nparts; k++)
        if (!out->parts[k])
            return false;
    return true;
}

/* group_by: one path or a list of up to MAX_GROUP_PATHS paths. */
static bool get_group(compiler_t *c, const char *file, const vg_ynode_t *map, vg_path_t **out,
                      size_t *n)
{
    const vg_ynode_t *v = vg_ynode_get(map, "group_by");
    if (!v)
        return true;
    const vg_ynode_t *const *items = &v;
    size_t count = 1;
    if (v->kind == VG_YNODE_SEQ) {
        items = v->items;
        count = v->count;
    }
    if (count == 0 || count > MAX_GROUP_PATHS) {
        ERR(c, file, v, "'group_by' takes 1 to %d field paths, got %zu", MAX_GROUP_PATHS, count);
        return false;
    }
    *out = calloc(count, sizeof(vg_path_t));
    if (!*out)
        return vg_rc_oom(c), false;
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        bool list = is_str(items[i]) && items[i]->len > 1 && items[i]->str[0] == '$';
        if (list ? !get_list_group(c, file, items[i], &(*out)[*n])
                 : !get_path(c, file, items[i], "group_by", &(*out)[*n]))
            ok = false;
        (*n)++;
    }
    return ok;
}

/* ---- aggregations ---- */

static bool parse_threshold(compiler_t *c, const char *file, const vg_ynode_t *agg,
                            vg_rule_state_t *st)
{
    bool ok = true;
    if (!vg_ynode_get(agg, "count")) {
        ERR(c, file, agg, "threshold needs 'count' (how many events within the window)");
        ok = false;
    }
    ok = get_uint(c, file, agg, "count", 1, 100000, &st->count) && ok;
    return get_duration(c, file, agg, "window", true, agg, &st->window_ms) && ok;
}

static bool parse_spike(compiler_t *c, const char *file, const vg_ynode_t *agg, vg_rule_state_t *st)
{
    bool ok = true;
    const vg_ynode_t *f = vg_ynode_get(agg, "factor");
    if (!f || f->kind != VG_YNODE_SCALAR ||
        (f->type != VG_YSCALAR_INT && f->type != VG_YSCALAR_FLOAT) || !(f->num >= 1) ||
        f->num > 1e6) {
        ERR(c, file, f ? f : agg,
            "spike needs 'factor': a number of at least 1 (3 means three times the baseline)");
        ok = false;
    } else {
        st->factor = f->num;
    }
    st->min_count = 1;
    st->baseline = 7;
    if (!vg_ynode_get(agg, "min_count")) {
        ERR(c, file, agg,
            "spike needs 'min_count' (the fewest events that can be a spike, so that 0 -> 2 is "
            "not one)");
        ok = false;
    }
    ok = get_uint(c, file, agg, "min_count", 1, 10000000, &st->min_count) && ok;
    ok = get_uint(c, file, agg, "baseline", 1, 60, &st->baseline) && ok;
    return get_duration(c, file, agg, "window", true, agg, &st->window_ms) && ok;
}

static bool parse_first_seen(compiler_t *c, const char *file, const vg_ynode_t *agg,
                             vg_rule_state_t *st)
{
    bool ok = true;
    const vg_ynode_t *f = vg_ynode_get(agg, "field");
    if (!f) {
        ERR(c, file, agg, "first_seen needs 'field' (the field whose new values to report)");
        ok = false;
    } else {
        ok = get_path(c, file, f, "field", &st->field) && ok;
    }
    return get_duration(c, file, agg, "horizon", true, agg, &st->window_ms) && ok;
}

static bool parse_absence(compiler_t *c, const char *file, const vg_ynode_t *agg,
                          vg_rule_state_t *st)
{
    return get_duration(c, file, agg, "window", true, agg, &st->window_ms);
}

/* The aggregations, in the order of AGG_KEYS. */
typedef struct aggregate {
    vg_agg_kind_t kind;
    map_spec_t spec;
    bool (*parse)(compiler_t *c, const char *file, const vg_ynode_t *agg, vg_rule_state_t *st);
} aggregate_t;

static const aggregate_t AGGREGATES[] = {
    {VG_AGG_THRESHOLD,
     {"threshold", AGG_SHAPE, "threshold", THRESHOLD_KEYS, N(THRESHOLD_KEYS)},
     parse_threshold},
    {VG_AGG_SPIKE, {"spike", AGG_SHAPE, "spike", SPIKE_KEYS, N(SPIKE_KEYS)}, parse_spike},
    {VG_AGG_FIRST_SEEN,
     {"first_seen", AGG_SHAPE, "first_seen", FIRST_SEEN_KEYS, N(FIRST_SEEN_KEYS)},
     parse_first_seen},
    {VG_AGG_ABSENCE,
     {"absence", AGG_SHAPE, "absence", ABSENCE_KEYS, N(ABSENCE_KEYS)},
     parse_absence},
};

/* Parses aggregation a (its map agg, keys checked) into st. ok is the
 * verdict so far, returned updated: "the window must be longer than 0" is
 * said only when nothing else is wrong, since a window left at 0 by an
 * error would repeat that error. */
static bool compile_aggregate(compiler_t *c, const char *file, vg_rule_state_t *st,
                              const aggregate_t *a, const vg_ynode_t *agg, bool ok)
{
    st->kind = a->kind;
    ok = a->parse(c, file, agg, st) && ok;
    if (st->window_ms <= 0 && ok) {
        ERR(c, file, agg, "the window must be longer than 0");
        ok = false;
    }
    ok = get_group(c, file, agg, &st->group, &st->ngroup) && ok;
    return get_uint(c, file, agg, "max_keys", 1, MAX_MAX_KEYS, &st->max_keys) && ok;
}

/* ---- throttle, digest, event_time ---- */

/* Parses the settings of throttle or digest (map o, keys checked) into
 * st. */
static bool parse_output(compiler_t *c, const char *file, vg_rule_state_t *st, const vg_ynode_t *o,
                         bool ok)
{
    ok = get_duration(c, file, o, "window", true, o, &st->out_window_ms) && ok;
    if (st->out_window_ms <= 0 && ok) {
        ERR(c, file, o, "the window must be longer than 0");
        ok = false;
    }
    st->out_group_set = vg_ynode_get(o, "group_by") != NULL;
    ok = get_group(c, file, o, &st->out_group, &st->nout_group) && ok;
    ok = get_uint(c, file, o, "max_keys", 1, MAX_MAX_KEYS, &st->out_max_keys) && ok;
    if (st->out == VG_OUT_DIGEST)
        ok = get_uint(c, file, o, "max_items", 1, 10000, &st->digest_max_items) && ok;
    return ok;
}

/* throttle or digest, and how they combine with the aggregation aggk (or
 * NULL). ok: the verdict so far, returned updated. */
static bool compile_output(compiler_t *c, const char *file, vg_rule_state_t *st,
                           const vg_ynode_t *thr, const vg_ynode_t *dig, const vg_ynode_t *aggk,
                           bool ok)
{
    const vg_ynode_t *o = thr ? thr : dig;
    const char *what = thr ? "throttle" : "digest";
    st->out = thr ? VG_OUT_THROTTLE : VG_OUT_DIGEST;
    if (!vg_rc_check_map(c, file, o, thr ? &THROTTLE : &DIGEST))
        ok = false;
    else
        ok = parse_output(c, file, st, o, ok);
    if (aggk && st->out_group_set) {
        ERR(c, file, vg_ynode_get(o, "group_by"),
            "'%s' of a %s rule works per the %s's group_by; remove this group_by", what, aggk->str,
            aggk->str);
        ok = false;
    }
    if (dig && aggk) {
        ERR(c, file, dig,
            "'digest' collects the events of a plain rule; a %s rule already sends one alert per "
            "group (use 'throttle' to limit those)",
            aggk->str);
        ok = false;
    }
    if (thr && aggk && st->kind == VG_AGG_ABSENCE) {
        ERR(c, file, thr,
            "an absence rule already alerts once per silence; 'throttle' would change nothing");
        ok = false;
    }
    return ok;
}

static bool compile_event_time(compiler_t *c, const char *file, vg_rule_state_t *st,
                               const vg_ynode_t *evt)
{
    if (!vg_rc_check_map(c, file, evt, &EVENT_TIME))
        return false;
    bool ok = true;
    const vg_ynode_t *f = vg_ynode_get(evt, "field");
    if (f)
        ok = get_path(c, file, f, "field", &st->time_field) && ok;
    return get_duration(c, file, evt, "lateness", false, evt, &st->lateness_ms) && ok;
}

/* ---- summary and fingerprint ---- */

static void group_text(char *buf, size_t size, const vg_path_t *g, size_t n)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, "%s%s", i ? "," : " by ", g[i].text);
    }
}

static void duration_text(char *buf, size_t size, int64_t ms)
{
    for (size_t i = 0; i < N(UNITS); i++)
        if (ms % UNITS[i].ms == 0) {
            snprintf(buf, size, "%lld%s", (long long)(ms / UNITS[i].ms), UNITS[i].unit);
            return;
        }
}

/* Writes the aggregation's part of the summary ("threshold 3 in 1d by
 * source") into sum; leaves sum empty for a plain rule. */
static void aggregate_summary(char *sum, size_t size, const vg_rule_state_t *st)
{
    char g[256], d[32];
    sum[0] = '\0';
    if (st->kind == VG_AGG_NONE)
        return;
    group_text(g, sizeof(g), st->group, st->ngroup);
    duration_text(d, sizeof(d), st->window_ms);
    switch (st->kind) {
    case VG_AGG_THRESHOLD:
        snprintf(sum, size, "threshold %u in %s%s", st->count, d, g);
        break;
    case VG_AGG_SPIKE:
        snprintf(sum, size, "spike x%g (min %u) per %s over %u windows%s", st->factor,
                 st->min_count, d, st->baseline, g);
        break;
    case VG_AGG_FIRST_SEEN:
        snprintf(sum, size, "first_seen %s within %s%s", st->field.text, d, g);
        break;
    default:
        snprintf(sum, size, "absence %s%s", d, g);
        break;
    }
}

/* Sets st's summary and fingerprint. The one-line summary doubles as the
 * canonical form hashed into the fingerprint, with what it leaves out. */
static bool summarise(compiler_t *c, vg_rule_state_t *st)
{
    char sum[512], g[256], d[32];
    aggregate_summary(sum, sizeof(sum), st);
    size_t l = strlen(sum);
    if (st->out != VG_OUT_EACH) {
        /* throttle/digest without a group_by of their own use the
         * aggregation's. */
        group_text(g, sizeof(g), st->out_group_set ? st->out_group : st->group,
                   st->out_group_set ? st->nout_group : st->ngroup);
        duration_text(d, sizeof(d), st->out_window_ms);
        snprintf(sum + l, sizeof(sum) - l, "%s%s %s%s", l ? "; " : "",
                 st->out == VG_OUT_THROTTLE ? "throttle" : "digest", d, g);
    }
    st->summary = vg_rc_strndup(c, sum, strlen(sum));
    char canon[1024];
    snprintf(canon, sizeof(canon), "%s|%s|%lld|%u|%u|%u|%u", sum,
             st->time_field.text ? st->time_field.text : "", (long long)st->lateness_ms,
             st->max_keys, st->out_max_keys, st->digest_max_items, (unsigned)st->kind);
    st->fingerprint = vg_hash_finish(vg_hash64(VG_HASH_INIT, canon, strlen(canon)));
    return st->summary != NULL;
}

/* ---- the rule's settings ---- */

/* Parses threshold / spike / first_seen / absence, throttle / digest and
 * event_time of rule node n into r->state (left NULL for a stateless
 * rule). */
bool vg_rc_compile_state(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *n)
{
    bool ok = true;
    size_t ai = 0;
    const vg_ynode_t *agg = NULL;
    const vg_ynode_t *aggk = vg_rc_find_one_of(c, file, n, &ONE_AGGREGATION, &ai, &agg, &ok);
    const vg_ynode_t *thr = vg_ynode_get(n, "throttle"), *dig = vg_ynode_get(n, "digest");
    const vg_ynode_t *evt = vg_ynode_get(n, "event_time");
    if (!agg && !thr && !dig) {
        if (evt) {
            ERR(c, file, evt,
                "'event_time' is only for stateful rules (with threshold, spike, first_seen, "
                "absence, throttle or digest)");
            return false;
        }
        return ok;
    }
    vg_rule_state_t *st = calloc(1, sizeof(*st));
    if (!st)
        return vg_rc_oom(c), false;
    r->state = st;
    st->max_keys = DEFAULT_MAX_KEYS;
    st->out_max_keys = DEFAULT_MAX_KEYS;
    st->digest_max_items = 100;
    if (thr && dig) {
        ERR(c, file, dig, "a rule takes 'throttle' or 'digest', not both");
        ok = false;
    }
    if (agg && !vg_rc_check_map(c, file, agg, &AGGREGATES[ai].spec)) {
        ok = false;
        /* throttle/digest are checked against the aggregation's settings,
         * which are missing: skip them rather than report nonsense. */
        thr = dig = NULL;
    } else if (agg) {
        ok = compile_aggregate(c, file, st, &AGGREGATES[ai], agg, ok);
    }
    if (thr || dig)
        ok = compile_output(c, file, st, thr, dig, aggk, ok);
    if (evt)
        ok = compile_event_time(c, file, st, evt) && ok;
    return ok && summarise(c, st);
}
