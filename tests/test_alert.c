/* Alert rendering (include/vigil/alert.h, DESIGN.md "Alerts"): one JSON
 * object on one line with every documented field, a deterministic
 * alert_id, the summary template, the source for Kafka and for files, and
 * the event embedded unchanged. */
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
#include <time.h>

#include "vigil/alert.h"
#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"
#include "vigil/utf8.h"

/* ---- cleanup (freed by the per-test teardown, also after a failure) ---- */


/* ---- rendering ------------------------------------------------------------ */

typedef struct rendered {
    const char *text;    /* the alert as rendered */
    json_object *json;   /* ... and parsed */
    vg_ruleset_t *rs;
} rendered_t;

static time_t realtime_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec;
}

static vg_ruleset_t *load_rules(const char *yaml)
{
    vg_diags_t *d = own((free_fn)vg_diags_destroy, vg_diags_new());
    vg_rule_source_t src = {"rules.yaml", yaml, strlen(yaml)};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, NULL, d);
    if (rs == NULL) {
        vg_diags_print(d, stderr);
        fail_msg("the rules did not load:\n%s", yaml);
    }
    return own((free_fn)vg_ruleset_destroy, rs);
}

static json_object *parse_json(const char *text)
{
    json_object *o = json_tokener_parse(text);
    if (o == NULL)
        fail_msg("not JSON: %s", text);
    return own(put_json, o);
}

/* Evaluates rs on json and renders the alert for the i-th rule that
 * fired; checks that it is one line of valid JSON and valid UTF-8. */
static rendered_t render_opts(vg_ruleset_t *rs, const char *json, size_t i,
                              const vg_alert_source_t *src, const vg_alert_options_t *opts)
{
    vg_decoder_t *dec = own((free_fn)vg_decoder_destroy, vg_decoder_new(NULL));
    vg_event_t *ev = NULL;
    char err[256];
    if (vg_decoder_parse(dec, json, strlen(json), &ev, err, sizeof(err)) != VG_EVENT_OK)
        fail_msg("event does not decode (%s): %s", err, json);
    own((free_fn)vg_event_destroy, ev);
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    int n = vg_scanner_eval(sc, ev, err, sizeof(err));
    if (n <= (int)i)
        fail_msg("only %d rules fired on %s", n, json);
    size_t len = 0;
    char *text = vg_alert_render_ex(sc, ev, i, src, opts, &len);
    assert_non_null(text);
    own(free, text);
    assert_int_equal(len, strlen(text));
    if (strchr(text, '\n') || strchr(text, '\r'))
        fail_msg("the alert is not one line: %s", text);
    assert_true(vg_utf8_valid(text, len));
    rendered_t r = {text, parse_json(text), rs};
    assert_true(json_object_is_type(r.json, json_type_object));
    return r;
}

static rendered_t render_with(vg_ruleset_t *rs, const char *json, size_t i,
                              const vg_alert_source_t *src, const char *time_field)
{
    vg_alert_options_t o = {.time_field = time_field};
    return render_opts(rs, json, i, src, &o);
}

static const vg_alert_source_t KAFKA = {.topic = "news", .partition = 3, .offset = 1234,
                                        .timestamp_ms = -1};
static const vg_alert_source_t FILE_SRC = {.file = "events.jsonl", .line = 7,
                                           .timestamp_ms = -1};

static rendered_t render(const char *rules_yaml, const char *json)
{
    return render_with(load_rules(rules_yaml), json, 0, &FILE_SRC, NULL);
}

static json_object *member(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("member '%s' missing in %s", key, json_object_to_json_string(o));
    return v;
}

static const char *str_member(json_object *o, const char *key)
{
    json_object *v = member(o, key);
    if (!json_object_is_type(v, json_type_string))
        fail_msg("member '%s' is not a string", key);
    return json_object_get_string(v);
}

/* The object has exactly these keys, in this order. */
static void assert_keys(json_object *o, const char *const *keys, size_t n)
{
    assert_int_equal(json_object_object_length(o), n);
    size_t i = 0;
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        assert_string_equal(k, keys[i]);
        i++;
    }
}

