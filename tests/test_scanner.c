/* Evaluation of rules over events (include/vigil/scanner.h) against
 * DESIGN.md "Conditions", "Keyword semantics (text)" and "Field
 * semantics", plus the keyword evidence that alerts carry. Each test
 * writes a rule in YAML and an event in JSON, and states whether the rule
 * fires. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_support.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/alert.h"
#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"

/* ---- cleanup -------------------------------------------------------------
 * Everything a helper creates is registered here and freed by the
 * per-test teardown, so that a failing assertion (which leaves the test
 * through longjmp) leaks nothing either. */


/* ---- building rules and events -------------------------------------------- */

static vg_ruleset_t *load_sources(const vg_rule_source_t *src, size_t n,
                                  const vg_ruleset_options_t *opts)
{
    vg_diags_t *d = own((free_fn)vg_diags_destroy, vg_diags_new());
    vg_ruleset_t *rs = vg_ruleset_load_sources(src, n, opts, d);
    if (rs == NULL) {
        vg_diags_print(d, stderr);
        fail_msg("the rules did not load:\n%s", src[0].data);
    }
    return own((free_fn)vg_ruleset_destroy, rs);
}

static vg_ruleset_t *load_rules_opts(const char *yaml, const vg_ruleset_options_t *opts)
{
    vg_rule_source_t src = {"rules.yaml", yaml, strlen(yaml)};
    return load_sources(&src, 1, opts);
}

static vg_ruleset_t *load_rules(const char *yaml)
{
    return load_rules_opts(yaml, NULL);
}

static vg_event_t *event(const char *json)
{
    vg_decoder_t *dec = own((free_fn)vg_decoder_destroy, vg_decoder_new(NULL));
    vg_event_t *ev = NULL;
    char err[256];
    if (vg_decoder_parse(dec, json, strlen(json), &ev, err, sizeof(err)) != VG_EVENT_OK)
        fail_msg("test event does not decode (%s): %s", err, json);
    return own((free_fn)vg_event_destroy, ev);
}

