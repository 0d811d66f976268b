/* Keyword terms: each distinct term of the ruleset is interned once and
 * becomes one vectorscan pattern; after the rules are compiled, the terms
 * of each kind are built into one database.
 *
 *   "sanction"      literal over folded, space-collapsed text
 *   "sanction*"     the same literal; the scanner checks the word start
 *   "export* ban"   a phrase with a '*' word before its last word: a
 *                   regex finds candidates, the scanner checks the words
 *   "/ab+c/"        a user regex over folded text */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ruleset_int.h"
#include "strbuf.h"
#include "vigil/norm.h"
#include "vigil/utf8.h"

#define MAX_TERM_BYTES 4096
#define MAX_TERMS 2000000

void vg_rc_regex_error(compiler_t *c, const char *file, unsigned line, unsigned col,
                       const char *pattern, const hs_compile_error_t *ce)
{
    vg_rc_err_at(
        c, file, line, col,
        "regular expression /%s/ cannot be compiled: %s (vigil uses the Hyperscan subset of "
        "PCRE: no back-references or look-behind)",
        pattern, ce && ce->message ? ce->message : "unknown error");
}

/* What every term must be, whatever its kind. */
static bool term_text_ok(compiler_t *c, const item_t *it)
{
    if (it->len == 0) {
        vg_rc_err_at(c, it->file, it->line, it->col, "empty keyword term");
        return false;
    }
    if (it->len > MAX_TERM_BYTES) {
        vg_rc_err_at(c, it->file, it->line, it->col, "keyword term of %zu bytes exceeds %d bytes",
                     it->len, MAX_TERM_BYTES);
        return false;
    }
    if (memchr(it->text, '\0', it->len)) {
        vg_rc_err_at(c, it->file, it->line, it->col, "keyword term contains a NUL character");
        return false;
    }
    return true;
}

vg_norm_t *vg_rc_norm(compiler_t *c)
{
    if (!c->norm) {
        char err[256];
        c->norm = vg_norm_new(err, sizeof(err));
        if (!c->norm)
            vg_diags_add(c->diags, VG_DIAG_ERROR, NULL, 0, 0, "cannot normalise terms: %s", err);
    }
    return c->norm;
}

/* The end of the inline option group that starts at p[i] ("(?i)",
 * "(?-i)", "(?i:"), or 0 when there is none there. */
static size_t inline_option_at(const char *p, size_t len, size_t i)
{
    if (i + 2 >= len || p[i] != '(' || p[i + 1] != '?')
        return 0;
    size_t j = i + 2;
    while (j < len && (p[j] == '-' || (p[j] >= 'a' && p[j] <= 'z') || (p[j] >= 'A' && p[j] <= 'Z')))
        j++;
    if (j == i + 2 || j >= len || (p[j] != ')' && p[j] != ':'))
        return 0;
    /* (?P<name>…) and friends have no ':' or ')' right after letters. */
    return j + 1;
}

bool vg_rc_regex_flags_ok(compiler_t *c, const char *file, unsigned line, unsigned col,
                          const char *pat, size_t len)
{
    bool in_class = false;
    for (size_t i = 0; i < len; i++) {
        if (pat[i] == '\\') {
            i++;
            continue;
        }
        if (in_class) {
            in_class = pat[i] != ']';
            continue;
        }
        if (pat[i] == '[') {
            in_class = true;
            if (i + 1 < len && pat[i + 1] == ']')
                i++; /* "[]…]": the first ']' is literal */
            continue;
        }
        size_t e = inline_option_at(pat, len, i);
        if (e) {
            vg_rc_err_at(c, file, line, col,
                         "inline option '%.*s' in a regular expression is not allowed: case is "
                         "chosen per condition with 'case: sensitive' (default: insensitive), "
                         "and the other options are not supported",
                         (int)(e - i), pat + i);
            return false;
        }
    }
    return true;
}

/* A regex that tells upper from lower case, in a condition whose text is
 * case-folded: it matches (or fails) whatever the case of the text. */
