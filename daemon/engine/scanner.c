/* Evaluation: each text field the rules search is folded, its white space
 * collapsed, and scanned once by the ruleset's vectorscan databases; word
 * boundaries and '*' suffixes are checked on the match offsets. Rules are
 * then evaluated as boolean trees over those hits and the event's fields. */
#include "vigil/scanner.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "grow.h"
#include "strbuf.h"
#include "vigil/utf8.h"

/* The value of a field condition on the event of stamp gen. */
#define FIELD_MEMO 64
typedef struct field_memo {
    const vg_cond_t *cd;
    uint32_t gen;
    bool value;
} field_memo_t;

struct vg_scanner {
    const vg_ruleset_t *rs;
    field_memo_t memo[FIELD_MEMO];
    hs_scratch_t *scratch;
    uint32_t gen;
    uint32_t *hit_gen; /* nterms * nslots stamps: hit in this event? */
    vg_hit_t *hits;
    size_t nhits, hits_cap;
    /* buffers for the value being scanned */
    char *norm;
    uint32_t *map;
    size_t norm_len, norm_cap;
    const char *value;
    size_t value_len;
    uint32_t slot;
    /* leaf folding for field comparisons */
    char *fold;
    size_t fold_cap;
    const vg_rule_t **matched;
    size_t nmatched;
    const vg_event_t *ev; /* the event last evaluated */
    const vg_hit_t **evidence;
    const char **evidence_lists;
    size_t evidence_cap;
    vg_evidence_t *export; /* vg_scanner_match_evidence */
    size_t export_cap;
    bool failed;
};

vg_scanner_t *vg_scanner_new(const vg_ruleset_t *rs)
{
    vg_scanner_t *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return NULL;
    sc->rs = rs;
    hs_database_t *dbs[] = {rs->db_lit, rs->db_norm, rs->db_user};
    for (size_t i = 0; i < 3; i++)
        if (dbs[i] && hs_alloc_scratch(dbs[i], &sc->scratch) != HS_SUCCESS)
            goto fail;
    for (size_t i = 0; i < rs->nconds; i++)
        if (rs->conds[i]->re && hs_alloc_scratch(rs->conds[i]->re, &sc->scratch) != HS_SUCCESS)
            goto fail;
    size_t stamps = rs->nterms * (rs->nslots ? rs->nslots : 1);
    sc->hit_gen = calloc(stamps ? stamps : 1, sizeof(uint32_t));
    sc->matched = calloc(rs->nrules ? rs->nrules : 1, sizeof(*sc->matched));
    if (!sc->hit_gen || !sc->matched)
        goto fail;
    return sc;
fail:
    vg_scanner_destroy(sc);
    return NULL;
}

void vg_scanner_destroy(vg_scanner_t *sc)
{
    if (!sc)
        return;
    if (sc->scratch)
        hs_free_scratch(sc->scratch);
    free(sc->hit_gen);
    free(sc->hits);
    free(sc->norm);
    free(sc->map);
    free(sc->fold);
    free(sc->matched);
    free(sc->evidence);
    free(sc->evidence_lists);
    free(sc->export);
    free(sc);
}

const vg_ruleset_t *vg_scanner_ruleset(const vg_scanner_t *sc)
{
    return sc->rs;
}

/* ---- text scanning ---- */

static bool word_before(const char *s, size_t pos)
{
    if (pos == 0)
        return false;
    size_t l;
    return vg_unicode_is_word(vg_utf8_decode_before(s, pos, &l));
}

static bool word_at(const char *s, size_t n, size_t pos, size_t *len)
{
    if (pos >= n)
        return false;
    return vg_unicode_is_word(vg_utf8_decode(s + pos, n - pos, len));
}

