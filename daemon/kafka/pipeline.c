/* The Kafka pipeline. One thread: poll the consumer, evaluate, produce,
 * serve delivery reports. Each input message gets an in-flight record
 * counting the outputs not yet acknowledged; records leave their
 * partition's queue in offset order, and only then is the offset stored
 * for commit (the offset ledger, offsets.h). A failed delivery is
 * produced again (after a backoff that grows while failures go on, with
 * consumption paused meanwhile), so a message's offset is never committed
 * before all its alerts are on the broker.
 *
 * With delivery: exactly-once the same loop runs inside Kafka
 * transactions instead: alerts, dead-letter copies and the consumed
 * offsets (rd_kafka_send_offsets_to_transaction, with the consumer's
 * group metadata: KIP-447) go into one transaction, committed every
 * exactly_once.commit_interval_ms or commit_max_events. A failed
 * transaction is aborted and its input read again from where it began.
 *
 * This file is the run loop: taking messages from the consumer into the
 * pool's batches, emitting what the workers evaluated, in consumption
 * order, and stopping. pipeline_int.h lists the other files. */
#include "vigil/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monotime.h"
#include "pipeline_int.h"
#include "vigil/alert.h"
#include "vigil/event.h"
#include "vigil/log.h"

/* ---- partitions and the offsets they may commit ---- */

partition_t *vg_pl_part(pipeline_t *p, const char *topic, int32_t partition, bool create)
{
    vg_offsets_part_t *lp = vg_offsets_part(&p->ledger, topic, partition, false);
    if (lp || !create)
        return (partition_t *)lp;
    partition_t *pt = (partition_t *)vg_offsets_part(&p->ledger, topic, partition, true);
    if (pt)
        pt->fetch_next = -1;
    return pt;
}

void vg_pl_store(pipeline_t *p, partition_t *pt, int64_t off)
{
    if (off < 0)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, pt->lp.topic, pt->lp.partition)->offset = off;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(p->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        vg_log(VG_LOG_WARN,
               "msg=\"cannot store offset\" topic=%s partition=%d offset=%lld err=\"%s\"",
               pt->lp.topic, (int)pt->lp.partition, (long long)off, rd_kafka_err2str(e));
        return;
    }
    vg_offsets_stored(&pt->lp, off);
    if (p->health.uncommitted_since == 0)
        p->health.uncommitted_since = vg_monotime();
}

void vg_pl_release(pipeline_t *p, vg_offsets_rec_t *f)
{
    partition_t *pt = PL_PART(f);
    /* Exactly-once: offsets go with the transaction, not to the store. */
    if (!vg_offsets_release(f) || p->eos.on)
        return;
    if (vg_pl_state_on(p)) {
        vg_pl_state_acked(p, pt);
        return;
    }
    vg_pl_store(p, pt, vg_offsets_committable(&pt->lp, false));
}

/* ---- emitting what was evaluated ---- */

static void dead_letter_item(pipeline_t *p, const vg_batch_t *b, const vg_work_item_t *it,
                             vg_offsets_rec_t *f)
{
    const rd_kafka_message_t *m = it->opaque;
    const char *kind = it->eval_failed ? "eval_failed" : vg_event_status_name(it->status);
    char reason[320];
    if (!it->eval_failed)
        vg_metric_add(p->m.decode_failures, NULL, 1);
    if (it->eval_failed)
        snprintf(reason, sizeof(reason), "eval_failed: %.*s", (int)it->err_len,
                 b->text + it->err_off);
    else
        snprintf(reason, sizeof(reason), "%s: %.*s", vg_event_status_name(it->status),
                 (int)it->err_len, b->text + it->err_off);
    vg_log(VG_LOG_WARN,
           "msg=\"dead-lettering event\" topic=%s partition=%d offset=%lld "
           "reason=\"%s\"",
           rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset, reason);
    vg_pl_out_dead_letter(p, m, f, kind, reason);
}

