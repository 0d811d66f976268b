/* Evaluation: each text field the rules search is normalised (vigil/norm.h:
 * case folded, and unfolded for case-sensitive terms), its word gaps
 * collapsed (vg_gap_collapse), and scanned once by the ruleset's vectorscan
 * databases; word boundaries, literal dashes and '*' suffixes are checked
 * on the match offsets. Rules are then evaluated as boolean trees over
 * those hits and the event's fields. */
#include "vigil/scanner.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"
#include "decimal.h"
#include "grow.h"
#include "strbuf.h"
#include "vigil/norm.h"
#include "vigil/utf8.h"

#define N_DBS 6

/* One reading of the value being scanned: [0] case-folded, [1] not. */
typedef struct view {
    vg_norm_t *norm;
    const char *n; /* the normalised value (the normaliser's) */
    size_t nlen;
    char *c;       /* the same, gap-collapsed */
    size_t clen, ccap;
    uint32_t *cmap; /* C offset → normalised offset, when hits need it */
    size_t cmap_cap;
    uint32_t *dashes; /* C positions of dash gaps */
    size_t ndashes, dcap;
} view_t;

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
    /* the value being scanned */
    view_t views[2];
    view_t *cur;
    const char *value;
    size_t value_len;
    uint32_t slot;
    uint32_t value_no;
    /* near conditions: stamp of the event they hold in, and the pair of
     * hits that makes them hold */
    uint32_t *near_gen;
    size_t *near_pair;
    bool *group_seen; /* 'all' over entities: one per item */
    size_t max_groups;
    /* leaf folding for field comparisons */
    char *fold;
    size_t fold_cap;
    const vg_rule_t **matched;
    size_t nmatched;
    const vg_event_t *ev; /* the event last evaluated */
    const vg_hit_t **evidence;
    const vg_term_ref_t **evidence_refs;
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
    hs_database_t *dbs[] = {rs->db_lit[0], rs->db_norm[0], rs->db_user[0],
                            rs->db_lit[1], rs->db_norm[1], rs->db_user[1]};
    for (size_t i = 0; i < N_DBS; i++)
        if (dbs[i] && hs_alloc_scratch(dbs[i], &sc->scratch) != HS_SUCCESS)
            goto fail;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < rs->nlit_more[k]; i++)
            if (hs_alloc_scratch(rs->db_lit_more[k][i], &sc->scratch) != HS_SUCCESS)
                goto fail;
    for (size_t i = 0; i < rs->nconds; i++)
        if (rs->conds[i]->re && hs_alloc_scratch(rs->conds[i]->re, &sc->scratch) != HS_SUCCESS)
            goto fail;
    size_t stamps = rs->nterms * (rs->nslots ? rs->nslots : 1);
    sc->hit_gen = calloc(stamps ? stamps : 1, sizeof(uint32_t));
    sc->matched = calloc(rs->nrules ? rs->nrules : 1, sizeof(*sc->matched));
    sc->near_gen = calloc(rs->nnear_conds + 1, sizeof(uint32_t));
    sc->near_pair = calloc(2 * rs->nnear_conds + 2, sizeof(size_t));
    for (size_t i = 0; i < rs->nconds; i++)
        if (rs->conds[i]->ngroups > sc->max_groups)
            sc->max_groups = rs->conds[i]->ngroups;
    sc->group_seen = calloc(sc->max_groups + 1, sizeof(bool));
    char err[256];
    for (int k = 0; k < 2; k++)
        if (!(sc->views[k].norm = vg_norm_new(err, sizeof(err))))
            goto fail;
    if (!sc->hit_gen || !sc->matched || !sc->near_gen || !sc->near_pair || !sc->group_seen)
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
    for (int k = 0; k < 2; k++) {
        vg_norm_destroy(sc->views[k].norm);
        free(sc->views[k].c);
        free(sc->views[k].cmap);
        free(sc->views[k].dashes);
    }
    free(sc->near_gen);
    free(sc->near_pair);
    free(sc->group_seen);
    free(sc->fold);
    free(sc->matched);
    free(sc->evidence);
    free(sc->evidence_refs);
    free(sc->export);
    free(sc);
}