static void record_hit(vg_scanner_t *sc, uint32_t term, size_t start, size_t end)
{
    const vg_ruleset_t *rs = sc->rs;
    sc->hit_gen[(size_t)term * rs->nslots + sc->slot] = sc->gen;
    if (sc->nhits == sc->hits_cap) {
        size_t ncap = sc->hits_cap ? sc->hits_cap * 2 : 64;
        vg_hit_t *nh = realloc(sc->hits, ncap * sizeof(vg_hit_t));
        if (!nh) {
            sc->failed = true;
            return;
        }
        sc->hits = nh;
        sc->hits_cap = ncap;
    }
    /* Offsets into the folded text for now; scan_value maps them back to
     * the value's bytes once its scans are done. */
    sc->hits[sc->nhits++] = (vg_hit_t){term, sc->slot, sc->value, sc->value_len, start,
                                       end - start};
}

static inline bool already(const vg_scanner_t *sc, unsigned id)
{
    return sc->hit_gen[(size_t)id * sc->rs->nslots + sc->slot] == sc->gen;
}

static int on_literal(unsigned id, unsigned long long from, unsigned long long to,
                      unsigned flags, void *ctx)
{
    vg_scanner_t *sc = ctx;
    if (already(sc, id))
        return 0;
    const vg_term_t *t = &sc->rs->terms[id];
    size_t start = (size_t)to - t->pattern_len, end = (size_t)to, l;
    if (word_before(sc->norm, start))
        return 0;
    if (t->star) {
        while (word_at(sc->norm, sc->norm_len, end, &l))
            end += l;
    } else if (word_at(sc->norm, sc->norm_len, end, &l)) {
        return 0;
    }
    record_hit(sc, id, start, end);
    return 0;
}

/* Checks a phrase with '*' words at a candidate start, word by word: each
 * stem must follow, a '*' word takes the word characters after its stem,
 * and words are separated by the single space of normalised text. */
static int on_norm_regex(unsigned id, unsigned long long from, unsigned long long to,
                         unsigned flags, void *ctx)
{
    vg_scanner_t *sc = ctx;
    if (already(sc, id) || word_before(sc->norm, (size_t)from))
        return 0;
    const char *w = sc->rs->terms[id].words;
    size_t pos = (size_t)from, l;
    bool star = false;
    while (*w) {
        const char *we = strchr(w, ' ');
        size_t wl = we ? (size_t)(we - w) : strlen(w);
        star = wl > 1 && w[wl - 1] == '*';
        size_t stem = wl - (star ? 1 : 0);
        if (pos + stem > sc->norm_len || memcmp(sc->norm + pos, w, stem) != 0)
            return 0;
        pos += stem;
        if (star)
            while (word_at(sc->norm, sc->norm_len, pos, &l))
                pos += l;
        if (!we)
            break;
        if (pos >= sc->norm_len || sc->norm[pos] != ' ')
            return 0;
        pos++;
        w = we + 1;
    }
    if (!star && word_at(sc->norm, sc->norm_len, pos, &l))
        return 0;
    record_hit(sc, id, (size_t)from, pos);
    return 0;
}

static int on_user_regex(unsigned id, unsigned long long from, unsigned long long to,
                         unsigned flags, void *ctx)
{
    vg_scanner_t *sc = ctx;
    if (already(sc, id))
        return 0;
    /* Without start-of-match support the match is reported where it ends. */
    if (sc->rs->terms[id].no_som)
        from = to;
    record_hit(sc, id, (size_t)from, (size_t)to);
    return 0;
}

static bool ensure_norm(vg_scanner_t *sc, size_t n)
{
    size_t need = n * 3 + 1;
    if (need <= sc->norm_cap)
        return true;
    free(sc->norm);
    free(sc->map);
    sc->norm = malloc(need);
    sc->map = malloc((need + 1) * sizeof(uint32_t));
    sc->norm_cap = sc->norm && sc->map ? need : 0;
    return sc->norm_cap != 0;
}

/* Hits from first on hold offsets into the text folded with
 * collapse_space; turn them into byte offsets of the value s. Folding
 * again, now with the offset map, costs less than keeping a map for every
 * value when few values match. */
