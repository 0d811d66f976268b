/* Unit tests for the UTF-8 and Unicode module (include/vigil/utf8.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "vigil/utf8.h"

/* ---- helpers ---------------------------------------------------------- */

static bool valid_str(const char *s)
{
    return vg_utf8_valid(s, strlen(s));
}

/* Folds s into a heap buffer of exactly the documented size (3n+1), so that
 * AddressSanitizer catches any write past it. The caller frees the result;
 * *map_out, when not NULL, receives a heap map of the same number of
 * entries. */
static char *fold_alloc(const char *s, size_t n, bool collapse, size_t *out_len,
                        uint32_t **map_out)
{
    char *out = malloc(3 * n + 1);
    assert_non_null(out);
    uint32_t *map = NULL;
    if (map_out) {
        map = malloc((3 * n + 1) * sizeof *map);
        assert_non_null(map);
        *map_out = map;
    }
    *out_len = vg_utf8_fold(s, n, collapse, out, map);
    assert_true(*out_len <= 3 * n);
    assert_int_equal(out[*out_len], '\0');
    return out;
}

/* Folds s (a C string) and checks the result against want, with and without
 * a map, which must not change the output. */
static void check_fold(const char *s, bool collapse, const char *want)
{
    size_t len1, len2;
    uint32_t *map;
    char *a = fold_alloc(s, strlen(s), collapse, &len1, NULL);
    char *b = fold_alloc(s, strlen(s), collapse, &len2, &map);
    assert_string_equal(a, want);
    assert_int_equal(len1, strlen(want));
    assert_string_equal(b, want);
    assert_int_equal(len2, len1);
    assert_int_equal(map[len2], strlen(s));
    free(a);
    free(b);
    free(map);
}

static void check_folds_equal(const char *x, const char *y)
{
    size_t lx, ly;
    char *fx = fold_alloc(x, strlen(x), false, &lx, NULL);
    char *fy = fold_alloc(y, strlen(y), false, &ly, NULL);
    assert_string_equal(fx, fy);
    free(fx);
    free(fy);
}

/* ---- validation ------------------------------------------------------- */

static void test_valid_accepts_well_formed(void **state)
{
    (void)state;
    assert_true(vg_utf8_valid("", 0));
    assert_true(valid_str("plain ascii, long enough for the 8-byte path"));
    assert_true(valid_str("\xC3\xA9"));                 /* é U+00E9 */
    assert_true(valid_str("\xC2\x80"));                 /* U+0080, smallest 2-byte */
    assert_true(valid_str("\xDF\xBF"));                 /* U+07FF */
    assert_true(valid_str("\xE0\xA0\x80"));             /* U+0800, smallest 3-byte */
    assert_true(valid_str("\xE2\x82\xAC"));             /* € */
    assert_true(valid_str("\xED\x9F\xBF"));             /* U+D7FF, below surrogates */
    assert_true(valid_str("\xEE\x80\x80"));             /* U+E000, above surrogates */
    assert_true(valid_str("\xEF\xBF\xBF"));             /* U+FFFF */
    assert_true(valid_str("\xF0\x90\x80\x80"));         /* U+10000 */
    assert_true(valid_str("\xF0\x9F\x98\x80"));         /* 😀 */
    assert_true(valid_str("\xF4\x8F\xBF\xBF"));         /* U+10FFFF */
    assert_true(valid_str("Stra\xC3\x9F" "e \xCE\xA3\xCE\xAF\xCF\x83\xCF\x85\xCF\x86\xCE\xBF\xCF\x82 "
                          "\xE4\xB8\xAD\xE6\x96\x87 ok"));
    /* An embedded NUL is a code point like any other. */
    assert_true(vg_utf8_valid("a\0b", 3));
}

static void test_valid_rejects_overlongs(void **state)
{
    (void)state;
    assert_false(valid_str("\xC0\xAF"));                /* '/' in 2 bytes */
    assert_false(valid_str("\xC0\x80"));                /* NUL in 2 bytes */
    assert_false(valid_str("\xC1\xBF"));
    assert_false(valid_str("\xE0\x80\xAF"));            /* '/' in 3 bytes */
    assert_false(valid_str("\xE0\x9F\xBF"));            /* U+07FF in 3 bytes */
    assert_false(valid_str("\xF0\x80\x80\xAF"));        /* '/' in 4 bytes */
    assert_false(valid_str("\xF0\x8F\xBF\xBF"));        /* U+FFFF in 4 bytes */
}

