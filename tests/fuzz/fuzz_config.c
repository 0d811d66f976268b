/* Fuzz target: configuration file text -> vg_config_load_buffer (YAML
 * loader, key table, type and range checks, ${VAR} expansion, "did you
 * mean" hints).
 *
 * Invariants: a configuration comes back exactly when no error was
 * reported, and then every field the daemon reads unchecked is set; every
 * diagnostic formats. Loaded once with a diagnostics collection and once
 * without (diags may be NULL), which must agree. */
#include <string.h>

#include "fuzz.h"
#include "vigil/config.h"

static void check(const vg_config_t *cfg)
{
    if (!cfg->brokers || !cfg->group || !cfg->time_field || !cfg->output_topic ||
        !cfg->dead_letter_topic || !cfg->metrics_listen)
        fuzz_fail("a string field is NULL in a loaded configuration");
    if (cfg->prop_keys.count != cfg->prop_values.count)
        fuzz_fail("%zu property keys but %zu values", cfg->prop_keys.count, cfg->prop_values.count);
    for (size_t i = 0; i < cfg->prop_keys.count; i++)
        if (vg_config_property(cfg, cfg->prop_keys.items[i]) == NULL)
            fuzz_fail("property '%s' is listed but not found", cfg->prop_keys.items[i]);
    const vg_strlist_t *lists[] = {&cfg->input_topics, &cfg->rule_paths, &cfg->text_fields};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < lists[l]->count; i++)
            if (!lists[l]->items[i])
                fuzz_fail("list %zu item %zu is NULL", l, i);
    if (cfg->max_event_bytes < 1024 || cfg->max_event_depth < 2)
        fuzz_fail("limits out of range: %zu bytes, depth %zu", cfg->max_event_bytes,
                  cfg->max_event_depth);
    if (!vg_delivery_name(cfg->delivery))
        fuzz_fail("delivery has no name");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* ${VIGIL_FUZZ_VAR} expands to something; other names are unset. */
    setenv("VIGIL_FUZZ_VAR", "from-env", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vg_diags_t *d = vg_diags_new();
    if (!d)
        return 0;
    vg_config_t *cfg = vg_config_load_buffer("fuzz.yaml", (const char *)data, size, d);
    fuzz_check_diags(d, cfg != NULL, "configuration");
    if (fuzz_verbose())
        fprintf(stderr, "fuzz_config: %s\n", cfg ? "loaded" : "refused");
    if (cfg)
        check(cfg);
    vg_config_t *again = vg_config_load_buffer(NULL, (const char *)data, size, NULL);
    if (!again != !cfg)
        fuzz_fail("loading without diagnostics gave a different answer");
    vg_config_destroy(again);
    vg_config_destroy(cfg);
    vg_diags_destroy(d);
    return 0;
}
