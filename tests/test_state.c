/* Stateful rules: every window edge, eviction, the output stages,
 * determinism of alert ids, and snapshot/restore equal to an
 * uninterrupted run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hash.h"
#include "test_support.h"
#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"
#include "vigil/state.h"

#define H (INT64_C(3600000))
#define T0 (INT64_C(1704067200000)) /* 2024-01-01T00:00:00Z */

static void destroy_ruleset(void *p) { vg_ruleset_destroy(p); }
static void destroy_scanner(void *p) { vg_scanner_destroy(p); }
static void destroy_state(void *p) { vg_state_destroy(p); }
static void destroy_decoder(void *p) { vg_decoder_destroy(p); }
static void destroy_diags(void *p) { vg_diags_destroy(p); }

static vg_ruleset_t *load(const char *yaml)
{
    vg_diags_t *d = own(destroy_diags, vg_diags_new());
    vg_rule_source_t src = {"test.yaml", yaml, strlen(yaml)};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, NULL, d);
    if (!rs)
        vg_diags_print(d, stderr);
    assert_non_null(rs);
    return own(destroy_ruleset, rs);
}

/* The first error message of a ruleset that must not load. */
static const char *load_error(const char *yaml, unsigned *line, unsigned *col)
{
    vg_diags_t *d = own(destroy_diags, vg_diags_new());
    vg_rule_source_t src = {"test.yaml", yaml, strlen(yaml)};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, NULL, d);
    vg_ruleset_destroy(rs);
    assert_null(rs);
    assert_true(vg_diags_errors(d) > 0);
    const vg_diag_t *g = vg_diags_get(d, 0);
    if (line)
        *line = g->line;
    if (col)
        *col = g->col;
    return g->message;
}

/* A run: one partition fed event by event, alerts kept as JSON. */
typedef struct run {
    const vg_ruleset_t *rs;
    vg_scanner_t *sc;
    vg_decoder_t *dec;
    vg_state_t *st;
    json_object *alerts[4096];
    size_t n;
    uint64_t line;
} run_t;

static int keep(void *ctx, const vg_state_alert_t *a)
{
    run_t *r = ctx;
    assert_true(r->n < 4096);
    json_object *o = json_tokener_parse(a->json);
    assert_non_null(o);
    /* The wall-clock time is the one field a replay may change. */
    json_object_object_del(o, "time");
    r->alerts[r->n++] = own(put_json, o);
    return 0;
}

static void run_init(run_t *r, const vg_ruleset_t *rs)
{
    memset(r, 0, sizeof(*r));
    r->rs = rs;
    r->sc = own(destroy_scanner, vg_scanner_new(rs));
    r->dec = own(destroy_decoder, vg_decoder_new(NULL));
    r->st = own(destroy_state, vg_state_new(rs, NULL));
    assert_non_null(r->sc);
    assert_non_null(r->dec);
    assert_non_null(r->st);
}

/* Feeds one event (JSON) and returns how many alerts it raised. */
static int feed(run_t *r, const char *json)
{
    vg_event_t *ev = NULL;
    char err[256];
    assert_int_equal(vg_decoder_parse(r->dec, json, strlen(json), &ev, err, sizeof(err)),
                     VG_EVENT_OK);
    vg_alert_source_t src = {.file = "in.jsonl", .line = ++r->line, .timestamp_ms = -1};
    int n = vg_state_process(r->st, r->sc, ev, &src, keep, r, err, sizeof(err));
    vg_event_destroy(ev);
    if (n < 0)
        fail_msg("%s", err);
    return n;
}

static char *iso(int64_t ms)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[64];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt("%s.%03dZ", buf, (int)(ms % 1000));
}

/* A news event at T0 + ms naming entity, from source. */
static int news(run_t *r, int64_t ms, const char *entity, const char *source)
{
    return feed(r, fmt("{\"type\":\"news\",\"published_at\":\"%s\",\"source\":\"%s\","
                       "\"title\":\"%s added to entity list\",\"entities\":[\"%s\"]}",
                       iso(T0 + ms), source, entity, entity));
}

static json_object *field(json_object *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = strtok(buf, "."); p && o; p = strtok(NULL, "."))
        if (!json_object_object_get_ex(o, p, &o))
            return NULL;
    return o;
}

static int64_t num(json_object *a, const char *path)
{
    json_object *v = field(a, path);
    assert_non_null(v);
    return json_object_get_int64(v);
}

static const char *str(json_object *a, const char *path)
{
    json_object *v = field(a, path);
    assert_non_null(v);
    return json_object_get_string(v);
}

static const char *THRESHOLD =
    "rules:\n"
    "  - id: surge\n"
    "    match: {text: {any: [entity list]}}\n"
    "    threshold: {count: 3, window: 24h, group_by: entities}\n"
    "    event_time: {lateness: 2h}\n";

