/* Stateful rules: every window edge, eviction, the output stages,
 * determinism of alert ids, and snapshot/restore equal to an
 * uninterrupted run.
 *
 * Most cases are rows of a table (scenarios[]): a rule file and steps run
 * in order on one partition's state: events, each with the number of
 * alerts it must raise, and checks of the alerts' fields and of the
 * state's counters. Rule errors and time formats are tables too. What
 * needs code of its own (snapshots, restores of damaged images, reloads)
 * stays a function. Every event reaches the state through process(). */
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
#include "vigil/workpool.h"

#define H (INT64_C(3600000))
#define M (INT64_C(60000))
#define T0 (INT64_C(1704067200000)) /* 2024-01-01T00:00:00Z */

static void destroy_ruleset(void *p)
{
    vg_ruleset_destroy(p);
}
static void destroy_scanner(void *p)
{
    vg_scanner_destroy(p);
}
static void destroy_state(void *p)
{
    vg_state_destroy(p);
}
static void destroy_decoder(void *p)
{
    vg_decoder_destroy(p);
}
static void destroy_diags(void *p)
{
    vg_diags_destroy(p);
}

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
    *line = g->line;
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

/* The one place where events reach the state: decodes json and gives it
 * to the state as coming from src; returns how many alerts it raised. */
static int process(run_t *r, const char *json, const vg_alert_source_t *src)
{
    vg_event_t *ev = NULL;
    char err[256];
    assert_int_equal(vg_decoder_parse(r->dec, json, strlen(json), &ev, err, sizeof(err)),
                     VG_EVENT_OK);
    int n = vg_state_process(r->st, r->sc, ev, src, keep, r, err, sizeof(err));
    vg_event_destroy(ev);
    if (n < 0)
        fail_msg("%s", err);
    return n;
}

/* Feeds one event (JSON), the next line of a file, and returns how many
 * alerts it raised. */
static int feed(run_t *r, const char *json)
{
    vg_alert_source_t src = {.file = "in.jsonl", .line = ++r->line, .timestamp_ms = -1};
    return process(r, json, &src);
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

static const char *str(json_object *a, const char *path)
{
    json_object *v = field(a, path);
    assert_non_null(v);
    return json_object_get_string(v);
}

/* The state as a snapshot image, freed by cleanup(). */
static char *snapshot(const run_t *r, size_t *len)
{
    char *snap = NULL;
    assert_int_equal(vg_state_snapshot(r->st, &snap, len), 0);
    return own(free, snap);
}

/* Writes the checksum of a changed image into its last 8 bytes, as a
 * writer would have: damage the checksum cannot catch. */
static void reseal(char *img, size_t len)
{
    uint64_t sum = vg_hash_finish(vg_hash64(VG_HASH_INIT, img, len - 8));
    for (int i = 0; i < 8; i++)
        img[len - 8 + i] = (char)(sum >> (8 * i));
}

/* ---- Scenarios: a rule file and steps, run by run_scenario() ---- */

typedef enum step_kind {
    STEP_END,       /* ends the steps */
    STEP_NEWS,      /* news(at, entity, source) raises `alerts` alerts */
    STEP_EVENT,     /* json raises `alerts`; a %s in it is the time T0 + at */
    STEP_FLUSH,     /* vg_state_flush raises `alerts` */
    STEP_ADVANCE,   /* vg_state_advance to T0 + at raises `alerts` */
    STEP_ALERTS,    /* `alerts` alerts so far */
    STEP_STAT,      /* counter `stat` of the state is `value` */
    STEP_RULE_STAT, /* counter `stat` of rule number `rule` is `value` */
    STEP_STR,       /* field `path` of alert number `alert` is the string text */
    STEP_NUM,       /* ... is the integer value */
    STEP_TIME,      /* ... is the time iso(T0 + at) */
    STEP_REAL,      /* ... is the number real, exactly */
    STEP_TRUE,      /* ... is boolean true */
    STEP_NULL,      /* ... is null or missing */
    STEP_PRESENT,   /* ... is there and not null */
    STEP_LENGTH,    /* ... is an array of `value` items */
} step_kind_t;

typedef struct step {
    step_kind_t kind;
    int64_t at;
    const char *text; /* NEWS: the entity; EVENT: the JSON; STR: the value */
    const char *source;
    int alerts;
    size_t alert, rule;
    const char *path;
    size_t stat; /* offset in vg_state_stats_t */
    int64_t value;
    double real;
} step_t;

/* One step each; the table reads as a sentence per step. */
/* clang-format off */
#define NEWS(ms, entity, src, n) {STEP_NEWS, .at = (ms), .text = (entity), .source = (src), .alerts = (n)}
#define EVENT(json, n)           {STEP_EVENT, .text = (json), .alerts = (n)}
#define EVENT_AT(ms, json, n)    {STEP_EVENT, .at = (ms), .text = (json), .alerts = (n)}
#define FLUSH(n)                 {STEP_FLUSH, .alerts = (n)}
#define ADVANCE(ms, n)           {STEP_ADVANCE, .at = (ms), .alerts = (n)}
#define ALERTS(n)                {STEP_ALERTS, .alerts = (n)}
#define STAT(name, v)            {STEP_STAT, .path = #name, \
                                  .stat = offsetof(vg_state_stats_t, name), .value = (v)}