/* Why m is not evaluated, or NULL: a tombstone (a null value: a
 * deletion, not an event), or one of vigil's own alerts read back
 * (unless input.accept_alerts), which could otherwise raise alerts on
 * alerts without end. */
static const char *skip_reason(const pipeline_t *p, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t n;
    if (!m->payload)
        return "tombstone";
    if (!p->cfg->accept_alerts && rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, "vigil-rule", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return "own_alert";
    return NULL;
}

/* Acts on one evaluated message, in consumption order: its in-flight
 * record, then its alerts or its dead-letter copy (or nothing, when it
 * is skipped). */
static void emit_item(pipeline_t *p, const vg_batch_t *b, const vg_work_item_t *it)
{
    const rd_kafka_message_t *m = it->opaque;
    const char *topic = rd_kafka_topic_name(m->rkt);
    partition_t *pt = vg_pl_part(p, topic, m->partition, true);
    vg_offsets_rec_t *f = pt ? vg_offsets_track(&pt->lp, m->offset) : NULL;
    if (!f) {
        vg_log(VG_LOG_ERROR, "msg=\"out of memory\"");
        p->eos.failed = p->eos.on; /* exactly-once: read it again */
        return;
    }
    if (p->eos.on) {
        vg_pl_txn_begin(p);
        if (!pt->txn.dirty) {
            pt->txn.dirty = true;
            pt->txn.first = m->offset;
        }
        pt->txn.next = m->offset + 1;
        p->eos.events++;
    }
    p->stats.consumed++;
    vg_metric_add(p->m.consumed, (const char *[]){topic}, 1);
    const char *skip = skip_reason(p, m);
    if (skip) {
        vg_metric_add(p->m.skipped, (const char *[]){skip}, 1);
        vg_pl_release(p, f);
        return;
    }

    if (it->status != VG_EVENT_OK || it->eval_failed) {
        dead_letter_item(p, b, it, f);
        vg_pl_release(p, f);
        return;
    }
    /* Stateful rules see the event in partition order; their alerts are
     * outputs of f too. */
    size_t nalerts = vg_pl_state_feed_event(p, m, it, f) ? it->nalerts : 0;
    for (size_t k = 0; k < nalerts; k++) {
        const vg_work_alert_t *a = &b->alerts[it->first_alert + k];
        vg_pl_out_alert(p, f, a->rule, b->text + a->off, a->len, vg_rule_id(a->rule));
    }
    vg_pl_release(p, f);
}

/* The consume times of batch b (created when create is set); NULL
 * without metrics or memory. */
static batch_clock_t *batch_clock(pipeline_t *p, const vg_batch_t *b, bool create)
{
    if (!p->metrics)
        return NULL;
    /* Called for every event of the batch being filled: try the last one
     * found before searching. */
    if (p->clocks.hint < p->clocks.n && p->clocks.v[p->clocks.hint].batch == b)
        return &p->clocks.v[p->clocks.hint];
    for (size_t i = 0; i < p->clocks.n; i++)
        if (p->clocks.v[i].batch == b) {
            p->clocks.hint = i;
            return &p->clocks.v[i];
        }
    if (!create)
        return NULL;
    batch_clock_t *nc = realloc(p->clocks.v, (p->clocks.n + 1) * sizeof(*nc));
    if (!nc)
        return NULL;
    p->clocks.v = nc;
    nc[p->clocks.n] = (batch_clock_t){.batch = b};
    return &nc[p->clocks.n++];
}

static void note_consumed(pipeline_t *p, const vg_batch_t *b, size_t index)
{
    batch_clock_t *bc = batch_clock(p, b, true);
    if (!bc)
        return;
    if (index >= bc->cap) {
        size_t cap = bc->cap ? bc->cap * 2 : 256;
        while (cap <= index)
            cap *= 2;
        double *t = realloc(bc->consumed_at, cap * sizeof(*t));
        if (!t)
            return;
        /* Slots never written stay 0 and are not observed. */
        for (size_t i = bc->cap; i < cap; i++)
            t[i] = 0;
        bc->consumed_at = t;
        bc->cap = cap;
    }
    bc->consumed_at[index] = vg_monotime();
}

static void emit_batch(pipeline_t *p, vg_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        emit_item(p, b, &b->items[i]);
        rd_kafka_message_destroy(b->items[i].opaque);
        p->flow.held_bytes -= b->items[i].len;
    }
    batch_clock_t *bc = batch_clock(p, b, false);
    if (bc) {
        double now = vg_monotime();
        for (size_t i = 0; i < b->n && i < bc->cap; i++)
            if (bc->consumed_at[i] > 0) {
                vg_metric_observe(p->m.processing, now - bc->consumed_at[i]);
                bc->consumed_at[i] = 0;
            }
    }
    vg_workpool_release(p->pool, b);
}