/* {"title": text} as JSON. */
static const char *title_event(const char *text)
{
    json_object *o = own(put_json, json_object_new_object());
    json_object_object_add(o, "title", json_object_new_string(text));
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

/* A YAML single-quoted scalar holding s. */
static const char *yaml_quote(const char *s)
{
    size_t n = strlen(s), q = 0;
    for (size_t i = 0; i < n; i++)
        q += s[i] == '\'';
    char *out = own(free, malloc(n + q + 3));
    size_t o = 0;
    out[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        out[o++] = s[i];
        if (s[i] == '\'')
            out[o++] = '\'';
    }
    out[o++] = '\'';
    out[o] = '\0';
    return out;
}

/* One rule "r" whose match is cond, after the YAML in prelude (lists,
 * macros). */
static const char *one_rule(const char *prelude, const char *cond)
{
    return fmt("%srules:\n  - id: r\n    match: %s\n", prelude, cond);
}

/* Evaluates every enabled rule on json; returns the ids of the rules that
 * fired, space-separated, in rule order. */
static const char *fired_with(vg_ruleset_t *rs, const char *json)
{
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    assert_non_null(sc);
    char err[256] = "";
    int n = vg_scanner_eval(sc, event(json), err, sizeof(err));
    if (n < 0)
        fail_msg("evaluation failed: %s", err);
    char *ids = fmt("%*s", 1024, "");
    ids[0] = '\0';
    for (int i = 0; i < n; i++) {
        const vg_rule_t *r = vg_scanner_match(sc, (size_t)i);
        assert_non_null(r);
        if (i)
            strcat(ids, " ");
        strncat(ids, vg_rule_id(r), 1000 - strlen(ids));
    }
    assert_null(vg_scanner_match(sc, (size_t)n));
    return ids;
}

static const char *fired(const char *rules_yaml, const char *json)
{
    return fired_with(load_rules(rules_yaml), json);
}

/* ---- assertions that read like the spec ---------------------------------- */

/* The rules (with one rule) fire on the event, or do not. */
#define assert_match(rules_yaml, json, want) \
    check_match(__LINE__, (rules_yaml), (json), (want))

static void check_match(int line, const char *rules_yaml, const char *json, bool want)
{
    size_t mark = g_nowned;
    bool got = fired(rules_yaml, json)[0] != '\0';
    if (got != want)
        fail_msg("line %d: wanted %s\n  rules: %s\n  event: %s", line,
                 want ? "a match" : "no match", rules_yaml, json);
    release_to(mark);
}

/* The condition cond (a one-line YAML flow mapping) holds for the event. */
#define assert_cond(cond, json, want) check_match(__LINE__, one_rule("", (cond)), (json), (want))
#define assert_cond_with(prelude, cond, json, want) \
    check_match(__LINE__, one_rule((prelude), (cond)), (json), (want))

/* `text: {any: [term]}` holds for an event whose title is text. */
#define assert_text(term, text, want) check_text(__LINE__, (term), (text), (want))

static void check_text(int line, const char *term, const char *text, bool want)
{
    size_t mark = g_nowned;
    const char *cond = fmt("{text: {any: [%s]}}", yaml_quote(term));
    bool got = fired(one_rule("", cond), title_event(text))[0] != '\0';
    if (got != want)
        fail_msg("line %d: term '%s' on title '%s': wanted %s", line, term, text,
                 want ? "a match" : "no match");
    release_to(mark);
}

/* ---- evidence ------------------------------------------------------------ */

/* Evaluates rules on json and returns the "matches" array of the alert
 * for the first rule that fired (parsed from the rendered alert). */
static json_object *evidence(const char *rules_yaml, const char *json)
{
    vg_ruleset_t *rs = load_rules(rules_yaml);
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    vg_event_t *ev = event(json);
    char err[256];
    if (vg_scanner_eval(sc, ev, err, sizeof(err)) < 1)
        fail_msg("no rule fired on %s", json);
    vg_alert_source_t src = {.file = "events.jsonl", .line = 1, .timestamp_ms = -1};
    size_t len;
    char *text = own(free, vg_alert_render(sc, ev, 0, &src, NULL, &len));
    assert_non_null(text);
    json_object *alert = own(put_json, json_tokener_parse(text));
    if (alert == NULL)
        fail_msg("alert is not JSON: %s", text);
    json_object *m = NULL;
    assert_true(json_object_object_get_ex(alert, "matches", &m));
    assert_true(json_object_is_type(m, json_type_array));
    return m;
}

static const char *str_member(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("member '%s' missing", key);
    return json_object_is_type(v, json_type_null) ? NULL : json_object_get_string(v);
}

static int64_t int_member(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        fail_msg("integer member '%s' missing", key);
    return json_object_get_int64(v);
}

/* The match of term in field, which must be present exactly once. */
static json_object *find_match(json_object *matches, const char *field, const char *term)
{
    json_object *found = NULL;
    for (size_t i = 0; i < json_object_array_length(matches); i++) {
        json_object *m = json_object_array_get_idx(matches, i);
        if (strcmp(str_member(m, "field"), field) == 0 &&
            strcmp(str_member(m, "term"), term) == 0) {
            if (found)
                fail_msg("term '%s' reported twice in field '%s'", term, field);
            found = m;
        }
    }
    if (!found)
        fail_msg("no match of term '%s' in field '%s' among %s", term, field,
                 json_object_to_json_string(matches));
    return found;
}

/* Asserts the match of term in field: its list (NULL: written in place),
 * byte offset and byte length. */
static void assert_evidence(json_object *matches, const char *field, const char *term,
                            const char *list, int64_t offset, int64_t length)
{
    json_object *m = find_match(matches, field, term);
    const char *l = str_member(m, "list");
    if ((list == NULL) != (l == NULL) || (list && strcmp(list, l) != 0))
        fail_msg("term '%s': list '%s', wanted '%s'", term, l ? l : "(null)",
                 list ? list : "(null)");
    if (int_member(m, "offset") != offset || int_member(m, "length") != length)
        fail_msg("term '%s' in %s: offset %lld length %lld, wanted %lld and %lld", term, field,
                 (long long)int_member(m, "offset"), (long long)int_member(m, "length"),
                 (long long)offset, (long long)length);
}

/* ==== keyword rule 1: case is ignored ===================================== */

static void test_text_ignores_ascii_case(void **state)
{
    (void)state;
    assert_text("export control", "EXPORT CONTROL", true);
    assert_text("export control", "New Export Control rules", true);
    assert_text("EXPORT CONTROL", "new export control rules", true);
    assert_text("SmIc", "smic", true);
    assert_text("export control", "export contro", false);
}

static void test_text_ignores_unicode_case(void **state)
{
    (void)state;
    assert_text("états-unis", "ÉTATS-UNIS: Washington tightens export controls", true);
    assert_text("ÉTATS-UNIS", "les états-unis ont", true);
    /* capital sharp s folds to ß (simple folding), not to ss */
    assert_text("Straße", "STRAẞE", true);
    assert_text("STRAẞE", "straße", true);
    /* Full case folding (rule 7): ß folds to ss. */
    assert_text("strasse", "Straße", true);
    assert_text("Straße", "STRASSE", true);
    /* Greek: final sigma and capital sigma fold to the same letter */
    assert_text("Οδυσσευς", "ΟΔΥΣΣΕΥΣ", true);
    assert_text("ростех", "РОСТЕХ said", true);
    /* KELVIN SIGN (3 bytes) folds to k (1 byte) */
    assert_text("kelvin", "\xe2\x84\xaa" "ELVIN", true);
    /* different letters stay different */
    assert_text("etats-unis", "ÉTATS-UNIS", true); /* accents dropped (rule 8) */
    assert_text("etats-unis", "ÉTAT-UNIS", false);
}

/* ==== keyword rule 2: phrases across white space ========================== */

static void test_phrase_matches_any_white_space_run(void **state)
{
    (void)state;
    assert_text("entity list", "Entity List", true);
    assert_text("entity list", "added to the Entity\n  List on Friday", true);
    assert_text("entity list", "entity\tlist", true);
    assert_text("entity list", "entity \t\r\n  list", true);
    assert_text("entity list", "entity     list", true);
    assert_text("entity list", "entity\r\nlist", true);
    /* Unicode white space: NO-BREAK SPACE, EM SPACE, IDEOGRAPHIC SPACE */
    assert_text("entity list", "entity\xc2\xa0list", true);
    assert_text("entity list", "entity\xe2\x80\x83list", true);
    assert_text("entity list", "entity\xe3\x80\x80list", true);
    assert_text("unverified end user list", "Unverified\nEnd  User\tList", true);
}

static void test_phrase_needs_its_words_in_order(void **state)
{
    (void)state;
    assert_text("entity list", "entity trade list", false);
    assert_text("entity list", "entitylist", false);
    assert_text("entity list", "entity-list", true); /* one dash is a gap (rule 2) */
    assert_text("entity list", "entity--list", false);
    assert_text("entity list", "entity_list", false);
    assert_text("entity list", "list entity", false);
    assert_text("entity list", "entity", false);
}

/* ==== keyword rule 3: word boundaries ===================================== */

static void test_boundaries_accept_punctuation_and_ends(void **state)
{
    (void)state;
    assert_text("ban", "the ban.", true);
    assert_text("ban", "Ban on exports", true);
    assert_text("ban", "(ban)", true);
    assert_text("ban", "ban", true);
    assert_text("ban", "ban-related", true);
    assert_text("ban", "\"ban\"", true);
    assert_text("Intel", "Intel's new fab", true);
    assert_text("Intel", "INTEL-made chips", true);
    assert_text("Huawei", "Huawei\xe2\x80\x99s phones", true); /* right single quote */
    assert_text("chip", "chip-making", true);
}

static void test_boundaries_refuse_word_characters(void **state)
{
    (void)state;
    assert_text("ban", "urban", false);
    assert_text("ban", "banned", false);
    assert_text("ban", "Banks", false);
    assert_text("ban", "ban_list", false);    /* underscore */
    assert_text("ban", "ban2", false);        /* digit */
    assert_text("ban", "2ban", false);
    assert_text("ban", "\xc3\xa9" "ban", false); /* é before */
    assert_text("ban", "ban\xc3\xb6", false);    /* ö after */
    assert_text("ban", "ban\xe5\x8d\x8e", true); /* CJK letter: a script boundary */
    assert_text("ban", "ban\xd9\xa3", false);     /* ARABIC-INDIC DIGIT THREE */
    assert_text("Intel", "Intelligence", false);
    assert_text("germanium", "Germany", false);
    assert_text("Rostec", "Rostechnadzor", false);
    assert_text("5G", "15G", false);
    assert_text("5G", "5GHz", false);
    assert_text("5G", "5G-capable", true);
    /* scripts without spaces need no boundaries inside them (rule 11) */
    assert_text("华为", "华为公司", true);
    assert_text("华为", "据 华为 称", true);
    assert_text("전자", "삼성전자", false); /* Hangul keeps the one before (rule 12) */
}

static void test_boundaries_later_occurrence_counts(void **state)
{
    (void)state;
    /* the first occurrence fails the boundary test, a later one passes */
    assert_text("ban", "urban ban", true);
    assert_text("ban", "banned bans ban.", true);
    assert_text("ban", "urban banned bans", false);
    assert_text("entity list", "entity lists and the entity list", true);
    assert_text("sanction*", "unsanctioned sanctions", true);
}

static void test_term_with_punctuation_at_its_edges(void **state)
{
    (void)state;
    /* the boundary test looks at the characters around the match, even
     * when the term itself begins or ends with punctuation */
    assert_text("U.S.", "the U.S. said", true);
    assert_text("U.S.", "U.S.-made", true);
    assert_text("U.S.", "U.S.A.", false);
    assert_text("(ban)", "x(ban)x", false);
    assert_text("(ban)", "a (ban) b", true);
}

/* ==== keyword rule 4: '*' word endings ================================== */

static void test_star_allows_word_endings(void **state)
{
    (void)state;
    assert_text("sanction*", "sanction", true);
    assert_text("sanction*", "new sanctions on", true);
    assert_text("sanction*", "SANCTIONED", true);
    assert_text("sanction*", "sanctioning.", true);
    assert_text("sanction*", "sanctionn\xc3\xa9" "es", true);   /* letters beyond ASCII */
    assert_text("sanction*", "sanctuary", false);
    assert_text("sanction*", "unsanctioned", false);
    assert_text("sanction*", "sanctio", false);
    assert_text("ban*", "urbanization", false);
    assert_text("ban*", "bank", true); /* the documented pitfall */
}

static void test_star_at_end_of_a_phrase(void **state)
{
    (void)state;
    assert_text("export curb*", "export curbs", true);
    assert_text("export curb*", "Export\n  curbing", true);
    assert_text("export curb*", "export curb", true);
    assert_text("export curb*", "export curtail", false);
    assert_text("export curb*", "reexport curbs", false);
    assert_text("rare earth*", "rare-earth", true);
    assert_text("rare earth*", "rare/earth", false);
}

static void test_star_in_a_non_final_word(void **state)
{
    (void)state;
    assert_text("export* ban", "exports ban", true);
    assert_text("export* ban", "export ban", true);
    assert_text("export* ban", "EXPORTERS\tban", true);
    assert_text("export* ban", "new exports  ban.", true);
    assert_text("export* ban", "exports banned", false);
    assert_text("export* ban", "reexports ban", false);
    assert_text("export* ban", "exports trade ban", false);
    assert_text("export* ban", "exports-ban", true);
    assert_text("export* ban", "exports--ban", false);
    assert_text("state* owned firm", "State-owned firm", true);
    assert_text("state* owned firm", "states owned firm", true);
    assert_text("é* ban", "ÉÉ ban", true);
}

static void test_star_in_several_words_or_after_one_letter(void **state)
{
    (void)state;
    /* Regression (fixed): these terms are valid (keyword rule 4) but the ruleset does not
     * load: "cannot compile the keyword database: Pattern is too large. at
     * term export* curb*", without file:line:col. daemon/engine/ruleset_terms.c
     * vg_rc_intern_term turns every word-final '*' of a phrase with an inner
     * '*' into "\w*", and build_db compiles it with HS_FLAG_UTF8 |
     * HS_FLAG_UCP | HS_FLAG_SOM_LEFTMOST; vectorscan refuses a trailing
     * Unicode \w* with start-of-match, and also "\w*" after a one-letter
     * stem ("a* b"). */
    assert_text("export* curb*", "exporters curbing", true);
    assert_text("export* curb*", "exporters curtail", false);
    assert_text("state* owned firm*", "states owned firms", true);
    assert_text("a* b", "ab b", true);
}

static void test_star_inside_a_word_is_literal(void **state)
{
    (void)state;
    assert_text("a*b", "x a*b y", true);
    assert_text("a*b", "ab", false);
    assert_text("a*b", "axb", false);
    assert_text("a*b c", "a*b c", true);
}

/* ==== keyword rule 5: regular expressions ================================= */

static void test_regex_terms(void **state)
{
    (void)state;
    const char *re = "/export\\s+ban(s|ned)?/";
    assert_text(re, "EXPORT BANS", true);
    assert_text(re, "an export\n\tbanned item", true);
    assert_text(re, "export ban", true);
    /* no implicit boundaries */
    assert_text(re, "export banner", true);
    assert_text(re, "reexport ban", true);
    assert_text(re, "export-ban", false);
    /* case is ignored, also beyond ASCII */
    assert_text("/SMIC/", "smic", true);
    /* A pattern sees normalised text: accents on Latin letters dropped. */
    assert_text("/etats/", "ÉTATS", true);
    assert_text("/états/", "ÉTATS", false);
    /* anchors are relative to the field's text */
    assert_text("/^japan/", "Japan moves", true);
    assert_text("/^japan/", "in Japan", false);
    assert_text("/hs\\s*85\\d{2}/", "HS 8542 rows", true);
    /* the way to reach languages without spaces */
    assert_text("/华为/", "华为公司", true);
}

/* ==== keyword rule 6: everything else is literal ========================== */

static void test_other_characters_are_literal(void **state)
{
    (void)state;
    assert_text("U.S.", "U S said", false);
    assert_text("U.S.", "UxSx", false);
    assert_text("a.c", "abc", false);
    assert_text("c++", "a C++ compiler", true);
    assert_text("c++", "a C compiler", false);
    assert_text("licen?e requirement", "licence requirement", false);
    assert_text("licen?e requirement", "licen?e requirement", true);
    assert_text("(ban)", "a ban b", false);
    assert_text("chip-making", "chip making", true);
    assert_text("U.S.-China", "U.S. China", false);
    assert_text("U.S.-China", "U.S.-China", true);
    assert_text("chip-making", "Chip-Making", true);
    assert_text("100%", "a 100% tariff", true);
    assert_text("[x]", "[x]", true);
    assert_text("\\d", "\\d", true);
    assert_text("\\d", "5", false);
}

static void test_double_dollar_escapes_a_leading_dollar(void **state)
{
    (void)state;
    /* in a term list written in place */
    assert_text("$$100", "costs $100 now", true);
    assert_text("$$100", "costs 100 now", false);
    /* and in a named list; "$$$x" is the text "$$x" */
    const char *lists = "lists:\n  money: ['$$100', '$$$x']\n";
    assert_cond_with(lists, "{text: {any: $money}}", title_event("costs $100 now"), true);
    assert_cond_with(lists, "{text: {any: $money}}", title_event("pay $$x"), true);
    assert_cond_with(lists, "{text: {any: $money}}", title_event("pay $x"), false);
}

/* ==== text conditions: any / all, fields ================================== */

static void test_text_any_across_fields(void **state)
{
    (void)state;
    const char *cond = "{text: {any: [alpha, beta]}}";
    assert_cond(cond, "{\"title\":\"alpha\"}", true);
    assert_cond(cond, "{\"body\":\"x beta y\"}", true);
    assert_cond(cond, "{\"title\":\"gamma\",\"body\":\"delta\"}", false);
    assert_cond(cond, "{}", false);
}

static void test_text_all_across_fields(void **state)
{
    (void)state;
    const char *cond = "{text: {all: [alpha, beta]}}";
    assert_cond(cond, "{\"title\":\"alpha\",\"body\":\"beta\"}", true);
    assert_cond(cond, "{\"body\":\"beta and alpha\"}", true);
    assert_cond(cond, "{\"title\":\"alpha\",\"body\":\"alphabet\"}", false);
    assert_cond(cond, "{\"title\":\"alpha\"}", false);
    /* a term listed twice is still one term */
    assert_cond("{text: {all: [alpha, alpha]}}", "{\"title\":\"alpha\"}", true);
}

static void test_text_fields_override(void **state)
{
    (void)state;
    const char *cond = "{text: {any: [SMIC], fields: [entities]}}";
    assert_cond(cond, "{\"title\":\"SMIC\",\"entities\":[\"MITI\"]}", false);
    assert_cond(cond, "{\"title\":\"x\",\"entities\":[\"MITI\",\"SMIC\"]}", true);
    assert_cond(cond, "{\"entities\":\"SMIC\"}", true);
    /* nested paths, also through arrays of objects */
    assert_cond("{text: {any: [ban], fields: [meta.headline]}}",
                "{\"meta\":{\"headline\":\"a ban\"}}", true);
    assert_cond("{text: {any: [ban], fields: [meta.headline]}}",
                "{\"meta\":{\"body\":\"a ban\"},\"headline\":\"ban\"}", false);
    assert_cond("{text: {any: [rostec], fields: [parties.name]}}",
                "{\"parties\":[{\"name\":\"MITI\"},{\"name\":\"Rostec\"}]}", true);
}

static void test_text_default_fields_option(void **state)
{
    (void)state;
    static const char *const fields[] = {"headline", "doc.text"};
    vg_ruleset_options_t opts = {.text_fields = fields, .n_text_fields = 2};
    vg_ruleset_t *rs = load_rules_opts("rules:\n"
                                       "  - id: default-fields\n"
                                       "    match: {text: {any: [ban]}}\n"
                                       "  - id: title-only\n"
                                       "    match: {text: {any: [ban], fields: [title]}}\n",
                                       &opts);
    assert_string_equal(fired_with(rs, "{\"headline\":\"ban\"}"), "default-fields");
    assert_string_equal(fired_with(rs, "{\"doc\":{\"text\":\"ban\"}}"), "default-fields");
    assert_string_equal(fired_with(rs, "{\"title\":\"ban\",\"body\":\"ban\"}"), "title-only");

    /* without the option: title and body */
    vg_ruleset_t *plain = load_rules("rules:\n  - id: r\n    match: {text: {any: [ban]}}\n");
    assert_string_equal(fired_with(plain, "{\"body\":\"ban\"}"), "r");
    assert_string_equal(fired_with(plain, "{\"headline\":\"ban\"}"), "");
}

static void test_text_hits_in_other_fields_do_not_count(void **state)
{
    (void)state;
    /* many terms, few hits, and hits in fields that another condition
     * searches */
    char *terms = own(free, calloc(1, 64 * 16));
    for (int i = 0; i < 60; i++)
        sprintf(terms + strlen(terms), "%sterm%02d", i ? ", " : "", i);
    vg_ruleset_t *rs = load_rules(fmt("rules:\n"
                                      "  - id: in-body\n"
                                      "    match: {text: {any: [%s], fields: [body]}}\n"
                                      "  - id: in-title\n"
                                      "    match: {text: {all: [term07, term59], fields: [title]}}\n",
                                      terms));
    assert_string_equal(fired_with(rs, "{\"title\":\"term07 term59\"}"), "in-title");
    assert_string_equal(fired_with(rs, "{\"title\":\"term07\",\"body\":\"term59\"}"),
                        "in-body");
    assert_string_equal(fired_with(rs, "{\"title\":\"term07 term59\",\"body\":\"term33\"}"),
                        "in-body in-title");
    assert_string_equal(fired_with(rs, "{\"title\":\"term60\",\"body\":\"term7\"}"), "");
}

static void test_text_array_elements_are_separate_texts(void **state)
{
    (void)state;
    const char *fields = "fields: [entities]";
    assert_cond(fmt("{text: {any: [SMIC], %s}}", fields), "{\"entities\":[\"SM\",\"IC\"]}",
                false);
    assert_cond(fmt("{text: {any: [entity list], %s}}", fields),
                "{\"entities\":[\"entity\",\"list\"]}", false);
    assert_cond(fmt("{text: {any: [smic], %s}}", fields),
                "{\"entities\":[[\"x\"],[\"a\",\"SMIC\"]]}", true);
    /* a term may be found in one element and another term in the next */
    assert_cond(fmt("{text: {all: [smic, miti], %s}}", fields),
                "{\"entities\":[\"SMIC\",\"MITI\"]}", true);
}

static void test_text_in_numbers_and_other_values(void **state)
{
    (void)state;
    /* a JSON number is searched through its JSON text */
    assert_cond("{text: {any: [854231]}}", "{\"title\":854231}", true);
    assert_cond("{text: {any: ['8542']}}", "{\"title\":854231}", false);
    assert_cond("{text: {any: ['8542*']}}", "{\"title\":854231}", true);
    assert_cond("{text: {any: ['23.5']}}", "{\"title\":-23.5}", true);
    assert_cond("{text: {any: ['1.2e9']}}", "{\"body\":1.2e9}", true);
    /* objects are not text; null and missing fields are harmless */
    assert_cond("{text: {any: [ban]}}", "{\"title\":{\"x\":\"ban\"}}", false);
    assert_cond("{text: {any: [ban]}}", "{\"title\":null}", false);
    assert_cond("{text: {any: [ban]}}", "{\"title\":\"\"}", false);
}

/* ==== field operators ===================================================== */

static void test_eq_strings(void **state)
{
    (void)state;
    const char *c = "{field: type, eq: news}";
    assert_cond(c, "{\"type\":\"news\"}", true);
    assert_cond(c, "{\"type\":\"NEWS\"}", true);
    assert_cond(c, "{\"type\":\"newsy\"}", false);
    assert_cond(c, "{\"type\":\" news\"}", false);
    assert_cond(c, "{\"type\":\"new\"}", false);
    assert_cond("{field: country, eq: états-unis}", "{\"country\":\"ÉTATS-UNIS\"}", true);
    assert_cond("{field: t, eq: ''}", "{\"t\":\"\"}", true);
    assert_cond("{field: t, eq: ''}", "{\"t\":\"x\"}", false);
}

static void test_eq_number_event_compared_through_its_json_text(void **state)
{
    (void)state;
    assert_cond("{field: hs_code, eq: \"854231\"}", "{\"hs_code\":854231}", true);
    assert_cond("{field: hs_code, eq: \"854231\"}", "{\"hs_code\":\"854231\"}", true);
    assert_cond("{field: n, eq: \"1.2e9\"}", "{\"n\":1.2e9}", true);
    assert_cond("{field: n, eq: \"12\"}", "{\"n\":12.0}", false);
    assert_cond("{field: n, eq: \"12\"}", "{\"n\":\"012\"}", false);
}

static void test_eq_number_operand_compares_numerically(void **state)
{
    (void)state;
    const char *c = "{field: n, eq: 12}";
    assert_cond(c, "{\"n\":12}", true);
    assert_cond(c, "{\"n\":12.0}", true);
    assert_cond(c, "{\"n\":1.2e1}", true);
    assert_cond(c, "{\"n\":\"12\"}", true);
    assert_cond(c, "{\"n\":\"12.0\"}", true);
    assert_cond(c, "{\"n\":\"1.2e1\"}", true);
    assert_cond(c, "{\"n\":\"012\"}", true);
    assert_cond(c, "{\"n\":13}", false);
    assert_cond(c, "{\"n\":\" 12\"}", false);
    assert_cond(c, "{\"n\":\"12 \"}", false);
    assert_cond(c, "{\"n\":\"12abc\"}", false);
    assert_cond(c, "{\"n\":\"twelve\"}", false);
    assert_cond(c, "{\"n\":\"\"}", false);
    assert_cond(c, "{\"n\":true}", false);
    assert_cond(c, "{\"n\":null}", false);
    assert_cond(c, "{\"n\":{}}", false);
    assert_cond("{field: change_pct, eq: -23.5}", "{\"change_pct\":\"-23.5\"}", true);
    assert_cond("{field: v, eq: 2.5e8}", "{\"v\":250000000}", true);
    assert_cond("{field: v, eq: 0x10}", "{\"v\":16}", true); /* YAML 1.2 core int */
}

static void test_quoted_and_plain_operands_differ(void **state)
{
    (void)state;
    /* "12" is text, 12 a number */
    assert_cond("{field: n, eq: \"12\"}", "{\"n\":\"12.0\"}", false);
    assert_cond("{field: n, eq: 12}", "{\"n\":\"12.0\"}", true);
    assert_cond("{field: code, eq: \"010121\"}", "{\"code\":\"010121\"}", true);
    assert_cond("{field: code, eq: \"010121\"}", "{\"code\":\"10121\"}", false);
    assert_cond("{field: code, eq: '8542'}", "{\"code\":\"8542.0\"}", false);
    /* only true/false are booleans; no, off, yes stay text */
    assert_cond("{field: country, eq: NO}", "{\"country\":\"no\"}", true);
    assert_cond("{field: country, eq: NO}", "{\"country\":false}", false);
    assert_cond("{field: x, eq: yes}", "{\"x\":true}", false);
}

static void test_eq_booleans(void **state)
{
    (void)state;
    /* Regression (fixed): a boolean operand is stored as "false" whatever it says:
     * daemon/engine/ruleset_conds.c set_operand() picks the text from `num != 0`, but
     * compile_field passes opv->num (and append_scalar_item it.num), which
     * is 0 for a YAML boolean (the value is in node->boolean). So
     * {field: ok, eq: true} matches {"ok":false} and not {"ok":true}. */
    assert_cond("{field: ok, eq: true}", "{\"ok\":true}", true);
    assert_cond("{field: ok, eq: true}", "{\"ok\":false}", false);
    assert_cond("{field: ok, eq: false}", "{\"ok\":false}", true);
    assert_cond("{field: ok, eq: false}", "{}", false);
    assert_cond("{field: ok, eq: true}", "{\"ok\":1}", false);
    assert_cond("{field: ok, in: [true]}", "{\"ok\":true}", true);
    assert_cond("{field: ok, in: [true]}", "{\"ok\":false}", false);
}

static void test_in(void **state)
{
    (void)state;
    const char *c = "{field: partner, in: [CN, HK, MO]}";
    assert_cond(c, "{\"partner\":\"hk\"}", true);
    assert_cond(c, "{\"partner\":\"TW\"}", false);
    assert_cond(c, "{\"partner\":\"CNN\"}", false);
    assert_cond(c, "{\"partner\":[\"JP\",\"MO\"]}", true);
    assert_cond_with("lists:\n  watch: [CN, RU]\n", "{field: partner, in: $watch}",
                     "{\"partner\":\"ru\"}", true);
    /* number items compare numerically, text items as text */
    assert_cond("{field: code, in: [12, 13]}", "{\"code\":13}", true);
    assert_cond("{field: code, in: [12, 13]}", "{\"code\":\"13\"}", true);
    assert_cond("{field: code, in: [12, 13]}", "{\"code\":13.0}", true);
    assert_cond("{field: code, in: [12, 13]}", "{\"code\":\"13.5\"}", false);
    assert_cond("{field: code, in: [\"010121\", 12]}", "{\"code\":\"010121\"}", true);
    assert_cond("{field: code, in: [\"010121\", 12]}", "{\"code\":10121}", false);
    assert_cond("{field: code, in: [\"010121\", 12]}", "{\"code\":\"12.0\"}", true);
    /* an empty list holds nothing */
    assert_cond("{field: partner, in: []}", "{\"partner\":\"CN\"}", false);
}

static void test_prefix_suffix_contains(void **state)
{
    (void)state;
    assert_cond("{field: hs_code, prefix: \"8542\"}", "{\"hs_code\":854231}", true);
    assert_cond("{field: hs_code, prefix: \"8542\"}", "{\"hs_code\":\"854231\"}", true);
    assert_cond("{field: hs_code, prefix: \"8542\"}", "{\"hs_code\":\"85\"}", false);
    assert_cond("{field: hs_code, prefix: \"8542\"}", "{\"hs_code\":854131}", false);
    assert_cond("{field: hs_code, prefix: \"8542\"}", "{\"hs_code\":[8486,854239]}", true);
    /* engine choice: a number operand of prefix/suffix/contains is its
     * text as written */
    assert_cond("{field: hs_code, prefix: 8542}", "{\"hs_code\":854231}", true);
    assert_cond("{field: country, prefix: é}", "{\"country\":\"ÉTATS-UNIS\"}", true);

    assert_cond("{field: url, suffix: .gov.cn}", "{\"url\":\"http://WWW.MOFCOM.GOV.CN\"}", true);
    assert_cond("{field: url, suffix: .gov.cn}", "{\"url\":\"http://x.gov.cn.evil\"}", false);
    assert_cond("{field: url, suffix: .gov.cn}", "{\"url\":\"cn\"}", false);
    assert_cond("{field: n, suffix: \"5\"}", "{\"n\":-23.5}", true);

    assert_cond("{field: title, contains: chip}", "{\"title\":\"Chipotle\"}", true);
    assert_cond("{field: title, contains: chip}", "{\"title\":\"MICROCHIPS\"}", true);
    assert_cond("{field: title, contains: chip}", "{\"title\":\"c h i p\"}", false);
    assert_cond("{field: title, contains: \"export ban\"}", "{\"title\":\"export\\nban\"}",
                false);
    assert_cond("{field: n, contains: \"3.5\"}", "{\"n\":-23.5}", true);
}

static void test_matches(void **state)
{
    (void)state;
    const char *c = "{field: id, matches: '/^tw-20(23|24)-/'}";
    assert_cond(c, "{\"id\":\"TW-2024-05-CN-85423\"}", true);
    assert_cond(c, "{\"id\":\"tw-2023-01\"}", true);
    assert_cond(c, "{\"id\":\"tw-2022-01\"}", false);
    assert_cond(c, "{\"id\":\"xtw-2024-01\"}", false);
    /* unanchored unless anchored; case ignored */
    assert_cond("{field: title, matches: '/chip\\s+export/'}",
                "{\"title\":\"new CHIP \\n EXPORT rules\"}", true);
    assert_cond("{field: title, matches: '/e/'}", "{\"title\":\"ÉTATS\"}", true);
    assert_cond("{field: title, matches: '/é/'}", "{\"title\":\"ÉTATS\"}", false);
    /* numbers through their JSON text */
    assert_cond("{field: hs_code, matches: '/^85(41|42)/'}", "{\"hs_code\":854231}", true);
    assert_cond("{field: hs_code, matches: '/^85(41|42)/'}", "{\"hs_code\":848620}", false);
    /* no implicit boundaries */
    assert_cond("{field: title, matches: '/ban/'}", "{\"title\":\"urban\"}", true);
}

static void test_lt_lte_gt_gte(void **state)
{
    (void)state;
    assert_cond("{field: change_pct, lte: -20}", "{\"change_pct\":-23.5}", true);
    assert_cond("{field: change_pct, lte: -20}", "{\"change_pct\":-20}", true);
    assert_cond("{field: change_pct, lte: -20}", "{\"change_pct\":-19.9}", false);
    assert_cond("{field: change_pct, lte: -20}", "{\"change_pct\":\"-23.5\"}", true);
    assert_cond("{field: change_pct, lte: -20}", "{\"change_pct\":\"-20.0\"}", true);
    assert_cond("{field: change_pct, lt: -20}", "{\"change_pct\":-20}", false);
    assert_cond("{field: change_pct, lt: -20}", "{\"change_pct\":-20.5}", true);
    assert_cond("{field: value_usd, gt: 100000000}", "{\"value_usd\":1.2e9}", true);
    assert_cond("{field: value_usd, gt: 100000000}", "{\"value_usd\":\"1.5e9\"}", true);
    assert_cond("{field: value_usd, gt: 100000000}", "{\"value_usd\":100000000}", false);
    assert_cond("{field: value_usd, gt: 100000000}", "{\"value_usd\":\"1e8\"}", false);
    assert_cond("{field: value_usd, gte: 2.5e8}", "{\"value_usd\":250000000}", true);
    assert_cond("{field: value_usd, gte: 2.5e8}", "{\"value_usd\":\"2.5E8\"}", true);
    assert_cond("{field: value_usd, gte: 2.5e8}", "{\"value_usd\":249999999}", false);
    assert_cond("{field: n, gt: 0}", "{\"n\":[-5, 0, 7]}", true);
    assert_cond("{field: n, lt: 0}", "{\"n\":[5, 0, 7]}", false);
}

static void test_comparisons_with_non_numbers_are_false(void **state)
{
    (void)state;
    static const char *const values[] = {
        "\"n/a\"", "\"12%\"",   "\"\"",   "\" 5\"", "\"5 \"", "\"0x10\"", "\"1,000\"",
        "\"inf\"", "\"nan\"",   "\"Infinity\"", "\"5e\"", "\"-\"",   "\".\"",    "true",
        "false",   "null",      "{}",     "[]",     "{\"v\":5}"};
    static const char *const ops[] = {"lt", "lte", "gt", "gte"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        for (size_t k = 0; k < 4; k++) {
            /* both 'n < 1e9' and 'n > -1e9' would hold for any number */
            const char *bound = ops[k][0] == 'l' ? "1000000000" : "-1000000000";
            assert_cond(fmt("{field: n, %s: %s}", ops[k], bound), fmt("{\"n\":%s}", values[i]),
                        false);
        }
        assert_cond("{field: n, eq: 5}", fmt("{\"n\":%s}", values[i]), false);
        assert_cond("{field: n, in: [5, 0]}", fmt("{\"n\":%s}", values[i]), false);
    }
    /* a number held in a string is a number (engine choice: a sign and a
     * trailing '.' are allowed, as in strtod) */
    assert_cond("{field: n, gt: 4}", "{\"n\":\"5\"}", true);
    assert_cond("{field: n, gt: 4}", "{\"n\":\"+5\"}", true);
    assert_cond("{field: n, gt: 4}", "{\"n\":\"5.\"}", true);
}

static void test_exists(void **state)
{
    (void)state;
    assert_cond("{field: a, exists: true}", "{\"a\":1}", true);
    assert_cond("{field: a, exists: true}", "{\"a\":null}", true);
    assert_cond("{field: a, exists: true}", "{\"a\":\"\"}", true);
    assert_cond("{field: a, exists: true}", "{\"a\":{}}", true);
    assert_cond("{field: a, exists: true}", "{\"b\":1}", false);
    assert_cond("{field: a, exists: false}", "{\"b\":1}", true);
    assert_cond("{field: a, exists: false}", "{\"a\":null}", false);
    assert_cond("{field: a.b, exists: true}", "{\"a\":{\"b\":0}}", true);
    assert_cond("{field: a.b, exists: true}", "{\"a\":{}}", false);
    assert_cond("{field: a.b, exists: true}", "{\"a\":\"b\"}", false);
    assert_cond("{field: a.b, exists: true}", "{\"a\":[{\"c\":1},{\"b\":1}]}", true);
    assert_cond("{field: a.b, exists: false}", "{\"a\":[{\"c\":1}]}", true);
    /* Engine choice (DESIGN.md is silent): an empty array holds no value,
     * so it behaves like a missing field. */
    assert_cond("{field: entities, exists: true}", "{\"entities\":[]}", false);
    assert_cond("{field: entities, exists: false}", "{\"entities\":[]}", true);
}

static void test_missing_field_makes_every_operator_false(void **state)
{
    (void)state;
    static const char *const conds[] = {
        "{field: x, eq: a}",       "{field: x, eq: 1}",        "{field: x, eq: true}",
        "{field: x, eq: ''}",      "{field: x, in: [a, 1]}",   "{field: x, prefix: a}",
        "{field: x, suffix: a}",   "{field: x, contains: a}",  "{field: x, matches: '/.*/'}",
        "{field: x, lt: 1}",       "{field: x, lte: 1}",       "{field: x, gt: -1}",
        "{field: x, gte: -1}",     "{field: x, exists: true}", "{field: x.y, eq: a}",
        "{field: x.y, exists: true}"};
    static const char *const events[] = {"{}", "{\"X\":\"a\"}", "{\"y\":\"a\"}",
                                         "{\"x\":[]}", "{\"a\":{\"x\":\"a\"}}"};
    for (size_t i = 0; i < sizeof(conds) / sizeof(conds[0]); i++)
        for (size_t k = 0; k < sizeof(events) / sizeof(events[0]); k++) {
            if (strncmp(conds[i], "{field: x,", 10) != 0 && k == 3)
                continue; /* x.y under an empty array: also missing, below */
            assert_cond(conds[i], events[k], false);
            assert_cond(fmt("{not: %s}", conds[i]), events[k], true);
        }
    assert_cond("{field: x, exists: false}", "{}", true);
    assert_cond("{field: x.y.z, exists: false}", "{\"x\":{\"y\":5}}", true);
    assert_cond("{field: x.y, eq: a}", "{\"x\":[]}", false);
    /* a path through a scalar leads nowhere */
    assert_cond("{field: x.y, eq: a}", "{\"x\":\"a\"}", false);
}

static void test_arrays_and_nested_paths(void **state)
{
    (void)state;
    assert_cond("{field: countries, eq: CN}", "{\"countries\":[\"JP\",\"CN\"]}", true);
    assert_cond("{field: countries, eq: CN}", "{\"countries\":[\"JP\"]}", false);
    assert_cond("{field: countries, eq: CN}", "{\"countries\":[]}", false);
    /* not: no element is CN */
    assert_cond("{not: {field: countries, eq: CN}}", "{\"countries\":[\"JP\",\"CN\"]}", false);
    assert_cond("{not: {field: countries, eq: CN}}", "{\"countries\":[\"JP\"]}", true);
    assert_cond("{field: parties.country, in: [RU, BY]}",
                "{\"parties\":[{\"country\":\"US\"},{\"country\":\"by\"}]}", true);
    assert_cond("{field: parties.country, in: [RU, BY]}",
                "{\"parties\":[{\"country\":\"US\"},{\"name\":\"RU\"}]}", false);
    assert_cond("{field: a.b.c, eq: 2}", "{\"a\":[{\"b\":[{\"c\":1},{\"c\":2}]}]}", true);
    assert_cond("{field: a.b.c, eq: 2}", "{\"a\":[{\"b\":{\"c\":[1,[2]]}}]}", true);
    assert_cond("{field: a.b.c, eq: 3}", "{\"a\":[{\"b\":[{\"c\":1},{\"c\":2}]}]}", false);
    assert_cond("{field: a.b.c, eq: 1}", "{\"a\":{\"b\":{\"c\":{\"d\":1}}}}", false);
    assert_cond("{field: n, lt: 10}", "{\"n\":[50, 5]}", true);
    assert_cond("{field: m, eq: x}", "{\"m\":[[\"y\"],[[\"X\"]]]}", true);
    /* an object is not a value that operators compare */
    assert_cond("{field: meta, eq: x}", "{\"meta\":{\"x\":1}}", false);
    assert_cond("{field: meta, contains: x}", "{\"meta\":{\"x\":1}}", false);
    assert_cond("{field: meta, matches: '/x/'}", "{\"meta\":{\"x\":1}}", false);
}

/* ==== all / any / not, macros, lists ===================================== */

static void test_all_any_not(void **state)
{
    (void)state;
    const char *ev = "{\"type\":\"news\"}";
    const char *T = "{field: type, eq: news}", *F = "{field: type, eq: trade}";
    assert_cond("{all: []}", ev, true);
    assert_cond("{any: []}", ev, false);
    assert_cond("{not: {all: []}}", ev, false);
    assert_cond("{not: {any: []}}", ev, true);
    assert_cond(fmt("{all: [%s, %s]}", T, T), ev, true);
    assert_cond(fmt("{all: [%s, %s]}", T, F), ev, false);
    assert_cond(fmt("{any: [%s, %s]}", F, T), ev, true);
    assert_cond(fmt("{any: [%s, %s]}", F, F), ev, false);
    assert_cond(fmt("{not: %s}", T), ev, false);
    assert_cond(fmt("{not: {not: %s}}", T), ev, true);
    assert_cond(fmt("{all: [{any: [%s, {not: %s}]}, {not: {all: [%s, %s]}}]}", F, F, T, F), ev,
                true);
}

static void test_macros(void **state)
{
    (void)state;
    const char *prelude = "macros:\n"
                          "  chip_news: {all: [{macro: is_news}, {text: {any: [chip*]}}]}\n"
                          "  is_news: {field: type, eq: news}\n";
    assert_cond_with(prelude, "{macro: chip_news}", "{\"type\":\"news\",\"title\":\"Chips\"}",
                     true);
    assert_cond_with(prelude, "{macro: chip_news}", "{\"type\":\"trade\",\"title\":\"Chips\"}",
                     false);
    assert_cond_with(prelude, "{not: {macro: is_news}}", "{\"type\":\"trade\"}", true);
    assert_cond_with(prelude, "{any: [{macro: is_news}, {macro: chip_news}]}",
                     "{\"type\":\"NEWS\"}", true);

    /* a macro from another file, defined after the rule that uses it */
    static const char a[] = "rules:\n  - id: r\n    match: {macro: is_trade}\n";
    static const char b[] = "macros:\n  is_trade: {field: type, eq: trade}\n";
    vg_rule_source_t src[] = {{"a.yaml", a, sizeof(a) - 1}, {"b.yaml", b, sizeof(b) - 1}};
    vg_ruleset_t *rs = load_sources(src, 2, NULL);
    assert_string_equal(fired_with(rs, "{\"type\":\"trade\"}"), "r");
    assert_string_equal(fired_with(rs, "{\"type\":\"news\"}"), "");
}

static void test_list_splicing(void **state)
{
    (void)state;
    const char *prelude = "lists:\n"
                          "  all3: [$more, gamma]\n"
                          "  more: [$base, beta]\n"
                          "  base: [alpha]\n";
    const char *cond = "{text: {any: $all3}}";
    assert_cond_with(prelude, cond, title_event("alpha"), true);
    assert_cond_with(prelude, cond, title_event("beta"), true);
    assert_cond_with(prelude, cond, title_event("gamma"), true);
    assert_cond_with(prelude, cond, title_event("delta"), false);
    /* $name inside a term list written in place */
    assert_cond_with(prelude, "{text: {any: [$base, delta]}}", title_event("delta"), true);
    assert_cond_with(prelude, "{text: {any: [$base, delta]}}", title_event("alpha"), true);
    assert_cond_with(prelude, "{text: {any: [$base, delta]}}", title_event("beta"), false);
    assert_cond_with(prelude, "{text: {all: [$more]}}", title_event("alpha"), false);
    assert_cond_with(prelude, "{text: {all: [$more]}}", title_event("beta alpha"), true);
    /* and inside 'in' */
    assert_cond_with(prelude, "{field: x, in: [$more, zeta]}", "{\"x\":\"BETA\"}", true);
    assert_cond_with(prelude, "{field: x, in: [$more, zeta]}", "{\"x\":\"zeta\"}", true);
    assert_cond_with(prelude, "{field: x, in: [$more, zeta]}", "{\"x\":\"gamma\"}", false);

    /* across files */
    static const char a[] = "lists:\n  firms: [$chips, Huawei]\n"
                            "rules:\n  - id: r\n    match: {text: {any: $firms}}\n";
    static const char b[] = "lists:\n  chips: [SMIC, TSMC]\n";
    vg_rule_source_t src[] = {{"a.yaml", a, sizeof(a) - 1}, {"b.yaml", b, sizeof(b) - 1}};
    vg_ruleset_t *rs = load_sources(src, 2, NULL);
    assert_string_equal(fired_with(rs, "{\"title\":\"tsmc\"}"), "r");
    assert_string_equal(fired_with(rs, "{\"title\":\"huawei\"}"), "r");
    assert_string_equal(fired_with(rs, "{\"title\":\"intel\"}"), "");
}

/* ==== several rules, disabled rules, reuse ================================ */

static const char SEVERAL[] = "rules:\n"
                              "  - id: keyword\n"
                              "    match: {text: {any: [ban]}}\n"
                              "  - id: is-news\n"
                              "    match: {field: type, eq: news}\n"
                              "  - id: is-trade\n"
                              "    match: {field: type, eq: trade}\n"
                              "  - id: off\n"
                              "    enabled: false\n"
                              "    match: {all: []}\n"
                              "  - id: always\n"
                              "    match: {all: []}\n";

static void test_several_rules_fire_on_one_event(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules(SEVERAL);
    assert_string_equal(fired_with(rs, "{\"type\":\"news\",\"title\":\"a ban\"}"),
                        "keyword is-news always");
    assert_string_equal(fired_with(rs, "{\"type\":\"trade\"}"), "is-trade always");
}

static void test_scanner_state_does_not_leak_between_events(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules(SEVERAL);
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    assert_ptr_equal(vg_scanner_ruleset(sc), rs);
    char err[128];
    static const char *const events[] = {"{\"type\":\"news\",\"title\":\"a ban\"}",
                                         "{\"type\":\"trade\",\"title\":\"banned\"}",
                                         "{\"body\":\"ban\"}", "{}"};
    static const int want[] = {3, 2, 2, 1};
    static const char *const first[] = {"keyword", "is-trade", "keyword", "always"};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < 4; i++) {
            assert_int_equal(vg_scanner_eval(sc, event(events[i]), err, sizeof(err)), want[i]);
            assert_string_equal(vg_rule_id(vg_scanner_match(sc, 0)), first[i]);
        }
}