#define RULE_STAT(r, name, v)    {STEP_RULE_STAT, .rule = (r), .path = #name, \
                                  .stat = offsetof(vg_state_stats_t, name), .value = (v)}
#define STR(i, p, s)             {STEP_STR, .alert = (i), .path = (p), .text = (s)}
#define NUM(i, p, v)             {STEP_NUM, .alert = (i), .path = (p), .value = (v)}
#define TIME(i, p, ms)           {STEP_TIME, .alert = (i), .path = (p), .at = (ms)}
#define REAL(i, p, d)            {STEP_REAL, .alert = (i), .path = (p), .real = (d)}
#define IS_TRUE(i, p)            {STEP_TRUE, .alert = (i), .path = (p)}
#define IS_NULL(i, p)            {STEP_NULL, .alert = (i), .path = (p)}
#define PRESENT(i, p)            {STEP_PRESENT, .alert = (i), .path = (p)}
#define LENGTH(i, p, n)          {STEP_LENGTH, .alert = (i), .path = (p), .value = (n)}
/* clang-format on */

typedef struct scenario {
    const char *name;
    const char *rules; /* a rule file */
    const step_t *steps;
} scenario_t;

#define STEPS(...) ((const step_t[]){__VA_ARGS__, {.kind = STEP_END}})

#define THRESHOLD                                                                                  \
    "rules:\n"                                                                                     \
    "  - id: surge\n"                                                                              \
    "    match: {text: {any: [entity list]}}\n"                                                    \
    "    threshold: {count: 3, window: 24h, group_by: entities}\n"                                 \
    "    event_time: {lateness: 2h}\n"

#define ABSENCE                                                                                    \
    "rules:\n"                                                                                     \
    "  - id: quiet\n"                                                                              \
    "    match: {field: type, eq: news}\n"                                                         \
    "    absence: {window: 6h, group_by: source}\n"                                                \
    "    alert: {summary: \"{source} went quiet\"}\n"

#define SPIKE                                                                                      \
    "rules:\n"                                                                                     \
    "  - id: spike\n"                                                                              \
    "    match: {text: {any: [entity list]}}\n"                                                    \
    "    spike: {factor: 2, min_count: 3, window: 1h, baseline: 2}\n"

#define DIGEST                                                                                     \
    "rules:\n"                                                                                     \
    "  - id: daily\n"                                                                              \
    "    match: {text: {any: [entity list]}}\n"                                                    \
    "    digest: {window: 1d, max_items: 2}\n"

/* An event without a time, matching THRESHOLD. */
#define UNTIMED "{\"title\":\"entity list\",\"entities\":[\"X\"]}"
/* A news event at %s from source A or a, with entities. */
#define PAIR_EVENT(src, ents)                                                                      \
    "{\"type\":\"news\",\"published_at\":\"%s\",\"source\":\"" src "\",\"entities\":" ents "}"
