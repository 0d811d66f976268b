/* The fixed setup of fuzz_event and fuzz_state (fuzz.h): the repository's
 * rules compiled once, with a scanner, a decoder and a strict JSON parser,
 * and the check that an alert is one line of JSON naming its rule. */
#include <string.h>

#include "fuzz.h"

#ifndef VIGIL_FUZZ_RULES
#define VIGIL_FUZZ_RULES "rules"
#endif

static fuzz_engine_t g_engine;

static void teardown(void)
{
    json_tokener_free(g_engine.tok);
    vg_decoder_destroy(g_engine.decoder);
    vg_scanner_destroy(g_engine.scanner);
    vg_ruleset_destroy(g_engine.rules);
}

static void setup(void)
{
    const char *dir = getenv("VIGIL_FUZZ_RULES");
    if (!dir || !*dir)
        dir = VIGIL_FUZZ_RULES;
    vg_diags_t *d = vg_diags_new();
    g_engine.rules = vg_ruleset_load(&dir, 1, NULL, d);
    if (!g_engine.rules) {
        vg_diags_print(d, stderr);
        fuzz_fail("cannot load the rules in %s (set VIGIL_FUZZ_RULES)", dir);
    }
    vg_diags_destroy(d);
    g_engine.scanner = vg_scanner_new(g_engine.rules);
    g_engine.decoder = vg_decoder_new(NULL);
    /* An alert wraps the event (<= 64 levels) in two more. */
    g_engine.tok = json_tokener_new_ex(256);
    if (!g_engine.scanner || !g_engine.decoder || !g_engine.tok)
        fuzz_fail("out of memory");
    json_tokener_set_flags(g_engine.tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    atexit(teardown);
}

const fuzz_engine_t *fuzz_engine(void)
{
    if (!g_engine.rules)
        setup();
    return &g_engine;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_engine();
    return 0;
}

json_object *fuzz_alert_object(const char *json, size_t len, const char *rule_id, const char *what)
{
    if (memchr(json, '\n', len) || memchr(json, '\r', len))
        fuzz_fail("%s is not one line: %.*s", what, (int)len, json);
    json_tokener *tok = g_engine.tok;
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    if (!o || je != json_tokener_success || json_tokener_get_parse_end(tok) != len)
        fuzz_fail("%s is not valid JSON (%s at byte %zu): %.*s", what, json_tokener_error_desc(je),
                  json_tokener_get_parse_end(tok), (int)len, json);
    if (!json_object_is_type(o, json_type_object))
        fuzz_fail("%s is not an object: %.*s", what, (int)len, json);
    json_object *rule = json_object_object_get(o, "rule");
    if (!rule || strcmp(json_object_get_string(rule), rule_id) != 0)
        fuzz_fail("%s names rule %s, not %s", what, rule ? json_object_get_string(rule) : "(none)",
                  rule_id);
    return o;
}
