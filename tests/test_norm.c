/* Unit tests for text normalisation and its character classes
 * (include/vigil/norm.h), from DESIGN.md's keyword rules 7-12 and 15. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/norm.h"
#include "vigil/utf8.h"

#define CS VG_NORM_CASE_SENSITIVE

/* ---- helpers ---------------------------------------------------------- */

static int setup(void **state)
{
    char err[256];
    vg_norm_t *n = vg_norm_new(err, sizeof(err));
    if (!n)
        fprintf(stderr, "vg_norm_new: %s\n", err);
    *state = n;
    return n ? 0 : -1;
}

static int teardown(void **state)
{
    vg_norm_destroy(*state);
    return 0;
}

/* Every map invariant of vigil/norm.h for the last run of s[0..len). */
static void check_map(vg_norm_t *n, const char *s, size_t len, size_t out_len)
{
    const uint32_t *map = vg_norm_map(n);
    assert_non_null(map);
    assert_int_equal(map[out_len], len);
    /* The character starts: where decoding from 0 goes. */
    char *start = calloc(len + 1, 1);
    assert_non_null(start);
    for (size_t at = 0, l; at < len; at += l) {
        start[at] = 1;
        vg_utf8_decode(s + at, len - at, &l);
    }
    for (size_t i = 0; i < out_len; i++) {
        assert_true(map[i] < len);
        if (i)
            assert_true(map[i - 1] <= map[i]);
        assert_true(start[map[i]]);
    }
    free(start);
}

/* Normalises s (len bytes, or strlen) and compares with want; checks the
 * map and that normalising the output again changes nothing. */
static void expect_len(vg_norm_t *n, unsigned flags, const char *s, size_t len, const char *want)
{
    const char *out;
    size_t out_len;
    char err[256];
    assert_int_equal(vg_norm_run(n, s, len, flags, &out, &out_len, err, sizeof(err)), 0);
    if (out_len != strlen(want) || memcmp(out, want, out_len) != 0)
        fail_msg("normalising \"%.*s\" gave \"%.*s\", want \"%s\"", (int)len, s, (int)out_len, out,
                 want);
    check_map(n, s, len, out_len);
    char *copy = malloc(out_len + 1);
    assert_non_null(copy);
    memcpy(copy, out, out_len);
    assert_int_equal(vg_norm_run(n, copy, out_len, flags, &out, &out_len, err, sizeof(err)), 0);
    if (out_len != strlen(want) || memcmp(out, want, out_len) != 0)
        fail_msg("normalising \"%s\" again gave \"%.*s\"", want, (int)out_len, out);
    free(copy);
}

static void expect(vg_norm_t *n, unsigned flags, const char *s, const char *want)
{
    expect_len(n, flags, s, strlen(s), want);
}

/* The input span of output span [a, b) of s's normalisation. */
static void span_of(vg_norm_t *n, const char *s, size_t a, size_t b, size_t *start, size_t *end)
{
    const char *out;
    size_t out_len;
    assert_int_equal(vg_norm_run(n, s, strlen(s), 0, &out, &out_len, NULL, 0), 0);
    assert_true(b <= out_len);
    vg_norm_span(n, a, b, start, end);
}

static void expect_span(vg_norm_t *n, const char *s, size_t a, size_t b, size_t start, size_t end)
{
    size_t st, en;
    span_of(n, s, a, b, &st, &en);
    if (st != start || en != end)
        fail_msg("span [%zu,%zu) of \"%s\": got [%zu,%zu), want [%zu,%zu)", a, b, s, st, en, start,
                 end);
}

/* The output offset of needle in the normalisation of s. */
static size_t find_out(vg_norm_t *n, const char *s, const char *needle)
{
    const char *out;
    size_t out_len;
    assert_int_equal(vg_norm_run(n, s, strlen(s), 0, &out, &out_len, NULL, 0), 0);
    for (size_t i = 0; i + strlen(needle) <= out_len; i++)
        if (memcmp(out + i, needle, strlen(needle)) == 0)
            return i;
    fail_msg("\"%s\" not in the normalisation of \"%s\"", needle, s);
    return 0;
}

/* ---- rule 7: NFKC and full case folding ------------------------------ */