/* Takes back finished batches; with wait, everything submitted. */
static void emit_done(pipeline_t *p, bool wait)
{
    vg_batch_t *b;
    while ((b = vg_workpool_next(p->pool, wait)))
        emit_batch(p, b);
}

static void submit_current(pipeline_t *p)
{
    if (p->cur && p->cur->n) {
        vg_workpool_submit(p->pool, p->cur);
        p->cur = NULL;
    }
}

void vg_pl_finish_consumed(pipeline_t *p)
{
    submit_current(p);
    emit_done(p, true);
}

/* Queues a consumed message for evaluation; takes ownership of m. */
static void enqueue(pipeline_t *p, rd_kafka_message_t *m)
{
    partition_t *pt = vg_pl_part(p, rd_kafka_topic_name(m->rkt), m->partition, true);
    if (pt) {
        pt->eof = false;
        pt->fetch_next = m->offset + 1;
    }
    rd_kafka_timestamp_type_t tstype;
    vg_alert_source_t src = {.topic = rd_kafka_topic_name(m->rkt),
                             .partition = m->partition,
                             .offset = m->offset,
                             .timestamp_ms = rd_kafka_message_timestamp(m, &tstype)};
    for (;;) {
        while (!p->cur && !(p->cur = vg_workpool_acquire(p->pool))) {
            vg_batch_t *b = vg_workpool_next(p->pool, true);
            if (b)
                emit_batch(p, b);
        }
        /* A skipped message is not evaluated (emit_item skips it). */
        size_t len = skip_reason(p, m) ? 0 : m->len;
        if (vg_batch_add(p->cur, len ? m->payload : "", len, &src, m)) {
            p->flow.held_bytes += len;
            note_consumed(p, p->cur, p->cur->n - 1);
            return;
        }
        submit_current(p);
    }
}

/* Makes the main loop's consumer poll return at once (from a worker that
 * finished a batch, or the reload thread). */
void vg_pl_wake(void *arg)
{
    pipeline_t *p = arg;
    pthread_mutex_lock(&p->wake.mu);
    if (p->wake.q)
        rd_kafka_queue_yield(p->wake.q);
    pthread_mutex_unlock(&p->wake.mu);
}

/* ---- the run ---- */

static bool all_done(pipeline_t *p)
{
    if (!p->ready || p->ledger.assigned == 0 || p->out.outstanding > 0 || p->eos.open ||
        (p->cur && p->cur->n) || vg_workpool_in_flight(p->pool) > 0)
        return false;
    PL_FOREACH_PART(p, pt)
    if (pt->lp.assigned && (!pt->eof || pt->lp.inflight))
        return false;
    return true;
}

