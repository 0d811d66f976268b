/* Diagnostics: message formatting, counting, "did you mean". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/diag.h"

static char *format_one(vg_diags_t *d, size_t i)
{
    static char buf[256];
    vg_diags_format(d, i, buf, sizeof(buf));
    return buf;
}

static void test_format_locations(void **state)
{
    (void)state;
    vg_diags_t *d = vg_diags_new();
    assert_non_null(d);
    vg_diags_add(d, VG_DIAG_ERROR, "rules/a.yaml", 12, 7, "unknown key '%s'", "tittle");
    vg_diags_add(d, VG_DIAG_ERROR, "rules/a.yaml", 12, 0, "no column");
    vg_diags_add(d, VG_DIAG_ERROR, "rules/a.yaml", 0, 5, "no line");
    vg_diags_add(d, VG_DIAG_ERROR, NULL, 3, 4, "no file");
    vg_diags_add(d, VG_DIAG_ERROR, NULL, 0, 0, "nothing at all");
    vg_diags_add(d, VG_DIAG_WARNING, "x.yaml", 1, 1, "careful");
    vg_diags_add(d, VG_DIAG_NOTE, "x.yaml", 2, 0, "by the way");

    assert_int_equal(vg_diags_count(d), 7);
    assert_int_equal(vg_diags_errors(d), 5);
    assert_string_equal(format_one(d, 0), "rules/a.yaml:12:7: error: unknown key 'tittle'");
    assert_string_equal(format_one(d, 1), "rules/a.yaml:12: error: no column");
    assert_string_equal(format_one(d, 2), "rules/a.yaml: error: no line");
    assert_string_equal(format_one(d, 3), "3:4: error: no file");
    assert_string_equal(format_one(d, 4), "error: nothing at all");
    assert_string_equal(format_one(d, 5), "x.yaml:1:1: warning: careful");
    assert_string_equal(format_one(d, 6), "x.yaml:2: note: by the way");
    assert_string_equal(format_one(d, 7), "");

    const vg_diag_t *m = vg_diags_get(d, 0);
    assert_non_null(m);
    assert_int_equal(m->level, VG_DIAG_ERROR);
    assert_string_equal(m->file, "rules/a.yaml");
    assert_int_equal(m->line, 12);
    assert_int_equal(m->col, 7);
    assert_string_equal(m->message, "unknown key 'tittle'");
    assert_null(vg_diags_get(d, 7));
    vg_diags_destroy(d);
}

static void test_format_truncates_safely(void **state)
{
    (void)state;
    vg_diags_t *d = vg_diags_new();
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    vg_diags_add(d, VG_DIAG_ERROR, "f", 1, 2, "%s", big);
    assert_int_equal(strlen(vg_diags_get(d, 0)->message), 999);

    char small[16];
    memset(small, '#', sizeof(small));
    vg_diags_format(d, 0, small, 10);
    assert_string_equal(small, "f:1:2: er");
    assert_int_equal(small[10], '#');
    vg_diags_destroy(d);
}

static void test_print(void **state)
{
    (void)state;
    vg_diags_t *d = vg_diags_new();
    vg_diags_add(d, VG_DIAG_ERROR, "a.yaml", 4, 2, "first");
    vg_diags_add(d, VG_DIAG_WARNING, NULL, 0, 0, "second");
    FILE *f = tmpfile();
    assert_non_null(f);
    vg_diags_print(d, f);
    rewind(f);
    char text[256] = "";
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_string_equal(text, "a.yaml:4:2: error: first\nwarning: second\n");
    vg_diags_destroy(d);
}

static void test_null_safety(void **state)
{
    (void)state;
    vg_diags_destroy(NULL);
    vg_diags_add(NULL, VG_DIAG_ERROR, NULL, 0, 0, "ignored");
    assert_int_equal(vg_diags_count(NULL), 0);
    assert_int_equal(vg_diags_errors(NULL), 0);
    assert_null(vg_diags_get(NULL, 0));
}

static const char *const keys[] = {"brokers", "group", "properties", "dead_letter_topic",
                                   "delivery", "topics", "text_fields"};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void test_suggest_typos(void **state)
{
    (void)state;
    /* substitution, deletion, insertion */
    assert_string_equal(vg_suggest("brokerz", keys, NKEYS), "brokers");
    assert_string_equal(vg_suggest("brokrs", keys, NKEYS), "brokers");
    assert_string_equal(vg_suggest("brokerss", keys, NKEYS), "brokers");
    /* transposition costs one edit, which a plain Levenshtein distance
     * would count as two (too many for a 5-letter word) */
    assert_string_equal(vg_suggest("gruop", keys, NKEYS), "group");
    assert_string_equal(vg_suggest("brokres", keys, NKEYS), "brokers");
    /* case does not matter */
    assert_string_equal(vg_suggest("DELIVERY", keys, NKEYS), "delivery");
    assert_string_equal(vg_suggest("Topics", keys, NKEYS), "topics");
    /* separators and a longer word tolerate more edits */
    assert_string_equal(vg_suggest("dead-letter-topic", keys, NKEYS), "dead_letter_topic");
    assert_string_equal(vg_suggest("textfields", keys, NKEYS), "text_fields");
    /* a truncated name */
    assert_string_equal(vg_suggest("dead_letter", keys, NKEYS), "dead_letter_topic");
    assert_string_equal(vg_suggest("prop", keys, NKEYS), "properties");
    /* the closest of several wins */
    const char *const near[] = {"topic", "topics"};
    assert_string_equal(vg_suggest("topicss", near, 2), "topics");
    assert_string_equal(vg_suggest("topi", near, 2), "topic");
}