static void test_fold_and_nfkc(void **state)
{
    vg_norm_t *n = *state;
    expect(n, 0, "Straße", "strasse");
    expect(n, 0, "STRASSE", "strasse");
    expect(n, 0, "\u1E9E", "ss"); /* capital sharp s */
    expect(n, 0, "ＳＭＩＣ", "smic");
    expect(n, 0, "SMIC", "smic");
    expect(n, 0, "ﬁnance", "finance");
    expect(n, 0, "ﬃ", "ffi");
    expect(n, 0, "ΣΊΣΥΦΟΣ ς", "σισυφοσ σ");
    expect(n, 0, "２０２３年", "2023年");
    expect(n, 0, "㎏ ① ℌ", "kg 1 h");
    expect(n, 0, "\u01C5", "dz"); /* titlecase DZ with caron */
    expect(n, 0, "ｶﾀｶﾅ ｶﾞ", "カタカナ ガ");
    expect(n, 0, "\u1100\u1161\u11A8", "각"); /* jamo compose */
    expect(n, 0, "", "");
}

static void test_case_sensitive(void **state)
{
    vg_norm_t *n = *state;
    expect(n, CS, "US curbs", "US curbs");
    expect(n, CS, "Straße", "Straße");
    expect(n, CS, "ＳＭＩＣ", "SMIC");
    expect(n, CS, "Petróleos", "Petroleos");
    expect(n, CS, "İSTANBUL", "ISTANBUL");
    expect(n, CS, "China\u2019s ex\u00ADport", "China's export");
    expect(n, 0, "US curbs", "us curbs");
}

/* ---- rule 8: diacritics of Latin, Greek and Cyrillic ----------------- */

static void test_diacritics(void **state)
{
    vg_norm_t *n = *state;
    expect(n, 0, "Petróleos", "petroleos");
    expect(n, 0, "Petro\u0301leos", "petroleos");
    expect(n, 0, "Petroleos", "petroleos");
    expect(n, 0, "İSTANBUL", "istanbul");
    expect(n, 0, "ễ", "e");
    expect(n, 0, "Ễ", "e");
    expect(n, 0, "e\u0302\u0303", "e");
    expect(n, 0, "й", "и");
    expect(n, 0, "Й", "и");
    expect(n, 0, "ё", "е");
    expect(n, 0, "Ἀθῆναι", "αθηναι");
    expect(n, 0, "ǰ", "j");
    expect(n, 0, "CAFÉ café cafe\u0301", "cafe cafe cafe");
    /* A mark with combining class 0 (U+034F) in a Latin sequence, and one
     * after an invisible character that is dropped first. */
    expect(n, 0, "a\u034Fb", "ab");
    expect(n, 0, "e\u200D\u0301x", "ex");
    /* Not a letter: the mark stays. */
    expect(n, 0, "1\u0301", "1\u0301");
}

static void test_other_scripts_keep_marks(void **state)
{
    vg_norm_t *n = *state;
    expect(n, 0, "रूसी", "रूसी");
    expect(n, 0, "مُحَمَّد", "مُحَمَّد");
    expect(n, 0, "שָׁלוֹם", "שָׁלוֹם");
    expect(n, 0, "ที่นี่", "ที่นี่");
    expect(n, 0, "삼성전자가", "삼성전자가");
    expect(n, 0, "美光科技未通过网络安全审查", "美光科技未通过网络安全审查");
    expect(n, 0, "政府は輸出規制を強化", "政府は輸出規制を強化");
    expect(n, 0, "マイクロンー", "マイクロンー");
    /* A Devanagari letter's mark stays after a Latin one's went. */
    expect(n, 0, "é क\u0942", "e क\u0942");
}

/* ---- rule 9: invisible characters, apostrophes, dashes --------------- */

static void test_invisible_and_punctuation(void **state)
{
    vg_norm_t *n = *state;
    expect(n, 0, "ex\u00ADport", "export");
    expect(n, 0, "a\u200Bb\u200Cc\u200Dd\u2060e\uFEFFf", "abcdef");
    expect(n, 0, "\uFEFFSMIC", "smic");
    expect(n, 0, "\u00AD", "");
    expect(n, 0, "China\u2019s \u2018x\u2019 a\u02BCb c\uFF07d", "china's 'x' a'b c'd");
    expect(n, 0, "rare\u2013earth", "rare-earth");
    expect(n, 0, "a\u2010b\u2011c\u2012d\u2013e\u2014f\u2015g", "a-b-c-d-e-f-g");
    expect(n, 0, "1\u22122 x\uFE58y x\uFE63y x\uFF0Dy", "1-2 x-y x-y x-y");
    expect(n, 0, "rare \u2013 earth", "rare - earth");
}

/* ---- ill-formed input -------------------------------------------------- */