/* The summary that rule "r" with the given summary template (a YAML
 * scalar) renders for the event. */
static const char *summary_of(const char *summary_yaml, const char *json)
{
    rendered_t r = render(fmt("rules:\n"
                              "  - id: r\n"
                              "    title: The title\n"
                              "    match: {all: []}\n"
                              "    alert: {summary: %s}\n",
                              summary_yaml),
                          json);
    return str_member(r.json, "summary");
}

static bool is_rfc3339_ms(const char *s)
{
    /* 2024-05-01T12:34:56.789Z */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != strlen(shape))
        return false;
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    return true;
}

/* ---- the alert object ------------------------------------------------------ */

static const char RULES[] =
    "lists:\n"
    "  restriction_terms: [export control*, entity list]\n"
    "rules:\n"
    "  - id: chipmaker-export-restriction\n"
    "    title: Export restriction naming a chip maker\n"
    "    severity: high\n"
    "    tags: [export-control, semiconductors]\n"
    "    match:\n"
    "      all:\n"
    "        - {field: type, eq: news}\n"
    "        - text: {any: $restriction_terms}\n"
    "        - text: {any: [SMIC], fields: [title, entities]}\n"
    "    alert:\n"
    "      topic: alerts.export-control\n"
    "      summary: \"{title}\"\n"
    "  - id: any-news\n"
    "    match: {field: type, eq: news}\n";

static const char EVENT[] =
    "{\"type\":\"news\",\"id\":\"r-1987-0417\",\"published_at\":\"1987-04-17T09:12:00Z\","
    "\"source\":\"reuters\",\"title\":\"US puts SMIC on entity list\",\"body\":\"...\","
    "\"countries\":[\"JP\",\"US\"],\"entities\":[\"MITI\",\"SMIC\"],\"value_usd\":1.2e9}";

static void test_alert_has_every_documented_field(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules(RULES);
    /* The alert's clock is clock_gettime(CLOCK_REALTIME); time() reads the
     * coarse clock, which can still show the previous second for a few
     * milliseconds after the precise one has moved on, so it is not used
     * for these bounds. */
    time_t before = realtime_s();
    rendered_t r = render_with(rs, EVENT, 0, &KAFKA, "published_at");
    static const char *const keys[] = {"alert_id", "rule",    "title",      "severity",
                                       "tags",     "summary", "time",       "event_time",
                                       "matches",  "source",  "ruleset",    "event"};
    assert_keys(r.json, keys, sizeof(keys) / sizeof(keys[0]));

    const char *id = str_member(r.json, "alert_id");
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    assert_string_equal(str_member(r.json, "rule"), "chipmaker-export-restriction");
    assert_string_equal(str_member(r.json, "title"), "Export restriction naming a chip maker");
    assert_string_equal(str_member(r.json, "severity"), "high");
    json_object *tags = member(r.json, "tags");
    assert_int_equal(json_object_array_length(tags), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(tags, 0)),
                        "export-control");
    assert_string_equal(json_object_get_string(json_object_array_get_idx(tags, 1)),
                        "semiconductors");
    assert_string_equal(str_member(r.json, "summary"), "US puts SMIC on entity list");

    /* time: now, as RFC 3339 UTC with milliseconds */
    const char *t = str_member(r.json, "time");
    assert_true(is_rfc3339_ms(t));
    struct tm tm = {0};
    assert_non_null(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t at = timegm(&tm);
    assert_true(at >= before && at <= realtime_s());
    assert_string_equal(str_member(r.json, "event_time"), "1987-04-17T09:12:00Z");

    /* matches: the keyword evidence of the rule's text conditions */
    json_object *m = member(r.json, "matches");
    assert_int_equal(json_object_array_length(m), 3);
    json_object *first = json_object_array_get_idx(m, 0);
    static const char *const mkeys[] = {"field", "term", "list", "offset", "length", "snippet"};
    assert_keys(first, mkeys, 6);
    assert_string_equal(str_member(first, "field"), "title");
    assert_string_equal(str_member(first, "term"), "entity list");
    assert_string_equal(str_member(first, "list"), "restriction_terms");
    assert_int_equal(json_object_get_int(member(first, "offset")), 16);
    assert_int_equal(json_object_get_int(member(first, "length")), 11);
    assert_string_equal(str_member(first, "snippet"), "US puts SMIC on entity list");
    json_object *smic = json_object_array_get_idx(m, 2);
    assert_string_equal(str_member(smic, "field"), "entities");
    assert_true(json_object_is_type(member(smic, "list"), json_type_null));

    /* source, ruleset, event */
    json_object *src = member(r.json, "source");
    static const char *const skeys[] = {"topic", "partition", "offset"};
    assert_keys(src, skeys, 3);
    assert_string_equal(str_member(src, "topic"), "news");
    assert_int_equal(json_object_get_int(member(src, "partition")), 3);
    assert_int_equal(json_object_get_int64(member(src, "offset")), 1234);
    assert_string_equal(str_member(r.json, "ruleset"), vg_ruleset_hash(rs));
    assert_true(json_object_equal(member(r.json, "event"), parse_json(EVENT)));
}