static void test_suggest_refuses_unrelated(void **state)
{
    (void)state;
    assert_null(vg_suggest("xyz", keys, NKEYS));
    assert_null(vg_suggest("severity", keys, NKEYS));
    assert_null(vg_suggest("colour", keys, NKEYS));
    /* a one- or two-letter prefix is not evidence */
    assert_null(vg_suggest("b", keys, NKEYS));
    assert_null(vg_suggest("de", keys, NKEYS));
    assert_null(vg_suggest("", keys, NKEYS));
    assert_null(vg_suggest(NULL, keys, NKEYS));
    assert_null(vg_suggest("brokers", NULL, 0));
    assert_null(vg_suggest("brokers", keys, 0));
    char longword[400];
    memset(longword, 'a', sizeof(longword) - 1);
    longword[sizeof(longword) - 1] = '\0';
    assert_null(vg_suggest(longword, keys, NKEYS));
}

static void test_excerpt(void **state)
{
    (void)state;
    char buf[32];
    vg_diag_excerpt("plain", 5, 64, buf, sizeof(buf));
    assert_string_equal(buf, "plain");
    vg_diag_excerpt("a\nb\tc", 5, 64, buf, sizeof(buf));
    assert_string_equal(buf, "a?b?c");
    vg_diag_excerpt("abcdefghij", 10, 4, buf, sizeof(buf));
    assert_string_equal(buf, "abcd...");
    /* "é" is two bytes; cutting after its first byte drops it whole */
    vg_diag_excerpt("ab\xc3\xa9z", 5, 3, buf, sizeof(buf));
    assert_string_equal(buf, "ab...");
    vg_diag_excerpt("ab\xc3\xa9z", 5, 4, buf, sizeof(buf));
    assert_string_equal(buf, "ab\xc3\xa9...");
    vg_diag_excerpt(NULL, 3, 4, buf, sizeof(buf));
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_locations),
        cmocka_unit_test(test_format_truncates_safely),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_null_safety),
        cmocka_unit_test(test_suggest_typos),
        cmocka_unit_test(test_suggest_refuses_unrelated),
        cmocka_unit_test(test_excerpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