static void test_disabled_rules_do_not_fire(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules(SEVERAL);
    assert_int_equal(vg_ruleset_rule_count(rs), 5);
    const vg_rule_t *off = vg_ruleset_rule(rs, 3);
    assert_string_equal(vg_rule_id(off), "off");
    assert_false(vg_rule_enabled(off));
    assert_true(vg_rule_enabled(vg_ruleset_rule(rs, 4)));
    assert_string_equal(fired_with(rs, "{}"), "always");

    /* evaluated on its own (vigil test), a disabled rule still works */
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    char err[128];
    assert_int_equal(vg_scanner_eval_rule(sc, event("{}"), off, err, sizeof(err)), 1);
    assert_ptr_equal(vg_scanner_match(sc, 0), off);
    assert_int_equal(vg_scanner_eval_rule(sc, event("{}"), vg_ruleset_rule(rs, 2), err,
                                          sizeof(err)),
                     0);
    assert_null(vg_scanner_match(sc, 0));
}

static void test_explain(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules("rules:\n"
                                  "  - id: r\n"
                                  "    match:\n"
                                  "      all:\n"
                                  "        - {field: type, eq: news}\n"
                                  "        - text: {any: [ban]}\n");
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    vg_event_t *ev = event("{\"type\":\"news\",\"title\":\"urban\"}");
    char err[128];
    assert_int_equal(vg_scanner_eval_rule(sc, ev, vg_ruleset_rule(rs, 0), err, sizeof(err)), 0);
    char *text = own(free, vg_scanner_explain(sc, ev, vg_ruleset_rule(rs, 0)));
    assert_non_null(text);
    /* one line per condition, with its location and value */
    assert_non_null(strstr(text, "rules.yaml:4:7: all -> false"));
    assert_non_null(strstr(text, "rules.yaml:5:12: field type eq news -> true"));
    assert_non_null(strstr(text, "rules.yaml:6:11: text any [\"ban\"] in [title, body] -> false"));
}