static void threshold_exactly_n(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load(THRESHOLD));
    assert_int_equal(news(&r, 0, "SMIC", "a"), 0);
    assert_int_equal(news(&r, 5 * H, "SMIC", "a"), 0);
    assert_int_equal(news(&r, 9 * H, "YMTC", "a"), 0);
    assert_int_equal(news(&r, 10 * H, "SMIC", "a"), 1);
    json_object *a = r.alerts[0];
    assert_string_equal(str(a, "rule"), "surge");
    assert_string_equal(str(a, "state.kind"), "threshold");
    assert_string_equal(str(a, "state.group.entities"), "smic");
    assert_int_equal(num(a, "state.count"), 3);
    assert_string_equal(str(a, "state.window_start"), iso(T0));
    assert_string_equal(str(a, "state.window_end"), iso(T0 + 10 * H));
    assert_int_equal(num(a, "source.line"), 4);
    assert_non_null(field(a, "event"));
    /* The events that fired are used up: the next two do not fire again. */
    assert_int_equal(news(&r, 11 * H, "SMIC", "a"), 0);
    assert_int_equal(news(&r, 12 * H, "SMIC", "a"), 0);
    assert_int_equal(news(&r, 13 * H, "SMIC", "a"), 1);
}

static void threshold_n_minus_one(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load(THRESHOLD));
    assert_int_equal(news(&r, 0, "SMIC", "a"), 0);
    assert_int_equal(news(&r, 23 * H, "SMIC", "a"), 0);
    assert_int_equal(news(&r, 30 * H, "YMTC", "a"), 0);
    assert_int_equal(r.n, 0);
}

/* Within a window means less than the window apart: an event exactly one
 * window after the first does not count with it. */
static void threshold_window_boundary(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load(THRESHOLD));
    assert_int_equal(news(&r, 0, "SMIC", "a"), 0);
    assert_int_equal(news(&r, 12 * H, "SMIC", "a"), 0);
    assert_int_equal(news(&r, 24 * H, "SMIC", "a"), 0);
    /* ... but 12h, 24h and 24h + 1 ms are within one window. */
    assert_int_equal(news(&r, 24 * H + 1, "SMIC", "a"), 1);
    assert_string_equal(str(r.alerts[0], "state.window_start"), iso(T0 + 12 * H));

    run_t q;
    run_init(&q, load(THRESHOLD));
    assert_int_equal(news(&q, 0, "SMIC", "a"), 0);
    assert_int_equal(news(&q, 12 * H, "SMIC", "a"), 0);
    assert_int_equal(news(&q, 24 * H - 1, "SMIC", "a"), 1);
}

/* Events older than the watermark (clock - lateness) are dropped and
 * counted; those within the lateness count where they belong. */
static void late_event(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load(THRESHOLD));
    assert_int_equal(news(&r, 10 * H, "SMIC", "a"), 0);
    assert_int_equal(news(&r, 9 * H, "SMIC", "a"), 0);  /* 1h late: allowed */
    assert_int_equal(news(&r, 7 * H, "SMIC", "a"), 0);  /* 3h late: dropped */
    vg_state_stats_t s;
    vg_state_stats(r.st, &s);
    assert_int_equal(s.late, 1);
    assert_int_equal(s.events, 3);
    assert_int_equal(news(&r, 11 * H, "SMIC", "a"), 1);
    assert_string_equal(str(r.alerts[0], "state.window_start"), iso(T0 + 9 * H));
    /* An event without a time happens at the clock. */
    assert_int_equal(feed(&r, "{\"title\":\"entity list\",\"entities\":[\"X\"]}"), 0);
    vg_state_stats(r.st, &s);
    assert_int_equal(s.untimed, 0);
}

static void untimed_before_any_time(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load(THRESHOLD));
    assert_int_equal(feed(&r, "{\"title\":\"entity list\",\"entities\":[\"X\"]}"), 0);
    vg_state_stats_t s;
    vg_state_stats(r.st, &s);
    assert_int_equal(s.untimed, 1);
}

/* A Kafka timestamp is whatever the producer wrote: one far outside the
 * times vigil handles must not become the clock (windows would overflow,
 * and the checkpoint of that state could never be restored). */
static void absurd_kafka_timestamp_is_no_time(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(THRESHOLD);
    run_t r;
    run_init(&r, rs);
    const char *json = "{\"title\":\"entity list\",\"entities\":[\"X\"]}";
    vg_event_t *ev = NULL;
    char err[256];
    assert_int_equal(vg_decoder_parse(r.dec, json, strlen(json), &ev, err, sizeof(err)),
                     VG_EVENT_OK);
    vg_alert_source_t src = {.topic = "news", .partition = 0, .offset = 1,
                             .timestamp_ms = INT64_MAX - 1};
    for (int i = 0; i < 3; i++)
        assert_int_equal(vg_state_process(r.st, r.sc, ev, &src, keep, &r, err, sizeof(err)), 0);
    vg_event_destroy(ev);
    vg_state_stats_t s;
    vg_state_stats(r.st, &s);
    assert_int_equal(s.untimed, 3);
    char *snap = NULL;
    size_t len = 0;
    assert_int_equal(vg_state_snapshot(r.st, &snap, &len), 0);
    own(free, snap);
    run_t q;
    run_init(&q, rs);
    assert_int_equal(vg_state_restore(q.st, snap, len, NULL, err, sizeof(err)), 0);
}