static void map_hits(vg_scanner_t *sc, size_t first, const char *s, size_t n, bool collapse_space)
{
    if (first == sc->nhits)
        return;
    vg_utf8_fold(s, n, collapse_space, sc->norm, sc->map);
    for (size_t i = first; i < sc->nhits; i++) {
        vg_hit_t *h = &sc->hits[i];
        size_t o0 = sc->map[h->offset], o1 = sc->map[h->offset + h->length];
        h->offset = o0;
        h->length = o1 - o0;
    }
}

static void scan_value(vg_scanner_t *sc, const char *s, size_t n)
{
    const vg_ruleset_t *rs = sc->rs;
    if (n > UINT32_MAX / 4 || !ensure_norm(sc, n)) {
        sc->failed = true;
        return;
    }
    sc->value = s;
    sc->value_len = n;
    if (rs->db_lit || rs->db_norm) {
        size_t first = sc->nhits;
        sc->norm_len = vg_utf8_fold(s, n, true, sc->norm, NULL);
        if (rs->db_lit && hs_scan(rs->db_lit, sc->norm, (unsigned)sc->norm_len, 0, sc->scratch,
                                  on_literal, sc) != HS_SUCCESS)
            sc->failed = true;
        if (rs->db_norm && hs_scan(rs->db_norm, sc->norm, (unsigned)sc->norm_len, 0, sc->scratch,
                                   on_norm_regex, sc) != HS_SUCCESS)
            sc->failed = true;
        map_hits(sc, first, s, n, true);
    }
    if (rs->db_user) {
        /* Regexes see case-folded text with its white space intact. */
        size_t first = sc->nhits;
        sc->norm_len = vg_utf8_fold(s, n, false, sc->norm, NULL);
        if (hs_scan(rs->db_user, sc->norm, (unsigned)sc->norm_len, 0, sc->scratch, on_user_regex,
                    sc) != HS_SUCCESS)
            sc->failed = true;
        map_hits(sc, first, s, n, false);
    }
}

/* The text a scalar is compared through: a string's value, or the JSON
 * text of a number, boolean or null. Objects have none. */
static const char *leaf_text(json_object *o, size_t *len)
{
    switch (json_object_get_type(o)) {
    case json_type_string:
        *len = (size_t)json_object_get_string_len(o);
        return json_object_get_string(o);
    case json_type_object:
    case json_type_array: return NULL;
    default: {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        *len = strlen(s);
        return s;
    }
    }
}

static bool scan_leaf(json_object *leaf, void *arg)
{
    vg_scanner_t *sc = arg;
    size_t len;
    const char *s = leaf_text(leaf, &len);
    if (s)
        scan_value(sc, s, len);
    return false;
}

/* Prepares the evaluation of ev: every text field is scanned, or only
 * those with slots[s] set (the fields that stateful rules search). */
static void begin_event_slots(vg_scanner_t *sc, const vg_event_t *ev, const bool *slots);

static void begin_event(vg_scanner_t *sc, const vg_event_t *ev)
{
    begin_event_slots(sc, ev, NULL);
}

static void begin_event_slots(vg_scanner_t *sc, const vg_event_t *ev, const bool *slots)
{
    const vg_ruleset_t *rs = sc->rs;
    sc->ev = ev;
    sc->failed = false;
    sc->nhits = 0;
    sc->nmatched = 0;
    if (++sc->gen == 0) {
        /* The stamp wrapped: clear so old stamps cannot look current. */
        memset(sc->hit_gen, 0, rs->nterms * (rs->nslots ? rs->nslots : 1) * sizeof(uint32_t));
        memset(sc->memo, 0, sizeof(sc->memo));
        sc->gen = 1;
    }
    if (rs->nterms == 0)
        return;
    json_object *root = vg_event_json(ev);
    for (uint32_t s = 0; s < rs->nslots; s++) {
        if (slots && !slots[s])
            continue;
        sc->slot = s;
        vg_json_walk(root, rs->slot_path[s], rs->slot_npath[s], scan_leaf, sc);
    }
}

/* ---- field comparisons ---- */

