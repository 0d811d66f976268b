/* Private to the ruleset compiler (ruleset*.c): the compiler's working
 * state and the helpers its stages share (named vg_rc_, for "ruleset
 * compiler"). The scanner and the alert renderer read the compiled
 * ruleset through engine_int.h only.
 *
 * The stages, in the order vg_ruleset_load runs them:
 *   ruleset.c        files and passes, the public API, shared helpers
 *   ruleset_lists.c  lists, list files, the registration of lists/macros
 *   ruleset_rules.c  one rule: its id, metadata and alert settings
 *   ruleset_conds.c  conditions: all/any/not/macro, text, field
 *   ruleset_terms.c  keyword terms → vectorscan patterns; the databases
 *   ruleset_compile.c  every vectorscan compile, in a bounded helper process
 *   ruleset_state.c  stateful settings (threshold … digest, event_time)
 *   ruleset_tests.c  embedded tests and sequences
 *   ruleset_paths.c  dotted field paths */
#ifndef VIGIL_RULESET_INT_H
#define VIGIL_RULESET_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine_int.h"
#include "strmap.h"
#include "vigil/diag.h"
#include "vigil/rule_state.h"
#include "vigil/ruleset.h"
#include "vigil/yaml.h"

#define MAX_COND_DEPTH 64

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* An embedded test event of a rule (tests: match / no_match). */
struct vg_rule_test_case {
    char *json; /* the event as JSON, for the same decoder as real events */
    size_t len;
    bool expect_match;
    unsigned line;
};

/* One value of a list or of an inline list of terms/operands, with the
 * place it was written, for errors that point at the value itself. */
typedef struct item {
    const char *text;
    size_t len;
    const char *entity; /* the entity's name when the item is its name or alias */
    bool alias;         /* an entity's alias (not its name) */
    uint32_t group;     /* one per item written; an entity's terms share it */
    vg_yscalar_t type;
    double num;
    bool quoted;
    const char *file;
    unsigned line, col;
    const char *list; /* the list it was written in */
} item_t;

/* Lists and macros are resolved on first use; the states detect cycles. */
enum { UNSEEN, VISITING, DONE, FAILED };

/* What lists and macros have in common: a name defined at a place. */
typedef struct def {
    const char *name;
    const vg_ynode_t *node;
    const char *file;
    unsigned line, col;
    int state;
} def_t;

typedef struct list_def {
    def_t def; /* first, so that a list_def_t is also a def_t */
    item_t *items;
    size_t nitems, cap;
} list_def_t;

typedef struct macro_def {
    def_t def; /* first, so that a macro_def_t is also a def_t */
    vg_cond_t *cond;
} macro_def_t;

typedef struct compiler {
    vg_ruleset_t *rs;
    vg_diags_t *diags;
    vg_ydoc_t **docs;
    const char **doc_names; /* kept for the ruleset's lifetime */
    size_t ndocs;
    list_def_t *lists;
    size_t nlists;
    vg_strmap_t list_idx;
    macro_def_t *macros;
    size_t nmacros;
    vg_strmap_t macro_idx;
    vg_strmap_t term_idx;
    vg_strmap_t bad_terms; /* locations of terms already reported */
    size_t term_cap;
    vg_strmap_t rule_idx;
    vg_strmap_t slot_idx;
    vg_strmap_t topic_idx;
    size_t rule_cap, cond_cap, string_cap;
    const char *const *default_fields;
    size_t n_default_fields;
    uint64_t hash;
    bool oom;
    struct vg_norm *norm; /* terms are normalised as text is (rules 7-9) */
    bool case_sensitive;  /* the condition being compiled has case: sensitive */
    uint32_t next_group;  /* item_t.group of the next item */
    /* The load's bounds (ruleset_compile.c): the helper process that
     * compiles, the deadline of the whole load, and its cancel flag. */
    struct vg_subproc *hs;
    double deadline;
    const volatile sig_atomic_t *cancel;
    unsigned max_seconds;
    size_t max_memory;
    size_t literal_shard;  /* literals per database */
    bool abandoned;        /* a bound was hit (reported): the load fails */
    uint32_t since_bounds; /* terms interned since the bounds were checked */
} compiler_t;

/* ---- diagnostics and memory (ruleset.c) ---- */

void vg_rc_err_at(compiler_t *c, const char *file, unsigned line, unsigned col, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));
#define ERR(c, file, node, ...) vg_rc_err_at((c), (file), (node)->line, (node)->col, __VA_ARGS__)
/* Reports running out of memory, once; the load then fails. */
void vg_rc_oom(compiler_t *c);
char *vg_rc_strndup(compiler_t *c, const char *s, size_t n);
/* Makes room for need elements in *arr of *cap; false after vg_rc_oom(). */
bool vg_rc_grow(compiler_t *c, void **arr, size_t *cap, size_t need, size_t elem);
/* Copies s into the strings the ruleset keeps for its lifetime. */
const char *vg_rc_keep_string(compiler_t *c, const char *s);
/* Hands buf (malloc'ed) to the ruleset's strings; frees it on failure. */
bool vg_rc_keep_buffer(compiler_t *c, char *buf);
vg_cond_t *vg_rc_new_cond(compiler_t *c, vg_cond_kind_t kind, const char *file,
                          const vg_ynode_t *at);
void vg_rc_free_rule(vg_rule_t *r);

/* ---- YAML nodes (ruleset.c) ---- */

static inline bool is_str(const vg_ynode_t *n)
{
    return n && n->kind == VG_YNODE_SCALAR && n->type == VG_YSCALAR_STRING;
}