/* ==== evidence ============================================================ */

static void test_evidence_byte_offsets_in_utf8(void **state)
{
    (void)state;
    json_object *m = evidence(
        "lists:\n"
        "  restriction_terms: [export control*, entity list]\n"
        "rules:\n"
        "  - id: r\n"
        "    match:\n"
        "      all:\n"
        "        - text: {any: $restriction_terms}\n"
        "        - text: {any: [SMIC], fields: [body]}\n",
        "{\"title\":\"ÉTATS-UNIS: Washington tightens export controls\","
        "\"body\":\"SMIC was added to the Entity\\n  List.\"}");
    assert_int_equal(json_object_array_length(m), 3);
    /* 32 characters but 33 bytes precede the match: É is two bytes */
    assert_evidence(m, "title", "export control*", "restriction_terms", 33, 15);
    /* the length covers the original white space */
    assert_evidence(m, "body", "entity list", "restriction_terms", 22, 13);
    assert_evidence(m, "body", "SMIC", NULL, 0, 4);
    json_object *t = find_match(m, "title", "export control*");
    assert_non_null(strstr(str_member(t, "snippet"), "export controls"));
}

static void test_evidence_names_the_list_a_term_was_written_in(void **state)
{
    (void)state;
    /* engine choice: a spliced term reports the list it is written in */
    json_object *m = evidence("lists:\n"
                              "  base: [alpha]\n"
                              "  more: [$base, beta]\n"
                              "rules:\n"
                              "  - id: r\n"
                              "    match: {text: {all: [$more, gamma]}}\n",
                              "{\"title\":\"alpha beta\",\"body\":\"gamma\"}");
    assert_int_equal(json_object_array_length(m), 3);
    assert_evidence(m, "title", "alpha", "base", 0, 5);
    assert_evidence(m, "title", "beta", "more", 6, 4);
    assert_evidence(m, "body", "gamma", NULL, 0, 5);
}