static void key_eviction_counted(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load("rules:\n"
                      "  - id: pair\n"
                      "    match: {text: {any: [entity list]}}\n"
                      "    threshold: {count: 2, window: 1d, group_by: entities, max_keys: 2}\n"));
    assert_int_equal(news(&r, 0, "A", "s"), 0);
    assert_int_equal(news(&r, 1, "B", "s"), 0);
    assert_int_equal(news(&r, 2, "C", "s"), 0); /* A goes: least recently updated */
    vg_state_stats_t s;
    vg_state_stats(r.st, &s);
    assert_int_equal(s.evicted, 1);
    assert_int_equal(s.keys, 2);
    assert_int_equal(news(&r, 3, "A", "s"), 0); /* counted from scratch; B goes */
    assert_int_equal(news(&r, 4, "C", "s"), 1); /* C was kept */
    assert_string_equal(str(r.alerts[0], "state.group.entities"), "c");
    vg_state_rule_stats(r.st, vg_ruleset_rule(r.rs, 0), &s);
    assert_int_equal(s.evicted, 2);
}

static void spike_with_minimum(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load("rules:\n"
                      "  - id: spike\n"
                      "    match: {text: {any: [entity list]}}\n"
                      "    spike: {factor: 2, min_count: 3, window: 1h, baseline: 2}\n"));
    /* Hour 0: 1 event, hour 1: 1 event, baseline for hour 2 is 1. */
    assert_int_equal(news(&r, 0, "A", "s"), 0);
    assert_int_equal(news(&r, H, "A", "s"), 0);
    assert_int_equal(news(&r, 2 * H, "A", "s"), 0);
    assert_int_equal(news(&r, 2 * H + 1, "A", "s"), 0); /* 2 >= 2 x 1, but under min_count */
    assert_int_equal(news(&r, 2 * H + 2, "A", "s"), 1); /* 3: fires */
    assert_int_equal(news(&r, 2 * H + 3, "A", "s"), 0); /* once per window */
    json_object *a = r.alerts[0];
    assert_int_equal(num(a, "state.count"), 3);
    assert_string_equal(str(a, "state.window_start"), iso(T0 + 2 * H));
    assert_string_equal(str(a, "state.window_end"), iso(T0 + 3 * H));
    assert_true(json_object_get_double(field(a, "state.baseline")) == 1.0);
    /* Hour 3: baseline (1 + 4) / 2 = 2.5; 3 events are not twice that. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(news(&r, 3 * H + i, "A", "s"), 0);
    assert_int_equal(news(&r, 3 * H + 9, "A", "s"), 1); /* 5 >= 5 */
}

static void first_seen_horizon(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load("rules:\n"
                      "  - id: new-name\n"
                      "    match: {text: {any: [entity list]}}\n"
                      "    first_seen: {field: entities, horizon: 1d}\n"));
    assert_int_equal(news(&r, 0, "SMIC", "s"), 1);
    assert_string_equal(str(r.alerts[0], "state.value"), "smic");
    assert_string_equal(str(r.alerts[0], "state.field"), "entities");
    assert_int_equal(news(&r, H, "SMIC", "s"), 0);
    assert_int_equal(news(&r, 2 * H, "YMTC", "s"), 1);
    /* 25h after the last sighting of SMIC (1h): new again. */
    assert_int_equal(news(&r, 25 * H - 1, "SMIC", "s"), 0);
    assert_int_equal(news(&r, 50 * H, "SMIC", "s"), 1);
    vg_state_stats_t s;
    vg_state_stats(r.st, &s);
    assert_int_equal(s.keys, 1); /* YMTC expired with the watermark */
}

