/* The pre-decode skip. Where every enabled rule needs at least one keyword
 * hit to hold, an event in which no term can hit matches nothing; most
 * news events are such events for a short term list, and decoding them
 * (a json-c tree per event) was half of `vigil scan`'s time. So the raw
 * bytes are scanned first, and an event is counted without being decoded
 * when all of these hold:
 *
 *  - it is ASCII and has no \u escape: then each decoded string is its
 *    raw bytes with the escapes \" \\ \/ \b \f \n \r \t replaced by one
 *    character each, which is '"', '\\', '/', a control character or
 *    white space. Terms match the normalised, gap-collapsed text (DESIGN
 *    rules 2 and 7-9). On ASCII the normaliser only lower-cases A-Z (NFKC,
 *    the diacritics, invisible characters, apostrophes and dashes of rules
 *    8-9 are all non-ASCII; `case: sensitive` does not even lower-case),
 *    and the gap collapse turns a run of white space holding at most one
 *    '-' into one ' ' and keeps the dashes of a longer run, each one where
 *    it was. So the collapsed text's bytes other than ' ' are the decoded
 *    bytes in order, and a run of a term's collapsed text without ' ',
 *    '-', '"', '\\', '/', '*' or control characters is, up to case, a run
 *    of the raw event's bytes wherever the term hits. A caseless scan of
 *    the raw bytes for the longest such run of every term misses no hit
 *    (a term with a byte >= 0x80 in its collapsed text cannot hit ASCII
 *    text at all and is left out). Numbers, true, false and null, which
 *    the scanner sees as their JSON text, keep their raw text too
 *    (integers long enough to be clamped by the decoder excepted);
 *  - none of those runs occurs in it;
 *  - it is a JSON object the decoder accepts within the depth limit
 *    (vg_json_plain_object, which follows the decoder's grammar), so
 *    that a broken event is still decoded and reported as before.
 *
 * "Needs a hit" (needs_hit) counts the hits of a condition's terms and of
 * both lists of a `near` (which needs one hit from each); an `except` only
 * discards hits, so its terms need not be looked for. This file depends
 * on the ASCII reading of the normaliser and the gap collapse above
 * (tests/test_workpool.c compares the skip with full evaluation on every
 * test corpus and on rules that use each feature of the matching). */
#include "prefilter_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

/* More literals than this and the database costs more to build (~0.3 s
 * for 15,000) than the skip saves on a run, and short names among them
 * occur in nearly every event anyway. */
#define PREFILTER_MAX_TERMS 4096

struct vg_prefilter {
    hs_database_t *db; /* NULL: no term to look for (every valid event skips) */
};

/* ---- which rules can be skipped ---- */

/* True when cd can only hold on an event with at least one keyword hit
 * in it (of one of its text conditions' terms). */
static bool needs_hit(const vg_cond_t *cd, unsigned depth)
{
    if (depth > 200)
        return false;
    switch (cd->kind) {
    case VG_COND_ALL:
        for (size_t i = 0; i < cd->nkids; i++)
            if (needs_hit(cd->kids[i], depth + 1))
                return true;
        return false;
    case VG_COND_ANY:
        for (size_t i = 0; i < cd->nkids; i++)
            if (!needs_hit(cd->kids[i], depth + 1))
                return false;
        return true; /* an empty 'any' never holds */
    case VG_COND_MACRO: return needs_hit(cd->kids[0], depth + 1);
    case VG_COND_TEXT: return !cd->text_all || cd->nterms > 0;
    case VG_COND_NOT:
    case VG_COND_FIELD: return false;
    }
    return false;
}

static void mark_refs(const vg_term_ref_t *refs, size_t n, bool *used)
{
    for (size_t i = 0; i < n; i++)
        used[refs[i].term] = true;
}

/* Marks in used[] every term of cd's text conditions that can give it a
 * hit: its terms and a near's two lists (under a 'not' too: looking for
 * more terms only skips less). */
static void mark_terms(const vg_cond_t *cd, bool *used, unsigned depth)
{
    if (depth > 200)
        return;
    mark_refs(cd->terms, cd->nterms, used);
    mark_refs(cd->near[0], cd->nnear[0], used);
    mark_refs(cd->near[1], cd->nnear[1], used);
    for (size_t i = 0; i < cd->nkids; i++)
        mark_terms(cd->kids[i], used, depth + 1);
}

/* ---- what to look for ---- */

/* A byte that a run of a term's collapsed text stops at: a word gap
 * (' ', and '-', which stands for one in the text unless in a run of
 * dashes), what an escape can produce, and a phrase's '*'. */