/* An event whose time is an epoch number, seconds or milliseconds. */
#define EPOCH_EVENT(n) "{\"published_at\":" #n ",\"title\":\"entity list\",\"entities\":[\"A\"]}"

static const scenario_t scenarios[] = {
    {"threshold_exactly_n", THRESHOLD,
     STEPS(NEWS(0, "SMIC", "a", 0), NEWS(5 * H, "SMIC", "a", 0), NEWS(9 * H, "YMTC", "a", 0),
           NEWS(10 * H, "SMIC", "a", 1), STR(0, "rule", "surge"), STR(0, "state.kind", "threshold"),
           STR(0, "state.group.entities", "smic"), NUM(0, "state.count", 3),
           TIME(0, "state.window_start", 0), TIME(0, "state.window_end", 10 * H),
           NUM(0, "source.line", 4), PRESENT(0, "event"),
           /* The events that fired are used up: the next two do not fire again. */
           NEWS(11 * H, "SMIC", "a", 0), NEWS(12 * H, "SMIC", "a", 0),
           NEWS(13 * H, "SMIC", "a", 1))},
    {"threshold_n_minus_one", THRESHOLD,
     STEPS(NEWS(0, "SMIC", "a", 0), NEWS(23 * H, "SMIC", "a", 0), NEWS(30 * H, "YMTC", "a", 0),
           ALERTS(0))},
    /* Within a window means less than the window apart: an event exactly
     * one window after the first does not count with it ... */
    {"threshold_window_boundary", THRESHOLD,
     STEPS(NEWS(0, "SMIC", "a", 0), NEWS(12 * H, "SMIC", "a", 0), NEWS(24 * H, "SMIC", "a", 0),
           /* ... but 12h, 24h and 24h + 1 ms are within one window. */
           NEWS(24 * H + 1, "SMIC", "a", 1), TIME(0, "state.window_start", 12 * H))},
    {"threshold_window_just_inside", THRESHOLD,
     STEPS(NEWS(0, "SMIC", "a", 0), NEWS(12 * H, "SMIC", "a", 0),
           NEWS(24 * H - 1, "SMIC", "a", 1))},
    /* Events older than the watermark (clock - lateness) are dropped and
     * counted; those within the lateness count where they belong. */
    {"late_event", THRESHOLD,
     STEPS(NEWS(10 * H, "SMIC", "a", 0), NEWS(9 * H, "SMIC", "a", 0), /* 1h late: allowed */
           NEWS(7 * H, "SMIC", "a", 0),                               /* 3h late: dropped */
           STAT(late, 1), STAT(events, 3), NEWS(11 * H, "SMIC", "a", 1),
           TIME(0, "state.window_start", 9 * H),
           /* An event without a time happens at the clock. */
           EVENT(UNTIMED, 0), STAT(untimed, 0))},
    {"untimed_before_any_time", THRESHOLD, STEPS(EVENT(UNTIMED, 0), STAT(untimed, 1))},
    {"key_eviction_counted",
     "rules:\n"
     "  - id: pair\n"
     "    match: {text: {any: [entity list]}}\n"
     "    threshold: {count: 2, window: 1d, group_by: entities, max_keys: 2}\n",
     STEPS(NEWS(0, "A", "s", 0), NEWS(1, "B", "s", 0),
           NEWS(2, "C", "s", 0), /* A goes: least recently updated */
           STAT(evicted, 1), STAT(keys, 2), NEWS(3, "A", "s", 0), /* counted from scratch; B goes */
           NEWS(4, "C", "s", 1),                                  /* C was kept */
           STR(0, "state.group.entities", "c"), RULE_STAT(0, evicted, 2))},
    {"spike_with_minimum", SPIKE,
     /* Hour 0: 1 event, hour 1: 1 event, baseline for hour 2 is 1. */
     STEPS(NEWS(0, "A", "s", 0), NEWS(H, "A", "s", 0), NEWS(2 * H, "A", "s", 0),
           NEWS(2 * H + 1, "A", "s", 0), /* 2 >= 2 x 1, but under min_count */
           NEWS(2 * H + 2, "A", "s", 1), /* 3: fires */
           NEWS(2 * H + 3, "A", "s", 0), /* once per window */
           NUM(0, "state.count", 3), TIME(0, "state.window_start", 2 * H),
           TIME(0, "state.window_end", 3 * H), REAL(0, "state.baseline", 1.0),
           /* Hour 3: baseline (1 + 4) / 2 = 2.5; 3 events are not twice that. */
           NEWS(3 * H, "A", "s", 0), NEWS(3 * H + 1, "A", "s", 0), NEWS(3 * H + 2, "A", "s", 0),
           NEWS(3 * H + 3, "A", "s", 0), NEWS(3 * H + 9, "A", "s", 1) /* 5 >= 5 */)},
    {"first_seen_horizon",
     "rules:\n"
     "  - id: new-name\n"
     "    match: {text: {any: [entity list]}}\n"
     "    first_seen: {field: entities, horizon: 1d}\n",
     STEPS(NEWS(0, "SMIC", "s", 1), STR(0, "state.value", "smic"),
           STR(0, "state.field", "entities"), NEWS(H, "SMIC", "s", 0), NEWS(2 * H, "YMTC", "s", 1),
           /* 25h after the last sighting of SMIC (1h): new again. */
           NEWS(25 * H - 1, "SMIC", "s", 0), NEWS(50 * H, "SMIC", "s", 1),
           STAT(keys, 1) /* YMTC expired with the watermark */)},
    {"absence_fires", ABSENCE,
     STEPS(NEWS(0, "X", "a", 0), NEWS(H, "X", "b", 0), NEWS(6 * H - 1, "X", "b", 0),
           NEWS(6 * H, "X", "b", 1), /* a: last seen 0, watermark 6h */
           STR(0, "state.kind", "absence"), STR(0, "state.group.source", "a"),
           TIME(0, "state.last_seen", 0), STR(0, "summary", "a went quiet"), IS_NULL(0, "event"),
           /* Once per silence: more time passing does not repeat it. */
           NEWS(11 * H, "X", "b", 0))},
    /* An idle partition: no events, no watermark, no alert. An operator's
     * idle policy can move time on explicitly. */
    {"absence_idle_does_not_fire", ABSENCE,
     STEPS(NEWS(0, "X", "a", 0), FLUSH(0), ALERTS(0), ADVANCE(6 * H, 1))},
    {"throttle_carries_suppressed",
     "rules:\n"
     "  - id: loud\n"
     "    match: {text: {any: [entity list]}}\n"
     "    throttle: {window: 1h, group_by: entities}\n",
     STEPS(NEWS(0, "A", "s", 1), NEWS(10 * M, "A", "s", 0), NEWS(20 * M, "B", "s", 1),
           NEWS(59 * M, "A", "s", 0), NEWS(60 * M, "A", "s", 1), NUM(0, "state.suppressed", 0),
           NUM(2, "state.suppressed", 2), STR(2, "state.kind", "throttle"), STAT(suppressed, 2))},
    {"digest_per_window", DIGEST,
     STEPS(NEWS(0, "A", "s", 0), NEWS(H, "B", "s", 0), NEWS(2 * H, "C", "s", 0),
           NEWS(24 * H, "D", "s", 1), STR(0, "state.kind", "digest"), NUM(0, "state.count", 3),
           LENGTH(0, "state.items", 2), NUM(0, "state.items_dropped", 1),
           TIME(0, "state.window_start", 0), TIME(0, "state.window_end", 24 * H), FLUSH(1),
           IS_TRUE(1, "state.partial"), NUM(1, "state.count", 1))},
    /* Epoch numbers in the event work too, seconds or milliseconds
     * (T0 is 1704067200 s). */
    {"epoch_event_times", THRESHOLD,
     STEPS(EVENT(EPOCH_EVENT(1704067200), 0), EVENT(EPOCH_EVENT(1704067201), 0),
           EVENT(EPOCH_EVENT(1704067205000), 1))},
    {"group_by_two_fields_and_arrays",
     "rules:\n"
     "  - id: pair\n"
     "    match: {field: type, eq: news}\n"
     "    threshold: {count: 2, window: 1d, group_by: [source, entities]}\n",
     STEPS(EVENT_AT(0, PAIR_EVENT("A", "[\"X\",\"Y\",\"X\"]"), 0),
           EVENT_AT(1, PAIR_EVENT("a", "[\"y\",\"x\"]"), 2), STR(0, "state.group.source", "a"),
           STR(0, "state.group.entities", "y"), STR(1, "state.group.entities", "x"),
           /* An event without the group field counts for nothing. */
           EVENT_AT(2, "{\"type\":\"news\",\"published_at\":\"%s\"}", 0))},
};

