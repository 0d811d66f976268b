/* The Kafka pipeline. One thread: poll the consumer, evaluate, produce,
 * serve delivery reports. Each input message gets an in-flight record
 * counting the outputs not yet acknowledged; records leave their
 * partition's queue in offset order, and only then is the offset stored
 * for commit. A failed delivery is produced again (after a backoff that
 * grows while failures go on, with consumption paused meanwhile), so a
 * message's offset is never committed before all its alerts are on the
 * broker.
 *
 * With delivery: exactly-once the same loop runs inside Kafka
 * transactions instead: alerts, dead-letter copies and the consumed
 * offsets (rd_kafka_send_offsets_to_transaction, with the consumer's
 * group metadata: KIP-447) go into one transaction, committed every
 * exactly_once.commit_interval_ms or commit_max_events. A failed
 * transaction is aborted and its input read again from where it began. */
#include "vigil/pipeline.h"

#include <errno.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "monotime.h"
#include "vigil/alert.h"
#include "checkpoint.h"
#include "vigil/event.h"
#include "vigil/log.h"
#include "vigil/metrics.h"
#include "vigil/partstates.h"
#include "vigil/scanner.h"
#include "vigil/state_metrics.h"
#include "vigil/workpool.h"

typedef struct partition partition_t;

typedef struct inflight {
    int64_t offset;
    int pending; /* outputs not yet acknowledged, +1 while processing */
    struct inflight *next;
    partition_t *part;
} inflight_t;

struct partition {
    char *topic;
    int32_t partition;
    inflight_t *head, *tail;
    bool assigned;
    bool eof;
    size_t inflight;
    /* The offset after the last message taken from the consumer, or
     * where a rewind sent the consumer; -1 unknown. Resuming seeks here
     * (see resume_fetching). */
    int64_t fetch_next;
    /* exactly-once: the open transaction holds events txn_first up to
     * txn_next - 1 of this partition (when txn_dirty). */
    bool txn_dirty;
    int64_t txn_first, txn_next;
    /* Stateful rules: a checkpoint waiting for the outputs of the events
     * before cp_next (at-least-once), the offset after the acknowledged
     * records, the NEXT of the last checkpoint on the broker (the stored
     * offset never passes it), the offset stored last, and the NEXT of
     * the checkpoint in the open transaction (exactly-once; -1 none).
     * cp_durable_known: a checkpoint of it is on the broker (acknowledged,
     * or exactly-once committed). */
    char *cp_value;
    size_t cp_len;
    int64_t cp_next;
    int64_t acked_next, cp_durable, stored_next, cp_txn_next;
    bool cp_durable_known;
    partition_t *next;
};

/* The metric families the pipeline updates (all NULL without a registry:
 * updating a NULL family does nothing). */
typedef struct pipeline_metrics {
    vg_metric_t *consumed, *dead_lettered, *decode_failures, *rule_matches;
    vg_metric_t *alerts_produced, *alerts_failed, *dead_letters_failed;
    vg_metric_t *processing, *consumer_lag, *assigned, *in_flight;
    vg_metric_t *ruleset_info, *rules_loaded, *reloads, *build_info, *up;
    vg_metric_t *delivery_retries, *outputs_failing, *paused, *throttled, *transactions, *txn_open;
    vg_metric_t *checkpoints;
} pipeline_metrics_t;

/* When each message of a batch was consumed, for vigil_processing_seconds
 * (a batch's items are indexed as it was filled). */
typedef struct batch_clock {
    const vg_batch_t *batch;
    double *consumed_at;
    size_t cap;
} batch_clock_t;

/* What /healthz is decided from; main thread only (the decision is
 * published to the registry, which the HTTP thread reads). Times are
 * CLOCK_MONOTONIC seconds, 0 for "never". */
typedef struct health {
    double started;
    double next_publish;
    double brokers_down_at[2]; /* "all brokers down" and none up since: consumer, producer */
    double uncommitted_since;  /* first offset stored after the last commit */
    double ack_wait_since;     /* outputs are waiting and none was acked since */
    double unassigned_since;   /* no partition assigned since (start-up counts) */
    uint64_t acked_seen;
    double commit_stale_s;
    bool stopping;
} health_t;

typedef struct outmsg outmsg_t;

typedef struct pipeline {
    const vg_config_t *cfg;
    const vg_pipeline_opts_t *opts;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    vg_ruleset_t *rs;
    vg_workpool_t *pool;
    vg_batch_t *cur; /* the batch being filled from the consumer */
    partition_t *parts;
    size_t assigned;
    uint64_t outstanding; /* outputs not yet acknowledged, all partitions */
    vg_pipeline_stats_t stats;
    bool ready;
    time_t last_dr_error_log;
    uint64_t dr_errors_suppressed;
    vg_metrics_t *metrics; /* NULL: no metrics */
    pipeline_metrics_t m;
    batch_clock_t *clocks;
    size_t nclocks, clock_hint;
    health_t health;

    /* At-least-once: failed deliveries waiting to be produced again. */
    outmsg_t *retry_head, *retry_tail;
    size_t retry_count;
    double retry_at;      /* when the next round is due (0: none scheduled) */
    double retry_backoff; /* seconds; doubles per round, reset by a success */
    uint64_t failing;     /* outputs that failed at least once, not yet acked */
    double failing_since;
    char last_error[160];
    /* Fetching is paused (paused: what librdkafka was told) while
     * deliveries fail or too much is in flight (held_back: logged, and the
     * vigil_consumer_paused gauge), and for flow control while enough
     * consumed input waits for evaluation (throttled: held_bytes of it). */
    bool paused, held_back, throttled;
    bool assignment_changed;
    size_t held_bytes, flow_high; /* resumes below flow_high / 4 */

    /* Exactly-once. */
    bool eos;
    bool txn_open;
    bool txn_failed; /* an output of the open transaction failed: abort it */
    double txn_started;
    size_t txn_events;
    double txn_backoff, txn_backoff_until;
    double txn_failing_since; /* first abort since the last commit */
    /* Outputs the broker acknowledged in the open transaction, counted in
     * their metrics only when it commits: an aborted one's never count. */
    struct txn_count *txn_counts;
    size_t ntxn_counts, txn_counts_cap;
    char transactional_id[256];
    char fatal[512]; /* set: the producer failed for good; the run ends */
    /* A reloaded ruleset the partition states still use after a failed
     * reload could not undo (out of memory); freed after them. */
    vg_ruleset_t *rs_doomed;

    /* Stateful rules (all NULL when the rules have none). */
    vg_partstates_t *ps;
    vg_checkpoint_t *cpr;
    vg_state_metrics_t *sm;
    uint64_t cp_outstanding; /* checkpoint records not yet reported */
    double state_publish_at, state_tick_at, cp_too_large_log_at;
    bool cp_force_all; /* exactly-once: the commit of a revocation checkpoints every partition */

    /* The consumer's queue, which a worker that finished a batch yields so
     * that the main thread's rd_kafka_consumer_poll returns and emits the
     * alerts at once, instead of at the end of its timeout. */
    pthread_mutex_t wake_mu;
    rd_kafka_queue_t *wake_q;
} pipeline_t;

/* Stateful rules (the section before setup()). */
static bool state_on(const pipeline_t *p);
static void state_store(pipeline_t *p, partition_t *pt);
static void state_flush(pipeline_t *p, partition_t *pt);
static void state_dr(pipeline_t *p, const rd_kafka_message_t *m);
static bool state_process(pipeline_t *p, const rd_kafka_message_t *m, inflight_t *f);
static void state_assign(pipeline_t *p, rd_kafka_topic_partition_list_t *parts);
static void state_checkpoint_all(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts);
static void state_revoked(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts);
static void state_txn_checkpoints(pipeline_t *p);
static void state_txn_committed(pipeline_t *p);
static int64_t state_rewind(pipeline_t *p, partition_t *pt);


/* ---- partitions and in-flight records ---- */

static partition_t *find_part(pipeline_t *p, const char *topic, int32_t partition, bool create)
{
    for (partition_t *pt = p->parts; pt; pt = pt->next)
        if (pt->partition == partition && strcmp(pt->topic, topic) == 0)
            return pt;
    if (!create)
        return NULL;
    partition_t *pt = calloc(1, sizeof(*pt));
    if (!pt)
        return NULL;
    pt->topic = strdup(topic);
    if (!pt->topic) {
        free(pt);
        return NULL;
    }
    pt->partition = partition;
    pt->fetch_next = -1;
    pt->next = p->parts;
    p->parts = pt;
    return pt;
}

/* Pops finished records from the head of the queue and stores the
 * offset after the last one, for the next commit. */
