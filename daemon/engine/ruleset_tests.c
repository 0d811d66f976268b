/* Tests embedded in rules (`tests:`): events that must match or not
 * (match / no_match), and for stateful rules sequences of events with the
 * alerts they must raise. Events are kept as JSON text, so that `vigil
 * test` runs them through the same decoder as real events. */
#include <math.h>
#include <stdlib.h>

#include "ruleset_int.h"
#include "strbuf.h"

static const char *const TEST_KEYS[] = {"match", "no_match", "sequences"};
static const char *const SEQ_KEYS[] = {"name", "events", "expect"};
static const char *const EXPECT_KEYS[] = {"at",           "kind",       "group",        "count",
                                          "window_start", "window_end", "suppressed",   "field",
                                          "value",        "baseline",   "factor",       "last_seen",
                                          "partial",      "items",      "items_dropped"};

/* ---- YAML to JSON ---- */

/* True when s is a JSON number, allowing a leading '+' (dropped). */
static bool json_number_text(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return false;
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

static void number_to_json(vg_strbuf_t *sb, const vg_ynode_t *n)
{
    if (json_number_text(n->str, n->len)) {
        /* As written, so big integers keep every digit. */
        size_t skip = n->str[0] == '+';
        vg_strbuf_append(sb, n->str + skip, n->len - skip);
        return;
    }
    /* YAML spellings JSON lacks (such as 0x1F or 0o17): the value. */
    if (isfinite(n->num)) {
        if (n->num == floor(n->num) && fabs(n->num) < 1e15)
            vg_strbuf_printf(sb, "%.0f", n->num);
        else
            vg_strbuf_printf(sb, "%.17g", n->num);
        return;
    }
    /* JSON has no infinity or NaN: keep the text. */
    vg_strbuf_json_string(sb, n->str, n->len);
}

/* Writes a YAML node as JSON (for embedded test events). */
static void node_to_json(vg_strbuf_t *sb, const vg_ynode_t *n)
{
    switch (n->kind) {
    case VG_YNODE_SCALAR:
        switch (n->type) {
        case VG_YSCALAR_NULL:
            vg_strbuf_puts(sb, "null");
            return;
        case VG_YSCALAR_BOOL:
            vg_strbuf_puts(sb, n->boolean ? "true" : "false");
            return;
        case VG_YSCALAR_INT:
        case VG_YSCALAR_FLOAT:
            number_to_json(sb, n);
            return;
        default:
            vg_strbuf_json_string(sb, n->str, n->len);
            return;
        }
    case VG_YNODE_SEQ:
    case VG_YNODE_MAP: {
        bool map = n->kind == VG_YNODE_MAP;
        vg_strbuf_putc(sb, map ? '{' : '[');
        for (size_t i = 0; i < n->count; i++) {
            if (i)
                vg_strbuf_putc(sb, ',');
            if (map) {
                vg_strbuf_json_string(sb, n->items[2 * i]->str, n->items[2 * i]->len);
                vg_strbuf_putc(sb, ':');
            }
            node_to_json(sb, map ? n->items[2 * i + 1] : n->items[i]);
        }
        vg_strbuf_putc(sb, map ? '}' : ']');
        return;
    }
    }
}

/* n as JSON text in *json (malloc'ed, *len bytes); false after vg_rc_oom(). */
static bool to_json(compiler_t *c, const vg_ynode_t *n, char **json, size_t *len)
{
    vg_strbuf_t sb;
    vg_strbuf_init(&sb);
    node_to_json(&sb, n);
    if (vg_strbuf_failed(&sb)) {
        vg_strbuf_free(&sb);
        vg_rc_oom(c);
        return false;
    }
    *json = vg_strbuf_detach(&sb, len);
    return true;
}

/* A test event as JSON: 1, or 0 after reporting an event that is not a
 * map, or -1 after vg_rc_oom(). */
static int event_json(compiler_t *c, const char *file, const vg_ynode_t *ev, char **json,
                      size_t *len)
{
    if (ev->kind != VG_YNODE_MAP) {
        ERR(c, file, ev, "a test event must be a map like {title: \"...\"}, got %s",
            vg_ynode_describe(ev));
        return 0;
    }
    return to_json(c, ev, json, len) ? 1 : -1;
}

/* ---- sequences ---- */

static bool sequence_events(compiler_t *c, const char *file, vg_rule_seq_t *s,
                            const vg_ynode_t *evs)
{
    s->events = calloc(evs->count, sizeof(char *));
    s->lens = calloc(evs->count, sizeof(size_t));
    s->ev_lines = calloc(evs->count, sizeof(unsigned));
    if (!s->events || !s->lens || !s->ev_lines)
        return vg_rc_oom(c), false;
    bool ok = true;
    for (size_t j = 0; j < evs->count && !c->oom; j++) {
        int r = event_json(c, file, evs->items[j], &s->events[s->nevents], &s->lens[s->nevents]);
        if (r <= 0) {
            ok = false;
            continue;
        }
        s->ev_lines[s->nevents++] = evs->items[j]->line;
    }
    return ok;
}

/* The expected alerts are kept as JSON for `vigil test` to compare; here
 * only their keys are checked. */
static bool sequence_expect(compiler_t *c, const char *file, vg_rule_seq_t *s,
                            const vg_ynode_t *exp)
{
    bool ok = true;
    for (size_t j = 0; j < exp->count; j++) {
        const vg_ynode_t *e = exp->items[j];
        if (e->kind != VG_YNODE_MAP) {
            ERR(c, file, e, "an expected alert is a map such as {count: 3, group: SMIC}, got %s",
                vg_ynode_describe(e));
            ok = false;
            continue;
        }
        size_t before = vg_diags_errors(c->diags);
        vg_rc_check_keys(c, file, e, EXPECT_KEYS, N(EXPECT_KEYS), "an expected alert");
        ok = ok && vg_diags_errors(c->diags) == before;
    }
    s->expect_line = exp->line;
    return to_json(c, exp, &s->expect, &s->expect_len) && ok;
}

/* One sequence, {name, events, expect}, into s. */
static bool compile_sequence(compiler_t *c, const char *file, vg_rule_seq_t *s, const vg_ynode_t *q)
{
    vg_rc_check_keys(c, file, q, SEQ_KEYS, N(SEQ_KEYS), "a test sequence");
    s->line = q->line;
    s->name = vg_rc_get_string(c, file, q, "name", false, q);
    const vg_ynode_t *evs = vg_ynode_get(q, "events"), *exp = vg_ynode_get(q, "expect");
    if (!evs || evs->kind != VG_YNODE_SEQ || evs->count == 0) {
        ERR(c, file, evs ? evs : q, "a sequence needs 'events': a non-empty list of events");
        return false;
    }
    if (!exp || exp->kind != VG_YNODE_SEQ) {
        ERR(c, file, exp ? exp : q,
            "a sequence needs 'expect': the list of alerts the events must raise, in order "
            "(write 'expect: []' for none)");
        return false;
    }
    bool ok = sequence_events(c, file, s, evs);
    if (c->oom)
        return false;
    return sequence_expect(c, file, s, exp) && ok;
}

/* tests.sequences: [{name, events: [event…], expect: [alert…]}] */
static bool compile_sequences(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *l)
{
    if (!r->state) {
        ERR(c, file, l,
            "'sequences' test stateful rules; this rule has no threshold, spike, first_seen, "
            "absence, throttle or digest (use match/no_match)");
        return false;
    }
    if (l->kind != VG_YNODE_SEQ) {
        ERR(c, file, l, "'sequences' takes a list of {events: [...], expect: [...]}, got %s",
            vg_ynode_describe(l));
        return false;
    }
    r->seqs = calloc(l->count ? l->count : 1, sizeof(vg_rule_seq_t));
    if (!r->seqs)
        return vg_rc_oom(c), false;
    bool ok = true;
    for (size_t i = 0; i < l->count && !c->oom; i++) {
        const vg_ynode_t *q = l->items[i];
        if (q->kind != VG_YNODE_MAP) {
            ERR(c, file, q, "a sequence is a map {name, events, expect}, got %s",
                vg_ynode_describe(q));
            ok = false;
            continue;
        }
        ok = compile_sequence(c, file, &r->seqs[r->nseqs++], q) && ok;
    }
    return ok && !c->oom;
}

/* ---- match / no_match ---- */

static size_t count_events(const vg_ynode_t *t)
{
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        const vg_ynode_t *l = vg_ynode_get(t, pass ? "no_match" : "match");
        if (l && l->kind == VG_YNODE_SEQ)
            total += l->count;
    }
    return total;
}