static void test_ill_formed(void **state)
{
    vg_norm_t *n = *state;
    expect_len(n, 0,
               "A\xFF"
               "B",
               3, "a\uFFFDb");
    expect_len(n, 0, "\xE2\x80", 2, "\uFFFD\uFFFD");
    expect_len(n, 0, "x\xC0\xAF", 3, "x\uFFFD\uFFFD");
    expect_len(n, 0, "\xED\xA0\x80", 3, "\uFFFD\uFFFD\uFFFD"); /* a surrogate */
    expect_len(n, 0,
               "\xE2\x80"
               "\xC2\xAD"
               "Z",
               5, "\uFFFD\uFFFDz");
    /* Each U+FFFD maps to its byte. */
    const char *out;
    size_t out_len;
    assert_int_equal(vg_norm_run(n, "a\xFF\xFE", 3, 0, &out, &out_len, NULL, 0), 0);
    const uint32_t *map = vg_norm_map(n);
    assert_int_equal(out_len, 7);
    assert_int_equal(map[1], 1);
    assert_int_equal(map[3], 1);
    assert_int_equal(map[4], 2);
    assert_int_equal(map[6], 2);
}

/* ---- the ASCII path -------------------------------------------------- */

static void test_ascii_path(void **state)
{
    vg_norm_t *n = *state;
    char s[300], want[300];
    for (size_t i = 0; i < sizeof(s) - 1; i++) {
        s[i] = (char)(1 + (i * 37) % 127); /* every ASCII byte but NUL */
        want[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    }
    s[sizeof(s) - 1] = want[sizeof(s) - 1] = '\0';
    expect(n, 0, s, want);
    expect(n, CS, s, s);

    const char *out;
    size_t out_len;
    assert_int_equal(vg_norm_run(n, s, strlen(s), CS, &out, &out_len, NULL, 0), 0);
    assert_ptr_equal(out, s); /* no copy */
    size_t a, b;
    vg_norm_span(n, 5, 17, &a, &b);
    assert_int_equal(a, 5);
    assert_int_equal(b, 17);
    const uint32_t *map = vg_norm_map(n);
    assert_non_null(map);
    assert_int_equal(map[123], 123);
    assert_int_equal(map[out_len], out_len);
}

/* A non-ASCII character after a long ASCII stretch, at every alignment: the
 * ASCII letter before it may take its marks. */
static void test_ascii_then_other(void **state)
{
    vg_norm_t *n = *state;
    for (size_t pre = 0; pre < 40; pre++) {
        char s[128], want[128];
        memset(s, 'E', pre);
        memset(want, 'e', pre);
        strcpy(s + pre, "E\u0301T\u00C9\u2019S Zoo");
        strcpy(want + pre, "ete's zoo");
        expect(n, 0, s, want);
    }
}

/* ---- offset maps and spans --------------------------------------------- */

static void test_map_values(void **state)
{
    vg_norm_t *n = *state;
    const char *out;
    size_t out_len;
    assert_int_equal(vg_norm_run(n, "Straße", strlen("Straße"), 0, &out, &out_len, NULL, 0), 0);
    const uint32_t *map = vg_norm_map(n);
    static const uint32_t want[] = {0, 1, 2, 3, 4, 4, 6, 7};
    assert_int_equal(out_len, 7);
    assert_memory_equal(map, want, sizeof(want));

    assert_int_equal(vg_norm_run(n, "ﬁnance", strlen("ﬁnance"), 0, &out, &out_len, NULL, 0), 0);
    map = vg_norm_map(n);
    static const uint32_t want2[] = {0, 0, 3, 4, 5, 6, 7, 8};
    assert_int_equal(out_len, 7);
    assert_memory_equal(map, want2, sizeof(want2));
}

static void test_spans(void **state)
{
    vg_norm_t *n = *state;
    expect_span(n, "Straße", 4, 6, 4, 6); /* "ss" is ß */
    expect_span(n, "Straße", 4, 5, 4, 6); /* half of it is all of it */
    expect_span(n, "Straße", 5, 7, 4, 7);
    expect_span(n, "ﬁnance", 1, 2, 0, 3); /* "i" of the ligature */
    expect_span(n, "ﬁnance", 0, 7, 0, 8);
    expect_span(n, "a\u00ADb", 0, 1, 0, 1); /* trailing soft hyphen left out */
    expect_span(n, "a\u00ADb", 0, 2, 0, 4);
    expect_span(n, "a\u00AD\u200B", 0, 1, 0, 1);
    expect_span(n, "e\u0301x", 0, 1, 0, 3); /* the mark belongs to e */
    expect_span(n, "e\u0301x", 1, 2, 3, 4);
    expect_span(n, "x Ｓ", 2, 3, 2, 5);
    expect_span(n, "abc", 1, 1, 1, 1); /* empty */
    expect_span(n, "aé", 1, 1, 1, 1);

    const char *s = "美国将SMIC列入实体清单";
    size_t a = find_out(n, s, "smic"), st, en;
    span_of(n, s, a, a + 4, &st, &en);
    assert_int_equal(st, strstr(s, "SMIC") - s);
    assert_int_equal(en, st + 4);

    s = "The Petro\u0301leos Mexicanos\u00AD deal";
    a = find_out(n, s, "petroleos mexicanos");
    span_of(n, s, a, a + strlen("petroleos mexicanos"), &st, &en);
    assert_int_equal(st, strstr(s, "Petro") - s);
    assert_int_equal(en, strstr(s, "\u00AD") - s);
}

/* Every output span maps to whole input characters, for assorted text. */
static void test_spans_on_char_starts(void **state)
{
    vg_norm_t *n = *state;
    static const char *texts[] = {
        "Straße İSTANBUL ﬁnance ＳＭＩＣ ễ й ё",
        "美国将SMIC列入实体清单，삼성전자가 ｶﾀｶﾅ",
        "e\u0301\u0323a\u200D\u0301 \u00AD\u2019 रूसी ที่ \u1100\u1161\u11A8",
    };
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        const char *s = texts[t];
        size_t len = strlen(s);
        const char *out;
        size_t out_len;
        assert_int_equal(vg_norm_run(n, s, len, 0, &out, &out_len, NULL, 0), 0);
        check_map(n, s, len, out_len);
        for (size_t a = 0; a <= out_len; a++)
            for (size_t b = a; b <= out_len; b++) {
                size_t st, en;
                vg_norm_span(n, a, b, &st, &en);
                assert_true(st <= en && en <= len);
                assert_true(a == b ? st == en : st < en);
                /* character starts: not a continuation byte */
                assert_true(st == len || ((unsigned char)s[st] & 0xC0) != 0x80);
                assert_true(en == len || ((unsigned char)s[en] & 0xC0) != 0x80);
            }
    }
}

