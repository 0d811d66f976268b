/* The YAML loader: core-schema typing, positions, aliases and the limits
 * that keep hostile files from exhausting memory or the stack. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/yaml.h"

/* ---- helpers ------------------------------------------------------------ */

static vg_ydoc_t *load_ok(const char *text)
{
    vg_diags_t *d = vg_diags_new();
    vg_ydoc_t *doc = vg_ydoc_load_buffer("t.yaml", text, strlen(text), NULL, d);
    if (doc == NULL) {
        vg_diags_print(d, stderr);
        fail_msg("expected to load: %s", text);
    }
    assert_int_equal(vg_diags_count(d), 0);
    vg_diags_destroy(d);
    return doc;
}

/* Loads text (len bytes) expecting failure; checks the first message's
 * position and that it contains want. */
static void expect_error_n(const char *text, size_t len, const vg_ylimits_t *lim,
                           unsigned line, unsigned col, const char *want)
{
    vg_diags_t *d = vg_diags_new();
    vg_ydoc_t *doc = vg_ydoc_load_buffer("t.yaml", text, len, lim, d);
    assert_null(doc);
    assert_true(vg_diags_errors(d) >= 1);
    const vg_diag_t *m = vg_diags_get(d, 0);
    assert_non_null(m);
    if (strstr(m->message, want) == NULL || m->line != line || m->col != col) {
        vg_diags_print(d, stderr);
        fail_msg("wanted %u:%u '%s'", line, col, want);
    }
    assert_string_equal(m->file, "t.yaml");
    vg_diags_destroy(d);
}

static void expect_error(const char *text, unsigned line, unsigned col, const char *want)
{
    expect_error_n(text, strlen(text), NULL, line, col, want);
}

/* ---- typing ------------------------------------------------------------- */

struct typing_case {
    const char *yaml; /* the value, written after "v: " */
    vg_yscalar_t type;
    bool quoted;
    double num;
    bool boolean;
    const char *str; /* expected text */
};

