/* The librdkafka clients: their configuration (our defaults, then the
 * user's kafka.properties), and the callbacks that are not about outputs
 * or rebalancing: logging, errors, commits, statistics. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monotime.h"
#include "pipeline_int.h"
#include "vigil/log.h"

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
    vg_log(level <= 3   ? VG_LOG_ERROR
           : level <= 4 ? VG_LOG_WARN
                        : VG_LOG_DEBUG,
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
            partition_t *pt = vg_pl_part(p, topic, (int32_t)n, false);
            int64_t v = json_object_get_int64(lag);
            if (pt && pt->lp.assigned && v >= 0)
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

rd_kafka_conf_t *vg_pl_client_conf(const vg_config_t *cfg, char *err, size_t err_size)
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
int vg_pl_client_apply_props(rd_kafka_conf_t *conf, const vg_config_t *cfg, char *err,
                             size_t err_size)
{
    for (size_t i = 0; i < cfg->prop_keys.count; i++)
        if (set(conf, cfg->prop_keys.items[i], cfg->prop_values.items[i], err, err_size) != 0)
            return -1;
    return 0;
}
/* kafka.properties' transactional.id belongs to exactly-once only; NULL
 * when it is fine, else the message. */
static const char *misplaced_transactional_id(const vg_config_t *cfg)
{
    if (vg_config_property(cfg, "transactional.id") && cfg->delivery != VG_DELIVERY_EXACTLY_ONCE)
        return "kafka.properties sets transactional.id, which only delivery: exactly-once uses";
    return NULL;
}

/* Exactly-once: the transactional.id (kafka.properties' own, or one
 * made from the group and the host). 0, or -1 with err. */
static int transactional_id(pipeline_t *p, char *err, size_t err_size)
{
    const vg_config_t *cfg = p->cfg;
    const char *tid = vg_config_property(cfg, "transactional.id");
    const char *misplaced = misplaced_transactional_id(cfg);
    if (misplaced) {
        snprintf(err, err_size, "%s", misplaced);
        return -1;
    }
    if (p->eos.on && !tid) {
        /* Stable across restarts of one instance, so that a restart fences
         * and aborts what a killed predecessor left open at once instead
         * of after transaction.timeout.ms; distinct per host. */
        char host[128] = "localhost";
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        snprintf(p->eos.transactional_id, sizeof(p->eos.transactional_id), "vigil-%s-%s",
                 cfg->group, host);
    } else if (p->eos.on) {
        snprintf(p->eos.transactional_id, sizeof(p->eos.transactional_id), "%s", tid);
    }
    return 0;
}

/* Finishes conf (statistics with metrics, then the user's properties,
 * the callbacks both clients share) and creates the client; NULL with
 * err. Takes conf. */