static void advance(pipeline_t *p, partition_t *pt)
{
    int64_t last = -1;
    while (pt->head && pt->head->pending == 0) {
        inflight_t *f = pt->head;
        last = f->offset;
        pt->head = f->next;
        if (!pt->head)
            pt->tail = NULL;
        pt->inflight--;
        free(f);
    }
    /* Exactly-once: offsets go with the transaction, not to the store. */
    if (last < 0 || !pt->assigned || p->eos)
        return;
    if (state_on(p)) {
        pt->acked_next = last + 1;
        state_store(p, pt); /* up to the last checkpoint on the broker */
        state_flush(p, pt);
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset = last + 1;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(p->consumer, l);
    if (!e && p->health.uncommitted_since == 0)
        p->health.uncommitted_since = vg_monotime();
    if (e)
        vg_log(VG_LOG_WARN, "msg=\"cannot store offset\" topic=%s partition=%d offset=%lld err=\"%s\"",
               pt->topic, (int)pt->partition, (long long)(last + 1), rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

static void release(pipeline_t *p, inflight_t *f)
{
    if (--f->pending == 0 && f->part->head == f)
        advance(p, f->part);
}

/* ---- producing ---- */

struct outmsg {
    inflight_t *origin;
    bool dead_letter;
    bool failed;        /* its delivery failed at least once (counted in p->failing) */
    const char *reason; /* dead letters: a static vg_event_status_name() or "eval_failed" */
    /* While waiting in the retry list: what to produce again (owned). */
    outmsg_t *next;
    char *topic;
    void *value, *key;
    size_t len, key_len;
    rd_kafka_headers_t *hdrs;
};

/* First wait before producing a failed output again, and the longest. */
#define VG_RETRY_MIN_S 0.1
#define VG_RETRY_MAX_S 10.0

/* Hands one message to the producer (value: malloc'ed, owned by
 * librdkafka on success, like hdrs). Waits while the producer queue is
 * full. Returns 0, or the error that refused it. */
static rd_kafka_resp_err_t produce(pipeline_t *p, const char *topic, void *value, size_t len,
                                   const void *key, size_t key_len, rd_kafka_headers_t *hdrs,
                                   outmsg_t *om)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(value, len),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_OPAQUE(om), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return e;
        /* Back-pressure: serve delivery reports until there is room. */
        rd_kafka_poll(p->producer, 100);
    }
}

/* Logs a failed delivery at most once a second, with how many were not
 * logged since. */
static void log_delivery_error(pipeline_t *p, const char *topic, rd_kafka_resp_err_t err)
{
    time_t now = time(NULL);
    snprintf(p->last_error, sizeof(p->last_error), "%s: %s", topic, rd_kafka_err2str(err));
    if (now == p->last_dr_error_log) {
        p->dr_errors_suppressed++;
        return;
    }
    if (p->eos)
        vg_log(VG_LOG_ERROR,
               "msg=\"delivery failed; the transaction will be aborted and its input read "
               "again\" topic=%s err=\"%s\" suppressed=%llu",
               topic, rd_kafka_err2str(err), (unsigned long long)p->dr_errors_suppressed);
    else
        vg_log(VG_LOG_ERROR,
               "msg=\"delivery failed; producing it again, input stays uncommitted\" topic=%s "
               "err=\"%s\" retry_in_s=%.1f waiting=%llu suppressed=%llu",
               topic, rd_kafka_err2str(err),
               p->retry_backoff > 0 ? p->retry_backoff : VG_RETRY_MIN_S,
               (unsigned long long)p->failing, (unsigned long long)p->dr_errors_suppressed);
    p->last_dr_error_log = now;
    p->dr_errors_suppressed = 0;
}

static void free_outmsg(outmsg_t *om)
{
    free(om->topic);
    free(om->value);
    free(om->key);
    if (om->hdrs)
        rd_kafka_headers_destroy(om->hdrs);
    free(om);
}

/* Puts om on the retry list with what to produce again; takes ownership
 * of value and hdrs (copies topic and key). When even that fails for
 * lack of memory, om's record stays pending for good: its offset (and
 * every later one of its partition) is never committed, and the input
 * is read again after a restart. */
static void retry_later(pipeline_t *p, outmsg_t *om, const char *topic, void *value, size_t len,
                        const void *key, size_t key_len, rd_kafka_headers_t *hdrs)
{
    double now = vg_monotime();
    if (!om->failed) {
        om->failed = true;
        if (p->failing++ == 0)
            p->failing_since = now;
    }
    om->topic = strdup(topic);
    om->value = value;
    om->len = len;
    om->key = key_len ? malloc(key_len) : NULL;
    om->key_len = key_len;
    om->hdrs = hdrs;
    om->next = NULL;
    if (!om->topic || (key_len && !om->key)) {
        vg_log(VG_LOG_ERROR, "msg=\"out of memory: an output cannot be queued again; its "
                             "input stays uncommitted until a restart\"");
        om->origin = NULL;
        free_outmsg(om);
        return;
    }
    if (key_len)
        memcpy(om->key, key, key_len);
    if (p->retry_tail)
        p->retry_tail->next = om;
    else
        p->retry_head = om;
    p->retry_tail = om;
    p->retry_count++;
    if (p->retry_backoff == 0)
        p->retry_backoff = VG_RETRY_MIN_S;
    if (p->retry_at == 0)
        p->retry_at = now + p->retry_backoff;
}

/* Produces the retry list again once its backoff has passed; each round
 * doubles the next backoff (up to VG_RETRY_MAX_S) until an output that
 * had failed is acknowledged. */
static void retry_run(pipeline_t *p)
{
    if (!p->retry_head || vg_monotime() < p->retry_at)
        return;
    outmsg_t *list = p->retry_head;
    p->retry_head = p->retry_tail = NULL;
    p->retry_count = 0;
    p->retry_at = 0;
    p->retry_backoff = p->retry_backoff * 2 > VG_RETRY_MAX_S ? VG_RETRY_MAX_S
                                                             : p->retry_backoff * 2;
    while (list) {
        outmsg_t *om = list;
        list = om->next;
        om->next = NULL;
        char *topic = om->topic;
        void *value = om->value;
        void *key = om->key;
        rd_kafka_headers_t *hdrs = om->hdrs;
        om->topic = om->value = om->key = NULL;
        om->hdrs = NULL;
        p->stats.delivery_retries++;
        vg_metric_add(p->m.delivery_retries, NULL, 1);
        rd_kafka_resp_err_t e = produce(p, topic, value, om->len, key, om->key_len, hdrs, om);
        if (e) {
            log_delivery_error(p, topic, e);
            retry_later(p, om, topic, value, om->len, key, om->key_len, hdrs);
        }
        free(topic);
        free(key);
    }
}

static void free_retries(pipeline_t *p)
{
    while (p->retry_head) {
        outmsg_t *om = p->retry_head;
        p->retry_head = om->next;
        free_outmsg(om);
    }
    p->retry_tail = NULL;
    p->retry_count = 0;
}
/* A header of a produced message as a string ("" when missing). The
 * labels of an alert's counters come from its headers rather than from
 * its rule, which a reload may have freed by the time it is acked. */
static const char *header_str(const rd_kafka_message_t *m, const char *name, char *buf,
                              size_t size)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t n;
    buf[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && v) {
        n = n < size - 1 ? n : size - 1;
        memcpy(buf, v, n);
        buf[n] = '\0';
    }
    return buf;
}

typedef struct txn_count {
    vg_metric_t *metric;
    char *labels[2]; /* as many as the metric has; the rest NULL */
    double n;
} txn_count_t;

/* Adds 1 to metric{labels} now, or (exactly-once) when the open
 * transaction commits. Out of memory: counted now. */
static void count_output(pipeline_t *p, vg_metric_t *metric, const char *const *labels,
                         size_t nlabels)
{
    if (!p->eos) {
        vg_metric_add(metric, labels, 1);
        return;
    }
    for (size_t i = 0; i < p->ntxn_counts; i++) {
        txn_count_t *c = &p->txn_counts[i];
        bool same = c->metric == metric;
        for (size_t k = 0; same && k < nlabels; k++)
            same = strcmp(c->labels[k], labels[k]) == 0;
        if (same) {
            c->n++;
            return;
        }
    }
    if (p->ntxn_counts == p->txn_counts_cap) {
        size_t cap = p->txn_counts_cap ? 2 * p->txn_counts_cap : 8;
        txn_count_t *t = realloc(p->txn_counts, cap * sizeof(*t));
        if (!t) {
            vg_metric_add(metric, labels, 1);
            return;
        }
        p->txn_counts = t;
        p->txn_counts_cap = cap;
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
    p->txn_counts[p->ntxn_counts++] = c;
}

/* The transaction ended: its counts go to their metrics (committed) or
 * nowhere (aborted). */
static void txn_counts_end(pipeline_t *p, bool committed)
{
    for (size_t i = 0; i < p->ntxn_counts; i++) {
        txn_count_t *c = &p->txn_counts[i];
        if (committed)
            vg_metric_add(c->metric, (const char *const *)c->labels, c->n);
        free(c->labels[0]);
        free(c->labels[1]);
    }
    p->ntxn_counts = 0;
}

static void count_delivery(pipeline_t *p, const rd_kafka_message_t *m, const outmsg_t *om)
{
    if (!p->metrics)
        return;
    if (om->dead_letter) {
        if (m->err)
            vg_metric_add(p->m.dead_letters_failed, NULL, 1);
        else
            count_output(p, p->m.dead_lettered, (const char *[]){om->reason}, 1);
        return;
    }
    char rule[256], severity[32];
    const char *labels[] = {header_str(m, "vigil-rule", rule, sizeof(rule)),
                            header_str(m, "vigil-severity", severity, sizeof(severity))};
    if (m->err)
        vg_metric_add(p->m.alerts_failed, labels, 1);
    else
        count_output(p, p->m.alerts_produced, labels, 2);
}

/* An output is done with: acknowledged, or (exactly-once) failed or
 * purged with its transaction. */
static void output_done(pipeline_t *p, outmsg_t *om)
{
    if (om->failed && --p->failing == 0)
        p->failing_since = 0;
    p->outstanding--;
    inflight_t *f = om->origin;
    free(om);
    release(p, f);
}

static bool purged(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR__PURGE_QUEUE || e == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    pipeline_t *p = opaque;
    outmsg_t *om = m->_private;
    (void)rk;
    if (!om)
        return;
    if (p->ps && strcmp(rd_kafka_topic_name(m->rkt), p->cfg->state_topic) == 0) {
        state_dr(p, m);
        return;
    }
    if (!purged(m->err))
        count_delivery(p, m, om);
    if (m->err && p->eos) {
        /* Its transaction is doomed: it is aborted and its input read
         * again. Purged messages belong to an abort already under way. */
        if (!purged(m->err)) {
            p->txn_failed = true;
            log_delivery_error(p, rd_kafka_topic_name(m->rkt), m->err);
        }
        output_done(p, om);
        return;
    }
    if (m->err) {
        /* Not acknowledged: send it again so the input offset can never be
         * committed past an alert the broker does not have. */
        if (!om->failed && p->failing++ == 0)
            p->failing_since = vg_monotime();
        om->failed = true;
        log_delivery_error(p, rd_kafka_topic_name(m->rkt), m->err);
        void *copy = malloc(m->len ? m->len : 1);
        rd_kafka_headers_t *h = NULL, *hc = NULL;
        if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
            hc = rd_kafka_headers_copy(h);
        if (copy && m->len)
            memcpy(copy, m->payload, m->len);
        if (!copy) {
            if (hc)
                rd_kafka_headers_destroy(hc);
            vg_log(VG_LOG_ERROR, "msg=\"out of memory: an output cannot be queued again; its "
                                 "input stays uncommitted until a restart\"");
            free(om);
            return;
        }
        retry_later(p, om, rd_kafka_topic_name(m->rkt), copy, m->len, m->key, m->key_len, hc);
        return;
    }
    if (om->dead_letter)
        p->stats.dead_lettered++;
    else
        p->stats.alerts++;
    /* An acknowledgement is news from a broker: the producer is connected. */
    p->health.brokers_down_at[1] = 0;
    if (om->failed)
        p->retry_backoff = 0; /* deliveries work again */
    output_done(p, om);
}

static rd_kafka_headers_t *source_headers(const rd_kafka_message_t *m, const char *error)
{
    rd_kafka_headers_t *orig = NULL;
    rd_kafka_headers_t *h = rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR
                                ? rd_kafka_headers_copy(orig)
                                : rd_kafka_headers_new(5);
    char buf[32];
    rd_kafka_header_add(h, "vigil-error", -1, error, -1);
    rd_kafka_header_add(h, "vigil-source-topic", -1, rd_kafka_topic_name(m->rkt), -1);
    snprintf(buf, sizeof(buf), "%d", (int)m->partition);
    rd_kafka_header_add(h, "vigil-source-partition", -1, buf, -1);
    snprintf(buf, sizeof(buf), "%lld", (long long)m->offset);
    rd_kafka_header_add(h, "vigil-source-offset", -1, buf, -1);
    return h;
}

/* Produces one output (a copy of data) on behalf of in-flight record f:
 * f stays pending until the broker acknowledges it. Takes ownership of
 * hdrs. kind holds the dead-letter flag and reason (a static name, for
 * metrics). Exactly-once: the output joins the open transaction (begun
 * by the caller). */
static void send_output(pipeline_t *p, inflight_t *f, const outmsg_t *kind, const char *topic,
                        const void *data, size_t len, const void *key, size_t key_len,
                        rd_kafka_headers_t *hdrs)
{
    outmsg_t *om = malloc(sizeof(*om));
    void *copy = malloc(len ? len : 1);
    f->pending++;
    if (!om || !copy) {
        /* The record stays pending: this input is never committed. */
        free(om);
        free(copy);
        rd_kafka_headers_destroy(hdrs);
        vg_log(VG_LOG_ERROR, "msg=\"out of memory producing to %s\"", topic);
        return;
    }
    if (len)
        memcpy(copy, data, len);
    *om = *kind;
    om->origin = f;
    p->outstanding++;
    rd_kafka_resp_err_t e = produce(p, topic, copy, len, key, key_len, hdrs, om);
    if (!e)
        return;
    if (!p->eos) {
        om->failed = true;
        if (p->failing++ == 0)
            p->failing_since = vg_monotime();
    }
    log_delivery_error(p, topic, e);
    if (p->eos) {
        free(copy);
        rd_kafka_headers_destroy(hdrs);
        p->txn_failed = true;
        output_done(p, om);
        return;
    }
    retry_later(p, om, topic, copy, len, key, key_len, hdrs);
}

static void dead_letter(pipeline_t *p, const rd_kafka_message_t *m, inflight_t *f,
                        const char *kind, const char *reason)
{
    outmsg_t dl = {.dead_letter = true, .reason = kind};
    send_output(p, f, &dl, p->cfg->dead_letter_topic, m->payload, m->len, m->key, m->key_len,
                source_headers(m, reason));
}

static void txn_begin(pipeline_t *p);

/* Acts on one evaluated message, in consumption order: its in-flight
 * record, then its alerts or its dead-letter copy. */
static void emit_item(pipeline_t *p, const vg_batch_t *b, const vg_work_item_t *it)
{
    const rd_kafka_message_t *m = it->opaque;
    const char *topic = rd_kafka_topic_name(m->rkt);
    partition_t *pt = find_part(p, topic, m->partition, true);
    inflight_t *f = calloc(1, sizeof(*f));
    if (!pt || !f) {
        free(f);
        vg_log(VG_LOG_ERROR, "msg=\"out of memory\"");
        p->txn_failed = p->eos; /* exactly-once: read it again */
        return;
    }
    if (p->eos) {
        txn_begin(p);
        if (!pt->txn_dirty) {
            pt->txn_dirty = true;
            pt->txn_first = m->offset;
        }
        pt->txn_next = m->offset + 1;
        p->txn_events++;
    }
    f->offset = m->offset;
    f->pending = 1;
    f->part = pt;
    if (pt->tail)
        pt->tail->next = f;
    else
        pt->head = f;
    pt->tail = f;
    pt->inflight++;
    p->stats.consumed++;
    vg_metric_add(p->m.consumed, (const char *[]){topic}, 1);

    if (it->status != VG_EVENT_OK || it->eval_failed) {
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
        vg_log(VG_LOG_WARN, "msg=\"dead-lettering event\" topic=%s partition=%d offset=%lld "
                            "reason=\"%s\"",
               topic, (int)m->partition, (long long)m->offset, reason);
        dead_letter(p, m, f, kind, reason);
        release(p, f);
        return;
    }
    /* Stateful rules see the event in partition order; their alerts are
     * outputs of f too. */
    size_t nalerts = state_process(p, m, f) ? it->nalerts : 0;
    for (size_t k = 0; k < nalerts; k++) {
        const vg_work_alert_t *a = &b->alerts[it->first_alert + k];
        const vg_rule_t *r = a->rule;
        vg_metric_add(p->m.rule_matches, (const char *[]){vg_rule_id(r)}, 1);
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, "vigil-rule", -1, vg_rule_id(r), -1);
        rd_kafka_header_add(h, "vigil-severity", -1, vg_rule_severity(r), -1);
        const char *out = vg_rule_topic(r) ? vg_rule_topic(r) : p->cfg->output_topic;
        const char *key = vg_rule_id(r);
        outmsg_t alert = {0};
        send_output(p, f, &alert, out, b->text + a->off, a->len, key, strlen(key), h);
    }
    release(p, f);
}

