/* Loading rule files (include/vigil/ruleset.h, DESIGN.md "Rule files"):
 * every mistake an analyst can make is reported, all of them in one
 * load, each at its file:line:col with a helpful message; valid files
 * give a ruleset with the expected contents and a stable fingerprint. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "vigil/ruleset.h"
#include "vigil/scanner.h"

/* ---- cleanup -------------------------------------------------------------
 * What a helper creates is freed by the per-test teardown, also when an
 * assertion fails half-way. */

static void remove_path(void *p)
{
    remove(p);
    free(p);
}

/* ---- files on disk ------------------------------------------------------- */

static const char *data_path(const char *rel)
{
    return fmt("%s/tests/data/%s", source_dir(), rel);
}

/* A fresh temporary folder, removed (when empty again) at teardown. */
static const char *temp_dir(void)
{
    char *d = strdup("/tmp/vigil-test-ruleset-XXXXXX");
    assert_non_null(d);
    assert_non_null(mkdtemp(d));
    return own(remove_path, d);
}

/* Writes len bytes to dir/name; the file is removed at teardown. */
static const char *write_file_n(const char *dir, const char *name, const char *data, size_t len)
{
    char *path = strdup(fmt("%s/%s", dir, name));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return own(remove_path, path);
}

static const char *write_file(const char *dir, const char *name, const char *text)
{
    return write_file_n(dir, name, text, strlen(text));
}

/* ---- loading ------------------------------------------------------------- */

static vg_diags_t *new_diags(void)
{
    return own((free_fn)vg_diags_destroy, vg_diags_new());
}

static vg_ruleset_t *load_ok_sources(const vg_rule_source_t *src, size_t n,
                                     const vg_ruleset_options_t *opts)
{
    vg_diags_t *d = new_diags();
    vg_ruleset_t *rs = vg_ruleset_load_sources(src, n, opts, d);
    if (rs == NULL) {
        vg_diags_print(d, stderr);
        fail_msg("the rules did not load");
    }
    assert_int_equal(vg_diags_errors(d), 0);
    return own((free_fn)vg_ruleset_destroy, rs);
}

static vg_ruleset_t *load_ok(const char *yaml)
{
    vg_rule_source_t src = {"rules.yaml", yaml, strlen(yaml)};
    return load_ok_sources(&src, 1, NULL);
}

static vg_ruleset_t *load_ok_paths(const char *const *paths, size_t n)
{
    vg_diags_t *d = new_diags();
    vg_ruleset_t *rs = vg_ruleset_load(paths, n, NULL, d);
    if (rs == NULL) {
        vg_diags_print(d, stderr);
        fail_msg("the rules at %s did not load", paths[0]);
    }
    assert_int_equal(vg_diags_errors(d), 0);
    return own((free_fn)vg_ruleset_destroy, rs);
}

/* Loads in-memory files that must be refused (NULL ruleset, at least one
 * error); returns the diagnostics. */
static vg_diags_t *load_bad_sources(const vg_rule_source_t *src, size_t n)
{
    vg_diags_t *d = new_diags();
    vg_ruleset_t *rs = vg_ruleset_load_sources(src, n, NULL, d);
    if (rs != NULL) {
        vg_ruleset_destroy(rs);
        fail_msg("the rules loaded although they are invalid:\n%s", src[0].data);
    }
    assert_true(vg_diags_errors(d) >= 1);
    return d;
}

static vg_diags_t *load_bad_n(const char *data, size_t len)
{
    vg_rule_source_t src = {"rules.yaml", data, len};
    return load_bad_sources(&src, 1);
}

static vg_diags_t *load_bad(const char *yaml)
{
    return load_bad_n(yaml, strlen(yaml));
}

/* Diagnostic i is an error at file:line:col whose message contains
 * phrase; the formatted line starts with "file:line:col: error: ". */
static void assert_error(const vg_diags_t *d, size_t i, const char *file, unsigned line,
                         unsigned col, const char *phrase)
{
    const vg_diag_t *m = vg_diags_get(d, i);
    if (m == NULL) {
        vg_diags_print(d, stderr);
        fail_msg("no diagnostic %zu", i);
    }
    char text[2048];
    vg_diags_format(d, i, text, sizeof(text));
    char *prefix = fmt("%s:%u:%u: error: ", file, line, col);
    if (m->level != VG_DIAG_ERROR || strncmp(text, prefix, strlen(prefix)) != 0 ||
        strstr(m->message, phrase) == NULL) {
        vg_diags_print(d, stderr);
        fail_msg("diagnostic %zu: wanted '%s...%s...'", i, prefix, phrase);
    }
}

/* The YAML gives exactly one error, at line:col of rules.yaml, containing
 * phrase. */
#define expect_error(yaml, line, col, phrase) expect_error_n((yaml), strlen(yaml), line, col, phrase)

static void expect_error_n(const char *data, size_t len, unsigned line, unsigned col,
                           const char *phrase)
{
    vg_diags_t *d = load_bad_n(data, len);
    if (vg_diags_errors(d) != 1) {
        vg_diags_print(d, stderr);
        fail_msg("wanted 1 error, got %zu", vg_diags_errors(d));
    }
    assert_error(d, 0, "rules.yaml", line, col, phrase);
}

/* ==== file structure ====================================================== */

static void test_unknown_top_level_key(void **state)
{
    (void)state;
    expect_error("lists:\n"
                 "  a: [x]\n"
                 "rulez:\n"
                 "  - id: r\n"
                 "    match: {all: []}\n",
                 3, 1, "unknown key 'rulez' in a rule file (did you mean 'rules'?)");
    expect_error("whatever: 1\n", 1, 1, "unknown key 'whatever' in a rule file (allowed: lists, "
                                        "macros, rules)");
    expect_error("- a\n- b\n", 1, 1, "a rule file is a map");
    expect_error("rules: {id: r}\n", 1, 8, "'rules' takes a list of rules");
}

static void test_unknown_rule_key(void **state)
{
    (void)state;
    expect_error("rules:\n"
                 "  - id: r\n"
                 "    severtiy: high\n"
                 "    match: {all: []}\n",
                 3, 5, "unknown key 'severtiy' in a rule (did you mean 'severity'?)");
    expect_error("rules:\n"
                 "  - id: r\n"
                 "    alert: {topc: x}\n"
                 "    match: {all: []}\n",
                 3, 13, "unknown key 'topc' in alert (did you mean 'topic'?)");
    expect_error("rules:\n"
                 "  - id: r\n"
                 "    match: {all: []}\n"
                 "    tests: {match: [{a: 1}], nomatch: []}\n",
                 4, 30, "unknown key 'nomatch' in tests (did you mean 'no_match'?)");
}

