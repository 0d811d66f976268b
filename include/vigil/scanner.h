/* Evaluation of a ruleset over events. A scanner holds the per-thread
 * state (vectorscan scratch, hit tables, buffers); the ruleset it was made
 * for must outlive it. One scanner per thread. */
#ifndef VIGIL_SCANNER_H
#define VIGIL_SCANNER_H

#include <stdbool.h>
#include <stddef.h>

#include "vigil/event.h"
#include "vigil/ruleset.h"

typedef struct vg_scanner vg_scanner_t;

vg_scanner_t *vg_scanner_new(const vg_ruleset_t *rs);
void vg_scanner_destroy(vg_scanner_t *sc);

/* Evaluates every enabled stateless rule over ev (stateful rules are
 * evaluated by vg_state_process, in partition order). Returns how many matched (see
 * vg_scanner_match), or -1 when matching failed internally (then err says
 * why). */
int vg_scanner_eval(vg_scanner_t *sc, const vg_event_t *ev, char *err, size_t err_size);

/* One pass for both kinds: every enabled rule over one scan of ev. The
 * matches are the stateless ones (i < *nstateless, what vg_scanner_eval
 * gives) followed by the stateful ones, each part in rule order. Returns
 * how many in all, or -1 with err. */
int vg_scanner_eval_all(vg_scanner_t *sc, const vg_event_t *ev, size_t *nstateless, char *err,
                        size_t err_size);

/* The enabled stateful rules only, in rule order, scanning only the
 * fields they search (vg_state_process without precomputed matches). */
int vg_scanner_eval_stateful(vg_scanner_t *sc, const vg_event_t *ev, char *err, size_t err_size);

/* Evaluates one rule only (enabled or not): 1 match, 0 no match, -1 error. */
int vg_scanner_eval_rule(vg_scanner_t *sc, const vg_event_t *ev, const vg_rule_t *rule,
                         char *err, size_t err_size);

/* The i-th rule matched by the last vg_scanner_eval. */
const vg_rule_t *vg_scanner_match(const vg_scanner_t *sc, size_t i);

/* Explains how rule's condition evaluated on the last event given to
 * vg_scanner_eval_rule: one line per condition with its location, what it
 * tests and its value. Returns a malloc'd string or NULL. */
char *vg_scanner_explain(vg_scanner_t *sc, const vg_event_t *ev, const vg_rule_t *rule);

const vg_ruleset_t *vg_scanner_ruleset(const vg_scanner_t *sc);

/* One keyword hit that supports a rule's match: what an alert shows in
 * "matches". The strings belong to the ruleset (field, term, list) and to
 * the event (value): valid while both live. */
typedef struct vg_evidence {
    const char *field; /* the text field's dotted path */
    const char *term;  /* the term as written in the rule */
    const char *list;  /* the list the term came from, or NULL */
    const char *entity; /* the entity the term names (rule 16), or NULL */
    const char *value; /* the field's text */
    size_t value_len;
    size_t offset, length; /* of the match, in bytes of value */
} vg_evidence_t;

/* A rule that matched an event, with its evidence: what rendering its
 * alert needs from the evaluation, so that it can be rendered later, on
 * another thread (the stateful step) than the one that evaluated it. */
typedef struct vg_rule_match {
    const vg_rule_t *rule;
    const vg_evidence_t *evidence;
    size_t nevidence;
    /* A stateful rule's keys on the event (vg_event_rule_keys), when the
     * evaluating thread found them (a pool with options.stateful): then
     * the state step reads neither them nor the time from the event.
     * has_keys false: the state step finds them in the event. keys holds
     * nkeys NUL-terminated keys; values values_len bytes of nvalues
     * NUL-terminated first_seen values. */
    bool has_keys;
    const char *keys;
    size_t nkeys;
    uint64_t keys_dropped;
    const char *values;
    size_t values_len, nvalues;
} vg_rule_match_t;

/* The evidence of the i-th match of the last evaluation: the hits of the
 * keyword conditions its truth rests on (none under a 'not'), in the
 * order the event's fields were scanned. *out is the scanner's, valid
 * until its next call. Out of memory: 0, and vg_scanner_failed says so. */
size_t vg_scanner_match_evidence(vg_scanner_t *sc, size_t i, const vg_evidence_t **out);

/* Matches kept beyond the scanner's next evaluation: the rules with
 * copies of their evidence (whose values still point into the event, so
 * the event must live as long). matches[0..n) is valid after each
 * successful vg_match_set_take. */
typedef struct vg_match_set {
    vg_rule_match_t *matches;
    size_t n, cap;
    size_t *first; /* index of each match's evidence in evidence[] */
    vg_evidence_t *evidence;
    size_t nevidence, evidence_cap;
} vg_match_set_t;

void vg_match_set_init(vg_match_set_t *ms);
/* Empties the set, keeping its memory. */
void vg_match_set_reset(vg_match_set_t *ms);
void vg_match_set_free(vg_match_set_t *ms);
/* Appends matches [from, to) of the scanner's last evaluation with their
 * evidence. 0, or -1 when out of memory (the set keeps what it had). */
int vg_match_set_take(vg_match_set_t *ms, vg_scanner_t *sc, size_t from, size_t to);

/* True when the last evaluation (or evidence call) ran out of memory or
 * vectorscan failed. */
bool vg_scanner_failed(const vg_scanner_t *sc);

#endif
