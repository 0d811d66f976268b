/* Checkpoints of stateful-rule state in a compacted Kafka topic (see
 * include/vigil/checkpoint.h for the protocol the pipeline follows).
 * The record value format is in checkpoint_record.c. */
#include "checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monotime.h"
#include "strmap.h"


typedef struct record {
    char *value;
    size_t len;
} record_t;

struct vg_checkpoint {
    rd_kafka_t *rk;
    char *topic;
    char *prefix; /* "GROUP/" */
    vg_strmap_t idx;
    record_t *recs;
    size_t nrecs, cap;
};

void vg_checkpoint_key(const char *group, const char *topic, int32_t partition, char *buf,
                       size_t size)
{
    snprintf(buf, size, "%s/%s/%" PRId32, group, topic, partition);
}

vg_checkpoint_t *vg_checkpoint_new(rd_kafka_conf_t *conf, const char *topic, const char *group,
                                   char *err, size_t err_size)
{
    vg_checkpoint_t *cp = calloc(1, sizeof(*cp));
    if (!cp) {
        snprintf(err, err_size, "out of memory");
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    vg_strmap_init(&cp->idx);
    cp->topic = strdup(topic);
    size_t pl = strlen(group) + 2;
    cp->prefix = malloc(pl);
    if (!cp->topic || !cp->prefix) {
        snprintf(err, err_size, "out of memory");
        rd_kafka_conf_destroy(conf);
        vg_checkpoint_destroy(cp);
        return NULL;
    }
    snprintf(cp->prefix, pl, "%s/", group);
    /* Only what was committed counts: a checkpoint of an aborted
     * transaction describes alerts that were never sent. */
    static const char *const props[][2] = {{"isolation.level", "read_committed"},
                                           {"enable.auto.commit", "false"},
                                           {"enable.auto.offset.store", "false"},
                                           {"enable.partition.eof", "true"},
                                           {"auto.offset.reset", "earliest"}};
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, err_size) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            vg_checkpoint_destroy(cp);
            return NULL;
        }
    /* Assign-only reading needs a group.id in the configuration but never
     * joins it. */
    char gid[256];
    snprintf(gid, sizeof(gid), "%s.checkpoint-reader", group);
    rd_kafka_conf_set(conf, "group.id", gid, NULL, 0);
    cp->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, err_size);
    if (!cp->rk) {
        vg_checkpoint_destroy(cp);
        return NULL;
    }
    return cp;
}

static void clear_records(vg_checkpoint_t *cp)
{
    for (size_t i = 0; i < cp->nrecs; i++)
        free(cp->recs[i].value);
    cp->nrecs = 0;
    vg_strmap_free(&cp->idx);
    vg_strmap_init(&cp->idx);
}

void vg_checkpoint_destroy(vg_checkpoint_t *cp)
{
    if (!cp)
        return;
    if (cp->rk) {
        rd_kafka_assign(cp->rk, NULL);
        rd_kafka_destroy(cp->rk);
    }
    clear_records(cp);
    vg_strmap_free(&cp->idx);
    free(cp->recs);
    free(cp->topic);
    free(cp->prefix);
    free(cp);
}

/* Keeps the latest value of a key of this group (empty value: deleted). */
static int keep_record(vg_checkpoint_t *cp, const rd_kafka_message_t *m)
{
    size_t pl = strlen(cp->prefix);
    if (!m->key || m->key_len <= pl || memcmp(m->key, cp->prefix, pl) != 0)
        return 0;
    uint32_t *i = vg_strmap_get(&cp->idx, m->key, m->key_len);
    if (!i) {
        if (cp->nrecs == cp->cap) {
            size_t cap = cp->cap ? cp->cap * 2 : 16;
            record_t *n = realloc(cp->recs, cap * sizeof(*n));
            if (!n)
                return -1;
            cp->recs = n;
            cp->cap = cap;
        }
        if (vg_strmap_put(&cp->idx, m->key, m->key_len, (uint32_t)cp->nrecs) < 0)
            return -1;
        cp->recs[cp->nrecs++] = (record_t){NULL, 0};
        i = vg_strmap_get(&cp->idx, m->key, m->key_len);
    }
    record_t *r = &cp->recs[*i];
    free(r->value);
    r->value = NULL;
    r->len = 0;
    if (m->len) {
        if (!(r->value = malloc(m->len)))
            return -1;
        memcpy(r->value, m->payload, m->len);
        r->len = m->len;
    }
    return 0;
}

