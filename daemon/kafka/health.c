/* The pipeline's metric families and what /healthz says. */
#include <stddef.h>
#include <stdio.h>

#include "monotime.h"
#include "pipeline_int.h"

/* No assignment for this long (from start-up, or since the last one was
 * revoked) makes /healthz fail. */
#define VG_ASSIGN_GRACE_S 30.0
/* Outputs waiting this long without any acknowledgement. */
#define VG_ACK_STALL_S 60.0
/* Deliveries (or, exactly-once, transactions) failing for this long. */
#define VG_DELIVERY_FAIL_S 5.0

/* Makes the rules' series exist at 0, so that rate() works from the
 * first alert on and a dashboard lists every rule. */
void vg_pl_health_note_ruleset(pipeline_t *p, const vg_ruleset_t *rs)
{
    if (!p->metrics)
        return;
    for (size_t i = 0; i < vg_ruleset_rule_count(rs); i++) {
        const vg_rule_t *r = vg_ruleset_rule(rs, i);
        const char *rule_sev[] = {vg_rule_id(r), vg_rule_severity(r)};
        vg_metric_add(p->m.rule_matches, rule_sev, 0);
        vg_metric_add(p->m.alerts_produced, rule_sev, 0);
        vg_metric_add(p->m.alerts_failed, rule_sev, 0);
    }
    vg_metric_set(p->m.rules_loaded, NULL, (double)vg_ruleset_rule_count(rs));
    vg_metric_replace(p->m.ruleset_info, (const char *[]){vg_ruleset_hash(rs)}, 1);
}

/* The pipeline's families, in the order /metrics lists them. */
typedef struct family {
    size_t field; /* offsetof(pipeline_metrics_t, ...) */
    vg_metric_type_t type;
    bool eos_only;
    const char *name, *help;
    const char *const *labels;
    size_t nlabels;
} family_t;

/* clang-format off */
#define FAMILY(f, type, name, help, labels, n) \
    {offsetof(pipeline_metrics_t, f), type, false, name, help, labels, n}
#define EOS_FAMILY(f, type, name, help, labels, n) \
    {offsetof(pipeline_metrics_t, f), type, true, name, help, labels, n}
#define LABELS(...) ((const char *const[]){__VA_ARGS__})
/* clang-format on */

