/* End-to-end tests of the real `vigil run` binary: events are produced to
 * a Kafka cluster, the daemon runs as a child process, and the alert and
 * dead-letter topics are read back. The cluster is either a real broker
 * (VIGIL_TEST_BROKERS=host:port, or a bootstrap file written by
 * tests/kafka/kafka-broker.sh named by VIGIL_TEST_BROKER_STATE) or, when
 * neither is given, librdkafka's mock cluster hosted in this process.
 *
 * What a user would check is what is asserted: which (rule, source offset)
 * pairs arrive, what the dead-letter messages carry, the exit status. The
 * expected alerts come from how the events were generated, not from the
 * engine. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_support.h"

static char brokers[256];
static rd_kafka_t *mock_host;        /* mock mode: owns the cluster */
static rd_kafka_mock_cluster_t *mock;
static rd_kafka_t *producer;
static char tmpdir[256];
static const char *vigil_bin;

/* ---- helpers ---- */

static void create_topic(const char *name, int partitions)
{
    if (mock) {
        assert_int_equal(rd_kafka_mock_topic_create(mock, name, partitions, 1), 0);
        return;
    }
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, 1, NULL, 0);
    rd_kafka_queue_t *q = rd_kafka_queue_new(producer);
    rd_kafka_CreateTopics(producer, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    assert_non_null(ev);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    assert_non_null(res);
    size_t n;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
    assert_int_equal(n, 1);
    if (rd_kafka_topic_result_error(tr[0]))
        fail_msg("create topic %s: %s", name, rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* Produces and waits; returns the offset assigned to the message. */
typedef struct produced {
    int64_t offset;
    int32_t partition;
} produced_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    produced_t *p = m->_private;
    if (m->err)
        fprintf(stderr, "test producer: delivery failed: %s\n", rd_kafka_err2str(m->err));
    if (p) {
        p->offset = m->err ? -2 : m->offset;
        p->partition = m->partition;
    }
}

static void produce(const char *topic, const void *val, size_t len, produced_t *out)
{
    if (out)
        out->offset = -1;
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                                  RD_KAFKA_V_VALUE((void *)val, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_OPAQUE(out), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(producer, 50);
    assert_int_equal(e, 0);
}

static void flush_producer(void)
{
    assert_int_equal(rd_kafka_flush(producer, 60000), 0);
}

typedef struct run_env {
    char in[96], alerts[128], trade_alerts[128], dlq[128];
    char group[128];
    char config[512], rules[512], log[512];
} run_env_t;

/* metrics_port 0 turns the metrics endpoint off: tests that do not look
 * at it must not compete for the default port. */
static void make_env(run_env_t *e, const char *name, int partitions, const char *extra_props,
                     int metrics_port)
{
    e2e_unique_name(e->in, sizeof(e->in), "e2e", name);
    snprintf(e->alerts, sizeof(e->alerts), "%s.alerts", e->in);
    snprintf(e->trade_alerts, sizeof(e->trade_alerts), "%s.trade", e->in);
    snprintf(e->dlq, sizeof(e->dlq), "%s.dlq", e->in);
    snprintf(e->group, sizeof(e->group), "%s.group", e->in);
    create_topic(e->in, partitions);
    create_topic(e->alerts, 1);
    create_topic(e->trade_alerts, 1);
    create_topic(e->dlq, 1);
    snprintf(e->rules, sizeof(e->rules), "%s/%s.rules.yaml", tmpdir, e->in);
    snprintf(e->config, sizeof(e->config), "%s/%s.config.yaml", tmpdir, e->in);
    snprintf(e->log, sizeof(e->log), "%s/%s.log", tmpdir, e->in);
    char buf[4096], listen_at[64] = "off";
    if (metrics_port)
        snprintf(listen_at, sizeof(listen_at), "\"127.0.0.1:%d\"", metrics_port);
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
    snprintf(buf, sizeof(buf),
             "kafka:\n"
             "  brokers: \"%s\"\n"
             "  group: %s\n"
             "  properties:\n"
             "    session.timeout.ms: \"6000\"\n"
             "    heartbeat.interval.ms: \"500\"\n"
             "    auto.commit.interval.ms: \"200\"\n"
             "%s"
             "input:\n"
             "  topics: [%s]\n"
             "  max_event_bytes: 4096\n"
             "  max_event_depth: 8\n"
             "output:\n"
             "  topic: %s\n"
             "  dead_letter_topic: %s\n"
             "rules:\n"
             "  paths: [%s]\n"
             "metrics:\n"
             "  listen: %s\n",
             brokers, e->group, extra_props ? extra_props : "", e->in, e->alerts, e->dlq,
             e->rules, listen_at);
    assert_int_equal(e2e_write_file(e->config, buf), 0);
}

/* Children still running when a test fails (cmocka jumps out of it) are
 * killed at exit (e2e_kill_children), so a failed run leaves no daemon
 * behind. */
static pid_t start_vigil(const run_env_t *e)
{
    pid_t pid = e2e_start_vigil(vigil_bin, e->config, e->log, false);
    assert_true(pid >= 0);
    return pid;
}

static int stop_vigil(pid_t pid, int sig)
{
    int status = 0;
    if (!e2e_stop_child(pid, sig, 60, &status))
        fail_msg("vigil did not stop within 60 s of signal %d", sig);
    return status;
}

/* ---- reading topics back ---- */

typedef struct alert_rec {
    char rule[64];
    int64_t src_offset;
    int32_t src_partition;
    char alert_id[40];
} alert_rec_t;

typedef struct reader {
    rd_kafka_t *c;
} reader_t;

static void reader_open(reader_t *r, const char *const *topics, int n)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, e, sizeof(e)), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "e2e-reader", e, sizeof(e)), 0);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.auto.commit", "false", e, sizeof(e)), 0);
    r->c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof(e));
    assert_non_null(r->c);
    rd_kafka_poll_set_consumer(r->c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, topics[i], 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(r->c, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
}

static void reader_close(reader_t *r)
{
    rd_kafka_consumer_close(r->c);
    rd_kafka_destroy(r->c);
}

/* Reads alerts until `want` have arrived (then `settle` seconds more, to
 * catch extras) or the deadline passes. Returns how many were read. */
static size_t read_alerts(reader_t *r, alert_rec_t *out, size_t cap, size_t want, double timeout,
                          double settle)
{
    size_t n = 0;
    double deadline = e2e_now_s() + timeout;
    /* Nothing more wanted: only look for extras during the settle time. */
    double stop_at = want == 0 ? e2e_now_s() + settle : 0;
    while (e2e_now_s() < deadline && (stop_at == 0 || e2e_now_s() < stop_at)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->c, 100);
        if (!m)
            continue;
        if (!m->err && n < cap) {
            json_tokener *tok = json_tokener_new();
            json_object *o = json_tokener_parse_ex(tok, m->payload, (int)m->len);
            json_tokener_free(tok);
            assert_non_null(o);
            json_object *v, *src;
            assert_true(json_object_object_get_ex(o, "rule", &v));
            snprintf(out[n].rule, sizeof(out[n].rule), "%s", json_object_get_string(v));
            assert_true(json_object_object_get_ex(o, "alert_id", &v));
            snprintf(out[n].alert_id, sizeof(out[n].alert_id), "%s", json_object_get_string(v));
            assert_true(json_object_object_get_ex(o, "source", &src));
            assert_true(json_object_object_get_ex(src, "offset", &v));
            out[n].src_offset = json_object_get_int64(v);
            assert_true(json_object_object_get_ex(src, "partition", &v));
            out[n].src_partition = json_object_get_int(v);
            /* The message key and headers carry the rule, as DESIGN.md says. */
            assert_int_equal(m->key_len, strlen(out[n].rule));
            assert_memory_equal(m->key, out[n].rule, m->key_len);
            rd_kafka_headers_t *h;
            const void *hv;
            size_t hl;
            assert_int_equal(rd_kafka_message_headers(m, &h), 0);
            assert_int_equal(rd_kafka_header_get_last(h, "vigil-rule", &hv, &hl), 0);
            assert_memory_equal(hv, out[n].rule, hl);
            json_object_put(o);
            n++;
            if (n >= want && stop_at == 0)
                stop_at = e2e_now_s() + settle;
        }
        rd_kafka_message_destroy(m);
    }
    return n;
}