/* The consume times of batch b (created when create is set); NULL
 * without metrics or memory. */
static batch_clock_t *batch_clock(pipeline_t *p, const vg_batch_t *b, bool create)
{
    if (!p->metrics)
        return NULL;
    /* Called for every event of the batch being filled: try the last one
     * found before searching. */
    if (p->clock_hint < p->nclocks && p->clocks[p->clock_hint].batch == b)
        return &p->clocks[p->clock_hint];
    for (size_t i = 0; i < p->nclocks; i++)
        if (p->clocks[i].batch == b) {
            p->clock_hint = i;
            return &p->clocks[i];
        }
    if (!create)
        return NULL;
    batch_clock_t *nc = realloc(p->clocks, (p->nclocks + 1) * sizeof(*nc));
    if (!nc)
        return NULL;
    p->clocks = nc;
    nc[p->nclocks] = (batch_clock_t){.batch = b};
    return &nc[p->nclocks++];
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
        p->held_bytes -= b->items[i].len;
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

/* Evaluates and emits everything consumed so far. */
static void finish_consumed(pipeline_t *p)
{
    submit_current(p);
    emit_done(p, true);
}

/* Queues a consumed message for evaluation; takes ownership of m. */
static void enqueue(pipeline_t *p, rd_kafka_message_t *m)
{
    partition_t *pt = find_part(p, rd_kafka_topic_name(m->rkt), m->partition, true);
    if (pt) {
        pt->eof = false;
        pt->fetch_next = m->offset + 1;
    }
    rd_kafka_timestamp_type_t tstype;
    vg_alert_source_t src = {.topic = rd_kafka_topic_name(m->rkt), .partition = m->partition,
                             .offset = m->offset,
                             .timestamp_ms = rd_kafka_message_timestamp(m, &tstype)};
    for (;;) {
        while (!p->cur && !(p->cur = vg_workpool_acquire(p->pool))) {
            vg_batch_t *b = vg_workpool_next(p->pool, true);
            if (b)
                emit_batch(p, b);
        }
        if (vg_batch_add(p->cur, m->payload, m->len, &src, m)) {
            p->held_bytes += m->len;
            note_consumed(p, p->cur, p->cur->n - 1);
            return;
        }
        submit_current(p);
    }
}

/* ---- rebalancing ---- */

static void drain(pipeline_t *p, int timeout_ms)
{
    double deadline = vg_monotime() + timeout_ms / 1000.0;
    while (p->outstanding > 0 && vg_monotime() < deadline) {
        rd_kafka_poll(p->producer, 50);
        retry_run(p);
    }
}

/* ---- exactly-once: transactions ---- */

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
                 what, rd_kafka_error_string(e), p->transactional_id, hint);
    vg_log(VG_LOG_ERROR, "msg=\"fatal transaction error; stopping\" detail=\"%s\"", p->fatal);
    rd_kafka_error_destroy(e);
}

static void txn_begin(pipeline_t *p)
{
    if (p->txn_open || p->fatal[0])
        return;
    rd_kafka_error_t *e = rd_kafka_begin_transaction(p->producer);
    if (e) {
        txn_fatal(p, "beginning a transaction", e);
        return;
    }
    p->txn_open = true;
    vg_metric_set(p->m.txn_open, NULL, 1);
    p->txn_started = vg_monotime();
    p->txn_events = 0;
    if (p->health.uncommitted_since == 0)
        p->health.uncommitted_since = p->txn_started;
}

/* Serves delivery reports until every output of the finished
 * transaction is reported (they all are, or are about to be). */
static void txn_settle(pipeline_t *p)
{
    double deadline = vg_monotime() + 30;
    while (p->outstanding > 0 && vg_monotime() < deadline)
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

/* Aborts the open transaction and rewinds each partition it read to
 * the first event it held, so those events are evaluated again. The
 * next transaction waits a backoff (consumption paused meanwhile) that
 * grows while aborts go on. */
static void txn_abort(pipeline_t *p)
{
    if (!p->txn_open || p->fatal[0])
        return;
    rd_kafka_error_t *e = txn_retry(p, rd_kafka_abort_transaction);
    if (e) {
        txn_fatal(p, "aborting the transaction", e);
        return;
    }
    txn_settle(p);
    txn_counts_end(p, false);
    p->txn_open = false;
    vg_metric_set(p->m.txn_open, NULL, 0);
    p->txn_failed = false;
    double now = vg_monotime();
    if (p->txn_failing_since == 0)
        p->txn_failing_since = now;
    p->txn_backoff = p->txn_backoff * 2 > VG_RETRY_MAX_S   ? VG_RETRY_MAX_S
                     : p->txn_backoff < VG_RETRY_MIN_S ? VG_RETRY_MIN_S
                                                         : p->txn_backoff * 2;
    p->txn_backoff_until = now + p->txn_backoff;
    vg_metric_add(p->m.transactions, (const char *[]){"aborted"}, 1);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (partition_t *pt = p->parts; pt; pt = pt->next) {
        if (pt->txn_dirty && pt->assigned)
            rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset =
                pt->fetch_next = state_rewind(p, pt);
        pt->txn_dirty = false;
    }
    vg_log(VG_LOG_WARN, "msg=\"transaction aborted; reading its input again\" partitions=%d "
                        "retry_in_s=%.1f",
           l->cnt, p->txn_backoff);
    if (l->cnt) {
        rd_kafka_error_t *se = rd_kafka_seek_partitions(p->consumer, l, 10000);
        for (int i = 0; !se && i < l->cnt; i++)
            if (l->elems[i].err) {
                /* Going on would skip what the aborted transaction held. */
                snprintf(p->fatal, sizeof(p->fatal),
                         "exactly-once: cannot rewind %s [%d] to offset %lld after an abort: %s",
                         l->elems[i].topic, (int)l->elems[i].partition,
                         (long long)l->elems[i].offset, rd_kafka_err2str(l->elems[i].err));
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
    rd_kafka_topic_partition_list_destroy(l);
}

/* Evaluates everything consumed, then commits the open transaction with
 * the offsets after what it read; aborts it (and rewinds) when that
 * fails. */
static void txn_commit(pipeline_t *p)
{
    finish_consumed(p);
    if (!p->txn_open || p->fatal[0])
        return;
    rd_kafka_error_t *e = NULL;
    bool committed = false;
    state_txn_checkpoints(p);
    if (!p->txn_failed) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
        for (partition_t *pt = p->parts; pt; pt = pt->next)
            if (pt->txn_dirty && pt->assigned)
                rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset =
                    pt->txn_next;
        if (l->cnt) {
            rd_kafka_consumer_group_metadata_t *md =
                rd_kafka_consumer_group_metadata(p->consumer);
            e = rd_kafka_send_offsets_to_transaction(p->producer, l, md, -1);
            rd_kafka_consumer_group_metadata_destroy(md);
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (!e) {
            e = txn_retry(p, rd_kafka_commit_transaction);
            committed = !e;
        }
    }
    if (committed) {
        txn_settle(p);
        txn_counts_end(p, true);
        state_txn_committed(p);
        p->txn_open = false;
        vg_metric_set(p->m.txn_open, NULL, 0);
        for (partition_t *pt = p->parts; pt; pt = pt->next)
            pt->txn_dirty = false;
        p->health.uncommitted_since = 0;
        p->txn_failing_since = 0;
        p->txn_backoff = 0;
        vg_metric_add(p->m.transactions, (const char *[]){"committed"}, 1);
        return;
    }
    if (e && rd_kafka_error_is_fatal(e)) {
        txn_fatal(p, "committing the transaction", e);
        return;
    }
    if (e) {
        vg_log(VG_LOG_WARN, "msg=\"transaction failed\" err=\"%s\"", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    txn_abort(p);
}

/* Commits the open transaction once it is old or big enough. */
static void txn_maybe_commit(pipeline_t *p)
{
    if (!p->txn_open)
        return;
    if (p->txn_failed || p->txn_events >= p->cfg->eos_commit_max_events ||
        vg_monotime() - p->txn_started >= p->cfg->eos_commit_interval_ms / 1000.0)
        txn_commit(p);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    pipeline_t *p = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            partition_t *pt = find_part(p, parts->elems[i].topic, parts->elems[i].partition, true);
            if (pt && !pt->assigned) {
                pt->assigned = true;
                pt->eof = false;
                pt->fetch_next = -1;
                p->assigned++;
            }
        }
        vg_log(VG_LOG_INFO, "msg=\"partitions assigned\" count=%d total=%zu", parts->cnt,
               p->assigned);
        state_assign(p, parts); /* restores windows; may move the start offsets */
        rd_kafka_error_t *e = NULL;
        if (cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (e) {
            vg_log(VG_LOG_ERROR, "msg=\"assign failed\" err=\"%s\"", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        /* librdkafka keeps a partition's pause across an unassign: one
         * paused before it was revoked would come back paused for good.
         * New partitions take the pipeline's current state. */
        if (p->paused)
            rd_kafka_pause_partitions(rk, parts);
        else
            rd_kafka_resume_partitions(rk, parts);
        p->assignment_changed = true;
        if (!p->ready) {
            p->ready = true;
            if (p->opts->on_ready)
                p->opts->on_ready(p->opts->ready_arg);
        }
        return;
    }
    /* Revoked (or lost): evaluate what was consumed, let its alerts land
     * and commit, so that the next owner starts right after them. */
    bool lost = err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || rd_kafka_assignment_lost(rk);
    finish_consumed(p);
    if (p->eos && lost) {
        /* Another member owns them now: what this transaction read of
         * them must not be committed; it is aborted (the partitions
         * still held are rewound). */
        for (int i = 0; i < parts->cnt; i++) {
            partition_t *pt =
                find_part(p, parts->elems[i].topic, parts->elems[i].partition, false);
            if (pt && pt->assigned) {
                pt->assigned = false;
                p->assigned--;
            }
        }
        txn_abort(p);
    } else if (p->eos) {
        p->cp_force_all = true; /* the next owner resumes from these checkpoints */
        txn_commit(p);
        p->cp_force_all = false;
    } else {
        drain(p, 30000);
        if (!lost) {
            state_checkpoint_all(p, parts);
            rd_kafka_commit(rk, NULL, 0);
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        partition_t *pt = find_part(p, parts->elems[i].topic, parts->elems[i].partition, false);
        if (pt && pt->assigned) {
            pt->assigned = false;
            p->assigned--;
        }
        char id[16];
        snprintf(id, sizeof(id), "%d", (int)parts->elems[i].partition);
        vg_metric_remove(p->m.consumer_lag, (const char *[]){parts->elems[i].topic, id});
    }
    state_revoked(p, parts);
    /* What was stored is committed now, or (partitions lost) never will
     * be: either way nothing is waiting for a commit any more. */
    p->health.uncommitted_since = 0;
    vg_log(VG_LOG_INFO, "msg=\"partitions revoked\" count=%d", parts->cnt);
    if (cooperative) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

/* ---- setup ---- */

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t err_size)
{
    char e[512];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) != RD_KAFKA_CONF_OK) {
        snprintf(err, err_size, "kafka property '%s': %s", k, e);
        return -1;
    }
    return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* kafka.properties go to both clients; that one of them ignores a
     * property of the other kind is expected, not worth a warning. */
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "will be ignored by this"))
        level = 7;
    vg_log(level <= 3 ? VG_LOG_ERROR : level <= 4 ? VG_LOG_WARN : VG_LOG_DEBUG,
           "msg=\"librdkafka\" client=%s facility=%s detail=\"%s\"", rd_kafka_name(rk), fac, buf);
}

/* Replaces librdkafka's own logging of client errors (which stops once
 * an error callback is set) and notes "all brokers down" for /healthz. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    pipeline_t *p = opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        p->health.brokers_down_at[rd_kafka_type(rk) == RD_KAFKA_PRODUCER] = vg_monotime();
    vg_log(VG_LOG_ERROR, "msg=\"librdkafka\" client=%s facility=ERROR detail=\"%s\"",
           rd_kafka_name(rk), reason);
}

/* Periodic (auto) and final commits. */
static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    pipeline_t *p = opaque;
    /* _NO_OFFSET: every stored offset is already committed. */
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        p->health.uncommitted_since = 0;
        return;
    }
    for (int i = 0; !err && offsets && i < offsets->cnt; i++)
        err = offsets->elems[i].err;
    if (err) {
        vg_log(VG_LOG_WARN, "msg=\"offset commit failed\" err=\"%s\"", rd_kafka_err2str(err));
        return;
    }
    p->health.uncommitted_since = 0;
    p->health.brokers_down_at[0] = 0; /* the group coordinator answered */
}

/* True when the statistics show a connection to some broker: librdkafka
 * reports "all brokers down" once, not when one comes back. */
static bool any_broker_up(json_object *root)
{
    json_object *brokers, *state;
    if (!json_object_object_get_ex(root, "brokers", &brokers) ||
        !json_object_is_type(brokers, json_type_object))
        return false;
    json_object_object_foreach(brokers, name, b)
    {
        (void)name;
        if (json_object_object_get_ex(b, "state", &state) &&
            strcmp(json_object_get_string(state), "UP") == 0)
            return true;
    }
    return false;
}

/* topics.<t>.partitions.<p>.consumer_lag of each assigned partition. */
static void update_lag(pipeline_t *p, json_object *root)
{
    json_object *topics;
    if (!json_object_object_get_ex(root, "topics", &topics) ||
        !json_object_is_type(topics, json_type_object))
        return;
    json_object_object_foreach(topics, topic, t)
    {
        json_object *parts;
        if (!json_object_object_get_ex(t, "partitions", &parts) ||
            !json_object_is_type(parts, json_type_object))
            continue;
        json_object_object_foreach(parts, id, po)
        {
            char *end;
            long n = strtol(id, &end, 10);
            json_object *lag;
            /* Partition -1 is librdkafka's queue for messages not yet
             * partitioned; a lag of -1 is not known yet. */
            if (*end || n < 0 || n > INT32_MAX ||
                !json_object_object_get_ex(po, "consumer_lag", &lag))
                continue;
            partition_t *pt = find_part(p, topic, (int32_t)n, false);
            int64_t v = json_object_get_int64(lag);
            if (pt && pt->assigned && v >= 0)
                vg_metric_set(p->m.consumer_lag, (const char *[]){topic, id}, (double)v);
        }
    }
}

/* librdkafka's statistics (statistics.interval.ms, both clients, only
 * with metrics): broker connections for /healthz, the consumer's lag. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    pipeline_t *p = opaque;
    bool producer = rd_kafka_type(rk) == RD_KAFKA_PRODUCER;
    if (json_len > INT32_MAX)
        return 0;
    json_tokener *tok = json_tokener_new();
    json_object *root = tok ? json_tokener_parse_ex(tok, json, (int)json_len) : NULL;
    if (root && any_broker_up(root))
        p->health.brokers_down_at[producer] = 0;
    if (root && !producer)
        update_lag(p, root);
    json_object_put(root);
    if (tok)
        json_tokener_free(tok);
    return 0; /* librdkafka frees json */
}