/* A string that is entirely a decimal number: optional sign, digits with
 * an optional fraction, optional exponent. No spaces, hex, inf or nan. */
static bool parse_decimal(const char *s, size_t n, double *out)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (digits == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, ed++;
        if (ed == 0)
            return false;
    }
    if (i != n || n > 64)
        return false;
    char tmp[65];
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    return isfinite(*out);
}

static bool leaf_number(json_object *o, double *out)
{
    switch (json_object_get_type(o)) {
    case json_type_int:
    case json_type_double: *out = json_object_get_double(o); return isfinite(*out);
    case json_type_string:
        return parse_decimal(json_object_get_string(o), (size_t)json_object_get_string_len(o), out);
    default: return false;
    }
}

/* The fold of ASCII s[0..n) (A-Z lower-cased, what vg_utf8_fold does to
 * ASCII) into out; false at the first byte that is not ASCII. Field
 * values are mostly short codes ("news", "CN"), for which the general
 * fold costs more than the comparison that follows. */
static bool fold_ascii(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80)
            return false;
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 0x20 : c);
    }
    out[n] = '\0';
    return true;
}

static const char *fold_leaf(vg_scanner_t *sc, json_object *o, size_t *len)
{
    size_t n;
    const char *s = leaf_text(o, &n);
    if (!s)
        return NULL;
    if (n * 3 + 1 > sc->fold_cap) {
        char *nb = realloc(sc->fold, n * 3 + 1);
        if (!nb) {
            sc->failed = true;
            return NULL;
        }
        sc->fold = nb;
        sc->fold_cap = n * 3 + 1;
    }
    if (n <= 64 && fold_ascii(s, n, sc->fold))
        *len = n;
    else
        *len = vg_utf8_fold(s, n, false, sc->fold, NULL);
    return sc->fold;
}

static int on_any(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                  void *ctx)
{
    *(bool *)ctx = true;
    return 1; /* one match is enough: stop */
}

static int cmp_num(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct field_test {
    vg_scanner_t *sc;
    const vg_cond_t *cd;
} field_test_t;

static bool field_leaf(json_object *leaf, void *arg)
{
    vg_scanner_t *sc = ((field_test_t *)arg)->sc;
    const vg_cond_t *cd = ((field_test_t *)arg)->cd;
    double v;
    size_t len;
    const char *t;
    switch (cd->op) {
    case VG_OP_EXISTS: return true;
    case VG_OP_LT: return leaf_number(leaf, &v) && v < cd->opds[0].num;
    case VG_OP_LTE: return leaf_number(leaf, &v) && v <= cd->opds[0].num;
    case VG_OP_GT: return leaf_number(leaf, &v) && v > cd->opds[0].num;
    case VG_OP_GTE: return leaf_number(leaf, &v) && v >= cd->opds[0].num;
    case VG_OP_EQ:
        if (cd->opds[0].type == VG_OPD_NUMBER)
            return leaf_number(leaf, &v) && v == cd->opds[0].num;
        t = fold_leaf(sc, leaf, &len);
        return t && len == cd->opds[0].len && memcmp(t, cd->opds[0].text, len) == 0;
    case VG_OP_IN:
        if (cd->nnums && leaf_number(leaf, &v) &&
            bsearch(&v, cd->nums, cd->nnums, sizeof(double), cmp_num))
            return true;
        if (cd->set.count == 0)
            return false;
        t = fold_leaf(sc, leaf, &len);
        return t && vg_strmap_get(&cd->set, t, len) != NULL;
    case VG_OP_PREFIX:
        t = fold_leaf(sc, leaf, &len);
        return t && len >= cd->opds[0].len && memcmp(t, cd->opds[0].text, cd->opds[0].len) == 0;
    case VG_OP_SUFFIX:
        t = fold_leaf(sc, leaf, &len);
        return t && len >= cd->opds[0].len &&
               memcmp(t + len - cd->opds[0].len, cd->opds[0].text, cd->opds[0].len) == 0;
    case VG_OP_CONTAINS:
        t = fold_leaf(sc, leaf, &len);
        return t && memmem(t, len, cd->opds[0].text, cd->opds[0].len) != NULL;
    case VG_OP_MATCHES: {
        t = fold_leaf(sc, leaf, &len);
        if (!t || len > UINT32_MAX)
            return false;
        bool hit = false;
        hs_error_t e = hs_scan(cd->re, t, (unsigned)len, 0, sc->scratch, on_any, &hit);
        if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED)
            sc->failed = true;
        return hit;
    }
    }
    return false;
}