/* ---- the event generator and its expected alerts ---- */

/* Event i (source offset i on a 1-partition topic):
 *   i%3==0 news "sanctions"            -> sanction-news
 *   i%3==1 news, near misses           -> nothing ("sanctuary", "urban")
 *   i%3==2 trade to CN/DE, -30% or +5% -> trade-drop when CN and -30 */
static int gen_event(int i, char *buf, size_t size, const char **rule)
{
    *rule = NULL;
    switch (i % 3) {
    case 0:
        *rule = "sanction-news";
        return snprintf(buf, size,
                        "{\"type\":\"news\",\"id\":\"n-%d\",\"title\":\"Ministry announces "
                        "new SANCTIONS on exporter %d\",\"body\":\"Details follow.\"}",
                        i, i);
    case 1:
        return snprintf(buf, size,
                        "{\"type\":\"news\",\"id\":\"n-%d\",\"title\":\"Urban sanctuary opens "
                        "%d\",\"body\":\"A suburban ban on cars.\"}",
                        i, i);
    default: {
        bool cn = (i / 3) % 2 == 0;
        bool drop = (i / 6) % 2 == 0;
        if (cn && drop)
            *rule = "trade-drop";
        return snprintf(buf, size,
                        "{\"type\":\"trade\",\"id\":\"t-%d\",\"reporter\":\"TW\",\"partner\":"
                        "\"%s\",\"flow\":\"export\",\"hs_code\":854231,\"change_pct\":%s}",
                        i, cn ? "cn" : "DE", drop ? "-30.5" : "5");
    }
    }
}

static size_t produce_events(const run_env_t *e, int from, int to, alert_rec_t *expected)
{
    size_t n = 0;
    char buf[512];
    for (int i = from; i < to; i++) {
        const char *rule;
        int len = gen_event(i, buf, sizeof(buf), &rule);
        produce(e->in, buf, (size_t)len, NULL);
        if (rule) {
            snprintf(expected[n].rule, sizeof(expected[n].rule), "%s", rule);
            expected[n].src_offset = i;
            n++;
        }
    }
    flush_producer();
    return n;
}

static int cmp_alert(const void *a, const void *b)
{
    const alert_rec_t *x = a, *y = b;
    int c = strcmp(x->rule, y->rule);
    if (c)
        return c;
    return x->src_offset < y->src_offset ? -1 : x->src_offset > y->src_offset;
}

/* Every expected (rule, offset) must be present; returns duplicates. */
static size_t check_superset(alert_rec_t *got, size_t ngot, alert_rec_t *exp, size_t nexp,
                             bool exact)
{
    qsort(got, ngot, sizeof(*got), cmp_alert);
    qsort(exp, nexp, sizeof(*exp), cmp_alert);
    size_t dups = 0;
    for (size_t i = 1; i < ngot; i++)
        if (cmp_alert(&got[i - 1], &got[i]) == 0) {
            /* Redelivered alerts keep their id: downstream can dedupe. */
            assert_string_equal(got[i - 1].alert_id, got[i].alert_id);
            dups++;
        }
    for (size_t i = 0; i < nexp; i++)
        if (!bsearch(&exp[i], got, ngot, sizeof(*got), cmp_alert))
            fail_msg("missing alert %s for source offset %lld", exp[i].rule,
                     (long long)exp[i].src_offset);
    for (size_t i = 0; i < ngot; i++)
        if (!bsearch(&got[i], exp, nexp, sizeof(*exp), cmp_alert))
            fail_msg("unexpected alert %s for source offset %lld", got[i].rule,
                     (long long)got[i].src_offset);
    if (exact)
        assert_int_equal(dups, 0);
    return dups;
}

/* ---- tests ---- */

