/* Stateful rules (threshold, spike, first_seen, absence, throttle,
 * digest) evaluated on event time.
 *
 * A vg_state_t holds the windows of ONE input partition (a Kafka topic
 * partition, or one file in `vigil scan`): like Kafka Streams, state is
 * co-partitioned with the input, so counts never mix partitions. Producers
 * that need a count across all their events for a key must key their
 * messages by that field, so that one partition sees every event of it.
 *
 * Events must be fed in partition order, one thread at a time. Given the
 * same ruleset and the same input in the same order, the state produces
 * the same alerts with the same alert_ids, with or without a snapshot and
 * restore in between (that is what makes a restart or a rebalance
 * invisible downstream). */
#ifndef VIGIL_STATE_H
#define VIGIL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/alert.h"
#include "vigil/event.h"
#include "vigil/scanner.h"
#include "vigil/workpool.h"

typedef struct vg_state vg_state_t;

typedef struct vg_state_options {
    /* The event time field of rules without event_time.field (NULL:
     * "published_at"). */
    const char *time_field;
    /* Only this rule (vigil test); NULL for every stateful rule. */
    const vg_rule_t *only_rule;
} vg_state_options_t;

/* One alert produced by the state. json is one line of JSON (not
 * NUL-terminated in general; len bytes), key the Kafka message key (the
 * group key, or the rule id for a rule without group_by). Both are valid
 * only during the callback. */
typedef struct vg_state_alert {
    const vg_rule_t *rule;
    const char *json;
    size_t len;
    const char *key;
} vg_state_alert_t;

/* Returns 0 to go on, non-zero to report a failure (the processing call
 * then returns -1). */
typedef int (*vg_state_emit_fn)(void *ctx, const vg_state_alert_t *alert);

/* Counters, cumulative since vg_state_new (restored from a snapshot). */
typedef struct vg_state_stats {
    uint64_t events;        /* events given to the state */
    uint64_t late;          /* dropped: older than the watermark (per rule) */
    uint64_t untimed;       /* skipped: no event time and no clock yet (per rule) */
    uint64_t evicted;       /* keys dropped because a rule hit max_keys */
    uint64_t keys_dropped;  /* group keys over the per-event limit */
    uint64_t alerts;        /* alerts emitted */
    uint64_t suppressed;    /* alerts held back by throttle */
    uint64_t keys;          /* keys tracked now (gauge) */
} vg_state_stats_t;

/* True when rs has at least one enabled stateful rule (only those need a
 * vg_state_t). */
bool vg_ruleset_has_stateful(const vg_ruleset_t *rs);
/* True when r is a stateful rule (its alerts come from vg_state_process,
 * never from vg_scanner_eval). */
bool vg_rule_is_stateful(const vg_rule_t *r);
/* A one-line description of r's stateful behaviour for `vigil check`
 * ("threshold 3 in 24h by entities; throttle 1h"), or NULL. Static
 * storage of the rule. */
const char *vg_rule_state_summary(const vg_rule_t *r);

/* Empty state for rs, which must outlive it. NULL when out of memory. */
vg_state_t *vg_state_new(const vg_ruleset_t *rs, const vg_state_options_t *opts);
void vg_state_destroy(vg_state_t *st);

/* Feeds one decoded event (the next one of the partition). sc is a
 * scanner of the same ruleset, used to evaluate the stateful rules'
 * conditions (vg_state_apply then does the rest); src says where the event came from
 * (alert source and id; src->timestamp_ms is the fallback event time).
 * Alerts go to emit in a deterministic order (emit NULL: they are only
 * counted, as when replaying events whose alerts were sent before).
 * Returns the number of alerts, or -1 with err filled (out of memory,
 * matching failed, or emit said so). */
int vg_state_process(vg_state_t *st, vg_scanner_t *sc, const vg_event_t *ev,
                     const vg_alert_source_t *src, vg_state_emit_fn emit, void *ctx, char *err,
                     size_t err_size);

/* One event as the state step needs it when its stateful rules were
 * evaluated already (by a worker of a pool with options.stateful; see
 * vg_work_item_t and vg_state_input_from_item). */
