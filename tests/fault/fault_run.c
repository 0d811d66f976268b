/* Fault tests of vigil's delivery guarantees (issue #7). The real `vigil
 * run` binary runs as a child process against either
 *
 *  - a real Kafka broker that this program starts, stops and restarts
 *    itself with tests/kafka/kafka-broker.sh (VIGIL_FAULT_BROKER_STATE
 *    names its state dir, VIGIL_KAFKA_PORT / VIGIL_KAFKA_CONTROLLER_PORT
 *    its ports; ctest label "fault;broker"): kill -9 ten times while
 *    events stream (at-least-once and exactly-once), a broker restart
 *    mid-stream, an alert topic that refuses every alert or does not exist;
 *  - or librdkafka's mock cluster hosted in this process (label
 *    "fault;mock"): slow brokers and injected Produce, Fetch and
 *    OffsetCommit errors.
 *
 * What is expected is computed by `vigil scan` over the same events and
 * rules, and compared by (rule, source partition, source offset): every
 * expected alert must be on the alert topics at least once (exactly once
 * with exactly-once delivery and a read_committed reader), no other alert
 * may be there, every broken event must have its dead-letter copy, and
 * the group's committed offsets must end at the end of the input.
 * Duplicates are counted and printed.
 *
 * VIGIL_FAULT_EVENTS (100000) and VIGIL_FAULT_KILLS (10) size the kill
 * tests; VIGIL_FAULT_SEED fixes the random kill times; VIGIL_FAULT_ONLY
 * runs only the tests whose name contains it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_support.h"

static char brokers[256];
static rd_kafka_t *mock_host; /* mock mode: owns the cluster */
static rd_kafka_mock_cluster_t *mock;
static rd_kafka_t *producer; /* the test's producer, also used for admin requests */
static char tmpdir[256];
static const char *vigil_bin;
static const char *broker_script, *broker_state; /* real mode */

/* ---- helpers ---- */

static long env_long(const char *name, long def)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

/* Waits for an admin result event and fails on any topic error. */
static void admin_wait(rd_kafka_queue_t *q, const char *what, const char *name)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    assert_non_null(ev);
    if (rd_kafka_event_error(ev))
        fail_msg("%s %s: %s", what, name, rd_kafka_event_error_string(ev));
    const rd_kafka_topic_result_t **tr = NULL;
    size_t n = 0;
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
        tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_topic_result_error(tr[i]))
            fail_msg("%s %s: %s", what, name, rd_kafka_topic_result_error_string(tr[i]));
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_ALTERCONFIGS_RESULT) {
        size_t nr;
        const rd_kafka_ConfigResource_t **rr =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &nr);
        for (size_t i = 0; i < nr; i++)
            if (rd_kafka_ConfigResource_error(rr[i]))
                fail_msg("%s %s: %s", what, name, rd_kafka_ConfigResource_error_string(rr[i]));
    }
    rd_kafka_event_destroy(ev);
}

/* Creates a topic; config is NULL or "key", "value", ..., NULL. */
static void create_topic(const char *name, int partitions, const char *const *config)
{
    if (mock) {
        assert_int_equal(rd_kafka_mock_topic_create(mock, name, partitions, 1), 0);
        return;
    }
    char e[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, e, sizeof(e));
    assert_non_null(nt);
    for (size_t i = 0; config && config[i]; i += 2)
        assert_int_equal(rd_kafka_NewTopic_set_config(nt, config[i], config[i + 1]), 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(producer);
    rd_kafka_CreateTopics(producer, &nt, 1, NULL, q);
    admin_wait(q, "create topic", name);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* Sets one topic config (AlterConfigs replaces the topic's whole set of
 * dynamic configs, which is what the tests want). */
static void alter_topic(const char *name, const char *key, const char *value)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, name);
    assert_int_equal(rd_kafka_ConfigResource_set_config(cr, key, value), 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(producer);
    rd_kafka_AlterConfigs(producer, &cr, 1, NULL, q);
    admin_wait(q, "alter topic", name);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
}

/* ---- vigil as a child process ---- */

typedef struct run_env {
    char in[96], alerts[128], trade_alerts[128], dlq[128], group[128];
    char config[512], rules[512], log[512], events[512];
    int partitions;
    int metrics_port;
} run_env_t;

static const char *const rule_names[] = {"sanction-news", "trade-drop"};
enum { NRULES = 2 };

/* Names the topics and files of one test and writes its rules; the
 * topics are created by the caller (some tests want them odd). */
static void name_env(run_env_t *e, const char *name, int partitions)
{
    memset(e, 0, sizeof(*e));
    e2e_unique_name(e->in, sizeof(e->in), "fault", name);
    snprintf(e->alerts, sizeof(e->alerts), "%s.alerts", e->in);
    snprintf(e->trade_alerts, sizeof(e->trade_alerts), "%s.trade", e->in);
    snprintf(e->dlq, sizeof(e->dlq), "%s.dlq", e->in);
    snprintf(e->group, sizeof(e->group), "%s.group", e->in);
    snprintf(e->rules, sizeof(e->rules), "%s/%s.rules.yaml", tmpdir, e->in);
    snprintf(e->config, sizeof(e->config), "%s/%s.config.yaml", tmpdir, e->in);
    snprintf(e->log, sizeof(e->log), "%s/%s.log", tmpdir, e->in);
    snprintf(e->events, sizeof(e->events), "%s/%s.events.jsonl", tmpdir, e->in);
    e->partitions = partitions;
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "lists:\n"
             "  watch_partners: [CN, RU]\n"
             "rules:\n"
             "  - id: sanction-news\n"
             "    severity: medium\n"
             "    match:\n"
             "      all:\n"
             "        - {field: type, eq: news}\n"
             "        - text: {any: [\"sanction*\", \"export ban\"]}\n"
             "  - id: trade-drop\n"
             "    severity: high\n"
             "    match:\n"
             "      all:\n"
             "        - {field: type, eq: trade}\n"
             "        - {field: partner, in: $watch_partners}\n"
             "        - {field: change_pct, lte: -20}\n"
             "    alert: {topic: %s}\n",
             e->trade_alerts);
    assert_int_equal(e2e_write_file(e->rules, buf), 0);
}

static void create_env_topics(const run_env_t *e)
{
    create_topic(e->in, e->partitions, NULL);
    create_topic(e->alerts, 1, NULL);
    create_topic(e->trade_alerts, 1, NULL);
    create_topic(e->dlq, 1, NULL);
}

/* delivery: "at-least-once" or "exactly-once"; extra: more
 * kafka.properties lines (4-space indented) or NULL. */
static void write_config(run_env_t *e, const char *delivery, const char *extra)
{
    char buf[4096], listen_at[64] = "off";
    if (e->metrics_port)
        snprintf(listen_at, sizeof(listen_at), "\"127.0.0.1:%d\"", e->metrics_port);
    snprintf(buf, sizeof(buf),
             "kafka:\n"
             "  brokers: \"%s\"\n"
             "  group: %s\n"
             "  properties:\n"
             "    session.timeout.ms: \"3000\"\n"
             "    heartbeat.interval.ms: \"300\"\n"
             "    auto.commit.interval.ms: \"200\"\n"
             "%s"
             "input:\n"
             "  topics: [%s]\n"
             "  max_event_bytes: 4096\n"
             "output:\n"
             "  topic: %s\n"
             "  dead_letter_topic: %s\n"
             "rules:\n"
             "  paths: [%s]\n"
             "delivery: %s\n"
             "exactly_once:\n"
             "  commit_interval_ms: 100\n"
             "metrics:\n"
             "  listen: %s\n",
             brokers, e->group, extra ? extra : "", e->in, e->alerts, e->dlq, e->rules, delivery,
             listen_at);
    assert_int_equal(e2e_write_file(e->config, buf), 0);
}

