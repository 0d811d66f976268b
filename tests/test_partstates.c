/* The per-partition states of a consumer: a crash between a checkpoint
 * and the commit, then a resume as the plan says, gives exactly the
 * alerts (stateful and stateless) of a run without the crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test_support.h"
#include "vigil/partstates.h"
#include "vigil/ruleset.h"

#define T0 (INT64_C(1704067200)) /* 2024-01-01T00:00:00Z, seconds */

static void destroy_ruleset(void *p) { vg_ruleset_destroy(p); }
static void destroy_ps(void *p) { vg_partstates_destroy(p); }
static void destroy_diags(void *p) { vg_diags_destroy(p); }

static const char *RULES = "rules:\n"
                           "  - id: surge\n"
                           "    match: {text: {any: [entity list]}}\n"
                           "    threshold: {count: 3, window: 1h, group_by: entities}\n"
                           "  - id: plain\n"
                           "    match: {text: {any: [entity list]}}\n";

static vg_ruleset_t *load(const char *yaml)
{
    vg_diags_t *d = own(destroy_diags, vg_diags_new());
    vg_rule_source_t src = {"p.yaml", yaml, strlen(yaml)};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, NULL, d);
    assert_non_null(rs);
    return own(destroy_ruleset, rs);
}

/* What a consumer sent: stateful alert ids, and the offsets whose
 * stateless alerts it sent, per partition. */
typedef struct sent {
    char ids[128][33];
    size_t n;
    int stateless[2][64];
} sent_t;

static int keep(void *ctx, const vg_state_alert_t *a)
{
    sent_t *s = ctx;
    json_object *o = json_tokener_parse(a->json);
    json_object *id;
    assert_true(json_object_object_get_ex(o, "alert_id", &id));
    assert_true(s->n < 128);
    snprintf(s->ids[s->n++], 33, "%s", json_object_get_string(id));
    json_object_put(o);
    return 0;
}

/* Message `offset` of partition `part`: entity E(offset % 2), 5 minutes apart. */
static void consume(vg_partstates_t *ps, sent_t *s, int32_t part, int64_t offset)
{
    char ts[32];
    time_t t = (time_t)(T0 + offset * 300 + part * 7);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *json = fmt("{\"published_at\":\"%s\",\"title\":\"entity list\","
                           "\"entities\":[\"E%d\"]}",
                           ts, (int)(offset % 2));
    vg_alert_source_t src = {.topic = "news", .partition = part, .offset = offset,
                             .timestamp_ms = -1};
    bool stateless = false;
    char err[256];
    assert_true(vg_partstates_process(ps, &src, json, strlen(json), keep, s, &stateless, err,
                                      sizeof(err)) >= 0);
    if (stateless)
        s->stateless[part][offset]++;
}

static void crash_between_checkpoint_and_commit(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(RULES);
    sent_t whole = {0};
    vg_partstates_t *a = own(destroy_ps, vg_partstates_new(rs, NULL));
    assert_true(vg_partstates_enabled(a));
    for (int64_t o = 0; o < 40; o++)
        for (int32_t p = 0; p < 2; p++)
            consume(a, &whole, p, o);
    assert_true(whole.n >= 8);

    /* The same until offset 17, with checkpoints at 18; committed 15 and 18. */
    sent_t first = {0};
    vg_partstates_options_t opt = {.checkpoint_events = 1000000, .checkpoint_interval_s = 1e9};
    vg_partstates_t *b = own(destroy_ps, vg_partstates_new(rs, &opt));
    for (int64_t o = 0; o < 18; o++)
        for (int32_t p = 0; p < 2; p++)
            consume(b, &first, p, o);
    char *v[2];
    size_t len[2];
    int64_t next;
    for (int32_t p = 0; p < 2; p++) {
        char *x;
        size_t xl;
        assert_int_equal(vg_partstates_checkpoint(b, "news", p, false, &x, &xl, &next), 0);
        assert_int_equal(vg_partstates_checkpoint(b, "news", p, true, &v[p], &len[p], &next), 1);
        own(free, v[p]);
        assert_int_equal(next, 18);
        /* Nothing new since: no second checkpoint even when forced. */
        assert_int_equal(vg_partstates_checkpoint(b, "news", p, true, &x, &xl, &next), 0);
    }
    /* Crash. A new consumer gets both partitions back. */
    vg_partstates_t *c = own(destroy_ps, vg_partstates_new(rs, NULL));
    sent_t second = {0};
    const int64_t committed[2] = {15, 18};
    for (int32_t p = 0; p < 2; p++) {
        vg_resume_plan_t plan;
        char err[256];
        assert_int_equal(vg_partstates_assign(c, "news", p, committed[p], v[p], len[p], &plan, err,
                                              sizeof(err)),
                         0);
        assert_int_equal(plan.start, committed[p]);
        assert_int_equal(plan.state_from, 18);
        assert_int_equal(plan.emit_from, committed[p]);
    }
    for (int64_t o = 15; o < 40; o++)
        for (int32_t p = 0; p < 2; p++)
            if (o >= committed[p])
                consume(c, &second, p, o);
    /* Stateful alerts: each exactly once, same ids, same order. */
    assert_int_equal(first.n + second.n, whole.n);
    for (size_t i = 0; i < first.n; i++)
        assert_string_equal(first.ids[i], whole.ids[i]);
    for (size_t i = 0; i < second.n; i++)
        assert_string_equal(second.ids[i], whole.ids[first.n + i]);
    /* Stateless alerts: none lost (15..17 of partition 0 repeat, as
     * at-least-once allows). */
    for (int32_t p = 0; p < 2; p++)
        for (int o = 0; o < 40; o++)
            assert_true(first.stateless[p][o] + second.stateless[p][o] >= 1);
    assert_int_equal(second.stateless[0][15], 1);
    assert_int_equal(second.stateless[1][15], 0);
}