static void test_rule_without_match(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    title: T\n", 2, 5, "rule 'r' has no 'match' condition");
    expect_error("rules:\n  - title: T\n    match: {all: []}\n", 2, 5,
                 "missing required key 'id'");
}

static void test_bad_rule_id(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: Chip Rule\n    match: {all: []}\n", 2, 9,
                 "rule id 'Chip Rule' must be lower-case letters, digits, '.', '_' or '-'");
    expect_error("rules:\n  - id: -r\n    match: {all: []}\n", 2, 9, "rule id '-r'");
    expect_error("rules:\n  - id: r/1\n    match: {all: []}\n", 2, 9, "rule id 'r/1'");
    /* digits first, dots and underscores are fine */
    assert_int_equal(vg_ruleset_rule_count(load_ok("rules:\n"
                                                   "  - id: 1tf.surge_2-x\n"
                                                   "    match: {all: []}\n")),
                     1);
}

static void test_invalid_severity(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    severity: hihg\n    match: {all: []}\n", 3, 15,
                 "unknown severity 'hihg' (did you mean 'high'?)");
    expect_error("rules:\n  - id: r\n    severity: urgent\n    match: {all: []}\n", 3, 15,
                 "severity must be one of info, low, medium, high, critical");
    expect_error("rules:\n  - id: r\n    severity: HIGH\n    match: {all: []}\n", 3, 15,
                 "severity 'HIGH'");
}

static void test_other_rule_values(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    enabled: yes\n    match: {all: []}\n", 3, 14,
                 "'enabled' takes true or false, got a string");
    expect_error("rules:\n  - id: r\n    alert: {topic: 'bad topic'}\n    match: {all: []}\n", 3,
                 20, "'bad topic' is not a valid Kafka topic name");
    expect_error("rules:\n  - id: r\n    tags: news\n    match: {all: []}\n", 3, 11,
                 "'tags' takes a list of strings");
}

/* ==== conditions ========================================================== */

static void test_unknown_condition(void **state)
{
    (void)state;
    expect_error("rules:\n"
                 "  - id: r\n"
                 "    match:\n"
                 "      all:\n"
                 "        - tetx: {any: [ban]}\n",
                 5, 11, "unknown condition 'tetx' (did you mean 'text'?)");
    expect_error("rules:\n  - id: r\n    match: {zzzzz: 1}\n", 3, 13,
                 "unknown condition 'zzzzz' (a condition is one of all, any, not, macro, text, "
                 "field)");
    expect_error("rules:\n  - id: r\n    match: {eq: news}\n", 3, 13,
                 "operator 'eq' needs 'field: PATH' beside it");
    expect_error("rules:\n  - id: r\n    match: {}\n", 3, 12, "a condition must be a map");
    expect_error("rules:\n  - id: r\n    match: [a]\n", 3, 12, "a condition must be a map");
    expect_error("rules:\n  - id: r\n    match: {all: {not: {any: []}}}\n", 3, 18,
                 "'all' takes a list of conditions");
}

static void test_two_forms_in_one_condition(void **state)
{
    (void)state;
    expect_error("rules:\n"
                 "  - id: r\n"
                 "    match:\n"
                 "      text: {any: [ban]}\n"
                 "      field: type\n",
                 5, 7, "'text' and 'field' both given (wrap them in 'all' or 'any')");
    expect_error("rules:\n  - id: r\n    match: {not: {all: []}, any: []}\n", 3, 29,
                 "'not' and 'any' both given");
    /* an operator beside a form other than field */
    expect_error("rules:\n  - id: r\n    match: {text: {any: [x]}, eq: 1}\n", 3, 31,
                 "unexpected key 'eq' beside 'text'");
}

static void test_field_operator_mistakes(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    match: {field: type}\n", 3, 13,
                 "field condition on 'type' needs an operator: eq, in, prefix, suffix");
    expect_error("rules:\n  - id: r\n    match: {field: type, eq: news, in: [a]}\n", 3, 36,
                 "a field condition takes one operator; 'eq' and 'in' both given");
    expect_error("rules:\n  - id: r\n    match: {field: type, prefx: news}\n", 3, 26,
                 "unknown operator 'prefx' (did you mean 'prefix'?)");
    expect_error("rules:\n  - id: r\n    match: {field: type, equal: news}\n", 3, 26,
                 "unknown operator 'equal' (operators: eq, in, prefix, suffix, contains, "
                 "matches, lt, lte, gt, gte, exists)");
    expect_error("rules:\n  - id: r\n    match: {field: x, eq: [a, b]}\n", 3, 27,
                 "'eq' takes a single value, got a list (use 'in' for a list)");
    expect_error("rules:\n  - id: r\n    match: {field: x, in: {a: 1}}\n", 3, 27,
                 "'in' takes a list or '$listname', got a map");
    expect_error("rules:\n  - id: r\n    match: {field: x, exists: maybe}\n", 3, 31,
                 "'exists' takes true or false");
    expect_error("rules:\n  - id: r\n    match: {field: x, prefix: }\n", 3, 31,
                 "'prefix' needs a value, got null");
    expect_error("rules:\n  - id: r\n    match: {field: a..b, eq: 1}\n", 3, 20,
                 "invalid field path 'a..b'");
}

static void test_comparison_needs_a_number(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    match: {field: change_pct, lt: \"5\"}\n", 3, 36,
                 "'lt' compares numbers: write a number such as 100 or -2.5e3, got a string "
                 "(remove the quotes)");
    expect_error("rules:\n  - id: r\n    match: {field: t, gte: '-20'}\n", 3, 28,
                 "'gte' compares numbers");
    expect_error("rules:\n  - id: r\n    match: {field: t, gt: abc}\n", 3, 27,
                 "'gt' compares numbers");
    expect_error("rules:\n  - id: r\n    match: {field: t, lte: true}\n", 3, 28,
                 "'lte' compares numbers");
    expect_error("rules:\n  - id: r\n    match: {field: t, lt: .nan}\n", 3, 27,
                 "'lt' compares numbers");
}

