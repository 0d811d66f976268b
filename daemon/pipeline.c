/* The Kafka pipeline. One thread: poll the consumer, evaluate, produce,
 * serve delivery reports. Each input message gets an in-flight record
 * counting the outputs not yet acknowledged; records leave their
 * partition's queue in offset order, and only then is the offset stored
 * for commit. A failed delivery is produced again, so a message's offset
 * is never committed before all its alerts are on the broker. */
#include "vigil/pipeline.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vigil/alert.h"
#include "vigil/event.h"
#include "vigil/log.h"
#include "vigil/scanner.h"
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
    partition_t *next;
};

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
} pipeline_t;

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
    if (last < 0 || !pt->assigned)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset = last + 1;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(p->consumer, l);
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

typedef struct outmsg {
    inflight_t *origin;
    bool dead_letter;
} outmsg_t;

static int produce(pipeline_t *p, const char *topic, void *value, size_t len, const void *key,
                   size_t key_len, rd_kafka_headers_t *hdrs, outmsg_t *om)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(value, len),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE), RD_KAFKA_V_OPAQUE(om), RD_KAFKA_V_END);
        if (!e)
            return 0;
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            /* Back-pressure: serve delivery reports until there is room. */
            rd_kafka_poll(p->producer, 100);
            continue;
        }
        vg_log(VG_LOG_ERROR, "msg=\"cannot produce\" topic=%s err=\"%s\"", topic,
               rd_kafka_err2str(e));
        return -1;
    }
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    pipeline_t *p = opaque;
    outmsg_t *om = m->_private;
    if (!om)
        return;
    if (m->err) {
        /* Not acknowledged: send it again so the input offset can never be
         * committed past an alert the broker does not have. */
        time_t now = time(NULL);
        if (now != p->last_dr_error_log) {
            vg_log(VG_LOG_ERROR,
                   "msg=\"delivery failed, retrying\" topic=%s err=\"%s\" suppressed=%llu",
                   rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err),
                   (unsigned long long)p->dr_errors_suppressed);
            p->last_dr_error_log = now;
            p->dr_errors_suppressed = 0;
        } else {
            p->dr_errors_suppressed++;
        }
        p->stats.delivery_retries++;
        void *copy = malloc(m->len ? m->len : 1);
        rd_kafka_headers_t *h = NULL, *hc = NULL;
        if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
            hc = rd_kafka_headers_copy(h);
        if (copy) {
            memcpy(copy, m->payload, m->len);
            if (produce(p, rd_kafka_topic_name(m->rkt), copy, m->len, m->key, m->key_len, hc,
                        om) == 0)
                return;
            free(copy);
        }
        if (hc)
            rd_kafka_headers_destroy(hc);
        /* Could not even queue it: leave the record pending forever, so
         * its offset (and those after it) are not committed. */
        vg_log(VG_LOG_ERROR, "msg=\"alert could not be re-queued; its input will be "
                             "redelivered after restart\"");
        free(om);
        return;
    }
    if (om->dead_letter)
        p->stats.dead_lettered++;
    else
        p->stats.alerts++;
    p->outstanding--;
    inflight_t *f = om->origin;
    free(om);
    release(p, f);
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

static void dead_letter(pipeline_t *p, const rd_kafka_message_t *m, inflight_t *f,
                        const char *reason)
{
    outmsg_t *om = calloc(1, sizeof(*om));
    void *copy = malloc(m->len ? m->len : 1);
    if (!om || !copy) {
        free(om);
        free(copy);
        vg_log(VG_LOG_ERROR, "msg=\"out of memory dead-lettering\"");
        f->pending++; /* never completes: the offset is not committed */
        return;
    }
    if (m->len)
        memcpy(copy, m->payload, m->len);
    om->origin = f;
    om->dead_letter = true;
    f->pending++;
    p->outstanding++;
    rd_kafka_headers_t *h = source_headers(m, reason);
    if (produce(p, p->cfg->dead_letter_topic, copy, m->len, m->key, m->key_len, h, om) != 0) {
        free(copy);
        rd_kafka_headers_destroy(h);
        free(om);
        p->outstanding--; /* stays pending: never committed */
    }
}

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
        return;
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

    if (it->status != VG_EVENT_OK || it->eval_failed) {
        char reason[320];
        if (it->eval_failed)
            snprintf(reason, sizeof(reason), "eval_failed: %.*s", (int)it->err_len,
                     b->text + it->err_off);
        else
            snprintf(reason, sizeof(reason), "%s: %.*s", vg_event_status_name(it->status),
                     (int)it->err_len, b->text + it->err_off);
        vg_log(VG_LOG_WARN, "msg=\"dead-lettering event\" topic=%s partition=%d offset=%lld "
                            "reason=\"%s\"",
               topic, (int)m->partition, (long long)m->offset, reason);
        dead_letter(p, m, f, reason);
        release(p, f);
        return;
    }
    for (size_t k = 0; k < it->nalerts; k++) {
        const vg_work_alert_t *a = &b->alerts[it->first_alert + k];
        const vg_rule_t *r = a->rule;
        outmsg_t *om = calloc(1, sizeof(*om));
        char *alert = malloc(a->len ? a->len : 1);
        if (!alert || !om) {
            free(alert);
            free(om);
            vg_log(VG_LOG_ERROR, "msg=\"out of memory producing an alert\"");
            f->pending++; /* never completes: the offset is not committed */
            continue;
        }
        memcpy(alert, b->text + a->off, a->len);
        om->origin = f;
        f->pending++;
        p->outstanding++;
        rd_kafka_headers_t *h = rd_kafka_headers_new(2);
        rd_kafka_header_add(h, "vigil-rule", -1, vg_rule_id(r), -1);
        rd_kafka_header_add(h, "vigil-severity", -1, vg_rule_severity(r), -1);
        const char *out = vg_rule_topic(r) ? vg_rule_topic(r) : p->cfg->output_topic;
        const char *key = vg_rule_id(r);
        if (produce(p, out, alert, a->len, key, strlen(key), h, om) != 0) {
            free(alert);
            rd_kafka_headers_destroy(h);
            free(om);
            p->outstanding--; /* the record stays pending: never committed */
        }
    }
    release(p, f);
}

