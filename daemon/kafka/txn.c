/* Exactly-once: alerts, dead-letter copies, state checkpoints and the
 * consumed offsets go into one Kafka transaction, committed every
 * exactly_once.commit_interval_ms or commit_max_events. A failed
 * transaction is aborted and its input read again from where it began,
 * after a backoff that grows while aborts go on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monotime.h"
#include "pipeline_int.h"
#include "vigil/log.h"

typedef struct txn_count {
    vg_metric_t *metric;
    char *labels[2]; /* as many as the metric has; the rest NULL */
    double n;
} txn_count_t;

/* Adds 1 to metric{labels} now, or (exactly-once) when the open
 * transaction commits. Out of memory: counted now. */
void vg_pl_txn_count(pipeline_t *p, vg_metric_t *metric, const char *const *labels, size_t nlabels)
{
    eos_t *x = &p->eos;
    if (!x->on) {
        vg_metric_add(metric, labels, 1);
        return;
    }
    for (size_t i = 0; i < x->ncounts; i++) {
        txn_count_t *c = &x->counts[i];
        bool same = c->metric == metric;
        for (size_t k = 0; same && k < nlabels; k++)
            same = strcmp(c->labels[k], labels[k]) == 0;
        if (same) {
            c->n++;
            return;
        }
    }
    if (x->ncounts == x->counts_cap) {
        size_t cap = x->counts_cap ? 2 * x->counts_cap : 8;
        txn_count_t *t = realloc(x->counts, cap * sizeof(*t));
        if (!t) {
            vg_metric_add(metric, labels, 1);
            return;
        }
        x->counts = t;
        x->counts_cap = cap;
    }
    txn_count_t c = {.metric = metric, .n = 1};
    bool ok = true;
    for (size_t k = 0; k < nlabels; k++)
        ok &= (c.labels[k] = strdup(labels[k])) != NULL;
    if (!ok) {
        free(c.labels[0]);
        free(c.labels[1]);
        vg_metric_add(metric, labels, 1);
        return;
    }
    x->counts[x->ncounts++] = c;
}

/* The transaction ended: its counts go to their metrics (committed) or
 * nowhere (aborted). */
void vg_pl_txn_counts_end(pipeline_t *p, bool committed)
{
    for (size_t i = 0; i < p->eos.ncounts; i++) {
        txn_count_t *c = &p->eos.counts[i];
        if (committed)
            vg_metric_add(c->metric, (const char *const *)c->labels, c->n);
        free(c->labels[0]);
        free(c->labels[1]);
    }
    p->eos.ncounts = 0;
}

/* Notes a fatal producer error (fenced by another instance with the same
 * transactional.id, or no longer authorised): the run ends. Takes e. */
static void txn_fatal(pipeline_t *p, const char *what, rd_kafka_error_t *e)
{
    rd_kafka_resp_err_t code = rd_kafka_error_code(e);
    const char *hint = "";
    if (code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
        code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH)
        hint = "; another producer uses the same transactional.id (two instances with one "
               "kafka.properties transactional.id, or the same group on one host?)";
    if (!p->fatal[0])
        snprintf(p->fatal, sizeof(p->fatal), "exactly-once: %s failed: %s (transactional.id %s)%s",
                 what, rd_kafka_error_string(e), p->eos.transactional_id, hint);
    vg_log(VG_LOG_ERROR, "msg=\"fatal transaction error; stopping\" detail=\"%s\"", p->fatal);
    rd_kafka_error_destroy(e);
}

void vg_pl_txn_begin(pipeline_t *p)
{
    if (p->eos.open || p->fatal[0])
        return;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(p->producer);
    if (e) {
        txn_fatal(p, "beginning a transaction", e);
        return;
    }
    p->eos.open = true;
    vg_metric_set(p->m.txn_open, NULL, 1);
    p->eos.started = vg_monotime();
    p->eos.events = 0;
    if (p->health.uncommitted_since == 0)
        p->health.uncommitted_since = p->eos.started;
}

/* Serves delivery reports until every output of the finished
 * transaction is reported (they all are, or are about to be). */
static void txn_settle(pipeline_t *p)
{
    double deadline = vg_monotime() + 30;
    while (p->out.outstanding > 0 && vg_monotime() < deadline)
        rd_kafka_poll(p->producer, 10);
}

/* Calls a transaction step again while it says it may be retried (it
 * goes on in the background meanwhile); returns its last error. */
static rd_kafka_error_t *txn_retry(pipeline_t *p, rd_kafka_error_t *(*step)(rd_kafka_t *, int))
{
    rd_kafka_error_t *e = NULL;
    for (int attempt = 0; attempt < 5; attempt++) {
        if (e)
            rd_kafka_error_destroy(e);
        e = step(p->producer, -1);
        if (!e || !rd_kafka_error_is_retriable(e))
            break;
        vg_log(VG_LOG_WARN, "msg=\"transaction step timed out; trying again\" err=\"%s\"",
               rd_kafka_error_string(e));
    }
    return e;
}

/* Seeks the consumer back to where the aborted transaction's partitions
 * are read again (l); any failure ends the run: going on would skip what
 * the aborted transaction held. */