/* Runs an event step: returns the number of alerts it raised. */
static int run_event_step(run_t *r, const step_t *s)
{
    char err[256];
    int n = 0;
    switch (s->kind) {
    case STEP_NEWS:
        return news(r, s->at, s->text, s->source);
    case STEP_EVENT:
        return feed(r, strstr(s->text, "%s") ? fmt(s->text, iso(T0 + s->at)) : s->text);
    case STEP_FLUSH:
        n = vg_state_flush(r->st, keep, r, err, sizeof(err));
        break;
    case STEP_ADVANCE:
        n = vg_state_advance(r->st, T0 + s->at, keep, r, err, sizeof(err));
        break;
    default:
        fail_msg("step kind %d is not an event", (int)s->kind);
    }
    if (n < 0)
        fail_msg("%s", err);
    return n;
}

/* Checks a counter of the state (STEP_STAT) or of one rule. */
static void check_stat(const run_t *r, size_t i, const step_t *s)
{
    vg_state_stats_t st;
    if (s->kind == STEP_STAT)
        vg_state_stats(r->st, &st);
    else
        assert_true(vg_state_rule_stats(r->st, vg_ruleset_rule(r->rs, s->rule), &st));
    uint64_t got;
    memcpy(&got, (const char *)&st + s->stat, sizeof(got));
    if (got != (uint64_t)s->value)
        fail_msg("step %zu: %s is %llu, not %lld", i, s->path, (unsigned long long)got,
                 (long long)s->value);
}