static bool breaks_run(unsigned char c)
{
    return c == ' ' || c == '-' || c == '"' || c == '\\' || c == '/' || c == '*' || c < 0x20;
}

/* The longest run of text[0..n) without a breaking byte: *at, returns its
 * length (0: none). For a phrase with '*' words the '*' also breaks. */
static size_t longest_run(const char *text, size_t n, size_t *at)
{
    size_t best = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !breaks_run((unsigned char)text[i]))
            continue;
        if (i - start > best) {
            best = i - start;
            *at = start;
        }
        start = i + 1;
    }
    return best;
}

static bool has_high_byte(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

typedef struct lits {
    const char **pats;
    size_t *lens;
    unsigned *flags, *ids;
    unsigned n;
} lits_t;

/* Adds the run of term t to look for; false when there is none (a user
 * regex, or a term without a literal run). A term that normalises to
 * nothing hits nowhere: nothing to look for. */
static bool add_term(lits_t *l, const vg_term_t *t)
{
    if (t->kind == VG_TERM_NEVER)
        return true;
    if (t->kind == VG_TERM_USER_REGEX)
        return false;
    const char *text = t->kind == VG_TERM_LITERAL ? t->pattern : t->words;
    size_t n = t->kind == VG_TERM_LITERAL ? t->pattern_len : strlen(t->words);
    if (has_high_byte(text, n))
        return true; /* cannot hit ASCII text */
    size_t at = 0, len = longest_run(text, n, &at);
    if (len == 0)
        return false;
    l->pats[l->n] = text + at;
    l->lens[l->n] = len;
    l->flags[l->n] = HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH;
    l->ids[l->n] = l->n;
    l->n++;
    return true;
}

/* The terms of the enabled stateless rules into l; false when some rule
 * can hold without a hit or a term cannot be looked for. */
static bool collect_terms(const vg_ruleset_t *rs, lits_t *l)
{
    bool *used = calloc(rs->nterms ? rs->nterms : 1, sizeof(bool));
    if (!used)
        return false;
    bool ok = true;
    for (size_t i = 0; ok && i < rs->nrules; i++) {
        const vg_rule_t *r = rs->rules[i];
        if (!r->enabled || r->state)
            continue;
        ok = needs_hit(r->match, 0);
        mark_terms(r->match, used, 0);
    }
    for (size_t t = 0; ok && t < rs->nterms; t++)
        if (used[t])
            ok = add_term(l, &rs->terms[t]) && l->n <= PREFILTER_MAX_TERMS;
    free(used);
    return ok;
}

vg_prefilter_t *vg_prefilter_new(const vg_ruleset_t *rs)
{
    size_t nt = rs->nterms ? rs->nterms : 1;
    lits_t l = {.pats = calloc(nt, sizeof(char *)), .lens = calloc(nt, sizeof(size_t)),
                .flags = calloc(nt, sizeof(unsigned)), .ids = calloc(nt, sizeof(unsigned))};
    vg_prefilter_t *pf = calloc(1, sizeof(*pf));
    bool ok = pf && l.pats && l.lens && l.flags && l.ids && collect_terms(rs, &l);
    hs_compile_error_t *ce = NULL;
    if (ok && l.n &&
        hs_compile_lit_multi(l.pats, l.flags, l.ids, l.lens, l.n, HS_MODE_BLOCK, NULL, &pf->db,
                             &ce) != HS_SUCCESS) {
        hs_free_compile_error(ce);
        ok = false;
    }
    free(l.pats);
    free(l.lens);
    free(l.flags);
    free(l.ids);
    if (!ok) {
        vg_prefilter_destroy(pf);
        return NULL;
    }
    return pf;
}

void vg_prefilter_destroy(vg_prefilter_t *pf)
{
    if (!pf)
        return;
    if (pf->db)
        hs_free_database(pf->db);
    free(pf);
}

int vg_prefilter_alloc_scratch(const vg_prefilter_t *pf, hs_scratch_t **scratch)
{
    if (!pf->db)
        return 0;
    return hs_alloc_scratch(pf->db, scratch) == HS_SUCCESS ? 0 : -1;
}

/* ---- the skip ---- */

static bool all_ascii(const char *s, size_t n)
{
    const uint64_t highs = UINT64_C(0x8080808080808080);
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        acc |= x;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & highs) == 0;
}

static int on_hit(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                  void *ctx)
{
    (void)id, (void)from, (void)to, (void)flags;
    *(bool *)ctx = true;
    return 1; /* one is enough */
}