static rd_kafka_conf_t *base_conf(const vg_config_t *cfg, char *err, size_t err_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (set(conf, "bootstrap.servers", cfg->brokers, err, err_size) != 0 ||
        set(conf, "client.id", "vigil", err, err_size) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

/* The user's kafka.properties go last so they can override our defaults;
 * librdkafka's own message names a bad one. Properties that belong to the
 * other client type are skipped quietly (librdkafka would only warn). */
static int apply_props(rd_kafka_conf_t *conf, const vg_config_t *cfg, char *err, size_t err_size)
{
    for (size_t i = 0; i < cfg->prop_keys.count; i++)
        if (set(conf, cfg->prop_keys.items[i], cfg->prop_values.items[i], err, err_size) != 0)
            return -1;
    return 0;
}

/* ---- stateful rules ----
 *
 * The main thread feeds each message to its partition's state in
 * partition order (vg_partstates, include/vigil/partstates.h), right
 * where its stateless alerts are sent; stateful alerts are outputs of the
 * same in-flight record, so its offset waits for them too. Each
 * partition's windows are saved to the checkpoint topic
 * (include/vigil/checkpoint.h). At-least-once: a checkpoint with NEXT = X
 * is produced once every output of the events before X is acknowledged,
 * and the stored offset never passes the NEXT of the last acknowledged
 * checkpoint. Exactly-once: each transaction carries a checkpoint of
 * every partition it read. Without stateful rules none of this runs. */

/* A checkpoint record on its way to the broker (the delivery report's
 * opaque). */
typedef struct cpmsg {
    partition_t *pt;
    int64_t next;
} cpmsg_t;

static bool state_on(const pipeline_t *p)
{
    return p->ps && vg_partstates_enabled(p->ps);
}

/* Creates the states, the checkpoint reader and the checkpoint topic
 * when rs has stateful rules (at start, or at a reload that brings the
 * first ones). */
static int state_start(pipeline_t *p, const vg_ruleset_t *rs, char *err, size_t err_size)
{
    const vg_config_t *cfg = p->cfg;
    if (p->ps || !vg_ruleset_has_stateful(rs))
        return 0;
    char warn[512] = "";
    if (!p->opts->state_topic_ready &&
        vg_checkpoint_ensure_topic(p->consumer, cfg->state_topic, cfg->state_max_bytes, 30000,
                                   warn, sizeof(warn), err, err_size) != 0)
        return -1;
    if (warn[0])
        vg_log(VG_LOG_WARN, "msg=\"%s\"", warn);
    rd_kafka_conf_t *conf = base_conf(cfg, err, err_size);
    if (!conf)
        return -1;
    if (apply_props(conf, cfg, err, err_size) != 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    p->cpr = vg_checkpoint_new(conf, cfg->state_topic, cfg->group, err, err_size);
    if (!p->cpr)
        return -1;
    vg_partstates_options_t o = {.time_field = cfg->time_field,
                                 .limits = {cfg->max_event_bytes, cfg->max_event_depth},
                                 .checkpoint_events = cfg->state_events,
                                 .checkpoint_interval_s = cfg->state_interval_ms / 1000.0};
    p->ps = vg_partstates_new(rs, &o);
    if (!p->ps) {
        snprintf(err, err_size, "out of memory setting up the stateful rules");
        return -1;
    }
    p->sm = vg_state_metrics_new(p->metrics);
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

static void state_stop(pipeline_t *p)
{
    vg_partstates_destroy(p->ps);
    vg_checkpoint_destroy(p->cpr);
    vg_state_metrics_destroy(p->sm);
    p->ps = NULL;
    p->cpr = NULL;
    p->sm = NULL;
    for (partition_t *pt = p->parts; pt; pt = pt->next) {
        free(pt->cp_value);
        pt->cp_value = NULL;
    }
}

/* At-least-once: stores the offset after the acknowledged records, but
 * never past the NEXT of the last checkpoint the broker has, so a restart
 * resumes the windows from a checkpoint at or after the committed offset. */
static void state_store(pipeline_t *p, partition_t *pt)
{
    if (p->eos || !pt->assigned || !pt->cp_durable_known || pt->acked_next <= 0)
        return;
    int64_t off = pt->acked_next < pt->cp_durable ? pt->acked_next : pt->cp_durable;
    if (off <= pt->stored_next)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset = off;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(p->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        vg_log(VG_LOG_WARN,
               "msg=\"cannot store offset\" topic=%s partition=%d offset=%lld err=\"%s\"",
               pt->topic, (int)pt->partition, (long long)off, rd_kafka_err2str(e));
        return;
    }
    pt->stored_next = off;
    if (p->health.uncommitted_since == 0)
        p->health.uncommitted_since = vg_monotime();
}

/* Hands a checkpoint of pt to the producer (inside the open transaction
 * when exactly-once). Takes value. 0, or -1 when it was not produced. */
static int state_produce(pipeline_t *p, partition_t *pt, char *value, size_t len, int64_t next)
{
    char err[512];
    vg_state_metrics_checkpoint(p->sm, pt->topic, pt->partition, len);
    if (len > p->cfg->state_max_bytes) {
        free(value);
        vg_metric_add(p->m.checkpoints, (const char *[]){"too_large"}, 1);
        /* At most every 10 s: exactly-once may try it in each transaction. */
        double now = vg_monotime();
        if (now < p->cp_too_large_log_at)
            return -1;
        p->cp_too_large_log_at = now + 10;
        vg_log(VG_LOG_ERROR,
               "msg=\"state checkpoint too large; the partition's offset is not committed "
               "until one fits (lower the stateful rules' max_keys or raise "
               "state.checkpoint_max_bytes and the topic's max.message.bytes)\" topic=%s "
               "partition=%d bytes=%zu max_bytes=%zu",
               pt->topic, (int)pt->partition, len, p->cfg->state_max_bytes);
        return -1;
    }
    cpmsg_t *cm = malloc(sizeof(*cm));
    if (!cm) {
        free(value);
        vg_log(VG_LOG_ERROR, "msg=\"out of memory producing a state checkpoint\"");
        return -1;
    }
    *cm = (cpmsg_t){pt, next};
    if (vg_checkpoint_produce(p->producer, p->cfg->state_topic, p->cfg->group, pt->topic,
                              pt->partition, value, len, cm, err, sizeof(err)) != 0) {
        free(cm);
        vg_metric_add(p->m.checkpoints, (const char *[]){"failed"}, 1);
        vg_log(VG_LOG_ERROR, "msg=\"%s\"", err);
        return -1;
    }
    p->cp_outstanding++;
    return 0;
}

/* At-least-once: produces pt's waiting checkpoint once every output of
 * the events before its NEXT is acknowledged (a copy: it stays waiting
 * until it is handed over). */
static void state_flush(pipeline_t *p, partition_t *pt)
{
    if (p->eos || !pt->cp_value || !pt->assigned || (pt->head && pt->head->offset < pt->cp_next))
        return;
    char *copy = malloc(pt->cp_len ? pt->cp_len : 1);
    if (!copy)
        return;
    memcpy(copy, pt->cp_value, pt->cp_len);
    size_t len = pt->cp_len;
    if (state_produce(p, pt, copy, len, pt->cp_next) == 0 || len > p->cfg->state_max_bytes) {
        free(pt->cp_value);
        pt->cp_value = NULL;
    }
}

/* Takes a checkpoint of pt when one is due (force: whenever anything
 * was processed since the last one); at-least-once it waits in pt until
 * it may be produced. */
static void state_checkpoint(pipeline_t *p, partition_t *pt, bool force)
{
    char *v = NULL;
    size_t len = 0;
    int64_t next = -1;
    int rc = vg_partstates_checkpoint(p->ps, pt->topic, pt->partition, force, &v, &len, &next);
    if (rc < 0)
        vg_log(VG_LOG_ERROR, "msg=\"out of memory taking a state checkpoint\" topic=%s "
                             "partition=%d",
               pt->topic, (int)pt->partition);
    if (rc <= 0)
        return;
    free(pt->cp_value);
    pt->cp_value = v;
    pt->cp_len = len;
    pt->cp_next = next;
    state_flush(p, pt);
}

/* The delivery report of a checkpoint record. */
static void state_dr(pipeline_t *p, const rd_kafka_message_t *m)
{
    cpmsg_t *cm = m->_private;
    if (!cm)
        return;
    partition_t *pt = cm->pt;
    p->cp_outstanding--;
    if (m->err) {
        bool purge = m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
                     m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
        if (!purge) {
            vg_metric_add(p->m.checkpoints, (const char *[]){"failed"}, 1);
            vg_log(VG_LOG_ERROR,
                   "msg=\"state checkpoint not delivered%s\" topic=%s partition=%d err=\"%s\"",
                   p->eos ? "; the transaction will be aborted" : "; producing it again",
                   pt->topic, (int)pt->partition, rd_kafka_err2str(m->err));
        }
        if (p->eos) {
            p->txn_failed = p->txn_failed || !purge;
        } else if (!pt->cp_value && pt->assigned && (pt->cp_value = malloc(m->len ? m->len : 1))) {
            /* No newer one waits: this one goes again. */
            memcpy(pt->cp_value, m->payload, m->len);
            pt->cp_len = m->len;
            pt->cp_next = cm->next;
        }
        free(cm);
        return;
    }
    vg_metric_add(p->m.checkpoints, (const char *[]){"ok"}, 1);
    if (!p->eos && pt->assigned) {
        /* Exactly-once confirms with the commit of its transaction. */
        vg_partstates_confirm(p->ps, pt->topic, pt->partition, cm->next);
        if (!pt->cp_durable_known || cm->next > pt->cp_durable) {
            pt->cp_durable = cm->next;
            pt->cp_durable_known = true;
        }
        state_store(p, pt);
    }
    free(cm);
}

/* Where a stateful alert goes: an output of the record of the event that
 * raised it. */
typedef struct state_emit_ctx {
    pipeline_t *p;
    inflight_t *f;
} state_emit_ctx_t;

static int state_emit(void *ctx, const vg_state_alert_t *a)
{
    state_emit_ctx_t *c = ctx;
    const vg_rule_t *r = a->rule;
    vg_metric_add(c->p->m.rule_matches, (const char *[]){vg_rule_id(r)}, 1);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "vigil-rule", -1, vg_rule_id(r), -1);
    rd_kafka_header_add(h, "vigil-severity", -1, vg_rule_severity(r), -1);
    const char *out = vg_rule_topic(r) ? vg_rule_topic(r) : c->p->cfg->output_topic;
    outmsg_t alert = {0};
    send_output(c->p, c->f, &alert, out, a->json, a->len, a->key, strlen(a->key), h);
    return 0;
}

/* Feeds message m (record f) to its partition's state. Returns false
 * when its stateless alerts must not be sent (they were before). */
static bool state_process(pipeline_t *p, const rd_kafka_message_t *m, inflight_t *f)
{
    if (!state_on(p))
        return true;
    rd_kafka_timestamp_type_t tstype;
    vg_alert_source_t src = {.topic = rd_kafka_topic_name(m->rkt), .partition = m->partition,
                             .offset = m->offset,
                             .timestamp_ms = rd_kafka_message_timestamp(m, &tstype)};
    state_emit_ctx_t c = {p, f};
    bool send = true;
    char err[256];
    if (vg_partstates_process(p->ps, &src, m->payload, m->len, state_emit, &c, &send, err,
                              sizeof(err)) < 0) {
        vg_log(VG_LOG_ERROR, "msg=\"stateful rules failed on an event\" topic=%s partition=%d "
                             "offset=%lld err=\"%s\"",
               src.topic, (int)m->partition, (long long)m->offset, err);
        p->txn_failed = p->txn_failed || p->eos; /* exactly-once: read it again */
    }
    if (!p->eos)
        state_checkpoint(p, f->part, false);
    return send;
}

/* A new assignment: loads the checkpoints, restores each partition's
 * windows and sets where it starts reading (in parts). */
static void state_assign(pipeline_t *p, rd_kafka_topic_partition_list_t *parts)
{
    if (!state_on(p) || parts->cnt == 0)
        return;
    char err[512];
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t ce = rd_kafka_committed(p->consumer, c, 30000);
    if (ce)
        vg_log(VG_LOG_WARN, "msg=\"cannot read the committed offsets; resuming from the state "
                            "checkpoints\" err=\"%s\"",
               rd_kafka_err2str(ce));
    if (vg_checkpoint_load(p->cpr, 60000, err, sizeof(err)) != 0) {
        /* Starting empty would forget every window: stop instead. */
        snprintf(p->fatal, sizeof(p->fatal), "cannot read the stateful rules' checkpoints: %.400s",
                 err);
        vg_log(VG_LOG_ERROR, "msg=\"%s\"", p->fatal);
        rd_kafka_topic_partition_list_destroy(c);
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *e = &parts->elems[i];
        int64_t committed = !ce && !c->elems[i].err && c->elems[i].offset >= 0
                                ? c->elems[i].offset
                                : -1;
        size_t len = 0;
        const char *v = vg_checkpoint_get(p->cpr, e->topic, e->partition, &len);
        vg_resume_plan_t plan;
        bool ok = vg_partstates_assign(p->ps, e->topic, e->partition, committed, v, len, &plan,
                                       err, sizeof(err)) == 0;
        if (!ok)
            vg_log(VG_LOG_ERROR, "msg=\"state checkpoint unusable; the partition's windows "
                                 "start empty\" topic=%s partition=%d err=\"%s\"",
                   e->topic, (int)e->partition, err);
        partition_t *pt = find_part(p, e->topic, e->partition, false);
        if (pt) {
            free(pt->cp_value);
            pt->cp_value = NULL;
            pt->cp_durable_known = ok && v;
            pt->cp_durable = ok && v ? plan.state_from : 0;
            pt->acked_next = pt->stored_next = 0;
            pt->cp_txn_next = -1;
        }
        if (plan.start >= 0)
            e->offset = plan.start;
        vg_log(VG_LOG_INFO,
               "msg=\"partition state %s\" topic=%s partition=%d committed=%lld start=%lld "
               "emit_from=%lld",
               ok && v ? "restored" : "empty", e->topic, (int)e->partition,
               (long long)committed, (long long)plan.start, (long long)plan.emit_from);
    }
    rd_kafka_topic_partition_list_destroy(c);
}

/* At-least-once revocation or shutdown, after draining: a checkpoint of
 * each partition, on the broker before the final commit. */
static void state_checkpoint_all(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts)
{
    if (!state_on(p) || p->eos)
        return;
    for (partition_t *pt = p->parts; pt; pt = pt->next) {
        bool listed = !parts;
        for (int i = 0; parts && i < parts->cnt && !listed; i++)
            listed = parts->elems[i].partition == pt->partition &&
                     strcmp(parts->elems[i].topic, pt->topic) == 0;
        if (listed && pt->assigned) {
            state_checkpoint(p, pt, true);
            state_flush(p, pt);
        }
    }
    double deadline = vg_monotime() + 30;
    while (p->cp_outstanding > 0 && vg_monotime() < deadline)
        rd_kafka_poll(p->producer, 50);
}

/* Drops the windows of revoked or lost partitions (after their commit). */
static void state_revoked(pipeline_t *p, const rd_kafka_topic_partition_list_t *parts)
{
    if (!p->ps)
        return;
    for (int i = 0; i < parts->cnt; i++) {
        const char *topic = parts->elems[i].topic;
        int32_t part = parts->elems[i].partition;
        vg_state_metrics_forget(p->sm, vg_partstates_state(p->ps, topic, part), topic, part);
        vg_partstates_revoke(p->ps, topic, part);
        partition_t *pt = find_part(p, topic, part, false);
        if (pt) {
            free(pt->cp_value);
            pt->cp_value = NULL;
            pt->cp_durable_known = false;
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
static void state_txn_checkpoints(pipeline_t *p)
{
    if (!state_on(p) || p->txn_failed)
        return;
    for (partition_t *pt = p->parts; pt; pt = pt->next) {
        if (!pt->txn_dirty || !pt->assigned)
            continue;
        bool force = p->cp_force_all || p->health.stopping || !pt->cp_durable_known;
        char *v = NULL;
        size_t len = 0;
        int64_t next = -1;
        int rc = vg_partstates_checkpoint(p->ps, pt->topic, pt->partition, force, &v, &len, &next);
        if (rc < 0 || (rc > 0 && state_produce(p, pt, v, len, next) != 0)) {
            if (!pt->cp_durable_known) {
                /* No older checkpoint to catch up from: committing these
                 * offsets would lose the windows built from their events
                 * at the next abort or restart. Abort instead (read
                 * again, with backoff) until a checkpoint fits. */
                vg_log(VG_LOG_ERROR, "msg=\"no state checkpoint for the partition yet and this "
                                     "one failed; aborting the transaction\" topic=%s partition=%d",
                       pt->topic, (int)pt->partition);
                p->txn_failed = true;
                return;
            }
            /* Committing without it is safe (a restart catches the
             * windows up silently from the older one), only slower. */
            vg_log(VG_LOG_WARN, "msg=\"transaction committed without a state checkpoint\" "
                                "topic=%s partition=%d",
                   pt->topic, (int)pt->partition);
            continue;
        }
        if (rc > 0)
            pt->cp_txn_next = next;
    }
}

/* Exactly-once: the transaction committed; its checkpoints are durable. */
static void state_txn_committed(pipeline_t *p)
{
    for (partition_t *pt = p->parts; pt; pt = pt->next) {
        if (p->ps && pt->cp_txn_next >= 0) {
            vg_partstates_confirm(p->ps, pt->topic, pt->partition, pt->cp_txn_next);
            pt->cp_durable_known = true;
        }
        pt->cp_txn_next = -1;
    }
}

/* Exactly-once: the transaction was aborted; pt's windows go back to its
 * last committed checkpoint. Returns the offset to read again from. */
static int64_t state_rewind(pipeline_t *p, partition_t *pt)
{
    pt->cp_txn_next = -1;
    if (!state_on(p))
        return pt->txn_first;
    vg_resume_plan_t plan;
    char err[256];
    if (vg_partstates_rollback(p->ps, pt->topic, pt->partition, pt->txn_first, &plan, err,
                               sizeof(err)) != 0)
        vg_log(VG_LOG_ERROR, "msg=\"cannot roll the partition's windows back; they start "
                             "empty\" topic=%s partition=%d err=\"%s\"",
               pt->topic, (int)pt->partition, err);
    return plan.start >= 0 ? plan.start : pt->txn_first;
}

/* From the main loop, every 100 ms: due checkpoints (an idle partition
 * too; a busy one is checkpointed as its events are processed), and the
 * state metrics about once a second. */
static void state_tick(pipeline_t *p)
{
    if (!state_on(p))
        return;
    double now = vg_monotime();
    if (now < p->state_tick_at)
        return;
    p->state_tick_at = now + 0.1;
    bool publish = p->sm && now >= p->state_publish_at;
    if (publish)
        p->state_publish_at = now + 1.0;
    for (partition_t *pt = p->parts; pt; pt = pt->next) {
        if (!pt->assigned)
            continue;
        if (!p->eos) {
            state_checkpoint(p, pt, false);
            state_flush(p, pt);
        }
        if (publish)
            vg_state_metrics_publish(p->sm, vg_partstates_state(p->ps, pt->topic, pt->partition),
                                     pt->topic, pt->partition);
    }
}

/* A reload: the windows of unchanged rules carry over. -1 keeps the old
 * rules. */
static int state_reload(pipeline_t *p, const vg_ruleset_t *nrs)
{
    char err[512];
    if (!p->ps) {
        if (state_start(p, nrs, err, sizeof(err)) != 0) {
            vg_log(VG_LOG_ERROR, "msg=\"cannot set up the stateful rules\" err=\"%s\"", err);
            state_stop(p);
            return -1;
        }
        if (p->ps && p->assigned)
            vg_log(VG_LOG_WARN, "msg=\"stateful rules added by a reload start with empty "
                                "windows in the partitions already assigned\"");
        return 0;
    }
    /* The series of removed rules go; the next state tick publishes
     * those of the new rules (or again the old, if the switch fails). */
    for (partition_t *pt = p->parts; p->sm && pt; pt = pt->next)
        if (pt->assigned)
            vg_state_metrics_forget_rules(
                p->sm, vg_partstates_state(p->ps, pt->topic, pt->partition), pt->topic,
                pt->partition);
    p->state_publish_at = 0;
    size_t dropped = 0;
    if (vg_partstates_set_ruleset(p->ps, nrs, &dropped, err, sizeof(err)) != 0) {
        vg_log(VG_LOG_ERROR, "msg=\"cannot carry the stateful rules' windows over\" err=\"%s\"",
               err);
        return -1;
    }
    if (dropped)
        vg_log(VG_LOG_INFO, "msg=\"windows of changed or removed stateful rules dropped\" "
                            "rule_states=%zu",
               dropped);
    return 0;
}

static int setup(pipeline_t *p, char *err, size_t err_size)
{
    const vg_config_t *cfg = p->cfg;
    char e[512];
    const char *tid = vg_config_property(cfg, "transactional.id");
    if (tid && !p->eos) {
        snprintf(err, err_size, "kafka.properties sets transactional.id, which only "
                                "delivery: exactly-once uses");
        return -1;
    }
    if (p->eos && !tid) {
        /* Stable across restarts of one instance, so that a restart fences
         * and aborts what a killed predecessor left open at once instead
         * of after transaction.timeout.ms; distinct per host. */
        char host[128] = "localhost";
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(p->transactional_id, sizeof(p->transactional_id), "vigil-%s-%s", cfg->group,
                 host);
    } else if (p->eos) {
        snprintf(p->transactional_id, sizeof(p->transactional_id), "%s", tid);
    }
    rd_kafka_conf_t *pc = base_conf(cfg, err, err_size);
    if (!pc)
        return -1;
    /* Room for state checkpoints (the producer's default is 1 MB). */
    char max_bytes[32];
    snprintf(max_bytes, sizeof(max_bytes), "%zu", cfg->state_max_bytes);
    /* The producer queue is bounded (librdkafka's default is 1 GB): when
     * alerts come faster than the broker acknowledges them, produce()
     * reports a full queue and the pipeline waits instead of growing.
     * linger.ms 1 instead of librdkafka's 5: an alert waits at most 1 ms
     * for company (produce→alert latency counts in milliseconds), and
     * under load batches still form while earlier requests are in flight.
     * kafka.properties may set it back. */
    if (set(pc, "acks", "all", err, err_size) || set(pc, "linger.ms", "1", err, err_size) ||
        set(pc, "queue.buffering.max.kbytes", "65536", err, err_size) ||
        set(pc, "enable.idempotence", "true", err, err_size) ||
        (vg_ruleset_has_stateful(p->rs) &&
         set(pc, "message.max.bytes", max_bytes, err, err_size)) ||
        (p->eos && set(pc, "transactional.id", p->transactional_id, err, err_size)) ||
        (p->metrics && set(pc, "statistics.interval.ms", "5000", err, err_size)) ||
        apply_props(pc, cfg, err, err_size)) {
        rd_kafka_conf_destroy(pc);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
    rd_kafka_conf_set_error_cb(pc, error_cb);
    if (p->metrics)
        rd_kafka_conf_set_stats_cb(pc, stats_cb);
    rd_kafka_conf_set_opaque(pc, p);
    p->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof(e));
    if (!p->producer) {
        snprintf(err, err_size, "cannot create the Kafka producer: %s", e);
        return -1;
    }
    if (p->eos) {
        /* Fences an earlier producer with this transactional.id and
         * aborts what it left open. */
        rd_kafka_error_t *te = rd_kafka_init_transactions(p->producer, 60000);
        if (te) {
            snprintf(err, err_size, "exactly-once: cannot initialise transactions "
                                    "(transactional.id %s): %s",
                     p->transactional_id, rd_kafka_error_string(te));
            rd_kafka_error_destroy(te);
            return -1;
        }
        vg_log(VG_LOG_INFO, "msg=\"transactions ready\" transactional_id=%s "
                            "commit_interval_ms=%zu commit_max_events=%zu",
               p->transactional_id, cfg->eos_commit_interval_ms, cfg->eos_commit_max_events);
    }
    rd_kafka_conf_t *cc = base_conf(cfg, err, err_size);
    if (!cc)
        return -1;
    if (set(cc, "group.id", cfg->group, err, err_size) ||
        set(cc, "enable.auto.commit", p->eos ? "false" : "true", err, err_size) ||
        (p->eos && set(cc, "isolation.level", "read_committed", err, err_size)) ||
        set(cc, "enable.auto.offset.store", "false", err, err_size) ||
        set(cc, "auto.offset.reset", "earliest", err, err_size) ||
        set(cc, "enable.partition.eof", p->opts->stop_at_eof ? "true" : "false", err,
            err_size) ||
        (p->metrics && set(cc, "statistics.interval.ms", "5000", err, err_size)) ||
        apply_props(cc, cfg, err, err_size)) {
        rd_kafka_conf_destroy(cc);
        return -1;
    }
    rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
    rd_kafka_conf_set_error_cb(cc, error_cb);
    rd_kafka_conf_set_offset_commit_cb(cc, commit_cb);
    if (p->metrics)
        rd_kafka_conf_set_stats_cb(cc, stats_cb);
    rd_kafka_conf_set_opaque(cc, p);
    p->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof(e));
    if (!p->consumer) {
        snprintf(err, err_size, "cannot create the Kafka consumer: %s", e);
        return -1;
    }
    rd_kafka_poll_set_consumer(p->consumer);
    pthread_mutex_lock(&p->wake_mu);
    p->wake_q = rd_kafka_queue_get_consumer(p->consumer);
    pthread_mutex_unlock(&p->wake_mu);
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new((int)cfg->input_topics.count);
    for (size_t i = 0; i < cfg->input_topics.count; i++)
        rd_kafka_topic_partition_list_add(topics, cfg->input_topics.items[i],
                                          RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(p->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (se) {
        snprintf(err, err_size, "cannot subscribe: %s", rd_kafka_err2str(se));
        return -1;
    }
    return 0;
}

static bool all_done(pipeline_t *p)
{
    if (!p->ready || p->assigned == 0 || p->outstanding > 0 || p->txn_open ||
        (p->cur && p->cur->n) ||
        vg_workpool_in_flight(p->pool) > 0)
        return false;
    for (partition_t *pt = p->parts; pt; pt = pt->next)
        if (pt->assigned && (!pt->eof || pt->inflight))
            return false;
    return true;
}

/* ---- metrics and health ---- */

/* No assignment for this long (from start-up, or since the last one was
 * revoked) makes /healthz fail. */
#define VG_ASSIGN_GRACE_S 30.0
/* Outputs waiting this long without any acknowledgement. */
#define VG_ACK_STALL_S 60.0
/* Deliveries (or, exactly-once, transactions) failing for this long. */
#define VG_DELIVERY_FAIL_S 5.0
/* Consumption pauses beyond these many unacknowledged outputs or input
 * events in flight, and resumes below half of them. */
#define VG_MAX_OUTSTANDING 100000
#define VG_MAX_INFLIGHT_EVENTS 200000

/* Flow control. librdkafka 2.0 stops fetching a partition whose prefetch
 * queue passes queued.max.messages.kbytes (64 MB) and then looks again
 * only a second later (fetch.queue.backoff.ms, settable from 2.1 on). A
 * consumer slower than its fetcher, as vigil is with a backlog, spent
 * most of each such second idle with an empty queue: 300,000 news events
 * took 4.6-6.6 s instead of 2.5 (tests/bench/bench_e2e.sh). So the main
 * thread drains librdkafka's queue into the pool's batches and pauses
 * the partitions itself once VG_FLOW_HIGH_BYTES of input and rendered
 * alerts (or every batch) waits for evaluation or emission; resuming
 * below a quarter of that (and half the batches) fetches again at once
 * (resume_fetching). A pause drops what librdkafka had fetched ahead
 * (about one fetch, 1 MB per partition, fetched again on resume);
 * nothing consumed is lost. */
#define VG_PIPELINE_BATCHES 64
#define VG_FLOW_HIGH_BYTES ((size_t)16 << 20) /* VIGIL_BUFFER_BYTES overrides */

/* Resumes fetching the partitions of l. librdkafka 2.0's fetcher thread
 * notices a resumed partition only when it next wakes up, which with
 * nothing else to do is up to a second later (throughput measured with
 * resume alone: half of what a never-paused consumer reads). A seek to
 * where the consumer stands wakes it at once and changes nothing else:
 * the next message is the one after the last taken, as without the
 * pause. Partitions with nothing taken yet are only resumed. */
static rd_kafka_resp_err_t resume_fetching(pipeline_t *p, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_resp_err_t e = rd_kafka_resume_partitions(p->consumer, l);
    if (e)
        return e;
    rd_kafka_topic_partition_list_t *at = rd_kafka_topic_partition_list_new(l->cnt);
    for (int i = 0; i < l->cnt; i++) {
        partition_t *pt = find_part(p, l->elems[i].topic, l->elems[i].partition, false);
        if (pt && pt->fetch_next >= 0)
            rd_kafka_topic_partition_list_add(at, pt->topic, pt->partition)->offset =
                pt->fetch_next;
    }
    if (at->cnt) {
        /* Asynchronous (timeout 0): a failure shows as the ordinary
         * delay of the fetcher's next wake-up, and is only logged. */
        rd_kafka_error_t *se = rd_kafka_seek_partitions(p->consumer, at, 0);
        if (se) {
            vg_log(VG_LOG_DEBUG, "msg=\"seek on resume failed\" err=\"%s\"",
                   rd_kafka_error_string(se));
            rd_kafka_error_destroy(se);
        }
    }
    rd_kafka_topic_partition_list_destroy(at);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Pauses fetching while outputs fail (they are being produced again,
 * and taking more input would only pile up more of them), while too
 * much is in flight, and (exactly-once) during the backoff after an
 * aborted transaction; resumes when that is over. Reapplied after a
 * new assignment. */
static void update_pause(pipeline_t *p)
{
    size_t events = 0;
    for (partition_t *pt = p->parts; pt; pt = pt->next)
        events += pt->inflight;
    double now = vg_monotime();
    bool backoff = p->eos && now < p->txn_backoff_until;
    const char *why = p->failing > 0                            ? "deliveries failing"
                      : backoff                                 ? "backoff after an aborted transaction"
                      : p->outstanding > VG_MAX_OUTSTANDING     ? "too many outputs in flight"
                      : events > VG_MAX_INFLIGHT_EVENTS         ? "too many events in flight"
                                                                : NULL;
    bool hold = why != NULL;
    if (!hold && p->held_back &&
        (p->outstanding > VG_MAX_OUTSTANDING / 2 || events > VG_MAX_INFLIGHT_EVENTS / 2))
        hold = true; /* hysteresis */
    if (hold != p->held_back) {
        vg_log(VG_LOG_INFO,
               hold ? "msg=\"consumption paused\" reason=\"%s\" outputs=%llu events=%zu"
                    : "msg=\"consumption resumed\"%s outputs=%llu events=%zu",
               hold ? why : "", (unsigned long long)p->outstanding, events);
        p->held_back = hold;
        vg_metric_set(p->m.paused, NULL, hold ? 1 : 0);
    }
    size_t nfree = vg_workpool_free(p->pool), nall = vg_workpool_batches(p->pool);
    size_t held = p->held_bytes + vg_workpool_output_bytes(p->pool);
    bool throttle = p->throttled ? held > p->flow_high / 4 || nfree < nall / 2
                                 : held >= p->flow_high || nfree == 0;
    if (throttle && !p->throttled)
        vg_metric_add(p->m.throttled, NULL, 1);
    p->throttled = throttle;
    bool want = hold || throttle;
    if (want == p->paused && !(want && p->assignment_changed))
        return;
    p->assignment_changed = false;
    rd_kafka_topic_partition_list_t *l = NULL;
    if (rd_kafka_assignment(p->consumer, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !l)
        return;
    rd_kafka_resp_err_t e = want ? rd_kafka_pause_partitions(p->consumer, l)
                                 : resume_fetching(p, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e) {
        vg_log(VG_LOG_WARN, "msg=\"cannot %s consumption\" err=\"%s\"",
               want ? "pause" : "resume", rd_kafka_err2str(e));
        return;
    }
    p->paused = want;
}

/* Makes the rules' series exist at 0, so that rate() works from the
 * first alert on and a dashboard lists every rule. */
static void note_ruleset(pipeline_t *p, const vg_ruleset_t *rs)
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

static void register_metrics(pipeline_t *p)
{
    vg_metrics_t *r = p->metrics;
    pipeline_metrics_t *m = &p->m;
    if (!r)
        return;
    static const char *const topic[] = {"topic"}, *const reason[] = {"reason"},
                             *const rule[] = {"rule"}, *const rule_sev[] = {"rule", "severity"},
                             *const topic_part[] = {"topic", "partition"},
                             *const hash[] = {"hash"}, *const result[] = {"result"},
                             *const version[] = {"version"};
    /* Seconds; from well under a millisecond (one batch, no wait) to the
     * seconds a stalled producer or a slow rule can cost. */
    static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5};
    m->build_info = vg_metrics_gauge(r, "vigil_build_info", "vigil's version; always 1.",
                                     version, 1);
    m->up = vg_metrics_gauge(r, "vigil_up", "1 while the daemon runs.", NULL, 0);
    m->consumed = vg_metrics_counter(r, "vigil_events_consumed_total",
                                     "Input messages consumed and evaluated or dead-lettered.",
                                     topic, 1);
    m->dead_lettered = vg_metrics_counter(
        r, "vigil_events_dead_lettered_total",
        "Input messages whose dead-letter copy the broker acknowledged (exactly-once: and "
        "committed), by reason.",
        reason, 1);
    m->decode_failures = vg_metrics_counter(
        r, "vigil_decode_failures_total",
        "Input messages that are not a JSON object within the size and depth limits.", NULL, 0);
    m->rule_matches = vg_metrics_counter(r, "vigil_rule_matches_total",
                                         "Events a rule matched (one alert each).", rule, 1);
    m->alerts_produced = vg_metrics_counter(
        r, "vigil_alerts_produced_total",
        "Alerts the broker acknowledged (exactly-once: and committed).", rule_sev, 2);
    m->alerts_failed = vg_metrics_counter(
        r, "vigil_alerts_failed_total",
        "Alert deliveries that failed; each is produced again and its input stays "
        "uncommitted until one succeeds.",
        rule_sev, 2);
    m->dead_letters_failed = vg_metrics_counter(
        r, "vigil_dead_letters_failed_total",
        "Dead-letter deliveries that failed; each is produced again.", NULL, 0);
    m->processing = vg_metrics_histogram(
        r, "vigil_processing_seconds",
        "Time from consuming an event to handing its alerts or dead-letter copy to the "
        "producer.",
        buckets, sizeof(buckets) / sizeof(buckets[0]));
    m->consumer_lag = vg_metrics_gauge(
        r, "vigil_consumer_lag",
        "Messages between a partition's committed offset and its end (librdkafka statistics, "
        "every 5 s).",
        topic_part, 2);
    m->assigned = vg_metrics_gauge(r, "vigil_assigned_partitions",
                                   "Input partitions assigned to this instance.", NULL, 0);
    m->in_flight = vg_metrics_gauge(r, "vigil_outputs_in_flight",
                                    "Alerts and dead-letter copies not yet acknowledged.", NULL,
                                    0);
    m->ruleset_info = vg_metrics_gauge(
        r, "vigil_ruleset_info", "Fingerprint of the loaded rules (alerts' \"ruleset\"); always 1.",
        hash, 1);
    m->rules_loaded = vg_metrics_gauge(r, "vigil_rules_loaded", "Rules in the loaded ruleset.",
                                       NULL, 0);
    m->reloads = vg_metrics_counter(r, "vigil_reloads_total",
                                    "Rule reloads (SIGHUP) by result: ok, or failed (the old "
                                    "rules stay).",
                                    result, 1);
    m->delivery_retries = vg_metrics_counter(
        r, "vigil_delivery_retries_total",
        "Failed alerts and dead-letter copies produced again (after a backoff).", NULL, 0);
    m->outputs_failing = vg_metrics_gauge(
        r, "vigil_outputs_failing",
        "Outputs whose delivery failed and that are not acknowledged yet; consumption is "
        "paused while there are any.",
        NULL, 0);
    m->paused = vg_metrics_gauge(r, "vigil_consumer_paused",
                                 "1 while fetching is paused (failing deliveries, too much in "
                                 "flight, or backoff after an aborted transaction).",
                                 NULL, 0);
    m->throttled = vg_metrics_counter(r, "vigil_fetch_throttled_total",
                                      "Short fetch pauses of flow control: enough consumed "
                                      "input was waiting for evaluation.",
                                      NULL, 0);
    if (p->eos)
        m->transactions = vg_metrics_counter(
            r, "vigil_transactions_total",
            "Exactly-once transactions by result: committed, or aborted (input read again).",
            result, 1);
    if (p->eos)
        m->txn_open = vg_metrics_gauge(r, "vigil_transaction_open",
                                       "Exactly-once: 1 while a transaction is open (outputs "
                                       "not yet committed).",
                                       NULL, 0);
    vg_metric_set(m->build_info, (const char *[]){VIGIL_VERSION}, 1);
    vg_metric_set(m->up, NULL, 1);
    for (size_t i = 0; i < p->cfg->input_topics.count; i++)
        vg_metric_add(m->consumed, (const char *[]){p->cfg->input_topics.items[i]}, 0);
    static const char *const reasons[] = {"too_large",  "invalid_utf8", "too_deep",
                                          "invalid_json", "not_object", "eval_failed"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        vg_metric_add(m->dead_lettered, &reasons[i], 0);
    vg_metric_add(m->reloads, (const char *[]){"ok"}, 0);
    vg_metric_add(m->reloads, (const char *[]){"failed"}, 0);
    vg_metric_add(m->transactions, (const char *[]){"committed"}, 0);
    vg_metric_add(m->transactions, (const char *[]){"aborted"}, 0);
    note_ruleset(p, p->rs);
}

/* Decides what /healthz says, from what only the main thread knows;
 * about once a second (or now, with force). */
static void publish_health(pipeline_t *p, bool force)
{
    health_t *h = &p->health;
    if (!p->metrics)
        return;
    double now = vg_monotime();
    if (!force && now < h->next_publish)
        return;
    h->next_publish = now + 1.0;
    uint64_t acked = p->stats.alerts + p->stats.dead_lettered;
    if (p->outstanding == 0 || acked != h->acked_seen)
        h->ack_wait_since = now;
    h->acked_seen = acked;
    if (p->assigned > 0)
        h->unassigned_since = 0;
    else if (h->unassigned_since == 0)
        h->unassigned_since = now;
    vg_metric_set(p->m.assigned, NULL, (double)p->assigned);
    vg_metric_set(p->m.in_flight, NULL, (double)p->outstanding);
    vg_metric_set(p->m.outputs_failing, NULL, (double)p->failing);

    char why[256];
    const char *reason = why;
    /* The producer connects when it has something to send (librdkafka's
     * sparse connections), so while idle its brokers being down says
     * nothing; the consumer's always matter. */
    int down = h->brokers_down_at[0] > 0                         ? 0
               : h->brokers_down_at[1] > 0 && p->outstanding > 0 ? 1
                                                                 : -1;
    static const char *const client[] = {"consumer", "producer"};
    if (h->stopping)
        reason = "shutting down";
    else if (down >= 0)
        snprintf(why, sizeof(why), "%s: all brokers down (since %.0f s)", client[down],
                 now - h->brokers_down_at[down]);
    else if (p->assigned == 0 && now - h->unassigned_since > VG_ASSIGN_GRACE_S)
        snprintf(why, sizeof(why), "no partitions assigned for %.0f s (consumer group %s)",
                 now - h->unassigned_since, p->cfg->group);
    else if (p->failing > 0 && now - p->failing_since > VG_DELIVERY_FAIL_S)
        snprintf(why, sizeof(why), "%llu outputs cannot be delivered (for %.0f s): %s",
                 (unsigned long long)p->failing, now - p->failing_since, p->last_error);
    else if (p->txn_failing_since > 0 && now - p->txn_failing_since > VG_DELIVERY_FAIL_S)
        snprintf(why, sizeof(why), "transactions aborted for %.0f s: %s",
                 now - p->txn_failing_since, p->last_error);
    else if (h->uncommitted_since > 0 && now - h->uncommitted_since > h->commit_stale_s)
        snprintf(why, sizeof(why), "no successful offset commit for %.0f s",
                 now - h->uncommitted_since);
    else if (p->outstanding > 0 && now - h->ack_wait_since > VG_ACK_STALL_S)
        snprintf(why, sizeof(why), "%llu outputs unacknowledged, none acknowledged for %.0f s",
                 (unsigned long long)p->outstanding, now - h->ack_wait_since);
    else
        reason = NULL;
    vg_metrics_set_health(p->metrics, reason);
}

/* Loading and compiling a big ruleset takes a while (~0.5 s for 15,000
 * terms): it happens on a thread of its own while consumption goes on,
 * and only the swap happens in the main loop. */
typedef struct reloader {
    const vg_pipeline_opts_t *opts;
    pipeline_t *p;
    pthread_t thread;
    bool running;
    atomic_int done;
    vg_ruleset_t *result;
} reloader_t;

/* Makes the main loop's consumer poll return at once (from a worker that
 * finished a batch, or the reload thread). */
static void wake_main(void *arg)
{
    pipeline_t *p = arg;
    pthread_mutex_lock(&p->wake_mu);
    if (p->wake_q)
        rd_kafka_queue_yield(p->wake_q);
    pthread_mutex_unlock(&p->wake_mu);
}

static void *reload_thread(void *arg)
{
    reloader_t *r = arg;
    r->result = r->opts->reload_fn ? r->opts->reload_fn(r->opts->reload_arg) : NULL;
    atomic_store(&r->done, 1);
    /* An idle main loop waits up to 100 ms in the consumer poll: the new
     * rules should not. */
    wake_main(r->p);
    return NULL;
}

static void apply_reload(pipeline_t *p, vg_ruleset_t *nrs);

static void reload_start(pipeline_t *p, reloader_t *r)
{
    r->opts = p->opts;
    r->p = p;
    r->result = NULL;
    atomic_store(&r->done, 0);
    if (pthread_create(&r->thread, NULL, reload_thread, r) == 0) {
        r->running = true;
        return;
    }
    /* No thread to spare: compile here, stalling the stream briefly. */
    reload_thread(r);
    apply_reload(p, r->result);
}

/* Swaps in a finished reload; with wait, waits for it first. */
static void reload_poll(pipeline_t *p, reloader_t *r, bool wait)
{
    if (!r->running || (!wait && !atomic_load(&r->done)))
        return;
    pthread_join(r->thread, NULL);
    r->running = false;
    apply_reload(p, r->result);
}

static void apply_reload(pipeline_t *p, vg_ruleset_t *nrs)
{
    if (!nrs) {
        p->stats.reloads_failed++;
        vg_metric_add(p->m.reloads, (const char *[]){"failed"}, 1);
        vg_log(VG_LOG_ERROR, "msg=\"reload failed; keeping the current rules\" ruleset=%s",
               vg_ruleset_hash(p->rs));
        return;
    }
    /* Events consumed before the reload are evaluated with the old rules,
     * those after with the new: none twice, none skipped. */
    finish_consumed(p);
    if (state_reload(p, nrs) != 0) {
        vg_ruleset_destroy(nrs);
        p->stats.reloads_failed++;
        vg_metric_add(p->m.reloads, (const char *[]){"failed"}, 1);
        vg_log(VG_LOG_ERROR, "msg=\"reload failed; keeping the current rules\"");
        return;
    }
    if (vg_workpool_set_ruleset(p->pool, nrs) != 0) {
        char e[256];
        if (p->ps && vg_partstates_set_ruleset(p->ps, p->rs, NULL, e, sizeof(e)) != 0) {
            /* The partition states now point into nrs, which goes next:
             * stopping is the only safe way on (offsets stay where their
             * alerts and checkpoints are). */
            snprintf(p->fatal, sizeof(p->fatal),
                     "a failed reload could not put the stateful rules back (%.200s); stopping",
                     e);
            vg_log(VG_LOG_ERROR, "msg=\"%s\"", p->fatal);
            p->rs_doomed = nrs; /* destroyed after the states at the end of the run */
            return;
        }
        vg_ruleset_destroy(nrs);
        p->stats.reloads_failed++;
        vg_metric_add(p->m.reloads, (const char *[]){"failed"}, 1);
        vg_log(VG_LOG_ERROR, "msg=\"reload failed (out of memory); keeping the current rules\"");
        return;
    }
    vg_ruleset_destroy(p->rs);
    p->rs = nrs;
    p->stats.reloads_ok++;
    vg_metric_add(p->m.reloads, (const char *[]){"ok"}, 1);
    note_ruleset(p, nrs);
    vg_log(VG_LOG_INFO, "msg=\"rules reloaded\" rules=%zu ruleset=%s", vg_ruleset_rule_count(nrs),
           vg_ruleset_hash(nrs));
}

static unsigned default_workers(void)
{
    /* One evaluation thread per core. The main thread (polling,
     * producing) and librdkafka's threads mostly wait, so leaving them a
     * core of their own wasted it: on 2 cores, 1 worker ran 41,000
     * events/s end to end and 2 workers 90,000 (tests/bench/bench_e2e.sh
     * --terms sdn). */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return (unsigned)vg_env_number("VIGIL_WORKERS", 0, VG_MAX_WORKERS,
                                   n > 1 ? (unsigned)(n > 16 ? 16 : n) : 1);
}

int vg_pipeline_run(const vg_config_t *cfg, vg_ruleset_t *rules, const vg_pipeline_opts_t *opts,
                    vg_pipeline_stats_t *stats, char *err, size_t err_size)
{
    pipeline_t p = {.cfg = cfg, .opts = opts, .rs = rules, .metrics = opts->metrics,
                    .eos = cfg->delivery == VG_DELIVERY_EXACTLY_ONCE};
    reloader_t reloader = {0};
    int rc = -1;
    p.health.started = p.health.unassigned_since = vg_monotime();
    /* A commit is overdue after three auto-commit intervals, and never
     * sooner than a minute. */
    const char *aci = vg_config_property(cfg, "auto.commit.interval.ms");
    double interval_s = (aci ? strtod(aci, NULL) : 5000.0) / 1000.0;
    p.health.commit_stale_s = interval_s * 3 > 60 ? interval_s * 3 : 60;
    register_metrics(&p);
    publish_health(&p, true);
    pthread_mutex_init(&p.wake_mu, NULL);
    p.flow_high = (size_t)vg_env_number("VIGIL_BUFFER_BYTES", 4096, (size_t)1 << 32,
                                        VG_FLOW_HIGH_BYTES);
    /* Small batches with nothing in flight (a stream well below
     * capacity) are evaluated here: at 5,000 events/s on 2 busy cores the
     * hand-offs to and from a worker took the p99 latency from ~7 ms to
     * 12-25 ms (tests/bench/bench_e2e.sh --server-broker). Batches there
     * hold ~7 events; at 8 one in twenty still went to a worker (p99
     * 55 ms in that run), at 32 one in 200 (8.6 ms). A backlog fills
     * batches of 256, which go to the workers as before. */
    vg_workpool_options_t wo = {.inline_max = 32,
                                .batches = VG_PIPELINE_BATCHES,
                                .on_done = wake_main,
                                .on_done_arg = &p,
                                .workers = default_workers(),
                                .limits = {cfg->max_event_bytes, cfg->max_event_depth},
                                .time_field = cfg->time_field,
                                .omit_event = !cfg->include_event,
                                .max_matches = cfg->max_matches};
    p.pool = vg_workpool_new(rules, &wo);
    if (!p.pool) {
        snprintf(err, err_size, "out of memory setting up matching");
        goto out;
    }
    if (setup(&p, err, err_size) != 0 || state_start(&p, rules, err, err_size) != 0)
        goto out;
    vg_log(VG_LOG_INFO,
           "msg=\"started\" brokers=\"%s\" group=%s delivery=%s rules=%zu ruleset=%s",
           cfg->brokers, cfg->group, vg_delivery_name(cfg->delivery),
           vg_ruleset_rule_count(rules), vg_ruleset_hash(rules));
    while (!*opts->stop) {
        if (opts->reload && *opts->reload && !reloader.running) {
            *opts->reload = 0;
            reload_start(&p, &reloader);
        }
        reload_poll(&p, &reloader, false);
        /* While a batch is open, take what is already fetched and no more:
         * an idle stream must not hold events back. */
        bool filling = p.cur && p.cur->n;
        /* A worker that finishes a batch wakes this poll (wake_main); the
         * 1 ms is a fallback. Only an idle pipeline waits longer for input. */
        int wait_ms = filling ? 0 : vg_workpool_in_flight(p.pool) ? 1 : 100;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p.consumer, wait_ms);
        if (!m)
            submit_current(&p);
        if (m) {
            if (!m->err) {
                enqueue(&p, m);
                m = NULL; /* the batch owns it until it is emitted */
            } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                partition_t *pt =
                    find_part(&p, rd_kafka_topic_name(m->rkt), m->partition, false);
                if (pt)
                    pt->eof = true;
            } else {
                vg_log(VG_LOG_WARN, "msg=\"consumer error\" err=\"%s\"",
                       rd_kafka_message_errstr(m));
            }
            if (m)
                rd_kafka_message_destroy(m);
        }
        emit_done(&p, false);
        rd_kafka_poll(p.producer, 0);
        retry_run(&p);
        state_tick(&p);
        if (p.eos)
            txn_maybe_commit(&p);
        if (p.fatal[0])
            break;
        update_pause(&p);
        if (opts->on_tick)
            opts->on_tick(opts->tick_arg, &p.stats);
        publish_health(&p, false);
        if (opts->stop_at_eof && all_done(&p))
            break;
    }
    /* Drain: no more fetching; finish what was consumed, let every alert
     * land, commit, leave. */
    p.health.stopping = true;
    publish_health(&p, true);
    reload_poll(&p, &reloader, true); /* its result is applied, or freed */
    if (p.eos && !p.fatal[0]) {
        txn_commit(&p);
    } else if (!p.eos) {
        finish_consumed(&p);
        vg_log(VG_LOG_INFO, "msg=\"stopping\" outstanding=%llu",
               (unsigned long long)p.outstanding);
        rd_kafka_flush(p.producer, 30000);
        drain(&p, 30000);
        state_checkpoint_all(&p, NULL);
        if (p.outstanding)
            vg_log(VG_LOG_ERROR,
                   "msg=\"outputs still unacknowledged at exit; their inputs stay uncommitted\" "
                   "count=%llu",
                   (unsigned long long)p.outstanding);
        rd_kafka_resp_err_t ce = rd_kafka_commit(p.consumer, NULL, 0);
        if (ce && ce != RD_KAFKA_RESP_ERR__NO_OFFSET)
            vg_log(VG_LOG_WARN, "msg=\"final commit failed\" err=\"%s\"",
                   rd_kafka_err2str(ce));
    }
    rd_kafka_consumer_close(p.consumer);
    if (p.fatal[0]) {
        snprintf(err, err_size, "%s", p.fatal);
        goto out;
    }
    rc = 0;
out:
    /* Messages still held by the pool belong to the consumer. */
    if (p.cur) {
        for (size_t i = 0; i < p.cur->n; i++)
            rd_kafka_message_destroy(p.cur->items[i].opaque);
        vg_workpool_release(p.pool, p.cur);
    }
    pthread_mutex_lock(&p.wake_mu);
    if (p.wake_q)
        rd_kafka_queue_destroy(p.wake_q);
    p.wake_q = NULL;
    pthread_mutex_unlock(&p.wake_mu);
    if (p.consumer)
        rd_kafka_destroy(p.consumer);
    if (p.producer) {
        /* Exactly-once: an open transaction left here (fatal error) is
         * aborted by the broker; nothing of it is committed. */
        if (p.eos) {
            rd_kafka_purge(p.producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(p.producer, 0);
        }
        rd_kafka_destroy(p.producer);
    }
    txn_counts_end(&p, false); /* of a transaction left open */
    free(p.txn_counts);
    free_retries(&p);
    state_stop(&p);
    vg_ruleset_destroy(p.rs_doomed);
    while (p.parts) {
        partition_t *pt = p.parts;
        p.parts = pt->next;
        while (pt->head) {
            inflight_t *f = pt->head;
            pt->head = f->next;
            free(f);
        }
        free(pt->topic);
        free(pt);
    }
    vg_workpool_destroy(p.pool);
    pthread_mutex_destroy(&p.wake_mu);
    vg_ruleset_destroy(p.rs);
    for (size_t i = 0; i < p.nclocks; i++)
        free(p.clocks[i].consumed_at);
    free(p.clocks);
    if (stats)
        *stats = p.stats;
    vg_log(VG_LOG_INFO,
           "msg=\"stopped\" consumed=%llu alerts=%llu dead_lettered=%llu delivery_retries=%llu",
           (unsigned long long)p.stats.consumed, (unsigned long long)p.stats.alerts,
           (unsigned long long)p.stats.dead_lettered,
           (unsigned long long)p.stats.delivery_retries);
    return rc;
}