/* N events in, exactly the expected alerts out, on the right topics. */
static void test_alerts_exact(void **state)
{
    run_env_t e;
    make_env(&e, "exact", 1, NULL, 0);
    enum { N = 300 };
    alert_rec_t *exp = calloc(N, sizeof(*exp)), *got = calloc(2 * N, sizeof(*got));
    size_t nexp = produce_events(&e, 0, N, exp);
    pid_t pid = start_vigil(&e);
    reader_t r;
    const char *topics[] = {e.alerts, e.trade_alerts};
    reader_open(&r, topics, 2);
    size_t ngot = read_alerts(&r, got, 2 * N, nexp, 60, 2.0);
    int st = stop_vigil(pid, SIGTERM);
    if (ngot != nexp || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        e2e_dump_file(e.log, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(ngot, nexp);
    check_superset(got, ngot, exp, nexp, true);
    /* Each rule went to its own topic: trade-drop has alert.topic. */
    reader_close(&r);
    reader_t rt;
    const char *tt[] = {e.trade_alerts};
    reader_open(&rt, tt, 1);
    size_t want_trade = 0;
    for (size_t i = 0; i < nexp; i++)
        want_trade += strcmp(exp[i].rule, "trade-drop") == 0;
    size_t ntrade = read_alerts(&rt, got, 2 * N, want_trade, 10, 0.5);
    assert_int_equal(ntrade, want_trade);
    for (size_t i = 0; i < ntrade; i++)
        assert_string_equal(got[i].rule, "trade-drop");
    reader_close(&rt);
    free(exp);
    free(got);
}

/* Broken events go to the dead-letter topic with their bytes and origin. */
static void test_dead_letter(void **state)
{
    run_env_t e;
    make_env(&e, "dlq", 1, NULL, 0);
    char deep[256] = "";
    for (int i = 0; i < 12; i++)
        strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < 12; i++)
        strcat(deep, "}");
    static char big[5000];
    memset(big, 'x', sizeof(big) - 1);
    memcpy(big, "{\"title\":\"", 10);
    big[sizeof(big) - 3] = '"';
    big[sizeof(big) - 2] = '}';
    struct {
        const char *bytes;
        size_t len;
        const char *error;
    } bad[] = {
        {"{\"title\": \"unterminated", 23, "invalid_json"},
        {"{\"title\":\"caf\xc3\x28\"}", 15, "invalid_utf8"},
        {"[1,2,3]", 7, "not_object"},
        {deep, strlen(deep), "too_deep"},
        {big, sizeof(big) - 1, "too_large"},
        {"", 0, "invalid_json"},
    };
    enum { NBAD = sizeof(bad) / sizeof(bad[0]) };
    /* good, bad, good, bad, ... so dead letters sit between alerts. */
    char good[256];
    int gl = snprintf(good, sizeof(good),
                      "{\"type\":\"news\",\"title\":\"sanctions widened\",\"body\":\"\"}");
    for (int i = 0; i < NBAD; i++) {
        produce(e.in, good, (size_t)gl, NULL);
        produce(e.in, bad[i].bytes, bad[i].len, NULL);
    }
    produce(e.in, good, (size_t)gl, NULL);
    flush_producer();
    pid_t pid = start_vigil(&e);
    reader_t r;
    const char *topics[] = {e.dlq};
    reader_open(&r, topics, 1);
    int seen = 0;
    double deadline = e2e_now_s() + 60;
    while (seen < NBAD && e2e_now_s() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r.c, 100);
        if (!m)
            continue;
        if (!m->err) {
            int i = seen++;
            assert_int_equal(m->len, bad[i].len);
            if (m->len)
                assert_memory_equal(m->payload, bad[i].bytes, m->len);
            rd_kafka_headers_t *h;
            const void *v;
            size_t l;
            assert_int_equal(rd_kafka_message_headers(m, &h), 0);
            assert_int_equal(rd_kafka_header_get_last(h, "vigil-error", &v, &l), 0);
            assert_true(l >= strlen(bad[i].error));
            if (memcmp(v, bad[i].error, strlen(bad[i].error)) != 0)
                fail_msg("message %d: vigil-error is '%.*s', expected '%s…'", i, (int)l,
                         (const char *)v, bad[i].error);
            assert_int_equal(rd_kafka_header_get_last(h, "vigil-source-topic", &v, &l), 0);
            assert_int_equal(l, strlen(e.in));
            assert_memory_equal(v, e.in, l);
            assert_int_equal(rd_kafka_header_get_last(h, "vigil-source-partition", &v, &l), 0);
            assert_memory_equal(v, "0", l);
            assert_int_equal(rd_kafka_header_get_last(h, "vigil-source-offset", &v, &l), 0);
            char off[32];
            snprintf(off, sizeof(off), "%d", 2 * i + 1);
            assert_int_equal(l, strlen(off));
            assert_memory_equal(v, off, l);
        }
        rd_kafka_message_destroy(m);
    }
    reader_close(&r);
    /* The good events around them all alerted. */
    reader_t ra;
    const char *at[] = {e.alerts};
    reader_open(&ra, at, 1);
    alert_rec_t got[32];
    size_t ngot = read_alerts(&ra, got, 32, NBAD + 1, 30, 1.0);
    reader_close(&ra);
    int st = stop_vigil(pid, SIGTERM);
    if (seen != NBAD || ngot != NBAD + 1)
        e2e_dump_file(e.log, 0);
    assert_int_equal(seen, NBAD);
    assert_int_equal(ngot, NBAD + 1);
    for (size_t i = 0; i < ngot; i++)
        assert_int_equal(got[i].src_offset % 2, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* SIGTERM mid-stream, restart in the same group: no alert is lost. Events
 * keep arriving in batches while the first instance is told to stop, while
 * it is down, and after the second one has started. */
static int wait_exit(pid_t pid)
{
    int status = 0;
    if (!e2e_stop_child(pid, 0, 60, &status))
        fail_msg("vigil did not stop within 60 s of SIGTERM");
    return status;
}

static void test_sigterm_restart(void **state)
{
    run_env_t e;
    make_env(&e, "restart", 1, NULL, 0);
    enum { BATCH = 500, BATCHES = 40, N = BATCH * BATCHES };
    alert_rec_t *exp = calloc(N, sizeof(*exp)), *got = calloc(4 * N, sizeof(*got));
    size_t nexp = 0, ngot = 0, at_term = 0, at_exit = 0;
    reader_t r;
    const char *topics[] = {e.alerts, e.trade_alerts};
    reader_open(&r, topics, 2);
    pid_t pid = start_vigil(&e);
    for (int b = 0; b < BATCHES; b++) {
        nexp += produce_events(&e, b * BATCH, (b + 1) * BATCH, exp + nexp);
        if (b == 10) {
            /* Working: alerts are flowing. Now stop it mid-stream. */
            ngot += read_alerts(&r, got + ngot, 4 * N - ngot, 1, 60, 0);
            at_term = ngot;
            kill(pid, SIGTERM);
        }
        if (b == 20) {
            int st = wait_exit(pid);
            assert_true(WIFEXITED(st));
            assert_int_equal(WEXITSTATUS(st), 0);
            ngot += read_alerts(&r, got + ngot, 4 * N - ngot, 4 * N, 1, 0);
            at_exit = ngot;
            pid = start_vigil(&e);
        }
        ngot += read_alerts(&r, got + ngot, 4 * N - ngot, 4 * N, 0.02, 0);
        if (getenv("VIGIL_E2E_TRACE"))
            fprintf(stderr, "%.3f batch %d: %zu alerts\n", e2e_now_s(), b, ngot);
    }
    ngot += read_alerts(&r, got + ngot, 4 * N - ngot, nexp > ngot ? nexp - ngot : 0, 90, 2.0);
    int st = stop_vigil(pid, SIGTERM);
    reader_close(&r);
    if (ngot < nexp)
        e2e_dump_file(e.log, 0);
    size_t dups = check_superset(got, ngot, exp, nexp, false);
    fprintf(stderr,
            "restart: %zu alerts read when SIGTERM was sent, %zu when the first instance had "
            "exited; %zu expected in all, %zu received, %zu duplicates\n",
            at_term, at_exit, nexp, ngot, dups);
    /* The stop really was mid-stream. */
    assert_true(at_exit < nexp);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(exp);
    free(got);
}

/* SIGHUP with valid rules swaps them; SIGHUP with broken rules keeps the
 * old ones and alerts keep flowing; every event is evaluated once. */
static void test_reload(void **state)
{
    run_env_t e;
    make_env(&e, "reload", 1, NULL, 0);
    enum { N = 300 };
    alert_rec_t *exp = calloc(3 * N, sizeof(*exp)), *got = calloc(6 * N, sizeof(*got));
    reader_t r;
    const char *topics[] = {e.alerts, e.trade_alerts};
    reader_open(&r, topics, 2);
    pid_t pid = start_vigil(&e);
    /* Phase 1: the original rules. */
    size_t nexp = produce_events(&e, 0, N, exp);
    size_t ngot = read_alerts(&r, got, 6 * N, nexp, 60, 0.5);
    assert_int_equal(ngot, nexp);
    /* Phase 2: a new rule set that also alerts on the near misses. */
    FILE *f = fopen(e.rules, "a");
    assert_non_null(f);
    fputs("  - id: urban\n    match: {text: {any: [urban]}}\n", f);
    fclose(f);
    kill(pid, SIGHUP);
    assert_true(e2e_wait_in_file(e.log, "rules reloaded", 1, 30));
    size_t n2 = produce_events(&e, N, 2 * N, exp + nexp);
    for (int i = N; i < 2 * N; i++)
        if (i % 3 == 1) {
            snprintf(exp[nexp + n2].rule, sizeof(exp[0].rule), "urban");
            exp[nexp + n2].src_offset = i;
            n2++;
        }
    nexp += n2;
    ngot += read_alerts(&r, got + ngot, 6 * N - ngot, n2, 60, 0.5);
    /* Phase 3: a broken file; the rules of phase 2 stay. */
    f = fopen(e.rules, "a");
    assert_non_null(f);
    fputs("  - id: broken\n    match: {tetx: {any: [x]}}\n", f);
    fclose(f);
    kill(pid, SIGHUP);
    assert_true(e2e_wait_in_file(e.log, "reload failed; keeping the current rules", 1, 30));
    size_t n3 = produce_events(&e, 2 * N, 3 * N, exp + nexp);
    for (int i = 2 * N; i < 3 * N; i++)
        if (i % 3 == 1) {
            snprintf(exp[nexp + n3].rule, sizeof(exp[0].rule), "urban");
            exp[nexp + n3].src_offset = i;
            n3++;
        }
    nexp += n3;
    ngot += read_alerts(&r, got + ngot, 6 * N - ngot, n3, 60, 1.0);
    int st = stop_vigil(pid, SIGTERM);
    reader_close(&r);
    if (ngot != nexp)
        e2e_dump_file(e.log, 0);
    check_superset(got, ngot, exp, nexp, true);
    assert_int_equal(ngot, nexp);
    assert_int_equal(e2e_count_in_file(e.log, "rules reloaded"), 1);
    assert_true(e2e_count_in_file(e.log, "unknown condition 'tetx'") >= 1);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(exp);
    free(got);
}

/* rules.watch: saving the rule file the way editors do (write a new file,
 * rename it over the old one) reloads the rules without SIGHUP; a broken
 * edit keeps the old ones. log.format is json here, and every line the
 * daemon writes must be one JSON object. */
static void test_watch_reload(void **state)
{
    run_env_t e;
    make_env(&e, "watch", 1, NULL, 0);
    static char text[8192], edited[8192 + 512];
    FILE *f = fopen(e.config, "r");
    assert_non_null(f);
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    const char *at = strstr(text, "rules:\n");
    assert_non_null(at);
    snprintf(edited, sizeof(edited),
             "%.*srules:\n  watch: true\n  watch_quiet_ms: 200\n%slog:\n  format: json\n",
             (int)(at - text), text, at + strlen("rules:\n"));
    assert_int_equal(e2e_write_file(e.config, edited), 0);

    enum { N = 300 };
    alert_rec_t *exp = calloc(3 * N, sizeof(*exp)), *got = calloc(6 * N, sizeof(*got));
    reader_t r;
    const char *topics[] = {e.alerts, e.trade_alerts};
    reader_open(&r, topics, 2);
    pid_t pid = start_vigil(&e);
    assert_true(e2e_wait_in_file(e.log, "\"msg\":\"watching rule files\"", 1, 30));
    size_t nexp = produce_events(&e, 0, N, exp);
    size_t ngot = read_alerts(&r, got, 6 * N, nexp, 60, 0.5);
    assert_int_equal(ngot, nexp);

    /* An editor's save: a new rule that also alerts on the near misses. */
    f = fopen(e.rules, "r");
    assert_non_null(f);
    len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    snprintf(edited, sizeof(edited), "%s  - id: urban\n    match: {text: {any: [urban]}}\n", text);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.new", e.rules);
    assert_int_equal(e2e_write_file(tmp, edited), 0);
    assert_int_equal(rename(tmp, e.rules), 0);
    assert_true(e2e_wait_in_file(e.log, "\"msg\":\"rule files changed; reloading\"", 1, 30));
    assert_true(e2e_wait_in_file(e.log, "\"msg\":\"rules reloaded\"", 1, 30));
    size_t n2 = produce_events(&e, N, 2 * N, exp + nexp);
    for (int i = N; i < 2 * N; i++)
        if (i % 3 == 1) {
            snprintf(exp[nexp + n2].rule, sizeof(exp[0].rule), "urban");
            exp[nexp + n2].src_offset = i;
            n2++;
        }
    nexp += n2;
    ngot += read_alerts(&r, got + ngot, 6 * N - ngot, n2, 60, 0.5);

    /* A broken edit in place: refused, the rules above stay. */
    f = fopen(e.rules, "a");
    assert_non_null(f);
    fputs("  - id: broken\n    match: {tetx: {any: [x]}}\n", f);
    fclose(f);
    assert_true(
        e2e_wait_in_file(e.log, "\"msg\":\"reload failed; keeping the current rules\"", 1, 30));
    size_t n3 = produce_events(&e, 2 * N, 3 * N, exp + nexp);
    for (int i = 2 * N; i < 3 * N; i++)
        if (i % 3 == 1) {
            snprintf(exp[nexp + n3].rule, sizeof(exp[0].rule), "urban");
            exp[nexp + n3].src_offset = i;
            n3++;
        }
    nexp += n3;
    ngot += read_alerts(&r, got + ngot, 6 * N - ngot, n3, 60, 1.0);
    int st = stop_vigil(pid, SIGTERM);
    reader_close(&r);
    if (ngot != nexp)
        e2e_dump_file(e.log, 0);
    check_superset(got, ngot, exp, nexp, true);
    assert_int_equal(ngot, nexp);
    assert_int_equal(e2e_count_in_file(e.log, "\"msg\":\"rules reloaded\""), 1);
    assert_true(e2e_count_in_file(e.log, "unknown condition 'tetx'") >= 1);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* one JSON object per line, nothing else */
    f = fopen(e.log, "r");
    assert_non_null(f);
    char line[8192];
    size_t lines = 0;
    while (fgets(line, sizeof(line), f)) {
        json_object *o = json_tokener_parse(line);
        if (!o || !json_object_is_type(o, json_type_object))
            fail_msg("not a JSON log line: %s", line);
        json_object_put(o);
        lines++;
    }
    fclose(f);
    assert_true(lines >= 5);
    free(exp);
    free(got);
}

/* ---- metrics ---- */

typedef struct want_sample {
    char series[256];
    double value;
} want_sample_t;

/* Scrapes while events are evaluated and alerts produced: what was
 * counted is what was sent, by topic, dead-letter reason and rule; the
 * lag comes from librdkafka's statistics; /healthz is 200 once the
 * partition is assigned. An instance whose brokers do not exist answers
 * 503 with the reason; one whose metrics port is taken does not start. */
static void test_metrics(void **state)
{
    run_env_t e;
    int port = e2e_free_port();
    assert_true(port > 0);
    make_env(&e, "metrics", 1, NULL, port);
    enum { N = 30 };
    alert_rec_t exp[N];
    size_t nexp = produce_events(&e, 0, N, exp);
    size_t sanction = 0, trade = 0;
    for (size_t i = 0; i < nexp; i++)
        *(strcmp(exp[i].rule, "sanction-news") == 0 ? &sanction : &trade) += 1;
    assert_true(sanction > 0 && trade > 0);
    static const struct {
        const char *bytes, *reason;
    } bad[] = {{"{\"title\": \"unterminated", "invalid_json"},
               {"not json at all", "invalid_json"},
               {"[1,2,3]", "not_object"},
               {"{\"title\":\"caf\xc3\x28\"}", "invalid_utf8"}};
    enum { NBAD = sizeof(bad) / sizeof(bad[0]) };
    for (int i = 0; i < NBAD; i++)
        produce(e.in, bad[i].bytes, strlen(bad[i].bytes), NULL);
    flush_producer();

    want_sample_t want[16];
    size_t nwant = 0;
#define WANT(v, ...)                                                                           \
    do {                                                                                       \
        snprintf(want[nwant].series, sizeof(want[0].series), __VA_ARGS__);                     \
        want[nwant++].value = (v);                                                             \
    } while (0)
    WANT(N + NBAD, "vigil_events_consumed_total{topic=\"%s\"}", e.in);
    WANT(2, "vigil_events_dead_lettered_total{reason=\"invalid_json\"}");
    WANT(1, "vigil_events_dead_lettered_total{reason=\"not_object\"}");
    WANT(1, "vigil_events_dead_lettered_total{reason=\"invalid_utf8\"}");
    WANT(0, "vigil_events_dead_lettered_total{reason=\"too_large\"}");
    WANT(NBAD, "vigil_decode_failures_total");
    WANT(sanction, "vigil_rule_matches_total{rule=\"sanction-news\"}");
    WANT(trade, "vigil_rule_matches_total{rule=\"trade-drop\"}");
    WANT(sanction, "vigil_alerts_produced_total{rule=\"sanction-news\",severity=\"medium\"}");
    WANT(trade, "vigil_alerts_produced_total{rule=\"trade-drop\",severity=\"high\"}");
    WANT(0, "vigil_alerts_failed_total{rule=\"sanction-news\",severity=\"medium\"}");
    WANT(N + NBAD, "vigil_processing_seconds_count");
    WANT(N + NBAD, "vigil_processing_seconds_bucket{le=\"+Inf\"}");
    WANT(2, "vigil_rules_loaded");
    WANT(1, "vigil_assigned_partitions");
    /* Statistics come every 5 s; once everything is committed, no lag. */
    WANT(0, "vigil_consumer_lag{topic=\"%s\",partition=\"0\"}", e.in);
#undef WANT

    pid_t pid = start_vigil(&e);
    static char text[1 << 20];
    int status = 0;
    size_t bad_sample = 0;
    double deadline = e2e_now_s() + 60;
    while (e2e_now_s() < deadline) {
        status = e2e_http_get(port, "GET", "/metrics", text, sizeof(text));
        for (bad_sample = 0; status == 200 && bad_sample < nwant; bad_sample++)
            if (e2e_metric_sample(text, want[bad_sample].series) != want[bad_sample].value)
                break;
        if (status == 200 && bad_sample == nwant)
            break;
        usleep(200000);
    }
    if (status != 200 || bad_sample < nwant) {
        e2e_dump_file(e.log, 0);
        fprintf(stderr, "---- last scrape (HTTP %d) ----\n%s", status, text);
        if (status != 200)
            fail_msg("GET /metrics answered %d", status);
        fail_msg("%s is %g, expected %g", want[bad_sample].series,
                 e2e_metric_sample(text, want[bad_sample].series), want[bad_sample].value);
    }
    /* The exposition a Prometheus server expects. */
    static const char *const families[][2] = {
        {"vigil_events_consumed_total", "counter"},
        {"vigil_events_dead_lettered_total", "counter"},
        {"vigil_decode_failures_total", "counter"},
        {"vigil_rule_matches_total", "counter"},
        {"vigil_alerts_produced_total", "counter"},
        {"vigil_alerts_failed_total", "counter"},
        {"vigil_processing_seconds", "histogram"},
        {"vigil_consumer_lag", "gauge"},
        {"vigil_ruleset_info", "gauge"},
        {"vigil_rules_loaded", "gauge"},
        {"vigil_reloads_total", "counter"},
        {"vigil_build_info", "gauge"},
        {"vigil_up", "gauge"},
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
        char line[128];
        snprintf(line, sizeof(line), "\n# TYPE %s %s\n", families[i][0], families[i][1]);
        if (!strstr(text, line))
            fail_msg("no '# TYPE %s %s' line", families[i][0], families[i][1]);
        snprintf(line, sizeof(line), "# HELP %s ", families[i][0]);
        assert_non_null(strstr(text, line));
    }
    assert_true(e2e_metric_sample(text, "vigil_up") == 1);
    assert_true(e2e_metric_sample(text, "vigil_reloads_total{result=\"ok\"}") == 0);
    const char *info = strstr(text, "\nvigil_ruleset_info{hash=\"");
    assert_non_null(info);
    assert_non_null(strstr(info, "\"} 1\n"));
    assert_non_null(strstr(text, "\nvigil_build_info{version=\""));
    /* Buckets are cumulative. */
    assert_true(e2e_metric_sample(text, "vigil_processing_seconds_bucket{le=\"0.0005\"}") <=
                e2e_metric_sample(text, "vigil_processing_seconds_bucket{le=\"5\"}"));

    char body[512];
    assert_int_equal(e2e_http_get(port, "GET", "/healthz", body, sizeof(body)), 200);
    assert_string_equal(body, "ok\n");
    assert_int_equal(e2e_http_get(port, "GET", "/nope", body, sizeof(body)), 404);
    assert_int_equal(e2e_http_get(port, "POST", "/metrics", body, sizeof(body)), 405);

    int st = stop_vigil(pid, SIGTERM);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* The endpoint went away with the daemon. */
    assert_int_equal(e2e_http_get(port, "GET", "/healthz", body, sizeof(body)), 0);

    /* An instance whose brokers do not exist: /metrics still answers,
     * /healthz says what is wrong. */
    run_env_t dead = e;
    snprintf(dead.config, sizeof(dead.config), "%s/%s.nobroker.yaml", tmpdir, e.in);
    snprintf(dead.log, sizeof(dead.log), "%s/%s.nobroker.log", tmpdir, e.in);
    int dead_port = e2e_free_port(), no_broker_port = e2e_free_port();
    assert_true(dead_port > 0 && no_broker_port > 0);
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "kafka:\n  brokers: \"127.0.0.1:%d\"\n  group: %s\n"
             "input:\n  topics: [%s]\n"
             "rules:\n  paths: [%s]\n"
             "metrics:\n  listen: \"127.0.0.1:%d\"\n",
             no_broker_port, e.group, e.in, e.rules, dead_port);
    assert_int_equal(e2e_write_file(dead.config, cfg), 0);
    pid = start_vigil(&dead);
    if (!e2e_wait_http(dead_port, "/healthz", 503, "all brokers down", true, 30, body,
                       sizeof(body), &status)) {
        e2e_dump_file(dead.log, 0);
        fail_msg("without a broker, /healthz answered %d '%s'", status, body);
    }
    assert_int_equal(e2e_http_get(dead_port, "GET", "/metrics", text, sizeof(text)), 200);
    assert_true(e2e_metric_sample(text, "vigil_assigned_partitions") == 0);
    stop_vigil(pid, SIGTERM);

    /* The metrics port is taken: a start-up error naming the address. */
    int busy = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)dead_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1; /* the port has connections of the last instance in TIME_WAIT */
    setsockopt(busy, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(busy, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(busy, 1), 0);
    pid = start_vigil(&dead);
    st = wait_exit(pid);
    close(busy);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 3)
        e2e_dump_file(dead.log, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    char msg[128];
    snprintf(msg, sizeof(msg), "cannot listen on 127.0.0.1:%d for metrics: Address already in use",
             dead_port);
    assert_true(e2e_wait_in_file(dead.log, msg, 1, 1));
}

/* ---- setup ---- */

static int setup(void **state)
{
    vigil_bin = getenv("VIGIL_BIN");
    if (!vigil_bin) {
        fprintf(stderr, "VIGIL_BIN must name the vigil binary\n");
        return -1;
    }
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vigil-e2e-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!brokers[0]) {
        mock_host = e2e_mock_cluster_host(&mock, brokers, sizeof(brokers));
        if (!mock_host)
            return -1;
    }
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, e, sizeof(e));
    rd_kafka_conf_set(conf, "linger.ms", "5", e, sizeof(e));
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof(e));
    fprintf(stderr, "e2e: %s cluster at %s\n", mock ? "mock" : "real", brokers);
    return producer ? 0 : -1;
}