/* A checkpoint behind the committed offset: the state catches up without
 * sending anything twice. */
static void checkpoint_behind_commit(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(RULES);
    sent_t whole = {0};
    vg_partstates_t *a = own(destroy_ps, vg_partstates_new(rs, NULL));
    for (int64_t o = 0; o < 30; o++)
        consume(a, &whole, 0, o);
    sent_t first = {0};
    vg_partstates_t *b = own(destroy_ps, vg_partstates_new(rs, NULL));
    char *v = NULL;
    size_t len = 0;
    int64_t next = -1;
    for (int64_t o = 0; o < 20; o++) {
        consume(b, &first, 0, o);
        if (o == 9)
            assert_int_equal(vg_partstates_checkpoint(b, "news", 0, true, &v, &len, &next), 1);
    }
    own(free, v);
    assert_int_equal(next, 10);
    vg_partstates_t *c = own(destroy_ps, vg_partstates_new(rs, NULL));
    sent_t second = {0};
    vg_resume_plan_t plan;
    char err[256];
    assert_int_equal(
        vg_partstates_assign(c, "news", 0, 20, v, len, &plan, err, sizeof(err)), 0);
    assert_int_equal(plan.start, 10);
    for (int64_t o = plan.start; o < 30; o++)
        consume(c, &second, 0, o);
    assert_int_equal(first.n + second.n, whole.n);
    for (size_t i = 0; i < second.n; i++)
        assert_string_equal(second.ids[i], whole.ids[first.n + i]);
    for (int o = 10; o < 20; o++)
        assert_int_equal(second.stateless[0][o], 0);
}

static void corrupt_checkpoint_starts_empty(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(RULES);
    vg_partstates_t *c = own(destroy_ps, vg_partstates_new(rs, NULL));
    vg_resume_plan_t plan;
    char err[256];
    assert_int_equal(vg_partstates_assign(c, "news", 0, 12, "VGCPjunkjunkjunkjunk", 20, &plan, err,
                                          sizeof(err)),
                     -1);
    assert_true(strlen(err) > 0);
    assert_int_equal(plan.start, 12);
    assert_int_equal(plan.state_from, 0);
    assert_non_null(vg_partstates_state(c, "news", 0));
}

static void checkpoint_after_n_events_and_reload(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(RULES);
    vg_partstates_options_t opt = {.checkpoint_events = 5, .checkpoint_interval_s = 1e9};
    vg_partstates_t *ps = own(destroy_ps, vg_partstates_new(rs, &opt));
    sent_t s = {0};
    int due = 0;
    for (int64_t o = 0; o < 13; o++) { /* E0 at 12 is left counting */
        consume(ps, &s, 0, o);
        char *v;
        size_t len;
        int64_t next;
        if (vg_partstates_checkpoint(ps, "news", 0, false, &v, &len, &next) == 1) {
            due++;
            assert_int_equal(next, o + 1);
            free(v);
        }
    }
    assert_int_equal(due, 2);
    /* A reload that changes only the plain rule keeps the windows. */
    vg_ruleset_t *rs2 = load("rules:\n"
                             "  - id: surge\n"
                             "    match: {text: {any: [entity list]}}\n"
                             "    threshold: {count: 3, window: 1h, group_by: entities}\n");
    size_t dropped = 7;
    char err[256];
    assert_int_equal(vg_partstates_set_ruleset(ps, rs2, &dropped, err, sizeof(err)), 0);
    assert_int_equal(dropped, 0);
    vg_state_stats_t st;
    vg_state_stats(vg_partstates_state(ps, "news", 0), &st);
    assert_true(st.keys > 0);
    /* Without stateful rules nothing is needed. */
    vg_ruleset_t *plain = load("rules:\n  - id: p\n    match: {field: a, eq: b}\n");
    vg_partstates_t *none = own(destroy_ps, vg_partstates_new(plain, NULL));
    assert_false(vg_partstates_enabled(none));
}