static void test_regular_expression_mistakes(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    match: {field: t, matches: abc}\n", 3, 32,
                 "'matches' takes a regular expression written /…/, got text without slashes");
    /* what vectorscan cannot compile is refused, with its reason */
    expect_error("rules:\n  - id: r\n    match: {field: t, matches: '/(a)\\1/'}\n", 3, 32,
                 "regular expression /(a)\\1/ cannot be compiled: Back-references are "
                 "unsupported");
    expect_error("rules:\n  - id: r\n    match: {text: {any: ['/(a)\\1/']}}\n", 3, 26,
                 "regular expression /(a)\\1/ cannot be compiled: Back-references are "
                 "unsupported");
    expect_error("rules:\n  - id: r\n    match: {text: {any: ['/(?<=a)b/']}}\n", 3, 26,
                 "cannot be compiled: Zero-width assertions are not supported");
    expect_error("rules:\n  - id: r\n    match: {text: {any: ['/\\bban\\b/']}}\n", 3, 26,
                 "cannot be compiled: \\b unsupported in UCP mode");
    expect_error("rules:\n  - id: r\n    match: {text: {any: [ok, '/[/']}}\n", 3, 30,
                 "cannot be compiled: Unterminated character class");
    expect_error("rules:\n  - id: r\n    match: {text: {any: ['//']}}\n", 3, 26,
                 "empty regular expression '//'");
}

/* ==== terms =============================================================== */

static void test_term_mistakes(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    match: {text: {any: ['']}}\n", 3, 26,
                 "empty keyword term");
    expect_error("rules:\n  - id: r\n    match: {text: {any: [x, '  ']}}\n", 3, 29,
                 "keyword term is only white space");
    expect_error("rules:\n  - id: r\n    match: {text: {any: ['*']}}\n", 3, 26,
                 "'*' must end a word (as in 'sanction*')");
    expect_error("rules:\n  - id: r\n    match: {text: {any: ['export *']}}\n", 3, 26,
                 "'*' must end a word");
    expect_error("rules:\n  - id: r\n    match: {text: {any: [\"x\\0y\"]}}\n", 3, 26,
                 "keyword term contains a NUL character");
    expect_error("rules:\n  - id: r\n    match: {text: {any: []}}\n", 3, 25,
                 "a text condition needs at least one term");
    expect_error("rules:\n  - id: r\n    match: {text: {any: [x], all: [y]}}\n", 3, 19,
                 "a text condition needs exactly one of 'any', 'all' or 'near'");
    expect_error("rules:\n  - id: r\n    match: {text: {any: [x], fields: []}}\n", 3, 38,
                 "'fields' must be a non-empty list of field paths");
    expect_error("rules:\n  - id: r\n    match: {text: {any: [{a: 1}]}}\n", 3, 26,
                 "list items must be strings, numbers or entities");
}

static void test_huge_term(void **state)
{
    (void)state;
    const char *head = "rules:\n  - id: r\n    match: {text: {any: ['";
    char *yaml = own(free, malloc(strlen(head) + 4097 + 16));
    strcpy(yaml, head);
    memset(yaml + strlen(head), 'a', 4097);
    strcpy(yaml + strlen(head) + 4097, "']}}\n");
    expect_error(yaml, 3, 26, "keyword term of 4097 bytes exceeds 4096 bytes");
    /* 4096 bytes is still fine */
    strcpy(yaml + strlen(head) + 4096, "']}}\n");
    assert_int_equal(vg_ruleset_term_count(load_ok(yaml)), 1);
}

static void test_every_bad_term_of_a_condition_is_reported(void **state)
{
    (void)state;
    /* Regression (fixed): daemon/engine/ruleset_conds.c text_terms loops `for (i = 0; ok && i <
     * tmp.nitems; i++)`, so it stops at the first bad term: only "empty
     * keyword term" is reported here, and the two other mistakes show up
     * one per `vigil check` run. */
    vg_diags_t *d = load_bad("rules:\n"
                             "  - id: r\n"
                             "    match: {text: {any: ['', ok, '*', '/(a)\\1/']}}\n");
    assert_int_equal(vg_diags_errors(d), 3);
    assert_error(d, 0, "rules.yaml", 3, 26, "empty keyword term");
    assert_error(d, 1, "rules.yaml", 3, 34, "'*' must end a word");
    assert_error(d, 2, "rules.yaml", 3, 39, "cannot be compiled");
}

static void test_bad_term_in_shared_list_reported_once(void **state)
{
    (void)state;
    /* Regression (fixed): a bad term in a list is reported once per condition that uses
     * the list (daemon/engine/ruleset_terms.c vg_rc_intern_term reports at the item's
     * location each time it is interned), so one mistake prints the same
     * "rules.yaml:2:7: error: empty keyword term" twice here. */
    vg_diags_t *d = load_bad("lists:\n"
                             "  x: ['', ok]\n"
                             "rules:\n"
                             "  - id: a\n"
                             "    match: {text: {any: $x}}\n"
                             "  - id: b\n"
                             "    match: {text: {any: $x}}\n");
    assert_error(d, 0, "rules.yaml", 2, 7, "empty keyword term");
    assert_int_equal(vg_diags_errors(d), 1);
}

/* ==== lists and macros ==================================================== */

static void test_undefined_list(void **state)
{
    (void)state;
    expect_error("lists:\n"
                 "  restriction_terms: [ban]\n"
                 "rules:\n"
                 "  - id: r\n"
                 "    match: {text: {any: $restriction_term}}\n",
                 5, 25,
                 "'$restriction_term' is not a defined list (did you mean "
                 "'$restriction_terms'?)");
    expect_error("rules:\n  - id: r\n    match: {text: {any: $zzz}}\n", 3, 25,
                 "'$zzz' is not a defined list (define it under 'lists:' in any rule file)");
    /* inside a list, and inside 'in' */
    expect_error("lists:\n  a: [x, $chipmaker]\n  chipmakers: [y]\n", 2, 10,
                 "'$chipmaker' is not a defined list (did you mean '$chipmakers'?)");
    expect_error("rules:\n  - id: r\n    match: {field: p, in: [CN, $watch]}\n", 3, 32,
                 "'$watch' is not a defined list");
}

static void test_undefined_macro(void **state)
{
    (void)state;
    expect_error("macros:\n"
                 "  is_news: {field: type, eq: news}\n"
                 "rules:\n"
                 "  - id: r\n"
                 "    match: {not: {macro: is_nwes}}\n",
                 5, 26, "unknown macro 'is_nwes' (did you mean 'is_news'?)");
    expect_error("rules:\n  - id: r\n    match: {macro: zzz}\n", 3, 20,
                 "unknown macro 'zzz' (define it under 'macros:')");
}

static void test_list_cycle(void **state)
{
    (void)state;
    expect_error("lists:\n"
                 "  a: [x, $b]\n"
                 "  b: [$a]\n",
                 3, 7, "list 'b' includes itself through '$a' (a cycle)");
    expect_error("lists:\n  a: [x, $a]\n", 2, 10, "list 'a' includes itself through '$a'");
}