static void test_each_rule_that_fired_renders_its_own_alert(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules(RULES);
    rendered_t a = render_with(rs, EVENT, 0, &KAFKA, NULL);
    rendered_t b = render_with(rs, EVENT, 1, &KAFKA, NULL);
    assert_string_equal(str_member(a.json, "rule"), "chipmaker-export-restriction");
    assert_string_equal(str_member(b.json, "rule"), "any-news");
    assert_string_not_equal(str_member(a.json, "alert_id"), str_member(b.json, "alert_id"));
    /* defaults: title is the id, summary the title, no tags, no matches */
    assert_string_equal(str_member(b.json, "title"), "any-news");
    assert_string_equal(str_member(b.json, "summary"), "any-news");
    assert_string_equal(str_member(b.json, "severity"), "medium");
    assert_int_equal(json_object_array_length(member(b.json, "tags")), 0);
    assert_int_equal(json_object_array_length(member(b.json, "matches")), 0);

    /* no alert for a rule that did not fire */
    vg_scanner_t *sc = own((free_fn)vg_scanner_destroy, vg_scanner_new(rs));
    vg_decoder_t *dec = own((free_fn)vg_decoder_destroy, vg_decoder_new(NULL));
    vg_event_t *ev = NULL;
    char err[128];
    assert_int_equal(vg_decoder_parse(dec, EVENT, strlen(EVENT), &ev, err, sizeof(err)),
                     VG_EVENT_OK);
    own((free_fn)vg_event_destroy, ev);
    assert_int_equal(vg_scanner_eval(sc, ev, err, sizeof(err)), 2);
    size_t len = 99;
    assert_null(vg_alert_render(sc, ev, 2, &KAFKA, NULL, &len));
}

static void test_list_names_outlive_the_rule_files(void **state)
{
    (void)state;
    /* Regression (fixed): use after free. The "list" of a match is the name of the list
     * the term came from; daemon/engine/ruleset_lists.c vg_rc_register_defs keeps that name
     * as a pointer into the YAML document (list_def_t.name = k->str,
     * copied to item_t.list and vg_term_ref_t.list), and the document is
     * freed at the end of vg_ruleset_load_sources/vg_ruleset_load
     * (compiler_free -> vg_ydoc_destroy). daemon/alert.c vg_alert_render
     * then reads freed memory (valgrind: "Invalid read ... alert.c:197").
     * Here the freed memory is reused before rendering, so the alert
     * names a garbage list. */
    vg_ruleset_t *rs = load_rules(RULES);
    for (int i = 0; i < 64; i++) {
        size_t n = 65568;
        char *p = own(free, malloc(n));
        memset(p, 'X', n - 1);
        p[n - 1] = '\0';
    }
    rendered_t r = render_with(rs, EVENT, 0, &KAFKA, NULL);
    json_object *first = json_object_array_get_idx(member(r.json, "matches"), 0);
    const char *list = str_member(first, "list");
    if (strcmp(list, "restriction_terms") != 0)
        fail_msg("the alert names list '%.20s...' (freed memory), wanted 'restriction_terms'",
                 list);
}

