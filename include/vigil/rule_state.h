/* The settings of a stateful rule as the state layer reads them
 * (rules/README.md "Stateful rules"): what the ruleset compiler produced
 * from a rule's `state:` block. Owned by the ruleset. */
#ifndef VIGIL_RULE_STATE_H
#define VIGIL_RULE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "path.h" /* vg_path_t (daemon/base) */
#include "vigil/ruleset.h"

/* The stateful part of a rule (rules/README.md "Stateful rules"). */
typedef enum {
    VG_AGG_NONE,      /* plain rule, with throttle or digest only */
    VG_AGG_THRESHOLD, /* count events >= count within window */
    VG_AGG_SPIKE,     /* window count >= factor * trailing baseline */
    VG_AGG_FIRST_SEEN,/* a value of field not seen within horizon */
    VG_AGG_ABSENCE    /* no event within window after one was seen */
} vg_agg_kind_t;

typedef enum { VG_OUT_EACH, VG_OUT_THROTTLE, VG_OUT_DIGEST } vg_out_kind_t;

typedef struct vg_rule_state {
    vg_agg_kind_t kind;
    int64_t window_ms;  /* threshold/spike/absence window; first_seen horizon */
    uint32_t count;     /* threshold */
    double factor;      /* spike */
    uint32_t min_count; /* spike */
    uint32_t baseline;  /* spike: trailing windows in the baseline */
    vg_path_t field;    /* first_seen */
    vg_path_t *group;   /* group_by of the aggregation (or of throttle/digest) */
    size_t ngroup;
    uint32_t max_keys;
    vg_out_kind_t out;
    int64_t out_window_ms;
    vg_path_t *out_group; /* throttle/digest group_by; NULL: same as group */
    size_t nout_group;
    bool out_group_set;
    uint32_t out_max_keys;
    uint32_t digest_max_items;
    vg_path_t time_field; /* text NULL: the command's default time field */
    int64_t lateness_ms;
    char *summary;        /* for vigil check */
    uint64_t fingerprint; /* of everything above: snapshots of other settings are dropped */
} vg_rule_state_t;

/* The stateful settings of r, or NULL for a stateless rule. */
const vg_rule_state_t *vg_rule_state(const vg_rule_t *r);

#endif
