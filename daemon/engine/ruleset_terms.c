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
    hs_database_t *db = NULL;
    hs_compile_error_t *ce = NULL;
    unsigned fl = HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_UCP;
    /* Start of match gives the evidence its offset, but vectorscan cannot
     * track it for some patterns: those are matched without, and the
     * scanner reports such a match where it ends. */
    if (hs_compile(t->pattern, fl | HS_FLAG_SOM_LEFTMOST, HS_MODE_BLOCK, NULL, &db, &ce) !=
        HS_SUCCESS) {
        hs_free_compile_error(ce);
        ce = NULL;
        if (hs_compile(t->pattern, fl, HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS) {
            vg_rc_regex_error(c, it->file, it->line, it->col, t->pattern, ce);
            hs_free_compile_error(ce);
            return false;
        }
        t->no_som = true;
    }
    hs_free_database(db);
    vg_strbuf_puts(key, "R");
    vg_strbuf_append(key, t->pattern, t->pattern_len);
    return true;
}

/* Folds, trims and collapses white space so that the term compares with
 * text normalised the same way at match time. Returns the folded buffer
 * (to free) with the term at [*start, *end), or NULL after reporting. */
static char *fold_term(compiler_t *c, const item_t *it, size_t *start, size_t *end)
{
    char *folded = malloc(it->len * 3 + 1);
    if (!folded) {
        vg_rc_oom(c);
        return NULL;
    }
    size_t n = vg_utf8_fold(it->text, it->len, true, folded, NULL);
    size_t s = 0;
    while (s < n && folded[s] == ' ')
        s++;
    while (n > s && folded[n - 1] == ' ')
        n--;
    if (n == s) {
        vg_rc_err_at(c, it->file, it->line, it->col, "keyword term is only white space");
        free(folded);
        return NULL;
    }
    *start = s;
    *end = n;
    return folded;
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
        else if (w[i - 1] == '*' && i != len)
            *inner_star = true;
        ws = i + 1;
    }
    if (bad)
        vg_rc_err_at(c, it->file, it->line, it->col,
                     "'*' must end a word (as in 'sanction*'); a lone '*' matches any word");
    return !bad;
}

/* A literal: the folded words, without a final '*' (the scanner checks
 * that the match starts a word and, without '*', ends one). */
static bool literal_term(compiler_t *c, vg_term_t *t, vg_strbuf_t *key, const char *w, size_t len)
{
    t->kind = VG_TERM_LITERAL;
    t->star = w[len - 1] == '*';
    t->pattern_len = len - (t->star ? 1 : 0);
    t->pattern = vg_rc_strndup(c, w, t->pattern_len);
    vg_strbuf_puts(key, t->star ? "P" : "L");
    vg_strbuf_append(key, w, t->pattern_len);
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
    vg_strbuf_append(key, w, len);
    if (!t->pattern)
        return false;
    hs_database_t *db = NULL;
    hs_compile_error_t *ce = NULL;
    if (hs_compile(t->pattern, HS_FLAG_SOM_LEFTMOST, HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS) {
        vg_rc_err_at(c, it->file, it->line, it->col, "keyword phrase cannot be compiled: %s",
                     ce && ce->message ? ce->message : "unknown error");
        hs_free_compile_error(ce);
        return false;
    }
    hs_free_database(db);
    return true;
}

static bool folded_term(compiler_t *c, const item_t *it, vg_term_t *t, vg_strbuf_t *key)
{
    size_t s, n;
    char *folded = fold_term(c, it, &s, &n);
    if (!folded)
        return false;
    bool inner_star, ok = check_stars(c, it, folded + s, n - s, &inner_star);
    if (ok && !inner_star)
        ok = literal_term(c, t, key, folded + s, n - s);
    else if (ok)
        ok = phrase_term(c, it, t, key, folded + s, n - s);
    free(folded);
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
    return id;
}

static long intern_term_once(compiler_t *c, const item_t *it)
{
    if (!term_text_ok(c, it))
        return -1;
    vg_term_t t = {0};
    vg_strbuf_t key;
    vg_strbuf_init(&key);
    bool regex = it->len >= 2 && it->text[0] == '/' && it->text[it->len - 1] == '/';
    bool ok = regex ? user_regex_term(c, it, &t, &key) : folded_term(c, it, &t, &key);
    long id = -1;
    if (ok) {
        id = store_term(c, it, &t, &key);
    } else {
        free(t.pattern);
        free(t.words);
    }
    vg_strbuf_free(&key);
    return id;
}

/* Interns a keyword term and returns its id, or -1 after reporting. A term
 * written once in a list shared by many conditions is reported once. */
long vg_rc_intern_term(compiler_t *c, const item_t *it)
{
    /* The place is the key: file names are kept strings, so the pointer
     * names the file. */
    char loc[64];
    snprintf(loc, sizeof(loc), "%p:%u:%u", (const void *)it->file, it->line, it->col);
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
        return HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_UCP |
               (t->no_som ? 0 : HS_FLAG_SOM_LEFTMOST);
    }
}

/* The database of the terms of one kind, each matched under its id; NULL
 * when there are none, or after reporting. */
static hs_database_t *build_db(compiler_t *c, vg_term_kind_t kind)
{
    vg_ruleset_t *rs = c->rs;
    size_t n = 0;
    for (size_t i = 0; i < rs->nterms; i++)
        n += rs->terms[i].kind == kind;
    if (n == 0)
        return NULL;
    const char **pats = calloc(n, sizeof(char *));
    unsigned *flags = calloc(n, sizeof(unsigned));
    unsigned *ids = calloc(n, sizeof(unsigned));
    size_t *lens = calloc(n, sizeof(size_t));
    hs_database_t *db = NULL;
    if (!pats || !flags || !ids || !lens) {
        vg_rc_oom(c);
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < rs->nterms; i++) {
        const vg_term_t *t = &rs->terms[i];
        if (t->kind != kind)
            continue;
        pats[k] = t->pattern;
        lens[k] = t->pattern_len;
        ids[k] = (unsigned)i;
        flags[k] = term_flags(t);
        k++;
    }
    hs_compile_error_t *ce = NULL;
    hs_error_t e;
    /* The literal API takes the folded bytes as they are: no regex
     * escaping of the characters a term may contain. */
    if (kind == VG_TERM_LITERAL)
        e = hs_compile_lit_multi(pats, flags, ids, lens, (unsigned)n, HS_MODE_BLOCK, NULL, &db,
                                 &ce);
    else
        e = hs_compile_multi(pats, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, &db, &ce);
    if (e != HS_SUCCESS) {
        const char *where = "";
        if (ce && ce->expression >= 0 && (size_t)ce->expression < n)
            where = rs->terms[ids[ce->expression]].text;
        vg_diags_add(
            c->diags, VG_DIAG_ERROR, NULL, 0, 0, "cannot compile the keyword database: %s%s%s",
            ce && ce->message ? ce->message : "unknown error", *where ? " at term " : "", where);
        hs_free_compile_error(ce);
        db = NULL;
    }
out:
    free(pats);
    free(flags);
    free(ids);
    free(lens);
    return db;
}

void vg_rc_build_databases(compiler_t *c)
{
    vg_ruleset_t *rs = c->rs;
    rs->db_lit = build_db(c, VG_TERM_LITERAL);
    rs->db_norm = build_db(c, VG_TERM_NORM_REGEX);
    rs->db_user = build_db(c, VG_TERM_USER_REGEX);
}