/* ---- alert_id ------------------------------------------------------------ */

static void id_of(const char *rule, const char *hash, const vg_alert_source_t *src,
                  char out[33])
{
    memset(out, 'x', 33);
    vg_alert_id(rule, hash, src, out);
    assert_int_equal(strlen(out), 32);
    assert_int_equal(strspn(out, "0123456789abcdef"), 32);
}

#define assert_same_id(r1, h1, s1, r2, h2, s2)                                               \
    do {                                                                                     \
        char a_[33], b_[33];                                                                 \
        id_of((r1), (h1), (s1), a_);                                                         \
        id_of((r2), (h2), (s2), b_);                                                         \
        assert_string_equal(a_, b_);                                                         \
    } while (0)

#define assert_other_id(r1, h1, s1, r2, h2, s2)                                              \
    do {                                                                                     \
        char a_[33], b_[33];                                                                 \
        id_of((r1), (h1), (s1), a_);                                                         \
        id_of((r2), (h2), (s2), b_);                                                         \
        assert_string_not_equal(a_, b_);                                                     \
    } while (0)

static void test_alert_id_is_deterministic(void **state)
{
    (void)state;
    const char *H = "0123456789abcdef";
    vg_alert_source_t k = KAFKA, k2 = KAFKA;
    assert_same_id("r", H, &k, "r", H, &k2);
    /* the broker's timestamp is not part of it: a redelivery has the same id */
    k2.timestamp_ms = 1700000000000;
    assert_same_id("r", H, &k, "r", H, &k2);
    vg_alert_source_t f = FILE_SRC, f2 = FILE_SRC;
    assert_same_id("r", H, &f, "r", H, &f2);

    /* rendered twice, by different scanners: the same id, equal to
     * vg_alert_id */
    vg_ruleset_t *rs = load_rules(RULES);
    rendered_t a = render_with(rs, EVENT, 0, &KAFKA, NULL);
    rendered_t b = render_with(load_rules(RULES), EVENT, 0, &k2, NULL);
    assert_string_equal(str_member(a.json, "alert_id"), str_member(b.json, "alert_id"));
    char want[33];
    id_of("chipmaker-export-restriction", vg_ruleset_hash(rs), &KAFKA, want);
    assert_string_equal(str_member(a.json, "alert_id"), want);
}

static void test_alert_id_changes_with_rule_ruleset_and_source(void **state)
{
    (void)state;
    const char *H = "0123456789abcdef";
    vg_alert_source_t k = KAFKA, o;
    assert_other_id("r", H, &k, "s", H, &k);
    assert_other_id("r", H, &k, "r", "0123456789abcdee", &k);
    o = k, o.offset = 1235;
    assert_other_id("r", H, &k, "r", H, &o);
    o = k, o.partition = 4;
    assert_other_id("r", H, &k, "r", H, &o);
    o = k, o.topic = "trade";
    assert_other_id("r", H, &k, "r", H, &o);
    /* fields cannot run into each other */
    vg_alert_source_t p1 = {.topic = "a", .partition = 1, .offset = 23};
    vg_alert_source_t p2 = {.topic = "a", .partition = 12, .offset = 3};
    assert_other_id("r", H, &p1, "r", H, &p2);
    assert_other_id("ab", "c", &k, "a", "bc", &k);

    vg_alert_source_t f = FILE_SRC;
    o = f, o.line = 8;
    assert_other_id("r", H, &f, "r", H, &o);
    o = f, o.file = "other.jsonl";
    assert_other_id("r", H, &f, "r", H, &o);
    /* a file and a topic of the same name are different sources */
    vg_alert_source_t t = {.topic = "events.jsonl", .partition = 0, .offset = 7};
    assert_other_id("r", H, &f, "r", H, &t);

    /* a change to the rules changes the ruleset hash, hence the id */
    rendered_t a = render_with(load_rules(RULES), EVENT, 0, &KAFKA, NULL);
    rendered_t b =
        render_with(load_rules(fmt("%s# edited\n", RULES)), EVENT, 0, &KAFKA, NULL);
    assert_string_not_equal(str_member(a.json, "alert_id"), str_member(b.json, "alert_id"));
}

