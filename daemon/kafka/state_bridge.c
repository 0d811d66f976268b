/* The state bridge: stateful rules in the pipeline.
 *
 * The main thread feeds each message to its partition's state in
 * partition order (vg_partstates, include/vigil/partstates.h), right
 * where its stateless alerts are sent (vg_pl_state_feed_event, the one
 * place that hands events to the states); stateful alerts are outputs of
 * the same in-flight record, so its offset waits for them too. Each
 * partition's windows are saved to the checkpoint topic (checkpoint.h).
 * At-least-once: a checkpoint with NEXT = X is produced once every output
 * of the events before X is acknowledged, and the stored offset never
 * passes the NEXT of the last acknowledged checkpoint (the offset
 * ledger's gate, offsets.h). Exactly-once: each transaction carries a
 * checkpoint of every partition it read. Without stateful rules none of
 * this runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monotime.h"
#include "pipeline_int.h"
#include "vigil/alert.h"
#include "vigil/log.h"

/* A checkpoint record on its way to the broker (the delivery report's
 * opaque). */
typedef struct cpmsg {
    vg_pl_msg_kind_t kind; /* first (pipeline_int.h): VG_PL_MSG_CHECKPOINT */
    partition_t *pt;
    int64_t next;
} cpmsg_t;

bool vg_pl_state_on(const pipeline_t *p)
{
    return p->st.ps && vg_partstates_enabled(p->st.ps);
}

/* Creates the states, the checkpoint reader and the checkpoint topic
 * when rs has stateful rules (at start, or at a reload that brings the
 * first ones). */
