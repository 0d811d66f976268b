/* Metrics of stateful rules: eviction is visible per rule and partition,
 * a revoked partition's series go away, and so do the rules' series
 * before a reload replaces the rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "test_support.h"
#include "vigil/event.h"
#include "vigil/metrics.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"
#include "vigil/state.h"
#include "vigil/state_metrics.h"

static void destroy_ruleset(void *p) { vg_ruleset_destroy(p); }
static void destroy_scanner(void *p) { vg_scanner_destroy(p); }
static void destroy_state(void *p) { vg_state_destroy(p); }
static void destroy_decoder(void *p) { vg_decoder_destroy(p); }
static void destroy_diags(void *p) { vg_diags_destroy(p); }
static void destroy_metrics(void *p) { vg_metrics_destroy(p); }
static void destroy_sm(void *p) { vg_state_metrics_destroy(p); }

static void eviction_is_visible(void **state)
{
    (void)state;
    const char *yaml = "rules:\n"
                       "  - id: pair\n"
                       "    match: {field: type, eq: news}\n"
                       "    threshold: {count: 2, window: 1d, group_by: source, max_keys: 2}\n";
    vg_diags_t *d = own(destroy_diags, vg_diags_new());
    vg_rule_source_t src = {"m.yaml", yaml, strlen(yaml)};
    vg_ruleset_t *rs = own(destroy_ruleset, vg_ruleset_load_sources(&src, 1, NULL, d));
    assert_non_null(rs);
    vg_scanner_t *sc = own(destroy_scanner, vg_scanner_new(rs));
    vg_decoder_t *dec = own(destroy_decoder, vg_decoder_new(NULL));
    vg_state_t *st = own(destroy_state, vg_state_new(rs, NULL));
    for (int i = 0; i < 5; i++) {
        const char *json = fmt("{\"type\":\"news\",\"published_at\":\"2024-01-01T00:0%d:00Z\","
                               "\"source\":\"s%d\"}",
                               i, i);
        vg_event_t *ev = NULL;
        char err[256];
        assert_int_equal(vg_decoder_parse(dec, json, strlen(json), &ev, err, sizeof(err)),
                         VG_EVENT_OK);
        vg_alert_source_t as = {.topic = "news", .partition = 3, .offset = i, .timestamp_ms = -1};
        assert_int_equal(vg_state_process(st, sc, ev, &as, NULL, NULL, err, sizeof(err)), 0);
        vg_event_destroy(ev);
    }
    vg_metrics_t *m = own(destroy_metrics, vg_metrics_new());
    vg_state_metrics_t *sm = own(destroy_sm, vg_state_metrics_new(m));
    assert_non_null(sm);
    vg_state_metrics_publish(sm, st, "news", 3);
    vg_state_metrics_checkpoint(sm, "news", 3, 1234);
    size_t len;
    char *text = own(free, vg_metrics_render(m, &len));
    assert_non_null(strstr(text, "vigil_state_evicted_keys_total{rule=\"pair\",topic=\"news\","
                                 "partition=\"3\"} 3"));
    assert_non_null(strstr(text, "vigil_state_keys{rule=\"pair\",topic=\"news\","
                                 "partition=\"3\"} 2"));
    assert_non_null(strstr(text, "vigil_state_checkpoint_bytes{topic=\"news\",partition=\"3\"} "
                                 "1234"));
    /* Before a reload: the rules' series go, the checkpoint size stays. */
    vg_state_metrics_forget_rules(sm, st, "news", 3);
    text = own(free, vg_metrics_render(m, &len));
    assert_null(strstr(text, "rule=\"pair\""));
    assert_non_null(strstr(text, "vigil_state_checkpoint_bytes{topic=\"news\",partition=\"3\"} "
                                 "1234"));
    vg_state_metrics_publish(sm, st, "news", 3);
    text = own(free, vg_metrics_render(m, &len));
    assert_non_null(strstr(text, "vigil_state_keys{rule=\"pair\",topic=\"news\","
                                 "partition=\"3\"} 2"));
    vg_state_metrics_forget(sm, st, "news", 3);
    text = own(free, vg_metrics_render(m, &len));
    assert_null(strstr(text, "partition=\"3\""));
    /* Without a registry nothing happens, and nothing fails. */
    assert_null(vg_state_metrics_new(NULL));
    vg_state_metrics_publish(NULL, st, "news", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(eviction_is_visible, cleanup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