static void warn_case_regex(compiler_t *c, const item_t *it, const char *pat, size_t len)
{
    static const char *const hints[] = {"A-Z", "\\p{Lu}", "\\p{Lt}", "[:upper:]", "\\p{Upper}"};
    for (size_t k = 0; k < N(hints); k++) {
        size_t hl = strlen(hints[k]);
        for (size_t i = 0; i + hl <= len; i++)
            if (memcmp(pat + i, hints[k], hl) == 0) {
                vg_diags_add(c->diags, VG_DIAG_WARNING, it->file, it->line, it->col,
                             "regular expression /%.*s/ tells case apart ('%s'), but the "
                             "condition ignores case: it matches text of either case (add "
                             "'case: sensitive' to the condition if case matters)",
                             (int)len, pat, hints[k]);
                return;
            }
    }
}

/* "/…/": the pattern as written, compiled once here so that its error
 * names the term's place (the database build could only name the term). */
static bool user_regex_term(compiler_t *c, const item_t *it, vg_term_t *t, vg_strbuf_t *key)
{
    t->kind = VG_TERM_USER_REGEX;
    t->pattern_len = it->len - 2;
    t->pattern = vg_rc_strndup(c, it->text + 1, t->pattern_len);
    if (!t->pattern)
        return false;
    if (t->pattern_len == 0) {
        vg_rc_err_at(c, it->file, it->line, it->col, "empty regular expression '//'");
        return false;
    }
    if (!vg_rc_regex_flags_ok(c, it->file, it->line, it->col, t->pattern, t->pattern_len))
        return false;
    if (!t->cs)
        warn_case_regex(c, it, t->pattern, t->pattern_len);
    unsigned fl = (t->cs ? 0 : HS_FLAG_CASELESS) | HS_FLAG_UTF8 | HS_FLAG_UCP;
    /* Start of match gives the evidence its offset, but vectorscan cannot
     * track it for some patterns: those are matched without, and the
     * scanner reports such a match where it ends. */
    unsigned som = fl | HS_FLAG_SOM_LEFTMOST;
    const char *pat = t->pattern;
    vg_rc_where_t w = {"this regular expression", it->file, it->line, it->col};
    char *msg = NULL;
    int expr, r = vg_rc_hs_compile(c, &w, &(vg_rc_patterns_t){&pat, &som, NULL, NULL, 1, false},
                                   NULL, &msg, &expr);
    if (r == 1) {
        free(msg);
        r = vg_rc_hs_compile(c, &w, &(vg_rc_patterns_t){&pat, &fl, NULL, NULL, 1, false}, NULL,
                             &msg, &expr);
        if (r == 1)
            vg_rc_regex_error(c, it->file, it->line, it->col, t->pattern,
                              &(hs_compile_error_t){msg, expr});
        free(msg);
        if (r != 0)
            return false;
        t->no_som = true;
    }
    if (r != 0)
        return false;
    vg_strbuf_puts(key, "R");
    vg_strbuf_append(key, t->pattern, t->pattern_len);
    return true;
}

/* A term as text is matched (rules 2, 7-9): normalised, gap-collapsed and
 * trimmed. Returns the buffer (to free) with the term at [*start, *end);
 * the dash gaps of the collapsed text are in *dashes. NULL after
 * reporting, or with *nothing set when the term normalises to nothing. */
static char *norm_term(compiler_t *c, const item_t *it, bool cs, size_t *start, size_t *end,
                       uint32_t **dashes, size_t *nd, bool *nothing)
{
    vg_norm_t *nm = vg_rc_norm(c);
    const char *nt;
    size_t nl, dcap = 0;
    char err[256];
    *nothing = false;
    if (!nm)
        return NULL;
    if (vg_norm_run(nm, it->text, it->len, cs ? VG_NORM_CASE_SENSITIVE : 0, &nt, &nl, err,
                    sizeof(err)) != 0) {
        vg_rc_err_at(c, it->file, it->line, it->col, "cannot normalise the term: %s", err);
        return NULL;
    }
    char *buf = malloc(nl + 1);
    size_t n = buf ? vg_gap_collapse(nt, nl, buf, NULL, dashes, nd, &dcap) : SIZE_MAX;
    if (n == SIZE_MAX) {
        free(buf);
        vg_rc_oom(c);
        return NULL;
    }
    if (nl == 0) {
        *nothing = true;
        return buf;
    }
    size_t s = 0;
    /* Leading and trailing white space goes; a dash there stays literal. */
    while (s < n && buf[s] == ' ' && !(*nd && (*dashes)[0] == s))
        s++;
    while (n > s && buf[n - 1] == ' ' && !(*nd && (*dashes)[*nd - 1] == n - 1))
        n--;
    if (n == s) {
        vg_rc_err_at(c, it->file, it->line, it->col, "keyword term is only white space");
        free(buf);
        return NULL;
    }
    *start = s;
    *end = n;
    return buf;
}