static void test_evidence_offsets_after_folds_that_change_length(void **state)
{
    (void)state;
    /* ẞ (3 bytes) folds to ß (2 bytes); KELVIN SIGN (3 bytes) to k */
    json_object *m = evidence("rules:\n  - id: r\n    match: {text: {all: [straße, ban, kelvin]}}\n",
                              "{\"title\":\"Die STRA\xe1\xba\x9e" "E ist zu. ban!\","
                              "\"body\":\"\xe2\x84\xaa" "ELVIN  \\t ban\"}");
    assert_evidence(m, "title", "straße", NULL, 4, 8);
    assert_evidence(m, "title", "ban", NULL, 21, 3);
    assert_evidence(m, "body", "kelvin", NULL, 0, 8);
    assert_evidence(m, "body", "ban", NULL, 12, 3);
}

static void test_evidence_of_star_regex_and_array_terms(void **state)
{
    (void)state;
    json_object *m = evidence("rules:\n"
                              "  - id: r\n"
                              "    match:\n"
                              "      all:\n"
                              "        - text: {all: [sanction*, 'export* ban', "
                              "'/curb(s|ed)/']}\n"
                              "        - text: {any: [smic], fields: [entities]}\n",
                              "{\"title\":\"US sanctioned \\u00c9 exporters  ban\","
                              "\"body\":\"new curbs\",\"entities\":[\"MITI\",\"SMIC\"]}");
    assert_evidence(m, "title", "sanction*", NULL, 3, 10);
    assert_evidence(m, "title", "export* ban", NULL, 17, 14);
    assert_evidence(m, "body", "/curb(s|ed)/", NULL, 4, 5);
    /* offsets are within the array element */
    assert_evidence(m, "entities", "smic", NULL, 0, 4);
    assert_string_equal(str_member(find_match(m, "entities", "smic"), "snippet"), "SMIC");
}

