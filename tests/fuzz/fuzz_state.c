/* Fuzz target: the stateful rules (threshold, spike, first_seen, absence,
 * throttle, digest; the *.yaml files in rules/, compiled once).
 *
 * An input starting with 'S' is a checkpoint image: the rest is given to
 * vg_state_restore, which must refuse it cleanly or take it whole (and
 * then process an event and snapshot again). Any other input is a stream
 * of JSON lines fed to one state as the events of one partition; then:
 *   - each alert is one line of strict JSON naming a stateful rule;
 *   - snapshot -> restore into a new state -> snapshot gives the same
 *     bytes (the image is a faithful, deterministic copy);
 *   - the restored state and the original, flushed, emit the same alerts
 *     (what makes a restart invisible downstream);
 *   - carrying the state over to the same ruleset (a reload) keeps it.
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
#include "vigil/state.h"

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
    if (!vg_ruleset_has_stateful(g_rs))
        fuzz_fail("the rules in %s have no stateful rule to fuzz", dir);
    g_sc = vg_scanner_new(g_rs);
    g_dec = vg_decoder_new(NULL);
    g_tok = json_tokener_new_ex(256);
    if (!g_sc || !g_dec || !g_tok)
        fuzz_fail("out of memory");
    json_tokener_set_flags(g_tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    atexit(teardown);
    return 0;
}

/* What one state emitted: a running hash of the alerts (rule id, key and
 * the JSON without its "time", which is the wall clock) and a count. */
typedef struct sink {
    uint64_t hash;
    size_t count;
} sink_t;

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

static int on_alert(void *ctx, const vg_state_alert_t *a)
{
    sink_t *s = ctx;
    if (!a->rule || !vg_rule_is_stateful(a->rule))
        fuzz_fail("a state alert for a rule that is not stateful");
    if (!a->key)
        fuzz_fail("a state alert without a key");
    if (memchr(a->json, '\n', a->len))
        fuzz_fail("a state alert is not one line");
    json_tokener_reset(g_tok);
    json_object *o = json_tokener_parse_ex(g_tok, a->json, (int)a->len);
    if (!o || json_tokener_get_error(g_tok) != json_tokener_success ||
        json_tokener_get_parse_end(g_tok) != a->len || !json_object_is_type(o, json_type_object))
        fuzz_fail("a state alert is not a JSON object: %.*s", (int)a->len, a->json);
    json_object *rule = json_object_object_get(o, "rule");
    if (!rule || strcmp(json_object_get_string(rule), vg_rule_id(a->rule)) != 0)
        fuzz_fail("a state alert names another rule: %.*s", (int)a->len, a->json);
    json_object_object_del(o, "time");
    const char *canon = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    s->hash = mix(s->hash, vg_rule_id(a->rule), strlen(vg_rule_id(a->rule)) + 1);
    s->hash = mix(s->hash, a->key, strlen(a->key) + 1);
    s->hash = mix(s->hash, canon, strlen(canon));
    s->count++;
    json_object_put(o);
    return 0;
}

static void restore_bytes(const uint8_t *data, size_t size)
{
    vg_state_t *st = vg_state_new(g_rs, NULL);
    if (!st)
        fuzz_fail("out of memory");
    char err[512] = "";
    size_t dropped = 0;
    int rc = vg_state_restore(st, (const char *)data, size, &dropped, err, sizeof(err));
    if (rc != 0 && rc != -1)
        fuzz_fail("vg_state_restore returned %d", rc);
    if (rc == -1 && !err[0])
        fuzz_fail("a refused image without a reason");
    static const char ev_text[] = "{\"type\":\"news\",\"title\":\"export controls on SMIC\","
                                  "\"entities\":[\"SMIC\"],\"countries\":[\"CN\"],"
                                  "\"published_at\":\"2024-03-01T08:00:00Z\"}";
    vg_event_t *ev = NULL;
    if (vg_decoder_parse(g_dec, ev_text, sizeof(ev_text) - 1, &ev, err, sizeof(err)) != VG_EVENT_OK)
        fuzz_fail("the fixed event does not decode: %s", err);
    vg_alert_source_t src = {.topic = "news", .partition = 0, .offset = 1, .timestamp_ms = -1};
    sink_t s = {0};
    if (vg_state_process(st, g_sc, ev, &src, on_alert, &s, err, sizeof(err)) < 0)
        fuzz_fail("processing after a restore failed: %s", err);
    vg_event_destroy(ev);
    char *snap = NULL;
    size_t len = 0;
    if (vg_state_snapshot(st, &snap, &len) != 0)
        fuzz_fail("snapshot after a restore failed");
    free(snap);
    vg_state_destroy(st);
}

