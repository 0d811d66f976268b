/* Outputs: alerts and dead-letter copies, produced on behalf of an input
 * record (offsets.h) that stays held until the broker acknowledges each
 * of them. At-least-once, a failed delivery is produced again after a
 * backoff; exactly-once, it dooms the open transaction (txn.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monotime.h"
#include "pipeline_int.h"
#include "vigil/log.h"

struct outmsg {
    vg_offsets_rec_t *origin;
    bool dead_letter;
    bool failed;        /* its delivery failed at least once (counted in out.failing) */
    const char *reason; /* dead letters: a static vg_event_status_name() or "eval_failed" */
    /* While waiting in the retry list: what to produce again (owned). */
    outmsg_t *next;
    char *topic;
    void *value, *key;
    size_t len, key_len;
    rd_kafka_headers_t *hdrs;
};

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
void vg_pl_out_log_error(pipeline_t *p, const char *topic, rd_kafka_resp_err_t err)
{
    output_t *o = &p->out;
    time_t now = time(NULL);
    snprintf(o->last_error, sizeof(o->last_error), "%s: %s", topic, rd_kafka_err2str(err));
    if (now == o->last_dr_error_log) {
        o->dr_errors_suppressed++;
        return;
    }
    if (p->eos.on)
        vg_log(VG_LOG_ERROR,
               "msg=\"delivery failed; the transaction will be aborted and its input read "
               "again\" topic=%s err=\"%s\" suppressed=%llu",
               topic, rd_kafka_err2str(err), (unsigned long long)o->dr_errors_suppressed);
    else
        vg_log(VG_LOG_ERROR,
               "msg=\"delivery failed; producing it again, input stays uncommitted\" topic=%s "
               "err=\"%s\" retry_in_s=%.1f waiting=%llu suppressed=%llu",
               topic, rd_kafka_err2str(err),
               o->retry_backoff > 0 ? o->retry_backoff : VG_RETRY_MIN_S,
               (unsigned long long)o->failing, (unsigned long long)o->dr_errors_suppressed);
    o->last_dr_error_log = now;
    o->dr_errors_suppressed = 0;
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

/* om's delivery failed (the first time: it now counts as failing). */
static void note_failing(pipeline_t *p, outmsg_t *om)
{
    if (!om->failed && p->out.failing++ == 0)
        p->out.failing_since = vg_monotime();
    om->failed = true;
}

/* Puts om on the retry list with what to produce again; takes ownership
 * of value and hdrs (copies topic and key). When even that fails for
 * lack of memory, om's record stays pending for good: its offset (and
 * every later one of its partition) is never committed, and the input
 * is read again after a restart. */
static void retry_later(pipeline_t *p, outmsg_t *om, const char *topic, void *value, size_t len,
                        const void *key, size_t key_len, rd_kafka_headers_t *hdrs)
{
    output_t *o = &p->out;
    double now = vg_monotime();
    note_failing(p, om);
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
    *(o->retry_tail ? &o->retry_tail->next : &o->retry_head) = om;
    o->retry_tail = om;
    o->retry_count++;
    if (o->retry_backoff == 0)
        o->retry_backoff = VG_RETRY_MIN_S;
    if (o->retry_at == 0)
        o->retry_at = now + o->retry_backoff;
}

/* Produces the retry list again once its backoff has passed; each round
 * doubles the next backoff (up to VG_RETRY_MAX_S) until an output that
 * had failed is acknowledged. */
void vg_pl_out_retry_run(pipeline_t *p)
{
    output_t *o = &p->out;
    if (!o->retry_head || vg_monotime() < o->retry_at)
        return;
    outmsg_t *list = o->retry_head;
    o->retry_head = o->retry_tail = NULL;
    o->retry_count = 0;
    o->retry_at = 0;
    o->retry_backoff =
        o->retry_backoff * 2 > VG_RETRY_MAX_S ? VG_RETRY_MAX_S : o->retry_backoff * 2;
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
            vg_pl_out_log_error(p, topic, e);
            retry_later(p, om, topic, value, om->len, key, om->key_len, hdrs);
        }
        free(topic);
        free(key);
    }
}

void vg_pl_out_free_retries(pipeline_t *p)
{
    output_t *o = &p->out;
    while (o->retry_head) {
        outmsg_t *om = o->retry_head;
        o->retry_head = om->next;
        free_outmsg(om);
    }
    o->retry_tail = NULL;
    o->retry_count = 0;
}

/* A header of a produced message as a string ("" when missing). The
 * labels of an alert's counters come from its headers rather than from
 * its rule, which a reload may have freed by the time it is acked. */
static const char *header_str(const rd_kafka_message_t *m, const char *name, char *buf, size_t size)
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

static void count_delivery(pipeline_t *p, const rd_kafka_message_t *m, const outmsg_t *om)
{
    if (!p->metrics)
        return;
    if (om->dead_letter) {
        if (m->err)
            vg_metric_add(p->m.dead_letters_failed, NULL, 1);
        else
            vg_pl_txn_count(p, p->m.dead_lettered, (const char *[]){om->reason}, 1);
        return;
    }
    char rule[256], severity[32];
    const char *labels[] = {header_str(m, "vigil-rule", rule, sizeof(rule)),
                            header_str(m, "vigil-severity", severity, sizeof(severity))};
    if (m->err)
        vg_metric_add(p->m.alerts_failed, labels, 1);
    else
        vg_pl_txn_count(p, p->m.alerts_produced, labels, 2);
}