static int cmp_term_ref(const void *key, const void *elem)
{
    uint32_t k = *(const uint32_t *)key;
    const vg_term_ref_t *r = elem;
    return k < r->term ? -1 : k > r->term;
}

static bool has_slot(const vg_cond_t *cd, uint32_t slot)
{
    for (size_t i = 0; i < cd->nslots; i++)
        if (cd->slots[i] == slot)
            return true;
    return false;
}

static bool term_hit(const vg_scanner_t *sc, const vg_cond_t *cd, uint32_t term)
{
    const uint32_t *stamps = sc->hit_gen + (size_t)term * sc->rs->nslots;
    for (size_t s = 0; s < cd->nslots; s++)
        if (stamps[cd->slots[s]] == sc->gen)
            return true;
    return false;
}

static bool eval_text(const vg_scanner_t *sc, const vg_cond_t *cd)
{
    if (cd->text_all) {
        for (size_t i = 0; i < cd->nterms; i++)
            if (!term_hit(sc, cd, cd->terms[i].term))
                return false;
        return true;
    }
    /* 'any': walk whichever is shorter, the event's hits or the terms. */
    if (sc->nhits < cd->nterms) {
        for (size_t i = 0; i < sc->nhits; i++)
            if (has_slot(cd, sc->hits[i].slot) &&
                bsearch(&sc->hits[i].term, cd->terms, cd->nterms, sizeof(vg_term_ref_t),
                        cmp_term_ref))
                return true;
        return false;
    }
    for (size_t i = 0; i < cd->nterms; i++)
        if (term_hit(sc, cd, cd->terms[i].term))
            return true;
    return false;
}

/* A field condition on the event begun last. Its value is remembered for
 * the event: a macro such as "is news" is one condition that many rules
 * share, and evidence is found by evaluating a rule again. */
static bool eval_field(vg_scanner_t *sc, const vg_event_t *ev, const vg_cond_t *cd)
{
    field_memo_t *m = &sc->memo[((uintptr_t)cd / sizeof(vg_cond_t)) % FIELD_MEMO];
    if (m->cd == cd && m->gen == sc->gen && sc->ev == ev)
        return m->value;
    field_test_t ft = {sc, cd};
    bool found = vg_json_walk(vg_event_json(ev), cd->path, cd->npath, field_leaf, &ft);
    bool v = cd->op == VG_OP_EXISTS ? found == cd->exists : found;
    *m = (field_memo_t){cd, sc->gen, v};
    return v;
}

static bool eval_cond(vg_scanner_t *sc, const vg_event_t *ev, const vg_cond_t *cd)
{
    switch (cd->kind) {
    case VG_COND_ALL:
        for (size_t i = 0; i < cd->nkids; i++)
            if (!eval_cond(sc, ev, cd->kids[i]))
                return false;
        return true;
    case VG_COND_ANY:
        for (size_t i = 0; i < cd->nkids; i++)
            if (eval_cond(sc, ev, cd->kids[i]))
                return true;
        return false;
    case VG_COND_NOT: return !eval_cond(sc, ev, cd->kids[0]);
    case VG_COND_MACRO: return eval_cond(sc, ev, cd->kids[0]);
    case VG_COND_TEXT: return eval_text(sc, cd);
    case VG_COND_FIELD: return eval_field(sc, ev, cd);
    }
    return false;
}

/* Which enabled rules eval_rules evaluates. */
enum { EVAL_STATELESS = 1, EVAL_STATEFUL = 2 };