/* Checks each word of w[0, len) for a '*' suffix: *inner_star when one
 * ends a word before the last. False after reporting a lone '*'. */
static bool check_stars(compiler_t *c, const item_t *it, const char *w, size_t len,
                        bool *inner_star)
{
    bool bad = false;
    size_t ws = 0;
    *inner_star = false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && w[i] != ' ')
            continue;
        if (i - ws == 1 && w[ws] == '*')
            bad = true;
        else if (i > ws && w[i - 1] == '*' && i != len)
            *inner_star = true;
        ws = i + 1;
    }
    if (bad)
        vg_rc_err_at(c, it->file, it->line, it->col,
                     "'*' must end a word (as in 'sanction*'); a lone '*' matches any word");
    return !bad;
}

/* '?' or a '*' that does not end a word: wildcards of other tools, here
 * literal characters (rule 6). */
static void warn_wildcards(compiler_t *c, const item_t *it, const char *w, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        bool star_inside = w[i] == '*' && i + 1 < len && w[i + 1] != ' ';
        if (w[i] == '?' || star_inside) {
            vg_diags_add(c->diags, VG_DIAG_WARNING, it->file, it->line, it->col,
                         "'%c' in the term '%.*s' is a literal character, not a wildcard ('*' "
                         "only ends a word, as in 'sanction*'; write a /regex/ for more)",
                         w[i], (int)it->len, it->text);
            return;
        }
    }
}

static bool is_word_at(const char *w, size_t len, size_t pos)
{
    size_t l;
    return pos < len && vg_uchar_is_word(vg_utf8_decode(w + pos, len - pos, &l));
}

static bool is_word_before(const char *w, size_t pos)
{
    size_t l;
    return pos > 0 && vg_uchar_is_word(vg_utf8_decode_before(w, pos, &l));
}

/* The gaps of w that must be a dash in the text: a dash run of the term
 * that is not between two word characters (rule 2; "U.S.-China"). */
static bool literal_dashes(compiler_t *c, vg_term_t *t, const char *w, size_t len,
                           const uint32_t *dashes, size_t nd, size_t off)
{
    for (size_t i = 0; i < nd; i++) {
        if (dashes[i] < off || dashes[i] >= off + len)
            continue;
        size_t p = dashes[i] - off;
        if (is_word_before(w, p) && is_word_at(w, len, p + 1))
            continue;
        uint32_t *nl = realloc(t->lit_dash, (t->nlit_dash + 1) * sizeof(uint32_t));
        if (!nl)
            return vg_rc_oom(c), false;
        t->lit_dash = nl;
        t->lit_dash[t->nlit_dash++] = (uint32_t)p;
    }
    return true;
}

/* Rules 3, 11 and 12: what the first and last characters of w ask of the
 * text around a match. */
static void term_edges(vg_term_t *t, const char *w, size_t len)
{
    size_t l, end = len - (w[len - 1] == '*' && len > 1 ? 1 : 0);
    uint32_t first = vg_utf8_decode(w, len, &l);
    t->first_word = vg_uchar_is_word(first);
    t->free_before = vg_uchar_script_class(first) == VG_SCRIPT_SPACELESS ||
                     (t->nlit_dash && t->lit_dash[0] == 0);
    /* The last character, and the base of its marks for its script. */
    size_t p = end;
    uint32_t last = vg_utf8_decode_before(w, p, &l), base = last;
    while (vg_uchar_is_mark(base) && p > l) {
        p -= l;
        base = vg_utf8_decode_before(w, p, &l);
    }
    t->last_word = vg_uchar_is_word(last);
    t->free_after = vg_uchar_script_class(base) == VG_SCRIPT_SPACELESS ||
                    (base >= 0xAC00 && base <= 0xD7A3) ||
                    (t->nlit_dash && t->lit_dash[t->nlit_dash - 1] + 1 == end);
}