static int teardown(void **state)
{
    e2e_kill_children();
    if (producer)
        rd_kafka_destroy(producer);
    if (mock_host)
        rd_kafka_destroy(mock_host);
    if (getenv("VIGIL_E2E_KEEP")) {
        fprintf(stderr, "e2e: logs kept in %s\n", tmpdir);
        return 0;
    }
    e2e_remove_dir(tmpdir);
    return 0;
}

/* Flow control: with a buffer far smaller than one fetch, vigil pauses
 * fetching again and again while the backlog is evaluated, and resumes
 * with a seek to where it stands (daemon/kafka/flow.c, resume_fetching). A
 * seek one message too early or too late would show as a duplicate or a
 * missing alert. */
static void test_flow_control(void **state)
{
    run_env_t e;
    int port = e2e_free_port();
    assert_true(port > 0);
    make_env(&e, "flow", 1, NULL, port);
    enum { N = 3000 };
    alert_rec_t *exp = calloc(N, sizeof(*exp)), *got = calloc(2 * N, sizeof(*got));
    size_t nexp = produce_events(&e, 0, N, exp);
    setenv("VIGIL_BUFFER_BYTES", "8192", 1);
    pid_t pid = start_vigil(&e);
    unsetenv("VIGIL_BUFFER_BYTES");
    reader_t r;
    const char *topics[] = {e.alerts, e.trade_alerts};
    reader_open(&r, topics, 2);
    size_t ngot = read_alerts(&r, got, 2 * N, nexp, 120, 2.0);
    static char text[1 << 20];
    int status = e2e_http_get(port, "GET", "/metrics", text, sizeof(text));
    double throttled = e2e_metric_sample(text, "vigil_fetch_throttled_total");
    char series[256];
    snprintf(series, sizeof(series), "vigil_events_consumed_total{topic=\"%s\"}", e.in);
    double consumed = e2e_metric_sample(text, series);
    int st = stop_vigil(pid, SIGTERM);
    if (ngot != nexp || !(throttled >= 2))
        e2e_dump_file(e.log, 0);
    assert_int_equal(status, 200);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(ngot, nexp);
    check_superset(got, ngot, exp, nexp, true);
    /* Every event once: none evaluated twice after a resume. */
    assert_true(consumed == N);
    /* It did pause, and came back: 3,000 events are ~60 buffers' worth. */
    if (!(throttled >= 2))
        fail_msg("vigil_fetch_throttled_total is %g, expected at least 2", throttled);
    /* Flow pauses are not logged as the consumption pauses of failures. */
    assert_int_equal(e2e_count_in_file(e.log, "consumption paused"), 0);
    reader_close(&r);
    free(exp);
    free(got);
}

