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
} vg_alert_options_t;

/* vg_alert_render with options (opts NULL: time_field none, all the rest
 * in). */
char *vg_alert_render_ex(vg_scanner_t *sc, const vg_event_t *ev, size_t i,
                         const vg_alert_source_t *src, const vg_alert_options_t *opts,
                         size_t *len);

/* The alert id for a rule, ruleset and source: 32 hex digits into out[33]. */
void vg_alert_id(const char *rule_id, const char *ruleset_hash, const vg_alert_source_t *src,
                 char out[33]);

#endif