/* The key of a collapsed term: its bytes with its literal dashes. */
static void term_key(vg_strbuf_t *key, const vg_term_t *t, const char *w, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i < t->nlit_dash; i++) {
        vg_strbuf_append(key, w + from, t->lit_dash[i] - from);
        vg_strbuf_putc(key, '-');
        from = t->lit_dash[i] + 1;
    }
    vg_strbuf_append(key, w + from, len - from);
}

/* A literal: the collapsed words, without a final '*' (the scanner checks
 * that the match starts a word and, without '*', ends one). */
static bool literal_term(compiler_t *c, vg_term_t *t, vg_strbuf_t *key, const char *w, size_t len)
{
    t->kind = VG_TERM_LITERAL;
    t->star = len > 1 && w[len - 1] == '*';
    t->pattern_len = len - (t->star ? 1 : 0);
    t->pattern = vg_rc_strndup(c, w, t->pattern_len);
    vg_strbuf_puts(key, t->star ? "P" : "L");
    term_key(key, t, w, t->pattern_len);
    return t->pattern != NULL;
}

/* A phrase like "export* ban": vectorscan finds candidates with a byte
 * pattern (a '*' word's tail as "no space"), and the scanner checks each
 * candidate word by word from its start. */
static bool phrase_term(compiler_t *c, const item_t *it, vg_term_t *t, vg_strbuf_t *key,
                        const char *w, size_t len)
{
    vg_strbuf_t re;
    vg_strbuf_init(&re);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)w[i];
        bool word_end = i + 1 == len || w[i + 1] == ' ';
        if (ch == '*' && word_end && i > 0 && w[i - 1] != ' ') {
            if (i + 1 != len)
                vg_strbuf_puts(&re, "[^\\x20]*");
        } else if (ch >= 0x80 || isalnum(ch)) {
            vg_strbuf_putc(&re, (char)ch);
        } else {
            vg_strbuf_printf(&re, "\\x%02x", ch);
        }
    }
    t->kind = VG_TERM_NORM_REGEX;
    t->pattern = vg_strbuf_detach(&re, &t->pattern_len);
    t->words = vg_rc_strndup(c, w, len);
    vg_strbuf_puts(key, "N");
    term_key(key, t, w, len);
    if (!t->pattern)
        return false;
    const char *pat = t->pattern;
    unsigned fl = HS_FLAG_SOM_LEFTMOST;
    vg_rc_where_t at = {"this keyword phrase", it->file, it->line, it->col};
    char *msg = NULL;
    int expr, r = vg_rc_hs_compile(c, &at, &(vg_rc_patterns_t){&pat, &fl, NULL, NULL, 1, false},
                                   NULL, &msg, &expr);
    if (r == 1)
        vg_rc_err_at(c, it->file, it->line, it->col, "keyword phrase cannot be compiled: %s", msg);
    free(msg);
    return r == 0;
}

static bool folded_term(compiler_t *c, const item_t *it, vg_term_t *t, vg_strbuf_t *key)
{
    size_t s = 0, n = 0, nd = 0;
    uint32_t *dashes = NULL;
    bool nothing;
    char *folded = norm_term(c, it, t->cs, &s, &n, &dashes, &nd, &nothing);
    if (folded && nothing) {
        /* Only invisible characters: a term that no text can contain. */
        vg_diags_add(c->diags, VG_DIAG_WARNING, it->file, it->line, it->col,
                     "this term is only invisible characters (soft hyphens, zero-width "
                     "spaces, which matching drops): it never matches");
        free(folded);
        free(dashes);
        t->kind = VG_TERM_NEVER;
        vg_strbuf_puts(key, "0");
        return true;
    }
    if (!folded) {
        free(dashes);
        return false;
    }
    const char *w = folded + s;
    size_t len = n - s;
    bool inner_star, ok = check_stars(c, it, w, len, &inner_star);
    if (ok)
        warn_wildcards(c, it, w, len);
    ok = ok && literal_dashes(c, t, w, len, dashes, nd, s);
    if (ok) {
        term_edges(t, w, len);
        ok = inner_star ? phrase_term(c, it, t, key, w, len) : literal_term(c, t, key, w, len);
    }
    free(folded);
    free(dashes);
    return ok;
}