static int eval_failed(vg_scanner_t *sc, char *err, size_t err_size)
{
    if (!sc->failed)
        return 0;
    snprintf(err, err_size, "matching failed (out of memory or a vectorscan error)");
    return -1;
}

/* Appends the enabled rules of the kinds in which that hold on the event
 * begun last, in rule order. */
static void eval_rules(vg_scanner_t *sc, const vg_event_t *ev, unsigned which)
{
    const vg_ruleset_t *rs = sc->rs;
    for (size_t i = 0; i < rs->nrules; i++) {
        const vg_rule_t *r = rs->rules[i];
        unsigned kind = r->state ? EVAL_STATEFUL : EVAL_STATELESS;
        if (r->enabled && (kind & which) && eval_cond(sc, ev, r->match))
            sc->matched[sc->nmatched++] = r;
    }
}

int vg_scanner_eval(vg_scanner_t *sc, const vg_event_t *ev, char *err, size_t err_size)
{
    begin_event(sc, ev);
    /* A stateful rule's alerts come from the state step, in partition
     * order (vg_scanner_eval_all hands it the matches). */
    eval_rules(sc, ev, EVAL_STATELESS);
    return eval_failed(sc, err, err_size) ? -1 : (int)sc->nmatched;
}

int vg_scanner_eval_all(vg_scanner_t *sc, const vg_event_t *ev, size_t *nstateless, char *err,
                        size_t err_size)
{
    begin_event(sc, ev);
    eval_rules(sc, ev, EVAL_STATELESS);
    *nstateless = sc->nmatched;
    eval_rules(sc, ev, EVAL_STATEFUL);
    return eval_failed(sc, err, err_size) ? -1 : (int)sc->nmatched;
}

int vg_scanner_eval_stateful(vg_scanner_t *sc, const vg_event_t *ev, char *err, size_t err_size)
{
    begin_event_slots(sc, ev, sc->rs->stateful_slots);
    eval_rules(sc, ev, EVAL_STATEFUL);
    return eval_failed(sc, err, err_size) ? -1 : (int)sc->nmatched;
}

int vg_scanner_eval_rule(vg_scanner_t *sc, const vg_event_t *ev, const vg_rule_t *rule,
                         char *err, size_t err_size)
{
    begin_event(sc, ev);
    bool m = eval_cond(sc, ev, rule->match);
    if (eval_failed(sc, err, err_size))
        return -1;
    if (m)
        sc->matched[sc->nmatched++] = rule;
    return m ? 1 : 0;
}

const vg_rule_t *vg_scanner_match(const vg_scanner_t *sc, size_t i)
{
    return i < sc->nmatched ? sc->matched[i] : NULL;
}

/* ---- evidence ---- */

static void add_evidence(vg_scanner_t *sc, const vg_hit_t *h, const char *list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        if (sc->evidence[i] == h)
            return;
    if (*n == sc->evidence_cap) {
        size_t ncap = sc->evidence_cap ? sc->evidence_cap * 2 : 16;
        const vg_hit_t **ne = realloc(sc->evidence, ncap * sizeof(*ne));
        if (!ne)
            return;
        sc->evidence = ne;
        const char **nl = realloc(sc->evidence_lists, ncap * sizeof(*nl));
        if (!nl)
            return;
        sc->evidence_lists = nl;
        sc->evidence_cap = ncap;
    }
    sc->evidence[*n] = h;
    sc->evidence_lists[*n] = list;
    (*n)++;
}

/* Gathers the hits of keyword conditions that hold and that the rule's
 * truth rests on: not under a 'not', nor in a branch that was false. */