/* ---- summary ------------------------------------------------------------- */

static void test_summary_template(void **state)
{
    (void)state;
    const char *ev = "{\"title\":\"US puts SMIC on entity list\",\"countries\":[\"JP\",\"US\"],"
                     "\"meta\":{\"source\":{\"name\":\"Reuters\"}},\"value_usd\":1.2e9,"
                     "\"change_pct\":-23.5,\"parties\":[{\"name\":\"A\"},{\"name\":\"B\"}],"
                     "\"n\":[[1,2],[3]],\"ok\":true}";
    assert_string_equal(summary_of("'{title}'", ev), "US puts SMIC on entity list");
    assert_string_equal(summary_of("'Alert: {title}!'", ev),
                        "Alert: US puts SMIC on entity list!");
    /* arrays are joined with ", " */
    assert_string_equal(summary_of("'{countries}'", ev), "JP, US");
    assert_string_equal(summary_of("'{parties.name}'", ev), "A, B");
    assert_string_equal(summary_of("'{n}'", ev), "1, 2, 3");
    /* nested paths */
    assert_string_equal(summary_of("'via {meta.source.name}'", ev), "via Reuters");
    /* numbers as written in the event */
    assert_string_equal(summary_of("'{value_usd} USD, {change_pct}%'", ev),
                        "1.2e9 USD, -23.5%");
    assert_string_equal(summary_of("'{ok}'", ev), "true");
    /* missing fields are replaced by nothing */
    assert_string_equal(summary_of("'[{missing}] [{meta.nope}] [{title.x}]'", ev), "[] [] []");
    /* doubled braces are literal */
    assert_string_equal(summary_of("'{{title}} is {title}'", ev),
                        "{title} is US puts SMIC on entity list");
    assert_string_equal(summary_of("'a }} b {{ c'", ev), "a } b { c");
    /* an unclosed brace is kept as it is */
    assert_string_equal(summary_of("'open {title'", ev), "open {title");
}

static void test_summary_escaping_and_limits(void **state)
{
    (void)state;
    /* quotes, backslashes, control characters and non-ASCII text stay
     * intact through JSON escaping */
    const char *ev = "{\"title\":\"He said \\\"ban\\\" \\\\ \\u0001 \\t ÉTATS-UNIS 华为\"}";
    assert_string_equal(summary_of("'{title}'", ev), "He said \"ban\" \\ \x01 \t ÉTATS-UNIS 华为");

    /* engine choice: at most 1024 bytes, never cutting a character */
    char *title = own(free, malloc(3 * 600 + 1));
    title[0] = '\0';
    for (int i = 0; i < 600; i++)
        strcat(title, "é"); /* two bytes each */
    const char *s = summary_of("'x{title}'", fmt("{\"title\":\"%s\"}", title));
    assert_true(strlen(s) <= 1024);
    assert_true(strlen(s) >= 1020);
    assert_true(vg_utf8_valid(s, strlen(s)));
}

/* ---- source, event time -------------------------------------------------- */