static void absence_fires_and_idle_does_not(void **state)
{
    (void)state;
    const char *yaml = "rules:\n"
                       "  - id: quiet\n"
                       "    match: {field: type, eq: news}\n"
                       "    absence: {window: 6h, group_by: source}\n"
                       "    alert: {summary: \"{source} went quiet\"}\n";
    run_t r;
    run_init(&r, load(yaml));
    assert_int_equal(news(&r, 0, "X", "a"), 0);
    assert_int_equal(news(&r, H, "X", "b"), 0);
    assert_int_equal(news(&r, 6 * H - 1, "X", "b"), 0);
    assert_int_equal(news(&r, 6 * H, "X", "b"), 1); /* a: last seen 0, watermark 6h */
    json_object *a = r.alerts[0];
    assert_string_equal(str(a, "state.kind"), "absence");
    assert_string_equal(str(a, "state.group.source"), "a");
    assert_string_equal(str(a, "state.last_seen"), iso(T0));
    assert_string_equal(str(a, "summary"), "a went quiet");
    assert_true(json_object_is_type(field(a, "event"), json_type_null));
    /* Once per silence: more time passing does not repeat it. */
    assert_int_equal(news(&r, 11 * H, "X", "b"), 0);

    /* An idle partition: no events, no watermark, no alert. */
    run_t q;
    run_init(&q, load(yaml));
    assert_int_equal(news(&q, 0, "X", "a"), 0);
    char err[256];
    assert_int_equal(vg_state_flush(q.st, keep, &q, err, sizeof(err)), 0);
    assert_int_equal(q.n, 0);
    /* An operator's idle policy can move time on explicitly. */
    assert_int_equal(vg_state_advance(q.st, T0 + 6 * H, keep, &q, err, sizeof(err)), 1);
}

static void throttle_carries_suppressed(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load("rules:\n"
                      "  - id: loud\n"
                      "    match: {text: {any: [entity list]}}\n"
                      "    throttle: {window: 1h, group_by: entities}\n"));
    int64_t m = 60000;
    assert_int_equal(news(&r, 0, "A", "s"), 1);
    assert_int_equal(news(&r, 10 * m, "A", "s"), 0);
    assert_int_equal(news(&r, 20 * m, "B", "s"), 1);
    assert_int_equal(news(&r, 59 * m, "A", "s"), 0);
    assert_int_equal(news(&r, 60 * m, "A", "s"), 1);
    assert_int_equal(num(r.alerts[0], "state.suppressed"), 0);
    assert_int_equal(num(r.alerts[2], "state.suppressed"), 2);
    assert_string_equal(str(r.alerts[2], "state.kind"), "throttle");
    vg_state_stats_t s;
    vg_state_stats(r.st, &s);
    assert_int_equal(s.suppressed, 2);
}

static void digest_per_window(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load("rules:\n"
                      "  - id: daily\n"
                      "    match: {text: {any: [entity list]}}\n"
                      "    digest: {window: 1d, max_items: 2}\n"));
    assert_int_equal(news(&r, 0, "A", "s"), 0);
    assert_int_equal(news(&r, H, "B", "s"), 0);
    assert_int_equal(news(&r, 2 * H, "C", "s"), 0);
    assert_int_equal(news(&r, 24 * H, "D", "s"), 1);
    json_object *a = r.alerts[0];
    assert_string_equal(str(a, "state.kind"), "digest");
    assert_int_equal(num(a, "state.count"), 3);
    assert_int_equal(json_object_array_length(field(a, "state.items")), 2);
    assert_int_equal(num(a, "state.items_dropped"), 1);
    assert_string_equal(str(a, "state.window_start"), iso(T0));
    assert_string_equal(str(a, "state.window_end"), iso(T0 + 24 * H));
    char err[256];
    assert_int_equal(vg_state_flush(r.st, keep, &r, err, sizeof(err)), 1);
    assert_true(json_object_get_boolean(field(r.alerts[1], "state.partial")));
    assert_int_equal(num(r.alerts[1], "state.count"), 1);
}

/* Digest items are copied verbatim into alerts: a re-sealed image whose
 * item is an object followed by more bytes, or is not one line of strict
 * JSON, is refused. */
static void restore_rejects_digest_item_with_trailing_bytes(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load("rules:\n"
                            "  - id: daily\n"
                            "    match: {text: {any: [entity list]}}\n"
                            "    digest: {window: 1d, max_items: 2}\n");
    run_t r;
    run_init(&r, rs);
    assert_int_equal(news(&r, 0, "A", "s"), 0);
    char *snap = NULL;
    size_t len = 0;
    assert_int_equal(vg_state_snapshot(r.st, &snap, &len), 0);
    own(free, snap);
    /* {"source":{...},"event_time":...} -> {"source":{...}}"event_time":... */
    static const char *const edits[][2] = {{",\"event_time\"", "}\"event_time\""},
                                           {",\"event_time\"", "\n\"event_time\""}};
    for (size_t k = 0; k < 2; k++) {
        char *copy = own(free, malloc(len));
        memcpy(copy, snap, len);
        size_t el = strlen(edits[k][0]);
        char *at = NULL;
        for (size_t i = 0; i + el <= len && !at; i++)
            if (memcmp(copy + i, edits[k][0], el) == 0)
                at = copy + i;
        assert_non_null(at);
        memcpy(at, edits[k][1], el);
        uint64_t sum = vg_hash_finish(vg_hash64(VG_HASH_INIT, copy, len - 8));
        for (int i = 0; i < 8; i++)
            copy[len - 8 + i] = (char)(sum >> (8 * i));
        run_t q;
        run_init(&q, rs);
        char err[256];
        assert_int_equal(vg_state_restore(q.st, copy, len, NULL, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "digest item"));
    }
}