/* ---- long runs of marks, reuse --------------------------------------- */

static void test_many_marks(void **state)
{
    vg_norm_t *n = *state;
    size_t count = 10000;
    char *s = malloc(1 + 2 * count + 2), *want = malloc(2 + 2 * count + 1);
    assert_non_null(s);
    assert_non_null(want);
    s[0] = 'A';
    for (size_t i = 0; i < count; i++)
        memcpy(s + 1 + 2 * i, "\u0301", 2);
    strcpy(s + 1 + 2 * count, "b");
    expect(n, 0, s, "ab");
    /* Arabic marks stay, all of them (one combining class: no reordering). */
    memcpy(s, "\u0628", 2);
    for (size_t i = 0; i < count; i++)
        memcpy(s + 2 + 2 * i, "\u064E", 2);
    s[2 + 2 * count] = '\0';
    memcpy(want, s, 2 + 2 * count + 1);
    expect(n, 0, s, want);
    free(s);
    free(want);
}

static void test_reuse(void **state)
{
    vg_norm_t *n = *state;
    size_t big = 100000;
    char *s = malloc(big + 1);
    assert_non_null(s);
    for (size_t i = 0; i < big; i++)
        s[i] = "Aé美x"[i % 7]; /* ends in a cut sequence */
    s[big] = '\0';
    const char *out;
    size_t out_len;
    assert_int_equal(vg_norm_run(n, s, big, 0, &out, &out_len, NULL, 0), 0);
    check_map(n, s, big, out_len);
    free(s);
    expect(n, 0, "Ｘé", "xe");
    expect(n, 0, "X", "x");
}

/* ---- character classes ----------------------------------------------- */

static void test_is_word(void **state)
{
    (void)state;
    static const uint32_t yes[] = {'a',    'Z',    '0',    '9',    '_',    0x0301, 0x0905,
                                   0x093F, 0x0663, 0x4E2D, 0xAC00, 0x30FC, 0x00E9, 0x0416};
    static const uint32_t no[] = {' ',    '-',    '\'',   '.',    0x00B2,  0x2167,
                                  0x3001, 0xFFFD, 0x2019, 0x00A0, 0x110000};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!vg_uchar_is_word(yes[i]))
            fail_msg("U+%04X should be a word character", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (vg_uchar_is_word(no[i]))
            fail_msg("U+%04X should not be a word character", no[i]);
    assert_true(vg_uchar_is_mark(0x0301));
    assert_true(vg_uchar_is_mark(0x093F)); /* Mc */
    assert_false(vg_uchar_is_mark('a'));
    assert_false(vg_uchar_is_mark(0x4E2D));
}

