/* Fuzz target: message bytes -> event decoder -> evaluation against a
 * fixed ruleset (the *.yaml files in rules/ of this repository, compiled once) -> alert
 * rendering, as `vigil run` does with each Kafka message.
 *
 * Invariants: a refused message has a status name and a one-line reason;
 * evaluation never fails internally; each alert is exactly one line of
 * strict, valid-UTF-8 JSON: an object whose "rule" is the matched rule's
 * id and whose "event" reads back as the message itself (as decoded, when
 * the message is not I-JSON). Every rule's condition is
 * also explained for one rule per input (chosen by the input's size).
 *
 * The rules: fuzz_engine() (fuzz_engine.c). */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "vigil/alert.h"

/* An event that is not I-JSON is written as decoded: the alert's event
 * is the decoded tree, a number beyond the range of a double being the
 * string of its text. */
static bool is_decoded(json_object *got, json_object *tree)
{
    json_type t = json_object_get_type(tree);
    if (t == json_type_double && !isfinite(json_object_get_double(tree)))
        return json_object_is_type(got, json_type_string) &&
               strcmp(json_object_get_string(got), json_object_to_json_string(tree)) == 0;
    if (t != json_type_object && t != json_type_array)
        return json_object_equal(got, tree);
    if (!json_object_is_type(got, t))
        return false;
    if (t == json_type_array) {
        size_t n = json_object_array_length(tree);
        bool same = json_object_array_length(got) == n;
        for (size_t i = 0; same && i < n; i++)
            same =
                is_decoded(json_object_array_get_idx(got, i), json_object_array_get_idx(tree, i));
        return same;
    }
    if (json_object_object_length(got) != json_object_object_length(tree))
        return false;
    json_object_object_foreach(tree, k, v)
    {
        json_object *g;
        if (!json_object_object_get_ex(got, k, &g) || !is_decoded(g, v))
            return false;
    }
    return true;
}

static void check_alert(const char *a, size_t len, const vg_rule_t *r, const vg_event_t *ev)
{
    if (strlen(a) != len)
        fuzz_fail("alert length %zu but strlen %zu", len, strlen(a));
    json_object *o = fuzz_alert_object(a, len, vg_rule_id(r), "alert");
    /* The alert carries the message as it came (white space aside): its
     * "event" reads back as the message does with the same JSON parser.
     * (Not compared with vg_event_json(): the decoder drops keys holding
     * \u0000, which json-c would cut short.) */
    json_tokener *tok = fuzz_engine()->tok;
    size_t rawlen;
    const char *raw = vg_event_raw(ev, &rawlen);
    json_tokener_reset(tok);
    json_object *msg = json_tokener_parse_ex(tok, raw, (int)rawlen);
    json_object *event = json_object_object_get(o, "event");
    if (!vg_event_is_ijson(ev)) {
        if (!event || !is_decoded(event, vg_event_json(ev)))
            fuzz_fail(
                "the alert's event is not the decoded message:\n  decoded: %s\n  in alert: %s",
                json_object_to_json_string(vg_event_json(ev)),
                event ? json_object_to_json_string(event) : "(none)");
    } else if (msg && (!event || !json_object_equal(event, msg)))
        fuzz_fail("the alert's event differs from the message:\n  message: %s\n  in alert: %s",
                  json_object_to_json_string(msg),
                  event ? json_object_to_json_string(event) : "(none)");
    json_object_put(msg);
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_engine_t *e = fuzz_engine();
    const char *buf = (const char *)data;
    char err[512];
    err[0] = '\0';
    vg_event_t *ev = NULL;
    vg_event_status_t st = vg_decoder_parse(e->decoder, buf, size, &ev, err, sizeof(err));
    if (st != VG_EVENT_OK) {
        if (ev)
            fuzz_fail("a refused message gave an event");
        if (!vg_event_status_name(st) || !err[0] || strchr(err, '\n'))
            fuzz_fail("refused (%d) without a one-line reason: '%s'", (int)st, err);
        return 0;
    }
    int n = vg_scanner_eval(e->scanner, ev, err, sizeof(err));
    if (n < 0)
        fuzz_fail("evaluation failed: %s", err);
    vg_alert_source_t kafka = {
        .topic = "news", .partition = 3, .offset = (int64_t)size, .timestamp_ms = 1700000000000};
    vg_alert_source_t file = {.file = "events.jsonl", .line = 7};
    for (int i = 0; i < n; i++) {
        const vg_rule_t *r = vg_scanner_match(e->scanner, (size_t)i);
        if (!r)
            fuzz_fail("match %d of %d is NULL", i, n);
        size_t len = 0;
        char *a = vg_alert_render(e->scanner, ev, (size_t)i, (size & 1) ? &file : &kafka,
                                  (size & 2) ? NULL : "published_at", &len);
        if (!a)
            fuzz_fail("rendering alert %d failed", i);
        check_alert(a, len, r, ev);
        free(a);
    }
    size_t nr = vg_ruleset_rule_count(e->rules);
    if (nr) {
        const vg_rule_t *r = vg_ruleset_rule(e->rules, size % nr);
        if (vg_scanner_eval_rule(e->scanner, ev, r, err, sizeof(err)) < 0)
            fuzz_fail("rule %s: evaluation failed: %s", vg_rule_id(r), err);
        free(vg_scanner_explain(e->scanner, ev, r));
    }
    vg_event_destroy(ev);
    return 0;
}