static void test_source_shapes(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules(RULES);
    rendered_t k = render_with(rs, EVENT, 1, &KAFKA, NULL);
    json_object *src = member(k.json, "source");
    assert_int_equal(json_object_object_length(src), 3);
    assert_true(json_object_is_type(member(src, "partition"), json_type_int));
    assert_true(json_object_is_type(member(src, "offset"), json_type_int));

    vg_alert_source_t big = {.topic = "news.raw", .partition = 2147483647,
                             .offset = INT64_C(9007199254740993), .timestamp_ms = -1};
    src = member(render_with(rs, EVENT, 1, &big, NULL).json, "source");
    assert_string_equal(str_member(src, "topic"), "news.raw");
    assert_int_equal(json_object_get_int(member(src, "partition")), 2147483647);
    assert_true(json_object_get_int64(member(src, "offset")) == INT64_C(9007199254740993));

    rendered_t f = render_with(rs, EVENT, 1, &FILE_SRC, NULL);
    src = member(f.json, "source");
    static const char *const fkeys[] = {"file", "line"};
    assert_keys(src, fkeys, 2);
    assert_string_equal(str_member(src, "file"), "events.jsonl");
    assert_int_equal(json_object_get_int(member(src, "line")), 7);

    /* engine choice: standard input is written "-" */
    vg_alert_source_t in = {.file = NULL, .line = 1, .timestamp_ms = -1};
    src = member(render_with(rs, EVENT, 1, &in, NULL).json, "source");
    assert_string_equal(str_member(src, "file"), "-");
}

static void test_event_time(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules("rules:\n  - id: r\n    match: {all: []}\n");
    /* from the configured field, as written */
    rendered_t r = render_with(rs, "{\"published_at\":\"2024-05-01T12:00:00+02:00\"}", 0,
                               &FILE_SRC, "published_at");
    assert_string_equal(str_member(r.json, "event_time"), "2024-05-01T12:00:00+02:00");
    r = render_with(rs, "{\"ts\":1714557600}", 0, &FILE_SRC, "ts");
    assert_int_equal(json_object_get_int64(member(r.json, "event_time")), 1714557600);
    /* otherwise the Kafka message timestamp */
    vg_alert_source_t k = KAFKA;
    k.timestamp_ms = 1700000000123;
    r = render_with(rs, "{\"title\":\"x\"}", 0, &k, "published_at");
    assert_string_equal(str_member(r.json, "event_time"), "2023-11-14T22:13:20.123Z");
    r = render_with(rs, "{\"published_at\":{\"x\":1}}", 0, &k, "published_at");
    assert_string_equal(str_member(r.json, "event_time"), "2023-11-14T22:13:20.123Z");
    r = render_with(rs, "{}", 0, &k, NULL);
    assert_string_equal(str_member(r.json, "event_time"), "2023-11-14T22:13:20.123Z");
    /* otherwise null */
    r = render_with(rs, "{}", 0, &FILE_SRC, "published_at");
    assert_true(json_object_is_type(member(r.json, "event_time"), json_type_null));
    r = render_with(rs, "{}", 0, &KAFKA, NULL);
    assert_true(json_object_is_type(member(r.json, "event_time"), json_type_null));
}

static void test_event_time_field_may_be_a_path(void **state)
{
    (void)state;
    /* Regression (fixed): daemon/alert.c vg_alert_render looks time_field up as one
     * top-level key (json_object_object_get_ex(root, time_field)), but
     * daemon/config.c validates input.time_field as a field path
     * (VG_CHECK_FIELD_PATH) and test_config.c uses "meta.ts": such a
     * setting never finds {"meta":{"ts":...}} and event_time falls back
     * to the Kafka timestamp or null. */
    vg_ruleset_t *rs = load_rules("rules:\n  - id: r\n    match: {all: []}\n");
    rendered_t r = render_with(rs, "{\"meta\":{\"ts\":\"2024-05-01T10:00:00Z\"}}", 0, &FILE_SRC,
                               "meta.ts");
    assert_true(json_object_is_type(member(r.json, "event_time"), json_type_string));
    assert_string_equal(str_member(r.json, "event_time"), "2024-05-01T10:00:00Z");
}

/* ---- the embedded event -------------------------------------------------- */

