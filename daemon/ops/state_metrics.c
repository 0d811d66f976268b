/* Prometheus metrics of stateful rules (see include/vigil/state_metrics.h). */
#include "vigil/state_metrics.h"

#include <stdio.h>
#include <stdlib.h>

enum { M_KEYS, M_LATE, M_UNTIMED, M_EVICTED, M_KEYS_DROPPED, M_SUPPRESSED, M_ALERTS, M_N };

struct vg_state_metrics {
    vg_metric_t *f[M_N];
    vg_metric_t *checkpoint_bytes;
};

/* The per-rule families, in the order of the enum (which is the order
 * publish fills them in and the order they are registered and shown). */
static const struct {
    vg_metric_type_t type;
    const char *name, *help;
} families[M_N] = {
    [M_KEYS] = {VG_METRIC_GAUGE, "vigil_state_keys",
                "Keys (groups, values, windows) a stateful rule tracks."},
    [M_LATE] = {VG_METRIC_COUNTER, "vigil_state_late_events_total",
                "Events older than a stateful rule's watermark, dropped from its windows."},
    [M_UNTIMED] = {VG_METRIC_COUNTER, "vigil_state_untimed_events_total",
                   "Events without an event time before the rule had seen any time, skipped."},
    [M_EVICTED] = {VG_METRIC_COUNTER, "vigil_state_evicted_keys_total",
                   "Keys forgotten because a stateful rule reached its max_keys."},
    [M_KEYS_DROPPED] = {VG_METRIC_COUNTER, "vigil_state_dropped_group_keys_total",
                        "Group keys over the limit of 64 per event, not counted."},
    [M_SUPPRESSED] = {VG_METRIC_COUNTER, "vigil_state_throttled_alerts_total",
                      "Alerts held back by throttle."},
    [M_ALERTS] = {VG_METRIC_COUNTER, "vigil_state_alerts_total",
                  "Alerts raised by stateful rules."},
};

vg_state_metrics_t *vg_state_metrics_new(vg_metrics_t *m)
{
    if (!m)
        return NULL;
    vg_state_metrics_t *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return NULL;
    static const char *const labels[] = {"rule", "topic", "partition"};
    for (int i = 0; i < M_N; i++)
        sm->f[i] = families[i].type == VG_METRIC_GAUGE
                       ? vg_metrics_gauge(m, families[i].name, families[i].help, labels, 3)
                       : vg_metrics_counter(m, families[i].name, families[i].help, labels, 3);
    static const char *const cp_labels[] = {"topic", "partition"};
    sm->checkpoint_bytes =
        vg_metrics_gauge(m, "vigil_state_checkpoint_bytes",
                         "Size of the last state checkpoint of an input partition.", cp_labels, 2);
    for (int i = 0; i < M_N; i++)
        if (!sm->f[i]) {
            free(sm);
            return NULL;
        }
    return sm;
}

void vg_state_metrics_destroy(vg_state_metrics_t *sm) { free(sm); }

void vg_state_metrics_publish(vg_state_metrics_t *sm, const vg_state_t *st, const char *topic,
                              int32_t partition)
{
    if (!sm || !st)
        return;
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)partition);
    for (size_t i = 0; i < vg_state_rule_count(st); i++) {
        const vg_rule_t *r = vg_state_rule(st, i);
        vg_state_stats_t s;
        if (!vg_state_rule_stats(st, r, &s))
            continue;
        const char *values[] = {vg_rule_id(r), topic, part};
        const double v[M_N] = {(double)s.keys,    (double)s.late,         (double)s.untimed,
                               (double)s.evicted, (double)s.keys_dropped, (double)s.suppressed,
                               (double)s.alerts};
        for (int k = 0; k < M_N; k++)
            vg_metric_set(sm->f[k], values, v[k]);
    }
}

void vg_state_metrics_forget_rules(vg_state_metrics_t *sm, const vg_state_t *st,
                                   const char *topic, int32_t partition)
{
    if (!sm || !st)
        return;
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)partition);
    for (size_t i = 0; i < vg_state_rule_count(st); i++) {
        const char *values[] = {vg_rule_id(vg_state_rule(st, i)), topic, part};
        for (int k = 0; k < M_N; k++)
            vg_metric_remove(sm->f[k], values);
    }
}

void vg_state_metrics_forget(vg_state_metrics_t *sm, const vg_state_t *st, const char *topic,
                             int32_t partition)
{
    if (!sm)
        return;
    vg_state_metrics_forget_rules(sm, st, topic, partition);
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)partition);
    const char *cp_values[] = {topic, part};
    vg_metric_remove(sm->checkpoint_bytes, cp_values);
}

void vg_state_metrics_checkpoint(vg_state_metrics_t *sm, const char *topic, int32_t partition,
                                 size_t bytes)
{
    if (!sm)
        return;
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)partition);
    const char *values[] = {topic, part};
    vg_metric_set(sm->checkpoint_bytes, values, (double)bytes);
}