const vg_ruleset_t *vg_scanner_ruleset(const vg_scanner_t *sc)
{
    return sc->rs;
}

/* ---- text scanning ---- */

static inline bool ascii_word(unsigned char b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '_';
}

/* A word boundary at pos of the collapsed text (rules 3, 10): ASCII on
 * both sides is decided here, the rest by the normaliser's classes. */
static bool boundary(const view_t *v, size_t pos)
{
    if (pos == 0 || pos >= v->clen)
        return true;
    unsigned char a = (unsigned char)v->c[pos - 1], b = (unsigned char)v->c[pos];
    if (a < 0x80 && b < 0x80)
        return !(ascii_word(a) && ascii_word(b));
    if ((a < 0x80 && !ascii_word(a)) || (b < 0x80 && !ascii_word(b)))
        return true;
    return vg_norm_boundary_at(v->c, v->clen, pos);
}

static bool word_before(const view_t *v, size_t pos)
{
    size_t l;
    return pos > 0 && vg_uchar_is_word(vg_utf8_decode_before(v->c, pos, &l));
}

static bool word_at(const view_t *v, size_t pos)
{
    size_t l;
    return pos < v->clen && vg_uchar_is_word(vg_utf8_decode(v->c + pos, v->clen - pos, &l));
}

/* Rule 3 at the start of a match of t, with rules 11-12's exceptions. */
static bool start_ok(const view_t *v, const vg_term_t *t, size_t pos)
{
    if (t->free_before)
        return true;
    return t->first_word ? boundary(v, pos) : !word_before(v, pos);
}

static bool end_ok(const view_t *v, const vg_term_t *t, size_t pos)
{
    if (t->free_after)
        return true;
    return t->last_word ? boundary(v, pos) : !word_at(v, pos);
}

/* The end of the word characters that a '*' takes after pos (rule 4). */
static size_t star_end(const view_t *v, size_t pos)
{
    size_t l;
    while (pos < v->clen && !boundary(v, pos)) {
        vg_utf8_decode(v->c + pos, v->clen - pos, &l);
        pos += l;
    }
    return pos;
}

