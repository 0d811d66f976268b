/* Outputs: alerts and dead-letter copies, produced on behalf of an input
 * record (offsets.h) that stays held until the broker acknowledges each
 * of them. At-least-once, a failed delivery is produced again after a
 * backoff; exactly-once, it dooms the open transaction (txn.c).
 *
 * Some deliveries can never succeed by producing the same message again
 * (classify()): at-least-once, such an output is given up on as
 * output.on_permanent_error says. dead-letter turns it into a loss
 * record on the dead-letter topic: its value cut to
 * output.dead_letter_max_bytes, headers with the reason, the source
 * position, the output's kind and topic, the original length and its
 * SHA-256; the input moves on with the loss recorded. block produces it
 * again for ever (its input, and every later one of its partition, stays
 * uncommitted). stop ends the run: what came before it is committed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monotime.h"
#include "pipeline_int.h"
#include "sha256.h"
#include "vigil/log.h"

struct outmsg {
    vg_pl_msg_kind_t kind; /* first (pipeline_int.h): alert or dead letter */
    bool loss;             /* a loss record, standing for an output given up on */
    bool failed;           /* its delivery failed at least once (counted in out.failing) */
    bool counted;          /* counted in vigil_output_permanent_errors_total */
    bool probe, probed;    /* to be produced alone, and was (see permanent()) */
    double failed_since;   /* when it first failed (monotonic s; 0: never) */
    vg_offsets_rec_t *origin;
    const char *reason; /* dead letters: a static vg_event_status_name() or "eval_failed" */
    /* While waiting in the retry or loss list: what to produce (owned;
     * value NULL for a null value). */
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
    if (om->failed_since == 0)
        om->failed_since = vg_monotime();
    om->failed = true;
}

/* om no longer counts as failing (given up on, or done). */
static void clear_failing(pipeline_t *p, outmsg_t *om)
{
    if (om->failed && --p->out.failing == 0)
        p->out.failing_since = 0;
    om->failed = false;
}

/* Lets go of om without releasing its record, which stays held for good:
 * no offset of its partition from its input on is committed (an input
 * read again after a restart). */
static void abandon(pipeline_t *p, outmsg_t *om)
{
    clear_failing(p, om);
    p->out.outstanding--;
    free_outmsg(om);
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
        abandon(p, om);
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

/* ---- outputs that can never be delivered ---- */

typedef enum {
    ERR_TRANSIENT, /* produced again, for as long as it takes */
    ERR_FIXABLE,   /* permanent unless the topic is changed: retried for a while */
    ERR_PERMANENT, /* the same message can never succeed */
} err_class_t;

/* Which delivery errors producing the same message again cannot cure.
 * local: producev refused it (not the broker). Errors of the topic that
 * an operator may fix (raise its max.message.bytes, create it, grant
 * the ACL, change its cleanup policy) count once they last
 * output.permanent_error_retry_ms; a message over the producer's own
 * message.max.bytes, an argument librdkafka refuses and a topic name
 * the broker refuses count at once. Everything else (timeouts, brokers
 * down, leaders moving, throttling, fencing) is transient. */
static err_class_t classify(rd_kafka_resp_err_t e, bool local)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return local ? ERR_PERMANENT : ERR_FIXABLE;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        return ERR_PERMANENT;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        return ERR_FIXABLE;
    default:
        return ERR_TRANSIENT;
    }
}

static const char *kind_name(const outmsg_t *om)
{
    return om->loss                          ? "loss_record"
           : om->kind == VG_PL_MSG_ALERT     ? "alert"
                                             : "dead_letter";
}

/* True when om, whose delivery failed with e, is to be given up on now
 * (never with output.on_permanent_error: block). Counts it once in
 * vigil_output_permanent_errors_total either way. */
static bool permanent(pipeline_t *p, outmsg_t *om, rd_kafka_resp_err_t e, bool local)
{
    err_class_t c = classify(e, local);
    if (c == ERR_TRANSIENT || (c == ERR_FIXABLE && vg_monotime() - om->failed_since <
                                                       (double)p->cfg->permanent_retry_ms / 1000))
        return false;
    /* The broker refuses a whole batch that is too large: a small output
     * produced beside a large one fails with it. Before one is given up
     * on, it is produced once more on its own (vg_pl_out_retry_run). */
    if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && !local && !om->probed) {
        om->probe = true;
        return false;
    }
    if (!om->counted)
        vg_metric_add(p->m.permanent_errors, (const char *[]){kind_name(om), rd_kafka_err2name(e)},
                      1);
    om->counted = true;
    return p->cfg->on_permanent_error != VG_ON_PERMANENT_BLOCK;
}