static void test_macro_cycle(void **state)
{
    (void)state;
    expect_error("macros:\n"
                 "  m1: {macro: m2}\n"
                 "  m2: {not: {macro: m1}}\n",
                 3, 21, "macro 'm1' refers to itself (a cycle)");
    expect_error("macros:\n  m: {all: [{macro: m}]}\n", 2, 21,
                 "macro 'm' refers to itself (a cycle)");
}

static void test_broken_unused_list_and_macro_are_reported(void **state)
{
    (void)state;
    expect_error("lists:\n  a: x\n", 2, 6, "list 'a' must be a YAML list or {file: PATH}");
    expect_error("macros:\n  m: {field: x}\n", 2, 7, "field condition on 'x' needs an operator");
    expect_error("lists:\n  a: {file: /nonexistent/x.txt}\n", 2, 13,
                 "list file '/nonexistent/x.txt': cannot open: No such file or directory");
}

static void test_duplicates_across_files(void **state)
{
    (void)state;
    static const char a[] = "lists:\n"
                            "  l: [x]\n"
                            "macros:\n"
                            "  m: {all: []}\n"
                            "rules:\n"
                            "  - id: r\n"
                            "    match: {all: []}\n";
    static const char b[] = "rules:\n"
                            "  - id: r\n"
                            "    match: {all: []}\n"
                            "macros:\n"
                            "  m: {any: []}\n"
                            "lists:\n"
                            "  l: [y]\n";
    vg_rule_source_t src[] = {{"a.yaml", a, sizeof(a) - 1}, {"b.yaml", b, sizeof(b) - 1}};
    vg_diags_t *d = load_bad_sources(src, 2);
    assert_int_equal(vg_diags_errors(d), 3);
    assert_error(d, 0, "b.yaml", 7, 3, "duplicate list 'l' (first defined at a.yaml:2:3)");
    assert_error(d, 1, "b.yaml", 5, 3, "duplicate macro 'm' (first defined at a.yaml:4:3)");
    assert_error(d, 2, "b.yaml", 2, 9, "duplicate rule id 'r' (first defined at a.yaml:6)");

    /* within one file too */
    expect_error("rules:\n"
                 "  - id: a\n"
                 "    match: {all: []}\n"
                 "  - id: a\n"
                 "    match: {all: []}\n",
                 4, 9, "duplicate rule id 'a' (first defined at rules.yaml:2)");
}

static void test_broken_folder_on_disk(void **state)
{
    (void)state;
    const char *dir = data_path("rules-broken");
    vg_diags_t *d = new_diags();
    assert_null(vg_ruleset_load(&dir, 1, NULL, d));
    const char *a = fmt("%s/a-first.yaml", dir), *b = fmt("%s/b-second.yaml", dir);
    assert_int_equal(vg_diags_errors(d), 4);
    assert_error(d, 0, b, 2, 3, fmt("duplicate list 'shared' (first defined at %s:2:3)", a));
    assert_error(d, 1, b, 5, 3, fmt("duplicate macro 'm' (first defined at %s:4:3)", a));
    assert_error(d, 2, b, 7, 9, fmt("duplicate rule id 'dup-rule' (first defined at %s:6)", a));
    /* a list file is relative to the folder of the rule file */
    assert_error(d, 3, b, 3, 21, fmt("list file '%s/missing.txt': cannot open", dir));
}

/* ==== YAML-level problems ================================================= */

static void test_yaml_syntax_error(void **state)
{
    (void)state;
    expect_error("rules:\n"
                 "  - id: r\n"
                 "    title: Update: SMIC\n"
                 "    match: {all: []}\n",
                 3, 18, "mapping values are not allowed in this context");
    expect_error("rules:\n"
                 "  - id: r\n"
                 "    match: {all: [}\n",
                 3, 19, "did not find expected node content");
}

static void test_alias_bomb(void **state)
{
    (void)state;
    /* billion laughs: nine levels of nine aliases each */
    char *yaml = own(free, calloc(1, 4096));
    strcpy(yaml, "lists:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (char k = 'b'; k <= 'i'; k++) {
        sprintf(yaml + strlen(yaml), "  %c: &%c [", k, k);
        for (int j = 0; j < 9; j++)
            sprintf(yaml + strlen(yaml), "%s*%c", j ? ", " : "", k - 1);
        strcat(yaml, "]\n");
    }
    /* refused at the first alias that takes the document past a million
     * nodes: the first *f on the line of g */
    expect_error(yaml, 8, 10, "aliases expand this document beyond 1000000 nodes");
}

static void test_deep_nesting(void **state)
{
    (void)state;
    size_t n = 10000;
    char *yaml = own(free, malloc(2 * n + 16));
    strcpy(yaml, "rules: ");
    memset(yaml + 7, '[', n);
    memset(yaml + 7 + n, ']', n);
    strcpy(yaml + 7 + 2 * n, "\n");
    /* the root map is level 1; the 64th '[' (column 71) is level 65 */
    expect_error(yaml, 1, 71, "nested more than 64 levels deep");

}

static void test_invalid_utf8_in_file(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    title: caf\xe9\n    match: {all: []}\n", 3, 15,
                 "the file must be UTF-8 text");
    expect_error("rules:\n  - id: r\n    title: \"ok\"\n    match: {text: {any: [\"\xff\"]}}\n", 4,
                 27, "the file must be UTF-8 text");
    expect_error_n("rules:\n  - id: r\0\n", 18, 2, 10, "NUL byte");
}

static void test_invalid_utf8_in_list_file(void **state)
{
    (void)state;
    const char *dir = temp_dir();
    write_file(dir, "names.txt", "Rostec\nPetr\xf3leos\n");
    const char *rules = write_file(dir, "r.yaml",
                                   "lists:\n"
                                   "  names: {file: names.txt}\n"
                                   "rules:\n"
                                   "  - id: r\n"
                                   "    match: {text: {any: $names}}\n");
    vg_diags_t *d = new_diags();
    assert_null(vg_ruleset_load(&rules, 1, NULL, d));
    assert_int_equal(vg_diags_errors(d), 1);
    assert_error(d, 0, rules, 2, 17, "is not UTF-8 text");
}

/* ==== all errors in one load ============================================== */

