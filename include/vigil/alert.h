/* Alert rendering (DESIGN.md "Alerts"): one JSON object per matched rule,
 * with a deterministic alert_id so that replays can be deduplicated. */
#ifndef VIGIL_ALERT_H
#define VIGIL_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/event.h"
#include "vigil/scanner.h"

typedef struct vg_alert_source {
    /* Kafka origin (topic != NULL) ... */
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* message timestamp, or -1 */
    /* ... or file origin (file != NULL). */
    const char *file;
    uint64_t line;
} vg_alert_source_t;

/* Renders the alert for the i-th rule matched by the scanner's last
 * vg_scanner_eval on ev. time_field names the event field holding the
 * event time (NULL: none). Returns a malloc'd JSON object on one line and
 * its length, or NULL when out of memory. */
char *vg_alert_render(vg_scanner_t *sc, const vg_event_t *ev, size_t i,
                      const vg_alert_source_t *src, const char *time_field, size_t *len);

/* What goes into an alert beyond its fixed fields. */
typedef struct vg_alert_options {
    const char *time_field; /* event field holding the event time, or NULL */
    bool omit_event;        /* leave out "event" (the consumer has the source) */
    size_t max_matches;     /* evidence entries at most (0: all); the number
                             * left out is "matches_omitted" */
    /* For the alerts of stateful rules (the state layer sets these): */
    const char *alert_id;   /* 32 hex digits instead of the id from the
                             * rule and source; NULL: that id */
    const char *state;      /* a JSON object (state_len bytes) written as
                             * "state" right after the id; NULL: none */
    size_t state_len;
    const char *summary;    /* the summary text as it is (summary_len
                             * bytes) instead of the rule's template over
                             * the event; NULL: the template */
    size_t summary_len;
    bool event_time_set;    /* event_time is event_time_ms (INT64_MIN:
                             * null) instead of the event's time field */
    int64_t event_time_ms;
} vg_alert_options_t;

/* vg_alert_render with options (opts NULL: time_field none, all the rest
 * in). */
char *vg_alert_render_ex(vg_scanner_t *sc, const vg_event_t *ev, size_t i,
                         const vg_alert_source_t *src, const vg_alert_options_t *opts,
                         size_t *len);

/* Renders the alert of a rule match m (from vg_scanner_match_evidence,
 * kept from an earlier evaluation) on ev, which may be NULL for an alert
 * no single event caused ("event":null, no placeholders filled); src NULL
 * renders "source":null. Same output and ownership as vg_alert_render_ex. */
char *vg_alert_render_match(const vg_ruleset_t *rs, const vg_event_t *ev,
                            const vg_rule_match_t *m, const vg_alert_source_t *src,
                            const vg_alert_options_t *opts, size_t *len);

/* The alert id for a rule, ruleset and source: 32 hex digits into out[33]. */
void vg_alert_id(const char *rule_id, const char *ruleset_hash, const vg_alert_source_t *src,
                 char out[33]);

#endif