static void feed(vg_state_t *st, const char *buf, size_t size, sink_t *s)
{
    char err[512];
    int64_t offset = 0;
    for (const char *p = buf, *end = buf + size; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        vg_event_t *ev = NULL;
        if (vg_decoder_parse(g_dec, p, len, &ev, err, sizeof(err)) == VG_EVENT_OK) {
            /* Message timestamps: the fallback event time, one second apart. */
            vg_alert_source_t src = {.topic = "news", .partition = 0, .offset = offset,
                                     .timestamp_ms = 1700000000000 + offset * 1000};
            if (vg_state_process(st, g_sc, ev, &src, on_alert, s, err, sizeof(err)) < 0)
                fuzz_fail("vg_state_process failed: %s", err);
            vg_event_destroy(ev);
        }
        offset++;
        p += len + (nl != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_rs)
        LLVMFuzzerInitialize(NULL, NULL);
    if (size && data[0] == 'S') {
        restore_bytes(data + 1, size - 1);
        return 0;
    }
    char err[512];
    vg_state_t *st = vg_state_new(g_rs, NULL);
    if (!st)
        fuzz_fail("out of memory");
    sink_t live = {0};
    feed(st, (const char *)data, size, &live);

    char *snap = NULL, *snap2 = NULL;
    size_t len = 0, len2 = 0;
    if (vg_state_snapshot(st, &snap, &len) != 0)
        fuzz_fail("snapshot failed");
    vg_state_t *copy = vg_state_new(g_rs, NULL);
    size_t dropped = 1;
    if (!copy || vg_state_restore(copy, snap, len, &dropped, err, sizeof(err)) != 0)
        fuzz_fail("restoring a fresh snapshot failed: %s", err);
    if (dropped != 0)
        fuzz_fail("restoring into the same rules dropped %zu rules", dropped);
    if (vg_state_snapshot(copy, &snap2, &len2) != 0)
        fuzz_fail("second snapshot failed");
    if (len != len2 || memcmp(snap, snap2, len) != 0)
        fuzz_fail("snapshot -> restore -> snapshot changed the image (%zu -> %zu bytes)", len,
                  len2);
    dropped = 1;
    vg_state_t *carried = vg_state_rebuild(st, g_rs, NULL, &dropped, err, sizeof(err));
    if (!carried || dropped != 0)
        fuzz_fail("carrying the state over to the same rules failed: %s", err);

    sink_t a = {0}, b = {0}, c = {0};
    if (vg_state_flush(st, on_alert, &a, err, sizeof(err)) < 0 ||
        vg_state_flush(copy, on_alert, &b, err, sizeof(err)) < 0 ||
        vg_state_flush(carried, on_alert, &c, err, sizeof(err)) < 0)
        fuzz_fail("flush failed: %s", err);
    if (a.count != b.count || a.hash != b.hash)
        fuzz_fail("the restored state flushed other alerts (%zu vs %zu)", b.count, a.count);
    if (a.count != c.count || a.hash != c.hash)
        fuzz_fail("the carried-over state flushed other alerts (%zu vs %zu)", c.count, a.count);
    free(snap);
    free(snap2);
    vg_state_destroy(carried);
    vg_state_destroy(copy);
    vg_state_destroy(st);
    return 0;
}