static void test_valid_rejects_surrogates_and_too_large(void **state)
{
    (void)state;
    assert_false(valid_str("\xED\xA0\x80"));            /* U+D800 */
    assert_false(valid_str("\xED\xBF\xBF"));            /* U+DFFF */
    assert_false(valid_str("\xED\xA0\xBD\xED\xB8\x80")); /* CESU-8 pair */
    assert_false(valid_str("\xF4\x90\x80\x80"));        /* U+110000 */
    assert_false(valid_str("\xF5\x80\x80\x80"));
    assert_false(valid_str("\xF7\xBF\xBF\xBF"));
    assert_false(valid_str("\xF8\x88\x80\x80\x80"));    /* old 5-byte form */
    assert_false(valid_str("\xFE"));
    assert_false(valid_str("\xFF"));
}

static void test_valid_rejects_truncated_and_stray(void **state)
{
    (void)state;
    assert_false(valid_str("\x80"));                    /* lone continuation */
    assert_false(valid_str("a\xBF" "b"));
    assert_false(valid_str("\xC3"));
    assert_false(valid_str("\xC3" "a"));                /* continuation missing */
    assert_false(valid_str("\xE2\x82"));
    assert_false(valid_str("\xE2\x82" "a"));
    assert_false(valid_str("\xF0\x9F\x98"));
    assert_false(valid_str("\xC3\xA9\xA9"));            /* one continuation too many */
    /* n cuts a sequence that continues in memory. */
    assert_false(vg_utf8_valid("\xC3\xA9", 1));
    assert_false(vg_utf8_valid("\xF0\x9F\x98\x80", 3));
    /* Errors just after and inside the 8-byte ASCII stride. */
    assert_false(valid_str("abcdefgh\xC3"));
    assert_false(valid_str("abcdefghijklmno\x80pqrstuvwxyz"));
    assert_true(valid_str("abcdefghijklmno\xC3\xA9pqrstuvwxyz"));
}

/* ---- decoding and encoding ------------------------------------------- */

static void test_decode(void **state)
{
    (void)state;
    size_t len = 0;
    assert_int_equal(vg_utf8_decode("A", 1, &len), 0x41);
    assert_int_equal(len, 1);
    assert_int_equal(vg_utf8_decode("\xC3\xA9x", 3, &len), 0xE9);
    assert_int_equal(len, 2);
    assert_int_equal(vg_utf8_decode("\xE2\x82\xAC", 3, &len), 0x20AC);
    assert_int_equal(len, 3);
    assert_int_equal(vg_utf8_decode("\xF0\x9F\x98\x80", 4, &len), 0x1F600);
    assert_int_equal(len, 4);
    assert_int_equal(vg_utf8_decode("\xF4\x8F\xBF\xBF", 4, &len), 0x10FFFF);
    assert_int_equal(len, 4);

    /* Ill-formed: U+FFFD, one byte. */
    const char *bad[] = { "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                          "\x80", "\xFF", "\xC3" "a", "\xE2\x82" "a" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        len = 0;
        assert_int_equal(vg_utf8_decode(bad[i], strlen(bad[i]), &len), 0xFFFD);
        assert_int_equal(len, 1);
    }
    /* Truncated by n. */
    len = 0;
    assert_int_equal(vg_utf8_decode("\xE2\x82\xAC", 2, &len), 0xFFFD);
    assert_int_equal(len, 1);
    /* A real U+FFFD is three bytes long. */
    assert_int_equal(vg_utf8_decode("\xEF\xBF\xBD", 3, &len), 0xFFFD);
    assert_int_equal(len, 3);
}