static void test_core_schema_typing(void **state)
{
    (void)state;
    static const struct typing_case cases[] = {
        {"12", VG_YSCALAR_INT, false, 12, false, "12"},
        {"-30", VG_YSCALAR_INT, false, -30, false, "-30"},
        {"+7", VG_YSCALAR_INT, false, 7, false, "+7"},
        {"007", VG_YSCALAR_INT, false, 7, false, "007"},
        {"0x1F", VG_YSCALAR_INT, false, 31, false, "0x1F"},
        {"0o17", VG_YSCALAR_INT, false, 15, false, "0o17"},
        {"2.5e8", VG_YSCALAR_FLOAT, false, 2.5e8, false, "2.5e8"},
        {"-23.5", VG_YSCALAR_FLOAT, false, -23.5, false, "-23.5"},
        {"1.", VG_YSCALAR_FLOAT, false, 1, false, "1."},
        {".5", VG_YSCALAR_FLOAT, false, 0.5, false, ".5"},
        {"1e3", VG_YSCALAR_FLOAT, false, 1000, false, "1e3"},
        {"1.5E-2", VG_YSCALAR_FLOAT, false, 0.015, false, "1.5E-2"},
        {".inf", VG_YSCALAR_FLOAT, false, INFINITY, false, ".inf"},
        {"-.Inf", VG_YSCALAR_FLOAT, false, -INFINITY, false, "-.Inf"},
        {"+.INF", VG_YSCALAR_FLOAT, false, INFINITY, false, "+.INF"},
        {"true", VG_YSCALAR_BOOL, false, 0, true, "true"},
        {"True", VG_YSCALAR_BOOL, false, 0, true, "True"},
        {"FALSE", VG_YSCALAR_BOOL, false, 0, false, "FALSE"},
        {"~", VG_YSCALAR_NULL, false, 0, false, "~"},
        {"null", VG_YSCALAR_NULL, false, 0, false, "null"},
        {"Null", VG_YSCALAR_NULL, false, 0, false, "Null"},
        {"NULL", VG_YSCALAR_NULL, false, 0, false, "NULL"},
        {"", VG_YSCALAR_NULL, false, 0, false, ""},
        /* quoted and block scalars are strings whatever they say */
        {"\"12\"", VG_YSCALAR_STRING, true, 0, false, "12"},
        {"'true'", VG_YSCALAR_STRING, true, 0, false, "true"},
        {"'~'", VG_YSCALAR_STRING, true, 0, false, "~"},
        {"\"\"", VG_YSCALAR_STRING, true, 0, false, ""},
        {"|\n  12\n", VG_YSCALAR_STRING, true, 0, false, "12\n"},
        {">-\n  true\n", VG_YSCALAR_STRING, true, 0, false, "true"},
        /* YAML 1.1 spellings and near misses are plain strings in 1.2 */
        {"yes", VG_YSCALAR_STRING, false, 0, false, "yes"},
        {"on", VG_YSCALAR_STRING, false, 0, false, "on"},
        {"tRUE", VG_YSCALAR_STRING, false, 0, false, "tRUE"},
        {"nULL", VG_YSCALAR_STRING, false, 0, false, "nULL"},
        {"1_000", VG_YSCALAR_STRING, false, 0, false, "1_000"},
        {"0b101", VG_YSCALAR_STRING, false, 0, false, "0b101"},
        {"0x", VG_YSCALAR_STRING, false, 0, false, "0x"},
        {"0o8", VG_YSCALAR_STRING, false, 0, false, "0o8"},
        {"-0x1F", VG_YSCALAR_STRING, false, 0, false, "-0x1F"},
        {"1e", VG_YSCALAR_STRING, false, 0, false, "1e"},
        {".", VG_YSCALAR_STRING, false, 0, false, "."},
        {"inf", VG_YSCALAR_STRING, false, 0, false, "inf"},
        {"-.nan", VG_YSCALAR_STRING, false, 0, false, "-.nan"},
        {"1.2.3", VG_YSCALAR_STRING, false, 0, false, "1.2.3"},
        {"8542", VG_YSCALAR_INT, false, 8542, false, "8542"},
        {"news", VG_YSCALAR_STRING, false, 0, false, "news"},
        /* explicit core tags */
        {"!!str 12", VG_YSCALAR_STRING, false, 0, false, "12"},
        {"!!int \"12\"", VG_YSCALAR_INT, true, 12, false, "12"},
        {"!!float 3", VG_YSCALAR_FLOAT, false, 3, false, "3"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct typing_case *c = &cases[i];
        char text[64];
        snprintf(text, sizeof(text), "v: %s\n", c->yaml);
        vg_ydoc_t *doc = load_ok(text);
        const vg_ynode_t *v = vg_ynode_get(vg_ydoc_root(doc), "v");
        assert_non_null(v);
        if (v->kind != VG_YNODE_SCALAR || v->type != c->type || v->quoted != c->quoted ||
            strcmp(v->str, c->str) != 0)
            fail_msg("case %zu '%s': kind %d type %d quoted %d str '%s'", i, c->yaml,
                     (int)v->kind, (int)v->type, (int)v->quoted, v->str);
        if (c->type == VG_YSCALAR_INT || c->type == VG_YSCALAR_FLOAT) {
            if (isinf(c->num))
                assert_true(isinf(v->num) && (v->num > 0) == (c->num > 0));
            else
                assert_true(fabs(v->num - c->num) <= 1e-9 * fabs(c->num));
        }
        if (c->type == VG_YSCALAR_BOOL)
            assert_int_equal(v->boolean, c->boolean);
        vg_ydoc_destroy(doc);
    }

    vg_ydoc_t *doc = load_ok("v: .NaN\n");
    const vg_ynode_t *v = vg_ynode_get(vg_ydoc_root(doc), "v");
    assert_int_equal(v->type, VG_YSCALAR_FLOAT);
    assert_true(isnan(v->num));
    vg_ydoc_destroy(doc);
}

static void test_describe_and_get(void **state)
{
    (void)state;
    vg_ydoc_t *doc = load_ok("s: x\nn: 1.5\nb: false\nz: ~\nl: [1]\nm: {a: 1}\n");
    const vg_ynode_t *root = vg_ydoc_root(doc);
    assert_int_equal(root->kind, VG_YNODE_MAP);
    assert_int_equal(root->count, 6);
    assert_string_equal(vg_ynode_describe(vg_ynode_get(root, "s")), "a string");
    assert_string_equal(vg_ynode_describe(vg_ynode_get(root, "n")), "a number");
    assert_string_equal(vg_ynode_describe(vg_ynode_get(root, "b")), "a boolean");
    assert_string_equal(vg_ynode_describe(vg_ynode_get(root, "z")), "null");
    assert_string_equal(vg_ynode_describe(vg_ynode_get(root, "l")), "a list");
    assert_string_equal(vg_ynode_describe(vg_ynode_get(root, "m")), "a map");
    assert_null(vg_ynode_get(root, "missing"));
    assert_null(vg_ynode_get(root, ""));
    assert_null(vg_ynode_get(vg_ynode_get(root, "l"), "a"));
    assert_null(vg_ynode_get(NULL, "a"));
    assert_string_equal(vg_ynode_describe(NULL), "null");
    assert_string_equal(vg_ydoc_name(doc), "t.yaml");
    size_t len = 0;
    const char *bytes = vg_ydoc_bytes(doc, &len);
    assert_int_equal(len, strlen("s: x\nn: 1.5\nb: false\nz: ~\nl: [1]\nm: {a: 1}\n"));
    assert_memory_equal(bytes, "s: x\n", 5);
    vg_ydoc_destroy(doc);
    vg_ydoc_destroy(NULL);
}

static void test_embedded_nul_escape(void **state)
{
    (void)state;
    vg_ydoc_t *doc = load_ok("v: \"a\\0b\"\n");
    const vg_ynode_t *v = vg_ynode_get(vg_ydoc_root(doc), "v");
    assert_int_equal(v->len, 3);
    assert_int_equal(strlen(v->str), 1);
    assert_memory_equal(v->str, "a\0b", 4);
    vg_ydoc_destroy(doc);
}

/* ---- positions ---------------------------------------------------------- */

static void test_positions(void **state)
{
    (void)state;
    const char *text = "# comment\n"
                       "rules:\n"
                       "  - id: first\n"
                       "    tags: [a, \"b\"]\n"
                       "    text: |\n"
                       "      body\n"
                       "  - id:   'second'\n";
    vg_ydoc_t *doc = load_ok(text);
    const vg_ynode_t *root = vg_ydoc_root(doc);
    assert_int_equal(root->line, 2);
    assert_int_equal(root->col, 1);
    const vg_ynode_t *rules_key = root->items[0];
    assert_string_equal(rules_key->str, "rules");
    assert_int_equal(rules_key->line, 2);
    assert_int_equal(rules_key->col, 1);
    const vg_ynode_t *rules = vg_ynode_get(root, "rules");
    assert_int_equal(rules->kind, VG_YNODE_SEQ);
    assert_int_equal(rules->count, 2);
    assert_int_equal(rules->line, 3);
    assert_int_equal(rules->col, 3);

    const vg_ynode_t *first = rules->items[0];
    assert_int_equal(first->line, 3);
    assert_int_equal(first->col, 5);
    const vg_ynode_t *id = vg_ynode_get(first, "id");
    assert_int_equal(id->line, 3);
    assert_int_equal(id->col, 9);
    const vg_ynode_t *tags = vg_ynode_get(first, "tags");
    assert_int_equal(tags->line, 4);
    assert_int_equal(tags->col, 11);
    assert_int_equal(tags->items[0]->col, 12);
    assert_int_equal(tags->items[1]->line, 4);
    assert_int_equal(tags->items[1]->col, 15);
    const vg_ynode_t *body = vg_ynode_get(first, "text");
    assert_int_equal(body->line, 5);
    assert_int_equal(body->col, 11);
    assert_string_equal(body->str, "body\n");

    const vg_ynode_t *id2 = vg_ynode_get(rules->items[1], "id");
    assert_string_equal(id2->str, "second");
    assert_int_equal(id2->line, 7);
    assert_int_equal(id2->col, 11);
    vg_ydoc_destroy(doc);
}

static void test_positions_count_characters_and_skip_bom(void **state)
{
    (void)state;
    /* Columns count characters, not bytes; a byte order mark is not a
     * column. */
    vg_ydoc_t *doc = load_ok("\xEF\xBB\xBF"
                             "k: [\xC3\xA9t\xC3\xA9, x]\n");
    const vg_ynode_t *root = vg_ydoc_root(doc);
    assert_int_equal(root->items[0]->col, 1);
    const vg_ynode_t *list = vg_ynode_get(root, "k");
    assert_string_equal(list->items[0]->str, "\xC3\xA9t\xC3\xA9");
    assert_int_equal(list->items[1]->col, 10);
    vg_ydoc_destroy(doc);
}

/* ---- document shape ----------------------------------------------------- */

static void test_empty_documents(void **state)
{
    (void)state;
    const char *empties[] = {"", "\n\n", "# only a comment\n", "---\n", "--- # c\n...\n"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        vg_ydoc_t *doc = load_ok(empties[i]);
        assert_non_null(doc);
        assert_null(vg_ydoc_root(doc));
        vg_ydoc_destroy(doc);
    }
    /* an explicit null is a node */
    vg_ydoc_t *doc = load_ok("~\n");
    assert_non_null(vg_ydoc_root(doc));
    assert_int_equal(vg_ydoc_root(doc)->type, VG_YSCALAR_NULL);
    vg_ydoc_destroy(doc);
}

static void test_multiple_documents_refused(void **state)
{
    (void)state;
    expect_error("a: 1\n---\nb: 2\n", 2, 1, "second YAML document");
    expect_error("--- 1\n--- 2\n", 2, 1, "second YAML document");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    expect_error("a: 1\nb: 2\na: 3\n", 3, 1, "duplicate key 'a' (first defined at line 1)");
    expect_error("outer:\n  x: 1\n  y: 2\n  x: 3\n", 4, 3,
                 "duplicate key 'x' (first defined at line 2)");
    expect_error("{k: 1, k: 2}\n", 1, 8, "duplicate key 'k' (first defined at line 1)");

    /* every duplicate in the map is reported, in file order */
    vg_diags_t *d = vg_diags_new();
    const char *text = "b: 1\na: 1\nb: 2\na: 2\nb: 3\n";
    assert_null(vg_ydoc_load_buffer("t.yaml", text, strlen(text), NULL, d));
    assert_int_equal(vg_diags_errors(d), 3);
    assert_int_equal(vg_diags_get(d, 0)->line, 3);
    assert_string_equal(vg_diags_get(d, 0)->message,
                        "duplicate key 'b' (first defined at line 1)");
    assert_int_equal(vg_diags_get(d, 1)->line, 4);
    assert_string_equal(vg_diags_get(d, 1)->message,
                        "duplicate key 'a' (first defined at line 2)");
    assert_int_equal(vg_diags_get(d, 2)->line, 5);
    assert_string_equal(vg_diags_get(d, 2)->message,
                        "duplicate key 'b' (first defined at line 1)");
    vg_diags_destroy(d);

    /* equal text is what counts, not equal spelling in the file */
    expect_error("a: 1\n\"a\": 2\n", 2, 1, "duplicate key 'a'");

    /* many distinct keys are fine */
    size_t cap = 20000 * 16;
    char *many = malloc(cap);
    size_t o = 0;
    for (int i = 0; i < 20000; i++)
        o += (size_t)snprintf(many + o, cap - o, "k%d: %d\n", i, i);
    vg_ydoc_t *doc = load_ok(many);
    assert_int_equal(vg_ydoc_root(doc)->count, 20000);
    assert_string_equal(vg_ynode_get(vg_ydoc_root(doc), "k19999")->str, "19999");
    vg_ydoc_destroy(doc);
    free(many);
}

static void test_non_scalar_keys_refused(void **state)
{
    (void)state;
    expect_error("? [a, b]\n: 1\n", 1, 3, "a map key must be a scalar, not a list");
    expect_error("{[a]: 1}\n", 1, 2, "a map key must be a scalar, not a list");
    expect_error("? {a: 1}\n: 1\n", 1, 3, "a map key must be a scalar, not a map");
    expect_error("l: &l [1]\n*l : 2\n", 2, 1, "a map key must be a scalar, not a list");
}

static void test_tags(void **state)
{
    (void)state;
    expect_error("v: !custom 1\n", 1, 4, "unsupported tag '!custom'");
    expect_error("v: !!int abc\n", 1, 4, "not a valid !!int");
    expect_error("v: !!map [1]\n", 1, 4, "unsupported tag");
    vg_ydoc_t *doc = load_ok("v: !!seq [1]\nw: !!map {}\n");
    assert_int_equal(vg_ynode_get(vg_ydoc_root(doc), "v")->kind, VG_YNODE_SEQ);
    vg_ydoc_destroy(doc);
}

/* ---- aliases ------------------------------------------------------------ */

static void test_aliases_share_nodes(void **state)
{
    (void)state;
    vg_ydoc_t *doc = load_ok("base: &b {x: 1, y: [2, 3]}\n"
                             "one: *b\n"
                             "two: [*b, *b]\n"
                             "s: &s hello\n"
                             "t: *s\n"
                             "*s : keyed by alias\n");
    const vg_ynode_t *root = vg_ydoc_root(doc);
    const vg_ynode_t *base = vg_ynode_get(root, "base");
    assert_int_equal(base->kind, VG_YNODE_MAP);
    assert_ptr_equal(vg_ynode_get(root, "one"), base);
    assert_ptr_equal(vg_ynode_get(root, "two")->items[0], base);
    assert_ptr_equal(vg_ynode_get(root, "two")->items[1], base);
    assert_ptr_equal(vg_ynode_get(root, "t"), vg_ynode_get(root, "s"));
    assert_string_equal(vg_ynode_get(root, "hello")->str, "keyed by alias");
    /* the shared node keeps the anchor's position */
    assert_int_equal(vg_ynode_get(root, "one")->line, 1);
    vg_ydoc_destroy(doc);
}

static void test_anchor_redefinition_uses_latest(void **state)
{
    (void)state;
    vg_ydoc_t *doc = load_ok("a: &x 1\nb: &x 2\nc: *x\nd: &y [&y inner, *y]\n");
    const vg_ynode_t *root = vg_ydoc_root(doc);
    assert_string_equal(vg_ynode_get(root, "c")->str, "2");
    /* inside d, *y already means the inner scalar */
    assert_string_equal(vg_ynode_get(root, "d")->items[1]->str, "inner");
    vg_ydoc_destroy(doc);
}

static void test_unknown_alias_refused(void **state)
{
    (void)state;
    expect_error("a: 1\nb: *nope\n", 2, 4, "alias '*nope' names no anchor");
    /* an alias may not come before its anchor */
    expect_error("a: *later\nb: &later 1\n", 1, 4, "alias '*later' names no anchor");
}

static void test_alias_inside_its_own_node_refused(void **state)
{
    (void)state;
    expect_error("a: &loop [1, *loop]\n", 1, 14, "refers to a node that contains it");
    expect_error("a: &m {k: {j: *m}}\n", 1, 15, "refers to a node that contains it");
}

static char *billion_laughs(int levels, int fanout)
{
    size_t cap = (size_t)levels * (size_t)fanout * 16 + 256;
    char *s = malloc(cap);
    size_t o = (size_t)snprintf(s, cap, "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i < levels; i++) {
        o += (size_t)snprintf(s + o, cap - o, "l%d: &l%d [", i, i);
        for (int j = 0; j < fanout; j++)
            o += (size_t)snprintf(s + o, cap - o, "%s*l%d", j != 0 ? ", " : "", i - 1);
        o += (size_t)snprintf(s + o, cap - o, "]\n");
    }
    return s;
}

static void test_billion_laughs_refused(void **state)
{
    (void)state;
    /* 10 levels of 9 aliases: about 3.9e9 nodes when expanded. Refusal
     * happens at the first alias whose expansion passes a million: l5
     * stands for 597,871 nodes, and the document holds 672,612 before the
     * first *l5 on line 7. Nothing is copied, so memory stays at the
     * file's size. */
    char *bomb = billion_laughs(10, 9);
    expect_error_n(bomb, strlen(bomb), NULL, 7, 10,
                   "aliases expand this document beyond 1000000 nodes");
    free(bomb);

    /* 64 levels of 2 aliases would overflow a 64-bit counter */
    bomb = billion_laughs(64, 2);
    vg_diags_t *d = vg_diags_new();
    assert_null(vg_ydoc_load_buffer("t.yaml", bomb, strlen(bomb), NULL, d));
    assert_non_null(strstr(vg_diags_get(d, 0)->message, "aliases expand this document"));
    vg_diags_destroy(d);
    free(bomb);

    /* a custom limit is honoured, and a document just under it loads */
    const vg_ylimits_t lim = {.max_nodes = 12};
    /* root map 1 + keys 2 + list 1 + items 3 + alias 4 = 11 */
    const char *text = "a: &a [1, 2, 3]\nb: *a\n";
    d = vg_diags_new();
    vg_ydoc_t *doc = vg_ydoc_load_buffer("t.yaml", text, strlen(text), &lim, d);
    assert_non_null(doc);
    vg_ydoc_destroy(doc);
    vg_diags_destroy(d);
    const char *more = "a: &a [1, 2, 3]\nb: *a\nc: *a\n";
    expect_error_n(more, strlen(more), &lim, 3, 4, "aliases expand this document beyond 12");
    const vg_ylimits_t tiny = {.max_nodes = 3};
    expect_error_n("[1, 2, 3]", 9, &tiny, 1, 8, "the document has more than 3 nodes");
}

/* ---- depth -------------------------------------------------------------- */

static void test_deep_nesting_refused(void **state)
{
    (void)state;
    /* 10,000 levels: libyaml and the loader keep explicit stacks, so this
     * is refused at level 65 instead of overflowing the C stack. */
    size_t depth = 10000;
    char *flow = malloc(2 * depth + 2);
    memset(flow, '[', depth);
    memset(flow + depth, ']', depth);
    flow[2 * depth] = '\n';
    flow[2 * depth + 1] = '\0';
    expect_error_n(flow, strlen(flow), NULL, 1, 65, "nested more than 64 levels deep");
    /* in flow maps the inner map sits where a key is due */
    memset(flow, '{', depth);
    expect_error_n(flow, depth, NULL, 1, 2, "a map key must be a scalar");
    free(flow);

    /* block style: 2000 lines of growing indentation */
    size_t cap = 2000 * (2000 + 4);
    char *block = malloc(cap);
    size_t o = 0;
    for (size_t i = 0; i < 2000; i++)
        o += (size_t)snprintf(block + o, cap - o, "%*sk:\n", (int)i, "");
    expect_error_n(block, o, NULL, 65, 65, "nested more than 64 levels deep");
    free(block);

    /* exactly at the limit is fine */
    const vg_ylimits_t lim = {.max_depth = 3};
    vg_diags_t *d = vg_diags_new();
    vg_ydoc_t *doc = vg_ydoc_load_buffer("t.yaml", "[[[1]]]", 7, &lim, d);
    assert_non_null(doc);
    vg_ydoc_destroy(doc);
    vg_diags_destroy(d);
    expect_error_n("a: [[[1]]]", 10, &lim, 1, 6, "nested more than 3 levels deep");
}

/* ---- bytes -------------------------------------------------------------- */

static void test_invalid_utf8_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        unsigned line, col;
    } cases[] = {
        {"a: \xff\n", 1, 4},                   /* never valid */
        {"a: b\nc: x\xc3\n", 2, 5},            /* truncated sequence */
        {"a: \xc0\xaf\n", 1, 4},               /* overlong '/' */
        {"a: \"\xed\xa0\x80\"\n", 1, 5},       /* surrogate */
        {"a: \xf4\x90\x80\x80\n", 1, 4},       /* above U+10FFFF */
        {"# comment \x80\na: 1\n", 1, 11},     /* even in a comment */
        {"a: '\xe2\x82'\n", 1, 5},             /* cut inside quotes */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].text, cases[i].line, cases[i].col, "UTF-8");
}