/* Adds t under key unless an equal term is there; returns the term's id.
 * Takes t's strings in every case. */
static long store_term(compiler_t *c, const item_t *it, vg_term_t *t, const vg_strbuf_t *key)
{
    vg_ruleset_t *rs = c->rs;
    long id = -1;
    uint32_t *found = NULL;
    if (vg_strbuf_failed(key))
        vg_rc_oom(c);
    else if ((found = vg_strmap_get(&c->term_idx, key->buf, key->len)))
        id = (long)*found;
    else if (rs->nterms >= MAX_TERMS)
        vg_rc_err_at(c, it->file, it->line, it->col, "more than %d distinct keyword terms",
                     MAX_TERMS);
    else if (!(t->text = vg_rc_strndup(c, it->text, it->len)) ||
             !vg_rc_grow(c, (void **)&rs->terms, &c->term_cap, rs->nterms + 1, sizeof(vg_term_t)) ||
             vg_strmap_put(&c->term_idx, key->buf, key->len, (uint32_t)rs->nterms) < 0)
        vg_rc_oom(c);
    else {
        rs->terms[rs->nterms] = *t;
        return (long)rs->nterms++;
    }
    free(t->text);
    free(t->pattern);
    free(t->words);
    free(t->lit_dash);
    return id;
}

static long intern_term_once(compiler_t *c, const item_t *it)
{
    if (!term_text_ok(c, it))
        return -1;
    vg_term_t t = {.cs = c->case_sensitive};
    vg_strbuf_t key;
    vg_strbuf_init(&key);
    /* A case-sensitive term is another term than its folded twin. */
    if (t.cs)
        vg_strbuf_putc(&key, 'c');
    bool regex = it->len >= 2 && it->text[0] == '/' && it->text[it->len - 1] == '/';
    bool ok = regex ? user_regex_term(c, it, &t, &key) : folded_term(c, it, &t, &key);
    long id = -1;
    if (ok) {
        id = store_term(c, it, &t, &key);
    } else {
        free(t.pattern);
        free(t.words);
        free(t.lit_dash);
    }
    vg_strbuf_free(&key);
    return id;
}

/* Interns a keyword term and returns its id, or -1 after reporting. A term
 * written once in a list shared by many conditions is reported once. */
long vg_rc_intern_term(compiler_t *c, const item_t *it)
{
    /* A million terms take seconds to normalise: the load's deadline and
     * cancel flag are looked at every so often. */
    if (c->abandoned || (++c->since_bounds >= 1024 && !vg_rc_in_bounds(c)))
        return -1;
    if (c->since_bounds >= 1024)
        c->since_bounds = 0;
    /* The place is the key: file names are kept strings, so the pointer
     * names the file. */
    char loc[64];
    snprintf(loc, sizeof(loc), "%p:%u:%u:%d", (const void *)it->file, it->line, it->col,
             c->case_sensitive);
    if (vg_strmap_get(&c->bad_terms, loc, strlen(loc)))
        return -1;
    long id = intern_term_once(c, it);
    if (id < 0 && vg_strmap_put(&c->bad_terms, loc, strlen(loc), 0) < 0)
        vg_rc_oom(c);
    return id;
}

/* ---- databases ---- */