static pid_t start_vigil(const run_env_t *e)
{
    /* VIGIL_FAULT_VERBOSE=1: debug logging (with librdkafka's) in the logs. */
    bool verbose = getenv("VIGIL_FAULT_VERBOSE") != NULL;
    pid_t pid = e2e_start_vigil(vigil_bin, e->config, e->log, verbose);
    assert_true(pid >= 0);
    return pid;
}

/* Sends sig and waits up to timeout s for the exit; returns the status. */
static int stop_vigil(pid_t pid, int sig, double timeout)
{
    int status = 0;
    if (!e2e_stop_child(pid, sig, timeout, &status))
        fail_msg("vigil did not stop within %.0f s of signal %d", timeout, sig);
    return status;
}

static bool alive(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

/* ---- events and what vigil scan expects of them ---- */

/* Event i: i%3==0 news with "sanctions" (sanction-news); i%3==1 news with
 * near misses (nothing); i%3==2 trade, CN and -30.5% every other pair
 * (trade-drop); every 97th event (i%97==50) is not JSON (dead letter). */
static int gen_event(long i, char *buf, size_t size)
{
    if (i % 97 == 50)
        return snprintf(buf, size, "{\"type\":\"news\",\"title\":\"cut off %ld", i);
    switch (i % 3) {
    case 0:
        return snprintf(buf, size,
                        "{\"type\":\"news\",\"id\":\"n-%ld\",\"title\":\"Ministry announces "
                        "new SANCTIONS on exporter %ld\",\"body\":\"Details follow.\"}",
                        i, i);
    case 1:
        return snprintf(buf, size,
                        "{\"type\":\"news\",\"id\":\"n-%ld\",\"title\":\"Urban sanctuary opens "
                        "%ld\",\"body\":\"A suburban ban on cars.\"}",
                        i, i);
    default: {
        bool cn = (i / 3) % 2 == 0;
        bool drop = (i / 6) % 2 == 0;
        return snprintf(buf, size,
                        "{\"type\":\"trade\",\"id\":\"t-%ld\",\"reporter\":\"TW\",\"partner\":"
                        "\"%s\",\"flow\":\"export\",\"hs_code\":854231,\"change_pct\":%s}",
                        i, cn ? "cn" : "DE", drop ? "-30.5" : "5");
    }
    }
}

static bool is_broken(long i)
{
    return i % 97 == 50;
}

/* The stream of one test: where each event landed, what is expected and
 * what was seen. Alert keys are event * NRULES + rule. */
typedef struct stream {
    long n;
    int partitions;
    int64_t *offset; /* by event; -1 until acknowledged */
    long **by_offset; /* [partition][offset] -> event, built by index_offsets() */
    long *count;      /* events per partition */
    uint8_t *want;    /* by alert key: vigil scan says it is expected */
    uint16_t *seen;   /* by alert key */
    uint16_t *dlq_seen; /* by event */
    long nwant, nbroken;
    long unexpected;
    char first_unexpected[256];
} stream_t;

static stream_t *cur_stream; /* the test producer's delivery reports land here */

static void test_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    long i = (long)(intptr_t)m->_private - 1;
    if (m->err) {
        fprintf(stderr, "test producer: delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    if (cur_stream && i >= 0 && i < cur_stream->n)
        cur_stream->offset[i] = m->offset;
}

static void stream_init(stream_t *s, const run_env_t *e, long n)
{
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->partitions = e->partitions;
    s->offset = malloc((size_t)n * sizeof(*s->offset));
    s->want = calloc((size_t)n * NRULES, 1);
    s->seen = calloc((size_t)n * NRULES, sizeof(*s->seen));
    s->dlq_seen = calloc((size_t)n, sizeof(*s->dlq_seen));
    s->count = calloc((size_t)e->partitions, sizeof(*s->count));
    s->by_offset = calloc((size_t)e->partitions, sizeof(*s->by_offset));
    assert_true(s->offset && s->want && s->seen && s->dlq_seen && s->count && s->by_offset);
    for (long i = 0; i < n; i++)
        s->offset[i] = -1;
    cur_stream = s;
}

static void stream_free(stream_t *s)
{
    for (int p = 0; p < s->partitions; p++)
        free(s->by_offset[p]);
    free(s->by_offset);
    free(s->count);
    free(s->offset);
    free(s->want);
    free(s->seen);
    free(s->dlq_seen);
    if (cur_stream == s)
        cur_stream = NULL;
}

/* Writes the events to e->events and asks `vigil scan` which alerts they
 * raise: line L is event L-1. */
static void scan_expected(const run_env_t *e, stream_t *s)
{
    FILE *f = fopen(e->events, "w");
    assert_non_null(f);
    char buf[512];
    for (long i = 0; i < s->n; i++) {
        gen_event(i, buf, sizeof(buf));
        fprintf(f, "%s\n", buf);
        s->nbroken += is_broken(i);
    }
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s' scan --rules '%s' '%s' 2>/dev/null", vigil_bin, e->rules,
             e->events);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char line[65536];
    while (fgets(line, sizeof(line), p)) {
        json_object *o = json_tokener_parse(line), *v, *src;
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "rule", &v));
        int r = strcmp(json_object_get_string(v), rule_names[0]) == 0 ? 0 : 1;
        assert_true(json_object_object_get_ex(o, "source", &src));
        assert_true(json_object_object_get_ex(src, "line", &v));
        long ev = json_object_get_int64(v) - 1;
        assert_true(ev >= 0 && ev < s->n);
        if (!s->want[ev * NRULES + r])
            s->nwant++;
        s->want[ev * NRULES + r] = 1;
        json_object_put(o);
    }
    pclose(p);
    assert_true(s->nwant > 0);
}

/* Produces events [from, to), event i to partition i % partitions. */
static void produce_range(const run_env_t *e, stream_t *s, long from, long to)
{
    char buf[512];
    for (long i = from; i < to; i++) {
        int len = gen_event(i, buf, sizeof(buf));
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(
                    producer, RD_KAFKA_V_TOPIC(e->in),
                    RD_KAFKA_V_PARTITION((int32_t)(i % s->partitions)),
                    RD_KAFKA_V_VALUE(buf, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)(i + 1)), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(producer, 20);
        assert_int_equal(err, 0);
    }
    rd_kafka_poll(producer, 0);
}

/* After every event is acknowledged: which event each input offset is. */
static void index_offsets(stream_t *s)
{
    assert_int_equal(rd_kafka_flush(producer, 120000), 0);
    for (int p = 0; p < s->partitions; p++) {
        s->by_offset[p] = malloc((size_t)(s->n + 1) * sizeof(long));
        for (long k = 0; k <= s->n; k++)
            s->by_offset[p][k] = -1;
    }
    for (long i = 0; i < s->n; i++) {
        int p = (int)(i % s->partitions);
        if (s->offset[i] < 0 || s->offset[i] > s->n)
            fail_msg("event %ld has no usable offset (%lld)", i, (long long)s->offset[i]);
        s->by_offset[p][s->offset[i]] = i;
        if (s->offset[i] + 1 > s->count[p])
            s->count[p] = s->offset[i] + 1;
    }
}

