/* Prometheus metrics of stateful rules, per rule and input partition:
 * what the state counted (late and untimed events, evicted keys, dropped
 * group keys, throttled alerts, alerts) and how many keys it tracks. Key
 * eviction is never silent: vigil_state_evicted_keys_total says which
 * rule hit its max_keys, in which partition.
 *
 * The counters are the state's own, which survive restarts and partition
 * moves through checkpoints; a series is published by the instance that
 * owns the partition and removed (vg_state_metrics_forget) when it is
 * revoked. */
#ifndef VIGIL_STATE_METRICS_H
#define VIGIL_STATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/metrics.h"
#include "vigil/state.h"

typedef struct vg_state_metrics vg_state_metrics_t;

/* Registers the families in m. NULL when m is NULL or out of memory; every
 * function below accepts NULL and then does nothing. */
vg_state_metrics_t *vg_state_metrics_new(vg_metrics_t *m);
void vg_state_metrics_destroy(vg_state_metrics_t *sm);

/* Sets every series of (topic, partition) from st (call it now and then,
 * or after each batch: it takes the registry lock once per series). */
void vg_state_metrics_publish(vg_state_metrics_t *sm, const vg_state_t *st, const char *topic,
                              int32_t partition);
/* Removes the series of (topic, partition), e.g. when it is revoked. */
void vg_state_metrics_forget(vg_state_metrics_t *sm, const vg_state_t *st, const char *topic,
                             int32_t partition);
/* Removes only the per-rule series of (topic, partition), e.g. before a
 * reload replaces the rules. */
void vg_state_metrics_forget_rules(vg_state_metrics_t *sm, const vg_state_t *st,
                                   const char *topic, int32_t partition);
/* The size of the last checkpoint written for (topic, partition). */
void vg_state_metrics_checkpoint(vg_state_metrics_t *sm, const char *topic, int32_t partition,
                                 size_t bytes);

#endif