static void test_event_is_embedded_unchanged(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules("rules:\n  - id: r\n    match: {all: []}\n");
    static const char *const events[] = {
        EVENT,
        "{}",
        "{\"t\":\"ÉTATS-UNIS 华为 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\n \\u0000\"}",
        "{\"z\":1,\"a\":{\"b\":[1,2.50,-0.0,1e300,true,false,null]},\"m\":\"\"}",
        "  {\"title\":\"leading and trailing space\"}  \n",
    };
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        rendered_t r = render_with(rs, events[i], 0, &FILE_SRC, NULL);
        if (!json_object_equal(member(r.json, "event"), parse_json(events[i])))
            fail_msg("event %zu changed: %s", i, r.text);
        /* its original text, numbers as written and key order included */
        const char *s = events[i] + strspn(events[i], " ");
        size_t n = strlen(s);
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\n'))
            n--;
        if (strstr(r.text, fmt("\"event\":%.*s}", (int)n, s)) == NULL)
            fail_msg("event %zu is not embedded as written: %s", i, r.text);
    }
}

/* What strict (I-JSON, RFC 7493) consumers refuse is not copied from the
 * event's bytes: the event is written as decoded. A lone surrogate is
 * U+FFFD, a repeated key one member with the last value (at the first
 * one's place), a number beyond the range of a double a string of its
 * text; everything else as written. */
static void test_event_that_is_not_ijson_is_written_as_decoded(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules("rules:\n  - id: r\n    match: {all: []}\n");

    rendered_t r =
        render_with(rs, "{\"a\":\"x\\ud800y\",\"b\":\"\\udc00\",\"ok\":\"\\ud83d\\ude00\"}", 0,
                    &FILE_SRC, NULL);
    json_object *ev = member(r.json, "event");
    assert_string_equal(str_member(ev, "a"), "x\xef\xbf\xbdy");
    assert_string_equal(str_member(ev, "b"), "\xef\xbf\xbd");
    assert_string_equal(str_member(ev, "ok"), "\xf0\x9f\x98\x80");
    if (strstr(r.text, "\\ud800") || strstr(r.text, "\\udc00"))
        fail_msg("a lone surrogate escape is left: %s", r.text);

    r = render_with(rs, "{\"k\":1,\"x\":2.50,\"k\":2,\"o\":{\"d\":\"a\",\"d\":\"b\"}}", 0,
                    &FILE_SRC, NULL);
    ev = member(r.json, "event");
    assert_keys(ev, (const char *const[]){"k", "x", "o"}, 3);
    assert_int_equal(json_object_get_int(member(ev, "k")), 2);
    assert_keys(member(ev, "o"), (const char *const[]){"d"}, 1);
    assert_string_equal(str_member(member(ev, "o"), "d"), "b");
    assert_non_null(strstr(r.text, "\"event\":{\"k\":2,\"x\":2.50,\"o\":{\"d\":\"b\"}}"));

    r = render_with(
        rs, "{\"big\":1e999,\"neg\":-1E+400,\"n\":[1e999,1.5,-0.0,7],\"t\":\"a\\u0000\\/b\"}", 0,
        &FILE_SRC, NULL);
    ev = member(r.json, "event");
    assert_string_equal(str_member(ev, "big"), "1e999");
    assert_string_equal(str_member(ev, "neg"), "-1E+400");
    assert_non_null(strstr(r.text, "\"n\":[\"1e999\",1.5,-0.0,7]"));
    assert_non_null(strstr(r.text, "\"t\":\"a\\u0000/b\""));

    /* Not I-JSON only where it is: a tiny number and a big integer are. */
    const char *fine = "{\"tiny\":1e-400,\"id\":99999999999999999999,\"s\":\"\\ud83d\\ude00\"}";
    r = render_with(rs, fine, 0, &FILE_SRC, NULL);
    assert_non_null(strstr(r.text, fmt("\"event\":%s}", fine)));
}

