/* The stateful-rule states of the partitions one consumer owns, for the
 * pipeline's main thread: it feeds each consumed message to its
 * partition's vg_state_t in partition order (vg_partstates_apply: as the
 * workers of a pool with options.stateful decoded and evaluated it;
 * vg_partstates_process: decoding and evaluating it again), applies the resume plan of a
 * restored partition, and says when a checkpoint is due.
 *
 * Use from the pipeline (see include/vigil/checkpoint.h for the protocol):
 *
 *   assign:   vg_checkpoint_load(); for each partition
 *             vg_partstates_assign(ps, topic, part, committed,
 *                 vg_checkpoint_get(cp, topic, part, &len), len, &plan)
 *             and start reading at plan.start when it is >= 0;
 *   message:  vg_partstates_process(ps, &src, payload, len, emit, ctx,
 *                 &send_stateless, ...) in partition order; send the
 *             worker's stateless alerts only when send_stateless; emit
 *             receives the stateful alerts to send (as outputs of the same
 *             input offset, so the offset waits for them);
 *             then vg_partstates_checkpoint(ps, topic, part, false, ...)
 *             returns a checkpoint when one is due: keep it with that
 *             offset and produce it when everything before NEXT is acked
 *             (exactly-once: force one per partition into each
 *             transaction instead); vg_partstates_confirm() once it is
 *             acknowledged / its transaction committed;
 *   abort:    (exactly-once) vg_partstates_rollback() for each partition
 *             of the aborted transaction, then seek to plan.start;
 *   revoke:   after draining, vg_partstates_checkpoint(..., true, ...),
 *             produce, flush, commit; then vg_partstates_revoke();
 *   reload:   vg_partstates_set_ruleset() when nothing is in flight. */
#ifndef VIGIL_PARTSTATES_H
#define VIGIL_PARTSTATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vigil/alert.h"
#include "vigil/checkpoint_record.h"
#include "vigil/event.h"
#include "vigil/ruleset.h"
#include "vigil/state.h"
#include "vigil/workpool.h"

typedef struct vg_partstates vg_partstates_t;

typedef struct vg_partstates_options {
    const char *time_field;    /* default event-time field (input.time_field) */
    vg_event_limits_t limits;  /* of the decoder (0: defaults) */
    uint64_t checkpoint_events; /* a checkpoint after this many events of a partition (10000) */
    double checkpoint_interval_s; /* ... or this long after the last one (5 s) */
} vg_partstates_options_t;

/* NULL when out of memory. rs must outlive it (or be replaced with
 * vg_partstates_set_ruleset). opts may be NULL. */
vg_partstates_t *vg_partstates_new(const vg_ruleset_t *rs, const vg_partstates_options_t *opts);
void vg_partstates_destroy(vg_partstates_t *ps);

/* False when the ruleset has no enabled stateful rule: then nothing here
 * needs calling (process only says to send stateless alerts). */
bool vg_partstates_enabled(const vg_partstates_t *ps);

/* Takes (topic, partition) on: its state from the checkpoint record
 * cp[0..cp_len) (NULL: none), and *plan from the checkpoint's NEXT and the
 * committed offset (-1: none). A corrupt checkpoint: -1 with err, and the
 * partition starts empty (plan as without a checkpoint) so the caller may
 * go on after logging it. */
int vg_partstates_assign(vg_partstates_t *ps, const char *topic, int32_t partition,
                         int64_t committed, const char *cp, size_t cp_len,
                         vg_resume_plan_t *plan, char *err, size_t err_size);
/* Drops (topic, partition) (revoked or lost). */
void vg_partstates_revoke(vg_partstates_t *ps, const char *topic, int32_t partition);

/* One consumed message (src: topic, partition, offset, timestamp). Sets
 * *send_stateless. Returns the number of stateful alerts passed to emit,
 * or -1 with err (out of memory, emit failed). A message that is not a
 * JSON object is skipped (the stateless path dead-letters it). A partition
 * not assigned is assigned empty on the fly. */
int vg_partstates_process(vg_partstates_t *ps, const vg_alert_source_t *src, const char *payload,
                          size_t len, vg_state_emit_fn emit, void *ctx, bool *send_stateless,
                          char *err, size_t err_size);

/* The same for a message the workers have evaluated already: it is an
 * item of a finished batch of a pool with options.stateful (it->src the
 * message's topic, partition, offset and timestamp; it->event and
 * it->matches what the worker found), applied without decoding or
 * evaluating again. Call it in partition order, before the batch is
 * released. */
int vg_partstates_apply(vg_partstates_t *ps, const vg_work_item_t *it, vg_state_emit_fn emit,
                        void *ctx, bool *send_stateless, char *err, size_t err_size);

/* A checkpoint of (topic, partition) as of now: 1 with a malloc'd value
 * (*value, *len; give it to vg_checkpoint_produce) and *next, the offset it
 * lets commit; 0 when none is due (force: whenever anything was processed
 * since the last one); -1 when out of memory. */
int vg_partstates_checkpoint(vg_partstates_t *ps, const char *topic, int32_t partition,
                             bool force, char **value, size_t *len, int64_t *next);

/* The checkpoint with NEXT = next of (topic, partition) is durable (its
 * delivery was acknowledged, or its transaction committed): it becomes
 * the one vg_partstates_rollback returns to. */
void vg_partstates_confirm(vg_partstates_t *ps, const char *topic, int32_t partition,
                           int64_t next);

/* Exactly-once: the transaction was aborted, so the consumer goes back to
 * the committed offset and the state must go back with it (or events
 * would count twice). Restores (topic, partition) from its last confirmed
 * checkpoint (empty when there is none) and sets *plan as
 * vg_partstates_assign does. -1 with err when out of memory. */
int vg_partstates_rollback(vg_partstates_t *ps, const char *topic, int32_t partition,
                           int64_t committed, vg_resume_plan_t *plan, char *err,
                           size_t err_size);

/* Switches to a reloaded ruleset, carrying each partition's windows over
 * for unchanged rules (*dropped_rules: rule states dropped, summed). Only
 * when nothing is in flight. -1 with err when out of memory (the old
 * ruleset stays). */
int vg_partstates_set_ruleset(vg_partstates_t *ps, const vg_ruleset_t *rs, size_t *dropped_rules,
                              char *err, size_t err_size);

/* The state of a partition, or NULL (for metrics: vg_state_metrics_publish). */
const vg_state_t *vg_partstates_state(const vg_partstates_t *ps, const char *topic,
                                      int32_t partition);

#endif