static bool is_dash_gap(const view_t *v, size_t pos)
{
    size_t lo = 0, hi = v->ndashes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v->dashes[mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < v->ndashes && v->dashes[lo] == pos;
}

/* The gaps of a literal match at start that t needs to be dashes. */
static bool dashes_ok(const view_t *v, const vg_term_t *t, size_t start)
{
    for (size_t i = 0; i < t->nlit_dash; i++)
        if (!is_dash_gap(v, start + t->lit_dash[i]))
            return false;
    return true;
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
    /* Offsets into the scanned text for now; scan_view maps them back to
     * the value's bytes once its scans are done. */
    sc->hits[sc->nhits++] = (vg_hit_t){.term = term,
                                       .slot = sc->slot,
                                       .value_no = sc->value_no,
                                       .value = sc->value,
                                       .value_len = sc->value_len,
                                       .offset = start,
                                       .length = end - start};
}

/* Whether a match of term id is kept: the first per field, or every one
 * of a term that an except or near condition looks at. */
static inline bool wanted(const vg_scanner_t *sc, unsigned id)
{
    return sc->rs->terms[id].all_occ ||
           sc->hit_gen[(size_t)id * sc->rs->nslots + sc->slot] != sc->gen;
}

static int on_literal(unsigned id, unsigned long long from, unsigned long long to,
                      unsigned flags, void *ctx)
{
    vg_scanner_t *sc = ctx;
    if (!wanted(sc, id))
        return 0;
    const view_t *v = sc->cur;
    const vg_term_t *t = &sc->rs->terms[id];
    size_t start = (size_t)to - t->pattern_len, end = (size_t)to;
    if (!start_ok(v, t, start) || (t->nlit_dash && !dashes_ok(v, t, start)))
        return 0;
    if (t->star)
        end = star_end(v, end);
    else if (!end_ok(v, t, end))
        return 0;
    record_hit(sc, id, start, end);
    return 0;
}

static bool lit_dash_at(const vg_term_t *t, size_t ti)
{
    for (size_t i = 0; i < t->nlit_dash; i++)
        if (t->lit_dash[i] == ti)
            return true;
    return false;
}

/* Checks a phrase with '*' words at a candidate start, word by word: each
 * stem must follow, a '*' word takes the word characters after its stem,
 * and words are separated by the single ' ' of a gap (a dash gap where
 * the term has a literal dash). */
static int on_norm_regex(unsigned id, unsigned long long from, unsigned long long to,
                         unsigned flags, void *ctx)
{
    vg_scanner_t *sc = ctx;
    const view_t *v = sc->cur;
    const vg_term_t *t = &sc->rs->terms[id];
    if (!wanted(sc, id) || !start_ok(v, t, (size_t)from))
        return 0;
    const char *w0 = t->words, *w = w0;
    size_t pos = (size_t)from;
    bool star = false;
    while (*w) {
        const char *we = strchr(w, ' ');
        size_t wl = we ? (size_t)(we - w) : strlen(w);
        star = wl > 1 && w[wl - 1] == '*';
        size_t stem = wl - (star ? 1 : 0);
        if (pos + stem > v->clen || memcmp(v->c + pos, w, stem) != 0)
            return 0;
        pos += stem;
        if (star)
            pos = star_end(v, pos);
        if (!we)
            break;
        if (pos >= v->clen || v->c[pos] != ' ' ||
            (lit_dash_at(t, (size_t)(we - w0)) && !is_dash_gap(v, pos)))
            return 0;
        pos++;
        w = we + 1;
    }
    if (!star && !end_ok(v, t, pos))
        return 0;
    record_hit(sc, id, (size_t)from, pos);
    return 0;
}

static int on_user_regex(unsigned id, unsigned long long from, unsigned long long to,
                         unsigned flags, void *ctx)
{
    vg_scanner_t *sc = ctx;
    if (!wanted(sc, id))
        return 0;
    /* Without start-of-match support the match is reported where it ends. */
    if (sc->rs->terms[id].no_som)
        from = to;
    record_hit(sc, id, (size_t)from, (size_t)to);
    return 0;
}

static bool grow_buf(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    void *nb = realloc(*buf, need * elem);
    if (!nb)
        return false;
    *buf = nb;
    *cap = need;
    return true;
}

/* Hits [first, mid) hold offsets into v's collapsed text, [mid, nhits)
 * into its normalised text: each gets its normalised span and, through
 * the normaliser's map, its span in the value. Collapsing again, now with
 * a map, costs less than keeping a map for every value when few match. */
static void map_hits(vg_scanner_t *sc, view_t *v, size_t first, size_t mid)
{
    if (first == sc->nhits)
        return;
    if (first < mid) {
        size_t nd, dcap = v->dcap;
        if (!grow_buf((void **)&v->cmap, &v->cmap_cap, v->nlen + 1, sizeof(uint32_t)) ||
            vg_gap_collapse(v->n, v->nlen, v->c, v->cmap, &v->dashes, &nd, &dcap) == SIZE_MAX) {
            sc->failed = true;
            return;
        }
        v->dcap = dcap;
    }
    for (size_t i = first; i < sc->nhits; i++) {
        vg_hit_t *h = &sc->hits[i];
        size_t a = h->offset, b = h->offset + h->length;
        if (i < mid) {
            /* A match never ends inside a run; one that ends with a run
             * (a literal dash) takes all of it. */
            size_t e = b > a && (v->c[b - 1] == ' ' || v->c[b - 1] == '-') ? v->cmap[b]
                                                                          : v->cmap[b - 1] + 1;
            a = v->cmap[a];
            b = b > h->offset ? e : a;
        }
        h->nstart = a;
        h->nend = b;
        size_t s, e;
        vg_norm_span(v->norm, a, b, &s, &e);
        h->offset = s;
        h->length = e - s;
    }
}

static void scan_db(vg_scanner_t *sc, hs_database_t *db, const char *s, size_t n,
                    match_event_handler fn)
{
    if (db && hs_scan(db, s, (unsigned)n, 0, sc->scratch, fn, sc) != HS_SUCCESS)
        sc->failed = true;
}

/* Scans value s with the databases of reading k (0: folded, 1: cased). */
static void scan_view(vg_scanner_t *sc, int k, const char *s, size_t n)
{
    const vg_ruleset_t *rs = sc->rs;
    view_t *v = &sc->views[k];
    char err[128];
    if (vg_norm_run(v->norm, s, n, k ? VG_NORM_CASE_SENSITIVE : 0, &v->n, &v->nlen, err,
                    sizeof(err)) != 0 ||
        v->nlen > UINT32_MAX - 1) {
        sc->failed = true;
        return;
    }
    sc->cur = v;
    size_t first = sc->nhits;
    if (rs->db_lit[k] || rs->db_norm[k]) {
        if (!grow_buf((void **)&v->c, &v->ccap, v->nlen + 1, 1)) {
            sc->failed = true;
            return;
        }
        v->clen = vg_gap_collapse(v->n, v->nlen, v->c, NULL, &v->dashes, &v->ndashes, &v->dcap);
        if (v->clen == SIZE_MAX) {
            sc->failed = true;
            return;
        }
        scan_db(sc, rs->db_lit[k], v->c, v->clen, on_literal);
        for (size_t i = 0; i < rs->nlit_more[k]; i++)
            scan_db(sc, rs->db_lit_more[k][i], v->c, v->clen, on_literal);
        scan_db(sc, rs->db_norm[k], v->c, v->clen, on_norm_regex);
    }
    size_t mid = sc->nhits;
    /* Regexes see the normalised text with its white space intact. */
    scan_db(sc, rs->db_user[k], v->n, v->nlen, on_user_regex);
    map_hits(sc, v, first, mid);
}

static void check_near(vg_scanner_t *sc, size_t first);

static void scan_value(vg_scanner_t *sc, const char *s, size_t n)
{
    const vg_ruleset_t *rs = sc->rs;
    if (n > UINT32_MAX / 4) {
        sc->failed = true;
        return;
    }
    sc->value = s;
    sc->value_len = n;
    sc->value_no++;
    size_t first = sc->nhits;
    for (int k = 0; k < 2; k++)
        if (rs->db_lit[k] || rs->db_norm[k] || rs->db_user[k])
            scan_view(sc, k, s, n);
    if (rs->nnear_conds && sc->nhits - first >= 2)
        check_near(sc, first);
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
        memset(sc->near_gen, 0, (rs->nnear_conds + 1) * sizeof(uint32_t));
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
    if (n > 64 || !vg_decimal_syntax(s, n))
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

/* The leaf as 'matches' sees it: normalised as text is (rule 5). */
static const char *norm_leaf(vg_scanner_t *sc, json_object *o, size_t *len)
{
    size_t n;
    const char *s = leaf_text(o, &n), *out;
    char err[128];
    if (!s)
        return NULL;
    if (vg_norm_run(sc->views[0].norm, s, n, 0, &out, len, err, sizeof(err)) != 0) {
        sc->failed = true;
        return NULL;
    }
    return out;
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
        t = norm_leaf(sc, leaf, &len);
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

static const vg_term_ref_t *find_ref(const vg_term_ref_t *refs, size_t n, uint32_t term)
{
    return n ? bsearch(&term, refs, n, sizeof(vg_term_ref_t), cmp_term_ref) : NULL;
}

/* Rule 14: h lies within a match of one of cd's exception terms in the
 * same field value. */
static bool excepted(const vg_scanner_t *sc, const vg_cond_t *cd, const vg_hit_t *h)
{
    if (!cd->nexcept)
        return false;
    for (size_t i = 0; i < sc->nhits; i++) {
        const vg_hit_t *e = &sc->hits[i];
        if (e->value_no == h->value_no && e->slot == h->slot && e->nstart <= h->nstart &&
            e->nend >= h->nend && find_ref(cd->except, cd->nexcept, e->term))
            return true;
    }
    return false;
}

/* The reference of cd that hit h supports, or NULL: a term of cd in one
 * of its fields, not discarded by an exception. */
static const vg_term_ref_t *supports(const vg_scanner_t *sc, const vg_cond_t *cd,
                                     const vg_hit_t *h)
{
    if (!has_slot(cd, h->slot))
        return NULL;
    const vg_term_ref_t *r = find_ref(cd->terms, cd->nterms, h->term);
    return r && !excepted(sc, cd, h) ? r : NULL;
}

/* 'all' where an item may be an entity (several terms) or exceptions
 * apply: every item needs a hit that supports it. */
static bool eval_groups(const vg_scanner_t *sc, const vg_cond_t *cd)
{
    bool *seen = sc->group_seen;
    memset(seen, 0, cd->ngroups * sizeof(bool));
    size_t left = cd->ngroups;
    for (size_t i = 0; i < sc->nhits && left; i++) {
        const vg_term_ref_t *r = supports(sc, cd, &sc->hits[i]);
        /* A term written in several items counts for each. */
        for (; r && r > cd->terms && r[-1].term == r->term;)
            r--;
        for (; r && r < cd->terms + cd->nterms && r->term == sc->hits[i].term; r++)
            if (!seen[r->group]) {
                seen[r->group] = true;
                left--;
            }
    }
    return left == 0;
}

static bool eval_text(const vg_scanner_t *sc, const vg_cond_t *cd)
{
    if (cd->is_near)
        return sc->near_gen[cd->near_idx] == sc->gen;
    if (cd->nexcept || (cd->text_all && cd->ngroups != cd->nterms)) {
        if (cd->text_all)
            return eval_groups(sc, cd);
        for (size_t i = 0; i < sc->nhits; i++)
            if (supports(sc, cd, &sc->hits[i]))
                return true;
        return false;
    }
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
                find_ref(cd->terms, cd->nterms, sc->hits[i].term))
                return true;
        return false;
    }
    for (size_t i = 0; i < cd->nterms; i++)
        if (term_hit(sc, cd, cd->terms[i].term))
            return true;
    return false;
}

/* A hit of one of near's lists (side 0 or 1) that an exception does not
 * discard. */
static bool near_side(const vg_scanner_t *sc, const vg_cond_t *cd, int side, const vg_hit_t *h)
{
    return find_ref(cd->near[side], cd->nnear[side], h->term) && !excepted(sc, cd, h);
}

/* Rule 15 for one near condition over the hits [first, nhits) of the
 * value just scanned: a pair that does not overlap, in order if asked,
 * with at most 'within' words between. */
static bool near_holds(vg_scanner_t *sc, const vg_cond_t *cd, size_t first)
{
    const view_t *v = &sc->views[sc->rs->terms[cd->near[0][0].term].cs];
    for (size_t i = first; i < sc->nhits; i++) {
        const vg_hit_t *a = &sc->hits[i];
        if (!near_side(sc, cd, 0, a))
            continue;
        for (size_t j = first; j < sc->nhits; j++) {
            const vg_hit_t *b = &sc->hits[j];
            bool a_first = a->nend <= b->nstart;
            if (i == j || !(a_first || b->nend <= a->nstart) || (cd->ordered && !a_first) ||
                !near_side(sc, cd, 1, b))
                continue;
            const vg_hit_t *x = a_first ? a : b, *y = a_first ? b : a;
            if (vg_norm_count_words(v->n + x->nend, y->nstart - x->nend) <= cd->within) {
                sc->near_pair[2 * cd->near_idx] = i;
                sc->near_pair[2 * cd->near_idx + 1] = j;
                return true;
            }
        }
    }
    return false;
}

static void check_near(vg_scanner_t *sc, size_t first)
{
    const vg_ruleset_t *rs = sc->rs;
    for (size_t k = 0; k < rs->nnear_conds; k++) {
        const vg_cond_t *cd = rs->near_conds[k];
        if (sc->near_gen[k] != sc->gen && has_slot(cd, sc->slot) && near_holds(sc, cd, first))
            sc->near_gen[k] = sc->gen;
    }
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

static void add_evidence(vg_scanner_t *sc, const vg_hit_t *h, const vg_term_ref_t *ref, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        if (sc->evidence[i] == h ||
            (sc->evidence[i]->term == h->term && sc->evidence[i]->slot == h->slot))
            return; /* one match per term and field: the first */
    if (*n == sc->evidence_cap) {
        size_t ncap = sc->evidence_cap ? sc->evidence_cap * 2 : 16;
        const vg_hit_t **ne = realloc(sc->evidence, ncap * sizeof(*ne));
        if (!ne)
            return;
        sc->evidence = ne;
        const vg_term_ref_t **nr = realloc(sc->evidence_refs, ncap * sizeof(*nr));
        if (!nr)
            return;
        sc->evidence_refs = nr;
        sc->evidence_cap = ncap;
    }
    sc->evidence[*n] = h;
    sc->evidence_refs[*n] = ref;
    (*n)++;
}

/* The evidence of a near condition: the pair that made it hold. */
static void collect_near(vg_scanner_t *sc, const vg_cond_t *cd, size_t *n)
{
    for (int side = 0; side < 2; side++) {
        size_t i = sc->near_pair[2 * cd->near_idx + (size_t)side];
        if (i >= sc->nhits)
            continue;
        const vg_hit_t *h = &sc->hits[i];
        const vg_term_ref_t *r = find_ref(cd->near[side], cd->nnear[side], h->term);
        if (r)
            add_evidence(sc, h, r, n);
    }
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
        if (cd->is_near) {
            collect_near(sc, cd, n);
            return;
        }
        for (size_t i = 0; i < sc->nhits; i++) {
            const vg_term_ref_t *r = supports(sc, cd, &sc->hits[i]);
            if (r)
                add_evidence(sc, &sc->hits[i], r, n);
        }
        return;
    default: return; /* 'not' supports nothing positive */
    }
}

size_t vg_scanner_evidence(vg_scanner_t *sc, const vg_rule_t *rule, const vg_hit_t *const **out,
                           const vg_term_ref_t *const **refs)
{
    size_t n = 0;
    collect(sc, rule->match, &n, 0);
    *out = sc->evidence;
    *refs = sc->evidence_refs;
    return n;
}

size_t vg_scanner_match_evidence(vg_scanner_t *sc, size_t i, const vg_evidence_t **out)
{
    const vg_rule_t *r = vg_scanner_match(sc, i);
    *out = NULL;
    if (!r)
        return 0;
    const vg_hit_t *const *hits;
    const vg_term_ref_t *const *refs;
    size_t n = vg_scanner_evidence(sc, r, &hits, &refs);
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
                                        .list = refs[k]->list,
                                        .entity = refs[k]->entity,
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
        ms->matches[k].evidence = ms->evidence ? ms->evidence + ms->first[k] : NULL;
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