/* Checks a field of an alert. */
static void check_field(const run_t *r, size_t i, const step_t *s)
{
    if (s->alert >= r->n)
        fail_msg("step %zu: no alert %zu (%zu alerts)", i, s->alert, r->n);
    json_object *a = r->alerts[s->alert];
    json_object *v = field(a, s->path);
    bool ok = false;
    switch (s->kind) {
    case STEP_STR:
        ok = v && strcmp(json_object_get_string(v), s->text) == 0;
        break;
    case STEP_NUM:
        ok = v && json_object_get_int64(v) == s->value;
        break;
    case STEP_TIME:
        ok = v && strcmp(json_object_get_string(v), iso(T0 + s->at)) == 0;
        break;
    case STEP_REAL:
        ok = v && json_object_get_double(v) == s->real;
        break;
    case STEP_TRUE:
        ok = json_object_get_boolean(v);
        break;
    case STEP_NULL:
        ok = json_object_is_type(v, json_type_null);
        break;
    case STEP_PRESENT:
        ok = v != NULL;
        break;
    case STEP_LENGTH:
        ok = v && json_object_array_length(v) == (size_t)s->value;
        break;
    default:
        fail_msg("step kind %d is not a check", (int)s->kind);
    }
    if (!ok)
        fail_msg("step %zu: alert %zu: %s is not as expected: %s", i, s->alert, s->path,
                 json_object_to_json_string(a));
}

static void run_scenario(void **state)
{
    const scenario_t *sc = *state;
    run_t r;
    run_init(&r, load(sc->rules));
    for (size_t i = 0; sc->steps[i].kind != STEP_END; i++) {
        const step_t *s = &sc->steps[i];
        switch (s->kind) {
        case STEP_NEWS:
        case STEP_EVENT:
        case STEP_FLUSH:
        case STEP_ADVANCE: {
            int n = run_event_step(&r, s);
            if (n != s->alerts)
                fail_msg("step %zu: %d alerts, expected %d", i, n, s->alerts);
            break;
        }
        case STEP_ALERTS:
            if (r.n != (size_t)s->alerts)
                fail_msg("step %zu: %zu alerts so far, expected %d", i, r.n, s->alerts);
            break;
        case STEP_STAT:
        case STEP_RULE_STAT:
            check_stat(&r, i, s);
            break;
        default:
            check_field(&r, i, s);
        }
    }
}