static void emit_batch(pipeline_t *p, vg_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        emit_item(p, b, &b->items[i]);
        rd_kafka_message_destroy(b->items[i].opaque);
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
    if (pt)
        pt->eof = false;
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
        if (vg_batch_add(p->cur, m->payload, m->len, &src, m))
            return;
        submit_current(p);
    }
}

/* ---- rebalancing ---- */

static void drain(pipeline_t *p, int timeout_ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (p->outstanding > 0) {
        rd_kafka_poll(p->producer, 50);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms > timeout_ms)
            break;
    }
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
                p->assigned++;
            }
        }
        vg_log(VG_LOG_INFO, "msg=\"partitions assigned\" count=%d total=%zu", parts->cnt,
               p->assigned);
        rd_kafka_error_t *e = NULL;
        if (cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (e) {
            vg_log(VG_LOG_ERROR, "msg=\"assign failed\" err=\"%s\"", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        if (!p->ready) {
            p->ready = true;
            if (p->opts->on_ready)
                p->opts->on_ready(p->opts->ready_arg);
        }
        return;
    }
    /* Revoked (or lost): evaluate what was consumed, let its alerts land
     * and commit, so that the next owner starts right after them. */
    finish_consumed(p);
    drain(p, 30000);
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS || !rd_kafka_assignment_lost(rk))
        rd_kafka_commit(rk, NULL, 0);
    for (int i = 0; i < parts->cnt; i++) {
        partition_t *pt = find_part(p, parts->elems[i].topic, parts->elems[i].partition, false);
        if (pt && pt->assigned) {
            pt->assigned = false;
            p->assigned--;
        }
    }
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

static int setup(pipeline_t *p, char *err, size_t err_size)
{
    const vg_config_t *cfg = p->cfg;
    char e[512];
    rd_kafka_conf_t *pc = base_conf(cfg, err, err_size);
    if (!pc)
        return -1;
    if (set(pc, "acks", "all", err, err_size) || set(pc, "linger.ms", "5", err, err_size) ||
        set(pc, "enable.idempotence", "true", err, err_size) ||
        apply_props(pc, cfg, err, err_size)) {
        rd_kafka_conf_destroy(pc);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(pc, dr_cb);
    rd_kafka_conf_set_opaque(pc, p);
    p->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, e, sizeof(e));
    if (!p->producer) {
        snprintf(err, err_size, "cannot create the Kafka producer: %s", e);
        return -1;
    }
    rd_kafka_conf_t *cc = base_conf(cfg, err, err_size);
    if (!cc)
        return -1;
    if (set(cc, "group.id", cfg->group, err, err_size) ||
        set(cc, "enable.auto.commit", "true", err, err_size) ||
        set(cc, "enable.auto.offset.store", "false", err, err_size) ||
        set(cc, "auto.offset.reset", "earliest", err, err_size) ||
        set(cc, "enable.partition.eof", p->opts->stop_at_eof ? "true" : "false", err,
            err_size) ||
        apply_props(cc, cfg, err, err_size)) {
        rd_kafka_conf_destroy(cc);
        return -1;
    }
    rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
    rd_kafka_conf_set_opaque(cc, p);
    p->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, e, sizeof(e));
    if (!p->consumer) {
        snprintf(err, err_size, "cannot create the Kafka consumer: %s", e);
        return -1;
    }
    rd_kafka_poll_set_consumer(p->consumer);
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
    if (!p->ready || p->assigned == 0 || p->outstanding > 0 || (p->cur && p->cur->n) ||
        vg_workpool_in_flight(p->pool) > 0)
        return false;
    for (partition_t *pt = p->parts; pt; pt = pt->next)
        if (pt->assigned && (!pt->eof || pt->inflight))
            return false;
    return true;
}