/* ---- hostile configuration and input (issue 18) ---- */

/* Replaces the first from in path with to. */
static void file_replace(const char *path, const char *from, const char *to)
{
    static char buf[16384], out[17408];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *at = strstr(buf, from);
    assert_non_null(at);
    snprintf(out, sizeof(out), "%.*s%s%s", (int)(at - buf), buf, to, at + strlen(from));
    assert_int_equal(e2e_write_file(path, out), 0);
}

/* A message with one header (hname NULL: none); val NULL: a tombstone. */
static void produce_msg(const char *topic, const char *val, const char *hname, const char *hval)
{
    rd_kafka_resp_err_t e;
    do {
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);
        if (hname)
            rd_kafka_header_add(h, hname, -1, hval, -1);
        e = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_VALUE((void *)val, val ? strlen(val) : 0),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                              RD_KAFKA_V_END);
        if (e) {
            rd_kafka_headers_destroy(h);
            rd_kafka_poll(producer, 50);
        }
    } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    assert_int_equal(e, 0);
}

/* Item 1: a rule whose alert.topic is the input topic stops `vigil run`
 * at start (status 1, file:line:col in the log) instead of feeding its
 * alerts back to itself; a reload that brings one (the checkpoint topic
 * here) is refused and the running rules kept. */