static void test_every_error_in_a_file_is_reported(void **state)
{
    (void)state;
    vg_diags_t *d = load_bad("rulez: {}\n"
                             "rules:\n"
                             "  - id: Bad Id\n"
                             "    match: {all: []}\n"
                             "  - id: ok\n"
                             "    match: {tetx: {any: [x]}}\n");
    assert_int_equal(vg_diags_errors(d), 3);
    assert_error(d, 0, "rules.yaml", 1, 1, "unknown key 'rulez'");
    assert_error(d, 1, "rules.yaml", 3, 9, "rule id 'Bad Id'");
    assert_error(d, 2, "rules.yaml", 6, 13, "unknown condition 'tetx'");

    /* several in one rule, in lists and in macros, and in two files */
    static const char a[] = "lists:\n"
                            "  l: x\n"
                            "macros:\n"
                            "  m: {field: a}\n"
                            "rules:\n"
                            "  - id: r\n"
                            "    severity: hihg\n"
                            "    match: {all: [{macro: nope}, {field: x, lt: '1'}]}\n";
    static const char b[] = "rules:\n  - id: s\n    match: {text: {any: $nolist}}\n";
    vg_rule_source_t src[] = {{"a.yaml", a, sizeof(a) - 1}, {"b.yaml", b, sizeof(b) - 1}};
    d = load_bad_sources(src, 2);
    assert_int_equal(vg_diags_errors(d), 6);
    assert_error(d, 0, "a.yaml", 7, 15, "unknown severity 'hihg'");
    assert_error(d, 1, "a.yaml", 8, 27, "unknown macro 'nope'");
    assert_error(d, 2, "a.yaml", 8, 49, "'lt' compares numbers");
    assert_error(d, 3, "b.yaml", 3, 25, "'$nolist' is not a defined list");
    assert_error(d, 4, "a.yaml", 2, 6, "list 'l' must be a YAML list");
    assert_error(d, 5, "a.yaml", 4, 7, "field condition on 'a' needs an operator");
}

/* ==== valid rule sets ===================================================== */

static const char PACK[] = "lists:\n"
                           "  makers: [SMIC, TSMC, Samsung Electronics]\n"
                           "  terms: [sanction*, entity list, '/export\\s+ban/', SMIC]\n"
                           "  unused: [a, b]\n"
                           "macros:\n"
                           "  is_news: {field: type, eq: news}\n"
                           "  unused_macro: {not: {macro: is_news}}\n"
                           "rules:\n"
                           "  - id: maker-restriction\n"
                           "    title: Export restriction naming a chip maker\n"
                           "    severity: high\n"
                           "    tags: [export-control, semiconductors]\n"
                           "    match:\n"
                           "      all:\n"
                           "        - macro: is_news\n"
                           "        - text: {any: $terms}\n"
                           "        - text: {any: $makers, fields: [title, body, entities]}\n"
                           "    alert: {topic: alerts.export-control, summary: '{title}'}\n"
                           "  - id: plain\n"
                           "    enabled: false\n"
                           "    match: {text: {any: [SMIC, huawei]}}\n"
                           "  - id: routed\n"
                           "    match: {all: []}\n"
                           "    alert: {topic: alerts.export-control}\n";

static void test_valid_load_counts(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_ok(PACK);
    assert_int_equal(vg_ruleset_file_count(rs), 1);
    assert_int_equal(vg_ruleset_rule_count(rs), 3);
    assert_int_equal(vg_ruleset_list_count(rs), 3);
    assert_int_equal(vg_ruleset_macro_count(rs), 2);
    /* SMIC, TSMC, Samsung Electronics, sanction*, entity list, the regex,
     * huawei: a term used in several places counts once */
    assert_int_equal(vg_ruleset_term_count(rs), 7);
    assert_int_equal(vg_ruleset_topic_count(rs), 1);
    assert_string_equal(vg_ruleset_topic(rs, 0), "alerts.export-control");

    const vg_rule_t *r = vg_ruleset_rule(rs, 0);
    assert_string_equal(vg_rule_id(r), "maker-restriction");
    assert_string_equal(vg_rule_title(r), "Export restriction naming a chip maker");
    assert_string_equal(vg_rule_severity(r), "high");
    assert_string_equal(vg_rule_topic(r), "alerts.export-control");
    assert_true(vg_rule_enabled(r));
    assert_string_equal(vg_rule_file(r), "rules.yaml");
    assert_int_equal(vg_rule_line(r), 9);
    assert_int_equal(vg_rule_test_count(r), 0);

    /* defaults: title = id, severity medium, default topic, enabled */
    r = vg_ruleset_rule(rs, 1);
    assert_string_equal(vg_rule_title(r), "plain");
    assert_string_equal(vg_rule_severity(r), "medium");
    assert_null(vg_rule_topic(r));
    assert_false(vg_rule_enabled(r));
    assert_int_equal(vg_rule_line(r), 19);

    /* files with nothing in them are valid */
    assert_int_equal(vg_ruleset_rule_count(load_ok("")), 0);
    assert_int_equal(vg_ruleset_rule_count(load_ok("# nothing yet\n")), 0);
    assert_int_equal(vg_ruleset_rule_count(load_ok("lists:\nmacros:\nrules:\n")), 0);
}

static void test_every_severity(void **state)
{
    (void)state;
    static const char *const sev[] = {"info", "low", "medium", "high", "critical"};
    for (size_t i = 0; i < 5; i++) {
        vg_ruleset_t *rs =
            load_ok(fmt("rules:\n  - id: r\n    severity: %s\n    match: {all: []}\n", sev[i]));
        assert_string_equal(vg_rule_severity(vg_ruleset_rule(rs, 0)), sev[i]);
    }
}

static void test_ruleset_hash(void **state)
{
    (void)state;
    const char *h1 = vg_ruleset_hash(load_ok(PACK));
    const char *h2 = vg_ruleset_hash(load_ok(PACK));
    assert_int_equal(strlen(h1), 16);
    assert_int_equal(strspn(h1, "0123456789abcdef"), 16);
    assert_string_equal(h1, h2);

    /* any change to a file changes it, even a comment */
    char *changed = fmt("%s# reviewed\n", PACK);
    assert_string_not_equal(vg_ruleset_hash(load_ok(changed)), h1);
    /* and so do the default text fields, which change what rules mean */
    static const char *const fields[] = {"headline"};
    vg_ruleset_options_t opts = {.text_fields = fields, .n_text_fields = 1};
    vg_rule_source_t src = {"rules.yaml", PACK, strlen(PACK)};
    assert_string_not_equal(vg_ruleset_hash(load_ok_sources(&src, 1, &opts)), h1);

    /* on disk: the same files give the same hash; editing a list file
     * changes it */
    const char *dir = temp_dir();
    write_file(dir, "a.yaml", "lists:\n  n: {file: names.txt}\n"
                              "rules:\n  - id: r\n    match: {text: {any: $n}}\n");
    write_file(dir, "names.txt", "Rostec\n");
    const char *d1 = own(free, strdup(vg_ruleset_hash(load_ok_paths(&dir, 1))));
    assert_string_equal(vg_ruleset_hash(load_ok_paths(&dir, 1)), d1);
    write_file(dir, "names.txt", "Rostec\nRosoboronexport\n");
    assert_string_not_equal(vg_ruleset_hash(load_ok_paths(&dir, 1)), d1);
}