int vg_checkpoint_load(vg_checkpoint_t *cp, int timeout_ms, char *err, size_t err_size)
{
    clear_records(cp);
    double deadline = vg_monotime() + timeout_ms / 1000.0;
    rd_kafka_topic_t *t = rd_kafka_topic_new(cp->rk, cp->topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t e =
        t ? rd_kafka_metadata(cp->rk, 0, t, &md, timeout_ms) : RD_KAFKA_RESP_ERR__FAIL;
    if (t)
        rd_kafka_topic_destroy(t);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, err_size, "checkpoint topic %s: cannot read metadata: %s", cp->topic,
                 rd_kafka_err2str(e));
        return -1;
    }
    int rc = 0;
    int nparts = 0;
    rd_kafka_topic_partition_list_t *parts = NULL;
    bool *unread = NULL;
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        nparts = md->topics[0].partition_cnt;
    else if (md->topic_cnt == 1 && md->topics[0].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        snprintf(err, err_size, "checkpoint topic %s: %s", cp->topic,
                 rd_kafka_err2str(md->topics[0].err));
        rc = -1;
    }
    if (rc || nparts == 0)
        goto out;
    parts = rd_kafka_topic_partition_list_new(nparts);
    /* Partitions still to read to their end, by partition id. A partition
     * written to meanwhile reports its end again after the new records:
     * only its first end counts. */
    int32_t max_id = 0;
    for (int i = 0; i < nparts; i++)
        if (md->topics[0].partitions[i].id > max_id)
            max_id = md->topics[0].partitions[i].id;
    unread = calloc((size_t)max_id + 1, sizeof(*unread));
    if (!unread) {
        snprintf(err, err_size, "out of memory reading checkpoints");
        rc = -1;
        goto out;
    }
    int pending = 0;
    for (int i = 0; i < nparts; i++) {
        int32_t id = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        e = rd_kafka_query_watermark_offsets(cp->rk, cp->topic, id, &lo, &hi, timeout_ms);
        if (e) {
            snprintf(err, err_size, "checkpoint topic %s [%" PRId32 "]: %s", cp->topic, id,
                     rd_kafka_err2str(e));
            rc = -1;
            goto out;
        }
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(parts, cp->topic, id)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
            unread[id] = true;
            pending++;
        }
    }
    if (pending == 0)
        goto out;
    if ((e = rd_kafka_assign(cp->rk, parts))) {
        snprintf(err, err_size, "checkpoint topic %s: assign: %s", cp->topic,
                 rd_kafka_err2str(e));
        rc = -1;
        goto out;
    }
    /* Read each partition until its end (the last stable offset under
     * read_committed): partition EOF says so. */
    while (pending > 0) {
        double left = deadline - vg_monotime();
        if (left <= 0) {
            snprintf(err, err_size,
                     "checkpoint topic %s: not read to its end within %d ms (%d partitions "
                     "left)",
                     cp->topic, timeout_ms, pending);
            rc = -1;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cp->rk, left > 0.1 ? 100 : 10);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition <= max_id && unread[m->partition]) {
                unread[m->partition] = false;
                pending--;
            }
        } else if (m->err) {
            snprintf(err, err_size, "checkpoint topic %s: %s", cp->topic,
                     rd_kafka_message_errstr(m));
            rc = -1;
            rd_kafka_message_destroy(m);
            break;
        } else if (keep_record(cp, m) != 0) {
            snprintf(err, err_size, "out of memory reading checkpoints");
            rc = -1;
            rd_kafka_message_destroy(m);
            break;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(cp->rk, NULL);
out:
    free(unread);
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_metadata_destroy(md);
    if (rc)
        clear_records(cp);
    return rc;
}

const char *vg_checkpoint_get(const vg_checkpoint_t *cp, const char *topic, int32_t partition,
                              size_t *len)
{
    char key[512];
    snprintf(key, sizeof(key), "%s%s/%" PRId32, cp->prefix, topic, partition);
    uint32_t *i = vg_strmap_get(&cp->idx, key, strlen(key));
    if (!i || cp->recs[*i].len == 0)
        return NULL;
    *len = cp->recs[*i].len;
    return cp->recs[*i].value;
}

int vg_checkpoint_restore(vg_checkpoint_t *cp, const char *topic, int32_t partition,
                          vg_state_t *st, int64_t *next, char *err, size_t err_size)
{
    char key[512];
    *next = -1;
    snprintf(key, sizeof(key), "%s%s/%" PRId32, cp->prefix, topic, partition);
    uint32_t *i = vg_strmap_get(&cp->idx, key, strlen(key));
    if (!i || cp->recs[*i].len == 0)
        return 0;
    return vg_checkpoint_decode(st, cp->recs[*i].value, cp->recs[*i].len, next, err,
                                err_size) == 0
               ? 1
               : -1;
}