static void test_alert_topic_refused(void **state)
{
    run_env_t e;
    make_env(&e, "refused", 1, NULL, 0);
    char rules[512];
    snprintf(rules, sizeof(rules),
             "rules:\n"
             "  - id: loop\n"
             "    match: {text: {any: [\"sanction*\"]}}\n"
             "    alert: {topic: %s}\n",
             e.in);
    assert_int_equal(e2e_write_file(e.rules, rules), 0);
    produce_msg(e.in, "{\"title\":\"sanctions\"}", NULL, NULL);
    flush_producer();
    pid_t pid = start_vigil(&e);
    int st = 0;
    if (!e2e_stop_child(pid, 0, 30, &st)) {
        e2e_dump_file(e.log, 20);
        fail_msg("vigil ran with an alert topic that is its input topic");
    }
    char at[600];
    snprintf(at, sizeof(at), "%s:4:20", e.rules);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 1 || !e2e_file_has(e.log, at))
        e2e_dump_file(e.log, 20);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    assert_true(e2e_file_has(e.log, at));
    assert_true(e2e_file_has(e.log, "rule 'loop': alert.topic"));

    /* Valid rules, then a reload onto the checkpoint topic. */
    snprintf(rules, sizeof(rules),
             "rules:\n"
             "  - id: loop\n"
             "    match: {text: {any: [\"sanction*\"]}}\n");
    assert_int_equal(e2e_write_file(e.rules, rules), 0);
    reader_t r;
    const char *topics[] = {e.alerts};
    reader_open(&r, topics, 1);
    pid = start_vigil(&e);
    alert_rec_t got[8];
    assert_int_equal(read_alerts(&r, got, 8, 1, 60, 0), 1);
    assert_int_equal(e2e_write_file(e.rules, "rules:\n"
                                             "  - id: loop\n"
                                             "    match: {text: {any: [\"sanction*\"]}}\n"
                                             "    alert: {topic: vigil.state}\n"),
                     0);
    kill(pid, SIGHUP);
    bool refused = e2e_wait_in_file(e.log, "reload failed; keeping the current rules", 1, 30);
    produce_msg(e.in, "{\"title\":\"more sanctions\"}", NULL, NULL);
    flush_producer();
    size_t n = read_alerts(&r, got, 8, 1, 30, 1.0);
    st = stop_vigil(pid, SIGTERM);
    reader_close(&r);
    if (!refused || n != 1)
        e2e_dump_file(e.log, 30);
    assert_true(refused);
    assert_true(e2e_file_has(e.log, "is state.checkpoint_topic"));
    assert_int_equal(n, 1); /* the old rules, on the old topic */
    assert_int_equal(e2e_count_in_file(e.log, "rules reloaded"), 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* How many messages topic holds (read from the start for settle s). */
static size_t count_messages(const char *topic, double settle)
{
    reader_t r;
    const char *topics[] = {topic};
    reader_open(&r, topics, 1);
    size_t n = 0;
    double end = e2e_now_s() + settle;
    while (e2e_now_s() < end) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r.c, 100);
        if (m && !m->err)
            n++;
        if (m)
            rd_kafka_message_destroy(m);
    }
    reader_close(&r);
    return n;
}