/* Sets up matching and the clients; 0, or -1 with err. */
static int run_start(pipeline_t *p, char *err, size_t err_size)
{
    const vg_config_t *cfg = p->cfg;
    p->health.started = p->health.unassigned_since = vg_monotime();
    /* A commit is overdue after three auto-commit intervals, and never
     * sooner than a minute. */
    const char *aci = vg_config_property(cfg, "auto.commit.interval.ms");
    double interval_s = (aci ? strtod(aci, NULL) : 5000.0) / 1000.0;
    p->health.commit_stale_s = interval_s * 3 > 60 ? interval_s * 3 : 60;
    vg_pl_health_register(p);
    vg_pl_health_publish(p, true);
    vg_pl_flow_init(p);
    /* Small batches with nothing in flight (a stream well below
     * capacity) are evaluated here: at 5,000 events/s on 2 busy cores the
     * hand-offs to and from a worker took the p99 latency from ~7 ms to
     * 12-25 ms (tests/bench/bench_e2e.sh --server-broker). Batches there
     * hold ~7 events; at 8 one in twenty still went to a worker (p99
     * 55 ms in that run), at 32 one in 200 (8.6 ms). A backlog fills
     * batches of 256, which go to the workers as before. */
    vg_workpool_options_t wo = {.inline_max = 32,
                                .batches = VG_PIPELINE_BATCHES,
                                .on_done = vg_pl_wake,
                                .on_done_arg = p,
                                .workers = p->opts->workers,
                                .limits = {cfg->max_event_bytes, cfg->max_event_depth},
                                .time_field = cfg->time_field,
                                .omit_event = !cfg->include_event,
                                .max_matches = cfg->max_matches,
                                /* One pass per event: the workers find
                                 * the stateful matches, their keys and
                                 * the event times (state_bridge.c). */
                                .stateful = vg_ruleset_has_stateful(p->rs)};
    p->pool = vg_workpool_new(p->rs, &wo);
    if (!p->pool) {
        snprintf(err, err_size, "out of memory setting up matching");
        return -1;
    }
    if (vg_pl_client_setup(p, err, err_size) != 0 ||
        vg_pl_state_start(p, p->rs, err, err_size) != 0)
        return -1;
    vg_log(VG_LOG_INFO, "msg=\"started\" brokers=\"%s\" group=%s delivery=%s rules=%zu ruleset=%s",
           cfg->brokers, cfg->group, vg_delivery_name(cfg->delivery), vg_ruleset_rule_count(p->rs),
           vg_ruleset_hash(p->rs));
    return 0;
}

