/* Private structures shared by the engine's modules (ruleset compiler,
 * scanner, alert renderer). Nothing outside daemon/ includes this. */
#ifndef VIGIL_ENGINE_INT_H
#define VIGIL_ENGINE_INT_H

#include <hs/hs.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strmap.h"
#include "vigil/rule_state.h"
#include "vigil/ruleset.h"
#include "vigil/scanner.h"

typedef enum {
    VG_TERM_LITERAL,    /* literal over normalised, gap-collapsed text */
    VG_TERM_NORM_REGEX, /* a phrase with a '*' word before its last word */
    VG_TERM_USER_REGEX, /* /…/ over normalised text, no implicit boundaries */
    VG_TERM_NEVER       /* normalises to nothing: in no database */
} vg_term_kind_t;

typedef struct vg_term {
    vg_term_kind_t kind;
    char *text;    /* as written in the rule */
    char *pattern; /* literal bytes (without a trailing '*') or regex */
    size_t pattern_len;
    char *words;   /* phrase: the collapsed words, '*' suffixes kept */
    bool star;     /* literal: the last word ends in '*' */
    bool no_som;   /* user regex: compiled without start-of-match */
    bool cs;       /* case-sensitive (rule 13): matched on unfolded text */
    /* Boundaries (rules 3, 11, 12): whether the first/last character is a
     * word character, and whether the term needs no boundary there. */
    bool first_word, last_word;
    bool free_before, free_after;
    bool all_occ;       /* keep every occurrence: used by except or near */
    uint32_t *lit_dash; /* offsets in pattern of gaps that must be a dash */
    size_t nlit_dash;
} vg_term_t;

typedef struct vg_term_ref {
    uint32_t term;
    const char *list;   /* list the term was written in, or NULL */
    const char *entity; /* entity name (rule 16), or NULL for a plain item */
    uint32_t group;     /* 'all': the item it belongs to (an entity is one) */
} vg_term_ref_t;

typedef enum {
    VG_COND_ALL,
    VG_COND_ANY,
    VG_COND_NOT,
    VG_COND_MACRO,
    VG_COND_TEXT,
    VG_COND_FIELD
} vg_cond_kind_t;

typedef enum {
    VG_OP_EQ,
    VG_OP_IN,
    VG_OP_PREFIX,
    VG_OP_SUFFIX,
    VG_OP_CONTAINS,
    VG_OP_MATCHES,
    VG_OP_LT,
    VG_OP_LTE,
    VG_OP_GT,
    VG_OP_GTE,
    VG_OP_EXISTS
} vg_op_t;

typedef enum { VG_OPD_STRING, VG_OPD_NUMBER, VG_OPD_BOOL, VG_OPD_NULL } vg_opd_type_t;

typedef struct vg_operand {
    vg_opd_type_t type;
    char *text; /* folded text as compared with a field's text */
    size_t len;
    double num;
} vg_operand_t;

typedef struct vg_cond vg_cond_t;
struct vg_cond {
    vg_cond_kind_t kind;
    const char *file;
    unsigned line, col;
    /* all / any / not / macro (kids[0] is the macro's condition) */
    vg_cond_t **kids;
    size_t nkids;
    char *name; /* macro name */
    /* text */
    bool text_all;
    vg_term_ref_t *terms; /* sorted by term id */
    size_t nterms;
    size_t ngroups;       /* items of 'all' (an entity counts once) */
    vg_term_ref_t *except; /* rule 14, sorted by term id */
    size_t nexcept;
    vg_term_ref_t *near[2]; /* rule 15: the two lists, sorted by term id */
    size_t nnear[2];
    uint32_t within;
    bool ordered;
    bool is_near;
    uint32_t near_idx; /* index among the ruleset's near conditions */
    uint32_t *slots;
    size_t nslots;
    /* field */
    char *path_text;
    char **path;
    size_t npath;
    vg_op_t op;
    vg_operand_t *opds;
    size_t nopds;
    vg_strmap_t set;   /* in: folded texts of string/bool/null operands */
    double *nums;      /* in: number operands */
    size_t nnums;
    hs_database_t *re; /* matches */
    bool exists;
};

/* An embedded match/no_match test (ruleset_int.h); only the compiler and
 * vg_rule_test() read it. */
typedef struct vg_rule_test_case vg_rule_test_case_t;

struct vg_rule {
    vg_rule_state_t *state; /* NULL: stateless */
    vg_rule_seq_t *seqs;
    size_t nseqs;
    char *id;
    char *title;
    char *description;
    const char *severity; /* static string */
    char **tags;
    size_t ntags;
    bool enabled;
    vg_cond_t *match;
    char *topic;
    unsigned topic_line, topic_col; /* where alert.topic is written */
    char *summary;
    const char *file;
    unsigned line;
    vg_rule_test_case_t *tests;
    size_t ntests;
};

struct vg_ruleset {
    vg_rule_t **rules;
    size_t nrules;
    vg_term_t *terms;
    size_t nterms;
    char **slot_text;   /* dotted paths of text fields used by text conditions */
    char ***slot_path;  /* the same split at dots */
    size_t *slot_npath;
    size_t nslots;
    bool *stateful_slots; /* [nslots]: searched by a stateful rule's text condition */
    /* [0]: case-folded text, [1]: case-sensitive (rule 13) */
    hs_database_t *db_lit[2];
    hs_database_t **db_lit_more[2]; /* literals past the first shard's, if any */
    size_t nlit_more[2];
    hs_database_t *db_norm[2];
    hs_database_t *db_user[2];
    vg_cond_t **near_conds; /* the near conditions, by near_idx */
    size_t nnear_conds;
    vg_cond_t **conds; /* every condition, for destroy (macros are shared) */
    size_t nconds;
    char **strings;    /* owned strings: file names, list names */
    size_t nstrings;
    char **topics;
    size_t ntopics;
    size_t nfiles, nlists, nmacros;
    char hash[17];
};

/* One keyword hit: the first valid occurrence of a term in one text field
 * of the current event, or every occurrence of a term that an except or
 * near condition uses. */
typedef struct vg_hit {
    uint32_t term;
    uint32_t slot;
    uint32_t value_no; /* which field value of the event (rules 14, 15) */
    const char *value; /* the field's text (owned by the event) */
    size_t value_len;
    size_t offset;     /* byte offset of the match in value */
    size_t length;     /* byte length of the match in value */
    size_t nstart, nend; /* the match in the normalised value */
} vg_hit_t;

/* Fills *out with the hits that support rule's text conditions (those not
 * under a 'not'), for the event last evaluated; returns their count. The
 * array is owned by the scanner and valid until the next evaluation. */
size_t vg_scanner_evidence(vg_scanner_t *sc, const vg_rule_t *rule,
                           const vg_hit_t *const **out, const vg_term_ref_t *const **refs);

#endif