static void test_nul_byte_refused(void **state)
{
    (void)state;
    expect_error_n("a: 1\nb: x\0y\n", 11, NULL, 2, 5, "NUL byte");
    expect_error_n("\0", 1, NULL, 1, 1, "NUL byte");
    /* UTF-16 is not accepted by way of its byte order mark */
    expect_error_n("\xff\xfe" "a\0:\0", 6, NULL, 1, 4, "NUL byte");
}

static void test_control_character_refused(void **state)
{
    (void)state;
    expect_error("a: \x01\n", 1, 4, "control characters are not allowed");
}

static void test_syntax_error_has_position(void **state)
{
    (void)state;
    expect_error("a: b\n  c: d\n", 2, 4, "mapping values are not allowed");
    expect_error("a: [1, 2\nb: 3\n", 2, 2,
                 "did not find expected ',' or ']' (while parsing a flow sequence that started "
                 "at line 1, column 4)");
    expect_error("a: 'unterminated\n", 2, 1, "found unexpected end of stream");
    expect_error("a:\n\tb: 1\n", 2, 1, "found character that cannot start any token");

    /* the context of a problem names where it started */
    vg_diags_t *d = vg_diags_new();
    const char *text = "key: value\n- item\n";
    assert_null(vg_ydoc_load_buffer("t.yaml", text, strlen(text), NULL, d));
    const vg_diag_t *m = vg_diags_get(d, 0);
    assert_int_equal(m->line, 2);
    assert_int_equal(m->col, 1);
    assert_non_null(strstr(m->message, "line 1, column 1"));
    char line[256];
    vg_diags_format(d, 0, line, sizeof(line));
    assert_true(strncmp(line, "t.yaml:2:1: error: ", 19) == 0);
    vg_diags_destroy(d);
}