/* A spike entry's window number times the window must stay a time:
 * a re-sealed image with a window number near 2^59 is refused, where it
 * used to overflow (a + ring) * window on the next event. */
static void restore_rejects_spike_window_out_of_range(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load("rules:\n"
                            "  - id: spike\n"
                            "    match: {text: {any: [entity list]}}\n"
                            "    spike: {factor: 2, min_count: 3, window: 1h, baseline: 2}\n");
    run_t r;
    run_init(&r, rs);
    assert_int_equal(news(&r, 0, "A", "s"), 0);
    char *snap = NULL;
    size_t len = 0;
    assert_int_equal(vg_state_snapshot(r.st, &snap, &len), 0);
    own(free, snap);
    char *copy = own(free, malloc(len));
    memcpy(copy, snap, len);
    uint64_t w = (uint64_t)(T0 / H), big = UINT64_C(1) << 59;
    unsigned char wb[8];
    for (int i = 0; i < 8; i++)
        wb[i] = (unsigned char)(w >> (8 * i));
    size_t found = 0;
    for (size_t i = 0; i + 8 <= len - 8; i++)
        if (memcmp(copy + i, wb, 8) == 0) {
            for (int k = 0; k < 8; k++)
                copy[i + (size_t)k] = (char)(big >> (8 * k));
            found++;
        }
    assert_int_equal(found, 1);
    uint64_t sum = vg_hash_finish(vg_hash64(VG_HASH_INIT, copy, len - 8));
    for (int i = 0; i < 8; i++)
        copy[len - 8 + i] = (char)(sum >> (8 * i));
    run_t q;
    run_init(&q, rs);
    char err[256];
    assert_int_equal(vg_state_restore(q.st, copy, len, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "out of range"));
}

/* A mixed ruleset and a reproducible stream with many keys, for replays. */
static const char *MIXED =
    "rules:\n"
    "  - id: m-threshold\n"
    "    match: {field: type, eq: news}\n"
    "    threshold: {count: 3, window: 5h, group_by: entities}\n"
    "    throttle: {window: 10h}\n"
    "    event_time: {lateness: 3h}\n"
    "  - id: m-spike\n"
    "    match: {field: type, eq: news}\n"
    "    spike: {factor: 2, min_count: 2, window: 2h, baseline: 3, group_by: source}\n"
    "  - id: m-first\n"
    "    match: {field: type, eq: news}\n"
    "    first_seen: {field: entities, horizon: 20h, group_by: source, max_keys: 40}\n"
    "  - id: m-absence\n"
    "    match: {field: type, eq: news}\n"
    "    absence: {window: 7h, group_by: source}\n"
    "  - id: m-digest\n"
    "    match: {field: type, eq: news}\n"
    "    digest: {window: 12h, group_by: source}\n";

#define STREAM 400

static const char *stream_event(int i)
{
    static uint32_t seed;
    if (i == 0)
        seed = 12345;
    seed = seed * 1103515245u + 12345u;
    int jitter = (int)((seed >> 8) % 240) - 120; /* minutes out of order */
    int64_t t = T0 + (int64_t)i * 20 * 60000 + (int64_t)jitter * 60000;
    char ent[8], src[8];
    snprintf(ent, sizeof(ent), "E%u", (seed >> 16) % 30);
    snprintf(src, sizeof(src), "s%u", (seed >> 4) % 5 + (i > 200 && (seed & 1) ? 3 : 0));
    return fmt("{\"type\":\"news\",\"published_at\":\"%s\",\"source\":\"%s\",\"title\":\"t%d\","
               "\"entities\":[\"%s\",\"E%d\"]}",
               iso(t), src, i, ent, i % 7);
}

static void run_stream(run_t *r, int from, int to)
{
    for (int i = from; i < to; i++)
        feed(r, stream_event(i));
}

static void assert_same_alerts(const run_t *a, const run_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        assert_string_equal(json_object_to_json_string(a->alerts[i]),
                            json_object_to_json_string(b->alerts[i]));
}

static void replay_gives_same_ids(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(MIXED);
    run_t a, b;
    run_init(&a, rs);
    run_init(&b, rs);
    run_stream(&a, 0, STREAM);
    run_stream(&b, 0, STREAM);
    assert_true(a.n > 20);
    assert_same_alerts(&a, &b);
    /* Every alert id is distinct. */
    for (size_t i = 0; i < a.n; i++)
        for (size_t j = i + 1; j < a.n; j++)
            assert_string_not_equal(str(a.alerts[i], "alert_id"), str(a.alerts[j], "alert_id"));
    /* All kinds occurred, so the comparison covers them. */
    const char *kinds[] = {"threshold", "spike", "first_seen", "absence", "digest"};
    for (size_t k = 0; k < 5; k++) {
        bool seen = false;
        for (size_t i = 0; i < a.n && !seen; i++)
            seen = strcmp(str(a.alerts[i], "state.kind"), kinds[k]) == 0;
        if (!seen)
            fail_msg("no %s alert in the stream", kinds[k]);
    }
}