static long event_at(const stream_t *s, int32_t partition, int64_t offset)
{
    if (partition < 0 || partition >= s->partitions || offset < 0 || offset > s->n ||
        !s->by_offset[partition])
        return -1;
    return s->by_offset[partition][offset];
}

/* ---- reading the alert and dead-letter topics ---- */

typedef struct reader {
    rd_kafka_t *c;
    char alerts[128], trade_alerts[128], dlq[128];
} reader_t;

static void reader_open(reader_t *r, const run_env_t *e, bool read_committed)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "fault-reader", err, sizeof(err)), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err)), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)),
                     0);
    assert_int_equal(rd_kafka_conf_set(conf, "isolation.level",
                                       read_committed ? "read_committed" : "read_uncommitted",
                                       err, sizeof(err)),
                     0);
    r->c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(r->c);
    rd_kafka_poll_set_consumer(r->c);
    snprintf(r->alerts, sizeof(r->alerts), "%s", e->alerts);
    snprintf(r->trade_alerts, sizeof(r->trade_alerts), "%s", e->trade_alerts);
    snprintf(r->dlq, sizeof(r->dlq), "%s", e->dlq);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
    rd_kafka_topic_partition_list_add(l, e->alerts, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_add(l, e->trade_alerts, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_add(l, e->dlq, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(r->c, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
}

static void reader_close(reader_t *r)
{
    rd_kafka_consumer_close(r->c);
    rd_kafka_destroy(r->c);
}

static bool header_long(const rd_kafka_message_t *m, const char *name, long *out)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t n;
    char buf[32];
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &n) || !v ||
        n >= sizeof(buf))
        return false;
    memcpy(buf, v, n);
    buf[n] = '\0';
    *out = strtol(buf, NULL, 10);
    return true;
}

static void note_unexpected(stream_t *s, const char *fmt, ...)
{
    if (s->unexpected++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->first_unexpected, sizeof(s->first_unexpected), fmt, ap);
        va_end(ap);
    }
}

static void take(reader_t *r, stream_t *s, const rd_kafka_message_t *m)
{
    assert_non_null(s->by_offset[0]); /* read only once index_offsets() has run */
    const char *topic = rd_kafka_topic_name(m->rkt);
    if (strcmp(topic, r->dlq) == 0) {
        long part, off;
        if (!header_long(m, "vigil-source-partition", &part) ||
            !header_long(m, "vigil-source-offset", &off)) {
            note_unexpected(s, "dead letter without origin headers");
            return;
        }
        long ev = event_at(s, (int32_t)part, off);
        if (ev < 0 || !is_broken(ev))
            note_unexpected(s, "dead letter for partition %ld offset %ld (event %ld)", part, off,
                            ev);
        else
            s->dlq_seen[ev]++;
        return;
    }
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, m->payload, (int)m->len), *v, *src;
    json_tokener_free(tok);
    if (!o || !json_object_object_get_ex(o, "rule", &v)) {
        note_unexpected(s, "an alert that is not JSON with a rule");
        json_object_put(o);
        return;
    }
    const char *rule = json_object_get_string(v);
    int ri = strcmp(rule, rule_names[0]) == 0 ? 0 : strcmp(rule, rule_names[1]) == 0 ? 1 : -1;
    int32_t part = -1;
    int64_t off = -1;
    if (json_object_object_get_ex(o, "source", &src)) {
        if (json_object_object_get_ex(src, "partition", &v))
            part = json_object_get_int(v);
        if (json_object_object_get_ex(src, "offset", &v))
            off = json_object_get_int64(v);
    }
    long ev = event_at(s, part, off);
    if (ri < 0 || ev < 0 || !s->want[ev * NRULES + ri])
        note_unexpected(s, "alert %s for partition %d offset %lld", rule, (int)part,
                        (long long)off);
    else
        s->seen[ev * NRULES + ri]++;
    json_object_put(o);
}

typedef struct tally {
    long missing, duplicates, dlq_missing, dlq_duplicates, seen;
} tally_t;

static tally_t tally(const stream_t *s)
{
    tally_t t = {0};
    for (long k = 0; k < s->n * NRULES; k++) {
        if (s->want[k] && !s->seen[k])
            t.missing++;
        if (s->seen[k] > 1)
            t.duplicates += s->seen[k] - 1;
        t.seen += s->seen[k] > 0;
    }
    for (long i = 0; i < s->n; i++) {
        if (is_broken(i) && !s->dlq_seen[i])
            t.dlq_missing++;
        if (s->dlq_seen[i] > 1)
            t.dlq_duplicates += s->dlq_seen[i] - 1;
    }
    return t;
}

/* Reads until every expected alert and dead letter is there (then
 * settle s more, for late duplicates) or timeout s have passed. */
static tally_t read_all(reader_t *r, stream_t *s, double timeout, double settle)
{
    double deadline = e2e_now_s() + timeout, stop_at = 0, next_check = 0;
    while (e2e_now_s() < deadline && (stop_at == 0 || e2e_now_s() < stop_at)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->c, 100);
        if (m) {
            if (!m->err)
                take(r, s, m);
            rd_kafka_message_destroy(m);
        }
        if (stop_at == 0 && e2e_now_s() >= next_check) {
            tally_t t = tally(s);
            if (t.missing == 0 && t.dlq_missing == 0)
                stop_at = e2e_now_s() + settle;
            next_check = e2e_now_s() + 0.5;
        }
    }
    return tally(s);
}

/* Reads what is there now without waiting. */
static void read_some(reader_t *r, stream_t *s)
{
    rd_kafka_message_t *m;
    while ((m = rd_kafka_consumer_poll(r->c, 0))) {
        if (!m->err)
            take(r, s, m);
        rd_kafka_message_destroy(m);
    }
}

/* The group's committed offsets of the input partitions (-1: none). */
static void committed(const run_env_t *e, int64_t *out)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", e->group, err, sizeof(err)), 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    assert_non_null(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(e->partitions);
    for (int p = 0; p < e->partitions; p++)
        rd_kafka_topic_partition_list_add(l, e->in, p);
    rd_kafka_resp_err_t ce = rd_kafka_committed(c, l, 30000);
    if (ce)
        fail_msg("committed offsets of %s: %s", e->group, rd_kafka_err2str(ce));
    for (int p = 0; p < e->partitions; p++)
        out[p] = l->elems[p].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
}

static void assert_committed_to_end(const run_env_t *e, const stream_t *s)
{
    int64_t off[16];
    assert_true(e->partitions <= 16);
    committed(e, off);
    for (int p = 0; p < e->partitions; p++)
        if (off[p] != s->count[p])
            fail_msg("partition %d: committed offset %lld, expected the end %ld", p,
                     (long long)off[p], s->count[p]);
}

/* Waits (up to timeout s) until the group has committed every input
 * partition to its end; true when it has. */
static bool wait_committed_to_end(const run_env_t *e, const stream_t *s, double timeout)
{
    double deadline = e2e_now_s() + timeout;
    int64_t off[16];
    do {
        committed(e, off);
        int p = 0;
        while (p < e->partitions && off[p] == s->count[p])
            p++;
        if (p == e->partitions)
            return true;
        e2e_sleep_s(0.5);
    } while (e2e_now_s() < deadline);
    return false;
}

static void report(const char *what, const stream_t *s, const tally_t *t, double secs)
{
    printf("fault: %s: %ld events, %ld expected alerts, %ld missing, %ld duplicates (%.2f%%); "
           "%ld dead letters, %ld missing, %ld duplicates; %.1f s\n",
           what, s->n, s->nwant, t->missing, t->duplicates,
           100.0 * (double)t->duplicates / (double)s->nwant, s->nbroken, t->dlq_missing,
           t->dlq_duplicates, secs);
    fflush(stdout);
}