/* ---- Rule errors: a rule file and its first error ---- */

static const struct {
    const char *rules;
    const char *message; /* part of the first error */
    unsigned line, col;  /* where it points (0: not checked) */
} rule_errors[] = {
    {"rules:\n"
     "  - id: x\n"
     "    match: {field: type, eq: news}\n"
     "    threshold: {count: 3, window: 24}\n",
     "no unit", 4, 35},
    {"rules:\n"
     "  - id: x\n"
     "    match: {field: type, eq: news}\n"
     "    threshold: {count: 3, window: 1d}\n"
     "    spike: {factor: 3, min_count: 2, window: 1d}\n",
     "one of threshold, spike", 5, 0},
    {"rules:\n"
     "  - id: x\n"
     "    match: {field: type, eq: news}\n"
     "    threshold: {count: 3, windw: 1d}\n",
     "did you mean 'window'", 0, 0},
    {"rules:\n"
     "  - id: x\n"
     "    match: {field: type, eq: news}\n"
     "    first_seen: {field: entities, horizon: 3 days}\n",
     "not a duration", 0, 0},
    {"rules:\n"
     "  - id: x\n"
     "    match: {field: type, eq: news}\n"
     "    threshold: {count: 3, window: 1d}\n"
     "    digest: {window: 1d}\n",
     "'digest' collects", 0, 0},
    {"rules:\n"
     "  - id: x\n"
     "    match: {field: type, eq: news}\n"
     "    tests: {sequences: [{events: [{a: 1}], expect: []}]}\n",
     "'sequences' test stateful rules", 0, 0},
    {"rules:\n"
     "  - id: x\n"
     "    match: {field: type, eq: news}\n"
     "    spike: {factor: 0.5, min_count: 2, window: 1h}\n",
     "at least 1", 0, 0},
};

static void rule_errors_are_reported(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rule_errors) / sizeof(rule_errors[0]); i++) {
        unsigned line, col;
        const char *m = load_error(rule_errors[i].rules, &line, &col);
        if (!strstr(m, rule_errors[i].message))
            fail_msg("rule error %zu: '%s' does not say '%s'", i, m, rule_errors[i].message);
        if ((rule_errors[i].line && line != rule_errors[i].line) ||
            (rule_errors[i].col && col != rule_errors[i].col))
            fail_msg("rule error %zu at %u:%u, expected %u:%u", i, line, col, rule_errors[i].line,
                     rule_errors[i].col);
    }
}

/* ---- Event times: text, whether it is a time, and which ---- */

static const struct {
    const char *text;
    bool ok;
    bool check_ms; /* compare the time with T0 + ms */
    int64_t ms;
} times[] = {
    {"2024-01-01T00:00:00Z", true, true, 0},
    {"2024-01-01T02:30:00.250+02:30", true, true, 250},
    {"2024-01-01", true, true, 0},
    {"1704067200", true, true, 0},
    {"1704067200123", true, true, 123},
    {"2024-13-01", false, false, 0},
    {"2024-01-01T00:00:00", false, false, 0}, /* no zone */
    {"yesterday", false, false, 0},
    /* Days that the month does not have are refused, not moved into the
     * next month; 29 February only in a leap year. */
    {"2023-02-29", false, false, 0},
    {"2023-04-31T00:00:00Z", false, false, 0},
    {"1900-02-29", false, false, 0},
    {"2000-02-29", true, false, 0},
    {"2024-02-29T00:00:00Z", true, true, (int64_t)59 * 86400000},
    {"2023-12-31T23:59:59.999Z", true, true, -1},
};

static void time_formats(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int64_t ms = 0;
        bool ok = vg_state_parse_time(times[i].text, strlen(times[i].text), &ms);
        if (ok != times[i].ok)
            fail_msg("'%s': %s, expected %s", times[i].text, ok ? "a time" : "refused",
                     times[i].ok ? "a time" : "refused");
        if (times[i].check_ms && ms != T0 + times[i].ms)
            fail_msg("'%s': %lld, expected %lld", times[i].text, (long long)ms,
                     (long long)(T0 + times[i].ms));
    }
}