/* Snapshot after k events, restore into a fresh state, go on: the alerts
 * are exactly those of an uninterrupted run, for every k tried. */
static void snapshot_restore_equals_uninterrupted(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(MIXED);
    run_t whole;
    run_init(&whole, rs);
    run_stream(&whole, 0, STREAM);
    static const int cuts[] = {1, 37, 150, 201, 333, STREAM - 1};
    for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
        size_t mark = g_nowned;
        run_t first;
        run_init(&first, rs);
        run_stream(&first, 0, cuts[c]);
        char *snap = NULL;
        size_t len = 0;
        assert_int_equal(vg_state_snapshot(first.st, &snap, &len), 0);
        own(free, snap);
        run_t second;
        run_init(&second, rs);
        second.line = (uint64_t)cuts[c];
        size_t dropped = 99;
        char err[256];
        assert_int_equal(vg_state_restore(second.st, snap, len, &dropped, err, sizeof(err)), 0);
        assert_int_equal(dropped, 0);
        /* The restored state snapshots to the same bytes. */
        char *again = NULL;
        size_t len2 = 0;
        assert_int_equal(vg_state_snapshot(second.st, &again, &len2), 0);
        own(free, again);
        assert_int_equal(len, len2);
        assert_memory_equal(snap, again, len);
        run_stream(&second, cuts[c], STREAM);
        run_t joined = first;
        for (size_t i = 0; i < second.n; i++)
            joined.alerts[joined.n++] = second.alerts[i];
        assert_same_alerts(&whole, &joined);
        vg_state_stats_t s1, s2;
        vg_state_stats(whole.st, &s1);
        vg_state_stats(second.st, &s2);
        assert_memory_equal(&s1, &s2, sizeof(s1));
        release_to(mark);
    }
}

static void restore_rejects_corruption(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(MIXED);
    run_t r;
    run_init(&r, rs);
    run_stream(&r, 0, 120);
    char *snap = NULL;
    size_t len = 0;
    assert_int_equal(vg_state_snapshot(r.st, &snap, &len), 0);
    own(free, snap);
    run_t q;
    run_init(&q, rs);
    char err[256];
    /* Every single-byte change and every truncation is refused. */
    char *copy = own(free, malloc(len));
    for (size_t i = 0; i < len; i += (i < 64 ? 1 : 97)) {
        memcpy(copy, snap, len);
        copy[i] ^= 0x5a;
        assert_int_equal(vg_state_restore(q.st, copy, len, NULL, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "state snapshot"));
    }
    for (size_t l = 0; l < len; l += 41)
        assert_int_equal(vg_state_restore(q.st, snap, l, NULL, err, sizeof(err)), -1);
    assert_int_equal(vg_state_restore(q.st, "garbage", 7, NULL, err, sizeof(err)), -1);
    vg_state_stats_t s;
    vg_state_stats(q.st, &s);
    assert_int_equal(s.keys, 0); /* refused means empty, never half-restored */
    /* A rule whose settings changed loses its old state, the rest stays. */
    vg_ruleset_t *rs2 = load("rules:\n"
                             "  - id: m-threshold\n"
                             "    match: {field: type, eq: news}\n"
                             "    threshold: {count: 4, window: 5h, group_by: entities}\n"
                             "  - id: m-absence\n"
                             "    match: {field: type, eq: news}\n"
                             "    absence: {window: 7h, group_by: source}\n");
    run_t n;
    run_init(&n, rs2);
    size_t dropped = 0;
    assert_int_equal(vg_state_restore(n.st, snap, len, &dropped, err, sizeof(err)), 0);
    assert_int_equal(dropped, 4);
    vg_state_stats(n.st, &s);
    assert_true(s.keys > 0);
}

/* A reload keeps the windows of unchanged rules: the threshold that had
 * two events fires on the third after the swap. */
static void rebuild_on_reload(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load(THRESHOLD));
    assert_int_equal(news(&r, 0, "SMIC", "a"), 0);
    assert_int_equal(news(&r, H, "SMIC", "a"), 0);
    vg_ruleset_t *rs2 = load("rules:\n"
                             "  - id: surge\n"
                             "    match: {text: {any: [entity list]}}\n"
                             "    threshold: {count: 3, window: 24h, group_by: entities}\n"
                             "    event_time: {lateness: 2h}\n"
                             "  - id: other\n"
                             "    match: {field: type, eq: trade}\n");
    size_t dropped = 9;
    char err[256];
    vg_state_t *n = vg_state_rebuild(r.st, rs2, NULL, &dropped, err, sizeof(err));
    assert_non_null(n);
    own(destroy_state, n);
    assert_int_equal(dropped, 0);
    run_t q;
    run_init(&q, rs2);
    q.st = n;
    assert_int_equal(news(&q, 2 * H, "SMIC", "a"), 1);
    /* Changed settings: the old windows are not applied to the new rule. */
    vg_ruleset_t *rs3 = load("rules:\n"
                             "  - id: surge\n"
                             "    match: {text: {any: [entity list]}}\n"
                             "    threshold: {count: 3, window: 12h, group_by: entities}\n");
    n = vg_state_rebuild(r.st, rs3, NULL, &dropped, err, sizeof(err));
    assert_non_null(n);
    own(destroy_state, n);
    assert_int_equal(dropped, 1);
}