/* The last value of header name in h as a string ("" when missing). */
static const char *hdr_str(rd_kafka_headers_t *h, const char *name, char *buf, size_t size)
{
    const void *v;
    size_t n;
    buf[0] = '\0';
    if (h && rd_kafka_header_get_last(h, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR && v) {
        n = n < size - 1 ? n : size - 1;
        memcpy(buf, v, n);
        buf[n] = '\0';
    }
    return buf;
}

/* The headers of om's loss record (om still describes the output given
 * up on; hdrs are its headers, may be NULL). */
static rd_kafka_headers_t *loss_headers(const outmsg_t *om, const char *topic, const void *value,
                                        size_t len, rd_kafka_headers_t *hdrs,
                                        rd_kafka_resp_err_t e)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(10);
    const vg_offsets_part_t *lp = om->origin->part;
    char buf[512], sha[VG_SHA256_HEX_LEN];
    snprintf(buf, sizeof(buf), "undeliverable: %s: %s", topic, rd_kafka_err2str(e));
    rd_kafka_header_add(h, "vigil-error", -1, buf, -1);
    rd_kafka_header_add(h, "vigil-output-kind", -1, kind_name(om), -1);
    rd_kafka_header_add(h, "vigil-output-topic", -1, topic, -1);
    rd_kafka_header_add(h, "vigil-source-topic", -1, lp->topic, -1);
    snprintf(buf, sizeof(buf), "%d", (int)lp->partition);
    rd_kafka_header_add(h, "vigil-source-partition", -1, buf, -1);
    snprintf(buf, sizeof(buf), "%" PRId64, om->origin->offset);
    rd_kafka_header_add(h, "vigil-source-offset", -1, buf, -1);
    snprintf(buf, sizeof(buf), "%zu", len);
    rd_kafka_header_add(h, "vigil-original-length", -1, buf, -1);
    vg_sha256_hex(value, len, sha);
    rd_kafka_header_add(h, "vigil-original-sha256", -1, sha, -1);
    if (om->kind == VG_PL_MSG_ALERT) {
        rd_kafka_header_add(h, "vigil-rule", -1, hdr_str(hdrs, "vigil-rule", buf, sizeof(buf)),
                            -1);
        rd_kafka_header_add(h, "vigil-severity", -1,
                            hdr_str(hdrs, "vigil-severity", buf, sizeof(buf)), -1);
    }
    return h;
}

/* Logs an output given up on, at most once a second (with how many were
 * not logged since). */
static void log_loss(pipeline_t *p, const outmsg_t *om, const char *topic, size_t len,
                     rd_kafka_resp_err_t e, const char *what)
{
    output_t *o = &p->out;
    time_t now = time(NULL);
    if (now == o->last_loss_log) {
        o->losses_suppressed++;
        return;
    }
    const vg_offsets_part_t *lp = om->origin->part;
    vg_log(VG_LOG_ERROR,
           "msg=\"%s\" kind=%s topic=%s err=\"%s\" bytes=%zu source_topic=%s "
           "source_partition=%d source_offset=%lld suppressed=%llu",
           what, kind_name(om), topic, rd_kafka_err2str(e), len, lp->topic, (int)lp->partition,
           (long long)om->origin->offset, (unsigned long long)o->losses_suppressed);
    o->last_loss_log = now;
    o->losses_suppressed = 0;
}

/* Makes om the loss record of what it was (value, hdrs: owned) and
 * queues it for the main loop, which produces it (vg_pl_out_retry_run):
 * this may run in a delivery report. Its record stays held meanwhile.
 * False (nothing changed) when out of memory. */
static bool make_loss_record(pipeline_t *p, outmsg_t *om, const char *topic, void *value,
                             size_t len, const void *key, size_t key_len,
                             rd_kafka_headers_t *hdrs, rd_kafka_resp_err_t e)
{
    size_t max = p->cfg->dead_letter_max_bytes;
    size_t vlen = len < max ? len : max, klen = key_len < max ? key_len : max;
    char *t = strdup(p->cfg->dead_letter_topic);
    void *v = value ? malloc(vlen ? vlen : 1) : NULL;
    void *k = klen ? malloc(klen) : NULL;
    if (!t || (value && !v) || (klen && !k)) {
        free(t);
        free(v);
        free(k);
        return false;
    }
    if (vlen)
        memcpy(v, value, vlen);
    if (klen)
        memcpy(k, key, klen);
    rd_kafka_headers_t *lh = loss_headers(om, topic, value, len, hdrs, e);
    free(value);
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    clear_failing(p, om);
    om->kind = VG_PL_MSG_DEAD_LETTER;
    om->loss = true;
    om->counted = false;
    om->failed_since = 0;
    om->reason = "undeliverable";
    om->topic = t;
    om->value = v;
    om->len = vlen;
    om->key = k;
    om->key_len = klen;
    om->hdrs = lh;
    om->next = NULL;
    output_t *o = &p->out;
    *(o->loss_tail ? &o->loss_tail->next : &o->loss_head) = om;
    o->loss_tail = om;
    return true;
}