static void txn_rewind(pipeline_t *p, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_error_t *se = rd_kafka_seek_partitions(p->consumer, l, 10000);
    for (int i = 0; !se && i < l->cnt; i++)
        if (l->elems[i].err) {
            snprintf(p->fatal, sizeof(p->fatal),
                     "exactly-once: cannot rewind %s [%d] to offset %lld after an abort: %s",
                     l->elems[i].topic, (int)l->elems[i].partition, (long long)l->elems[i].offset,
                     rd_kafka_err2str(l->elems[i].err));
            vg_log(VG_LOG_ERROR, "msg=\"%s\"", p->fatal);
        }
    if (se) {
        snprintf(p->fatal, sizeof(p->fatal),
                 "exactly-once: cannot rewind the input after an abort: %s",
                 rd_kafka_error_string(se));
        vg_log(VG_LOG_ERROR, "msg=\"%s\"", p->fatal);
        rd_kafka_error_destroy(se);
    }
}

/* Aborts the open transaction and rewinds each partition it read to
 * the first event it held, so those events are evaluated again. The
 * next transaction waits a backoff (consumption paused meanwhile) that
 * grows while aborts go on. */
void vg_pl_txn_abort(pipeline_t *p)
{
    eos_t *x = &p->eos;
    if (!x->open || p->fatal[0])
        return;
    rd_kafka_error_t *e = txn_retry(p, rd_kafka_abort_transaction);
    if (e) {
        txn_fatal(p, "aborting the transaction", e);
        return;
    }
    txn_settle(p);
    vg_pl_txn_counts_end(p, false);
    x->open = false;
    vg_metric_set(p->m.txn_open, NULL, 0);
    x->failed = false;
    double now = vg_monotime();
    if (x->failing_since == 0)
        x->failing_since = now;
    x->backoff = x->backoff * 2 > VG_RETRY_MAX_S ? VG_RETRY_MAX_S
                 : x->backoff < VG_RETRY_MIN_S   ? VG_RETRY_MIN_S
                                                 : x->backoff * 2;
    x->backoff_until = now + x->backoff;
    vg_metric_add(p->m.transactions, (const char *[]){"aborted"}, 1);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    PL_FOREACH_PART(p, pt)
    {
        if (pt->txn.dirty && pt->lp.assigned)
            rd_kafka_topic_partition_list_add(l, pt->lp.topic, pt->lp.partition)->offset =
                pt->fetch_next = vg_pl_state_rewind(p, pt);
        pt->txn.dirty = false;
    }
    vg_log(VG_LOG_WARN,
           "msg=\"transaction aborted; reading its input again\" partitions=%d "
           "retry_in_s=%.1f",
           l->cnt, x->backoff);
    if (l->cnt)
        txn_rewind(p, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* Sends the offsets after what the open transaction read, and commits
 * it. NULL, or the error that failed it. */
static rd_kafka_error_t *txn_send_and_commit(pipeline_t *p)
{
    rd_kafka_error_t *e = NULL;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    PL_FOREACH_PART(p, pt)
    if (pt->txn.dirty && pt->lp.assigned)
        rd_kafka_topic_partition_list_add(l, pt->lp.topic, pt->lp.partition)->offset = pt->txn.next;
    if (l->cnt) {
        rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(p->consumer);
        e = rd_kafka_send_offsets_to_transaction(p->producer, l, md, -1);
        rd_kafka_consumer_group_metadata_destroy(md);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return e ? e : txn_retry(p, rd_kafka_commit_transaction);
}

static void txn_committed(pipeline_t *p)
{
    txn_settle(p);
    vg_pl_txn_counts_end(p, true);
    vg_pl_state_txn_committed(p);
    p->eos.open = false;
    vg_metric_set(p->m.txn_open, NULL, 0);
    PL_FOREACH_PART(p, pt)
    pt->txn.dirty = false;
    p->health.uncommitted_since = 0;
    p->eos.failing_since = 0;
    p->eos.backoff = 0;
    vg_metric_add(p->m.transactions, (const char *[]){"committed"}, 1);
}

/* Evaluates everything consumed, then commits the open transaction with
 * the offsets after what it read; aborts it (and rewinds) when that
 * fails. */
void vg_pl_txn_commit(pipeline_t *p)
{
    vg_pl_finish_consumed(p);
    if (!p->eos.open || p->fatal[0])
        return;
    vg_pl_state_txn_checkpoints(p);
    if (p->eos.failed) {
        vg_pl_txn_abort(p);
        return;
    }
    rd_kafka_error_t *e = txn_send_and_commit(p);
    if (!e) {
        txn_committed(p);
        return;
    }
    if (rd_kafka_error_is_fatal(e)) {
        txn_fatal(p, "committing the transaction", e);
        return;
    }
    vg_log(VG_LOG_WARN, "msg=\"transaction failed\" err=\"%s\"", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    vg_pl_txn_abort(p);
}

/* Commits the open transaction once it is old or big enough. */
void vg_pl_txn_maybe_commit(pipeline_t *p)
{
    if (!p->eos.open)
        return;
    if (p->eos.failed || p->eos.events >= p->cfg->eos_commit_max_events ||
        vg_monotime() - p->eos.started >= p->cfg->eos_commit_interval_ms / 1000.0)
        vg_pl_txn_commit(p);
}