/* Damage that a checksum cannot catch (the image re-sealed after each
 * change): restore either refuses or yields a state that keeps working. */
static void restore_survives_resealed_damage(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(MIXED);
    run_t r;
    run_init(&r, rs);
    run_stream(&r, 0, 150);
    char *snap = NULL;
    size_t len = 0;
    assert_int_equal(vg_state_snapshot(r.st, &snap, &len), 0);
    own(free, snap);
    char *copy = own(free, malloc(len));
    uint32_t seed = 99;
    size_t accepted = 0;
    for (int round = 0; round < 300; round++) {
        memcpy(copy, snap, len);
        for (int k = 0; k < 1 + round % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = 8 + (seed >> 4) % (len - 16);
            copy[at] = (char)(seed >> 24);
        }
        uint64_t sum = vg_hash_finish(vg_hash64(VG_HASH_INIT, copy, len - 8));
        for (int i = 0; i < 8; i++)
            copy[len - 8 + i] = (char)(sum >> (8 * i));
        size_t mark = g_nowned;
        run_t q;
        run_init(&q, rs);
        char err[256];
        q.line = 150;
        if (vg_state_restore(q.st, copy, len, NULL, err, sizeof(err)) == 0) {
            accepted++;
            run_stream(&q, 150, 170); /* must not crash or fail */
        }
        release_to(mark);
    }
    /* Most single-byte damage lands in values, which restore accepts. */
    assert_true(accepted > 0);
}

static void rule_errors(void **state)
{
    (void)state;
    unsigned line, col;
    const char *m = load_error("rules:\n"
                               "  - id: x\n"
                               "    match: {field: type, eq: news}\n"
                               "    threshold: {count: 3, window: 24}\n",
                               &line, &col);
    assert_non_null(strstr(m, "no unit"));
    assert_int_equal(line, 4);
    assert_int_equal(col, 35);
    m = load_error("rules:\n"
                   "  - id: x\n"
                   "    match: {field: type, eq: news}\n"
                   "    threshold: {count: 3, window: 1d}\n"
                   "    spike: {factor: 3, min_count: 2, window: 1d}\n",
                   &line, NULL);
    assert_non_null(strstr(m, "one of threshold, spike"));
    assert_int_equal(line, 5);
    m = load_error("rules:\n"
                   "  - id: x\n"
                   "    match: {field: type, eq: news}\n"
                   "    threshold: {count: 3, windw: 1d}\n",
                   NULL, NULL);
    assert_non_null(strstr(m, "did you mean 'window'"));
    m = load_error("rules:\n"
                   "  - id: x\n"
                   "    match: {field: type, eq: news}\n"
                   "    first_seen: {field: entities, horizon: 3 days}\n",
                   NULL, NULL);
    assert_non_null(strstr(m, "not a duration"));
    m = load_error("rules:\n"
                   "  - id: x\n"
                   "    match: {field: type, eq: news}\n"
                   "    threshold: {count: 3, window: 1d}\n"
                   "    digest: {window: 1d}\n",
                   NULL, NULL);
    assert_non_null(strstr(m, "'digest' collects"));
    m = load_error("rules:\n"
                   "  - id: x\n"
                   "    match: {field: type, eq: news}\n"
                   "    tests: {sequences: [{events: [{a: 1}], expect: []}]}\n",
                   NULL, NULL);
    assert_non_null(strstr(m, "'sequences' test stateful rules"));
    m = load_error("rules:\n"
                   "  - id: x\n"
                   "    match: {field: type, eq: news}\n"
                   "    spike: {factor: 0.5, min_count: 2, window: 1h}\n",
                   NULL, NULL);
    assert_non_null(strstr(m, "at least 1"));
}

