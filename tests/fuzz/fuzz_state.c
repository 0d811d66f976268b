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
 * The rules: fuzz_engine() (fuzz_engine.c). */
#include <string.h>

#include "fuzz.h"
#include "vigil/alert.h"
#include "vigil/state.h"

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
    json_object *o = fuzz_alert_object(a->json, a->len, vg_rule_id(a->rule), "a state alert");
    json_object_object_del(o, "time");
    const char *canon = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    s->hash = mix(s->hash, vg_rule_id(a->rule), strlen(vg_rule_id(a->rule)) + 1);
    s->hash = mix(s->hash, a->key, strlen(a->key) + 1);
    s->hash = mix(s->hash, canon, strlen(canon));
    s->count++;
    json_object_put(o);
    return 0;
}

static void restore_bytes(const fuzz_engine_t *e, const uint8_t *data, size_t size)
{
    vg_state_t *st = vg_state_new(e->rules, NULL);
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
    if (vg_decoder_parse(e->decoder, ev_text, sizeof(ev_text) - 1, &ev, err, sizeof(err)) !=
        VG_EVENT_OK)
        fuzz_fail("the fixed event does not decode: %s", err);
    vg_alert_source_t src = {.topic = "news", .partition = 0, .offset = 1, .timestamp_ms = -1};
    sink_t s = {0};
    if (vg_state_process(st, e->scanner, ev, &src, on_alert, &s, err, sizeof(err)) < 0)
        fuzz_fail("processing after a restore failed: %s", err);
    vg_event_destroy(ev);
    char *snap = NULL;
    size_t len = 0;
    if (vg_state_snapshot(st, &snap, &len) != 0)
        fuzz_fail("snapshot after a restore failed");
    free(snap);
    vg_state_destroy(st);
}

static void feed(const fuzz_engine_t *e, vg_state_t *st, const char *buf, size_t size, sink_t *s)
{
    char err[512];
    int64_t offset = 0;
    for (const char *p = buf, *end = buf + size; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        vg_event_t *ev = NULL;
        if (vg_decoder_parse(e->decoder, p, len, &ev, err, sizeof(err)) == VG_EVENT_OK) {
            /* Message timestamps: the fallback event time, one second apart. */
            vg_alert_source_t src = {.topic = "news",
                                     .partition = 0,
                                     .offset = offset,
                                     .timestamp_ms = 1700000000000 + offset * 1000};
            if (vg_state_process(st, e->scanner, ev, &src, on_alert, s, err, sizeof(err)) < 0)
                fuzz_fail("vg_state_process failed: %s", err);
            vg_event_destroy(ev);
        }
        offset++;
        p += len + (nl != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fuzz_engine_t *e = fuzz_engine();
    if (!vg_ruleset_has_stateful(e->rules))
        fuzz_fail("the rules have no stateful rule to fuzz (set VIGIL_FUZZ_RULES)");
    if (size && data[0] == 'S') {
        restore_bytes(e, data + 1, size - 1);
        return 0;
    }
    char err[512];
    vg_state_t *st = vg_state_new(e->rules, NULL);
    if (!st)
        fuzz_fail("out of memory");
    sink_t live = {0};
    feed(e, st, (const char *)data, size, &live);

    char *snap = NULL, *snap2 = NULL;
    size_t len = 0, len2 = 0;
    if (vg_state_snapshot(st, &snap, &len) != 0)
        fuzz_fail("snapshot failed");
    vg_state_t *copy = vg_state_new(e->rules, NULL);
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
    vg_state_t *carried = vg_state_rebuild(st, e->rules, NULL, &dropped, err, sizeof(err));
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