static void test_script_class(void **state)
{
    (void)state;
    static const uint32_t spaceless[] = {0x7F8E, 0x3005, 0x304B, 0x30AB, 0xFF76, 0x30FC,
                                         0xFF70, 0x0E01, 0x0E81, 0x1780, 0x1000, 0x20000};
    static const uint32_t hangul[] = {0xAC00, 0xD7A3, 0x1100, 0x3131};
    static const uint32_t other[] = {'a',    '1',    '_',    0x0438, 0x03B1,  0x0915,
                                     0x0628, 0x05E9, 0x00E9, 0xFFFD, 0x110000};
    for (size_t i = 0; i < sizeof(spaceless) / sizeof(spaceless[0]); i++)
        if (vg_uchar_script_class(spaceless[i]) != VG_SCRIPT_SPACELESS)
            fail_msg("U+%04X should be of a spaceless script", spaceless[i]);
    for (size_t i = 0; i < sizeof(hangul) / sizeof(hangul[0]); i++)
        if (vg_uchar_script_class(hangul[i]) != VG_SCRIPT_HANGUL)
            fail_msg("U+%04X should be Hangul", hangul[i]);
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        if (vg_uchar_script_class(other[i]) != VG_SCRIPT_OTHER)
            fail_msg("U+%04X should be of another script", other[i]);
}

/* Boundary before the first occurrence of `at` in s. */
static bool boundary_before(const char *s, const char *at)
{
    const char *p = strstr(s, at);
    assert_non_null(p);
    return vg_norm_boundary_at(s, strlen(s), (size_t)(p - s));
}

static void test_boundaries(void **state)
{
    (void)state;
    assert_true(vg_norm_boundary_at("ban", 3, 0));
    assert_true(vg_norm_boundary_at("ban", 3, 3));
    assert_true(boundary_before("the ban.", "."));
    assert_true(boundary_before("the ban.", "ban"));
    assert_false(boundary_before("urban", "ban"));
    assert_false(boundary_before("banned", "ned"));
    assert_false(boundary_before("a_b", "b"));
    assert_true(boundary_before("2023年", "年"));
    assert_true(boundary_before("美国将smic列入", "smic"));
    assert_true(boundary_before("美国将smic列入", "列"));
    assert_false(boundary_before("美国将smic列入", "国"));
    assert_false(boundary_before("삼성전자가", "전자"));
    assert_false(boundary_before("삼성전자가", "가"));
    assert_true(boundary_before("sk하이닉스", "하"));
    assert_true(boundary_before("삼성電子", "電"));
    assert_false(boundary_before("abcжз", "ж"));
    /* Marks belong to their word and take their base's script. */
    assert_false(boundary_before("रूसी", "\u0942"));
    assert_false(boundary_before("रूसी", "सी"));
    assert_true(boundary_before("क\u093F美", "美"));
    assert_true(boundary_before("美\u0301a", "a"));
    assert_false(boundary_before("a\u0301b", "b"));
    assert_false(boundary_before("マイクロンー", "ー"));
    assert_true(boundary_before("a \u0301b", "\u0301"));
}

static size_t words(const char *s)
{
    return vg_norm_count_words(s, strlen(s));
}

static void test_count_words(void **state)
{
    (void)state;
    assert_int_equal(words(" was added on friday to the u.s. "), 8);
    assert_int_equal(words("美国将smic列入"), 6);
    assert_int_equal(words("sk하이닉스"), 1);
    assert_int_equal(words("삼성전자가 말했다"), 2);
    assert_int_equal(words("2023年"), 2);
    assert_int_equal(words(""), 0);
    assert_int_equal(words("  ,, - "), 0);
    assert_int_equal(words("रूसी बाजार"), 2);
    assert_int_equal(words("ที่นี่"), 2);
    assert_int_equal(words("カタカナ"), 4);
    assert_int_equal(words("\u0301abc"), 1);
    assert_int_equal(words("a_b c"), 2);
    assert_int_equal(words("anti-china"), 2);
    assert_int_equal(words("ions were"), 2); /* a word cut by a match's end */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fold_and_nfkc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_case_sensitive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diacritics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_scripts_keep_marks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invisible_and_punctuation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ill_formed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ascii_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ascii_then_other, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spans_on_char_starts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_marks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reuse, setup, teardown),
        cmocka_unit_test(test_is_word),
        cmocka_unit_test(test_script_class),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_count_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