/* Exactly-once: a transaction aborts after the state counted its events;
 * rolling back to the last committed checkpoint and reading again gives
 * the alerts of a run without the abort (the aborted ones are never seen
 * by read_committed consumers). */
static void rollback_after_abort(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(RULES);
    sent_t whole = {0};
    vg_partstates_t *a = own(destroy_ps, vg_partstates_new(rs, NULL));
    for (int64_t o = 0; o < 30; o++)
        consume(a, &whole, 0, o);

    vg_partstates_t *ps = own(destroy_ps, vg_partstates_new(rs, NULL));
    sent_t committed = {0}, aborted = {0};
    char *v;
    size_t len;
    int64_t next;
    for (int64_t o = 0; o < 10; o++) /* transaction 1: commits */
        consume(ps, &committed, 0, o);
    assert_int_equal(vg_partstates_checkpoint(ps, "news", 0, true, &v, &len, &next), 1);
    free(v);
    vg_partstates_confirm(ps, "news", 0, next);
    for (int64_t o = 10; o < 17; o++) /* transaction 2: aborts */
        consume(ps, &aborted, 0, o);
    assert_true(aborted.n > 0);
    assert_int_equal(vg_partstates_checkpoint(ps, "news", 0, true, &v, &len, &next), 1);
    free(v); /* produced into the aborted transaction, never confirmed */
    vg_resume_plan_t plan;
    char err[256];
    assert_int_equal(vg_partstates_rollback(ps, "news", 0, 10, &plan, err, sizeof(err)), 0);
    assert_int_equal(plan.start, 10);
    assert_int_equal(plan.state_from, 10);
    for (int64_t o = plan.start; o < 30; o++) /* transaction 3 and on */
        consume(ps, &committed, 0, o);
    assert_int_equal(committed.n, whole.n);
    for (size_t i = 0; i < whole.n; i++)
        assert_string_equal(committed.ids[i], whole.ids[i]);
    /* A second rollback still finds the confirmed checkpoint. */
    assert_int_equal(vg_partstates_rollback(ps, "news", 0, 10, &plan, err, sizeof(err)), 0);
    assert_int_equal(plan.state_from, 10);
}

/* Exactly-once after a restart: the checkpoint the partition was
 * assigned with is the durable one, so an abort in the first transaction
 * goes back to it, not to empty windows. */
static void rollback_to_loaded_checkpoint(void **state)
{
    (void)state;
    vg_ruleset_t *rs = load(RULES);
    sent_t whole = {0};
    vg_partstates_t *a = own(destroy_ps, vg_partstates_new(rs, NULL));
    for (int64_t o = 0; o < 30; o++)
        consume(a, &whole, 0, o);

    /* The first run: 10 events, a committed checkpoint. */
    vg_partstates_t *first = own(destroy_ps, vg_partstates_new(rs, NULL));
    sent_t sent = {0}, aborted = {0};
    char *v;
    size_t len;
    int64_t next;
    for (int64_t o = 0; o < 10; o++)
        consume(first, &sent, 0, o);
    assert_int_equal(vg_partstates_checkpoint(first, "news", 0, true, &v, &len, &next), 1);
    own(free, v);

    /* The restart: assigned with it, then its first transaction aborts. */
    vg_partstates_t *ps = own(destroy_ps, vg_partstates_new(rs, NULL));
    vg_resume_plan_t plan;
    char err[256];
    assert_int_equal(vg_partstates_assign(ps, "news", 0, 10, v, len, &plan, err, sizeof(err)), 0);
    for (int64_t o = 10; o < 17; o++)
        consume(ps, &aborted, 0, o);
    assert_true(aborted.n > 0);
    assert_int_equal(vg_partstates_rollback(ps, "news", 0, 10, &plan, err, sizeof(err)), 0);
    assert_int_equal(plan.start, 10);
    assert_int_equal(plan.state_from, 10);
    for (int64_t o = plan.start; o < 30; o++)
        consume(ps, &sent, 0, o);
    assert_int_equal(sent.n, whole.n);
    for (size_t i = 0; i < whole.n; i++)
        assert_string_equal(sent.ids[i], whole.ids[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(crash_between_checkpoint_and_commit, cleanup),
        cmocka_unit_test_teardown(checkpoint_behind_commit, cleanup),
        cmocka_unit_test_teardown(corrupt_checkpoint_starts_empty, cleanup),
        cmocka_unit_test_teardown(checkpoint_after_n_events_and_reload, cleanup),
        cmocka_unit_test_teardown(rollback_after_abort, cleanup),
        cmocka_unit_test_teardown(rollback_to_loaded_checkpoint, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