static void collect(vg_scanner_t *sc, const vg_cond_t *cd, size_t *n, unsigned depth)
{
    if (depth > 200 || !sc->ev || !eval_cond(sc, sc->ev, cd))
        return;
    switch (cd->kind) {
    case VG_COND_ALL:
    case VG_COND_ANY:
    case VG_COND_MACRO:
        for (size_t i = 0; i < cd->nkids; i++)
            collect(sc, cd->kids[i], n, depth + 1);
        return;
    case VG_COND_TEXT:
        for (size_t i = 0; i < sc->nhits; i++) {
            const vg_hit_t *h = &sc->hits[i];
            if (!has_slot(cd, h->slot))
                continue;
            const vg_term_ref_t *r =
                bsearch(&h->term, cd->terms, cd->nterms, sizeof(vg_term_ref_t), cmp_term_ref);
            if (r)
                add_evidence(sc, h, r->list, n);
        }
        return;
    default: return; /* 'not' supports nothing positive */
    }
}

size_t vg_scanner_evidence(vg_scanner_t *sc, const vg_rule_t *rule, const vg_hit_t *const **out,
                           const char ***lists)
{
    size_t n = 0;
    collect(sc, rule->match, &n, 0);
    *out = sc->evidence;
    *lists = sc->evidence_lists;
    return n;
}

size_t vg_scanner_match_evidence(vg_scanner_t *sc, size_t i, const vg_evidence_t **out)
{
    const vg_rule_t *r = vg_scanner_match(sc, i);
    *out = NULL;
    if (!r)
        return 0;
    const vg_hit_t *const *hits;
    const char **lists;
    size_t n = vg_scanner_evidence(sc, r, &hits, &lists);
    if (n > sc->export_cap) {
        vg_evidence_t *ne = realloc(sc->export, n * sizeof(*ne));
        if (!ne) {
            sc->failed = true;
            return 0;
        }
        sc->export = ne;
        sc->export_cap = n;
    }
    const vg_ruleset_t *rs = sc->rs;
    for (size_t k = 0; k < n; k++) {
        const vg_hit_t *h = hits[k];
        sc->export[k] = (vg_evidence_t){.field = rs->slot_text[h->slot],
                                        .term = rs->terms[h->term].text,
                                        .list = lists[k],
                                        .value = h->value,
                                        .value_len = h->value_len,
                                        .offset = h->offset,
                                        .length = h->length};
    }
    *out = sc->export;
    return n;
}

void vg_match_set_init(vg_match_set_t *ms)
{
    memset(ms, 0, sizeof(*ms));
}

void vg_match_set_reset(vg_match_set_t *ms)
{
    ms->n = 0;
    ms->nevidence = 0;
}

void vg_match_set_free(vg_match_set_t *ms)
{
    free(ms->matches);
    free(ms->first);
    free(ms->evidence);
    vg_match_set_init(ms);
}

/* True when cd has a keyword condition (that may give evidence). */
static bool has_text(const vg_cond_t *cd, unsigned depth)
{
    if (cd->kind == VG_COND_TEXT)
        return true;
    for (size_t i = 0; depth < 200 && i < cd->nkids; i++)
        if (has_text(cd->kids[i], depth + 1))
            return true;
    return false;
}

static int take_one(vg_match_set_t *ms, vg_scanner_t *sc, size_t i)
{
    const vg_evidence_t *evd = NULL;
    /* Finding evidence evaluates the rule again: not for a rule without
     * keywords, which has none (a stateful rule often is such a rule). */
    const vg_rule_t *r = vg_scanner_match(sc, i);
    size_t ne = r && has_text(r->match, 0) ? vg_scanner_match_evidence(sc, i, &evd) : 0;
    if (sc->failed)
        return -1;
    if (ms->n == ms->cap) {
        size_t ncap = ms->cap ? ms->cap * 2 : 16;
        vg_rule_match_t *nm = realloc(ms->matches, ncap * sizeof(*nm));
        if (!nm)
            return -1;
        ms->matches = nm;
        size_t *nf = realloc(ms->first, ncap * sizeof(*nf));
        if (!nf)
            return -1;
        ms->first = nf;
        ms->cap = ncap;
    }
    size_t old_cap = ms->evidence_cap;
    if (!vg_grow((void **)&ms->evidence, &ms->evidence_cap, ms->nevidence + ne,
                    sizeof(*ms->evidence)))
        return -1;
    if (ne)
        memcpy(ms->evidence + ms->nevidence, evd, ne * sizeof(*evd));
    ms->first[ms->n] = ms->nevidence;
    ms->matches[ms->n++] =
        (vg_rule_match_t){.rule = vg_scanner_match(sc, i), .nevidence = ne};
    ms->nevidence += ne;
    /* When the evidence array moved, point every match at it again. */
    for (size_t k = ms->evidence_cap != old_cap ? 0 : ms->n - 1; k < ms->n; k++)
        ms->matches[k].evidence = ms->evidence + ms->first[k];
    return 0;
}