/* One message (or error) from the consumer, or none within the wait. */
static void poll_consumer(pipeline_t *p)
{
    /* While a batch is open, take what is already fetched and no more:
     * an idle stream must not hold events back. */
    bool filling = p->cur && p->cur->n;
    /* A worker that finishes a batch wakes this poll (vg_pl_wake); the
     * 1 ms is a fallback. Only an idle pipeline waits longer for input. */
    int wait_ms = filling ? 0 : vg_workpool_in_flight(p->pool) ? 1 : 100;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(p->consumer, wait_ms);
    if (!m) {
        submit_current(p);
        return;
    }
    if (!m->err) {
        enqueue(p, m); /* the batch owns it until it is emitted */
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        partition_t *pt = vg_pl_part(p, rd_kafka_topic_name(m->rkt), m->partition, false);
        if (pt)
            pt->eof = true;
    } else {
        vg_log(VG_LOG_WARN, "msg=\"consumer error\" err=\"%s\"", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
}

static void run_loop(pipeline_t *p, reloader_t *reloader)
{
    const vg_pipeline_opts_t *opts = p->opts;
    while (!*opts->stop) {
        vg_pl_reload_tick(p, reloader);
        poll_consumer(p);
        emit_done(p, false);
        rd_kafka_poll(p->producer, 0);
        vg_pl_out_retry_run(p);
        vg_pl_state_tick(p);
        if (p->eos.on)
            vg_pl_txn_maybe_commit(p);
        if (p->fatal[0])
            break;
        vg_pl_flow_update(p);
        if (opts->on_tick)
            opts->on_tick(opts->tick_arg, &p->stats);
        vg_pl_health_publish(p, false);
        if (opts->stop_at_eof && all_done(p))
            break;
    }
}

/* Drain: no more fetching; finish what was consumed, let every alert
 * land, commit, leave. */
static void run_stop(pipeline_t *p, reloader_t *reloader)
{
    p->health.stopping = true;
    vg_pl_health_publish(p, true);
    vg_pl_reload_finish(p, reloader);
    if (p->eos.on && !p->fatal[0]) {
        vg_pl_txn_commit(p);
    } else if (!p->eos.on) {
        vg_pl_finish_consumed(p);
        vg_log(VG_LOG_INFO, "msg=\"stopping\" outstanding=%llu",
               (unsigned long long)p->out.outstanding);
        rd_kafka_flush(p->producer, 30000);
        vg_pl_out_drain(p, 30000);
        vg_pl_state_checkpoint_all(p, NULL);
        if (p->out.outstanding)
            vg_log(VG_LOG_ERROR,
                   "msg=\"outputs still unacknowledged at exit; their inputs stay uncommitted\" "
                   "count=%llu",
                   (unsigned long long)p->out.outstanding);
        vg_pl_commit_final(p);
    }
    rd_kafka_consumer_close(p->consumer);
}

static void free_part(vg_offsets_part_t *lp)
{
    free(((partition_t *)lp)->cp.value);
}

/* Frees what the run holds (also after a failed start). */
static void run_free(pipeline_t *p)
{
    /* Messages still held by the pool belong to the consumer. */
    if (p->cur) {
        for (size_t i = 0; i < p->cur->n; i++)
            rd_kafka_message_destroy(p->cur->items[i].opaque);
        vg_workpool_release(p->pool, p->cur);
    }
    pthread_mutex_lock(&p->wake.mu);
    if (p->wake.q)
        rd_kafka_queue_destroy(p->wake.q);
    p->wake.q = NULL;
    pthread_mutex_unlock(&p->wake.mu);
    if (p->consumer)
        rd_kafka_destroy(p->consumer);
    if (p->producer) {
        /* Exactly-once: an open transaction left here (fatal error) is
         * aborted by the broker; nothing of it is committed. */
        if (p->eos.on) {
            rd_kafka_purge(p->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(p->producer, 0);
        }
        rd_kafka_destroy(p->producer);
    }
    vg_pl_txn_counts_end(p, false); /* of a transaction left open */
    free(p->eos.counts);
    vg_pl_out_free_retries(p);
    vg_pl_state_stop(p);
    vg_ruleset_destroy(p->rs_doomed);
    vg_offsets_clear(&p->ledger, free_part);
    vg_workpool_destroy(p->pool);
    pthread_mutex_destroy(&p->wake.mu);
    vg_ruleset_destroy(p->rs);
    for (size_t i = 0; i < p->clocks.n; i++)
        free(p->clocks.v[i].consumed_at);
    free(p->clocks.v);
}

int vg_pipeline_run(const vg_config_t *cfg, vg_ruleset_t *rules, const vg_pipeline_opts_t *opts,
                    vg_pipeline_stats_t *stats, char *err, size_t err_size)
{
    pipeline_t p = {.cfg = cfg,
                    .opts = opts,
                    .rs = rules,
                    .metrics = opts->metrics,
                    .eos.on = cfg->delivery == VG_DELIVERY_EXACTLY_ONCE};
    reloader_t reloader = {0};
    int rc = -1;
    vg_offsets_init(&p.ledger, sizeof(partition_t));
    pthread_mutex_init(&p.wake.mu, NULL);
    if (run_start(&p, err, err_size) == 0) {
        run_loop(&p, &reloader);
        run_stop(&p, &reloader);
        if (p.fatal[0])
            snprintf(err, err_size, "%s", p.fatal);
        else
            rc = 0;
    }
    run_free(&p);
    if (stats)
        *stats = p.stats;
    vg_log(VG_LOG_INFO,
           "msg=\"stopped\" consumed=%llu alerts=%llu dead_lettered=%llu delivery_retries=%llu",
           (unsigned long long)p.stats.consumed, (unsigned long long)p.stats.alerts,
           (unsigned long long)p.stats.dead_lettered, (unsigned long long)p.stats.delivery_retries);
    return rc;
}