static void time_formats(void **state)
{
    (void)state;
    int64_t ms;
    assert_true(vg_state_parse_time("2024-01-01T00:00:00Z", 20, &ms));
    assert_int_equal(ms, T0);
    assert_true(vg_state_parse_time("2024-01-01T02:30:00.250+02:30", 29, &ms));
    assert_int_equal(ms, T0 + 250);
    assert_true(vg_state_parse_time("2024-01-01", 10, &ms));
    assert_int_equal(ms, T0);
    assert_true(vg_state_parse_time("1704067200", 10, &ms));
    assert_int_equal(ms, T0);
    assert_true(vg_state_parse_time("1704067200123", 13, &ms));
    assert_int_equal(ms, T0 + 123);
    assert_false(vg_state_parse_time("2024-13-01", 10, &ms));
    assert_false(vg_state_parse_time("2024-01-01T00:00:00", 19, &ms)); /* no zone */
    assert_false(vg_state_parse_time("yesterday", 9, &ms));
    /* Days that the month does not have are refused, not moved into the
     * next month; 29 February only in a leap year. */
    assert_false(vg_state_parse_time("2023-02-29", 10, &ms));
    assert_false(vg_state_parse_time("2023-04-31T00:00:00Z", 20, &ms));
    assert_false(vg_state_parse_time("1900-02-29", 10, &ms));
    assert_true(vg_state_parse_time("2000-02-29", 10, &ms));
    assert_true(vg_state_parse_time("2024-02-29T00:00:00Z", 20, &ms));
    assert_int_equal(ms, T0 + (int64_t)59 * 86400000);
    assert_true(vg_state_parse_time("2023-12-31T23:59:59.999Z", 24, &ms));
    assert_int_equal(ms, T0 - 1);
    /* Epoch numbers in the event work too, seconds or milliseconds. */
    run_t r;
    run_init(&r, load(THRESHOLD));
    for (int i = 0; i < 2; i++)
        assert_int_equal(feed(&r, fmt("{\"published_at\":%lld,\"title\":\"entity list\","
                                      "\"entities\":[\"A\"]}",
                                      (long long)(T0 / 1000 + i))),
                         0);
    assert_int_equal(feed(&r, fmt("{\"published_at\":%lld,\"title\":\"entity list\","
                                  "\"entities\":[\"A\"]}",
                                  (long long)(T0 + 5000))),
                     1);
}

static void group_by_two_fields_and_arrays(void **state)
{
    (void)state;
    run_t r;
    run_init(&r, load("rules:\n"
                      "  - id: pair\n"
                      "    match: {field: type, eq: news}\n"
                      "    threshold: {count: 2, window: 1d, group_by: [source, entities]}\n"));
    assert_int_equal(feed(&r, fmt("{\"type\":\"news\",\"published_at\":\"%s\",\"source\":\"A\","
                                  "\"entities\":[\"X\",\"Y\",\"X\"]}",
                                  iso(T0))),
                     0);
    assert_int_equal(feed(&r, fmt("{\"type\":\"news\",\"published_at\":\"%s\",\"source\":\"a\","
                                  "\"entities\":[\"y\",\"x\"]}",
                                  iso(T0 + 1))),
                     2);
    assert_string_equal(str(r.alerts[0], "state.group.source"), "a");
    assert_string_equal(str(r.alerts[0], "state.group.entities"), "y");
    assert_string_equal(str(r.alerts[1], "state.group.entities"), "x");
    /* An event without the group field counts for nothing. */
    assert_int_equal(feed(&r, fmt("{\"type\":\"news\",\"published_at\":\"%s\"}", iso(T0 + 2))),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(threshold_exactly_n, cleanup),
        cmocka_unit_test_teardown(threshold_n_minus_one, cleanup),
        cmocka_unit_test_teardown(threshold_window_boundary, cleanup),
        cmocka_unit_test_teardown(late_event, cleanup),
        cmocka_unit_test_teardown(untimed_before_any_time, cleanup),
        cmocka_unit_test_teardown(absurd_kafka_timestamp_is_no_time, cleanup),
        cmocka_unit_test_teardown(key_eviction_counted, cleanup),
        cmocka_unit_test_teardown(spike_with_minimum, cleanup),
        cmocka_unit_test_teardown(first_seen_horizon, cleanup),
        cmocka_unit_test_teardown(absence_fires_and_idle_does_not, cleanup),
        cmocka_unit_test_teardown(throttle_carries_suppressed, cleanup),
        cmocka_unit_test_teardown(digest_per_window, cleanup),
        cmocka_unit_test_teardown(restore_rejects_digest_item_with_trailing_bytes, cleanup),
        cmocka_unit_test_teardown(restore_rejects_spike_window_out_of_range, cleanup),
        cmocka_unit_test_teardown(replay_gives_same_ids, cleanup),
        cmocka_unit_test_teardown(snapshot_restore_equals_uninterrupted, cleanup),
        cmocka_unit_test_teardown(restore_rejects_corruption, cleanup),
        cmocka_unit_test_teardown(rebuild_on_reload, cleanup),
        cmocka_unit_test_teardown(restore_survives_resealed_damage, cleanup),
        cmocka_unit_test_teardown(rule_errors, cleanup),
        cmocka_unit_test_teardown(time_formats, cleanup),
        cmocka_unit_test_teardown(group_by_two_fields_and_arrays, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