static void assert_complete(const run_env_t *e, const stream_t *s, const tally_t *t,
                            bool exactly_once)
{
    if (t->missing || t->dlq_missing || s->unexpected ||
        (exactly_once && (t->duplicates || t->dlq_duplicates))) {
        e2e_dump_file(e->log, 60);
        if (s->unexpected)
            fail_msg("%ld unexpected outputs, the first: %s", s->unexpected,
                     s->first_unexpected);
        for (long k = 0; k < s->n * NRULES; k++)
            if (s->want[k] && !s->seen[k])
                fail_msg("%ld alerts missing, the first: %s for event %ld (partition %ld "
                         "offset %lld)",
                         t->missing, rule_names[k % NRULES], k / NRULES,
                         (k / NRULES) % s->partitions, (long long)s->offset[k / NRULES]);
        if (t->dlq_missing)
            fail_msg("%ld dead letters missing", t->dlq_missing);
        fail_msg("exactly-once: %ld duplicate alerts, %ld duplicate dead letters", t->duplicates,
                 t->dlq_duplicates);
    }
}

/* ---- the real broker ---- */

static int broker_cmd(const char *verb)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' %s '%s' >>'%s/broker-cmd.log' 2>&1", broker_script, verb,
             broker_state, tmpdir);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- (a) kill -9 while events stream ---- */

/* Streams n events over about stream_s seconds into a 3-partition topic
 * while vigil is killed (SIGKILL) `kills` times at random moments and
 * restarted at once; then waits for every expected alert. */
static void kill_test(bool exactly_once)
{
    long n = env_long("VIGIL_FAULT_EVENTS", 100000);
    int kills = (int)env_long("VIGIL_FAULT_KILLS", 10);
    unsigned seed = (unsigned)env_long("VIGIL_FAULT_SEED", (long)time(NULL));
    const double stream_s = 40;
    run_env_t e;
    name_env(&e, exactly_once ? "kill-eos" : "kill-alo", 3);
    create_env_topics(&e);
    write_config(&e, exactly_once ? "exactly-once" : "at-least-once", NULL);
    stream_t s;
    stream_init(&s, &e, n);
    scan_expected(&e, &s);

    srand(seed);
    fprintf(stderr, "fault: %s kill test: %ld events, %d kills, seed %u\n",
            exactly_once ? "exactly-once" : "at-least-once", n, kills, seed);

    /* Events stream at a steady pace over stream_s seconds. Each instance
     * is killed at a random moment 0.1-1.5 s after it got its partitions
     * (so it dies while consuming, evaluating, producing or committing),
     * and replaced at once. */
    reader_t r;
    reader_open(&r, &e, exactly_once);
    double t0 = e2e_now_s();
    pid_t pid = start_vigil(&e);
    int killed = 0;
    size_t assigned_seen = 0;
    double kill_at = INFINITY, next_look = 0;
    const long chunk = 250;
    long from = 0;
    while (from < n || killed < kills) {
        double t = e2e_now_s() - t0;
        if (killed < kills && kill_at == INFINITY && t >= next_look) {
            next_look = t + 0.1;
            size_t a = e2e_count_in_file(e.log, "msg=\"partitions assigned\"");
            if (a > assigned_seen) {
                assigned_seen = a;
                kill_at = t + 0.1 + 1.4 * rand() / (double)RAND_MAX;
            }
        }
        if (t >= kill_at) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            e2e_track_child(pid, false);
            killed++;
            kill_at = INFINITY;
            pid = start_vigil(&e);
            continue;
        }
        if (from < n && t >= stream_s * (double)from / (double)n) {
            long to = from + chunk < n ? from + chunk : n;
            produce_range(&e, &s, from, to);
            from = to;
            continue;
        }
        rd_kafka_poll(producer, 0);
        e2e_sleep_s(0.02);
        if (t > 600)
            fail_msg("only %d of %d kills after 600 s", killed, kills);
    }
    index_offsets(&s);
    read_some(&r, &s);
    tally_t t = read_all(&r, &s, 240, exactly_once ? 3.0 : 2.0);
    double secs = e2e_now_s() - t0;
    int st = stop_vigil(pid, SIGTERM, 90);
    /* Anything a last transaction or retry added after the settle. */
    tally_t t2 = read_all(&r, &s, 1, 1.0);
    (void)t;
    reader_close(&r);
    char what[128];
    snprintf(what, sizeof(what), "kill -9 x%d (%s, seed %u)", kills,
             exactly_once ? "exactly-once, read_committed" : "at-least-once", seed);
    report(what, &s, &t2, secs);
    assert_complete(&e, &s, &t2, exactly_once);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        e2e_dump_file(e.log, 40);
        fail_msg("vigil exited with status %d after SIGTERM", st);
    }
    assert_committed_to_end(&e, &s);
    stream_free(&s);
}

static void test_kill9_at_least_once(void **state)
{
    (void)state;
    kill_test(false);
}

static void test_kill9_exactly_once(void **state)
{
    (void)state;
    kill_test(true);
}

/* ---- (b) the broker stops and comes back mid-stream ---- */

/* Events stream for stream_s seconds; two seconds in, the broker is
 * stopped (cleanly, as an operator would), and started again three
 * seconds after it is down, while the stream goes on (the test producer
 * buffers meanwhile). */
static void restart_test(bool exactly_once)
{
    const long n = 40000;
    const double stream_s = 12;
    run_env_t e;
    name_env(&e, exactly_once ? "bounce-eos" : "bounce-alo", 2);
    create_env_topics(&e);
    write_config(&e, exactly_once ? "exactly-once" : "at-least-once", NULL);
    stream_t s;
    stream_init(&s, &e, n);
    scan_expected(&e, &s);
    reader_t r;
    reader_open(&r, &e, exactly_once);
    double t0 = e2e_now_s();
    pid_t pid = start_vigil(&e);
    pid_t bouncer = 0;
    int bounce_status = -1;
    long from = 0, at_stop = -1;
    while (from < n || bouncer >= 0) {
        double t = e2e_now_s() - t0;
        if (bouncer == 0 && t >= 2) {
            /* A shell does it, so that the stream goes on meanwhile (and
             * the forked child only execs: this process has threads). */
            char cmd[1536];
            snprintf(cmd, sizeof(cmd),
                     "exec >>'%s/broker-cmd.log' 2>&1; '%s' stop '%s' && sleep 3 && "
                     "'%s' start '%s'",
                     tmpdir, broker_script, broker_state, broker_script, broker_state);
            at_stop = from;
            bouncer = fork();
            assert_true(bouncer >= 0);
            if (bouncer == 0) {
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
            }
        }
        if (bouncer > 0 && waitpid(bouncer, &bounce_status, WNOHANG) == bouncer) {
            fprintf(stderr, "fault: broker stopped %.1f s in (%ld events sent), back at %.1f s\n",
                    2.0, at_stop, e2e_now_s() - t0);
            bouncer = -1;
        }
        if (from < n && t >= stream_s * (double)from / (double)n) {
            long to = from + 200 < n ? from + 200 : n;
            produce_range(&e, &s, from, to);
            from = to;
            continue;
        }
        rd_kafka_poll(producer, 0);
        e2e_sleep_s(0.02);
        if (t > 300)
            fail_msg("the broker restart did not finish within 300 s");
    }
    assert_true(WIFEXITED(bounce_status) && WEXITSTATUS(bounce_status) == 0);
    index_offsets(&s);
    read_all(&r, &s, 180, 2.0);
    double secs = e2e_now_s() - t0;
    assert_true(alive(pid));
    /* The group session may have expired while the broker was away (the
     * partitions are then lost, and read again from the last commit once
     * vigil has rejoined): wait for it to commit everything. */
    bool done = wait_committed_to_end(&e, &s, 90);
    read_some(&r, &s);
    int st = stop_vigil(pid, SIGTERM, 90);
    tally_t t = read_all(&r, &s, 1, 1.0);
    reader_close(&r);
    report(exactly_once ? "broker restart (exactly-once)" : "broker restart (at-least-once)", &s,
           &t, secs);
    fprintf(stderr, "fault: %zu partition assignments, %zu aborted transactions, %zu failed "
                    "deliveries logged\n",
            e2e_count_in_file(e.log, "partitions assigned"),
            e2e_count_in_file(e.log, "transaction aborted"),
            e2e_count_in_file(e.log, "delivery failed"));
    assert_complete(&e, &s, &t, exactly_once);
    if (!done)
        e2e_dump_file(e.log, 40);
    assert_true(done);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        e2e_dump_file(e.log, 40);
        fail_msg("vigil exited with status %d after SIGTERM", st);
    }
    assert_committed_to_end(&e, &s);
    stream_free(&s);
}