static void test_evidence_of_regex_without_start_of_match(void **state)
{
    (void)state;
    /* Engine choice: vectorscan cannot report where a match of
     * /a.{0,200}b/ starts (in UCP mode with start-of-match); the term
     * still works and its evidence is where the match ends (length 0). */
    json_object *m = evidence("rules:\n  - id: r\n    match: {text: {any: ['/a.{0,200}b/']}}\n",
                              "{\"title\":\"xx a---b yy\"}");
    json_object *e = find_match(m, "title", "/a.{0,200}b/");
    assert_int_equal(int_member(e, "offset") + int_member(e, "length"), 8);
    assert_true(int_member(e, "offset") == 3 || int_member(e, "length") == 0);
}

static void test_evidence_in_long_text(void **state)
{
    (void)state;
    size_t n = 100000;
    char *body = own(free, malloc(n + 64));
    for (size_t i = 0; i < n; i += 2)
        memcpy(body + i, "x ", 2);
    strcpy(body + n, "ban");
    json_object *m = evidence("rules:\n  - id: r\n    match: {text: {any: [ban]}}\n",
                              fmt("{\"body\":\"%s\"}", body));
    assert_evidence(m, "body", "ban", NULL, (int64_t)n, 3);
    const char *snip = str_member(find_match(m, "body", "ban"), "snippet");
    assert_true(strlen(snip) < 200);
    assert_non_null(strstr(snip, "ban"));
}