/* Items 3 and 11: a tombstone and a message carrying vigil's alert header
 * are skipped and counted, not dead-lettered or evaluated; with
 * input.accept_alerts: true the latter is evaluated like any event. */
static void test_skipped_inputs(void **state)
{
    run_env_t e;
    int port = e2e_free_port();
    assert_true(port > 0);
    make_env(&e, "skipped", 1, NULL, port);
    const char *ev = "{\"type\":\"news\",\"title\":\"sanctions widened\",\"body\":\"\"}";
    produce_msg(e.in, ev, NULL, NULL);                          /* 0: alerts */
    produce_msg(e.in, NULL, NULL, NULL);                        /* 1: tombstone */
    produce_msg(e.in, ev, "vigil-rule", "sanction-news");       /* 2: an alert read back */
    produce_msg(e.in, ev, "x-other", "y");                      /* 3: alerts */
    flush_producer();
    pid_t pid = start_vigil(&e);
    reader_t r;
    const char *topics[] = {e.alerts};
    reader_open(&r, topics, 1);
    alert_rec_t got[8];
    size_t n = read_alerts(&r, got, 8, 2, 60, 1.5);
    static char text[1 << 20];
    char series[256];
    snprintf(series, sizeof(series), "vigil_events_consumed_total{topic=\"%s\"}", e.in);
    double tomb = NAN, own = NAN, consumed = NAN;
    for (int i = 0; i < 100 && consumed != 4; i++) {
        if (e2e_http_get(port, "GET", "/metrics", text, sizeof(text)) == 200) {
            tomb = e2e_metric_sample(text, "vigil_events_skipped_total{reason=\"tombstone\"}");
            own = e2e_metric_sample(text, "vigil_events_skipped_total{reason=\"own_alert\"}");
            consumed = e2e_metric_sample(text, series);
        }
        usleep(100000);
    }
    int st = stop_vigil(pid, SIGTERM);
    size_t dead = count_messages(e.dlq, 2.0);
    if (n != 2 || dead != 0 || tomb != 1 || own != 1)
        e2e_dump_file(e.log, 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_true(got[i].src_offset == 0 || got[i].src_offset == 3);
    assert_int_equal(dead, 0);
    assert_true(tomb == 1);
    assert_true(own == 1);
    assert_true(consumed == 4);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* input.accept_alerts: true, from the start in a new group. */
    file_replace(e.config, "input:\n", "input:\n  accept_alerts: true\n");
    file_replace(e.config, "  group: ", "  group: again-");
    pid = start_vigil(&e);
    n = read_alerts(&r, got, 8, 3, 60, 1.5);
    st = stop_vigil(pid, SIGTERM);
    reader_close(&r);
    if (n != 3)
        e2e_dump_file(e.log, 0);
    assert_int_equal(n, 3);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    atexit(e2e_kill_children);
    const char *b = getenv("VIGIL_TEST_BROKERS");
    const char *state = getenv("VIGIL_TEST_BROKER_STATE");
    if (b) {
        snprintf(brokers, sizeof(brokers), "%s", b);
    } else if (state) {
        char path[512];
        snprintf(path, sizeof(path), "%s/bootstrap", state);
        if (e2e_read_line(path, brokers, sizeof(brokers)) != 0) {
            if (getenv("VIGIL_REQUIRE_BROKER")) {
                fprintf(stderr, "e2e: no broker bootstrap at %s, and VIGIL_REQUIRE_BROKER is "
                                "set\n", path);
                return 1;
            }
            fprintf(stderr, "e2e: SKIP: no real Kafka broker (no %s). Install Java 17 and "
                            "Maven (apt-get install openjdk-17-jre-headless maven) so "
                            "tests/kafka/kafka-broker.sh can start one.\n",
                    path);
            return 77;
        }
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alerts_exact),
        cmocka_unit_test(test_dead_letter),
        cmocka_unit_test(test_sigterm_restart),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_watch_reload),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_flow_control),
        cmocka_unit_test(test_alert_topic_refused),
        cmocka_unit_test(test_skipped_inputs),
    };
    if (getenv("VIGIL_E2E_ONLY"))
        cmocka_set_test_filter(getenv("VIGIL_E2E_ONLY"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