static void test_broker_restart_at_least_once(void **state)
{
    (void)state;
    restart_test(false);
}

static void test_broker_restart_exactly_once(void **state)
{
    (void)state;
    restart_test(true);
}

/* ---- exactly-once: a second producer with the same transactional.id ---- */

/* Two exactly-once instances of one group on one host share the default
 * transactional.id: the second fences the first, which must stop with
 * exit status 3 and say why; the second delivers everything, once. */
static void test_fenced_exactly_once(void **state)
{
    (void)state;
    const long n = 20000;
    run_env_t e;
    name_env(&e, "fenced", 2);
    create_env_topics(&e);
    write_config(&e, "exactly-once", NULL);
    stream_t s;
    stream_init(&s, &e, n);
    scan_expected(&e, &s);
    produce_range(&e, &s, 0, n);
    index_offsets(&s);
    pid_t first = start_vigil(&e);
    assert_true(e2e_wait_in_file(e.log, "partitions assigned", 1, 60));
    pid_t second = start_vigil(&e);
    int st = 0;
    if (!e2e_stop_child(first, 0, 60, &st)) {
        e2e_dump_file(e.log, 40);
        fail_msg("the fenced instance did not stop within 60 s");
    }
    reader_t r;
    reader_open(&r, &e, true);
    tally_t t = read_all(&r, &s, 120, 3.0);
    int st2 = stop_vigil(second, SIGTERM, 90);
    t = read_all(&r, &s, 1, 1.0);
    reader_close(&r);
    report("fenced by a second instance (exactly-once)", &s, &t, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 3 ||
        e2e_count_in_file(e.log, "another producer uses the same transactional.id") == 0) {
        e2e_dump_file(e.log, 40);
        fail_msg("the fenced instance exited with status %d, not 3 with a message", st);
    }
    assert_complete(&e, &s, &t, true);
    assert_true(WIFEXITED(st2) && WEXITSTATUS(st2) == 0);
    assert_committed_to_end(&e, &s);
    stream_free(&s);
}

/* Two exactly-once instances (transactional.id set per instance) share
 * a group while events stream; the partitions move at each join and at
 * a SIGTERM of the first (its open transaction is committed on revoke),
 * and a third instance joins the survivor. Each alert must be there
 * exactly once. */
static void test_rebalance_exactly_once(void **state)
{
    (void)state;
    const long n = 30000;
    const double stream_s = 12;
    run_env_t e;
    name_env(&e, "rebalance-eos", 4);
    create_env_topics(&e);
    run_env_t a = e, b = e, c = e;
    snprintf(a.config, sizeof(a.config), "%s/%s.a.yaml", tmpdir, e.in);
    snprintf(b.config, sizeof(b.config), "%s/%s.b.yaml", tmpdir, e.in);
    snprintf(c.config, sizeof(c.config), "%s/%s.c.yaml", tmpdir, e.in);
    char prop[160];
    snprintf(prop, sizeof(prop), "    transactional.id: \"%s-a\"\n", e.in);
    write_config(&a, "exactly-once", prop);
    snprintf(prop, sizeof(prop), "    transactional.id: \"%s-b\"\n", e.in);
    write_config(&b, "exactly-once", prop);
    snprintf(prop, sizeof(prop), "    transactional.id: \"%s-c\"\n", e.in);
    write_config(&c, "exactly-once", prop);
    stream_t s;
    stream_init(&s, &e, n);
    scan_expected(&e, &s);
    double t0 = e2e_now_s();
    pid_t pa = start_vigil(&a), pb = 0, pc = 0;
    int sta = -1;
    long from = 0;
    while (from < n) {
        double t = e2e_now_s() - t0;
        if (!pb && t >= 3)
            pb = start_vigil(&b);
        if (pa && t >= 7) {
            sta = stop_vigil(pa, SIGTERM, 60);
            pa = 0;
        }
        if (!pc && t >= 9)
            pc = start_vigil(&c);
        if (t >= stream_s * (double)from / (double)n) {
            long to = from + 200 < n ? from + 200 : n;
            produce_range(&e, &s, from, to);
            from = to;
            continue;
        }
        rd_kafka_poll(producer, 0);
        e2e_sleep_s(0.02);
    }
    if (!pc)
        pc = start_vigil(&c);
    if (pa) {
        sta = stop_vigil(pa, SIGTERM, 60);
        pa = 0;
    }
    index_offsets(&s);
    reader_t r;
    reader_open(&r, &e, true);
    read_all(&r, &s, 120, 3.0);
    bool done = wait_committed_to_end(&e, &s, 60);
    int stb = stop_vigil(pb, SIGTERM, 60), stc = stop_vigil(pc, SIGTERM, 60);
    tally_t t = read_all(&r, &s, 1, 1.0);
    reader_close(&r);
    report("rebalances: 3 instances join and leave (exactly-once)", &s, &t, e2e_now_s() - t0);
    fprintf(stderr, "fault: %zu assignments, %zu revocations, %zu aborted transactions\n",
            e2e_count_in_file(e.log, "partitions assigned"),
            e2e_count_in_file(e.log, "partitions revoked"),
            e2e_count_in_file(e.log, "transaction aborted"));
    assert_complete(&e, &s, &t, true);
    assert_true(done);
    assert_true(WIFEXITED(sta) && WEXITSTATUS(sta) == 0);
    assert_true(WIFEXITED(stb) && WEXITSTATUS(stb) == 0);
    assert_true(WIFEXITED(stc) && WEXITSTATUS(stc) == 0);
    stream_free(&s);
}

/* ---- (c) an alert topic that does not take alerts ---- */

/* kind "too-small": the sanction-news topic's max.message.bytes is below
 * any alert (a permanent MSG_SIZE_TOO_LARGE) until it is raised; kind
 * "missing": that topic does not exist (and may not be auto-created)
 * until it is created. Either way: vigil keeps the undelivered alerts,
 * pauses, reports 503, commits nothing past the first undelivered alert,
 * and delivers everything once the topic is fixed. */