static void test_decode_before_round_trip(void **state)
{
    (void)state;
    /* a, é, €, 😀, ß, 中, z: 1, 2, 3, 4, 2, 3, 1 bytes */
    const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xC3\x9F\xE4\xB8\xAD" "z";
    const uint32_t want[] = { 0x61, 0xE9, 0x20AC, 0x1F600, 0xDF, 0x4E2D, 0x7A };
    const size_t count = sizeof want / sizeof want[0];
    size_t n = strlen(s);

    uint32_t fwd[16];
    size_t fwd_len[16];
    size_t k = 0;
    for (size_t i = 0; i < n; k++) {
        fwd[k] = vg_utf8_decode(s + i, n - i, &fwd_len[k]);
        i += fwd_len[k];
    }
    assert_int_equal(k, count);
    for (size_t j = 0; j < count; j++)
        assert_int_equal(fwd[j], want[j]);

    size_t pos = n;
    for (size_t j = count; j-- > 0;) {
        size_t len = 0;
        uint32_t cp = vg_utf8_decode_before(s, pos, &len);
        assert_int_equal(cp, want[j]);
        assert_int_equal(len, fwd_len[j]);
        pos -= len;
    }
    assert_int_equal(pos, 0);
}

static void test_decode_before_ill_formed(void **state)
{
    (void)state;
    size_t len = 0;
    /* Stray continuation after ASCII. */
    assert_int_equal(vg_utf8_decode_before("a\x80", 2, &len), 0xFFFD);
    assert_int_equal(len, 1);
    /* Truncated lead byte at the end. */
    assert_int_equal(vg_utf8_decode_before("a\xC3", 2, &len), 0xFFFD);
    assert_int_equal(len, 1);
    /* Too many continuation bytes: only the last one is ill-formed, and
     * stepping over it reaches the well-formed é, as forward decoding sees. */
    assert_int_equal(vg_utf8_decode_before("\xC3\xA9\xA9", 3, &len), 0xFFFD);
    assert_int_equal(len, 1);
    assert_int_equal(vg_utf8_decode_before("\xC3\xA9\xA9", 2, &len), 0xE9);
    assert_int_equal(len, 2);
    /* A run of continuation bytes longer than any sequence. */
    assert_int_equal(vg_utf8_decode_before("\x80\x80\x80\x80\x80", 5, &len), 0xFFFD);
    assert_int_equal(len, 1);
    /* Surrogate encoded as three bytes. */
    assert_int_equal(vg_utf8_decode_before("x\xED\xA0\x80", 4, &len), 0xFFFD);
    assert_int_equal(len, 1);
    /* Within the first bytes of the buffer. */
    assert_int_equal(vg_utf8_decode_before("\xE2\x82\xAC", 3, &len), 0x20AC);
    assert_int_equal(len, 3);
}

static void test_encode(void **state)
{
    (void)state;
    char buf[4];
    static const struct { uint32_t cp; size_t len; const char *bytes; } cases[] = {
        { 0x00, 1, "\x00" }, { 0x7F, 1, "\x7F" }, { 0x80, 2, "\xC2\x80" },
        { 0x7FF, 2, "\xDF\xBF" }, { 0x800, 3, "\xE0\xA0\x80" },
        { 0x20AC, 3, "\xE2\x82\xAC" }, { 0xFFFF, 3, "\xEF\xBF\xBF" },
        { 0x10000, 4, "\xF0\x90\x80\x80" }, { 0x10FFFF, 4, "\xF4\x8F\xBF\xBF" },
        /* No UTF-8 form: replaced by U+FFFD. */
        { 0xD800, 3, "\xEF\xBF\xBD" }, { 0xDFFF, 3, "\xEF\xBF\xBD" },
        { 0x110000, 3, "\xEF\xBF\xBD" }, { 0xFFFFFFFF, 3, "\xEF\xBF\xBD" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(buf, 0x55, sizeof buf);
        assert_int_equal(vg_utf8_encode(cases[i].cp, buf), cases[i].len);
        assert_memory_equal(buf, cases[i].bytes, cases[i].len);
    }
}

static void test_encode_decode_all_scalars(void **state)
{
    (void)state;
    char buf[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp == 0xD800)
            cp = 0xE000;
        size_t n = vg_utf8_encode(cp, buf);
        size_t len = 0;
        assert_true(vg_utf8_valid(buf, n));
        assert_int_equal(vg_utf8_decode(buf, n, &len), cp);
        assert_int_equal(len, n);
        assert_int_equal(vg_utf8_decode_before(buf, n, &len), cp);
        assert_int_equal(len, n);
    }
}