static void test_folder_loading(void **state)
{
    (void)state;
    const char *dir = data_path("rules-ok");
    vg_ruleset_t *rs = load_ok_paths(&dir, 1);
    /* 10-lists.yaml and 20-rules.yml; not notes.txt, .hidden.yaml or sub/ */
    assert_int_equal(vg_ruleset_file_count(rs), 2);
    assert_int_equal(vg_ruleset_rule_count(rs), 2);
    assert_int_equal(vg_ruleset_list_count(rs), 3);
    assert_int_equal(vg_ruleset_macro_count(rs), 1);
    /* Rostec, Tactical Missiles Corporation, "Hyundai # not a comment",
     * Huawei */
    assert_int_equal(vg_ruleset_term_count(rs), 4);
    const vg_rule_t *r = vg_ruleset_rule(rs, 0);
    assert_string_equal(vg_rule_id(r), "firm-named");
    assert_string_equal(vg_rule_file(r), fmt("%s/20-rules.yml", dir));
    assert_int_equal(vg_rule_line(r), 2);
    assert_string_equal(vg_rule_id(vg_ruleset_rule(rs, 1)), "chip-codes");

    /* the list file's terms work like inline terms */
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    vg_decoder_t *dec = own((free_fn)vg_decoder_destroy, vg_decoder_new(NULL));
    static const char *const events[] = {
        "{\"type\":\"news\",\"title\":\"TACTICAL MISSILES\\nCORPORATION\"}",
        "{\"type\":\"news\",\"body\":\"Hyundai # not a comment\"}",
        "{\"type\":\"news\",\"body\":\"Hyundai\"}", "{\"type\":\"news\",\"title\":\"Huawei\"}",
        "{\"type\":\"trade\",\"title\":\"Huawei\"}"};
    static const int want[] = {1, 1, 0, 1, 0};
    for (size_t i = 0; i < 5; i++) {
        vg_event_t *ev = NULL;
        char err[128];
        assert_int_equal(vg_decoder_parse(dec, events[i], strlen(events[i]), &ev, err,
                                          sizeof(err)),
                         VG_EVENT_OK);
        int n = vg_scanner_eval(sc, ev, err, sizeof(err));
        vg_event_destroy(ev);
        if (n != want[i])
            fail_msg("%s: %d rules fired, wanted %d", events[i], n, want[i]);
    }

    /* files named directly, and a folder given with a trailing slash */
    const char *files[] = {fmt("%s/20-rules.yml", dir), fmt("%s/10-lists.yaml", dir)};
    assert_int_equal(vg_ruleset_rule_count(load_ok_paths(files, 2)), 2);
    const char *slash[] = {fmt("%s/", dir)};
    assert_int_equal(vg_ruleset_rule_count(load_ok_paths(slash, 1)), 2);
}

static void test_unreadable_paths(void **state)
{
    (void)state;
    const char *missing = "/nonexistent/rules.yaml";
    vg_diags_t *d = new_diags();
    assert_null(vg_ruleset_load(&missing, 1, NULL, d));
    assert_int_equal(vg_diags_errors(d), 1);
    assert_string_equal(vg_diags_get(d, 0)->file, missing);
    assert_non_null(strstr(vg_diags_get(d, 0)->message, "No such file or directory"));

    /* an empty folder is a warning, not an error (note: this also runs
     * daemon/engine/ruleset.c add_folder into qsort(NULL, 0, ...), which
     * -fsanitize=undefined (VIGIL_UBSAN) reports as an error) */
    const char *dir = temp_dir();
    d = new_diags();
    vg_ruleset_t *rs = own((free_fn)vg_ruleset_destroy, vg_ruleset_load(&dir, 1, NULL, d));
    assert_non_null(rs);
    assert_int_equal(vg_ruleset_rule_count(rs), 0);
    assert_int_equal(vg_diags_errors(d), 0);
    assert_int_equal(vg_diags_count(d), 1);
    assert_int_equal(vg_diags_get(d, 0)->level, VG_DIAG_WARNING);
}

/* Regression (fixed): a FIFO as a rule or list file blocked the load for
 * good (open() waits for a writer), and with it `vigil check`, a reload
 * and SIGTERM. A FIFO, a device or a socket is refused at once. */
static void test_non_regular_files_refused(void **state)
{
    (void)state;
    alarm(10); /* a regression hangs: SIGALRM fails the test instead */
    const char *dir = temp_dir();
    const char *fifo = own(remove_path, strdup(fmt("%s/rules.yaml", dir)));
    const char *lfifo = own(remove_path, strdup(fmt("%s/l.fifo", dir)));
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(mkfifo(lfifo, 0600), 0);
    vg_diags_t *d = new_diags();
    assert_null(vg_ruleset_load(&fifo, 1, NULL, d));
    assert_int_equal(vg_diags_errors(d), 1);
    assert_string_equal(vg_diags_get(d, 0)->file, fifo);
    assert_non_null(strstr(vg_diags_get(d, 0)->message, "is a FIFO (named pipe), not a regular"));
    const char *rules = write_file(dir, "r.yaml",
                                   "lists:\n  a: {file: l.fifo}\n  b: {file: /dev/null}\n"
                                   "rules:\n  - id: r\n    match: {text: {any: $a}}\n");
    d = new_diags();
    assert_null(vg_ruleset_load(&rules, 1, NULL, d));
    assert_error(d, 0, rules, 2, 13, fmt("list file '%s/l.fifo': is a FIFO (named pipe)", dir));
    assert_error(d, 1, rules, 3, 13, "list file '/dev/null': is a character device");
    /* a list file over 64 MiB is refused before it is read */
    const char *big = write_file(dir, "big.txt", "x\n");
    assert_int_equal(truncate(big, 64 * 1024 * 1024 + 1), 0);
    rules = write_file(dir, "s.yaml", "lists:\n  a: {file: big.txt}\nrules: []\n");
    d = new_diags();
    assert_null(vg_ruleset_load(&rules, 1, NULL, d));
    assert_error(d, 0, rules, 2, 13,
                 "the file is 67108865 bytes, more than the limit of 67108864 bytes");
    alarm(0);
}

