/* The event decoder (include/vigil/event.h, DESIGN.md "Events"): a
 * message is accepted only when it is one JSON object, valid UTF-8,
 * within the size and depth limits; everything else is refused with a
 * status (which names the dead-letter reason) and a one-line reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigil/event.h"

/* ---- helpers ------------------------------------------------------------ */

/* Decodes buf[0..len) with the given limits (NULL: defaults) and returns
 * the status; checks the contract that goes with it: an event exactly
 * when OK, otherwise a non-empty one-line reason. */
static vg_event_status_t decode_n(const vg_event_limits_t *lim, const char *buf, size_t len)
{
    vg_decoder_t *dec = vg_decoder_new(lim);
    assert_non_null(dec);
    vg_event_t *ev = (vg_event_t *)(uintptr_t)1; /* must be overwritten */
    char err[256];
    memset(err, 0, sizeof(err));
    vg_event_status_t st = vg_decoder_parse(dec, buf, len, &ev, err, sizeof(err));
    if (st == VG_EVENT_OK) {
        assert_non_null(ev);
        assert_true(json_object_is_type(vg_event_json(ev), json_type_object));
    } else {
        assert_null(ev);
        if (err[0] == '\0' || strchr(err, '\n') != NULL)
            fail_msg("status %s needs a one-line reason, got '%s'", vg_event_status_name(st),
                     err);
    }
    vg_event_destroy(ev);
    vg_decoder_destroy(dec);
    return st;
}

static vg_event_status_t decode(const char *s)
{
    return decode_n(NULL, s, strlen(s));
}

/* Asserts the status of decoding s, naming both statuses on failure. */
#define expect_status(s, want)                                                               \
    do {                                                                                     \
        vg_event_status_t got_ = decode(s);                                                  \
        if (got_ != (want))                                                                  \
            fail_msg("decoding '%s': wanted %s, got %s", (s), vg_event_status_name(want),    \
                     vg_event_status_name(got_));                                            \
    } while (0)

#define expect_status_n(lim, s, n, want)                                                     \
    do {                                                                                     \
        vg_event_status_t got_ = decode_n((lim), (s), (n));                                  \
        if (got_ != (want))                                                                  \
            fail_msg("decoding %zu bytes: wanted %s, got %s", (size_t)(n),                   \
                     vg_event_status_name(want), vg_event_status_name(got_));                \
    } while (0)

/* An object nested `levels` deep ({"a":{"a":...{"a":1}...}}): `levels`
 * objects, the innermost holding a number. Caller frees. */
static char *nested_objects(size_t levels)
{
    char *s = malloc(levels * 6 + 2);
    assert_non_null(s);
    size_t o = 0;
    for (size_t i = 0; i < levels; i++) {
        memcpy(s + o, i + 1 < levels ? "{\"a\":" : "{\"a\":1", i + 1 < levels ? 5 : 6);
        o += i + 1 < levels ? 5 : 6;
    }
    memset(s + o, '}', levels);
    o += levels;
    s[o] = '\0';
    return s;
}

/* {"a":[[...[1]...]]}: one object and `levels - 1` arrays. */
static char *nested_arrays(size_t levels)
{
    char *s = malloc(levels * 2 + 8);
    assert_non_null(s);
    size_t o = 0;
    o += (size_t)sprintf(s, "{\"a\":");
    for (size_t i = 1; i < levels; i++)
        s[o++] = '[';
    s[o++] = '1';
    for (size_t i = 1; i < levels; i++)
        s[o++] = ']';
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

/* Decodes a generated buffer, frees it, then checks the status. */
#define expect_status_owned(lim, s, want)                                                    \
    do {                                                                                     \
        char *buf_ = (s);                                                                    \
        vg_event_status_t got_ = decode_n((lim), buf_, strlen(buf_));                        \
        free(buf_);                                                                          \
        if (got_ != (want))                                                                  \
            fail_msg("decoding " #s ": wanted %s, got %s", vg_event_status_name(want),       \
                     vg_event_status_name(got_));                                            \
    } while (0)

/* An object of exactly n bytes: {"a":"xxx..."}. Caller frees. */
static char *object_of_size(size_t n)
{
    assert_true(n >= 8);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, "{\"a\":\"", 6);
    memset(s + 6, 'x', n - 8);
    memcpy(s + n - 2, "\"}", 2);
    s[n] = '\0';
    return s;
}

/* ---- valid events --------------------------------------------------------- */