/* The events of l (match: or no_match:) into r->tests. */
static bool test_events(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *l,
                        bool expect_match)
{
    if (l->kind != VG_YNODE_SEQ) {
        ERR(c, file, l, "'%s' takes a list of events, got %s", expect_match ? "match" : "no_match",
            vg_ynode_describe(l));
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < l->count; i++) {
        vg_rule_test_case_t *tc = &r->tests[r->ntests];
        int res = event_json(c, file, l->items[i], &tc->json, &tc->len);
        if (res < 0)
            return false;
        if (res == 0) {
            ok = false;
            continue;
        }
        tc->expect_match = expect_match;
        tc->line = l->items[i]->line;
        r->ntests++;
    }
    return ok;
}

bool vg_rc_compile_tests(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *t)
{
    static const map_spec_t spec = {"tests", "{match: [events], no_match: [events]}", "tests",
                                    TEST_KEYS, N(TEST_KEYS)};
    if (!vg_rc_check_map(c, file, t, &spec))
        return false;
    size_t total = count_events(t);
    r->tests = calloc(total ? total : 1, sizeof(vg_rule_test_case_t));
    if (!r->tests)
        return vg_rc_oom(c), false;
    bool ok = true;
    for (int pass = 0; pass < 2; pass++) {
        const vg_ynode_t *l = vg_ynode_get(t, pass ? "no_match" : "match");
        if (l && !test_events(c, file, r, l, pass == 0)) {
            ok = false;
            if (c->oom)
                return false;
        }
    }
    const vg_ynode_t *seqs = vg_ynode_get(t, "sequences");
    if (seqs)
        ok = compile_sequences(c, file, r, seqs) && ok;
    return ok;
}