/* ---- Cases with code of their own ---- */

/* A Kafka timestamp is whatever the producer wrote: one far outside the
 * times vigil handles must not become the clock (windows would overflow,
 * and the checkpoint of that state could never be restored). */
static void absurd_kafka_timestamp_is_no_time(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(THRESHOLD);
    run_t r;
    run_init(&r, rs);
    vg_alert_source_t src = {
        .topic = "news", .partition = 0, .offset = 1, .timestamp_ms = INT64_MAX - 1};
    for (int i = 0; i < 3; i++)
        assert_int_equal(process(&r, UNTIMED, &src), 0);
    vg_state_stats_t s;
    vg_state_stats(r.st, &s);
    assert_int_equal(s.untimed, 3);
    size_t len = 0;
    char *snap = snapshot(&r, &len);
    run_t q;
    run_init(&q, rs);
    char err[256];
    assert_int_equal(vg_state_restore(q.st, snap, len, NULL, err, sizeof(err)), 0);
}

/* The snapshot image of a state of rs that has seen one news event. */
static char *one_event_image(const vg_ruleset_t *rs, size_t *len)
{
    run_t r;
    run_init(&r, rs);
    assert_int_equal(news(&r, 0, "A", "s"), 0);
    return snapshot(&r, len);
}

/* Restoring img into a new state of rs is refused, saying why. */
static void assert_restore_refused(const vg_ruleset_t *rs, const char *img, size_t len,
                                   const char *why)
{
    run_t q;
    run_init(&q, rs);
    char err[256];
    assert_int_equal(vg_state_restore(q.st, img, len, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, why));
}

/* Digest items are copied verbatim into alerts: a re-sealed image whose
 * item is an object followed by more bytes, or is not one line of strict
 * JSON, is refused. */
static void restore_rejects_digest_item_with_trailing_bytes(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(DIGEST);
    size_t len = 0;
    char *snap = one_event_image(rs, &len);
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
        reseal(copy, len);
        assert_restore_refused(rs, copy, len, "digest item");
    }
}

/* A spike entry's window number times the window must stay a time:
 * a re-sealed image with a window number near 2^59 is refused, where it
 * used to overflow (a + ring) * window on the next event. */