static void test_valid_objects(void **state)
{
    (void)state;
    expect_status("{}", VG_EVENT_OK);
    expect_status("{\"type\":\"news\",\"title\":\"JAPAN MOVES TO TIGHTEN CHIP-EXPORT CURBS\","
                  "\"countries\":[\"JP\",\"US\"],\"entities\":[\"MITI\"]}",
                  VG_EVENT_OK);
    expect_status("{\"type\":\"trade\",\"hs_code\":\"854231\",\"value_usd\":1.2e9,"
                  "\"change_pct\":-23.5,\"ok\":true,\"none\":null,\"n\":{\"x\":[]}}",
                  VG_EVENT_OK);
    /* white space around the object, including a trailing newline from a
     * JSON-lines file or CRLF */
    expect_status("  \t{\"a\":1}\r\n", VG_EVENT_OK);
    expect_status("{\n  \"a\": 1,\n  \"b\": [\n    2\n  ]\n}\n", VG_EVENT_OK);
    /* non-ASCII text, raw and escaped (a surrogate pair) */
    expect_status("{\"t\":\"ÉTATS-UNIS 华为 \\ud83d\\ude00\"}", VG_EVENT_OK);
    /* DEL is not a control character that JSON requires to be escaped */
    expect_status("{\"t\":\"a\x7f\"}", VG_EVENT_OK);
}

/* The decoder builds its own tree; it must be the tree json-c's tokener
 * builds from the same valid text (the rules and alerts read it). */
static void test_tree_matches_json_c(void **state)
{
    (void)state;
    static const char *docs[] = {
        "{}",
        "{\"a\":1,\"b\":-2,\"c\":0,\"d\":-0,\"e\":9223372036854775807,"
        "\"f\":-9223372036854775808,\"g\":9223372036854775808,\"h\":18446744073709551615,"
        "\"i\":99999999999999999999,\"j\":-99999999999999999999}",
        "{\"x\":1.5,\"y\":-0.0,\"z\":1e3,\"w\":1.2E-7,\"v\":1.0,\"u\":2.50,\"t\":1e400}",
        "{\"s\":\"plain\",\"e\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\",\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00\"}",
        "{\"lone\":\"\\ud800x\",\"low\":\"\\udc00\",\"hi_end\":\"\\ud83d\"}",
        "{\"t\":true,\"f\":false,\"n\":null,\"arr\":[1,\"two\",null,[],{},[[3]],{\"k\":[true]}]}",
        "{\"dup\":1,\"dup\":2,\"o\":{\"dup\":\"a\",\"dup\":\"b\"}}",
        " \r\n\t{ \"sp\" : [ 1 , 2 ] , \"q\" : { } } \n",
        "{\"\\u0041key\":\"v\",\"long\":\"0123456789abcdef0123456789abcdef\\n0123456789\"}",
        "{\"title\":\"ÉTATS-UNIS 华为 Straße\",\"body\":\"x\\u0000y\"}",
    };
    vg_decoder_t *dec = vg_decoder_new(NULL);
    assert_non_null(dec);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        vg_event_t *ev = NULL;
        char err[160];
        vg_event_status_t st = vg_decoder_parse(dec, docs[i], strlen(docs[i]), &ev, err,
                                                sizeof(err));
        if (st != VG_EVENT_OK)
            fail_msg("doc %zu: %s: %s", i, vg_event_status_name(st), err);
        json_object *ref = json_tokener_parse(docs[i]);
        assert_non_null(ref);
        const char *want = json_object_to_json_string_ext(ref, JSON_C_TO_STRING_PLAIN);
        const char *got = json_object_to_json_string_ext(vg_event_json(ev),
                                                         JSON_C_TO_STRING_PLAIN);
        if (strcmp(want, got) != 0)
            fail_msg("doc %zu:\n json-c: %s\n vigil:  %s", i, want, got);
        assert_int_equal(json_object_equal(ref, vg_event_json(ev)), 1);
        json_object_put(ref);
        vg_event_destroy(ev);
    }
    vg_decoder_destroy(dec);
}