bool vg_prefilter_skip(const vg_prefilter_t *pf, hs_scratch_t *scratch, const char *buf,
                       size_t len, const vg_event_limits_t *limits)
{
    if (len > limits->max_bytes || len > UINT32_MAX || !all_ascii(buf, len))
        return false;
    if (pf->db) {
        bool hit = false;
        hs_error_t e = hs_scan(pf->db, buf, (unsigned)len, 0, scratch, on_hit, &hit);
        if (hit || (e != HS_SUCCESS && e != HS_SCAN_TERMINATED))
            return false;
    }
    return vg_json_plain_object(buf, len, limits->max_depth);
}

/* ---- the decoder's grammar, without building anything ----
 * Each function takes the index of a token's first byte and returns the
 * index after it, or 0 when it is not one the decoder accepts (or not
 * plain); 0 can never be the end of a token. */

#define PLAIN_MAX_DEPTH 1024

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    return i;
}

static size_t plain_string(const char *s, size_t i, size_t n)
{
    i++;
    for (;;) {
        i = vg_json_skip_plain(s, i, n);
        while (i < n && s[i] != '"' && s[i] != '\\' && (unsigned char)s[i] >= 0x20)
            i++;
        if (i >= n)
            return 0;
        if (s[i] == '"')
            return i + 1;
        if (s[i] != '\\' || i + 1 >= n || !strchr("\"\\/bfnrt", s[i + 1]) || !s[i + 1])
            return 0; /* a control character, \u, or not an escape */
        i += 2;
    }
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t plain_number(const char *s, size_t i, size_t n)
{
    if (s[i] == '-')
        i++;
    size_t d = i;
    while (i < n && is_digit(s[i]))
        i++;
    size_t digits = i - d;
    if (digits == 0 || (s[d] == '0' && digits > 1))
        return 0;
    bool integer = true;
    if (i < n && s[i] == '.') {
        size_t f = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == f)
            return 0;
        integer = false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e = i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == e)
            return 0;
        integer = false;
    }
    /* 19 digits and more may be clamped (INT64_MAX has 19): its text
     * would not be the raw one. */
    return integer && digits > 18 ? 0 : i;
}

static size_t plain_word(const char *s, size_t i, size_t n)
{
    size_t st = i;
    while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
        i++;
    size_t l = i - st;
    bool ok = (l == 4 && memcmp(s + st, "true", 4) == 0) ||
              (l == 5 && memcmp(s + st, "false", 5) == 0) ||
              (l == 4 && memcmp(s + st, "null", 4) == 0);
    return ok ? i : 0;
}

/* A key, ':' and the white space after it, at s[i]. */
static size_t plain_key(const char *s, size_t i, size_t n)
{
    if (i >= n || s[i] != '"' || !(i = plain_string(s, i, n)))
        return 0;
    i = skip_ws(s, i, n);
    return i < n && s[i] == ':' ? skip_ws(s, i + 1, n) : 0;
}

bool vg_json_plain_object(const char *s, size_t n, size_t max_depth)
{
    uint64_t in_object[PLAIN_MAX_DEPTH / 64] = {0}; /* bit d: level d + 1 is an object */
    size_t depth = 0, i = skip_ws(s, 0, n);
    if (i >= n || s[i] != '{')
        return false;
    for (;;) {
        /* A value starts at i. */
        if (i >= n)
            return false;
        char c = s[i];
        if (c == '{' || c == '[') {
            if (depth >= max_depth || depth >= PLAIN_MAX_DEPTH)
                return false;
            uint64_t bit = UINT64_C(1) << (depth % 64);
            in_object[depth / 64] = c == '{' ? in_object[depth / 64] | bit
                                             : in_object[depth / 64] & ~bit;
            depth++;
            i = skip_ws(s, i + 1, n);
            if (i < n && s[i] == (c == '{' ? '}' : ']')) {
                i++;
                depth--;
            } else {
                if (c == '{' && !(i = plain_key(s, i, n)))
                    return false;
                continue;
            }
        } else {
            i = c == '"'                  ? plain_string(s, i, n)
                : c == '-' || is_digit(c) ? plain_number(s, i, n)
                                          : plain_word(s, i, n);
            if (!i)
                return false;
        }
        /* After a value: close what ends here, or go on to the next one. */
        for (;;) {
            if (depth == 0)
                return skip_ws(s, i, n) == n;
            bool obj = (in_object[(depth - 1) / 64] >> ((depth - 1) % 64)) & 1;
            i = skip_ws(s, i, n);
            if (i < n && s[i] == ',') {
                i = skip_ws(s, i + 1, n);
                if (obj && !(i = plain_key(s, i, n)))
                    return false;
                break;
            }
            if (i >= n || s[i] != (obj ? '}' : ']'))
                return false;
            i++;
            depth--;
        }
    }
}