int vg_match_set_take(vg_match_set_t *ms, vg_scanner_t *sc, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (take_one(ms, sc, i) != 0)
            return -1;
    return 0;
}

bool vg_scanner_failed(const vg_scanner_t *sc)
{
    return sc->failed;
}

/* ---- explain ---- */

static const char *op_name(vg_op_t op)
{
    static const char *const names[] = {"eq",  "in",  "prefix", "suffix", "contains", "matches",
                                        "lt",  "lte", "gt",     "gte",    "exists"};
    return names[op];
}

static void explain(vg_scanner_t *sc, const vg_event_t *ev, const vg_cond_t *cd, vg_strbuf_t *sb,
                    unsigned depth)
{
    if (depth > 64)
        return;
    bool v = eval_cond(sc, ev, cd);
    vg_strbuf_printf(sb, "    %*s%s:%u:%u: ", (int)depth * 2, "", cd->file, cd->line, cd->col);
    switch (cd->kind) {
    case VG_COND_ALL: vg_strbuf_puts(sb, "all"); break;
    case VG_COND_ANY: vg_strbuf_puts(sb, "any"); break;
    case VG_COND_NOT: vg_strbuf_puts(sb, "not"); break;
    case VG_COND_MACRO: vg_strbuf_printf(sb, "macro %s", cd->name); break;
    case VG_COND_TEXT: {
        vg_strbuf_printf(sb, "text %s [", cd->text_all ? "all" : "any");
        for (size_t i = 0; i < cd->nterms && i < 5; i++)
            vg_strbuf_printf(sb, "%s\"%s\"", i ? ", " : "", sc->rs->terms[cd->terms[i].term].text);
        if (cd->nterms > 5)
            vg_strbuf_printf(sb, ", … %zu more", cd->nterms - 5);
        vg_strbuf_puts(sb, "] in [");
        for (size_t i = 0; i < cd->nslots; i++)
            vg_strbuf_printf(sb, "%s%s", i ? ", " : "", sc->rs->slot_text[cd->slots[i]]);
        vg_strbuf_puts(sb, "]");
        break;
    }
    case VG_COND_FIELD:
        vg_strbuf_printf(sb, "field %s %s", cd->path_text, op_name(cd->op));
        if (cd->op == VG_OP_EXISTS)
            vg_strbuf_printf(sb, " %s", cd->exists ? "true" : "false");
        else if (cd->nopds == 1)
            vg_strbuf_printf(sb, " %s", cd->opds[0].text);
        else if (cd->op == VG_OP_IN)
            vg_strbuf_printf(sb, " [%zu values]", cd->nopds);
        break;
    }
    vg_strbuf_printf(sb, " -> %s\n", v ? "true" : "false");
    if (cd->kind == VG_COND_MACRO || cd->kind == VG_COND_NOT || cd->kind == VG_COND_ALL ||
        cd->kind == VG_COND_ANY)
        for (size_t i = 0; i < cd->nkids; i++)
            explain(sc, ev, cd->kids[i], sb, depth + 1);
}

char *vg_scanner_explain(vg_scanner_t *sc, const vg_event_t *ev, const vg_rule_t *rule)
{
    vg_strbuf_t sb;
    vg_strbuf_init(&sb);
    explain(sc, ev, rule->match, &sb, 0);
    if (vg_strbuf_failed(&sb)) {
        vg_strbuf_free(&sb);
        return NULL;
    }
    return vg_strbuf_detach(&sb, NULL);
}