static rd_kafka_t *new_client(pipeline_t *p, rd_kafka_type_t type, rd_kafka_conf_t *conf, char *err,
                              size_t err_size)
{
    char e[512];
    if ((p->metrics && set(conf, "statistics.interval.ms", "5000", err, err_size)) ||
        vg_pl_client_apply_props(conf, p->cfg, err, err_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (p->metrics)
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_t *rk = rd_kafka_new(type, conf, e, sizeof(e));
    if (!rk) {
        /* Still ours when rd_kafka_new fails. */
        rd_kafka_conf_destroy(conf);
        snprintf(err, err_size, "cannot create the Kafka %s: %s",
                 type == RD_KAFKA_PRODUCER ? "producer" : "consumer", e);
    }
    return rk;
}

static int producer_setup(pipeline_t *p, char *err, size_t err_size)
{
    const vg_config_t *cfg = p->cfg;
    rd_kafka_conf_t *pc = vg_pl_client_conf(cfg, err, err_size);
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
        (p->eos.on && set(pc, "transactional.id", p->eos.transactional_id, err, err_size))) {
        rd_kafka_conf_destroy(pc);
        return -1;
    }
    rd_kafka_conf_set_dr_msg_cb(pc, vg_pl_out_dr_cb);
    p->producer = new_client(p, RD_KAFKA_PRODUCER, pc, err, err_size);
    return p->producer ? 0 : -1;
}

/* Exactly-once: fences an earlier producer with this transactional.id
 * and aborts what it left open. Needs a broker (up to 60 s). */
static int init_transactions(pipeline_t *p, char *err, size_t err_size)
{
    rd_kafka_error_t *te = rd_kafka_init_transactions(p->producer, 60000);
    if (te) {
        snprintf(err, err_size,
                 "exactly-once: cannot initialise transactions "
                 "(transactional.id %s): %s",
                 p->eos.transactional_id, rd_kafka_error_string(te));
        rd_kafka_error_destroy(te);
        return -1;
    }
    vg_log(VG_LOG_INFO,
           "msg=\"transactions ready\" transactional_id=%s "
           "commit_interval_ms=%zu commit_max_events=%zu",
           p->eos.transactional_id, p->cfg->eos_commit_interval_ms, p->cfg->eos_commit_max_events);
    return 0;
}

static int consumer_setup(pipeline_t *p, char *err, size_t err_size)
{
    const vg_config_t *cfg = p->cfg;
    rd_kafka_conf_t *cc = vg_pl_client_conf(cfg, err, err_size);
    if (!cc)
        return -1;
    if (set(cc, "group.id", cfg->group, err, err_size) ||
        set(cc, "enable.auto.commit", p->eos.on ? "false" : "true", err, err_size) ||
        (p->eos.on && set(cc, "isolation.level", "read_committed", err, err_size)) ||
        set(cc, "enable.auto.offset.store", "false", err, err_size) ||
        set(cc, "auto.offset.reset", "earliest", err, err_size) ||
        set(cc, "enable.partition.eof", p->opts->stop_at_eof ? "true" : "false", err, err_size)) {
        rd_kafka_conf_destroy(cc);
        return -1;
    }
    rd_kafka_conf_set_rebalance_cb(cc, vg_pl_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(cc, commit_cb);
    p->consumer = new_client(p, RD_KAFKA_CONSUMER, cc, err, err_size);
    if (!p->consumer)
        return -1;
    rd_kafka_poll_set_consumer(p->consumer);
    pthread_mutex_lock(&p->wake.mu);
    p->wake.q = rd_kafka_queue_get_consumer(p->consumer);
    pthread_mutex_unlock(&p->wake.mu);
    return 0;
}

static int subscribe(pipeline_t *p, char *err, size_t err_size)
{
    const vg_config_t *cfg = p->cfg;
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

/* Creates the producer and the consumer; then, start-up being done
 * (opts->on_started), initialises transactions when exactly-once (before
 * subscribing, so that a predecessor is fenced first) and subscribes to
 * the input topics. 0, or -1 with err. */
int vg_pl_client_setup(pipeline_t *p, char *err, size_t err_size)
{
    if (transactional_id(p, err, err_size) != 0 || producer_setup(p, err, err_size) != 0 ||
        consumer_setup(p, err, err_size) != 0)
        return -1;
    /* Nothing below holds start-up back: a broker that is down or an input
     * topic not created yet is waited for while running (and said). */
    vg_pl_health_publish(p, true);
    if (p->opts->on_started)
        p->opts->on_started(p->opts->started_arg, p->stats.awaiting);
    if (p->eos.on && init_transactions(p, err, err_size) != 0)
        return -1;
    return subscribe(p, err, err_size);
}

/* Appends n bytes of s at out[at] (cut to size, NUL-terminated); returns
 * the length the whole text would have. */
static size_t append(char *out, size_t size, size_t at, const char *s, size_t n)
{
    if (at + 1 < size) {
        size_t k = n < size - 1 - at ? n : size - 1 - at;
        memcpy(out + at, s, k);
        out[at + k] = '\0';
    }
    return at + n;
}

/* Appends librdkafka's message about key = value at out[at], with every
 * occurrence of the value hidden when it is a secret ("Invalid value
 * \"...\"" quotes it). Returns as append() does. */
static size_t append_hidden(char *out, size_t size, size_t at, const char *msg, const char *key,
                            const char *value)
{
    size_t vlen = strlen(value);
    bool hide = vlen > 0 && (vg_log_secret_name(key) || vg_log_has_secret(value));
    for (const char *v; hide && (v = strstr(msg, value)) != NULL; msg = v + vlen) {
        at = append(out, size, at, msg, (size_t)(v - msg));
        at = append(out, size, at, "[redacted]", 10);
    }
    return append(out, size, at, msg, strlen(msg));
}

/* librdkafka has one table of properties for both client types (which
 * type a property is for matters only to rd_kafka_new, which warns), so
 * one scratch configuration checks them for the consumer and the
 * producer alike. */
size_t vg_pipeline_check_properties(const vg_config_t *cfg, char *err, size_t err_size)
{
    size_t problems = 0, at = 0;
    if (err_size)
        err[0] = '\0';
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    for (size_t i = 0; i < cfg->prop_keys.count; i++) {
        const char *k = cfg->prop_keys.items[i], *v = cfg->prop_values.items[i];
        char e[512];
        if (rd_kafka_conf_set(conf, k, v, e, sizeof(e)) == RD_KAFKA_CONF_OK)
            continue;
        for (size_t n = strlen(e); n > 0 && (e[n - 1] == '\n' || e[n - 1] == ' '); n--)
            e[n - 1] = '\0'; /* some of librdkafka's messages end in a line feed */
        char head[160];
        int n = snprintf(head, sizeof(head), "%skafka property '%s': ", problems ? "; " : "", k);
        at = append(err, err_size, at, head, n > 0 ? (size_t)n : 0);
        at = append_hidden(err, err_size, at, e, k, v);
        problems++;
    }
    rd_kafka_conf_destroy(conf);
    const char *misplaced = misplaced_transactional_id(cfg);
    if (misplaced) {
        at = append(err, err_size, at, "; ", problems ? 2 : 0);
        append(err, err_size, at, misplaced, strlen(misplaced));
        problems++;
    }
    return problems;
}