/* om can never be delivered (e) and output.on_permanent_error is not
 * block. Takes value and hdrs (copies key). */
static void give_up(pipeline_t *p, outmsg_t *om, const char *topic, void *value, size_t len,
                    const void *key, size_t key_len, rd_kafka_headers_t *hdrs,
                    rd_kafka_resp_err_t e)
{
    if (p->cfg->on_permanent_error == VG_ON_PERMANENT_STOP) {
        const vg_offsets_part_t *lp = om->origin->part;
        if (!p->fatal[0])
            snprintf(p->fatal, sizeof(p->fatal),
                     "an %s for topic %.200s can never be delivered (%s) and "
                     "output.on_permanent_error is stop; input committed up to topic %.100s "
                     "partition %d offset %lld",
                     kind_name(om), topic, rd_kafka_err2str(e), lp->topic, (int)lp->partition,
                     (long long)om->origin->offset);
        log_loss(p, om, topic, len, e, "output can never be delivered; stopping");
    } else if (om->loss) {
        /* Nothing left to record it in but the log: let the input go on. */
        log_loss(p, om, topic, len, e, "loss record undeliverable; the loss is only in this log");
    } else {
        log_loss(p, om, topic, len, e, "output can never be delivered; a loss record goes to "
                                       "the dead-letter topic in its place");
        if (make_loss_record(p, om, topic, value, len, key, key_len, hdrs, e))
            return;
        vg_log(VG_LOG_ERROR, "msg=\"out of memory making a loss record\"");
    }
    free(value);
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    if (om->loss && p->cfg->on_permanent_error != VG_ON_PERMANENT_STOP) {
        clear_failing(p, om);
        vg_pl_out_done(p, om);
    } else {
        abandon(p, om);
    }
}

/* A produce call refused om with e: it is given up on, or produced again
 * later. Takes value and hdrs (copies topic and key). */
static void refused(pipeline_t *p, outmsg_t *om, const char *topic, void *value, size_t len,
                    const void *key, size_t key_len, rd_kafka_headers_t *hdrs,
                    rd_kafka_resp_err_t e)
{
    note_failing(p, om);
    vg_pl_out_log_error(p, topic, e);
    if (permanent(p, om, e, true))
        give_up(p, om, topic, value, len, key, key_len, hdrs, e);
    else
        retry_later(p, om, topic, value, len, key, key_len, hdrs);
}

/* om was the output produced alone: the next one may go, at once. */
static void probe_done(output_t *o, const outmsg_t *om)
{
    if (o->probing != om)
        return;
    o->probing = NULL;
    if (o->retry_head)
        o->retry_at = vg_monotime();
}

/* Produces om again (from the retry or the loss list). */
static void produce_again(pipeline_t *p, outmsg_t *om)
{
    char *topic = om->topic;
    void *value = om->value;
    void *key = om->key;
    rd_kafka_headers_t *hdrs = om->hdrs;
    om->topic = om->value = om->key = NULL;
    om->hdrs = NULL;
    om->next = NULL;
    rd_kafka_resp_err_t e = produce(p, topic, value, om->len, key, om->key_len, hdrs, om);
    if (e) {
        probe_done(&p->out, om);
        refused(p, om, topic, value, om->len, key, om->key_len, hdrs, e);
    }
    free(topic);
    free(key);
}

/* Puts om back on the retry list as it is. */
static void retry_append(output_t *o, outmsg_t *om)
{
    om->next = NULL;
    *(o->retry_tail ? &o->retry_tail->next : &o->retry_head) = om;
    o->retry_tail = om;
    o->retry_count++;
    if (o->retry_at == 0)
        o->retry_at = vg_monotime() + o->retry_backoff;
}

/* Produces the loss records waiting, then the retry list again once its
 * backoff has passed; each round doubles the next backoff (up to
 * VG_RETRY_MAX_S) until an output that had failed is acknowledged. Of
 * the outputs to be produced alone, one is in flight at a time. */