static void test_evidence_excludes_not_and_unsearched_fields(void **state)
{
    (void)state;
    json_object *m = evidence("rules:\n"
                              "  - id: r\n"
                              "    match:\n"
                              "      all:\n"
                              "        - text: {any: [ban], fields: [title]}\n"
                              "        - not: {text: {all: [satire, onion]}}\n",
                              "{\"title\":\"a ban\",\"body\":\"ban satire\"}");
    assert_int_equal(json_object_array_length(m), 1);
    assert_evidence(m, "title", "ban", NULL, 2, 3);
}

static void test_evidence_only_from_true_keyword_conditions(void **state)
{
    (void)state;
    /* Regression (fixed): daemon/scanner.c collect() adds the hits of every text
     * condition that is not under 'not', also of one that evaluated false
     * (here: 'alpha' occurs but 'beta' does not, so the all-condition is
     * false and the rule fires through the field condition). The alert
     * then claims keyword evidence that did not make anything true. */
    json_object *m = evidence("rules:\n"
                              "  - id: r\n"
                              "    match:\n"
                              "      any:\n"
                              "        - text: {all: [alpha, beta]}\n"
                              "        - {field: type, eq: news}\n",
                              "{\"type\":\"news\",\"title\":\"alpha\"}");
    assert_int_equal(json_object_array_length(m), 0);
}

/* ==== rules 7-16: normalisation, scripts, case, except, near, entities ==== */

static void test_normalisation_of_text_and_terms(void **state)
{
    (void)state;
    assert_text("SMIC", "\xef\xbc\xb3\xef\xbc\xad\xef\xbc\xa9\xef\xbc\xa3 listed", true); /* ＳＭＩＣ */
    assert_text("finance", "\xef\xac\x81nance", true);                      /* ﬁ ligature */
    assert_text("sanctions", "sanc\xc2\xadtions", true);                    /* soft hyphen */
    assert_text("China's", "China\xe2\x80\x99s curbs", true);               /* ’ */
    assert_text("Petroleos", "Petro\xcc\x81leos", true);                    /* o + U+0301 */
    assert_text("istanbul", "\xc4\xb0STANBUL", true);                       /* İ */
    assert_text("\xd0\xb5\xd0\xb6", "\xd1\x91\xd0\xb6", true);              /* её: ё ≡ е */
    assert_text("rare earth", "rare \xe2\x80\x93 earth", true);             /* en dash gap */
    assert_text("rare earth", "rare--earth", false);
    /* marks of other scripts are kept, and belong to their word */
    assert_text("\xe0\xa4\xb0\xe0\xa5\x82\xe0\xa4\xb8", "\xe0\xa4\xb0\xe0\xa5\x82\xe0\xa4\xb8\xe0\xa5\x80", false);
}