static void restore_rejects_spike_window_out_of_range(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(SPIKE);
    size_t len = 0;
    char *snap = one_event_image(rs, &len);
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
    reseal(copy, len);
    assert_restore_refused(rs, copy, len, "out of range");
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

/* The snapshot image of a state of rs that has seen the first n events
 * of the stream. */
static char *stream_image(const vg_ruleset_t *rs, int n, size_t *len)
{
    run_t r;
    run_init(&r, rs);
    run_stream(&r, 0, n);
    return snapshot(&r, len);
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

/* One pass per event: a pool with options.stateful evaluates the rules,
 * hands over keys, times and evidence and frees the events; the state
 * step applies them (decoding an event again only to render it). The
 * alerts are exactly those of vg_state_process on the decoded events,
 * for every kind, multi-path keys, first_seen values, digest items and
 * keyword evidence. */
static const char *HANDOVER_EXTRA =
    "  - id: m-words\n"
    "    match: {text: {any: [t1*, e3], fields: [title, entities]}}\n"
    "    threshold: {count: 2, window: 5h, group_by: [entities, source]}\n"
    "    throttle: {window: 3h}\n";

static void pool_handover_equals_process(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(fmt("%s%s", MIXED, HANDOVER_EXTRA));
    run_t a, b;
    run_init(&a, rs);
    run_init(&b, rs);
    run_stream(&a, 0, STREAM);
    vg_workpool_options_t o = {.workers = 2, .batch_size = 16, .stateful = true};
    vg_workpool_t *p = own((free_fn)vg_workpool_destroy, vg_workpool_new(rs, &o));
    assert_non_null(p);
    const char *events[STREAM]; /* made once each: the stream goes on with every call */
    for (int i = 0; i < STREAM; i++)
        events[i] = stream_event(i);
    for (int i = 0; i < STREAM;) {
        vg_batch_t *bt = vg_workpool_acquire(p);
        assert_non_null(bt);
        for (; i < STREAM; i++) {
            const char *ev = events[i];
            vg_alert_source_t src = {.file = "in.jsonl", .line = (uint64_t)i + 1,
                                     .timestamp_ms = -1};
            if (!vg_batch_add_copy(bt, ev, strlen(ev), &src, NULL))
                break;
        }
        vg_workpool_submit(p, bt);
        vg_batch_t *back = vg_workpool_next(p, true);
        assert_ptr_equal(back, bt);
        for (size_t k = 0; k < back->n; k++) {
            const vg_work_item_t *it = &back->items[k];
            vg_state_input_t in;
            char err[256];
            assert_true(vg_state_input_from_item(&in, it));
            assert_null(in.event);
            if (vg_state_apply(b.st, &in, &it->src, keep, &b, err, sizeof(err)) < 0)
                fail_msg("%s", err);
        }
        vg_workpool_release(p, back);
    }
    assert_true(a.n > 20);
    assert_same_alerts(&a, &b);
    size_t with_evidence = 0, words = 0;
    for (size_t i = 0; i < a.n; i++) {
        json_object *m = field(a.alerts[i], "matches");
        with_evidence += m && json_object_array_length(m) > 0;
        words += strcmp(str(a.alerts[i], "rule"), "m-words") == 0 &&
                 strchr(str(a.alerts[i], "state.group.entities"), 'e') != NULL;
    }
    assert_true(with_evidence > 0);
    assert_true(words > 0);
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
        size_t len = 0;
        char *snap = snapshot(&first, &len);
        run_t second;
        run_init(&second, rs);
        second.line = (uint64_t)cuts[c];
        size_t dropped = 99;
        char err[256];
        assert_int_equal(vg_state_restore(second.st, snap, len, &dropped, err, sizeof(err)), 0);
        assert_int_equal(dropped, 0);
        /* The restored state snapshots to the same bytes. */
        size_t len2 = 0;
        char *again = snapshot(&second, &len2);
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
    size_t len = 0;
    char *snap = stream_image(rs, 120, &len);
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
    size_t len = 0;
    char *snap = stream_image(rs, 150, &len);
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
        reseal(copy, len);
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

int main(void)
{
    enum { NS = sizeof(scenarios) / sizeof(scenarios[0]) };
    static const struct CMUnitTest own_code[] = {
        cmocka_unit_test_teardown(rule_errors_are_reported, cleanup),
        cmocka_unit_test_teardown(time_formats, cleanup),
        cmocka_unit_test_teardown(absurd_kafka_timestamp_is_no_time, cleanup),
        cmocka_unit_test_teardown(restore_rejects_digest_item_with_trailing_bytes, cleanup),
        cmocka_unit_test_teardown(restore_rejects_spike_window_out_of_range, cleanup),
        cmocka_unit_test_teardown(replay_gives_same_ids, cleanup),
        cmocka_unit_test_teardown(snapshot_restore_equals_uninterrupted, cleanup),
        cmocka_unit_test_teardown(restore_rejects_corruption, cleanup),
        cmocka_unit_test_teardown(rebuild_on_reload, cleanup),
        cmocka_unit_test_teardown(pool_handover_equals_process, cleanup),
        cmocka_unit_test_teardown(restore_survives_resealed_damage, cleanup),
    };
    enum { NO = sizeof(own_code) / sizeof(own_code[0]) };
    struct CMUnitTest tests[NS + NO];
    /* One test per scenario, named for it. */
    for (size_t i = 0; i < NS; i++)
        tests[i] = (struct CMUnitTest){.name = scenarios[i].name,
                                       .test_func = run_scenario,
                                       .teardown_func = cleanup,
                                       .initial_state = (void *)&scenarios[i]};
    for (size_t i = 0; i < NO; i++)
        tests[NS + i] = own_code[i];
    return _cmocka_run_group_tests("test_state", tests, NS + NO, NULL, NULL);
}
