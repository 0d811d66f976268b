/* Fuzz target: rule file text -> YAML loader -> rule compiler (lists,
 * macros, conditions, vectorscan databases). When the text compiles, the
 * rule's embedded test events (tests.match / tests.no_match) are decoded
 * and evaluated with the new ruleset, and every rule is explained, so the
 * compiled form is exercised as well as the compiler.
 *
 * Invariants: a ruleset comes back exactly when no error was reported;
 * every diagnostic formats; nothing the sanitizers object to. The file is
 * named as if it lived in a folder that does not exist, so relative list
 * files ({file: x.txt}) fail the same way everywhere. */
#include <string.h>

#include "fuzz.h"

static void exercise(const vg_ruleset_t *rs)
{
    size_t nr = vg_ruleset_rule_count(rs);
    if (strlen(vg_ruleset_hash(rs)) != 16)
        fuzz_fail("ruleset hash '%s' is not 16 hex digits", vg_ruleset_hash(rs));
    for (size_t i = 0; i < vg_ruleset_topic_count(rs); i++)
        if (!vg_ruleset_topic(rs, i))
            fuzz_fail("topic %zu is NULL", i);
    vg_scanner_t *sc = vg_scanner_new(rs);
    vg_decoder_t *dec = vg_decoder_new(NULL);
    if (!sc || !dec)
        fuzz_fail("out of memory making a scanner");
    char err[256];
    for (size_t i = 0; i < nr; i++) {
        const vg_rule_t *r = vg_ruleset_rule(rs, i);
        if (!vg_rule_id(r) || !vg_rule_title(r) || !vg_rule_severity(r) || !vg_rule_file(r))
            fuzz_fail("rule %zu lacks an id, title, severity or file", i);
        for (size_t t = 0; t < vg_rule_test_count(r); t++) {
            size_t len;
            bool expect;
            unsigned line;
            const char *json = vg_rule_test(r, t, &len, &expect, &line);
            vg_event_t *ev = NULL;
            if (vg_decoder_parse(dec, json, len, &ev, err, sizeof(err)) != VG_EVENT_OK)
                continue; /* the compiler reports bad test events; not ours to judge */
            if (vg_scanner_eval_rule(sc, ev, r, err, sizeof(err)) < 0)
                fuzz_fail("rule %s: evaluation failed: %s", vg_rule_id(r), err);
            free(vg_scanner_explain(sc, ev, r));
            if (vg_scanner_eval(sc, ev, err, sizeof(err)) < 0)
                fuzz_fail("evaluation failed: %s", err);
            vg_event_destroy(ev);
        }
    }
    vg_decoder_destroy(dec);
    vg_scanner_destroy(sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vg_diags_t *d = vg_diags_new();
    if (!d)
        return 0;
    vg_rule_source_t src = {
        .name = "/nonexistent/vigil-fuzz/rules.yaml", .data = (const char *)data, .len = size};
    /* In process: a helper process forked for every input would cost
     * more than most inputs take to compile (the bounds are tested in
     * tests/test_ruleset_compile.c). */
    vg_ruleset_options_t opts = {.compile_in_process = true};
    vg_ruleset_t *rs = vg_ruleset_load_sources(&src, 1, &opts, d);
    fuzz_check_diags(d, rs != NULL, "ruleset");
    if (fuzz_verbose())
        fprintf(stderr, "fuzz_rules: %s (%zu rules)\n", rs ? "compiled" : "refused",
                rs ? vg_ruleset_rule_count(rs) : 0);
    if (rs) {
        exercise(rs);
        vg_ruleset_destroy(rs);
    }
    vg_diags_destroy(d);
    return 0;
}