static void test_scripts_without_spaces_and_hangul(void **state)
{
    (void)state;
    assert_text("美光", "美光科技未通过网络安全审查", true);
    assert_text("SMIC", "美国将SMIC列入实体清单", true);
    assert_text("2023", "2023年", true);
    assert_text("輸出規制", "政府は輸出規制を強化", true);
    assert_text("マイクロ", "マイクロンに", true);
    assert_text("삼성전자", "삼성전자가 발표", true);
    assert_text("전자", "삼성전자", false);
    assert_text("SMIC", "SMICs", false);
}

static void test_case_sensitive_condition(void **state)
{
    (void)state;
    const char *cs = "{text: {any: [US], case: sensitive}}";
    assert_cond(cs, title_event("US curbs"), true);
    assert_cond(cs, title_event("tell us"), false);
    assert_cond("{text: {any: [US]}}", title_event("tell us"), true);
    /* rule 8 still applies, and except terms are case-sensitive too */
    assert_cond("{text: {any: [Petroleos], case: sensitive}}", title_event("Petróleos"), true);
    assert_cond("{text: {any: [US], except: [US Steel], case: sensitive}}",
                title_event("US Steel rose"), false);
    assert_cond("{text: {any: [US], except: [US Steel], case: sensitive}}",
                title_event("US steel rose"), true);
    assert_cond("{text: {any: ['/US/'], case: sensitive}}", title_event("us"), false);
}

static void test_except_discards_matches_inside_exceptions(void **state)
{
    (void)state;
    const char *c = "{text: {any: [chip*], except: ['blue chip*', 'potato chip*']}}";
    assert_cond(c, title_event("blue chips rallied"), false);
    assert_cond(c, title_event("blue chips rallied as chip stocks fell"), true);
    assert_cond(c, title_event("potato chips and blue chips"), false);
    /* in another field value the exception does not reach */
    assert_cond("{text: {any: [chip*], except: ['blue chip*']}}",
                "{\"title\":\"blue chips\",\"body\":\"chips\"}", true);
    assert_cond("{text: {all: [chip*, fell], except: ['blue chip*']}}",
                title_event("blue chips fell"), false);
}

static void test_near_counts_words_between(void **state)
{
    (void)state;
    const char *lists = "lists:\n  makers: [SMIC, 美光]\n  terms: [entity list, 审查]\n";
    const char *c8 = "{text: {near: [$makers, $terms], within: 8}}";
    const char *c7 = "{text: {near: [$makers, $terms], within: 7}}";
    const char *t = title_event("SMIC was added on Friday to the U.S. entity list");
    assert_cond_with(lists, c8, t, true);
    assert_cond_with(lists, c7, t, false);
    /* each Han character is a word: 科技未通过网络安全 are nine */
    assert_cond_with(lists, "{text: {near: [$makers, $terms], within: 9}}",
                     title_event("美光科技未通过网络安全审查"), true);
    assert_cond_with(lists, c8, title_event("美光科技未通过网络安全审查"), false);
    /* unordered by default; ordered: true wants the first list first */
    assert_cond_with(lists, c8, title_event("entity list adds SMIC"), true);
    assert_cond_with(lists, "{text: {near: [$makers, $terms], within: 8, ordered: true}}",
                     title_event("entity list adds SMIC"), false);
    /* one field value: not across title and body */
    assert_cond_with(lists, c8, "{\"title\":\"SMIC\",\"body\":\"entity list\"}", false);
    assert_cond_with(lists, "{text: {near: [$makers, $terms], within: 0, except: [SMIC says]}}",
                     title_event("SMIC says entity list; SMIC entity list"), true);
}

static void test_entities(void **state)
{
    (void)state;
    const char *lists = "lists:\n"
                        "  makers:\n"
                        "    - {name: Micron, aliases: [美光, マイクロン]}\n"
                        "    - SMIC\n";
    /* under all, an entity is one item satisfied by any of its terms */
    assert_cond_with(lists, "{text: {all: [$makers]}}", title_event("美光 and SMIC"), true);
    assert_cond_with(lists, "{text: {all: [$makers]}}", title_event("美光 and マイクロン"), false);
    /* in a field's in: only the name */
    assert_cond_with(lists, "{field: company, in: $makers}", "{\"company\":\"micron\"}", true);
    assert_cond_with(lists, "{field: company, in: $makers}", "{\"company\":\"美光\"}", false);
    json_object *m = evidence(fmt("%srules:\n  - id: r\n    match: {text: {any: $makers}}\n", lists),
                              "{\"title\":\"美光科技 and SMIC\"}");
    assert_evidence(m, "title", "美光", "makers", 0, 6);
    assert_string_equal(str_member(find_match(m, "title", "美光"), "entity"), "Micron");
    assert_null(json_object_object_get(find_match(m, "title", "SMIC"), "entity"));
}

static void test_evidence_offsets_in_original_bytes(void **state)
{
    (void)state;
    /* full-width letters, a soft hyphen and a decomposed accent before it */
    json_object *m = evidence("rules:\n  - id: r\n    match: {text: {any: [sanctions, petroleos]}}\n",
                              "{\"title\":\"\xef\xbc\xa1 Petro\xcc\x81leos sanc\xc2\xadtions\"}");
    assert_evidence(m, "title", "petroleos", NULL, 4, 11);
    assert_evidence(m, "title", "sanctions", NULL, 16, 11);
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, cleanup)
    const struct CMUnitTest tests[] = {
        T(test_text_ignores_ascii_case),
        T(test_text_ignores_unicode_case),
        T(test_phrase_matches_any_white_space_run),
        T(test_phrase_needs_its_words_in_order),
        T(test_boundaries_accept_punctuation_and_ends),
        T(test_boundaries_refuse_word_characters),
        T(test_boundaries_later_occurrence_counts),
        T(test_term_with_punctuation_at_its_edges),
        T(test_star_allows_word_endings),
        T(test_star_at_end_of_a_phrase),
        T(test_star_in_a_non_final_word),
        T(test_star_in_several_words_or_after_one_letter),
        T(test_star_inside_a_word_is_literal),
        T(test_regex_terms),
        T(test_other_characters_are_literal),
        T(test_double_dollar_escapes_a_leading_dollar),
        T(test_text_any_across_fields),
        T(test_text_all_across_fields),
        T(test_text_fields_override),
        T(test_text_default_fields_option),
        T(test_text_hits_in_other_fields_do_not_count),
        T(test_text_array_elements_are_separate_texts),
        T(test_text_in_numbers_and_other_values),
        T(test_eq_strings),
        T(test_eq_number_event_compared_through_its_json_text),
        T(test_eq_number_operand_compares_numerically),
        T(test_quoted_and_plain_operands_differ),
        T(test_eq_booleans),
        T(test_in),
        T(test_prefix_suffix_contains),
        T(test_matches),
        T(test_lt_lte_gt_gte),
        T(test_comparisons_with_non_numbers_are_false),
        T(test_exists),
        T(test_missing_field_makes_every_operator_false),
        T(test_arrays_and_nested_paths),
        T(test_all_any_not),
        T(test_macros),
        T(test_list_splicing),
        T(test_several_rules_fire_on_one_event),
        T(test_scanner_state_does_not_leak_between_events),
        T(test_disabled_rules_do_not_fire),
        T(test_explain),
        T(test_evidence_byte_offsets_in_utf8),
        T(test_evidence_names_the_list_a_term_was_written_in),
        T(test_evidence_offsets_after_folds_that_change_length),
        T(test_evidence_of_star_regex_and_array_terms),
        T(test_evidence_of_regex_without_start_of_match),
        T(test_evidence_in_long_text),
        T(test_evidence_excludes_not_and_unsearched_fields),
        T(test_evidence_only_from_true_keyword_conditions),
        T(test_normalisation_of_text_and_terms),
        T(test_scripts_without_spaces_and_hangul),
        T(test_case_sensitive_condition),
        T(test_except_discards_matches_inside_exceptions),
        T(test_near_counts_words_between),
        T(test_entities),
        T(test_evidence_offsets_in_original_bytes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