static void reload(pipeline_t *p)
{
    vg_ruleset_t *nrs = p->opts->reload_fn ? p->opts->reload_fn(p->opts->reload_arg) : NULL;
    if (!nrs) {
        p->stats.reloads_failed++;
        vg_log(VG_LOG_ERROR, "msg=\"reload failed; keeping the current rules\" ruleset=%s",
               vg_ruleset_hash(p->rs));
        return;
    }
    /* Events consumed before the reload are evaluated with the old rules,
     * those after with the new: none twice, none skipped. */
    finish_consumed(p);
    if (vg_workpool_set_ruleset(p->pool, nrs) != 0) {
        vg_ruleset_destroy(nrs);
        p->stats.reloads_failed++;
        vg_log(VG_LOG_ERROR, "msg=\"reload failed (out of memory); keeping the current rules\"");
        return;
    }
    vg_ruleset_destroy(p->rs);
    p->rs = nrs;
    p->stats.reloads_ok++;
    vg_log(VG_LOG_INFO, "msg=\"rules reloaded\" rules=%zu ruleset=%s", vg_ruleset_rule_count(nrs),
           vg_ruleset_hash(nrs));
}

static unsigned default_workers(void)
{
    const char *env = getenv("VIGIL_WORKERS");
    if (env)
        return (unsigned)strtoul(env, NULL, 10);
    /* The main thread polls and produces, librdkafka has its own threads:
     * one evaluation thread per further core. */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 1 ? (unsigned)(n - 1 > 16 ? 16 : n - 1) : 0;
}

int vg_pipeline_run(const vg_config_t *cfg, vg_ruleset_t *rules, const vg_pipeline_opts_t *opts,
                    vg_pipeline_stats_t *stats, char *err, size_t err_size)
{
    pipeline_t p = {.cfg = cfg, .opts = opts, .rs = rules};
    int rc = -1;
    vg_workpool_options_t wo = {.workers = default_workers(),
                                .limits = {cfg->max_event_bytes, cfg->max_event_depth},
                                .time_field = cfg->time_field};
    p.pool = vg_workpool_new(rules, &wo);
    if (!p.pool) {
        snprintf(err, err_size, "out of memory setting up matching");
        goto out;
    }
    if (setup(&p, err, err_size) != 0)
        goto out;
    vg_log(VG_LOG_INFO, "msg=\"started\" brokers=\"%s\" group=%s rules=%zu ruleset=%s",
           cfg->brokers, cfg->group, vg_ruleset_rule_count(rules), vg_ruleset_hash(rules));
    while (!*opts->stop) {
        if (opts->reload && *opts->reload) {
            *opts->reload = 0;
            reload(&p);
        }
        /* While a batch is open, take what is already fetched and no more:
         * an idle stream must not hold events back. */
        bool filling = p.cur && p.cur->n;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p.consumer, filling ? 0 : 100);
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
        if (opts->on_tick)
            opts->on_tick(opts->tick_arg, &p.stats);
        if (opts->stop_at_eof && all_done(&p))
            break;
    }
    /* Drain: no more fetching; finish what was consumed, let every alert
     * land, commit, leave. */
    finish_consumed(&p);
    vg_log(VG_LOG_INFO, "msg=\"stopping\" outstanding=%llu", (unsigned long long)p.outstanding);
    rd_kafka_flush(p.producer, 30000);
    drain(&p, 30000);
    if (p.outstanding)
        vg_log(VG_LOG_ERROR,
               "msg=\"outputs still unacknowledged at exit; their inputs stay uncommitted\" "
               "count=%llu",
               (unsigned long long)p.outstanding);
    rd_kafka_resp_err_t ce = rd_kafka_commit(p.consumer, NULL, 0);
    if (ce && ce != RD_KAFKA_RESP_ERR__NO_OFFSET)
        vg_log(VG_LOG_WARN, "msg=\"final commit failed\" err=\"%s\"", rd_kafka_err2str(ce));
    rd_kafka_consumer_close(p.consumer);
    rc = 0;
out:
    /* Messages still held by the pool belong to the consumer. */
    if (p.cur) {
        for (size_t i = 0; i < p.cur->n; i++)
            rd_kafka_message_destroy(p.cur->items[i].opaque);
        vg_workpool_release(p.pool, p.cur);
    }
    if (p.consumer)
        rd_kafka_destroy(p.consumer);
    if (p.producer)
        rd_kafka_destroy(p.producer);
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
    vg_ruleset_destroy(p.rs);
    if (stats)
        *stats = p.stats;
    vg_log(VG_LOG_INFO,
           "msg=\"stopped\" consumed=%llu alerts=%llu dead_lettered=%llu delivery_retries=%llu",
           (unsigned long long)p.stats.consumed, (unsigned long long)p.stats.alerts,
           (unsigned long long)p.stats.dead_lettered,
           (unsigned long long)p.stats.delivery_retries);
    return rc;
}