int vg_checkpoint_produce(rd_kafka_t *rk, const char *cp_topic, const char *group,
                          const char *topic, int32_t partition, char *value, size_t len,
                          void *msg_opaque, char *err, size_t err_size)
{
    char key[512];
    vg_checkpoint_key(group, topic, partition, key, sizeof(key));
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(cp_topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
    if (e) {
        free(value);
        snprintf(err, err_size, "cannot produce the checkpoint of %s [%" PRId32 "] (%zu bytes): %s",
                 topic, partition, len, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* Waits for one admin result of type want on q; NULL on timeout. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t want,
                                    int timeout_ms)
{
    double deadline = vg_monotime() + timeout_ms / 1000.0;
    while (vg_monotime() < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == want)
            return ev;
        rd_kafka_event_destroy(ev);
    }
    return NULL;
}

static int create_topic(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *cp_topic,
                        size_t max_bytes, int timeout_ms, char *err, size_t err_size)
{
    char e[256], mb[32];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(cp_topic, 1, -1, e, sizeof(e));
    if (!nt) {
        snprintf(err, err_size, "checkpoint topic %s: %s", cp_topic, e);
        return -1;
    }
    snprintf(mb, sizeof(mb), "%zu", max_bytes);
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_NewTopic_set_config(nt, "max.message.bytes", mb);
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(o, timeout_ms, NULL, 0);
    rd_kafka_CreateTopics(rk, &nt, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout_ms);
    int rc = 0;
    if (!ev) {
        snprintf(err, err_size, "checkpoint topic %s: not created within %d ms", cp_topic,
                 timeout_ms);
        rc = -1;
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, err_size, "checkpoint topic %s: cannot create it: %s", cp_topic,
                 rd_kafka_event_error_string(ev));
        rc = -1;
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **r =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t te = n ? rd_kafka_topic_result_error(r[0]) : 0;
        if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            const char *msg = rd_kafka_topic_result_error_string(r[0]);
            snprintf(err, err_size,
                     "checkpoint topic %s: cannot create it: %s (create it with "
                     "cleanup.policy=compact and max.message.bytes=%zu, or set "
                     "state.checkpoint_topic)",
                     cp_topic, msg ? msg : rd_kafka_err2str(te), max_bytes);
            rc = -1;
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Checks an existing topic's cleanup.policy and max.message.bytes. */
static int check_topic(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *cp_topic,
                       size_t max_bytes, int timeout_ms, char *warn, size_t warn_size,
                       char *err, size_t err_size)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, cp_topic);
    rd_kafka_AdminOptions_t *o =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(o, timeout_ms, NULL, 0);
    rd_kafka_DescribeConfigs(rk, &cr, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, timeout_ms);
    const rd_kafka_ConfigResource_t **res = NULL;
    size_t n = 0;
    if (ev && !rd_kafka_event_error(ev))
        res = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev),
                                                        &n);
    int rc = 0;
    if (!res || n != 1 || rd_kafka_ConfigResource_error(res[0])) {
        snprintf(warn, warn_size,
                 "cannot read the configuration of checkpoint topic %s (%s); make sure it has "
                 "cleanup.policy=compact and max.message.bytes >= %zu",
                 cp_topic,
                 !ev                        ? "timed out"
                 : rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                 : n == 1 ? rd_kafka_err2str(rd_kafka_ConfigResource_error(res[0]))
                          : "no result",
                 max_bytes);
        goto out;
    }
    size_t nc = 0;
    const rd_kafka_ConfigEntry_t **ce = rd_kafka_ConfigResource_configs(res[0], &nc);
    for (size_t i = 0; i < nc; i++) {
        const char *name = rd_kafka_ConfigEntry_name(ce[i]);
        const char *value = rd_kafka_ConfigEntry_value(ce[i]);
        if (!value)
            continue;
        if (strcmp(name, "cleanup.policy") == 0 && !strstr(value, "compact")) {
            snprintf(err, err_size,
                     "checkpoint topic %s has cleanup.policy=%s: stateful rules need "
                     "cleanup.policy=compact there, or old checkpoints are deleted and windows "
                     "lost (kafka-configs --alter --entity-type topics --entity-name %s "
                     "--add-config cleanup.policy=compact, or set state.checkpoint_topic)",
                     cp_topic, value, cp_topic);
            rc = -1;
        } else if (strcmp(name, "max.message.bytes") == 0 &&
                   strtoull(value, NULL, 10) < max_bytes) {
            snprintf(warn, warn_size,
                     "checkpoint topic %s has max.message.bytes=%s, below "
                     "state.checkpoint_max_bytes=%zu: larger checkpoints will be refused",
                     cp_topic, value, max_bytes);
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_ConfigResource_destroy(cr);
    return rc;
}

int vg_checkpoint_ensure_topic(rd_kafka_t *rk, const char *cp_topic, size_t max_bytes,
                               int timeout_ms, char *warn, size_t warn_size, char *err,
                               size_t err_size)
{
    warn[0] = '\0';
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, cp_topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t e =
        t ? rd_kafka_metadata(rk, 0, t, &md, timeout_ms) : RD_KAFKA_RESP_ERR__FAIL;
    if (t)
        rd_kafka_topic_destroy(t);
    if (e) {
        snprintf(err, err_size, "checkpoint topic %s: cannot read metadata: %s", cp_topic,
                 rd_kafka_err2str(e));
        return -1;
    }
    bool exists = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_metadata_destroy(md);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int rc = exists ? check_topic(rk, q, cp_topic, max_bytes, timeout_ms, warn, warn_size, err,
                                  err_size)
                    : create_topic(rk, q, cp_topic, max_bytes, timeout_ms, err, err_size);
    rd_kafka_queue_destroy(q);
    return rc;
}