static void test_event_keeps_json_and_raw_bytes(void **state)
{
    (void)state;
    const char *buf = "{\"title\":\"Straße\",\"n\":[1,2]} ";
    vg_decoder_t *dec = vg_decoder_new(NULL);
    vg_event_t *ev = NULL;
    char err[128];
    assert_int_equal(vg_decoder_parse(dec, buf, strlen(buf), &ev, err, sizeof(err)), VG_EVENT_OK);
    size_t len = 0;
    assert_ptr_equal(vg_event_raw(ev, &len), buf);
    assert_int_equal(len, strlen(buf));
    assert_ptr_equal(vg_event_raw(ev, NULL), buf);
    json_object *t = NULL;
    assert_true(json_object_object_get_ex(vg_event_json(ev), "title", &t));
    assert_string_equal(json_object_get_string(t), "Straße");
    vg_event_destroy(ev);

    /* the decoder is reusable after a failure */
    assert_int_equal(vg_decoder_parse(dec, "{\"a\":", 5, &ev, err, sizeof(err)),
                     VG_EVENT_BAD_JSON);
    assert_int_equal(vg_decoder_parse(dec, "{\"a\":2}", 7, &ev, err, sizeof(err)), VG_EVENT_OK);
    assert_true(json_object_object_get_ex(vg_event_json(ev), "a", &t));
    assert_int_equal(json_object_get_int(t), 2);
    vg_event_destroy(ev);
    vg_event_destroy(NULL);
    vg_decoder_destroy(dec);
    vg_decoder_destroy(NULL);
}

static void test_duplicate_keys_last_wins(void **state)
{
    (void)state;
    /* DESIGN.md is silent; like most JSON parsers (JavaScript, Python,
     * json-c) the decoder accepts duplicate keys and keeps the last. */
    const char *buf = "{\"source\":\"satire-daily\",\"source\":\"reuters\"}";
    vg_decoder_t *dec = vg_decoder_new(NULL);
    vg_event_t *ev = NULL;
    char err[128];
    assert_int_equal(vg_decoder_parse(dec, buf, strlen(buf), &ev, err, sizeof(err)), VG_EVENT_OK);
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(vg_event_json(ev), "source", &v));
    assert_string_equal(json_object_get_string(v), "reuters");
    assert_int_equal(json_object_object_length(vg_event_json(ev)), 1);
    vg_event_destroy(ev);
    vg_decoder_destroy(dec);
}

/* ---- invalid JSON ------------------------------------------------------- */

static void test_invalid_json(void **state)
{
    (void)state;
    expect_status("{\"a\":1", VG_EVENT_BAD_JSON);      /* cut short */
    expect_status("{\"a\":}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":1,}", VG_EVENT_BAD_JSON);    /* trailing comma */
    expect_status("{\"a\":[1,]}", VG_EVENT_BAD_JSON);
    expect_status("{a:1}", VG_EVENT_BAD_JSON);         /* unquoted key */
    expect_status("{\"a\":'x'}", VG_EVENT_BAD_JSON);   /* single quotes */
    expect_status("{\"a\":TRUE}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":01}", VG_EVENT_BAD_JSON);    /* leading zero */
    expect_status("{\"a\":+1}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":.5}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":1e}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":\"\\x41\"}", VG_EVENT_BAD_JSON); /* not a JSON escape */
    expect_status("/*c*/{\"a\":1}", VG_EVENT_BAD_JSON);   /* comments */
    expect_status("{\"a\":1}//c", VG_EVENT_BAD_JSON);
}

static void test_non_json_numbers_refused(void **state)
{
    (void)state;
    /* Regression (fixed): json-c (even with JSON_TOKENER_STRICT) accepts NaN, Infinity,
     * -Infinity and "1." which RFC 8259 does not allow; such an event is
     * then copied verbatim into the alert, which downstream JSON parsers
     * refuse. daemon/event.c vg_decoder_parse must refuse them. */
    expect_status("{\"a\":NaN}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":Infinity}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":-Infinity}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":1.}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":nan}", VG_EVENT_BAD_JSON);
}

static void test_raw_control_characters_in_strings_refused(void **state)
{
    (void)state;
    /* Regression (fixed): RFC 8259 requires U+0000..U+001F in strings to be escaped.
     * json-c accepts a raw tab, newline or \x01 inside a string even in
     * strict mode; daemon/alert.c then turns the newline into a space
     * (changing the embedded event) and copies the tab verbatim (making
     * the alert invalid JSON for strict parsers). */
    expect_status("{\"a\":\"x\ny\"}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":\"x\ty\"}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":\"x\x01y\"}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\x1f\":1}", VG_EVENT_BAD_JSON);
}

static void test_trailing_garbage(void **state)
{
    (void)state;
    expect_status("{\"a\":1} x", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":1}}", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":1}{\"b\":2}", VG_EVENT_BAD_JSON);   /* two objects */
    expect_status("{\"a\":1}\n{\"b\":2}\n", VG_EVENT_BAD_JSON);
    expect_status("{\"a\":1},", VG_EVENT_BAD_JSON);
}