/* ---- case folding ----------------------------------------------------- */

static void test_fold_code_points(void **state)
{
    (void)state;
    static const uint32_t pairs[][2] = {
        { 'A', 'a' }, { 'Z', 'z' }, { 'a', 'a' }, { '@', '@' }, { '[', '[' },
        { 0xC9, 0xE9 },         /* É */
        { 0xDF, 0xDF },         /* ß has no simple folding */
        { 0x1E9E, 0xDF },       /* ẞ -> ß (status S) */
        { 0x3A3, 0x3C3 }, { 0x3C2, 0x3C3 },     /* Σ, ς -> σ */
        { 0x212A, 'k' },        /* Kelvin sign */
        { 0x212B, 0xE5 },       /* Angstrom sign */
        { 0x2126, 0x3C9 },      /* Ohm sign */
        { 0x17F, 's' },         /* long s */
        { 0xB5, 0x3BC },        /* micro sign */
        { 0x345, 0x3B9 }, { 0x1FBE, 0x3B9 },
        { 0x3D0, 0x3B2 }, { 0x3D1, 0x3B8 }, { 0x3D5, 0x3C6 }, { 0x3D6, 0x3C0 },
        { 0x3F0, 0x3BA }, { 0x3F1, 0x3C1 }, { 0x3F5, 0x3B5 },
        { 0x1E9B, 0x1E61 },     /* ẛ -> ṡ */
        { 0x1C4, 0x1C6 }, { 0x1C5, 0x1C6 },     /* Ǆ, ǅ -> ǆ */
        { 0x1F88, 0x1F80 },     /* status S: ᾈ -> ᾀ */
        { 0x1FBC, 0x1FB3 },
        { 0x130, 0x130 },       /* İ: only F/T foldings */
        { 0x131, 0x131 },       /* ı: no folding */
        { 'I', 'i' },           /* no Turkic (T) mappings */
        { 0x13A0, 0x13A0 },     /* Cherokee folds to upper case */
        { 0xAB70, 0x13A0 }, { 0x13F8, 0x13F0 },
        { 0x1C90, 0x10D0 },     /* Georgian Mtavruli -> Mkhedruli */
        { 0x23A, 0x2C65 },      /* Ⱥ grows from 2 to 3 bytes */
        { 0x410, 0x430 }, { 0x401, 0x451 },     /* Cyrillic А, Ё */
        { 0x10400, 0x10428 },   /* Deseret */
        { 0x1E900, 0x1E922 },   /* Adlam */
        { 0x1E922, 0x1E922 }, { 0x10FFFF, 0x10FFFF }, { 0x4E2D, 0x4E2D },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        assert_int_equal(vg_unicode_fold(pairs[i][0]), pairs[i][1]);
}

static void test_fold_is_idempotent(void **state)
{
    (void)state;
    size_t changed = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        uint32_t f = vg_unicode_fold(cp);
        assert_int_equal(vg_unicode_fold(f), f);
        changed += f != cp;
    }
    /* CaseFolding.txt has 1454 C+S lines in Unicode 14.0 and 15.0 (1457 in
     * 15.1); the range lets the tables be regenerated with a newer Python. */
    assert_in_range(changed, 1454, 1600);
}

static void test_fold_strings(void **state)
{
    (void)state;
    check_fold("\xC3\x89TATS-UNIS", false, "\xC3\xA9tats-unis");
    check_fold("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG @[`{ 0123456789", false,
               "the quick brown fox jumps over the lazy dog @[`{ 0123456789");
    /* Kelvin sign (3 bytes) becomes 'k' (1 byte). */
    check_fold("5 \xE2\x84\xAA", false, "5 k");
    /* İstanbul: İ has no simple folding and stays; I is not dotless. */
    check_fold("\xC4\xB0STANBUL", false, "\xC4\xB0stanbul");
    check_fold("ISTANBUL \xC4\xB1", false, "istanbul \xC4\xB1");
    /* Cherokee: lower case folds to upper case (ꭰ -> Ꭰ, ᏸ -> Ᏸ). */
    check_fold("\xEA\xAD\xB0\xE1\x8F\xB8", false, "\xE1\x8E\xA0\xE1\x8F\xB0");
    check_fold("\xE1\x8E\xA0", false, "\xE1\x8E\xA0");
    /* Ⱥ (2 bytes) folds to ⱥ (3 bytes). */
    check_fold("\xC8\xBA\xC8\xBA", false, "\xE2\xB1\xA5\xE2\xB1\xA5");
    /* Cyrillic. */
    check_fold("\xD0\x9C\xD0\x9E\xD0\xA1\xD0\x9A\xD0\x92\xD0\x90", false,
               "\xD0\xBC\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0");
    /* Characters without folding are copied unchanged. */
    check_fold("\xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80", false,
               "\xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x98\x80");
}