static void test_pretty_printed_event_gives_a_one_line_alert(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules("rules:\n  - id: r\n    match: {text: {any: [entity list]}}\n");
    static const char *const events[] = {
        "{\n  \"title\": \"SMIC on entity list\",\n  \"n\": [\n    1,\n    2\n  ]\n}\n",
        "{\r\n\t\"title\": \"entity list\",\r\n\t\"body\": \"a\\nb\\r\\n\"\r\n}\r\n",
        "\n\n{\"title\":\"entity list\"}\n\n",
    };
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        rendered_t r = render_with(rs, events[i], 0, &KAFKA, NULL); /* checks one line */
        if (!json_object_equal(member(r.json, "event"), parse_json(events[i])))
            fail_msg("event %zu changed: %s", i, r.text);
    }
    /* the escaped line breaks inside strings survive */
    rendered_t r = render_with(rs, events[1], 0, &KAFKA, NULL);
    assert_string_equal(str_member(member(r.json, "event"), "body"), "a\nb\r\n");
}

/* output.include_event: false and output.max_matches: the event is left
 * out, the evidence is cut to the first N and the rest counted. */
static void test_alert_options_omit_event_and_cap_matches(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load_rules("rules:\n  - id: r\n    match:\n"
                                  "      text: {any: [alpha, beta, gamma, delta]}\n");
    const char *ev = "{\"title\":\"alpha beta gamma delta\",\"body\":\"\"}";
    rendered_t full = render_with(rs, ev, 0, &KAFKA, NULL);
    assert_int_equal(json_object_array_length(member(full.json, "matches")), 4);
    assert_false(json_object_object_get_ex(full.json, "matches_omitted", NULL));
    assert_non_null(member(full.json, "event"));

    vg_alert_options_t o = {.omit_event = true, .max_matches = 3};
    rendered_t cut = render_opts(rs, ev, 0, &KAFKA, &o);
    assert_false(json_object_object_get_ex(cut.json, "event", NULL));
    assert_int_equal(json_object_array_length(member(cut.json, "matches")), 3);
    assert_int_equal(json_object_get_int(member(cut.json, "matches_omitted")), 1);
    /* the same alert otherwise: id, rule and source */
    assert_string_equal(str_member(cut.json, "alert_id"), str_member(full.json, "alert_id"));
    assert_non_null(member(cut.json, "source"));

    vg_alert_options_t exact = {.max_matches = 4};
    rendered_t all = render_opts(rs, ev, 0, &KAFKA, &exact);
    assert_int_equal(json_object_array_length(member(all.json, "matches")), 4);
    assert_false(json_object_object_get_ex(all.json, "matches_omitted", NULL));
}

static void test_snippet(void **state)
{
    (void)state;
    /* about 40 bytes either side, never cutting a UTF-8 character */
    char *body = own(free, calloc(1, 1024));
    for (int i = 0; i < 30; i++)
        strcat(body, "é");
    strcat(body, " ban ");
    for (int i = 0; i < 30; i++)
        strcat(body, "華");
    rendered_t r =
        render("rules:\n  - id: r\n    match: {text: {any: [ban]}}\n", fmt("{\"body\":\"%s\"}", body));
    json_object *m = json_object_array_get_idx(member(r.json, "matches"), 0);
    assert_int_equal(json_object_get_int(member(m, "offset")), 61);
    const char *snip = str_member(m, "snippet");
    assert_true(vg_utf8_valid(snip, strlen(snip)));
    assert_non_null(strstr(snip, " ban "));
    assert_true(strlen(snip) >= 80 && strlen(snip) <= 90);
    assert_true(strlen(snip) < strlen(body));
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, cleanup)
    const struct CMUnitTest tests[] = {
        T(test_alert_has_every_documented_field),
        T(test_each_rule_that_fired_renders_its_own_alert),
        T(test_list_names_outlive_the_rule_files),
        T(test_alert_id_is_deterministic),
        T(test_alert_id_changes_with_rule_ruleset_and_source),
        T(test_summary_template),
        T(test_summary_escaping_and_limits),
        T(test_source_shapes),
        T(test_event_time),
        T(test_event_time_field_may_be_a_path),
        T(test_event_is_embedded_unchanged),
        T(test_event_that_is_not_ijson_is_written_as_decoded),
        T(test_pretty_printed_event_gives_a_one_line_alert),
        T(test_snippet),
        T(test_alert_options_omit_event_and_cap_matches),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
