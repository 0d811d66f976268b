/* A ruleset: every rule, list and macro of a set of rule files, validated
 * and compiled (vectorscan databases included). A ruleset is immutable
 * once built, so it can be shared by threads and swapped whole on reload. */
#ifndef VIGIL_RULESET_H
#define VIGIL_RULESET_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "vigil/diag.h"

typedef struct vg_ruleset vg_ruleset_t;
typedef struct vg_rule vg_rule_t;

/* The bounds of a load when the options leave them 0: generous, so that
 * only a hostile or mistaken rule set meets them. */
#define VG_RULESET_MAX_COMPILE_SECONDS 60u
#define VG_RULESET_MAX_COMPILE_MEMORY ((size_t)4096 * 1024 * 1024)

typedef struct vg_ruleset_options {
    const char *const *text_fields; /* default text fields; NULL for [title, body] */
    size_t n_text_fields;
    /* A load (reading, checking and compiling) that takes longer than
     * max_compile_seconds (wall clock), or whose vectorscan compile needs
     * more than max_compile_memory bytes, fails with an error naming the
     * bound; 0: VG_RULESET_MAX_COMPILE_*. vectorscan compiles in a helper
     * process that is killed then, unless compile_in_process (no bounds:
     * for tools that cannot fork). */
    unsigned max_compile_seconds;
    size_t max_compile_memory;
    bool compile_in_process;
    /* When *cancel becomes non-zero (a signal handler's flag), the load
     * is abandoned within about 100 ms. NULL: never. */
    const volatile sig_atomic_t *cancel;
    /* Called about every 500 ms while a compile runs (watchdog pings);
     * from the loading thread. NULL: none. */
    void (*tick)(void *arg);
    void *tick_arg;
    /* Keyword literals per vectorscan database; more make several
     * databases, which bounds the compile's memory (0: 250,000). */
    size_t literals_per_database;
} vg_ruleset_options_t;

/* Reads VIGIL_MAX_COMPILE_SECONDS (seconds) and VIGIL_MAX_COMPILE_MEMORY
 * (MiB) into opts, for the command-line tools; an unset variable leaves
 * its field alone. -1 with err filled when a value is not a whole number
 * from 1 to 1,000,000. */
int vg_ruleset_options_from_env(vg_ruleset_options_t *opts, char *err, size_t err_size);

/* One rule file held in memory (the demo's bundled rules). */
typedef struct vg_rule_source {
    const char *name;
    const char *data;
    size_t len;
} vg_rule_source_t;

/* Loads the rule files at paths: files, or folders whose *.yaml and *.yml
 * files are loaded in name order (not recursively). Every error found is
 * added to diags as file:line:col; the result is NULL when there was any
 * error. opts may be NULL. The caller owns the result. */
vg_ruleset_t *vg_ruleset_load(const char *const *paths, size_t n_paths,
                              const vg_ruleset_options_t *opts, vg_diags_t *diags);

/* The same from in-memory files. */
vg_ruleset_t *vg_ruleset_load_sources(const vg_rule_source_t *sources, size_t n,
                                      const vg_ruleset_options_t *opts, vg_diags_t *diags);

void vg_ruleset_destroy(vg_ruleset_t *rs);

size_t vg_ruleset_rule_count(const vg_ruleset_t *rs);
const vg_rule_t *vg_ruleset_rule(const vg_ruleset_t *rs, size_t i);
/* A fingerprint of the loaded rule files (16 hex digits). */
const char *vg_ruleset_hash(const vg_ruleset_t *rs);
size_t vg_ruleset_file_count(const vg_ruleset_t *rs);
size_t vg_ruleset_list_count(const vg_ruleset_t *rs);
size_t vg_ruleset_macro_count(const vg_ruleset_t *rs);
size_t vg_ruleset_term_count(const vg_ruleset_t *rs);
/* The output topics that rules name (alert.topic), without duplicates. */
size_t vg_ruleset_topic_count(const vg_ruleset_t *rs);
const char *vg_ruleset_topic(const vg_ruleset_t *rs, size_t i);

const char *vg_rule_id(const vg_rule_t *r);
const char *vg_rule_title(const vg_rule_t *r);
const char *vg_rule_severity(const vg_rule_t *r);
/* alert.topic, or NULL for the default alert topic. */
const char *vg_rule_topic(const vg_rule_t *r);
bool vg_rule_enabled(const vg_rule_t *r);
/* The alert summary template as written (NULL: none; alerts use the title). */
const char *vg_rule_summary(const vg_rule_t *r);
size_t vg_rule_tag_count(const vg_rule_t *r);
const char *vg_rule_tag(const vg_rule_t *r, size_t i);
const char *vg_rule_file(const vg_rule_t *r);
unsigned vg_rule_line(const vg_rule_t *r);
/* Where alert.topic is written (0, 0 without one), for messages that
 * refuse it (vg_config_check_rule_topics). */
void vg_rule_topic_at(const vg_rule_t *r, unsigned *line, unsigned *col);

/* Embedded test cases (tests.match / tests.no_match), as JSON text. */
/* A vigil test sequence (read-only, owned by the ruleset): events fed in order to a fresh state, and the
 * alerts expected from this rule (partial "state" objects, JSON). */
typedef struct vg_rule_seq {
    char *name;
    unsigned line;
    char **events;
    size_t *lens;
    unsigned *ev_lines;
    size_t nevents;
    char *expect; /* JSON array */
    size_t expect_len;
    unsigned expect_line;
} vg_rule_seq_t;
size_t vg_rule_seq_count(const vg_rule_t *r);
const vg_rule_seq_t *vg_rule_seq(const vg_rule_t *r, size_t i);
size_t vg_rule_test_count(const vg_rule_t *r);
const char *vg_rule_test(const vg_rule_t *r, size_t i, size_t *len, bool *expect_match,
                         unsigned *line);

#endif