static void unwritable_test(bool missing, bool exactly_once)
{
    const long n = 600;
    run_env_t e;
    name_env(&e, missing ? (exactly_once ? "missing-eos" : "missing") : "too-small", 1);
    e.metrics_port = e2e_free_port();
    assert_true(e.metrics_port > 0);
    create_topic(e.in, 1, NULL);
    create_topic(e.trade_alerts, 1, NULL);
    create_topic(e.dlq, 1, NULL);
    if (!missing) {
        static const char *const small[] = {"max.message.bytes", "200", NULL};
        create_topic(e.alerts, 1, small);
    }
    write_config(&e, exactly_once ? "exactly-once" : "at-least-once",
                 missing ? "    allow.auto.create.topics: \"false\"\n"
                           "    topic.metadata.propagation.max.ms: \"1000\"\n"
                           "    topic.metadata.refresh.interval.ms: \"1000\"\n"
                         : NULL);
    stream_t s;
    stream_init(&s, &e, n);
    scan_expected(&e, &s);
    produce_range(&e, &s, 0, n);
    index_offsets(&s);
    double t0 = e2e_now_s();
    pid_t pid = start_vigil(&e);
    static char body[1 << 20];
    const char *unhealthy = exactly_once ? "transactions aborted" : "cannot be delivered";
    if (!e2e_wait_http(e.metrics_port, "/healthz", 503, unhealthy, true, 60, body, sizeof(body),
                       NULL)) {
        e2e_dump_file(e.log, 40);
        fail_msg("/healthz did not report undeliverable alerts; last answer: %s", body);
    }
    fprintf(stderr, "fault: /healthz: %s", body);
    /* Several seconds of failure: the log is rate-limited, the consumer
     * paused, and no offset past the first sanction-news event (event 0,
     * offset 0) is committed. */
    e2e_sleep_s(4);
    assert_int_equal(e2e_http_get(e.metrics_port, "GET", "/metrics", body, sizeof(body)), 200);
    if (exactly_once) {
        /* Each try aborts its transaction and rewinds, with a growing
         * backoff between tries. */
        double aborted = e2e_metric_sample(body, "vigil_transactions_total{result=\"aborted\"}");
        fprintf(stderr, "fault: aborted=%g\n", aborted);
        assert_true(aborted >= 2);
    } else {
        double failing = e2e_metric_sample(body, "vigil_outputs_failing");
        double paused = e2e_metric_sample(body, "vigil_consumer_paused");
        double retries = e2e_metric_sample(body, "vigil_delivery_retries_total");
        fprintf(stderr, "fault: failing=%g paused=%g retries=%g\n", failing, paused, retries);
        assert_true(failing > 0);
        assert_true(paused == 1);
        assert_true(retries > 0);
    }
    int64_t off[1];
    committed(&e, off);
    assert_true(off[0] <= 0);
    double failed_for = e2e_now_s() - t0;
    size_t lines = e2e_count_in_file(e.log, "msg=\"delivery failed");
    fprintf(stderr, "fault: %zu delivery-failure log lines in %.1f s\n", lines, failed_for);
    assert_true(lines <= (size_t)failed_for + 3);
    assert_true(alive(pid));

    /* Fix it: every alert arrives, health returns, the input commits. */
    if (missing)
        create_topic(e.alerts, 1, NULL);
    else
        alter_topic(e.alerts, "max.message.bytes", "1048588");
    double t_fix = e2e_now_s();
    reader_t r;
    reader_open(&r, &e, exactly_once);
    tally_t t = read_all(&r, &s, 90, exactly_once ? 2.0 : 1.0);
    double recovered = e2e_now_s() - t_fix;
    if (!e2e_wait_http(e.metrics_port, "/healthz", 200, NULL, true, 30, body, sizeof(body),
                       NULL)) {
        e2e_dump_file(e.log, 40);
        fail_msg("/healthz stayed unhealthy after the topic was fixed: %s", body);
    }
    /* Exactly-once: the trade-drop alerts of the aborted transactions
     * were acknowledged, then aborted; vigil_alerts_produced_total counts
     * only the committed ones, i.e. what a read_committed reader got. */
    double produced = NAN;
    for (int i = 0; exactly_once && i < 50; i++) {
        assert_int_equal(e2e_http_get(e.metrics_port, "GET", "/metrics", body, sizeof(body)),
                         200);
        produced = e2e_metric_sample(body, "vigil_alerts_produced_total{rule=\"sanction-news\","
                                           "severity=\"medium\"}") +
                   e2e_metric_sample(body, "vigil_alerts_produced_total{rule=\"trade-drop\","
                                           "severity=\"high\"}");
        if (produced == (double)t.seen)
            break;
        e2e_sleep_s(0.1);
    }
    int st = stop_vigil(pid, SIGTERM, 90);
    reader_close(&r);
    char what[128];
    snprintf(what, sizeof(what), "alert topic %s for %.0f s (%s), delivered %.1f s after the fix",
             missing ? "missing" : "refusing alerts (max.message.bytes 200)", failed_for,
             exactly_once ? "exactly-once" : "at-least-once", recovered);
    report(what, &s, &t, e2e_now_s() - t0);
    assert_complete(&e, &s, &t, exactly_once);
    if (exactly_once) {
        fprintf(stderr, "fault: vigil_alerts_produced_total %g, alerts read %ld\n", produced,
                t.seen);
        assert_true(produced == (double)t.seen);
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_committed_to_end(&e, &s);
    stream_free(&s);
}

static void test_alert_topic_refuses(void **state)
{
    (void)state;
    unwritable_test(false, false);
}

static void test_alert_topic_missing(void **state)
{
    (void)state;
    unwritable_test(true, false);
}

static void test_alert_topic_missing_exactly_once(void **state)
{
    (void)state;
    unwritable_test(true, true);
}

/* ---- (e) outputs that can never be delivered (issue 18, item 2) ---- */

/* Inserts text after the first line of e->config that is exactly line
 * (with its line end), e.g. more keys of a section. */
static void config_insert(const run_env_t *e, const char *line, const char *text)
{
    static char buf[8192], out[10240];
    FILE *f = fopen(e->config, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *at = strstr(buf, line);
    assert_non_null(at);
    at += strlen(line);
    snprintf(out, sizeof(out), "%.*s%s%s", (int)(at - buf), buf, text, at);
    assert_int_equal(e2e_write_file(e->config, out), 0);
}

/* The SHA-256 of n bytes, by coreutils' sha256sum (not vigil's own). */
static void sha256sum(const char *dir, const void *data, size_t n, char out[65])
{
    char path[600], cmd[700];
    snprintf(path, sizeof(path), "%s/sha256-input", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, 65, p));
    pclose(p);
    assert_int_equal(strlen(out), 64);
}

static bool header_is(const rd_kafka_message_t *m, const char *name, const char *want)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t n;
    return !rd_kafka_message_headers(m, &h) && !rd_kafka_header_get_last(h, name, &v, &n) && v &&
           n == strlen(want) && memcmp(v, want, n) == 0;
}

/* What each permanent-error test feeds vigil: a small alerting event, one
 * whose alert is ~2,600 bytes, an undecodable one of 2,500 bytes whose
 * dead-letter copy is as large, and another small alerting event. The
 * outputs above 1,000 bytes can never be delivered: over the producer's
 * message.max.bytes (mock cluster, refused at once) or the topics'
 * max.message.bytes (real broker, retried for permanent_error_retry_ms
 * first). */
typedef struct permanent_case {
    char big_alert[2600], broken[2501];
    size_t big_alert_len, broken_len;
} permanent_case_t;