static const family_t families[] = {
    FAMILY(build_info, VG_METRIC_GAUGE, "vigil_build_info", "vigil's version; always 1.",
           LABELS("version"), 1),
    FAMILY(up, VG_METRIC_GAUGE, "vigil_up", "1 while the daemon runs.", NULL, 0),
    FAMILY(consumed, VG_METRIC_COUNTER, "vigil_events_consumed_total",
           "Input messages consumed and evaluated or dead-lettered.", LABELS("topic"), 1),
    FAMILY(dead_lettered, VG_METRIC_COUNTER, "vigil_events_dead_lettered_total",
           "Input messages whose dead-letter copy the broker acknowledged (exactly-once: and "
           "committed), by reason.",
           LABELS("reason"), 1),
    FAMILY(decode_failures, VG_METRIC_COUNTER, "vigil_decode_failures_total",
           "Input messages that are not a JSON object within the size and depth limits.", NULL, 0),
    FAMILY(rule_matches, VG_METRIC_COUNTER, "vigil_rule_matches_total",
           "Events a rule matched (one alert each).", LABELS("rule"), 1),
    FAMILY(alerts_produced, VG_METRIC_COUNTER, "vigil_alerts_produced_total",
           "Alerts the broker acknowledged (exactly-once: and committed).",
           LABELS("rule", "severity"), 2),
    FAMILY(alerts_failed, VG_METRIC_COUNTER, "vigil_alerts_failed_total",
           "Alert deliveries that failed; each is produced again and its input stays "
           "uncommitted until one succeeds.",
           LABELS("rule", "severity"), 2),
    FAMILY(dead_letters_failed, VG_METRIC_COUNTER, "vigil_dead_letters_failed_total",
           "Dead-letter deliveries that failed; each is produced again.", NULL, 0),
    FAMILY(processing, VG_METRIC_HISTOGRAM, "vigil_processing_seconds",
           "Time from consuming an event to handing its alerts or dead-letter copy to the "
           "producer.",
           NULL, 0),
    FAMILY(consumer_lag, VG_METRIC_GAUGE, "vigil_consumer_lag",
           "Messages between a partition's committed offset and its end (librdkafka statistics, "
           "every 5 s).",
           LABELS("topic", "partition"), 2),
    FAMILY(assigned, VG_METRIC_GAUGE, "vigil_assigned_partitions",
           "Input partitions assigned to this instance.", NULL, 0),
    FAMILY(in_flight, VG_METRIC_GAUGE, "vigil_outputs_in_flight",
           "Alerts and dead-letter copies not yet acknowledged.", NULL, 0),
    FAMILY(ruleset_info, VG_METRIC_GAUGE, "vigil_ruleset_info",
           "Fingerprint of the loaded rules (alerts' \"ruleset\"); always 1.", LABELS("hash"), 1),
    FAMILY(rules_loaded, VG_METRIC_GAUGE, "vigil_rules_loaded", "Rules in the loaded ruleset.",
           NULL, 0),
    FAMILY(reloads, VG_METRIC_COUNTER, "vigil_reloads_total",
           "Rule reloads (SIGHUP) by result: ok, or failed (the old rules stay).", LABELS("result"),
           1),
    FAMILY(delivery_retries, VG_METRIC_COUNTER, "vigil_delivery_retries_total",
           "Failed alerts and dead-letter copies produced again (after a backoff).", NULL, 0),
    FAMILY(outputs_failing, VG_METRIC_GAUGE, "vigil_outputs_failing",
           "Outputs whose delivery failed and that are not acknowledged yet; consumption is "
           "paused while there are any.",
           NULL, 0),
    FAMILY(paused, VG_METRIC_GAUGE, "vigil_consumer_paused",
           "1 while fetching is paused (failing deliveries, too much in flight, or backoff after "
           "an aborted transaction).",
           NULL, 0),
    FAMILY(throttled, VG_METRIC_COUNTER, "vigil_fetch_throttled_total",
           "Short fetch pauses of flow control: enough consumed input was waiting for "
           "evaluation.",
           NULL, 0),
    FAMILY(skipped, VG_METRIC_COUNTER, "vigil_events_skipped_total",
           "Input messages not evaluated, by reason: tombstone (a null value), own_alert (it "
           "carries vigil's vigil-rule header; input.accept_alerts: true evaluates them).",
           LABELS("reason"), 1),
    FAMILY(permanent_errors, VG_METRIC_COUNTER, "vigil_output_permanent_errors_total",
           "Outputs that can never be delivered (output.on_permanent_error), by kind (alert, "
           "dead_letter, loss_record) and librdkafka error name.",
           LABELS("kind", "reason"), 2),
    EOS_FAMILY(transactions, VG_METRIC_COUNTER, "vigil_transactions_total",
               "Exactly-once transactions by result: committed, or aborted (input read again).",
               LABELS("result"), 1),
    EOS_FAMILY(txn_open, VG_METRIC_GAUGE, "vigil_transaction_open",
               "Exactly-once: 1 while a transaction is open (outputs not yet committed).", NULL, 0),
};

/* vigil_processing_seconds, seconds: from well under a millisecond (one
 * batch, no wait) to the seconds a stalled producer or a slow rule can
 * cost. */
static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5};

void vg_pl_health_register(pipeline_t *p)
{
    vg_metrics_t *r = p->metrics;
    pipeline_metrics_t *m = &p->m;
    if (!r)
        return;
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        const family_t *f = &families[i];
        vg_metric_t **slot = (vg_metric_t **)((char *)m + f->field);
        if (f->eos_only && !p->eos.on)
            continue;
        if (f->type == VG_METRIC_HISTOGRAM)
            *slot = vg_metrics_histogram(r, f->name, f->help, buckets,
                                         sizeof(buckets) / sizeof(buckets[0]));
        else if (f->type == VG_METRIC_GAUGE)
            *slot = vg_metrics_gauge(r, f->name, f->help, f->labels, f->nlabels);
        else
            *slot = vg_metrics_counter(r, f->name, f->help, f->labels, f->nlabels);
    }
    vg_metric_set(m->build_info, (const char *[]){VIGIL_VERSION}, 1);
    vg_metric_set(m->up, NULL, 1);
    for (size_t i = 0; i < p->cfg->input_topics.count; i++)
        vg_metric_add(m->consumed, (const char *[]){p->cfg->input_topics.items[i]}, 0);
    static const char *const reasons[] = {"too_large",    "invalid_utf8", "too_deep",
                                          "invalid_json", "not_object",   "eval_failed"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        vg_metric_add(m->dead_lettered, &reasons[i], 0);
    vg_metric_add(m->skipped, (const char *[]){"tombstone"}, 0);
    vg_metric_add(m->skipped, (const char *[]){"own_alert"}, 0);
    vg_metric_add(m->dead_lettered, (const char *[]){"undeliverable"}, 0);
    vg_metric_add(m->reloads, (const char *[]){"ok"}, 0);
    vg_metric_add(m->reloads, (const char *[]){"failed"}, 0);
    vg_metric_add(m->transactions, (const char *[]){"committed"}, 0);
    vg_metric_add(m->transactions, (const char *[]){"aborted"}, 0);
    vg_pl_health_note_ruleset(p, p->rs);
}