/* An output is done with: acknowledged, or (exactly-once) failed or
 * purged with its transaction. */
void vg_pl_out_done(pipeline_t *p, outmsg_t *om)
{
    if (om->failed && --p->out.failing == 0)
        p->out.failing_since = 0;
    p->out.outstanding--;
    vg_offsets_rec_t *f = om->origin;
    free(om);
    vg_pl_release(p, f);
}

static bool purged(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR__PURGE_QUEUE || e == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
}

/* At-least-once: a delivery failed; it goes on the retry list so that the
 * input offset can never be committed past an alert the broker does not
 * have. */
static void dr_failed(pipeline_t *p, const rd_kafka_message_t *m, outmsg_t *om)
{
    note_failing(p, om);
    vg_pl_out_log_error(p, rd_kafka_topic_name(m->rkt), m->err);
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
}

/* The producer's delivery reports (served by rd_kafka_poll and flush on
 * the main thread). */
void vg_pl_out_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    pipeline_t *p = opaque;
    outmsg_t *om = m->_private;
    (void)rk;
    if (!om)
        return;
    if (p->st.ps && strcmp(rd_kafka_topic_name(m->rkt), p->cfg->state_topic) == 0) {
        vg_pl_state_dr(p, m);
        return;
    }
    if (!purged(m->err))
        count_delivery(p, m, om);
    if (m->err && p->eos.on) {
        /* Its transaction is doomed: it is aborted and its input read
         * again. Purged messages belong to an abort already under way. */
        if (!purged(m->err)) {
            p->eos.failed = true;
            vg_pl_out_log_error(p, rd_kafka_topic_name(m->rkt), m->err);
        }
        vg_pl_out_done(p, om);
        return;
    }
    if (m->err) {
        dr_failed(p, m, om);
        return;
    }
    if (om->dead_letter)
        p->stats.dead_lettered++;
    else
        p->stats.alerts++;
    /* An acknowledgement is news from a broker: the producer is connected. */
    p->health.brokers_down_at[1] = 0;
    if (om->failed)
        p->out.retry_backoff = 0; /* deliveries work again */
    vg_pl_out_done(p, om);
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

void vg_pl_out_send(pipeline_t *p, vg_offsets_rec_t *f, const char *dead_letter_reason,
                    const char *topic, const void *data, size_t len, const void *key,
                    size_t key_len, rd_kafka_headers_t *hdrs)
{
    outmsg_t *om = malloc(sizeof(*om));
    void *copy = malloc(len ? len : 1);
    vg_offsets_hold(f);
    if (!om || !copy) {
        /* The record stays held: this input is never committed. */
        free(om);
        free(copy);
        rd_kafka_headers_destroy(hdrs);
        vg_log(VG_LOG_ERROR, "msg=\"out of memory producing to %s\"", topic);
        return;
    }
    if (len)
        memcpy(copy, data, len);
    *om = (outmsg_t){
        .origin = f, .dead_letter = dead_letter_reason != NULL, .reason = dead_letter_reason};
    p->out.outstanding++;
    rd_kafka_resp_err_t e = produce(p, topic, copy, len, key, key_len, hdrs, om);
    if (!e)
        return;
    if (!p->eos.on)
        note_failing(p, om);
    vg_pl_out_log_error(p, topic, e);
    if (p->eos.on) {
        free(copy);
        rd_kafka_headers_destroy(hdrs);
        p->eos.failed = true;
        vg_pl_out_done(p, om);
        return;
    }
    retry_later(p, om, topic, copy, len, key, key_len, hdrs);
}

void vg_pl_out_alert(pipeline_t *p, vg_offsets_rec_t *f, const vg_rule_t *r, const char *json,
                     size_t len, const char *key)
{
    vg_metric_add(p->m.rule_matches, (const char *[]){vg_rule_id(r)}, 1);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "vigil-rule", -1, vg_rule_id(r), -1);
    rd_kafka_header_add(h, "vigil-severity", -1, vg_rule_severity(r), -1);
    const char *out = vg_rule_topic(r) ? vg_rule_topic(r) : p->cfg->output_topic;
    vg_pl_out_send(p, f, NULL, out, json, len, key, strlen(key), h);
}

void vg_pl_out_dead_letter(pipeline_t *p, const rd_kafka_message_t *m, vg_offsets_rec_t *f,
                           const char *kind, const char *reason)
{
    vg_pl_out_send(p, f, kind, p->cfg->dead_letter_topic, m->payload, m->len, m->key, m->key_len,
                   source_headers(m, reason));
}

/* Serves delivery reports (and produces retries) until every output is
 * acknowledged, or for timeout_ms. */
void vg_pl_out_drain(pipeline_t *p, int timeout_ms)
{
    double deadline = vg_monotime() + timeout_ms / 1000.0;
    while (p->out.outstanding > 0 && vg_monotime() < deadline) {
        rd_kafka_poll(p->producer, 50);
        vg_pl_out_retry_run(p);
    }
}