int vg_pl_state_start(pipeline_t *p, const vg_ruleset_t *rs, char *err, size_t err_size)
{
    const vg_config_t *cfg = p->cfg;
    if (p->st.ps || !vg_ruleset_has_stateful(rs))
        return 0;
    char warn[512] = "";
    if (!p->opts->state_topic_ready &&
        vg_checkpoint_ensure_topic(p->consumer, cfg->state_topic, cfg->state_max_bytes, 30000, warn,
                                   sizeof(warn), err, err_size) != 0)
        return -1;
    if (warn[0])
        vg_log(VG_LOG_WARN, "msg=\"%s\"", warn);
    rd_kafka_conf_t *conf = vg_pl_client_conf(cfg, err, err_size);
    if (!conf)
        return -1;
    if (vg_pl_client_apply_props(conf, cfg, err, err_size) != 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    p->st.cpr = vg_checkpoint_new(conf, cfg->state_topic, cfg->group, err, err_size);
    if (!p->st.cpr)
        return -1;
    vg_partstates_options_t o = {.time_field = cfg->time_field,
                                 .limits = {cfg->max_event_bytes, cfg->max_event_depth},
                                 .checkpoint_events = cfg->state_events,
                                 .checkpoint_interval_s = cfg->state_interval_ms / 1000.0};
    p->st.ps = vg_partstates_new(rs, &o);
    if (!p->st.ps) {
        snprintf(err, err_size, "out of memory setting up the stateful rules");
        return -1;
    }
    p->st.sm = vg_state_metrics_new(p->metrics);
    if (p->metrics) {
        static const char *const result[] = {"result"};
        p->m.checkpoints = vg_metrics_counter(
            p->metrics, "vigil_state_checkpoints_total",
            "State checkpoints of input partitions by result: ok (on the broker), failed "
            "(produced again), too_large (over state.checkpoint_max_bytes: the partition's "
            "offset is not committed until one fits).",
            result, 1);
        static const char *const results[] = {"ok", "failed", "too_large"};
        for (size_t i = 0; i < 3; i++)
            vg_metric_add(p->m.checkpoints, &results[i], 0);
    }
    vg_log(VG_LOG_INFO,
           "msg=\"stateful rules on\" checkpoint_topic=%s checkpoint_interval_ms=%zu "
           "checkpoint_events=%zu",
           cfg->state_topic, cfg->state_interval_ms, cfg->state_events);
    return 0;
}

void vg_pl_state_stop(pipeline_t *p)
{
    vg_partstates_destroy(p->st.ps);
    vg_checkpoint_destroy(p->st.cpr);
    vg_state_metrics_destroy(p->st.sm);
    p->st.ps = NULL;
    p->st.cpr = NULL;
    p->st.sm = NULL;
    PL_FOREACH_PART(p, pt)
    {
        free(pt->cp.value);
        pt->cp.value = NULL;
    }
}

/* At-least-once: stores the offset after the acknowledged records, but
 * never past the NEXT of the last checkpoint the broker has, so a restart
 * resumes the windows from a checkpoint at or after the committed offset. */
static void state_store(pipeline_t *p, partition_t *pt)
{
    if (!p->eos.on)
        vg_pl_store(p, pt, vg_offsets_committable(&pt->lp, true));
}

/* Hands a checkpoint of pt to the producer (inside the open transaction
 * when exactly-once). Takes value. 0, or -1 when it was not produced. */
static int state_produce(pipeline_t *p, partition_t *pt, char *value, size_t len, int64_t next)
{
    char err[512];
    vg_state_metrics_checkpoint(p->st.sm, pt->lp.topic, pt->lp.partition, len);
    if (len > p->cfg->state_max_bytes) {
        free(value);
        vg_metric_add(p->m.checkpoints, (const char *[]){"too_large"}, 1);
        /* At most every 10 s: exactly-once may try it in each transaction. */
        double now = vg_monotime();
        if (now < p->st.too_large_log_at)
            return -1;
        p->st.too_large_log_at = now + 10;
        vg_log(VG_LOG_ERROR,
               "msg=\"state checkpoint too large; the partition's offset is not committed "
               "until one fits (lower the stateful rules' max_keys or raise "
               "state.checkpoint_max_bytes and the topic's max.message.bytes)\" topic=%s "
               "partition=%d bytes=%zu max_bytes=%zu",
               pt->lp.topic, (int)pt->lp.partition, len, p->cfg->state_max_bytes);
        return -1;
    }
    cpmsg_t *cm = malloc(sizeof(*cm));
    if (!cm) {
        free(value);
        vg_log(VG_LOG_ERROR, "msg=\"out of memory producing a state checkpoint\"");
        return -1;
    }
    *cm = (cpmsg_t){VG_PL_MSG_CHECKPOINT, pt, next};
    if (vg_checkpoint_produce(p->producer, p->cfg->state_topic, p->cfg->group, pt->lp.topic,
                              pt->lp.partition, value, len, cm, err, sizeof(err)) != 0) {
        free(cm);
        vg_metric_add(p->m.checkpoints, (const char *[]){"failed"}, 1);
        vg_log(VG_LOG_ERROR, "msg=\"%s\"", err);
        return -1;
    }
    p->st.cp_outstanding++;
    return 0;
}

/* At-least-once: produces pt's waiting checkpoint once every output of
 * the events before its NEXT is acknowledged (a copy: it stays waiting
 * until it is handed over). */
static void state_flush(pipeline_t *p, partition_t *pt)
{
    if (p->eos.on || !pt->cp.value || !pt->lp.assigned ||
        (pt->lp.head && pt->lp.head->offset < pt->cp.next))
        return;
    char *copy = malloc(pt->cp.len ? pt->cp.len : 1);
    if (!copy)
        return;
    memcpy(copy, pt->cp.value, pt->cp.len);
    size_t len = pt->cp.len;
    if (state_produce(p, pt, copy, len, pt->cp.next) == 0 || len > p->cfg->state_max_bytes) {
        free(pt->cp.value);
        pt->cp.value = NULL;
    }
}

/* At-least-once: records of pt left the ledger's queue; their offsets
 * are stored (up to the last checkpoint on the broker), and a checkpoint
 * waiting for them is produced. */
void vg_pl_state_acked(pipeline_t *p, partition_t *pt)
{
    state_store(p, pt);
    state_flush(p, pt);
}

/* Takes a checkpoint of pt when one is due (force: whenever anything
 * was processed since the last one); at-least-once it waits in pt until
 * it may be produced. */
static void state_checkpoint(pipeline_t *p, partition_t *pt, bool force)
{
    char *v = NULL;
    size_t len = 0;
    int64_t next = -1;
    int rc =
        vg_partstates_checkpoint(p->st.ps, pt->lp.topic, pt->lp.partition, force, &v, &len, &next);
    if (rc < 0)
        vg_log(VG_LOG_ERROR,
               "msg=\"out of memory taking a state checkpoint\" topic=%s "
               "partition=%d",
               pt->lp.topic, (int)pt->lp.partition);
    if (rc <= 0)
        return;
    free(pt->cp.value);
    pt->cp.value = v;
    pt->cp.len = len;
    pt->cp.next = next;
    state_flush(p, pt);
}

/* The delivery report of a checkpoint record. */
void vg_pl_state_dr(pipeline_t *p, const rd_kafka_message_t *m)
{
    cpmsg_t *cm = m->_private;
    if (!cm)
        return;
    partition_t *pt = cm->pt;
    p->st.cp_outstanding--;
    if (m->err) {
        bool purge =
            m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
        if (!purge) {
            vg_metric_add(p->m.checkpoints, (const char *[]){"failed"}, 1);
            vg_log(VG_LOG_ERROR,
                   "msg=\"state checkpoint not delivered%s\" topic=%s partition=%d err=\"%s\"",
                   p->eos.on ? "; the transaction will be aborted" : "; producing it again",
                   pt->lp.topic, (int)pt->lp.partition, rd_kafka_err2str(m->err));
        }
        if (p->eos.on) {
            p->eos.failed = p->eos.failed || !purge;
        } else if (!pt->cp.value && pt->lp.assigned &&
                   (pt->cp.value = malloc(m->len ? m->len : 1))) {
            /* No newer one waits: this one goes again. */
            memcpy(pt->cp.value, m->payload, m->len);
            pt->cp.len = m->len;
            pt->cp.next = cm->next;
        }
        free(cm);
        return;
    }
    vg_metric_add(p->m.checkpoints, (const char *[]){"ok"}, 1);
    if (!p->eos.on && pt->lp.assigned) {
        /* Exactly-once confirms with the commit of its transaction. */
        vg_partstates_confirm(p->st.ps, pt->lp.topic, pt->lp.partition, cm->next);
        vg_offsets_durable(&pt->lp, cm->next);
        state_store(p, pt);
    }
    free(cm);
}

/* Where a stateful alert goes: an output of the record of the event that
 * raised it. */
typedef struct state_emit_ctx {
    pipeline_t *p;
    vg_offsets_rec_t *f;
} state_emit_ctx_t;

static int state_emit(void *ctx, const vg_state_alert_t *a)
{
    state_emit_ctx_t *c = ctx;
    vg_pl_out_alert(c->p, c->f, a->rule, a->json, a->len, a->key);
    return 0;
}

/* Feeds message m (record f), evaluated as item it, to its partition's
 * state. A pool with options.stateful has left on it the stateful matches
 * and event times: they are applied without decoding the event again; an
 * item without them (a pool made before a reload brought the first
 * stateful rules) is decoded and evaluated here. Returns false when its
 * stateless alerts must not be sent (they were before). */
bool vg_pl_state_feed_event(pipeline_t *p, const rd_kafka_message_t *m, const vg_work_item_t *it,
                            vg_offsets_rec_t *f)
{
    if (!vg_pl_state_on(p))
        return true;
    state_emit_ctx_t c = {p, f};
    bool send = true;
    char err[256];
    int rc = it->times ? vg_partstates_apply(p->st.ps, it, state_emit, &c, &send, err, sizeof(err))
                       : vg_partstates_process(p->st.ps, &it->src, m->payload, m->len, state_emit,
                                               &c, &send, err, sizeof(err));
    if (rc < 0) {
        vg_log(VG_LOG_ERROR,
               "msg=\"stateful rules failed on an event\" topic=%s partition=%d "
               "offset=%lld err=\"%s\"",
               it->src.topic, (int)m->partition, (long long)m->offset, err);
        p->eos.failed = p->eos.failed || p->eos.on; /* exactly-once: read it again */
    }
    if (!p->eos.on)
        state_checkpoint(p, PL_PART(f), false);
    return send;
}

/* A new assignment: loads the checkpoints, restores each partition's
 * windows and sets where it starts reading (in parts). */
void vg_pl_state_assign(pipeline_t *p, rd_kafka_topic_partition_list_t *parts)
{
    if (!vg_pl_state_on(p) || parts->cnt == 0)
        return;
    char err[512];
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t ce = rd_kafka_committed(p->consumer, c, 30000);
    if (ce)
        vg_log(VG_LOG_WARN,
               "msg=\"cannot read the committed offsets; resuming from the state "
               "checkpoints\" err=\"%s\"",
               rd_kafka_err2str(ce));
    if (vg_checkpoint_load(p->st.cpr, 60000, err, sizeof(err)) != 0) {
        /* Starting empty would forget every window: stop instead. */
        snprintf(p->fatal, sizeof(p->fatal), "cannot read the stateful rules' checkpoints: %.400s",
                 err);
        vg_log(VG_LOG_ERROR, "msg=\"%s\"", p->fatal);
        rd_kafka_topic_partition_list_destroy(c);
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *e = &parts->elems[i];
        int64_t committed =
            !ce && !c->elems[i].err && c->elems[i].offset >= 0 ? c->elems[i].offset : -1;
        size_t len = 0;
        const char *v = vg_checkpoint_get(p->st.cpr, e->topic, e->partition, &len);
        vg_resume_plan_t plan;
        bool ok = vg_partstates_assign(p->st.ps, e->topic, e->partition, committed, v, len, &plan,
                                       err, sizeof(err)) == 0;
        if (!ok)
            vg_log(VG_LOG_ERROR,
                   "msg=\"state checkpoint unusable; the partition's windows "
                   "start empty\" topic=%s partition=%d err=\"%s\"",
                   e->topic, (int)e->partition, err);
        partition_t *pt = vg_pl_part(p, e->topic, e->partition, false);
        if (pt) {
            free(pt->cp.value);
            pt->cp.value = NULL;
            vg_offsets_restart(&pt->lp, ok && v, plan.state_from);
            pt->cp.txn_next = -1;
        }
        if (plan.start >= 0)
            e->offset = plan.start;
        vg_log(VG_LOG_INFO,
               "msg=\"partition state %s\" topic=%s partition=%d committed=%lld start=%lld "
               "emit_from=%lld",
               ok && v ? "restored" : "empty", e->topic, (int)e->partition, (long long)committed,
               (long long)plan.start, (long long)plan.emit_from);
    }
    rd_kafka_topic_partition_list_destroy(c);
}

/* At-least-once revocation or shutdown, after draining: a checkpoint of
 * each partition, on the broker before the final commit. */
void vg_pl_state_checkpoint_all(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts)
{
    if (!vg_pl_state_on(p) || p->eos.on)
        return;
    PL_FOREACH_PART(p, pt)
    {
        bool listed = !parts;
        for (int i = 0; parts && i < parts->cnt && !listed; i++)
            listed = parts->elems[i].partition == pt->lp.partition &&
                     strcmp(parts->elems[i].topic, pt->lp.topic) == 0;
        if (listed && pt->lp.assigned) {
            state_checkpoint(p, pt, true);
            state_flush(p, pt);
        }
    }
    double deadline = vg_monotime() + 30;
    while (p->st.cp_outstanding > 0 && vg_monotime() < deadline)
        rd_kafka_poll(p->producer, 50);
}

/* Drops the windows of revoked or lost partitions (after their commit). */
void vg_pl_state_revoked(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts)
{
    if (!p->st.ps)
        return;
    for (int i = 0; i < parts->cnt; i++) {
        const char *topic = parts->elems[i].topic;
        int32_t part = parts->elems[i].partition;
        vg_state_metrics_forget(p->st.sm, vg_partstates_state(p->st.ps, topic, part), topic, part);
        vg_partstates_revoke(p->st.ps, topic, part);
        partition_t *pt = vg_pl_part(p, topic, part, false);
        if (pt) {
            free(pt->cp.value);
            pt->cp.value = NULL;
            vg_offsets_forget_durable(&pt->lp);
        }
    }
}

/* Exactly-once, before the offsets join the transaction: a checkpoint of
 * each partition it read when one is due (state.checkpoint_*), so the
 * windows commit or abort with the offsets. A transaction without one
 * is safe: a restart or an abort goes back to the last committed
 * checkpoint and feeds the events after it to the state again without
 * sending their alerts (vg_checkpoint_plan), so windows are never counted
 * twice; the cadence only bounds that replay. A partition's first
 * transaction, a revocation and the shutdown always checkpoint. */
void vg_pl_state_txn_checkpoints(pipeline_t *p)
{
    if (!vg_pl_state_on(p) || p->eos.failed)
        return;
    PL_FOREACH_PART(p, pt)
    {
        if (!pt->txn.dirty || !pt->lp.assigned)
            continue;
        bool force = p->st.force_all || p->health.stopping || !pt->lp.durable_known;
        char *v = NULL;
        size_t len = 0;
        int64_t next = -1;
        int rc = vg_partstates_checkpoint(p->st.ps, pt->lp.topic, pt->lp.partition, force, &v, &len,
                                          &next);
        if (rc < 0 || (rc > 0 && state_produce(p, pt, v, len, next) != 0)) {
            if (!pt->lp.durable_known) {
                /* No older checkpoint to catch up from: committing these
                 * offsets would lose the windows built from their events
                 * at the next abort or restart. Abort instead (read
                 * again, with backoff) until a checkpoint fits. */
                vg_log(VG_LOG_ERROR,
                       "msg=\"no state checkpoint for the partition yet and this "
                       "one failed; aborting the transaction\" topic=%s partition=%d",
                       pt->lp.topic, (int)pt->lp.partition);
                p->eos.failed = true;
                return;
            }
            /* Committing without it is safe (a restart catches the
             * windows up silently from the older one), only slower. */
            vg_log(VG_LOG_WARN,
                   "msg=\"transaction committed without a state checkpoint\" "
                   "topic=%s partition=%d",
                   pt->lp.topic, (int)pt->lp.partition);
            continue;
        }
        if (rc > 0)
            pt->cp.txn_next = next;
    }
}

/* Exactly-once: the transaction committed; its checkpoints are durable. */
void vg_pl_state_txn_committed(pipeline_t *p)
{
    PL_FOREACH_PART(p, pt)
    {
        if (p->st.ps && pt->cp.txn_next >= 0) {
            vg_partstates_confirm(p->st.ps, pt->lp.topic, pt->lp.partition, pt->cp.txn_next);
            vg_offsets_durable(&pt->lp, pt->cp.txn_next);
        }
        pt->cp.txn_next = -1;
    }
}

/* Exactly-once: the transaction was aborted; pt's windows go back to its
 * last committed checkpoint. Returns the offset to read again from. */
int64_t vg_pl_state_rewind(pipeline_t *p, partition_t *pt)
{
    pt->cp.txn_next = -1;
    if (!vg_pl_state_on(p))
        return pt->txn.first;
    vg_resume_plan_t plan;
    char err[256];
    if (vg_partstates_rollback(p->st.ps, pt->lp.topic, pt->lp.partition, pt->txn.first, &plan, err,
                               sizeof(err)) != 0)
        vg_log(VG_LOG_ERROR,
               "msg=\"cannot roll the partition's windows back; they start "
               "empty\" topic=%s partition=%d err=\"%s\"",
               pt->lp.topic, (int)pt->lp.partition, err);
    return plan.start >= 0 ? plan.start : pt->txn.first;
}

/* From the main loop, every 100 ms: due checkpoints (an idle partition
 * too; a busy one is checkpointed as its events are processed), and the
 * state metrics about once a second. */
void vg_pl_state_tick(pipeline_t *p)
{
    if (!vg_pl_state_on(p))
        return;
    double now = vg_monotime();
    if (now < p->st.tick_at)
        return;
    p->st.tick_at = now + 0.1;
    bool publish = p->st.sm && now >= p->st.publish_at;
    if (publish)
        p->st.publish_at = now + 1.0;
    PL_FOREACH_PART(p, pt)
    {
        if (!pt->lp.assigned)
            continue;
        if (!p->eos.on) {
            state_checkpoint(p, pt, false);
            state_flush(p, pt);
        }
        if (publish)
            vg_state_metrics_publish(p->st.sm,
                                     vg_partstates_state(p->st.ps, pt->lp.topic, pt->lp.partition),
                                     pt->lp.topic, pt->lp.partition);
    }
}

/* A reload: the windows of unchanged rules carry over. -1 keeps the old
 * rules. */
int vg_pl_state_reload(pipeline_t *p, const vg_ruleset_t *nrs)
{
    char err[512];
    if (!p->st.ps) {
        if (vg_pl_state_start(p, nrs, err, sizeof(err)) != 0) {
            vg_log(VG_LOG_ERROR, "msg=\"cannot set up the stateful rules\" err=\"%s\"", err);
            vg_pl_state_stop(p);
            return -1;
        }
        if (p->st.ps && p->ledger.assigned)
            vg_log(VG_LOG_WARN, "msg=\"stateful rules added by a reload start with empty "
                                "windows in the partitions already assigned\"");
        return 0;
    }
    /* The series of removed rules go; the next state tick publishes
     * those of the new rules (or again the old, if the switch fails). */
    PL_FOREACH_PART(p, pt)
    if (p->st.sm && pt->lp.assigned)
        vg_state_metrics_forget_rules(p->st.sm,
                                      vg_partstates_state(p->st.ps, pt->lp.topic, pt->lp.partition),
                                      pt->lp.topic, pt->lp.partition);
    p->st.publish_at = 0;
    size_t dropped = 0;
    if (vg_partstates_set_ruleset(p->st.ps, nrs, &dropped, err, sizeof(err)) != 0) {
        vg_log(VG_LOG_ERROR, "msg=\"cannot carry the stateful rules' windows over\" err=\"%s\"",
               err);
        return -1;
    }
    if (dropped)
        vg_log(VG_LOG_INFO,
               "msg=\"windows of changed or removed stateful rules dropped\" "
               "rule_states=%zu",
               dropped);
    return 0;
}