/* What consuming waits for, into out (see vg_pipeline_stats_t): brokers
 * until one has answered with metadata (a cached controller id; asking
 * does not block) and whenever librdkafka reported all of the consumer's
 * brokers down and none was seen up since; then partitions of the input
 * topics, which a missing topic never gets; nothing once some are
 * assigned. */
static void find_awaited(const pipeline_t *p, char *out, size_t size)
{
    out[0] = '\0';
    if (p->ledger.assigned > 0)
        return;
    if (!p->consumer || p->health.brokers_down_at[0] > 0 ||
        rd_kafka_controllerid(p->consumer, 0) < 0) {
        snprintf(out, size, "brokers");
        return;
    }
    size_t at = (size_t)snprintf(out, size, "partitions of ");
    const vg_strlist_t *t = &p->cfg->input_topics;
    for (size_t i = 0; i < t->count && at < size; i++)
        at += (size_t)snprintf(out + at, size - at, "%s%s", i ? ", " : "", t->items[i]);
}

/* Decides what /healthz says, from what only the main thread knows, and
 * what consuming waits for; about once a second (or now, with force). */
void vg_pl_health_publish(pipeline_t *p, bool force)
{
    health_t *h = &p->health;
    double now = vg_monotime();
    if (!force && now < h->next_publish)
        return;
    h->next_publish = now + 1.0;
    find_awaited(p, p->stats.awaiting, sizeof(p->stats.awaiting));
    if (!p->metrics)
        return;
    uint64_t acked = p->stats.alerts + p->stats.dead_lettered;
    if (p->out.outstanding == 0 || acked != h->acked_seen)
        h->ack_wait_since = now;
    h->acked_seen = acked;
    if (p->ledger.assigned > 0)
        h->unassigned_since = 0;
    else if (h->unassigned_since == 0)
        h->unassigned_since = now;
    vg_metric_set(p->m.assigned, NULL, (double)p->ledger.assigned);
    vg_metric_set(p->m.in_flight, NULL, (double)p->out.outstanding);
    vg_metric_set(p->m.outputs_failing, NULL, (double)p->out.failing);

    char why[512]; /* cut to 255 by the registry */
    const char *reason = why;
    /* The producer connects when it has something to send (librdkafka's
     * sparse connections), so while idle its brokers being down says
     * nothing; the consumer's always matter. */
    int down = h->brokers_down_at[0] > 0                             ? 0
               : h->brokers_down_at[1] > 0 && p->out.outstanding > 0 ? 1
                                                                     : -1;
    static const char *const client[] = {"consumer", "producer"};
    if (h->stopping)
        reason = "shutting down";
    else if (down >= 0)
        snprintf(why, sizeof(why), "%s: all brokers down (since %.0f s)", client[down],
                 now - h->brokers_down_at[down]);
    else if (p->ledger.assigned == 0 && now - h->unassigned_since > VG_ASSIGN_GRACE_S)
        snprintf(why, sizeof(why),
                 "no partitions assigned for %.0f s (consumer group %s): waiting for %s",
                 now - h->unassigned_since, p->cfg->group, p->stats.awaiting);
    else if (p->out.failing > 0 && now - p->out.failing_since > VG_DELIVERY_FAIL_S)
        snprintf(why, sizeof(why), "%llu outputs cannot be delivered (for %.0f s): %s",
                 (unsigned long long)p->out.failing, now - p->out.failing_since, p->out.last_error);
    else if (p->eos.failing_since > 0 && now - p->eos.failing_since > VG_DELIVERY_FAIL_S)
        snprintf(why, sizeof(why), "transactions aborted for %.0f s: %s",
                 now - p->eos.failing_since, p->out.last_error);
    else if (h->uncommitted_since > 0 && now - h->uncommitted_since > h->commit_stale_s)
        snprintf(why, sizeof(why), "no successful offset commit for %.0f s",
                 now - h->uncommitted_since);
    else if (p->out.outstanding > 0 && now - h->ack_wait_since > VG_ACK_STALL_S)
        snprintf(why, sizeof(why), "%llu outputs unacknowledged, none acknowledged for %.0f s",
                 (unsigned long long)p->out.outstanding, now - h->ack_wait_since);
    else
        reason = NULL;
    vg_metrics_set_health(p->metrics, reason);
}