typedef struct vg_state_input {
    /* The decoded event, or NULL when times are given and the matches
     * carry their keys (vg_rule_match_t.has_keys): then the state step
     * decodes raw again only for what it renders (an alert about the
     * event, a digest item), which is rare. */
    const vg_event_t *event;
    const char *raw; /* the event's bytes (when event is NULL) */
    size_t raw_len;
    /* The stateful rules that matched, with their evidence (rules this
     * state does not keep are ignored). */
    const vg_rule_match_t *matches;
    size_t nmatches;
    /* Event times found already: times[k] is the time at the field named
     * time_fields[k] (INT64_MIN: none). ntimes 0: read them from event. */
    const char *const *time_fields;
    const int64_t *times;
    size_t ntimes;
} vg_state_input_t;

/* The input of a finished work item of a pool with options.stateful:
 * its bytes, matches (with keys) and times; false when it was refused or
 * its evaluation failed (nothing to apply). The item's input bytes must
 * still be valid when the input is applied. */
bool vg_state_input_from_item(vg_state_input_t *in, const vg_work_item_t *it);

/* The in-order half of vg_state_process: applies windows to an event
 * whose stateful rules were evaluated already; nothing is evaluated
 * again. Same alerts, order, counting and errors as vg_state_process. */
int vg_state_apply(vg_state_t *st, const vg_state_input_t *in, const vg_alert_source_t *src,
                   vg_state_emit_fn emit, void *ctx, char *err, size_t err_size);

/* Moves every rule's clock to at least time_ms (epoch milliseconds), as
 * if an event of that time had arrived, firing absence alerts and
 * closing digests whose windows end at or before the new watermarks.
 * vigil never calls this on its own (an idle partition does not advance
 * time, see rules/README.md); it is there for an operator-chosen idle
 * policy. Returns the number of alerts or -1. */
int vg_state_advance(vg_state_t *st, int64_t time_ms, vg_state_emit_fn emit, void *ctx,
                     char *err, size_t err_size);

/* Emits every open digest as it stands (marked "partial":true) and
 * empties it. For the end of a finite input (`vigil scan`, `vigil test`);
 * the daemon keeps digests open across restarts instead. */
int vg_state_flush(vg_state_t *st, vg_state_emit_fn emit, void *ctx, char *err,
                   size_t err_size);

void vg_state_stats(const vg_state_t *st, vg_state_stats_t *out);
/* Per-rule counters, for metrics labelled by rule. false when rule has
 * no state here. */
bool vg_state_rule_stats(const vg_state_t *st, const vg_rule_t *rule, vg_state_stats_t *out);

/* The stateful rules this state keeps windows for (for per-rule metrics). */
size_t vg_state_rule_count(const vg_state_t *st);
const vg_rule_t *vg_state_rule(const vg_state_t *st, size_t i);

/* Serialises the whole state into a malloc'd buffer (*out, *len): a
 * versioned, checksummed binary image whose size is bounded by the rules'
 * max_keys. Returns 0, or -1 when out of memory. */
int vg_state_snapshot(const vg_state_t *st, char **out, size_t *len);

/* Replaces st's content with a snapshot. Rules are matched by id and by a
 * fingerprint of their stateful settings: the state of a rule that is gone
 * or whose settings changed is dropped (counted in *dropped_rules when not
 * NULL), so a reload never applies old windows to new rules. On a corrupt
 * or foreign image, returns -1 with a sentence in err and leaves st empty
 * (never crashes, never half-restores). */
int vg_state_restore(vg_state_t *st, const char *buf, size_t len, size_t *dropped_rules,
                     char *err, size_t err_size);

/* The state of st carried over to a reloaded ruleset rs (SIGHUP): a new
 * state for rs holding st's windows for every rule whose id and stateful
 * settings are unchanged (*dropped_rules counts the others). st is left
 * as it was. NULL with err when out of memory. */
vg_state_t *vg_state_rebuild(const vg_state_t *st, const vg_ruleset_t *rs,
                             const vg_state_options_t *opts, size_t *dropped_rules, char *err,
                             size_t err_size);

/* Parses an event time: RFC 3339 ("2024-05-01T09:12:00Z", fractions and
 * offsets allowed), a date "2024-05-01" (midnight UTC), or epoch seconds
 * (values of 100000000000 and above are milliseconds). true and *ms on
 * success. */
bool vg_state_parse_time(const char *s, size_t len, int64_t *ms);

#endif