static unsigned term_flags(const vg_term_t *t)
{
    switch (t->kind) {
    case VG_TERM_LITERAL:
        return 0;
    case VG_TERM_NORM_REGEX:
        return HS_FLAG_SOM_LEFTMOST;
    default:
        return (t->cs ? 0 : HS_FLAG_CASELESS) | HS_FLAG_UTF8 | HS_FLAG_UCP |
               (t->no_som ? 0 : HS_FLAG_SOM_LEFTMOST);
    }
}

/* Compiles the patterns [from, from + n) of one kind into *db; false
 * after reporting. */
static bool compile_db(compiler_t *c, const vg_rc_patterns_t *all, size_t from, size_t n,
                       hs_database_t **db)
{
    vg_rc_patterns_t p = {all->pats + from, all->flags + from, all->ids + from, all->lens + from, n,
                          all->literal};
    char what[96];
    snprintf(what, sizeof(what), "the keyword database (%zu %s)", n,
             all->literal ? "literals" : "patterns");
    vg_rc_where_t w = {what, NULL, 0, 0};
    char *msg = NULL;
    int expr, r = vg_rc_hs_compile(c, &w, &p, db, &msg, &expr);
    if (r == 1) {
        const char *where = "";
        if (expr >= 0 && (size_t)expr < n)
            where = c->rs->terms[p.ids[expr]].text;
        vg_diags_add(c->diags, VG_DIAG_ERROR, NULL, 0, 0,
                     "cannot compile the keyword database: %s%s%s", msg, *where ? " at term " : "",
                     where);
    }
    free(msg);
    return r == 0;
}

/* The database of the terms of one kind, each matched under its id, in
 * *db; literals past c->literal_shard go to further databases in *more.
 * Nothing when there are none. */
static void build_db(compiler_t *c, vg_term_kind_t kind, bool cs, hs_database_t **db,
                     hs_database_t ***more, size_t *nmore)
{
    vg_ruleset_t *rs = c->rs;
    size_t n = 0;
    for (size_t i = 0; i < rs->nterms; i++)
        n += rs->terms[i].kind == kind && rs->terms[i].cs == cs;
    if (n == 0)
        return;
    const char **pats = calloc(n, sizeof(char *));
    unsigned *flags = calloc(n, sizeof(unsigned));
    unsigned *ids = calloc(n, sizeof(unsigned));
    size_t *lens = calloc(n, sizeof(size_t));
    bool literal = kind == VG_TERM_LITERAL, ok = pats && flags && ids && lens;
    size_t shard = literal ? c->literal_shard : n, nshards = (n + shard - 1) / shard;
    if (nshards > 1 && ok) {
        ok = (*more = calloc(nshards - 1, sizeof(hs_database_t *))) != NULL;
        *nmore = ok ? nshards - 1 : 0;
    }
    if (!ok) {
        vg_rc_oom(c);
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < rs->nterms; i++) {
        const vg_term_t *t = &rs->terms[i];
        if (t->kind != kind || t->cs != cs)
            continue;
        pats[k] = t->pattern;
        lens[k] = t->pattern_len;
        ids[k] = (unsigned)i;
        flags[k] = term_flags(t);
        k++;
    }
    /* The literal API takes the folded bytes as they are: no regex
     * escaping of the characters a term may contain. */
    vg_rc_patterns_t all = {pats, flags, ids, lens, n, literal};
    for (size_t s = 0; ok && s < nshards; s++)
        ok = compile_db(c, &all, s * shard, s + 1 < nshards ? shard : n - s * shard,
                        s ? &(*more)[s - 1] : db);
out:
    free(pats);
    free(flags);
    free(ids);
    free(lens);
}

void vg_rc_build_databases(compiler_t *c)
{
    vg_ruleset_t *rs = c->rs;
    /* Each is built even after one fails, so that all are reported; a
     * load abandoned at a bound makes the rest fail at once. */
    for (int k = 0; k < 2; k++) {
        build_db(c, VG_TERM_LITERAL, k, &rs->db_lit[k], &rs->db_lit_more[k], &rs->nlit_more[k]);
        build_db(c, VG_TERM_NORM_REGEX, k, &rs->db_norm[k], NULL, NULL);
        build_db(c, VG_TERM_USER_REGEX, k, &rs->db_user[k], NULL, NULL);
    }
}
