/* Evaluation of a ruleset over events. A scanner holds the per-thread
 * state (vectorscan scratch, hit tables, buffers); the ruleset it was made
 * for must outlive it. One scanner per thread. */
#ifndef VIGIL_SCANNER_H
#define VIGIL_SCANNER_H

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

/* The same for the enabled stateful rules only, in rule order (the state
 * step of vg_state_process). */
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

#endif