/* ==== embedded tests ====================================================== */

static json_object *test_event_json(const vg_rule_t *r, size_t i, bool *expect, unsigned *line)
{
    size_t len = 0;
    const char *text = vg_rule_test(r, i, &len, expect, line);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    json_object *o = own(put_json, json_tokener_parse(text));
    if (o == NULL)
        fail_msg("test %zu is not JSON: %s", i, text);
    return o;
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("member '%s' missing", key);
    return v;
}

static void test_rule_tests_become_typed_json(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_ok("rules:\n"
                               "  - id: r\n"
                               "    match: {all: []}\n"
                               "    tests:\n"
                               "      match:\n"
                               "        - {type: news, hs_code: 854231, code: \"854231\", ok: true,\n"
                               "           no: no, none: null, tilde: ~, v: 2.5e8, neg: -23.5,\n"
                               "           hex: 0x1F, arr: [1, \"a\", [false]], nested: {a: {b: 1}},\n"
                               "           t: \"line\\nbreak \\\"q\\\" \\u00e9\"}\n"
                               "      no_match:\n"
                               "        - title: plain\n"
                               "          body: |\n"
                               "            two\n"
                               "            lines\n"
                               "        - {}\n");
    const vg_rule_t *r = vg_ruleset_rule(rs, 0);
    assert_int_equal(vg_rule_test_count(r), 3);

    bool expect = false;
    unsigned line = 0;
    json_object *o = test_event_json(r, 0, &expect, &line);
    assert_true(expect);
    assert_int_equal(line, 6);
    assert_string_equal(json_object_get_string(member(o, "type")), "news");
    assert_true(json_object_is_type(member(o, "hs_code"), json_type_int));
    assert_int_equal(json_object_get_int64(member(o, "hs_code")), 854231);
    assert_true(json_object_is_type(member(o, "code"), json_type_string));
    assert_string_equal(json_object_get_string(member(o, "code")), "854231");
    assert_true(json_object_is_type(member(o, "ok"), json_type_boolean));
    assert_true(json_object_get_boolean(member(o, "ok")));
    assert_true(json_object_is_type(member(o, "no"), json_type_string));
    assert_true(json_object_is_type(member(o, "none"), json_type_null));
    assert_true(json_object_is_type(member(o, "tilde"), json_type_null));
    assert_true(json_object_get_double(member(o, "v")) == 2.5e8);
    assert_true(json_object_get_double(member(o, "neg")) == -23.5);
    assert_int_equal(json_object_get_int(member(o, "hex")), 31);
    json_object *arr = member(o, "arr");
    assert_int_equal(json_object_array_length(arr), 3);
    assert_int_equal(json_object_get_int(json_object_array_get_idx(arr, 0)), 1);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(arr, 1)), "a");
    assert_true(json_object_is_type(json_object_array_get_idx(json_object_array_get_idx(arr, 2), 0),
                                    json_type_boolean));
    assert_int_equal(json_object_get_int(member(member(member(o, "nested"), "a"), "b")), 1);
    assert_string_equal(json_object_get_string(member(o, "t")), "line\nbreak \"q\" é");

    o = test_event_json(r, 1, &expect, &line);
    assert_false(expect);
    assert_int_equal(line, 11);
    assert_string_equal(json_object_get_string(member(o, "body")), "two\nlines\n");
    o = test_event_json(r, 2, &expect, &line);
    assert_false(expect);
    assert_int_equal(json_object_object_length(o), 0);
}

static void test_rule_test_integers_keep_their_digits(void **state)
{
    (void)state;
    /* Regression (fixed): daemon/engine/ruleset_tests.c node_to_json prints YAML
     * numbers from their double value: an integer above 1e15 (an id, a large value_usd) is
     * written as 1.2345678901234568e+17, so a test event
     * {id: 123456789012345678} no longer equals the real event
     * {"id":123456789012345678} for eq/prefix/contains. Integers should
     * keep their digits. */
    vg_ruleset_t *rs = load_ok("rules:\n"
                               "  - id: r\n"
                               "    match: {field: id, eq: \"123456789012345678\"}\n"
                               "    tests:\n"
                               "      match:\n"
                               "        - {id: 123456789012345678}\n");
    const char *text = vg_rule_test(vg_ruleset_rule(rs, 0), 0, NULL, NULL, NULL);
    assert_string_equal(text, "{\"id\":123456789012345678}");
}

/* ==== keyword rules 5, 13-16: what a text condition may say ============== */

static void test_text_condition_forms(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    match: {text: {any: [a], near: [[a], [b]], within: 3}}\n",
                 3, 19, "exactly one of 'any', 'all' or 'near'");
    expect_error("rules:\n  - id: r\n    match: {text: {any: [a], within: 3}}\n", 3, 38,
                 "'within' works only with 'near'");
    expect_error("rules:\n  - id: r\n    match: {text: {all: [a], ordered: true}}\n", 3, 39,
                 "'ordered' works only with 'near'");
    expect_error("rules:\n  - id: r\n    match: {text: {near: [[a], [b]]}}\n", 3, 26,
                 "'near' needs 'within: N'");
    expect_error("rules:\n  - id: r\n    match: {text: {near: [[a], [b]], within: 101}}\n", 3,
                 46, "'within' takes a whole number of words from 0 to 100");
    expect_error("rules:\n  - id: r\n    match: {text: {near: [[a]], within: 1}}\n", 3, 26,
                 "'near' takes two lists of terms");
    expect_error("rules:\n  - id: r\n    match: {text: {any: [a], case: upper}}\n", 3, 36,
                 "'case' takes sensitive or insensitive");
    vg_ruleset_t *rs = load_ok("rules:\n  - id: r\n    match: {text: {near: [[a, b], [c]], "
                               "within: 0, ordered: true, except: [a c], case: sensitive}}\n");
    assert_int_equal(vg_ruleset_term_count(rs), 4);
}

static void test_inline_regex_options_refused(void **state)
{
    (void)state;
    expect_error("rules:\n  - id: r\n    match: {text: {any: ['/(?i)ban/']}}\n", 3, 26,
                 "inline option '(?i)'");
    expect_error("rules:\n  - id: r\n    match: {text: {any: ['/a(?-i:b)/']}}\n", 3, 26,
                 "inline option '(?-i:'");
    expect_error("rules:\n  - id: r\n    match: {field: t, matches: '/(?s)a.b/'}\n", 3, 32,
                 "inline option '(?s)'");
    /* groups are not options; an escaped parenthesis is no group */
    load_ok("rules:\n  - id: r\n    match: {text: {any: ['/(?:a|b)c/', '/\\(?i\\)/', '/[(?i)]/']}}\n");
}