static inline bool is_null(const vg_ynode_t *n)
{
    return n && n->kind == VG_YNODE_SCALAR && n->type == VG_YSCALAR_NULL;
}

/* Reports each key of map that is not in keys, with a suggestion. */
void vg_rc_check_keys(compiler_t *c, const char *file, const vg_ynode_t *map,
                      const char *const *keys, size_t nkeys, const char *what);
/* A setting whose value is a map: its key, the shape an error shows when
 * the value is not a map, and the keys the map may have ('what' names it
 * in the unknown-key error). */
typedef struct map_spec {
    const char *key;
    const char *shape;
    const char *what;
    const char *const *keys;
    size_t nkeys;
} map_spec_t;
/* Checks that v is a map ("'key' takes shape, got …") and reports its
 * unknown keys; false when it is not a map. */
bool vg_rc_check_map(compiler_t *c, const char *file, const vg_ynode_t *v, const map_spec_t *spec);
/* Keys of which a map may hold one (the forms of a condition, the
 * operators of a field condition, the aggregations of a rule). */
typedef struct one_of {
    const char *const *names;
    size_t n;
    const char *rule;   /* "a rule takes one of …", for the error */
    const char *advice; /* what to do instead, for the error */
    /* Called for the map's other keys, if not NULL; false: an error. */
    bool (*other)(compiler_t *c, const char *file, const vg_ynode_t *k);
} one_of_t;
/* The first key of map named in spec, with its index in spec->names and
 * its value; NULL when there is none. A second such key is reported and
 * makes *ok false, as does other(). */
const vg_ynode_t *vg_rc_find_one_of(compiler_t *c, const char *file, const vg_ynode_t *map,
                                    const one_of_t *spec, size_t *index, const vg_ynode_t **value,
                                    bool *ok);
/* A copy of the string under key, or NULL (reported when required or not
 * a scalar). */
char *vg_rc_get_string(compiler_t *c, const char *file, const vg_ynode_t *map, const char *key,
                       bool required, const vg_ynode_t *where);

/* ---- field paths (ruleset_paths.c) ---- */

bool vg_rc_valid_path(const char *s, size_t len);
bool vg_rc_split_path(compiler_t *c, const char *s, size_t len, char ***parts, size_t *nparts);
bool vg_rc_make_path(compiler_t *c, vg_path_t *p, const char *s, size_t len);

/* ---- the stages ---- */

/* ruleset_lists.c */
void vg_rc_register_defs(compiler_t *c, const char *file, const vg_ynode_t *root);
bool vg_rc_resolve_list(compiler_t *c, list_def_t *l);
bool vg_rc_collect_items(compiler_t *c, const char *file, const vg_ynode_t *n, list_def_t *out);

/* ruleset_rules.c */
void vg_rc_compile_rule(compiler_t *c, const char *file, const vg_ynode_t *n);

/* ruleset_conds.c */
vg_cond_t *vg_rc_compile_cond(compiler_t *c, const char *file, const vg_ynode_t *n, unsigned depth);
vg_cond_t *vg_rc_compile_macro(compiler_t *c, macro_def_t *m);

/* ruleset_terms.c */
/* Interns the term of it, normalised with case folding unless
 * c->case_sensitive; returns its id or -1 after reporting. */
long vg_rc_intern_term(compiler_t *c, const item_t *it);
/* The normaliser of the compiler (made on first use); NULL after
 * reporting. */
struct vg_norm *vg_rc_norm(compiler_t *c);
/* Inline regex options such as (?i) are refused (rule 5); false after
 * reporting at file:line:col. */
bool vg_rc_regex_flags_ok(compiler_t *c, const char *file, unsigned line, unsigned col,
                          const char *pat, size_t len);
void vg_rc_regex_error(compiler_t *c, const char *file, unsigned line, unsigned col,
                       const char *pattern, const hs_compile_error_t *ce);
void vg_rc_build_databases(compiler_t *c);

/* ruleset_compile.c */
/* What a compile is for, for the error when a bound stops it. */
typedef struct vg_rc_where {
    const char *what; /* "this regular expression", "the keyword database" */
    const char *file; /* NULL: no place */
    unsigned line, col;
} vg_rc_where_t;
/* Patterns for one compile: one pattern without ids is compiled alone
 * (hs_compile), several with ids into one database; literal: with
 * hs_compile_lit_multi and lens. */
typedef struct vg_rc_patterns {
    const char *const *pats;
    const unsigned *flags;
    const unsigned *ids;
    const size_t *lens;
    size_t n;
    bool literal;
} vg_rc_patterns_t;
/* Starts the compile helper under opts' bounds; false after reporting. */
bool vg_rc_compile_begin(compiler_t *c, const vg_ruleset_options_t *opts);
void vg_rc_compile_end(compiler_t *c);
/* The deadline and the cancel flag, for the stages between compiles;
 * false after reporting (once) that the load is abandoned. */
bool vg_rc_in_bounds(compiler_t *c);
/* Compiles p in the helper: 0 with *db (when db is not NULL), 1 with
 * vectorscan's error in *msg (to free) and the pattern's index in *expr,
 * -1 when the load is abandoned (reported once, at w). */
int vg_rc_hs_compile(compiler_t *c, const vg_rc_where_t *w, const vg_rc_patterns_t *p,
                     hs_database_t **db, char **msg, int *expr);

/* ruleset_state.c */
bool vg_rc_compile_state(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *n);

/* ruleset_tests.c */
bool vg_rc_compile_tests(compiler_t *c, const char *file, vg_rule_t *r, const vg_ynode_t *t);

#endif