static void permanent_setup(run_env_t *e, permanent_case_t *c, const char *name,
                            const char *policy)
{
    name_env(e, name, 1);
    e->metrics_port = e2e_free_port();
    assert_true(e->metrics_port > 0);
    static const char *const small[] = {"max.message.bytes", "1000", NULL};
    create_topic(e->in, 1, NULL);
    create_topic(e->alerts, 1, mock ? NULL : small);
    create_topic(e->trade_alerts, 1, NULL);
    create_topic(e->dlq, 1, mock ? NULL : small);
    write_config(e, "at-least-once", mock ? "    message.max.bytes: \"1000\"\n" : NULL);
    char out[160];
    snprintf(out, sizeof(out),
             "  dead_letter_max_bytes: 200\n"
             "  on_permanent_error: %s\n"
             "  permanent_error_retry_ms: 2000\n",
             policy);
    /* VIGIL_FAULT_OLD_CONFIG: without the settings, for a vigil that
     * predates them (to see the test fail there). */
    if (!getenv("VIGIL_FAULT_OLD_CONFIG"))
        config_insert(e, "output:\n", out);
    memset(c->big_alert, 'x', sizeof(c->big_alert));
    int hl = snprintf(c->big_alert, sizeof(c->big_alert),
                      "{\"type\":\"news\",\"title\":\"new SANCTIONS\",\"body\":\"");
    c->big_alert[hl] = 'x'; /* snprintf's NUL */
    c->big_alert_len = 2500;
    memcpy(c->big_alert + c->big_alert_len - 2, "\"}", 2);
    assert_true(hl > 0 && (size_t)hl < c->big_alert_len);
    memset(c->broken, 'y', sizeof(c->broken));
    memcpy(c->broken, "{\"title\":\"cut off ", 18);
    c->broken_len = 2500;
    const char *small_ev = "{\"type\":\"news\",\"title\":\"sanctions widened\",\"body\":\"\"}";
    const void *vals[] = {small_ev, c->big_alert, c->broken, small_ev};
    size_t lens[] = {strlen(small_ev), c->big_alert_len, c->broken_len, strlen(small_ev)};
    for (int i = 0; i < 4; i++)
        assert_int_equal(rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(e->in),
                                           RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE((void *)vals[i], lens[i]),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
}

/* dead-letter (the default): the two outputs are replaced by loss
 * records, the others delivered, and the input committed to its end. */
static void test_permanent_dead_letter(void **state)
{
    (void)state;
    run_env_t e;
    permanent_case_t c;
    permanent_setup(&e, &c, "permanent", "dead-letter");
    double t0 = e2e_now_s();
    pid_t pid = start_vigil(&e);
    reader_t r;
    reader_open(&r, &e, false);
    int alerts = 0, losses = 0;
    bool alert_loss = false, dlq_loss = false;
    char want_sha[65];
    sha256sum(tmpdir, c.broken, c.broken_len, want_sha);
    double deadline = e2e_now_s() + 60;
    while ((alerts < 2 || losses < 2) && e2e_now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r.c, 100);
        if (!m)
            continue;
        const char *topic = m->err ? "" : rd_kafka_topic_name(m->rkt);
        long off = -1, len = -1;
        if (!m->err && strcmp(topic, e.alerts) == 0)
            alerts++;
        if (!m->err && strcmp(topic, e.dlq) == 0) {
            losses++;
            assert_true(header_long(m, "vigil-source-offset", &off));
            assert_true(header_long(m, "vigil-original-length", &len));
            assert_true(header_is(m, "vigil-source-topic", e.in));
            assert_true(header_is(m, "vigil-source-partition", "0"));
            assert_int_equal(m->len, 200);
            if (off == 1) {
                /* The alert of event 1: its kind, topic and rule. */
                alert_loss = header_is(m, "vigil-output-kind", "alert") &&
                             header_is(m, "vigil-output-topic", e.alerts) &&
                             header_is(m, "vigil-rule", "sanction-news") && len > 1000 &&
                             memcmp(m->payload, "{\"alert_id\":", 12) == 0;
            } else if (off == 2) {
                /* The dead-letter copy of event 2: its bytes, cut. */
                dlq_loss = header_is(m, "vigil-output-kind", "dead_letter") &&
                           header_is(m, "vigil-output-topic", e.dlq) && len == 2500 &&
                           header_is(m, "vigil-original-sha256", want_sha) &&
                           memcmp(m->payload, c.broken, 200) == 0;
            }
        }
        rd_kafka_message_destroy(m);
    }
    bool at_end = wait_committed_to_end(&e, &(stream_t){.partitions = 1, .count = (long[]){4}},
                                        30);
    double took = e2e_now_s() - t0;
    static char body[1 << 20];
    assert_int_equal(e2e_http_get(e.metrics_port, "GET", "/metrics", body, sizeof(body)), 200);
    int st = stop_vigil(pid, SIGTERM, 60);
    reader_close(&r);
    printf("fault: permanent errors (%s): 2 outputs replaced by loss records, input committed "
           "to the end %s after %.1f s\n",
           mock ? "producer message.max.bytes 1000" : "topics' max.message.bytes 1000",
           at_end ? "" : "NOT", took);
    if (alerts != 2 || losses != 2 || !alert_loss || !dlq_loss || !at_end)
        e2e_dump_file(e.log, 40);
    assert_int_equal(alerts, 2);
    assert_int_equal(losses, 2);
    assert_true(alert_loss);
    assert_true(dlq_loss);
    if (!at_end)
        fail_msg("the input was not committed past the undeliverable outputs");
    assert_true(e2e_metric_sample(body, "vigil_output_permanent_errors_total{kind=\"alert\","
                                        "reason=\"MSG_SIZE_TOO_LARGE\"}") == 1);
    assert_true(e2e_metric_sample(body, "vigil_output_permanent_errors_total{kind=\"dead_letter\","
                                        "reason=\"MSG_SIZE_TOO_LARGE\"}") == 1);
    assert_true(e2e_metric_sample(body, "vigil_events_dead_lettered_total{reason=\"undeliverable\"}") ==
                2);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* stop: vigil exits by itself with status 3 and a line saying why; the
 * input is committed up to the first undeliverable output (event 1). */
static void test_permanent_stop(void **state)
{
    (void)state;
    run_env_t e;
    permanent_case_t c;
    permanent_setup(&e, &c, "permanent-stop", "stop");
    pid_t pid = start_vigil(&e);
    int st = 0;
    if (!e2e_stop_child(pid, 0, 60, &st)) {
        e2e_dump_file(e.log, 40);
        fail_msg("vigil did not stop by itself on an output that can never be delivered");
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 3 ||
        !e2e_file_has(e.log, "output.on_permanent_error is stop"))
        e2e_dump_file(e.log, 40);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    assert_true(e2e_file_has(e.log, "output.on_permanent_error is stop"));
    int64_t off[1];
    committed(&e, off);
    printf("fault: permanent error with on_permanent_error: stop: exit 3, committed offset %lld\n",
           (long long)off[0]);
    assert_int_equal(off[0], 1);
}

/* ---- (d) the mock cluster: slow and failing requests ---- */

/* Kafka protocol API keys (librdkafka does not install its
 * rdkafka_protocol.h). */
enum { API_PRODUCE = 0, API_FETCH = 1, API_OFFSET_COMMIT = 8 };

/* Events first, then the faults, then vigil; everything must arrive and
 * the group must commit to the end. */
static void mock_test(const char *name, void (*inject)(void), double expect_retries)
{
    const long n = 3000;
    run_env_t e;
    name_env(&e, name, 2);
    e.metrics_port = e2e_free_port();
    assert_true(e.metrics_port > 0);
    create_env_topics(&e);
    write_config(&e, "at-least-once", NULL);
    stream_t s;
    stream_init(&s, &e, n);
    scan_expected(&e, &s);
    produce_range(&e, &s, 0, n);
    index_offsets(&s);
    inject();
    reader_t r;
    reader_open(&r, &e, false);
    double t0 = e2e_now_s();
    pid_t pid = start_vigil(&e);
    read_all(&r, &s, 120, 1.0);
    static char body[1 << 20];
    int hs = e2e_http_get(e.metrics_port, "GET", "/metrics", body, sizeof(body));
    double retries = hs == 200 ? e2e_metric_sample(body, "vigil_delivery_retries_total") : NAN;
    /* Let the auto-commit catch up before the faults are lifted. */
    double deadline = e2e_now_s() + 30;
    int64_t off[2] = {-1, -1};
    while (e2e_now_s() < deadline) {
        committed(&e, off);
        if (off[0] == s.count[0] && off[1] == s.count[1])
            break;
        e2e_sleep_s(0.5);
    }
    rd_kafka_mock_broker_set_rtt(mock, 1, 0);
    rd_kafka_mock_clear_request_errors(mock, API_PRODUCE);
    rd_kafka_mock_clear_request_errors(mock, API_FETCH);
    rd_kafka_mock_clear_request_errors(mock, API_OFFSET_COMMIT);
    int st = stop_vigil(pid, SIGTERM, 90);
    tally_t t = read_all(&r, &s, 1, 0.5);
    reader_close(&r);
    char what[160];
    snprintf(what, sizeof(what), "mock %s (%g re-produced)", name, retries);
    report(what, &s, &t, e2e_now_s() - t0);
    assert_complete(&e, &s, &t, false);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_committed_to_end(&e, &s);
    if (expect_retries > 0 && !(retries >= expect_retries)) {
        e2e_dump_file(e.log, 30);
        fail_msg("expected at least %g re-produced outputs, metrics say %g", expect_retries,
                 retries);
    }
    stream_free(&s);
}

static void inject_slow(void)
{
    rd_kafka_mock_broker_set_rtt(mock, 1, 250);
}

static void inject_retriable_produce(void)
{
    /* librdkafka retries these itself: no delivery fails. */
    for (int i = 0; i < 6; i++)
        rd_kafka_mock_push_request_errors(mock, API_PRODUCE, 3,
                                          RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                          RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                          RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
}

static void inject_permanent_produce(void)
{
    /* Not retriable: the deliveries fail and vigil produces them again. */
    rd_kafka_mock_push_request_errors(mock, API_PRODUCE, 4,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
}

static void inject_fetch_commit(void)
{
    rd_kafka_mock_push_request_errors(mock, API_FETCH, 4,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
    rd_kafka_mock_push_request_errors(mock, API_OFFSET_COMMIT, 6,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                      RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
}

static void test_mock_slow_broker(void **state)
{
    (void)state;
    mock_test("slow", inject_slow, 0);
}

static void test_mock_retriable_produce_errors(void **state)
{
    (void)state;
    mock_test("produce-retriable", inject_retriable_produce, 0);
}

static void test_mock_permanent_produce_errors(void **state)
{
    (void)state;
    mock_test("produce-permanent", inject_permanent_produce, 1);
}

static void test_mock_fetch_and_commit_errors(void **state)
{
    (void)state;
    mock_test("fetch-commit", inject_fetch_commit, 0);
}

/* ---- setup ---- */

static int setup(void **state)
{
    (void)state;
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!brokers[0]) {
        mock_host = e2e_mock_cluster_host(&mock, brokers, sizeof(brokers));
        if (!mock_host)
            return -1;
    }
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, e, sizeof(e));
    rd_kafka_conf_set(conf, "linger.ms", "5", e, sizeof(e));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", e, sizeof(e));
    /* The test's own clients see the broker go away on purpose. */
    rd_kafka_conf_set(conf, "log_level", "0", e, sizeof(e));
    rd_kafka_conf_set_dr_msg_cb(conf, test_dr_cb);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    fprintf(stderr, "fault: %s cluster at %s\n", mock ? "mock" : "real", brokers);
    return producer ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    e2e_kill_children();
    if (producer)
        rd_kafka_destroy(producer);
    if (mock_host)
        rd_kafka_destroy(mock_host);
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    atexit(e2e_kill_children);
    setvbuf(stdout, NULL, _IOLBF, 0);
    vigil_bin = getenv("VIGIL_BIN");
    if (!vigil_bin) {
        fprintf(stderr, "VIGIL_BIN must name the vigil binary\n");
        return 2;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vigil-fault-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 2;
    broker_state = getenv("VIGIL_FAULT_BROKER_STATE");
    broker_script = getenv("VIGIL_FAULT_BROKER_SCRIPT");
    int rc;
    if (broker_state && broker_script) {
        /* This program's own broker: the tests stop and restart it. */
        int st = broker_cmd("start");
        if (st == 77) {
            fprintf(stderr, "fault: SKIP: no real Kafka broker (java 17+ and maven are needed "
                            "by tests/kafka/kafka-broker.sh; see %s/broker-cmd.log)\n",
                    tmpdir);
            return 77;
        }
        if (st != 0) {
            /* Say why before the work folder goes (a port in use, say). */
            fprintf(stderr, "fault: the broker did not start:\n");
            char cmd[600];
            snprintf(cmd, sizeof(cmd), "tail -n 20 '%s/broker-cmd.log' >&2", tmpdir);
            if (system(cmd) != 0)
                fprintf(stderr, "fault: (no broker-cmd.log)\n");
            return 1;
        }
        char path[600];
        snprintf(path, sizeof(path), "%s/bootstrap", broker_state);
        if (e2e_read_line(path, brokers, sizeof(brokers)) != 0) {
            fprintf(stderr, "fault: no %s\n", path);
            return 1;
        }
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_permanent_dead_letter),
            cmocka_unit_test(test_alert_topic_refuses),
            cmocka_unit_test(test_alert_topic_missing),
            cmocka_unit_test(test_alert_topic_missing_exactly_once),
            cmocka_unit_test(test_broker_restart_at_least_once),
            cmocka_unit_test(test_broker_restart_exactly_once),
            cmocka_unit_test(test_fenced_exactly_once),
            cmocka_unit_test(test_rebalance_exactly_once),
            cmocka_unit_test(test_kill9_at_least_once),
            cmocka_unit_test(test_kill9_exactly_once),
        };
        if (getenv("VIGIL_FAULT_ONLY"))
            cmocka_set_test_filter(getenv("VIGIL_FAULT_ONLY"));
        rc = cmocka_run_group_tests(tests, setup, teardown);
        broker_cmd("stop");
    } else {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_mock_slow_broker),
            cmocka_unit_test(test_mock_retriable_produce_errors),
            cmocka_unit_test(test_mock_permanent_produce_errors),
            cmocka_unit_test(test_mock_fetch_and_commit_errors),
            cmocka_unit_test(test_permanent_dead_letter),
            cmocka_unit_test(test_permanent_stop),
        };
        if (getenv("VIGIL_FAULT_ONLY"))
            cmocka_set_test_filter(getenv("VIGIL_FAULT_ONLY"));
        rc = cmocka_run_group_tests(tests, setup, teardown);
    }
    if (!getenv("VIGIL_FAULT_KEEP")) {
        e2e_remove_dir(tmpdir);
    } else {
        fprintf(stderr, "fault: logs kept in %s\n", tmpdir);
    }
    return rc;
}