/* ---- files -------------------------------------------------------------- */

static void test_file_size_limit(void **state)
{
    (void)state;
    char path[] = "/tmp/vigil-test-yaml-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* 20 MB of nothing: sparse, so the test writes next to no data, and
     * the loader must refuse by size without reading it. */
    assert_int_equal(ftruncate(fd, 20 * 1000 * 1000), 0);
    close(fd);
    vg_diags_t *d = vg_diags_new();
    assert_null(vg_ydoc_load_file(path, NULL, d));
    const vg_diag_t *m = vg_diags_get(d, 0);
    assert_string_equal(m->file, path);
    assert_int_equal(m->line, 0);
    assert_string_equal(m->message,
                        "the file is 20000000 bytes, more than the limit of 16777216 bytes");
    vg_diags_destroy(d);

    /* the same limit for buffers, and a custom one */
    const vg_ylimits_t lim = {.max_bytes = 8};
    expect_error_n("a: 123456789", 12, &lim, 0, 0, "more than the limit of 8 bytes");
    unlink(path);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[] = "/tmp/vigil-test-yaml-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "list: [a, b]\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    vg_diags_t *d = vg_diags_new();
    vg_ydoc_t *doc = vg_ydoc_load_file(path, NULL, d);
    assert_non_null(doc);
    assert_string_equal(vg_ydoc_name(doc), path);
    assert_string_equal(vg_ynode_get(vg_ydoc_root(doc), "list")->items[1]->str, "b");
    vg_ydoc_destroy(doc);
    unlink(path);

    assert_null(vg_ydoc_load_file(path, NULL, d));
    assert_int_equal(vg_diags_errors(d), 1);
    assert_string_equal(vg_diags_get(d, 0)->message, "cannot open: No such file or directory");
    assert_null(vg_ydoc_load_file("/tmp", NULL, d));
    assert_string_equal(vg_diags_get(d, 1)->message, "is a directory, not a YAML file");
    vg_diags_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_schema_typing),
        cmocka_unit_test(test_describe_and_get),
        cmocka_unit_test(test_embedded_nul_escape),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_positions_count_characters_and_skip_bom),
        cmocka_unit_test(test_empty_documents),
        cmocka_unit_test(test_multiple_documents_refused),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_non_scalar_keys_refused),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_aliases_share_nodes),
        cmocka_unit_test(test_anchor_redefinition_uses_latest),
        cmocka_unit_test(test_unknown_alias_refused),
        cmocka_unit_test(test_alias_inside_its_own_node_refused),
        cmocka_unit_test(test_billion_laughs_refused),
        cmocka_unit_test(test_deep_nesting_refused),
        cmocka_unit_test(test_invalid_utf8_refused),
        cmocka_unit_test(test_nul_byte_refused),
        cmocka_unit_test(test_control_character_refused),
        cmocka_unit_test(test_syntax_error_has_position),
        cmocka_unit_test(test_file_size_limit),
        cmocka_unit_test(test_load_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