static void test_empty_input(void **state)
{
    (void)state;
    expect_status_n(NULL, "", 0, VG_EVENT_BAD_JSON);
    expect_status("   ", VG_EVENT_BAD_JSON);
    expect_status("\n", VG_EVENT_BAD_JSON);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    /* A NUL is valid UTF-8 but never valid JSON outside a \u0000 escape;
     * in particular the parser must not stop at it and accept the part
     * before it. */
    expect_status_n(NULL, "{\"a\":1}\0", 8, VG_EVENT_BAD_JSON);
    expect_status_n(NULL, "{\"a\":1}\0{\"evil\":2}", 18, VG_EVENT_BAD_JSON);
    expect_status_n(NULL, "{\"a\":\"x\0y\"}", 11, VG_EVENT_BAD_JSON);
    expect_status_n(NULL, "\0{\"a\":1}", 8, VG_EVENT_BAD_JSON);
    /* escaped, it is an ordinary character */
    expect_status("{\"a\":\"x\\u0000y\"}", VG_EVENT_OK);
}

/* ---- not an object ------------------------------------------------------ */

static void test_not_an_object(void **state)
{
    (void)state;
    expect_status("[]", VG_EVENT_NOT_OBJECT);
    expect_status("[{\"a\":1}]", VG_EVENT_NOT_OBJECT);
    expect_status("\"news\"", VG_EVENT_NOT_OBJECT);
    expect_status("null\n", VG_EVENT_NOT_OBJECT);
    expect_status("42\n", VG_EVENT_NOT_OBJECT);
    expect_status("-1.5 ", VG_EVENT_NOT_OBJECT);
}

static void test_bare_scalar_at_end_of_input_is_not_object(void **state)
{
    (void)state;
    /* Regression (fixed): a number, boolean or null that ends the input is reported as
     * invalid_json ("unexpected end of input") instead of not_object:
     * json-c returns json_tokener_continue because a number could go on,
     * and vg_decoder_parse never tells it that the input has ended. */
    expect_status("42", VG_EVENT_NOT_OBJECT);
    expect_status("-1.5", VG_EVENT_NOT_OBJECT);
    expect_status("true", VG_EVENT_NOT_OBJECT);
    expect_status("false", VG_EVENT_NOT_OBJECT);
    expect_status("null", VG_EVENT_NOT_OBJECT);
}

/* ---- invalid UTF-8 ------------------------------------------------------ */

static void test_invalid_utf8(void **state)
{
    (void)state;
    /* inside a string */
    expect_status("{\"a\":\"\xff\"}", VG_EVENT_BAD_UTF8);
    expect_status("{\"a\":\"caf\xe9\"}", VG_EVENT_BAD_UTF8);          /* Latin-1 é */
    expect_status("{\"a\":\"\xc3\"}", VG_EVENT_BAD_UTF8);             /* cut sequence */
    expect_status("{\"a\":\"\xc0\xaf\"}", VG_EVENT_BAD_UTF8);         /* overlong */
    expect_status("{\"a\":\"\xed\xa0\x80\"}", VG_EVENT_BAD_UTF8);     /* surrogate */
    expect_status("{\"a\":\"\xf4\x90\x80\x80\"}", VG_EVENT_BAD_UTF8); /* > U+10FFFF */
    /* in a key */
    expect_status("{\"\xfe\":1}", VG_EVENT_BAD_UTF8);
    /* between tokens, and after the object */
    expect_status("{\xff\"a\":1}", VG_EVENT_BAD_UTF8);
    expect_status("{\"a\":1}\xff", VG_EVENT_BAD_UTF8);
    expect_status("{\"a\":1}\n\x80", VG_EVENT_BAD_UTF8);
    /* bad UTF-8 wins over bad JSON: the reason is the more precise one */
    expect_status("\xff\xfe", VG_EVENT_BAD_UTF8);
}

/* ---- limits ------------------------------------------------------------- */

static void test_depth_limit_refuses_one_more(void **state)
{
    (void)state;
    vg_event_limits_t lim = {.max_bytes = 0, .max_depth = 3};
    expect_status_owned(&lim, nested_objects(4), VG_EVENT_TOO_DEEP);
    expect_status_owned(&lim, nested_arrays(4), VG_EVENT_TOO_DEEP);
    /* and far beyond: no stack exhaustion */
    expect_status_owned(NULL, nested_objects(100000), VG_EVENT_TOO_DEEP);
}