static void test_entity_items(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_ok("lists:\n"
                               "  makers:\n"
                               "    - {name: Micron, aliases: [美光, マイクロン]}\n"
                               "    - SMIC\n"
                               "rules:\n"
                               "  - id: r\n"
                               "    match: {text: {any: [$makers, {name: YMTC, aliases: [长江存储]}]}}\n"
                               "    threshold: {count: 2, window: 1h, group_by: $makers}\n");
    assert_int_equal(vg_ruleset_term_count(rs), 6);
    expect_error("lists:\n  l:\n    - {name: '', aliases: [x]}\nrules: []\n", 3, 14,
                 "an entity's name must be a non-empty string");
    expect_error("lists:\n  l:\n    - {aliases: [x]}\nrules: []\n", 3, 7, "this map has no 'name'");
    expect_error("rules:\n  - id: r\n    match: {text: {any: [x]}}\n"
                 "    threshold: {count: 2, window: 1h, group_by: $nope}\n",
                 4, 49, "no list named 'nope'");
}

/* The warnings of vigil check: the rules load, with diagnostics. */
static void expect_warning(const char *yaml, unsigned line, unsigned col, const char *phrase)
{
    vg_diags_t *d = new_diags();
    vg_rule_source_t src = {"rules.yaml", yaml, strlen(yaml)};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, NULL, d);
    if (!rs || vg_diags_errors(d) != 0)
        fail_msg("the rules did not load");
    own((free_fn)vg_ruleset_destroy, rs);
    for (size_t i = 0; i < vg_diags_count(d); i++) {
        const vg_diag_t *m = vg_diags_get(d, i);
        if (m->level == VG_DIAG_WARNING && m->line == line && m->col == col &&
            strstr(m->message, phrase))
            return;
    }
    vg_diags_print(d, stderr);
    fail_msg("no warning at %u:%u with '%s'", line, col, phrase);
}

static void test_check_warnings(void **state)
{
    (void)state;
    expect_warning("rules:\n  - id: r\n    match: {text: {any: ['chip?']}}\n", 3, 26,
                   "'?' in the term 'chip?' is a literal character");
    expect_warning("rules:\n  - id: r\n    match: {text: {any: ['*chip']}}\n", 3, 26,
                   "'*' in the term '*chip'");
    expect_warning("lists:\n  e: []\nrules: []\n", 2, 3, "list 'e' is empty");
    expect_warning("lists:\n  d: [Straße, STRASSE]\nrules: []\n", 2, 15, "is in list 'd' twice");
    expect_warning("rules:\n  - id: r\n    match: {text: {any: ['/[A-Z]+/']}}\n", 3, 26,
                   "tells case apart");
    expect_warning("rules:\n  - id: r\n    match: {text: {any: [\"\\u00AD\", x]}}\n", 3, 26,
                   "only invisible characters");
    /* with case: sensitive, [A-Z] means what it says */
    vg_diags_t *d = new_diags();
    const char *ok = "rules:\n  - id: r\n    match: {text: {any: ['/[A-Z]+/'], case: sensitive}}\n";
    vg_rule_source_t src = {"rules.yaml", ok, strlen(ok)};
    own((free_fn)vg_ruleset_destroy, vg_ruleset_load_sources(&src, 1, NULL, d));
    assert_int_equal(vg_diags_count(d), 0);
    assert_int_equal(vg_diags_promote_warnings(d), 0);
}

static void test_list_file_with_byte_order_mark(void **state)
{
    (void)state;
    char dir[] = "/tmp/vigil-bom-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *list = fmt("%s/l.txt", dir), *rules = fmt("%s/r.yaml", dir);
    FILE *f = fopen(list, "wb");
    assert_non_null(f);
    fputs("\xef\xbb\xbf" "SMIC\nMicron\n", f);
    fclose(f);
    f = fopen(rules, "wb");
    assert_non_null(f);
    fputs("lists:\n  l: {file: l.txt}\nrules:\n  - id: r\n    match: {text: {any: $l}}\n", f);
    fclose(f);
    const char *paths[] = {rules};
    vg_ruleset_t *rs = load_ok_paths(paths, 1);
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    vg_decoder_t *dec = own((free_fn)vg_decoder_destroy, vg_decoder_new(NULL));
    /* the first term is SMIC, without the mark */
    static const char *const ev_text = "{\"title\":\"SMIC\"}";
    vg_event_t *ev = NULL;
    char err[128];
    assert_int_equal(vg_decoder_parse(dec, ev_text, strlen(ev_text), &ev, err, sizeof(err)),
                     VG_EVENT_OK);
    assert_int_equal(vg_scanner_eval(sc, ev, err, sizeof(err)), 1);
    vg_event_destroy(ev);
    remove(list);
    remove(rules);
    rmdir(dir);
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, cleanup)
    const struct CMUnitTest tests[] = {
        T(test_unknown_top_level_key),
        T(test_unknown_rule_key),
        T(test_rule_without_match),
        T(test_bad_rule_id),
        T(test_invalid_severity),
        T(test_other_rule_values),
        T(test_unknown_condition),
        T(test_two_forms_in_one_condition),
        T(test_field_operator_mistakes),
        T(test_comparison_needs_a_number),
        T(test_regular_expression_mistakes),
        T(test_term_mistakes),
        T(test_text_condition_forms),
        T(test_inline_regex_options_refused),
        T(test_entity_items),
        T(test_check_warnings),
        T(test_list_file_with_byte_order_mark),
        T(test_huge_term),
        T(test_every_bad_term_of_a_condition_is_reported),
        T(test_bad_term_in_shared_list_reported_once),
        T(test_undefined_list),
        T(test_undefined_macro),
        T(test_list_cycle),
        T(test_macro_cycle),
        T(test_broken_unused_list_and_macro_are_reported),
        T(test_duplicates_across_files),
        T(test_broken_folder_on_disk),
        T(test_yaml_syntax_error),
        T(test_alias_bomb),
        T(test_deep_nesting),
        T(test_invalid_utf8_in_file),
        T(test_invalid_utf8_in_list_file),
        T(test_every_error_in_a_file_is_reported),
        T(test_valid_load_counts),
        T(test_every_severity),
        T(test_ruleset_hash),
        T(test_folder_loading),
        T(test_unreadable_paths),
        T(test_non_regular_files_refused),
        T(test_rule_tests_become_typed_json),
        T(test_rule_test_integers_keep_their_digits),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
