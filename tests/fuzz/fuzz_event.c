/* Fuzz target: message bytes -> event decoder -> evaluation against a
 * fixed ruleset (the *.yaml files in rules/ of this repository, compiled once) -> alert
 * rendering, as `vigil run` does with each Kafka message.
 *
 * Invariants: a refused message has a status name and a one-line reason;
 * evaluation never fails internally; each alert is exactly one line of
 * strict, valid-UTF-8 JSON: an object whose "rule" is the matched rule's
 * id and whose "event" reads back as the message itself. Every rule's condition is
 * also explained for one rule per input (chosen by the input's size).
 *
 * The rules folder is VIGIL_FUZZ_RULES from the environment, else the
 * repository's rules/ (compiled in). */
#include <json-c/json.h>
#include <string.h>

#include "fuzz.h"
#include "vigil/alert.h"
#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"

#ifndef VIGIL_FUZZ_RULES
#define VIGIL_FUZZ_RULES "rules"
#endif

static vg_ruleset_t *g_rs;
static vg_scanner_t *g_sc;
static vg_decoder_t *g_dec;
static json_tokener *g_tok;

static void teardown(void)
{
    json_tokener_free(g_tok);
    vg_decoder_destroy(g_dec);
    vg_scanner_destroy(g_sc);
    vg_ruleset_destroy(g_rs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("VIGIL_FUZZ_RULES");
    if (!dir || !*dir)
        dir = VIGIL_FUZZ_RULES;
    vg_diags_t *d = vg_diags_new();
    g_rs = vg_ruleset_load(&dir, 1, NULL, d);
    if (!g_rs) {
        vg_diags_print(d, stderr);
        fuzz_fail("cannot load the rules in %s (set VIGIL_FUZZ_RULES)", dir);
    }
    vg_diags_destroy(d);
    g_sc = vg_scanner_new(g_rs);
    g_dec = vg_decoder_new(NULL);
    /* The alert wraps the event (<= 64 levels) in two more. */
    g_tok = json_tokener_new_ex(256);
    if (!g_sc || !g_dec || !g_tok)
        fuzz_fail("out of memory");
    json_tokener_set_flags(g_tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    atexit(teardown);
    return 0;
}

static void check_alert(const char *a, size_t len, const vg_rule_t *r, const vg_event_t *ev)
{
    if (strlen(a) != len)
        fuzz_fail("alert length %zu but strlen %zu", len, strlen(a));
    if (memchr(a, '\n', len) || memchr(a, '\r', len))
        fuzz_fail("alert is not one line: %s", a);
    json_tokener_reset(g_tok);
    json_object *o = json_tokener_parse_ex(g_tok, a, (int)len);
    enum json_tokener_error je = json_tokener_get_error(g_tok);
    if (!o || je != json_tokener_success || json_tokener_get_parse_end(g_tok) != len)
        fuzz_fail("alert is not valid JSON (%s at byte %zu): %s", json_tokener_error_desc(je),
                  json_tokener_get_parse_end(g_tok), a);
    if (!json_object_is_type(o, json_type_object))
        fuzz_fail("alert is not an object: %s", a);
    json_object *rule = json_object_object_get(o, "rule");
    if (!rule || strcmp(json_object_get_string(rule), vg_rule_id(r)) != 0)
        fuzz_fail("alert names rule %s, not %s", rule ? json_object_get_string(rule) : "(none)",
                  vg_rule_id(r));
    /* The alert carries the message as it came (white space aside): its
     * "event" reads back as the message does with the same JSON parser.
     * (Not compared with vg_event_json(): the decoder drops keys holding
     * \u0000, which json-c would cut short.) */
    size_t rawlen;
    const char *raw = vg_event_raw(ev, &rawlen);
    json_tokener_reset(g_tok);
    json_object *msg = json_tokener_parse_ex(g_tok, raw, (int)rawlen);
    json_object *event = json_object_object_get(o, "event");
    if (msg && (!event || !json_object_equal(event, msg)))
        fuzz_fail("the alert's event differs from the message:\n  message: %s\n  in alert: %s",
                  json_object_to_json_string(msg),
                  event ? json_object_to_json_string(event) : "(none)");
    json_object_put(msg);
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_rs)
        LLVMFuzzerInitialize(NULL, NULL);
    const char *buf = (const char *)data;
    char err[512];
    err[0] = '\0';
    vg_event_t *ev = NULL;
    vg_event_status_t st = vg_decoder_parse(g_dec, buf, size, &ev, err, sizeof(err));
    if (st != VG_EVENT_OK) {
        if (ev)
            fuzz_fail("a refused message gave an event");
        if (!vg_event_status_name(st) || !err[0] || strchr(err, '\n'))
            fuzz_fail("refused (%d) without a one-line reason: '%s'", (int)st, err);
        return 0;
    }
    int n = vg_scanner_eval(g_sc, ev, err, sizeof(err));
    if (n < 0)
        fuzz_fail("evaluation failed: %s", err);
    vg_alert_source_t kafka = {.topic = "news", .partition = 3, .offset = (int64_t)size,
                               .timestamp_ms = 1700000000000};
    vg_alert_source_t file = {.file = "events.jsonl", .line = 7};
    for (int i = 0; i < n; i++) {
        const vg_rule_t *r = vg_scanner_match(g_sc, (size_t)i);
        if (!r)
            fuzz_fail("match %d of %d is NULL", i, n);
        size_t len = 0;
        char *a = vg_alert_render(g_sc, ev, (size_t)i, (size & 1) ? &file : &kafka,
                                  (size & 2) ? NULL : "published_at", &len);
        if (!a)
            fuzz_fail("rendering alert %d failed", i);
        check_alert(a, len, r, ev);
        free(a);
    }
    size_t nr = vg_ruleset_rule_count(g_rs);
    if (nr) {
        const vg_rule_t *r = vg_ruleset_rule(g_rs, size % nr);
        if (vg_scanner_eval_rule(g_sc, ev, r, err, sizeof(err)) < 0)
            fuzz_fail("rule %s: evaluation failed: %s", vg_rule_id(r), err);
        free(vg_scanner_explain(g_sc, ev, r));
    }
    vg_event_destroy(ev);
    return 0;
}