static void test_depth_limit_accepts_exactly_max(void **state)
{
    (void)state;
    /* Regression (fixed): the limit is off by one. json-c's depth counts every value,
     * including the scalars inside the innermost container, so
     * json_tokener_new_ex(max_depth) in daemon/event.c vg_decoder_new
     * refuses {"a":{"b":{"c":1}}} (3 levels) with max_depth 3, and even
     * {"a":1} with max_depth 1. */
    vg_event_limits_t lim = {.max_bytes = 0, .max_depth = 3};
    expect_status_n(&lim, "{\"a\":{\"b\":{}}}", 14, VG_EVENT_OK);
    expect_status_owned(&lim, nested_objects(3), VG_EVENT_OK);
    expect_status_owned(&lim, nested_arrays(3), VG_EVENT_OK);

    vg_event_limits_t one = {.max_bytes = 0, .max_depth = 1};
    expect_status_n(&one, "{\"a\":1,\"b\":\"x\"}", 15, VG_EVENT_OK);
    expect_status_n(&one, "{\"a\":[1]}", 9, VG_EVENT_TOO_DEEP);

    /* the default limit is 64 levels */
    expect_status_owned(NULL, nested_objects(64), VG_EVENT_OK);
    expect_status_owned(NULL, nested_objects(65), VG_EVENT_TOO_DEEP);
}

static void test_size_limit(void **state)
{
    (void)state;
    vg_event_limits_t lim = {.max_bytes = 100, .max_depth = 0};
    expect_status_owned(&lim, object_of_size(100), VG_EVENT_OK);
    expect_status_owned(&lim, object_of_size(101), VG_EVENT_TOO_LARGE);
    /* size is checked first: an oversized message of garbage is too large */
    expect_status_n(&lim, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                          "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                          "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                          "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                          "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                          "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
                          "\xff\xff\xff\xff\xff\xff\xff\xff",
                    104, VG_EVENT_TOO_LARGE);

    /* the default is 1 MiB */
    expect_status_owned(NULL, object_of_size(1024 * 1024), VG_EVENT_OK);
    expect_status_owned(NULL, object_of_size(1024 * 1024 + 1), VG_EVENT_TOO_LARGE);
}

static void test_reasons_and_status_names(void **state)
{
    (void)state;
    assert_string_equal(vg_event_status_name(VG_EVENT_OK), "ok");
    assert_string_equal(vg_event_status_name(VG_EVENT_TOO_LARGE), "too_large");
    assert_string_equal(vg_event_status_name(VG_EVENT_BAD_UTF8), "invalid_utf8");
    assert_string_equal(vg_event_status_name(VG_EVENT_TOO_DEEP), "too_deep");
    assert_string_equal(vg_event_status_name(VG_EVENT_BAD_JSON), "invalid_json");
    assert_string_equal(vg_event_status_name(VG_EVENT_NOT_OBJECT), "not_object");

    vg_event_limits_t lim = {.max_bytes = 10, .max_depth = 0};
    vg_decoder_t *dec = vg_decoder_new(&lim);
    vg_event_t *ev;
    char err[128];
    assert_int_equal(vg_decoder_parse(dec, "{\"abcdefgh\":1}", 14, &ev, err, sizeof(err)),
                     VG_EVENT_TOO_LARGE);
    assert_non_null(strstr(err, "14"));
    assert_non_null(strstr(err, "10"));
    assert_int_equal(vg_decoder_parse(dec, "[1]", 3, &ev, err, sizeof(err)),
                     VG_EVENT_NOT_OBJECT);
    assert_non_null(strstr(err, "array"));
    /* a small error buffer is respected */
    char tiny[8];
    memset(tiny, '#', sizeof(tiny));
    assert_int_equal(vg_decoder_parse(dec, "[1]", 3, &ev, tiny, 4), VG_EVENT_NOT_OBJECT);
    assert_int_equal(tiny[3], '\0');
    assert_int_equal(tiny[4], '#');
    vg_decoder_destroy(dec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_objects),
        cmocka_unit_test(test_event_keeps_json_and_raw_bytes),
        cmocka_unit_test(test_duplicate_keys_last_wins),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_non_json_numbers_refused),
        cmocka_unit_test(test_raw_control_characters_in_strings_refused),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_empty_input),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_bare_scalar_at_end_of_input_is_not_object),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_depth_limit_refuses_one_more),
        cmocka_unit_test(test_depth_limit_accepts_exactly_max),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_reasons_and_status_names),
        cmocka_unit_test(test_tree_matches_json_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