static void test_fold_all_ascii(void **state)
{
    (void)state;
    /* All 128 ASCII bytes, through both the 8-byte and the byte path. */
    char in[128], want[129];
    for (int c = 0; c < 128; c++) {
        in[c] = (char)c;
        want[c] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    want[128] = '\0';
    for (size_t start = 0; start < 8; start++) {
        size_t len;
        uint32_t *map;
        char *out = fold_alloc(in + start, 128 - start, false, &len, &map);
        assert_int_equal(len, 128 - start);
        assert_memory_equal(out, want + start, len);
        for (size_t i = 0; i <= len; i++)
            assert_int_equal(map[i], i);
        free(out);
        free(map);
    }
}

static void test_fold_case_insensitive_equal(void **state)
{
    (void)state;
    check_folds_equal("STRA\xE1\xBA\x9E" "E", "Stra\xC3\x9F" "e");   /* STRAẞE, Straße */
    check_fold("STRA\xE1\xBA\x9E" "E", false, "stra\xC3\x9F" "e");
    /* ΣΊΣΥΦΟΣ and σίσυφος: both sigmas, final or not, fold to σ. */
    const char *upper = "\xCE\xA3\xCE\x8A\xCE\xA3\xCE\xA5\xCE\xA6\xCE\x9F\xCE\xA3";
    const char *lower = "\xCF\x83\xCE\xAF\xCF\x83\xCF\x85\xCF\x86\xCE\xBF\xCF\x82";
    check_folds_equal(upper, lower);
    check_fold(lower, false, "\xCF\x83\xCE\xAF\xCF\x83\xCF\x85\xCF\x86\xCE\xBF\xCF\x83");
    /* Kelvin sign and K. */
    check_folds_equal("\xE2\x84\xAA" "ELVIN", "kelvin");
    /* Title-case digraph. */
    check_folds_equal("\xC7\x85" "ungla", "\xC7\x84" "UNGLA");
    /* But ß and "ss" differ under simple folding. */
    size_t l1, l2;
    char *a = fold_alloc("stra\xC3\x9F" "e", 7, false, &l1, NULL);
    char *b = fold_alloc("strasse", 7, false, &l2, NULL);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_fold_collapse_space(void **state)
{
    (void)state;
    check_fold("a \t\n b", true, "a b");
    check_fold("a \t\n b", false, "a \t\n b");
    /* U+00A0 and U+3000 are white space; ZWSP U+200B and U+001C are not. */
    check_fold("x\xC2\xA0y\xE3\x80\x80z", true, "x y z");
    check_fold("x \xC2\xA0 \xE3\x80\x80\t\xE2\x80\xA8y", true, "x y");
    check_fold("x\xC2\xA0y", false, "x\xC2\xA0y");
    check_fold("x\xE2\x80\x8By\x1Cz", true, "x\xE2\x80\x8By\x1Cz");
    check_fold("x\xC2\x85y", true, "x y");                       /* NEL */
    /* Leading and trailing runs keep one space each. */
    check_fold("  \r\nAB\v\f  ", true, " ab ");
    check_fold("\xE3\x80\x80", true, " ");
    /* A multi-byte character ends a run: the spaces around it stay. */
    check_fold("x \xC3\x89 \xE4\xB8\xAD \xE6\x96\x87\xC2\xA0y", true,
               "x \xC3\xA9 \xE4\xB8\xAD \xE6\x96\x87 y");
    check_fold("", true, "");
    /* Folding still happens between runs, in the 8-byte stride too. */
    check_fold("NEWS   FROM\t\tTHE   WIRE:  \xC3\x89TATS-UNIS", true,
               "news from the wire: \xC3\xA9tats-unis");
}

/* The obvious byte-at-a-time fold of ASCII text, to check the 8-byte paths
 * against. */
static size_t reference_ascii_fold(const char *s, size_t n, bool collapse,
                                   char *out, uint32_t *map)
{
    size_t o = 0;
    bool in_space = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool sp = c == ' ' || (c >= '\t' && c <= '\r');
        if (collapse && sp) {
            if (!in_space) {
                map[o] = (uint32_t)i;
                out[o++] = ' ';
            }
            in_space = true;
            continue;
        }
        in_space = false;
        map[o] = (uint32_t)i;
        out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    map[o] = (uint32_t)n;
    out[o] = '\0';
    return o;
}

static void test_fold_ascii_matches_reference(void **state)
{
    (void)state;
    /* Pseudo-random ASCII built mostly from letters and spaces, so that
     * 8-byte blocks with single spaces, double spaces, spaces on block
     * edges and runs across blocks all occur. */
    static const char alphabet[] = "aBzZ@[`{    \t\n.\x1f";
    uint32_t seed = 12345;
    char in[80], want[81];
    uint32_t want_map[81];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % 80);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245U + 12345U;
            in[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        for (int collapse = 0; collapse < 2; collapse++) {
            size_t want_len = reference_ascii_fold(in, n, collapse, want, want_map);
            size_t len;
            uint32_t *map;
            char *out = fold_alloc(in, n, collapse, &len, &map);
            assert_int_equal(len, want_len);
            assert_memory_equal(out, want, len + 1);
            assert_memory_equal(map, want_map, (len + 1) * sizeof *map);
            free(out);
            free(map);
        }
    }
}

static void test_fold_map_multibyte(void **state)
{
    (void)state;
    size_t len;
    uint32_t *map;
    /* "ÉA€" -> "éa€": é from offset 0, a from 2, € from 3. */
    char *out = fold_alloc("\xC3\x89" "A\xE2\x82\xAC", 6, false, &len, &map);
    assert_string_equal(out, "\xC3\xA9" "a\xE2\x82\xAC");
    const uint32_t want1[] = { 0, 0, 2, 3, 3, 3, 6 };
    assert_int_equal(len, 6);
    for (size_t i = 0; i <= len; i++)
        assert_int_equal(map[i], want1[i]);
    free(out);
    free(map);

    /* Kelvin (3 bytes) -> 'k', Ⱥ (2 bytes) -> 3 bytes. */
    out = fold_alloc("\xE2\x84\xAA\xC8\xBA" "B", 6, false, &len, &map);
    assert_string_equal(out, "k\xE2\xB1\xA5" "b");
    const uint32_t want2[] = { 0, 3, 3, 3, 5, 6 };
    assert_int_equal(len, 5);
    for (size_t i = 0; i <= len; i++)
        assert_int_equal(map[i], want2[i]);
    free(out);
    free(map);
}

static void test_fold_map_collapsed_runs(void **state)
{
    (void)state;
    size_t len;
    uint32_t *map;
    /* "a \t<U+00A0> B" -> "a b": the space maps to the first byte of the
     * run (1), b to 6; map[3] = n = 7. */
    char *out = fold_alloc("a \t\xC2\xA0 B", 7, true, &len, &map);
    assert_string_equal(out, "a b");
    const uint32_t want1[] = { 0, 1, 6, 7 };
    for (size_t i = 0; i <= len; i++)
        assert_int_equal(map[i], want1[i]);
    free(out);
    free(map);

    /* A run that starts with a multi-byte space and ends with ASCII. */
    out = fold_alloc("\xC3\x89\xE3\x80\x80\n\n\xC3\x89", 9, true, &len, &map);
    assert_string_equal(out, "\xC3\xA9 \xC3\xA9");
    const uint32_t want2[] = { 0, 0, 2, 7, 7, 9 };
    assert_int_equal(len, 5);
    for (size_t i = 0; i <= len; i++)
        assert_int_equal(map[i], want2[i]);
    free(out);
    free(map);
}

static void test_fold_ill_formed_input(void **state)
{
    (void)state;
    /* Not a documented use, but the output must stay well-formed and in
     * bounds: each ill-formed byte becomes U+FFFD. */
    size_t len;
    uint32_t *map;
    char *out = fold_alloc("A\xFF" "B\xC3", 4, false, &len, &map);
    assert_string_equal(out, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
    const uint32_t want[] = { 0, 1, 1, 1, 2, 3, 3, 3, 4 };
    assert_int_equal(len, 8);
    for (size_t i = 0; i <= len; i++)
        assert_int_equal(map[i], want[i]);
    free(out);
    free(map);

    /* Worst case growth fills the 3n+1 bound exactly. */
    out = fold_alloc("\x80\x80\x80\x80\x80", 5, true, &len, NULL);
    assert_int_equal(len, 15);
    assert_true(vg_utf8_valid(out, len));
    free(out);
}

/* ---- character classes ------------------------------------------------ */

static void test_is_word(void **state)
{
    (void)state;
    static const uint32_t yes[] = {
        'a', 'Z', '0', '9', '_',
        0xE9, 0xDF, 0x1C5,      /* é, ß, ǅ (Lt) */
        0x436, 0x3A9,           /* ж, Ω */
        0x5D0, 0x639,           /* א, ع */
        0x4E2D, 0xD55C, 0x3042, /* 中, 한, あ */
        0x2B0,                  /* ʰ (Lm) */
        0x96B, 0x661, 0xFF11,   /* Devanagari 5, Arabic-Indic 1, fullwidth 1 (Nd) */
        0x216B,                 /* Ⅻ (Nl) */
        0xBD, 0xB2,             /* ½, ² (No) */
        0x1D400,                /* mathematical bold A */
        0x20000, 0x3134A,       /* CJK extension B, last of extension G */
    };
    static const uint32_t no[] = {
        '-', '.', ' ', '@', '[', '`', '{', 0x7F, 0x00,
        0xA0,                   /* no-break space */
        0x20AC, 0xA9,           /* €, © */
        0x301,                  /* combining acute (Mn) */
        0x2019, 0x2014,         /* ’, — */
        0x3000, 0x3001,         /* ideographic space and comma */
        0x1F600, 0xFFFD, 0xD800, 0xE000, 0x10FFFF, 0x110000,
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!vg_unicode_is_word(yes[i]))
            fail_msg("U+%04X should be a word character", (unsigned)yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        if (vg_unicode_is_word(no[i]))
            fail_msg("U+%04X should not be a word character", (unsigned)no[i]);
    }
}

static void test_is_space(void **state)
{
    (void)state;
    static const uint32_t yes[] = {
        0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680,
        0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007,
        0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000,
    };
    size_t count = 0;
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++)
        count += vg_unicode_is_space(cp);
    assert_int_equal(count, sizeof yes / sizeof yes[0]);
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!vg_unicode_is_space(yes[i]))
            fail_msg("U+%04X should be white space", (unsigned)yes[i]);
    }
    /* Not White_Space although some libraries say so. */
    assert_false(vg_unicode_is_space(0x1C));
    assert_false(vg_unicode_is_space(0x200B));
    assert_false(vg_unicode_is_space(0x180E));
    assert_false(vg_unicode_is_space(0xFEFF));
    assert_false(vg_unicode_is_space(0x110000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_accepts_well_formed),
        cmocka_unit_test(test_valid_rejects_overlongs),
        cmocka_unit_test(test_valid_rejects_surrogates_and_too_large),
        cmocka_unit_test(test_valid_rejects_truncated_and_stray),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_before_round_trip),
        cmocka_unit_test(test_decode_before_ill_formed),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_encode_decode_all_scalars),
        cmocka_unit_test(test_fold_code_points),
        cmocka_unit_test(test_fold_is_idempotent),
        cmocka_unit_test(test_fold_strings),
        cmocka_unit_test(test_fold_all_ascii),
        cmocka_unit_test(test_fold_case_insensitive_equal),
        cmocka_unit_test(test_fold_collapse_space),
        cmocka_unit_test(test_fold_ascii_matches_reference),
        cmocka_unit_test(test_fold_map_multibyte),
        cmocka_unit_test(test_fold_map_collapsed_runs),
        cmocka_unit_test(test_fold_ill_formed_input),
        cmocka_unit_test(test_is_word),
        cmocka_unit_test(test_is_space),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