void vg_pl_out_retry_run(pipeline_t *p)
{
    output_t *o = &p->out;
    while (o->loss_head) {
        outmsg_t *om = o->loss_head;
        o->loss_head = om->next;
        if (!o->loss_head)
            o->loss_tail = NULL;
        produce_again(p, om);
    }
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
        if (om->probe && o->probing) {
            retry_append(o, om);
            continue;
        }
        if (om->probe) {
            om->probe = false;
            om->probed = true;
            o->probing = om;
        }
        p->stats.delivery_retries++;
        vg_metric_add(p->m.delivery_retries, NULL, 1);
        produce_again(p, om);
    }
}

static void free_list(outmsg_t *om)
{
    while (om) {
        outmsg_t *next = om->next;
        free_outmsg(om);
        om = next;
    }
}

void vg_pl_out_free_retries(pipeline_t *p)
{
    output_t *o = &p->out;
    free_list(o->retry_head);
    free_list(o->loss_head);
    o->retry_head = o->retry_tail = o->loss_head = o->loss_tail = NULL;
    o->retry_count = 0;
}

/* A header of a produced message as a string ("" when missing). The
 * labels of an alert's counters come from its headers rather than from
 * its rule, which a reload may have freed by the time it is acked. */
static const char *header_str(const rd_kafka_message_t *m, const char *name, char *buf, size_t size)
{
    rd_kafka_headers_t *h = NULL;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;
    return hdr_str(h, name, buf, size);
}

static void count_delivery(pipeline_t *p, const rd_kafka_message_t *m, const outmsg_t *om)
{
    if (!p->metrics)
        return;
    if (om->kind == VG_PL_MSG_DEAD_LETTER) {
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
    clear_failing(p, om);
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
 * have, unless it can never be delivered (permanent()). */
static void dr_failed(pipeline_t *p, const rd_kafka_message_t *m, outmsg_t *om)
{
    note_failing(p, om);
    vg_pl_out_log_error(p, rd_kafka_topic_name(m->rkt), m->err);
    /* A null value stays null. */
    void *copy = m->payload ? malloc(m->len ? m->len : 1) : NULL;
    rd_kafka_headers_t *h = NULL, *hc = NULL;
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
        hc = rd_kafka_headers_copy(h);
    if (copy && m->len)
        memcpy(copy, m->payload, m->len);
    if (m->payload && !copy) {
        if (hc)
            rd_kafka_headers_destroy(hc);
        vg_log(VG_LOG_ERROR, "msg=\"out of memory: an output cannot be queued again; its "
                             "input stays uncommitted until a restart\"");
        abandon(p, om);
        return;
    }
    if (permanent(p, om, m->err, false))
        give_up(p, om, rd_kafka_topic_name(m->rkt), copy, m->len, m->key, m->key_len, hc, m->err);
    else
        retry_later(p, om, rd_kafka_topic_name(m->rkt), copy, m->len, m->key, m->key_len, hc);
}

/* The producer's delivery reports (served by rd_kafka_poll and flush on
 * the main thread). Each message's opaque says what it is. */
void vg_pl_out_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    pipeline_t *p = opaque;
    const vg_pl_msg_kind_t *kind = m->_private;
    (void)rk;
    if (!kind)
        return;
    if (*kind == VG_PL_MSG_CHECKPOINT) {
        vg_pl_state_dr(p, m);
        return;
    }
    outmsg_t *om = m->_private;
    probe_done(&p->out, om);
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
    if (om->kind == VG_PL_MSG_DEAD_LETTER)
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
    /* A null value (data NULL) stays null. */
    void *copy = data ? malloc(len ? len : 1) : NULL;
    vg_offsets_hold(f);
    if (!om || (data && !copy)) {
        /* The record stays held: this input is never committed. */
        free(om);
        free(copy);
        rd_kafka_headers_destroy(hdrs);
        vg_log(VG_LOG_ERROR, "msg=\"out of memory producing to %s\"", topic);
        return;
    }
    if (len)
        memcpy(copy, data, len);
    *om = (outmsg_t){.kind = dead_letter_reason ? VG_PL_MSG_DEAD_LETTER : VG_PL_MSG_ALERT,
                     .origin = f,
                     .reason = dead_letter_reason};
    p->out.outstanding++;
    rd_kafka_resp_err_t e = produce(p, topic, copy, len, key, key_len, hdrs, om);
    if (!e)
        return;
    if (p->eos.on) {
        vg_pl_out_log_error(p, topic, e);
        free(copy);
        rd_kafka_headers_destroy(hdrs);
        p->eos.failed = true;
        vg_pl_out_done(p, om);
        return;
    }
    refused(p, om, topic, copy, len, key, key_len, hdrs, e);
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
